"""sealbus: a secure, high-throughput event router for Python services, Rust inside."""

from __future__ import annotations

from sealbus._sealbus import __version__
from sealbus.aead import AesGcm
from sealbus.errors import *  # noqa: F403
from sealbus.errors import __all__ as _errors_all
from sealbus.keys import KeyRing

__all__ = ["AesGcm", "KeyRing", "__version__", *_errors_all]
