//! `cargo xtask bench`: the performance report. Each function's release binary runs under a local
//! Lambda Runtime API stand-in, pointed through a counting proxy at the AWS emulator, and is fed real
//! work: webhook-ingest takes 1,000 customer messages in signed deliveries of 10 (and 10 single ones),
//! ai-reply answers every one of them from one warm process, data-deletion takes Meta callbacks and
//! status-page reads, retention-sweep runs the daily fan-out and the jobs it queues, channel-connect
//! answers connect start pages opened without a link (its start and RSS), console-api serves pages of 50
//! conversations and people's replies under an agent's identity. Criterion measures
//! the pure per-event work; cargo-lambda builds the zips. It prints a Markdown report with the targets,
//! and a cost per million messages computed from the measured counts and AWS list prices, with the
//! offline answerer's figures per language from its evaluation set.

mod aws_proxy;
mod cost;
mod iam;
mod measure;
mod report;
mod runtime_api;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::moto::Moto;
use crate::package;
use crate::tooling;
use aws_proxy::Counts;

/// Deliveries of 10 messages that webhook-ingest takes warm (after one cold delivery of 10).
const WARM_DELIVERIES: usize = 99;
const BATCH: usize = 10;
/// Single-message deliveries, for the calls per message when Meta does not batch.
const SINGLE_DELIVERIES: usize = 10;
/// Warm requests of each kind console-api is measured with.
const CONSOLE_REQUESTS: usize = 20;
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

const DEPLOYED: [Deployed; 6] = [
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
    Deployed {
        function: "channel-connect",
        resource: "ChannelConnectFunction",
        memory_mb: 256,
        timeout: Duration::from_secs(10),
    },
    Deployed {
        function: "console-api",
        resource: "ConsoleApiFunction",
        memory_mb: 256,
        timeout: Duration::from_secs(15),
    },
];

pub(crate) fn deployed(function: &str) -> &'static Deployed {
    DEPLOYED
        .iter()
        .find(|d| d.function == function)
        .expect("one of the six functions")
}

struct Targets;
impl Targets {
    const START_MS: f64 = 15.0;
    const RSS_MB: f64 = 30.0;
    const INGEST_US_PER_EVENT: f64 = 10.0;
    const AWS_CALLS_PER_MESSAGE: f64 = 1.2;
    /// Decrypts of one channel's data key per lifetime of the vault's cache: the cache works when each
    /// channel's key is fetched once per lifetime, however many replies go out meanwhile.
    const KMS_PER_CHANNEL_PER_CACHE_LIFETIME: f64 = 1.0;
    const ZIP_MB: f64 = 4.0;
    /// AWS calls of console-api's conversation list (a page of 50) and of a person's reply.
    const CONSOLE_LIST_CALLS: f64 = 2.0;
    const CONSOLE_REPLY_CALLS: f64 = 6.0;
    /// One offline decision over 500 knowledge entries.
    const OFFLINE_DECISION_US: f64 = 200.0;
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
    /// Wall time of the whole reply phase: the data-key cache expires on wall time, so a slow machine
    /// fetches a channel's key more than once.
    elapsed: Duration,
    invocations: usize,
    counts: Counts,
    cpu_per_reply: Duration,
    log_bytes_per_reply: f64,
}

struct ConsoleFigures {
    /// Its start, footprint and warm list invocations.
    process: ProcessFigures,
    /// `CONSOLE_REQUESTS` warm pages of 50 conversations, and their AWS calls.
    list_invocations: Vec<Duration>,
    list_counts: Counts,
    /// `CONSOLE_REQUESTS` people's replies (the platform stand-in answers on loopback), and their calls.
    reply_invocations: Vec<Duration>,
    reply_counts: Counts,
}

pub fn run() -> Result<ExitCode> {
    let root = tooling::repo_root();
    eprintln!("xtask bench: building the five functions (release, this machine's architecture)");
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
    eprintln!("xtask bench: the offline answerer's evaluation set");
    let evaluation = answerer_evaluation(&root)?;

    let own_moto = Moto::unless_endpoint_set()?;
    let runtime = tokio::runtime::Runtime::new()?;
    let measured = runtime.block_on(measure::measure_functions());
    drop(runtime);
    drop(own_moto);
    let (ingest, reply, console, others) = measured?;

    eprintln!("xtask bench: packaging (cargo lambda build --release --arm64)");
    let zips = package::package()?;

    let met = report::report(
        &criterion,
        &evaluation,
        &ingest,
        &reply,
        &console,
        &others,
        &zips,
    );
    Ok(if met {
        ExitCode::SUCCESS
    } else {
        eprintln!("xtask bench: some targets were missed (✘ above)");
        ExitCode::FAILURE
    })
}

/// The offline answerer's figures per language (tuned set, held out, without alternates), as its
/// evaluation test prints them; the test also fails the bench below the goal.
fn answerer_evaluation(root: &Path) -> Result<Vec<String>> {
    let output = Command::new(env!("CARGO"))
        .current_dir(root)
        .args([
            "test",
            "--package",
            "inbox-shared",
            "--test",
            "answerer_evaluation",
            "--",
            "--include-ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .output()
        .context("cargo test --test answerer_evaluation")?;
    let printed = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        anyhow::bail!("the answerer's evaluation failed:\n{printed}");
    }
    Ok(printed
        .lines()
        .filter(|line| line.contains(": precision "))
        .map(str::to_owned)
        .collect())
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
