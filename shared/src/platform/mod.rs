//! The messaging platforms: webhook signatures, and every webhook item normalised into one
//! [`InboundEvent`] type.
//!
//! Parsing never fails a whole delivery for one bad item: each `messaging[]`, `changes[]`, `messages[]`,
//! `statuses[]` or `events[]` item is parsed on its own, and what cannot be used is reported as a
//! [`Skipped`] reason (counted in a metric) while the rest goes through. Only a body that is not JSON at
//! all is an error.

pub mod accounts;
pub mod line;
pub mod meta;
pub mod send;
pub mod signature;
pub mod signed_request;

use serde::{Deserialize, Deserializer};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use crate::model::{Attachment, MessageStatus, Platform};
use crate::secret::{MessageText, PlatformUserId, ProfileName};

/// One webhook item, normalised.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundEvent {
    pub platform: Platform,
    /// The business account it is for: Page id, Instagram account id, WhatsApp `phone_number_id`, LINE
    /// `destination`.
    pub account_id: String,
    /// The customer: PSID, IGSID, `wa_id`, LINE user (or group/room) id. For echoes and statuses, the
    /// customer our message went to.
    pub user_id: PlatformUserId,
    /// The platform's timestamp.
    pub timestamp: OffsetDateTime,
    /// LINE's `webhookEventId` (unique per event, kept on redelivery).
    pub event_id: Option<String>,
    /// LINE `mode: standby`: another channel owns the conversation; do not answer.
    pub standby: bool,
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    /// A customer's message (text, attachments, quick reply, button, postback-like interactive reply).
    Message(InboundMessage),
    /// A message sent from the business account (by us, or by a person in the platform's own inbox).
    Echo(Echo),
    /// A button press (Messenger/Instagram postback, LINE postback).
    Postback {
        message_id: String,
        title: Option<MessageText>,
        payload: String,
    },
    Reaction {
        message_id: String,
        react: bool,
        emoji: Option<String>,
    },
    /// The customer read our messages up to `watermark` (or message `message_id`).
    Read {
        watermark: Option<OffsetDateTime>,
        message_id: Option<String>,
    },
    Delivery {
        message_ids: Vec<String>,
        watermark: Option<OffsetDateTime>,
    },
    /// A WhatsApp receipt for a message we sent.
    Status {
        message_id: String,
        status: MessageStatus,
        error_code: Option<i64>,
    },
    /// An Instagram comment on the business's media.
    Comment {
        comment_id: String,
        media_id: Option<String>,
        parent_id: Option<String>,
        text: Option<MessageText>,
    },
    /// LINE: the user added the account as a friend, or blocked it.
    Follow,
    Unfollow,
}

impl EventKind {
    /// The platform's id of the message the event is about (`None`: the event has none).
    pub fn message_id(&self) -> Option<&str> {
        match self {
            EventKind::Message(m) => Some(&m.message_id),
            EventKind::Echo(echo) => Some(&echo.message_id),
            EventKind::Postback { message_id, .. }
            | EventKind::Reaction { message_id, .. }
            | EventKind::Status { message_id, .. } => Some(message_id),
            EventKind::Comment { comment_id, .. } => Some(comment_id),
            EventKind::Read { message_id, .. } => message_id.as_deref(),
            EventKind::Delivery { .. } | EventKind::Follow | EventKind::Unfollow => None,
        }
    }
}

/// The longest platform id (account, user, message, event) we accept. Real ones are far shorter (an
/// Instagram `mid` is about 150 bytes); an id becomes part of a table key, and DynamoDB refuses a sort
/// key over 1,024 bytes: an item with a longer id could never be stored nor looked up.
pub const MAX_ID_BYTES: usize = 512;

/// Whether `account_id` has the form of `platform`'s business account ids: digits for Meta (Page id,
/// Instagram account id, WhatsApp `phone_number_id`), `U` and 32 lowercase hex digits for a LINE bot. It
/// becomes a path segment of every send's URL, so nothing else is accepted at connect.
pub fn account_id_is_valid(platform: Platform, account_id: &str) -> bool {
    match platform {
        Platform::Messenger | Platform::Instagram | Platform::Whatsapp => {
            (1..=32).contains(&account_id.len()) && account_id.bytes().all(|b| b.is_ascii_digit())
        }
        Platform::Line => account_id.strip_prefix('U').is_some_and(|hex| {
            hex.len() == 32 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        }),
    }
}

/// Whether a platform id is one we can store and look up.
pub fn storable_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_ID_BYTES
}

impl InboundEvent {
    /// Whether every id of the event (account, user, message, event, profile name) can be stored.
    fn ids_storable(&self) -> bool {
        let profile_name_ok = match &self.kind {
            EventKind::Message(m) => m
                .profile_name
                .as_ref()
                .is_none_or(|name| name.expose().len() <= MAX_ID_BYTES),
            _ => true,
        };
        storable_id(&self.account_id)
            && storable_id(self.user_id.expose())
            && self.event_id.as_deref().is_none_or(storable_id)
            && self.kind.message_id().is_none_or(storable_id)
            && profile_name_ok
    }
}

impl Parsed {
    /// Events whose ids could never be stored are skipped ([`Skipped::Unstorable`]), not ingested.
    fn skip_unstorable(&mut self) {
        let before = self.events.len();
        self.events.retain(InboundEvent::ids_storable);
        self.skipped.extend(std::iter::repeat_n(
            Skipped::Unstorable,
            before - self.events.len(),
        ));
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct InboundMessage {
    /// `mid`, `wamid`, or LINE message id.
    pub message_id: String,
    pub text: Option<MessageText>,
    pub attachments: Vec<Attachment>,
    /// Quick-reply payload, WhatsApp interactive/button reply id.
    pub payload: Option<String>,
    pub reply_to: Option<ReplyTo>,
    pub profile_name: Option<ProfileName>,
    /// LINE: the single-use reply token (valid about a minute).
    pub reply_token: Option<ReplyToken>,
    /// LINE `deliveryContext.isRedelivery`.
    pub redelivery: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ReplyTo {
    Message(String),
    Story { id: String, url: Option<String> },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Echo {
    pub message_id: String,
    /// The Meta app that sent it; absent when a person typed it in Meta Business Suite.
    pub app_id: Option<String>,
    /// What the sender attached (`message.metadata`): our sends carry [`ECHO_TAG_PREFIX`].
    pub metadata: Option<String>,
    pub text: Option<MessageText>,
}

/// The prefix of the `metadata` our sends carry, so their echoes are recognised even before the send's
/// message id is recorded.
pub const ECHO_TAG_PREFIX: &str = "inbox-ai:";

impl Echo {
    pub fn is_tagged_ours(&self) -> bool {
        self.metadata
            .as_deref()
            .is_some_and(|m| m.starts_with(ECHO_TAG_PREFIX))
    }
}

/// A LINE reply token: a one-minute credential to answer one event. Does not print.
#[derive(Clone, PartialEq, Eq)]
pub struct ReplyToken(String);

impl ReplyToken {
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ReplyToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReplyToken(<redacted>)")
    }
}

/// Why an item was not turned into an event (a metric name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Skipped {
    UnknownObject,
    UnknownField,
    UnsupportedEvent,
    MalformedItem,
    /// Valid JSON, but not the envelope the platform documents (`entry: null`, `object: 1`, …).
    UnexpectedShape,
    /// An id too long to be part of a table key (see [`MAX_ID_BYTES`]).
    Unstorable,
}

impl Skipped {
    pub fn metric(self) -> &'static str {
        match self {
            Skipped::UnknownObject => "SkippedUnknownObject",
            Skipped::UnknownField => "SkippedUnknownField",
            Skipped::UnsupportedEvent => "SkippedUnsupportedEvent",
            Skipped::MalformedItem => "SkippedMalformedItem",
            Skipped::UnexpectedShape => "SkippedUnexpectedShape",
            Skipped::Unstorable => "SkippedUnstorable",
        }
    }
}

/// The events of one delivery, and what was skipped.
#[derive(Debug, Default, PartialEq)]
pub struct Parsed {
    pub events: Vec<InboundEvent>,
    pub skipped: Vec<Skipped>,
    /// Set when the body is valid JSON of an unexpected shape: which envelope fields have which JSON
    /// types (never their values), for the logs.
    pub shape_problem: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the body is not valid JSON: {0}")]
pub struct ParseError(pub String);

/// Decodes a delivery's envelope. A body that is not JSON is a [`ParseError`] (400); valid JSON of
/// another shape is `Ok(Err(parsed))`: nothing to ingest, the shape problem described for the logs by
/// the JSON types of `fields` (a retry would bring the same body: it is acknowledged, not refused).
fn envelope<'a, T: Deserialize<'a>>(
    body: &'a [u8],
    fields: &[&str],
) -> Result<Result<T, Parsed>, ParseError> {
    match serde_json::from_slice::<T>(body) {
        Ok(envelope) => Ok(Ok(envelope)),
        Err(err) if err.is_data() && is_json(body) => Ok(Err(Parsed {
            skipped: vec![Skipped::UnexpectedShape],
            shape_problem: Some(describe_shape(body, fields)),
            ..Parsed::default()
        })),
        Err(err) => Err(ParseError(err.to_string())),
    }
}

/// Whether `body` is syntactically valid JSON (checked without building it).
fn is_json(body: &[u8]) -> bool {
    serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok()
}

/// `"object: number, entry: null"`: the JSON type of each envelope field, never a value.
fn describe_shape(body: &[u8], fields: &[&str]) -> String {
    let kind = |value: Option<&serde_json::Value>| match value {
        None => "absent",
        Some(serde_json::Value::Null) => "null",
        Some(serde_json::Value::Bool(_)) => "boolean",
        Some(serde_json::Value::Number(_)) => "number",
        Some(serde_json::Value::String(_)) => "string",
        Some(serde_json::Value::Array(_)) => "array",
        Some(serde_json::Value::Object(_)) => "object",
    };
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(top)) => fields
            .iter()
            .map(|field| format!("{field}: {}", kind(top.get(*field))))
            .collect::<Vec<_>>()
            .join(", "),
        Ok(other) => format!("the body is a JSON {}, not an object", kind(Some(&other))),
        Err(_) => "not JSON".into(),
    }
}

/// Meta ids arrive as strings, sometimes as numbers (`app_id`): a number is kept as the platform's
/// exact text (as `f64`, an id beyond 2^53 or 64 bits would lose digits). Anything else is an error.
pub(crate) fn id_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    use serde::de::Error;
    let Some(raw) = Option::<Box<serde_json::value::RawValue>>::deserialize(d)? else {
        return Ok(None);
    };
    let text = raw.get();
    if text.starts_with('"') {
        return serde_json::from_str(text).map_err(D::Error::custom);
    }
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(Some(text.to_owned()));
    }
    Err(D::Error::custom("an id must be a string or a whole number"))
}

/// Platform timestamps before this are not believed (no platform we support existed).
pub const EARLIEST_PLAUSIBLE: OffsetDateTime = datetime!(2004-01-01 0:00 UTC);
/// How far ahead of our clock a platform's timestamp may be and still be believed: a little clock skew.
/// A message dated later would be ordered after every message the customer sends meanwhile, and so
/// supersede them all (no reply until its date).
pub const MAX_FUTURE_SKEW: Duration = Duration::minutes(5);

impl InboundEvent {
    /// Replaces a timestamp outside the plausible window (before [`EARLIEST_PLAUSIBLE`], or more than
    /// [`MAX_FUTURE_SKEW`] after `received_at`) by `received_at`. Returns the timestamp replaced, if any.
    /// A signed timestamp is input like any other: year 9999 plus a retention period does not exist.
    pub fn clamp_timestamp(&mut self, received_at: OffsetDateTime) -> Option<OffsetDateTime> {
        let plausible = EARLIEST_PLAUSIBLE..=received_at.saturating_add(MAX_FUTURE_SKEW);
        if plausible.contains(&self.timestamp) {
            return None;
        }
        Some(std::mem::replace(&mut self.timestamp, received_at))
    }
}

pub(crate) fn from_millis(ms: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}

pub(crate) fn from_seconds(s: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(s).ok()
}

pub(crate) fn text(value: Option<String>) -> Option<MessageText> {
    value.filter(|t| !t.is_empty()).map(MessageText::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! fixture {
        ($name:literal) => {
            include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../tests/fixtures/",
                $name
            ))
        };
    }

    fn kinds(parsed: &Parsed) -> Vec<&'static str> {
        parsed
            .events
            .iter()
            .map(|e| match &e.kind {
                EventKind::Message(_) => "message",
                EventKind::Echo(_) => "echo",
                EventKind::Postback { .. } => "postback",
                EventKind::Reaction { .. } => "reaction",
                EventKind::Read { .. } => "read",
                EventKind::Delivery { .. } => "delivery",
                EventKind::Status { .. } => "status",
                EventKind::Comment { .. } => "comment",
                EventKind::Follow => "follow",
                EventKind::Unfollow => "unfollow",
            })
            .collect()
    }

    #[test]
    fn messenger_text_with_unicode_escapes_and_quick_reply() {
        let parsed = meta::parse(fixture!("messenger_text.json")).unwrap();
        let [event] = parsed.events.as_slice() else {
            panic!("{parsed:?}")
        };
        assert_eq!(
            (
                event.platform,
                event.account_id.as_str(),
                event.user_id.expose()
            ),
            (Platform::Messenger, "104857600000001", "7234500000000001")
        );
        let EventKind::Message(m) = &event.kind else {
            panic!()
        };
        assert_eq!(m.message_id, "m_AbCdEf123");
        assert_eq!(
            m.text.as_ref().unwrap().expose(),
            "Do you ship to Osaka? äöå"
        );
        assert_eq!(m.payload.as_deref(), Some("SHIPPING_Q"));
    }

    #[test]
    fn messenger_every_item_kind_and_bad_items_are_skipped_not_fatal() {
        let parsed = meta::parse(fixture!("messenger_mixed.json")).unwrap();
        assert_eq!(
            kinds(&parsed),
            vec![
                "echo", "echo", "read", "postback", "delivery", "reaction", "message"
            ]
        );
        assert_eq!(
            parsed.skipped,
            vec![Skipped::UnsupportedEvent, Skipped::MalformedItem]
        );
        let EventKind::Echo(ours) = &parsed.events[0].kind else {
            panic!()
        };
        assert!(ours.is_tagged_ours());
        assert_eq!(ours.app_id.as_deref(), Some("1234567890"));
        assert_eq!(
            parsed.events[0].user_id.expose(),
            "7234500000000001",
            "an echo's user is its recipient"
        );
        let EventKind::Echo(human) = &parsed.events[1].kind else {
            panic!()
        };
        assert!(!human.is_tagged_ours() && human.app_id.is_none());
        let EventKind::Message(image) = &parsed.events[6].kind else {
            panic!()
        };
        assert_eq!(image.attachments[0].kind, "image");
    }

    #[test]
    fn instagram_story_reply_echo_and_comment() {
        let parsed = meta::parse(fixture!("instagram_messages.json")).unwrap();
        assert_eq!(kinds(&parsed), vec!["message", "echo"]);
        let EventKind::Message(m) = &parsed.events[0].kind else {
            panic!()
        };
        assert_eq!(
            m.reply_to,
            Some(ReplyTo::Story {
                id: "18000000000000001".into(),
                url: Some("https://lookaside.example/story".into())
            })
        );
        let comment = meta::parse(fixture!("instagram_comment.json")).unwrap();
        assert_eq!(kinds(&comment), vec!["comment"]);
        assert_eq!(comment.skipped, vec![Skipped::UnknownField]);
        assert_eq!(comment.events[0].timestamp.unix_timestamp(), 1_767_225_800);
    }

    #[test]
    fn whatsapp_messages_statuses_and_unknown_fields() {
        let parsed = meta::parse(fixture!("whatsapp_messages.json")).unwrap();
        assert_eq!(kinds(&parsed), vec!["message", "message"]);
        let EventKind::Message(text) = &parsed.events[0].kind else {
            panic!()
        };
        assert_eq!(text.profile_name.as_ref().unwrap().expose(), "Aiko");
        assert_eq!(parsed.events[0].account_id, "106540352242922");
        let EventKind::Message(button) = &parsed.events[1].kind else {
            panic!()
        };
        assert_eq!(
            (
                button.payload.as_deref(),
                button.text.as_ref().unwrap().expose()
            ),
            (Some("yes_book"), "Book")
        );
        assert_eq!(
            button.reply_to,
            Some(ReplyTo::Message("wamid.OUTBOUND01".into()))
        );

        let mixed = meta::parse(fixture!("whatsapp_mixed.json")).unwrap();
        assert_eq!(
            kinds(&mixed),
            vec!["status", "status", "message"],
            "ordered by timestamp"
        );
        assert_eq!(mixed.skipped, vec![Skipped::UnknownField]);
        assert_eq!(
            mixed.events[1].kind,
            EventKind::Status {
                message_id: "wamid.OUTBOUND02".into(),
                status: MessageStatus::Failed,
                error_code: Some(131047)
            }
        );
    }

    #[test]
    fn line_events_with_redelivery_and_unsupported_types() {
        let parsed = line::parse(fixture!("line_events.json")).unwrap();
        assert_eq!(kinds(&parsed), vec!["follow", "message", "postback"]);
        assert_eq!(parsed.skipped, vec![Skipped::UnsupportedEvent]);
        let EventKind::Message(m) = &parsed.events[1].kind else {
            panic!()
        };
        assert_eq!(m.text.as_ref().unwrap().expose(), "予約できますか？");
        assert_eq!(
            m.reply_token.as_ref().unwrap().expose(),
            "b60d432864f44d079f6d8efe86cf404b"
        );
        assert_eq!(
            parsed.events[1].event_id.as_deref(),
            Some("01JH3Q8Z6YV0K8P5M2N4R7T9WX")
        );
        assert!(
            !format!("{m:?}").contains("b60d43"),
            "reply tokens do not print"
        );
        assert_eq!(
            line::destination(fixture!("line_empty.json"))
                .unwrap()
                .as_deref(),
            Some("U0123456789abcdef0123456789abcdef")
        );
        assert!(
            line::parse(fixture!("line_empty.json"))
                .unwrap()
                .events
                .is_empty()
        );
    }

    #[test]
    fn a_thousand_entry_delivery_yields_every_event_in_timestamp_order() {
        let entries: Vec<serde_json::Value> = (0..1000i64)
            .rev()
            .map(|i| {
                serde_json::json!({"id": "104857600000001", "time": 1767225600000i64 + i, "messaging": [{
                    "sender": {"id": format!("user-{}", i % 7)}, "recipient": {"id": "104857600000001"},
                    "timestamp": 1767225600000i64 + i, "message": {"mid": format!("m_{i}"), "text": "hi"}}]})
            })
            .collect();
        let body = serde_json::json!({"object": "page", "entry": entries}).to_string();
        let parsed = meta::parse(body.as_bytes()).unwrap();
        assert_eq!(parsed.events.len(), 1000);
        assert!(
            parsed
                .events
                .windows(2)
                .all(|w| w[0].timestamp <= w[1].timestamp)
        );
    }

    #[test]
    fn numeric_ids_beyond_64_bits_keep_the_platforms_exact_text() {
        let body = br#"{"object":"page","entry":[{"id":104857600000001,"time":1767225600000,"messaging":[{"sender":{"id":"104857600000001"},"recipient":{"id":"72345"},"timestamp":1767225600000,"message":{"mid":"m_1","is_echo":true,"app_id":123456789012345678901234567890}}]}]}"#;
        let parsed = meta::parse(body).unwrap();
        let EventKind::Echo(echo) = &parsed.events[0].kind else {
            panic!("{parsed:?}")
        };
        assert_eq!(
            echo.app_id.as_deref(),
            Some("123456789012345678901234567890")
        );
        assert_eq!(parsed.events[0].account_id, "104857600000001");
    }

    #[test]
    fn unknown_object_is_skipped_and_truncated_json_is_an_error() {
        let parsed = meta::parse(br#"{"object":"user","entry":[{"id":"1"}]}"#).unwrap();
        assert_eq!(parsed.skipped, vec![Skipped::UnknownObject]);
        let body = fixture!("messenger_text.json");
        assert!(meta::parse(&body[..body.len() / 2]).is_err());
        assert!(line::parse(b"{\"destination\":").is_err());
    }
}
