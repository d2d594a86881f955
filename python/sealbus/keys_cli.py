"""``sealbus keys verify|show|upgrade PATH``: what an operator asks of a key file.

Never prints key bytes: ids, states, creation times, seal counts (the nonce
high-water mark, an upper bound on seals made) and check values (a key's check value
says nothing about the key; comparing it tells whether two copies hold the same key).

Exit status: 0 the file verifies (check values and MACs); 1 it is refused (damaged,
edited, truncated, unreadable, or readable by group/others); 3 it is readable but in
format version 1, which carries nothing to verify (``upgrade`` rewrites it).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING

from sealbus.errors import SealbusError
from sealbus.keys import KeyRing, inspect_key_file

if TYPE_CHECKING:
    from sealbus._sealbus import KeyFileReport

OK, REFUSED, UNVERIFIABLE = 0, 1, 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="keys_command", required=True)
    verify = sub.add_parser("verify", help="check a key file's check values and MACs (exit 0 ok, 1 refused)")
    verify.add_argument("path")
    show = sub.add_parser("show", help="ids, states, creation times and seal counts (never key bytes)")
    show.add_argument("path")
    show.add_argument("--json", action="store_true", help="print JSON instead of a table")
    upgrade = sub.add_parser("upgrade", help="rewrite a version-1 key file in the current format")
    upgrade.add_argument("path")


def main(args: argparse.Namespace) -> int:
    command: str = args.keys_command
    try:
        if command == "upgrade":
            ring = KeyRing.load(args.path)
            ring.persist(args.path)
        report = inspect_key_file(args.path)
    except SealbusError as exc:
        print(f"sealbus keys {command}: REFUSED: {exc}", file=sys.stderr)
        return REFUSED
    status = OK if report["verified"] else UNVERIFIABLE
    if command == "show" and args.json:
        print(json.dumps(report, indent=2))
        return status
    if command == "show":
        _table(report)
    print(_verdict(report))
    return status


def _verdict(report: KeyFileReport) -> str:
    keys = report["keys"]
    counts = ", ".join(
        f"{sum(k['state'] == s for k in keys)} {s}"
        for s in ("active", "retired", "destroyed")
        if any(k["state"] == s for k in keys)
    )
    head = f"key file {report['path']}: format version {report['version']}, {len(keys)} keys ({counts})"
    if report["verified"]:
        return f"{head}: OK, check values and MACs verified"
    return f"{head}: readable, but this version carries no check values; `sealbus keys upgrade` rewrites it"


def _table(report: KeyFileReport) -> None:
    print(f"{'key id':<22} {'state':<10} {'created (UTC)':<20} {'seals':>12}  check")
    for k in report["keys"]:
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(k["created"]))
        mark = "*" if k["id"] == report["active"] else " "
        print(f"{k['id']:<21}{mark} {k['state']:<10} {created:<20} {k['seals']:>12}  {k['check'] or '-'}")
    print(f"max seals per key: {report['max_seals_per_key']}; seals = nonce high-water mark (an upper bound)")
