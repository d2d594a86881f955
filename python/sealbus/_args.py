"""Arguments checked in the Python layer, refused inside the ``SealbusError`` hierarchy.

The Rust binding refuses what it converts itself (``sealbus-py/src/args.rs``); these
are the arguments the Python layer takes apart first (lists of names, patterns and
schemas given as dicts, sequences of messages), so a wrong type raises
:class:`~sealbus.InvalidArgumentType` here instead of a bare ``TypeError`` from a
``for`` loop or ``json.dumps``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from sealbus.errors import InvalidArgumentType, PatternError, SchemaInvalid

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


def items(value: object, name: str, kind: type[T] | None = None) -> list[Any]:
    """An iterable (not a str or bytes) as a list; each item an instance of ``kind``."""
    if isinstance(value, Iterable) and not isinstance(value, (str, bytes, bytearray, memoryview, Mapping)):
        out = list(value)
        if kind is None or all(isinstance(v, kind) for v in out):
            return out
        raise wrong_type(name, f"an iterable of {kind.__name__}", value)
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
