//! The console API against moto, with the Graph API and LINE faked: every route, both roles, the error
//! classes, other tenants' ids, pagination and cursors, a person's reply in each window state on each
//! platform, the Idempotency-Key, and drafts approved (edited) and rejected.

use std::collections::HashMap;

use console_api::{ConsoleApi, ROUTES};
use inbox_shared::identity::Role;
use inbox_shared::ids::new_id;
use inbox_shared::keys;
use inbox_shared::model::*;
use inbox_shared::platform::ECHO_TAG_PREFIX;
use inbox_shared::secret::{MessageText, PlatformUserId};
use inbox_tests::fake_http::{FakeHttp, Recorded};
use inbox_tests::{Seeded, TestEnv, customer_message};
use lambda_http::aws_lambda_events::apigw::{
    ApiGatewayRequestAuthorizer, ApiGatewayRequestAuthorizerJwtDescription,
    ApiGatewayV2httpRequestContext,
};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response, http};
use serde_json::{Value, json};
use time::Duration;

const TOKEN: &str = "EAAG-console-token-do-not-log";
const PAGE: &str = "104857600000001";
const IG: &str = "17841400000000001";
const WA: &str = "106540352242922";
const LINE: &str = "U0123456789abcdef0123456789abcdef";
const ORIGIN: &str = "https://console.kumo.example";
const CURSOR_SECRET: &str = "console-cursor-secret-0123456789abcdef";

struct Rig {
    env: TestEnv,
    fake: FakeHttp,
    api: ConsoleApi,
    a: Seeded,
    b: Seeded,
}

/// Who calls: a user of a tenant with a role (`None`: a user in no console group).
#[derive(Clone)]
struct As {
    tenant: TenantId,
    groups: Option<&'static str>,
    user: &'static str,
}

impl Rig {
    async fn new() -> Self {
        let env = TestEnv::new().await;
        let fake = FakeHttp::start(|request: &Recorded| {
            let n = new_id("m");
            if request.path.starts_with("/v2/bot/message/") {
                (200, json!({"sentMessages": [{"id": n, "quoteToken": "q"}]}))
            } else if request.json()["messaging_product"] == "whatsapp" {
                (200, json!({"messaging_product": "whatsapp", "contacts": [], "messages": [{"id": format!("wamid.{n}")}]}))
            } else {
                (200, json!({"recipient_id": "x", "message_id": n}))
            }
        })
        .await;
        let url = fake.url();
        let config = env.config(&[
            ("META_GRAPH_URL", &url),
            ("LINE_API_URL", &url),
            ("CONSOLE_CURSOR_SECRET", CURSOR_SECRET),
            ("CONSOLE_ALLOWED_ORIGIN", ORIGIN),
        ]);
        let api = ConsoleApi::new(&config, &env.clients, env.clock.clone()).unwrap();
        let accounts = [
            (Platform::Messenger, PAGE),
            (Platform::Instagram, IG),
            (Platform::Whatsapp, WA),
            (Platform::Line, LINE),
        ];
        let a = env
            .seed_tenant("Kumo", &accounts, TOKEN, "line-secret")
            .await;
        let b = env
            .seed_tenant(
                "Other",
                &[(Platform::Messenger, "104857600000099")],
                TOKEN,
                "",
            )
            .await;
        Self {
            env,
            fake,
            api,
            a,
            b,
        }
    }

    fn agent(&self) -> As {
        As {
            tenant: self.a.tenant.tenant_id.clone(),
            groups: Some("[agent]"),
            user: "agent-sub-1",
        }
    }

    fn owner(&self) -> As {
        As {
            tenant: self.a.tenant.tenant_id.clone(),
            groups: Some("[owner]"),
            user: "owner-sub-1",
        }
    }

    fn other_tenant(&self) -> As {
        As {
            tenant: self.b.tenant.tenant_id.clone(),
            groups: Some("[owner]"),
            user: "owner-sub-b",
        }
    }

    /// A customer's message `age` ago on `platform` of `seeded`; returns the conversation's public id.
    async fn inbound(
        &self,
        seeded: &Seeded,
        platform: Platform,
        user: &str,
        age: Duration,
    ) -> String {
        let channel = seeded.channel(platform);
        let user = PlatformUserId::new(user);
        let message = customer_message(
            channel,
            &user,
            &new_id("mid"),
            "Do you have gluten-free bread?",
            self.env.store.now() - age,
        );
        self.env
            .ingest_customer_message(&message, &user, platform, None)
            .await;
        let conversation_id = message.conversation_id;
        format!("{}.{}", channel.channel_id, conversation_id)
    }

    async fn call(
        &self,
        who: Option<&As>,
        method: &str,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (u16, Value, Response<Body>) {
        let mut builder = http::Request::builder()
            .method(method)
            .uri(format!("https://api.kumo.example{path}"));
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let body = match body {
            Some(v) => Body::Text(v.to_string()),
            None => Body::Empty,
        };
        self.send(who, builder, body).await
    }

    /// A request with any body (`call` sends JSON).
    async fn send(
        &self,
        who: Option<&As>,
        builder: http::request::Builder,
        body: Body,
    ) -> (u16, Value, Response<Body>) {
        let mut request: Request = builder.body(body).unwrap();
        if let Some(who) = who {
            let mut claims = HashMap::from([
                ("sub".to_owned(), who.user.to_owned()),
                (
                    "custom:tenant_id".to_owned(),
                    who.tenant.as_str().to_owned(),
                ),
                ("email".to_owned(), "staff@kumo.example".to_owned()),
            ]);
            if let Some(groups) = who.groups {
                claims.insert("cognito:groups".into(), groups.into());
            }
            let mut jwt = ApiGatewayRequestAuthorizerJwtDescription::default();
            jwt.claims = claims;
            let mut authorizer = ApiGatewayRequestAuthorizer::default();
            authorizer.jwt = Some(jwt);
            let mut context = ApiGatewayV2httpRequestContext::default();
            context.authorizer = Some(authorizer);
            request = request.with_request_context(RequestContext::ApiGatewayV2(context));
        }
        let response = self.api.handle(request).await;
        let status = response.status().as_u16();
        let value = match response.body() {
            Body::Text(text) => serde_json::from_str(text).unwrap_or(Value::Null),
            _ => Value::Null,
        };
        (status, value, response)
    }

    async fn get(&self, who: &As, path: &str) -> (u16, Value) {
        let (status, value, _) = self.call(Some(who), "GET", path, None, &[]).await;
        (status, value)
    }

    async fn post(&self, who: &As, path: &str, body: Value) -> (u16, Value) {
        let (status, value, _) = self.call(Some(who), "POST", path, Some(body), &[]).await;
        (status, value)
    }

    fn sends(&self) -> Vec<Recorded> {
        self.fake
            .requests()
            .into_iter()
            .filter(|r| r.method == "POST")
            .collect()
    }

    async fn conversation(&self, id: &str) -> Conversation {
        let (channel, conversation) = id.split_once('.').unwrap();
        self.env
            .store
            .get_conversation(
                &self.a.tenant.tenant_id,
                &ChannelId::new(channel),
                &ConversationId::new(conversation),
            )
            .await
            .unwrap()
            .unwrap()
    }

    async fn audit_actions(&self) -> Vec<(String, String)> {
        self.env
            .store
            .query_all::<AuditEvent>(&keys::audit_events(Some(&self.a.tenant.tenant_id)))
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.action, e.actor))
            .collect()
    }

    async fn pending_draft(&self, conversation: &str, text: &str) -> String {
        let conv = self.conversation(conversation).await;
        let now = self.env.store.now();
        let draft = Draft {
            tenant_id: conv.tenant_id.clone(),
            conversation_id: conv.conversation_id.clone(),
            channel_id: conv.channel_id.clone(),
            draft_id: new_id("drf"),
            in_reply_to: "mid_x".into(),
            text: MessageText::new(text),
            status: DraftStatus::Pending,
            created_at: now,
            decided_at: None,
            retain_until: now + Duration::days(30),
        };
        self.env.store.create_draft(&draft).await.unwrap();
        format!("{}.{}", draft.conversation_id, draft.draft_id)
    }
}

fn problem(value: &Value, status: u16) {
    assert_eq!(value["status"], status, "{value}");
    assert!(
        value["title"].as_str().is_some_and(|t| !t.is_empty()),
        "{value}"
    );
}

#[tokio::test]
async fn identity_roles_routes_cors_and_limits() {
    let rig = Rig::new().await;
    let conversation = rig
        .inbound(&rig.a, Platform::Messenger, "psid-1", Duration::hours(1))
        .await;

    // The document needs no token; it lists exactly the router's routes (checked in the unit test).
    let (status, doc, response) = rig.call(None, "GET", "/v1/openapi.json", None, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");

    // 401 without claims, on every route but the document; problem+json.
    for route in ROUTES.iter().filter(|r| r.role.is_some()) {
        let path = route.pattern.replace("{id}", &conversation);
        let (status, value, response) = rig.call(None, route.method, &path, None, &[]).await;
        assert_eq!(status, 401, "{} {path}", route.method);
        problem(&value, 401);
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
    }
    // A user without a console group: 403; a tenant claim that is not an id: 401.
    let mut no_role = rig.agent();
    no_role.groups = Some("[admins]");
    let (status, value) = rig.get(&no_role, "/v1/conversations").await;
    assert_eq!(status, 403);
    problem(&value, 403);
    let mut bad_tenant = rig.agent();
    bad_tenant.tenant = TenantId::new("TENANT#x");
    assert_eq!(rig.get(&bad_tenant, "/v1/conversations").await.0, 401);

    // Both roles may use the agent routes; an agent gets 403 on every owner route.
    for who in [rig.agent(), rig.owner()] {
        assert_eq!(rig.get(&who, "/v1/conversations").await.0, 200);
        assert_eq!(
            rig.get(&who, &format!("/v1/conversations/{conversation}"))
                .await
                .0,
            200
        );
        assert_eq!(rig.get(&who, "/v1/drafts").await.0, 200);
    }
    for route in ROUTES.iter().filter(|r| r.role == Some(Role::Owner)) {
        let path = route.pattern.replace("{id}", "kb_x");
        let (status, value, _) = rig
            .call(
                Some(&rig.agent()),
                route.method,
                &path,
                Some(json!({})),
                &[],
            )
            .await;
        assert_eq!(status, 403, "{} {path}", route.method);
        problem(&value, 403);
    }

    // 404 for an unknown route, 405 with Allow for a wrong method.
    let (status, value) = rig.get(&rig.agent(), "/v1/nothing").await;
    assert_eq!(status, 404);
    problem(&value, 404);
    let (status, value, response) = rig
        .call(Some(&rig.agent()), "DELETE", "/v1/conversations", None, &[])
        .await;
    assert_eq!(status, 405);
    problem(&value, 405);
    assert_eq!(response.headers()["allow"], "GET");

    // 413 over 64 KiB; 422 for a body that is not an object or has unknown fields.
    let big = json!({"text": "x".repeat(70 * 1024)});
    let path = format!("/v1/conversations/{conversation}/messages");
    let (status, value) = rig.post(&rig.agent(), &path, big).await;
    assert_eq!(status, 413);
    problem(&value, 413);
    let (status, value) = rig.post(&rig.agent(), &path, json!([1])).await;
    assert_eq!((status, value["field"].as_str()), (422, Some("body")));
    let (status, value) = rig
        .post(&rig.agent(), &path, json!({"text": "hi", "to": "x"}))
        .await;
    assert_eq!((status, value["field"].as_str()), (422, Some("body")));
    let (status, value) = rig.post(&rig.agent(), &path, json!({"text": "   "})).await;
    assert_eq!((status, value["field"].as_str()), (422, Some("text")));
    let (status, value) = rig
        .post(&rig.agent(), &path, json!({"text": "x".repeat(2001)}))
        .await;
    assert_eq!(
        (status, value["field"].as_str()),
        (422, Some("text")),
        "Messenger takes 2000"
    );
    let (status, value, _) = rig
        .call(
            Some(&rig.agent()),
            "POST",
            &path,
            Some(json!({"text": "hi"})),
            &[("idempotency-key", "has space")],
        )
        .await;
    assert_eq!(
        (status, value["field"].as_str()),
        (422, Some("Idempotency-Key"))
    );
    assert!(rig.sends().is_empty(), "nothing invalid was sent");

    // CORS: the configured origin only; preflights need no token.
    let (status, _, response) = rig
        .call(None, "OPTIONS", &path, None, &[("origin", ORIGIN)])
        .await;
    assert_eq!(status, 204);
    assert_eq!(response.headers()["access-control-allow-origin"], ORIGIN);
    assert_eq!(
        response.headers()["access-control-allow-methods"],
        "GET, POST"
    );
    assert!(
        response.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("idempotency-key")
    );
    let (_, _, response) = rig
        .call(
            None,
            "OPTIONS",
            &path,
            None,
            &[("origin", "https://evil.example")],
        )
        .await;
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    let (_, _, response) = rig
        .call(
            Some(&rig.agent()),
            "GET",
            "/v1/drafts",
            None,
            &[("origin", ORIGIN)],
        )
        .await;
    assert_eq!(response.headers()["access-control-allow-origin"], ORIGIN);
    let (_, _, response) = rig
        .call(
            Some(&rig.agent()),
            "GET",
            "/v1/drafts",
            None,
            &[("origin", "https://evil.example")],
        )
        .await;
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[tokio::test]
async fn conversations_page_newest_first_with_filters_and_signed_cursors() {
    let rig = Rig::new().await;
    let mut ids = Vec::new();
    // Five conversations, the newest last.
    for (i, platform) in [
        Platform::Messenger,
        Platform::Instagram,
        Platform::Whatsapp,
        Platform::Line,
        Platform::Messenger,
    ]
    .into_iter()
    .enumerate()
    {
        let age = Duration::hours(10 - i as i64);
        ids.push(
            rig.inbound(&rig.a, platform, &format!("user-{i}"), age)
                .await,
        );
    }
    rig.inbound(&rig.b, Platform::Messenger, "user-b", Duration::minutes(1))
        .await;
    ids.reverse();

    // Pages of two, newest first, through three pages.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/conversations?limit=2&cursor={c}"),
            None => "/v1/conversations?limit=2".to_owned(),
        };
        let (status, page) = rig.get(&rig.agent(), &path).await;
        assert_eq!(status, 200, "{page}");
        pages += 1;
        for item in page["items"].as_array().unwrap() {
            seen.push(item["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(
        seen, ids,
        "every conversation once, newest activity first, none of tenant B"
    );

    // Filters.
    let (_, page) = rig
        .get(&rig.agent(), "/v1/conversations?platform=messenger")
        .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let (_, page) = rig
        .get(&rig.agent(), "/v1/conversations?platform=messenger&limit=1")
        .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let next = page["next_cursor"].as_str().unwrap().to_owned();
    let (_, page) = rig
        .get(
            &rig.agent(),
            &format!("/v1/conversations?platform=messenger&limit=1&cursor={next}"),
        )
        .await;
    assert_eq!(page["items"][0]["platform"], "messenger");
    assert_eq!(page["items"][0]["id"], ids[4]);
    let (status, _) = rig
        .post(
            &rig.agent(),
            &format!("/v1/conversations/{}/handoff", ids[2]),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    let (_, page) = rig.get(&rig.agent(), "/v1/conversations?mode=human").await;
    let human: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(human, vec![ids[2].as_str()]);
    let (_, page) = rig.get(&rig.agent(), "/v1/conversations?mode=bot").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 4);

    // Invalid parameters: 422 naming the field.
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=x", "limit"),
        ("mode=robot", "mode"),
        ("platform=telegram", "platform"),
        ("cursor=not-a-cursor", "cursor"),
    ] {
        let (status, value) = rig
            .get(&rig.agent(), &format!("/v1/conversations?{query}"))
            .await;
        assert_eq!(
            (status, value["field"].as_str()),
            (422, Some(field)),
            "{query}"
        );
    }
    // Tenant A's cursor is refused for tenant B, and on another listing.
    let (status, value) = rig
        .get(
            &rig.other_tenant(),
            &format!("/v1/conversations?cursor={next}"),
        )
        .await;
    assert_eq!((status, value["field"].as_str()), (422, Some("cursor")));
    let (status, _) = rig
        .get(
            &rig.agent(),
            &format!("/v1/conversations/{}/messages?cursor={next}", ids[0]),
        )
        .await;
    assert_eq!(status, 422);
}

#[tokio::test]
async fn messages_page_oldest_first_and_other_tenants_ids_are_not_found() {
    let rig = Rig::new().await;
    let conversation = rig
        .inbound(
            &rig.a,
            Platform::Whatsapp,
            "81900000001",
            Duration::hours(3),
        )
        .await;
    for hours in [2, 1] {
        rig.inbound(
            &rig.a,
            Platform::Whatsapp,
            "81900000001",
            Duration::hours(hours),
        )
        .await;
    }
    let (status, one) = rig
        .get(&rig.agent(), &format!("/v1/conversations/{conversation}"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(one["platform"], "whatsapp");
    assert_eq!(one["reply_window"]["state"], "open");
    assert_eq!(one["mode"], "bot");

    let (_, first) = rig
        .get(
            &rig.agent(),
            &format!("/v1/conversations/{conversation}/messages?limit=2"),
        )
        .await;
    let items = first["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(
        items[0]["sent_at"].as_str() < items[1]["sent_at"].as_str(),
        "oldest first"
    );
    assert_eq!(items[0]["text"], "Do you have gluten-free bread?");
    let next = first["next_cursor"].as_str().unwrap();
    let (_, second) = rig
        .get(
            &rig.agent(),
            &format!("/v1/conversations/{conversation}/messages?limit=2&cursor={next}"),
        )
        .await;
    assert_eq!(second["items"].as_array().unwrap().len(), 1);
    assert!(second["items"][0]["sent_at"].as_str() > items[1]["sent_at"].as_str());
    // A's messages cursor is refused for B (whose conversation it is not anyway).
    let (status, _) = rig
        .get(
            &rig.other_tenant(),
            &format!("/v1/conversations/{conversation}/messages?cursor={next}"),
        )
        .await;
    assert_eq!(status, 404);

    // Tenant B's conversation and draft, asked for by tenant A: 404 on every route with an id, and
    // nothing changes or is sent.
    let foreign = rig
        .inbound(&rig.b, Platform::Messenger, "psid-b", Duration::hours(1))
        .await;
    let (channel, conv) = foreign.split_once('.').unwrap();
    let draft = Draft {
        tenant_id: rig.b.tenant.tenant_id.clone(),
        conversation_id: ConversationId::new(conv),
        channel_id: ChannelId::new(channel),
        draft_id: new_id("drf"),
        in_reply_to: "mid".into(),
        text: MessageText::new("draft of B"),
        status: DraftStatus::Pending,
        created_at: rig.env.store.now(),
        decided_at: None,
        retain_until: rig.env.store.now() + Duration::days(1),
    };
    rig.env.store.create_draft(&draft).await.unwrap();
    let foreign_draft = format!("{conv}.{}", draft.draft_id);
    for who in [rig.agent(), rig.owner()] {
        // (Owner routes with ids check their other tenants' ids in their own tests.)
        for route in ROUTES
            .iter()
            .filter(|r| r.pattern.contains("{id}") && r.role == Some(Role::Agent))
        {
            let id = if route.pattern.starts_with("/v1/drafts") {
                &foreign_draft
            } else {
                &foreign
            };
            let path = route.pattern.replace("{id}", id);
            let body = (route.method == "POST").then(|| json!({"text": "hello"}));
            let (status, value, _) = rig.call(Some(&who), route.method, &path, body, &[]).await;
            assert_eq!(status, 404, "{} {path}: {value}", route.method);
            problem(&value, 404);
            assert!(!value.to_string().contains("draft of B"));
        }
        // Ids that are not ours at all: 404 too.
        for path in [
            "/v1/conversations/nonsense",
            "/v1/conversations/a.b%23c",
            "/v1/drafts/x/approve",
        ] {
            let method = if path.ends_with("approve") {
                "POST"
            } else {
                "GET"
            };
            assert_eq!(
                rig.call(Some(&who), method, path, None, &[]).await.0,
                404,
                "{path}"
            );
        }
    }
    assert!(rig.sends().is_empty());
    let stored = rig
        .env
        .store
        .get_draft(
            &rig.b.tenant.tenant_id,
            &draft.conversation_id,
            &draft.draft_id,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, DraftStatus::Pending);
}

#[tokio::test]
async fn a_person_replies_within_each_platforms_rules() {
    let rig = Rig::new().await;
    let reply = |id: &str| format!("/v1/conversations/{id}/messages");
    let text = json!({"text": "Yes, every Saturday."});

    // Messenger: 1 hour → RESPONSE; 3 days → HUMAN_AGENT tag; 8 days → 409.
    let fresh = rig
        .inbound(
            &rig.a,
            Platform::Messenger,
            "psid-fresh",
            Duration::hours(1),
        )
        .await;
    let (status, sent) = rig.post(&rig.agent(), &reply(&fresh), text.clone()).await;
    assert_eq!(status, 201, "{sent}");
    assert_eq!(sent["duplicate"], false);
    let send = rig.sends().pop().unwrap();
    let body = send.json();
    assert!(
        send.path.ends_with(&format!("/{PAGE}/messages")),
        "{}",
        send.path
    );
    assert_eq!(body["messaging_type"], "RESPONSE");
    assert!(body.get("tag").is_none());
    assert_eq!(body["message"]["text"], "Yes, every Saturday.");
    assert!(
        body["message"]["metadata"]
            .as_str()
            .unwrap()
            .starts_with(ECHO_TAG_PREFIX)
    );
    // Recorded as the agent's, its echo known as ours, the conversation now a person's.
    let conversation = rig.conversation(&fresh).await;
    assert_eq!(conversation.mode, ConversationMode::Human);
    assert!(conversation.last_outbound_at.is_some());
    let message_id = sent["message_id"].as_str().unwrap();
    assert!(
        rig.env
            .store
            .sent_marker(
                &conversation.tenant_id,
                &conversation.conversation_id,
                message_id
            )
            .await
            .unwrap()
            .is_some()
    );
    let (_, messages) = rig.get(&rig.agent(), &reply(&fresh)).await;
    let last = messages["items"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        (last["author"].as_str(), last["direction"].as_str()),
        (Some("agent"), Some("outbound"))
    );
    assert!(
        rig.audit_actions()
            .await
            .contains(&("conversation.reply".into(), "console:agent-sub-1".into()))
    );
    // It is first in the list now.
    rig.inbound(
        &rig.a,
        Platform::Line,
        "U-line-later",
        Duration::minutes(30),
    )
    .await;
    let (_, list) = rig.get(&rig.agent(), "/v1/conversations?limit=1").await;
    assert_eq!(list["items"][0]["id"], fresh.as_str());

    let older = rig
        .inbound(&rig.a, Platform::Messenger, "psid-3d", Duration::days(3))
        .await;
    let (_, one) = rig
        .get(&rig.agent(), &format!("/v1/conversations/{older}"))
        .await;
    assert_eq!(one["reply_window"]["state"], "human_agent_only");
    assert_eq!(
        rig.post(&rig.owner(), &reply(&older), text.clone()).await.0,
        201
    );
    let body = rig.sends().pop().unwrap().json();
    assert_eq!(
        (body["messaging_type"].as_str(), body["tag"].as_str()),
        (Some("MESSAGE_TAG"), Some("HUMAN_AGENT"))
    );

    let stale = rig
        .inbound(&rig.a, Platform::Messenger, "psid-8d", Duration::days(8))
        .await;
    let before = rig.sends().len();
    let (status, value) = rig.post(&rig.agent(), &reply(&stale), text.clone()).await;
    assert_eq!(status, 409);
    problem(&value, 409);
    assert!(
        value["detail"].as_str().unwrap().contains("7 days"),
        "{value}"
    );
    assert_eq!(rig.sends().len(), before);
    assert_eq!(rig.conversation(&stale).await.mode, ConversationMode::Bot);

    // Instagram: the same rules.
    let ig = rig
        .inbound(&rig.a, Platform::Instagram, "igsid-2d", Duration::days(2))
        .await;
    assert_eq!(
        rig.post(&rig.agent(), &reply(&ig), text.clone()).await.0,
        201
    );
    let body = rig.sends().pop().unwrap().json();
    assert_eq!(body["tag"], "HUMAN_AGENT");
    let ig_fresh = rig
        .inbound(
            &rig.a,
            Platform::Instagram,
            "igsid-now",
            Duration::minutes(5),
        )
        .await;
    assert_eq!(
        rig.post(&rig.agent(), &reply(&ig_fresh), text.clone())
            .await
            .0,
        201
    );
    assert_eq!(
        rig.sends().pop().unwrap().json()["messaging_type"],
        "RESPONSE"
    );
    let ig_stale = rig
        .inbound(&rig.a, Platform::Instagram, "igsid-9d", Duration::days(9))
        .await;
    assert_eq!(
        rig.post(&rig.agent(), &reply(&ig_stale), text.clone())
            .await
            .0,
        409
    );

    // WhatsApp: within 24 hours; after it a template message is required.
    let wa = rig
        .inbound(
            &rig.a,
            Platform::Whatsapp,
            "81900000002",
            Duration::hours(23),
        )
        .await;
    assert_eq!(
        rig.post(&rig.agent(), &reply(&wa), text.clone()).await.0,
        201
    );
    let body = rig.sends().pop().unwrap().json();
    assert_eq!(
        (body["to"].as_str(), body["text"]["body"].as_str()),
        (Some("81900000002"), Some("Yes, every Saturday."))
    );
    let wa_stale = rig
        .inbound(
            &rig.a,
            Platform::Whatsapp,
            "81900000003",
            Duration::hours(25),
        )
        .await;
    let (status, value) = rig
        .post(&rig.agent(), &reply(&wa_stale), text.clone())
        .await;
    assert_eq!(status, 409);
    assert!(
        value["detail"]
            .as_str()
            .unwrap()
            .contains("a template message is required"),
        "{value}"
    );

    // LINE: a push, whenever.
    let line = rig
        .inbound(&rig.a, Platform::Line, "U-line-old", Duration::days(30))
        .await;
    let (_, one) = rig
        .get(&rig.agent(), &format!("/v1/conversations/{line}"))
        .await;
    assert_eq!(one["reply_window"]["state"], "always");
    assert_eq!(
        rig.post(&rig.agent(), &reply(&line), text.clone()).await.0,
        201
    );
    let send = rig.sends().pop().unwrap();
    assert_eq!(send.path, "/v2/bot/message/push");
    assert_eq!(send.json()["to"], "U-line-old");
    let sent_so_far = rig.sends().len();
    assert_eq!(sent_so_far, 6);
}

#[tokio::test]
async fn the_same_idempotency_key_never_sends_twice() {
    let rig = Rig::new().await;
    let id = rig
        .inbound(&rig.a, Platform::Messenger, "psid-idem", Duration::hours(1))
        .await;
    let path = format!("/v1/conversations/{id}/messages");
    let mut answers = Vec::new();
    for _ in 0..3 {
        let (status, value, _) = rig
            .call(
                Some(&rig.agent()),
                "POST",
                &path,
                Some(json!({"text": "On my way"})),
                &[("idempotency-key", "reply-7f3a")],
            )
            .await;
        answers.push((status, value));
    }
    assert_eq!(rig.sends().len(), 1);
    assert_eq!(answers[0].0, 201);
    assert_eq!(
        (answers[1].0, &answers[1].1["duplicate"]),
        (200, &json!(true))
    );
    assert_eq!(answers[1].1["message_id"], answers[0].1["message_id"]);
    // Without a key every request is its own reply; a key of another tenant is its own too.
    rig.post(&rig.agent(), &path, json!({"text": "And another"}))
        .await;
    assert_eq!(rig.sends().len(), 2);
    let other = rig
        .inbound(
            &rig.b,
            Platform::Messenger,
            "psid-other",
            Duration::hours(1),
        )
        .await;
    let (status, _, _) = rig
        .call(
            Some(&rig.other_tenant()),
            "POST",
            &format!("/v1/conversations/{other}/messages"),
            Some(json!({"text": "Hi"})),
            &[("idempotency-key", "reply-7f3a")],
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(rig.sends().len(), 3);
}

#[tokio::test]
async fn handoff_and_release_are_audited_with_the_user() {
    let rig = Rig::new().await;
    let id = rig
        .inbound(&rig.a, Platform::Line, "U-hand", Duration::hours(1))
        .await;
    let (status, value) = rig
        .post(
            &rig.agent(),
            &format!("/v1/conversations/{id}/handoff"),
            json!({}),
        )
        .await;
    assert_eq!((status, value["mode"].as_str()), (200, Some("human")));
    assert_eq!(rig.conversation(&id).await.mode, ConversationMode::Human);
    let (_, _, response) = rig
        .call(
            Some(&rig.owner()),
            "POST",
            &format!("/v1/conversations/{id}/release"),
            None,
            &[],
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(rig.conversation(&id).await.mode, ConversationMode::Bot);
    let actions = rig.audit_actions().await;
    assert!(
        actions.contains(&("conversation.handoff".into(), "console:agent-sub-1".into())),
        "{actions:?}"
    );
    assert!(
        actions.contains(&("conversation.release".into(), "console:owner-sub-1".into())),
        "{actions:?}"
    );
    assert!(rig.sends().is_empty());
}

#[tokio::test]
async fn drafts_are_listed_approved_once_with_an_edit_and_rejected() {
    let rig = Rig::new().await;
    let conversation = rig
        .inbound(
            &rig.a,
            Platform::Messenger,
            "psid-draft",
            Duration::hours(2),
        )
        .await;
    let first = rig.pending_draft(&conversation, "We open at 8.").await;
    // Listed oldest first: drafts of one instant would come in id order.
    rig.env.clock.advance(Duration::seconds(1));
    let second = rig.pending_draft(&conversation, "We close at 6.").await;

    let (status, list) = rig.get(&rig.agent(), "/v1/drafts").await;
    assert_eq!(status, 200);
    let listed: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, vec![first.as_str(), second.as_str()]);
    assert_eq!(list["items"][0]["conversation_id"], conversation.as_str());
    assert_eq!(list["items"][0]["text"], "We open at 8.");
    assert!(
        rig.get(&rig.other_tenant(), "/v1/drafts").await.1["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Edited, then approved: the edited text is sent, once, however often it is approved.
    let approve = format!("/v1/drafts/{first}/approve");
    let (status, value) = rig
        .post(
            &rig.agent(),
            &approve,
            json!({"text": "We open at 8:30 tomorrow."}),
        )
        .await;
    assert_eq!(
        (status, &value["duplicate"]),
        (200, &json!(false)),
        "{value}"
    );
    let (status, again) = rig
        .post(&rig.agent(), &approve, json!({"text": "Something else"}))
        .await;
    assert_eq!((status, &again["duplicate"]), (200, &json!(true)));
    assert_eq!(again["message_id"], value["message_id"]);
    let sends = rig.sends();
    assert_eq!(sends.len(), 1);
    assert_eq!(
        sends[0].json()["message"]["text"],
        "We open at 8:30 tomorrow."
    );
    let (_, list) = rig.get(&rig.agent(), "/v1/drafts").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let (_, edit_errors) = rig
        .post(
            &rig.agent(),
            &format!("/v1/drafts/{second}/approve"),
            json!({"text": 5}),
        )
        .await;
    assert_eq!(edit_errors["field"], "text");

    // Rejected: nothing sent; a second decision is a conflict.
    let reject = format!("/v1/drafts/{second}/reject");
    let (status, value) = rig.post(&rig.owner(), &reject, json!({})).await;
    assert_eq!((status, value["status"].as_str()), (200, Some("rejected")));
    let (status, value) = rig.post(&rig.owner(), &reject, json!({})).await;
    assert_eq!(status, 409);
    problem(&value, 409);
    let (status, _) = rig
        .post(
            &rig.agent(),
            &format!("/v1/drafts/{second}/approve"),
            json!({}),
        )
        .await;
    assert_eq!(status, 409);
    let (status, _) = rig
        .post(
            &rig.agent(),
            &format!("/v1/drafts/{first}/reject"),
            json!({}),
        )
        .await;
    assert_eq!(status, 409, "an approved draft cannot be rejected");
    assert_eq!(rig.sends().len(), 1);
    let actions = rig.audit_actions().await;
    assert!(
        actions.contains(&("draft.approve".into(), "console:agent-sub-1".into())),
        "{actions:?}"
    );
    assert!(
        actions.contains(&("draft.reject".into(), "console:owner-sub-1".into())),
        "{actions:?}"
    );
}

impl Rig {
    async fn csv(&self, who: &As, path: &str, csv: &str) -> (u16, Value) {
        let builder = http::Request::builder()
            .method("POST")
            .uri(format!("https://api.kumo.example{path}"))
            .header("content-type", "text/csv; charset=utf-8");
        let (status, value, _) = self.send(Some(who), builder, Body::Text(csv.into())).await;
        (status, value)
    }

    async fn knowledge_of(&self, seeded: &Seeded) -> Vec<KnowledgeEntry> {
        self.env
            .store
            .knowledge_of_tenant(&seeded.tenant.tenant_id)
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn the_owner_keeps_knowledge_entries_and_imports_them() {
    let rig = Rig::new().await;
    let owner = rig.owner();
    let before = rig.knowledge_of(&rig.a).await.len();

    // Add, read, change, list, remove.
    let (status, entry) = rig
        .post(
            &owner,
            "/v1/knowledge",
            json!({"question": " Opening hours? ", "answer": "9 to 5", "alternates": ["When do you open?", " "]}),
        )
        .await;
    assert_eq!(status, 201, "{entry}");
    assert_eq!(entry["question"], "Opening hours?");
    assert_eq!(entry["alternates"], json!(["When do you open?"]));
    let id = entry["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/knowledge/{id}");
    let (status, got) = rig.get(&owner, &path).await;
    assert_eq!((status, &got), (200, &entry));
    let (status, changed, _) = rig
        .call(
            Some(&owner),
            "PUT",
            &path,
            Some(json!({"question": "Opening hours?", "answer": "8 to 6"})),
            &[],
        )
        .await;
    assert_eq!((status, changed["answer"].as_str()), (200, Some("8 to 6")));
    assert_eq!(changed["alternates"], json!([]));
    let (status, list) = rig.get(&owner, "/v1/knowledge").await;
    assert_eq!(status, 200);
    assert_eq!(list["items"].as_array().unwrap().len(), before + 1);

    // Bad input: 422 naming the field.
    for (body, field) in [
        (json!({"question": "", "answer": "a"}), "question"),
        (json!({"question": "q"}), "answer"),
        (
            json!({"question": "q", "answer": "x".repeat(5001)}),
            "answer",
        ),
        (
            json!({"question": "q", "answer": "a", "alternates": "x"}),
            "alternates",
        ),
        (json!({"question": "q", "answer": "a", "tags": []}), "body"),
        (json!(["q"]), "body"),
    ] {
        let (status, value) = rig.post(&owner, "/v1/knowledge", body.clone()).await;
        assert_eq!(
            (status, value["field"].as_str()),
            (422, Some(field)),
            "{body}"
        );
    }
    let (status, value, _) = rig
        .call(
            Some(&owner),
            "PUT",
            &path,
            Some(json!({"answer": "a"})),
            &[],
        )
        .await;
    assert_eq!((status, value["field"].as_str()), (422, Some("question")));

    // Another business's entry, or no entry: 404 on every verb.
    let (status, other) = rig
        .post(
            &rig.other_tenant(),
            "/v1/knowledge",
            json!({"question": "Theirs?", "answer": "b"}),
        )
        .await;
    assert_eq!(status, 201);
    let theirs = format!("/v1/knowledge/{}", other["id"].as_str().unwrap());
    for method in ["GET", "PUT", "DELETE"] {
        for p in [
            theirs.as_str(),
            "/v1/knowledge/kb_nothing",
            "/v1/knowledge/kb%23x",
        ] {
            let (status, value, _) = rig
                .call(
                    Some(&owner),
                    method,
                    p,
                    Some(json!({"question": "q", "answer": "a"})),
                    &[],
                )
                .await;
            assert_eq!(status, 404, "{method} {p}");
            problem(&value, 404);
        }
    }
    assert_eq!(
        rig.knowledge_of(&rig.b).await[0].answer,
        "b",
        "theirs unchanged"
    );

    // Import JSON: same question (case, spaces) updates; bad rows are reported by number.
    let (status, report) = rig
        .post(
            &owner,
            "/v1/knowledge/import",
            json!([
                {"question": "  OPENING hours?", "answer": "7 to 7"},
                {"question": "Parking?", "answer": "Behind the shop"},
                {"question": "", "answer": "x"},
                "not an object",
                {"question": "parking?", "answer": "Free, behind the shop"},
            ]),
        )
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        (report["added"].as_u64(), report["updated"].as_u64()),
        (Some(1), Some(2))
    );
    let rejected: Vec<u64> = report["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["row"].as_u64().unwrap())
        .collect();
    assert_eq!(rejected, vec![3, 4]);
    let (_, got) = rig.get(&owner, &path).await;
    assert_eq!(got["answer"], "7 to 7");
    assert_eq!(got["question"], "Opening hours?", "the question kept");

    // Import CSV with quoted fields.
    let (status, report) = rig
        .csv(
            &owner,
            "/v1/knowledge/import",
            "question,answer\r\n\"Delivery, too?\",\"Yes, \"\"same day\"\"\"\r\nparking?,Free\r\nNo answer,\r\n",
        )
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        (report["added"].as_u64(), report["updated"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(report["rejected"][0]["row"], 3);
    let entries = rig.knowledge_of(&rig.a).await;
    assert!(
        entries
            .iter()
            .any(|e| e.question == "Delivery, too?" && e.answer == "Yes, \"same day\""),
        "{entries:?}"
    );
    for csv in ["q,a\nx,y", "question,answer\n\"open", ""] {
        let (status, value) = rig.csv(&owner, "/v1/knowledge/import", csv).await;
        assert_eq!(
            (status, value["field"].as_str()),
            (422, Some("body")),
            "{csv:?}"
        );
    }
    let (status, value) = rig
        .post(&owner, "/v1/knowledge/import", json!({"question": "q"}))
        .await;
    assert_eq!((status, value["field"].as_str()), (422, Some("body")));

    // Remove; then it is gone.
    let (status, _, _) = rig.call(Some(&owner), "DELETE", &path, None, &[]).await;
    assert_eq!(status, 204);
    assert_eq!(rig.get(&owner, &path).await.0, 404);

    let actions = rig.audit_actions().await;
    for action in [
        "knowledge.add",
        "knowledge.update",
        "knowledge.import",
        "knowledge.remove",
    ] {
        assert!(
            actions.contains(&(action.into(), "console:owner-sub-1".into())),
            "{action} {actions:?}"
        );
    }
}

#[tokio::test]
async fn the_owner_reads_and_changes_settings() {
    let rig = Rig::new().await;
    let owner = rig.owner();
    let (status, settings) = rig.get(&owner, "/v1/settings").await;
    assert_eq!(status, 200, "{settings}");
    assert_eq!(settings["name"], "Kumo");
    let patch = |body: Value| {
        let owner = owner.clone();
        let rig = &rig;
        async move {
            let (status, value, _) = rig
                .call(Some(&owner), "PATCH", "/v1/settings", Some(body), &[])
                .await;
            (status, value)
        }
    };
    let (status, changed) =
        patch(json!({"retention_days": 30, "ai_mode": "draft", "greeting_reply": " Hi! "})).await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(
        (
            changed["retention_days"].as_u64(),
            changed["ai_mode"].as_str(),
            changed["greeting_reply"].as_str()
        ),
        (Some(30), Some("draft"), Some("Hi!"))
    );
    let stored = rig
        .env
        .store
        .get_tenant(&rig.a.tenant.tenant_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.retention.content_days, 30);
    assert_eq!(stored.ai_mode, AiMode::Draft);

    // 422 naming the field: unknown, wrong type, out of bounds; nothing changed.
    for (body, field) in [
        (json!({"retention_days": 0}), "retention_days"),
        (json!({"audit_days": 99999}), "audit_days"),
        (json!({"retention_days": "thirty"}), "retention_days"),
        (json!({"ai_mode": "sometimes"}), "ai_mode"),
        (json!({"tenant_id": "t_other"}), "body"),
        (json!({}), "body"),
        (json!([1]), "body"),
    ] {
        let (status, value) = patch(body.clone()).await;
        assert_eq!(
            (status, value["field"].as_str()),
            (422, Some(field)),
            "{body}: {value}"
        );
    }
    let (_, value) = patch(json!({"tenant_id": "t_other"})).await;
    assert!(
        value["detail"].as_str().unwrap().contains("tenant_id"),
        "{value}"
    );
    let after = rig
        .env
        .store
        .get_tenant(&rig.a.tenant.tenant_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after, stored);
    // Every documented field is taken.
    let every: serde_json::Map<String, Value> = console_api::settings_fields()
        .iter()
        .map(|f| ((*f).to_owned(), Value::Null))
        .collect();
    let (status, value) = patch(Value::Object(every)).await;
    assert_eq!(
        (status, value["detail"].as_str()),
        (422, Some("nothing to set"))
    );

    // The other business's settings are untouched; an agent may not read them.
    let theirs = rig
        .env
        .store
        .get_tenant(&rig.b.tenant.tenant_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        theirs.retention.content_days,
        rig.b.tenant.retention.content_days
    );
    assert_eq!(rig.get(&rig.agent(), "/v1/settings").await.0, 403);
    let (status, _, _) = rig
        .call(
            Some(&rig.agent()),
            "PATCH",
            "/v1/settings",
            Some(json!({"ai_mode": "off"})),
            &[],
        )
        .await;
    assert_eq!(status, 403);

    let actions = rig.audit_actions().await;
    assert!(
        actions
            .iter()
            .any(|(a, actor)| a.starts_with("tenant.set:") && actor == "console:owner-sub-1"),
        "{actions:?}"
    );
}

#[tokio::test]
async fn the_owner_lists_disconnects_and_links_channels() {
    let mut rig = Rig::new().await;
    let owner = rig.owner();
    let (status, list) = rig.get(&owner, "/v1/channels").await;
    assert_eq!(status, 200, "{list}");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 4);
    assert!(
        items
            .iter()
            .all(|c| c["status"] == "connected" && c.get("credentials").is_none())
    );
    assert!(!list.to_string().contains(TOKEN) && !list.to_string().contains("line-secret"));

    // Not configured for links: 503 problem; bad input: 422 naming the field.
    let (status, value) = rig
        .post(
            &owner,
            "/v1/channels/connect-link",
            json!({"platform": "messenger"}),
        )
        .await;
    assert_eq!(status, 503, "{value}");
    problem(&value, 503);
    for (body, field) in [
        (json!({"platform": "line"}), "platform"),
        (json!({"platform": "fax"}), "platform"),
        (json!({}), "platform"),
        (
            json!({"platform": "messenger", "via_facebook": "yes"}),
            "via_facebook",
        ),
        (json!({"platform": "messenger", "tenant": "x"}), "body"),
    ] {
        let (status, value) = rig
            .post(&owner, "/v1/channels/connect-link", body.clone())
            .await;
        assert_eq!(
            (status, value["field"].as_str()),
            (422, Some(field)),
            "{body}: {value}"
        );
    }

    // Disconnect: another business's channel or no channel is 404.
    let theirs = rig.b.channel(Platform::Messenger).channel_id.clone();
    for id in [theirs.as_str(), "ch_nothing", "ch%23x"] {
        let (status, value) = rig
            .post(&owner, &format!("/v1/channels/{id}/disconnect"), json!({}))
            .await;
        assert_eq!(status, 404, "{id}");
        problem(&value, 404);
    }
    let line = rig.a.channel(Platform::Line).channel_id.clone();
    let (status, value) = rig
        .post(
            &owner,
            &format!("/v1/channels/{line}/disconnect"),
            json!({}),
        )
        .await;
    assert_eq!(
        (status, value["status"].as_str()),
        (200, Some("disconnected")),
        "{value}"
    );
    let (_, list) = rig.get(&owner, "/v1/channels").await;
    let line_view = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == line.as_str())
        .unwrap()
        .clone();
    assert_eq!(line_view["status"], "disconnected");
    let stored = rig
        .env
        .store
        .get_channel(&rig.b.tenant.tenant_id, &theirs)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, ChannelStatus::Connected, "theirs untouched");

    // Configured: a link is minted and audited.
    let config = rig.env.config(&[
        ("CONSOLE_CURSOR_SECRET", CURSOR_SECRET),
        ("META_APP_ID", "1234567890"),
        ("META_APP_SECRET", "meta-app-secret-for-tests"),
        ("META_LOGIN_CONFIG_ID", "555000111"),
        ("META_WHATSAPP_CONFIG_ID", "555000222"),
        (
            "CONNECT_STATE_SECRET",
            "connect-state-secret-0123456789abcdef",
        ),
        ("PUBLIC_BASE_URL", "https://inbox.example"),
    ]);
    rig.api = ConsoleApi::new(&config, &rig.env.clients, rig.env.clock.clone()).unwrap();
    let (status, link) = rig
        .post(
            &owner,
            "/v1/channels/connect-link",
            json!({"platform": "messenger"}),
        )
        .await;
    assert_eq!(status, 201, "{link}");
    assert!(
        link["url"]
            .as_str()
            .unwrap()
            .starts_with("https://inbox.example/"),
        "{link}"
    );
    assert_eq!(
        rig.post(
            &rig.agent(),
            "/v1/channels/connect-link",
            json!({"platform": "messenger"})
        )
        .await
        .0,
        403
    );

    let actions = rig.audit_actions().await;
    for action in ["channel.disconnect", "channel.connect_link"] {
        assert!(
            actions.contains(&(action.into(), "console:owner-sub-1".into())),
            "{action} {actions:?}"
        );
    }
}

#[tokio::test]
async fn the_owner_reads_usage_by_month_and_the_audit_newest_first() {
    let rig = Rig::new().await;
    let owner = rig.owner();
    let month = inbox_shared::model::month_of(rig.env.store.now());
    for (seeded, platform, replies) in [
        (&rig.a, Platform::Messenger, 3),
        (&rig.a, Platform::Line, 4),
        (&rig.b, Platform::Messenger, 100),
    ] {
        let delta = UsageDelta {
            replies,
            inbound_messages: replies + 1,
            ..UsageDelta::default()
        };
        rig.env
            .store
            .add_usage(
                &seeded.tenant.tenant_id,
                &seeded.channel(platform).channel_id,
                &month,
                delta,
            )
            .await
            .unwrap();
    }
    for path in ["/v1/usage".to_owned(), format!("/v1/usage?month={month}")] {
        let (status, usage) = rig.get(&owner, &path).await;
        assert_eq!(status, 200, "{usage}");
        assert_eq!(usage["month"], month.as_str());
        assert_eq!(
            usage["totals"]["replies"], 7,
            "only this business's: {usage}"
        );
        assert_eq!(usage["totals"]["inbound_messages"], 9);
        assert_eq!(usage["channels"].as_array().unwrap().len(), 2);
    }
    let (status, usage) = rig.get(&owner, "/v1/usage?month=2001-01").await;
    assert_eq!(
        (status, usage["channels"].as_array().map(Vec::len)),
        (200, Some(0))
    );
    for bad in ["2026-13", "2026-1", "abcd-ef", "", "2026-00"] {
        let (status, value) = rig.get(&owner, &format!("/v1/usage?month={bad}")).await;
        assert_eq!(
            (status, value["field"].as_str()),
            (422, Some("month")),
            "{bad}"
        );
    }

    // Three changes, a second apart; the audit pages newest first with a signed cursor.
    for question in ["One?", "Two?", "Three?"] {
        rig.env.clock.advance(Duration::seconds(1));
        let (status, _) = rig
            .post(
                &owner,
                "/v1/knowledge",
                json!({"question": question, "answer": "a"}),
            )
            .await;
        assert_eq!(status, 201);
    }
    rig.post(
        &rig.other_tenant(),
        "/v1/knowledge",
        json!({"question": "B?", "answer": "b"}),
    )
    .await;
    let (status, page) = rig.get(&owner, "/v1/audit?limit=2").await;
    assert_eq!(status, 200, "{page}");
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["action"], "knowledge.add");
    assert_eq!(items[0]["actor"], "console:owner-sub-1");
    assert!(items[0]["at"].as_str() > items[1]["at"].as_str(), "{page}");
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let (status, next) = rig
        .get(&owner, &format!("/v1/audit?limit=2&cursor={cursor}"))
        .await;
    assert_eq!(status, 200);
    assert!(
        next["items"][0]["at"].as_str() <= items[1]["at"].as_str(),
        "{next}"
    );
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/audit?limit=100&cursor={c}"),
            None => "/v1/audit?limit=100".into(),
        };
        let (_, page) = rig.get(&owner, &path).await;
        all.extend(page["items"].as_array().unwrap().clone());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert!(
        all.iter().all(|e| e["subject"] != "B?"),
        "never the other business's"
    );
    assert!(!all.is_empty());
    // A cursor of another business, or a changed one: 422.
    let (status, value) = rig
        .get(
            &rig.other_tenant(),
            &format!("/v1/audit?cursor={}", page["next_cursor"].as_str().unwrap()),
        )
        .await;
    assert_eq!((status, value["field"].as_str()), (422, Some("cursor")));
    let (status, _) = rig.get(&owner, "/v1/audit?cursor=abc").await;
    assert_eq!(status, 422);
    assert_eq!(rig.get(&owner, "/v1/audit?limit=0").await.0, 422);
    assert_eq!(rig.get(&rig.agent(), "/v1/audit").await.0, 403);
    assert_eq!(rig.get(&rig.agent(), "/v1/usage").await.0, 403);
}

#[tokio::test]
async fn the_owner_exports_and_erases_a_contact() {
    let rig = Rig::new().await;
    let owner = rig.owner();
    rig.inbound(
        &rig.a,
        Platform::Messenger,
        "psid/erase me",
        Duration::hours(1),
    )
    .await;
    let export = "/v1/contacts/messenger/psid%2Ferase%20me/export";
    let erase = "/v1/contacts/messenger/psid%2Ferase%20me/erase";
    let (status, document) = rig.post(&owner, export, json!({})).await;
    assert_eq!(status, 200, "{document}");
    assert_eq!(
        document["user_id"], "psid/erase me",
        "the router percent-decodes"
    );
    assert_eq!(
        document["conversations"][0]["messages"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // The other business has a Messenger channel but not this contact: 404, nothing revealed.
    for path in [export, erase] {
        let (status, value) = rig.post(&rig.other_tenant(), path, json!({})).await;
        assert_eq!(status, 404, "{path}");
        problem(&value, 404);
        assert!(!value.to_string().contains("erase me"));
    }
    assert_eq!(
        rig.post(
            &owner,
            "/v1/contacts/line/psid%2Ferase%20me/export",
            json!({})
        )
        .await
        .0,
        404
    );
    // Bad input: 422 naming the field; an agent: 403.
    let long = "x".repeat(129);
    for (path, field) in [
        ("/v1/contacts/fax/psid/export".to_owned(), "platform"),
        (format!("/v1/contacts/messenger/{long}/export"), "user_id"),
        ("/v1/contacts/messenger/%20/erase".to_owned(), "user_id"),
        ("/v1/contacts/messenger/a%0Ab/erase".to_owned(), "user_id"),
    ] {
        let (status, value) = rig.post(&owner, &path, json!({})).await;
        assert_eq!(
            (status, value["field"].as_str()),
            (422, Some(field)),
            "{path}"
        );
    }
    let (status, value) = rig.post(&owner, export, json!({"all": true})).await;
    assert_eq!((status, value["field"].as_str()), (422, Some("body")));
    assert_eq!(rig.post(&rig.agent(), export, json!({})).await.0, 403);
    assert_eq!(rig.post(&rig.agent(), erase, json!({})).await.0, 403);

    let (status, erased) = rig.post(&owner, erase, json!({})).await;
    assert_eq!(status, 200, "{erased}");
    assert!(
        erased["deleted"]["messages"].as_u64() >= Some(1),
        "{erased}"
    );
    assert_eq!(rig.post(&owner, export, json!({})).await.0, 404, "gone");

    let actions = rig.audit_actions().await;
    for action in ["contact.export", "contact.erase"] {
        assert!(
            actions.contains(&(action.into(), "console:owner-sub-1".into())),
            "{action} {actions:?}"
        );
    }
}

#[tokio::test]
async fn the_owner_reads_analytics_and_a_reply_takes_at_most_six_aws_calls() {
    let rig = Rig::new().await;
    let (owner, agent) = (rig.owner(), rig.agent());
    // A customer wrote on LINE ten minutes ago; a person answers from the console.
    let line = rig
        .inbound(
            &rig.a,
            Platform::Line,
            "U00000000000000000000000000000a01",
            Duration::minutes(10),
        )
        .await;
    for _ in 0..3 {
        rig.inbound(
            &rig.a,
            Platform::Messenger,
            &new_id("psid"),
            Duration::minutes(1),
        )
        .await;
    }
    rig.env.calls.reset();
    let (status, _) = rig.get(&agent, "/v1/conversations?limit=50").await;
    assert_eq!(status, 200);
    assert!(
        rig.env.calls.total() <= 2,
        "the list: {:?}",
        rig.env.calls.snapshot()
    );
    rig.env.calls.reset();
    let (status, sent) = rig
        .post(
            &agent,
            &format!("/v1/conversations/{line}/messages"),
            json!({"text": "Yes, we have gluten-free loaves on Saturdays."}),
        )
        .await;
    assert_eq!(status, 201, "{sent}");
    assert!(
        rig.env.calls.total() <= 6,
        "a person's reply: {:?}",
        rig.env.calls.snapshot()
    );
    let conversation = rig.conversation(&line).await;
    assert_eq!(conversation.awaiting_reply_since, None);
    assert_eq!(conversation.mode, ConversationMode::Human);
    assert!(
        rig.audit_actions()
            .await
            .contains(&("conversation.reply".into(), "console:agent-sub-1".into()))
    );

    let (status, report) = rig.get(&owner, "/v1/analytics").await;
    assert_eq!(status, 200, "{report}");
    let platforms = report["platforms"].as_array().unwrap();
    assert_eq!(platforms.len(), 1, "{report}");
    let figures = &platforms[0];
    assert_eq!(figures["platform"], "line");
    assert_eq!(figures["sent_by_people"], 1);
    assert_eq!(figures["first_response_human"]["count"], 1);
    let median = figures["first_response_human"]["median_seconds"]
        .as_u64()
        .unwrap();
    assert!(
        (600..=900).contains(&median),
        "ten minutes, read from its bucket: {median}"
    );
    assert_eq!(figures["first_response_ai"]["count"], 0);
    assert!(figures["first_response_ai"]["median_seconds"].is_null());

    let today = rig.env.store.now().date();
    let yesterday = today - Duration::days(1);
    let (status, report) = rig
        .get(
            &owner,
            &format!("/v1/analytics?from={yesterday}&to={yesterday}"),
        )
        .await;
    assert_eq!(
        (status, report["platforms"].as_array().unwrap().len()),
        (200, 0)
    );
    assert_eq!(report["from"], yesterday.to_string());
    // Another business sees none of it.
    let (status, report) = rig.get(&rig.other_tenant(), "/v1/analytics").await;
    assert_eq!(
        (status, report["platforms"].as_array().unwrap().len()),
        (200, 0)
    );

    assert_eq!(rig.get(&agent, "/v1/analytics").await.0, 403);
    for (query, field) in [
        ("from=2026-13-01", "from"),
        ("to=yesterday", "to"),
        ("from=2026-02-01&to=2026-01-31", "from"),
        ("from=2024-01-01&to=2026-01-31", "from"),
    ] {
        let (status, problem_json) = rig.get(&owner, &format!("/v1/analytics?{query}")).await;
        problem(&problem_json, 422);
        assert_eq!(status, 422);
        assert!(
            problem_json.to_string().contains(field),
            "{query}: {problem_json}"
        );
    }
}
