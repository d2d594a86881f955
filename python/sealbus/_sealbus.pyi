"""Type stubs for the private extension module built from rust/sealbus-py."""

__version__: str
