"""``sealbus bench --scenario asyncio``: an asyncio service publishing one event per
request, beside nats-py's ``await js.publish`` in the same run.

``COROUTINES`` (200) coroutines each publish one ~256-byte JSON event at a time and
await it: on sealbus ``await producer.publish_async(...)`` to a durable router
(``fsync="batch"``, sealed at rest, schema checked); on NATS ``await js.publish(...)``
to a JetStream file-storage stream on a nats-server this run starts. Both sides
encode each event's dict to JSON in the coroutine, as a request handler would.
Throughout, a ticker coroutine measures loop lag: how late a 1 ms timer fires (the
whole workload's lag: 200 coroutines' JSON encoding and task steps, on either side).
CPU is per event, this process's threads plus, for NATS, the server's. Then, on an
in-memory router, a coroutine publishes at ``RATE`` events/s with ``publish_async``
and an ``async for`` consumer on the same loop stamps each event: publish ->
``async for`` body latency.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import time
from array import array
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sealbus
from sealbus.bench.procstat import cpu_seconds, percentile

EVENT_TYPE = "orders.placed"
COROUTINES = 200
RATE = 5_000.0
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["orderId", "customer", "total", "currency", "items"],
    "properties": {
        "orderId": {"type": "string", "maxLength": 40},
        "customer": {"type": "string", "maxLength": 40},
        "total": {"type": "number", "minimum": 0},
        "currency": {"enum": ["USD", "EUR", "GBP", "JPY"]},
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["sku", "qty", "price"],
                "properties": {
                    "sku": {"type": "string"},
                    "qty": {"type": "integer", "minimum": 1},
                    "price": {"type": "number", "minimum": 0},
                },
            },
        },
        "seq": {"type": "integer"},
    },
}


def order(n: int) -> dict[str, Any]:
    """A ~256-byte OrderPlaced event (its JSON text)."""
    return {
        "orderId": f"ord-{n:012d}",
        "customer": f"cus-{n * 7919 % 10**8:08d}",
        "total": round(12.5 + n % 1000, 2),
        "currency": ("USD", "EUR", "GBP", "JPY")[n % 4],
        "items": [
            {"sku": f"ABC-{n % 10000:04d}", "qty": 1 + n % 5, "price": 9.99},
            {"sku": f"XYZ-{(n * 31) % 10000:04d}", "qty": 2, "price": 1.25},
        ],
        "seq": n,
        "notes": "leave at the door, ring twice",
    }


@dataclass
class AsyncFigures:
    """One run of the asyncio scenario on one system."""

    system: str
    status: str = "ok"
    events: int = 0
    seconds: float = float("nan")
    events_per_s: float = float("nan")
    #: Each publish, from the call to its awaited receipt (or ack).
    publish_p50_us: float = float("nan")
    publish_p99_us: float = float("nan")
    #: How late the ticker's 1 ms timer fired; and the loop thread's CPU time over
    #: each tick beyond the 1 ms (what held the loop, without other processes' share).
    lag_p99_us: float = float("nan")
    lag_max_us: float = float("nan")
    lag_cpu_p99_us: float = float("nan")
    lag_cpu_max_us: float = float("nan")
    cpu_s_per_mevent: float = float("nan")
    fsyncs: int = 0
    #: publish -> ``async for`` body, paced at ``RATE`` (sealbus only).
    consumer_p50_us: float = float("nan")
    consumer_p99_us: float = float("nan")
    consumer_rate: float = float("nan")
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class _Ticker:
    """Loop lag: how late a 1 ms timer fires, each time (what Node's
    ``monitorEventLoopDelay`` reports). Callbacks that hold the loop delay it, and
    so does a machine whose CPUs are busy with other processes; the loop thread's own
    CPU time over the same interval (beyond the 1 ms) counts only what ran on the
    loop, whatever else the machine runs."""

    def __init__(self) -> None:
        self.gaps = array("q")
        self.cpu = array("q")
        self.running = True

    async def run(self) -> None:
        now, cpu = time.perf_counter_ns, time.thread_time_ns
        gaps, cpus = self.gaps, self.cpu
        while self.running:
            t, c = now(), cpu()
            await asyncio.sleep(0.001)
            gaps.append(max(0, now() - t - 1_000_000))
            cpus.append(max(0, cpu() - c - 1_000_000))


async def _drive(
    publish: Callable[[int], Awaitable[Any]], events: int, coroutines: int, fig: Any, server_pid: int | None = None
) -> tuple[array[int], _Ticker]:
    """``coroutines`` coroutines publish ``events`` between them, one at a time each;
    returns the publish latencies and the loop's lag samples (ns). CPU is this
    process's, plus the server's when there is one."""
    lat = array("q", bytes(8 * events))
    ticker = _Ticker()
    counter = iter(range(events))
    now = time.perf_counter_ns

    async def handler() -> None:
        for n in counter:
            t0 = now()
            await publish(n)
            lat[n] = now() - t0

    def cpu() -> float | None:
        mine = cpu_seconds()
        server = cpu_seconds(server_pid) if server_pid is not None else 0.0
        return None if mine is None or server is None else mine + server

    tick = asyncio.create_task(ticker.run())
    cpu0 = cpu()
    t_start = time.perf_counter()
    await asyncio.gather(*(handler() for _ in range(coroutines)))
    fig.seconds = time.perf_counter() - t_start
    cpu1 = cpu()
    ticker.running = False
    await tick
    if cpu0 is not None and cpu1 is not None:
        fig.cpu_s_per_mevent = (cpu1 - cpu0) / events * 1e6
    return lat, ticker


def _fill(fig: Any, events: int, lat: array[int], ticker: _Ticker) -> None:
    fig.events = events
    fig.events_per_s = events / fig.seconds
    s = sorted(lat)
    fig.publish_p50_us, fig.publish_p99_us = percentile(s, 50) / 1000, percentile(s, 99) / 1000
    g, c = sorted(ticker.gaps), sorted(ticker.cpu)
    fig.lag_p99_us, fig.lag_max_us = percentile(g, 99) / 1000, g[-1] / 1000 if g else float("nan")
    fig.lag_cpu_p99_us, fig.lag_cpu_max_us = percentile(c, 99) / 1000, c[-1] / 1000 if c else float("nan")


def _run(
    coro: Coroutine[Any, Any, AsyncFigures], loop_factory: Callable[[], asyncio.AbstractEventLoop] | None
) -> AsyncFigures:
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(coro)


def sealbus_asyncio(
    events: int,
    *,
    coroutines: int = COROUTINES,
    work_dir: str | None = None,
    consumer_events: int = 15_000,
    rate: float = RATE,
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
) -> AsyncFigures:
    """The sealbus side: durable throughput and loop lag, then consumer latency."""
    return _run(_sealbus(events, coroutines, work_dir, consumer_events, rate), loop_factory)


async def _sealbus(
    events: int, coroutines: int, work_dir: str | None, consumer_events: int, rate: float
) -> AsyncFigures:
    fig = AsyncFigures("sealbus")
    d = Path(tempfile.mkdtemp(prefix="sealbus-bench-aio-", dir=work_dir))
    try:
        router = sealbus.Router(d / "log", fsync="batch", keys=d / "keys")
        try:
            router.schemas.register(EVENT_TYPE, SCHEMA)
            who = router.principal("checkout")
            router.policy.allow_publish(who, "orders.*")
            p = router.producer(who)
            await p.publish_async(EVENT_TYPE, order(0))  # the committer's thread starts
            fsync0 = router.counters()["fsyncs"]

            def publish(n: int) -> Awaitable[Any]:
                return p.publish_async(EVENT_TYPE, order(n))

            lat, ticker = await _drive(publish, events, coroutines, fig)
            fig.fsyncs = router.counters()["fsyncs"] - fsync0
            _fill(fig, events, lat, ticker)
            fig.notes.append(f"{events / max(fig.fsyncs, 1):,.0f} events per fsync")
        finally:
            router.close()
    finally:
        shutil.rmtree(d, ignore_errors=True)
    if consumer_events:
        await _consumer_latency(fig, consumer_events, rate)
    return fig


async def _consumer_latency(fig: AsyncFigures, events: int, rate: float) -> None:
    """A coroutine publishes ``events`` at ``rate``/s (absolute schedule) with
    ``publish_async``; an ``async for`` consumer on the same loop stamps each."""
    router = sealbus.Router()
    router.schemas.register(EVENT_TYPE, SCHEMA)
    who = router.principal("checkout")
    reader = router.principal("shipping")
    router.policy.allow_publish(who, "orders.*")
    router.policy.allow_subscribe(reader, "orders.*")
    sub = router.subscribe(reader, EVENT_TYPE)
    p = router.producer(who)
    t0s = array("q", bytes(8 * events))
    lat = array("q", bytes(8 * events))
    now = time.perf_counter_ns
    payloads = [order(n) for n in range(events)]

    async def consume() -> None:
        got = 0
        async for msg in sub:
            t = now()
            n = int(msg.event.subject or 0)
            lat[n] = t - t0s[n]
            msg.ack()
            got += 1
            if got == events:
                return

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.01)
    interval = 1e9 / rate
    start = now()
    for n in range(events):
        due = start + int(n * interval)
        wait = due - now()
        if wait > 0:
            await asyncio.sleep(wait / 1e9)
        t0s[n] = now()
        await p.publish_async(EVENT_TYPE, payloads[n], subject=str(n))
    sent_s = (now() - start) / 1e9
    await asyncio.wait_for(task, 30)
    s = sorted(lat)
    fig.consumer_p50_us, fig.consumer_p99_us = percentile(s, 50) / 1000, percentile(s, 99) / 1000
    fig.consumer_rate = events / sent_s
    sub.close()
    router.close()


def nats_asyncio(
    events: int,
    *,
    coroutines: int = COROUTINES,
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
) -> AsyncFigures:
    """The baseline: ``await js.publish`` from ``coroutines`` coroutines, JetStream
    file storage, on a nats-server started for this run."""
    from sealbus.bench.nats_baseline import NatsServer

    with NatsServer() as server:
        return _run(_nats(server.url, server.pid, events, coroutines), loop_factory)


async def _nats(url: str, pid: int, events: int, coroutines: int) -> AsyncFigures:
    import nats
    from nats.js.api import StorageType, StreamConfig
    from nats.js.errors import ServiceUnavailableError

    fig = AsyncFigures("nats")
    nc = await nats.connect(url, name="sealbus-bench-aio", max_reconnect_attempts=0)
    try:
        js = nc.jetstream()
        cfg = StreamConfig(name="SEALBUS_AIO", subjects=["orders.>"], storage=StorageType.FILE)
        for attempt in range(50):
            try:
                await js.add_stream(cfg)
                break
            except ServiceUnavailableError:
                if attempt == 49:
                    raise
                await asyncio.sleep(0.1)
        dumps = json.JSONEncoder(separators=(",", ":")).encode

        def publish(n: int) -> Awaitable[Any]:
            return js.publish(EVENT_TYPE, dumps(order(n)).encode())

        lat, ticker = await _drive(publish, events, coroutines, fig, server_pid=pid)
        _fill(fig, events, lat, ticker)
    finally:
        await nc.close()
    return fig
