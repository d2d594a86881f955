"""The Rust matcher must agree with the reference model on generated patterns/events.

Events carry numbers as ``Decimal`` and are written to JSON with varied spellings
(``300``, ``300.0``, ``3E+2``), so number-by-value comparison is exercised too.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pattern_reference as ref
import sealbus
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

KEYS = ["a", "b"]
OR_KEYS = ["c", "d"]
# Keys holding dots are path steps, in events and patterns alike.
DOTTED = ["a.b", "c.d", "b.a"]
WORDS = ["", "a", "A", "ab", "aB", "abc", "b", "ba", "x*y", "é", "É", "a\\b", "10.0.0.1", "::1"]
# Characters whose case forms differ in length or do not pair up: ß/SS, the Kelvin
# sign (lowercase k), U+2C7F/U+0240, ΰ (uppercase three characters), İ.
CASES = ["ß", "SS", "ss", "\u212a", "k", "K", "\u2c7f", "\u0240", "\u03b0", "\u03a5\u0308\u0301", "\u0130", "i\u0307"]
IPS = ["10.0.0.1", "10.0.0.200", "10.0.1.7", "192.168.1.1", "::1", "0:0:0:0:0:0:0:1", "2001:db8::5"]
NUMS = [
    Decimal(x)
    for x in [
        "0",
        "-0",
        "1",
        "-1",
        "1.5",
        "2.25",
        "10",
        "300",
        "0.0000001",
        "5E+9",
        "6E+9",
        "-5E+9",
        "1E+20",
    ]
]
OPERANDS = [-1, 0, 0.5, 1, 2.25, 10, 300, 5_000_000_000, -5_000_000_000]

text = st.one_of(
    st.sampled_from(WORDS),
    st.sampled_from(CASES),
    st.text(alphabet="aAbB*\\.é", max_size=4),
    st.text(alphabet="sSßkK\u212a\u2c7f\u0240\u03b0\u03a5\u0308", max_size=3),
)
scalar = st.one_of(text, st.sampled_from(IPS), st.sampled_from(NUMS), st.booleans(), st.none())


def events(depth: int = 2) -> st.SearchStrategy[Any]:
    leaf = scalar
    if depth == 0:
        return leaf
    inner = events(depth - 1)
    return st.one_of(
        leaf,
        leaf,
        st.lists(
            st.one_of(leaf, st.dictionaries(st.sampled_from(KEYS + OR_KEYS), inner, max_size=3)),
            max_size=3,
        ),
        st.dictionaries(st.sampled_from(KEYS + OR_KEYS + DOTTED), inner, max_size=3),
    )


event_objects = st.dictionaries(st.sampled_from(KEYS + OR_KEYS + DOTTED), events(), max_size=4)


def glob_text() -> st.SearchStrategy[str]:
    piece = st.text(alphabet="aAb.é", max_size=2) | st.just("\\*") | st.just("\\\\")
    globs = st.lists(piece, min_size=1, max_size=3).map(lambda ps: "*".join(ps))
    # Two unescaped stars in a row are refused by EventBridge (tested elsewhere).
    return globs.filter(lambda g: "**" not in g.replace("\\\\", "").replace("\\*", ""))


plain = st.one_of(st.sampled_from(WORDS), st.sampled_from(IPS))
nonempty = st.sampled_from([w for w in WORDS if w]) | st.text(alphabet="aAbé", min_size=1, max_size=3)


@st.composite
def numeric(draw: st.DrawFn) -> dict[str, Any]:
    a, b = sorted(draw(st.lists(st.sampled_from(OPERANDS), min_size=2, max_size=2, unique=True)))
    form = draw(st.integers(0, 2))
    if form == 0:
        return {"numeric": [draw(st.sampled_from(["=", "<", "<=", ">", ">="])), a]}
    return {"numeric": [draw(st.sampled_from([">", ">="])), a, draw(st.sampled_from(["<", "<="])), b]}


def one_or_list(s: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return s | st.lists(s, min_size=1, max_size=3)


condition = st.one_of(
    plain,
    st.sampled_from([*OPERANDS, 1.5, 1e20]),
    st.booleans(),
    st.none(),
    st.builds(lambda s: {"prefix": s}, text),
    st.builds(lambda s: {"suffix": s}, text),
    st.builds(lambda s: {"prefix": {"equals-ignore-case": s}}, text),
    st.builds(lambda s: {"suffix": {"equals-ignore-case": s}}, text),
    st.builds(lambda s: {"equals-ignore-case": s}, text),
    st.builds(lambda s: {"wildcard": s}, glob_text()),
    st.builds(lambda s: {"anything-but": s}, text),
    st.builds(lambda s: {"anything-but": s}, st.lists(text, min_size=1, max_size=3)),
    st.builds(lambda s: {"anything-but": s}, one_or_list(st.sampled_from(OPERANDS))),
    st.builds(lambda s: {"anything-but": {"prefix": s}}, one_or_list(nonempty)),
    st.builds(lambda s: {"anything-but": {"suffix": s}}, one_or_list(nonempty)),
    st.builds(lambda s: {"anything-but": {"equals-ignore-case": s}}, one_or_list(text)),
    st.builds(lambda s: {"anything-but": {"wildcard": s}}, one_or_list(glob_text())),
    numeric(),
    st.builds(lambda b: {"exists": b}, st.booleans()),
    st.sampled_from(
        [
            {"cidr": "10.0.0.0/24"},
            {"cidr": "10.0.0.0/8"},
            {"cidr": "::/0"},
            {"cidr": "2001:db8::/32"},
        ]
    ),
)
slot = st.lists(condition, min_size=1, max_size=3)


def sub_pattern(keys: list[str], depth: int) -> st.SearchStrategy[dict[str, Any]]:
    value = slot if depth == 0 else st.one_of(slot, slot, sub_pattern(keys, depth - 1))
    return st.dictionaries(st.sampled_from(keys), value, min_size=1, max_size=2)


@st.composite
def patterns(draw: st.DrawFn) -> dict[str, Any]:
    top = [*KEYS, "a.b"]
    p: dict[str, Any] = draw(st.dictionaries(st.sampled_from(top), st.one_of(slot, sub_pattern(top, 1)), max_size=2))
    if draw(st.booleans()) or not p:
        # Branches may name the fields beside `$or` again (the branch's condition
        # replaces the outer one there), and `$or` may come before or after them.
        or_keys = draw(st.sampled_from([OR_KEYS, [*OR_KEYS, "c.d"], KEYS + OR_KEYS]))
        alternatives = draw(st.lists(sub_pattern(or_keys, 1), min_size=2, max_size=3))
        if draw(st.booleans()):
            p = {"$or": alternatives, **p}
        else:
            p["$or"] = alternatives
    return p


@st.composite
def spelled(draw: st.DrawFn, value: Any) -> str:
    """JSON text of ``value`` with each Decimal written in a randomly chosen spelling."""
    if isinstance(value, Decimal):
        forms = [str(value), format(value, "f"), format(value, "E"), format(value, "e")]
        if value == value.to_integral_value() and abs(value) < 10**12:
            forms += [f"{int(value)}.0", f"{int(value)}.000"]
        return str(draw(st.sampled_from(forms)))
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{draw(spelled(v))}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(draw(spelled(v)) for v in value) + "]"
    return json.dumps(value)


def too_complex(pattern: dict[str, Any]) -> bool:
    """Several wildcards on one field can be refused as too complex to match (as
    EventBridge refuses them); any other refusal is a failure."""
    try:
        sealbus.PatternSet().add("p", pattern)
    except sealbus.PatternError as e:
        assert "too complex" in e.reason, (pattern, e.reason)
        return True
    return False


SETTINGS = settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(pattern=patterns(), event=event_objects, data=st.data())
def test_single_pattern_agrees_with_reference(
    pattern: dict[str, Any], event: dict[str, Any], data: st.DataObject
) -> None:
    text = data.draw(spelled(event))
    want = ref.matches(pattern, event)
    assume(not too_complex(pattern))
    assert sealbus.test_event_pattern(pattern, text) is want, (pattern, text)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pats=st.lists(patterns(), min_size=1, max_size=12),
    evs=st.lists(event_objects, min_size=1, max_size=6),
    data=st.data(),
)
def test_pattern_set_agrees_with_reference(
    pats: list[dict[str, Any]], evs: list[dict[str, Any]], data: st.DataObject
) -> None:
    pats = [p for p in pats if not too_complex(p)]
    assume(pats)
    ps = sealbus.PatternSet()
    for i, p in enumerate(pats):
        ps.add(f"p{i}", p)
    texts = [data.draw(spelled(e)) for e in evs]
    want = [sorted(f"p{i}" for i, p in enumerate(pats) if ref.matches(p, e)) for e in evs]
    assert [sorted(ps.matches(t)) for t in texts] == want
    blob = b"".join(t.encode() for t in texts)
    offsets = [0]
    for t in texts:
        offsets.append(offsets[-1] + len(t.encode()))
    assert [sorted(r) for r in ps.matches_batch(blob, offsets)] == want
    names, ev_idx, name_idx = ps.matches_batch_indices(texts)
    got: list[list[str]] = [[] for _ in evs]
    for e, n in zip(ev_idx, name_idx, strict=True):
        got[e].append(names[n])
    assert [sorted(g) for g in got] == want
