//! retention-sweep: consumes the erasure queue — erasure jobs of Meta deletion requests, carried out by
//! `inbox_shared::erasure` — reporting partial batch failures, so a job that failed midway (throttling, a
//! timeout, a crash) is redelivered and, every step being idempotent, finished.

use std::convert::Infallible;
use std::time::Duration;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use inbox_shared::aws::AwsClients;
use inbox_shared::clock::{self, SharedClock};
use inbox_shared::config::{Config, ConfigError};
use inbox_shared::erasure::Eraser;
use inbox_shared::jobs::ErasureJob;
use inbox_shared::store::Store;
use inbox_shared::telemetry::Metrics;
use lambda_runtime::LambdaEvent;

pub const FUNCTION: &str = "retention-sweep";

pub struct Sweeper {
    store: Store,
    eraser: Eraser,
    metrics: Metrics,
}

impl Sweeper {
    pub async fn from_env() -> Result<Self, ConfigError> {
        let config = Config::from_env()?;
        Ok(Self::new(
            &config,
            &AwsClients::from_env().await,
            clock::system(),
        ))
    }

    pub fn new(config: &Config, clients: &AwsClients, clock: SharedClock) -> Self {
        let store = Store::new(clients.dynamodb.clone(), &config.table_name, clock);
        Self {
            eraser: Eraser::new(store.clone(), FUNCTION),
            store,
            metrics: Metrics::new(FUNCTION),
        }
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub async fn handle_lambda(
        &self,
        event: LambdaEvent<SqsEvent>,
    ) -> Result<SqsBatchResponse, Infallible> {
        let response = self.handle_batch(event.payload).await;
        self.metrics.flush(self.store.now().unix_timestamp() * 1000);
        Ok(response)
    }

    /// Each record on its own (the erasure queue is a standard queue); failures are reported for
    /// redelivery.
    pub async fn handle_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        let results =
            futures::future::join_all(event.records.iter().map(|r| self.handle_record(r))).await;
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

    async fn handle_record(&self, record: &SqsMessage) -> Result<(), String> {
        let job: ErasureJob = serde_json::from_str(record.body.as_deref().unwrap_or_default())
            .map_err(|e| {
                // Kept for an operator: after the retries it lands in the dead-letter queue.
                self.metrics.count("MalformedJob", 1);
                format!("not an erasure job: {e}")
            })?;
        match job {
            ErasureJob::DeletionRequest { confirmation_code } => {
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
        }
    }

    /// Without Lambda's event source mapping (the local stack, tests): one batch from the erasure queue,
    /// handled as Lambda would; successes deleted, failures visible again after `retry_after`.
    pub async fn poll_once(
        &self,
        sqs: &aws_sdk_sqs::Client,
        queue_url: &str,
        retry_after: Duration,
    ) -> Result<usize, aws_sdk_sqs::Error> {
        let received = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .send()
            .await?;
        let messages = received.messages.unwrap_or_default();
        let mut event = SqsEvent::default();
        for message in &messages {
            let mut record = SqsMessage::default();
            record.message_id = message.message_id.clone();
            record.body = message.body.clone();
            event.records.push(record);
        }
        let response = self.handle_batch(event).await;
        for message in &messages {
            let failed = response
                .batch_item_failures
                .iter()
                .any(|f| Some(&f.item_identifier) == message.message_id.as_ref());
            let receipt = message.receipt_handle.clone().unwrap_or_default();
            if failed {
                sqs.change_message_visibility()
                    .queue_url(queue_url)
                    .receipt_handle(receipt)
                    .visibility_timeout(retry_after.as_secs() as i32)
                    .send()
                    .await?;
            } else {
                sqs.delete_message()
                    .queue_url(queue_url)
                    .receipt_handle(receipt)
                    .send()
                    .await?;
            }
        }
        Ok(messages.len())
    }
}
