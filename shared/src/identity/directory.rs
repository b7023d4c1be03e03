//! The console's users: a Cognito user pool, one user per staff member, signed in by email.
//!
//! - A user's business is the immutable custom attribute `custom:tenant_id`, set when the user is added
//!   and never writable by the user (the app client's write attributes leave it out); their role is
//!   membership of the `owner` or `agent` group. Both end up in the id token's claims.
//! - Every operation is scoped to one tenant: a user of another tenant is "not found", never "not
//!   yours", so nothing confirms that an address is registered elsewhere.
//! - Adding and removing a user writes an audit event of the tenant naming the user by their `sub`
//!   (never their email: audit subjects carry ids, not personal data).
//! - Passwords and tokens are [`Password`] and [`BearerToken`]: no `Debug` or `Display` shows them.
//!
//! The Cognito client is built here ([`Directory::from_config`]), not in [`crate::aws::AwsClients`],
//! so the functions that never manage users do not build one at cold start.

use aws_sdk_cognitoidentityprovider as cognito;
use cognito::error::{DisplayErrorContext, ProvideErrorMetadata};
use cognito::types::{AttributeType, AuthFlowType, ChallengeNameType, MessageActionType, UserType};
use serde::Serialize;
use time::OffsetDateTime;

use super::{EMAIL_CLAIM, Role, TENANT_CLAIM};
use crate::config::{Config, ConfigError};
use crate::model::{AuditEvent, TenantId, TenantStatus};
use crate::secret::{BearerToken, Password};
use crate::store::{Store, StoreError};

/// Users listed per ListUsers page (Cognito's maximum).
const PAGE: i32 = 60;

/// A console user as the directory reports them: never a password, never a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsoleUser {
    /// Cognito's `sub`: how tokens and audit events name the user.
    pub user_id: String,
    pub email: String,
    pub tenant_id: TenantId,
    /// `None`: in neither group, so the console refuses them (403) until given a role.
    pub role: Option<Role>,
    /// Cognito's status: `CONFIRMED`, `FORCE_CHANGE_PASSWORD` (added without a password), …
    pub status: String,
    pub enabled: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
}

/// What a sign-in returns. No `Debug` shows the tokens.
#[derive(Debug, Clone)]
pub struct SessionTokens {
    /// What the console API takes as `Authorization: Bearer …`: it carries the tenant and the groups.
    pub id_token: BearerToken,
    pub access_token: BearerToken,
    pub refresh_token: Option<BearerToken>,
    /// Seconds the id and access tokens are valid.
    pub expires_in: i32,
}

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("{0:?} is not an email address")]
    InvalidEmail(String),
    #[error("a user with this email already exists")]
    EmailInUse,
    #[error("the password does not meet the pool's policy: {0}")]
    InvalidPassword(String),
    /// No such user in this tenant (whether or not another tenant has one).
    #[error("no such user in tenant {0}")]
    NotFound(TenantId),
    #[error("tenant {0} is terminated: it gets no new users")]
    TenantTerminated(TenantId),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("Cognito {operation} failed: {message}")]
    Cognito {
        operation: &'static str,
        message: String,
        retryable: bool,
    },
}

impl DirectoryError {
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Store(e) => e.is_retryable(),
            Self::Cognito { retryable, .. } => *retryable,
            _ => false,
        }
    }
}

/// Why a sign-in failed.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// The password is wrong (in AWS, with the client's `PreventUserExistenceErrors`, also an unknown
    /// email: Cognito does not say which).
    #[error("wrong email or password")]
    WrongPassword,
    #[error("no user has this email")]
    UnknownUser,
    /// Added without a password (or with a temporary one): an operator sets one with `user add
    /// --password-file` on a new user, or the user completes Cognito's NEW_PASSWORD_REQUIRED challenge.
    #[error("the user must set a new password before signing in")]
    NeedsNewPassword,
    #[error("the user's password was reset: they must set a new one")]
    PasswordResetRequired,
    #[error("the user is disabled")]
    Disabled,
    /// A self-signed-up user who never confirmed (the pool allows no self sign-up; kept for completeness).
    #[error("the user has not confirmed their sign-up")]
    NotConfirmed,
    /// A second factor (MFA) or another challenge this sign-in cannot answer.
    #[error("sign-in needs the {0} challenge answered")]
    Challenge(String),
    #[error("Cognito InitiateAuth failed: {message}")]
    Cognito { message: String, retryable: bool },
}

/// The user store of the console, one user pool and its app client.
#[derive(Debug, Clone)]
pub struct Directory {
    cognito: cognito::Client,
    pool_id: String,
    client_id: String,
    store: Store,
    actor: String,
}

impl Directory {
    pub fn new(
        cognito: cognito::Client,
        pool_id: impl Into<String>,
        client_id: impl Into<String>,
        store: Store,
        actor: impl Into<String>,
    ) -> Self {
        Self {
            cognito,
            pool_id: pool_id.into(),
            client_id: client_id.into(),
            store,
            actor: actor.into(),
        }
    }

    /// The configured pool and client (`COGNITO_USER_POOL_ID`, `COGNITO_CLIENT_ID`), with a Cognito
    /// client of its own built from `sdk`.
    pub fn from_config(
        sdk: &aws_config::SdkConfig,
        config: &Config,
        store: Store,
        actor: impl Into<String>,
    ) -> Result<Self, ConfigError> {
        Ok(Self::new(
            cognito::Client::new(sdk),
            config.require_cognito_user_pool_id()?,
            config.require_cognito_client_id()?,
            store,
            actor,
        ))
    }

    /// [`Self::from_config`] with the SDK configuration of the environment (`AWS_REGION`,
    /// credentials, `AWS_ENDPOINT_URL`).
    pub async fn from_env(
        config: &Config,
        store: Store,
        actor: impl Into<String>,
    ) -> Result<Self, ConfigError> {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        Self::from_config(&sdk, config, store, actor)
    }

    /// The same directory, acting as `actor` in the audit trail (`console:{sub}` for a console owner).
    pub fn acting_as(&self, actor: impl Into<String>) -> Self {
        Self {
            actor: actor.into(),
            ..self.clone()
        }
    }

    pub fn pool_id(&self) -> &str {
        &self.pool_id
    }

    /// Adds a user to `tenant` with `role`: email verified, no invitation sent. With a password it is
    /// permanent (the user signs in at once); without one the user must set one first
    /// ([`LoginError::NeedsNewPassword`]).
    pub async fn add_user(
        &self,
        tenant: &TenantId,
        email: &str,
        role: Role,
        password: Option<&Password>,
    ) -> Result<ConsoleUser, DirectoryError> {
        let email = normalized_email(email)?;
        let stored = self.store.require_tenant(tenant).await?;
        if stored.status == TenantStatus::Terminated {
            return Err(DirectoryError::TenantTerminated(tenant.clone()));
        }
        let attribute = |name: &str, value: &str| {
            AttributeType::builder()
                .name(name)
                .value(value)
                .build()
                .expect("name is set")
        };
        let created = self
            .cognito
            .admin_create_user()
            .user_pool_id(&self.pool_id)
            .username(&email)
            .user_attributes(attribute(EMAIL_CLAIM, &email))
            .user_attributes(attribute("email_verified", "true"))
            .user_attributes(attribute(TENANT_CLAIM, tenant.as_str()))
            .message_action(MessageActionType::Suppress)
            .send()
            .await
            .map_err(|e| match e.code() {
                Some("UsernameExistsException" | "AliasExistsException") => {
                    DirectoryError::EmailInUse
                }
                _ => cognito_error("AdminCreateUser", &e),
            })?
            .user
            .ok_or_else(|| DirectoryError::Cognito {
                operation: "AdminCreateUser",
                message: "returned no user".into(),
                retryable: false,
            })?;
        let user_id = sub_of(&created).unwrap_or_default();
        // A user half made (no group, a refused password) is removed again, so that adding them once
        // more starts afresh.
        if let Err(err) = self.finish_adding(&email, role, password).await {
            let _ = self
                .cognito
                .admin_delete_user()
                .user_pool_id(&self.pool_id)
                .username(&email)
                .send()
                .await;
            return Err(err);
        }
        self.audit(
            tenant,
            "console_user.add",
            &format!("{user_id} {}", role.as_str()),
        )
        .await?;
        let user = self
            .get(&email)
            .await?
            .ok_or_else(|| DirectoryError::NotFound(tenant.clone()))?;
        self.describe(user, tenant.clone()).await
    }

    async fn finish_adding(
        &self,
        email: &str,
        role: Role,
        password: Option<&Password>,
    ) -> Result<(), DirectoryError> {
        self.cognito
            .admin_add_user_to_group()
            .user_pool_id(&self.pool_id)
            .username(email)
            .group_name(role.group())
            .send()
            .await
            .map_err(|e| cognito_error("AdminAddUserToGroup", &e))?;
        if let Some(password) = password {
            self.set_permanent_password(email, password).await?;
        }
        Ok(())
    }

    async fn set_permanent_password(
        &self,
        username: &str,
        password: &Password,
    ) -> Result<(), DirectoryError> {
        self.cognito
            .admin_set_user_password()
            .user_pool_id(&self.pool_id)
            .username(username)
            .password(password.expose_secret())
            .permanent(true)
            .send()
            .await
            .map_err(|e| match e.code() {
                Some("InvalidPasswordException") => {
                    DirectoryError::InvalidPassword(e.message().unwrap_or("refused").to_owned())
                }
                _ => cognito_error("AdminSetUserPassword", &e),
            })?;
        Ok(())
    }

    /// Sets the password of a user of `tenant` (named by email or `sub`), who can then sign in with it:
    /// for a user added without one, or one who forgot theirs. Audited, naming the user by id.
    pub async fn set_password(
        &self,
        tenant: &TenantId,
        email_or_sub: &str,
        password: &Password,
    ) -> Result<ConsoleUser, DirectoryError> {
        let user = self.user_of_tenant(tenant, email_or_sub).await?;
        self.store.require_tenant(tenant).await?;
        self.set_permanent_password(&user.user_id, password).await?;
        self.audit(tenant, "console_user.password_set", &user.user_id)
            .await?;
        Ok(user)
    }

    /// The user of `tenant` named by email or `sub`; a user of another tenant is not found.
    async fn user_of_tenant(
        &self,
        tenant: &TenantId,
        email_or_sub: &str,
    ) -> Result<ConsoleUser, DirectoryError> {
        let not_found = || DirectoryError::NotFound(tenant.clone());
        let name = match email_or_sub.trim() {
            email if email.contains('@') => normalized_email(email).map_err(|_| not_found())?,
            sub => sub.to_owned(),
        };
        if name.is_empty() || name.len() > 254 {
            return Err(not_found());
        }
        let user = self.get(&name).await?.ok_or_else(not_found)?;
        if tenant_of(&user).as_deref() != Some(tenant.as_str()) {
            return Err(not_found());
        }
        self.describe(user, tenant.clone()).await
    }

    /// Every user of `tenant`, with role and status, sorted by email. Cognito cannot filter ListUsers
    /// on a custom attribute, so this pages through the pool and keeps the tenant's users: one call per
    /// 60 users of the pool, plus one per user of the tenant for their groups.
    pub async fn list_users(&self, tenant: &TenantId) -> Result<Vec<ConsoleUser>, DirectoryError> {
        let mut users = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .cognito
                .list_users()
                .user_pool_id(&self.pool_id)
                .limit(PAGE)
                .set_pagination_token(token)
                .send()
                .await
                .map_err(|e| cognito_error("ListUsers", &e))?;
            for user in page.users.unwrap_or_default() {
                if tenant_of(&user).as_deref() == Some(tenant.as_str()) {
                    users.push(self.describe(user, tenant.clone()).await?);
                }
            }
            match page.pagination_token.filter(|t| !t.is_empty()) {
                Some(next) => token = Some(next),
                None => break,
            }
        }
        users.sort_by(|a, b| a.email.cmp(&b.email));
        Ok(users)
    }

    /// Removes a user of `tenant`, named by email or `sub`; a user of another tenant is not found.
    pub async fn remove_user(
        &self,
        tenant: &TenantId,
        email_or_sub: &str,
    ) -> Result<ConsoleUser, DirectoryError> {
        let not_found = || DirectoryError::NotFound(tenant.clone());
        let removed = self.user_of_tenant(tenant, email_or_sub).await?;
        // The tenant as stored, so users can still be removed while a termination runs.
        self.store.require_tenant_stored(tenant).await?;
        self.cognito
            .admin_delete_user()
            .user_pool_id(&self.pool_id)
            .username(&removed.user_id)
            .send()
            .await
            .map_err(|e| match e.code() {
                Some("UserNotFoundException") => not_found(),
                _ => cognito_error("AdminDeleteUser", &e),
            })?;
        self.audit(tenant, "console_user.remove", &removed.user_id)
            .await?;
        Ok(removed)
    }

    /// Signs a user in with email and password (USER_PASSWORD_AUTH on the app client).
    pub async fn login(
        &self,
        email: &str,
        password: &Password,
    ) -> Result<SessionTokens, LoginError> {
        let email = normalized_email(email).map_err(|_| LoginError::UnknownUser)?;
        let out = self
            .cognito
            .initiate_auth()
            .client_id(&self.client_id)
            .auth_flow(AuthFlowType::UserPasswordAuth)
            .auth_parameters("USERNAME", &email)
            .auth_parameters("PASSWORD", password.expose_secret())
            .send()
            .await
            .map_err(|e| match e.code() {
                Some("NotAuthorizedException")
                    if e.message().is_some_and(|m| m.contains("disabled")) =>
                {
                    LoginError::Disabled
                }
                Some("NotAuthorizedException") => LoginError::WrongPassword,
                Some("UserNotFoundException") => LoginError::UnknownUser,
                Some("PasswordResetRequiredException") => LoginError::PasswordResetRequired,
                Some("UserNotConfirmedException") => LoginError::NotConfirmed,
                code => LoginError::Cognito {
                    message: DisplayErrorContext(&e).to_string(),
                    retryable: is_retryable_code(code),
                },
            })?;
        if let Some(challenge) = out.challenge_name {
            return Err(match challenge {
                ChallengeNameType::NewPasswordRequired => LoginError::NeedsNewPassword,
                other => LoginError::Challenge(other.as_str().to_owned()),
            });
        }
        let result = out
            .authentication_result
            .ok_or_else(|| LoginError::Cognito {
                message: "InitiateAuth returned neither tokens nor a challenge".into(),
                retryable: false,
            })?;
        let missing = |what: &str| LoginError::Cognito {
            message: format!("InitiateAuth returned no {what}"),
            retryable: false,
        };
        Ok(SessionTokens {
            id_token: BearerToken::new(result.id_token.ok_or_else(|| missing("id token"))?),
            access_token: BearerToken::new(
                result.access_token.ok_or_else(|| missing("access token"))?,
            ),
            refresh_token: result.refresh_token.map(BearerToken::new),
            expires_in: result.expires_in,
        })
    }

    /// One user by email or `sub`, if there is one.
    async fn get(&self, name: &str) -> Result<Option<UserType>, DirectoryError> {
        let out = match self
            .cognito
            .admin_get_user()
            .user_pool_id(&self.pool_id)
            .username(name)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if e.code() == Some("UserNotFoundException") => return Ok(None),
            Err(e) => return Err(cognito_error("AdminGetUser", &e)),
        };
        Ok(Some(
            UserType::builder()
                .set_username(Some(out.username))
                .set_attributes(out.user_attributes)
                .set_user_create_date(out.user_create_date)
                .enabled(out.enabled)
                .set_user_status(out.user_status)
                .build(),
        ))
    }

    /// A user with their role (one AdminListGroupsForUser call).
    async fn describe(
        &self,
        user: UserType,
        tenant_id: TenantId,
    ) -> Result<ConsoleUser, DirectoryError> {
        let username = user.username().unwrap_or_default().to_owned();
        let groups = self
            .cognito
            .admin_list_groups_for_user()
            .user_pool_id(&self.pool_id)
            .username(&username)
            .send()
            .await
            .map_err(|e| cognito_error("AdminListGroupsForUser", &e))?;
        let role = groups
            .groups
            .unwrap_or_default()
            .iter()
            .filter_map(|g| match g.group_name() {
                Some("owner") => Some(Role::Owner),
                Some("agent") => Some(Role::Agent),
                _ => None,
            })
            .max();
        Ok(ConsoleUser {
            user_id: sub_of(&user).unwrap_or(username),
            email: attribute_of(&user, EMAIL_CLAIM).unwrap_or_default(),
            tenant_id,
            role,
            status: user
                .user_status()
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default(),
            enabled: user.enabled(),
            created_at: user
                .user_create_date()
                .and_then(|d| OffsetDateTime::from_unix_timestamp(d.secs()).ok()),
        })
    }

    async fn audit(
        &self,
        tenant: &TenantId,
        action: &str,
        subject: &str,
    ) -> Result<(), DirectoryError> {
        let audit_days = self
            .store
            .require_tenant_stored(tenant)
            .await?
            .retention
            .audit_days;
        let event = AuditEvent::new(
            Some(tenant),
            &self.actor,
            action,
            Some(subject),
            self.store.now(),
            audit_days,
        );
        Ok(self.store.record_audit(&event).await?)
    }
}

/// A Cognito client from the environment's SDK configuration (built only where users are managed).
pub async fn cognito_client_from_env() -> cognito::Client {
    cognito::Client::new(
        &aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await,
    )
}

/// An email address as the pool stores it (trimmed, lower case), or why it is not one. Deliberately
/// simple: one `@`, a non-empty local part, a domain with a dot, no spaces or controls, at most 254
/// characters. Whether it receives mail is not ours to check.
pub fn normalized_email(email: &str) -> Result<String, DirectoryError> {
    let email = email.trim();
    let invalid = || DirectoryError::InvalidEmail(email.chars().take(64).collect());
    if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid());
    }
    let (local, domain) = email.split_once('@').ok_or_else(invalid)?;
    let domain_ok = domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && !domain.contains('@');
    if local.is_empty() || local.len() > 64 || !domain_ok {
        return Err(invalid());
    }
    Ok(email.to_lowercase())
}

fn attribute_of(user: &UserType, name: &str) -> Option<String> {
    user.attributes()
        .iter()
        .find(|a| a.name() == name)
        .and_then(|a| a.value())
        .map(str::to_owned)
}

fn sub_of(user: &UserType) -> Option<String> {
    attribute_of(user, "sub")
}

fn tenant_of(user: &UserType) -> Option<String> {
    attribute_of(user, TENANT_CLAIM)
}

/// Throttling, Cognito's own failures, or no answer at all (a timeout, a dropped connection).
fn is_retryable_code(code: Option<&str>) -> bool {
    matches!(
        code,
        None | Some(
            "TooManyRequestsException" | "InternalErrorException" | "LimitExceededException"
        )
    )
}

fn cognito_error<E, R>(
    operation: &'static str,
    err: &cognito::error::SdkError<E, R>,
) -> DirectoryError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    DirectoryError::Cognito {
        operation,
        message: DisplayErrorContext(err).to_string(),
        retryable: is_retryable_code(err.code()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_checked_and_normalized() {
        assert_eq!(
            normalized_email("  Sam@Kumo.Example ").unwrap(),
            "sam@kumo.example"
        );
        for bad in [
            "",
            "sam",
            "@kumo.example",
            "sam@",
            "sam@kumo",
            "sam@@kumo.example",
            "sam@.kumo.example",
            "sam@kumo..example",
            "s am@kumo.example",
            "sam@kumo.\u{1b}example",
        ] {
            assert!(
                matches!(normalized_email(bad), Err(DirectoryError::InvalidEmail(_))),
                "{bad:?}"
            );
        }
        assert!(normalized_email(&format!("{}@kumo.example", "a".repeat(65))).is_err());
    }

    #[test]
    fn tokens_never_print() {
        let tokens = SessionTokens {
            id_token: BearerToken::new("eyJ.id.token"),
            access_token: BearerToken::new("eyJ.access.token"),
            refresh_token: Some(BearerToken::new("refresh-token")),
            expires_in: 3600,
        };
        let printed = format!("{tokens:?} {:?}", Password::new("hunter2-hunter2"));
        for secret in ["eyJ", "refresh-token", "hunter2"] {
            assert!(!printed.contains(secret), "{printed}");
        }
    }
}
