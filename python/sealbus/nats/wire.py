"""The bridge's message on the wire: a batch of events of one type, sealed and signed.

Layout (all integers big-endian; columns rather than rows, so that a message of a
thousand events is read with a handful of calls)::

    magic   b"SBX1"
    u16 + utf-8   exporting router's name
    u16 + utf-8   event type
    u32           number of events n
    n x u32       schema version + 1 of each event (0: none)
    n x u32       length of each sealed frame
    n x u8        length of each event id
    ids           the n event ids (ASCII), one after the other
    frames        n transit-sealed frames (docs/FORMAT.md), one after the other

Frame ``i`` seals the event in the CloudEvents JSON format (structured mode: every
attribute, and ``data`` or ``data_base64``) under the transit key ring, bound (AAD) to
the event's id, type, schema version and the exporting router's name, so no attribute
other than the id and type is readable on the wire or in JetStream's store, and no
frame can be moved to another event. The
whole body is signed with the exporting router's Ed25519 identity (its SHA-256,
together with the NATS subject it is published on, ``sealbus.<type>``), and the
signature travels in the ``Sealbus-Signature`` header.
"""

from __future__ import annotations

import base64
import hashlib
import operator
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate, islice

from sealbus._sealbus import Event, cloudevent_runs
from sealbus.errors import FrameError, SealbusError
from sealbus.keys import KeyRing
from sealbus.nats.identity import Identity, verify

__all__ = [
    "SIGNATURE_HEADER",
    "Outgoing",
    "Runs",
    "Signed",
    "WireError",
    "decode",
    "decode_runs",
    "encode",
    "encode_columns",
    "subject_of",
]

MAGIC = b"SBX1"
SIGNATURE_HEADER = "Sealbus-Signature"
_DOMAIN = b"sealbus.bridge.v1\x00sha256\x00"


class WireError(FrameError):
    """A bridge message is malformed (``reason``); nothing of it is imported."""


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


def _signed_bytes(subject: str, body: bytes) -> bytes:
    """What the signature covers: the subject and the SHA-256 of the body. Ed25519
    hashes its message twice; hashing a 200 KB body once first (SHA-NI) and signing
    the digest costs a tenth as much, and SHA-256's collision resistance keeps it
    as strong as signing the body itself."""
    return _DOMAIN + subject.encode() + b"\x00" + hashlib.sha256(body).digest()


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


def _version_columns(versions: Sequence[int | None], n: int) -> tuple[list[int], bytes]:
    """The schema versions as the seal binds them (0: none) and as the wire carries
    them (version + 1, 0: none). A message's events mostly share one version."""
    first = versions[0] if n else None
    if versions.count(first) == n:
        return [first or 0] * n, struct.pack(">I", 0 if first is None else first + 1) * n
    return [v or 0 for v in versions], struct.pack(f">{n}I", *(0 if v is None else v + 1 for v in versions))


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
    the other in ``cloudevents`` (``len(ids) + 1`` boundaries from 0), ids and schema
    versions."""
    n = len(ids)
    seal_versions, wire_versions = _version_columns(versions, n)
    frames, frame_offs = transit.seal_batch(
        cloudevents,
        offsets if isinstance(offsets, list) else list(offsets),
        event_ids=ids if isinstance(ids, list) else list(ids),
        event_type=event_type,
        source=router,
        schema_version=seal_versions,
    )
    # Columns built by C loops (join, map) rather than a Python step per event.
    fo = frame_offs.tolist()
    r, t = router.encode(), event_type.encode()
    if n and max(map(len, ids)) > 255:
        raise WireError("wire error: an event id is longer than 255 bytes", reason="id", offset=0)
    try:
        id_blob = "".join(ids).encode("ascii")
    except UnicodeEncodeError:
        raise WireError("wire error: an event id is not ASCII", reason="id", offset=0) from None
    head = [
        MAGIC,
        struct.pack(">H", len(r)),
        r,
        struct.pack(">H", len(t)),
        t,
        struct.pack(">I", n),
        wire_versions,
        struct.pack(f">{n}I", *map(operator.sub, islice(fo, 1, None), fo)),
        bytes(map(len, ids)),
        id_blob,
    ]
    body = b"".join(head) + bytes(frames)
    sig = identity.sign(_signed_bytes(subject_of(event_type), body))
    headers = {
        "Nats-Msg-Id": f"{router}.{ids[0]}.{n}",
        SIGNATURE_HEADER: base64.b64encode(sig).decode(),
    }
    return body, headers


class _Reader:
    def __init__(self, body: bytes) -> None:
        self.b = memoryview(body)
        self.at = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.at + n > len(self.b):
            raise WireError(f"wire error: message truncated at byte {self.at}", reason="truncated", offset=self.at)
        out = bytes(self.b[self.at : self.at + n])
        self.at += n
        return out

    def view(self, n: int) -> memoryview:
        """The next ``n`` bytes, not copied."""
        if n < 0 or self.at + n > len(self.b):
            raise WireError(f"wire error: message truncated at byte {self.at}", reason="truncated", offset=self.at)
        out = self.b[self.at : self.at + n]
        self.at += n
        return out

    def u(self, fmt: str) -> int:
        size = struct.calcsize(fmt)
        value: int = struct.unpack(fmt, self.take(size))[0]
        return value

    def text(self, width: str, what: str) -> str:
        raw = self.take(self.u(width))
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise WireError(f"wire error: {what} is not UTF-8", reason=f"{what} not UTF-8", offset=self.at) from None


def peek_router(body: bytes) -> str:
    """The router a message claims to come from (before its signature is checked)."""
    r = _Reader(body)
    if r.take(4) != MAGIC:
        raise WireError("wire error: not a sealbus bridge message", reason="magic", offset=0)
    return r.text(">H", "router")


def _open(
    subject: str,
    body: bytes,
    headers: dict[str, str] | None,
    trust: dict[str, bytes],
    transit: KeyRing,
) -> tuple[str, str, list[str], list[int | None], bytes, list[int]]:
    """Check the signature, then open every frame: the router, the type, the ids,
    the schema versions and the events' CloudEvents JSON (one buffer, boundaries)."""
    router = peek_router(body)
    key = trust.get(router)
    if key is None:
        raise SignatureRefused(
            f"signature refused: router {router!r} is not trusted", router=router, reason="untrusted"
        )
    sig_text = (headers or {}).get(SIGNATURE_HEADER)
    try:
        sig = base64.b64decode(sig_text or "", validate=True)
    except ValueError:
        sig = b""
    if len(sig) != 64 or not verify(key, sig, _signed_bytes(subject, body)):
        raise SignatureRefused(
            f"signature refused: the message on {subject} is not signed by router {router!r}",
            router=router,
            reason="bad signature",
        )
    r = _Reader(body)
    r.take(4)
    r.text(">H", "router")
    event_type = r.text(">H", "type")
    if subject != subject_of(event_type):
        raise WireError(f"wire error: type {event_type!r} published on {subject}", reason="subject", offset=0)
    n = r.u(">I")
    if n == 0 or n > 1_000_000:
        raise WireError(f"wire error: {n} events in one message", reason="count", offset=r.at)
    raw_versions = struct.unpack(f">{n}I", r.take(4 * n))
    lengths = struct.unpack(f">{n}I", r.take(4 * n))
    id_lengths = r.take(n)
    id_blob = r.take(sum(id_lengths))
    try:
        id_text = id_blob.decode("ascii")
    except UnicodeDecodeError:
        raise WireError("wire error: an event id is not ASCII", reason="id", offset=r.at) from None
    # Columns cut by C loops (accumulate, map) rather than a Python step per event.
    id_bounds = list(accumulate(id_lengths, initial=0))
    ids: list[str] = list(map(id_text.__getitem__, map(slice, id_bounds, islice(id_bounds, 1, None))))
    first = raw_versions[0]
    if raw_versions.count(first) == n:
        versions: list[int | None] = [None if first == 0 else first - 1] * n
        seal_versions = [max(first - 1, 0)] * n
    else:
        versions = [None if v == 0 else v - 1 for v in raw_versions]
        seal_versions = [v or 0 for v in versions]
    offsets = list(accumulate(lengths, initial=0))
    frames = r.view(offsets[-1])
    if r.at != len(r.b):
        raise WireError("wire error: bytes after the last frame", reason="trailing bytes", offset=r.at)
    plain, poffs = transit.open_batch(
        frames, offsets, event_ids=ids, event_type=event_type, source=router, schema_version=seal_versions
    )
    return router, event_type, ids, versions, plain if isinstance(plain, bytes) else bytes(plain), poffs.tolist()


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
    router, event_type, ids, versions, plain, po = _open(subject, body, headers, trust, transit)
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
    router, event_type, ids, versions, plain, po = _open(subject, body, headers, trust, transit)
    try:
        runs, data, offsets, times = cloudevent_runs(plain, po, ids, event_type, versions)
    except SealbusError as exc:
        raise WireError(f"wire error: not CloudEvents of {event_type} ({exc})", reason="cloudevent", offset=0) from None
    return Runs(router, event_type, ids, runs, data, offsets, times)


class SignatureRefused(WireError):
    """A message is not signed by a router this one trusts (``router``, ``reason``)."""
