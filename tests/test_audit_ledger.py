"""The trail's summary entries: deliveries, acks, nacks and dead letters per
subscription, replays, and key ring changes, never a payload or a key."""

from __future__ import annotations

from pathlib import Path

import sealbus
from sealbus import audit

SCHEMA = {"type": "object", "properties": {"total": {"type": "number"}}, "required": ["total"]}


def shop(path: Path) -> tuple[sealbus.Router, sealbus.Producer, sealbus.Principal]:
    router = sealbus.Router(path)
    router.schemas.register("orders.placed", SCHEMA)
    checkout = router.principal("checkout")
    reader = router.principal("reader")
    router.policy.allow_publish(checkout, "orders.*")
    router.policy.allow_subscribe(reader, "orders.*")
    return router, router.producer(checkout), reader


def totals(path: Path, subscription: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for e in audit.entries(path, kind="deliveries"):
        if e["subscription"] == subscription:
            for k, v in e.items():
                if isinstance(v, int) and k not in ("seq", "time"):
                    out[k] = out.get(k, 0) + v
    return out


def test_deliveries_acks_nacks_and_dead_letters_are_summarised(tmp_path: Path) -> None:
    router, p, reader = shop(tmp_path / "log")
    sub = router.subscribe(reader, "orders.placed", name="reports", max_deliveries=1)
    p.publish_many("orders.placed", [{"total": float(i), "secret": "s3cr3t"} for i in range(10)])
    msgs = sub.poll(10, 5.0)
    assert len(msgs) == 10
    sub.ack(msgs[:7])
    sub.nack(msgs[7:])  # the last attempt: dead-lettered
    router.close()
    assert totals(tmp_path / "log", "reports") == {"delivered": 10, "acked": 7, "nacked": 3, "dead_lettered": 3}
    (e, *_) = audit.entries(tmp_path / "log", kind="deliveries")
    assert e["principal"] == "reader"
    assert b"s3cr3t" not in (tmp_path / "log" / "audit" / "trail.jsonl").read_bytes()
    assert audit.verify(tmp_path / "log").ok


def test_a_closed_subscription_is_summarised_too(tmp_path: Path) -> None:
    router, p, reader = shop(tmp_path / "log")
    sub = router.subscribe(reader, "orders.placed", name="brief")
    p.publish_many("orders.placed", [{"total": 1.0}] * 4)
    sub.ack(sub.poll(4, 5.0))
    sub.close()
    router.close()
    assert totals(tmp_path / "log", "brief") == {"delivered": 4, "acked": 4}


def test_a_replay_is_recorded_with_its_reader(tmp_path: Path) -> None:
    router, p, reader = shop(tmp_path / "log")
    p.publish_many("orders.placed", [{"total": 1.0}] * 3)
    assert len(list(router.replay(reader, "orders.*", since=0))) == 3
    router.close()
    (e,) = audit.entries(tmp_path / "log", kind="replay")
    assert e["principal"] == "reader" and e["types"] == ["orders.*"] and e["since"] == 0


def test_key_rotation_and_destruction_are_recorded_without_the_key(tmp_path: Path) -> None:
    router, _, _ = shop(tmp_path / "log")
    assert router.keys is not None
    first = router.keys.active_key_id
    second = router.keys.rotate()
    router.keys.destroy(first)
    router.close()
    changes = [(e["key"], e["change"]) for e in audit.entries(tmp_path / "log", kind="key")]
    assert changes == [(second, "created"), (first, "destroyed")]
    raw = (tmp_path / "log" / "audit" / "trail.jsonl").read_text()
    key_file = (tmp_path / "log.keys").read_text()
    assert "material" not in raw and key_file not in raw
