//! ai-reply: answers the customer messages webhook-ingest queued, at most once each.
//!
//! It consumes the inbound FIFO queue (one message group per conversation) and reports partial batch
//! failures: a record that failed for a reason that may pass (a provider or platform rate limit, a 5xx,
//! a throttled DynamoDB) is reported failed and SQS redelivers it; so are the later records of its group,
//! so a conversation's order holds. Everything that will never succeed is recorded on the inbound message
//! (its `reply_outcome`) and acknowledged.
//!
//! Policy before any provider call: the tenant's AI mode, human mode, a customer asking for a person, a
//! newer message of the same conversation (a burst gets one reply, to the latest), the reply window, and
//! the tenant's monthly plan limits. Then the provider chain (see `inbox_shared::llm`), then a draft or a
//! send through the outbox, which holds the send-once guarantee.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration as StdDuration;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use inbox_shared::aws::AwsClients;
use inbox_shared::clock::{self, SharedClock};
use inbox_shared::config::{Config, ConfigError};
use inbox_shared::jobs::InboundJob;
use inbox_shared::lambda;
use inbox_shared::llm::offline::KnowledgeIndex;
use inbox_shared::llm::{Answer, AnsweredBy, ChainOutcome, Prompt, Providers};
use inbox_shared::model::*;
use inbox_shared::outbound::{self, Delivered, Delivery, DeliveryError, Outbox};
use inbox_shared::platform::send::{LINE_REPLY_TOKEN_LIFETIME, Sender};
use inbox_shared::runner::{EventFunction, Function, Invocation};
use inbox_shared::secret::MessageText;
use inbox_shared::store::{Store, StoreError};
use inbox_shared::telemetry::Metrics;
use inbox_shared::vault::TokenVault;
use tokio::time::Instant;
use tracing::Instrument;
use tracing::field::Empty;

pub const FUNCTION: &str = "ai-reply";
/// Messages read for the prompt (and to find a newer customer message).
const HISTORY_MESSAGES: i32 = 30;
/// Tokens of conversation history the prompt may carry.
const HISTORY_BUDGET_TOKENS: usize = 2_000;
/// Knowledge entries the prompt carries.
const KNOWLEDGE_IN_PROMPT: usize = 3;

/// Machine reasons a conversation went to a human (stored on the conversation; no content).
pub mod handoff_reason {
    pub const CUSTOMER_ASKED: &str = "customer_asked_for_a_person";
    pub const AI_DECIDED: &str = "ai_could_not_answer";
    pub const AI_UNAVAILABLE: &str = "ai_unavailable";
    pub const OVER_MESSAGE_LIMIT: &str = "monthly_message_limit_reached";
    pub const OVER_TOKEN_LIMIT: &str = "monthly_token_limit_reached";
    /// Every delivery of the job failed (a platform or AWS error that did not clear).
    pub const REPLY_FAILED: &str = "reply_failed";
}

/// Phrases (lower-cased) by which a customer asks for a person.
const PERSON_REQUESTS: &[&str] = &[
    "human",
    "real person",
    "a person",
    "representative",
    "talk to someone",
    "speak to someone",
    "operator",
    "担当者",
    "オペレーター",
    "人間",
];
/// Button payloads that ask for a person (Messenger/Instagram postbacks, LINE postback data).
const HANDOFF_PAYLOADS: &[&str] = &["handoff", "human", "action=handoff"];

/// Why a record must be retried.
#[derive(Debug)]
struct Retry(String);

impl From<StoreError> for Retry {
    fn from(err: StoreError) -> Self {
        Retry(format!("store: {err}"))
    }
}

pub struct Replier {
    store: Store,
    outbox: Outbox,
    providers: Providers,
    metrics: Metrics,
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
            store,
            outbox,
            providers: Providers::from_config(config, http),
            metrics: Metrics::new(FUNCTION),
            max_receives: config.inbound_max_receives,
        }
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The send path, for approving drafts in the same process (the local stack, tests).
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
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
                self.metrics.count("HeldForOrder", 1);
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
                message_id = Empty,
            );
            let handled = self
                .handle_record(record, deadline)
                .instrument(span.clone())
                .await;
            if let Err(Retry(reason)) = handled {
                self.metrics.count("Retried", 1);
                span.in_scope(|| tracing::warn!(%reason, "will be retried"));
                failed.push(id);
            }
        }
        failed
    }

    async fn handle_record(&self, record: &SqsMessage, deadline: Instant) -> Result<(), Retry> {
        let job: InboundJob = serde_json::from_str(record.body.as_deref().unwrap_or_default())
            .map_err(|e| {
                // Cannot succeed; failing it sends it to the dead-letter queue, where it can be read.
                self.metrics.count("MalformedJob", 1);
                Retry(format!("the body is not an inbound job: {e}"))
            })?;
        let span = tracing::Span::current();
        span.record("tenant_id", job.tenant_id.as_str());
        span.record("channel_id", job.channel_id.as_str());
        span.record("conversation_id", job.conversation_id.as_str());
        span.record("message_id", job.message_id.as_str());
        let receive_count: u32 = record
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|c| c.parse().ok())
            .unwrap_or(1);
        let outcome = match self.reply(&job, receive_count, deadline).await {
            Ok(outcome) => outcome,
            Err(retry) if receive_count >= self.max_receives => {
                self.give_up(&job).await;
                return Err(retry);
            }
            Err(retry) => return Err(retry),
        };
        if let Some((outcome, code)) = outcome {
            self.metrics.count(outcome_metric(outcome), 1);
            self.record_outcome(&job, outcome, code).await?;
            tracing::info!(outcome = outcome.as_str(), "inbound message handled");
        }
        Ok(())
    }

    /// Decides and acts. `None`: nothing to record (the message or its tenant is gone, or it was
    /// handled by an earlier delivery).
    async fn reply(
        &self,
        job: &InboundJob,
        receive_count: u32,
        deadline: Instant,
    ) -> Result<Option<(ReplyOutcome, Option<i64>)>, Retry> {
        let Some(tenant) = self.store.get_tenant(&job.tenant_id).await? else {
            self.metrics.count("TenantGone", 1);
            return Ok(None);
        };
        if tenant.status != TenantStatus::Active || tenant.ai_mode == AiMode::Off {
            return Ok(Some((ReplyOutcome::AiOff, None)));
        }
        let Some(conversation) = self
            .store
            .get_conversation(&job.tenant_id, &job.channel_id, &job.conversation_id)
            .await?
        else {
            self.metrics.count("ConversationGone", 1);
            return Ok(None);
        };
        let history = self
            .store
            .recent_messages(&job.tenant_id, &job.conversation_id, HISTORY_MESSAGES)
            .await?;
        let Some(inbound) = history.iter().find(|m| m.message_id == job.message_id) else {
            // Erased, or older than the history window: nothing sensible to answer.
            self.metrics.count("MessageGone", 1);
            return Ok(None);
        };
        if inbound.reply_outcome.is_some() {
            self.metrics.count("AlreadyHandled", 1);
            return Ok(None);
        }
        let newest_from_customer = history
            .iter()
            .rev()
            .find(|m| m.author == Author::Customer && m.direction == Direction::Inbound);
        if newest_from_customer.is_some_and(|m| m.message_id != job.message_id) {
            return Ok(Some((ReplyOutcome::Superseded, None)));
        }
        if conversation.mode == ConversationMode::Human {
            return Ok(Some((ReplyOutcome::HumanMode, None)));
        }
        if asks_for_a_person(inbound) {
            self.hand_off(&conversation, handoff_reason::CUSTOMER_ASKED)
                .await?;
            return Ok(Some((ReplyOutcome::HandedOff, None)));
        }
        let now = self.store.now();
        if outbound::window_closes_at(job.platform, &conversation)
            .is_some_and(|closes| now >= closes)
        {
            return Ok(Some((ReplyOutcome::WindowClosed, None)));
        }
        if let Some(reason) = self.over_plan_limit(&tenant, now).await? {
            self.hand_off(&conversation, reason).await?;
            return Ok(Some((ReplyOutcome::HandedOff, None)));
        }
        let Some(channel) = self
            .store
            .get_channel(&job.tenant_id, &job.channel_id)
            .await?
            .filter(|c| c.status == ChannelStatus::Connected)
        else {
            return Ok(Some((ReplyOutcome::ChannelUnavailable, None)));
        };

        let knowledge = self.store.knowledge_of_tenant(&tenant.tenant_id).await?;
        let index = KnowledgeIndex::new(&knowledge);
        let question = inbound.text.as_ref().map_or("", MessageText::expose);
        let ranked = index.rank(question);
        let in_prompt: Vec<&KnowledgeEntry> = ranked
            .iter()
            .take(KNOWLEDGE_IN_PROMPT)
            .map(|r| r.entry)
            .collect();
        let prompt = Prompt::build(&tenant, &in_prompt, &history, HISTORY_BUDGET_TOKENS);
        let knowledge_match = index.best_match(question).map(|r| r.entry);
        let outcome = self
            .providers
            .answer(&tenant.provider_order, &prompt, knowledge_match, deadline)
            .await;

        let (by, answer, usage) = match outcome {
            ChainOutcome::Unavailable { failures } => {
                let calls = UsageDelta {
                    provider_calls: failures.len() as u64,
                    ..UsageDelta::default()
                };
                self.record_usage(job, now, calls).await?;
                if receive_count >= self.max_receives {
                    // The last delivery: a person takes over; the record goes to the dead-letter queue.
                    self.hand_off(&conversation, handoff_reason::AI_UNAVAILABLE)
                        .await?;
                    self.metrics.count("HandedOffAiUnavailable", 1);
                }
                return Err(Retry(format!(
                    "every provider failed ({} tried)",
                    failures.len()
                )));
            }
            ChainOutcome::Answered {
                by,
                answer,
                input_tokens,
                output_tokens,
                latency,
                failures,
            } => {
                let llm_calls = failures.len() as u64 + u64::from(by != AnsweredBy::Offline);
                let usage = UsageDelta {
                    input_tokens,
                    output_tokens,
                    provider_calls: llm_calls,
                    anthropic_answers: u64::from(by == AnsweredBy::Llm(ProviderKind::Anthropic)),
                    openai_answers: u64::from(by == AnsweredBy::Llm(ProviderKind::Openai)),
                    offline_answers: u64::from(by == AnsweredBy::Offline),
                    provider_latency_ms: latency.as_millis() as u64,
                    ..UsageDelta::default()
                };
                self.metrics
                    .count("ProviderFailures", failures.len() as u64);
                (by, answer, usage)
            }
        };
        self.metrics.count(
            match by {
                AnsweredBy::Llm(ProviderKind::Anthropic) => "AnsweredByAnthropic",
                AnsweredBy::Llm(ProviderKind::Openai) => "AnsweredByOpenai",
                AnsweredBy::Offline => "AnsweredOffline",
            },
            1,
        );
        let text = match answer {
            Answer::Handoff => {
                self.record_usage(job, now, usage).await?;
                self.hand_off(&conversation, handoff_reason::AI_DECIDED)
                    .await?;
                return Ok(Some((ReplyOutcome::HandedOff, None)));
            }
            Answer::Reply(text) => text,
        };
        let retain_until = now + tenant.retention.content();
        let replied = UsageDelta {
            replies: 1,
            ..usage
        };
        if tenant.ai_mode == AiMode::Draft {
            let draft = Draft {
                tenant_id: job.tenant_id.clone(),
                conversation_id: job.conversation_id.clone(),
                channel_id: job.channel_id.clone(),
                draft_id: draft_id_for(&job.message_id),
                in_reply_to: job.message_id.clone(),
                text,
                status: DraftStatus::Pending,
                created_at: now,
                decided_at: None,
                retain_until,
            };
            match self.store.create_draft(&draft).await {
                // A redelivery finds the draft of the first attempt.
                Ok(()) | Err(StoreError::Conflict(_)) => {}
                Err(other) => return Err(other.into()),
            }
            self.record_usage(job, now, replied).await?;
            return Ok(Some((ReplyOutcome::Drafted, None)));
        }

        let reply_token = job
            .reply_token
            .as_deref()
            .filter(|_| now - job.received_at < LINE_REPLY_TOKEN_LIFETIME);
        let idempotency_key = format!("reply:{}", job.message_id);
        let delivered = self
            .outbox
            .deliver(&Delivery {
                channel: &channel,
                conversation: &conversation,
                text: &text,
                author: Author::Ai,
                idempotency_key: &idempotency_key,
                reply_token,
                retain_until,
            })
            .await;
        match delivered {
            Ok(Delivered::Sent { .. }) => {
                self.record_usage(job, now, replied).await?;
                Ok(Some((ReplyOutcome::Replied, None)))
            }
            Ok(Delivered::AlreadySent { .. }) => {
                self.metrics.count("AlreadySent", 1);
                Ok(Some((ReplyOutcome::Replied, None)))
            }
            Err(err) if err.is_retryable() => {
                self.record_usage(job, now, usage).await?;
                Err(Retry(format!("send: {err}")))
            }
            Err(err) => {
                self.record_usage(job, now, usage).await?;
                self.metrics.count("SendRefused", 1);
                tracing::warn!(tenant_id = %job.tenant_id, conversation_id = %job.conversation_id, error = %err, "send refused");
                Ok(Some(match &err {
                    DeliveryError::WindowClosed(_) => (ReplyOutcome::WindowClosed, None),
                    DeliveryError::ChannelUnavailable(_) => {
                        (ReplyOutcome::ChannelUnavailable, None)
                    }
                    DeliveryError::Send(send) => match send.reason() {
                        "token_invalid" => (ReplyOutcome::ChannelUnavailable, send.code()),
                        "window_closed" => (ReplyOutcome::WindowClosed, send.code()),
                        _ => (ReplyOutcome::SendFailed, send.code()),
                    },
                    _ => (ReplyOutcome::SendFailed, None),
                }))
            }
        }
    }

    /// The last delivery failed too, and the record goes to the dead-letter queue (its alarm fires): a
    /// person takes the conversation unless one already has it, and the message is recorded as handed
    /// off. So it counts as answered, and a later redelivery of its webhook does not queue it again to
    /// be answered hours late. Best effort: a failure here is logged.
    async fn give_up(&self, job: &InboundJob) {
        self.metrics.count("GaveUp", 1);
        let result: Result<(), Retry> = async {
            let conversation = self
                .store
                .get_conversation(&job.tenant_id, &job.channel_id, &job.conversation_id)
                .await?;
            if let Some(conversation) = conversation.filter(|c| c.mode == ConversationMode::Bot) {
                self.hand_off(&conversation, handoff_reason::REPLY_FAILED)
                    .await?;
            }
            self.record_outcome(job, ReplyOutcome::HandedOff, None)
                .await
        }
        .await;
        if let Err(Retry(reason)) = result {
            tracing::error!(message_id = %job.message_id, %reason, "could not record the give-up");
        }
    }

    /// Records on the inbound message what was done about it.
    async fn record_outcome(
        &self,
        job: &InboundJob,
        outcome: ReplyOutcome,
        code: Option<i64>,
    ) -> Result<(), Retry> {
        self.store
            .set_reply_outcome(
                &job.tenant_id,
                &job.conversation_id,
                job.sent_at,
                &job.message_id,
                outcome,
                code,
            )
            .await?;
        Ok(())
    }

    async fn hand_off(&self, conversation: &Conversation, reason: &str) -> Result<(), Retry> {
        self.store
            .set_conversation_mode(
                &conversation.tenant_id,
                &conversation.channel_id,
                &conversation.conversation_id,
                ConversationMode::Human,
                Some(reason),
            )
            .await?;
        Ok(())
    }

    /// The plan limit this tenant has reached this month, if any.
    async fn over_plan_limit(
        &self,
        tenant: &Tenant,
        now: time::OffsetDateTime,
    ) -> Result<Option<&'static str>, Retry> {
        if tenant.monthly_message_limit.is_none() && tenant.monthly_token_limit.is_none() {
            return Ok(None);
        }
        let usage = self
            .store
            .usage_of_month(&tenant.tenant_id, &month_of(now))
            .await?;
        let replies: u64 = usage.iter().map(|u| u.replies).sum();
        let tokens: u64 = usage.iter().map(|u| u.input_tokens + u.output_tokens).sum();
        Ok(
            if tenant
                .monthly_message_limit
                .is_some_and(|limit| replies >= limit)
            {
                Some(handoff_reason::OVER_MESSAGE_LIMIT)
            } else if tenant
                .monthly_token_limit
                .is_some_and(|limit| tokens >= limit)
            {
                Some(handoff_reason::OVER_TOKEN_LIMIT)
            } else {
                None
            },
        )
    }

    async fn record_usage(
        &self,
        job: &InboundJob,
        now: time::OffsetDateTime,
        delta: UsageDelta,
    ) -> Result<(), Retry> {
        if delta == UsageDelta::default() {
            return Ok(());
        }
        self.store
            .add_usage(&job.tenant_id, &job.channel_id, &month_of(now), delta)
            .await?;
        Ok(())
    }
}

impl Function for Replier {
    const NAME: &'static str = FUNCTION;

    fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}

/// The Lambda entry point (through `inbox_shared::runner`): the batch within the invocation's
/// deadline; failed records are reported in the response, never as a failed invocation.
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

/// What one poll of the queue did.
pub use inbox_shared::lambda::Polled;

impl Replier {
    /// Without Lambda's event source mapping (the local stack, tests): one batch from the inbound queue
    /// in one `invocation`, as Lambda would run it (see [`lambda::poll_once`]).
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

fn outcome_metric(outcome: ReplyOutcome) -> &'static str {
    match outcome {
        ReplyOutcome::Replied => "Replied",
        ReplyOutcome::Drafted => "Drafted",
        ReplyOutcome::Superseded => "Superseded",
        ReplyOutcome::AiOff => "AiOff",
        ReplyOutcome::HumanMode => "HumanMode",
        ReplyOutcome::HandedOff => "HandedOff",
        ReplyOutcome::WindowClosed => "WindowClosed",
        ReplyOutcome::ChannelUnavailable => "ChannelUnavailable",
        ReplyOutcome::SendFailed => "SendFailed",
    }
}

/// Whether the customer asked for a person, by a handoff button or in words.
fn asks_for_a_person(message: &Message) -> bool {
    let payload = message
        .payload
        .as_deref()
        .unwrap_or_default()
        .to_lowercase();
    if HANDOFF_PAYLOADS.contains(&payload.as_str()) {
        return true;
    }
    let text = message
        .text
        .as_ref()
        .map_or(String::new(), |t| t.expose().to_lowercase());
    PERSON_REQUESTS.iter().any(|phrase| text.contains(phrase))
}

/// One draft per inbound message, whatever the number of deliveries: the id derives from the message id.
fn draft_id_for(message_id: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, message_id.as_bytes());
    format!("dft_{}", hex::encode(&digest.as_ref()[..16]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn customer(text: &str, payload: Option<&str>) -> Message {
        Message {
            tenant_id: "t".into(),
            conversation_id: "c".into(),
            channel_id: "ch".into(),
            message_id: "m".into(),
            direction: Direction::Inbound,
            author: Author::Customer,
            text: Some(MessageText::new(text)),
            attachments: Vec::new(),
            payload: payload.map(str::to_owned),
            status: MessageStatus::Received,
            error_code: None,
            sent_at: datetime!(2026-11-02 9:00 UTC),
            retain_until: datetime!(2027-11-02 9:00 UTC),
            reply_outcome: None,
        }
    }

    #[test]
    fn a_request_for_a_person_is_recognised_in_words_and_buttons() {
        assert!(asks_for_a_person(&customer(
            "Can I talk to a HUMAN please",
            None
        )));
        assert!(asks_for_a_person(&customer("担当者と話したい", None)));
        assert!(asks_for_a_person(&customer("", Some("HANDOFF"))));
        assert!(asks_for_a_person(&customer("", Some("action=handoff"))));
        assert!(!asks_for_a_person(&customer(
            "Do you ship to Osaka?",
            Some("SHIPPING_Q")
        )));
    }

    #[test]
    fn draft_ids_are_stable_per_message() {
        assert_eq!(draft_id_for("m_1"), draft_id_for("m_1"));
        assert_ne!(draft_id_for("m_1"), draft_id_for("m_2"));
        assert_eq!(draft_id_for("m_1").len(), 36);
    }
}
