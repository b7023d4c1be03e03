//! Creates the table, queues and KMS key where they are missing, in the shapes the SAM template
//! declares: the single table with `gsi1` (all attributes) and `gsi2` (keys only) and TTL on
//! `expires_at`; the inbound FIFO queue and the erasure queue, each with a dead-letter queue and a
//! redrive policy; a KMS key with rotation on, behind an alias. Running it twice changes nothing.
//!
//! The console's Cognito user pool is provisioned apart ([`provision_identity`]), with its own client,
//! so that only what needs a pool (`inboxctl provision`, the local stack, identity tests) creates one.

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use serde::Serialize;

use crate::aws::AwsClients;
use crate::config::Config;
use crate::keys::{self, Index};

/// Names of what to provision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionPlan {
    pub table_name: String,
    /// Must end in `.fifo`.
    pub inbound_queue_name: String,
    pub erasure_queue_name: String,
    /// `alias/…`.
    pub kms_alias: String,
    /// Receives before a message goes to its dead-letter queue.
    pub max_receive_count: u32,
    pub inbound_visibility_timeout_secs: u32,
    pub erasure_visibility_timeout_secs: u32,
}

impl ProvisionPlan {
    /// Names from configuration: the table and key alias as configured, queue names from the configured
    /// URLs (their last path segment) or the defaults `inbox-inbound.fifo` and `inbox-erasure`.
    pub fn from_config(config: &Config) -> Self {
        let queue_name = |url: &Option<String>, default: &str| {
            url.as_deref()
                .and_then(|u| u.rsplit('/').next())
                .filter(|n| !n.is_empty())
                .unwrap_or(default)
                .to_owned()
        };
        let kms_alias = if config.kms_key_id.starts_with("alias/") {
            config.kms_key_id.clone()
        } else {
            "alias/inbox-tokens".to_owned()
        };
        Self {
            table_name: config.table_name.clone(),
            inbound_queue_name: queue_name(&config.inbound_queue_url, "inbox-inbound.fifo"),
            erasure_queue_name: queue_name(&config.erasure_queue_url, "inbox-erasure"),
            kms_alias,
            max_receive_count: 5,
            inbound_visibility_timeout_secs: 180,
            erasure_visibility_timeout_secs: 900,
        }
    }

    /// A plan whose every name carries `prefix`, for isolated test environments on one emulator.
    pub fn prefixed(prefix: &str) -> Self {
        Self {
            table_name: format!("{prefix}-inbox"),
            inbound_queue_name: format!("{prefix}-inbound.fifo"),
            erasure_queue_name: format!("{prefix}-erasure"),
            kms_alias: format!("alias/{prefix}-tokens"),
            max_receive_count: 5,
            inbound_visibility_timeout_secs: 180,
            erasure_visibility_timeout_secs: 900,
        }
    }
}

/// What exists after provisioning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Provisioned {
    pub table_name: String,
    pub inbound_queue_url: String,
    pub inbound_dlq_url: String,
    pub erasure_queue_url: String,
    pub erasure_dlq_url: String,
    pub kms_key_id: String,
    pub kms_alias: String,
    /// What this run created (empty when everything existed).
    pub created: Vec<String>,
    /// The console's user pool, when it was provisioned too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<ProvisionedIdentity>,
}

#[derive(Debug, thiserror::Error)]
#[error("provisioning failed at {step}: {message}")]
pub struct ProvisionError {
    pub step: String,
    pub message: String,
}

fn failed(step: impl Into<String>, err: impl std::fmt::Display) -> ProvisionError {
    ProvisionError {
        step: step.into(),
        message: err.to_string(),
    }
}

pub async fn provision(
    clients: &AwsClients,
    plan: &ProvisionPlan,
) -> Result<Provisioned, ProvisionError> {
    let mut created = Vec::new();
    if create_table(&clients.dynamodb, &plan.table_name).await? {
        created.push(format!("table {}", plan.table_name));
    }
    enable_ttl(&clients.dynamodb, &plan.table_name).await?;

    let fifo = plan.inbound_queue_name.ends_with(".fifo");
    if !fifo {
        return Err(failed(
            "inbound queue",
            format!("{} must end in .fifo", plan.inbound_queue_name),
        ));
    }
    let inbound_dlq_name = plan.inbound_queue_name.replace(".fifo", "-dlq.fifo");
    let (inbound_dlq_url, inbound_dlq_arn) =
        ensure_queue(clients, &inbound_dlq_name, true, None, 60, &mut created).await?;
    let (inbound_queue_url, _) = ensure_queue(
        clients,
        &plan.inbound_queue_name,
        true,
        Some((&inbound_dlq_arn, plan.max_receive_count)),
        plan.inbound_visibility_timeout_secs,
        &mut created,
    )
    .await?;
    let erasure_dlq_name = format!("{}-dlq", plan.erasure_queue_name);
    let (erasure_dlq_url, erasure_dlq_arn) =
        ensure_queue(clients, &erasure_dlq_name, false, None, 60, &mut created).await?;
    let (erasure_queue_url, _) = ensure_queue(
        clients,
        &plan.erasure_queue_name,
        false,
        Some((&erasure_dlq_arn, plan.max_receive_count)),
        plan.erasure_visibility_timeout_secs,
        &mut created,
    )
    .await?;

    let kms_key_id = ensure_key(&clients.kms, &plan.kms_alias, &mut created).await?;
    Ok(Provisioned {
        table_name: plan.table_name.clone(),
        inbound_queue_url,
        inbound_dlq_url,
        erasure_queue_url,
        erasure_dlq_url,
        kms_key_id,
        kms_alias: plan.kms_alias.clone(),
        created,
        identity: None,
    })
}

async fn create_table(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<bool, ProvisionError> {
    let step = || format!("table {table}");
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .expect("name and type are set")
    };
    let key = |name: &str, key_type: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(key_type)
            .build()
            .expect("name and type are set")
    };
    let index = |index: Index, projection: ProjectionType| {
        let (pk, sk) = index.attributes();
        GlobalSecondaryIndex::builder()
            .index_name(index.name())
            .key_schema(key(pk, KeyType::Hash))
            .key_schema(key(sk, KeyType::Range))
            .projection(Projection::builder().projection_type(projection).build())
            .build()
            .expect("name, keys and projection are set")
    };
    let result = dynamodb
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(
            [
                keys::PK,
                keys::SK,
                keys::GSI1_PK,
                keys::GSI1_SK,
                keys::GSI2_PK,
                keys::GSI2_SK,
            ]
            .map(attribute)
            .to_vec(),
        ))
        .key_schema(key(keys::PK, KeyType::Hash))
        .key_schema(key(keys::SK, KeyType::Range))
        .global_secondary_indexes(index(Index::Gsi1, ProjectionType::All))
        .global_secondary_indexes(index(Index::Gsi2, ProjectionType::KeysOnly))
        .send()
        .await;
    match result {
        Ok(_) => {
            wait_for_table(dynamodb, table).await?;
            Ok(true)
        }
        Err(err) if err.code() == Some("ResourceInUseException") => Ok(false),
        Err(err) => Err(failed(
            step(),
            aws_sdk_dynamodb::error::DisplayErrorContext(&err),
        )),
    }
}

async fn wait_for_table(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<(), ProvisionError> {
    for _ in 0..120 {
        let out = dynamodb
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| {
                failed(
                    format!("table {table}"),
                    aws_sdk_dynamodb::error::DisplayErrorContext(&e),
                )
            })?;
        let active = out
            .table
            .and_then(|t| t.table_status)
            .is_some_and(|s| s.as_str() == "ACTIVE");
        if active {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    Err(failed(
        format!("table {table}"),
        "did not become ACTIVE within 60 s",
    ))
}

async fn enable_ttl(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<(), ProvisionError> {
    let step = || format!("TTL of table {table}");
    let current = dynamodb
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await
        .map_err(|e| failed(step(), aws_sdk_dynamodb::error::DisplayErrorContext(&e)))?;
    let enabled = current.time_to_live_description.is_some_and(|d| {
        d.attribute_name() == Some(keys::TTL)
            && d.time_to_live_status()
                .is_some_and(|s| s.as_str() != "DISABLED")
    });
    if enabled {
        return Ok(());
    }
    dynamodb
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name(keys::TTL)
                .enabled(true)
                .build()
                .expect("fields are set"),
        )
        .send()
        .await
        .map_err(|e| failed(step(), aws_sdk_dynamodb::error::DisplayErrorContext(&e)))?;
    Ok(())
}

/// Creates a queue (a no-op if it exists with these attributes); returns its URL and ARN.
async fn ensure_queue(
    clients: &AwsClients,
    name: &str,
    fifo: bool,
    dead_letter: Option<(&str, u32)>,
    visibility_timeout_secs: u32,
    created: &mut Vec<String>,
) -> Result<(String, String), ProvisionError> {
    let step = || format!("queue {name}");
    let sqs = &clients.sqs;
    let existing = sqs
        .get_queue_url()
        .queue_name(name)
        .send()
        .await
        .ok()
        .and_then(|o| o.queue_url);
    let url = match existing {
        Some(url) => url,
        None => {
            let mut request = sqs
                .create_queue()
                .queue_name(name)
                .attributes(
                    QueueAttributeName::VisibilityTimeout,
                    visibility_timeout_secs.to_string(),
                )
                .attributes(
                    QueueAttributeName::MessageRetentionPeriod,
                    (14 * 24 * 3600).to_string(),
                )
                .attributes(QueueAttributeName::SqsManagedSseEnabled, "true");
            if fifo {
                request = request
                    .attributes(QueueAttributeName::FifoQueue, "true")
                    .attributes(QueueAttributeName::ContentBasedDeduplication, "false");
            }
            if let Some((arn, max_receive_count)) = dead_letter {
                let policy = serde_json::json!({"deadLetterTargetArn": arn, "maxReceiveCount": max_receive_count});
                request = request.attributes(QueueAttributeName::RedrivePolicy, policy.to_string());
            }
            let out = request
                .send()
                .await
                .map_err(|e| failed(step(), aws_sdk_sqs::error::DisplayErrorContext(&e)))?;
            created.push(format!("queue {name}"));
            out.queue_url
                .ok_or_else(|| failed(step(), "CreateQueue returned no URL"))?
        }
    };
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| failed(step(), aws_sdk_sqs::error::DisplayErrorContext(&e)))?;
    let arn = attributes
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .ok_or_else(|| failed(step(), "no QueueArn attribute"))?;
    Ok((url, arn))
}

/// Finds the key behind `alias`, or creates a symmetric key with rotation on and points the alias at it.
async fn ensure_key(
    kms: &aws_sdk_kms::Client,
    alias: &str,
    created: &mut Vec<String>,
) -> Result<String, ProvisionError> {
    let step = || format!("KMS key {alias}");
    if let Ok(out) = kms.describe_key().key_id(alias).send().await
        && let Some(meta) = out.key_metadata
    {
        return Ok(meta.key_id);
    }
    let key = kms
        .create_key()
        .description("inbox: envelope encryption of platform tokens and channel secrets")
        .send()
        .await
        .map_err(|e| failed(step(), aws_sdk_kms::error::DisplayErrorContext(&e)))?
        .key_metadata
        .ok_or_else(|| failed(step(), "CreateKey returned no metadata"))?
        .key_id;
    kms.enable_key_rotation()
        .key_id(&key)
        .send()
        .await
        .map_err(|e| failed(step(), aws_sdk_kms::error::DisplayErrorContext(&e)))?;
    kms.create_alias()
        .alias_name(alias)
        .target_key_id(&key)
        .send()
        .await
        .map_err(|e| failed(step(), aws_sdk_kms::error::DisplayErrorContext(&e)))?;
    created.push(format!("KMS key {alias}"));
    Ok(key)
}

/// The console's user pool as provisioned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProvisionedIdentity {
    pub user_pool_id: String,
    pub user_pool_name: String,
    pub client_id: String,
    /// The `iss` of the pool's tokens (`COGNITO_ISSUER`).
    pub issuer: String,
    pub created: Vec<String>,
}

impl ProvisionedIdentity {
    /// The variables a function or `inboxctl` needs to use this pool.
    pub fn env_vars(&self) -> Vec<(String, String)> {
        vec![
            ("COGNITO_USER_POOL_ID".into(), self.user_pool_id.clone()),
            ("COGNITO_CLIENT_ID".into(), self.client_id.clone()),
            ("COGNITO_ISSUER".into(), self.issuer.clone()),
        ]
    }
}

/// The app client's name in every pool.
pub const CONSOLE_CLIENT_NAME: &str = "console";

/// The user pool of the plan's table: `{table}-users`.
pub fn user_pool_name(plan: &ProvisionPlan) -> String {
    format!("{}-users", plan.table_name)
}

/// Creates the console's user pool where missing, in the shape of the template's `UserPool`: sign-in
/// by email, the immutable custom attribute `tenant_id`, no self sign-up, MFA optional, a 12-character
/// password policy; the groups `owner` and `agent`; the app client `console` without a secret, allowing
/// USER_PASSWORD_AUTH and refresh, reading but never writing `custom:tenant_id`. Found by name, so a
/// second run changes nothing.
pub async fn provision_identity(
    cognito: &aws_sdk_cognitoidentityprovider::Client,
    pool_name: &str,
) -> Result<ProvisionedIdentity, ProvisionError> {
    use aws_sdk_cognitoidentityprovider::error::{DisplayErrorContext, ProvideErrorMetadata as _};
    use aws_sdk_cognitoidentityprovider::types::{
        AdminCreateUserConfigType, AttributeDataType, ExplicitAuthFlowsType, PasswordPolicyType,
        PreventUserExistenceErrorTypes, SchemaAttributeType, StringAttributeConstraintsType,
        TimeUnitsType, TokenValidityUnitsType, UserPoolMfaType, UserPoolPolicyType,
        UsernameAttributeType, UsernameConfigurationType,
    };
    let step = |what: &str| format!("user pool {pool_name}: {what}");
    let mut created = Vec::new();

    // The pool, by name.
    let mut pool_id = None;
    let mut token = None;
    'pages: loop {
        let out = cognito
            .list_user_pools()
            .max_results(60)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| failed(step("ListUserPools"), DisplayErrorContext(&e)))?;
        for pool in out.user_pools.unwrap_or_default() {
            if pool.name() == Some(pool_name) {
                pool_id = pool.id;
                break 'pages;
            }
        }
        match out.next_token {
            Some(next) if !next.is_empty() => token = Some(next),
            _ => break,
        }
    }
    let pool_id = match pool_id {
        Some(id) => id,
        None => {
            let out = cognito
                .create_user_pool()
                .pool_name(pool_name)
                .username_attributes(UsernameAttributeType::Email)
                .username_configuration(
                    UsernameConfigurationType::builder()
                        .case_sensitive(false)
                        .build()
                        .map_err(|e| failed(step("CreateUserPool"), e))?,
                )
                .schema(
                    SchemaAttributeType::builder()
                        .name("tenant_id")
                        .attribute_data_type(AttributeDataType::String)
                        .mutable(false)
                        .string_attribute_constraints(
                            StringAttributeConstraintsType::builder()
                                .min_length("1")
                                .max_length("64")
                                .build(),
                        )
                        .build(),
                )
                .admin_create_user_config(
                    AdminCreateUserConfigType::builder()
                        .allow_admin_create_user_only(true)
                        .build(),
                )
                .policies(
                    UserPoolPolicyType::builder()
                        .password_policy(
                            PasswordPolicyType::builder()
                                .minimum_length(12)
                                .require_lowercase(true)
                                .require_uppercase(true)
                                .require_numbers(true)
                                .require_symbols(false)
                                .temporary_password_validity_days(7)
                                .build(),
                        )
                        .build(),
                )
                .mfa_configuration(UserPoolMfaType::Optional)
                .send()
                .await
                .map_err(|e| failed(step("CreateUserPool"), DisplayErrorContext(&e)))?;
            created.push(format!("user pool {pool_name}"));
            out.user_pool
                .and_then(|p| p.id)
                .ok_or_else(|| failed(step("CreateUserPool"), "returned no pool id"))?
        }
    };

    for (group, description) in [
        (
            "owner",
            "Runs the business: settings, knowledge, channels, users, data requests",
        ),
        (
            "agent",
            "Works the inbox: conversations, replies, handoffs, drafts",
        ),
    ] {
        match cognito
            .create_group()
            .user_pool_id(&pool_id)
            .group_name(group)
            .description(description)
            .send()
            .await
        {
            Ok(_) => created.push(format!("group {group}")),
            Err(e) if e.code() == Some("GroupExistsException") => {}
            Err(e) => return Err(failed(step("CreateGroup"), DisplayErrorContext(&e))),
        }
    }

    let clients = cognito
        .list_user_pool_clients()
        .user_pool_id(&pool_id)
        .max_results(60)
        .send()
        .await
        .map_err(|e| failed(step("ListUserPoolClients"), DisplayErrorContext(&e)))?;
    let existing = clients
        .user_pool_clients
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.client_name() == Some(CONSOLE_CLIENT_NAME))
        .and_then(|c| c.client_id);
    let client_id = match existing {
        Some(id) => id,
        None => {
            let out = cognito
                .create_user_pool_client()
                .user_pool_id(&pool_id)
                .client_name(CONSOLE_CLIENT_NAME)
                .generate_secret(false)
                .explicit_auth_flows(ExplicitAuthFlowsType::AllowUserPasswordAuth)
                .explicit_auth_flows(ExplicitAuthFlowsType::AllowUserSrpAuth)
                .explicit_auth_flows(ExplicitAuthFlowsType::AllowRefreshTokenAuth)
                .prevent_user_existence_errors(PreventUserExistenceErrorTypes::Enabled)
                .read_attributes("email")
                .read_attributes("email_verified")
                .read_attributes("custom:tenant_id")
                .write_attributes("name")
                .access_token_validity(60)
                .id_token_validity(60)
                .refresh_token_validity(30)
                .token_validity_units(
                    TokenValidityUnitsType::builder()
                        .access_token(TimeUnitsType::Minutes)
                        .id_token(TimeUnitsType::Minutes)
                        .refresh_token(TimeUnitsType::Days)
                        .build(),
                )
                .enable_token_revocation(true)
                .send()
                .await
                .map_err(|e| failed(step("CreateUserPoolClient"), DisplayErrorContext(&e)))?;
            created.push(format!("app client {CONSOLE_CLIENT_NAME}"));
            out.user_pool_client
                .and_then(|c| c.client_id)
                .ok_or_else(|| failed(step("CreateUserPoolClient"), "returned no client id"))?
        }
    };
    let region = pool_id.split_once('_').map_or("us-east-1", |(r, _)| r);
    Ok(ProvisionedIdentity {
        issuer: format!("https://cognito-idp.{region}.amazonaws.com/{pool_id}"),
        user_pool_id: pool_id,
        user_pool_name: pool_name.to_owned(),
        client_id,
        created,
    })
}
