"""One writer per log folder: a second router on the same folder, in this process or
another, is refused with LogLocked until the first is closed or its process is gone."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
import sealbus
from sealbus import LogLocked, Router

HOLDER = """
import sys
import sealbus
router = sealbus.Router(sys.argv[1], seal="none")
print("ready", flush=True)
sys.stdin.read()
router.close()
"""


def hold(folder: Path) -> subprocess.Popen[str]:
    """A process that opens a router on ``folder`` and keeps it until its stdin closes."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(folder)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_a_second_router_in_the_same_process_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "log"
    first = Router(folder, seal="none", allow_schemaless=True)
    with pytest.raises(LogLocked) as err:
        Router(folder, seal="none")
    assert isinstance(err.value, sealbus.SealbusError)
    assert err.value.path == str(folder)
    assert str(folder) in str(err.value)
    # The refused open changed nothing: the first router still stores events.
    p = first.principal("p")
    first.policy.allow_publish(p, "t.a")
    assert first.producer(p).publish("t.a", {"n": 1}).offset == 0
    first.close()
    # Closed: the folder is free again.
    Router(folder, seal="none").close()


def test_a_router_in_another_process_is_refused_until_it_closes(tmp_path: Path) -> None:
    folder = tmp_path / "log"
    proc = hold(folder)
    try:
        with pytest.raises(LogLocked) as err:
            Router(folder, seal="none")
        assert err.value.path == str(folder)
        assert err.value.holder == proc.pid
        assert f"process {proc.pid}" in str(err.value)
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        assert proc.wait() == 0
    Router(folder, seal="none").close()


def test_the_kernel_frees_the_lock_of_a_killed_holder(tmp_path: Path) -> None:
    folder = tmp_path / "log"
    proc = hold(folder)
    with pytest.raises(LogLocked):
        Router(folder, seal="none")
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    router = Router(folder, seal="none")
    with pytest.raises(LogLocked):
        Router(folder, seal="none")
    router.close()


def test_the_segment_log_alone_is_locked_too_but_not_a_read_only_look(tmp_path: Path) -> None:
    from sealbus._sealbus import SegmentLog

    folder = tmp_path / "log"
    router = Router(folder, seal="none")
    with pytest.raises(LogLocked):
        SegmentLog(str(folder))
    # Inspecting a running router's log writes nothing, so it needs no lock.
    SegmentLog(str(folder), read_only=True).close()
    router.close()
