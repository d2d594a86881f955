"""The command line: log inspection shows structure, never payloads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import sealbus


def test_log_inspect_shows_counts_not_payloads(tmp_path: Path) -> None:
    path = tmp_path / "log"
    router = sealbus.Router(path, allow_schemaless=True, seal="none")
    p = router.principal("p")
    c = router.principal("c")
    router.policy.allow_publish(p, "*")
    router.policy.allow_subscribe(c, "*")
    router.subscribe(c, "*", name="c", durable=True)
    router.producer(p).publish_many("t.x", [{"secret": "visible-in-clear"}] * 25)
    router.close()
    r = subprocess.run(
        [sys.executable, "-m", "sealbus", "log", "inspect", str(path), "--verify", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert "visible-in-clear" not in r.stdout
    info = json.loads(r.stdout)
    assert (info["first_offset"], info["next_offset"], info["records"]) == (0, 25, 25)
    assert info["verified"]["records"] == 25
    assert "c" in info["cursors"]
    table = subprocess.run(
        [sys.executable, "-m", "sealbus", "log", "inspect", str(path)], capture_output=True, text=True, timeout=60
    )
    assert table.returncode == 0 and "offsets 0..25" in table.stdout


def test_log_inspect_reports_corruption(tmp_path: Path) -> None:
    path = tmp_path / "log"
    router = sealbus.Router(path, allow_schemaless=True)
    p = router.principal("p")
    router.policy.allow_publish(p, "*")
    router.producer(p).publish_many("t.x", [{"n": i} for i in range(50)])
    router.close()
    seg = next(path.glob("*.log"))
    data = bytearray(seg.read_bytes())
    data[len(data) // 3] ^= 0x40
    seg.write_bytes(bytes(data))
    r = subprocess.run(
        [sys.executable, "-m", "sealbus", "log", "inspect", str(path), "--verify"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 1
    assert "corrupted" in r.stderr and "offset" in r.stderr
