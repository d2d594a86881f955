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
    from sealbus.bench import harness

    harness.add_arguments(sub.add_parser("bench", help="end-to-end benchmarks beside NATS JetStream"))
    args = parser.parse_args(argv)

    if args.command == "demo":
        from sealbus import demo as demo_mod

        demo_mod.run(orders=args.orders)
        return 0
    if args.command == "bench":
        return harness.main(args)
    if args.command == "version":
        import sealbus

        print(sealbus.__version__)
        return 0
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
