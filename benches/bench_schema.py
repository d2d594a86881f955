"""Validation of the order workload: sealbus (batch over one buffer) beside the
baselines of the same run, `jsonschema_rs` and the `jsonschema` package.

    pytest benches/bench_schema.py --benchmark-only --benchmark-columns=median,min,rounds

Every benchmark validates the same N events (10% invalid) and checks it flagged exactly
the invalid ones; divide the median by N for the per-event cost. `parallel` uses the
machine's cores (2 here); everything else runs on one thread.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import jsonschema_rs
import pytest
import sealbus
from orders import SCHEMA, make_events

N = 10_000
EVENTS, INVALID = make_events(N)
PARTS = [json.dumps(e, separators=(",", ":")).encode() for e in EVENTS]
BUFFER = b"".join(PARTS)
OFFSETS = [0]
for _p in PARTS:
    OFFSETS.append(OFFSETS[-1] + len(_p))


def _registry() -> sealbus.SchemaRegistry:
    r = sealbus.SchemaRegistry()
    r.register("orders.placed", SCHEMA)
    return r


def _flagged(valid: list[bool]) -> set[int]:
    return {i for i, ok in enumerate(valid) if not ok}


@pytest.mark.parametrize("parallel", [False, True], ids=["1-thread", "parallel"])
def test_sealbus_check_batch(benchmark: Any, parallel: bool) -> None:
    r = _registry()
    out = benchmark(r.check_batch, "orders.placed", BUFFER, OFFSETS, None, parallel)
    assert _flagged(out) == INVALID


def test_sealbus_validate_batch_first_errors(benchmark: Any) -> None:
    r = _registry()
    out = benchmark(r.validate_batch, "orders.placed", BUFFER, OFFSETS)
    assert {i for i, e in enumerate(out) if e is not None} == INVALID


def test_sealbus_validate_dicts(benchmark: Any) -> None:
    """One call per event with a dict (converted to a serde_json Value in Rust)."""
    r = _registry()

    def run() -> list[bool]:
        out = []
        for e in EVENTS:
            try:
                r.validate("orders.placed", e)
                out.append(True)
            except sealbus.ValidationError:
                out.append(False)
        return out

    assert _flagged(benchmark(run)) == INVALID


def test_baseline_jsonschema_rs_dicts(benchmark: Any) -> None:
    v = jsonschema_rs.validator_for(SCHEMA, validate_formats=True)
    out = benchmark(lambda: [v.is_valid(e) for e in EVENTS])
    assert _flagged(out) == INVALID


def test_baseline_jsonschema_rs_from_bytes(benchmark: Any) -> None:
    """The same input as ours (JSON bytes): json.loads, then jsonschema_rs."""
    v = jsonschema_rs.validator_for(SCHEMA, validate_formats=True)
    loads = json.loads
    out = benchmark(lambda: [v.is_valid(loads(p)) for p in PARTS])
    assert _flagged(out) == INVALID


def test_baseline_jsonschema_python(benchmark: Any) -> None:
    """Pure Python: slow, so a 1,000-event slice (scale by 10 to compare)."""
    v = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    head = EVENTS[:1000]
    out = benchmark.pedantic(lambda: [v.is_valid(e) for e in head], rounds=3, iterations=1)
    assert _flagged(out) == {i for i in INVALID if i < 1000}
