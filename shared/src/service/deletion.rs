//! Accepting a Meta user's data-deletion request or deauthorization (the callbacks' domain step, after
//! the `signed_request` was verified by the edge).
//!
//! A deauthorization disconnects every channel that user connected before anything else, so their
//! tokens are destroyed before Meta gets its answer. Then the request is recorded with an unguessable
//! confirmation code (a replay of the same signed request finds the same code) and an erasure job goes
//! onto the erasure queue, where retention-sweep carries it out. Every step is safe to repeat: Meta
//! retries a callback we answered with a 500, and the replay completes what the first call began.

use time::OffsetDateTime;

use crate::ids::new_id;
use crate::jobs::CleanupJob;
use crate::keys;
use crate::model::{AuditEvent, DeletionRequest, DeletionStatus, RetentionPolicy};
use crate::queue::{QueueMessage, QueuePublisher};
use crate::store::Store;

use super::channels::{self, DisconnectReason};
use super::{Actor, Result, ServiceError};

/// Which Meta callback asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeletionKind {
    /// The user asked for their data to be deleted.
    DataDeletion,
    /// The user removed the app: their channels are disconnected at once, and their data erased.
    Deauthorize,
}

impl DeletionKind {
    fn audit_action(self) -> &'static str {
        match self {
            Self::DataDeletion => "meta.data_deletion_requested",
            Self::Deauthorize => "meta.deauthorized",
        }
    }
}

/// What accepting a request did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub confirmation_code: String,
    /// False for a replay of a request already recorded.
    pub new: bool,
    /// Channels whose tokens this call destroyed (deauthorization only).
    pub channels_disconnected: u64,
}

pub struct DeletionIntake {
    store: Store,
    publisher: QueuePublisher,
    erasure_queue_url: String,
    actor: Actor,
}

impl DeletionIntake {
    pub fn new(
        store: Store,
        publisher: QueuePublisher,
        erasure_queue_url: String,
        actor: Actor,
    ) -> Self {
        Self {
            store,
            publisher,
            erasure_queue_url,
            actor,
        }
    }

    /// Records the request of `meta_user_id` (issued at `issued_at`, the signed request's time), or finds
    /// the one recorded, disconnects at once on deauthorization, and queues the erasure unless it is
    /// completed already.
    pub async fn accept(
        &self,
        kind: DeletionKind,
        meta_user_id: &str,
        issued_at: i64,
    ) -> Result<Accepted> {
        let now = self.store.now();
        if OffsetDateTime::from_unix_timestamp(issued_at).is_err() {
            return Err(ServiceError::Invalid(format!(
                "issued_at {issued_at} is not a time"
            )));
        }
        let channels_disconnected = if kind == DeletionKind::Deauthorize {
            // The callback speaks of the moment it was issued (whole seconds): a replayed old one must
            // not disconnect a channel the user connected since.
            let channels: Vec<_> = self
                .store
                .channels_of_meta_user(meta_user_id)
                .await?
                .into_iter()
                .filter(|channel| channel.connected_at.unix_timestamp() <= issued_at)
                .collect();
            channels::disconnect_all(
                &self.store,
                self.actor,
                &channels,
                DisconnectReason::Deauthorized,
                None,
            )
            .await?
        } else {
            0
        };
        let request = DeletionRequest {
            confirmation_code: new_id("del").replace('_', ""),
            meta_user_id: Some(meta_user_id.to_owned()),
            status: DeletionStatus::Received,
            received_at: now,
            completed_at: None,
            deleted: Default::default(),
        };
        let (code, new) = self
            .store
            .record_deletion_request(&request, &keys::deletion_replay_id(meta_user_id, issued_at))
            .await?;
        let accepted = Accepted {
            confirmation_code: code,
            new,
            channels_disconnected,
        };
        if new {
            // Audited as soon as it is recorded: a replay (after a failed publish below) is not new
            // and would not audit it. A system event: the request spans tenants, so it is kept by the
            // default policy.
            let event = AuditEvent::new(
                None,
                self.actor,
                kind.audit_action(),
                Some(&accepted.confirmation_code),
                now,
                RetentionPolicy::default().audit_days,
            );
            self.store.record_audit(&event).await?;
        }
        let recorded = self
            .store
            .get_deletion_request(&accepted.confirmation_code)
            .await?;
        if recorded.is_some_and(|r| r.status == DeletionStatus::Completed) {
            return Ok(accepted);
        }
        let job = CleanupJob::DeletionRequest {
            confirmation_code: accepted.confirmation_code.clone(),
        };
        self.publisher
            .publish(
                &self.erasure_queue_url,
                vec![QueueMessage::standard(
                    serde_json::to_string(&job).expect("a job serialises"),
                )],
            )
            .await?;
        Ok(accepted)
    }
}
