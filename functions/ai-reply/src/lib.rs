//! ai-reply: answers the customer messages webhook-ingest queued, at most once each.
//!
//! It consumes the inbound FIFO queue (one message group per conversation) and reports partial batch
//! failures: a record that failed for a reason that may pass (a provider or platform rate limit, a 5xx,
//! a throttled DynamoDB) is reported failed and SQS redelivers it; so are the later records of its group,
//! so a conversation's order holds. Everything that will never succeed is recorded on the inbound message
//! (its `reply_outcome`) and acknowledged.
//!
//! What to do about each message is decided and done by `inbox_shared::service::reply` (the policy is
//! a pure function there); this crate is the SQS edge: batches, message groups, receive counts.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration as StdDuration;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use inbox_shared::aws::AwsClients;
use inbox_shared::clock::{self, SharedClock};
use inbox_shared::config::{Config, ConfigError};
use inbox_shared::jobs::InboundJob;
use inbox_shared::lambda;
use inbox_shared::llm::Providers;
use inbox_shared::platform::send::Sender;
use inbox_shared::runner::{EventFunction, Function, Invocation};
use inbox_shared::service::outbound::Outbox;
use inbox_shared::service::reply::{Attempt, ReplyError, ReplyService};
use inbox_shared::store::Store;
use inbox_shared::telemetry::{Metrics, message_ref};
use inbox_shared::vault::TokenVault;
use tokio::time::Instant;
use tracing::Instrument;
use tracing::field::Empty;

pub const FUNCTION: &str = "ai-reply";
/// Why a record is reported failed (SQS delivers it again, or after the last receive moves it to the
/// dead-letter queue).
#[derive(Debug, thiserror::Error)]
enum RecordError {
    /// The body is not an inbound job: it can never succeed; it waits in the dead-letter queue.
    #[error("the body is not an inbound job: {0}")]
    Malformed(serde_json::Error),
    #[error(transparent)]
    Reply(#[from] ReplyError),
}

impl RecordError {
    fn category(&self) -> &'static str {
        match self {
            Self::Reply(err) if err.is_retryable() => "retryable",
            Self::Malformed(_) | Self::Reply(_) => "dead_letter",
        }
    }
}

pub struct Replier {
    service: ReplyService,
    max_receives: u32,
}

impl Replier {
    /// Reads configuration and builds clients: once per cold start.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let config = Config::from_env()?;
        Ok(Self::new(
            &config,
            &AwsClients::from_env().await,
            clock::system(),
        ))
    }

    pub fn new(config: &Config, clients: &AwsClients, clock: SharedClock) -> Self {
        let http = inbox_shared::https::client(StdDuration::from_secs(3));
        let store = Store::new(clients.dynamodb.clone(), &config.table_name, clock);
        let outbox = Outbox::new(
            store.clone(),
            TokenVault::new(clients.kms.clone(), &config.kms_key_id),
            Sender::new(config, http.clone()),
        );
        Self {
            service: ReplyService::new(
                store,
                outbox,
                Providers::from_config(config, http),
                Metrics::new(FUNCTION),
            ),
            max_receives: config.inbound_max_receives,
        }
    }

    pub fn metrics(&self) -> &Metrics {
        self.service.metrics()
    }

    /// The send path, for approving drafts in the same process (the local stack, tests).
    pub fn outbox(&self) -> &Outbox {
        self.service.outbox()
    }

    /// Handles a batch: groups run concurrently, the records of a group in order; a failed record fails
    /// the rest of its group.
    pub async fn handle_batch(&self, event: SqsEvent, deadline: Instant) -> SqsBatchResponse {
        let mut groups: Vec<Vec<&SqsMessage>> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for record in &event.records {
            let group = record
                .attributes
                .get("MessageGroupId")
                .or(record.message_id.as_ref())
                .cloned()
                .unwrap_or_default();
            let slot = *index.entry(group).or_insert_with(|| {
                groups.push(Vec::new());
                groups.len() - 1
            });
            groups[slot].push(record);
        }
        let failed: Vec<Vec<String>> = futures::future::join_all(
            groups
                .into_iter()
                .map(|group| self.handle_group(group, deadline)),
        )
        .await;
        let mut response = SqsBatchResponse::default();
        for id in failed.into_iter().flatten() {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
        response
    }

    /// Returns the message ids of the records to report failed.
    async fn handle_group(&self, records: Vec<&SqsMessage>, deadline: Instant) -> Vec<String> {
        let mut failed = Vec::new();
        for record in records {
            let id = record.message_id.clone().unwrap_or_default();
            if !failed.is_empty() {
                self.metrics().count("HeldForOrder", 1);
                failed.push(id);
                continue;
            }
            // The job's ids are recorded once its body is read: every line about the record, the
            // retry warning included, names the message it is about.
            let span = tracing::error_span!(
                "record",
                sqs_message_id = %id,
                tenant_id = Empty,
                channel_id = Empty,
                conversation_id = Empty,
                message_ref = Empty,
            );
            let handled = self
                .handle_record(record, deadline)
                .instrument(span.clone())
                .await;
            if let Err(err) = handled {
                self.metrics().count("Retried", 1);
                span.in_scope(
                    || tracing::warn!(category = err.category(), error = %err, "will be retried"),
                );
                failed.push(id);
            }
        }
        failed
    }

    async fn handle_record(
        &self,
        record: &SqsMessage,
        deadline: Instant,
    ) -> Result<(), RecordError> {
        let job: InboundJob = serde_json::from_str(record.body.as_deref().unwrap_or_default())
            .map_err(|e| {
                self.metrics().count("MalformedJob", 1);
                RecordError::Malformed(e)
            })?;
        let span = tracing::Span::current();
        span.record("tenant_id", job.tenant_id.as_str());
        span.record("channel_id", job.channel_id.as_str());
        span.record("conversation_id", job.conversation_id.as_str());
        span.record("message_ref", message_ref(&job.message_id).as_str());
        let receive_count: u32 = record
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|c| c.parse().ok())
            .unwrap_or(1);
        let attempt = Attempt {
            last: receive_count >= self.max_receives,
            deadline,
        };
        Ok(self.service.handle(&job, attempt).await?)
    }
}

impl Function for Replier {
    const NAME: &'static str = FUNCTION;

    fn metrics(&self) -> &Metrics {
        self.service.metrics()
    }
}

impl EventFunction for Replier {
    type Event = SqsEvent;
    type Output = SqsBatchResponse;
    type Error = Infallible;

    async fn handle_event(
        &self,
        event: SqsEvent,
        deadline: Instant,
    ) -> Result<SqsBatchResponse, Infallible> {
        Ok(self.handle_batch(event, deadline).await)
    }
}

pub use inbox_shared::lambda::Polled;

impl Replier {
    /// Without Lambda's event source mapping (the local stack, tests): receives one batch from the inbound
    /// queue, handles it as Lambda would, deletes what succeeded and makes the failures visible again
    /// after `retry_after`, as a redrive would.
    pub async fn poll_once(
        &self,
        sqs: &aws_sdk_sqs::Client,
        queue_url: &str,
        retry_after: StdDuration,
        invocation: Invocation,
    ) -> Result<Polled, aws_sdk_sqs::Error> {
        lambda::poll_once(
            self,
            sqs,
            queue_url,
            retry_after,
            invocation,
            |event, deadline| self.handle_batch(event, deadline),
        )
        .await
    }
}
