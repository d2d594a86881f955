"""Type stubs for the private extension module built from rust/sealbus-py."""

import os
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from os import PathLike
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, TypedDict, final

from typing_extensions import Buffer

from sealbus.errors import SealbusError, ValidationError

__version__: str

# ---- router (rust/sealbus-py/src/router.rs) -------------------------------------------

def new_event_ids(n: int) -> list[str]: ...

@final
class ManualClock:
    def __new__(cls) -> ManualClock: ...
    def advance(self, seconds: float) -> None: ...
    @property
    def now(self) -> float: ...

@final
class Event:
    @property
    def id(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def specversion(self) -> str: ...
    @property
    def time(self) -> str: ...
    @property
    def datacontenttype(self) -> str | None: ...
    @property
    def dataschema(self) -> str | None: ...
    @property
    def subject(self) -> str | None: ...
    @property
    def traceparent(self) -> str | None: ...
    @property
    def schema_version(self) -> int | None: ...
    @property
    def offset(self) -> int | None: ...
    @property
    def data(self) -> Any: ...
    @property
    def kind(self) -> Literal["json", "binary", "none"]: ...
    @property
    def data_bytes(self) -> bytes: ...
    def to_json(self) -> str: ...
    @staticmethod
    def from_json(text: str | bytes) -> Event: ...
    def __hash__(self) -> int: ...

@final
class Receipt:
    @property
    def id(self) -> str: ...
    @property
    def time(self) -> str: ...
    @property
    def schema_version(self) -> int | None: ...
    @property
    def routed(self) -> int: ...
    @property
    def offset(self) -> int | None: ...

@final
class Receipts:
    """The receipts of one publish call: a read-only sequence of Receipt."""
    def __len__(self) -> int: ...
    def __getitem__(self, i: int, /) -> Receipt: ...
    def __iter__(self) -> Iterator[Receipt]: ...
    @property
    def ids(self) -> list[str]: ...
    @property
    def count(self) -> int: ...
    @property
    def first_offset(self) -> int | None: ...
    @property
    def routed(self) -> list[int]: ...

@final
class Message:
    @property
    def tag(self) -> int: ...
    @property
    def attempt(self) -> int: ...
    @property
    def event(self) -> Event: ...
    @property
    def data(self) -> Any: ...
    @property
    def id(self) -> str: ...
    @property
    def type(self) -> str: ...
    def ack(self) -> bool: ...
    def nack(self) -> bool: ...

@final
class DeliveryBatch:
    def __len__(self) -> int: ...
    @property
    def buffer(self) -> memoryview: ...
    @property
    def offsets(self) -> list[int]: ...
    @property
    def ids(self) -> list[str]: ...
    @property
    def tags(self) -> list[int]: ...
    @property
    def received_ns(self) -> int: ...
    @property
    def end_to_end(self) -> list[int]: ...
    def __getitem__(self, i: int, /) -> Message: ...
    def open_end_to_end(
        self, key: RecipientKey, recipient_id: str, validate: bool = True
    ) -> tuple[Buffer, list[int], list[SealbusError | None]] | None: ...
    def cloudevents(self) -> tuple[bytes, list[int], list[int], list[str], list[int | None]]: ...
    def ack(self) -> int: ...
    def nack(self) -> int: ...

@final
class SubscriptionCore:
    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def principal(self) -> str: ...
    @property
    def types(self) -> list[str]: ...
    @property
    def closed(self) -> bool: ...
    @property
    def durable(self) -> bool: ...
    def poll(self, max_messages: int, timeout: float | None) -> list[Message]: ...
    def poll_batch(self, max_messages: int, timeout: float | None) -> DeliveryBatch: ...
    def ack(self, tags: list[int]) -> int: ...
    def nack(self, tags: list[int]) -> int: ...
    def stats(self) -> dict[str, int]: ...
    def dead_letters(self, max: int = ..., remove: bool = ...) -> list[tuple[Event, int, str]]: ...
    def close(self, forget: bool = ...) -> bool: ...

@final
class SelectorCore:
    def __new__(cls, subscriptions: list[SubscriptionCore], busy_poll: float = ...) -> SelectorCore: ...
    def __len__(self) -> int: ...
    def poll_batch(self, max_messages: int, timeout: float | None) -> list[tuple[int, DeliveryBatch]]: ...
    def poll(self, max_messages: int, timeout: float | None) -> list[tuple[int, list[Message]]]: ...

@final
class Watch:
    def close(self) -> None: ...

@final
class LoopBell:
    def __new__(cls) -> LoopBell: ...
    def fileno(self) -> int: ...
    def take(self) -> list[int]: ...
    def watch(self, subscriptions: list[SubscriptionCore], token: int) -> Watch: ...
    def redelivery_in(self, subscriptions: list[SubscriptionCore]) -> float | None: ...

@final
class CommitterCore:
    def __new__(cls, router: RouterCore) -> CommitterCore: ...
    def fileno(self) -> int: ...
    def submit(
        self,
        principal: str,
        token: bytes,
        event_type: str,
        buffer: bytes,
        offsets: list[int],
        kind: str,
        version: int | None,
        attrs: dict[str, str | None] | None,
        timeout: float | None,
        ids: list[str] | None,
        single: bool,
    ) -> None: ...
    def flush(self) -> None: ...
    def take(self) -> list[Receipt | Receipts | BaseException]: ...
    def stop(self) -> None: ...

@final
class ReplayCore:
    def next_batch(self, max: int) -> list[Event]: ...

@final
class RouterCore:
    def __new__(
        cls,
        allow_schemaless: bool = ...,
        clock: ManualClock | None = None,
        path: str | None = None,
        fsync: str = ...,
        keys: KeyRing | None = None,
        segment_bytes: int | None = None,
        retention_max_age: float | None = None,
        retention_max_bytes: int | None = None,
        retention_respect_consumers: bool = ...,
        max_event_bytes: int = ...,
        max_batch_bytes: int = ...,
        seal_subject: bool = ...,
    ) -> RouterCore: ...
    @property
    def durable(self) -> bool: ...
    @property
    def max_event_bytes(self) -> int: ...
    @property
    def max_batch_bytes(self) -> int: ...
    def check_sizes(self, offsets: list[int]) -> None: ...
    @property
    def sealed(self) -> bool: ...
    def flush(self) -> None: ...
    def apply_retention(self) -> dict[str, int] | None: ...
    def close(self) -> None: ...
    def replay(
        self,
        principal: str,
        token: bytes,
        types: list[str],
        since_offset: int | None = None,
        since_time: str | None = None,
        pattern_json: str | None = None,
    ) -> ReplayCore: ...
    def register_principal(self, name: str) -> bytes: ...
    def allow(self, principal: str, action: str, glob: str) -> None: ...
    def revoke(self, principal: str, action: str, glob: str) -> bool: ...
    def allows(self, principal: str, action: str, type_or_glob: str) -> bool: ...
    def grants(self, principal: str) -> tuple[list[str], list[str]]: ...
    def set_public_key(self, principal: str, key: bytes) -> None: ...
    def require_end_to_end(self, glob: str) -> None: ...
    def requires_end_to_end(self, event_type: str) -> bool: ...
    def recipients(self, event_type: str) -> list[tuple[str, bytes]]: ...
    def register_schema(
        self, event_type: str, schema_json: str, version: int | None = None, compatibility: str = ...
    ) -> int: ...
    def schema_latest_version(self, event_type: str) -> int | None: ...
    def validate_data(self, event_type: str, data: bytes) -> int: ...
    def publish(
        self,
        principal: str,
        token: bytes,
        event_type: str,
        buffer: bytes,
        offsets: list[int],
        kind: str = ...,
        version: int | None = None,
        attrs: dict[str, str | None] | None = None,
        block_timeout: float | None = None,
        ids: list[str] | None = None,
    ) -> Receipts: ...
    def subscribe(
        self,
        principal: str,
        token: bytes,
        types: list[str],
        name: str | None = None,
        pattern_json: str | None = None,
        max_pending: int = ...,
        on_full: str = ...,
        ack_timeout: float = ...,
        max_deliveries: int = ...,
        dlq_capacity: int = ...,
        durable: bool = ...,
        start: str = ...,
        max_backlog: int | None = None,
        busy_poll: float = ...,
    ) -> SubscriptionCore: ...
    def counters(self) -> dict[str, int]: ...
    def subscriptions(self) -> list[SubscriptionCore]: ...

# ---- pattern -----------------------------------------------------------------------

_Json = dict[str, Any] | str | bytes | bytearray | memoryview

@final
class PatternSet:
    """Named Amazon EventBridge event patterns, compiled into one matcher."""

    def __init__(self) -> None: ...
    def add(self, name: str, pattern: _Json) -> None: ...
    def remove(self, name: str) -> bool: ...
    def __len__(self) -> int: ...
    def __contains__(self, name: object, /) -> bool: ...
    def names(self) -> list[str]: ...
    def prepare(self) -> None: ...
    def matches(self, event: _Json) -> list[str]: ...
    def matches_batch(
        self, events: bytes | bytearray | memoryview | Iterable[_Json], offsets: Any = None
    ) -> list[list[str]]: ...
    def matches_batch_indices(
        self, events: bytes | bytearray | memoryview | Iterable[_Json], offsets: Any = None
    ) -> tuple[list[str], array[int], array[int]]: ...

def test_event_pattern(pattern: _Json, event: _Json) -> bool: ...

# ---- seal ------------------------------------------------------------------------

_Buffer = bytes | bytearray | memoryview
_Offsets = Sequence[int] | memoryview | Any  # lists, memoryviews, numpy int arrays
_WritableBuffer = bytearray | memoryview | Any  # any writable buffer: mmap, numpy uint8

@final
class AesGcm:
    def __new__(cls, key: _Buffer) -> AesGcm: ...
    @staticmethod
    def generate_key(bit_length: int = ...) -> bytes: ...
    def encrypt(self, nonce: _Buffer, data: _Buffer, associated_data: _Buffer | None = None) -> bytes: ...
    def decrypt(self, nonce: _Buffer, data: _Buffer, associated_data: _Buffer | None = None) -> bytes: ...
    def encrypt_batch(
        self,
        nonces: _Buffer,
        buffer: _Buffer,
        offsets: _Offsets,
        aads: _Buffer | Sequence[_Buffer] | None = None,
        aad_offsets: _Offsets | None = None,
    ) -> tuple[bytes, memoryview]: ...
    def encrypt_batch_into(
        self,
        out: _WritableBuffer,
        nonces: _Buffer,
        buffer: _Buffer,
        offsets: _Offsets,
        aads: _Buffer | Sequence[_Buffer] | None = None,
        aad_offsets: _Offsets | None = None,
    ) -> memoryview: ...
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

@final
class KeyRing:
    @staticmethod
    def generate(*, max_seals_per_key: int | None = None, reserve_chunk: int | None = None) -> KeyRing: ...
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
    def seal(self, data: _Buffer, *, event_id: str, event_type: str, source: str, schema_version: int) -> bytes: ...
    def open(self, frame: _Buffer, *, event_id: str, event_type: str, source: str, schema_version: int) -> bytes: ...
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
    def seal_batch_into(
        self,
        out: _WritableBuffer,
        buffer: _Buffer,
        offsets: _Offsets,
        *,
        event_ids: Sequence[str],
        event_type: str | Sequence[str],
        source: str | Sequence[str],
        schema_version: int | Sequence[int],
    ) -> memoryview: ...
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

class KeyFileKey(TypedDict):
    id: str
    state: str
    created: int
    seals: int
    check: str | None

class KeyFileReport(TypedDict):
    path: str
    version: int
    verified: bool
    active: str
    max_seals_per_key: int | None
    keys: list[KeyFileKey]

def inspect_key_file(path: str | PathLike[str]) -> KeyFileReport: ...
def inspect_key_document(data: bytes, name: str = ...) -> KeyFileReport: ...

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

@final
class Signer:
    """An Ed25519 key pair (aws-lc-rs), built from its 32-byte seed."""

    def __new__(cls, seed: bytes) -> Signer: ...
    @property
    def public_bytes(self) -> bytes: ...
    def sign(self, message: bytes) -> bytes: ...

def ed25519_verify(public_key: bytes, signature: bytes, message: bytes) -> bool: ...

@final
class RecipientKey:
    def __new__(cls, private_bytes: _Buffer) -> RecipientKey: ...
    @property
    def public_bytes(self) -> bytes: ...

def e2e_seal_for(
    recipients: Sequence[tuple[str, bytes]],
    buffer: _Buffer,
    offsets: _Offsets,
    *,
    event_ids: Sequence[str],
    event_type: str,
    source: str | Sequence[str],
    schema_version: int | Sequence[int],
) -> tuple[bytes, memoryview]: ...
def e2e_open_for(
    key: RecipientKey,
    recipient_id: str,
    frames: _Buffer,
    offsets: _Offsets,
    *,
    event_ids: Sequence[str],
    event_type: str | Sequence[str],
    source: str | Sequence[str],
    schema_version: int | Sequence[int],
) -> tuple[bytes, memoryview]: ...

# ---- log ------------------------------------------------------------------------

_FsyncPolicy = Literal["always", "batch", "never"]

@final
class SegmentLog:
    """The durable segment log. Appends are atomic and durable on return under
    ``fsync="always"`` and ``"batch"``; concurrent appends share fsyncs."""

    def __new__(
        cls,
        path: str | os.PathLike[str],
        fsync: _FsyncPolicy = ...,
        segment_bytes: int = ...,
        index_interval_bytes: int = ...,
        max_record_bytes: int = ...,
        retention_max_age: float | None = None,
        retention_max_bytes: int | None = None,
        respect_consumers: bool = ...,
        read_only: bool = ...,
    ) -> SegmentLog: ...
    def append_batch(self, buffer: bytes, offsets: Sequence[int], timestamp_ns: int | None = None) -> list[int]: ...
    def append(self, data: bytes, timestamp_ns: int | None = None) -> int: ...
    def read(self, from_offset: int, max_records: int = ..., max_bytes: int = ...) -> list[tuple[int, int, bytes]]: ...
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
    def apply_retention(self, min_needed_offset: int | None = None, now_ns: int | None = None) -> dict[str, int]: ...
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
    """Durable per-consumer cursors, saved in one append-only journal."""

    def __new__(cls, path: str | os.PathLike[str], read_only: bool = ...) -> CursorStore: ...
    def load(self, consumer: str) -> dict[str, Any] | None: ...
    def save(
        self,
        consumer: str,
        committed: int,
        acked: Sequence[tuple[int, int]] = ...,
        deliveries: Mapping[int, int] = ...,
        dead_letters: Sequence[tuple[int, int, int, str]] = ...,
        owner: str | None = ...,
    ) -> None: ...
    def remove(self, consumer: str) -> bool: ...
    def consumers(self) -> list[str]: ...
    def min_committed(self) -> int | None: ...
    @property
    def path(self) -> str: ...

# ---- schema ---------------------------------------------------------------------------

_Compat = Literal["none", "backward", "forward", "full"]

@final
class SchemaRegistry:
    """Versioned JSON Schemas (draft 7, 2020-12) per event type; compatibility is
    checked against the latest version on registration; formats are asserted."""

    def __new__(cls, *, allow_schemaless: bool = ...) -> SchemaRegistry: ...
    @property
    def allow_schemaless(self) -> bool: ...
    def register(
        self,
        event_type: str,
        schema: dict[str, Any] | bool | str,
        version: int | None = None,
        compatibility: _Compat = ...,
    ) -> int: ...
    def versions(self, event_type: str) -> list[int]: ...
    def latest_version(self, event_type: str) -> int | None: ...
    def types(self) -> list[str]: ...
    def get(self, event_type: str, version: int | None = None) -> dict[str, Any] | bool: ...
    def validate(self, event_type: str, data: object, version: int | None = None) -> int: ...
    def check_batch(
        self,
        event_type: str,
        buffer: bytes | str | Buffer,
        offsets: Sequence[int] | Buffer,
        version: int | None = None,
        parallel: bool = ...,
    ) -> list[bool]: ...
    def validate_batch(
        self,
        event_type: str,
        buffer: bytes | str | Buffer,
        offsets: Sequence[int] | Buffer,
        version: int | None = None,
        parallel: bool = ...,
    ) -> list[ValidationError | None]: ...

@final
class AuditTrailCore:
    def __new__(
        cls, dir: PathLike[str] | str, seed: bytes, checkpoint_every: int, sync_interval: float
    ) -> AuditTrailCore: ...
    @property
    def public_key(self) -> bytes: ...
    def __len__(self) -> int: ...
    def record(self, kind: str, time_ns: int, details_json: str) -> None: ...
    def record_plain(self, kind: str, time_ns: int, details: object) -> bool: ...
    def flush(self) -> None: ...
    def checkpoint(self, time_ns: int) -> str: ...
    def close(self) -> None: ...

def audit_verify(dir: PathLike[str] | str, checkpoint: str | None = None) -> dict[str, Any]: ...
def audit_entries(dir: PathLike[str] | str) -> list[str]: ...
def audit_prove(
    dir: PathLike[str] | str, event_id: str, checkpoint: str
) -> tuple[int, int, bytes, list[bytes]] | None: ...
def audit_verify_proof(index: int, size: int, entry: bytes, path: list[bytes], checkpoint: str) -> bool: ...

@final
class AlertDetectorCore:
    def __new__(
        cls,
        quiet: str,
        *,
        clock: ManualClock | None = None,
        window: float = 1.0,
        rate_factor: float = 10.0,
        rate_min_events: int = 1_000,
        rate_warmup_windows: int = 5,
        baseline_weight: float = 0.2,
        refused_burst: int = 5,
        refused_window: float = 10.0,
        novelty_after: float = 60.0,
        lag_limit: int = 100_000,
        open_failures: int = 1,
        signature_refusals: int = 1,
        cooldown: float = 60.0,
    ) -> AlertDetectorCore: ...
    def now_ns(self) -> int: ...
    def observe_publish(self, principal: str, event_type: str, count: int) -> None: ...
    def observe_refused(self, principal: str, event_type: str, rule: str, count: int) -> None: ...
    def observe_lag(self, consumer: str, principal: str, lag: int) -> None: ...
    def observe_open_failed(self, place: str, n: int) -> None: ...
    def observe_signature_refused(self, remote: str, n: int) -> None: ...
    def drain(self) -> list[tuple[str, str, str, str]]: ...
    @property
    def raised(self) -> int: ...
    @staticmethod
    def kinds() -> list[str]: ...

# ---- bridge wire (rust/sealbus-py/src/wire.rs) -------------------------------------------

def wire_encode(
    router: str,
    event_type: str,
    cloudevents: bytes,
    offsets: list[int],
    ids: list[str],
    versions: list[int | None],
    transit: KeyRing,
    signer: Signer,
) -> tuple[bytes, str, str]: ...
def wire_open(
    subject: str, body: bytes, signature: str | None, trust: dict[str, bytes], transit: KeyRing
) -> tuple[str, str, list[str], list[int | None], bytes, list[int]]: ...
def wire_open_runs(
    subject: str, body: bytes, signature: str | None, trust: dict[str, bytes], transit: KeyRing
) -> tuple[
    str,
    str,
    list[str],
    list[tuple[int, str, str, str | None, str | None, str | None, str | None, int | None]],
    bytes,
    list[int],
    list[str],
]: ...

# ---- bridge export (rust/sealbus-py/src/export.rs) ----------------------------------------

@final
class Exporter:
    """The bridge's export on a thread of its own: polls ``sub``, seals, signs and
    publishes to JetStream, and acknowledges the log once JetStream holds each poll."""

    def __new__(
        cls,
        sub: SubscriptionCore,
        servers: Sequence[str],
        *,
        router: str,
        transit: KeyRing,
        signer: Signer,
        client_name: str,
        stream: str,
        replicas: int = 1,
        tls_ca: str | PathLike[str] | None = None,
        creds: str | PathLike[str] | None = None,
        nkey_seed: str | PathLike[str] | None = None,
        poll: int = 2048,
        max_events: int = 256,
        max_bytes: int = 524288,
        max_in_flight: int = 64,
        timeout: float = 5.0,
        trace: Callable[[list[tuple[str | None, str, int]]], None] | None = None,
        stamps: bool = False,
    ) -> Exporter: ...
    def wait_ready(self, timeout: float) -> bool: ...
    def flush(self, timeout: float | None = None) -> bool: ...
    def close(self) -> str | None: ...
    def stats(self) -> dict[str, int]: ...
    @property
    def error(self) -> str | None: ...
    def take_stamps(self) -> list[tuple[str, list[str], int, int, int, int]]: ...

@final
class Importer:
    """The bridge's import on threads of its own: a JetStream durable push consumer
    whose messages are checked, opened and published into ``core`` as their remote
    principals, acknowledged once durable."""

    def __new__(
        cls,
        core: RouterCore,
        servers: Sequence[str],
        *,
        stream: str,
        replicas: int = 1,
        durable: str,
        deliver: str,
        filter_subjects: Sequence[str],
        trust: Mapping[str, bytes],
        transit: KeyRing,
        principal: Callable[[str], bytes],
        report: Callable[
            [
                list[tuple[str, str | None, str]],
                list[tuple[str, str, str | None, list[str]]],
                list[tuple[str, str, SealbusError, int]],
            ],
            None,
        ]
        | None = None,
        client_name: str,
        tls_ca: str | PathLike[str] | None = None,
        creds: str | PathLike[str] | None = None,
        nkey_seed: str | PathLike[str] | None = None,
        fetch: int = 64,
        delivery_bytes: int = 2097152,
        commit_events: int = 2048,
        block_timeout: float = 1.0,
        seen: Sequence[tuple[str, str]] | None = None,
        seen_capacity: int = 1000000,
        stamps: bool = False,
    ) -> Importer: ...
    def wait_ready(self, timeout: float) -> bool: ...
    def close(self) -> str | None: ...
    def stats(self) -> dict[str, int]: ...
    @property
    def error(self) -> str | None: ...
    def take_stamps(self) -> list[tuple[str, list[str], int, int, int, int]]: ...

def publish_runs(
    core: RouterCore,
    runs: list[tuple[str, bytes, str, int | None, str, dict[str, str] | None, bytes, list[int], list[str], list[str]]],
    block_timeout: float | None = None,
) -> list[tuple[SealbusError | None, list[tuple[int, SealbusError]]]]: ...
def encode_json(data: object) -> bytes | None: ...
def encode_json_batch(items: object) -> tuple[bytes, list[int]] | None: ...
