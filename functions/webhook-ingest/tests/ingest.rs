//! The webhook-ingest handler against DynamoDB, SQS and KMS on moto: what is stored and queued.

use futures::future::join_all;
use inbox_shared::jobs::InboundJob;
use inbox_shared::keys;
use inbox_shared::model::*;
use inbox_shared::platform::signature::{line_signature, meta_signature};
use inbox_shared::store::SentMarker;
use inbox_tests::{Seeded, TEST_START, TestEnv};
use lambda_http::{Body, Request, Response, http};
use time::Duration;
use webhook_ingest::Ingest;

const APP_SECRET: &str = "meta-app-secret";
const VERIFY_TOKEN: &str = "verify-me";
const LINE_SECRET: &str = "line-channel-secret";
const PAGE: &str = "104857600000001";
const IG: &str = "17841400000000001";
const WA: &str = "106540352242922";
const LINE: &str = "U0123456789abcdef0123456789abcdef";

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/",
            $name
        ))
    };
}

struct World {
    env: TestEnv,
    ingest: Ingest,
    tenant: Tenant,
    channels: Vec<Channel>,
}

impl World {
    async fn new() -> Self {
        let env = TestEnv::new().await;
        let Seeded { tenant, channels } = env
            .seed_tenant(
                "Kumo Bakery",
                &[
                    (Platform::Messenger, PAGE),
                    (Platform::Instagram, IG),
                    (Platform::Whatsapp, WA),
                    (Platform::Line, LINE),
                ],
                "token",
                LINE_SECRET,
            )
            .await;
        let config = env.config(&[
            ("META_APP_SECRET", APP_SECRET),
            ("META_VERIFY_TOKEN", VERIFY_TOKEN),
        ]);
        let ingest = Ingest::new(&config, &env.clients, env.clock.clone()).unwrap();
        Self {
            env,
            ingest,
            tenant,
            channels,
        }
    }

    fn channel(&self, platform: Platform) -> &Channel {
        self.channels
            .iter()
            .find(|c| c.platform == platform)
            .unwrap()
    }

    async fn meta(&self, body: &str) -> Response<Body> {
        let signature = meta_signature(APP_SECRET, body.as_bytes());
        self.post(
            "/webhooks/meta",
            body,
            &[("x-hub-signature-256", &signature)],
        )
        .await
    }

    async fn line(&self, body: &str) -> Response<Body> {
        let signature = line_signature(LINE_SECRET, body.as_bytes());
        self.post("/webhooks/line", body, &[("x-line-signature", &signature)])
            .await
    }

    async fn post(&self, path: &str, body: &str, headers: &[(&str, &str)]) -> Response<Body> {
        let mut request = http::Request::builder().method("POST").uri(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.ingest
            .handle(request.body(Body::Text(body.to_owned())).unwrap())
            .await
    }

    async fn messages(&self, platform: Platform, user: &str) -> Vec<Message> {
        let conv = keys::conversation_id(&self.channel(platform).channel_id, &user.into());
        self.env
            .store
            .messages_of_conversation(&self.tenant.tenant_id, &conv)
            .await
            .unwrap()
    }

    async fn queued(&self) -> Vec<(String, InboundJob)> {
        self.env
            .drain_queue(&self.env.provisioned.inbound_queue_url)
            .await
            .into_iter()
            .map(|(group, body)| (group.unwrap(), serde_json::from_str(&body).unwrap()))
            .collect()
    }

    fn count(&self, metric: &str) -> f64 {
        self.ingest
            .metrics()
            .snapshot()
            .get(metric)
            .copied()
            .unwrap_or(0.0)
    }
}

fn status(response: &Response<Body>) -> u16 {
    response.status().as_u16()
}

fn text(response: &Response<Body>) -> String {
    match response.body() {
        Body::Text(t) => t.clone(),
        Body::Binary(b) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    }
}

#[tokio::test]
async fn meta_handshake_echoes_the_challenge_only_for_our_token() {
    let w = World::new().await;
    let get = |query: &str| {
        http::Request::builder()
            .method("GET")
            .uri(format!("/webhooks/meta?{query}"))
            .body(Body::Empty)
            .unwrap()
    };
    let ok = w
        .ingest
        .handle(get(
            "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=verify-me",
        ))
        .await;
    assert_eq!((status(&ok), text(&ok).as_str()), (200, "1158201444"));
    assert_eq!(ok.headers()["content-type"], "text/plain");
    assert_eq!(
        ok.headers()["x-content-type-options"],
        "nosniff",
        "the echoed challenge is never sniffed as HTML"
    );
    for bad in [
        "hub.mode=subscribe&hub.challenge=1&hub.verify_token=wrong",
        "hub.mode=unsubscribe&hub.challenge=1&hub.verify_token=verify-me",
        "hub.challenge=1",
    ] {
        assert_eq!(status(&w.ingest.handle(get(bad)).await), 403, "{bad}");
    }
}

#[tokio::test]
async fn messenger_message_is_stored_and_queued_once() {
    let w = World::new().await;
    let response = w.meta(fixture!("messenger_text.json")).await;
    assert_eq!(status(&response), 200, "{}", text(&response));

    let stored = w.messages(Platform::Messenger, "7234500000000001").await;
    assert_eq!(stored.len(), 1);
    assert_eq!(
        stored[0].text.as_ref().unwrap().expose(),
        "Do you ship to Osaka? äöå"
    );
    assert_eq!(stored[0].payload.as_deref(), Some("SHIPPING_Q"));
    assert_eq!(
        stored[0].retain_until,
        stored[0].sent_at + Duration::days(365)
    );
    let contact = w
        .env
        .store
        .get_contact(
            &w.tenant.tenant_id,
            Platform::Messenger,
            &"7234500000000001".into(),
        )
        .await
        .unwrap();
    assert!(contact.is_some());

    let queued = w.queued().await;
    assert_eq!(queued.len(), 1);
    let (group, job) = &queued[0];
    assert_eq!(group, job.conversation_id.as_str());
    assert_eq!(job.message_id, "m_AbCdEf123");
    assert_eq!(job.channel_id, w.channel(Platform::Messenger).channel_id);
    assert!(
        !serde_json::to_string(job).unwrap().contains("Osaka"),
        "jobs carry ids, not text"
    );
}

#[tokio::test]
async fn five_concurrent_deliveries_store_one_message_and_queue_one_job() {
    let w = World::new().await;
    let responses = join_all((0..5).map(|_| w.meta(fixture!("messenger_text.json")))).await;
    assert!(responses.iter().all(|r| status(r) == 200));
    assert_eq!(
        w.messages(Platform::Messenger, "7234500000000001")
            .await
            .len(),
        1
    );
    assert_eq!(w.queued().await.len(), 1);
    assert!(w.count("Duplicate") >= 4.0);

    // Redelivered before ai-reply answered: the job is sent again. SQS drops a repeat of its
    // deduplication id for 5 minutes (moto only while the first is on the queue); after that, the
    // repeat waits behind the original in the conversation's group and ai-reply skips it as answered.
    w.env.calls.reset();
    assert_eq!(status(&w.meta(fixture!("messenger_text.json")).await), 200);
    assert_eq!(w.env.calls.count("SendMessageBatch"), 1);
    let again = w.queued().await;
    assert!(again.len() == 1 && again[0].1.message_id == "m_AbCdEf123");

    // Redelivered after it was answered: nothing is queued, nothing is written.
    let mut answered = w.messages(Platform::Messenger, "7234500000000001").await[0].clone();
    answered.reply_outcome = Some(ReplyOutcome::Replied);
    w.env
        .store
        .put(&answered, inbox_shared::store::Write::Upsert)
        .await
        .unwrap();
    w.env.calls.reset();
    assert_eq!(status(&w.meta(fixture!("messenger_text.json")).await), 200);
    assert_eq!(
        w.env.calls.count("SendMessageBatch"),
        0,
        "{:?}",
        w.env.calls.snapshot()
    );
    let message = &w.messages(Platform::Messenger, "7234500000000001").await[0];
    assert_eq!(
        message.reply_outcome,
        Some(ReplyOutcome::Replied),
        "the outcome is kept"
    );
}

#[tokio::test]
async fn a_message_stored_but_not_queued_is_queued_on_redelivery() {
    let w = World::new().await;
    // SQS fails (beyond the publisher's own retries) after the message was stored: 500, so Meta
    // delivers again.
    w.env.calls.fail_times("SendMessageBatch", 0, 5);
    let response = w.meta(fixture!("messenger_text.json")).await;
    assert_eq!(status(&response), 500, "{}", text(&response));
    assert_eq!(
        w.messages(Platform::Messenger, "7234500000000001")
            .await
            .len(),
        1
    );
    assert!(w.queued().await.is_empty());
    // The redelivery finds it stored and unanswered, and queues it: no message is lost.
    assert_eq!(status(&w.meta(fixture!("messenger_text.json")).await), 200);
    let queued = w.queued().await;
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].1.message_id, "m_AbCdEf123");
}

#[tokio::test]
async fn bad_signatures_store_and_queue_nothing() {
    let w = World::new().await;
    let body = fixture!("messenger_text.json");
    let sha1 = format!("sha1={}", "0".repeat(40));
    let wrong = meta_signature("not-the-secret", body.as_bytes());
    let cases: Vec<Vec<(&str, &str)>> = vec![
        vec![],
        vec![("x-hub-signature", &sha1)],
        vec![("x-hub-signature-256", &wrong)],
    ];
    for headers in cases {
        let response = w.post("/webhooks/meta", body, &headers).await;
        assert_eq!(status(&response), 401, "{headers:?}");
        assert!(text(&response).contains("X-Hub-Signature-256"));
    }
    let line_wrong = line_signature("not-the-secret", fixture!("line_events.json").as_bytes());
    assert_eq!(
        status(
            &w.post(
                "/webhooks/line",
                fixture!("line_events.json"),
                &[("x-line-signature", &line_wrong)]
            )
            .await
        ),
        401
    );
    assert_eq!(
        status(
            &w.post("/webhooks/line", fixture!("line_events.json"), &[])
                .await
        ),
        401
    );
    assert!(
        w.env
            .scan_all()
            .await
            .iter()
            .all(|item| item["kind"].as_s().unwrap() != "message")
    );
    assert!(w.queued().await.is_empty());
}

#[tokio::test]
async fn bad_bodies_get_clear_answers_and_unusable_ones_are_acknowledged() {
    let w = World::new().await;
    let truncated = &fixture!("messenger_text.json")[..60];
    let response = w.meta(truncated).await;
    assert_eq!(status(&response), 400);
    assert!(
        text(&response).contains("not valid JSON"),
        "{}",
        text(&response)
    );

    let big = format!(
        "{{\"object\":\"page\",\"entry\":[],\"pad\":\"{}\"}}",
        "x".repeat(3 * 1024 * 1024)
    );
    assert_eq!(status(&w.meta(&big).await), 413);

    let unknown_page = fixture!("messenger_text.json").replace(PAGE, "999999999999");
    assert_eq!(status(&w.meta(&unknown_page).await), 200);
    assert_eq!(
        status(
            &w.meta(r#"{"object":"user","entry":[{"id":"1","changes":[]}]}"#)
                .await
        ),
        200
    );
    assert_eq!(
        status(&w.meta(fixture!("whatsapp_status_only.json")).await),
        200
    );
    assert_eq!(status(&w.line(fixture!("line_empty.json")).await), 200);
    assert_eq!(w.count("UnknownAccount"), 1.0);
    assert_eq!(w.count("SkippedUnknownObject"), 1.0);
    assert_eq!(w.count("StatusIgnored"), 1.0);
    assert!(w.queued().await.is_empty());
}

#[tokio::test]
async fn echoes_of_our_sends_are_ignored_and_a_human_echo_hands_off() {
    let w = World::new().await;
    let user = "7234500000000001";
    let conv = keys::conversation_id(&w.channel(Platform::Messenger).channel_id, &user.into());
    // A send of ours recorded by message id (the echo body's second item has no tag and no app_id).
    let response = w.meta(fixture!("messenger_mixed.json")).await;
    assert_eq!(status(&response), 200);
    let conversation = w
        .env
        .store
        .get_conversation(
            &w.tenant.tenant_id,
            &w.channel(Platform::Messenger).channel_id,
            &conv,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(conversation.mode, ConversationMode::Human);
    assert_eq!(
        conversation.handoff_reason.as_deref(),
        Some(HandoffReason::AgentRepliedInPlatformInbox.as_str())
    );
    let stored = w.messages(Platform::Messenger, user).await;
    let ids: Vec<(&str, Author)> = stored
        .iter()
        .map(|m| (m.message_id.as_str(), m.author))
        .collect();
    assert_eq!(
        ids,
        vec![
            ("m_HumanEcho1", Author::Agent),
            ("m_Pb1", Author::Customer),
            ("m_Img1", Author::Customer)
        ]
    );
    assert_eq!(w.count("EchoOfOurSend"), 1.0);
    // Postback and image are queued; the human's reply is not.
    assert_eq!(w.queued().await.len(), 2);

    // An echo of a send recorded by id (no tag) is ours too.
    let other = World::new().await;
    let conv = keys::conversation_id(
        &other.channel(Platform::Instagram).channel_id,
        &"5820000000000001".into(),
    );
    let marker = SentMarker {
        tenant_id: other.tenant.tenant_id.clone(),
        conversation_id: conv.clone(),
        message_id: "aWdfZAG1faXRlbToxOklI".into(),
        sent_at: TEST_START,
        retain_until: TEST_START + Duration::days(365),
    };
    other.env.store.record_sent(&marker).await.unwrap();
    let untagged =
        fixture!("instagram_messages.json").replace(r#","metadata":"inbox-ai:conv_x""#, "");
    assert_eq!(status(&other.meta(&untagged).await), 200);
    let conversation = other
        .env
        .store
        .get_conversation(
            &other.tenant.tenant_id,
            &other.channel(Platform::Instagram).channel_id,
            &conv,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        conversation.mode,
        ConversationMode::Bot,
        "our own echo must not hand off"
    );
    assert_eq!(other.count("EchoOfOurSend"), 1.0);
}

#[tokio::test]
async fn whatsapp_messages_and_statuses_in_one_delivery() {
    let w = World::new().await;
    let user = "819012345678";
    let conv = keys::conversation_id(&w.channel(Platform::Whatsapp).channel_id, &user.into());
    let sent = Message {
        tenant_id: w.tenant.tenant_id.clone(),
        conversation_id: conv.clone(),
        channel_id: w.channel(Platform::Whatsapp).channel_id.clone(),
        message_id: "wamid.OUTBOUND02".into(),
        direction: Direction::Outbound,
        author: Author::Ai,
        text: None,
        attachments: vec![],
        payload: None,
        status: MessageStatus::Sent,
        error_code: None,
        sent_at: TEST_START,
        retain_until: TEST_START + Duration::days(365),
        reply_outcome: None,
    };
    w.env.store.insert_message(&sent).await.unwrap();
    w.env
        .store
        .record_sent(&SentMarker {
            tenant_id: sent.tenant_id.clone(),
            conversation_id: conv.clone(),
            message_id: sent.message_id.clone(),
            sent_at: sent.sent_at,
            retain_until: sent.retain_until,
        })
        .await
        .unwrap();
    assert_eq!(
        status(&w.meta(fixture!("whatsapp_messages.json")).await),
        200
    );
    assert_eq!(status(&w.meta(fixture!("whatsapp_mixed.json")).await), 200);
    let stored = w.messages(Platform::Whatsapp, user).await;
    let failed = stored
        .iter()
        .find(|m| m.message_id == "wamid.OUTBOUND02")
        .unwrap();
    assert_eq!(
        (failed.status, failed.error_code),
        (MessageStatus::Failed, Some(131047))
    );
    let inbound: Vec<&str> = stored
        .iter()
        .filter(|m| m.direction == Direction::Inbound)
        .map(|m| m.message_id.as_str())
        .collect();
    assert_eq!(
        inbound,
        vec![
            "wamid.HBgLODE5MDEyMzQ1Njc4FQIAEhgU",
            "wamid.HBgLODE5MDEyMzQ1Njc4FQIAEhgV",
            "wamid.IMAGE01"
        ]
    );
    let contact = w
        .env
        .store
        .get_contact(&w.tenant.tenant_id, Platform::Whatsapp, &user.into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(contact.profile_name.unwrap().expose(), "Aiko");
    let queued = w.queued().await;
    assert_eq!(queued.len(), 3);
    assert!(
        queued.iter().all(|(group, _)| group == conv.as_str()),
        "one conversation, one message group"
    );
    assert_eq!(w.count("SkippedUnknownField"), 1.0);
}

#[tokio::test]
async fn line_events_verified_with_the_channel_secret_and_redelivery_deduplicated() {
    let w = World::new().await;
    assert_eq!(status(&w.line(fixture!("line_events.json")).await), 200);
    let redelivered =
        fixture!("line_events.json").replace(r#""isRedelivery":false"#, r#""isRedelivery":true"#);
    assert_eq!(status(&w.line(&redelivered).await), 200);
    let stored = w
        .messages(Platform::Line, "Uaaaabbbbccccddddeeeeffff00001111")
        .await;
    let ids: Vec<&str> = stored.iter().map(|m| m.message_id.as_str()).collect();
    assert_eq!(
        ids,
        vec!["5123456789012", "01JH3Q8Z6YV0K8P5M2N4R7T9WB"],
        "message and postback, each once"
    );
    let queued = w.queued().await;
    assert_eq!(queued.len(), 2);
    assert_eq!(
        queued[0].1.reply_token.as_deref(),
        Some("b60d432864f44d079f6d8efe86cf404b")
    );
    assert_eq!(w.count("Follow"), 2.0);
}

#[tokio::test]
async fn base64_encoded_api_gateway_body_is_verified_on_its_decoded_bytes() {
    use base64::Engine;
    let w = World::new().await;
    let body = fixture!("messenger_text.json");
    let event = serde_json::json!({
        "version": "2.0", "routeKey": "POST /webhooks/meta", "rawPath": "/webhooks/meta", "rawQueryString": "",
        "headers": {"x-hub-signature-256": meta_signature(APP_SECRET, body.as_bytes()), "content-type": "application/json"},
        "requestContext": {"accountId": "1", "apiId": "a", "domainName": "x.example", "domainPrefix": "x",
            "http": {"method": "POST", "path": "/webhooks/meta", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "facebookexternalua"},
            "requestId": "r", "routeKey": "POST /webhooks/meta", "stage": "$default", "time": "24/Nov/2026:00:00:00 +0000", "timeEpoch": 1},
        "body": base64::engine::general_purpose::STANDARD.encode(body), "isBase64Encoded": true
    });
    let request: Request = lambda_http::request::from_str(&event.to_string()).unwrap();
    assert_eq!(status(&w.ingest.handle(request).await), 200);
    assert_eq!(
        w.messages(Platform::Messenger, "7234500000000001")
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn a_thousand_entry_batch_is_stored_and_queued_whole() {
    let w = World::new().await;
    let entries: Vec<serde_json::Value> = (0..1000)
        .map(|i| {
            serde_json::json!({"id": PAGE, "time": 1767225600000i64 + i, "messaging": [{
                "sender": {"id": format!("user-{}", i % 40)}, "recipient": {"id": PAGE},
                "timestamp": 1767225600000i64 + i, "message": {"mid": format!("m_batch_{i}"), "text": format!("hello {i}")}}]})
        })
        .collect();
    let body = serde_json::json!({"object": "page", "entry": entries}).to_string();
    let response = w.meta(&body).await;
    assert_eq!(status(&response), 200, "{}", text(&response));
    assert_eq!(w.count("Ingested"), 1000.0);
    let queued = w.queued().await;
    assert_eq!(queued.len(), 1000);
    // FIFO order within each conversation.
    let mut last: std::collections::HashMap<String, time::OffsetDateTime> = Default::default();
    for (group, job) in &queued {
        if let Some(previous) = last.insert(group.clone(), job.sent_at) {
            assert!(previous < job.sent_at);
        }
    }
    let messages = w
        .env
        .scan_all()
        .await
        .into_iter()
        .filter(|i| i["kind"].as_s().unwrap() == "message")
        .count();
    assert_eq!(messages, 1000);
}

#[tokio::test]
async fn a_delivery_of_ten_on_a_cold_cache_costs_thirteen_aws_calls() {
    let w = World::new().await;
    let messaging: Vec<serde_json::Value> = (0..10)
        .map(|i| {
            serde_json::json!({"sender": {"id": format!("user-cold-{i}")}, "recipient": {"id": PAGE},
                "timestamp": 1767225600000i64 + i, "message": {"mid": format!("m_cold_{i}"), "text": "hi"}})
        })
        .collect();
    let body = serde_json::json!({"object": "page", "entry": [{"id": PAGE, "time": 1767225600000i64, "messaging": messaging}]})
        .to_string();
    w.env.calls.reset();
    let response = w.meta(&body).await;
    assert_eq!(status(&response), 200, "{}", text(&response));
    let calls = w.env.calls.snapshot();
    // The ten items are ingested concurrently, but the page's route and tenant are loaded once.
    assert_eq!(w.env.calls.count("GetItem"), 2, "{calls:?}");
    assert_eq!(w.env.calls.count("TransactWriteItems"), 10, "{calls:?}");
    assert_eq!(w.env.calls.count("SendMessageBatch"), 1, "{calls:?}");
    assert_eq!(w.env.calls.total(), 13, "{calls:?}");
}

#[tokio::test]
async fn a_disconnected_channel_ingests_nothing() {
    let w = World::new().await;
    let ch = w.channel(Platform::Messenger);
    w.env
        .store
        .disconnect_channel(
            &w.tenant.tenant_id,
            &ch.channel_id,
            TEST_START,
            TEST_START + Duration::days(30),
            None,
        )
        .await
        .unwrap();
    assert_eq!(status(&w.meta(fixture!("messenger_text.json")).await), 200);
    assert!(
        w.messages(Platform::Messenger, "7234500000000001")
            .await
            .is_empty()
    );
    assert_eq!(w.count("UnknownAccount"), 1.0);
}

#[tokio::test]
async fn a_500_logs_its_cause_and_the_ids_it_concerns_but_no_content() {
    use inbox_shared::runner::{self, Emf, Invocation};
    use inbox_shared::telemetry::CapturedLogs;
    let w = World::new().await;
    let (logs, _capture) = CapturedLogs::start();
    // SQS fails beyond the publisher's retries after the message was stored.
    w.env.calls.fail_times("SendMessageBatch", 0, 5);
    let body = fixture!("messenger_text.json");
    let request = http::Request::builder()
        .method("POST")
        .uri("/webhooks/meta")
        .header(
            "x-hub-signature-256",
            meta_signature(APP_SECRET, body.as_bytes()),
        )
        .body(Body::Text(body.to_owned()))
        .unwrap();
    // Through the runner, as on Lambda: the invocation's span carries the request id.
    let invocation = Invocation::local(std::time::Duration::from_secs(10), Emf::Discard);
    let request_id = invocation.request_id.clone();
    let response = runner::invoke_http(&w.ingest, request, invocation).await;
    assert_eq!(status(&response), 500, "{}", text(&response));

    let lines = logs.lines();
    let failed = lines
        .iter()
        .find(|line| line["level"] == "ERROR")
        .unwrap_or_else(|| panic!("no ERROR line: {lines:#?}"));
    let cause = failed["fields"]["error"].as_str().unwrap();
    assert!(
        cause.contains("SQS unavailable") && cause.contains("injected failure of SendMessageBatch"),
        "{failed}"
    );
    let span = |name: &str| {
        failed["spans"]
            .as_array()
            .unwrap()
            .iter()
            .find(|span| span["name"] == name)
            .unwrap_or_else(|| panic!("no {name} span: {failed}"))
            .clone()
    };
    assert_eq!(span("invocation")["function"], "webhook-ingest");
    assert_eq!(span("invocation")["request_id"], request_id.as_str());
    assert_eq!(span("delivery")["webhook"], "meta");
    let reference = inbox_shared::telemetry::message_ref("m_AbCdEf123");
    assert_eq!(span("delivery")["queued_message_refs"], reference.as_str());

    // The item's own line names its tenant, channel and message.
    let stored = lines
        .iter()
        .find(|line| line["fields"]["message"] == "message stored; to be queued for a reply")
        .unwrap_or_else(|| panic!("no line of the stored item: {lines:#?}"));
    let item = stored["spans"].as_array().unwrap().last().unwrap();
    assert_eq!(item["name"], "item");
    assert_eq!(item["message_ref"], reference.as_str());
    assert_eq!(item["tenant_id"], w.tenant.tenant_id.as_str());
    assert_eq!(
        item["channel_id"],
        w.channel(Platform::Messenger).channel_id.as_str()
    );

    // Never the text, nor the customer's platform id (a phone number on WhatsApp).
    let all = serde_json::to_string(&lines).unwrap();
    for content in ["Do you ship", "Osaka", "SHIPPING_Q", "7234500000000001"] {
        assert!(!all.contains(content), "{content:?} was logged: {all}");
    }
}

/// Every numeric leaf of `value` (and every string leaf under a `timestamp` key: WhatsApp sends unix
/// seconds as strings), as a JSON pointer.
fn numeric_fields(value: &serde_json::Value, at: String, found: &mut Vec<String>) {
    match value {
        serde_json::Value::Number(_) => found.push(at),
        serde_json::Value::String(_) if at.ends_with("/timestamp") => found.push(at),
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                numeric_fields(item, format!("{at}/{i}"), found);
            }
        }
        serde_json::Value::Object(fields) => {
            for (name, field) in fields {
                numeric_fields(field, format!("{at}/{name}"), found);
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn every_numeric_field_of_every_parser_at_edge_values_is_acknowledged_without_a_panic() {
    let w = World::new().await;
    // Every parser's events: Messenger (echo with a numeric app_id, read and delivery watermarks,
    // postback with and without mid, reaction, message), Instagram (messages, comments with their own
    // timestamp and with the entry's time), WhatsApp (messages, statuses with error codes), LINE.
    let postback_without_mid = format!(
        r#"{{"object":"page","entry":[{{"id":"{PAGE}","time":1767225600000,"messaging":[{{"sender":{{"id":"7234"}},"recipient":{{"id":"{PAGE}"}},"timestamp":1767225600000,"postback":{{"title":"t","payload":"p"}}}}]}}]}}"#
    );
    let comment_with_timestamp = format!(
        r#"{{"object":"instagram","entry":[{{"id":"{IG}","time":1767225800,"changes":[{{"field":"comments","value":{{"id":"179","from":{{"id":"5820"}},"text":"hi","timestamp":1767225800}}}}]}}]}}"#
    );
    let deliveries: Vec<(&str, String)> = vec![
        ("meta", fixture!("messenger_mixed.json").to_owned()),
        ("meta", fixture!("messenger_text.json").to_owned()),
        ("meta", postback_without_mid),
        ("meta", fixture!("instagram_messages.json").to_owned()),
        ("meta", fixture!("instagram_comment.json").to_owned()),
        ("meta", comment_with_timestamp),
        ("meta", fixture!("whatsapp_mixed.json").to_owned()),
        ("meta", fixture!("whatsapp_messages.json").to_owned()),
        ("line", fixture!("line_events.json").to_owned()),
    ];
    let edges = [
        "-9223372036854775808",                    // i64::MIN
        "9223372036854775807",                     // i64::MAX
        "18446744073709551615",                    // u64::MAX
        "340282366920938463463374607431768211455", // u128::MAX
        "-1",
        "0",
        "1",
        "253402300799",    // 9999-12-31T23:59:59 in seconds
        "253402300799999", // … in milliseconds
        "-377705116800",   // year -9999 in seconds
        "4102444800000",   // 2100 in milliseconds
        "1e308",
        "-0.5",
    ];
    let mut cases = 0;
    for (webhook, body) in &deliveries {
        let template: serde_json::Value = serde_json::from_str(body).unwrap();
        let mut fields = Vec::new();
        numeric_fields(&template, String::new(), &mut fields);
        assert!(!fields.is_empty(), "{body}");
        for field in &fields {
            for edge in edges {
                let mut delivery = template.clone();
                let slot = delivery.pointer_mut(field).unwrap();
                *slot = if slot.is_string() {
                    serde_json::Value::String(edge.to_owned())
                } else {
                    serde_json::from_str(edge).unwrap()
                };
                let delivery = delivery.to_string();
                let response = match *webhook {
                    "meta" => w.meta(&delivery).await,
                    _ => w.line(&delivery).await,
                };
                assert_eq!(
                    status(&response),
                    200,
                    "{field} = {edge}: {}",
                    text(&response)
                );
                cases += 1;
            }
        }
    }
    assert!(cases > 300, "{cases}");
    // What was stored is dated within the plausible window: never in the far future nor before 2004.
    let stored = w.messages(Platform::Messenger, "7234500000000001").await;
    assert!(!stored.is_empty());
    for message in &stored {
        assert!(
            message.sent_at <= TEST_START + Duration::minutes(5)
                && message.sent_at >= time::macros::datetime!(2004-01-01 0:00 UTC),
            "{}: {}",
            message.message_id,
            message.sent_at
        );
    }
    assert!(w.count("TimestampClamped") > 0.0);
}

#[tokio::test]
async fn a_future_dated_message_does_not_supersede_the_customers_later_messages() {
    use inbox_shared::clock::Clock;
    let w = World::new().await;
    let message = |mid: &str, timestamp: i64| {
        format!(
            r#"{{"object":"page","entry":[{{"id":"{PAGE}","time":1,"messaging":[{{"sender":{{"id":"7234"}},"recipient":{{"id":"{PAGE}"}},"timestamp":{timestamp},"message":{{"mid":"{mid}","text":"hi"}}}}]}}]}}"#
        )
    };
    let in_2100 = 4_102_444_800_000i64;
    assert_eq!(status(&w.meta(&message("m_future", in_2100)).await), 200);
    w.env.clock.advance(Duration::minutes(1));
    let now_ms = (w.env.clock.now().unix_timestamp_nanos() / 1_000_000) as i64;
    assert_eq!(status(&w.meta(&message("m_later", now_ms)).await), 200);
    let stored = w.messages(Platform::Messenger, "7234").await;
    let order: Vec<&str> = stored.iter().map(|m| m.message_id.as_str()).collect();
    assert_eq!(
        order,
        ["m_future", "m_later"],
        "the later message is the newest"
    );
    assert_eq!(stored[0].sent_at, TEST_START, "clamped to the receive time");
    assert_eq!(w.count("TimestampClamped"), 1.0);
}

#[tokio::test]
async fn signed_json_of_an_unexpected_shape_is_acknowledged_counted_and_described_without_values() {
    use inbox_shared::telemetry::CapturedLogs;
    let w = World::new().await;
    let (logs, _capture) = CapturedLogs::start();
    for body in [
        r#"{"object":"page","entry":null}"#,
        r#"{"object":1,"entry":[]}"#,
        r#"{"object":{"text":"Secret words"},"entry":"Secret words"}"#,
        r#""Secret words""#,
    ] {
        let response = w.meta(body).await;
        assert_eq!(status(&response), 200, "{body}: {}", text(&response));
    }
    let line = format!(r#"{{"destination":"{LINE}","events":null}}"#);
    assert_eq!(status(&w.line(&line).await), 200);
    assert_eq!(w.count("SkippedUnexpectedShape"), 5.0);
    assert_eq!(w.count("InvalidJson"), 0.0);

    let lines = logs.lines();
    let shapes: Vec<&str> = lines
        .iter()
        .filter_map(|line| line["fields"]["shape"].as_str())
        .collect();
    assert!(
        shapes.contains(&"object: string, entry: null"),
        "{shapes:?}"
    );
    assert!(
        shapes.contains(&"object: object, entry: string"),
        "{shapes:?}"
    );
    assert!(
        shapes.contains(&"destination: string, events: null"),
        "{shapes:?}"
    );
    let all = serde_json::to_string(&lines).unwrap();
    assert!(!all.contains("Secret words"), "{all}");
    // Still a 400 for what is not JSON at all, however it starts.
    assert_eq!(
        status(&w.meta(r#"{"object":"page","entry":null"#).await),
        400
    );
}

#[tokio::test]
async fn unstorable_items_are_skipped_and_counted_and_the_rest_of_the_delivery_is_stored_and_queued()
 {
    let w = World::new().await;
    let item = |sender: &str, mid: &str, text: &str| {
        serde_json::json!({"sender": {"id": sender}, "recipient": {"id": PAGE},
            "timestamp": 1767225600000i64, "message": {"mid": mid, "text": text}})
    };
    let long_id = "9".repeat(5000);
    let body = serde_json::json!({"object": "page", "entry": [
        {"id": PAGE, "time": 1, "messaging": [
            item("7234", &format!("m_{long_id}"), "a message id of 5,000 bytes"),
            item(&long_id, "m_long_user", "a user id of 5,000 bytes"),
            item("7234", "m_huge", &"x".repeat(500 * 1024)),
            item("7234", "m_good", "the good one"),
        ]},
        {"id": long_id, "time": 1, "messaging": [item("7234", "m_other", "an account id of 5,000 bytes")]},
    ]})
    .to_string();
    let response = w.meta(&body).await;
    assert_eq!(status(&response), 200, "{}", text(&response));
    let stored = w.messages(Platform::Messenger, "7234").await;
    let ids: Vec<&str> = stored.iter().map(|m| m.message_id.as_str()).collect();
    assert_eq!(ids, ["m_good"]);
    let queued = w.queued().await;
    assert_eq!(queued.len(), 1, "{queued:?}");
    assert_eq!(queued[0].1.message_id, "m_good");
    // Three ids caught by the parser (message, user, account), one item over 400 KB by the store.
    assert_eq!(w.count("SkippedUnstorable"), 4.0);

    // LINE: a destination no channel can have is not looked up.
    let line = format!(r#"{{"destination":"U{long_id}","events":[]}}"#);
    assert_eq!(status(&w.line(&line).await), 200);
}

#[tokio::test]
async fn a_disconnect_or_a_move_applies_at_once_whatever_the_warm_container_cached() {
    let w = World::new().await;
    let user = "7234500000000001";
    let messenger = |mid: &str| fixture!("messenger_text.json").replace("m_AbCdEf123", mid);
    let line_user = "Uaaaabbbbccccddddeeeeffff00001111";
    let line = |id: &str| {
        fixture!("line_events.json")
            .replace("5123456789012", id)
            .replace("01JH3Q8Z6YV0K8P5M2N4R7T9WX", &format!("evt-{id}"))
    };
    // The container's cache holds both accounts' routes to tenant A.
    assert_eq!(status(&w.meta(&messenger("m_before")).await), 200);
    assert_eq!(status(&w.line(&line("1")).await), 200);
    assert_eq!(w.messages(Platform::Messenger, user).await.len(), 1);

    // Within the same second: A disconnects both; the Messenger webhook stores nothing.
    for platform in [Platform::Messenger, Platform::Line] {
        w.env
            .store
            .disconnect_channel(
                &w.tenant.tenant_id,
                &w.channel(platform).channel_id,
                TEST_START,
                TEST_START + Duration::days(30),
                None,
            )
            .await
            .unwrap();
    }
    assert_eq!(status(&w.meta(&messenger("m_after_disconnect")).await), 200);
    assert_eq!(w.messages(Platform::Messenger, user).await.len(), 1);
    assert_eq!(w.count("RouteChanged"), 1.0);

    // Tenant B connects the same Page and LINE bot (a new LINE secret): B's customer is B's.
    let new_secret = "line-secret-of-tenant-b";
    let b = w
        .env
        .seed_tenant(
            "Tenant B",
            &[(Platform::Messenger, PAGE), (Platform::Line, LINE)],
            "token-b",
            new_secret,
        )
        .await;
    assert_eq!(status(&w.meta(&messenger("m_moved")).await), 200);
    assert_eq!(w.messages(Platform::Messenger, user).await.len(), 1);
    let of_b = |platform: Platform, user: &str| {
        let channel = b.channels.iter().find(|c| c.platform == platform).unwrap();
        let conversation = keys::conversation_id(&channel.channel_id, &user.into());
        let store = w.env.store.clone();
        let tenant = b.tenant.tenant_id.clone();
        async move {
            store
                .messages_of_conversation(&tenant, &conversation)
                .await
                .unwrap()
        }
    };
    let stored = of_b(Platform::Messenger, user).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].message_id, "m_moved");

    // LINE: the revoked secret is refused at once (the cached secret verified it, but the write found
    // the route changed and the fresh secret refuses it), the new one accepted at once.
    let old_signed = line("2");
    assert_eq!(status(&w.line(&old_signed).await), 200);
    assert_eq!(w.count("SignatureRejectedAfterReroute"), 1.0);
    let new_signed = line("3");
    let signature = line_signature(new_secret, new_signed.as_bytes());
    let response = w
        .post(
            "/webhooks/line",
            &new_signed,
            &[("x-line-signature", &signature)],
        )
        .await;
    assert_eq!(status(&response), 200, "{}", text(&response));
    let stored = of_b(Platform::Line, line_user).await;
    let ids: Vec<&str> = stored.iter().map(|m| m.message_id.as_str()).collect();
    assert!(ids.contains(&"3") && !ids.contains(&"2"), "{ids:?}");
    let queued = w.queued().await;
    assert!(
        queued
            .iter()
            .all(|(_, job)| job.message_id != "m_after_disconnect" && job.message_id != "2"),
        "{queued:?}"
    );
    assert!(
        queued
            .iter()
            .any(|(_, job)| job.message_id == "m_moved" && job.tenant_id == b.tenant.tenant_id),
        "{queued:?}"
    );
}
