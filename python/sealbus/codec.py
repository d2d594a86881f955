"""Encoding producer data into the one-buffer form the Rust core takes."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sealbus.errors import InvalidEvent

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode

BinaryLike = bytes | bytearray | memoryview


def encode_one(data: Any, index: int = 0) -> tuple[str, bytes]:
    """``("binary", bytes)`` for bytes-like data, else ``("json", compact JSON)``."""
    if isinstance(data, BinaryLike):
        return "binary", bytes(data)
    try:
        return "json", _dumps(data).encode()
    except (TypeError, ValueError) as exc:
        raise InvalidEvent(
            f"invalid event: data[{index}]: not JSON-serialisable ({exc})",
            field=f"data[{index}]",
            reason=str(exc),
        ) from None


def encode_batch(items: Iterable[Any]) -> tuple[str, bytes, list[int]]:
    """One kind, one buffer and n + 1 offsets for a batch of event data."""
    kind: str | None = None
    parts: list[bytes] = []
    offsets = [0]
    total = 0
    for i, item in enumerate(items):
        k, blob = encode_one(item, i)
        if kind is None:
            kind = k
        elif k != kind:
            raise InvalidEvent(
                f"invalid event: data[{i}]: a batch mixes JSON and binary data",
                field=f"data[{i}]",
                reason="a batch is all JSON or all bytes",
            )
        parts.append(blob)
        total += len(blob)
        offsets.append(total)
    return kind or "json", b"".join(parts), offsets
