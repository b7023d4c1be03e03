//! LINE Messaging API webhooks: `{destination, events[]}`.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::*;

#[derive(Deserialize)]
struct Envelope<'a> {
    destination: Option<String>,
    #[serde(default, borrow)]
    events: Vec<&'a RawValue>,
}

/// Only the destination: which channel's secret verifies the signature. Read before verification, since
/// LINE signs with a per-channel secret; nothing else of the body is used until the signature holds.
#[derive(Deserialize)]
struct DestinationOnly {
    destination: Option<String>,
}

/// `Ok(None)` when the body is JSON without a string `destination`.
pub fn destination(body: &[u8]) -> Result<Option<String>, ParseError> {
    Ok(envelope::<DestinationOnly>(body, &[])?
        .ok()
        .and_then(|d| d.destination))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Event {
    #[serde(rename = "type")]
    kind: Option<String>,
    timestamp: Option<i64>,
    mode: Option<String>,
    webhook_event_id: Option<String>,
    delivery_context: Option<DeliveryContext>,
    source: Option<Source>,
    reply_token: Option<String>,
    message: Option<LineMessage>,
    postback: Option<LinePostback>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeliveryContext {
    #[serde(default)]
    is_redelivery: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Source {
    user_id: Option<String>,
    group_id: Option<String>,
    room_id: Option<String>,
}

#[derive(Deserialize)]
struct LineMessage {
    id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    text: Option<String>,
}

#[derive(Deserialize)]
struct LinePostback {
    data: Option<String>,
}

/// Parses a LINE webhook body (already signature-checked).
pub fn parse(body: &[u8]) -> Result<Parsed, ParseError> {
    let envelope: Envelope = match envelope(body, &["destination", "events"])? {
        Ok(envelope) => envelope,
        Err(unexpected) => return Ok(unexpected),
    };
    let mut parsed = Parsed::default();
    let Some(destination) = envelope.destination else {
        parsed.skipped.push(Skipped::MalformedItem);
        return Ok(parsed);
    };
    for raw in envelope.events {
        match serde_json::from_str::<Event>(raw.get())
            .ok()
            .and_then(|e| event(&destination, e))
        {
            Some(Ok(e)) => parsed.events.push(e),
            Some(Err(skip)) => parsed.skipped.push(skip),
            None => parsed.skipped.push(Skipped::MalformedItem),
        }
    }
    parsed.skip_unstorable();
    parsed.events.sort_by_key(|e| e.timestamp);
    Ok(parsed)
}

fn event(destination: &str, e: Event) -> Option<Result<InboundEvent, Skipped>> {
    let source = e.source?;
    // A group or room conversation is one thread with the group.
    let user_id = source.group_id.or(source.room_id).or(source.user_id)?;
    let timestamp = from_millis(e.timestamp?)?;
    let event_id = e.webhook_event_id?;
    let redelivery = e.delivery_context.is_some_and(|d| d.is_redelivery);
    let kind = match e.kind.as_deref()? {
        "message" => {
            let message = e.message?;
            let kind_name = message.kind.unwrap_or_else(|| "unknown".into());
            let mut inbound = InboundMessage {
                message_id: message.id?,
                reply_token: e.reply_token.map(ReplyToken::new),
                redelivery,
                ..Default::default()
            };
            if kind_name == "text" {
                inbound.text = text(message.text);
            } else {
                inbound.attachments.push(Attachment {
                    kind: kind_name,
                    url: None,
                });
            }
            EventKind::Message(inbound)
        }
        "postback" => EventKind::Postback {
            message_id: event_id.clone(),
            title: None,
            payload: e.postback.and_then(|p| p.data).unwrap_or_default(),
        },
        "follow" => EventKind::Follow,
        "unfollow" => EventKind::Unfollow,
        _ => return Some(Err(Skipped::UnsupportedEvent)),
    };
    Some(Ok(InboundEvent {
        platform: Platform::Line,
        account_id: destination.to_owned(),
        user_id: PlatformUserId::new(user_id),
        timestamp,
        event_id: Some(event_id),
        standby: e.mode.as_deref() == Some("standby"),
        kind,
    }))
}
