"""A router belongs to the process that opened it. A child forked after the router was
opened inherits its files and its log lock but none of its threads: if it could
publish, it would append to the parent's segments beside the parent, and closing would
wait for threads that are not there. So the child is refused with ``Closed``, saying
what to do, its ``close`` touches nothing, and the parent's log and trail stay whole."""

from __future__ import annotations

import gc
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import pytest
import sealbus
import sealbus.audit

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")

SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}


def _in_child(body: Callable[[], None], timeout: float = 60.0) -> int:
    """Run ``body`` in a forked child; its exit code (0: it returned, 1: it raised,
    -9: it hung and was killed)."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            body()
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stderr.flush()
            os._exit(code)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    return -9


def test_a_forked_child_is_refused_and_the_parents_log_and_trail_stay_whole(tmp_path: Path) -> None:
    router = sealbus.Router(tmp_path / "log")
    router.schemas.register("orders.placed", SCHEMA)
    shop, reader = router.principal("shop"), router.principal("reader")
    router.policy.allow_publish(shop, "orders.*")
    router.policy.allow_subscribe(reader, "orders.*")
    sub = router.subscribe(reader, "orders.placed", durable=True, name="billing")
    producer = router.producer(shop)
    producer.publish("orders.placed", {"n": 1})
    held = sub.poll(10, 1.0)
    assert [m.data["n"] for m in held] == [1]
    assert router.audit is not None
    trail = router.audit

    def child() -> None:
        refused = {
            "publish": lambda: producer.publish("orders.placed", {"n": 2}),
            "a refused publish": lambda: producer.publish("orders.placed", {"n": "two"}),
            "poll": lambda: sub.poll(10, 0.0),
            "ack": lambda: sub.ack(held),
            "subscribe": lambda: router.subscribe(reader, "orders.placed"),
            "audit": lambda: trail.record("note"),
        }
        for what, call in refused.items():
            with pytest.raises(sealbus.Closed, match="forked child") as info:
                call()
            assert f"this is process {os.getpid()}" in str(info.value), what
        router.close()  # releases nothing: it is all the parent's
        router.close()
        gc.collect()

    assert _in_child(child) == 0

    # The parent goes on as if nothing happened.
    producer.publish("orders.placed", {"n": 3})
    sub.ack(held)
    assert [m.data["n"] for m in sub.poll(10, 1.0)] == [3]
    router.close()
    again = sealbus.Router(tmp_path / "log")
    who = again.principal("reader")
    again.policy.allow_subscribe(who, "orders.*")
    assert [e.data for e in again.replay(who, "orders.placed")] == [{"n": 1}, {"n": 3}]
    again.close()
    verdict = sealbus.audit.verify(tmp_path / "log")
    assert verdict.ok, verdict.reason


def test_closing_an_inherited_trail_in_a_child_touches_nothing(tmp_path: Path) -> None:
    # Closing the trail joined its writer's thread, which a child does not have (this
    # raised a panic from the core), and would have flushed into the parent's file.
    router = sealbus.Router(tmp_path / "log")
    router.schemas.register("orders.placed", SCHEMA)
    trail = router.audit
    assert trail is not None

    def child() -> None:
        trail.close()

    assert _in_child(child) == 0
    router.close()
    assert sealbus.audit.verify(tmp_path / "log").ok


def test_a_router_opened_in_the_child_works_there(tmp_path: Path) -> None:
    parent = sealbus.Router(tmp_path / "parent")

    def child() -> None:
        router = sealbus.Router(tmp_path / "child")
        router.schemas.register("orders.placed", SCHEMA)
        shop = router.principal("shop")
        router.policy.allow_publish(shop, "orders.*")
        router.producer(shop).publish("orders.placed", {"n": 1})
        router.close()

    assert _in_child(child) == 0
    parent.close()
    assert sealbus.audit.verify(tmp_path / "child").ok
