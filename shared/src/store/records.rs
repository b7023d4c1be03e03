//! How each domain type becomes an item: its key, its index entries and its expiry, all from
//! [`crate::keys`]. The item's other attributes are the type's own fields, (de)serialised by
//! `serde_dynamo`.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use time::serde::rfc3339;
use time::{Duration, OffsetDateTime};

use crate::keys::{self, IndexEntry, Key};
use crate::model::*;

/// A type stored as one item of the table.
pub trait Record: Serialize + DeserializeOwned {
    /// The `kind` attribute.
    const KIND: &'static str;
    fn key(&self) -> Key;
    fn index_entries(&self) -> Vec<IndexEntry> {
        Vec::new()
    }
    /// When DynamoDB TTL may remove the item (and reads start treating it as gone).
    fn expires_at(&self) -> Option<OffsetDateTime>;
}

impl Record for Tenant {
    const KIND: &'static str = "tenant";
    fn key(&self) -> Key {
        keys::tenant(&self.tenant_id)
    }
    fn index_entries(&self) -> Vec<IndexEntry> {
        vec![keys::tenant_listing(&self.tenant_id)]
    }
    /// A terminated tenant's item outlives both of its deletion deadlines, so the sweep still finds it.
    fn expires_at(&self) -> Option<OffsetDateTime> {
        let days = self
            .retention
            .terminated_content_days
            .max(self.retention.terminated_account_days);
        self.terminated_at
            .map(|at| at.saturating_add(Duration::days(i64::from(days) + 1)))
    }
}

impl Record for Channel {
    const KIND: &'static str = "channel";
    fn key(&self) -> Key {
        keys::channel(&self.tenant_id, &self.channel_id)
    }
    fn index_entries(&self) -> Vec<IndexEntry> {
        self.connected_by
            .iter()
            .map(|user| keys::channel_by_meta_user(user, &self.tenant_id, &self.channel_id))
            .collect()
    }
    fn expires_at(&self) -> Option<OffsetDateTime> {
        self.retain_until
    }
}

impl Record for ConnectStateClaim {
    const KIND: &'static str = "connect_state_claim";
    fn key(&self) -> Key {
        keys::connect_state_claim(&self.nonce)
    }
    fn expires_at(&self) -> Option<OffsetDateTime> {
        Some(self.link_expires_at)
    }
}

impl Record for Route {
    const KIND: &'static str = "route";
    fn key(&self) -> Key {
        keys::route(self.platform, &self.account_id)
    }
    fn expires_at(&self) -> Option<OffsetDateTime> {
        None
    }
}

impl Record for Contact {
    const KIND: &'static str = "contact";
    fn key(&self) -> Key {
        keys::contact(&self.tenant_id, self.platform, &self.user_id)
    }
    fn expires_at(&self) -> Option<OffsetDateTime> {
        Some(self.retain_until)
    }
}

impl Record for Conversation {
    const KIND: &'static str = "conversation";
    fn key(&self) -> Key {
        keys::conversation(&self.tenant_id, &self.channel_id, &self.conversation_id)
    }
    fn index_entries(&self) -> Vec<IndexEntry> {
        vec![keys::conversation_activity(
            &self.tenant_id,
            &self.channel_id,
            &self.conversation_id,
            self.last_activity_at(),
        )]
    }
    fn expires_at(&self) -> Option<OffsetDateTime> {
        Some(self.retain_until)
    }
}

impl Record for Message {
    const KIND: &'static str = "message";
    fn key(&self) -> Key {
        keys::message(
            &self.tenant_id,
            &self.conversation_id,
            self.sent_at,
            &self.message_id,
        )
    }
    fn index_entries(&self) -> Vec<IndexEntry> {
        vec![keys::content_age(&self.tenant_id, self.sent_at)]
    }
    fn expires_at(&self) -> Option<OffsetDateTime> {
        Some(self.retain_until)
    }
}

/// Records that we sent a message with this platform id, and where the message item is: how echoes of our
/// own sends are recognised and status receipts find their message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentMarker {
    pub tenant_id: TenantId,
    pub conversation_id: ConversationId,
    pub message_id: String,
    #[serde(with = "rfc3339")]
    pub sent_at: OffsetDateTime,
    #[serde(with = "rfc3339")]
    pub retain_until: OffsetDateTime,
}

impl SentMarker {
    /// The key of the message this marker points to.
    pub fn message_key(&self) -> Key {
        keys::message(
            &self.tenant_id,
            &self.conversation_id,
            self.sent_at,
            &self.message_id,
        )
    }
}

impl Record for SentMarker {
    const KIND: &'static str = "sent_marker";
    fn key(&self) -> Key {
        keys::sent_marker(&self.tenant_id, &self.conversation_id, &self.message_id)
    }
    fn index_entries(&self) -> Vec<IndexEntry> {
        vec![keys::content_age(&self.tenant_id, self.sent_at)]
    }
    fn expires_at(&self) -> Option<OffsetDateTime> {
        Some(self.retain_until)
    }
}

impl Record for Draft {
    const KIND: &'static str = "draft";
    fn key(&self) -> Key {
        keys::draft(&self.tenant_id, &self.conversation_id, &self.draft_id)
    }
    fn index_entries(&self) -> Vec<IndexEntry> {
        let mut entries = vec![keys::content_age(&self.tenant_id, self.created_at)];
        if self.status == DraftStatus::Pending {
            entries.push(keys::pending_draft_listing(
                &self.tenant_id,
                self.created_at,
                &self.draft_id,
            ));
        }
        entries
    }
    fn expires_at(&self) -> Option<OffsetDateTime> {
        Some(self.retain_until)
    }
}

impl Record for KnowledgeEntry {
    const KIND: &'static str = "knowledge";
    fn key(&self) -> Key {
        keys::knowledge(&self.tenant_id, &self.entry_id)
    }
    fn expires_at(&self) -> Option<OffsetDateTime> {
        None
    }
}

/// Usage rows are kept 13 months after their month, long enough for a year of billing questions.
pub const USAGE_KEPT_DAYS: i64 = 400;

impl Record for Usage {
    const KIND: &'static str = "usage";
    fn key(&self) -> Key {
        keys::usage(&self.tenant_id, &self.month, &self.channel_id)
    }
    fn expires_at(&self) -> Option<OffsetDateTime> {
        usage_expiry(&self.month)
    }
}

/// Expiry of the usage row of `month` (`YYYY-MM`).
pub fn usage_expiry(month: &str) -> Option<OffsetDateTime> {
    let (year, month) = month.split_once('-')?;
    let month = time::Month::try_from(month.parse::<u8>().ok()?).ok()?;
    let start = time::Date::from_calendar_date(year.parse().ok()?, month, 1).ok()?;
    Some(
        start
            .midnight()
            .assume_utc()
            .saturating_add(Duration::days(USAGE_KEPT_DAYS)),
    )
}

/// A completed deletion request is kept a year as proof, then expires.
pub const DELETION_PROOF_KEPT_DAYS: i64 = 365;

impl Record for DeletionRequest {
    const KIND: &'static str = "deletion_request";
    fn key(&self) -> Key {
        keys::deletion_request(&self.confirmation_code)
    }
    fn index_entries(&self) -> Vec<IndexEntry> {
        if self.status == DeletionStatus::Completed {
            Vec::new()
        } else {
            vec![keys::open_deletion_listing(
                self.received_at,
                &self.confirmation_code,
            )]
        }
    }
    fn expires_at(&self) -> Option<OffsetDateTime> {
        self.completed_at
            .map(|at| at.saturating_add(Duration::days(DELETION_PROOF_KEPT_DAYS)))
    }
}

impl Record for AuditEvent {
    const KIND: &'static str = "audit";
    fn key(&self) -> Key {
        keys::audit_event(self.tenant_id.as_ref(), self.at, &self.event_id)
    }
    fn expires_at(&self) -> Option<OffsetDateTime> {
        Some(self.retain_until)
    }
}

/// Maps one signed deletion request (by digest) to the confirmation code it was given, so Meta's replay
/// gets the same code. Kept as long as the deletion proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletionReplay {
    pub replay_id: String,
    pub confirmation_code: String,
    #[serde(with = "rfc3339")]
    pub received_at: OffsetDateTime,
}

impl Record for DeletionReplay {
    const KIND: &'static str = "deletion_replay";
    fn key(&self) -> Key {
        keys::deletion_replay(&self.replay_id)
    }
    fn expires_at(&self) -> Option<OffsetDateTime> {
        // Meta does not replay a signed request for long; the proof period bounds it generously.
        Some(
            self.received_at
                .saturating_add(Duration::days(DELETION_PROOF_KEPT_DAYS)),
        )
    }
}
