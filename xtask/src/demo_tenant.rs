//! The demo tenant, shared by `cargo xtask demo` and `cargo xtask bench`: Kumo Bakery with a Messenger
//! Page, a WhatsApp number and a LINE channel and a few knowledge entries; signed webhook bodies for its
//! accounts; and, for the bench, a stand-in for the Graph API and LINE sends that answers as they do
//! and counts them (the demo uses the strict platform fakes and connects through the flows).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Result;
use inbox_shared::ids::new_id;
use inbox_shared::model::{AiMode, Channel, KnowledgeEntry, Platform, Tenant, TenantId};
use inbox_shared::secret::{ChannelSecret, PlatformToken};
use inbox_shared::service::channels::{ChannelService, NewChannel};
use inbox_shared::store::Store;
use inbox_shared::vault::TokenVault;
use inbox_tests::fake_http::{FakeHttp, Recorded};
use serde_json::{Value, json};
use time::OffsetDateTime;

pub const APP_SECRET: &str = "demo-app-secret";
pub const VERIFY_TOKEN: &str = "demo-verify-token";
pub const LINE_SECRET: &str = "demo-line-channel-secret";
pub const PAGE: &str = "104857600000001";
pub const WHATSAPP: &str = "106540352242922";
/// The WhatsApp Business Account the number belongs to (the `entry.id` of its webhooks).
pub const WABA: &str = "102290129340398";
pub const LINE_BOT: &str = "U0123456789abcdef0123456789abcdef";
/// The Meta user who connected the Page (the subject of the demo's data-deletion callback).
pub const PAGE_OWNER: &str = "meta-user-kumo-owner";

pub const KNOWLEDGE: [(&str, &str); 3] = [
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
];

/// The tenant as stored, and its channels in the order Messenger, WhatsApp, LINE.
pub struct DemoTenant {
    pub tenant: Tenant,
    pub channels: Vec<Channel>,
}

impl DemoTenant {
    /// Creates the tenant in `ai_mode`, connects its three accounts with tokens of the platform stand-in
    /// (sealed by the vault as any connect does; the bench's accounts are not checked with a platform)
    /// and adds the knowledge entries.
    pub async fn create(store: &Store, vault: TokenVault, ai_mode: AiMode) -> Result<Self> {
        let tenant = Self::sign_up(store, ai_mode).await?;
        let service = ChannelService::new(store.clone(), vault, "demo");
        let mut channels = Vec::new();
        for (platform, account, owner) in [
            (Platform::Messenger, PAGE, Some(PAGE_OWNER)),
            (Platform::Whatsapp, WHATSAPP, None),
            (Platform::Line, LINE_BOT, None),
        ] {
            let mut new = NewChannel::with_token(
                platform,
                account,
                PlatformToken::new(format!("demo-{platform}-token")),
            );
            new.secret = (platform == Platform::Line).then(|| ChannelSecret::new(LINE_SECRET));
            new.connected_by = owner.map(str::to_owned);
            channels.push(service.connect(&tenant, new).await?.channel);
        }
        Ok(Self { tenant, channels })
    }

    /// The tenant in `ai_mode` with its knowledge entries, no channel yet.
    pub async fn sign_up(store: &Store, ai_mode: AiMode) -> Result<Tenant> {
        let mut tenant = Tenant::new(TenantId::generate(), "Kumo Bakery".into(), store.now());
        tenant.ai_mode = ai_mode;
        tenant.instructions = "Warm, brief, no emoji.".into();
        store.create_tenant(&tenant).await?;
        for (question, answer) in KNOWLEDGE {
            store
                .add_knowledge(&KnowledgeEntry {
                    tenant_id: tenant.tenant_id.clone(),
                    entry_id: new_id("kb"),
                    question: question.into(),
                    answer: answer.into(),
                    alternates: Vec::new(),
                    created_at: store.now(),
                })
                .await?;
        }
        Ok(tenant)
    }

    pub fn channel(&self, platform: Platform) -> &Channel {
        self.channels
            .iter()
            .find(|c| c.platform == platform)
            .expect("the demo tenant has a channel on every platform it uses")
    }
}

fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// A Messenger delivery to the demo Page: one `messaging` item per (customer PSID, mid, text).
pub fn messenger_delivery(messages: &[(&str, &str, &str)]) -> Value {
    let now = now_ms();
    let messaging: Vec<Value> = messages
        .iter()
        .map(|(user, mid, text)| {
            json!({"sender": {"id": user}, "recipient": {"id": PAGE}, "timestamp": now,
                   "message": {"mid": mid, "text": text}})
        })
        .collect();
    json!({"object": "page", "entry": [{"id": PAGE, "time": now, "messaging": messaging}]})
}

/// A Messenger echo: the Page's own message seen by the webhook (`metadata` is present on our sends).
pub fn messenger_echo(user: &str, mid: &str, text: &str, metadata: Option<&str>) -> Value {
    let now = now_ms();
    let mut message = json!({"is_echo": true, "mid": mid, "text": text});
    if let Some(metadata) = metadata {
        message["metadata"] = json!(metadata);
        message["app_id"] = json!(1_517_890_000_000_u64);
    }
    json!({"object": "page", "entry": [{"id": PAGE, "time": now, "messaging": [{
        "sender": {"id": PAGE}, "recipient": {"id": user}, "timestamp": now, "message": message}]}]})
}

/// A WhatsApp Cloud API delivery of one text message to the demo number.
pub fn whatsapp_text(wa_id: &str, wamid: &str, text: &str) -> Value {
    json!({"object": "whatsapp_business_account", "entry": [{"id": WABA, "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550783881", "phone_number_id": WHATSAPP},
        "contacts": [{"profile": {"name": "Ken"}, "wa_id": wa_id}],
        "messages": [{"from": wa_id, "id": wamid, "timestamp": (now_ms() / 1000).to_string(), "type": "text", "text": {"body": text}}]}}]}]})
}

/// A LINE delivery of one text message to the demo bot.
pub fn line_text(user: &str, event_id: &str, text: &str) -> Value {
    json!({"destination": LINE_BOT, "events": [{"type": "message", "mode": "active",
        "timestamp": now_ms(), "webhookEventId": event_id, "deliveryContext": {"isRedelivery": false},
        "source": {"type": "user", "userId": user}, "replyToken": "demo-reply-token",
        "message": {"id": "5123456789012", "type": "text", "text": text}}]})
}

/// The Graph API and LINE, as far as sending goes: every send answered with a fresh message id in the
/// platform's own response shape, and recorded.
pub struct PlatformStandIn {
    pub http: FakeHttp,
}

impl PlatformStandIn {
    pub async fn start() -> Self {
        let sent = Arc::new(AtomicUsize::new(0));
        let http = FakeHttp::start(move |request: &Recorded| {
            let n = sent.fetch_add(1, Ordering::SeqCst) + 1;
            if request.path.starts_with("/v2/bot/message/") {
                (
                    200,
                    json!({"sentMessages": [{"id": format!("line-demo-{n}"), "quoteToken": "q"}]}),
                )
            } else if request.json()["messaging_product"] == "whatsapp" {
                (
                    200,
                    json!({"messaging_product": "whatsapp", "messages": [{"id": format!("wamid.demo{n}")}]}),
                )
            } else {
                (
                    200,
                    json!({"recipient_id": request.json()["recipient"]["id"], "message_id": format!("m_demo_{n}")}),
                )
            }
        })
        .await;
        Self { http }
    }

    pub fn count(&self) -> usize {
        self.http.requests().len()
    }
}
