//! Behaviours where answers were checked against EventBridge itself (its
//! TestEventPattern API) and its open-source engine, aws/event-ruler: each case says
//! where its answer comes from.

use super::*;

fn m(pattern: &str, event: &str) -> bool {
    let p = Pattern::parse_json(pattern).unwrap_or_else(|e| panic!("pattern {pattern}: {e}"));
    test_event_pattern(&p, event.as_bytes()).unwrap_or_else(|e| panic!("event {event}: {e}"))
}

/// A dot in a key is a path step, in the pattern and in the event (EventBridge
/// joins paths with dots; event-ruler `JsonRuleCompilerTest.testEnd2End` writes
/// `"detail.state"` for `{"detail": {"state": ..}}`).
#[test]
fn dotted_keys_are_path_steps_in_patterns_and_events() {
    let nested = r#"{"detail":{"state":{"status":"running"}}}"#;
    let dotted = r#"{"detail":{"state.status":"running"}}"#;
    let top_dotted = r#"{"detail.state.status":"running"}"#;
    for p in [
        r#"{"detail":{"state.status":["running"]}}"#,
        r#"{"detail":{"state":{"status":["running"]}}}"#,
        r#"{"detail.state":{"status":["running"]}}"#,
        r#"{"detail.state.status":["running"]}"#,
    ] {
        for e in [nested, dotted, top_dotted] {
            assert!(m(p, e), "{p} on {e}");
        }
        assert!(!m(p, r#"{"detail":{"state":{"status":"stopped"}}}"#), "{p}");
        assert!(!m(p, r#"{"detail":{"state":"running"}}"#), "{p}");
    }
    // Dotted keys at the top of a pattern, with numeric matching.
    let p = r#"{"detail.count":[{"numeric":["<=",2]}]}"#;
    assert!(m(p, r#"{"detail":{"count":2}}"#));
    assert!(m(p, r#"{"detail.count":1.5}"#));
    assert!(!m(p, r#"{"detail":{"count":3}}"#));
    // Arrays along a dotted path still hold many values.
    assert!(m(r#"{"a.b":["x"]}"#, r#"{"a":[{"b":"y"},{"b":"x"}]}"#));
    // Empty steps are steps too: "a..b" is a, "", b.
    assert!(m(r#"{"a..b":[1]}"#, r#"{"a":{"":{"b":1}}}"#));
    assert!(m(r#"{"a":{"":{"b":[1]}}}"#, r#"{"a..b":1}"#));
    assert!(!m(r#"{"a.b":[1]}"#, r#"{"ab":1}"#));
    // exists: false looks at the dotted path too.
    assert!(!m(r#"{"a.b":[{"exists":false}]}"#, r#"{"a":{"b":1}}"#));
    assert!(!m(r#"{"a":{"b":[{"exists":false}]}}"#, r#"{"a.b":1}"#));
    assert!(m(r#"{"a.b":[{"exists":false}]}"#, r#"{"a":{"c":1}}"#));
}

/// Two spellings of one path in one pattern are one path: the later replaces the
/// earlier (event-ruler's default `JsonRuleCompiler`, which writes each field into
/// every branch so far).
#[test]
fn a_path_given_again_replaces_the_earlier_condition() {
    let p = r#"{"a":{"b":[1]},"a.b":[2]}"#;
    assert!(m(p, r#"{"a":{"b":2}}"#));
    assert!(!m(p, r#"{"a":{"b":1}}"#));
    // Objects under one key given twice are merged, as a streaming parser reads them.
    let p = r#"{"a":{"b":[1]},"a":{"c":[2]}}"#;
    assert!(m(p, r#"{"a":{"b":1,"c":2}}"#));
    assert!(!m(p, r#"{"a":{"c":2}}"#));
}

/// A field beside `$or` and inside one of its branches: the branch's condition
/// replaces the outer one in that branch only (event-ruler accepts the pattern;
/// each branch is the fields so far with the branch's own written over them).
#[test]
fn a_field_beside_or_and_inside_a_branch() {
    let p = r#"{"name":["a","b"],"$or":[{"name":[{"anything-but":"a"}]},{"condition1":["x"]}]}"#;
    // First branch: name is anything but "a".
    assert!(m(p, r#"{"name":"c"}"#));
    assert!(m(p, r#"{"name":"b"}"#));
    assert!(!m(p, r#"{"name":"a"}"#));
    // Second branch: name in [a, b] and condition1 = x.
    assert!(m(p, r#"{"name":"a","condition1":"x"}"#));
    assert!(!m(p, r#"{"name":"a","condition1":"y"}"#));
    // A field after `$or` is written over every branch.
    let after =
        r#"{"$or":[{"name":[{"anything-but":"a"}]},{"condition1":["x"]}],"name":["a","b"]}"#;
    assert!(!m(after, r#"{"name":"c"}"#));
    assert!(m(after, r#"{"name":"a"}"#));
    assert!(m(after, r#"{"name":"b","condition1":"y"}"#));
}

/// Fields inside objects in arrays hold within one element; `{"exists": false}`
/// holds for the element the other fields were taken from, in the order of the
/// fields' dotted names (event-ruler's `ACFinder` with
/// `NameState.getNameTransitions`). Cases named after event-ruler's
/// `correctness-cases.json`.
#[test]
fn array_consistency_with_exists_false() {
    let both = r#"{"d":{"a":[{"exists":true}],"b":[{"exists":true}]}}"#;
    assert!(m(both, r#"{"d":[{"a":1,"b":2}]}"#)); // objarray: same element
    assert!(!m(both, r#"{"d":[{"a":1},{"b":2}]}"#)); // objarray: split
    assert!(m(both, r#"{"d":[{"a":1},{"b":2},{"a":3,"b":4}]}"#)); // 3 elem, last valid
    let inner = r#"{"u":{"t":{"k":["color"],"v":["blue"]}}}"#;
    assert!(m(inner, r#"{"u":[{"t":[{"k":"color","v":"blue"}]}]}"#)); // nested: inner same
    assert!(!m(inner, r#"{"u":[{"t":[{"k":"color"},{"v":"blue"}]}]}"#)); // inner split
    let absent = r#"{"d":{"a":[{"exists":true}],"b":[{"exists":false}]}}"#;
    assert!(m(absent, r#"{"d":[{"a":1}]}"#)); // exists-false: absent
    assert!(!m(absent, r#"{"d":[{"a":1,"b":2}]}"#)); // exists-false: present
                                                     // b is absent from the element a came from, though another element has it.
    assert!(m(absent, r#"{"d":[{"a":1},{"b":2}]}"#));
    assert!(m(absent, r#"{"d":[{"a":1,"b":2},{"a":3}]}"#));
    assert!(!m(absent, r#"{"d":[{"a":1,"b":2},{"b":3}]}"#));
    // A value outside arrays is in every element's reach.
    assert!(!m(absent, r#"{"d":{"a":[1],"b":2}}"#));
    // Taken in name order: b before c, so b is looked for in every element.
    let first = r#"{"d":{"b":[{"exists":false}],"c":[{"exists":true}]}}"#;
    assert!(!m(first, r#"{"d":[{"c":1},{"b":2}]}"#));
    assert!(m(first, r#"{"d":[{"c":1}]}"#));
    // Arrays of arrays of objects.
    let deep = r#"{"a":{"b":[1],"c":[{"exists":false}]}}"#;
    assert!(m(deep, r#"{"a":[[{"b":1},{"c":2}]]}"#));
    assert!(!m(deep, r#"{"a":[[{"b":1,"c":2}]]}"#));
    assert!(m(deep, r#"{"a":[[{"c":2}],[{"b":1}]]}"#));
    // Absent or a value, in one slot.
    let either = r#"{"d":{"a":["x"],"b":[{"exists":false},"y"]}}"#;
    assert!(m(either, r#"{"d":[{"a":"x","b":"y"}]}"#));
    assert!(m(either, r#"{"d":[{"a":"x"},{"b":"z"}]}"#));
    assert!(!m(either, r#"{"d":[{"a":"x","b":"z"}]}"#));
    // Under $or, each branch on its own.
    let or = r#"{"$or":[{"d":{"a":[1],"b":[{"exists":false}]}},{"e":[2]}]}"#;
    assert!(m(or, r#"{"d":[{"a":1},{"b":1}]}"#));
    assert!(!m(or, r#"{"d":[{"a":1,"b":1}]}"#));
}
