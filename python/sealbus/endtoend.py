"""Consumer side of end-to-end sealing: open what the router delivered, with the
consumer's own X25519 key pair. The router never held the plaintext."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import Any

from sealbus._sealbus import DeliveryBatch, Event, Message
from sealbus.e2e import ConsumerKeyPair, open_e2e
from sealbus.errors import IntegrityError, KeyNotFound, SchemaError, SealbusError, ValidationError

#: ``datacontenttype`` of events whose data is an end-to-end sealed frame.
E2E_CONTENT_TYPE = "application/vnd.sealbus.e2e+json"


class OpenedMessage:
    """A delivered end-to-end event, opened for this consumer. Acks and nacks go to
    the underlying delivery; ``data`` is the plaintext (or raises why it is not)."""

    __slots__ = ("_data", "_error", "_msg")

    def __init__(self, msg: Message, data: Any = None, error: SealbusError | None = None) -> None:
        self._msg = msg
        self._data = data
        self._error = error

    @property
    def data(self) -> Any:
        if self._error is not None:
            raise self._error
        return self._data

    @property
    def event(self) -> Event:
        return self._msg.event

    @property
    def id(self) -> str:
        return self._msg.id

    @property
    def type(self) -> str:
        return self._msg.type

    @property
    def tag(self) -> int:
        return self._msg.tag

    @property
    def attempt(self) -> int:
        return self._msg.attempt

    def ack(self) -> bool:
        return self._msg.ack()

    def nack(self) -> bool:
        return self._msg.nack()

    def __repr__(self) -> str:
        return f"OpenedMessage(id={self.id!r}, type={self.type!r}, attempt={self.attempt})"


Validator = Callable[[str, bytes], int]


def producer_readings(source: str) -> list[str]:
    """The names an end-to-end frame's AAD may give its producer, for an event whose
    source is ``source`` here: the producer as named on the router it published to
    (docs/FORMAT.md). An event imported from another router has the source
    ``<router>/<principal>`` and is bound to ``<principal>``; a local principal's
    name may hold a ``/`` too, so that reading comes second."""
    head, slash, origin = source.partition("/")
    return [origin, source] if slash and head else [source]


def _open_as_sent(frame: bytes, e: Event, keypair: ConsumerKeyPair, me: str) -> tuple[bytes, memoryview]:
    def open_as(source: str) -> tuple[bytes, memoryview]:
        return open_e2e(
            frame,
            [0, len(frame)],
            keypair=keypair,
            recipient_id=me,
            event_ids=[e.id],
            event_type=e.type,
            source=source,
            schema_version=0,
        )

    *first, last = producer_readings(e.source)
    for source in first:
        with contextlib.suppress(IntegrityError):
            return open_as(source)
    return open_as(last)


def _open_frame(
    frame: bytes, e: Event, keypair: ConsumerKeyPair | None, me: str, validate: Validator | None
) -> tuple[bytes, Any] | SealbusError:
    """The plaintext of one end-to-end frame and its decoded JSON, opened for ``me``
    and validated; or the error that says why not."""
    if keypair is None:
        return KeyNotFound(
            f"event {e.id} is sealed end to end and this subscription has no key pair",
            key_id="(none)",
        )
    try:
        plain, offs = _open_as_sent(frame, e, keypair, me)
        data = bytes(plain[offs[0] : offs[1]])
        if validate is not None:
            # The router could not see this data: it is validated here, before the
            # application sees it, so a compromised producer cannot hurt consumers.
            validate(e.type, data)
        return data, json.loads(data)
    except (IntegrityError, KeyNotFound, ValidationError, SchemaError) as exc:
        return exc
    except ValueError as exc:
        return IntegrityError(f"event {e.id}: plaintext is not JSON", reason=str(exc))


def _open_one(msg: Message, keypair: ConsumerKeyPair | None, me: str, validate: Validator | None) -> OpenedMessage:
    opened = _open_frame(msg.event.data_bytes, msg.event, keypair, me, validate)
    if isinstance(opened, SealbusError):
        return OpenedMessage(msg, error=opened)
    return OpenedMessage(msg, data=opened[1])


class OpenedBatch:
    """A :class:`~sealbus.DeliveryBatch` whose end-to-end events were opened for this
    consumer and validated, as :meth:`Subscription.poll` opens them, in one call: each
    data key is unwrapped once and every payload opened into one buffer with the GIL
    released. ``buffer`` holds every event's data, the plaintext of the end-to-end ones,
    never their ciphertext; an event that could not be opened (or failed its schema)
    has empty data there, ``errors[i]`` says why, and ``batch[i].data`` raises it.
    Acks and nacks go to the underlying deliveries."""

    __slots__ = ("_batch", "_sealed", "buffer", "errors", "offsets")

    def __init__(
        self, batch: DeliveryBatch, buffer: memoryview, offsets: list[int], errors: list[SealbusError | None]
    ) -> None:
        self._batch = batch
        # Which events were sealed end to end, looked up on first indexing: a
        # consumer reading `buffer` and `offsets` never pays for it.
        self._sealed: frozenset[int] | None = None
        self.buffer = buffer
        self.offsets = offsets
        self.errors = errors

    def __len__(self) -> int:
        return len(self._batch)

    @property
    def ids(self) -> list[str]:
        return self._batch.ids

    @property
    def tags(self) -> list[int]:
        return self._batch.tags

    @property
    def received_ns(self) -> int:
        return self._batch.received_ns

    @property
    def end_to_end(self) -> list[int]:
        return self._batch.end_to_end

    def __getitem__(self, i: int) -> Message:
        """Event ``i``: an :class:`OpenedMessage` (its ``data`` parsed, or raising why
        it could not be opened) for an end-to-end event, else the batch's message.
        Typed as Message: an OpenedMessage offers the same attributes."""
        j = i + len(self) if i < 0 else i
        if self._sealed is None:
            self._sealed = frozenset(self._batch.end_to_end)
        if j not in self._sealed:
            return self._batch[i]
        msg = self._batch[j]
        err = self.errors[j]
        if err is None:
            raw = bytes(self.buffer[self.offsets[j] : self.offsets[j + 1]])
            try:
                opened = OpenedMessage(msg, data=json.loads(raw))
            except ValueError as exc:
                opened = OpenedMessage(
                    msg, error=IntegrityError(f"event {msg.id}: plaintext is not JSON", reason=str(exc))
                )
        else:
            opened = OpenedMessage(msg, error=err)
        out: Message = opened  # type: ignore[assignment]
        return out

    def ack(self) -> int:
        return self._batch.ack()

    def nack(self) -> int:
        return self._batch.nack()

    def __repr__(self) -> str:
        return f"OpenedBatch({len(self)} events, {len(self._batch.end_to_end)} sealed end to end)"


#: What a batch poll returns: the batch itself, or it with its end-to-end events opened.
Batch = DeliveryBatch | OpenedBatch


def _without_key_pair(batch: DeliveryBatch) -> OpenedBatch:
    """A batch for a consumer with no key pair: its end-to-end events have no data
    and say why."""
    raw, offs = batch.buffer, batch.offsets
    sealed = set(batch.end_to_end)
    ids = batch.ids
    parts: list[bytes] = []
    offsets = [0]
    errors: list[SealbusError | None] = []
    for i in range(len(batch)):
        if i in sealed:
            parts.append(b"")
            errors.append(
                KeyNotFound(
                    f"event {ids[i]} is sealed end to end and this subscription has no key pair", key_id="(none)"
                )
            )
        else:
            parts.append(bytes(raw[offs[i] : offs[i + 1]]))
            errors.append(None)
        offsets.append(offsets[-1] + len(parts[-1]))
    return OpenedBatch(batch, memoryview(b"".join(parts)), offsets, errors)


def open_batch(
    batch: DeliveryBatch, keypair: ConsumerKeyPair | None, me: str, validate: Validator | None = None
) -> Batch:
    """``batch`` itself when it holds no end-to-end event, else an :class:`OpenedBatch`.
    With ``validate`` (the router's schema check) each opened event is validated in
    the same call, against its type's latest schema, before the application sees it:
    the router could not see this data."""
    if keypair is None:
        return _without_key_pair(batch) if batch.end_to_end else batch
    # `None` when the batch holds no end-to-end event (checked in the same call).
    opened = batch.open_end_to_end(keypair.recipient_key, me, validate is not None)
    if opened is None:
        return batch
    data, offsets, errors = opened
    return OpenedBatch(batch, memoryview(data), offsets, errors)


def open_end_to_end(
    msgs: list[Message], keypair: ConsumerKeyPair | None, me: str, validate: Validator | None = None
) -> list[Message]:
    """Replace end-to-end messages by opened ones (same order). Typed as Message:
    an OpenedMessage offers the same attributes."""
    out: list[Any] = [
        _open_one(m, keypair, me, validate) if m.event.datacontenttype == E2E_CONTENT_TYPE else m for m in msgs
    ]
    return out
