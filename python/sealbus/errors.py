"""The sealbus exception hierarchy.

Every refusal raises a subclass of :class:`SealbusError` whose message says what was
wrong and where; structured details are attributes (``exc.path``, ``exc.principal``,
...). The Rust core's single error enum is mapped onto these classes in one place
(``rust/sealbus-py/src/error.rs``). No message ever contains key bytes or plaintext.
"""

from __future__ import annotations

from typing import Any


class SealbusError(Exception):
    """Base class of every sealbus error."""

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        for key, value in details.items():
            setattr(self, key, value)
        self._details = tuple(details)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.message, {k: getattr(self, k) for k in self._details}))


def _rebuild(cls: type[SealbusError], message: str, details: dict[str, Any]) -> SealbusError:
    return cls(message, **details)


class InvalidArgument(SealbusError, ValueError):
    """An argument is out of range or inconsistent (``name``, ``reason``)."""


class InvalidArgumentType(InvalidArgument, TypeError):
    """An argument of the wrong type (a ``TypeError`` too)."""


class IndexOutOfRange(InvalidArgument, IndexError):
    """An index outside a sequence (an ``IndexError`` too, so iteration by index ends)."""


class InvalidEvent(SealbusError, ValueError):
    """An event attribute or body is malformed (``field``, ``reason``)."""


class PatternError(SealbusError, ValueError):
    """An event pattern is invalid; ``path`` names the pattern key, ``reason`` why."""


class SchemaError(SealbusError):
    """Base class of schema refusals."""


class SchemaInvalid(SchemaError, ValueError):
    """The schema document is not a valid JSON Schema."""


class SchemaIncompatible(SchemaError):
    """A new schema version breaks the compatibility mode (``mode``, ``reason``)."""


class SchemaNotFound(SchemaError, LookupError):
    """No schema (or no such version) is registered for the event type."""


class ValidationError(SchemaError, ValueError):
    """Event data does not fit its schema; ``path`` is a JSON pointer into the data,
    ``schema_path`` into the schema, ``index`` the position in a batch."""

    path: str
    schema_path: str
    index: int


class PolicyDenied(SealbusError, PermissionError):
    """Default deny: ``principal`` may not ``action`` ``event_type``."""


class Backpressure(SealbusError):
    """A bounded queue is full. ``events`` holds the events handed back to the caller
    (none of them were queued anywhere); ``accepted`` counts those that were."""

    events: list[Any]
    accepted: int
    receipts: list[Any]
    subscription: str
    pending: int


class TooLarge(InvalidEvent):
    """An event, or a whole publish, is larger than the router allows: ``size`` bytes
    over ``limit`` (``limit_name``: ``max_event_bytes`` or ``max_batch_bytes``);
    ``index`` is the event's place in the batch (None for the batch's total). Nothing
    of the publish was stored."""

    limit_name: str
    size: int
    limit: int
    index: int | None


class NotFound(SealbusError, LookupError):
    """A subscription, message, consumer or key does not exist."""


class Closed(SealbusError):
    """The router or subscription is closed."""


class SealError(SealbusError):
    """Sealing failed (bad key, nonce space exhausted, ...)."""


class IntegrityError(SealError):
    """A seal failed to open: wrong key, or tampered ciphertext, tag or attributes."""


class KeyDestroyed(IntegrityError):
    """The key was destroyed (crypto-shredded); its data can no longer be opened."""


class KeyNotFound(SealError, LookupError):
    """No key with this id in the key ring."""


class KeyFileError(SealError):
    """A key file is unreadable, damaged or edited, and was refused whole: ``path``
    names the file, ``key_id`` the key whose entry is to blame (``None`` when the
    change is in the document as a whole), ``reason`` what was found. Never key bytes."""

    path: str
    key_id: str | None
    reason: str


class FrameError(IntegrityError, ValueError):
    """A sealed frame is malformed (``offset``, ``reason``)."""


class WireError(FrameError):
    """A bridge message is malformed (``reason``, ``offset``); nothing of it is imported."""


class SignatureRefused(WireError):
    """A bridge message is not signed by a router this one trusts (``router``,
    ``reason``: ``"untrusted"`` or ``"bad signature"``)."""


class LogError(SealbusError):
    """Base class of durable-log errors."""


class LogCorrupted(LogError):
    """A record in the middle of the log is corrupt (``segment``, ``offset``)."""


class LogIOError(LogError, OSError):
    """An I/O error in the log; the writer stopped (fail-stop) until reopened."""


class LogLocked(LogError):
    """Another open log holds the folder (``path``): one writer at a time, in this
    process or any other. ``holder`` is the holding process id when known."""

    path: str
    holder: int | None


class LogFailed(LogError):
    """The log writer stopped after an earlier failure; reopen the router."""


__all__ = [
    "Backpressure",
    "Closed",
    "FrameError",
    "IndexOutOfRange",
    "IntegrityError",
    "InvalidArgument",
    "InvalidArgumentType",
    "InvalidEvent",
    "KeyDestroyed",
    "KeyFileError",
    "KeyNotFound",
    "LogCorrupted",
    "LogError",
    "LogFailed",
    "LogIOError",
    "LogLocked",
    "NotFound",
    "PatternError",
    "PolicyDenied",
    "SchemaError",
    "SchemaIncompatible",
    "SchemaInvalid",
    "SchemaNotFound",
    "SealError",
    "SealbusError",
    "SignatureRefused",
    "TooLarge",
    "ValidationError",
    "WireError",
]
