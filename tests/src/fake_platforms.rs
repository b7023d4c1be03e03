//! Strict fakes of the platforms a business connects through (issue 14): the Graph API
//! (graph.facebook.com), Instagram Login (api.instagram.com and graph.instagram.com) and LINE
//! (api.line.me), each on its own loopback port so a client under test only needs configurable base URLs.
//!
//! They share one [`World`]: Facebook users and their Pages, WABAs and their numbers, Instagram
//! professional accounts, LINE bots; the codes the platforms' dialogs would hand a browser; every token
//! minted, with its kind, owner, issue time and expiry on the fake's own clock. The fakes are as strict as
//! the real platforms on what onboarding depends on — a code is single use and bound to its
//! `redirect_uri`, every Graph call with a token needs the right `appsecret_proof`, a Page subscription
//! needs that Page's token, an Instagram token can be refreshed only once it is a day old — and answer
//! with the platforms' error shapes and codes (platform-spec sections 3.4, 9, and 9.6), so the client's
//! classification by code and subcode is what gets tested.
//!
//! Test-side helpers (`add_*`, `*_code`, `*_token`) panic on a misuse of the world (an unknown user…);
//! request input never panics: malformed input gets the platform's 400.

use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use crate::fake_http::{FakeHttp, Recorded, Reply};

/// An app's id and secret: the Meta app (Graph, Embedded Signup) or the Instagram Login app.
#[derive(Debug, Clone)]
pub struct AppFacts {
    pub app_id: String,
    pub app_secret: String,
}

/// A message send a fake accepted.
#[derive(Debug, Clone)]
pub struct SentMessage {
    /// `graph`, `instagram_graph` or `line`.
    pub host: String,
    /// The sending account: Page id, phone number id, Instagram user id, or LINE bot user id.
    pub account_id: String,
    pub path: String,
    pub body: Value,
}

/// One `ig_refresh_token` call the fake honoured.
#[derive(Debug, Clone)]
pub struct InstagramRefresh {
    pub ig_user_id: String,
    pub at: OffsetDateTime,
    pub old_token: String,
    pub new_token: String,
}

/// The webhook fields a Page may subscribe to (`POST /{page-id}/subscribed_apps`).
pub const PAGE_WEBHOOK_FIELDS: &[&str] = &[
    "messages",
    "message_echoes",
    "messaging_postbacks",
    "message_reactions",
    "message_reads",
    "message_deliveries",
    "messaging_referrals",
    "messaging_handovers",
    "standby",
    "messaging_optins",
    "messaging_optouts",
    "messaging_account_linking",
    "messaging_policy_enforcement",
    "message_edits",
    "messaging_customer_information",
    "response_feedback",
    "feed",
    "inbox_labels",
];

/// The webhook fields an Instagram Login account may subscribe to (`POST /me/subscribed_apps`).
pub const INSTAGRAM_WEBHOOK_FIELDS: &[&str] = &[
    "messages",
    "message_reactions",
    "messaging_seen",
    "messaging_postbacks",
    "messaging_referral",
    "messaging_optins",
    "messaging_handover",
    "message_edit",
    "standby",
    "comments",
    "live_comments",
    "mentions",
];

/// The permissions of a Facebook Login for Business user token (and of the Page tokens minted from it).
pub const LOGIN_SCOPES: &[&str] = &[
    "pages_show_list",
    "pages_manage_metadata",
    "pages_messaging",
    "business_management",
    "instagram_basic",
    "instagram_manage_messages",
];

/// The permissions of an Embedded Signup business token.
pub const WHATSAPP_SCOPES: &[&str] = &[
    "whatsapp_business_management",
    "whatsapp_business_messaging",
];

/// The permissions an Instagram Login token reports.
pub const INSTAGRAM_PERMISSIONS: &[&str] = &[
    "instagram_business_basic",
    "instagram_business_manage_messages",
];

const LOGIN_CODE_LIFETIME: Duration = Duration::minutes(10);
const SIGNUP_CODE_LIFETIME: Duration = Duration::seconds(30);
const INSTAGRAM_CODE_LIFETIME: Duration = Duration::hours(1);
const SHORT_USER_TOKEN: Duration = Duration::hours(1);
const LONG_USER_TOKEN_SECONDS: i64 = 5_183_944;
const SHORT_INSTAGRAM_TOKEN: Duration = Duration::hours(1);
const LONG_INSTAGRAM_TOKEN_SECONDS: i64 = 5_184_000;
const INSTAGRAM_REFRESH_MIN_AGE: Duration = Duration::hours(24);
const LINE_STATELESS_SECONDS: i64 = 900;
const DATA_ACCESS_LIFETIME: Duration = Duration::days(90);
const APP_NAME: &str = "Inbox";

/// The four fake hosts and the world behind them.
pub struct FakePlatforms {
    pub graph: FakeHttp,
    pub instagram_api: FakeHttp,
    pub instagram_graph: FakeHttp,
    pub line: FakeHttp,
    world: Arc<Mutex<World>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Host {
    Graph,
    InstagramApi,
    InstagramGraph,
    Line,
}

impl Host {
    fn name(self) -> &'static str {
        match self {
            Host::Graph => "graph",
            Host::InstagramApi => "instagram_api",
            Host::InstagramGraph => "instagram_graph",
            Host::Line => "line",
        }
    }
}

impl FakePlatforms {
    /// Starts the four hosts; the clock starts at [`crate::TEST_START`] (2026-11-02T09:00Z).
    pub async fn start(meta: AppFacts, instagram: AppFacts) -> Self {
        let world = Arc::new(Mutex::new(World::new(meta, instagram)));
        let serve = |host: Host| {
            let world = world.clone();
            FakeHttp::start(move |request: &Recorded| lock(&world).handle(host, request))
        };
        let graph = serve(Host::Graph).await;
        let instagram_api = serve(Host::InstagramApi).await;
        let instagram_graph = serve(Host::InstagramGraph).await;
        let line = serve(Host::Line).await;
        lock(&world).graph_url = graph.url();
        Self {
            graph,
            instagram_api,
            instagram_graph,
            line,
            world,
        }
    }

    pub fn graph_url(&self) -> String {
        self.graph.url()
    }

    pub fn instagram_api_url(&self) -> String {
        self.instagram_api.url()
    }

    pub fn instagram_graph_url(&self) -> String {
        self.instagram_graph.url()
    }

    pub fn line_url(&self) -> String {
        self.line.url()
    }

    fn world(&self) -> MutexGuard<'_, World> {
        lock(&self.world)
    }

    /// Sets the fake's clock, which decides every code's and token's age and expiry.
    pub fn set_now(&self, at: OffsetDateTime) {
        self.world().now = at;
    }

    pub fn now(&self) -> OffsetDateTime {
        self.world().now
    }

    // ----- the world -----

    pub fn add_facebook_user(&self, user_id: &str) {
        let mut world = self.world();
        if !world.facebook_users.iter().any(|u| u == user_id) {
            world.facebook_users.push(user_id.to_owned());
        }
    }

    /// A Page `user_id` has a role on. Adding the same Page for a second user gives it a second admin.
    /// Pages `in_business_portfolio` are left out of `/me/accounts` (the real platform's pitfall) but are
    /// reachable by id and listed in `debug_token`'s granular scopes.
    pub fn add_page(
        &self,
        user_id: &str,
        page_id: &str,
        name: &str,
        instagram_account: Option<&str>,
        in_business_portfolio: bool,
    ) {
        let mut world = self.world();
        world.expect_user(user_id);
        if let Some(page) = world.pages.iter_mut().find(|p| p.id == page_id) {
            if !page.users.iter().any(|u| u == user_id) {
                page.users.push(user_id.to_owned());
            }
            return;
        }
        world.pages.push(Page {
            id: page_id.to_owned(),
            name: name.to_owned(),
            users: vec![user_id.to_owned()],
            instagram_account: instagram_account.map(str::to_owned),
            in_business_portfolio,
            subscribed_fields: None,
        });
    }

    /// A WABA with a phone number; call again with the same WABA to give it another number.
    pub fn add_waba(
        &self,
        waba_id: &str,
        phone_number_id: &str,
        display_phone_number: &str,
        verified_name: &str,
    ) {
        let mut world = self.world();
        let phone = Phone {
            id: phone_number_id.to_owned(),
            display_phone_number: display_phone_number.to_owned(),
            verified_name: verified_name.to_owned(),
            pin: None,
        };
        match world.wabas.iter_mut().find(|w| w.id == waba_id) {
            Some(waba) => waba.phones.push(phone),
            None => world.wabas.push(Waba {
                id: waba_id.to_owned(),
                phones: vec![phone],
                subscribed: false,
            }),
        }
    }

    /// An Instagram professional account (`ig_user_id` is its `user_id`, the webhook `entry.id`; its
    /// app-scoped `id` differs, as on the real platform).
    pub fn add_instagram_user(&self, ig_user_id: &str, username: &str) {
        let mut world = self.world();
        let app_scoped_id = format!("2{}", digits(16));
        world.instagram_users.push(InstagramUser {
            user_id: ig_user_id.to_owned(),
            app_scoped_id,
            username: username.to_owned(),
            subscribed_fields: None,
        });
    }

    /// A LINE Messaging API channel whose bot is `bot_user_id` (the webhook `destination`), with the
    /// long-lived token its console would show.
    pub fn add_line_bot(
        &self,
        channel_id: &str,
        channel_secret: &str,
        bot_user_id: &str,
        long_lived_token: &str,
    ) {
        let mut world = self.world();
        world.line_bots.push(LineBot {
            channel_id: channel_id.to_owned(),
            channel_secret: channel_secret.to_owned(),
            bot_user_id: bot_user_id.to_owned(),
            endpoint: None,
            webhook_test_ok: true,
        });
        let now = world.now;
        world.tokens.push(Token {
            value: long_lived_token.to_owned(),
            kind: TokenKind::LineLongLived {
                channel: channel_id.to_owned(),
            },
            subjects: vec![channel_id.to_owned(), bot_user_id.to_owned()],
            issued_at: now,
            expires_at: None,
            revoked: None,
        });
    }

    // ----- what the dialogs hand the browser -----

    /// A Facebook Login for Business code: single use, 10 minutes, exchanged with this `redirect_uri`.
    pub fn meta_login_code(&self, user_id: &str, redirect_uri: &str) -> String {
        let mut world = self.world();
        world.expect_user(user_id);
        world.new_code(
            Grant::MetaLogin {
                user: user_id.to_owned(),
                redirect_uri: redirect_uri.to_owned(),
            },
            LOGIN_CODE_LIFETIME,
        )
    }

    /// An Embedded Signup code: single use, valid 30 seconds, exchanged without `redirect_uri`.
    pub fn whatsapp_signup_code(&self, user_id: &str, waba_id: &str) -> String {
        let mut world = self.world();
        world.expect_user(user_id);
        assert!(
            world.wabas.iter().any(|w| w.id == waba_id),
            "fake platforms: unknown WABA {waba_id}; add_waba first"
        );
        world.new_code(
            Grant::WhatsApp {
                user: user_id.to_owned(),
                waba: waba_id.to_owned(),
            },
            SIGNUP_CODE_LIFETIME,
        )
    }

    /// An Instagram Login code: single use, one hour, exchanged with this `redirect_uri`.
    pub fn instagram_login_code(&self, ig_user_id: &str, redirect_uri: &str) -> String {
        let mut world = self.world();
        world.expect_instagram_user(ig_user_id);
        world.new_code(
            Grant::Instagram {
                ig_user: ig_user_id.to_owned(),
                redirect_uri: redirect_uri.to_owned(),
            },
            INSTAGRAM_CODE_LIFETIME,
        )
    }

    // ----- tokens for tests that start from a connected channel -----

    /// A Page token as a long-lived user login would give it (never expires).
    pub fn page_token(&self, user_id: &str, page_id: &str) -> String {
        let mut world = self.world();
        world.expect_user(user_id);
        assert!(
            world
                .pages
                .iter()
                .any(|p| p.id == page_id && p.users.iter().any(|u| u == user_id)),
            "fake platforms: {user_id} has no Page {page_id}"
        );
        let now = world.now;
        let parent = world.mint(
            TokenKind::FacebookUser {
                user: user_id.to_owned(),
                long_lived: true,
            },
            vec![user_id.to_owned()],
            now + Duration::seconds(LONG_USER_TOKEN_SECONDS),
        );
        world.page_token_for(page_id, &parent)
    }

    /// An Embedded Signup business token for `waba_id` (never expires).
    pub fn business_token(&self, user_id: &str, waba_id: &str) -> String {
        let mut world = self.world();
        world.expect_user(user_id);
        world.mint_business(user_id, waba_id).value
    }

    /// A long-lived (60-day) Instagram Login token issued now.
    pub fn instagram_token(&self, ig_user_id: &str) -> String {
        let mut world = self.world();
        world.expect_instagram_user(ig_user_id);
        world.mint_instagram_long(ig_user_id).value
    }

    // ----- faults and changes in the world -----

    /// The next request on any host whose method is `method` and whose path ends with `path_suffix`
    /// gets a Graph-style error (before any other check). `code` defaults to 1 (unknown error).
    pub fn fail_next(
        &self,
        method: &str,
        path_suffix: &str,
        status: u16,
        code: Option<i64>,
        subcode: Option<i64>,
    ) {
        self.world().failures.push(Failure {
            method: method.to_owned(),
            path_suffix: path_suffix.to_owned(),
            status,
            code,
            subcode,
        });
    }

    /// Revokes every token existing now that belongs to `account_or_user_id` (a Facebook user's revokes
    /// their Page and business tokens too): they fail with 190/`subcode`, `debug_token` says
    /// `is_valid: false`, LINE answers 401. Tokens minted later (a new login) work.
    pub fn revoke_tokens_of(&self, account_or_user_id: &str, subcode: i64) {
        for token in self.world().tokens.iter_mut() {
            if token.subjects.iter().any(|s| s == account_or_user_id) {
                token.revoked = Some(subcode);
            }
        }
    }

    /// Meta dropped the app's subscription of a Page, WABA or Instagram account.
    pub fn drop_subscription(&self, account_id: &str) {
        let mut world = self.world();
        for page in world.pages.iter_mut().filter(|p| p.id == account_id) {
            page.subscribed_fields = None;
        }
        for waba in world.wabas.iter_mut().filter(|w| w.id == account_id) {
            waba.subscribed = false;
        }
        for user in world
            .instagram_users
            .iter_mut()
            .filter(|u| u.user_id == account_id)
        {
            user.subscribed_fields = None;
        }
    }

    /// What `POST /v2/bot/channel/webhook/test` reports for this bot from now on.
    pub fn line_webhook_test_result(&self, bot_user_id: &str, ok: bool) {
        let mut world = self.world();
        let bot = world
            .line_bots
            .iter_mut()
            .find(|b| b.bot_user_id == bot_user_id)
            .unwrap_or_else(|| panic!("fake platforms: unknown LINE bot {bot_user_id}"));
        bot.webhook_test_ok = ok;
    }

    // ----- inspection -----

    /// The fields the app is subscribed to for a Page or Instagram account; for a WABA (whose
    /// subscription has no field list) `Some(vec![])` when subscribed. `None` = not subscribed.
    pub fn subscribed_fields(&self, account_id: &str) -> Option<Vec<String>> {
        let world = self.world();
        if let Some(page) = world.pages.iter().find(|p| p.id == account_id) {
            return page.subscribed_fields.clone();
        }
        if let Some(waba) = world.wabas.iter().find(|w| w.id == account_id) {
            return waba.subscribed.then(Vec::new);
        }
        world
            .instagram_users
            .iter()
            .find(|u| u.user_id == account_id)
            .and_then(|u| u.subscribed_fields.clone())
    }

    pub fn registered_pin(&self, phone_number_id: &str) -> Option<String> {
        self.world()
            .wabas
            .iter()
            .flat_map(|w| &w.phones)
            .find(|p| p.id == phone_number_id)
            .and_then(|p| p.pin.clone())
    }

    pub fn line_webhook_endpoint(&self, bot_user_id: &str) -> Option<String> {
        self.world()
            .line_bots
            .iter()
            .find(|b| b.bot_user_id == bot_user_id)
            .and_then(|b| b.endpoint.clone())
    }

    /// Every token the fakes know: all they minted, and the LINE long-lived tokens given to `add_line_bot`
    /// (so a test can assert none appears in a log line or a page).
    pub fn tokens_issued(&self) -> Vec<String> {
        self.world()
            .tokens
            .iter()
            .map(|t| t.value.clone())
            .collect()
    }

    /// Every request, in arrival order, with its host: `graph`, `instagram_api`, `instagram_graph`, `line`.
    pub fn requests(&self) -> Vec<(String, Recorded)> {
        self.world()
            .requests
            .iter()
            .map(|(host, r)| (host.name().to_owned(), r.clone()))
            .collect()
    }

    /// The bodies of the message sends the fakes accepted, any platform.
    pub fn sent_messages(&self) -> Vec<Value> {
        self.world().sent.iter().map(|s| s.body.clone()).collect()
    }

    /// The accepted message sends with their host and sending account.
    pub fn sends(&self) -> Vec<SentMessage> {
        self.world().sent.clone()
    }

    pub fn instagram_refreshes(&self) -> Vec<InstagramRefresh> {
        self.world().refreshes.clone()
    }
}

fn lock(world: &Mutex<World>) -> MutexGuard<'_, World> {
    world
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

// ===== the world =====

struct World {
    meta: AppFacts,
    instagram: AppFacts,
    now: OffsetDateTime,
    graph_url: String,
    facebook_users: Vec<String>,
    pages: Vec<Page>,
    wabas: Vec<Waba>,
    instagram_users: Vec<InstagramUser>,
    line_bots: Vec<LineBot>,
    codes: Vec<Code>,
    tokens: Vec<Token>,
    failures: Vec<Failure>,
    requests: Vec<(Host, Recorded)>,
    sent: Vec<SentMessage>,
    refreshes: Vec<InstagramRefresh>,
}

struct Page {
    id: String,
    name: String,
    users: Vec<String>,
    instagram_account: Option<String>,
    in_business_portfolio: bool,
    subscribed_fields: Option<Vec<String>>,
}

struct Waba {
    id: String,
    phones: Vec<Phone>,
    subscribed: bool,
}

struct Phone {
    id: String,
    display_phone_number: String,
    verified_name: String,
    pin: Option<String>,
}

struct InstagramUser {
    user_id: String,
    app_scoped_id: String,
    username: String,
    subscribed_fields: Option<Vec<String>>,
}

struct LineBot {
    channel_id: String,
    channel_secret: String,
    bot_user_id: String,
    endpoint: Option<String>,
    webhook_test_ok: bool,
}

struct Code {
    value: String,
    grant: Grant,
    expires_at: OffsetDateTime,
    used: bool,
}

#[derive(Clone)]
enum Grant {
    MetaLogin {
        user: String,
        redirect_uri: String,
    },
    WhatsApp {
        user: String,
        waba: String,
    },
    Instagram {
        ig_user: String,
        redirect_uri: String,
    },
}

#[derive(Debug, Clone)]
struct Token {
    value: String,
    kind: TokenKind,
    /// The users and accounts whose revocation kills this token.
    subjects: Vec<String>,
    issued_at: OffsetDateTime,
    expires_at: Option<OffsetDateTime>,
    revoked: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum TokenKind {
    FacebookUser {
        user: String,
        long_lived: bool,
    },
    Page {
        page: String,
        user: String,
        /// The user token it was minted from.
        parent: String,
    },
    Business {
        user: String,
        waba: String,
    },
    InstagramShort {
        ig_user: String,
    },
    InstagramLong {
        ig_user: String,
    },
    LineStateless {
        channel: String,
    },
    LineLongLived {
        channel: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Meta,
    Instagram,
    Line,
}

impl TokenKind {
    fn family(&self) -> Family {
        match self {
            TokenKind::FacebookUser { .. }
            | TokenKind::Page { .. }
            | TokenKind::Business { .. } => Family::Meta,
            TokenKind::InstagramShort { .. } | TokenKind::InstagramLong { .. } => Family::Instagram,
            TokenKind::LineStateless { .. } | TokenKind::LineLongLived { .. } => Family::Line,
        }
    }

    fn prefix(&self) -> &'static str {
        match self {
            TokenKind::FacebookUser { .. } => "EAAG-user-",
            TokenKind::Page { .. } => "EAAG-page-",
            TokenKind::Business { .. } => "EAAG-biz-",
            TokenKind::InstagramShort { .. } => "IGAA-short-",
            TokenKind::InstagramLong { .. } => "IGAA-",
            TokenKind::LineStateless { .. } | TokenKind::LineLongLived { .. } => "line-",
        }
    }
}

enum TokenProblem {
    Unknown,
    Expired(OffsetDateTime),
    Revoked(i64),
}

struct Failure {
    method: String,
    path_suffix: String,
    status: u16,
    code: Option<i64>,
    subcode: Option<i64>,
}

/// A handler's outcome: the reply either way, so checks can use `?`.
type Answer = Result<Reply, Reply>;

impl World {
    fn new(meta: AppFacts, instagram: AppFacts) -> Self {
        Self {
            meta,
            instagram,
            now: crate::TEST_START,
            graph_url: String::new(),
            facebook_users: Vec::new(),
            pages: Vec::new(),
            wabas: Vec::new(),
            instagram_users: Vec::new(),
            line_bots: Vec::new(),
            codes: Vec::new(),
            tokens: Vec::new(),
            failures: Vec::new(),
            requests: Vec::new(),
            sent: Vec::new(),
            refreshes: Vec::new(),
        }
    }

    fn expect_user(&self, user_id: &str) {
        assert!(
            self.facebook_users.iter().any(|u| u == user_id),
            "fake platforms: unknown Facebook user {user_id}; add_facebook_user first"
        );
    }

    fn expect_instagram_user(&self, ig_user_id: &str) {
        assert!(
            self.instagram_users.iter().any(|u| u.user_id == ig_user_id),
            "fake platforms: unknown Instagram user {ig_user_id}; add_instagram_user first"
        );
    }

    fn new_code(&mut self, grant: Grant, lifetime: Duration) -> String {
        let value = format!("AQ{}", random_hex(32));
        self.codes.push(Code {
            value: value.clone(),
            grant,
            expires_at: self.now + lifetime,
            used: false,
        });
        value
    }

    fn mint(
        &mut self,
        kind: TokenKind,
        subjects: Vec<String>,
        expires_at: impl Into<Option<OffsetDateTime>>,
    ) -> Token {
        let token = Token {
            value: format!("{}{}", kind.prefix(), random_hex(40)),
            kind,
            subjects,
            issued_at: self.now,
            expires_at: expires_at.into(),
            revoked: None,
        };
        self.tokens.push(token.clone());
        token
    }

    fn mint_business(&mut self, user: &str, waba: &str) -> Token {
        self.mint(
            TokenKind::Business {
                user: user.to_owned(),
                waba: waba.to_owned(),
            },
            vec![user.to_owned(), waba.to_owned()],
            None,
        )
    }

    fn mint_instagram_long(&mut self, ig_user: &str) -> Token {
        let expires = self.now + Duration::seconds(LONG_INSTAGRAM_TOKEN_SECONDS);
        self.mint(
            TokenKind::InstagramLong {
                ig_user: ig_user.to_owned(),
            },
            vec![ig_user.to_owned()],
            expires,
        )
    }

    /// The Page token minted from `parent` (a user token): the same one on every call, as Graph does; it
    /// expires with a short-lived parent and never with a long-lived one.
    fn page_token_for(&mut self, page_id: &str, parent: &Token) -> String {
        let user = match &parent.kind {
            TokenKind::FacebookUser { user, .. } => user.clone(),
            // A Page token reading its own Page gets itself back.
            TokenKind::Page { .. } => return parent.value.clone(),
            _ => String::new(),
        };
        if let Some(existing) = self.tokens.iter().find(|t| {
            matches!(&t.kind, TokenKind::Page { page, parent: p, .. } if page == page_id && *p == parent.value)
        }) {
            return existing.value.clone();
        }
        let long_lived = matches!(
            parent.kind,
            TokenKind::FacebookUser {
                long_lived: true,
                ..
            }
        );
        let expires = if long_lived { None } else { parent.expires_at };
        self.mint(
            TokenKind::Page {
                page: page_id.to_owned(),
                user: user.clone(),
                parent: parent.value.clone(),
            },
            vec![page_id.to_owned(), user],
            expires,
        )
        .value
    }

    fn lookup(&self, value: &str, family: Family) -> Result<&Token, TokenProblem> {
        let token = self
            .tokens
            .iter()
            .find(|t| t.value == value && t.kind.family() == family)
            .ok_or(TokenProblem::Unknown)?;
        if let Some(subcode) = token.revoked {
            return Err(TokenProblem::Revoked(subcode));
        }
        match token.expires_at {
            Some(at) if self.now >= at => Err(TokenProblem::Expired(at)),
            _ => Ok(token),
        }
    }

    fn take_code(&mut self, value: &str) -> Option<&mut Code> {
        self.codes.iter_mut().find(|c| c.value == value)
    }

    fn user_pages(&self, user: &str) -> impl Iterator<Item = &Page> {
        self.pages
            .iter()
            .filter(move |p| p.users.iter().any(|u| u == user))
    }

    fn record_send(&mut self, host: Host, account_id: &str, path: &str, body: Value) {
        self.sent.push(SentMessage {
            host: host.name().to_owned(),
            account_id: account_id.to_owned(),
            path: path.to_owned(),
            body,
        });
    }

    // ----- dispatch -----

    fn handle(&mut self, host: Host, recorded: &Recorded) -> Reply {
        self.requests.push((host, recorded.clone()));
        if let Some(reply) = self.injected_failure(recorded) {
            return reply;
        }
        let request = Request::new(recorded);
        let answer = match host {
            Host::Graph => self.graph(&request),
            Host::InstagramApi => self.instagram_api(&request),
            Host::InstagramGraph => self.instagram_graph(&request),
            Host::Line => self.line(&request),
        };
        answer.unwrap_or_else(|reply| reply)
    }

    fn injected_failure(&mut self, recorded: &Recorded) -> Option<Reply> {
        let index = self.failures.iter().position(|f| {
            f.method.eq_ignore_ascii_case(&recorded.method)
                && recorded.path.ends_with(&f.path_suffix)
        })?;
        let failure = self.failures.remove(index);
        let code = failure.code.unwrap_or(1);
        Some(graph_error(
            failure.status,
            code,
            failure.subcode,
            &injected_message(code),
        ))
    }

    // ===== graph.facebook.com =====

    fn graph(&mut self, request: &Request) -> Answer {
        let Some((version, rest)) = request.segments.split_first() else {
            return Err(unknown_path());
        };
        check_version(version)?;
        match (request.method.as_str(), rest) {
            ("GET", ["oauth", "access_token"]) => self.graph_access_token(request),
            ("GET", ["debug_token"]) => self.debug_token(request),
            ("GET", ["me", "accounts"]) => self.me_accounts(request),
            ("POST", ["me", "messages"]) => self.send_page_message(request, None),
            ("GET", [id]) => self.get_page(request, id),
            ("GET" | "POST" | "DELETE", [id, "subscribed_apps"]) => {
                self.graph_subscribed_apps(request, id)
            }
            ("GET", [id, "phone_numbers"]) => self.phone_numbers(request, id),
            ("POST", [id, "register"]) => self.register(request, id),
            ("POST", [id, "messages"]) => self.send_graph_message(request, id),
            _ => Err(unknown_path()),
        }
    }

    /// The caller of a Graph call: its Bearer token, proven with the Meta app's secret, alive.
    fn meta_caller(&self, request: &Request) -> Result<Token, Reply> {
        let token = request.bearer().ok_or_else(|| {
            graph_error(
                400,
                104,
                None,
                "An access token is required to request this resource.",
            )
        })?;
        check_proof(&self.meta.app_secret, token, &request.query)?;
        self.lookup(token, Family::Meta)
            .cloned()
            .map_err(|problem| token_error(problem, &self.meta.app_id))
    }

    fn check_meta_client(&self, params: &Params) -> Result<(), Reply> {
        if params.get("client_id") != Some(self.meta.app_id.as_str()) {
            return Err(graph_error(
                400,
                101,
                None,
                "Error validating application. Invalid application ID.",
            ));
        }
        if params.get("client_secret") != Some(self.meta.app_secret.as_str()) {
            return Err(graph_error(400, 1, None, "Error validating client secret."));
        }
        Ok(())
    }

    fn graph_access_token(&mut self, request: &Request) -> Answer {
        let q = &request.query;
        self.check_meta_client(q)?;
        match q.get("grant_type") {
            None => self.exchange_meta_code(q),
            Some("fb_exchange_token") => self.exchange_for_long_lived(q),
            Some(other) => Err(graph_error(
                400,
                100,
                None,
                &format!("Unsupported grant_type: {other}"),
            )),
        }
    }

    fn exchange_meta_code(&mut self, q: &Params) -> Answer {
        let value = q
            .get("code")
            .ok_or_else(|| graph_error(400, 100, None, "Missing authorization code"))?;
        let now = self.now;
        let redirect = q.get("redirect_uri");
        let code = self
            .take_code(value)
            .filter(|c| !matches!(c.grant, Grant::Instagram { .. }))
            .ok_or_else(|| graph_error(400, 100, None, "Invalid verification code format."))?;
        if code.used {
            return Err(graph_error(
                400,
                100,
                Some(36009),
                "This authorization code has been used.",
            ));
        }
        if now >= code.expires_at {
            return Err(graph_error(
                400,
                100,
                Some(36007),
                "This authorization code has expired.",
            ));
        }
        let redirect_ok = match &code.grant {
            Grant::MetaLogin { redirect_uri, .. } => redirect == Some(redirect_uri.as_str()),
            _ => redirect.is_none(),
        };
        if !redirect_ok {
            return Err(graph_error(
                400,
                100,
                Some(36008),
                "Error validating verification code. Please make sure your redirect_uri is identical to the one you used in the OAuth dialog request",
            ));
        }
        code.used = true;
        match code.grant.clone() {
            Grant::MetaLogin { user, .. } => {
                let token = self.mint(
                    TokenKind::FacebookUser {
                        user: user.clone(),
                        long_lived: false,
                    },
                    vec![user],
                    now + SHORT_USER_TOKEN,
                );
                Ok(ok(json!({
                    "access_token": token.value,
                    "token_type": "bearer",
                    "expires_in": SHORT_USER_TOKEN.whole_seconds(),
                })))
            }
            Grant::WhatsApp { user, waba } => {
                let token = self.mint_business(&user, &waba);
                Ok(ok(
                    json!({"access_token": token.value, "token_type": "bearer"}),
                ))
            }
            Grant::Instagram { .. } => Err(graph_error(
                400,
                100,
                None,
                "Invalid verification code format.",
            )),
        }
    }

    fn exchange_for_long_lived(&mut self, q: &Params) -> Answer {
        let value = q.get("fb_exchange_token").ok_or_else(|| {
            graph_error(
                400,
                100,
                None,
                "The parameter fb_exchange_token is required",
            )
        })?;
        let token = self
            .lookup(value, Family::Meta)
            .cloned()
            .map_err(|problem| token_error(problem, &self.meta.app_id))?;
        let TokenKind::FacebookUser { user, .. } = token.kind else {
            return Err(graph_error(
                400,
                100,
                None,
                "fb_exchange_token must be a user access token",
            ));
        };
        let expires_at = self.now + Duration::seconds(LONG_USER_TOKEN_SECONDS);
        let long = self.mint(
            TokenKind::FacebookUser {
                user: user.clone(),
                long_lived: true,
            },
            vec![user],
            expires_at,
        );
        Ok(ok(json!({
            "access_token": long.value,
            "token_type": "bearer",
            "expires_in": LONG_USER_TOKEN_SECONDS,
        })))
    }

    fn debug_token(&mut self, request: &Request) -> Answer {
        let q = &request.query;
        let app_token = format!("{}|{}", self.meta.app_id, self.meta.app_secret);
        let access = q.get("access_token").ok_or_else(|| {
            graph_error(
                400,
                104,
                None,
                "An access token is required to request this resource.",
            )
        })?;
        if access != app_token {
            return Err(graph_error(
                400,
                190,
                None,
                "Invalid OAuth access token - debug_token takes the app access token {app_id}|{app_secret}",
            ));
        }
        check_proof(&self.meta.app_secret, access, q)?;
        let input = q
            .get("input_token")
            .ok_or_else(|| graph_error(400, 100, None, "The parameter input_token is required"))?;
        let Some(token) = self
            .tokens
            .iter()
            .find(|t| t.value == input && t.kind.family() == Family::Meta)
            .cloned()
        else {
            return Ok(ok(json!({"data": {
                "is_valid": false,
                "error": {"code": 190, "message": "Invalid OAuth access token - Cannot parse access token"},
                "scopes": [],
                "granular_scopes": [],
            }})));
        };
        let mut data = self.describe_meta_token(&token);
        match self.lookup(input, Family::Meta) {
            Ok(_) => {}
            Err(problem) => {
                let (subcode, message) = match problem {
                    TokenProblem::Expired(at) => (463, expired_message(at)),
                    TokenProblem::Revoked(subcode) => {
                        (subcode, revoked_message(subcode, &self.meta.app_id))
                    }
                    TokenProblem::Unknown => (467, "Invalid OAuth access token.".to_owned()),
                };
                data["is_valid"] = json!(false);
                data["error"] = json!({"code": 190, "subcode": subcode, "message": message});
            }
        }
        Ok(ok(json!({ "data": data })))
    }

    fn describe_meta_token(&self, token: &Token) -> Value {
        let (kind, user, scopes, granular) = match &token.kind {
            TokenKind::FacebookUser { user, .. } => (
                "USER",
                user.clone(),
                LOGIN_SCOPES,
                self.login_granular(user),
            ),
            TokenKind::Page { user, .. } => (
                "PAGE",
                user.clone(),
                LOGIN_SCOPES,
                self.login_granular(user),
            ),
            TokenKind::Business { user, waba } => (
                "SYSTEM_USER",
                user.clone(),
                WHATSAPP_SCOPES,
                WHATSAPP_SCOPES
                    .iter()
                    .map(|s| json!({"scope": s, "target_ids": [waba]}))
                    .collect(),
            ),
            _ => ("USER", String::new(), LOGIN_SCOPES, Vec::new()),
        };
        let data_access = match token.kind {
            TokenKind::Business { .. } => 0,
            _ => (token.issued_at + DATA_ACCESS_LIFETIME).unix_timestamp(),
        };
        let mut data = json!({
            "app_id": self.meta.app_id,
            "type": kind,
            "application": APP_NAME,
            "is_valid": true,
            "issued_at": token.issued_at.unix_timestamp(),
            "expires_at": token.expires_at.map_or(0, OffsetDateTime::unix_timestamp),
            "data_access_expires_at": data_access,
            "scopes": scopes,
            "granular_scopes": granular,
            "user_id": user,
        });
        if let TokenKind::Page { page, .. } = &token.kind {
            data["profile_id"] = json!(page);
        }
        data
    }

    fn login_granular(&self, user: &str) -> Vec<Value> {
        let pages: Vec<&str> = self.user_pages(user).map(|p| p.id.as_str()).collect();
        let instagram: Vec<&str> = self
            .user_pages(user)
            .filter_map(|p| p.instagram_account.as_deref())
            .collect();
        vec![
            json!({"scope": "pages_show_list", "target_ids": pages}),
            json!({"scope": "pages_manage_metadata", "target_ids": pages}),
            json!({"scope": "pages_messaging", "target_ids": pages}),
            json!({"scope": "business_management"}),
            json!({"scope": "instagram_basic", "target_ids": instagram}),
            json!({"scope": "instagram_manage_messages", "target_ids": instagram}),
        ]
    }

    fn me_accounts(&mut self, request: &Request) -> Answer {
        let caller = self.meta_caller(request)?;
        let TokenKind::FacebookUser { user, .. } = &caller.kind else {
            return Err(graph_error(
                400,
                100,
                None,
                "(#100) Tried accessing nonexisting field (accounts) on node type (Page)",
            ));
        };
        let fields = requested_fields(&request.query, PAGE_NODE_FIELDS, &["id", "name"], "Page")?;
        let limit = match request.query.get("limit") {
            None => 25,
            Some(raw) => raw
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=100).contains(n))
                .ok_or_else(|| graph_error(400, 100, None, "(#100) Invalid limit"))?,
        };
        let listed: Vec<String> = self
            .user_pages(user)
            .filter(|p| !p.in_business_portfolio)
            .map(|p| p.id.clone())
            .collect();
        let start = match request.query.get("after") {
            None => 0,
            Some(after) => listed
                .iter()
                .position(|id| id == after)
                .map(|i| i + 1)
                .ok_or_else(|| graph_error(400, 100, None, "(#100) Invalid cursor"))?,
        };
        let window: Vec<String> = listed.iter().skip(start).take(limit).cloned().collect();
        let data: Vec<Value> = window
            .iter()
            .map(|id| self.page_json(id, &fields, &caller))
            .collect();
        let mut paging = json!({"cursors": {
            "before": window.first().cloned().unwrap_or_default(),
            "after": window.last().cloned().unwrap_or_default(),
        }});
        if start + window.len() < listed.len() {
            let mut next = request.query.clone();
            next.set(
                "after",
                window.last().map(String::as_str).unwrap_or_default(),
            );
            paging["next"] = json!(format!(
                "{}{}?{}",
                self.graph_url,
                request.path,
                next.encode()
            ));
        }
        Ok(ok(json!({"data": data, "paging": paging})))
    }

    fn page_json(&mut self, page_id: &str, fields: &[String], caller: &Token) -> Value {
        let mut out = serde_json::Map::new();
        let Some(page) = self.pages.iter().find(|p| p.id == page_id) else {
            return Value::Object(out);
        };
        let (name, instagram) = (page.name.clone(), page.instagram_account.clone());
        for field in fields {
            match field.as_str() {
                "id" => {
                    out.insert("id".into(), json!(page_id));
                }
                "name" => {
                    out.insert("name".into(), json!(name));
                }
                "access_token" => {
                    let token = self.page_token_for(page_id, caller);
                    out.insert("access_token".into(), json!(token));
                }
                "instagram_business_account" => {
                    if let Some(ig) = &instagram {
                        out.insert("instagram_business_account".into(), json!({"id": ig}));
                    }
                }
                _ => {}
            }
        }
        Value::Object(out)
    }

    fn get_page(&mut self, request: &Request, id: &str) -> Answer {
        let caller = self.meta_caller(request)?;
        let fields = requested_fields(&request.query, PAGE_NODE_FIELDS, &["id", "name"], "Page")?;
        let allowed = match &caller.kind {
            TokenKind::FacebookUser { user, .. } => self.user_pages(user).any(|p| p.id == id),
            TokenKind::Page { page, .. } => page == id,
            _ => false,
        };
        if !allowed {
            return Err(missing_object("get", id));
        }
        Ok(ok(self.page_json(id, &fields, &caller)))
    }

    fn graph_subscribed_apps(&mut self, request: &Request, id: &str) -> Answer {
        let caller = self.meta_caller(request)?;
        if self.pages.iter().any(|p| p.id == id) {
            self.page_subscribed_apps(request, id, &caller)
        } else if self.wabas.iter().any(|w| w.id == id) {
            self.waba_subscribed_apps(request, id, &caller)
        } else {
            Err(missing_object(&request.method.to_ascii_lowercase(), id))
        }
    }

    fn page_subscribed_apps(&mut self, request: &Request, id: &str, caller: &Token) -> Answer {
        match &caller.kind {
            TokenKind::Page { page, .. } if page == id => {}
            TokenKind::Page { .. } => {
                return Err(graph_error(400, 200, None, "(#200) Permissions error"));
            }
            _ => {
                return Err(graph_error(
                    400,
                    210,
                    None,
                    "(#210) A page access token is required to request this resource.",
                ));
            }
        }
        let app_id = self.meta.app_id.clone();
        let Some(page) = self.pages.iter_mut().find(|p| p.id == id) else {
            return Err(missing_object("get", id));
        };
        match request.method.as_str() {
            "POST" => {
                let fields = subscription_fields(&request.query, PAGE_WEBHOOK_FIELDS)?;
                page.subscribed_fields = Some(fields);
                Ok(ok(json!({"success": true})))
            }
            "DELETE" => {
                page.subscribed_fields = None;
                Ok(ok(json!({"success": true})))
            }
            _ => Ok(ok(match &page.subscribed_fields {
                Some(fields) => json!({"data": [{
                    "id": app_id, "name": APP_NAME, "subscribed_fields": fields,
                }]}),
                None => json!({"data": []}),
            })),
        }
    }

    fn waba_subscribed_apps(&mut self, request: &Request, id: &str, caller: &Token) -> Answer {
        if !matches!(&caller.kind, TokenKind::Business { waba, .. } if waba == id) {
            return Err(graph_error(400, 200, None, "(#200) Permissions error"));
        }
        let app_id = self.meta.app_id.clone();
        let Some(waba) = self.wabas.iter_mut().find(|w| w.id == id) else {
            return Err(missing_object("get", id));
        };
        match request.method.as_str() {
            "POST" => {
                waba.subscribed = true;
                Ok(ok(json!({"success": true})))
            }
            "DELETE" => {
                waba.subscribed = false;
                Ok(ok(json!({"success": true})))
            }
            _ => Ok(ok(if waba.subscribed {
                json!({"data": [{"whatsapp_business_api_data": {"id": app_id, "name": APP_NAME}}]})
            } else {
                json!({"data": []})
            })),
        }
    }

    fn phone_numbers(&mut self, request: &Request, id: &str) -> Answer {
        let caller = self.meta_caller(request)?;
        let fields = requested_fields(
            &request.query,
            &["id", "display_phone_number", "verified_name"],
            &["id", "display_phone_number", "verified_name"],
            "PhoneNumber",
        )?;
        let Some(waba) = self.wabas.iter().find(|w| w.id == id) else {
            return Err(missing_object("get", id));
        };
        if !matches!(&caller.kind, TokenKind::Business { waba, .. } if waba == id) {
            return Err(graph_error(400, 200, None, "(#200) Permissions error"));
        }
        let data: Vec<Value> = waba
            .phones
            .iter()
            .map(|phone| {
                let mut out = serde_json::Map::new();
                for field in &fields {
                    let value = match field.as_str() {
                        "id" => &phone.id,
                        "display_phone_number" => &phone.display_phone_number,
                        _ => &phone.verified_name,
                    };
                    out.insert(field.clone(), json!(value));
                }
                Value::Object(out)
            })
            .collect();
        Ok(ok(json!({"data": data})))
    }

    /// The WABA of a phone number the caller's business token may use, or the Graph error.
    fn caller_phone<'a>(&'a mut self, caller: &Token, id: &str) -> Result<&'a mut Phone, Reply> {
        let Some(waba) = self
            .wabas
            .iter_mut()
            .find(|w| w.phones.iter().any(|p| p.id == id))
        else {
            return Err(missing_object("post", id));
        };
        if !matches!(&caller.kind, TokenKind::Business { waba: w, .. } if *w == waba.id) {
            return Err(graph_error(400, 200, None, "(#200) Permissions error"));
        }
        waba.phones
            .iter_mut()
            .find(|p| p.id == id)
            .ok_or_else(|| missing_object("post", id))
    }

    fn register(&mut self, request: &Request, id: &str) -> Answer {
        let caller = self.meta_caller(request)?;
        let body = request.graph_json()?;
        let phone = self.caller_phone(&caller, id)?;
        if body.get("messaging_product").and_then(Value::as_str) != Some("whatsapp") {
            return Err(graph_error(
                400,
                100,
                None,
                "(#100) The parameter messaging_product is required and must be whatsapp",
            ));
        }
        let pin = body.get("pin").and_then(Value::as_str).unwrap_or_default();
        if pin.len() != 6 || !pin.bytes().all(|b| b.is_ascii_digit()) {
            return Err(graph_error(
                400,
                100,
                None,
                "(#100) Param pin must be a 6-digit number",
            ));
        }
        phone.pin = Some(pin.to_owned());
        Ok(ok(json!({"success": true})))
    }

    fn send_graph_message(&mut self, request: &Request, id: &str) -> Answer {
        if self.pages.iter().any(|p| p.id == id) {
            return self.send_page_message(request, Some(id));
        }
        let caller = self.meta_caller(request)?;
        let body = request.graph_json()?;
        let phone = self.caller_phone(&caller, id)?;
        if phone.pin.is_none() {
            return Err(graph_error(
                400,
                133010,
                None,
                "(#133010) Account not registered",
            ));
        }
        if body.get("messaging_product").and_then(Value::as_str) != Some("whatsapp") {
            return Err(graph_error(
                400,
                100,
                None,
                "(#100) The parameter messaging_product is required and must be whatsapp",
            ));
        }
        let Some(to) = body.get("to").and_then(Value::as_str).map(str::to_owned) else {
            return Err(graph_error(
                400,
                100,
                None,
                "(#100) The parameter to is required.",
            ));
        };
        self.record_send(Host::Graph, id, &request.path, body);
        let wa_id: String = to.chars().filter(char::is_ascii_digit).collect();
        Ok(ok(json!({
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": wa_id}],
            "messages": [{"id": format!("wamid.{}", random_hex(24)), "message_status": "accepted"}],
        })))
    }

    /// `POST /{page-id}/messages` (`page` given) or `POST /me/messages` with a Page token.
    fn send_page_message(&mut self, request: &Request, page: Option<&str>) -> Answer {
        let caller = self.meta_caller(request)?;
        let body = request.graph_json()?;
        let TokenKind::Page { page: own, .. } = &caller.kind else {
            return Err(graph_error(
                400,
                210,
                None,
                "(#210) A page access token is required to request this resource.",
            ));
        };
        if page.is_some_and(|p| p != own) {
            return Err(graph_error(400, 200, None, "(#200) Permissions error"));
        }
        let recipient = messaging_recipient(&body)?;
        self.record_send(Host::Graph, own, &request.path, body);
        Ok(ok(
            json!({"recipient_id": recipient, "message_id": format!("m_{}", random_hex(24))}),
        ))
    }

    // ===== api.instagram.com =====

    fn instagram_api(&mut self, request: &Request) -> Answer {
        match (request.method.as_str(), request.segments.as_slice()) {
            ("POST", ["oauth", "access_token"]) => self.exchange_instagram_code(request),
            _ => Err(unknown_path()),
        }
    }

    fn exchange_instagram_code(&mut self, request: &Request) -> Answer {
        let form = request.form();
        for field in [
            "client_id",
            "client_secret",
            "grant_type",
            "redirect_uri",
            "code",
        ] {
            if form.get(field).is_none() {
                return Err(instagram_error(&format!("Missing required field {field}")));
            }
        }
        if form.get("client_id") != Some(self.instagram.app_id.as_str()) {
            return Err(instagram_error("Invalid platform app"));
        }
        if form.get("client_secret") != Some(self.instagram.app_secret.as_str()) {
            return Err(instagram_error("Error validating client secret."));
        }
        if form.get("grant_type") != Some("authorization_code") {
            return Err(instagram_error("Invalid grant_type"));
        }
        let now = self.now;
        let redirect = form.get("redirect_uri");
        let code = form
            .get("code")
            .and_then(|value| self.take_code(value))
            .filter(|c| matches!(c.grant, Grant::Instagram { .. }))
            .ok_or_else(|| instagram_error("Invalid authorization code"))?;
        if code.used {
            return Err(instagram_error("This authorization code has been used"));
        }
        if now >= code.expires_at {
            return Err(instagram_error("This authorization code has expired"));
        }
        let Grant::Instagram {
            ig_user,
            redirect_uri,
        } = code.grant.clone()
        else {
            return Err(instagram_error("Invalid authorization code"));
        };
        if redirect != Some(redirect_uri.as_str()) {
            return Err(instagram_error(
                "Error validating verification code. Please make sure your redirect_uri is identical to the one you used in the OAuth dialog request",
            ));
        }
        code.used = true;
        let token = self.mint(
            TokenKind::InstagramShort {
                ig_user: ig_user.clone(),
            },
            vec![ig_user.clone()],
            now + SHORT_INSTAGRAM_TOKEN,
        );
        let user_id = ig_user
            .parse::<u64>()
            .map_or_else(|_| json!(ig_user), |n| json!(n));
        Ok(ok(json!({
            "access_token": token.value,
            "user_id": user_id,
            "permissions": INSTAGRAM_PERMISSIONS,
        })))
    }

    // ===== graph.instagram.com =====

    fn instagram_graph(&mut self, request: &Request) -> Answer {
        match (request.method.as_str(), request.segments.as_slice()) {
            ("GET", ["access_token"]) => return self.instagram_long_lived(request),
            ("GET", ["refresh_access_token"]) => return self.instagram_refresh(request),
            _ => {}
        }
        let Some((version, rest)) = request.segments.split_first() else {
            return Err(unknown_path());
        };
        check_version(version)?;
        match (request.method.as_str(), rest) {
            ("GET", ["me"]) => self.instagram_me(request),
            ("GET" | "POST" | "DELETE", [who, "subscribed_apps"]) => {
                self.instagram_subscribed_apps(request, who)
            }
            ("POST", [who, "messages"]) => self.instagram_send(request, who),
            _ => Err(unknown_path()),
        }
    }

    /// A token given as the `access_token` parameter of the unversioned token endpoints: any
    /// `appsecret_proof` sent along must be right (the endpoints do not require one).
    fn instagram_query_token(&self, q: &Params) -> Result<Token, Reply> {
        let value = q
            .get("access_token")
            .ok_or_else(|| graph_error(400, 100, None, "The parameter access_token is required"))?;
        if q.get("appsecret_proof").is_some() {
            check_proof(&self.instagram.app_secret, value, q)?;
        }
        self.lookup(value, Family::Instagram)
            .cloned()
            .map_err(|problem| token_error(problem, &self.instagram.app_id))
    }

    fn instagram_long_lived(&mut self, request: &Request) -> Answer {
        let q = &request.query;
        if q.get("grant_type") != Some("ig_exchange_token") {
            return Err(graph_error(
                400,
                100,
                None,
                "grant_type must be ig_exchange_token",
            ));
        }
        if q.get("client_secret") != Some(self.instagram.app_secret.as_str()) {
            return Err(graph_error(400, 1, None, "Error validating client secret."));
        }
        let short = self.instagram_query_token(q)?;
        let TokenKind::InstagramShort { ig_user } = &short.kind else {
            return Err(graph_error(
                400,
                100,
                None,
                "ig_exchange_token takes a short-lived token",
            ));
        };
        let long = self.mint_instagram_long(ig_user);
        Ok(ok(json!({
            "access_token": long.value,
            "token_type": "bearer",
            "expires_in": LONG_INSTAGRAM_TOKEN_SECONDS,
        })))
    }

    fn instagram_refresh(&mut self, request: &Request) -> Answer {
        let q = &request.query;
        if q.get("grant_type") != Some("ig_refresh_token") {
            return Err(graph_error(
                400,
                100,
                None,
                "grant_type must be ig_refresh_token",
            ));
        }
        let old = self.instagram_query_token(q)?;
        let TokenKind::InstagramLong { ig_user } = &old.kind else {
            return Err(graph_error(
                400,
                100,
                None,
                "ig_refresh_token takes a long-lived token",
            ));
        };
        if self.now - old.issued_at < INSTAGRAM_REFRESH_MIN_AGE {
            return Err(graph_error(
                400,
                100,
                None,
                "The access token must be at least 24 hours old to be refreshed",
            ));
        }
        let new = self.mint_instagram_long(ig_user);
        self.refreshes.push(InstagramRefresh {
            ig_user_id: ig_user.clone(),
            at: self.now,
            old_token: old.value.clone(),
            new_token: new.value.clone(),
        });
        Ok(ok(json!({
            "access_token": new.value,
            "token_type": "bearer",
            "expires_in": LONG_INSTAGRAM_TOKEN_SECONDS,
        })))
    }

    /// The Instagram account behind a versioned graph.instagram.com call's Bearer token (proven with the
    /// Instagram app's secret); `who` must be `me` or that account's id.
    fn instagram_caller(&self, request: &Request, who: &str) -> Result<String, Reply> {
        let token = request.bearer().ok_or_else(|| {
            graph_error(
                400,
                104,
                None,
                "An access token is required to request this resource.",
            )
        })?;
        check_proof(&self.instagram.app_secret, token, &request.query)?;
        let token = self
            .lookup(token, Family::Instagram)
            .map_err(|problem| token_error(problem, &self.instagram.app_id))?;
        let ig_user = match &token.kind {
            TokenKind::InstagramShort { ig_user } | TokenKind::InstagramLong { ig_user } => {
                ig_user.clone()
            }
            _ => String::new(),
        };
        if who != "me" && who != ig_user {
            return Err(missing_object(&request.method.to_ascii_lowercase(), who));
        }
        Ok(ig_user)
    }

    fn instagram_me(&mut self, request: &Request) -> Answer {
        let ig_user = self.instagram_caller(request, "me")?;
        let fields = requested_fields(
            &request.query,
            &["id", "user_id", "username", "name", "account_type"],
            &["id"],
            "User",
        )?;
        let Some(user) = self.instagram_users.iter().find(|u| u.user_id == ig_user) else {
            return Err(missing_object("get", "me"));
        };
        let mut out = serde_json::Map::new();
        out.insert("id".into(), json!(user.app_scoped_id));
        for field in fields {
            let value = match field.as_str() {
                "id" => continue,
                "user_id" => json!(user.user_id),
                "username" | "name" => json!(user.username),
                _ => json!("BUSINESS"),
            };
            out.insert(field, value);
        }
        Ok(ok(Value::Object(out)))
    }

    fn instagram_subscribed_apps(&mut self, request: &Request, who: &str) -> Answer {
        let ig_user = self.instagram_caller(request, who)?;
        let Some(user) = self
            .instagram_users
            .iter_mut()
            .find(|u| u.user_id == ig_user)
        else {
            return Err(missing_object("get", who));
        };
        match request.method.as_str() {
            "POST" => {
                let fields = subscription_fields(&request.query, INSTAGRAM_WEBHOOK_FIELDS)?;
                user.subscribed_fields = Some(fields);
                Ok(ok(json!({"success": true})))
            }
            "DELETE" => {
                user.subscribed_fields = None;
                Ok(ok(json!({"success": true})))
            }
            _ => Ok(ok(match &user.subscribed_fields {
                Some(fields) => json!({"data": [{"subscribed_fields": fields}]}),
                None => json!({"data": []}),
            })),
        }
    }

    fn instagram_send(&mut self, request: &Request, who: &str) -> Answer {
        let ig_user = self.instagram_caller(request, who)?;
        let body = request.graph_json()?;
        let recipient = messaging_recipient(&body)?;
        self.record_send(Host::InstagramGraph, &ig_user, &request.path, body);
        Ok(ok(
            json!({"recipient_id": recipient, "message_id": format!("m_{}", random_hex(24))}),
        ))
    }

    // ===== api.line.me =====

    fn line(&mut self, request: &Request) -> Answer {
        match (request.method.as_str(), request.segments.as_slice()) {
            ("POST", ["oauth2", "v3", "token"]) => self.line_mint(request),
            ("GET", ["v2", "bot", "info"]) => self.line_bot_info(request),
            ("PUT", ["v2", "bot", "channel", "webhook", "endpoint"]) => {
                self.line_set_endpoint(request)
            }
            ("GET", ["v2", "bot", "channel", "webhook", "endpoint"]) => {
                self.line_get_endpoint(request)
            }
            ("POST", ["v2", "bot", "channel", "webhook", "test"]) => {
                self.line_test_webhook(request)
            }
            ("POST", ["v2", "bot", "message", kind @ ("reply" | "push")]) => {
                self.line_send(request, kind)
            }
            _ => Err(unknown_path()),
        }
    }

    fn line_mint(&mut self, request: &Request) -> Answer {
        let form = request.form();
        if form.get("grant_type") != Some("client_credentials") {
            return Err((
                400,
                json!({"error": "unsupported_grant_type", "error_description": "grant_type must be client_credentials"}),
            ));
        }
        let (Some(id), Some(secret)) = (form.get("client_id"), form.get("client_secret")) else {
            return Err((
                400,
                json!({"error": "invalid_request", "error_description": "client_id and client_secret are required"}),
            ));
        };
        let Some(bot) = self
            .line_bots
            .iter()
            .find(|b| b.channel_id == id && b.channel_secret == secret)
        else {
            return Err((
                400,
                json!({"error": "invalid_client", "error_description": "invalid client_id or client_secret"}),
            ));
        };
        let subjects = vec![bot.channel_id.clone(), bot.bot_user_id.clone()];
        let kind = TokenKind::LineStateless {
            channel: bot.channel_id.clone(),
        };
        let expires = self.now + Duration::seconds(LINE_STATELESS_SECONDS);
        let token = self.mint(kind, subjects, expires);
        Ok(ok(json!({
            "token_type": "Bearer",
            "access_token": token.value,
            "expires_in": LINE_STATELESS_SECONDS,
        })))
    }

    /// The bot behind the Bearer token (long-lived or minted), or LINE's 401.
    fn line_caller(&self, request: &Request) -> Result<usize, Reply> {
        let unauthorized = || {
            (
                401,
                json!({"message": "Authentication failed. Confirm that the access token in the authorization header is valid."}),
            )
        };
        let token = request.bearer().ok_or_else(unauthorized)?;
        let token = self
            .lookup(token, Family::Line)
            .map_err(|_| unauthorized())?;
        let channel = match &token.kind {
            TokenKind::LineStateless { channel } | TokenKind::LineLongLived { channel } => channel,
            _ => return Err(unauthorized()),
        };
        self.line_bots
            .iter()
            .position(|b| &b.channel_id == channel)
            .ok_or_else(unauthorized)
    }

    fn line_bot_info(&mut self, request: &Request) -> Answer {
        let bot = &self.line_bots[self.line_caller(request)?];
        Ok(ok(json!({
            "userId": bot.bot_user_id,
            "basicId": format!("@{}", bot.channel_id),
            "displayName": format!("Bot {}", bot.channel_id),
            "chatMode": "bot",
            "markAsReadMode": "manual",
        })))
    }

    fn line_set_endpoint(&mut self, request: &Request) -> Answer {
        let index = self.line_caller(request)?;
        let body = request.line_json()?;
        let endpoint = body
            .get("endpoint")
            .and_then(Value::as_str)
            .ok_or_else(|| line_invalid("endpoint", "must be specified"))?;
        check_line_endpoint(endpoint)?;
        self.line_bots[index].endpoint = Some(endpoint.to_owned());
        Ok(ok(json!({})))
    }

    fn line_get_endpoint(&mut self, request: &Request) -> Answer {
        let bot = &self.line_bots[self.line_caller(request)?];
        Ok(ok(match &bot.endpoint {
            Some(endpoint) => json!({"endpoint": endpoint, "active": true}),
            None => json!({"endpoint": "", "active": false}),
        }))
    }

    fn line_test_webhook(&mut self, request: &Request) -> Answer {
        let index = self.line_caller(request)?;
        let body = if request.body().is_empty() {
            json!({})
        } else {
            request.line_json()?
        };
        let given = match body.get("endpoint") {
            None | Some(Value::Null) => None,
            Some(Value::String(endpoint)) => {
                check_line_endpoint(endpoint)?;
                Some(endpoint.clone())
            }
            Some(_) => return Err(line_invalid("endpoint", "must be a string")),
        };
        let bot = &self.line_bots[index];
        if given.is_none() && bot.endpoint.is_none() {
            return Err((400, json!({"message": "The webhook endpoint is not set"})));
        }
        let timestamp = self.now.format(&Rfc3339).unwrap_or_default();
        Ok(ok(if bot.webhook_test_ok {
            json!({"success": true, "timestamp": timestamp, "statusCode": 200, "reason": "OK", "detail": "200"})
        } else {
            json!({"success": false, "timestamp": timestamp, "statusCode": 404, "reason": "ERROR_STATUS_CODE", "detail": "404"})
        }))
    }

    fn line_send(&mut self, request: &Request, kind: &str) -> Answer {
        let index = self.line_caller(request)?;
        let body = request.line_json()?;
        let target = if kind == "reply" { "replyToken" } else { "to" };
        if body
            .get(target)
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(line_invalid(target, "must be specified"));
        }
        let count = match body.get("messages").and_then(Value::as_array) {
            Some(messages) if (1..=5).contains(&messages.len()) => messages.len(),
            _ => return Err(line_invalid("messages", "must hold 1 to 5 messages")),
        };
        let bot = self.line_bots[index].bot_user_id.clone();
        self.record_send(Host::Line, &bot, &request.path, body);
        let sent: Vec<Value> = (0..count)
            .map(|_| json!({"id": digits(18), "quoteToken": random_hex(32)}))
            .collect();
        Ok(ok(json!({ "sentMessages": sent })))
    }
}

/// The fields a Page node has in these fakes.
const PAGE_NODE_FIELDS: &[&str] = &["id", "name", "access_token", "instagram_business_account"];

// ===== request parsing =====

/// Query or form parameters, in order; the first of a repeated name wins.
#[derive(Clone, Default)]
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(raw: &[u8]) -> Self {
        Self(form_urlencoded::parse(raw).into_owned().collect())
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn set(&mut self, name: &str, value: &str) {
        self.0.retain(|(k, _)| k != name);
        self.0.push((name.to_owned(), value.to_owned()));
    }

    fn encode(&self) -> String {
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&self.0)
            .finish()
    }
}

struct Request<'a> {
    recorded: &'a Recorded,
    method: String,
    path: String,
    segments: Vec<&'a str>,
    query: Params,
}

impl<'a> Request<'a> {
    fn new(recorded: &'a Recorded) -> Self {
        Self {
            recorded,
            method: recorded.method.to_ascii_uppercase(),
            path: recorded.path.clone(),
            segments: recorded
                .path
                .strip_prefix('/')
                .unwrap_or(&recorded.path)
                .split('/')
                .collect(),
            query: Params::parse(recorded.query.as_deref().unwrap_or_default().as_bytes()),
        }
    }

    fn bearer(&self) -> Option<&str> {
        self.recorded
            .header("authorization")?
            .strip_prefix("Bearer ")
            .map(str::trim)
            .filter(|t| !t.is_empty())
    }

    fn body(&self) -> &[u8] {
        &self.recorded.body
    }

    fn form(&self) -> Params {
        Params::parse(self.body())
    }

    fn json_object(&self) -> Option<Value> {
        serde_json::from_slice::<Value>(self.body())
            .ok()
            .filter(Value::is_object)
    }

    fn graph_json(&self) -> Result<Value, Reply> {
        self.json_object().ok_or_else(|| {
            graph_error(
                400,
                100,
                None,
                "(#100) The request body must be a JSON object",
            )
        })
    }

    fn line_json(&self) -> Result<Value, Reply> {
        self.json_object().ok_or_else(|| {
            (
                400,
                json!({"message": "The request body could not be parsed as JSON"}),
            )
        })
    }
}

// ===== rules shared by endpoints =====

fn check_version(segment: &str) -> Result<(), Reply> {
    let valid = segment
        .strip_prefix('v')
        .and_then(|v| v.split_once('.'))
        .is_some_and(|(major, minor)| {
            !major.is_empty()
                && !minor.is_empty()
                && major.bytes().all(|b| b.is_ascii_digit())
                && minor.bytes().all(|b| b.is_ascii_digit())
        });
    if valid {
        Ok(())
    } else {
        Err(graph_error(
            400,
            2635,
            None,
            &format!(
                "(#2635) Unknown or unsupported Graph API version {segment:?}: paths start with /vNN.N/"
            ),
        ))
    }
}

fn appsecret_proof(secret: &str, token: &str) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.as_bytes());
    hex::encode(aws_lc_rs::hmac::sign(&key, token.as_bytes()).as_ref())
}

fn check_proof(secret: &str, token: &str, params: &Params) -> Result<(), Reply> {
    match params.get("appsecret_proof") {
        None => Err(graph_error(
            400,
            100,
            None,
            "API calls from the server require an appsecret_proof argument",
        )),
        Some(proof) if proof == appsecret_proof(secret, token) => Ok(()),
        Some(_) => Err(graph_error(
            400,
            100,
            None,
            "Invalid appsecret_proof provided in the API argument",
        )),
    }
}

/// The `fields` parameter, each one known to the node; `default` when absent.
fn requested_fields(
    params: &Params,
    allowed: &[&str],
    default: &[&str],
    node: &str,
) -> Result<Vec<String>, Reply> {
    let Some(raw) = params.get("fields") else {
        return Ok(default.iter().map(|f| (*f).to_owned()).collect());
    };
    let mut fields = Vec::new();
    for field in raw.split(',').map(str::trim) {
        if !allowed.contains(&field) {
            return Err(graph_error(
                400,
                100,
                None,
                &format!(
                    "(#100) Tried accessing nonexisting field ({field}) on node type ({node})"
                ),
            ));
        }
        fields.push(field.to_owned());
    }
    Ok(fields)
}

/// The `subscribed_fields` parameter of a subscription: present, each field known.
fn subscription_fields(params: &Params, known: &[&str]) -> Result<Vec<String>, Reply> {
    let raw = params.get("subscribed_fields").unwrap_or_default();
    if raw.trim().is_empty() {
        return Err(graph_error(
            400,
            100,
            None,
            "(#100) The parameter subscribed_fields is required.",
        ));
    }
    let mut fields = Vec::new();
    for field in raw.split(',').map(str::trim) {
        if !known.contains(&field) {
            return Err(graph_error(
                400,
                100,
                None,
                &format!(
                    "(#100) Param subscribed_fields[{}] must be one of {{{}}} - got \"{field}\".",
                    fields.len(),
                    known.join(", ")
                ),
            ));
        }
        if !fields.iter().any(|f| f == field) {
            fields.push(field.to_owned());
        }
    }
    Ok(fields)
}

/// `recipient.id` of a Messenger / Instagram send (which needs `message` or `sender_action`).
fn messaging_recipient(body: &Value) -> Result<String, Reply> {
    let recipient = body
        .pointer("/recipient/id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .ok_or_else(|| graph_error(400, 100, None, "(#100) The parameter recipient is required"))?;
    if body.get("message").is_none() && body.get("sender_action").is_none() {
        return Err(graph_error(
            400,
            100,
            None,
            "(#100) Must send either message or sender_action",
        ));
    }
    Ok(recipient.to_owned())
}

fn check_line_endpoint(endpoint: &str) -> Result<(), Reply> {
    if !endpoint.starts_with("https://") || endpoint.len() <= "https://".len() {
        return Err(line_invalid("endpoint", "must be an https URL"));
    }
    if endpoint.chars().count() > 500 {
        return Err(line_invalid("endpoint", "must be at most 500 characters"));
    }
    Ok(())
}

// ===== replies =====

fn ok(body: Value) -> Reply {
    (200, body)
}

/// The Graph error shape (`error_subcode` only when there is one).
fn graph_error(status: u16, code: i64, subcode: Option<i64>, message: &str) -> Reply {
    let mut error = json!({
        "message": message,
        "type": "OAuthException",
        "code": code,
        "fbtrace_id": format!("A{}", random_hex(10)),
    });
    if let Some(subcode) = subcode {
        error["error_subcode"] = json!(subcode);
    }
    (status, json!({ "error": error }))
}

fn unknown_path() -> Reply {
    (
        404,
        json!({"error": {"message": "Unknown path", "type": "GraphMethodException", "code": 100}}),
    )
}

fn missing_object(method: &str, id: &str) -> Reply {
    graph_error(
        400,
        100,
        Some(33),
        &format!(
            "Unsupported {method} request. Object with ID '{id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation."
        ),
    )
}

fn instagram_error(message: &str) -> Reply {
    (
        400,
        json!({"error_type": "OAuthException", "code": 400, "error_message": message}),
    )
}

fn line_invalid(property: &str, message: &str) -> Reply {
    (
        400,
        json!({"message": "The request body has 1 error(s)", "details": [{"message": message, "property": property}]}),
    )
}

fn token_error(problem: TokenProblem, app_id: &str) -> Reply {
    match problem {
        TokenProblem::Unknown => graph_error(
            400,
            190,
            None,
            "Invalid OAuth access token - Cannot parse access token",
        ),
        TokenProblem::Expired(at) => graph_error(400, 190, Some(463), &expired_message(at)),
        TokenProblem::Revoked(subcode) => {
            graph_error(400, 190, Some(subcode), &revoked_message(subcode, app_id))
        }
    }
}

fn expired_message(at: OffsetDateTime) -> String {
    format!(
        "Error validating access token: Session has expired on {}.",
        at.format(&Rfc3339).unwrap_or_default()
    )
}

fn revoked_message(subcode: i64, app_id: &str) -> String {
    match subcode {
        458 => format!("Error validating access token: The user has not authorized application {app_id}."),
        460 => "Error validating access token: The session has been invalidated because the user changed their password or Facebook has changed the session for security reasons.".to_owned(),
        463 => "Error validating access token: Session has expired.".to_owned(),
        492 => "Error validating access token: The user is not an admin of the Page.".to_owned(),
        _ => "Error validating access token: The session is invalid.".to_owned(),
    }
}

fn injected_message(code: i64) -> String {
    match code {
        1 => "An unknown error occurred".to_owned(),
        2 => "An unexpected error has occurred. Please retry your request later.".to_owned(),
        4 => "(#4) Application request limit reached".to_owned(),
        17 => "(#17) User request limit reached".to_owned(),
        32 => "(#32) Page request limit reached".to_owned(),
        190 => "Error validating access token".to_owned(),
        200 => "(#200) Permissions error".to_owned(),
        613 => "(#613) Calls to this api have exceeded the rate limit.".to_owned(),
        other => format!("(#{other}) Injected failure"),
    }
}

// ===== randomness =====

fn random_bytes(n: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut bytes).expect("the system random source works");
    bytes
}

fn random_hex(chars: usize) -> String {
    let mut out = hex::encode(random_bytes(chars.div_ceil(2)));
    out.truncate(chars);
    out
}

fn digits(n: usize) -> String {
    random_bytes(n)
        .iter()
        .map(|b| char::from(b'0' + b % 10))
        .collect()
}

/// The `appsecret_proof` for `token` under `secret`, for tests that call the fakes directly.
pub fn proof_for(secret: &str, token: &str) -> String {
    appsecret_proof(secret, token)
}
