"""Many durable consumers: each gets exactly the events its pattern selects, in log
order, whether it keeps up (and is handed its events in memory), falls behind (and
reads them back), goes offline, or comes back after a restart; checked against a
simple model of what each one is owed."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import sealbus
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sealbus import Router
from test_log_crash import _selects_slow

TENANTS = 7


def open_router(path: Path) -> tuple[Router, sealbus.Producer, sealbus.Principal]:
    router = Router(path, allow_schemaless=True)
    producer = router.principal("producer")
    consumer = router.principal("consumer")
    router.policy.allow_publish(producer, "t.*")
    router.policy.allow_subscribe(consumer, "t.*")
    return router, router.producer(producer), consumer


def subscribe(router: Router, who: sealbus.Principal, i: int, window: int) -> sealbus.Subscription:
    return router.subscribe(
        who,
        "t.event",
        pattern={"data": {"tenant": [i % TENANTS]}},
        durable=True,
        name=f"c{i}",
        max_pending=window,
    )


def drain(sub: sealbus.Subscription, into: list[int], most: int = 1 << 30) -> None:
    """Poll and ack up to ``most`` events, recording their sequence numbers."""
    while most > 0:
        msgs = sub.poll(min(most, 256), 0)
        if not msgs:
            return
        into.extend(m.data["seq"] for m in msgs)
        sub.ack(msgs)
        most -= len(msgs)


def publish(producer: sealbus.Producer, seqs: range) -> None:
    producer.publish_many("t.event", [{"tenant": s % TENANTS, "seq": s} for s in seqs])


@pytest.mark.parametrize(("n", "events"), [(2_000, 6_000), pytest.param(10_000, 12_000, marks=pytest.mark.slow)])
def test_thousands_of_consumers_get_exactly_their_events_across_a_restart(
    tmp_path: Path, request: pytest.FixtureRequest, n: int, events: int
) -> None:
    """Thousands of consumers: most keep up, every 10th has a tiny window (it falls
    behind and reads back), every 7th goes offline half-way; several producers
    publish at once; then the router restarts and everyone resumes from its cursor.
    10,000 of them is a long mode (``-m slow``)."""
    if n > 2_000 and not _selects_slow(request.config.getoption("-m") or ""):
        pytest.skip("long mode: run with -m slow")
    router, producer, who = open_router(tmp_path)
    subs = {i: subscribe(router, who, i, 4 if i % 10 == 0 else 10_000) for i in range(n)}
    got: dict[int, list[int]] = {i: [] for i in range(n)}

    def produce(part: int, parts: int, upto: int, start: int) -> None:
        for b in range(start + part * 100, upto, parts * 100):
            publish(producer, range(b, min(b + 100, upto)))

    def produce_all(start: int, upto: int) -> None:
        threads = [threading.Thread(target=produce, args=(p, 3, upto, start)) for p in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    produce_all(0, events // 2)
    for i, s in subs.items():
        if i % 7 == 0:
            s.close()  # offline: owed what follows
        elif i % 3 == 0:
            drain(s, got[i], most=5)
    produce_all(events // 2, events)
    for i, s in subs.items():
        if i % 7 and i % 2:
            drain(s, got[i])
    router.close()

    router, producer, who = open_router(tmp_path)
    subs = {i: subscribe(router, who, i, 4 if i % 10 == 0 else 10_000) for i in range(n)}
    publish(producer, range(events, events + 70))
    for i, s in subs.items():
        drain(s, got[i])
    router.close()

    # Events of a batch follow its producer's order; batches of different producers
    # interleave in the log, so compare sorted and check each producer's own order.
    for i in range(n):
        want = list(range(i % TENANTS, events + 70, TENANTS))
        assert sorted(got[i]) == want, f"consumer c{i}"
        assert len(set(got[i])) == len(got[i]), f"consumer c{i} got duplicates"
        for part in range(3):
            mine = [s for s in got[i] if s < events and (s % (events // 2)) // 100 % 3 == part]
            assert mine == sorted(mine), f"consumer c{i} out of order"


# One step of the model: publish events of these tenants; poll (and ack) up to k of
# consumer i; close consumer i; (re)open consumer i; restart the router.
step = st.one_of(
    st.tuples(st.just("publish"), st.lists(st.integers(0, TENANTS - 1), min_size=1, max_size=40)),
    st.tuples(st.just("poll"), st.integers(0, 11), st.integers(1, 30)),
    st.tuples(st.just("close"), st.integers(0, 11)),
    st.tuples(st.just("open"), st.integers(0, 11)),
    st.tuples(st.just("restart")),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step, max_size=30), windows=st.lists(st.sampled_from([1, 3, 1_000]), min_size=12, max_size=12))
def test_each_consumer_gets_what_a_model_owes_it(
    tmp_path_factory: pytest.TempPathFactory, steps: list[tuple[Any, ...]], windows: list[int]
) -> None:
    """Model: a consumer is owed every event of its tenant published after it first
    subscribed, once, in log order, whatever happens in between."""
    path = tmp_path_factory.mktemp("log")
    router, producer, who = open_router(path)
    owed: dict[int, list[int]] = {}  # what each consumer that ever subscribed is owed
    got: dict[int, list[int]] = {}
    online: dict[int, sealbus.Subscription] = {}
    seq = 0
    for s in steps:
        if s[0] == "publish":
            tenants = s[1]
            producer.publish_many("t.event", [{"tenant": t, "seq": seq + j} for j, t in enumerate(tenants)])
            for j, t in enumerate(tenants):
                for i in owed:
                    if i % TENANTS == t:
                        owed[i].append(seq + j)
            seq += len(tenants)
        elif s[0] == "poll" and s[1] in online:
            drain(online[s[1]], got[s[1]], most=s[2])
        elif s[0] == "close" and s[1] in online:
            online.pop(s[1]).close()
        elif s[0] == "open" and s[1] not in online:
            online[s[1]] = subscribe(router, who, s[1], windows[s[1]])
            owed.setdefault(s[1], [])
            got.setdefault(s[1], [])
        elif s[0] == "restart":
            router.close()
            router, producer, who = open_router(path)
            online = {i: subscribe(router, who, i, windows[i]) for i in online}
    for i in owed:
        sub = online.get(i) or subscribe(router, who, i, windows[i])
        drain(sub, got[i])
    router.close()
    assert got == owed


def test_consumers_that_come_back_while_others_publish_miss_nothing(tmp_path: Path) -> None:
    """Consumers close and resubscribe (from their stored cursors) while two producers
    publish: a batch routed before a consumer came back never reaches it through a
    push, and must come to it from the log."""
    n, rounds = 40, 30
    router, producer, who = open_router(tmp_path)
    subs = {i: subscribe(router, who, i, 10_000) for i in range(n)}
    got: dict[int, list[int]] = {i: [] for i in range(n)}
    stop = threading.Event()
    sent: list[int] = []
    lock = threading.Lock()

    def produce(part: int) -> None:
        b = part
        while not stop.is_set():
            seqs = range(b * 50, b * 50 + 50)
            publish(producer, seqs)
            with lock:
                sent.extend(seqs)
            b += 2

    threads = [threading.Thread(target=produce, args=(p,)) for p in range(2)]
    for t in threads:
        t.start()
    try:
        for r in range(rounds):
            for i in range(r % 4, n, 4):
                drain(subs[i], got[i], most=20)
                subs[i].close()
                subs[i] = subscribe(router, who, i, 10_000)
    finally:
        stop.set()
        for t in threads:
            t.join()
    for i, s in subs.items():
        drain(s, got[i])
    router.close()
    for i in range(n):
        want = sorted(s for s in sent if s % TENANTS == i % TENANTS)
        assert sorted(got[i]) == want, f"consumer c{i}: {len(got[i])} of {len(want)}"
        assert len(set(got[i])) == len(got[i]), f"consumer c{i} got duplicates"
