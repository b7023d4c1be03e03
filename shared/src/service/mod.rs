//! The domain operations: each lives in exactly one place here, and every edge (the Lambda functions,
//! `inboxctl`, the local stack, the demo, the tests) calls it instead of repeating its steps. Edges only
//! translate input and output (HTTP, SQS records, command-line arguments) and count metrics.
//!
//! | operation | function |
//! |---|---|
//! | connect a channel (seal the token, claim the account's route, audit) | [`channels::ChannelService::connect`] |
//! | disconnect a channel (token destroyed, route removed, deadline from the tenant's policy, audit) | [`channels::disconnect`] |
//! | terminate a tenant | [`tenants::terminate`] |
//! | deauthorize a Meta user, accept a data-deletion request | [`deletion::DeletionIntake::accept`] |
//! | erase a Meta user's data, erase or export one contact | [`erasure::Eraser`] |
//! | ingest a webhook delivery's events | [`ingest::Ingestor`] |
//! | decide on a reply (pure) | [`reply::policy::decide`] |
//! | act on the decision: draft, send once, hand off | [`reply::ReplyService`] |
//! | deliver one text once; a person's reply from the console (platform windows); approve (optionally edited) or reject a draft | [`outbound::Outbox`] |
//! | add, change, remove, import knowledge entries (checked, audited) | [`knowledge`] |
//! | a tenant's analytics over a period (per platform) | [`analytics::report`] |
//! | hand a conversation to a person, or back to the bot | [`conversations::hand_off`], [`conversations::release`] |

pub mod analytics;
pub mod channels;
pub mod conversations;
pub mod deletion;
pub mod erasure;
pub mod ingest;
pub mod knowledge;
pub mod onboarding;
pub mod outbound;
pub mod reply;
pub mod tenants;

use crate::model::{AuditEvent, Tenant};
use crate::queue::QueueError;
use crate::store::{Store, StoreError};
use crate::vault::VaultError;

/// Who acts, as the audit trail names it.
pub type Actor = &'static str;

/// Why a domain operation failed, typed so an edge can answer: 4xx/refuse (`Invalid`, `NotFound`,
/// `Conflict`), retry (`is_retryable`), or fail.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The request itself is wrong (an empty id, a missing secret, a tenant that may not do this).
    #[error("{0}")]
    Invalid(String),
    /// The request clashes with what exists (an account another tenant holds).
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

impl ServiceError {
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Invalid(_) | Self::Conflict(_) => false,
            Self::Store(e) => e.is_retryable(),
            Self::Vault(e) => e.is_retryable(),
            Self::Queue(e) => matches!(e, QueueError::Unavailable { .. }),
        }
    }
}

pub type Result<T, E = ServiceError> = std::result::Result<T, E>;

/// Records one audit event of a tenant, kept as long as the tenant's policy says.
pub async fn audit(
    store: &Store,
    actor: &str,
    tenant: &Tenant,
    action: &str,
    subject: &str,
) -> Result<(), StoreError> {
    let event = AuditEvent::new(
        Some(&tenant.tenant_id),
        actor,
        action,
        Some(subject),
        store.now(),
        tenant.retention.audit_days,
    );
    store.record_audit(&event).await
}
