"""``sealbus demo``: a small shop, end to end, in a few seconds.

Checkout publishes ``orders.placed``; inventory, shipping and analytics consume with
different patterns; a compromised producer tries a forbidden type and a malformed
order and is refused. The output shows who got what.
"""

from __future__ import annotations

import random
import sys
from typing import Any, TextIO

import sealbus

ORDER_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["orderId", "customer", "items", "total", "currency"],
    "properties": {
        "orderId": {"type": "string", "pattern": "^ord-[0-9]{4}$"},
        "customer": {
            "type": "object",
            "required": ["id", "country", "tier"],
            "properties": {
                "id": {"type": "string"},
                "country": {"type": "string", "pattern": "^[A-Z]{2}$"},
                "tier": {"enum": ["bronze", "silver", "gold"]},
            },
        },
        "items": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["sku", "qty"],
                "properties": {"sku": {"type": "string"}, "qty": {"type": "integer", "minimum": 1}},
            },
        },
        "total": {"type": "number", "minimum": 0},
        "currency": {"enum": ["EUR", "USD", "GBP"]},
    },
}

COUNTRIES = ["DE", "FR", "US", "GB", "JP"]
SHIP_TO = ["DE", "FR"]
THRESHOLD = 100


def make_order(rng: random.Random, n: int) -> dict[str, Any]:
    items = [
        {"sku": rng.choice(["ABC-1", "KLM-2", "XYZ-3"]), "qty": rng.randint(1, 4)}
        for _ in range(rng.randint(1, 3))
    ]
    return {
        "orderId": f"ord-{n:04d}",
        "customer": {
            "id": f"cus-{rng.randrange(1000):03d}",
            "country": rng.choice(COUNTRIES),
            "tier": rng.choice(["bronze", "silver", "gold"]),
        },
        "items": items,
        "total": round(rng.uniform(5, 250), 2),
        "currency": "EUR",
    }


def run(out: TextIO = sys.stdout, orders: int = 12, seed: int = 7) -> dict[str, list[str]]:
    """Run the demo; returns which order ids each consumer received (for tests)."""

    def say(text: str = "") -> None:
        print(text, file=out)

    rng = random.Random(seed)
    router = sealbus.Router()

    say("sealbus demo: a small shop")
    say("=" * 60)
    version = router.schemas.register("orders.placed", ORDER_SCHEMA)
    say(f"schema      orders.placed v{version} registered (JSON Schema 2020-12)")

    checkout = router.principal("checkout")
    inventory = router.principal("inventory")
    shipping = router.principal("shipping")
    analytics = router.principal("analytics")
    intruder = router.principal("compromised-plugin")
    router.policy.allow_publish(checkout, "orders.*")
    router.policy.allow_publish(intruder, "orders.placed")
    for who in (inventory, shipping, analytics):
        router.policy.allow_subscribe(who, "orders.*")
    say("policy      checkout may publish orders.*; inventory, shipping, analytics may read orders.*")
    say("            compromised-plugin may publish orders.placed only (default deny for the rest)")

    subs = {
        "inventory": router.subscribe(inventory, "orders.placed"),
        "shipping": router.subscribe(
            shipping,
            "orders.placed",
            pattern={
                "data": {
                    "total": [{"numeric": [">", THRESHOLD]}],
                    "customer": {"country": SHIP_TO},
                }
            },
        ),
        "analytics": router.subscribe(
            analytics,
            "orders.placed",
            pattern={"data": {"customer": {"tier": [{"anything-but": "bronze"}]}}},
            max_pending=1000,
            on_full="drop_oldest",
        ),
    }
    say("subscribe   inventory: every order")
    say(f"            shipping:  total > {THRESHOLD} and country in {SHIP_TO}")
    say("            analytics: tier anything-but bronze")
    say()

    batch = [make_order(rng, n) for n in range(1, orders + 1)]
    with router.producer(checkout) as p:
        receipts = p.publish_many("orders.placed", batch)
    say(f"checkout    published {len(receipts)} orders in one batch")
    for order, r in zip(batch, receipts, strict=True):
        c = order["customer"]
        line = f"{order['orderId']}  {order['total']:>7.2f} EUR  {c['country']}  {c['tier']:<6}"
        say(f"            {line}  -> {r.routed} consumer(s)")
    say()

    say("compromised-plugin tries its luck:")
    bad = router.producer(intruder)
    try:
        bad.publish("payments.refund", {"amount": 10_000, "to": "attacker"})
    except sealbus.PolicyDenied as e:
        say(f"  refused   {e}")
    try:
        bad.publish(
            "orders.placed",
            {"orderId": "ord-9999", "total": -5, "customer": {}, "items": [], "currency": "EUR"},
        )
    except sealbus.ValidationError as e:
        say(f"  refused   {e}")
    say()

    got: dict[str, list[str]] = {}
    say("who got what:")
    for name, sub in subs.items():
        msgs = sub.poll(1000, 0.5)
        sub.ack(msgs)
        got[name] = [m.data["orderId"] for m in msgs]
        say(f"  {name:<10} {len(msgs):>2}  {' '.join(got[name])}")
    c = router.counters()
    say()
    say(
        f"counters    published={c['published']} routed={c['routed']} "
        f"refused: policy={c['refused_policy']} schema={c['refused_schema']}"
    )
    return got
