"""The ``bridge`` scenario: a producer in one process, a consumer in another, their
routers joined through NATS JetStream by :class:`sealbus.nats.Bridge`.

Throughput: the exporting process publishes ``events`` OrderPlaced events (durable,
``fsync="batch"``, sealed at rest, schema checked); the clock runs from its first
publish to the importing process's consumer holding the last event, which has been
opened, signature-checked, policy- and schema-checked and stored again on the way.
The baseline, in the same run and against the same nats-server: nats-py publishing the
same payloads with 200 coroutines, each ``await js.publish`` one message at a time
(how an asyncio service would send them to JetStream without sealbus).

CPU: the seconds (user + system) that the exporting process spends from its first
publish until JetStream holds its last export, the importing process from its start
until its consumer holds the last event, and the nats-server over the whole run, per
event: on a shared machine, where events/s say more about the neighbours than about
the bridge, this is the figure that compares two versions of it.

Latency: one event at a time at ``rate`` events/s; each carries its send time (in its
``notes`` field), and the consumer in the other process records now minus that (both
processes read the same ``CLOCK_REALTIME``). Half a second of events at the same
rate goes first and is not counted: it takes the path through its first calls.
The path waits for two fdatasyncs (one in each router's log), so the bench measures
fdatasync where the logs go just before, and prints it beside the latency, with the
rate the producer kept and the latency per 10 s of the run. ``--stages`` times each
stage of the path (:mod:`sealbus.bench.bridge_stages`).

The floor under that latency, in the same run and on the same server: the bare NATS
hop, nats-py in one process publishing the same payloads at the same rate to a
JetStream stream, and nats-py in another taking them from a durable push consumer
with explicit acks (the consumer the bridge's import uses), with no sealbus on
either side. The bridge's path holds this hop, two fdatasyncs and its own work.

    python -m sealbus.bench.bridge [--events N] [--rate R] [--seconds S] [--repeat K]
                                   [--latency-only] [--stages]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sealbus.bench import nats_baseline
from sealbus.bench.workload import SCHEMA, encode_pool

__all__ = ["BridgeResult", "run"]

_TYPE = "orders.placed"
# Set in the peers' environment by ``run(stages=True)``: record each event's stages.
_STAGES_ENV = "SEALBUS_BENCH_STAGES"


@dataclass
class BridgeResult:
    events: int = 0
    events_per_s: float = float("nan")
    nats_py_events_per_s: float = float("nan")
    latency_rate: float = float("nan")
    #: The rate the latency mode's producer kept (below ``latency_rate`` when each of
    #: its publishes, one fsync each, takes longer than the interval).
    sent_rate: float = float("nan")
    #: fdatasync of a small append on the logs' file system just before the latency
    #: run (µs): the path holds two, one in each router's log.
    fsync_p50_us: float = float("nan")
    fsync_p99_us: float = float("nan")
    p50_us: float = float("nan")
    p99_us: float = float("nan")
    #: The bare NATS hop at the same rate, same run (see the module's notes), µs.
    hop_p50_us: float = float("nan")
    hop_p99_us: float = float("nan")
    latency_events: int = 0
    cpu_us_per_event: dict[str, float] = field(default_factory=dict)
    #: The same in the latency run, one event at a time (warm-up included): what each
    #: event costs the machine when nothing is batched, which a noisy machine's
    #: latency does not show.
    latency_cpu_us_per_event: dict[str, float] = field(default_factory=dict)
    #: The bare NATS hop's, same rate, same run (publisher, subscriber, server).
    hop_cpu_us_per_event: dict[str, float] = field(default_factory=dict)
    exporter_stats: dict[str, int] = field(default_factory=dict)
    importer_stats: dict[str, int] = field(default_factory=dict)
    #: p50 and p99 (µs) per 10 s of the latency run, in order: a drift shows here.
    windows: list[tuple[float, float]] = field(default_factory=list)
    #: Where the latency went, stage by stage (``run(stages=True)``), as text.
    stages: str = ""

    @property
    def ratio(self) -> float:
        return self.events_per_s / self.nats_py_events_per_s


# ---- the two processes --------------------------------------------------------------


def _cpu() -> float:
    """CPU seconds (user + system) of this process so far, every thread."""
    t = os.times()
    return t.user + t.system


def _server_cpu(pid: int) -> float:
    """CPU seconds of the nats-server so far (Linux; NaN elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _router(log: str) -> Any:
    import sealbus

    router = sealbus.Router(log, fsync="batch")
    router.schemas.register(_TYPE, SCHEMA)
    return router


def _bridge(router: Any, url: str, name: str, tmp: str, **kw: Any) -> Any:
    from sealbus.nats import Bridge, Identity

    return Bridge(
        router,
        url,
        name=name,
        identity=Identity.load_or_create(os.path.join(tmp, f"{name}.identity")),
        transit_keys=os.path.join(tmp, f"{name}.transit"),
        **kw,
    ).start()


def _stages(role: str) -> Any:
    """The stage recorder of ``--stages`` (see :mod:`sealbus.bench.bridge_stages`), or None."""
    if not os.environ.get(_STAGES_ENV):
        return None
    from sealbus.bench import bridge_stages

    rec = bridge_stages.Recorder()
    (bridge_stages.install_exporter if role == "exporter" else bridge_stages.install_importer)(rec)
    return rec


def _exporter(url: str, tmp: str, mode: str, events: int, rate: float) -> None:
    rec = _stages("exporter")
    router = _router(os.path.join(tmp, "a"))
    checkout = router.principal("checkout")
    router.policy.allow_publish(checkout, _TYPE)
    bridge = _bridge(router, url, "shop-a", tmp, exports=[_TYPE])
    pool = encode_pool(8192, 1024)
    print("ready", flush=True)
    sys.stdin.readline()
    p = router.producer(checkout)
    print(f"cpu0 {_cpu()}", flush=True)
    print(f"start {time.time_ns()}", flush=True)
    if mode == "throughput":
        sent, i = 0, 0
        while sent < events:
            b = pool[i % len(pool)]
            n = min(b.count, events - sent)
            p.publish_raw(_TYPE, b.buffer, b.offsets[: n + 1])
            sent += n
            i += 1
    else:
        import random

        from sealbus.bench.workload import valid_event

        rng = random.Random(42)
        events_ = [valid_event(rng) for _ in range(1000)]
        interval = 1.0 / rate
        due = time.monotonic()
        warm = _warm_up(rate)
        first = 0
        for i in range(warm + events):
            due += interval
            # One sleep to the due time: waking every half millisecond to look
            # would take the CPU and the GIL from the bridge being measured.
            if (left := due - time.monotonic()) > 0:
                time.sleep(left)
            ev = events_[i % len(events_)]
            # The send time travels in the data (schema-valid), so that events share
            # their attributes as a service's events of one kind would.
            sent_ns = time.time_ns()
            if i == warm:
                first = sent_ns
            ev["notes"] = f"{'w' if i < warm else 't'}{sent_ns}"
            body = json.dumps(ev, separators=(",", ":")).encode()
            receipts = p.publish_raw(_TYPE, body, [0, len(body)])
            if rec is not None:
                rec.event(receipts.ids[0], "stored")
                rec.event(receipts.ids[0], "send", sent_ns)
        # The rate the counted events went out at: below ``rate`` when each publish
        # waits longer than the interval (a slow fsync), and then the latency was
        # measured at that rate.
        print(f"sent_rate {(events - 1) / max(1, time.time_ns() - first) * 1e9 if events > 1 else rate}", flush=True)
    bridge.flush(300)
    if rec is not None:
        rec.dump(os.path.join(tmp, "stages-exporter.json"))
    print(f"cpu1 {_cpu()}", flush=True)
    print("stats " + json.dumps(bridge.stats()), flush=True)
    bridge.close()
    router.close()


def _quantile(xs: list[int], p: float) -> int:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def _warm_up(rate: float) -> int:
    """Events sent first in the latency mode and not counted: half a second's worth,
    which takes the path through its first calls (NATS reply inboxes, principals)."""
    return int(rate / 2)


def _importer(url: str, tmp: str, mode: str, events: int, rate: float) -> None:
    rec = _stages("importer")
    router = _router(os.path.join(tmp, "b"))
    router.policy.allow_publish("shop-a/checkout", _TYPE)
    shipping = router.principal("shipping")
    router.policy.allow_subscribe(shipping, _TYPE)
    sub = router.subscribe(shipping, _TYPE, max_pending=65_536)
    from sealbus.nats import Identity

    trust = {"shop-a": Identity.load_or_create(os.path.join(tmp, "shop-a.identity")).public_bytes}
    bridge = _bridge(router, url, "shop-b", tmp, imports=[_TYPE], trust=trust, fetch_batch=256)
    print(f"cpu0 {_cpu()}", flush=True)
    print("ready", flush=True)
    got = 0
    lat: list[int] = []
    # Per 10 s of send time: the latencies of that window (does the path drift?).
    windows: dict[int, list[int]] = {}
    sent0 = 0
    if mode != "throughput":
        events += _warm_up(rate)
    while got < events:
        if mode == "throughput":
            batch = sub.poll_batch(8192, 1.0)
            got += len(batch)
            batch.ack()
        else:
            for m in sub.poll(512, 1.0):
                now = time.time_ns()
                note = m.data["notes"]
                if note[0] == "t":
                    sent = int(note[1:])
                    sent0 = sent0 or sent
                    lat.append(now - sent)
                    windows.setdefault((sent - sent0) // 10_000_000_000, []).append(now - sent)
                    if rec is not None:
                        rec.event(m.event.id, "consumed", now)
                m.ack()
                got += 1
    print(f"done {time.time_ns()}", flush=True)
    print(f"cpu1 {_cpu()}", flush=True)
    if lat:
        lat.sort()
        q = {
            "p50": lat[len(lat) // 2],
            "p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))],
            "windows": [[_quantile(w, 0.5), _quantile(w, 0.99)] for _k, w in sorted(windows.items())],
        }
        print("latency " + json.dumps(q), flush=True)
    # The importer counts a run once its commit returns, which may be just after the
    # consumer above was handed the events: wait for the count to catch up.
    until = time.monotonic() + 30
    while bridge.stats()["imported"] < events and time.monotonic() < until:
        time.sleep(0.01)
    print("stats " + json.dumps(bridge.stats()), flush=True)
    bridge.close()
    # Only now: the consumer may hold the last events before the commit that stored
    # them has returned and stamped them "committed".
    if rec is not None:
        rec.dump(os.path.join(tmp, "stages-importer.json"))
    router.close()


# ---- the bare NATS hop --------------------------------------------------------------

_HOP_STREAM = "SEALBUS_BENCH_HOP"
_HOP_SUBJECT = "benchhop.orders"


async def _hop_sub_async(url: str, events: int) -> list[int]:
    import nats
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

    nc = await nats.connect(url)
    js = nc.jetstream()
    inbox: asyncio.Queue[Any] = asyncio.Queue()

    async def arrived(msg: Any) -> None:
        inbox.put_nowait(msg)

    deliver = "_benchhop.deliver"
    await nc.subscribe(deliver, cb=arrived)
    config = ConsumerConfig(
        durable_name="benchhop",
        deliver_subject=deliver,
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        max_ack_pending=1024,
        ack_wait=60.0,
    )
    await js.add_consumer(_HOP_STREAM, config)
    print("ready", flush=True)
    print(f"cpu0 {_cpu()}", flush=True)
    lat: list[int] = []
    got = 0
    while got < events:
        msg = await inbox.get()
        now = time.time_ns()
        kind, sent = msg.data[:1], int.from_bytes(msg.data[1:9], "little")
        if kind == b"t":
            lat.append(now - sent)
        await msg.ack()
        got += 1
    print(f"cpu1 {_cpu()}", flush=True)
    await nc.close()
    return lat


def _hop_sub(url: str, events: int, rate: float) -> None:
    """The receiving end of the bare hop: one latency per counted message."""
    lat = asyncio.run(_hop_sub_async(url, events + _warm_up(rate)))
    lat.sort()
    print("latency " + json.dumps({"p50": _quantile(lat, 0.5), "p99": _quantile(lat, 0.99)}), flush=True)


async def _hop_pub_async(url: str, events: int, rate: float) -> None:
    import nats

    payloads = [p for b in encode_pool(1024, 1024) for p in b.payloads()]
    nc = await nats.connect(url)
    js = nc.jetstream()
    warm = _warm_up(rate)
    interval = 1.0 / rate
    due = time.monotonic()
    in_flight: set[asyncio.Future[Any]] = set()
    for i in range(warm + events):
        due += interval
        if (left := due - time.monotonic()) > 0:
            await asyncio.sleep(left)
        # The send time goes first, as the bridge's events carry theirs in their data.
        head = (b"w" if i < warm else b"t") + time.time_ns().to_bytes(8, "little")
        ack = asyncio.ensure_future(js.publish(_HOP_SUBJECT, head + payloads[i % len(payloads)]))
        in_flight.add(ack)
        ack.add_done_callback(in_flight.discard)
    await asyncio.gather(*in_flight)
    await nc.close()


def _hop_pub(url: str, events: int, rate: float) -> None:
    """The sending end of the bare hop: waits for "go", then publishes at ``rate``."""
    print("ready", flush=True)
    sys.stdin.readline()
    print(f"cpu0 {_cpu()}", flush=True)
    asyncio.run(_hop_pub_async(url, events, rate))
    print(f"cpu1 {_cpu()}", flush=True)


async def _hop_stream(url: str, create: bool) -> None:
    import nats
    from nats.js.api import StreamConfig

    nc = await nats.connect(url)
    js = nc.jetstream()
    with contextlib.suppress(Exception):
        await js.delete_stream(_HOP_STREAM)
    if create:
        await js.add_stream(StreamConfig(name=_HOP_STREAM, subjects=[_HOP_SUBJECT]))
    await nc.close()


def _hop(url: str, events: int, rate: float, server_pid: int) -> tuple[float, float, dict[str, float]]:
    """p50 and p99 (µs) of the bare NATS hop: ``events`` at ``rate``, each end in its
    own process, as the bridge's peers are; and its CPU per event, as the latency
    run's (publisher, subscriber, nats-server)."""
    asyncio.run(_hop_stream(url, create=True))
    server_cpu = _server_cpu(server_pid)
    try:
        sub = _Proc(["hop-sub", url, str(events), str(rate)])
        sub.ready()
        pub = _Proc(["hop-pub", url, str(events), str(rate)])
        pub.ready()
        pub.go()
        timeout = events / rate + 120
        try:
            out_pub = pub.wait(timeout)
            out_sub = sub.wait(timeout)
            q = json.loads(out_sub["latency"])
        finally:
            for peer in (pub, sub):
                if peer.proc.poll() is None:
                    peer.proc.kill()
                    peer.proc.wait()
    finally:
        asyncio.run(_hop_stream(url, create=False))
    cpu = _cpu_per_event(out_pub, out_sub, _server_cpu(server_pid) - server_cpu, events + _warm_up(rate))
    return q["p50"] / 1e3, q["p99"] / 1e3, cpu


# ---- orchestration ------------------------------------------------------------------


class _Proc:
    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sealbus.bench.bridge", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: dict[str, str] = {}
        self._ready = threading.Event()
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            key, _, rest = line.strip().partition(" ")
            self.lines[key] = rest
            if key == "ready":
                self._ready.set()

    def ready(self, timeout: float = 60) -> None:
        if not self._ready.wait(timeout):
            self.proc.kill()
            raise RuntimeError("bridge bench peer did not start")

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def wait(self, timeout: float) -> dict[str, str]:
        self.proc.wait(timeout)
        self._t.join(5)
        if self.proc.returncode != 0:
            raise RuntimeError(f"bridge bench peer exited with {self.proc.returncode}")
        return self.lines


def _one(
    url: str, mode: str, events: int, rate: float, stages: bool = False
) -> tuple[dict[str, str], dict[str, str], str]:
    """One run of ``mode``: the exporter's and importer's output, and the stage
    report when ``stages`` (latency mode)."""
    import sealbus

    with tempfile.TemporaryDirectory(prefix="sealbus-bench-bridge-") as tmp:
        ring = sealbus.KeyRing.generate()
        for name in ("shop-a", "shop-b"):
            ring.persist(os.path.join(tmp, f"{name}.transit"))
        from sealbus.nats import Identity

        Identity.load_or_create(os.path.join(tmp, "shop-a.identity"))
        env = {**os.environ, _STAGES_ENV: "1"} if stages else None
        importer = _Proc(["importer", url, tmp, mode, str(events), str(rate)], env)
        importer.ready()
        exporter = _Proc(["exporter", url, tmp, mode, str(events), str(rate)], env)
        exporter.ready()
        exporter.go()
        timeout = 600 if mode == "throughput" else events / rate + 120
        try:
            out_a, out_b = exporter.wait(timeout), importer.wait(timeout)
        finally:
            # A peer that failed or ran out of time leaves the other waiting for it.
            for peer in (exporter, importer):
                if peer.proc.poll() is None:
                    peer.proc.kill()
                    peer.proc.wait()
        report = ""
        if stages and mode != "throughput":
            from sealbus.bench import bridge_stages

            report = bridge_stages.report(
                os.path.join(tmp, "stages-exporter.json"), os.path.join(tmp, "stages-importer.json")
            )
        return out_a, out_b, report


async def _nats_py(url: str, payloads: list[bytes], events: int, coroutines: int) -> float:
    import nats
    from nats.js.api import StreamConfig

    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name="BENCHPY", subjects=["benchpy.>"]))
    sent = 0

    async def worker() -> None:
        nonlocal sent
        while sent < events:
            i = sent
            sent += 1
            await js.publish("benchpy.orders", payloads[i % len(payloads)])

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(coroutines)))
    dt = time.perf_counter() - t0
    await js.delete_stream("BENCHPY")
    await nc.close()
    return events / dt


def run(
    events: int = 100_000,
    *,
    rate: float = 1_000.0,
    seconds: float = 10.0,
    nats_events: int = 50_000,
    coroutines: int = 200,
    latency_only: bool = False,
    stages: bool = False,
    progress: Callable[[str], None] | None = None,
) -> BridgeResult:
    """One run of each: bridge throughput, nats-py with ``coroutines`` coroutines on the
    same server, and bridge latency at ``rate`` for ``seconds`` (only that with
    ``latency_only``; with ``stages``, timed stage by stage, see
    :mod:`sealbus.bench.bridge_stages`)."""
    say = progress or (lambda _msg: None)
    res = BridgeResult(events=events, latency_rate=rate)
    pool = encode_pool(8192, 1024)
    payloads = [p for b in pool for p in b.payloads()]
    with nats_baseline.NatsServer() as server:
        if not latency_only:
            _throughput(res, server, events, payloads, nats_events, coroutines, say)
        say("fdatasync probe")
        res.fsync_p50_us, res.fsync_p99_us = _fsync_probe()
        say("bridge latency")
        n = max(1, int(rate * seconds))
        server_cpu = _server_cpu(server.pid)
        lat_a, lat_b, res.stages = _one(server.url, "latency", n, rate, stages)
        res.latency_cpu_us_per_event = _cpu_per_event(
            lat_a, lat_b, _server_cpu(server.pid) - server_cpu, n + _warm_up(rate)
        )
        res.sent_rate = float(lat_a["sent_rate"])
        q = json.loads(lat_b["latency"])
        res.p50_us, res.p99_us, res.latency_events = q["p50"] / 1e3, q["p99"] / 1e3, n
        res.windows = [(a / 1e3, b / 1e3) for a, b in q["windows"]]
        say("the bare NATS hop")
        res.hop_p50_us, res.hop_p99_us, res.hop_cpu_us_per_event = _hop(server.url, n, rate, server.pid)
    return res


def _fsync_probe(count: int = 200, every: float = 0.005) -> tuple[float, float]:
    """p50 and p99 (µs) of an fdatasync after a 600-byte append, where the bench's
    logs go (the system's temporary directory): the floor under the latency, which
    waits for two of them. On a shared machine it moves with the neighbours' I/O."""
    took: list[int] = []
    with tempfile.TemporaryDirectory(prefix="sealbus-bench-fsync-") as tmp:
        fd = os.open(os.path.join(tmp, "probe"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for _ in range(count):
                os.write(fd, b"\0" * 600)
                t = time.perf_counter_ns()
                os.fdatasync(fd)
                took.append(time.perf_counter_ns() - t)
                time.sleep(every)
        finally:
            os.close(fd)
    took.sort()
    return took[len(took) // 2] / 1e3, took[min(len(took) - 1, int(len(took) * 0.99))] / 1e3


def _throughput(
    res: BridgeResult,
    server: nats_baseline.NatsServer,
    events: int,
    payloads: list[bytes],
    nats_events: int,
    coroutines: int,
    say: Callable[[str], None],
) -> None:
    """The bridge's events/s and CPU per event, and nats-py's events/s beside it."""
    say("bridge throughput")
    server_cpu = _server_cpu(server.pid)
    out_a, out_b, _ = _one(server.url, "throughput", events, 0.0)
    res.cpu_us_per_event = _cpu_per_event(out_a, out_b, _server_cpu(server.pid) - server_cpu, events)
    t0, t1 = int(out_a["start"]), int(out_b["done"])
    res.events_per_s = events / ((t1 - t0) / 1e9)
    res.exporter_stats = json.loads(out_a["stats"])
    res.importer_stats = json.loads(out_b["stats"])
    say("nats-py, 200 coroutines")
    res.nats_py_events_per_s = asyncio.run(_nats_py(server.url, payloads, nats_events, coroutines))


def _cpu_per_event(sender: dict[str, str], receiver: dict[str, str], server_s: float, events: int) -> dict[str, float]:
    """µs of CPU per event of each process: the two peers from the ``cpu0``/``cpu1``
    they printed, the nats-server from the seconds it spent meanwhile."""
    per = 1e6 / events
    return {
        "exporter": (float(sender["cpu1"]) - float(sender["cpu0"])) * per,
        "importer": (float(receiver["cpu1"]) - float(receiver["cpu0"])) * per,
        "nats-server": server_s * per,
    }


def _cpu_line(cpu: dict[str, float], what: str = "CPU per event") -> str:
    """CPU per event by process; for the bare hop, the publisher stands where the
    exporting process does and the subscriber where the importing one does."""
    if not cpu:
        return f"{what}: not measured"
    return (
        f"{what}: exporter {cpu['exporter']:.1f} µs, importer {cpu['importer']:.1f} µs, "
        f"nats-server {cpu['nats-server']:.1f} µs, total {sum(cpu.values()):.1f} µs"
    )


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "exporter":
        _exporter(argv[1], argv[2], argv[3], int(argv[4]), float(argv[5]))
        return
    if argv and argv[0] == "importer":
        _importer(argv[1], argv[2], argv[3], int(argv[4]), float(argv[5]))
        return
    if argv and argv[0] in ("hop-pub", "hop-sub"):
        (_hop_pub if argv[0] == "hop-pub" else _hop_sub)(argv[1], int(argv[2]), float(argv[3]))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--rate", type=float, default=1_000.0)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--stages", action="store_true", help="time each stage of the latency path")
    ap.add_argument("--latency-only", action="store_true", help="only the latency runs")
    args = ap.parse_args(argv)
    runs = [
        run(args.events, rate=args.rate, seconds=args.seconds, latency_only=args.latency_only, stages=args.stages)
        for _ in range(args.repeat)
    ]
    med = statistics.median
    for r in runs:
        if r.stages:
            print(r.stages)
    if args.latency_only:
        for r in runs:
            print(
                f"latency at {r.latency_rate:,.0f}/s (sent at {r.sent_rate:,.0f}/s) "
                f"p50 {r.p50_us:,.0f} µs p99 {r.p99_us:,.0f} µs; "
                f"fdatasync p50 {r.fsync_p50_us:,.0f} µs p99 {r.fsync_p99_us:,.0f} µs; "
                f"bare NATS hop p50 {r.hop_p50_us:,.0f} µs p99 {r.hop_p99_us:,.0f} µs"
            )
            if len(r.windows) > 1:
                print("  per 10 s, p50/p99 µs: " + ", ".join(f"{a:,.0f}/{b:,.0f}" for a, b in r.windows))
            print("  " + _cpu_line(r.latency_cpu_us_per_event))
            print("  " + _cpu_line(r.hop_cpu_us_per_event, "bare NATS hop, CPU per event"))
        p50, p99 = med(r.p50_us for r in runs), med(r.p99_us for r in runs)
        h50, h99 = med(r.hop_p50_us for r in runs), med(r.hop_p99_us for r in runs)
        print(
            f"median of {len(runs)}: p50 {p50:,.0f} µs p99 {p99:,.0f} µs; "
            f"bare NATS hop p50 {h50:,.0f} µs p99 {h99:,.0f} µs"
        )
        return
    for r in runs:
        print(
            f"bridge {r.events_per_s:,.0f} ev/s, nats-py (200 coroutines) {r.nats_py_events_per_s:,.0f} ev/s, "
            f"{r.ratio:.2f}x; latency at {r.latency_rate:,.0f}/s (sent at {r.sent_rate:,.0f}/s) "
            f"p50 {r.p50_us:,.0f} µs p99 {r.p99_us:,.0f} µs; "
            f"fdatasync p50 {r.fsync_p50_us:,.0f} µs p99 {r.fsync_p99_us:,.0f} µs; "
            f"bare NATS hop p50 {r.hop_p50_us:,.0f} µs p99 {r.hop_p99_us:,.0f} µs"
        )
    for r in runs:
        print(_cpu_line(r.cpu_us_per_event, "CPU per bridged event"))
        print(_cpu_line(r.latency_cpu_us_per_event, "CPU per event at the latency rate"))
        print(_cpu_line(r.hop_cpu_us_per_event, "bare NATS hop, CPU per event at that rate"))
    print(
        f"median of {len(runs)}: bridge {med(r.events_per_s for r in runs):,.0f} ev/s, "
        f"{med(r.ratio for r in runs):.2f}x nats-py; "
        f"p50 {med(r.p50_us for r in runs):,.0f} µs p99 {med(r.p99_us for r in runs):,.0f} µs "
        f"(bare NATS hop p99 {med(r.hop_p99_us for r in runs):,.0f} µs); "
        f"CPU {med(sum(r.cpu_us_per_event.values()) for r in runs):.1f} µs per event"
    )


if __name__ == "__main__":
    main()
