"""EventBridge pattern behaviour, case by case from the AWS documentation, plus the
Python API surface (PatternSet, batches, typed errors)."""

from __future__ import annotations

import array
import json
from typing import Any

import numpy as np
import pytest
import sealbus

EC2 = {
    "version": "0",
    "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
    "detail-type": "EC2 Instance State-change Notification",
    "source": "aws.ec2",
    "time": "2017-10-02T18:43:48Z",
    "region": "us-west-1",
    "resources": ["arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0"],
    "detail": {
        "instance-id": "i-1234567890abcdef0",
        "state": "terminated",
        "c-count": 5,
        "x-limit": 301.8,
        "source-ip": "10.0.0.33",
    },
}

# (pattern, event, expected) - each from a documented example or edge case.
CASES: list[tuple[dict[str, Any], Any, bool]] = [
    ({"source": ["aws.ec2"], "detail": {"state": ["terminated"]}}, EC2, True),
    ({"source": ["aws.ec2", "aws.fargate"]}, EC2, True),
    ({"detail": {"state": ["running"]}}, EC2, False),
    ({"detail": {"missing": ["x"]}}, EC2, False),
    ({"time": [{"prefix": "2017-10-02"}]}, EC2, True),
    ({"region": [{"prefix": "eu-"}]}, EC2, False),
    ({"source": [{"suffix": "ec2"}]}, EC2, True),
    ({"detail-type": [{"prefix": {"equals-ignore-case": "ec2 INSTANCE"}}]}, EC2, True),
    ({"detail-type": [{"suffix": {"equals-ignore-case": "NOTIFICATION"}}]}, EC2, True),
    ({"source": [{"equals-ignore-case": "AWS.EC2"}]}, EC2, True),
    ({"source": [{"wildcard": "aws.*"}]}, EC2, True),
    ({"resources": [{"wildcard": "arn:aws:ec2:*:instance/*"}]}, EC2, True),
    ({"detail": {"state": [{"anything-but": "initializing"}]}}, EC2, True),
    ({"detail": {"state": [{"anything-but": ["stopped", "terminated"]}]}}, EC2, False),
    ({"detail": {"state": [{"anything-but": {"prefix": "term"}}]}}, EC2, False),
    ({"detail": {"state": [{"anything-but": {"suffix": "ated"}}]}}, EC2, False),
    ({"detail": {"state": [{"anything-but": {"equals-ignore-case": "TERMINATED"}}]}}, EC2, False),
    ({"detail": {"state": [{"anything-but": {"wildcard": "*min*"}}]}}, EC2, False),
    ({"detail": {"x-limit": [{"anything-but": [100, 200, 300]}]}}, EC2, True),
    ({"detail": {"c-count": [{"numeric": [">", 0, "<=", 5]}]}}, EC2, True),
    ({"detail": {"c-count": [{"numeric": [">", 5]}]}}, EC2, False),
    ({"detail": {"x-limit": [{"numeric": ["=", 3.018e2]}]}}, EC2, True),
    ({"detail": {"source-ip": [{"cidr": "10.0.0.0/24"}]}}, EC2, True),
    ({"detail": {"source-ip": [{"cidr": "10.0.1.0/24"}]}}, EC2, False),
    ({"detail": {"c-count": [{"exists": True}]}}, EC2, True),
    ({"detail": {"c-count": [{"exists": False}]}}, EC2, False),
    ({"detail": {"nothing": [{"exists": False}]}}, EC2, True),
    # exists works on leaves only
    ({"detail": {"c-count": [{"exists": False}]}}, {"detail": {"c-count": {"c1": 100}}}, True),
    ({"detail": {"c-count": [{"exists": True}]}}, {"detail": {"c-count": {"c1": 100}}}, False),
    # null and empty strings
    ({"responseElements": [None]}, {"responseElements": None}, True),
    ({"responseElements": [None]}, {}, False),
    ({"LastName": [""]}, {"LastName": ""}, True),
    ({"LastName": [""]}, {"LastName": None}, False),
    # numbers by value, not by spelling
    ({"price": [300]}, '{"price": 3e2}', True),
    ({"price": [300]}, '{"price": 300.0}', True),
    ({"price": [300]}, '{"price": "300"}', False),
    ({"price": [{"anything-but": [100, 500]}]}, '{"price": 100.0}', False),
    ({"price": [{"anything-but": [100, 500]}]}, {"price": [100, 50]}, True),
    # arrays: intersection, and array-consistent matching
    ({"resources": ["arn:1", "arn:2"]}, {"resources": ["arn:0", "arn:2"]}, True),
    (
        {"employees": {"firstName": ["Anna"], "lastName": ["Smith"]}},
        {
            "employees": [
                {"firstName": "John", "lastName": "Doe"},
                {"firstName": "Anna", "lastName": "Smith"},
            ]
        },
        True,
    ),
    (
        {"employees": {"firstName": ["Anna"], "lastName": ["Doe"]}},
        {
            "employees": [
                {"firstName": "John", "lastName": "Doe"},
                {"firstName": "Anna", "lastName": "Smith"},
            ]
        },
        False,
    ),
    # $or
    (
        {
            "source": ["aws.cloudwatch"],
            "$or": [{"metricName": ["CPUUtilization"]}, {"namespace": ["AWS/EC2"]}],
        },
        {"source": "aws.cloudwatch", "namespace": "AWS/EC2"},
        True,
    ),
    (
        {
            "source": ["aws.cloudwatch"],
            "$or": [{"metricName": ["CPUUtilization"]}, {"namespace": ["AWS/EC2"]}],
        },
        {"source": "aws.cloudwatch", "namespace": "AWS/ES"},
        False,
    ),
    ({"$or": [{"a": [1]}, {"b": [2], "$or": [{"c": [3]}, {"d": [4]}]}]}, {"b": 2, "d": 4}, True),
]


@pytest.mark.parametrize(("pattern", "event", "expected"), CASES)
def test_documented_cases(pattern: dict[str, Any], event: Any, expected: bool) -> None:
    assert sealbus.test_event_pattern(pattern, event) is expected
    assert (
        sealbus.test_event_pattern(json.dumps(pattern), event if isinstance(event, str) else json.dumps(event))
        is expected
    )


@pytest.mark.parametrize(
    ("pattern", "path"),
    [
        ({"a": "x"}, "a"),
        ({"a": []}, "a"),
        ({}, "<root>"),
        ({"d": {"a": [{"numeric": [">", 5, "<", 1]}]}}, "d.a"),
        ({"a": [{"numeric": ["=", 5_000_000_001]}]}, "a"),
        ({"a": [{"numeric": ["=", 0.1234567]}]}, "a"),
        ({"a": [{"anything-but": ["x", 1]}]}, "a"),
        ({"a": [{"anything-but": {"prefix": ""}}]}, "a"),
        ({"a": [{"wildcard": "a**b"}]}, "a"),
        ({"a": [{"wildcard": "a\\b"}]}, "a"),
        ({"a": [{"cidr": "10.0.0.0/40"}]}, "a"),
        ({"a": [{"exists": "yes"}]}, "a"),
        ({"a": [{"regex": "x"}]}, "a"),
        ({"$or": [{"a": [1]}]}, "$or"),
        ({"$or": [{"a": [1]}, {"numeric": [1]}]}, "$or[1].numeric"),
    ],
)
def test_invalid_patterns_are_refused_with_the_key(pattern: dict[str, Any], path: str) -> None:
    with pytest.raises(sealbus.PatternError) as info:
        sealbus.test_event_pattern(pattern, {})
    assert info.value.path == path
    assert info.value.reason
    with pytest.raises(sealbus.PatternError):
        sealbus.PatternSet().add("p", pattern)


def test_bad_pattern_inputs() -> None:
    with pytest.raises(sealbus.PatternError):
        sealbus.test_event_pattern("{not json", {})
    with pytest.raises(sealbus.PatternError):
        sealbus.test_event_pattern({"a": [float("nan")]}, {})
    with pytest.raises(sealbus.PatternError):
        sealbus.test_event_pattern({"a": [object()]}, {})


@pytest.mark.parametrize("event", ["[]", "1", "{", '{"a":1} x', '{"a":[1,]}', b"\xff", '{"a":"\x01"}'])
def test_bad_events_are_refused(event: str | bytes) -> None:
    with pytest.raises(sealbus.InvalidEvent):
        sealbus.test_event_pattern({"a": [1]}, event)


def test_any_json_object_is_an_event() -> None:
    assert sealbus.test_event_pattern({"x": {"y": [True]}}, {"x": {"y": True}, "z": [1, {"q": None}]})


def test_pattern_set_add_remove_replace() -> None:
    ps = sealbus.PatternSet()
    ps.add("gold", {"tier": ["gold"]})
    ps.add("big", {"total": [{"numeric": [">", 100]}]})
    assert len(ps) == 2
    assert "gold" in ps
    assert sorted(ps.matches({"tier": "gold", "total": 500})) == ["big", "gold"]
    ps.add("gold", {"tier": ["silver"]})  # replaces
    assert ps.matches({"tier": "gold", "total": 5}) == []
    assert ps.remove("gold") is True
    assert ps.remove("gold") is False
    assert ps.names() == ["big"]
    assert "PatternSet" in repr(ps)


def test_batch_forms_agree() -> None:
    ps = sealbus.PatternSet()
    ps.add("even", {"n": [0, 2, 4, 6, 8]})
    ps.add("big", {"n": [{"numeric": [">=", 5]}]})
    events = [{"n": i} for i in range(10)]
    want = [sorted(ps.matches(e)) for e in events]
    assert [sorted(r) for r in ps.matches_batch(events)] == want
    texts = [json.dumps(e).encode() for e in events]
    buf = b"".join(texts)
    offsets = np.concatenate([[0], np.cumsum([len(t) for t in texts])]).astype(np.int64)
    assert [sorted(r) for r in ps.matches_batch(buf, offsets)] == want
    assert [sorted(r) for r in ps.matches_batch(memoryview(buf), list(offsets))] == want
    names, ev, nm = ps.matches_batch_indices(buf, offsets.astype(np.uint32))
    assert isinstance(ev, array.array)
    got: list[list[str]] = [[] for _ in events]
    for e, n in zip(np.frombuffer(ev, dtype=np.uint32), np.frombuffer(nm, dtype=np.uint32), strict=True):
        got[int(e)].append(names[int(n)])
    assert [sorted(g) for g in got] == want


def test_batch_errors_say_where() -> None:
    ps = sealbus.PatternSet()
    ps.add("p", {"a": [1]})
    with pytest.raises(sealbus.InvalidEvent) as info:
        ps.matches_batch(b'{"a":1}{"a":', [0, 7, 12])
    assert info.value.field == "events[1]"
    with pytest.raises(sealbus.InvalidArgument):
        ps.matches_batch(b'{"a":1}', [0, 99])
    with pytest.raises(sealbus.InvalidArgument):
        ps.matches_batch(b'{"a":1}', [0, -1])
    with pytest.raises(sealbus.InvalidArgument):
        ps.matches_batch(["not", "a", "buffer"], "xyz")


def test_orders_workload_subscriptions() -> None:
    import orders  # tests/orders.py, a copy of the shared workload

    events, _ = orders.make_events(200)
    ps = sealbus.PatternSet()
    ps.add("express-eu", {"shippingMethod": ["express"], "customer": {"country": ["DE", "FR"]}})
    ps.add("abc-sku", {"items": {"sku": [{"prefix": "ABC-"}]}})
    got = ps.matches_batch(events)
    for e, names in zip(events, got, strict=True):
        express_eu = e["shippingMethod"] == "express" and e["customer"]["country"] in ("DE", "FR")
        abc = any(i.get("sku", "").startswith("ABC-") for i in e["items"])
        assert ("express-eu" in names) == express_eu
        assert ("abc-sku" in names) == abc


def test_escapes_in_event_text() -> None:
    assert sealbus.test_event_pattern({"key": ["café"]}, r'{"k\u0065y": "caf\u00e9"}')
    assert sealbus.test_event_pattern({"s": ['😀 "q" \\ /']}, r'{"s": "\ud83d\ude00 \"q\" \\ \/"}')
    assert sealbus.test_event_pattern({"s": [{"prefix": "é"}]}, '{"s": "été", "z": "ü"}')
    with pytest.raises(sealbus.InvalidEvent):
        sealbus.test_event_pattern({"s": ["x"]}, r'{"s": "\ud83d"}')
    with pytest.raises(sealbus.InvalidEvent):
        sealbus.test_event_pattern({"s": ["x"]}, r'{"s": "\q"}')
    with pytest.raises(sealbus.InvalidEvent):
        sealbus.test_event_pattern({"s": ["x"]}, b'{"z": "\xc3\x28", "s": "x"}')
