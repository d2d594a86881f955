"""Pattern matching throughput: 1 to 10,000 subscriptions on OrderPlaced events.

Each Rust measurement sits beside a baseline from the same run: a plain Python matcher
that flattens the event once and walks every pattern (what one would write without an
index). Subscriptions are varied and realistic: one selective condition each (a SKU
prefix, a narrow total range, an order-id prefix, a customer-id prefix, an e-mail
wildcard) plus one or two broad ones (country lists, tier, anything-but on source,
exists on couponCode, an $or of shipping method and gift wrap, currency).

A second workload calls ``PatternSet.matches`` once per event with a Python dict (as a
service matching each request would), against varied patterns: prefixes, a numeric
range with a country list, anything-but, a CIDR with equals-ignore-case, and two
conditions inside the items array (checked for array consistency).

    pytest benches/bench_pattern.py                      # pytest-benchmark timings
    python benches/bench_pattern.py [--events N]         # medians, events/s and ratios
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import orders
import pattern_reference as ref
import sealbus

SIZES = [1, 10, 100, 1000, 10_000]


def subscription(rng: random.Random) -> dict[str, Any]:
    """One realistic subscription: a selective condition and one or two broad ones."""
    kind = rng.randrange(5)
    if kind == 0:
        p: dict[str, Any] = {
            "items": {"sku": [{"prefix": f"{rng.choice(['ABC', 'KLM', 'XYZ'])}-{rng.randrange(100):02d}"}]}
        }
    elif kind == 1:
        lo = rng.randrange(0, 250_000, 500)
        p = {"total": [{"numeric": [">=", lo, "<", lo + 2_500]}]}
    elif kind == 2:
        p = {"orderId": [{"prefix": f"ord-{rng.randrange(256):02x}"}]}
    elif kind == 3:
        p = {"customer": {"id": [{"prefix": f"cus-{rng.randrange(1000):03d}"}]}}
    else:
        p = {"customer": {"email": [{"wildcard": f"user{rng.randrange(10, 100)}*@example.com"}]}}
    for _ in range(rng.randint(1, 2)):
        broad = rng.randrange(7)
        if broad == 0:
            p.setdefault("customer", {})["country"] = rng.sample(
                ["US", "DE", "FR", "GB", "JP", "BR"], rng.randint(1, 3)
            )
        elif broad == 1:
            p.setdefault("customer", {})["tier"] = [{"equals-ignore-case": rng.choice(["GOLD", "Silver", "platinum"])}]
        elif broad == 2:
            p["source"] = [{"anything-but": rng.sample(["web", "mobile", "store", "partner"], rng.randint(1, 2))}]
        elif broad == 3:
            p["couponCode"] = [{"exists": rng.random() < 0.5}]
        elif broad == 4:
            p["$or"] = [{"shippingMethod": ["express"]}, {"giftWrap": [True]}]
        elif broad == 5:
            p["currency"] = rng.sample(["USD", "EUR", "GBP", "JPY"], 2)
        else:
            p["eventType"] = ["OrderPlaced"]
    return p


def subscriptions(n: int, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [subscription(rng) for _ in range(n)]


def varied_subscription(rng: random.Random) -> dict[str, Any]:
    """A pattern of the per-event workload (see the module docs)."""
    kind = rng.randrange(5)
    if kind == 0:
        return {"orderId": [{"prefix": f"ord-{rng.randrange(256):02x}"}]}
    if kind == 1:
        lo = rng.randrange(0, 250_000, 500)
        countries = rng.sample(["US", "DE", "FR", "GB", "JP", "BR"], rng.randint(1, 3))
        return {"total": [{"numeric": [">=", lo, "<", lo + 2_500]}], "customer": {"country": countries}}
    if kind == 2:
        return {
            "source": [{"anything-but": rng.sample(["web", "mobile", "store", "partner"], 2)}],
            "customer": {"id": [{"prefix": f"cus-{rng.randrange(1000):03d}"}]},
        }
    if kind == 3:
        return {
            "clientIp": [{"cidr": f"10.{rng.randrange(256)}.0.0/16"}],
            "customer": {"tier": [{"equals-ignore-case": rng.choice(["GOLD", "Silver", "platinum"])}]},
        }
    return {
        "items": {
            "sku": [{"prefix": f"{rng.choice(['ABC', 'KLM', 'XYZ'])}-{rng.randrange(100):02d}"}],
            "qty": [{"numeric": [">", rng.randrange(100)]}],
        }
    }


def varied_subscriptions(n: int, seed: int = 11) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [varied_subscription(rng) for _ in range(n)]


def varied_events(n: int) -> list[dict[str, Any]]:
    """OrderPlaced events as dicts, each with a client address."""
    events, _ = orders.make_events(n)
    rng = random.Random(5)
    for e in events:
        e["clientIp"] = f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    return events


def event_batch(n: int) -> tuple[list[dict[str, Any]], bytes, np.ndarray]:
    events, _ = orders.make_events(n)
    texts = [json.dumps(e, separators=(",", ":")).encode() for e in events]
    offsets = np.zeros(len(texts) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(t) for t in texts])
    return events, b"".join(texts), offsets


def build_set(pats: list[dict[str, Any]]) -> sealbus.PatternSet:
    ps = sealbus.PatternSet()
    for i, p in enumerate(pats):
        ps.add(f"sub-{i}", p)
    ps.prepare()
    return ps


class Baseline:
    """Plain Python: flatten each event once, then walk every pattern's alternatives."""

    def __init__(self, pats: list[dict[str, Any]]) -> None:
        self.pats = [(f"sub-{i}", ref.branches(p)) for i, p in enumerate(pats)]

    def matches(self, event: dict[str, Any]) -> list[str]:
        by_path: dict[tuple[str, ...], list[Any]] = {}
        for path, value, _ in ref.leaves(event):
            by_path.setdefault(path, []).append(value)
        out = []
        for name, branches in self.pats:
            for branch in branches:
                if all(self._field(by_path.get(path, []), conds) for path, conds in branch.items()):
                    out.append(name)
                    break
        return out

    @staticmethod
    def _field(values: list[Any], conds: list[Any]) -> bool:
        if not values:
            return any(isinstance(c, dict) and c.get("exists") is False for c in conds)
        return any(ref.value_matches(c, v) for c in conds for v in values)


# ---- pytest-benchmark ----------------------------------------------------------------

N_EVENTS = 20_000
_EVENTS, _BUF, _OFFSETS = event_batch(N_EVENTS)
_VARIED = varied_events(2000)


@pytest.fixture(scope="module", params=SIZES, ids=lambda n: f"{n}subs")
def sized(request: pytest.FixtureRequest) -> tuple[int, list[dict[str, Any]], sealbus.PatternSet]:
    pats = subscriptions(request.param)
    return request.param, pats, build_set(pats)


def test_rust_batch(benchmark: Any, sized: tuple[int, list[dict[str, Any]], sealbus.PatternSet]) -> None:
    n, _, ps = sized
    benchmark.group = f"pattern-{n}subs"
    benchmark.extra_info["events"] = N_EVENTS
    names, ev, nm = benchmark(ps.matches_batch_indices, _BUF, _OFFSETS)
    assert len(names) == n
    assert len(ev) == len(nm)
    # The batch answer is the per-event answer (checked on a sample: the loop is slow).
    got: dict[int, set[str]] = {}
    for e, k in zip(ev, nm, strict=True):
        got.setdefault(e, set()).add(names[k])
    for i in range(0, N_EVENTS, 997):
        assert got.get(i, set()) == set(ps.matches(_EVENTS[i])), f"event {i}"


@pytest.mark.parametrize("n", [10, 1000, 10_000], ids=lambda n: f"{n}subs")
def test_rust_per_event_dicts(benchmark: Any, n: int) -> None:
    ps = build_set(varied_subscriptions(n))
    sample = _VARIED[:2000]
    benchmark.group = f"pattern-per-event-{n}subs"
    benchmark.extra_info["events"] = len(sample)
    got = benchmark(lambda: [ps.matches(e) for e in sample])
    assert len(got) == len(sample)


def test_python_baseline(benchmark: Any, sized: tuple[int, list[dict[str, Any]], sealbus.PatternSet]) -> None:
    n, pats, ps = sized
    benchmark.group = f"pattern-{n}subs"
    sample = _EVENTS[: max(5, 2000 // n)]
    benchmark.extra_info["events"] = len(sample)
    base = Baseline(pats)
    got = benchmark(lambda: [base.matches(e) for e in sample])
    # The baseline is only a fair yardstick if it computes the same answer.
    assert [sorted(g) for g in got] == [sorted(ps.matches(e)) for e in sample]


# ---- script mode: medians, events/s, ratios ------------------------------------------


def median_seconds(fn: Any, repeats: int) -> tuple[float, float]:
    """Median wall time and median CPU time of the process (the machine may be shared)."""
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    n_ev = args.events
    events, buf, offsets = event_batch(n_ev)
    print(f"{n_ev} OrderPlaced events, {len(buf) / n_ev:.0f} B each; medians of {args.repeats}")
    head = ("subs", "wall ev/s", "cpu ev/s", "cpu ns/ev", "match/ev", "python ev/s", "speed-up")
    print("{:>6} {:>12} {:>12} {:>10} {:>9} {:>12} {:>9}".format(*head))
    cpu_per_event: dict[int, float] = {}
    for n in SIZES:
        pats = subscriptions(n)
        ps = build_set(pats)
        wall, cpu = median_seconds(lambda ps=ps: ps.matches_batch_indices(buf, offsets), args.repeats)
        _, ev, _ = ps.matches_batch_indices(buf, offsets)
        sample = events[: max(20, 20_000 // n)]
        base = Baseline(pats)
        _, base_cpu = median_seconds(lambda b=base, s=sample: [b.matches(e) for e in s], 3)
        base_cpu /= len(sample)
        cpu_per_event[n] = cpu / n_ev
        print(
            f"{n:>6} {n_ev / wall:>12,.0f} {n_ev / cpu:>12,.0f} {cpu / n_ev * 1e9:>10.0f}"
            f" {len(ev) / n_ev:>9.2f} {1 / base_cpu:>12,.0f} {base_cpu / cpu_per_event[n]:>8.0f}x"
        )
    r10k = cpu_per_event[10_000] / cpu_per_event[10]
    print(f"CPU cost per event, 10,000 vs 10 subscriptions: {r10k:.2f}x (target <= 3x)")
    r1k = cpu_per_event[1000] / cpu_per_event[1]
    print(f"CPU cost per event, 1,000 vs 1 subscription:    {r1k:.2f}x")
    per_event(args.events // 4, args.repeats)


def per_event(n_ev: int, repeats: int) -> None:
    """`PatternSet.matches` once per event, each a Python dict, varied patterns."""
    events = varied_events(n_ev)
    print(f"PatternSet.matches per event, {n_ev} dicts; varied patterns; medians of {repeats}")
    print("{:>6} {:>12} {:>10} {:>9}".format("subs", "cpu ev/s", "cpu ns/ev", "match/ev"))
    cpu_per_event: dict[int, float] = {}
    for n in SIZES:
        ps = build_set(varied_subscriptions(n))
        _, cpu = median_seconds(lambda ps=ps: [ps.matches(e) for e in events], repeats)
        matched = sum(len(ps.matches(e)) for e in events[:2000]) / min(n_ev, 2000)
        cpu_per_event[n] = cpu / n_ev
        print(f"{n:>6} {n_ev / cpu:>12,.0f} {cpu / n_ev * 1e9:>10.0f} {matched:>9.2f}")
    r10k = cpu_per_event[10_000] / cpu_per_event[10]
    print(f"Per-event CPU cost, 10,000 vs 10 subscriptions: {r10k:.2f}x")


if __name__ == "__main__":
    main()
