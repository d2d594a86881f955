"""sealbus: a secure, high-throughput event router for Python services, Rust inside.

>>> import sealbus
>>> router = sealbus.Router()
"""

from __future__ import annotations

# First: loads the extension with its allocator tuned (see the module).
import sealbus._allocator  # noqa: F401
from sealbus._sealbus import (
    DeliveryBatch,
    Event,
    ManualClock,
    Message,
    PatternSet,
    Receipt,
    Receipts,
    SchemaRegistry,
    __version__,
    test_event_pattern,
)
from sealbus.aead import AesGcm
from sealbus.alerts import AlertConfig
from sealbus.errors import *  # noqa: F403
from sealbus.errors import __all__ as _errors_all
from sealbus.keys import KeyRing
from sealbus.principal import Principal
from sealbus.router import Policy, Producer, Router, Schemas
from sealbus.select import Selector
from sealbus.subscription import Subscription

__all__ = [
    "AesGcm",
    "AlertConfig",
    "KeyRing",
    "DeliveryBatch",
    "Event",
    "ManualClock",
    "Message",
    "PatternSet",
    "Policy",
    "Principal",
    "Producer",
    "Receipt",
    "Receipts",
    "Router",
    "SchemaRegistry",
    "Schemas",
    "Selector",
    "Subscription",
    "__version__",
    "test_event_pattern",
    *_errors_all,
]
