"""The audit trail: what a durable router records, and that any damage is caught."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import sealbus
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sealbus import audit

SCHEMA = {"type": "object", "properties": {"total": {"type": "number", "maximum": 1000}}, "required": ["total"]}


def shop(path: Path) -> tuple[sealbus.Router, sealbus.Principal, sealbus.Principal]:
    router = sealbus.Router(path, audit_checkpoint_every=50)
    router.schemas.register("orders.placed", SCHEMA)
    checkout = router.principal("checkout")
    intruder = router.principal("intruder")
    router.policy.allow_publish(checkout, "orders.*")
    return router, checkout, intruder


def test_a_durable_router_records_its_decisions_and_never_a_payload(tmp_path: Path) -> None:
    router, checkout, intruder = shop(tmp_path / "log")
    p = router.producer(checkout)
    receipts = p.publish_many("orders.placed", [{"total": 1.5, "note": "alice@example.com"}] * 3)
    with pytest.raises(sealbus.ValidationError):
        p.publish("orders.placed", {"total": 4711.25, "note": "bob@example.com"})
    with pytest.raises(sealbus.PolicyDenied):
        router.producer(intruder).publish("orders.placed", {"total": 1.0})
    router.close()
    kinds = [e["kind"] for e in audit.entries(tmp_path / "log")]
    assert kinds[0] == "open" and kinds[-1] == "close"
    assert {"schema", "policy", "publish", "refused"} <= set(kinds)
    (pub,) = audit.entries(tmp_path / "log", kind="publish")
    assert pub["ids"] == receipts.ids and pub["principal"] == "checkout" and pub["count"] == 3
    refused = list(audit.entries(tmp_path / "log", kind="refused"))
    assert [(r["principal"], r["rule"]) for r in refused] == [
        ("checkout", "ValidationError"),
        ("intruder", "PolicyDenied"),
    ]
    raw = (tmp_path / "log" / "audit" / "trail.jsonl").read_bytes()
    # The refused total as JSON writes it: "4711" alone turns up by chance in hashes and times.
    assert b"alice@example.com" not in raw and b"bob@example.com" not in raw and b"4711.25" not in raw
    assert stat.S_IMODE((tmp_path / "log" / "audit" / "trail.jsonl").stat().st_mode) == 0o600
    assert audit.verify(tmp_path / "log").ok


def _trail(tmp: Path, n: int = 12) -> tuple[Path, list[bytes]]:
    router, checkout, _ = shop(tmp / "log")
    p = router.producer(checkout)
    for i in range(n):
        p.publish("orders.placed", {"total": float(i)})
    router.close()
    path = tmp / "log" / "audit" / "trail.jsonl"
    return path, path.read_bytes().splitlines()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_every_change_insertion_deletion_reordering_is_caught_and_named(tmp_path_factory, data) -> None:  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("trail")
    path, lines = _trail(tmp)
    n = len(lines)
    how = data.draw(st.sampled_from(["change", "insert", "delete", "swap"]))
    # The last entry is left to the checkpoint test below: nothing follows it to
    # notice a change, which is what exported checkpoints are for.
    at = data.draw(st.integers(0, n - 2))
    damaged = list(lines)
    if how == "change":
        b = data.draw(st.integers(0, len(lines[at]) - 1))
        line = bytearray(lines[at])
        line[b] = ord("0") if line[b] != ord("0") else ord("1")
        damaged[at] = bytes(line)
    elif how == "insert":
        damaged.insert(at + 1, lines[at])
    elif how == "delete":
        del damaged[at]
    else:
        damaged[at], damaged[at + 1] = damaged[at + 1], damaged[at]
    path.write_bytes(b"\n".join(damaged) + b"\n")
    v = audit.verify(tmp / "log")
    assert not v.ok
    assert v.first_bad in (at, at + 1), (how, at, v)


def test_rollback_of_the_whole_trail_is_caught_against_an_exported_checkpoint(tmp_path: Path) -> None:
    router, checkout, _ = shop(tmp_path / "log")
    p = router.producer(checkout)
    early = [p.publish("orders.placed", {"total": 1.0}).id for _ in range(5)]
    assert router.audit is not None
    checkpoint = router.audit.checkpoint()
    for _ in range(5):
        p.publish("orders.placed", {"total": 2.0})
    router.close()
    assert audit.verify(tmp_path / "log", checkpoint).ok
    # Inclusion: an early event is provably in the trail the checkpoint signed.
    proof = audit.prove(tmp_path / "log", early[2], checkpoint)
    assert proof is not None and audit.verify_proof(proof, checkpoint)
    tampered = audit.Proof(proof.index, proof.size, proof.entry.replace(b"checkout", b"checkoux"), proof.path)
    assert not audit.verify_proof(tampered, checkpoint)
    # Roll back to before the checkpoint: consistent in itself, caught against it.
    path = tmp_path / "log" / "audit" / "trail.jsonl"
    size = json.loads(checkpoint)["size"]
    path.write_bytes(b"\n".join(path.read_bytes().splitlines()[: size - 1]) + b"\n")
    assert audit.verify(tmp_path / "log").ok
    v = audit.verify(tmp_path / "log", checkpoint)
    assert not v.ok and v.first_bad == size - 1
    # A checkpoint whose signature was forged is refused.
    forged = json.loads(checkpoint)
    forged["sig"] = ("00" if forged["sig"][:2] != "00" else "11") + forged["sig"][2:]
    assert not audit.verify(tmp_path / "log", json.dumps(forged)).ok


def test_the_cli_says_its_verdict_in_its_exit_status(tmp_path: Path) -> None:
    path, lines = _trail(tmp_path, 4)
    cli = [sys.executable, "-m", "sealbus", "audit"]
    ok = subprocess.run([*cli, "verify", str(tmp_path / "log")], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    shown = subprocess.run([*cli, "show", str(tmp_path / "log"), "--kind", "publish"], capture_output=True, text=True)
    assert len(shown.stdout.splitlines()) == 4
    lines[2] = lines[2].replace(b'"kind":"', b'"kind":"x')
    path.write_bytes(b"\n".join(lines) + b"\n")
    bad = subprocess.run([*cli, "verify", str(tmp_path / "log")], capture_output=True, text=True)
    assert bad.returncode == 1 and "entry 3" in bad.stdout


def test_a_tampered_trail_stops_the_router_from_opening(tmp_path: Path) -> None:
    path, lines = _trail(tmp_path, 3)
    assert b'"principal":"checkout"' in lines[2]
    lines[2] = lines[2].replace(b"checkout", b"intruder")
    path.write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(sealbus.LogCorrupted, match="audit trail entry 3"):
        sealbus.Router(tmp_path / "log")


def test_an_in_memory_router_has_no_trail_unless_asked_and_then_refuses() -> None:
    assert sealbus.Router().audit is None
    with pytest.raises(sealbus.InvalidArgument):
        sealbus.Router(audit=True)
