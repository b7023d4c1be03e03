//! The domain services against the emulator: the rules that every edge (inboxctl, the callbacks, the
//! sweep) reaches through them.

use inbox_shared::keys;
use inbox_shared::model::{Channel, ChannelId, ChannelStatus, Platform, Tenant};
use inbox_shared::service::channels::{self, DisconnectReason};
use inbox_shared::service::deletion::{DeletionIntake, DeletionKind};
use inbox_shared::service::erasure::Eraser;
use inbox_shared::service::tenants;
use inbox_tests::{TEST_START, TestEnv};
use time::Duration;

const POLICY_DAYS: u32 = 45;

/// A tenant whose disconnected channels are kept longer than the 30-day default, with one connected
/// Messenger channel (connected by `meta_user`).
async fn tenant_with_long_policy(env: &TestEnv, page: &str, meta_user: &str) -> (Tenant, Channel) {
    let seeded = env
        .seed_tenant("Long Policy", &[(Platform::Messenger, page)], "tok", "")
        .await;
    let mut tenant = seeded.tenant;
    tenant.retention.disconnected_channel_days = POLICY_DAYS;
    env.store.save_tenant(&tenant).await.unwrap();
    let mut channel = seeded.channels[0].clone();
    channel.connected_by = Some(meta_user.to_owned());
    env.store
        .put(&channel, inbox_shared::store::Write::Replace)
        .await
        .unwrap();
    (tenant, channel)
}

/// The deadline the channel item carries, and its TTL, as stored.
async fn stored_deadline(env: &TestEnv, channel: &Channel) -> time::OffsetDateTime {
    let stored: Channel = env
        .store
        .get_stored(&keys::channel(&channel.tenant_id, &channel.channel_id))
        .await
        .unwrap()
        .expect("the channel item stays until its data is gone");
    assert_eq!(stored.status, ChannelStatus::Disconnected);
    assert!(stored.credentials.is_none(), "the token is destroyed");
    assert!(
        env.store
            .route(channel.platform, &channel.account_id)
            .await
            .unwrap()
            .is_none(),
        "the route is removed"
    );
    let item = env
        .clients
        .dynamodb
        .get_item()
        .table_name(&env.provisioned.table_name)
        .set_key(Some(inbox_shared::store::key_item(&keys::channel(
            &channel.tenant_id,
            &channel.channel_id,
        ))))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let deadline = stored
        .retain_until
        .expect("a disconnected channel has a deadline");
    assert_eq!(
        item[keys::TTL].as_n().unwrap(),
        &deadline.unix_timestamp().to_string(),
        "the TTL backstop is the same deadline"
    );
    deadline
}

/// The tenant's audit trail, oldest first, as action names.
async fn audit_actions(env: &TestEnv, tenant: &Tenant) -> Vec<String> {
    env.store
        .audit_events(Some(&tenant.tenant_id))
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect()
}

#[tokio::test]
async fn the_disconnected_channel_deadline_follows_the_tenants_policy_on_every_path() {
    let env = TestEnv::new().await;
    let expected = TEST_START + Duration::days(POLICY_DAYS.into());

    // An operator's disconnect (inboxctl channel disconnect calls exactly this).
    let (tenant, channel) = tenant_with_long_policy(&env, "700000000000001", "u-op").await;
    channels::disconnect(
        &env.store,
        "test",
        &tenant,
        &channel.channel_id,
        DisconnectReason::Requested,
    )
    .await
    .unwrap()
    .expect("it was connected");
    assert_eq!(stored_deadline(&env, &channel).await, expected, "operator");

    // Meta's deauthorize callback.
    let (_, channel) = tenant_with_long_policy(&env, "700000000000002", "u-deauth").await;
    let intake = DeletionIntake::new(
        env.store.clone(),
        env.publisher(),
        env.provisioned.erasure_queue_url.clone(),
        "test",
    );
    let accepted = intake
        .accept(
            DeletionKind::Deauthorize,
            "u-deauth",
            (TEST_START + Duration::minutes(1)).unix_timestamp(),
        )
        .await
        .unwrap();
    assert_eq!(accepted.channels_disconnected, 1);
    assert_eq!(
        stored_deadline(&env, &channel).await,
        expected,
        "deauthorize"
    );

    // An erasure cut short after the disconnect (its first delete fails): the channel item left behind
    // carries the tenant's deadline, so the sweep still finds it.
    let (_, channel) = tenant_with_long_policy(&env, "700000000000003", "u-erase").await;
    env.calls.fail("BatchWriteItem", 0);
    Eraser::new(env.store.clone(), "test")
        .erase_channel(&channel, None)
        .await
        .expect_err("the injected failure stops the erasure");
    assert_eq!(stored_deadline(&env, &channel).await, expected, "erasure");

    // A termination.
    let (tenant, channel) = tenant_with_long_policy(&env, "700000000000004", "u-term").await;
    let terminated = tenants::terminate(&env.store, "test", &tenant.tenant_id, None)
        .await
        .unwrap();
    assert_eq!(terminated.channels_disconnected, 1);
    assert_eq!(
        stored_deadline(&env, &channel).await,
        expected,
        "termination"
    );
}

#[tokio::test]
async fn every_disconnect_is_audited_with_its_reason_and_a_repeat_changes_nothing() {
    let env = TestEnv::new().await;
    let (tenant, channel) = tenant_with_long_policy(&env, "700000000000005", "u-audit").await;
    // Audit events sort by time: the disconnect comes an hour after the connect.
    env.clock.advance(Duration::hours(1));
    let first = channels::disconnect(
        &env.store,
        "test",
        &tenant,
        &channel.channel_id,
        DisconnectReason::Deauthorized,
    )
    .await
    .unwrap();
    assert!(first.is_some());
    env.clock.advance(Duration::days(3));
    let again = channels::disconnect(
        &env.store,
        "test",
        &tenant,
        &channel.channel_id,
        DisconnectReason::Requested,
    )
    .await
    .unwrap();
    assert!(again.is_none(), "already disconnected");
    assert_eq!(
        stored_deadline(&env, &channel).await,
        TEST_START + Duration::hours(1) + Duration::days(POLICY_DAYS.into()),
        "a repeat does not move the deadline"
    );
    let actions = audit_actions(&env, &tenant).await;
    assert_eq!(
        actions,
        vec!["channel.connect", "channel.disconnect:deauthorized"]
    );
}

#[tokio::test]
async fn a_terminated_tenant_cannot_connect_and_a_line_channel_needs_its_secret() {
    use inbox_shared::secret::{ChannelSecret, PlatformToken};
    use inbox_shared::service::ServiceError;
    use inbox_shared::service::channels::{ChannelService, NewChannel};

    let env = TestEnv::new().await;
    let seeded = env.seed_tenant("Rules", &[], "tok", "").await;
    let service = ChannelService::new(env.store.clone(), env.vault(), "test");
    let new = |platform, secret: Option<&str>| NewChannel {
        secret: secret.map(ChannelSecret::new),
        ..NewChannel::with_token(
            platform,
            "U0123456789abcdef0123456789abcdef",
            PlatformToken::new("tok"),
        )
    };
    let err = service
        .connect(&seeded.tenant, new(Platform::Line, None))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ServiceError::Invalid(m) if m.contains("channel secret")),
        "{err}"
    );
    let err = service
        .connect(&seeded.tenant, new(Platform::Whatsapp, Some("s")))
        .await
        .unwrap_err();
    assert!(matches!(err, ServiceError::Invalid(_)), "{err}");
    assert!(
        env.store
            .channels_of_tenant(&seeded.tenant.tenant_id)
            .await
            .unwrap()
            .is_empty(),
        "nothing is stored for a refused connect"
    );

    let done = tenants::terminate(&env.store, "test", &seeded.tenant.tenant_id, None)
        .await
        .unwrap();
    let err = service
        .connect(&done.tenant, new(Platform::Line, Some("s")))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ServiceError::Invalid(m) if m.contains("terminated")),
        "{err}"
    );
}

#[tokio::test]
async fn a_disconnect_that_cannot_remove_the_route_fails_and_destroys_nothing() {
    use inbox_shared::model::Route;
    use inbox_shared::store::{StoreError, Write};

    let env = TestEnv::new().await;
    let (tenant, channel) = tenant_with_long_policy(&env, "700000000000006", "u-moved").await;
    // The account's route now leads to another channel (it was moved while this one stayed).
    let moved = Route {
        platform: channel.platform,
        account_id: channel.account_id.clone(),
        tenant_id: channel.tenant_id.clone(),
        channel_id: ChannelId::new("ch_other"),
    };
    env.store.put(&moved, Write::Upsert).await.unwrap();
    let err = channels::disconnect(
        &env.store,
        "test",
        &tenant,
        &channel.channel_id,
        DisconnectReason::Requested,
    )
    .await
    .expect_err("not reported as already disconnected");
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    let stored = env
        .store
        .get_channel(&tenant.tenant_id, &channel.channel_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, ChannelStatus::Connected, "nothing changed");
    let actions = audit_actions(&env, &tenant).await;
    assert_eq!(
        actions,
        vec!["channel.connect"],
        "no audit of a disconnect that did not happen"
    );
}

#[tokio::test]
async fn an_account_id_is_connected_only_in_its_platforms_form() {
    use inbox_shared::secret::{ChannelSecret, PlatformToken};
    use inbox_shared::service::ServiceError;
    use inbox_shared::service::channels::{ChannelService, NewChannel};

    let env = TestEnv::new().await;
    let seeded = env.seed_tenant("Ids", &[], "tok", "").await;
    let service = ChannelService::new(env.store.clone(), env.vault(), "test");
    let new = |platform, account_id: &str| NewChannel {
        secret: (platform == Platform::Line).then(|| ChannelSecret::new("s")),
        ..NewChannel::with_token(platform, account_id, PlatformToken::new("tok"))
    };
    for (platform, account) in [
        (Platform::Messenger, "1048/../../me"),
        (Platform::Messenger, "1048?access_token=x"),
        (Platform::Instagram, "me"),
        (Platform::Whatsapp, ".."),
        (Platform::Whatsapp, "1065%2F"),
        (Platform::Line, "U0123"),
        (Platform::Line, "U0123456789ABCDEF0123456789abcdef"),
        (Platform::Line, "U0123456789abcdef0123456789abcde/"),
    ] {
        let err = service
            .connect(&seeded.tenant, new(platform, account))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, ServiceError::Invalid(m) if m.contains("account id")),
            "{platform} {account}: {err}"
        );
    }
    for (platform, account) in [
        (Platform::Messenger, "104857600000001"),
        (Platform::Line, "U0123456789abcdef0123456789abcdef"),
    ] {
        service
            .connect(&seeded.tenant, new(platform, account))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_termination_is_dated_from_now_and_audited_before_it_acts() {
    let env = TestEnv::new().await;
    let seeded = env
        .seed_tenant(
            "Ends",
            &[
                (Platform::Messenger, "104857600000009"),
                (Platform::Whatsapp, "104857600000010"),
            ],
            "tok",
            "",
        )
        .await;
    let tenant_id = &seeded.tenant.tenant_id;
    for at in [
        TEST_START - Duration::days(1),
        TEST_START + Duration::days(367),
        time::macros::datetime!(9999-12-31 23:59 UTC),
    ] {
        let err = tenants::terminate(&env.store, "test", tenant_id, Some(at))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("is outside"), "{at}: {err}");
    }
    let connected = |env: &TestEnv| {
        let tenant_id = tenant_id.clone();
        let store = env.store.clone();
        async move {
            store
                .channels_of_tenant(&tenant_id)
                .await
                .unwrap()
                .into_iter()
                .filter(|c| c.status == ChannelStatus::Connected)
                .count()
        }
    };
    assert_eq!(connected(&env).await, 2, "nothing was done");

    // A crash after the tenant is marked and one channel disconnected (the second disconnect fails):
    // the attempt is on record, and a re-run on the terminated tenant finishes it, keeping its date.
    let at = TEST_START + Duration::days(1);
    env.calls.fail("TransactWriteItems", 1);
    tenants::terminate(&env.store, "test", tenant_id, Some(at))
        .await
        .unwrap_err();
    let stored = env.store.require_tenant(tenant_id).await.unwrap();
    assert_eq!(stored.status, inbox_shared::model::TenantStatus::Terminated);
    assert_eq!(
        connected(&env).await,
        1,
        "the crash left one channel connected"
    );
    let err = tenants::terminate(&env.store, "test", tenant_id, Some(TEST_START))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cannot date it again"), "{err}");
    let done = tenants::terminate(&env.store, "test", tenant_id, None)
        .await
        .unwrap();
    assert_eq!(done.channels_disconnected, 1);
    assert_eq!(
        done.tenant.terminated_at,
        Some(at),
        "the first date is kept"
    );
    assert_eq!(
        done.content_deleted_after,
        at + Duration::days(done.tenant.retention.terminated_content_days.into())
    );
    assert_eq!(connected(&env).await, 0);
    let mut terminations: Vec<String> = audit_actions(&env, &seeded.tenant)
        .await
        .into_iter()
        .filter(|a| a.starts_with("tenant.terminate"))
        .collect();
    terminations.sort();
    assert_eq!(
        terminations,
        ["tenant.terminate", "tenant.terminate:resumed"]
    );
    // Once finished, a re-run has nothing left to do.
    let again = tenants::terminate(&env.store, "test", tenant_id, None)
        .await
        .unwrap();
    assert_eq!(again.channels_disconnected, 0);
}
