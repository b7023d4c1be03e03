//! webhook-ingest: Meta and LINE webhooks, verified on the raw bytes, normalised, routed to their tenant,
//! stored exactly once and queued for a reply, answered within milliseconds. No call but DynamoDB and
//! SQS is made on the request path (KMS only on a LINE channel's first request in a warm container).
//!
//! Status codes: 200 for everything we stored, and for everything that will never succeed (unknown
//! object, unknown account, unsupported event, valid JSON of an unexpected shape: counted, not retried
//! forever); 401 for a missing or wrong signature; 400 for a body that is not JSON; 413 for an oversized body; 500 only when storing or
//! queueing failed, so the platform redelivers and dedup makes that safe.
//!
//! This crate is the HTTP edge (the handshake, signatures, sizes, status codes); routing, storing and
//! queueing are `inbox_shared::service::ingest`.

use std::collections::HashMap;

use inbox_shared::aws::AwsClients;
use inbox_shared::clock::{self, SharedClock};
use inbox_shared::config::{Config, ConfigError};
use inbox_shared::http_response;
use inbox_shared::model::Platform;
use inbox_shared::platform::signature::{self, SignatureError};
use inbox_shared::platform::{self, Parsed};
use inbox_shared::queue::QueuePublisher;
use inbox_shared::runner::{Function, HttpFunction};
use inbox_shared::secret::AppSecret;
use inbox_shared::service::ServiceError;
use inbox_shared::service::ingest::{Account, Authentic, Ingestor};
use inbox_shared::store::Store;
use inbox_shared::telemetry::Metrics;
use inbox_shared::vault::TokenVault;
use lambda_http::{Body, Request, Response};
use tokio::time::Instant;
use tracing::Instrument;
use tracing::field::Empty;

pub const FUNCTION: &str = "webhook-ingest";
/// WhatsApp payloads reach 3 MB.
pub const META_MAX_BODY: usize = 3 * 1024 * 1024;
pub const LINE_MAX_BODY: usize = 1024 * 1024;

pub struct Ingest {
    ingestor: Ingestor,
    app_secret: AppSecret,
    verify_token: AppSecret,
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
            ingestor: Ingestor::new(
                Store::new(clients.dynamodb.clone(), &config.table_name, clock),
                TokenVault::new(clients.kms.clone(), &config.kms_key_id),
                QueuePublisher::new(clients.sqs.clone()),
                config.require_inbound_queue_url()?.to_owned(),
                Metrics::new(FUNCTION),
            ),
            app_secret: config.require_meta_app_secret()?.clone(),
            verify_token: config.require_meta_verify_token()?.clone(),
        })
    }

    pub fn metrics(&self) -> &Metrics {
        self.ingestor.metrics()
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
            (Some("subscribe"), Some(challenge)) if token_matches => {
                http_response::text(200, challenge.as_str())
            }
            _ => {
                self.metrics().count("HandshakeRejected", 1);
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
        // One app secret signs every account's deliveries.
        self.ingest("meta", platform::meta::parse(body), &|_| true)
            .await
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
        let mut account = self.ingestor.account(Platform::Line, &destination).await;
        let mut reloaded = false;
        loop {
            let found = match account {
                Ok(Some(found)) => found,
                Ok(None) => {
                    self.metrics().count("UnknownAccount", 1);
                    return respond(200, "no connected channel for this destination");
                }
                Err(err) => return self.failed(err),
            };
            let Some(secret) = found.line_secret.as_ref() else {
                self.metrics().count("UnknownAccount", 1);
                return respond(200, "the channel has no secret");
            };
            match signature::verify_line(secret, body, signature_header) {
                Ok(()) => break,
                // The cached channel may have been disconnected, or reconnected with a new secret.
                Err(err) => match self.ingestor.route_changed(&found).await {
                    Ok(true) if !reloaded => {
                        reloaded = true;
                        account = self
                            .ingestor
                            .fresh_account(Platform::Line, &destination)
                            .await;
                    }
                    Ok(_) => return self.signature_rejected(err, "x-line-signature"),
                    Err(err) => return self.failed(err),
                },
            }
        }
        let authentic = |account: &Account| {
            account.line_secret.as_ref().is_some_and(|secret| {
                signature::verify_line(secret, body, signature_header).is_ok()
            })
        };
        self.ingest("line", platform::line::parse(body), &authentic)
            .await
    }

    fn refuse_oversized(&self, body: &[u8], limit: usize) -> Option<Response<Body>> {
        (body.len() > limit).then(|| {
            self.metrics().count("BodyTooLarge", 1);
            respond(
                413,
                &format!("the body is {} bytes; the limit is {limit}", body.len()),
            )
        })
    }

    fn invalid_json(&self, err: &platform::ParseError) -> Response<Body> {
        self.metrics().count("InvalidJson", 1);
        respond(400, &err.to_string())
    }

    fn signature_rejected(&self, err: SignatureError, header: &str) -> Response<Body> {
        self.metrics().count("SignatureRejected", 1);
        tracing::warn!(reason = %err, "webhook signature rejected");
        respond(401, &format!("{header}: {err}"))
    }

    fn failed(&self, err: ServiceError) -> Response<Body> {
        self.metrics().count("IngestFailed", 1);
        tracing::error!(error = %err, "ingest failed; the platform will redeliver");
        respond(500, "temporarily unable to store the webhook; please retry")
    }

    /// One verified delivery, in its span: the events it holds are stored and queued for a reply.
    async fn ingest(
        &self,
        webhook: &'static str,
        parsed: Result<Parsed, platform::ParseError>,
        authentic: &Authentic<'_>,
    ) -> Response<Body> {
        // The ids of the messages a failed SendMessageBatch left unqueued are recorded here, so the
        // error line names them.
        let span = tracing::error_span!("delivery", webhook, queued_message_refs = Empty);
        self.ingest_delivery(parsed, authentic)
            .instrument(span)
            .await
    }

    async fn ingest_delivery(
        &self,
        parsed: Result<Parsed, platform::ParseError>,
        authentic: &Authentic<'_>,
    ) -> Response<Body> {
        let parsed = match parsed {
            Ok(parsed) => parsed,
            Err(err) => return self.invalid_json(&err),
        };
        for skipped in &parsed.skipped {
            self.metrics().count(skipped.metric(), 1);
        }
        if let Some(shape) = &parsed.shape_problem {
            // Redelivering the same body cannot help: acknowledged, counted, described (types only).
            tracing::warn!(shape = %shape, "a signed delivery of an unexpected shape acknowledged");
        }
        if parsed.events.is_empty() {
            self.metrics().count("EmptyDelivery", 1);
        }
        match self.ingestor.ingest(parsed.events, authentic).await {
            Ok(()) => respond(200, "EVENT_RECEIVED"),
            Err(err) => self.failed(err),
        }
    }
}

impl Function for Ingest {
    const NAME: &'static str = FUNCTION;

    fn metrics(&self) -> &Metrics {
        self.ingestor.metrics()
    }
}

/// The Lambda entry point (through `inbox_shared::runner`); the deadline is not needed: nothing on
/// the request path waits for long.
impl HttpFunction for Ingest {
    async fn handle_http(&self, request: Request, _deadline: Instant) -> Response<Body> {
        self.handle(request).await
    }
}

/// A plain-text answer for 200 and a JSON error for the rest.
fn respond(status: u16, message: &str) -> Response<Body> {
    if status == 200 {
        http_response::text(200, message)
    } else {
        http_response::json_error(status, message)
    }
}
