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
