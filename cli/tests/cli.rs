//! `inboxctl` as an operator runs it, against the emulator.

use std::process::Command;

use inbox_shared::model::{ChannelId, ChannelStatus, Platform, TenantId};
use inbox_tests::TestEnv;
use inbox_tests::fake_platforms::{AppFacts, FakePlatforms};
use serde_json::Value;

const META_APP_ID: &str = "1234567890";
const META_APP_SECRET: &str = "meta-app-secret";
const META_USER: &str = "10158000000000001";

/// Fakes of Graph, Instagram and LINE that know one Facebook user and `pages` of theirs.
async fn platforms(pages: &[&str]) -> FakePlatforms {
    let fake = FakePlatforms::start(
        AppFacts {
            app_id: META_APP_ID.into(),
            app_secret: META_APP_SECRET.into(),
        },
        AppFacts {
            app_id: "9876543210".into(),
            app_secret: "ig-app-secret".into(),
        },
    )
    .await;
    fake.add_facebook_user(META_USER);
    for page in pages {
        fake.add_page(META_USER, page, "Kumo Bakery", None, false);
    }
    fake
}

struct Ctl<'a> {
    env: &'a TestEnv,
    dir: std::path::PathBuf,
    extra_env: Vec<(String, String)>,
}

impl<'a> Ctl<'a> {
    fn new(env: &'a TestEnv) -> Self {
        let dir = std::env::temp_dir().join(format!("inboxctl-{}", env.prefix));
        std::fs::create_dir_all(&dir).unwrap();
        Self {
            env,
            dir,
            extra_env: Vec::new(),
        }
    }

    fn file(&self, name: &str, content: &str) -> String {
        let path = self.dir.join(name);
        std::fs::write(&path, content).unwrap();
        path.display().to_string()
    }

    /// Runs `inboxctl` and returns (success, stdout, stderr).
    fn run(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_inboxctl"))
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(self.env.env_vars())
            .envs(self.extra_env.iter().cloned())
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    }

    /// Points `inboxctl` at fakes of the platforms, as our Meta app, Instagram app and local origin.
    fn use_platforms(&mut self, fake: &FakePlatforms) {
        for (name, value) in [
            ("META_APP_ID", META_APP_ID.to_owned()),
            ("META_APP_SECRET", META_APP_SECRET.to_owned()),
            ("META_LOGIN_CONFIG_ID", "555000111".to_owned()),
            ("META_GRAPH_URL", fake.graph_url()),
            ("INSTAGRAM_APP_ID", "9876543210".to_owned()),
            ("INSTAGRAM_APP_SECRET", "ig-app-secret".to_owned()),
            ("INSTAGRAM_OAUTH_URL", fake.instagram_api_url()),
            ("INSTAGRAM_GRAPH_URL", fake.instagram_graph_url()),
            ("LINE_API_URL", fake.line_url()),
            ("LINE_OAUTH_URL", fake.line_url()),
            (
                "CONNECT_STATE_SECRET",
                "connect-state-secret-0123456789abcdef".to_owned(),
            ),
            ("PUBLIC_BASE_URL", "https://inbox.example".to_owned()),
        ] {
            self.extra_env.push((name.to_owned(), value));
        }
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let (ok, stdout, stderr) = self.run(&all);
        assert!(ok, "inboxctl {args:?} failed: {stderr}");
        serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("not one JSON object ({e}): {stdout}"))
    }
}

fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn create_tenant_connect_and_disconnect_a_channel() {
    let env = TestEnv::new().await;
    let fake = platforms(&["104857600000001"]).await;
    let mut ctl = Ctl::new(&env);
    ctl.use_platforms(&fake);

    let created = ctl.json(&[
        "tenant",
        "create",
        "--name",
        "Kumo Bakery",
        "--ai-mode",
        "auto",
        "--retention-days",
        "180",
    ]);
    let tenant_id = created["tenant_id"].as_str().unwrap().to_owned();
    let shown = ctl.json(&["tenant", "show", &tenant_id]);
    assert_eq!(shown["ai_mode"], "auto");
    assert_eq!(shown["retention"]["content_days"], 180);

    let page_token = fake.page_token(META_USER, "104857600000001");
    let token = ctl.file("token", &format!("{page_token}\n"));
    let connected = ctl.json(&[
        "channel",
        "connect",
        "--tenant",
        &tenant_id,
        "--platform",
        "messenger",
        "--account",
        "104857600000001",
        "--token-file",
        &token,
        "--connected-by",
        "meta-user-42",
    ]);
    let channel_id = connected["channel_id"].as_str().unwrap().to_owned();
    let (tenant, channel) = (TenantId::new(&tenant_id), ChannelId::new(&channel_id));
    assert!(
        !connected.to_string().contains(&page_token),
        "the token is never printed: {connected}"
    );
    assert_eq!(
        fake.subscribed_fields("104857600000001").map(|f| f.len()),
        Some(6),
        "the Page is subscribed to our webhooks before it is stored"
    );
    assert_eq!(connected["has_token"], true);

    let stored = env
        .store
        .get_channel(&tenant, &channel)
        .await
        .unwrap()
        .unwrap();
    let wrapped = stored
        .credentials
        .clone()
        .expect("a wrapped token is stored");
    let ctx = inbox_shared::vault::SealContext::new(&tenant, &channel);
    assert_eq!(
        env.vault()
            .open_token(&ctx, &wrapped)
            .await
            .unwrap()
            .expect("a token")
            .expose_secret(),
        page_token
    );
    assert_eq!(
        env.store
            .route(Platform::Messenger, "104857600000001")
            .await
            .unwrap()
            .unwrap()
            .channel_id,
        channel
    );

    let gone = ctl.json(&[
        "channel",
        "disconnect",
        "--tenant",
        &tenant_id,
        "--channel",
        &channel_id,
        "--yes",
    ]);
    assert_eq!(gone["status"], "disconnected");
    assert_eq!(gone["has_token"], false);
    assert_eq!(
        fake.subscribed_fields("104857600000001"),
        None,
        "the platform is told: the Page is unsubscribed"
    );
    let stored = env
        .store
        .get_channel(&tenant, &channel)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, ChannelStatus::Disconnected);
    assert!(stored.credentials.is_none(), "the wrapped token is gone");
    assert!(
        env.store
            .route(Platform::Messenger, "104857600000001")
            .await
            .unwrap()
            .is_none()
    );
    let raw = env.scan_all().await;
    assert!(raw.iter().all(|item| !item.contains_key("credentials")));
    let actions: Vec<String> = env
        .store
        .audit_events(Some(&tenant))
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(
        actions,
        vec!["tenant.create", "channel.connect", "channel.disconnect"]
    );

    // Disconnecting twice says so.
    let (ok, _, stderr) = ctl.run(&[
        "channel",
        "disconnect",
        "--tenant",
        &tenant_id,
        "--channel",
        &channel_id,
        "--yes",
    ]);
    assert!(!ok);
    assert!(stderr.contains("already disconnected"), "{stderr}");
}

#[tokio::test]
async fn destructive_commands_without_a_terminal_need_yes_and_do_nothing_without_it() {
    let env = TestEnv::new().await;
    let ctl = Ctl::new(&env);
    let seeded = env
        .seed_tenant(
            "Careful",
            &[(Platform::Messenger, "104857600000077")],
            "EAAG-token",
            "",
        )
        .await;
    let tenant = seeded.tenant.tenant_id.clone();
    let (tenant_id, channel_id) = (
        tenant.as_str().to_owned(),
        seeded.channels[0].channel_id.as_str().to_owned(),
    );
    let audit_before = env.store.audit_events(Some(&tenant)).await.unwrap().len();
    let contact = [
        "--tenant",
        &tenant_id,
        "--platform",
        "messenger",
        "--contact",
        "psid-1",
    ];
    for command in [
        vec!["tenant", "terminate", &tenant_id],
        vec![
            "channel",
            "disconnect",
            "--tenant",
            &tenant_id,
            "--channel",
            &channel_id,
        ],
        [&["erase"][..], &contact[..]].concat(),
        vec!["sweep", "--tenant", &tenant_id],
    ] {
        // The test's stdin is not a terminal (Command::output gives the child none).
        let (ok, stdout, stderr) = ctl.run(&command);
        assert!(!ok, "{command:?} ran without --yes: {stdout}");
        assert!(
            stderr.contains("pass --yes") && stderr.contains("cannot be undone"),
            "{command:?}: {stderr}"
        );
    }
    let stored = env
        .store
        .get_channel(&tenant, &ChannelId::new(&channel_id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, ChannelStatus::Connected, "nothing was done");
    assert_eq!(
        env.store.require_tenant(&tenant).await.unwrap().status,
        inbox_shared::model::TenantStatus::Active
    );
    assert_eq!(
        env.store.audit_events(Some(&tenant)).await.unwrap().len(),
        audit_before,
        "no sweep, erasure, disconnect or termination was even started"
    );
}

#[tokio::test]
async fn tenant_settings_knowledge_and_listing() {
    let env = TestEnv::new().await;
    let ctl = Ctl::new(&env);
    let tenant_id = ctl.json(&["tenant", "create", "--name", "Sora Dental"])["tenant_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let set = ctl.json(&[
        "tenant",
        "set",
        &tenant_id,
        "--ai-mode",
        "draft",
        "--retention-days",
        "90",
        "--provider-order",
        "openai,anthropic",
        "--mask-personal-data",
        "true",
        "--monthly-message-limit",
        "5000",
        "--instructions",
        "Reply in Japanese.",
    ]);
    assert_eq!(set["ai_mode"], "draft");
    assert_eq!(set["retention"]["content_days"], 90);
    assert_eq!(
        set["provider_order"],
        serde_json::json!(["openai", "anthropic"])
    );
    assert_eq!(set["mask_personal_data"], true);
    assert_eq!(set["monthly_message_limit"], 5000);

    ctl.json(&[
        "knowledge",
        "add",
        "--tenant",
        &tenant_id,
        "--question",
        "Open on Sunday?",
        "--answer",
        "No, Mon-Sat.",
    ]);
    let listed = ctl.json(&["knowledge", "list", "--tenant", &tenant_id]);
    assert_eq!(listed["entries"][0]["answer"], "No, Mon-Sat.");
    let tenants = ctl.json(&["tenant", "list"]);
    assert!(
        tenants["tenants"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["tenant_id"] == tenant_id.as_str())
    );

    let (ok, text, _) = ctl.run(&["tenant", "show", &tenant_id]);
    assert!(
        ok && text.contains("ai mode: draft") && text.contains("openai, anthropic then offline"),
        "{text}"
    );
}

#[tokio::test]
async fn bad_input_gets_a_clear_error() {
    let env = TestEnv::new().await;
    let ctl = Ctl::new(&env);
    let tenant_id = ctl.json(&["tenant", "create", "--name", "Hana Florist"])["tenant_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = ctl.file("line-token", "line-token");
    let two_tokens = ctl.file("two-tokens", "EAAG-one\nEAAG-two\n");
    let secret_and_note = ctl.file("secret-and-note", "0123abcd\n\n# rotated in May\n");

    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "channel",
                "connect",
                "--tenant",
                &tenant_id,
                "--platform",
                "messenger",
                "--account",
                "104857600000005",
                "--token-file",
                &two_tokens,
            ],
            "has 2 non-empty lines",
        ),
        (
            vec![
                "channel",
                "connect",
                "--tenant",
                &tenant_id,
                "--platform",
                "line",
                "--channel-id",
                "2001234567",
                "--token-file",
                &token,
                "--secret-file",
                &secret_and_note,
            ],
            "has 2 non-empty lines",
        ),
        (
            vec!["channel", "list", "--tenant", "ten_missing"],
            "tenant ten_missing not found",
        ),
        (
            vec!["knowledge", "list", "--tenant", "ten_missing"],
            "tenant ten_missing not found",
        ),
        (
            vec!["drafts", "list", "--tenant", "ten_missing"],
            "tenant ten_missing not found",
        ),
        (
            vec![
                "channel",
                "connect",
                "--tenant",
                &tenant_id,
                "--platform",
                "line",
                "--account",
                "U0123",
                "--token-file",
                &token,
            ],
            "connects with --channel-id and --secret-file",
        ),
        (
            vec![
                "channel",
                "connect",
                "--tenant",
                &tenant_id,
                "--platform",
                "telegram",
                "--account",
                "1",
                "--token-file",
                &token,
            ],
            "expected one of",
        ),
        (
            vec![
                "channel",
                "connect",
                "--tenant",
                "ten_missing",
                "--platform",
                "messenger",
                "--account",
                "1",
                "--token-file",
                &token,
            ],
            "tenant ten_missing not found",
        ),
        (
            vec![
                "channel",
                "connect",
                "--tenant",
                &tenant_id,
                "--platform",
                "messenger",
                "--account",
                "1",
                "--token-file",
                "/nonexistent/token",
            ],
            "reading the token file",
        ),
        (
            vec!["tenant", "create", "--name", "X", "--retention-days", "0"],
            "from 1 to 3650",
        ),
        (vec!["tenant", "set", &tenant_id], "nothing to set"),
    ];
    for (args, expected) in cases {
        let (ok, _, stderr) = ctl.run(&args);
        assert!(!ok, "{args:?} should fail");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    assert!(
        env.store
            .channels_of_tenant(&TenantId::new(&tenant_id))
            .await
            .unwrap()
            .is_empty(),
        "no channel from a token file of two lines"
    );
    // --json errors are one JSON object too.
    let (ok, stdout, _) = ctl.run(&["--json", "tenant", "show", "ten_missing"]);
    assert!(!ok);
    let error: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert!(error["error"].as_str().unwrap().contains("not found"));
}

#[tokio::test]
async fn provision_twice_creates_nothing_the_second_time() {
    let env = TestEnv::new().await;
    let ctl = Ctl::new(&env);
    let first = ctl.json(&["provision"]);
    assert_eq!(first["table_name"], env.provisioned.table_name.as_str());
    assert_eq!(
        first["created"],
        serde_json::json!([]),
        "the test environment already provisioned everything"
    );
    // The console's user pool: made by the first run, found by the second.
    assert_eq!(
        first["identity"]["user_pool_name"],
        format!("{}-users", env.provisioned.table_name)
    );
    assert!(!first["identity"]["created"].as_array().unwrap().is_empty());
    let second = ctl.json(&["provision"]);
    assert_eq!(second["identity"]["created"], serde_json::json!([]));
    for field in ["user_pool_id", "client_id", "issuer"] {
        assert_eq!(
            first["identity"][field], second["identity"][field],
            "{field}"
        );
    }
}

/// inboxctl runs on the real clock: the conversation's last customer message is a minute old in it, so
/// the reply window is open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drafts_are_approved_once_rejected_and_conversations_released() {
    use inbox_shared::ids::new_id;
    use inbox_shared::keys;
    use inbox_shared::model::*;
    use inbox_shared::secret::MessageText;
    use inbox_shared::store::ConversationTouch;
    use inbox_tests::fake_http::FakeHttp;

    let env = TestEnv::new().await;
    let graph = FakeHttp::start(|_| {
        (
            200,
            serde_json::json!({"recipient_id": "psid-1", "message_id": "m_approved_1"}),
        )
    })
    .await;
    let mut ctl = Ctl::new(&env);
    ctl.extra_env.push(("META_GRAPH_URL".into(), graph.url()));
    let seeded = env
        .seed_tenant(
            "Kumo Bakery",
            &[(Platform::Messenger, "104857600000001")],
            "EAAG-token",
            "unused",
        )
        .await;
    let tenant_id = seeded.tenant.tenant_id.clone();
    let channel = seeded.channel(Platform::Messenger).clone();
    let now = time::OffsetDateTime::now_utc();
    let mut drafts = Vec::new();
    for user in ["psid-1", "psid-2"] {
        let user = &inbox_shared::secret::PlatformUserId::new(user);
        let conversation_id = keys::conversation_id(&channel.channel_id, user);
        let inbound = Message {
            tenant_id: tenant_id.clone(),
            conversation_id: conversation_id.clone(),
            channel_id: channel.channel_id.clone(),
            message_id: new_id("mid"),
            direction: Direction::Inbound,
            author: Author::Customer,
            text: Some(MessageText::new("Do you ship to Osaka?")),
            attachments: Vec::new(),
            payload: None,
            status: MessageStatus::Received,
            error_code: None,
            sent_at: now - time::Duration::minutes(1),
            retain_until: now + time::Duration::days(365),
            reply_outcome: Some(ReplyOutcome::Drafted),
        };
        env.store
            .ingest_message(
                &inbound,
                &ConversationTouch {
                    conversation_id: &conversation_id,
                    channel_id: &channel.channel_id,
                    platform: Platform::Messenger,
                    user_id: user,
                    last_inbound_at: Some(inbound.sent_at),
                    hand_to_human: None,
                    retain_until: inbound.retain_until,
                    routed_account: None,
                },
                None,
            )
            .await
            .unwrap();
        let draft = Draft {
            tenant_id: tenant_id.clone(),
            conversation_id: conversation_id.clone(),
            channel_id: channel.channel_id.clone(),
            draft_id: new_id("dft"),
            in_reply_to: inbound.message_id.clone(),
            text: MessageText::new(format!("Yes, we ship to Osaka ({}).", user.expose())),
            status: DraftStatus::Pending,
            created_at: now,
            decided_at: None,
            retain_until: inbound.retain_until,
        };
        env.store.create_draft(&draft).await.unwrap();
        drafts.push(draft);
    }

    let listed = ctl.json(&["drafts", "list", "--tenant", tenant_id.as_str()]);
    let listed = listed["drafts"].as_array().unwrap();
    assert_eq!(listed.len(), 2);
    let first = listed
        .iter()
        .find(|d| d["draft_id"] == drafts[0].draft_id.as_str())
        .unwrap();
    assert_eq!(first["text"], "Yes, we ship to Osaka (psid-1).");

    let approve = [
        "drafts",
        "approve",
        "--tenant",
        tenant_id.as_str(),
        "--conversation",
        drafts[0].conversation_id.as_str(),
        "--draft",
        &drafts[0].draft_id,
    ];
    let approved = ctl.json(&approve);
    assert_eq!(approved["message_id"], "m_approved_1");
    let again = ctl.json(&approve);
    assert_eq!(again["status"], "sent");
    let sent = graph.requests();
    assert_eq!(sent.len(), 1, "approved twice, sent once");
    assert_eq!(
        sent[0].json()["message"]["text"],
        "Yes, we ship to Osaka (psid-1)."
    );
    assert_eq!(sent[0].json()["recipient"]["id"], "psid-1");

    let rejected = ctl.json(&[
        "drafts",
        "reject",
        "--tenant",
        tenant_id.as_str(),
        "--conversation",
        drafts[1].conversation_id.as_str(),
        "--draft",
        &drafts[1].draft_id,
    ]);
    assert_eq!(rejected["status"], "rejected");
    let (ok, _, stderr) = ctl.run(&[
        "drafts",
        "approve",
        "--tenant",
        tenant_id.as_str(),
        "--conversation",
        drafts[1].conversation_id.as_str(),
        "--draft",
        &drafts[1].draft_id,
    ]);
    assert!(!ok && stderr.contains("was rejected"), "{stderr}");
    assert_eq!(graph.requests().len(), 1);
    assert!(
        ctl.json(&["drafts", "list", "--tenant", tenant_id.as_str()])["drafts"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    env.store
        .set_conversation_mode(
            &tenant_id,
            &channel.channel_id,
            &drafts[1].conversation_id,
            ConversationMode::Human,
            Some("customer_asked_for_a_person"),
        )
        .await
        .unwrap();
    let human = ctl.json(&[
        "conversation",
        "list",
        "--tenant",
        tenant_id.as_str(),
        "--human",
    ]);
    assert_eq!(human["conversations"].as_array().unwrap().len(), 1);
    assert_eq!(
        human["conversations"][0]["handoff_reason"],
        "customer_asked_for_a_person"
    );
    ctl.json(&[
        "conversation",
        "release",
        "--tenant",
        tenant_id.as_str(),
        "--channel",
        channel.channel_id.as_str(),
        "--conversation",
        drafts[1].conversation_id.as_str(),
    ]);
    let released = env
        .store
        .get_conversation(&tenant_id, &channel.channel_id, &drafts[1].conversation_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(released.mode, ConversationMode::Bot);
    let actions: Vec<String> = env
        .store
        .audit_events(Some(&tenant_id))
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert!(actions.contains(&"draft.approve".to_owned()));
    assert!(actions.contains(&"draft.reject".to_owned()));
    assert!(actions.contains(&"conversation.release".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_end_users_export_and_erasure() {
    use inbox_shared::ids::new_id;
    use inbox_shared::keys;
    use inbox_shared::model::*;
    use inbox_shared::secret::MessageText;
    use inbox_shared::store::ConversationTouch;

    let env = TestEnv::new().await;
    let ctl = Ctl::new(&env);
    let seeded = env
        .seed_tenant(
            "Kumo Bakery",
            &[(Platform::Whatsapp, "106540352242922")],
            "EAAG-token",
            "unused",
        )
        .await;
    let channel = seeded.channel(Platform::Whatsapp).clone();
    let now = env.store.now();
    for (user, count) in [("819012345678", 3), ("819087654321", 2)] {
        let user = &inbox_shared::secret::PlatformUserId::new(user);
        let conversation_id = keys::conversation_id(&channel.channel_id, user);
        for i in 0..count {
            let message = Message {
                tenant_id: channel.tenant_id.clone(),
                conversation_id: conversation_id.clone(),
                channel_id: channel.channel_id.clone(),
                message_id: new_id("wamid"),
                direction: Direction::Inbound,
                author: Author::Customer,
                text: Some(MessageText::new(format!("{} says {i}", user.expose()))),
                attachments: Vec::new(),
                payload: None,
                status: MessageStatus::Received,
                error_code: None,
                sent_at: now + time::Duration::seconds(i),
                retain_until: now + time::Duration::days(365),
                reply_outcome: None,
            };
            env.store
                .ingest_message(
                    &message,
                    &ConversationTouch {
                        conversation_id: &conversation_id,
                        channel_id: &channel.channel_id,
                        platform: Platform::Whatsapp,
                        user_id: user,
                        last_inbound_at: Some(message.sent_at),
                        hand_to_human: None,
                        retain_until: message.retain_until,
                        routed_account: None,
                    },
                    None,
                )
                .await
                .unwrap();
        }
    }
    let tenant = seeded.tenant.tenant_id.as_str();
    let contact = [
        "--tenant",
        tenant,
        "--platform",
        "whatsapp",
        "--contact",
        "819012345678",
    ];
    let export = ctl.json(&[&["export"][..], &contact[..]].concat());
    assert_eq!(export["format_version"], 1);
    let messages = export["conversations"][0]["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 3);
    assert_eq!(messages[0]["text"], "819012345678 says 0");
    assert!(
        !export.to_string().contains("819087654321"),
        "nothing of another contact"
    );

    let erased = ctl.json(&[&["erase"][..], &contact[..], &["--yes"][..]].concat());
    assert_eq!(erased["deleted"]["messages"], 3);
    assert_eq!(erased["deleted"]["contacts"], 1);
    assert_eq!(erased["deleted"]["conversations"], 1);
    let again = ctl.json(&[&["export"][..], &contact[..]].concat());
    assert!(again["conversations"].as_array().unwrap().is_empty());
    assert!(again["contact"].is_null());
    let other = ctl.json(&[
        "export",
        "--tenant",
        tenant,
        "--platform",
        "whatsapp",
        "--contact",
        "819087654321",
    ]);
    assert_eq!(
        other["conversations"][0]["messages"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let actions: Vec<String> = env
        .store
        .audit_events(Some(&TenantId::new(tenant)))
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert!(
        actions.contains(&"contact.export".to_owned())
            && actions.contains(&"contact.erase".to_owned())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn retention_settings_termination_and_an_operator_sweep() {
    use inbox_shared::keys;
    use inbox_shared::model::*;
    use inbox_shared::secret::MessageText;
    use inbox_shared::store::ConversationTouch;
    use time::macros::datetime;

    let env = TestEnv::new().await;
    let fake = platforms(&["600000000000001"]).await;
    let mut ctl = Ctl::new(&env);
    ctl.use_platforms(&fake);
    let tenant_id = ctl.json(&["tenant", "create", "--name", "Sweepme"])["tenant_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let set = ctl.json(&[
        "tenant",
        "set",
        &tenant_id,
        "--disconnected-channel-days",
        "14",
        "--terminated-content-days",
        "60",
        "--terminated-account-days",
        "20",
        "--audit-days",
        "400",
    ]);
    assert_eq!(set["retention"]["disconnected_channel_days"], 14);
    assert_eq!(set["retention"]["terminated_content_days"], 60);
    assert_eq!(set["retention"]["audit_days"], 400);

    let token = ctl.file(
        "sweep-token",
        &fake.page_token(META_USER, "600000000000001"),
    );
    let channel_id = ctl.json(&[
        "channel",
        "connect",
        "--tenant",
        &tenant_id,
        "--platform",
        "messenger",
        "--account",
        "600000000000001",
        "--token-file",
        &token,
    ])["channel_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (tenant, channel) = (TenantId::new(&tenant_id), ChannelId::new(&channel_id));
    let conversation_id = keys::conversation_id(&channel, &"psid-1".into());
    for (id, sent_at) in [
        ("m_old", datetime!(2025-10-01 0:00 UTC)),
        ("m_new", datetime!(2026-10-01 0:00 UTC)),
    ] {
        let message = Message {
            tenant_id: tenant.clone(),
            conversation_id: conversation_id.clone(),
            channel_id: channel.clone(),
            message_id: id.into(),
            direction: Direction::Inbound,
            author: Author::Customer,
            text: Some(MessageText::new("hi")),
            attachments: Vec::new(),
            payload: None,
            status: MessageStatus::Received,
            error_code: None,
            sent_at,
            retain_until: sent_at + time::Duration::days(365),
            reply_outcome: None,
        };
        env.store
            .ingest_message(
                &message,
                &ConversationTouch {
                    conversation_id: &conversation_id,
                    channel_id: &channel,
                    platform: Platform::Messenger,
                    user_id: &"psid-1".into(),
                    last_inbound_at: Some(sent_at),
                    hand_to_human: None,
                    retain_until: message.retain_until,
                    routed_account: None,
                },
                None,
            )
            .await
            .unwrap();
    }
    let swept = ctl.json(&[
        "sweep",
        "--tenant",
        &tenant_id,
        "--now",
        "2026-11-02T09:00:00Z",
        "--yes",
    ]);
    assert_eq!(swept["deleted"]["expired_content.messages"], 1);
    let left: Vec<String> = env
        .store
        .query_all_keys(&keys::messages_of_conversation(&tenant, &conversation_id))
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.sk)
        .collect();
    assert_eq!(left.len(), 1);
    assert!(left[0].ends_with("#m_new"));

    let (ok, _, stderr) = ctl.run(&[
        "tenant",
        "terminate",
        &tenant_id,
        "--at",
        "2026-11-01T00:00:00Z",
        "--yes",
    ]);
    assert!(!ok && stderr.contains("is outside"), "back-dated: {stderr}");
    let terminated = ctl.json(&["tenant", "terminate", &tenant_id, "--yes"]);
    assert_eq!(terminated["channels_disconnected"], 1);
    let channel = env
        .store
        .get_stored::<Channel>(&keys::channel(&tenant, &channel))
        .await
        .unwrap()
        .unwrap();
    assert!(
        channel.credentials.is_none(),
        "termination destroys the tokens at once"
    );
    assert_eq!(
        channel.retain_until.unwrap() - channel.disconnected_at.unwrap(),
        time::Duration::days(14),
        "the tenant's own disconnected-channel deadline"
    );
    // A re-run finishes the termination (nothing is left to do) and keeps its date.
    let again = ctl.json(&["tenant", "terminate", &tenant_id, "--yes"]);
    assert_eq!(again["channels_disconnected"], 0);
    assert_eq!(
        again["content_deleted_after"],
        terminated["content_deleted_after"]
    );
    let (ok, _, stderr) = ctl.run(&[
        "tenant",
        "terminate",
        &tenant_id,
        "--at",
        &rfc3339(time::OffsetDateTime::now_utc() + time::Duration::days(1)),
        "--yes",
    ]);
    assert!(!ok && stderr.contains("already terminated"), "{stderr}");

    // A sweep dated ahead of the clock would delete what the policy still keeps: refused, nothing done.
    let later = rfc3339(time::OffsetDateTime::now_utc() + time::Duration::days(61));
    let (ok, _, stderr) = ctl.run(&["sweep", "--tenant", &tenant_id, "--now", &later, "--yes"]);
    assert!(!ok && stderr.contains("clock skew"), "{stderr}");
    assert!(
        !env.store
            .query_all_keys(&keys::conversation_partition(&tenant, &conversation_id))
            .await
            .unwrap()
            .is_empty()
    );

    // 61 days later (the tenant's own 60-day content rule): everything is gone. Time passes by
    // back-dating the stored termination.
    let mut stored = env.store.require_tenant(&tenant).await.unwrap();
    stored.terminated_at = Some(time::OffsetDateTime::now_utc() - time::Duration::days(61));
    env.store.save_tenant(&stored).await.unwrap();
    let swept = ctl.json(&["sweep", "--tenant", &tenant_id, "--yes"]);
    assert_eq!(swept["deleted"]["termination.channels"], 1);
    assert!(
        env.store
            .query_all_keys(&keys::tenant_partition(&tenant))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        env.store
            .query_all_keys(&keys::conversation_partition(&tenant, &conversation_id))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn knowledge_ask_shows_the_decision_ai_reply_makes() {
    let env = TestEnv::new().await;
    let ctl = Ctl::new(&env);
    let tenant = ctl.json(&["tenant", "create", "--name", "Kumo Bakery"])["tenant_id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (question, answer) in [
        (
            "What are your opening hours?",
            "We open 8:00-18:00, Tuesday to Sunday.",
        ),
        ("Do you deliver?", "Yes, within 5 km; free over $40."),
        (
            "What payment methods do you accept?",
            "Cash, Visa and Mastercard.",
        ),
    ] {
        ctl.json(&[
            "knowledge",
            "add",
            "--tenant",
            &tenant,
            "--question",
            question,
            "--answer",
            answer,
        ]);
    }
    let ask = |question: &str| {
        ctl.json(&[
            "knowledge",
            "ask",
            "--tenant",
            &tenant,
            "--question",
            question,
        ])
    };

    let answered = ask("what time do you open on sunday?");
    assert_eq!(answered["answer"], "We open 8:00-18:00, Tuesday to Sunday.");
    assert!(answered["entry_id"].as_str().unwrap().starts_with("kb"));
    assert!(answered["score"].as_f64().unwrap() > 0.0);

    // The business's alternative phrasing teaches the answerer its customers' words.
    assert_eq!(ask("do you take reservations?")["handoff"], true);
    ctl.json(&[
        "knowledge",
        "add",
        "--tenant",
        &tenant,
        "--question",
        "Can I book a table?",
        "--answer",
        "Yes, by phone.",
        "--alternate",
        "Do you take reservations?",
    ]);
    assert_eq!(ask("do you take reservations?")["answer"], "Yes, by phone.");

    // A FAQ from a spreadsheet: one question already there (its answer replaced), one new, two refused.
    let csv = ctl.file(
        "faq.csv",
        "question,answer\n\"Can I book a table?\",\"Yes, by phone or on LINE.\"\nIs there parking nearby?,\"Yes, behind the shop.\"\n,no question\nA question with no answer,\n",
    );
    let report = ctl.json(&[
        "knowledge",
        "import",
        "--tenant",
        &tenant,
        "--csv-file",
        &csv,
    ]);
    assert_eq!(report["added"], 1, "{report}");
    assert_eq!(report["updated"], 1, "{report}");
    let rejected: Vec<u64> = report["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["row"].as_u64().unwrap())
        .collect();
    assert_eq!(rejected, vec![3, 4], "{report}");
    assert_eq!(
        ask("do you take reservations?")["answer"],
        "Yes, by phone or on LINE."
    );
    let (ok, _, stderr) = ctl.run(&[
        "knowledge",
        "add",
        "--tenant",
        &tenant,
        "--question",
        &"why? ".repeat(200),
        "--answer",
        "x",
    ]);
    assert!(
        !ok && stderr.contains("--question: is longer than 500"),
        "{stderr}"
    );

    let uncovered = ask("do you sell gift cards?");
    assert_eq!(uncovered["handoff"], true);
    assert_eq!(uncovered["reason"], "no_match");

    let thanks = ask("thanks!");
    assert_eq!(thanks["silent"], true);
    assert_eq!(thanks["social"], "thanks");
    ctl.json(&[
        "tenant",
        "set",
        &tenant,
        "--thanks-reply",
        "You're welcome!",
    ]);
    let acknowledged = ask("thanks!");
    assert_eq!(acknowledged["acknowledgement"], "You're welcome!");

    let (ok, text, _) = ctl.run(&[
        "knowledge",
        "ask",
        "--tenant",
        &tenant,
        "--question",
        "Do you deliver?",
    ]);
    assert!(ok);
    assert!(text.contains("Yes, within 5 km"), "{text}");
}

#[tokio::test]
async fn text_output_escapes_terminal_controls_and_json_keeps_the_exact_text() {
    use inbox_shared::keys;
    use inbox_shared::model::{Conversation, ConversationMode};

    let env = TestEnv::new().await;
    let ctl = Ctl::new(&env);
    // A tenant name and a customer id (from a signed webhook) carrying a window retitle, a screen
    // clear, a one-byte CSI, a carriage return and a right-to-left override.
    let name = "Evil\u{1b}]0;owned\u{7}\u{1b}[2J Co\u{202e}gpj.exe";
    let user = "psid\u{1b}[31m\u{9b}1;1H\rforged";
    let seeded = env
        .seed_tenant(name, &[(Platform::Messenger, "104857600000088")], "tok", "")
        .await;
    let tenant = seeded.tenant.tenant_id.as_str();
    let channel = &seeded.channels[0];
    let now = time::OffsetDateTime::now_utc();
    env.store
        .save_conversation(&Conversation {
            tenant_id: seeded.tenant.tenant_id.clone(),
            conversation_id: keys::conversation_id(&channel.channel_id, &user.into()),
            channel_id: channel.channel_id.clone(),
            platform: Platform::Messenger,
            user_id: user.into(),
            mode: ConversationMode::Human,
            handoff_reason: Some("asked\u{1b}[8m".into()),
            last_inbound_at: Some(now),
            last_outbound_at: None,
            awaiting_reply_since: None,
            created_at: now,
            retain_until: now + time::Duration::days(365),
        })
        .await
        .unwrap();
    let terminal_controls =
        |c: char| (c.is_control() && c != '\n') || ('\u{202a}'..='\u{202e}').contains(&c);
    let listed = ["conversation", "list", "--tenant", tenant];
    for args in [
        &["tenant", "show", tenant][..],
        &["tenant", "list"],
        &listed,
    ] {
        let (ok, stdout, stderr) = ctl.run(args);
        assert!(ok, "{args:?}: {stderr}");
        assert!(!stdout.contains(terminal_controls), "{args:?}: {stdout:?}");
    }
    let (_, shown, _) = ctl.run(&["tenant", "show", tenant]);
    assert!(
        shown.contains("Evil\\u{1b}]0;owned\\u{7}\\u{1b}[2J Co\\u{202e}gpj.exe"),
        "{shown}"
    );
    let (_, conversations, _) = ctl.run(&listed);
    assert!(
        conversations
            .contains("user psid\\u{1b}[31m\\u{9b}1;1H\\u{d}forged: human (asked\\u{1b}[8m)"),
        "{conversations}"
    );

    // JSON output is the exact text, its control characters escaped by JSON itself.
    assert_eq!(ctl.json(&["tenant", "show", tenant])["name"], name);
    assert_eq!(ctl.json(&listed)["conversations"][0]["user_id"], user);
}

#[tokio::test(flavor = "multi_thread")]
async fn connect_links_line_by_channel_id_and_the_reason_a_channel_needs_reauthorizing() {
    let env = TestEnv::new().await;
    let fake = platforms(&["104857600000031"]).await;
    fake.add_line_bot(
        "2001234567",
        "line-channel-secret",
        "U00000000000000000000000000000031",
        "line-long-lived",
    );
    let mut ctl = Ctl::new(&env);
    ctl.use_platforms(&fake);
    let tenant_id = ctl.json(&["tenant", "create", "--name", "Links"])["tenant_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let link = ctl.json(&[
        "channel",
        "connect-link",
        "--tenant",
        &tenant_id,
        "--platform",
        "messenger,instagram",
    ]);
    let url = link["url"].as_str().unwrap();
    assert!(
        url.starts_with("https://inbox.example/connect/meta/start?state=v1."),
        "{link}"
    );
    assert!(link["expires_at"].as_str().is_some());
    let (ok, _, stderr) = ctl.run(&[
        "channel",
        "connect-link",
        "--tenant",
        &tenant_id,
        "--platform",
        "line",
    ]);
    assert!(!ok && stderr.contains("LINE has no login"), "{stderr}");

    // LINE: no account id to hunt for, no token file (tokens are minted).
    let secret = ctl.file("line-secret", "line-channel-secret");
    let line = ctl.json(&[
        "channel",
        "connect",
        "--tenant",
        &tenant_id,
        "--platform",
        "line",
        "--channel-id",
        "2001234567",
        "--secret-file",
        &secret,
    ]);
    assert_eq!(line["account_id"], "U00000000000000000000000000000031");
    assert_eq!(line["webhook_test"]["success"], true, "{line}");
    assert_eq!(
        fake.line_webhook_endpoint("U00000000000000000000000000000031")
            .as_deref(),
        Some("https://inbox.example/webhooks/line")
    );

    // A Messenger channel whose token dies is listed with the reason.
    let token = ctl.file("page-token", &fake.page_token(META_USER, "104857600000031"));
    let page = ctl.json(&[
        "channel",
        "connect",
        "--tenant",
        &tenant_id,
        "--platform",
        "messenger",
        "--account",
        "104857600000031",
        "--token-file",
        &token,
    ]);
    env.store
        .mark_channel_needs_reauth(
            &TenantId::new(&tenant_id),
            &ChannelId::new(page["channel_id"].as_str().unwrap()),
            inbox_shared::model::ReauthReason::RoleLost,
        )
        .await
        .unwrap();
    let (ok, listing, _) = ctl.run(&["channel", "list", "--tenant", &tenant_id]);
    assert!(ok);
    assert!(listing.contains("needs_reauth (role_lost)"), "{listing}");
    let listed = ctl.json(&["channel", "list", "--tenant", &tenant_id]);
    assert!(
        listed["channels"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["reauth_reason"] == "role_lost"),
        "{listed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_users_are_added_listed_signed_in_and_removed() {
    let env = TestEnv::new().await;
    let id = env.identity().await;
    let mut ctl = Ctl::new(&env);
    ctl.extra_env.extend(id.env_vars());
    let kumo = env.seed_tenant("Kumo Bakery", &[], "", "").await.tenant;
    let sora = env.seed_tenant("Sora Cafe", &[], "", "").await.tenant;
    let password = ctl.file("password", "Correct-Horse-42\n");

    let added = ctl.json(&[
        "user",
        "add",
        "--tenant",
        kumo.tenant_id.as_str(),
        "--email",
        "aiko@kumo.example",
        "--role",
        "owner",
        "--password-file",
        &password,
    ]);
    assert_eq!(added["role"], "owner");
    assert_eq!(added["status"], "CONFIRMED");
    let (ok, stdout, _) = ctl.run(&[
        "user",
        "add",
        "--tenant",
        kumo.tenant_id.as_str(),
        "--email",
        "ken@kumo.example",
        "--role",
        "agent",
    ]);
    assert!(ok);
    assert!(stdout.contains("set-password"), "{stdout}");
    let (ok, _, stderr) = ctl.run(&[
        "user",
        "add",
        "--tenant",
        kumo.tenant_id.as_str(),
        "--email",
        "ken@kumo.example",
        "--role",
        "admin",
    ]);
    assert!(!ok && stderr.contains("owner or agent"), "{stderr}");

    let listed = ctl.json(&["user", "list", "--tenant", kumo.tenant_id.as_str()]);
    assert_eq!(listed["users"].as_array().unwrap().len(), 2);
    let (_, text, _) = ctl.run(&["user", "list", "--tenant", sora.tenant_id.as_str()]);
    assert!(text.contains("no console users"), "{text}");

    // The tokens are printed only when asked for.
    let (ok, text, _) = ctl.run(&[
        "user",
        "login",
        "--email",
        "aiko@kumo.example",
        "--password-file",
        &password,
    ]);
    assert!(
        ok && text.contains("signed in as aiko@kumo.example"),
        "{text}"
    );
    assert!(!text.contains("eyJ"), "{text}");
    let login = ctl.json(&[
        "user",
        "login",
        "--email",
        "aiko@kumo.example",
        "--password-file",
        &password,
    ]);
    assert!(login["expires_in"].as_i64().unwrap() > 0);
    assert!(login["access_token"].is_string());
    // moto signs with the real clock.
    env.clock.set(time::OffsetDateTime::now_utc());
    let caller = id
        .verifier
        .caller(login["id_token"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(caller.tenant_id, kumo.tenant_id);
    let (ok, shown, _) = ctl.run(&[
        "user",
        "login",
        "--email",
        "aiko@kumo.example",
        "--password-file",
        &password,
        "--show-tokens",
    ]);
    assert!(ok && shown.trim().starts_with("eyJ"), "{shown}");
    let wrong = ctl.file("wrong", "Wrong-Horse-42");
    let (ok, _, stderr) = ctl.run(&[
        "user",
        "login",
        "--email",
        "aiko@kumo.example",
        "--password-file",
        &wrong,
    ]);
    assert!(
        !ok && stderr.contains("wrong email or password"),
        "{stderr}"
    );
    assert!(!stderr.contains("Wrong-Horse"), "{stderr}");

    // The user added without a password gets one and signs in; another tenant cannot set it.
    let kens = ctl.file("kens", "Ken-Bakes-Bread-7\n");
    let set_password = |tenant: &TenantId| {
        ctl.run(&[
            "user",
            "set-password",
            "--tenant",
            tenant.as_str(),
            "--email",
            "ken@kumo.example",
            "--password-file",
            &kens,
        ])
    };
    let (ok, _, stderr) = set_password(&sora.tenant_id);
    assert!(!ok && stderr.contains("no such user"), "{stderr}");
    let (ok, text, _) = set_password(&kumo.tenant_id);
    assert!(ok && text.contains("can sign in now"), "{text}");
    assert!(!text.contains("Ken-Bakes"), "{text}");
    let ken = ctl.json(&[
        "user",
        "login",
        "--email",
        "ken@kumo.example",
        "--password-file",
        &kens,
    ]);
    assert!(ken["id_token"].is_string(), "{ken}");

    // Removal is destructive: --yes without a terminal; another tenant does not find the user.
    let remove = |tenant: &TenantId, yes: bool| {
        let mut args = vec![
            "user",
            "remove",
            "--tenant",
            tenant.as_str(),
            "--email",
            "aiko@kumo.example",
        ];
        if yes {
            args.push("--yes");
        }
        ctl.run(&args)
    };
    let (ok, _, stderr) = remove(&kumo.tenant_id, false);
    assert!(!ok && stderr.contains("pass --yes"), "{stderr}");
    let (ok, _, stderr) = remove(&sora.tenant_id, true);
    assert!(!ok && stderr.contains("no such user"), "{stderr}");
    let (ok, stdout, stderr) = remove(&kumo.tenant_id, true);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("removed aiko@kumo.example"), "{stdout}");
    let listed = ctl.json(&["user", "list", "--tenant", kumo.tenant_id.as_str()]);
    assert_eq!(listed["users"][0]["email"], "ken@kumo.example");
    assert_eq!(listed["users"].as_array().unwrap().len(), 1);
}
