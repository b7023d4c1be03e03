//! Domain types: what the inbox stores. Keys live in [`crate::keys`]; how each type maps to an item lives
//! in [`crate::store::records`]. Timestamps are RFC 3339 strings in items, so a person reading the table
//! sees dates; the TTL attribute beside them is the machine copy.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::serde::rfc3339;
use time::{Duration, OffsetDateTime};

use crate::secret::{MessageText, ProfileName};
use crate::vault::WrappedCredentials;

/// Implements `as_str`, `Display` and `FromStr` for a unit-variant enum from one list of names, so the
/// CLI, keys and items all spell a variant the same way (the serde names are set to match).
macro_rules! named_enum {
    ($name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownName;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownName {
                        what: stringify!($name),
                        got: s.to_owned(),
                        expected: &[$($text),+],
                    }),
                }
            }
        }
    };
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("unknown {what} {got:?}; expected one of {expected:?}")]
pub struct UnknownName {
    pub what: &'static str,
    pub got: String,
    pub expected: &'static [&'static str],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    Messenger,
    Instagram,
    Whatsapp,
    Line,
}
named_enum!(Platform { Messenger => "messenger", Instagram => "instagram", Whatsapp => "whatsapp", Line => "line" });

impl Platform {
    /// Messenger, Instagram and WhatsApp are Meta platforms: one app secret signs their webhooks, and a
    /// Meta user's data-deletion request covers them.
    pub fn is_meta(self) -> bool {
        !matches!(self, Platform::Line)
    }
}

/// What the AI does with an inbound message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AiMode {
    /// Answer and send.
    Auto,
    /// Write a draft for a human to approve.
    #[default]
    Draft,
    /// Stay silent.
    Off,
}
named_enum!(AiMode { Auto => "auto", Draft => "draft", Off => "off" });

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TenantStatus {
    Active,
    Terminated,
}
named_enum!(TenantStatus { Active => "active", Terminated => "terminated" });

/// An LLM provider. The offline provider (knowledge-base answers or handoff) always ends the chain and is
/// not listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    Anthropic,
    Openai,
}
named_enum!(ProviderKind { Anthropic => "anthropic", Openai => "openai" });

/// How long each kind of data is kept. Defaults are the promises in design.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RetentionPolicy {
    /// Conversation content (messages, drafts) is deleted this many days after it was received.
    pub content_days: u32,
    /// Everything ingested through a disconnected channel is deleted this many days after disconnect.
    pub disconnected_channel_days: u32,
    /// A terminated tenant's content is deleted this many days after termination.
    pub terminated_content_days: u32,
    /// A terminated tenant's account data (tenant, channels, knowledge, usage) goes after this many days.
    pub terminated_account_days: u32,
    /// Audit events are kept this many days.
    pub audit_days: u32,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        Self {
            content_days: 365,
            disconnected_channel_days: 30,
            terminated_content_days: 90,
            terminated_account_days: 30,
            audit_days: 365,
        }
    }
}

impl RetentionPolicy {
    pub fn content(&self) -> Duration {
        Duration::days(self.content_days.into())
    }

    /// The one rule for a disconnected channel: everything ingested through it is deleted by this
    /// deadline, which is also the channel item's TTL. It must come from the tenant's own policy on every
    /// path (an operator's disconnect, Meta's deauthorize, an erasure, a termination): a shorter default
    /// would let the channel item expire before the sweep deleted what it leads to.
    pub fn disconnected_channel_deadline(&self, disconnected_at: OffsetDateTime) -> OffsetDateTime {
        disconnected_at + Duration::days(self.disconnected_channel_days.into())
    }

    /// A terminated tenant's account data (tenant, channels, knowledge, usage) goes at this instant.
    pub fn terminated_account_deadline(&self, terminated_at: OffsetDateTime) -> OffsetDateTime {
        terminated_at + Duration::days(self.terminated_account_days.into())
    }

    /// A terminated tenant's content goes at this instant.
    pub fn terminated_content_deadline(&self, terminated_at: OffsetDateTime) -> OffsetDateTime {
        terminated_at + Duration::days(self.terminated_content_days.into())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tenant {
    pub tenant_id: String,
    pub name: String,
    pub status: TenantStatus,
    #[serde(with = "rfc3339::option", default)]
    pub terminated_at: Option<OffsetDateTime>,
    pub ai_mode: AiMode,
    #[serde(default)]
    pub retention: RetentionPolicy,
    /// Providers tried in this order before the offline provider.
    pub provider_order: Vec<ProviderKind>,
    /// The tenant's instructions to the AI (tone, what to say and not to say).
    #[serde(default)]
    pub instructions: String,
    /// Mask emails, phone numbers and card numbers before text leaves for a provider.
    #[serde(default)]
    pub mask_personal_data: bool,
    #[serde(default)]
    pub monthly_message_limit: Option<u64>,
    #[serde(default)]
    pub monthly_token_limit: Option<u64>,
    #[serde(with = "rfc3339")]
    pub created_at: OffsetDateTime,
}

impl Tenant {
    /// A new active tenant with the default policy.
    pub fn new(tenant_id: String, name: String, now: OffsetDateTime) -> Self {
        Self {
            tenant_id,
            name,
            status: TenantStatus::Active,
            terminated_at: None,
            ai_mode: AiMode::default(),
            retention: RetentionPolicy::default(),
            provider_order: vec![ProviderKind::Anthropic, ProviderKind::Openai],
            instructions: String::new(),
            mask_personal_data: false,
            monthly_message_limit: None,
            monthly_token_limit: None,
            created_at: now,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelStatus {
    Connected,
    /// The platform rejected the token (Graph error 190): sends stop until it is reconnected.
    NeedsReauth,
    Disconnected,
}
named_enum!(ChannelStatus { Connected => "connected", NeedsReauth => "needs_reauth", Disconnected => "disconnected" });

/// A connected business messaging account: a Page, an Instagram account, a WhatsApp number, a LINE
/// channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Channel {
    pub tenant_id: String,
    pub channel_id: String,
    pub platform: Platform,
    /// Page id, Instagram account id, WhatsApp `phone_number_id`, or LINE bot user id (`destination`).
    pub account_id: String,
    pub status: ChannelStatus,
    /// The Meta user who connected it (their app-scoped id), so Meta's deauthorize and data-deletion
    /// callbacks find it.
    #[serde(default)]
    pub connected_by: Option<String>,
    #[serde(with = "rfc3339")]
    pub connected_at: OffsetDateTime,
    #[serde(with = "rfc3339::option", default)]
    pub disconnected_at: Option<OffsetDateTime>,
    /// The access token (and, for LINE, the channel secret) sealed by the vault. Removed at disconnect.
    #[serde(default)]
    pub credentials: Option<WrappedCredentials>,
    /// Set at disconnect: the deadline for deleting what was ingested through this channel.
    #[serde(with = "rfc3339::option", default)]
    pub retain_until: Option<OffsetDateTime>,
}

impl Channel {
    /// A channel as it is connected: its credentials sealed by the vault under `channel_id`.
    pub fn connected(
        tenant_id: &str,
        channel_id: String,
        platform: Platform,
        account_id: String,
        credentials: WrappedCredentials,
        connected_by: Option<String>,
        at: OffsetDateTime,
    ) -> Self {
        Self {
            tenant_id: tenant_id.to_owned(),
            channel_id,
            platform,
            account_id,
            status: ChannelStatus::Connected,
            connected_by,
            connected_at: at,
            disconnected_at: None,
            credentials: Some(credentials),
            retain_until: None,
        }
    }
}

/// Which tenant and channel own a platform account: the only way from a webhook into a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub platform: Platform,
    pub account_id: String,
    pub tenant_id: String,
    pub channel_id: String,
}

/// A customer as one platform knows them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contact {
    pub tenant_id: String,
    pub platform: Platform,
    /// PSID, IGSID, WhatsApp `wa_id`, or LINE user id.
    pub user_id: String,
    #[serde(default)]
    pub profile_name: Option<ProfileName>,
    #[serde(with = "rfc3339")]
    pub first_seen_at: OffsetDateTime,
    #[serde(with = "rfc3339")]
    pub last_seen_at: OffsetDateTime,
    /// Content retention deadline of the newest message; the TTL backstop.
    #[serde(with = "rfc3339")]
    pub retain_until: OffsetDateTime,
}

/// Who is answering a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ConversationMode {
    #[default]
    Bot,
    /// A human took over: the bot stays silent until released.
    Human,
}
named_enum!(ConversationMode { Bot => "bot", Human => "human" });

/// One customer's thread on one channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    pub tenant_id: String,
    pub conversation_id: String,
    pub channel_id: String,
    pub platform: Platform,
    pub user_id: String,
    pub mode: ConversationMode,
    /// Why the conversation went to a human (no content: a short machine reason).
    #[serde(default)]
    pub handoff_reason: Option<String>,
    #[serde(with = "rfc3339::option", default)]
    pub last_inbound_at: Option<OffsetDateTime>,
    #[serde(with = "rfc3339::option", default)]
    pub last_outbound_at: Option<OffsetDateTime>,
    #[serde(with = "rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "rfc3339")]
    pub retain_until: OffsetDateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Inbound,
    Outbound,
}
named_enum!(Direction { Inbound => "inbound", Outbound => "outbound" });

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Author {
    Customer,
    Ai,
    /// A person on the tenant's side (an approved draft, or a reply typed in the platform's own inbox).
    Agent,
}
named_enum!(Author { Customer => "customer", Ai => "ai", Agent => "agent" });

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum MessageStatus {
    Received,
    Sent,
    Delivered,
    Read,
    Failed,
}
named_enum!(MessageStatus { Received => "received", Sent => "sent", Delivered => "delivered", Read => "read", Failed => "failed" });

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// image, audio, video, file, sticker, location, story_mention…, as the platform names it.
    pub kind: String,
    #[serde(default)]
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub tenant_id: String,
    pub conversation_id: String,
    pub channel_id: String,
    /// The platform's id: `mid`, `wamid`, or LINE message id.
    pub message_id: String,
    pub direction: Direction,
    pub author: Author,
    #[serde(default)]
    pub text: Option<MessageText>,
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    /// Quick-reply or postback payload (`HANDOFF`, `yes_book`…): what the customer chose, not what they wrote.
    #[serde(default)]
    pub payload: Option<String>,
    pub status: MessageStatus,
    /// Platform error code of a failed send (e.g. 131047).
    #[serde(default)]
    pub error_code: Option<i64>,
    /// The platform's timestamp: the order of a conversation.
    #[serde(with = "rfc3339")]
    pub sent_at: OffsetDateTime,
    #[serde(with = "rfc3339")]
    pub retain_until: OffsetDateTime,
    /// What ai-reply did about this inbound message (absent until it ran).
    #[serde(default)]
    pub reply_outcome: Option<ReplyOutcome>,
}

/// What ai-reply did about an inbound message: the record of why the customer got (or did not get) an
/// AI answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplyOutcome {
    /// Answered and sent.
    Replied,
    /// A draft waits for a human (tenant AI mode `draft`).
    Drafted,
    /// A newer customer message of the same conversation is answered instead (a burst gets one reply).
    Superseded,
    /// The tenant's AI mode is `off`, or the tenant is not active.
    AiOff,
    /// A human has the conversation; the bot stayed silent.
    HumanMode,
    /// Given to a human now: the customer asked for one, the AI could not answer, or a plan limit.
    HandedOff,
    /// The platform's reply window had closed; nothing was sent.
    WindowClosed,
    /// The channel is disconnected or its token was rejected.
    ChannelUnavailable,
    /// The platform refused the send for good (the code is on the message).
    SendFailed,
}
named_enum!(ReplyOutcome {
    Replied => "replied",
    Drafted => "drafted",
    Superseded => "superseded",
    AiOff => "ai_off",
    HumanMode => "human_mode",
    HandedOff => "handed_off",
    WindowClosed => "window_closed",
    ChannelUnavailable => "channel_unavailable",
    SendFailed => "send_failed",
});

/// Why a conversation went to a human: a short machine reason, stored on the conversation (no content).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HandoffReason {
    /// The customer asked for a person, in words or with a handoff button.
    CustomerAskedForAPerson,
    /// The AI answered that it cannot answer this.
    AiCouldNotAnswer,
    /// No provider answered on the job's last delivery.
    AiUnavailable,
    MonthlyMessageLimitReached,
    MonthlyTokenLimitReached,
    /// Every delivery of the job failed (a platform or AWS error that did not clear).
    ReplyFailed,
    /// Someone replied from the platform's own inbox (Meta Business Suite): the bot steps back.
    AgentRepliedInPlatformInbox,
}
named_enum!(HandoffReason {
    CustomerAskedForAPerson => "customer_asked_for_a_person",
    AiCouldNotAnswer => "ai_could_not_answer",
    AiUnavailable => "ai_unavailable",
    MonthlyMessageLimitReached => "monthly_message_limit_reached",
    MonthlyTokenLimitReached => "monthly_token_limit_reached",
    ReplyFailed => "reply_failed",
    AgentRepliedInPlatformInbox => "agent_replied_in_platform_inbox",
});

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DraftStatus {
    Pending,
    Approved,
    Rejected,
    Sent,
}
named_enum!(DraftStatus { Pending => "pending", Approved => "approved", Rejected => "rejected", Sent => "sent" });

/// An AI answer waiting for a human (tenant AI mode `draft`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Draft {
    pub tenant_id: String,
    pub conversation_id: String,
    pub channel_id: String,
    pub draft_id: String,
    /// The platform id of the customer message it answers.
    pub in_reply_to: String,
    pub text: MessageText,
    pub status: DraftStatus,
    #[serde(with = "rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "rfc3339::option", default)]
    pub decided_at: Option<OffsetDateTime>,
    #[serde(with = "rfc3339")]
    pub retain_until: OffsetDateTime,
}

/// A question and answer the offline provider answers from and the prompt includes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnowledgeEntry {
    pub tenant_id: String,
    pub entry_id: String,
    pub question: String,
    pub answer: String,
    #[serde(with = "rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Metered use of one channel in one calendar month (UTC), kept per channel so erasing a channel's data
/// erases its usage rows too; a tenant's month is the sum over its channels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Usage {
    pub tenant_id: String,
    pub channel_id: String,
    /// `YYYY-MM`.
    pub month: String,
    #[serde(default)]
    pub inbound_messages: u64,
    #[serde(default)]
    pub replies: u64,
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
    #[serde(default)]
    pub provider_calls: u64,
    /// Answers by provider.
    #[serde(default)]
    pub anthropic_answers: u64,
    #[serde(default)]
    pub openai_answers: u64,
    #[serde(default)]
    pub offline_answers: u64,
    /// Total time spent waiting for LLM providers (average = this / provider_calls).
    #[serde(default)]
    pub provider_latency_ms: u64,
}

/// Amounts to add to a [`Usage`] row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UsageDelta {
    pub inbound_messages: u64,
    pub replies: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub provider_calls: u64,
    pub anthropic_answers: u64,
    pub openai_answers: u64,
    pub offline_answers: u64,
    pub provider_latency_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeletionStatus {
    Received,
    InProgress,
    Completed,
}
named_enum!(DeletionStatus { Received => "received", InProgress => "in_progress", Completed => "completed" });

/// A Meta data-deletion request, found by its confirmation code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeletionRequest {
    pub confirmation_code: String,
    /// The Meta user whose data goes; cleared when the request completes, so the record that proves the
    /// deletion no longer identifies them.
    #[serde(default)]
    pub meta_user_id: Option<String>,
    pub status: DeletionStatus,
    #[serde(with = "rfc3339")]
    pub received_at: OffsetDateTime,
    #[serde(with = "rfc3339::option", default)]
    pub completed_at: Option<OffsetDateTime>,
    /// Items deleted, by kind.
    #[serde(default)]
    pub deleted: BTreeMap<String, u64>,
}

/// A security/audit record: who did what to which ids, with counts. Never content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// `None` for events outside any tenant (a Meta user's deletion request spans tenants).
    #[serde(default)]
    pub tenant_id: Option<String>,
    pub event_id: String,
    #[serde(with = "rfc3339")]
    pub at: OffsetDateTime,
    /// `inboxctl`, `webhook-ingest`, `retention-sweep`, `meta-deauthorize`…
    pub actor: String,
    /// `channel.connect`, `channel.disconnect`, `erasure.completed`…
    pub action: String,
    /// Ids the action touched (tenant, channel, confirmation code); never personal data.
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub counts: BTreeMap<String, u64>,
    #[serde(with = "rfc3339")]
    pub retain_until: OffsetDateTime,
}

impl AuditEvent {
    /// A new event at `at`, kept `audit_days` (the tenant's policy, or the default for system events).
    pub fn new(
        tenant_id: Option<&str>,
        actor: &str,
        action: &str,
        subject: Option<&str>,
        at: OffsetDateTime,
        audit_days: u32,
    ) -> Self {
        Self {
            tenant_id: tenant_id.map(str::to_owned),
            event_id: crate::ids::new_id("evt"),
            at,
            actor: actor.to_owned(),
            action: action.to_owned(),
            subject: subject.map(str::to_owned),
            counts: BTreeMap::new(),
            retain_until: at + Duration::days(audit_days.into()),
        }
    }

    pub fn with_count(mut self, what: &str, count: u64) -> Self {
        self.counts.insert(what.to_owned(), count);
        self
    }
}

/// The calendar month (UTC) of `at` as `YYYY-MM`.
pub fn month_of(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!("{:04}-{:02}", at.year(), u8::from(at.month()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn names_round_trip_and_unknown_names_say_what_was_expected() {
        for p in Platform::ALL {
            assert_eq!(p.as_str().parse::<Platform>().unwrap(), *p);
        }
        let err = "telegram".parse::<Platform>().unwrap_err();
        assert!(err.to_string().contains("messenger"), "{err}");
        assert_eq!(
            "needs_reauth".parse::<ChannelStatus>().unwrap(),
            ChannelStatus::NeedsReauth
        );
    }

    #[test]
    fn serde_names_match_display_names() {
        for s in ChannelStatus::ALL {
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                serde_json::json!(s.as_str())
            );
        }
        for s in DeletionStatus::ALL {
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                serde_json::json!(s.as_str())
            );
        }
    }

    #[test]
    fn month_is_utc_calendar_month() {
        assert_eq!(month_of(datetime!(2026-11-30 23:30 -05:00)), "2026-12");
        assert_eq!(month_of(datetime!(2026-01-01 00:00 UTC)), "2026-01");
    }

    #[test]
    fn default_policy_matches_the_published_promises() {
        let p = RetentionPolicy::default();
        assert_eq!((p.content_days, p.disconnected_channel_days), (365, 30));
        assert_eq!(
            (
                p.terminated_content_days,
                p.terminated_account_days,
                p.audit_days
            ),
            (90, 30, 365)
        );
    }
}
