//! Durable consumers that take their shares of the held batches (`route/tail.rs`)
//! instead of being handed them by each publish: against a model of what each
//! consumer is owed, through small windows (they fall behind and read back), a small
//! tail (batches dropped before every consumer took them), consumers going offline
//! and restarts.

use std::path::Path;
use std::sync::Arc;

use proptest::prelude::*;

use super::{Bench, WRITER};
use crate::envelope::{Attributes, DataKind};
use crate::error::Action;
use crate::pattern::Pattern;
use crate::route::tail::Tail;
use crate::route::{OnFull, Outgoing, QueueConfig, Start, Subscription};

/// Consumer `i` wants the events whose `k` is `i % KINDS`.
const KINDS: u64 = 3;
const CONSUMERS: usize = 5;

fn config(window: usize) -> QueueConfig {
    QueueConfig {
        max_pending: window,
        on_full: OnFull::Block,
        ack_timeout_ns: u64::MAX / 4,
        max_deliveries: 100,
        dlq_capacity: 100,
        busy_poll_ns: 0,
    }
}

/// A durable router on `dir` whose tail holds at most `held` events.
fn bench(dir: &Path, held: usize) -> Bench {
    let mut b = Bench::durable(dir);
    b.router.tail = Some(Arc::new(Tail::with_limits(held, held * CONSUMERS)));
    b.principal("c");
    b.router
        .allow("c", Action::Subscribe, "t.*")
        .expect("allow");
    b
}

fn open(b: &Bench, i: usize, window: usize) -> Arc<Subscription> {
    let pattern = format!(r#"{{"data": {{"k": [{}]}}}}"#, i as u64 % KINDS);
    b.router
        .subscribe(
            "c",
            &b.token("c"),
            Some(format!("c{i}")),
            vec!["t.a".into()],
            Some(Pattern::parse_json(&pattern).expect("pattern")),
            config(window),
            Some((Start::Earliest, None)),
        )
        .expect("durable subscription")
}

/// Publish `ns` (data `{"n": n, "k": n % KINDS}`) in one batch.
fn publish(b: &Bench, ns: &[u64]) {
    let items = ns
        .iter()
        .map(|n| Outgoing {
            kind: DataKind::Json,
            data: format!(r#"{{"n":{n},"k":{}}}"#, n % KINDS).into_bytes(),
            id: None,
            end_to_end: false,
        })
        .collect();
    let events = b
        .router
        .prepare(
            WRITER,
            &b.token(WRITER),
            "t.a",
            None,
            &Attributes::default(),
            items,
        )
        .expect("prepare");
    b.router
        .enqueue(events, Some(std::time::Duration::ZERO))
        .expect("publish");
}

/// Poll up to `max` and ack them all; the `n` of each.
fn take(b: &Bench, sub: &Subscription, max: usize) -> Vec<u64> {
    let got = b.poll(sub, max);
    let tags: Vec<u64> = got.iter().map(|d| d.tag).collect();
    assert_eq!(b.router.ack(sub, &tags).expect("ack"), tags.len());
    super::ns(&got)
}

#[derive(Debug, Clone)]
enum Op {
    Publish(u64),
    Take(usize, usize),
    /// Look at a consumer's figures (it takes its shares, nothing is delivered).
    Stats(usize),
    Offline(usize),
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1u64..12).prop_map(Op::Publish),
        4 => (0..CONSUMERS, 1usize..8).prop_map(|(i, m)| Op::Take(i, m)),
        1 => (0..CONSUMERS).prop_map(Op::Stats),
        1 => (0..CONSUMERS).prop_map(Op::Offline),
        1 => Just(Op::Restart),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Each consumer receives exactly the events its pattern selects, each once, in
    /// publish order, whether it took them from the held batches, fell behind and
    /// read them back (small window, small tail), was offline, or the router
    /// restarted; and once everyone has taken everything, the tail holds nothing.
    #[test]
    fn every_consumer_gets_exactly_its_events_in_order(
        window in 1usize..6,
        held in 1usize..24,
        ops in proptest::collection::vec(op(), 1..40),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut b = bench(dir.path(), held);
        let mut subs: Vec<_> = (0..CONSUMERS).map(|i| open(&b, i, window)).collect();
        let mut got: Vec<Vec<u64>> = vec![Vec::new(); CONSUMERS];
        let mut next = 0u64;
        let want = |i: usize, upto: u64| -> Vec<u64> {
            (0..upto).filter(|n| n % KINDS == i as u64 % KINDS).collect()
        };
        for op in ops {
            match op {
                Op::Publish(k) => {
                    let ns: Vec<u64> = (next..next + k).collect();
                    publish(&b, &ns);
                    next += k;
                }
                Op::Take(i, max) => got[i].extend(take(&b, &subs[i], max)),
                Op::Stats(i) => {
                    b.router.stats_of(&subs[i]).expect("stats");
                }
                Op::Offline(i) => {
                    prop_assert!(b.router.unsubscribe(subs[i].id, false).expect("close"));
                    subs[i] = open(&b, i, window);
                }
                Op::Restart => {
                    b.router.close().expect("close");
                    subs.clear();
                    drop(b);
                    b = bench(dir.path(), held);
                    subs = (0..CONSUMERS).map(|i| open(&b, i, window)).collect();
                }
            }
            for (i, g) in got.iter().enumerate() {
                let w = want(i, next);
                prop_assert!(w.starts_with(g), "consumer {} got {:?}, owed {:?}", i, g, w);
            }
        }
        for (i, g) in got.iter_mut().enumerate() {
            loop {
                let more = take(&b, &subs[i], window);
                if more.is_empty() {
                    break;
                }
                g.extend(more);
            }
            prop_assert_eq!(&*g, &want(i, next), "consumer {}", i);
        }
        if let Some(tail) = &b.router.tail {
            publish(&b, &[next]);
            let (batches, ..) = tail.held();
            prop_assert!(batches <= 1, "{} batches held after every share was taken", batches);
        }
        b.router.close().expect("close");
    }
}

/// Thousands of consumers, some of them behind (a window too small for what they are
/// owed), some offline, through a restart: each gets exactly its events, in order,
/// and a publish visits none of them (every share waits in the tail until taken).
#[test]
fn thousands_of_consumers_some_behind_some_offline_get_exactly_theirs() {
    const N: usize = 2_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let b = bench(dir.path(), 1 << 16);
    let windows = |i: usize| if i.is_multiple_of(7) { 2 } else { 64 };
    let subs: Vec<_> = (0..N).map(|i| open(&b, i, windows(i))).collect();
    let mut got: Vec<Vec<u64>> = vec![Vec::new(); N];
    let mut next = 0;
    for round in 0..4u64 {
        let ns: Vec<u64> = (next..next + 30).collect();
        publish(&b, &ns);
        next += 30;
        for (i, s) in subs.iter().enumerate() {
            // Every fifth consumer only catches up at the end.
            if i % 5 != 0 || round == 3 {
                got[i].extend(take(&b, s, windows(i)));
            }
        }
    }
    // Consumers 1, 11, 21, ... go offline with what they have not taken.
    for s in subs.iter().skip(1).step_by(10) {
        assert!(b.router.unsubscribe(s.id, false).expect("close"));
    }
    b.router.close().expect("close");
    drop(subs);
    drop(b);
    let b = bench(dir.path(), 1 << 16);
    let subs: Vec<_> = (0..N).map(|i| open(&b, i, windows(i))).collect();
    publish(&b, &(next..next + 30).collect::<Vec<_>>());
    next += 30;
    for (i, s) in subs.iter().enumerate() {
        loop {
            let more = take(&b, s, windows(i));
            if more.is_empty() {
                break;
            }
            got[i].extend(more);
        }
        let want: Vec<u64> = (0..next)
            .filter(|n| n % KINDS == i as u64 % KINDS)
            .collect();
        assert_eq!(got[i], want, "consumer {i}");
    }
    b.router.close().expect("close");
}

/// A consumer that never polls holds the batches it has a share in until the tail
/// is full; then the oldest is dropped and it reads that share back from the log.
#[test]
fn a_full_tail_drops_its_oldest_batch_and_the_laggard_reads_it_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = bench(dir.path(), 8);
    let (fast, slow) = (open(&b, 0, 64), open(&b, 3, 64));
    let mut got = (Vec::new(), Vec::new());
    for n in 0..10u64 {
        publish(&b, &[3 * n, 3 * n + 1, 3 * n + 2]);
        got.0.extend(take(&b, &fast, 64));
    }
    let tail = b.router.tail.as_ref().expect("a tail");
    let (batches, events, _) = tail.held();
    assert!(events <= 8, "{events} events held in {batches} batches");
    // Owed from the publish on, taken or not (what the lag alert reads).
    let owed = |s: &Subscription| s.stats().expect("stats").durable.expect("durable").2;
    assert_eq!(owed(&slow), 10);
    let read_back = b
        .router
        .counters
        .read_back
        .load(std::sync::atomic::Ordering::Relaxed);
    got.1.extend(take(&b, &slow, 64));
    assert_eq!((owed(&fast), owed(&slow)), (0, 0));
    let want: Vec<u64> = (0..30).filter(|n| n % 3 == 0).collect();
    assert_eq!((&got.0, &got.1), (&want, &want));
    assert!(
        b.router
            .counters
            .read_back
            .load(std::sync::atomic::Ordering::Relaxed)
            > read_back,
        "the dropped shares came from the log"
    );
    b.router.close().expect("close");
}

/// A consumer asleep in a poll is woken by its share of a held batch (no publish
/// touches its queue), on a real clock: the poll returns the event, not an empty
/// hand at its timeout.
#[test]
fn a_sleeping_consumer_is_woken_by_its_share_of_a_held_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = crate::log::Log::open(&dir.path().join("log"), crate::log::LogOptions::default())
        .expect("log");
    let cursors = crate::log::CursorStore::open(&dir.path().join("cursors")).expect("cursors");
    let router = Arc::new(crate::route::Router::new(
        crate::route::RouterConfig {
            allow_schemaless: true,
            log: Some((Arc::new(log), cursors)),
            ..crate::route::RouterConfig::default()
        },
        crate::route::Clock::default(),
    ));
    let token = router.policy.register("p").expect("register");
    router.allow("p", Action::Publish, "t.*").expect("allow");
    router.allow("p", Action::Subscribe, "t.*").expect("allow");
    let sub = router
        .subscribe(
            "p",
            &token,
            Some("d".into()),
            vec!["t.a".into()],
            Some(Pattern::parse_json(r#"{"data": {"k": [1]}}"#).expect("pattern")),
            config(8),
            Some((Start::Latest, None)),
        )
        .expect("subscribe");
    let poller = {
        let (router, sub) = (Arc::clone(&router), Arc::clone(&sub));
        std::thread::spawn(move || {
            router
                .poll(&sub, 8, Some(std::time::Duration::from_mins(1)))
                .expect("poll")
        })
    };
    while !sub.has_events.has_sleepers() {
        std::thread::yield_now();
    }
    let items = [0u64, 1, 2]
        .iter()
        .map(|n| Outgoing {
            kind: DataKind::Json,
            data: format!(r#"{{"n":{n},"k":{n}}}"#).into_bytes(),
            id: None,
            end_to_end: false,
        })
        .collect();
    let events = router
        .prepare("p", &token, "t.a", None, &Attributes::default(), items)
        .expect("prepare");
    router.enqueue(events, None).expect("publish");
    let got = poller.join().expect("poller");
    assert_eq!(super::ns(&got), [1]);
    router.close().expect("close");
}
