//! Identifiers: random ids we mint, and the typed ids of the entities a key is built from.
//!
//! Every id we mint carries 128 random bits, so ids are unguessable as well as unique
//! (deletion-request confirmation codes rely on that). A tenant, a channel and a conversation id are
//! distinct types because functions take several of them side by side (`keys::conversation(tenant,
//! channel, conversation)`); swapping two would address another tenant's data and still compile if
//! they were all `&str`. They are ours, not personal data, so they print (logs and spans carry them).

use std::fmt;

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

/// 16 random bytes from the OS generator.
pub fn random_bytes() -> [u8; 16] {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the operating system random generator failed");
    bytes
}

/// `prefix` + `_` + 32 lowercase hex characters (128 random bits).
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", hex::encode(random_bytes()))
}

/// The longest id accepted from outside; ours are at most 37 characters.
const MAX_ID_LEN: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {shown:?} is not an id: {reason}")]
pub struct InvalidId {
    what: &'static str,
    /// The start of what was given, control characters escaped by `Debug`.
    shown: String,
    reason: &'static str,
}

fn check_id(what: &'static str, text: &str) -> Result<(), InvalidId> {
    let reason = if text.is_empty() {
        "it is empty"
    } else if text.len() > MAX_ID_LEN {
        "it is longer than 64 characters"
    } else if !text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        "only letters, digits, '_' and '-' are allowed"
    } else {
        return Ok(());
    };
    Err(InvalidId {
        what,
        shown: text.chars().take(MAX_ID_LEN).collect(),
        reason,
    })
}

macro_rules! entity_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// An id read from outside the type system: a CLI argument, a stored item, a path.
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        /// Parses an id given from outside (an operator's argument, a path segment): it becomes part of
        /// table keys, so only the characters of ids we mint are accepted.
        impl std::str::FromStr for $name {
            type Err = InvalidId;

            fn from_str(text: &str) -> Result<Self, InvalidId> {
                check_id(stringify!($name), text).map(|()| Self(text.to_owned()))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
    };
}

entity_id!(
    /// A tenant: one business (`ten_…`).
    TenantId
);
entity_id!(
    /// One connected platform account of a tenant (`ch_…`).
    ChannelId
);
entity_id!(
    /// One customer's conversation on one channel (`conv_…`, derived by `keys::conversation_id`).
    ConversationId
);

impl TenantId {
    pub fn generate() -> Self {
        Self(new_id("ten"))
    }
}

impl ChannelId {
    pub fn generate() -> Self {
        Self(new_id("ch"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_prefixed_and_unique() {
        let a = new_id("ten");
        let b = new_id("ten");
        assert!(a.starts_with("ten_"));
        assert_eq!(a.len(), 4 + 32);
        assert_ne!(a, b);
    }

    #[test]
    fn ids_from_outside_are_checked_before_they_reach_a_key() {
        let minted = TenantId::generate();
        assert_eq!(minted.as_str().parse::<TenantId>(), Ok(minted));
        assert!("conv_0a1b-c".parse::<ConversationId>().is_ok());
        for bad in [
            "",
            "t#CONV#x",
            "t/../x",
            "t x",
            "t\u{1b}[2J",
            &"a".repeat(65),
        ] {
            let err = bad.parse::<ChannelId>().unwrap_err();
            assert!(err.to_string().starts_with("ChannelId"), "{err}");
        }
    }
}
