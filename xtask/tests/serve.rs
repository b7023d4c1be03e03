//! `cargo xtask serve` end to end: the real binary on a free loopback port, pointed at this test's
//! table and queues on moto and at a fake Graph API: a signed webhook goes in, a reply comes out, and
//! the functions' JSON log lines on its stderr follow the message by its id.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use inbox_shared::keys;
use inbox_shared::model::{AiMode, KnowledgeEntry, Platform};
use inbox_shared::platform::signature::meta_signature;
use inbox_tests::TestEnv;
use inbox_tests::fake_http::FakeHttp;

const APP_SECRET: &str = "serve-test-secret";
const PAGE: &str = "104857600000001";

/// The serve process, killed when the test ends.
struct Served {
    child: Child,
    base_url: String,
    /// The stack's stderr: the functions' JSON log lines.
    logs: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl Served {
    /// The first log line `matches` accepts, waiting up to 10 s for it.
    async fn log_line(&self, matches: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let waited = std::time::Instant::now();
        loop {
            if let Some(line) = self.logs.lock().unwrap().iter().find(|l| matches(l)) {
                return line.clone();
            }
            if waited.elapsed() > std::time::Duration::from_secs(10) {
                panic!("no such log line in {:#?}", self.logs.lock().unwrap());
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}

/// The value of `field` in the innermost span of `line` that has it.
fn span_field<'l>(line: &'l serde_json::Value, field: &str) -> Option<&'l serde_json::Value> {
    line["spans"]
        .as_array()?
        .iter()
        .rev()
        .find_map(|span| span.get(field))
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(env: &TestEnv, graph_url: &str) -> Served {
    let mut child = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("serve")
        .envs(env.env_vars())
        .env("META_GRAPH_URL", graph_url)
        .env("PORT", "0")
        .env("META_APP_SECRET", APP_SECRET)
        .env("META_VERIFY_TOKEN", "serve-verify")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start xtask serve");
    let logs = Arc::new(Mutex::new(Vec::new()));
    let stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let kept = logs.clone();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            // Only the JSON lines: cargo and moto may write plain text too.
            if let Ok(json) = serde_json::from_str::<serde_json::Value>(&line) {
                kept.lock().unwrap().push(json);
            }
        }
    });
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut base_url = None;
    for line in stdout.by_ref() {
        let line = line.expect("read serve output");
        // The secrets came from the environment: never printed.
        assert!(
            !line.contains(APP_SECRET) && !line.contains("serve-verify"),
            "a secret was printed: {line}"
        );
        if let Some(url) = line.strip_prefix("listening on ") {
            base_url = Some(url.trim().to_owned());
            break;
        }
    }
    // Keep reading, so the stack's later output (metrics lines) never meets a closed pipe.
    std::thread::spawn(move || stdout.for_each(drop));
    Served {
        child,
        base_url: base_url.expect("serve printed its address"),
        logs,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_ingests_webhooks_and_its_poller_replies() {
    let env = TestEnv::new().await;
    let seeded = env
        .seed_tenant("Served", &[(Platform::Messenger, PAGE)], "token", "unused")
        .await;
    let mut tenant = seeded.tenant.clone();
    tenant.ai_mode = AiMode::Auto;
    env.store.save_tenant(&tenant).await.unwrap();
    env.store
        .add_knowledge(&KnowledgeEntry {
            tenant_id: tenant.tenant_id.clone(),
            entry_id: "kb_hours".into(),
            question: "What are your opening hours?".into(),
            answer: "8:00 to 18:00, Tuesday to Sunday.".into(),
            alternates: Vec::new(),
            created_at: time::OffsetDateTime::now_utc(),
        })
        .await
        .unwrap();
    let graph = FakeHttp::start(|_| {
        (
            200,
            serde_json::json!({"recipient_id": "u-1", "message_id": "m_reply"}),
        )
    })
    .await;
    let served = serve(&env, &graph.url());
    let http = reqwest::Client::new();

    let handshake = http
        .get(format!(
            "{}/webhooks/meta?hub.mode=subscribe&hub.verify_token=serve-verify&hub.challenge=1158201444",
            served.base_url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(handshake.status(), 200);
    assert_eq!(handshake.text().await.unwrap(), "1158201444");

    let now_ms = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
    let body = format!(
        r#"{{"object":"page","entry":[{{"id":"{PAGE}","time":1,"messaging":[{{"sender":{{"id":"u-1"}},"recipient":{{"id":"{PAGE}"}},"timestamp":{now_ms},"message":{{"mid":"m_served","text":"what are your opening hours?"}}}}]}}]}}"#
    );
    let forged = http
        .post(format!("{}/webhooks/meta", served.base_url))
        .header(
            "x-hub-signature-256",
            meta_signature("wrong", body.as_bytes()),
        )
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);

    let signed = http
        .post(format!("{}/webhooks/meta", served.base_url))
        .header(
            "x-hub-signature-256",
            meta_signature(APP_SECRET, body.as_bytes()),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), 200);

    let conversation = keys::conversation_id(
        &seeded.channel(Platform::Messenger).channel_id,
        &"u-1".into(),
    );
    let stored = env
        .store
        .messages_of_conversation(&seeded.tenant.tenant_id, &conversation)
        .await
        .unwrap();
    assert_eq!(stored[0].message_id, "m_served");

    // The stack's ai-reply poller takes the queued job and answers from the knowledge base.
    let waited = std::time::Instant::now();
    while graph.requests().is_empty() && waited.elapsed() < std::time::Duration::from_secs(30) {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let sent = graph.requests();
    let after = env
        .store
        .messages_of_conversation(&seeded.tenant.tenant_id, &conversation)
        .await
        .unwrap();
    assert_eq!(
        sent.len(),
        1,
        "one reply went to the Graph API; the inbound message: {:?}",
        after.iter().map(|m| m.reply_outcome).collect::<Vec<_>>()
    );
    assert_eq!(
        sent[0].json()["message"]["text"],
        "8:00 to 18:00, Tuesday to Sunday."
    );
    assert_eq!(sent[0].json()["recipient"]["id"], "u-1");

    // The message is followed by its id from ingest's log line to ai-reply's, each in its invocation.
    let of_message = |function: &'static str| {
        move |line: &serde_json::Value| {
            span_field(line, "function") == Some(&function.into())
                && span_field(line, "message_ref")
                    == Some(&inbox_shared::telemetry::message_ref("m_served").into())
        }
    };
    let ingested = served.log_line(of_message("webhook-ingest")).await;
    let replied = served.log_line(of_message("ai-reply")).await;
    for line in [&ingested, &replied] {
        assert_eq!(
            span_field(line, "conversation_id"),
            Some(&conversation.as_str().into())
        );
        assert_eq!(
            span_field(line, "tenant_id"),
            Some(&seeded.tenant.tenant_id.as_str().into())
        );
        assert!(
            span_field(line, "request_id")
                .is_some_and(|id| id.as_str().unwrap().starts_with("req_"))
        );
    }
    assert_ne!(
        span_field(&ingested, "request_id"),
        span_field(&replied, "request_id"),
        "two invocations"
    );
    assert_eq!(replied["fields"]["outcome"], "replied", "{replied}");
    // The forged webhook's warning shows locally too.
    let refused = served
        .log_line(|line| line["fields"]["message"] == "webhook signature rejected")
        .await;
    assert_eq!(refused["level"], "WARN");
    assert_eq!(
        span_field(&refused, "function"),
        Some(&"webhook-ingest".into())
    );
    println!("ingest: {ingested}\nai-reply: {replied}");

    // Meta's data-deletion callback, then its status page once the stack's erasure poller ran.
    let signed = inbox_shared::platform::signed_request::sign_request(
        APP_SECRET,
        &serde_json::json!({"algorithm": "HMAC-SHA256", "user_id": "meta-serve", "issued_at": 1}),
    );
    let answer: serde_json::Value = http
        .post(format!("{}/meta/data-deletion", served.base_url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("signed_request={signed}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let status_url = answer["url"].as_str().unwrap().to_owned();
    assert!(status_url.starts_with(&format!("{}/meta/deletion-status?code=", served.base_url)));
    let waited = std::time::Instant::now();
    let status = loop {
        let status: serde_json::Value = http
            .get(&status_url)
            .header("accept", "application/json")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if status["status"] == "completed" || waited.elapsed() > std::time::Duration::from_secs(30)
        {
            break status;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(status["status"], "completed");

    // The schedule's fan-out on demand: one sweep job per tenant, consumed by the stack's poller.
    let fan_out: serde_json::Value = http
        .post(format!("{}/_local/sweep", served.base_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(fan_out["tenant_sweeps"].as_u64().unwrap() >= 1, "{fan_out}");

    let missing = http
        .get(format!("{}/no/such/route", served.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    // Ids only: never the customer's words, nor their platform id.
    let logged = serde_json::to_string(&*served.logs.lock().unwrap()).unwrap();
    for content in ["opening hours", "8:00 to 18:00", "\"u-1\""] {
        assert!(
            !logged.contains(content),
            "{content:?} was logged: {logged}"
        );
    }
}
