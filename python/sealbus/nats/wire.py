"""The bridge's message on the wire: a batch of events of one type, sealed and signed.

A message carries events of one type as columns (their ids, schema versions and
transit-sealed frames), signed with the exporting router's Ed25519 identity over the
NATS subject and the body's SHA-256; the signature travels in the
``Sealbus-Signature`` header. Frame ``i`` seals the event's CloudEvents JSON bound to
its id, type, schema version and the exporting router's name, so no attribute but the
id and type is readable on the wire or in JetStream's store, and no frame can be
moved to another event. The layout, and the codec itself, are Rust's
(``rust/sealbus-core/src/wire.rs``): a message is encoded, or checked, opened and cut
into runs, in one call with the GIL released.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sealbus._sealbus import Event, wire_encode, wire_open, wire_open_runs
from sealbus.errors import SealbusError, SignatureRefused, WireError
from sealbus.keys import KeyRing
from sealbus.nats.identity import Identity

__all__ = [
    "SIGNATURE_HEADER",
    "Outgoing",
    "Runs",
    "SignatureRefused",
    "Signed",
    "WireError",
    "decode",
    "decode_runs",
    "encode",
    "encode_columns",
    "subject_of",
]

SIGNATURE_HEADER = "Sealbus-Signature"


def subject_of(event_type: str) -> str:
    return f"sealbus.{event_type}"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One event on its way out: its id, schema version and CloudEvents JSON."""

    id: str
    schema_version: int | None
    cloudevent: bytes

    @classmethod
    def of(cls, event: Event) -> Outgoing:
        return cls(event.id, event.schema_version, event.to_json().encode())


@dataclass(frozen=True, slots=True)
class Signed:
    """A decoded message whose signature has been checked and frames opened."""

    router: str
    event_type: str
    events: list[Event]
    schema_versions: list[int | None]


def encode(
    router: str, event_type: str, events: Sequence[Outgoing], transit: KeyRing, identity: Identity
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one message carrying ``events`` (all of ``event_type``)."""
    offsets = [0]
    for ev in events:
        offsets.append(offsets[-1] + len(ev.cloudevent))
    return encode_columns(
        router,
        event_type,
        b"".join(ev.cloudevent for ev in events),
        offsets,
        [ev.id for ev in events],
        [ev.schema_version for ev in events],
        transit,
        identity,
    )


def encode_columns(
    router: str,
    event_type: str,
    cloudevents: bytes,
    offsets: Sequence[int],
    ids: Sequence[str],
    versions: Sequence[int | None],
    transit: KeyRing,
    identity: Identity,
) -> tuple[bytes, dict[str, str]]:
    """:func:`encode` for events given as columns: their CloudEvents JSON one after
    the other in ``cloudevents``, between ``len(ids) + 1`` boundaries (which need not
    start at 0: a slice of a larger buffer is not copied), ids and schema versions.
    An id longer than 255 bytes or not ASCII is a :class:`WireError`, raised before
    anything is sealed."""
    body, msg_id, signature = wire_encode(
        router,
        event_type,
        cloudevents,
        offsets if isinstance(offsets, list) else list(offsets),
        ids if isinstance(ids, list) else list(ids),
        versions if isinstance(versions, list) else list(versions),
        transit,
        identity._signer,
    )
    return body, {"Nats-Msg-Id": msg_id, SIGNATURE_HEADER: signature}


def decode(
    subject: str,
    body: bytes,
    headers: dict[str, str] | None,
    trust: dict[str, bytes],
    transit: KeyRing,
) -> Signed:
    """Check the signature against ``trust``, then open every frame.

    Raises :class:`SignatureRefused` for an unknown router or a bad signature, and
    :class:`WireError` / :class:`sealbus.IntegrityError` for a malformed or tampered
    message."""
    router, event_type, ids, versions, plain, po = wire_open(
        subject, body, (headers or {}).get(SIGNATURE_HEADER), trust, transit
    )
    events = []
    view = memoryview(plain)
    for i in range(len(ids)):
        try:
            ev = Event.from_json(bytes(view[po[i] : po[i + 1]]))
        except SealbusError as exc:
            raise WireError(
                f"wire error: event {i} is not a CloudEvent ({exc})", reason="cloudevent", offset=i
            ) from None
        if ev.id != ids[i] or ev.type != event_type:
            raise WireError(f"wire error: event {i} does not match its header", reason="header", offset=i)
        events.append(ev)
    return Signed(router, event_type, events, versions)


@dataclass(frozen=True, slots=True)
class Runs:
    """A decoded message as columns: every event's id, its data (one buffer,
    ``len(ids) + 1`` boundaries), its ``time`` as its producer stamped it, and the
    runs of consecutive events that share their attributes, as ``(end, source, kind,
    subject, traceparent, dataschema, datacontenttype, schema_version)``."""

    router: str
    event_type: str
    ids: list[str]
    runs: list[tuple[int, str, str, str | None, str | None, str | None, str | None, int | None]]
    data: bytes
    offsets: list[int]
    times: list[str]


def decode_runs(
    subject: str,
    body: bytes,
    headers: dict[str, str] | None,
    trust: dict[str, bytes],
    transit: KeyRing,
) -> Runs:
    """:func:`decode` as columns, parsed in one call: what an importer needs to
    publish the events locally a run at a time. The same checks and errors."""
    router, event_type, ids, runs, data, offsets, times = wire_open_runs(
        subject, body, (headers or {}).get(SIGNATURE_HEADER), trust, transit
    )
    return Runs(router, event_type, ids, runs, data, offsets, times)
