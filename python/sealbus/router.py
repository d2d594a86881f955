"""The public router API: principals, policy, schemas, producers and subscriptions.

The Rust core (``sealbus._sealbus.RouterCore``) does the work; this module gives it
an API that reads like its documentation.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from sealbus._sealbus import ManualClock, Receipt, RouterCore
from sealbus.codec import encode_batch, encode_one
from sealbus.errors import Backpressure, InvalidArgument, PolicyDenied
from sealbus.principal import Principal, principal_name
from sealbus.subscription import Subscription

OnFull = Literal["block", "reject", "drop_oldest"]
Compatibility = Literal["none", "backward", "forward", "full"]

_ATTRS = ("subject", "datacontenttype", "dataschema", "traceparent")


class Policy:
    """Who may publish and who may receive what. Default deny: nothing is allowed
    until a rule allows it. Rules are event types or ``*`` globs (``orders.*``)."""

    def __init__(self, core: RouterCore) -> None:
        self._core = core

    def allow_publish(self, who: Principal | str, types: str | Iterable[str]) -> None:
        for t in [types] if isinstance(types, str) else types:
            self._core.allow(principal_name(who), "publish", t)

    def allow_subscribe(self, who: Principal | str, types: str | Iterable[str]) -> None:
        for t in [types] if isinstance(types, str) else types:
            self._core.allow(principal_name(who), "subscribe", t)

    def revoke_publish(self, who: Principal | str, glob: str) -> bool:
        return self._core.revoke(principal_name(who), "publish", glob)

    def revoke_subscribe(self, who: Principal | str, glob: str) -> bool:
        """Revoke a grant; delivery of matching types stops at once."""
        return self._core.revoke(principal_name(who), "subscribe", glob)

    def can_publish(self, who: Principal | str, event_type: str) -> bool:
        return self._core.allows(principal_name(who), "publish", event_type)

    def can_subscribe(self, who: Principal | str, type_or_glob: str) -> bool:
        return self._core.allows(principal_name(who), "subscribe", type_or_glob)

    def grants(self, who: Principal | str) -> dict[str, list[str]]:
        pub, sub = self._core.grants(principal_name(who))
        return {"publish": pub, "subscribe": sub}


class Schemas:
    """The versioned JSON Schema registry (2020-12 and draft 7)."""

    def __init__(self, core: RouterCore) -> None:
        self._core = core

    def register(
        self,
        event_type: str,
        schema: Mapping[str, Any] | str,
        *,
        version: int | None = None,
        compatibility: Compatibility = "backward",
    ) -> int:
        """Register a new version (the next one if ``version`` is None); refused with
        :class:`~sealbus.SchemaIncompatible` if it breaks ``compatibility`` with the
        previous version. Returns the version number."""
        text = schema if isinstance(schema, str) else json.dumps(schema)
        return self._core.register_schema(event_type, text, version, compatibility)

    def latest_version(self, event_type: str) -> int | None:
        return self._core.schema_latest_version(event_type)


class Producer:
    """Publishes events as one principal. Obtain with :meth:`Router.producer`."""

    def __init__(self, router: Router, who: Principal, timeout: float | None) -> None:
        self._router = router
        self._who = who
        self._timeout = timeout

    @property
    def name(self) -> str:
        return self._who.name

    def __repr__(self) -> str:
        return f"Producer({self._who.name!r})"

    def publish(
        self,
        event_type: str,
        data: Any = None,
        *,
        version: int | None = None,
        timeout: float | None = None,
        **attrs: str | None,
    ) -> Receipt:
        """Validate, authorise, route and queue one event; returns its receipt.
        Attributes: ``subject``, ``datacontenttype``, ``dataschema``, ``traceparent``."""
        kind, blob = encode_one(data)
        return self._send(event_type, kind, blob, [0, len(blob)], [data], version, timeout, attrs)[0]

    def publish_many(
        self,
        event_type: str,
        batch: Sequence[Any],
        *,
        version: int | None = None,
        timeout: float | None = None,
        **attrs: str | None,
    ) -> list[Receipt]:
        """Publish a batch in one call into Rust (GIL released). All or nothing up
        to the queues: one invalid or forbidden event refuses the whole batch."""
        kind, buffer, offsets = encode_batch(batch)
        return self._send(event_type, kind, buffer, offsets, batch, version, timeout, attrs)

    def publish_raw(
        self,
        event_type: str,
        buffer: bytes,
        offsets: Sequence[int],
        *,
        kind: Literal["json", "binary"] = "json",
        version: int | None = None,
        timeout: float | None = None,
        **attrs: str | None,
    ) -> list[Receipt]:
        """Publish events already encoded in one buffer (JSON texts or blobs) with
        ``n + 1`` offsets: the fastest path, no Python object per event."""
        return self._send(event_type, kind, buffer, list(offsets), None, version, timeout, attrs)

    def _send(
        self,
        event_type: str,
        kind: str,
        buffer: bytes,
        offsets: list[int],
        originals: Sequence[Any] | None,
        version: int | None,
        timeout: float | None,
        attrs: Mapping[str, str | None],
    ) -> list[Receipt]:
        for k in attrs:
            if k not in _ATTRS:
                raise InvalidArgument(
                    f"invalid argument: {k}: not a CloudEvents attribute ({', '.join(_ATTRS)})",
                    name=k,
                    reason="unknown attribute",
                )
        try:
            return self._router._core.publish(
                self._who.name,
                self._who._token,
                event_type,
                buffer,
                offsets,
                kind,
                version,
                dict(attrs) if attrs else None,
                timeout if timeout is not None else self._timeout,
            )
        except Backpressure as exc:
            # tokio's try_send: the caller gets back what was not queued.
            accepted: int = exc.accepted
            if originals is not None:
                exc.events = list(originals[accepted:])
            else:
                exc.events = [buffer[offsets[i] : offsets[i + 1]] for i in range(accepted, len(offsets) - 1)]
            raise

    def close(self) -> None:
        """Producers hold no resources of their own; present for ``with`` blocks."""

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Router:
    """An embedded event router.

    >>> router = Router()
    >>> checkout = router.principal("checkout")
    >>> router.policy.allow_publish(checkout, "orders.*")
    """

    def __init__(
        self,
        *,
        allow_schemaless: bool = False,
        clock: ManualClock | None = None,
    ) -> None:
        self._core = RouterCore(allow_schemaless=allow_schemaless, clock=clock)
        self.policy = Policy(self._core)
        self.schemas = Schemas(self._core)
        self._principals: dict[str, Principal] = {}

    def __repr__(self) -> str:
        return f"Router(principals={len(self._principals)}, subscriptions={len(self._core.subscriptions())})"

    def principal(self, name: str) -> Principal:
        """Create the principal ``name`` (once). Hand the returned object to the code
        that acts as it; the name alone grants nothing."""
        token = self._core.register_principal(name)
        p = Principal(name, token, id(self))
        self._principals[name] = p
        return p

    def _check(self, who: Principal) -> Principal:
        if not isinstance(who, Principal):
            raise PolicyDenied(
                f"policy denied: {who!r} is not a Principal object; create one with router.principal()",
                principal=str(who),
                action="act",
                event_type="*",
            )
        return who

    def producer(self, who: Principal, *, timeout: float | None = None) -> Producer:
        """A producer publishing as ``who``. ``timeout`` bounds how long a publish may
        wait on a full ``block`` queue (None: no bound)."""
        return Producer(self, self._check(who), timeout)

    def subscribe(
        self,
        who: Principal,
        types: str | Sequence[str],
        *,
        pattern: Mapping[str, Any] | str | None = None,
        name: str | None = None,
        max_pending: int = 10_000,
        on_full: OnFull = "block",
        ack_timeout: float = 30.0,
        max_deliveries: int = 5,
        dlq_capacity: int = 10_000,
    ) -> Subscription:
        """Subscribe ``who`` to event ``types`` (names or ``*`` globs), optionally
        filtered by an EventBridge ``pattern`` over the CloudEvents JSON form of the
        event (``{"data": {"total": [{"numeric": [">", 100]}]}}``).

        The queue holds at most ``max_pending`` unacknowledged events; when full,
        ``on_full`` says what happens to producers: ``block`` (wait), ``reject``
        (:class:`~sealbus.Backpressure`, events handed back) or ``drop_oldest``."""
        who = self._check(who)
        type_list = [types] if isinstance(types, str) else list(types)
        text = None if pattern is None else pattern if isinstance(pattern, str) else json.dumps(pattern)
        core = self._core.subscribe(
            who.name,
            who._token,
            type_list,
            name=name,
            pattern_json=text,
            max_pending=max_pending,
            on_full=on_full,
            ack_timeout=ack_timeout,
            max_deliveries=max_deliveries,
            dlq_capacity=dlq_capacity,
        )
        return Subscription(core)

    def counters(self) -> dict[str, int]:
        """Published, routed and refused counts (policy, schema, backpressure)."""
        return self._core.counters()
