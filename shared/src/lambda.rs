//! What the functions share about running on Lambda: the invocation's deadline as an `Instant`, and
//! running an SQS consumer without Lambda's event source mapping (the local stack, tests) — a batch is
//! received and handed over exactly as Lambda delivers it, in one invocation of the runner
//! ([`crate::runner`]), then settled as Lambda would: successes deleted, reported failures made
//! visible again after a pause.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_sqs::types::MessageSystemAttributeName;
use tokio::time::Instant;

use crate::runner::{self, Function, Invocation};

/// Lambda's deadline (epoch milliseconds, `Context::deadline`) as an `Instant` on this process's clock.
pub fn deadline_instant(deadline_ms: u64) -> Instant {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    Instant::now() + Duration::from_millis(deadline_ms.saturating_sub(now_ms))
}

/// What one poll of a queue did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Polled {
    pub received: usize,
    pub failed: usize,
}

/// Without Lambda's event source mapping (the local stack, tests): receives one batch from the queue,
/// hands it to `handle_batch` in one `invocation` of `function` (its span, deadline and metrics flush,
/// as on Lambda), deletes what succeeded and makes the reported failures visible again after
/// `retry_after`, as a redrive would.
pub async fn poll_once<F, Fut>(
    function: &F,
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    retry_after: Duration,
    invocation: Invocation,
    handle_batch: impl FnOnce(SqsEvent, Instant) -> Fut,
) -> Result<Polled, aws_sdk_sqs::Error>
where
    F: Function,
    Fut: Future<Output = SqsBatchResponse>,
{
    let batch = receive_batch(sqs, queue_url).await?;
    if batch.is_empty() {
        return Ok(Polled::default());
    }
    let received = batch.len();
    let event = batch.event.clone();
    let Ok(response) = runner::invoke(function, invocation, move |deadline| async move {
        Ok::<_, Infallible>(handle_batch(event, deadline).await)
    })
    .await;
    let failed = response.batch_item_failures.len();
    settle(sqs, queue_url, batch, &response, retry_after).await?;
    Ok(Polled { received, failed })
}

/// One batch received from a queue, as Lambda would deliver it, and the receipts to settle it.
pub struct ReceivedBatch {
    pub event: SqsEvent,
    receipts: HashMap<String, String>,
}

impl ReceivedBatch {
    pub fn len(&self) -> usize {
        self.event.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.event.records.is_empty()
    }
}

/// Receives up to 10 messages with their system attributes (message group, receive count).
pub async fn receive_batch(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
) -> Result<ReceivedBatch, aws_sdk_sqs::Error> {
    let received = sqs
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(10)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .send()
        .await?;
    let mut event = SqsEvent::default();
    let mut receipts = HashMap::new();
    for message in received.messages.unwrap_or_default() {
        let mut record = SqsMessage::default();
        record.message_id = message.message_id.clone();
        record.body = message.body;
        record.attributes = message
            .attributes
            .unwrap_or_default()
            .into_iter()
            .map(|(name, value)| (name.as_str().to_owned(), value))
            .collect();
        receipts.insert(
            message.message_id.unwrap_or_default(),
            message.receipt_handle.unwrap_or_default(),
        );
        event.records.push(record);
    }
    Ok(ReceivedBatch { event, receipts })
}

/// Deletes what succeeded and makes the reported failures visible again after `retry_after`.
pub async fn settle(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    mut batch: ReceivedBatch,
    response: &SqsBatchResponse,
    retry_after: Duration,
) -> Result<(), aws_sdk_sqs::Error> {
    for failure in &response.batch_item_failures {
        if let Some(receipt) = batch.receipts.remove(&failure.item_identifier) {
            sqs.change_message_visibility()
                .queue_url(queue_url)
                .receipt_handle(receipt)
                .visibility_timeout(retry_after.as_secs() as i32)
                .send()
                .await?;
        }
    }
    for receipt in batch.receipts.into_values() {
        sqs.delete_message()
            .queue_url(queue_url)
            .receipt_handle(receipt)
            .send()
            .await?;
    }
    Ok(())
}
