//! The commands. Each returns an [`Output`]: one JSON object (`--json`) or the same facts as text.

use std::borrow::Cow;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use inbox_shared::aws::AwsClients;
use inbox_shared::clock;
use inbox_shared::config::Config;
use inbox_shared::model::*;
use inbox_shared::platform::send::Sender;
use inbox_shared::provision::{self, ProvisionPlan};
use inbox_shared::secret::{ChannelSecret, PlatformToken};
use inbox_shared::service::erasure::Eraser;
use inbox_shared::service::onboarding::{LineConnect, Onboarding, TokenConnect};
use inbox_shared::service::outbound::{Delivered, Outbox};
use inbox_shared::service::{conversations, tenants};
use inbox_shared::store::Store;
use inbox_shared::sweep::TenantSweeper;
use inbox_shared::vault::TokenVault;
use serde_json::{Value, json};

const ACTOR: &str = "inboxctl";

#[derive(Parser)]
#[command(
    name = "inboxctl",
    version,
    about = "Operate the inbox backend: tenants, channels, console users, knowledge, drafts, conversations, end-user export and erasure, provisioning"
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
    /// Create the table, queues and KMS key where missing (the shapes of infra/template.yaml), and the
    /// console's user pool `{table}-users` unless COGNITO_USER_POOL_ID names one.
    Provision,
    /// Tenants: the companies using the inbox.
    #[command(subcommand)]
    Tenant(tenant::TenantCommand),
    /// Channels: connected Pages, Instagram accounts, WhatsApp numbers, LINE channels.
    #[command(subcommand)]
    Channel(channel::ChannelCommand),
    /// Console users: a tenant's staff who sign in to the console API (Cognito).
    #[command(subcommand)]
    User(user::UserCommand),
    /// Knowledge entries the AI answers from.
    #[command(subcommand)]
    Knowledge(inbox::KnowledgeCommand),
    /// AI drafts waiting for a person (tenant AI mode `draft`).
    #[command(subcommand)]
    Drafts(inbox::DraftsCommand),
    /// Conversations: who has them (the bot or a human), and handing them back to the bot.
    #[command(subcommand)]
    Conversation(inbox::ConversationCommand),
    /// Run one tenant's retention sweep now (every rule of its policy), optionally as of another time.
    Sweep {
        #[arg(long)]
        tenant: TenantId,
        /// The instant the sweep enforces the policy at (RFC 3339); default now. Earlier is allowed (it
        /// deletes less), later than now by more than 5 minutes of clock skew is not.
        #[arg(long, value_parser = rfc3339)]
        now: Option<time::OffsetDateTime>,
        #[command(flatten)]
        confirm: Confirm,
    },
    /// An end user's access request: print everything stored about one contact as one JSON document.
    Export(contact::ContactArgs),
    /// An end user's deletion request: delete everything of one contact in one tenant and print the counts.
    Erase {
        #[command(flatten)]
        contact: contact::ContactArgs,
        #[command(flatten)]
        confirm: Confirm,
    },
}

mod channel;
mod contact;
mod inbox;
mod tenant;
mod user;

fn parse<T: std::str::FromStr<Err = UnknownName>>(s: &str) -> Result<T, String> {
    s.parse().map_err(|e: UnknownName| e.to_string())
}

fn rfc3339(s: &str) -> Result<time::OffsetDateTime, String> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("{s:?} is not an RFC 3339 time such as 2026-11-24T09:00:00Z: {e}"))
}

/// The `--yes` of a command that destroys data or credentials: without it, the operator confirms on the
/// terminal, and without a terminal the command refuses (a script must say `--yes`).
#[derive(Args)]
struct Confirm {
    /// Do it without asking (required when stdin is not a terminal).
    #[arg(long)]
    yes: bool,
}

impl Confirm {
    /// Goes on when `--yes` was given or the operator types `yes` at the terminal; otherwise an error,
    /// before anything is done. `what` says what cannot be undone.
    fn ask(&self, what: &str) -> Result<()> {
        if self.yes {
            return Ok(());
        }
        let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
        if !interactive {
            bail!("{what}: this cannot be undone; without a terminal to confirm on, pass --yes");
        }
        confirm_on(&mut std::io::stdin().lock(), &mut std::io::stderr(), what)
    }
}

/// Asks on `prompt` and reads the answer from `answers`: only `yes` goes on.
fn confirm_on(answers: &mut impl BufRead, prompt: &mut impl Write, what: &str) -> Result<()> {
    write!(
        prompt,
        "{}: this cannot be undone. Type yes to go on: ",
        terminal_safe(what)
    )?;
    prompt.flush()?;
    let mut answer = String::new();
    answers.read_line(&mut answer)?;
    if answer.trim() != "yes" {
        bail!("not confirmed: nothing was done");
    }
    Ok(())
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

    /// A list: one line per item as text, or `none` when there is none.
    fn listing(json: Value, lines: Vec<String>, none: &str) -> Self {
        let text = if lines.is_empty() {
            none.to_owned()
        } else {
            lines.join("\n")
        };
        Self::new(json, text)
    }

    /// Prints the JSON (whose strings serde_json escapes), or the text made [`terminal_safe`]: every
    /// text line goes through it, whatever the command put in.
    pub fn print(&self, json: bool) {
        if json {
            println!("{}", self.json);
        } else {
            println!("{}", terminal_safe(self.text.trim_end()));
        }
    }
}

/// Text as it is safe to show on a terminal. Ids, names and texts come from platforms, customers and
/// tenants, so every character that could drive the terminal is written as a `\u{…}` escape instead:
/// C0 controls but newline and tab (ESC starts the sequences that move the cursor, recolour, retitle
/// the window or write to the clipboard; a carriage return overwrites a line), DEL, C1 controls (the
/// one-byte CSI and OSC), and the bidirectional-text controls that reorder what is shown.
pub fn terminal_safe(text: &str) -> Cow<'_, str> {
    fn dangerous(c: char) -> bool {
        (c.is_control() && c != '\n' && c != '\t')
            || matches!(
                c,
                '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
            )
    }
    if !text.contains(dangerous) {
        return Cow::Borrowed(text);
    }
    let mut safe = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if dangerous(c) {
            safe.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            safe.push(c);
        }
    }
    Cow::Owned(safe)
}

struct Operator {
    config: Config,
    clients: AwsClients,
    store: Store,
}

impl Operator {
    async fn load() -> Result<Self> {
        let config = Config::from_env()?;
        let clients = AwsClients::from_env().await;
        let store = Store::new(
            clients.dynamodb.clone(),
            &config.table_name,
            clock::system(),
        );
        Ok(Self {
            config,
            clients,
            store,
        })
    }

    fn vault(&self) -> TokenVault {
        TokenVault::new(self.clients.kms.clone(), &self.config.kms_key_id)
    }

    fn onboarding(&self) -> Onboarding {
        Onboarding::new(
            &self.config,
            self.store.clone(),
            self.vault(),
            inbox_shared::https::client(std::time::Duration::from_secs(3)),
            ACTOR,
        )
    }

    /// The console's user store (COGNITO_USER_POOL_ID, COGNITO_CLIENT_ID), with its own Cognito client.
    async fn directory(&self) -> Result<inbox_shared::identity::Directory> {
        Ok(
            inbox_shared::identity::Directory::from_env(&self.config, self.store.clone(), ACTOR)
                .await?,
        )
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
}

pub async fn run(cli: Cli) -> Result<Output> {
    let ctx = Operator::load().await?;
    let json = cli.json;
    match cli.command {
        Command::Provision => {
            let plan = ProvisionPlan::from_config(&ctx.config);
            let mut done = provision::provision(&ctx.clients, &plan).await?;
            let identity = match (
                &ctx.config.cognito_user_pool_id,
                &ctx.config.cognito_client_id,
            ) {
                // The configured pool (the stack's, in AWS) is used as it is.
                (Some(pool), Some(client)) => provision::ProvisionedIdentity {
                    user_pool_id: pool.clone(),
                    user_pool_name: String::new(),
                    client_id: client.clone(),
                    issuer: ctx.config.require_cognito_issuer()?.to_owned(),
                    created: Vec::new(),
                },
                _ => {
                    let cognito =
                        inbox_shared::identity::directory::cognito_client_from_env().await;
                    provision::provision_identity(&cognito, &provision::user_pool_name(&plan))
                        .await?
                }
            };
            let identity_text = format!(
                "user pool {} (COGNITO_USER_POOL_ID), app client {} (COGNITO_CLIENT_ID), issuer {}{}",
                identity.user_pool_id,
                identity.client_id,
                identity.issuer,
                if identity.created.is_empty() {
                    String::new()
                } else {
                    format!("; created {}", identity.created.join(", "))
                }
            );
            done.identity = Some(identity);
            let text = format!(
                "table {}\ninbound queue {}\nerasure queue {}\nKMS key {} ({})\n{identity_text}\ncreated: {}",
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
        Command::Tenant(command) => tenant::tenant(&ctx, command).await,
        Command::Channel(command) => channel::channel(&ctx, command).await,
        Command::User(command) => user::user(&ctx, command, json).await,
        Command::Knowledge(command) => inbox::knowledge(&ctx, command).await,
        Command::Drafts(command) => inbox::drafts(&ctx, command).await,
        Command::Conversation(command) => inbox::conversation(&ctx, command).await,
        Command::Sweep {
            tenant,
            now,
            confirm,
        } => {
            confirm.ask(&format!(
                "sweep tenant {tenant}: delete what its retention policy no longer keeps"
            ))?;
            tenant::sweep(&ctx, &tenant, now).await
        }
        Command::Export(args) => contact::export(&ctx, args).await,
        Command::Erase { contact, confirm } => {
            confirm.ask(&format!(
                "erase everything of {} contact {} in tenant {}",
                contact.platform, contact.contact, contact.tenant
            ))?;
            contact::erase(&ctx, contact).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_controls_are_escaped_and_the_rest_kept() {
        assert!(matches!(
            terminal_safe("Kumo Bakery 🍞\n  Q: é?\tA"),
            Cow::Borrowed(_)
        ));
        for (raw, shown) in [
            (
                "\u{1b}[2J\u{1b}]0;pwned\u{7}",
                "\\u{1b}[2J\\u{1b}]0;pwned\\u{7}",
            ),
            ("a\rb\u{7f}c", "a\\u{d}b\\u{7f}c"),
            ("\u{9b}31m\u{9d}x", "\\u{9b}31m\\u{9d}x"),
            ("gpj.\u{202e}exe", "gpj.\\u{202e}exe"),
            (
                "\u{2066}\u{2069}\u{200f}\u{61c}",
                "\\u{2066}\\u{2069}\\u{200f}\\u{61c}",
            ),
        ] {
            assert_eq!(terminal_safe(raw), shown);
        }
    }

    #[test]
    fn only_yes_at_the_terminal_goes_on() {
        for (answer, goes_on) in [
            ("yes\n", true),
            (" yes \n", true),
            ("y\n", false),
            ("", false),
        ] {
            let mut prompt = Vec::new();
            let done = confirm_on(&mut answer.as_bytes(), &mut prompt, "erase contact 1");
            assert_eq!(done.is_ok(), goes_on, "{answer:?}");
            let prompt = String::from_utf8(prompt).unwrap();
            assert!(
                prompt.starts_with("erase contact 1: this cannot be undone"),
                "{prompt}"
            );
        }
    }
}
