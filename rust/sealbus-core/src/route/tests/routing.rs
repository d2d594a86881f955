//! Routing (`route/mod.rs`): an event reaches exactly the subscriptions that asked
//! for its type, match its pattern, and are allowed to read it right now; nothing is
//! allowed until granted.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::{n_of, queue, Bench};
use crate::error::{Action, Error};
use crate::route::OnFull;

/// The concrete types published.
const TYPES: [&str; 4] = ["t.a", "t.b", "t.c.x", "u.a"];
/// The globs subscriptions ask for and grants give: each is a literal type or a
/// prefix followed by one `*`, so the model below can match them by hand.
const GLOBS: [&str; 7] = ["t.a", "t.b", "t.*", "t.c.*", "u.a", "*", "t.c.x"];
/// The patterns a subscription may filter with: on the data (matched inside it),
/// on an attribute (matched on the envelope), or none.
const PATTERNS: [Option<&str>; 4] = [
    None,
    Some(r#"{"data": {"n": [1]}}"#),
    Some(r#"{"data": {"n": [0, 2]}}"#),
    Some(r#"{"type": ["t.b", "u.a"]}"#),
];
const PRINCIPALS: [&str; 3] = ["p0", "p1", "p2"];

/// The model's glob: a literal, or a prefix and one trailing `*`.
fn model_match(glob: &str, t: &str) -> bool {
    match glob.strip_suffix('*') {
        Some(prefix) => t.starts_with(prefix),
        None => glob == t,
    }
}

/// The model's containment: every type `inner` matches is matched by `outer`.
fn model_contains(outer: &str, inner: &str) -> bool {
    match outer.strip_suffix('*') {
        Some(prefix) => inner.starts_with(prefix),
        None => outer == inner,
    }
}

fn model_pattern(pattern: Option<&str>, t: &str, n: u64) -> bool {
    match pattern {
        None => true,
        Some(p) if p == PATTERNS[1].unwrap_or_default() => n == 1,
        Some(p) if p == PATTERNS[2].unwrap_or_default() => n == 0 || n == 2,
        Some(_) => t == "t.b" || t == "u.a",
    }
}

#[derive(Debug, Clone)]
enum Step {
    Publish(usize, Vec<u64>),
    Grant(usize, usize),
    Revoke(usize, usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0..TYPES.len(), proptest::collection::vec(0u64..3, 1..5))
            .prop_map(|(t, ns)| Step::Publish(t, ns)),
        1 => (0..PRINCIPALS.len(), 0..GLOBS.len()).prop_map(|(p, g)| Step::Grant(p, g)),
        1 => (0..PRINCIPALS.len(), 0..GLOBS.len()).prop_map(|(p, g)| Step::Revoke(p, g)),
    ]
}

/// One subscription as the model sees it; its deliveries are compared, in order,
/// with `owed`.
#[derive(Debug)]
struct ModelSub {
    principal: usize,
    globs: Vec<&'static str>,
    pattern: Option<&'static str>,
    /// (type, n) of every event it is owed, in publish order.
    owed: Vec<(&'static str, u64)>,
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Subscriptions are refused unless a grant contains every glob they name; an
    /// event reaches exactly the accepted subscriptions whose glob matches its type,
    /// whose pattern matches it, and whose principal may read the type at publish
    /// time (grants and revocations in between take effect at once); each in order,
    /// and the receipt counts them.
    #[test]
    fn events_reach_exactly_the_entitled_subscribers(
        grants in proptest::collection::vec((0..PRINCIPALS.len(), 0..GLOBS.len()), 0..8),
        subs in proptest::collection::vec(
            (0..PRINCIPALS.len(), proptest::collection::vec(0..GLOBS.len(), 1..3), 0..PATTERNS.len()),
            1..7,
        ),
        steps in proptest::collection::vec(step(), 1..14),
    ) {
        let mut b = Bench::memory();
        for p in PRINCIPALS {
            b.principal(p);
        }
        let mut granted: BTreeSet<(usize, &str)> = BTreeSet::new();
        for (p, g) in grants {
            b.router.allow(PRINCIPALS[p], Action::Subscribe, GLOBS[g]).expect("allow");
            granted.insert((p, GLOBS[g]));
        }
        let mut model = Vec::new();
        let mut real = Vec::new();
        for (p, globs, pat) in subs {
            let globs: Vec<&'static str> = globs.into_iter().map(|g| GLOBS[g]).collect();
            let allowed = globs.iter().all(|inner| {
                granted.iter().any(|&(q, outer)| q == p && model_contains(outer, inner))
            });
            let got = b.subscribe(PRINCIPALS[p], &globs, PATTERNS[pat], queue(1_000, OnFull::Reject));
            match got {
                Ok(s) => {
                    prop_assert!(allowed, "{:?} of {} subscribed without a grant", globs, PRINCIPALS[p]);
                    real.push(s);
                    model.push(ModelSub { principal: p, globs, pattern: PATTERNS[pat], owed: Vec::new() });
                }
                Err(e) => {
                    prop_assert!(!allowed, "{:?} of {} refused: {:?}", globs, PRINCIPALS[p], e);
                    let denied = matches!(e, Error::PolicyDenied { .. });
                    prop_assert!(denied, "{:?}", e);
                }
            }
        }
        for s in steps {
            match s {
                Step::Grant(p, g) => {
                    b.router.allow(PRINCIPALS[p], Action::Subscribe, GLOBS[g]).expect("allow");
                    granted.insert((p, GLOBS[g]));
                }
                Step::Revoke(p, g) => {
                    b.router.revoke(PRINCIPALS[p], Action::Subscribe, GLOBS[g]).expect("revoke");
                    granted.remove(&(p, GLOBS[g]));
                }
                Step::Publish(t, ns) => {
                    let t = TYPES[t];
                    let receipts = b.publish(t, &ns).expect("publish");
                    for (r, &n) in receipts.iter().zip(&ns) {
                        let mut routed = 0;
                        for m in &mut model {
                            let entitled = m.globs.iter().any(|g| model_match(g, t))
                                && granted.iter().any(|&(q, g)| q == m.principal && model_match(g, t))
                                && model_pattern(m.pattern, t, n);
                            if entitled {
                                m.owed.push((t, n));
                                routed += 1;
                            }
                        }
                        prop_assert_eq!(r.routed, routed, "receipt of {} n={}", t, n);
                    }
                }
            }
        }
        for (s, m) in real.iter().zip(&model) {
            let got: Vec<(String, u64)> = b
                .poll(s, 10_000)
                .iter()
                .map(|d| (d.item.event_type.to_string(), n_of(&d.item)))
                .collect();
            let want: Vec<(String, u64)> = m.owed.iter().map(|&(t, n)| (t.to_owned(), n)).collect();
            prop_assert_eq!(got, want, "subscription {:?} {:?} of {}", m.globs, m.pattern, PRINCIPALS[m.principal]);
        }
    }
}

/// Nothing is allowed until granted: a principal without grants can neither
/// subscribe nor publish (each refusal counted), and a grant of one type does not
/// stretch to a glob around it.
#[test]
fn nothing_is_allowed_until_granted() {
    let mut b = Bench::memory();
    let token = b.principal("nobody");
    let refused = b.subscribe("nobody", &["t.a"], None, queue(10, OnFull::Block));
    assert!(
        matches!(refused, Err(Error::PolicyDenied { ref event_type, .. }) if event_type == "t.a"),
        "{refused:?}"
    );
    let before = b
        .router
        .counters
        .refused_policy
        .load(std::sync::atomic::Ordering::Relaxed);
    let publish = b.router.prepare(
        "nobody",
        &token,
        "t.a",
        None,
        &crate::envelope::Attributes::default(),
        vec![crate::route::Outgoing {
            kind: crate::envelope::DataKind::Json,
            data: b"{}".to_vec(),
            id: None,
            end_to_end: false,
        }],
    );
    assert!(
        matches!(publish, Err(Error::PolicyDenied { .. })),
        "{publish:?}"
    );
    let after = b
        .router
        .counters
        .refused_policy
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(after - before, 1);
    b.router
        .allow("nobody", Action::Subscribe, "t.a")
        .expect("allow");
    let wider = b.subscribe("nobody", &["t.*"], None, queue(10, OnFull::Block));
    assert!(
        matches!(wider, Err(Error::PolicyDenied { .. })),
        "{wider:?}"
    );
    // A wrong token is refused before any grant is looked at.
    let forged = b.router.subscribe(
        "nobody",
        &[0u8; 32],
        None,
        vec!["t.a".into()],
        None,
        queue(10, OnFull::Block),
        None,
    );
    assert!(forged.is_err());
    assert!(b.router.subscriptions().is_empty());
}

/// A revoked grant stops delivery with the next publish, while another principal
/// with the same subscription still receives; re-granting resumes it, and events
/// published in between are not owed.
#[test]
fn a_revoked_grant_stops_delivery_at_once() {
    let mut b = Bench::memory();
    for p in ["alice", "bob"] {
        b.principal(p);
        b.router.allow(p, Action::Subscribe, "t.*").expect("allow");
    }
    let a = b
        .subscribe("alice", &["t.*"], None, queue(100, OnFull::Reject))
        .expect("alice");
    let o = b
        .subscribe("bob", &["t.*"], None, queue(100, OnFull::Reject))
        .expect("bob");
    assert_eq!(b.publish("t.a", &[1]).expect("publish")[0].routed, 2);
    b.router
        .revoke("alice", Action::Subscribe, "t.*")
        .expect("revoke");
    assert_eq!(b.publish("t.a", &[2]).expect("publish")[0].routed, 1);
    b.router
        .allow("alice", Action::Subscribe, "t.*")
        .expect("allow");
    assert_eq!(b.publish("t.a", &[3]).expect("publish")[0].routed, 2);
    assert_eq!(super::ns(&b.poll(&a, 10)), [1, 3]);
    assert_eq!(super::ns(&b.poll(&o, 10)), [1, 2, 3]);
}

/// An event nobody may read is counted unrouted, and a closed subscription gets no
/// more events.
#[test]
fn unsubscribed_and_unmatched_events_are_unrouted() {
    let mut b = Bench::memory();
    b.principal("alice");
    b.router
        .allow("alice", Action::Subscribe, "t.a")
        .expect("allow");
    let a = b
        .subscribe("alice", &["t.a"], None, queue(100, OnFull::Reject))
        .expect("alice");
    assert_eq!(b.publish("t.b", &[1]).expect("publish")[0].routed, 0);
    assert!(b.router.unsubscribe(a.id, false).expect("unsubscribe"));
    assert_eq!(b.publish("t.a", &[2]).expect("publish")[0].routed, 0);
    assert_eq!(
        b.router
            .counters
            .unrouted
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    assert!(b
        .router
        .poll(&a, 10, Some(std::time::Duration::ZERO))
        .is_err());
}
