//! Answering one inbound message, at most once: the facts are read, [`policy::decide`] says what to do,
//! and this module does it — a skip or a handoff recorded, or the providers asked and their answer
//! stored as a draft or sent through the [`Outbox`], which holds the send-once guarantee. What was done
//! is recorded on the inbound message (its `reply_outcome`), so a redelivery does nothing twice.

pub mod policy;

use time::OffsetDateTime;
use tokio::time::Instant;

use crate::ids::TenantId;
use crate::jobs::InboundJob;
use crate::llm::offline::cache::IndexCache;
use crate::llm::offline::{KnowledgeIndex, NoAnswer, Ranked, Social, Verdict};
use crate::llm::{Answer, AnsweredBy, ChainOutcome, Prompt, Providers};
use crate::model::stats::{Counter, StatsDelta};
use crate::model::{
    AiMode, Author, Conversation, ConversationMode, Draft, DraftStatus, HandoffReason,
    KnowledgeEntry, Message, ProviderKind, ReplyOutcome, Tenant, UsageDelta, month_of,
};
use crate::platform::send::{LINE_REPLY_TOKEN_LIFETIME, SendError};
use crate::secret::MessageText;
use crate::service::analytics;
use crate::service::outbound::{Delivered, Delivery, DeliveryError, Outbox};
use crate::store::{OutcomeRecord, Store, StoreError};
use crate::telemetry::Metrics;

use policy::{Decision, MonthUsage};

/// The facts an answer is composed from.
#[derive(Clone, Copy)]
struct Asked<'a> {
    job: &'a InboundJob,
    tenant: &'a Tenant,
    conversation: &'a Conversation,
    inbound: &'a Message,
    history: &'a [Message],
    now: OffsetDateTime,
}

/// What [`ReplyService::compose`] came to.
enum Composed {
    Say(MessageText, UsageDelta),
    /// The providers could not answer; the conversation went to a person.
    HandedOff,
}

/// Messages read for the prompt (and to find a newer customer message).
const HISTORY_MESSAGES: i32 = 30;
/// A customer message after this long without one begins a new conversation in the figures (the
/// platforms' messaging window).
const CONVERSATION_GAP: time::Duration = time::Duration::hours(24);
/// Tokens of conversation history the prompt may carry.
const HISTORY_BUDGET_TOKENS: usize = 2_000;
/// Knowledge entries the prompt carries.
const KNOWLEDGE_IN_PROMPT: usize = 3;

/// What ai-reply does with a message when the offline provider is the AI (no LLM key configured).
#[derive(Debug, Clone, Copy)]
pub enum OfflineReply<'a> {
    /// Sends this entry's answer.
    Answer(Ranked<'a>),
    /// A greeting or thanks alone: sends the tenant's acknowledgement.
    Acknowledge { social: Social, text: &'a str },
    /// A greeting or thanks alone, and the tenant set no acknowledgement: nothing is sent.
    Silent(Social),
    /// Gives the conversation to a person.
    HandOff(NoAnswer),
}

/// The offline decision for `question`, the tenant's acknowledgements included: what
/// `inboxctl knowledge ask` shows a business testing its knowledge base.
pub fn offline_reply<'a>(
    tenant: &'a Tenant,
    index: &'a KnowledgeIndex,
    question: &str,
) -> OfflineReply<'a> {
    match index.decide(question) {
        Verdict::Answer(ranked) => OfflineReply::Answer(ranked),
        Verdict::Social(social) => match tenant.acknowledgement(social) {
            Some(text) => OfflineReply::Acknowledge { social, text },
            None => OfflineReply::Silent(social),
        },
        Verdict::HandOff(reason) => OfflineReply::HandOff(reason),
    }
}

/// Why a job must be tried again. Everything that will never succeed is recorded as an outcome
/// instead, and is not an error.
#[derive(Debug, thiserror::Error)]
pub enum ReplyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("every provider failed ({tried} tried)")]
    ProvidersUnavailable { tried: usize },
    #[error("send: {0}")]
    Delivery(DeliveryError),
}

impl ReplyError {
    /// False for a failure that will repeat on every delivery (DynamoDB refused the request, a stored
    /// item does not decode): the job goes to the dead-letter queue, where it can be read.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Store(e) => e.is_retryable(),
            Self::ProvidersUnavailable { .. } => true,
            Self::Delivery(e) => e.is_retryable(),
        }
    }
}

type Result<T, E = ReplyError> = std::result::Result<T, E>;

/// One delivery of a job.
#[derive(Debug, Clone, Copy)]
pub struct Attempt {
    /// The queue's last delivery of it (its `maxReceiveCount`): if this one fails too, a person takes
    /// the conversation.
    pub last: bool,
    /// When the invocation must have finished (providers are given what remains).
    pub deadline: Instant,
}

pub struct ReplyService {
    store: Store,
    outbox: Outbox,
    providers: Providers,
    metrics: Metrics,
    /// Each tenant's knowledge index, kept while the container is warm.
    knowledge: IndexCache,
}

impl ReplyService {
    pub fn new(store: Store, outbox: Outbox, providers: Providers, metrics: Metrics) -> Self {
        Self {
            store,
            outbox,
            providers,
            metrics,
            knowledge: IndexCache::default(),
        }
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The send path, for approving drafts in the same process (the local stack, tests).
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// Handles one job and records its outcome. On the last attempt a failure first hands the
    /// conversation to a person (see [`Self::give_up`]), then is returned like any other.
    pub async fn handle(&self, job: &InboundJob, attempt: Attempt) -> Result<()> {
        let mut wrote_before = None;
        let outcome = match self.reply(job, attempt, &mut wrote_before).await {
            Ok(outcome) => outcome,
            Err(err) => {
                if attempt.last {
                    self.give_up(job).await;
                }
                return Err(err);
            }
        };
        if let Some((outcome, code)) = outcome {
            self.metrics.count(outcome_metric(outcome), 1);
            self.record_outcome(job, outcome, code, wrote_before)
                .await?;
            tracing::info!(outcome = outcome.as_str(), "inbound message handled");
        }
        Ok(())
    }

    /// Reads the facts, decides and acts. `None`: nothing to record (the message or its tenant is
    /// gone, or an earlier delivery handled it).
    /// `wrote_before` learns from the history, when it tells, whether the customer had written in the
    /// 24 hours before this message (the day's figures need it).
    async fn reply(
        &self,
        job: &InboundJob,
        attempt: Attempt,
        wrote_before: &mut Option<bool>,
    ) -> Result<Option<(ReplyOutcome, Option<i64>)>> {
        let Some(tenant) = self.store.get_tenant(&job.tenant_id).await? else {
            self.metrics.count("TenantGone", 1);
            return Ok(None);
        };
        if let Some(reason) = policy::tenant_stage(&tenant) {
            return Ok(reason.outcome().map(|outcome| (outcome, None)));
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
        *wrote_before = customer_wrote_before(&history, inbound);
        let now = self.store.now();
        if let Some(decision) =
            policy::conversation_stage(&tenant, &conversation, inbound, &history, now)
        {
            return self.conclude(decision, &conversation).await;
        }
        let usage = if policy::needs_usage(&tenant) {
            self.month_usage(&tenant.tenant_id, now).await?
        } else {
            MonthUsage::default()
        };
        let channel = self
            .store
            .get_channel(&job.tenant_id, &job.channel_id)
            .await?;
        let decision = policy::send_stage(&tenant, usage, channel.as_ref());
        let (mode, channel) = match (decision, channel) {
            (Decision::Draft, Some(channel)) => (AiMode::Draft, channel),
            (Decision::Send, Some(channel)) => (AiMode::Auto, channel),
            (decision, _) => return self.conclude(decision, &conversation).await,
        };

        let asked = Asked {
            job,
            tenant: &tenant,
            conversation: &conversation,
            inbound,
            history: &history,
            now,
        };
        let (text, usage) = match self.compose(&asked, attempt).await? {
            Composed::Say(text, usage) => (text, usage),
            Composed::HandedOff => return Ok(Some((ReplyOutcome::HandedOff, None))),
        };
        let retain_until = tenant.retention.content_deadline(now);
        let replied = UsageDelta {
            replies: 1,
            ..usage
        };
        if mode == AiMode::Draft {
            self.draft(job, text, now, retain_until).await?;
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
                audit: None,
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
                Err(ReplyError::Delivery(err))
            }
            Err(err) => {
                self.record_usage(job, now, usage).await?;
                self.metrics.count("SendRefused", 1);
                tracing::warn!(tenant_id = %job.tenant_id, conversation_id = %job.conversation_id, error = %err, "send refused");
                Ok(Some(refused_outcome(&err)))
            }
        }
    }

    /// What to say: the tenant's acknowledgement of a greeting or thanks, or the providers' answer. A
    /// provider chain that cannot answer hands the conversation to a person.
    async fn compose(&self, asked: &Asked<'_>, attempt: Attempt) -> Result<Composed> {
        let Asked {
            job,
            tenant,
            conversation,
            inbound,
            history,
            now,
        } = *asked;
        if let Some(acknowledgement) = policy::acknowledgement(tenant, inbound) {
            // Its own words, no provider asked.
            return Ok(Composed::Say(
                MessageText::new(acknowledgement),
                UsageDelta::default(),
            ));
        }
        let question = inbound.text.as_ref().map_or("", MessageText::expose);
        let knowledge = self.store.knowledge_of_tenant(&tenant.tenant_id).await?;
        let index = self.knowledge.index(&tenant.tenant_id, knowledge);
        let in_prompt: Vec<&KnowledgeEntry> = index
            .rank(question)
            .iter()
            .take(KNOWLEDGE_IN_PROMPT)
            .map(|r| r.entry)
            .collect();
        let prompt = Prompt::build(tenant, &in_prompt, history, HISTORY_BUDGET_TOKENS);
        let knowledge_match = match index.decide(question) {
            Verdict::Answer(ranked) => Some(ranked.entry),
            _ => None,
        };
        let outcome = self
            .providers
            .answer(
                &tenant.provider_order,
                &prompt,
                knowledge_match,
                attempt.deadline,
            )
            .await;
        let (answer, usage) = match self.account(outcome) {
            Ok(answered) => answered,
            Err(tried) => {
                let calls = UsageDelta {
                    provider_calls: tried as u64,
                    ..UsageDelta::default()
                };
                self.record_usage(job, now, calls).await?;
                if attempt.last {
                    // The last delivery: a person takes over; the record goes to the dead-letter queue.
                    self.hand_off(conversation, HandoffReason::AiUnavailable)
                        .await?;
                    self.metrics.count("HandedOffAiUnavailable", 1);
                }
                return Err(ReplyError::ProvidersUnavailable { tried });
            }
        };
        match answer {
            Answer::Handoff => {
                self.record_usage(job, now, usage).await?;
                self.hand_off(conversation, HandoffReason::AiCouldNotAnswer)
                    .await?;
                Ok(Composed::HandedOff)
            }
            Answer::Reply(text) => Ok(Composed::Say(text, usage)),
        }
    }

    /// Carries out a decision that asks no provider: a skip (recorded, unless an earlier delivery did)
    /// or a handoff.
    async fn conclude(
        &self,
        decision: Decision,
        conversation: &Conversation,
    ) -> Result<Option<(ReplyOutcome, Option<i64>)>> {
        match decision {
            Decision::Skip(reason) => {
                if reason.outcome().is_none() {
                    self.metrics.count("AlreadyHandled", 1);
                }
                Ok(reason.outcome().map(|outcome| (outcome, None)))
            }
            Decision::HandOff(reason) => {
                self.hand_off(conversation, reason).await?;
                Ok(Some((ReplyOutcome::HandedOff, None)))
            }
            // The policy sends only through a channel it was shown, and that one is here.
            Decision::Draft | Decision::Send => {
                unreachable!("a draft or a send is never concluded without a provider")
            }
        }
    }

    /// Counts what the provider chain did; `Err(tried)` when no provider answered.
    fn account(&self, outcome: ChainOutcome) -> Result<(Answer, UsageDelta), usize> {
        match outcome {
            ChainOutcome::Unavailable { failures } => Err(failures.len()),
            ChainOutcome::Answered {
                by,
                answer,
                input_tokens,
                output_tokens,
                latency,
                failures,
            } => {
                let llm_calls = failures.len() as u64 + u64::from(by != AnsweredBy::Offline);
                self.metrics
                    .count("ProviderFailures", failures.len() as u64);
                self.metrics.count(
                    match by {
                        AnsweredBy::Llm(ProviderKind::Anthropic) => "AnsweredByAnthropic",
                        AnsweredBy::Llm(ProviderKind::Openai) => "AnsweredByOpenai",
                        AnsweredBy::Offline => "AnsweredOffline",
                    },
                    1,
                );
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
                Ok((answer, usage))
            }
        }
    }

    /// Stores the answer for a person to approve; a redelivery finds the draft of the first attempt.
    async fn draft(
        &self,
        job: &InboundJob,
        text: MessageText,
        now: OffsetDateTime,
        retain_until: OffsetDateTime,
    ) -> Result<()> {
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
            Ok(()) | Err(StoreError::Conflict(_)) => Ok(()),
            Err(other) => Err(other.into()),
        }
    }

    /// The last delivery failed too, and the record goes to the dead-letter queue (its alarm fires): a
    /// person takes the conversation unless one already has it, and the message is recorded as handed
    /// off. So it counts as answered, and a later redelivery of its webhook does not queue it again to
    /// be answered hours late. Best effort: a failure here is logged.
    async fn give_up(&self, job: &InboundJob) {
        self.metrics.count("GaveUp", 1);
        let result: Result<()> = async {
            let conversation = self
                .store
                .get_conversation(&job.tenant_id, &job.channel_id, &job.conversation_id)
                .await?;
            if let Some(conversation) = conversation.filter(|c| c.mode == ConversationMode::Bot) {
                self.hand_off(&conversation, HandoffReason::ReplyFailed)
                    .await?;
            }
            self.record_outcome(job, ReplyOutcome::HandedOff, None, None)
                .await
        }
        .await;
        if let Err(err) = result {
            tracing::error!(error = %err, "could not record the give-up");
        }
    }

    /// Records on the inbound message what was done about it and, the first time, counts the message
    /// in the day's figures (a conversation begins with it when the customer had not written for 24
    /// hours).
    async fn record_outcome(
        &self,
        job: &InboundJob,
        outcome: ReplyOutcome,
        code: Option<i64>,
        wrote_before: Option<bool>,
    ) -> Result<()> {
        let recorded = self
            .store
            .record_outcome(&OutcomeRecord {
                tenant_id: &job.tenant_id,
                conversation_id: &job.conversation_id,
                message_id: &job.message_id,
                sent_at: job.sent_at,
                outcome,
                error_code: code,
            })
            .await?;
        if !recorded {
            return Ok(());
        }
        let wrote_before = match wrote_before {
            Some(known) => known,
            None => {
                self.store
                    .customer_wrote_between(
                        &job.tenant_id,
                        &job.conversation_id,
                        job.sent_at.saturating_sub(CONVERSATION_GAP),
                        job.sent_at,
                    )
                    .await?
            }
        };
        let mut counters = vec![Counter::CustomerMessages, Counter::Outcome(outcome)];
        if !wrote_before {
            counters.push(Counter::Conversations);
        }
        analytics::count(
            &self.store,
            StatsDelta {
                tenant_id: job.tenant_id.clone(),
                platform: job.platform,
                at: job.sent_at,
                counters,
            },
        )
        .await;
        Ok(())
    }

    async fn hand_off(&self, conversation: &Conversation, reason: HandoffReason) -> Result<()> {
        self.store
            .set_conversation_mode(
                &conversation.tenant_id,
                &conversation.channel_id,
                &conversation.conversation_id,
                ConversationMode::Human,
                Some(reason.as_str()),
            )
            .await?;
        Ok(())
    }

    /// The tenant's replies and tokens this month (all channels).
    async fn month_usage(&self, tenant_id: &TenantId, now: OffsetDateTime) -> Result<MonthUsage> {
        let rows = self.store.usage_of_month(tenant_id, &month_of(now)).await?;
        Ok(MonthUsage {
            replies: rows.iter().map(|u| u.replies).sum(),
            tokens: rows.iter().map(|u| u.input_tokens + u.output_tokens).sum(),
        })
    }

    async fn record_usage(
        &self,
        job: &InboundJob,
        now: OffsetDateTime,
        delta: UsageDelta,
    ) -> Result<()> {
        if delta == UsageDelta::default() {
            return Ok(());
        }
        self.store
            .add_usage(&job.tenant_id, &job.channel_id, &month_of(now), delta)
            .await?;
        Ok(())
    }
}

/// What is recorded when the platform refused a send for good.
fn refused_outcome(err: &DeliveryError) -> (ReplyOutcome, Option<i64>) {
    match err {
        DeliveryError::WindowClosed(_) => (ReplyOutcome::WindowClosed, None),
        DeliveryError::ChannelUnavailable(_) => (ReplyOutcome::ChannelUnavailable, None),
        DeliveryError::Send(SendError::TokenInvalid { code, .. }) => {
            (ReplyOutcome::ChannelUnavailable, Some(*code))
        }
        DeliveryError::Send(SendError::WindowClosed { code }) => {
            (ReplyOutcome::WindowClosed, Some(*code))
        }
        DeliveryError::Send(send) => (ReplyOutcome::SendFailed, send.code()),
        DeliveryError::InProgress | DeliveryError::Store(_) | DeliveryError::Vault(_) => {
            (ReplyOutcome::SendFailed, None)
        }
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
        ReplyOutcome::NothingToAnswer => "NothingToAnswer",
    }
}

/// One draft per inbound message, whatever the number of deliveries: the id derives from the message id.
fn draft_id_for(message_id: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, message_id.as_bytes());
    format!("dft_{}", hex::encode(&digest.as_ref()[..16]))
}

/// Whether the customer wrote in the 24 hours before `inbound`, if `history` (the newest messages,
/// oldest first) tells: yes when one of its customer messages is in that window; no when none is and the
/// history reaches back beyond it or holds the whole conversation; `None` otherwise.
fn customer_wrote_before(history: &[Message], inbound: &Message) -> Option<bool> {
    let since = inbound.sent_at.saturating_sub(CONVERSATION_GAP);
    let wrote = history.iter().any(|m| {
        m.author == Author::Customer
            && m.message_id != inbound.message_id
            && m.sent_at >= since
            && m.sent_at < inbound.sent_at
    });
    let whole_window = history.len() < HISTORY_MESSAGES as usize
        || history.first().is_some_and(|oldest| oldest.sent_at < since);
    (wrote || whole_window).then_some(wrote)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::send::SendError;

    fn message(id: &str, author: Author, hours_ago: i64) -> Message {
        let now = time::macros::datetime!(2026-12-01 12:00 UTC);
        Message {
            tenant_id: TenantId::new("t"),
            conversation_id: crate::ids::ConversationId::new("c"),
            channel_id: crate::ids::ChannelId::new("ch"),
            message_id: id.into(),
            direction: if author == Author::Customer {
                crate::model::Direction::Inbound
            } else {
                crate::model::Direction::Outbound
            },
            author,
            text: None,
            attachments: Vec::new(),
            payload: None,
            status: crate::model::MessageStatus::Received,
            error_code: None,
            sent_at: now - time::Duration::hours(hours_ago),
            retain_until: now,
            reply_outcome: None,
        }
    }

    #[test]
    fn the_history_tells_whether_the_customer_wrote_the_day_before_when_it_reaches_that_far() {
        let inbound = message("new", Author::Customer, 0);
        let earlier = message("earlier", Author::Customer, 3);
        let reply = message("reply", Author::Ai, 2);
        let old = message("old", Author::Customer, 30);
        assert_eq!(
            customer_wrote_before(&[earlier.clone(), reply.clone(), inbound.clone()], &inbound),
            Some(true)
        );
        // The whole conversation, or reaching back beyond 24 hours: no.
        assert_eq!(
            customer_wrote_before(&[old.clone(), reply.clone(), inbound.clone()], &inbound),
            Some(false)
        );
        assert_eq!(
            customer_wrote_before(std::slice::from_ref(&inbound), &inbound),
            Some(false)
        );
        // A full page of replies within the day: the history cannot tell.
        let mut full: Vec<Message> = (0..HISTORY_MESSAGES - 1)
            .map(|i| message(&format!("r{i}"), Author::Agent, 1))
            .collect();
        full.push(inbound.clone());
        assert_eq!(customer_wrote_before(&full, &inbound), None);
    }

    #[test]
    fn draft_ids_are_stable_per_message() {
        assert_eq!(draft_id_for("m_1"), draft_id_for("m_1"));
        assert_ne!(draft_id_for("m_1"), draft_id_for("m_2"));
        assert_eq!(draft_id_for("m_1").len(), 36);
    }

    #[test]
    fn a_refused_send_is_recorded_by_its_kind_with_the_platforms_code() {
        let cases = [
            (
                DeliveryError::Send(SendError::TokenInvalid {
                    code: 190,
                    reason: crate::model::ReauthReason::TokenInvalid,
                }),
                (ReplyOutcome::ChannelUnavailable, Some(190)),
            ),
            (
                DeliveryError::Send(SendError::WindowClosed { code: 10 }),
                (ReplyOutcome::WindowClosed, Some(10)),
            ),
            (
                DeliveryError::Send(SendError::Rejected {
                    status: 400,
                    code: Some(100),
                    subcode: None,
                }),
                (ReplyOutcome::SendFailed, Some(100)),
            ),
            (
                DeliveryError::ChannelUnavailable("disconnected"),
                (ReplyOutcome::ChannelUnavailable, None),
            ),
        ];
        for (err, expected) in cases {
            assert_eq!(refused_outcome(&err), expected, "{err}");
        }
    }
}
