//! Domain types: what the inbox stores. Keys live in [`crate::keys`]; how each type maps to an item lives
//! in [`crate::store::records`]. Timestamps are RFC 3339 strings in items, so a person reading the table
//! sees dates; the TTL attribute beside them is the machine copy.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::serde::rfc3339;
use time::{Duration, OffsetDateTime};

pub use crate::ids::{ChannelId, ConversationId, TenantId};
use crate::secret::{MessageText, PlatformUserId, ProfileName};
use crate::vault::WrappedCredentials;

/// Implements `as_str`, `Display` and `FromStr` for a unit-variant enum from one list of names, so the
/// CLI, keys and items all spell a variant the same way (the serde names are set to match).
macro_rules! named_enum {
    ($name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownName;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownName {
                        what: stringify!($name),
                        got: s.to_owned(),
                        expected: &[$($text),+],
                    }),
                }
            }
        }
    };
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("unknown {what} {got:?}; expected one of {expected:?}")]
pub struct UnknownName {
    pub what: &'static str,
    pub got: String,
    pub expected: &'static [&'static str],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    Messenger,
    Instagram,
    Whatsapp,
    Line,
}
named_enum!(Platform { Messenger => "messenger", Instagram => "instagram", Whatsapp => "whatsapp", Line => "line" });

impl Platform {
    /// Messenger, Instagram and WhatsApp are Meta platforms: one app secret signs their webhooks, and a
    /// Meta user's data-deletion request covers them.
    pub fn is_meta(self) -> bool {
        !matches!(self, Platform::Line)
    }
}

mod channel;
mod conversation;
mod records;
pub mod stats;
mod tenant;

pub use channel::*;
pub use conversation::*;
pub use records::*;
pub use tenant::*;

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn names_round_trip_and_unknown_names_say_what_was_expected() {
        for p in Platform::ALL {
            assert_eq!(p.as_str().parse::<Platform>().unwrap(), *p);
        }
        let err = "telegram".parse::<Platform>().unwrap_err();
        assert!(err.to_string().contains("messenger"), "{err}");
        assert_eq!(
            "needs_reauth".parse::<ChannelStatus>().unwrap(),
            ChannelStatus::NeedsReauth
        );
    }

    #[test]
    fn serde_names_match_display_names() {
        for s in ChannelStatus::ALL {
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                serde_json::json!(s.as_str())
            );
        }
        for s in DeletionStatus::ALL {
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                serde_json::json!(s.as_str())
            );
        }
    }

    #[test]
    fn month_is_utc_calendar_month() {
        assert_eq!(month_of(datetime!(2026-11-30 23:30 -05:00)), "2026-12");
        assert_eq!(month_of(datetime!(2026-01-01 00:00 UTC)), "2026-01");
    }

    #[test]
    fn default_policy_matches_the_published_promises() {
        let p = RetentionPolicy::default();
        assert_eq!((p.content_days, p.disconnected_channel_days), (365, 30));
        assert_eq!(
            (
                p.terminated_content_days,
                p.terminated_account_days,
                p.audit_days
            ),
            (90, 30, 365)
        );
    }
}
