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
    insp.add_argument(
        "--all-consumers",
        action="store_true",
        help=f"one line per consumer even when there are more than {CONSUMER_LINES} (default: a summary)",
    )
    from sealbus import keys_cli

    keys_cli.add_arguments(sub.add_parser("keys", help="verify or show a key file (never key bytes)"))
    audit = sub.add_parser("audit", help="verify and read a router's audit trail").add_subparsers(
        dest="audit_command", required=True
    )
    av = audit.add_parser("verify", help="check the chain and signatures; exit status 0 only if it verifies")
    av.add_argument("path", help="the router's log path")
    av.add_argument("--checkpoint", help="an exported checkpoint (JSON file) the trail must still hold")
    ash = audit.add_parser("show", help="print entries (never payloads)")
    ash.add_argument("path")
    ash.add_argument("--kind", help="publish, refused, policy, schema, consumer, checkpoint, open, close, ...")
    ash.add_argument("--principal")
    ash.add_argument("--since-ns", type=int)
    ash.add_argument("--until-ns", type=int)
    aex = audit.add_parser("checkpoint", help="print the trail's latest signed checkpoint, to keep elsewhere")
    aex.add_argument("path")
    apr = audit.add_parser("prove", help="prove that an event's publish is in the trail under a checkpoint")
    apr.add_argument("path")
    apr.add_argument("event_id")
    apr.add_argument("--checkpoint", required=True)
    from sealbus.bench import harness

    harness.add_arguments(sub.add_parser("bench", help="end-to-end benchmarks beside NATS JetStream"))
    args = parser.parse_args(argv)

    if args.command == "demo":
        from sealbus import demo as demo_mod

        demo_mod.run(orders=args.orders)
        return 0
    if args.command == "log":
        return _log_inspect(args.path, verify=args.verify, as_json=args.json, all_consumers=args.all_consumers)
    if args.command == "keys":
        return keys_cli.main(args)
    if args.command == "bench":
        return harness.main(args)
    if args.command == "audit":
        return _audit(args)
    if args.command == "version":
        import sealbus

        print(sealbus.__version__)
        return 0
    parser.error(f"unknown command {args.command}")
    return 2


def _log_inspect(path: str, *, verify: bool, as_json: bool, all_consumers: bool = False) -> int:
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
    cursors_info = info.get("cursors") or {}
    if all_consumers or len(cursors_info) <= CONSUMER_LINES:
        for name, c in cursors_info.items():
            print(f"consumer {name}: {c}")
    else:
        _print_consumer_summary(cursors_info)
    return 0


#: Up to this many consumers, ``log inspect`` prints one line each; beyond, a summary.
CONSUMER_LINES = 20


def _print_consumer_summary(cursors: dict[str, dict[str, int]]) -> None:
    """Thousands of consumers in a few lines: how far behind they are, what they hold,
    and the ones furthest behind."""
    lags = sorted(c["lag"] for c in cursors.values())
    in_flight = sum(c["in_flight"] for c in cursors.values())
    dead = sum(c["dead_letters"] for c in cursors.values())
    caught_up = sum(1 for lag in lags if lag == 0)
    print(
        f"consumers: {len(cursors):,} ({caught_up:,} caught up); lag min {lags[0]:,}, "
        f"median {lags[len(lags) // 2]:,}, max {lags[-1]:,}; {in_flight:,} in flight, {dead:,} dead letters"
    )
    behind = sorted(cursors.items(), key=lambda kv: (-kv[1]["lag"], kv[0]))[:10]
    if behind and behind[0][1]["lag"] > 0:
        print("furthest behind:")
        for name, c in behind:
            if c["lag"] > 0:
                print(f"  consumer {name}: {c}")
    with_dead = sorted((kv for kv in cursors.items() if kv[1]["dead_letters"]), key=lambda kv: -kv[1]["dead_letters"])
    if with_dead:
        print("with dead letters:")
        for name, c in with_dead[:10]:
            print(f"  consumer {name}: {c}")
    print("(--all-consumers lists every one; --json gives them all)")


def _audit(args: argparse.Namespace) -> int:
    import json

    from sealbus import audit
    from sealbus.errors import SealbusError

    try:
        if args.audit_command == "verify":
            cp = None if args.checkpoint is None else open(args.checkpoint).read()  # noqa: SIM115
            v = audit.verify(args.path, cp)
            if v.ok:
                print(f"audit trail verifies: {v.entries} entries, {v.checkpoints} signed checkpoints")
                return 0
            print(f"audit trail does NOT verify: entry {v.first_bad}: {v.reason}")
            return 1
        if args.audit_command == "show":
            for e in audit.entries(
                args.path, kind=args.kind, principal=args.principal, since_ns=args.since_ns, until_ns=args.until_ns
            ):
                print(json.dumps(e, separators=(",", ":")))
            return 0
        if args.audit_command == "checkpoint":
            last = None
            for e in audit.entries(args.path, kind="checkpoint"):
                last = e
            if last is None:
                print("no checkpoint in the trail yet", file=sys.stderr)
                return 1
            print(json.dumps({k: last[k] for k in ("size", "root", "key", "sig")}))
            return 0
        if args.audit_command == "prove":
            cp = open(args.checkpoint).read()  # noqa: SIM115
            proof = audit.prove(args.path, args.event_id, cp)
            if proof is None or not audit.verify_proof(proof, cp):
                print(f"no proof: {args.event_id} is not in the trail under this checkpoint")
                return 1
            print(f"{args.event_id}: entry {proof.index} of {proof.size}, proof of {len(proof.path)} hashes verifies")
            return 0
    except (SealbusError, OSError) as exc:
        print(f"sealbus audit: {exc}", file=sys.stderr)
        return 2
    return 2


if __name__ == "__main__":
    sys.exit(main())
