//! The generic table layer: reads, writes, queries and batches of any [`Record`], and the request
//! shapes (conditional updates, transaction items) the aggregates' typed operations are built from.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, DeleteRequest, Put, PutRequest, TransactWriteItem,
    Update, WriteRequest,
};
use time::OffsetDateTime;

use super::error::{Result, StoreError, conflict_as, dynamo_error};
use super::expr::{Expr, WithExpressions};
use super::page::{Cursor, Page, PageRequest};
use super::records::Record;
use crate::clock::SharedClock;
use crate::keys::{self, Key, KeyQuery, SortKey};

pub type Item = HashMap<String, AttributeValue>;

/// BatchWriteItem takes at most 25 requests (moto accepts more; AWS does not).
pub const BATCH_WRITE_LIMIT: usize = 25;
/// DynamoDB's limits: an item of at most 400 KB (names and values), a partition key of at most 2,048
/// bytes and a sort key of at most 1,024.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;
pub const MAX_PARTITION_KEY_BYTES: usize = 2048;
pub const MAX_SORT_KEY_BYTES: usize = 1024;

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

impl Write {
    /// The write's condition. Every item has a partition key, so testing it tests the item.
    fn expr(self) -> Expr {
        let mut expr = Expr::new();
        match self {
            Write::Upsert => {}
            Write::Create => {
                expr.require(|e| e.not_exists(keys::PK));
            }
            Write::Replace => {
                expr.require(|e| e.exists(keys::PK));
            }
        }
        expr
    }
}

/// What a batch write did: requests carried out and calls made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Requests carried out (deletes or puts).
    pub written: usize,
    pub calls: usize,
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

    pub(super) async fn get_item(&self, key: &Key) -> Result<Option<Item>> {
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

    /// Up to 100 items, of any kinds, in one strongly consistent BatchGetItem (keys DynamoDB leaves
    /// unprocessed under load are asked again): each in the order of `keys`, `None` if absent or
    /// expired.
    pub(super) async fn get_items(&self, keys: &[&Key]) -> Result<Vec<Option<Item>>> {
        let mut wanted = aws_sdk_dynamodb::types::KeysAndAttributes::builder()
            .set_keys(Some(keys.iter().map(|key| key_item(key)).collect()))
            .consistent_read(true)
            .build()
            .expect("keys are set");
        let mut found: Vec<Item> = Vec::new();
        loop {
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, wanted)
                .send()
                .await
                .map_err(dynamo_error)?;
            found.extend(
                out.responses
                    .and_then(|mut r| r.remove(&self.table))
                    .unwrap_or_default(),
            );
            match out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)) {
                Some(rest) if !rest.keys().is_empty() => wanted = rest,
                _ => break,
            }
        }
        Ok(keys
            .iter()
            .map(|key| {
                found
                    .iter()
                    .find(|item| item_key(item).is_ok_and(|k| &k == *key))
                    .filter(|item| !self.is_expired(item))
                    .cloned()
            })
            .collect())
    }

    /// Writes many records with BatchWriteItem (unconditional puts), 25 per call.
    pub async fn put_many<R: Record>(&self, records: &[R]) -> Result<BatchOutcome> {
        let requests = records
            .iter()
            .map(|record| {
                Ok(WriteRequest::builder()
                    .put_request(
                        PutRequest::builder()
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
        self.put_if(record, write.expr()).await.map_err(|e| {
            conflict_as(e, || {
                let key = record.key();
                match write {
                    Write::Create => format!("{} {} already exists", R::KIND, key.sk),
                    _ => format!("{} {} does not exist", R::KIND, key.sk),
                }
            })
        })
    }

    /// Puts a record if the conditions of `expr` hold (a lost condition is a [`StoreError::Conflict`]).
    pub(super) async fn put_if<R: Record>(&self, record: &R, expr: Expr) -> Result<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(record)?))
            .expressions(expr)
            .send()
            .await
            .map_err(dynamo_error)?;
        Ok(())
    }

    pub async fn delete(&self, key: &Key) -> Result<()> {
        self.delete_if(key, Expr::new()).await
    }

    /// Deletes an item if the conditions of `expr` hold (a lost condition is a [`StoreError::Conflict`]).
    pub(super) async fn delete_if(&self, key: &Key, expr: Expr) -> Result<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_item(key)))
            .expressions(expr)
            .send()
            .await
            .map_err(dynamo_error)?;
        Ok(())
    }

    /// An UpdateItem of one item, ready to send.
    pub(super) fn update(&self, key: &Key, expr: Expr) -> UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_item(key)))
            .expressions(expr)
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
        self.query_all_unexpired(query, include_expired)
            .await?
            .into_iter()
            .map(from_item)
            .collect()
    }

    /// Every unexpired item a Query matches, undecoded: for items that are not one [`Record`] type.
    pub(super) async fn query_all_raw(&self, query: &KeyQuery) -> Result<Vec<Item>> {
        self.query_all_unexpired(query, false).await
    }

    async fn query_all_unexpired(
        &self,
        query: &KeyQuery,
        include_expired: bool,
    ) -> Result<Vec<Item>> {
        let mut items = self
            .query_request(query, false)
            .into_paginator()
            .items()
            .send();
        let mut all = Vec::new();
        while let Some(item) = items.try_next().await.map_err(dynamo_error)? {
            if include_expired || !self.is_expired(&item) {
                all.push(item);
            }
        }
        Ok(all)
    }

    /// One page of the table keys a Query matches, expired items included: what delete paths need.
    pub async fn query_keys(&self, query: &KeyQuery, page: PageRequest) -> Result<Page<Key>> {
        let (items, next) = self.query_raw(query, &page, true).await?;
        let keys = items.iter().map(item_key).collect::<Result<Vec<_>>>()?;
        Ok(Page { items: keys, next })
    }

    /// Every key a Query matches, all pages.
    pub async fn query_all_keys(&self, query: &KeyQuery) -> Result<Vec<Key>> {
        let items = self
            .query_request(query, true)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(dynamo_error)?;
        items.iter().map(item_key).collect()
    }

    /// One page of a Query as stored, and the cursor of the next page if there is one.
    pub(super) async fn query_raw(
        &self,
        query: &KeyQuery,
        page: &PageRequest,
        keys_only: bool,
    ) -> Result<(Vec<Item>, Option<Cursor>)> {
        let out = self
            .query_request(query, keys_only)
            .scan_index_forward(!page.backwards)
            .set_limit(page.limit)
            .set_exclusive_start_key(page.after.as_ref().map(Cursor::decode).transpose()?)
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

    /// A Query's key condition on the table or an index; `keys_only` projects the table keys.
    fn query_request(&self, query: &KeyQuery, keys_only: bool) -> QueryFluentBuilder {
        let (pk_name, sk_name) = match query.index {
            Some(index) => index.attributes(),
            None => (keys::PK, keys::SK),
        };
        let mut expr = Expr::new();
        expr.require(|e| e.eq(pk_name, string(&query.pk)));
        match &query.sk {
            SortKey::Any => {}
            SortKey::BeginsWith(prefix) => {
                expr.require(|e| e.begins_with(sk_name, string(prefix)));
            }
            SortKey::Before(bound) => {
                expr.require(|e| e.lt(sk_name, string(bound)));
            }
            SortKey::Between(first, last) => {
                expr.require(|e| e.between(sk_name, string(first), string(last)));
            }
        }
        let mut request = self.client.query().table_name(&self.table);
        if keys_only {
            let projection = format!("{}, {}", expr.name(keys::PK), expr.name(keys::SK));
            request = request.projection_expression(projection);
        }
        match query.index {
            Some(index) => request = request.index_name(index.name()),
            None => request = request.consistent_read(true),
        }
        request.expressions(expr)
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

    pub(super) fn is_expired(&self, item: &Item) -> bool {
        let now = self.clock.now().unix_timestamp();
        item.get(keys::TTL)
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<i64>().ok())
            .is_some_and(|expires| expires <= now)
    }

    /// A transaction's put of a new record: it fails the transaction if the key exists.
    pub(super) fn create_in_transaction<R: Record>(&self, record: &R) -> Result<TransactWriteItem> {
        self.put_in_transaction(record, Write::Create.expr())
    }

    /// A transaction's put of a whole record, if the conditions of `expr` hold.
    pub(super) fn put_in_transaction<R: Record>(
        &self,
        record: &R,
        expr: Expr,
    ) -> Result<TransactWriteItem> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(record)?))
            .expressions(expr)
            .build()
            .expect("table and item are set");
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// A transaction's update of one item.
    pub(super) fn update_in_transaction(&self, key: &Key, expr: Expr) -> TransactWriteItem {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key_item(key)))
            .expressions(expr)
            .build()
            .expect("table, key and update expression are set");
        TransactWriteItem::builder().update(update).build()
    }

    /// A transaction's condition on an item it does not write.
    pub(super) fn check_in_transaction(&self, key: &Key, expr: Expr) -> TransactWriteItem {
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key_item(key)))
            .expressions(expr)
            .build()
            .expect("table, key and condition are set");
        TransactWriteItem::builder().condition_check(check).build()
    }

    /// A transaction's delete of one item.
    pub(super) fn delete_in_transaction(&self, key: &Key, expr: Expr) -> TransactWriteItem {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key_item(key)))
            .expressions(expr)
            .build()
            .expect("table and key are set");
        TransactWriteItem::builder().delete(delete).build()
    }

    /// Runs a transaction. A failed condition is a [`StoreError::Conflict`] whose message `conflict`
    /// gives from the index of the item that failed.
    pub(super) async fn transact(
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
                    let reasons = cancelled.cancellation_reasons();
                    let failed = reasons
                        .iter()
                        .position(|r| r.code() == Some("ConditionalCheckFailed"));
                    if let Some(index) = failed {
                        return Err(StoreError::Conflict(conflict(index)));
                    }
                    // Cancelled by a concurrent write to one of its items, or by throttling: nothing
                    // was written, and the same transaction succeeds later.
                    if reasons.iter().any(|r| {
                        matches!(
                            r.code(),
                            Some(
                                "TransactionConflict"
                                    | "ThrottlingError"
                                    | "ProvisionedThroughputExceeded"
                                    | "RequestLimitExceeded"
                            )
                        )
                    }) {
                        return Err(StoreError::Unavailable(format!(
                            "transaction cancelled: {}",
                            reasons
                                .iter()
                                .filter_map(|r| r.code())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )));
                    }
                }
                Err(dynamo_error(err))
            }
        }
    }
}

/// The item of a record: its fields, plus keys, index entries, expiry and kind from [`Record`]. An item
/// DynamoDB would refuse whatever the retries is a [`StoreError::Unstorable`], before any request.
pub fn to_item<R: Record>(record: &R) -> Result<Item> {
    let mut item: Item = serde_dynamo::to_item(record)
        .map_err(|e| StoreError::Corrupt(format!("{}: {e}", R::KIND)))?;
    let key = record.key();
    if key.pk.len() > MAX_PARTITION_KEY_BYTES || key.sk.len() > MAX_SORT_KEY_BYTES {
        return Err(StoreError::Unstorable(format!(
            "a {} key of {} + {} bytes",
            R::KIND,
            key.pk.len(),
            key.sk.len()
        )));
    }
    item.insert(keys::PK.into(), AttributeValue::S(key.pk));
    item.insert(keys::SK.into(), AttributeValue::S(key.sk));
    for entry in record.index_entries() {
        let (pk, sk) = entry.index.attributes();
        item.insert(pk.into(), AttributeValue::S(entry.pk));
        item.insert(sk.into(), AttributeValue::S(entry.sk));
    }
    if let Some(expires) = record.expires_at() {
        item.insert(keys::TTL.into(), epoch_seconds(expires));
    }
    item.insert(keys::KIND.into(), AttributeValue::S(R::KIND.into()));
    let size = item_size(&item);
    if size > MAX_ITEM_BYTES {
        return Err(StoreError::Unstorable(format!(
            "a {} of {size} bytes",
            R::KIND
        )));
    }
    Ok(item)
}

/// An item's size as DynamoDB counts it (attribute names and values; numbers at their text length, an
/// upper bound of their stored size).
fn item_size(item: &Item) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + value_size(value))
        .sum()
}

fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) | AttributeValue::N(s) => s.len(),
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Ss(v) | AttributeValue::Ns(v) => v.iter().map(String::len).sum(),
        AttributeValue::Bs(v) => v.iter().map(|b| b.as_ref().len()).sum(),
        AttributeValue::L(v) => 3 + v.iter().map(|e| 1 + value_size(e)).sum::<usize>(),
        AttributeValue::M(m) => 3 + item_size(m) + m.len(),
        _ => 1,
    }
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

pub(super) fn string(value: impl AsRef<str>) -> AttributeValue {
    AttributeValue::S(value.as_ref().to_owned())
}

pub(super) fn number(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// A time as items store it: an RFC 3339 string.
pub(super) fn timestamp_value(at: OffsetDateTime) -> AttributeValue {
    AttributeValue::S(
        at.format(&time::format_description::well_known::Rfc3339)
            .expect("a UTC time formats as RFC 3339"),
    )
}

/// A time as the TTL attribute stores it: epoch seconds.
pub(super) fn epoch_seconds(at: OffsetDateTime) -> AttributeValue {
    number(at.unix_timestamp())
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(25u64 << attempt.min(6))
}
