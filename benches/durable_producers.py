"""Durable end-to-end throughput by producer count and window, with the CPU it cost and
how many deliveries were read back from the log (consumers outside their window).

    python benches/durable_producers.py 200000 2:65536 4:65536   # EVENTS PRODUCERS:WINDOW...

Each spec runs ``REPS`` times (environment, default 3) through ``sealbus bench``'s own
durable scenario (``harness.sealbus_throughput``). Nothing is asserted.
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
from pathlib import Path

from sealbus.bench import harness
from sealbus.bench.workload import encode_pool


def main(events: int, specs: list[str]) -> None:
    pool = encode_pool(8192, 1024)
    read_back: list[int] = []
    close = harness._close

    def counting_close(setup: harness._Setup) -> None:
        read_back.append(int(setup.router.counters().get("read_back", 0)))
        close(setup)

    harness._close = counting_close
    for spec in specs:
        producers, window = (int(x) for x in spec.split(":"))
        runs = []
        for _ in range(int(os.environ.get("REPS", "3"))):
            with tempfile.TemporaryDirectory() as d:
                r0 = resource.getrusage(resource.RUSAGE_SELF)
                fig = harness.sealbus_throughput(
                    pool, events, path=Path(d) / "log", producers=producers, max_pending=window
                )
                r1 = resource.getrusage(resource.RUSAGE_SELF)
                cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
                per_event = cpu / events * 1e6
                runs.append(f"{fig.events_per_s:,.0f} ev/s, {per_event:.2f} CPU-µs/ev, {read_back[-1]:,} read back")
        print(f"producers={producers} window={window}: " + "; ".join(runs), flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2:])
