"""Consumer side of end-to-end sealing: open what the router delivered, with the
consumer's own X25519 key pair. The router never held the plaintext."""

from __future__ import annotations

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


def _open_one(msg: Message, keypair: ConsumerKeyPair | None, me: str, validate: Validator | None) -> OpenedMessage:
    if keypair is None:
        return OpenedMessage(
            msg,
            error=KeyNotFound(
                f"event {msg.id} is sealed end to end and this subscription has no key pair",
                key_id="(none)",
            ),
        )
    e = msg.event
    frame = e.data_bytes
    try:
        plain, offs = open_e2e(
            frame,
            [0, len(frame)],
            keypair=keypair,
            recipient_id=me,
            event_ids=[e.id],
            event_type=e.type,
            source=e.source,
            schema_version=0,
        )
        data = bytes(plain[offs[0] : offs[1]])
        if validate is not None:
            # The router could not see this data: it is validated here, before the
            # application sees it, so a compromised producer cannot hurt consumers.
            validate(e.type, data)
        return OpenedMessage(msg, data=json.loads(data))
    except (IntegrityError, KeyNotFound, ValidationError, SchemaError) as exc:
        return OpenedMessage(msg, error=exc)
    except ValueError as exc:
        return OpenedMessage(msg, error=IntegrityError(f"event {e.id}: plaintext is not JSON", reason=str(exc)))


def open_end_to_end(
    msgs: list[Message], keypair: ConsumerKeyPair | None, me: str, validate: Validator | None = None
) -> list[Message]:
    """Replace end-to-end messages by opened ones (same order). Typed as Message:
    an OpenedMessage offers the same attributes."""
    out: list[Any] = [
        _open_one(m, keypair, me, validate) if m.event.datacontenttype == E2E_CONTENT_TYPE else m for m in msgs
    ]
    return out


class OpenedBatch:
    """A polled :class:`~sealbus.DeliveryBatch` whose end-to-end events were opened
    for this consumer in one call (each data key unwrapped once, every payload opened
    into one buffer with the GIL released). ``buffer`` and ``offsets`` hold every
    event's plaintext data; an event that could not be opened (or failed its schema)
    has empty data there, and ``errors[i]`` says why. Acks and nacks go to the batch."""

    __slots__ = ("_batch", "buffer", "errors", "offsets")

    def __init__(
        self, batch: DeliveryBatch, buffer: memoryview, offsets: list[int], errors: list[SealbusError | None]
    ) -> None:
        self._batch = batch
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

    def __getitem__(self, i: int) -> OpenedMessage:
        """Event ``i`` as an :class:`OpenedMessage` (its ``data`` parsed, or raising why
        it could not be opened)."""
        if i < 0:
            i += len(self.errors)
        err = self.errors[i]
        if err is not None:
            return OpenedMessage(self._batch[i], error=err)
        raw = bytes(self.buffer[self.offsets[i] : self.offsets[i + 1]])
        try:
            return OpenedMessage(self._batch[i], data=json.loads(raw))
        except ValueError as exc:
            return OpenedMessage(self._batch[i], error=IntegrityError("plaintext is not JSON", reason=str(exc)))

    def ack(self) -> int:
        return self._batch.ack()

    def nack(self) -> int:
        return self._batch.nack()

    def __repr__(self) -> str:
        return f"OpenedBatch({len(self)} events)"


def open_batch_end_to_end(
    batch: DeliveryBatch, keypair: ConsumerKeyPair, me: str, validate: Validator | None = None
) -> DeliveryBatch | OpenedBatch:
    """Open a polled batch's end-to-end events (the batch itself when it has none).
    With ``validate`` (the router's schema check) each opened event is validated in
    the same call, against its type's latest schema, before the application sees it:
    the router could not see this data."""
    opened = batch.open_end_to_end(keypair.recipient_key, me, validate is not None)
    if opened is None:
        return batch
    data, offsets, errors, _types = opened
    return OpenedBatch(batch, memoryview(data), offsets, errors)
