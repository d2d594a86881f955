"""A router in a process of its own, joined to NATS by a bridge: the exporting side of
the bridge tests. Prints one line per acknowledged publish (``acked <id>,<id>,...``),
so the test knows exactly which events the router promised to keep.

    python bridge_peer.py LOG NATS_URL TRANSIT IDENTITY BATCHES BATCH_SIZE [PAUSE [PUBLISH_TIMEOUT]]
"""

from __future__ import annotations

import json
import random
import sys
import time

import sealbus
from orders import SCHEMA, valid_event  # type: ignore[import-not-found]
from sealbus.nats import Bridge, Identity


def main() -> None:
    log, url, transit, identity, batches, size = sys.argv[1:7]
    pause = float(sys.argv[7]) if len(sys.argv) > 7 else 0.0
    publish_timeout = float(sys.argv[8]) if len(sys.argv) > 8 else 5.0
    router = sealbus.Router(log)
    router.schemas.register("orders.placed", SCHEMA)
    checkout = router.principal("checkout")
    router.policy.allow_publish(checkout, "orders.*")
    bridge = Bridge(
        router,
        url.split(","),
        name="shop-a",
        identity=Identity.load_or_create(identity),
        transit_keys=transit,
        exports=["orders.*"],
        publish_timeout=publish_timeout,
    ).start(timeout=5.0)
    rng = random.Random(7)
    with router.producer(checkout) as p:
        for b in range(int(batches)):
            events = [valid_event(rng) for _ in range(int(size))]
            receipts = p.publish_many("orders.placed", events, subject=f"customer-4711-{b}")
            print("acked " + ",".join(receipts.ids), flush=True)
            print("times " + ",".join(r.time for r in receipts), flush=True)
            if pause:
                time.sleep(pause)
    flushed = bridge.flush(60.0)
    print("stats " + json.dumps(bridge.stats()), flush=True)
    print("flushed" if flushed else "flush timed out", flush=True)
    bridge.close()
    router.close()


if __name__ == "__main__":
    main()
