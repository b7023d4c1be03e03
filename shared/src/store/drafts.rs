//! Drafts: replies waiting for a person's approval.

use aws_sdk_dynamodb::types::ReturnValue;
use time::OffsetDateTime;

use super::error::{Result, conflict_as, dynamo_error};
use super::expr::Expr;
use super::table::{Store, Write, from_item, string, timestamp_value};
use crate::ids::{ConversationId, TenantId};
use crate::keys;
use crate::model::{Draft, DraftStatus};
use crate::secret::MessageText;

impl Store {
    pub async fn create_draft(&self, draft: &Draft) -> Result<()> {
        self.put(draft, Write::Create).await
    }

    pub async fn get_draft(
        &self,
        tenant_id: &TenantId,
        conversation_id: &ConversationId,
        draft_id: &str,
    ) -> Result<Option<Draft>> {
        self.get(&keys::draft(tenant_id, conversation_id, draft_id))
            .await
    }

    pub async fn drafts_of_conversation(
        &self,
        tenant_id: &TenantId,
        conversation_id: &ConversationId,
    ) -> Result<Vec<Draft>> {
        self.query_all(&keys::drafts_of_conversation(tenant_id, conversation_id))
            .await
    }

    /// Pending drafts of a tenant, oldest first.
    pub async fn pending_drafts(&self, tenant_id: &TenantId) -> Result<Vec<Draft>> {
        self.query_all(&keys::pending_drafts(tenant_id)).await
    }

    /// Moves a pending draft to `status`, once: a second decision is a conflict. The draft leaves the
    /// pending index.
    pub async fn decide_draft(
        &self,
        tenant_id: &TenantId,
        conversation_id: &ConversationId,
        draft_id: &str,
        status: DraftStatus,
        at: OffsetDateTime,
    ) -> Result<Draft> {
        self.decide_draft_with_text(tenant_id, conversation_id, draft_id, status, at, None)
            .await
    }

    /// [`Store::decide_draft`], replacing the draft's text with `text` (a person's edit) in the same
    /// conditional write.
    pub async fn decide_draft_with_text(
        &self,
        tenant_id: &TenantId,
        conversation_id: &ConversationId,
        draft_id: &str,
        status: DraftStatus,
        at: OffsetDateTime,
        text: Option<&MessageText>,
    ) -> Result<Draft> {
        let mut expr = Expr::new();
        if let Some(text) = text {
            expr.set("text", string(text.expose()));
        }
        expr.set("status", string(status.as_str()))
            .set("decided_at", timestamp_value(at))
            .remove(keys::GSI1_PK)
            .remove(keys::GSI1_SK)
            .require(|e| e.eq("status", string(DraftStatus::Pending.as_str())));
        let out = self
            .update(&keys::draft(tenant_id, conversation_id, draft_id), expr)
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(dynamo_error)
            .map_err(|e| {
                conflict_as(e, || {
                    format!("draft {draft_id} is not pending (missing or already decided)")
                })
            })?;
        from_item(out.attributes.unwrap_or_default())
    }

    /// Marks an approved draft as sent.
    pub async fn mark_draft_sent(
        &self,
        tenant_id: &TenantId,
        conversation_id: &ConversationId,
        draft_id: &str,
    ) -> Result<()> {
        let mut expr = Expr::new();
        expr.set("status", string(DraftStatus::Sent.as_str()))
            .require(|e| e.eq("status", string(DraftStatus::Approved.as_str())));
        self.update(&keys::draft(tenant_id, conversation_id, draft_id), expr)
            .send()
            .await
            .map_err(dynamo_error)
            .map_err(|e| conflict_as(e, || format!("draft {draft_id} is not approved")))?;
        Ok(())
    }
}
