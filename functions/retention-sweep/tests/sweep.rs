//! The retention sweep against moto with an injected clock: the schedule's fan-out, the jobs it queues,
//! and exactly what survives each rule.

use inbox_shared::ids::new_id;
use inbox_shared::jobs::SweepStage;
use inbox_shared::keys;
use inbox_shared::model::*;
use inbox_shared::secret::MessageText;
use inbox_shared::store::SentMarker;
use inbox_shared::sweep::{Budget, TenantSweeper, Unlimited};
use inbox_tests::{TEST_START, TestEnv, customer_message};
use retention_sweep::Sweeper;
use time::{Duration, OffsetDateTime};

/// The sweep runs at this instant.
const AS_OF: OffsetDateTime = TEST_START;

fn days_ago(days: i64) -> OffsetDateTime {
    AS_OF - Duration::days(days)
}

/// Allows a number of budget checks, then reports the budget exhausted.
struct Steps(usize);

impl Budget for Steps {
    fn exhausted(&mut self) -> bool {
        if self.0 == 0 {
            return true;
        }
        self.0 -= 1;
        false
    }
}

struct Scenario {
    env: TestEnv,
    sweeper: Sweeper,
    tenant: Tenant,
    /// Conversation with messages of many ages (ages in days).
    mixed: (Channel, ConversationId, Vec<(i64, String)>),
    /// Conversation whose every item is past retention.
    expired: (Channel, ConversationId),
    disconnected_31: Channel,
    disconnected_29: Channel,
    audit_11_months: AuditEvent,
    audit_13_months: AuditEvent,
    /// (days since termination, tenant, a conversation id)
    terminated: Vec<(i64, Tenant, ConversationId)>,
}

/// Stores messages of one conversation of `user` at the given ages, as ingest would.
async fn conversation(
    env: &TestEnv,
    channel: &Channel,
    user: &str,
    ages: &[i64],
) -> (ConversationId, Vec<(i64, String)>) {
    let user = &inbox_shared::secret::PlatformUserId::new(user);
    let conversation_id = keys::conversation_id(&channel.channel_id, user);
    let mut ids = Vec::new();
    for &age in ages {
        let m = customer_message(channel, user, &new_id("mid"), "hello", days_ago(age));
        env.ingest_customer_message(&m, user, channel.platform, None)
            .await;
        ids.push((age, m.message_id));
    }
    (conversation_id, ids)
}

async fn disconnected(env: &TestEnv, tenant: &Tenant, account: &str, days: i64) -> Channel {
    let seeded_channel = {
        let channel = Channel {
            tenant_id: tenant.tenant_id.clone(),
            channel_id: ChannelId::generate(),
            platform: Platform::Messenger,
            account_id: account.into(),
            status: ChannelStatus::Connected,
            connected_by: None,
            connected_at: days_ago(100),
            disconnected_at: None,
            credentials: None,
            retain_until: None,
            name: None,
            instagram_login: false,
            parent_account_id: None,
            line_channel_id: None,
            token_issued_at: None,
            token_expires_at: None,
            reauth_reason: None,
            health_checked_at: None,
        };
        env.store.connect_channel(&channel).await.unwrap();
        channel
    };
    let at = days_ago(days);
    env.store
        .disconnect_channel(
            &tenant.tenant_id,
            &seeded_channel.channel_id,
            at,
            at + Duration::days(30),
            None,
        )
        .await
        .unwrap()
}

impl Scenario {
    async fn seed() -> Self {
        let env = TestEnv::new().await;
        let config = env.config(&[]);
        let sweeper = Sweeper::new(&config, &env.clients, env.clock.clone()).unwrap();
        let seeded = env
            .seed_tenant(
                "Kumo Bakery",
                &[(Platform::Messenger, "104857600000001")],
                "EAAG",
                "unused",
            )
            .await;
        let tenant = seeded.tenant.clone();
        let channel = seeded.channels[0].clone();

        let (mixed_id, mixed_messages) =
            conversation(&env, &channel, "psid-mixed", &[800, 400, 366, 364, 200, 10]).await;
        let (expired_id, _) = conversation(&env, &channel, "psid-old", &[500, 400]).await;
        env.store
            .create_draft(&Draft {
                tenant_id: tenant.tenant_id.clone(),
                conversation_id: expired_id.clone(),
                channel_id: channel.channel_id.clone(),
                draft_id: new_id("dft"),
                in_reply_to: "m".into(),
                text: MessageText::new("draft"),
                status: DraftStatus::Pending,
                created_at: days_ago(400),
                decided_at: None,
                retain_until: days_ago(35),
            })
            .await
            .unwrap();
        env.store
            .record_sent(&SentMarker {
                tenant_id: tenant.tenant_id.clone(),
                conversation_id: expired_id.clone(),
                message_id: "m_sent_old".into(),
                sent_at: days_ago(400),
                retain_until: days_ago(35),
            })
            .await
            .unwrap();

        let disconnected_31 = disconnected(&env, &tenant, "300000000000031", 31).await;
        conversation(&env, &disconnected_31, "psid-d31", &[40, 35]).await;
        let disconnected_29 = disconnected(&env, &tenant, "300000000000029", 29).await;
        conversation(&env, &disconnected_29, "psid-d29", &[40, 35]).await;

        let audit = |months: i64| {
            AuditEvent::new(
                Some(&tenant.tenant_id),
                "test",
                "channel.connect",
                None,
                days_ago(months * 30 + months / 2),
                365,
            )
        };
        let (audit_11_months, audit_13_months) = (audit(11), audit(13));
        for event in [&audit_11_months, &audit_13_months] {
            env.store.record_audit(event).await.unwrap();
        }

        let mut terminated = Vec::new();
        for days in [29, 31, 89, 91] {
            let seeded = env
                .seed_tenant(
                    &format!("Terminated {days}"),
                    &[(Platform::Whatsapp, &format!("4000000000{days}"))],
                    "EAAG",
                    "unused",
                )
                .await;
            let mut t = seeded.tenant.clone();
            let channel = seeded.channels[0].clone();
            let (conversation_id, _) = conversation(&env, &channel, "8190000000", &[10]).await;
            env.store
                .add_knowledge(&KnowledgeEntry {
                    tenant_id: t.tenant_id.clone(),
                    entry_id: new_id("kb"),
                    question: "q".into(),
                    answer: "a".into(),
                    alternates: Vec::new(),
                    created_at: days_ago(100),
                })
                .await
                .unwrap();
            env.store
                .add_usage(
                    &t.tenant_id,
                    &channel.channel_id,
                    &month_of(days_ago(days)),
                    UsageDelta {
                        replies: 1,
                        ..UsageDelta::default()
                    },
                )
                .await
                .unwrap();
            env.store
                .disconnect_channel(
                    &t.tenant_id,
                    &channel.channel_id,
                    days_ago(days),
                    days_ago(days) + Duration::days(30),
                    None,
                )
                .await
                .unwrap();
            t.status = TenantStatus::Terminated;
            t.terminated_at = Some(days_ago(days));
            env.store.save_tenant(&t).await.unwrap();
            terminated.push((days, t, conversation_id));
        }
        env.clock.set(AS_OF);
        Self {
            env,
            sweeper,
            tenant,
            mixed: (channel.clone(), mixed_id, mixed_messages),
            expired: (channel, expired_id),
            disconnected_31,
            disconnected_29,
            audit_11_months,
            audit_13_months,
            terminated,
        }
    }

    fn tenant_ids(&self) -> Vec<TenantId> {
        std::iter::once(self.tenant.tenant_id.clone())
            .chain(self.terminated.iter().map(|(_, t, _)| t.tenant_id.clone()))
            .collect()
    }

    /// Runs the erasure-and-sweep queue until it is empty.
    async fn drain_jobs(&self) {
        while self
            .sweeper
            .poll_once(
                &self.env.clients.sqs,
                &self.env.provisioned.erasure_queue_url,
                std::time::Duration::ZERO,
                local_invocation(),
            )
            .await
            .unwrap()
            > 0
        {}
    }

    async fn stored_messages(
        &self,
        tenant_id: &TenantId,
        conversation_id: &ConversationId,
    ) -> usize {
        self.env
            .store
            .query_all_keys(&keys::messages_of_conversation(tenant_id, conversation_id))
            .await
            .unwrap()
            .len()
    }

    async fn assert_exact_survivors(&self) {
        let store = &self.env.store;
        let t = &self.tenant.tenant_id;
        // Rule 1: of the mixed conversation, only messages younger than 365 days.
        let (channel, mixed_id, mixed) = &self.mixed;
        let left: Vec<String> = store
            .messages_of_conversation(t, mixed_id)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.message_id)
            .collect();
        let expected: Vec<String> = mixed
            .iter()
            .filter(|(age, _)| *age < 365)
            .map(|(_, id)| id.clone())
            .collect();
        assert_eq!(left, expected, "messages of 364, 200 and 10 days survive");
        assert!(
            store
                .get_stored::<Conversation>(&keys::conversation(t, &channel.channel_id, mixed_id))
                .await
                .unwrap()
                .is_some()
        );
        // …and a conversation left empty goes, with its draft, sent marker and contact.
        let (channel, expired_id) = &self.expired;
        assert!(
            store
                .query_all_keys(&keys::conversation_partition(t, expired_id))
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            store
                .get_stored::<Conversation>(&keys::conversation(t, &channel.channel_id, expired_id))
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .get_stored::<Contact>(&keys::contact(t, Platform::Messenger, &"psid-old".into()))
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .get_stored::<Contact>(&keys::contact(t, Platform::Messenger, &"psid-mixed".into()))
                .await
                .unwrap()
                .is_some()
        );

        // Rule 2: disconnected 31 days ago → gone with its data; 29 days → kept.
        let d31 = &self.disconnected_31;
        assert!(
            store
                .get_stored::<Channel>(&keys::channel(t, &d31.channel_id))
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(
            self.stored_messages(
                t,
                &keys::conversation_id(&d31.channel_id, &"psid-d31".into())
            )
            .await,
            0
        );
        let d29 = &self.disconnected_29;
        assert!(
            store
                .get_stored::<Channel>(&keys::channel(t, &d29.channel_id))
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(
            self.stored_messages(
                t,
                &keys::conversation_id(&d29.channel_id, &"psid-d29".into())
            )
            .await,
            2
        );

        // Rule 4: audit events of 13 months go, 11 months stay.
        let audit = store
            .query_all_keys(&keys::audit_events(Some(t)))
            .await
            .unwrap();
        let audit_key = |e: &AuditEvent| keys::audit_event(e.tenant_id.as_ref(), e.at, &e.event_id);
        assert!(audit.contains(&audit_key(&self.audit_11_months)));
        assert!(!audit.contains(&audit_key(&self.audit_13_months)));

        // Rule 3: terminated 29 days → untouched; 31 and 89 → account data gone, content kept; 91 → all gone.
        for (days, tenant, conversation_id) in &self.terminated {
            let id = &tenant.tenant_id;
            let stored = store.get_stored::<Tenant>(&keys::tenant(id)).await.unwrap();
            let channels = store
                .query_all_keys(&keys::channels_of_tenant(id))
                .await
                .unwrap()
                .len();
            let knowledge = store
                .query_all_keys(&keys::knowledge_of_tenant(id))
                .await
                .unwrap()
                .len();
            let usage = store
                .query_all_keys(&keys::usage_of_tenant(id))
                .await
                .unwrap()
                .len();
            let messages = self.stored_messages(id, conversation_id).await;
            match days {
                29 => {
                    assert_eq!(stored.unwrap().name, "Terminated 29");
                    assert_eq!(
                        (channels, knowledge, usage, messages),
                        (1, 1, 1, 1),
                        "29 days"
                    );
                }
                31 | 89 => {
                    let tombstone = stored.expect("the tombstone stays until the content goes");
                    assert_eq!(tombstone.name, "", "{days} days: the name is account data");
                    assert_eq!(
                        (channels, knowledge, usage, messages),
                        (0, 0, 0, 1),
                        "{days} days"
                    );
                }
                _ => {
                    assert!(stored.is_none(), "91 days: the tenant is gone");
                    assert_eq!(
                        (channels, knowledge, usage, messages),
                        (0, 0, 0, 0),
                        "91 days"
                    );
                    assert!(
                        store
                            .query_all_keys(&keys::tenant_partition(id))
                            .await
                            .unwrap()
                            .is_empty()
                    );
                    assert!(
                        store
                            .query_all_keys(&keys::all_content(id))
                            .await
                            .unwrap()
                            .is_empty()
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn the_schedule_fans_out_and_every_rule_leaves_exactly_the_survivors() {
    let s = Scenario::seed().await;
    let fan_out = s.sweeper.fan_out().await.unwrap();
    assert_eq!(fan_out.tenant_sweeps, 5);
    s.drain_jobs().await;
    s.assert_exact_survivors().await;
    let events = s
        .env
        .store
        .audit_events(Some(&s.tenant.tenant_id))
        .await
        .unwrap();
    let sweep = events
        .iter()
        .find(|e| e.action == "retention.sweep")
        .expect("the sweep is audited");
    assert_eq!(
        sweep.counts["expired_content.messages"], 5,
        "366, 400, 800 + the expired conversation's 500, 400"
    );
    assert_eq!(sweep.counts["expired_content.conversations"], 1);
    assert_eq!(sweep.counts["disconnected_channels.channels"], 1);
    assert_eq!(sweep.counts["expired_audit.audit_events"], 1);

    // A second sweep finds nothing more.
    s.sweeper.fan_out().await.unwrap();
    s.drain_jobs().await;
    s.assert_exact_survivors().await;
}

#[tokio::test]
async fn a_sweep_cut_short_resumes_and_ends_the_same() {
    let s = Scenario::seed().await;
    for tenant_id in s.tenant_ids() {
        s.sweeper
            .sweep_tenant(&tenant_id, AS_OF, SweepStage::default(), &mut Steps(1))
            .await
            .unwrap();
    }
    let partial = s
        .env
        .store
        .audit_events(Some(&s.tenant.tenant_id))
        .await
        .unwrap();
    assert!(
        partial
            .iter()
            .any(|e| e.action == "retention.sweep_partial"),
        "it was cut short"
    );
    // The re-enqueued jobs finish the work.
    s.drain_jobs().await;
    s.assert_exact_survivors().await;
}

/// The tenant's sweep audit events, as action names.
async fn sweep_actions(s: &Scenario) -> Vec<String> {
    s.env
        .store
        .audit_events(Some(&s.tenant.tenant_id))
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .filter(|a| a.starts_with("retention."))
        .collect()
}

#[tokio::test]
async fn a_sweep_that_crashes_midway_is_on_record_and_a_re_run_finishes_it() {
    let s = Scenario::seed().await;
    let t = &s.tenant.tenant_id;
    // The crash: the second batch of deletes fails, after the first deleted the expired content and
    // before the conversation it emptied goes.
    s.env.calls.fail("BatchWriteItem", 1);
    s.sweeper
        .sweep_tenant(t, AS_OF, SweepStage::default(), &mut Unlimited)
        .await
        .expect_err("the injected failure stops the sweep");
    let (_, mixed_id, _) = &s.mixed;
    assert_eq!(s.stored_messages(t, mixed_id).await, 3, "it had begun");
    assert_eq!(
        sweep_actions(&s).await,
        ["retention.sweep_started"],
        "the sweep was on record before it deleted anything"
    );
    for tenant_id in s.tenant_ids() {
        s.sweeper
            .sweep_tenant(&tenant_id, AS_OF, SweepStage::default(), &mut Unlimited)
            .await
            .unwrap();
    }
    s.assert_exact_survivors().await;
    let mut actions = sweep_actions(&s).await;
    actions.sort();
    assert_eq!(
        actions,
        [
            "retention.sweep",
            "retention.sweep_started",
            "retention.sweep_started"
        ]
    );
}

#[tokio::test]
async fn a_sweep_by_hand_is_dated_now_or_earlier() {
    let s = Scenario::seed().await;
    let t = &s.tenant.tenant_id;
    let store = &s.env.store;
    for as_of in [
        AS_OF + Duration::minutes(6),
        AS_OF + Duration::days(400),
        time::macros::datetime!(9999-12-31 23:59 UTC),
    ] {
        let err = TenantSweeper::sweep_by_hand(store, "test", t, Some(as_of))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("clock skew"), "{as_of}: {err}");
    }
    assert!(sweep_actions(&s).await.is_empty(), "nothing was done");
    let (_, mixed_id, _) = &s.mixed;
    assert_eq!(s.stored_messages(t, mixed_id).await, 6);
    let unknown = TenantSweeper::sweep_by_hand(store, "test", &TenantId::generate(), None)
        .await
        .unwrap_err();
    assert!(unknown.to_string().contains("not found"), "{unknown}");

    // Earlier deletes less: as of 30 days ago, only the messages over 395 days old.
    let (_, report) = TenantSweeper::sweep_by_hand(store, "test", t, Some(days_ago(30)))
        .await
        .unwrap();
    assert_eq!(
        report.deleted["expired_content.messages"], 4,
        "800 and 400, 500 and 400"
    );
    assert_eq!(s.stored_messages(t, mixed_id).await, 4);
    // A few minutes ahead is clock skew, not a decision: allowed, and it ends as the schedule would.
    for tenant_id in s.tenant_ids() {
        let (as_of, _) = TenantSweeper::sweep_by_hand(
            store,
            "test",
            &tenant_id,
            Some(AS_OF + Duration::minutes(4)),
        )
        .await
        .unwrap();
        assert_eq!(as_of, AS_OF + Duration::minutes(4));
    }
    s.assert_exact_survivors().await;
}

#[tokio::test]
async fn two_concurrent_sweeps_of_one_tenant_do_no_harm() {
    let s = Scenario::seed().await;
    for tenant_id in s.tenant_ids() {
        let (mut first, mut second) = (Unlimited, Unlimited);
        let (a, b) = tokio::join!(
            s.sweeper
                .sweep_tenant(&tenant_id, AS_OF, SweepStage::default(), &mut first),
            s.sweeper
                .sweep_tenant(&tenant_id, AS_OF, SweepStage::default(), &mut second),
        );
        a.unwrap();
        b.unwrap();
    }
    s.assert_exact_survivors().await;
}

#[tokio::test]
async fn the_schedule_requeues_open_deletion_requests_and_flags_overdue_ones() {
    let env = TestEnv::new().await;
    let sweeper = Sweeper::new(&env.config(&[]), &env.clients, env.clock.clone()).unwrap();
    for (code, age) in [("delfresh", 1), ("deloverdue", 26)] {
        env.store
            .create_deletion_request(&DeletionRequest {
                confirmation_code: code.into(),
                meta_user_id: Some("u".into()),
                status: DeletionStatus::Received,
                received_at: days_ago(age),
                completed_at: None,
                deleted: Default::default(),
            })
            .await
            .unwrap();
    }
    let fan_out = sweeper.fan_out().await.unwrap();
    assert_eq!(fan_out.deletion_requests_requeued, 2);
    assert_eq!(fan_out.deletion_requests_overdue, 1);
    assert_eq!(sweeper.metrics().snapshot()["DeletionRequestOverdue"], 1.0);
    while sweeper
        .poll_once(
            &env.clients.sqs,
            &env.provisioned.erasure_queue_url,
            std::time::Duration::ZERO,
            local_invocation(),
        )
        .await
        .unwrap()
        > 0
    {}
    for code in ["delfresh", "deloverdue"] {
        let request = env.store.get_deletion_request(code).await.unwrap().unwrap();
        assert_eq!(request.status, DeletionStatus::Completed);
    }
}

/// DynamoDB calls of a sweep over 10,000 expired messages (figures for the README).
#[tokio::test]
async fn sweeping_ten_thousand_expired_messages_takes_few_calls() {
    let env = TestEnv::new().await;
    let sweeper = Sweeper::new(&env.config(&[]), &env.clients, env.clock.clone()).unwrap();
    let seeded = env
        .seed_tenant(
            "Big",
            &[(Platform::Messenger, "500000000000001")],
            "EAAG",
            "unused",
        )
        .await;
    let channel = &seeded.channels[0];
    let mut messages = Vec::new();
    for c in 0..100 {
        let user = format!("psid-{c}");
        conversation(&env, channel, &user, &[400]).await;
        for i in 1..100 {
            messages.push(customer_message(
                channel,
                &user.as_str().into(),
                &format!("mid-{c}-{i}"),
                "hello",
                days_ago(400) - Duration::minutes(i),
            ));
        }
    }
    env.store.put_many(&messages).await.unwrap();
    env.calls.reset();
    sweeper
        .sweep_tenant(
            &seeded.tenant.tenant_id,
            AS_OF,
            SweepStage::default(),
            &mut Unlimited,
        )
        .await
        .unwrap();
    let calls = env.calls.snapshot();
    let total = env.calls.total();
    let events = env
        .store
        .audit_events(Some(&seeded.tenant.tenant_id))
        .await
        .unwrap();
    let counts = &events
        .iter()
        .find(|e| e.action == "retention.sweep")
        .unwrap()
        .counts;
    let deleted: u64 = counts.values().sum();
    println!(
        "sweep of 10,000 expired messages in 100 conversations: {deleted} items deleted in {total} DynamoDB calls ({:.1} items per call): {calls:?}",
        deleted as f64 / total as f64
    );
    assert_eq!(counts["expired_content.messages"], 10_000);
    assert_eq!(counts["expired_content.conversations"], 100);
    assert!(deleted as f64 / total as f64 >= 15.0, "{calls:?}");
}

#[tokio::test]
async fn the_lambda_entry_takes_the_schedule_and_sqs_batches_and_refuses_anything_else() {
    use inbox_shared::runner::{Category, Failure, invoke_events};
    use retention_sweep::{SweepEvent, SweepOutput};
    let env = TestEnv::new().await;
    let sweeper = Sweeper::new(&env.config(&[]), &env.clients, env.clock.clone()).unwrap();
    env.seed_tenant(
        "Scheduled",
        &[(Platform::Line, "U00000000000000000000000000000001")],
        "token",
        "secret",
    )
    .await;
    // Events as Lambda delivers them, read as the runtime reads them.
    let event = |json: serde_json::Value| -> SweepEvent { serde_json::from_value(json).unwrap() };
    let scheduled = event(serde_json::json!({
        "version": "0", "id": "53dc4d37", "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "123456789012", "time": "2026-11-24T03:00:00Z", "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/inbox-daily-sweep"], "detail": {}
    }));
    let answer = invoke_events(&sweeper, scheduled, local_invocation())
        .await
        .unwrap();
    assert_eq!(serde_json::to_value(answer).unwrap()["tenant_sweeps"], 1);
    let batch = event(serde_json::json!({"Records": [{
        "messageId": "m-1", "receiptHandle": "r", "body": "{\"job\":\"nonsense\"}", "attributes": {},
        "messageAttributes": {}, "md5OfBody": "x", "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:inbox-erasure", "awsRegion": "us-east-1"
    }]}));
    let answer = invoke_events(&sweeper, batch, local_invocation())
        .await
        .unwrap();
    assert!(matches!(answer, SweepOutput::Jobs(_)));
    assert_eq!(
        serde_json::to_value(answer).unwrap()["batchItemFailures"][0]["itemIdentifier"],
        "m-1",
        "an unreadable job is reported failed"
    );
    let refused = invoke_events(
        &sweeper,
        event(serde_json::json!({"hello": 1})),
        local_invocation(),
    )
    .await
    .unwrap_err();
    assert_eq!(
        refused.category(),
        Category::Permanent,
        "an event of the wrong kind never succeeds: {refused}"
    );
}

/// The daily schedule asks the platforms about every active tenant's tokens: a dead one is flagged with
/// its reason before a customer goes unanswered; a terminated tenant is not checked.
#[tokio::test]
async fn the_daily_schedule_checks_every_active_tenants_tokens() {
    use inbox_shared::secret::PlatformToken;
    use inbox_shared::service::channels::{ChannelService, NewChannel};
    use inbox_tests::fake_platforms::{AppFacts, FakePlatforms};

    let env = TestEnv::new().await;
    let fake = FakePlatforms::start(
        AppFacts {
            app_id: "1234567890".into(),
            app_secret: "meta-secret".into(),
        },
        AppFacts {
            app_id: "9876543210".into(),
            app_secret: "ig-secret".into(),
        },
    )
    .await;
    fake.add_facebook_user("10158000000000001");
    fake.add_page("10158000000000001", "104857600000001", "Kumo", None, false);
    let graph = fake.graph_url();
    let config = env.config(&[
        ("META_APP_ID", "1234567890"),
        ("META_APP_SECRET", "meta-secret"),
        ("META_GRAPH_URL", &graph),
    ]);
    let sweeper = Sweeper::new(&config, &env.clients, env.clock.clone()).unwrap();
    let active = env.seed_tenant("Active", &[], "", "").await.tenant;
    let channel = ChannelService::new(env.store.clone(), env.vault(), "test")
        .connect(
            &active,
            NewChannel::with_token(
                Platform::Messenger,
                "104857600000001",
                PlatformToken::new(fake.page_token("10158000000000001", "104857600000001")),
            ),
        )
        .await
        .unwrap()
        .channel;
    let ended = env.seed_tenant("Ended", &[], "", "").await.tenant;
    inbox_shared::service::tenants::terminate(&env.store, "test", &ended.tenant_id, None)
        .await
        .unwrap();

    fake.revoke_tokens_of("10158000000000001", 460);
    let fan_out = sweeper.fan_out().await.unwrap();
    assert_eq!(fan_out.token_health_checks, 1, "{fan_out:?}");
    while sweeper
        .poll_once(
            &env.clients.sqs,
            &env.provisioned.erasure_queue_url,
            std::time::Duration::ZERO,
            local_invocation(),
        )
        .await
        .unwrap()
        > 0
    {}
    let flagged = env
        .store
        .get_channel(&active.tenant_id, &channel.channel_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(flagged.status, ChannelStatus::NeedsReauth);
    assert_eq!(flagged.reauth_reason, Some(ReauthReason::PasswordChanged));
    let audit = env
        .store
        .audit_events(Some(&active.tenant_id))
        .await
        .unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.action == "channel.needs_reauth:password_changed")
    );
}

/// An invocation as the local stack makes one, its metrics dropped.
fn local_invocation() -> inbox_shared::runner::Invocation {
    inbox_shared::runner::Invocation::local(
        std::time::Duration::from_secs(600),
        inbox_shared::runner::Emf::Discard,
    )
}
