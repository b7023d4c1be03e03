//! Sending text to a customer: the Messenger and Instagram Send API and the WhatsApp Cloud API (Graph API
//! at `META_GRAPH_URL`/`META_GRAPH_VERSION`), and LINE's reply API (while the event's reply token is
//! fresh) with the push API after it.
//!
//! Errors are classified for the caller: a dead token (Graph 190, LINE 401) flags the channel; a closed
//! window (Graph 10/2018278, 10/2534022, WhatsApp 131047) is final; rate limits (4, 17, 32, 613, 80007,
//! 130429, 131056; HTTP 429), temporary errors (1, 2) and 5xx are retried; any other 4xx is final.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::json;

use crate::config::Config;
use crate::https::{InvalidSegment, endpoint};
use crate::model::{Platform, ReauthReason};
use crate::platform::accounts::line::LineChannels;
use crate::platform::accounts::{AccountApiError, authorized, reauth_reason};
use crate::secret::{AppSecret, ChannelSecret, MessageText, PlatformToken};
use crate::single_flight::LoadLocks;

/// LINE reply tokens live about a minute; after this we push instead.
pub const LINE_REPLY_TOKEN_LIFETIME: Duration = Duration::from_secs(50);
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// One text to one customer.
#[derive(Debug, Clone)]
pub struct OutboundText<'a> {
    pub platform: Platform,
    /// The business account: Page id, Instagram account id, WhatsApp `phone_number_id`, LINE bot id.
    pub account_id: &'a str,
    /// PSID, IGSID, `wa_id` or LINE user id.
    pub recipient: &'a str,
    pub text: &'a MessageText,
    /// Echoed back by Messenger and Instagram in `message.metadata`, so the echo is known as ours.
    pub echo_tag: &'a str,
    /// A fresh LINE reply token (a credential).
    pub reply_token: Option<&'a str>,
    /// Stable across retries of one logical send: LINE dedups pushes by it (`X-Line-Retry-Key`).
    pub idempotency_key: &'a str,
    /// Instagram: the account was connected with Instagram Login, so it is reached on
    /// graph.instagram.com with that app's proof.
    pub instagram_login: bool,
    /// Messenger and Instagram: a person's reply 24 hours to 7 days after the customer's last message,
    /// sent as `messaging_type: MESSAGE_TAG` with `tag: HUMAN_AGENT` (instead of `RESPONSE`).
    pub human_agent_tag: bool,
}

/// The platform's id of the sent message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub message_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The platform will not take this token or its permissions any more: the business must connect
    /// the channel again, for `reason`.
    #[error("the access token is invalid or revoked (code {code}: {reason})")]
    TokenInvalid { code: i64, reason: ReauthReason },
    #[error("outside the platform's reply window (code {code})")]
    WindowClosed { code: i64 },
    #[error("rate limited (code {code})")]
    RateLimited { code: i64 },
    #[error("temporary failure: {0}")]
    Transient(String),
    /// Refused for good. Codes only: a platform's error message can echo the text and the recipient,
    /// and errors end up in logs.
    #[error("refused (HTTP {status}, code {code:?}, subcode {subcode:?})")]
    Rejected {
        status: u16,
        code: Option<i64>,
        subcode: Option<i64>,
    },
    /// The channel's account id cannot be a URL path segment (it is checked at connect).
    #[error("invalid account id: {0}")]
    InvalidAccount(#[from] InvalidSegment),
}

impl SendError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::RateLimited { .. } | Self::Transient(_))
    }

    /// The platform error code, for the record.
    pub fn code(&self) -> Option<i64> {
        match self {
            Self::TokenInvalid { code, .. }
            | Self::WindowClosed { code }
            | Self::RateLimited { code } => Some(*code),
            Self::Rejected { code, .. } => *code,
            Self::Transient(_) | Self::InvalidAccount(_) => None,
        }
    }

    /// A short machine reason (metrics, the message's recorded outcome).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TokenInvalid { .. } => "token_invalid",
            Self::WindowClosed { .. } => "window_closed",
            Self::RateLimited { .. } => "rate_limited",
            Self::Transient(_) => "transient",
            Self::Rejected { .. } | Self::InvalidAccount(_) => "rejected",
        }
    }
}

/// The longest text each platform takes; longer AI answers are cut with an ellipsis (a person's reply is refused).
pub fn max_chars(platform: Platform) -> usize {
    match platform {
        Platform::Messenger => 2000,
        Platform::Instagram => 1000,
        Platform::Whatsapp => 4096,
        Platform::Line => 5000,
    }
}

fn fit(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(limit - 1).collect();
    cut.push('…');
    cut
}

/// Sends over HTTPS; built once per container.
#[derive(Clone)]
pub struct Sender {
    http: reqwest::Client,
    graph_base: String,
    instagram_graph_base: String,
    line_base: String,
    /// Signs every Graph call's `appsecret_proof` (graph.facebook.com, and graph.instagram.com).
    meta_app_secret: Option<AppSecret>,
    instagram_app_secret: Option<AppSecret>,
    line_channels: LineChannels,
    /// Stateless LINE tokens minted for channels that store none, by LINE channel id, each used until a
    /// minute before its 15 minutes are up (LINE asks not to mint one per call).
    minted: Arc<Mutex<HashMap<String, (PlatformToken, Instant)>>>,
    /// Concurrent first sends of one channel mint one token.
    minting: Arc<LoadLocks<String>>,
}

/// A minted token is not used in its last minute: a send must not start with a token about to die.
const MINTED_TOKEN_MARGIN: Duration = Duration::from_secs(60);

impl Sender {
    pub fn new(config: &Config, http: reqwest::Client) -> Self {
        Self {
            graph_base: format!("{}/{}", config.meta_graph_url, config.meta_graph_version),
            instagram_graph_base: format!(
                "{}/{}",
                config.instagram_graph_url, config.meta_graph_version
            ),
            line_base: config.line_api_url.clone(),
            meta_app_secret: config.meta_app_secret.clone(),
            instagram_app_secret: config.instagram_app_secret.clone(),
            line_channels: LineChannels::new(config, http.clone()),
            minted: Arc::default(),
            minting: Arc::default(),
            http,
        }
    }

    /// A channel access token for a LINE channel that stores none: minted from its id and secret, and
    /// reused while it has more than a minute to live.
    pub async fn minted_line_token(
        &self,
        line_channel_id: &str,
        secret: &ChannelSecret,
    ) -> Result<PlatformToken, SendError> {
        let cached = || {
            self.minted
                .lock()
                .expect("minted-token cache poisoned")
                .get(line_channel_id)
                .filter(|(_, until)| *until > Instant::now())
                .map(|(token, _)| token.clone())
        };
        if let Some(token) = cached() {
            return Ok(token);
        }
        let _minting = self.minting.lock(&line_channel_id.to_owned()).await;
        if let Some(token) = cached() {
            return Ok(token);
        }
        let now = Instant::now();
        let minted = self
            .line_channels
            .mint_token(line_channel_id, secret)
            .await
            .map_err(|err| match err {
                AccountApiError::Refused { status, .. } if matches!(status, 400 | 401) => {
                    SendError::TokenInvalid {
                        code: i64::from(status),
                        reason: ReauthReason::TokenInvalid,
                    }
                }
                err if err.is_retryable() => SendError::Transient(err.to_string()),
                AccountApiError::Refused {
                    status,
                    code,
                    subcode,
                    ..
                } => SendError::Rejected {
                    status,
                    code,
                    subcode,
                },
                other => SendError::Transient(other.to_string()),
            })?;
        let lifetime = Duration::from_secs(minted.expires_in).saturating_sub(MINTED_TOKEN_MARGIN);
        self.minted
            .lock()
            .expect("minted-token cache poisoned")
            .insert(
                line_channel_id.to_owned(),
                (minted.token.clone(), now + lifetime),
            );
        Ok(minted.token)
    }

    pub async fn send_text(
        &self,
        token: &PlatformToken,
        out: &OutboundText<'_>,
    ) -> Result<Sent, SendError> {
        let text = fit(out.text.expose(), max_chars(out.platform));
        match out.platform {
            Platform::Messenger | Platform::Instagram => {
                // Instagram: `me` is the account the token belongs to, under both Instagram and Facebook Login.
                let sender = if out.platform == Platform::Messenger {
                    out.account_id
                } else {
                    "me"
                };
                let mut body = json!({
                    "recipient": {"id": out.recipient},
                    "messaging_type": "RESPONSE",
                    "message": {"text": text, "metadata": out.echo_tag},
                });
                if out.human_agent_tag {
                    body["messaging_type"] = json!("MESSAGE_TAG");
                    body["tag"] = json!("HUMAN_AGENT");
                }
                let (base, secret) = if out.instagram_login {
                    (&self.instagram_graph_base, &self.instagram_app_secret)
                } else {
                    (&self.graph_base, &self.meta_app_secret)
                };
                let url = endpoint(base, &[sender, "messages"])?;
                self.graph(token, secret.as_ref(), &url, &body).await
            }
            Platform::Whatsapp => {
                let body = json!({
                    "messaging_product": "whatsapp",
                    "recipient_type": "individual",
                    "to": out.recipient,
                    "type": "text",
                    "text": {"body": text, "preview_url": false},
                });
                let url = endpoint(&self.graph_base, &[out.account_id, "messages"])?;
                self.graph(token, self.meta_app_secret.as_ref(), &url, &body)
                    .await
            }
            Platform::Line => self.line(token, out, &text).await,
        }
    }

    async fn graph(
        &self,
        token: &PlatformToken,
        app_secret: Option<&AppSecret>,
        url: &str,
        body: &serde_json::Value,
    ) -> Result<Sent, SendError> {
        let request = match app_secret {
            Some(secret) => authorized(&self.http, reqwest::Method::POST, url, token, secret),
            None => self.http.post(url).bearer_auth(token.expose_secret()),
        };
        let response = request
            .json(body)
            .timeout(SEND_TIMEOUT)
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(transport_error)?;
        if (200..300).contains(&status) {
            return graph_message_id(&bytes)
                .map(|message_id| Sent { message_id })
                .ok_or_else(|| {
                    SendError::Transient("the Graph API answered without a message id".into())
                });
        }
        Err(classify_graph(status, &bytes))
    }

    async fn line(
        &self,
        token: &PlatformToken,
        out: &OutboundText<'_>,
        text: &str,
    ) -> Result<Sent, SendError> {
        let messages = json!([{"type": "text", "text": text}]);
        if let Some(reply_token) = out.reply_token {
            let reply = self
                .http
                .post(endpoint(
                    &self.line_base,
                    &["v2", "bot", "message", "reply"],
                )?)
                .bearer_auth(token.expose_secret())
                .json(&json!({"replyToken": reply_token, "messages": messages}))
                .timeout(SEND_TIMEOUT)
                .send()
                .await
                .map_err(transport_error)?;
            let status = reply.status().as_u16();
            let bytes = reply.bytes().await.map_err(transport_error)?;
            match status {
                200..=299 => return Ok(line_sent(&bytes, out.idempotency_key)),
                // An expired or used reply token: push instead.
                400 => {}
                _ => return Err(classify_line(status)),
            }
        }
        let push = self
            .http
            .post(endpoint(
                &self.line_base,
                &["v2", "bot", "message", "push"],
            )?)
            .bearer_auth(token.expose_secret())
            .header("X-Line-Retry-Key", retry_key_uuid(out.idempotency_key))
            .json(&json!({"to": out.recipient, "messages": messages}))
            .timeout(SEND_TIMEOUT)
            .send()
            .await
            .map_err(transport_error)?;
        let status = push.status().as_u16();
        let bytes = push.bytes().await.map_err(transport_error)?;
        match status {
            200..=299 => Ok(line_sent(&bytes, out.idempotency_key)),
            // The same retry key was accepted before: this push already went out.
            409 => Ok(line_sent(&[], out.idempotency_key)),
            _ => Err(classify_line(status)),
        }
    }
}

fn transport_error(err: reqwest::Error) -> SendError {
    SendError::Transient(if err.is_timeout() {
        "no answer in time".into()
    } else {
        format!("request failed: {}", err.without_url())
    })
}

fn graph_message_id(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Response {
        message_id: Option<String>,
        #[serde(default)]
        messages: Vec<WhatsAppMessage>,
    }
    #[derive(Deserialize)]
    struct WhatsAppMessage {
        id: String,
    }
    let response: Response = serde_json::from_slice(body).ok()?;
    response
        .message_id
        .or_else(|| response.messages.into_iter().next().map(|m| m.id))
}

/// Classifies a Graph API error answer (`{"error": {"code", "error_subcode", "message"}}`).
pub fn classify_graph(status: u16, body: &[u8]) -> SendError {
    #[derive(Deserialize)]
    struct Envelope {
        error: GraphError,
    }
    #[derive(Deserialize)]
    struct GraphError {
        code: Option<i64>,
        error_subcode: Option<i64>,
    }
    let Ok(Envelope { error }) = serde_json::from_slice::<Envelope>(body) else {
        return if status >= 500 || status == 429 {
            SendError::Transient(format!("HTTP {status}"))
        } else {
            SendError::Rejected {
                status,
                code: None,
                subcode: None,
            }
        };
    };
    match (error.code, error.error_subcode) {
        // Only a dead token stops the channel's sends; a permission or role refused for one send can be
        // about that recipient, and the daily token-health check asks the platform about the channel.
        (Some(code @ (190 | 102)), subcode) => SendError::TokenInvalid {
            code,
            reason: reauth_reason(status, Some(code), subcode)
                .unwrap_or(ReauthReason::TokenInvalid),
        },
        (Some(10), Some(sub @ (2018278 | 2534022))) => SendError::WindowClosed { code: sub },
        (Some(131047), _) => SendError::WindowClosed { code: 131047 },
        (Some(code @ (4 | 17 | 32 | 613 | 80007 | 130429 | 131056)), _) => {
            SendError::RateLimited { code }
        }
        (Some(code @ (1 | 2)), _) => {
            SendError::Transient(format!("Graph API temporary error {code}"))
        }
        (code, _) if status >= 500 => SendError::Transient(format!("HTTP {status}, code {code:?}")),
        (code, subcode) => SendError::Rejected {
            status,
            code,
            subcode,
        },
    }
}

fn classify_line(status: u16) -> SendError {
    match status {
        401 => SendError::TokenInvalid {
            code: 401,
            reason: ReauthReason::TokenInvalid,
        },
        429 => SendError::RateLimited { code: 429 },
        500..=599 => SendError::Transient(format!("HTTP {status}")),
        _ => SendError::Rejected {
            status,
            code: Some(i64::from(status)),
            subcode: None,
        },
    }
}

fn line_sent(body: &[u8], idempotency_key: &str) -> Sent {
    let id = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["sentMessages"][0]["id"].as_str().map(str::to_owned));
    Sent {
        // A push repeated under its retry key is acknowledged without ids.
        message_id: id.unwrap_or_else(|| format!("line-retry:{}", retry_key_uuid(idempotency_key))),
    }
}

/// LINE wants a UUID; the same logical send always gets the same one.
fn retry_key_uuid(key: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, key.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest.as_ref()[..16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(code: i64, sub: Option<i64>) -> Vec<u8> {
        json!({"error": {"message": "x", "type": "OAuthException", "code": code, "error_subcode": sub}})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn graph_errors_are_classified_as_the_spec_says() {
        assert_eq!(
            classify_graph(400, &graph(190, Some(460))),
            SendError::TokenInvalid {
                code: 190,
                reason: ReauthReason::PasswordChanged
            }
        );
        assert_eq!(
            classify_graph(400, &graph(10, Some(2018278))),
            SendError::WindowClosed { code: 2018278 }
        );
        assert_eq!(
            classify_graph(400, &graph(131047, None)),
            SendError::WindowClosed { code: 131047 }
        );
        for code in [4, 17, 32, 613, 130429] {
            let err = classify_graph(400, &graph(code, None));
            assert_eq!(err, SendError::RateLimited { code });
            assert!(err.is_retryable());
        }
        assert!(classify_graph(500, &graph(2, None)).is_retryable());
        assert!(classify_graph(502, b"<html>bad gateway</html>").is_retryable());
        let other = classify_graph(400, &graph(100, None));
        assert!(!other.is_retryable());
        assert_eq!(other.code(), Some(100));
        assert_eq!(classify_graph(400, &graph(10, None)).reason(), "rejected");
    }

    #[test]
    fn a_refusal_carries_codes_never_the_platforms_message() {
        // Graph echoes what it refused: the text, the recipient.
        let body = json!({"error": {"message": "Cannot send 'Your order 42' to 7234500000000001",
            "code": 100, "error_subcode": 2018001}})
        .to_string();
        let refused = classify_graph(400, body.as_bytes());
        let shown = refused.to_string();
        assert_eq!(
            shown,
            "refused (HTTP 400, code Some(100), subcode Some(2018001))"
        );
        assert!(!format!("{refused:?}").contains("7234500000000001"));
    }

    #[test]
    fn line_errors_and_retry_keys() {
        assert_eq!(
            classify_line(401),
            SendError::TokenInvalid {
                code: 401,
                reason: ReauthReason::TokenInvalid
            }
        );
        assert!(classify_line(429).is_retryable());
        assert!(!classify_line(400).is_retryable());
        let key = retry_key_uuid("send:abc");
        assert_eq!(key, retry_key_uuid("send:abc"));
        assert_ne!(key, retry_key_uuid("send:abd"));
        assert_eq!(key.len(), 36);
        assert_eq!(&key[14..15], "4");
    }

    #[test]
    fn long_answers_are_cut_to_the_platform_limit() {
        let long = "あ".repeat(1500);
        assert_eq!(
            fit(&long, max_chars(Platform::Instagram)).chars().count(),
            1000
        );
        assert_eq!(fit("short", 1000), "short");
    }
}
