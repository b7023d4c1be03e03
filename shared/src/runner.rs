//! The one way the four functions run, on Lambda and in the local stack.
//!
//! A function's `main` sets up logs, builds its handler once (clients, caches, the HTTP pool) and hands
//! it to [`run_http`] or [`run_events`]. For each invocation the runner then:
//! - opens the `invocation` span (`function`, `request_id`, `xray_trace_id`) that every log line of the
//!   invocation carries, so a line found by a message id leads to the Lambda request and its trace;
//! - turns `Context::deadline` (epoch milliseconds) into an `Instant` the handler budgets against;
//! - flushes the function's [`Metrics`] as one EMF line when the invocation ends, failed or not;
//! - reports a failed invocation to the runtime as a [`Diagnostic`] whose `error_type` is its
//!   [`Category`] (`Retryable` or `Permanent`) and whose message is the error's `Display`, which by the
//!   project's rule names ids and causes, never content; the same line is logged at ERROR.
//!
//! `cargo xtask serve` drives the same [`invoke_http`] and [`invoke_events`] with an [`Invocation`] made
//! locally, so what a function logs there is what it logs deployed.
//!
//! Every span of the functions (this one, and their per-record spans) is at ERROR level, the level a
//! span needs to be recorded under any `RUST_LOG` but `off`: at `warn`, a warning still names its ids.
//!
//! The runtime's own per-invocation span (`lambda_runtime::run` adds one) is left out: ours carries the
//! same ids under the names the rest of the logs use, and every line would otherwise carry them twice.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::time::Duration;

use lambda_runtime::{Context, Diagnostic, LambdaEvent};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;
use tracing::Instrument;

use crate::telemetry::Metrics;

/// Whether a failed invocation can succeed when tried again: what the runtime is told as `errorType`,
/// so an alarm or a retry policy can tell an outage from a bad event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// An outage, throttling, a timeout: the same event may succeed later.
    Retryable,
    /// The event itself is wrong: it fails the same way every time.
    Permanent,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Retryable => "Retryable",
            Category::Permanent => "Permanent",
        }
    }
}

/// An invocation's failure: its category, and a `Display` with ids and causes only (no content).
pub trait Failure: fmt::Display {
    fn category(&self) -> Category;
}

/// A function that never fails a whole invocation (its failures are responses or per-record reports).
impl Failure for Infallible {
    fn category(&self) -> Category {
        match *self {}
    }
}

/// What the runtime is told about a failed invocation.
pub fn diagnostic(failure: &impl Failure) -> Diagnostic {
    Diagnostic {
        error_type: failure.category().as_str().to_owned(),
        error_message: failure.to_string(),
    }
}

/// What the runner needs of every function: its name and its metrics.
pub trait Function: Send + Sync {
    const NAME: &'static str;
    fn metrics(&self) -> &Metrics;
}

/// A function behind API Gateway: every outcome is an HTTP response (a 5xx logs its cause).
pub trait HttpFunction: Function {
    fn handle_http(
        &self,
        request: lambda_http::Request,
        deadline: Instant,
    ) -> impl Future<Output = lambda_http::Response<lambda_http::Body>> + Send;
}

/// A function invoked with an event (an SQS batch, a schedule).
pub trait EventFunction: Function {
    type Event: DeserializeOwned;
    type Output: Serialize;
    type Error: Failure;
    fn handle_event(
        &self,
        event: Self::Event,
        deadline: Instant,
    ) -> impl Future<Output = Result<Self::Output, Self::Error>>;
}

/// Where an invocation's metrics go when it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emf {
    /// One EMF line on stdout, which CloudWatch turns into metrics.
    Stdout,
    /// Counted and dropped (a local run whose stdout tells a story of its own).
    Discard,
}

/// One invocation as the runner sees it: the ids its logs carry and its deadline.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub request_id: String,
    pub xray_trace_id: Option<String>,
    /// API Gateway's own request id (in its access logs), for an HTTP invocation.
    pub api_request_id: Option<String>,
    pub deadline: Instant,
    pub emf: Emf,
}

impl Invocation {
    /// The invocation Lambda describes in `context`.
    pub fn from_context(context: &Context) -> Self {
        Self {
            request_id: context.request_id.clone(),
            xray_trace_id: context.xray_trace_id.clone(),
            api_request_id: None,
            deadline: crate::lambda::deadline_instant(context.deadline),
            emf: Emf::Stdout,
        }
    }

    /// An invocation made here (the local stack, tests): a generated request id, no trace, `timeout`
    /// from now.
    pub fn local(timeout: Duration, emf: Emf) -> Self {
        Self {
            request_id: crate::ids::new_id("req"),
            xray_trace_id: None,
            api_request_id: None,
            deadline: Instant::now() + timeout,
            emf,
        }
    }

    fn span(&self, function: &'static str) -> tracing::Span {
        tracing::error_span!(
            "invocation",
            function,
            request_id = %self.request_id,
            xray_trace_id = self.xray_trace_id.as_deref(),
            api_request_id = self.api_request_id.as_deref(),
        )
    }

    fn flush(&self, metrics: &Metrics) {
        let now_ms = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
        match self.emf {
            Emf::Stdout => metrics.flush(now_ms),
            Emf::Discard => drop(metrics.take_emf(now_ms)),
        }
    }
}

/// One invocation of `function`: `work` runs in the invocation's span with its deadline, the metrics
/// are flushed when it ends, and a failure is logged at ERROR with its category.
pub async fn invoke<F, R, E, Fut>(
    function: &F,
    invocation: Invocation,
    work: impl FnOnce(Instant) -> Fut,
) -> Result<R, E>
where
    F: Function,
    E: Failure,
    Fut: Future<Output = Result<R, E>>,
{
    let span = invocation.span(F::NAME);
    let result = work(invocation.deadline).instrument(span.clone()).await;
    invocation.flush(function.metrics());
    if let Err(failure) = &result {
        span.in_scope(|| {
            tracing::error!(
                error_type = failure.category().as_str(),
                error = %failure,
                "invocation failed"
            )
        });
    }
    result
}

/// One HTTP invocation through [`invoke`].
pub async fn invoke_http<F: HttpFunction>(
    function: &F,
    request: lambda_http::Request,
    invocation: Invocation,
) -> lambda_http::Response<lambda_http::Body> {
    let Ok(response) = invoke(function, invocation, move |deadline| async move {
        Ok::<_, Infallible>(function.handle_http(request, deadline).await)
    })
    .await;
    response
}

/// One event invocation through [`invoke`].
pub async fn invoke_events<F: EventFunction>(
    function: &F,
    event: F::Event,
    invocation: Invocation,
) -> Result<F::Output, F::Error> {
    invoke(function, invocation, |deadline| {
        function.handle_event(event, deadline)
    })
    .await
}

/// Runs an HTTP function on Lambda (API Gateway HTTP API events) until the runtime stops it.
pub async fn run_http<F: HttpFunction>(function: &F) -> Result<(), lambda_runtime::Error> {
    use lambda_http::RequestExt;
    let service = lambda_http::service_fn(|request: lambda_http::Request| {
        let mut invocation = request
            .lambda_context_ref()
            .map(Invocation::from_context)
            .unwrap_or_else(|| Invocation::local(Duration::from_secs(30), Emf::Stdout));
        invocation.api_request_id = api_request_id(&request);
        async move { Ok::<_, Infallible>(invoke_http(function, request, invocation).await) }
    });
    // `lambda_http::run` without the runtime's own span (see the module's docs).
    lambda_runtime::Runtime::new(lambda_http::Adapter::from(service))
        .run()
        .await
}

/// Runs an event function on Lambda until the runtime stops it.
pub async fn run_events<F: EventFunction>(function: &F) -> Result<(), lambda_runtime::Error> {
    let service = lambda_runtime::service_fn(|event: LambdaEvent<F::Event>| async move {
        let invocation = Invocation::from_context(&event.context);
        // Boxed: the runtime's layers nest this future deep enough to overflow the compiler's layout
        // query depth; one allocation per invocation is nothing next to it.
        let output = Box::pin(invoke_events(function, event.payload, invocation))
            .await
            .map_err(|failure| diagnostic(&failure))?;
        // One response type for every event function: a JSON value.
        serde_json::to_value(output).map_err(|err| Diagnostic {
            error_type: Category::Permanent.as_str().to_owned(),
            error_message: format!("the response does not serialise: {err}"),
        })
    });
    lambda_runtime::Runtime::new(service).run().await
}

fn api_request_id(request: &lambda_http::Request) -> Option<String> {
    use lambda_http::RequestExt;
    use lambda_http::request::RequestContext;
    match request.request_context_ref()? {
        RequestContext::ApiGatewayV2(context) => context.request_id.clone(),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    enum Sample {
        Outage(&'static str),
        Unreadable,
    }

    impl fmt::Display for Sample {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                Sample::Outage(table) => write!(f, "DynamoDB unavailable: {table} throttled"),
                Sample::Unreadable => f.write_str("not an SQS batch nor a scheduled event"),
            }
        }
    }

    impl Failure for Sample {
        fn category(&self) -> Category {
            match self {
                Sample::Outage(_) => Category::Retryable,
                Sample::Unreadable => Category::Permanent,
            }
        }
    }

    /// A function whose every invocation counts one metric and fails with `failure`.
    struct Failing {
        failure: fn() -> Sample,
        metrics: Metrics,
    }

    impl Function for Failing {
        const NAME: &'static str = "failing";

        fn metrics(&self) -> &Metrics {
            &self.metrics
        }
    }

    impl EventFunction for Failing {
        type Event = ();
        type Output = ();
        type Error = Sample;

        async fn handle_event(&self, _event: (), _deadline: Instant) -> Result<(), Sample> {
            self.metrics.count("Tried", 1);
            tracing::info!("trying");
            Err((self.failure)())
        }
    }

    #[tokio::test]
    async fn a_failed_invocation_is_logged_with_its_category_in_its_span_and_its_metrics_flushed() {
        // At `warn`, as a quiet deployment would log: the ERROR line keeps its spans.
        let (logs, _guard) = crate::telemetry::CapturedLogs::at("warn");
        let function = Failing {
            failure: || Sample::Outage("inbox"),
            metrics: Metrics::new("failing"),
        };
        let invocation = Invocation::local(Duration::from_secs(3), Emf::Discard);
        let request_id = invocation.request_id.clone();
        let failure = invoke_events(&function, (), invocation).await.unwrap_err();
        assert_eq!(failure.category(), Category::Retryable);
        assert!(
            function.metrics().snapshot().is_empty(),
            "flushed at the end of the invocation"
        );
        let lines = logs.lines();
        assert_eq!(lines.len(), 1, "the info line is filtered out: {lines:?}");
        let failed = &lines[0];
        assert_eq!(failed["spans"][0]["name"], "invocation", "{failed}");
        assert_eq!(failed["spans"][0]["function"], "failing");
        assert_eq!(failed["spans"][0]["request_id"], request_id.as_str());
        assert_eq!(failed["level"], "ERROR");
        assert_eq!(failed["fields"]["error_type"], "Retryable");
        assert_eq!(
            failed["fields"]["error"],
            "DynamoDB unavailable: inbox throttled"
        );
    }

    #[test]
    fn the_runtime_is_told_the_category_and_the_message() {
        assert_eq!(
            diagnostic(&Sample::Outage("inbox")),
            Diagnostic {
                error_type: "Retryable".into(),
                error_message: "DynamoDB unavailable: inbox throttled".into(),
            }
        );
        assert_eq!(diagnostic(&Sample::Unreadable).error_type, "Permanent");
    }

    #[test]
    fn the_deadline_comes_from_the_context_and_a_local_request_id_is_made_up() {
        let now_ms = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
        let mut context = Context::default();
        context.request_id = "8476a536-e9f4-11e8-9739-2dfe598c3fcd".into();
        context.deadline = now_ms as u64 + 60_000;
        context.xray_trace_id = Some("Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700".into());
        let invocation = Invocation::from_context(&context);
        assert_eq!(invocation.request_id, context.request_id);
        assert_eq!(invocation.xray_trace_id, context.xray_trace_id);
        let left = invocation.deadline - Instant::now();
        assert!(
            left > Duration::from_secs(58) && left <= Duration::from_secs(60),
            "{left:?}"
        );
        let (a, b) = (
            Invocation::local(Duration::from_secs(3), Emf::Discard),
            Invocation::local(Duration::from_secs(3), Emf::Discard),
        );
        assert!(a.request_id.starts_with("req_"));
        assert_ne!(a.request_id, b.request_id);
    }
}
