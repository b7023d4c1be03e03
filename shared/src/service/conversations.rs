//! Who answers a conversation: the bot or a person.

/// The handoff reason of a conversation a person took over from the console.
pub const CONSOLE_HANDOFF_REASON: &str = "console_handoff";

use crate::ids::{ChannelId, ConversationId};
use crate::model::{ConversationMode, Tenant};
use crate::store::{Store, StoreError};

use super::audit;

/// Hands a conversation back to the bot (a person had it); audited.
pub async fn release(
    store: &Store,
    actor: &str,
    tenant: &Tenant,
    channel_id: &ChannelId,
    conversation_id: &ConversationId,
) -> Result<(), StoreError> {
    store
        .set_conversation_mode(
            &tenant.tenant_id,
            channel_id,
            conversation_id,
            ConversationMode::Bot,
            None,
        )
        .await?;
    audit(
        store,
        actor,
        tenant,
        "conversation.release",
        conversation_id.as_str(),
    )
    .await
}

/// A person takes a conversation over (the bot stays silent until it is released); audited.
pub async fn hand_off(
    store: &Store,
    actor: &str,
    tenant: &Tenant,
    channel_id: &ChannelId,
    conversation_id: &ConversationId,
) -> Result<(), StoreError> {
    store
        .set_conversation_mode(
            &tenant.tenant_id,
            channel_id,
            conversation_id,
            ConversationMode::Human,
            Some(CONSOLE_HANDOFF_REASON),
        )
        .await?;
    audit(
        store,
        actor,
        tenant,
        "conversation.handoff",
        conversation_id.as_str(),
    )
    .await
}
