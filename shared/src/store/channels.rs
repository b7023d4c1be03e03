//! Channels (a tenant's connected platform accounts) and routes (which channel owns an account).

use time::OffsetDateTime;

use super::error::{Result, StoreError, condition_held, dynamo_error};
use super::expr::Expr;
use super::table::{Store, epoch_seconds, string, timestamp_value};
use crate::ids::{ChannelId, TenantId};
use crate::keys;
use crate::model::{
    AuditEvent, Channel, ChannelStatus, ConnectStateClaim, Platform, ReauthReason, Route,
};
use crate::vault::WrappedCredentials;

impl Store {
    /// Stores a new channel and claims its platform account in one transaction: an account belongs to
    /// one channel at a time, so of two concurrent connects of one account exactly one succeeds.
    pub async fn connect_channel(&self, channel: &Channel) -> Result<()> {
        let route = Route {
            platform: channel.platform,
            account_id: channel.account_id.clone(),
            tenant_id: channel.tenant_id.clone(),
            channel_id: channel.channel_id.clone(),
        };
        self.transact(
            vec![
                self.create_in_transaction(channel)?,
                self.create_in_transaction(&route)?,
            ],
            |index| match index {
                0 => format!("channel {} already exists", channel.channel_id),
                _ => format!(
                    "{} account {} is already connected",
                    channel.platform, channel.account_id
                ),
            },
        )
        .await
    }

    /// Replaces a live channel of an account this tenant already holds (a reconnect: new credentials,
    /// connected again) in one transaction with `audit`, if the channel is not disconnected and the
    /// account's route still names it. Its id, and so its conversations, stay.
    pub async fn reconnect_channel(&self, channel: &Channel, audit: &AuditEvent) -> Result<()> {
        let mut live = Expr::new();
        live.require(|e| {
            e.exists(keys::PK)
                .and(e.ne("status", string(ChannelStatus::Disconnected.as_str())))
        });
        let mut routed = Expr::new();
        routed.require(|e| e.eq("channel_id", string(&channel.channel_id)));
        self.transact(
            vec![
                self.put_in_transaction(channel, live)?,
                self.check_in_transaction(
                    &keys::route(channel.platform, &channel.account_id),
                    routed,
                ),
                self.create_in_transaction(audit)?,
            ],
            |index| match index {
                0 => format!("channel {} was disconnected meanwhile", channel.channel_id),
                1 => format!(
                    "{} account {} was disconnected or moved meanwhile",
                    channel.platform, channel.account_id
                ),
                _ => "the audit event exists already".into(),
            },
        )
        .await
    }

    /// Claims a connect link's nonce. `false`: it was claimed before (a replayed link).
    pub async fn claim_connect_state(&self, claim: &ConnectStateClaim) -> Result<bool> {
        condition_held(self.put(claim, super::table::Write::Create).await)
    }

    /// After a token-health check: when it ran, and a refreshed token if there is one. Only a channel
    /// still connected is touched (a disconnect meanwhile destroyed the token: nothing may put one back).
    pub async fn record_token_health(
        &self,
        tenant_id: &TenantId,
        channel_id: &ChannelId,
        checked_at: OffsetDateTime,
        refreshed: Option<RefreshedToken>,
    ) -> Result<bool> {
        let mut expr = Expr::new();
        expr.set("health_checked_at", timestamp_value(checked_at));
        if let Some(refreshed) = refreshed {
            expr.set(
                "credentials",
                serde_dynamo::to_attribute_value(&refreshed.credentials)
                    .map_err(|e| StoreError::Corrupt(format!("credentials: {e}")))?,
            )
            .set("token_issued_at", timestamp_value(refreshed.issued_at));
            match refreshed.expires_at {
                Some(at) => expr.set("token_expires_at", timestamp_value(at)),
                None => expr.remove("token_expires_at"),
            };
        }
        expr.require(|e| e.eq("status", string(ChannelStatus::Connected.as_str())));
        condition_held(
            self.update(&keys::channel(tenant_id, channel_id), expr)
                .send()
                .await
                .map_err(dynamo_error),
        )
    }

    pub async fn get_channel(
        &self,
        tenant_id: &TenantId,
        channel_id: &ChannelId,
    ) -> Result<Option<Channel>> {
        self.get(&keys::channel(tenant_id, channel_id)).await
    }

    pub async fn require_channel(
        &self,
        tenant_id: &TenantId,
        channel_id: &ChannelId,
    ) -> Result<Channel> {
        self.get_channel(tenant_id, channel_id)
            .await?
            .ok_or_else(|| channel_not_found(tenant_id, channel_id))
    }

    pub async fn channels_of_tenant(&self, tenant_id: &TenantId) -> Result<Vec<Channel>> {
        self.query_all(&keys::channels_of_tenant(tenant_id)).await
    }

    /// Channels a Meta user connected, across tenants (eventually consistent index).
    pub async fn channels_of_meta_user(&self, meta_user_id: &str) -> Result<Vec<Channel>> {
        self.query_all(&keys::channels_of_meta_user(meta_user_id))
            .await
    }

    /// Which tenant and channel own a platform account, if it is connected.
    pub async fn route(&self, platform: Platform, account_id: &str) -> Result<Option<Route>> {
        self.get(&keys::route(platform, account_id)).await
    }

    /// Disconnects a channel: in one transaction the wrapped credentials are removed from the item (the
    /// token is destroyed: nothing can decrypt it any more), the channel is marked disconnected with its
    /// deletion deadline, the route is deleted so webhooks for the account ingest nothing, and `audit`
    /// is recorded (so a disconnect is never left unaudited by a failure between two writes).
    pub async fn disconnect_channel(
        &self,
        tenant_id: &TenantId,
        channel_id: &ChannelId,
        at: OffsetDateTime,
        delete_data_by: OffsetDateTime,
        audit: Option<&AuditEvent>,
    ) -> Result<Channel> {
        let channel_key = keys::channel(tenant_id, channel_id);
        let channel: Channel = self
            .get_stored(&channel_key)
            .await?
            .ok_or_else(|| channel_not_found(tenant_id, channel_id))?;
        if channel.status == ChannelStatus::Disconnected {
            return Err(StoreError::Conflict(format!(
                "channel {channel_id} is already disconnected"
            )));
        }
        let disconnected = string(ChannelStatus::Disconnected.as_str());
        let mut update = Expr::new();
        update
            .set("status", disconnected.clone())
            .set("disconnected_at", timestamp_value(at))
            .set("retain_until", timestamp_value(delete_data_by))
            .set(keys::TTL, epoch_seconds(delete_data_by))
            .remove("credentials")
            .require(|e| e.exists(keys::PK).and(e.ne("status", disconnected)));
        let mut delete_route = Expr::new();
        delete_route.require(|e| {
            e.not_exists(keys::PK)
                .or(e.eq("channel_id", string(channel_id)))
        });
        let mut items = vec![
            self.update_in_transaction(&channel_key, update),
            self.delete_in_transaction(
                &keys::route(channel.platform, &channel.account_id),
                delete_route,
            ),
        ];
        if let Some(event) = audit {
            items.push(self.create_in_transaction(event)?);
        }
        self.transact(items, |index| match index {
            0 => format!("channel {channel_id} is already disconnected"),
            1 => format!("the route of channel {channel_id} belongs to another channel"),
            _ => format!("the audit event of disconnecting channel {channel_id} exists already"),
        })
        .await?;
        // As stored: a deadline already past (a late disconnect) must not hide the result.
        self.get_stored(&channel_key)
            .await?
            .ok_or_else(|| channel_not_found(tenant_id, channel_id))
    }

    /// Flags a connected channel whose token the platform rejected, with the platform's reason. Returns
    /// false if it was not connected.
    pub async fn mark_channel_needs_reauth(
        &self,
        tenant_id: &TenantId,
        channel_id: &ChannelId,
        reason: ReauthReason,
    ) -> Result<bool> {
        let mut expr = Expr::new();
        expr.set("status", string(ChannelStatus::NeedsReauth.as_str()))
            .set("reauth_reason", string(reason.as_str()))
            .require(|e| e.eq("status", string(ChannelStatus::Connected.as_str())));
        condition_held(
            self.update(&keys::channel(tenant_id, channel_id), expr)
                .send()
                .await
                .map_err(dynamo_error),
        )
    }
}

/// A token the health check renewed, sealed for its channel.
#[derive(Debug, Clone)]
pub struct RefreshedToken {
    pub credentials: WrappedCredentials,
    pub issued_at: OffsetDateTime,
    pub expires_at: Option<OffsetDateTime>,
}

fn channel_not_found(tenant_id: &TenantId, channel_id: &ChannelId) -> StoreError {
    StoreError::NotFound(format!("channel {channel_id} of tenant {tenant_id}"))
}
