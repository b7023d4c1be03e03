//! Channels: the platform accounts a tenant connected, and the route from an account to its channel.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelStatus {
    Connected,
    /// The platform rejected the token (Graph error 190): sends stop until it is reconnected.
    NeedsReauth,
    Disconnected,
}
named_enum!(ChannelStatus { Connected => "connected", NeedsReauth => "needs_reauth", Disconnected => "disconnected" });

/// Why a channel needs the business to connect it again, as the platform said it (by code and subcode,
/// platform-spec 9.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReauthReason {
    /// Graph 190 without a more precise subcode (467 invalid, 102 session), LINE 401.
    TokenInvalid,
    /// 190/463, or an Instagram-Login token past its 60 days.
    TokenExpired,
    /// 190/460: the person who connected it changed their Facebook password.
    PasswordChanged,
    /// 190/458: the app was removed from the account.
    AppRemoved,
    /// 190/459 or 464: the person must fix something on facebook.com (a checkpoint, an unconfirmed user).
    ActionRequired,
    /// Code 10 or 200–299: a permission the app needs was taken away.
    PermissionMissing,
    /// Subcode 492: the person lost their role on the Page.
    RoleLost,
    /// `debug_token` says the token belongs to another app.
    WrongApp,
}
named_enum!(ReauthReason {
    TokenInvalid => "token_invalid",
    TokenExpired => "token_expired",
    PasswordChanged => "password_changed",
    AppRemoved => "app_removed",
    ActionRequired => "action_required",
    PermissionMissing => "permission_missing",
    RoleLost => "role_lost",
    WrongApp => "wrong_app",
});

/// A connected business messaging account: a Page, an Instagram account, a WhatsApp number, a LINE
/// channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Channel {
    pub tenant_id: TenantId,
    pub channel_id: ChannelId,
    pub platform: Platform,
    /// Page id, Instagram account id, WhatsApp `phone_number_id`, or LINE bot user id (`destination`).
    pub account_id: String,
    pub status: ChannelStatus,
    /// The Meta user who connected it (their app-scoped id), so Meta's deauthorize and data-deletion
    /// callbacks find it.
    #[serde(default)]
    pub connected_by: Option<String>,
    #[serde(with = "rfc3339")]
    pub connected_at: OffsetDateTime,
    #[serde(with = "rfc3339::option", default)]
    pub disconnected_at: Option<OffsetDateTime>,
    /// The access token (and, for LINE, the channel secret) sealed by the vault. Removed at disconnect.
    #[serde(default)]
    pub credentials: Option<WrappedCredentials>,
    /// Set at disconnect: the deadline for deleting what was ingested through this channel.
    #[serde(with = "rfc3339::option", default)]
    pub retain_until: Option<OffsetDateTime>,
    /// The account's name as the platform shows it (Page name, Instagram username, WhatsApp verified
    /// name, LINE bot name), for people reading a channel list.
    #[serde(default)]
    pub name: Option<String>,
    /// Connected with Instagram Login (no Page): its API is graph.instagram.com and its token expires
    /// after 60 days unless refreshed.
    #[serde(default)]
    pub instagram_login: bool,
    /// The account whose webhook subscription carries this channel's events, when not the channel's
    /// own: the WABA of a WhatsApp number, the Page of an Instagram account connected through Facebook
    /// Login.
    #[serde(default)]
    pub parent_account_id: Option<String>,
    /// LINE: the channel id; with it (and the channel secret) short-lived tokens are minted on demand
    /// and no token is stored.
    #[serde(default)]
    pub line_channel_id: Option<String>,
    /// When the token was issued to us, and when it expires (`None`: it does not).
    #[serde(with = "rfc3339::option", default)]
    pub token_issued_at: Option<OffsetDateTime>,
    #[serde(with = "rfc3339::option", default)]
    pub token_expires_at: Option<OffsetDateTime>,
    /// Set with `needs_reauth`: what the business must fix.
    #[serde(default)]
    pub reauth_reason: Option<ReauthReason>,
    /// The last token-health check that reached the platform.
    #[serde(with = "rfc3339::option", default)]
    pub health_checked_at: Option<OffsetDateTime>,
}

impl Channel {
    /// A channel as it is connected: its credentials sealed by the vault under `channel_id`.
    pub fn connected(
        tenant_id: &TenantId,
        channel_id: ChannelId,
        platform: Platform,
        account_id: String,
        credentials: WrappedCredentials,
        connected_by: Option<String>,
        at: OffsetDateTime,
    ) -> Self {
        Self {
            tenant_id: tenant_id.to_owned(),
            channel_id,
            platform,
            account_id,
            status: ChannelStatus::Connected,
            connected_by,
            connected_at: at,
            disconnected_at: None,
            credentials: Some(credentials),
            retain_until: None,
            name: None,
            instagram_login: false,
            parent_account_id: None,
            line_channel_id: None,
            token_issued_at: Some(at),
            token_expires_at: None,
            reauth_reason: None,
            health_checked_at: None,
        }
    }
}

impl Channel {
    /// The account whose webhook subscription carries this channel's events: the WABA of a WhatsApp
    /// number, the Page of an Instagram account connected through Facebook Login, else its own.
    pub fn subscribed_account(&self) -> &str {
        match self.platform {
            Platform::Messenger => &self.account_id,
            _ => self
                .parent_account_id
                .as_deref()
                .unwrap_or(&self.account_id),
        }
    }
}

/// Which tenant and channel own a platform account: the only way from a webhook into a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub platform: Platform,
    pub account_id: String,
    pub tenant_id: TenantId,
    pub channel_id: ChannelId,
}

/// A connect link's state, claimed when its callback first arrives: a link is usable once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectStateClaim {
    pub nonce: String,
    pub tenant_id: TenantId,
    #[serde(with = "rfc3339")]
    pub claimed_at: OffsetDateTime,
    /// The link's own expiry: after it the claim is of no use and TTL removes it.
    #[serde(with = "rfc3339")]
    pub link_expires_at: OffsetDateTime,
}
