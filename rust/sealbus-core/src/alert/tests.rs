use super::*;
use proptest::prelude::*;

const S: u64 = 1_000_000_000;

fn detector(config: AlertConfig) -> Detector {
    Detector::new(config, Some("sealbus-alerts".into())).expect("a valid config")
}

fn kinds(d: &mut Detector) -> Vec<(AlertKind, String)> {
    d.drain().into_iter().map(|a| (a.kind, a.subject)).collect()
}

/// `per_window` events a second in batches of `batch`, from `from` for `secs` seconds.
fn steady(d: &mut Detector, who: &str, from: u64, secs: u64, per_window: u64, batch: u64) {
    for s in 0..secs {
        for b in 0..per_window / batch {
            d.observe_publish(
                who,
                "orders.placed",
                batch,
                from + s * S + b * (S / (per_window / batch)),
            );
        }
    }
}

#[test]
fn a_rate_far_above_the_baseline_fires_once() {
    let mut d = detector(AlertConfig::default());
    steady(&mut d, "checkout", 0, 20, 2_000, 100);
    assert!(kinds(&mut d).is_empty(), "a steady producer stays silent");
    // Twenty times its usual rate in one second.
    for i in 0..400 {
        d.observe_publish("checkout", "orders.placed", 100, 20 * S + i * 1_000);
    }
    let a = d.drain();
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(a[0].kind, AlertKind::RateSpike);
    assert_eq!(a[0].subject, "checkout");
    assert_eq!(a[0].details["baseline"], Value::from(2000.0));
}

#[test]
fn a_spike_below_the_factor_or_during_warmup_is_silent() {
    let mut d = detector(AlertConfig::default());
    // Warmup: a huge first seconds teach the baseline, they do not alert.
    steady(&mut d, "batchy", 0, 3, 50_000, 1_000);
    steady(&mut d, "batchy", 3 * S, 10, 2_000, 100);
    // Five times the baseline: under the factor of ten.
    steady(&mut d, "batchy", 13 * S, 3, 10_000, 100);
    assert!(kinds(&mut d).is_empty());
}

#[test]
fn idle_windows_do_not_lower_the_baseline() {
    let mut d = detector(AlertConfig::default());
    steady(&mut d, "nightly", 0, 10, 5_000, 500);
    // An hour of silence, then the usual rate again.
    steady(&mut d, "nightly", 3_600 * S, 10, 5_000, 500);
    assert!(kinds(&mut d).is_empty());
}

#[test]
fn a_burst_of_refusals_from_one_principal_fires() {
    let mut d = detector(AlertConfig::default());
    for i in 0..4 {
        d.observe_refused("plugin", "payments.refund", "PolicyDenied", 1, i * S);
    }
    assert!(
        kinds(&mut d).is_empty(),
        "four refusals are under the burst of five"
    );
    d.observe_refused("plugin", "orders.placed", "ValidationError", 1, 4 * S);
    let a = d.drain();
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].kind, AlertKind::RefusedBurst);
    assert_eq!(a[0].details["rule"], Value::from("ValidationError"));
    // Within the cooldown, more refusals do not repeat it.
    for i in 5..20 {
        d.observe_refused("plugin", "x", "PolicyDenied", 1, i * S);
    }
    assert!(kinds(&mut d).is_empty());
}

#[test]
fn refusals_spread_over_time_are_silent() {
    let mut d = detector(AlertConfig::default());
    for i in 0..100 {
        d.observe_refused("clumsy", "orders.placed", "ValidationError", 1, i * 3 * S);
    }
    assert!(kinds(&mut d).is_empty());
}

#[test]
fn a_new_type_after_the_learning_period_fires() {
    let mut d = detector(AlertConfig::default());
    d.observe_publish("checkout", "orders.placed", 1, 0);
    d.observe_publish("checkout", "orders.cancelled", 1, 30 * S);
    assert!(
        kinds(&mut d).is_empty(),
        "types of the first minute are learned"
    );
    d.observe_publish("checkout", "orders.placed", 1, 120 * S);
    assert!(kinds(&mut d).is_empty());
    d.observe_publish("checkout", "payments.refund", 1, 121 * S);
    let a = d.drain();
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].kind, AlertKind::NewType);
    assert_eq!(a[0].details["type"], Value::from("payments.refund"));
    assert_eq!(a[0].details["known_types"], Value::from(2));
}

#[test]
fn a_lagging_consumer_fires_once_until_it_catches_up() {
    let mut d = detector(AlertConfig {
        lag_limit: 1_000,
        ..AlertConfig::default()
    });
    d.observe_lag("analytics", "analytics", 999, 0);
    assert!(kinds(&mut d).is_empty());
    d.observe_lag("analytics", "analytics", 5_000, S);
    d.observe_lag("analytics", "analytics", 9_000, 2 * S);
    assert_eq!(
        kinds(&mut d),
        vec![(AlertKind::ConsumerLag, "analytics".into())]
    );
    d.observe_lag("analytics", "analytics", 600, 3 * S);
    d.observe_lag("analytics", "analytics", 5_000, 4 * S);
    assert!(
        kinds(&mut d).is_empty(),
        "not re-armed above half the limit"
    );
    d.observe_lag("analytics", "analytics", 400, 5 * S);
    d.observe_lag("analytics", "analytics", 5_000, 6 * S);
    assert_eq!(kinds(&mut d).len(), 1);
}

#[test]
fn failed_opens_and_refused_signatures_fire_and_count_through_the_cooldown() {
    let mut d = detector(AlertConfig::default());
    d.observe_open_failed("router", 0, 0);
    assert!(kinds(&mut d).is_empty());
    d.observe_open_failed("router", 2, S);
    d.observe_open_failed("router", 3, 2 * S);
    d.observe_signature_refused("shop-b", 1, 2 * S);
    let a = d.drain();
    assert_eq!(a.len(), 2);
    assert_eq!(a[0].kind, AlertKind::OpenFailed);
    assert_eq!(a[0].details["failures"], Value::from(2));
    assert_eq!(a[1].kind, AlertKind::SignatureRefused);
    assert_eq!(a[1].subject, "shop-b");
    // The three failures of the cooldown are reported with the next one.
    d.observe_open_failed("router", 1, 70 * S);
    let a = d.drain();
    assert_eq!(a[0].details["failures"], Value::from(4));
}

#[test]
fn the_alert_publisher_never_alerts_about_itself() {
    let mut d = detector(AlertConfig {
        novelty_after_ns: 0,
        refused_burst: 1,
        ..AlertConfig::default()
    });
    d.observe_publish("sealbus-alerts", "sealbus.alert.new_type", 1, S);
    d.observe_refused("sealbus-alerts", "x", "PolicyDenied", 1, S);
    assert!(kinds(&mut d).is_empty());
}

#[test]
fn an_alert_is_json_with_its_kind_subject_and_figures() {
    let mut d = detector(AlertConfig {
        refused_burst: 1,
        ..AlertConfig::default()
    });
    d.observe_refused("plugin", "payments.refund", "PolicyDenied", 3, 7);
    let a = d.drain().remove(0);
    assert_eq!(a.event_type(), "sealbus.alert.refused_burst");
    let v: Value = serde_json::from_str(&a.to_json()).expect("JSON");
    assert_eq!(v["kind"], "refused_burst");
    assert_eq!(v["subject"], "plugin");
    assert_eq!(v["time"], 7);
    assert_eq!(v["count"], 3);
}

#[test]
fn meaningless_thresholds_are_refused() {
    for c in [
        AlertConfig {
            rate_factor: 1.0,
            ..AlertConfig::default()
        },
        AlertConfig {
            window_ns: 0,
            ..AlertConfig::default()
        },
        AlertConfig {
            baseline_weight: 0.0,
            ..AlertConfig::default()
        },
        AlertConfig {
            refused_burst: 0,
            ..AlertConfig::default()
        },
        AlertConfig {
            lag_limit: 0,
            ..AlertConfig::default()
        },
    ] {
        assert!(matches!(
            Detector::new(c, None),
            Err(Error::InvalidArgument { .. })
        ));
    }
}

proptest! {
    /// A steady producer (any rate, any batch size, jitter of a window's length
    /// either way for each batch) never trips the rate rule at its default factor.
    #[test]
    fn steady_jittered_producers_stay_silent(
        per_sec in 1_000u64..200_000,
        batch in 1u64..2_048,
        jitter in proptest::collection::vec(0u64..S, 64),
        secs in 10u64..40,
    ) {
        let mut d = detector(AlertConfig::default());
        let calls = (per_sec / batch).max(1);
        let step = S / calls;
        let mut k = 0;
        for s in 0..secs {
            for c in 0..calls {
                // Each call lands anywhere within half a window of its due time.
                let j = jitter[k % jitter.len()] / 2;
                k += 1;
                let t = (s + 1) * S + c * step + j;
                d.observe_publish("p", "orders.placed", batch, t.saturating_sub(S / 4));
            }
        }
        prop_assert!(d.drain().is_empty());
    }
}
