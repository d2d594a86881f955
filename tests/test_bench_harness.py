"""``sealbus bench``: the sealbus side of the scenarios, the table, the progress bar,
the JSON and plots, the command line. The NATS side is in test_bench_nats.py."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from sealbus import cli
from sealbus.bench import fanout, harness, procstat, workload


@pytest.fixture(scope="module")
def pool() -> list[workload.Batch]:
    return workload.encode_pool(2048, harness.BATCH)


@pytest.mark.timeout(120)
def test_throughput_delivers_every_event_to_each_consumer_in_order(pool: list[workload.Batch]) -> None:
    events = 5_000  # not a multiple of the batch: the last batch is partial
    fig = harness.sealbus_throughput(pool, events, max_pending=2_048)
    assert fig.status == "ok", fig.status
    assert fig.delivered == [events] * 3
    assert fig.acked == [events] * 3
    assert fig.redelivered == [0] * 3
    assert fig.out_of_order == 0
    assert fig.events_per_s > 0
    assert 0 < fig.p50_us <= fig.p99_us
    assert len(fig.latency_quantiles_us) == 201
    assert fig.rss_bytes > 0
    # In memory there is no fsync to count.
    assert fig.fsyncs_per_s != fig.fsyncs_per_s


@pytest.mark.timeout(120)
def test_consumers_can_share_one_thread_through_a_selector(pool: list[workload.Batch], tmp_path: Path) -> None:
    for path in (None, tmp_path / "log"):
        fig = harness.sealbus_throughput(pool, 5_000, path=path, max_pending=2_048, shared_consumer_thread=True)
        assert fig.status == "ok", fig.status
        assert fig.delivered == [5_000] * 3 and fig.acked == [5_000] * 3
        assert fig.out_of_order == 0
        assert any("Selector" in n for n in fig.notes)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("shared", [False, True])
def test_latency_is_paced_and_measured_per_event(pool: list[workload.Batch], shared: bool) -> None:
    fig = harness.sealbus_latency(pool, 400, rate=4_000.0, shared_consumer_thread=shared, busy_poll=0.0001)
    assert fig.status == "ok", fig.status
    assert fig.delivered == [400] * 3 and fig.acked == [400] * 3
    # Paced: 400 events at 4,000/s cannot be sent faster than 0.1 s.
    assert fig.sent_rate <= 4_000 * 1.05
    assert 0 < fig.p50_us <= fig.p99_us
    assert any("Selector" in n for n in fig.notes) == shared


@pytest.mark.timeout(300)
def test_durable_scenarios_run_on_the_durable_router(pool: list[workload.Batch], tmp_path: Path) -> None:
    fig = harness.sealbus_throughput(pool, 4_096, path=tmp_path / "tp")
    assert fig.status == "ok", fig.status
    assert fig.scenario == "durable" and fig.delivered == [4_096] * 3
    # The log's own fsync counter: at least one fsync, and publish calls of 1,024 events
    # share theirs (one append each), so never fewer events per fsync than that.
    assert 1_024 <= fig.events_per_fsync <= 4_096, fig.events_per_fsync
    assert fig.fsyncs_per_s > 0
    # Each record: the sealed payload plus its header, attributes and frame (about
    # 150 bytes with binary stored attributes; JSON attributes made it ~310).
    payload = sum(b.offsets[-1] for b in pool) / sum(b.count for b in pool)
    assert payload + 100 < fig.log_bytes_per_event < payload + 250, (payload, fig.log_bytes_per_event)
    assert fig.log_write_bytes_per_s > 0
    fig = harness.sealbus_backlog(pool, 3_000, 1_000, path=tmp_path / "bl")
    assert fig.status == "ok", fig.status
    assert [n for n, _ in fig.rss_samples] == [0, 1_000, 2_000, 3_000]
    assert fig.rss_growth_bytes == fig.rss_growth_bytes  # a number, not NaN


def test_a_failing_measurement_becomes_a_status() -> None:
    def boom() -> harness.Figures:
        raise RuntimeError("disk on fire")

    fig = harness._guard("sealbus", "throughput", boom)
    assert fig.status == "error: RuntimeError: disk on fire"
    assert not fig.ok


def test_progress_bar_is_silent_off_a_terminal() -> None:
    out = io.StringIO()
    bar = harness.ProgressBar(True, out)
    bar.start("x", 10)
    bar.update(5, force=True)
    bar.finish()
    assert out.getvalue() == ""


def test_progress_bar_draws_on_a_terminal() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Tty()
    bar = harness.ProgressBar(True, out, width=10)
    bar.start("throughput sealbus 1/3", 200)
    bar.update(100, force=True)
    text = out.getvalue()
    assert "[#####-----]" in text and "50%" in text and "100/200" in text
    bar.finish()
    assert out.getvalue().endswith("\r\x1b[K")
    silent = Tty()
    off = harness.ProgressBar(False, silent)
    off.start("x", 1)
    assert silent.getvalue() == ""


def test_percentiles_are_nearest_rank() -> None:
    values = list(range(1, 101))
    assert procstat.percentile(values, 50) == 50
    assert procstat.percentile(values, 99) == 99
    assert procstat.percentile(values, 100) == 100
    assert procstat.percentile([7], 99) == 7
    assert procstat.weighted_percentile([(10, 98), (500, 2)], 50) == 10
    assert procstat.weighted_percentile([(10, 98), (500, 2)], 99) == 500
    with pytest.raises(ValueError, match=r"0\.\.100"):
        procstat.percentile(values, 101)


def test_rss_growth_leaves_out_the_warm_up() -> None:
    mib = 1 << 20
    assert harness.rss_growth([(0, 16 * mib), (100, 40 * mib), (200, 41 * mib)]) == mib
    assert harness.rss_growth([(0, 16 * mib), (100, 40 * mib)]) == 24 * mib
    assert harness.rss_growth([(0, mib)]) != harness.rss_growth([(0, mib)])  # NaN: nothing to compare


def test_rss_is_read_from_proc() -> None:
    rss = procstat.rss_bytes()
    assert rss is not None and rss > 1024 * 1024
    assert procstat.rss_bytes(2**22 + 12345) is None  # no such process


def _timer_slack_ns() -> int:
    """This thread's timer slack (prctl PR_GET_TIMERSLACK), asked independently of
    the code under test."""
    import ctypes
    import ctypes.util

    return int(ctypes.CDLL(ctypes.util.find_library("c")).prctl(30, 0, 0, 0, 0))


@pytest.mark.skipif(not Path("/proc/self/timerslack_ns").exists(), reason="Linux only")
def test_timer_slack_is_set_for_the_pacer_and_restored() -> None:
    before = _timer_slack_ns()
    with procstat.timer_slack(1_000) as precise:
        assert precise
        assert _timer_slack_ns() == 1_000
    assert _timer_slack_ns() == before
    with pytest.raises(RuntimeError), procstat.timer_slack(2_000):
        raise RuntimeError("the slack comes back on the way out of an error too")
    assert _timer_slack_ns() == before


def test_latency_run_says_how_it_paced(pool: list[workload.Batch]) -> None:
    fig = harness.sealbus_latency(pool, 50, rate=5_000.0, shared_consumer_thread=True, busy_poll=0.0001)
    assert fig.status == "ok", fig.status
    assert any("timer slack" in n for n in fig.notes) == Path("/proc/self/timerslack_ns").exists()
    assert len(fig.latency_quantiles_us) == 201 and fig.latency_quantiles_us[0] > 0


def _report() -> harness.Report:
    cfg = harness.Config(scenarios=["throughput", "latency"], repeat=2, events=1000, nats_events=1000)
    rep = harness.Report(cfg, environment={"python": "3.x", "cpus": 2, "loadavg_at_start": [1.0]})
    for eps in (100_000.0, 300_000.0):
        rep.add(harness.Figures("sealbus", "throughput", events_per_s=eps, p50_us=10, p99_us=40, rss_bytes=50e6))
    rep.add(harness.Figures("nats", "throughput", events_per_s=10_000, p50_us=1000, p99_us=4000, rss_bytes=25e6))
    rep.add(harness.Figures("nats", "throughput", status="error: consumer 1 received 10/1,000"))
    rep.add(harness.Figures("sealbus", "latency", status="not available: no"))
    return rep


def test_table_shows_medians_and_ratios() -> None:
    out = io.StringIO()
    harness.print_table(_report(), out)
    text = out.getvalue()
    row = next(line for line in text.splitlines() if "events/s (all 3 acked)" in line)
    # median of 100k and 300k; the NATS error run is left out of its median.
    assert "200,000" in row and "10,000" in row and "20.00x" in row
    p99 = next(line for line in text.splitlines() if line.strip().startswith("p99") and "µs" in line)
    assert "100.00x" in p99  # 4000 / 40: lower is better
    rss = next(line for line in text.splitlines() if "RSS peak" in line)
    assert "0.50x" in rss
    assert "note: throughput nats: error: consumer 1 received 10/1,000" in text
    assert "not available" in text
    assert "targets:" in text and "[FAIL]" not in text.split("targets:")[1].split("p99")[0]


def test_json_holds_raw_runs_and_medians(tmp_path: Path) -> None:
    path = tmp_path / "out" / "bench.json"
    harness.write_json(_report(), str(path))
    data = json.loads(path.read_text())
    assert len(data["runs"]["throughput/sealbus"]) == 2
    assert data["medians"]["throughput/sealbus"]["events_per_s"] == 200_000
    assert data["runs"]["latency/sealbus"][0]["p50_us"] is None  # NaN becomes null
    assert data["config"]["repeat"] == 2


def test_plots_are_written_or_the_reason_given(tmp_path: Path) -> None:
    rep = _report()
    rep.add(harness.Figures("nats", "backlog", rss_samples=[(0, 10 << 20), (100, 12 << 20)]))
    msgs = harness.write_plots(rep, str(tmp_path))
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert msgs == ["plots skipped: matplotlib is not installed (pip install 'sealbus[bench]')"]
        return
    assert (tmp_path / "throughput.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "backlog.png").exists()
    assert all(m.startswith("plot written") for m in msgs)


@pytest.mark.timeout(120)
def test_cli_runs_a_scenario_and_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "r.json"
    code = cli.main(
        ["bench", "--quick", "--no-nats", "--scenario", "throughput", "--events", "3000", "--json", str(path)]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "events/s (all 3 acked)" in out and "not run" in out
    assert "follow one uncounted run of 3,000 events" in out  # the warm-up, not in the runs
    data = json.loads(path.read_text())
    assert data["runs"]["throughput/sealbus"][0]["delivered"] == [3000] * 3
    assert "latency/sealbus" not in data["runs"]


def test_latency_runs_as_deployed_for_latency_unless_told() -> None:
    """By default the latency consumers share one spinning Selector thread (what a
    service that must react within microseconds runs); the flags give the others."""
    import argparse

    p = argparse.ArgumentParser()
    harness.add_arguments(p)
    cfg = harness.config_from_args(p.parse_args([]))
    assert (cfg.busy_poll, cfg.latency_threads, cfg.shared_consumer_thread) == (0.001, False, False)
    assert cfg.producers is None  # 2 in memory, 4 durable
    assert cfg.warm_up and not harness.config_from_args(p.parse_args(["--no-warm-up"])).warm_up
    cfg = harness.config_from_args(p.parse_args(["--latency-threads", "--busy-poll", "0"]))
    assert (cfg.busy_poll, cfg.latency_threads) == (0.0, True)


@pytest.mark.parametrize("bad", [["--events", "0"], ["--repeat", "-1"], ["--rate", "-5"], ["--busy-poll", "-1"]])
def test_cli_refuses_nonsense(bad: list[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["bench", "--no-nats", *bad])


def test_fanout_runs_each_consumer_count_and_checks_deliveries(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "f.json"
    args = ["bench", "--no-nats", "--repeat", "1", "--scenario", "fanout", "--fanout-events", "3000"]
    code = cli.main([*args, "--fanout-subscriptions", "1", "--fanout-subscriptions", "150", "--json", str(path)])
    assert code == 0
    out = capsys.readouterr().out
    assert "fanout: durable publish" in out and "fanout 1,000 consumers >= 50%" in out
    runs = json.loads(path.read_text())["fanout"]
    assert [(r["subscriptions"], r["status"]) for r in runs] == [(1, "ok"), (150, "ok")]
    # Each consumer gets 1% of the events: 30 each.
    assert [r["delivered"] for r in runs] == [30, 150 * 30]
    assert all(r["events_per_s"] > 0 and r["reopen_s"] >= 0 for r in runs)


def test_fanout_check_names_a_consumer_that_got_the_wrong_events() -> None:
    class Named:
        name = "tenant-00003"

    sub: Any = Named()
    assert fanout.check(sub, list(range(3, 1000, 100)), 3, 1000) is None
    assert "tenant-00003 received 9" in (fanout.check(sub, list(range(3, 900, 100)), 3, 1000) or "")
    # Out of order, or one twice, is wrong too.
    assert fanout.check(sub, [103, 3, *range(203, 1000, 100)], 3, 1000) is not None
    assert fanout.check(sub, [3, 3, *range(103, 1000, 100)], 3, 1000) is not None
