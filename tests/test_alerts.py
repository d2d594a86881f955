"""Alerts: each rule fires on its scenario, through the router, and a steady workload
stays silent. Rule time is a ManualClock wherever a rate is involved: a test never
depends on how fast this machine happens to be."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
import sealbus
from sealbus import AlertConfig, audit
from sealbus.alerts import KINDS

SCHEMA = {"type": "object", "properties": {"total": {"type": "number", "maximum": 1000}}, "required": ["total"]}
# The watcher's period: tests call check() themselves, so that what was raised is
# published when it returns.
MANUAL = 3600.0


def shop(
    path: Path | None = None, clock: sealbus.ManualClock | None = None, **config: Any
) -> tuple[sealbus.Router, sealbus.Subscription]:
    router = sealbus.Router(path, clock=clock, alerts=AlertConfig(interval=MANUAL, **config))
    router.schemas.register("orders.placed", SCHEMA)
    router.schemas.register("orders.cancelled", SCHEMA)
    router.schemas.register("payments.refund", SCHEMA)
    security = router.principal("security")
    router.policy.allow_subscribe(security, "sealbus.alert.*")
    watch = router.subscribe(security, "sealbus.alert.*", max_pending=100_000)
    return router, watch


def raised(router: sealbus.Router, watch: sealbus.Subscription) -> list[dict[str, Any]]:
    assert router.alerts is not None
    router.alerts.check()
    msgs = watch.poll(10_000, 0)
    watch.ack(msgs)
    out = []
    for m in msgs:
        assert m.type == f"sealbus.alert.{m.data['kind']}"
        out.append(m.data)
    return out


def test_a_burst_of_refusals_from_one_principal_alerts(tmp_path: Path) -> None:
    router, watch = shop(tmp_path / "log", refused_burst=3)
    checkout = router.principal("checkout")
    plugin = router.principal("plugin")
    router.policy.allow_publish(checkout, "orders.*")
    router.policy.allow_publish(plugin, "orders.placed")
    bad = router.producer(plugin)
    with pytest.raises(sealbus.PolicyDenied):
        bad.publish("payments.refund", {"total": 1})
    with pytest.raises(sealbus.ValidationError):
        bad.publish("orders.placed", {"total": 10_000})
    # Another principal's refusal is not the plugin's burst.
    with pytest.raises(sealbus.ValidationError):
        router.producer(checkout).publish("orders.placed", {"total": 5000})
    assert raised(router, watch) == []
    with pytest.raises(sealbus.PolicyDenied):
        bad.publish_many("orders.cancelled", [{"total": 1}] * 4)
    (alert,) = raised(router, watch)
    assert alert["kind"] == "refused_burst" and alert["subject"] == "plugin"
    assert alert["refusals"] == 3 and alert["rule"] == "PolicyDenied" and alert["count"] == 4
    router.close()
    # Audited: the alert entry names the subject, the publish entry its event.
    trail = list(audit.entries(tmp_path / "log"))
    assert [(e["alert"], e["subject"]) for e in trail if e["kind"] == "alert"] == [("refused_burst", "plugin")]
    pubs = [e for e in trail if e["kind"] == "publish" and e["type"] == "sealbus.alert.refused_burst"]
    assert len(pubs) == 1 and pubs[0]["principal"] == "sealbus.alerts"
    assert audit.verify(tmp_path / "log").ok


def test_backpressure_is_not_a_refusal_burst() -> None:
    router, watch = shop(refused_burst=1)
    p = router.principal("p")
    r = router.principal("r")
    router.policy.allow_publish(p, "orders.*")
    router.policy.allow_subscribe(r, "orders.*")
    router.subscribe(r, "orders.placed", max_pending=1, on_full="reject")
    prod = router.producer(p)
    prod.publish("orders.placed", {"total": 1})
    with pytest.raises(sealbus.Backpressure):
        prod.publish("orders.placed", {"total": 2})
    assert raised(router, watch) == []


def test_a_rate_far_above_the_producers_baseline_alerts() -> None:
    clock = sealbus.ManualClock()
    router, watch = shop(clock=clock)
    checkout = router.principal("checkout")
    router.policy.allow_publish(checkout, "orders.*")
    p = router.producer(checkout)
    batch = [{"total": 1.0}] * 100
    for _ in range(20):  # 2,000 a second for twenty seconds
        for _ in range(20):
            p.publish_many("orders.placed", batch)
            clock.advance(0.05)
    assert raised(router, watch) == []
    for _ in range(250):  # then 25,000 within a second
        p.publish_many("orders.placed", batch)
    (alert,) = raised(router, watch)
    assert alert["kind"] == "rate_spike" and alert["subject"] == "checkout"
    assert alert["baseline"] == pytest.approx(2000, rel=0.05) and alert["events"] > 20_000


def test_a_producer_publishing_a_type_it_never_published_alerts() -> None:
    clock = sealbus.ManualClock()
    router, watch = shop(clock=clock, novelty_after=60.0)
    checkout = router.principal("checkout")
    router.policy.allow_publish(checkout, "*")
    p = router.producer(checkout)
    p.publish("orders.placed", {"total": 1})
    clock.advance(10)
    p.publish("orders.cancelled", {"total": 1})  # still learning its types
    clock.advance(120)
    p.publish("orders.placed", {"total": 1})
    assert raised(router, watch) == []
    p.publish("payments.refund", {"total": 1})
    (alert,) = raised(router, watch)
    assert alert["kind"] == "new_type" and alert["subject"] == "checkout"
    assert alert["type"] == "payments.refund" and alert["known_types"] == 2


def test_a_consumer_falling_behind_alerts_once(tmp_path: Path) -> None:
    router, watch = shop(tmp_path / "log", lag_limit=500)
    p = router.principal("p")
    slow = router.principal("slow")
    router.policy.allow_publish(p, "orders.*")
    router.policy.allow_subscribe(slow, "orders.*")
    router.subscribe(slow, "orders.placed", name="reports", durable=True, max_pending=100)
    prod = router.producer(p)
    prod.publish_many("orders.placed", [{"total": 1.0}] * 400)
    assert raised(router, watch) == []
    prod.publish_many("orders.placed", [{"total": 1.0}] * 400)
    (alert,) = raised(router, watch)
    assert alert["kind"] == "consumer_lag" and alert["subject"] == "reports"
    assert alert["principal"] == "slow" and alert["lag"] > 500 and alert["limit"] == 500
    prod.publish_many("orders.placed", [{"total": 1.0}] * 400)
    assert raised(router, watch) == [], "once, until it catches up"
    router.close()


def _crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


def test_crc32c_reference_vector() -> None:
    assert _crc32c(b"123456789") == 0xE3069283  # RFC 3720 B.4's check value


def test_a_tampered_stored_event_alerts_when_it_fails_to_open(tmp_path: Path) -> None:
    router, _ = shop(tmp_path / "log")
    p = router.principal("p")
    r = router.principal("r")
    router.policy.allow_publish(p, "orders.*")
    router.policy.allow_subscribe(r, "orders.*")
    router.producer(p).publish_many("orders.placed", [{"total": float(i)} for i in range(3)])
    router.close()
    # Someone with write access flips a bit in the middle record's sealed data and
    # fixes both checksums (see log/record.rs for the layout).
    (seg,) = [f for f in (tmp_path / "log").rglob("*") if f.is_file() and f.suffix == ".log"]
    raw = bytearray(seg.read_bytes())
    at, records = 32, []  # after the segment header
    while at + 32 <= len(raw):
        length = int.from_bytes(raw[at + 4 : at + 8], "little")
        records.append((at, length))
        at += 32 + length
    head, length = records[1]
    raw[head + 32 + length - 5] ^= 0x01
    raw[head + 24 : head + 28] = _crc32c(bytes(raw[head + 32 : head + 32 + length])).to_bytes(4, "little")
    raw[head : head + 4] = _crc32c(bytes(raw[head + 4 : head + 32])).to_bytes(4, "little")
    seg.write_bytes(bytes(raw))

    router, watch = shop(tmp_path / "log")
    r = router.principal("r")
    router.policy.allow_subscribe(r, "orders.*")
    sub = router.subscribe(r, "orders.placed", name="audit-reader", durable=True, start="earliest")
    msgs = sub.poll(10, 5.0)
    assert len(msgs) == 3
    with pytest.raises(sealbus.IntegrityError):
        msgs[1].data  # noqa: B018
    assert router.counters()["open_failed"] == 1
    (alert,) = raised(router, watch)
    assert alert["kind"] == "open_failed" and alert["failures"] == 1
    router.close()


def test_the_watcher_publishes_without_being_asked() -> None:
    router = sealbus.Router(alerts=AlertConfig(refused_burst=1, interval=0.01))
    security = router.principal("security")
    router.policy.allow_subscribe(security, "sealbus.alert.*")
    # A pattern on the alert's data: only refusal bursts of the plugin.
    watch = router.subscribe(
        security, "sealbus.alert.*", pattern={"data": {"kind": ["refused_burst"], "subject": ["plugin"]}}
    )
    for who in ("other", "plugin"):
        with pytest.raises(sealbus.PolicyDenied):
            router.producer(router.principal(who)).publish("orders.placed", {"total": 1})
    msgs = watch.poll(10, 30.0)
    assert [m.data["subject"] for m in msgs] == ["plugin"]
    router.close()


def test_alert_types_have_a_schema_and_need_a_grant() -> None:
    router, _ = shop()
    for kind in KINDS:
        assert router.schemas.latest_version(f"sealbus.alert.{kind}") == 1
    nosy = router.principal("nosy")
    with pytest.raises(sealbus.PolicyDenied):
        router.subscribe(nosy, "sealbus.alert.*")
    # Nobody but the router publishes alerts.
    with pytest.raises(sealbus.PolicyDenied):
        router.producer(nosy).publish("sealbus.alert.rate_spike", {"kind": "rate_spike", "subject": "x", "time": 0})


@pytest.mark.parametrize(
    "bad",
    [{"rate_factor": 1.0}, {"window": 0.0}, {"window": -1.0}, {"refused_burst": 0}, {"interval": 0.0}],
)
def test_meaningless_thresholds_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(sealbus.InvalidArgument):
        sealbus.Router(alerts=AlertConfig(**bad))


def _steady(router: sealbus.Router, clock: sealbus.ManualClock, events: int, seed: int) -> None:
    """A shop's day: four producers at their own rates (batch sizes and pauses jittered
    by half either way), a consumer that keeps up, and now and then a refused event:
    some 3,000 events a clock second, so 100,000 events span half a minute."""
    rng = random.Random(seed)
    router.schemas.register("orders.shipped", SCHEMA)
    reader = router.principal("reader")
    router.policy.allow_subscribe(reader, "orders.*")
    sub = router.subscribe(reader, "orders.*", max_pending=50_000)
    producers = []
    for name, rate, types in (
        ("checkout", 2_000, ["orders.placed"]),
        ("support", 200, ["orders.cancelled", "orders.placed"]),
        ("warehouse", 800, ["orders.shipped"]),
        ("refunds", 50, ["payments.refund"]),
    ):
        who = router.principal(name)
        router.policy.allow_publish(who, [*types, "orders.placed"])
        producers.append((router.producer(who), rate, types))
    pool = [json.dumps({"total": float(i % 900)}).encode() for i in range(4096)]
    sent, step = 0, 0.05
    while sent < events:
        for p, rate, types in producers:
            n = max(1, int(rate * step * rng.uniform(0.5, 1.5)))
            start = rng.randrange(len(pool) - n) if n < len(pool) else 0
            chunk = pool[start : start + n]
            offsets = [0]
            for c in chunk:
                offsets.append(offsets[-1] + len(c))
            p.publish_raw(rng.choice(types), b"".join(chunk), offsets)
            sent += len(chunk)
        if rng.random() < 0.002:
            with pytest.raises(sealbus.ValidationError):
                producers[0][0].publish("orders.placed", {"total": 5000})
        sub.poll_batch(100_000, 0).ack()
        clock.advance(step * rng.uniform(0.5, 1.5))


def _steady_run(tmp_path: Path, events: int, spike: bool = False) -> list[dict[str, Any]]:
    clock = sealbus.ManualClock()
    router, watch = shop(tmp_path / "log", clock=clock)
    _steady(router, clock, events, seed=11)
    if spike:  # the planted anomaly: the same workload must then alert
        p = router.producer(router._principals["refunds"])
        for _ in range(10):
            p.publish_many("payments.refund", [{"total": 1.0}] * 1_000)
    got = raised(router, watch)
    router.close()
    assert audit.verify(tmp_path / "log").ok
    return got


def test_a_steady_workload_stays_silent(tmp_path: Path) -> None:
    assert _steady_run(tmp_path, 100_000) == []
    # Long enough for every producer's baseline to be armed.
    assert AlertConfig().rate_warmup_windows + 2 < 100_000 / 3_050


def test_the_steady_workload_with_a_spike_alerts(tmp_path: Path) -> None:
    got = _steady_run(tmp_path, 100_000, spike=True)
    assert [(a["kind"], a["subject"]) for a in got] == [("rate_spike", "refunds")]


@pytest.mark.slow
def test_a_steady_million_events_stay_silent(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    marks = request.config.getoption("-m") or ""
    if "slow" not in marks or "not slow" in marks:
        pytest.skip("long mode: run with -m slow")
    assert _steady_run(tmp_path, 1_000_000) == []
