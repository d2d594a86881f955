"""Type stubs for the private extension module built from rust/sealbus-py."""

import os
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, final

__version__: str

# ---- log ------------------------------------------------------------------------

_FsyncPolicy = Literal["always", "batch", "never"]

@final
class SegmentLog:
    """The durable segment log. Appends are atomic and durable on return under
    ``fsync="always"`` and ``"batch"``; concurrent appends share fsyncs."""

    def __new__(
        cls,
        path: str | os.PathLike[str],
        fsync: _FsyncPolicy = "batch",
        segment_bytes: int = ...,
        index_interval_bytes: int = 4096,
        max_record_bytes: int = ...,
        retention_max_age: float | None = None,
        retention_max_bytes: int | None = None,
        respect_consumers: bool = True,
        read_only: bool = False,
    ) -> SegmentLog: ...
    def append_batch(
        self, buffer: bytes, offsets: Sequence[int], timestamp_ns: int | None = None
    ) -> list[int]: ...
    def append(self, data: bytes, timestamp_ns: int | None = None) -> int: ...
    def read(
        self, from_offset: int, max_records: int = 1000, max_bytes: int = ...
    ) -> list[tuple[int, int, bytes]]: ...
    def offset_for_time(self, timestamp_ns: int) -> int: ...
    @property
    def next_offset(self) -> int: ...
    @property
    def first_offset(self) -> int: ...
    @property
    def path(self) -> str: ...
    @property
    def closed(self) -> bool: ...
    def stats(self) -> dict[str, Any]: ...
    def segments(self) -> list[dict[str, Any]]: ...
    def apply_retention(
        self, min_needed_offset: int | None = None, now_ns: int | None = None
    ) -> dict[str, int]: ...
    def verify(self) -> dict[str, int]: ...
    def close(self) -> None: ...
    def __enter__(self) -> SegmentLog: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool: ...

@final
class CursorStore:
    """Durable per-consumer cursors, one file each, replaced atomically."""

    def __new__(cls, path: str | os.PathLike[str]) -> CursorStore: ...
    def load(self, consumer: str) -> dict[str, Any] | None: ...
    def save(
        self,
        consumer: str,
        committed: int,
        acked: Sequence[tuple[int, int]] = ...,
        deliveries: Mapping[int, int] = ...,
        dead_letters: Sequence[tuple[int, int, int, str]] = ...,
    ) -> None: ...
    def remove(self, consumer: str) -> bool: ...
    def consumers(self) -> list[str]: ...
    def min_committed(self) -> int | None: ...
    @property
    def path(self) -> str: ...
