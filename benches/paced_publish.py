"""How long one ``publish_raw`` of one OrderPlaced event takes when events come one per
100 µs (the ``sealbus bench`` latency scenario's pace), through the bench's router
(schema, policy, three subscriptions, two with patterns). Nothing is asserted: it prints
the p50/p90/p99/p99.9 of the call alone, the producer's share of publish->deliver.

    python benches/paced_publish.py            # consumers drained every 64 events
    python benches/paced_publish.py spin       # a Selector thread spinning beside it
"""

from __future__ import annotations

import sys
import threading
import time

import sealbus
from sealbus.bench import harness
from sealbus.bench.harness import BUSY_POLL, EVENT_TYPE
from sealbus.bench.procstat import PACER_SLACK_NS, timer_slack
from sealbus.bench.workload import encode_pool


def main(spin: bool, events: int = 30_000, rate: float = 10_000.0) -> None:
    pool = encode_pool(2048, 1024)
    singles = [(p, [0, len(p)]) for b in pool for p in b.payloads()]
    setup = harness._make_router(None, 1 << 20, timeout=30.0)
    publish = setup.producer.publish_raw
    stop = threading.Event()

    def consume() -> None:
        with sealbus.Selector(setup.subs, busy_poll=BUSY_POLL) as sel:
            while not stop.is_set():
                for _, batch in sel.poll_batch(1024, 0.2):
                    batch.ack()

    consumer = threading.Thread(target=consume, daemon=True)
    if spin:
        consumer.start()
    took: list[int] = []
    clock, now_ns = time.perf_counter, time.perf_counter_ns
    with timer_slack(PACER_SLACK_NS):  # paced as the bench's latency scenario paces
        start = clock()
        for seq in range(events):
            if (left := start + seq / rate - clock()) > 0:
                time.sleep(left)
            payload, offsets = singles[seq % len(singles)]
            t0 = now_ns()
            publish(EVENT_TYPE, payload, offsets, subject=str(seq))
            took.append(now_ns() - t0)
            if not spin and seq % 64 == 0:
                for sub in setup.subs:
                    sub.poll_batch(4096, 0).ack()
    stop.set()
    took.sort()
    qs = " ".join(f"p{q * 100:g} {took[int(len(took) * q)] / 1e3:.1f}" for q in (0.5, 0.9, 0.99, 0.999))
    print(f"publish_raw of one event at {rate:,.0f}/s ({'spinning selector' if spin else 'drained'}): {qs} µs")
    harness._close(setup)


if __name__ == "__main__":
    main(len(sys.argv) > 1 and sys.argv[1] == "spin")
