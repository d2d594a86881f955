"""SegmentLog and CursorStore through the Python binding: round trips, recovery of torn
tails (hypothesis), detection of damage with its segment and offset, typed errors,
retention, cursors, and `inspect`."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sealbus
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sealbus.log import CursorStore, SegmentLog, inspect

SEGMENT_HEADER = 32
RECORD_HEADER = 32


def pack(parts: list[bytes]) -> tuple[bytes, list[int]]:
    bounds = [0]
    for p in parts:
        bounds.append(bounds[-1] + len(p))
    return b"".join(parts), bounds


def read_all(log: SegmentLog) -> list[tuple[int, int, bytes]]:
    out: list[tuple[int, int, bytes]] = []
    nxt = log.first_offset
    while got := log.read(nxt, 500):
        out.extend(got)
        nxt = got[-1][0] + 1
    return out


def test_round_trip_and_reopen(tmp_path: Path) -> None:
    with SegmentLog(tmp_path, segment_bytes=4096) as log:
        assert log.append(b"first", timestamp_ns=5) == 0
        buf, bounds = pack([b"a", b"", b"ccc" * 100])
        assert log.append_batch(buf, bounds, timestamp_ns=7) == [1, 2, 3]
        assert log.read(1, 2) == [(1, 7, b"a"), (2, 7, b"")]
        assert log.next_offset == 4
        assert log.stats()["fsyncs"] >= 2
    assert log.closed
    with pytest.raises(sealbus.Closed):
        log.append(b"x")
    log.close()  # closing twice is fine
    with SegmentLog(tmp_path) as log:
        assert [r[2] for r in read_all(log)] == [b"first", b"a", b"", b"ccc" * 100]
        assert log.offset_for_time(6) == 1
        assert log.offset_for_time(8) == 4


def test_bad_arguments_raise_typed_errors(tmp_path: Path) -> None:
    with pytest.raises(sealbus.InvalidArgument) as e:
        SegmentLog(tmp_path, fsync="sometimes")
    assert e.value.name == "fsync"
    with pytest.raises(sealbus.InvalidArgument):
        SegmentLog(tmp_path, segment_bytes=1)
    with SegmentLog(tmp_path, max_record_bytes=8) as log:
        for bounds in ([0], [1, 3], [0, 2], [0, 3, 1, 3]):
            with pytest.raises(sealbus.InvalidArgument) as e:
                log.append_batch(b"abc", bounds)
            assert e.value.name == "offsets"
        with pytest.raises(sealbus.InvalidArgument) as e:
            log.append(b"123456789")
        assert "max_record_bytes" in e.value.reason
        assert log.next_offset == 0
    with pytest.raises(sealbus.LogIOError):
        SegmentLog(tmp_path / "missing", read_only=True)


def test_concurrent_appends_share_fsyncs(tmp_path: Path) -> None:
    with SegmentLog(tmp_path, fsync="batch") as log:
        got: list[list[int]] = []

        def work(t: int) -> None:
            mine = [log.append(f"{t}-{i}".encode()) for i in range(100)]
            got.append(mine)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        offsets = sorted(o for m in got for o in m)
        assert offsets == list(range(600))
        s = log.stats()
        # How many appends share an fsync depends on scheduling: the figure is measured
        # in benches/bench_log.py; the Rust tests make the sharing deterministic.
        assert s["appends"] == 600 and 1 <= s["fsyncs"] <= 600, s
        assert s["events_per_fsync"] == 600 / s["fsyncs"]


def test_torn_tail_and_read_only_inspect(tmp_path: Path) -> None:
    with SegmentLog(tmp_path) as log:
        for i in range(5):
            log.append(bytes([i]) * 50)
    seg = tmp_path / f"{0:020}.log"
    data = seg.read_bytes()
    seg.write_bytes(data[:-10])
    info = inspect(tmp_path, verify=True)
    assert info["next_offset"] == 4
    assert info["recovery"]["truncated_bytes"] == 82 - 10
    assert seg.read_bytes() == data[:-10], "inspect must not repair"
    assert all("payload" not in s for s in info["segments"])
    with SegmentLog(tmp_path) as log:
        assert log.next_offset == 4
        assert log.stats()["recovery"]["truncated_bytes"] == 72
    assert seg.stat().st_size == len(data) - 82


def test_flipped_bit_is_reported_with_segment_and_offset(tmp_path: Path) -> None:
    with SegmentLog(tmp_path) as log:
        for i in range(6):
            log.append(bytes([i]) * 40)
    seg = tmp_path / f"{0:020}.log"
    data = bytearray(seg.read_bytes())
    rec = RECORD_HEADER + 40
    for target in (1, 5):  # a middle record and the very last one
        damaged = bytearray(data)
        damaged[SEGMENT_HEADER + target * rec + RECORD_HEADER + 3] ^= 0x10
        seg.write_bytes(bytes(damaged))

        def open_and_verify() -> None:
            with SegmentLog(tmp_path) as log:
                log.verify()

        with pytest.raises(sealbus.LogCorrupted) as e:
            open_and_verify()
        assert e.value.segment == seg.name
        assert e.value.offset == target
        assert seg.read_bytes() == bytes(damaged), "a corrupt log is never truncated"
    seg.write_bytes(bytes(data))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    batches=st.lists(st.lists(st.binary(max_size=300), min_size=1, max_size=4), min_size=1, max_size=10),
    cut=st.floats(min_value=0.0, max_value=1.0),
)
def test_recovery_keeps_whole_appends(
    tmp_path_factory: pytest.TempPathFactory, batches: list[list[bytes]], cut: float
) -> None:
    d = tmp_path_factory.mktemp("log")
    with SegmentLog(d, fsync="never") as log:
        firsts = [log.append_batch(*pack(b))[0] for b in batches]
    seg = d / f"{0:020}.log"
    data = seg.read_bytes()
    n = SEGMENT_HEADER + int((len(data) - SEGMENT_HEADER) * cut)
    seg.write_bytes(data[:n])
    # Model: an append survives if all its bytes are before the cut.
    expect: list[bytes] = []
    end = SEGMENT_HEADER
    for b in batches:
        end += sum(RECORD_HEADER + len(p) for p in b)
        if end <= n:
            expect.extend(b)
    with SegmentLog(d) as log:
        got = read_all(log)
        assert [r[2] for r in got] == expect
        assert [r[0] for r in got] == list(range(len(expect)))
        kept = sum(1 for f in firsts if f < len(expect))
        assert log.next_offset == len(expect)
        assert kept == sum(1 for i, f in enumerate(firsts) if f + len(batches[i]) <= len(expect))


def test_retention_keeps_what_consumers_need(tmp_path: Path) -> None:
    with SegmentLog(tmp_path, fsync="never", segment_bytes=2048, retention_max_bytes=4096) as log:
        for i in range(100):
            log.append(bytes([i]) * 100)
        segs = log.segments()
        assert len(segs) > 3
        r = log.apply_retention(min_needed_offset=0)
        assert r["segments_deleted"] == 0 and r["segments_kept_for_consumers"] == 1
        r = log.apply_retention()
        assert r["segments_deleted"] > 0
        assert log.first_offset == r["first_offset"] > 0
        assert log.read(0, 1)[0][0] == log.first_offset
    with SegmentLog(tmp_path, segment_bytes=2048, retention_max_age=1.0, respect_consumers=False) as log:
        r = log.apply_retention(min_needed_offset=log.first_offset, now_ns=10**19)
        assert r["needed_records_deleted"] > 0
        assert log.stats()["retention_needed_records_deleted"] == r["needed_records_deleted"]


def test_cursor_store(tmp_path: Path) -> None:
    store = CursorStore(tmp_path / "cursors")
    assert store.load("shipping") is None
    store.save("shipping", 10, acked=[(12, 14)], deliveries={10: 2}, dead_letters=[(9, 5, 1, "boom")], owner="ship")
    store.save("analytics", 3)
    again = CursorStore(tmp_path / "cursors")
    assert again.load("analytics")["owner"] is None  # type: ignore[index]
    c = again.load("shipping")
    assert c == {
        "owner": "ship",
        "committed": 10,
        "acked": [(12, 14)],
        "deliveries": {10: 2},
        "dead_letters": [(9, 5, 1, "boom")],
    }
    assert again.consumers() == ["analytics", "shipping"]
    assert again.min_committed() == 3
    with pytest.raises(sealbus.InvalidArgument):
        again.save("bad", 10, acked=[(5, 6)])  # below committed
    with pytest.raises(sealbus.InvalidArgument):
        again.save("", 1)
    assert again.remove("analytics")
    # A damaged journal is refused, never read as fresh cursors.
    journal = tmp_path / "cursors" / "cursors.journal"
    good = journal.read_bytes()
    journal.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    for read_only in (False, True):
        with pytest.raises(sealbus.LogCorrupted):
            CursorStore(tmp_path / "cursors", read_only=read_only)
    journal.write_bytes(good)
    assert again.remove("shipping")
    # inspect() summarises cursors against the log's end.
    with SegmentLog(tmp_path / "log") as log:
        for i in range(20):
            log.append(bytes([i]))
    info = inspect(tmp_path / "log", cursors=tmp_path / "cursors")
    assert info["next_offset"] == 20
    assert info["cursors"] == {}
    again.save("shipping", 15, acked=[(17, 18)], deliveries={15: 1})
    info = inspect(tmp_path / "log", cursors=tmp_path / "cursors")
    assert info["cursors"]["shipping"] == {
        "committed": 15,
        "lag": 5,
        "acked_ranges": 1,
        "in_flight": 1,
        "dead_letters": 0,
    }
