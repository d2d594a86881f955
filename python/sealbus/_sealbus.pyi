"""Type stubs for the private extension module built from rust/sealbus-py."""

__version__: str

# ---- schema ---------------------------------------------------------------------------
from collections.abc import Sequence
from typing import Any, Literal, final

from typing_extensions import Buffer

from sealbus.errors import ValidationError

_Compat = Literal["none", "backward", "forward", "full"]

@final
class SchemaRegistry:
    """Versioned JSON Schemas (draft 7, 2020-12) per event type; compatibility is
    checked against the latest version on registration; formats are asserted."""

    def __new__(cls, *, allow_schemaless: bool = False) -> SchemaRegistry: ...
    @property
    def allow_schemaless(self) -> bool: ...
    def register(
        self,
        event_type: str,
        schema: dict[str, Any] | bool | str,
        version: int | None = None,
        compatibility: _Compat = "backward",
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
        parallel: bool = False,
    ) -> list[bool]: ...
    def validate_batch(
        self,
        event_type: str,
        buffer: bytes | str | Buffer,
        offsets: Sequence[int] | Buffer,
        version: int | None = None,
        parallel: bool = False,
    ) -> list[ValidationError | None]: ...
