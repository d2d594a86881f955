"""Size limits: an event over max_event_bytes, or a publish over max_batch_bytes, is
refused with TooLarge (size, limit, index) on every publish path, and nothing of it
is stored or queued."""

from __future__ import annotations

from pathlib import Path

import pytest
import sealbus
from sealbus import Router, TooLarge
from sealbus.e2e import ConsumerKeyPair

SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}


def shop(**kw: object) -> tuple[Router, sealbus.Producer, sealbus.Subscription]:
    router = Router(allow_schemaless=True, **kw)  # type: ignore[arg-type]
    p, c = router.principal("p"), router.principal("c")
    router.policy.allow_publish(p, "t.*")
    router.policy.allow_subscribe(c, "t.*")
    return router, router.producer(p), router.subscribe(c, "t.*")


def nothing_happened(router: Router, sub: sealbus.Subscription) -> None:
    assert router.counters()["published"] == 0
    assert sub.poll(10, 0.0) == []


def test_a_64_mib_event_is_refused_by_default() -> None:
    router, prod, sub = shop()
    big = b"x" * (64 << 20)
    with pytest.raises(TooLarge) as err:
        prod.publish("t.blob", big)
    e = err.value
    assert isinstance(e, sealbus.SealbusError)
    assert (e.size, e.limit, e.index, e.limit_name) == (64 << 20, 1 << 20, 0, "max_event_bytes")
    assert "67108864 bytes" in str(e) and "max_event_bytes = 1048576" in str(e)
    nothing_happened(router, sub)
    # One byte less than the limit of the default router, and exactly the limit, pass.
    assert prod.publish("t.blob", big[: 1 << 20]).routed == 1


def test_every_publish_path_checks_each_event_and_names_it() -> None:
    router, prod, sub = shop(max_event_bytes=100)
    ok, big = {"s": "x" * 80}, {"s": "x" * 100}
    with pytest.raises(TooLarge) as err:
        prod.publish("t.a", big)
    assert (err.value.size, err.value.limit, err.value.index) == (108, 100, 0)
    with pytest.raises(TooLarge) as err:
        prod.publish_many("t.a", [ok, ok, big, ok])
    assert err.value.index == 2
    buffer = b"a" * 50 + b"b" * 101 + b"c" * 10
    with pytest.raises(TooLarge) as err:
        prod.publish_raw("t.a", buffer, [0, 50, 151, 161], kind="binary")
    assert (err.value.size, err.value.index) == (101, 1)
    nothing_happened(router, sub)


def test_the_size_is_checked_before_the_schema() -> None:
    router, prod, sub = shop(max_event_bytes=64)
    router.schemas.register("t.typed", SCHEMA)
    with pytest.raises(TooLarge):
        prod.publish("t.typed", {"n": "not an integer", "pad": "x" * 100})
    assert router.counters()["refused_schema"] == 0
    nothing_happened(router, sub)


def test_a_publish_over_the_batch_limit_is_refused_whole(tmp_path: Path) -> None:
    router = Router(tmp_path / "log", allow_schemaless=True, max_batch_bytes=1000)
    p, c = router.principal("p"), router.principal("c")
    router.policy.allow_publish(p, "t.*")
    router.policy.allow_subscribe(c, "t.*")
    sub = router.subscribe(c, "t.*")
    prod = router.producer(p)
    with pytest.raises(TooLarge) as err:
        prod.publish_many("t.a", [b"x" * 300] * 4)
    assert (err.value.size, err.value.limit, err.value.index) == (1200, 1000, None)
    assert err.value.limit_name == "max_batch_bytes"
    nothing_happened(router, sub)
    assert router.counters()["log_records"] == 0
    assert prod.publish_many("t.a", [b"x" * 250] * 4).count == 4
    router.close()


def test_end_to_end_events_are_checked_before_they_are_sealed() -> None:
    router = Router(allow_schemaless=True, max_event_bytes=200)
    keys = ConsumerKeyPair.generate()
    p = router.principal("p")
    c = router.principal("c", public_key=keys.public_bytes)
    router.policy.require_end_to_end("pay.*")
    router.policy.allow_publish(p, "pay.*")
    router.policy.allow_subscribe(c, "pay.*")
    router.schemas.register("pay.typed", SCHEMA)
    sub = router.subscribe(c, "pay.*", keypair=keys)
    prod = router.producer(p)
    # Invalid as well as too large: the size is what refuses it, before validation.
    with pytest.raises(TooLarge) as err:
        prod.publish_many("pay.typed", [{"n": 1}, {"n": "x" * 300}])
    assert (err.value.index, err.value.limit) == (1, 200)
    nothing_happened(router, sub)
    # Just under the limit, the frame (plaintext + its envelope) still goes through.
    prod.publish("pay.typed", {"n": 1, "pad": "x" * 170})
    (m,) = sub.poll(1, 1.0)
    assert m.data["pad"] == "x" * 170


def test_limits_must_admit_something() -> None:
    with pytest.raises(sealbus.InvalidArgument):
        Router(max_event_bytes=0)
