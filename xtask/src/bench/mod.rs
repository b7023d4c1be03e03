//! `cargo xtask bench`: the performance report. Each function's release binary runs under a local
//! Lambda Runtime API stand-in, pointed through a counting proxy at the AWS emulator, and is fed real
//! work: webhook-ingest takes 1,000 customer messages in signed deliveries of 10 (and 10 single ones),
//! ai-reply answers every one of them from one warm process, data-deletion takes Meta callbacks and
//! status-page reads, retention-sweep runs the daily fan-out and the jobs it queues. Criterion measures
//! the pure per-event work; cargo-lambda builds the zips. It prints a Markdown report with the targets,
//! and a cost per million messages computed from the measured counts and AWS list prices.

mod aws_proxy;
mod cost;
mod runtime_api;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use aws_lambda_events::event::sqs::SqsBatchResponse;
use inbox_shared::aws::AwsClients;
use inbox_shared::clock;
use inbox_shared::ids::new_id;
use inbox_shared::lambda;
use inbox_shared::model::AiMode;
use inbox_shared::platform::signature::meta_signature;
use inbox_shared::platform::signed_request::sign_request;
use inbox_shared::provision::{self, ProvisionPlan, Provisioned};
use inbox_shared::store::Store;
use inbox_shared::vault::TokenVault;
use serde_json::{Value, json};

use crate::demo_tenant::{self, DemoTenant, PlatformStandIn};
use crate::moto::Moto;
use crate::package;
use crate::tooling;
use aws_proxy::{AwsProxy, Counts};
use cost::PerMessage;
use runtime_api::{Answer, LambdaProcess};

/// Deliveries of 10 messages that webhook-ingest takes warm (after one cold delivery of 10).
const WARM_DELIVERIES: usize = 99;
const BATCH: usize = 10;
/// Single-message deliveries, for the calls per message when Meta does not batch.
const SINGLE_DELIVERIES: usize = 10;
/// Cold starts measured per function (the report gives their median and range).
const STARTS: usize = 7;
/// Each function as `infra/template.yaml` deploys it: its resource, the memory Lambda bills by, and its
/// timeout (the invocation deadline it is handed).
pub(crate) struct Deployed {
    function: &'static str,
    resource: &'static str,
    memory_mb: u32,
    pub(crate) timeout: Duration,
}

const DEPLOYED: [Deployed; 4] = [
    Deployed {
        function: "webhook-ingest",
        resource: "WebhookIngestFunction",
        memory_mb: 256,
        timeout: Duration::from_secs(10),
    },
    Deployed {
        function: "ai-reply",
        resource: "AiReplyFunction",
        memory_mb: 256,
        timeout: Duration::from_secs(30),
    },
    Deployed {
        function: "data-deletion",
        resource: "DataDeletionFunction",
        memory_mb: 256,
        timeout: Duration::from_secs(10),
    },
    Deployed {
        function: "retention-sweep",
        resource: "RetentionSweepFunction",
        memory_mb: 512,
        timeout: Duration::from_secs(900),
    },
];

pub(crate) fn deployed(function: &str) -> &'static Deployed {
    DEPLOYED
        .iter()
        .find(|d| d.function == function)
        .expect("one of the four functions")
}

struct Targets;
impl Targets {
    const START_MS: f64 = 15.0;
    const RSS_MB: f64 = 30.0;
    const INGEST_US_PER_EVENT: f64 = 10.0;
    const AWS_CALLS_PER_MESSAGE: f64 = 1.2;
    const KMS_PER_1000_REPLIES: f64 = 1.0;
    const ZIP_MB: f64 = 4.0;
}

/// What one function process measured.
#[derive(Debug, Default)]
struct ProcessFigures {
    /// Process start to the first poll for an invocation, one per cold start, sorted.
    starts: Vec<Duration>,
    peak_rss: u64,
    cold_invocation: Duration,
    warm_invocations: Vec<Duration>,
    /// Every AWS operation the process called, for checking its IAM policy in the template.
    operations: Vec<String>,
}

impl ProcessFigures {
    fn warm_median(&self) -> Duration {
        median(&self.warm_invocations)
    }

    fn start_median(&self) -> Duration {
        median(&self.starts)
    }
}

fn median(samples: &[Duration]) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}

struct IngestFigures {
    process: ProcessFigures,
    /// Wall times of the single-message deliveries.
    single_invocations: Vec<Duration>,
    messages: usize,
    /// Calls of the warm deliveries of 10 (counts cover `WARM_DELIVERIES * BATCH` messages).
    batched: Counts,
    single: Counts,
    cold: Counts,
    cpu_per_message: Duration,
    log_bytes_per_message: f64,
}

struct ReplyFigures {
    process: ProcessFigures,
    replies: usize,
    invocations: usize,
    counts: Counts,
    cpu_per_reply: Duration,
    log_bytes_per_reply: f64,
}

pub fn run() -> Result<ExitCode> {
    let root = tooling::repo_root();
    eprintln!("xtask bench: building the four functions (release, this machine's architecture)");
    let mut build = Command::new(env!("CARGO"));
    build.current_dir(&root).args(["build", "--release"]);
    for function in package::FUNCTIONS {
        build.args(["--package", function]);
    }
    tooling::run(&mut build).context("cargo build --release")?;

    eprintln!("xtask bench: criterion (webhook verify+parse, reply preparation)");
    tooling::run(Command::new(env!("CARGO")).current_dir(&root).args([
        "bench",
        "--package",
        "inbox-shared",
        "--bench",
        "webhook_parse",
        "--bench",
        "reply_prep",
    ]))
    .context("cargo bench")?;
    let criterion = criterion_estimates(&target_dir().join("criterion"))?;

    let own_moto = Moto::unless_endpoint_set()?;
    let runtime = tokio::runtime::Runtime::new()?;
    let measured = runtime.block_on(measure_functions());
    drop(runtime);
    drop(own_moto);
    let (ingest, reply, others) = measured?;

    eprintln!("xtask bench: packaging (cargo lambda build --release --arm64)");
    let zips = package::package()?;

    let met = report(&criterion, &ingest, &reply, &others, &zips);
    Ok(if met {
        ExitCode::SUCCESS
    } else {
        eprintln!("xtask bench: some targets were missed (✘ above)");
        ExitCode::FAILURE
    })
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| tooling::repo_root().join("target"))
}

/// Criterion's mean estimate (ns) of every benchmark, by its full id.
fn criterion_estimates(dir: &Path) -> Result<BTreeMap<String, f64>> {
    let mut estimates = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?
        {
            let path = entry?.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n == "new") {
                    let benchmark: Value =
                        serde_json::from_slice(&std::fs::read(path.join("benchmark.json"))?)?;
                    let estimate: Value =
                        serde_json::from_slice(&std::fs::read(path.join("estimates.json"))?)?;
                    if let (Some(id), Some(mean)) = (
                        benchmark["full_id"].as_str(),
                        estimate["mean"]["point_estimate"].as_f64(),
                    ) {
                        estimates.insert(id.to_owned(), mean);
                    }
                } else {
                    pending.push(path);
                }
            }
        }
    }
    Ok(estimates)
}

fn binary(function: &str) -> PathBuf {
    target_dir().join("release").join(function)
}

/// The isolated resources, demo tenant and stand-ins the function processes run against.
struct Rig {
    proxy: AwsProxy,
    direct: AwsClients,
    provisioned: Provisioned,
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
        DemoTenant::create(&store, &vault, AiMode::Auto).await?;
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
            ("RUST_LOG", "info".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        Ok(Self {
            proxy,
            direct,
            provisioned,
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

async fn measure_functions() -> Result<(IngestFigures, ReplyFigures, Vec<(String, ProcessFigures)>)>
{
    let rig = Rig::new().await?;
    eprintln!("xtask bench: webhook-ingest, 1,010 messages");
    let ingest = measure_ingest(&rig).await?;
    eprintln!("xtask bench: ai-reply, one reply to each of them");
    let reply = measure_reply(&rig, ingest.messages).await?;
    eprintln!("xtask bench: data-deletion and retention-sweep");
    let deletion = measure_data_deletion(&rig).await?;
    let sweep = measure_retention_sweep(&rig).await?;
    Ok((
        ingest,
        reply,
        vec![
            ("data-deletion".to_owned(), deletion),
            ("retention-sweep".to_owned(), sweep),
        ],
    ))
}

/// An API Gateway HTTP API (payload 2.0) request event, as Lambda hands it to `lambda_http`.
fn http_event(method: &str, path: &str, query: &str, headers: Value, body: Option<&str>) -> Value {
    json!({
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
    })
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
    let counts = rig.proxy.take();
    figures.peak_rss = process.peak_rss()?;
    figures.operations = operations(&[&counts]);
    Ok(ReplyFigures {
        cpu_per_reply: (process.cpu_time()? - cpu_before) / replies as u32,
        log_bytes_per_reply: (process.log_bytes() - logs_before) as f64 / replies as f64,
        process: figures,
        replies,
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

/// The IAM action that allows an API operation (`DynamoDB_20120810.GetItem` → `dynamodb:GetItem`), and
/// the template resource it is called on: the table, a queue, or the token key (the functions' own KMS
/// calls are the token vault's; the data key only encrypts the table, queues and logs for AWS).
fn iam_action(operation: &str) -> (String, &'static str) {
    match operation.split_once('.') {
        Some(("AmazonSQS", "SendMessageBatch")) => ("sqs:SendMessage".into(), "Queue"),
        Some(("AmazonSQS", name)) => (format!("sqs:{name}"), "Queue"),
        Some(("TrentService", name)) => (format!("kms:{name}"), "TokenKey"),
        Some((_, name)) => (format!("dynamodb:{name}"), "Table"),
        None => (operation.into(), ""),
    }
}

/// The operations `function` called that no statement of its policy in `template` allows on the right
/// resource (its statements: the `- Effect:` items of the resource's block, which runs to the next line
/// indented by two spaces).
fn ungranted(template: &str, function: &str, operations: &[String]) -> Vec<String> {
    let resource = deployed(function).resource;
    let block: String = template
        .lines()
        .skip_while(|line| line.trim_end() != format!("  {resource}:"))
        .skip(1)
        .take_while(|line| !line.starts_with("  ") || line.starts_with("   "))
        .collect::<Vec<_>>()
        .join("\n");
    let statements: Vec<&str> = block.split("- Effect:").skip(1).collect();
    operations
        .iter()
        .map(|operation| iam_action(operation))
        .filter(|(action, on)| {
            !statements
                .iter()
                .any(|statement| statement.contains(action.as_str()) && statement.contains(on))
        })
        .map(|(action, _)| action)
        .collect()
}

fn operations(counts: &[&Counts]) -> Vec<String> {
    let mut operations: Vec<String> = counts
        .iter()
        .flat_map(|c| c.calls.keys().cloned())
        .collect();
    operations.sort();
    operations.dedup();
    operations
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1_000_000.0
}

fn verdict(met: bool) -> &'static str {
    if met { "✔" } else { "✘" }
}

/// Prints the report; returns whether every target was met.
fn report(
    criterion: &BTreeMap<String, f64>,
    ingest: &IngestFigures,
    reply: &ReplyFigures,
    others: &[(String, ProcessFigures)],
    zips: &[(&str, PathBuf, u64)],
) -> bool {
    let mut all_met = true;
    let mut check = |met: bool| {
        all_met &= met;
        verdict(met)
    };
    let machine = machine_description();
    println!("\n## Performance report\n");
    println!(
        "Measured {} on {machine}. Processes are the release binaries for this machine's architecture \
         under a local Lambda Runtime API; AWS is moto behind a counting proxy.\n",
        time::OffsetDateTime::now_utc().date()
    );
    println!(
        "| function | start → ready, median of {STARTS} (range) | peak RSS | first invocation | warm invocation (median) | zip (arm64) |"
    );
    println!("|---|---|---|---|---|---|");
    let processes: Vec<(&str, &ProcessFigures)> = [
        ("webhook-ingest", &ingest.process),
        ("ai-reply", &reply.process),
    ]
    .into_iter()
    .chain(
        others
            .iter()
            .map(|(name, figures)| (name.as_str(), figures)),
    )
    .collect();
    for (function, figures) in &processes {
        let zip = zips
            .iter()
            .find(|(name, _, _)| name == function)
            .map_or(0, |(_, _, size)| *size);
        println!(
            "| {function} | {:.1} ms ({:.1}–{:.1}) {} | {:.1} MB {} | {:.1} ms | {:.1} ms | {:.2} MB {} |",
            ms(figures.start_median()),
            ms(figures.starts[0]),
            ms(figures.starts[figures.starts.len() - 1]),
            check(ms(figures.start_median()) <= Targets::START_MS),
            mb(figures.peak_rss),
            check(mb(figures.peak_rss) <= Targets::RSS_MB),
            ms(figures.cold_invocation),
            ms(figures.warm_median()),
            mb(zip),
            check(mb(zip) <= Targets::ZIP_MB),
        );
    }
    println!(
        "\n| function | AWS operations it called | granted by its policy in infra/template.yaml |\n|---|---|---|"
    );
    let template = std::fs::read_to_string(tooling::repo_root().join(crate::infra::TEMPLATE))
        .unwrap_or_default();
    for (function, figures) in &processes {
        let missing = ungranted(&template, function, &figures.operations);
        let granted = if missing.is_empty() {
            format!("all {}", check(true))
        } else {
            format!("{} missing {}", check(false), missing.join(", "))
        };
        println!(
            "| {function} | {} | {granted} |",
            figures.operations.join(", ")
        );
    }
    println!(
        "\nEach process here has a whole core, while Lambda gives 256 MB about a seventh of a vCPU, so \
         CPU-bound work (start-up included) is slower there; invocation times are mostly moto's round \
         trips (a Python emulator serving one request at a time), far slower than DynamoDB's.\n"
    );

    println!("### webhook-ingest\n");
    println!("| measure | figure | target |");
    println!("|---|---|---|");
    for (platform, label) in [
        ("messenger", "Messenger"),
        ("whatsapp", "WhatsApp"),
        ("line", "LINE"),
    ] {
        if let (Some(one), Some(hundred)) = (
            criterion.get(&format!("verify+parse/{platform}/1")),
            criterion.get(&format!("verify+parse/{platform}/100")),
        ) {
            let one_us = one / 1000.0;
            println!(
                "| verify + parse, {label}: 1 event / 100 events per delivery (criterion) | {one_us:.2} µs / {:.2} µs per event | ≤ {} µs {} |",
                hundred / 100_000.0,
                Targets::INGEST_US_PER_EVENT,
                check(one_us <= Targets::INGEST_US_PER_EVENT),
            );
        }
    }
    let warm_messages = (WARM_DELIVERIES * BATCH) as f64;
    let per_message = ingest.batched.total() as f64 / warm_messages;
    println!(
        "| AWS calls per message, deliveries of 10, warm | {per_message:.2} ({}) | ≤ {} {} |",
        ingest.batched.describe(),
        Targets::AWS_CALLS_PER_MESSAGE,
        check(per_message <= Targets::AWS_CALLS_PER_MESSAGE),
    );
    println!(
        "| AWS calls per message, single-message deliveries, warm | {:.2} ({}) | |",
        ingest.single.total() as f64 / SINGLE_DELIVERIES as f64,
        ingest.single.describe(),
    );
    println!(
        "| AWS calls of the first delivery of 10 (route cache cold) | {} ({}) | |",
        ingest.cold.total(),
        ingest.cold.describe(),
    );
    println!(
        "| DynamoDB capacity per message (estimated) | {:.2} WRU, {:.2} RRU | |",
        ingest.batched.write_units / warm_messages,
        ingest.batched.read_units / warm_messages,
    );
    println!(
        "| CPU time per message in the process (SDK, signing, JSON included) | {:.0} µs | |",
        ingest.cpu_per_message.as_secs_f64() * 1e6
    );
    println!(
        "| log bytes per message | {:.0} | |\n",
        ingest.log_bytes_per_message
    );

    println!("### ai-reply\n");
    println!("| measure | figure | target |");
    println!("|---|---|---|");
    let replies = reply.replies as f64;
    let kms = reply.counts.of_service("TrentService") as f64;
    let kms_per_1000 = kms / replies * 1000.0;
    println!(
        "| KMS calls per 1,000 replies, one warm process ({} replies) | {kms_per_1000:.2} | ≤ {} {} |",
        reply.replies,
        Targets::KMS_PER_1000_REPLIES,
        check(kms_per_1000 <= Targets::KMS_PER_1000_REPLIES),
    );
    println!(
        "| AWS calls per reply | {:.2} ({}) | |",
        reply.counts.total() as f64 / replies,
        reply.counts.describe()
    );
    println!(
        "| DynamoDB capacity per reply (estimated) | {:.2} WRU, {:.2} RRU | |",
        reply.counts.write_units / replies,
        reply.counts.read_units / replies,
    );
    if let Some(prep) = criterion
        .iter()
        .find(|(id, _)| id.starts_with("reply preparation"))
        .map(|(_, ns)| ns)
    {
        println!(
            "| per-message work excluding the provider: ranking 50 entries, masking, prompt of 30 messages (criterion) | {:.1} µs | |",
            prep / 1000.0
        );
    }
    println!(
        "| CPU time per reply in the process (offline provider, SDK, send included) | {:.0} µs | |",
        reply.cpu_per_reply.as_secs_f64() * 1e6
    );
    println!(
        "| wall time per reply against moto, excluding the provider ({} invocations of ≤ 10) | {:.1} ms | |",
        reply.invocations,
        ms(reply.process.warm_median()) / BATCH as f64
    );
    println!(
        "| log bytes per reply | {:.0} | |\n",
        reply.log_bytes_per_reply
    );

    print_cost(ingest, reply);
    all_met
}

fn print_cost(ingest: &IngestFigures, reply: &ReplyFigures) {
    let warm_messages = (WARM_DELIVERIES * BATCH) as f64;
    let ingest_stage =
        |http_requests: f64, invocation: Duration, counts: &Counts, messages: f64| PerMessage {
            http_requests,
            invocations: http_requests,
            billed_ms_per_invocation: ms(invocation),
            memory_mb: f64::from(deployed("webhook-ingest").memory_mb),
            write_units: counts.write_units / messages,
            read_units: counts.read_units / messages,
            sqs_requests: counts.of_service("AmazonSQS") as f64 / messages,
            kms_requests: counts.of_service("TrentService") as f64 / messages,
            log_bytes: ingest.log_bytes_per_message,
        };
    let replies = reply.replies as f64;
    // ai-reply with `records` per invocation: the batch of 10 measured, or one record at a time (a
    // tenth of it: moto serves the records of a batch one after the other).
    let reply_stage = |records: f64| PerMessage {
        http_requests: 0.0,
        invocations: 1.0 / records,
        billed_ms_per_invocation: ms(reply.process.warm_median()) * records / BATCH as f64,
        memory_mb: f64::from(deployed("ai-reply").memory_mb),
        write_units: reply.counts.write_units / replies,
        read_units: reply.counts.read_units / replies,
        // Lambda's event source mapping: one ReceiveMessage and one DeleteMessageBatch per batch.
        sqs_requests: 2.0 / records,
        kms_requests: reply.counts.of_service("TrentService") as f64 / replies,
        log_bytes: reply.log_bytes_per_reply,
    };
    let batched = cost::per_million(
        &[
            ingest_stage(
                1.0 / BATCH as f64,
                ingest.process.warm_median(),
                &ingest.batched,
                warm_messages,
            ),
            reply_stage(BATCH as f64),
        ],
        &cost::LIST_PRICES,
    );
    let single = cost::per_million(
        &[
            ingest_stage(
                1.0,
                median(&ingest.single_invocations),
                &ingest.single,
                SINGLE_DELIVERIES as f64,
            ),
            reply_stage(1.0),
        ],
        &cost::LIST_PRICES,
    );
    println!(
        "### Cost per million messages, each answered by the AI (AWS list prices, us-east-1)\n"
    );
    println!(
        "| item | busy: 10 messages per delivery and per ai-reply batch | quiet: one message at a time |"
    );
    println!("|---|---|---|");
    for ((item, batched), (_, single)) in batched.items.iter().zip(&single.items) {
        println!("| {item} | ${batched:.2} | ${single:.2} |");
    }
    println!(
        "| **total, excluding the LLM provider** | **${:.2}** | **${:.2}** |\n",
        batched.total(),
        single.total()
    );
    println!(
        "Lambda durations are the warm medians measured against moto; DynamoDB units are estimated from \
         the requests (items under 1 KiB in these tests, index writes included); ai-reply's SQS requests are those of Lambda's \
         event source mapping (a receive and a delete per batch). Each second ai-reply waits for an LLM adds \
         ${:.2} per million replies; the provider's token price comes on top. Fixed monthly costs (two KMS \
         keys at $1, alarms, idle queue polling) and storage ($0.25 per GB-month) are not per message.",
        cost::llm_wait_per_second(
            f64::from(deployed("ai-reply").memory_mb),
            &cost::LIST_PRICES
        )
    );
}

/// "N cores (CPU model), M GiB" from /proc.
fn machine_description() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpu
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| std::env::consts::ARCH.to_owned());
    let memory_gib = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    format!(
        "{} cores ({model}, {}), {memory_gib:.0} GiB",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::env::consts::ARCH
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_the_functions_call_is_matched_against_their_own_policy() {
        let template = std::fs::read_to_string(tooling::repo_root().join(crate::infra::TEMPLATE))
            .expect("the template");
        let called = |ops: &[&str]| ops.iter().map(|o| o.to_string()).collect::<Vec<_>>();
        assert!(
            ungranted(
                &template,
                "webhook-ingest",
                &called(&[
                    "DynamoDB_20120810.TransactWriteItems",
                    "AmazonSQS.SendMessageBatch"
                ])
            )
            .is_empty()
        );
        // Only webhook-ingest and ai-reply may decrypt with the token key; the sweep may not even
        // though its policy names other actions further down the template.
        assert_eq!(
            ungranted(
                &template,
                "retention-sweep",
                &called(&["TrentService.Decrypt"])
            ),
            ["kms:Decrypt"]
        );
        assert_eq!(
            ungranted(
                &template,
                "data-deletion",
                &called(&["DynamoDB_20120810.BatchWriteItem"])
            ),
            ["dynamodb:BatchWriteItem"]
        );
    }
}
