"""Selector: one thread waits on several subscriptions at once."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import sealbus
from sealbus import Router, Selector
from sealbus.e2e import ConsumerKeyPair


def three(router: Router, **sub_kw: object) -> tuple[sealbus.Producer, list[sealbus.Subscription]]:
    """A producer of ``orders.*`` and three consumers: all orders, ``orders.placed``,
    and orders over 100."""
    checkout = router.principal("checkout")
    router.policy.allow_publish(checkout, "orders.*")
    subs = []
    for name, types, pattern in (
        ("audit", "orders.*", None),
        ("shipping", "orders.placed", None),
        ("fraud", "orders.*", {"data": {"total": [{"numeric": [">", 100]}]}}),
    ):
        who = router.principal(name)
        router.policy.allow_subscribe(who, "orders.*")
        subs.append(router.subscribe(who, types, pattern=pattern, **sub_kw))  # type: ignore[arg-type]
    return router.producer(checkout), subs


def names(ready: list[tuple[sealbus.Subscription, sealbus.DeliveryBatch]]) -> list[str]:
    return [s.principal for s, _ in ready]


def test_each_subscription_gets_its_own_events(router: Router) -> None:
    producer, subs = three(router)
    sel = Selector(subs)
    assert sel.poll_batch() == []
    producer.publish("orders.shipped", {"total": 50})
    ready = sel.poll_batch(timeout=1.0)
    assert names(ready) == ["audit"]  # only subscriptions with events are listed
    assert ready[0][1].ack() == 1
    producer.publish_many("orders.placed", [{"total": 500}, {"total": 5}])
    ready = sel.poll_batch(timeout=1.0)
    assert names(ready) == ["audit", "shipping", "fraud"]
    got = {s.principal: b for s, b in ready}
    assert len(got["audit"]) == 2 and len(got["shipping"]) == 2 and len(got["fraud"]) == 1
    assert got["fraud"][0].data == {"total": 500}
    assert all(b.ack() == len(b) for b in got.values())
    assert [s.stats()["acked"] for s in subs] == [3, 2, 1]


def test_max_messages_is_per_subscription(router: Router) -> None:
    producer, subs = three(router)
    producer.publish_many("orders.placed", [{"total": 1} for _ in range(10)])
    sel = Selector(subs[:2])
    first = sel.poll_batch(4, timeout=0)
    assert [len(b) for _, b in first] == [4, 4]
    rest = sel.poll_batch(100, timeout=0)
    assert [len(b) for _, b in rest] == [6, 6]


def test_messages_form_and_acks(router: Router) -> None:
    producer, subs = three(router, ack_timeout=60.0)
    producer.publish("orders.placed", {"total": 200})
    ready = Selector(subs).poll(timeout=1.0)
    assert [(s.principal, [m.data for m in msgs]) for s, msgs in ready] == [
        ("audit", [{"total": 200}]),
        ("shipping", [{"total": 200}]),
        ("fraud", [{"total": 200}]),
    ]
    for s, msgs in ready:
        assert s.ack(msgs) == 1


@pytest.mark.parametrize("busy_poll", [0.0, 0.001, 0.5])
def test_a_waiting_selector_wakes_for_any_subscription(router: Router, busy_poll: float) -> None:
    # 0: asleep at once; 1 ms: the event lands after the spin; 0.5 s: during it.
    producer, subs = three(router)
    sel = Selector(subs, busy_poll=busy_poll)
    got: list[list[str]] = []
    # A timeout far past the join's: only the event can end this poll in time.
    t = threading.Thread(target=lambda: got.append(names(sel.poll_batch(timeout=600.0))), daemon=True)
    t.start()
    time.sleep(0.05)
    producer.publish("orders.cancelled", {"total": 101})  # audit and fraud, not shipping
    t.join(60)
    woken = not t.is_alive()
    for s in subs:
        s.close()  # a poll that was not woken ends here, not ten minutes later
    assert woken, "the selector slept through the event"
    assert got == [["audit", "fraud"]]


def test_timeout_and_nothing(router: Router) -> None:
    _, subs = three(router)
    sel = Selector(subs, busy_poll=600.0)
    # The spin is bounded by the timeout: unbounded, this poll would spin for 10 minutes.
    got: list[object] = []
    t = threading.Thread(target=lambda: got.append(sel.poll_batch(timeout=0.05)))
    t.start()
    t.join(60)
    assert not t.is_alive() and got == [[]]


def test_closed_subscriptions_are_passed_over_until_all_are_closed(router: Router) -> None:
    producer, subs = three(router)
    sel = Selector(subs)
    subs[0].close()
    producer.publish("orders.placed", {"total": 1})
    assert names(sel.poll_batch(timeout=1.0)) == ["shipping"]
    errors: list[BaseException] = []

    def wait() -> None:
        try:
            sel.poll_batch(timeout=30.0)
        except sealbus.Closed as exc:
            errors.append(exc)

    t = threading.Thread(target=wait)
    t.start()
    time.sleep(0.05)
    subs[1].close()
    subs[2].close()  # the last one wakes the sleeping selector
    t.join(5)
    assert not t.is_alive() and len(errors) == 1
    assert "every subscription" in str(errors[0])


def test_redelivery_after_the_ack_timeout_wakes_the_selector(router: Router) -> None:
    producer, subs = three(router, ack_timeout=0.1)
    sel = Selector(subs[1:2])
    producer.publish("orders.placed", {"total": 1})
    [(_, first)] = sel.poll_batch(timeout=10.0)  # not acked
    assert first[0].attempt == 1
    [(_, again)] = sel.poll_batch(timeout=30.0)
    assert again[0].attempt == 2 and again[0].id == first[0].id


def test_refused_selectors() -> None:
    a, b = Router(allow_schemaless=True), Router(allow_schemaless=True)
    _, subs_a = three(a)
    _, subs_b = three(b)
    with pytest.raises(ValueError, match="at least one"):
        Selector([])
    with pytest.raises(ValueError, match="another router"):
        Selector([subs_a[0], subs_b[0]])
    with pytest.raises(ValueError, match="given twice"):
        Selector([subs_a[0], subs_a[0]])
    with pytest.raises(ValueError, match="busy_poll"):
        Selector(subs_a, busy_poll=-1.0)
    sel = Selector(subs_a)
    with sel:
        pass
    with pytest.raises(sealbus.Closed, match="closed"):
        sel.poll_batch()


def test_dropped_selector_stops_watching(router: Router) -> None:
    producer, subs = three(router)
    for _ in range(100):
        Selector(subs)  # each registers on the subscriptions and must unregister
    producer.publish("orders.placed", {"total": 1})
    assert [len(s.poll_batch(10, 0.0)) for s in subs] == [1, 1, 0]


def test_durable_subscriptions_catch_up_through_a_selector(tmp_path: Path) -> None:
    router = Router(tmp_path / "log", allow_schemaless=True)
    checkout = router.principal("checkout")
    router.policy.allow_publish(checkout, "orders.*")
    producer = router.producer(checkout)
    subs = []
    for name in ("audit", "shipping"):
        who = router.principal(name)
        router.policy.allow_subscribe(who, "orders.*")
        subs.append(router.subscribe(who, "orders.*", name=name, durable=True, max_pending=4))
    producer.publish_many("orders.placed", [{"n": i} for i in range(10)])
    sel = Selector(subs)
    seen: dict[str, list[int]] = {"audit": [], "shipping": []}
    while min(len(v) for v in seen.values()) < 10:
        ready = sel.poll_batch(3, timeout=2.0)
        assert ready, "the selector stopped delivering"
        for s, b in ready:
            seen[s.principal] += [b[i].data["n"] for i in range(len(b))]
            b.ack()
    assert seen == {"audit": list(range(10)), "shipping": list(range(10))}


def test_end_to_end_events_are_opened_for_their_consumer() -> None:
    router = Router(allow_schemaless=True)
    keys = ConsumerKeyPair.generate()
    checkout = router.principal("checkout")
    billing = router.principal("billing", public_key=keys.public_bytes)
    router.policy.require_end_to_end("payments.*")
    router.policy.allow_publish(checkout, "payments.*")
    router.policy.allow_subscribe(billing, "payments.*")
    sub = router.subscribe(billing, "payments.*", keypair=keys)
    router.producer(checkout).publish("payments.captured", {"amount": 7})
    [(s, msgs)] = Selector([sub]).poll(timeout=1.0)
    assert s is sub and [m.data for m in msgs] == [{"amount": 7}]
