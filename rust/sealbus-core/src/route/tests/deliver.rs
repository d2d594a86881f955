//! Delivery (`route/deliver.rs`): poll, ack, nack, ack timeouts and dead letters,
//! through the router, against a model of at-least-once delivery; and opening the
//! at-rest seals for the consumer.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use proptest::prelude::*;

use super::{n_of, ns, queue, Bench};
use crate::error::{Action, Error};
use crate::route::{OnFull, RouterConfig};
use crate::seal::KeyRing;

const WINDOW: usize = 6;
const TRIES: u32 = 3;
const TIMEOUT: u64 = 1_000;

/// At-least-once delivery as a consumer sees it: ready events in order, deliveries
/// in flight by tag, dead letters with their reason.
#[derive(Debug, Default)]
struct Model {
    /// (n, attempts): always in the order published, which is the queue's order
    ready: VecDeque<(u64, u32)>,
    /// tag -> (n, attempts, deadline)
    inflight: BTreeMap<u64, (u64, u32, u64)>,
    dead: Vec<(u64, u32, &'static str)>,
    next_tag: u64,
    acked: u64,
    nacked: u64,
    expired: u64,
    redelivered: u64,
}

impl Model {
    /// Back among the ready events, in its place in the order published, for
    /// another try; or a dead letter. Several at once are settled in that order.
    fn retry(&mut self, mut returned: Vec<(u64, u32)>, reason: &'static str) {
        returned.sort_unstable();
        for (n, attempts) in returned {
            if attempts >= TRIES {
                self.dead.push((n, attempts, reason));
            } else {
                let at = self.ready.iter().take_while(|&&(m, _)| m < n).count();
                self.ready.insert(at, (n, attempts));
            }
        }
    }

    /// Deliveries past their deadline go back, or die.
    fn expire(&mut self, now: u64) {
        let due: Vec<u64> = self
            .inflight
            .iter()
            .filter(|(_, &(_, _, d))| d <= now)
            .map(|(&t, _)| t)
            .collect();
        let mut returned = Vec::new();
        for t in due {
            let (n, a, _) = self.inflight.remove(&t).expect("due");
            self.expired += 1;
            returned.push((n, a));
        }
        self.retry(returned, "ack timeout");
    }

    fn take(&mut self, max: usize, now: u64) -> Vec<(u64, u64, u32)> {
        self.expire(now);
        let mut out = Vec::new();
        while out.len() < max {
            let Some((n, a)) = self.ready.pop_front() else {
                break;
            };
            let a = a + 1;
            if a > 1 {
                self.redelivered += 1;
            }
            self.next_tag += 1;
            self.inflight.insert(self.next_tag, (n, a, now + TIMEOUT));
            out.push((self.next_tag, n, a));
        }
        out
    }
}

#[derive(Debug, Clone)]
enum Op {
    Publish(u64),
    Poll(usize),
    /// Ack these tags (picked among those handed out, fresh or stale).
    Ack(Vec<proptest::sample::Index>),
    Nack(Vec<proptest::sample::Index>),
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    let tags = || proptest::collection::vec(any::<proptest::sample::Index>(), 1..4);
    prop_oneof![
        3 => (1u64..4).prop_map(Op::Publish),
        3 => (0usize..5).prop_map(Op::Poll),
        2 => tags().prop_map(Op::Ack),
        1 => tags().prop_map(Op::Nack),
        1 => (0u64..1_500).prop_map(Op::Advance),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Every delivery (its event, attempt and tag), every ack and nack count, the
    /// dead letters (event, attempts, reason) and the queue's counters are those of
    /// the model, whatever the consumer does: acks twice or late, nacks, lets ack
    /// deadlines pass, or publishes into a full window (refused whole).
    #[test]
    fn delivery_follows_the_at_least_once_model(ops in proptest::collection::vec(op(), 1..40)) {
        let mut b = Bench::memory();
        b.principal("c");
        b.router.allow("c", Action::Subscribe, "t.*").expect("allow");
        let sub = b.subscribe("c", &["t.a"], None, queue(WINDOW, OnFull::Reject)).expect("subscribe");
        let mut m = Model::default();
        let mut handed: Vec<u64> = Vec::new();
        let mut next_n = 0u64;
        for op in ops {
            let now = b.now.load(std::sync::atomic::Ordering::Acquire);
            match op {
                Op::Publish(k) => {
                    let batch: Vec<u64> = (next_n..next_n + k).collect();
                    next_n += k;
                    m.expire(now);
                    let fits = m.ready.len() + m.inflight.len() + batch.len() <= WINDOW;
                    match b.publish("t.a", &batch) {
                        Ok(r) => {
                            prop_assert!(fits, "accepted past the window");
                            prop_assert_eq!(r.len(), batch.len());
                            m.ready.extend(batch.iter().map(|&n| (n, 0)));
                        }
                        Err(refused) => {
                            prop_assert!(!fits, "refused with room: {:?}", refused.error);
                            let accepted = matches!(refused.error, Error::Backpressure { accepted: 0, .. });
                            prop_assert!(accepted, "{:?}", refused.error);
                            prop_assert!(refused.receipts.is_empty());
                        }
                    }
                }
                Op::Poll(max) => {
                    let got: Vec<(u64, u64, u32)> = b
                        .poll(&sub, max)
                        .iter()
                        .map(|d| (d.tag, n_of(&d.item), d.attempt))
                        .collect();
                    let want = m.take(max, now);
                    handed.extend(got.iter().map(|d| d.0));
                    prop_assert_eq!(got, want);
                }
                Op::Ack(picks) | Op::Nack(picks) if handed.is_empty() => { let _ = picks; }
                Op::Ack(picks) => {
                    let tags: Vec<u64> = picks.iter().map(|i| handed[i.index(handed.len())]).collect();
                    let mut want = 0;
                    for t in &tags {
                        if m.inflight.remove(t).is_some() {
                            want += 1;
                            m.acked += 1;
                        }
                    }
                    prop_assert_eq!(b.router.ack(&sub, &tags).expect("ack"), want);
                }
                Op::Nack(picks) => {
                    let tags: Vec<u64> = picks.iter().map(|i| handed[i.index(handed.len())]).collect();
                    let mut want = 0;
                    let mut returned = Vec::new();
                    for t in &tags {
                        if let Some((n, a, _)) = m.inflight.remove(t) {
                            want += 1;
                            m.nacked += 1;
                            returned.push((n, a));
                        }
                    }
                    m.retry(returned, "nacked");
                    prop_assert_eq!(b.router.nack(&sub, &tags).expect("nack"), want);
                }
                Op::Advance(by) => b.advance(by),
            }
            let stats = sub.stats().expect("stats");
            prop_assert_eq!(stats.ready, m.ready.len());
            prop_assert_eq!(stats.in_flight, m.inflight.len());
            prop_assert_eq!(stats.dead_letters, m.dead.len());
        }
        let dead: Vec<(u64, u32, &str)> = b
            .router
            .dead_letters(&sub, 1_000, false)
            .expect("dead letters")
            .iter()
            .map(|d| (n_of(&d.item), d.attempts, d.reason))
            .collect();
        prop_assert_eq!(dead, m.dead.clone());
        let c = sub.stats().expect("stats").counters;
        prop_assert_eq!(
            (c.acked, c.nacked, c.expired, c.redelivered, c.dead_lettered),
            (m.acked, m.nacked, m.expired, m.redelivered, m.dead.len() as u64)
        );
    }
}

/// A nacked event comes back first, with the next attempt number, until its tries
/// are spent; then it is a dead letter with its reason and tries. Reading the dead
/// letters leaves them; removing them takes exactly the ones returned.
#[test]
fn nacks_redeliver_then_dead_letter_and_removal_drains() {
    let mut b = Bench::memory();
    b.principal("c");
    b.router
        .allow("c", Action::Subscribe, "t.*")
        .expect("allow");
    let sub = b
        .subscribe("c", &["t.a"], None, queue(10, OnFull::Block))
        .expect("subscribe");
    b.publish("t.a", &[1, 2, 3]).expect("publish");
    for attempt in 1..=3 {
        let d = b.poll(&sub, 1);
        assert_eq!((ns(&d), d[0].attempt), (vec![1], attempt));
        assert_eq!(b.router.nack(&sub, &[d[0].tag]).expect("nack"), 1);
        assert_eq!(b.router.nack(&sub, &[d[0].tag]).expect("nack"), 0, "twice");
    }
    let d = b.poll(&sub, 1);
    assert_eq!(ns(&d), [2], "1 is dead after 3 tries");
    assert_eq!(
        b.router.ack(&sub, &[d[0].tag, d[0].tag, 999]).expect("ack"),
        1
    );
    // 3 times out twice, then its third delivery times out into the dead letters.
    for _ in 0..3 {
        assert_eq!(ns(&b.poll(&sub, 1)), [3]);
        b.advance(1_000);
    }
    assert!(b.poll(&sub, 10).is_empty());
    let peek = b.router.dead_letters(&sub, 10, false).expect("peek");
    let seen: Vec<_> = peek
        .iter()
        .map(|d| (n_of(&d.item), d.attempts, d.reason))
        .collect();
    assert_eq!(seen, [(1, 3, "nacked"), (3, 3, "ack timeout")]);
    let taken = b.router.dead_letters(&sub, 1, true).expect("remove");
    assert_eq!(taken.len(), 1);
    assert_eq!(n_of(&taken[0].item), 1);
    let left = b.router.dead_letters(&sub, 10, false).expect("peek");
    assert_eq!(left.len(), 1);
    assert_eq!(n_of(&left[0].item), 3);
    let s = sub.stats().expect("stats");
    assert_eq!((s.ready, s.in_flight, s.dead_letters), (0, 0, 1));
    assert_eq!(
        (
            s.counters.acked,
            s.counters.nacked,
            s.counters.expired,
            s.counters.dead_lettered
        ),
        (1, 3, 3, 2)
    );
}

/// An in-memory sealing router queues the sealed frames: a poll hands out
/// ciphertext, `open` and `open_into_buffer` give back the plaintext, and once the
/// key is destroyed both refuse each event with its reason, keeping its attributes.
#[test]
fn delivered_seals_open_for_the_consumer_until_the_key_is_destroyed() {
    let keys = Arc::new(KeyRing::generate().expect("keys"));
    let mut b = Bench::with(RouterConfig {
        allow_schemaless: true,
        keys: Some(Arc::clone(&keys)),
        ..RouterConfig::default()
    });
    b.principal("c");
    b.router
        .allow("c", Action::Subscribe, "t.*")
        .expect("allow");
    let sub = b
        .subscribe("c", &["t.a"], None, queue(10, OnFull::Block))
        .expect("subscribe");
    b.publish("t.a", &[7, 8]).expect("publish");
    let d = b.poll(&sub, 10);
    assert!(d.iter().all(|x| x.item.sealed));
    assert!(d
        .iter()
        .all(|x| !x.item.data.windows(5).any(|w| w == b"\"n\":7")));
    let opened = b.router.open(d.clone());
    assert!(opened.iter().all(crate::route::Opened::is_open));
    let plain: Vec<u64> = opened.iter().map(|o| n_of(&o.event)).collect();
    assert_eq!(plain, [7, 8]);
    let batch = b.router.open_into_buffer(d.clone());
    assert_eq!(batch.offsets.len(), 3);
    assert_eq!(
        &batch.buffer[batch.offsets[1]..batch.offsets[2]],
        br#"{"n":8}"#
    );
    keys.destroy(&keys.active_key_id()).expect("destroy");
    let shredded = b.router.open(d.clone());
    for o in &shredded {
        assert!(o.error.is_some() && o.event.data.is_empty());
        assert_eq!(&*o.event.event_type, "t.a");
    }
    let batch = b.router.open_into_buffer(d);
    assert!(batch.errors.iter().all(Option::is_some));
    assert!(batch.buffer.is_empty());
}
