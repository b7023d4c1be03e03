//! webhook-ingest: Meta and LINE webhooks, verified on the raw bytes, normalised, routed to their tenant,
//! stored exactly once and queued for a reply, answered within milliseconds. No call but DynamoDB and
//! SQS is made on the request path (KMS only on a LINE channel's first request in a warm container).
//!
//! Status codes: 200 for everything we stored, and for everything that will never succeed (unknown
//! object, unknown account, unsupported event: counted, not retried forever); 401 for a missing or wrong
//! signature; 400 for a body that is not JSON; 413 for an oversized body; 500 only when storing or
//! queueing failed, so the platform redelivers and dedup makes that safe.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use futures::stream::{self, StreamExt, TryStreamExt};
use inbox_shared::aws::AwsClients;
use inbox_shared::clock::{self, SharedClock};
use inbox_shared::config::{Config, ConfigError};
use inbox_shared::jobs::InboundJob;
use inbox_shared::keys;
use inbox_shared::model::*;
use inbox_shared::platform::signature::{self, SignatureError};
use inbox_shared::platform::{self, EventKind, InboundEvent, Parsed};
use inbox_shared::queue::{QueueError, QueueMessage, QueuePublisher};
use inbox_shared::runner::{Function, HttpFunction};
use inbox_shared::secret::{AppSecret, ChannelSecret, MessageText, PlatformUserId};
use inbox_shared::single_flight::LoadLocks;
use inbox_shared::store::{ConversationTouch, Ingested, Store, StoreError};
use inbox_shared::telemetry::Metrics;
use inbox_shared::vault::{SealContext, TokenVault, VaultError};
use lambda_http::{Body, Request, Response};
use tokio::time::Instant;
use tracing::Instrument;
use tracing::field::Empty;

pub const FUNCTION: &str = "webhook-ingest";
/// WhatsApp payloads reach 3 MB.
pub const META_MAX_BODY: usize = 3 * 1024 * 1024;
pub const LINE_MAX_BODY: usize = 1024 * 1024;
/// A route found stays cached this long in a warm container; an unknown account, less.
const ROUTE_TTL: StdDuration = StdDuration::from_secs(60);
const UNKNOWN_ROUTE_TTL: StdDuration = StdDuration::from_secs(10);
/// Accounts (known or not) one warm container remembers at most.
const MAX_CACHED_ACCOUNTS: usize = 10_000;
/// Conversations ingested concurrently (events of one conversation go in order).
const CONCURRENT_CONVERSATIONS: usize = 16;

#[derive(Debug, thiserror::Error)]
enum IngestError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// A connected account as ingest needs it.
struct Account {
    route: Route,
    tenant: Tenant,
    line_secret: Option<ChannelSecret>,
}

struct CachedAccount {
    account: Option<Arc<Account>>,
    cached_at: Instant,
}

pub struct Ingest {
    store: Store,
    vault: TokenVault,
    publisher: QueuePublisher,
    queue_url: String,
    app_secret: AppSecret,
    verify_token: AppSecret,
    accounts: Mutex<HashMap<(Platform, String), CachedAccount>>,
    account_loads: LoadLocks<(Platform, String)>,
    metrics: Metrics,
}

impl Ingest {
    /// Reads configuration and builds clients: once per cold start.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let config = Config::from_env()?;
        Self::new(&config, &AwsClients::from_env().await, clock::system())
    }

    pub fn new(
        config: &Config,
        clients: &AwsClients,
        clock: SharedClock,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            store: Store::new(clients.dynamodb.clone(), &config.table_name, clock),
            vault: TokenVault::new(clients.kms.clone(), &config.kms_key_id),
            publisher: QueuePublisher::new(clients.sqs.clone()),
            queue_url: config.require_inbound_queue_url()?.to_owned(),
            app_secret: config.require_meta_app_secret()?.clone(),
            verify_token: config.require_meta_verify_token()?.clone(),
            accounts: Mutex::new(HashMap::new()),
            account_loads: LoadLocks::default(),
            metrics: Metrics::new(FUNCTION),
        })
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub async fn handle(&self, request: Request) -> Response<Body> {
        let (parts, body) = request.into_parts();
        let bytes: &[u8] = match &body {
            Body::Empty => &[],
            Body::Text(text) => text.as_bytes(),
            Body::Binary(bytes) => bytes,
            _ => &[],
        };
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        match (parts.method.as_str(), parts.uri.path()) {
            ("GET", "/webhooks/meta") => self.handshake(parts.uri.query().unwrap_or_default()),
            ("POST", "/webhooks/meta") => self.meta(bytes, header("x-hub-signature-256")).await,
            ("POST", "/webhooks/line") => self.line(bytes, header("x-line-signature")).await,
            (_, "/webhooks/meta" | "/webhooks/line") => respond(405, "method not allowed"),
            (_, path) => respond(404, &format!("no route for {path}")),
        }
    }

    /// Meta's subscribe handshake: echo `hub.challenge` as plain text when the verify token matches.
    fn handshake(&self, query: &str) -> Response<Body> {
        let params: HashMap<String, String> = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let token_matches = params
            .get("hub.verify_token")
            .is_some_and(|given| signature::verify_token_matches(&self.verify_token, given));
        match (
            params.get("hub.mode").map(String::as_str),
            params.get("hub.challenge"),
        ) {
            (Some("subscribe"), Some(challenge)) if token_matches => Response::builder()
                .status(200)
                .header("content-type", "text/plain")
                .body(Body::Text(challenge.clone()))
                .expect("a valid response"),
            _ => {
                self.metrics.count("HandshakeRejected", 1);
                respond(
                    403,
                    "verification failed: hub.mode must be subscribe and hub.verify_token must match",
                )
            }
        }
    }

    async fn meta(&self, body: &[u8], signature_header: Option<&str>) -> Response<Body> {
        if let Some(refused) = self.refuse_oversized(body, META_MAX_BODY) {
            return refused;
        }
        if let Err(err) = signature::verify_meta(&self.app_secret, body, signature_header) {
            return self.signature_rejected(err, "X-Hub-Signature-256");
        }
        self.ingest("meta", platform::meta::parse(body)).await
    }

    async fn line(&self, body: &[u8], signature_header: Option<&str>) -> Response<Body> {
        if let Some(refused) = self.refuse_oversized(body, LINE_MAX_BODY) {
            return refused;
        }
        if signature_header.is_none() {
            return self.signature_rejected(SignatureError::Missing, "x-line-signature");
        }
        // LINE signs with the channel's own secret: find the channel from `destination` first.
        let destination = match platform::line::destination(body) {
            Ok(Some(destination)) => destination,
            Ok(None) => return respond(400, "the body has no destination"),
            Err(err) => return self.invalid_json(&err),
        };
        let account = match self.account(Platform::Line, &destination).await {
            Ok(Some(account)) => account,
            Ok(None) => {
                self.metrics.count("UnknownAccount", 1);
                return respond(200, "no connected channel for this destination");
            }
            Err(err) => return self.failed(err),
        };
        let Some(secret) = account.line_secret.as_ref() else {
            self.metrics.count("UnknownAccount", 1);
            return respond(200, "the channel has no secret");
        };
        if let Err(err) = signature::verify_line(secret, body, signature_header) {
            return self.signature_rejected(err, "x-line-signature");
        }
        self.ingest("line", platform::line::parse(body)).await
    }

    fn refuse_oversized(&self, body: &[u8], limit: usize) -> Option<Response<Body>> {
        (body.len() > limit).then(|| {
            self.metrics.count("BodyTooLarge", 1);
            respond(
                413,
                &format!("the body is {} bytes; the limit is {limit}", body.len()),
            )
        })
    }

    fn invalid_json(&self, err: &platform::ParseError) -> Response<Body> {
        self.metrics.count("InvalidJson", 1);
        respond(400, &err.to_string())
    }

    fn signature_rejected(&self, err: SignatureError, header: &str) -> Response<Body> {
        self.metrics.count("SignatureRejected", 1);
        tracing::warn!(reason = %err, "webhook signature rejected");
        respond(401, &format!("{header}: {err}"))
    }

    fn failed(&self, err: IngestError) -> Response<Body> {
        self.metrics.count("IngestFailed", 1);
        tracing::error!(error = %err, "ingest failed; the platform will redeliver");
        respond(500, "temporarily unable to store the webhook; please retry")
    }

    /// One verified delivery, in its span: the events it holds are stored and queued for a reply.
    async fn ingest(
        &self,
        webhook: &'static str,
        parsed: Result<Parsed, platform::ParseError>,
    ) -> Response<Body> {
        // The ids of the messages a failed SendMessageBatch left unqueued are recorded here, so the
        // error line names them.
        let span = tracing::error_span!("delivery", webhook, queued_message_ids = Empty);
        self.ingest_delivery(parsed).instrument(span).await
    }

    async fn ingest_delivery(
        &self,
        parsed: Result<Parsed, platform::ParseError>,
    ) -> Response<Body> {
        let parsed = match parsed {
            Ok(parsed) => parsed,
            Err(err) => return self.invalid_json(&err),
        };
        for skipped in &parsed.skipped {
            self.metrics.count(skipped.metric(), 1);
        }
        if parsed.events.is_empty() {
            self.metrics.count("EmptyDelivery", 1);
        }
        match self.ingest_events(parsed.events).await {
            Ok(()) => respond(200, "EVENT_RECEIVED"),
            Err(err) => self.failed(err),
        }
    }

    async fn ingest_events(&self, events: Vec<InboundEvent>) -> Result<(), IngestError> {
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
            .map(|group| self.ingest_conversation(group))
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
        let ids: Vec<&str> = to_queue.iter().map(|job| job.message_id.as_str()).collect();
        tracing::Span::current().record("queued_message_ids", ids.join(",").as_str());
        self.publisher.publish(&self.queue_url, messages).await?;
        self.metrics.count("Queued", to_queue.len() as u64);
        Ok(())
    }

    async fn ingest_conversation(
        &self,
        events: Vec<InboundEvent>,
    ) -> Result<Vec<InboundJob>, IngestError> {
        let mut to_queue = Vec::new();
        for event in events {
            let span = tracing::error_span!(
                "item",
                platform = ?event.platform,
                tenant_id = Empty,
                channel_id = Empty,
                conversation_id = Empty,
                message_id = platform_message_id(&event.kind),
            );
            if let Some(job) = self.ingest_item(event).instrument(span).await? {
                to_queue.push(job);
            }
        }
        Ok(to_queue)
    }

    /// One webhook item, in its span (ids only: never the platform user id, a phone number on
    /// WhatsApp): routed to its tenant, stored, and handed back when it is to be queued for a reply.
    async fn ingest_item(&self, event: InboundEvent) -> Result<Option<InboundJob>, IngestError> {
        let Some(account) = self.account(event.platform, &event.account_id).await? else {
            self.metrics.count("UnknownAccount", 1);
            return Ok(None);
        };
        let span = tracing::Span::current();
        span.record("tenant_id", account.route.tenant_id.as_str());
        span.record("channel_id", account.route.channel_id.as_str());
        span.record(
            "conversation_id",
            keys::conversation_id(&account.route.channel_id, &event.user_id).as_str(),
        );
        if account.tenant.status != TenantStatus::Active {
            self.metrics.count("TenantNotActive", 1);
            return Ok(None);
        }
        let ingested = self.ingest_event(&account, event).await;
        match &ingested {
            Ok(Some(_)) => tracing::info!("message stored; to be queued for a reply"),
            Ok(None) => {}
            Err(err) => tracing::warn!(error = %err, "item not stored"),
        }
        ingested
    }

    async fn ingest_event(
        &self,
        account: &Account,
        event: InboundEvent,
    ) -> Result<Option<InboundJob>, IngestError> {
        let route = &account.route;
        let conversation_id = keys::conversation_id(&route.channel_id, &event.user_id);
        let retain_until = event.timestamp + account.tenant.retention.content();
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
                self.store
                    .ingest_message(
                        &reply,
                        &touch(
                            None,
                            Some(HandoffReason::AgentRepliedInPlatformInbox.as_str()),
                        ),
                        None,
                    )
                    .await?;
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
                self.store
                    .ingest_message(&comment, &touch(None, None), None)
                    .await?;
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

    fn counted(&self, metric: &'static str) -> Result<Option<InboundJob>, IngestError> {
        self.metrics.count(metric, 1);
        Ok(None)
    }

    /// The connected account behind a platform account id, cached in the warm container.
    async fn account(
        &self,
        platform: Platform,
        account_id: &str,
    ) -> Result<Option<Arc<Account>>, IngestError> {
        let cache_key = (platform, account_id.to_owned());
        if let Some(account) = self.cached_account(&cache_key) {
            return Ok(account);
        }
        // The items of one delivery are ingested concurrently: one of them loads, the rest wait for it.
        let _loading = self.account_loads.lock(&cache_key).await;
        if let Some(account) = self.cached_account(&cache_key) {
            return Ok(account);
        }
        let account = self.load_account(platform, account_id).await?.map(Arc::new);
        let mut accounts = self.accounts.lock().expect("cache poisoned");
        if accounts.len() >= MAX_CACHED_ACCOUNTS {
            // LINE's `destination` is read before the signature can be checked, so anyone can make us
            // look up made-up accounts: keep the cache bounded, known accounts first.
            accounts.retain(|_, cached| {
                cached.account.is_some() && cached.cached_at.elapsed() < ROUTE_TTL
            });
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
        Ok(account)
    }

    /// `Some` with the cached answer (an account or none) while it is fresh.
    fn cached_account(&self, cache_key: &(Platform, String)) -> Option<Option<Arc<Account>>> {
        let accounts = self.accounts.lock().expect("cache poisoned");
        let cached = accounts.get(cache_key)?;
        let ttl = if cached.account.is_some() {
            ROUTE_TTL
        } else {
            UNKNOWN_ROUTE_TTL
        };
        (cached.cached_at.elapsed() < ttl).then(|| cached.account.clone())
    }

    async fn load_account(
        &self,
        platform: Platform,
        account_id: &str,
    ) -> Result<Option<Account>, IngestError> {
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

impl Function for Ingest {
    const NAME: &'static str = FUNCTION;

    fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}

/// The Lambda entry point (through `inbox_shared::runner`); the deadline is not needed: nothing on
/// the request path waits for long.
impl HttpFunction for Ingest {
    async fn handle_http(&self, request: Request, _deadline: Instant) -> Response<Body> {
        self.handle(request).await
    }
}

/// The platform's id of the message an event is about, for the logs (`None`: the event has none).
fn platform_message_id(kind: &EventKind) -> Option<&str> {
    match kind {
        EventKind::Message(m) => Some(&m.message_id),
        EventKind::Echo(echo) => Some(&echo.message_id),
        EventKind::Postback { message_id, .. }
        | EventKind::Reaction { message_id, .. }
        | EventKind::Status { message_id, .. } => Some(message_id),
        EventKind::Comment { comment_id, .. } => Some(comment_id),
        EventKind::Read { message_id, .. } => message_id.as_deref(),
        EventKind::Delivery { .. } | EventKind::Follow | EventKind::Unfollow => None,
    }
}

/// A plain-text answer for 200 and a JSON error for the rest.
fn respond(status: u16, message: &str) -> Response<Body> {
    let (content_type, body) = if status == 200 {
        ("text/plain", message.to_owned())
    } else {
        (
            "application/json",
            serde_json::json!({ "error": message }).to_string(),
        )
    };
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Body::Text(body))
        .expect("a valid response")
}
