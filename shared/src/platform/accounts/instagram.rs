//! Instagram API with Instagram Login (platform-spec 9.3): a professional account connected without a
//! Facebook Page, through the Instagram app's own id and secret. Its tokens last 60 days and are
//! refreshed (at least 24 hours old, not yet expired) by the daily token-health check.

use serde::Deserialize;

use super::graph::{IssuedToken, issued};
use super::{AccountApiError, read_json, read_success};
use crate::config::{Config, ConfigError};
use crate::https::endpoint;
use crate::platform::id_string;
use crate::secret::{AppSecret, AuthorizationCode, PlatformToken};

/// The webhook fields of an Instagram-Login account that ingest handles.
pub const FIELDS: &[&str] = &[
    "messages",
    "message_reactions",
    "messaging_seen",
    "messaging_postbacks",
];

/// What the login dialog asks for: the account's profile and its messages.
pub const SCOPES: &str = "instagram_business_basic,instagram_business_manage_messages";

/// The account a token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstagramAccount {
    /// The professional account id: the `entry.id` of its webhooks.
    pub user_id: String,
    pub username: String,
}

#[derive(Clone)]
pub struct InstagramLogin {
    http: reqwest::Client,
    app_id: String,
    app_secret: AppSecret,
    dialog_url: String,
    oauth_url: String,
    graph_url: String,
    version: String,
}

impl InstagramLogin {
    pub fn new(config: &Config, http: reqwest::Client) -> Result<Self, ConfigError> {
        let missing = |name| ConfigError::Missing {
            name,
            why: crate::config::Why(
                "Instagram > API setup with Instagram login in the Meta App Dashboard",
            ),
        };
        Ok(Self {
            http,
            app_id: config
                .instagram_app_id
                .clone()
                .ok_or_else(|| missing("INSTAGRAM_APP_ID"))?,
            app_secret: config
                .instagram_app_secret
                .clone()
                .ok_or_else(|| missing("INSTAGRAM_APP_SECRET"))?,
            dialog_url: config.instagram_dialog_url.clone(),
            oauth_url: config.instagram_oauth_url.clone(),
            graph_url: config.instagram_graph_url.clone(),
            version: config.meta_graph_version.clone(),
        })
    }

    /// Where the business's browser is sent to log in.
    pub fn authorize_url(&self, redirect_uri: &str, state: &str) -> String {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", &self.app_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("response_type", "code")
            .append_pair("scope", SCOPES)
            .append_pair("state", state)
            .finish();
        format!("{}/oauth/authorize?{query}", self.dialog_url)
    }

    fn authorized(
        &self,
        method: reqwest::Method,
        url: &str,
        token: &PlatformToken,
    ) -> reqwest::RequestBuilder {
        super::authorized(&self.http, method, url, token, &self.app_secret)
    }

    fn me(&self, segments: &[&str]) -> Result<String, AccountApiError> {
        let base = format!("{}/{}", self.graph_url, self.version);
        let mut all = vec!["me"];
        all.extend_from_slice(segments);
        Ok(endpoint(&base, &all)?)
    }

    /// Code → short-lived token (one hour) and the account id. Meta appends `#_` to the code in the
    /// redirect; it is not part of the code.
    pub async fn exchange_code(
        &self,
        code: &AuthorizationCode,
        redirect_uri: &str,
    ) -> Result<(PlatformToken, String), AccountApiError> {
        #[derive(Deserialize)]
        struct Answer {
            access_token: Option<String>,
            #[serde(default, deserialize_with = "id_string")]
            user_id: Option<String>,
            /// Newer answers wrap the same fields in `data[0]`.
            #[serde(default)]
            data: Vec<Answer>,
        }
        const CALL: &str = "exchanging the Instagram login code";
        let code = code.expose_secret();
        let code = code.strip_suffix("#_").unwrap_or(code);
        let request = self
            .http
            .post(format!("{}/oauth/access_token", self.oauth_url))
            .form(&[
                ("client_id", self.app_id.as_str()),
                ("client_secret", self.app_secret.expose_secret()),
                ("grant_type", "authorization_code"),
                ("redirect_uri", redirect_uri),
                ("code", code),
            ]);
        let mut answer: Answer = read_json(CALL, request).await?;
        if answer.access_token.is_none() && !answer.data.is_empty() {
            answer = answer.data.swap_remove(0);
        }
        match (answer.access_token, answer.user_id) {
            (Some(token), Some(user_id)) => Ok((PlatformToken::new(token), user_id)),
            _ => Err(AccountApiError::Unexpected {
                call: CALL,
                reason: "no access_token or user_id".into(),
            }),
        }
    }

    /// Short-lived → long-lived (60 days).
    pub async fn long_lived(&self, token: &PlatformToken) -> Result<IssuedToken, AccountApiError> {
        let request = self
            .http
            .get(format!("{}/access_token", self.graph_url))
            .query(&[
                ("grant_type", "ig_exchange_token"),
                ("client_secret", self.app_secret.expose_secret()),
                ("access_token", token.expose_secret()),
            ]);
        issued("making the Instagram token long-lived", request).await
    }

    /// A new 60-day token for one at least 24 hours old and not expired.
    pub async fn refresh(&self, token: &PlatformToken) -> Result<IssuedToken, AccountApiError> {
        let request = self
            .http
            .get(format!("{}/refresh_access_token", self.graph_url))
            .query(&[
                ("grant_type", "ig_refresh_token"),
                ("access_token", token.expose_secret()),
            ]);
        issued("refreshing the Instagram token", request).await
    }

    pub async fn account(
        &self,
        token: &PlatformToken,
    ) -> Result<InstagramAccount, AccountApiError> {
        #[derive(Deserialize)]
        struct Me {
            #[serde(default, deserialize_with = "id_string")]
            user_id: Option<String>,
            username: Option<String>,
        }
        const CALL: &str = "reading the Instagram account";
        let request = self
            .authorized(reqwest::Method::GET, &self.me(&[])?, token)
            .query(&[("fields", "user_id,username")]);
        let me: Me = read_json(CALL, request).await?;
        Ok(InstagramAccount {
            user_id: me.user_id.ok_or(AccountApiError::Unexpected {
                call: CALL,
                reason: "no user_id".into(),
            })?,
            username: me.username.unwrap_or_default(),
        })
    }

    pub async fn subscribe(&self, token: &PlatformToken) -> Result<(), AccountApiError> {
        let request = self
            .authorized(
                reqwest::Method::POST,
                &self.me(&["subscribed_apps"])?,
                token,
            )
            .query(&[("subscribed_fields", FIELDS.join(","))]);
        read_success("subscribing the Instagram account to our webhooks", request).await
    }

    /// The subscribed fields (`None`: not subscribed).
    pub async fn subscription(
        &self,
        token: &PlatformToken,
    ) -> Result<Option<Vec<String>>, AccountApiError> {
        #[derive(Deserialize)]
        struct Listing {
            #[serde(default)]
            data: Vec<App>,
        }
        #[derive(Deserialize)]
        struct App {
            #[serde(default)]
            subscribed_fields: Vec<String>,
        }
        let request = self.authorized(reqwest::Method::GET, &self.me(&["subscribed_apps"])?, token);
        let listing: Listing =
            read_json("reading the Instagram account's subscription", request).await?;
        Ok(listing
            .data
            .into_iter()
            .next()
            .map(|app| app.subscribed_fields))
    }

    pub async fn unsubscribe(&self, token: &PlatformToken) -> Result<(), AccountApiError> {
        let request = self.authorized(
            reqwest::Method::DELETE,
            &self.me(&["subscribed_apps"])?,
            token,
        );
        read_success("unsubscribing the Instagram account", request).await
    }
}
