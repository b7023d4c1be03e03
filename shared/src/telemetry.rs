//! Logs and metrics.
//!
//! Logs are JSON lines through `tracing` (CloudWatch indexes the fields). No field ever carries a
//! token, a secret or message text: those types print as placeholders (see [`crate::secret`]), and log
//! calls record ids and counts only.
//!
//! Metrics use CloudWatch's embedded metric format: counts accumulate in a [`Metrics`] during an
//! invocation and [`Metrics::flush`] prints them as one EMF line on stdout, which Lambda ships to
//! CloudWatch Logs and CloudWatch turns into metrics without any API call on the request path.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tracing_subscriber::EnvFilter;

/// The CloudWatch namespace of every metric.
pub const NAMESPACE: &str = "Inbox";

/// Libraries that log whole HTTP requests and responses at debug or trace level: the AWS SDK's runtime
/// prints DynamoDB items (message text) and the HTTP stack prints bodies and headers (tokens, API keys).
/// They are held at `info` whatever `RUST_LOG` says, so no setting can put content into the logs.
const WIRE_LOGGERS: &[&str] = &[
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http",
    "aws_smithy_http_client",
    "aws_smithy_types",
    "aws_sigv4",
    "hyper",
    "hyper_util",
    "h2",
    "reqwest",
    "rustls",
];

/// The log filter: `RUST_LOG` (or `default` when unset) with the wire-level loggers held at `info`.
pub fn log_filter(default: &str) -> EnvFilter {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    WIRE_LOGGERS.iter().fold(filter, |filter, target| {
        filter.add_directive(
            format!("{target}=info")
                .parse()
                .expect("a valid log directive"),
        )
    })
}

/// How a platform message id appears in logs: a digest, because some ids carry personal data (a
/// WhatsApp `wamid` encodes the customer's phone number). The same id always gives the same reference,
/// so one message is still followed from webhook-ingest's lines to ai-reply's.
pub fn message_ref(platform_message_id: &str) -> String {
    let digest =
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, platform_message_id.as_bytes());
    format!("mref_{}", hex::encode(&digest.as_ref()[..8]))
}

/// JSON logs for a Lambda function (level from `RUST_LOG`, default `info`) on stderr.
pub fn init_json_logs() {
    init_json_logs_at("info");
}

/// JSON logs on stderr, `default_level` when `RUST_LOG` is unset.
pub fn init_json_logs_at(default_level: &str) {
    // A second init (tests, local stack hosting several functions) keeps the first subscriber.
    let _ =
        tracing::subscriber::set_global_default(json_subscriber(default_level, std::io::stderr));
}

/// The JSON log subscriber writing to `writer` (tests capture the lines with their own writer).
///
/// Each line carries the fields of every span it was logged in, outermost first (`spans`): the
/// runner's `invocation` (request and trace ids), then a function's per-record spans (tenant, channel,
/// conversation and message ids). So one customer message is followed by its `message_id` from
/// webhook-ingest's line to ai-reply's. Spans carry ids only, as log calls do.
pub fn json_subscriber<W>(default_level: &str, writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(log_filter(default_level))
        .with_current_span(false)
        .with_span_list(true)
        .with_ansi(false)
        .with_writer(writer)
        .finish()
}

/// JSON log lines kept in memory, so a test asserts what a function logs (and that it logs no content).
#[derive(Debug, Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// Captures this thread's log lines, as a function writes them (JSON, `info` unless `RUST_LOG`
    /// says otherwise), until the guard is dropped.
    pub fn start() -> (Self, tracing::subscriber::DefaultGuard) {
        Self::at("info")
    }

    /// As [`CapturedLogs::start`], `default_level` when `RUST_LOG` is unset.
    pub fn at(default_level: &str) -> (Self, tracing::subscriber::DefaultGuard) {
        // Tests run concurrently on their own threads, most without a subscriber: a log call first
        // reached by one of those can be cached as never enabled, and this thread's capture would
        // miss it. A process-wide subscriber that leaves every call undecided makes each one ask the
        // thread's own subscriber.
        let _ = tracing::subscriber::set_global_default(Undecided);
        let logs = Self::default();
        let writer = logs.clone();
        let guard = tracing::subscriber::set_default(json_subscriber(default_level, move || {
            writer.clone()
        }));
        tracing::callsite::rebuild_interest_cache();
        (logs, guard)
    }

    /// Every line so far, parsed.
    pub fn lines(&self) -> Vec<serde_json::Value> {
        let bytes = self.0.lock().expect("log capture poisoned").clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(|line| serde_json::from_str(line).expect("a JSON log line"))
            .collect()
    }
}

/// Enables nothing, decides nothing ahead: see [`CapturedLogs::at`].
struct Undecided;

impl tracing::Subscriber for Undecided {
    fn register_callsite(
        &self,
        _: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        tracing::subscriber::Interest::sometimes()
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::TRACE)
    }

    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        false
    }

    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, _: &tracing::Event<'_>) {}

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

impl std::io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .expect("log capture poisoned")
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Short human-readable logs for command-line tools (level from `RUST_LOG`, default `warn`).
pub fn init_cli_logs() {
    let filter = log_filter("warn");
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Counters of one function, flushed as one EMF document.
#[derive(Debug)]
pub struct Metrics {
    function: &'static str,
    counts: Mutex<BTreeMap<&'static str, f64>>,
}

impl Metrics {
    pub fn new(function: &'static str) -> Self {
        Self {
            function,
            counts: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn count(&self, name: &'static str, n: u64) {
        *self
            .counts
            .lock()
            .expect("metrics lock poisoned")
            .entry(name)
            .or_default() += n as f64;
    }

    /// The counts so far (tests read them).
    pub fn snapshot(&self) -> BTreeMap<&'static str, f64> {
        self.counts.lock().expect("metrics lock poisoned").clone()
    }

    /// Takes the counts and renders them as an EMF document; `None` when nothing was counted.
    pub fn take_emf(&self, timestamp_ms: i64) -> Option<String> {
        let counts = std::mem::take(&mut *self.counts.lock().expect("metrics lock poisoned"));
        if counts.is_empty() {
            return None;
        }
        let definitions: Vec<_> = counts
            .keys()
            .map(|name| serde_json::json!({"Name": name, "Unit": "Count"}))
            .collect();
        let mut doc = serde_json::json!({
            "_aws": {
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [["Function"]],
                    "Metrics": definitions,
                }],
            },
            "Function": self.function,
        });
        for (name, value) in counts {
            doc[name] = serde_json::json!(value);
        }
        Some(doc.to_string())
    }

    /// Prints the counts as one EMF line on stdout and resets them.
    pub fn flush(&self, timestamp_ms: i64) {
        if let Some(line) = self.take_emf(timestamp_ms) {
            println!("{line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_document_names_each_metric_and_resets() {
        let m = Metrics::new("webhook-ingest");
        m.count("UnknownObject", 1);
        m.count("UnknownObject", 2);
        m.count("Ingested", 5);
        let doc: serde_json::Value =
            serde_json::from_str(&m.take_emf(1_767_225_600_000).unwrap()).unwrap();
        assert_eq!(doc["UnknownObject"], 3.0);
        assert_eq!(doc["Ingested"], 5.0);
        assert_eq!(doc["Function"], "webhook-ingest");
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        assert!(m.take_emf(0).is_none());
    }
}
