"""Runs of events with their own producers and attributes, stored as one commit (the
bridge's importer); policy and schema apply per run as to a publish."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sealbus
from sealbus._sealbus import new_event_ids, publish_runs

SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}


def _run(who: sealbus.Principal, datas: list[object], subject: str) -> tuple[object, ...]:
    bodies = [json.dumps(d).encode() for d in datas]
    offsets = [0]
    for b in bodies:
        offsets.append(offsets[-1] + len(b))
    ids = new_event_ids(len(bodies))
    times = [f"2026-01-02T03:04:{i:02d}.123456Z" for i in range(len(bodies))]
    return (
        who.name,
        who._token,
        "orders.placed",
        None,
        "json",
        {"subject": subject},
        b"".join(bodies),
        offsets,
        ids,
        times,
    )


def test_runs_are_one_commit_with_policy_and_schema_per_run(tmp_path: Path) -> None:
    router = sealbus.Router(str(tmp_path / "log"), fsync="batch")
    router.schemas.register("orders.placed", SCHEMA)
    a, b, stranger = router.principal("shop-a/checkout"), router.principal("shop-a/billing"), router.principal("x")
    router.policy.allow_publish(a, "orders.*")
    router.policy.allow_publish(b, "orders.*")
    reader = router.principal("reader")
    router.policy.allow_subscribe(reader, "orders.*")
    sub = router.subscribe(reader, "orders.placed")
    runs = [
        _run(a, [{"n": 1}, {"n": 2}], "s-1"),
        _run(b, [{"n": 3}, {"bad": True}, {"n": 4}], "s-2"),
        _run(stranger, [{"n": 99}], "s-3"),
        _run(a, [{"n": 5}], "s-4"),
    ]
    fsyncs = router.counters()["fsyncs"]
    results = publish_runs(router._core, runs, 1.0)
    assert router.counters()["fsyncs"] == fsyncs + 1
    assert results[0] == (None, [])
    assert results[1][0] is None and [i for i, _ in results[1][1]] == [1]
    assert isinstance(results[1][1][0][1], sealbus.ValidationError)
    assert isinstance(results[2][0], sealbus.PolicyDenied) and results[2][1] == []
    assert results[3] == (None, [])
    got = sub.poll(100, 1.0)
    assert [m.data["n"] for m in got] == [1, 2, 3, 4, 5]
    assert [(m.event.source, m.event.subject) for m in got] == [
        ("shop-a/checkout", "s-1"),
        ("shop-a/checkout", "s-1"),
        ("shop-a/billing", "s-2"),
        ("shop-a/billing", "s-2"),
        ("shop-a/checkout", "s-4"),
    ]
    # Each event keeps the id it was given.
    want_ids = runs[0][8] + [runs[1][8][0], runs[1][8][2]] + runs[3][8]  # type: ignore[operator]
    assert [m.id for m in got] == want_ids
    # ... and the time its producer stamped, through the log too.
    want_times = runs[0][9] + [runs[1][9][0], runs[1][9][2]] + runs[3][9]  # type: ignore[operator]
    assert [m.event.time for m in got] == want_times
    replayed = list(router.replay(reader, "orders.placed"))
    assert [e.time for e in replayed] == want_times
    router.close()


def test_a_run_with_a_bad_time_is_refused_before_anything_is_stored(tmp_path: Path) -> None:
    router = sealbus.Router(str(tmp_path / "log"))
    a = router.principal("a")
    router.policy.allow_publish(a, "orders.*")
    good = _run(a, [{"n": 1}], "s")
    bad = (*good[:9], ["yesterday"])
    with pytest.raises(sealbus.SealbusError):
        publish_runs(router._core, [good, bad], 1.0)
    assert router.counters()["published"] == 0
    router.close()


def test_a_malformed_run_is_refused_before_anything_is_stored(tmp_path: Path) -> None:
    router = sealbus.Router(str(tmp_path / "log"))
    a = router.principal("a")
    router.policy.allow_publish(a, "orders.*")
    good = _run(a, [{"n": 1}], "s")
    bad = (*good[:7], [0, 10_000], *good[8:])
    with pytest.raises(sealbus.InvalidArgument):
        publish_runs(router._core, [good, bad], 1.0)
    assert router.counters()["published"] == 0
    router.close()
