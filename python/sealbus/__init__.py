"""sealbus: a secure, high-throughput event router for Python services, Rust inside."""

from __future__ import annotations

from sealbus._sealbus import SchemaRegistry, __version__
from sealbus.errors import *  # noqa: F403
from sealbus.errors import __all__ as _errors_all

__all__ = ["SchemaRegistry", "__version__", *_errors_all]
