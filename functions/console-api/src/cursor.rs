//! Page cursors the console hands out: the store's position, bound to the tenant and the listing it
//! belongs to and signed (HMAC-SHA256 with `CONSOLE_CURSOR_SECRET`), so a cursor cannot be forged, edited
//! or used by another tenant or on another listing.
//!
//! Format: `base64url(json {"t": tenant, "l": listing, "p": position}) "." base64url(tag)`. The position is
//! the store's own (the key of the last item returned); it holds ids only, no content.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use inbox_shared::ids::TenantId;
use inbox_shared::secret::AppSecret;
use inbox_shared::store::Cursor;
use serde::{Deserialize, Serialize};

/// The longest cursor accepted (ours are a few hundred characters).
const MAX_CURSOR: usize = 2048;

#[derive(Serialize, Deserialize)]
struct Signed {
    t: String,
    l: String,
    p: Cursor,
}

pub struct Cursors {
    key: hmac::Key,
}

impl Cursors {
    pub fn new(secret: &AppSecret) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret.expose_secret().as_bytes()),
        }
    }

    pub fn seal(&self, tenant_id: &TenantId, listing: &str, position: &Cursor) -> String {
        let payload = serde_json::to_vec(&Signed {
            t: tenant_id.as_str().to_owned(),
            l: listing.to_owned(),
            p: position.clone(),
        })
        .expect("a cursor serialises");
        let tag = hmac::sign(&self.key, &payload);
        format!(
            "{}.{}",
            B64URL.encode(&payload),
            B64URL.encode(tag.as_ref())
        )
    }

    /// The position in `cursor`, if this tenant was given it for this listing; `None` otherwise (a
    /// forged, edited or foreign cursor is refused the same way).
    pub fn open(&self, tenant_id: &TenantId, listing: &str, cursor: &str) -> Option<Cursor> {
        if cursor.len() > MAX_CURSOR {
            return None;
        }
        let (payload, tag) = cursor.split_once('.')?;
        let payload = B64URL.decode(payload).ok()?;
        let tag = B64URL.decode(tag).ok()?;
        hmac::verify(&self.key, &payload, &tag).ok()?;
        let signed: Signed = serde_json::from_slice(&payload).ok()?;
        (signed.t == tenant_id.as_str() && signed.l == listing).then_some(signed.p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn position() -> Cursor {
        serde_json::from_value(serde_json::json!("eyJwayI6IlRFTkFOVCN4In0")).unwrap()
    }

    #[test]
    fn a_cursor_opens_only_for_its_tenant_and_listing() {
        let cursors = Cursors::new(&AppSecret::new("0123456789abcdef0123456789abcdef"));
        let a = TenantId::new("ten_a");
        let b = TenantId::new("ten_b");
        let sealed = cursors.seal(&a, "conversations", &position());
        assert_eq!(cursors.open(&a, "conversations", &sealed), Some(position()));
        assert_eq!(cursors.open(&b, "conversations", &sealed), None);
        assert_eq!(cursors.open(&a, "messages:x", &sealed), None);
        // Another key, an edited payload, garbage: refused.
        let other = Cursors::new(&AppSecret::new("fedcba9876543210fedcba9876543210"));
        assert_eq!(other.open(&a, "conversations", &sealed), None);
        let (payload, tag) = sealed.split_once('.').unwrap();
        let forged = B64URL.encode(
            String::from_utf8(B64URL.decode(payload).unwrap())
                .unwrap()
                .replace("ten_a", "ten_b"),
        );
        assert_eq!(
            cursors.open(&b, "conversations", &format!("{forged}.{tag}")),
            None
        );
        for junk in ["", ".", "abc", "a.b", &"x".repeat(5000)] {
            assert_eq!(cursors.open(&a, "conversations", junk), None);
        }
    }
}
