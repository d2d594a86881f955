"""The one-pass fast path for JSON bytes (rust/sealbus-core/src/schema/fast) against the
crate's verdict on the same event as a dict (``validate`` with a dict builds a
serde_json Value, a route the fast path never takes) and against jsonschema_rs: order
events mutated field by field must get the same verdict from all three."""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonschema_rs
import pytest
import sealbus
from hypothesis import given, settings
from hypothesis import strategies as st
from orders import SCHEMA, make_events

EVENTS, _ = make_events(200)
REFERENCE = jsonschema_rs.validator_for(SCHEMA, validate_formats=True)

PATHS: list[tuple[str, ...]] = (
    [(k,) for k in SCHEMA["properties"]]
    + [("customer", k) for k in SCHEMA["properties"]["customer"]["properties"]]
    + [("items", 1, k) for k in ("sku", "qty", "price")]
)

_values = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from([0, 1, 3, 4, 100, 101, 2**53, 2**53 + 1, 2**64, -1, -(2**63) - 1]),
    st.sampled_from([0.0, -0.0, 0.5, 1.0, 2.0, 99.99, 100.0, 100000.0, 100000.00001, 1e16, 1e-300]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(),
    st.sampled_from(
        [
            "OrderPlaced",
            "web",
            "gold",
            "USD",
            "pickup",
            "ord-0123456789ab",
            "ORD-12345",
            "cus-12345678",
            "US",
            "ABC-1234",
            "2024-01-01T00:00:00Z",
            "2024-13-45T25:61:00Z",
            "2a9b5e2c-1f3d-4c5e-8a7b-0123456789ab",
            "not-a-uuid",
            "a@b.co",
            "a..b@x.com",
            "a@-x.com",
            "A <a@x.com>",
            '"q"@x.com',
            "ü@x.com",
            "X" * 16,
            "X" * 17,
            "é" * 16,
            "é" * 17,
            "😀" * 16,
            "😀" * 17,
            "a\nb",
        ]
    ),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def _mutate(event: dict[str, Any], path: tuple[Any, ...], action: str, value: Any) -> dict[str, Any]:
    e = copy.deepcopy(event)
    parent: Any = e
    for step in path[:-1]:
        # An earlier mutation may have replaced or removed what this path goes through.
        try:
            parent = parent[step]
        except (KeyError, IndexError, TypeError):
            return e
    if not isinstance(parent, dict):
        return e
    if action == "set":
        parent[path[-1]] = value
    elif action == "delete":
        parent.pop(path[-1], None)
    else:
        parent["extra"] = value
    return e


@pytest.fixture(scope="module")
def registry() -> sealbus.SchemaRegistry:
    r = sealbus.SchemaRegistry()
    r.register("orders.placed", SCHEMA)
    return r


def _dict_verdict(r: sealbus.SchemaRegistry, event: dict[str, Any]) -> bool | None:
    try:
        r.validate("orders.placed", event)
    except sealbus.ValidationError:
        return False
    except sealbus.InvalidArgument:
        return None  # the dict route takes integers of at most 64 bits
    return True


@settings(max_examples=400, deadline=None)
@given(
    which=st.integers(0, len(EVENTS) - 1),
    mutations=st.lists(
        st.tuples(st.sampled_from(PATHS), st.sampled_from(["set", "delete", "add"]), _values), max_size=3
    ),
    ascii_only=st.booleans(),
    indent=st.sampled_from([None, 1]),
)
def test_fast_path_agrees_with_the_dict_route_and_jsonschema_rs(
    registry: sealbus.SchemaRegistry,
    which: int,
    mutations: list[tuple[tuple[Any, ...], str, Any]],
    ascii_only: bool,
    indent: int | None,
) -> None:
    event = EVENTS[which]
    for path, action, value in mutations:
        event = _mutate(event, path, action, value)
    # Non-ASCII escaped (\\uXXXX, left to the crate) or raw UTF-8 (checked by the fast path).
    body = json.dumps(event, ensure_ascii=ascii_only, indent=indent).encode()
    fast = registry.check_batch("orders.placed", body, [0, len(body)])[0]
    assert _dict_verdict(registry, event) in (fast, None), body
    assert fast == REFERENCE.is_valid(event), body


@pytest.mark.parametrize(
    ("body", "valid"),
    [
        # One value, several spellings: 2020-12 counts 2.0 as an integer.
        (b'"version":2', True),
        (b'"version":2.0', True),
        (b'"version":2e0', True),
        (b'"version":0.2e1', True),
        (b'"version":2.5', False),
        (b'"version":4', False),
        (b'"version":-0', False),
        # Escapes are the crate's: same verdicts.
        (b'"source":"w\\u0065b"', True),
        (b'"source":"w\\u0065bx"', False),
        # Duplicate keys are refused wherever they are.
        (b'"version":1,"version":2', False),
    ],
)
def test_number_spellings_escapes_and_duplicates(registry: sealbus.SchemaRegistry, body: bytes, valid: bool) -> None:
    event = dict(EVENTS[0])
    del event["version"]
    del event["source"]
    head = json.dumps(event, separators=(",", ":")).encode()[:-1]
    extra = b'"source":"web"' if b"source" not in body else b'"version":1'
    doc = head + b"," + body + b"," + extra + b"}"
    assert registry.check_batch("orders.placed", doc, [0, len(doc)]) == [valid], doc
    if not valid:
        with pytest.raises(sealbus.ValidationError):
            registry.validate("orders.placed", doc)
