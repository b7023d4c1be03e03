//! The single-table repository over DynamoDB.
//!
//! A generic layer ([`Store::get`], [`Store::put`], [`Store::query`], [`Store::delete_many`]) works on any
//! [`Record`]; typed operations on top of it are the ones whose writes must be conditional or
//! transactional (connecting a channel claims its platform account; disconnecting removes the token and
//! the route together; a draft is decided once). Reads treat an item whose `expires_at` has passed as
//! absent, because DynamoDB TTL deletes lazily (and moto never does).

mod idempotency;
pub mod records;

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, DeleteRequest, Put, TransactWriteItem, Update, WriteRequest,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub use idempotency::{Claim, IdempotencyRecord, IdempotencyStatus};
pub use records::{DeletionReplay, Record, SentMarker};

use crate::clock::SharedClock;
use crate::keys::{self, Key, KeyQuery, SortKey};
use crate::model::*;

pub type Item = HashMap<String, AttributeValue>;

/// BatchWriteItem takes at most 25 requests (moto accepts more; AWS does not).
pub const BATCH_WRITE_LIMIT: usize = 25;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A conditional write lost: the item exists already, or changed under us. Permanent for this write.
    #[error("{0}")]
    Conflict(String),
    #[error("{0} not found")]
    NotFound(String),
    /// Throttling, a timeout, a 5xx: retry later.
    #[error("DynamoDB unavailable: {0}")]
    Unavailable(String),
    /// DynamoDB refused the request (validation, missing table, access denied). Permanent.
    #[error("DynamoDB rejected the request: {0}")]
    Rejected(String),
    /// An item in the table does not decode as the type it claims to be.
    #[error("stored item is malformed: {0}")]
    Corrupt(String),
}

impl StoreError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The condition of a put.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// Create or overwrite.
    Upsert,
    /// Only if no item has this key (a live or an expired one: an expired item still blocks, so callers
    /// that reuse keys delete first).
    Create,
    /// Only if the item exists.
    Replace,
}

/// An opaque position in a Query's results, safe to store and to pass to another process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Cursor(String);

impl Cursor {
    fn encode(last: &Item) -> Result<Self> {
        let mut map = std::collections::BTreeMap::new();
        for (name, value) in last {
            let text = value.as_s().map_err(|_| {
                StoreError::Corrupt(format!("key attribute {name} is not a string"))
            })?;
            map.insert(name.clone(), text.clone());
        }
        let json = serde_json::to_vec(&map).expect("a map of strings serialises");
        Ok(Cursor(B64URL.encode(json)))
    }

    fn decode(&self) -> Result<Item> {
        let corrupt = || StoreError::Rejected("the cursor is not one this store produced".into());
        let json = B64URL.decode(&self.0).map_err(|_| corrupt())?;
        let map: HashMap<String, String> = serde_json::from_slice(&json).map_err(|_| corrupt())?;
        Ok(map
            .into_iter()
            .map(|(k, v)| (k, AttributeValue::S(v)))
            .collect())
    }
}

/// How much of a Query to read.
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    pub limit: Option<i32>,
    /// Newest (highest sort key) first.
    pub backwards: bool,
    pub after: Option<Cursor>,
}

#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<Cursor>,
}

#[derive(Clone)]
pub struct Store {
    client: Client,
    table: String,
    clock: SharedClock,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

impl Store {
    pub fn new(client: Client, table: impl Into<String>, clock: SharedClock) -> Self {
        Self {
            client,
            table: table.into(),
            clock,
        }
    }

    pub fn table_name(&self) -> &str {
        &self.table
    }

    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    // --- generic layer ---------------------------------------------------------------------------

    /// A strongly consistent read of one item; `None` if absent or expired.
    pub async fn get<R: Record>(&self, key: &Key) -> Result<Option<R>> {
        self.get_item(key)
            .await?
            .filter(|item| !self.is_expired(item))
            .map(from_item)
            .transpose()
    }

    /// One item as stored, expired or not: for delete paths, which must find what TTL has not removed yet.
    pub async fn get_stored<R: Record>(&self, key: &Key) -> Result<Option<R>> {
        self.get_item(key).await?.map(from_item).transpose()
    }

    async fn get_item(&self, key: &Key) -> Result<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_item(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(dynamo_error)?;
        Ok(out.item)
    }

    /// Writes many records with BatchWriteItem (unconditional puts), 25 per call.
    pub async fn put_many<R: Record>(&self, records: &[R]) -> Result<BatchOutcome> {
        let requests = records
            .iter()
            .map(|record| {
                Ok(WriteRequest::builder()
                    .put_request(
                        aws_sdk_dynamodb::types::PutRequest::builder()
                            .set_item(Some(to_item(record)?))
                            .build()
                            .expect("item is set"),
                    )
                    .build())
            })
            .collect::<Result<Vec<_>>>()?;
        self.write_batch(requests).await
    }

    pub async fn put<R: Record>(&self, record: &R, write: Write) -> Result<()> {
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(record)?));
        if let Some(condition) = write_condition(write) {
            request = request.condition_expression(condition);
        }
        request.send().await.map_err(dynamo_error).map_err(|e| {
            conflict_as(e, || {
                let key = record.key();
                match write {
                    Write::Create => format!("{} {} already exists", R::KIND, key.sk),
                    _ => format!("{} {} does not exist", R::KIND, key.sk),
                }
            })
        })?;
        Ok(())
    }

    pub async fn delete(&self, key: &Key) -> Result<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_item(key)))
            .send()
            .await
            .map_err(dynamo_error)?;
        Ok(())
    }

    /// One page of a Query, decoded; expired items are left out.
    pub async fn query<R: Record>(&self, query: &KeyQuery, page: PageRequest) -> Result<Page<R>> {
        let (items, next) = self.query_raw(query, &page, false).await?;
        let items = items
            .into_iter()
            .filter(|item| !self.is_expired(item))
            .map(from_item)
            .collect::<Result<Vec<R>>>()?;
        Ok(Page { items, next })
    }

    /// Every page of a Query.
    pub async fn query_all<R: Record>(&self, query: &KeyQuery) -> Result<Vec<R>> {
        self.query_all_items(query, false).await
    }

    /// Every item a Query matches as stored, expired or not: for delete paths.
    pub async fn query_all_stored<R: Record>(&self, query: &KeyQuery) -> Result<Vec<R>> {
        self.query_all_items(query, true).await
    }

    async fn query_all_items<R: Record>(
        &self,
        query: &KeyQuery,
        include_expired: bool,
    ) -> Result<Vec<R>> {
        let mut all = Vec::new();
        let mut page = PageRequest::default();
        loop {
            let (items, next) = self.query_raw(query, &page, false).await?;
            for item in items {
                if include_expired || !self.is_expired(&item) {
                    all.push(from_item(item)?);
                }
            }
            match next {
                Some(cursor) => page.after = Some(cursor),
                None => return Ok(all),
            }
        }
    }

    /// One page of the table keys a Query matches, expired items included: what delete paths need.
    pub async fn query_keys(&self, query: &KeyQuery, page: PageRequest) -> Result<Page<Key>> {
        let (items, next) = self.query_raw(query, &page, true).await?;
        let keys = items.iter().map(item_key).collect::<Result<Vec<_>>>()?;
        Ok(Page { items: keys, next })
    }

    async fn query_raw(
        &self,
        query: &KeyQuery,
        page: &PageRequest,
        keys_only: bool,
    ) -> Result<(Vec<Item>, Option<Cursor>)> {
        let (pk_name, sk_name) = match query.index {
            Some(index) => index.attributes(),
            None => (keys::PK, keys::SK),
        };
        let mut condition = "#pk = :pk".to_owned();
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .expression_attribute_names("#pk", pk_name)
            .expression_attribute_values(":pk", AttributeValue::S(query.pk.clone()))
            .scan_index_forward(!page.backwards)
            .set_limit(page.limit)
            .set_exclusive_start_key(page.after.as_ref().map(Cursor::decode).transpose()?);
        match &query.sk {
            SortKey::Any => {}
            SortKey::BeginsWith(prefix) => {
                condition.push_str(" AND begins_with(#sk, :sk)");
                request = request
                    .expression_attribute_names("#sk", sk_name)
                    .expression_attribute_values(":sk", AttributeValue::S(prefix.clone()));
            }
            SortKey::Before(bound) => {
                condition.push_str(" AND #sk < :sk");
                request = request
                    .expression_attribute_names("#sk", sk_name)
                    .expression_attribute_values(":sk", AttributeValue::S(bound.clone()));
            }
        }
        match query.index {
            Some(index) => request = request.index_name(index.name()),
            None => request = request.consistent_read(true),
        }
        if keys_only {
            request = request
                .projection_expression("#tpk, #tsk")
                .expression_attribute_names("#tpk", keys::PK)
                .expression_attribute_names("#tsk", keys::SK);
        }
        let out = request
            .key_condition_expression(condition)
            .send()
            .await
            .map_err(dynamo_error)?;
        let next = out
            .last_evaluated_key
            .as_ref()
            .map(Cursor::encode)
            .transpose()?;
        Ok((out.items.unwrap_or_default(), next))
    }

    /// Every key a Query matches, all pages.
    pub async fn query_all_keys(&self, query: &KeyQuery) -> Result<Vec<Key>> {
        let mut all = Vec::new();
        let mut page = PageRequest::default();
        loop {
            let Page { items, next } = self.query_keys(query, page.clone()).await?;
            all.extend(items);
            match next {
                Some(cursor) => page.after = Some(cursor),
                None => return Ok(all),
            }
        }
    }

    /// Deletes many items with BatchWriteItem, 25 per call, retrying unprocessed ones. Returns how many
    /// deletes were carried out and how many calls it took.
    pub async fn delete_many(&self, keys: &[Key]) -> Result<BatchOutcome> {
        let requests = keys
            .iter()
            .map(|key| {
                WriteRequest::builder()
                    .delete_request(
                        DeleteRequest::builder()
                            .set_key(Some(key_item(key)))
                            .build()
                            .expect("key is set"),
                    )
                    .build()
            })
            .collect();
        self.write_batch(requests).await
    }

    async fn write_batch(&self, requests: Vec<WriteRequest>) -> Result<BatchOutcome> {
        let mut outcome = BatchOutcome::default();
        let mut requests = requests.into_iter().peekable();
        while requests.peek().is_some() {
            let mut pending: Vec<WriteRequest> =
                requests.by_ref().take(BATCH_WRITE_LIMIT).collect();
            let mut attempt = 0u32;
            while !pending.is_empty() {
                if attempt > 0 {
                    tokio::time::sleep(backoff(attempt)).await;
                }
                if attempt >= 8 {
                    return Err(StoreError::Unavailable(format!(
                        "{} writes still unprocessed after {attempt} attempts",
                        pending.len()
                    )));
                }
                attempt += 1;
                let sent = pending.len();
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, std::mem::take(&mut pending))
                    .send()
                    .await
                    .map_err(dynamo_error)?;
                outcome.calls += 1;
                pending = out
                    .unprocessed_items
                    .and_then(|mut m| m.remove(&self.table))
                    .unwrap_or_default();
                outcome.written += sent - pending.len();
            }
        }
        Ok(outcome)
    }

    fn is_expired(&self, item: &Item) -> bool {
        let now = self.clock.now().unix_timestamp();
        item.get(keys::TTL)
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<i64>().ok())
            .is_some_and(|expires| expires <= now)
    }

    async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
        conflict: impl Fn(usize) -> String,
    ) -> Result<()> {
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(err) => {
                if let Some(aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(
                    cancelled,
                )) = err.as_service_error()
                {
                    let failed = cancelled
                        .cancellation_reasons()
                        .iter()
                        .position(|r| r.code() == Some("ConditionalCheckFailed"));
                    if let Some(index) = failed {
                        return Err(StoreError::Conflict(conflict(index)));
                    }
                }
                Err(dynamo_error(err))
            }
        }
    }

    // --- tenants ---------------------------------------------------------------------------------

    pub async fn create_tenant(&self, tenant: &Tenant) -> Result<()> {
        self.put(tenant, Write::Create).await
    }

    pub async fn get_tenant(&self, tenant_id: &str) -> Result<Option<Tenant>> {
        self.get(&keys::tenant(tenant_id)).await
    }

    /// Loads a tenant or says which one is missing.
    pub async fn require_tenant(&self, tenant_id: &str) -> Result<Tenant> {
        self.get_tenant(tenant_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("tenant {tenant_id}")))
    }

    /// A tenant as stored, even past its expiry (a terminated tenant the sweep has not finished).
    pub async fn require_tenant_stored(&self, tenant_id: &str) -> Result<Tenant> {
        self.get_stored(&keys::tenant(tenant_id))
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("tenant {tenant_id}")))
    }

    pub async fn save_tenant(&self, tenant: &Tenant) -> Result<()> {
        self.put(tenant, Write::Replace).await
    }

    pub async fn list_tenants(&self, page: PageRequest) -> Result<Page<Tenant>> {
        self.query(&keys::all_tenants(), page).await
    }

    /// A page of tenants as stored, including terminated ones past their expiry that the sweep has not
    /// finished with.
    pub async fn list_tenants_stored(&self, page: PageRequest) -> Result<Page<Tenant>> {
        let (items, next) = self.query_raw(&keys::all_tenants(), &page, false).await?;
        let items = items
            .into_iter()
            .map(from_item)
            .collect::<Result<Vec<_>>>()?;
        Ok(Page { items, next })
    }

    pub async fn list_tenants_all(&self) -> Result<Vec<Tenant>> {
        self.query_all(&keys::all_tenants()).await
    }

    // --- channels and routes ---------------------------------------------------------------------

    /// Stores a new channel and claims its platform account in one transaction: an account belongs to
    /// one channel at a time, so of two concurrent connects of one account exactly one succeeds.
    pub async fn connect_channel(&self, channel: &Channel) -> Result<()> {
        let route = Route {
            platform: channel.platform,
            account_id: channel.account_id.clone(),
            tenant_id: channel.tenant_id.clone(),
            channel_id: channel.channel_id.clone(),
        };
        let must_not_exist = write_condition(Write::Create).expect("create has a condition");
        let put = |item: Item| {
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(&self.table)
                        .set_item(Some(item))
                        .condition_expression(must_not_exist)
                        .build()
                        .expect("table and item are set"),
                )
                .build()
        };
        self.transact(
            vec![put(to_item(channel)?), put(to_item(&route)?)],
            |index| match index {
                0 => format!("channel {} already exists", channel.channel_id),
                _ => format!(
                    "{} account {} is already connected",
                    channel.platform, channel.account_id
                ),
            },
        )
        .await
    }

    pub async fn get_channel(&self, tenant_id: &str, channel_id: &str) -> Result<Option<Channel>> {
        self.get(&keys::channel(tenant_id, channel_id)).await
    }

    pub async fn require_channel(&self, tenant_id: &str, channel_id: &str) -> Result<Channel> {
        self.get_channel(tenant_id, channel_id)
            .await?
            .ok_or_else(|| {
                StoreError::NotFound(format!("channel {channel_id} of tenant {tenant_id}"))
            })
    }

    pub async fn channels_of_tenant(&self, tenant_id: &str) -> Result<Vec<Channel>> {
        self.query_all(&keys::channels_of_tenant(tenant_id)).await
    }

    /// Channels a Meta user connected, across tenants (eventually consistent index).
    pub async fn channels_of_meta_user(&self, meta_user_id: &str) -> Result<Vec<Channel>> {
        self.query_all(&keys::channels_of_meta_user(meta_user_id))
            .await
    }

    /// Which tenant and channel own a platform account, if it is connected.
    pub async fn route(&self, platform: Platform, account_id: &str) -> Result<Option<Route>> {
        self.get(&keys::route(platform, account_id)).await
    }

    /// Disconnects a channel: in one transaction the wrapped credentials are removed from the item (the
    /// token is destroyed: nothing can decrypt it any more), the channel is marked disconnected with its
    /// deletion deadline, and the route is deleted so webhooks for the account ingest nothing.
    pub async fn disconnect_channel(
        &self,
        tenant_id: &str,
        channel_id: &str,
        at: OffsetDateTime,
        delete_data_by: OffsetDateTime,
    ) -> Result<Channel> {
        let channel: Channel = self
            .get_stored(&keys::channel(tenant_id, channel_id))
            .await?
            .ok_or_else(|| {
                StoreError::NotFound(format!("channel {channel_id} of tenant {tenant_id}"))
            })?;
        if channel.status == ChannelStatus::Disconnected {
            return Err(StoreError::Conflict(format!(
                "channel {channel_id} is already disconnected"
            )));
        }
        let channel_key = keys::channel(tenant_id, channel_id);
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key_item(&channel_key)))
            .update_expression("SET #status = :disconnected, disconnected_at = :at, retain_until = :until, #ttl = :ttl REMOVE credentials")
            .condition_expression("attribute_exists(#pk) AND #status <> :disconnected")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#ttl", keys::TTL)
            .expression_attribute_names("#pk", keys::PK)
            .expression_attribute_values(":disconnected", AttributeValue::S(ChannelStatus::Disconnected.as_str().into()))
            .expression_attribute_values(":at", timestamp_value(at))
            .expression_attribute_values(":until", timestamp_value(delete_data_by))
            .expression_attribute_values(":ttl", AttributeValue::N(delete_data_by.unix_timestamp().to_string()))
            .build()
            .expect("required fields are set");
        let delete_route = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key_item(&keys::route(
                channel.platform,
                &channel.account_id,
            ))))
            .condition_expression("attribute_not_exists(#pk) OR channel_id = :channel")
            .expression_attribute_names("#pk", keys::PK)
            .expression_attribute_values(":channel", AttributeValue::S(channel_id.into()))
            .build()
            .expect("required fields are set");
        self.transact(
            vec![
                TransactWriteItem::builder().update(update).build(),
                TransactWriteItem::builder().delete(delete_route).build(),
            ],
            |index| match index {
                0 => format!("channel {channel_id} is already disconnected"),
                _ => format!("the route of channel {channel_id} belongs to another channel"),
            },
        )
        .await?;
        // As stored: a deadline already past (a late disconnect) must not hide the result.
        self.get_stored(&channel_key).await?.ok_or_else(|| {
            StoreError::NotFound(format!("channel {channel_id} of tenant {tenant_id}"))
        })
    }

    /// Flags a connected channel whose token the platform rejected. Returns false if it was not connected.
    pub async fn mark_channel_needs_reauth(
        &self,
        tenant_id: &str,
        channel_id: &str,
    ) -> Result<bool> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_item(&keys::channel(tenant_id, channel_id))))
            .update_expression("SET #status = :reauth")
            .condition_expression("#status = :connected")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(
                ":reauth",
                AttributeValue::S(ChannelStatus::NeedsReauth.as_str().into()),
            )
            .expression_attribute_values(
                ":connected",
                AttributeValue::S(ChannelStatus::Connected.as_str().into()),
            )
            .send()
            .await
            .map_err(dynamo_error);
        match result {
            Ok(_) => Ok(true),
            Err(StoreError::Conflict(_)) => Ok(false),
            Err(other) => Err(other),
        }
    }

    // --- contacts, conversations, messages -------------------------------------------------------

    pub async fn save_contact(&self, contact: &Contact) -> Result<()> {
        self.put(contact, Write::Upsert).await
    }

    pub async fn get_contact(
        &self,
        tenant_id: &str,
        platform: Platform,
        user_id: &str,
    ) -> Result<Option<Contact>> {
        self.get(&keys::contact(tenant_id, platform, user_id)).await
    }

    pub async fn save_conversation(&self, conversation: &Conversation) -> Result<()> {
        self.put(conversation, Write::Upsert).await
    }

    pub async fn get_conversation(
        &self,
        tenant_id: &str,
        channel_id: &str,
        conversation_id: &str,
    ) -> Result<Option<Conversation>> {
        self.get(&keys::conversation(tenant_id, channel_id, conversation_id))
            .await
    }

    pub async fn conversations_of_channel(
        &self,
        tenant_id: &str,
        channel_id: &str,
    ) -> Result<Vec<Conversation>> {
        self.query_all(&keys::conversations_of_channel(tenant_id, channel_id))
            .await
    }

    /// Hands a conversation to a human (with a machine reason) or back to the bot.
    pub async fn set_conversation_mode(
        &self,
        tenant_id: &str,
        channel_id: &str,
        conversation_id: &str,
        mode: ConversationMode,
        reason: Option<&str>,
    ) -> Result<()> {
        let reason = reason.map_or(AttributeValue::Null(true), |r| AttributeValue::S(r.into()));
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_item(&keys::conversation(
                tenant_id,
                channel_id,
                conversation_id,
            ))))
            .update_expression("SET #mode = :mode, handoff_reason = :reason")
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#mode", "mode")
            .expression_attribute_names("#pk", keys::PK)
            .expression_attribute_values(":mode", AttributeValue::S(mode.as_str().into()))
            .expression_attribute_values(":reason", reason)
            .send()
            .await
            .map_err(dynamo_error)
            .map_err(|e| conflict_as(e, || format!("conversation {conversation_id}")))
            .map_err(|e| match e {
                StoreError::Conflict(what) => StoreError::NotFound(what),
                other => other,
            })?;
        Ok(())
    }

    /// Stores a message once: false if one with the same key was already stored.
    pub async fn insert_message(&self, message: &Message) -> Result<bool> {
        match self.put(message, Write::Create).await {
            Ok(()) => Ok(true),
            Err(StoreError::Conflict(_)) => Ok(false),
            Err(other) => Err(other),
        }
    }

    /// The newest `limit` messages of a conversation, oldest first.
    pub async fn recent_messages(
        &self,
        tenant_id: &str,
        conversation_id: &str,
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
        tenant_id: &str,
        conversation_id: &str,
    ) -> Result<Vec<Message>> {
        self.query_all(&keys::messages_of_conversation(tenant_id, conversation_id))
            .await
    }

    pub async fn record_sent(&self, marker: &SentMarker) -> Result<()> {
        self.put(marker, Write::Upsert).await
    }

    pub async fn sent_marker(
        &self,
        tenant_id: &str,
        conversation_id: &str,
        message_id: &str,
    ) -> Result<Option<SentMarker>> {
        self.get(&keys::sent_marker(tenant_id, conversation_id, message_id))
            .await
    }

    /// Records what ai-reply did about an inbound message. A message erased meanwhile stays erased.
    pub async fn set_reply_outcome(
        &self,
        tenant_id: &str,
        conversation_id: &str,
        sent_at: OffsetDateTime,
        message_id: &str,
        outcome: ReplyOutcome,
        error_code: Option<i64>,
    ) -> Result<()> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_item(&keys::message(
                tenant_id,
                conversation_id,
                sent_at,
                message_id,
            ))))
            .update_expression(if error_code.is_some() {
                "SET reply_outcome = :outcome, error_code = :code"
            } else {
                "SET reply_outcome = :outcome"
            })
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", keys::PK)
            .expression_attribute_values(":outcome", AttributeValue::S(outcome.as_str().into()));
        if let Some(code) = error_code {
            update =
                update.expression_attribute_values(":code", AttributeValue::N(code.to_string()));
        }
        match update.send().await.map_err(dynamo_error) {
            Ok(_) | Err(StoreError::Conflict(_)) => Ok(()),
            Err(other) => Err(other),
        }
    }

    // --- drafts ----------------------------------------------------------------------------------

    pub async fn create_draft(&self, draft: &Draft) -> Result<()> {
        self.put(draft, Write::Create).await
    }

    pub async fn get_draft(
        &self,
        tenant_id: &str,
        conversation_id: &str,
        draft_id: &str,
    ) -> Result<Option<Draft>> {
        self.get(&keys::draft(tenant_id, conversation_id, draft_id))
            .await
    }

    pub async fn drafts_of_conversation(
        &self,
        tenant_id: &str,
        conversation_id: &str,
    ) -> Result<Vec<Draft>> {
        self.query_all(&keys::drafts_of_conversation(tenant_id, conversation_id))
            .await
    }

    /// Pending drafts of a tenant, oldest first.
    pub async fn pending_drafts(&self, tenant_id: &str) -> Result<Vec<Draft>> {
        self.query_all(&keys::pending_drafts(tenant_id)).await
    }

    /// Moves a pending draft to `status`, once: a second decision is a conflict. The draft leaves the
    /// pending index.
    pub async fn decide_draft(
        &self,
        tenant_id: &str,
        conversation_id: &str,
        draft_id: &str,
        status: DraftStatus,
        at: OffsetDateTime,
    ) -> Result<Draft> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_item(&keys::draft(
                tenant_id,
                conversation_id,
                draft_id,
            ))))
            .update_expression("SET #status = :status, decided_at = :at REMOVE #g1pk, #g1sk")
            .condition_expression("#status = :pending")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#g1pk", keys::GSI1_PK)
            .expression_attribute_names("#g1sk", keys::GSI1_SK)
            .expression_attribute_values(":status", AttributeValue::S(status.as_str().into()))
            .expression_attribute_values(
                ":pending",
                AttributeValue::S(DraftStatus::Pending.as_str().into()),
            )
            .expression_attribute_values(":at", timestamp_value(at))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
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
        tenant_id: &str,
        conversation_id: &str,
        draft_id: &str,
    ) -> Result<()> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_item(&keys::draft(
                tenant_id,
                conversation_id,
                draft_id,
            ))))
            .update_expression("SET #status = :sent")
            .condition_expression("#status = :approved")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(
                ":sent",
                AttributeValue::S(DraftStatus::Sent.as_str().into()),
            )
            .expression_attribute_values(
                ":approved",
                AttributeValue::S(DraftStatus::Approved.as_str().into()),
            )
            .send()
            .await
            .map_err(dynamo_error)
            .map_err(|e| conflict_as(e, || format!("draft {draft_id} is not approved")))?;
        Ok(())
    }

    // --- knowledge and usage ---------------------------------------------------------------------

    pub async fn add_knowledge(&self, entry: &KnowledgeEntry) -> Result<()> {
        self.put(entry, Write::Create).await
    }

    pub async fn knowledge_of_tenant(&self, tenant_id: &str) -> Result<Vec<KnowledgeEntry>> {
        self.query_all(&keys::knowledge_of_tenant(tenant_id)).await
    }

    /// Adds to a channel's usage in `month` atomically (concurrent replies never lose a count).
    pub async fn add_usage(
        &self,
        tenant_id: &str,
        channel_id: &str,
        month: &str,
        delta: UsageDelta,
    ) -> Result<()> {
        let key = keys::usage(tenant_id, month, channel_id);
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
        let adds: Vec<String> = counters
            .iter()
            .map(|(name, _)| format!("{name} :{name}"))
            .collect();
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_item(&key)))
            .update_expression(format!(
                "ADD {} SET tenant_id = :tenant, channel_id = :channel, #month = :month, #kind = :kind, #ttl = if_not_exists(#ttl, :ttl)",
                adds.join(", ")
            ))
            .expression_attribute_names("#month", "month")
            .expression_attribute_names("#kind", keys::KIND)
            .expression_attribute_names("#ttl", keys::TTL)
            .expression_attribute_values(":tenant", AttributeValue::S(tenant_id.into()))
            .expression_attribute_values(":channel", AttributeValue::S(channel_id.into()))
            .expression_attribute_values(":month", AttributeValue::S(month.into()))
            .expression_attribute_values(":kind", AttributeValue::S(<Usage as Record>::KIND.into()))
            .expression_attribute_values(":ttl", AttributeValue::N(expires.unix_timestamp().to_string()));
        for (name, value) in counters {
            update = update.expression_attribute_values(
                format!(":{name}"),
                AttributeValue::N(value.to_string()),
            );
        }
        update.send().await.map_err(dynamo_error)?;
        Ok(())
    }

    pub async fn usage_of_month(&self, tenant_id: &str, month: &str) -> Result<Vec<Usage>> {
        self.query_all(&keys::usage_of_month(tenant_id, month))
            .await
    }

    // --- deletion requests and audit -------------------------------------------------------------

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
        let must_not_exist = write_condition(Write::Create).expect("create has a condition");
        let put = |item: Item| {
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(&self.table)
                        .set_item(Some(item))
                        .condition_expression(must_not_exist)
                        .build()
                        .expect("table and item are set"),
                )
                .build()
        };
        match self
            .transact(vec![put(to_item(request)?), put(to_item(&replay)?)], |_| {
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
        counts: &std::collections::BTreeMap<String, u64>,
    ) -> Result<()> {
        let counts: Vec<(&String, &u64)> = counts.iter().filter(|(_, n)| **n > 0).collect();
        if counts.is_empty() {
            return Ok(());
        }
        let mut sets = Vec::new();
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_item(&keys::deletion_request(confirmation_code))))
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", keys::PK)
            .expression_attribute_names("#deleted", "deleted")
            .expression_attribute_values(":zero", AttributeValue::N("0".into()));
        for (i, (kind, n)) in counts.into_iter().enumerate() {
            sets.push(format!(
                "#deleted.#k{i} = if_not_exists(#deleted.#k{i}, :zero) + :n{i}"
            ));
            update = update
                .expression_attribute_names(format!("#k{i}"), kind.as_str())
                .expression_attribute_values(format!(":n{i}"), AttributeValue::N(n.to_string()));
        }
        update
            .update_expression(format!("SET {}", sets.join(", ")))
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

    pub async fn audit_events(&self, tenant_id: Option<&str>) -> Result<Vec<AuditEvent>> {
        self.query_all(&keys::audit_events(tenant_id)).await
    }
}

/// What a batch write did: requests carried out and calls made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Requests carried out (deletes or puts).
    pub written: usize,
    pub calls: usize,
}

fn write_condition(write: Write) -> Option<&'static str> {
    match write {
        Write::Upsert => None,
        Write::Create => Some("attribute_not_exists(pk)"),
        Write::Replace => Some("attribute_exists(pk)"),
    }
}

/// The item of a record: its fields, plus keys, index entries, expiry and kind from [`Record`].
pub fn to_item<R: Record>(record: &R) -> Result<Item> {
    let mut item: Item = serde_dynamo::to_item(record)
        .map_err(|e| StoreError::Corrupt(format!("{}: {e}", R::KIND)))?;
    let key = record.key();
    item.insert(keys::PK.into(), AttributeValue::S(key.pk));
    item.insert(keys::SK.into(), AttributeValue::S(key.sk));
    for entry in record.index_entries() {
        let (pk, sk) = entry.index.attributes();
        item.insert(pk.into(), AttributeValue::S(entry.pk));
        item.insert(sk.into(), AttributeValue::S(entry.sk));
    }
    if let Some(expires) = record.expires_at() {
        item.insert(
            keys::TTL.into(),
            AttributeValue::N(expires.unix_timestamp().to_string()),
        );
    }
    item.insert(keys::KIND.into(), AttributeValue::S(R::KIND.into()));
    Ok(item)
}

pub fn from_item<R: Record>(item: Item) -> Result<R> {
    serde_dynamo::from_item(item).map_err(|e| StoreError::Corrupt(format!("{}: {e}", R::KIND)))
}

pub fn key_item(key: &Key) -> Item {
    HashMap::from([
        (keys::PK.to_owned(), AttributeValue::S(key.pk.clone())),
        (keys::SK.to_owned(), AttributeValue::S(key.sk.clone())),
    ])
}

fn item_key(item: &Item) -> Result<Key> {
    let get = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .ok_or_else(|| StoreError::Corrupt(format!("item without a string {name}")))
    };
    Ok(Key {
        pk: get(keys::PK)?,
        sk: get(keys::SK)?,
    })
}

fn timestamp_value(at: OffsetDateTime) -> AttributeValue {
    AttributeValue::S(
        at.format(&time::format_description::well_known::Rfc3339)
            .expect("a UTC time formats as RFC 3339"),
    )
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(25u64 << attempt.min(6))
}

/// Replaces a conflict's message with one that says what conflicted.
fn conflict_as(err: StoreError, what: impl FnOnce() -> String) -> StoreError {
    match err {
        StoreError::Conflict(_) => StoreError::Conflict(what()),
        other => other,
    }
}

/// Classifies an SDK error: conditional-check failures are conflicts; throttling, timeouts and 5xx are
/// retryable; the rest are permanent.
pub(crate) fn dynamo_error<E, R>(err: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let code = err.code().map(str::to_owned);
    let message = err.message().map(str::to_owned);
    let describe = |code: &Option<String>| match (code, &message) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.clone(),
        _ => format!("{}", aws_sdk_dynamodb::error::DisplayErrorContext(&err)),
    };
    match code.as_deref() {
        Some("ConditionalCheckFailedException") => StoreError::Conflict("condition failed".into()),
        Some(
            "ProvisionedThroughputExceededException"
            | "ThrottlingException"
            | "RequestLimitExceeded"
            | "InternalServerError"
            | "ServiceUnavailable"
            | "TransactionConflictException"
            | "TransactionInProgressException",
        ) => StoreError::Unavailable(describe(&code)),
        Some(_) => StoreError::Rejected(describe(&code)),
        None => match err {
            SdkError::TimeoutError(_)
            | SdkError::DispatchFailure(_)
            | SdkError::ResponseError(_) => StoreError::Unavailable(describe(&code)),
            _ => StoreError::Rejected(describe(&code)),
        },
    }
}

/// What an inbound item changes on its conversation.
#[derive(Debug, Clone)]
pub struct ConversationTouch<'a> {
    pub conversation_id: &'a str,
    pub channel_id: &'a str,
    pub platform: Platform,
    pub user_id: &'a str,
    /// Set for a customer's message.
    pub last_inbound_at: Option<OffsetDateTime>,
    /// Set when a person on the business side replied from the platform's own inbox.
    pub hand_to_human: Option<&'a str>,
    pub retain_until: OffsetDateTime,
}

/// The outcome of [`Store::ingest_message`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingested {
    /// First delivery: stored.
    Stored,
    /// Stored before; `answered` says whether ai-reply has recorded what it did about it.
    Duplicate { answered: bool },
}

impl Store {
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
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(message)?))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .expect("table and item are set");
        let s = |v: &str| AttributeValue::S(v.to_owned());
        let conversation_key = keys::conversation(
            &message.tenant_id,
            conversation.channel_id,
            conversation.conversation_id,
        );
        let mut set = vec![
            "tenant_id = :tenant",
            "conversation_id = :conv",
            "channel_id = :channel",
            "platform = :platform",
            "user_id = :user",
            "#mode = if_not_exists(#mode, :bot)",
            "created_at = if_not_exists(created_at, :now)",
            "retain_until = :retain",
            "#ttl = :ttl",
            "#kind = :kind",
        ];
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key_item(&conversation_key)))
            .expression_attribute_names("#mode", "mode")
            .expression_attribute_names("#ttl", keys::TTL)
            .expression_attribute_names("#kind", keys::KIND)
            .expression_attribute_values(":tenant", s(&message.tenant_id))
            .expression_attribute_values(":conv", s(conversation.conversation_id))
            .expression_attribute_values(":channel", s(conversation.channel_id))
            .expression_attribute_values(":platform", s(conversation.platform.as_str()))
            .expression_attribute_values(":user", s(conversation.user_id))
            .expression_attribute_values(":bot", s(ConversationMode::Bot.as_str()))
            .expression_attribute_values(":now", timestamp_value(self.now()))
            .expression_attribute_values(":retain", timestamp_value(conversation.retain_until))
            .expression_attribute_values(
                ":ttl",
                AttributeValue::N(conversation.retain_until.unix_timestamp().to_string()),
            )
            .expression_attribute_values(":kind", s(<Conversation as Record>::KIND));
        if let Some(at) = conversation.last_inbound_at {
            set.push("last_inbound_at = :inbound");
            update = update.expression_attribute_values(":inbound", timestamp_value(at));
        }
        if let Some(reason) = conversation.hand_to_human {
            set.push("#mode = :human");
            set.push("handoff_reason = :reason");
            set.retain(|clause| !clause.starts_with("#mode = if_not_exists"));
            update = update
                .expression_attribute_values(":human", s(ConversationMode::Human.as_str()))
                .expression_attribute_values(":reason", s(reason));
        }
        let update = update
            .update_expression(format!("SET {}", set.join(", ")))
            .build()
            .expect("key and expression are set");

        let mut items = vec![
            TransactWriteItem::builder().put(put).build(),
            TransactWriteItem::builder().update(update).build(),
        ];
        if message.direction == Direction::Inbound {
            let contact_key = keys::contact(
                &message.tenant_id,
                conversation.platform,
                conversation.user_id,
            );
            let mut contact_set = vec![
                "tenant_id = :tenant",
                "platform = :platform",
                "user_id = :user",
                "first_seen_at = if_not_exists(first_seen_at, :seen)",
                "last_seen_at = :seen",
                "retain_until = :retain",
                "#ttl = :ttl",
                "#kind = :kind",
            ];
            let mut contact = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key_item(&contact_key)))
                .expression_attribute_names("#ttl", keys::TTL)
                .expression_attribute_names("#kind", keys::KIND)
                .expression_attribute_values(":tenant", s(&message.tenant_id))
                .expression_attribute_values(":platform", s(conversation.platform.as_str()))
                .expression_attribute_values(":user", s(conversation.user_id))
                .expression_attribute_values(":seen", timestamp_value(message.sent_at))
                .expression_attribute_values(":retain", timestamp_value(conversation.retain_until))
                .expression_attribute_values(
                    ":ttl",
                    AttributeValue::N(conversation.retain_until.unix_timestamp().to_string()),
                )
                .expression_attribute_values(":kind", s(<Contact as Record>::KIND));
            if let Some(name) = profile_name {
                contact_set.push("profile_name = :name");
                contact = contact.expression_attribute_values(":name", s(name.expose()));
            }
            let contact = contact
                .update_expression(format!("SET {}", contact_set.join(", ")))
                .build()
                .expect("fields are set");
            items.push(TransactWriteItem::builder().update(contact).build());
        }
        match self.transact(items, |_| "duplicate".into()).await {
            Ok(()) => Ok(Ingested::Stored),
            Err(StoreError::Conflict(_)) => {
                let stored: Option<Message> = self.get(&message.key()).await?;
                Ok(Ingested::Duplicate {
                    answered: stored.is_some_and(|m| m.reply_outcome.is_some()),
                })
            }
            Err(other) => Err(other),
        }
    }

    /// Moves our sent message to a newer delivery status, never backwards (a `delivered` arriving after
    /// `read` is ignored). Returns false when the message is unknown or the status is not newer.
    pub async fn advance_message_status(
        &self,
        tenant_id: &str,
        conversation_id: &str,
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
        let placeholders: Vec<String> = (0..older.len()).map(|i| format!(":s{i}")).collect();
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_item(&marker.message_key())))
            .condition_expression(format!(
                "attribute_exists(#pk) AND #status IN ({})",
                placeholders.join(", ")
            ))
            .expression_attribute_names("#pk", keys::PK)
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":status", AttributeValue::S(status.as_str().into()));
        for (placeholder, s) in placeholders.iter().zip(&older) {
            request = request
                .expression_attribute_values(placeholder, AttributeValue::S(s.as_str().into()));
        }
        request = match error_code {
            Some(code) => request
                .update_expression("SET #status = :status, error_code = :code")
                .expression_attribute_values(":code", AttributeValue::N(code.to_string())),
            None => request.update_expression("SET #status = :status"),
        };
        match request.send().await.map_err(dynamo_error) {
            Ok(_) => Ok(true),
            Err(StoreError::Conflict(_)) => Ok(false),
            Err(other) => Err(other),
        }
    }
}
