"""A consumer's events/s through ``poll_batch`` on an end-to-end type against the same
consumer on an at-rest type, same router, same run (see docs/SEALING.md).

    python benches/e2e_consumer.py [--events 20480] [--batch 1024] [--repeats 21]

One router with a durable log (sealed at rest) and two types with the same schema,
the shared OrderPlaced workload's (``orders.py``: draft 2020-12 with formats and
patterns): ``orders.placed`` (sealed at rest by the router) and ``payments.captured``
(sealed end to end by the producer for the consumer's key). For each type the
producer publishes ``--events`` of the workload's valid events (~540 B of JSON) in
batches of ``--batch`` first; then only the consumer is timed, with the same loop for
both: ``poll_batch`` until every event is in, checking the batch's per-event errors
when it has them, reading each event's bytes, one ``ack`` per batch. End to end,
that is unwrapping each data key, opening every payload and validating it against its
schema, all in ``poll_batch`` (the next batch opened ahead while this one is read).
Medians over ``--repeats`` (21: a drain takes 10 to 50 ms, and a median of a few
hangs on the one a neighbour interrupted); the two types alternate. Wall time is the
figure; the process's CPU time over the same drains is printed beside it (µs per
event, all threads), because on a shared machine a drain's wall time mostly measures
how long other jobs held the cores.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import sealbus
from orders import SCHEMA, make_events
from sealbus.e2e import ConsumerKeyPair


def payloads(n: int) -> list[bytes]:
    """``n`` distinct valid events of the shared workload, as compact JSON."""
    events, invalid = make_events(n + n // 9 + 10)
    valid = [e for i, e in enumerate(events) if i not in invalid][:n]
    return [json.dumps(e, separators=(",", ":")).encode() for e in valid]


def drain(sub: sealbus.Subscription, n: int, batch: int, expect_bytes: int) -> tuple[float, float]:
    """Seconds (wall, process CPU) for the consumer to take ``n`` events through
    poll_batch."""
    got = 0
    nbytes = 0
    t, c = time.perf_counter(), time.process_time()
    while got < n:
        b = sub.poll_batch(batch, 1.0)
        if len(b) == 0:
            raise RuntimeError(f"stalled after {got} of {n} events")
        # Exceptions are true, None is false: one C-level pass, as a consumer would.
        errors = getattr(b, "errors", None)
        if errors is not None and any(errors):
            raise RuntimeError("an end-to-end event failed to open")
        view = b.buffer
        offs = b.offsets
        for i in range(len(b)):
            nbytes += len(view[offs[i] : offs[i + 1]])
        b.ack()
        got += len(b)
    dt, dc = time.perf_counter() - t, time.process_time() - c
    if nbytes != expect_bytes:
        raise RuntimeError(f"the consumer saw {nbytes} bytes of data, {expect_bytes} were published")
    return dt, dc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=20_480)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=21)
    a = ap.parse_args()
    keys = ConsumerKeyPair.generate()
    docs = payloads(a.batch)
    with tempfile.TemporaryDirectory() as d:
        router = sealbus.Router(Path(d) / "log")
        for t in ("orders.placed", "payments.captured"):
            router.schemas.register(t, SCHEMA)
        shop = router.principal("checkout")
        reader = router.principal("billing", public_key=keys.public_bytes)
        router.policy.allow_publish(shop, ["orders.placed", "payments.captured"])
        router.policy.allow_subscribe(reader, ["orders.placed", "payments.captured"])
        router.policy.require_end_to_end("payments.captured")
        subs = {
            t: router.subscribe(reader, t, max_pending=a.events + a.batch, keypair=keys)
            for t in ("orders.placed", "payments.captured")
        }
        producer = router.producer(shop)
        times: dict[str, list[float]] = {t: [] for t in subs}
        cpu: dict[str, list[float]] = {t: [] for t in subs}
        for _ in range(a.repeats):
            for t, sub in subs.items():
                for _ in range(a.events // a.batch):
                    producer.publish_many(t, [json.loads(p) for p in docs])
                rounds = a.events // a.batch
                wall, used = drain(sub, rounds * a.batch, a.batch, rounds * sum(map(len, docs)))
                times[t].append(wall)
                cpu[t].append(used)
        n = a.events // a.batch * a.batch
        print({t: [round(x * 1e3, 1) for x in v] for t, v in times.items()})
        rest = n / statistics.median(times["orders.placed"])
        e2e = n / statistics.median(times["payments.captured"])
        size = sum(map(len, docs)) // len(docs)
        print(f"consumer poll_batch({a.batch}), {n} events of ~{size} B, median of {a.repeats}:")
        print(f"  at rest      {rest:>10,.0f} events/s")
        print(f"  end to end   {e2e:>10,.0f} events/s   ({e2e / rest:.2f}x at rest)")
        rest_c = statistics.median(cpu["orders.placed"]) / n * 1e6
        e2e_c = statistics.median(cpu["payments.captured"]) / n * 1e6
        print(
            f"  CPU per event (all threads): at rest {rest_c:.3f} us, end to end {e2e_c:.3f} us"
            f" ({rest_c / e2e_c:.2f}x the events per CPU second)"
        )
        router.close()


if __name__ == "__main__":
    main()
