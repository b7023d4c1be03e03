//! retention-sweep: every retention promise, enforced on schedule.
//!
//! - The daily EventBridge schedule invokes it with a scheduled event: it pages through the tenants and
//!   fans out one sweep job per tenant onto the erasure-and-sweep queue; it re-queues every deletion
//!   request not yet completed, raises the `DeletionRequestOverdue` metric for any older than 25 days
//!   (the promise is 30), and deletes system audit events past their retention. It also fans out one
//!   token-health job per active tenant ([`inbox_shared::service::onboarding::health`]): a channel
//!   whose token Meta or LINE killed is flagged `needs_reauth` with its reason before a customer goes
//!   unanswered, Instagram-Login tokens are refreshed before their 60 days, dropped webhook
//!   subscriptions are restored.
//! - The same function consumes that queue, reporting partial batch failures: tenant sweeps
//!   (`inbox_shared::sweep`) and erasures of Meta deletion requests (`inbox_shared::erasure`). A sweep
//!   that runs short of time re-enqueues itself at the rule it reached; a job that failed midway
//!   (throttling, a crash) is redelivered and, every step being idempotent, finished.

use std::time::Duration;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use inbox_shared::aws::AwsClients;
use inbox_shared::clock::{self, SharedClock};
use inbox_shared::config::{Config, ConfigError};
use inbox_shared::jobs::{CleanupJob, SweepStage};
use inbox_shared::keys;
use inbox_shared::lambda;
use inbox_shared::model::{DeletionStatus, RetentionPolicy, TenantId, TenantStatus};
use inbox_shared::queue::{QueueMessage, QueuePublisher};
use inbox_shared::runner::{Category, EventFunction, Failure, Function, Invocation};
use inbox_shared::service::erasure::Eraser;
use inbox_shared::service::onboarding::{ConnectError, Onboarding};
use inbox_shared::store::{Page, PageRequest, Store, StoreError};
use inbox_shared::sweep::{Budget, Deadline, SweepOutcome, TenantSweeper};
use inbox_shared::telemetry::Metrics;
use inbox_shared::vault::TokenVault;
use tokio::time::Instant;
use tracing::Instrument;
use tracing::field::Empty;

pub const FUNCTION: &str = "retention-sweep";
/// Kept back from the invocation's deadline to re-enqueue and audit a sweep cut short.
const SWEEP_MARGIN: Duration = Duration::from_secs(30);
/// A deletion request still open this long raises the overdue alarm (the promise is 30 days).
const DELETION_OVERDUE: time::Duration = time::Duration::days(25);

pub struct Sweeper {
    store: Store,
    onboarding: Onboarding,
    eraser: Eraser,
    tenants: TenantSweeper,
    publisher: QueuePublisher,
    queue_url: String,
    metrics: Metrics,
}

/// What the schedule's fan-out did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct FanOut {
    pub tenant_sweeps: usize,
    pub token_health_checks: usize,
    pub deletion_requests_requeued: usize,
    pub deletion_requests_overdue: usize,
    pub system_audit_events_deleted: usize,
}

/// What invokes retention-sweep: a batch of jobs from its queue, or the daily schedule.
#[derive(Debug, Clone)]
pub enum SweepEvent {
    Jobs(SqsEvent),
    Schedule,
    /// Neither (a wrong trigger, a hand-made test event): refused, never retried. Holds why.
    Unreadable(String),
}

/// Dispatched on the shape Lambda delivers: SQS batches carry `Records`, EventBridge scheduled events
/// `"source": "aws.events"`. Anything else becomes [`SweepEvent::Unreadable`], so the refusal is the
/// function's (a permanent failure), not the runtime's.
impl<'de> serde::Deserialize<'de> for SweepEvent {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        Ok(if value.get("Records").is_some() {
            serde_json::from_value(value).map_or_else(
                |e| SweepEvent::Unreadable(format!("not an SQS batch: {e}")),
                SweepEvent::Jobs,
            )
        } else if value.get("source").and_then(|s| s.as_str()) == Some("aws.events") {
            SweepEvent::Schedule
        } else {
            SweepEvent::Unreadable(
                "expected an SQS batch or an EventBridge scheduled event".to_owned(),
            )
        })
    }
}

/// What an invocation answers: the batch's failed records, or what the schedule's fan-out did.
#[derive(Debug, serde::Serialize)]
#[serde(untagged)]
pub enum SweepOutput {
    Jobs(SqsBatchResponse),
    Schedule(FanOut),
}

/// Why a job or an invocation failed, and whether trying again can help.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// The event or a job's body is not what this function takes: the same every time.
    #[error("{0}")]
    Unreadable(String),
    /// DynamoDB or SQS failed: retryable when it was throttling, a timeout or a 5xx.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The token-health check could not record what it found (the platforms' own failures are
    /// outcomes of the check, not errors).
    #[error(transparent)]
    TokenHealth(#[from] ConnectError),
}

impl Failure for SweepError {
    fn category(&self) -> Category {
        match self {
            SweepError::Store(err) if err.is_retryable() => Category::Retryable,
            SweepError::TokenHealth(err) if err.is_retryable() => Category::Retryable,
            SweepError::Store(_) | SweepError::TokenHealth(_) | SweepError::Unreadable(_) => {
                Category::Permanent
            }
        }
    }
}

impl Sweeper {
    pub async fn from_env() -> Result<Self, ConfigError> {
        let config = Config::from_env()?;
        Self::new(&config, &AwsClients::from_env().await, clock::system())
    }

    pub fn new(
        config: &Config,
        clients: &AwsClients,
        clock: SharedClock,
    ) -> Result<Self, ConfigError> {
        let store = Store::new(clients.dynamodb.clone(), &config.table_name, clock);
        Ok(Self {
            onboarding: Onboarding::new(
                config,
                store.clone(),
                TokenVault::new(clients.kms.clone(), &config.kms_key_id),
                inbox_shared::https::client(Duration::from_secs(3)),
                FUNCTION,
            ),
            eraser: Eraser::new(store.clone(), FUNCTION),
            tenants: TenantSweeper::new(store.clone(), FUNCTION),
            store,
            publisher: QueuePublisher::new(clients.sqs.clone()),
            queue_url: config.require_erasure_queue_url()?.to_owned(),
            metrics: Metrics::new(FUNCTION),
        })
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The schedule's work: one sweep job per tenant, deletion requests re-queued and checked against
    /// their deadline, system audit events past retention deleted.
    pub async fn fan_out(&self) -> Result<FanOut, StoreError> {
        let now = self.store.now();
        let mut done = FanOut::default();
        let mut page = PageRequest {
            limit: Some(100),
            ..PageRequest::default()
        };
        loop {
            let Page { items, next } = self.store.list_tenants_stored(page.clone()).await?;
            let mut jobs: Vec<QueueMessage> = items
                .iter()
                .map(|tenant| {
                    job_message(&CleanupJob::TenantSweep {
                        tenant_id: tenant.tenant_id.clone(),
                        as_of: now,
                        stage: SweepStage::default(),
                    })
                })
                .collect();
            done.tenant_sweeps += jobs.len();
            let checks: Vec<QueueMessage> = items
                .iter()
                .filter(|tenant| tenant.status == TenantStatus::Active)
                .map(|tenant| {
                    job_message(&CleanupJob::TokenHealth {
                        tenant_id: tenant.tenant_id.clone(),
                    })
                })
                .collect();
            done.token_health_checks += checks.len();
            jobs.extend(checks);
            self.publish(jobs).await?;
            match next {
                Some(cursor) => page.after = Some(cursor),
                None => break,
            }
        }
        let open = self.store.open_deletion_requests().await?;
        let mut requeue = Vec::new();
        for request in open
            .iter()
            .filter(|r| r.status != DeletionStatus::Completed)
        {
            if now - request.received_at > DELETION_OVERDUE {
                done.deletion_requests_overdue += 1;
                tracing::error!(confirmation_code = %request.confirmation_code, received_at = %request.received_at, "deletion request overdue");
            }
            requeue.push(job_message(&CleanupJob::DeletionRequest {
                confirmation_code: request.confirmation_code.clone(),
            }));
        }
        done.deletion_requests_requeued = requeue.len();
        self.publish(requeue).await?;
        self.metrics.count(
            "DeletionRequestOverdue",
            done.deletion_requests_overdue as u64,
        );
        let old_audit = self
            .store
            .query_all_keys(&keys::audit_older_than(
                None,
                now.saturating_sub(time::Duration::days(
                    RetentionPolicy::default().audit_days.into(),
                )),
            ))
            .await?;
        self.store.delete_many(&old_audit).await?;
        done.system_audit_events_deleted = old_audit.len();
        self.metrics
            .count("TenantSweepsQueued", done.tenant_sweeps as u64);
        Ok(done)
    }

    async fn publish(&self, jobs: Vec<QueueMessage>) -> Result<(), StoreError> {
        if jobs.is_empty() {
            return Ok(());
        }
        self.publisher
            .publish(&self.queue_url, jobs)
            .await
            .map(drop)
            .map_err(|e| StoreError::Unavailable(format!("queueing jobs: {e}")))
    }

    /// Each record on its own (a standard queue), in its span; every failure is reported for
    /// redelivery (a permanent one too: after the retries it lands in the dead-letter queue, kept for
    /// an operator), logged with its category.
    pub async fn handle_batch(&self, event: SqsEvent, deadline: Instant) -> SqsBatchResponse {
        let results = futures::future::join_all(event.records.iter().map(|record| {
            let span = tracing::error_span!(
                "job",
                sqs_message_id = record.message_id.as_deref(),
                tenant_id = Empty,
                confirmation_code = Empty,
            );
            let handled = self
                .handle_record(record, deadline)
                .instrument(span.clone());
            async move { (handled.await, span) }
        }))
        .await;
        let mut response = SqsBatchResponse::default();
        for (record, (result, span)) in event.records.iter().zip(results) {
            if let Err(err) = result {
                self.metrics.count("JobRetried", 1);
                let category = err.category().as_str();
                span.in_scope(|| match err.category() {
                    Category::Retryable => {
                        tracing::warn!(error_type = category, error = %err, "job will be retried")
                    }
                    Category::Permanent => {
                        tracing::error!(error_type = category, error = %err, "job cannot succeed")
                    }
                });
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = record.message_id.clone().unwrap_or_default();
                response.batch_item_failures.push(failure);
            }
        }
        response
    }

    async fn handle_record(
        &self,
        record: &SqsMessage,
        deadline: Instant,
    ) -> Result<(), SweepError> {
        let job: CleanupJob = serde_json::from_str(record.body.as_deref().unwrap_or_default())
            .map_err(|e| {
                self.metrics.count("MalformedJob", 1);
                SweepError::Unreadable(format!("not an erasure or sweep job: {e}"))
            })?;
        let span = tracing::Span::current();
        match job {
            CleanupJob::DeletionRequest { confirmation_code } => {
                span.record("confirmation_code", confirmation_code.as_str());
                let counts = self
                    .eraser
                    .process_deletion_request(&confirmation_code)
                    .await?;
                match counts {
                    Some(counts) => {
                        self.metrics.count("DeletionRequestCompleted", 1);
                        tracing::info!(deleted = ?counts, "deletion request completed");
                    }
                    None => self.metrics.count("DeletionRequestUnknown", 1),
                }
                Ok(())
            }
            CleanupJob::TenantSweep {
                tenant_id,
                as_of,
                stage,
            } => {
                span.record("tenant_id", tenant_id.as_str());
                let mut budget = Deadline {
                    until: deadline.checked_sub(SWEEP_MARGIN).unwrap_or(deadline),
                };
                self.sweep_tenant(&tenant_id, as_of, stage, &mut budget)
                    .await
            }
            CleanupJob::TokenHealth { tenant_id } => {
                span.record("tenant_id", tenant_id.as_str());
                let Some(tenant) = self.store.get_tenant(&tenant_id).await? else {
                    return Ok(());
                };
                let summary = self.onboarding.check_token_health(&tenant).await?;
                self.metrics
                    .count("ChannelNeedsReauth", summary.needs_reauth);
                self.metrics.count("TokenRefreshed", summary.refreshed);
                self.metrics
                    .count("SubscriptionRestored", summary.resubscribed);
                self.metrics
                    .count("PlatformUnreachable", summary.unreachable);
                tracing::info!(?summary, "token health checked");
                Ok(())
            }
        }
    }

    /// One tenant's sweep; cut short, it re-enqueues itself at the rule it reached.
    pub async fn sweep_tenant(
        &self,
        tenant_id: &TenantId,
        as_of: time::OffsetDateTime,
        stage: SweepStage,
        budget: &mut dyn Budget,
    ) -> Result<(), SweepError> {
        let report = self.tenants.sweep(tenant_id, as_of, stage, budget).await?;
        let deleted: u64 = report.deleted.values().sum();
        self.metrics.count("ItemsSwept", deleted);
        match report.outcome {
            SweepOutcome::Finished => {
                self.metrics.count("TenantSwept", 1);
                tracing::info!(deleted = ?report.deleted, "tenant swept");
                Ok(())
            }
            SweepOutcome::Interrupted(at) => {
                self.metrics.count("TenantSweepResumed", 1);
                tracing::info!(
                    stage = at.as_str(),
                    "sweep out of time; continuing in a new job"
                );
                self.publish(vec![job_message(&CleanupJob::TenantSweep {
                    tenant_id: tenant_id.clone(),
                    as_of,
                    stage: at,
                })])
                .await
                .map_err(SweepError::from)
            }
        }
    }

    /// Without Lambda's event source mapping (the local stack, tests): one batch from the queue in one
    /// `invocation`, as Lambda would run it (see [`lambda::poll_once`]). Returns how many records it
    /// handled.
    pub async fn poll_once(
        &self,
        sqs: &aws_sdk_sqs::Client,
        queue_url: &str,
        retry_after: Duration,
        invocation: Invocation,
    ) -> Result<usize, aws_sdk_sqs::Error> {
        let polled = lambda::poll_once(
            self,
            sqs,
            queue_url,
            retry_after,
            invocation,
            |event, deadline| self.handle_batch(event, deadline),
        )
        .await?;
        Ok(polled.received)
    }
}

impl Function for Sweeper {
    const NAME: &'static str = FUNCTION;

    fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}

/// The Lambda entry point (through `inbox_shared::runner`): a batch of jobs, or the schedule's
/// fan-out, whose failure fails the invocation (EventBridge retries it).
impl EventFunction for Sweeper {
    type Event = SweepEvent;
    type Output = SweepOutput;
    type Error = SweepError;

    async fn handle_event(
        &self,
        event: SweepEvent,
        deadline: Instant,
    ) -> Result<SweepOutput, SweepError> {
        match event {
            SweepEvent::Jobs(batch) => {
                Ok(SweepOutput::Jobs(self.handle_batch(batch, deadline).await))
            }
            SweepEvent::Schedule => Ok(SweepOutput::Schedule(self.fan_out().await?)),
            SweepEvent::Unreadable(why) => Err(SweepError::Unreadable(why)),
        }
    }
}

fn job_message(job: &CleanupJob) -> QueueMessage {
    QueueMessage::standard(serde_json::to_string(job).expect("a job serialises"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_outage_is_worth_retrying() {
        let category = |err: SweepError| err.category();
        assert_eq!(
            category(StoreError::Unavailable("throttled".into()).into()),
            Category::Retryable
        );
        assert_eq!(
            category(StoreError::Rejected("no such table".into()).into()),
            Category::Permanent
        );
        assert_eq!(
            category(StoreError::Corrupt("TENANT#t1".into()).into()),
            Category::Permanent
        );
        assert_eq!(
            category(SweepError::Unreadable("not a job".into())),
            Category::Permanent
        );
    }

    #[test]
    fn the_schedule_and_sqs_batches_are_told_apart_and_anything_else_is_unreadable() {
        let read = |json: serde_json::Value| serde_json::from_value::<SweepEvent>(json).unwrap();
        assert!(matches!(
            read(serde_json::json!({"source": "aws.events", "detail-type": "Scheduled Event"})),
            SweepEvent::Schedule
        ));
        assert!(matches!(
            read(serde_json::json!({"Records": []})),
            SweepEvent::Jobs(batch) if batch.records.is_empty()
        ));
        assert!(matches!(
            read(serde_json::json!({"Records": "not a list"})),
            SweepEvent::Unreadable(why) if why.starts_with("not an SQS batch")
        ));
        assert!(matches!(
            read(serde_json::json!({"hello": 1})),
            SweepEvent::Unreadable(_)
        ));
    }
}
