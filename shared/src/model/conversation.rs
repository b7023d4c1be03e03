//! Contacts, conversations, messages and drafts: the inbox's content.

use super::*;

/// A customer as one platform knows them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contact {
    pub tenant_id: TenantId,
    pub platform: Platform,
    /// PSID, IGSID, WhatsApp `wa_id`, or LINE user id.
    pub user_id: PlatformUserId,
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
    pub tenant_id: TenantId,
    pub conversation_id: ConversationId,
    pub channel_id: ChannelId,
    pub platform: Platform,
    pub user_id: PlatformUserId,
    pub mode: ConversationMode,
    /// Why the conversation went to a human (no content: a short machine reason).
    #[serde(default)]
    pub handoff_reason: Option<String>,
    #[serde(with = "rfc3339::option", default)]
    pub last_inbound_at: Option<OffsetDateTime>,
    #[serde(with = "rfc3339::option", default)]
    pub last_outbound_at: Option<OffsetDateTime>,
    /// The oldest customer message not answered yet (none when the business has the last word): where
    /// the next reply's first-response time is measured from.
    #[serde(with = "rfc3339::option", default)]
    pub awaiting_reply_since: Option<OffsetDateTime>,
    #[serde(with = "rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "rfc3339")]
    pub retain_until: OffsetDateTime,
}

impl Conversation {
    /// When something last happened in it: the newest message either way (its place in the inbox list).
    pub fn last_activity_at(&self) -> OffsetDateTime {
        self.last_inbound_at
            .max(self.last_outbound_at)
            .unwrap_or(self.created_at)
    }
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
    pub tenant_id: TenantId,
    pub conversation_id: ConversationId,
    pub channel_id: ChannelId,
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
    /// Only a greeting or thanks, and the tenant set no acknowledgement: nothing sent, nobody called.
    NothingToAnswer,
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
    NothingToAnswer => "nothing_to_answer",
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
    pub tenant_id: TenantId,
    pub conversation_id: ConversationId,
    pub channel_id: ChannelId,
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
