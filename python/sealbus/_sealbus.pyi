"""Type stubs for the private extension module built from rust/sealbus-py."""

__version__: str

# ---- seal ------------------------------------------------------------------------
from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import Any, TypedDict

_Buffer = bytes | bytearray | memoryview
_Offsets = Sequence[int] | memoryview | Any  # lists, memoryviews, numpy int arrays

class AesGcm:
    def __init__(self, key: _Buffer) -> None: ...
    @staticmethod
    def generate_key(bit_length: int = 256) -> bytes: ...
    def encrypt(
        self, nonce: _Buffer, data: _Buffer, associated_data: _Buffer | None = None
    ) -> bytes: ...
    def decrypt(
        self, nonce: _Buffer, data: _Buffer, associated_data: _Buffer | None = None
    ) -> bytes: ...
    def encrypt_batch(
        self,
        nonces: _Buffer,
        buffer: _Buffer,
        offsets: _Offsets,
        aads: _Buffer | Sequence[_Buffer] | None = None,
        aad_offsets: _Offsets | None = None,
    ) -> tuple[bytes, memoryview]: ...
    def decrypt_batch(
        self,
        nonces: _Buffer,
        buffer: _Buffer,
        offsets: _Offsets,
        aads: _Buffer | Sequence[_Buffer] | None = None,
        aad_offsets: _Offsets | None = None,
    ) -> tuple[bytes, memoryview]: ...

class KeyInfo(TypedDict):
    id: str
    state: str
    created: int
    seals: int

class KeyRing:
    @staticmethod
    def generate(
        *, max_seals_per_key: int | None = None, reserve_chunk: int | None = None
    ) -> KeyRing: ...
    @staticmethod
    def create(
        path: str | PathLike[str],
        *,
        max_seals_per_key: int | None = None,
        reserve_chunk: int | None = None,
    ) -> KeyRing: ...
    @staticmethod
    def load(
        path: str | PathLike[str],
        *,
        max_seals_per_key: int | None = None,
        reserve_chunk: int | None = None,
    ) -> KeyRing: ...
    @staticmethod
    def load_or_create(
        path: str | PathLike[str],
        *,
        max_seals_per_key: int | None = None,
        reserve_chunk: int | None = None,
    ) -> KeyRing: ...
    @staticmethod
    def from_env(var: str) -> KeyRing: ...
    def persist(self, path: str | PathLike[str]) -> None: ...
    @property
    def path(self) -> Path | None: ...
    @property
    def active_key_id(self) -> str: ...
    @property
    def max_seals_per_key(self) -> int: ...
    def key_ids(self) -> list[str]: ...
    def keys(self) -> list[KeyInfo]: ...
    def rotate(self) -> str: ...
    def retire(self, key_id: str) -> None: ...
    def destroy(self, key_id: str) -> None: ...
    def seal(
        self, data: _Buffer, *, event_id: str, event_type: str, source: str, schema_version: int
    ) -> bytes: ...
    def open(
        self, frame: _Buffer, *, event_id: str, event_type: str, source: str, schema_version: int
    ) -> bytes: ...
    def seal_batch(
        self,
        buffer: _Buffer,
        offsets: _Offsets,
        *,
        event_ids: Sequence[str],
        event_type: str | Sequence[str],
        source: str | Sequence[str],
        schema_version: int | Sequence[int],
    ) -> tuple[bytes, memoryview]: ...
    def open_batch(
        self,
        frames: _Buffer,
        offsets: _Offsets,
        *,
        event_ids: Sequence[str],
        event_type: str | Sequence[str],
        source: str | Sequence[str],
        schema_version: int | Sequence[int],
    ) -> tuple[bytes, memoryview]: ...

class FrameInfo(TypedDict):
    version: int
    mode: str
    key_id: str
    nonce: bytes
    recipients: list[tuple[str, bytes, bytes]]
    sealed: bytes

def decode_frame(frame: _Buffer) -> FrameInfo: ...
def e2e_seal_batch(
    data_key: _Buffer,
    data_key_id: str,
    recipients: Sequence[tuple[str, bytes, bytes]],
    buffer: _Buffer,
    offsets: _Offsets,
    *,
    event_ids: Sequence[str],
    event_type: str | Sequence[str],
    source: str | Sequence[str],
    schema_version: int | Sequence[int],
) -> tuple[bytes, memoryview]: ...
def e2e_open_batch(
    data_key: _Buffer,
    data_key_id: str,
    frames: _Buffer,
    offsets: _Offsets,
    *,
    event_ids: Sequence[str],
    event_type: str | Sequence[str],
    source: str | Sequence[str],
    schema_version: int | Sequence[int],
) -> tuple[bytes, memoryview]: ...
