//! The measurements: each function's release binary under the Runtime API stand-in, fed real work
//! against the emulator through the counting proxy.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use aws_lambda_events::event::sqs::SqsBatchResponse;
use inbox_shared::aws::AwsClients;
use inbox_shared::clock;
use inbox_shared::ids::new_id;
use inbox_shared::keys;
use inbox_shared::lambda;
use inbox_shared::model::{AiMode, Platform};
use inbox_shared::platform::signature::meta_signature;
use inbox_shared::platform::signed_request::sign_request;
use inbox_shared::provision::{self, ProvisionPlan, Provisioned};
use inbox_shared::secret::PlatformUserId;
use inbox_shared::store::Store;
use inbox_shared::vault::TokenVault;
use serde_json::{Value, json};

use super::aws_proxy::AwsProxy;
use super::iam::operations;
use super::runtime_api::{Answer, LambdaProcess};
use super::{
    BATCH, CONSOLE_REQUESTS, ConsoleFigures, IngestFigures, ProcessFigures, ReplyFigures,
    SINGLE_DELIVERIES, STARTS, WARM_DELIVERIES, deployed, target_dir,
};
use crate::demo_tenant::{self, DemoTenant, PlatformStandIn};

fn binary(function: &str) -> PathBuf {
    target_dir().join("release").join(function)
}

/// The isolated resources, demo tenant and stand-ins the function processes run against.
struct Rig {
    proxy: AwsProxy,
    direct: AwsClients,
    provisioned: Provisioned,
    demo: DemoTenant,
    platforms: PlatformStandIn,
    env: Vec<(String, String)>,
}

impl Rig {
    async fn new() -> Result<Self> {
        let moto_url = std::env::var("AWS_ENDPOINT_URL")?;
        let direct = AwsClients::from_env().await;
        let prefix = format!("bench{}", &new_id("x")[2..10]);
        let provisioned = provision::provision(&direct, &ProvisionPlan::prefixed(&prefix)).await?;
        let store = Store::new(
            direct.dynamodb.clone(),
            &provisioned.table_name,
            clock::system(),
        );
        let vault = TokenVault::new(direct.kms.clone(), &provisioned.kms_alias);
        let demo = DemoTenant::create(&store, vault, AiMode::Auto).await?;
        let platforms = PlatformStandIn::start().await;
        let proxy = AwsProxy::start(&moto_url).await?;
        let env = [
            ("AWS_ENDPOINT_URL", proxy.url.clone()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", "bench".into()),
            ("AWS_SECRET_ACCESS_KEY", "bench".into()),
            ("TABLE_NAME", provisioned.table_name.clone()),
            ("KMS_KEY_ID", provisioned.kms_alias.clone()),
            ("INBOUND_QUEUE_URL", provisioned.inbound_queue_url.clone()),
            ("ERASURE_QUEUE_URL", provisioned.erasure_queue_url.clone()),
            ("META_APP_SECRET", demo_tenant::APP_SECRET.into()),
            ("META_VERIFY_TOKEN", demo_tenant::VERIFY_TOKEN.into()),
            ("META_GRAPH_URL", platforms.http.url()),
            ("LINE_API_URL", platforms.http.url()),
            // channel-connect checks both at start.
            (
                "CONNECT_STATE_SECRET",
                format!("bench-{}", new_id("connect-state")),
            ),
            (
                "PUBLIC_BASE_URL",
                "https://bench.execute-api.us-east-1.amazonaws.com".into(),
            ),
            (
                "CONSOLE_CURSOR_SECRET",
                format!("bench-{}", new_id("console-cursor")),
            ),
            ("RUST_LOG", "info".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        Ok(Self {
            proxy,
            direct,
            provisioned,
            demo,
            platforms,
            env,
        })
    }

    /// Starts `function` `STARTS` times and keeps the last process: returns it and its figures with every
    /// start time, the AWS call counts reset so they are the process's work from here on.
    async fn start(&self, function: &str) -> Result<(LambdaProcess, ProcessFigures)> {
        let mut starts = Vec::with_capacity(STARTS);
        loop {
            let mut process =
                LambdaProcess::start(&binary(function), deployed(function), &self.env).await?;
            starts.push(
                process
                    .ready()
                    .await
                    .with_context(|| format!("starting {function}"))?,
            );
            if starts.len() == STARTS {
                starts.sort();
                self.proxy.take();
                let figures = ProcessFigures {
                    starts,
                    ..ProcessFigures::default()
                };
                return Ok((process, figures));
            }
        }
    }
}

pub(super) async fn measure_functions() -> Result<(
    IngestFigures,
    ReplyFigures,
    ConsoleFigures,
    Vec<(String, ProcessFigures)>,
)> {
    let rig = Rig::new().await?;
    eprintln!("xtask bench: webhook-ingest, 1,010 messages");
    let ingest = measure_ingest(&rig).await?;
    eprintln!("xtask bench: ai-reply, one reply to each of them");
    let reply = measure_reply(&rig, ingest.messages).await?;
    eprintln!("xtask bench: data-deletion, retention-sweep and channel-connect");
    let deletion = measure_data_deletion(&rig).await?;
    let sweep = measure_retention_sweep(&rig).await?;
    let connect = measure_channel_connect(&rig).await?;
    eprintln!("xtask bench: console-api, pages of 50 conversations and people's replies");
    let console = measure_console(&rig).await?;
    Ok((
        ingest,
        reply,
        console,
        vec![
            ("data-deletion".to_owned(), deletion),
            ("retention-sweep".to_owned(), sweep),
            ("channel-connect".to_owned(), connect),
        ],
    ))
}

/// An API Gateway HTTP API (payload 2.0) request event, as Lambda hands it to `lambda_http`.
fn http_event(method: &str, path: &str, query: &str, headers: Value, body: Option<&str>) -> Value {
    http_event_as(method, path, query, headers, body, None)
}

/// [`http_event`] as API Gateway passes it on once its JWT authorizer accepted a token with `claims`.
fn http_event_as(
    method: &str,
    path: &str,
    query: &str,
    headers: Value,
    body: Option<&str>,
    claims: Option<Value>,
) -> Value {
    let mut event = json!({
        "version": "2.0",
        "routeKey": format!("{method} {path}"),
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012", "apiId": "bench", "domainName": "bench.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "bench", "requestId": new_id("req"), "routeKey": format!("{method} {path}"),
            "stage": "$default", "time": "24/Nov/2026:12:00:00 +0000", "timeEpoch": 1_795_521_600_000_u64,
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "173.252.127.1", "userAgent": "facebookexternalua"}
        },
        "body": body,
        "isBase64Encoded": false
    });
    if let Some(claims) = claims {
        event["requestContext"]["authorizer"] = json!({"jwt": {"claims": claims, "scopes": null}});
    }
    event
}

/// A signed Meta webhook delivery of `messages` (customer, mid, text) to the demo Page.
fn meta_webhook(messages: &[(&str, &str, &str)]) -> Value {
    let body = demo_tenant::messenger_delivery(messages).to_string();
    let signature = meta_signature(demo_tenant::APP_SECRET, body.as_bytes());
    http_event(
        "POST",
        "/webhooks/meta",
        "",
        json!({"content-type": "application/json", "host": "bench.execute-api.us-east-1.amazonaws.com",
               "x-hub-signature-256": signature}),
        Some(&body),
    )
}

fn expect_status(answer: &Answer, status: u64) -> Result<()> {
    match answer {
        Answer::Response(response) if response["statusCode"] == status => Ok(()),
        Answer::Response(response) => bail!("expected {status}, got {response}"),
        Answer::Error(error) => bail!("the function failed: {error}"),
    }
}

async fn measure_ingest(rig: &Rig) -> Result<IngestFigures> {
    let (mut process, mut figures) = rig.start("webhook-ingest").await?;
    let users: Vec<String> = (0..(WARM_DELIVERIES + 1) * BATCH + SINGLE_DELIVERIES)
        .map(|i| format!("psid-bench-{i:05}"))
        .collect();
    let mids: Vec<String> = (0..users.len())
        .map(|i| format!("m_bench_{i:05}"))
        .collect();
    let delivery = |range: std::ops::Range<usize>| {
        let messages: Vec<(&str, &str, &str)> = range
            .map(|i| {
                (
                    users[i].as_str(),
                    mids[i].as_str(),
                    "What are your opening hours?",
                )
            })
            .collect();
        meta_webhook(&messages)
    };
    let (answer, took) = process.invoke(&delivery(0..BATCH)).await?;
    expect_status(&answer, 200)?;
    figures.cold_invocation = took;
    let cold = rig.proxy.take();
    let (cpu_before, logs_before) = (process.cpu_time()?, process.log_bytes());
    for n in 1..=WARM_DELIVERIES {
        let (answer, took) = process
            .invoke(&delivery(n * BATCH..(n + 1) * BATCH))
            .await?;
        expect_status(&answer, 200)?;
        figures.warm_invocations.push(took);
    }
    let batched = rig.proxy.take();
    let warm_messages = WARM_DELIVERIES * BATCH;
    let cpu_per_message = (process.cpu_time()? - cpu_before) / warm_messages as u32;
    let log_bytes_per_message = (process.log_bytes() - logs_before) as f64 / warm_messages as f64;
    let first_single = (WARM_DELIVERIES + 1) * BATCH;
    let mut single_invocations = Vec::with_capacity(SINGLE_DELIVERIES);
    for i in first_single..first_single + SINGLE_DELIVERIES {
        let (answer, took) = process.invoke(&delivery(i..i + 1)).await?;
        expect_status(&answer, 200)?;
        single_invocations.push(took);
    }
    let single = rig.proxy.take();
    figures.peak_rss = process.peak_rss()?;
    figures.operations = operations(&[&cold, &batched, &single]);
    Ok(IngestFigures {
        process: figures,
        single_invocations,
        messages: users.len(),
        batched,
        single,
        cold,
        cpu_per_message,
        log_bytes_per_message,
    })
}

/// Feeds the inbound queue to ai-reply as Lambda's event source mapping does (batches of 10, failures
/// back on the queue) until every message has been answered.
async fn measure_reply(rig: &Rig, expected: usize) -> Result<ReplyFigures> {
    let (mut process, mut figures) = rig.start("ai-reply").await?;
    let sends_before = rig.platforms.count();
    let queue = &rig.provisioned.inbound_queue_url;
    let (cpu_before, logs_before) = (process.cpu_time()?, process.log_bytes());
    let started = std::time::Instant::now();
    let mut invocations = 0;
    let mut idle_polls = 0;
    while rig.platforms.count() - sends_before < expected {
        let Some(took) = deliver_batch(rig, &mut process, queue, "ai-reply").await? else {
            idle_polls += 1;
            if idle_polls > 60 {
                bail!(
                    "ai-reply answered {} of {expected} messages; the queue stayed empty",
                    rig.platforms.count() - sends_before
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        idle_polls = 0;
        if invocations == 0 {
            figures.cold_invocation = took;
        } else {
            figures.warm_invocations.push(took);
        }
        invocations += 1;
    }
    let replies = rig.platforms.count() - sends_before;
    let elapsed = started.elapsed();
    let counts = rig.proxy.take();
    figures.peak_rss = process.peak_rss()?;
    figures.operations = operations(&[&counts]);
    Ok(ReplyFigures {
        cpu_per_reply: (process.cpu_time()? - cpu_before) / replies as u32,
        log_bytes_per_reply: (process.log_bytes() - logs_before) as f64 / replies as f64,
        process: figures,
        replies,
        elapsed,
        invocations,
        counts,
    })
}

/// One batch from `queue`, handed to `process` as Lambda's event source mapping does and settled as it
/// would: returns the invocation's wall time, or `None` when the queue had nothing. A reported failure
/// fails the bench (its work is expected to succeed).
async fn deliver_batch(
    rig: &Rig,
    process: &mut LambdaProcess,
    queue: &str,
    function: &str,
) -> Result<Option<Duration>> {
    let batch = lambda::receive_batch(&rig.direct.sqs, queue).await?;
    if batch.is_empty() {
        return Ok(None);
    }
    let (answer, took) = process.invoke(&serde_json::to_value(&batch.event)?).await?;
    let response: SqsBatchResponse = match answer {
        Answer::Response(response) => serde_json::from_value(response)?,
        Answer::Error(error) => bail!("{function} failed: {error}"),
    };
    if !response.batch_item_failures.is_empty() {
        bail!(
            "{function} reported {} failed records",
            response.batch_item_failures.len()
        );
    }
    lambda::settle(
        &rig.direct.sqs,
        queue,
        batch,
        &response,
        Duration::from_secs(1),
    )
    .await?;
    Ok(Some(took))
}

async fn measure_data_deletion(rig: &Rig) -> Result<ProcessFigures> {
    let (mut process, mut figures) = rig.start("data-deletion").await?;
    for i in 0..20 {
        let signed = sign_request(
            demo_tenant::APP_SECRET,
            &json!({"algorithm": "HMAC-SHA256", "user_id": format!("meta-user-bench-{i}"),
                    "issued_at": time::OffsetDateTime::now_utc().unix_timestamp()}),
        );
        let body = format!("signed_request={signed}");
        let callback = http_event(
            "POST",
            "/meta/data-deletion",
            "",
            json!({"content-type": "application/x-www-form-urlencoded",
                   "host": "bench.execute-api.us-east-1.amazonaws.com"}),
            Some(&body),
        );
        let (answer, took) = process.invoke(&callback).await?;
        expect_status(&answer, 200)?;
        let Answer::Response(response) = answer else {
            unreachable!("expect_status passed")
        };
        let code = serde_json::from_str::<Value>(response["body"].as_str().unwrap_or("{}"))?
            ["confirmation_code"]
            .as_str()
            .context("a confirmation code")?
            .to_owned();
        let status_page = http_event(
            "GET",
            "/meta/deletion-status",
            &format!("code={code}"),
            json!({"accept": "text/html", "host": "bench.execute-api.us-east-1.amazonaws.com"}),
            None,
        );
        let (answer, status_took) = process.invoke(&status_page).await?;
        expect_status(&answer, 200)?;
        if i == 0 {
            figures.cold_invocation = took;
        } else {
            figures.warm_invocations.push(took);
        }
        figures.warm_invocations.push(status_took);
    }
    figures.peak_rss = process.peak_rss()?;
    figures.operations = operations(&[&rig.proxy.take()]);
    Ok(figures)
}

/// channel-connect's start and footprint: connect start pages opened without a link's state, answered
/// 400 before any AWS or platform call (a real connect needs a Meta login in a browser).
async fn measure_channel_connect(rig: &Rig) -> Result<ProcessFigures> {
    let (mut process, mut figures) = rig.start("channel-connect").await?;
    for i in 0..20 {
        let start_page = http_event(
            "GET",
            "/connect/meta/start",
            "",
            json!({"accept": "text/html", "host": "bench.execute-api.us-east-1.amazonaws.com"}),
            None,
        );
        let (answer, took) = process.invoke(&start_page).await?;
        expect_status(&answer, 400)?;
        if i == 0 {
            figures.cold_invocation = took;
        } else {
            figures.warm_invocations.push(took);
        }
    }
    figures.peak_rss = process.peak_rss()?;
    figures.operations = operations(&[&rig.proxy.take()]);
    Ok(figures)
}

async fn measure_retention_sweep(rig: &Rig) -> Result<ProcessFigures> {
    let (mut process, mut figures) = rig.start("retention-sweep").await?;
    let scheduled = json!({"version": "0", "id": new_id("ev"), "detail-type": "Scheduled Event",
        "source": "aws.events", "account": "123456789012", "time": "2026-11-24T03:17:00Z",
        "region": "us-east-1", "resources": ["arn:aws:events:us-east-1:123456789012:rule/daily-sweep"],
        "detail": {}});
    let (answer, took) = process.invoke(&scheduled).await?;
    if let Answer::Error(error) = answer {
        bail!("the scheduled fan-out failed: {error}");
    }
    figures.cold_invocation = took;
    // The fan-out queued a sweep per tenant and re-queued the open deletion requests: run them all.
    let queue = &rig.provisioned.erasure_queue_url;
    while let Some(took) = deliver_batch(rig, &mut process, queue, "retention-sweep").await? {
        figures.warm_invocations.push(took);
    }
    figures.peak_rss = process.peak_rss()?;
    figures.operations = operations(&[&rig.proxy.take()]);
    Ok(figures)
}

/// console-api under an agent's identity (the claims API Gateway's JWT authorizer passes on): pages of
/// 50 conversations, newest first, and a person's reply to each of the first conversations ingest
/// stored (inside the 24-hour window, so each is sent, to the platform stand-in on loopback).
async fn measure_console(rig: &Rig) -> Result<ConsoleFigures> {
    let (mut process, mut figures) = rig.start("console-api").await?;
    let claims = json!({"sub": "bench-agent", "custom:tenant_id": rig.demo.tenant.tenant_id.as_str(),
                        "cognito:groups": "[agent]", "email": "agent@bench.example"});
    let headers = json!({"host": "bench.execute-api.us-east-1.amazonaws.com", "content-type": "application/json"});
    let list = http_event_as(
        "GET",
        "/v1/conversations",
        "limit=50",
        headers.clone(),
        None,
        Some(claims.clone()),
    );
    let mut list_invocations = Vec::with_capacity(CONSOLE_REQUESTS);
    for i in 0..=CONSOLE_REQUESTS {
        let (answer, took) = process.invoke(&list).await?;
        expect_status(&answer, 200)?;
        if i == 0 {
            figures.cold_invocation = took;
            let page: Value = match &answer {
                Answer::Response(response) => {
                    serde_json::from_str(response["body"].as_str().unwrap_or("{}"))?
                }
                Answer::Error(error) => bail!("console-api failed: {error}"),
            };
            let items = page["items"].as_array().map_or(0, Vec::len);
            if items != 50 {
                bail!("a page of {items} conversations, not 50");
            }
            rig.proxy.take();
        } else {
            list_invocations.push(took);
        }
    }
    let list_counts = rig.proxy.take();
    let channel = rig
        .demo
        .channels
        .iter()
        .find(|c| c.platform == Platform::Messenger)
        .context("the demo tenant's Messenger channel")?;
    let mut reply_invocations = Vec::with_capacity(CONSOLE_REQUESTS);
    for i in 0..CONSOLE_REQUESTS {
        let user = PlatformUserId::new(format!("psid-bench-{i:05}"));
        let conversation = keys::conversation_id(&channel.channel_id, &user);
        let path = format!(
            "/v1/conversations/{}.{conversation}/messages",
            channel.channel_id
        );
        let mut headers = headers.clone();
        headers["idempotency-key"] = json!(new_id("idem"));
        let body =
            json!({"text": "A person here: yes, we are open until 18:00 today."}).to_string();
        let reply = http_event_as(
            "POST",
            &path,
            "",
            headers,
            Some(&body),
            Some(claims.clone()),
        );
        let (answer, took) = process.invoke(&reply).await?;
        expect_status(&answer, 201)?;
        reply_invocations.push(took);
    }
    let reply_counts = rig.proxy.take();
    figures.warm_invocations = list_invocations.clone();
    figures.peak_rss = process.peak_rss()?;
    figures.operations = operations(&[&list_counts, &reply_counts]);
    Ok(ConsoleFigures {
        process: figures,
        list_invocations,
        list_counts,
        reply_invocations,
        reply_counts,
    })
}
