"""Alerts: the router watching its own decisions, in real time.

``Router(path, alerts=AlertConfig(...))`` (or ``alerts=True`` for the defaults) runs
rules in the Rust core (``sealbus-core``'s ``alert`` module) over what the router
decides, and publishes what they raise as events of type ``sealbus.alert.<kind>``
through the router itself: with a registered schema, in the audit trail (a
``publish`` entry, and an ``alert`` entry naming the subject), subscribable with
patterns by any consumer allowed ``sealbus.alert.*``, and bridged like any type::

    router = sealbus.Router(path, alerts=AlertConfig(refused_burst=3))
    security = router.principal("security")
    router.policy.allow_subscribe(security, "sealbus.alert.*")
    alerts = router.subscribe(security, "sealbus.alert.*")

The kinds, and the thresholds of :class:`AlertConfig` that drive them:

``rate_spike``
    a producer's events within one ``window`` exceed ``rate_factor`` times its
    moving baseline (a weighted mean, ``baseline_weight`` for the newest window,
    over its *active* windows: idleness does not lower it), once it has
    ``rate_warmup_windows`` whole windows of history and the window holds at least
    ``rate_min_events``.
``refused_burst``
    ``refused_burst`` publish calls from one principal refused by policy or schema
    within ``refused_window`` seconds.
``new_type``
    a producer publishes a type it never published before, once it is older than
    ``novelty_after`` seconds (the types of its first moments are learned).
``consumer_lag``
    a consumer's backlog (a durable consumer's owed events; otherwise its queued and
    unacknowledged ones) passes ``lag_limit``; raised again only after it fell back
    under half the limit.
``open_failed``
    stored or delivered data failed its integrity check (tampering): at least
    ``open_failures`` events.
``signature_refused``
    a message reaching the bridge was not signed by a router this one trusts: at
    least ``signature_refusals`` messages.

An alert about the same subject and kind is raised at most once per ``cooldown``
seconds; what happens meanwhile is counted into the next one. Observations are
per publish *call* (a batch is one observation), one short call into Rust; the
consumers' backlogs and the integrity counter are looked at every ``interval``
seconds by a watcher thread, which also publishes what was raised. Rule state lives
in memory: a restarted router learns its producers' baselines and types again.
The router's clock (a ``ManualClock`` in tests) is the rules' clock.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from sealbus._sealbus import AlertDetectorCore, ManualClock
from sealbus.errors import PolicyDenied, SchemaError, SealbusError

if TYPE_CHECKING:
    from sealbus.router import Router

__all__ = ["ALERT_PRINCIPAL", "ALERT_SCHEMA", "ALERT_TYPES", "KINDS", "Alert", "AlertConfig", "Alerts"]

#: The principal that publishes alerts (its own publishes never raise alerts).
ALERT_PRINCIPAL = "sealbus.alerts"
#: The glob of every alert type; grant it to the consumers that watch.
ALERT_TYPES = "sealbus.alert.*"
#: The kinds: ``sealbus.alert.<kind>`` is each one's event type.
KINDS: tuple[str, ...] = tuple(AlertDetectorCore.kinds())
#: Every alert's data: its kind, subject (a principal, a consumer, a remote router),
#: time (nanoseconds on the rules' clock) and figures; never a payload.
ALERT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["kind", "subject", "time"],
    "properties": {
        "kind": {"enum": list(KINDS)},
        "subject": {"type": "string"},
        "time": {"type": "integer", "minimum": 0},
    },
}


@dataclass(frozen=True)
class AlertConfig:
    """Thresholds of the alert rules (times in seconds). The defaults suit a service
    publishing steadily; see :mod:`sealbus.alerts` for what each one drives."""

    window: float = 1.0
    rate_factor: float = 10.0
    rate_min_events: int = 1_000
    rate_warmup_windows: int = 5
    baseline_weight: float = 0.2
    refused_burst: int = 5
    refused_window: float = 10.0
    novelty_after: float = 60.0
    lag_limit: int = 100_000
    open_failures: int = 1
    signature_refusals: int = 1
    cooldown: float = 60.0
    #: How often the watcher looks at backlogs and counters and publishes alerts.
    interval: float = 0.1


@dataclass(frozen=True)
class Alert:
    """One raised alert: ``kind``, ``subject``, and its event's ``data`` (a dict)."""

    kind: str
    subject: str
    data: dict[str, Any]

    @property
    def type(self) -> str:
        return f"sealbus.alert.{self.kind}"


class Alerts:
    """A router's alert rules and the watcher that publishes what they raise.
    Created by :class:`sealbus.Router` (``router.alerts``)."""

    def __init__(self, router: Router, config: AlertConfig, clock: ManualClock | None = None) -> None:
        if config.interval <= 0:
            from sealbus.errors import InvalidArgument

            raise InvalidArgument(
                "invalid argument: interval: a positive number of seconds", name="interval", reason="not positive"
            )
        self.config = config
        rules = {k: v for k, v in asdict(config).items() if k != "interval"}
        self._core = AlertDetectorCore(ALERT_PRINCIPAL, clock=clock, **rules)
        #: The hot-path observation: one call into Rust per publish call.
        self.observe_publish = self._core.observe_publish
        self._router = router
        for kind in KINDS:
            router.schemas.register(f"sealbus.alert.{kind}", ALERT_SCHEMA)
        self._who = router.principal(ALERT_PRINCIPAL)
        router.policy.allow_publish(self._who, ALERT_TYPES)
        # Never wait long on a watcher's full queue: the alert stays in the audit trail.
        self._producer = router.producer(self._who, timeout=1.0)
        self._open_failed_seen = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.published = 0
        self.unpublished = 0
        self._thread = threading.Thread(target=self._run, name="sealbus-alerts", daemon=True)
        self._thread.start()

    @property
    def raised(self) -> int:
        """Alerts raised since the router opened."""
        return int(self._core.raised)

    def observe_refused(self, principal: str, event_type: str, exc: SealbusError, count: int) -> None:
        """A publish call refused; only policy and schema refusals count."""
        if isinstance(exc, (PolicyDenied, SchemaError)):
            self._core.observe_refused(principal, event_type, type(exc).__name__, count)

    def observe_signature_refused(self, remote: str, n: int = 1) -> None:
        """``n`` bridged messages claiming to come from ``remote`` failed their signature."""
        self._core.observe_signature_refused(remote, n)

    def observe_open_failed(self, place: str, n: int = 1) -> None:
        """``n`` events failed their integrity check at ``place`` (outside the router's
        own reads, which the watcher counts itself)."""
        self._core.observe_open_failed(place, n)

    def check(self) -> list[Alert]:
        """Look at backlogs and counters now, and publish what was raised (the watcher
        does this every ``interval``); returns the alerts published by this call."""
        with self._lock:
            return self._check()

    def _check(self) -> list[Alert]:
        core = self._router._core
        for sub in core.subscriptions():
            if sub.closed:
                continue
            s = sub.stats()
            lag = s["backlog"] if "backlog" in s else s["ready"] + s["in_flight"]
            self._core.observe_lag(sub.name, sub.principal, lag)
        failed = core.counters().get("open_failed", 0)
        if failed > self._open_failed_seen:
            self._core.observe_open_failed("router", failed - self._open_failed_seen)
            self._open_failed_seen = failed
        out: list[Alert] = []
        audit = self._router.audit
        for event_type, kind, subject, text in self._core.drain():
            alert = Alert(kind, subject, json.loads(text))
            if audit is not None:
                audit.record("alert", alert=kind, subject=subject)
            data = text.encode()
            try:
                self._producer.publish_raw(event_type, data, [0, len(data)])
                self.published += 1
            except SealbusError:
                # Refused or held back (and so in the trail): counted, never retried
                # in a loop that could itself flood the router.
                self.unpublished += 1
                continue
            out.append(alert)
        return out

    def _run(self) -> None:
        while not self._stop.wait(self.config.interval):
            try:
                self.check()
            except SealbusError:
                # The router closing under the watcher; close() takes the last look.
                self.unpublished += 1

    def close(self) -> None:
        """Stop the watcher after a last look."""
        self._stop.set()
        self._thread.join(5)
        try:
            self.check()
        except SealbusError:
            self.unpublished += 1

    def __repr__(self) -> str:
        return f"Alerts(raised={self.raised}, published={self.published})"
