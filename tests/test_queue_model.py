"""A hypothesis state machine drives publish/poll/ack/nack/time against the Rust
queues and against a small model of them written here, and compares every answer."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import hypothesis.strategies as st
import sealbus
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

ACK_TIMEOUT = 10.0
NS = 1_000_000_000


@dataclass
class Entry:
    n: int
    attempts: int = 0


@dataclass
class Model:
    max_pending: int
    on_full: str
    max_deliveries: int
    now: int = 0
    next_tag: int = 1
    ready: deque[Entry] = field(default_factory=deque)
    inflight: dict[int, tuple[Entry, int]] = field(default_factory=dict)
    dead: list[tuple[int, int, str]] = field(default_factory=list)
    dropped: int = 0

    def size(self) -> int:
        return len(self.ready) + len(self.inflight)

    def retry(self, e: Entry, reason: str) -> None:
        """Back to its place among the ready events (always in the order published,
        which is the queue's order), or a dead letter."""
        if e.attempts >= self.max_deliveries:
            self.dead.append((e.n, e.attempts, reason))
        else:
            at = sum(1 for r in self.ready if r.n < e.n)
            self.ready.insert(at, e)

    def expire(self) -> None:
        expired = [tag for tag, (_, deadline) in sorted(self.inflight.items()) if deadline <= self.now]
        entries = [self.inflight.pop(tag)[0] for tag in expired]
        for e in sorted(entries, key=lambda e: e.n):
            self.retry(e, "ack timeout")

    def publish(self, ns: list[int]) -> bool:
        self.expire()
        if self.on_full == "reject" and self.size() + len(ns) > self.max_pending:
            return False
        for n in ns:
            if self.size() >= self.max_pending:
                if self.ready:
                    self.ready.popleft()
                self.dropped += 1
                if self.size() >= self.max_pending:
                    continue
            self.ready.append(Entry(n))
        return True

    def poll(self, k: int) -> list[tuple[int, int, int]]:
        self.expire()
        out = []
        for _ in range(min(k, len(self.ready))):
            e = self.ready.popleft()
            e.attempts += 1
            tag = self.next_tag
            self.next_tag += 1
            self.inflight[tag] = (e, self.now + int(ACK_TIMEOUT * NS))
            out.append((tag, e.n, e.attempts))
        return out

    def ack(self, tag: int) -> bool:
        return self.inflight.pop(tag, None) is not None

    def nack(self, tag: int) -> bool:
        got = self.inflight.pop(tag, None)
        if got is None:
            return False
        self.retry(got[0], "nacked")
        return True


class QueueMachine(RuleBasedStateMachine):
    @initialize(
        max_pending=st.integers(1, 6),
        on_full=st.sampled_from(["reject", "drop_oldest"]),
        max_deliveries=st.integers(1, 3),
    )
    def setup(self, max_pending: int, on_full: str, max_deliveries: int) -> None:
        self.clock = sealbus.ManualClock()
        router = sealbus.Router(allow_schemaless=True, clock=self.clock)
        prod, cons = router.principal("p"), router.principal("c")
        router.policy.allow_publish(prod, "t.*")
        router.policy.allow_subscribe(cons, "t.*")
        self.sub = router.subscribe(
            cons,
            "t.*",
            max_pending=max_pending,
            on_full=on_full,  # type: ignore[arg-type]
            ack_timeout=ACK_TIMEOUT,
            max_deliveries=max_deliveries,
        )
        self.producer = router.producer(prod)
        self.model = Model(max_pending, on_full, max_deliveries)
        self.counter = 0
        self.held: dict[int, sealbus.Message] = {}

    @rule(k=st.integers(1, 4))
    def publish(self, k: int) -> None:
        ns = list(range(self.counter, self.counter + k))
        self.counter += k
        expect_ok = self.model.publish(ns)
        try:
            self.producer.publish_many("t.x", [{"n": n} for n in ns])
            ok = True
        except sealbus.Backpressure as e:
            ok = False
            assert [d["n"] for d in e.events] == ns
        assert ok == expect_ok

    @rule(k=st.integers(1, 5))
    def poll(self, k: int) -> None:
        expected = self.model.poll(k)
        got = self.sub.poll(k, 0)
        assert [(m.tag, m.data["n"], m.attempt) for m in got] == expected
        for m in got:
            self.held[m.tag] = m

    @precondition(lambda self: self.held)
    @rule(data=st.data(), nack=st.booleans())
    def settle(self, data: st.DataObject, nack: bool) -> None:
        tag = data.draw(st.sampled_from(sorted(self.held)))
        msg = self.held.pop(tag)
        if nack:
            assert msg.nack() == self.model.nack(tag)
        else:
            assert msg.ack() == self.model.ack(tag)

    @rule(seconds=st.sampled_from([1.0, 5.0, 9.999, 10.0, 25.0]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.model.now += int(seconds * NS)

    @invariant()
    def same_shape(self) -> None:
        if not hasattr(self, "sub"):
            return
        s = self.sub.stats()
        assert s["in_flight"] == len(self.model.inflight)
        assert s["dropped"] == self.model.dropped
        assert s["ready"] + s["in_flight"] <= self.model.max_pending
        assert [(e.data["n"], a, r) for e, a, r in self.sub.dead_letters()] == self.model.dead


QueueMachine.TestCase.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)
TestQueues = QueueMachine.TestCase
