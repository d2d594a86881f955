//! Unit tests of the schema module: registry behaviour, compatibility verdicts and
//! their reasons, validation errors, and the tape parser against `serde_json`.

#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use proptest::prelude::*;
use serde_json::{json, Value};

use super::tape::Document;
use super::{compat, Compatibility, CompiledSchema, SchemaRegistry};
use crate::Error;

fn order_schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": false,
        "required": ["id", "total", "email"],
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "total": {"type": "number", "minimum": 0},
            "email": {"type": "string", "format": "email"},
            "at": {"type": "string", "format": "date-time"},
            "items": {"type": "array", "items": {"$ref": "#/$defs/item"}, "maxItems": 5}
        },
        "$defs": {"item": {"type": "object", "required": ["sku"], "properties": {"sku": {"type": "string"}}}}
    })
}

fn reasons(old: &Value, new: &Value, mode: Compatibility) -> Vec<String> {
    compat::check(old, new, mode)
}

// ---- registry ---------------------------------------------------------------------

#[test]
fn register_numbers_versions_and_validates_against_latest() {
    let r = SchemaRegistry::new();
    let v1 = json!({"type": "object", "properties": {"a": {"type": "integer"}}});
    assert_eq!(
        r.register("t", &v1, None, Compatibility::Backward).unwrap(),
        1
    );
    let v2 = json!({"type": "object", "properties": {"a": {"type": "number"}}});
    assert_eq!(
        r.register("t", &v2, None, Compatibility::Backward).unwrap(),
        2
    );
    assert_eq!(r.versions("t"), vec![1, 2]);
    assert_eq!(r.latest_version("t"), Some(2));
    assert_eq!(r.get("t", 1), Some(v1));
    assert_eq!(r.validate("t", None, &json!({"a": 1.5})).unwrap(), 2);
    let err = r.validate("t", Some(1), &json!({"a": 1.5})).unwrap_err();
    assert!(
        matches!(err, Error::Validation { version: 1, ref instance_path, .. } if instance_path == "/a"),
        "{err}"
    );
    assert_eq!(r.types(), vec!["t".to_owned()]);
}

#[test]
fn same_schema_again_is_idempotent_and_versions_only_grow() {
    let r = SchemaRegistry::new();
    let s = json!({"type": "string"});
    assert_eq!(
        r.register("t", &s, Some(3), Compatibility::None).unwrap(),
        3
    );
    assert_eq!(r.register("t", &s, None, Compatibility::None).unwrap(), 3);
    let err = r
        .register(
            "t",
            &json!({"type": "number"}),
            Some(2),
            Compatibility::None,
        )
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidArgument { ref name, .. } if name == "version"),
        "{err}"
    );
    assert!(r.register("t", &s, Some(0), Compatibility::None).is_err());
}

#[test]
fn unknown_type_is_refused_unless_schemaless_allowed() {
    let r = SchemaRegistry::new();
    let err = r.validate("nope", None, &json!({})).unwrap_err();
    assert!(matches!(err, Error::SchemaNotFound { version: None, .. }));
    r.set_allow_schemaless(true);
    assert_eq!(r.validate("nope", None, &json!({})).unwrap(), 0);
    r.register("t", &json!({"type": "string"}), None, Compatibility::None)
        .unwrap();
    // An explicit version that does not exist is still refused.
    assert!(matches!(
        r.validate("t", Some(9), &json!("x")),
        Err(Error::SchemaNotFound {
            version: Some(9),
            ..
        })
    ));
    assert!(matches!(
        r.validator("nope", None),
        Err(Error::SchemaNotFound { .. })
    ));
}

#[test]
fn invalid_schemas_are_refused_with_a_reason() {
    let r = SchemaRegistry::new();
    for bad in [
        json!({"type": "strung"}),
        json!({"minimum": "zero"}),
        json!({"$ref": "https://example.com/remote.json"}),
        json!({"type": "string", "format": "not-a-format"}),
        json!({"type": "string", "pattern": "(?<=a)b"}),
        json!({"$schema": "https://example.com/my-dialect"}),
        json!(42),
    ] {
        let err = r
            .register("t", &bad, None, Compatibility::None)
            .unwrap_err();
        assert!(matches!(err, Error::SchemaInvalid { .. }), "{bad}: {err}");
    }
    assert!(r.types().is_empty());
}

#[test]
fn incompatible_version_is_refused_and_not_stored() {
    let r = SchemaRegistry::new();
    r.register("t", &order_schema(), None, Compatibility::Backward)
        .unwrap();
    let mut v2 = order_schema();
    v2["required"] = json!(["id", "total", "email", "at"]);
    let err = r
        .register("t", &v2, None, Compatibility::Backward)
        .unwrap_err();
    let Error::SchemaIncompatible {
        reasons,
        mode,
        version,
        ..
    } = err
    else {
        panic!("{err}")
    };
    assert_eq!(mode, "backward");
    assert_eq!(version, 2);
    assert!(
        reasons.contains("at #: the new schema requires property 'at'"),
        "{reasons}"
    );
    assert_eq!(r.versions("t"), vec![1]);
    // The same change is fine when no compatibility is asked for.
    assert_eq!(r.register("t", &v2, None, Compatibility::None).unwrap(), 2);
}

#[test]
fn compatibility_parses() {
    assert_eq!(
        "FULL".parse::<Compatibility>().unwrap(),
        Compatibility::Full
    );
    assert_eq!(
        "none".parse::<Compatibility>().unwrap(),
        Compatibility::None
    );
    assert!("sideways".parse::<Compatibility>().is_err());
}

// ---- compatibility --------------------------------------------------------------------

#[test]
fn adding_an_optional_property_to_a_closed_model() {
    let old = json!({"type": "object", "additionalProperties": false, "properties": {"a": {"type": "string"}}});
    let new = json!({"type": "object", "additionalProperties": false,
                     "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}});
    assert!(reasons(&old, &new, Compatibility::Backward).is_empty());
    let fwd = reasons(&old, &new, Compatibility::Forward);
    assert_eq!(fwd.len(), 1, "{fwd:?}");
    assert!(fwd[0].contains("allows property 'b'"), "{fwd:?}");
    assert!(!reasons(&old, &new, Compatibility::Full).is_empty());
}

#[test]
fn adding_a_property_to_an_open_model_is_not_backward() {
    let old = json!({"type": "object", "properties": {"a": {"type": "string"}}});
    let new = json!({"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}});
    let back = reasons(&old, &new, Compatibility::Backward);
    assert!(
        back.iter()
            .any(|r| r.contains("#/properties/b") && r.contains("open content model")),
        "{back:?}"
    );
    assert!(reasons(&old, &new, Compatibility::Forward).is_empty());
}

#[test]
fn required_added_and_removed() {
    let old = json!({"type": "object", "required": ["a"], "properties": {"a": {}, "b": {}}});
    let new = json!({"type": "object", "required": ["a", "b"], "properties": {"a": {}, "b": {}}});
    assert!(!reasons(&old, &new, Compatibility::Backward).is_empty());
    assert!(reasons(&old, &new, Compatibility::Forward).is_empty());
    assert!(reasons(&new, &old, Compatibility::Backward).is_empty());
}

#[test]
fn type_widening_and_narrowing() {
    let int = json!({"type": "integer"});
    let num = json!({"type": "number"});
    assert!(reasons(&int, &num, Compatibility::Backward).is_empty());
    let r = reasons(&num, &int, Compatibility::Backward);
    assert!(r[0].contains("accepts type number"), "{r:?}");
    let nullable = json!({"type": ["string", "null"]});
    assert!(reasons(
        &json!({"type": "string"}),
        &nullable,
        Compatibility::Backward
    )
    .is_empty());
    assert!(!reasons(
        &json!({"type": "string"}),
        &nullable,
        Compatibility::Forward
    )
    .is_empty());
    // Untyped old schema accepts everything; a typed new one does not.
    assert!(!reasons(&json!({}), &num, Compatibility::Backward).is_empty());
}

#[test]
fn enum_and_const_are_checked_value_by_value() {
    let small = json!({"enum": ["a", "b"]});
    let big = json!({"enum": ["a", "b", "c"]});
    assert!(reasons(&small, &big, Compatibility::Backward).is_empty());
    let r = reasons(&big, &small, Compatibility::Backward);
    assert!(r.iter().any(|r| r.contains("\"c\"")), "{r:?}");
    assert!(reasons(
        &json!({"const": "a"}),
        &json!({"type": "string", "maxLength": 1}),
        Compatibility::Backward
    )
    .is_empty());
    assert!(!reasons(&json!({"type": "string"}), &small, Compatibility::Backward).is_empty());
    assert!(reasons(
        &json!({"type": "boolean"}),
        &json!({"enum": [true, false, null]}),
        Compatibility::Backward
    )
    .is_empty());
}

#[test]
fn numeric_and_length_bounds() {
    let a = json!({"type": "number", "minimum": 0, "maximum": 10});
    let b = json!({"type": "number", "minimum": 0, "maximum": 100});
    assert!(reasons(&a, &b, Compatibility::Backward).is_empty());
    assert!(reasons(&b, &a, Compatibility::Backward)[0].contains("maximum"));
    let excl = json!({"type": "number", "exclusiveMinimum": 0});
    assert!(reasons(
        &excl,
        &json!({"type": "number", "minimum": 0}),
        Compatibility::Backward
    )
    .is_empty());
    assert!(!reasons(
        &json!({"type": "number", "minimum": 0}),
        &excl,
        Compatibility::Backward
    )
    .is_empty());
    let s5 = json!({"type": "string", "maxLength": 5});
    let s9 = json!({"type": "string", "maxLength": 9, "minLength": 0});
    assert!(reasons(&s5, &s9, Compatibility::Backward).is_empty());
    assert!(reasons(&s9, &s5, Compatibility::Backward)[0].contains("maxLength"));
    let items = |n: u64| json!({"type": "array", "minItems": n});
    assert!(reasons(&items(2), &items(1), Compatibility::Backward).is_empty());
    assert!(!reasons(&items(1), &items(2), Compatibility::Backward).is_empty());
    let m4 = json!({"type": "integer", "multipleOf": 4});
    let m2 = json!({"type": "integer", "multipleOf": 2});
    assert!(reasons(&m4, &m2, Compatibility::Backward).is_empty());
    assert!(!reasons(&m2, &m4, Compatibility::Backward).is_empty());
}

#[test]
fn patterns_and_formats_must_be_unchanged() {
    let p1 = json!({"type": "string", "pattern": "^a+$"});
    let p2 = json!({"type": "string", "pattern": "^a*$"});
    let r = reasons(&p1, &p2, Compatibility::Backward);
    assert!(r[0].contains("pattern"), "{r:?}");
    assert!(reasons(&p1, &json!({"type": "string"}), Compatibility::Backward).is_empty());
    assert!(!reasons(&json!({"type": "string"}), &p1, Compatibility::Backward).is_empty());
    let f = json!({"type": "string", "format": "email"});
    assert!(!reasons(&json!({"type": "string"}), &f, Compatibility::Backward).is_empty());
}

#[test]
fn nested_objects_arrays_and_refs() {
    let old = order_schema();
    let mut new = order_schema();
    new["$defs"]["item"]["properties"]["sku"] = json!({"type": "string", "maxLength": 8});
    let r = reasons(&old, &new, Compatibility::Backward);
    assert_eq!(r.len(), 1, "{r:?}");
    assert!(
        r[0].starts_with("at #/$defs/item/properties/sku:") && r[0].contains("maxLength"),
        "{r:?}"
    );
    assert!(reasons(&old, &new, Compatibility::Forward).is_empty());
    // Draft 7 tuple items against 2020-12 prefixItems.
    let d7 = json!({"$schema": "http://json-schema.org/draft-07/schema#", "type": "array",
                    "items": [{"type": "string"}], "additionalItems": false});
    let d2020 =
        json!({"type": "array", "prefixItems": [{"type": "string"}], "items": {"type": "integer"}});
    assert!(reasons(&d7, &d2020, Compatibility::Backward).is_empty());
    assert!(!reasons(&d7, &d2020, Compatibility::Forward).is_empty());
}

#[test]
fn recursive_refs_terminate() {
    let tree = json!({"$defs": {"node": {"type": "object", "properties": {"kids": {"type": "array", "items": {"$ref": "#/$defs/node"}}}}},
                      "$ref": "#/$defs/node"});
    assert!(reasons(&tree, &tree.clone(), Compatibility::Full).is_empty());
    let mut narrower = tree.clone();
    narrower["$defs"]["node"]["properties"]["kids"]["maxItems"] = json!(2);
    assert!(reasons(&tree, &narrower, Compatibility::Forward).is_empty());
    assert!(!reasons(&tree, &narrower, Compatibility::Backward).is_empty());
}

#[test]
fn combinators() {
    let s_or_n = json!({"anyOf": [{"type": "string"}, {"type": "number"}]});
    assert!(reasons(&json!({"type": "string"}), &s_or_n, Compatibility::Backward).is_empty());
    assert!(!reasons(&s_or_n, &json!({"type": "string"}), Compatibility::Backward).is_empty());
    assert!(reasons(
        &s_or_n,
        &json!({"type": ["string", "number"]}),
        Compatibility::Backward
    )
    .is_empty());
    let one = json!({"oneOf": [{"type": "string"}, {"type": "number"}]});
    assert!(reasons(&one, &one.clone(), Compatibility::Full).is_empty());
    assert!(!reasons(&json!({"type": "string"}), &one, Compatibility::Backward).is_empty());
    let all = json!({"allOf": [{"type": "object"}, {"required": ["a"]}]});
    assert!(reasons(&all, &json!({"type": "object"}), Compatibility::Backward).is_empty());
}

#[test]
fn unanalysed_keywords_refuse_unless_unchanged() {
    let n1 = json!({"type": "string", "not": {"const": "x"}});
    let n2 = json!({"type": "string", "not": {"const": "y"}});
    let r = reasons(&n1, &n2, Compatibility::Backward);
    assert!(
        r[0].contains("'not'") && r[0].contains("not analysed"),
        "{r:?}"
    );
    assert!(reasons(&n1, &n1.clone(), Compatibility::Full).is_empty());
    // Dropping a restriction only widens.
    assert!(reasons(&n1, &json!({"type": "string"}), Compatibility::Backward).is_empty());
}

// ---- validation ---------------------------------------------------------------------

#[test]
fn validation_errors_say_where_without_the_value() {
    let c = CompiledSchema::compile("orders", 4, &order_schema()).unwrap();
    let bad = json!({"id": "6a2f41a3-c54c-fce8-32d2-0324e1c32e22", "total": 1, "email": "secret-no-at-sign"});
    let Err(Error::Validation {
        instance_path,
        schema_path,
        reason,
        index,
        version,
        ..
    }) = c.validate(&bad, 7)
    else {
        panic!("expected a validation error")
    };
    assert_eq!(
        (instance_path.as_str(), schema_path.as_str(), index, version),
        ("/email", "/properties/email/format", 7, 4)
    );
    assert!(
        !reason.contains("secret"),
        "reason leaks the value: {reason}"
    );
    let nested = json!({"id": "6a2f41a3-c54c-4ce8-b2d2-0324e1c32e22", "total": 1, "email": "a@b.co", "items": [{"sku": "x"}, {}]});
    let err = c
        .validate_json(serde_json::to_string(&nested).unwrap().as_bytes(), 0)
        .unwrap_err();
    assert!(
        matches!(err, Error::Validation { ref instance_path, .. } if instance_path == "/items/1"),
        "{err}"
    );
}

#[test]
fn formats_are_asserted() {
    let c = CompiledSchema::compile("t", 1, &order_schema()).unwrap();
    let base = json!({"id": "6a2f41a3-c54c-4ce8-b2d2-0324e1c32e22", "total": 1, "email": "a@example.com", "at": "2024-01-01T00:00:00Z"});
    assert!(c.is_valid(&base));
    for (field, bad) in [
        ("id", "not-a-uuid"),
        ("email", "alice.example.com"),
        ("at", "2024-13-45T25:61:00Z"),
    ] {
        let mut v = base.clone();
        v[field] = json!(bad);
        assert!(!c.is_valid(&v), "{field}={bad}");
        assert!(
            !c.is_valid_json(v.to_string().as_bytes()),
            "{field}={bad} (bytes)"
        );
    }
}

#[test]
fn buffers_and_offsets() {
    let c = CompiledSchema::compile("t", 1, &json!({"type": "object", "required": ["a"]})).unwrap();
    let docs = [r#"{"a":1}"#, r#"{"b":1}"#, "not json", r#"{"a":1,"a":2}"#];
    let mut buf = Vec::new();
    let mut offsets = vec![0_u64];
    for d in docs {
        buf.extend_from_slice(d.as_bytes());
        offsets.push(buf.len() as u64);
    }
    assert_eq!(
        c.check_buffer(&buf, &offsets, false).unwrap(),
        vec![true, false, false, false]
    );
    let errs = c.validate_buffer(&buf, &offsets, true).unwrap();
    assert!(errs[0].is_none());
    assert!(
        matches!(&errs[1], Some(Error::Validation { index: 1, schema_path, .. }) if schema_path == "/required")
    );
    assert!(
        matches!(&errs[2], Some(Error::Validation { index: 2, reason, .. }) if reason.contains("invalid JSON at byte 0"))
    );
    assert!(
        matches!(&errs[3], Some(Error::Validation { reason, .. }) if reason.contains("duplicate object key \"a\""))
    );
    assert!(c.check_buffer(&buf, &[0, 5, 3], false).is_err());
    assert!(c.check_buffer(&buf, &[0, 9999], false).is_err());
    assert!(c.check_buffer(&buf, &[], false).is_err());
    assert_eq!(
        c.check_buffer(&buf, &[0], false).unwrap(),
        Vec::<bool>::new()
    );
}

#[test]
fn tape_conforms_to_the_jsonschema_contract() {
    let text = jsonschema::json::conformance::document().to_string();
    let doc = Document::parse(text.as_bytes()).unwrap();
    jsonschema::json::conformance::assert_conformance::<super::tape::TapeJson>(&doc.root());
}

#[test]
fn tape_refuses_what_serde_refuses() {
    for bad in [
        "",
        "{",
        "[1,]",
        "{\"a\":1,}",
        "01",
        "1.",
        "-",
        "1e",
        "\"\\x\"",
        "\"\\ud800\"",
        "\"\\udc00x\"",
        "\"a\u{1}\"",
        "tru",
        "nul",
        "[1] 2",
        "1e400",
        "{\"a\" 1}",
        "{1:2}",
    ] {
        assert!(
            serde_json::from_str::<Value>(bad).is_err(),
            "serde accepts {bad:?}"
        );
        assert!(
            Document::parse(bad.as_bytes()).is_err(),
            "tape accepts {bad:?}"
        );
    }
    let deep = "[".repeat(200) + &"]".repeat(200);
    assert!(Document::parse(deep.as_bytes()).is_err());
    assert!(Document::parse(&[b'"', 0xff, b'"']).is_err());
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".*".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(".{0,6}", inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn tape_round_trips_like_serde(v in arb_json(), pretty in any::<bool>()) {
        let text = if pretty { serde_json::to_string_pretty(&v).unwrap() } else { v.to_string() };
        let doc = Document::parse(text.as_bytes()).unwrap();
        prop_assert_eq!(doc.to_value(), serde_json::from_str::<Value>(&text).unwrap());
    }

    #[test]
    fn tape_never_panics_and_agrees_on_acceptance(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let ours = Document::parse(&bytes).map(|d| d.to_value());
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(v) => {
                // The only deliberate difference: duplicate keys are refused.
                if let Ok(ours) = ours { prop_assert_eq!(ours, v); }
            }
            Err(_) => prop_assert!(ours.is_err()),
        }
    }

    #[test]
    fn tape_and_value_validators_agree(v in arb_json()) {
        let schema = json!({"type": ["object", "array", "string", "number", "boolean", "null"],
            "properties": {"a": {"type": "integer", "minimum": 0}, "": {"maxLength": 3}},
            "items": {"not": {"type": "null"}}, "maxLength": 5, "multipleOf": 0.5,
            "additionalProperties": {"type": ["string", "object", "array", "number"]}});
        let c = CompiledSchema::compile("t", 1, &schema).unwrap();
        prop_assert_eq!(c.is_valid(&v), c.is_valid_json(v.to_string().as_bytes()));
    }
}
