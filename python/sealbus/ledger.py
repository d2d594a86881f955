"""The audit trail's summary entries: deliveries, acks, nacks, dead letters and key
ring changes, read from counters once a :data:`SUMMARY_INTERVAL`.

An entry per event delivered or acknowledged would put a JSON line on every poll and
every ack (and a lock, and a Python object per event); a summary per subscription and
interval costs the delivery path nothing. So the trail holds, for each subscription
that did something within the interval, one ``deliveries`` entry::

    {"kind": "deliveries", "subscription": "reports", "principal": "analytics",
     "delivered": 1024, "acked": 1000, "nacked": 24, "dead_lettered": 2, ...}

(only the counts that moved; ``delivered`` counts redeliveries too, ``redelivered``
those alone), and for each change of the key ring a ``key`` entry: ``created``
(a rotation), ``retired`` or ``destroyed``, with the key's id, never its bytes. The
last summary is written when the router closes.
"""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sealbus._sealbus import SubscriptionCore
    from sealbus.router import Router

__all__ = ["SUMMARY_INTERVAL", "Ledger"]

#: Seconds between two summaries.
SUMMARY_INTERVAL = 1.0
_COUNTS = ("delivered", "redelivered", "acked", "nacked", "expired", "dropped", "dead_lettered", "dead_dropped")


class Ledger:
    """Summarises a router's subscriptions and key ring into its audit trail."""

    def __init__(self, router: Router) -> None:
        self._router = router
        self._lock = threading.Lock()
        self._subs: dict[int, tuple[SubscriptionCore, dict[str, int]]] = {}
        self._keys = self._key_states()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sealbus-ledger", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from sealbus.errors import SealbusError

        while not self._stop.wait(SUMMARY_INTERVAL):
            # A router closing under the summary: close() takes the last one.
            with contextlib.suppress(SealbusError):
                self.summarise()

    def close(self) -> None:
        """Stop summarising, after a last summary (before the router's core closes)."""
        self._stop.set()
        self._thread.join(5)
        self.summarise()

    def watch(self, sub: SubscriptionCore) -> None:
        """Summarise this subscription from now on (until it is closed)."""
        with self._lock:
            self._subs[sub.id] = (sub, dict.fromkeys(_COUNTS, 0))

    def _key_states(self) -> dict[str, str]:
        ring = self._router.keys
        return {} if ring is None else {k["id"]: k["state"] for k in ring.keys()}  # noqa: SIM118 (a KeyRing, not a dict)

    def summarise(self) -> None:
        """Record what moved since the last summary."""
        audit = self._router.audit
        if audit is None:
            return
        with self._lock:
            for sid, (sub, seen) in list(self._subs.items()):
                closed = sub.closed
                s = sub.stats()
                moved: dict[str, Any] = {k: s[k] - seen[k] for k in _COUNTS if s[k] != seen[k]}
                if moved:
                    audit.record("deliveries", subscription=sub.name, principal=sub.principal, **moved)
                    self._subs[sid] = (sub, {k: s[k] for k in _COUNTS})
                if closed:
                    del self._subs[sid]
            keys = self._key_states()
            # New keys first: a rotation comes before the retirement or destruction
            # of the key it replaced.
            for key_id, state in sorted(keys.items(), key=lambda kv: kv[0] in self._keys):
                was = self._keys.get(key_id)
                if was != state:
                    audit.record("key", key=key_id, change="created" if was is None else state, state=state)
            self._keys = keys
