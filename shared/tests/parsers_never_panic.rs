//! Property tests: no input makes the webhook parsers panic. A panic in webhook-ingest would answer 502
//! and make the platform retry a delivery that can never succeed, so every shape must end in events,
//! skips or a `ParseError`.

use inbox_shared::platform::{line, meta};
use proptest::prelude::*;
use serde_json::{Map, Value};

/// Field names the parsers look for, so generated documents reach deep into the parsing code.
const KEYS: &[&str] = &[
    "object",
    "entry",
    "id",
    "time",
    "messaging",
    "changes",
    "field",
    "value",
    "sender",
    "recipient",
    "timestamp",
    "message",
    "mid",
    "text",
    "is_echo",
    "app_id",
    "metadata",
    "quick_reply",
    "payload",
    "reply_to",
    "story",
    "attachments",
    "type",
    "url",
    "postback",
    "title",
    "reaction",
    "action",
    "emoji",
    "read",
    "watermark",
    "delivery",
    "mids",
    "messaging_product",
    "phone_number_id",
    "contacts",
    "profile",
    "name",
    "wa_id",
    "messages",
    "from",
    "body",
    "context",
    "interactive",
    "button_reply",
    "statuses",
    "status",
    "recipient_id",
    "errors",
    "code",
    "comment_id",
    "media",
    "destination",
    "events",
    "mode",
    "webhookEventId",
    "deliveryContext",
    "isRedelivery",
    "source",
    "userId",
    "groupId",
    "replyToken",
    "data",
    "image",
    "audio",
    "document",
    "caption",
];

const OBJECTS: &[&str] = &["page", "instagram", "whatsapp_business_account", "user", ""];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop::sample::select(OBJECTS).prop_map(Value::from),
        prop::sample::select(KEYS).prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
        "[0-9]{1,25}".prop_map(Value::from),
    ]
}

fn json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(6, 96, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..8).prop_map(|fields| {
                Value::Object(
                    fields
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect::<Map<_, _>>(),
                )
            }),
        ]
    })
}

/// A real delivery with one node somewhere replaced by arbitrary JSON.
fn mutated(fixture: &'static str) -> impl Strategy<Value = Vec<u8>> {
    let original: Value = serde_json::from_str(fixture).expect("fixture is JSON");
    (any::<prop::sample::Index>(), json()).prop_map(move |(at, replacement)| {
        let mut doc = original.clone();
        let mut paths = Vec::new();
        collect_paths(&doc, &mut Vec::new(), &mut paths);
        let path = at.get(&paths).clone();
        *pointer_mut(&mut doc, &path) = replacement;
        serde_json::to_vec(&doc).expect("serialises")
    })
}

fn collect_paths(value: &Value, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    out.push(prefix.clone());
    let children: Vec<(String, &Value)> = match value {
        Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), v)).collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| (i.to_string(), v))
            .collect(),
        _ => Vec::new(),
    };
    for (key, child) in children {
        prefix.push(key);
        collect_paths(child, prefix, out);
        prefix.pop();
    }
}

fn pointer_mut<'a>(value: &'a mut Value, path: &[String]) -> &'a mut Value {
    path.iter().fold(value, |node, key| match node {
        Value::Object(map) => map.get_mut(key).expect("path exists"),
        Value::Array(items) => &mut items[key.parse::<usize>().expect("index")],
        _ => unreachable!("paths only descend into containers"),
    })
}

fn parse_all(body: &[u8]) {
    let _ = meta::parse(body);
    let _ = line::parse(body);
    let _ = line::destination(body);
}

const FIXTURES: &[&str] = &[
    include_str!("../../tests/fixtures/messenger_mixed.json"),
    include_str!("../../tests/fixtures/messenger_text.json"),
    include_str!("../../tests/fixtures/instagram_messages.json"),
    include_str!("../../tests/fixtures/instagram_comment.json"),
    include_str!("../../tests/fixtures/whatsapp_mixed.json"),
    include_str!("../../tests/fixtures/whatsapp_messages.json"),
    include_str!("../../tests/fixtures/line_events.json"),
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        parse_all(&body);
    }

    #[test]
    fn arbitrary_json_never_panics(doc in json()) {
        parse_all(&serde_json::to_vec(&doc).unwrap());
    }

    #[test]
    fn mutated_real_deliveries_never_panic(
        body in prop::sample::select(FIXTURES).prop_flat_map(mutated)
    ) {
        parse_all(&body);
    }

    #[test]
    fn truncated_real_deliveries_never_panic(
        fixture in prop::sample::select(FIXTURES),
        keep in any::<prop::sample::Index>(),
    ) {
        let bytes = fixture.as_bytes();
        parse_all(&bytes[..keep.index(bytes.len())]);
    }
}

#[test]
fn every_fixture_parses() {
    for fixture in FIXTURES {
        let parsed = if fixture.contains("\"destination\"") {
            line::parse(fixture.as_bytes())
        } else {
            meta::parse(fixture.as_bytes())
        };
        assert!(!parsed.expect("fixture parses").events.is_empty());
    }
}
