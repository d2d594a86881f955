//! Durable consumers (`route/durable.rs`): a cursor that may lag the consumer's acks
//! but never leads them, redelivery of everything unacked after going offline or a
//! restart (with its delivery count), and read-back that honours revocations.

use std::collections::BTreeMap;
use std::path::Path;

use proptest::prelude::*;

use super::{ns, queue, Bench};
use crate::error::{Action, Error};
use crate::log::CursorStore;
use crate::route::{OnFull, QueueConfig, Start, Subscription};

const NAME: &str = "orders";
const WINDOW: usize = 4;

fn config() -> QueueConfig {
    QueueConfig {
        max_deliveries: 100,
        ack_timeout_ns: u64::MAX / 4,
        ..queue(WINDOW, OnFull::Block)
    }
}

/// A durable router on `dir` with consumer "c" allowed `t.*`.
fn bench(dir: &Path) -> Bench {
    let mut b = Bench::durable(dir);
    b.principal("c");
    b.router
        .allow("c", Action::Subscribe, "t.*")
        .expect("allow");
    b
}

fn resume(b: &Bench) -> std::sync::Arc<Subscription> {
    b.durable_sub("c", NAME, &["t.a"], config(), Start::Earliest)
        .expect("durable subscription")
}

/// The committed offset on disk.
fn saved_committed(dir: &Path) -> u64 {
    CursorStore::open(&dir.join("cursors"))
        .expect("cursors")
        .load(NAME)
        .expect("load")
        .expect("a cursor is stored")
        .committed
}

#[derive(Debug, Clone)]
enum Op {
    Publish(u64),
    Poll(usize),
    Ack(Vec<proptest::sample::Index>),
    /// Close the subscription, publish this many, open it again.
    Offline(u64),
    /// Close the router and open a new one on the same folder.
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (1u64..5).prop_map(Op::Publish),
        3 => (1usize..6).prop_map(Op::Poll),
        3 => proptest::collection::vec(any::<proptest::sample::Index>(), 1..4).prop_map(Op::Ack),
        1 => (0u64..4).prop_map(Op::Offline),
        1 => Just(Op::Restart),
    ]
}

/// What the consumer is owed: every offset published and not acked, with how often
/// it was delivered; and which of them are in flight now (tag -> offset).
#[derive(Debug, Default)]
struct Model {
    unsettled: BTreeMap<u64, u32>,
    inflight: BTreeMap<u64, u64>,
    next: u64,
}

impl Model {
    fn low(&self) -> u64 {
        self.unsettled.keys().next().copied().unwrap_or(self.next)
    }

    /// The lowest offsets neither settled nor in flight, as many as the window has room for.
    fn expect_poll(&self, max: usize) -> Vec<(u64, u32)> {
        let room = WINDOW - self.inflight.len();
        let busy: Vec<u64> = self.inflight.values().copied().collect();
        self.unsettled
            .iter()
            .filter(|(o, _)| !busy.contains(o))
            .take(max.min(room))
            .map(|(&o, &a)| (o, a + 1))
            .collect()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Through publishes, polls through a small window, acks (fresh and stale), going
    /// offline and restarts: each poll hands out the lowest unacked offsets with their
    /// attempt number counted across restarts; the cursor in memory and on disk never
    /// passes the lowest unacked offset, and on close it is saved exactly there; an
    /// acked event is never delivered again.
    #[test]
    fn the_cursor_lags_never_leads_and_unacked_events_come_back(
        ops in proptest::collection::vec(op(), 1..30),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut b = bench(dir.path());
        let mut sub = resume(&b);
        let mut m = Model::default();
        let mut handed: Vec<u64> = Vec::new();
        let publish = |b: &Bench, m: &mut Model, k: u64| {
            let values: Vec<u64> = (m.next..m.next + k).collect();
            let receipts = b.publish("t.a", &values).expect("publish");
            for (r, v) in receipts.iter().zip(values) {
                assert_eq!(r.offset, Some(v), "offsets are dense from 0");
                m.unsettled.insert(v, 0);
            }
            m.next += k;
        };
        for op in ops {
            match op {
                Op::Publish(k) => publish(&b, &mut m, k),
                Op::Poll(max) => {
                    let want = m.expect_poll(max);
                    let got: Vec<(u64, u32)> = b
                        .poll(&sub, max)
                        .iter()
                        .map(|d| {
                            let o = d.item.offset.expect("offset");
                            handed.push(d.tag);
                            m.inflight.insert(d.tag, o);
                            (o, d.attempt)
                        })
                        .collect();
                    prop_assert_eq!(&got, &want);
                    for (o, _) in &got {
                        if let Some(a) = m.unsettled.get_mut(o) {
                            *a += 1;
                        }
                    }
                }
                Op::Ack(picks) => {
                    if handed.is_empty() { continue; }
                    let tags: Vec<u64> = picks.iter().map(|i| handed[i.index(handed.len())]).collect();
                    let mut want = 0;
                    for t in &tags {
                        if let Some(o) = m.inflight.remove(t) {
                            m.unsettled.remove(&o);
                            want += 1;
                        }
                    }
                    prop_assert_eq!(b.router.ack(&sub, &tags).expect("ack"), want);
                }
                Op::Offline(k) => {
                    prop_assert!(b.router.unsubscribe(sub.id, false).expect("close"));
                    prop_assert_eq!(saved_committed(dir.path()), m.low());
                    publish(&b, &mut m, k);
                    sub = resume(&b);
                    m.inflight.clear();
                }
                Op::Restart => {
                    b.router.close().expect("close");
                    drop(sub);
                    drop(b);
                    prop_assert_eq!(saved_committed(dir.path()), m.low());
                    b = bench(dir.path());
                    sub = resume(&b);
                    m.inflight.clear();
                }
            }
            let (committed, ..) = sub.stats().expect("stats").durable.expect("durable");
            prop_assert!(committed <= m.low(), "cursor {} leads the lowest unacked {}", committed, m.low());
            prop_assert!(saved_committed(dir.path()) <= m.low());
        }
        // Drain: exactly the unacked events, each once, in order.
        let owed: Vec<u64> = m.unsettled.keys().copied().collect();
        b.router.close().expect("close");
        drop(sub);
        drop(b);
        let b = bench(dir.path());
        let sub = resume(&b);
        let mut got = Vec::new();
        loop {
            let d = b.poll(&sub, WINDOW);
            if d.is_empty() { break; }
            got.extend(d.iter().map(|x| x.item.offset.expect("offset")));
            let tags: Vec<u64> = d.iter().map(|x| x.tag).collect();
            prop_assert_eq!(b.router.ack(&sub, &tags).expect("ack"), tags.len());
        }
        prop_assert_eq!(got, owed);
        b.router.close().expect("close");
        prop_assert_eq!(saved_committed(dir.path()), m.next);
    }
}

/// A consumer that falls behind while its grant is revoked is not handed what it
/// reads back from the log, and those offsets are settled, not owed later.
#[test]
fn a_revoked_grant_stops_read_back_delivery() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = bench(dir.path());
    let cfg = QueueConfig {
        max_pending: 1,
        ..config()
    };
    let sub = b
        .durable_sub("c", NAME, &["t.a"], cfg, Start::Earliest)
        .expect("subscribe");
    b.publish("t.a", &[1]).expect("publish");
    let first = b.poll(&sub, 1);
    assert_eq!(ns(&first), [1]);
    // The window is full: these wait on disk.
    b.publish("t.a", &[2, 3, 4]).expect("publish");
    b.router
        .revoke("c", Action::Subscribe, "t.*")
        .expect("revoke");
    assert_eq!(b.router.ack(&sub, &[first[0].tag]).expect("ack"), 1);
    assert!(
        b.poll(&sub, 10).is_empty(),
        "read back after the revocation"
    );
    let (committed, read, ..) = sub.stats().expect("stats").durable.expect("durable");
    assert_eq!((committed, read), (4, 4));
    b.router
        .allow("c", Action::Subscribe, "t.*")
        .expect("allow");
    b.publish("t.a", &[5]).expect("publish");
    assert_eq!(ns(&b.poll(&sub, 10)), [5]);
}

/// A consumer belongs to the principal that created it; `forget` deletes its
/// cursor, so it starts again where a new one would.
#[test]
fn a_consumer_is_its_owner_s_and_forgetting_deletes_its_cursor() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut b = bench(dir.path());
    b.principal("mallory");
    b.router
        .allow("mallory", Action::Subscribe, "t.*")
        .expect("allow");
    let sub = resume(&b);
    b.publish("t.a", &[1, 2]).expect("publish");
    assert!(b.router.unsubscribe(sub.id, false).expect("close"));
    let stolen = b.durable_sub("mallory", NAME, &["t.a"], config(), Start::Earliest);
    assert!(
        matches!(stolen, Err(Error::PolicyDenied { ref principal, .. }) if principal == "mallory"),
        "{stolen:?}"
    );
    let sub = resume(&b);
    assert_eq!(ns(&b.poll(&sub, 10)), [1, 2], "owed while offline");
    assert!(b.router.unsubscribe(sub.id, true).expect("forget"));
    assert!(CursorStore::open(&dir.path().join("cursors"))
        .expect("cursors")
        .load(NAME)
        .expect("load")
        .is_none());
    let latest = b
        .durable_sub("c", NAME, &["t.a"], config(), Start::Latest)
        .expect("subscribe");
    b.publish("t.a", &[3]).expect("publish");
    assert_eq!(ns(&b.poll(&latest, 10)), [3]);
}

/// Dead letters of a durable consumer outlive a restart, are never redelivered,
/// and once removed stay removed.
#[test]
fn durable_dead_letters_survive_a_restart_until_removed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = QueueConfig {
        max_deliveries: 1,
        ..config()
    };
    {
        let b = bench(dir.path());
        let sub = b
            .durable_sub("c", NAME, &["t.a"], cfg, Start::Earliest)
            .expect("subscribe");
        b.publish("t.a", &[1, 2]).expect("publish");
        let d = b.poll(&sub, 10);
        assert_eq!(b.router.nack(&sub, &[d[0].tag]).expect("nack"), 1);
        assert_eq!(b.router.ack(&sub, &[d[1].tag]).expect("ack"), 1);
        b.router.close().expect("close");
    }
    assert_eq!(saved_committed(dir.path()), 2, "a dead letter is settled");
    for remove in [true, false] {
        let b = bench(dir.path());
        let sub = b
            .durable_sub("c", NAME, &["t.a"], cfg, Start::Earliest)
            .expect("subscribe");
        assert!(b.poll(&sub, 10).is_empty());
        let dead = b
            .router
            .dead_letters(&sub, 10, remove)
            .expect("dead letters");
        if remove {
            assert_eq!(
                dead.iter()
                    .map(|d| (d.item.offset, d.attempts, d.reason))
                    .collect::<Vec<_>>(),
                [(Some(0), 1, "nacked")]
            );
        } else {
            assert!(dead.is_empty(), "removed before the restart");
        }
        b.router.close().expect("close");
    }
}

/// Publish `ns` as `WRITER` to `t.a`, on the router a subscribe hands its hook.
fn publish_on(router: &crate::route::Router, token: &[u8; 32], ns: &[u64]) {
    let items = ns
        .iter()
        .map(|n| crate::route::Outgoing {
            kind: crate::envelope::DataKind::Json,
            data: format!(r#"{{"n":{n}}}"#).into_bytes(),
            id: None,
            end_to_end: false,
        })
        .collect();
    let events = router
        .prepare(
            super::WRITER,
            token,
            "t.a",
            None,
            &crate::envelope::Attributes::default(),
            items,
        )
        .expect("prepare");
    router
        .enqueue(events, Some(std::time::Duration::ZERO))
        .expect("publish");
}

/// A consumer that comes back between a batch's routing and its append: the batch
/// was routed without it, and lands past where the log ended when it subscribed, so
/// no push brings it and the lazy catch-up would settle it as not wanted. The
/// publish finds the routing generation moved on and has the consumer read it back.
#[test]
fn a_batch_routed_before_a_consumer_came_back_is_read_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = bench(dir.path());
    let sub = resume(&b);
    b.publish("t.a", &[1]).expect("publish");
    let first = b.poll(&sub, 8);
    assert_eq!(ns(&first), [1]);
    assert_eq!(b.router.ack(&sub, &[first[0].tag]).expect("ack"), 1);
    assert!(b.router.unsubscribe(sub.id, false).expect("close"));

    // Everything stored is acknowledged: the consumer follows as soon as it is back.
    let token = b.token("c");
    let back = std::rc::Rc::new(std::cell::RefCell::new(None));
    let slot = back.clone();
    super::during_next_append(move |router| {
        let sub = router
            .subscribe(
                "c",
                &token,
                Some(NAME.to_owned()),
                vec!["t.a".to_owned()],
                None,
                config(),
                Some((Start::Earliest, None)),
            )
            .expect("resume");
        *slot.borrow_mut() = Some(sub);
    });
    b.publish("t.a", &[2, 3]).expect("publish");
    let sub = back
        .borrow_mut()
        .take()
        .expect("resumed inside the publish");
    b.publish("t.a", &[4]).expect("publish");
    let mut got = Vec::new();
    loop {
        let d = b.poll(&sub, 8);
        if d.is_empty() {
            break;
        }
        got.extend(ns(&d));
    }
    assert_eq!(got, [2, 3, 4]);
}

/// A consumer that comes back while a producer publishes: a batch stored after the
/// subscribe moved the routing generation on, but before the subscription learnt
/// where the log ended, reaches it (here it does not fit the window, so it is read
/// back) instead of being settled as not wanted.
#[test]
fn a_batch_published_while_a_consumer_comes_back_is_not_skipped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = bench(dir.path());
    let cfg = QueueConfig {
        max_pending: 1,
        ..config()
    };
    let sub = b
        .durable_sub("c", NAME, &["t.a"], cfg, Start::Earliest)
        .expect("subscribe");
    b.publish("t.a", &[1]).expect("publish");
    let first = b.poll(&sub, 1);
    assert_eq!(ns(&first), [1]);
    assert_eq!(b.router.ack(&sub, &[first[0].tag]).expect("ack"), 1);
    assert!(b.router.unsubscribe(sub.id, false).expect("close"));

    let token = b.token(super::WRITER);
    super::during_next_subscribe(move |router| publish_on(router, &token, &[2, 3]));
    let sub = b
        .durable_sub("c", NAME, &["t.a"], cfg, Start::Earliest)
        .expect("resume");
    b.publish("t.a", &[4]).expect("publish");
    let mut got = Vec::new();
    loop {
        let d = b.poll(&sub, 1);
        if d.is_empty() {
            break;
        }
        got.extend(ns(&d));
        assert_eq!(b.router.ack(&sub, &[d[0].tag]).expect("ack"), 1);
    }
    assert_eq!(got, [2, 3, 4]);
    let (committed, ..) = sub.stats().expect("stats").durable.expect("durable");
    assert_eq!(committed, 4);
}

/// `ack_unsaved` acknowledges in memory and says whether the cursors are due to be
/// saved (at most once per `ACK_SAVE_EVERY`); `save_acked` writes what it acked.
#[test]
fn an_unsaved_ack_says_when_its_save_is_due_and_the_save_keeps_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = bench(dir.path());
    let sub = resume(&b);
    b.publish("t.a", &[1, 2, 3]).expect("publish");
    let got = b.poll(&sub, 3);
    assert_eq!(ns(&got), [1, 2, 3]);
    std::thread::sleep(crate::route::durable::ACK_SAVE_EVERY * 2);
    let (n, due) = b
        .router
        .ack_unsaved(&sub, &[got[0].tag, got[1].tag])
        .expect("ack");
    assert_eq!((n, due), (2, true));
    b.router.save_acked().expect("save");
    let (committed, ..) = sub.stats().expect("stats").durable.expect("durable");
    assert_eq!(saved_committed(dir.path()), committed);
    // Saved just now: the next ack is not due, and a tag acked twice counts once.
    let (n, due) = b
        .router
        .ack_unsaved(&sub, &[got[2].tag, got[0].tag])
        .expect("ack");
    assert_eq!((n, due), (1, false));
}
