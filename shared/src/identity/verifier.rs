//! What API Gateway's JWT authorizer does in AWS, for the local stack (`cargo xtask serve`) and tests:
//! verify a Cognito token and hand on its claims flattened the way the authorizer flattens them.
//!
//! - The pool's signing keys (JWKS) are fetched once and cached; a token naming a key the cache does not
//!   hold makes one refetch (the pool rotated its keys), at most once a minute, so a stream of made-up
//!   `kid`s cannot turn into a stream of fetches.
//! - RS256 only, signature first; then `iss` must be the configured issuer, `token_use` must be `id` or
//!   `access`, the audience must be our app client (`aud` of an id token, `client_id` of an access token),
//!   and `exp`/`nbf`/`iat` must hold at the injected clock's now, give or take [`LEEWAY`].
//! - Claims come back as API Gateway delivers them to the function: every value a string, numbers and
//!   booleans as their JSON text, lists as `[a b]`, objects as JSON.
//!
//! Every refusal is typed ([`VerifyError`]) and is a 401 with its reason, except [`VerifyError::KeysUnavailable`]
//! (we could not fetch the keys: our outage, not the caller's fault — a 503).

use std::collections::HashMap;
use std::sync::Arc;

use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
use serde_json::Value;
use time::{Duration, OffsetDateTime};
use tokio::sync::RwLock;

use super::{Caller, IdentityError, caller_from_claims};
use crate::clock::SharedClock;
use crate::config::{Config, ConfigError};

/// Clock skew allowed on `exp` and `nbf`.
pub const LEEWAY: Duration = Duration::seconds(30);

/// The shortest time between two fetches of the keys.
pub const REFETCH_AFTER: Duration = Duration::minutes(1);

/// A verified token's claims, as API Gateway puts them in `requestContext.authorizer.jwt.claims`.
pub type Claims = HashMap<String, String>;

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("no token: send Authorization: Bearer <id token>")]
    Missing,
    #[error("the token is not a JWT we accept: {0}")]
    Malformed(String),
    #[error("the token is signed with a key the user pool does not have")]
    UnknownKey,
    #[error("the token's signature does not verify")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued by another user pool")]
    WrongIssuer,
    #[error("the token was issued to another app client")]
    WrongAudience,
    #[error("the token is neither an id nor an access token")]
    WrongTokenUse,
    /// The keys could not be fetched: not the caller's fault (a 503, not a 401).
    #[error("the user pool's keys could not be fetched: {0}")]
    KeysUnavailable(String),
}

impl VerifyError {
    /// True when the caller is not at fault and may retry (the keys were unreachable).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::KeysUnavailable(_))
    }
}

impl From<VerifyError> for IdentityError {
    fn from(err: VerifyError) -> Self {
        IdentityError::Unauthenticated(err.to_string())
    }
}

/// Where the signing keys come from.
#[derive(Debug, Clone)]
enum KeySource {
    Url {
        http: reqwest::Client,
        url: String,
    },
    /// Fixed keys (tests of this module).
    Fixed(JwkSet),
}

#[derive(Default)]
struct KeyCache {
    keys: HashMap<String, Arc<DecodingKey>>,
    fetched_at: Option<OffsetDateTime>,
}

/// Verifies the tokens of one user pool's app client. Clones share the key cache.
#[derive(Clone)]
pub struct Verifier {
    issuer: String,
    client_id: String,
    source: KeySource,
    clock: SharedClock,
    cache: Arc<RwLock<KeyCache>>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier fetching the keys from `jwks_url` with `http`.
    pub fn new(
        issuer: impl Into<String>,
        client_id: impl Into<String>,
        jwks_url: impl Into<String>,
        http: reqwest::Client,
        clock: SharedClock,
    ) -> Self {
        Self::with_source(
            issuer,
            client_id,
            KeySource::Url {
                http,
                url: jwks_url.into(),
            },
            clock,
        )
    }

    /// The verifier of the configured pool and client (`COGNITO_USER_POOL_ID`, `COGNITO_CLIENT_ID`,
    /// `COGNITO_ISSUER`; the keys from [`Config::cognito_jwks_url`]).
    pub fn from_config(config: &Config, clock: SharedClock) -> Result<Self, ConfigError> {
        config.require_cognito_user_pool_id()?;
        Ok(Self::new(
            config.require_cognito_issuer()?,
            config.require_cognito_client_id()?,
            config.cognito_jwks_url()?,
            crate::https::client(std::time::Duration::from_secs(2)),
            clock,
        ))
    }

    /// A verifier with fixed keys, never fetched.
    pub fn with_keys(
        issuer: impl Into<String>,
        client_id: impl Into<String>,
        keys: JwkSet,
        clock: SharedClock,
    ) -> Self {
        Self::with_source(issuer, client_id, KeySource::Fixed(keys), clock)
    }

    fn with_source(
        issuer: impl Into<String>,
        client_id: impl Into<String>,
        source: KeySource,
        clock: SharedClock,
    ) -> Self {
        Self {
            issuer: issuer.into().trim_end_matches('/').to_owned(),
            client_id: client_id.into(),
            source,
            clock,
            cache: Arc::default(),
        }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The claims of a token from an `Authorization` header value (`Bearer <token>`).
    pub async fn verify_bearer(&self, authorization: Option<&str>) -> Result<Claims, VerifyError> {
        let value = authorization.map(str::trim).unwrap_or_default();
        let token = value
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .unwrap_or(value);
        self.verify(token).await
    }

    /// The caller a token names: verified, then [`caller_from_claims`].
    pub async fn caller(&self, token: &str) -> Result<Caller, IdentityError> {
        caller_from_claims(&self.verify(token).await?)
    }

    /// Verifies a token and returns its claims, flattened as API Gateway flattens them.
    pub async fn verify(&self, token: &str) -> Result<Claims, VerifyError> {
        if token.is_empty() {
            return Err(VerifyError::Missing);
        }
        if token.len() > 16 * 1024 {
            return Err(VerifyError::Malformed("longer than 16 KiB".into()));
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| VerifyError::Malformed(e.to_string()))?;
        if header.alg != Algorithm::RS256 {
            return Err(VerifyError::Malformed(format!(
                "signed with {:?}, not RS256",
                header.alg
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| VerifyError::Malformed("the header names no key (kid)".into()))?;
        let key = self.key(&kid).await?;

        let mut validation = Validation::new(Algorithm::RS256);
        // Time, issuer and audience are checked below, against the injected clock and with typed errors.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let data = jsonwebtoken::decode::<serde_json::Map<String, Value>>(token, &key, &validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => VerifyError::BadSignature,
                _ => VerifyError::Malformed(e.to_string()),
            })?;
        let claims = data.claims;

        if claims.get("iss").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            return Err(VerifyError::WrongIssuer);
        }
        let audience = match claims.get("token_use").and_then(Value::as_str) {
            Some("id") => claims.get("aud"),
            Some("access") => claims.get("client_id"),
            _ => return Err(VerifyError::WrongTokenUse),
        };
        let ours = match audience {
            Some(Value::String(aud)) => *aud == self.client_id,
            Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(&self.client_id)),
            _ => false,
        };
        if !ours {
            return Err(VerifyError::WrongAudience);
        }
        let now = self.clock.now();
        let at = |name: &str| -> Result<Option<OffsetDateTime>, VerifyError> {
            match claims.get(name) {
                None => Ok(None),
                Some(v) => v
                    .as_i64()
                    .or_else(|| v.as_f64().map(|f| f as i64))
                    .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok())
                    .map(Some)
                    .ok_or_else(|| VerifyError::Malformed(format!("{name} is not a time"))),
            }
        };
        let expires = at("exp")?.ok_or_else(|| VerifyError::Malformed("no exp".into()))?;
        if now > expires + LEEWAY {
            return Err(VerifyError::Expired);
        }
        // API Gateway checks `iat` too: a token issued in the future is not valid yet.
        if at("nbf")?.is_some_and(|nbf| now + LEEWAY < nbf)
            || at("iat")?.is_some_and(|iat| now + LEEWAY < iat)
        {
            return Err(VerifyError::NotYetValid);
        }
        Ok(flatten(&claims))
    }

    /// The key `kid`, from the cache or one fetch (at most one a minute).
    async fn key(&self, kid: &str) -> Result<Arc<DecodingKey>, VerifyError> {
        {
            let cache = self.cache.read().await;
            if let Some(key) = cache.keys.get(kid) {
                return Ok(key.clone());
            }
            if cache
                .fetched_at
                .is_some_and(|at| self.clock.now() - at < REFETCH_AFTER)
            {
                return Err(VerifyError::UnknownKey);
            }
        }
        let mut cache = self.cache.write().await;
        // Another request may have fetched while this one waited.
        if let Some(key) = cache.keys.get(kid) {
            return Ok(key.clone());
        }
        let now = self.clock.now();
        if cache.fetched_at.is_some_and(|at| now - at < REFETCH_AFTER) {
            return Err(VerifyError::UnknownKey);
        }
        let set = self.fetch().await?;
        cache.fetched_at = Some(now);
        cache.keys = set
            .keys
            .iter()
            .filter_map(|jwk| {
                let kid = jwk.common.key_id.clone()?;
                let key = DecodingKey::from_jwk(jwk).ok()?;
                Some((kid, Arc::new(key)))
            })
            .collect();
        cache.keys.get(kid).cloned().ok_or(VerifyError::UnknownKey)
    }

    async fn fetch(&self) -> Result<JwkSet, VerifyError> {
        match &self.source {
            KeySource::Fixed(set) => Ok(set.clone()),
            KeySource::Url { http, url } => {
                let unavailable = |e: &dyn std::fmt::Display| {
                    VerifyError::KeysUnavailable(format!("GET {url}: {e}"))
                };
                let response = http
                    .get(url)
                    .timeout(std::time::Duration::from_secs(5))
                    .send()
                    .await
                    .map_err(|e| unavailable(&e))?;
                let status = response.status();
                if !status.is_success() {
                    return Err(unavailable(&status));
                }
                response.json::<JwkSet>().await.map_err(|e| unavailable(&e))
            }
        }
    }
}

/// Claims as API Gateway's JWT authorizer hands them to the function: strings as they are, other
/// scalars as their JSON text, a list as `[a b c]`, an object as JSON.
pub fn flatten(claims: &serde_json::Map<String, Value>) -> Claims {
    fn scalar(value: &Value) -> String {
        match value {
            Value::String(s) => s.clone(),
            Value::Array(items) => format!(
                "[{}]",
                items.iter().map(scalar).collect::<Vec<_>>().join(" ")
            ),
            other => other.to_string(),
        }
    }
    claims
        .iter()
        .map(|(name, value)| (name.clone(), scalar(value)))
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::rsa::KeyPair;
    use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use serde_json::json;
    use time::macros::datetime;

    pub(crate) const ISSUER: &str = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Test1";
    pub(crate) const CLIENT: &str = "client0123";
    const NOW: OffsetDateTime = datetime!(2026-11-02 09:00 UTC);

    /// A pool's signing key, made up for the test.
    pub(crate) struct TestKey {
        pair: KeyPair,
        kid: String,
    }

    impl TestKey {
        pub(crate) fn new(kid: &str) -> Self {
            Self {
                pair: KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap(),
                kid: kid.into(),
            }
        }

        pub(crate) fn jwks(keys: &[&TestKey]) -> JwkSet {
            let keys: Vec<Value> = keys
                .iter()
                .map(|k| {
                    let public = k.pair.public_key();
                    json!({
                        "kty": "RSA", "alg": "RS256", "use": "sig", "kid": k.kid,
                        "n": B64.encode(public.modulus().big_endian_without_leading_zero()),
                        "e": B64.encode(public.exponent().big_endian_without_leading_zero()),
                    })
                })
                .collect();
            serde_json::from_value(json!({ "keys": keys })).unwrap()
        }

        pub(crate) fn sign(&self, claims: &Value) -> String {
            let header = json!({"alg": "RS256", "kid": self.kid});
            let message = format!(
                "{}.{}",
                B64.encode(header.to_string()),
                B64.encode(claims.to_string())
            );
            let mut signature = vec![0; self.pair.public_modulus_len()];
            self.pair
                .sign(
                    &RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    message.as_bytes(),
                    &mut signature,
                )
                .unwrap();
            format!("{message}.{}", B64.encode(signature))
        }
    }

    fn id_claims() -> Value {
        json!({
            "iss": ISSUER, "aud": CLIENT, "token_use": "id", "sub": "0a1b-2c3d",
            "custom:tenant_id": "ten_abc", "cognito:groups": ["agent", "owner"],
            "email": "sam@kumo.example", "email_verified": true,
            "iat": NOW.unix_timestamp(), "exp": (NOW + Duration::hours(1)).unix_timestamp(),
        })
    }

    fn verifier(keys: &[&TestKey]) -> (Verifier, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(NOW));
        (
            Verifier::with_keys(ISSUER, CLIENT, TestKey::jwks(keys), clock.clone()),
            clock,
        )
    }

    #[tokio::test]
    async fn a_pool_token_becomes_flattened_claims_and_a_caller() {
        let key = TestKey::new("k1");
        let (verifier, _) = verifier(&[&key]);
        let claims = verifier.verify(&key.sign(&id_claims())).await.unwrap();
        assert_eq!(claims["cognito:groups"], "[agent owner]");
        assert_eq!(claims["email_verified"], "true");
        assert_eq!(
            claims["exp"],
            (NOW + Duration::hours(1)).unix_timestamp().to_string()
        );
        let caller = caller_from_claims(&claims).unwrap();
        assert_eq!(caller.role, super::super::Role::Owner);
        assert_eq!(caller.tenant_id.as_str(), "ten_abc");

        let mut access = id_claims();
        access["token_use"] = json!("access");
        access.as_object_mut().unwrap().remove("aud");
        access["client_id"] = json!(CLIENT);
        verifier.verify(&key.sign(&access)).await.unwrap();
        let bearer = format!("Bearer {}", key.sign(&id_claims()));
        verifier.verify_bearer(Some(&bearer)).await.unwrap();
    }

    #[tokio::test]
    async fn each_wrong_token_is_refused_with_its_reason() {
        let key = TestKey::new("k1");
        let other = TestKey::new("k2");
        let (verifier, clock) = verifier(&[&key]);
        let with = |name: &str, value: Value| {
            let mut c = id_claims();
            c[name] = value;
            key.sign(&c)
        };
        let good = key.sign(&id_claims());
        let (head, rest) = good.split_once('.').unwrap();
        let (_, signature) = rest.split_once('.').unwrap();
        let mut changed = id_claims();
        changed["custom:tenant_id"] = json!("ten_other");
        let tampered = format!("{head}.{}.{signature}", B64.encode(changed.to_string()));
        let mut hs256 = good.clone();
        hs256.replace_range(..head.len(), &B64.encode(r#"{"alg":"HS256","kid":"k1"}"#));

        let cases: Vec<(String, VerifyError)> = vec![
            (String::new(), VerifyError::Missing),
            ("not.a.jwt".into(), VerifyError::Malformed(String::new())),
            (hs256, VerifyError::Malformed(String::new())),
            (tampered, VerifyError::BadSignature),
            (other.sign(&id_claims()), VerifyError::UnknownKey),
            (
                with(
                    "iss",
                    json!("https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Other"),
                ),
                VerifyError::WrongIssuer,
            ),
            (
                with("aud", json!("another-client")),
                VerifyError::WrongAudience,
            ),
            (
                with("token_use", json!("refresh")),
                VerifyError::WrongTokenUse,
            ),
            (
                with("exp", json!((NOW - Duration::minutes(1)).unix_timestamp())),
                VerifyError::Expired,
            ),
            (
                with("nbf", json!((NOW + Duration::minutes(5)).unix_timestamp())),
                VerifyError::NotYetValid,
            ),
            (
                with("iat", json!((NOW + Duration::minutes(5)).unix_timestamp())),
                VerifyError::NotYetValid,
            ),
            (
                with("exp", json!("tomorrow")),
                VerifyError::Malformed(String::new()),
            ),
        ];
        for (token, expected) in cases {
            let got = verifier.verify(&token).await.unwrap_err();
            assert_eq!(
                std::mem::discriminant(&got),
                std::mem::discriminant(&expected),
                "{expected:?}: got {got:?}"
            );
            assert!(
                matches!(IdentityError::from(got), IdentityError::Unauthenticated(_)),
                "every refusal is a 401"
            );
        }
        // Within the leeway, then past it.
        clock.set(NOW + Duration::hours(1) + Duration::seconds(20));
        verifier.verify(&good).await.unwrap();
        clock.advance(Duration::seconds(20));
        assert_eq!(verifier.verify(&good).await, Err(VerifyError::Expired));

        let mut no_tenant = id_claims();
        no_tenant
            .as_object_mut()
            .unwrap()
            .remove("custom:tenant_id");
        clock.set(NOW);
        assert!(matches!(
            verifier.caller(&key.sign(&no_tenant)).await,
            Err(IdentityError::Unauthenticated(_))
        ));
    }

    #[test]
    fn claims_flatten_as_api_gateway_flattens_them() {
        let claims = json!({"s": "a b", "n": 5, "b": false, "l": ["x", 2], "o": {"k": "v"}});
        let flat = flatten(claims.as_object().unwrap());
        assert_eq!(flat["s"], "a b");
        assert_eq!(flat["n"], "5");
        assert_eq!(flat["b"], "false");
        assert_eq!(flat["l"], "[x 2]");
        assert_eq!(flat["o"], r#"{"k":"v"}"#);
    }
}
