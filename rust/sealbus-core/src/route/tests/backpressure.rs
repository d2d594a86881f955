//! Backpressure (the queue step of a publish): `block` waits for room or hands back
//! what it could not queue, `reject` refuses the whole batch, `drop_oldest` drops the
//! oldest ready events and never one in flight; a refusal leaves every queue's room
//! as it was.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;

use super::{ns, queue, Bench};
use crate::error::{Action, Error};
use crate::route::QueueConfig;
use crate::route::{Clock, OnFull, Router, RouterConfig, Subscription};

const CAP: usize = 4;

fn bench() -> Bench {
    let mut b = Bench::memory();
    b.principal("c");
    b.router
        .allow("c", Action::Subscribe, "t.*")
        .expect("allow");
    b
}

/// Places taken in a queue: ready + in flight + promised to a publish under way.
fn occupied(s: &Subscription) -> usize {
    let st = s.lock().expect("state");
    st.queue.len() + st.reserved
}

#[derive(Debug, Clone)]
enum Op {
    Publish(usize),
    /// Take this many and ack them.
    Consume(usize),
    /// Take this many and keep them in flight.
    Take(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (1usize..7).prop_map(Op::Publish),
        1 => (1usize..4).prop_map(Op::Consume),
        1 => (1usize..3).prop_map(Op::Take),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// One queue under each policy, fed the same publishes: what each holds, in
    /// order, and what each publish returns are the model's. `reject` queues a batch
    /// whole or not at all; `block` (not waiting) queues what fits of a batch larger
    /// than the queue and hands back the rest, and refuses a batch that would fit an
    /// empty queue whole; `drop_oldest` keeps the newest ready events, never drops
    /// one in flight, and counts what it dropped. No queue ever holds more than its
    /// bound, and none is left with room promised.
    #[test]
    fn each_policy_queues_what_its_model_queues(
        on_full in prop_oneof![Just(OnFull::Block), Just(OnFull::Reject), Just(OnFull::DropOldest)],
        ops in proptest::collection::vec(op(), 1..24),
    ) {
        let b = bench();
        let sub = b.subscribe("c", &["t.a"], None, queue(CAP, on_full)).expect("subscribe");
        let mut ready: VecDeque<u64> = VecDeque::new();
        let mut inflight: Vec<u64> = Vec::new();
        let mut dropped = 0u64;
        let mut next = 0u64;
        for op in ops {
            match op {
                Op::Publish(k) => {
                    let batch: Vec<u64> = (next..next + k as u64).collect();
                    next += k as u64;
                    let room = CAP - ready.len() - inflight.len();
                    let accepted = match on_full {
                        OnFull::Block if k > CAP => room,
                        OnFull::Reject | OnFull::Block if k > room => 0,
                        _ => k,
                    };
                    let got = b.publish("t.a", &batch);
                    match got {
                        Ok(receipts) => {
                            prop_assert_eq!(accepted, k);
                            prop_assert_eq!(receipts.len(), k);
                        }
                        Err(refused) => {
                            prop_assert!(accepted < k, "refused a batch that fits: {:?}", refused.error);
                            prop_assert_eq!(refused.receipts.len(), accepted);
                            let counted = matches!(refused.error, Error::Backpressure { accepted: a, .. } if a == accepted);
                            prop_assert!(counted, "{:?}", refused.error);
                        }
                    }
                    for &v in &batch[..accepted] {
                        if ready.len() + inflight.len() == CAP {
                            if ready.pop_front().is_none() {
                                dropped += 1;
                                continue;
                            }
                            dropped += 1;
                        }
                        ready.push_back(v);
                    }
                }
                Op::Consume(k) | Op::Take(k) => {
                    let d = b.poll(&sub, k);
                    let want: Vec<u64> = (0..k.min(ready.len())).filter_map(|_| ready.pop_front()).collect();
                    prop_assert_eq!(ns(&d), want.clone());
                    if matches!(op, Op::Consume(_)) {
                        let tags: Vec<u64> = d.iter().map(|x| x.tag).collect();
                        prop_assert_eq!(b.router.ack(&sub, &tags).expect("ack"), tags.len());
                    } else {
                        inflight.extend(want);
                    }
                }
            }
            let s = sub.stats().expect("stats");
            prop_assert_eq!((s.ready, s.in_flight), (ready.len(), inflight.len()));
            prop_assert_eq!(s.counters.dropped, dropped);
            prop_assert_eq!(occupied(&sub), ready.len() + inflight.len(), "room promised and never given back");
        }
        prop_assert_eq!(ns(&b.poll(&sub, CAP)), Vec::from(ready));
    }
}

/// A batch refused by one `reject` queue reaches no queue at all, not even those
/// with room, and is counted refused; each queue's room is as it was.
#[test]
fn a_reject_refusal_queues_nothing_anywhere() {
    let b = bench();
    let roomy = b
        .subscribe("c", &["t.a"], None, queue(100, OnFull::Reject))
        .expect("subscribe");
    let dropping = b
        .subscribe("c", &["t.a"], None, queue(100, OnFull::DropOldest))
        .expect("subscribe");
    let full = b
        .subscribe("c", &["t.a"], None, queue(2, OnFull::Reject))
        .expect("subscribe");
    b.publish("t.a", &[1]).expect("publish");
    let refused = b.publish("t.a", &[2, 3]).expect_err("full");
    assert!(
        matches!(refused.error, Error::Backpressure { ref subscription, pending: 1, accepted: 0 } if *subscription == full.name),
        "{:?}",
        refused.error
    );
    assert_eq!(
        b.router
            .counters
            .refused_backpressure
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    for s in [&roomy, &dropping, &full] {
        assert_eq!(occupied(s), 1);
    }
    b.publish("t.a", &[4]).expect("one more fits");
    for s in [&roomy, &dropping, &full] {
        assert_eq!(ns(&b.poll(s, 10)), [1, 4]);
    }
}

/// A producer blocked on a full queue goes on once the consumer acks, and queues
/// its whole batch: nothing dropped, nothing past the bound. (Waits on the threads,
/// not on a time.)
#[test]
fn a_blocked_publish_completes_when_the_consumer_makes_room() {
    let r = Arc::new(Router::new(
        RouterConfig {
            allow_schemaless: true,
            ..RouterConfig::default()
        },
        Clock::default(),
    ));
    let writer = r.policy.register("w").expect("register");
    let reader = r.policy.register("c").expect("register");
    r.allow("w", Action::Publish, "t.*").expect("allow");
    r.allow("c", Action::Subscribe, "t.*").expect("allow");
    let sub = r
        .subscribe(
            "c",
            &reader,
            None,
            vec!["t.a".into()],
            None,
            // Backpressure, not expiry: a delivery must not time out while
            // the consumer is slow to ack it on a busy machine.
            QueueConfig {
                ack_timeout_ns: 3_600_000_000_000,
                ..queue(2, OnFull::Block)
            },
            None,
        )
        .expect("subscribe");
    let publish = move |r: &Router, from: u64| {
        let items = (from..from + 2)
            .map(|n| crate::route::Outgoing {
                kind: crate::envelope::DataKind::Json,
                data: format!(r#"{{"n":{n}}}"#).into_bytes(),
                id: None,
                end_to_end: false,
            })
            .collect();
        let events = r
            .prepare(
                "w",
                &writer,
                "t.a",
                None,
                &crate::envelope::Attributes::default(),
                items,
            )
            .expect("prepare");
        r.enqueue(events, None)
    };
    publish(&r, 1).expect("fits");
    let producer = {
        let r = Arc::clone(&r);
        std::thread::spawn(move || publish(&r, 3).map(|x| x.len()).map_err(|e| e.error))
    };
    let mut seen = Vec::new();
    while seen.len() < 4 {
        let d = r
            .poll(&sub, 10, Some(Duration::from_mins(1)))
            .expect("poll");
        assert!(occupied(&sub) <= 2);
        seen.extend(ns(&d));
        let tags: Vec<u64> = d.iter().map(|x| x.tag).collect();
        r.ack(&sub, &tags).expect("ack");
    }
    assert_eq!(producer.join().expect("producer").expect("published"), 2);
    assert_eq!(seen, [1, 2, 3, 4]);
    assert_eq!(sub.stats().expect("stats").counters.dropped, 0);
}
