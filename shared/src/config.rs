//! Configuration, read once from the environment at cold start.
//!
//! Every variable is parsed up front so a bad value fails the cold start with its name in the error
//! rather than a request later on. Variables only some functions need (queue URLs, the Meta app secret)
//! are optional here; each function asks for what it needs with the `require_…` accessors at start-up,
//! which name the missing variable.

use std::fmt;

use crate::secret::AppSecret;

/// Graph API version used when `META_GRAPH_VERSION` is unset.
pub const DEFAULT_GRAPH_VERSION: &str = "v24.0";

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("environment variable {name} is required{why}")]
    Missing { name: &'static str, why: Why },
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// Why a variable is required, for the error message.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub struct Why(pub &'static str);

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            Ok(())
        } else {
            write!(f, " ({})", self.0)
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub table_name: String,
    pub inbound_queue_url: Option<String>,
    pub erasure_queue_url: Option<String>,
    pub kms_key_id: String,
    pub meta_app_secret: Option<AppSecret>,
    pub meta_verify_token: Option<AppSecret>,
    pub meta_graph_url: String,
    pub meta_graph_version: String,
    pub line_api_url: String,
    /// Where LINE channel access tokens are minted (`/oauth2/v3/token`).
    pub line_oauth_url: String,
    pub public_base_url: Option<String>,
    /// The Meta app's id: the `client_id` of Facebook Login and Embedded Signup, and what `debug_token`
    /// must name for a token to be ours.
    pub meta_app_id: Option<String>,
    /// The Facebook Login for Business configuration that asks for the Messenger/Instagram permissions.
    pub meta_login_config_id: Option<String>,
    /// The Facebook Login for Business configuration of WhatsApp Embedded Signup.
    pub meta_whatsapp_config_id: Option<String>,
    /// Where the Facebook Login dialog is (`{META_DIALOG_URL}/{version}/dialog/oauth`).
    pub meta_dialog_url: String,
    /// The Instagram app (Instagram API with Instagram Login): its own id and secret.
    pub instagram_app_id: Option<String>,
    pub instagram_app_secret: Option<AppSecret>,
    /// The Instagram Login dialog (`{INSTAGRAM_DIALOG_URL}/oauth/authorize`).
    pub instagram_dialog_url: String,
    /// Where Instagram Login codes are exchanged (`{INSTAGRAM_OAUTH_URL}/oauth/access_token`).
    pub instagram_oauth_url: String,
    pub instagram_graph_url: String,
    /// Signs connect links (`state`); a secret of its own, so no other secret's leak forges a link.
    pub connect_state_secret: Option<AppSecret>,
    /// The console API's browser origin (CORS), e.g. `https://console.example.com`.
    pub console_allowed_origin: Option<String>,
    /// Signs the console API's page cursors (32 or more characters).
    pub console_cursor_secret: Option<AppSecret>,
    pub anthropic_api_key: Option<AppSecret>,
    pub anthropic_base_url: String,
    pub anthropic_model: String,
    pub openai_api_key: Option<AppSecret>,
    pub openai_base_url: String,
    pub openai_model: String,
    /// Receives of one inbound job before SQS moves it to the dead-letter queue (the queue's
    /// `maxReceiveCount`); on the last one, ai-reply hands the conversation to a human.
    pub inbound_max_receives: u32,
    /// The Cognito user pool of the console's staff (`us-east-1_AbC…`).
    pub cognito_user_pool_id: Option<String>,
    /// The pool's app client the console signs in through (no secret): the audience of its tokens.
    pub cognito_client_id: Option<String>,
    /// The issuer (`iss`) of the pool's tokens; default `https://cognito-idp.{AWS_REGION}.amazonaws.com/{pool}`,
    /// which is also what moto writes into its tokens.
    pub cognito_issuer: Option<String>,
    /// Read by the AWS SDK itself; kept here so operators see what the process was pointed at.
    pub aws_endpoint_url: Option<String>,
    pub aws_region: Option<String>,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup`, so tests need not touch the process environment.
    /// An empty value counts as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let secret = |name: &str| get(name).map(AppSecret::new);
        let url = |name: &'static str,
                   default: Option<&str>|
         -> Result<Option<String>, ConfigError> {
            match get(name).or_else(|| default.map(str::to_owned)) {
                None => Ok(None),
                Some(value) if value.starts_with("https://") || value.starts_with("http://") => {
                    Ok(Some(value.trim_end_matches('/').to_owned()))
                }
                Some(_) => Err(ConfigError::Invalid {
                    name,
                    reason: "must be an http:// or https:// URL".into(),
                }),
            }
        };
        let required_url = |name: &'static str, default: &str| -> Result<String, ConfigError> {
            url(name, Some(default)).map(|v| v.expect("a default is always present"))
        };

        let meta_graph_version =
            get("META_GRAPH_VERSION").unwrap_or_else(|| DEFAULT_GRAPH_VERSION.into());
        if !is_graph_version(&meta_graph_version) {
            return Err(ConfigError::Invalid {
                name: "META_GRAPH_VERSION",
                reason: format!(
                    "{meta_graph_version:?} is not of the form v<major>.<minor>, e.g. v24.0"
                ),
            });
        }
        let table_name = get("TABLE_NAME").unwrap_or_else(|| "inbox".into());
        if !table_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
            || table_name.len() < 3
        {
            return Err(ConfigError::Invalid {
                name: "TABLE_NAME",
                reason:
                    "a DynamoDB table name has 3-255 characters of a-z, A-Z, 0-9, '_', '-', '.'"
                        .into(),
            });
        }

        let inbound_max_receives =
            match get("INBOUND_MAX_RECEIVES") {
                None => 5,
                Some(v) => v.parse::<u32>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                    ConfigError::Invalid {
                        name: "INBOUND_MAX_RECEIVES",
                        reason: format!("{v:?} is not a positive whole number"),
                    }
                })?,
            };

        let connect_state_secret = secret("CONNECT_STATE_SECRET");
        if connect_state_secret
            .as_ref()
            .is_some_and(|s| s.expose_secret().len() < 32)
        {
            return Err(ConfigError::Invalid {
                name: "CONNECT_STATE_SECRET",
                reason: "shorter than 32 characters: use `openssl rand -hex 32`".into(),
            });
        }

        let cognito_user_pool_id = get("COGNITO_USER_POOL_ID");
        if let Some(pool) = &cognito_user_pool_id
            && !is_user_pool_id(pool)
        {
            return Err(ConfigError::Invalid {
                name: "COGNITO_USER_POOL_ID",
                reason: format!("{pool:?} is not a user pool id such as us-east-1_AbCdEf123"),
            });
        }
        let cognito_client_id = get("COGNITO_CLIENT_ID");
        if let Some(client) = &cognito_client_id
            && (client.len() > 128 || !client.bytes().all(|b| b.is_ascii_alphanumeric()))
        {
            return Err(ConfigError::Invalid {
                name: "COGNITO_CLIENT_ID",
                reason: "an app client id has letters and digits only".into(),
            });
        }
        let aws_region = get("AWS_REGION");
        let cognito_issuer = match url("COGNITO_ISSUER", None)? {
            Some(issuer) => Some(issuer),
            None => cognito_user_pool_id.as_deref().map(|pool| {
                // A pool id starts with its region; AWS_REGION only when it somehow does not.
                let region = pool
                    .split_once('_')
                    .map(|(region, _)| region.to_owned())
                    .or_else(|| aws_region.clone())
                    .unwrap_or_else(|| "us-east-1".into());
                format!("https://cognito-idp.{region}.amazonaws.com/{pool}")
            }),
        };

        let console_cursor_secret = secret("CONSOLE_CURSOR_SECRET");
        if console_cursor_secret
            .as_ref()
            .is_some_and(|s| s.expose_secret().len() < 32)
        {
            return Err(ConfigError::Invalid {
                name: "CONSOLE_CURSOR_SECRET",
                reason: "shorter than 32 characters: use `openssl rand -hex 32`".into(),
            });
        }

        Ok(Self {
            table_name,
            cognito_user_pool_id,
            cognito_client_id,
            cognito_issuer,
            console_allowed_origin: url("CONSOLE_ALLOWED_ORIGIN", None)?,
            console_cursor_secret,
            inbound_max_receives,
            inbound_queue_url: url("INBOUND_QUEUE_URL", None)?,
            erasure_queue_url: url("ERASURE_QUEUE_URL", None)?,
            kms_key_id: get("KMS_KEY_ID").unwrap_or_else(|| "alias/inbox-tokens".into()),
            meta_app_secret: secret("META_APP_SECRET"),
            meta_verify_token: secret("META_VERIFY_TOKEN"),
            meta_graph_url: required_url("META_GRAPH_URL", "https://graph.facebook.com")?,
            meta_graph_version,
            line_api_url: required_url("LINE_API_URL", "https://api.line.me")?,
            line_oauth_url: required_url("LINE_OAUTH_URL", "https://api.line.me")?,
            public_base_url: url("PUBLIC_BASE_URL", None)?,
            meta_app_id: numeric_id(get("META_APP_ID"), "META_APP_ID")?,
            meta_login_config_id: numeric_id(get("META_LOGIN_CONFIG_ID"), "META_LOGIN_CONFIG_ID")?,
            meta_whatsapp_config_id: numeric_id(
                get("META_WHATSAPP_CONFIG_ID"),
                "META_WHATSAPP_CONFIG_ID",
            )?,
            meta_dialog_url: required_url("META_DIALOG_URL", "https://www.facebook.com")?,
            instagram_app_id: numeric_id(get("INSTAGRAM_APP_ID"), "INSTAGRAM_APP_ID")?,
            instagram_app_secret: secret("INSTAGRAM_APP_SECRET"),
            instagram_dialog_url: required_url(
                "INSTAGRAM_DIALOG_URL",
                "https://www.instagram.com",
            )?,
            instagram_oauth_url: required_url("INSTAGRAM_OAUTH_URL", "https://api.instagram.com")?,
            instagram_graph_url: required_url(
                "INSTAGRAM_GRAPH_URL",
                "https://graph.instagram.com",
            )?,
            connect_state_secret,
            anthropic_api_key: secret("ANTHROPIC_API_KEY"),
            anthropic_base_url: required_url("ANTHROPIC_BASE_URL", "https://api.anthropic.com")?,
            anthropic_model: get("ANTHROPIC_MODEL").unwrap_or_else(|| "claude-sonnet-4-5".into()),
            openai_api_key: secret("OPENAI_API_KEY"),
            openai_base_url: required_url("OPENAI_BASE_URL", "https://api.openai.com/v1")?,
            openai_model: get("OPENAI_MODEL").unwrap_or_else(|| "gpt-4.1-mini".into()),
            aws_endpoint_url: url("AWS_ENDPOINT_URL", None)?,
            aws_region,
        })
    }

    pub fn require_inbound_queue_url(&self) -> Result<&str, ConfigError> {
        required(
            &self.inbound_queue_url,
            "INBOUND_QUEUE_URL",
            "the inbound FIFO queue",
        )
    }

    pub fn require_erasure_queue_url(&self) -> Result<&str, ConfigError> {
        required(
            &self.erasure_queue_url,
            "ERASURE_QUEUE_URL",
            "the erasure and sweep-job queue",
        )
    }

    pub fn require_meta_app_secret(&self) -> Result<&AppSecret, ConfigError> {
        self.meta_app_secret.as_ref().ok_or(ConfigError::Missing {
            name: "META_APP_SECRET",
            why: Why("App settings > Basic in the Meta App Dashboard"),
        })
    }

    pub fn require_meta_app_id(&self) -> Result<&str, ConfigError> {
        required(
            &self.meta_app_id,
            "META_APP_ID",
            "App settings > Basic in the Meta App Dashboard",
        )
    }

    pub fn require_connect_state_secret(&self) -> Result<&AppSecret, ConfigError> {
        self.connect_state_secret
            .as_ref()
            .ok_or(ConfigError::Missing {
                name: "CONNECT_STATE_SECRET",
                why: Why(
                    "signs connect links: 32 or more random bytes, e.g. `openssl rand -hex 32`",
                ),
            })
    }

    pub fn require_console_cursor_secret(&self) -> Result<&AppSecret, ConfigError> {
        self.console_cursor_secret
            .as_ref()
            .ok_or(ConfigError::Missing {
                name: "CONSOLE_CURSOR_SECRET",
                why: Why(
                    "signs the console API's page cursors: 32 or more random bytes, e.g. `openssl rand -hex 32`",
                ),
            })
    }

    pub fn require_public_base_url(&self) -> Result<&str, ConfigError> {
        required(
            &self.public_base_url,
            "PUBLIC_BASE_URL",
            "the HTTPS origin the platforms redirect to and send webhooks to",
        )
    }

    pub fn require_cognito_user_pool_id(&self) -> Result<&str, ConfigError> {
        required(
            &self.cognito_user_pool_id,
            "COGNITO_USER_POOL_ID",
            "the console's Cognito user pool: the stack's UserPoolId output, or `inboxctl provision`",
        )
    }

    pub fn require_cognito_client_id(&self) -> Result<&str, ConfigError> {
        required(
            &self.cognito_client_id,
            "COGNITO_CLIENT_ID",
            "the console's Cognito app client: the stack's UserPoolClientId output, or `inboxctl provision`",
        )
    }

    /// The issuer the console's tokens must name (set, or derived from `COGNITO_USER_POOL_ID`).
    pub fn require_cognito_issuer(&self) -> Result<&str, ConfigError> {
        required(
            &self.cognito_issuer,
            "COGNITO_ISSUER",
            "or COGNITO_USER_POOL_ID, which it is derived from",
        )
    }

    /// Where the pool's signing keys are: under the issuer in AWS; on the emulator, which serves them at
    /// `{AWS_ENDPOINT_URL}/{pool}/.well-known/jwks.json` while its tokens name the AWS issuer.
    pub fn cognito_jwks_url(&self) -> Result<String, ConfigError> {
        match (&self.aws_endpoint_url, &self.cognito_user_pool_id) {
            (Some(endpoint), Some(pool)) => Ok(format!("{endpoint}/{pool}/.well-known/jwks.json")),
            _ => Ok(format!(
                "{}/.well-known/jwks.json",
                self.require_cognito_issuer()?
            )),
        }
    }

    pub fn require_meta_verify_token(&self) -> Result<&AppSecret, ConfigError> {
        self.meta_verify_token.as_ref().ok_or(ConfigError::Missing {
            name: "META_VERIFY_TOKEN",
            why: Why("the verify token typed into the Meta webhook settings"),
        })
    }
}

/// Meta's app and configuration ids are digits; anything else is a paste error worth failing on at start.
fn numeric_id(value: Option<String>, name: &'static str) -> Result<Option<String>, ConfigError> {
    match value {
        Some(v) if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) || v.len() > 32 => {
            Err(ConfigError::Invalid {
                name,
                reason: format!("{v:?} is not a Meta id (digits only)"),
            })
        }
        other => Ok(other),
    }
}

fn required<'a>(
    value: &'a Option<String>,
    name: &'static str,
    why: &'static str,
) -> Result<&'a str, ConfigError> {
    value.as_deref().ok_or(ConfigError::Missing {
        name,
        why: Why(why),
    })
}

/// `{region}_{letters and digits}`, as Cognito names pools.
fn is_user_pool_id(v: &str) -> bool {
    v.len() <= 55
        && v.split_once('_').is_some_and(|(region, rest)| {
            !region.is_empty()
                && region
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !rest.is_empty()
                && rest.bytes().all(|b| b.is_ascii_alphanumeric())
        })
}

fn is_graph_version(v: &str) -> bool {
    v.strip_prefix('v')
        .and_then(|rest| rest.split_once('.'))
        .is_some_and(|(major, minor)| {
            !major.is_empty()
                && !minor.is_empty()
                && major.chars().all(|c| c.is_ascii_digit())
                && minor.chars().all(|c| c.is_ascii_digit())
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let c = config(&[]).unwrap();
        assert_eq!(c.table_name, "inbox");
        assert_eq!(c.kms_key_id, "alias/inbox-tokens");
        assert_eq!(c.meta_graph_url, "https://graph.facebook.com");
        assert_eq!(c.meta_graph_version, DEFAULT_GRAPH_VERSION);
        assert_eq!(c.line_api_url, "https://api.line.me");
        assert!(c.inbound_queue_url.is_none());
        assert!(c.meta_app_secret.is_none());
    }

    #[test]
    fn missing_required_variable_is_named() {
        let c = config(&[]).unwrap();
        let err = c.require_inbound_queue_url().unwrap_err();
        assert!(err.to_string().contains("INBOUND_QUEUE_URL"), "{err}");
        let err = c.require_meta_app_secret().unwrap_err();
        assert!(err.to_string().contains("META_APP_SECRET"), "{err}");
    }

    #[test]
    fn invalid_values_are_rejected_with_their_name() {
        let err = config(&[("META_GRAPH_URL", "graph.facebook.com")]).unwrap_err();
        assert_eq!(
            err,
            ConfigError::Invalid {
                name: "META_GRAPH_URL",
                reason: "must be an http:// or https:// URL".into()
            }
        );
        let err = config(&[("META_GRAPH_VERSION", "24")]).unwrap_err();
        assert!(err.to_string().contains("META_GRAPH_VERSION"));
        let err = config(&[("TABLE_NAME", "my table")]).unwrap_err();
        assert!(err.to_string().contains("TABLE_NAME"));
    }

    #[test]
    fn empty_values_count_as_unset_and_urls_lose_trailing_slash() {
        let c = config(&[
            ("OPENAI_API_KEY", "  "),
            ("LINE_API_URL", "http://127.0.0.1:9000/"),
        ])
        .unwrap();
        assert!(c.openai_api_key.is_none());
        assert_eq!(c.line_api_url, "http://127.0.0.1:9000");
    }

    #[test]
    fn cognito_settings_are_checked_and_the_issuer_derived() {
        let c = config(&[]).unwrap();
        for err in [
            c.require_cognito_user_pool_id().unwrap_err(),
            c.require_cognito_client_id().unwrap_err(),
        ] {
            assert!(err.to_string().contains("COGNITO_"), "{err}");
        }
        let c = config(&[
            ("COGNITO_USER_POOL_ID", "eu-west-1_AbC123"),
            ("COGNITO_CLIENT_ID", "abc123def"),
        ])
        .unwrap();
        assert_eq!(
            c.require_cognito_issuer().unwrap(),
            "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC123"
        );
        assert_eq!(
            c.cognito_jwks_url().unwrap(),
            "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC123/.well-known/jwks.json"
        );
        let local = config(&[
            ("COGNITO_USER_POOL_ID", "us-east-1_Local1"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000/"),
            ("COGNITO_ISSUER", "https://issuer.example/pool/"),
        ])
        .unwrap();
        assert_eq!(
            local.cognito_issuer.as_deref(),
            Some("https://issuer.example/pool")
        );
        assert_eq!(
            local.cognito_jwks_url().unwrap(),
            "http://127.0.0.1:5000/us-east-1_Local1/.well-known/jwks.json"
        );
        for (name, value) in [
            ("COGNITO_USER_POOL_ID", "pool"),
            ("COGNITO_USER_POOL_ID", "us-east-1_a/b"),
            ("COGNITO_CLIENT_ID", "abc-123"),
            ("COGNITO_ISSUER", "cognito-idp.example"),
        ] {
            let err = config(&[(name, value)]).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn debug_output_hides_secrets() {
        let c = config(&[
            ("META_APP_SECRET", "s3cr3t-app"),
            ("ANTHROPIC_API_KEY", "sk-ant-xyz"),
        ])
        .unwrap();
        let printed = format!("{c:?}");
        assert!(!printed.contains("s3cr3t-app") && !printed.contains("sk-ant-xyz"));
    }
}
