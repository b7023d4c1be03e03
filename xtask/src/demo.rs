//! `cargo xtask demo`: the whole product in one scripted story, offline. It starts moto and the local
//! stack, a stand-in for the Graph API and LINE that records what would have been sent, creates a demo
//! tenant, and plays signed webhooks, AI replies, a human takeover, a draft approval, a Meta deletion
//! callback and a year-later retention sweep, printing each step. Everything stops when it ends.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration as StdDuration;

use anyhow::{Context, Result, bail};
use inbox_shared::aws::AwsClients;
use inbox_shared::clock::{self, ManualClock};
use inbox_shared::config::Config;
use inbox_shared::ids::new_id;
use inbox_shared::jobs::SweepStage;
use inbox_shared::keys;
use inbox_shared::model::*;
use inbox_shared::platform::signature::{line_signature, meta_signature};
use inbox_shared::platform::signed_request::sign_request;
use inbox_shared::secret::{ChannelSecret, PlatformToken};
use inbox_shared::store::Store;
use inbox_shared::sweep::{TenantSweeper, Unlimited};
use inbox_shared::vault::{SealContext, TokenVault};
use inbox_tests::fake_http::{FakeHttp, Recorded};
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::net::TcpListener;

use crate::moto::Moto;
use crate::serve::Stack;

const APP_SECRET: &str = "demo-app-secret";
const VERIFY_TOKEN: &str = "demo-verify-token";
const LINE_SECRET: &str = "demo-line-channel-secret";
const PAGE: &str = "104857600000001";
const WHATSAPP: &str = "106540352242922";
const LINE_BOT: &str = "U0123456789abcdef0123456789abcdef";
const PAGE_OWNER: &str = "meta-user-kumo-owner";
/// How long a step waits for the pollers.
const PATIENCE: StdDuration = StdDuration::from_secs(30);

pub fn run() -> Result<ExitCode> {
    step("Starting the AWS emulator (moto) on a loopback port");
    let moto = Moto::start()?;
    for (name, value) in moto.env() {
        // SAFETY: set before the runtime starts any thread that reads the environment.
        unsafe { std::env::set_var(name, value) };
    }
    let runtime = tokio::runtime::Runtime::new()?;
    let result = runtime.block_on(story());
    drop(runtime);
    drop(moto);
    match result {
        Ok(()) => {
            println!("\n✔ The demo is over; moto, the stack and the stand-ins are stopped.");
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => Err(err),
    }
}

fn step(text: &str) {
    println!("\n▶ {text}");
}

fn detail(text: &str) {
    println!("    {text}");
}

/// What the Graph API and LINE stand-in answered, and what it was asked.
struct Platforms {
    http: FakeHttp,
}

impl Platforms {
    async fn start() -> Self {
        let sent = Arc::new(AtomicUsize::new(0));
        let http = FakeHttp::start(move |request: &Recorded| {
            let n = sent.fetch_add(1, Ordering::SeqCst) + 1;
            if request.path.starts_with("/v2/bot/message/") {
                (200, json!({"sentMessages": [{"id": format!("line-demo-{n}"), "quoteToken": "q"}]}))
            } else if request.json()["messaging_product"] == "whatsapp" {
                (200, json!({"messaging_product": "whatsapp", "messages": [{"id": format!("wamid.demo{n}")}]}))
            } else {
                (200, json!({"recipient_id": request.json()["recipient"]["id"], "message_id": format!("m_demo_{n}")}))
            }
        })
        .await;
        Self { http }
    }

    /// Waits for the `n`th send and describes it.
    async fn nth_send(&self, n: usize) -> Result<Recorded> {
        let waited = std::time::Instant::now();
        loop {
            if let Some(request) = self.http.requests().get(n - 1) {
                return Ok(request.clone());
            }
            if waited.elapsed() > PATIENCE {
                bail!("no send #{n} reached the platform stand-in within {PATIENCE:?}");
            }
            tokio::time::sleep(StdDuration::from_millis(100)).await;
        }
    }

    fn count(&self) -> usize {
        self.http.requests().len()
    }
}

fn describe_send(request: &Recorded) -> String {
    let body = request.json();
    let (api, text) = if request.path.starts_with("/v2/bot/message/reply") {
        ("LINE reply API", body["messages"][0]["text"].clone())
    } else if request.path.starts_with("/v2/bot/message/push") {
        ("LINE push API", body["messages"][0]["text"].clone())
    } else if body["messaging_product"] == "whatsapp" {
        ("WhatsApp Cloud API", body["text"]["body"].clone())
    } else {
        ("Messenger Send API", body["message"]["text"].clone())
    };
    format!("→ sent via {api} ({} {}): {text}", "POST", request.path)
}

struct Demo {
    base: String,
    http: reqwest::Client,
    store: Store,
    platforms: Platforms,
    tenant: Tenant,
    channels: Vec<Channel>,
}

impl Demo {
    fn channel(&self, platform: Platform) -> &Channel {
        self.channels
            .iter()
            .find(|c| c.platform == platform)
            .expect("the demo connects every platform it uses")
    }

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

    /// Waits until ai-reply recorded what it did about a message.
    async fn outcome(
        &self,
        platform: Platform,
        user: &str,
        message_id: &str,
    ) -> Result<ReplyOutcome> {
        let conversation = keys::conversation_id(&self.channel(platform).channel_id, user);
        let waited = std::time::Instant::now();
        loop {
            let messages = self
                .store
                .messages_of_conversation(&self.tenant.tenant_id, &conversation)
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
    let now = OffsetDateTime::now_utc().unix_timestamp() * 1000;
    json!({"object": "page", "entry": [{"id": PAGE, "time": now, "messaging": [{
        "sender": {"id": user}, "recipient": {"id": PAGE}, "timestamp": now,
        "message": {"mid": mid, "text": text}}]}]})
}

fn messenger_echo(user: &str, mid: &str, text: &str, metadata: Option<&str>) -> Value {
    let now = OffsetDateTime::now_utc().unix_timestamp() * 1000;
    let mut message = json!({"is_echo": true, "mid": mid, "text": text});
    if let Some(metadata) = metadata {
        message["metadata"] = json!(metadata);
        message["app_id"] = json!(1_517_890_000_000_u64);
    }
    json!({"object": "page", "entry": [{"id": PAGE, "time": now, "messaging": [{
        "sender": {"id": PAGE}, "recipient": {"id": user}, "timestamp": now, "message": message}]}]})
}

async fn story() -> Result<()> {
    let platforms = Platforms::start().await;
    let prefix = format!("demo{}", &new_id("x")[2..10]);
    let platform_url = platforms.http.url();
    let config = Config::from_lookup(|name| match name {
        "TABLE_NAME" => Some(format!("{prefix}-inbox")),
        "INBOUND_QUEUE_URL" => Some(format!("http://local/{prefix}-inbound.fifo")),
        "ERASURE_QUEUE_URL" => Some(format!("http://local/{prefix}-erasure")),
        "KMS_KEY_ID" => Some(format!("alias/{prefix}-tokens")),
        "META_APP_SECRET" => Some(APP_SECRET.into()),
        "META_VERIFY_TOKEN" => Some(VERIFY_TOKEN.into()),
        "META_GRAPH_URL" | "LINE_API_URL" => Some(platform_url.clone()),
        other => std::env::var(other).ok(),
    })?;
    let llm = match (
        config.anthropic_api_key.is_some(),
        config.openai_api_key.is_some(),
    ) {
        (false, false) => "the offline provider (no LLM key set): answers from the knowledge base",
        _ => "the LLM providers whose keys are set, then the offline provider",
    };
    let clients = AwsClients::from_env().await;
    step("Provisioning the table, queues and KMS key, and starting the four functions");
    let stack = Stack::start(
        TcpListener::bind("127.0.0.1:0").await?,
        config,
        &clients,
        false,
    )
    .await?;
    detail(&format!(
        "local stack on http://{}; Graph API and LINE stand-in on {platform_url}",
        stack.addr
    ));
    detail(&format!("AI: {llm}"));
    let store = Store::new(
        clients.dynamodb.clone(),
        &stack.config.table_name,
        clock::system(),
    );
    let vault = TokenVault::new(clients.kms.clone(), &stack.config.kms_key_id);

    step(
        "Kumo Bakery signs up and connects a Messenger Page, a WhatsApp number and a LINE channel",
    );
    let mut tenant = Tenant::new(new_id("ten"), "Kumo Bakery".into(), store.now());
    tenant.ai_mode = AiMode::Auto;
    tenant.instructions = "Warm, brief, no emoji.".into();
    store.create_tenant(&tenant).await?;
    let mut channels = Vec::new();
    for (platform, account, owner) in [
        (Platform::Messenger, PAGE, Some(PAGE_OWNER)),
        (Platform::Whatsapp, WHATSAPP, None),
        (Platform::Line, LINE_BOT, None),
    ] {
        let channel_id = new_id("ch");
        let secret = (platform == Platform::Line).then(|| ChannelSecret::new(LINE_SECRET));
        let credentials = vault
            .seal(
                &SealContext::new(&tenant.tenant_id, &channel_id),
                &PlatformToken::new(format!("demo-{platform}-token")),
                secret.as_ref(),
            )
            .await?;
        let channel = Channel {
            tenant_id: tenant.tenant_id.clone(),
            channel_id,
            platform,
            account_id: account.into(),
            status: ChannelStatus::Connected,
            connected_by: owner.map(str::to_owned),
            connected_at: store.now(),
            disconnected_at: None,
            credentials: Some(credentials),
            retain_until: None,
        };
        store.connect_channel(&channel).await?;
        detail(&format!(
            "{platform:9} account {account}: token sealed with a per-channel KMS data key"
        ));
        channels.push(channel);
    }
    for (question, answer) in [
        (
            "What are your opening hours?",
            "We are open 8:00-18:00, Tuesday to Sunday.",
        ),
        (
            "Do you deliver to Osaka?",
            "Yes, we deliver anywhere in Japan within two days.",
        ),
        (
            "予約できますか？",
            "はい、LINEまたはお電話でご予約いただけます。",
        ),
    ] {
        store
            .add_knowledge(&KnowledgeEntry {
                tenant_id: tenant.tenant_id.clone(),
                entry_id: new_id("kb"),
                question: question.into(),
                answer: answer.into(),
                created_at: store.now(),
            })
            .await?;
    }
    detail("3 knowledge entries added; AI mode: auto");

    let demo = Demo {
        base: format!("http://{}", stack.addr),
        http: reqwest::Client::new(),
        store,
        platforms,
        tenant,
        channels,
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
    let reply = demo.platforms.nth_send(1).await?;
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
    detail(&format!(
        "→ {status} {answer} (nothing stored, nothing queued)"
    ));

    step("Meta echoes our own reply back to us");
    let our_tag = reply.json()["message"]["metadata"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let our_mid = format!("m_demo_{}", 1);
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
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let whatsapp = json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550783881", "phone_number_id": WHATSAPP},
        "contacts": [{"profile": {"name": "Ken"}, "wa_id": "819012345678"}],
        "messages": [{"from": "819012345678", "id": "wamid.customer1", "timestamp": now.to_string(), "type": "text", "text": {"body": "Do you deliver to Osaka?"}}]}}]}]});
    let (status, _) = demo.meta(&whatsapp).await?;
    detail(&format!("signed webhook → {status}"));
    detail(&describe_send(&demo.platforms.nth_send(2).await?));

    step("A LINE customer asks in Japanese: \"予約できますか？\"");
    let line = json!({"destination": LINE_BOT, "events": [{"type": "message", "mode": "active",
        "timestamp": now * 1000, "webhookEventId": "01JDEMO0000000000000000001", "deliveryContext": {"isRedelivery": false},
        "source": {"type": "user", "userId": "Uaaaabbbbccccddddeeeeffff00001111"}, "replyToken": "demo-reply-token",
        "message": {"id": "5123456789012", "type": "text", "text": "予約できますか？"}}]}).to_string();
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
    detail(&describe_send(&demo.platforms.nth_send(3).await?));

    step("A Messenger customer asks something the knowledge base does not cover");
    let sends_before = demo.platforms.count();
    let (status, _) = demo
        .meta(&messenger_text(
            "psid-jun",
            "m_customer_2",
            "Is the melon pan vegan?",
        ))
        .await?;
    detail(&format!("customer message → {status}"));
    let outcome = demo
        .outcome(Platform::Messenger, "psid-jun", "m_customer_2")
        .await?;
    if demo.platforms.count() > sends_before {
        detail(&describe_send(
            &demo.platforms.nth_send(sends_before + 1).await?,
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
    let (status, _) = demo
        .meta(&messenger_text(
            "psid-jun",
            "m_customer_3",
            "Thanks, I'll wait",
        ))
        .await?;
    detail(&format!("the customer writes again → {status}"));
    let outcome = demo
        .outcome(Platform::Messenger, "psid-jun", "m_customer_3")
        .await?;
    detail(&format!(
        "ai-reply: {outcome} — the bot stays quiet until `inboxctl conversation release`"
    ));

    step("Kumo Bakery switches the AI to draft mode; a customer asks about delivery");
    let mut tenant = demo.store.require_tenant(&demo.tenant.tenant_id).await?;
    tenant.ai_mode = AiMode::Draft;
    demo.store.save_tenant(&tenant).await?;
    let sends_before = demo.platforms.count();
    let (status, _) = demo
        .meta(&messenger_text(
            "psid-mei",
            "m_customer_4",
            "Do you deliver to Osaka?",
        ))
        .await?;
    detail(&format!("customer message → {status}"));
    let outcome = demo
        .outcome(Platform::Messenger, "psid-mei", "m_customer_4")
        .await?;
    let drafts = demo.store.pending_drafts(&demo.tenant.tenant_id).await?;
    let draft = drafts.first().context("a pending draft")?;
    detail(&format!(
        "ai-reply: {outcome}; the draft waits: \"{}\"",
        draft.text.expose()
    ));
    detail(&format!("nothing sent yet ({} sends so far)", sends_before));
    let outbox = inbox_shared::outbound::Outbox::new(
        demo.store.clone(),
        TokenVault::new(clients.kms.clone(), &stack.config.kms_key_id),
        inbox_shared::platform::send::Sender::new(&stack.config, reqwest::Client::new()),
    );
    outbox
        .approve_draft(
            &demo.tenant.tenant_id,
            &draft.conversation_id,
            &draft.draft_id,
        )
        .await?;
    detail("the owner approves it (inboxctl drafts approve):");
    detail(&describe_send(
        &demo.platforms.nth_send(sends_before + 1).await?,
    ));
    outbox
        .approve_draft(
            &demo.tenant.tenant_id,
            &draft.conversation_id,
            &draft.draft_id,
        )
        .await?;
    detail(&format!(
        "approving again sends nothing ({} sends)",
        demo.platforms.count()
    ));

    step("The Page owner removes the app on Facebook: Meta calls the data-deletion callback");
    let signed = sign_request(
        APP_SECRET,
        &json!({"algorithm": "HMAC-SHA256", "user_id": PAGE_OWNER, "issued_at": now}),
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
    let status_url = answer["url"].as_str().context("a status URL")?.to_owned();
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
            &demo.tenant.tenant_id,
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
    detail(&format!(
        "{} messages were sent to the platforms in all",
        demo.platforms.count()
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
