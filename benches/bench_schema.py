"""Validation of the order workload: sealbus (batch over one buffer) beside the
baselines of the same run, `jsonschema_rs` and the `jsonschema` package.

    pytest benches/bench_schema.py --benchmark-only --benchmark-columns=median,min,rounds
    python benches/bench_schema.py [--repeats N]     # the headline ratio, as a table

Every benchmark validates the same N events (10% invalid) and checks it flagged exactly
the invalid ones; divide the median by N for the per-event cost. `parallel` uses the
machine's cores (2 here); everything else runs on one thread.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
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


# ---- the headline figure: sealbus on one thread against jsonschema_rs on dicts --------


def interleaved_medians(fns: list[Callable[[], object]], repeats: int) -> list[float]:
    """Median wall time of each function, run in turns so load on a shared machine
    falls on all of them alike."""
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            times[i].append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times]


def headline(repeats: int) -> dict[str, float]:
    r = _registry()
    v = jsonschema_rs.validator_for(SCHEMA, validate_formats=True)
    ours, theirs = interleaved_medians(
        [
            lambda: r.check_batch("orders.placed", BUFFER, OFFSETS, None, False),
            lambda: [v.is_valid(e) for e in EVENTS],
        ],
        repeats,
    )
    return {
        "sealbus_1thread_ms": ours * 1e3,
        "jsonschema_rs_dicts_ms": theirs * 1e3,
        "sealbus_us_per_event": ours * 1e6 / N,
        "ratio": theirs / ours,
    }


def test_ratio_sealbus_1thread_vs_jsonschema_rs_dicts(benchmark: Any) -> None:
    """The timed row is sealbus check_batch on one thread; extra_info carries the medians
    of interleaved runs of it and of jsonschema_rs on already-parsed dicts, and their
    ratio (jsonschema_rs time / sealbus time)."""
    r = _registry()
    out = benchmark(r.check_batch, "orders.placed", BUFFER, OFFSETS, None, False)
    assert _flagged(out) == INVALID
    benchmark.extra_info.update(headline(1 if benchmark.disabled else 21))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=21)
    args = ap.parse_args()
    fig = headline(args.repeats)
    size = len(BUFFER) / N
    print(f"{N} OrderPlaced events ({size:.0f} B, 10% invalid); medians of {args.repeats} interleaved runs")
    per_event = fig["sealbus_us_per_event"]
    print(f"sealbus check_batch, 1 thread:    {fig['sealbus_1thread_ms']:8.2f} ms  ({per_event:.3f} us/event)")
    print(f"jsonschema_rs is_valid on dicts:  {fig['jsonschema_rs_dicts_ms']:8.2f} ms")
    print(f"ratio:                            {fig['ratio']:8.2f}x")


if __name__ == "__main__":
    main()
