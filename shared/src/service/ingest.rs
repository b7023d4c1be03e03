//! Ingesting a verified webhook delivery: every event routed from its platform account to its tenant
//! and channel, stored exactly once (dedup on the platform's message id), and each new customer message
//! queued for ai-reply. Echoes of our own sends are recognised and never answered; a person's reply from
//! the platform's own inbox hands the conversation to a human; statuses advance the sent message.
//!
//! The route of an account (and, for LINE, its channel secret) is cached in the warm container; the
//! items of one delivery that miss the cache together wait for one load.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use futures::stream::{self, StreamExt, TryStreamExt};
use tokio::time::Instant;
use tracing::Instrument;
use tracing::field::Empty;

use crate::jobs::InboundJob;
use crate::keys;
use crate::model::*;
use crate::platform::{EventKind, InboundEvent};
use crate::queue::{QueueMessage, QueuePublisher};
use crate::secret::{ChannelSecret, MessageText, PlatformUserId};
use crate::single_flight::LoadLocks;
use crate::store::{ConversationTouch, Ingested, Store, StoreError};
use crate::telemetry::{Metrics, message_ref};
use crate::vault::{SealContext, TokenVault};

use super::ServiceError;

/// A route found stays cached this long in a warm container (a write never trusts it: it requires the
/// route unchanged). An unknown account is not cached: it is read again on its next delivery, so an
/// account connected a moment ago is never taken for unknown (and its messages never dropped).
const ROUTE_TTL: StdDuration = StdDuration::from_secs(60);
/// Accounts one warm container remembers at most.
const MAX_CACHED_ACCOUNTS: usize = 10_000;
/// Conversations ingested concurrently (events of one conversation go in order).
const CONCURRENT_CONVERSATIONS: usize = 16;

/// Whether a verified delivery is authentic for an account: Meta signs with the app's secret, the same
/// for every account; LINE with the channel's own secret, so an account read again after a route change
/// must verify the delivery again.
pub type Authentic<'a> = dyn Fn(&Account) -> bool + Sync + 'a;

/// Why one event was not ingested by [`Ingestor::ingest_event`].
enum ItemError {
    /// The cached route is stale: nothing was written.
    RouteChanged,
    Failed(ServiceError),
}

impl ItemError {
    fn unless_rerouted(outcome: Ingested) -> Result<(), ItemError> {
        match outcome {
            Ingested::RouteChanged => Err(ItemError::RouteChanged),
            Ingested::Stored | Ingested::Duplicate { .. } => Ok(()),
        }
    }
}

impl<E: Into<ServiceError>> From<E> for ItemError {
    fn from(err: E) -> Self {
        ItemError::Failed(err.into())
    }
}

/// A connected account as ingest needs it.
pub struct Account {
    pub route: Route,
    pub tenant: Tenant,
    /// LINE: the secret that signs the channel's webhooks.
    pub line_secret: Option<ChannelSecret>,
}

struct CachedAccount {
    account: Arc<Account>,
    cached_at: Instant,
}

pub struct Ingestor {
    store: Store,
    vault: TokenVault,
    publisher: QueuePublisher,
    queue_url: String,
    accounts: Mutex<HashMap<(Platform, String), CachedAccount>>,
    account_loads: LoadLocks<(Platform, String)>,
    metrics: Metrics,
}

impl Ingestor {
    pub fn new(
        store: Store,
        vault: TokenVault,
        publisher: QueuePublisher,
        queue_url: String,
        metrics: Metrics,
    ) -> Self {
        Self {
            store,
            vault,
            publisher,
            queue_url,
            accounts: Mutex::new(HashMap::new()),
            account_loads: LoadLocks::default(),
            metrics,
        }
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Stores a verified delivery's events (each conversation's in order, conversations concurrently) and
    /// queues every new customer message for a reply in FIFO groups per conversation. `authentic` says
    /// whether the delivery is authentic for an account read again after its route changed.
    pub async fn ingest(
        &self,
        events: Vec<InboundEvent>,
        authentic: &Authentic<'_>,
    ) -> Result<(), ServiceError> {
        // One group per conversation, in timestamp order; groups run concurrently.
        let mut groups: Vec<Vec<InboundEvent>> = Vec::new();
        let mut index: HashMap<(Platform, String, PlatformUserId), usize> = HashMap::new();
        for event in events {
            let key = (
                event.platform,
                event.account_id.clone(),
                event.user_id.clone(),
            );
            let slot = *index.entry(key).or_insert_with(|| {
                groups.push(Vec::new());
                groups.len() - 1
            });
            groups[slot].push(event);
        }
        let to_queue: Vec<Vec<InboundJob>> = stream::iter(groups)
            .map(|group| self.ingest_conversation(group, authentic))
            .buffer_unordered(CONCURRENT_CONVERSATIONS)
            .try_collect()
            .await?;
        let to_queue: Vec<InboundJob> = to_queue.into_iter().flatten().collect();
        if to_queue.is_empty() {
            return Ok(());
        }
        let messages: Vec<QueueMessage> = to_queue
            .iter()
            .map(|job| {
                QueueMessage::fifo(
                    serde_json::to_string(job).expect("a job serialises"),
                    job.conversation_id.clone(),
                    job.dedup_id(),
                )
            })
            .collect();
        let refs: Vec<String> = to_queue
            .iter()
            .map(|job| message_ref(&job.message_id))
            .collect();
        tracing::Span::current().record("queued_message_refs", refs.join(",").as_str());
        self.publisher.publish(&self.queue_url, messages).await?;
        self.metrics.count("Queued", to_queue.len() as u64);
        Ok(())
    }

    async fn ingest_conversation(
        &self,
        events: Vec<InboundEvent>,
        authentic: &Authentic<'_>,
    ) -> Result<Vec<InboundJob>, ServiceError> {
        let mut to_queue = Vec::new();
        for event in events {
            let span = tracing::error_span!(
                "item",
                platform = ?event.platform,
                tenant_id = Empty,
                channel_id = Empty,
                conversation_id = Empty,
                message_ref = event.kind.message_id().map(message_ref),
            );
            if let Some(job) = self.ingest_item(event, authentic).instrument(span).await? {
                to_queue.push(job);
            }
        }
        Ok(to_queue)
    }

    /// One webhook item, in its span (ids only: never the platform user id, a phone number on
    /// WhatsApp): routed to its tenant, stored, and handed back when it is to be queued for a reply.
    /// The route may come from the warm container's cache, so the write itself requires the route to
    /// be unchanged; when it changed (a disconnect, an account moved to another tenant), the route is
    /// read again and the item ingested once more for its present owner, if `authentic` for it.
    async fn ingest_item(
        &self,
        mut event: InboundEvent,
        authentic: &Authentic<'_>,
    ) -> Result<Option<InboundJob>, ServiceError> {
        let mut account = self.account(event.platform, &event.account_id).await?;
        let mut rerouted = false;
        loop {
            let Some(routed) = account else {
                self.metrics.count("UnknownAccount", 1);
                return Ok(None);
            };
            let span = tracing::Span::current();
            span.record("tenant_id", routed.route.tenant_id.as_str());
            span.record("channel_id", routed.route.channel_id.as_str());
            span.record(
                "conversation_id",
                keys::conversation_id(&routed.route.channel_id, &event.user_id).as_str(),
            );
            if !rerouted && let Some(claimed) = event.clamp_timestamp(self.store.now()) {
                self.metrics.count("TimestampClamped", 1);
                tracing::warn!(
                    platform_timestamp = claimed.unix_timestamp(),
                    "implausible platform timestamp replaced by the receive time"
                );
            }
            if routed.tenant.status != TenantStatus::Active {
                self.metrics.count("TenantNotActive", 1);
                return Ok(None);
            }
            let failure = match self.ingest_event(&routed, event.clone()).await {
                Ok(Some(job)) => {
                    tracing::info!("message stored; to be queued for a reply");
                    return Ok(Some(job));
                }
                Ok(None) => return Ok(None),
                Err(ItemError::RouteChanged) if !rerouted => {
                    self.metrics.count("RouteChanged", 1);
                    tracing::info!("the account's route changed; routing the item again");
                    rerouted = true;
                    account = self
                        .fresh_account(event.platform, &event.account_id)
                        .await?
                        .filter(|fresh| {
                            authentic(fresh) || {
                                self.metrics.count("SignatureRejectedAfterReroute", 1);
                                false
                            }
                        });
                    continue;
                }
                Err(ItemError::RouteChanged) => {
                    self.metrics.count("RouteChanged", 1);
                    return Ok(None);
                }
                Err(ItemError::Failed(err)) => err,
            };
            if let ServiceError::Store(StoreError::Unstorable(why)) = &failure {
                // It would fail on every redelivery: skipped, so the rest of the delivery goes through.
                self.metrics.count("SkippedUnstorable", 1);
                tracing::warn!(reason = %why, "item skipped: it cannot be stored");
                return Ok(None);
            }
            tracing::warn!(error = %failure, "item not stored");
            return Err(failure);
        }
    }

    async fn ingest_event(
        &self,
        account: &Account,
        event: InboundEvent,
    ) -> Result<Option<InboundJob>, ItemError> {
        let route = &account.route;
        let conversation_id = keys::conversation_id(&route.channel_id, &event.user_id);
        let retain_until = account.tenant.retention.content_deadline(event.timestamp);
        let message = |message_id: String,
                       direction,
                       author,
                       text: Option<MessageText>,
                       attachments,
                       payload| Message {
            tenant_id: route.tenant_id.clone(),
            conversation_id: conversation_id.clone(),
            channel_id: route.channel_id.clone(),
            message_id,
            direction,
            author,
            text,
            attachments,
            payload,
            status: if direction == Direction::Inbound {
                MessageStatus::Received
            } else {
                MessageStatus::Sent
            },
            error_code: None,
            sent_at: event.timestamp,
            retain_until,
            reply_outcome: None,
        };
        let touch = |last_inbound_at, hand_to_human| ConversationTouch {
            conversation_id: &conversation_id,
            channel_id: &route.channel_id,
            platform: route.platform,
            user_id: &event.user_id,
            last_inbound_at,
            hand_to_human,
            retain_until,
            routed_account: Some(&event.account_id),
        };
        let (stored, reply_token, profile_name) = match event.kind {
            EventKind::Message(m) => (
                message(
                    m.message_id,
                    Direction::Inbound,
                    Author::Customer,
                    m.text,
                    m.attachments,
                    m.payload,
                ),
                m.reply_token,
                m.profile_name,
            ),
            EventKind::Postback {
                message_id,
                title,
                payload,
            } => (
                message(
                    message_id,
                    Direction::Inbound,
                    Author::Customer,
                    title,
                    Vec::new(),
                    Some(payload),
                ),
                None,
                None,
            ),
            EventKind::Echo(echo) => {
                let ours = echo.is_tagged_ours()
                    || self
                        .store
                        .sent_marker(&route.tenant_id, &conversation_id, &echo.message_id)
                        .await?
                        .is_some();
                if ours {
                    self.metrics.count("EchoOfOurSend", 1);
                    return Ok(None);
                }
                // Someone replied from Meta's own inbox: store it, and the bot steps back.
                let reply = message(
                    echo.message_id,
                    Direction::Outbound,
                    Author::Agent,
                    echo.text,
                    Vec::new(),
                    None,
                );
                let outcome = self
                    .store
                    .ingest_message(
                        &reply,
                        &touch(
                            None,
                            Some(HandoffReason::AgentRepliedInPlatformInbox.as_str()),
                        ),
                        None,
                    )
                    .await?;
                ItemError::unless_rerouted(outcome)?;
                self.metrics.count("HumanTookOver", 1);
                return Ok(None);
            }
            EventKind::Comment {
                comment_id, text, ..
            } => {
                // Stored for the inbox; a comment does not open a messaging window nor get an AI reply.
                let comment = message(
                    comment_id,
                    Direction::Inbound,
                    Author::Customer,
                    text,
                    vec![Attachment {
                        kind: "comment".into(),
                        url: None,
                    }],
                    None,
                );
                let outcome = self
                    .store
                    .ingest_message(&comment, &touch(None, None), None)
                    .await?;
                ItemError::unless_rerouted(outcome)?;
                self.metrics.count("Comment", 1);
                return Ok(None);
            }
            EventKind::Status {
                message_id,
                status,
                error_code,
            } => {
                let advanced = self
                    .store
                    .advance_message_status(
                        &route.tenant_id,
                        &conversation_id,
                        &message_id,
                        status,
                        error_code,
                    )
                    .await?;
                self.metrics.count(
                    if advanced {
                        "StatusRecorded"
                    } else {
                        "StatusIgnored"
                    },
                    1,
                );
                return Ok(None);
            }
            EventKind::Reaction { .. } => return self.counted("Reaction"),
            EventKind::Read { .. } => return self.counted("Read"),
            EventKind::Delivery { .. } => return self.counted("Delivery"),
            EventKind::Follow => return self.counted("Follow"),
            EventKind::Unfollow => return self.counted("Unfollow"),
        };
        let outcome = self
            .store
            .ingest_message(
                &stored,
                &touch(Some(event.timestamp), None),
                profile_name.as_ref(),
            )
            .await?;
        let needs_queue = match outcome {
            Ingested::Stored => {
                self.metrics.count("Ingested", 1);
                true
            }
            // Queued again unless already answered: the first delivery may have been stored and then
            // failed to queue (we answered 500, so the platform redelivers). A job queued twice is
            // harmless: SQS drops the repeat within its 5-minute deduplication window, and after it the
            // repeat waits behind the original in the conversation's FIFO group and finds it answered.
            Ingested::Duplicate { answered } => {
                self.metrics.count("Duplicate", 1);
                !answered
            }
            Ingested::RouteChanged => return Err(ItemError::RouteChanged),
        };
        if !needs_queue || event.standby {
            return Ok(None);
        }
        let job = InboundJob {
            tenant_id: route.tenant_id.clone(),
            channel_id: route.channel_id.clone(),
            conversation_id: conversation_id.clone(),
            platform: route.platform,
            message_id: stored.message_id.clone(),
            sent_at: stored.sent_at,
            received_at: self.store.now(),
            reply_token: reply_token.map(|t| t.expose().to_owned()),
        };
        Ok(Some(job))
    }

    fn counted(&self, metric: &'static str) -> Result<Option<InboundJob>, ItemError> {
        self.metrics.count(metric, 1);
        Ok(None)
    }

    /// The connected account behind a platform account id, cached in the warm container.
    pub async fn account(
        &self,
        platform: Platform,
        account_id: &str,
    ) -> Result<Option<Arc<Account>>, ServiceError> {
        if !crate::platform::storable_id(account_id) {
            // No channel can have connected it, and its route key would be refused.
            return Ok(None);
        }
        let cache_key = (platform, account_id.to_owned());
        if let Some(account) = self.cached_account(&cache_key) {
            return Ok(Some(account));
        }
        // The items of one delivery are ingested concurrently: one of them loads, the rest wait for it.
        let _loading = self.account_loads.lock(&cache_key).await;
        if let Some(account) = self.cached_account(&cache_key) {
            return Ok(Some(account));
        }
        let Some(account) = self.load_account(platform, account_id).await?.map(Arc::new) else {
            return Ok(None);
        };
        let mut accounts = self.accounts.lock().expect("cache poisoned");
        if accounts.len() >= MAX_CACHED_ACCOUNTS {
            accounts.retain(|_, cached| cached.cached_at.elapsed() < ROUTE_TTL);
            if accounts.len() >= MAX_CACHED_ACCOUNTS {
                accounts.clear();
            }
        }
        accounts.insert(
            cache_key,
            CachedAccount {
                account: account.clone(),
                cached_at: Instant::now(),
            },
        );
        Ok(Some(account))
    }

    /// The account read again, whatever the cache holds (and cached again).
    pub async fn fresh_account(
        &self,
        platform: Platform,
        account_id: &str,
    ) -> Result<Option<Arc<Account>>, ServiceError> {
        self.accounts
            .lock()
            .expect("cache poisoned")
            .remove(&(platform, account_id.to_owned()));
        self.account(platform, account_id).await
    }

    /// Whether the account's route is no longer the one `cached` was loaded with (one read, no
    /// decryption: what a refused LINE signature costs before the channel's secret is loaded again).
    pub async fn route_changed(&self, cached: &Account) -> Result<bool, ServiceError> {
        let route = &cached.route;
        let stored = self.store.route(route.platform, &route.account_id).await?;
        Ok(stored.as_ref() != Some(route))
    }

    /// The cached account while it is fresh.
    fn cached_account(&self, cache_key: &(Platform, String)) -> Option<Arc<Account>> {
        let accounts = self.accounts.lock().expect("cache poisoned");
        let cached = accounts.get(cache_key)?;
        (cached.cached_at.elapsed() < ROUTE_TTL).then(|| cached.account.clone())
    }

    async fn load_account(
        &self,
        platform: Platform,
        account_id: &str,
    ) -> Result<Option<Account>, ServiceError> {
        let Some(route) = self.store.route(platform, account_id).await? else {
            return Ok(None);
        };
        let Some(tenant) = self.store.get_tenant(&route.tenant_id).await? else {
            return Ok(None);
        };
        let line_secret = if platform == Platform::Line {
            let channel = self
                .store
                .get_channel(&route.tenant_id, &route.channel_id)
                .await?;
            match channel.and_then(|c| c.credentials) {
                Some(credentials) => {
                    self.vault
                        .open_channel_secret(
                            &SealContext::new(&route.tenant_id, &route.channel_id),
                            &credentials,
                        )
                        .await?
                }
                None => None,
            }
        } else {
            None
        };
        Ok(Some(Account {
            route,
            tenant,
            line_secret,
        }))
    }
}
