"""sealbus: a secure, high-throughput event router for Python services, Rust inside."""

from __future__ import annotations

from sealbus._sealbus import PatternSet, __version__, test_event_pattern
from sealbus.errors import *  # noqa: F403
from sealbus.errors import __all__ as _errors_all

__all__ = ["PatternSet", "__version__", "test_event_pattern", *_errors_all]
