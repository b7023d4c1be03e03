//! `inboxctl channel …`.

use super::*;

#[derive(Subcommand)]
pub enum ChannelCommand {
    /// Connect an account with a token you hold (Meta) or a LINE channel's id and secret. The token is
    /// checked with the platform and the account subscribed to our webhooks before anything is stored.
    Connect {
        #[arg(long)]
        tenant: TenantId,
        #[arg(long, value_parser = parse::<Platform>)]
        platform: Platform,
        /// Meta: the Page id, Instagram account id or WhatsApp phone_number_id. LINE: not needed (the
        /// bot's id is read from LINE).
        #[arg(long)]
        account: Option<String>,
        /// The access token. LINE: optional (without it, short-lived tokens are minted on demand).
        #[arg(long)]
        token_file: Option<PathBuf>,
        /// LINE: the channel id (Basic settings of the Messaging API channel).
        #[arg(long)]
        channel_id: Option<String>,
        /// LINE: the channel secret that signs its webhooks.
        #[arg(long)]
        secret_file: Option<PathBuf>,
        /// WhatsApp: the WhatsApp Business Account the number belongs to.
        #[arg(long)]
        waba: Option<String>,
        /// Instagram connected through Facebook: the Page the account is linked to.
        #[arg(long)]
        page: Option<String>,
        /// Instagram: the token comes from Instagram Login (no Page).
        #[arg(long)]
        instagram_login: bool,
        /// The Meta user (app-scoped id) who connected it, for Meta's deauthorize and deletion
        /// callbacks (default: the token's user, as debug_token says).
        #[arg(long)]
        connected_by: Option<String>,
    },
    /// A link the business owner opens to connect their accounts: valid one hour, usable once.
    ConnectLink {
        #[arg(long)]
        tenant: TenantId,
        /// messenger, instagram or whatsapp; messenger,instagram connects each Page and its Instagram
        /// account in one Facebook login.
        #[arg(long, value_parser = parse::<Platform>, value_delimiter = ',', required = true)]
        platform: Vec<Platform>,
        /// Instagram: through Facebook Login (the account's Page) instead of Instagram Login.
        #[arg(long)]
        via_facebook: bool,
    },
    /// Disconnect: the platform is told (webhook subscription removed), the token is destroyed at once
    /// and the channel's data is deleted within 30 days.
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

fn rfc3339_of(at: Option<time::OffsetDateTime>) -> Option<String> {
    at.and_then(|at| {
        at.format(&time::format_description::well_known::Rfc3339)
            .ok()
    })
}

fn channel_json(c: &Channel) -> Value {
    // Never the credentials: only whether the channel has them.
    json!({
        "tenant_id": c.tenant_id,
        "channel_id": c.channel_id,
        "platform": c.platform,
        "account_id": c.account_id,
        "name": c.name,
        "status": c.status,
        "reauth_reason": c.reauth_reason,
        "connected_by": c.connected_by,
        "connected_at": rfc3339_of(Some(c.connected_at)),
        "disconnected_at": rfc3339_of(c.disconnected_at),
        "delete_data_by": rfc3339_of(c.retain_until),
        "token_expires_at": rfc3339_of(c.token_expires_at),
        "health_checked_at": rfc3339_of(c.health_checked_at),
        "instagram_login": c.instagram_login,
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
            channel_id,
            secret_file,
            waba,
            page,
            instagram_login,
            connected_by,
        } => {
            let t = ctx.store.require_tenant(&tenant).await?;
            let token = token_file
                .map(|path| read_secret_file(&path, "token").map(PlatformToken::new))
                .transpose()?;
            let onboarding = ctx.onboarding();
            let (connected, report) = if platform == Platform::Line {
                let (Some(line_channel_id), Some(secret_file)) = (channel_id, secret_file) else {
                    bail!(
                        "a LINE channel connects with --channel-id and --secret-file (and optionally --token-file)"
                    );
                };
                if account.is_some() {
                    bail!("--account is not for LINE: the bot's id is read from LINE");
                }
                let secret = ChannelSecret::new(read_secret_file(&secret_file, "channel secret")?);
                let (connected, report) = onboarding
                    .connect_line(
                        &t,
                        LineConnect {
                            line_channel_id,
                            secret,
                            token,
                        },
                    )
                    .await?;
                (connected, Some(report))
            } else {
                if channel_id.is_some() || secret_file.is_some() {
                    bail!("--channel-id and --secret-file are for LINE channels only");
                }
                let (Some(account), Some(token)) = (account, token) else {
                    bail!(
                        "a {platform} account connects with --account and --token-file (or through a connect link)"
                    );
                };
                let connected = onboarding
                    .connect_with_token(
                        &t,
                        TokenConnect {
                            platform,
                            account_id: account,
                            token,
                            connected_by,
                            parent_account_id: waba.or(page),
                            instagram_login,
                        },
                    )
                    .await?;
                (connected, None)
            };
            let channel = &connected.channel;
            let mut text = format!(
                "{} {} account {} as channel {}",
                if connected.reconnected {
                    "reconnected"
                } else {
                    "connected"
                },
                platform,
                channel.account_id,
                channel.channel_id
            );
            let mut out = channel_json(channel);
            out["reconnected"] = json!(connected.reconnected);
            if let Some(test) = report.and_then(|r| r.webhook_test) {
                text.push_str(&format!(
                    "\nLINE webhook test: {}{}",
                    if test.success { "delivered" } else { "FAILED" },
                    test.status_code
                        .map(|c| format!(" (HTTP {c})"))
                        .unwrap_or_default()
                ));
                out["webhook_test"] = serde_json::to_value(&test)?;
            }
            Ok(Output::new(out, text))
        }
        ChannelCommand::ConnectLink {
            tenant,
            platform,
            via_facebook,
        } => {
            let t = ctx.store.require_tenant(&tenant).await?;
            let link = ctx
                .onboarding()
                .connect_link(&t, &platform, via_facebook)
                .await?;
            let expires = rfc3339_of(Some(link.expires_at)).unwrap_or_default();
            let text = format!("{}\n(valid until {expires}, usable once)", link.url);
            Ok(Output::new(
                json!({ "url": link.url, "expires_at": expires }),
                text,
            ))
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
            let Some(gone) = ctx.onboarding().disconnect(&t, &channel).await? else {
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
                        "{}  {}  {}{}  {}{}",
                        c.channel_id,
                        c.platform,
                        c.status,
                        c.reauth_reason
                            .map(|r| format!(" ({r})"))
                            .unwrap_or_default(),
                        c.account_id,
                        c.name
                            .as_deref()
                            .map(|n| format!("  {}", terminal_safe(n)))
                            .unwrap_or_default(),
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
