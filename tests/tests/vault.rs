//! The token vault against KMS (moto).

use inbox_shared::ids::{ChannelId, TenantId};
use inbox_shared::secret::{ChannelSecret, PlatformToken};
use inbox_shared::vault::{SealContext, Secrets, VaultError};
use inbox_tests::TestEnv;

#[tokio::test]
async fn sealed_token_and_secret_open_in_their_context() {
    let env = TestEnv::new().await;
    let vault = env.vault();
    let ctx = SealContext::new(&TenantId::new("ten_a"), &ChannelId::new("ch_a"));
    let wrapped = vault
        .seal(
            &ctx,
            &Secrets::token(&PlatformToken::new("EAAG-page-token"))
                .with_channel_secret(Some(&ChannelSecret::new("line-secret-abc"))),
        )
        .await
        .unwrap();
    assert!(!format!("{wrapped:?}").contains("EAAG"), "ciphertext only");
    assert_eq!(
        vault
            .open_token(&ctx, &wrapped)
            .await
            .unwrap()
            .expect("a token")
            .expose_secret(),
        "EAAG-page-token"
    );
    assert_eq!(
        vault
            .open_channel_secret(&ctx, &wrapped)
            .await
            .unwrap()
            .unwrap()
            .expose_secret(),
        "line-secret-abc"
    );

    // A fresh process (no cache) opens it through KMS.
    let cold = env.vault();
    assert_eq!(
        cold.open_token(&ctx, &wrapped)
            .await
            .unwrap()
            .expect("a token")
            .expose_secret(),
        "EAAG-page-token"
    );
}

#[tokio::test]
async fn another_tenants_context_cannot_open_it() {
    let env = TestEnv::new().await;
    let ctx = SealContext::new(&TenantId::new("ten_a"), &ChannelId::new("ch_a"));
    let wrapped = env
        .vault()
        .seal(
            &ctx,
            &Secrets::token(&PlatformToken::new("EAAG-page-token")),
        )
        .await
        .unwrap();
    for wrong in [
        SealContext::new(&TenantId::new("ten_b"), &ChannelId::new("ch_a")),
        SealContext::new(&TenantId::new("ten_a"), &ChannelId::new("ch_b")),
    ] {
        // Through KMS (a cold vault) …
        let err = env.vault().open_token(&wrong, &wrapped).await.unwrap_err();
        assert!(matches!(err, VaultError::CannotOpen { .. }), "{err}");
        assert!(!err.is_retryable());
    }
    // … and from a warm cache that holds the data key.
    let warm = env.vault();
    warm.open_token(&ctx, &wrapped).await.unwrap();
    let err = warm
        .open_token(
            &SealContext::new(&TenantId::new("ten_b"), &ChannelId::new("ch_a")),
            &wrapped,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, VaultError::CannotOpen { .. }));
}

#[tokio::test]
async fn tampered_ciphertext_or_swapped_fields_fail() {
    let env = TestEnv::new().await;
    let vault = env.vault();
    let ctx = SealContext::new(&TenantId::new("ten_a"), &ChannelId::new("ch_a"));
    let wrapped = vault
        .seal(
            &ctx,
            &Secrets::token(&PlatformToken::new("EAAG-page-token"))
                .with_channel_secret(Some(&ChannelSecret::new("line-secret"))),
        )
        .await
        .unwrap();

    let mut tampered = wrapped.clone();
    let mut bytes = base64_decode(&tampered.token.as_ref().unwrap().ciphertext);
    bytes[0] ^= 0x01;
    tampered.token.as_mut().unwrap().ciphertext = base64_encode(&bytes);
    assert!(matches!(
        vault.open_token(&ctx, &tampered).await,
        Err(VaultError::CannotOpen { .. })
    ));

    let mut swapped = wrapped.clone();
    swapped.token = wrapped.channel_secret.clone();
    assert!(matches!(
        vault.open_token(&ctx, &swapped).await,
        Err(VaultError::CannotOpen { .. })
    ));

    let mut bad_key = wrapped.clone();
    let mut key = base64_decode(&bad_key.encrypted_data_key);
    let last = key.len() - 1;
    key[last] ^= 0x01;
    bad_key.encrypted_data_key = base64_encode(&key);
    assert!(matches!(
        env.vault().open_token(&ctx, &bad_key).await,
        Err(VaultError::CannotOpen { .. })
    ));
}

#[tokio::test]
async fn a_thousand_opens_cost_at_most_two_kms_calls() {
    let env = TestEnv::new().await;
    let ctx = SealContext::new(&TenantId::new("ten_a"), &ChannelId::new("ch_a"));
    let wrapped = env
        .vault()
        .seal(
            &ctx,
            &Secrets::token(&PlatformToken::new("EAAG-page-token")),
        )
        .await
        .unwrap();
    let warm = env.vault();
    env.calls.reset();
    for _ in 0..1000 {
        assert_eq!(
            warm.open_token(&ctx, &wrapped)
                .await
                .unwrap()
                .expect("a token")
                .expose_secret(),
            "EAAG-page-token"
        );
    }
    let kms_calls = env.calls.count("Decrypt") + env.calls.count("GenerateDataKey");
    assert!(
        kms_calls <= 2,
        "{kms_calls} KMS calls: {:?}",
        env.calls.snapshot()
    );
    assert_eq!(env.calls.count("Decrypt"), 1);
}

#[tokio::test]
async fn concurrent_opens_on_a_cold_cache_make_one_kms_call() {
    let env = TestEnv::new().await;
    let ctx = SealContext::new(&TenantId::new("ten_a"), &ChannelId::new("ch_a"));
    let wrapped = env
        .vault()
        .seal(
            &ctx,
            &Secrets::token(&PlatformToken::new("EAAG-page-token")),
        )
        .await
        .unwrap();
    // A new process, and a batch of ten records for one channel handled at once.
    let cold = env.vault();
    env.calls.reset();
    let opened = futures::future::join_all((0..10).map(|_| cold.open_token(&ctx, &wrapped))).await;
    assert!(
        opened
            .iter()
            .all(|t| t.as_ref().unwrap().as_ref().unwrap().expose_secret() == "EAAG-page-token")
    );
    assert_eq!(env.calls.count("Decrypt"), 1, "{:?}", env.calls.snapshot());
}

#[tokio::test]
async fn tokens_do_not_print() {
    let env = TestEnv::new().await;
    let ctx = SealContext::new(&TenantId::new("ten_a"), &ChannelId::new("ch_a"));
    let vault = env.vault();
    let wrapped = vault
        .seal(
            &ctx,
            &Secrets::token(&PlatformToken::new("EAAG-page-token")),
        )
        .await
        .unwrap();
    let token = vault.open_token(&ctx, &wrapped).await.unwrap();
    let printed = format!("{token:?} {vault:?} {wrapped:?}");
    assert!(!printed.contains("EAAG-page-token"), "{printed}");
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}
