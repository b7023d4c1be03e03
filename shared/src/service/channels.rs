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
use crate::model::{AuditEvent, Channel, ChannelStatus, Platform, Tenant, TenantStatus};
use crate::secret::{ChannelSecret, PlatformToken};
use crate::store::{Store, StoreError};
use crate::vault::{SealContext, TokenVault};

use super::{Actor, Result, ServiceError, audit};

/// What a business hands over to connect an account.
#[derive(Debug)]
pub struct NewChannel {
    pub platform: Platform,
    /// Page id, Instagram account id, WhatsApp `phone_number_id`, or LINE bot user id (`destination`).
    pub account_id: String,
    pub token: PlatformToken,
    /// LINE only: the channel secret that signs its webhooks.
    pub secret: Option<ChannelSecret>,
    /// The Meta user (app-scoped id) who connected it, for Meta's deauthorize and deletion callbacks.
    pub connected_by: Option<String>,
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

    pub async fn connect(&self, tenant: &Tenant, new: NewChannel) -> Result<Channel> {
        if tenant.status != TenantStatus::Active {
            return Err(ServiceError::Invalid(format!(
                "tenant {} is {}: it cannot connect channels",
                tenant.tenant_id, tenant.status
            )));
        }
        if new.account_id.trim().is_empty() || new.account_id.contains(char::is_whitespace) {
            return Err(ServiceError::Invalid(
                "the account id must be the platform's account id, without spaces".into(),
            ));
        }
        match (new.platform, &new.secret) {
            (Platform::Line, None) => {
                return Err(ServiceError::Invalid(
                    "a LINE channel needs its channel secret: it verifies the webhooks".into(),
                ));
            }
            (Platform::Line, Some(_)) | (_, None) => {}
            (platform, Some(_)) => {
                return Err(ServiceError::Invalid(format!(
                    "a channel secret is for LINE channels only; {platform} webhooks are verified with the Meta app secret"
                )));
            }
        }
        if !crate::platform::account_id_is_valid(new.platform, &new.account_id) {
            return Err(ServiceError::Invalid(format!(
                "not a {} account id: expected {}",
                new.platform,
                match new.platform {
                    Platform::Line => "U and 32 lowercase hex digits (the webhook's destination)",
                    _ => "digits only",
                }
            )));
        }
        let channel_id = ChannelId::generate();
        let credentials = self
            .vault
            .seal(
                &SealContext::new(&tenant.tenant_id, &channel_id),
                &new.token,
                new.secret.as_ref(),
            )
            .await?;
        let channel = Channel::connected(
            &tenant.tenant_id,
            channel_id,
            new.platform,
            new.account_id,
            credentials,
            new.connected_by,
            self.store.now(),
        );
        self.store.connect_channel(&channel).await?;
        audit(
            &self.store,
            self.actor,
            tenant,
            "channel.connect",
            channel.channel_id.as_str(),
        )
        .await?;
        Ok(channel)
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
    actor: Actor,
    tenant: &Tenant,
    channel_id: &ChannelId,
    reason: DisconnectReason,
) -> Result<Option<Channel>, StoreError> {
    let now = store.now();
    let deadline = tenant.retention.disconnected_channel_deadline(now);
    let event = AuditEvent::new(
        Some(&tenant.tenant_id),
        actor,
        reason.audit_action(),
        Some(channel_id.as_str()),
        now,
        tenant.retention.audit_days,
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
