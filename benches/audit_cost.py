"""What the audit trail and the alert rules cost a durable router: publish throughput
with the trail off, on, and on with alerts, alternating in one run, medians.

    python benches/audit_cost.py [EVENTS] [ROUNDS]

Each round publishes EVENTS OrderPlaced events (``publish_raw``, batches of 1,024,
``fsync="batch"``, sealed at rest, schema checked) from two producer threads, once
without the trail, once with it, and once with it and the alert rules (default
thresholds, a consumer watching ``sealbus.alert.*``), in a fresh log each time.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import sealbus
from sealbus.bench.workload import SCHEMA, encode_pool


def run(events: int, audit: bool, pool: list, alerts: bool = False) -> float:  # type: ignore[type-arg]
    with tempfile.TemporaryDirectory(prefix="sealbus-audit-cost-") as d:
        router = sealbus.Router(Path(d) / "log", audit=audit, alerts=alerts)
        if alerts:
            security = router.principal("security")
            router.policy.allow_subscribe(security, "sealbus.alert.*")
            router.subscribe(security, "sealbus.alert.*")
        router.schemas.register("orders.placed", SCHEMA)
        who = router.principal("checkout")
        router.policy.allow_publish(who, "orders.*")
        p = router.producer(who)
        per = events // 2

        def produce(start: int) -> None:
            sent, i = 0, start
            while sent < per:
                b = pool[i % len(pool)]
                p.publish_raw("orders.placed", b.buffer, b.offsets)
                sent += b.count
                i += 1

        threads = [threading.Thread(target=produce, args=(k,)) for k in range(2)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if router.audit is not None:
            router.audit.flush()
        dt = time.perf_counter() - t0
        router.close()
        return (per * 2) / dt


def main() -> None:
    events = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    pool = encode_pool(8192, 1024)
    on: list[float] = []
    off: list[float] = []
    alerting: list[float] = []
    for _ in range(rounds):
        off.append(run(events, False, pool))
        on.append(run(events, True, pool))
        alerting.append(run(events, True, pool, alerts=True))
    m_on, m_off, m_al = statistics.median(on), statistics.median(off), statistics.median(alerting)
    print(f"audit off:         {', '.join(f'{x:,.0f}' for x in off)} ev/s")
    print(f"audit on:          {', '.join(f'{x:,.0f}' for x in on)} ev/s")
    print(f"audit on + alerts: {', '.join(f'{x:,.0f}' for x in alerting)} ev/s")
    print(f"medians: off {m_off:,.0f}, on {m_on:,.0f}, on+alerts {m_al:,.0f} ev/s")
    print(f"the trail costs {100 * (1 - m_on / m_off):.1f}% (on/off {m_on / m_off:.3f}); ", end="")
    print(f"alerts cost {100 * (1 - m_al / m_on):.1f}% more (on+alerts/on {m_al / m_on:.3f})")


if __name__ == "__main__":
    main()
