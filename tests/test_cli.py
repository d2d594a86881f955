"""The command line: log inspection shows structure, never payloads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import sealbus
from sealbus.log import CursorStore


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


def test_log_inspect_summarises_thousands_of_consumers(tmp_path: Path) -> None:
    path = tmp_path / "log"
    router = sealbus.Router(path, allow_schemaless=True)
    p = router.principal("p")
    router.policy.allow_publish(p, "*")
    router.producer(p).publish_many("t.x", [{"n": i} for i in range(10)])
    router.close()
    store = CursorStore(path / "cursors")
    for i in range(1_500):
        store.save(f"tenant-{i:04d}", 10 if i % 100 else i % 7)
    store.save("stuck", 3, dead_letters=[(4, 5, 0, "nacked")])
    r = subprocess.run(
        [sys.executable, "-m", "sealbus", "log", "inspect", str(path)], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) < 40, r.stdout
    assert "consumers: 1,501 (1,485 caught up); lag min 0, median 0, max 10; 0 in flight, 1 dead letters" in r.stdout
    # The furthest behind are named (tenant-0000 has committed 0: lag 10), and the dead letters' owner.
    assert "consumer tenant-0000:" in r.stdout and "consumer stuck:" in r.stdout
    every = subprocess.run(
        [sys.executable, "-m", "sealbus", "log", "inspect", str(path), "--all-consumers"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert sum(line.startswith("consumer ") for line in every.stdout.splitlines()) == 1_501
