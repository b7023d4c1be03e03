//! Who answers a conversation: the bot or a person.

use crate::ids::{ChannelId, ConversationId};
use crate::model::{ConversationMode, Tenant};
use crate::store::{Store, StoreError};

use super::audit;

/// The handoff reason of a conversation a person took over from the console.
pub const CONSOLE_HANDOFF_REASON: &str = "console_handoff";

/// Hands a conversation back to the bot (a person had it); audited.
pub async fn release(
    store: &Store,
    actor: &str,
    tenant: &Tenant,
    channel_id: &ChannelId,
    conversation_id: &ConversationId,
) -> Result<(), StoreError> {
    let to_bot = (ConversationMode::Bot, None, "conversation.release");
    set_mode(store, actor, tenant, channel_id, conversation_id, to_bot).await
}

/// A person takes a conversation over (the bot stays silent until it is released); audited.
pub async fn hand_off(
    store: &Store,
    actor: &str,
    tenant: &Tenant,
    channel_id: &ChannelId,
    conversation_id: &ConversationId,
) -> Result<(), StoreError> {
    let to_human = (
        ConversationMode::Human,
        Some(CONSOLE_HANDOFF_REASON),
        "conversation.handoff",
    );
    set_mode(store, actor, tenant, channel_id, conversation_id, to_human).await
}

/// Sets who answers (with the handoff reason) and audits it as `action`.
async fn set_mode(
    store: &Store,
    actor: &str,
    tenant: &Tenant,
    channel_id: &ChannelId,
    conversation_id: &ConversationId,
    (mode, reason, action): (ConversationMode, Option<&str>, &str),
) -> Result<(), StoreError> {
    store
        .set_conversation_mode(&tenant.tenant_id, channel_id, conversation_id, mode, reason)
        .await?;
    audit(store, actor, tenant, action, conversation_id.as_str()).await
}
