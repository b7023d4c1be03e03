//! Tenants: who uses the inbox, their AI mode and their retention policy.

use super::*;
use crate::llm::offline::Social;

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

    /// Content received at `received_at` is deleted at this instant.
    pub fn content_deadline(&self, received_at: OffsetDateTime) -> OffsetDateTime {
        received_at.saturating_add(self.content())
    }

    /// The one rule for a disconnected channel: everything ingested through it is deleted by this
    /// deadline, which is also the channel item's TTL. It must come from the tenant's own policy on every
    /// path (an operator's disconnect, Meta's deauthorize, an erasure, a termination): a shorter default
    /// would let the channel item expire before the sweep deleted what it leads to.
    pub fn disconnected_channel_deadline(&self, disconnected_at: OffsetDateTime) -> OffsetDateTime {
        disconnected_at.saturating_add(Duration::days(self.disconnected_channel_days.into()))
    }

    /// A terminated tenant's account data (tenant, channels, knowledge, usage) goes at this instant.
    pub fn terminated_account_deadline(&self, terminated_at: OffsetDateTime) -> OffsetDateTime {
        terminated_at.saturating_add(Duration::days(self.terminated_account_days.into()))
    }

    /// A terminated tenant's content goes at this instant.
    pub fn terminated_content_deadline(&self, terminated_at: OffsetDateTime) -> OffsetDateTime {
        terminated_at.saturating_add(Duration::days(self.terminated_content_days.into()))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tenant {
    pub tenant_id: TenantId,
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
    /// Sent when a customer only says hello; unset: nothing is sent and nobody is called.
    #[serde(default)]
    pub greeting_reply: Option<String>,
    /// Sent when a customer only thanks or acknowledges; unset: nothing is sent and nobody is called.
    #[serde(default)]
    pub thanks_reply: Option<String>,
    #[serde(with = "rfc3339")]
    pub created_at: OffsetDateTime,
}

impl Tenant {
    /// A new active tenant with the default policy.
    pub fn new(tenant_id: TenantId, name: String, now: OffsetDateTime) -> Self {
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
            greeting_reply: None,
            thanks_reply: None,
            created_at: now,
        }
    }
}

impl Tenant {
    /// What the tenant answers to a greeting or thanks alone, if anything.
    pub fn acknowledgement(&self, social: Social) -> Option<&str> {
        match social {
            Social::Greeting => self.greeting_reply.as_deref(),
            Social::Thanks => self.thanks_reply.as_deref(),
        }
        .filter(|text| !text.trim().is_empty())
    }
}
