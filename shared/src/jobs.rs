//! Messages on the queues. They carry ids, never message text: the consumer reads content from the table.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::serde::rfc3339;

use crate::model::{ChannelId, ConversationId, Platform, TenantId};

/// "Answer this customer message": webhook-ingest → inbound FIFO queue → ai-reply.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundJob {
    pub tenant_id: TenantId,
    pub channel_id: ChannelId,
    pub conversation_id: ConversationId,
    pub platform: Platform,
    pub message_id: String,
    #[serde(with = "rfc3339")]
    pub sent_at: OffsetDateTime,
    #[serde(with = "rfc3339")]
    pub received_at: OffsetDateTime,
    /// LINE's one-minute reply token (a credential: not printed).
    #[serde(default)]
    pub reply_token: Option<String>,
}

impl std::fmt::Debug for InboundJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboundJob")
            .field("tenant_id", &self.tenant_id)
            .field("channel_id", &self.channel_id)
            .field("conversation_id", &self.conversation_id)
            .field("message_id", &self.message_id)
            .field(
                "reply_token",
                &self.reply_token.as_ref().map(|_| "<redacted>"),
            )
            .finish_non_exhaustive()
    }
}

impl InboundJob {
    /// The FIFO deduplication id: a digest of channel and platform message id (SQS allows 128
    /// characters; platform ids can be longer).
    pub fn dedup_id(&self) -> String {
        let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        ctx.update(self.channel_id.as_str().as_bytes());
        ctx.update(&[0]);
        ctx.update(self.message_id.as_bytes());
        hex::encode(ctx.finish().as_ref())
    }
}

/// Work on the erasure-and-sweep queue, consumed by retention-sweep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "job", rename_all = "snake_case")]
pub enum CleanupJob {
    /// Erase everything tied to the Meta user of this deletion request (Meta's data-deletion or
    /// deauthorize callback).
    DeletionRequest { confirmation_code: String },
    /// Enforce one tenant's retention policy as of `as_of` (the schedule's time, kept when the job
    /// re-enqueues itself so every part of it uses the same cutoffs), starting at `stage`.
    TenantSweep {
        tenant_id: TenantId,
        #[serde(with = "rfc3339")]
        as_of: OffsetDateTime,
        #[serde(default)]
        stage: SweepStage,
    },
    /// Ask the platforms about every connected channel of one tenant: flag dead tokens with their
    /// reason, refresh Instagram-Login tokens, restore dropped webhook subscriptions.
    TokenHealth { tenant_id: TenantId },
}

/// The rules of a tenant sweep, in the order a job applies them; a job cut short resumes at its stage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SweepStage {
    #[default]
    ExpiredContent,
    DisconnectedChannels,
    Termination,
    ExpiredAudit,
}

impl SweepStage {
    pub const ALL: [SweepStage; 4] = [
        SweepStage::ExpiredContent,
        SweepStage::DisconnectedChannels,
        SweepStage::Termination,
        SweepStage::ExpiredAudit,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SweepStage::ExpiredContent => "expired_content",
            SweepStage::DisconnectedChannels => "disconnected_channels",
            SweepStage::Termination => "termination",
            SweepStage::ExpiredAudit => "expired_audit",
        }
    }
}
