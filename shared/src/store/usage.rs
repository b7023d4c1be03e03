//! A tenant's knowledge entries (what ai-reply may answer from) and its monthly usage per channel.

use super::error::{Result, StoreError, dynamo_error};
use super::expr::Expr;
use super::records::{self, Record};
use super::table::{Store, Write, epoch_seconds, number, string};
use crate::ids::{ChannelId, TenantId};
use crate::keys;
use crate::model::{KnowledgeEntry, Usage, UsageDelta};

impl Store {
    pub async fn add_knowledge(&self, entry: &KnowledgeEntry) -> Result<()> {
        self.put(entry, Write::Create).await
    }

    pub async fn get_knowledge(
        &self,
        tenant_id: &TenantId,
        entry_id: &str,
    ) -> Result<Option<KnowledgeEntry>> {
        self.get(&keys::knowledge(tenant_id, entry_id)).await
    }

    /// Overwrites an entry that exists (`NotFound` otherwise).
    pub async fn replace_knowledge(&self, entry: &KnowledgeEntry) -> Result<()> {
        self.put(entry, Write::Replace).await
    }

    pub async fn delete_knowledge(&self, tenant_id: &TenantId, entry_id: &str) -> Result<()> {
        self.delete(&keys::knowledge(tenant_id, entry_id)).await
    }

    pub async fn knowledge_of_tenant(&self, tenant_id: &TenantId) -> Result<Vec<KnowledgeEntry>> {
        self.query_all(&keys::knowledge_of_tenant(tenant_id)).await
    }

    /// Adds to a channel's usage in `month` atomically (concurrent replies never lose a count).
    pub async fn add_usage(
        &self,
        tenant_id: &TenantId,
        channel_id: &ChannelId,
        month: &str,
        delta: UsageDelta,
    ) -> Result<()> {
        let expires = records::usage_expiry(month)
            .ok_or_else(|| StoreError::Rejected(format!("month {month:?} is not YYYY-MM")))?;
        let counters = [
            ("inbound_messages", delta.inbound_messages),
            ("replies", delta.replies),
            ("input_tokens", delta.input_tokens),
            ("output_tokens", delta.output_tokens),
            ("provider_calls", delta.provider_calls),
            ("anthropic_answers", delta.anthropic_answers),
            ("openai_answers", delta.openai_answers),
            ("offline_answers", delta.offline_answers),
            ("provider_latency_ms", delta.provider_latency_ms),
        ];
        let mut expr = Expr::new();
        for (name, value) in counters {
            expr.add(name, number(value));
        }
        expr.set("tenant_id", string(tenant_id))
            .set("channel_id", string(channel_id))
            .set("month", string(month))
            .set(keys::KIND, string(<Usage as Record>::KIND))
            .set_if_absent(keys::TTL, epoch_seconds(expires));
        self.update(&keys::usage(tenant_id, month, channel_id), expr)
            .send()
            .await
            .map_err(dynamo_error)?;
        Ok(())
    }

    pub async fn usage_of_month(&self, tenant_id: &TenantId, month: &str) -> Result<Vec<Usage>> {
        self.query_all(&keys::usage_of_month(tenant_id, month))
            .await
    }
}
