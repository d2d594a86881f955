//! Replay (`route/replay.rs`): stored events in log order from an offset, a time or
//! the start, filtered by type and pattern, each re-checked against the reader's
//! grants, and whole however small the batches it is read in.

use std::sync::Arc;

use proptest::prelude::*;

use super::{n_of, Bench};
use crate::envelope::parse_time;
use crate::error::{Action, Error};
use crate::pattern::Pattern;
use crate::route::{Replay, RouterConfig};
use crate::seal::KeyRing;

const TYPES: [&str; 3] = ["t.a", "t.b", "u.a"];

fn reader(b: &mut Bench) -> [u8; 32] {
    let t = b.principal("r");
    b.router
        .allow("r", Action::Subscribe, "t.*")
        .expect("allow");
    t
}

/// Publish `ns` of `event_type`, stamped `second` seconds into 2026.
fn publish_at(b: &Bench, event_type: &str, ns: &[u64], second: u32) -> Vec<u64> {
    let text = format!("2026-01-01T00:00:{second:02}Z");
    let ns_time = parse_time(&text).expect("time");
    let mut events = b.events(event_type, ns);
    for e in &mut events {
        e.time = Arc::from(text.as_str());
        e.time_ns = ns_time;
    }
    b.router
        .enqueue(events, None)
        .expect("publish")
        .iter()
        .map(|r| r.offset.expect("stored"))
        .collect()
}

/// Read a whole replay, `batch` events at a time.
fn drain(b: &Bench, mut r: Replay, batch: usize) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    loop {
        let got = b.router.replay_next(&mut r, batch).expect("replay");
        assert!(got.len() <= batch);
        if got.is_empty() {
            return out;
        }
        out.extend(got.iter().map(|e| (e.event_type.to_string(), n_of(e))));
    }
}

#[derive(Debug, Clone)]
enum Since {
    Start,
    Offset(u64),
    Second(u32),
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// A replay from an offset, from a time (the first record stamped at or after
    /// it, with times out of order too) or from the start returns exactly the stored
    /// events from there on of the types asked for, in log order, whatever the
    /// batch size it is read with.
    #[test]
    fn a_replay_returns_exactly_the_stored_events_from_its_start(
        batches in proptest::collection::vec((0..TYPES.len(), 1usize..4, 0u32..8), 1..8),
        glob in prop_oneof![Just("t.*"), Just("t.a")],
        since in prop_oneof![
            Just(Since::Start),
            (0u64..24).prop_map(Since::Offset),
            (0u32..9).prop_map(Since::Second),
        ],
        batch in 1usize..5,
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut b = Bench::durable(dir.path());
        let token = reader(&mut b);
        // (offset, type, n, second) of every stored event.
        let mut stored = Vec::new();
        let mut n = 0;
        for (t, k, second) in batches {
            let values: Vec<u64> = (n..n + k as u64).collect();
            n += k as u64;
            let offsets = publish_at(&b, TYPES[t], &values, second);
            for (o, v) in offsets.into_iter().zip(values) {
                stored.push((o, TYPES[t], v, second));
            }
        }
        let from = match since {
            Since::Start => 0,
            Since::Offset(o) => o,
            Since::Second(s) => stored.iter().find(|e| e.3 >= s).map_or(n, |e| e.0),
        };
        let want: Vec<(String, u64)> = stored
            .iter()
            .filter(|e| e.0 >= from && ((glob == "t.*" && e.1.starts_with("t.")) || e.1 == glob))
            .map(|e| (e.1.to_owned(), e.2))
            .collect();
        let (offset, time) = match since {
            Since::Start => (None, None),
            Since::Offset(o) => (Some(o), None),
            Since::Second(s) => (None, Some(parse_time(&format!("2026-01-01T00:00:{s:02}Z")).expect("time"))),
        };
        let replay = |b: &Bench| {
            b.router
                .replay("r", &token, vec![glob.to_owned()], offset, time, None)
                .expect("replay")
        };
        prop_assert_eq!(drain(&b, replay(&b), batch), want.clone());
        prop_assert_eq!(drain(&b, replay(&b), 10_000), want);
    }
}

/// A replay re-checks the reader's grant for every event: a type revoked after it
/// started is skipped. It ends where the log ended when it started, and its pattern
/// filters.
#[test]
fn a_replay_rechecks_grants_and_ends_where_it_started() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut b = Bench::durable(dir.path());
    let token = reader(&mut b);
    b.router
        .allow("r", Action::Subscribe, "t.a")
        .expect("allow");
    publish_at(&b, "t.a", &[1, 2], 1);
    publish_at(&b, "t.b", &[3], 1);
    publish_at(&b, "t.a", &[4], 1);
    let all = b
        .router
        .replay("r", &token, vec!["t.*".into()], None, None, None)
        .expect("replay");
    let later = b
        .router
        .replay("r", &token, vec!["t.*".into()], None, None, None)
        .expect("replay");
    publish_at(&b, "t.a", &[5], 1);
    b.router
        .revoke("r", Action::Subscribe, "t.*")
        .expect("revoke");
    let got: Vec<u64> = drain(&b, all, 2).into_iter().map(|x| x.1).collect();
    assert_eq!(
        got,
        [1, 2, 4],
        "t.b no longer readable, 5 came after the start"
    );
    b.router
        .allow("r", Action::Subscribe, "t.*")
        .expect("allow");
    let got: Vec<u64> = drain(&b, later, 100).into_iter().map(|x| x.1).collect();
    assert_eq!(got, [1, 2, 3, 4]);
    let pattern = Pattern::parse_json(r#"{"data": {"n": [2, 5]}}"#).expect("pattern");
    let filtered = b
        .router
        .replay(
            "r",
            &token,
            vec!["t.*".into()],
            Some(1),
            None,
            Some(pattern),
        )
        .expect("replay");
    let got: Vec<u64> = drain(&b, filtered, 1).into_iter().map(|x| x.1).collect();
    assert_eq!(got, [2, 5]);
    // A type the reader may not read is refused up front, and so is a wrong token.
    let denied = b
        .router
        .replay("r", &token, vec!["u.*".into()], None, None, None);
    assert!(
        matches!(denied, Err(Error::PolicyDenied { .. })),
        "{denied:?}"
    );
    assert!(b
        .router
        .replay("r", &[1u8; 32], vec!["t.a".into()], None, None, None)
        .is_err());
}

/// On a sealing router the log holds ciphertext; a replay hands back the plaintext,
/// and its pattern sees the opened data.
#[test]
fn a_replay_opens_what_the_log_holds_sealed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = crate::log::Log::open(&dir.path().join("log"), crate::log::LogOptions::default())
        .expect("log");
    let cursors = crate::log::CursorStore::open(&dir.path().join("cursors")).expect("cursors");
    let mut b = Bench::with(RouterConfig {
        allow_schemaless: true,
        keys: Some(Arc::new(KeyRing::generate().expect("keys"))),
        log: Some((Arc::new(log), cursors)),
        ..RouterConfig::default()
    });
    let token = reader(&mut b);
    publish_at(&b, "t.a", &[41, 42], 3);
    let raw = b
        .router
        .log()
        .expect("log")
        .read(0, 10, 1 << 20)
        .expect("read");
    assert!(raw
        .iter()
        .all(|r| !r.payload.windows(7).any(|w| w == br#""n":42"#)));
    let pattern = Pattern::parse_json(r#"{"data": {"n": [42]}}"#).expect("pattern");
    let r = b
        .router
        .replay("r", &token, vec!["t.a".into()], None, None, Some(pattern))
        .expect("replay");
    assert_eq!(drain(&b, r, 10), [("t.a".to_owned(), 42)]);
}
