//! Connect links: what a business owner opens to connect their accounts.
//!
//! The link's `state` is `v1.{payload}.{tag}`: the payload (tenant, platforms, login, a 128-bit nonce,
//! the expiry) in base64url JSON and an HMAC-SHA256 tag over it, keyed with `CONNECT_STATE_SECRET` (a
//! secret of its own: no other secret's leak forges a link). It comes back to us through the
//! platform's redirect as OAuth's `state`, which also binds the callback to the link (no login CSRF).
//! A link is valid one hour and usable once: its callback claims the nonce with a conditional write,
//! so a replayed callback connects nothing.

use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::ids::TenantId;
use crate::model::Platform;
use crate::secret::AppSecret;

/// How long a link can be used.
pub const LINK_LIFETIME: Duration = Duration::hours(1);
/// Longer states are not ours: refused before any decoding.
const MAX_STATE_BYTES: usize = 1024;

/// Which login a link starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Login {
    /// Facebook Login for Business: Pages (Messenger) and the Instagram accounts linked to them.
    Facebook,
    /// Instagram Login: one Instagram professional account, no Page.
    Instagram,
    /// WhatsApp Embedded Signup.
    WhatsappSignup,
}

impl Login {
    /// The path of the link on our domain.
    pub fn start_path(self) -> &'static str {
        match self {
            Self::Facebook => "/connect/meta/start",
            Self::Instagram => "/connect/instagram/start",
            Self::WhatsappSignup => "/connect/whatsapp",
        }
    }
}

/// What a link may connect, for which tenant, until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkGrant {
    #[serde(rename = "t")]
    pub tenant_id: TenantId,
    #[serde(rename = "p")]
    pub platforms: Vec<Platform>,
    #[serde(rename = "l")]
    pub login: Login,
    #[serde(rename = "n")]
    pub nonce: String,
    #[serde(rename = "e")]
    pub expires_at: i64,
}

impl LinkGrant {
    pub fn wants(&self, platform: Platform) -> bool {
        self.platforms.contains(&platform)
    }

    pub fn expires_at(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(self.expires_at).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}

/// Why a state was refused. Each is a 400 for the person holding the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("this link is not a connect link of ours (it is malformed or was altered)")]
    Invalid,
    #[error("this link has expired: connect links are valid one hour; ask for a new one")]
    Expired,
    #[error("this link was used already: each connect link works once; ask for a new one")]
    Used,
}

/// A link as minted.
#[derive(Debug, Clone)]
pub struct ConnectLink {
    pub url: String,
    pub expires_at: OffsetDateTime,
}

/// Mints and checks connect links.
#[derive(Clone)]
pub struct ConnectLinks {
    key: hmac::Key,
    public_base_url: String,
}

impl ConnectLinks {
    pub fn new(secret: &AppSecret, public_base_url: &str) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret.expose_secret().as_bytes()),
            public_base_url: public_base_url.trim_end_matches('/').to_owned(),
        }
    }

    pub fn public_base_url(&self) -> &str {
        &self.public_base_url
    }

    /// Which login connects `platforms`: Facebook Login for Messenger (and for Instagram when asked
    /// `via_facebook`), Instagram Login for Instagram alone, Embedded Signup for WhatsApp alone.
    pub fn login_for(platforms: &[Platform], via_facebook: bool) -> Result<Login, String> {
        use Platform::*;
        let has = |p| platforms.contains(&p);
        if platforms.is_empty() {
            return Err("name the platforms the link connects".into());
        }
        if has(Line) {
            return Err("LINE has no login to link to: connect it with `inboxctl channel connect --platform line --channel-id … --secret-file …`".into());
        }
        if has(Whatsapp) {
            return if platforms.iter().all(|p| *p == Whatsapp) {
                Ok(Login::WhatsappSignup)
            } else {
                Err("WhatsApp connects through Embedded Signup, in a link of its own".into())
            };
        }
        if has(Messenger) || via_facebook {
            return Ok(Login::Facebook);
        }
        Ok(Login::Instagram)
    }

    pub fn mint(
        &self,
        tenant_id: &TenantId,
        platforms: &[Platform],
        login: Login,
        now: OffsetDateTime,
    ) -> ConnectLink {
        let mut nonce = [0u8; 16];
        SystemRandom::new()
            .fill(&mut nonce)
            .expect("the system random generator works");
        let expires_at = now.saturating_add(LINK_LIFETIME);
        let mut platforms = platforms.to_vec();
        platforms.sort_by_key(|p| p.as_str());
        platforms.dedup();
        let grant = LinkGrant {
            tenant_id: tenant_id.clone(),
            platforms,
            login,
            nonce: hex::encode(nonce),
            expires_at: expires_at.unix_timestamp(),
        };
        let state = self.sign(&grant);
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("state", &state)
            .finish();
        ConnectLink {
            url: format!("{}{}?{query}", self.public_base_url, login.start_path()),
            expires_at,
        }
    }

    fn sign(&self, grant: &LinkGrant) -> String {
        let payload = B64URL.encode(serde_json::to_vec(grant).expect("a grant serialises"));
        let tag = hmac::sign(&self.key, payload.as_bytes());
        format!("v1.{payload}.{}", B64URL.encode(tag.as_ref()))
    }

    /// The grant of a state we signed and that has not expired. Single use is the caller's claim.
    pub fn verify(&self, state: &str, now: OffsetDateTime) -> Result<LinkGrant, LinkError> {
        if state.len() > MAX_STATE_BYTES {
            return Err(LinkError::Invalid);
        }
        let mut parts = state.split('.');
        let (Some("v1"), Some(payload), Some(tag), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(LinkError::Invalid);
        };
        let tag = B64URL.decode(tag).map_err(|_| LinkError::Invalid)?;
        hmac::verify(&self.key, payload.as_bytes(), &tag).map_err(|_| LinkError::Invalid)?;
        let grant: LinkGrant = B64URL
            .decode(payload)
            .ok()
            .and_then(|json| serde_json::from_slice(&json).ok())
            .ok_or(LinkError::Invalid)?;
        if now.unix_timestamp() >= grant.expires_at {
            return Err(LinkError::Expired);
        }
        Ok(grant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-12-02 09:00 UTC);

    fn links() -> ConnectLinks {
        ConnectLinks::new(
            &AppSecret::new("0123456789abcdef0123456789abcdef"),
            "https://inbox.example/",
        )
    }

    fn state_of(url: &str) -> String {
        let query = url.split_once('?').unwrap().1;
        form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "state")
            .unwrap()
            .1
            .into_owned()
    }

    #[test]
    fn a_link_carries_its_grant_until_it_expires() {
        let tenant = TenantId::generate();
        let link = links().mint(&tenant, &[Platform::Messenger], Login::Facebook, NOW);
        assert!(
            link.url
                .starts_with("https://inbox.example/connect/meta/start?state=v1.")
        );
        assert_eq!(link.expires_at, NOW + Duration::hours(1));
        let grant = links().verify(&state_of(&link.url), NOW).unwrap();
        assert_eq!(grant.tenant_id, tenant);
        assert!(grant.wants(Platform::Messenger) && !grant.wants(Platform::Instagram));
        assert_eq!(grant.nonce.len(), 32);
        assert_eq!(
            links().verify(&state_of(&link.url), NOW + Duration::hours(1)),
            Err(LinkError::Expired)
        );
    }

    #[test]
    fn a_tampered_or_foreign_state_is_refused() {
        let tenant = TenantId::generate();
        let state = state_of(
            &links()
                .mint(&tenant, &[Platform::Instagram], Login::Instagram, NOW)
                .url,
        );
        let (head, tag) = state.rsplit_once('.').unwrap();
        // Another tenant's id in the payload, the original tag.
        let mut grant = links().verify(&state, NOW).unwrap();
        grant.tenant_id = TenantId::generate();
        let forged_payload = B64URL.encode(serde_json::to_vec(&grant).unwrap());
        let other_key = ConnectLinks::new(
            &AppSecret::new("another-secret-another-secret-xx"),
            "https://inbox.example",
        );
        for bad in [
            format!("v1.{forged_payload}.{tag}"),
            format!("{head}.{}", &tag[1..]),
            format!("v2{}", &state[2..]),
            other_key.sign(&grant),
            "v1..".into(),
            "".into(),
            "v1.a.b.c".into(),
            "x".repeat(5000),
        ] {
            assert_eq!(links().verify(&bad, NOW), Err(LinkError::Invalid), "{bad}");
        }
    }

    #[test]
    fn the_login_follows_the_platforms() {
        use Platform::*;
        assert_eq!(
            ConnectLinks::login_for(&[Messenger], false),
            Ok(Login::Facebook)
        );
        assert_eq!(
            ConnectLinks::login_for(&[Messenger, Instagram], false),
            Ok(Login::Facebook)
        );
        assert_eq!(
            ConnectLinks::login_for(&[Instagram], false),
            Ok(Login::Instagram)
        );
        assert_eq!(
            ConnectLinks::login_for(&[Instagram], true),
            Ok(Login::Facebook)
        );
        assert_eq!(
            ConnectLinks::login_for(&[Whatsapp], false),
            Ok(Login::WhatsappSignup)
        );
        assert!(ConnectLinks::login_for(&[Whatsapp, Messenger], false).is_err());
        assert!(ConnectLinks::login_for(&[Line], false).is_err());
        assert!(ConnectLinks::login_for(&[], false).is_err());
    }
}
