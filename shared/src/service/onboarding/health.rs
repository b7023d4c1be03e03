//! The daily token-health check: every connected channel's token is asked about at the platform before
//! a customer goes unanswered for it.
//!
//! - Meta tokens (Pages, Instagram through a Page, WhatsApp): `debug_token` (valid, our app, not
//!   expired), then the subscription that carries the channel's webhooks, restored when Meta dropped it.
//! - Instagram-Login tokens: the account read with the token; refreshed when at least a day old and
//!   expiring within 15 days (so quiet channels never expire); the subscription, as above.
//! - LINE: the bot read with its token (a minted one for channels that store none).
//!
//! A refusal that only the business can fix becomes `needs_reauth` with its reason, by code and
//! subcode; throttling and outages never do (they are tried again the next day).

use serde::Serialize;

use super::{ConnectError, Onboarding};
use crate::model::{AuditEvent, Channel, ChannelStatus, Platform, ReauthReason, Tenant};
use crate::platform::accounts::graph::PAGE_FIELDS;
use crate::platform::accounts::{AccountApiError, covers, instagram, reauth_reason};
use crate::secret::PlatformToken;
use crate::store::RefreshedToken;
use crate::vault::{SealContext, Secrets};

/// What the check found for one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome", content = "reason")]
pub enum Health {
    Healthy,
    /// An Instagram-Login token was renewed for another 60 days.
    Refreshed,
    /// Meta had dropped the webhook subscription; it is back.
    Resubscribed,
    /// Flagged: the business must connect it again.
    NeedsReauth(ReauthReason),
    /// The platform did not answer or refused for a reason that is not the token's: tried again tomorrow.
    Unreachable,
    /// Not connected (disconnected, or waiting for the business to reconnect).
    NotChecked,
}

/// Counts of one tenant's check.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HealthSummary {
    pub healthy: u64,
    pub refreshed: u64,
    pub resubscribed: u64,
    pub needs_reauth: u64,
    pub unreachable: u64,
}

impl Onboarding {
    /// Checks every channel of `tenant` and records what changed (audit events with the reason).
    pub async fn check_token_health(&self, tenant: &Tenant) -> Result<HealthSummary, ConnectError> {
        let mut summary = HealthSummary::default();
        for channel in self.store.channels_of_tenant(&tenant.tenant_id).await? {
            let health = self.check_channel(tenant, &channel).await?;
            tracing::info!(
                tenant_id = %tenant.tenant_id,
                channel_id = %channel.channel_id,
                platform = %channel.platform,
                health = ?health,
                "token health"
            );
            match health {
                Health::Healthy => summary.healthy += 1,
                Health::Refreshed => summary.refreshed += 1,
                Health::Resubscribed => summary.resubscribed += 1,
                Health::NeedsReauth(_) => summary.needs_reauth += 1,
                Health::Unreachable => summary.unreachable += 1,
                Health::NotChecked => {}
            }
        }
        Ok(summary)
    }

    /// Checks one channel, and acts on what it finds.
    pub async fn check_channel(
        &self,
        tenant: &Tenant,
        channel: &Channel,
    ) -> Result<Health, ConnectError> {
        let (ChannelStatus::Connected, Some(wrapped)) = (channel.status, &channel.credentials)
        else {
            return Ok(Health::NotChecked);
        };
        let now = self.store.now();
        let context = SealContext::new(&channel.tenant_id, &channel.channel_id);
        let vault = self.channels.vault();
        let stored = vault.open_token(&context, wrapped).await?;
        let checked = match (channel.platform, stored) {
            (Platform::Line, token) => self.line_health(channel, &context, wrapped, token).await,
            (_, None) => Ok(Health::NeedsReauth(ReauthReason::TokenInvalid)),
            (Platform::Instagram, Some(token)) if channel.instagram_login => {
                self.instagram_login_health(channel, &context, &token).await
            }
            (_, Some(token)) => self.meta_health(channel, &token).await,
        };
        let health = match checked {
            Ok(health) => health,
            Err(err) => match err.reauth_reason() {
                Some(reason) => Health::NeedsReauth(reason),
                None => Health::Unreachable,
            },
        };
        let action = match health {
            Health::NeedsReauth(reason) => {
                if !self
                    .store
                    .mark_channel_needs_reauth(&tenant.tenant_id, &channel.channel_id, reason)
                    .await?
                {
                    // Disconnected meanwhile: nothing to flag.
                    return Ok(Health::NotChecked);
                }
                Some(format!("channel.needs_reauth:{reason}"))
            }
            Health::Refreshed => Some("channel.token_refreshed".to_owned()),
            Health::Resubscribed => Some("channel.resubscribed".to_owned()),
            Health::Healthy | Health::Unreachable | Health::NotChecked => None,
        };
        if !matches!(health, Health::Unreachable | Health::NeedsReauth(_)) {
            self.store
                .record_token_health(&tenant.tenant_id, &channel.channel_id, now, None)
                .await?;
        }
        if let Some(action) = action {
            self.store
                .record_audit(&AuditEvent::new(
                    Some(&tenant.tenant_id),
                    self.actor,
                    &action,
                    Some(channel.channel_id.as_str()),
                    now,
                    tenant.retention.audit_days,
                ))
                .await?;
        }
        Ok(health)
    }

    async fn meta_health(
        &self,
        channel: &Channel,
        token: &PlatformToken,
    ) -> Result<Health, AccountApiError> {
        let Ok(graph) = &self.graph else {
            return Ok(Health::Unreachable);
        };
        let info = graph.debug_token(token).await?;
        if !info.is_valid {
            let (code, subcode) = info.error.unwrap_or((Some(190), None));
            return Ok(Health::NeedsReauth(
                reauth_reason(400, code, subcode).unwrap_or(ReauthReason::TokenInvalid),
            ));
        }
        if info.app_id.as_deref() != Some(graph.app_id()) {
            return Ok(Health::NeedsReauth(ReauthReason::WrongApp));
        }
        if info.expires_at.is_some_and(|at| at <= self.store.now()) {
            return Ok(Health::NeedsReauth(ReauthReason::TokenExpired));
        }
        let subscribed = channel.subscribed_account();
        let fields: &[&str] = if channel.platform == Platform::Whatsapp {
            &[]
        } else {
            PAGE_FIELDS
        };
        if covers(
            graph.subscription(subscribed, token).await?.as_deref(),
            fields,
        ) {
            return Ok(Health::Healthy);
        }
        graph.subscribe(subscribed, token, fields).await?;
        Ok(Health::Resubscribed)
    }

    async fn instagram_login_health(
        &self,
        channel: &Channel,
        context: &SealContext,
        token: &PlatformToken,
    ) -> Result<Health, AccountApiError> {
        let Ok(ig) = &self.instagram else {
            return Ok(Health::Unreachable);
        };
        let now = self.store.now();
        if channel.token_expires_at.is_some_and(|at| at <= now) {
            return Ok(Health::NeedsReauth(ReauthReason::TokenExpired));
        }
        ig.account(token).await?;
        let mut health = Health::Healthy;
        let mut token = token.clone();
        if super::instagram_token_due(channel, now) {
            let renewed = ig.refresh(&token).await?;
            let credentials = self
                .channels
                .vault()
                .seal(context, &Secrets::token(&renewed.token))
                .await
                .map_err(|err| AccountApiError::Unavailable {
                    call: "sealing the refreshed token",
                    reason: err.to_string(),
                })?;
            let expires_at = renewed.expires_in.map(|secs| {
                now.saturating_add(time::Duration::seconds(
                    i64::try_from(secs).unwrap_or(i64::MAX),
                ))
            });
            let stored = self
                .store
                .record_token_health(
                    &channel.tenant_id,
                    &channel.channel_id,
                    now,
                    Some(RefreshedToken {
                        credentials,
                        issued_at: now,
                        expires_at,
                    }),
                )
                .await
                .map_err(|err| AccountApiError::Unavailable {
                    call: "storing the refreshed token",
                    reason: err.to_string(),
                })?;
            if !stored {
                return Ok(Health::NotChecked);
            }
            self.channels.vault().forget_channel(context);
            token = renewed.token;
            health = Health::Refreshed;
        }
        if !covers(ig.subscription(&token).await?.as_deref(), instagram::FIELDS) {
            ig.subscribe(&token).await?;
            if health == Health::Healthy {
                health = Health::Resubscribed;
            }
        }
        Ok(health)
    }

    async fn line_health(
        &self,
        channel: &Channel,
        context: &SealContext,
        wrapped: &crate::vault::WrappedCredentials,
        stored: Option<PlatformToken>,
    ) -> Result<Health, AccountApiError> {
        let token = match (stored, &channel.line_channel_id) {
            (Some(token), _) => token,
            (None, Some(line_channel_id)) => {
                let Ok(Some(secret)) = self
                    .channels
                    .vault()
                    .open_channel_secret(context, wrapped)
                    .await
                else {
                    return Ok(Health::Unreachable);
                };
                match self.line.mint_token(line_channel_id, &secret).await {
                    Ok(minted) => minted.token,
                    Err(AccountApiError::Refused { status: 400, .. }) => {
                        return Ok(Health::NeedsReauth(ReauthReason::TokenInvalid));
                    }
                    Err(other) => return Err(other),
                }
            }
            (None, None) => return Ok(Health::NeedsReauth(ReauthReason::TokenInvalid)),
        };
        self.line.bot_info(&token).await?;
        Ok(Health::Healthy)
    }
}
