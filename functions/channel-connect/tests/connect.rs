//! Channel onboarding end to end: connect links, the Facebook and Instagram logins, WhatsApp Embedded
//! Signup and LINE, against strict fakes of the platforms (codes single use, `appsecret_proof` on every
//! Graph call) and moto; then a webhook for the account just connected is ingested and answered.

use ai_reply::Replier;
use channel_connect::ChannelConnect;
use inbox_shared::config::Config;
use inbox_shared::ids::new_id;
use inbox_shared::model::*;
use inbox_shared::platform::signature::{line_signature, meta_signature};
use inbox_shared::secret::{ChannelSecret, PlatformToken};
use inbox_shared::service::onboarding::links::Login;
use inbox_shared::service::onboarding::{LineConnect, Onboarding, TokenConnect};
use inbox_tests::TestEnv;
use inbox_tests::fake_platforms::{AppFacts, FakePlatforms};
use lambda_http::{Body, Request, Response, http};
use serde_json::{Value, json};
use time::Duration;
use webhook_ingest::Ingest;

const META_APP_ID: &str = "1234567890";
const META_APP_SECRET: &str = "meta-app-secret-for-tests";
const IG_APP_ID: &str = "9876543210";
const IG_APP_SECRET: &str = "instagram-app-secret-for-tests";
const STATE_SECRET: &str = "connect-state-secret-0123456789abcdef";
const BASE: &str = "https://inbox.example";
const USER: &str = "10158000000000001";
const PAGE: &str = "104857600000001";
const PORTFOLIO_PAGE: &str = "104857600000002";
const IG_OF_PAGE: &str = "17841400000000001";
const IG_USER: &str = "17841400000000077";
const WABA: &str = "102290129340398";
const PHONE: &str = "106540352242922";
const LINE_CHANNEL: &str = "2001234567";
const LINE_SECRET: &str = "line-channel-secret-for-tests";
const LINE_BOT: &str = "U0123456789abcdef0123456789abcdef";
const PAGE_FIELDS: [&str; 6] = [
    "messages",
    "message_echoes",
    "messaging_postbacks",
    "message_reactions",
    "message_reads",
    "message_deliveries",
];

struct Rig {
    env: TestEnv,
    fake: FakePlatforms,
    config: Config,
    connect: ChannelConnect,
    tenant: Tenant,
}

impl Rig {
    async fn new() -> Self {
        let env = TestEnv::new().await;
        let fake = FakePlatforms::start(
            AppFacts {
                app_id: META_APP_ID.into(),
                app_secret: META_APP_SECRET.into(),
            },
            AppFacts {
                app_id: IG_APP_ID.into(),
                app_secret: IG_APP_SECRET.into(),
            },
        )
        .await;
        fake.set_now(env.store.now());
        fake.add_facebook_user(USER);
        fake.add_page(USER, PAGE, "Kumo Bakery", Some(IG_OF_PAGE), false);
        fake.add_page(USER, PORTFOLIO_PAGE, "Kumo Cafe", None, true);
        fake.add_waba(WABA, PHONE, "+81 3-0000-0000", "Kumo Bakery");
        fake.add_instagram_user(IG_USER, "kumo.bakery");
        fake.add_line_bot(LINE_CHANNEL, LINE_SECRET, LINE_BOT, "line-long-lived-token");
        let (graph, ig_api, ig_graph, line) = (
            fake.graph_url(),
            fake.instagram_api_url(),
            fake.instagram_graph_url(),
            fake.line_url(),
        );
        let config = env.config(&[
            ("META_APP_ID", META_APP_ID),
            ("META_APP_SECRET", META_APP_SECRET),
            ("META_VERIFY_TOKEN", "verify"),
            ("META_LOGIN_CONFIG_ID", "555000111"),
            ("META_WHATSAPP_CONFIG_ID", "555000222"),
            ("META_GRAPH_URL", &graph),
            ("INSTAGRAM_APP_ID", IG_APP_ID),
            ("INSTAGRAM_APP_SECRET", IG_APP_SECRET),
            ("INSTAGRAM_OAUTH_URL", &ig_api),
            ("INSTAGRAM_GRAPH_URL", &ig_graph),
            ("LINE_API_URL", &line),
            ("LINE_OAUTH_URL", &line),
            ("CONNECT_STATE_SECRET", STATE_SECRET),
            ("PUBLIC_BASE_URL", BASE),
        ]);
        let connect = ChannelConnect::new(&config, &env.clients, env.clock.clone()).unwrap();
        let mut tenant = env.seed_tenant("Kumo", &[], "", "").await.tenant;
        // The AI answers by itself, so a webhook's reply goes out through the platform.
        tenant.ai_mode = AiMode::Auto;
        env.store.save_tenant(&tenant).await.unwrap();
        Self {
            env,
            fake,
            config,
            connect,
            tenant,
        }
    }

    fn onboarding(&self) -> Onboarding {
        Onboarding::new(
            &self.config,
            self.env.store.clone(),
            self.env.vault(),
            reqwest::Client::new(),
            "test",
        )
    }

    async fn link(&self, platforms: &[Platform], via_facebook: bool) -> String {
        let link = self
            .onboarding()
            .connect_link(&self.tenant, platforms, via_facebook)
            .await
            .unwrap();
        state_of(&link.url)
    }

    async fn get(&self, path_and_query: &str, json: bool) -> Response<Body> {
        let request: Request = http::Request::builder()
            .method("GET")
            .uri(format!("{BASE}{path_and_query}"))
            .header(
                "accept",
                if json {
                    "application/json"
                } else {
                    "text/html"
                },
            )
            .body(Body::Empty)
            .unwrap();
        self.connect.handle(request).await
    }

    async fn post_signup(&self, body: &Value) -> Response<Body> {
        let request: Request = http::Request::builder()
            .method("POST")
            .uri(format!("{BASE}/connect/whatsapp"))
            .header("content-type", "application/json")
            .body(Body::Text(body.to_string()))
            .unwrap();
        self.connect.handle(request).await
    }

    /// The Facebook login as the browser goes through it: start, the dialog's code, the callback.
    async fn meta_login(&self, state: &str) -> Response<Body> {
        let start = self
            .get(&format!("/connect/meta/start?state={}", enc(state)), false)
            .await;
        assert_eq!(start.status(), 302, "{}", text(&start));
        let redirect_uri = query_param(location(&start), "redirect_uri");
        let code = self.fake.meta_login_code(USER, &redirect_uri);
        self.get(
            &format!(
                "/connect/meta/callback?code={}&state={}",
                enc(&code),
                enc(state)
            ),
            true,
        )
        .await
    }

    async fn channels(&self) -> Vec<Channel> {
        self.env
            .store
            .channels_of_tenant(&self.tenant.tenant_id)
            .await
            .unwrap()
    }

    async fn audit(&self) -> Vec<AuditEvent> {
        self.env
            .store
            .audit_events(Some(&self.tenant.tenant_id))
            .await
            .unwrap()
    }

    /// Moves both clocks: ours and the platforms'.
    fn advance(&self, by: Duration) {
        self.env.clock.advance(by);
        self.fake.set_now(self.env.store.now());
    }

    /// Nothing a platform issued appears in what a person or a log line sees.
    fn assert_no_secret_in(&self, seen: &str) {
        for token in self.fake.tokens_issued() {
            assert!(!seen.contains(&token), "a token leaked: {seen}");
        }
        for secret in [META_APP_SECRET, IG_APP_SECRET, STATE_SECRET, LINE_SECRET] {
            assert!(!seen.contains(secret), "a secret leaked: {seen}");
        }
    }
}

impl Rig {
    /// A customer asks the knowledge base's question through a signed Meta webhook; ingest stores it
    /// and ai-reply answers through the platform fakes.
    async fn customer_asks_over_meta(&self, body: Value) {
        self.env
            .store
            .add_knowledge(&KnowledgeEntry {
                tenant_id: self.tenant.tenant_id.clone(),
                entry_id: new_id("kb"),
                question: "What are your opening hours?".into(),
                answer: "We are open 8:00-18:00, Tuesday to Sunday.".into(),
                alternates: Vec::new(),
                created_at: self.env.store.now(),
            })
            .await
            .unwrap();
        let ingest = Ingest::new(&self.config, &self.env.clients, self.env.clock.clone()).unwrap();
        let body = body.to_string();
        let request: Request = http::Request::builder()
            .method("POST")
            .uri(format!("{BASE}/webhooks/meta"))
            .header(
                "x-hub-signature-256",
                meta_signature(META_APP_SECRET, body.as_bytes()),
            )
            .body(Body::Text(body))
            .unwrap();
        assert_eq!(ingest.handle(request).await.status(), 200);
        assert_eq!(
            self.answer(&Replier::new(
                &self.config,
                &self.env.clients,
                self.env.clock.clone()
            ))
            .await,
            1
        );
    }

    /// One batch of the inbound queue through ai-reply; how many jobs it received.
    async fn answer(&self, replier: &Replier) -> usize {
        replier
            .poll_once(
                &self.env.clients.sqs,
                &self.env.provisioned.inbound_queue_url,
                std::time::Duration::ZERO,
                inbox_shared::runner::Invocation::local(
                    std::time::Duration::from_secs(60),
                    inbox_shared::runner::Emf::Discard,
                ),
            )
            .await
            .unwrap()
            .received
    }

    fn now_ms(&self) -> i64 {
        self.env.store.now().unix_timestamp() * 1000
    }
}

fn enc(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

fn state_of(url: &str) -> String {
    query_param(url, "state")
}

fn query_param(url: &str, name: &str) -> String {
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or_default();
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no {name} in {url}"))
}

fn location(response: &Response<Body>) -> &str {
    response.headers()["location"].to_str().unwrap()
}

fn text(response: &Response<Body>) -> String {
    match response.body() {
        Body::Text(t) => t.clone(),
        Body::Binary(b) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    }
}

fn body_json(response: &Response<Body>) -> Value {
    serde_json::from_str(&text(response)).unwrap()
}

#[tokio::test]
async fn a_facebook_login_connects_every_page_and_its_instagram_account_and_a_webhook_is_answered()
{
    let rig = Rig::new().await;
    let state = rig
        .link(&[Platform::Messenger, Platform::Instagram], false)
        .await;

    // The start page sends the browser to Facebook Login for Business with our configuration.
    let start = rig
        .get(&format!("/connect/meta/start?state={}", enc(&state)), false)
        .await;
    assert_eq!(start.status(), 302);
    let dialog = location(&start);
    assert!(
        dialog.starts_with("https://www.facebook.com/v24.0/dialog/oauth?"),
        "{dialog}"
    );
    assert_eq!(query_param(dialog, "client_id"), META_APP_ID);
    assert_eq!(query_param(dialog, "config_id"), "555000111");
    assert_eq!(query_param(dialog, "state"), state);
    assert_eq!(
        query_param(dialog, "redirect_uri"),
        format!("{BASE}/connect/meta/callback")
    );

    let done = rig.meta_login(&state).await;
    assert_eq!(done.status(), 200, "{}", text(&done));
    let report = body_json(&done);
    let connected: Vec<(String, String)> = report["connected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["platform"].as_str().unwrap().to_owned(),
                a["account_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        connected.contains(&("messenger".into(), PAGE.into())),
        "{report}"
    );
    assert!(
        connected.contains(&("instagram".into(), IG_OF_PAGE.into())),
        "{report}"
    );
    assert!(
        connected.contains(&("messenger".into(), PORTFOLIO_PAGE.into())),
        "a Business Portfolio Page, missing from /me/accounts, is found through debug_token: {report}"
    );
    assert_eq!(connected.len(), 3, "{report}");
    // The Page without an Instagram account is no failure when Messenger was asked too.
    assert_eq!(report["failed"], json!([]), "{report}");
    rig.assert_no_secret_in(&report.to_string());

    // Each Page is subscribed to exactly the fields ingest handles, with its Page token and proof.
    for page in [PAGE, PORTFOLIO_PAGE] {
        let mut fields = rig.fake.subscribed_fields(page).expect("subscribed");
        fields.sort();
        let mut expected: Vec<String> = PAGE_FIELDS.iter().map(|f| f.to_string()).collect();
        expected.sort();
        assert_eq!(fields, expected, "{page}");
    }
    for (host, request) in rig.fake.requests() {
        let query = request.query.clone().unwrap_or_default();
        let carries_token =
            request.header("authorization").is_some() || query.contains("access_token=");
        if host.contains("graph") && carries_token {
            assert!(
                query.contains("appsecret_proof="),
                "{} {} without a proof",
                request.method,
                request.path
            );
        }
    }
    let channels = rig.channels().await;
    let page = channels.iter().find(|c| c.account_id == PAGE).unwrap();
    assert_eq!(
        page.connected_by.as_deref(),
        Some(USER),
        "for Meta's deauthorize callback"
    );
    assert_eq!(page.name.as_deref(), Some("Kumo Bakery"));
    let ig = channels
        .iter()
        .find(|c| c.account_id == IG_OF_PAGE)
        .unwrap();
    assert_eq!(ig.parent_account_id.as_deref(), Some(PAGE));

    // The newly connected Page's customer writes; ingest takes it and ai-reply answers through Graph.
    let now = rig.now_ms();
    rig.customer_asks_over_meta(
        json!({"object": "page", "entry": [{"id": PAGE, "time": now, "messaging": [{
        "sender": {"id": "7001"}, "recipient": {"id": PAGE}, "timestamp": now,
        "message": {"mid": "m_first", "text": "What are your opening hours?"}}]}]}),
    )
    .await;
    let sends = rig.fake.sends();
    assert_eq!(
        sends.len(),
        1,
        "{sends:?} {:?}",
        rig.fake
            .requests()
            .iter()
            .map(|(h, r)| format!("{h} {} {}", r.method, r.path))
            .collect::<Vec<_>>()
    );
    assert_eq!(sends[0].account_id, PAGE);
    assert_eq!(sends[0].body["recipient"]["id"], "7001");
    assert!(
        sends[0].body["message"]["text"]
            .as_str()
            .unwrap()
            .contains("8:00-18:00")
    );
}

#[tokio::test]
async fn a_cancelled_login_connects_nothing_and_says_so() {
    let rig = Rig::new().await;
    let state = rig.link(&[Platform::Messenger], false).await;
    let page = rig
        .get(
            &format!(
                "/connect/meta/callback?error=access_denied&error_reason=user_denied&state={}",
                enc(&state)
            ),
            false,
        )
        .await;
    assert_eq!(page.status(), 200);
    assert!(text(&page).contains("cancelled"), "{}", text(&page));
    assert!(rig.channels().await.is_empty());
    assert!(rig.fake.subscribed_fields(PAGE).is_none());
}

#[tokio::test]
async fn replayed_expired_tampered_and_misrouted_states_are_refused_and_connect_nothing() {
    let rig = Rig::new().await;
    let state = rig.link(&[Platform::Messenger], false).await;
    assert_eq!(rig.meta_login(&state).await.status(), 200);
    let connected = rig.channels().await.len();

    // Replayed: the callback again, even with a fresh code.
    let code = rig
        .fake
        .meta_login_code(USER, &format!("{BASE}/connect/meta/callback"));
    let replay = rig
        .get(
            &format!(
                "/connect/meta/callback?code={}&state={}",
                enc(&code),
                enc(&state)
            ),
            true,
        )
        .await;
    assert_eq!(replay.status(), 400);
    assert!(
        body_json(&replay)["error"]
            .as_str()
            .unwrap()
            .contains("used already")
    );
    let start_again = rig
        .get(&format!("/connect/meta/start?state={}", enc(&state)), false)
        .await;
    assert_eq!(
        start_again.status(),
        400,
        "a used link's start page says so too: {}",
        text(&start_again)
    );

    // Tampered: one character of the signature changed; and a state of another login.
    let fresh = rig.link(&[Platform::Messenger], false).await;
    let mut tampered = fresh.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let instagram_state = rig.link(&[Platform::Instagram], false).await;
    for bad in [
        tampered.as_str(),
        instagram_state.as_str(),
        "v1.e30.AAAA",
        "",
    ] {
        let code = rig
            .fake
            .meta_login_code(USER, &format!("{BASE}/connect/meta/callback"));
        let answer = rig
            .get(
                &format!(
                    "/connect/meta/callback?code={}&state={}",
                    enc(&code),
                    enc(bad)
                ),
                false,
            )
            .await;
        assert_eq!(answer.status(), 400, "{bad}: {}", text(&answer));
        assert!(
            text(&answer).contains("Ask for a new connect link"),
            "{}",
            text(&answer)
        );
    }

    // Expired: an hour later.
    rig.advance(Duration::minutes(61));
    let answer = rig.meta_login_start_only(&fresh).await;
    assert_eq!(answer.status(), 400);
    assert!(text(&answer).contains("expired"), "{}", text(&answer));
    assert_eq!(
        rig.channels().await.len(),
        connected,
        "nothing more was connected"
    );
}

impl Rig {
    async fn meta_login_start_only(&self, state: &str) -> Response<Body> {
        self.get(&format!("/connect/meta/start?state={}", enc(state)), false)
            .await
    }
}

#[tokio::test]
async fn a_failed_subscription_leaves_nothing_connected_and_no_token_stored() {
    let rig = Rig::new().await;
    let state = rig.link(&[Platform::Messenger], false).await;
    rig.fake.fail_next(
        "POST",
        &format!("{PAGE}/subscribed_apps"),
        400,
        Some(200),
        None,
    );
    let done = rig.meta_login(&state).await;
    let report = body_json(&done);
    let failed = report["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{report}");
    assert_eq!(failed[0]["account_id"], PAGE);
    assert!(
        failed[0]["reason"].as_str().unwrap().contains("permission"),
        "says which and why: {report}"
    );
    let channels = rig.channels().await;
    assert!(
        channels.iter().all(|c| c.account_id != PAGE),
        "{channels:?}"
    );
    assert!(
        rig.env
            .store
            .route(Platform::Messenger, PAGE)
            .await
            .unwrap()
            .is_none()
    );
    // The other Page went through.
    assert!(channels.iter().any(|c| c.account_id == PORTFOLIO_PAGE));
}

#[tokio::test]
async fn an_outage_is_a_retryable_page_and_the_link_works_again() {
    let rig = Rig::new().await;
    let state = rig.link(&[Platform::Messenger], false).await;
    rig.fake
        .fail_next("GET", "/oauth/access_token", 503, None, None);
    let down = rig.meta_login(&state).await;
    assert_eq!(down.status(), 503, "{}", text(&down));
    assert_eq!(body_json(&down)["retryable"], true);
    assert!(rig.channels().await.is_empty());
    let again = rig.meta_login(&state).await;
    assert_eq!(again.status(), 200, "{}", text(&again));
    assert_eq!(rig.channels().await.len(), 2);
}

#[tokio::test]
async fn reconnecting_keeps_the_channel_and_another_tenant_is_refused() {
    let rig = Rig::new().await;
    rig.meta_login(&rig.link(&[Platform::Messenger], false).await)
        .await;
    let before = rig.channels().await;
    let page_channel = before
        .iter()
        .find(|c| c.account_id == PAGE)
        .unwrap()
        .clone();
    // Its token dies; a send flags it; the business logs in again.
    rig.env
        .store
        .mark_channel_needs_reauth(
            &rig.tenant.tenant_id,
            &page_channel.channel_id,
            ReauthReason::PasswordChanged,
        )
        .await
        .unwrap();
    let again = body_json(
        &rig.meta_login(&rig.link(&[Platform::Messenger], false).await)
            .await,
    );
    let account = again["connected"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["account_id"] == PAGE)
        .unwrap()
        .clone();
    assert_eq!(account["channel_id"], json!(page_channel.channel_id));
    assert_eq!(account["reconnected"], true);
    let after = rig.channels().await;
    assert_eq!(after.len(), before.len(), "no second channel");
    let page_after = after.iter().find(|c| c.account_id == PAGE).unwrap();
    assert_eq!(page_after.status, ChannelStatus::Connected);
    assert_eq!(page_after.reauth_reason, None);
    assert!(
        rig.audit()
            .await
            .iter()
            .any(|e| e.action == "channel.reconnect")
    );

    // Another business cannot take it.
    let other = rig.env.seed_tenant("Other", &[], "", "").await.tenant;
    let link = rig
        .onboarding()
        .connect_link(&other, &[Platform::Messenger], false)
        .await
        .unwrap();
    let theirs = body_json(&rig.meta_login(&state_of(&link.url)).await);
    assert_eq!(theirs["connected"], json!([]), "{theirs}");
    assert!(
        theirs["failed"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("another business"),
        "{theirs}"
    );
    assert!(
        !theirs.to_string().contains(rig.tenant.tenant_id.as_str()),
        "never which tenant"
    );
}

#[tokio::test]
async fn disconnect_unsubscribes_then_destroys_the_token() {
    let rig = Rig::new().await;
    rig.meta_login(&rig.link(&[Platform::Messenger], false).await)
        .await;
    let channel = rig
        .channels()
        .await
        .into_iter()
        .find(|c| c.account_id == PORTFOLIO_PAGE)
        .unwrap();
    assert!(rig.fake.subscribed_fields(PORTFOLIO_PAGE).is_some());
    let gone = rig
        .onboarding()
        .disconnect(&rig.tenant, &channel.channel_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(gone.status, ChannelStatus::Disconnected);
    assert!(gone.credentials.is_none());
    assert!(
        rig.fake.subscribed_fields(PORTFOLIO_PAGE).is_none(),
        "unsubscribed at Meta"
    );
    let event = rig
        .audit()
        .await
        .into_iter()
        .find(|e| e.action == "channel.disconnect")
        .unwrap();
    assert_eq!(event.counts.get("platform_unsubscribed"), Some(&1));

    // When Meta refuses, the token is destroyed all the same and the audit says so.
    let page = rig
        .channels()
        .await
        .into_iter()
        .find(|c| c.account_id == PAGE)
        .unwrap();
    rig.fake.fail_next(
        "DELETE",
        &format!("{PAGE}/subscribed_apps"),
        400,
        Some(190),
        Some(460),
    );
    let gone = rig
        .onboarding()
        .disconnect(&rig.tenant, &page.channel_id)
        .await
        .unwrap()
        .unwrap();
    assert!(gone.credentials.is_none());
    let failed = rig
        .audit()
        .await
        .into_iter()
        .find(|e| {
            e.action == "channel.disconnect"
                && e.subject.as_deref() == Some(page.channel_id.as_str())
        })
        .unwrap();
    assert_eq!(failed.counts.get("platform_unsubscribe_failed"), Some(&1));
    assert_eq!(failed.counts.get("platform_error_code"), Some(&190));
}

#[tokio::test]
async fn instagram_login_connects_the_account_with_its_token_expiry() {
    let rig = Rig::new().await;
    let state = rig.link(&[Platform::Instagram], false).await;
    let start = rig
        .get(
            &format!("/connect/instagram/start?state={}", enc(&state)),
            false,
        )
        .await;
    assert_eq!(start.status(), 302);
    let dialog = location(&start);
    assert!(
        dialog.starts_with("https://www.instagram.com/oauth/authorize?"),
        "{dialog}"
    );
    assert_eq!(query_param(dialog, "client_id"), IG_APP_ID);
    let redirect_uri = query_param(dialog, "redirect_uri");
    assert_eq!(redirect_uri, format!("{BASE}/connect/instagram/callback"));
    // Meta appends `#_` to the code.
    let code = format!(
        "{}#_",
        rig.fake.instagram_login_code(IG_USER, &redirect_uri)
    );
    let done = rig
        .get(
            &format!(
                "/connect/instagram/callback?code={}&state={}",
                enc(&code),
                enc(&state)
            ),
            false,
        )
        .await;
    assert_eq!(done.status(), 200, "{}", text(&done));
    assert!(text(&done).contains("kumo.bakery"), "{}", text(&done));
    rig.assert_no_secret_in(&text(&done));
    let channel = rig.channels().await.pop().unwrap();
    assert_eq!(channel.account_id, IG_USER);
    assert!(channel.instagram_login);
    let expires = channel.token_expires_at.expect("a 60-day token");
    assert!((expires - rig.env.store.now() - Duration::days(60)).abs() < Duration::hours(1));
    assert!(rig.fake.subscribed_fields(IG_USER).is_some());

    // Its customer writes; the answer goes out on graph.instagram.com with the Instagram app's proof.
    let now = rig.now_ms();
    rig.customer_asks_over_meta(
        json!({"object": "instagram", "entry": [{"id": IG_USER, "time": now,
        "messaging": [{"sender": {"id": "9001"}, "recipient": {"id": IG_USER}, "timestamp": now,
        "message": {"mid": "ig_m_1", "text": "What are your opening hours?"}}]}]}),
    )
    .await;
    let sends = rig.fake.sends();
    assert_eq!(sends.len(), 1, "{sends:?}");
    assert_eq!(sends[0].host, "instagram_graph");
    assert_eq!(sends[0].body["recipient"]["id"], "9001");
}

#[tokio::test]
async fn whatsapp_embedded_signup_registers_the_number_and_subscribes_the_waba() {
    let rig = Rig::new().await;
    let state = rig.link(&[Platform::Whatsapp], false).await;
    let page = rig
        .get(&format!("/connect/whatsapp?state={}", enc(&state)), false)
        .await;
    assert_eq!(page.status(), 200);
    let html = text(&page);
    assert!(
        html.contains("555000222") && html.contains("WA_EMBEDDED_SIGNUP"),
        "{html}"
    );
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("https://connect.facebook.net") && csp.contains("frame-ancestors 'none'"));

    // A number outside the WABA the login granted: nothing stored, the link usable again? No: refused.
    let code = rig.fake.whatsapp_signup_code(USER, WABA);
    let wrong = rig
        .post_signup(&json!({"state": state, "code": code, "waba_id": WABA, "phone_number_id": "999999999999"}))
        .await;
    assert_eq!(wrong.status(), 400, "{}", text(&wrong));
    assert!(rig.channels().await.is_empty());

    let state = rig.link(&[Platform::Whatsapp], false).await;
    let code = rig.fake.whatsapp_signup_code(USER, WABA);
    let done = rig
        .post_signup(
            &json!({"state": state, "code": code, "waba_id": WABA, "phone_number_id": PHONE}),
        )
        .await;
    assert_eq!(done.status(), 200, "{}", text(&done));
    let pin = rig.fake.registered_pin(PHONE).expect("registered");
    assert!(
        pin.len() == 6 && pin.bytes().all(|b| b.is_ascii_digit()),
        "{pin}"
    );
    assert!(!text(&done).contains(&pin), "the PIN is never shown");
    assert_eq!(rig.fake.subscribed_fields(WABA), Some(vec![]));
    let channel = rig.channels().await.pop().unwrap();
    assert_eq!(channel.account_id, PHONE);
    assert_eq!(channel.parent_account_id.as_deref(), Some(WABA));
    assert!(
        channel
            .credentials
            .as_ref()
            .unwrap()
            .registration_pin
            .is_some(),
        "sealed"
    );

    // Its customer writes; the answer goes out from the registered number.
    rig.customer_asks_over_meta(json!({"object": "whatsapp_business_account", "entry": [{"id": WABA,
        "changes": [{"field": "messages", "value": {"messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "81300000000", "phone_number_id": PHONE},
        "contacts": [{"profile": {"name": "Ken"}, "wa_id": "819012345678"}],
        "messages": [{"from": "819012345678", "id": "wamid.c1", "timestamp": (rig.now_ms() / 1000).to_string(),
        "type": "text", "text": {"body": "What are your opening hours?"}}]}}]}]}))
        .await;
    let sends = rig.fake.sends();
    assert_eq!(sends.len(), 1, "{sends:?}");
    assert_eq!(sends[0].account_id, PHONE);
    assert_eq!(sends[0].body["to"], "819012345678");

    // Bad input: not JSON, unknown fields, ids that are not ids.
    for bad in [
        json!("x"),
        json!({"state": state, "code": "c", "waba_id": WABA, "phone_number_id": PHONE, "extra": 1}),
        json!({"state": "s", "code": "c", "waba_id": "../me", "phone_number_id": PHONE}),
    ] {
        assert_eq!(rig.post_signup(&bad).await.status(), 400, "{bad}");
    }
}

#[tokio::test]
async fn line_connects_by_channel_id_and_secret_and_mints_its_tokens() {
    let rig = Rig::new().await;
    let (connected, report) = rig
        .onboarding()
        .connect_line(
            &rig.tenant,
            LineConnect {
                line_channel_id: LINE_CHANNEL.into(),
                secret: ChannelSecret::new(LINE_SECRET),
                token: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        connected.channel.account_id, LINE_BOT,
        "the bot's id, read from LINE"
    );
    assert_eq!(
        rig.fake.line_webhook_endpoint(LINE_BOT).as_deref(),
        Some("https://inbox.example/webhooks/line")
    );
    assert_eq!(report.webhook_test.as_ref().map(|t| t.success), Some(true));
    assert!(
        connected
            .channel
            .credentials
            .as_ref()
            .unwrap()
            .token
            .is_none(),
        "no token stored"
    );

    // A LINE customer writes; the answer goes out with a minted token, minted once for two sends.
    let ingest = Ingest::new(&rig.config, &rig.env.clients, rig.env.clock.clone()).unwrap();
    let replier = Replier::new(&rig.config, &rig.env.clients, rig.env.clock.clone());
    rig.env
        .store
        .add_knowledge(&KnowledgeEntry {
            tenant_id: rig.tenant.tenant_id.clone(),
            entry_id: new_id("kb"),
            question: "Can I book a table?".into(),
            answer: "Yes, on LINE or by phone.".into(),
            alternates: Vec::new(),
            created_at: rig.env.store.now(),
        })
        .await
        .unwrap();
    for (n, user) in [
        "U1111111111111111111111111111111a",
        "U1111111111111111111111111111111b",
    ]
    .iter()
    .enumerate()
    {
        let body = json!({"destination": LINE_BOT, "events": [{"type": "message", "mode": "active",
            "timestamp": rig.env.store.now().unix_timestamp() * 1000, "webhookEventId": format!("ev{n}"),
            "deliveryContext": {"isRedelivery": false}, "source": {"type": "user", "userId": user},
            "message": {"id": format!("5123{n}"), "type": "text", "text": "Can I book a table?"}}]})
        .to_string();
        let request: Request = http::Request::builder()
            .method("POST")
            .uri(format!("{BASE}/webhooks/line"))
            .header(
                "x-line-signature",
                line_signature(LINE_SECRET, body.as_bytes()),
            )
            .body(Body::Text(body))
            .unwrap();
        assert_eq!(ingest.handle(request).await.status(), 200);
    }
    for _ in 0..2 {
        rig.answer(&replier).await;
    }
    let line_sends: Vec<_> = rig
        .fake
        .sends()
        .into_iter()
        .filter(|s| s.host == "line")
        .collect();
    assert_eq!(line_sends.len(), 2, "{line_sends:?}");
    let mints = rig
        .fake
        .requests()
        .into_iter()
        .filter(|(_, r)| r.path == "/oauth2/v3/token")
        .count();
    // One at connect (it proves the id and secret), one for both sends.
    assert_eq!(mints, 2);

    // A wrong secret is refused and stores nothing.
    let other = rig.env.seed_tenant("Other", &[], "", "").await.tenant;
    let err = rig
        .onboarding()
        .connect_line(
            &other,
            LineConnect {
                line_channel_id: LINE_CHANNEL.into(),
                secret: ChannelSecret::new("not-the-secret"),
                token: None,
            },
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("does not accept"), "{err}");
}

#[tokio::test]
async fn an_operators_token_is_checked_before_anything_is_stored() {
    let rig = Rig::new().await;
    let onboarding = rig.onboarding();
    // A token of another app, and a dead one.
    let err = onboarding
        .connect_with_token(
            &rig.tenant,
            TokenConnect {
                platform: Platform::Messenger,
                account_id: PAGE.into(),
                token: PlatformToken::new("EAAG-made-up"),
                connected_by: None,
                parent_account_id: None,
                instagram_login: false,
            },
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not valid"), "{err}");
    assert!(rig.channels().await.is_empty());

    let token = rig.fake.page_token(USER, PAGE);
    let connected = onboarding
        .connect_with_token(
            &rig.tenant,
            TokenConnect {
                platform: Platform::Messenger,
                account_id: PAGE.into(),
                token: PlatformToken::new(token),
                connected_by: None,
                parent_account_id: None,
                instagram_login: false,
            },
        )
        .await
        .unwrap();
    assert!(!connected.reconnected);
    assert!(rig.fake.subscribed_fields(PAGE).is_some());
}

#[tokio::test]
async fn token_health_flags_by_code_and_subcode_refreshes_and_resubscribes() {
    let rig = Rig::new().await;
    rig.meta_login(&rig.link(&[Platform::Messenger], false).await)
        .await;
    let onboarding = rig.onboarding();
    let healthy = onboarding.check_token_health(&rig.tenant).await.unwrap();
    assert_eq!(healthy.healthy, 2, "{healthy:?}");

    // Throttling is never reauthorization.
    for code in [4, 17, 613] {
        rig.fake
            .fail_next("GET", "/debug_token", 400, Some(code), None);
        let summary = onboarding.check_token_health(&rig.tenant).await.unwrap();
        assert_eq!(summary.needs_reauth, 0, "{code}: {summary:?}");
        assert_eq!(summary.unreachable, 1, "{code}: {summary:?}");
    }

    // Meta dropped one Page's subscription: restored.
    rig.fake.drop_subscription(PORTFOLIO_PAGE);
    let summary = onboarding.check_token_health(&rig.tenant).await.unwrap();
    assert_eq!(summary.resubscribed, 1, "{summary:?}");
    assert!(rig.fake.subscribed_fields(PORTFOLIO_PAGE).is_some());

    // The password changed (190/460): needs_reauth with its reason, shown and audited.
    rig.fake.revoke_tokens_of(USER, 460);
    let summary = onboarding.check_token_health(&rig.tenant).await.unwrap();
    assert_eq!(summary.needs_reauth, 2, "{summary:?}");
    for channel in rig.channels().await {
        assert_eq!(channel.status, ChannelStatus::NeedsReauth);
        assert_eq!(channel.reauth_reason, Some(ReauthReason::PasswordChanged));
    }
    assert!(
        rig.audit()
            .await
            .iter()
            .any(|e| e.action == "channel.needs_reauth:password_changed")
    );

    // An expired token (190/463) on another tenant's Page.
    let other = rig.env.seed_tenant("Expiring", &[], "", "").await.tenant;
    rig.fake.add_facebook_user("20000000000000002");
    rig.fake.add_page(
        "20000000000000002",
        "204857600000001",
        "Other Page",
        None,
        false,
    );
    let connected = onboarding
        .connect_with_token(
            &other,
            TokenConnect {
                platform: Platform::Messenger,
                account_id: "204857600000001".into(),
                token: PlatformToken::new(
                    rig.fake.page_token("20000000000000002", "204857600000001"),
                ),
                connected_by: None,
                parent_account_id: None,
                instagram_login: false,
            },
        )
        .await
        .unwrap();
    rig.fake.revoke_tokens_of("204857600000001", 463);
    onboarding.check_token_health(&other).await.unwrap();
    let flagged = rig
        .env
        .store
        .get_channel(&other.tenant_id, &connected.channel.channel_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(flagged.reauth_reason, Some(ReauthReason::TokenExpired));
}

#[tokio::test]
async fn instagram_login_tokens_are_refreshed_at_the_right_age() {
    let rig = Rig::new().await;
    let state = rig.link(&[Platform::Instagram], false).await;
    let redirect_uri = format!("{BASE}/connect/instagram/callback");
    let code = rig.fake.instagram_login_code(IG_USER, &redirect_uri);
    let done = rig
        .get(
            &format!(
                "/connect/instagram/callback?code={}&state={}",
                enc(&code),
                enc(&state)
            ),
            true,
        )
        .await;
    assert_eq!(done.status(), 200, "{}", text(&done));
    let onboarding = rig.onboarding();

    // Ten days in: not due (expires in 50 days).
    rig.advance(Duration::days(10));
    assert_eq!(
        onboarding
            .check_token_health(&rig.tenant)
            .await
            .unwrap()
            .refreshed,
        0
    );
    assert!(rig.fake.instagram_refreshes().is_empty());
    // Forty-six days in: within 15 days of expiry, refreshed once, the new expiry stored.
    rig.advance(Duration::days(36));
    let summary = onboarding.check_token_health(&rig.tenant).await.unwrap();
    assert_eq!(summary.refreshed, 1, "{summary:?}");
    assert_eq!(rig.fake.instagram_refreshes().len(), 1);
    let channel = rig.channels().await.pop().unwrap();
    let expires = channel.token_expires_at.unwrap();
    assert!(
        expires - rig.env.store.now() > Duration::days(59),
        "{expires}"
    );
    assert!(
        rig.audit()
            .await
            .iter()
            .any(|e| e.action == "channel.token_refreshed")
    );
    // The next day it is healthy, with the new token (the old one still works at the fake; the
    // refreshed one is what we use).
    rig.advance(Duration::days(1));
    assert_eq!(
        onboarding
            .check_token_health(&rig.tenant)
            .await
            .unwrap()
            .healthy,
        1
    );
    assert_eq!(rig.fake.instagram_refreshes().len(), 1);

    // Left to expire: needs_reauth, token_expired.
    rig.advance(Duration::days(61));
    let summary = onboarding.check_token_health(&rig.tenant).await.unwrap();
    assert_eq!(summary.needs_reauth, 1, "{summary:?}");
    assert_eq!(
        rig.channels().await.pop().unwrap().reauth_reason,
        Some(ReauthReason::TokenExpired)
    );
}

#[tokio::test]
async fn a_link_names_a_login_it_can_start() {
    let rig = Rig::new().await;
    let onboarding = rig.onboarding();
    for (platforms, via_facebook, login) in [
        (vec![Platform::Messenger], false, Login::Facebook),
        (vec![Platform::Instagram], true, Login::Facebook),
        (vec![Platform::Instagram], false, Login::Instagram),
        (vec![Platform::Whatsapp], false, Login::WhatsappSignup),
    ] {
        let link = onboarding
            .connect_link(&rig.tenant, &platforms, via_facebook)
            .await
            .unwrap();
        assert!(
            link.url
                .starts_with(&format!("{BASE}{}?state=", login.start_path())),
            "{}",
            link.url
        );
        assert_eq!(link.expires_at, rig.env.store.now() + Duration::hours(1));
    }
    assert!(
        onboarding
            .connect_link(&rig.tenant, &[Platform::Line], false)
            .await
            .is_err()
    );
    assert!(
        onboarding
            .connect_link(
                &rig.tenant,
                &[Platform::Whatsapp, Platform::Messenger],
                false
            )
            .await
            .is_err()
    );
}
