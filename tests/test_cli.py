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


def keys_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sealbus", "keys", *args], capture_output=True, text=True, timeout=60)


def test_keys_verify_and_show_give_a_verdict_and_never_key_bytes(tmp_path: Path) -> None:
    path = tmp_path / "log.keys"
    ring = sealbus.KeyRing.create(path)
    old = ring.active_key_id
    ring.rotate()
    secrets = [k["key"] for k in json.loads(path.read_text())["keys"]]
    r = keys_cli("verify", str(path))
    assert r.returncode == 0 and "OK" in r.stdout, r.stderr
    r = keys_cli("show", str(path))
    assert r.returncode == 0 and old in r.stdout and ring.active_key_id in r.stdout
    assert "retired" in r.stdout and "active" in r.stdout
    shown = json.loads(keys_cli("show", str(path), "--json").stdout)
    assert [k["id"] for k in shown["keys"]] == ring.key_ids()
    assert all(k["check"] and len(k["check"]) == 16 for k in shown["keys"])
    for out in (r.stdout, json.dumps(shown)):
        assert not any(s[:16] in out or s[-16:] in out for s in secrets)
    # One changed hex digit: refused, naming the file and the key, exit status 1.
    text = path.read_text()
    at = text.index(secrets[0]) + 5
    path.write_text(text[:at] + ("0" if text[at] != "0" else "1") + text[at + 1 :])
    for cmd in ("verify", "show"):
        r = keys_cli(cmd, str(path))
        assert r.returncode == 1, r.stdout
        assert "REFUSED" in r.stderr and str(path) in r.stderr and old in r.stderr
        assert not any(s[:16] in r.stderr + r.stdout for s in secrets)
    assert keys_cli("verify", str(tmp_path / "missing.keys")).returncode == 1


def test_keys_upgrade_rewrites_a_version_1_file(tmp_path: Path) -> None:
    path = tmp_path / "old.keys"
    key = bytes(range(32))
    path.write_text(
        json.dumps(
            {
                "format": "sealbus-keyring",
                "version": 1,
                "active": "k-a",
                "keys": [{"id": "k-a", "state": "active", "created": 0, "key": key.hex()}],
            }
        )
    )
    path.chmod(0o600)
    r = keys_cli("verify", str(path))
    assert r.returncode == 3 and "version 1" in r.stdout, r.stderr
    r = keys_cli("upgrade", str(path))
    assert r.returncode == 0 and "OK" in r.stdout, r.stderr
    assert keys_cli("verify", str(path)).returncode == 0
    assert json.loads(path.read_text())["version"] == 2


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
