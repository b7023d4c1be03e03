//! `inboxctl knowledge …`, `drafts …` and `conversation …`: the inbox a tenant's staff work.

use super::*;
use inbox_shared::llm::offline::KnowledgeIndex;
use inbox_shared::service::knowledge;
use inbox_shared::service::reply::{OfflineReply, offline_reply};

#[derive(Subcommand)]
pub enum KnowledgeCommand {
    Add {
        #[arg(long)]
        tenant: TenantId,
        #[arg(long)]
        question: String,
        #[arg(long)]
        answer: String,
        /// Another way customers ask the same question ("When do you open?"); repeat for more. The
        /// offline answerer matches a question against each as against `--question`.
        #[arg(long = "alternate")]
        alternates: Vec<String>,
    },
    /// Add or update entries from a CSV file with a `question,answer` header: a row whose question is
    /// an entry's already replaces its answer; rows that cannot be taken are reported with their number.
    Import {
        #[arg(long)]
        tenant: TenantId,
        #[arg(long)]
        csv_file: PathBuf,
    },
    List {
        #[arg(long)]
        tenant: TenantId,
    },
    /// What the AI without an LLM key answers to a question: an entry, the tenant's acknowledgement,
    /// nothing, or a handoff with its reason (the decision ai-reply makes).
    Ask {
        #[arg(long)]
        tenant: TenantId,
        #[arg(long)]
        question: String,
    },
}

#[derive(Subcommand)]
pub enum DraftsCommand {
    /// Pending drafts of a tenant, oldest first, with their text.
    List {
        #[arg(long)]
        tenant: TenantId,
    },
    /// Send a draft to the customer (once: approving again after a failed send retries the send).
    Approve {
        #[arg(long)]
        tenant: TenantId,
        #[arg(long)]
        conversation: ConversationId,
        #[arg(long)]
        draft: String,
    },
    /// Discard a draft; nothing is sent.
    Reject {
        #[arg(long)]
        tenant: TenantId,
        #[arg(long)]
        conversation: ConversationId,
        #[arg(long)]
        draft: String,
    },
}

#[derive(Subcommand)]
pub enum ConversationCommand {
    /// Conversations of a tenant, with their mode and why a human has them.
    List {
        #[arg(long)]
        tenant: TenantId,
        /// Only those a human has.
        #[arg(long)]
        human: bool,
    },
    /// Hand a conversation back to the bot.
    Release {
        #[arg(long)]
        tenant: TenantId,
        #[arg(long)]
        channel: ChannelId,
        #[arg(long)]
        conversation: ConversationId,
    },
}

pub async fn knowledge(ctx: &Operator, command: KnowledgeCommand) -> Result<Output> {
    match command {
        KnowledgeCommand::Add {
            tenant,
            question,
            answer,
            alternates,
        } => {
            let t = ctx.store.require_tenant(&tenant).await?;
            let text = knowledge::EntryText::new(&question, &answer, &alternates)
                .map_err(|why| anyhow::anyhow!("--{why}"))?;
            let entry = knowledge::add(&ctx.store, ACTOR, &t, text).await?;
            Ok(Output::new(
                json!({ "entry_id": entry.entry_id, "entry": entry }),
                format!("added knowledge entry {}", entry.entry_id),
            ))
        }
        KnowledgeCommand::Import { tenant, csv_file } => {
            let t = ctx.store.require_tenant(&tenant).await?;
            let text = std::fs::read_to_string(&csv_file)
                .with_context(|| format!("reading the CSV file {}", csv_file.display()))?;
            let rows = knowledge::parse_csv(&text)
                .map_err(|why| anyhow::anyhow!("the CSV file {}: {why}", csv_file.display()))?;
            let report = knowledge::import(&ctx.store, ACTOR, &t, &rows).await?;
            let mut lines = vec![format!(
                "added {}, updated {}, rejected {}",
                report.added,
                report.updated,
                report.rejected.len()
            )];
            lines.extend(
                report
                    .rejected
                    .iter()
                    .map(|r| format!("  row {}: {}", r.row, terminal_safe(&r.reason))),
            );
            Ok(Output::new(
                serde_json::to_value(&report)?,
                lines.join("\n"),
            ))
        }
        KnowledgeCommand::Ask { tenant, question } => {
            let t = ctx.store.require_tenant(&tenant).await?;
            let index = KnowledgeIndex::new(ctx.store.knowledge_of_tenant(&tenant).await?);
            Ok(match offline_reply(&t, &index, &question) {
                OfflineReply::Answer(ranked) => Output::new(
                    json!({
                        "answer": ranked.entry.answer,
                        "entry_id": ranked.entry.entry_id,
                        "score": ranked.score,
                        "coverage": ranked.coverage,
                    }),
                    format!(
                        "answer from {} (score {:.2}, coverage {:.2}):\n{}",
                        ranked.entry.entry_id, ranked.score, ranked.coverage, ranked.entry.answer
                    ),
                ),
                OfflineReply::Acknowledge { social, text } => Output::new(
                    json!({ "acknowledgement": text, "social": social.as_str() }),
                    format!(
                        "{}: acknowledged with the tenant's reply:\n{text}",
                        social.as_str()
                    ),
                ),
                OfflineReply::Silent(social) => Output::new(
                    json!({ "silent": true, "social": social.as_str() }),
                    format!(
                        "{}: nothing is sent and the conversation stays with the bot",
                        social.as_str()
                    ),
                ),
                OfflineReply::HandOff(reason) => Output::new(
                    json!({ "handoff": true, "reason": reason.as_str() }),
                    format!("handed to a person ({})", reason.as_str()),
                ),
            })
        }
        KnowledgeCommand::List { tenant } => {
            let t = ctx.store.require_tenant(&tenant).await?;
            let entries = ctx.store.knowledge_of_tenant(&t.tenant_id).await?;
            let text: Vec<String> = entries
                .iter()
                .map(|e| format!("{}\n  Q: {}\n  A: {}", e.entry_id, e.question, e.answer))
                .collect();
            Ok(Output::listing(
                json!({ "entries": entries }),
                text,
                "no knowledge entries",
            ))
        }
    }
}

pub async fn drafts(ctx: &Operator, command: DraftsCommand) -> Result<Output> {
    match command {
        DraftsCommand::List { tenant } => {
            let t = ctx.store.require_tenant(&tenant).await?;
            let drafts = ctx.store.pending_drafts(&t.tenant_id).await?;
            let listed: Vec<Value> = drafts
                .iter()
                .map(|d| {
                    json!({
                        "draft_id": d.draft_id,
                        "conversation_id": d.conversation_id,
                        "channel_id": d.channel_id,
                        "in_reply_to": d.in_reply_to,
                        "created_at": d.created_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
                        "text": d.text.expose(),
                    })
                })
                .collect();
            let text: Vec<String> = drafts
                .iter()
                .map(|d| {
                    format!(
                        "{} (conversation {}, channel {})\n  {}",
                        d.draft_id,
                        d.conversation_id,
                        d.channel_id,
                        d.text.expose()
                    )
                })
                .collect();
            Ok(Output::listing(
                json!({ "drafts": listed }),
                text,
                "no pending drafts",
            ))
        }
        DraftsCommand::Approve {
            tenant,
            conversation,
            draft,
        } => {
            let t = ctx.store.require_tenant(&tenant).await?;
            let delivered = ctx
                .outbox()?
                .approve_draft(ACTOR, &t, &conversation, &draft)
                .await?;
            let (message_id, text) = match delivered {
                Delivered::Sent { message_id } => {
                    let text = format!("sent draft {draft} as message {message_id}");
                    (Some(message_id), text)
                }
                Delivered::AlreadySent { message_id } => {
                    (message_id, format!("draft {draft} was already sent"))
                }
            };
            Ok(Output::new(
                json!({ "draft_id": draft, "status": "sent", "message_id": message_id }),
                text,
            ))
        }
        DraftsCommand::Reject {
            tenant,
            conversation,
            draft,
        } => {
            let t = ctx.store.require_tenant(&tenant).await?;
            ctx.outbox()?
                .reject_draft(ACTOR, &t, &conversation, &draft)
                .await?;
            Ok(Output::new(
                json!({ "draft_id": draft, "status": "rejected" }),
                format!("rejected draft {draft}"),
            ))
        }
    }
}

pub async fn conversation(ctx: &Operator, command: ConversationCommand) -> Result<Output> {
    match command {
        ConversationCommand::List { tenant, human } => {
            let t = ctx.store.require_tenant(&tenant).await?;
            let mut conversations = Vec::new();
            for channel in ctx.store.channels_of_tenant(&t.tenant_id).await? {
                conversations.extend(
                    ctx.store
                        .conversations_of_channel(&t.tenant_id, &channel.channel_id)
                        .await?
                        .into_iter()
                        .filter(|c| !human || c.mode == ConversationMode::Human),
                );
            }
            let text: Vec<String> = conversations
                .iter()
                .map(|c| {
                    format!(
                        "{} {} channel {} user {}: {}{}",
                        c.conversation_id,
                        c.platform,
                        c.channel_id,
                        c.user_id.expose(),
                        c.mode,
                        c.handoff_reason
                            .as_deref()
                            .map(|r| format!(" ({r})"))
                            .unwrap_or_default()
                    )
                })
                .collect();
            Ok(Output::listing(
                json!({ "conversations": conversations }),
                text,
                "no conversations",
            ))
        }
        ConversationCommand::Release {
            tenant,
            channel,
            conversation,
        } => {
            let t = ctx.store.require_tenant(&tenant).await?;
            conversations::release(&ctx.store, ACTOR, &t, &channel, &conversation).await?;
            Ok(Output::new(
                json!({ "conversation_id": conversation, "mode": "bot" }),
                format!("conversation {conversation} is back with the bot"),
            ))
        }
    }
}
