//! Erasure: deleting everything tied to a subject, so that no item of it remains in the table or its
//! indexes, while other tenants' and other contacts' data is untouched.
//!
//! Subjects: a Meta user (their data-deletion request, or their deauthorization: the channels they
//! connected, those channels' tokens, and all contacts, conversations, messages, sent markers, drafts,
//! send-once records and usage rows ingested through those channels), and one contact of a tenant (an
//! end user's request, run by an operator with `inboxctl erase`).
//!
//! Every step is idempotent and ordered so that a crash leaves a state the next run finishes: tokens are
//! destroyed first; a conversation's items go before the conversation item that leads to them; a
//! channel's data goes before the channel item that leads to it. Each step adds its counts to the
//! deletion request as it goes, so a redelivery completes the job and the counts stay right. Deletes are
//! `BatchWriteItem`s of 25 with unprocessed items retried.

use std::collections::BTreeMap;

use serde::Serialize;
use time::OffsetDateTime;

use crate::keys::{self, Key};
use crate::model::*;
use crate::secret::PlatformUserId;
use crate::store::{Result, Store};

use super::channels::{self, DisconnectReason};

/// Items deleted, by kind.
pub type Counts = BTreeMap<String, u64>;

/// The version of the export document; bumped when its shape changes.
pub const EXPORT_FORMAT_VERSION: u32 = 1;
/// The idempotency scope of sends (see `outbound`): its records name message and draft ids.
const SEND_SCOPE: &str = "send";

fn add(counts: &mut Counts, kind: &str, n: u64) {
    if n > 0 {
        *counts.entry(kind.to_owned()).or_default() += n;
    }
}

fn merge(into: &mut Counts, from: &Counts) {
    for (kind, n) in from {
        add(into, kind, *n);
    }
}

/// What an export holds for one contact.
#[derive(Debug, Serialize)]
pub struct ContactExport {
    pub format_version: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub exported_at: OffsetDateTime,
    pub tenant_id: TenantId,
    pub platform: Platform,
    pub user_id: PlatformUserId,
    pub contact: Option<Contact>,
    pub conversations: Vec<ConversationExport>,
}

#[derive(Debug, Serialize)]
pub struct ConversationExport {
    pub conversation: Conversation,
    pub messages: Vec<Message>,
    pub drafts: Vec<Draft>,
}

pub struct Eraser {
    store: Store,
    actor: String,
}

impl Eraser {
    /// `actor` names who erases in the audit trail (`retention-sweep`, `inboxctl`, `console:{user}`).
    pub fn new(store: Store, actor: impl Into<String>) -> Self {
        Self {
            store,
            actor: actor.into(),
        }
    }

    /// Carries out a Meta deletion request: returns its counts once completed. A completed or unknown
    /// request is left as it is.
    pub async fn process_deletion_request(
        &self,
        confirmation_code: &str,
    ) -> Result<Option<Counts>> {
        let Some(mut request) = self.store.get_deletion_request(confirmation_code).await? else {
            return Ok(None);
        };
        if request.status == DeletionStatus::Completed {
            return Ok(Some(request.deleted));
        }
        if request.status == DeletionStatus::Received {
            request.status = DeletionStatus::InProgress;
            self.store.save_deletion_request(&request).await?;
        }
        if let Some(meta_user_id) = request.meta_user_id.as_deref() {
            for channel in self.store.channels_of_meta_user(meta_user_id).await? {
                self.erase_channel(&channel, Some(confirmation_code))
                    .await?;
            }
        }
        // Re-read: the counts were added step by step, possibly by an earlier, interrupted run.
        let mut request = self
            .store
            .get_deletion_request(confirmation_code)
            .await?
            .unwrap_or(request);
        let now = self.store.now();
        request.status = DeletionStatus::Completed;
        request.completed_at = Some(now);
        // The proof of deletion no longer identifies the person.
        request.meta_user_id = None;
        self.store.save_deletion_request(&request).await?;
        let mut event = AuditEvent::new(
            None,
            &self.actor,
            "erasure.completed",
            Some(confirmation_code),
            now,
            RetentionPolicy::default().audit_days,
        );
        event.counts = request.deleted.clone();
        self.store.record_audit(&event).await?;
        Ok(Some(request.deleted))
    }

    /// Disconnects a channel (its token destroyed at once, its route removed) if it is not already, and
    /// deletes everything ingested through it, then the channel itself. With `request`, counts are added
    /// to that deletion request batch by batch.
    pub async fn erase_channel(&self, channel: &Channel, request: Option<&str>) -> Result<Counts> {
        if channel.status != ChannelStatus::Disconnected {
            // The tenant's deadline as the backstop; the channel item must stay readable (unexpired)
            // until its data is gone, or an interrupted run could not find it again.
            let owner = channels::owner_of(&self.store, channel).await?;
            channels::disconnect(
                &self.store,
                &self.actor,
                &owner,
                &channel.channel_id,
                DisconnectReason::Erased,
            )
            .await?;
        }
        let mut counts = Counts::new();
        for conversation in self
            .store
            .conversations_of_channel(&channel.tenant_id, &channel.channel_id)
            .await?
        {
            merge(
                &mut counts,
                &self.erase_conversation(&conversation, request).await?,
            );
        }
        let mut last = Vec::new();
        for usage in self
            .store
            .query_all::<Usage>(&keys::usage_of_tenant(&channel.tenant_id))
            .await?
            .into_iter()
            .filter(|u| u.channel_id == channel.channel_id)
        {
            last.push((
                keys::usage(&usage.tenant_id, &usage.month, &usage.channel_id),
                Some("usage_rows"),
            ));
        }
        last.push((
            keys::channel(&channel.tenant_id, &channel.channel_id),
            Some("channels"),
        ));
        self.delete_counted(last, request, &mut counts).await?;
        Ok(counts)
    }

    /// Deletes in batches of 25 and counts what each batch removed (by the kind given with each key; a
    /// key without a kind is deleted uncounted, e.g. a send record that may not exist), adding each
    /// batch's counts to the deletion request at once, so an interrupted run loses no count.
    async fn delete_counted(
        &self,
        doomed: Vec<(Key, Option<&'static str>)>,
        request: Option<&str>,
        counts: &mut Counts,
    ) -> Result<()> {
        for chunk in doomed.chunks(25) {
            let keys: Vec<Key> = chunk.iter().map(|(key, _)| key.clone()).collect();
            self.store.delete_many(&keys).await?;
            let mut batch = Counts::new();
            for kind in chunk.iter().filter_map(|(_, kind)| *kind) {
                add(&mut batch, kind, 1);
            }
            if let Some(code) = request {
                self.store.add_deletion_counts(code, &batch).await?;
            }
            merge(counts, &batch);
        }
        Ok(())
    }

    /// Deletes a conversation: its messages, sent markers, drafts and send records, its contact, and the
    /// conversation item last.
    pub async fn erase_conversation(
        &self,
        conversation: &Conversation,
        request: Option<&str>,
    ) -> Result<Counts> {
        let tenant_id = &conversation.tenant_id;
        let items = self
            .store
            .query_all_keys(&keys::conversation_partition(
                tenant_id,
                &conversation.conversation_id,
            ))
            .await?;
        let mut doomed = Vec::with_capacity(items.len() * 2 + 2);
        for key in items {
            if let Some(message_id) = keys::message_id_of(&key) {
                let send = keys::idempotency(tenant_id, SEND_SCOPE, &format!("reply:{message_id}"));
                doomed.push((send, None));
                doomed.push((key, Some("messages")));
            } else if let Some(draft_id) = keys::draft_id_of(&key) {
                let send = keys::idempotency(tenant_id, SEND_SCOPE, &format!("draft:{draft_id}"));
                doomed.push((send, None));
                doomed.push((key, Some("drafts")));
            } else {
                doomed.push((key, Some("sent_markers")));
            }
        }
        let contact = keys::contact(tenant_id, conversation.platform, &conversation.user_id);
        if self.store.get::<Contact>(&contact).await?.is_some() {
            doomed.push((contact, Some("contacts")));
        }
        doomed.push((
            keys::conversation(
                tenant_id,
                &conversation.channel_id,
                &conversation.conversation_id,
            ),
            Some("conversations"),
        ));
        let mut counts = Counts::new();
        self.delete_counted(doomed, request, &mut counts).await?;
        Ok(counts)
    }

    /// The conversations one platform user has with a tenant: one per channel of that platform.
    pub async fn conversations_of_contact(
        &self,
        tenant_id: &TenantId,
        platform: Platform,
        user_id: &PlatformUserId,
    ) -> Result<Vec<Conversation>> {
        let mut found = Vec::new();
        for channel in self.store.channels_of_tenant(tenant_id).await? {
            if channel.platform != platform {
                continue;
            }
            let conversation_id = keys::conversation_id(&channel.channel_id, user_id);
            if let Some(conversation) = self
                .store
                .get_conversation(tenant_id, &channel.channel_id, &conversation_id)
                .await?
            {
                found.push(conversation);
            }
        }
        Ok(found)
    }

    /// An end user's erasure request: everything of that contact in that tenant, audited when it starts
    /// (a crash at any step leaves the attempt on record; a re-run finishes it) and when it is done.
    pub async fn erase_contact(
        &self,
        tenant: &Tenant,
        platform: Platform,
        user_id: &PlatformUserId,
    ) -> Result<Counts> {
        let audit = |action: &str| {
            AuditEvent::new(
                Some(&tenant.tenant_id),
                &self.actor,
                action,
                Some(platform.as_str()),
                self.store.now(),
                tenant.retention.audit_days,
            )
        };
        self.store
            .record_audit(&audit("contact.erase_started"))
            .await?;
        let mut counts = Counts::new();
        for conversation in self
            .conversations_of_contact(&tenant.tenant_id, platform, user_id)
            .await?
        {
            merge(
                &mut counts,
                &self.erase_conversation(&conversation, None).await?,
            );
        }
        let contact = keys::contact(&tenant.tenant_id, platform, user_id);
        if self.store.get::<Contact>(&contact).await?.is_some() {
            self.store.delete(&contact).await?;
            add(&mut counts, "contacts", 1);
        }
        let mut event = audit("contact.erase");
        event.counts = counts.clone();
        self.store.record_audit(&event).await?;
        Ok(counts)
    }

    /// An end user's access request: one document with everything stored about that contact, audited.
    pub async fn export_contact(
        &self,
        tenant: &Tenant,
        platform: Platform,
        user_id: &PlatformUserId,
    ) -> Result<ContactExport> {
        let tenant_id = &tenant.tenant_id;
        let mut conversations = Vec::new();
        for conversation in self
            .conversations_of_contact(tenant_id, platform, user_id)
            .await?
        {
            let messages = self
                .store
                .messages_of_conversation(tenant_id, &conversation.conversation_id)
                .await?;
            let drafts = self
                .store
                .drafts_of_conversation(tenant_id, &conversation.conversation_id)
                .await?;
            conversations.push(ConversationExport {
                conversation,
                messages,
                drafts,
            });
        }
        let export = ContactExport {
            format_version: EXPORT_FORMAT_VERSION,
            exported_at: self.store.now(),
            tenant_id: tenant_id.to_owned(),
            platform,
            user_id: user_id.clone(),
            contact: self.store.get_contact(tenant_id, platform, user_id).await?,
            conversations,
        };
        let event = AuditEvent::new(
            Some(tenant_id),
            &self.actor,
            "contact.export",
            Some(platform.as_str()),
            export.exported_at,
            tenant.retention.audit_days,
        );
        self.store.record_audit(&event).await?;
        Ok(export)
    }
}
