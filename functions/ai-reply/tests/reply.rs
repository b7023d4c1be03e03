//! ai-reply against DynamoDB, SQS and KMS on moto, with the Graph API, LINE and the LLM providers faked by
//! local HTTP servers: what is sent, drafted, recorded and retried.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use ai_reply::Replier;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use inbox_shared::ids::new_id;
use inbox_shared::jobs::InboundJob;
use inbox_shared::model::*;
use inbox_shared::queue::QueueMessage;
use inbox_shared::secret::PlatformUserId;
use inbox_shared::service::outbound::Delivered;
use inbox_tests::fake_http::{FakeHttp, Recorded, Reply};
use inbox_tests::{Seeded, TestEnv, customer_message};
use serde_json::json;
use time::Duration;
use tokio::time::Instant;

const TOKEN: &str = "EAAG-page-token-do-not-log";
const ANTHROPIC_KEY: &str = "sk-ant-key-do-not-log";
const OPENAI_KEY: &str = "sk-openai-key-do-not-log";
const PAGE: &str = "104857600000001";
const IG: &str = "17841400000000001";
const WA: &str = "106540352242922";
const LINE: &str = "U0123456789abcdef0123456789abcdef";

type Handler = Arc<dyn Fn(&Recorded) -> Reply + Send + Sync>;

/// A fake whose behaviour a test can change midway.
struct Fake {
    http: FakeHttp,
    behaviour: Arc<Mutex<Handler>>,
}

impl Fake {
    async fn start(handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> Self {
        let behaviour: Arc<Mutex<Handler>> = Arc::new(Mutex::new(Arc::new(handler)));
        let current = behaviour.clone();
        let http = FakeHttp::start(move |request| {
            let handler = current.lock().unwrap().clone();
            handler(request)
        })
        .await;
        Self { http, behaviour }
    }

    fn set(&self, handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) {
        *self.behaviour.lock().unwrap() = Arc::new(handler);
    }

    fn requests(&self) -> Vec<Recorded> {
        self.http.requests()
    }
}

/// The Graph API and LINE: every send succeeds with a fresh id.
fn platforms_accept() -> impl Fn(&Recorded) -> Reply + Send + Sync + 'static {
    let sent = AtomicUsize::new(0);
    move |request| {
        let n = sent.fetch_add(1, Ordering::SeqCst);
        if request.path.starts_with("/v2/bot/message/") {
            (
                200,
                json!({"sentMessages": [{"id": format!("line_sent_{n}"), "quoteToken": "q"}]}),
            )
        } else if request.json()["messaging_product"] == "whatsapp" {
            (
                200,
                json!({"messaging_product": "whatsapp", "contacts": [], "messages": [{"id": format!("wamid.sent{n}")}]}),
            )
        } else {
            (
                200,
                json!({"recipient_id": "x", "message_id": format!("m_sent_{n}")}),
            )
        }
    }
}

fn anthropic_says(text: &'static str) -> impl Fn(&Recorded) -> Reply + Send + Sync + 'static {
    move |request| match request.path.as_str() {
        "/v1/messages" => (
            200,
            json!({"id": "msg_1", "type": "message", "role": "assistant",
                   "content": [{"type": "text", "text": text}],
                   "usage": {"input_tokens": 120, "output_tokens": 15}}),
        ),
        "/chat/completions" => (
            200,
            json!({"choices": [{"message": {"role": "assistant", "content": format!("openai: {text}")}}],
                   "usage": {"prompt_tokens": 100, "completion_tokens": 10}}),
        ),
        _ => (404, json!({})),
    }
}

struct World {
    env: TestEnv,
    seeded: Seeded,
    graph: Fake,
    line: Fake,
    llm: Fake,
    replier: Replier,
}

impl World {
    async fn new(ai_mode: AiMode) -> Self {
        Self::with(ai_mode, true).await
    }

    async fn with(ai_mode: AiMode, llm_keys: bool) -> Self {
        let env = TestEnv::new().await;
        let seeded = env
            .seed_tenant(
                "Kumo Bakery",
                &[
                    (Platform::Messenger, PAGE),
                    (Platform::Instagram, IG),
                    (Platform::Whatsapp, WA),
                    (Platform::Line, LINE),
                ],
                TOKEN,
                "line-secret",
            )
            .await;
        let mut tenant = seeded.tenant.clone();
        tenant.ai_mode = ai_mode;
        tenant.instructions = "Be warm and brief.".into();
        env.store.save_tenant(&tenant).await.unwrap();
        for (question, answer) in [
            (
                "What are your opening hours?",
                "We open 8:00-18:00, Tuesday to Sunday.",
            ),
            (
                "Do you ship to Osaka?",
                "Yes, we ship anywhere in Japan within 2 days.",
            ),
        ] {
            env.store
                .add_knowledge(&KnowledgeEntry {
                    tenant_id: tenant.tenant_id.clone(),
                    entry_id: new_id("kn"),
                    question: question.into(),
                    answer: answer.into(),
                    alternates: Vec::new(),
                    created_at: env.store.now(),
                })
                .await
                .unwrap();
        }
        let graph = Fake::start(platforms_accept()).await;
        let line = Fake::start(platforms_accept()).await;
        let llm = Fake::start(anthropic_says("Yes, we ship to Osaka within 2 days.")).await;
        let (graph_url, line_url, llm_url) = (graph.http.url(), line.http.url(), llm.http.url());
        let mut vars = vec![
            ("META_GRAPH_URL", graph_url.as_str()),
            ("LINE_API_URL", line_url.as_str()),
            ("ANTHROPIC_BASE_URL", llm_url.as_str()),
            ("OPENAI_BASE_URL", llm_url.as_str()),
            ("INBOUND_MAX_RECEIVES", "5"),
        ];
        if llm_keys {
            vars.extend([
                ("ANTHROPIC_API_KEY", ANTHROPIC_KEY),
                ("OPENAI_API_KEY", OPENAI_KEY),
            ]);
        }
        let config = env.config(&vars);
        let replier = Replier::new(&config, &env.clients, env.clock.clone());
        Self {
            env,
            seeded: Seeded {
                tenant,
                channels: seeded.channels,
            },
            graph,
            line,
            llm,
            replier,
        }
    }

    fn tenant_id(&self) -> &TenantId {
        &self.seeded.tenant.tenant_id
    }

    /// Stores a customer message as webhook-ingest would and returns its job.
    async fn inbound(&self, platform: Platform, user: &str, text: &str) -> InboundJob {
        self.inbound_with(platform, user, text, None, Duration::minutes(1))
            .await
    }

    async fn inbound_with(
        &self,
        platform: Platform,
        user: &str,
        text: &str,
        payload: Option<&str>,
        age: Duration,
    ) -> InboundJob {
        let channel = self.seeded.channel(platform);
        let user = PlatformUserId::new(user);
        let message = Message {
            payload: payload.map(str::to_owned),
            ..customer_message(
                channel,
                &user,
                &new_id("mid"),
                text,
                self.env.store.now() - age,
            )
        };
        self.env
            .ingest_customer_message(&message, &user, platform, None)
            .await;
        let (conversation_id, sent_at) = (message.conversation_id, message.sent_at);
        InboundJob {
            tenant_id: self.tenant_id().clone(),
            channel_id: channel.channel_id.clone(),
            conversation_id,
            platform,
            message_id: message.message_id,
            sent_at,
            received_at: self.env.store.now(),
            reply_token: (platform == Platform::Line).then(|| "reply-token-1".to_owned()),
        }
    }

    async fn handle(&self, jobs: &[&InboundJob]) -> Vec<String> {
        let response = self
            .replier
            .handle_batch(
                event(jobs),
                Instant::now() + std::time::Duration::from_secs(60),
            )
            .await;
        response
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect()
    }

    async fn message(&self, job: &InboundJob) -> Message {
        self.env
            .store
            .messages_of_conversation(&job.tenant_id, &job.conversation_id)
            .await
            .unwrap()
            .into_iter()
            .find(|m| m.message_id == job.message_id)
            .unwrap()
    }

    async fn outcome(&self, job: &InboundJob) -> Option<ReplyOutcome> {
        self.message(job).await.reply_outcome
    }

    async fn conversation(&self, job: &InboundJob) -> Conversation {
        self.env
            .store
            .get_conversation(&job.tenant_id, &job.channel_id, &job.conversation_id)
            .await
            .unwrap()
            .unwrap()
    }

    fn sends(&self) -> Vec<Recorded> {
        self.graph
            .requests()
            .into_iter()
            .chain(self.line.requests())
            .collect()
    }
}

/// An SQS event as Lambda delivers it from the FIFO queue, one record per job, received once.
fn event(jobs: &[&InboundJob]) -> SqsEvent {
    let mut event = SqsEvent::default();
    for job in jobs {
        let mut record = SqsMessage::default();
        record.message_id = Some(format!("sqs-{}", job.message_id));
        record.body = Some(serde_json::to_string(job).unwrap());
        record.attributes = [
            ("MessageGroupId".to_owned(), job.conversation_id.to_string()),
            ("ApproximateReceiveCount".to_owned(), "1".to_owned()),
        ]
        .into();
        event.records.push(record);
    }
    event
}

#[tokio::test]
async fn auto_mode_replies_on_every_platform() {
    let w = World::new(AiMode::Auto).await;
    let jobs = [
        w.inbound(Platform::Messenger, "psid-1", "Do you ship to Osaka?")
            .await,
        w.inbound(Platform::Instagram, "igsid-1", "Do you ship to Osaka?")
            .await,
        w.inbound(Platform::Whatsapp, "819012345678", "Do you ship to Osaka?")
            .await,
        w.inbound(Platform::Line, "Uaaaa1111", "Do you ship to Osaka?")
            .await,
    ];
    let failed = w.handle(&jobs.iter().collect::<Vec<_>>()).await;
    assert!(failed.is_empty(), "{failed:?}");

    let graph = w.graph.requests();
    assert_eq!(graph.len(), 3);
    let by_path = |path: &str| {
        graph
            .iter()
            .find(|r| r.path == path)
            .unwrap_or_else(|| panic!("no call to {path}"))
    };
    let messenger = by_path(&format!("/v24.0/{PAGE}/messages"));
    assert_eq!(
        messenger.header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    let body = messenger.json();
    assert_eq!(body["recipient"]["id"], "psid-1");
    assert_eq!(body["messaging_type"], "RESPONSE");
    assert!(body.get("tag").is_none(), "AI text never carries a tag");
    assert_eq!(
        body["message"]["text"],
        "Yes, we ship to Osaka within 2 days."
    );
    assert!(
        body["message"]["metadata"]
            .as_str()
            .unwrap()
            .starts_with("inbox-ai:reply:")
    );
    let instagram = by_path("/v24.0/me/messages");
    assert_eq!(instagram.json()["recipient"]["id"], "igsid-1");
    let whatsapp = by_path(&format!("/v24.0/{WA}/messages")).json();
    assert_eq!(whatsapp["to"], "819012345678");
    assert_eq!(
        whatsapp["text"]["body"],
        "Yes, we ship to Osaka within 2 days."
    );

    let line = w.line.requests();
    assert_eq!(line.len(), 1);
    assert_eq!(
        line[0].path, "/v2/bot/message/reply",
        "the reply token is fresh"
    );
    assert_eq!(line[0].json()["replyToken"], "reply-token-1");

    // The prompt carried the instructions, the matching knowledge and the customer's message.
    let prompt = w.llm.requests()[0].json();
    assert!(
        prompt["system"]
            .as_str()
            .unwrap()
            .contains("Be warm and brief.")
    );
    assert!(
        prompt["system"]
            .as_str()
            .unwrap()
            .contains("we ship anywhere in Japan")
    );
    assert_eq!(prompt["messages"][0]["content"], "Do you ship to Osaka?");
    assert_eq!(w.llm.requests()[0].header("x-api-key"), Some(ANTHROPIC_KEY));

    for job in &jobs {
        assert_eq!(w.outcome(job).await, Some(ReplyOutcome::Replied));
        let messages = w
            .env
            .store
            .messages_of_conversation(&job.tenant_id, &job.conversation_id)
            .await
            .unwrap();
        let reply = messages
            .iter()
            .find(|m| m.author == Author::Ai)
            .expect("the reply is stored");
        assert_eq!(reply.status, MessageStatus::Sent);
        assert!(
            w.env
                .store
                .sent_marker(&job.tenant_id, &job.conversation_id, &reply.message_id)
                .await
                .unwrap()
                .is_some(),
            "its echo will be recognised"
        );
    }
    let usage = w
        .env
        .store
        .usage_of_month(w.tenant_id(), &month_of(w.env.store.now()))
        .await
        .unwrap();
    assert_eq!(usage.iter().map(|u| u.replies).sum::<u64>(), 4);
    assert_eq!(usage.iter().map(|u| u.input_tokens).sum::<u64>(), 480);
    assert_eq!(usage.iter().map(|u| u.anthropic_answers).sum::<u64>(), 4);
}

#[tokio::test]
async fn a_stale_line_reply_token_falls_back_to_push_with_a_retry_key() {
    let w = World::new(AiMode::Auto).await;
    let mut job = w
        .inbound(Platform::Line, "Uaaaa2222", "Do you ship to Osaka?")
        .await;
    job.received_at = w.env.store.now() - Duration::seconds(55);
    assert!(w.handle(&[&job]).await.is_empty());
    let line = w.line.requests();
    assert_eq!(line.len(), 1);
    assert_eq!(line[0].path, "/v2/bot/message/push");
    assert_eq!(line[0].json()["to"], "Uaaaa2222");
    assert_eq!(line[0].header("x-line-retry-key").map(str::len), Some(36));
}

#[tokio::test]
async fn draft_mode_stores_a_draft_that_a_person_approves_once() {
    let w = World::new(AiMode::Draft).await;
    let job = w
        .inbound(Platform::Messenger, "psid-2", "Do you ship to Osaka?")
        .await;
    assert!(w.handle(&[&job]).await.is_empty());
    assert!(w.sends().is_empty(), "a draft is not sent");
    assert_eq!(w.outcome(&job).await, Some(ReplyOutcome::Drafted));
    // A redelivery finds the same draft.
    assert!(w.handle(&[&job]).await.is_empty());
    let drafts = w.env.store.pending_drafts(w.tenant_id()).await.unwrap();
    assert_eq!(drafts.len(), 1);
    assert_eq!(
        drafts[0].text.expose(),
        "Yes, we ship to Osaka within 2 days."
    );

    let outbox = w.replier.outbox();
    let first = outbox
        .approve_draft(
            "test",
            &w.seeded.tenant,
            &job.conversation_id,
            &drafts[0].draft_id,
        )
        .await
        .unwrap();
    assert!(matches!(first, Delivered::Sent { .. }));
    let again = outbox
        .approve_draft(
            "test",
            &w.seeded.tenant,
            &job.conversation_id,
            &drafts[0].draft_id,
        )
        .await
        .unwrap();
    assert!(matches!(again, Delivered::AlreadySent { .. }));
    assert_eq!(w.graph.requests().len(), 1);
    let draft = w
        .env
        .store
        .get_draft(w.tenant_id(), &job.conversation_id, &drafts[0].draft_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(draft.status, DraftStatus::Sent);
    assert!(
        w.env
            .store
            .pending_drafts(w.tenant_id())
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn the_primary_provider_failing_falls_back_to_the_next() {
    let w = World::new(AiMode::Auto).await;
    let openai_answers = anthropic_says("ok");
    w.llm.set(move |request| {
        if request.path == "/v1/messages" {
            (
                500,
                json!({"type": "error", "error": {"type": "api_error"}}),
            )
        } else {
            openai_answers(request)
        }
    });
    let job = w
        .inbound(Platform::Messenger, "psid-3", "Do you ship to Osaka?")
        .await;
    assert!(w.handle(&[&job]).await.is_empty());
    let sent = w.graph.requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].json()["message"]["text"], "openai: ok");
    let paths: Vec<String> = w.llm.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/v1/messages", "/chat/completions"]);
    let openai = &w.llm.requests()[1];
    assert_eq!(
        openai.header("authorization"),
        Some(format!("Bearer {OPENAI_KEY}").as_str())
    );
    assert_eq!(openai.json()["messages"][0]["role"], "system");
    let usage = w
        .env
        .store
        .usage_of_month(w.tenant_id(), &month_of(w.env.store.now()))
        .await
        .unwrap();
    assert_eq!(usage[0].provider_calls, 2);
    assert_eq!(usage[0].openai_answers, 1);
}

#[tokio::test]
async fn every_provider_down_retries_then_dead_letters_and_hands_off() {
    let w = World::new(AiMode::Auto).await;
    w.llm.set(|_| (503, json!({"error": "overloaded"})));
    // Not in the knowledge base, so the offline provider cannot stand in.
    let job = w
        .inbound(
            Platform::Messenger,
            "psid-4",
            "My parcel arrived broken, I want a refund",
        )
        .await;
    let queue = &w.env.provisioned.inbound_queue_url;
    w.env
        .publisher()
        .publish(
            queue,
            vec![QueueMessage::fifo(
                serde_json::to_string(&job).unwrap(),
                job.conversation_id.clone(),
                job.dedup_id(),
            )],
        )
        .await
        .unwrap();
    let poll = || {
        w.replier.poll_once(
            &w.env.clients.sqs,
            queue,
            std::time::Duration::ZERO,
            local_invocation(),
        )
    };
    for attempt in 1..=5 {
        let polled = poll().await.unwrap();
        assert_eq!(
            (polled.received, polled.failed),
            (1, 1),
            "attempt {attempt}"
        );
        let mode = w.conversation(&job).await.mode;
        assert_eq!(
            mode == ConversationMode::Human,
            attempt == 5,
            "handed off on the last receive only (attempt {attempt})"
        );
    }
    assert_eq!(
        poll().await.unwrap().received,
        0,
        "moved to the dead-letter queue"
    );
    let dead = w.env.drain_queue(&w.env.provisioned.inbound_dlq_url).await;
    assert_eq!(dead.len(), 1);
    assert!(w.sends().is_empty());
    assert_eq!(
        w.conversation(&job).await.handoff_reason.as_deref(),
        Some(HandoffReason::AiUnavailable.as_str())
    );
    assert_eq!(
        w.outcome(&job).await,
        Some(ReplyOutcome::HandedOff),
        "recorded, so a late redelivery of the webhook does not queue it again"
    );
}

#[tokio::test]
async fn a_send_that_keeps_failing_is_handed_to_a_person_on_the_last_receive() {
    let w = World::new(AiMode::Auto).await;
    w.graph
        .set(|_| (400, json!({"error": {"message": "limit", "code": 613}})));
    let job = w
        .inbound(
            Platform::Messenger,
            "psid-gives-up",
            "Do you ship to Osaka?",
        )
        .await;
    let receive = |count: &str| {
        let mut batch = event(&[&job]);
        batch.records[0]
            .attributes
            .insert("ApproximateReceiveCount".into(), count.into());
        w.replier
            .handle_batch(batch, Instant::now() + std::time::Duration::from_secs(60))
    };
    assert_eq!(receive("4").await.batch_item_failures.len(), 1);
    assert_eq!(w.outcome(&job).await, None, "retried, nothing recorded yet");
    assert_eq!(w.conversation(&job).await.mode, ConversationMode::Bot);

    assert_eq!(
        receive("5").await.batch_item_failures.len(),
        1,
        "the last receive still fails: the record goes to the dead-letter queue"
    );
    assert_eq!(w.outcome(&job).await, Some(ReplyOutcome::HandedOff));
    let conversation = w.conversation(&job).await;
    assert_eq!(conversation.mode, ConversationMode::Human);
    assert_eq!(
        conversation.handoff_reason.as_deref(),
        Some(HandoffReason::ReplyFailed.as_str())
    );
}

#[tokio::test]
async fn a_revoked_token_flags_the_channel_and_is_not_retried() {
    let w = World::new(AiMode::Auto).await;
    w.graph.set(|_| {
        (400, json!({"error": {"message": "Error validating access token", "type": "OAuthException", "code": 190, "error_subcode": 460}}))
    });
    let job = w
        .inbound(Platform::Messenger, "psid-5", "Do you ship to Osaka?")
        .await;
    assert!(
        w.handle(&[&job]).await.is_empty(),
        "a dead token is not retried"
    );
    let message = w.message(&job).await;
    assert_eq!(
        message.reply_outcome,
        Some(ReplyOutcome::ChannelUnavailable)
    );
    assert_eq!(message.error_code, Some(190));
    let channel = w
        .env
        .store
        .require_channel(w.tenant_id(), &job.channel_id)
        .await
        .unwrap();
    assert_eq!(channel.status, ChannelStatus::NeedsReauth);
    // The next message on that channel is not even attempted.
    let next = w
        .inbound(Platform::Messenger, "psid-6", "Do you ship to Osaka?")
        .await;
    assert!(w.handle(&[&next]).await.is_empty());
    assert_eq!(
        w.outcome(&next).await,
        Some(ReplyOutcome::ChannelUnavailable)
    );
    assert_eq!(w.graph.requests().len(), 1);
}

#[tokio::test]
async fn rate_limits_are_retried_and_window_errors_are_final() {
    let w = World::new(AiMode::Auto).await;
    w.graph
        .set(|_| (400, json!({"error": {"message": "limit", "code": 613}})));
    let job = w
        .inbound(Platform::Messenger, "psid-7", "Do you ship to Osaka?")
        .await;
    assert_eq!(w.handle(&[&job]).await.len(), 1, "a rate limit is retried");
    assert_eq!(w.outcome(&job).await, None);

    w.graph.set(|_| {
        (
            400,
            json!({"error": {"message": "outside window", "code": 131047}}),
        )
    });
    let wa = w
        .inbound(Platform::Whatsapp, "8190000007", "Do you ship to Osaka?")
        .await;
    assert!(w.handle(&[&wa]).await.is_empty());
    let message = w.message(&wa).await;
    assert_eq!(message.reply_outcome, Some(ReplyOutcome::WindowClosed));
    assert_eq!(message.error_code, Some(131047));
}

#[tokio::test]
async fn outside_the_window_nothing_is_sent_and_no_provider_is_called() {
    let w = World::new(AiMode::Auto).await;
    let job = w
        .inbound_with(
            Platform::Messenger,
            "psid-8",
            "Do you ship to Osaka?",
            None,
            Duration::hours(25),
        )
        .await;
    assert!(w.handle(&[&job]).await.is_empty());
    assert_eq!(w.outcome(&job).await, Some(ReplyOutcome::WindowClosed));
    assert!(w.sends().is_empty());
    assert!(w.llm.requests().is_empty());
}

#[tokio::test]
async fn a_human_in_charge_keeps_the_bot_silent_until_released() {
    let w = World::new(AiMode::Auto).await;
    let job = w
        .inbound(Platform::Messenger, "psid-9", "Do you ship to Osaka?")
        .await;
    w.env
        .store
        .set_conversation_mode(
            w.tenant_id(),
            &job.channel_id,
            &job.conversation_id,
            ConversationMode::Human,
            Some("agent_replied_in_platform_inbox"),
        )
        .await
        .unwrap();
    assert!(w.handle(&[&job]).await.is_empty());
    assert_eq!(w.outcome(&job).await, Some(ReplyOutcome::HumanMode));
    assert!(w.sends().is_empty());

    // Asking for a person hands off without calling a provider.
    let asks = w
        .inbound(
            Platform::Whatsapp,
            "8190000009",
            "Can I talk to a real person?",
        )
        .await;
    assert!(w.handle(&[&asks]).await.is_empty());
    assert_eq!(w.outcome(&asks).await, Some(ReplyOutcome::HandedOff));
    let conversation = w.conversation(&asks).await;
    assert_eq!(conversation.mode, ConversationMode::Human);
    assert_eq!(
        conversation.handoff_reason.as_deref(),
        Some(HandoffReason::CustomerAskedForAPerson.as_str())
    );
    assert!(w.llm.requests().is_empty());

    // Released: the bot answers again.
    w.env
        .store
        .set_conversation_mode(
            w.tenant_id(),
            &job.channel_id,
            &job.conversation_id,
            ConversationMode::Bot,
            None,
        )
        .await
        .unwrap();
    let after = w
        .inbound_with(
            Platform::Messenger,
            "psid-9",
            "Do you ship to Osaka?",
            None,
            Duration::seconds(5),
        )
        .await;
    assert!(w.handle(&[&after]).await.is_empty());
    assert_eq!(w.outcome(&after).await, Some(ReplyOutcome::Replied));
}

#[tokio::test]
async fn a_burst_of_three_gets_one_reply_to_the_latest() {
    let w = World::new(AiMode::Auto).await;
    let a = w
        .inbound_with(
            Platform::Messenger,
            "psid-10",
            "hi",
            None,
            Duration::seconds(30),
        )
        .await;
    let b = w
        .inbound_with(
            Platform::Messenger,
            "psid-10",
            "I have a question",
            None,
            Duration::seconds(20),
        )
        .await;
    let c = w
        .inbound_with(
            Platform::Messenger,
            "psid-10",
            "Do you ship to Osaka?",
            None,
            Duration::seconds(10),
        )
        .await;
    assert!(w.handle(&[&a, &b, &c]).await.is_empty());
    assert_eq!(w.graph.requests().len(), 1);
    assert_eq!(w.outcome(&a).await, Some(ReplyOutcome::Superseded));
    assert_eq!(w.outcome(&b).await, Some(ReplyOutcome::Superseded));
    assert_eq!(w.outcome(&c).await, Some(ReplyOutcome::Replied));
    // The three became one customer turn of the prompt.
    let prompt = w.llm.requests()[0].json();
    assert_eq!(
        prompt["messages"][0]["content"],
        "hi\nI have a question\nDo you ship to Osaka?"
    );
}

#[tokio::test]
async fn the_same_record_delivered_twice_sends_once() {
    let w = World::new(AiMode::Auto).await;
    let job = w
        .inbound(Platform::Messenger, "psid-11", "Do you ship to Osaka?")
        .await;
    // Concurrently (a visibility timeout ran out while the first was still working)…
    let batch = [&job];
    let (first, second) = tokio::join!(w.handle(&batch), w.handle(&batch));
    assert!(
        first.len() + second.len() <= 1,
        "at most the loser of the claim retries"
    );
    // …and again after the first finished.
    assert!(w.handle(&[&job]).await.is_empty());
    assert_eq!(w.graph.requests().len(), 1);
    assert_eq!(w.outcome(&job).await, Some(ReplyOutcome::Replied));

    // A crash after the send but before the outcome was recorded: the send claim still holds.
    let mut forgotten = w.message(&job).await;
    forgotten.reply_outcome = None;
    w.env
        .store
        .put(&forgotten, inbox_shared::store::Write::Upsert)
        .await
        .unwrap();
    assert!(w.handle(&[&job]).await.is_empty());
    assert_eq!(w.graph.requests().len(), 1, "no second send");
}

#[tokio::test]
async fn the_offline_provider_answers_a_matching_faq_and_hands_off_otherwise() {
    let w = World::with(AiMode::Auto, false).await;
    let faq = w
        .inbound(
            Platform::Messenger,
            "psid-12",
            "what are your opening hours?",
        )
        .await;
    assert!(w.handle(&[&faq]).await.is_empty());
    let sent = w.graph.requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].json()["message"]["text"],
        "We open 8:00-18:00, Tuesday to Sunday."
    );
    assert!(w.llm.requests().is_empty(), "no key, no LLM call");

    let other = w
        .inbound(Platform::Messenger, "psid-13", "My parcel arrived broken")
        .await;
    assert!(w.handle(&[&other]).await.is_empty());
    assert_eq!(w.outcome(&other).await, Some(ReplyOutcome::HandedOff));
    assert_eq!(
        w.conversation(&other).await.handoff_reason.as_deref(),
        Some(HandoffReason::AiCouldNotAnswer.as_str())
    );
    assert_eq!(w.graph.requests().len(), 1);
}

#[tokio::test]
async fn a_tenant_over_its_monthly_message_limit_is_handed_off() {
    let w = World::new(AiMode::Auto).await;
    let mut tenant = w.seeded.tenant.clone();
    tenant.monthly_message_limit = Some(1);
    w.env.store.save_tenant(&tenant).await.unwrap();
    let first = w
        .inbound(Platform::Messenger, "psid-14", "Do you ship to Osaka?")
        .await;
    assert!(w.handle(&[&first]).await.is_empty());
    let second = w
        .inbound(Platform::Messenger, "psid-15", "Do you ship to Osaka?")
        .await;
    assert!(w.handle(&[&second]).await.is_empty());
    assert_eq!(w.outcome(&second).await, Some(ReplyOutcome::HandedOff));
    assert_eq!(
        w.conversation(&second).await.handoff_reason.as_deref(),
        Some(HandoffReason::MonthlyMessageLimitReached.as_str())
    );
    assert_eq!(w.graph.requests().len(), 1);
}

/// Captures this test's log lines.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_token_key_or_message_text_reaches_the_logs() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        // The functions' own filter at its most verbose: even `RUST_LOG=trace` must not leak.
        .with_env_filter(inbox_shared::telemetry::log_filter("trace"))
        .with_writer(move || writer.clone())
        .finish();
    // The process's subscriber, not this thread's: a thread-local one races with the other tests of
    // this file registering the same log call sites, and then misses lines. The other tests' lines are
    // captured too, and must not leak either.
    tracing::subscriber::set_global_default(subscriber).expect("only this test sets a subscriber");

    let w = World::new(AiMode::Auto).await;
    w.llm.set(|request| {
        if request.path == "/v1/messages" {
            (429, json!({"error": "rate"}))
        } else {
            anthropic_says("Secret answer text")(request)
        }
    });
    let job = w
        .inbound(
            Platform::Messenger,
            "psid-16",
            "Zebracorn here, my card is 4242 4242 4242 4242",
        )
        .await;
    assert!(w.handle(&[&job]).await.is_empty());
    w.graph
        .set(|_| (400, json!({"error": {"message": "bad", "code": 100}})));
    let refused = w
        .inbound(Platform::Messenger, "psid-17", "Private question text")
        .await;
    assert!(w.handle(&[&refused]).await.is_empty());

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("inbound message handled"),
        "the logs were captured: {logs}"
    );
    for secret in [
        TOKEN,
        ANTHROPIC_KEY,
        OPENAI_KEY,
        "Zebracorn",
        "4242 4242",
        "Secret answer text",
        "Private question",
        "reply-token",
    ] {
        let leak = logs.lines().find(|l| l.contains(secret));
        assert!(
            leak.is_none(),
            "the logs contain {secret:?}: {}",
            leak.unwrap_or_default()
                .chars()
                .take(600)
                .collect::<String>()
        );
    }
}

/// AWS calls of one reply in a warm container (figures for the README; the counts are deterministic).
#[tokio::test]
async fn aws_calls_per_reply_in_a_warm_container() {
    let w = World::new(AiMode::Auto).await;
    let warm = w
        .inbound(Platform::Messenger, "psid-warm", "Do you ship to Osaka?")
        .await;
    assert!(w.handle(&[&warm]).await.is_empty());
    let mut jobs = Vec::new();
    for i in 0..10 {
        jobs.push(
            w.inbound(
                Platform::Messenger,
                &format!("psid-calls-{i}"),
                "Do you ship to Osaka?",
            )
            .await,
        );
    }
    w.env.calls.reset();
    assert!(w.handle(&jobs.iter().collect::<Vec<_>>()).await.is_empty());
    let calls = w.env.calls.snapshot();
    println!("AWS calls for 10 replies: {calls:?}");
    assert_eq!(w.env.calls.count("Decrypt"), 0, "the data key is cached");
    assert_eq!(w.env.calls.count("GenerateDataKey"), 0);
    // Per reply: tenant, conversation, channel (GetItem); history, knowledge (Query; the history also
    // tells whether the customer wrote the day before); send claim (PutItem); the send's records
    // (TransactWriteItems); outcome, usage, and the day's figures of the send and of the customer
    // message (UpdateItem).
    assert_eq!(w.env.calls.total(), 10 * 11, "{calls:?}");
    assert_eq!(w.graph.requests().len(), 11);
}

#[tokio::test]
async fn a_failed_record_holds_back_the_rest_of_its_group_only() {
    let w = World::new(AiMode::Auto).await;
    let held = w
        .inbound(Platform::Messenger, "psid-order", "Do you ship to Osaka?")
        .await;
    let other = w
        .inbound(Platform::Messenger, "psid-other", "Do you ship to Osaka?")
        .await;
    let mut batch = event(&[&held, &other]);
    // An unreadable record first in `held`'s group: it fails, and so must the record behind it.
    let mut broken = batch.records[0].clone();
    broken.message_id = Some("sqs-broken".into());
    broken.body = Some("{not a job".into());
    batch.records.insert(0, broken);
    let failed: Vec<String> = w
        .replier
        .handle_batch(batch, Instant::now() + std::time::Duration::from_secs(60))
        .await
        .batch_item_failures
        .into_iter()
        .map(|f| f.item_identifier)
        .collect();
    assert_eq!(
        failed,
        ["sqs-broken".to_owned(), format!("sqs-{}", held.message_id)]
    );
    assert_eq!(
        w.outcome(&held).await,
        None,
        "held back, not answered out of order"
    );
    assert_eq!(w.outcome(&other).await, Some(ReplyOutcome::Replied));
}

/// An invocation as the local stack makes one, its metrics dropped.
fn local_invocation() -> inbox_shared::runner::Invocation {
    inbox_shared::runner::Invocation::local(
        std::time::Duration::from_secs(60),
        inbox_shared::runner::Emf::Discard,
    )
}

#[tokio::test]
async fn each_customer_message_and_reply_counts_once_in_the_days_figures() {
    use inbox_shared::service::analytics::{self, Period};

    let w = World::with(AiMode::Auto, false).await;
    // A asks what the knowledge base answers, a minute after writing; the redelivery counts nothing.
    let hours = w
        .inbound(
            Platform::Messenger,
            "psid-a",
            "what are your opening hours?",
        )
        .await;
    assert!(w.handle(&[&hours]).await.is_empty());
    assert!(w.handle(&[&hours]).await.is_empty());
    // B asks what it does not cover: handed to a person, no first response yet.
    let broken = w
        .inbound(Platform::Messenger, "psid-b", "My parcel arrived broken")
        .await;
    assert!(w.handle(&[&broken]).await.is_empty());
    assert_eq!(w.outcome(&broken).await, Some(ReplyOutcome::HandedOff));
    // A again an hour later: the same conversation, a new wait.
    w.env.clock.advance(Duration::hours(1));
    let osaka = w
        .inbound(Platform::Messenger, "psid-a", "do you ship to osaka?")
        .await;
    assert!(w.handle(&[&osaka]).await.is_empty());
    // A two days later: a conversation again.
    w.env.clock.advance(Duration::days(2));
    let later = w
        .inbound(
            Platform::Messenger,
            "psid-a",
            "what are your opening hours?",
        )
        .await;
    assert!(w.handle(&[&later]).await.is_empty());
    assert_eq!(w.sends().len(), 3);
    assert_eq!(
        w.conversation(&later).await.awaiting_reply_since,
        None,
        "the reply ended the wait"
    );
    assert_eq!(
        w.conversation(&broken).await.awaiting_reply_since,
        Some(broken.sent_at),
        "still waiting for a person"
    );

    let today = w.env.store.now().date();
    let report = analytics::report(&w.env.store, w.tenant_id(), Period::ending(today, 7))
        .await
        .unwrap();
    assert_eq!(report.platforms.len(), 1, "{report:?}");
    let messenger = &report.platforms[0];
    assert_eq!(messenger.platform, Platform::Messenger);
    assert_eq!(messenger.conversations, 3);
    assert_eq!(messenger.customer_messages, 4);
    assert_eq!(messenger.decided, 4);
    assert_eq!(messenger.sent_by_ai, 3);
    assert_eq!(messenger.sent_by_people, 0);
    assert_eq!(messenger.answered_by_ai.count, 3);
    assert_eq!(messenger.answered_by_ai.share, Some(0.75));
    assert_eq!(messenger.handed_off.count, 1);
    assert_eq!(messenger.drafted.count, 0);
    let ai = &messenger.first_response_ai;
    assert_eq!(ai.count, 3);
    // Every wait was one minute: read from its bucket, 60 to 90 seconds.
    for quantile in [ai.median_seconds, ai.p90_seconds] {
        assert!(quantile.is_some_and(|s| (60..=90).contains(&s)), "{ai:?}");
    }
    assert_eq!(messenger.first_response_human.count, 0);

    // A period before any of it is empty; the first day alone holds the first two conversations.
    let start = hours.sent_at.date();
    let first_day = analytics::report(
        &w.env.store,
        w.tenant_id(),
        Period::new(start, start).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(first_day.platforms[0].conversations, 2);
    let before = start - Duration::days(3);
    let empty = analytics::report(
        &w.env.store,
        w.tenant_id(),
        Period::new(before, before).unwrap(),
    )
    .await
    .unwrap();
    assert!(empty.platforms.is_empty());
}
