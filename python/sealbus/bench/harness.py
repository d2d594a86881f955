"""``sealbus bench``: the end-to-end scenarios, each beside its NATS JetStream baseline.

Scenarios (``--scenario NAME``, repeatable; all by default):

``throughput``
    In memory: ``--producers`` threads (2) publish pre-encoded OrderPlaced events with
    ``publish_raw`` in batches of 1,024 through a Router with the JSON Schema, a
    default-deny policy and three content patterns; three consumer threads poll up to
    1,024 messages and ack them in one call. Events/s counts until every consumer has
    acked every event. Latency: each batch's ``perf_counter_ns`` at publish against
    the instant a consumer's poll returned it.
``latency``
    In memory, one event per publish at a fixed offered rate (10k events/s, paced on
    an absolute schedule so a late send does not lower the rate), p50/p99
    publish->deliver over every delivery to every consumer.
``durable``
    ``throughput`` on ``Router(path=dir, fsync="batch")``, with ``--producers``
    threads (4: two prepare their batches while two wait for their group commit);
    fsyncs/s and events per fsync from the router's ``fsyncs`` counter.
``backlog``
    ``Router(path=dir, fsync="batch")``: publish 1M events while three subscribers
    never poll; RSS sampled every 100k. The target is an RSS that does not grow with
    the backlog.
``asyncio`` (only when asked for)
    200 coroutines, one durable ``await publish_async`` each at a time, beside
    nats-py's ``await js.publish`` from 200 coroutines; loop lag throughout; then an
    ``async for`` consumer's latency at 5,000 events/s (see :mod:`sealbus.bench.aio`).
``bridge`` (only when asked for)
    Two durable routers in two processes joined through JetStream by
    :class:`sealbus.nats.Bridge` (sealed, signed, checked at both ends): events/s from
    a producer in one to a consumer in the other, beside nats-py publishing the same
    payloads with 200 coroutines to the same server; and latency at 1,000 events/s.
    See :mod:`sealbus.bench.bridge`.
``fanout`` (only when asked for)
    Durable publish with 1, 100, 1,000 and 10,000 online durable consumers, each
    matching 1% of the events (:mod:`sealbus.bench.fanout`; ``--fanout-events``,
    ``--fanout-subscriptions``), rates compared within the run; no NATS baseline.

Each scenario runs ``--repeat`` times (3) and the table shows medians. The JetStream
baseline (see :mod:`sealbus.bench.nats_baseline`) runs the same scenario in the same
invocation; ``--no-nats`` skips it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import threading
import time
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import sealbus
from sealbus._allocator import PURGE_DELAY_MS
from sealbus.bench import aio as aio_bench
from sealbus.bench import fanout, nats_baseline
from sealbus.bench.procstat import (
    PACER_SLACK_NS,
    RssSampler,
    cpu_count,
    cpu_seconds,
    percentile,
    release_memory,
    rss_bytes,
    timer_slack,
    weighted_percentile,
)
from sealbus.bench.workload import SCHEMA, Batch, encode_pool
from sealbus.endtoend import Batch as PolledBatch
from sealbus.errors import Backpressure

SCENARIOS = ("throughput", "latency", "durable", "backlog", "asyncio", "bridge", "fanout")
#: What runs without ``--scenario``: asyncio, bridge and fanout take minutes of their own.
DEFAULT_SCENARIOS = ("throughput", "latency", "durable", "backlog")

# How long the latency consumers spin for news before they sleep: ten send intervals
# at 10k events/s. With two (200 µs), every send the pacer's wake-up made more than
# 100 µs late found the consumer asleep, and paid 20-40 µs to wake it: 24 latency runs
# alternating gave a median p99 of 44.8 µs with 200 µs against 31.3 µs with 1 ms, at
# the same CPU per event (the consumer spins all the time at that rate either way).
BUSY_POLL = 0.001
EVENT_TYPE = "orders.placed"
BATCH = 1024
CONSUMERS = 3
MiB = 1024 * 1024

# Each consumer gets every valid event (so counts are exact), but two of them get it
# through a content pattern, so the matcher does real work on every event.
PATTERNS: tuple[dict[str, Any] | None, ...] = (
    None,
    {"data": {"total": [{"numeric": [">=", 0]}]}},
    {"data": {"currency": ["USD", "EUR", "GBP", "JPY"]}},
)


class NotAvailable(Exception):
    """The router cannot run this scenario yet (e.g. no durable log)."""


# ---- progress bar ----------------------------------------------------------------------


class ProgressBar:
    """One line on stderr, redrawn at most ten times a second. Silent when disabled
    (``--no-progress``) or when stderr is not a terminal, so logs stay clean."""

    def __init__(self, enabled: bool = True, stream: TextIO | None = None, width: int = 28) -> None:
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        self.enabled = enabled and callable(isatty) and bool(isatty())
        self.width = width
        self.label = ""
        self.total = 0
        self._started = 0.0
        self._last_draw = 0.0

    def start(self, label: str, total: int) -> None:
        self.label, self.total = label, max(total, 1)
        self._started = time.monotonic()
        self._last_draw = 0.0
        self.update(0, force=True)

    def update(self, done: int, *, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last_draw < 0.1:
            return
        self._last_draw = now
        frac = min(max(done / self.total, 0.0), 1.0)
        filled = int(frac * self.width)
        bar = "#" * filled + "-" * (self.width - filled)
        elapsed = now - self._started
        self.stream.write(
            f"\r{self.label[:44]:<44} [{bar}] {frac:4.0%} {done:>11,}/{self.total:,} {elapsed:6.1f}s\x1b[K"
        )
        self.stream.flush()

    def finish(self) -> None:
        if self.enabled:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


# ---- results -----------------------------------------------------------------------------


@dataclass
class Figures:
    """One run of one scenario on one system. ``status`` is ``ok``, ``not available:
    ...`` (the router lacks a feature) or ``error: ...``."""

    system: str
    scenario: str
    status: str = "ok"
    events: int = 0
    seconds: float = float("nan")
    events_per_s: float = float("nan")
    p50_us: float = float("nan")
    p99_us: float = float("nan")
    #: Latency scenario: publish -> the consumer's thread holds the events (the
    #: router's part), without the wait for the GIL that follows in Python.
    router_p50_us: float = float("nan")
    router_p99_us: float = float("nan")
    fsyncs_per_s: float = float("nan")
    events_per_fsync: float = float("nan")
    #: Durable: bytes the log grew by per event (record header, attributes, sealed
    #: data), and the write rate that makes: what the disk must keep up with.
    log_bytes_per_event: float = float("nan")
    log_write_bytes_per_s: float = float("nan")
    rss_bytes: float = float("nan")
    #: CPU seconds (all threads; for NATS server + client) per million events.
    cpu_s_per_mevent: float = float("nan")
    rss_growth_bytes: float = float("nan")
    offered_rate: float = float("nan")
    #: Events/s the producer achieved (paced runs; below ``offered_rate`` if it fell behind).
    sent_rate: float = float("nan")
    #: Per consumer: events delivered and acked; order violations seen (throughput).
    delivered: list[int] = field(default_factory=list)
    acked: list[int] = field(default_factory=list)
    redelivered: list[int] = field(default_factory=list)
    out_of_order: int = 0
    #: Producer threads publishing (throughput and durable scenarios).
    producers: int = 1
    rss_samples: list[tuple[int, int]] = field(default_factory=list)
    latency_quantiles_us: list[float] = field(default_factory=list)
    #: asyncio: the longest gaps between a ticker coroutine's turns of the loop, and
    #: publish -> ``async for`` body at a paced rate.
    lag_p99_us: float = float("nan")
    lag_max_us: float = float("nan")
    lag_cpu_p99_us: float = float("nan")
    consumer_p50_us: float = float("nan")
    consumer_p99_us: float = float("nan")
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _from_aio(a: aio_bench.AsyncFigures) -> Figures:
    fig = Figures(a.system, "asyncio", status=a.status, events=a.events, seconds=a.seconds)
    fig.events_per_s, fig.p50_us, fig.p99_us = a.events_per_s, a.publish_p50_us, a.publish_p99_us
    fig.lag_p99_us, fig.lag_max_us, fig.lag_cpu_p99_us = a.lag_p99_us, a.lag_max_us, a.lag_cpu_p99_us
    fig.consumer_p50_us, fig.consumer_p99_us = a.consumer_p50_us, a.consumer_p99_us
    fig.cpu_s_per_mevent, fig.offered_rate, fig.sent_rate = a.cpu_s_per_mevent, aio_bench.RATE, a.consumer_rate
    fig.notes = list(a.notes)
    return fig


@dataclass
class Config:
    scenarios: list[str]
    events: int = 200_000
    nats_events: int = 50_000
    repeat: int = 3
    rate: float = 10_000.0
    latency_seconds: float = 3.0
    backlog: int = 1_000_000
    backlog_sample: int = 100_000
    nats: bool = True
    nats_storage: str = "file"
    nats_sync_always: bool = False
    max_pending: int = 65_536
    progress: bool = True
    plots: str | None = None
    json_path: str | None = None
    work_dir: str | None = None
    #: ``sys.setswitchinterval`` during the ``latency`` scenario (None: Python's 5 ms).
    #: A consumer woken by the router may wait that long for the GIL while another
    #: thread runs Python code; a short interval bounds that wait at some CPU cost.
    switch_interval: float | None = None
    #: Producer threads in the ``throughput`` and ``durable`` scenarios (None: 2 in
    #: memory, one per core; 4 durable, so two prepare their batches while two wait
    #: for their group commit). A service publishes from several request handlers at
    #: once, and their publishes share the log's fsyncs.
    producers: int | None = None
    #: The ``latency`` consumers' ``busy_poll`` (seconds; 0: sleep at once). A service
    #: that must react within microseconds spins for news: a sleeping consumer waits
    #: for the OS to wake it (20-40 µs on a virtual machine).
    busy_poll: float = BUSY_POLL
    #: The ``latency`` consumers poll on a thread each instead of sharing one
    #: :class:`sealbus.Selector` thread (which takes the GIL once for all three).
    latency_threads: bool = False
    #: The ``throughput`` and ``durable`` consumers share one thread through a
    #: :class:`sealbus.Selector` instead of polling on a thread each.
    shared_consumer_thread: bool = False
    #: One short uncounted run of ``throughput`` and ``durable`` first (see ``run``).
    warm_up: bool = True
    #: The ``fanout`` scenario: events per run, and the numbers of consumers.
    fanout_events: int = 65_536
    fanout_subscriptions: tuple[int, ...] = fanout.SUBSCRIPTIONS


# ---- sealbus side ------------------------------------------------------------------------


@dataclass
class _Setup:
    router: sealbus.Router
    producer: sealbus.Producer
    subs: list[sealbus.Subscription]


def _make_router(path: Path | None, max_pending: int, timeout: float | None = None, busy_poll: float = 0.0) -> _Setup:
    """A router as a service would configure it: the schema registered, default-deny
    policy with one producer and three consumers, three subscriptions.

    On a durable router (``path``) the subscriptions are durable and named, as a
    service's would be: the queue is then a window of ``max_pending`` events onto the
    log and the backlog lives on disk, not in memory."""
    if path is None:
        router = sealbus.Router()
    else:
        try:
            router = sealbus.Router(path=str(path), fsync="batch")
        except TypeError as exc:
            raise NotAvailable(f"not available: Router(path=..., fsync='batch') is not supported yet ({exc})") from exc
    router.schemas.register(EVENT_TYPE, SCHEMA)
    checkout = router.principal("checkout")
    router.policy.allow_publish(checkout, "orders.*")
    durable = bool(router.durable)
    subs = []
    for name, pattern in zip(("inventory", "shipping", "analytics"), PATTERNS, strict=True):
        who = router.principal(name)
        router.policy.allow_subscribe(who, "orders.*")
        subs.append(
            router.subscribe(
                who,
                EVENT_TYPE,
                pattern=pattern,
                max_pending=max_pending,
                on_full="block",
                durable=durable,
                name=name if durable else None,
                busy_poll=busy_poll,
            )
        )
    return _Setup(router, router.producer(checkout, timeout=timeout), subs)


def _log_bytes(router: sealbus.Router) -> int | None:
    """Bytes in the durable log (``counters()["log_bytes"]``; None in memory)."""
    value = router.counters().get("log_bytes")
    return None if value is None else int(value)


def _fsync_count(router: sealbus.Router) -> int | None:
    """The durable log's fsync counter, if the router exposes one as
    ``counters()["fsyncs"]`` (the in-memory router has none)."""
    value = router.counters().get("fsyncs")
    return None if value is None else int(value)


def _close(setup: _Setup) -> None:
    for s in setup.subs:
        s.close()
    close = getattr(setup.router, "close", None)
    if callable(close):
        close()


class _Tally:
    """One consumer's accounting of the batches it polled (up to 1,024 events as one
    :class:`~sealbus.DeliveryBatch`, one buffer + offsets, acked in one call).

    Every event matches, and a publish of one pool batch lands contiguously in each
    queue, so a poll of at most 1,024 events spans at most two publish batches. Each
    batch's subject is its number ``b``; the first and last message of a poll name
    them, ``sent[b]`` gives their publish time and size, and the consumer's position
    inside the current batch says how many of the poll belong to each. No
    per-message Python work beyond the poll and the ack. Order check: with
    ``producers`` threads, producer ``b % producers`` publishes batch ``b``, so each
    producer's batches must arrive in increasing order."""

    def __init__(self, events: int, sent: dict[int, tuple[int, int]], producers: int) -> None:
        self.events, self.sent, self.producers = events, sent, producers
        self.got = 0
        self.out_of_order = 0
        self.lat: list[tuple[int, int]] = []  # (latency ns, events)
        self._last_seen = [-1] * producers  # per producer, the last batch number seen
        self._cur, self._pos = -1, 0  # the batch being received and how many of it so far

    def take(self, batch: PolledBatch, t1: int) -> None:
        """Account a polled batch (stamped ``t1`` when the poll returned) and ack it."""
        k = len(batch)
        batch.ack()
        first, last = int(batch[0].event.subject or -1), int(batch[-1].event.subject or -1)
        left, producers, last_seen = k, self.producers, self._last_seen
        for b in (first, last) if first != last else (first,):
            if self._pos == 0:
                if b <= last_seen[b % producers]:
                    self.out_of_order += 1
                last_seen[b % producers] = b
                self._cur = b
            elif b != self._cur:
                self.out_of_order += 1
            t0, size = self.sent[self._cur]
            n = min(left, size - self._pos)
            self.lat.append((t1 - t0, n))
            left -= n
            self._pos = 0 if self._pos + n == size else self._pos + n
        if left:
            self.out_of_order += 1
        self.got += k


class _ConsumerThread(threading.Thread):
    """Polls its subscriptions until each has received ``events``: one subscription
    with ``poll_batch``, several through one :class:`sealbus.Selector` (one thread
    serving all three consumers, woken once for news on any)."""

    def __init__(
        self,
        subs: Sequence[sealbus.Subscription],
        tallies: Sequence[_Tally],
        deadline: float,
    ) -> None:
        super().__init__(name=f"bench-{'+'.join(s.name for s in subs)}", daemon=True)
        self.subs, self.tallies, self.deadline = list(subs), list(tallies), deadline
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # reported by the harness, not lost in a thread
            self.error = exc

    def _run(self) -> None:
        now_ns, tallies = time.perf_counter_ns, self.tallies
        if len(self.subs) == 1:
            sub, tally = self.subs[0], tallies[0]
            while tally.got < tally.events:
                batch = sub.poll_batch(BATCH, 0.2)
                if len(batch):
                    tally.take(batch, now_ns())
                elif time.monotonic() > self.deadline:
                    return
            return
        index = {id(s): i for i, s in enumerate(self.subs)}
        with sealbus.Selector(self.subs) as sel:
            while any(t.got < t.events for t in tallies):
                ready = sel.poll_batch(BATCH, 0.2)
                t1 = now_ns()
                for sub, batch in ready:
                    tallies[index[id(sub)]].take(batch, t1)
                if not ready and time.monotonic() > self.deadline:
                    return


def _consumer_threads(
    subs: Sequence[sealbus.Subscription], tallies: Sequence[_Tally], deadline: float, shared: bool
) -> list[_ConsumerThread]:
    if shared:
        return [_ConsumerThread(subs, tallies, deadline)]
    return [_ConsumerThread([s], [t], deadline) for s, t in zip(subs, tallies, strict=True)]


def sealbus_throughput(
    pool: Sequence[Batch],
    events: int,
    *,
    path: Path | None = None,
    max_pending: int = 65_536,
    progress: Callable[[int], None] | None = None,
    timeout: float | None = None,
    producers: int = 1,
    shared_consumer_thread: bool = False,
) -> Figures:
    """Scenario ``throughput`` (``path=None``) or ``durable`` (a folder).

    ``producers`` threads publish the batches between them (batch ``b`` by producer
    ``b % producers``), as a service's request handlers would: concurrent publishes
    share the durable log's group commits. The three consumers poll on a thread each,
    or with ``shared_consumer_thread`` on one thread through a :class:`sealbus.Selector`."""
    scenario = "throughput" if path is None else "durable"
    fig = Figures("sealbus", scenario, events=events)
    fig.producers = producers
    # A bounded wait on a full queue: if a consumer thread dies, the producer gets
    # Backpressure (reported as an error) instead of blocking forever.
    setup = _make_router(path, max_pending, timeout=30.0)
    try:
        fsync0, bytes0 = _fsync_count(setup.router), _log_bytes(setup.router)
        limit = timeout if timeout is not None else max(60.0, events / 5_000)
        sent: dict[int, tuple[int, int]] = {}
        deadline = time.monotonic() + limit
        tallies = [_Tally(events, sent, producers) for _ in setup.subs]
        consumers = _consumer_threads(setup.subs, tallies, deadline, shared_consumer_thread)
        publish, now_ns = setup.producer.publish_raw, time.perf_counter_ns
        n_batches = -(-events // BATCH)
        done = [0] * producers
        errors: list[BaseException] = []

        # Batch 0 takes the remainder, so every later batch is whole. It is published
        # before the other producers start: a short batch landing between two others
        # could make a poll span three batches, which the consumers do not account.
        first_size = events - (n_batches - 1) * BATCH

        def publish_batch(b: int) -> int:
            batch = pool[b % len(pool)]
            n = first_size if b == 0 else BATCH
            buf, offs = (batch.buffer, batch.offsets) if n == batch.count else _head(batch, n)
            sent[b] = (now_ns(), n)
            publish(EVENT_TYPE, buf, offs, subject=str(b))
            return n

        def produce(p: int) -> None:
            try:
                for b in range(p or producers, n_batches, producers):
                    done[p] += publish_batch(b)
                    if progress is not None and p == 0:
                        progress(sum(done))
            except BaseException as exc:  # reported below, not lost in a thread
                errors.append(exc)

        cpu0 = cpu_seconds()
        with RssSampler("self") as rss:
            for c in consumers:
                c.start()
            t_start = time.perf_counter()
            done[0] = publish_batch(0)
            threads = [
                threading.Thread(target=produce, args=(p,), name=f"bench-producer-{p}") for p in range(1, producers)
            ]
            for t in threads:
                t.start()
            produce(0)
            for t in threads:
                t.join()
            if progress is not None:
                progress(sum(done))
            for c in consumers:
                c.join()
            fig.seconds = time.perf_counter() - t_start
        fig.cpu_s_per_mevent = _per_mevent(cpu0, cpu_seconds(), events)
        fsync1, bytes1 = _fsync_count(setup.router), _log_bytes(setup.router)
        read_back = int(setup.router.counters().get("read_back", 0))
        if read_back:
            # Consumers outside their in-memory window read these from disk: correct,
            # but it costs CPU, so a run where it happens is worth knowing about.
            fig.notes.append(f"{read_back:,} deliveries read back from the log (a consumer fell out of its window)")
        if errors:
            raise errors[0]
        for c in consumers:
            if c.error is not None:
                raise c.error
        if shared_consumer_thread:
            fig.notes.append("the 3 consumers share one thread (sealbus.Selector)")
        stats = [s.stats() for s in setup.subs]
        fig.events_per_s = events / fig.seconds
        fig.delivered = [c.got for c in tallies]
        fig.acked = [s["acked"] for s in stats]
        fig.redelivered = [s["redelivered"] for s in stats]
        fig.out_of_order = sum(c.out_of_order for c in tallies)
        pairs = [p for c in tallies for p in c.lat]
        fig.p50_us = weighted_percentile(pairs, 50) / 1000
        fig.p99_us = weighted_percentile(pairs, 99) / 1000
        fig.latency_quantiles_us = [weighted_percentile(pairs, q / 2) / 1000 for q in range(201)]
        fig.rss_bytes = rss.peak
        if fsync0 is not None and fsync1 is not None:
            n_fsync = fsync1 - fsync0
            fig.fsyncs_per_s = n_fsync / fig.seconds
            fig.events_per_fsync = events / n_fsync if n_fsync else float("inf")
        elif path is not None:
            fig.notes.append("router exposes no counters()['fsyncs']")
        if bytes0 is not None and bytes1 is not None:
            fig.log_bytes_per_event = (bytes1 - bytes0) / events
            fig.log_write_bytes_per_s = (bytes1 - bytes0) / fig.seconds
        short = [i for i, c in enumerate(tallies) if c.got < events]
        if short:
            fig.status = "error: " + ", ".join(
                f"consumer {i} received {tallies[i].got:,}/{events:,} (timed out)" for i in short
            )
        elif fig.out_of_order:
            fig.status = f"error: {fig.out_of_order} polls out of publish order"
    finally:
        _close(setup)
    return fig


def _per_mevent(cpu0: float | None, cpu1: float | None, events: int) -> float:
    if cpu0 is None or cpu1 is None or events <= 0:
        return float("nan")
    return (cpu1 - cpu0) / events * 1e6


def _head(batch: Batch, n: int) -> tuple[bytes, list[int]]:
    return batch.buffer[: batch.offsets[n]], batch.offsets[: n + 1]


def sealbus_latency(
    pool: Sequence[Batch],
    events: int,
    rate: float,
    *,
    progress: Callable[[int], None] | None = None,
    switch_interval: float | None = None,
    busy_poll: float = 0.0,
    shared_consumer_thread: bool = False,
) -> Figures:
    """Scenario ``latency``: one event per publish, paced at ``rate`` events/s. The
    three consumers poll on a thread each, or with ``shared_consumer_thread`` on one
    thread through a :class:`sealbus.Selector`."""
    if switch_interval is not None:
        previous = sys.getswitchinterval()
        sys.setswitchinterval(switch_interval)
        try:
            fig = sealbus_latency(
                pool,
                events,
                rate,
                progress=progress,
                busy_poll=busy_poll,
                shared_consumer_thread=shared_consumer_thread,
            )
        finally:
            sys.setswitchinterval(previous)
        fig.notes.append(f"sys.setswitchinterval({switch_interval:g}) during the run")
        return fig
    fig = Figures("sealbus", "latency", events=events, offered_rate=rate)
    singles = [(p, [0, len(p)]) for b in pool for p in b.payloads()]
    # A selector spins for news itself: its subscriptions need not.
    setup = _make_router(None, 65_536, timeout=30.0, busy_poll=0.0 if shared_consumer_thread else busy_poll)
    if busy_poll:
        fig.notes.append(f"consumers busy-poll for {busy_poll * 1e6:g} µs before sleeping")
    if shared_consumer_thread:
        fig.notes.append("the 3 consumers share one thread (sealbus.Selector)")
    # Timestamps go into arrays sized and touched up front: a list would keep an int
    # object per stamp, and its growth faulted in ~2,200 fresh pages during the run.
    t0s = _zeros(events)
    lat = [_zeros(events) for _ in setup.subs]
    router_lat = [_zeros(events) for _ in setup.subs]
    got = [0] * len(setup.subs)
    order_errors = [0] * len(setup.subs)
    deadline = time.monotonic() + events / rate + 60

    def account(i: int, batch: PolledBatch, t1: int) -> None:
        """Consumer ``i`` polled ``batch``; its poll returned at ``t1``. The router's
        own stamp is the instant the consumer's thread held the events, before it
        waited for the GIL to come back to Python. FIFO per subscription and every
        event matches: the n-th delivery is the n-th publish (the subjects of the
        first and last check it)."""
        k = len(batch)
        tr = batch.received_ns
        first = got[i]
        if batch[0].event.subject != str(first) or batch[-1].event.subject != str(first + k - 1):
            order_errors[i] += 1
        mine, in_router = lat[i], router_lat[i]
        for j in range(first, min(first + k, events)):
            mine[j], in_router[j] = t1 - t0s[j], tr - t0s[j]
        batch.ack()
        got[i] += k

    def consume(i: int) -> None:
        sub, now_ns = setup.subs[i], time.perf_counter_ns
        while got[i] < events and time.monotonic() < deadline:
            batch = sub.poll_batch(BATCH, 0.2)
            # Stamped as soon as the poll returns: publish->deliver, not ->ack.
            t1 = now_ns()
            if len(batch):
                account(i, batch, t1)

    def consume_all() -> None:
        now_ns = time.perf_counter_ns
        index = {id(s): i for i, s in enumerate(setup.subs)}
        with sealbus.Selector(setup.subs, busy_poll=busy_poll) as sel:
            while min(got) < events and time.monotonic() < deadline:
                ready = sel.poll_batch(BATCH, 0.2)
                t1 = now_ns()
                for sub, batch in ready:
                    account(index[id(sub)], batch, t1)

    threads = (
        [threading.Thread(target=consume_all, daemon=True)]
        if shared_consumer_thread
        else [threading.Thread(target=consume, args=(i,), daemon=True) for i in range(len(setup.subs))]
    )
    publish, now_ns, sleep, clock = (
        setup.producer.publish_raw,
        time.perf_counter_ns,
        time.sleep,
        time.perf_counter,
    )
    cpu0 = cpu_seconds()
    try:
        with RssSampler("self") as rss, timer_slack(PACER_SLACK_NS) as precise:
            if precise:
                fig.notes.append(f"the pacer's timer slack is {PACER_SLACK_NS / 1000:g} µs (Linux default: 50 µs)")
            for t in threads:
                t.start()
            interval = 1.0 / rate
            t_start = clock()
            for seq in range(events):
                due = t_start + seq * interval
                # Sleep (the GIL released) until the send is due; never spin. At
                # 10k/s the interval is 100 µs, so the former "sleep(0) for the last
                # 200 µs" spun on every event: the producer kept re-taking the GIL and
                # a woken consumer waited for the 5 ms switch interval to force a
                # handoff, which the p99 then measured. A late wake-up delays the
                # send, not the measurement (t0 is stamped at the send), but the
                # absolute schedule then sends the next one at once: with Linux's
                # default 50 µs timer slack, sends came in pairs 30 and 170 µs apart,
                # hence `timer_slack` above.
                if (remaining := due - clock()) > 0:
                    sleep(remaining)
                payload, offs = singles[seq % len(singles)]
                t0s[seq] = now_ns()
                publish(EVENT_TYPE, payload, offs, subject=str(seq))
                if progress is not None and seq % 256 == 0:
                    progress(seq)
            send_seconds = clock() - t_start
            for t in threads:
                t.join()
            fig.seconds = clock() - t_start
        fig.cpu_s_per_mevent = _per_mevent(cpu0, cpu_seconds(), events)
        stats = [s.stats() for s in setup.subs]
    finally:
        _close(setup)
    all_lat = sorted(v for mine, n in zip(lat, got, strict=True) for v in mine[:n])
    fig.delivered = list(got)
    fig.acked = [s["acked"] for s in stats]
    fig.redelivered = [s["redelivered"] for s in stats]
    fig.sent_rate = events / send_seconds
    fig.events_per_s = events / fig.seconds
    fig.p50_us = percentile(all_lat, 50) / 1000
    fig.p99_us = percentile(all_lat, 99) / 1000
    fig.latency_quantiles_us = [percentile(all_lat, q / 2) / 1000 for q in range(201)]
    in_router = sorted(v for mine, n in zip(router_lat, got, strict=True) for v in mine[:n])
    fig.router_p50_us = percentile(in_router, 50) / 1000
    fig.router_p99_us = percentile(in_router, 99) / 1000
    fig.rss_bytes = rss.peak
    if any(g < events for g in got):
        fig.status = f"error: consumers received {got} of {events:,}"
    elif any(order_errors):
        fig.status = f"error: {sum(order_errors)} polls out of publish order"
    return fig


def _zeros(n: int) -> array[int]:
    """``n`` signed 64-bit zeros, their memory written (so faulted in) now."""
    return array("q", bytes(8 * n))


def sealbus_backlog(
    pool: Sequence[Batch],
    events: int,
    sample_every: int,
    *,
    path: Path,
    progress: Callable[[int], None] | None = None,
) -> Figures:
    """Scenario ``backlog``: publish ``events`` on a durable router while three
    subscribers never poll; RSS every ``sample_every`` events."""
    fig = Figures("sealbus", "backlog", events=events)
    # A publish blocked for 10 s on a full queue means the backlog lives in memory
    # queues, not in the log: report it rather than hang.
    setup = _make_router(path, 10_000, timeout=10.0)
    try:
        fsync0 = _fsync_count(setup.router)
        samples = [(0, rss_bytes() or 0)]
        sent, b = 0, 0
        t_start = time.perf_counter()
        with RssSampler("self") as rss:
            while sent < events:
                batch = pool[b % len(pool)]
                n = min(batch.count, events - sent, sample_every - sent % sample_every)
                buf, offs = (batch.buffer, batch.offsets) if n == batch.count else _head(batch, n)
                try:
                    setup.producer.publish_raw(EVENT_TYPE, buf, offs)
                except Backpressure as exc:
                    fig.status = (
                        f"error: publishing blocked at {sent + exc.accepted:,} events "
                        "(a subscriber's queue is full: the backlog is held in memory, not in the log)"
                    )
                    break
                sent += n
                b += 1
                if sent % sample_every == 0:
                    samples.append((sent, rss_bytes() or 0))
                if progress is not None:
                    progress(sent)
        fig.seconds = time.perf_counter() - t_start
        fsync1 = _fsync_count(setup.router)
    finally:
        _close(setup)
    fig.events_per_s = sent / fig.seconds if fig.seconds > 0 else float("nan")
    fig.rss_samples = samples
    fig.rss_bytes = rss.peak
    fig.rss_growth_bytes = rss_growth(samples)
    if fsync0 is not None and fsync1 is not None and fsync1 > fsync0:
        fig.fsyncs_per_s = (fsync1 - fsync0) / fig.seconds
        fig.events_per_fsync = sent / (fsync1 - fsync0)
    return fig


def rss_growth(samples: Sequence[tuple[int, int]]) -> float:
    """RSS growth from the first checkpoint (10 % of the backlog) to the last: the
    jump from an idle process to a working one (stream or log opened, allocator
    warmed up) is not backlog, so the sample at 0 events is left out."""
    if len(samples) < 3:
        return float(samples[-1][1] - samples[0][1]) if len(samples) == 2 else float("nan")
    return float(samples[-1][1] - samples[1][1])


# ---- NATS side ---------------------------------------------------------------------------


def _from_nats(scenario: str, r: nats_baseline.NatsResult) -> Figures:
    fig = Figures(
        "nats",
        scenario,
        events=r.events,
        seconds=r.seconds,
        events_per_s=r.events_per_s,
        p50_us=r.p50_us,
        p99_us=r.p99_us,
        rss_bytes=r.server_rss_peak,
        delivered=r.delivered,
        acked=r.ack_floor,
        rss_samples=r.rss_samples,
        latency_quantiles_us=r.latency_quantiles_us,
    )
    if r.server_cpu_s == r.server_cpu_s and r.events:
        fig.cpu_s_per_mevent = (r.server_cpu_s + r.client_cpu_s) / r.events * 1e6
        fig.notes.append(f"CPU s: nats-server {r.server_cpu_s:.2f}, client {r.client_cpu_s:.2f}")
    fig.notes.append(f"client process RSS peak {r.client_rss_peak / MiB:.0f} MiB")
    if r.offered_rate:
        fig.offered_rate = r.offered_rate
        fig.sent_rate = r.events / r.send_seconds
    if r.rss_samples:
        fig.rss_growth_bytes = rss_growth(r.rss_samples)
    bad = [
        f"consumer {i}: {d:,} delivered, {dup} duplicates, {m} missing"
        for i, (d, dup, m) in enumerate(zip(r.delivered, r.duplicates, r.missing, strict=True))
        if dup or m
    ]
    if bad and scenario != "backlog":
        fig.status = "error: " + "; ".join(bad)
    return fig


# ---- running -----------------------------------------------------------------------------


@dataclass
class Report:
    config: Config
    runs: dict[str, list[Figures]] = field(default_factory=dict)  # "scenario/system" -> runs
    environment: dict[str, Any] = field(default_factory=dict)
    fanout: list[fanout.FanoutFigures] = field(default_factory=list)

    def add(self, fig: Figures) -> None:
        self.runs.setdefault(f"{fig.scenario}/{fig.system}", []).append(fig)

    def get(self, scenario: str, system: str) -> list[Figures]:
        return self.runs.get(f"{scenario}/{system}", [])


def median_of(runs: Sequence[Figures], attr: str) -> float:
    values = [getattr(r, attr) for r in runs if r.ok]
    values = [v for v in values if v == v]  # drop NaN
    return statistics.median(values) if values else float("nan")


def median_run(runs: Sequence[Figures], attr: str = "events_per_s") -> Figures | None:
    """The run whose ``attr`` is the median (for curves: plots use a real run)."""
    ok = sorted((r for r in runs if r.ok), key=lambda r: getattr(r, attr))
    return ok[len(ok) // 2] if ok else None


@contextlib.contextmanager
def _scratch(parent: str | None, prefix: str) -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _guard(system: str, scenario: str, fn: Callable[[], Figures]) -> Figures:
    """Run one measurement; a missing feature or a failure becomes a status in the
    table instead of ending the whole benchmark."""
    try:
        return fn()
    except NotAvailable as exc:
        return Figures(system, scenario, status=str(exc))
    except nats_baseline.NatsUnavailable as exc:
        return Figures(system, scenario, status=f"not available: {exc}")
    except Exception as exc:
        return Figures(system, scenario, status=f"error: {type(exc).__name__}: {exc}")


def run(config: Config, out: TextIO | None = None) -> Report:
    out = out if out is not None else sys.stdout
    report = Report(config, environment=_environment(config))
    bar = ProgressBar(config.progress)
    pool = encode_pool(8192, BATCH)  # not timed: encoded once per run
    latency_events = max(1, int(config.rate * config.latency_seconds))
    nats_ok = config.nats
    if nats_ok and nats_baseline.find_nats_server() is None:
        report.environment["nats"] = "skipped: no nats-server binary found"
        nats_ok = False
    elif nats_ok and not nats_baseline.nats_py_available():
        report.environment["nats"] = "skipped: nats-py not installed"
        nats_ok = False

    def step(label: str, total: int, fn: Callable[[Callable[[int], None]], Figures], scen: str, sysname: str) -> None:
        release_memory()
        bar.start(label, total)
        fig = _guard(sysname, scen, lambda: fn(bar.update))
        bar.finish()
        report.add(fig)

    # The JetStream throughput run serves both throughput rows (file storage is its
    # only durable mode and the baseline we compare against): run it once per repeat.
    nats_tp: list[Figures] = []
    n_nats = min(config.nats_events, config.events)
    if config.warm_up:
        _warm_up(config, pool, bar, report)
    for rep in range(1, config.repeat + 1):
        tag = f"{rep}/{config.repeat}"
        if "throughput" in config.scenarios:
            step(
                f"throughput sealbus {tag}",
                config.events,
                lambda p: sealbus_throughput(
                    pool,
                    config.events,
                    max_pending=config.max_pending,
                    progress=p,
                    producers=config.producers or 2,
                    shared_consumer_thread=config.shared_consumer_thread,
                ),
                "throughput",
                "sealbus",
            )
        if "durable" in config.scenarios:

            def durable(p: Callable[[int], None]) -> Figures:
                with _scratch(config.work_dir, "sealbus-bench-log-") as d:
                    return sealbus_throughput(
                        pool,
                        config.events,
                        path=d,
                        max_pending=config.max_pending,
                        progress=p,
                        producers=config.producers or 4,
                        shared_consumer_thread=config.shared_consumer_thread,
                    )

            step(f"durable sealbus {tag}", config.events, durable, "durable", "sealbus")
        if nats_ok and ("throughput" in config.scenarios or "durable" in config.scenarios):
            step(
                f"throughput NATS {tag}",
                n_nats,
                lambda p: _from_nats(
                    "throughput",
                    nats_baseline.run_throughput(
                        pool,
                        n_nats,
                        storage=config.nats_storage,
                        sync_always=config.nats_sync_always,
                        progress=p,
                    ),
                ),
                "throughput",
                "nats",
            )
            fig = report.runs["throughput/nats"][-1]
            nats_tp.append(fig)
            if "durable" in config.scenarios:
                report.add(_copy(fig, "durable"))
            if "throughput" not in config.scenarios:
                report.runs["throughput/nats"].pop()
        if "latency" in config.scenarios:
            step(
                f"latency sealbus {tag}",
                latency_events,
                lambda p: sealbus_latency(
                    pool,
                    latency_events,
                    config.rate,
                    progress=p,
                    switch_interval=config.switch_interval,
                    busy_poll=config.busy_poll,
                    shared_consumer_thread=not config.latency_threads,
                ),
                "latency",
                "sealbus",
            )
            if nats_ok:
                step(
                    f"latency NATS {tag}",
                    latency_events,
                    lambda p: _from_nats(
                        "latency",
                        nats_baseline.run_throughput(
                            pool,
                            latency_events,
                            rate=config.rate,
                            storage=config.nats_storage,
                            sync_always=config.nats_sync_always,
                            progress=p,
                            timeout=config.latency_seconds + 120,
                        ),
                    ),
                    "latency",
                    "nats",
                )
        if "bridge" in config.scenarios and nats_ok:
            _bridge_step(report, config, step)
        if "asyncio" in config.scenarios:
            step(
                f"asyncio sealbus {tag}",
                config.events,
                lambda p: _from_aio(aio_bench.sealbus_asyncio(config.events, work_dir=config.work_dir)),
                "asyncio",
                "sealbus",
            )
            if nats_ok:
                step(
                    f"asyncio NATS {tag}",
                    n_nats,
                    lambda p: _from_aio(aio_bench.nats_asyncio(n_nats)),
                    "asyncio",
                    "nats",
                )
    # The backlog scenario runs after every repeat of the others, not in their rounds.
    # It writes ~1.4 GB (a 1M-event log and JetStream's store) and deletes it, and the
    # scenario after it ran slower: durable runs right after a backlog run took 3.0-3.4
    # µs of CPU per event against 2.5-2.6 before it (484k-554k against 652k-688k
    # events/s, `--scenario durable --scenario backlog`). Most likely the cost of
    # faulting memory back in: this VM reports freed pages to its host
    # (page_reporting on its kernel command line).
    for rep in range(1, config.repeat + 1) if "backlog" in config.scenarios else ():
        tag = f"{rep}/{config.repeat}"

        def backlog(p: Callable[[int], None]) -> Figures:
            # The allocator returns freed memory 1 s after the free: wait it out, or the
            # first RSS checkpoint still holds the scenario before and the growth reads
            # negative (-65 MiB right after a durable run).
            time.sleep(PURGE_DELAY_MS / 1000 + 0.5)
            with _scratch(config.work_dir, "sealbus-bench-log-") as d:
                return sealbus_backlog(pool, config.backlog, config.backlog_sample, path=d, progress=p)

        step(f"backlog sealbus {tag}", config.backlog, backlog, "backlog", "sealbus")
        if nats_ok:
            step(
                f"backlog NATS {tag}",
                config.backlog,
                lambda p: _from_nats(
                    "backlog",
                    nats_baseline.run_backlog(
                        pool,
                        config.backlog,
                        storage="file",
                        sample_every=config.backlog_sample,
                        sync_always=config.nats_sync_always,
                        progress=p,
                    ),
                ),
                "backlog",
                "nats",
            )
    for rep in range(1, config.repeat + 1) if "fanout" in config.scenarios else ():
        for n in config.fanout_subscriptions:
            release_memory()
            bar.start(f"fanout {n:,} consumers {rep}/{config.repeat}", config.fanout_events)
            with _scratch(config.work_dir, "sealbus-bench-fanout-") as d:
                try:
                    fig_f = fanout.run_once(n, config.fanout_events, d, progress=bar.update)
                except Exception as exc:  # reported in the table, the other runs go on
                    fig_f = fanout.FanoutFigures(n, config.fanout_events, status=f"error: {exc!r}")
                finally:
                    # The at-rest key file the router created beside its folder.
                    Path(f"{d}.keys").unlink(missing_ok=True)
            bar.finish()
            report.fanout.append(fig_f)
    print_table(report, out)
    if config.json_path:
        write_json(report, config.json_path)
        print(f"raw results written to {config.json_path}", file=out)
    if config.plots:
        for msg in write_plots(report, config.plots):
            print(msg, file=out)
    return report


def _bridge_step(report: Report, config: Config, step: Callable[..., None]) -> None:
    from sealbus.bench import bridge

    events = min(config.events, 100_000)
    result: list[bridge.BridgeResult] = []

    def run(_p: Callable[[int], None]) -> Figures:
        r = bridge.run(events, rate=1_000.0, seconds=min(config.latency_seconds, 10.0))
        result.append(r)
        return Figures(
            "sealbus", "bridge", events=events, events_per_s=r.events_per_s, p50_us=r.p50_us, p99_us=r.p99_us
        )

    step("bridge (two processes through JetStream)", events, run, "bridge", "sealbus")
    if result:
        r = result[-1]
        # The baseline row: nats-py's events/s with 200 coroutines, and the bare NATS
        # hop's latency at the same rate (the floor under the bridge's).
        report.add(
            Figures(
                "nats",
                "bridge",
                events=events,
                events_per_s=r.nats_py_events_per_s,
                p50_us=r.hop_p50_us,
                p99_us=r.hop_p99_us,
            )
        )


#: Events in the uncounted warm-up run of each throughput scenario.
WARM_UP_EVENTS = 50_000


def _warm_up(config: Config, pool: Sequence[Batch], bar: ProgressBar, report: Report) -> None:
    """One short run of ``throughput`` and ``durable``, not counted. The first run in a
    process pays for growing the allocators' arenas and for a cold page cache (durable:
    often ~300k ev/s, against ~500k for the runs after it); a service runs warm, and the
    medians should not depend on which run came first."""
    n = min(config.events, WARM_UP_EVENTS)
    for scen in ("throughput", "durable"):
        if scen not in config.scenarios:
            continue
        bar.start(f"{scen} sealbus warm-up", n)
        with _scratch(config.work_dir, "sealbus-bench-log-") as d:
            path = d if scen == "durable" else None
            producers = config.producers or (4 if path else 2)

            def once(path: Path | None = path, producers: int = producers) -> Figures:
                return sealbus_throughput(
                    pool,
                    n,
                    path=path,
                    max_pending=config.max_pending,
                    progress=bar.update,
                    producers=producers,
                    shared_consumer_thread=config.shared_consumer_thread,
                )

            _guard("sealbus", scen, once)
        bar.finish()
    report.environment["warm_up"] = f"one uncounted run of {n:,} events per throughput scenario"


def _copy(fig: Figures, scenario: str) -> Figures:
    d = asdict(fig)
    d["scenario"] = scenario
    return Figures(**d)


def _environment(config: Config) -> dict[str, Any]:
    env: dict[str, Any] = {
        "sealbus": sealbus.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": cpu_count(),
        "loadavg_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "nats_server": None,
    }
    binary = nats_baseline.find_nats_server() if config.nats else None
    if binary:
        with contextlib.suppress(OSError, ValueError):
            env["nats_server"] = nats_baseline.NatsServer(binary).version()
    return env


# ---- output ------------------------------------------------------------------------------


def _fmt(value: float, unit: str) -> str:
    if value != value:  # NaN
        return "n/a"
    if unit == "ev/s":
        return f"{value:,.0f}"
    if unit == "µs":
        return f"{value:,.1f}" if value < 1000 else f"{value:,.0f}"
    if unit in ("MiB", "MiB/s"):
        return f"{value / MiB:,.1f}"
    if unit == "B":
        return f"{value:,.0f}"
    if unit in ("/s", "s"):
        return f"{value:,.1f}"
    if unit == "ev":
        return "inf" if value == float("inf") else f"{value:,.0f}"
    return f"{value:,.3g}"


# (label, attribute, unit, higher is better; None: no ratio, the figure is a setting)
_ROWS: dict[str, list[tuple[str, str, str, bool | None]]] = {
    "throughput": [
        ("events/s (all 3 acked)", "events_per_s", "ev/s", True),
        ("p50 publish→deliver", "p50_us", "µs", False),
        ("p99 publish→deliver", "p99_us", "µs", False),
        ("CPU per 1M events", "cpu_s_per_mevent", "s", False),
        ("RSS peak", "rss_bytes", "MiB", False),
    ],
    "latency": [
        ("sent events/s (paced)", "sent_rate", "ev/s", None),
        ("delivered events/s (all acked)", "events_per_s", "ev/s", True),
        ("p50 publish→deliver", "p50_us", "µs", False),
        ("p99 publish→deliver", "p99_us", "µs", False),
        ("p50 publish→consumer thread", "router_p50_us", "µs", False),
        ("p99 publish→consumer thread", "router_p99_us", "µs", False),
        ("RSS peak", "rss_bytes", "MiB", False),
    ],
    "durable": [
        ("events/s (all 3 acked)", "events_per_s", "ev/s", True),
        ("p50 publish→deliver", "p50_us", "µs", False),
        ("p99 publish→deliver", "p99_us", "µs", False),
        ("fsyncs/s", "fsyncs_per_s", "/s", False),
        ("events per fsync", "events_per_fsync", "ev", True),
        ("log bytes per event", "log_bytes_per_event", "B", False),
        ("log written", "log_write_bytes_per_s", "MiB/s", None),
        ("CPU per 1M events", "cpu_s_per_mevent", "s", False),
        ("RSS peak", "rss_bytes", "MiB", False),
    ],
    "bridge": [
        (
            "events/s, producer → consumer in another process (NATS: nats-py, 200 coroutines)",
            "events_per_s",
            "ev/s",
            True,
        ),
        ("p50 publish→remote deliver at 1,000 ev/s", "p50_us", "µs", False),
        ("p99 publish→remote deliver at 1,000 ev/s", "p99_us", "µs", False),
    ],
    "asyncio": [
        ("events/s (200 coroutines)", "events_per_s", "ev/s", True),
        ("p50 publish→receipt", "p50_us", "µs", False),
        ("p99 publish→receipt", "p99_us", "µs", False),
        ("loop lag p99", "lag_p99_us", "µs", False),
        ("loop lag max", "lag_max_us", "µs", False),
        ("loop lag p99, loop thread's CPU", "lag_cpu_p99_us", "µs", False),
        ("CPU per 1M events", "cpu_s_per_mevent", "s", False),
        ("p50 publish→async for (5k/s)", "consumer_p50_us", "µs", False),
        ("p99 publish→async for (5k/s)", "consumer_p99_us", "µs", False),
    ],
    "backlog": [
        ("publish events/s", "events_per_s", "ev/s", True),
        ("RSS peak", "rss_bytes", "MiB", False),
        ("RSS growth, 10% → 100% of backlog", "rss_growth_bytes", "MiB", False),
    ],
}


def _ratio(s: float, n: float, higher_better: bool | None) -> str:
    if higher_better is None or s != s or n != n or s <= 0 or n <= 0:
        return ""
    r = s / n if higher_better else n / s
    return f"{r:,.2f}x"


def print_table(report: Report, out: TextIO) -> None:
    c = report.config
    print(file=out)
    nats = (
        f"NATS {min(c.nats_events, c.events):,} events (JetStream {c.nats_storage} storage"
        f"{', sync always' if c.nats_sync_always else ', default sync'})"
        if c.nats
        else "NATS skipped (--no-nats)"
    )
    print(
        f"sealbus bench: medians of {c.repeat} run(s); sealbus {c.events:,} events, {nats}; "
        f"{CONSUMERS} consumers ack everything; batches of {BATCH:,}",
        file=out,
    )
    env = report.environment
    print(
        f"python {env.get('python')}, {env.get('cpus')} CPUs, load at start "
        f"{', '.join(f'{x:.1f}' for x in env.get('loadavg_at_start') or [])}; "
        f"nats-server: {env.get('nats_server') or env.get('nats') or 'not run'}",
        file=out,
    )
    head = ("scenario", "metric", "sealbus", "NATS JetStream", "sealbus advantage")
    rows: list[tuple[str, ...]] = []
    notes: list[str] = []
    if report.environment.get("warm_up"):
        notes.append(f"sealbus throughput and durable medians follow {report.environment['warm_up']}")
    for scen in c.scenarios:
        if scen == "fanout":
            continue  # a table of its own, below
        s_runs, n_runs = report.get(scen, "sealbus"), report.get(scen, "nats")
        for runs in (s_runs, n_runs):
            for fr in runs:
                note = f"{scen} {fr.system}: {fr.status}"
                if not fr.ok and note not in notes:
                    notes.append(note)
        for i, (label, attr, unit, hib) in enumerate(_ROWS[scen]):
            s, n = median_of(s_runs, attr), median_of(n_runs, attr)
            sval = _fmt(s, unit) if any(r.ok for r in s_runs) else _status_word(s_runs)
            nval = _fmt(n, unit) if any(r.ok for r in n_runs) else _status_word(n_runs)
            if attr in ("fsyncs_per_s", "events_per_fsync", "log_bytes_per_event", "log_write_bytes_per_s") and n != n:
                nval = "n/a" if n_runs else nval
            rows.append((scen if i == 0 else "", f"{label} ({unit})", sval, nval, _ratio(s, n, hib)))
        if scen == "latency":
            for system, runs in (("sealbus", s_runs), ("NATS", n_runs)):
                sent, got = median_of(runs, "sent_rate"), median_of(runs, "events_per_s")
                if sent == sent and sent < 0.95 * c.rate:
                    notes.append(
                        f"latency {system}: the producer kept only {sent:,.0f}/s of the {c.rate:,.0f}/s "
                        "schedule (CPU busy)"
                    )
                if got == got and sent == sent and got < 0.95 * sent:
                    notes.append(
                        f"latency {system}: saturated, delivered {got:,.0f}/s of {sent:,.0f}/s sent: "
                        "its latencies measure a growing queue"
                    )
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]
    line = "  ".join(h.ljust(w) if i < 2 else h.rjust(w) for i, (h, w) in enumerate(zip(head, widths, strict=True)))
    print(line, file=out)
    print("-" * len(line), file=out)
    for r in rows:
        print(
            "  ".join(v.ljust(w) if i < 2 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths, strict=True))),
            file=out,
        )
    print(file=out)
    print("sealbus advantage: >1 means sealbus is better (higher rate, lower latency or memory).", file=out)
    print("RSS: sealbus = whole benchmark process (router inside); NATS = nats-server process.", file=out)
    print(
        "CPU: sealbus = whole process, all threads; NATS = nats-server + the nats-py client process.",
        file=out,
    )
    if "durable" in c.scenarios:
        print(
            "NATS durable row = the JetStream file-storage run (its only durable mode); "
            "JetStream fsyncs are not counted.",
            file=out,
        )
    for note in notes:
        print(f"note: {note}", file=out)
    fanout.print_table(report.fanout, out)
    for t in targets(report):
        print(t, file=out)


def _status_word(runs: Sequence[Figures]) -> str:
    if not runs:
        return "not run"
    st = runs[0].status
    return "not available" if st.startswith("not available") else "error"


def targets(report: Report) -> list[str]:
    """The project's performance targets, checked against this run's medians."""
    lines = ["targets:"]

    def verdict(ok: bool | None) -> str:
        return "n/a " if ok is None else ("PASS" if ok else "FAIL")

    d = median_of(report.get("durable", "sealbus"), "events_per_s")
    dn = median_of(report.get("durable", "nats"), "events_per_s")
    lines.append(
        f"  [{verdict(None if d != d else d >= 500_000)}] >= 500k events/s end to end, fsync=batch: {_fmt(d, 'ev/s')}"
    )
    ratio = d / dn if d == d and dn == dn and dn > 0 else float("nan")
    lines.append(
        f"  [{verdict(None if ratio != ratio else ratio >= 10)}] >= 10x JetStream (durable): "
        f"{'n/a' if ratio != ratio else f'{ratio:,.1f}x'}"
    )
    p99 = median_of(report.get("latency", "sealbus"), "p99_us")
    rp99 = median_of(report.get("latency", "sealbus"), "router_p99_us")
    lines.append(
        f"  [{verdict(None if p99 != p99 else p99 <= 50)}] p99 publish->deliver <= 50 µs at "
        f"{report.config.rate:,.0f} events/s in memory: {_fmt(p99, 'µs')} µs "
        f"(to the consumer's thread, before it has the GIL back: {_fmt(rp99, 'µs')} µs)"
    )
    b, bn = (
        median_of(report.get("bridge", "sealbus"), "events_per_s"),
        median_of(report.get("bridge", "nats"), "events_per_s"),
    )
    if b == b:
        br = b / bn if bn == bn and bn > 0 else float("nan")
        lines.append(f"  [{verdict(None if br != br else br >= 2)}] bridge >= 2x nats-py (200 coroutines): {br:,.2f}x")
        bp99 = median_of(report.get("bridge", "sealbus"), "p99_us")
        lines.append(
            f"  [{verdict(None if bp99 != bp99 else bp99 <= 5000)}] bridge p99 <= 5 ms at 1,000 ev/s: "
            f"{_fmt(bp99, 'µs')} µs (the bare NATS hop, same server and rate: "
            f"{_fmt(median_of(report.get('bridge', 'nats'), 'p99_us'), 'µs')} µs)"
        )
    if "asyncio" in report.config.scenarios:
        a = median_of(report.get("asyncio", "sealbus"), "events_per_s")
        an = median_of(report.get("asyncio", "nats"), "events_per_s")
        ar = a / an if a == a and an == an and an > 0 else float("nan")
        lag = median_of(report.get("asyncio", "sealbus"), "lag_p99_us")
        lag_cpu = median_of(report.get("asyncio", "sealbus"), "lag_cpu_p99_us")
        cp99 = median_of(report.get("asyncio", "sealbus"), "consumer_p99_us")
        lines.append(
            f"  [{verdict(None if ar != ar else ar >= 3)}] asyncio >= 3x nats-py's await js.publish: "
            f"{_fmt(a, 'ev/s')} vs {_fmt(an, 'ev/s')} ev/s ({'n/a' if ar != ar else f'{ar:,.2f}x'})"
        )
        lines.append(
            f"  [{verdict(None if lag != lag else lag <= 2000)}] asyncio loop lag p99 <= 2 ms: {_fmt(lag, 'µs')} µs "
            f"(the loop thread's CPU beyond the timer: {_fmt(lag_cpu, 'µs')} µs)"
        )
        lines.append(
            f"  [{verdict(None if cp99 != cp99 else cp99 <= 500)}] async consumer p99 <= 500 µs at "
            f"{aio_bench.RATE:,.0f} events/s: {_fmt(cp99, 'µs')} µs"
        )
    g = median_of(report.get("backlog", "sealbus"), "rss_growth_bytes")
    lines.append(
        f"  [{verdict(None if g != g else g <= 50 * MiB)}] RSS independent of backlog "
        f"({report.config.backlog:,} stored events; growth <= 50 MiB): {_fmt(g, 'MiB')} MiB"
    )
    lines.extend(fanout.targets(report.fanout))
    return lines


def write_json(report: Report, path: str) -> None:
    def clean(x: Any) -> Any:
        if isinstance(x, float) and x != x:
            return None
        if isinstance(x, float) and x == float("inf"):
            return "inf"
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, list | tuple):
            return [clean(v) for v in x]
        return x

    data = {
        "config": asdict(report.config),
        "environment": report.environment,
        "runs": {k: [asdict(f) for f in v] for k, v in report.runs.items()},
        "fanout": [fanout.as_dict(f) for f in report.fanout],
        "medians": {
            k: {attr: median_of(v, attr) for _, attr, _, _ in _ROWS[k.split("/")[0]]} for k, v in report.runs.items()
        },
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(clean(data), indent=2))


def write_plots(report: Report, directory: str) -> list[str]:
    """PNG plots with matplotlib (the ``bench`` extra), imported only when asked for."""
    try:
        import matplotlib  # type: ignore[import-not-found,unused-ignore]

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return ["plots skipped: matplotlib is not installed (pip install 'sealbus[bench]')"]
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    colors = {"sealbus": "tab:blue", "nats": "tab:orange"}
    names = {"sealbus": "sealbus", "nats": "NATS JetStream"}

    scen = [s for s in ("throughput", "durable") if report.get(s, "sealbus") or report.get(s, "nats")]
    if scen:
        fig, ax = plt.subplots(figsize=(6, 4))
        width = 0.38
        for j, system in enumerate(("sealbus", "nats")):
            vals = [median_of(report.get(s, system), "events_per_s") for s in scen]
            xs = [i + (j - 0.5) * width for i in range(len(scen))]
            ax.bar(xs, [v if v == v else 0 for v in vals], width, label=names[system], color=colors[system])
        ax.set_xticks(range(len(scen)), scen)
        ax.set_ylabel("events/s, all 3 consumers acked (median)")
        ax.set_yscale("log")
        ax.set_title("End-to-end throughput")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "throughput.png", dpi=120)
        plt.close(fig)
        written.append(str(out / "throughput.png"))

    curves = [
        (s, system, median_run(report.get(s, system), "p99_us"))
        for s in ("latency", "throughput")
        for system in ("sealbus", "nats")
    ]
    curves = [c for c in curves if c[2] is not None and c[2].latency_quantiles_us]
    if curves:
        fig, ax = plt.subplots(figsize=(6, 4))
        qs = [q / 2 for q in range(201)]
        for s, system, r in curves:
            assert r is not None
            ax.plot(
                r.latency_quantiles_us,
                qs,
                label=f"{names[system]}, {s}",
                color=colors[system],
                linestyle="-" if s == "latency" else ":",
            )
        ax.set_xscale("log")
        ax.set_xlabel("publish→deliver latency (µs)")
        ax.set_ylabel("percentile")
        ax.set_title("Latency distribution (median run)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "latency.png", dpi=120)
        plt.close(fig)
        written.append(str(out / "latency.png"))

    bl = [(system, median_run(report.get("backlog", system), "rss_growth_bytes")) for system in ("sealbus", "nats")]
    bl = [b for b in bl if b[1] is not None and b[1].rss_samples]
    if bl:
        fig, ax = plt.subplots(figsize=(6, 4))
        for system, r in bl:
            assert r is not None
            ax.plot(
                [x for x, _ in r.rss_samples],
                [y / MiB for _, y in r.rss_samples],
                marker="o",
                label=names[system],
                color=colors[system],
            )
        ax.set_xlabel("events stored, none acked")
        ax.set_ylabel("RSS (MiB)")
        ax.set_title("RSS vs backlog")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "backlog.png", dpi=120)
        plt.close(fig)
        written.append(str(out / "backlog.png"))
    return [f"plot written: {w}" for w in written] or ["plots: nothing to plot"]


# ---- command line ------------------------------------------------------------------------


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--events", type=int, help="events per throughput run (default 200,000; quick 20,000)")
    p.add_argument(
        "--nats-events",
        type=int,
        help="events per JetStream throughput run (default 50,000; quick 3,000): nats-py is far slower",
    )
    p.add_argument("--repeat", type=int, help="runs per scenario; the table shows medians (default 3; quick 1)")
    p.add_argument("--quick", action="store_true", help="small runs, one repeat: a smoke test in seconds")
    p.add_argument("--full", action="store_true", help="1,000,000 events per throughput run, 3 repeats")
    p.add_argument("--no-nats", action="store_true", help="skip the NATS JetStream baseline")
    p.add_argument("--plots", metavar="DIR", help="write PNG plots there (needs matplotlib)")
    p.add_argument("--json", metavar="FILE", help="write the raw results as JSON")
    p.add_argument(
        "--scenario",
        action="append",
        choices=SCENARIOS,
        metavar="NAME",
        help=f"run only this scenario (repeatable): {', '.join(SCENARIOS)}",
    )
    p.add_argument("--rate", type=float, default=10_000.0, help="offered events/s for 'latency' (default 10,000)")
    p.add_argument("--latency-seconds", type=float, help="duration of 'latency' (default 3; quick 1)")
    p.add_argument("--backlog", type=int, help="events for 'backlog' (default 1,000,000; quick 100,000)")
    p.add_argument("--nats-storage", choices=("file", "memory"), default="file")
    p.add_argument("--nats-sync-always", action="store_true", help="JetStream fsyncs every write")
    p.add_argument("--dir", help="parent folder for the durable logs (default: the system temp folder)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument(
        "--switch-interval",
        type=float,
        metavar="SECONDS",
        help="sys.setswitchinterval for the 'latency' run (default: Python's 0.005)",
    )
    p.add_argument(
        "--busy-poll",
        type=float,
        default=BUSY_POLL,
        metavar="SECONDS",
        help="the 'latency' consumers' selector (or each consumer) spins this long before sleeping "
        f"(default {BUSY_POLL:g}; 0: sleep at once)",
    )
    p.add_argument(
        "--latency-threads",
        action="store_true",
        help="the 'latency' consumers poll on a thread each (default: one sealbus.Selector thread for all three)",
    )
    p.add_argument(
        "--shared-consumer-thread",
        action="store_true",
        help="the 'throughput' and 'durable' consumers share one thread through a sealbus.Selector "
        "(default: a thread each)",
    )
    p.add_argument(
        "--no-warm-up",
        action="store_true",
        help="count every run (default: one short uncounted run of 'throughput' and 'durable' first)",
    )
    p.add_argument(
        "--producers",
        type=int,
        default=None,
        help="producer threads in 'throughput' and 'durable' "
        "(default 2 in memory; 4 durable, where half wait for their fsync)",
    )
    p.add_argument("--fanout-events", type=int, help="events per 'fanout' run (default 65,536; quick 16,384)")
    p.add_argument(
        "--fanout-subscriptions",
        type=int,
        action="append",
        metavar="N",
        help="online durable consumers in a 'fanout' run (repeatable; default 1, 100, 1,000 and 10,000)",
    )


def config_from_args(args: argparse.Namespace) -> Config:
    quick, full = bool(args.quick), bool(getattr(args, "full", False))

    def pick(value: Any, quick_value: Any, default: Any, full_value: Any = None) -> Any:
        if value is not None:  # an explicit 0 must reach the check below, not the default
            return value
        return quick_value if quick else full_value if full and full_value is not None else default

    events = pick(args.events, 20_000, 200_000, 1_000_000)
    backlog = pick(args.backlog, 100_000, 1_000_000)
    cfg = Config(
        scenarios=list(dict.fromkeys(args.scenario or DEFAULT_SCENARIOS)),
        events=events,
        nats_events=pick(args.nats_events, 3_000, 50_000, 100_000),
        repeat=pick(args.repeat, 1, 3),
        rate=args.rate,
        latency_seconds=pick(args.latency_seconds, 1.0, 3.0),
        backlog=backlog,
        backlog_sample=max(1, backlog // 10),
        nats=not args.no_nats,
        nats_storage=args.nats_storage,
        nats_sync_always=args.nats_sync_always,
        progress=not args.no_progress,
        plots=args.plots,
        json_path=args.json,
        work_dir=args.dir,
        switch_interval=getattr(args, "switch_interval", None),
        producers=getattr(args, "producers", None),
        busy_poll=getattr(args, "busy_poll", BUSY_POLL),
        latency_threads=bool(getattr(args, "latency_threads", False)),
        shared_consumer_thread=bool(getattr(args, "shared_consumer_thread", False)),
        warm_up=not getattr(args, "no_warm_up", False),
        fanout_events=pick(getattr(args, "fanout_events", None), 16_384, 65_536),
        fanout_subscriptions=tuple(getattr(args, "fanout_subscriptions", None) or fanout.SUBSCRIPTIONS),
    )
    if cfg.fanout_events < 1 or any(n < 1 for n in cfg.fanout_subscriptions):
        raise SystemExit("sealbus bench: --fanout-events and --fanout-subscriptions must be >= 1")
    for name in ("events", "nats_events", "repeat", "backlog", "producers"):
        if getattr(cfg, name) is not None and getattr(cfg, name) < 1:
            raise SystemExit(f"sealbus bench: --{name.replace('_', '-')} must be >= 1")
    if cfg.rate <= 0 or cfg.latency_seconds <= 0:
        raise SystemExit("sealbus bench: --rate and --latency-seconds must be > 0")
    if not cfg.busy_poll >= 0:
        raise SystemExit("sealbus bench: --busy-poll must be >= 0")
    return cfg


def main(args: argparse.Namespace | Sequence[str] | None = None) -> int:
    """Entry point of ``sealbus bench``; returns 1 if any measurement failed (a
    scenario the router does not support yet is reported, not a failure)."""
    if not isinstance(args, argparse.Namespace):
        parser = argparse.ArgumentParser(prog="sealbus bench", description=__doc__.split("\n")[0] if __doc__ else "")
        add_arguments(parser)
        args = parser.parse_args(args)
    report = run(config_from_args(args))
    failed = [f for runs in report.runs.values() for f in runs if f.status.startswith("error")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
