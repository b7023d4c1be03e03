//! channel-connect: where a business owner connects their accounts. The routes of a connect link
//! (`inboxctl channel connect-link`, or the console):
//!
//! - `GET /connect/meta/start?state=…` → 302 to Facebook Login for Business;
//!   `GET /connect/meta/callback?code=…&state=…` connects every Page granted (Messenger) and, when the
//!   link asked, the Instagram account linked to each.
//! - `GET /connect/instagram/start?state=…` → 302 to Instagram Login; `/connect/instagram/callback`
//!   connects that professional account.
//! - `GET /connect/whatsapp?state=…` serves the Embedded Signup page (Facebook's JS SDK); its script
//!   posts `{state, code, waba_id, phone_number_id}` to `POST /connect/whatsapp` at once (the code
//!   lives 30 seconds).
//!
//! Each answers a page a person reads (which accounts were connected, which failed and why), or JSON
//! when asked with `Accept: application/json`. Tampered, expired and used links are 400 and connect
//! nothing; a cancelled login is a page that says nothing was connected; a platform outage is 503 with
//! the link usable again. No token, code or secret reaches a page or a log line (they are typed so).
//! The flows themselves are [`inbox_shared::service::onboarding::Onboarding`].

use std::collections::HashMap;

use inbox_shared::aws::AwsClients;
use inbox_shared::clock::{self, SharedClock};
use inbox_shared::config::{Config, ConfigError};
use inbox_shared::http_response::{
    escape, html, html_with_policy, json, json_error, page, redirect,
};
use inbox_shared::runner::{Function, HttpFunction};
use inbox_shared::secret::AuthorizationCode;
use inbox_shared::service::onboarding::links::Login;
use inbox_shared::service::onboarding::{ConnectError, ConnectReport, Onboarding, WhatsappSignup};
use inbox_shared::store::Store;
use inbox_shared::telemetry::Metrics;
use inbox_shared::vault::TokenVault;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;

pub const FUNCTION: &str = "channel-connect";
const ACTOR: &str = "connect-link";
/// The signup page posts four short strings.
const MAX_BODY: usize = 8 * 1024;
/// The Embedded Signup page loads Facebook's SDK and talks to Facebook and to us; nothing else.
const SIGNUP_PAGE_POLICY: &str = "default-src 'none'; script-src 'unsafe-inline' https://connect.facebook.net; \
     connect-src 'self' https://*.facebook.com https://connect.facebook.net; frame-src https://*.facebook.com; \
     img-src https://*.facebook.com https://connect.facebook.net; style-src 'unsafe-inline'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

pub struct ChannelConnect {
    onboarding: Onboarding,
    metrics: Metrics,
}

impl ChannelConnect {
    pub async fn from_env() -> Result<Self, ConfigError> {
        let config = Config::from_env()?;
        Self::new(&config, &AwsClients::from_env().await, clock::system())
    }

    pub fn new(
        config: &Config,
        clients: &AwsClients,
        clock: SharedClock,
    ) -> Result<Self, ConfigError> {
        // What every flow needs is checked at cold start; a login's own settings when it is used.
        config.require_connect_state_secret()?;
        config.require_public_base_url()?;
        let store = Store::new(clients.dynamodb.clone(), &config.table_name, clock);
        let vault = TokenVault::new(clients.kms.clone(), &config.kms_key_id);
        let http = inbox_shared::https::client(std::time::Duration::from_secs(3));
        Ok(Self {
            onboarding: Onboarding::new(config, store, vault, http, ACTOR),
            metrics: Metrics::new(FUNCTION),
        })
    }

    pub async fn handle(&self, request: Request) -> Response<Body> {
        let (parts, body) = request.into_parts();
        let wants_json = parts
            .headers
            .get("accept")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|accept| accept.contains("application/json"));
        let query: HashMap<String, String> =
            form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
                .into_owned()
                .collect();
        let param = |name: &str| {
            query
                .get(name)
                .map(String::as_str)
                .filter(|v| !v.is_empty())
        };
        let answer = Answer { wants_json };
        match (parts.method.as_str(), parts.uri.path()) {
            ("GET", "/connect/meta/start") => {
                self.start(param("state"), Login::Facebook, &answer).await
            }
            ("GET", "/connect/instagram/start") => {
                self.start(param("state"), Login::Instagram, &answer).await
            }
            ("GET", "/connect/whatsapp") => self.whatsapp_page(param("state"), &answer).await,
            ("GET", "/connect/meta/callback" | "/connect/instagram/callback") => {
                let Some(state) = param("state") else {
                    return answer.failure(&ConnectError::Link(
                        inbox_shared::service::onboarding::links::LinkError::Invalid,
                    ));
                };
                let code = param("code").map(AuthorizationCode::new);
                let error = param("error");
                let result = if parts.uri.path() == "/connect/meta/callback" {
                    self.onboarding.finish_meta_login(state, code, error).await
                } else {
                    self.onboarding
                        .finish_instagram_login(state, code, error)
                        .await
                };
                self.finished(result, &answer)
            }
            ("POST", "/connect/whatsapp") => {
                let bytes: &[u8] = match &body {
                    Body::Text(text) => text.as_bytes(),
                    Body::Binary(bytes) => bytes,
                    _ => &[],
                };
                if bytes.len() > MAX_BODY {
                    return json_error(413, &format!("the body is over {MAX_BODY} bytes"));
                }
                let Ok(posted) = serde_json::from_slice::<SignupPost>(bytes) else {
                    return answer.failure(&ConnectError::Invalid(
                        "the body must be JSON with state, code, waba_id and phone_number_id"
                            .into(),
                    ));
                };
                let result = self
                    .onboarding
                    .finish_whatsapp_signup(WhatsappSignup {
                        state: posted.state,
                        code: AuthorizationCode::new(posted.code),
                        waba_id: posted.waba_id,
                        phone_number_id: posted.phone_number_id,
                    })
                    .await;
                self.finished(result, &Answer { wants_json: true })
            }
            (
                _,
                "/connect/meta/start"
                | "/connect/instagram/start"
                | "/connect/meta/callback"
                | "/connect/instagram/callback",
            ) => json_error(405, "method not allowed: use GET"),
            (_, "/connect/whatsapp") => json_error(405, "method not allowed: use GET or POST"),
            (_, path) => json_error(404, &format!("no route for {path}")),
        }
    }

    async fn start(&self, state: Option<&str>, login: Login, answer: &Answer) -> Response<Body> {
        let Some(state) = state else {
            return answer.failure(&ConnectError::Link(
                inbox_shared::service::onboarding::links::LinkError::Invalid,
            ));
        };
        let dialog = match self.onboarding.open_link(state, login).await {
            Ok(_) => match login {
                Login::Facebook => self.onboarding.meta_dialog_url(state),
                _ => self.onboarding.instagram_dialog_url(state),
            },
            Err(err) => Err(err),
        };
        match dialog {
            Ok(url) => redirect(&url),
            Err(err) => {
                self.metrics.count("ConnectLinkRefused", 1);
                answer.failure(&err)
            }
        }
    }

    async fn whatsapp_page(&self, state: Option<&str>, answer: &Answer) -> Response<Body> {
        let Some(state) = state else {
            return answer.failure(&ConnectError::Link(
                inbox_shared::service::onboarding::links::LinkError::Invalid,
            ));
        };
        let settings = match self
            .onboarding
            .open_link(state, Login::WhatsappSignup)
            .await
        {
            Ok(_) => self.onboarding.whatsapp_signup_settings(),
            Err(err) => Err(err),
        };
        match settings {
            Ok((app_id, config_id, version)) => html_with_policy(
                200,
                signup_page(state, &app_id, &config_id, &version),
                SIGNUP_PAGE_POLICY,
            ),
            Err(err) => {
                self.metrics.count("ConnectLinkRefused", 1);
                answer.failure(&err)
            }
        }
    }

    fn finished(
        &self,
        result: Result<ConnectReport, ConnectError>,
        answer: &Answer,
    ) -> Response<Body> {
        match result {
            Ok(report) => {
                self.metrics
                    .count("AccountsConnected", report.connected.len() as u64);
                self.metrics
                    .count("AccountsNotConnected", report.failed.len() as u64);
                tracing::info!(
                    connected = report.connected.len(),
                    failed = report.failed.len(),
                    "connect flow finished"
                );
                answer.report(&report)
            }
            Err(err) => {
                tracing::warn!(error = %err, "connect flow failed");
                self.metrics.count("ConnectFailed", 1);
                answer.failure(&err)
            }
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignupPost {
    state: String,
    code: String,
    waba_id: String,
    phone_number_id: String,
}

/// How to say it: a page or JSON.
struct Answer {
    wants_json: bool,
}

impl Answer {
    fn report(&self, report: &ConnectReport) -> Response<Body> {
        // Something connected is a success; nothing connected is the business's problem to fix.
        let status = if report.connected.is_empty() && !report.failed.is_empty() {
            if report.failed.iter().all(|f| f.retryable) {
                503
            } else {
                400
            }
        } else {
            200
        };
        if self.wants_json {
            return json(
                status,
                serde_json::to_value(report).expect("a report serialises"),
            );
        }
        let mut body = String::new();
        if !report.connected.is_empty() {
            body.push_str("<p>Connected:</p>\n<table>\n<tr><th>Platform</th><th>Account</th><th>Channel</th></tr>\n");
            for account in &report.connected {
                body.push_str(&format!(
                    "<tr><td>{}</td><td>{}</td><td>{}{}</td></tr>\n",
                    account.platform,
                    escape(&describe(account.name.as_deref(), &account.account_id)),
                    account.channel_id,
                    if account.reconnected {
                        " (reconnected: its conversations are kept)"
                    } else {
                        ""
                    },
                ));
            }
            body.push_str("</table>\n");
        }
        if !report.failed.is_empty() {
            body.push_str("<p>Not connected:</p>\n<table>\n<tr><th>Platform</th><th>Account</th><th>Why</th></tr>\n");
            for account in &report.failed {
                body.push_str(&format!(
                    "<tr><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                    account.platform,
                    escape(&describe(account.name.as_deref(), &account.account_id)),
                    escape(&account.reason),
                ));
            }
            body.push_str("</table>\n");
        }
        let title = if status == 200 {
            "Accounts connected"
        } else {
            "Nothing was connected"
        };
        html(status, page(title, &body))
    }

    fn failure(&self, err: &ConnectError) -> Response<Body> {
        let status = err.status();
        if self.wants_json {
            return json(
                status,
                serde_json::json!({
                    "error": err.to_string(),
                    "connected": [],
                    "retryable": err.is_retryable(),
                }),
            );
        }
        let (title, advice) = match err {
            ConnectError::Cancelled => (
                "Nothing was connected",
                "You cancelled the login. Open the link again to connect your accounts.",
            ),
            ConnectError::Link(_) => ("This link cannot be used", "Ask for a new connect link."),
            _ if err.is_retryable() => (
                "Nothing was connected",
                "Nothing was connected. Open the same link again in a few minutes.",
            ),
            _ => ("Nothing was connected", "Nothing was connected."),
        };
        html(
            status,
            page(
                title,
                &format!(
                    "<p>{}</p>\n<p>{}</p>",
                    escape(&err.to_string()),
                    escape(advice)
                ),
            ),
        )
    }
}

fn describe(name: Option<&str>, account_id: &str) -> String {
    match name {
        Some(name) if !name.is_empty() => format!("{name} ({account_id})"),
        _ => account_id.to_owned(),
    }
}

/// The Embedded Signup page: Facebook's SDK, `FB.login` with the WhatsApp configuration, the ids from
/// the signup window's message, and the code posted to us as soon as it arrives.
fn signup_page(state: &str, app_id: &str, config_id: &str, version: &str) -> String {
    // Values go into a script as JSON strings (escaped for a script context too).
    let js = |value: &str| {
        serde_json::to_string(value)
            .expect("a string serialises")
            .replace('<', "\\u003c")
    };
    let script = format!(
        r#"<p id="status">Click the button, then follow Facebook's steps to connect your WhatsApp Business number.</p>
<button id="start" type="button">Connect WhatsApp</button>
<script>
const STATE = {state};
let ids = null;
window.addEventListener('message', (event) => {{
  if (!event.origin.endsWith('facebook.com')) return;
  try {{
    const data = JSON.parse(event.data);
    if (data.type !== 'WA_EMBEDDED_SIGNUP') return;
    if (data.event === 'CANCEL') {{ document.getElementById('status').textContent = 'You cancelled: nothing was connected.'; return; }}
    ids = data.data;
  }} catch (e) {{}}
}});
window.fbAsyncInit = function () {{
  FB.init({{ appId: {app_id}, autoLogAppEvents: true, xfbml: false, version: {version} }});
}};
document.getElementById('start').addEventListener('click', () => {{
  FB.login((response) => {{
    const code = response.authResponse && response.authResponse.code;
    if (!code) {{ document.getElementById('status').textContent = 'You cancelled: nothing was connected.'; return; }}
    const send = () => {{
      if (!ids) {{ setTimeout(send, 100); return; }}
      fetch('/connect/whatsapp', {{
        method: 'POST', headers: {{ 'content-type': 'application/json', 'accept': 'application/json' }},
        body: JSON.stringify({{ state: STATE, code: code, waba_id: ids.waba_id, phone_number_id: ids.phone_number_id }})
      }}).then((r) => r.json()).then((report) => {{
        const done = (report.connected || []).map((a) => a.name || a.account_id).join(', ');
        document.getElementById('status').textContent = done ? 'Connected: ' + done : 'Nothing was connected: ' + (report.error || (report.failed || []).map((f) => f.reason).join('; '));
      }});
    }};
    send();
  }}, {{ config_id: {config_id}, response_type: 'code', override_default_response_type: true, extras: {{ setup: {{}}, sessionInfoVersion: '3' }} }});
}});
</script>
<script async defer crossorigin="anonymous" src="https://connect.facebook.net/en_US/sdk.js"></script>"#,
        state = js(state),
        app_id = js(app_id),
        version = js(version),
        config_id = js(config_id),
    );
    page("Connect WhatsApp", &script)
}

impl Function for ChannelConnect {
    const NAME: &'static str = FUNCTION;

    fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}

/// The Lambda entry point (through `inbox_shared::runner`).
impl HttpFunction for ChannelConnect {
    async fn handle_http(
        &self,
        request: Request,
        _deadline: tokio::time::Instant,
    ) -> Response<Body> {
        self.handle(request).await
    }
}
