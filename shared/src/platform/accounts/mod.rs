//! The platforms' account APIs: the calls that connect a business account, keep it connected and
//! disconnect it (as opposed to webhooks and sends). Facebook Login and the Graph API
//! ([`graph::MetaGraph`]), Instagram Login ([`instagram::InstagramLogin`]) and LINE's channel APIs
//! ([`line::LineChannels`]).
//!
//! Every Graph call carrying an access token carries its `appsecret_proof` ([`appsecret_proof`], the
//! one place it is computed), so the app can run with "Require App Secret" on: a token stolen without
//! the secret is useless to call Graph with.
//!
//! Failures are [`AccountApiError`]: refused with the platform's code and subcode (never its message,
//! which can echo ids and names), unavailable (retry later), or not understood. What a refusal means
//! for the channel is decided by code and subcode only ([`AccountApiError::reauth_reason`],
//! platform-spec 9.6), never by message text.

pub mod graph;
pub mod instagram;
pub mod line;

use std::time::Duration;

use aws_lc_rs::hmac;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::https::InvalidSegment;
use crate::model::ReauthReason;
use crate::secret::{AppSecret, PlatformToken};

/// No account call waits longer: a person is waiting on the page, and Lambda's own timeout is near.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// `appsecret_proof`: lowercase hex HMAC-SHA256 of the access token, keyed with the app secret.
pub fn appsecret_proof(app_secret: &AppSecret, token: &PlatformToken) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, app_secret.expose_secret().as_bytes());
    hex::encode(hmac::sign(&key, token.expose_secret().as_bytes()).as_ref())
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountApiError {
    /// The platform answered with an error. Codes only: a platform's message can echo names and ids.
    #[error("{call} was refused (HTTP {status}, code {code:?}, subcode {subcode:?})")]
    Refused {
        call: &'static str,
        status: u16,
        code: Option<i64>,
        subcode: Option<i64>,
    },
    /// No answer, a timeout or a server error: nothing can be concluded; try again later.
    #[error("{call} failed: {reason}")]
    Unavailable { call: &'static str, reason: String },
    /// A success we cannot read (a missing field): the platform changed, or this is not the platform.
    #[error("{call} answered something unexpected: {reason}")]
    Unexpected { call: &'static str, reason: String },
    #[error("an account id cannot be a URL path segment: {0}")]
    InvalidSegment(#[from] InvalidSegment),
}

/// Graph codes that mean "slow down" or "try again", never "reauthorize" (platform-spec 9.6).
const THROTTLING: &[i64] = &[4, 17, 32, 613, 80001, 80002, 80005, 80006, 80007, 130429];
const TEMPORARY: &[i64] = &[1, 2];

impl AccountApiError {
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Unavailable { .. } => true,
            Self::Refused {
                status, code: None, ..
            } => *status == 429 || *status >= 500,
            Self::Refused {
                status,
                code: Some(code),
                ..
            } => THROTTLING.contains(code) || TEMPORARY.contains(code) || *status >= 500,
            Self::Unexpected { .. } | Self::InvalidSegment(_) => false,
        }
    }

    /// Whether the platform is saying that only the business can fix this (log in again, restore a
    /// permission or a role), and which of those. Throttling and temporary errors never are.
    pub fn reauth_reason(&self) -> Option<ReauthReason> {
        match self {
            Self::Refused {
                status,
                code,
                subcode,
                ..
            } if !self.is_retryable() => reauth_reason(*status, *code, *subcode),
            _ => None,
        }
    }
}

/// What a refusal (not throttling, not an outage) asks of the business, by code and subcode only:
/// the one reading of platform-spec 9.6, for account calls and sends alike.
pub fn reauth_reason(status: u16, code: Option<i64>, subcode: Option<i64>) -> Option<ReauthReason> {
    match (code, subcode) {
        (_, Some(492)) => Some(ReauthReason::RoleLost),
        (_, Some(458)) => Some(ReauthReason::AppRemoved),
        (_, Some(460)) => Some(ReauthReason::PasswordChanged),
        (_, Some(463)) => Some(ReauthReason::TokenExpired),
        (_, Some(459 | 464)) => Some(ReauthReason::ActionRequired),
        (Some(190 | 102), _) => Some(ReauthReason::TokenInvalid),
        (Some(10), _) => Some(ReauthReason::PermissionMissing),
        (Some(code), _) if (200..=299).contains(&code) => Some(ReauthReason::PermissionMissing),
        // LINE (and Instagram's OAuth host) answer a dead token with HTTP 401 and no Graph code.
        (None, _) if status == 401 => Some(ReauthReason::TokenInvalid),
        _ => None,
    }
}

/// Whether a subscription as read back (`None`: not subscribed) carries every one of `fields`: how a
/// subscription that did not take, or one Meta dropped, is told apart from one that holds.
pub fn covers(subscription: Option<&[String]>, fields: &[&str]) -> bool {
    subscription.is_some_and(|have| fields.iter().all(|f| have.iter().any(|h| h == f)))
}

/// A request carrying `token` as a bearer and its `appsecret_proof` under `app_secret`: how every
/// Graph call with a token is made.
pub(crate) fn authorized(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    token: &PlatformToken,
    app_secret: &AppSecret,
) -> reqwest::RequestBuilder {
    http.request(method, url)
        .bearer_auth(token.expose_secret())
        .query(&[("appsecret_proof", appsecret_proof(app_secret, token))])
}

/// Sends a request and reads a JSON success, or classifies the failure. `call` names the step for the
/// error (e.g. "exchanging the login code").
pub(crate) async fn read_json<T: DeserializeOwned>(
    call: &'static str,
    request: reqwest::RequestBuilder,
) -> Result<T, AccountApiError> {
    let response = request
        .timeout(CALL_TIMEOUT)
        .send()
        .await
        .map_err(|err| unavailable(call, err))?;
    let status = response.status().as_u16();
    let bytes = response
        .bytes()
        .await
        .map_err(|err| unavailable(call, err))?;
    if !(200..300).contains(&status) {
        let (code, subcode) = error_codes(&bytes);
        let refused = AccountApiError::Refused {
            call,
            status,
            code,
            subcode,
        };
        return Err(if code.is_none() && (status >= 500 || status == 429) {
            AccountApiError::Unavailable {
                call,
                reason: format!("HTTP {status}"),
            }
        } else {
            refused
        });
    }
    serde_json::from_slice(&bytes).map_err(|err| AccountApiError::Unexpected {
        call,
        // serde's message names the field and position, never the value.
        reason: format!("{}", err),
    })
}

/// `{"success": true}`, the answer of every subscribe, unsubscribe and register call.
pub(crate) async fn read_success(
    call: &'static str,
    request: reqwest::RequestBuilder,
) -> Result<(), AccountApiError> {
    #[derive(Deserialize)]
    struct Success {
        success: bool,
    }
    let answer: Success = read_json(call, request).await?;
    if answer.success {
        Ok(())
    } else {
        Err(AccountApiError::Unexpected {
            call,
            reason: "the platform answered success: false".into(),
        })
    }
}

fn unavailable(call: &'static str, err: reqwest::Error) -> AccountApiError {
    AccountApiError::Unavailable {
        call,
        // Without the URL: a query string can hold a token or a code.
        reason: if err.is_timeout() {
            "no answer in time".into()
        } else {
            err.without_url().to_string()
        },
    }
}

/// The code and subcode of an error answer: Graph's `{"error": {"code", "error_subcode"}}`, or a
/// top-level numeric `code` (Instagram's OAuth host).
fn error_codes(body: &[u8]) -> (Option<i64>, Option<i64>) {
    #[derive(Deserialize)]
    struct Envelope {
        error: Option<serde_json::Value>,
        code: Option<i64>,
    }
    let Ok(envelope) = serde_json::from_slice::<Envelope>(body) else {
        return (None, None);
    };
    match envelope.error {
        Some(serde_json::Value::Object(error)) => (
            error.get("code").and_then(serde_json::Value::as_i64),
            error
                .get("error_subcode")
                .and_then(serde_json::Value::as_i64),
        ),
        _ => (envelope.code, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(status: u16, code: Option<i64>, subcode: Option<i64>) -> AccountApiError {
        AccountApiError::Refused {
            call: "a test call",
            status,
            code,
            subcode,
        }
    }

    #[test]
    fn the_proof_is_the_hex_hmac_of_the_token() {
        // HMAC-SHA256(key "key", "The quick brown fox jumps over the lazy dog"), RFC 4231-style vector.
        let proof = appsecret_proof(
            &AppSecret::new("key"),
            &PlatformToken::new("The quick brown fox jumps over the lazy dog"),
        );
        assert_eq!(
            proof,
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
    }

    #[test]
    fn reauthorization_is_decided_by_code_and_subcode() {
        use ReauthReason::*;
        let cases = [
            (refused(400, Some(190), Some(460)), Some(PasswordChanged)),
            (refused(400, Some(190), Some(463)), Some(TokenExpired)),
            (refused(400, Some(190), Some(458)), Some(AppRemoved)),
            (refused(400, Some(190), Some(467)), Some(TokenInvalid)),
            (refused(400, Some(190), None), Some(TokenInvalid)),
            (refused(400, Some(190), Some(459)), Some(ActionRequired)),
            (refused(400, Some(190), Some(464)), Some(ActionRequired)),
            (refused(400, Some(10), Some(492)), Some(RoleLost)),
            (refused(403, Some(10), None), Some(PermissionMissing)),
            (refused(403, Some(200), None), Some(PermissionMissing)),
            (refused(403, Some(299), None), Some(PermissionMissing)),
            (refused(401, None, None), Some(TokenInvalid)),
            (refused(400, Some(100), Some(33)), None),
        ];
        for (error, expected) in cases {
            assert_eq!(error.reauth_reason(), expected, "{error}");
        }
    }

    #[test]
    fn throttling_and_outages_are_retried_and_never_reauthorization() {
        for code in [4, 17, 32, 613, 1, 2] {
            let error = refused(400, Some(code), None);
            assert!(error.is_retryable(), "{error}");
            assert_eq!(error.reauth_reason(), None, "{error}");
        }
        for error in [
            refused(503, None, None),
            refused(429, None, None),
            refused(500, Some(190), None),
            AccountApiError::Unavailable {
                call: "x",
                reason: "timeout".into(),
            },
        ] {
            assert!(error.is_retryable(), "{error}");
            assert_eq!(error.reauth_reason(), None, "{error}");
        }
    }

    #[test]
    fn error_codes_are_read_from_either_shape() {
        assert_eq!(
            error_codes(br#"{"error":{"message":"x","code":190,"error_subcode":460}}"#),
            (Some(190), Some(460))
        );
        assert_eq!(
            error_codes(br#"{"error_type":"OAuthException","code":400,"error_message":"x"}"#),
            (Some(400), None)
        );
        assert_eq!(error_codes(br#"{"error":"invalid_client"}"#), (None, None));
        assert_eq!(error_codes(b"<html>"), (None, None));
    }
}
