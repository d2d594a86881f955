"""asyncio producers and consumers: group-committed ``publish_async``, and
subscriptions that wait on the event loop instead of a thread."""

from __future__ import annotations

import asyncio
import importlib.util
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sealbus
from sealbus import Backpressure, Closed, Router, Selector, ValidationError

SCHEMA = {
    "type": "object",
    "properties": {"n": {"type": "integer"}, "pad": {"type": "string"}},
    "required": ["n"],
}


def durable_router(path: Path, **kw: Any) -> Router:
    r = Router(path / "log", fsync="batch", keys=path / "keys", **kw)
    r.schemas.register("orders.placed", SCHEMA)
    r.schemas.register("orders.paid", SCHEMA)
    return r


def threads() -> int:
    """OS threads of this process (Python's and the Rust core's)."""
    return len(os.listdir("/proc/self/task"))


async def until(cond: Callable[[], bool], what: str) -> None:
    """Let the loop run until ``cond()``; fails after a generous bound (a hang, not a
    slow machine)."""
    for _ in range(20_000):
        if cond():
            return
        await asyncio.sleep(0.001)
    raise AssertionError(f"never happened: {what}")


async def test_concurrent_coroutines_share_commits_and_each_event_is_stored_and_delivered_once(
    tmp_path: Path,
) -> None:
    r = durable_router(tmp_path)
    who = r.principal("checkout")
    reader = r.principal("shipping")
    r.policy.allow_publish(who, "orders.*")
    r.policy.allow_subscribe(reader, "orders.*")
    sub = r.subscribe(reader, "orders.*", max_pending=100_000)
    p = r.producer(who)
    coroutines, each = 200, 5

    async def handler(c: int) -> list[str]:
        ids = []
        for i in range(each):
            receipt = await p.publish_async("orders.placed", {"n": c * each + i}, subject=str(c))
            ids.append(receipt.id)
        return ids

    fsyncs0 = r.counters()["fsyncs"]
    per_handler = await asyncio.gather(*(handler(c) for c in range(coroutines)))
    ids = [i for got in per_handler for i in got]
    total = coroutines * each
    assert len(set(ids)) == total
    fsyncs = r.counters()["fsyncs"] - fsyncs0
    assert 0 < fsyncs < total / 2, f"{fsyncs} fsyncs for {total} events: commits were not shared"

    stored = [e.id for e in r.replay(reader, "orders.*")]
    assert sorted(stored) == sorted(ids), "every receipt's event is in the log, once"
    delivered = [m.id for m in await sub.poll_async(max_messages=100_000, timeout=5)]
    assert sorted(delivered) == sorted(ids), "and delivered once"
    # Each coroutine's own events are stored in the order it published them.
    by_subject: dict[str, list[int]] = {}
    for e in r.replay(reader, "orders.*"):
        by_subject.setdefault(e.subject or "", []).append(e.data["n"])
    assert all(ns == sorted(ns) for ns in by_subject.values())
    r.close()


async def test_publish_many_async_and_a_refused_publish_does_not_fail_its_neighbours(tmp_path: Path) -> None:
    r = durable_router(tmp_path)
    who = r.principal("checkout")
    r.policy.allow_publish(who, "orders.placed")
    p = r.producer(who)
    results = await asyncio.gather(
        p.publish_async("orders.placed", {"n": 1}),
        p.publish_async("orders.placed", {"n": "not a number"}),
        p.publish_many_async("orders.placed", [{"n": i} for i in range(1000)]),
        p.publish_async("orders.paid", {"n": 2}),  # not allowed
        p.publish_async("orders.placed", {"n": 3}),
        return_exceptions=True,
    )
    assert isinstance(results[0], sealbus.Receipt)
    assert isinstance(results[1], ValidationError)
    assert isinstance(results[2], sealbus.Receipts) and results[2].count == 1000
    assert isinstance(results[3], sealbus.PolicyDenied)
    assert isinstance(results[4], sealbus.Receipt)
    assert r.counters()["published"] == 1002
    # Bad arguments are refused before anything is submitted.
    with pytest.raises(sealbus.InvalidArgument):
        await p.publish_async("orders.placed", {"n": 1}, colour="red")
    with pytest.raises(sealbus.InvalidEvent):
        await p.publish_many_async("orders.placed", [{"n": 1}] * 600 + [b"bytes"])
    r.close()


async def test_a_cancelled_publish_is_still_published(router: Router) -> None:
    who = router.principal("p")
    router.policy.allow_publish(who, "t.*")
    router.policy.allow_subscribe(who, "t.*")
    sub = router.subscribe(who, "t.*")
    p = router.producer(who)
    task = asyncio.create_task(p.publish_async("t.a", {"k": "cancelled"}))
    await asyncio.sleep(0)  # the coroutine ran up to its await: the event is handed over
    if task.cancel():
        with pytest.raises(asyncio.CancelledError):
            await task
    msgs = await sub.poll_async(timeout=10)
    assert [m.data for m in msgs] == [{"k": "cancelled"}]
    # The loop goes on: a later publish gets its receipt.
    await p.publish_async("t.a", {"k": "after"})
    assert [m.data for m in await sub.poll_async(timeout=10)] == [{"k": "after"}]


async def test_reject_hands_the_events_back_and_spares_other_queues(router: Router) -> None:
    who = router.principal("p")
    router.policy.allow_publish(who, "t.*")
    router.policy.allow_subscribe(who, "t.*")
    small = router.subscribe(who, "t.small", max_pending=2, on_full="reject")
    other = router.subscribe(who, "t.other")
    p = router.producer(who)
    await p.publish_async("t.small", {"i": 0})
    results = await asyncio.gather(
        p.publish_many_async("t.small", [{"i": 1}, {"i": 2}]),
        p.publish_async("t.other", {"i": 3}),
        p.publish_async("t.small", {"i": 4}),
        return_exceptions=True,
    )
    refused = results[0]
    assert isinstance(refused, Backpressure)
    assert refused.accepted == 0 and refused.events == [{"i": 1}, {"i": 2}]
    assert isinstance(results[1], sealbus.Receipt)
    assert isinstance(results[2], sealbus.Receipt), "one more fits once the batch is refused"
    with pytest.raises(Backpressure) as exc:
        await p.publish_async("t.small", {"i": 5})
    assert exc.value.events == [{"i": 5}]
    assert [m.data["i"] for m in small.poll()] == [0, 4]
    assert [m.data["i"] for m in other.poll()] == [3]


async def test_a_full_block_queue_is_an_await_not_a_blocked_loop(router: Router) -> None:
    who = router.principal("p")
    router.policy.allow_publish(who, "t.*")
    router.policy.allow_subscribe(who, "t.*")
    sub = router.subscribe(who, "t.*", max_pending=1, on_full="block")
    p = router.producer(who)
    await p.publish_async("t.a", {"i": 0})
    waiting = asyncio.create_task(p.publish_async("t.a", {"i": 1}))
    ticks = 0
    for _ in range(20):  # the loop keeps running while the publish waits for room
        await asyncio.sleep(0.005)
        ticks += 1
    assert not waiting.done() and ticks == 20
    first = await sub.poll_async(timeout=5)
    assert [m.data["i"] for m in first] == [0]
    first[0].ack()
    receipt = await asyncio.wait_for(waiting, 10)
    assert isinstance(receipt, sealbus.Receipt)
    assert [m.data["i"] for m in await sub.poll_async(timeout=5)] == [1]
    # With a timeout, the wait ends in Backpressure and the event is handed back.
    with pytest.raises(Backpressure) as exc:
        await p.publish_async("t.a", {"i": 2}, timeout=0.05)
    assert exc.value.events == [{"i": 2}]


async def test_a_closed_router_refuses_as_publish_does(tmp_path: Path) -> None:
    r = durable_router(tmp_path)
    who = r.principal("checkout")
    r.policy.allow_publish(who, "orders.*")
    p = r.producer(who)
    await p.publish_async("orders.placed", {"n": 1})
    r.close()
    with pytest.raises(sealbus.SealbusError) as sync_exc:
        p.publish("orders.placed", {"n": 2})
    with pytest.raises(sealbus.SealbusError) as async_exc:
        await p.publish_async("orders.placed", {"n": 3})
    assert type(async_exc.value) is type(sync_exc.value)


async def test_an_async_consumer_waits_without_a_thread(router: Router) -> None:
    who = router.principal("p")
    router.policy.allow_publish(who, "t.*")
    router.policy.allow_subscribe(who, "t.*")
    p = router.producer(who)
    got: list[Any] = []
    before = threads()
    sub = router.subscribe(who, "t.*")

    async def consume() -> None:
        async for msg in sub:
            got.append(msg.data)
            msg.ack()

    task = asyncio.create_task(consume())
    for _ in range(50):
        await asyncio.sleep(0.002)
    assert threads() <= before, "an idle async consumer holds no thread"
    p.publish("t.a", {"i": 1})
    await until(lambda: got == [{"i": 1}], "the consumer woke for the event")
    assert threads() <= before
    p.publish_many("t.a", [{"i": 2}, {"i": 3}])
    await until(lambda: len(got) == 3, "the consumer woke again")
    sub.close()
    await asyncio.wait_for(task, 10)  # a closed subscription ends `async for`
    assert got == [{"i": 1}, {"i": 2}, {"i": 3}]


async def test_poll_async_times_out_empty_and_sees_redeliveries(router: Router) -> None:
    who = router.principal("p")
    router.policy.allow_publish(who, "t.*")
    router.policy.allow_subscribe(who, "t.*")
    sub = router.subscribe(who, "t.*", ack_timeout=0.05)
    assert await sub.poll_async(timeout=0.02) == []
    assert len(await sub.poll_batch_async(timeout=0)) == 0
    router.producer(who).publish("t.a", {"i": 1})
    first = await sub.poll_async(timeout=5)
    assert [m.attempt for m in first] == [1]
    # Not acked: redelivered after its ack timeout, with no news to wake the waiter.
    again = await sub.poll_async(timeout=10)
    assert [(m.data, m.attempt) for m in again] == [({"i": 1}, 2)]
    batch = await sub.poll_batch_async(timeout=10)
    assert len(batch) == 1
    batch.ack()


async def test_a_selector_waits_on_the_loop_for_any_subscription(router: Router) -> None:
    who = router.principal("p")
    router.policy.allow_publish(who, "t.*")
    router.policy.allow_subscribe(who, "t.*")
    a = router.subscribe(who, "t.a")
    b = router.subscribe(who, "t.b")
    p = router.producer(who)
    before = threads()
    with Selector([a, b]) as sel:
        waiting = asyncio.create_task(sel.poll_async(timeout=10))
        await asyncio.sleep(0.01)
        assert not waiting.done() and threads() <= before
        p.publish("t.b", {"i": 1})
        ready = await asyncio.wait_for(waiting, 10)
        assert [(s.name, [m.data for m in msgs]) for s, msgs in ready] == [(b.name, [{"i": 1}])]
        p.publish("t.a", {"i": 2})
        batches = await sel.poll_batch_async(timeout=10)
        assert [(s.name, len(batch)) for s, batch in batches] == [(a.name, 1)]
        a.close()
        b.close()
        with pytest.raises(Closed):
            await sel.poll_async(timeout=10)


def test_uvloop_runs_the_same_producers_and_consumers(router: Router) -> None:
    uvloop = pytest.importorskip("uvloop") if not os.environ.get("CI") else __import__("uvloop")
    who = router.principal("p")
    router.policy.allow_publish(who, "t.*")
    router.policy.allow_subscribe(who, "t.*")
    sub = router.subscribe(who, "t.*")
    p = router.producer(who)

    async def main() -> list[Any]:
        receipts = await asyncio.gather(*(p.publish_async("t.a", {"i": i}) for i in range(100)))
        assert len({r.id for r in receipts}) == 100
        got: list[Any] = []
        async for msg in sub:
            got.append(msg.data["i"])
            if len(got) == 100:
                break
        return got

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        assert runner.run(main()) == list(range(100))


async def test_the_example_service_runs(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location(
        "asyncio_service", Path(__file__).parent.parent / "examples" / "asyncio_service.py"
    )
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    stock = await example.main(tmp_path, requests=60)
    assert sum(-v for v in stock.values()) == sum(1 + i % 3 for i in range(60))


async def test_asynchronous_publishes_are_audited_once_each_even_when_cancelled(tmp_path: Path) -> None:
    r = durable_router(tmp_path)
    who = r.principal("checkout")
    r.policy.allow_publish(who, "orders.placed")
    p = r.producer(who)
    receipts = await asyncio.gather(*(p.publish_async("orders.placed", {"n": i}) for i in range(300)))
    many = await p.publish_many_async("orders.placed", [{"n": i} for i in range(5)])
    task = asyncio.create_task(p.publish_async("orders.placed", {"n": -1}))
    await asyncio.sleep(0)  # handed over; the await is cancelled, the event is published
    task.cancel()
    outcomes = await asyncio.gather(
        p.publish_async("orders.placed", {"n": "not a number"}),
        p.publish_async("orders.paid", {"n": 1}),  # not allowed
        return_exceptions=True,
    )
    assert all(isinstance(o, sealbus.SealbusError) for o in outcomes)
    await p.publish_async("orders.placed", {"n": 1000})  # after every earlier outcome
    r.close()
    entries = list(sealbus.audit.entries(tmp_path / "log"))
    published = [i for e in entries if e["kind"] == "publish" for i in e["ids"]]
    assert sorted(published) == sorted(published_set := set(published))
    expected = {x.id for x in receipts} | set(many.ids)
    assert expected <= published_set
    assert len(published_set) == len(expected) + 2  # the cancelled one and the last one
    # Grouped by turn of the loop, not one entry each; sizes add up.
    publishes = [e for e in entries if e["kind"] == "publish"]
    assert len(publishes) < 300
    assert all(e["count"] == len(e["ids"]) and e["principal"] == "checkout" for e in publishes)
    rules = sorted(e["rule"] for e in entries if e["kind"] == "refused")
    assert rules == ["PolicyDenied", "ValidationError"]
