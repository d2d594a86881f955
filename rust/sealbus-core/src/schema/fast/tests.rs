//! Differential tests of the fast path: whenever it decides (`Valid` or `Invalid`), its
//! verdict must be the crate's over the tape, the route every body took before it. The
//! bodies are valid events mutated field by field (wrong types, boundary numbers in
//! several spellings, escapes, unicode, lengths at their bounds, extra, missing and
//! duplicate keys, broken JSON) over the order schema in two drafts, and random
//! documents over schemas that exercise every supported keyword.

#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use std::sync::LazyLock;

use proptest::prelude::*;
use serde_json::{json, Value};

use super::accept::{self, FixedPattern};
use super::text::StringCheck;
use super::{Scratch, Verdict};
use crate::schema::tape::Document;
use crate::schema::CompiledSchema;

/// The shared `OrderPlaced` workload's schema (draft 2020-12).
fn orders_schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": false,
        "required": ["eventId", "eventType", "version", "occurredAt", "source", "orderId", "customer",
                     "items", "currency", "subtotal", "tax", "total", "shippingMethod", "giftWrap"],
        "properties": {
            "eventId": {"type": "string", "format": "uuid"},
            "eventType": {"const": "OrderPlaced"},
            "version": {"type": "integer", "minimum": 1, "maximum": 3},
            "occurredAt": {"type": "string", "format": "date-time"},
            "source": {"enum": ["web", "mobile", "store", "partner"]},
            "orderId": {"type": "string", "pattern": "^ord-[0-9a-f]{12}$"},
            "customer": {
                "type": "object", "additionalProperties": false,
                "required": ["id", "email", "tier", "country"],
                "properties": {
                    "id": {"type": "string", "pattern": "^cus-[0-9]{8}$"},
                    "email": {"type": "string", "format": "email", "maxLength": 254},
                    "tier": {"enum": ["bronze", "silver", "gold", "platinum"]},
                    "country": {"type": "string", "pattern": "^[A-Z]{2}$"}
                }
            },
            "items": {
                "type": "array", "minItems": 1, "maxItems": 50,
                "items": {
                    "type": "object", "additionalProperties": false, "required": ["sku", "qty", "price"],
                    "properties": {
                        "sku": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{4}$"},
                        "qty": {"type": "integer", "minimum": 1, "maximum": 100},
                        "price": {"type": "number", "exclusiveMinimum": 0, "maximum": 100_000}
                    }
                }
            },
            "currency": {"enum": ["USD", "EUR", "GBP", "JPY"]},
            "subtotal": {"type": "number", "minimum": 0},
            "tax": {"type": "number", "minimum": 0},
            "total": {"type": "number", "minimum": 0},
            "couponCode": {"type": ["string", "null"], "maxLength": 16},
            "shippingMethod": {"enum": ["standard", "express", "pickup"]},
            "giftWrap": {"type": "boolean"},
            "notes": {"type": "string", "maxLength": 500}
        }
    })
}

fn orders_draft7() -> Value {
    let mut s = orders_schema();
    s["$schema"] = json!("http://json-schema.org/draft-07/schema#");
    s
}

/// Every supported keyword, draft 7, with `$ref`, mixed enums and open objects.
fn misc_draft7() -> Value {
    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "required": ["a"],
        "properties": {
            "a": {"type": ["integer", "null"], "minimum": -5, "exclusiveMaximum": 100},
            "b": {"type": "number", "maximum": 9_007_199_254_740_992_u64, "exclusiveMinimum": -0.5},
            "c": {"enum": ["x", 1, null, true, [1], {"k": 1}]},
            "d": {"const": "é😀"},
            "e": {"type": "string", "minLength": 2, "maxLength": 4},
            "f": {"type": "array", "items": {"$ref": "#/definitions/leaf"}, "minItems": 1, "maxItems": 3},
            "g": {"type": "string", "pattern": "^[a-zé]{2,4}$"},
            "h": {"pattern": "b+"},
            "i": {"format": "date"},
            "j": {"format": "ipv4"},
            "k": {"format": "hostname"},
            "l": {"format": "email"},
            "m": {"format": "uuid"},
            "n": {"format": "time"},
            "o": false,
            "p": true,
            "q": {"type": "boolean", "title": "annotations are ignored"},
            "r": {"items": false},
            "s": {"type": "object", "additionalProperties": {"type": "integer"},
                  "minProperties": 1, "maxProperties": 2},
            "t": {"const": 1},
            "u": {"enum": [[], {}]},
            "v": {"type": "integer"},
            "w": {"$ref": "#"}
        },
        "additionalProperties": {"type": ["string", "number", "object"]},
        "definitions": {"leaf": {"type": ["integer", "string"], "maxLength": 2, "maximum": 10}}
    })
}

/// 2020-12 with required-only names, a closed object and a recursive `$ref`.
fn closed_2020() -> Value {
    json!({
        "type": "object",
        "required": ["a", "zz"],
        "properties": {
            "a": {"type": "integer", "minimum": 0, "maximum": 9_007_199_254_740_992_u64},
            "w": {"$ref": "#/$defs/node"}
        },
        "additionalProperties": {"type": "string", "minLength": 1},
        "minProperties": 2,
        "$defs": {"node": {"type": "object", "additionalProperties": false,
                           "properties": {"a": {"type": "number"}, "w": {"$ref": "#/$defs/node"}}}}
    })
}

fn arrays_2019() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2019-09/schema",
        "type": "array",
        "items": {"type": "string", "format": "uuid"},
        "maxItems": 2
    })
}

fn compiled(schema: &Value) -> CompiledSchema {
    let c = CompiledSchema::compile("t", 1, schema).unwrap();
    assert!(c.has_fast_path(), "no fast path for {schema}");
    c
}

static ORDERS: LazyLock<[CompiledSchema; 2]> =
    LazyLock::new(|| [compiled(&orders_schema()), compiled(&orders_draft7())]);
static MISC: LazyLock<Vec<CompiledSchema>> = LazyLock::new(|| {
    vec![
        compiled(&misc_draft7()),
        compiled(&closed_2020()),
        compiled(&arrays_2019()),
        compiled(&json!(true)),
        compiled(&json!(false)),
        compiled(&json!({"type": "integer", "maximum": 3})),
    ]
});

thread_local! {
    /// One scratch per test thread, kept across bodies (and schemas) as a batch keeps
    /// it: the key order it learns from earlier bodies is then a prediction, right or
    /// wrong, for the next one.
    static WARM: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

/// The fast verdict on `bytes`, after checking it against the crate's, with a fresh
/// scratch and with one warmed by earlier bodies (both must agree).
fn agreed(c: &CompiledSchema, bytes: &[u8]) -> Verdict {
    let fast = c.fast_verdict(bytes, &mut Scratch::default());
    let warm = WARM.with(|w| c.fast_verdict(bytes, &mut w.borrow_mut()));
    assert_eq!(
        fast,
        warm,
        "verdict depends on the scratch's history on {}",
        String::from_utf8_lossy(bytes)
    );
    assert_crate_agrees(c, bytes, fast);
    fast
}

/// A fast verdict that decided (not `Unknown`) must be the crate's.
fn assert_crate_agrees(c: &CompiledSchema, bytes: &[u8], fast: Verdict) {
    if fast != Verdict::Unknown {
        assert_eq!(
            fast == Verdict::Valid,
            c.crate_verdict(bytes),
            "fast path says {fast:?} on {}",
            String::from_utf8_lossy(bytes)
        );
    }
}

// ---- order events -------------------------------------------------------------------

/// splitmix64: a valid event from a seed, like `orders.py` makes them.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len() as u64) as usize]
    }

    #[allow(clippy::cast_precision_loss)]
    fn cents(&mut self, max: u64) -> f64 {
        (self.below(max) + 1) as f64 / 100.0
    }
}

fn order_event(seed: u64) -> Value {
    let mut r = Rng(seed);
    let (hi, lo) = (r.next(), r.next());
    let uuid = format!(
        "{:08x}-{:04x}-4{:03x}-{:x}{:03x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        hi & 0xfff,
        8 + (lo >> 62),
        (lo >> 48) & 0xfff,
        lo & 0xffff_ffff_ffff
    );
    let items: Vec<Value> = (0..3)
        .map(|_| {
            json!({
                "sku": format!("{}-{:04}", r.pick(&["ABC", "KLM", "XYZ"]), r.below(10_000)),
                "qty": r.below(100) + 1,
                "price": r.cents(99_900),
            })
        })
        .collect();
    let mut e = json!({
        "eventId": uuid,
        "eventType": "OrderPlaced",
        "version": r.below(3) + 1,
        "occurredAt": format!("2024-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            r.below(12) + 1, r.below(28) + 1, r.below(24), r.below(60), r.below(60)),
        "source": r.pick(&["web", "mobile", "store", "partner"]),
        "orderId": format!("ord-{:012x}", r.next() & 0xffff_ffff_ffff),
        "customer": {
            "id": format!("cus-{:08}", r.below(100_000_000)),
            "email": format!("user{}@example.com", r.below(1_000_000)),
            "tier": r.pick(&["bronze", "silver", "gold", "platinum"]),
            "country": r.pick(&["US", "DE", "FR", "GB", "JP", "BR"]),
        },
        "items": items,
        "currency": r.pick(&["USD", "EUR", "GBP", "JPY"]),
        "subtotal": r.cents(10_000_000),
        "tax": r.cents(100_000),
        "total": r.cents(10_000_000),
        "shippingMethod": r.pick(&["standard", "express", "pickup"]),
        "giftWrap": r.below(10) == 0,
    });
    match r.below(10) {
        0 => e["couponCode"] = Value::Null,
        1 => e["couponCode"] = json!("WELCOME10"),
        2 => e["notes"] = json!("leave at the door ".repeat(r.below(5) as usize + 1)),
        _ => {}
    }
    e
}

/// Where mutations land.
const PATHS: &[&str] = &[
    "",
    "/eventId",
    "/eventType",
    "/version",
    "/occurredAt",
    "/source",
    "/orderId",
    "/customer",
    "/customer/id",
    "/customer/email",
    "/customer/tier",
    "/customer/country",
    "/items",
    "/items/0",
    "/items/1/sku",
    "/items/2/qty",
    "/items/0/price",
    "/currency",
    "/subtotal",
    "/tax",
    "/total",
    "/couponCode",
    "/shippingMethod",
    "/giftWrap",
    "/notes",
];

/// Raw JSON texts (and some broken ones) put in place of a value.
static TOKENS: LazyLock<Vec<String>> = LazyLock::new(|| {
    let mut t: Vec<String> = [
        // numbers, one value in several spellings, and the edges of each
        "0",
        "-0",
        "-0.0",
        "0e0",
        "1",
        "2",
        "3",
        "4",
        "-1",
        "100",
        "1e2",
        "1E2",
        "100.0",
        "1.0e2",
        "10e1",
        "101",
        "0.5",
        "0.1",
        "1.5",
        "99999.99",
        "100000",
        "100000.0",
        "1e5",
        "100000.00000000001",
        "100000.0000001",
        "2.5e-3",
        "1e-400",
        "1e400",
        "-1e400",
        "9007199254740992",
        "9007199254740993",
        "-9007199254740993",
        "18446744073709551615",
        "18446744073709551616",
        "-9223372036854775808",
        "-9223372036854775809",
        "123456789012345678901234567890",
        "0.30000000000000004",
        "1e22",
        "1e23",
        "4.9e-324",
        "01",
        "1.",
        ".5",
        "-",
        "+1",
        "1e",
        "1e+",
        "0x10",
        "NaN",
        "Infinity",
        // literals and containers
        "true",
        "false",
        "null",
        "tru",
        "nul",
        "[]",
        "{}",
        "[1,2,3]",
        "[[]]",
        "{\"a\":1}",
        "{\"a\":1,\"a\":2}",
        "[1,]",
        "{\"a\":1,}",
        // strings
        "\"\"",
        "\"OrderPlaced\"",
        "\"Order\\u0050laced\"",
        "\"OrderShipped\"",
        "\"orderplaced\"",
        "\"web\"",
        "\"w\\u0065b\"",
        "\"gold\"",
        "\"diamond\"",
        "\"USD\"",
        "\"usd\"",
        "\"pickup\"",
        "\"ord-0123456789ab\"",
        "\"ord-0123456789AB\"",
        "\"ord-0123456789abc\"",
        "\"ORD-12345\"",
        "\"cus-12345678\"",
        "\"cus-1234567\"",
        "\"US\"",
        "\"us\"",
        "\"USA\"",
        "\"ABC-1234\"",
        "\"abc-1234\"",
        "\"ABC-12345\"",
        "\"A\\u0042C-1234\"",
        "\"2024-01-01T00:00:00Z\"",
        "\"2024-13-45T25:61:00Z\"",
        "\"2024-02-29T12:00:00+01:00\"",
        "\"2023-02-29T00:00:00Z\"",
        "\"2024-01-01t00:00:00z\"",
        "\"2024-06-30T23:59:60Z\"",
        "\"2024-01-01 00:00:00Z\"",
        "\"2024-01-01T00:00:00.123456Z\"",
        "\"2024-01-01\"",
        "\"12:00:00Z\"",
        "\"2a9b5e2c-1f3d-4c5e-8a7b-0123456789ab\"",
        "\"2A9B5E2C-1F3D-4C5E-8A7B-0123456789AB\"",
        "\"2a9b5e2c1f3d4c5e8a7b0123456789ab\"",
        "\"{2a9b5e2c-1f3d-4c5e-8a7b-0123456789ab}\"",
        "\"not-a-uuid\"",
        "\"2a9b5e2c-1f3d-4c5e-8a7b-0123456789ag\"",
        "\"user1@example.com\"",
        "\"a@b.co\"",
        "\"alice.example.com\"",
        "\"a..b@x.com\"",
        "\".a@x.com\"",
        "\"a.@x.com\"",
        "\"a@-x.com\"",
        "\"a@x-.com\"",
        "\"a@x..com\"",
        "\"a@x.com.\"",
        "\"a@localhost\"",
        "\"a@1.2.3.4\"",
        "\"a@[127.0.0.1]\"",
        "\"a@[IPv6:::1]\"",
        "\"A <a@x.com>\"",
        "\"a@xn--nxasmq6b.com\"",
        "\"a@ab--c.com\"",
        "\"a@xn--a.com\"",
        "\"\\\"q\\\"@x.com\"",
        "\"ü@x.com\"",
        "\"a@ü.com\"",
        "\"a@b@c.com\"",
        "\"a b@x.com\"",
        "\"a@x_y.com\"",
        "\"a+tag@x.com\"",
        "\"{}|~@x.com\"",
        "\"leave at the door\"",
        "\"a\\nb\"",
        "\"a\\/b\"",
        "\"\\ud83d\\ude00\"",
        "\"\\ud800\"",
        "\"é\"",
        "\"😀\"",
        "\"SPRING24\"",
        // a raw control character, a stray byte (made invalid UTF-8 below)
        "\"a\u{1}b\"",
        "\"a\u{7f}b\"",
        "\"192.168.0.1\"",
        "\"256.1.1.1\"",
        "\"example.com\"",
        "\"-bad.com\"",
        "\"x\"",
        "\"xy\"",
        "\"xyzw\"",
        "\"xyzwv\"",
        "\"bb\"",
        "\"abc\"",
        "\"éé\"",
        "\"aé\"",
        "\"é😀\"",
        "\"é\\ud83d\\ude00\"",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    // Lengths at a bound and one past it, in characters of 1, 2 and 4 bytes.
    for (n, c) in [
        (16, "X"),
        (17, "X"),
        (16, "é"),
        (17, "é"),
        (16, "😀"),
        (17, "😀"),
    ] {
        t.push(format!("\"{}\"", c.repeat(n)));
    }
    for (n, c) in [(500, "x"), (501, "x"), (500, "€"), (501, "€")] {
        t.push(format!("\"{}\"", c.repeat(n)));
    }
    // E-mail lengths: a 64/65-byte local part, a 63/64-byte label, a 254-byte address.
    t.push(format!("\"{}@x.com\"", "a".repeat(64)));
    t.push(format!("\"{}@x.com\"", "a".repeat(65)));
    t.push(format!("\"a@{}.com\"", "b".repeat(63)));
    t.push(format!("\"a@{}.com\"", "b".repeat(64)));
    t.push(format!("\"a@{}.com\"", vec!["c".repeat(60); 4].join(".")));
    t.push(format!(
        "[{}]",
        ["{\"sku\":\"ABC-1234\",\"qty\":1,\"price\":1}"; 50].join(",")
    ));
    t.push(format!(
        "[{}]",
        ["{\"sku\":\"ABC-1234\",\"qty\":1,\"price\":1}"; 51].join(",")
    ));
    t.push(format!("{}1{}", "[".repeat(130), "]".repeat(130)));
    t
});

const NAMES: &[&str] = &[
    "extra",
    "eventid",
    "Total",
    "é",
    "notes",
    "couponCode",
    "",
    "eventId",
    "customer",
];

/// Changes to the JSON text after the value-level mutations.
const TEXT_MUTATIONS: usize = 12;

fn mutate_text(mut text: Vec<u8>, which: usize) -> Vec<u8> {
    let replace = |text: &[u8], from: &str, to: &str| -> Vec<u8> {
        String::from_utf8_lossy(text)
            .replacen(from, to, 1)
            .into_bytes()
    };
    match which {
        1 => replace(&text, "{", "{\"version\":2,"),
        2 => replace(&text, "\"customer\":{", "\"customer\":{\"tier\":\"gold\","),
        3 => replace(&text, "\"eventType\"", "\"event\\u0054ype\""),
        4 => {
            text.extend_from_slice(b" x");
            text
        }
        5 => {
            text.extend_from_slice(b" \n\t\r");
            text
        }
        6 => {
            text.pop();
            text
        }
        7 => {
            let mut t = "\u{feff}".as_bytes().to_vec();
            t.extend_from_slice(&text);
            t
        }
        8 => {
            // A stray byte that is not UTF-8.
            let mut t = replace(&text, "\u{7f}", "~");
            if let Some(p) = text.iter().position(|&b| b == 0x7f) {
                t = text;
                t[p] = 0xff;
            }
            t
        }
        9 => replace(&text, "\"items\":[{", "\"items\":[{\"qty\":1,"),
        10 => replace(&text, ":", " : "),
        11 => replace(&text, "\"items\":[{", "\"items\":[{\"é\":1,"),
        _ => text,
    }
}

/// `event` with `mutations` (path, kind, token, name) applied, as JSON text.
fn mutated(event: &Value, mutations: &[(usize, usize, usize, usize)], pretty: bool) -> Vec<u8> {
    let mut v = event.clone();
    let mut used = Vec::new();
    for &(path, kind, token, name) in mutations {
        let pointer = PATHS[path];
        let placeholder = Value::String(format!("\u{1}{}\u{1}", used.len()));
        let done = match kind {
            // Replace the value.
            0 => match v.pointer_mut(pointer) {
                Some(slot) => {
                    *slot = placeholder;
                    true
                }
                None => false,
            },
            // Remove the member.
            1 => {
                let (parent, key) = pointer.rsplit_once('/').unwrap_or(("", ""));
                if let Some(Value::Object(m)) = v.pointer_mut(parent) {
                    m.remove(key);
                }
                false
            }
            // Add a member to the object there (or the one holding it).
            _ => {
                let target = if v.pointer(pointer).is_some_and(Value::is_object) {
                    pointer
                } else {
                    pointer.rsplit_once('/').map_or("", |(p, _)| p)
                };
                match v.pointer_mut(target) {
                    Some(Value::Object(m)) => {
                        m.insert(NAMES[name].to_owned(), placeholder);
                        true
                    }
                    _ => false,
                }
            }
        };
        if done {
            used.push(token);
        }
    }
    let mut text = if pretty {
        serde_json::to_string_pretty(&v).unwrap()
    } else {
        v.to_string()
    };
    for (i, &token) in used.iter().enumerate() {
        text = text.replace(&format!("\"\\u0001{i}\\u0001\""), &TOKENS[token]);
    }
    text.into_bytes()
}

#[test]
fn orders_fast_path_decides_valid_events_and_every_defect() {
    // Mirrors orders.py's DEFECTS: each is decided (not left to the crate) and agrees.
    let defects: &[(&str, &str)] = &[
        ("/total", "-"),
        ("/version", "\"2\""),
        ("/customer/tier", "\"diamond\""),
        ("/orderId", "\"ORD-12345\""),
        ("/items/1/qty", "101"),
        ("/items", "[]"),
        ("/customer/phone", "\"555-0100\""),
        ("/customer/email", "\"alice.example.com\""),
        ("/occurredAt", "\"2024-13-45T25:61:00Z\""),
        ("/eventId", "\"not-a-uuid\""),
        ("/items/0/price", "0"),
        ("/couponCode", "\"XXXXXXXXXXXXXXXXX\""),
        ("/giftWrap", "\"yes\""),
        ("/eventType", "\"OrderShipped\""),
        ("/items/2/sku", "-"),
    ];
    for c in ORDERS.iter() {
        for seed in 0..500 {
            let event = order_event(seed);
            let text = event.to_string();
            assert_eq!(agreed(c, text.as_bytes()), Verdict::Valid, "{text}");
            let pretty = serde_json::to_string_pretty(&event).unwrap();
            assert_eq!(agreed(c, pretty.as_bytes()), Verdict::Valid, "{pretty}");
            let (pointer, token) = defects[seed as usize % defects.len()];
            let mut bad = event.clone();
            let (parent, key) = pointer.rsplit_once('/').unwrap();
            let object = bad.pointer_mut(parent).unwrap().as_object_mut().unwrap();
            if token == "-" {
                object.remove(key);
            } else {
                object.insert(key.to_owned(), serde_json::from_str(token).unwrap());
            }
            let text = bad.to_string();
            assert_eq!(agreed(c, text.as_bytes()), Verdict::Invalid, "{text}");
        }
    }
}

#[test]
fn orders_fast_path_agrees_on_every_token_at_every_path() {
    let event = order_event(7);
    for c in ORDERS.iter() {
        for path in 0..PATHS.len() {
            for token in 0..TOKENS.len() {
                for kind in [0, 2] {
                    agreed(c, &mutated(&event, &[(path, kind, token, 0)], false));
                }
            }
        }
    }
}

#[test]
fn unsupported_schemas_have_no_fast_path_and_supported_ones_do() {
    for schema in [
        json!({"allOf": [{"type": "object"}]}),
        json!({"type": "number", "multipleOf": 2}),
        json!({"patternProperties": {"^a": {"type": "string"}}}),
        json!({"$schema": "http://json-schema.org/draft-04/schema#", "type": "object"}),
        json!({"$schema": "http://json-schema.org/draft-07/schema#", "items": [{"type": "string"}]}),
        json!({"$ref": "#/$defs/a", "type": "object", "$defs": {"a": {}}}),
        json!({"properties": {"a": {"$id": "http://x/y", "type": "string"}}}),
        json!({"type": "number", "maximum": 9_007_199_254_740_993_u64}),
        json!({"if": {"type": "string"}, "then": {"minLength": 1}}),
    ] {
        let c = CompiledSchema::compile("t", 1, &schema).unwrap();
        assert!(!c.has_fast_path(), "{schema}");
    }
    let c = CompiledSchema::compile("t", 1, &orders_schema()).unwrap();
    assert!(c.has_fast_path());
}

#[test]
fn plain_address_shortcut_matches_the_crates_email_check() {
    let email = compiled(&json!({"type": "string", "format": "email"}));
    let alphabet: Vec<char> = "ab1Z.@-_+!{}é <>[]:".chars().collect();
    let mut r = Rng(1);
    for _ in 0..20_000 {
        let len = r.below(24) as usize;
        let s: String = (0..len)
            .map(|_| alphabet[r.below(alphabet.len() as u64) as usize])
            .collect();
        agreed(&email, serde_json::to_string(&s).unwrap().as_bytes());
    }
    for t in TOKENS.iter() {
        agreed(&email, t.as_bytes());
    }
}

/// The word-at-a-time route to a plain local part against the byte loop: runs of
/// letters and digits of every length around the eight-byte steps and the 64-byte
/// limit, ended by an `@` or by a byte at each edge of the letter and digit ranges,
/// before domains around the 254-byte limit; and the crate agrees on the addresses.
#[test]
fn alnum_local_part_route_agrees_with_the_byte_loop() {
    let email = compiled(&json!({"type": "string", "format": "email"}));
    let run_chars = b"09azAZ5mQ";
    let enders = b"@@@@./:`{[\x40\x2f\x3a\x60\x7b\x5b\x41\x7a\x7f+-_\xc3";
    let mut r = Rng(17);
    let mut fast = 0;
    for run in 0..=72 {
        for &ender in enders {
            for domain in [0_usize, 1, 11, 253, 254, 255] {
                for tail in [&b""[..], b"@x", b".x", b"x"] {
                    let mut b: Vec<u8> = (0..run)
                        .map(|_| run_chars[r.below(run_chars.len() as u64) as usize])
                        .collect();
                    b.push(ender);
                    b.extend(std::iter::repeat_n(b'd', domain));
                    b.extend_from_slice(tail);
                    let expected = super::text::plain_local_part_bytewise(&b);
                    assert_eq!(super::text::plain_local_part(&b), expected, "{b:?}");
                    if expected.is_some() && b.len() >= 8 {
                        fast += 1;
                    }
                    if domain < 30 {
                        if let Ok(text) = std::str::from_utf8(&b) {
                            agreed(&email, serde_json::to_string(text).unwrap().as_bytes());
                        }
                    }
                }
            }
        }
    }
    assert!(fast > 1000, "{fast}");
}

// ---- random documents ----------------------------------------------------------------

const KEYS: &[&str] = &[
    "\"a\"",
    "\"b\"",
    "\"c\"",
    "\"d\"",
    "\"e\"",
    "\"f\"",
    "\"g\"",
    "\"h\"",
    "\"i\"",
    "\"j\"",
    "\"k\"",
    "\"l\"",
    "\"m\"",
    "\"n\"",
    "\"o\"",
    "\"p\"",
    "\"q\"",
    "\"r\"",
    "\"s\"",
    "\"t\"",
    "\"u\"",
    "\"v\"",
    "\"w\"",
    "\"zz\"",
    "\"\"",
    "\"é\"",
    "\"\\u0061\"",
];

fn arb_text() -> impl Strategy<Value = String> {
    let leaf = (0..TOKENS.len()).prop_map(|i| TOKENS[i].clone());
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec((0..KEYS.len(), inner), 0..7).prop_map(|v| {
                let members: Vec<String> =
                    v.iter().map(|(k, t)| format!("{}:{t}", KEYS[*k])).collect();
                format!("{{{}}}", members.join(","))
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn orders_fast_path_agrees_on_mutated_events(
        seed in any::<u64>(),
        mutations in prop::collection::vec(
            (0..PATHS.len(), 0..3_usize, 0..TOKENS.len(), 0..NAMES.len()), 0..4),
        pretty in any::<bool>(),
        text_mutation in 0..TEXT_MUTATIONS,
    ) {
        let text = mutate_text(mutated(&order_event(seed), &mutations, pretty), text_mutation);
        for c in ORDERS.iter() {
            agreed(c, &text);
        }
    }

    #[test]
    fn fast_path_agrees_on_random_documents(text in arb_text(), text_mutation in 0..TEXT_MUTATIONS) {
        let text = mutate_text(text.into_bytes(), text_mutation);
        for c in MISC.iter() {
            agreed(c, &text);
        }
    }
}

// ---- accept-only recognisers (fast/accept.rs) -----------------------------------------
//
// Each may accept only what the crate's own one-keyword check accepts. The strings are
// near misses of valid ones (edits from an alphabet of the characters that matter) and
// structured variations over every field's edges; each test also checks the recogniser
// is not vacuous (it accepts the common valid forms).

/// The crate's `{keyword: value}` check in `draft`, as the fast path builds it.
fn crate_check(keyword: &str, value: &str, draft: &'static str) -> StringCheck {
    let dialect = match draft {
        "draft-07" => Some(json!("http://json-schema.org/draft-07/schema#")),
        "2019-09" => Some(json!("https://json-schema.org/draft/2019-09/schema")),
        _ => None,
    };
    StringCheck::new(keyword, &json!(value), dialect.as_ref(), draft).unwrap()
}

/// Whether `accepts` takes `text`, after asserting the crate's `check` does too then.
fn within(accepts: &dyn Fn(&[u8]) -> bool, check: &StringCheck, text: &str) -> bool {
    let yes = accepts(text.as_bytes());
    if yes {
        let mut buffer = Document::default();
        assert!(
            check.is_valid(text, &mut buffer),
            "accepted {text:?}, which the crate refuses"
        );
    }
    yes
}

/// Characters edits draw from: digits, hex letters and their neighbours, separators,
/// case variants, whitespace, a control character and multi-byte ones.
const EDIT_CHARS: &[char] = &[
    '0', '1', '2', '3', '5', '6', '9', 'a', 'f', 'g', 'A', 'F', 'G', 'z', 'Z', 't', 'T', '-', '+',
    ':', '.', '/', '@', '`', ' ', '\n', '\0', '\u{7f}', 'é', '٣', '€',
];

/// `text` with `edits` (kind, position, character) applied: replace, insert, delete.
fn edited(text: &str, edits: &[(u8, usize, usize)]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for &(kind, at, c) in edits {
        let c = EDIT_CHARS[c % EDIT_CHARS.len()];
        let at = at % (chars.len() + 1);
        match kind % 3 {
            0 if at < chars.len() => chars[at] = c,
            1 => chars.insert(at, c),
            _ if at < chars.len() => {
                chars.remove(at);
            }
            _ => {}
        }
    }
    chars.into_iter().collect()
}

const UUIDS: &[&str] = &[
    "3b8faa18-37f8-488b-97fc-695a07a0ca6e",
    "3B8FAA18-37F8-488B-97FC-695A07A0CA6E",
    "00000000-0000-0000-0000-000000000000",
    "ffffffff-FFFF-ffff-FFFF-ffffffffffff",
];

const DATE_TIMES: &[&str] = &[
    "2024-01-13T08:14:09Z",
    "2024-02-29T23:59:59.123+05:30",
    "2023-02-28T00:00:00-23:59",
    "1900-02-28T12:00:00Z",
    "2000-02-29T12:00:00.5Z",
    "2016-12-31T23:59:60Z",
    "1990-12-31T15:59:60-08:00",
    "2024-01-01t00:00:00z",
];

const DATES: &[&str] = &[
    "2024-02-29",
    "2023-02-28",
    "1900-02-28",
    "2000-02-29",
    "0000-01-01",
    "9999-12-31",
];

/// Fixed-length patterns and strings they match.
const FIXED_PATTERNS: &[(&str, &str)] = &[
    ("^ord-[0-9a-f]{12}$", "ord-32e78fadc1a6"),
    ("^cus-[0-9]{8}$", "cus-96102525"),
    ("^[A-Z]{2}$", "DE"),
    ("^[A-Z]{3}-[0-9]{4}$", "XYZ-1824"),
    ("^\\d{3}-\\w\\s.$", "123-a x"),
    ("^[^a-c]{2}[é-]$", "zz-"),
    ("^(?:ab)(c)\\.[\\-+]$", "abc.-"),
    ("^\\D\\W\\S\\$$", "a!x$"),
    ("^$", ""),
    ("^..[^x]$", "abc"),
    // Only the ASCII letters are kept: a narrower accept set.
    ("^\\p{L}$", "q"),
];

/// The crate's check for each format the recognisers cover, in every fast-path draft.
fn format_checks(format: &str) -> Vec<StringCheck> {
    ["draft-07", "2019-09", "2020-12"]
        .into_iter()
        .map(|draft| crate_check("format", format, draft))
        .collect()
}

static UUID_CHECKS: LazyLock<Vec<StringCheck>> = LazyLock::new(|| format_checks("uuid"));
static DATE_TIME_CHECKS: LazyLock<Vec<StringCheck>> = LazyLock::new(|| format_checks("date-time"));
static DATE_CHECKS: LazyLock<Vec<StringCheck>> = LazyLock::new(|| format_checks("date"));
static PATTERN_CHECKS: LazyLock<Vec<(FixedPattern, StringCheck)>> = LazyLock::new(|| {
    FIXED_PATTERNS
        .iter()
        .map(|(p, _)| {
            let fixed = FixedPattern::compile(p).unwrap_or_else(|| panic!("{p} is not fixed"));
            (fixed, crate_check("pattern", p, "2020-12"))
        })
        .collect()
});

#[test]
fn recognisers_accept_the_common_valid_forms() {
    for u in UUIDS {
        for check in UUID_CHECKS.iter() {
            assert!(within(&accept::uuid, check, u), "{u}");
        }
    }
    for d in &DATE_TIMES[..5] {
        for check in DATE_TIME_CHECKS.iter() {
            assert!(within(&accept::date_time, check, d), "{d}");
        }
    }
    // Leap seconds and lower-case separators are left to the crate.
    for d in &DATE_TIMES[5..] {
        assert!(!accept::date_time(d.as_bytes()), "{d}");
    }
    for d in DATES {
        for check in DATE_CHECKS.iter() {
            assert!(within(&accept::date, check, d), "{d}");
        }
    }
    for ((_, witness), (fixed, check)) in FIXED_PATTERNS.iter().zip(PATTERN_CHECKS.iter()) {
        assert!(within(&|t| fixed.accepts(t), check, witness), "{witness}");
    }
    // Only anchored, fixed-length sequences of literals and classes get a recogniser.
    for p in [
        "^[a-z]{2,4}$",
        "^a+$",
        "ord-[0-9]{4}$",
        "^ord-[0-9]{4}",
        "^a|b$",
        "^(ab){2}$",
        "^a(?=b)b$",
        "^(a)\\1$",
        "[",
    ] {
        assert!(FixedPattern::compile(p).is_none(), "{p}");
    }
}

#[test]
fn date_time_recogniser_stays_inside_the_crates_format_over_every_field_edge() {
    let years = [
        "0000", "1900", "2000", "2023", "2024", "2100", "9999", "20x4",
    ];
    let separators = ["T", "t", " ", "_"];
    let fractions = ["", ".", ".5", ".123456789", ".x"];
    let zones = [
        "Z",
        "z",
        "",
        "+00:00",
        "-23:59",
        "+24:00",
        "+05:60",
        "+5:30",
        "+05:30:00",
        "-0530",
        "ZZ",
        "+05:3a",
    ];
    let mut r = Rng(3);
    let mut accepted = 0;
    for _ in 0..60_000 {
        let text = format!(
            "{}-{:02}-{:02}{}{:02}:{:02}:{:02}{}{}",
            r.pick(&years),
            r.below(14),
            r.below(33),
            r.pick(&separators),
            r.below(26),
            r.below(62),
            r.below(62),
            r.pick(&fractions),
            r.pick(&zones),
        );
        for check in DATE_TIME_CHECKS.iter() {
            if within(&accept::date_time, check, &text) {
                accepted += 1;
            }
        }
        // The 20-byte route gives what the general one gives.
        assert_eq!(
            accept::date_time(text.as_bytes()),
            accept::date_time_general(text.as_bytes()),
            "{text}"
        );
        let date = text.get(..10).unwrap_or_default();
        for check in DATE_CHECKS.iter() {
            within(&accept::date, check, date);
        }
    }
    assert!(accepted > 1000, "only {accepted} accepted");
}

/// The 20-byte `...Z` route of the date-time recogniser against the general one, on
/// valid forms with every position replaced by each byte that matters there (digits at
/// their edges, each separator, their neighbours, non-ASCII), and with two positions
/// changed at random.
#[test]
fn date_time_utc_route_agrees_with_the_general_one_at_every_position() {
    let bases = [
        "2024-02-29T23:59:59Z",
        "2023-02-28T00:00:00Z",
        "1900-12-31T12:30:45Z",
        "2000-02-29T09:09:09Z",
        "2100-04-30T19:19:19Z",
    ];
    let alphabet = b"0123456789/:-.TZtz +\x7f\xc3\x80\x00";
    let mut accepted = 0;
    let mut agree = |bytes: &[u8]| {
        let fast = accept::date_time(bytes);
        assert_eq!(fast, accept::date_time_general(bytes), "{bytes:?}");
        if fast {
            accepted += 1;
        }
    };
    for base in bases {
        for at in 0..20 {
            for &c in alphabet {
                let mut bytes = base.as_bytes().to_vec();
                bytes[at] = c;
                agree(&bytes);
            }
        }
    }
    let mut r = Rng(11);
    for _ in 0..20_000 {
        let mut bytes = bases[r.below(bases.len() as u64) as usize]
            .as_bytes()
            .to_vec();
        for _ in 0..2 {
            let at = r.below(20) as usize;
            bytes[at] = alphabet[r.below(alphabet.len() as u64) as usize];
        }
        agree(&bytes);
    }
    // Each year, month and day of a leap cycle edge.
    for year in ["1900", "2000", "2023", "2024", "2100", "0000", "9999"] {
        for month in 0..=13 {
            for day in 0..=32 {
                let text = format!("{year}-{month:02}-{day:02}T23:59:59Z");
                agree(text.as_bytes());
            }
        }
    }
    assert!(accepted > 1000, "{accepted}");
}

#[test]
fn uuid_recogniser_stays_inside_the_crates_format_over_every_position() {
    let alphabet: Vec<char> = "0123456789abcdefABCDEFgG-xé".chars().collect();
    let mut r = Rng(5);
    for _ in 0..30_000 {
        // A valid form with one or two positions changed, or a length off by one.
        let mut chars: Vec<char> = UUIDS[r.below(UUIDS.len() as u64) as usize]
            .chars()
            .collect();
        for _ in 0..=r.below(2) {
            let at = r.below(36) as usize;
            chars[at] = alphabet[r.below(alphabet.len() as u64) as usize];
        }
        match r.below(8) {
            0 => {
                chars.pop();
            }
            1 => chars.push('0'),
            _ => {}
        }
        let text: String = chars.into_iter().collect();
        for check in UUID_CHECKS.iter() {
            within(&accept::uuid, check, &text);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn recognisers_stay_inside_the_crates_checks_on_near_misses(
        which in 0..4_usize,
        seed in 0..16_usize,
        edits in prop::collection::vec((any::<u8>(), any::<usize>(), any::<usize>()), 0..4),
    ) {
        match which {
            0 => {
                let text = edited(UUIDS[seed % UUIDS.len()], &edits);
                for check in UUID_CHECKS.iter() {
                    within(&accept::uuid, check, &text);
                }
            }
            1 => {
                let text = edited(DATE_TIMES[seed % DATE_TIMES.len()], &edits);
                for check in DATE_TIME_CHECKS.iter() {
                    within(&accept::date_time, check, &text);
                }
            }
            2 => {
                let text = edited(DATES[seed % DATES.len()], &edits);
                for check in DATE_CHECKS.iter() {
                    within(&accept::date, check, &text);
                }
            }
            _ => {
                let at = seed % FIXED_PATTERNS.len();
                let text = edited(FIXED_PATTERNS[at].1, &edits);
                let (fixed, check) = &PATTERN_CHECKS[at];
                within(&|t| fixed.accepts(t), check, &text);
            }
        }
    }

    #[test]
    fn fixed_patterns_stay_inside_the_crates_pattern_on_random_strings(
        at in 0..FIXED_PATTERNS.len(),
        chars in prop::collection::vec(0..EDIT_CHARS.len(), 0..18),
    ) {
        // Random strings of the pattern's length, mostly: short alphabets make matches.
        let text: String = chars.iter().map(|&c| EDIT_CHARS[c]).collect();
        let (fixed, check) = &PATTERN_CHECKS[at];
        within(&|t| fixed.accepts(t), check, &text);
    }

    #[test]
    fn fixed_patterns_stay_inside_the_crates_pattern_on_same_length_multibyte_swaps(
        at in 0..FIXED_PATTERNS.len(),
        from in 0..8_usize,
        c in prop::sample::select(vec!['é', '٣', '€', '😀']),
    ) {
        // A multi-byte character in place of as many ASCII bytes: the byte length (what
        // a fixed pattern first compares) stays, the character count drops.
        let witness = FIXED_PATTERNS[at].1;
        let mut buf = [0_u8; 4];
        let c = c.encode_utf8(&mut buf);
        if let (Some(head), Some(tail)) = (witness.get(..from), witness.get(from + c.len()..)) {
            let text = format!("{head}{c}{tail}");
            let (fixed, check) = &PATTERN_CHECKS[at];
            within(&|t| fixed.accepts(t), check, &text);
        }
    }

    #[test]
    fn integer_type_agrees_on_decimal_spellings(
        negative in any::<bool>(),
        int in prop::sample::select(vec!["0", "1", "7", "10", "100", "4503599627370496",
            "9007199254740992", "9007199254740993", "123456789012345678901"]),
        frac in prop::sample::select(vec!["", ".0", ".00", ".5", ".50", ".05", ".000001",
            ".1000", ".9999999999999999"]),
        exponent in prop::option::of(-25_i32..25),
    ) {
        let text = format!(
            "{}{int}{frac}{}",
            if negative { "-" } else { "" },
            exponent.map(|e| format!("e{e}")).unwrap_or_default()
        );
        for c in INTEGERS.iter() {
            agreed(c, text.as_bytes());
        }
    }
}

static INTEGERS: LazyLock<Vec<CompiledSchema>> = LazyLock::new(|| {
    vec![
        compiled(&json!({"type": "integer"})),
        compiled(&json!({"type": ["integer", "string"], "minimum": -100})),
    ]
});

// ---- property-name lookup -----------------------------------------------------------

/// Property names of every length class the lookup compares differently (up to 8
/// bytes: head word only; 9 to 16: head and tail words; longer: the bytes past the
/// head). `same_head` adds names that share a head word with another (no hash tells
/// them apart: the probing table), differing in length or in one byte of the tail or
/// the middle.
fn lookup_names(same_head: bool) -> Vec<String> {
    let mut names = vec![
        "a",
        "b",
        "id",
        "qty",
        "tier",
        "email",
        "country",
        "customer",
        "eventType",
        "occurredAt",
        "shippingMethod",
        "couponCode",
        "abcdefghijklmnop",
        "zyxwvutsrqponmlkjihgf",
        "é",
        "ключ",
    ];
    if same_head {
        names.extend([
            "customers",
            "abcdefgh",
            "abcdefghi",
            "abcdefghijklmnoq",
            "abcdefghijklmnopq",
            "zyxwvutsrqponmXkjihgf",
            "shipping1",
            "shipping2",
        ]);
    }
    names.into_iter().map(ToString::to_string).collect()
}

/// A closed object whose property `i` accepts only the integer `i`, so a key matched to
/// the wrong name, or a name missed, changes the verdict.
fn lookup_schema(names: &[String]) -> Value {
    let props: serde_json::Map<String, Value> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            (
                n.clone(),
                json!({"type": "integer", "minimum": i, "maximum": i}),
            )
        })
        .collect();
    json!({"type": "object", "additionalProperties": false, "properties": props})
}

/// Every name, and every one-byte edit, truncation and extension of it.
fn lookup_keys(names: &[String]) -> Vec<String> {
    let mut keys = Vec::new();
    for n in names {
        keys.push(n.clone());
        keys.push(format!("{n}x"));
        keys.push(format!("x{n}"));
        let b = n.as_bytes();
        for at in 0..b.len() {
            keys.push(String::from_utf8_lossy(b.get(..at).unwrap()).into_owned());
            let mut e = b.to_vec();
            if e[at].is_ascii() {
                e[at] ^= 1;
                keys.push(String::from_utf8_lossy(&e).into_owned());
            }
        }
    }
    keys
}

#[test]
fn name_tables_are_perfect_unless_names_share_a_head_word_and_length() {
    let names = |same: bool| -> Vec<super::Name> {
        lookup_names(same)
            .iter()
            .map(|n| super::Name::new(n))
            .collect()
    };
    let table = |names: &[super::Name]| super::NameTable::new(names, &vec![0; names.len()]);
    assert!(table(&names(false)).perfect);
    assert!(!table(&names(true)).perfect);
    let many: Vec<super::Name> = (0..64)
        .map(|i| super::Name::new(&format!("field{i}")))
        .collect();
    assert!(table(&many).perfect);
}

#[test]
fn property_lookup_agrees_with_the_crate_on_names_and_near_misses() {
    for same_head in [false, true] {
        let names = lookup_names(same_head);
        let c = compiled(&lookup_schema(&names));
        let keys = lookup_keys(&names);
        let mut decided = 0;
        for key in &keys {
            // Every name's value: a key taken for the wrong name passes as that one.
            for value in 0..names.len() {
                let body = serde_json::to_vec(&json!({ key.as_str(): value })).unwrap();
                if agreed(&c, &body) != Verdict::Unknown {
                    decided += 1;
                }
            }
        }
        // Nothing here is beyond the fast path.
        assert_eq!(decided, names.len() * keys.len());
        // All names at once, in reverse order.
        let all: serde_json::Map<String, Value> = names
            .iter()
            .enumerate()
            .rev()
            .map(|(i, n)| (n.clone(), json!(i)))
            .collect();
        assert_eq!(
            agreed(&c, &serde_json::to_vec(&all).unwrap()),
            Verdict::Valid
        );
    }
}

// ---- decimal bounds -----------------------------------------------------------------

/// A bound at, or one ulp either side of, the tape's value of a decimal, for each of
/// the four bound keywords: where an approximate quotient would tip the verdict.
fn decimal_bound_schemas(v: f64) -> Vec<CompiledSchema> {
    let mut out = Vec::new();
    for bound in [v.next_down(), v, v.next_up()] {
        for keyword in ["minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"] {
            out.push(compiled(&json!({"type": "number", keyword: bound})));
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn decimal_bounds_agree_at_the_value_and_its_neighbours(
        m in 0_u64..=(1 << 53),
        k in 1_usize..=22,
        negative in any::<bool>(),
    ) {
        let digits = format!("{m:0>width$}", width = k + 1);
        let (int, frac) = digits.split_at(digits.len() - k);
        let text = format!("{}{int}.{frac}", if negative { "-" } else { "" });
        let v: f64 = text.parse().unwrap();
        for c in decimal_bound_schemas(v) {
            prop_assert_ne!(agreed(&c, text.as_bytes()), Verdict::Unknown, "{}", text);
        }
    }
}

// ---- predicted keys (KeyLit, Scratch::successors) -------------------------------------

/// Bodies whose keys come in one learned order, then the same with one key swapped for
/// a near miss of it (an edit, a truncation, an extension, an escaped spelling of the
/// same name, space before the colon), checked with a scratch warmed on the first
/// order: a prediction that matched a near miss would take the wrong name's schema.
#[test]
fn predicted_keys_agree_with_the_crate_on_near_misses_in_a_learned_order() {
    let names = lookup_names(true);
    let c = compiled(&lookup_schema(&names));
    let body = |keys: &[String], colon: &str| -> Vec<u8> {
        let members: Vec<String> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| format!("{}{colon}{i}", serde_json::to_string(k).unwrap()))
            .collect();
        format!("{{{}}}", members.join(",")).into_bytes()
    };
    let mut scratch = Scratch::default();
    let mut check = |bytes: &[u8]| {
        let warm = c.fast_verdict(bytes, &mut scratch);
        assert_crate_agrees(&c, bytes, warm);
        warm
    };
    for at in 0..names.len() {
        let learned = body(&names, ":");
        // Each member `i` holds `i`: valid only when every key is its own name.
        assert_eq!(check(&learned), Verdict::Valid);
        let mut near = lookup_keys(std::slice::from_ref(&names[at]));
        near.push(format!("{}\\u0041", names[at]));
        for key in near {
            let mut keys = names.clone();
            keys[at] = key;
            check(&body(&keys, ":"));
            check(&body(&keys, " :"));
            // Escapes are written by hand: serde_json would not produce them.
            let escaped = String::from_utf8(body(&keys, ":")).unwrap().replacen(
                &format!("\"{}\"", names[at]),
                &format!(
                    "\"\\u{:04x}{}\"",
                    names[at].chars().next().unwrap() as u32,
                    &names[at][names[at].chars().next().unwrap().len_utf8()..]
                ),
                1,
            );
            check(escaped.as_bytes());
            // The learned order must still be right after the miss.
            assert_eq!(check(&learned), Verdict::Valid);
        }
    }
}

// ---- fixed patterns eight bytes at a time -----------------------------------------------

/// Patterns whose word-at-a-time test is checked against the byte-at-a-time one: every
/// length from 8 to 64 (whole words, and a last window overlapping the one before),
/// one to three ranges per class, literals, and a class reaching 0x7f (its range ends
/// at the 0x80 bound).
fn word_patterns() -> Vec<String> {
    let mut out: Vec<String> = [
        "^ord-[0-9a-f]{12}$",
        "^cus-[0-9]{8}$",
        "^[A-Z]{3}-[0-9]{4}$",
        "^[0-9A-Za-z]{20}$",
        "^[ -\\x7f]{9}$",
        "^[\\x00-\\x1f]{8}$",
        "^a[b-y]z[0-9a-fA-F]{13}-$",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    for n in 8..=64 {
        out.push(format!("^[0-9a-f]{{{n}}}$"));
        out.push(format!("^x[A-Z]{{{}}}[a-z]$", n - 2));
    }
    out
}

#[test]
fn fixed_pattern_words_agree_with_the_bytewise_test_at_every_length_and_alignment() {
    let mut r = Rng(7);
    let mut checked = 0_u64;
    for p in word_patterns() {
        let fixed = FixedPattern::compile(&p).unwrap_or_else(|| panic!("{p} is not fixed"));
        assert!(fixed.has_words(), "{p}");
        // A matching string: at each position, a random byte the position allows.
        let witness: Vec<u8> = fixed
            .allowed()
            .iter()
            .map(|bytes| bytes[r.below(bytes.len() as u64) as usize])
            .collect();
        assert!(fixed.accepts_bytewise(&witness), "{p}");
        let mut buffer = vec![0_u8; witness.len() + 16];
        for align in 0..8 {
            // Every single-byte change at every position, and every length around the
            // pattern's, at eight alignments in memory.
            let mut texts: Vec<Vec<u8>> = Vec::new();
            for i in 0..witness.len() {
                for b in 0..=255_u8 {
                    let mut t = witness.clone();
                    t[i] = b;
                    texts.push(t);
                }
            }
            for l in 0..witness.len() + 9 {
                let t: Vec<u8> = (0..l)
                    .map(|i| witness.get(i).copied().unwrap_or(b'a'))
                    .collect();
                texts.push(t);
            }
            for _ in 0..64 {
                let mut t = witness.clone();
                for _ in 0..=r.below(3) {
                    let i = r.below(t.len() as u64) as usize;
                    t[i] = r.below(256) as u8;
                }
                texts.push(t);
            }
            for t in texts {
                let slot = &mut buffer[align..align + t.len()];
                slot.copy_from_slice(&t);
                let slot = &buffer[align..align + t.len()];
                assert_eq!(
                    fixed.accepts(slot),
                    fixed.accepts_bytewise(slot),
                    "{p} on {slot:?}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 100_000);
    // Classes of four or more ranges, and patterns under eight bytes, stay bytewise.
    for p in ["^[0-9A-Za-z_]{9}$", "^[A-Z]{2}$", "^abcdefg$"] {
        let fixed = FixedPattern::compile(p).unwrap_or_else(|| panic!("{p} is not fixed"));
        assert!(!fixed.has_words(), "{p}");
    }
}

// ---- string scanning ------------------------------------------------------------------

#[test]
fn strings_of_every_length_and_alignment_agree_with_the_crate() {
    // The scanner's 8- and 1-byte steps meet a closing quote, an escape or a control
    // character at every offset, with the body starting at every alignment.
    let c = compiled(&json!({"type": "string", "maxLength": 40}));
    for len in 0..48 {
        for end in [&b"\""[..], b"\\n\"", b"\\\"", b"\x01\"", b"\x7f\""] {
            for pad in 0..8 {
                let mut body = vec![b' '; pad];
                body.push(b'"');
                body.extend((0..len).map(|i| b'a' + (i % 26) as u8));
                body.extend_from_slice(end);
                let v = agreed(&c, &body);
                let chars = len + usize::from(end == b"\x7f\"");
                match end {
                    b"\"" | b"\x7f\"" => assert_eq!(
                        v,
                        if chars <= 40 {
                            Verdict::Valid
                        } else {
                            Verdict::Invalid
                        },
                        "{len} {pad}"
                    ),
                    _ => assert_eq!(v, Verdict::Unknown, "{len} {pad}"),
                }
            }
        }
    }
}

/// Not a test: a fixed amount of fast-path work for instruction counts. Reads bodies
/// one a line from `$SEALBUS_FAST_EVENTS` (e.g. the bench pool, written by
/// `encode_pool(2048, 1024)`), checks each four times with one warm scratch, and
/// asserts they are all `Valid`. Run under callgrind:
///
///     CARGO_PROFILE_RELEASE_DEBUG=line-tables-only cargo test --release -p sealbus-core \
///         --lib -- --ignored --exact schema::fast::tests::count_instructions_on_the_pool
///     (then valgrind --tool=callgrind on the test binary with the same arguments, and
///     divide `FastSchema::check`'s inclusive count by 4 x the number of bodies)
#[test]
#[ignore = "a measurement harness, run by hand under callgrind"]
fn count_instructions_on_the_pool() {
    let Ok(path) = std::env::var("SEALBUS_FAST_EVENTS") else {
        return;
    };
    let text = std::fs::read(path).unwrap();
    let bodies: Vec<&[u8]> = text
        .split(|&c| c == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let c = &ORDERS[0];
    let mut scratch = Scratch::default();
    for _ in 0..4 {
        for body in &bodies {
            assert_eq!(c.fast_verdict(body, &mut scratch), Verdict::Valid);
        }
    }
}

// ---- fused string tests and short numbers --------------------------------------------

/// Schemas whose string nodes get each kind of [`super::Fused`] test, with length
/// bounds that cut some members and types that refuse strings.
fn fused_schemas() -> Vec<Value> {
    let subs = [
        json!({"enum": ["web", "mobile", "store", "partner"]}),
        json!({"const": "OrderPlaced"}),
        json!({"enum": ["ab", "abcd", "abcdefghijklmno", "abcdefghijklmnop", "a\"b", "é", 1]}),
        json!({"enum": ["ab", "abcd", "é"], "maxLength": 2}),
        json!({"enum": ["ab", "abcd"], "minLength": 3}),
        json!({"type": "integer", "enum": ["ab", 1]}),
        json!({"type": ["string", "null"], "enum": ["ab", null]}),
        json!({"type": "string", "pattern": "^[A-Z]{3}-[0-9]{4}$"}),
        json!({"type": "string", "pattern": "^ord-[0-9a-f]{12}$"}),
        json!({"type": "string", "pattern": "^[A-Z]{2}$"}),
        json!({"type": "string", "pattern": "^[A-Z]{2}$", "maxLength": 1}),
        json!({"type": "string", "pattern": "^a.c$"}),
        json!({"type": "string", "pattern": "^a[^b]c$"}),
        json!({"type": "number", "pattern": "^[A-Z]{2}$"}),
        json!({"type": "string", "format": "uuid"}),
        json!({"type": "string", "format": "uuid", "maxLength": 35}),
        json!({"type": "string", "format": "date-time"}),
        json!({"type": "string", "format": "date"}),
        json!({"format": "date-time", "minLength": 21}),
    ];
    subs.into_iter()
        .map(|sub| {
            json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "properties": {"v": sub, "w": {"type": "integer"}},
            })
        })
        .collect()
}

static FUSED: LazyLock<Vec<CompiledSchema>> =
    LazyLock::new(|| fused_schemas().iter().map(compiled).collect());

/// Strings near the fused tests' edges: members, their prefixes and extensions, the
/// length cut, escapes, quotes, multibyte text, shapes one byte off.
const FUSED_STRINGS: &[&str] = &[
    "web",
    "webs",
    "we",
    "mobile",
    "partner",
    "partners",
    "Web",
    "w\\u0065b",
    "OrderPlaced",
    "OrderPlacedX",
    "OrderPlace",
    "ab",
    "abc",
    "abcd",
    "abcde",
    "abcdefghijklmno",
    "abcdefghijklmnop",
    "abcdefghijklmnopq",
    "a\\\"b",
    "é",
    "e\\u0301",
    "",
    "ABC-1234",
    "ABC-12345",
    "ABC-123",
    "AB-1234",
    "abc-1234",
    "ABC\\u002d1234",
    "ord-0123456789ab",
    "ord-0123456789abc",
    "ord-0123456789AB",
    "US",
    "U",
    "USA",
    "u\\u0053",
    "aXc",
    "a\\\"c",
    "a\\\\c",
    "abc",
    "a\\tc",
    "a\\u0000c",
    "aéc",
    "3b8faa18-37f8-488b-97fc-695a07a0ca6e",
    "3b8faa18-37f8-488b-97fc-695a07a0ca6",
    "3b8faa18-37f8-488b-97fc-695a07a0ca6eX",
    "3b8faa18-37f8-488b-97fc-695a07a0ca6\\u0065",
    "3B8FAA18-37F8-488B-97FC-695A07A0CA6E",
    "3b8faa1837f8-488b-97fc-695a07a0ca6e-",
    "2024-01-13T08:14:09Z",
    "2024-01-13T08:14:09ZZ",
    "2024-01-13T08:14:09",
    "2024-01-13T08:14:09.5Z",
    "2024-02-30T08:14:09Z",
    "2024-01-13t08:14:09z",
    "2024-01-13T08:14:60Z",
    "2024-01-13T08:14:09+01:00",
    "2024-01-13",
    "2024-02-29",
    "2023-02-29",
    "2024-01-1\\u0033",
];

#[test]
fn fused_tests_are_chosen_for_every_order_string_with_one_shape() {
    let fast = super::FastSchema::compile(&orders_schema(), "2020-12").unwrap();
    let count = |f: fn(&super::Fused) -> bool| fast.nodes.iter().filter(|n| f(&n.fused)).count();
    // eventType, source, tier, currency, shippingMethod.
    assert_eq!(count(|f| matches!(f, super::Fused::Literals(_))), 5);
    // orderId, customer id, country, sku: all four patterns.
    assert_eq!(count(|f| matches!(f, super::Fused::Pattern(_))), 4);
    // eventId (uuid), occurredAt (date-time); the e-mail is not fused.
    assert_eq!(count(|f| matches!(f, super::Fused::Format(..))), 2);
    // Length bounds cut members, and a type without strings has no fused test.
    let schemas: Vec<super::FastSchema> = fused_schemas()
        .iter()
        .map(|s| super::FastSchema::compile(s, "2020-12").unwrap())
        .collect();
    let literals = |s: &super::FastSchema| -> Vec<usize> {
        s.nodes
            .iter()
            .filter_map(|n| match &n.fused {
                super::Fused::Literals(l) => Some(l.len()),
                _ => None,
            })
            .collect()
    };
    assert_eq!(literals(&schemas[2]), vec![4]); // no 16-byte member, no quoted one
    assert_eq!(literals(&schemas[3]), vec![2]); // "ab" and "é" (one code point)
    assert_eq!(literals(&schemas[4]), vec![1]);
    assert_eq!(literals(&schemas[5]), Vec::<usize>::new());
    let fused_none = |s: &super::FastSchema| {
        s.nodes
            .iter()
            .skip(2)
            .all(|n| matches!(n.fused, super::Fused::None))
    };
    for at in [10, 11, 12, 13, 15, 18] {
        assert!(
            fused_none(&schemas[at]),
            "schema {at} should have no fused test"
        );
    }
}

#[test]
fn fused_strings_agree_with_the_crate_in_every_position() {
    let mut decided = 0;
    for c in FUSED.iter() {
        for s in FUSED_STRINGS {
            for body in [
                format!("{{\"v\":\"{s}\"}}"),
                format!("{{\"v\":\"{s}\",\"w\":1}}"),
                format!("{{\"v\":\"{s}\" ,\"w\":1}}"),
                format!("{{\"w\":1,\"v\":\"{s}\"}}"),
                format!("{{\"v\":\"{s}\",\"v\":\"{s}\"}}"),
                format!("{{\"v\":\"{s}\"                    }}"),
                format!("{{\"v\":\"{s}"),
                format!("{{\"v\":\"{s}\"x\"}}"),
                // No closing quote: a test that skipped one byte as if it were the quote
                // would reach the brace and say Valid on broken JSON.
                // (padded too: the literal test reads sixteen bytes past the quote).
                format!("{{\"v\":\"{s}}}"),
                format!("{{\"v\":\"{s}}}                "),
                format!("{{\"v\":\"{s},\"w\":1}}                "),
            ] {
                if agreed(c, body.as_bytes()) != Verdict::Unknown {
                    decided += 1;
                }
            }
        }
    }
    // Most bodies are decided: the test would say little if everything were Unknown.
    assert!(decided > FUSED.len() * FUSED_STRINGS.len() * 4, "{decided}");
}

#[test]
fn short_numbers_read_as_the_general_scan_does() {
    let fast = super::FastSchema::compile(&json!(true), "2020-12").unwrap();
    let ints = [
        "0",
        "00",
        "01",
        "1",
        "7",
        "10",
        "999",
        "1234567",
        "9876543",
        "305",
        "4060",
        "12345678",
        "123456789",
    ];
    let fracs = [
        "",
        ".",
        ".0",
        ".00",
        ".5",
        ".50",
        ".05",
        ".1000",
        ".1234567",
        ".9876543",
        ".0102030",
        ".99",
        ".12345678",
        ".0000000",
        ".x",
    ];
    let tails = [
        "",
        ",",
        "}",
        "]",
        " ",
        "e5",
        "E-2",
        "e",
        ".",
        ".5",
        "-",
        "x",
        "0",
        ",\"k\":1}",
        ",\"k\":1234567890}",
    ];
    let mut short_taken = 0;
    for sign in ["", "-"] {
        for int in ints {
            for frac in fracs {
                for tail in tails {
                    // Unpadded (the short read needs sixteen bytes) and padded.
                    for pad in ["", "                "] {
                        let text = format!("{sign}{int}{frac}{tail}{pad}");
                        let (short, scanned) =
                            super::check::both_number_scans(&fast, text.as_bytes());
                        if let Some(short) = short {
                            short_taken += 1;
                            assert_eq!(Some(short), scanned, "on {text:?}");
                        }
                    }
                }
            }
        }
    }
    assert!(short_taken > 200, "{short_taken}");
}
