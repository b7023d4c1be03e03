//! The single-table repository over DynamoDB.
//!
//! A generic layer ([`Store::get`], [`Store::put`], [`Store::query`], [`Store::delete_many`]) works on any
//! [`Record`]; typed operations on top of it are the ones whose writes must be conditional or
//! transactional (connecting a channel claims its platform account; disconnecting removes the token and
//! the route together; a draft is decided once). Reads treat an item whose `expires_at` has passed as
//! absent, because DynamoDB TTL deletes lazily (and moto never does).
//!
//! The generic layer is in `table` (its paging in `page`), the failures in `error`, and every update or condition expression is
//! written by the one builder in `expr`. The typed operations are grouped by aggregate, each file an
//! `impl Store` block: `tenants`, `channels` (and routes), `conversations` (contacts, conversations,
//! messages), `drafts`, `usage` (and knowledge), `deletions` (deletion requests, replays, audit) and
//! `idempotency`.

mod channels;
mod conversations;
mod deletions;
mod drafts;
mod error;
mod expr;
mod idempotency;
mod page;
pub mod records;
mod stats;
mod table;
mod tenants;
mod usage;

pub use channels::RefreshedToken;
pub use conversations::{
    ACTIVITY_READS, AGENT_REPLY_REASON, ConversationInContext, ConversationTouch, DeliveryRecord,
    Ingested, OutcomeRecord,
};
pub use error::{Result, StoreError};
pub use idempotency::{Claim, IdempotencyRecord, IdempotencyStatus};
pub use page::{Cursor, Page, PageRequest};
pub use records::{DeletionReplay, Record, SentMarker};
pub use table::{
    BATCH_WRITE_LIMIT, BatchOutcome, Item, Store, Write, from_item, key_item, to_item,
};
