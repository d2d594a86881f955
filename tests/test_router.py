"""Router behaviour: policy, principals, envelopes, delivery, backpressure."""

from __future__ import annotations

import asyncio
import ctypes
import gc
import itertools
import json
import threading
import time

import pytest
import sealbus
from sealbus import Router


def shop(router: Router, **sub_kw: object) -> tuple[sealbus.Producer, sealbus.Subscription]:
    checkout = router.principal("checkout")
    shipping = router.principal("shipping")
    router.policy.allow_publish(checkout, "orders.*")
    router.policy.allow_subscribe(shipping, "orders.*")
    sub = router.subscribe(shipping, "orders.*", **sub_kw)  # type: ignore[arg-type]
    return router.producer(checkout), sub


# ---- policy -------------------------------------------------------------------------


def test_default_deny_publish(router: Router) -> None:
    p = router.principal("checkout")
    with pytest.raises(sealbus.PolicyDenied) as e:
        router.producer(p).publish("orders.placed", {})
    assert e.value.principal == "checkout"
    assert e.value.event_type == "orders.placed"
    assert e.value.action == "publish"
    assert "checkout may not publish orders.placed" in str(e.value)


def test_publish_outside_grant_refused(router: Router) -> None:
    producer, sub = shop(router)
    with pytest.raises(sealbus.PolicyDenied):
        producer.publish("payments.captured", {"x": 1})
    assert sub.poll(10) == []
    assert router.counters()["refused_policy"] == 1


def test_default_deny_subscribe_and_no_widening(router: Router) -> None:
    analytics = router.principal("analytics")
    with pytest.raises(sealbus.PolicyDenied):
        router.subscribe(analytics, "orders.placed")
    router.policy.allow_subscribe(analytics, "orders.placed")
    router.subscribe(analytics, "orders.placed")
    for wider in ("orders.*", "*", "orders.place*"):
        with pytest.raises(sealbus.PolicyDenied) as e:
            router.subscribe(analytics, wider)
        assert e.value.event_type == wider
    router.policy.allow_subscribe(analytics, "orders.*")
    router.subscribe(analytics, "orders.eu.*")


def test_principal_cannot_be_forged_by_name(router: Router) -> None:
    router.principal("checkout")
    router.policy.allow_publish("checkout", "orders.*")
    with pytest.raises(sealbus.PolicyDenied):
        router.producer("checkout").publish("orders.placed", {})  # type: ignore[arg-type]
    forged = sealbus.Principal("checkout", b"\0" * 32, 0)
    with pytest.raises(sealbus.PolicyDenied):
        router.producer(forged).publish("orders.placed", {})
    with pytest.raises(sealbus.InvalidArgument):
        router.principal("checkout")  # a name is registered once
    other = router.principal("other")
    token = other._token
    assert len(token) >= 16
    shown = repr(other) + str(other) + repr(getattr(other, "__dict__", None))
    for form in (repr(token)[2:-1], token.hex(), token.hex().upper(), ", ".join(map(str, token))):
        assert form not in shown, "the principal's token shows in its repr"


def test_principal_from_another_router_is_refused() -> None:
    a, b = Router(allow_schemaless=True), Router(allow_schemaless=True)
    pa = a.principal("checkout")
    b.principal("checkout")
    b.policy.allow_publish("checkout", "*")
    with pytest.raises(sealbus.PolicyDenied):
        b.producer(pa).publish("orders.placed", {})


def test_revoking_subscribe_stops_delivery(router: Router) -> None:
    producer, sub = shop(router)
    producer.publish("orders.placed", {"n": 1})
    router.policy.revoke_subscribe("shipping", "orders.*")
    producer.publish("orders.placed", {"n": 2})
    assert [m.data["n"] for m in sub.poll(10)] == [1]


def test_types_and_globs_route(router: Router) -> None:
    checkout = router.principal("checkout")
    a, b = router.principal("a"), router.principal("b")
    router.policy.allow_publish(checkout, "*")
    router.policy.allow_subscribe(a, "orders.*")
    router.policy.allow_subscribe(b, ["orders.placed", "payments.*"])
    sa = router.subscribe(a, "orders.*")
    sb = router.subscribe(b, ["orders.placed", "payments.*"])
    p = router.producer(checkout)
    for t in ("orders.placed", "orders.shipped", "payments.captured", "users.created"):
        p.publish(t, {"t": t})
    assert [m.type for m in sa.poll(10)] == ["orders.placed", "orders.shipped"]
    assert [m.type for m in sb.poll(10)] == ["orders.placed", "payments.captured"]
    assert router.counters()["unrouted"] == 1


# ---- envelope -----------------------------------------------------------------------


def test_envelope_attributes_and_json_round_trip(router: Router) -> None:
    producer, sub = shop(router)
    tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    r = producer.publish("orders.placed", {"total": 42.5, "note": "café"}, subject="o-1", traceparent=tp)
    (m,) = sub.poll(1)
    e = m.event
    assert (e.id, e.type, e.source, e.specversion) == (r.id, "orders.placed", "checkout", "1.0")
    assert e.subject == "o-1" and e.traceparent == tp and e.datacontenttype == "application/json"
    assert e.time == r.time and e.time.endswith("Z")
    doc = json.loads(e.to_json())
    assert doc["data"] == {"total": 42.5, "note": "café"}
    back = sealbus.Event.from_json(e.to_json())
    assert back == e and hash(back) == hash(e)
    assert "café" not in repr(e) and "42.5" not in repr(m), "reprs never show data"


def test_binary_data(router: Router) -> None:
    producer, sub = shop(router)
    producer.publish("orders.placed", b"\x00\xffraw")
    (m,) = sub.poll(1)
    assert m.data == b"\x00\xffraw"
    assert m.event.datacontenttype == "application/octet-stream"
    assert json.loads(m.event.to_json())["data_base64"] == "AP9yYXc="


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"traceparent": "00-abc"}, "traceparent"),
        ({"subject": ""}, "subject"),
        ({"subject": "a\nb"}, "subject"),
    ],
)
def test_bad_attributes_refused(router: Router, kwargs: dict[str, str], field: str) -> None:
    producer, sub = shop(router)
    with pytest.raises(sealbus.InvalidEvent) as e:
        producer.publish("orders.placed", {}, **kwargs)
    assert e.value.field == field
    assert sub.poll(10) == []


def test_unknown_attribute_and_bad_type_refused(router: Router) -> None:
    producer, _ = shop(router)
    with pytest.raises(sealbus.InvalidArgument):
        producer.publish("orders.placed", {}, colour="red")
    with pytest.raises(sealbus.InvalidEvent) as e:
        producer.publish("orders placed", {})
    assert e.value.field == "type"


def test_unserialisable_data_refused(router: Router) -> None:
    producer, sub = shop(router)
    with pytest.raises(sealbus.InvalidEvent):
        producer.publish("orders.placed", {"x": float("nan")})
    with pytest.raises(sealbus.InvalidEvent):
        producer.publish_many("orders.placed", [{"a": 1}, {"b": object()}])
    assert sub.poll(10) == []


def test_cloudevents_parse_refusals() -> None:
    with pytest.raises(sealbus.InvalidEvent) as e:
        sealbus.Event.from_json('{"specversion":"1.0","id":"1","source":"s"}')
    assert e.value.field == "type"
    with pytest.raises(sealbus.InvalidEvent):
        sealbus.Event.from_json("not json")


# ---- schemas ------------------------------------------------------------------------


def test_schemaless_type_refused_by_default() -> None:
    router = Router()
    producer, sub = shop(router)
    with pytest.raises(sealbus.SchemaNotFound) as e:
        producer.publish("orders.placed", {"total": 1})
    assert e.value.event_type == "orders.placed"
    assert sub.poll(10) == []


def test_invalid_event_in_batch_refuses_whole_batch() -> None:
    router = Router()
    router.schemas.register(
        "orders.placed",
        {"type": "object", "required": ["total"], "properties": {"total": {"type": "number"}}},
    )
    producer, sub = shop(router)
    batch = [{"total": 1}, {"total": "lots"}, {"total": 3}]
    with pytest.raises(sealbus.ValidationError) as e:
        producer.publish_many("orders.placed", batch)
    assert e.value.index == 1
    assert "/total" in e.value.path
    assert sub.poll(10) == [], "a refused batch leaves no trace in any queue"
    producer.publish_many("orders.placed", [batch[0], batch[2]])
    assert [m.event.schema_version for m in sub.poll(10)] == [1, 1]


def test_binary_data_refused_for_schema_type() -> None:
    router = Router()
    router.schemas.register("orders.placed", {"type": "object"})
    producer, _ = shop(router)
    with pytest.raises(sealbus.ValidationError):
        producer.publish("orders.placed", b"raw")


# ---- delivery -----------------------------------------------------------------------


def test_ack_timeout_redelivers_then_dead_letters() -> None:
    clock = sealbus.ManualClock()
    router = Router(allow_schemaless=True, clock=clock)
    producer, sub = shop(router, ack_timeout=5.0, max_deliveries=2)
    producer.publish("orders.placed", {"n": 1})
    (m1,) = sub.poll(10)
    assert m1.attempt == 1
    clock.advance(4.9)
    assert sub.poll(10) == []
    clock.advance(0.2)
    (m2,) = sub.poll(10)
    assert (m2.attempt, m2.id) == (2, m1.id)
    assert not m1.ack(), "a stale delivery cannot be acked"
    clock.advance(5.0)
    assert sub.poll(10) == []
    dead = sub.dead_letters()
    assert [(e.id, attempts, reason) for e, attempts, reason in dead] == [(m1.id, 2, "ack timeout")]
    assert sub.stats()["dead_lettered"] == 1


def test_nack_redelivers_in_order(router: Router) -> None:
    producer, sub = shop(router, max_deliveries=3)
    producer.publish_many("orders.placed", [{"n": i} for i in range(3)])
    first = sub.poll(1)
    assert first[0].nack()
    assert [m.data["n"] for m in sub.poll(10)] == [0, 1, 2]


def test_batch_ack(router: Router) -> None:
    producer, sub = shop(router)
    producer.publish_many("orders.placed", [{"n": i} for i in range(100)])
    msgs = sub.poll(1000)
    assert sub.ack(msgs) == 100
    assert sub.ack(msgs) == 0
    assert sub.stats()["in_flight"] == 0


def test_poll_waits_with_gil_released(router: Router) -> None:
    producer, sub = shop(router)
    got: list[sealbus.Message] = []
    t = threading.Thread(target=lambda: got.extend(sub.poll(1, timeout=5.0)))
    t.start()
    time.sleep(0.05)
    producer.publish("orders.placed", {"n": 1})  # runs while the poller waits
    t.join(5)
    assert [m.data for m in got] == [{"n": 1}]


@pytest.mark.parametrize("busy_poll", [0.5, 0.001])
def test_busy_poll_sees_events_published_while_it_spins_or_sleeps(router: Router, busy_poll: float) -> None:
    # 0.5 s: the event lands during the spin; 1 ms: after it, while the poll sleeps.
    producer, sub = shop(router, busy_poll=busy_poll)
    got: list[sealbus.Message] = []
    t = threading.Thread(target=lambda: got.extend(sub.poll(1, timeout=5.0)))
    t.start()
    time.sleep(0.05)
    producer.publish("orders.placed", {"n": 1})
    t.join(5)
    assert not t.is_alive()
    assert [m.data for m in got] == [{"n": 1}]


def test_busy_poll_keeps_the_timeout_and_stops_on_close(router: Router) -> None:
    _, sub = shop(router, busy_poll=600.0)
    # The spin is bounded by the timeout: unbounded, this poll would spin for 10 minutes.
    polled: list[list[sealbus.Message]] = []
    t = threading.Thread(target=lambda: polled.append(sub.poll(1, timeout=0.05)))
    t.start()
    t.join(60)
    assert not t.is_alive() and polled == [[]]
    errors: list[BaseException] = []

    def poll() -> None:
        try:
            sub.poll(1, timeout=30.0)
        except sealbus.Closed as exc:
            errors.append(exc)

    t = threading.Thread(target=poll)
    t.start()
    time.sleep(0.05)
    sub.close()
    t.join(5)
    assert not t.is_alive() and len(errors) == 1


def test_busy_poll_must_be_non_negative(router: Router) -> None:
    with pytest.raises(ValueError, match="busy_poll"):
        shop(router, busy_poll=-1.0)


async def test_async_iteration(router: Router) -> None:
    producer, sub = shop(router)
    producer.publish_many("orders.placed", [{"n": i} for i in range(5)])
    seen = []
    async for msg in sub:
        seen.append(msg.data["n"])
        msg.ack()
        if len(seen) == 5:
            break
    assert seen == [0, 1, 2, 3, 4]
    await asyncio.sleep(0)


def test_handler_acks_and_nacks(router: Router) -> None:
    producer, sub = shop(router, max_deliveries=2)
    seen: list[int] = []
    done = threading.Event()

    def handle(msg: sealbus.Message) -> None:
        seen.append(msg.data["n"])
        if len(seen) >= 4:
            done.set()
        if msg.data["n"] == 1:
            raise RuntimeError("boom")

    sub.handle(handle)
    producer.publish_many("orders.placed", [{"n": 0}, {"n": 1}, {"n": 2}])
    assert done.wait(30)
    # The handler's second failure dead-letters n=1 once it has returned: wait for that.
    deadline = time.monotonic() + 30
    while sub.stats()["dead_lettered"] < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    sub.close()
    assert sorted(seen) == [0, 1, 1, 2]
    assert [e.data for e, _, _ in sub.dead_letters()] == [{"n": 1}]


def test_closed_subscription(router: Router) -> None:
    producer, sub = shop(router)
    sub.close()
    with pytest.raises(sealbus.Closed):
        sub.poll(1)
    assert producer.publish("orders.placed", {}).routed == 0


# ---- backpressure -------------------------------------------------------------------


def test_reject_hands_events_back_and_is_atomic(router: Router) -> None:
    producer, sub = shop(router, max_pending=3, on_full="reject")
    producer.publish_many("orders.placed", [{"n": 0}, {"n": 1}])
    batch = [{"n": 2}, {"n": 3}]
    with pytest.raises(sealbus.Backpressure) as e:
        producer.publish_many("orders.placed", batch)
    assert e.value.events == batch and e.value.accepted == 0
    assert e.value.subscription == sub.name
    assert [m.data["n"] for m in sub.poll(10)] == [0, 1]


def test_drop_oldest_counts_and_bounds(router: Router) -> None:
    producer, sub = shop(router, max_pending=10, on_full="drop_oldest")
    producer.publish_many("orders.placed", [{"n": i} for i in range(25)])
    assert sub.stats()["dropped"] == 15
    assert [m.data["n"] for m in sub.poll(100)] == list(range(15, 25))


def test_block_waits_for_room_then_times_out(router: Router) -> None:
    producer, sub = shop(router, max_pending=2, on_full="block")
    producer.publish_many("orders.placed", [{"n": 0}, {"n": 1}])
    with pytest.raises(sealbus.Backpressure) as e:
        producer.publish("orders.placed", {"n": 2}, timeout=0.2)
    assert e.value.events == [{"n": 2}]
    assert sub.stats()["ready"] == 2, "the refused event was not queued"

    # Without a timeout it waits for room, however long: only the ack lets it through.
    published = threading.Event()
    t = threading.Thread(target=lambda: (producer.publish("orders.placed", {"n": 2}), published.set()))
    t.start()
    assert not published.wait(0.2), "a publish into a full block queue returned before any room was made"
    sub.ack(sub.poll(1))
    assert published.wait(30)
    t.join()
    assert [m.data["n"] for m in sub.poll(10)] == [1, 2]


def test_block_batch_larger_than_queue_hands_back_the_rest(router: Router) -> None:
    producer, _sub = shop(router, max_pending=3, on_full="block")
    batch = [{"n": i} for i in range(5)]
    with pytest.raises(sealbus.Backpressure) as e:
        producer.publish_many("orders.placed", batch, timeout=0.05)
    assert e.value.accepted == 3
    assert e.value.events == batch[3:]
    assert len(e.value.receipts) == 3


def test_slow_consumer_does_not_stall_others(router: Router) -> None:
    checkout = router.principal("checkout")
    router.policy.allow_publish(checkout, "orders.*")
    slow, fast = router.principal("slow"), router.principal("fast")
    for p in (slow, fast):
        router.policy.allow_subscribe(p, "orders.*")
    s_slow = router.subscribe(slow, "orders.*", max_pending=100, on_full="drop_oldest")
    s_fast = router.subscribe(fast, "orders.*", max_pending=100, on_full="reject")
    producer = router.producer(checkout)
    got = 0
    for i in range(50):
        producer.publish_many("orders.placed", [{"i": i, "j": j} for j in range(50)])
        msgs = s_fast.poll(1000)
        got += s_fast.ack(msgs)
    assert got == 2500
    st = s_slow.stats()
    assert st["ready"] == 100 and st["dropped"] == 2400, "the slow queue stays bounded"


def test_poll_batch_one_buffer(router: Router) -> None:
    producer, sub = shop(router)
    producer.publish_many("orders.placed", [{"n": i} for i in range(10)])
    batch = sub.poll_batch(4)
    assert len(batch) == 4
    offs = batch.offsets
    assert [json.loads(bytes(batch.buffer[a:b])) for a, b in itertools.pairwise(offs)] == [{"n": i} for i in range(4)]
    assert batch[-1].data == {"n": 3}
    with pytest.raises(IndexError):
        batch[4]
    assert batch.ack() == 4
    assert batch.ack() == 0
    rest = sub.poll_batch(100)
    assert len(rest) == 6 and rest.nack() == 6
    assert len(sub.poll_batch(100, timeout=0)) == 6


def test_poll_batch_buffer_is_a_read_only_view_that_outlives_the_batch(router: Router) -> None:
    """The batch's data is lent to Python, not copied: a read-only memoryview that
    keeps the data alive after the batch is gone, and whose owner's repr shows no
    plaintext."""
    producer, sub = shop(router)
    producer.publish_many("orders.placed", [{"secret": f"s{i}"} for i in range(3)])
    batch = sub.poll_batch(3)
    view = batch.buffer
    expected = bytes(view)
    assert view.readonly and view.format == "B" and view.nbytes == batch.offsets[-1]
    with pytest.raises(TypeError):
        view[0:1] = b"x"
    with pytest.raises((BufferError, TypeError)):
        (ctypes.c_char * 1).from_buffer(view)  # asks for a writable buffer
    assert "secret" not in repr(view.obj) and str(len(expected)) in repr(view.obj)
    del batch
    gc.collect()
    assert bytes(view) == expected and b"s2" in expected


def test_schemaless_json_data_must_be_utf8_and_json(router: Router) -> None:
    # The matcher trusts published data (it skips values no pattern references), so
    # the router checks it first, pattern or not.
    producer, sub = shop(router, pattern={"data": {"n": [1]}})
    for bad, why in ((b'{"n": 1, "s": "\xff"}', "UTF-8"), (b'{"n": 1, "s": [}', "not JSON")):
        with pytest.raises(sealbus.ValidationError, match=why):
            producer.publish_raw("orders.placed", bad, [0, len(bad)])
    good = b'{"s": {"deep": ["]", "}", "\\"", 1e400]}, "n": 1}'
    producer.publish_raw("orders.placed", good, [0, len(good)])
    assert [m.data["n"] for m in sub.poll(10)] == [1]


@pytest.mark.parametrize("mixed", [False, True], ids=["data-only patterns", "with an attribute pattern"])
def test_routing_agrees_with_test_event_pattern_on_the_envelope(mixed: bool) -> None:
    """Patterns that look only inside ``data`` are matched against the data itself
    (the attributes are not scanned); that must decide as the whole envelope does,
    for object data and for every other kind (arrays, scalars, binary)."""
    router = Router(allow_schemaless=True)
    checkout, reader = router.principal("checkout"), router.principal("reader")
    router.policy.allow_publish(checkout, "orders.*")
    router.policy.allow_subscribe(reader, "orders.*")
    patterns: list[dict[str, object]] = [
        {"data": {"total": [{"numeric": [">", 10]}]}},
        {"data": {"items": {"sku": [{"prefix": "AB"}]}, "currency": ["USD"]}},
        {"data": {"coupon": [{"exists": False}]}},
        {"data": {"$or": [{"a": [1]}, {"b": {"c": [{"anything-but": "x"}]}}]}},
    ]
    if mixed:
        patterns.append({"source": ["checkout"], "data": {"a": [1]}})
    subs = [router.subscribe(reader, "orders.*", pattern=p) for p in patterns]
    datas: list[object] = [
        {"total": 15, "currency": "USD", "items": [{"sku": "ABC"}, {"sku": "X"}]},
        {"total": 5, "coupon": "Y", "a": 1},
        {"b": {"c": "x"}, "items": {"sku": "ABZ"}, "currency": "EUR"},
        {"b": {"c": "z"}},
        [{"total": 50}],
        42,
        "text",
        None,
        {},
    ]
    producer = router.producer(checkout)
    for d in datas:
        producer.publish("orders.placed", d)
    producer.publish("orders.placed", b"\x01binary")
    for p, sub in zip(patterns, subs, strict=True):
        got = [m.event for m in sub.poll(100, 0)]
        got_ids = {e.id for e in got}
        for m in got:
            m_doc = json.loads(m.to_json())
            assert sealbus.test_event_pattern(p, {k: v for k, v in m_doc.items() if k != "data_base64"})
        # Everything not delivered must not match either (binary data is not matched:
        # its envelope has no `data`).
        envelopes = [{"source": "checkout", "type": "orders.placed", "data": d} for d in datas]
        envelopes.append({"source": "checkout", "type": "orders.placed"})
        assert len(got_ids) == sum(sealbus.test_event_pattern(p, env) for env in envelopes), p
