//! Whether and how to answer one inbound message: a pure function of what is stored, so every rule is
//! tested from a table without the emulator.
//!
//! The rules, in the order they apply: the tenant's AI mode (and its contract); a message already
//! handled by an earlier delivery; a newer message of the same customer (a burst gets one reply, to the
//! latest); a human having the conversation; the customer asking for a person; the platform's reply
//! window; the tenant's monthly plan limits; a channel that can still send. Only then is a provider
//! asked, and its answer drafted or sent as the tenant's AI mode says.

use time::OffsetDateTime;

use crate::llm::offline::{Social, social};
use crate::model::{
    AiMode, Author, Channel, ChannelStatus, Conversation, ConversationMode, Direction,
    HandoffReason, Message, ReplyOutcome, Tenant, TenantStatus,
};
use crate::service::outbound::window_closes_at;

/// Phrases (lower-cased) by which a customer asks for a person.
const PERSON_REQUESTS: &[&str] = &[
    "human",
    "real person",
    "a person",
    "representative",
    "talk to someone",
    "speak to someone",
    "operator",
    "担当者",
    "オペレーター",
    "人間",
];
/// Button payloads that ask for a person (Messenger/Instagram postbacks, LINE postback data).
const HANDOFF_PAYLOADS: &[&str] = &["handoff", "human", "action=handoff"];

/// The tenant's usage this month, as far as its plan limits need it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MonthUsage {
    pub replies: u64,
    pub tokens: u64,
}

/// Everything the decision depends on.
#[derive(Debug, Clone, Copy)]
pub struct ReplyFacts<'a> {
    pub tenant: &'a Tenant,
    /// `None`: the channel item is gone.
    pub channel: Option<&'a Channel>,
    pub conversation: &'a Conversation,
    /// The message the job is about.
    pub inbound: &'a Message,
    /// The conversation's recent messages, oldest first (the inbound batch and what came after it).
    pub history: &'a [Message],
    /// Read only when the tenant has a limit; zero otherwise.
    pub usage: MonthUsage,
    pub now: OffsetDateTime,
}

/// Why nothing is said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// The tenant's AI mode is off, or the tenant is not active.
    AiOff,
    /// An earlier delivery of the job recorded what was done.
    AlreadyHandled,
    /// A newer customer message of the conversation is answered instead.
    Superseded,
    /// A human has the conversation.
    HumanMode,
    /// The platform's reply window has closed.
    WindowClosed,
    /// The channel is disconnected or its token was rejected.
    ChannelUnavailable,
    /// Only a greeting or thanks, and the tenant set no acknowledgement for it.
    NothingToAnswer,
}

impl SkipReason {
    /// What is recorded on the message (`None`: it is recorded already).
    pub fn outcome(self) -> Option<ReplyOutcome> {
        match self {
            Self::AiOff => Some(ReplyOutcome::AiOff),
            Self::AlreadyHandled => None,
            Self::Superseded => Some(ReplyOutcome::Superseded),
            Self::HumanMode => Some(ReplyOutcome::HumanMode),
            Self::WindowClosed => Some(ReplyOutcome::WindowClosed),
            Self::ChannelUnavailable => Some(ReplyOutcome::ChannelUnavailable),
            Self::NothingToAnswer => Some(ReplyOutcome::NothingToAnswer),
        }
    }
}

/// What to do about the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Skip(SkipReason),
    /// Give the conversation to a person without asking a provider.
    HandOff(HandoffReason),
    /// Ask the providers and store their answer as a draft for a person to approve.
    Draft,
    /// Ask the providers and send their answer.
    Send,
}

/// The whole decision. The service applies the same three stages one by one, reading only what the
/// next stage needs: a message skipped for the tenant's sake costs no read of its conversation, and
/// one skipped for the conversation's sake no read of the channel or the month's usage.
pub fn decide(facts: &ReplyFacts<'_>) -> Decision {
    tenant_stage(facts.tenant)
        .map(Decision::Skip)
        .or_else(|| {
            conversation_stage(
                facts.tenant,
                facts.conversation,
                facts.inbound,
                facts.history,
                facts.now,
            )
        })
        .unwrap_or_else(|| send_stage(facts.tenant, facts.usage, facts.channel))
}

/// Stage 1, the tenant: its contract and its AI mode.
pub fn tenant_stage(tenant: &Tenant) -> Option<SkipReason> {
    (tenant.status != TenantStatus::Active || tenant.ai_mode == AiMode::Off)
        .then_some(SkipReason::AiOff)
}

/// Stage 2, the conversation: an earlier delivery, a newer message, a person in charge or asked for,
/// a greeting or thanks the tenant does not acknowledge, the platform's reply window.
pub fn conversation_stage(
    tenant: &Tenant,
    conversation: &Conversation,
    inbound: &Message,
    history: &[Message],
    now: OffsetDateTime,
) -> Option<Decision> {
    if inbound.reply_outcome.is_some() {
        return Some(Decision::Skip(SkipReason::AlreadyHandled));
    }
    let newest_from_customer = history
        .iter()
        .rev()
        .find(|m| m.author == Author::Customer && m.direction == Direction::Inbound);
    if newest_from_customer.is_some_and(|m| m.message_id != inbound.message_id) {
        return Some(Decision::Skip(SkipReason::Superseded));
    }
    if conversation.mode == ConversationMode::Human {
        return Some(Decision::Skip(SkipReason::HumanMode));
    }
    if asks_for_a_person(inbound) {
        return Some(Decision::HandOff(HandoffReason::CustomerAskedForAPerson));
    }
    if social(inbound).is_some() && acknowledgement(tenant, inbound).is_none() {
        // Not a question: answering it from the knowledge base or handing it to a person would both
        // be wrong.
        return Some(Decision::Skip(SkipReason::NothingToAnswer));
    }
    if window_closes_at(conversation.platform, conversation).is_some_and(|closes| now >= closes) {
        return Some(Decision::Skip(SkipReason::WindowClosed));
    }
    None
}

/// Stage 3, sending: the tenant's monthly plan limits (`usage` is read only when
/// [`needs_usage`]), a channel that can still send, then the tenant's mode.
pub fn send_stage(tenant: &Tenant, usage: MonthUsage, channel: Option<&Channel>) -> Decision {
    if tenant
        .monthly_message_limit
        .is_some_and(|limit| usage.replies >= limit)
    {
        return Decision::HandOff(HandoffReason::MonthlyMessageLimitReached);
    }
    if tenant
        .monthly_token_limit
        .is_some_and(|limit| usage.tokens >= limit)
    {
        return Decision::HandOff(HandoffReason::MonthlyTokenLimitReached);
    }
    if !channel.is_some_and(|c| c.status == ChannelStatus::Connected) {
        return Decision::Skip(SkipReason::ChannelUnavailable);
    }
    match tenant.ai_mode {
        AiMode::Draft => Decision::Draft,
        AiMode::Auto | AiMode::Off => Decision::Send,
    }
}

/// Whether the tenant's plan has a limit, so its month's usage must be read before deciding.
pub fn needs_usage(tenant: &Tenant) -> bool {
    tenant.monthly_message_limit.is_some() || tenant.monthly_token_limit.is_some()
}

/// A greeting or thanks alone, by its text.
fn social(message: &Message) -> Option<Social> {
    message
        .text
        .as_ref()
        .and_then(|text| social::strip(text.expose()).social)
}

/// The tenant's acknowledgement of a message that is only a greeting or thanks: sent instead of
/// asking a provider.
pub fn acknowledgement<'a>(tenant: &'a Tenant, inbound: &Message) -> Option<&'a str> {
    social(inbound).and_then(|social| tenant.acknowledgement(social))
}

/// Whether the customer asked for a person, by a handoff button or in words.
fn asks_for_a_person(message: &Message) -> bool {
    let payload = message
        .payload
        .as_deref()
        .unwrap_or_default()
        .to_lowercase();
    if HANDOFF_PAYLOADS.contains(&payload.as_str()) {
        return true;
    }
    let text = message
        .text
        .as_ref()
        .map_or(String::new(), |t| t.expose().to_lowercase());
    PERSON_REQUESTS.iter().any(|phrase| text.contains(phrase))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ChannelId, ConversationId, MessageStatus, Platform, TenantId};
    use crate::secret::MessageText;
    use time::Duration;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-02 9:00 UTC);

    fn tenant(mode: AiMode) -> Tenant {
        let mut tenant = Tenant::new(TenantId::new("t"), "Shop".into(), NOW);
        tenant.ai_mode = mode;
        tenant
    }

    fn channel(status: ChannelStatus) -> Channel {
        Channel {
            tenant_id: TenantId::new("t"),
            channel_id: ChannelId::new("ch"),
            platform: Platform::Messenger,
            account_id: "1".into(),
            status,
            connected_by: None,
            connected_at: NOW,
            disconnected_at: None,
            credentials: None,
            retain_until: None,
            name: None,
            instagram_login: false,
            parent_account_id: None,
            line_channel_id: None,
            token_issued_at: None,
            token_expires_at: None,
            reauth_reason: None,
            health_checked_at: None,
        }
    }

    fn conversation(
        platform: Platform,
        mode: ConversationMode,
        last_inbound: Duration,
    ) -> Conversation {
        Conversation {
            tenant_id: TenantId::new("t"),
            conversation_id: ConversationId::new("c"),
            channel_id: ChannelId::new("ch"),
            platform,
            user_id: "u".into(),
            mode,
            handoff_reason: None,
            last_inbound_at: Some(NOW - last_inbound),
            last_outbound_at: None,
            awaiting_reply_since: None,
            created_at: NOW - Duration::days(10),
            retain_until: NOW + Duration::days(365),
        }
    }

    fn customer(id: &str, text: &str, payload: Option<&str>) -> Message {
        Message {
            tenant_id: TenantId::new("t"),
            conversation_id: ConversationId::new("c"),
            channel_id: ChannelId::new("ch"),
            message_id: id.into(),
            direction: Direction::Inbound,
            author: Author::Customer,
            text: Some(MessageText::new(text)),
            attachments: Vec::new(),
            payload: payload.map(str::to_owned),
            status: MessageStatus::Received,
            error_code: None,
            sent_at: NOW - Duration::minutes(1),
            retain_until: NOW + Duration::days(365),
            reply_outcome: None,
        }
    }

    /// One row of the table: what differs from an ordinary answerable message.
    struct Case {
        name: &'static str,
        tenant: Tenant,
        channel: Option<Channel>,
        conversation: Conversation,
        inbound: Message,
        /// Messages after the inbound one.
        later: Vec<Message>,
        usage: MonthUsage,
        expected: Decision,
    }

    fn base(name: &'static str, expected: Decision) -> Case {
        Case {
            name,
            tenant: tenant(AiMode::Auto),
            channel: Some(channel(ChannelStatus::Connected)),
            conversation: conversation(
                Platform::Messenger,
                ConversationMode::Bot,
                Duration::minutes(1),
            ),
            inbound: customer("m1", "What are your opening hours?", None),
            later: Vec::new(),
            usage: MonthUsage::default(),
            expected,
        }
    }

    fn cases() -> Vec<Case> {
        let limited = |messages: Option<u64>, tokens: Option<u64>| {
            let mut t = tenant(AiMode::Auto);
            t.monthly_message_limit = messages;
            t.monthly_token_limit = tokens;
            t
        };
        let mut acknowledging = tenant(AiMode::Auto);
        acknowledging.thanks_reply = Some("You're welcome!".into());
        let mut terminated = tenant(AiMode::Auto);
        terminated.status = TenantStatus::Terminated;
        let mut handled = customer("m1", "hi", None);
        handled.reply_outcome = Some(ReplyOutcome::Replied);
        let mut our_reply = customer("m2", "We open at 8.", None);
        our_reply.direction = Direction::Outbound;
        our_reply.author = Author::Ai;
        vec![
            base("an ordinary question in auto mode is sent", Decision::Send),
            Case {
                tenant: tenant(AiMode::Draft),
                ..base("in draft mode it is drafted", Decision::Draft)
            },
            Case {
                tenant: tenant(AiMode::Off),
                ..base("AI off says nothing", Decision::Skip(SkipReason::AiOff))
            },
            Case {
                tenant: terminated,
                ..base(
                    "a terminated tenant says nothing",
                    Decision::Skip(SkipReason::AiOff),
                )
            },
            Case {
                inbound: handled,
                ..base(
                    "an earlier delivery handled it",
                    Decision::Skip(SkipReason::AlreadyHandled),
                )
            },
            Case {
                later: vec![customer("m2", "also, parking?", None)],
                ..base(
                    "a newer customer message supersedes it",
                    Decision::Skip(SkipReason::Superseded),
                )
            },
            Case {
                later: vec![our_reply],
                ..base("our own later reply does not supersede it", Decision::Send)
            },
            Case {
                conversation: conversation(
                    Platform::Messenger,
                    ConversationMode::Human,
                    Duration::minutes(1),
                ),
                ..base(
                    "a human has the conversation",
                    Decision::Skip(SkipReason::HumanMode),
                )
            },
            Case {
                inbound: customer("m1", "Can I talk to a HUMAN please", None),
                ..base(
                    "asking for a person in words",
                    Decision::HandOff(HandoffReason::CustomerAskedForAPerson),
                )
            },
            Case {
                inbound: customer("m1", "担当者と話したい", None),
                ..base(
                    "asking for a person in Japanese",
                    Decision::HandOff(HandoffReason::CustomerAskedForAPerson),
                )
            },
            Case {
                inbound: customer("m1", "thanks!! 👍", None),
                ..base(
                    "thanks alone: nothing sent, nobody called",
                    Decision::Skip(SkipReason::NothingToAnswer),
                )
            },
            Case {
                inbound: customer("m1", "สวัสดีค่ะ", None),
                ..base(
                    "a greeting alone: nothing sent, nobody called",
                    Decision::Skip(SkipReason::NothingToAnswer),
                )
            },
            Case {
                tenant: acknowledging.clone(),
                inbound: customer("m1", "thank you", None),
                ..base("thanks the tenant acknowledges is sent", Decision::Send)
            },
            Case {
                inbound: customer("m1", "hi, do you deliver? thanks", None),
                ..base("a question with a greeting is a question", Decision::Send)
            },
            Case {
                inbound: customer("m1", "", Some("action=handoff")),
                ..base(
                    "asking for a person with a button",
                    Decision::HandOff(HandoffReason::CustomerAskedForAPerson),
                )
            },
            Case {
                inbound: customer("m1", "Do you ship to Osaka?", Some("SHIPPING_Q")),
                ..base("another button is a question", Decision::Send)
            },
            Case {
                conversation: conversation(
                    Platform::Whatsapp,
                    ConversationMode::Bot,
                    Duration::hours(25),
                ),
                ..base(
                    "the 24-hour window has closed",
                    Decision::Skip(SkipReason::WindowClosed),
                )
            },
            Case {
                conversation: conversation(
                    Platform::Line,
                    ConversationMode::Bot,
                    Duration::days(30),
                ),
                ..base("LINE has no window", Decision::Send)
            },
            Case {
                tenant: limited(Some(100), None),
                usage: MonthUsage {
                    replies: 100,
                    tokens: 0,
                },
                ..base(
                    "the monthly message limit is reached",
                    Decision::HandOff(HandoffReason::MonthlyMessageLimitReached),
                )
            },
            Case {
                tenant: limited(Some(100), Some(5_000)),
                usage: MonthUsage {
                    replies: 99,
                    tokens: 5_000,
                },
                ..base(
                    "the monthly token limit is reached",
                    Decision::HandOff(HandoffReason::MonthlyTokenLimitReached),
                )
            },
            Case {
                tenant: limited(Some(100), Some(5_000)),
                usage: MonthUsage {
                    replies: 99,
                    tokens: 4_999,
                },
                ..base("under both limits", Decision::Send)
            },
            Case {
                channel: Some(channel(ChannelStatus::NeedsReauth)),
                ..base(
                    "a channel whose token was rejected",
                    Decision::Skip(SkipReason::ChannelUnavailable),
                )
            },
            Case {
                channel: None,
                ..base(
                    "a channel that is gone",
                    Decision::Skip(SkipReason::ChannelUnavailable),
                )
            },
        ]
    }

    #[test]
    fn the_reply_policy_table() {
        for case in cases() {
            let mut history = vec![case.inbound.clone()];
            history.extend(case.later.iter().cloned());
            let decision = decide(&ReplyFacts {
                tenant: &case.tenant,
                channel: case.channel.as_ref(),
                conversation: &case.conversation,
                inbound: &case.inbound,
                history: &history,
                usage: case.usage,
                now: NOW,
            });
            assert_eq!(decision, case.expected, "{}", case.name);
        }
    }

    #[test]
    fn only_an_already_handled_message_records_nothing() {
        for reason in [
            SkipReason::AiOff,
            SkipReason::Superseded,
            SkipReason::HumanMode,
            SkipReason::WindowClosed,
            SkipReason::ChannelUnavailable,
            SkipReason::NothingToAnswer,
        ] {
            assert!(reason.outcome().is_some(), "{reason:?}");
        }
        assert_eq!(SkipReason::AlreadyHandled.outcome(), None);
    }

    #[test]
    fn usage_is_read_only_for_a_tenant_with_a_limit() {
        let mut t = tenant(AiMode::Auto);
        assert!(!needs_usage(&t));
        t.monthly_token_limit = Some(1);
        assert!(needs_usage(&t));
    }

    #[test]
    fn the_acknowledgement_matches_what_the_customer_said() {
        let mut tenant = tenant(AiMode::Auto);
        tenant.greeting_reply = Some("Hello! How can we help?".into());
        tenant.thanks_reply = Some("You're welcome!".into());
        let message = |text: &str| customer("m", text, None);
        assert_eq!(
            acknowledgement(&tenant, &message("こんにちは")),
            Some("Hello! How can we help?")
        );
        assert_eq!(
            acknowledgement(&tenant, &message("спасибо большое")),
            Some("You're welcome!")
        );
        assert_eq!(acknowledgement(&tenant, &message("do you deliver?")), None);
    }
}
