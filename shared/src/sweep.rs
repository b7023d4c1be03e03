//! The retention sweep of one tenant: every retention promise of the tenant's policy, enforced as of a
//! given instant.
//!
//! 1. Conversation content (messages, drafts, sent markers) older than `content_days` is deleted, found
//!    through the `gsi2` content-age index; a conversation left without messages is deleted with its
//!    contact. The conversations a page touches are recorded ([`keys::sweep_pending`]) before its content
//!    is deleted, so a run that crashes between the two leaves them for the next run.
//! 2. A disconnected channel past its deadline (set at disconnect from the tenant's
//!    `disconnected_channel_days`, the same instant as the channel item's TTL): everything ingested
//!    through it, then the channel, is deleted (channels a termination disconnected follow rule 3).
//! 3. A terminated tenant: `terminated_account_days` after termination its account data (channels,
//!    knowledge, usage, and the tenant's name and settings) is deleted, leaving a tombstone that lets the
//!    sweep find the tenant again; `terminated_content_days` after it, all its content and the tombstone.
//! 4. Audit events older than `audit_days` are deleted.
//!
//! Every delete path is a Query on a key or index the key module documents, and deletes are batched.
//! A sweep checks its time budget between batches; cut short, it reports the rule it stopped at and
//! the next job starts there. Every step is idempotent, so a repeated or concurrent sweep of one tenant
//! does no harm and reaches the same result.

use std::collections::{BTreeMap, BTreeSet};

use time::{Duration, OffsetDateTime};
use tokio::time::Instant;

use crate::clock::{ManualClock, OPERATOR_SKEW};
use crate::jobs::SweepStage;
use crate::keys::{self, Key};
use crate::model::*;
use crate::service::channels::{self, DisconnectReason};
use crate::service::erasure::{Counts, Eraser};
use crate::service::{self, Actor, ServiceError};
use crate::store::{Page, PageRequest, Result, Store};

/// Keys read per page of the content-age index.
const CONTENT_PAGE: i32 = 1_000;

/// How much work a sweep may still do.
pub trait Budget: Send {
    fn exhausted(&mut self) -> bool;
}

/// Lambda's deadline less a margin for re-enqueueing and auditing.
pub struct Deadline {
    pub until: Instant,
}

impl Budget for Deadline {
    fn exhausted(&mut self) -> bool {
        Instant::now() >= self.until
    }
}

/// An operator's run (`inboxctl sweep`): no limit.
pub struct Unlimited;

impl Budget for Unlimited {
    fn exhausted(&mut self) -> bool {
        false
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SweepOutcome {
    Finished,
    /// Cut short by the budget: the next job starts at this rule.
    Interrupted(SweepStage),
}

/// What a sweep did: its outcome and the items deleted, as `rule.kind` → count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepReport {
    pub outcome: SweepOutcome,
    pub deleted: Counts,
}

pub struct TenantSweeper {
    store: Store,
    eraser: Eraser,
    actor: &'static str,
}

struct Run<'a> {
    tenant: Tenant,
    as_of: OffsetDateTime,
    budget: &'a mut dyn Budget,
    deleted: Counts,
}

impl Run<'_> {
    fn add(&mut self, stage: SweepStage, counts: &Counts) {
        for (kind, n) in counts {
            *self
                .deleted
                .entry(format!("{}.{kind}", stage.as_str()))
                .or_default() += n;
        }
    }
}

/// Whether a stage ran to its end.
enum Stage {
    Done,
    OutOfBudget,
}

impl TenantSweeper {
    pub fn new(store: Store, actor: &'static str) -> Self {
        Self {
            eraser: Eraser::new(store.clone(), actor),
            store,
            actor,
        }
    }

    /// An operator's sweep of one tenant (`inboxctl sweep`): every rule, no time budget, as of `as_of`
    /// (default: now), expiry judged as of that instant. `as_of` may be in the past (the cutoffs are
    /// earlier: it deletes less) but not ahead of `store`'s clock beyond [`OPERATOR_SKEW`]: a sweep as of
    /// a later instant would delete content, channels and audit events the tenant's policy still
    /// promises to keep. Returns the instant used and the report.
    pub async fn sweep_by_hand(
        store: &Store,
        actor: Actor,
        tenant_id: &TenantId,
        as_of: Option<OffsetDateTime>,
    ) -> service::Result<(OffsetDateTime, SweepReport)> {
        let now = store.now();
        let as_of = as_of.unwrap_or(now);
        if as_of > now.saturating_add(OPERATOR_SKEW) {
            return Err(ServiceError::Invalid(format!(
                "a sweep is dated now or earlier ({OPERATOR_SKEW} of clock skew allowed): as of {as_of} \
                 it would delete data its tenant's policy still keeps"
            )));
        }
        store.require_tenant_stored(tenant_id).await?;
        // The store reads and writes with the sweep's clock, so what is expired is judged as of `as_of`.
        let as_of_store = Store::new(
            store.client().clone(),
            store.table_name(),
            std::sync::Arc::new(ManualClock::new(as_of)),
        );
        let report = Self::new(as_of_store, actor)
            .sweep(tenant_id, as_of, SweepStage::default(), &mut Unlimited)
            .await?;
        Ok((as_of, report))
    }

    /// Sweeps one tenant as of `as_of`, from rule `from` on. Audited before it acts
    /// (`retention.sweep_started`, so a run that crashes midway is on record; a re-run, every step being
    /// idempotent, finishes the work) and when it ends, with the counts.
    pub async fn sweep(
        &self,
        tenant_id: &TenantId,
        as_of: OffsetDateTime,
        from: SweepStage,
        budget: &mut dyn Budget,
    ) -> Result<SweepReport> {
        let Some(tenant) = self
            .store
            .get_stored::<Tenant>(&keys::tenant(tenant_id))
            .await?
        else {
            return Ok(SweepReport {
                outcome: SweepOutcome::Finished,
                deleted: Counts::new(),
            });
        };
        let started = AuditEvent::new(
            Some(tenant_id),
            self.actor,
            "retention.sweep_started",
            Some(tenant_id.as_str()),
            self.store.now(),
            tenant.retention.audit_days,
        );
        self.store.record_audit(&started).await?;
        let mut run = Run {
            tenant,
            as_of,
            budget,
            deleted: Counts::new(),
        };
        let mut outcome = SweepOutcome::Finished;
        for stage in SweepStage::ALL.into_iter().filter(|s| *s >= from) {
            let finished = match stage {
                SweepStage::ExpiredContent => self.expired_content(&mut run).await?,
                SweepStage::DisconnectedChannels => self.disconnected_channels(&mut run).await?,
                SweepStage::Termination => self.termination(&mut run).await?,
                SweepStage::ExpiredAudit => self.expired_audit(&mut run).await?,
            };
            if let Stage::OutOfBudget = finished {
                outcome = SweepOutcome::Interrupted(stage);
                break;
            }
        }
        let mut event = AuditEvent::new(
            Some(tenant_id),
            self.actor,
            match outcome {
                SweepOutcome::Finished => "retention.sweep",
                SweepOutcome::Interrupted(_) => "retention.sweep_partial",
            },
            Some(tenant_id.as_str()),
            self.store.now(),
            run.tenant.retention.audit_days,
        );
        event.counts = run.deleted.clone();
        self.store.record_audit(&event).await?;
        Ok(SweepReport {
            outcome,
            deleted: run.deleted,
        })
    }

    /// Rule 1: content older than the retention period, page by page of the age index; after each page,
    /// the conversations it emptied.
    async fn expired_content(&self, run: &mut Run<'_>) -> Result<Stage> {
        let tenant_id = run.tenant.tenant_id.clone();
        let cutoff = run.as_of.saturating_sub(run.tenant.retention.content());
        let query = keys::content_older_than(&tenant_id, cutoff);
        self.delete_content_pages(run, &query, SweepStage::ExpiredContent)
            .await
    }

    async fn delete_content_pages(
        &self,
        run: &mut Run<'_>,
        query: &keys::KeyQuery,
        stage: SweepStage,
    ) -> Result<Stage> {
        let tenant_id = run.tenant.tenant_id.clone();
        let channels: Vec<Channel> = self
            .store
            .query_all_stored(&keys::channels_of_tenant(&tenant_id))
            .await?;
        let mut page = PageRequest {
            limit: Some(CONTENT_PAGE),
            ..PageRequest::default()
        };
        // Conversations a run that crashed midway recorded and did not finish: the content index no
        // longer leads to them.
        let mut touched = self.store.sweep_pending(&tenant_id).await?;
        let finished = loop {
            if run.budget.exhausted() {
                break Stage::OutOfBudget;
            }
            let Page { items, next } = self.store.query_keys(query, page.clone()).await?;
            let mut counts = Counts::new();
            let mut newly_touched = BTreeSet::new();
            for key in &items {
                let kind = if keys::message_id_of(key).is_some() {
                    "messages"
                } else if keys::draft_id_of(key).is_some() {
                    "drafts"
                } else {
                    "sent_markers"
                };
                *counts.entry(kind.to_owned()).or_default() += 1;
                if let Some(conversation_id) = keys::conversation_id_of_partition(&key.pk)
                    && !touched.contains(&conversation_id)
                {
                    newly_touched.insert(conversation_id);
                }
            }
            // Recorded before the delete, so a crash after it still leads the next run to them.
            self.store
                .add_sweep_pending(&tenant_id, &newly_touched)
                .await?;
            touched.extend(newly_touched);
            self.store.delete_many(&items).await?;
            run.add(stage, &counts);
            match next {
                Some(cursor) => page.after = Some(cursor),
                None => break Stage::Done,
            }
        };
        // Once per conversation, not per page; also when cut short (the margin kept from the deadline
        // covers it), since the resumed job will not see the conversations this one emptied.
        let emptied = self
            .delete_emptied(&tenant_id, &channels, touched.clone())
            .await?;
        self.store
            .remove_sweep_pending(&tenant_id, &touched)
            .await?;
        run.add(stage, &emptied);
        Ok(finished)
    }

    /// Deletes the conversations (and their contacts) that no longer have a message, in batches.
    async fn delete_emptied(
        &self,
        tenant_id: &TenantId,
        channels: &[Channel],
        conversation_ids: BTreeSet<ConversationId>,
    ) -> Result<Counts> {
        let mut doomed = Vec::new();
        let mut conversations = 0u64;
        for conversation_id in conversation_ids {
            let remaining = self
                .store
                .query_keys(
                    &keys::messages_of_conversation(tenant_id, &conversation_id),
                    PageRequest {
                        limit: Some(1),
                        ..PageRequest::default()
                    },
                )
                .await?;
            if !remaining.items.is_empty() {
                continue;
            }
            // The conversation item's key holds its channel; a tenant has a handful of channels.
            for channel in channels {
                let key = keys::conversation(tenant_id, &channel.channel_id, &conversation_id);
                if let Some(conversation) = self.store.get_stored::<Conversation>(&key).await? {
                    doomed.push(keys::contact(
                        tenant_id,
                        conversation.platform,
                        &conversation.user_id,
                    ));
                    doomed.push(key);
                    conversations += 1;
                    break;
                }
            }
        }
        self.store.delete_many(&doomed).await?;
        let mut counts = Counts::new();
        if conversations > 0 {
            counts.insert("conversations".into(), conversations);
        }
        Ok(counts)
    }

    /// Rule 2: disconnected channels past the deadline they were given at disconnect.
    async fn disconnected_channels(&self, run: &mut Run<'_>) -> Result<Stage> {
        let channels: Vec<Channel> = self
            .store
            .query_all_stored(&keys::channels_of_tenant(&run.tenant.tenant_id))
            .await?;
        for channel in channels {
            // A terminated tenant's channels, disconnected by its termination, follow rule 3.
            let by_termination = run
                .tenant
                .terminated_at
                .zip(channel.disconnected_at)
                .is_some_and(|(terminated, disconnected)| disconnected >= terminated);
            let due = channel.status == ChannelStatus::Disconnected
                && !by_termination
                && channel
                    .retain_until
                    .is_some_and(|deadline| deadline <= run.as_of);
            if !due {
                continue;
            }
            if run.budget.exhausted() {
                return Ok(Stage::OutOfBudget);
            }
            let counts = self.eraser.erase_channel(&channel, None).await?;
            run.add(SweepStage::DisconnectedChannels, &counts);
        }
        Ok(Stage::Done)
    }

    /// Rule 3: a terminated tenant's account data, then its content.
    async fn termination(&self, run: &mut Run<'_>) -> Result<Stage> {
        let (TenantStatus::Terminated, Some(terminated_at)) =
            (run.tenant.status, run.tenant.terminated_at)
        else {
            return Ok(Stage::Done);
        };
        let policy = run.tenant.retention;
        let tenant_id = run.tenant.tenant_id.clone();
        if run.as_of >= policy.terminated_account_deadline(terminated_at) {
            let mut counts = Counts::new();
            let channels: Vec<Channel> = self
                .store
                .query_all_stored(&keys::channels_of_tenant(&tenant_id))
                .await?;
            let mut doomed: Vec<Key> = Vec::new();
            // Tokens and routes go with them (termination normally did this already).
            channels::disconnect_all(
                &self.store,
                self.actor,
                &channels,
                DisconnectReason::TenantTerminated,
                Some(&run.tenant),
            )
            .await?;
            for channel in &channels {
                doomed.push(keys::channel(&tenant_id, &channel.channel_id));
            }
            *counts.entry("channels".into()).or_default() += channels.len() as u64;
            for (kind, query) in [
                ("knowledge_entries", keys::knowledge_of_tenant(&tenant_id)),
                ("usage_rows", keys::usage_of_tenant(&tenant_id)),
                ("daily_stats", keys::stats_of_tenant(&tenant_id)),
            ] {
                let found = self.store.query_all_keys(&query).await?;
                *counts.entry(kind.into()).or_default() += found.len() as u64;
                doomed.extend(found);
            }
            self.store.delete_many(&doomed).await?;
            if !run.tenant.name.is_empty() || !run.tenant.instructions.is_empty() {
                // The tombstone: no name, no settings; only what the sweep needs to find it again.
                let tombstone = Tenant {
                    name: String::new(),
                    instructions: String::new(),
                    monthly_message_limit: None,
                    monthly_token_limit: None,
                    ..run.tenant.clone()
                };
                self.store
                    .put(&tombstone, crate::store::Write::Upsert)
                    .await?;
                *counts.entry("tenant_settings".into()).or_default() += 1;
                run.tenant = tombstone;
            }
            counts.retain(|_, n| *n > 0);
            run.add(SweepStage::Termination, &counts);
        }
        if run.as_of >= policy.terminated_content_deadline(terminated_at) {
            let conversations: Vec<Conversation> = self
                .store
                .query_all_stored(&keys::conversations_of_tenant(&tenant_id))
                .await?;
            for conversation in conversations {
                if run.budget.exhausted() {
                    return Ok(Stage::OutOfBudget);
                }
                let counts = self.eraser.erase_conversation(&conversation, None).await?;
                run.add(SweepStage::Termination, &counts);
            }
            // Content whose conversation item was already gone.
            if let Stage::OutOfBudget = self
                .delete_content_pages(run, &keys::all_content(&tenant_id), SweepStage::Termination)
                .await?
            {
                return Ok(Stage::OutOfBudget);
            }
            let rest = self
                .store
                .query_all_keys(&keys::tenant_partition(&tenant_id))
                .await?;
            let mut counts = BTreeMap::new();
            counts.insert("tenant_items".to_owned(), rest.len() as u64);
            self.store.delete_many(&rest).await?;
            run.add(SweepStage::Termination, &counts);
        }
        Ok(Stage::Done)
    }

    /// Rule 4: audit events older than the policy's period.
    async fn expired_audit(&self, run: &mut Run<'_>) -> Result<Stage> {
        let cutoff = run
            .as_of
            .saturating_sub(Duration::days(run.tenant.retention.audit_days.into()));
        let old = self
            .store
            .query_all_keys(&keys::audit_older_than(Some(&run.tenant.tenant_id), cutoff))
            .await?;
        for chunk in old.chunks(250) {
            if run.budget.exhausted() {
                return Ok(Stage::OutOfBudget);
            }
            self.store.delete_many(chunk).await?;
            let counts = Counts::from([("audit_events".to_owned(), chunk.len() as u64)]);
            run.add(SweepStage::ExpiredAudit, &counts);
        }
        Ok(Stage::Done)
    }
}
