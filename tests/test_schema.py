"""sealbus.SchemaRegistry: registration, compatibility, validation, batches, workload."""

from __future__ import annotations

import json
import math
from typing import Any

import jsonschema
import pytest
import sealbus
from hypothesis import given, settings
from hypothesis import strategies as st
from orders import SCHEMA, make_events

D7 = "http://json-schema.org/draft-07/schema#"
D2020 = "https://json-schema.org/draft/2020-12/schema"


def closed(props: dict[str, Any], required: list[str], draft: str = D2020) -> dict[str, Any]:
    return {
        "$schema": draft,
        "type": "object",
        "additionalProperties": False,
        "required": required,
        "properties": props,
    }


def buffer_of(events: list[Any]) -> tuple[bytes, list[int]]:
    parts = [json.dumps(e, separators=(",", ":")).encode() for e in events]
    offsets = [0]
    for p in parts:
        offsets.append(offsets[-1] + len(p))
    return b"".join(parts), offsets


@pytest.mark.parametrize("draft", [D7, D2020])
def test_register_versions_and_get(draft: str) -> None:
    r = sealbus.SchemaRegistry()
    v1 = closed({"a": {"type": "string"}}, ["a"], draft)
    assert r.register("t", v1) == 1
    v2 = closed({"a": {"type": "string"}, "b": {"type": "integer"}}, ["a"], draft)
    assert r.register("t", v2, compatibility="backward") == 2
    assert r.versions("t") == [1, 2]
    assert r.latest_version("t") == 2
    assert r.get("t", 1) == v1
    assert r.get("t") == v2
    assert r.types() == ["t"]
    assert r.validate("t", {"a": "x", "b": 1}) == 2
    with pytest.raises(sealbus.ValidationError) as e:
        r.validate("t", {"a": "x", "b": 1}, version=1)
    assert e.value.path == "" and "b" in e.value.reason
    # Registering the same schema again is a no-op returning the latest version.
    assert r.register("t", v2) == 2


@pytest.mark.parametrize(
    ("mode", "old", "new", "why"),
    [
        # backward: new must accept all old data.
        ("backward", {"type": "integer"}, {"type": "number"}, None),
        ("backward", {"type": "number"}, {"type": "integer"}, "accepts type number"),
        ("backward", closed({"a": {}}, []), closed({"a": {}}, ["a"]), "requires property 'a'"),
        ("backward", {"enum": ["a", "b"]}, {"enum": ["a"]}, '"b"'),
        (
            "backward",
            {"type": "string", "maxLength": 5},
            {"type": "string", "maxLength": 3},
            "maxLength",
        ),
        # forward: old must accept all new data.
        ("forward", closed({"a": {}}, []), closed({"a": {}, "b": {}}, []), "allows property 'b'"),
        ("forward", {"type": "number"}, {"type": "integer"}, None),
        ("forward", {"type": "string"}, {"type": ["string", "null"]}, "accepts type null"),
        # full: both.
        ("full", {"type": "string"}, {"type": "string", "description": "doc"}, None),
        ("full", {"type": "string"}, {"type": "string", "pattern": "^a"}, "pattern"),
        # none: anything goes.
        ("none", {"type": "string"}, {"type": "object"}, None),
    ],
)
def test_compatibility_modes(mode: str, old: Any, new: Any, why: str | None) -> None:
    r = sealbus.SchemaRegistry()
    r.register("t", old)
    if why is None:
        assert r.register("t", new, compatibility=mode) == 2  # type: ignore[arg-type]
        return
    with pytest.raises(sealbus.SchemaIncompatible) as e:
        r.register("t", new, compatibility=mode)  # type: ignore[arg-type]
    assert e.value.mode == mode
    assert why in e.value.reason, e.value.reason
    assert "at #" in e.value.reason  # names the schema location
    assert r.versions("t") == [1]


def test_incompatible_reason_names_nested_location() -> None:
    r = sealbus.SchemaRegistry()
    r.register("orders", SCHEMA)
    new = json.loads(json.dumps(SCHEMA))
    new["properties"]["items"]["items"]["properties"]["qty"]["maximum"] = 50
    with pytest.raises(sealbus.SchemaIncompatible) as e:
        r.register("orders", new)
    assert "at #/properties/items/items/properties/qty" in e.value.reason
    assert "maximum" in e.value.reason
    # The same change is forward compatible (old accepts everything new accepts).
    assert r.register("orders", new, compatibility="forward") == 2


@pytest.mark.parametrize(
    "bad",
    [
        {"type": "strung"},
        {"type": "string", "minLength": -1},
        {"$ref": "https://example.com/schema.json"},
        {"type": "string", "format": "no-such-format"},
        {"$schema": "https://example.com/dialect"},
        "{not json",
        [1, 2],
    ],
)
def test_bad_schema_refused(bad: Any) -> None:
    r = sealbus.SchemaRegistry()
    with pytest.raises((sealbus.SchemaInvalid, sealbus.InvalidArgument)):
        r.register("t", bad)
    assert r.types() == []


def test_bad_arguments() -> None:
    r = sealbus.SchemaRegistry()
    with pytest.raises(sealbus.InvalidArgument):
        r.register("t", {}, compatibility="sideways")  # type: ignore[arg-type]
    r.register("t", {"type": "object"}, version=5)
    with pytest.raises(sealbus.InvalidArgument):
        r.register("t", {"type": "object", "title": "x"}, version=4)
    with pytest.raises(sealbus.InvalidArgument) as e:
        r.validate("t", {"x": [1, math.nan]})
    assert e.value.name == "data/x/1"
    with pytest.raises(sealbus.InvalidArgument):
        r.validate("t", {1: 2})
    with pytest.raises(sealbus.InvalidArgument):
        r.validate("t", {"s": {1, 2}})


def test_unknown_type_and_schemaless() -> None:
    r = sealbus.SchemaRegistry()
    with pytest.raises(sealbus.SchemaNotFound):
        r.validate("nope", {})
    lax = sealbus.SchemaRegistry(allow_schemaless=True)
    assert lax.allow_schemaless
    assert lax.validate("nope", {}) == 0
    lax.register("t", {"type": "object"})
    with pytest.raises(sealbus.SchemaNotFound):
        lax.validate("t", {}, version=2)


def test_validation_error_paths() -> None:
    r = sealbus.SchemaRegistry()
    r.register("orders", SCHEMA)
    events, _ = make_events(10)
    e = events[0]
    e["items"][1]["qty"] = 101
    with pytest.raises(sealbus.ValidationError) as err:
        r.validate("orders", e)
    assert err.value.path == "/items/1/qty"
    assert err.value.schema_path == "/properties/items/items/properties/qty/maximum"
    assert err.value.version == 1 and err.value.index == 0
    # Same answer from JSON bytes and str.
    for data in (json.dumps(e).encode(), json.dumps(e), bytearray(json.dumps(e).encode())):
        with pytest.raises(sealbus.ValidationError) as err2:
            r.validate("orders", data)
        assert err2.value.path == "/items/1/qty"
    with pytest.raises(sealbus.ValidationError) as err3:
        r.validate("orders", b'{"eventId": 1,')
    assert "invalid JSON" in err3.value.reason


def test_error_reason_does_not_leak_the_value() -> None:
    r = sealbus.SchemaRegistry()
    r.register("t", {"type": "object", "properties": {"email": {"type": "string", "format": "email"}}})
    with pytest.raises(sealbus.ValidationError) as e:
        r.validate("t", {"email": "top-secret-value"})
    assert "top-secret-value" not in str(e.value)
    assert e.value.path == "/email"


@pytest.mark.parametrize(
    ("fmt", "good", "bad"),
    [
        ("uuid", "6a2f41a3-c54c-4ce8-b2d2-0324e1c32e22", "not-a-uuid"),
        ("date-time", "2024-01-01T10:00:00Z", "2024-13-45T25:61:00Z"),
        ("email", "a@example.com", "alice.example.com"),
    ],
)
@pytest.mark.parametrize("draft", [D7, D2020])
def test_formats_are_asserted(fmt: str, good: str, bad: str, draft: str) -> None:
    r = sealbus.SchemaRegistry()
    r.register("t", {"$schema": draft, "type": "string", "format": fmt})
    # A str is JSON text, so a bare string value is passed JSON-encoded.
    assert r.validate("t", json.dumps(good)) == 1
    with pytest.raises(sealbus.ValidationError):
        r.validate("t", json.dumps(bad))


def test_duplicate_keys_refused_in_bytes() -> None:
    r = sealbus.SchemaRegistry()
    r.register("t", {"type": "object"})
    with pytest.raises(sealbus.ValidationError) as e:
        r.validate("t", b'{"a": 1, "a": 2}')
    assert "duplicate" in e.value.reason


def test_workload_flags_exactly_the_invalid_events() -> None:
    r = sealbus.SchemaRegistry()
    r.register("orders.placed", SCHEMA)
    events, invalid = make_events(3000)
    buf, offsets = buffer_of(events)
    ok = r.check_batch("orders.placed", buf, offsets)
    assert {i for i, v in enumerate(ok) if not v} == invalid
    assert r.check_batch("orders.placed", buf, offsets, parallel=True) == ok
    errors = r.validate_batch("orders.placed", buf, offsets)
    assert {i for i, e in enumerate(errors) if e is not None} == invalid
    for i, e in enumerate(errors):
        if e is not None:
            assert isinstance(e, sealbus.ValidationError) and e.index == i
    singles = set()
    for i, ev in enumerate(events):
        try:
            r.validate("orders.placed", ev)
        except sealbus.ValidationError:
            singles.add(i)
    assert singles == invalid


def test_workload_agrees_with_python_jsonschema() -> None:
    events, invalid = make_events(600)
    ref = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    r = sealbus.SchemaRegistry()
    r.register("orders.placed", SCHEMA)
    buf, offsets = buffer_of(events)
    ours = r.check_batch("orders.placed", buf, offsets)
    theirs = [ref.is_valid(e) for e in events]
    assert ours == theirs
    assert {i for i, v in enumerate(theirs) if not v} == invalid


def test_batch_offsets_checked() -> None:
    r = sealbus.SchemaRegistry()
    r.register("t", {"type": "object"})
    with pytest.raises(sealbus.InvalidArgument):
        r.check_batch("t", b"{}{}", [0, 2, 9])
    with pytest.raises(sealbus.InvalidArgument):
        r.check_batch("t", b"{}{}", [0, 3, 2])
    with pytest.raises(TypeError):
        r.check_batch("t", {"a": 1}, [0, 1])
    import array

    assert r.check_batch("t", b"{}[]", array.array("Q", [0, 2, 4])) == [True, False]
    assert r.check_batch("t", memoryview(b"{}"), [0, 2]) == [True]


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=20,
)

_SCHEMA = {
    "$schema": D7,
    "type": ["object", "array", "string", "number", "null", "boolean"],
    "properties": {"a": {"type": "integer", "minimum": 0}, "b": {"maxLength": 3}},
    "items": {"type": ["string", "integer", "object"]},
    "maxLength": 4,
    "maximum": 1000,
}


@settings(max_examples=300, deadline=None)
@given(_json)
def test_agrees_with_jsonschema_on_random_data(data: Any) -> None:
    r = sealbus.SchemaRegistry()
    r.register("t", _SCHEMA)
    expected = jsonschema.Draft7Validator(_SCHEMA).is_valid(data)
    # A str is taken as JSON text (like bytes), so Python strings go in encoded.
    forms = [json.dumps(data), json.dumps(data).encode()]
    if not isinstance(data, str):
        forms.append(data)
    for form in forms:
        try:
            r.validate("t", form)
            got = True
        except sealbus.ValidationError:
            got = False
        assert got == expected, (form, expected)
