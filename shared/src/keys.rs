//! Every key of the single table, and nothing else formats one.
//!
//! # Table layout
//! Table attributes: `pk`, `sk` (table key); `gsi1pk`/`gsi1sk` (index `gsi1`, all attributes projected);
//! `gsi2pk`/`gsi2sk` (index `gsi2`, keys only); `expires_at` (epoch seconds, the DynamoDB TTL attribute).
//! Ids we mint (tenant, channel, conversation, draft) never contain `#`; the one component that comes
//! from outside (a platform account id, user id or message id) is always the last one of its key, so no
//! two entities can produce the same key.
//!
//! | entity | pk | sk | gsi1 (pk / sk) | gsi2 (pk / sk) |
//! |---|---|---|---|---|
//! | tenant | `TENANT#{t}` | `TENANT` | `TENANTS` / `TENANT#{t}` | |
//! | channel | `TENANT#{t}` | `CHANNEL#{c}` | `METAUSER#{u}` / `TENANT#{t}#CHANNEL#{c}` (when connected by a Meta user) | |
//! | route | `ROUTE#{platform}#{account}` | `ROUTE` | | |
//! | contact | `TENANT#{t}` | `CONTACT#{platform}#{user}` | | |
//! | conversation | `TENANT#{t}` | `CONV#{c}#{conv}` | `TENANT#{t}#ACTIVITY` / `{last_activity_ms:013}#{c}#{conv}` | |
//! | message | `TENANT#{t}#CONV#{conv}` | `MSG#{sent_ms:013}#{message id}` | | `TENANT#{t}#CONTENT` / `{sent_ms:013}` |
//! | sent marker | `TENANT#{t}#CONV#{conv}` | `SENT#{message id}` | | `TENANT#{t}#CONTENT` / `{ms:013}` |
//! | draft | `TENANT#{t}#CONV#{conv}` | `DRAFT#{d}` | `TENANT#{t}#DRAFTS` / `{created_ms:013}#{d}` (pending only) | `TENANT#{t}#CONTENT` / `{created_ms:013}` |
//! | knowledge | `TENANT#{t}` | `KNOWLEDGE#{k}` | | |
//! | sweep's pending conversations | `TENANT#{t}` | `SWEEP_PENDING` | | |
//! | usage | `TENANT#{t}` | `USAGE#{YYYY-MM}#{c}` | | |
//! | daily figures | `TENANT#{t}` | `STATS#{YYYY-MM-DD}#{platform}` | | |
//! | audit event | `TENANT#{t}#AUDIT` or `SYSTEM#AUDIT` | `{at_ms:013}#{e}` | | |
//! | deletion request | `DELETION#{code}` | `REQUEST` | `DELETIONS#OPEN` / `{received_ms:013}#{code}` (until completed) | |
//! | deletion replay | `DELETION_REPLAY#{sha256(user, issued_at)}` | `REPLAY` | | |
//! | idempotency record | `TENANT#{t}#IDEM#{scope}#{key}` | `IDEM` | | |
//! | connect-link claim | `CONNECT_STATE#{nonce}` | `CLAIM` | | |
//!
//! # Access patterns
//! - **Tenant by id**: get [`tenant`]. **All tenants** (the daily sweep fan-out): query [`all_tenants`].
//! - **A tenant's channels, knowledge, usage, contacts**: query the tenant partition by sort-key prefix
//!   ([`channels_of_tenant`], [`knowledge_of_tenant`], [`usage_of_month`], [`usage_of_tenant`]).
//! - **A tenant's daily figures over a period** (the console's analytics): query [`stats_between`], one
//!   item per UTC day and platform, so a year is at most 1,460 small items in one paged Query.
//! - **Platform account → tenant** (every webhook): get [`route`]. A route exists only while its channel
//!   is connected, and a conditional put makes an account belong to one tenant at a time.
//! - **Meta user → channels** (deauthorize, data deletion): query [`channels_of_meta_user`] on `gsi1`.
//! - **Conversation by channel and platform user**: the conversation id is derived
//!   ([`conversation_id`]), so ingest gets [`conversation`] without a lookup. **Platform user →
//!   conversations**: for each of the tenant's channels on that platform, get [`conversation`] with the
//!   derived id (a tenant has a handful of channels). **A channel's conversations**: query
//!   [`conversations_of_channel`]; **a tenant's conversations** (terminated-tenant sweep): query
//!   [`conversations_of_tenant`].
//! - **A tenant's conversations, newest activity first** (the console's inbox list): query
//!   [`conversations_by_activity`] on `gsi1` backwards. Every conversation write that changes its
//!   activity (ingest of a message either way, an agent's reply from the console) moves the entry to
//!   `max(last_inbound_at, last_outbound_at)`; `gsi1` projects all attributes, so one Query reads a page.
//! - **A conversation in time order**: query [`messages_of_conversation`] (backwards for recent history);
//!   **its messages in a time range** (did the customer write in the 24 hours before this message?):
//!   query [`messages_between`].
//!   **Everything of a conversation** (erasure): query [`conversation_partition`]; its drafts (export):
//!   query [`drafts_of_conversation`].
//! - **Our sent message by platform id** (echo recognition, status receipts): get [`sent_marker`].
//! - **Pending drafts of a tenant**: query [`pending_drafts`] on `gsi1` (sparse: decided drafts leave it).
//! - **Expiry — content older than a cutoff** (retention): query [`content_older_than`] on `gsi2` (all of a
//!   terminated tenant's content: [`all_content`]);
//!   **audit events older than a cutoff**: query [`audit_older_than`]; **open deletion requests**: query
//!   [`open_deletions`] on `gsi1`. Every item also carries `expires_at`, so DynamoDB TTL removes it even
//!   if a sweep is missed, and reads treat an expired item as absent.
//! - **Deletion request by confirmation code**: get [`deletion_request`]; **replay of one signed
//!   request**: get [`deletion_replay`].
//! - **Idempotency record by scope and key** (webhook dedup, send-once): get/put [`idempotency`].
//! - **A connect link used once**: conditional put of [`connect_state_claim`] (the link's random nonce);
//!   the second put of one nonce fails, so a replayed link connects nothing.

use aws_lc_rs::digest;
use time::OffsetDateTime;

use crate::ids::{ChannelId, ConversationId, TenantId};
use crate::model::Platform;
use crate::secret::PlatformUserId;

pub const PK: &str = "pk";
pub const SK: &str = "sk";
pub const GSI1_PK: &str = "gsi1pk";
pub const GSI1_SK: &str = "gsi1sk";
pub const GSI2_PK: &str = "gsi2pk";
pub const GSI2_SK: &str = "gsi2sk";
/// The DynamoDB TTL attribute (epoch seconds).
pub const TTL: &str = "expires_at";
/// The entity-kind attribute, for people reading the table and for scans in tests.
pub const KIND: &str = "kind";

/// A secondary index of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Index {
    /// All attributes projected: tenant listing, Meta user → channels, pending drafts, open deletions,
    /// conversations by activity.
    Gsi1,
    /// Keys only: content by age within a tenant.
    Gsi2,
}

impl Index {
    pub fn name(self) -> &'static str {
        match self {
            Index::Gsi1 => "gsi1",
            Index::Gsi2 => "gsi2",
        }
    }

    /// (partition attribute, sort attribute) of this index.
    pub fn attributes(self) -> (&'static str, &'static str) {
        match self {
            Index::Gsi1 => (GSI1_PK, GSI1_SK),
            Index::Gsi2 => (GSI2_PK, GSI2_SK),
        }
    }
}

/// The primary key of one item.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

/// An item's entry in a secondary index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    pub index: Index,
    pub pk: String,
    pub sk: String,
}

/// The condition on the sort key of a Query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortKey {
    Any,
    BeginsWith(String),
    /// Strictly less than.
    Before(String),
    /// From the first to the second, both included.
    Between(String, String),
}

/// A Query on the table or one index: one partition, optionally narrowed by sort key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyQuery {
    pub index: Option<Index>,
    pub pk: String,
    pub sk: SortKey,
}

fn key(pk: String, sk: impl Into<String>) -> Key {
    Key { pk, sk: sk.into() }
}

fn in_partition(index: Option<Index>, pk: String, sk: SortKey) -> KeyQuery {
    KeyQuery { index, pk, sk }
}

/// Milliseconds since the epoch, zero-padded so that string order is time order (until year 2286).
pub fn sortable_millis(at: OffsetDateTime) -> String {
    let millis = (at.unix_timestamp_nanos() / 1_000_000).max(0);
    format!("{millis:013}")
}

fn tenant_pk(tenant_id: &TenantId) -> String {
    format!("TENANT#{tenant_id}")
}

// --- tenants -------------------------------------------------------------------------------------

pub fn tenant(tenant_id: &TenantId) -> Key {
    key(tenant_pk(tenant_id), "TENANT")
}

pub fn tenant_listing(tenant_id: &TenantId) -> IndexEntry {
    IndexEntry {
        index: Index::Gsi1,
        pk: "TENANTS".into(),
        sk: tenant_pk(tenant_id),
    }
}

pub fn all_tenants() -> KeyQuery {
    in_partition(Some(Index::Gsi1), "TENANTS".into(), SortKey::Any)
}

// --- channels and routing ------------------------------------------------------------------------

pub fn channel(tenant_id: &TenantId, channel_id: &ChannelId) -> Key {
    key(tenant_pk(tenant_id), format!("CHANNEL#{channel_id}"))
}

pub fn channels_of_tenant(tenant_id: &TenantId) -> KeyQuery {
    in_partition(
        None,
        tenant_pk(tenant_id),
        SortKey::BeginsWith("CHANNEL#".into()),
    )
}

pub fn channel_by_meta_user(
    meta_user_id: &str,
    tenant_id: &TenantId,
    channel_id: &ChannelId,
) -> IndexEntry {
    IndexEntry {
        index: Index::Gsi1,
        pk: format!("METAUSER#{meta_user_id}"),
        sk: format!("TENANT#{tenant_id}#CHANNEL#{channel_id}"),
    }
}

pub fn channels_of_meta_user(meta_user_id: &str) -> KeyQuery {
    in_partition(
        Some(Index::Gsi1),
        format!("METAUSER#{meta_user_id}"),
        SortKey::Any,
    )
}

pub fn route(platform: Platform, account_id: &str) -> Key {
    key(format!("ROUTE#{platform}#{account_id}"), "ROUTE")
}

// --- contacts and conversations ------------------------------------------------------------------

pub fn contact(tenant_id: &TenantId, platform: Platform, user_id: &PlatformUserId) -> Key {
    key(
        tenant_pk(tenant_id),
        format!("CONTACT#{platform}#{}", user_id.expose()),
    )
}

/// The conversation of `user_id` on `channel_id`: a digest, so ingest finds it without a lookup and the
/// id (used as the SQS group id and in logs) does not carry the platform user id.
pub fn conversation_id(channel_id: &ChannelId, user_id: &PlatformUserId) -> ConversationId {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(channel_id.as_str().as_bytes());
    ctx.update(&[0]);
    ctx.update(user_id.expose().as_bytes());
    ConversationId::new(format!(
        "conv_{}",
        hex::encode(&ctx.finish().as_ref()[..16])
    ))
}

pub fn conversation(
    tenant_id: &TenantId,
    channel_id: &ChannelId,
    conversation_id: &ConversationId,
) -> Key {
    key(
        tenant_pk(tenant_id),
        format!("CONV#{channel_id}#{conversation_id}"),
    )
}

/// A conversation's entry in the tenant's activity listing: the time of its latest message, then the
/// channel and conversation (ours, no `#`), so entries are unique and sort newest last.
pub fn conversation_activity(
    tenant_id: &TenantId,
    channel_id: &ChannelId,
    conversation_id: &ConversationId,
    last_activity_at: OffsetDateTime,
) -> IndexEntry {
    IndexEntry {
        index: Index::Gsi1,
        pk: format!("TENANT#{tenant_id}#ACTIVITY"),
        sk: format!(
            "{}#{channel_id}#{conversation_id}",
            sortable_millis(last_activity_at)
        ),
    }
}

/// A tenant's conversations by last activity (read backwards: newest first).
pub fn conversations_by_activity(tenant_id: &TenantId) -> KeyQuery {
    in_partition(
        Some(Index::Gsi1),
        format!("TENANT#{tenant_id}#ACTIVITY"),
        SortKey::Any,
    )
}

pub fn conversations_of_channel(tenant_id: &TenantId, channel_id: &ChannelId) -> KeyQuery {
    in_partition(
        None,
        tenant_pk(tenant_id),
        SortKey::BeginsWith(format!("CONV#{channel_id}#")),
    )
}

/// Every conversation of a tenant (the sweep of a terminated tenant's content).
pub fn conversations_of_tenant(tenant_id: &TenantId) -> KeyQuery {
    in_partition(
        None,
        tenant_pk(tenant_id),
        SortKey::BeginsWith("CONV#".into()),
    )
}

/// The conversation id inside a conversation partition key (`TENANT#{t}#CONV#{conv}`).
pub fn conversation_id_of_partition(pk: &str) -> Option<ConversationId> {
    pk.split_once("#CONV#")
        .map(|(_, conversation)| ConversationId::new(conversation))
}

/// Every content item of a tenant, whatever its age (the sweep of a terminated tenant's content).
pub fn all_content(tenant_id: &TenantId) -> KeyQuery {
    in_partition(
        Some(Index::Gsi2),
        format!("TENANT#{tenant_id}#CONTENT"),
        SortKey::Any,
    )
}

fn conversation_pk(tenant_id: &TenantId, conversation_id: &ConversationId) -> String {
    format!("TENANT#{tenant_id}#CONV#{conversation_id}")
}

/// Every item of one conversation: messages, sent markers, drafts.
pub fn conversation_partition(tenant_id: &TenantId, conversation_id: &ConversationId) -> KeyQuery {
    in_partition(
        None,
        conversation_pk(tenant_id, conversation_id),
        SortKey::Any,
    )
}

pub fn message(
    tenant_id: &TenantId,
    conversation_id: &ConversationId,
    sent_at: OffsetDateTime,
    message_id: &str,
) -> Key {
    key(
        conversation_pk(tenant_id, conversation_id),
        format!("MSG#{}#{message_id}", sortable_millis(sent_at)),
    )
}

pub fn messages_of_conversation(
    tenant_id: &TenantId,
    conversation_id: &ConversationId,
) -> KeyQuery {
    in_partition(
        None,
        conversation_pk(tenant_id, conversation_id),
        SortKey::BeginsWith("MSG#".into()),
    )
}

/// A conversation's messages sent from `from` up to `before` (the messages of the very millisecond of
/// `before` are outside: their keys sort after the bound).
pub fn messages_between(
    tenant_id: &TenantId,
    conversation_id: &ConversationId,
    from: OffsetDateTime,
    before: OffsetDateTime,
) -> KeyQuery {
    in_partition(
        None,
        conversation_pk(tenant_id, conversation_id),
        SortKey::Between(
            format!("MSG#{}", sortable_millis(from)),
            format!("MSG#{}", sortable_millis(before)),
        ),
    )
}

pub fn sent_marker(
    tenant_id: &TenantId,
    conversation_id: &ConversationId,
    message_id: &str,
) -> Key {
    key(
        conversation_pk(tenant_id, conversation_id),
        format!("SENT#{message_id}"),
    )
}

/// The drafts of one conversation (export).
pub fn drafts_of_conversation(tenant_id: &TenantId, conversation_id: &ConversationId) -> KeyQuery {
    in_partition(
        None,
        conversation_pk(tenant_id, conversation_id),
        SortKey::BeginsWith("DRAFT#".into()),
    )
}

/// The platform message id inside a message key's sort key (`MSG#{ms}#{id}`), for erasure.
pub fn message_id_of(key: &Key) -> Option<&str> {
    key.sk
        .strip_prefix("MSG#")?
        .split_once('#')
        .map(|(_, id)| id)
}

/// The draft id inside a draft key's sort key.
pub fn draft_id_of(key: &Key) -> Option<&str> {
    key.sk.strip_prefix("DRAFT#")
}

pub fn draft(tenant_id: &TenantId, conversation_id: &ConversationId, draft_id: &str) -> Key {
    key(
        conversation_pk(tenant_id, conversation_id),
        format!("DRAFT#{draft_id}"),
    )
}

pub fn pending_draft_listing(
    tenant_id: &TenantId,
    created_at: OffsetDateTime,
    draft_id: &str,
) -> IndexEntry {
    IndexEntry {
        index: Index::Gsi1,
        pk: format!("TENANT#{tenant_id}#DRAFTS"),
        sk: format!("{}#{draft_id}", sortable_millis(created_at)),
    }
}

pub fn pending_drafts(tenant_id: &TenantId) -> KeyQuery {
    in_partition(
        Some(Index::Gsi1),
        format!("TENANT#{tenant_id}#DRAFTS"),
        SortKey::Any,
    )
}

/// The age-index entry of a content item (message, sent marker, draft) created at `at`.
pub fn content_age(tenant_id: &TenantId, at: OffsetDateTime) -> IndexEntry {
    IndexEntry {
        index: Index::Gsi2,
        pk: format!("TENANT#{tenant_id}#CONTENT"),
        sk: sortable_millis(at),
    }
}

/// Content items of a tenant created before `cutoff`.
pub fn content_older_than(tenant_id: &TenantId, cutoff: OffsetDateTime) -> KeyQuery {
    in_partition(
        Some(Index::Gsi2),
        format!("TENANT#{tenant_id}#CONTENT"),
        SortKey::Before(sortable_millis(cutoff)),
    )
}

// --- knowledge and usage -------------------------------------------------------------------------

pub fn knowledge(tenant_id: &TenantId, entry_id: &str) -> Key {
    key(tenant_pk(tenant_id), format!("KNOWLEDGE#{entry_id}"))
}

pub fn knowledge_of_tenant(tenant_id: &TenantId) -> KeyQuery {
    in_partition(
        None,
        tenant_pk(tenant_id),
        SortKey::BeginsWith("KNOWLEDGE#".into()),
    )
}

pub fn usage(tenant_id: &TenantId, month: &str, channel_id: &ChannelId) -> Key {
    key(tenant_pk(tenant_id), format!("USAGE#{month}#{channel_id}"))
}

pub fn usage_of_month(tenant_id: &TenantId, month: &str) -> KeyQuery {
    in_partition(
        None,
        tenant_pk(tenant_id),
        SortKey::BeginsWith(format!("USAGE#{month}#")),
    )
}

pub fn usage_of_tenant(tenant_id: &TenantId) -> KeyQuery {
    in_partition(
        None,
        tenant_pk(tenant_id),
        SortKey::BeginsWith("USAGE#".into()),
    )
}

/// The figures of one UTC day (`YYYY-MM-DD`) and platform: counters only, no content.
pub fn daily_stats(tenant_id: &TenantId, day: &str, platform: Platform) -> Key {
    key(tenant_pk(tenant_id), format!("STATS#{day}#{platform}"))
}

/// The daily figures from `first` to `last` (`YYYY-MM-DD`, both included), every platform.
pub fn stats_between(tenant_id: &TenantId, first: &str, last: &str) -> KeyQuery {
    in_partition(
        None,
        tenant_pk(tenant_id),
        // `$` sorts after `#`, so the last day's platforms are all inside.
        SortKey::Between(format!("STATS#{first}#"), format!("STATS#{last}$")),
    )
}

pub fn stats_of_tenant(tenant_id: &TenantId) -> KeyQuery {
    in_partition(
        None,
        tenant_pk(tenant_id),
        SortKey::BeginsWith("STATS#".into()),
    )
}

/// Everything in the tenant's own partition: tenant, channels, contacts, conversations, knowledge, usage.
pub fn tenant_partition(tenant_id: &TenantId) -> KeyQuery {
    in_partition(None, tenant_pk(tenant_id), SortKey::Any)
}

/// The conversations a sweep is about to empty, recorded before their content is deleted, so a run that
/// crashes midway leaves them for the next run to find (the content index no longer leads to them).
pub fn sweep_pending(tenant_id: &TenantId) -> Key {
    key(tenant_pk(tenant_id), "SWEEP_PENDING")
}

// --- audit ---------------------------------------------------------------------------------------

fn audit_pk(tenant_id: Option<&TenantId>) -> String {
    match tenant_id {
        Some(t) => format!("TENANT#{t}#AUDIT"),
        None => "SYSTEM#AUDIT".into(),
    }
}

pub fn audit_event(tenant_id: Option<&TenantId>, at: OffsetDateTime, event_id: &str) -> Key {
    key(
        audit_pk(tenant_id),
        format!("{}#{event_id}", sortable_millis(at)),
    )
}

pub fn audit_events(tenant_id: Option<&TenantId>) -> KeyQuery {
    in_partition(None, audit_pk(tenant_id), SortKey::Any)
}

pub fn audit_older_than(tenant_id: Option<&TenantId>, cutoff: OffsetDateTime) -> KeyQuery {
    in_partition(
        None,
        audit_pk(tenant_id),
        SortKey::Before(sortable_millis(cutoff)),
    )
}

// --- Meta data-deletion requests -----------------------------------------------------------------

pub fn deletion_request(confirmation_code: &str) -> Key {
    key(format!("DELETION#{confirmation_code}"), "REQUEST")
}

/// The id of one signed request (user, issued_at): a digest, so the replay item, which outlives the
/// request's completion, does not hold the user id.
pub fn deletion_replay_id(meta_user_id: &str, issued_at: i64) -> String {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(meta_user_id.as_bytes());
    ctx.update(&[0]);
    ctx.update(issued_at.to_string().as_bytes());
    hex::encode(ctx.finish().as_ref())
}

/// A replay of one signed request answers with the first request's code.
pub fn deletion_replay(replay_id: &str) -> Key {
    key(format!("DELETION_REPLAY#{replay_id}"), "REPLAY")
}

pub fn open_deletion_listing(received_at: OffsetDateTime, confirmation_code: &str) -> IndexEntry {
    IndexEntry {
        index: Index::Gsi1,
        pk: "DELETIONS#OPEN".into(),
        sk: format!("{}#{confirmation_code}", sortable_millis(received_at)),
    }
}

pub fn open_deletions() -> KeyQuery {
    in_partition(Some(Index::Gsi1), "DELETIONS#OPEN".into(), SortKey::Any)
}

// --- idempotency ---------------------------------------------------------------------------------

/// The record that makes one operation (`scope`: `webhook`, `send`…) happen once per `key` (a platform
/// message id, an SQS message's inbound id).
pub fn idempotency(tenant_id: &TenantId, scope: &str, key_value: &str) -> Key {
    key(
        format!("TENANT#{tenant_id}#IDEM#{scope}#{key_value}"),
        "IDEM",
    )
}

// --- connect links --------------------------------------------------------------------------------

/// The claim of one connect link, by its nonce (random, minted by us: no `#`).
pub fn connect_state_claim(nonce: &str) -> Key {
    key(format!("CONNECT_STATE#{nonce}"), "CLAIM")
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn t1() -> TenantId {
        TenantId::new("t1")
    }

    fn ch(id: &str) -> ChannelId {
        ChannelId::new(id)
    }

    fn conv(id: &str) -> ConversationId {
        ConversationId::new(id)
    }

    #[test]
    fn message_keys_sort_in_time_order() {
        let early = message(
            &t1(),
            &conv("conv_a"),
            datetime!(2026-01-01 00:00:00.5 UTC),
            "m_z",
        );
        let late = message(
            &t1(),
            &conv("conv_a"),
            datetime!(2026-01-01 00:00:01 UTC),
            "m_a",
        );
        assert_eq!(early.pk, late.pk);
        assert!(early.sk < late.sk, "{} !< {}", early.sk, late.sk);
        assert_eq!(early.sk, "MSG#1767225600500#m_z");
    }

    #[test]
    fn every_tenant_scoped_key_starts_with_its_tenant() {
        let at = datetime!(2026-01-01 00:00 UTC);
        for k in [
            tenant(&t1()),
            channel(&t1(), &ch("ch_1")),
            contact(&t1(), Platform::Whatsapp, &"819012345678".into()),
            conversation(&t1(), &ch("ch_1"), &conv("conv_1")),
            message(&t1(), &conv("conv_1"), at, "wamid.X"),
            sent_marker(&t1(), &conv("conv_1"), "m_1"),
            draft(&t1(), &conv("conv_1"), "drf_1"),
            knowledge(&t1(), "kb_1"),
            usage(&t1(), "2026-01", &ch("ch_1")),
            audit_event(Some(&t1()), at, "evt_1"),
            idempotency(&t1(), "webhook", "m_1"),
        ] {
            assert!(k.pk.starts_with("TENANT#t1"), "{k:?}");
        }
    }

    #[test]
    fn conversation_id_is_stable_and_hides_the_user_id() {
        let a = conversation_id(&ch("ch_1"), &"7234500000000001".into());
        assert_eq!(a, conversation_id(&ch("ch_1"), &"7234500000000001".into()));
        assert_ne!(a, conversation_id(&ch("ch_2"), &"7234500000000001".into()));
        assert_ne!(
            conversation_id(&ch("ch_1"), &"2".into()),
            conversation_id(&ch("ch_12"), &"".into())
        );
        assert!(!a.as_str().contains("7234500000000001"));
        assert!(!a.as_str().contains('#'));
    }

    #[test]
    fn activity_entries_sort_by_time_within_the_tenant() {
        let early = conversation_activity(
            &t1(),
            &ch("ch_b"),
            &conv("conv_b"),
            datetime!(2026-01-01 00:00 UTC),
        );
        let late = conversation_activity(
            &t1(),
            &ch("ch_a"),
            &conv("conv_a"),
            datetime!(2026-01-02 00:00 UTC),
        );
        assert_eq!(early.pk, late.pk);
        assert_eq!(early.pk, conversations_by_activity(&t1()).pk);
        assert!(early.sk < late.sk);
        assert_eq!(early.sk, "1767225600000#ch_b#conv_b");
    }

    #[test]
    fn content_cutoff_excludes_the_cutoff_instant() {
        let cutoff = datetime!(2026-06-01 00:00 UTC);
        let q = content_older_than(&t1(), cutoff);
        let entry = content_age(&t1(), cutoff);
        assert_eq!(q.pk, entry.pk);
        assert_eq!(q.sk, SortKey::Before(entry.sk));
    }

    #[test]
    fn deletion_replay_key_does_not_contain_the_user_id() {
        let k = deletion_replay(&deletion_replay_id("1234567890", 1_624_244_156));
        assert!(!k.pk.contains("1234567890"));
        assert_eq!(
            k,
            deletion_replay(&deletion_replay_id("1234567890", 1_624_244_156))
        );
        assert_ne!(
            k,
            deletion_replay(&deletion_replay_id("1234567890", 1_624_244_157))
        );
    }
}
