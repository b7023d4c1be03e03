//! Who answers a conversation: the bot or a person.

use crate::ids::{ChannelId, ConversationId};
use crate::model::{ConversationMode, Tenant};
use crate::store::{Store, StoreError};

use super::{Actor, audit};

/// Hands a conversation back to the bot (a person had it); audited.
pub async fn release(
    store: &Store,
    actor: Actor,
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
