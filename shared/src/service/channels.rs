//! Connecting and disconnecting a channel.
//!
//! Connect seals the platform token (and a LINE channel secret) with a KMS data key of its own, then
//! stores the channel and claims its platform account's route in one transaction (an account already
//! connected elsewhere is a conflict and nothing is stored), then audits.
//!
//! Disconnect destroys the wrapped token and deletes the route in one transaction, so nothing can
//! decrypt the token and no webhook for the account is ingested; the channel keeps a deletion deadline
//! from its tenant's policy ([`crate::model::RetentionPolicy::disconnected_channel_deadline`]) on every path that
//! disconnects: an operator, Meta's deauthorize callback, an erasure, a termination.

use crate::ids::ChannelId;
use crate::keys;
use time::OffsetDateTime;

use crate::model::{AuditEvent, Channel, ChannelStatus, Platform, Tenant, TenantStatus};
use crate::secret::{ChannelSecret, PlatformToken, RegistrationPin};
use crate::store::{Store, StoreError};
use crate::vault::{SealContext, Secrets, TokenVault};

use super::{Actor, Result, ServiceError, audit};

/// What a business hands over to connect an account.
#[derive(Debug)]
pub struct NewChannel {
    pub platform: Platform,
    /// Page id, Instagram account id, WhatsApp `phone_number_id`, or LINE bot user id (`destination`).
    pub account_id: String,
    /// `None` only for a LINE channel that mints its tokens ([`NewChannel::line_channel_id`]).
    pub token: Option<PlatformToken>,
    /// LINE only: the channel secret that signs its webhooks.
    pub secret: Option<ChannelSecret>,
    /// The Meta user (app-scoped id) who connected it, for Meta's deauthorize and deletion callbacks.
    pub connected_by: Option<String>,
    /// The account's name as the platform shows it.
    pub name: Option<String>,
    pub instagram_login: bool,
    pub parent_account_id: Option<String>,
    pub line_channel_id: Option<String>,
    pub token_expires_at: Option<OffsetDateTime>,
    /// WhatsApp: the PIN the number was registered with, kept sealed with the token.
    pub registration_pin: Option<RegistrationPin>,
}

impl NewChannel {
    /// An account connected with a token that does not expire, nothing else known about it.
    pub fn with_token(
        platform: Platform,
        account_id: impl Into<String>,
        token: PlatformToken,
    ) -> Self {
        Self {
            platform,
            account_id: account_id.into(),
            token: Some(token),
            secret: None,
            connected_by: None,
            name: None,
            instagram_login: false,
            parent_account_id: None,
            line_channel_id: None,
            token_expires_at: None,
            registration_pin: None,
        }
    }

    fn validate(&self) -> Result<()> {
        let invalid = |why: String| Err(ServiceError::Invalid(why));
        if self.account_id.trim().is_empty() || self.account_id.contains(char::is_whitespace) {
            return invalid(
                "the account id must be the platform's account id, without spaces".into(),
            );
        }
        match (self.platform, &self.secret) {
            (Platform::Line, None) => {
                return invalid(
                    "a LINE channel needs its channel secret: it verifies the webhooks".into(),
                );
            }
            (Platform::Line, Some(_)) | (_, None) => {}
            (platform, Some(_)) => {
                return invalid(format!(
                    "a channel secret is for LINE channels only; {platform} webhooks are verified with the Meta app secret"
                ));
            }
        }
        if self.token.is_none() && self.line_channel_id.is_none() {
            return invalid("an access token is required".into());
        }
        if self.line_channel_id.is_some() && self.platform != Platform::Line {
            return invalid("a LINE channel id is for LINE channels only".into());
        }
        if self.instagram_login && self.platform != Platform::Instagram {
            return invalid("Instagram Login connects Instagram accounts only".into());
        }
        if !crate::platform::account_id_is_valid(self.platform, &self.account_id) {
            return invalid(format!(
                "not a {} account id: expected {}",
                self.platform,
                match self.platform {
                    Platform::Line => "U and 32 lowercase hex digits (the webhook's destination)",
                    _ => "digits only",
                }
            ));
        }
        Ok(())
    }
}

/// A channel as connected, and whether it was this tenant's already (a reconnect keeps its id and data).
#[derive(Debug, Clone)]
pub struct Connected {
    pub channel: Channel,
    pub reconnected: bool,
}

/// Connects channels: the only place a channel comes into being.
pub struct ChannelService {
    store: Store,
    vault: TokenVault,
    actor: Actor,
}

impl ChannelService {
    pub fn new(store: Store, vault: TokenVault, actor: Actor) -> Self {
        Self {
            store,
            vault,
            actor,
        }
    }

    /// The vault the channels' credentials are sealed with.
    pub fn vault(&self) -> &TokenVault {
        &self.vault
    }

    /// Whether `tenant` may connect `account` of `platform`: `Ok(Some(channel))` when it is this tenant's
    /// live channel already (a reconnect), `Ok(None)` when nobody has it, a conflict when another tenant
    /// has it. Asked before any platform call that would change the account (a subscription).
    pub async fn claimable(
        &self,
        tenant: &Tenant,
        platform: Platform,
        account_id: &str,
    ) -> Result<Option<Channel>> {
        let Some(route) = self.store.route(platform, account_id).await? else {
            return Ok(None);
        };
        if route.tenant_id != tenant.tenant_id {
            // Never which tenant: that is another business's secret.
            return Err(ServiceError::Conflict(format!(
                "this {platform} account is connected to another business's inbox: it must be disconnected there first"
            )));
        }
        Ok(self
            .store
            .get_channel(&tenant.tenant_id, &route.channel_id)
            .await?
            .filter(|c| c.status != ChannelStatus::Disconnected))
    }

    /// Connects an account, or reconnects it when it is this tenant's channel already (connected or in
    /// `needs_reauth`): same channel id, so its conversations stay, new credentials, connected again.
    pub async fn connect(&self, tenant: &Tenant, new: NewChannel) -> Result<Connected> {
        if tenant.status != TenantStatus::Active {
            return Err(ServiceError::Invalid(format!(
                "tenant {} is {}: it cannot connect channels",
                tenant.tenant_id, tenant.status
            )));
        }
        new.validate()?;
        let existing = self
            .claimable(tenant, new.platform, &new.account_id)
            .await?;
        let channel_id = existing
            .as_ref()
            .map(|c| c.channel_id.clone())
            .unwrap_or_else(ChannelId::generate);
        let context = SealContext::new(&tenant.tenant_id, &channel_id);
        let credentials = self
            .vault
            .seal(
                &context,
                &Secrets {
                    token: new.token.as_ref(),
                    channel_secret: new.secret.as_ref(),
                    registration_pin: new.registration_pin.as_ref(),
                },
            )
            .await?;
        let now = self.store.now();
        let mut channel = Channel::connected(
            &tenant.tenant_id,
            channel_id,
            new.platform,
            new.account_id,
            credentials,
            new.connected_by,
            now,
        );
        channel.name = new.name;
        channel.instagram_login = new.instagram_login;
        channel.parent_account_id = new.parent_account_id;
        channel.line_channel_id = new.line_channel_id;
        channel.token_expires_at = new.token_expires_at;
        let reconnected = match existing {
            Some(previous) => {
                channel.connected_at = previous.connected_at;
                let event = AuditEvent::new(
                    Some(&tenant.tenant_id),
                    self.actor,
                    "channel.reconnect",
                    Some(channel.channel_id.as_str()),
                    now,
                    tenant.retention.audit_days,
                );
                self.store.reconnect_channel(&channel, &event).await?;
                // A warm container must not keep opening the replaced credentials.
                self.vault.forget_channel(&context);
                true
            }
            None => {
                self.store.connect_channel(&channel).await?;
                audit(
                    &self.store,
                    self.actor,
                    tenant,
                    "channel.connect",
                    channel.channel_id.as_str(),
                )
                .await?;
                false
            }
        };
        Ok(Connected {
            channel,
            reconnected,
        })
    }
}

/// Why a channel is disconnected, as the audit trail says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The business (or an operator for it) disconnected it.
    Requested,
    /// The Meta user who connected it removed the app.
    Deauthorized,
    /// Its data is being erased (a deletion request, or the deadline of an earlier disconnect).
    Erased,
    /// The tenant's contract ended.
    TenantTerminated,
}

impl DisconnectReason {
    fn audit_action(self) -> &'static str {
        match self {
            Self::Requested => "channel.disconnect",
            Self::Deauthorized => "channel.disconnect:deauthorized",
            Self::Erased => "channel.disconnect:erased",
            Self::TenantTerminated => "channel.disconnect:tenant_terminated",
        }
    }
}

/// Disconnects one channel of `tenant` now: its wrapped token destroyed, its route removed and the
/// disconnect audited in one transaction, its data due for deletion by the tenant's policy. `Ok(None)`
/// when it was disconnected already (concurrently, or by an earlier run): the token is gone either way.
/// Any other conflict (the account's route now belongs to another channel) is an error: the token was
/// not destroyed.
pub async fn disconnect(
    store: &Store,
    actor: &str,
    tenant: &Tenant,
    channel_id: &ChannelId,
    reason: DisconnectReason,
) -> Result<Option<Channel>, StoreError> {
    disconnect_with_counts(store, actor, tenant, channel_id, reason, &[]).await
}

/// [`disconnect`], its audit event carrying `counts` (what the platform said when it was told).
pub async fn disconnect_with_counts(
    store: &Store,
    actor: &str,
    tenant: &Tenant,
    channel_id: &ChannelId,
    reason: DisconnectReason,
    counts: &[(&str, u64)],
) -> Result<Option<Channel>, StoreError> {
    let now = store.now();
    let deadline = tenant.retention.disconnected_channel_deadline(now);
    let event = counts.iter().fold(
        AuditEvent::new(
            Some(&tenant.tenant_id),
            actor,
            reason.audit_action(),
            Some(channel_id.as_str()),
            now,
            tenant.retention.audit_days,
        ),
        |event, (what, count)| event.with_count(what, *count),
    );
    match store
        .disconnect_channel(&tenant.tenant_id, channel_id, now, deadline, Some(&event))
        .await
    {
        Ok(channel) => Ok(Some(channel)),
        Err(StoreError::Conflict(conflict)) => {
            let current: Option<Channel> = store
                .get_stored(&keys::channel(&tenant.tenant_id, channel_id))
                .await?;
            match current {
                Some(channel) if channel.status == ChannelStatus::Disconnected => Ok(None),
                _ => Err(StoreError::Conflict(conflict)),
            }
        }
        Err(other) => Err(other),
    }
}

/// The tenant a channel belongs to, for its policy, as stored (a terminated tenant past its expiry still
/// has its policy). A tenant item already deleted leaves its channels to the default policy.
pub async fn owner_of(store: &Store, channel: &Channel) -> Result<Tenant, StoreError> {
    Ok(
        match store.get_stored(&keys::tenant(&channel.tenant_id)).await? {
            Some(tenant) => tenant,
            None => Tenant::new(channel.tenant_id.clone(), String::new(), store.now()),
        },
    )
}

/// Disconnects every live channel in `channels` (those of one Meta user, of one tenant…), each with its
/// own tenant's policy. Returns how many were connected until now.
pub async fn disconnect_all(
    store: &Store,
    actor: Actor,
    channels: &[Channel],
    reason: DisconnectReason,
    known_owner: Option<&Tenant>,
) -> Result<u64, StoreError> {
    let mut disconnected = 0;
    // A caller that has the owner already (a termination, a tenant's sweep) saves its read.
    let mut owners: Vec<Tenant> = known_owner.into_iter().cloned().collect();
    for channel in channels
        .iter()
        .filter(|c| c.status != ChannelStatus::Disconnected)
    {
        let owner = match owners.iter().find(|t| t.tenant_id == channel.tenant_id) {
            Some(owner) => owner,
            None => {
                owners.push(owner_of(store, channel).await?);
                owners.last().expect("just pushed")
            }
        };
        if disconnect(store, actor, owner, &channel.channel_id, reason)
            .await?
            .is_some()
        {
            disconnected += 1;
        }
    }
    Ok(disconnected)
}
