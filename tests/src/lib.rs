//! The integration-test harness: every test gets its own table, queues and KMS key on the moto server
//! that `cargo xtask test` starts (found through `AWS_ENDPOINT_URL`), a settable clock, and AWS clients
//! that count their calls by operation.

pub mod aws_calls;
pub mod fake_http;
pub mod fake_platforms;

use std::sync::Arc;

use aws_config::BehaviorVersion;
use inbox_shared::aws::AwsClients;
use inbox_shared::clock::ManualClock;
use inbox_shared::config::Config;
use inbox_shared::identity::{Directory, Verifier};
use inbox_shared::provision::{self, ProvisionPlan, Provisioned, ProvisionedIdentity};
use inbox_shared::queue::QueuePublisher;
use inbox_shared::store::Store;
use inbox_shared::vault::TokenVault;
use time::OffsetDateTime;
use time::macros::datetime;

pub use aws_calls::{AwsCalls, DropBatchEntry, FailCall};

/// A loopback port nothing listens on (TCP discard): where third-party calls go unless a test fakes them.
pub const UNREACHABLE: &str = "http://127.0.0.1:9";

/// The instant every test clock starts at.
pub const TEST_START: OffsetDateTime = datetime!(2026-11-02 09:00 UTC);

/// The moto endpoint, or a panic that says how to get one.
pub fn endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| {
        panic!("AWS_ENDPOINT_URL is not set: run the tests through `cargo xtask test`, which starts the moto server")
    })
}

/// An SDK configuration pointed at moto with dummy credentials.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test",
            "test",
            None,
            None,
            "inbox-tests",
        ))
        .load()
        .await
}

/// One isolated environment on the emulator.
pub struct TestEnv {
    pub prefix: String,
    pub clients: AwsClients,
    pub provisioned: Provisioned,
    pub clock: Arc<ManualClock>,
    pub store: Store,
    pub calls: AwsCalls,
}

impl TestEnv {
    pub async fn new() -> Self {
        Self::with_calls(AwsCalls::default()).await
    }

    /// An environment whose clients also run `calls` (a counter, and any fault it injects).
    pub async fn with_calls(calls: AwsCalls) -> Self {
        let prefix = format!("t{}", &inbox_shared::ids::new_id("x")[2..14]);
        let sdk = sdk_config().await;
        let clients = calls.clients(&sdk);
        let provisioned = provision::provision(&clients, &ProvisionPlan::prefixed(&prefix))
            .await
            .expect("provisioning on the emulator");
        let clock = Arc::new(ManualClock::new(TEST_START));
        let store = Store::new(
            clients.dynamodb.clone(),
            &provisioned.table_name,
            clock.clone(),
        );
        calls.reset();
        Self {
            prefix,
            clients,
            provisioned,
            clock,
            store,
            calls,
        }
    }

    pub fn vault(&self) -> TokenVault {
        TokenVault::new(self.clients.kms.clone(), &self.provisioned.kms_alias)
    }

    pub fn publisher(&self) -> QueuePublisher {
        QueuePublisher::new(self.clients.sqs.clone())
    }

    /// The environment variables a function or `inboxctl` needs to use this environment.
    pub fn env_vars(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ENDPOINT_URL".into(), endpoint()),
            ("AWS_REGION".into(), "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID".into(), "test".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "test".into()),
            ("TABLE_NAME".into(), self.provisioned.table_name.clone()),
            ("KMS_KEY_ID".into(), self.provisioned.kms_alias.clone()),
            (
                "INBOUND_QUEUE_URL".into(),
                self.provisioned.inbound_queue_url.clone(),
            ),
            (
                "ERASURE_QUEUE_URL".into(),
                self.provisioned.erasure_queue_url.clone(),
            ),
        ]
        .into_iter()
        // No test reaches a real platform or provider: unless a test points them at a fake, every
        // third-party base URL is a closed loopback port (the call fails at once, as an outage).
        .chain(
            [
                "META_GRAPH_URL",
                "LINE_API_URL",
                "LINE_OAUTH_URL",
                "INSTAGRAM_OAUTH_URL",
                "INSTAGRAM_GRAPH_URL",
                "ANTHROPIC_BASE_URL",
                "OPENAI_BASE_URL",
            ]
            .map(|name| (name.to_owned(), UNREACHABLE.to_owned())),
        )
        .collect()
    }

    /// Configuration as a function in this environment would read it.
    pub fn config(&self, extra: &[(&str, &str)]) -> Config {
        // `extra` first: it overrides the environment's own values.
        let mut vars: Vec<(String, String)> = extra
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        vars.extend(self.env_vars());
        Config::from_lookup(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
            .expect("test configuration is valid")
    }

    /// Every item of the table, read with a full Scan: for tests that prove something is gone everywhere.
    pub async fn scan_all(&self) -> Vec<inbox_shared::store::Item> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .clients
                .dynamodb
                .scan()
                .table_name(&self.provisioned.table_name)
                .set_exclusive_start_key(start)
                .send()
                .await
                .expect("scan");
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return items,
            }
        }
    }

    /// Receives and deletes everything on a queue, in receive order: (message group, body).
    pub async fn drain_queue(&self, queue_url: &str) -> Vec<(Option<String>, String)> {
        use aws_sdk_sqs::types::MessageSystemAttributeName::MessageGroupId;
        let mut out = Vec::new();
        for _ in 0..500 {
            let received = self
                .clients
                .sqs
                .receive_message()
                .queue_url(queue_url)
                .max_number_of_messages(10)
                .message_system_attribute_names(MessageGroupId)
                .send()
                .await
                .expect("receive");
            let messages = received.messages.unwrap_or_default();
            if messages.is_empty() {
                break;
            }
            for m in messages {
                let group = m
                    .attributes
                    .as_ref()
                    .and_then(|a| a.get(&MessageGroupId))
                    .cloned();
                out.push((group, m.body.clone().unwrap_or_default()));
                self.clients
                    .sqs
                    .delete_message()
                    .queue_url(queue_url)
                    .receipt_handle(m.receipt_handle.unwrap_or_default())
                    .send()
                    .await
                    .expect("delete");
            }
        }
        out
    }
}

/// The console's user pool of one environment: only tests that need Cognito create one
/// ([`TestEnv::identity`]).
pub struct TestIdentity {
    pub cognito: aws_sdk_cognitoidentityprovider::Client,
    pub provisioned: ProvisionedIdentity,
    /// Adds, lists, removes and signs in users (acting as `test-harness`).
    pub directory: Directory,
    /// Verifies the pool's tokens against the environment's clock.
    pub verifier: Verifier,
}

impl TestIdentity {
    /// `COGNITO_USER_POOL_ID`, `COGNITO_CLIENT_ID` and `COGNITO_ISSUER` of this pool.
    pub fn env_vars(&self) -> Vec<(String, String)> {
        self.provisioned.env_vars()
    }

    /// The URL moto serves the pool's signing keys at.
    pub fn jwks_url(&self) -> String {
        format!(
            "{}/{}/.well-known/jwks.json",
            endpoint(),
            self.provisioned.user_pool_id
        )
    }
}

impl TestEnv {
    /// Provisions a user pool of this environment (`{prefix}-inbox-users`) on the emulator.
    pub async fn identity(&self) -> TestIdentity {
        let cognito = aws_sdk_cognitoidentityprovider::Client::new(&sdk_config().await);
        let provisioned = provision::provision_identity(
            &cognito,
            &provision::user_pool_name(&ProvisionPlan::prefixed(&self.prefix)),
        )
        .await
        .expect("provisioning the user pool on the emulator");
        let directory = Directory::new(
            cognito.clone(),
            &provisioned.user_pool_id,
            &provisioned.client_id,
            self.store.clone(),
            "test-harness",
        );
        let verifier = Verifier::new(
            &provisioned.issuer,
            &provisioned.client_id,
            format!(
                "{}/{}/.well-known/jwks.json",
                endpoint(),
                provisioned.user_pool_id
            ),
            inbox_shared::https::client(std::time::Duration::from_secs(2)),
            self.clock.clone(),
        );
        TestIdentity {
            cognito,
            provisioned,
            directory,
            verifier,
        }
    }
}

/// A tenant with one connected channel per platform, as the function tests need it.
pub struct Seeded {
    pub tenant: inbox_shared::model::Tenant,
    pub channels: Vec<inbox_shared::model::Channel>,
}

impl Seeded {
    pub fn channel(
        &self,
        platform: inbox_shared::model::Platform,
    ) -> &inbox_shared::model::Channel {
        self.channels
            .iter()
            .find(|c| c.platform == platform)
            .unwrap_or_else(|| panic!("no {platform} channel seeded"))
    }
}

impl TestEnv {
    /// Creates an active tenant and connects `accounts` (platform, account id) with the access token
    /// `token`; LINE channels also get `line_secret` as their channel secret.
    pub async fn seed_tenant(
        &self,
        name: &str,
        accounts: &[(inbox_shared::model::Platform, &str)],
        token: &str,
        line_secret: &str,
    ) -> Seeded {
        use inbox_shared::model::{Platform, Tenant, TenantId};
        use inbox_shared::secret::{ChannelSecret, PlatformToken};
        use inbox_shared::service::channels::{ChannelService, NewChannel};

        let now = inbox_shared::clock::Clock::now(&*self.clock);
        let tenant = Tenant::new(TenantId::generate(), name.into(), now);
        self.store
            .create_tenant(&tenant)
            .await
            .expect("create tenant");
        let service = ChannelService::new(self.store.clone(), self.vault(), "test-harness");
        let mut channels = Vec::new();
        for (platform, account) in accounts {
            let mut new = NewChannel::with_token(*platform, *account, PlatformToken::new(token));
            new.secret = (*platform == Platform::Line).then(|| ChannelSecret::new(line_secret));
            let channel = service
                .connect(&tenant, new)
                .await
                .expect("connect")
                .channel;
            channels.push(channel);
        }
        Seeded { tenant, channels }
    }
}

/// A customer's text message on `channel` from `user`, as a platform delivers it (kept a year).
pub fn customer_message(
    channel: &inbox_shared::model::Channel,
    user: &inbox_shared::secret::PlatformUserId,
    message_id: &str,
    text: &str,
    sent_at: OffsetDateTime,
) -> inbox_shared::model::Message {
    use inbox_shared::model::*;
    Message {
        tenant_id: channel.tenant_id.clone(),
        conversation_id: inbox_shared::keys::conversation_id(&channel.channel_id, user),
        channel_id: channel.channel_id.clone(),
        message_id: message_id.to_owned(),
        direction: Direction::Inbound,
        author: Author::Customer,
        text: Some(inbox_shared::secret::MessageText::new(text)),
        attachments: Vec::new(),
        payload: None,
        status: MessageStatus::Received,
        error_code: None,
        sent_at,
        retain_until: sent_at + time::Duration::days(365),
        reply_outcome: None,
    }
}

impl TestEnv {
    /// Stores a customer's message with its conversation and contact, as webhook-ingest does.
    pub async fn ingest_customer_message(
        &self,
        message: &inbox_shared::model::Message,
        user: &inbox_shared::secret::PlatformUserId,
        platform: inbox_shared::model::Platform,
        profile_name: Option<&inbox_shared::secret::ProfileName>,
    ) {
        self.store
            .ingest_message(
                message,
                &inbox_shared::store::ConversationTouch {
                    conversation_id: &message.conversation_id,
                    channel_id: &message.channel_id,
                    platform,
                    user_id: user,
                    last_inbound_at: Some(message.sent_at),
                    hand_to_human: None,
                    retain_until: message.retain_until,
                    routed_account: None,
                },
                profile_name,
            )
            .await
            .unwrap();
    }
}
