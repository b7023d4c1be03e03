//! `inboxctl tenant …` and `inboxctl sweep`.

use super::*;

#[derive(Subcommand)]
pub enum TenantCommand {
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, value_parser = parse::<AiMode>)]
        ai_mode: Option<AiMode>,
        /// Days conversation content is kept (default 365).
        #[arg(long)]
        retention_days: Option<u32>,
    },
    Show {
        tenant_id: TenantId,
    },
    List,
    Set(TenantSettings),
    /// End a tenant's contract: its channels are disconnected (tokens destroyed) now; the sweep deletes
    /// its account data after `terminated_account_days` (30) and its content after
    /// `terminated_content_days` (90).
    Terminate {
        tenant_id: TenantId,
        /// When the contract ended (RFC 3339); default now. Re-running on a terminated tenant finishes
        /// its termination (channels still connected are disconnected), keeping its date.
        #[arg(long, value_parser = rfc3339)]
        at: Option<time::OffsetDateTime>,
        #[command(flatten)]
        confirm: Confirm,
    },
}

#[derive(Args)]
pub struct TenantSettings {
    tenant_id: TenantId,
    #[arg(long, value_parser = parse::<AiMode>)]
    ai_mode: Option<AiMode>,
    #[arg(long)]
    retention_days: Option<u32>,
    /// Days after a channel's disconnection its data is deleted (default 30).
    #[arg(long)]
    disconnected_channel_days: Option<u32>,
    /// Days after termination the content is deleted (default 90).
    #[arg(long)]
    terminated_content_days: Option<u32>,
    /// Days after termination the account data is deleted (default 30).
    #[arg(long)]
    terminated_account_days: Option<u32>,
    /// Days audit events are kept (default 365).
    #[arg(long)]
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
    /// Sent when a customer only says hello ("" unsets it: nothing is sent).
    #[arg(long)]
    greeting_reply: Option<String>,
    /// Sent when a customer only thanks or acknowledges ("" unsets it: nothing is sent).
    #[arg(long)]
    thanks_reply: Option<String>,
    #[arg(long)]
    monthly_message_limit: Option<u64>,
    #[arg(long)]
    monthly_token_limit: Option<u64>,
}

impl TenantSettings {
    fn change(self) -> tenants::SettingsChange {
        tenants::SettingsChange {
            ai_mode: self.ai_mode,
            retention_days: self.retention_days,
            disconnected_channel_days: self.disconnected_channel_days,
            terminated_content_days: self.terminated_content_days,
            terminated_account_days: self.terminated_account_days,
            audit_days: self.audit_days,
            instructions: self.instructions,
            provider_order: self.provider_order,
            mask_personal_data: self.mask_personal_data,
            monthly_message_limit: self.monthly_message_limit,
            monthly_token_limit: self.monthly_token_limit,
            greeting_reply: self.greeting_reply,
            thanks_reply: self.thanks_reply,
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

pub async fn tenant(ctx: &Operator, command: TenantCommand) -> Result<Output> {
    match command {
        TenantCommand::Create {
            name,
            ai_mode,
            retention_days,
        } => {
            let settings = tenants::SettingsChange {
                ai_mode,
                retention_days,
                ..Default::default()
            };
            let t = tenants::create(&ctx.store, ACTOR, &name, settings).await?;
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
            Ok(Output::listing(
                json!({ "tenants": tenants.iter().map(tenant_json).collect::<Vec<_>>() }),
                text,
                "no tenants",
            ))
        }
        TenantCommand::Terminate {
            tenant_id,
            at,
            confirm,
        } => {
            confirm.ask(&format!(
                "terminate tenant {tenant_id}: its channels are disconnected now (tokens destroyed) \
                 and its data deleted per its policy"
            ))?;
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
            let tenant_id = settings.tenant_id.clone();
            let t =
                tenants::update_settings(&ctx.store, ACTOR, &tenant_id, settings.change()).await?;
            Ok(Output::new(tenant_json(&t), tenant_text(&t)))
        }
    }
}

/// Runs one tenant's retention sweep now, or as of `now`.
pub async fn sweep(
    ctx: &Operator,
    tenant: &TenantId,
    now: Option<time::OffsetDateTime>,
) -> Result<Output> {
    let (now, report) = TenantSweeper::sweep_by_hand(&ctx.store, ACTOR, tenant, now).await?;
    let text = if report.deleted.is_empty() {
        format!("swept {tenant}: nothing to delete")
    } else {
        let lines: Vec<String> = report
            .deleted
            .iter()
            .map(|(what, n)| format!("  {what}: {n}"))
            .collect();
        format!("swept {tenant} as of {now}:\n{}", lines.join("\n"))
    };
    Ok(Output::new(
        json!({ "tenant_id": tenant, "as_of": now.format(&time::format_description::well_known::Rfc3339)?, "deleted": report.deleted }),
        text,
    ))
}
