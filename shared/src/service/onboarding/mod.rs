//! Onboarding: a business connects its own accounts through the platforms' logins, and every connect
//! is checked with the platform before anything is stored (platform-spec 9).
//!
//! Each account is connected all or nothing: its token is checked (`debug_token`: valid, our app, not
//! expired) and used once for real, the account is subscribed to our webhooks and the subscription read
//! back (a WhatsApp number is registered too), and only then is the channel stored. A failure leaves
//! nothing of that account stored, and says which step failed and why. An account that is this
//! tenant's already is reconnected in place (same channel, its conversations kept); one that another
//! tenant holds is refused before the platform is asked to change anything.
//!
//! Disconnect tells the platform (unsubscribes, best effort, recorded in the audit event) before the
//! token is destroyed. The daily token health check is [`health`].

pub mod health;
pub mod links;

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use serde::Serialize;
use time::{Duration, OffsetDateTime};

use crate::config::{Config, ConfigError};
use crate::ids::ChannelId;
use crate::model::{Channel, ChannelStatus, ConnectStateClaim, Platform, Tenant, TenantStatus};
use crate::platform::accounts::graph::{MetaGraph, PAGE_FIELDS, PageGrant};
use crate::platform::accounts::instagram::{self, InstagramLogin};
use crate::platform::accounts::line::{LineChannels, WebhookTest};
use crate::platform::accounts::{AccountApiError, covers};
use crate::secret::{AuthorizationCode, ChannelSecret, PlatformToken, RegistrationPin};
use crate::store::{Store, StoreError};
use crate::vault::{SealContext, TokenVault};

use super::channels::{self, ChannelService, Connected, DisconnectReason, NewChannel};
use super::{Actor, ServiceError};

use links::{ConnectLinks, LinkError, LinkGrant, Login};

/// Why a connect did not happen. What a person reads: never a token, code or secret.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(transparent)]
    Link(#[from] LinkError),
    /// The person cancelled the platform's dialog.
    #[error("the login was cancelled: nothing was connected")]
    Cancelled,
    #[error("this server is not set up for it: {0}")]
    NotConfigured(#[from] ConfigError),
    /// The request is wrong (a malformed id, a tenant that may not connect).
    #[error("{0}")]
    Invalid(String),
    /// The platform refused a step for good: what the business must do differently.
    #[error("{step} failed: {why}")]
    Refused { step: &'static str, why: String },
    /// The platform did not answer or failed: nothing was connected; try again.
    #[error(
        "the platform is not answering ({0}): nothing was connected, try again in a few minutes"
    )]
    Unavailable(AccountApiError),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl ConnectError {
    /// The HTTP status of the page that says it.
    pub fn status(&self) -> u16 {
        match self {
            Self::Link(_) | Self::Invalid(_) | Self::Refused { .. } => 400,
            Self::Cancelled => 200,
            Self::NotConfigured(_) => 503,
            Self::Unavailable(_) => 503,
            Self::Service(ServiceError::Conflict(_)) => 409,
            Self::Service(ServiceError::Invalid(_)) => 400,
            Self::Service(ServiceError::Store(StoreError::NotFound(_))) => 404,
            Self::Service(e) if e.is_retryable() => 503,
            Self::Service(_) => 500,
        }
    }

    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Unavailable(_) => true,
            Self::Service(e) => e.is_retryable(),
            _ => false,
        }
    }
}

impl From<StoreError> for ConnectError {
    fn from(err: StoreError) -> Self {
        Self::Service(err.into())
    }
}

impl From<crate::vault::VaultError> for ConnectError {
    fn from(err: crate::vault::VaultError) -> Self {
        Self::Service(err.into())
    }
}

/// A platform failure as the person reads it: retryable ones are "try again", refusals say what the
/// business must change (by code and subcode).
fn platform_failure(err: AccountApiError) -> ConnectError {
    if err.is_retryable() {
        return ConnectError::Unavailable(err);
    }
    let step = match &err {
        AccountApiError::Refused { call, .. }
        | AccountApiError::Unavailable { call, .. }
        | AccountApiError::Unexpected { call, .. } => *call,
        AccountApiError::InvalidSegment(_) => "building the request",
    };
    ConnectError::Refused {
        step,
        why: explain(&err),
    }
}

fn explain(err: &AccountApiError) -> String {
    use crate::model::ReauthReason::*;
    let advice = match err.reauth_reason() {
        Some(PermissionMissing) => {
            "a permission this needs was not granted: connect again and keep every permission ticked"
        }
        Some(RoleLost) => "the person logging in has no role on this account that allows messaging",
        Some(PasswordChanged | TokenExpired | TokenInvalid | AppRemoved) => {
            "the login is no longer valid: connect again"
        }
        Some(ActionRequired) => {
            "Meta asks the person to log in to facebook.com and fix their account"
        }
        Some(WrongApp) => "the token belongs to another app",
        None => match err {
            AccountApiError::Refused {
                code: Some(100),
                subcode: Some(36007 | 36009),
                ..
            } => "the login code was used or has expired: open the link again",
            AccountApiError::Refused { .. } => "the platform refused it",
            _ => "the platform's answer was not what it should be",
        },
    };
    format!("{advice} ({err})")
}

/// One account a flow connected.
#[derive(Debug, Clone, Serialize)]
pub struct AccountConnected {
    pub platform: Platform,
    pub account_id: String,
    pub name: Option<String>,
    pub channel_id: ChannelId,
    /// It was this tenant's already: same channel, its conversations kept.
    pub reconnected: bool,
}

/// One account a flow could not connect, and why.
#[derive(Debug, Clone, Serialize)]
pub struct AccountFailed {
    pub platform: Platform,
    pub account_id: String,
    pub name: Option<String>,
    pub reason: String,
    /// Trying again later may work (the platform was unavailable).
    pub retryable: bool,
}

/// What a flow did, account by account.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ConnectReport {
    pub connected: Vec<AccountConnected>,
    pub failed: Vec<AccountFailed>,
    /// LINE: LINE's test delivery to our webhook URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_test: Option<WebhookTestResult>,
}

impl ConnectReport {
    /// A flow that connects one account (Instagram Login, Embedded Signup).
    fn of_one(connected: Connected) -> Self {
        Self {
            connected: vec![connected_account(connected)],
            ..Self::default()
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct WebhookTestResult {
    pub success: bool,
    pub status_code: Option<u16>,
    pub reason: String,
}

impl From<WebhookTest> for WebhookTestResult {
    fn from(test: WebhookTest) -> Self {
        Self {
            success: test.success,
            status_code: test.status_code,
            reason: test.reason,
        }
    }
}

/// What the WhatsApp Embedded Signup page posts.
#[derive(Debug)]
pub struct WhatsappSignup {
    pub state: String,
    pub code: AuthorizationCode,
    pub waba_id: String,
    pub phone_number_id: String,
}

/// A Meta account an operator connects with a token they hold.
#[derive(Debug)]
pub struct TokenConnect {
    pub platform: Platform,
    pub account_id: String,
    pub token: PlatformToken,
    pub connected_by: Option<String>,
    /// WhatsApp: the number's WABA. Instagram through Facebook: the Page it is linked to.
    pub parent_account_id: Option<String>,
    /// Instagram: the token is an Instagram-Login token.
    pub instagram_login: bool,
}

/// A LINE channel as the business gives it.
#[derive(Debug)]
pub struct LineConnect {
    pub line_channel_id: String,
    pub secret: ChannelSecret,
    /// A long-lived token; without one, tokens are minted on demand from the id and secret.
    pub token: Option<PlatformToken>,
}

/// The login settings a flow's pages need.
#[derive(Debug, Clone)]
struct LoginSettings {
    dialog_url: String,
    graph_version: String,
    meta_app_id: Option<String>,
    login_config_id: Option<String>,
    whatsapp_config_id: Option<String>,
}

pub struct Onboarding {
    store: Store,
    channels: ChannelService,
    links: Result<ConnectLinks, ConfigError>,
    graph: Result<MetaGraph, ConfigError>,
    instagram: Result<InstagramLogin, ConfigError>,
    line: LineChannels,
    settings: LoginSettings,
    actor: Actor,
}

/// A flow's own configuration problem, kept until a flow needs that part (a LINE-only deployment
/// needs no Meta app).
fn needed<T: Clone>(part: &Result<T, ConfigError>) -> Result<T, ConnectError> {
    part.clone().map_err(ConnectError::NotConfigured)
}

impl Onboarding {
    pub fn new(
        config: &Config,
        store: Store,
        vault: TokenVault,
        http: reqwest::Client,
        actor: Actor,
    ) -> Self {
        let links = config
            .require_connect_state_secret()
            .and_then(|secret| Ok(ConnectLinks::new(secret, config.require_public_base_url()?)));
        Self {
            channels: ChannelService::new(store.clone(), vault, actor),
            store,
            links,
            graph: MetaGraph::new(config, http.clone()),
            instagram: InstagramLogin::new(config, http.clone()),
            line: LineChannels::new(config, http),
            settings: LoginSettings {
                dialog_url: config.meta_dialog_url.clone(),
                graph_version: config.meta_graph_version.clone(),
                meta_app_id: config.meta_app_id.clone(),
                login_config_id: config.meta_login_config_id.clone(),
                whatsapp_config_id: config.meta_whatsapp_config_id.clone(),
            },
            actor,
        }
    }

    fn links(&self) -> Result<ConnectLinks, ConnectError> {
        needed(&self.links)
    }

    /// A connect link for an active tenant.
    pub async fn connect_link(
        &self,
        tenant: &Tenant,
        platforms: &[Platform],
        via_facebook: bool,
    ) -> Result<links::ConnectLink, ConnectError> {
        self.connect_link_as(self.actor, tenant, platforms, via_facebook)
            .await
    }

    /// [`Self::connect_link`] audited as `actor` (a console user).
    pub async fn connect_link_as(
        &self,
        actor: &str,
        tenant: &Tenant,
        platforms: &[Platform],
        via_facebook: bool,
    ) -> Result<links::ConnectLink, ConnectError> {
        require_active(tenant)?;
        let login =
            ConnectLinks::login_for(platforms, via_facebook).map_err(ConnectError::Invalid)?;
        let links = self.links()?;
        // Fail now, not when the business owner opens the link.
        match login {
            Login::Facebook => {
                needed(&self.graph)?;
                self.meta_config_id(
                    self.settings.login_config_id.as_deref(),
                    "META_LOGIN_CONFIG_ID",
                )?;
            }
            Login::WhatsappSignup => {
                needed(&self.graph)?;
                self.meta_config_id(
                    self.settings.whatsapp_config_id.as_deref(),
                    "META_WHATSAPP_CONFIG_ID",
                )?;
            }
            Login::Instagram => {
                needed(&self.instagram)?;
            }
        }
        let link = links.mint(&tenant.tenant_id, platforms, login, self.store.now());
        super::audit(
            &self.store,
            actor,
            tenant,
            "channel.connect_link",
            login.start_path(),
        )
        .await?;
        Ok(link)
    }

    fn meta_config_id<'a>(
        &self,
        value: Option<&'a str>,
        name: &'static str,
    ) -> Result<&'a str, ConnectError> {
        value.ok_or(ConnectError::NotConfigured(ConfigError::Missing {
            name,
            why: crate::config::Why(
                "Facebook Login for Business > Configurations in the Meta App Dashboard",
            ),
        }))
    }

    /// Checks a link's state as its start page is opened (not claimed yet: reopening the start page
    /// before finishing the login is fine).
    pub async fn open_link(&self, state: &str, login: Login) -> Result<LinkGrant, ConnectError> {
        let grant = self.links()?.verify(state, self.store.now())?;
        if grant.login != login {
            return Err(LinkError::Invalid.into());
        }
        let claimed: Option<ConnectStateClaim> = self
            .store
            .get(&crate::keys::connect_state_claim(&grant.nonce))
            .await?;
        if claimed.is_some() {
            return Err(LinkError::Used.into());
        }
        Ok(grant)
    }

    /// Where the link's start page sends the browser: Facebook Login for Business.
    pub fn meta_dialog_url(&self, state: &str) -> Result<String, ConnectError> {
        let links = self.links()?;
        let app_id = self
            .settings
            .meta_app_id
            .as_deref()
            .ok_or(ConnectError::NotConfigured(ConfigError::Missing {
                name: "META_APP_ID",
                why: crate::config::Why("App settings > Basic in the Meta App Dashboard"),
            }))?;
        let config_id = self.meta_config_id(
            self.settings.login_config_id.as_deref(),
            "META_LOGIN_CONFIG_ID",
        )?;
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", app_id)
            .append_pair("redirect_uri", &meta_redirect_uri(&links))
            .append_pair("state", state)
            .append_pair("response_type", "code")
            .append_pair("config_id", config_id)
            .finish();
        Ok(format!(
            "{}/{}/dialog/oauth?{query}",
            self.settings.dialog_url, self.settings.graph_version
        ))
    }

    /// Where the Instagram link's start page sends the browser.
    pub fn instagram_dialog_url(&self, state: &str) -> Result<String, ConnectError> {
        let links = self.links()?;
        Ok(needed(&self.instagram)?.authorize_url(&instagram_redirect_uri(&links), state))
    }

    /// What the WhatsApp Embedded Signup page needs to call `FB.login`.
    pub fn whatsapp_signup_settings(&self) -> Result<(String, String, String), ConnectError> {
        let app_id = self
            .settings
            .meta_app_id
            .clone()
            .ok_or(ConnectError::NotConfigured(ConfigError::Missing {
                name: "META_APP_ID",
                why: crate::config::Why("App settings > Basic in the Meta App Dashboard"),
            }))?;
        let config_id = self
            .meta_config_id(
                self.settings.whatsapp_config_id.as_deref(),
                "META_WHATSAPP_CONFIG_ID",
            )?
            .to_owned();
        Ok((app_id, config_id, self.settings.graph_version.clone()))
    }

    /// Verifies and claims a link's state as its callback arrives: from here on the link is used.
    async fn claim(&self, state: &str, login: Login) -> Result<(LinkGrant, Tenant), ConnectError> {
        let grant = self.links()?.verify(state, self.store.now())?;
        if grant.login != login {
            return Err(LinkError::Invalid.into());
        }
        let claimed = self
            .store
            .claim_connect_state(&ConnectStateClaim {
                nonce: grant.nonce.clone(),
                tenant_id: grant.tenant_id.clone(),
                claimed_at: self.store.now(),
                link_expires_at: grant.expires_at(),
            })
            .await?;
        if !claimed {
            return Err(LinkError::Used.into());
        }
        let tenant = self.store.require_tenant(&grant.tenant_id).await?;
        require_active(&tenant)?;
        Ok((grant, tenant))
    }

    /// A flow that failed before connecting anything, for a reason that may pass: the link may be used
    /// again (its login starts over with a new code).
    async fn release_if_retryable<T>(
        &self,
        grant: &LinkGrant,
        result: Result<T, ConnectError>,
    ) -> Result<T, ConnectError> {
        if let Err(err) = &result
            && err.is_retryable()
        {
            self.store
                .delete(&crate::keys::connect_state_claim(&grant.nonce))
                .await?;
        }
        result
    }

    /// The Facebook Login callback: `error` when the person cancelled, else the code.
    pub async fn finish_meta_login(
        &self,
        state: &str,
        code: Option<AuthorizationCode>,
        error: Option<&str>,
    ) -> Result<ConnectReport, ConnectError> {
        let (grant, tenant) = self.claim(state, Login::Facebook).await?;
        let Some(code) = code.filter(|_| error.is_none()) else {
            return Err(ConnectError::Cancelled);
        };
        let result = self.meta_login(&grant, &tenant, &code).await;
        self.release_if_retryable(&grant, result).await
    }

    async fn meta_login(
        &self,
        grant: &LinkGrant,
        tenant: &Tenant,
        code: &AuthorizationCode,
    ) -> Result<ConnectReport, ConnectError> {
        let graph = needed(&self.graph)?;
        let links = self.links()?;
        let short = graph
            .exchange_code(code, Some(&meta_redirect_uri(&links)))
            .await
            .map_err(platform_failure)?;
        let long = graph
            .long_lived_user_token(&short.token)
            .await
            .map_err(platform_failure)?;
        let info = self.checked_token(&graph, &long.token).await?;
        let pages = graph
            .pages(&long.token, &info.targets_of("pages_show_list"))
            .await
            .map_err(platform_failure)?;
        if pages.is_empty() {
            return Err(ConnectError::Refused {
                step: "choosing Pages",
                why: "the login granted no Page: connect again and choose at least one Page".into(),
            });
        }
        let mut report = ConnectReport::default();
        for page in pages {
            self.connect_page(
                &graph,
                grant,
                tenant,
                &page,
                info.user_id.as_deref(),
                &mut report,
            )
            .await?;
        }
        Ok(report)
    }

    /// `debug_token`: the token is valid, ours and not expired.
    async fn checked_token(
        &self,
        graph: &MetaGraph,
        token: &PlatformToken,
    ) -> Result<crate::platform::accounts::graph::TokenInfo, ConnectError> {
        let info = graph.debug_token(token).await.map_err(platform_failure)?;
        let step = "checking the token";
        if !info.is_valid {
            return Err(ConnectError::Refused {
                step,
                why: "Meta says the token is not valid: connect again".into(),
            });
        }
        if info.app_id.as_deref() != Some(graph.app_id()) {
            return Err(ConnectError::Refused {
                step,
                why: "the token was issued to another app".into(),
            });
        }
        if info.expires_at.is_some_and(|at| at <= self.store.now()) {
            return Err(ConnectError::Refused {
                step,
                why: "the token has expired".into(),
            });
        }
        Ok(info)
    }

    /// One Page of a Facebook login: its Messenger channel and, when the link asked, the Instagram
    /// account linked to it. The Page is subscribed once for both.
    async fn connect_page(
        &self,
        graph: &MetaGraph,
        grant: &LinkGrant,
        tenant: &Tenant,
        page: &PageGrant,
        connected_by: Option<&str>,
        report: &mut ConnectReport,
    ) -> Result<(), ConnectError> {
        let mut wanted = Vec::new();
        if grant.wants(Platform::Messenger) {
            wanted.push((
                Platform::Messenger,
                page.id.clone(),
                Some(page.name.clone()),
                None,
            ));
        }
        if grant.wants(Platform::Instagram) {
            match &page.instagram_account {
                Some(ig) => {
                    wanted.push((Platform::Instagram, ig.clone(), None, Some(page.id.clone())))
                }
                None if !grant.wants(Platform::Messenger) => report.failed.push(AccountFailed {
                    platform: Platform::Instagram,
                    account_id: page.id.clone(),
                    name: Some(page.name.clone()),
                    reason: "no Instagram professional account is linked to this Page".into(),
                    retryable: false,
                }),
                None => {}
            }
        }
        let fail =
            |report: &mut ConnectReport, platform, account_id: &str, name, err: ConnectError| {
                report.failed.push(AccountFailed {
                    platform,
                    account_id: account_id.to_owned(),
                    name,
                    retryable: err.is_retryable(),
                    reason: err.to_string(),
                })
            };
        let Some(token) = &page.token else {
            for (platform, account_id, name, _) in wanted {
                fail(
                    report,
                    platform,
                    &account_id,
                    name,
                    ConnectError::Refused {
                        step: "reading the Page token",
                        why: "the login did not grant this Page's messaging permissions".into(),
                    },
                );
            }
            return Ok(());
        };
        let mut claimable = Vec::new();
        for (platform, account_id, name, parent) in wanted {
            match self.channels.claimable(tenant, platform, &account_id).await {
                Ok(_) => claimable.push((platform, account_id, name, parent)),
                Err(ServiceError::Conflict(why)) => fail(
                    report,
                    platform,
                    &account_id,
                    name,
                    ConnectError::Invalid(why),
                ),
                Err(other) => return Err(other.into()),
            }
        }
        if claimable.is_empty() {
            return Ok(());
        }
        if let Err(err) = self.subscribe_page(graph, &page.id, token).await {
            for (platform, account_id, name, _) in claimable {
                fail(report, platform, &account_id, name, clone_failure(&err));
            }
            return Ok(());
        }
        for (platform, account_id, name, parent) in claimable {
            let mut new = NewChannel::with_token(platform, account_id.clone(), token.clone());
            new.connected_by = connected_by.map(str::to_owned);
            new.name = name.clone();
            new.parent_account_id = parent;
            match self.channels.connect(tenant, new).await {
                Ok(connected) => report.connected.push(connected_account(connected)),
                Err(ServiceError::Conflict(why) | ServiceError::Invalid(why)) => fail(
                    report,
                    platform,
                    &account_id,
                    name,
                    ConnectError::Invalid(why),
                ),
                Err(other) => return Err(other.into()),
            }
        }
        Ok(())
    }

    /// Subscribes a Page to our webhook fields and reads the subscription back: a subscription that did
    /// not take is a failure, not a channel that never hears anything.
    async fn subscribe_page(
        &self,
        graph: &MetaGraph,
        page_id: &str,
        token: &PlatformToken,
    ) -> Result<(), ConnectError> {
        graph
            .subscribe(page_id, token, PAGE_FIELDS)
            .await
            .map_err(platform_failure)?;
        let subscription = graph
            .subscription(page_id, token)
            .await
            .map_err(platform_failure)?;
        if covers(subscription.as_deref(), PAGE_FIELDS) {
            Ok(())
        } else {
            Err(ConnectError::Refused {
                step: "subscribing the Page to our webhooks",
                why: "Meta did not keep the subscription: check the app's webhook fields (Messenger product settings)".into(),
            })
        }
    }

    /// The Instagram Login callback.
    pub async fn finish_instagram_login(
        &self,
        state: &str,
        code: Option<AuthorizationCode>,
        error: Option<&str>,
    ) -> Result<ConnectReport, ConnectError> {
        let (grant, tenant) = self.claim(state, Login::Instagram).await?;
        let Some(code) = code.filter(|_| error.is_none()) else {
            return Err(ConnectError::Cancelled);
        };
        let result = self.instagram_login(&tenant, &code).await;
        self.release_if_retryable(&grant, result).await
    }

    async fn instagram_login(
        &self,
        tenant: &Tenant,
        code: &AuthorizationCode,
    ) -> Result<ConnectReport, ConnectError> {
        let ig = needed(&self.instagram)?;
        let links = self.links()?;
        let (short, _) = ig
            .exchange_code(code, &instagram_redirect_uri(&links))
            .await
            .map_err(platform_failure)?;
        let long = ig.long_lived(&short).await.map_err(platform_failure)?;
        let connected = self
            .connect_instagram_login(&ig, tenant, long.token, long.expires_in)
            .await?;
        Ok(ConnectReport::of_one(connected))
    }

    async fn connect_instagram_login(
        &self,
        ig: &InstagramLogin,
        tenant: &Tenant,
        token: PlatformToken,
        expires_in: Option<u64>,
    ) -> Result<Connected, ConnectError> {
        let account = ig.account(&token).await.map_err(platform_failure)?;
        self.channels
            .claimable(tenant, Platform::Instagram, &account.user_id)
            .await?;
        ig.subscribe(&token).await.map_err(platform_failure)?;
        let subscription = ig.subscription(&token).await.map_err(platform_failure)?;
        if !covers(subscription.as_deref(), instagram::FIELDS) {
            return Err(ConnectError::Refused {
                step: "subscribing the Instagram account to our webhooks",
                why: "Meta did not keep the subscription: the app must be Live, with the Instagram webhook fields set".into(),
            });
        }
        let mut new = NewChannel::with_token(Platform::Instagram, account.user_id, token);
        new.instagram_login = true;
        new.name = Some(account.username);
        new.token_expires_at = expires_in.map(|secs| {
            self.store
                .now()
                .saturating_add(Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX)))
        });
        Ok(self.channels.connect(tenant, new).await?)
    }

    /// WhatsApp Embedded Signup: the code is exchanged at once (it lives 30 seconds).
    pub async fn finish_whatsapp_signup(
        &self,
        signup: WhatsappSignup,
    ) -> Result<ConnectReport, ConnectError> {
        for (what, id) in [
            ("waba_id", &signup.waba_id),
            ("phone_number_id", &signup.phone_number_id),
        ] {
            if !crate::platform::account_id_is_valid(Platform::Whatsapp, id) {
                return Err(ConnectError::Invalid(format!(
                    "{what} must be a Meta id (digits only)"
                )));
            }
        }
        let (grant, tenant) = self.claim(&signup.state, Login::WhatsappSignup).await?;
        let result = self.whatsapp_signup(&tenant, &signup).await;
        self.release_if_retryable(&grant, result).await
    }

    async fn whatsapp_signup(
        &self,
        tenant: &Tenant,
        signup: &WhatsappSignup,
    ) -> Result<ConnectReport, ConnectError> {
        let graph = needed(&self.graph)?;
        let issued = graph
            .exchange_code(&signup.code, None)
            .await
            .map_err(platform_failure)?;
        self.checked_token(&graph, &issued.token).await?;
        let connected = self
            .connect_whatsapp(
                &graph,
                tenant,
                &signup.waba_id,
                &signup.phone_number_id,
                issued.token,
                None,
            )
            .await?;
        Ok(ConnectReport::of_one(connected))
    }

    /// Proves access with the WABA's numbers (never by scope names), subscribes the WABA, registers
    /// the number with a PIN kept sealed, then stores the channel.
    async fn connect_whatsapp(
        &self,
        graph: &MetaGraph,
        tenant: &Tenant,
        waba_id: &str,
        phone_number_id: &str,
        token: PlatformToken,
        connected_by: Option<String>,
    ) -> Result<Connected, ConnectError> {
        let numbers = graph
            .phone_numbers(waba_id, &token)
            .await
            .map_err(platform_failure)?;
        let Some(number) = numbers.into_iter().find(|n| n.id == phone_number_id) else {
            return Err(ConnectError::Refused {
                step: "finding the number",
                why: "this number is not in the WhatsApp Business Account the login granted".into(),
            });
        };
        let existing = self
            .channels
            .claimable(tenant, Platform::Whatsapp, phone_number_id)
            .await?;
        graph
            .subscribe(waba_id, &token, &[])
            .await
            .map_err(platform_failure)?;
        if graph
            .subscription(waba_id, &token)
            .await
            .map_err(platform_failure)?
            .is_none()
        {
            return Err(ConnectError::Refused {
                step: "subscribing the WhatsApp Business Account to our webhooks",
                why: "Meta did not keep the subscription".into(),
            });
        }
        // A reconnect registers with the PIN the number already has.
        let pin = match existing
            .as_ref()
            .and_then(|c| c.credentials.as_ref().map(|w| (c, w)))
        {
            Some((channel, wrapped)) => {
                self.channels
                    .vault()
                    .open_registration_pin(
                        &SealContext::new(&channel.tenant_id, &channel.channel_id),
                        wrapped,
                    )
                    .await?
            }
            None => None,
        }
        .unwrap_or_else(new_pin);
        graph
            .register_phone(phone_number_id, &token, &pin)
            .await
            .map_err(platform_failure)?;
        let mut new = NewChannel::with_token(Platform::Whatsapp, phone_number_id, token);
        new.parent_account_id = Some(waba_id.to_owned());
        new.name = Some(number.verified_name).filter(|n| !n.is_empty());
        new.registration_pin = Some(pin);
        new.connected_by = connected_by;
        Ok(self.channels.connect(tenant, new).await?)
    }

    /// An operator connects a Meta account with a token they hold: checked like a login's.
    pub async fn connect_with_token(
        &self,
        tenant: &Tenant,
        request: TokenConnect,
    ) -> Result<Connected, ConnectError> {
        require_active(tenant)?;
        if !crate::platform::account_id_is_valid(request.platform, &request.account_id) {
            return Err(ConnectError::Invalid(format!(
                "not a {} account id: expected digits only",
                request.platform
            )));
        }
        if request.instagram_login {
            if request.platform != Platform::Instagram {
                return Err(ConnectError::Invalid(
                    "Instagram Login tokens are for Instagram accounts".into(),
                ));
            }
            let ig = needed(&self.instagram)?;
            let account = ig.account(&request.token).await.map_err(platform_failure)?;
            if account.user_id != request.account_id {
                return Err(ConnectError::Refused {
                    step: "checking the token",
                    why: "the token belongs to another Instagram account".into(),
                });
            }
            // A token handed over by hand is treated as fresh: the health check refreshes it in time.
            return self
                .connect_instagram_login(&ig, tenant, request.token, Some(60 * 24 * 3600))
                .await;
        }
        let graph = needed(&self.graph)?;
        let info = self.checked_token(&graph, &request.token).await?;
        let connected_by = request.connected_by.or(info.user_id);
        match request.platform {
            Platform::Messenger => {
                graph
                    .read_account(&request.account_id, &request.token)
                    .await
                    .map_err(platform_failure)?;
                self.channels
                    .claimable(tenant, Platform::Messenger, &request.account_id)
                    .await?;
                self.subscribe_page(&graph, &request.account_id, &request.token)
                    .await?;
                let mut new =
                    NewChannel::with_token(Platform::Messenger, request.account_id, request.token);
                new.connected_by = connected_by;
                Ok(self.channels.connect(tenant, new).await?)
            }
            Platform::Instagram => {
                let page = request.parent_account_id.ok_or_else(|| {
                    ConnectError::Invalid(
                        "an Instagram account connected through Facebook needs the Page it is linked to (--page)".into(),
                    )
                })?;
                graph
                    .read_account(&request.account_id, &request.token)
                    .await
                    .map_err(platform_failure)?;
                self.channels
                    .claimable(tenant, Platform::Instagram, &request.account_id)
                    .await?;
                self.subscribe_page(&graph, &page, &request.token).await?;
                let mut new =
                    NewChannel::with_token(Platform::Instagram, request.account_id, request.token);
                new.connected_by = connected_by;
                new.parent_account_id = Some(page);
                Ok(self.channels.connect(tenant, new).await?)
            }
            Platform::Whatsapp => {
                let waba = request.parent_account_id.ok_or_else(|| {
                    ConnectError::Invalid(
                        "a WhatsApp number needs its WhatsApp Business Account id (--waba)".into(),
                    )
                })?;
                self.connect_whatsapp(
                    &graph,
                    tenant,
                    &waba,
                    &request.account_id,
                    request.token,
                    connected_by,
                )
                .await
            }
            Platform::Line => Err(ConnectError::Invalid(
                "LINE channels connect with their channel id and secret".into(),
            )),
        }
    }

    /// LINE: the bot's id from `/v2/bot/info`, our webhook URL set on the channel, then LINE's test
    /// delivery, reported (it reaches the channel just stored).
    pub async fn connect_line(
        &self,
        tenant: &Tenant,
        request: LineConnect,
    ) -> Result<(Connected, ConnectReport), ConnectError> {
        require_active(tenant)?;
        if request.line_channel_id.is_empty()
            || request.line_channel_id.len() > 32
            || !request.line_channel_id.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(ConnectError::Invalid(
                "the LINE channel id is the number on the channel's Basic settings".into(),
            ));
        }
        let base = self.links()?.public_base_url().to_owned();
        // Minting proves the id and secret belong together, whether or not a token was given.
        let minted = self
            .line
            .mint_token(&request.line_channel_id, &request.secret)
            .await
            .map_err(|err| match err {
                AccountApiError::Refused { status: 400, .. } => ConnectError::Refused {
                    step: "checking the channel id and secret",
                    why: "LINE does not accept this channel id and secret together".into(),
                },
                other => platform_failure(other),
            })?;
        let token = request.token.clone().unwrap_or(minted.token);
        let bot = self.line.bot_info(&token).await.map_err(platform_failure)?;
        self.channels
            .claimable(tenant, Platform::Line, &bot.user_id)
            .await?;
        self.line
            .set_webhook_endpoint(&token, &format!("{base}/webhooks/line"))
            .await
            .map_err(platform_failure)?;
        let mut new = NewChannel {
            token: request.token,
            secret: Some(request.secret),
            line_channel_id: Some(request.line_channel_id),
            name: Some(bot.display_name).filter(|n| !n.is_empty()),
            ..NewChannel::with_token(Platform::Line, bot.user_id, token.clone())
        };
        if new.token.is_none() {
            new.token_expires_at = None;
        }
        let connected = self.channels.connect(tenant, new).await?;
        let test = self.line.test_webhook(&token).await;
        let report = ConnectReport {
            webhook_test: Some(match test {
                Ok(test) => test.into(),
                Err(err) => WebhookTestResult {
                    success: false,
                    status_code: None,
                    reason: err.to_string(),
                },
            }),
            ..ConnectReport::of_one(connected.clone())
        };
        Ok((connected, report))
    }

    /// Disconnects a channel at the business's request: the platform is told first (its webhook
    /// subscription deleted, best effort, the outcome in the audit event), then the token is destroyed.
    pub async fn disconnect(
        &self,
        tenant: &Tenant,
        channel_id: &ChannelId,
    ) -> Result<Option<Channel>, ConnectError> {
        self.disconnect_as(self.actor, tenant, channel_id).await
    }

    /// [`Self::disconnect`] audited as `actor` (a console user).
    pub async fn disconnect_as(
        &self,
        actor: &str,
        tenant: &Tenant,
        channel_id: &ChannelId,
    ) -> Result<Option<Channel>, ConnectError> {
        let channel = self
            .store
            .require_channel(&tenant.tenant_id, channel_id)
            .await?;
        let mut counts = Vec::new();
        if channel.status != ChannelStatus::Disconnected {
            match self.unsubscribe(tenant, &channel).await {
                Unsubscribed::Done => counts.push(("platform_unsubscribed", 1)),
                Unsubscribed::Shared | Unsubscribed::NotApplicable => {}
                Unsubscribed::Failed(code) => {
                    counts.push(("platform_unsubscribe_failed", 1));
                    if let Some(code) = code.and_then(|c| u64::try_from(c).ok()) {
                        counts.push(("platform_error_code", code));
                    }
                }
            }
        }
        Ok(channels::disconnect_with_counts(
            &self.store,
            actor,
            tenant,
            channel_id,
            DisconnectReason::Requested,
            &counts,
        )
        .await?)
    }

    async fn unsubscribe(&self, tenant: &Tenant, channel: &Channel) -> Unsubscribed {
        let Some(wrapped) = &channel.credentials else {
            return Unsubscribed::NotApplicable;
        };
        let context = SealContext::new(&channel.tenant_id, &channel.channel_id);
        let token = match self.channels.vault().open_token(&context, wrapped).await {
            Ok(Some(token)) => token,
            Ok(None) => return Unsubscribed::NotApplicable,
            Err(_) => return Unsubscribed::Failed(None),
        };
        let result = match (channel.platform, channel.instagram_login) {
            (Platform::Line, _) => return Unsubscribed::NotApplicable,
            (Platform::Instagram, true) => match &self.instagram {
                Ok(ig) => ig.unsubscribe(&token).await,
                Err(_) => return Unsubscribed::Failed(None),
            },
            _ => {
                let subscribed = channel.subscribed_account();
                // A Page or WABA that still carries another live channel of ours keeps its subscription.
                let Ok(others) = self.store.channels_of_tenant(&tenant.tenant_id).await else {
                    // Unknown whether another channel still needs it: leave the subscription.
                    return Unsubscribed::Failed(None);
                };
                let shared = others.iter().any(|other| {
                    other.channel_id != channel.channel_id
                        && other.status != ChannelStatus::Disconnected
                        && !other.instagram_login
                        && other.subscribed_account() == subscribed
                });
                if shared {
                    return Unsubscribed::Shared;
                }
                match &self.graph {
                    Ok(graph) => graph.unsubscribe(subscribed, &token).await,
                    Err(_) => return Unsubscribed::Failed(None),
                }
            }
        };
        match result {
            Ok(()) => Unsubscribed::Done,
            Err(AccountApiError::Refused { code, .. }) => Unsubscribed::Failed(code),
            Err(_) => Unsubscribed::Failed(None),
        }
    }
}

enum Unsubscribed {
    Done,
    /// Another live channel shares the subscription (a Page's Messenger and Instagram channels).
    Shared,
    /// LINE, or no token: nothing to tell the platform.
    NotApplicable,
    Failed(Option<i64>),
}

fn require_active(tenant: &Tenant) -> Result<(), ConnectError> {
    if tenant.status == TenantStatus::Active {
        Ok(())
    } else {
        Err(ConnectError::Invalid(format!(
            "tenant {} is {}: it cannot connect channels",
            tenant.tenant_id, tenant.status
        )))
    }
}

fn meta_redirect_uri(links: &ConnectLinks) -> String {
    format!("{}/connect/meta/callback", links.public_base_url())
}

fn instagram_redirect_uri(links: &ConnectLinks) -> String {
    format!("{}/connect/instagram/callback", links.public_base_url())
}

fn connected_account(connected: Connected) -> AccountConnected {
    AccountConnected {
        platform: connected.channel.platform,
        account_id: connected.channel.account_id,
        name: connected.channel.name,
        channel_id: connected.channel.channel_id,
        reconnected: connected.reconnected,
    }
}

/// One failure reported for each account it concerns.
fn clone_failure(err: &ConnectError) -> ConnectError {
    match err {
        ConnectError::Refused { step, why } => ConnectError::Refused {
            step,
            why: why.clone(),
        },
        ConnectError::Unavailable(e) => ConnectError::Unavailable(e.clone()),
        other => ConnectError::Invalid(other.to_string()),
    }
}

/// Six random digits, uniformly.
fn new_pin() -> RegistrationPin {
    let rng = SystemRandom::new();
    loop {
        let mut bytes = [0u8; 4];
        rng.fill(&mut bytes)
            .expect("the system random generator works");
        let n = u32::from_le_bytes(bytes);
        // Rejection sampling: the top partial range would favour low PINs.
        if n < u32::MAX - u32::MAX % 1_000_000 {
            return RegistrationPin::new(format!("{:06}", n % 1_000_000));
        }
    }
}

/// When an Instagram-Login token should be refreshed: at least a day old (Meta's rule) and expiring
/// within 15 days, so a daily check refreshes it about 45 days into its 60.
pub fn instagram_token_due(channel: &Channel, now: OffsetDateTime) -> bool {
    let old_enough = channel
        .token_issued_at
        .is_some_and(|issued| now - issued >= Duration::hours(24));
    let expiring = channel
        .token_expires_at
        .is_some_and(|expires| expires - now <= Duration::days(15));
    channel.instagram_login && old_enough && expiring
}
