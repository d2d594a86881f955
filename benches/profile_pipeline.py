"""A fixed amount of router work for instruction counts: N batches of 1,024 OrderPlaced
events published through the `sealbus bench` setup (validate, 3 patterns, seal, log),
then drained by its 3 consumers with poll_batch + ack. Nothing is timed; run it under
callgrind and read the inclusive counts of the binding's entry points:

    SEALBUS_SEAL_THREADS=1 valgrind --tool=callgrind --callgrind-out-file=cg.out \\
        python benches/profile_pipeline.py 8 durable
    callgrind_annotate --inclusive=yes cg.out | grep -E "PyRouter::publish |poll_batch__ |__pymethod_ack__ "

Divide by N * 1,024 for instructions per event. `memory` instead of `durable` uses an
in-memory router.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from sealbus.bench import harness
from sealbus.bench.workload import encode_pool


def main(batches: int, durable: bool) -> None:
    pool = encode_pool(2048, 1024)
    with tempfile.TemporaryDirectory() as d:
        setup = harness._make_router(Path(d) / "log" if durable else None, 200_000, timeout=30.0)
        n = 0
        for b in range(batches):
            batch = pool[b % len(pool)]
            setup.producer.publish_raw("orders.placed", batch.buffer, batch.offsets, subject=str(b))
            n += batch.count
        for sub in setup.subs:
            got = 0
            while got < n:
                polled = sub.poll_batch(1024, 0.2)
                polled.ack()
                got += len(polled)
        harness._close(setup)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 8, (sys.argv[2] if len(sys.argv) > 2 else "durable") == "durable")
