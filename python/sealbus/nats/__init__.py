"""Routers joined through NATS JetStream (the NATS client is in the wheel, in the core).

:class:`Bridge` exports a router's events to JetStream through its own log and
imports other routers' events with the same checks as a local publish; each router
signs what it exports with its :class:`Identity`, and payloads cross the wire sealed.
"""

from __future__ import annotations

from sealbus.nats.bridge import Bridge, BridgeError
from sealbus.nats.identity import Identity, IdentityFileError
from sealbus.nats.wire import SignatureRefused, WireError

__all__ = ["Bridge", "BridgeError", "Identity", "IdentityFileError", "SignatureRefused", "WireError"]
