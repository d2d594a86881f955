"""Durable publish with 1, 100, 1,000 and 10,000 online durable consumers, each
matching 1% of the events (the ``fanout`` scenario of ``sealbus bench``): the publish
is timed; every consumer is then checked to have received exactly its events.

In the suite (``pytest benches --benchmark-disable``) each case publishes once. For
the timed comparison (the 1-consumer case is the baseline of the group)::

    python -m pytest benches/bench_fanout.py --benchmark-enable --benchmark-only -m "slow or not slow"

and for the table with idle memory and reopen times, ``sealbus bench --scenario fanout``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sealbus
from sealbus.bench import fanout

EVENTS = 8 * fanout.BATCH


# 10,000 consumers take a while to set up (each new cursor is stored, and fsynced, as
# it subscribes): a long mode, run with ``-m slow``.
CASES = [pytest.param(n, marks=pytest.mark.slow) if n >= 10_000 else n for n in fanout.SUBSCRIPTIONS]


@pytest.mark.parametrize("subscriptions", CASES)
def test_durable_publish_with_many_consumers(
    benchmark: Any, tmp_path: Path, request: pytest.FixtureRequest, subscriptions: int
) -> None:
    if subscriptions >= 10_000 and "slow" not in (request.config.getoption("-m") or ""):
        pytest.skip("long mode: run with -m slow")
    batches = fanout.encode_batches(EVENTS)
    window = 2 * EVENTS // fanout.TENANTS + 1024
    opened: list[tuple[sealbus.Router, list[sealbus.Subscription]]] = []

    def setup() -> tuple[tuple[sealbus.Producer], dict[str, Any]]:
        router, producer, consumer = fanout.open_router(tmp_path / f"run{len(opened)}")
        subs = fanout.subscribe_all(router, consumer, subscriptions, window)
        opened.append((router, subs))
        return (producer,), {}

    def publish(producer: sealbus.Producer) -> None:
        for buf, offs in batches:
            producer.publish_raw(fanout.EVENT_TYPE, buf, offs)

    benchmark.group = "durable publish, consumers matching 1% each"
    benchmark.extra_info["subscriptions"] = subscriptions
    benchmark.pedantic(publish, setup=setup, rounds=3, iterations=1)
    for router, subs in opened:
        try:
            for i, s in enumerate(subs):
                got: list[int] = []
                fanout.drain(s, got)
                wrong = fanout.check(s, got, i % fanout.TENANTS, EVENTS)
                assert wrong is None, wrong
        finally:
            router.close()
