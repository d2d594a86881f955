"""Encoding producer data into the one-buffer form the Rust core takes."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sealbus._sealbus import encode_json, encode_json_batch
from sealbus.errors import InvalidEvent

# The core writes plain data (exact dicts with string keys, lists, strings, numbers,
# booleans, None) itself, several times faster; anything else, and every error, is
# this encoder's.
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode

BinaryLike = bytes | bytearray | memoryview


def encode_one(data: Any, index: int = 0) -> tuple[str, bytes]:
    """``("binary", bytes)`` for bytes-like data, else ``("json", compact JSON)``."""
    if isinstance(data, BinaryLike):
        return "binary", bytes(data)
    blob = encode_json(data)
    if blob is not None:
        return "json", blob
    try:
        return "json", _dumps(data).encode()
    except (TypeError, ValueError) as exc:
        raise InvalidEvent(
            f"invalid event: data[{index}]: not JSON-serialisable ({exc})",
            field=f"data[{index}]",
            reason=str(exc),
        ) from None


class BatchEncoder:
    """Encodes a batch one item at a time (so a caller may pause between items) into
    one kind, one buffer and n + 1 offsets."""

    def __init__(self) -> None:
        self.kind: str | None = None
        self.parts: list[bytes] = []
        self.offsets = [0]

    def add(self, index: int, item: Any) -> None:
        k, blob = encode_one(item, index)
        if self.kind is None:
            self.kind = k
        elif k != self.kind:
            raise InvalidEvent(
                f"invalid event: data[{index}]: a batch mixes JSON and binary data",
                field=f"data[{index}]",
                reason="a batch is all JSON or all bytes",
            )
        self.parts.append(blob)
        self.offsets.append(self.offsets[-1] + len(blob))

    def result(self) -> tuple[str, bytes, list[int]]:
        return self.kind or "json", b"".join(self.parts), self.offsets


def encode_batch(items: Iterable[Any]) -> tuple[str, bytes, list[int]]:
    """One kind, one buffer and n + 1 offsets for a batch of event data."""
    fast = encode_json_batch(items)
    if fast is not None:
        return "json", fast[0], fast[1]
    enc = BatchEncoder()
    for i, item in enumerate(items):
        enc.add(i, item)
    return enc.result()
