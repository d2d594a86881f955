"""Arguments checked in the Python layer, refused inside the ``SealbusError`` hierarchy.

The Rust binding refuses what it converts itself (``sealbus-py/src/args.rs``); these
are the arguments the Python layer takes apart first (lists of names, patterns and
schemas given as dicts, sequences of messages), so a wrong type raises
:class:`~sealbus.InvalidArgumentType` here instead of a bare ``TypeError`` from a
``for`` loop or ``json.dumps``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from sealbus.errors import InvalidArgument, InvalidArgumentType, PatternError, SchemaInvalid

T = TypeVar("T")


def wrong_type(name: str, expected: str, value: object) -> InvalidArgumentType:
    """The refusal of ``value`` for ``name``; names the value's type, never its content."""
    got = type(value).__name__
    return InvalidArgumentType(
        f"invalid argument: {name}: expected {expected}, got {got}", name=name, reason=f"expected {expected}"
    )


def names(value: object, name: str) -> list[str]:
    """One name or an iterable of names (event types, globs) as a list of str."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, Iterable) and not isinstance(value, (bytes, bytearray, memoryview, Mapping)):
        out = list(value)
        if all(isinstance(v, str) for v in out):
            return out
    raise wrong_type(name, "a str or an iterable of str", value)


def items(value: object, name: str, kind: type[T] | tuple[type[Any], ...] | None = None) -> list[Any]:
    """An iterable (not a str or bytes) as a list; each item an instance of ``kind``
    (a type or a tuple of types)."""
    if isinstance(value, Iterable) and not isinstance(value, (str, bytes, bytearray, memoryview, Mapping)):
        out = list(value)
        if kind is None or all(isinstance(v, kind) for v in out):
            return out
        kinds = kind if isinstance(kind, tuple) else (kind,)
        raise wrong_type(name, f"an iterable of {' or '.join(k.__name__ for k in kinds)}", value)
    raise wrong_type(name, "an iterable", value)


def pattern_text(pattern: object) -> str | None:
    """An event pattern (a mapping or JSON text) as JSON text; None stays None."""
    if pattern is None or isinstance(pattern, str):
        return pattern
    if not isinstance(pattern, Mapping):
        raise wrong_type("pattern", "a mapping or JSON text", pattern)
    try:
        return json.dumps(pattern, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise PatternError(
            f"invalid event pattern at <root>: not JSON-serialisable ({exc})", path="<root>", reason=str(exc)
        ) from None


def schema_text(event_type: str, schema: object) -> str:
    """A schema (a mapping or JSON text) as JSON text."""
    if isinstance(schema, str):
        return schema
    if not isinstance(schema, Mapping):
        raise wrong_type("schema", "a mapping or JSON text", schema)
    try:
        return json.dumps(schema, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise SchemaInvalid(
            f"invalid schema for {event_type}: not JSON-serialisable ({exc})",
            event_type=event_type,
            version=0,
            reason=str(exc),
        ) from None


def path(value: object, name: str) -> str:
    """A file-system path (a str or an ``os.PathLike`` of str) as a str."""
    if isinstance(value, (str, os.PathLike)):
        p = os.fspath(value)
        if isinstance(p, str):
            try:
                os.fsencode(p)
            except UnicodeEncodeError:
                raise InvalidArgument(
                    f"invalid argument: {name}: the file-system encoding cannot encode this path",
                    name=name,
                    reason="not encodable",
                ) from None
            return p
    raise wrong_type(name, "a path (str or os.PathLike)", value)


def text(value: object, name: str) -> str:
    """A str."""
    if isinstance(value, str):
        return value
    raise wrong_type(name, "a str", value)


def blob(value: object, name: str) -> bytes:
    """Bytes (``bytes``, ``bytearray`` or a ``memoryview``) as ``bytes``."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise wrong_type(name, "bytes", value)


def count(value: object, name: str, minimum: int = 0) -> int:
    """An int (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise wrong_type(name, "an int", value)
    if value < minimum:
        raise InvalidArgument(f"invalid argument: {name}: {value} is below {minimum}", name=name, reason="range")
    return value


def seconds(value: object, name: str) -> float:
    """A finite, non-negative number of seconds."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise wrong_type(name, "a number of seconds", value)
    try:
        f = float(value)
    except OverflowError:
        f = math.inf
    if not (math.isfinite(f) and f >= 0):
        raise InvalidArgument(
            f"invalid argument: {name}: {value} is not a non-negative number of seconds", name=name, reason="range"
        )
    return f
