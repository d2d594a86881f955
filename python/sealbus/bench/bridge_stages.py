"""Where a bridged event's latency goes: a time stamp per stage of its path, for the
``bridge`` bench's latency mode only (``--stages``).

The export and the import run in the core, which records their stages per message
only when the bench asks (``Exporter(stamps=True)``, ``Importer(stamps=True)``). Both
processes record ``CLOCK_REALTIME`` per event id at each stage and write them out; the
bench joins both processes' records and reports each stage's share as quantiles.
Garbage collections are recorded too (start, end, generation) to tell a GC pause from
a wait.

Stages, in path order (exporting process, then importing process):

``send``        the producer stamps the event (before ``publish_raw``)
``stored``      ``publish_raw`` returned: the event is durable in the exporting log
``polled``      the export consumer's poll handed it to the bridge
``sealed``      its message is sealed and signed
``published``   handed to the NATS client (it goes to the socket)
``puback``      JetStream's acknowledgement came back (off the delivery path)
``arrived``     the importer received the message
``opened``      its signature checked and frame opened
``commit0``     the local publish (policy, schema, log append) began
``committed``   the local publish returned: durable in the importing log
``consumed``    the importing process's consumer polled it
"""

from __future__ import annotations

import gc
import itertools
import json
import time
from collections.abc import Callable
from typing import Any

__all__ = ["ORDER", "Recorder", "install_exporter", "install_importer", "report"]

ORDER = (
    "send",
    "stored",
    "polled",
    "sealed",
    "published",
    "arrived",
    "opened",
    "commit0",
    "committed",
    "consumed",
)


class Recorder:
    """Time stamps by event id and stage, by message id for what only knows the
    message (``mids``: a message id -> its events' ids), and the process's GCs."""

    def __init__(self) -> None:
        self.events: dict[str, dict[str, int]] = {}
        self.messages: dict[str, dict[str, int]] = {}
        self.mids: dict[str, tuple[str, ...]] = {}
        self.gcs: list[tuple[int, int, int]] = []
        self._gc_start = 0
        gc.callbacks.append(self._gc)

    def _gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_start = time.time_ns()
        else:
            self.gcs.append((self._gc_start, time.time_ns(), int(info.get("generation", -1))))

    def event(self, event_id: str, stage: str, t: int | None = None) -> None:
        self.events.setdefault(event_id, {}).setdefault(stage, time.time_ns() if t is None else t)

    def message(self, mid: str, stage: str, t: int | None = None) -> None:
        self.messages.setdefault(mid, {}).setdefault(stage, time.time_ns() if t is None else t)

    def dump(self, path: str) -> None:
        for mid, stages in self.messages.items():
            for event_id in self.mids.get(mid, ()):
                for stage, t in stages.items():
                    self.event(event_id, stage, t)
        with open(path, "w") as f:
            json.dump({"events": self.events, "gcs": self.gcs}, f)


def _mid(headers: dict[str, str] | None) -> str:
    return (headers or {}).get("Nats-Msg-Id", "")


def install_exporter(rec: Recorder) -> None:
    """The export runs in the core: it records its stamps itself when asked, and
    they are read out as each ``flush`` returns."""
    from sealbus.nats import bridge

    bridge.Bridge._export_stamps = True
    flush: Callable[..., bool] = bridge.Bridge.flush

    def _flush(self: Any, timeout: float | None = None) -> bool:
        done = flush(self, timeout)
        exporter = self._exporter
        for mid, ids, polled, sealed, published, puback in [] if exporter is None else exporter.take_stamps():
            rec.mids[mid] = tuple(ids)
            for event_id in ids:
                rec.event(event_id, "polled", polled)
                rec.event(event_id, "sealed", sealed)
            rec.message(mid, "published", published)
            if puback:
                rec.message(mid, "puback", puback)
        return done

    bridge.Bridge.flush = _flush  # type: ignore[method-assign]


def install_importer(rec: Recorder) -> None:
    """The import runs in the core too: its stamps are read out as the bridge
    closes."""
    from sealbus.nats import bridge

    bridge.Bridge._import_stamps = True
    close: Callable[..., None] = bridge.Bridge.close

    def _close(self: Any) -> None:
        close(self)
        importer = self._importer
        for mid, ids, arrived, opened, commit0, committed in [] if importer is None else importer.take_stamps():
            rec.mids[mid] = tuple(ids)
            rec.message(mid, "arrived", arrived)
            rec.message(mid, "opened", opened)
            for event_id in ids:
                rec.event(event_id, "commit0", commit0)
                rec.event(event_id, "committed", committed)

    bridge.Bridge.close = _close  # type: ignore[method-assign]


def _q(xs: list[int], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] / 1e3 if xs else float("nan")


def report(exporter: str, importer: str, window: float = 10.0) -> str:
    """Each stage's time from the one before, p50 / p99 / max (µs), over the events
    that went every stage (the consumer records only the counted ones); the latency
    per ``window`` seconds of the run (drift); the GC pauses of each process; and what
    the slowest 1% of events spent where."""
    with open(exporter) as f:
        a = json.load(f)
    with open(importer) as f:
        b = json.load(f)
    rows: list[dict[str, int]] = []
    for event_id, theirs in b["events"].items():
        stages = {**a["events"].get(event_id, {}), **theirs}
        if all(s in stages for s in ORDER):
            rows.append(stages)
    rows.sort(key=lambda r: r["send"])
    lines = [f"stages of {len(rows)} events (µs from the stage before: p50 / p99 / max)"]
    for prev, stage in itertools.pairwise(ORDER):
        d = [r[stage] - r[prev] for r in rows]
        lines.append(f"  {prev:>9} -> {stage:<9} {_q(d, 0.5):9.0f} {_q(d, 0.99):9.0f} {_q(d, 1.0):9.0f}")
    total = [r["consumed"] - r["send"] for r in rows]
    lines.append(f"  {'send':>9} -> {'consumed':<9} {_q(total, 0.5):9.0f} {_q(total, 0.99):9.0f} {_q(total, 1.0):9.0f}")
    pub = [r["puback"] - r["published"] for r in rows if "puback" in r]
    lines.append(f"  (publish -> puback {_q(pub, 0.5):.0f} / {_q(pub, 0.99):.0f} µs, off the path)")
    if rows:
        cut = sorted(total)[min(len(total) - 1, int(len(total) * 0.99))]
        slow = [r for r in rows if r["consumed"] - r["send"] >= cut]
        share = {f"{p}->{s}": sum(r[s] - r[p] for r in slow) / len(slow) / 1e3 for p, s in itertools.pairwise(ORDER)}
        lines.append(
            "  slowest 1%, mean µs per stage: " + ", ".join(f"{k} {v:.0f}" for k, v in share.items() if v >= 100)
        )
    if rows:
        t0, per = rows[0]["send"], int(window * 1e9)
        buckets: dict[int, list[int]] = {}
        for r in rows:
            buckets.setdefault((r["send"] - t0) // per, []).append(r["consumed"] - r["send"])
        lines.append(
            f"  per {window:.0f} s, p50/p99 µs: "
            + ", ".join(f"{_q(v, 0.5):.0f}/{_q(v, 0.99):.0f}" for _k, v in sorted(buckets.items()))
        )
        if len(buckets) > 2:
            # Which stage drifts: each stage's p50 per window.
            by_window: dict[int, list[dict[str, int]]] = {}
            for r in rows:
                by_window.setdefault((r["send"] - t0) // per, []).append(r)
            for prev, stage in itertools.pairwise(ORDER):
                lines.append(
                    f"    {prev:>9} -> {stage:<9} p50 per window: "
                    + " ".join(f"{_q([r[stage] - r[prev] for r in w], 0.5):.0f}" for _k, w in sorted(by_window.items()))
                )
    for who, d in (("exporter", a), ("importer", b)):
        pauses = [(e - s) / 1e3 for s, e, _g in d["gcs"]]
        gen2 = [(e - s) / 1e3 for s, e, g in d["gcs"] if g == 2]
        lines.append(
            f"  GC {who}: {len(pauses)} collections, max {max(pauses, default=0):.0f} µs, "
            f"{len(gen2)} of gen 2 (max {max(gen2, default=0):.0f} µs)"
        )
    return "\n".join(lines)
