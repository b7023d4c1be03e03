//! The repository against DynamoDB (moto): round trips, conditional writes, expiry, idempotency.

use std::collections::BTreeMap;

use futures::future::join_all;
use inbox_shared::ids::new_id;
use inbox_shared::keys;
use inbox_shared::model::*;
use inbox_shared::secret::{MessageText, PlatformToken, ProfileName};
use inbox_shared::store::{Claim, PageRequest, SentMarker, StoreError, Write};
use inbox_shared::vault::{SealContext, Secrets};
use inbox_tests::{TEST_START, TestEnv};
use time::Duration;

fn tenant(env: &TestEnv) -> Tenant {
    let _ = env;
    Tenant::new(TenantId::generate(), "Kumo Bakery".into(), TEST_START)
}

fn channel(tenant_id: &TenantId, platform: Platform, account: &str) -> Channel {
    Channel {
        tenant_id: tenant_id.clone(),
        channel_id: ChannelId::generate(),
        platform,
        account_id: account.into(),
        status: ChannelStatus::Connected,
        connected_by: Some("meta-user-1".into()),
        connected_at: TEST_START,
        disconnected_at: None,
        credentials: None,
        retain_until: None,
        name: Some("Kumo Bakery".into()),
        instagram_login: false,
        parent_account_id: None,
        line_channel_id: None,
        token_issued_at: Some(TEST_START),
        token_expires_at: None,
        reauth_reason: None,
        health_checked_at: None,
    }
}

#[tokio::test]
async fn every_entity_round_trips() {
    let env = TestEnv::new().await;
    let store = &env.store;
    let mut t = tenant(&env);
    t.instructions = "Be brief.".into();
    t.monthly_message_limit = Some(1000);
    store.create_tenant(&t).await.unwrap();
    assert_eq!(
        store.get_tenant(&t.tenant_id).await.unwrap(),
        Some(t.clone())
    );

    let mut ch = channel(
        &t.tenant_id,
        Platform::Line,
        "U0123456789abcdef0123456789abcdef",
    );
    let ctx = SealContext::new(&t.tenant_id, &ch.channel_id);
    ch.credentials = Some(
        env.vault()
            .seal(
                &ctx,
                &Secrets::token(&PlatformToken::new("line-token")).with_channel_secret(Some(
                    &inbox_shared::secret::ChannelSecret::new("line-secret"),
                )),
            )
            .await
            .unwrap(),
    );
    store.connect_channel(&ch).await.unwrap();
    assert_eq!(
        store
            .get_channel(&t.tenant_id, &ch.channel_id)
            .await
            .unwrap(),
        Some(ch.clone())
    );
    assert_eq!(
        store.route(Platform::Line, &ch.account_id).await.unwrap(),
        Some(Route {
            platform: Platform::Line,
            account_id: ch.account_id.clone(),
            tenant_id: t.tenant_id.clone(),
            channel_id: ch.channel_id.clone()
        })
    );
    assert_eq!(
        store.channels_of_tenant(&t.tenant_id).await.unwrap(),
        vec![ch.clone()]
    );
    assert_eq!(
        store.channels_of_meta_user("meta-user-1").await.unwrap(),
        vec![ch.clone()]
    );

    let retain = TEST_START + Duration::days(365);
    let contact = Contact {
        tenant_id: t.tenant_id.clone(),
        platform: Platform::Line,
        user_id: "Uaaaabbbbccccddddeeeeffff00001111".into(),
        profile_name: Some(ProfileName::new("Aiko")),
        first_seen_at: TEST_START,
        last_seen_at: TEST_START,
        retain_until: retain,
    };
    store.save_contact(&contact).await.unwrap();
    assert_eq!(
        store
            .get_contact(&t.tenant_id, Platform::Line, &contact.user_id)
            .await
            .unwrap(),
        Some(contact.clone())
    );

    let conv_id = keys::conversation_id(&ch.channel_id, &contact.user_id);
    let conversation = Conversation {
        tenant_id: t.tenant_id.clone(),
        conversation_id: conv_id.clone(),
        channel_id: ch.channel_id.clone(),
        platform: Platform::Line,
        user_id: contact.user_id.clone(),
        mode: ConversationMode::Bot,
        handoff_reason: None,
        last_inbound_at: Some(TEST_START),
        last_outbound_at: None,
        awaiting_reply_since: None,
        created_at: TEST_START,
        retain_until: retain,
    };
    store.save_conversation(&conversation).await.unwrap();
    assert_eq!(
        store
            .get_conversation(&t.tenant_id, &ch.channel_id, &conv_id)
            .await
            .unwrap(),
        Some(conversation.clone())
    );
    store
        .set_conversation_mode(
            &t.tenant_id,
            &ch.channel_id,
            &conv_id,
            ConversationMode::Human,
            Some("agent_replied"),
        )
        .await
        .unwrap();
    let handed = store
        .get_conversation(&t.tenant_id, &ch.channel_id, &conv_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (handed.mode, handed.handoff_reason.as_deref()),
        (ConversationMode::Human, Some("agent_replied"))
    );
    assert_eq!(
        store
            .conversations_of_channel(&t.tenant_id, &ch.channel_id)
            .await
            .unwrap(),
        vec![handed]
    );

    let message = Message {
        tenant_id: t.tenant_id.clone(),
        conversation_id: conv_id.clone(),
        channel_id: ch.channel_id.clone(),
        message_id: "5123456789012".into(),
        direction: Direction::Inbound,
        author: Author::Customer,
        text: Some(MessageText::new("予約できますか？")),
        attachments: vec![Attachment {
            kind: "image".into(),
            url: Some("https://example.com/a.jpg".into()),
        }],
        payload: Some("BOOK".into()),
        status: MessageStatus::Received,
        error_code: None,
        sent_at: TEST_START,
        retain_until: retain,
        reply_outcome: None,
    };
    assert!(store.insert_message(&message).await.unwrap());
    assert_eq!(
        store
            .messages_of_conversation(&t.tenant_id, &conv_id)
            .await
            .unwrap(),
        vec![message.clone()]
    );

    let marker = SentMarker {
        tenant_id: t.tenant_id.clone(),
        conversation_id: conv_id.clone(),
        message_id: "m_out_1".into(),
        sent_at: TEST_START,
        retain_until: retain,
    };
    store.record_sent(&marker).await.unwrap();
    assert_eq!(
        store
            .sent_marker(&t.tenant_id, &conv_id, "m_out_1")
            .await
            .unwrap(),
        Some(marker)
    );

    let draft = Draft {
        tenant_id: t.tenant_id.clone(),
        conversation_id: conv_id.clone(),
        channel_id: ch.channel_id.clone(),
        draft_id: new_id("drf"),
        in_reply_to: message.message_id.clone(),
        text: MessageText::new("はい、できます。"),
        status: DraftStatus::Pending,
        created_at: TEST_START,
        decided_at: None,
        retain_until: retain,
    };
    store.create_draft(&draft).await.unwrap();
    assert_eq!(
        store
            .get_draft(&t.tenant_id, &conv_id, &draft.draft_id)
            .await
            .unwrap(),
        Some(draft.clone())
    );
    assert_eq!(
        store.pending_drafts(&t.tenant_id).await.unwrap(),
        vec![draft.clone()]
    );

    let entry = KnowledgeEntry {
        tenant_id: t.tenant_id.clone(),
        entry_id: new_id("kb"),
        question: "Are you open on Sunday?".into(),
        answer: "Yes, 9 to 17.".into(),
        alternates: Vec::new(),
        created_at: TEST_START,
    };
    store.add_knowledge(&entry).await.unwrap();
    assert_eq!(
        store.knowledge_of_tenant(&t.tenant_id).await.unwrap(),
        vec![entry]
    );

    store
        .add_usage(
            &t.tenant_id,
            &ch.channel_id,
            "2026-11",
            UsageDelta {
                replies: 1,
                input_tokens: 120,
                output_tokens: 30,
                provider_calls: 1,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        store.usage_of_month(&t.tenant_id, "2026-11").await.unwrap(),
        vec![Usage {
            tenant_id: t.tenant_id.clone(),
            channel_id: ch.channel_id.clone(),
            month: "2026-11".into(),
            inbound_messages: 0,
            replies: 1,
            input_tokens: 120,
            output_tokens: 30,
            provider_calls: 1,
            anthropic_answers: 0,
            openai_answers: 0,
            offline_answers: 0,
            provider_latency_ms: 0,
        }]
    );

    let request = DeletionRequest {
        confirmation_code: new_id("del").replace('_', ""),
        meta_user_id: Some("meta-user-1".into()),
        status: DeletionStatus::Received,
        received_at: TEST_START,
        completed_at: None,
        deleted: BTreeMap::new(),
    };
    store.create_deletion_request(&request).await.unwrap();
    assert_eq!(
        store
            .get_deletion_request(&request.confirmation_code)
            .await
            .unwrap(),
        Some(request.clone())
    );
    assert_eq!(
        store.open_deletion_requests().await.unwrap(),
        vec![request.clone()]
    );
    let mut done = request.clone();
    done.status = DeletionStatus::Completed;
    done.completed_at = Some(TEST_START + Duration::hours(1));
    done.meta_user_id = None;
    done.deleted.insert("messages".into(), 12);
    store.save_deletion_request(&done).await.unwrap();
    assert_eq!(
        store
            .get_deletion_request(&request.confirmation_code)
            .await
            .unwrap(),
        Some(done)
    );
    assert!(
        store.open_deletion_requests().await.unwrap().is_empty(),
        "a completed request leaves the open index"
    );

    let event = AuditEvent::new(
        Some(&t.tenant_id),
        "inboxctl",
        "channel.connect",
        Some(ch.channel_id.as_str()),
        TEST_START,
        365,
    )
    .with_count("channels", 1);
    store.record_audit(&event).await.unwrap();
    assert_eq!(
        store.audit_events(Some(&t.tenant_id)).await.unwrap(),
        vec![event]
    );
}

#[tokio::test]
async fn concurrent_creates_of_one_id_have_exactly_one_winner() {
    let env = TestEnv::new().await;
    let t = tenant(&env);
    let results = join_all((0..8).map(|i| {
        let mut copy = t.clone();
        copy.name = format!("writer {i}");
        let store = env.store.clone();
        async move { store.create_tenant(&copy).await }
    }))
    .await;
    let winners = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(winners, 1, "{results:?}");
    assert!(
        results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(|e| matches!(e, StoreError::Conflict(_)))
    );
}

#[tokio::test]
async fn one_platform_account_connects_to_one_tenant_only() {
    let env = TestEnv::new().await;
    let (a, b) = (tenant(&env), tenant(&env));
    let page = "104857600000001";
    let results = join_all([&a, &b].map(|t| {
        let ch = channel(&t.tenant_id, Platform::Messenger, page);
        let store = env.store.clone();
        async move { store.connect_channel(&ch).await }
    }))
    .await;
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    let loser = if results[0].is_ok() { &b } else { &a };
    let err = results.into_iter().find_map(Result::err).unwrap();
    assert!(err.to_string().contains("already connected"), "{err}");
    // The cancelled transaction wrote nothing: no channel item is left behind for the loser.
    assert!(
        env.store
            .channels_of_tenant(&loser.tenant_id)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn disconnect_destroys_credentials_and_route_at_once() {
    let env = TestEnv::new().await;
    let t = tenant(&env);
    env.store.create_tenant(&t).await.unwrap();
    let mut ch = channel(&t.tenant_id, Platform::Whatsapp, "106540352242922");
    ch.credentials = Some(
        env.vault()
            .seal(
                &SealContext::new(&t.tenant_id, &ch.channel_id),
                &Secrets::token(&PlatformToken::new("EAAG-wa-token")),
            )
            .await
            .unwrap(),
    );
    env.store.connect_channel(&ch).await.unwrap();

    let at = TEST_START + Duration::days(3);
    let gone = env
        .store
        .disconnect_channel(
            &t.tenant_id,
            &ch.channel_id,
            at,
            at + Duration::days(30),
            None,
        )
        .await
        .unwrap();
    assert_eq!(gone.status, ChannelStatus::Disconnected);
    assert_eq!(gone.disconnected_at, Some(at));
    assert_eq!(gone.retain_until, Some(at + Duration::days(30)));
    assert!(gone.credentials.is_none());
    assert!(
        env.store
            .route(Platform::Whatsapp, "106540352242922")
            .await
            .unwrap()
            .is_none()
    );
    let raw = env.scan_all().await;
    assert!(
        raw.iter().all(|item| !item.contains_key("credentials")),
        "no wrapped token remains in the table"
    );

    let again = env
        .store
        .disconnect_channel(&t.tenant_id, &ch.channel_id, at, at, None)
        .await
        .unwrap_err();
    assert!(matches!(again, StoreError::Conflict(_)), "{again}");
    // The account is free for a new connection.
    env.store
        .connect_channel(&channel(
            &t.tenant_id,
            Platform::Whatsapp,
            "106540352242922",
        ))
        .await
        .unwrap();
}

#[tokio::test]
async fn expired_items_read_as_absent_before_ttl_removes_them() {
    let env = TestEnv::new().await;
    let t = tenant(&env);
    let entry = |days: i64, id: &str| Message {
        tenant_id: t.tenant_id.clone(),
        conversation_id: ConversationId::new("conv_x"),
        channel_id: ChannelId::new("ch_x"),
        message_id: id.into(),
        direction: Direction::Inbound,
        author: Author::Customer,
        text: None,
        attachments: vec![],
        payload: None,
        status: MessageStatus::Received,
        error_code: None,
        sent_at: TEST_START,
        retain_until: TEST_START + Duration::days(days),
        reply_outcome: None,
    };
    env.store.insert_message(&entry(10, "short")).await.unwrap();
    env.store.insert_message(&entry(100, "long")).await.unwrap();
    env.clock.advance(Duration::days(11));
    let ids: Vec<String> = env
        .store
        .messages_of_conversation(&t.tenant_id, &ConversationId::new("conv_x"))
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.message_id)
        .collect();
    assert_eq!(ids, vec!["long"]);
    let key = keys::message(
        &t.tenant_id,
        &ConversationId::new("conv_x"),
        TEST_START,
        "short",
    );
    assert!(env.store.get::<Message>(&key).await.unwrap().is_none());
    // Still physically present (moto, like DynamoDB for a while, has not removed it): the delete paths see it.
    let keys = env
        .store
        .query_keys(
            &keys::messages_of_conversation(&t.tenant_id, &ConversationId::new("conv_x")),
            PageRequest::default(),
        )
        .await
        .unwrap();
    assert_eq!(keys.items.len(), 2);
}

#[tokio::test]
async fn a_draft_is_decided_once_and_leaves_the_pending_index() {
    let env = TestEnv::new().await;
    let draft = Draft {
        tenant_id: TenantId::new("ten_d"),
        conversation_id: ConversationId::new("conv_d"),
        channel_id: ChannelId::new("ch_d"),
        draft_id: new_id("drf"),
        in_reply_to: "m_1".into(),
        text: MessageText::new("Sure!"),
        status: DraftStatus::Pending,
        created_at: TEST_START,
        decided_at: None,
        retain_until: TEST_START + Duration::days(365),
    };
    env.store.create_draft(&draft).await.unwrap();
    let results = join_all(
        [DraftStatus::Approved, DraftStatus::Rejected].map(|status| {
            let store = env.store.clone();
            let id = draft.draft_id.clone();
            async move {
                store
                    .decide_draft(
                        &TenantId::new("ten_d"),
                        &ConversationId::new("conv_d"),
                        &id,
                        status,
                        TEST_START,
                    )
                    .await
            }
        }),
    )
    .await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(
        env.store
            .pending_drafts(&TenantId::new("ten_d"))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn concurrent_usage_additions_are_all_counted() {
    let env = TestEnv::new().await;
    join_all((0..20).map(|_| {
        let store = env.store.clone();
        async move {
            store
                .add_usage(
                    &TenantId::new("ten_u"),
                    &ChannelId::new("ch_u"),
                    "2026-11",
                    UsageDelta {
                        replies: 1,
                        input_tokens: 10,
                        ..Default::default()
                    },
                )
                .await
                .unwrap()
        }
    }))
    .await;
    let usage = env
        .store
        .usage_of_month(&TenantId::new("ten_u"), "2026-11")
        .await
        .unwrap();
    assert_eq!((usage[0].replies, usage[0].input_tokens), (20, 200));
}

#[tokio::test]
async fn idempotency_claims_once_and_hands_over_after_a_lease_lapses() {
    let env = TestEnv::new().await;
    let store = &env.store;
    let (lease, keep) = (Duration::seconds(30), Duration::days(7));
    let tenant = TenantId::new("ten_i");

    let claims =
        join_all((0..5).map(|_| store.claim(&tenant, "webhook", "m_AbCdEf123", lease, keep))).await;
    let acquired = claims
        .iter()
        .filter(|c| matches!(c, Ok(Claim::Acquired)))
        .count();
    assert_eq!(acquired, 1, "{claims:?}");
    assert!(
        claims
            .iter()
            .all(|c| matches!(c, Ok(Claim::Acquired | Claim::InProgress)))
    );

    // The holder died: after the lease, the next delivery takes over and completes it.
    env.clock.advance(Duration::seconds(31));
    assert_eq!(
        store
            .claim(
                &TenantId::new("ten_i"),
                "webhook",
                "m_AbCdEf123",
                lease,
                keep
            )
            .await
            .unwrap(),
        Claim::Acquired
    );
    store
        .complete(
            &TenantId::new("ten_i"),
            "webhook",
            "m_AbCdEf123",
            Some("queued".into()),
            keep,
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .claim(
                &TenantId::new("ten_i"),
                "webhook",
                "m_AbCdEf123",
                lease,
                keep
            )
            .await
            .unwrap(),
        Claim::Completed(Some("queued".into()))
    );

    // A released claim (the work failed) can be taken again at once.
    assert_eq!(
        store
            .claim(&TenantId::new("ten_i"), "send", "in_1", lease, keep)
            .await
            .unwrap(),
        Claim::Acquired
    );
    store
        .release(&TenantId::new("ten_i"), "send", "in_1")
        .await
        .unwrap();
    assert_eq!(
        store
            .claim(&TenantId::new("ten_i"), "send", "in_1", lease, keep)
            .await
            .unwrap(),
        Claim::Acquired
    );

    // After the record's own expiry, the key is new again.
    env.clock.advance(Duration::days(8));
    assert_eq!(
        store
            .claim(
                &TenantId::new("ten_i"),
                "webhook",
                "m_AbCdEf123",
                lease,
                keep
            )
            .await
            .unwrap(),
        Claim::Acquired
    );
}

#[tokio::test]
async fn queries_page_with_a_cursor_and_batch_deletes_go_25_at_a_time() {
    let env = TestEnv::new().await;
    for i in 0..60 {
        let entry = KnowledgeEntry {
            tenant_id: TenantId::new("ten_p"),
            entry_id: format!("kb_{i:03}"),
            question: format!("q{i}"),
            answer: format!("a{i}"),
            alternates: Vec::new(),
            created_at: TEST_START,
        };
        env.store.put(&entry, Write::Create).await.unwrap();
    }
    let query = keys::knowledge_of_tenant(&TenantId::new("ten_p"));
    let first = env
        .store
        .query::<KnowledgeEntry>(
            &query,
            PageRequest {
                limit: Some(25),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(first.items.len(), 25);
    let second = env
        .store
        .query::<KnowledgeEntry>(
            &query,
            PageRequest {
                limit: Some(50),
                after: first.next.clone(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(second.items.len(), 35);
    assert_eq!(second.items[0].entry_id, "kb_025");

    let keys = env
        .store
        .query_keys(&query, PageRequest::default())
        .await
        .unwrap()
        .items;
    env.calls.reset();
    let outcome = env.store.delete_many(&keys).await.unwrap();
    assert_eq!(outcome.written, 60);
    assert_eq!(env.calls.count("BatchWriteItem"), 3);
    assert!(
        env.store
            .knowledge_of_tenant(&TenantId::new("ten_p"))
            .await
            .unwrap()
            .is_empty()
    );
}
