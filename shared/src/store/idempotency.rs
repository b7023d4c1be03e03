//! The idempotency primitive (the Powertools design): a conditional put claims an operation key; the
//! claim holds a lease while the work runs; completing it stores an optional result for later duplicates;
//! a failure releases it so a retry can proceed. A worker that dies mid-way leaves an in-progress record
//! whose lease runs out, after which the next delivery takes over.
//!
//! Webhook dedup claims `("webhook", platform id)`; the reply sender claims `("send", inbound id)`.

use serde::{Deserialize, Serialize};
use time::serde::rfc3339;
use time::{Duration, OffsetDateTime};

use super::error::{Result, StoreError, condition_held};
use super::expr::Expr;
use super::records::Record;
use super::table::{Store, Write, number, string};
use crate::keys::{self, Key};
use crate::model::TenantId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdempotencyStatus {
    InProgress,
    Completed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    pub tenant_id: TenantId,
    pub scope: String,
    pub idempotency_key: String,
    pub status: IdempotencyStatus,
    /// Epoch milliseconds until which an in-progress claim is held.
    pub lease_until_ms: i64,
    /// What the completed operation produced (e.g. the platform message id of a send), for duplicates.
    #[serde(default)]
    pub result: Option<String>,
    #[serde(with = "rfc3339")]
    pub keep_until: OffsetDateTime,
}

impl Record for IdempotencyRecord {
    const KIND: &'static str = "idempotency";
    fn key(&self) -> Key {
        keys::idempotency(&self.tenant_id, &self.scope, &self.idempotency_key)
    }
    fn expires_at(&self) -> Option<OffsetDateTime> {
        Some(self.keep_until)
    }
}

impl IdempotencyRecord {
    /// A claimed operation done at `now`, with its result, kept `keep_for`: what [`Store::complete`]
    /// writes, or a transaction that completes the claim with the operation's own writes.
    pub fn completed(
        tenant_id: &TenantId,
        scope: &str,
        key: &str,
        result: Option<String>,
        now: OffsetDateTime,
        keep_for: Duration,
    ) -> Self {
        Self {
            tenant_id: tenant_id.to_owned(),
            scope: scope.to_owned(),
            idempotency_key: key.to_owned(),
            status: IdempotencyStatus::Completed,
            lease_until_ms: millis(now),
            result,
            keep_until: now + keep_for,
        }
    }
}

/// The outcome of [`Store::claim`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This caller owns the operation: do it, then `complete` or `release`.
    Acquired,
    /// Another worker holds a live lease: treat as a duplicate for now (retry later if you must).
    InProgress,
    /// Done before; here is its stored result.
    Completed(Option<String>),
}

impl Store {
    /// Claims `scope`/`key` for `lease`; the record is kept `keep_for` (at least as long as the platform
    /// may redeliver: 7 days for WhatsApp).
    pub async fn claim(
        &self,
        tenant_id: &TenantId,
        scope: &str,
        key: &str,
        lease: Duration,
        keep_for: Duration,
    ) -> Result<Claim> {
        let now = self.now();
        let record = IdempotencyRecord {
            tenant_id: tenant_id.to_owned(),
            scope: scope.to_owned(),
            idempotency_key: key.to_owned(),
            status: IdempotencyStatus::InProgress,
            lease_until_ms: millis(now + lease),
            result: None,
            keep_until: now + keep_for,
        };
        // Two attempts: a record released (deleted) between our failed put and our read is claimable.
        for _ in 0..2 {
            match self.put_if(&record, claimable(now)).await {
                Ok(_) => return Ok(Claim::Acquired),
                Err(StoreError::Conflict(_)) => {}
                Err(other) => return Err(other),
            }
            match self.get::<IdempotencyRecord>(&record.key()).await? {
                Some(existing) if existing.status == IdempotencyStatus::Completed => {
                    return Ok(Claim::Completed(existing.result));
                }
                Some(_) => return Ok(Claim::InProgress),
                None => continue,
            }
        }
        Ok(Claim::InProgress)
    }

    /// Marks a claimed operation done, with its result, kept `keep_for` from now.
    pub async fn complete(
        &self,
        tenant_id: &TenantId,
        scope: &str,
        key: &str,
        result: Option<String>,
        keep_for: Duration,
    ) -> Result<()> {
        let record =
            IdempotencyRecord::completed(tenant_id, scope, key, result, self.now(), keep_for);
        self.put(&record, Write::Upsert).await
    }

    /// Gives up a claim after a failure, so the next delivery can do the work.
    pub async fn release(&self, tenant_id: &TenantId, scope: &str, key: &str) -> Result<()> {
        let mut condition = Expr::new();
        condition.require(|e| e.eq("status", string("in_progress")));
        let released = self
            .delete_if(&keys::idempotency(tenant_id, scope, key), condition)
            .await;
        // A failed condition: already completed or gone, nothing to release.
        condition_held(released)?;
        Ok(())
    }
}

/// When a claim may be taken at `now`: no record, an expired one TTL has not removed yet, or an
/// in-progress one whose lease has run out.
fn claimable(now: OffsetDateTime) -> Expr {
    let mut condition = Expr::new();
    condition.require(|e| {
        let absent = e.not_exists(keys::PK);
        let expired = e.le(keys::TTL, number(now.unix_timestamp()));
        let in_progress = e.eq("status", string("in_progress"));
        let lapsed = e.lt("lease_until_ms", number(millis(now)));
        absent.or(expired).or(in_progress.and(lapsed))
    });
    condition
}

fn millis(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000_000) as i64
}
