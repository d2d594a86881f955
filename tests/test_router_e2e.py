"""End-to-end sealing through the router: only consumers allowed to read a type can
open it; the router, its queues and its log hold ciphertext only."""

from __future__ import annotations

from pathlib import Path

import pytest
import sealbus
from sealbus.e2e import ConsumerKeyPair, open_e2e

SECRET = "iban-DE89-3704-0044-0532-0130-00"


def shop(path: Path | None = None) -> tuple[sealbus.Router, dict[str, object]]:
    router = sealbus.Router(path, allow_schemaless=True)
    billing_keys, audit_keys, analytics_keys = (ConsumerKeyPair.generate() for _ in range(3))
    checkout = router.principal("checkout")
    billing = router.principal("billing", public_key=billing_keys.public_bytes)
    audit = router.principal("audit", public_key=audit_keys.public_bytes)
    analytics = router.principal("analytics", public_key=analytics_keys.public_bytes)
    router.policy.require_end_to_end("payments.*")
    router.policy.allow_publish(checkout, ["payments.*", "orders.*"])
    router.policy.allow_subscribe(billing, "payments.*")
    router.policy.allow_subscribe(audit, "payments.captured")
    router.policy.allow_subscribe(analytics, "orders.*")
    return router, {
        "checkout": checkout,
        "billing": billing,
        "audit": audit,
        "analytics": analytics,
        "billing_keys": billing_keys,
        "audit_keys": audit_keys,
        "analytics_keys": analytics_keys,
    }


def test_only_entitled_consumers_open(tmp_path: Path) -> None:
    router, p = shop(tmp_path / "log")
    billing = router.subscribe(p["billing"], "payments.*", keypair=p["billing_keys"])  # type: ignore[arg-type]
    audit = router.subscribe(p["audit"], "payments.captured", keypair=p["audit_keys"])  # type: ignore[arg-type]
    prod = router.producer(p["checkout"])  # type: ignore[arg-type]
    prod.publish_many("payments.captured", [{"iban": SECRET, "amount": a} for a in (10, 20)], subject="pay-1")
    got = billing.poll(10, 0.2)
    assert [m.data["amount"] for m in got] == [10, 20]
    assert [m.data["amount"] for m in audit.poll(10, 0.2)] == [10, 20]
    # What the router queued and delivered is ciphertext; the event's attributes are clear.
    frame = got[0].event.data_bytes
    assert SECRET.encode() not in frame
    assert got[0].event.subject == "pay-1"
    assert got[0].event.datacontenttype == "application/vnd.sealbus.e2e+json"
    # Analytics may not read payments: it gets no wrapped key, even holding the frame.
    with pytest.raises(sealbus.KeyNotFound):
        open_e2e(
            frame,
            [0, len(frame)],
            keypair=p["analytics_keys"],  # type: ignore[arg-type]
            recipient_id="analytics",
            event_ids=[got[0].id],
            event_type="payments.captured",
            source="checkout",
            schema_version=0,
        )
    with pytest.raises(sealbus.PolicyDenied):
        router.subscribe(p["analytics"], "payments.*")  # type: ignore[arg-type]
    router.close()
    disk = b"".join(f.read_bytes() for f in (tmp_path / "log").rglob("*") if f.is_file())
    assert SECRET.encode() not in disk


def test_a_consumer_without_its_key_pair_cannot_open() -> None:
    router, p = shop()
    sub = router.subscribe(p["billing"], "payments.*")  # type: ignore[arg-type]
    router.producer(p["checkout"]).publish("payments.refunded", {"iban": SECRET})  # type: ignore[arg-type]
    (m,) = sub.poll(1, 0.2)
    with pytest.raises(sealbus.KeyNotFound):
        _ = m.data
    assert m.ack()


def test_wrong_key_pair_fails_integrity() -> None:
    router, p = shop()
    sub = router.subscribe(p["billing"], "payments.*", keypair=ConsumerKeyPair.generate())  # type: ignore[arg-type]
    router.producer(p["checkout"]).publish("payments.refunded", {"iban": SECRET})  # type: ignore[arg-type]
    (m,) = sub.poll(1, 0.2)
    with pytest.raises(sealbus.IntegrityError):
        _ = m.data


def test_content_patterns_on_sealed_data_are_refused() -> None:
    router, p = shop()
    with pytest.raises(sealbus.PatternError) as e:
        router.subscribe(p["billing"], "payments.*", pattern={"data": {"amount": [{"numeric": [">", 5]}]}})  # type: ignore[arg-type]
    assert e.value.path == "data"
    assert "sealed end to end" in str(e.value)
    sub = router.subscribe(
        p["billing"],  # type: ignore[arg-type]
        "payments.*",
        pattern={"subject": [{"prefix": "vip-"}]},
        keypair=p["billing_keys"],  # type: ignore[arg-type]
    )
    prod = router.producer(p["checkout"])  # type: ignore[arg-type]
    prod.publish("payments.captured", {"amount": 1}, subject="vip-7")
    prod.publish("payments.captured", {"amount": 2}, subject="std-8")
    assert [m.data["amount"] for m in sub.poll(10, 0.2)] == [1]


def test_no_recipient_refuses_before_anything_is_stored() -> None:
    router, p = shop()
    router.policy.require_end_to_end("secrets.*")
    router.policy.allow_publish(p["checkout"], "secrets.*")  # type: ignore[arg-type]
    with pytest.raises(sealbus.SealError):
        router.producer(p["checkout"]).publish("secrets.x", {"a": 1})  # type: ignore[arg-type]
    with pytest.raises(sealbus.InvalidEvent):
        router.producer(p["checkout"]).publish("payments.captured", b"raw bytes")  # type: ignore[arg-type]
    assert router.counters()["published"] == 0


def test_clear_frames_cannot_be_smuggled_into_end_to_end_types() -> None:
    router, p = shop()
    who: sealbus.Principal = p["checkout"]  # type: ignore[assignment]
    with pytest.raises(sealbus.InvalidEvent):
        router._core.publish(who.name, who._token, "payments.captured", b'{"a":1}', [0, 7], "json")
    with pytest.raises(sealbus.InvalidEvent):
        router._core.publish(who.name, who._token, "payments.captured", b"junk", [0, 4], "e2e", ids=["x"])


def test_end_to_end_data_is_validated_on_both_sides() -> None:
    router, p = shop()
    router.schemas.register(
        "payments.captured",
        {"type": "object", "required": ["amount"], "properties": {"amount": {"type": "number", "minimum": 0}}},
    )
    who: sealbus.Principal = p["checkout"]  # type: ignore[assignment]
    sub = router.subscribe(p["billing"], "payments.*", keypair=p["billing_keys"])  # type: ignore[arg-type]
    # An honest producer hears about bad data before sealing.
    with pytest.raises(sealbus.ValidationError) as e:
        router.producer(who).publish_many("payments.captured", [{"amount": 1}, {"amount": -5}])
    assert e.value.index == 1
    # A compromised producer seals bad data itself; the router cannot see it, the
    # consumer refuses it after opening.
    from sealbus.e2e import seal_e2e

    ids = sealbus._sealbus.new_event_ids(1)
    frames, offs = seal_e2e(
        b'{"amount":-5}',
        [0, 13],
        recipients=dict(router._core.recipients("payments.captured")),
        event_ids=ids,
        event_type="payments.captured",
        source="checkout",
        schema_version=0,
    )
    router._core.publish(
        who.name, who._token, "payments.captured", bytes(frames), [int(o) for o in offs], "e2e", ids=ids
    )
    (m,) = sub.poll(10, 0.2)
    with pytest.raises(sealbus.ValidationError) as bad:
        _ = m.data
    assert "/amount" in bad.value.path
    assert m.nack()


def test_forbidden_end_to_end_publish_is_refused_and_counted() -> None:
    router, _ = shop()
    intruder = router.principal("intruder")
    with pytest.raises(sealbus.PolicyDenied):
        router.producer(intruder).publish("payments.captured", {"amount": 1})
    assert router.counters()["refused_policy"] == 1
