//! Types for values that must never reach a log line: platform tokens, channel and app secrets, the
//! text customers write and their platform ids. Their `Debug` prints a placeholder and none of them implements `Display`, so a
//! stray `{:?}` or a tracing field cannot leak them; the value is reached only through an explicit
//! `expose_…` call at the point of use.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

macro_rules! secret_string {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name(SecretString);

        impl $name {
            pub fn new(value: impl Into<String>) -> Self {
                Self(SecretString::from(value.into()))
            }

            /// The secret itself, for the one call that needs it (a signature check, an HTTP header).
            pub fn expose_secret(&self) -> &str {
                self.0.expose_secret()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "(<redacted>)"))
            }
        }
    };
}

secret_string!(
    /// A platform access token: a Page token, an Instagram token, a WhatsApp system-user token, a LINE
    /// channel access token.
    PlatformToken
);
secret_string!(
    /// A LINE channel secret (the HMAC key of that channel's webhooks).
    ChannelSecret
);
secret_string!(
    /// An application secret from configuration: the Meta app secret, the verify token, LLM API keys.
    AppSecret
);
secret_string!(
    /// An OAuth authorization code a platform handed the business's browser: one exchange from a token.
    AuthorizationCode
);
secret_string!(
    /// A console user's password (Cognito checks it against the pool's policy).
    Password
);
secret_string!(
    /// A Cognito token: an id, access or refresh token. A bearer credential for an hour (refresh: days).
    BearerToken
);
secret_string!(
    /// The six-digit two-step PIN a WhatsApp number is registered with.
    RegistrationPin
);

macro_rules! personal_string {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(text: impl Into<String>) -> Self {
                Self(text.into())
            }

            pub fn expose(&self) -> &str {
                &self.0
            }

            pub fn into_inner(self) -> String {
                self.0
            }

            pub fn is_empty(&self) -> bool {
                self.0.is_empty()
            }

            /// Length in characters, safe to log.
            pub fn char_count(&self) -> usize {
                self.0.chars().count()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "(<{} chars>)"), self.char_count())
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> Self {
                Self::new(text)
            }
        }
    };
}

personal_string!(
    /// Text written by a customer, an agent or the AI. Stored (it is the product), never logged.
    MessageText
);
personal_string!(
    /// A customer's profile name as a platform reports it (WhatsApp `profile.name`, Instagram username).
    ProfileName
);
personal_string!(
    /// A customer's id on a platform (PSID, IGSID, LINE user id, WhatsApp `wa_id`). A WhatsApp id is the
    /// customer's phone number, so it is personal data: stored and used in keys, never logged.
    PlatformUserId
);

/// Why a secret file's text is not one secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretTextError {
    #[error("it is empty")]
    Empty,
    #[error(
        "it has {0} non-empty lines: it must hold the secret alone, on one line (which line is meant would be a guess)"
    )]
    SeveralLines(usize),
}

/// The secret a file holds (a platform token, a channel secret): its one non-empty line, surrounding
/// whitespace trimmed. An empty file, or one with more than one non-empty line (two tokens pasted, a
/// token and a note), is refused rather than guessed at or sent on with a newline inside.
pub fn secret_from_file_text(text: &str) -> Result<&str, SecretTextError> {
    let mut lines = text.lines().map(str::trim).filter(|line| !line.is_empty());
    match (lines.next(), lines.count()) {
        (None, _) => Err(SecretTextError::Empty),
        (Some(secret), 0) => Ok(secret),
        (Some(_), more) => Err(SecretTextError::SeveralLines(more + 1)),
    }
}

#[cfg(test)]
mod tests {
    use super::{SecretTextError, secret_from_file_text};

    #[test]
    fn a_secret_file_holds_one_non_empty_line() {
        for (text, secret) in [
            ("EAAG-token", "EAAG-token"),
            ("EAAG-token\n", "EAAG-token"),
            ("\r\n  EAAG-token  \r\n\n", "EAAG-token"),
        ] {
            assert_eq!(secret_from_file_text(text), Ok(secret), "{text:?}");
        }
        for (text, error) in [
            ("", SecretTextError::Empty),
            (" \n\t\n", SecretTextError::Empty),
            ("EAAG-one\nEAAG-two\n", SecretTextError::SeveralLines(2)),
            (
                "token\n\n# the page token\n",
                SecretTextError::SeveralLines(2),
            ),
        ] {
            assert_eq!(secret_from_file_text(text), Err(error), "{text:?}");
        }
    }

    use super::*;

    #[test]
    fn debug_output_hides_every_secret() {
        let token = PlatformToken::new("EAAG-super-secret-token");
        let secret = ChannelSecret::new("line-channel-secret");
        let app = AppSecret::new("meta-app-secret");
        let text = MessageText::new("my card is 4242 4242 4242 4242");
        let phone = PlatformUserId::new("818012345678");
        let printed = format!("{token:?} {secret:?} {app:?} {text:?} {phone:?}");
        for leaked in ["EAAG", "line-channel", "meta-app", "4242", "8180"] {
            assert!(!printed.contains(leaked), "{printed} leaks {leaked}");
        }
        assert_eq!(token.expose_secret(), "EAAG-super-secret-token");
        assert_eq!(text.expose(), "my card is 4242 4242 4242 4242");
    }
}
