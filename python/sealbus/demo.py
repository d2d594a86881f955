"""``sealbus demo``: a small shop, end to end, in a few seconds.

Checkout publishes ``orders.placed``; inventory, shipping and analytics consume with
different patterns; a compromised producer tries a forbidden type and a malformed
order and is refused, and the router's alert rules tell the security team about it.
The output shows who got what.
"""

from __future__ import annotations

import random
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import sealbus
from sealbus.e2e import ConsumerKeyPair, open_e2e

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

PAYMENT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["orderId", "iban", "amount"],
    "properties": {
        "orderId": {"type": "string"},
        "iban": {"type": "string"},
        "amount": {"type": "number", "exclusiveMinimum": 0},
    },
}
IBAN = "DE89370400440532013000"
COUNTRIES = ["DE", "FR", "US", "GB", "JP"]
SHIP_TO = ["DE", "FR"]
THRESHOLD = 100


def make_order(rng: random.Random, n: int) -> dict[str, Any]:
    items = [
        {"sku": rng.choice(["ABC-1", "KLM-2", "XYZ-3"]), "qty": rng.randint(1, 4)} for _ in range(rng.randint(1, 3))
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
    with tempfile.TemporaryDirectory(prefix="sealbus-demo-") as tmp:
        log_dir = Path(tmp) / "shop-log"
        # A shop this small has no baseline to speak of: two refusals within ten
        # seconds from one principal are enough to alert.
        router = sealbus.Router(log_dir, fsync="batch", alerts=sealbus.AlertConfig(refused_burst=2))
        got = _shop(router, rng, orders, say, log_dir)
        router.close()
    return got


def _shop(
    router: sealbus.Router, rng: random.Random, orders: int, say: Callable[..., None], log_dir: Path
) -> dict[str, list[str]]:
    say("sealbus demo: a small shop")
    say("=" * 72)
    say(f"router      durable log in {log_dir.name}/, fsync=batch, sealed at rest (AES-256-GCM)")
    say(f"            keys: {router.key_source.replace(str(log_dir.parent), '<tmp>')}")
    version = router.schemas.register("orders.placed", ORDER_SCHEMA)
    router.schemas.register("payments.captured", PAYMENT_SCHEMA)
    say(f"schema      orders.placed v{version}, payments.captured v1 (JSON Schema 2020-12)")

    billing_keys = ConsumerKeyPair.generate()
    checkout = router.principal("checkout")
    inventory = router.principal("inventory")
    shipping = router.principal("shipping")
    analytics = router.principal("analytics")
    billing = router.principal("billing", public_key=billing_keys.public_bytes)
    intruder = router.principal("compromised-plugin")
    security = router.principal("security")
    router.policy.allow_publish(checkout, ["orders.*", "payments.*"])
    router.policy.allow_publish(intruder, "orders.placed")
    for who in (inventory, shipping, analytics):
        router.policy.allow_subscribe(who, "orders.*")
    router.policy.allow_subscribe(billing, "payments.*")
    router.policy.allow_subscribe(security, "sealbus.alert.*")
    router.policy.require_end_to_end("payments.*")
    say("policy      checkout -> orders.*, payments.*; compromised-plugin -> orders.placed only")
    say("            inventory, shipping, analytics <- orders.*; billing <- payments.* (default deny)")
    say("            payments.* sealed end to end: only billing holds a key; the router never sees it")
    say("            security <- sealbus.alert.* (the router's own alerts)")

    subs = {
        "inventory": router.subscribe(inventory, "orders.placed"),
        "shipping": router.subscribe(
            shipping,
            "orders.placed",
            pattern={"data": {"total": [{"numeric": [">", THRESHOLD]}], "customer": {"country": SHIP_TO}}},
        ),
    }
    analytics_pattern = {"data": {"customer": {"tier": [{"anything-but": "bronze"}]}}}
    offline = router.subscribe(analytics, "orders.*", name="analytics", durable=True, pattern=analytics_pattern)
    offline.close()  # analytics goes offline; its cursor stays in the log
    pay_sub = router.subscribe(billing, "payments.*", keypair=billing_keys)
    watch = router.subscribe(security, "sealbus.alert.*")
    say("subscribe   inventory: every order; shipping: total > 100 and country in DE/FR")
    say("            analytics (durable): tier anything-but bronze -- and it is offline right now")
    say()

    batch = [make_order(rng, n) for n in range(1, orders + 1)]
    with router.producer(checkout) as p:
        receipts = p.publish_many("orders.placed", batch)
        payments = [{"orderId": o["orderId"], "iban": IBAN, "amount": o["total"]} for o in batch[:3]]
        p.publish_many("payments.captured", payments)
    say(f"checkout    published {len(receipts)} orders in one batch, stored and fsynced before the receipt")
    for order, r in zip(batch, receipts, strict=True):
        c = order["customer"]
        line = f"{order['orderId']}  {order['total']:>7.2f} EUR  {c['country']}  {c['tier']:<6}"
        say(f"            {line}  offset {r.offset:>2}  -> {r.routed} live consumer(s)")
    say(f"            and {len(payments)} payments, sealed end to end for billing")
    say()

    got: dict[str, list[str]] = {}
    say("compromised-plugin tries its luck:")
    bad = router.producer(intruder)
    try:
        bad.publish("payments.refund", {"amount": 10_000, "to": "attacker"})
    except sealbus.PolicyDenied as e:
        say(f"  refused   {e}")
    try:
        malformed = {"orderId": "ord-9999", "total": -5, "customer": {}, "items": [], "currency": "EUR"}
        bad.publish("orders.placed", malformed)
    except sealbus.ValidationError as e:
        say(f"  refused   {e}")
    if router.alerts is not None:
        router.alerts.check()  # the watcher would within its interval; now, for the demo
    for m in watch.poll(10, 1.0):
        a = m.data
        say(
            f"  alert     {m.type} to security: {a['subject']}, {a['refusals']} refusals "
            f"within {a['window_ns'] // 1_000_000_000} s (last: {a['rule']} on {a['type']})"
        )
        m.ack()
        got.setdefault("alerts", []).append(m.type)
    say()

    say("who got what:")
    for name, sub in subs.items():
        msgs = sub.poll(1000, 0.5)
        sub.ack(msgs)
        got[name] = [m.data["orderId"] for m in msgs]
        say(f"  {name:<10} {len(msgs):>2}  {' '.join(got[name])}")
    back = router.subscribe(analytics, "orders.*", name="analytics", durable=True, pattern=analytics_pattern)
    msgs = back.poll(1000, 0.5)
    back.ack(msgs)
    got["analytics"] = [m.data["orderId"] for m in msgs]
    say(f"  analytics  {len(msgs):>2}  {' '.join(got['analytics'])}   (back online: caught up from the log)")
    paid = pay_sub.poll(10, 0.5)
    pay_sub.ack(paid)
    got["billing"] = [m.data["orderId"] for m in paid]
    say(f"  billing    {len(paid):>2}  {' '.join(got['billing'])}   (opened with billing's own key)")
    try:
        frame = paid[0].event.data_bytes
        open_e2e(
            frame,
            [0, len(frame)],
            keypair=ConsumerKeyPair.generate(),
            recipient_id="analytics",
            event_ids=[paid[0].id],
            event_type="payments.captured",
            source="checkout",
            schema_version=0,
        )
    except sealbus.KeyNotFound:
        say("  analytics  holds no key for payments.*: even with the ciphertext in hand it cannot open it")
    say()

    router.flush()
    stored = b"".join(f.read_bytes() for f in log_dir.rglob("*") if f.is_file())
    leaks = [s for s in (IBAN, batch[0]["orderId"], batch[0]["customer"]["id"]) if s.encode() in stored]
    say(f"on disk     {len(stored):,} bytes in {log_dir.name}/; searched for the IBAN, an order id and a")
    say(f"            customer id: {'FOUND ' + str(leaks) if leaks else 'none found (ciphertext only)'}")
    c = router.counters()
    say(
        f"counters    published={c['published']} routed={c['routed']} fsyncs={c.get('fsyncs', 0)} "
        f"refused: policy={c['refused_policy']} schema={c['refused_schema']}"
    )
    return got
