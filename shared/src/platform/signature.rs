//! Webhook signatures, checked over the raw body bytes before anything is parsed (hashing re-serialised
//! JSON breaks on key order, whitespace and `\u` escapes). Comparisons are constant-time.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use crate::secret::{AppSecret, ChannelSecret};

#[derive(Debug, Clone, Copy, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("the signature header is missing")]
    Missing,
    #[error("the signature header is malformed")]
    Malformed,
    #[error("the signature does not match the body")]
    Mismatch,
}

/// Meta: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, body)>`. The legacy SHA-1 header is not
/// accepted: every Meta product sends the SHA-256 one.
pub fn verify_meta(
    app_secret: &AppSecret,
    body: &[u8],
    header: Option<&str>,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?.trim();
    let hex_digest = header
        .strip_prefix("sha256=")
        .ok_or(SignatureError::Malformed)?;
    let tag = hex::decode(hex_digest).map_err(|_| SignatureError::Malformed)?;
    verify_hmac_sha256(app_secret.expose_secret(), body, &tag)
}

/// LINE: `x-line-signature: <base64 HMAC-SHA256(channel secret, body)>`.
pub fn verify_line(
    channel_secret: &ChannelSecret,
    body: &[u8],
    header: Option<&str>,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?.trim();
    let tag = B64.decode(header).map_err(|_| SignatureError::Malformed)?;
    verify_hmac_sha256(channel_secret.expose_secret(), body, &tag)
}

/// Constant-time check of a decoded HMAC-SHA256 tag.
fn verify_hmac_sha256(secret: &str, body: &[u8], tag: &[u8]) -> Result<(), SignatureError> {
    if tag.len() != 32 {
        return Err(SignatureError::Malformed);
    }
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    hmac::verify(&key, body, tag).map_err(|_| SignatureError::Mismatch)
}

/// Meta's subscribe handshake: the `hub.verify_token` given equals ours, compared in constant time. An
/// empty configured token never matches.
pub fn verify_token_matches(expected: &AppSecret, given: &str) -> bool {
    let expected = expected.expose_secret().as_bytes();
    !expected.is_empty()
        && aws_lc_rs::constant_time::verify_slices_are_equal(given.as_bytes(), expected).is_ok()
}

/// The `X-Hub-Signature-256` value Meta would send (for tests, the demo and benchmarks).
pub fn meta_signature(app_secret: &str, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, app_secret.as_bytes());
    format!("sha256={}", hex::encode(hmac::sign(&key, body).as_ref()))
}

/// The `x-line-signature` value LINE would send.
pub fn line_signature(channel_secret: &str, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, channel_secret.as_bytes());
    B64.encode(hmac::sign(&key, body).as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_signature_is_checked_over_the_raw_escaped_bytes() {
        // Meta signs the escaped form; a decoded-and-re-encoded body would not match.
        let body = br#"{"object":"page","entry":[{"messaging":[{"message":{"text":"\u00e4\u00f6\u00e5"}}]}]}"#;
        let secret = AppSecret::new("app-secret");
        let header = meta_signature("app-secret", body);
        assert_eq!(verify_meta(&secret, body, Some(&header)), Ok(()));
        let reencoded =
            serde_json::to_vec(&serde_json::from_slice::<serde_json::Value>(body).unwrap())
                .unwrap();
        assert_eq!(
            verify_meta(&secret, &reencoded, Some(&header)),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn missing_malformed_sha1_and_wrong_signatures_fail() {
        let secret = AppSecret::new("app-secret");
        let body = b"{}";
        assert_eq!(
            verify_meta(&secret, body, None),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify_meta(&secret, body, Some("sha256=zz")),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify_meta(
                &secret,
                body,
                Some("sha1=0beec7b5ea3f0fdbc95d0dd47f3c5bc275da8a33")
            ),
            Err(SignatureError::Malformed)
        );
        let other = meta_signature("another-secret", body);
        assert_eq!(
            verify_meta(&secret, body, Some(&other)),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn line_signature_is_base64_hmac() {
        let secret = ChannelSecret::new("line-secret");
        let body = "{\"destination\":\"U1\",\"events\":[]}".as_bytes();
        let header = line_signature("line-secret", body);
        assert_eq!(verify_line(&secret, body, Some(&header)), Ok(()));
        assert_eq!(
            verify_line(&secret, b"{}", Some(&header)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_line(&secret, body, Some("not base64!")),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify_line(&secret, body, None),
            Err(SignatureError::Missing)
        );
    }
}
