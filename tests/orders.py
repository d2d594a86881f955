# Verbatim copy of shared/workloads/orders.py (the shared OrderPlaced workload); keep in sync by hand.
# ruff: noqa
"""A shared benchmark workload: "OrderPlaced" events (16 fields, nested customer, three
line items, ~540 bytes as JSON) and their JSON Schema (draft 2020-12, with formats).
Deterministic: the same seed gives the same events on every machine. Every 10th event
breaks the schema in one of 15 ways, so validators can be checked as well as timed.

    from orders import SCHEMA, make_events
    events, invalid = make_events(10_000)      # list of dicts, set of indexes that are invalid

    python3 orders.py --schema                 # print the schema as JSON
    python3 orders.py --jsonl 1000 > ev.jsonl  # 1,000 events, one JSON object a line
Standard library only.
"""

import datetime
import json
import random
import sys
import uuid

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": [
        "eventId",
        "eventType",
        "version",
        "occurredAt",
        "source",
        "orderId",
        "customer",
        "items",
        "currency",
        "subtotal",
        "tax",
        "total",
        "shippingMethod",
        "giftWrap",
    ],
    "properties": {
        "eventId": {"type": "string", "format": "uuid"},
        "eventType": {"const": "OrderPlaced"},
        "version": {"type": "integer", "minimum": 1, "maximum": 3},
        "occurredAt": {"type": "string", "format": "date-time"},
        "source": {"enum": ["web", "mobile", "store", "partner"]},
        "orderId": {"type": "string", "pattern": "^ord-[0-9a-f]{12}$"},
        "customer": {
            "type": "object",
            "additionalProperties": False,
            "required": ["id", "email", "tier", "country"],
            "properties": {
                "id": {"type": "string", "pattern": "^cus-[0-9]{8}$"},
                "email": {"type": "string", "format": "email", "maxLength": 254},
                "tier": {"enum": ["bronze", "silver", "gold", "platinum"]},
                "country": {"type": "string", "pattern": "^[A-Z]{2}$"},
            },
        },
        "items": {
            "type": "array",
            "minItems": 1,
            "maxItems": 50,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["sku", "qty", "price"],
                "properties": {
                    "sku": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{4}$"},
                    "qty": {"type": "integer", "minimum": 1, "maximum": 100},
                    "price": {"type": "number", "exclusiveMinimum": 0, "maximum": 100000},
                },
            },
        },
        "currency": {"enum": ["USD", "EUR", "GBP", "JPY"]},
        "subtotal": {"type": "number", "minimum": 0},
        "tax": {"type": "number", "minimum": 0},
        "total": {"type": "number", "minimum": 0},
        "couponCode": {"type": ["string", "null"], "maxLength": 16},
        "shippingMethod": {"enum": ["standard", "express", "pickup"]},
        "giftWrap": {"type": "boolean"},
        "notes": {"type": "string", "maxLength": 500},
    },
}


def valid_event(rng):
    items = [
        {
            "sku": f"{rng.choice(['ABC', 'KLM', 'XYZ'])}-{rng.randrange(10000):04d}",
            "qty": rng.randint(1, 100),
            "price": round(rng.uniform(0.5, 999.0), 2),
        }
        for _ in range(3)
    ]
    subtotal = round(sum(i["qty"] * i["price"] for i in items), 2)
    tax = round(subtotal * 0.08, 2)
    ts = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC) + datetime.timedelta(seconds=rng.randrange(3 * 10**7))
    e = {
        "eventId": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "eventType": "OrderPlaced",
        "version": rng.randint(1, 3),
        "occurredAt": ts.isoformat().replace("+00:00", "Z"),
        "source": rng.choice(["web", "mobile", "store", "partner"]),
        "orderId": f"ord-{rng.getrandbits(48):012x}",
        "customer": {
            "id": f"cus-{rng.randrange(10**8):08d}",
            "email": f"user{rng.randrange(10**6)}@example.com",
            "tier": rng.choice(["bronze", "silver", "gold", "platinum"]),
            "country": rng.choice(["US", "DE", "FR", "GB", "JP", "BR"]),
        },
        "items": items,
        "currency": rng.choice(["USD", "EUR", "GBP", "JPY"]),
        "subtotal": subtotal,
        "tax": tax,
        "total": round(subtotal + tax, 2),
        "shippingMethod": rng.choice(["standard", "express", "pickup"]),
        "giftWrap": rng.random() < 0.1,
    }
    r = rng.random()
    if r < 0.3:
        e["couponCode"] = rng.choice([None, "SPRING24", "WELCOME10"])
    if r > 0.8:
        e["notes"] = "leave at the door " * rng.randint(1, 5)
    return e


def _del(k):
    return lambda e: e.pop(k)


DEFECTS = [  # (name, mutate-in-place)
    ("missing required 'total'", _del("total")),
    ("version is a string", lambda e: e.update(version="2")),
    ("tier not in enum", lambda e: e["customer"].update(tier="diamond")),
    ("orderId pattern", lambda e: e.update(orderId="ORD-12345")),
    ("qty out of range", lambda e: e["items"][1].update(qty=101)),
    ("items empty", lambda e: e.update(items=[])),
    ("extra customer field", lambda e: e["customer"].update(phone="555-0100")),
    ("bad email format", lambda e: e["customer"].update(email="alice.example.com")),
    ("bad date-time format", lambda e: e.update(occurredAt="2024-13-45T25:61:00Z")),
    ("bad uuid format", lambda e: e.update(eventId="not-a-uuid")),
    ("price not > 0", lambda e: e["items"][0].update(price=0)),
    ("couponCode too long", lambda e: e.update(couponCode="X" * 17)),
    ("giftWrap not boolean", lambda e: e.update(giftWrap="yes")),
    ("eventType const", lambda e: e.update(eventType="OrderShipped")),
    ("missing nested 'sku'", lambda e: e["items"][2].pop("sku")),
]


def make_events(n=10_000, seed=42):
    rng = random.Random(seed)
    events, invalid = [], set()
    for i in range(n):
        e = valid_event(rng)
        if i % 10 == 9:
            DEFECTS[(i // 10) % len(DEFECTS)][1](e)
            invalid.add(i)
        events.append(e)
    return events, invalid


if __name__ == "__main__":
    if "--schema" in sys.argv:
        print(json.dumps(SCHEMA, indent=2))
    elif "--jsonl" in sys.argv:
        n = int(sys.argv[sys.argv.index("--jsonl") + 1])
        for e in make_events(n)[0]:
            print(json.dumps(e, separators=(",", ":")))
    else:
        print(__doc__)
