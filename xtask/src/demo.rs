//! `cargo xtask demo`: the whole product in one scripted story, offline. It starts moto and the local
//! stack, strict fakes of the Graph API, Instagram and LINE (`inbox_tests::fake_platforms`: codes
//! single use, `appsecret_proof` on every call) that record what would have been sent, signs up a demo
//! tenant that connects its accounts through the onboarding flows (a connect link and Facebook Login
//! for its Page, Embedded Signup for its WhatsApp number, its LINE channel by id and secret), and plays
//! signed webhooks, AI replies, a human takeover, a draft approval, a Meta deletion callback and a
//! year-later retention sweep, printing each step. Everything stops when it ends.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use anyhow::{Context, Result, bail, ensure};
use inbox_shared::aws::AwsClients;
use inbox_shared::clock::{self, ManualClock};
use inbox_shared::config::Config;
use inbox_shared::identity::{Directory, Role};
use inbox_shared::ids::new_id;
use inbox_shared::jobs::SweepStage;
use inbox_shared::keys;
use inbox_shared::model::*;
use inbox_shared::platform::signature::{line_signature, meta_signature};
use inbox_shared::platform::signed_request::sign_request;
use inbox_shared::secret::{ChannelSecret, Password};
use inbox_shared::service::onboarding::{LineConnect, Onboarding};
use inbox_shared::store::Store;
use inbox_shared::sweep::{TenantSweeper, Unlimited};
use inbox_shared::vault::TokenVault;
use inbox_tests::fake_platforms::{AppFacts, FakePlatforms, SentMessage};
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::net::TcpListener;

use crate::demo_tenant::*;
use crate::moto::Moto;
use crate::serve::Stack;

/// How long a step waits for the pollers.
const PATIENCE: StdDuration = StdDuration::from_secs(30);

pub fn run() -> Result<ExitCode> {
    // The functions' JSON logs on stderr at `warn` unless `RUST_LOG` says otherwise: the story on
    // stdout says what each step did, and the info lines (two or three per message) would double its
    // length; the warnings (the forged webhook refused) and any error still show.
    inbox_shared::telemetry::init_json_logs_at("warn");
    step("Starting the AWS emulator (moto) on a loopback port, unless AWS_ENDPOINT_URL names one");
    let own_moto = Moto::unless_endpoint_set()?;
    let runtime = tokio::runtime::Runtime::new()?;
    let result = runtime.block_on(story());
    drop(runtime);
    drop(own_moto);
    result?;
    println!("\n✔ The demo is over; moto, the stack and the stand-ins are stopped.");
    Ok(ExitCode::SUCCESS)
}

fn step(text: &str) {
    println!("\n▶ {text}");
}

fn detail(text: &str) {
    println!("    {text}");
}

fn describe_send(sent: &SentMessage) -> String {
    let body = &sent.body;
    let (api, text) = if sent.path.starts_with("/v2/bot/message/reply") {
        ("LINE reply API", body["messages"][0]["text"].clone())
    } else if sent.path.starts_with("/v2/bot/message/push") {
        ("LINE push API", body["messages"][0]["text"].clone())
    } else if body["messaging_product"] == "whatsapp" {
        ("WhatsApp Cloud API", body["text"]["body"].clone())
    } else {
        ("Messenger Send API", body["message"]["text"].clone())
    };
    format!("→ sent via {api} (POST {}): {text}", sent.path)
}

/// The demo's public origin: what connect links, OAuth redirects and the LINE webhook URL name. The
/// "browser" of the story opens each of them on the local stack.
const PUBLIC_ORIGIN: &str = "https://kumo-inbox.example";
const META_APP_ID: &str = "1517890000000000";
const PAGE_NAME: &str = "Kumo Bakery";

/// The platforms as the demo sees them: strict fakes, and the sends they accepted.
struct Platforms {
    fake: FakePlatforms,
}

impl Platforms {
    fn count(&self) -> usize {
        self.fake.sends().len()
    }

    /// Waits up to `patience` for the `n`th send (1-based).
    async fn nth_send(&self, n: usize, patience: StdDuration) -> Result<SentMessage> {
        let waited = std::time::Instant::now();
        loop {
            if let Some(sent) = self.fake.sends().get(n - 1) {
                return Ok(sent.clone());
            }
            if waited.elapsed() > patience {
                bail!("no send #{n} reached the platforms within {patience:?}");
            }
            tokio::time::sleep(StdDuration::from_millis(100)).await;
        }
    }
}

struct Demo {
    base: String,
    http: reqwest::Client,
    store: Store,
    platforms: Platforms,
    kumo: DemoTenant,
}

impl Demo {
    async fn post(
        &self,
        path: &str,
        body: &str,
        signature: (&str, String),
    ) -> Result<(u16, String)> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header(signature.0, signature.1)
            .body(body.to_owned())
            .send()
            .await?;
        Ok((response.status().as_u16(), response.text().await?))
    }

    async fn meta(&self, body: &Value) -> Result<(u16, String)> {
        let body = body.to_string();
        let signature = meta_signature(APP_SECRET, body.as_bytes());
        self.post("/webhooks/meta", &body, ("x-hub-signature-256", signature))
            .await
    }

    /// A Messenger customer's message; waits for what ai-reply did about it.
    async fn messenger_customer(&self, user: &str, mid: &str, text: &str) -> Result<ReplyOutcome> {
        let (status, _) = self.meta(&messenger_text(user, mid, text)).await?;
        detail(&format!("customer message → {status}"));
        self.outcome(Platform::Messenger, user, mid).await
    }

    /// Waits until ai-reply recorded what it did about a message.
    async fn outcome(
        &self,
        platform: Platform,
        user: &str,
        message_id: &str,
    ) -> Result<ReplyOutcome> {
        let conversation =
            keys::conversation_id(&self.kumo.channel(platform).channel_id, &user.into());
        let waited = std::time::Instant::now();
        loop {
            let messages = self
                .store
                .messages_of_conversation(&self.kumo.tenant.tenant_id, &conversation)
                .await?;
            if let Some(outcome) = messages
                .iter()
                .find(|m| m.message_id == message_id)
                .and_then(|m| m.reply_outcome)
            {
                return Ok(outcome);
            }
            if waited.elapsed() > PATIENCE {
                bail!("ai-reply did not handle {message_id} within {PATIENCE:?}");
            }
            tokio::time::sleep(StdDuration::from_millis(100)).await;
        }
    }
}

fn messenger_text(user: &str, mid: &str, text: &str) -> Value {
    messenger_delivery(&[(user, mid, text)])
}

async fn story() -> Result<()> {
    let fake = FakePlatforms::start(
        AppFacts {
            app_id: META_APP_ID.into(),
            app_secret: APP_SECRET.into(),
        },
        AppFacts {
            app_id: "1517890000000001".into(),
            app_secret: "demo-instagram-app-secret".into(),
        },
    )
    .await;
    fake.set_now(OffsetDateTime::now_utc());
    fake.add_facebook_user(PAGE_OWNER);
    fake.add_page(PAGE_OWNER, PAGE, PAGE_NAME, None, false);
    fake.add_waba(WABA, WHATSAPP, "+81 3-1234-5678", PAGE_NAME);
    fake.add_line_bot(
        "2001234567",
        LINE_SECRET,
        LINE_BOT,
        "demo-line-long-lived-token",
    );
    let prefix = format!("demo{}", &new_id("x")[2..10]);
    let (graph_url, line_url) = (fake.graph_url(), fake.line_url());
    let config = Config::from_lookup(|name| match name {
        "TABLE_NAME" => Some(format!("{prefix}-inbox")),
        "INBOUND_QUEUE_URL" => Some(format!("http://local/{prefix}-inbound.fifo")),
        "ERASURE_QUEUE_URL" => Some(format!("http://local/{prefix}-erasure")),
        "KMS_KEY_ID" => Some(format!("alias/{prefix}-tokens")),
        "META_APP_ID" => Some(META_APP_ID.into()),
        "META_APP_SECRET" => Some(APP_SECRET.into()),
        "META_VERIFY_TOKEN" => Some(VERIFY_TOKEN.into()),
        "META_LOGIN_CONFIG_ID" => Some("1517890000000002".into()),
        "META_WHATSAPP_CONFIG_ID" => Some("1517890000000003".into()),
        "META_GRAPH_URL" => Some(graph_url.clone()),
        "LINE_API_URL" | "LINE_OAUTH_URL" => Some(line_url.clone()),
        "CONNECT_STATE_SECRET" => Some(format!("demo-connect-state-{}", new_id("s"))),
        "PUBLIC_BASE_URL" => Some(PUBLIC_ORIGIN.into()),
        other => std::env::var(other).ok(),
    })?;
    let platforms = Platforms { fake };
    let llm = match (
        config.anthropic_api_key.is_some(),
        config.openai_api_key.is_some(),
    ) {
        (false, false) => "the offline provider (no LLM key set): answers from the knowledge base",
        _ => "the LLM providers whose keys are set, then the offline provider",
    };
    let clients = AwsClients::from_env().await;
    step("Provisioning the table, queues and KMS key, and starting the six functions");
    let stack = Stack::start(
        TcpListener::bind("127.0.0.1:0").await?,
        config,
        &clients,
        false,
    )
    .await?;
    detail(&format!(
        "local stack on http://{} (public origin {PUBLIC_ORIGIN}); Graph API fake on {graph_url}, LINE fake on {line_url}",
        stack.addr
    ));
    detail(&format!("AI: {llm}"));
    let store = Store::new(
        clients.dynamodb.clone(),
        &stack.config.table_name,
        clock::system(),
    );
    let vault = TokenVault::new(clients.kms.clone(), &stack.config.kms_key_id);

    step("Kumo Bakery signs up; the operator sends its owner connect links");
    let tenant = DemoTenant::sign_up(&store, AiMode::Auto).await?;
    detail("3 knowledge entries added; AI mode: auto");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let base = format!("http://{}", stack.addr);
    // The browser: a public URL of ours, opened on the local stack.
    let local = |url: &str| format!("{base}{}", url.strip_prefix(PUBLIC_ORIGIN).unwrap_or(url));
    let onboarding = Onboarding::new(&stack.config, store.clone(), vault, http.clone(), "demo");

    let link = onboarding
        .connect_link(&tenant, &[Platform::Messenger], false)
        .await?;
    detail(&format!(
        "inboxctl channel connect-link --platform messenger → {}… (1 hour, once)",
        &link.url[..link.url.len().min(60)]
    ));
    let start = http.get(local(&link.url)).send().await?;
    let dialog = start
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .context("the start page redirects to Facebook Login")?
        .to_owned();
    detail(&format!(
        "the owner opens it → {} to {}…",
        start.status().as_u16(),
        &dialog[..dialog.find('?').unwrap_or(dialog.len())]
    ));
    let query: Vec<(String, String)> = form_urlencoded::parse(
        dialog
            .split_once('?')
            .map(|(_, q)| q)
            .unwrap_or_default()
            .as_bytes(),
    )
    .into_owned()
    .collect();
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    // Facebook: the owner logs in and grants the Page; the dialog redirects with a code.
    let code = platforms
        .fake
        .meta_login_code(PAGE_OWNER, &param("redirect_uri"));
    let callback = format!(
        "{}?code={}&state={}",
        param("redirect_uri"),
        form_urlencoded::byte_serialize(code.as_bytes()).collect::<String>(),
        form_urlencoded::byte_serialize(param("state").as_bytes()).collect::<String>()
    );
    let report: Value = http
        .get(local(&callback))
        .header("accept", "application/json")
        .send()
        .await?
        .json()
        .await?;
    ensure!(
        report["connected"].as_array().is_some_and(|a| a.len() == 1),
        "the Page was not connected: {report}"
    );
    detail(&format!(
        "Facebook Login for Business → code exchanged, token checked (debug_token), Page \"{}\" connected",
        report["connected"][0]["name"].as_str().unwrap_or_default()
    ));
    detail(&format!(
        "Page subscribed to our webhooks: {}",
        platforms
            .fake
            .subscribed_fields(PAGE)
            .unwrap_or_default()
            .join(", ")
    ));

    let link = onboarding
        .connect_link(&tenant, &[Platform::Whatsapp], false)
        .await?;
    let state = form_urlencoded::parse(
        link.url
            .split_once('?')
            .map(|(_, q)| q)
            .unwrap_or_default()
            .as_bytes(),
    )
    .find(|(k, _)| k == "state")
    .map(|(_, v)| v.into_owned())
    .context("the link's state")?;
    let page = http.get(local(&link.url)).send().await?;
    detail(&format!(
        "WhatsApp link → {} the Embedded Signup page (Facebook's SDK)",
        page.status().as_u16()
    ));
    let code = platforms.fake.whatsapp_signup_code(PAGE_OWNER, WABA);
    let report: Value = http
        .post(local(&format!("{PUBLIC_ORIGIN}/connect/whatsapp")))
        .header("accept", "application/json")
        .json(&json!({"state": state, "code": code, "waba_id": WABA, "phone_number_id": WHATSAPP}))
        .send()
        .await?
        .json()
        .await?;
    ensure!(
        report["connected"].as_array().is_some_and(|a| a.len() == 1),
        "the number was not connected: {report}"
    );
    detail(
        "the signup's code exchanged at once, the WABA subscribed, the number registered (its PIN sealed)",
    );

    let (line, line_report) = onboarding
        .connect_line(
            &tenant,
            LineConnect {
                line_channel_id: "2001234567".into(),
                secret: ChannelSecret::new(LINE_SECRET),
                token: None,
            },
        )
        .await?;
    detail(&format!(
        "inboxctl channel connect --platform line --channel-id 2001234567 --secret-file … → bot {}, webhook URL set, LINE's test delivery: {}",
        line.channel.account_id,
        if line_report.webhook_test.is_some_and(|t| t.success) {
            "ok"
        } else {
            "failed"
        }
    ));
    let mut channels = store.channels_of_tenant(&tenant.tenant_id).await?;
    channels.sort_by_key(|c| match c.platform {
        Platform::Messenger => 0,
        Platform::Whatsapp => 1,
        _ => 2,
    });
    for channel in &channels {
        detail(&format!(
            "{:9} account {}: {} sealed with a per-channel KMS data key",
            channel.platform,
            channel.account_id,
            if channel.line_channel_id.is_some() {
                "channel secret (tokens minted on demand, none stored)"
            } else {
                "token"
            }
        ));
    }
    let kumo = DemoTenant { tenant, channels };

    let demo = Demo {
        base,
        http: reqwest::Client::new(),
        store,
        platforms,
        kumo,
    };

    step("Meta verifies the webhook URL");
    let handshake = demo
        .http
        .get(format!(
            "{}/webhooks/meta?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1158201444",
            demo.base
        ))
        .send()
        .await?;
    detail(&format!(
        "GET /webhooks/meta → {} {}",
        handshake.status().as_u16(),
        handshake.text().await?
    ));

    step("A Messenger customer asks: \"What are your opening hours?\"");
    let question = messenger_text("psid-aiko", "m_customer_1", "What are your opening hours?");
    let (status, _) = demo.meta(&question).await?;
    detail(&format!(
        "signed webhook → {status} (stored, queued for ai-reply)"
    ));
    let (status, _) = demo.meta(&question).await?;
    detail(&format!(
        "Meta delivers the same webhook again → {status} (a duplicate: nothing stored or queued twice)"
    ));
    let reply = demo.platforms.nth_send(1, PATIENCE).await?;
    detail(&describe_send(&reply));
    let outcome = demo
        .outcome(Platform::Messenger, "psid-aiko", "m_customer_1")
        .await?;
    detail(&format!("outcome recorded on the message: {outcome}"));

    step("Someone forges a webhook without the app secret");
    let forged = messenger_text("psid-mallory", "m_forged", "send me everything");
    let body = forged.to_string();
    let (status, answer) = demo
        .post(
            "/webhooks/meta",
            &body,
            (
                "x-hub-signature-256",
                meta_signature("wrong-secret", body.as_bytes()),
            ),
        )
        .await?;
    ensure!(status == 401, "a forged webhook was answered {status}");
    detail(&format!(
        "→ {status} {answer} (nothing stored, nothing queued)"
    ));

    step("Meta echoes our own reply back to us");
    let our_tag = reply.body["message"]["metadata"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let aiko = keys::conversation_id(
        &demo.kumo.channel(Platform::Messenger).channel_id,
        &"psid-aiko".into(),
    );
    let our_mid = demo
        .store
        .messages_of_conversation(&demo.kumo.tenant.tenant_id, &aiko)
        .await?
        .into_iter()
        .find(|m| m.direction == Direction::Outbound)
        .map(|m| m.message_id)
        .context("our reply is recorded with the platform's message id")?;
    let (status, _) = demo
        .meta(&messenger_echo(
            "psid-aiko",
            &our_mid,
            "We are open…",
            Some(&our_tag),
        ))
        .await?;
    detail(&format!(
        "→ {status}: recognised by its tag ({our_tag}) and the recorded message id; never answered"
    ));

    step("A WhatsApp customer asks: \"Do you deliver to Osaka?\"");
    let whatsapp = whatsapp_text(
        "819012345678",
        "wamid.customer1",
        "Do you deliver to Osaka?",
    );
    let (status, _) = demo.meta(&whatsapp).await?;
    detail(&format!("signed webhook → {status}"));
    let sent = demo.platforms.nth_send(2, PATIENCE).await?;
    ensure!(
        sent.path.contains(WHATSAPP),
        "the second send went to {} (a duplicate or an echo was answered?)",
        sent.path
    );
    detail(&describe_send(&sent));

    step("A LINE customer asks in Japanese: \"予約できますか？\"");
    let line = line_text(
        "Uaaaabbbbccccddddeeeeffff00001111",
        "01JDEMO0000000000000000001",
        "予約できますか？",
    )
    .to_string();
    let (status, _) = demo
        .post(
            "/webhooks/line",
            &line,
            (
                "x-line-signature",
                line_signature(LINE_SECRET, line.as_bytes()),
            ),
        )
        .await?;
    detail(&format!(
        "webhook signed with the channel secret → {status}"
    ));
    detail(&describe_send(&demo.platforms.nth_send(3, PATIENCE).await?));

    step("A Messenger customer asks something the knowledge base does not cover");
    let sends_before = demo.platforms.count();
    let outcome = demo
        .messenger_customer("psid-jun", "m_customer_2", "Is the melon pan vegan?")
        .await?;
    if demo.platforms.count() > sends_before {
        detail(&describe_send(
            &demo.platforms.nth_send(sends_before + 1, PATIENCE).await?,
        ));
    }
    detail(&format!(
        "ai-reply: {outcome} (without an answer it hands the conversation to a person)"
    ));

    step("A shop assistant answers from Meta Business Suite");
    let (status, _) = demo
        .meta(&messenger_echo(
            "psid-jun",
            "m_human_1",
            "Hi Jun, let me check with the baker!",
            None,
        ))
        .await?;
    detail(&format!(
        "an echo we did not send → {status}: a person replied, the conversation goes to a human"
    ));
    let outcome = demo
        .messenger_customer("psid-jun", "m_customer_3", "Thanks, I'll wait")
        .await?;
    detail(&format!(
        "ai-reply: {outcome} — the bot stays quiet until `inboxctl conversation release`"
    ));

    step("The shop assistant answers Jun from the console (console-api, signed in with Cognito)");
    let directory = Directory::from_env(&stack.config, demo.store.clone(), "demo").await?;
    // A staff member added with a password, signed in: the `Authorization` header of their requests.
    let staff_bearer = |email: &'static str, role: Role| {
        let directory = &directory;
        let tenant_id = &demo.kumo.tenant.tenant_id;
        async move {
            let password = Password::new(format!("Demo-{}-pw", new_id("p")));
            directory
                .add_user(tenant_id, email, role, Some(&password))
                .await?;
            let session = directory.login(email, &password).await?;
            anyhow::Ok(format!("Bearer {}", session.id_token.expose_secret()))
        }
    };
    let bearer = staff_bearer("aiko@kumo.example", Role::Agent).await?;
    detail(
        "inboxctl user add --role agent aiko@kumo.example; she signs in (an ID token of the user pool)",
    );
    let human: Value = demo
        .http
        .get(format!("{}/v1/conversations?mode=human", demo.base))
        .header("authorization", &bearer)
        .send()
        .await?
        .json()
        .await?;
    let jun = human["items"]
        .as_array()
        .and_then(|items| items.iter().find(|c| c["user_id"] == "psid-jun"))
        .with_context(|| format!("Jun's conversation is not in the human list: {human}"))?;
    detail(&format!(
        "GET /v1/conversations?mode=human → Jun's conversation ({}, reply window: {})",
        jun["handoff_reason"], jun["reply_window"]
    ));
    let sends_before = demo.platforms.count();
    // What the console's browser sends; a retry carries the same Idempotency-Key.
    let answer_jun = || {
        demo.http
            .post(format!(
                "{}/v1/conversations/{}/messages",
                demo.base,
                jun["id"].as_str().unwrap_or_default()
            ))
            .header("authorization", &bearer)
            .header("idempotency-key", "demo-aiko-1")
            .json(&json!({"text": "The melon pan has butter, so it is not vegan. Sorry, Jun!"}))
            .send()
    };
    let reply = answer_jun().await?;
    ensure!(
        reply.status().is_success(),
        "the console reply was refused: {}",
        reply.text().await?
    );
    detail(&describe_send(
        &demo.platforms.nth_send(sends_before + 1, PATIENCE).await?,
    ));
    let again = answer_jun().await?;
    ensure!(
        again.status().is_success() && demo.platforms.count() == sends_before + 1,
        "a retried console reply was sent twice"
    );
    detail(&format!(
        "the browser retries with the same Idempotency-Key → {}, nothing sent twice",
        again.status().as_u16()
    ));
    let refused = demo
        .http
        .get(format!("{}/v1/conversations", demo.base))
        .send()
        .await?;
    detail(&format!(
        "without a token → {} (the JWT authorizer refuses it)",
        refused.status().as_u16()
    ));

    step("Kumo Bakery switches the AI to draft mode; a customer asks about delivery");
    let mut tenant = demo
        .store
        .require_tenant(&demo.kumo.tenant.tenant_id)
        .await?;
    tenant.ai_mode = AiMode::Draft;
    demo.store.save_tenant(&tenant).await?;
    let sends_before = demo.platforms.count();
    let outcome = demo
        .messenger_customer("psid-mei", "m_customer_4", "Do you deliver to Osaka?")
        .await?;
    let drafts = demo
        .store
        .pending_drafts(&demo.kumo.tenant.tenant_id)
        .await?;
    let draft = drafts.first().context("a pending draft")?;
    detail(&format!(
        "ai-reply: {outcome}; the draft waits: \"{}\"",
        draft.text.expose()
    ));
    detail(&format!("nothing sent yet ({} sends so far)", sends_before));
    let outbox = inbox_shared::service::outbound::Outbox::new(
        demo.store.clone(),
        TokenVault::new(clients.kms.clone(), &stack.config.kms_key_id),
        inbox_shared::platform::send::Sender::new(&stack.config, reqwest::Client::new()),
    );
    outbox
        .approve_draft(
            "demo",
            &demo.kumo.tenant,
            &draft.conversation_id,
            &draft.draft_id,
        )
        .await?;
    detail("the owner approves it (inboxctl drafts approve):");
    detail(&describe_send(
        &demo.platforms.nth_send(sends_before + 1, PATIENCE).await?,
    ));
    outbox
        .approve_draft(
            "demo",
            &demo.kumo.tenant,
            &draft.conversation_id,
            &draft.draft_id,
        )
        .await?;
    detail(&format!(
        "approving again sends nothing ({} sends)",
        demo.platforms.count()
    ));

    step("The owner reads today's analytics (console-api, GET /v1/analytics)");
    let owner_bearer = staff_bearer("haru@kumo.example", Role::Owner).await?;
    let analytics: Value = demo
        .http
        .get(format!("{}/v1/analytics", demo.base))
        .header("authorization", &owner_bearer)
        .send()
        .await?
        .json()
        .await?;
    let platforms = analytics["platforms"]
        .as_array()
        .filter(|p| !p.is_empty())
        .with_context(|| format!("no figures: {analytics}"))?;
    let median = |times: &Value| match times["median_seconds"].as_u64() {
        Some(seconds) => format!("median {seconds} s"),
        None => "no median".to_owned(),
    };
    for figures in platforms {
        detail(&format!(
            "{}: {} conversations, {} customer messages; AI answered {} of {} decided, drafted {}, handed off {}; \
             first response by the AI {} time(s), {}; by a person {} time(s), {}",
            figures["platform"].as_str().unwrap_or_default(),
            figures["conversations"],
            figures["customer_messages"],
            figures["answered_by_ai"]["count"],
            figures["decided"],
            figures["drafted"]["count"],
            figures["handed_off"]["count"],
            figures["first_response_ai"]["count"],
            median(&figures["first_response_ai"]),
            figures["first_response_human"]["count"],
            median(&figures["first_response_human"]),
        ));
    }

    step("The Page owner removes the app on Facebook: Meta calls the data-deletion callback");
    let signed = sign_request(
        APP_SECRET,
        &json!({"algorithm": "HMAC-SHA256", "user_id": PAGE_OWNER,
                "issued_at": OffsetDateTime::now_utc().unix_timestamp()}),
    );
    let answer: Value = demo
        .http
        .post(format!("{}/meta/data-deletion", demo.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("signed_request={signed}"))
        .send()
        .await?
        .json()
        .await?;
    detail(&format!("→ {answer}"));
    let public_status_url = answer["url"].as_str().context("a status URL")?;
    detail(&format!("the person opens {public_status_url}"));
    let status_url = format!(
        "{}{}",
        demo.base,
        public_status_url
            .strip_prefix(PUBLIC_ORIGIN)
            .unwrap_or(public_status_url)
    );
    let waited = std::time::Instant::now();
    let status = loop {
        let status: Value = demo
            .http
            .get(&status_url)
            .header("accept", "application/json")
            .send()
            .await?
            .json()
            .await?;
        if status["status"] == "completed" {
            break status;
        }
        if waited.elapsed() > PATIENCE {
            bail!("the deletion did not complete within {PATIENCE:?}: {status}");
        }
        tokio::time::sleep(StdDuration::from_millis(200)).await;
    };
    detail(&format!(
        "status page: {} at {}",
        status["status"], status["completed_at"]
    ));
    detail(&format!("deleted: {}", status["deleted"]));
    let page = demo.http.get(&status_url).send().await?.text().await?;
    detail(&format!(
        "the HTML page a person reads says: \"{}\"",
        status_sentence(&page)
    ));

    step("A year and a month later: the retention sweep runs");
    let later = OffsetDateTime::now_utc() + time::Duration::days(400);
    let swept_store = Store::new(
        clients.dynamodb.clone(),
        &stack.config.table_name,
        Arc::new(ManualClock::new(later)),
    );
    let report = TenantSweeper::new(swept_store, "demo")
        .sweep(
            &demo.kumo.tenant.tenant_id,
            later,
            SweepStage::default(),
            &mut Unlimited,
        )
        .await?;
    for (what, n) in &report.deleted {
        detail(&format!("{what}: {n} deleted"));
    }
    detail(
        "conversation content older than the tenant's 365 days is gone; the audit trail has the counts",
    );
    ensure!(
        report
            .deleted
            .iter()
            .any(|(what, n)| what.ends_with(".messages") && *n > 0),
        "the sweep deleted no messages: {:?}",
        report.deleted
    );
    let sends = demo.platforms.count();
    ensure!(
        sends == 5,
        "{sends} messages were sent; the story sends exactly 5"
    );
    detail(&format!(
        "{sends} messages were sent to the platforms in all: 3 AI replies, 1 reply of a person from the console and 1 approved draft"
    ));
    drop(stack);
    Ok(())
}

/// The status line of the HTML status page, without tags.
fn status_sentence(page: &str) -> String {
    page.split("<strong>")
        .nth(1)
        .and_then(|rest| rest.split("</strong>").next())
        .unwrap_or("")
        .to_owned()
}
