"""Behaviours where EventBridge's own answers decide: its TestEventPattern API, its
user guide, and the tests of its open-source engine, aws/event-ruler (each case names
its source)."""

from __future__ import annotations

from typing import Any

import pytest
import sealbus

# A dot in a key is a path step, in patterns and events (answers from TestEventPattern).
DOTTED: list[tuple[dict[str, Any], dict[str, Any], bool]] = [
    ({"detail": {"state.status": ["running"]}}, {"detail": {"state": {"status": ["running"]}}}, True),
    ({"detail": {"state.status": ["running"]}}, {"detail": {"state": {"status": "running"}}}, True),
    ({"detail": {"state": {"status": ["running"]}}}, {"detail": {"state.status": "running"}}, True),
    ({"detail.count": [{"numeric": ["<=", 2]}]}, {"detail": {"count": 2}}, True),
    ({"detail.count": [{"numeric": ["<=", 2]}]}, {"detail": {"count": 3}}, False),
    ({"detail.count": [{"numeric": ["<=", 2]}]}, {"detail.count": 1}, True),
    ({"detail": {"state.status": ["running"]}}, {"detail": {"state": "running"}}, False),
    ({"a.b": [{"exists": False}]}, {"a": {"b": 1}}, False),
]

# A field beside `$or` and inside one of its branches (event-ruler's default compiler
# accepts it: each branch is the fields so far with its own written over them).
OVERRIDE = {"name": ["a", "b"], "$or": [{"name": [{"anything-but": "a"}]}, {"condition1": ["x"]}]}
OVERRIDE_CASES = [
    ({"name": "c"}, True),
    ({"name": "b"}, True),
    ({"name": "a"}, False),
    ({"name": "a", "condition1": "x"}, True),
    ({"name": "a", "condition1": "y"}, False),
]


@pytest.mark.parametrize(("pattern", "event", "expected"), DOTTED)
def test_dotted_keys_are_path_steps(pattern: dict[str, Any], event: dict[str, Any], expected: bool) -> None:
    assert sealbus.test_event_pattern(pattern, event) is expected
    ps = sealbus.PatternSet()
    ps.add("p", pattern)
    assert (ps.matches(event) == ["p"]) is expected


@pytest.mark.parametrize(("event", "expected"), OVERRIDE_CASES)
def test_a_field_beside_or_and_inside_a_branch(event: dict[str, Any], expected: bool) -> None:
    assert sealbus.test_event_pattern(OVERRIDE, event) is expected


def test_a_field_after_or_is_written_over_every_branch() -> None:
    after = {"$or": OVERRIDE["$or"], "name": ["a", "b"]}
    assert not sealbus.test_event_pattern(after, {"name": "c"})
    assert sealbus.test_event_pattern(after, {"name": "b", "condition1": "y"})
    # The same pattern as JSON text keeps its order too.
    text = '{"$or": [{"name": [{"anything-but": "a"}]}, {"condition1": ["x"]}], "name": ["a", "b"]}'
    assert not sealbus.test_event_pattern(text, {"name": "c"})


# Wildcards EventBridge refuses as too complex to match (event-ruler's
# MachineComplexityEvaluator measure): five `*` between `:` separators are refused,
# four are accepted.
@pytest.mark.parametrize(
    ("wildcards", "refused"),
    [
        (["arn:aws:*:*:*:*:*"], True),
        (["arn:aws:*:*:*:*"], False),
        (["*a*a*a*a*a*"], True),
        (["*.png"], False),
        (["a*bb"], False),
        # Scores add up over one field's wildcards: 2 + 2 + 3, then 2 + 2 + 2 + 3.
        (["*ab*", "*cd*", "*ef*"], False),
        (["*ab*", "*cd*", "*ef*", "*gh*"], True),
    ],
)
def test_too_complex_wildcards_are_refused(wildcards: list[str], refused: bool) -> None:
    pattern = {"detail": {"arn": [{"wildcard": w} for w in wildcards]}}
    if refused:
        with pytest.raises(sealbus.PatternError) as info:
            sealbus.PatternSet().add("p", pattern)
        assert info.value.path == "detail.arn"
        assert "too complex" in info.value.reason
    else:
        sealbus.PatternSet().add("p", pattern)


# equals-ignore-case as event-ruler defines it (EqualsIgnoreCaseParser): each character
# of the pattern stands for its whole lowercase or uppercase form, as Java's
# toLowerCase/toUpperCase give them; the event's characters are not folded. Forms may
# differ in length (EqualsIgnoreCaseParserTest: "ⱥ" is 3 bytes, "Ⱥ" 2).
IGNORE_CASE = [
    ("equals", "1aA*†Éⱥ", "1Aa*†éȺ", True),  # EqualsIgnoreCaseParserTest
    ("equals", "\u03b0", "\u03a5\u0308\u0301", True),  # ΰ uppercases to three characters
    ("equals", "\u03a5\u0308\u0301", "\u03b0", False),  # ... which stand for themselves
    ("equals", "straße", "STRASSE", True),
    ("equals", "straße", "strasse", False),
    ("equals", "\u212a", "k", True),  # the Kelvin sign lowercases to k
    ("equals", "k", "\u212a", False),  # ... but k does not uppercase to it
    ("equals", "K", "\u212a", False),
    ("equals", "\u2c7f", "\u0240", True),  # Ɀ and ɀ: 3 and 2 bytes
    ("equals", "\u0240", "\u2c7f", True),
    ("equals", "\u0130", "i\u0307", True),  # İ lowercases to i and a combining dot
    ("equals", "i", "\u0130", False),
    ("prefix", "ßa", "SSAb", True),
    ("prefix", "\u2c7fx", "\u0240Xyz", True),
    ("suffix", "aß", "xASS", True),
    ("suffix", "aß", "xAss", False),
    ("suffix", "\u0240", "abc\u2c7f", True),
    ("equals", "EventBridge", "eVeNtBrIdGe", True),  # the user guide's ASCII case
]


@pytest.mark.parametrize(("how", "operand", "value", "expected"), IGNORE_CASE)
def test_ignore_case_follows_each_characters_two_forms(how: str, operand: str, value: str, expected: bool) -> None:
    cond: Any = {"equals-ignore-case": operand}
    if how != "equals":
        cond = {how: cond}
    pattern = {"f": [cond]}
    assert sealbus.test_event_pattern(pattern, {"f": value}) is expected
    # anything-but equals-ignore-case excludes exactly the values that match.
    if how == "equals":
        but = {"f": [{"anything-but": {"equals-ignore-case": [operand]}}]}
        assert sealbus.test_event_pattern(but, {"f": value}) is not expected
    # Among many patterns sharing the value's key, only the matching ones answer.
    ps = sealbus.PatternSet()
    ps.add("p", pattern)
    for i, other in enumerate(["SS", "ss", "k", "K", "\u0240", "i\u0307", "x"]):
        ps.add(f"o{i}", {"f": [{"equals-ignore-case": other}]})
    assert ("p" in ps.matches({"f": value})) is expected


# Array consistency (event-ruler's ACFinder): fields inside objects in arrays hold
# within one element, and {"exists": false} holds for the element the fields before
# it (in the order of their dotted names) were taken from. Cases named after
# event-ruler's correctness-cases.json where they come from it.
BOTH = {"d": {"a": [{"exists": True}], "b": [{"exists": True}]}}
ABSENT = {"d": {"a": [{"exists": True}], "b": [{"exists": False}]}}
ARRAYS: list[tuple[dict[str, Any], dict[str, Any], bool]] = [
    (BOTH, {"d": [{"a": 1, "b": 2}]}, True),  # objarray: same element
    (BOTH, {"d": [{"a": 1}, {"b": 2}]}, False),  # objarray: split
    (BOTH, {"d": [{"a": 1}, {"b": 2}, {"a": 3, "b": 4}]}, True),  # objarray: 3 elem, last valid
    (ABSENT, {"d": [{"a": 1}]}, True),  # exists-false: absent
    (ABSENT, {"d": [{"a": 1, "b": 2}]}, False),  # exists-false: present
    (ABSENT, {"d": [{"a": 1}, {"b": 2}]}, True),
    (ABSENT, {"d": [{"a": 1, "b": 2}, {"b": 3}]}, False),
    ({"d": {"b": [{"exists": False}], "c": [{"exists": True}]}}, {"d": [{"c": 1}, {"b": 2}]}, False),
    ({"a": {"b": [1], "c": [{"exists": False}]}}, {"a": [[{"b": 1}, {"c": 2}]]}, True),
    ({"a": {"b": [1], "c": [{"exists": False}]}}, {"a": [[{"b": 1, "c": 2}]]}, False),
    ({"u": {"t": {"k": ["color"], "v": ["blue"]}}}, {"u": [{"t": [{"k": "color"}, {"v": "blue"}]}]}, False),
]


@pytest.mark.parametrize(("pattern", "event", "expected"), ARRAYS)
def test_array_consistency(pattern: dict[str, Any], event: dict[str, Any], expected: bool) -> None:
    assert sealbus.test_event_pattern(pattern, event) is expected
    ps = sealbus.PatternSet()
    ps.add("p", pattern)
    ps.add("other", {"d": {"a": [{"exists": True}]}})
    assert ("p" in ps.matches(event)) is expected
    assert ("p" in ps.matches_batch([event])[0]) is expected
