"""Scenario ``fanout``: durable publish with many online durable consumers.

A router in a service has tens to thousands of durable consumers (one per tenant,
region or downstream service), each selecting a small share of the events. Here each
of ``n`` durable subscriptions matches 1% of the events (``{"data": {"tenant": [k]}}``
with ``k = i % 100``), and one producer publishes ``events`` ~270-byte events with
``publish_raw`` in batches of 1,024 on ``Router(path, fsync="batch")``. The timed part
is the publish: the consumers are online and keep up, draining (poll and ack) after
every ``DRAIN_EVERY`` batches, outside the timed publishes; at the end every consumer
is checked to have received exactly its events, each once, in publish order. The rates of the different ``n`` are
compared within one run: a publish should cost about the same whatever the number of
consumers it does not concern.

Each run also measures what idle consumers cost: the RSS the ``n`` subscriptions add
before any event (per subscription), and the time to reopen the router and
resubscribe them all from their stored cursors.
"""

from __future__ import annotations

import json
import re
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import sealbus
from sealbus._allocator import PURGE_DELAY_MS
from sealbus.bench.procstat import cpu_seconds, release_memory, rss_bytes

EVENT_TYPE = "tenants.changed"
BATCH = 1024
#: Distinct tenants: a subscription to one of them matches 1% of the events.
TENANTS = 100
#: The consumers drain after every this many batches (outside the timed publishes).
DRAIN_EVERY = 16
SUBSCRIPTIONS = (1, 100, 1_000, 10_000)
#: The fewest subscriptions whose idle RSS the table shows (the target's count).
IDLE_RSS_FROM = 10_000
#: Each event's data: tenant, sequence number and padding to ~270 bytes stored.
PAD = "p" * 150
_SEQ = re.compile(rb'"seq":(\d+)')
#: An event no consumer wants.
NOBODY = b'{"tenant":-1,"seq":-1}'


@dataclass
class FanoutFigures:
    """One run with ``subscriptions`` online durable consumers."""

    subscriptions: int
    events: int
    status: str = "ok"
    events_per_s: float = float("nan")
    cpu_s_per_mevent: float = float("nan")
    #: RSS the subscriptions added before any event, per subscription.
    idle_bytes_per_subscription: float = float("nan")
    #: Reopening the router and resubscribing every consumer from its cursor.
    reopen_s: float = float("nan")
    #: Events delivered over all consumers (each checked against what it should get).
    delivered: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def encode_batches(events: int) -> list[tuple[bytes, list[int]]]:
    """``events`` events as publish batches: event ``i`` is tenant ``i % 100``,
    sequence number ``i``."""
    out = []
    for start in range(0, events, BATCH):
        texts = [
            json.dumps({"tenant": i % TENANTS, "seq": i, "pad": PAD}, separators=(",", ":")).encode()
            for i in range(start, min(events, start + BATCH))
        ]
        offsets = [0]
        for t in texts:
            offsets.append(offsets[-1] + len(t))
        out.append((b"".join(texts), offsets))
    return out


def open_router(path: Path) -> tuple[sealbus.Router, sealbus.Producer, sealbus.Principal]:
    router = sealbus.Router(path, fsync="batch", allow_schemaless=True)
    producer = router.principal("producer")
    router.policy.allow_publish(producer, "tenants.*")
    consumer = router.principal("consumer")
    router.policy.allow_subscribe(consumer, "tenants.*")
    return router, router.producer(producer, timeout=60.0), consumer


def subscribe_all(
    router: sealbus.Router, consumer: sealbus.Principal, n: int, window: int
) -> list[sealbus.Subscription]:
    return [
        router.subscribe(
            consumer,
            EVENT_TYPE,
            pattern={"data": {"tenant": [i % TENANTS]}},
            durable=True,
            name=f"tenant-{i:05d}",
            max_pending=window,
        )
        for i in range(n)
    ]


def drain(sub: sealbus.Subscription, into: list[int]) -> None:
    """Poll everything ``sub`` has and ack it, recording the sequence numbers."""
    while True:
        batch = sub.poll_batch(4096, 0)
        if not len(batch):
            return
        into.extend(int(m) for m in _SEQ.findall(bytes(batch.buffer)))
        batch.ack()


def check(sub: sealbus.Subscription, got: list[int], tenant: int, events: int) -> str | None:
    """What is wrong with what ``sub`` received (exactly its tenant's events, in
    publish order, each once), or None."""
    want = range(tenant, events, TENANTS)
    if got != list(want):
        return f"{sub.name} received {len(got):,} events, wanted {len(want):,} (or out of order)"
    return None


def _settle() -> int | None:
    """RSS once the allocator has returned what earlier runs freed."""
    release_memory()
    time.sleep(PURGE_DELAY_MS / 1000 + 0.5)
    return rss_bytes("self")


def run_once(n: int, events: int, path: Path, progress: Callable[[int], None] | None = None) -> FanoutFigures:
    """One run with ``n`` online durable consumers (see the module docstring)."""
    fig = FanoutFigures(n, events)
    batches = encode_batches(events)
    window = max(1024, 2 * DRAIN_EVERY * BATCH // TENANTS)
    got: list[list[int]] = [[] for _ in range(n)]
    router, producer, consumer = open_router(path)
    try:
        rss0 = _settle()
        subs = subscribe_all(router, consumer, n, window)
        # One event no consumer wants: the routes are built, nothing is queued.
        producer.publish_raw(EVENT_TYPE, NOBODY, [0, len(NOBODY)])
        rss1 = _settle()
        if rss0 is not None and rss1 is not None:
            fig.idle_bytes_per_subscription = (rss1 - rss0) / n
        publishing, cpu = 0.0, 0.0
        done = 0
        for b, (buf, offs) in enumerate(batches):
            cpu0, t0 = cpu_seconds(), time.perf_counter()
            producer.publish_raw(EVENT_TYPE, buf, offs)
            publishing += time.perf_counter() - t0
            cpu1 = cpu_seconds()
            if cpu0 is not None and cpu1 is not None:
                cpu += cpu1 - cpu0
            done += len(offs) - 1
            if progress is not None:
                progress(done)
            if b % DRAIN_EVERY == DRAIN_EVERY - 1:
                # The consumers keep up (not timed): what they hold is freed.
                for s, into in zip(subs, got, strict=True):
                    drain(s, into)
        fig.events_per_s = events / publishing
        fig.cpu_s_per_mevent = cpu / events * 1e6
        wrong = []
        for i, s in enumerate(subs):
            drain(s, got[i])
            fig.delivered += len(got[i])
            error = check(s, got[i], i % TENANTS, events)
            if error is not None:
                wrong.append(error)
        if wrong:
            fig.status = f"error: {len(wrong)} consumer(s) wrong, first: {wrong[0]}"
        read_back = int(router.counters().get("read_back", 0))
        if read_back:
            fig.notes.append(f"{read_back:,} deliveries read back from the log")
    finally:
        router.close()
    del subs
    t0 = time.perf_counter()
    router, producer, consumer = open_router(path)
    try:
        subs = subscribe_all(router, consumer, n, window)
        fig.reopen_s = time.perf_counter() - t0
        # Nothing is owed after the drain: a resubscribed consumer gets nothing.
        stray = sum(len(s.poll_batch(16, 0)) for s in subs[:TENANTS])
        if stray and fig.ok:
            fig.status = f"error: {stray} events redelivered after reopening"
    finally:
        router.close()
    return fig


def ratio_to_one(runs: Sequence[FanoutFigures], n: int) -> float:
    """The median rate with ``n`` consumers over the median rate with 1 (same run)."""
    base = median([r.events_per_s for r in runs if r.subscriptions == 1 and r.ok])
    mine = median([r.events_per_s for r in runs if r.subscriptions == n and r.ok])
    return mine / base if base == base and mine == mine and base > 0 else float("nan")


def median(values: Sequence[float]) -> float:
    values = [v for v in values if v == v]
    return statistics.median(values) if values else float("nan")


def print_table(runs: Sequence[FanoutFigures], out: TextIO) -> None:
    """Medians per number of consumers, each rate beside the 1-consumer rate."""
    if not runs:
        return
    counts = sorted({r.subscriptions for r in runs})
    print(file=out)
    print(
        f"fanout: durable publish, fsync=batch, {runs[0].events:,} events in batches of {BATCH:,}; "
        "each consumer matches 1% and is checked to get exactly its events",
        file=out,
    )
    head = f"{'consumers':>10} {'events/s':>12} {'vs 1':>7} {'CPU s/1M ev':>12} {'idle B/consumer':>16} {'reopen s':>9}"
    print(head, file=out)
    print("-" * len(head), file=out)
    for n in counts:
        mine = [r for r in runs if r.subscriptions == n]
        ok = [r for r in mine if r.ok]
        if not ok:
            print(f"{n:>10,} {'error':>12}", file=out)
            continue
        rate = median([r.events_per_s for r in ok])
        cpu = median([r.cpu_s_per_mevent for r in ok])
        idle = median([r.idle_bytes_per_subscription for r in ok])
        # Below 10,000 subscriptions the RSS they add is smaller than what the
        # allocator returns or keeps from the run before: the figure would be noise.
        shown = f"{idle:>16,.0f}" if n >= IDLE_RSS_FROM else f"{'-':>16}"
        reopen = median([r.reopen_s for r in ok])
        print(
            f"{n:>10,} {rate:>12,.0f} {ratio_to_one(runs, n):>6.2f}x {cpu:>12,.2f} {shown} {reopen:>9,.2f}",
            file=out,
        )
    for r in runs:
        if not r.ok:
            print(f"note: fanout {r.subscriptions:,}: {r.status}", file=out)
        for note in r.notes:
            print(f"note: fanout {r.subscriptions:,}: {note}", file=out)


def targets(runs: Sequence[FanoutFigures]) -> list[str]:
    """The fanout targets, checked against this run's medians."""
    out: list[str] = []

    def verdict(ok: bool | None) -> str:
        return "n/a " if ok is None else ("PASS" if ok else "FAIL")

    for n, share in ((1_000, 0.5), (10_000, 0.25)):
        r = ratio_to_one(runs, n)
        out.append(
            f"  [{verdict(None if r != r else r >= share)}] fanout {n:,} consumers >= {share:.0%} "
            f"of 1 consumer's rate: {r:.2f}x"
        )
    big = max((r.subscriptions for r in runs if r.ok), default=0)
    # Per-consumer memory is read where the consumers dwarf the noise of the RSS.
    if big:
        idle = median([r.idle_bytes_per_subscription for r in runs if r.ok and r.subscriptions == big])
        reopen = median([r.reopen_s for r in runs if r.ok and r.subscriptions == big])
        out.append(
            f"  [{verdict(None if idle != idle else idle <= 16 * 1024)}] RSS per idle durable consumer "
            f"<= 16 KiB ({big:,}): {idle:,.0f} B"
        )
        out.append(
            f"  [{verdict(None if reopen != reopen else reopen <= 1.0)}] reopen {big:,} cursors <= 1 s: {reopen:.2f} s"
        )
    return out


def as_dict(fig: FanoutFigures) -> dict[str, Any]:
    return {
        "subscriptions": fig.subscriptions,
        "events": fig.events,
        "status": fig.status,
        "events_per_s": fig.events_per_s,
        "cpu_s_per_mevent": fig.cpu_s_per_mevent,
        "idle_bytes_per_subscription": fig.idle_bytes_per_subscription,
        "reopen_s": fig.reopen_s,
        "delivered": fig.delivered,
        "notes": fig.notes,
    }
