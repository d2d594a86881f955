"""A router in a process of its own that exports an end-to-end type through a bridge:
its producer seals every event for the consumer ``shop-b/shipping`` (a consumer of the
router ``shop-b``, whose X25519 public key it is given), so neither this router, nor
NATS, nor any router holding the transit key can read them. Prints the acknowledged
ids (``acked <id>,...``), the bridge's counters and ``flushed``.

    python bridge_e2e_peer.py LOG NATS_URL TRANSIT IDENTITY SHIPPING_PUBLIC_HEX COUNT
"""

from __future__ import annotations

import json
import random
import sys

import sealbus
from orders import SCHEMA, valid_event  # type: ignore[import-not-found]
from sealbus.nats import Bridge, Identity


def main() -> None:
    log, url, transit, identity, shipping_public, count = sys.argv[1:7]
    router = sealbus.Router(log)
    router.schemas.register("orders.placed", SCHEMA)
    router.policy.require_end_to_end("orders.*")
    checkout = router.principal("checkout")
    router.policy.allow_publish(checkout, "orders.*")
    # The remote consumer, named as this router names the principals of shop-b.
    remote = router.principal("shop-b/shipping", public_key=bytes.fromhex(shipping_public))
    router.policy.allow_subscribe(remote, "orders.*")
    bridge = Bridge(
        router,
        url,
        name="shop-a",
        identity=Identity.load_or_create(identity),
        transit_keys=transit,
        exports=["orders.*"],
    ).start(timeout=5.0)
    rng = random.Random(11)
    with router.producer(checkout) as p:
        events = [valid_event(rng) for _ in range(int(count))]
        receipts = p.publish_many("orders.placed", events, subject="customer-4711")
        print("acked " + ",".join(receipts.ids), flush=True)
    flushed = bridge.flush(60.0)
    print("stats " + json.dumps(bridge.stats()), flush=True)
    print("flushed" if flushed else "flush timed out", flush=True)
    bridge.close()
    router.close()


if __name__ == "__main__":
    main()
