"""Public API that no other test calls: each call checked for what it says it does."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import sealbus
from sealbus import Router, Selector
from sealbus.log import CursorStore
from stored_frames import key_nonces


def _wait(cond: object, what: str) -> None:
    deadline = time.monotonic() + 30
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def test_policy_queries_and_revoking_publish(router: Router) -> None:
    p, c = router.principal("p"), router.principal("c")
    router.policy.allow_publish(p, ["orders.*", "audit.log"])
    router.policy.allow_subscribe(c, "orders.placed")
    assert router.policy.can_publish(p, "orders.placed") and router.policy.can_publish("p", "audit.log")
    assert not router.policy.can_publish(p, "payments.captured") and not router.policy.can_publish(c, "orders.x")
    assert router.policy.can_subscribe(c, "orders.placed") and not router.policy.can_subscribe(c, "orders.*")
    assert router.policy.grants(p) == {"publish": ["audit.log", "orders.*"], "subscribe": []} or sorted(
        router.policy.grants(p)["publish"]
    ) == ["audit.log", "orders.*"]
    assert router.policy.grants(c)["subscribe"] == ["orders.placed"]
    router.producer(p).publish("orders.placed", {})
    assert router.policy.revoke_publish(p, "orders.*")
    assert not router.policy.revoke_publish(p, "orders.*"), "nothing left to revoke"
    with pytest.raises(sealbus.PolicyDenied):
        router.producer(p).publish("orders.placed", {})
    assert not router.policy.can_publish(p, "orders.placed")
    assert not router.policy.requires_end_to_end("payments.captured")
    router.policy.require_end_to_end("payments.*")
    assert router.policy.requires_end_to_end("payments.captured")
    assert not router.policy.requires_end_to_end("orders.placed")


def test_schema_latest_version(router: Router) -> None:
    assert router.schemas.latest_version("orders.placed") is None
    v1 = router.schemas.register("orders.placed", {"type": "object"})
    v2 = router.schemas.register(
        "orders.placed", {"type": "object", "properties": {"n": {"type": "integer"}}}, compatibility="none"
    )
    assert (v1, v2) == (1, 2)
    assert router.schemas.latest_version("orders.placed") == 2


def test_router_and_producer_are_context_managers(tmp_path: Path) -> None:
    ring = sealbus.KeyRing.generate()
    with Router(tmp_path / "log", allow_schemaless=True, keys=ring) as router:
        p, c = router.principal("p"), router.principal("c")
        router.policy.allow_publish(p, "t.*")
        router.policy.allow_subscribe(c, "t.*")
        sub = router.subscribe(c, "t.*", name="c", durable=True)
        with router.producer(p) as prod:
            receipts = prod.publish_many("t.x", [{"n": 0}, {"n": 1}])
        assert receipts.ids == [r.id for r in receipts] and len(set(receipts.ids)) == 2
        assert receipts.first_offset == 0 and receipts.routed == [1, 1]
        assert router.key_source == "the KeyRing passed in"
    # The router closed on exit: its log refuses new work.
    with pytest.raises(sealbus.SealbusError):
        router.producer(p).publish("t.x", {})
    del sub
    # The ring passed in is the one that sealed what the log holds.
    stored = key_nonces(tmp_path / "log")
    assert [(off, key) for off, key, _ in stored] == [(0, ring.active_key_id), (1, ring.active_key_id)]


def test_receipts_of_an_in_memory_router_have_no_offset(router: Router) -> None:
    p = router.principal("p")
    router.policy.allow_publish(p, "t.*")
    r = router.producer(p).publish_many("t.x", [{}, {}, {}])
    assert r.first_offset is None and r.routed == [0, 0, 0] and len(r.ids) == 3


def test_dead_letters_capacity_and_removal(router: Router) -> None:
    p, c = router.principal("p"), router.principal("c")
    router.policy.allow_publish(p, "t.*")
    router.policy.allow_subscribe(c, "t.*")
    sub = router.subscribe(c, "t.*", max_deliveries=1, dlq_capacity=2)
    router.producer(p).publish_many("t.x", [{"n": i} for i in range(3)])
    assert sub.nack(sub.poll(10, 1.0)) == 3
    letters = sub.dead_letters()
    assert [e.data["n"] for e, _, _ in letters] == [1, 2], "capacity 2: the oldest is dropped"
    assert sub.stats()["dead_dropped"] == 1
    assert [e.data["n"] for e, _, _ in sub.dead_letters(remove=True)] == [1, 2]
    assert sub.dead_letters() == []


def test_handle_without_auto_ack_leaves_acking_to_the_handler(router: Router) -> None:
    p, c = router.principal("p"), router.principal("c")
    router.policy.allow_publish(p, "t.*")
    router.policy.allow_subscribe(c, "t.*")
    sub = router.subscribe(c, "t.*", ack_timeout=3600.0)
    seen: list[int] = []
    done = threading.Event()

    def handler(msg: sealbus.Message) -> None:
        seen.append(msg.data["n"])
        if msg.data["n"] == 1:
            msg.ack()  # only this one
        if len(seen) == 3:
            done.set()

    sub.handle(handler, auto_ack=False)
    router.producer(p).publish_many("t.x", [{"n": i} for i in range(3)])
    assert done.wait(30)
    _wait(lambda: sub.stats()["acked"] == 1, "the handler's own ack")
    assert sub.stats()["in_flight"] == 2, "unacked messages stay in flight without auto_ack"
    sub.close()


def test_close_forget_drops_a_durable_cursor(tmp_path: Path) -> None:
    router = Router(tmp_path / "log", allow_schemaless=True)
    p, c = router.principal("p"), router.principal("c")
    router.policy.allow_publish(p, "t.*")
    router.policy.allow_subscribe(c, "t.*")
    kept = router.subscribe(c, "t.*", name="kept", durable=True)
    gone = router.subscribe(c, "t.*", name="gone", durable=True)
    router.producer(p).publish_many("t.x", [{"n": i} for i in range(3)])
    kept.close()
    gone.close(forget=True)
    router.producer(p).publish("t.x", {"n": 3})
    assert CursorStore(tmp_path / "log" / "cursors", read_only=True).consumers() == ["kept"]
    # A forgotten consumer that comes back starts afresh (at the latest event).
    again = router.subscribe(c, "t.*", name="gone", durable=True)
    assert again.poll(10, 0.2) == []
    back = router.subscribe(c, "t.*", name="kept", durable=True)
    assert [m.data["n"] for m in back.poll(10, 1.0)] == [0, 1, 2, 3]
    router.close()


def test_retention_by_age_and_whether_it_respects_consumers(tmp_path: Path) -> None:
    for respect in (True, False):
        path = tmp_path / f"log-{respect}"
        router = Router(
            path,
            allow_schemaless=True,
            segment_bytes=1024,
            retention_max_age=0.2,
            retention_respect_consumers=respect,
        )
        p, c = router.principal("p"), router.principal("c")
        router.policy.allow_publish(p, "t.*")
        router.policy.allow_subscribe(c, "t.*")
        sub = router.subscribe(c, "t.*", name="slow", durable=True, max_pending=1)
        for i in range(40):  # one append each: an append never spans segments
            router.producer(p).publish("t.x", {"pad": "x" * 200, "n": i})
        time.sleep(0.5)  # the log stamps records with the system clock: let them age
        report = router.apply_retention()
        assert report is not None
        first = sub.poll(1, 1.0)[0].data["n"]
        if respect:
            assert report["segments_deleted"] == 0 and first == 0, "a durable consumer still needs them"
        else:
            assert report["segments_deleted"] > 0 and report["needed_records_deleted"] > 0
        router.close()


def test_selector_subscriptions_and_delivery_batches(router: Router) -> None:
    p, a, b = router.principal("p"), router.principal("a"), router.principal("b")
    router.policy.allow_publish(p, "t.*")
    router.policy.allow_subscribe(a, "t.*")
    router.policy.allow_subscribe(b, "t.*")
    sa, sb = router.subscribe(a, "t.*", name="a"), router.subscribe(b, "t.*", name="b")
    sel = Selector([sa, sb])
    assert sel.subscriptions == [sa, sb]
    receipts = router.producer(p).publish_many("t.x", [{"n": 0}, {"n": 1}])
    batch = sa.poll_batch(10, 1.0)
    assert batch.ids == receipts.ids
    assert len(batch.tags) == 2 and len(set(batch.tags)) == 2
    assert batch.ack() == 2
    assert sa.stats()["acked"] == 2
