//! The JetStream stream every bridge of a deployment publishes to and imports from.

use std::time::Duration;

use async_nats::jetstream;

/// How long JetStream remembers a message id to drop a resent copy: longer than an
/// export's retries of one message take.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// The stream's name and its replication when a bridge creates it (3 in a
/// production cluster); it takes every `sealbus.<type>` subject.
#[derive(Debug, Clone)]
pub struct StreamSpec {
    pub name: String,
    pub replicas: usize,
}

impl Default for StreamSpec {
    fn default() -> StreamSpec {
        StreamSpec {
            name: "SEALBUS".into(),
            replicas: 1,
        }
    }
}

/// Bind to the stream, creating it if no bridge has yet. One that exists is taken
/// as it is (an operator may have tuned it).
pub(crate) async fn ensure(js: &jetstream::Context, spec: &StreamSpec) -> Result<(), String> {
    js.get_or_create_stream(jetstream::stream::Config {
        name: spec.name.clone(),
        subjects: vec!["sealbus.>".into()],
        num_replicas: spec.replicas,
        duplicate_window: DUPLICATE_WINDOW,
        ..jetstream::stream::Config::default()
    })
    .await
    .map(|_| ())
    .map_err(|e| format!("stream {}: {e}", spec.name))
}
