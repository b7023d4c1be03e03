//! Knowledge, usage, deletion requests and audit events.

use super::*;

/// A question and answer the offline provider answers from and the prompt includes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnowledgeEntry {
    pub tenant_id: TenantId,
    pub entry_id: String,
    pub question: String,
    pub answer: String,
    /// Other ways the business words the question ("When do you open?" beside "What are your opening
    /// hours?"): the offline answerer matches a customer's question against each as it does against
    /// `question`, so a business teaches it the words its customers use. Entries stored before this
    /// field have none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alternates: Vec<String>,
    #[serde(with = "rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Metered use of one channel in one calendar month (UTC), kept per channel so erasing a channel's data
/// erases its usage rows too; a tenant's month is the sum over its channels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub tenant_id: TenantId,
    pub channel_id: ChannelId,
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
    pub tenant_id: Option<TenantId>,
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
        tenant_id: Option<&TenantId>,
        actor: &str,
        action: &str,
        subject: Option<&str>,
        at: OffsetDateTime,
        audit_days: u32,
    ) -> Self {
        Self {
            tenant_id: tenant_id.cloned(),
            event_id: crate::ids::new_id("evt"),
            at,
            actor: actor.to_owned(),
            action: action.to_owned(),
            subject: subject.map(str::to_owned),
            counts: BTreeMap::new(),
            retain_until: at.saturating_add(Duration::days(audit_days.into())),
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
