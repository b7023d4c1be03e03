//! The commands. Each returns an [`Output`]: one JSON object (`--json`) or the same facts as text.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use inbox_shared::aws::AwsClients;
use inbox_shared::clock::ManualClock;
use inbox_shared::clock::{self, SharedClock};
use inbox_shared::config::Config;
use inbox_shared::ids::new_id;
use inbox_shared::jobs::SweepStage;
use inbox_shared::model::*;
use inbox_shared::platform::send::Sender;
use inbox_shared::provision::{self, ProvisionPlan};
use inbox_shared::secret::{ChannelSecret, PlatformToken};
use inbox_shared::service::channels::{self, ChannelService, DisconnectReason, NewChannel};
use inbox_shared::service::erasure::Eraser;
use inbox_shared::service::outbound::{Delivered, Outbox};
use inbox_shared::service::tenants;
use inbox_shared::store::Store;
use inbox_shared::sweep::{TenantSweeper, Unlimited};
use inbox_shared::vault::TokenVault;
use serde_json::{Value, json};

const ACTOR: &str = "inboxctl";

#[derive(Parser)]
#[command(
    name = "inboxctl",
    version,
    about = "Operate the inbox backend: tenants, channels, knowledge, drafts, conversations, end-user export and erasure, provisioning"
)]
pub struct Cli {
    /// Print one JSON object instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the table, queues and KMS key where missing (the shapes of infra/template.yaml).
    Provision,
    /// Tenants: the companies using the inbox.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Channels: connected Pages, Instagram accounts, WhatsApp numbers, LINE channels.
    #[command(subcommand)]
    Channel(ChannelCommand),
    /// Knowledge entries the AI answers from.
    #[command(subcommand)]
    Knowledge(KnowledgeCommand),
    /// AI drafts waiting for a person (tenant AI mode `draft`).
    #[command(subcommand)]
    Drafts(DraftsCommand),
    /// Conversations: who has them (the bot or a human), and handing them back to the bot.
    #[command(subcommand)]
    Conversation(ConversationCommand),
    /// Run one tenant's retention sweep now (every rule of its policy), optionally as of another time.
    Sweep {
        #[arg(long)]
        tenant: String,
        /// The instant the sweep enforces the policy at (RFC 3339); default now.
        #[arg(long, value_parser = rfc3339)]
        now: Option<time::OffsetDateTime>,
    },
    /// An end user's access request: print everything stored about one contact as one JSON document.
    Export(ContactArgs),
    /// An end user's deletion request: delete everything of one contact in one tenant and print the counts.
    Erase(ContactArgs),
}

#[derive(Args)]
struct ContactArgs {
    #[arg(long)]
    tenant: String,
    #[arg(long, value_parser = parse::<Platform>)]
    platform: Platform,
    /// The customer's platform id: PSID, IGSID, WhatsApp wa_id or LINE user id.
    #[arg(long)]
    contact: String,
}

#[derive(Subcommand)]
enum DraftsCommand {
    /// Pending drafts of a tenant, oldest first, with their text.
    List {
        #[arg(long)]
        tenant: String,
    },
    /// Send a draft to the customer (once: approving again after a failed send retries the send).
    Approve {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        conversation: String,
        #[arg(long)]
        draft: String,
    },
    /// Discard a draft; nothing is sent.
    Reject {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        conversation: String,
        #[arg(long)]
        draft: String,
    },
}

#[derive(Subcommand)]
enum ConversationCommand {
    /// Conversations of a tenant, with their mode and why a human has them.
    List {
        #[arg(long)]
        tenant: String,
        /// Only those a human has.
        #[arg(long)]
        human: bool,
    },
    /// Hand a conversation back to the bot.
    Release {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        channel: String,
        #[arg(long)]
        conversation: String,
    },
}

#[derive(Subcommand)]
enum TenantCommand {
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, value_parser = parse::<AiMode>)]
        ai_mode: Option<AiMode>,
        /// Days conversation content is kept (default 365).
        #[arg(long, value_parser = retention_days)]
        retention_days: Option<u32>,
    },
    Show {
        tenant_id: String,
    },
    List,
    Set(TenantSettings),
    /// End a tenant's contract: its channels are disconnected (tokens destroyed) now; the sweep deletes
    /// its account data after `terminated_account_days` (30) and its content after
    /// `terminated_content_days` (90).
    Terminate {
        tenant_id: String,
        /// When the contract ended (RFC 3339); default now.
        #[arg(long, value_parser = rfc3339)]
        at: Option<time::OffsetDateTime>,
    },
}

#[derive(Args)]
struct TenantSettings {
    tenant_id: String,
    #[arg(long, value_parser = parse::<AiMode>)]
    ai_mode: Option<AiMode>,
    #[arg(long, value_parser = retention_days)]
    retention_days: Option<u32>,
    /// Days after a channel's disconnection its data is deleted (default 30).
    #[arg(long, value_parser = retention_days)]
    disconnected_channel_days: Option<u32>,
    /// Days after termination the content is deleted (default 90).
    #[arg(long, value_parser = retention_days)]
    terminated_content_days: Option<u32>,
    /// Days after termination the account data is deleted (default 30).
    #[arg(long, value_parser = retention_days)]
    terminated_account_days: Option<u32>,
    /// Days audit events are kept (default 365).
    #[arg(long, value_parser = retention_days)]
    audit_days: Option<u32>,
    /// Instructions to the AI (tone, what to say and not to say).
    #[arg(long)]
    instructions: Option<String>,
    /// Providers to try before the offline one, comma-separated: anthropic,openai.
    #[arg(long, value_delimiter = ',', value_parser = parse::<ProviderKind>)]
    provider_order: Option<Vec<ProviderKind>>,
    /// Mask emails, phone numbers and card numbers before text goes to a provider.
    #[arg(long)]
    mask_personal_data: Option<bool>,
    #[arg(long)]
    monthly_message_limit: Option<u64>,
    #[arg(long)]
    monthly_token_limit: Option<u64>,
}

#[derive(Subcommand)]
enum ChannelCommand {
    /// Connect an account; the token (and LINE channel secret) are read from files and sealed by KMS.
    Connect {
        #[arg(long)]
        tenant: String,
        #[arg(long, value_parser = parse::<Platform>)]
        platform: Platform,
        /// Page id, Instagram account id, WhatsApp phone_number_id, or LINE bot user id (destination).
        #[arg(long)]
        account: String,
        #[arg(long)]
        token_file: PathBuf,
        /// LINE only: the channel secret that signs its webhooks.
        #[arg(long)]
        secret_file: Option<PathBuf>,
        /// The Meta user (app-scoped id) who connected it, for Meta's deauthorize and deletion callbacks.
        #[arg(long)]
        connected_by: Option<String>,
    },
    /// Disconnect: the token is destroyed at once and the channel's data is deleted within 30 days.
    Disconnect {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        channel: String,
    },
    List {
        #[arg(long)]
        tenant: String,
    },
}

#[derive(Subcommand)]
enum KnowledgeCommand {
    Add {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        question: String,
        #[arg(long)]
        answer: String,
    },
    List {
        #[arg(long)]
        tenant: String,
    },
}

fn parse<T: std::str::FromStr<Err = UnknownName>>(s: &str) -> Result<T, String> {
    s.parse().map_err(|e: UnknownName| e.to_string())
}

fn rfc3339(s: &str) -> Result<time::OffsetDateTime, String> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("{s:?} is not an RFC 3339 time such as 2026-11-24T09:00:00Z: {e}"))
}

fn retention_days(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(days @ 1..=3650) => Ok(days),
        _ => Err(format!("{s:?} is not a number of days from 1 to 3650")),
    }
}

/// What a command prints.
pub struct Output {
    json: Value,
    text: String,
}

impl Output {
    fn new(json: Value, text: impl Into<String>) -> Self {
        Self {
            json,
            text: text.into(),
        }
    }

    pub fn print(&self, json: bool) {
        if json {
            println!("{}", self.json);
        } else {
            println!("{}", self.text.trim_end());
        }
    }
}

struct Operator {
    config: Config,
    clients: AwsClients,
    store: Store,
    clock: SharedClock,
}

impl Operator {
    async fn load() -> Result<Self> {
        let config = Config::from_env()?;
        let clients = AwsClients::from_env().await;
        let clock = clock::system();
        let store = Store::new(clients.dynamodb.clone(), &config.table_name, clock.clone());
        Ok(Self {
            config,
            clients,
            store,
            clock,
        })
    }

    fn vault(&self) -> TokenVault {
        TokenVault::new(self.clients.kms.clone(), &self.config.kms_key_id)
    }

    fn channels(&self) -> ChannelService {
        ChannelService::new(self.store.clone(), self.vault(), ACTOR)
    }

    fn eraser(&self) -> Eraser {
        Eraser::new(self.store.clone(), ACTOR)
    }

    fn outbox(&self) -> Result<Outbox> {
        let http = inbox_shared::https::client(std::time::Duration::from_secs(3));
        Ok(Outbox::new(
            self.store.clone(),
            self.vault(),
            Sender::new(&self.config, http),
        ))
    }

    async fn audit(&self, tenant: &Tenant, action: &str, subject: &str) -> Result<()> {
        let event = AuditEvent::new(
            Some(&tenant.tenant_id),
            ACTOR,
            action,
            Some(subject),
            self.clock.now(),
            tenant.retention.audit_days,
        );
        self.store.record_audit(&event).await?;
        Ok(())
    }
}

pub async fn run(cli: Cli) -> Result<Output> {
    let ctx = Operator::load().await?;
    match cli.command {
        Command::Provision => {
            let done = provision::provision(&ctx.clients, &ProvisionPlan::from_config(&ctx.config))
                .await?;
            let text = format!(
                "table {}\ninbound queue {}\nerasure queue {}\nKMS key {} ({})\ncreated: {}",
                done.table_name,
                done.inbound_queue_url,
                done.erasure_queue_url,
                done.kms_alias,
                done.kms_key_id,
                if done.created.is_empty() {
                    "nothing, all present".into()
                } else {
                    done.created.join(", ")
                }
            );
            Ok(Output::new(serde_json::to_value(&done)?, text))
        }
        Command::Tenant(command) => tenant(&ctx, command).await,
        Command::Channel(command) => channel(&ctx, command).await,
        Command::Knowledge(command) => knowledge(&ctx, command).await,
        Command::Drafts(command) => drafts(&ctx, command).await,
        Command::Conversation(command) => conversation(&ctx, command).await,
        Command::Sweep { tenant, now } => {
            let t = ctx.store.require_tenant_stored(&tenant).await?;
            let now = now.unwrap_or_else(|| ctx.clock.now());
            // The store reads with the sweep's clock, so what is expired is judged as of `now`.
            let store = Store::new(
                ctx.clients.dynamodb.clone(),
                &ctx.config.table_name,
                std::sync::Arc::new(ManualClock::new(now)),
            );
            let report = TenantSweeper::new(store, ACTOR)
                .sweep(&t.tenant_id, now, SweepStage::default(), &mut Unlimited)
                .await?;
            let text = if report.deleted.is_empty() {
                format!("swept {}: nothing to delete", t.tenant_id)
            } else {
                let lines: Vec<String> = report
                    .deleted
                    .iter()
                    .map(|(what, n)| format!("  {what}: {n}"))
                    .collect();
                format!("swept {} as of {now}:\n{}", t.tenant_id, lines.join("\n"))
            };
            Ok(Output::new(
                json!({ "tenant_id": t.tenant_id, "as_of": now.format(&time::format_description::well_known::Rfc3339)?, "deleted": report.deleted }),
                text,
            ))
        }
        Command::Export(args) => {
            let t = ctx.store.require_tenant(&args.tenant).await?;
            let export = ctx
                .eraser()
                .export_contact(&t, args.platform, &args.contact)
                .await?;
            let document = serde_json::to_value(&export)?;
            // The document is the output in both modes: it is meant to be handed over as it is.
            Ok(Output::new(
                document.clone(),
                serde_json::to_string_pretty(&document)?,
            ))
        }
        Command::Erase(args) => {
            let t = ctx.store.require_tenant(&args.tenant).await?;
            let counts = ctx
                .eraser()
                .erase_contact(&t, args.platform, &args.contact)
                .await?;
            let text = if counts.is_empty() {
                "nothing stored for this contact".to_owned()
            } else {
                counts
                    .iter()
                    .map(|(kind, n)| format!("deleted {n} {}", kind.replace('_', " ")))
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            Ok(Output::new(json!({ "deleted": counts }), text))
        }
    }
}

fn tenant_json(t: &Tenant) -> Value {
    serde_json::to_value(t).expect("a tenant serialises")
}

fn tenant_text(t: &Tenant) -> String {
    let providers: Vec<&str> = t.provider_order.iter().map(|p| p.as_str()).collect();
    format!(
        "tenant {}\n  name: {}\n  status: {}{}\n  ai mode: {}\n  retention: content {} days, disconnected channel {} days, \
         after termination content {} / account {} days, audit {} days\n  providers: {} then offline\n  mask personal data: {}\n  \
         monthly limits: messages {}, tokens {}",
        t.tenant_id,
        t.name,
        t.status,
        t.terminated_at
            .map(|at| format!(" since {at}"))
            .unwrap_or_default(),
        t.ai_mode,
        t.retention.content_days,
        t.retention.disconnected_channel_days,
        t.retention.terminated_content_days,
        t.retention.terminated_account_days,
        t.retention.audit_days,
        if providers.is_empty() {
            "none".into()
        } else {
            providers.join(", ")
        },
        t.mask_personal_data,
        t.monthly_message_limit
            .map_or("none".into(), |n| n.to_string()),
        t.monthly_token_limit
            .map_or("none".into(), |n| n.to_string()),
    )
}

async fn tenant(ctx: &Operator, command: TenantCommand) -> Result<Output> {
    match command {
        TenantCommand::Create {
            name,
            ai_mode,
            retention_days,
        } => {
            if name.trim().is_empty() {
                bail!("--name must not be empty");
            }
            let mut t = Tenant::new(new_id("ten"), name.trim().to_owned(), ctx.clock.now());
            if let Some(mode) = ai_mode {
                t.ai_mode = mode;
            }
            if let Some(days) = retention_days {
                t.retention.content_days = days;
            }
            ctx.store.create_tenant(&t).await?;
            ctx.audit(&t, "tenant.create", &t.tenant_id).await?;
            Ok(Output::new(
                json!({ "tenant_id": t.tenant_id, "tenant": tenant_json(&t) }),
                tenant_text(&t),
            ))
        }
        TenantCommand::Show { tenant_id } => {
            let t = ctx.store.require_tenant(&tenant_id).await?;
            Ok(Output::new(tenant_json(&t), tenant_text(&t)))
        }
        TenantCommand::List => {
            let tenants = ctx.store.list_tenants_all().await?;
            let text = tenants
                .iter()
                .map(|t| format!("{}  {}  {}  {}", t.tenant_id, t.status, t.ai_mode, t.name))
                .collect::<Vec<_>>();
            Ok(Output::new(
                json!({ "tenants": tenants.iter().map(tenant_json).collect::<Vec<_>>() }),
                if text.is_empty() {
                    "no tenants".into()
                } else {
                    text.join("\n")
                },
            ))
        }
        TenantCommand::Terminate { tenant_id, at } => {
            let at = at.unwrap_or_else(|| ctx.clock.now());
            let done = tenants::terminate(&ctx.store, ACTOR, &tenant_id, at).await?;
            let disconnected = done.channels_disconnected;
            Ok(Output::new(
                json!({
                    "tenant_id": done.tenant.tenant_id,
                    "status": "terminated",
                    "channels_disconnected": disconnected,
                    "account_data_deleted_after": done.account_data_deleted_after.format(&time::format_description::well_known::Rfc3339)?,
                    "content_deleted_after": done.content_deleted_after.format(&time::format_description::well_known::Rfc3339)?,
                }),
                format!(
                    "terminated {}: {disconnected} channel(s) disconnected; account data goes after {}, content after {}",
                    done.tenant.tenant_id,
                    done.account_data_deleted_after.date(),
                    done.content_deleted_after.date()
                ),
            ))
        }
        TenantCommand::Set(settings) => {
            let mut t = ctx.store.require_tenant(&settings.tenant_id).await?;
            let mut changed = Vec::new();
            if let Some(mode) = settings.ai_mode {
                t.ai_mode = mode;
                changed.push("ai_mode");
            }
            for (value, field, name) in [
                (
                    settings.retention_days,
                    &mut t.retention.content_days,
                    "retention_days",
                ),
                (
                    settings.disconnected_channel_days,
                    &mut t.retention.disconnected_channel_days,
                    "disconnected_channel_days",
                ),
                (
                    settings.terminated_content_days,
                    &mut t.retention.terminated_content_days,
                    "terminated_content_days",
                ),
                (
                    settings.terminated_account_days,
                    &mut t.retention.terminated_account_days,
                    "terminated_account_days",
                ),
                (
                    settings.audit_days,
                    &mut t.retention.audit_days,
                    "audit_days",
                ),
            ] {
                if let Some(days) = value {
                    *field = days;
                    changed.push(name);
                }
            }
            if let Some(instructions) = settings.instructions {
                t.instructions = instructions;
                changed.push("instructions");
            }
            if let Some(order) = settings.provider_order {
                t.provider_order = order;
                changed.push("provider_order");
            }
            if let Some(mask) = settings.mask_personal_data {
                t.mask_personal_data = mask;
                changed.push("mask_personal_data");
            }
            if let Some(limit) = settings.monthly_message_limit {
                t.monthly_message_limit = Some(limit);
                changed.push("monthly_message_limit");
            }
            if let Some(limit) = settings.monthly_token_limit {
                t.monthly_token_limit = Some(limit);
                changed.push("monthly_token_limit");
            }
            if changed.is_empty() {
                bail!(
                    "nothing to set: give at least one of --ai-mode, --retention-days, --instructions, --provider-order, --mask-personal-data, --monthly-message-limit, --monthly-token-limit"
                );
            }
            ctx.store.save_tenant(&t).await?;
            ctx.audit(
                &t,
                &format!("tenant.set:{}", changed.join(",")),
                &t.tenant_id,
            )
            .await?;
            Ok(Output::new(tenant_json(&t), tenant_text(&t)))
        }
    }
}

fn channel_json(c: &Channel) -> Value {
    // Never the credentials: only whether the channel has them.
    json!({
        "tenant_id": c.tenant_id,
        "channel_id": c.channel_id,
        "platform": c.platform,
        "account_id": c.account_id,
        "status": c.status,
        "connected_by": c.connected_by,
        "connected_at": c.connected_at.format(&time::format_description::well_known::Rfc3339).ok(),
        "disconnected_at": c.disconnected_at.and_then(|at| at.format(&time::format_description::well_known::Rfc3339).ok()),
        "delete_data_by": c.retain_until.and_then(|at| at.format(&time::format_description::well_known::Rfc3339).ok()),
        "has_token": c.credentials.is_some(),
    })
}

fn read_secret_file(path: &Path, what: &str) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the {what} file {}", path.display()))?;
    let text = text.trim().to_owned();
    if text.is_empty() {
        bail!("the {what} file {} is empty", path.display());
    }
    Ok(text)
}

async fn channel(ctx: &Operator, command: ChannelCommand) -> Result<Output> {
    match command {
        ChannelCommand::Connect {
            tenant,
            platform,
            account,
            token_file,
            secret_file,
            connected_by,
        } => {
            let t = ctx.store.require_tenant(&tenant).await?;
            let secret = secret_file
                .map(|path| read_secret_file(&path, "channel secret").map(ChannelSecret::new))
                .transpose()?;
            let channel = ctx
                .channels()
                .connect(
                    &t,
                    NewChannel {
                        platform,
                        account_id: account,
                        token: PlatformToken::new(read_secret_file(&token_file, "token")?),
                        secret,
                        connected_by,
                    },
                )
                .await?;
            let text = format!(
                "connected {} account {} as channel {}",
                platform, channel.account_id, channel.channel_id
            );
            let mut out = channel_json(&channel);
            out["channel_id"] = json!(channel.channel_id);
            Ok(Output::new(out, text))
        }
        ChannelCommand::Disconnect { tenant, channel } => {
            let t = ctx.store.require_tenant(&tenant).await?;
            let Some(gone) =
                channels::disconnect(&ctx.store, ACTOR, &t, &channel, DisconnectReason::Requested)
                    .await?
            else {
                bail!("channel {channel} is already disconnected");
            };
            let text = format!(
                "disconnected channel {channel}: token destroyed; its data will be deleted by {}",
                gone.retain_until
                    .map(|at| at.date().to_string())
                    .unwrap_or_default()
            );
            Ok(Output::new(channel_json(&gone), text))
        }
        ChannelCommand::List { tenant } => {
            let channels = ctx.store.channels_of_tenant(&tenant).await?;
            let text: Vec<String> = channels
                .iter()
                .map(|c| {
                    format!(
                        "{}  {}  {}  {}",
                        c.channel_id, c.platform, c.status, c.account_id
                    )
                })
                .collect();
            Ok(Output::new(
                json!({ "channels": channels.iter().map(channel_json).collect::<Vec<_>>() }),
                if text.is_empty() {
                    "no channels".into()
                } else {
                    text.join("\n")
                },
            ))
        }
    }
}

async fn knowledge(ctx: &Operator, command: KnowledgeCommand) -> Result<Output> {
    match command {
        KnowledgeCommand::Add {
            tenant,
            question,
            answer,
        } => {
            let t = ctx.store.require_tenant(&tenant).await?;
            if question.trim().is_empty() || answer.trim().is_empty() {
                bail!("--question and --answer must not be empty");
            }
            let entry = KnowledgeEntry {
                tenant_id: t.tenant_id.clone(),
                entry_id: new_id("kb"),
                question: question.trim().to_owned(),
                answer: answer.trim().to_owned(),
                created_at: ctx.clock.now(),
            };
            ctx.store.add_knowledge(&entry).await?;
            Ok(Output::new(
                json!({ "entry_id": entry.entry_id, "entry": entry }),
                format!("added knowledge entry {}", entry.entry_id),
            ))
        }
        KnowledgeCommand::List { tenant } => {
            let entries = ctx.store.knowledge_of_tenant(&tenant).await?;
            let text: Vec<String> = entries
                .iter()
                .map(|e| format!("{}\n  Q: {}\n  A: {}", e.entry_id, e.question, e.answer))
                .collect();
            Ok(Output::new(
                json!({ "entries": entries }),
                if text.is_empty() {
                    "no knowledge entries".into()
                } else {
                    text.join("\n")
                },
            ))
        }
    }
}

async fn drafts(ctx: &Operator, command: DraftsCommand) -> Result<Output> {
    match command {
        DraftsCommand::List { tenant } => {
            let drafts = ctx.store.pending_drafts(&tenant).await?;
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
            Ok(Output::new(
                json!({ "drafts": listed }),
                if text.is_empty() {
                    "no pending drafts".into()
                } else {
                    text.join("\n")
                },
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
                .approve_draft(&t.tenant_id, &conversation, &draft)
                .await?;
            ctx.audit(&t, "draft.approve", &draft).await?;
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
            ctx.store
                .decide_draft(
                    &t.tenant_id,
                    &conversation,
                    &draft,
                    DraftStatus::Rejected,
                    ctx.clock.now(),
                )
                .await?;
            ctx.audit(&t, "draft.reject", &draft).await?;
            Ok(Output::new(
                json!({ "draft_id": draft, "status": "rejected" }),
                format!("rejected draft {draft}"),
            ))
        }
    }
}

async fn conversation(ctx: &Operator, command: ConversationCommand) -> Result<Output> {
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
                        c.user_id,
                        c.mode,
                        c.handoff_reason
                            .as_deref()
                            .map(|r| format!(" ({r})"))
                            .unwrap_or_default()
                    )
                })
                .collect();
            Ok(Output::new(
                json!({ "conversations": conversations }),
                if text.is_empty() {
                    "no conversations".into()
                } else {
                    text.join("\n")
                },
            ))
        }
        ConversationCommand::Release {
            tenant,
            channel,
            conversation,
        } => {
            let t = ctx.store.require_tenant(&tenant).await?;
            ctx.store
                .set_conversation_mode(
                    &t.tenant_id,
                    &channel,
                    &conversation,
                    ConversationMode::Bot,
                    None,
                )
                .await?;
            ctx.audit(&t, "conversation.release", &conversation).await?;
            Ok(Output::new(
                json!({ "conversation_id": conversation, "mode": "bot" }),
                format!("conversation {conversation} is back with the bot"),
            ))
        }
    }
}
