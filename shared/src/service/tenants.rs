//! A tenant's life: creating it, changing its settings, ending its contract.

use std::ops::RangeInclusive;

use serde::Deserialize;
use time::{Duration, OffsetDateTime};

use crate::clock::OPERATOR_SKEW;
use crate::model::{AiMode, ProviderKind, Tenant, TenantId, TenantStatus};
use crate::store::Store;

use super::channels::{self, DisconnectReason};
use super::{Actor, Result, ServiceError, audit};

/// The retention periods a tenant may choose, in days (ten years at most).
pub const RETENTION_DAYS: RangeInclusive<u32> = 1..=3650;
/// The longest tenant name accepted.
const MAX_NAME_CHARS: usize = 200;

/// A change to a tenant's settings; a `None` field is left as it is. The operator CLI and the console
/// API both change settings through [`update_settings`], so both validate and audit alike.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsChange {
    pub ai_mode: Option<AiMode>,
    /// Days conversation content is kept.
    pub retention_days: Option<u32>,
    pub disconnected_channel_days: Option<u32>,
    pub terminated_content_days: Option<u32>,
    pub terminated_account_days: Option<u32>,
    pub audit_days: Option<u32>,
    pub instructions: Option<String>,
    pub provider_order: Option<Vec<ProviderKind>>,
    pub mask_personal_data: Option<bool>,
    pub monthly_message_limit: Option<u64>,
    pub monthly_token_limit: Option<u64>,
    /// What a greeting alone is answered with; empty removes it (then a greeting gets no reply).
    pub greeting_reply: Option<String>,
    /// What thanks alone are answered with; empty removes it.
    pub thanks_reply: Option<String>,
}

impl SettingsChange {
    /// The names a change takes (its JSON fields), as an edge names an invalid one.
    pub const FIELDS: &'static [&'static str] = &[
        "ai_mode",
        "retention_days",
        "disconnected_channel_days",
        "terminated_content_days",
        "terminated_account_days",
        "audit_days",
        "instructions",
        "provider_order",
        "mask_personal_data",
        "monthly_message_limit",
        "monthly_token_limit",
        "greeting_reply",
        "thanks_reply",
    ];

    /// Applies the change to `tenant` and names the settings it set, or says which value is invalid
    /// (nothing is applied then).
    fn apply(self, tenant: &mut Tenant) -> Result<Vec<&'static str>> {
        let mut changed = Vec::new();
        let retention = &mut tenant.retention;
        let periods = [
            (
                self.retention_days,
                &mut retention.content_days,
                "retention_days",
            ),
            (
                self.disconnected_channel_days,
                &mut retention.disconnected_channel_days,
                "disconnected_channel_days",
            ),
            (
                self.terminated_content_days,
                &mut retention.terminated_content_days,
                "terminated_content_days",
            ),
            (
                self.terminated_account_days,
                &mut retention.terminated_account_days,
                "terminated_account_days",
            ),
            (self.audit_days, &mut retention.audit_days, "audit_days"),
        ];
        for (days, _, name) in &periods {
            if let Some(days) = days.filter(|d| !RETENTION_DAYS.contains(d)) {
                return Err(ServiceError::Invalid(format!(
                    "{name} {days} is not a number of days from {} to {}",
                    RETENTION_DAYS.start(),
                    RETENTION_DAYS.end()
                )));
            }
        }
        for (days, field, name) in periods {
            if let Some(days) = days {
                *field = days;
                changed.push(name);
            }
        }
        if let Some(mode) = self.ai_mode {
            tenant.ai_mode = mode;
            changed.push("ai_mode");
        }
        if let Some(instructions) = self.instructions {
            tenant.instructions = instructions;
            changed.push("instructions");
        }
        if let Some(order) = self.provider_order {
            tenant.provider_order = order;
            changed.push("provider_order");
        }
        if let Some(mask) = self.mask_personal_data {
            tenant.mask_personal_data = mask;
            changed.push("mask_personal_data");
        }
        if let Some(limit) = self.monthly_message_limit {
            tenant.monthly_message_limit = Some(limit);
            changed.push("monthly_message_limit");
        }
        if let Some(limit) = self.monthly_token_limit {
            tenant.monthly_token_limit = Some(limit);
            changed.push("monthly_token_limit");
        }
        for (text, field, name) in [
            (
                self.greeting_reply,
                &mut tenant.greeting_reply,
                "greeting_reply",
            ),
            (self.thanks_reply, &mut tenant.thanks_reply, "thanks_reply"),
        ] {
            if let Some(text) = text {
                *field = Some(text.trim().to_owned()).filter(|t| !t.is_empty());
                changed.push(name);
            }
        }
        Ok(changed)
    }
}

/// Creates an active tenant named `name` with the default policy changed by `settings`; audited.
pub async fn create(
    store: &Store,
    actor: Actor,
    name: &str,
    settings: SettingsChange,
) -> Result<Tenant> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(ServiceError::Invalid(format!(
            "a tenant name has 1 to {MAX_NAME_CHARS} characters"
        )));
    }
    let mut tenant = Tenant::new(TenantId::generate(), name.to_owned(), store.now());
    settings.apply(&mut tenant)?;
    store.create_tenant(&tenant).await?;
    audit(
        store,
        actor,
        &tenant,
        "tenant.create",
        tenant.tenant_id.as_str(),
    )
    .await?;
    Ok(tenant)
}

/// Changes a tenant's settings; audited with the names of the settings changed (never their values:
/// instructions are the tenant's text).
pub async fn update_settings(
    store: &Store,
    actor: &str,
    tenant_id: &TenantId,
    settings: SettingsChange,
) -> Result<Tenant> {
    let mut tenant = store.require_tenant(tenant_id).await?;
    let changed = settings.apply(&mut tenant)?;
    if changed.is_empty() {
        return Err(ServiceError::Invalid("nothing to set".into()));
    }
    store.save_tenant(&tenant).await?;
    audit(
        store,
        actor,
        &tenant,
        &format!("tenant.set:{}", changed.join(",")),
        tenant.tenant_id.as_str(),
    )
    .await?;
    Ok(tenant)
}

/// How far ahead a termination may be dated.
pub const TERMINATION_HORIZON: Duration = Duration::days(366);

/// What a termination did and when the sweep deletes the rest.
#[derive(Debug, Clone, PartialEq)]
pub struct Terminated {
    pub tenant: Tenant,
    pub channels_disconnected: u64,
    pub account_data_deleted_after: OffsetDateTime,
    pub content_deleted_after: OffsetDateTime,
}

/// Terminates a tenant as of `at` (when the contract ended; `None`: now): the tenant is marked terminated,
/// then its channels are disconnected (tokens destroyed, routes removed, each with the tenant's deadline);
/// the sweep deletes its account data after `terminated_account_days` and its content after
/// `terminated_content_days`, counted from `at`.
///
/// Audited before it acts, and safe to re-run after a crash at any step: a re-run on a tenant already
/// terminated finishes that termination (its channels still connected are disconnected, its date is
/// kept) and is audited as `tenant.terminate:resumed`. Marking the tenant first means no channel can be
/// connected once the disconnects start; one connected in a race with the mark is caught by the re-run
/// (and by the sweep at the account-data deadline).
pub async fn terminate(
    store: &Store,
    actor: Actor,
    tenant_id: &TenantId,
    at: Option<OffsetDateTime>,
) -> Result<Terminated> {
    let mut tenant = store.require_tenant(tenant_id).await?;
    let (at, action) = match (tenant.status, tenant.terminated_at) {
        (TenantStatus::Terminated, Some(terminated_at)) => {
            if at.is_some_and(|at| at != terminated_at) {
                return Err(ServiceError::Invalid(format!(
                    "tenant {tenant_id} is already terminated as of {terminated_at}: a re-run \
                     finishes that termination and cannot date it again (leave out the date)"
                )));
            }
            (terminated_at, "tenant.terminate:resumed")
        }
        _ => {
            let now = store.now();
            let at = at.unwrap_or(now);
            // Not in the past beyond clock skew: a back-dated contract end would have its data deleted
            // at the next sweep.
            if at < now.saturating_sub(OPERATOR_SKEW)
                || at > now.saturating_add(TERMINATION_HORIZON)
            {
                return Err(ServiceError::Invalid(format!(
                    "a termination is dated from now (minus {OPERATOR_SKEW} of clock skew) to \
                     {TERMINATION_HORIZON} ahead; {at} is outside"
                )));
            }
            (at, "tenant.terminate")
        }
    };
    // Audited before acting: a crash at any later step leaves the attempt on record.
    audit(store, actor, &tenant, action, tenant.tenant_id.as_str()).await?;
    if tenant.status != TenantStatus::Terminated {
        tenant.status = TenantStatus::Terminated;
        tenant.terminated_at = Some(at);
        store.save_tenant(&tenant).await?;
    }
    let channels = store.channels_of_tenant(&tenant.tenant_id).await?;
    let channels_disconnected = channels::disconnect_all(
        store,
        actor,
        &channels,
        DisconnectReason::TenantTerminated,
        Some(&tenant),
    )
    .await?;
    let policy = tenant.retention;
    Ok(Terminated {
        account_data_deleted_after: policy.terminated_account_deadline(at),
        content_deleted_after: policy.terminated_content_deadline(at),
        channels_disconnected,
        tenant,
    })
}
