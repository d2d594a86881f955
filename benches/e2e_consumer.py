"""A consumer's events/s through ``poll_batch`` on an end-to-end type against the same
consumer on an at-rest type, same router, same run (see docs/SEALING.md).

    python benches/e2e_consumer.py [--events 20000] [--batch 1024] [--repeats 5]

One router with a durable log (sealed at rest) and two types with the same schema:
``orders.placed`` (sealed at rest by the router) and ``payments.captured`` (sealed end
to end by the producer for the consumer's key). For each type the producer publishes
``--events`` order-shaped JSON events (~540 B) in batches of ``--batch`` first; then
only the consumer is timed: ``poll_batch`` until every event is in, reading each
event's bytes, one ``ack`` per batch. End to end, that is unwrapping each data key,
opening every payload and validating it against its schema, all in ``poll_batch``.
Medians over ``--repeats``; the two types alternate. Wall time is the figure; the
process's CPU time over the same drains is printed beside it, because on a shared
machine a drain's wall time mostly measures how long other jobs held the cores.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import sealbus
from sealbus.e2e import ConsumerKeyPair

SCHEMA = {
    "type": "object",
    "required": ["orderId", "total", "customer", "items"],
    "properties": {
        "orderId": {"type": "string"},
        "total": {"type": "number", "minimum": 0},
        "customer": {"type": "object"},
        "items": {"type": "array"},
    },
}


def order(n: int) -> bytes:
    items = [{"sku": f"sku-{n % 97:04d}-{k}", "qty": k + 1, "price": 19.99 + k} for k in range(5)]
    doc = {
        "orderId": f"ord-{n:08d}",
        "total": 123.45 + n % 100,
        "currency": "EUR",
        "customer": {"id": f"c-{n % 1000:05d}", "country": "DE", "tier": "gold", "email": "x@example.com"},
        "items": items,
    }
    return json.dumps(doc, separators=(",", ":")).encode()


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
        errors = getattr(b, "errors", None)
        if errors is not None and any(e is not None for e in errors):
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
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    keys = ConsumerKeyPair.generate()
    payloads = [order(i) for i in range(a.batch)]
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
                    producer.publish_many(t, [json.loads(p) for p in payloads])
                rounds = a.events // a.batch
                wall, used = drain(sub, rounds * a.batch, a.batch, rounds * sum(map(len, payloads)))
                times[t].append(wall)
                cpu[t].append(used)
        n = a.events // a.batch * a.batch
        print({t: [round(x * 1e3, 1) for x in v] for t, v in times.items()})
        rest = n / statistics.median(times["orders.placed"])
        e2e = n / statistics.median(times["payments.captured"])
        print(f"consumer poll_batch({a.batch}), {n} events of ~{len(payloads[0])} B, median of {a.repeats}:")
        print(f"  at rest      {rest:>10,.0f} events/s")
        print(f"  end to end   {e2e:>10,.0f} events/s   ({e2e / rest:.2f}x at rest)")
        rest_c = n / statistics.median(cpu["orders.placed"])
        e2e_c = n / statistics.median(cpu["payments.captured"])
        print(f"  per CPU second: at rest {rest_c:,.0f}, end to end {e2e_c:,.0f} events ({e2e_c / rest_c:.2f}x)")
        router.close()


if __name__ == "__main__":
    main()
