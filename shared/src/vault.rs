//! The token vault: platform tokens and LINE channel secrets sealed with one KMS data key per channel.
//!
//! Connecting a channel asks KMS for a data key (`GenerateDataKey`, AES-256) under the encryption context
//! `{tenant_id, channel_id}` and seals the token (and the LINE channel secret) locally with AES-256-GCM;
//! only the KMS-encrypted data key and the ciphertexts are stored. Opening asks KMS to decrypt the data
//! key under the same context (so a sealed value copied to another tenant or channel cannot be opened)
//! and the AEAD's associated data binds each ciphertext to its tenant, channel and field as well.
//!
//! Plaintext data keys are cached in the warm process for a short time and a capped number of uses, so a
//! reply costs no KMS call; they live in zeroizing buffers and are wiped on eviction and drop.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_sdk_kms::error::ProvideErrorMetadata;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use zeroize::Zeroizing;

use crate::ids::{ChannelId, TenantId};
use crate::secret::{ChannelSecret, PlatformToken, RegistrationPin};
use crate::single_flight::LoadLocks;

/// What a sealed value belongs to; it is the KMS encryption context and part of the AEAD's associated data.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SealContext {
    pub tenant_id: TenantId,
    pub channel_id: ChannelId,
}

impl SealContext {
    pub fn new(tenant_id: &TenantId, channel_id: &ChannelId) -> Self {
        Self {
            tenant_id: tenant_id.clone(),
            channel_id: channel_id.clone(),
        }
    }
}

/// One value sealed with AES-256-GCM: a random 96-bit nonce and the ciphertext with its tag (base64).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedValue {
    pub nonce: String,
    pub ciphertext: String,
}

/// A channel's credentials as stored: the KMS-encrypted data key and what it sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrappedCredentials {
    /// The channel's data key, encrypted by KMS (base64 of the ciphertext blob).
    pub encrypted_data_key: String,
    /// `None` for a LINE channel that mints its tokens from its id and secret.
    #[serde(default)]
    pub token: Option<SealedValue>,
    #[serde(default)]
    pub channel_secret: Option<SealedValue>,
    /// WhatsApp: the two-step PIN the number was registered with.
    #[serde(default)]
    pub registration_pin: Option<SealedValue>,
}

/// What a channel's credentials hold, before sealing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Secrets<'a> {
    pub token: Option<&'a PlatformToken>,
    /// LINE: the channel secret that signs its webhooks (and mints its tokens).
    pub channel_secret: Option<&'a ChannelSecret>,
    pub registration_pin: Option<&'a RegistrationPin>,
}

impl<'a> Secrets<'a> {
    pub fn token(token: &'a PlatformToken) -> Self {
        Self {
            token: Some(token),
            ..Self::default()
        }
    }

    pub fn with_channel_secret(mut self, secret: Option<&'a ChannelSecret>) -> Self {
        self.channel_secret = secret;
        self
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The sealed value does not open in this context: wrong tenant or channel, or it was tampered with.
    /// Permanent.
    #[error(
        "sealed credentials do not open for tenant {tenant_id}, channel {channel_id}: wrong context or tampered data"
    )]
    CannotOpen {
        tenant_id: TenantId,
        channel_id: ChannelId,
    },
    /// The KMS key is disabled, pending deletion or missing. Permanent until an operator acts.
    #[error("the KMS key cannot be used: {0}")]
    KeyUnavailable(String),
    /// KMS did not answer or throttled. Retryable.
    #[error("KMS call failed: {0}")]
    Kms(String),
}

impl VaultError {
    fn cannot_open(context: &SealContext) -> Self {
        VaultError::CannotOpen {
            tenant_id: context.tenant_id.clone(),
            channel_id: context.channel_id.clone(),
        }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, VaultError::Kms(_))
    }
}

/// Limits of the in-process data-key cache.
#[derive(Debug, Clone, Copy)]
pub struct CachePolicy {
    pub ttl: Duration,
    pub max_uses: u64,
    pub max_entries: usize,
}

impl Default for CachePolicy {
    /// Five minutes and 10,000 uses per key, at most 1,024 channels: one Decrypt per channel per five
    /// minutes at any realistic reply rate.
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(300),
            max_uses: 10_000,
            max_entries: 1024,
        }
    }
}

struct CachedKey {
    key: Zeroizing<[u8; 32]>,
    loaded_at: Instant,
    uses: u64,
}

type CacheKey = (SealContext, String);

pub struct TokenVault {
    kms: aws_sdk_kms::Client,
    key_id: String,
    policy: CachePolicy,
    cache: Mutex<HashMap<CacheKey, CachedKey>>,
    /// Concurrent opens of one channel's credentials on a cold cache make one `Decrypt`.
    loads: LoadLocks<CacheKey>,
    rng: SystemRandom,
}

impl fmt::Debug for TokenVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenVault")
            .field("key_id", &self.key_id)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

const TOKEN_FIELD: &str = "token";
const CHANNEL_SECRET_FIELD: &str = "channel_secret";
const REGISTRATION_PIN_FIELD: &str = "registration_pin";

impl TokenVault {
    pub fn new(kms: aws_sdk_kms::Client, key_id: impl Into<String>) -> Self {
        Self::with_policy(kms, key_id, CachePolicy::default())
    }

    pub fn with_policy(
        kms: aws_sdk_kms::Client,
        key_id: impl Into<String>,
        policy: CachePolicy,
    ) -> Self {
        Self {
            kms,
            key_id: key_id.into(),
            policy,
            cache: Mutex::new(HashMap::new()),
            loads: LoadLocks::default(),
            rng: SystemRandom::new(),
        }
    }

    /// Seals a channel's secrets under a fresh data key: one KMS call.
    pub async fn seal(
        &self,
        context: &SealContext,
        secrets: &Secrets<'_>,
    ) -> Result<WrappedCredentials, VaultError> {
        let out = self
            .kms
            .generate_data_key()
            .key_id(&self.key_id)
            .key_spec(DataKeySpec::Aes256)
            .set_encryption_context(Some(kms_context(context)))
            .send()
            .await
            .map_err(|err| kms_error(context, err))?;
        let plaintext = out
            .plaintext
            .ok_or_else(|| VaultError::Kms("GenerateDataKey returned no plaintext".into()))?;
        let encrypted = out
            .ciphertext_blob
            .ok_or_else(|| VaultError::Kms("GenerateDataKey returned no ciphertext".into()))?;
        let data_key = data_key_from(plaintext.into_inner())?;
        let encrypted_data_key = B64.encode(encrypted.as_ref());

        let seal = |field: &str, value: Option<&str>| {
            value
                .map(|v| self.seal_value(&data_key, context, field, v.as_bytes()))
                .transpose()
        };
        let token = seal(TOKEN_FIELD, secrets.token.map(PlatformToken::expose_secret))?;
        let channel_secret = seal(
            CHANNEL_SECRET_FIELD,
            secrets.channel_secret.map(ChannelSecret::expose_secret),
        )?;
        let registration_pin = seal(
            REGISTRATION_PIN_FIELD,
            secrets.registration_pin.map(RegistrationPin::expose_secret),
        )?;
        self.remember((context.clone(), encrypted_data_key.clone()), data_key);
        Ok(WrappedCredentials {
            encrypted_data_key,
            token,
            channel_secret,
            registration_pin,
        })
    }

    /// The access token, if these credentials hold one (a LINE channel that mints its tokens has none).
    pub async fn open_token(
        &self,
        context: &SealContext,
        wrapped: &WrappedCredentials,
    ) -> Result<Option<PlatformToken>, VaultError> {
        match &wrapped.token {
            None => Ok(None),
            Some(sealed) => {
                let text = self
                    .open_field(context, wrapped, TOKEN_FIELD, sealed)
                    .await?;
                Ok(Some(PlatformToken::new(text.as_str())))
            }
        }
    }

    /// The LINE channel secret, if these credentials hold one.
    pub async fn open_channel_secret(
        &self,
        context: &SealContext,
        wrapped: &WrappedCredentials,
    ) -> Result<Option<ChannelSecret>, VaultError> {
        match &wrapped.channel_secret {
            None => Ok(None),
            Some(sealed) => {
                let text = self
                    .open_field(context, wrapped, CHANNEL_SECRET_FIELD, sealed)
                    .await?;
                Ok(Some(ChannelSecret::new(text.as_str())))
            }
        }
    }

    /// The WhatsApp registration PIN, if these credentials hold one (a reconnect registers with it again).
    pub async fn open_registration_pin(
        &self,
        context: &SealContext,
        wrapped: &WrappedCredentials,
    ) -> Result<Option<RegistrationPin>, VaultError> {
        match &wrapped.registration_pin {
            None => Ok(None),
            Some(sealed) => {
                let text = self
                    .open_field(context, wrapped, REGISTRATION_PIN_FIELD, sealed)
                    .await?;
                Ok(Some(RegistrationPin::new(text.as_str())))
            }
        }
    }

    /// Drops every cached data key of a channel (at disconnect), so this process cannot open it again
    /// even from a stale copy of the wrapped token.
    pub fn forget_channel(&self, context: &SealContext) {
        self.cache
            .lock()
            .expect("vault cache poisoned")
            .retain(|(ctx, _), _| ctx != context);
    }

    async fn open_field(
        &self,
        context: &SealContext,
        wrapped: &WrappedCredentials,
        field: &str,
        sealed: &SealedValue,
    ) -> Result<Zeroizing<String>, VaultError> {
        let cache_key = (context.clone(), wrapped.encrypted_data_key.clone());
        let data_key = match self.cached(&cache_key) {
            Some(key) => key,
            None => {
                let loading = self.loads.lock(&cache_key).await;
                match self.cached(&cache_key) {
                    Some(key) => key,
                    None if loading.waited => {
                        return Err(VaultError::Kms(
                            "a concurrent Decrypt of this channel's data key just failed".into(),
                        ));
                    }
                    None => {
                        let key = self
                            .decrypt_data_key(context, &wrapped.encrypted_data_key)
                            .await?;
                        self.remember(cache_key, Zeroizing::new(*key));
                        key
                    }
                }
            }
        };
        let cannot_open = || VaultError::cannot_open(context);
        let nonce: [u8; NONCE_LEN] = B64
            .decode(&sealed.nonce)
            .ok()
            .and_then(|n| n.try_into().ok())
            .ok_or_else(cannot_open)?;
        let mut buffer = Zeroizing::new(B64.decode(&sealed.ciphertext).map_err(|_| cannot_open())?);
        let key = LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, data_key.as_ref()).map_err(|_| cannot_open())?,
        );
        let aad = associated_data(context, field);
        let plaintext = key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad.as_bytes()),
                buffer.as_mut_slice(),
            )
            .map_err(|_| cannot_open())?;
        let text = std::str::from_utf8(plaintext).map_err(|_| cannot_open())?;
        Ok(Zeroizing::new(text.to_owned()))
    }

    async fn decrypt_data_key(
        &self,
        context: &SealContext,
        encrypted: &str,
    ) -> Result<Zeroizing<[u8; 32]>, VaultError> {
        let cannot_open = || VaultError::cannot_open(context);
        let blob = B64.decode(encrypted).map_err(|_| cannot_open())?;
        let out = self
            .kms
            .decrypt()
            .key_id(&self.key_id)
            .ciphertext_blob(Blob::new(blob))
            .set_encryption_context(Some(kms_context(context)))
            .send()
            .await
            .map_err(|err| kms_error(context, err))?;
        let plaintext = out
            .plaintext
            .ok_or_else(|| VaultError::Kms("Decrypt returned no plaintext".into()))?;
        data_key_from(plaintext.into_inner())
    }

    fn seal_value(
        &self,
        data_key: &[u8; 32],
        context: &SealContext,
        field: &str,
        plaintext: &[u8],
    ) -> Result<SealedValue, VaultError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| VaultError::Kms("the random generator failed".into()))?;
        let key = LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, data_key).expect("a 32-byte key is valid for AES-256"),
        );
        let mut buffer = plaintext.to_vec();
        let aad = associated_data(context, field);
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad.as_bytes()),
            &mut buffer,
        )
        .expect("sealing a short value cannot fail");
        Ok(SealedValue {
            nonce: B64.encode(nonce),
            ciphertext: B64.encode(&buffer),
        })
    }

    fn cached(&self, cache_key: &CacheKey) -> Option<Zeroizing<[u8; 32]>> {
        let mut cache = self.cache.lock().expect("vault cache poisoned");
        let fresh = cache.get(cache_key).is_some_and(|c| {
            c.loaded_at.elapsed() < self.policy.ttl && c.uses < self.policy.max_uses
        });
        if !fresh {
            cache.remove(cache_key);
            return None;
        }
        let entry = cache.get_mut(cache_key).expect("checked above");
        entry.uses += 1;
        Some(Zeroizing::new(*entry.key))
    }

    fn remember(&self, cache_key: CacheKey, key: Zeroizing<[u8; 32]>) {
        let mut cache = self.cache.lock().expect("vault cache poisoned");
        if cache.len() >= self.policy.max_entries {
            let ttl = self.policy.ttl;
            cache.retain(|_, c| c.loaded_at.elapsed() < ttl);
            if cache.len() >= self.policy.max_entries
                && let Some(oldest) = cache
                    .iter()
                    .min_by_key(|(_, c)| c.loaded_at)
                    .map(|(k, _)| k.clone())
            {
                cache.remove(&oldest);
            }
        }
        cache.insert(
            cache_key,
            CachedKey {
                key,
                loaded_at: Instant::now(),
                uses: 1,
            },
        );
    }
}

fn kms_context(context: &SealContext) -> HashMap<String, String> {
    HashMap::from([
        ("tenant_id".to_owned(), context.tenant_id.to_string()),
        ("channel_id".to_owned(), context.channel_id.to_string()),
    ])
}

fn associated_data(context: &SealContext, field: &str) -> String {
    format!(
        "inbox-vault-v1\0{}\0{}\0{field}",
        context.tenant_id, context.channel_id
    )
}

fn data_key_from(mut bytes: Vec<u8>) -> Result<Zeroizing<[u8; 32]>, VaultError> {
    let result = <[u8; 32]>::try_from(bytes.as_slice())
        .map(Zeroizing::new)
        .map_err(|_| {
            VaultError::Kms(format!(
                "KMS returned a {}-byte data key, expected 32",
                bytes.len()
            ))
        });
    zeroize::Zeroize::zeroize(&mut bytes);
    result
}

fn kms_error<E: ProvideErrorMetadata + fmt::Debug>(
    context: &SealContext,
    err: aws_sdk_kms::error::SdkError<E>,
) -> VaultError {
    let code = err.code().unwrap_or_default().to_owned();
    match code.as_str() {
        "InvalidCiphertextException" | "IncorrectKeyException" => VaultError::cannot_open(context),
        "DisabledException"
        | "KMSInvalidStateException"
        | "NotFoundException"
        | "KeyUnavailableException" => VaultError::KeyUnavailable(code),
        _ => VaultError::Kms(if code.is_empty() {
            format!("{err:?}")
        } else {
            code
        }),
    }
}
