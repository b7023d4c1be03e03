//! Console identity against moto's Cognito: the user store (add, list, remove, sign in, each scoped to
//! one tenant and audited) and the local stand-in for API Gateway's JWT authorizer.

use aws_sdk_cognitoidentityprovider::types::{AttributeType, MessageActionType};
use inbox_shared::identity::{
    DirectoryError, IdentityError, LoginError, Role, VerifyError, caller_of, with_claims,
};
use inbox_shared::model::TenantId;
use inbox_shared::provision;
use inbox_shared::secret::Password;
use inbox_tests::{TestEnv, TestIdentity};
use time::{Duration, OffsetDateTime};

const PASSWORD: &str = "Correct-Horse-42";

fn password() -> Password {
    Password::new(PASSWORD)
}

async fn tenant(env: &TestEnv, name: &str) -> TenantId {
    env.seed_tenant(name, &[], "", "").await.tenant.tenant_id
}

/// moto signs with the real clock: the environment's clock is set to it, so tokens are fresh.
fn clock_to_now(env: &TestEnv) {
    env.clock.set(OffsetDateTime::now_utc());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_are_added_listed_signed_in_and_removed_within_their_tenant() {
    let env = TestEnv::new().await;
    let id = env.identity().await;
    clock_to_now(&env);
    let kumo = tenant(&env, "Kumo Bakery").await;
    let sora = tenant(&env, "Sora Cafe").await;
    let dir = &id.directory;

    let owner = dir
        .add_user(&kumo, " Aiko@Kumo.Example", Role::Owner, Some(&password()))
        .await
        .unwrap();
    assert_eq!(owner.email, "aiko@kumo.example");
    assert_eq!(owner.role, Some(Role::Owner));
    assert_eq!(owner.status, "CONFIRMED");
    let agent = dir
        .add_user(&kumo, "ken@kumo.example", Role::Agent, Some(&password()))
        .await
        .unwrap();
    let invited = dir
        .add_user(&kumo, "new@kumo.example", Role::Agent, None)
        .await
        .unwrap();
    assert_eq!(invited.status, "FORCE_CHANGE_PASSWORD");
    let other = dir
        .add_user(&sora, "mika@sora.example", Role::Owner, Some(&password()))
        .await
        .unwrap();

    // Refusals: a taken email (in any tenant), a malformed one, a tenant that does not exist.
    for (tenant, email) in [(&kumo, "ken@kumo.example"), (&sora, "KEN@kumo.example")] {
        assert!(matches!(
            dir.add_user(tenant, email, Role::Agent, None).await,
            Err(DirectoryError::EmailInUse)
        ));
    }
    assert!(matches!(
        dir.add_user(&kumo, "ken at kumo", Role::Agent, None).await,
        Err(DirectoryError::InvalidEmail(_))
    ));
    assert!(
        dir.add_user(&TenantId::generate(), "x@kumo.example", Role::Agent, None)
            .await
            .is_err()
    );

    // Each tenant lists its own users, with role and status.
    let listed = dir.list_users(&kumo).await.unwrap();
    let emails: Vec<&str> = listed.iter().map(|u| u.email.as_str()).collect();
    assert_eq!(
        emails,
        ["aiko@kumo.example", "ken@kumo.example", "new@kumo.example"]
    );
    assert_eq!(listed[1].role, Some(Role::Agent));
    assert_eq!(listed[1].user_id, agent.user_id);
    let listed = dir.list_users(&sora).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].user_id, other.user_id);

    // Sign-in: the id token is the caller, with tenant and role.
    let tokens = dir.login("aiko@kumo.example", &password()).await.unwrap();
    assert!(tokens.expires_in > 0);
    let caller = id
        .verifier
        .caller(tokens.id_token.expose_secret())
        .await
        .unwrap();
    assert_eq!(caller.tenant_id, kumo);
    assert_eq!(caller.role, Role::Owner);
    assert_eq!(caller.user_id, owner.user_id);
    assert_eq!(caller.email.as_deref(), Some("aiko@kumo.example"));
    let access = id
        .verifier
        .verify(tokens.access_token.expose_secret())
        .await
        .unwrap();
    assert_eq!(access["token_use"], "access");
    assert_eq!(access["cognito:groups"], "[owner]");

    // moto says which of email and password is wrong; AWS, with the client's
    // PreventUserExistenceErrors, answers WrongPassword to both.
    for (email, pass, unknown) in [
        ("aiko@kumo.example", "Wrong-Horse-42", false),
        ("nobody@kumo.example", PASSWORD, true),
        ("not an email", PASSWORD, true),
    ] {
        let err = dir.login(email, &Password::new(pass)).await.unwrap_err();
        let ok = if unknown {
            matches!(err, LoginError::UnknownUser)
        } else {
            matches!(err, LoginError::WrongPassword)
        };
        assert!(ok, "{email}: {err:?}");
    }

    // Removal only within the user's tenant: through another tenant it is not found, and changes nothing.
    for name in ["aiko@kumo.example", owner.user_id.as_str()] {
        assert!(matches!(
            dir.remove_user(&sora, name).await,
            Err(DirectoryError::NotFound(t)) if t == sora
        ));
    }
    assert!(matches!(
        dir.remove_user(&kumo, "nobody@kumo.example").await,
        Err(DirectoryError::NotFound(_))
    ));
    let removed = dir.remove_user(&kumo, &agent.user_id).await.unwrap();
    assert_eq!(removed.email, "ken@kumo.example");
    let removed = dir.remove_user(&kumo, " AIKO@kumo.example").await.unwrap();
    assert_eq!(removed.user_id, owner.user_id);
    let left: Vec<String> = dir
        .list_users(&kumo)
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.email)
        .collect();
    assert_eq!(left, ["new@kumo.example"]);
    assert!(matches!(
        dir.login("ken@kumo.example", &password()).await,
        Err(LoginError::UnknownUser)
    ));
    assert_eq!(dir.list_users(&sora).await.unwrap().len(), 1);

    // Every change is in the tenant's audit trail, naming the user by id, never by email.
    let events = env.store.audit_events(Some(&kumo)).await.unwrap();
    let actions: Vec<&str> = events
        .iter()
        .filter(|e| e.action.starts_with("console_user."))
        .map(|e| e.action.as_str())
        .collect();
    assert_eq!(
        actions.iter().filter(|a| **a == "console_user.add").count(),
        3
    );
    assert!(actions.contains(&"console_user.remove"));
    for event in &events {
        let subject = event.subject.as_deref().unwrap_or_default();
        assert!(!subject.contains('@'), "{subject}");
    }
    assert!(events.iter().any(|e| e.subject.as_deref()
        == Some(&format!("{} agent", agent.user_id))
        && e.actor == "test-harness"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_without_a_password_must_set_one_first() {
    let env = TestEnv::new().await;
    let id = env.identity().await;
    let kumo = tenant(&env, "Kumo Bakery").await;
    id.directory
        .add_user(&kumo, "new@kumo.example", Role::Agent, None)
        .await
        .unwrap();
    // Cognito made a temporary password nobody knows; with the right one the challenge would follow.
    assert!(matches!(
        id.directory.login("new@kumo.example", &password()).await,
        Err(LoginError::WrongPassword | LoginError::NeedsNewPassword)
    ));
    id.cognito
        .admin_set_user_password()
        .user_pool_id(&id.provisioned.user_pool_id)
        .username("new@kumo.example")
        .password(PASSWORD)
        .permanent(false)
        .send()
        .await
        .unwrap();
    assert!(matches!(
        id.directory.login("new@kumo.example", &password()).await,
        Err(LoginError::NeedsNewPassword)
    ));
}

async fn signed_in(id: &TestIdentity, tenant: &TenantId, email: &str, role: Role) -> String {
    id.directory
        .add_user(tenant, email, role, Some(&password()))
        .await
        .unwrap();
    id.directory
        .login(email, &password())
        .await
        .unwrap()
        .id_token
        .expose_secret()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_checked_as_the_jwt_authorizer_checks_them() {
    let env = TestEnv::new().await;
    let id = env.identity().await;
    clock_to_now(&env);
    let kumo = tenant(&env, "Kumo Bakery").await;
    let token = signed_in(&id, &kumo, "ken@kumo.example", Role::Agent).await;

    // Verified claims go into the request as API Gateway puts them, and come out as the caller.
    let claims = id.verifier.verify(&token).await.unwrap();
    assert_eq!(claims["cognito:groups"], "[agent]");
    assert_eq!(claims["custom:tenant_id"], kumo.as_str());
    let request = with_claims(lambda_http::Request::default(), claims);
    let caller = caller_of(&request).unwrap();
    assert_eq!((caller.tenant_id, caller.role), (kumo.clone(), Role::Agent));
    assert!(matches!(
        caller_of(&lambda_http::Request::default()),
        Err(IdentityError::Unauthenticated(_))
    ));

    // A changed payload under the original signature.
    let parts: Vec<&str> = token.split('.').collect();
    let mut payload: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, parts[1])
            .unwrap(),
    )
    .unwrap();
    payload["custom:tenant_id"] = "ten_someoneelse".into();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            payload.to_string()
        ),
        parts[2]
    );
    assert_eq!(
        id.verifier.verify(&tampered).await,
        Err(VerifyError::BadSignature)
    );
    assert!(matches!(
        id.verifier
            .verify(&format!("{}.{}", parts[0], parts[1]))
            .await,
        Err(VerifyError::Malformed(_))
    ));
    assert_eq!(
        id.verifier.verify_bearer(None).await,
        Err(VerifyError::Missing)
    );
    id.verifier
        .verify_bearer(Some(&format!("Bearer {token}")))
        .await
        .unwrap();

    // Another pool's token: moto signs every pool with the same key, so only the issuer tells.
    let other_pool =
        provision::provision_identity(&id.cognito, &format!("{}-other-users", env.prefix))
            .await
            .unwrap();
    assert_ne!(other_pool.user_pool_id, id.provisioned.user_pool_id);
    let other = inbox_shared::identity::Directory::new(
        id.cognito.clone(),
        &other_pool.user_pool_id,
        &other_pool.client_id,
        env.store.clone(),
        "test-harness",
    );
    other
        .add_user(&kumo, "ken@kumo.example", Role::Agent, Some(&password()))
        .await
        .unwrap();
    let foreign = other.login("ken@kumo.example", &password()).await.unwrap();
    assert_eq!(
        id.verifier.verify(foreign.id_token.expose_secret()).await,
        Err(VerifyError::WrongIssuer)
    );

    // Another app client of the same pool.
    let client = id
        .cognito
        .create_user_pool_client()
        .user_pool_id(&id.provisioned.user_pool_id)
        .client_name("another-app")
        .read_attributes("custom:tenant_id")
        .send()
        .await
        .unwrap()
        .user_pool_client
        .unwrap()
        .client_id
        .unwrap();
    let through_other_client = inbox_shared::identity::Directory::new(
        id.cognito.clone(),
        &id.provisioned.user_pool_id,
        &client,
        env.store.clone(),
        "test-harness",
    )
    .login("ken@kumo.example", &password())
    .await
    .unwrap();
    for token in [
        through_other_client.id_token.expose_secret(),
        through_other_client.access_token.expose_secret(),
    ] {
        assert_eq!(
            id.verifier.verify(token).await,
            Err(VerifyError::WrongAudience)
        );
    }

    // A user the pool has but no business: a valid token, and no caller.
    id.cognito
        .admin_create_user()
        .user_pool_id(&id.provisioned.user_pool_id)
        .username("stray@kumo.example")
        .user_attributes(
            AttributeType::builder()
                .name("email")
                .value("stray@kumo.example")
                .build()
                .unwrap(),
        )
        .message_action(MessageActionType::Suppress)
        .send()
        .await
        .unwrap();
    for (call, group) in [("group", Some("owner")), ("password", None)] {
        match group {
            Some(group) => {
                id.cognito
                    .admin_add_user_to_group()
                    .user_pool_id(&id.provisioned.user_pool_id)
                    .username("stray@kumo.example")
                    .group_name(group)
                    .send()
                    .await
                    .expect(call);
            }
            None => {
                id.cognito
                    .admin_set_user_password()
                    .user_pool_id(&id.provisioned.user_pool_id)
                    .username("stray@kumo.example")
                    .password(PASSWORD)
                    .permanent(true)
                    .send()
                    .await
                    .expect(call);
            }
        }
    }
    let stray = id
        .directory
        .login("stray@kumo.example", &password())
        .await
        .unwrap();
    let claims = id
        .verifier
        .verify(stray.id_token.expose_secret())
        .await
        .unwrap();
    assert!(!claims.contains_key("custom:tenant_id"));
    assert!(matches!(
        id.verifier.caller(stray.id_token.expose_secret()).await,
        Err(IdentityError::Unauthenticated(_))
    ));

    // Expiry follows the injected clock: an hour's token, within the leeway and past it.
    env.clock.advance(Duration::minutes(60));
    id.verifier.verify(&token).await.unwrap();
    env.clock.advance(Duration::minutes(2));
    assert_eq!(id.verifier.verify(&token).await, Err(VerifyError::Expired));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_verifier_reads_the_keys_moto_serves() {
    let env = TestEnv::new().await;
    let id = env.identity().await;
    let keys: serde_json::Value = reqwest::get(id.jwks_url())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(keys["keys"][0]["kty"], "RSA");
    assert!(keys["keys"][0]["kid"].is_string());
    // A pool that does not answer: the keys are unavailable (a 503, not the caller's fault).
    let unreachable = inbox_shared::identity::Verifier::new(
        &id.provisioned.issuer,
        &id.provisioned.client_id,
        format!("{}/nowhere/.well-known/jwks.json", inbox_tests::UNREACHABLE),
        inbox_shared::https::client(std::time::Duration::from_millis(500)),
        env.clock.clone(),
    );
    let kumo = tenant(&env, "Kumo Bakery").await;
    clock_to_now(&env);
    let token = signed_in(&id, &kumo, "aiko@kumo.example", Role::Owner).await;
    let err = unreachable.verify(&token).await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
}

/// The keys are fetched once; a token naming an unknown key refetches them, at most once a minute.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_keys_are_cached_and_refetched_at_most_once_a_minute() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

    let env = TestEnv::new().await;
    let id = env.identity().await;
    let keys: serde_json::Value = reqwest::get(id.jwks_url())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let served = inbox_tests::fake_http::FakeHttp::start(move |_| (200, keys.clone())).await;
    let verifier = inbox_shared::identity::Verifier::new(
        &id.provisioned.issuer,
        &id.provisioned.client_id,
        format!("{}/jwks.json", served.url()),
        inbox_shared::https::client(std::time::Duration::from_secs(2)),
        env.clock.clone(),
    );
    let kumo = tenant(&env, "Kumo Bakery").await;
    clock_to_now(&env);
    let token = signed_in(&id, &kumo, "aiko@kumo.example", Role::Owner).await;
    for _ in 0..3 {
        verifier.verify(&token).await.unwrap();
    }
    assert_eq!(served.requests().len(), 1, "fetched once, then cached");

    // The same token under a key id the pool never had (a rotated or made-up key).
    let (_, rest) = token.split_once('.').unwrap();
    let unknown = format!(
        "{}.{rest}",
        B64.encode(r#"{"alg":"RS256","kid":"rotated-key"}"#)
    );
    for _ in 0..3 {
        assert_eq!(
            verifier.verify(&unknown).await,
            Err(VerifyError::UnknownKey)
        );
    }
    assert_eq!(
        served.requests().len(),
        1,
        "no refetch within a minute of the last"
    );
    env.clock.advance(Duration::seconds(61));
    assert_eq!(
        verifier.verify(&unknown).await,
        Err(VerifyError::UnknownKey)
    );
    assert_eq!(served.requests().len(), 2, "one refetch after a minute");
    verifier.verify(&token).await.unwrap();
    assert_eq!(served.requests().len(), 2);
}

/// ListUsers pages hold 60 users: a tenant's listing pages through the whole pool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_pages_through_the_pool() {
    let env = TestEnv::new().await;
    let id = env.identity().await;
    let kumo = tenant(&env, "Kumo Bakery").await;
    let sora = tenant(&env, "Sora Cafe").await;
    for n in 0..64 {
        let (tenant, email) = if n % 8 == 0 {
            (&sora, format!("staff{n:02}@sora.example"))
        } else {
            (&kumo, format!("staff{n:02}@kumo.example"))
        };
        id.directory
            .add_user(tenant, &email, Role::Agent, None)
            .await
            .unwrap();
    }
    let kumo_users = id.directory.list_users(&kumo).await.unwrap();
    assert_eq!(kumo_users.len(), 56);
    assert!(
        kumo_users
            .iter()
            .all(|u| u.email.ends_with("@kumo.example"))
    );
    assert_eq!(kumo_users[55].email, "staff63@kumo.example");
    assert_eq!(id.directory.list_users(&sora).await.unwrap().len(), 8);
}
