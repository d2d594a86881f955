"""Ctrl-C ends every wait that can block.

Each case runs a child process that blocks in one kind of wait (no event will ever
come), sends SIGINT to it once it is waiting, and expects it to leave the wait with
``KeyboardInterrupt``. The child reports the exception on stdout; the test waits on
the process with a generous timeout, so a wait that ignores the signal fails the
test (after that timeout) instead of hanging it.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import pytest

_SETUP = """
import asyncio, sys
import sealbus
router = sealbus.Router(allow_schemaless=True)
pub, who = router.principal("pub"), router.principal("who")
router.policy.allow_publish(pub, "t")
router.policy.allow_subscribe(who, "t")
sub = router.subscribe(who, "t", max_pending=1, on_full="block")
other = router.subscribe(who, "t", name="other", max_pending=1, on_full="reject")
"""

WAITS = {
    "poll": "sub.poll(timeout=None)",
    "poll_batch": "sub.poll_batch(timeout=None)",
    "selector_poll": "sealbus.Selector([sub, other]).poll(timeout=None)",
    "selector_poll_batch": "sealbus.Selector([sub, other]).poll_batch(timeout=None)",
    "iteration": "for _ in sub: pass",
    "async_iteration": textwrap.dedent(
        """\
        async def main():
            async for _ in sub:
                pass
        asyncio.run(main())"""
    ),
    "poll_async": textwrap.dedent(
        """\
        asyncio.run(sub.poll_async(timeout=None))"""
    ),
    "selector_poll_batch_async": textwrap.dedent(
        """\
        asyncio.run(sealbus.Selector([sub, other]).poll_batch_async(timeout=None))"""
    ),
    "blocking_publish_async": textwrap.dedent(
        """\
        p = router.producer(pub)
        p.publish("t", 1)
        other.poll(1, 0.0)
        print("ready", flush=True)
        asyncio.run(p.publish_async("t", 2))"""
    ),
    # The first event fills `sub` (max_pending=1, on_full="block"), the second waits
    # for room that never comes (nothing consumes).
    "blocking_publish": textwrap.dedent(
        """\
        p = router.producer(pub)
        p.publish("t", 1)
        other.poll(1, 0.0)
        print("ready", flush=True)
        p.publish("t", 2)"""
    ),
}


def _script(wait: str) -> str:
    body = wait if "ready" in wait else f'print("ready", flush=True)\n{wait}'
    return (
        _SETUP
        + "try:\n"
        + textwrap.indent(body, "    ")
        + "\nexcept KeyboardInterrupt:\n"
        + '    print("KeyboardInterrupt", flush=True)\n'
        + "    sys.exit(0)\n"
        + 'print("returned without an interrupt", flush=True)\n'
        + "sys.exit(3)\n"
    )


@pytest.mark.parametrize("kind", sorted(WAITS))
def test_sigint_ends_the_wait(kind: str) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", _script(WAITS[kind])],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        # Let the child get into the wait; a signal that came earlier would be
        # handled by the interpreter before the call and prove nothing.
        time.sleep(0.5)
        assert child.poll() is None, "the wait returned before the signal"
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert child.returncode == 0, f"exit {child.returncode}: {out!r} {err[-2000:]!r}"
    assert out.strip() == "KeyboardInterrupt"
