"""What a durable router writes is its owner's alone: folders 0700, files 0600,
whatever the process umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sealbus import Router


@pytest.fixture
def open_umask() -> Iterator[None]:
    """umask 0: a mode that depends on the umask would show up as group/other bits."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.mark.usefixtures("open_umask")
def test_everything_a_durable_router_creates_is_private(tmp_path: Path) -> None:
    folder = tmp_path / "var" / "lib" / "log"
    router = Router(folder, allow_schemaless=True, segment_bytes=4096, keys=tmp_path / "log.keys")
    checkout, analytics = router.principal("checkout"), router.principal("analytics")
    router.policy.allow_publish(checkout, "orders.*")
    router.policy.allow_subscribe(analytics, "orders.*")
    sub = router.subscribe(analytics, "orders.*", name="analytics", durable=True)
    # Several segments (and their indexes), a cursor saved after acks.
    for _ in range(4):
        router.producer(checkout).publish_many("orders.placed", [{"pad": "x" * 200}] * 10)
    sub.ack(sub.poll(10, 1.0))
    router.flush()
    router.close()

    created = [folder, folder.parent, folder.parent.parent, *folder.rglob("*")]
    files = [p for p in created if p.is_file()]
    folders = [p for p in created if p.is_dir()]
    assert {p.suffix for p in files} >= {".log", ".idx", ".journal", ".lock"}
    assert len([p for p in files if p.suffix == ".log"]) > 1
    assert (folder / "cursors") in folders
    assert {str(p): oct(mode(p)) for p in folders} == {str(p): "0o700" for p in folders}
    assert {str(p): oct(mode(p)) for p in files} == {str(p): "0o600" for p in files}
    # The key file was already private.
    assert mode(tmp_path / "log.keys") == 0o600


@pytest.mark.usefixtures("open_umask")
def test_a_folder_the_operator_made_keeps_its_mode(tmp_path: Path) -> None:
    folder = tmp_path / "log"
    folder.mkdir(mode=0o750)
    Router(folder, seal="none").close()
    assert mode(folder) == 0o750
    assert mode(folder / "cursors") == 0o700
