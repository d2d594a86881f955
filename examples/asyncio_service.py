"""A small asyncio service on sealbus: request handlers publish one event each with
``await publish_async``, and an inventory consumer reads them with ``async for``, all
on one event loop, with no thread waiting on it.

    python examples/asyncio_service.py [LOG_DIR]

Here the "requests" are simulated; in a FastAPI, aiohttp or Starlette app, the body
of ``place_order`` is the route handler and ``inventory`` a background task started
at application startup.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

import sealbus

SCHEMA = {
    "type": "object",
    "required": ["orderId", "sku", "qty"],
    "properties": {
        "orderId": {"type": "string"},
        "sku": {"type": "string"},
        "qty": {"type": "integer", "minimum": 1},
    },
}


def make_router(path: Path) -> tuple[sealbus.Router, sealbus.Producer, sealbus.Subscription]:
    router = sealbus.Router(path / "log", fsync="batch", keys=path / "keys")
    router.schemas.register("orders.placed", SCHEMA)
    checkout = router.principal("checkout")
    inventory = router.principal("inventory")
    router.policy.allow_publish(checkout, "orders.*")
    router.policy.allow_subscribe(inventory, "orders.placed")
    sub = router.subscribe(inventory, "orders.placed", durable=True, name="inventory")
    return router, router.producer(checkout), sub


async def place_order(producer: sealbus.Producer, order_id: str, sku: str, qty: int) -> dict[str, Any]:
    """The request handler: answers once the event is on disk (its receipt is back).
    Concurrent requests share the log's fsyncs."""
    receipt = await producer.publish_async("orders.placed", {"orderId": order_id, "sku": sku, "qty": qty})
    return {"status": "accepted", "event": receipt.id, "offset": receipt.offset}


async def inventory(sub: sealbus.Subscription, stock: dict[str, int]) -> None:
    """The consumer: woken through the loop when events arrive; ends when closed."""
    async for msg in sub:
        stock[msg.data["sku"]] = stock.get(msg.data["sku"], 0) - msg.data["qty"]
        msg.ack()


async def main(path: Path, requests: int = 500) -> dict[str, int]:
    router, producer, sub = make_router(path)
    stock: dict[str, int] = {}
    consumer = asyncio.create_task(inventory(sub, stock))
    replies = await asyncio.gather(
        *(place_order(producer, f"ord-{i}", f"sku-{i % 5}", 1 + i % 3) for i in range(requests))
    )
    assert all(r["status"] == "accepted" for r in replies)
    while sum(-v for v in stock.values()) < sum(1 + i % 3 for i in range(requests)):
        await asyncio.sleep(0.01)
    sub.close()
    await consumer
    counters = router.counters()
    router.close()
    print(f"{requests} requests, {counters['fsyncs']} fsyncs; stock moves: {dict(sorted(stock.items()))}")
    return stock


if __name__ == "__main__":
    if len(sys.argv) > 1:
        asyncio.run(main(Path(sys.argv[1])))
    else:
        with tempfile.TemporaryDirectory() as d:
            asyncio.run(main(Path(d)))
