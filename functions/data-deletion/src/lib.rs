//! data-deletion: Meta's Data Deletion Request callback, the Deauthorize callback, the deletion status
//! page a person can read, and the Data Deletion Instructions page Meta asks apps to publish.
//!
//! A callback is verified (`signed_request`, HMAC-SHA256 with the app secret) before anything is read
//! or stored; a bad signature records nothing. A verified request is handed to
//! [`DeletionIntake::accept`]: recorded with an unguessable confirmation code (128 random bits; a replay
//! of the same signed request gets the same code), its erasure queued for retention-sweep, and on a
//! deauthorization every channel that user connected is disconnected first, so their tokens are
//! destroyed before the answer is sent.
//!
//! Status codes: 200 with the JSON Meta expects; 400 for a missing or malformed signed request; 401 for
//! a bad signature; 404 for an unknown confirmation code; 500 when the request could not be recorded or
//! queued (Meta retries, and the replay finds the same code and queues again).

use std::collections::HashMap;

use inbox_shared::aws::AwsClients;
use inbox_shared::clock::{self, SharedClock};
use inbox_shared::config::{Config, ConfigError};
use inbox_shared::http_response::{escape, html, json, json_error, page};
use inbox_shared::model::*;
use inbox_shared::platform::signed_request::{SignedRequestError, verify_signed_request};
use inbox_shared::queue::QueuePublisher;
use inbox_shared::runner::{Function, HttpFunction};
use inbox_shared::secret::AppSecret;
use inbox_shared::service::deletion::{DeletionIntake, DeletionKind};
use inbox_shared::store::Store;
use inbox_shared::telemetry::Metrics;
use lambda_http::{Body, Request, Response};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub const FUNCTION: &str = "data-deletion";
const ACTOR: &str = "meta-callback";
/// Form bodies Meta sends are tiny; anything bigger is not a callback.
const MAX_BODY: usize = 64 * 1024;

pub struct DataDeletion {
    store: Store,
    intake: DeletionIntake,
    app_secret: AppSecret,
    /// The origin of the status-page links; without `PUBLIC_BASE_URL`, the `Host` the request came to
    /// over HTTPS (API Gateway's own domain, or a custom domain mapped to it).
    public_base_url: Option<String>,
    metrics: Metrics,
}

impl DataDeletion {
    pub async fn from_env() -> Result<Self, ConfigError> {
        let config = Config::from_env()?;
        Self::new(&config, &AwsClients::from_env().await, clock::system())
    }

    pub fn new(
        config: &Config,
        clients: &AwsClients,
        clock: SharedClock,
    ) -> Result<Self, ConfigError> {
        let store = Store::new(clients.dynamodb.clone(), &config.table_name, clock);
        Ok(Self {
            intake: DeletionIntake::new(
                store.clone(),
                QueuePublisher::new(clients.sqs.clone()),
                config.require_erasure_queue_url()?.to_owned(),
                ACTOR,
            ),
            store,
            app_secret: config.require_meta_app_secret()?.clone(),
            public_base_url: config.public_base_url.clone(),
            metrics: Metrics::new(FUNCTION),
        })
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub async fn handle(&self, request: Request) -> Response<Body> {
        let (parts, body) = request.into_parts();
        let bytes: &[u8] = match &body {
            Body::Text(text) => text.as_bytes(),
            Body::Binary(bytes) => bytes,
            _ => &[],
        };
        let wants_json = parts
            .headers
            .get("accept")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|accept| accept.contains("application/json"));
        let query: HashMap<String, String> =
            form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
                .into_owned()
                .collect();
        let base_url = self.public_base_url.clone().or_else(|| {
            parts
                .headers
                .get("host")
                .and_then(|h| h.to_str().ok())
                .map(|host| format!("https://{host}"))
        });
        match (parts.method.as_str(), parts.uri.path()) {
            ("POST", "/meta/data-deletion") => {
                self.callback(bytes, Callback::DataDeletion, base_url.as_deref())
                    .await
            }
            ("POST", "/meta/deauthorize") => {
                self.callback(bytes, Callback::Deauthorize, base_url.as_deref())
                    .await
            }
            ("GET", "/meta/deletion-status") => {
                self.status(query.get("code").map(String::as_str), wants_json)
                    .await
            }
            ("GET", "/privacy/data-deletion") => html(200, instructions_page()),
            (_, "/meta/data-deletion" | "/meta/deauthorize") => {
                json_error(405, "method not allowed: use POST")
            }
            (_, "/meta/deletion-status" | "/privacy/data-deletion") => {
                json_error(405, "method not allowed: use GET")
            }
            (_, path) => json_error(404, &format!("no route for {path}")),
        }
    }

    async fn callback(
        &self,
        body: &[u8],
        callback: Callback,
        base_url: Option<&str>,
    ) -> Response<Body> {
        let Some(base_url) = base_url else {
            return json_error(
                400,
                "no Host header to build the status URL from (or set PUBLIC_BASE_URL)",
            );
        };
        if body.len() > MAX_BODY {
            return json_error(413, &format!("the body is over {MAX_BODY} bytes"));
        }
        let Some(signed_request) = form_urlencoded::parse(body)
            .find(|(name, _)| name == "signed_request")
            .map(|(_, value)| value.into_owned())
        else {
            self.metrics.count("CallbackMalformed", 1);
            return json_error(
                400,
                "the body must be form-encoded with a signed_request field",
            );
        };
        let signed = match verify_signed_request(&self.app_secret, &signed_request) {
            Ok(signed) => signed,
            Err(err @ SignedRequestError::BadSignature) => {
                self.metrics.count("CallbackSignatureRejected", 1);
                tracing::warn!("signed_request with a bad signature refused");
                return json_error(401, &err.to_string());
            }
            Err(err) => {
                self.metrics.count("CallbackMalformed", 1);
                return json_error(400, &err.to_string());
            }
        };
        match self
            .intake
            .accept(callback.kind(), &signed.user_id, signed.issued_at)
            .await
        {
            Ok(accepted) => {
                self.metrics
                    .count("ChannelDeauthorized", accepted.channels_disconnected);
                self.metrics.count(
                    if accepted.new {
                        callback.metric()
                    } else {
                        "CallbackReplayed"
                    },
                    1,
                );
                let code = accepted.confirmation_code;
                match callback {
                    Callback::DataDeletion => json(
                        200,
                        serde_json::json!({
                            "url": format!("{base_url}/meta/deletion-status?code={code}"),
                            "confirmation_code": code,
                        }),
                    ),
                    Callback::Deauthorize => json(200, serde_json::json!({ "status": "ok" })),
                }
            }
            Err(err) => {
                self.metrics.count("CallbackFailed", 1);
                tracing::error!(error = %err, "deletion request not recorded or queued; Meta will retry");
                json_error(
                    500,
                    "temporarily unable to record the request; please retry",
                )
            }
        }
    }

    async fn status(&self, code: Option<&str>, wants_json: bool) -> Response<Body> {
        let Some(code) = code.filter(|c| !c.is_empty() && c.len() <= 64) else {
            return not_found(wants_json);
        };
        let request = match self.store.get_deletion_request(code).await {
            Ok(Some(request)) => request,
            Ok(None) => return not_found(wants_json),
            Err(err) => {
                tracing::error!(error = %err, "status lookup failed");
                return json_error(500, "temporarily unable to read the status; please retry");
            }
        };
        if wants_json {
            json(
                200,
                serde_json::json!({
                    "confirmation_code": request.confirmation_code,
                    "status": request.status.as_str(),
                    "received_at": rfc3339(request.received_at),
                    "completed_at": request.completed_at.map(rfc3339),
                    "deleted": request.deleted,
                }),
            )
        } else {
            html(200, status_page(&request))
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Callback {
    DataDeletion,
    Deauthorize,
}

impl Function for DataDeletion {
    const NAME: &'static str = FUNCTION;

    fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}

/// The Lambda entry point (through `inbox_shared::runner`).
impl HttpFunction for DataDeletion {
    async fn handle_http(
        &self,
        request: Request,
        _deadline: tokio::time::Instant,
    ) -> Response<Body> {
        self.handle(request).await
    }
}

impl Callback {
    fn kind(self) -> DeletionKind {
        match self {
            Self::DataDeletion => DeletionKind::DataDeletion,
            Self::Deauthorize => DeletionKind::Deauthorize,
        }
    }

    fn metric(self) -> &'static str {
        match self {
            Self::DataDeletion => "DeletionRequested",
            Self::Deauthorize => "Deauthorized",
        }
    }
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

fn not_found(wants_json: bool) -> Response<Body> {
    if wants_json {
        return json_error(404, "no deletion request has this confirmation code");
    }
    html(
        404,
        page(
            "Deletion request not found",
            "<p>No deletion request has this confirmation code. Check that the address is complete, \
             exactly as you received it.</p>",
        ),
    )
}

fn status_page(request: &DeletionRequest) -> String {
    let state = match request.status {
        DeletionStatus::Received => {
            "Received. Your request is recorded and deletion will start shortly."
        }
        DeletionStatus::InProgress => "In progress. Your data is being deleted.",
        DeletionStatus::Completed => "Completed. Your data has been deleted.",
    };
    let completed = request
        .completed_at
        .map(|at| {
            format!(
                "<tr><th scope=\"row\">Completed</th><td>{}</td></tr>",
                rfc3339(at)
            )
        })
        .unwrap_or_default();
    let counts = if request.deleted.is_empty() {
        String::new()
    } else {
        let rows: String = request
            .deleted
            .iter()
            .map(|(kind, n)| {
                format!(
                    "<tr><th scope=\"row\">{}</th><td>{n}</td></tr>",
                    escape(&kind.replace('_', " "))
                )
            })
            .collect();
        format!("<table>\n<caption>Items deleted</caption>\n<tbody>{rows}</tbody>\n</table>")
    };
    page(
        "Data deletion status",
        &format!(
            "<p role=\"status\"><strong>{state}</strong></p>\n<table>\n<caption>Request</caption>\n<tbody>\
             <tr><th scope=\"row\">Confirmation code</th><td><code>{code}</code></td></tr>\
             <tr><th scope=\"row\">Status</th><td>{status}</td></tr>\
             <tr><th scope=\"row\">Received</th><td>{received}</td></tr>{completed}</tbody>\n</table>\n{counts}\n\
             <p>We delete everything received through the accounts you connected: access tokens, contacts, \
             conversations, messages, drafts and usage records, within 30 days of your request.</p>",
            code = escape(&request.confirmation_code),
            status = request.status.as_str().replace('_', " "),
            received = rfc3339(request.received_at),
        ),
    )
}

fn instructions_page() -> String {
    page(
        "How to delete your data",
        "<h2>If you connected a Facebook Page, Instagram account or WhatsApp number</h2>\n\
         <ol>\n<li>On Facebook, open <strong>Settings &amp; privacy → Settings → Apps and websites</strong> \
         (for Instagram: <strong>Settings → Website permissions → Apps and websites</strong>).</li>\n\
         <li>Find this app and choose <strong>Remove</strong>.</li>\n\
         <li>Meta tells us at once. We disconnect your accounts, destroy their access tokens, and delete \
         everything received through them — contacts, conversations, messages, drafts and usage records — \
         within 30 days. Meta shows you a link to a page with your confirmation code where you can follow \
         the deletion until it is completed.</li>\n</ol>\n\
         <h2>If you messaged a business that uses this inbox</h2>\n\
         <p>Ask that business, in the same chat or by its usual contact, for a copy of your data or for its \
         deletion. The business asks us, and we export or delete your contact details, conversations and \
         messages with it; other customers' data is not touched.</p>\n\
         <p>Message content is never used to train AI models and never written to our logs.</p>",
    )
}
