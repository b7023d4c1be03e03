//! retention-sweep: every retention promise, enforced on schedule.
//!
//! - The daily EventBridge schedule invokes it with a scheduled event: it pages through the tenants and
//!   fans out one sweep job per tenant onto the erasure-and-sweep queue; it re-queues every deletion
//!   request not yet completed, raises the `DeletionRequestOverdue` metric for any older than 25 days
//!   (the promise is 30), and deletes system audit events past their retention.
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
use inbox_shared::model::{DeletionStatus, RetentionPolicy};
use inbox_shared::queue::{QueueMessage, QueuePublisher};
use inbox_shared::service::erasure::Eraser;
use inbox_shared::store::{Page, PageRequest, Store};
use inbox_shared::sweep::{Budget, Deadline, SweepOutcome, TenantSweeper};
use inbox_shared::telemetry::Metrics;
use lambda_runtime::LambdaEvent;
use tokio::time::Instant;

pub const FUNCTION: &str = "retention-sweep";
/// Kept back from the invocation's deadline to re-enqueue and audit a sweep cut short.
const SWEEP_MARGIN: Duration = Duration::from_secs(30);
/// A deletion request still open this long raises the overdue alarm (the promise is 30 days).
const DELETION_OVERDUE: time::Duration = time::Duration::days(25);

pub struct Sweeper {
    store: Store,
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
    pub deletion_requests_requeued: usize,
    pub deletion_requests_overdue: usize,
    pub system_audit_events_deleted: usize,
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

    /// The Lambda entry point: an SQS batch (`Records`) or the schedule's event.
    pub async fn handle_lambda(
        &self,
        event: LambdaEvent<serde_json::Value>,
    ) -> Result<serde_json::Value, lambda_runtime::Error> {
        let deadline = lambda::deadline_instant(event.context.deadline);
        let result = if event.payload.get("Records").is_some() {
            let batch: SqsEvent = serde_json::from_value(event.payload)?;
            Ok(serde_json::to_value(
                self.handle_batch(batch, deadline).await,
            )?)
        } else if event.payload.get("source").and_then(|s| s.as_str()) == Some("aws.events") {
            let fan_out = self.fan_out().await?;
            Ok(serde_json::to_value(fan_out)?)
        } else {
            Err("expected an SQS batch or an EventBridge scheduled event".into())
        };
        self.metrics.flush(self.store.now().unix_timestamp() * 1000);
        result
    }

    /// The schedule's work: one sweep job per tenant, deletion requests re-queued and checked against
    /// their deadline, system audit events past retention deleted.
    pub async fn fan_out(&self) -> Result<FanOut, inbox_shared::store::StoreError> {
        let now = self.store.now();
        let mut done = FanOut::default();
        let mut page = PageRequest {
            limit: Some(100),
            ..PageRequest::default()
        };
        loop {
            let Page { items, next } = self.store.list_tenants_stored(page.clone()).await?;
            let jobs: Vec<QueueMessage> = items
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
                now - time::Duration::days(RetentionPolicy::default().audit_days.into()),
            ))
            .await?;
        self.store.delete_many(&old_audit).await?;
        done.system_audit_events_deleted = old_audit.len();
        self.metrics
            .count("TenantSweepsQueued", done.tenant_sweeps as u64);
        Ok(done)
    }

    async fn publish(
        &self,
        jobs: Vec<QueueMessage>,
    ) -> Result<(), inbox_shared::store::StoreError> {
        if jobs.is_empty() {
            return Ok(());
        }
        self.publisher
            .publish(&self.queue_url, jobs)
            .await
            .map(drop)
            .map_err(|e| {
                inbox_shared::store::StoreError::Unavailable(format!("queueing jobs: {e}"))
            })
    }

    /// Each record on its own (a standard queue); failures are reported for redelivery.
    pub async fn handle_batch(&self, event: SqsEvent, deadline: Instant) -> SqsBatchResponse {
        let results = futures::future::join_all(
            event
                .records
                .iter()
                .map(|r| self.handle_record(r, deadline)),
        )
        .await;
        let mut response = SqsBatchResponse::default();
        for (record, result) in event.records.iter().zip(results) {
            if let Err(reason) = result {
                self.metrics.count("JobRetried", 1);
                tracing::warn!(sqs_message_id = ?record.message_id, %reason, "erasure job will be retried");
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = record.message_id.clone().unwrap_or_default();
                response.batch_item_failures.push(failure);
            }
        }
        response
    }

    async fn handle_record(&self, record: &SqsMessage, deadline: Instant) -> Result<(), String> {
        let job: CleanupJob = serde_json::from_str(record.body.as_deref().unwrap_or_default())
            .map_err(|e| {
                // Kept for an operator: after the retries it lands in the dead-letter queue.
                self.metrics.count("MalformedJob", 1);
                format!("not an erasure job: {e}")
            })?;
        match job {
            CleanupJob::DeletionRequest { confirmation_code } => {
                let counts = self
                    .eraser
                    .process_deletion_request(&confirmation_code)
                    .await
                    .map_err(|e| format!("erasure of {confirmation_code}: {e}"))?;
                match counts {
                    Some(counts) => {
                        self.metrics.count("DeletionRequestCompleted", 1);
                        tracing::info!(%confirmation_code, deleted = ?counts, "deletion request completed");
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
                let mut budget = Deadline {
                    until: deadline.checked_sub(SWEEP_MARGIN).unwrap_or(deadline),
                };
                self.sweep_tenant(&tenant_id, as_of, stage, &mut budget)
                    .await
            }
        }
    }

    /// One tenant's sweep; cut short, it re-enqueues itself at the rule it reached.
    pub async fn sweep_tenant(
        &self,
        tenant_id: &str,
        as_of: time::OffsetDateTime,
        stage: SweepStage,
        budget: &mut dyn Budget,
    ) -> Result<(), String> {
        let report = self
            .tenants
            .sweep(tenant_id, as_of, stage, budget)
            .await
            .map_err(|e| format!("sweep of {tenant_id}: {e}"))?;
        let deleted: u64 = report.deleted.values().sum();
        self.metrics.count("ItemsSwept", deleted);
        match report.outcome {
            SweepOutcome::Finished => {
                self.metrics.count("TenantSwept", 1);
                tracing::info!(%tenant_id, deleted = ?report.deleted, "tenant swept");
                Ok(())
            }
            SweepOutcome::Interrupted(at) => {
                self.metrics.count("TenantSweepResumed", 1);
                tracing::info!(%tenant_id, stage = at.as_str(), "sweep out of time; continuing in a new job");
                self.publish(vec![job_message(&CleanupJob::TenantSweep {
                    tenant_id: tenant_id.to_owned(),
                    as_of,
                    stage: at,
                })])
                .await
                .map_err(|e| e.to_string())
            }
        }
    }

    /// Without Lambda's event source mapping (the local stack, tests): one batch from the queue, handled
    /// as Lambda would; successes deleted, failures visible again after `retry_after`. Returns how many
    /// records it handled.
    pub async fn poll_once(
        &self,
        sqs: &aws_sdk_sqs::Client,
        queue_url: &str,
        retry_after: Duration,
    ) -> Result<usize, aws_sdk_sqs::Error> {
        let batch = lambda::receive_batch(sqs, queue_url).await?;
        if batch.is_empty() {
            return Ok(0);
        }
        let handled = batch.len();
        let response = self
            .handle_batch(
                batch.event.clone(),
                Instant::now() + Duration::from_secs(600),
            )
            .await;
        lambda::settle(sqs, queue_url, batch, &response, retry_after).await?;
        Ok(handled)
    }
}

fn job_message(job: &CleanupJob) -> QueueMessage {
    QueueMessage::standard(serde_json::to_string(job).expect("a job serialises"))
}
