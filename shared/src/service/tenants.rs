//! Ending a tenant's contract.

use time::{Duration, OffsetDateTime};

use crate::model::{Tenant, TenantStatus};
use crate::store::Store;

use super::channels::{self, DisconnectReason};
use super::{Actor, Result, ServiceError, audit};

/// How far in the past a termination may be dated: clock skew, not a back-dated contract end (its data
/// would be deleted at the next sweep).
pub const TERMINATION_SKEW: Duration = Duration::minutes(5);
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

/// Terminates a tenant as of `at` (when the contract ended): its channels are disconnected now (tokens
/// destroyed, routes removed, each with the tenant's deadline), then the tenant is marked terminated;
/// the sweep deletes its account data after `terminated_account_days` and its content after
/// `terminated_content_days`, counted from `at`.
pub async fn terminate(
    store: &Store,
    actor: Actor,
    tenant_id: &str,
    at: OffsetDateTime,
) -> Result<Terminated> {
    let now = store.now();
    if at < now.saturating_sub(TERMINATION_SKEW) || at > now.saturating_add(TERMINATION_HORIZON) {
        return Err(ServiceError::Invalid(format!(
            "a termination is dated from now (minus {TERMINATION_SKEW} of clock skew) to \
             {TERMINATION_HORIZON} ahead; {at} is outside"
        )));
    }
    let mut tenant = store.require_tenant(tenant_id).await?;
    if tenant.status == TenantStatus::Terminated {
        return Err(ServiceError::Invalid(format!(
            "tenant {tenant_id} is already terminated"
        )));
    }
    // Audited before acting: a crash at any later step leaves the attempt on record, and a re-run
    // finishes it (disconnected channels are skipped).
    audit(store, actor, &tenant, "tenant.terminate", &tenant.tenant_id).await?;
    let channels = store.channels_of_tenant(&tenant.tenant_id).await?;
    let channels_disconnected = channels::disconnect_all(
        store,
        actor,
        &channels,
        DisconnectReason::TenantTerminated,
        Some(&tenant),
    )
    .await?;
    tenant.status = TenantStatus::Terminated;
    tenant.terminated_at = Some(at);
    store.save_tenant(&tenant).await?;
    let policy = tenant.retention;
    Ok(Terminated {
        account_data_deleted_after: policy.terminated_account_deadline(at),
        content_deleted_after: policy.terminated_content_deadline(at),
        channels_disconnected,
        tenant,
    })
}
