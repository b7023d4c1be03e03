//! Data deletion requests (and the replay records that make a signed request idempotent) and the
//! audit trail.

use std::collections::BTreeMap;

use super::error::{Result, StoreError, conflict_as, dynamo_error};
use super::expr::Expr;
use super::records::DeletionReplay;
use super::table::{Store, Write, number};
use crate::ids::TenantId;
use crate::keys;
use crate::model::{AuditEvent, DeletionRequest};

impl Store {
    pub async fn create_deletion_request(&self, request: &DeletionRequest) -> Result<()> {
        self.put(request, Write::Create).await
    }

    pub async fn get_deletion_request(
        &self,
        confirmation_code: &str,
    ) -> Result<Option<DeletionRequest>> {
        self.get(&keys::deletion_request(confirmation_code)).await
    }

    pub async fn save_deletion_request(&self, request: &DeletionRequest) -> Result<()> {
        self.put(request, Write::Replace).await
    }

    /// Records a new deletion request for one signed request, or finds the one recorded before: returns
    /// the confirmation code to answer with and whether it is new. Request and replay item are written
    /// in one transaction, so concurrent replays agree on one code.
    pub async fn record_deletion_request(
        &self,
        request: &DeletionRequest,
        replay_id: &str,
    ) -> Result<(String, bool)> {
        if let Some(replay) = self
            .get::<DeletionReplay>(&keys::deletion_replay(replay_id))
            .await?
        {
            return Ok((replay.confirmation_code, false));
        }
        let replay = DeletionReplay {
            replay_id: replay_id.to_owned(),
            confirmation_code: request.confirmation_code.clone(),
            received_at: request.received_at,
        };
        let items = vec![
            self.create_in_transaction(request)?,
            self.create_in_transaction(&replay)?,
        ];
        match self
            .transact(items, |_| {
                "this signed request was recorded concurrently".to_owned()
            })
            .await
        {
            Ok(()) => Ok((request.confirmation_code.clone(), true)),
            Err(StoreError::Conflict(_)) => {
                let replay = self
                    .get::<DeletionReplay>(&keys::deletion_replay(replay_id))
                    .await?
                    .ok_or_else(|| {
                        StoreError::Unavailable(
                            "the concurrent deletion request is not visible yet".into(),
                        )
                    })?;
                Ok((replay.confirmation_code, false))
            }
            Err(other) => Err(other),
        }
    }

    /// Adds to a deletion request's counts of deleted items (each step of a resumable erasure adds its
    /// own, so a crash loses no count already made).
    pub async fn add_deletion_counts(
        &self,
        confirmation_code: &str,
        counts: &BTreeMap<String, u64>,
    ) -> Result<()> {
        let counts: Vec<(&String, &u64)> = counts.iter().filter(|(_, n)| **n > 0).collect();
        if counts.is_empty() {
            return Ok(());
        }
        let mut expr = Expr::new();
        for (kind, n) in counts {
            expr.increment_path(&["deleted", kind], number(n));
        }
        expr.require(|e| e.exists(keys::PK));
        self.update(&keys::deletion_request(confirmation_code), expr)
            .send()
            .await
            .map_err(dynamo_error)
            .map_err(|e| conflict_as(e, || format!("deletion request {confirmation_code}")))?;
        Ok(())
    }

    /// Requests not yet completed, oldest first.
    pub async fn open_deletion_requests(&self) -> Result<Vec<DeletionRequest>> {
        self.query_all(&keys::open_deletions()).await
    }

    pub async fn record_audit(&self, event: &AuditEvent) -> Result<()> {
        self.put(event, Write::Create).await
    }

    pub async fn audit_events(&self, tenant_id: Option<&TenantId>) -> Result<Vec<AuditEvent>> {
        self.query_all(&keys::audit_events(tenant_id)).await
    }
}
