//! Cases from the EventBridge documentation (content filtering, arrays, null values,
//! exists, $or) and its rule compiler's refusals.

use super::*;

fn m(pattern: &str, event: &str) -> bool {
    let p = Pattern::parse_json(pattern).unwrap_or_else(|e| panic!("pattern {pattern}: {e}"));
    test_event_pattern(&p, event.as_bytes()).unwrap_or_else(|e| panic!("event {event}: {e}"))
}

fn refused(pattern: &str) -> (String, String) {
    match Pattern::parse_json(pattern) {
        Err(Error::Pattern { path, reason }) => (path, reason),
        other => panic!("{pattern} should be refused, got {other:?}"),
    }
}

#[test]
fn exact_values_and_nesting() {
    let p = r#"{"source":["aws.ec2"],"detail":{"state":["terminated","stopped"]}}"#;
    assert!(m(
        p,
        r#"{"source":"aws.ec2","detail":{"state":"stopped","x":1}}"#
    ));
    assert!(!m(
        p,
        r#"{"source":"aws.ec2","detail":{"state":"running"}}"#
    ));
    assert!(!m(p, r#"{"source":"aws.ec2"}"#));
    assert!(!m(p, r#"{"source":"aws.ec2","detail":"stopped"}"#));
    assert!(!m(r#"{"a":["1"]}"#, r#"{"a":1}"#));
    assert!(m(r#"{"a":[true]}"#, r#"{"a":true}"#));
    assert!(!m(r#"{"a":[true]}"#, r#"{"a":"true"}"#));
}

#[test]
fn null_and_empty_string() {
    assert!(m(r#"{"a":[null]}"#, r#"{"a":null}"#));
    assert!(!m(r#"{"a":[null]}"#, r"{}"));
    assert!(!m(r#"{"a":[null]}"#, r#"{"a":""}"#));
    assert!(m(r#"{"a":[""]}"#, r#"{"a":""}"#));
    assert!(!m(r#"{"a":[""]}"#, r#"{"a":null}"#));
}

#[test]
fn numbers_by_value() {
    for ev in ["300", "300.0", "3e2", "3.00E+2", "300.000"] {
        assert!(m(r#"{"a":[300]}"#, &format!(r#"{{"a":{ev}}}"#)), "{ev}");
        assert!(
            m(
                r#"{"a":[{"numeric":["=",3e2]}]}"#,
                &format!(r#"{{"a":{ev}}}"#)
            ),
            "{ev}"
        );
    }
    assert!(!m(r#"{"a":[300]}"#, r#"{"a":"300"}"#));
    // Beyond the numeric range an exact number still compares by value.
    assert!(m(
        r#"{"acct":[123456789012]}"#,
        r#"{"acct":1.23456789012e11}"#
    ));
}

#[test]
fn numeric_ranges() {
    let p = r#"{"n":[{"numeric":[">",0,"<=",5]}]}"#;
    assert!(m(p, r#"{"n":5}"#));
    assert!(m(p, r#"{"n":0.0000001}"#));
    assert!(!m(p, r#"{"n":0}"#));
    assert!(!m(p, r#"{"n":5.0000001}"#));
    assert!(!m(p, r#"{"n":"3"}"#));
    assert!(m(r#"{"n":[{"numeric":["<",10]}]}"#, r#"{"n":-1e9}"#));
    assert!(m(r#"{"n":[{"numeric":[">=",10]}]}"#, r#"{"n":10}"#));
    assert!(!m(r#"{"n":[{"numeric":[">",10]}]}"#, r#"{"n":10}"#));
    assert!(m(r#"{"n":[{"numeric":[">",10]}]}"#, r#"{"n":[1, 11]}"#));
    // Values outside +-5e9 are not compared numerically.
    assert!(!m(r#"{"n":[{"numeric":[">",10]}]}"#, r#"{"n":6e9}"#));
    assert!(m(r#"{"n":[{"numeric":["<=",5e9]}]}"#, r#"{"n":5e9}"#));
}

#[test]
fn prefix_suffix_ignore_case_wildcard() {
    assert!(m(
        r#"{"t":[{"prefix":"2017-10-02"}]}"#,
        r#"{"t":"2017-10-02T18:43:48Z"}"#
    ));
    assert!(!m(r#"{"t":[{"prefix":"1"}]}"#, r#"{"t":123}"#));
    assert!(m(r#"{"f":[{"suffix":".png"}]}"#, r#"{"f":"a.png"}"#));
    assert!(m(
        r#"{"s":[{"prefix":{"equals-ignore-case":"EventB"}}]}"#,
        r#"{"s":"eventbridge"}"#
    ));
    assert!(m(
        r#"{"s":[{"suffix":{"equals-ignore-case":"tBridge"}}]}"#,
        r#"{"s":"EVENTBRIDGE"}"#
    ));
    assert!(m(
        r#"{"n":[{"equals-ignore-case":"alice"}]}"#,
        r#"{"n":"ALICE"}"#
    ));
    assert!(!m(
        r#"{"n":[{"equals-ignore-case":"alice"}]}"#,
        r#"{"n":"alicia"}"#
    ));
    let w = r#"{"k":[{"wildcard":"dir/*.png"}]}"#;
    assert!(m(w, r#"{"k":"dir/a.png"}"#));
    assert!(m(w, r#"{"k":"dir/sub/a.png"}"#));
    assert!(!m(w, r#"{"k":"other/a.png"}"#));
    assert!(m(r#"{"k":[{"wildcard":"a\\*b"}]}"#, r#"{"k":"a*b"}"#));
    assert!(!m(r#"{"k":[{"wildcard":"a\\*b"}]}"#, r#"{"k":"axb"}"#));
}

#[test]
fn anything_but_forms() {
    let p = r#"{"s":[{"anything-but":"initializing"}]}"#;
    assert!(m(p, r#"{"s":"running"}"#));
    assert!(!m(p, r#"{"s":"initializing"}"#));
    assert!(!m(p, r"{}"));
    assert!(m(p, r#"{"s":5}"#));
    assert!(m(
        r#"{"s":[{"anything-but":["stopped","overloaded"]}]}"#,
        r#"{"s":"running"}"#
    ));
    assert!(!m(
        r#"{"x":[{"anything-but":[100,200]}]}"#,
        r#"{"x":100.0}"#
    ));
    assert!(m(
        r#"{"x":[{"anything-but":[100,200]}]}"#,
        r#"{"x":[100,50]}"#
    ));
    assert!(!m(
        r#"{"x":[{"anything-but":[100,200]}]}"#,
        r#"{"x":[100,200]}"#
    ));
    assert!(!m(
        r#"{"s":[{"anything-but":{"prefix":"init"}}]}"#,
        r#"{"s":"initial"}"#
    ));
    assert!(m(
        r#"{"s":[{"anything-but":{"prefix":"init"}}]}"#,
        r#"{"s":"run"}"#
    ));
    assert!(!m(
        r#"{"f":[{"anything-but":{"suffix":".png"}}]}"#,
        r#"{"f":"a.png"}"#
    ));
    assert!(!m(
        r#"{"s":[{"anything-but":{"equals-ignore-case":["a","b"]}}]}"#,
        r#"{"s":"B"}"#
    ));
    assert!(m(
        r#"{"s":[{"anything-but":{"equals-ignore-case":["a","b"]}}]}"#,
        r#"{"s":"c"}"#
    ));
    assert!(!m(
        r#"{"p":[{"anything-but":{"wildcard":"*/lib/*"}}]}"#,
        r#"{"p":"/usr/lib/x"}"#
    ));
    assert!(m(
        r#"{"p":[{"anything-but":{"wildcard":["*/lib/*","*.so"]}}]}"#,
        r#"{"p":"/usr/bin/x"}"#
    ));
}

#[test]
fn exists_on_leaves_only() {
    assert!(m(r#"{"d":{"c":[{"exists":true}]}}"#, r#"{"d":{"c":1}}"#));
    assert!(m(r#"{"d":{"c":[{"exists":true}]}}"#, r#"{"d":{"c":null}}"#));
    assert!(!m(
        r#"{"d":{"c":[{"exists":true}]}}"#,
        r#"{"d":{"c":{"c1":1}}}"#
    ));
    assert!(m(
        r#"{"d":{"c":[{"exists":false}]}}"#,
        r#"{"d":{"c":{"c1":100}}}"#
    ));
    assert!(m(r#"{"d":{"c":[{"exists":false}]}}"#, r#"{"d":{}}"#));
    assert!(m(r#"{"d":{"c":[{"exists":false}]}}"#, r"{}"));
    assert!(m(r#"{"d":{"c":[{"exists":false}]}}"#, r#"{"d":{"c":[]}}"#));
    assert!(!m(
        r#"{"d":{"c":[{"exists":false}]}}"#,
        r#"{"d":{"c":[1]}}"#
    ));
    assert!(m(r#"{"c":[{"exists":false}, "x"]}"#, r#"{"c":"x"}"#));
    assert!(!m(r#"{"c":[{"exists":false}, "x"]}"#, r#"{"c":"y"}"#));
}

#[test]
fn cidr_and_ip_strings() {
    let p = r#"{"ip":[{"cidr":"10.0.0.0/24"}]}"#;
    assert!(m(p, r#"{"ip":"10.0.0.255"}"#));
    assert!(!m(p, r#"{"ip":"10.0.1.0"}"#));
    assert!(!m(p, r#"{"ip":"not an ip"}"#));
    assert!(m(
        r#"{"ip":[{"cidr":"2001:db8::/32"}]}"#,
        r#"{"ip":"2001:db8:0:0:0:0:0:1"}"#
    ));
    assert!(m(r#"{"ip":["::1"]}"#, r#"{"ip":"0:0:0:0:0:0:0:1"}"#));
}

#[test]
fn arrays_any_element_and_consistency() {
    let p = r#"{"resources":["arn:1","arn:2"]}"#;
    assert!(m(p, r#"{"resources":["arn:0","arn:2"]}"#));
    assert!(!m(p, r#"{"resources":[]}"#));
    let e = r#"{"employees":[{"firstName":"John","lastName":"Doe"},{"firstName":"Anna","lastName":"Smith"},{"firstName":"Peter","lastName":"Jones"}]}"#;
    assert!(m(r#"{"employees":{"firstName":["Anna"]}}"#, e));
    assert!(m(
        r#"{"employees":{"firstName":["Anna"],"lastName":["Smith"]}}"#,
        e
    ));
    assert!(!m(
        r#"{"employees":{"firstName":["Anna"],"lastName":["Jones"]}}"#,
        e
    ));
    let nested =
        r#"{"e":[[{"f":"John","l":"Doe"},{"f":"Anna","l":"Smith"}],[{"f":"Peter","l":"Jones"}]]}"#;
    assert!(m(r#"{"e":{"f":["Peter"]}}"#, nested));
    assert!(!m(r#"{"e":{"f":["Anna"],"l":["Doe"]}}"#, nested));
}

#[test]
fn or_rules() {
    let p = r#"{"source":["aws.cloudwatch"],"$or":[{"metricName":["CPUUtilization"]},{"namespace":["AWS/EC2"]}]}"#;
    assert!(m(p, r#"{"source":"aws.cloudwatch","namespace":"AWS/EC2"}"#));
    assert!(m(
        p,
        r#"{"source":"aws.cloudwatch","metricName":"CPUUtilization"}"#
    ));
    assert!(!m(p, r#"{"source":"aws.cloudwatch","namespace":"AWS/ES"}"#));
    let nested = r#"{"detail":{"$or":[{"a":[1]},{"b":[2],"$or":[{"c":[3]},{"d":[4]}]}]}}"#;
    assert!(m(nested, r#"{"detail":{"b":2,"d":4}}"#));
    assert!(!m(nested, r#"{"detail":{"b":2}}"#));
}

#[test]
fn refusals_name_the_key() {
    let cases: &[(&str, &str)] = &[
        (r#"{"a":"x"}"#, "a"),
        (r#"{"a":[]}"#, "a"),
        (r#"{"a":{}}"#, "a"),
        (r"{}", "<root>"),
        (r"[]", "<root>"),
        (r#"{"a":[[1]]}"#, "a"),
        (r#"{"a":[{"prefix":1}]}"#, "a"),
        (r#"{"a":[{"prefix":"x","suffix":"y"}]}"#, "a"),
        (r#"{"a":[{"unknown":"x"}]}"#, "a"),
        (r#"{"a":{"b":[{"numeric":[">",1,">",2]}]}}"#, "a.b"),
        (r#"{"a":[{"numeric":[">",5,"<",1]}]}"#, "a"),
        (r#"{"a":[{"numeric":["<",1,">",0]}]}"#, "a"),
        (r#"{"a":[{"numeric":["=",5000000001]}]}"#, "a"),
        (r#"{"a":[{"numeric":["=",0.1234567]}]}"#, "a"),
        (r#"{"a":[{"numeric":["=","5"]}]}"#, "a"),
        (r#"{"a":[{"numeric":5}]}"#, "a"),
        (r#"{"a":[{"exists":"yes"}]}"#, "a"),
        (r#"{"a":[{"anything-but":[]}]}"#, "a"),
        (r#"{"a":[{"anything-but":["x",1]}]}"#, "a"),
        (r#"{"a":[{"anything-but":[null]}]}"#, "a"),
        (r#"{"a":[{"anything-but":{"prefix":""}}]}"#, "a"),
        (r#"{"a":[{"anything-but":{"regex":"x"}}]}"#, "a"),
        (r#"{"a":[{"wildcard":"a**b"}]}"#, "a"),
        (r#"{"a":[{"wildcard":"a\\b"}]}"#, "a"),
        (r#"{"a":[{"cidr":"10.0.0.0"}]}"#, "a"),
        (r#"{"a":[{"cidr":"10.0.0.0/33"}]}"#, "a"),
        (r#"{"a":[{"prefix":{"wildcard":"x"}}]}"#, "a"),
        (r#"{"$or":[{"a":[1]}]}"#, "$or"),
        (r#"{"$or":{"a":[1]}}"#, "$or"),
        (r#"{"$or":[{"a":[1]},"b"]}"#, "$or[1]"),
        (r#"{"$or":[{"a":[1]},{"prefix":["b"]}]}"#, "$or[1].prefix"),
    ];
    for (p, path) in cases {
        let (got, reason) = refused(p);
        assert_eq!(&got, path, "{p}: {reason}");
        assert!(!reason.is_empty());
    }
}

#[test]
fn bad_events_are_refused() {
    let p = Pattern::parse_json(r#"{"a":[1]}"#).unwrap_or_else(|e| panic!("{e}"));
    for ev in ["[]", "1", "{", r#"{"a":1}x"#, ""] {
        assert!(
            matches!(
                test_event_pattern(&p, ev.as_bytes()),
                Err(Error::InvalidEvent { .. })
            ),
            "{ev}"
        );
    }
    // Invalid JSON inside a skipped part is still refused.
    assert!(test_event_pattern(&p, br#"{"z":[1,],"a":1}"#).is_err());
}

#[test]
fn set_matches_many_and_replaces() {
    let mut set: PatternSet<String> = PatternSet::new();
    for i in 0..100 {
        let p = Pattern::parse_json(&format!(
            r#"{{"n":[{{"numeric":[">=",{i}]}}],"k":["v{}"]}}"#,
            i % 3
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        set.insert(format!("s{i}"), p);
    }
    let mut out = Vec::new();
    set.matches_json(br#"{"n":10,"k":"v1"}"#, &mut out)
        .unwrap_or_else(|e| panic!("{e}"));
    out.sort();
    let mut want: Vec<String> = (0..=10)
        .filter(|i| i % 3 == 1)
        .map(|i| format!("s{i}"))
        .collect();
    want.sort();
    assert_eq!(out, want);
    assert!(set.remove(&"s1".to_owned()));
    assert!(!set.remove(&"s1".to_owned()));
    set.insert(
        "s4".to_owned(),
        Pattern::parse_json(r#"{"k":["zzz"]}"#).unwrap_or_else(|e| panic!("{e}")),
    );
    out.clear();
    set.matches_json(br#"{"n":10,"k":"v1"}"#, &mut out)
        .unwrap_or_else(|e| panic!("{e}"));
    out.sort();
    assert_eq!(out, vec!["s10".to_owned(), "s7".to_owned()]);
    let v: Value = serde_json::from_str(r#"{"n":10,"k":"v1"}"#).unwrap_or_default();
    let mut out2 = Vec::new();
    set.matches_value(&v, &mut out2);
    out2.sort();
    assert_eq!(out, out2);
}

#[test]
fn batch_reports_pairs_and_bad_offsets() {
    let mut set: PatternSet<u64> = PatternSet::new();
    set.insert(
        7,
        Pattern::parse_json(r#"{"a":[1]}"#).unwrap_or_else(|e| panic!("{e}")),
    );
    set.insert(
        8,
        Pattern::parse_json(r#"{"a":[{"numeric":[">",0]}]}"#).unwrap_or_else(|e| panic!("{e}")),
    );
    let buf = br#"{"a":1}{"a":2}{"a":0}"#;
    let (ev, keys) = set
        .matches_batch(buf, &[0, 7, 14, 21])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ev, vec![0, 0, 1]);
    assert_eq!(keys, vec![0, 1, 1]);
    assert!(matches!(
        set.matches_batch(buf, &[0, 7, 99]),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(
        matches!(set.matches_batch(buf, &[0, 5]), Err(Error::InvalidEvent { field, .. }) if field == "events[0]")
    );
}

#[test]
fn top_level_keys_include_or_branches() {
    let p = Pattern::parse_json(r#"{"type":["x"],"$or":[{"data":{"a":[1]}},{"subject":["s"]}]}"#)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        p.top_level_keys(),
        vec!["data".to_owned(), "subject".to_owned(), "type".to_owned()]
    );
}

#[test]
fn set_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<PatternSet<u64>>();
    check::<PatternSet<String>>();
}

#[test]
fn plain_numeric_key_agrees_with_decimal() {
    let mut texts: Vec<String> = [
        "0",
        "-0",
        "0.0",
        "-0.000000",
        "1",
        "-1",
        "01",
        "1.",
        ".5",
        "1e3",
        "1.5e2",
        "-",
        "",
        "5000000000",
        "5000000000.000001",
        "-5000000000",
        "9999999999",
        "12345.678901",
        "0.0000001",
        "1.1234567",
        "25154.0",
        "740.94",
        "-3.5",
        "1.000000",
        "00.1",
        "1.2.3",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    for i in 0..2000u64 {
        let (a, b) = (i * 7919 % 100_003, i * 104_729 % 1_000_000);
        texts.push(format!("{a}.{b:06}"));
        texts.push(format!("-{a}.{}", b % 1000));
        texts.push(format!("{}", a * 99_991));
    }
    for t in &texts {
        let slow = value::Decimal::parse(t.as_bytes()).and_then(|d| d.numeric_key());
        if let Some(fast) = value::plain_numeric_key(t.as_bytes()) {
            assert_eq!(Some(fast), slow, "{t}");
        }
    }
    assert_eq!(
        value::plain_numeric_key(b"25154.0"),
        Some(2 * 25_154_000_000)
    );
    assert!(value::plain_numeric_key(b"1e3").is_none());
}

/// A branch of four fields is anchored on one and checks its other three from one
/// record (read without bounds checks): each of those three must be looked at, so
/// failing any single one of them rejects the event, whichever field is the anchor.
#[test]
fn every_other_slot_of_a_record_is_checked() {
    let p = r#"{"a":[{"prefix":"x-1"}],"b":["B"],"c":[{"numeric":[">",5]}],"d":[{"exists":true}]}"#;
    let good = r#"{"a":"x-123","b":"B","c":7,"d":0}"#;
    assert!(m(p, good));
    for bad in [
        r#"{"a":"y-123","b":"B","c":7,"d":0}"#,
        r#"{"a":"x-123","b":"C","c":7,"d":0}"#,
        r#"{"a":"x-123","b":"B","c":5,"d":0}"#,
        r#"{"a":"x-123","b":"B","c":7}"#,
    ] {
        assert!(!m(p, bad), "{bad}");
    }
    // In a set, beside patterns sharing the broad fields, each still checks all of its own.
    let mut set = PatternSet::new();
    set.insert(0u32, Pattern::parse_json(p).unwrap());
    set.insert(
        1u32,
        Pattern::parse_json(r#"{"b":["B"],"d":[{"exists":true}]}"#).unwrap(),
    );
    set.insert(
        2u32,
        Pattern::parse_json(r#"{"c":[{"numeric":[">",5]}],"b":["B"]}"#).unwrap(),
    );
    let mut out = Vec::new();
    set.matches_json(good.as_bytes(), &mut out).unwrap();
    assert_eq!(out, [0, 1, 2]);
    out.clear();
    set.matches_json(r#"{"a":"x-123","b":"B","c":5,"d":0}"#.as_bytes(), &mut out)
        .unwrap();
    assert_eq!(out, [1]);
}

/// A batch long enough for its output to be sized from its first events (and whose
/// later events match more than the first ones did) gives the matches of matching
/// each event alone.
#[test]
fn long_batches_match_as_single_events() {
    let mut set = PatternSet::new();
    for i in 0..40u32 {
        let p = format!(r#"{{"n":[{{"numeric":[">=",{i}]}}]}}"#);
        set.insert(i, Pattern::parse_json(&p).unwrap());
    }
    let mut buf = Vec::new();
    let mut offsets = vec![0];
    for e in 0..6000usize {
        // The first 1,024 events match little; later ones up to all 40 patterns.
        let n = if e < 1024 { e % 2 } else { e % 41 };
        buf.extend_from_slice(format!(r#"{{"n":{n}}}"#).as_bytes());
        offsets.push(buf.len());
    }
    let (events, keys) = set.matches_batch(&buf, &offsets).unwrap();
    let mut want_events = Vec::new();
    let mut want_keys = Vec::new();
    for (e, w) in offsets.windows(2).enumerate() {
        let mut one = Vec::new();
        set.matches_indices(&buf[w[0]..w[1]], &mut one).unwrap();
        want_events.extend(std::iter::repeat_n(u32::try_from(e).unwrap(), one.len()));
        want_keys.extend(one);
    }
    assert!(keys.len() > 100_000);
    assert_eq!(events, want_events);
    assert_eq!(keys, want_keys);
}

/// The one-pass `plain_numeric_key` gives what the two-pass form gave on every text
/// (refusals included): digits, dots, signs and an exponent in any order and length.
#[test]
fn plain_numeric_key_equals_its_two_pass_form() {
    let mut texts: Vec<String> = [
        "",
        "-",
        ".",
        "-.",
        "0",
        "-0",
        "00",
        "0.",
        ".0",
        "1..2",
        "1.2.",
        "--1",
        "1-",
        "12345678901",
        "1234567890",
        "1234567890.123456",
        "1234567890.1234567",
        "99999999999999999999",
        "9999999999.999999",
        "0.000000",
        "0.0000000",
        "+1",
        " 1",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let alphabet = b"0123456789.-e+";
    // Every string of up to four bytes over the alphabet, then longer pseudo-random ones.
    let mut frontier = vec![String::new()];
    for _ in 0..4 {
        let mut next = Vec::new();
        for s in &frontier {
            for &c in alphabet {
                next.push(format!("{s}{}", c as char));
            }
        }
        texts.extend(next.iter().cloned());
        frontier = next;
    }
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    for _ in 0..50_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = x % 24;
        let t: String = (0..len)
            .map(|k| {
                let r = x.rotate_left(u32::try_from(5 * k).unwrap_or(0)) % 40;
                // Mostly digits, some dots and signs.
                if r < 30 {
                    char::from(b"0123456789"[usize::try_from(r % 10).unwrap_or(0)])
                } else if r < 36 {
                    '.'
                } else {
                    '-'
                }
            })
            .collect();
        texts.push(t);
    }
    for t in &texts {
        assert_eq!(
            value::plain_numeric_key(t.as_bytes()),
            value::plain_numeric_key_reference(t.as_bytes()),
            "{t:?}"
        );
    }
}

proptest::proptest! {
    #[test]
    fn plain_numeric_key_equals_its_two_pass_form_on_any_number_text(
        t in "-?[0-9]{0,12}(\\.[0-9]{0,8})?(\\.[0-9]{0,2})?",
    ) {
        proptest::prop_assert_eq!(
            value::plain_numeric_key(t.as_bytes()),
            value::plain_numeric_key_reference(t.as_bytes())
        );
    }
}

/// `matches_json` and `matches_json_trusted` pass each event's indexes through one
/// reused buffer: event after event (matching, not matching, different keys), each
/// call appends exactly that event's keys, the same as `matches_value` gives.
#[test]
fn repeated_matches_append_only_the_events_own_keys() {
    let mut set = PatternSet::new();
    set.insert(
        "total",
        Pattern::parse_json(r#"{"total":[{"numeric":[">=",0]}]}"#).unwrap(),
    );
    set.insert(
        "cur",
        Pattern::parse_json(r#"{"currency":["USD","EUR","GBP","JPY"]}"#).unwrap(),
    );
    set.insert(
        "big",
        Pattern::parse_json(r#"{"total":[{"numeric":[">",1000]}]}"#).unwrap(),
    );
    let events = [
        r#"{"currency":"JPY","total":25154.0,"items":[{"a":1}]}"#,
        r#"{"currency":"XXX","total":-1}"#,
        r#"{"currency":"EUR","total":5}"#,
        r#"{"x":{"currency":"EUR"}}"#,
        r#"{"currency":["CHF","USD"],"total":[1,2000]}"#,
        r#"{"currency":"JPY","total":25154.0,"items":[{"a":1}]}"#,
    ];
    for round in 0..3 {
        for e in events {
            let v: serde_json::Value = serde_json::from_str(e).unwrap();
            let mut want = vec!["seed"];
            set.matches_value(&v, &mut want);
            let mut got = vec!["seed"];
            set.matches_json(e.as_bytes(), &mut got).unwrap();
            assert_eq!(got, want, "round {round}: {e}");
            let mut got = vec!["seed"];
            set.matches_json_trusted(e.as_bytes(), &mut got).unwrap();
            assert_eq!(got, want, "trusted, round {round}: {e}");
        }
    }
    // A refused event leaves the next one unaffected.
    let mut out = Vec::new();
    assert!(set.matches_json_trusted(b"[1]", &mut out).is_err());
    set.matches_json_trusted(events[1].as_bytes(), &mut out)
        .unwrap();
    assert!(out.is_empty(), "{out:?}");
}
