//! Meta's data-deletion and deauthorize callbacks through the real handler, and the erasure they queue
//! carried out by retention-sweep, against moto: what is recorded, queued, disconnected and deleted.

use std::collections::BTreeSet;

use data_deletion::DataDeletion;
use futures::stream::{self, StreamExt};
use inbox_shared::ids::new_id;
use inbox_shared::keys;
use inbox_shared::model::*;
use inbox_shared::platform::send::Sender;
use inbox_shared::platform::signed_request::sign_request;
use inbox_shared::secret::{MessageText, PlatformUserId, ProfileName};
use inbox_shared::service::erasure::Eraser;
use inbox_shared::service::outbound::{Delivery, DeliveryError, Outbox};
use inbox_shared::store::{ConversationTouch, SentMarker, Write};
use inbox_tests::{Seeded, TestEnv};
use lambda_http::{Body, Request, Response, http};
use retention_sweep::Sweeper;
use serde_json::{Value, json};
use time::Duration;

const APP_SECRET: &str = "key";
const META_USER: &str = "1029384756";
const BASE: &str = "https://inbox.example.com";
/// The public test vector (facebook-rs): secret `key`, user `0`.
const VECTOR: &str = "Mf_s6nTb38UYqioBmPqu0Ewm9souPZB9I2fIGwV729U.eyJ1c2VyX2lkIjoiMCIsImFsZ29yaXRobSI6IkhNQUMtU0hBMjU2IiwiaXNzdWVkX2F0IjoxNjI0MjQ0MTU2fQ";

struct World {
    env: TestEnv,
    handler: DataDeletion,
    sweeper: Sweeper,
}

impl World {
    async fn new() -> Self {
        let env = TestEnv::new().await;
        let config = env.config(&[("META_APP_SECRET", APP_SECRET), ("PUBLIC_BASE_URL", BASE)]);
        let handler = DataDeletion::new(&config, &env.clients, env.clock.clone()).unwrap();
        let sweeper = Sweeper::new(&config, &env.clients, env.clock.clone()).unwrap();
        Self {
            env,
            handler,
            sweeper,
        }
    }

    async fn post(&self, path: &str, body: &str) -> Response<Body> {
        let request = http::Request::builder()
            .method("POST")
            .uri(path)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::Text(body.to_owned()))
            .unwrap();
        self.handler.handle(request).await
    }

    async fn get(&self, uri: &str, accept: &str) -> Response<Body> {
        let request: Request = http::Request::builder()
            .method("GET")
            .uri(uri)
            .header("accept", accept)
            .body(Body::Empty)
            .unwrap();
        self.handler.handle(request).await
    }

    /// Runs the erasure queue until it is empty; returns the records handled.
    async fn run_erasure_queue(&self) -> usize {
        let mut handled = 0;
        loop {
            let n = self
                .sweeper
                .poll_once(
                    &self.env.clients.sqs,
                    &self.env.provisioned.erasure_queue_url,
                    std::time::Duration::ZERO,
                    local_invocation(),
                )
                .await
                .unwrap();
            if n == 0 {
                return handled;
            }
            handled += n;
        }
    }

    async fn deletion_requests(&self) -> usize {
        self.env
            .scan_all()
            .await
            .iter()
            .filter(|i| i["kind"].as_s().unwrap() == "deletion_request")
            .count()
    }

    /// A tenant whose Messenger, Instagram and WhatsApp channels the Meta user connected, and a LINE
    /// channel they did not.
    async fn seed_meta_user_tenant(&self) -> Seeded {
        let seeded = self
            .env
            .seed_tenant(
                "Kumo Bakery",
                &[
                    (Platform::Messenger, "104857600000001"),
                    (Platform::Instagram, "17841400000000001"),
                    (Platform::Whatsapp, "106540352242922"),
                    (Platform::Line, "U0123456789abcdef0123456789abcdef"),
                ],
                "EAAG-token",
                "line-secret",
            )
            .await;
        let mut channels = Vec::new();
        for mut channel in seeded.channels {
            if channel.platform != Platform::Line {
                channel.connected_by = Some(META_USER.into());
                self.env.store.put(&channel, Write::Upsert).await.unwrap();
            }
            channels.push(channel);
        }
        Seeded {
            tenant: seeded.tenant,
            channels,
        }
    }

    /// `conversations` conversations of `messages` messages each on a channel, each with a contact, a
    /// draft, a sent marker and a send record; plus a usage row.
    async fn seed_conversations(
        &self,
        channel: &Channel,
        conversations: usize,
        messages: usize,
    ) -> Vec<ConversationId> {
        let store = &self.env.store;
        let now = store.now();
        let mut ids = Vec::new();
        for c in 0..conversations {
            let user = PlatformUserId::new(format!("user-{}-{c}", channel.platform));
            let conversation_id = keys::conversation_id(&channel.channel_id, &user);
            let message = |i: usize| Message {
                tenant_id: channel.tenant_id.clone(),
                conversation_id: conversation_id.clone(),
                channel_id: channel.channel_id.clone(),
                message_id: format!("mid-{}-{c}-{i}", channel.channel_id),
                direction: Direction::Inbound,
                author: Author::Customer,
                text: Some(MessageText::new(format!("personal message {i}"))),
                attachments: Vec::new(),
                payload: None,
                status: MessageStatus::Received,
                error_code: None,
                sent_at: now - Duration::minutes(i as i64),
                retain_until: now + Duration::days(365),
                reply_outcome: None,
            };
            let first = message(0);
            store
                .ingest_message(
                    &first,
                    &ConversationTouch {
                        conversation_id: &conversation_id,
                        channel_id: &channel.channel_id,
                        platform: channel.platform,
                        user_id: &user,
                        last_inbound_at: Some(first.sent_at),
                        hand_to_human: None,
                        retain_until: first.retain_until,
                        routed_account: None,
                    },
                    Some(&ProfileName::new("Aiko")),
                )
                .await
                .unwrap();
            stream::iter(1..messages)
                .map(|i| {
                    let m = message(i);
                    async move { store.insert_message(&m).await.unwrap() }
                })
                .buffer_unordered(16)
                .collect::<Vec<_>>()
                .await;
            let draft_id = new_id("dft");
            store
                .create_draft(&Draft {
                    tenant_id: channel.tenant_id.clone(),
                    conversation_id: conversation_id.clone(),
                    channel_id: channel.channel_id.clone(),
                    draft_id: draft_id.clone(),
                    in_reply_to: first.message_id.clone(),
                    text: MessageText::new("draft answer"),
                    status: DraftStatus::Pending,
                    created_at: now,
                    decided_at: None,
                    retain_until: first.retain_until,
                })
                .await
                .unwrap();
            store
                .record_sent(&SentMarker {
                    tenant_id: channel.tenant_id.clone(),
                    conversation_id: conversation_id.clone(),
                    message_id: format!("m_sent_{c}"),
                    sent_at: now,
                    retain_until: first.retain_until,
                })
                .await
                .unwrap();
            store
                .claim(
                    &channel.tenant_id,
                    "send",
                    &format!("reply:{}", first.message_id),
                    Duration::minutes(2),
                    Duration::days(8),
                )
                .await
                .unwrap();
            ids.push(conversation_id);
        }
        store
            .add_usage(
                &channel.tenant_id,
                &channel.channel_id,
                &month_of(now),
                UsageDelta {
                    replies: 3,
                    ..UsageDelta::default()
                },
            )
            .await
            .unwrap();
        ids
    }
}

fn status(response: &Response<Body>) -> u16 {
    response.status().as_u16()
}

fn body_text(response: &Response<Body>) -> String {
    match response.body() {
        Body::Text(t) => t.clone(),
        Body::Binary(b) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    }
}

fn body_json(response: &Response<Body>) -> Value {
    serde_json::from_str(&body_text(response)).unwrap()
}

fn form(signed_request: &str) -> String {
    form_urlencoded_pair("signed_request", signed_request)
}

fn form_urlencoded_pair(name: &str, value: &str) -> String {
    let encoded: String = value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!("{name}={encoded}")
}

fn signed(user_id: &str, issued_at: i64) -> String {
    sign_request(
        APP_SECRET,
        &json!({"algorithm": "HMAC-SHA256", "user_id": user_id, "issued_at": issued_at}),
    )
}

#[tokio::test]
async fn the_public_test_vector_gets_a_code_and_a_replay_gets_the_same_code() {
    let w = World::new().await;
    let first = w.post("/meta/data-deletion", &form(VECTOR)).await;
    assert_eq!(status(&first), 200, "{}", body_text(&first));
    assert_eq!(first.headers()["content-type"], "application/json");
    assert_eq!(first.headers()["cache-control"], "no-store");
    let answer = body_json(&first);
    let code = answer["confirmation_code"].as_str().unwrap().to_owned();
    assert!(
        code.len() >= 32 && code.chars().all(|c| c.is_ascii_alphanumeric()),
        "{code}"
    );
    assert_eq!(
        answer["url"],
        format!("{BASE}/meta/deletion-status?code={code}")
    );

    let replay = w.post("/meta/data-deletion", &form(VECTOR)).await;
    assert_eq!(body_json(&replay)["confirmation_code"], code.as_str());
    let other = w
        .post("/meta/data-deletion", &form(&signed("0", 1_624_244_157)))
        .await;
    assert_ne!(body_json(&other)["confirmation_code"], code.as_str());
    assert_eq!(w.deletion_requests().await, 2);

    let queued = w
        .env
        .drain_queue(&w.env.provisioned.erasure_queue_url)
        .await;
    let jobs: BTreeSet<String> = queued
        .iter()
        .map(|(_, body)| {
            serde_json::from_str::<Value>(body).unwrap()["confirmation_code"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(jobs.contains(&code), "the erasure is queued");
}

#[tokio::test]
async fn bad_callbacks_get_clear_errors_and_record_nothing() {
    let w = World::new().await;
    let (signature, payload) = VECTOR.split_once('.').unwrap();
    let mut tampered_payload = payload.to_owned();
    tampered_payload.replace_range(12..13, "B");
    let mut tampered_signature = signature.to_owned();
    tampered_signature.replace_range(3..4, "Q");
    let wrong_algorithm = sign_request(
        APP_SECRET,
        &json!({"algorithm": "HMAC-SHA1", "user_id": "0", "issued_at": 1}),
    );
    let without_issued_at = sign_request(
        APP_SECRET,
        &json!({"algorithm": "HMAC-SHA256", "user_id": META_USER}),
    );
    for (body, expected, says) in [
        (
            form(&format!("{signature}.{tampered_payload}")),
            401,
            "signature",
        ),
        (
            form(&format!("{tampered_signature}.{payload}")),
            401,
            "signature",
        ),
        (form(&wrong_algorithm), 400, "HMAC-SHA256"),
        (form("not-a-signed-request"), 400, "malformed"),
        (form(&without_issued_at), 400, "issued_at"),
        ("something=else".to_owned(), 400, "signed_request"),
        (String::new(), 400, "signed_request"),
    ] {
        for path in ["/meta/data-deletion", "/meta/deauthorize"] {
            let response = w.post(path, &body).await;
            assert_eq!(status(&response), expected, "{path} {body}");
            assert!(
                body_json(&response)["error"]
                    .as_str()
                    .unwrap()
                    .contains(says),
                "{}",
                body_text(&response)
            );
        }
    }
    // Padded base64url verifies too.
    let padded = format!("{signature}=.{payload}");
    assert_eq!(
        status(&w.post("/meta/data-deletion", &form(&padded)).await),
        200
    );
    assert_eq!(
        w.deletion_requests().await,
        1,
        "only the valid request was recorded"
    );
}

#[tokio::test]
async fn status_page_in_html_and_json_through_every_state() {
    let w = World::new().await;
    let seeded = w.seed_meta_user_tenant().await;
    w.seed_conversations(seeded.channel(Platform::Messenger), 2, 3)
        .await;
    let answer = body_json(
        &w.post(
            "/meta/data-deletion",
            &form(&signed(META_USER, 1_790_000_000)),
        )
        .await,
    );
    let code = answer["confirmation_code"].as_str().unwrap().to_owned();
    let uri = format!("/meta/deletion-status?code={code}");

    let page = w.get(&uri, "text/html").await;
    assert_eq!(status(&page), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let headers = page.headers();
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    let as_json = w.get(&uri, "application/json").await;
    assert_eq!(as_json.headers()["cache-control"], "no-store");
    assert_eq!(as_json.headers()["x-content-type-options"], "nosniff");
    let instructions = w.get("/privacy/data-deletion", "text/html").await;
    assert_eq!(instructions.headers()["x-content-type-options"], "nosniff");
    let html = body_text(&page);
    assert!(html.contains("<html lang=\"en\">") && html.contains("<h1>Data deletion status</h1>"));
    assert!(html.contains("Received."), "{html}");
    assert!(!html.contains(META_USER), "no user id on the page");
    let received = body_json(&w.get(&uri, "application/json").await);
    assert_eq!(received["status"], "received");

    assert_eq!(w.run_erasure_queue().await, 1);
    let done = body_json(&w.get(&uri, "application/json").await);
    assert_eq!(done["status"], "completed");
    assert!(done["completed_at"].is_string());
    assert_eq!(done["deleted"]["messages"], 6);
    assert_eq!(done["deleted"]["conversations"], 2);
    assert_eq!(done["deleted"]["channels"], 3);
    assert!(!done.to_string().contains(META_USER));
    let html = body_text(&w.get(&uri, "text/html").await);
    assert!(
        html.contains("Completed.") && html.contains("<caption>Items deleted</caption>"),
        "{html}"
    );
    let request = w
        .env
        .store
        .get_deletion_request(&code)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        request.meta_user_id, None,
        "the proof no longer identifies the person"
    );

    let unknown = w.get("/meta/deletion-status?code=nope", "text/html").await;
    assert_eq!(status(&unknown), 404);
    assert!(body_text(&unknown).contains("not found"));
    assert_eq!(
        status(&w.get("/meta/deletion-status", "application/json").await),
        404
    );
    let instructions = w.get("/privacy/data-deletion", "text/html").await;
    assert_eq!(status(&instructions), 200);
    assert!(body_text(&instructions).contains("Apps and websites"));
}

#[tokio::test]
async fn deauthorize_destroys_tokens_at_once_and_sends_fail_closed() {
    let w = World::new().await;
    let seeded = w.seed_meta_user_tenant().await;
    let messenger = seeded.channel(Platform::Messenger).clone();
    let conversations = w.seed_conversations(&messenger, 1, 2).await;
    let response = w
        .post(
            "/meta/deauthorize",
            // Issued after the channels were connected (at TEST_START).
            &form(&signed(META_USER, 1_793_610_060)),
        )
        .await;
    assert_eq!(status(&response), 200, "{}", body_text(&response));

    for channel in &seeded.channels {
        let stored = w
            .env
            .store
            .get_channel(&channel.tenant_id, &channel.channel_id)
            .await
            .unwrap()
            .unwrap();
        if channel.platform == Platform::Line {
            assert_eq!(
                stored.status,
                ChannelStatus::Connected,
                "not connected by that user"
            );
            assert!(stored.credentials.is_some());
        } else {
            assert_eq!(stored.status, ChannelStatus::Disconnected);
            assert!(
                stored.credentials.is_none(),
                "the wrapped token is destroyed"
            );
            assert!(
                w.env
                    .store
                    .route(channel.platform, &channel.account_id)
                    .await
                    .unwrap()
                    .is_none()
            );
        }
    }
    // A send after it fails closed, before any platform call.
    let channel = w
        .env
        .store
        .require_channel(&messenger.tenant_id, &messenger.channel_id)
        .await
        .unwrap();
    let conversation = w
        .env
        .store
        .get_conversation(
            &messenger.tenant_id,
            &messenger.channel_id,
            &conversations[0],
        )
        .await
        .unwrap()
        .unwrap();
    let outbox = Outbox::new(
        w.env.store.clone(),
        w.env.vault(),
        Sender::new(
            &w.env.config(&[("META_GRAPH_URL", "http://127.0.0.1:9")]),
            reqwest::Client::new(),
        ),
    );
    let refused = outbox
        .deliver(&Delivery {
            channel: &channel,
            conversation: &conversation,
            text: &MessageText::new("hello"),
            author: Author::Ai,
            idempotency_key: "reply:after-deauth",
            reply_token: None,
            retain_until: w.env.store.now() + Duration::days(1),
            audit: None,
        })
        .await;
    assert!(
        matches!(refused, Err(DeliveryError::ChannelUnavailable(_))),
        "{refused:?}"
    );

    // Its data is queued for deletion and goes.
    assert_eq!(w.run_erasure_queue().await, 1);
    assert!(
        w.env
            .store
            .get_channel(&messenger.tenant_id, &messenger.channel_id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        w.env
            .store
            .messages_of_conversation(&messenger.tenant_id, &conversations[0])
            .await
            .unwrap()
            .is_empty()
    );
}

/// Whether an item belongs to one of `channels` or `conversations`, or is one of `contacts`.
fn belongs(
    item: &inbox_shared::store::Item,
    channels: &BTreeSet<ChannelId>,
    conversations: &BTreeSet<ConversationId>,
    contacts: &BTreeSet<keys::Key>,
) -> bool {
    let s = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    };
    contacts.contains(&keys::Key { pk: s("pk"), sk: s("sk") })
        || channels.contains(&ChannelId::new(s("channel_id")))
        || conversations.contains(&ConversationId::new(s("conversation_id")))
        || conversations.iter().any(|c| s("pk").contains(c.as_str()))
        || channels.iter().any(|c| s("pk").contains(c.as_str()) || s("sk").contains(c.as_str()))
        // Send records name the message ids, which name their channel here.
        || channels.iter().any(|c| s("pk").contains(&format!("reply:mid-{c}")))
}

#[tokio::test]
async fn erasing_a_meta_user_leaves_nothing_and_touches_nothing_else_even_after_a_crash() {
    let w = World::new().await;
    let seeded = w.seed_meta_user_tenant().await;
    let mut erased_conversations = BTreeSet::new();
    for platform in [Platform::Messenger, Platform::Instagram, Platform::Whatsapp] {
        erased_conversations.extend(w.seed_conversations(seeded.channel(platform), 10, 32).await);
    }
    let line_conversations = w
        .seed_conversations(seeded.channel(Platform::Line), 2, 5)
        .await;
    let other = w
        .env
        .seed_tenant(
            "Sora Dental",
            &[(Platform::Messenger, "200000000000002")],
            "EAAG-other",
            "unused",
        )
        .await;
    w.seed_conversations(other.channel(Platform::Messenger), 3, 5)
        .await;
    let erased_channels: BTreeSet<ChannelId> = seeded
        .channels
        .iter()
        .filter(|c| c.platform != Platform::Line)
        .map(|c| c.channel_id.clone())
        .collect();

    let erased_contacts: BTreeSet<keys::Key> =
        [Platform::Messenger, Platform::Instagram, Platform::Whatsapp]
            .into_iter()
            .flat_map(|p| (0..10).map(move |c| (p, PlatformUserId::new(format!("user-{p}-{c}")))))
            .map(|(p, user)| keys::contact(&seeded.tenant.tenant_id, p, &user))
            .collect();
    let before = w.env.scan_all().await;
    let doomed = before
        .iter()
        .filter(|i| belongs(i, &erased_channels, &erased_conversations, &erased_contacts))
        .count();
    assert!(doomed >= 1_000, "{doomed} items of the Meta user seeded");

    let answer = body_json(
        &w.post(
            "/meta/data-deletion",
            &form(&signed(META_USER, 1_790_000_200)),
        )
        .await,
    );
    let code = answer["confirmation_code"].as_str().unwrap().to_owned();
    // A crash in the middle: the 20th batch delete fails, the job is reported failed and redelivered.
    w.env.calls.fail("BatchWriteItem", 20);
    let first = w
        .sweeper
        .poll_once(
            &w.env.clients.sqs,
            &w.env.provisioned.erasure_queue_url,
            std::time::Duration::ZERO,
            local_invocation(),
        )
        .await
        .unwrap();
    assert_eq!(first, 1);
    let midway = w
        .env
        .store
        .get_deletion_request(&code)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(midway.status, DeletionStatus::InProgress, "interrupted");
    assert!(w.run_erasure_queue().await >= 1, "redelivered");

    let request = w
        .env
        .store
        .get_deletion_request(&code)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(request.status, DeletionStatus::Completed);
    assert_eq!(request.deleted["messages"], 960);
    assert_eq!(request.deleted["conversations"], 30);
    assert_eq!(request.deleted["contacts"], 30);
    assert_eq!(request.deleted["drafts"], 30);
    assert_eq!(request.deleted["channels"], 3);
    assert_eq!(request.deleted["usage_rows"], 3);

    let after = w.env.scan_all().await;
    let remaining: Vec<_> = after
        .iter()
        .filter(|i| belongs(i, &erased_channels, &erased_conversations, &erased_contacts))
        .collect();
    assert!(
        remaining.is_empty(),
        "nothing of the Meta user remains: {remaining:?}"
    );
    // Everything else is exactly as it was.
    let others = |items: &[inbox_shared::store::Item]| {
        items
            .iter()
            .filter(|i| !belongs(i, &erased_channels, &erased_conversations, &erased_contacts))
            .filter(|i| {
                !matches!(
                    i["kind"].as_s().unwrap().as_str(),
                    "deletion_request" | "deletion_replay" | "audit"
                )
            })
            .map(|i| {
                (
                    (
                        i["pk"].as_s().unwrap().clone(),
                        i["sk"].as_s().unwrap().clone(),
                    ),
                    i.clone(),
                )
            })
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let (was, now) = (others(&before), others(&after));
    let changed: Vec<_> = was
        .keys()
        .chain(now.keys())
        .filter(|k| was.get(*k) != now.get(*k))
        .collect();
    assert!(changed.is_empty(), "changed: {changed:?}");
    for conversation in &line_conversations {
        assert_eq!(
            w.env
                .store
                .messages_of_conversation(&seeded.tenant.tenant_id, conversation)
                .await
                .unwrap()
                .len(),
            5
        );
    }
    let audit = w.env.store.audit_events(None).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.action == "erasure.completed" && e.counts["messages"] == 960)
    );
}

#[tokio::test]
async fn a_contact_export_holds_all_their_messages_and_nothing_of_another_contact() {
    let w = World::new().await;
    let seeded = w.seed_meta_user_tenant().await;
    let messenger = seeded.channel(Platform::Messenger);
    w.seed_conversations(messenger, 2, 4).await;
    let eraser = Eraser::new(w.env.store.clone(), "inboxctl");
    let user = PlatformUserId::new(format!("user-{}-0", Platform::Messenger));
    let export = eraser
        .export_contact(&seeded.tenant, Platform::Messenger, &user)
        .await
        .unwrap();
    let document = serde_json::to_value(&export).unwrap();
    assert_eq!(document["format_version"], 1);
    assert_eq!(document["contact"]["profile_name"], "Aiko");
    assert_eq!(document["conversations"].as_array().unwrap().len(), 1);
    assert_eq!(
        document["conversations"][0]["messages"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    assert_eq!(
        document["conversations"][0]["drafts"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(
        !document.to_string().contains("user-messenger-1"),
        "nothing of another contact"
    );

    // A crash midway: the erasure is on record as started, and a re-run finishes it.
    let erasures = || async {
        let events = w
            .env
            .store
            .audit_events(Some(&seeded.tenant.tenant_id))
            .await
            .unwrap();
        let mut actions: Vec<String> = events
            .into_iter()
            .map(|e| e.action)
            .filter(|a| a.starts_with("contact.erase"))
            .collect();
        actions.sort();
        actions
    };
    let batches = w.env.calls.count("BatchWriteItem");
    // The next batch delete fails.
    w.env.calls.fail("BatchWriteItem", 0);
    eraser
        .erase_contact(&seeded.tenant, Platform::Messenger, &user)
        .await
        .expect_err("the injected failure stops the erasure");
    assert!(
        w.env.calls.count("BatchWriteItem") > batches,
        "it had begun deleting"
    );
    assert_eq!(erasures().await, ["contact.erase_started"]);
    let counts = eraser
        .erase_contact(&seeded.tenant, Platform::Messenger, &user)
        .await
        .unwrap();
    assert_eq!(counts["messages"], 4);
    assert_eq!(counts["contacts"], 1);
    assert_eq!(
        erasures().await,
        [
            "contact.erase",
            "contact.erase_started",
            "contact.erase_started"
        ]
    );
    let again = eraser
        .export_contact(&seeded.tenant, Platform::Messenger, &user)
        .await
        .unwrap();
    assert!(again.contact.is_none() && again.conversations.is_empty());
    let other = eraser
        .export_contact(
            &seeded.tenant,
            Platform::Messenger,
            &"user-messenger-1".into(),
        )
        .await
        .unwrap();
    assert_eq!(
        other.conversations[0].messages.len(),
        4,
        "the other contact is untouched"
    );
}

#[tokio::test]
async fn without_a_configured_origin_the_status_url_uses_the_requests_host() {
    let env = TestEnv::new().await;
    let handler = DataDeletion::new(
        &env.config(&[("META_APP_SECRET", APP_SECRET)]),
        &env.clients,
        env.clock.clone(),
    )
    .unwrap();
    let request = |host: Option<&str>| {
        let mut builder = http::Request::builder()
            .method("POST")
            .uri("/meta/data-deletion");
        if let Some(host) = host {
            builder = builder.header("host", host);
        }
        builder.body(Body::Text(form(VECTOR))).unwrap()
    };
    let answer = body_json(
        &handler
            .handle(request(Some("abc123.execute-api.eu-west-1.amazonaws.com")))
            .await,
    );
    assert!(
        answer["url"].as_str().unwrap().starts_with(
            "https://abc123.execute-api.eu-west-1.amazonaws.com/meta/deletion-status?code="
        ),
        "{answer}"
    );
    assert_eq!(status(&handler.handle(request(None)).await), 400);
}

/// An invocation as the local stack makes one, its metrics dropped.
fn local_invocation() -> inbox_shared::runner::Invocation {
    inbox_shared::runner::Invocation::local(
        std::time::Duration::from_secs(600),
        inbox_shared::runner::Emf::Discard,
    )
}

#[tokio::test]
async fn a_replayed_deauthorize_leaves_the_channels_connected_since_it_was_issued() {
    let w = World::new().await;
    // The user connected their channels at TEST_START; a deauthorize issued 400 days before, replayed.
    let seeded = w.seed_meta_user_tenant().await;
    let issued_long_before = (inbox_tests::TEST_START - Duration::days(400)).unix_timestamp();
    let response = w
        .post(
            "/meta/deauthorize",
            &form(&signed(META_USER, issued_long_before)),
        )
        .await;
    assert_eq!(status(&response), 200, "{}", body_text(&response));
    for channel in &seeded.channels {
        let stored = w
            .env
            .store
            .get_channel(&channel.tenant_id, &channel.channel_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            stored.status,
            ChannelStatus::Connected,
            "{:?}",
            channel.platform
        );
        assert!(stored.credentials.is_some());
    }
}
