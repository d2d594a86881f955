"""A router's Ed25519 identity (defined in :mod:`sealbus.identity`; the bridge signs
with it and the audit trail signs its checkpoints with it)."""

from sealbus.identity import Identity, IdentityFileError, verify

__all__ = ["Identity", "IdentityFileError", "verify"]
