//! LINE's channel APIs (platform-spec 9.5): who the bot is (its user id is the webhook `destination`),
//! where its webhooks go, a test delivery, and stateless channel access tokens minted from the
//! channel id and secret.

use serde::Deserialize;

use super::{AccountApiError, read_json};
use crate::config::Config;
use crate::secret::{ChannelSecret, PlatformToken};

/// The bot behind a channel access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotInfo {
    /// The bot's user id: the `destination` of its webhooks.
    pub user_id: String,
    pub basic_id: String,
    pub display_name: String,
}

/// LINE's verdict on a test delivery to our webhook URL.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookTest {
    pub success: bool,
    #[serde(default)]
    pub status_code: Option<u16>,
    #[serde(default)]
    pub reason: String,
}

/// A minted stateless token and its lifetime in seconds (15 minutes).
#[derive(Debug, Clone)]
pub struct MintedToken {
    pub token: PlatformToken,
    pub expires_in: u64,
}

#[derive(Clone)]
pub struct LineChannels {
    http: reqwest::Client,
    api_url: String,
    oauth_url: String,
}

impl LineChannels {
    pub fn new(config: &Config, http: reqwest::Client) -> Self {
        Self {
            http,
            api_url: config.line_api_url.clone(),
            oauth_url: config.line_oauth_url.clone(),
        }
    }

    /// A stateless channel access token (`/oauth2/v3/token`): lives 15 minutes, cannot be revoked, as
    /// many as needed. LINE asks not to mint one per call: callers cache it.
    pub async fn mint_token(
        &self,
        line_channel_id: &str,
        secret: &ChannelSecret,
    ) -> Result<MintedToken, AccountApiError> {
        #[derive(Deserialize)]
        struct Minted {
            access_token: String,
            expires_in: u64,
        }
        let request = self
            .http
            .post(format!("{}/oauth2/v3/token", self.oauth_url))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", line_channel_id),
                ("client_secret", secret.expose_secret()),
            ]);
        let minted: Minted = read_json("minting a LINE channel access token", request).await?;
        Ok(MintedToken {
            token: PlatformToken::new(minted.access_token),
            expires_in: minted.expires_in,
        })
    }

    pub async fn bot_info(&self, token: &PlatformToken) -> Result<BotInfo, AccountApiError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Info {
            user_id: String,
            #[serde(default)]
            basic_id: String,
            #[serde(default)]
            display_name: String,
        }
        let request = self
            .http
            .get(format!("{}/v2/bot/info", self.api_url))
            .bearer_auth(token.expose_secret());
        let info: Info = read_json("reading the LINE bot's information", request).await?;
        Ok(BotInfo {
            user_id: info.user_id,
            basic_id: info.basic_id,
            display_name: info.display_name,
        })
    }

    /// Points the channel's webhooks at `endpoint` (LINE takes only HTTPS).
    pub async fn set_webhook_endpoint(
        &self,
        token: &PlatformToken,
        endpoint: &str,
    ) -> Result<(), AccountApiError> {
        let request = self
            .http
            .put(format!("{}/v2/bot/channel/webhook/endpoint", self.api_url))
            .bearer_auth(token.expose_secret())
            .json(&serde_json::json!({ "endpoint": endpoint }));
        read_json::<serde::de::IgnoredAny>("setting the LINE webhook URL", request)
            .await
            .map(drop)
    }

    /// Asks LINE to send a test webhook to the channel's endpoint and say how it went.
    pub async fn test_webhook(
        &self,
        token: &PlatformToken,
    ) -> Result<WebhookTest, AccountApiError> {
        let request = self
            .http
            .post(format!("{}/v2/bot/channel/webhook/test", self.api_url))
            .bearer_auth(token.expose_secret())
            .json(&serde_json::json!({}));
        read_json("testing the LINE webhook", request).await
    }
}
