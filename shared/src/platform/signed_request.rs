//! Meta's `signed_request` (data-deletion and deauthorize callbacks): `<signature>.<payload>`, both
//! base64url (padding optional), the signature an HMAC-SHA256 with the app secret over the payload
//! segment exactly as received. The signature is checked before the payload is read.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::alphabet::URL_SAFE;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::Deserialize;

use crate::secret::AppSecret;

const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// What a verified signed request says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequest {
    /// The app-scoped id of the Meta user.
    pub user_id: String,
    /// Unix seconds.
    pub issued_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignedRequestError {
    /// Not of the form `<signature>.<payload>`, not base64url, not JSON, no `user_id`, or an algorithm
    /// other than HMAC-SHA256: answer 400.
    #[error("malformed signed_request: {0}")]
    Malformed(String),
    /// The signature does not match: answer 401.
    #[error("the signed_request signature does not match")]
    BadSignature,
}

pub fn verify_signed_request(
    app_secret: &AppSecret,
    signed_request: &str,
) -> Result<SignedRequest, SignedRequestError> {
    let malformed = |why: &str| SignedRequestError::Malformed(why.to_owned());
    let (encoded_signature, payload) = signed_request
        .trim()
        .split_once('.')
        .ok_or_else(|| malformed("expected <signature>.<payload>"))?;
    if encoded_signature.is_empty() || payload.is_empty() || payload.contains('.') {
        return Err(malformed("expected exactly two non-empty parts"));
    }
    let signature = BASE64URL
        .decode(encoded_signature)
        .map_err(|_| malformed("the signature is not base64url"))?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, app_secret.expose_secret().as_bytes());
    hmac::verify(&key, payload.as_bytes(), &signature)
        .map_err(|_| SignedRequestError::BadSignature)?;

    #[derive(Deserialize)]
    struct Payload {
        algorithm: Option<String>,
        /// As sent: an id that is a number beyond 64 bits keeps its digits.
        #[serde(default, deserialize_with = "super::id_string")]
        user_id: Option<String>,
        issued_at: Option<i64>,
    }
    let json = BASE64URL
        .decode(payload)
        .map_err(|_| malformed("the payload is not base64url"))?;
    let payload: Payload =
        serde_json::from_slice(&json).map_err(|_| malformed("the payload is not a JSON object"))?;
    if !payload
        .algorithm
        .as_deref()
        .is_some_and(|a| a.eq_ignore_ascii_case("HMAC-SHA256"))
    {
        return Err(malformed("algorithm must be HMAC-SHA256"));
    }
    let Some(user_id) = payload.user_id.filter(|id| !id.is_empty()) else {
        return Err(malformed("user_id is missing"));
    };
    // The moment the callback speaks of (a deauthorization acts on what was connected before it): a
    // request without it cannot be placed in time.
    let issued_at = payload
        .issued_at
        .filter(|at| time::OffsetDateTime::from_unix_timestamp(*at).is_ok())
        .ok_or_else(|| malformed("issued_at is missing or not a time"))?;
    Ok(SignedRequest { user_id, issued_at })
}

/// A signed request as Meta would send it (tests, the demo).
pub fn sign_request(app_secret: &str, payload: &serde_json::Value) -> String {
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(payload.to_string());
    let key = hmac::Key::new(hmac::HMAC_SHA256, app_secret.as_bytes());
    let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(hmac::sign(&key, payload.as_bytes()).as_ref());
    format!("{signature}.{payload}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The public test vector (facebook-rs), secret `key`.
    const VECTOR: &str = "Mf_s6nTb38UYqioBmPqu0Ewm9souPZB9I2fIGwV729U.eyJ1c2VyX2lkIjoiMCIsImFsZ29yaXRobSI6IkhNQUMtU0hBMjU2IiwiaXNzdWVkX2F0IjoxNjI0MjQ0MTU2fQ";

    fn key() -> AppSecret {
        AppSecret::new("key")
    }

    #[test]
    fn the_public_test_vector_verifies() {
        assert_eq!(
            verify_signed_request(&key(), VECTOR).unwrap(),
            SignedRequest {
                user_id: "0".into(),
                issued_at: 1_624_244_156
            }
        );
    }

    #[test]
    fn padded_and_unpadded_base64url_both_verify() {
        let (signature, payload) = VECTOR.split_once('.').unwrap();
        let padded_signature = format!("{signature}=");
        // The payload is signed as received: a padded payload needs its own signature.
        let padded_payload = format!("{payload}==");
        let k = hmac::Key::new(hmac::HMAC_SHA256, b"key");
        let resigned = base64::engine::general_purpose::URL_SAFE
            .encode(hmac::sign(&k, padded_payload.as_bytes()).as_ref());
        assert!(verify_signed_request(&key(), &format!("{padded_signature}.{payload}")).is_ok());
        assert_eq!(
            verify_signed_request(&key(), &format!("{resigned}.{padded_payload}"))
                .unwrap()
                .user_id,
            "0"
        );
    }

    #[test]
    fn tampering_and_wrong_algorithms_are_refused() {
        let (signature, payload) = VECTOR.split_once('.').unwrap();
        let mut tampered_payload = payload.to_owned();
        tampered_payload.replace_range(10..11, "A");
        assert_eq!(
            verify_signed_request(&key(), &format!("{signature}.{tampered_payload}")),
            Err(SignedRequestError::BadSignature)
        );
        let mut tampered_signature = signature.to_owned();
        tampered_signature.replace_range(0..1, "N");
        assert_eq!(
            verify_signed_request(&key(), &format!("{tampered_signature}.{payload}")),
            Err(SignedRequestError::BadSignature)
        );
        assert_eq!(
            verify_signed_request(&AppSecret::new("other"), VECTOR),
            Err(SignedRequestError::BadSignature)
        );
        let wrong_algorithm = sign_request(
            "key",
            &json!({"algorithm": "HMAC-SHA1", "user_id": "0", "issued_at": 1}),
        );
        assert!(matches!(
            verify_signed_request(&key(), &wrong_algorithm),
            Err(SignedRequestError::Malformed(m)) if m.contains("HMAC-SHA256")
        ));
        for malformed in ["", "abc", "a.b.c", ".payload", "!!!.eyJ9", "sig."] {
            assert!(
                matches!(
                    verify_signed_request(&key(), malformed),
                    Err(SignedRequestError::Malformed(_))
                ),
                "{malformed:?}"
            );
        }
    }

    #[test]
    fn numeric_user_ids_are_read_as_strings() {
        let signed = sign_request(
            "key",
            &json!({"algorithm": "HMAC-SHA256", "user_id": 1234567890, "issued_at": 5}),
        );
        assert_eq!(
            verify_signed_request(&key(), &signed).unwrap().user_id,
            "1234567890"
        );
    }

    /// The signed payload as Meta would send it, from its exact JSON text.
    fn signed_text(payload: &str) -> String {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(payload);
        let k = hmac::Key::new(hmac::HMAC_SHA256, b"key");
        let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(hmac::sign(&k, payload.as_bytes()).as_ref());
        format!("{signature}.{payload}")
    }

    #[test]
    fn a_numeric_user_id_beyond_64_bits_keeps_its_exact_digits() {
        let signed = signed_text(
            r#"{"algorithm":"HMAC-SHA256","user_id":123456789012345678901234567890,"issued_at":5}"#,
        );
        assert_eq!(
            verify_signed_request(&key(), &signed).unwrap().user_id,
            "123456789012345678901234567890"
        );
        let fractional = signed_text(r#"{"algorithm":"HMAC-SHA256","user_id":1.5,"issued_at":5}"#);
        assert!(verify_signed_request(&key(), &fractional).is_err());
    }

    #[test]
    fn a_request_without_a_usable_issued_at_is_malformed_not_issued_in_1970() {
        for issued_at in ["", r#","issued_at":null"#, r#","issued_at":99999999999999"#] {
            let signed = signed_text(&format!(
                r#"{{"algorithm":"HMAC-SHA256","user_id":"7"{issued_at}}}"#
            ));
            assert!(
                matches!(
                    verify_signed_request(&key(), &signed),
                    Err(SignedRequestError::Malformed(m)) if m.contains("issued_at")
                ),
                "{issued_at}"
            );
        }
    }
}
