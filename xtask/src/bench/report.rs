//! The Markdown report: the figures against their targets, and the cost per million messages.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::aws_proxy::Counts;
use super::cost::{self, PerMessage};
use super::iam::ungranted;
use super::{
    BATCH, CONSOLE_REQUESTS, ConsoleFigures, IngestFigures, ProcessFigures, ReplyFigures,
    SINGLE_DELIVERIES, STARTS, Targets, WARM_DELIVERIES, deployed, median,
};
use crate::tooling;

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
pub(super) fn report(
    criterion: &BTreeMap<String, f64>,
    evaluation: &[String],
    ingest: &IngestFigures,
    reply: &ReplyFigures,
    console: &ConsoleFigures,
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
        ("console-api", &console.process),
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
    // Every bench message goes to the demo Page: one channel, one data key.
    let cache_ttl = inbox_shared::vault::CachePolicy::default().ttl;
    let lifetimes = (reply.elapsed.as_secs_f64() / cache_ttl.as_secs_f64())
        .ceil()
        .max(1.0);
    let kms_per_lifetime = kms / lifetimes;
    println!(
        "| KMS calls per channel per {}-minute data-key cache lifetime, one warm process ({} replies in {:.0} s) | {kms_per_lifetime:.2} | ≤ {} {} |",
        cache_ttl.as_secs() / 60,
        reply.replies,
        reply.elapsed.as_secs_f64(),
        Targets::KMS_PER_CHANNEL_PER_CACHE_LIFETIME,
        check(kms_per_lifetime <= Targets::KMS_PER_CHANNEL_PER_CACHE_LIFETIME),
    );
    println!(
        "| KMS calls per 1,000 replies (depends on how fast this machine replies) | {:.2} | |",
        kms / replies * 1000.0
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

    println!("### console-api\n");
    println!("| measure | figure | target |");
    println!("|---|---|---|");
    let requests = CONSOLE_REQUESTS as f64;
    for (what, invocations, counts, target) in [
        (
            "`GET /v1/conversations?limit=50`",
            &console.list_invocations,
            &console.list_counts,
            Targets::CONSOLE_LIST_CALLS,
        ),
        (
            "a person's reply (the platform is a loopback stand-in answering at once)",
            &console.reply_invocations,
            &console.reply_counts,
            Targets::CONSOLE_REPLY_CALLS,
        ),
    ] {
        let calls = counts.total() as f64 / requests;
        println!(
            "| {what}, warm (median / slowest of {CONSOLE_REQUESTS}) | {:.1} ms / {:.1} ms | |",
            ms(median(invocations)),
            ms(invocations.iter().max().copied().unwrap_or_default()),
        );
        println!(
            "| AWS calls per request | {calls:.2} ({}) | ≤ {target} {} |",
            counts.describe(),
            check(calls <= target),
        );
    }
    println!();

    println!("### The offline answerer\n");
    println!("| measure | figure | target |");
    println!("|---|---|---|");
    let decisions: Vec<f64> = criterion
        .iter()
        .filter(|(id, _)| id.starts_with("offline decision (500 entries)"))
        .map(|(_, ns)| ns / 1000.0)
        .collect();
    if let Some(slowest) = decisions.iter().copied().reduce(f64::max) {
        println!(
            "| one decision over 500 entries in five languages, slowest of {} questions (criterion) | {slowest:.1} µs | ≤ {} µs {} |",
            decisions.len(),
            Targets::OFFLINE_DECISION_US,
            check(slowest <= Targets::OFFLINE_DECISION_US),
        );
    }
    if let Some(build) = criterion.get("offline index build (500 entries)") {
        println!(
            "| building the index of 500 entries, once per tenant and knowledge version in a warm container (criterion) | {:.1} ms | |",
            build / 1e6
        );
    }
    println!(
        "\nThe evaluation set (`tests/fixtures/answerer/`, goal per language: precision ≥ 0.98, recall ≥ 0.80, no negative answered):\n"
    );
    for line in evaluation {
        println!("- {line}");
    }
    println!();

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
