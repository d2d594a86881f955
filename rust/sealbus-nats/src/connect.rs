//! How the bridge's threads reach NATS: the servers, TLS, credentials, and a
//! reconnection that never gives up (the export waits in the log, the import in
//! JetStream, for as long as NATS is away).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::ServerAddr;

/// Backoff between reconnection attempts: from 100 ms, doubling, to this.
const RECONNECT_MOST: Duration = Duration::from_secs(2);

/// Where NATS is and how to prove who we are to it.
#[derive(Debug, Clone, Default)]
pub struct Connection {
    /// NATS URLs (`nats://` or `tls://`), tried in turn.
    pub servers: Vec<String>,
    /// The connection's name, as the server lists it.
    pub client_name: String,
    /// A CA file to verify the server with (and TLS required).
    pub tls_ca: Option<PathBuf>,
    /// A NATS credentials file.
    pub creds: Option<PathBuf>,
    /// A file holding an `NKey` seed.
    pub nkey_seed: Option<PathBuf>,
}

/// Connect, retrying the first connection and every later one for as long as the
/// client lives; `reconnects` counts the connections re-established. `who` names
/// the caller in errors.
pub(crate) async fn connect(
    c: &Connection,
    who: &str,
    reconnects: Arc<AtomicU64>,
) -> Result<async_nats::Client, String> {
    let mut opts = match &c.creds {
        Some(path) => async_nats::ConnectOptions::with_credentials_file(path)
            .await
            .map_err(|e| format!("{who}: creds file: {e}"))?,
        None => async_nats::ConnectOptions::new(),
    };
    if let Some(path) = &c.nkey_seed {
        let seed =
            std::fs::read_to_string(path).map_err(|e| format!("{who}: nkey seed file: {e}"))?;
        opts = opts.nkey(seed.trim().to_string());
    }
    if let Some(ca) = &c.tls_ca {
        opts = opts.add_root_certificates(ca.clone()).require_tls(true);
    }
    let first = Arc::new(AtomicBool::new(true));
    opts = opts
        .name(&c.client_name)
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connection_timeout(Duration::from_secs(2))
        .reconnect_delay_callback(|attempts| {
            let shift = u32::try_from(attempts.min(5)).unwrap_or(5);
            (Duration::from_millis(100) * (1 << shift)).min(RECONNECT_MOST)
        })
        .event_callback(move |event| {
            let (counter, first) = (reconnects.clone(), first.clone());
            async move {
                if matches!(event, async_nats::Event::Connected)
                    && !first.swap(false, Ordering::AcqRel)
                {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    let addrs = c
        .servers
        .iter()
        .map(|s| s.parse::<ServerAddr>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{who}: server address: {e}"))?;
    opts.connect(addrs)
        .await
        .map_err(|e| format!("{who}: connect: {e}"))
}
