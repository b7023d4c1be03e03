//! Contacts, conversations and their messages: ingesting a delivery, our sent messages' delivery
//! status, and what ai-reply did about each inbound message.

use std::collections::BTreeSet;

use aws_sdk_dynamodb::types::AttributeValue;
use time::OffsetDateTime;

use super::error::{Result, StoreError, condition_held, dynamo_error};
use super::expr::Expr;
use super::page::{Cursor, Page, PageRequest};
use super::records::{Record, SentMarker};
use super::table::{Store, Write, epoch_seconds, from_item, number, string, timestamp_value};
use crate::keys;
use crate::model::*;
use crate::secret::PlatformUserId;

/// The attribute of the sweep's pending conversations (a string set).
const SWEEP_PENDING: &str = "conversation_ids";
/// The handoff reason of a conversation a person answered from the console.
pub const AGENT_REPLY_REASON: &str = "agent_reply";
/// Messages read per Query when looking back for a customer message (replies come one or two per
/// customer message, so the first page nearly always settles it).
const CUSTOMER_LOOKUP_PAGE: i32 = 10;
/// The most Queries one page of the activity listing reads when a filter leaves most entries out.
pub const ACTIVITY_READS: usize = 3;

/// [`Store::conversation_in_context`]: each `None` if absent.
#[derive(Debug, Clone)]
pub struct ConversationInContext {
    pub conversation: Option<Conversation>,
    pub tenant: Option<Tenant>,
    pub channel: Option<Channel>,
}

/// A delivered reply's records ([`Store::record_delivery`]).
#[derive(Debug, Clone)]
pub struct DeliveryRecord<'a> {
    pub marker: &'a SentMarker,
    /// The outbound message as sent (its author says whose reply it was).
    pub message: &'a Message,
    /// The send's idempotency record, completed with the platform's message id.
    pub completion: &'a super::IdempotencyRecord,
    pub audit: Option<&'a AuditEvent>,
    /// A person's reply from the console: the conversation goes to human mode.
    pub takes_over: bool,
}

/// What ai-reply did about one inbound message ([`Store::record_outcome`]).
#[derive(Debug, Clone)]
pub struct OutcomeRecord<'a> {
    pub tenant_id: &'a TenantId,
    pub conversation_id: &'a ConversationId,
    pub message_id: &'a str,
    pub sent_at: OffsetDateTime,
    pub outcome: ReplyOutcome,
    pub error_code: Option<i64>,
}

/// What an inbound item changes on its conversation.
#[derive(Debug, Clone)]
pub struct ConversationTouch<'a> {
    pub conversation_id: &'a ConversationId,
    pub channel_id: &'a ChannelId,
    pub platform: Platform,
    pub user_id: &'a PlatformUserId,
    /// Set for a customer's message.
    pub last_inbound_at: Option<OffsetDateTime>,
    /// Set when a person on the business side replied from the platform's own inbox.
    pub hand_to_human: Option<&'a str>,
    pub retain_until: OffsetDateTime,
    /// The platform account the item came through, when ingesting a webhook: the write then requires
    /// the account's route to lead to this tenant and channel still, so a warm container's cached
    /// route never stores for a channel disconnected (or an account moved) meanwhile.
    pub routed_account: Option<&'a str>,
}

const ROUTE_CHANGED: &str = "the account's route changed";

/// The outcome of [`Store::ingest_message`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingested {
    /// First delivery: stored.
    Stored,
    /// Stored before; `answered` says whether ai-reply has recorded what it did about it.
    Duplicate { answered: bool },
    /// Nothing written: the account's route no longer leads to this tenant and channel.
    RouteChanged,
}

impl Store {
    pub async fn save_contact(&self, contact: &Contact) -> Result<()> {
        self.put(contact, Write::Upsert).await
    }

    pub async fn get_contact(
        &self,
        tenant_id: &TenantId,
        platform: Platform,
        user_id: &PlatformUserId,
    ) -> Result<Option<Contact>> {
        self.get(&keys::contact(tenant_id, platform, user_id)).await
    }

    pub async fn save_conversation(&self, conversation: &Conversation) -> Result<()> {
        self.put(conversation, Write::Upsert).await
    }

    pub async fn get_conversation(
        &self,
        tenant_id: &TenantId,
        channel_id: &ChannelId,
        conversation_id: &ConversationId,
    ) -> Result<Option<Conversation>> {
        self.get(&keys::conversation(tenant_id, channel_id, conversation_id))
            .await
    }

    /// A conversation with its tenant and channel, in one read: what a person's reply needs.
    pub async fn conversation_in_context(
        &self,
        tenant_id: &TenantId,
        channel_id: &ChannelId,
        conversation_id: &ConversationId,
    ) -> Result<ConversationInContext> {
        let keys = [
            &keys::conversation(tenant_id, channel_id, conversation_id),
            &keys::tenant(tenant_id),
            &keys::channel(tenant_id, channel_id),
        ];
        let mut items = self.get_items(&keys).await?.into_iter();
        let mut next = || items.next().flatten();
        Ok(ConversationInContext {
            conversation: next().map(from_item).transpose()?,
            tenant: next().map(from_item).transpose()?,
            channel: next().map(from_item).transpose()?,
        })
    }

    pub async fn conversations_of_channel(
        &self,
        tenant_id: &TenantId,
        channel_id: &ChannelId,
    ) -> Result<Vec<Conversation>> {
        self.query_all(&keys::conversations_of_channel(tenant_id, channel_id))
            .await
    }

    /// Hands a conversation to a human (with a machine reason) or back to the bot.
    pub async fn set_conversation_mode(
        &self,
        tenant_id: &TenantId,
        channel_id: &ChannelId,
        conversation_id: &ConversationId,
        mode: ConversationMode,
        reason: Option<&str>,
    ) -> Result<()> {
        let mut expr = Expr::new();
        expr.set("mode", string(mode.as_str()))
            .set(
                "handoff_reason",
                reason.map_or(AttributeValue::Null(true), string),
            )
            .require(|e| e.exists(keys::PK));
        self.update_conversation(tenant_id, channel_id, conversation_id, expr)
            .await
    }

    /// What a delivered reply leaves, in one transaction: the sent marker (its echo is known as ours),
    /// the outbound message, the completed send claim (a retry finds it sent), the conversation moved
    /// to the top of the inbox with its wait for a reply ended (a person's reply from the console also
    /// takes it into human mode) and, for a person's action, its audit event. A conversation erased
    /// between the read and the send is not recreated: the rest is written without it.
    pub async fn record_delivery(&self, record: &DeliveryRecord<'_>) -> Result<()> {
        match self
            .transact(self.delivery_items(record, true)?, |_| String::new())
            .await
        {
            // Only the conversation's condition can fail (every other item is unconditional).
            Err(StoreError::Conflict(_)) => {
                self.transact(self.delivery_items(record, false)?, |_| String::new())
                    .await
            }
            other => other,
        }
    }

    fn delivery_items(
        &self,
        record: &DeliveryRecord<'_>,
        with_conversation: bool,
    ) -> Result<Vec<aws_sdk_dynamodb::types::TransactWriteItem>> {
        let message = record.message;
        let mut items = vec![
            self.put_in_transaction(record.marker, Expr::new())?,
            self.put_in_transaction(message, Expr::new())?,
            self.put_in_transaction(record.completion, Expr::new())?,
        ];
        if let Some(event) = record.audit {
            items.push(self.create_in_transaction(event)?);
        }
        if with_conversation {
            let activity = keys::conversation_activity(
                &message.tenant_id,
                &message.channel_id,
                &message.conversation_id,
                message.sent_at,
            );
            let mut update = Expr::new();
            update
                .set("last_outbound_at", timestamp_value(message.sent_at))
                .set(keys::GSI1_PK, string(&activity.pk))
                .set(keys::GSI1_SK, string(&activity.sk))
                .remove("awaiting_reply_since")
                .require(|e| e.exists(keys::PK));
            if record.takes_over {
                // A person answered: the conversation is theirs, and the bot stays silent.
                update
                    .set("mode", string(ConversationMode::Human.as_str()))
                    .set("handoff_reason", string(AGENT_REPLY_REASON));
            }
            let key = keys::conversation(
                &message.tenant_id,
                &message.channel_id,
                &message.conversation_id,
            );
            items.push(self.update_in_transaction(&key, update));
        }
        Ok(items)
    }

    /// Records what ai-reply did about an inbound message, once: the first outcome recorded stays (a
    /// redelivery that decides again changes nothing). True when recorded now; false when an earlier
    /// delivery had, or the message was erased meanwhile (it stays erased).
    pub async fn record_outcome(&self, record: &OutcomeRecord<'_>) -> Result<bool> {
        let mut expr = with_error_code(
            "reply_outcome",
            string(record.outcome.as_str()),
            record.error_code,
        );
        expr.require(|e| e.exists(keys::PK).and(e.no_value("reply_outcome")));
        let key = keys::message(
            record.tenant_id,
            record.conversation_id,
            record.sent_at,
            record.message_id,
        );
        condition_held(self.update(&key, expr).send().await.map_err(dynamo_error))
    }

    /// Applies `expr` (which requires the item to exist) to a conversation: a missing one is `NotFound`.
    async fn update_conversation(
        &self,
        tenant_id: &TenantId,
        channel_id: &ChannelId,
        conversation_id: &ConversationId,
        expr: Expr,
    ) -> Result<()> {
        let key = keys::conversation(tenant_id, channel_id, conversation_id);
        self.update(&key, expr)
            .send()
            .await
            .map_err(dynamo_error)
            .map_err(|e| match e {
                StoreError::Conflict(_) => {
                    StoreError::NotFound(format!("conversation {conversation_id}"))
                }
                other => other,
            })?;
        Ok(())
    }

    /// One page of a tenant's conversations, newest activity first, keeping those `keep` accepts.
    /// Reads `limit + 1` entries per Query (the extra one says whether there is more) and at most
    /// [`ACTIVITY_READS`] Queries when `keep` leaves most out; the page may then be short, and its
    /// cursor continues after the last entry examined. The cursor is the position of the last entry
    /// returned (or examined), so no entry is skipped or repeated.
    pub async fn conversations_by_activity(
        &self,
        tenant_id: &TenantId,
        limit: usize,
        after: Option<Cursor>,
        keep: impl Fn(&Conversation) -> bool,
    ) -> Result<Page<Conversation>> {
        let query = keys::conversations_by_activity(tenant_id);
        let mut found = Vec::new();
        let mut position = after;
        for _ in 0..ACTIVITY_READS {
            let want = (limit - found.len() + 1).min(1000) as i32;
            let request = PageRequest {
                limit: Some(want),
                backwards: true,
                after: position.clone(),
            };
            let (items, next) = self.query_raw(&query, &request, false).await?;
            let mut items = items.into_iter().peekable();
            while let Some(item) = items.next() {
                let here = Cursor::encode(&index_position(&item))?;
                if self.is_expired(&item) {
                    position = Some(here);
                    continue;
                }
                let conversation: Conversation = from_item(item)?;
                if keep(&conversation) {
                    found.push(conversation);
                }
                position = Some(here);
                if found.len() == limit {
                    let more = items.peek().is_some() || next.is_some();
                    return Ok(Page {
                        items: found,
                        next: if more { position } else { None },
                    });
                }
            }
            if next.is_none() {
                return Ok(Page {
                    items: found,
                    next: None,
                });
            }
        }
        Ok(Page {
            items: found,
            next: position,
        })
    }

    /// Stores a message once: false if one with the same key was already stored.
    pub async fn insert_message(&self, message: &Message) -> Result<bool> {
        condition_held(self.put(message, Write::Create).await)
    }

    /// Stores a message with its conversation and contact in one transaction. The message put is
    /// conditional on the key being new, so of any number of concurrent deliveries exactly one stores it;
    /// the conversation and contact are updated field by field (never replaced: a human takeover set
    /// meanwhile survives).
    pub async fn ingest_message(
        &self,
        message: &Message,
        conversation: &ConversationTouch<'_>,
        profile_name: Option<&crate::secret::ProfileName>,
    ) -> Result<Ingested> {
        let owner = Owner {
            tenant_id: &message.tenant_id,
            platform: conversation.platform,
            user_id: conversation.user_id,
            retain_until: conversation.retain_until,
        };
        let mut update = Expr::new();
        owner.set_on::<Conversation>(&mut update);
        update
            .set("conversation_id", string(conversation.conversation_id))
            .set("channel_id", string(conversation.channel_id))
            .set_if_absent("created_at", timestamp_value(self.now()));
        if let Some(at) = conversation.last_inbound_at {
            // The wait a first response ends begins with the oldest customer message not answered.
            update
                .set("last_inbound_at", timestamp_value(at))
                .set_if_absent("awaiting_reply_since", timestamp_value(at));
        }
        if message.direction == Direction::Outbound {
            // Answered from the platform's own inbox: the wait ends (unmeasured: its start is not
            // read on this path).
            update
                .set("last_outbound_at", timestamp_value(message.sent_at))
                .remove("awaiting_reply_since");
        }
        // Its place in the inbox list: the newest message (a late-delivered older one moves it back
        // until the next message; nothing is lost, only the order is briefly off).
        let activity = keys::conversation_activity(
            &message.tenant_id,
            conversation.channel_id,
            conversation.conversation_id,
            message.sent_at,
        );
        update
            .set(keys::GSI1_PK, string(&activity.pk))
            .set(keys::GSI1_SK, string(&activity.sk));
        match conversation.hand_to_human {
            Some(reason) => update
                .set("mode", string(ConversationMode::Human.as_str()))
                .set("handoff_reason", string(reason)),
            None => update.set_if_absent("mode", string(ConversationMode::Bot.as_str())),
        };
        let conversation_key = keys::conversation(
            &message.tenant_id,
            conversation.channel_id,
            conversation.conversation_id,
        );
        let mut items = vec![
            self.create_in_transaction(message)?,
            self.update_in_transaction(&conversation_key, update),
        ];
        if message.direction == Direction::Inbound {
            let mut contact = Expr::new();
            owner.set_on::<Contact>(&mut contact);
            contact
                .set_if_absent("first_seen_at", timestamp_value(message.sent_at))
                .set("last_seen_at", timestamp_value(message.sent_at));
            if let Some(name) = profile_name {
                contact.set("profile_name", string(name.expose()));
            }
            let contact_key = keys::contact(
                &message.tenant_id,
                conversation.platform,
                conversation.user_id,
            );
            items.push(self.update_in_transaction(&contact_key, contact));
        }
        if let Some(account_id) = conversation.routed_account {
            let mut owned = Expr::new();
            owned.require(|e| {
                e.eq("tenant_id", string(&message.tenant_id))
                    .and(e.eq("channel_id", string(conversation.channel_id)))
            });
            items.push(
                self.check_in_transaction(&keys::route(conversation.platform, account_id), owned),
            );
        }
        let route_check = items.len() - 1;
        match self
            .transact(items, |index| {
                if conversation.routed_account.is_some() && index == route_check {
                    ROUTE_CHANGED.into()
                } else {
                    "duplicate".into()
                }
            })
            .await
        {
            Ok(()) => Ok(Ingested::Stored),
            Err(StoreError::Conflict(what)) if what == ROUTE_CHANGED => Ok(Ingested::RouteChanged),
            Err(StoreError::Conflict(_)) => {
                let stored: Option<Message> = self.get(&message.key()).await?;
                Ok(Ingested::Duplicate {
                    answered: stored.is_some_and(|m| m.reply_outcome.is_some()),
                })
            }
            Err(other) => Err(other),
        }
    }

    /// Whether the customer wrote in the conversation from `from` up to `before`: newest first, page by
    /// page, stopping at the first customer message.
    pub async fn customer_wrote_between(
        &self,
        tenant_id: &TenantId,
        conversation_id: &ConversationId,
        from: OffsetDateTime,
        before: OffsetDateTime,
    ) -> Result<bool> {
        let query = keys::messages_between(tenant_id, conversation_id, from, before);
        let mut after = None;
        loop {
            let page = self
                .query::<Message>(
                    &query,
                    PageRequest {
                        limit: Some(CUSTOMER_LOOKUP_PAGE),
                        backwards: true,
                        after,
                    },
                )
                .await?;
            if page.items.iter().any(|m| m.author == Author::Customer) {
                return Ok(true);
            }
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(false),
            }
        }
    }

    /// The newest `limit` messages of a conversation, oldest first.
    pub async fn recent_messages(
        &self,
        tenant_id: &TenantId,
        conversation_id: &ConversationId,
        limit: i32,
    ) -> Result<Vec<Message>> {
        let page = self
            .query::<Message>(
                &keys::messages_of_conversation(tenant_id, conversation_id),
                PageRequest {
                    limit: Some(limit),
                    backwards: true,
                    after: None,
                },
            )
            .await?;
        let mut messages = page.items;
        messages.reverse();
        Ok(messages)
    }

    pub async fn messages_of_conversation(
        &self,
        tenant_id: &TenantId,
        conversation_id: &ConversationId,
    ) -> Result<Vec<Message>> {
        self.query_all(&keys::messages_of_conversation(tenant_id, conversation_id))
            .await
    }

    /// Records conversations a sweep is about to empty (before it deletes their content), added to
    /// those recorded already; kept 30 days at most (the daily sweep finishes them long before).
    pub async fn add_sweep_pending(
        &self,
        tenant_id: &TenantId,
        conversation_ids: &BTreeSet<ConversationId>,
    ) -> Result<()> {
        let expires = self.now().saturating_add(time::Duration::days(30));
        self.change_sweep_pending(tenant_id, conversation_ids, |expr, ids| {
            expr.add(SWEEP_PENDING, ids)
                .set(keys::KIND, string("sweep_pending"))
                .set(keys::TTL, epoch_seconds(expires));
        })
        .await
    }

    /// The conversations an earlier sweep recorded as about to be emptied and did not finish.
    pub async fn sweep_pending(&self, tenant_id: &TenantId) -> Result<BTreeSet<ConversationId>> {
        let item = self.get_item(&keys::sweep_pending(tenant_id)).await?;
        Ok(match item.as_ref().and_then(|i| i.get(SWEEP_PENDING)) {
            Some(AttributeValue::Ss(ids)) => ids.iter().map(ConversationId::new).collect(),
            _ => BTreeSet::new(),
        })
    }

    /// Takes conversations a sweep has dealt with off the pending ones (others a concurrent sweep
    /// recorded stay).
    pub async fn remove_sweep_pending(
        &self,
        tenant_id: &TenantId,
        conversation_ids: &BTreeSet<ConversationId>,
    ) -> Result<()> {
        self.change_sweep_pending(tenant_id, conversation_ids, |expr, ids| {
            expr.delete_from_set(SWEEP_PENDING, ids);
        })
        .await
    }

    /// One atomic change of the pending set with `conversation_ids` (none: nothing to do, and DynamoDB
    /// takes no empty set).
    async fn change_sweep_pending(
        &self,
        tenant_id: &TenantId,
        conversation_ids: &BTreeSet<ConversationId>,
        change: impl FnOnce(&mut Expr, AttributeValue),
    ) -> Result<()> {
        if conversation_ids.is_empty() {
            return Ok(());
        }
        let mut expr = Expr::new();
        change(
            &mut expr,
            AttributeValue::Ss(
                conversation_ids
                    .iter()
                    .map(|id| id.as_str().to_owned())
                    .collect(),
            ),
        );
        self.update(&keys::sweep_pending(tenant_id), expr)
            .send()
            .await
            .map_err(dynamo_error)?;
        Ok(())
    }

    pub async fn record_sent(&self, marker: &SentMarker) -> Result<()> {
        self.put(marker, Write::Upsert).await
    }

    pub async fn sent_marker(
        &self,
        tenant_id: &TenantId,
        conversation_id: &ConversationId,
        message_id: &str,
    ) -> Result<Option<SentMarker>> {
        self.get(&keys::sent_marker(tenant_id, conversation_id, message_id))
            .await
    }

    /// Moves our sent message to a newer delivery status, never backwards (a `delivered` arriving after
    /// `read` is ignored). Returns false when the message is unknown or the status is not newer.
    pub async fn advance_message_status(
        &self,
        tenant_id: &TenantId,
        conversation_id: &ConversationId,
        message_id: &str,
        status: MessageStatus,
        error_code: Option<i64>,
    ) -> Result<bool> {
        let Some(marker) = self
            .sent_marker(tenant_id, conversation_id, message_id)
            .await?
        else {
            return Ok(false);
        };
        let older: Vec<MessageStatus> = match status {
            MessageStatus::Failed => vec![
                MessageStatus::Received,
                MessageStatus::Sent,
                MessageStatus::Delivered,
            ],
            newer => MessageStatus::ALL
                .iter()
                .copied()
                .filter(|s| *s < newer && *s != MessageStatus::Failed)
                .collect(),
        };
        if older.is_empty() {
            return Ok(false);
        }
        let mut expr = with_error_code("status", string(status.as_str()), error_code);
        expr.require(|e| {
            let older = older.iter().map(|s| string(s.as_str()));
            e.exists(keys::PK).and(e.is_in("status", older))
        });
        condition_held(
            self.update(&marker.message_key(), expr)
                .send()
                .await
                .map_err(dynamo_error),
        )
    }
}

/// The key attributes of an activity-index entry: where a Query on it continues.
fn index_position(item: &super::table::Item) -> super::table::Item {
    [keys::PK, keys::SK, keys::GSI1_PK, keys::GSI1_SK]
        .into_iter()
        .filter_map(|name| item.get(name).map(|v| (name.to_owned(), v.clone())))
        .collect()
}

/// Sets `attribute` to `value` and, if there is one, the platform's error code beside it.
fn with_error_code(attribute: &str, value: AttributeValue, error_code: Option<i64>) -> Expr {
    let mut expr = Expr::new();
    expr.set(attribute, value);
    if let Some(code) = error_code {
        expr.set("error_code", number(code));
    }
    expr
}

/// Whose a conversation or contact is and how long it is kept: the attributes an ingested message
/// sets on both.
struct Owner<'a> {
    tenant_id: &'a TenantId,
    platform: Platform,
    user_id: &'a PlatformUserId,
    retain_until: OffsetDateTime,
}

impl Owner<'_> {
    /// Sets the owner, the retention and the kind `R` on an item updated field by field.
    fn set_on<R: Record>(&self, expr: &mut Expr) {
        expr.set("tenant_id", string(self.tenant_id))
            .set("platform", string(self.platform.as_str()))
            .set("user_id", string(self.user_id.expose()))
            .set("retain_until", timestamp_value(self.retain_until))
            .set(keys::TTL, epoch_seconds(self.retain_until))
            .set(keys::KIND, string(R::KIND));
    }
}
