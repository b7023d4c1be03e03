//! Delivering one text to a customer, at most once: the path both an AI reply (ai-reply) and an approved
//! draft (`inboxctl drafts approve`) take.
//!
//! The reply window is checked before anything is sent (Messenger, Instagram and WhatsApp allow free-form
//! replies for 24 hours after the customer's last message). The send is wrapped in the idempotency
//! primitive on a key stable across retries, so an SQS redelivery after a crash, a timeout or a partial
//! batch failure finds the send completed and does not repeat it. The token is opened from the vault
//! only for the call. After the platform accepts, one transaction records the message id twice (as a
//! sent marker, so its echo is known as ours, and as the outbound message), completes the send claim and
//! ends the conversation's wait for a reply; the send is then counted in the day's figures.

use time::{Duration, OffsetDateTime};

use crate::ids::ConversationId;
use crate::model::stats::{Counter, Responder, StatsDelta};
use crate::model::{
    AuditEvent, Author, Channel, ChannelStatus, Conversation, Direction, DraftStatus, Message,
    MessageStatus, Platform, Tenant,
};
use crate::platform::ECHO_TAG_PREFIX;
use crate::platform::send::{OutboundText, SendError, Sender};
use crate::secret::MessageText;
use crate::store::{Claim, DeliveryRecord, IdempotencyRecord, SentMarker, Store, StoreError};
use crate::vault::{SealContext, TokenVault, VaultError};

use super::{analytics, audit};

/// Messenger, Instagram and WhatsApp: free-form replies within 24 h of the customer's last message.
pub const REPLY_WINDOW: Duration = Duration::hours(24);
/// Messenger and Instagram: a person (not a bot) may still answer with the `HUMAN_AGENT` tag for 7 days.
pub const HUMAN_AGENT_WINDOW: Duration = Duration::days(7);
const SEND_SCOPE: &str = "send";
/// Held while one worker sends; a crashed worker's claim is taken over after it.
const SEND_LEASE: Duration = Duration::minutes(2);
/// Longer than any redelivery: SQS retention of the inbound queue is 4 days.
const SEND_RECORD_KEPT: Duration = Duration::days(8);

/// One text for one conversation.
#[derive(Debug, Clone)]
pub struct Delivery<'a> {
    pub channel: &'a Channel,
    pub conversation: &'a Conversation,
    pub text: &'a MessageText,
    pub author: Author,
    /// The same for every retry of this logical send: `reply:{inbound id}` or `draft:{draft id}`.
    pub idempotency_key: &'a str,
    /// LINE: the event's reply token while still fresh.
    pub reply_token: Option<&'a str>,
    /// Until when the sent message is kept (the tenant's content retention).
    pub retain_until: OffsetDateTime,
    /// A person's action: its audit event, written with the send's records.
    pub audit: Option<&'a AuditEvent>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    Sent {
        message_id: String,
    },
    /// A previous attempt sent it already.
    AlreadySent {
        message_id: Option<String>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("the reply window closed at {0}")]
    WindowClosed(OffsetDateTime),
    #[error("another worker is sending this right now")]
    InProgress,
    #[error("the channel cannot send: {0}")]
    ChannelUnavailable(&'static str),
    #[error(transparent)]
    Send(#[from] SendError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Vault(#[from] VaultError),
}

impl DeliveryError {
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::InProgress => true,
            Self::Send(e) => e.is_retryable(),
            Self::Store(e) => e.is_retryable(),
            Self::Vault(e) => e.is_retryable(),
            Self::WindowClosed(_) | Self::ChannelUnavailable(_) => false,
        }
    }
}

/// When the conversation's reply window closes (`None`: the platform has none, e.g. LINE push).
pub fn window_closes_at(platform: Platform, conversation: &Conversation) -> Option<OffsetDateTime> {
    match platform {
        Platform::Messenger | Platform::Instagram | Platform::Whatsapp => Some(
            conversation
                .last_inbound_at
                .map_or(OffsetDateTime::UNIX_EPOCH, |at| {
                    at.saturating_add(REPLY_WINDOW)
                }),
        ),
        Platform::Line => None,
    }
}

pub struct Outbox {
    store: Store,
    vault: TokenVault,
    sender: Sender,
}

impl Outbox {
    pub fn new(store: Store, vault: TokenVault, sender: Sender) -> Self {
        Self {
            store,
            vault,
            sender,
        }
    }

    pub async fn deliver(&self, delivery: &Delivery<'_>) -> Result<Delivered, DeliveryError> {
        let now = self.store.now();
        if let Some(closes) = window_closes_at(delivery.channel.platform, delivery.conversation)
            && now >= closes
        {
            return Err(DeliveryError::WindowClosed(closes));
        }
        self.deliver_in_window(delivery, None).await
    }

    /// [`Outbox::deliver`] once the caller has decided the window allows it. `person`: a person's reply
    /// from the console, sent as the platform allows it now (with Meta's `HUMAN_AGENT` tag after 24
    /// hours), which takes the conversation into human mode.
    async fn deliver_in_window(
        &self,
        delivery: &Delivery<'_>,
        person: Option<AgentSend>,
    ) -> Result<Delivered, DeliveryError> {
        let channel = delivery.channel;
        let tenant_id = &channel.tenant_id;
        if channel.status != ChannelStatus::Connected {
            return Err(DeliveryError::ChannelUnavailable(channel.status.as_str()));
        }
        let Some(credentials) = channel.credentials.as_ref() else {
            return Err(DeliveryError::ChannelUnavailable("no credentials"));
        };
        let key = delivery.idempotency_key;
        match self
            .store
            .claim(tenant_id, SEND_SCOPE, key, SEND_LEASE, SEND_RECORD_KEPT)
            .await?
        {
            Claim::Acquired => {}
            Claim::InProgress => return Err(DeliveryError::InProgress),
            Claim::Completed(message_id) => return Ok(Delivered::AlreadySent { message_id }),
        }
        let human_agent_tag = person == Some(AgentSend::HumanAgentTag);
        match self.send(delivery, credentials, human_agent_tag).await {
            Ok(message_id) => {
                self.record(delivery, &message_id, person.is_some()).await?;
                Ok(Delivered::Sent { message_id })
            }
            Err(err) => {
                // Nothing went out: let a retry (or another attempt) claim it again.
                self.store.release(tenant_id, SEND_SCOPE, key).await?;
                if let DeliveryError::Send(SendError::TokenInvalid { reason, .. }) = &err {
                    self.store
                        .mark_channel_needs_reauth(tenant_id, &channel.channel_id, *reason)
                        .await?;
                }
                Err(err)
            }
        }
    }

    async fn send(
        &self,
        delivery: &Delivery<'_>,
        credentials: &crate::vault::WrappedCredentials,
        human_agent_tag: bool,
    ) -> Result<String, DeliveryError> {
        let channel = delivery.channel;
        let context = SealContext::new(&channel.tenant_id, &channel.channel_id);
        let token = match (
            self.vault.open_token(&context, credentials).await?,
            &channel.line_channel_id,
        ) {
            (Some(token), _) => token,
            (None, Some(line_channel_id)) => {
                let secret = self
                    .vault
                    .open_channel_secret(&context, credentials)
                    .await?
                    .ok_or(DeliveryError::ChannelUnavailable("no channel secret"))?;
                self.sender
                    .minted_line_token(line_channel_id, &secret)
                    .await?
            }
            (None, None) => return Err(DeliveryError::ChannelUnavailable("no token")),
        };
        let echo_tag = format!("{ECHO_TAG_PREFIX}{}", delivery.idempotency_key);
        let sent = self
            .sender
            .send_text(
                &token,
                &OutboundText {
                    platform: channel.platform,
                    account_id: &channel.account_id,
                    recipient: delivery.conversation.user_id.expose(),
                    text: delivery.text,
                    echo_tag: &echo_tag,
                    reply_token: delivery.reply_token,
                    idempotency_key: delivery.idempotency_key,
                    instagram_login: channel.instagram_login,
                    human_agent_tag,
                },
            )
            .await?;
        Ok(sent.message_id)
    }

    /// Everything the send leaves, in one write ([`Store::record_delivery`]); then counted in the day's
    /// figures with the wait it ended, if the conversation was waiting.
    async fn record(
        &self,
        delivery: &Delivery<'_>,
        message_id: &str,
        takes_over: bool,
    ) -> Result<(), StoreError> {
        let conversation = delivery.conversation;
        let tenant_id = &conversation.tenant_id;
        let now = self.store.now();
        let marker = SentMarker {
            tenant_id: tenant_id.clone(),
            conversation_id: conversation.conversation_id.clone(),
            message_id: message_id.to_owned(),
            sent_at: now,
            retain_until: delivery.retain_until,
        };
        let message = Message {
            tenant_id: tenant_id.clone(),
            conversation_id: conversation.conversation_id.clone(),
            channel_id: conversation.channel_id.clone(),
            message_id: message_id.to_owned(),
            direction: Direction::Outbound,
            author: delivery.author,
            text: Some(delivery.text.clone()),
            attachments: Vec::new(),
            payload: None,
            status: MessageStatus::Sent,
            error_code: None,
            sent_at: now,
            retain_until: delivery.retain_until,
            reply_outcome: None,
        };
        let completion = IdempotencyRecord::completed(
            tenant_id,
            SEND_SCOPE,
            delivery.idempotency_key,
            Some(message_id.to_owned()),
            now,
            SEND_RECORD_KEPT,
        );
        let responder = Responder::of(delivery.author).unwrap_or(Responder::Ai);
        let mut counters = vec![Counter::Sent(responder)];
        if let Some(since) = conversation.awaiting_reply_since {
            counters.push(Counter::first_response(responder, now - since));
        }
        let stats = StatsDelta {
            tenant_id: tenant_id.clone(),
            platform: conversation.platform,
            at: now,
            counters,
        };
        self.store
            .record_delivery(&DeliveryRecord {
                marker: &marker,
                message: &message,
                completion: &completion,
                audit: delivery.audit,
                takes_over,
            })
            .await?;
        analytics::count(&self.store, stats).await;
        Ok(())
    }
}

/// How a person's reply from the console may go out now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentSend {
    /// Inside the standard window (LINE: a push, which has none).
    Standard,
    /// Messenger and Instagram, 24 hours to 7 days after the customer's last message.
    HumanAgentTag,
}

/// Why a person's reply cannot be sent now, in words the person understands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AgentWindowClosed(pub String);

/// The platforms' rules for a person's reply at `now`: Messenger and Instagram answer as `RESPONSE`
/// within 24 hours of the customer's last message and with the `HUMAN_AGENT` tag up to 7 days; WhatsApp
/// allows free-form text within 24 hours only (a template after); LINE pushes at any time.
pub fn agent_send(
    conversation: &Conversation,
    now: OffsetDateTime,
) -> Result<AgentSend, AgentWindowClosed> {
    let since = conversation.last_inbound_at;
    let within = |window: Duration| since.is_some_and(|at| now < at.saturating_add(window));
    match conversation.platform {
        Platform::Line => Ok(AgentSend::Standard),
        _ if within(REPLY_WINDOW) => Ok(AgentSend::Standard),
        Platform::Messenger | Platform::Instagram if within(HUMAN_AGENT_WINDOW) => {
            Ok(AgentSend::HumanAgentTag)
        }
        Platform::Messenger | Platform::Instagram => Err(AgentWindowClosed(format!(
            "{} allows a person's reply for 7 days after the customer's last message, and that was {}: \
             the customer must write first",
            conversation.platform,
            since.map_or("never".to_owned(), |at| at.to_string()),
        ))),
        Platform::Whatsapp => Err(AgentWindowClosed(
            "more than 24 hours since the customer's last message: WhatsApp allows only a template \
             message now (a template message is required)"
                .into(),
        )),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AgentReplyError {
    #[error(transparent)]
    WindowClosed(#[from] AgentWindowClosed),
    #[error(transparent)]
    Delivery(#[from] DeliveryError),
}

impl From<StoreError> for AgentReplyError {
    fn from(err: StoreError) -> Self {
        Self::Delivery(DeliveryError::Store(err))
    }
}

/// A person's reply from the console.
#[derive(Debug, Clone)]
pub struct AgentReply<'a> {
    pub tenant: &'a Tenant,
    pub channel: &'a Channel,
    pub conversation: &'a Conversation,
    pub text: &'a MessageText,
    /// The caller's `Idempotency-Key` (or one minted per request): the same key never sends twice in
    /// a tenant.
    pub idempotency_key: &'a str,
}

impl Outbox {
    /// A person answers a conversation from the console: sent once per idempotency key under the
    /// platform's rules ([`agent_send`]), recorded as the agent's (its echo is known as ours by the sent
    /// marker and the echo tag), the conversation is in human mode afterwards; audited.
    pub async fn reply_as_agent(
        &self,
        actor: &str,
        reply: &AgentReply<'_>,
    ) -> Result<Delivered, AgentReplyError> {
        let now = self.store.now();
        let how = agent_send(reply.conversation, now)?;
        let key = format!("agent:{}", reply.idempotency_key);
        let audit = AuditEvent::new(
            Some(&reply.tenant.tenant_id),
            actor,
            "conversation.reply",
            Some(reply.conversation.conversation_id.as_str()),
            now,
            reply.tenant.retention.audit_days,
        );
        let delivered = self
            .deliver_in_window(
                &Delivery {
                    channel: reply.channel,
                    conversation: reply.conversation,
                    text: reply.text,
                    author: Author::Agent,
                    idempotency_key: &key,
                    reply_token: None,
                    retain_until: reply.tenant.retention.content_deadline(now),
                    audit: Some(&audit),
                },
                Some(how),
            )
            .await?;
        Ok(delivered)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApproveError {
    #[error("draft {0} not found")]
    NotFound(String),
    #[error("draft {0} was rejected")]
    Rejected(String),
    #[error(transparent)]
    Delivery(#[from] DeliveryError),
}

impl From<StoreError> for ApproveError {
    fn from(err: StoreError) -> Self {
        Self::Delivery(DeliveryError::Store(err))
    }
}

impl Outbox {
    /// A person approved a draft: it is sent once (approving again after a failed send retries the send;
    /// after a successful one it does nothing), marked sent, and the approval audited.
    pub async fn approve_draft(
        &self,
        actor: &str,
        tenant: &Tenant,
        conversation_id: &ConversationId,
        draft_id: &str,
    ) -> Result<Delivered, ApproveError> {
        self.approve_draft_edited(actor, tenant, conversation_id, draft_id, None)
            .await
    }

    /// [`Outbox::approve_draft`], the text first replaced by the person's `edit` when the draft is still
    /// pending (the edit and the approval are one conditional write, so two approvals cannot send two
    /// texts; once approved, a later edit is ignored and the approved text is what is sent, once).
    pub async fn approve_draft_edited(
        &self,
        actor: &str,
        tenant: &Tenant,
        conversation_id: &ConversationId,
        draft_id: &str,
        edit: Option<&MessageText>,
    ) -> Result<Delivered, ApproveError> {
        let tenant_id = &tenant.tenant_id;
        let not_found = || ApproveError::NotFound(draft_id.to_owned());
        let mut draft = self
            .store
            .get_draft(tenant_id, conversation_id, draft_id)
            .await?
            .ok_or_else(not_found)?;
        match draft.status {
            DraftStatus::Rejected => return Err(ApproveError::Rejected(draft_id.to_owned())),
            DraftStatus::Pending => {
                let now = self.store.now();
                match self
                    .store
                    .decide_draft_with_text(
                        tenant_id,
                        conversation_id,
                        draft_id,
                        DraftStatus::Approved,
                        now,
                        edit,
                    )
                    .await
                {
                    Ok(decided) => draft = decided,
                    // Decided concurrently: send what was approved (the send claim guards the send).
                    Err(StoreError::Conflict(_)) => {
                        draft = self
                            .store
                            .get_draft(tenant_id, conversation_id, draft_id)
                            .await?
                            .ok_or_else(not_found)?;
                        if draft.status == DraftStatus::Rejected {
                            return Err(ApproveError::Rejected(draft_id.to_owned()));
                        }
                    }
                    Err(other) => return Err(other.into()),
                }
            }
            DraftStatus::Approved | DraftStatus::Sent => {}
        }
        let conversation = self
            .store
            .get_conversation(tenant_id, &draft.channel_id, conversation_id)
            .await?
            .ok_or_else(not_found)?;
        let channel = self
            .store
            .get_channel(tenant_id, &draft.channel_id)
            .await?
            .ok_or(DeliveryError::ChannelUnavailable("disconnected"))?;
        let idempotency_key = format!("draft:{draft_id}");
        let delivered = self
            .deliver(&Delivery {
                channel: &channel,
                conversation: &conversation,
                text: &draft.text,
                author: Author::Agent,
                idempotency_key: &idempotency_key,
                reply_token: None,
                retain_until: draft.retain_until,
                audit: None,
            })
            .await?;
        match self
            .store
            .mark_draft_sent(tenant_id, conversation_id, draft_id)
            .await
        {
            Ok(()) | Err(StoreError::Conflict(_)) => {}
            Err(other) => return Err(other.into()),
        }
        audit(&self.store, actor, tenant, "draft.approve", draft_id).await?;
        Ok(delivered)
    }

    /// A person discarded a draft: nothing is sent, ever; audited.
    pub async fn reject_draft(
        &self,
        actor: &str,
        tenant: &Tenant,
        conversation_id: &ConversationId,
        draft_id: &str,
    ) -> Result<(), StoreError> {
        self.store
            .decide_draft(
                &tenant.tenant_id,
                conversation_id,
                draft_id,
                DraftStatus::Rejected,
                self.store.now(),
            )
            .await?;
        audit(&self.store, actor, tenant, "draft.reject", draft_id).await
    }
}
