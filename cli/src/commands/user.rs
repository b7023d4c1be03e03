//! `inboxctl user …`: the console's users (Cognito), one tenant at a time.
//!
//! `user login` prints tokens only when asked: with `--json` (for scripts: `{"id_token", "access_token",
//! "expires_in"}`) or `--show-tokens` (the id token alone on stdout, for `$(…)`). Its plain text says who
//! signed in and for how long, so a terminal, a scrollback or a CI log never holds a bearer token by
//! accident.

use super::*;
use inbox_shared::identity::{ConsoleUser, Directory, Role};
use inbox_shared::secret::Password;

#[derive(Subcommand)]
pub enum UserCommand {
    /// Add a staff member to a tenant's console with a role. Without --password-file the user exists
    /// but cannot sign in until `user set-password`.
    Add {
        #[arg(long)]
        tenant: TenantId,
        #[arg(long)]
        email: String,
        /// owner (everything) or agent (conversations, replies, handoffs, drafts).
        #[arg(long, value_parser = role)]
        role: Role,
        /// A file holding the user's password alone on one line (never an argument: it would be in the
        /// shell history and the process list).
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// The console users of a tenant, with role and status.
    List {
        #[arg(long)]
        tenant: TenantId,
    },
    /// Remove a console user of a tenant (by email or user id): they can no longer sign in.
    Remove {
        #[arg(long)]
        tenant: TenantId,
        /// The user's email, or their user id (`sub`).
        #[arg(long)]
        email: String,
        #[command(flatten)]
        confirm: Confirm,
    },
    /// Set the password of a console user of a tenant (by email or user id): one added without a
    /// password, or one who forgot theirs. They sign in with it at once.
    SetPassword {
        #[arg(long)]
        tenant: TenantId,
        /// The user's email, or their user id (`sub`).
        #[arg(long)]
        email: String,
        /// A file holding the new password alone on one line.
        #[arg(long)]
        password_file: PathBuf,
    },
    /// Sign in as a console user and get their tokens (for scripts and local use of the console API).
    Login {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password_file: PathBuf,
        /// Print the id token (what the console API takes as `Authorization: Bearer …`) on stdout.
        #[arg(long)]
        show_tokens: bool,
    },
}

fn role(s: &str) -> Result<Role, String> {
    match s {
        "owner" => Ok(Role::Owner),
        "agent" => Ok(Role::Agent),
        _ => Err(format!("{s:?} is not a role: owner or agent")),
    }
}

fn password_from(path: &Path) -> Result<Password> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the password file {}", path.display()))?;
    let password = inbox_shared::secret::secret_from_file_text(&text)
        .map_err(|e| anyhow::anyhow!("the password file {}: {e}", path.display()))?;
    Ok(Password::new(password))
}

fn user_json(user: &ConsoleUser) -> Value {
    serde_json::to_value(user).expect("a user serialises")
}

fn user_text(user: &ConsoleUser) -> String {
    format!(
        "{}  {}  {}  {}{}",
        user.user_id,
        user.email,
        user.role.map_or("no role", Role::as_str),
        user.status,
        if user.enabled { "" } else { "  disabled" }
    )
}

pub async fn user(ctx: &Operator, command: UserCommand, json: bool) -> Result<Output> {
    let directory: Directory = ctx.directory().await?;
    match command {
        UserCommand::Add {
            tenant,
            email,
            role,
            password_file,
        } => {
            let password = password_file.as_deref().map(password_from).transpose()?;
            let user = directory
                .add_user(&tenant, &email, role, password.as_ref())
                .await?;
            let next = if password.is_some() {
                "they can sign in now"
            } else {
                "no password yet: they can sign in once `inboxctl user set-password` gives them one"
            };
            Ok(Output::new(
                user_json(&user),
                format!(
                    "added {} to {tenant} as {} (user id {}); {next}",
                    user.email,
                    role.as_str(),
                    user.user_id
                ),
            ))
        }
        UserCommand::List { tenant } => {
            let users = directory.list_users(&tenant).await?;
            Ok(Output::listing(
                json!({ "tenant_id": tenant, "users": users.iter().map(user_json).collect::<Vec<_>>() }),
                users.iter().map(user_text).collect(),
                &format!("no console users in {tenant}"),
            ))
        }
        UserCommand::Remove {
            tenant,
            email,
            confirm,
        } => {
            confirm.ask(&format!(
                "remove console user {email} from tenant {tenant}: they can no longer sign in"
            ))?;
            let user = directory.remove_user(&tenant, &email).await?;
            Ok(Output::new(
                json!({ "removed": user_json(&user) }),
                format!("removed {} ({}) from {tenant}", user.email, user.user_id),
            ))
        }
        UserCommand::SetPassword {
            tenant,
            email,
            password_file,
        } => {
            let password = password_from(&password_file)?;
            let user = directory.set_password(&tenant, &email, &password).await?;
            Ok(Output::new(
                json!({ "password_set": user_json(&user) }),
                format!(
                    "set the password of {} ({}) in {tenant}: they can sign in now",
                    user.email, user.user_id
                ),
            ))
        }
        UserCommand::Login {
            email,
            password_file,
            show_tokens,
        } => {
            let password = password_from(&password_file)?;
            let tokens = directory.login(&email, &password).await?;
            let text = if show_tokens && !json {
                tokens.id_token.expose_secret().to_owned()
            } else {
                format!(
                    "signed in as {email}: tokens valid for {} s (not shown: --json or --show-tokens prints them)",
                    tokens.expires_in
                )
            };
            Ok(Output::new(
                json!({
                    "id_token": tokens.id_token.expose_secret(),
                    "access_token": tokens.access_token.expose_secret(),
                    "expires_in": tokens.expires_in,
                }),
                text,
            ))
        }
    }
}
