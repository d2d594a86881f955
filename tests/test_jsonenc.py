"""The core's JSON encoder for producer data agrees with the `json` module.

It writes plain data itself and hands everything else back (None), so that what is
accepted, and the error for what is not, stay `json`'s."""

from __future__ import annotations

import enum
import itertools
import json
from collections import OrderedDict
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sealbus._sealbus import encode_json, encode_json_batch
from sealbus.codec import encode_batch, encode_one
from sealbus.errors import InvalidEvent

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()  # any code point, lone surrogates included
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=6) | st.integers(-3, 3), inner, max_size=4)
    ),
    max_leaves=20,
)


def reference(value: Any) -> bytes | None:
    """What `json` makes of it, as bytes, or None when it refuses."""
    try:
        return _dumps(value).encode()
    except (TypeError, ValueError):
        return None


@given(values)
def test_same_json_value_as_the_json_module_or_handed_back(value: Any) -> None:
    fast = encode_json(value)
    ref = reference(value)
    if fast is None:
        return  # `json` encodes it (or refuses it), as it always did
    assert ref is not None, "the core encoded what json refuses"
    assert json.loads(fast) == json.loads(ref)
    # Floats aside (1e-05 may be written 0.00001), the bytes are json's own.
    if not _has_float(value):
        assert fast == ref


def _has_float(value: Any) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(_has_float(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_has_float(v) for v in value)
    return False


@given(st.lists(values, max_size=6))
def test_a_batch_is_its_items_one_after_another(items: list[Any]) -> None:
    fast = encode_json_batch(items)
    singles = [encode_json(v) for v in items]
    if any(s is None for s in singles):
        assert fast is None
        return
    assert fast is not None
    buffer, offsets = fast
    assert offsets[0] == 0 and len(offsets) == len(items) + 1
    assert [buffer[a:b] for a, b in itertools.pairwise(offsets)] == singles


class Colour(enum.IntEnum):
    RED = 1


class Name(str):
    pass


@pytest.mark.parametrize(
    "value",
    [
        float("nan"),
        float("inf"),
        2**64,  # beyond 64 bits
        {1: "int key"},
        "lone \ud800",
        Colour.RED,
        Name("x"),
        OrderedDict(a=1),
        [object()],
    ],
)
def test_what_is_not_plain_data_is_handed_back(value: Any) -> None:
    assert encode_json(value) is None


def _nested(depth: int) -> Any:
    v: Any = 0
    for _ in range(depth):
        v = [v]
    return v


def test_nesting_deeper_than_the_router_reads_is_handed_back() -> None:
    assert encode_json(_nested(128)) == _dumps(_nested(128)).encode()
    assert encode_json(_nested(129)) is None


def test_the_codec_keeps_json_errors_and_subclass_forms() -> None:
    with pytest.raises(InvalidEvent, match=r"data\[0\]: not JSON-serialisable"):
        encode_one(float("nan"))
    with pytest.raises(InvalidEvent, match=r"data\[0\]"):
        encode_one(object())
    assert encode_one({1: Colour.RED}) == ("json", b'{"1":1}')
    assert encode_batch([{"a": 1}, {"b": 2.5}]) == ("json", b'{"a":1}{"b":2.5}', [0, 7, 16])
    assert encode_batch(iter([{"a": 1}])) == ("json", b'{"a":1}', [0, 7])
    assert encode_batch([b"raw", bytearray(b"x")]) == ("binary", b"rawx", [0, 3, 4])
