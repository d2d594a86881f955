"""The ``sealbus`` command line."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sealbus", description="A secure event router with a Rust core.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run a small shop end to end")
    demo.add_argument("--orders", type=int, default=12)
    sub.add_parser("version", help="print the version")
    log_cmd = sub.add_parser("log", help="look at a durable log").add_subparsers(dest="log_command", required=True)
    insp = log_cmd.add_parser("inspect", help="segments, offsets, counts and consumer cursors (never payloads)")
    insp.add_argument("path")
    insp.add_argument("--verify", action="store_true", help="check every record's checksums")
    insp.add_argument("--json", action="store_true", help="print JSON instead of a table")
    from sealbus import keys_cli

    keys_cli.add_arguments(sub.add_parser("keys", help="verify or show a key file (never key bytes)"))
    from sealbus.bench import harness

    harness.add_arguments(sub.add_parser("bench", help="end-to-end benchmarks beside NATS JetStream"))
    args = parser.parse_args(argv)

    if args.command == "demo":
        from sealbus import demo as demo_mod

        demo_mod.run(orders=args.orders)
        return 0
    if args.command == "log":
        return _log_inspect(args.path, verify=args.verify, as_json=args.json)
    if args.command == "keys":
        return keys_cli.main(args)
    if args.command == "bench":
        return harness.main(args)
    if args.command == "version":
        import sealbus

        print(sealbus.__version__)
        return 0
    parser.error(f"unknown command {args.command}")
    return 2


def _log_inspect(path: str, *, verify: bool, as_json: bool) -> int:
    import json
    import os

    from sealbus.errors import SealbusError
    from sealbus.log import inspect

    cursors = os.path.join(path, "cursors")
    try:
        info = inspect(path, verify=verify, cursors=cursors if os.path.isdir(cursors) else None)
    except SealbusError as exc:
        print(f"sealbus log inspect: {exc}", file=sys.stderr)
        return 1
    if as_json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    print(
        f"log {info['path']}: offsets {info['first_offset']}..{info['next_offset']}, "
        f"{info['records']} records, {info['bytes']} bytes"
    )
    print(f"{'segment':<28} {'base':>10} {'next':>10} {'records':>9} {'bytes':>12}  active")
    for seg in info["segments"]:
        print(
            f"{seg['file']:<28} {seg['base_offset']:>10} {seg['next_offset']:>10} {seg['records']:>9} "
            f"{seg['bytes']:>12}  {'yes' if seg['active'] else ''}"
        )
    rec = info.get("recovery")
    if rec:
        print(f"recovery: {rec}")
    if "verified" in info:
        print(f"verified: {info['verified']}")
    for name, c in (info.get("cursors") or {}).items():
        print(f"consumer {name}: {c}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
