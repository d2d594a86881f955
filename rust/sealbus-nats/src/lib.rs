//! sealbus routers joined through NATS JetStream, on the NATS maintainers' Rust
//! client: the bridge's export, an outbox read from the router's own log
//! ([`export::Exporter`]). The binding (`sealbus.nats.Bridge`) starts it and holds
//! the import, the connection options and the counters together.

pub mod export;

pub use export::{ExportConfig, ExportStats, Exporter, Stamp, TraceHook};
