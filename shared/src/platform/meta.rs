//! Meta webhooks: Messenger (`object: page`), Instagram (`object: instagram`) and WhatsApp Cloud API
//! (`object: whatsapp_business_account`), every `entry[]` and every item in it.

use serde::Deserialize;
use serde_json::value::RawValue;
use time::OffsetDateTime;

use super::*;

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(default)]
    object: Option<String>,
    #[serde(default, borrow)]
    entry: Vec<&'a RawValue>,
}

#[derive(Deserialize)]
struct Entry<'a> {
    #[serde(default, deserialize_with = "id_string")]
    id: Option<String>,
    /// Milliseconds on messaging entries, seconds on some `changes` entries.
    time: Option<i64>,
    #[serde(default, borrow)]
    messaging: Vec<&'a RawValue>,
    #[serde(default, borrow)]
    changes: Vec<&'a RawValue>,
}

#[derive(Deserialize)]
struct Party {
    #[serde(default, deserialize_with = "id_string")]
    id: Option<String>,
}

#[derive(Deserialize)]
struct MessagingItem {
    sender: Option<Party>,
    recipient: Option<Party>,
    timestamp: Option<i64>,
    message: Option<MessageBody>,
    postback: Option<PostbackBody>,
    reaction: Option<ReactionBody>,
    read: Option<ReadBody>,
    delivery: Option<DeliveryBody>,
}

#[derive(Deserialize)]
struct MessageBody {
    mid: Option<String>,
    text: Option<String>,
    #[serde(default)]
    attachments: Vec<AttachmentBody>,
    quick_reply: Option<Payload>,
    reply_to: Option<ReplyToBody>,
    #[serde(default)]
    is_echo: bool,
    #[serde(default, deserialize_with = "id_string")]
    app_id: Option<String>,
    metadata: Option<String>,
    #[serde(default)]
    is_deleted: bool,
}

#[derive(Deserialize)]
struct AttachmentBody {
    #[serde(rename = "type")]
    kind: Option<String>,
    payload: Option<AttachmentPayload>,
}

#[derive(Deserialize)]
struct AttachmentPayload {
    url: Option<String>,
}

#[derive(Deserialize)]
struct Payload {
    payload: Option<String>,
}

#[derive(Deserialize)]
struct ReplyToBody {
    mid: Option<String>,
    story: Option<StoryBody>,
}

#[derive(Deserialize)]
struct StoryBody {
    #[serde(default, deserialize_with = "id_string")]
    id: Option<String>,
    url: Option<String>,
}

#[derive(Deserialize)]
struct PostbackBody {
    mid: Option<String>,
    title: Option<String>,
    payload: Option<String>,
}

#[derive(Deserialize)]
struct ReactionBody {
    mid: Option<String>,
    action: Option<String>,
    emoji: Option<String>,
}

#[derive(Deserialize)]
struct ReadBody {
    watermark: Option<i64>,
    mid: Option<String>,
}

#[derive(Deserialize)]
struct DeliveryBody {
    #[serde(default)]
    mids: Vec<String>,
    watermark: Option<i64>,
}

#[derive(Deserialize)]
struct Change<'a> {
    field: Option<String>,
    #[serde(borrow)]
    value: Option<&'a RawValue>,
}

/// Parses a Meta webhook body (already signature-checked).
pub fn parse(body: &[u8]) -> Result<Parsed, ParseError> {
    let envelope: Envelope = match envelope(body, &["object", "entry"])? {
        Ok(envelope) => envelope,
        Err(unexpected) => return Ok(unexpected),
    };
    let platform = match envelope.object.as_deref() {
        Some("page") => Platform::Messenger,
        Some("instagram") => Platform::Instagram,
        Some("whatsapp_business_account") => Platform::Whatsapp,
        _ => {
            return Ok(Parsed {
                skipped: vec![Skipped::UnknownObject],
                ..Parsed::default()
            });
        }
    };
    let mut parsed = Parsed::default();
    for raw in envelope.entry {
        let Ok(entry) = serde_json::from_str::<Entry>(raw.get()) else {
            parsed.skipped.push(Skipped::MalformedItem);
            continue;
        };
        for item in &entry.messaging {
            match serde_json::from_str::<MessagingItem>(item.get())
                .ok()
                .and_then(|i| messaging(platform, entry.id.as_deref(), i))
            {
                Some(Ok(event)) => parsed.events.push(event),
                Some(Err(skip)) => parsed.skipped.push(skip),
                None => parsed.skipped.push(Skipped::MalformedItem),
            }
        }
        for change in &entry.changes {
            let Ok(change) = serde_json::from_str::<Change>(change.get()) else {
                parsed.skipped.push(Skipped::MalformedItem);
                continue;
            };
            match (platform, change.field.as_deref(), change.value) {
                (Platform::Whatsapp, Some("messages"), Some(value)) => whatsapp(value, &mut parsed),
                (Platform::Instagram, Some("comments" | "live_comments"), Some(value)) => {
                    match instagram_comment(entry.id.as_deref(), entry.time, value) {
                        Some(event) => parsed.events.push(event),
                        None => parsed.skipped.push(Skipped::MalformedItem),
                    }
                }
                _ => parsed.skipped.push(Skipped::UnknownField),
            }
        }
    }
    parsed.skip_unstorable();
    parsed.events.sort_by_key(|e| e.timestamp);
    Ok(parsed)
}

/// One `messaging[]` item: `None` if malformed, `Some(Err)` if of a kind we do not handle.
fn messaging(
    platform: Platform,
    entry_id: Option<&str>,
    item: MessagingItem,
) -> Option<Result<InboundEvent, Skipped>> {
    let sender = item.sender.and_then(|p| p.id)?;
    let recipient = item.recipient.and_then(|p| p.id)?;
    let timestamp = from_millis(item.timestamp?)?;
    let account = entry_id.map(str::to_owned);
    let event = |account_id: String, user_id: String, kind: EventKind| InboundEvent {
        platform,
        account_id,
        user_id: PlatformUserId::new(user_id),
        timestamp,
        event_id: None,
        standby: false,
        kind,
    };
    if let Some(message) = item.message {
        let message_id = message.mid?;
        if message.is_echo {
            // Sent by the business account: sender is the account, recipient the customer.
            let echo = Echo {
                message_id,
                app_id: message.app_id,
                metadata: message.metadata,
                text: text(message.text),
            };
            return Some(Ok(event(
                account.unwrap_or(sender),
                recipient,
                EventKind::Echo(echo),
            )));
        }
        if message.is_deleted {
            return Some(Err(Skipped::UnsupportedEvent));
        }
        let inbound = InboundMessage {
            message_id,
            text: text(message.text),
            attachments: message
                .attachments
                .into_iter()
                .map(|a| Attachment {
                    kind: a.kind.unwrap_or_else(|| "unknown".into()),
                    url: a.payload.and_then(|p| p.url),
                })
                .collect(),
            payload: message.quick_reply.and_then(|q| q.payload),
            reply_to: message.reply_to.and_then(|r| match (r.mid, r.story) {
                (_, Some(story)) => story.id.map(|id| ReplyTo::Story { id, url: story.url }),
                (Some(mid), None) => Some(ReplyTo::Message(mid)),
                (None, None) => None,
            }),
            ..Default::default()
        };
        return Some(Ok(event(
            account.unwrap_or(recipient),
            sender,
            EventKind::Message(inbound),
        )));
    }
    let kind = if let Some(postback) = item.postback {
        let message_id = postback.mid.unwrap_or_else(|| {
            format!(
                "postback:{sender}:{}",
                timestamp.unix_timestamp_nanos() / 1_000_000
            )
        });
        EventKind::Postback {
            message_id,
            title: text(postback.title),
            payload: postback.payload.unwrap_or_default(),
        }
    } else if let Some(reaction) = item.reaction {
        EventKind::Reaction {
            message_id: reaction.mid?,
            react: reaction.action.as_deref() != Some("unreact"),
            emoji: reaction.emoji,
        }
    } else if let Some(read) = item.read {
        EventKind::Read {
            watermark: read.watermark.and_then(from_millis),
            message_id: read.mid,
        }
    } else if let Some(delivery) = item.delivery {
        EventKind::Delivery {
            message_ids: delivery.mids,
            watermark: delivery.watermark.and_then(from_millis),
        }
    } else {
        return Some(Err(Skipped::UnsupportedEvent));
    };
    Some(Ok(event(account.unwrap_or(recipient), sender, kind)))
}

#[derive(Deserialize)]
struct WhatsappValue<'a> {
    metadata: Option<WhatsappMetadata>,
    #[serde(default)]
    contacts: Vec<WhatsappContact>,
    #[serde(default, borrow)]
    messages: Vec<&'a RawValue>,
    #[serde(default, borrow)]
    statuses: Vec<&'a RawValue>,
}

#[derive(Deserialize)]
struct WhatsappMetadata {
    #[serde(deserialize_with = "id_string", default)]
    phone_number_id: Option<String>,
}

#[derive(Deserialize)]
struct WhatsappContact {
    wa_id: Option<String>,
    profile: Option<WhatsappProfile>,
}

#[derive(Deserialize)]
struct WhatsappProfile {
    name: Option<String>,
}

#[derive(Deserialize)]
struct WhatsappMessage {
    from: Option<String>,
    id: Option<String>,
    timestamp: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    text: Option<WhatsappText>,
    interactive: Option<WhatsappInteractive>,
    button: Option<WhatsappButton>,
    reaction: Option<WhatsappReaction>,
    context: Option<WhatsappContext>,
    image: Option<WhatsappMedia>,
    video: Option<WhatsappMedia>,
    document: Option<WhatsappMedia>,
}

#[derive(Deserialize)]
struct WhatsappText {
    body: Option<String>,
}

#[derive(Deserialize)]
struct WhatsappInteractive {
    button_reply: Option<WhatsappReply>,
    list_reply: Option<WhatsappReply>,
}

#[derive(Deserialize)]
struct WhatsappReply {
    id: Option<String>,
    title: Option<String>,
}

#[derive(Deserialize)]
struct WhatsappButton {
    payload: Option<String>,
    text: Option<String>,
}

#[derive(Deserialize)]
struct WhatsappReaction {
    message_id: Option<String>,
    emoji: Option<String>,
}

#[derive(Deserialize)]
struct WhatsappContext {
    id: Option<String>,
}

#[derive(Deserialize)]
struct WhatsappMedia {
    caption: Option<String>,
}

#[derive(Deserialize)]
struct WhatsappStatus {
    id: Option<String>,
    status: Option<String>,
    timestamp: Option<String>,
    recipient_id: Option<String>,
    #[serde(default)]
    errors: Vec<WhatsappError>,
}

#[derive(Deserialize)]
struct WhatsappError {
    code: Option<i64>,
}

/// Meta sends entry times in seconds or in milliseconds; anything past 10^11 is milliseconds.
fn seconds_or_millis(t: i64) -> Option<OffsetDateTime> {
    if t > 100_000_000_000 {
        from_millis(t)
    } else {
        from_seconds(t)
    }
}

fn seconds(value: Option<&str>) -> Option<OffsetDateTime> {
    value?.parse::<i64>().ok().and_then(from_seconds)
}

fn whatsapp(value: &RawValue, parsed: &mut Parsed) {
    let Ok(value) = serde_json::from_str::<WhatsappValue>(value.get()) else {
        parsed.skipped.push(Skipped::MalformedItem);
        return;
    };
    let Some(account_id) = value.metadata.and_then(|m| m.phone_number_id) else {
        parsed.skipped.push(Skipped::MalformedItem);
        return;
    };
    let event = |user_id: String, timestamp, kind| InboundEvent {
        platform: Platform::Whatsapp,
        account_id: account_id.clone(),
        user_id: PlatformUserId::new(user_id),
        timestamp,
        event_id: None,
        standby: false,
        kind,
    };
    for raw in value.messages {
        let converted = serde_json::from_str::<WhatsappMessage>(raw.get())
            .ok()
            .and_then(|m| {
                let from = m.from?;
                let timestamp = seconds(m.timestamp.as_deref())?;
                let message_id = m.id?;
                let kind_name = m.kind.unwrap_or_else(|| "unknown".into());
                if let Some(reaction) = m.reaction {
                    let kind = EventKind::Reaction {
                        message_id: reaction.message_id?,
                        react: reaction.emoji.as_deref().is_some_and(|e| !e.is_empty()),
                        emoji: reaction.emoji,
                    };
                    return Some(event(from, timestamp, kind));
                }
                let mut message = InboundMessage {
                    message_id,
                    reply_to: m.context.and_then(|c| c.id).map(ReplyTo::Message),
                    profile_name: value
                        .contacts
                        .iter()
                        .find(|c| c.wa_id.as_deref() == Some(from.as_str()))
                        .and_then(|c| c.profile.as_ref()?.name.clone())
                        .map(ProfileName::new),
                    ..Default::default()
                };
                match kind_name.as_str() {
                    "text" => message.text = text(m.text.and_then(|t| t.body)),
                    "interactive" => {
                        let reply = m.interactive.and_then(|i| i.button_reply.or(i.list_reply));
                        if let Some(reply) = reply {
                            message.text = text(reply.title);
                            message.payload = reply.id;
                        }
                    }
                    "button" => {
                        if let Some(button) = m.button {
                            message.text = text(button.text);
                            message.payload = button.payload;
                        }
                    }
                    other => {
                        let caption = m
                            .image
                            .or(m.video)
                            .or(m.document)
                            .and_then(|media| media.caption);
                        message.text = text(caption);
                        message.attachments.push(Attachment {
                            kind: other.to_owned(),
                            url: None,
                        });
                    }
                }
                Some(event(from, timestamp, EventKind::Message(message)))
            });
        match converted {
            Some(e) => parsed.events.push(e),
            None => parsed.skipped.push(Skipped::MalformedItem),
        }
    }
    for raw in value.statuses {
        let converted = serde_json::from_str::<WhatsappStatus>(raw.get())
            .ok()
            .and_then(|s| {
                let status = match s.status.as_deref()? {
                    "sent" => MessageStatus::Sent,
                    "delivered" => MessageStatus::Delivered,
                    "read" => MessageStatus::Read,
                    "failed" => MessageStatus::Failed,
                    _ => return None,
                };
                let kind = EventKind::Status {
                    message_id: s.id?,
                    status,
                    error_code: s.errors.first().and_then(|e| e.code),
                };
                Some(event(
                    s.recipient_id?,
                    seconds(s.timestamp.as_deref())?,
                    kind,
                ))
            });
        match converted {
            Some(e) => parsed.events.push(e),
            None => parsed.skipped.push(Skipped::MalformedItem),
        }
    }
}

#[derive(Deserialize)]
struct CommentValue {
    #[serde(default, deserialize_with = "id_string")]
    id: Option<String>,
    #[serde(default, deserialize_with = "id_string")]
    comment_id: Option<String>,
    from: Option<Party>,
    text: Option<String>,
    #[serde(default, deserialize_with = "id_string")]
    parent_id: Option<String>,
    media: Option<Party>,
    timestamp: Option<i64>,
}

fn instagram_comment(
    entry_id: Option<&str>,
    entry_time: Option<i64>,
    value: &RawValue,
) -> Option<InboundEvent> {
    let comment: CommentValue = serde_json::from_str(value.get()).ok()?;
    Some(InboundEvent {
        platform: Platform::Instagram,
        account_id: entry_id?.to_owned(),
        user_id: PlatformUserId::new(comment.from.and_then(|f| f.id)?),
        timestamp: comment
            .timestamp
            .or(entry_time)
            .and_then(seconds_or_millis)?,
        event_id: None,
        standby: false,
        kind: EventKind::Comment {
            comment_id: comment.id.or(comment.comment_id)?,
            media_id: comment.media.and_then(|m| m.id),
            parent_id: comment.parent_id,
            text: text(comment.text),
        },
    })
}
