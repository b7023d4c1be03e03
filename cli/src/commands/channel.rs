//! `inboxctl channel …`.

use super::*;

#[derive(Subcommand)]
pub enum ChannelCommand {
    /// Connect an account; the token (and LINE channel secret) are read from files and sealed by KMS.
    Connect {
        #[arg(long)]
        tenant: TenantId,
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
        tenant: TenantId,
        #[arg(long)]
        channel: ChannelId,
        #[command(flatten)]
        confirm: Confirm,
    },
    List {
        #[arg(long)]
        tenant: TenantId,
    },
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
    let secret = inbox_shared::secret::secret_from_file_text(&text)
        .with_context(|| format!("the {what} file {}", path.display()))?;
    Ok(secret.to_owned())
}

pub async fn channel(ctx: &Operator, command: ChannelCommand) -> Result<Output> {
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
        ChannelCommand::Disconnect {
            tenant,
            channel,
            confirm,
        } => {
            confirm.ask(&format!(
                "disconnect channel {channel} of tenant {tenant}: its token is destroyed and its data \
                 deleted after the tenant's disconnected-channel period"
            ))?;
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
            let t = ctx.store.require_tenant(&tenant).await?;
            let channels = ctx.store.channels_of_tenant(&t.tenant_id).await?;
            let text: Vec<String> = channels
                .iter()
                .map(|c| {
                    format!(
                        "{}  {}  {}  {}",
                        c.channel_id, c.platform, c.status, c.account_id
                    )
                })
                .collect();
            Ok(Output::listing(
                json!({ "channels": channels.iter().map(channel_json).collect::<Vec<_>>() }),
                text,
                "no channels",
            ))
        }
    }
}
