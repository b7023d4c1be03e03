//! The SQS publisher: `SendMessageBatch` in batches of up to 10, failed entries retried, FIFO order kept.
//!
//! Order: SQS does not document that a failed entry fails the later entries of its message group in the
//! same batch, so a retried entry could land behind a later one. The publisher therefore sends in
//! *waves*: the n-th message of each group goes in wave n, a wave holds at most one message per group,
//! and a wave (with its retries) completes before the next starts. Messages of distinct groups (the
//! common case: one message per conversation per webhook) share one wave and batch fully.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use aws_sdk_sqs::error::ProvideErrorMetadata;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use futures::stream::{self, StreamExt, TryStreamExt};

/// Most entries per `SendMessageBatch`.
pub const BATCH_LIMIT: usize = 10;
/// Largest message, and largest batch, we send: SQS's long-standing 256 KiB limit, which every region
/// accepts.
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;
/// Concurrent batch calls within one wave.
const CONCURRENT_BATCHES: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMessage {
    pub body: String,
    /// FIFO message group (the conversation). `None` on standard queues.
    pub group_id: Option<String>,
    /// FIFO deduplication id (the platform message id). `None` on standard queues.
    pub dedup_id: Option<String>,
}

impl QueueMessage {
    pub fn standard(body: String) -> Self {
        Self {
            body,
            group_id: None,
            dedup_id: None,
        }
    }

    pub fn fifo(body: String, group_id: impl Into<String>, dedup_id: impl Into<String>) -> Self {
        Self {
            body,
            group_id: Some(group_id.into()),
            dedup_id: Some(dedup_id.into()),
        }
    }

    fn size(&self) -> usize {
        self.body.len()
            + self.group_id.as_ref().map_or(0, String::len)
            + self.dedup_id.as_ref().map_or(0, String::len)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QueueError {
    /// Nothing was sent: a message is over the size limit.
    #[error("message {index} is {size} bytes; the limit is {MAX_PAYLOAD_BYTES}")]
    TooLarge { index: usize, size: usize },
    /// SQS refused an entry as our fault (invalid body, missing group id…). Permanent.
    #[error("SQS rejected message {index}: {code}: {message}")]
    Rejected {
        index: usize,
        code: String,
        message: String,
    },
    /// SQS did not accept everything after retries, or did not answer. Retryable; `sent` went through.
    #[error("SQS unavailable after {sent} messages were sent: {reason}")]
    Unavailable { sent: usize, reason: String },
}

impl QueueError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, QueueError::Unavailable { .. })
    }
}

/// What a publish did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PublishReport {
    pub sent: usize,
    /// `SendMessageBatch` calls made, retries included.
    pub calls: usize,
    /// Entries that failed once and were sent again.
    pub retried: usize,
}

#[derive(Debug, Clone)]
pub struct QueuePublisher {
    sqs: aws_sdk_sqs::Client,
    max_attempts: u32,
    base_backoff: Duration,
}

impl QueuePublisher {
    pub fn new(sqs: aws_sdk_sqs::Client) -> Self {
        Self {
            sqs,
            max_attempts: 5,
            base_backoff: Duration::from_millis(20),
        }
    }

    pub fn client(&self) -> &aws_sdk_sqs::Client {
        &self.sqs
    }

    /// Sends every message, in order within each group. Sizes are checked before anything is sent.
    pub async fn publish(
        &self,
        queue_url: &str,
        messages: Vec<QueueMessage>,
    ) -> Result<PublishReport, QueueError> {
        if let Some((index, size)) = messages
            .iter()
            .enumerate()
            .map(|(i, m)| (i, m.size()))
            .find(|&(_, size)| size > MAX_PAYLOAD_BYTES)
        {
            return Err(QueueError::TooLarge { index, size });
        }
        let mut report = PublishReport::default();
        for wave in waves(messages.into_iter().enumerate()) {
            let batches = batches(wave);
            let results: Vec<PublishReport> = stream::iter(batches)
                .map(|batch| self.send_with_retries(queue_url, batch))
                .buffer_unordered(CONCURRENT_BATCHES)
                .try_collect()
                .await
                .map_err(|e| match e {
                    QueueError::Unavailable { sent, reason } => QueueError::Unavailable {
                        sent: report.sent + sent,
                        reason,
                    },
                    other => other,
                })?;
            for r in results {
                report.sent += r.sent;
                report.calls += r.calls;
                report.retried += r.retried;
            }
        }
        Ok(report)
    }

    async fn send_with_retries(
        &self,
        queue_url: &str,
        batch: Vec<(usize, QueueMessage)>,
    ) -> Result<PublishReport, QueueError> {
        let mut report = PublishReport::default();
        let mut pending = batch;
        for attempt in 0..self.max_attempts {
            if attempt > 0 {
                tokio::time::sleep(self.base_backoff * 2u32.pow(attempt - 1)).await;
            }
            let entries = pending
                .iter()
                .map(|(index, m)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(index.to_string())
                        .message_body(&m.body)
                        .set_message_group_id(m.group_id.clone())
                        .set_message_deduplication_id(m.dedup_id.clone())
                        .build()
                        .expect("id and body are set")
                })
                .collect::<Vec<_>>();
            report.calls += 1;
            let out = match self
                .sqs
                .send_message_batch()
                .queue_url(queue_url)
                .set_entries(Some(entries))
                .send()
                .await
            {
                Ok(out) => out,
                Err(err) => {
                    let code = err.code().unwrap_or_default().to_owned();
                    // A 4xx other than throttling is our fault (missing queue, invalid parameter,
                    // access denied): retrying cannot fix it.
                    let status = err.raw_response().map(|r| r.status().as_u16()).unwrap_or(0);
                    let throttled = code.contains("Throttl") || code.contains("RequestThrottled");
                    if (400..500).contains(&status) && !throttled {
                        return Err(QueueError::Rejected {
                            index: pending[0].0,
                            code,
                            message: err.message().unwrap_or_default().to_owned(),
                        });
                    }
                    if attempt + 1 == self.max_attempts {
                        return Err(QueueError::Unavailable {
                            sent: report.sent,
                            reason: format!("{}", aws_sdk_sqs::error::DisplayErrorContext(&err)),
                        });
                    }
                    report.retried += pending.len();
                    continue;
                }
            };
            report.sent += out.successful.len();
            if let Some(permanent) = out.failed.iter().find(|f| f.sender_fault) {
                return Err(QueueError::Rejected {
                    index: permanent.id.parse().unwrap_or_default(),
                    code: permanent.code.clone(),
                    message: permanent.message.clone().unwrap_or_default(),
                });
            }
            // An entry SQS reports neither as successful nor as failed did not go through either.
            let succeeded: HashSet<&str> = out.successful.iter().map(|s| s.id.as_str()).collect();
            pending.retain(|(index, _)| !succeeded.contains(index.to_string().as_str()));
            if pending.is_empty() {
                return Ok(report);
            }
            report.retried += pending.len();
            if attempt + 1 == self.max_attempts {
                let codes: Vec<&str> = out.failed.iter().map(|f| f.code.as_str()).collect();
                return Err(QueueError::Unavailable {
                    sent: report.sent,
                    reason: format!(
                        "{} entries still failing after {} attempts: {codes:?}",
                        pending.len(),
                        self.max_attempts
                    ),
                });
            }
        }
        unreachable!("the loop returns on its last attempt")
    }
}

/// Splits indexed messages into waves: the n-th message of each group goes in wave n; messages without a
/// group all go in the first wave.
fn waves(messages: impl Iterator<Item = (usize, QueueMessage)>) -> Vec<Vec<(usize, QueueMessage)>> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut waves: Vec<Vec<(usize, QueueMessage)>> = Vec::new();
    for (index, message) in messages {
        let wave = match &message.group_id {
            None => 0,
            Some(group) => {
                let n = seen.entry(group.clone()).or_insert(0);
                *n += 1;
                *n - 1
            }
        };
        if waves.len() <= wave {
            waves.resize_with(wave + 1, Vec::new);
        }
        waves[wave].push((index, message));
    }
    waves
}

/// Packs one wave into batches of at most [`BATCH_LIMIT`] entries and [`MAX_PAYLOAD_BYTES`].
fn batches(wave: Vec<(usize, QueueMessage)>) -> Vec<Vec<(usize, QueueMessage)>> {
    let mut out: Vec<Vec<(usize, QueueMessage)>> = Vec::new();
    let mut bytes = 0;
    for entry in wave {
        let size = entry.1.size();
        let start_new = out
            .last()
            .is_none_or(|b| b.len() == BATCH_LIMIT || bytes + size > MAX_PAYLOAD_BYTES);
        if start_new {
            out.push(Vec::new());
            bytes = 0;
        }
        bytes += size;
        out.last_mut().expect("pushed above").push(entry);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(group: &str, body: &str) -> QueueMessage {
        QueueMessage::fifo(body.into(), group, body)
    }

    #[test]
    fn nth_message_of_a_group_goes_in_wave_n() {
        let input = vec![
            msg("a", "a1"),
            msg("b", "b1"),
            msg("a", "a2"),
            msg("a", "a3"),
            msg("c", "c1"),
        ];
        let w = waves(input.into_iter().enumerate());
        let bodies: Vec<Vec<&str>> = w
            .iter()
            .map(|wave| wave.iter().map(|(_, m)| m.body.as_str()).collect())
            .collect();
        assert_eq!(bodies, vec![vec!["a1", "b1", "c1"], vec!["a2"], vec!["a3"]]);
    }

    #[test]
    fn distinct_groups_pack_into_full_batches() {
        let input: Vec<_> = (0..25)
            .map(|i| msg(&format!("g{i}"), &format!("m{i}")))
            .collect();
        let w = waves(input.into_iter().enumerate());
        assert_eq!(w.len(), 1);
        let b = batches(w.into_iter().next().unwrap());
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), vec![10, 10, 5]);
    }

    #[test]
    fn batches_respect_the_byte_limit() {
        let big = "x".repeat(100 * 1024);
        let input: Vec<_> = (0..5)
            .map(|i| (i, QueueMessage::standard(big.clone())))
            .collect();
        let b = batches(input);
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), vec![2, 2, 1]);
    }
}
