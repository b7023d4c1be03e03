//! `cargo xtask serve` end to end: the real binary on a free loopback port, pointed at this test's
//! table and queues on moto, answering the webhook routes with the functions' own handlers.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use inbox_shared::keys;
use inbox_shared::model::Platform;
use inbox_shared::platform::signature::meta_signature;
use inbox_tests::TestEnv;

const APP_SECRET: &str = "serve-test-secret";
const PAGE: &str = "104857600000001";

/// The serve process, killed when the test ends.
struct Served {
    child: Child,
    base_url: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(env: &TestEnv) -> Served {
    let mut child = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("serve")
        .envs(env.env_vars())
        .env("PORT", "0")
        .env("META_APP_SECRET", APP_SECRET)
        .env("META_VERIFY_TOKEN", "serve-verify")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start xtask serve");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut base_url = None;
    for line in stdout.by_ref() {
        let line = line.expect("read serve output");
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
    }
}

#[tokio::test]
async fn serve_answers_the_webhook_routes_with_the_ingest_handler() {
    let env = TestEnv::new().await;
    let seeded = env
        .seed_tenant("Served", &[(Platform::Messenger, PAGE)], "token", "unused")
        .await;
    // Blocks until the stack prints its address; nothing else runs on this test runtime meanwhile.
    let served = serve(&env);
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

    let body = format!(
        r#"{{"object":"page","entry":[{{"id":"{PAGE}","time":1,"messaging":[{{"sender":{{"id":"u-1"}},"recipient":{{"id":"{PAGE}"}},"timestamp":1793610000000,"message":{{"mid":"m_served","text":"hello"}}}}]}}]}}"#
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

    let conversation =
        keys::conversation_id(&seeded.channel(Platform::Messenger).channel_id, "u-1");
    let stored = env
        .store
        .messages_of_conversation(&seeded.tenant.tenant_id, &conversation)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].message_id, "m_served");
    let queued = env.drain_queue(&env.provisioned.inbound_queue_url).await;
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].0.as_deref(), Some(conversation.as_str()));

    let missing = http
        .get(format!("{}/no/such/route", served.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}
