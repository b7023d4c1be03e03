//! LLM providers and the chain that picks one: the Anthropic Messages API, OpenAI Chat Completions (any
//! compatible server through its base URL, e.g. a self-hosted model for data residency), and the offline
//! provider that answers from the tenant's knowledge entries.
//!
//! The chain tries the providers that have a key, in the tenant's order. A 429, a 5xx, a timeout or a
//! network error — and a 4xx, which a retry will not fix but the next provider may — falls through to
//! the next one. When every LLM failed, the offline provider answers if a knowledge entry matches;
//! otherwise the chain reports the providers unavailable and the caller retries later. With no LLM
//! configured at all, the offline provider is the AI: a match is the answer, no match is a handoff.
//!
//! Message text reaches a provider only inside the request body; no log line carries it.

pub mod mask;
pub mod offline;

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;
use tokio::time::Instant;

use crate::config::Config;
use crate::https;
use crate::model::{Author, KnowledgeEntry, Message, ProviderKind, Tenant};
use crate::secret::{AppSecret, MessageText};

/// The model answers exactly this when it cannot help or the customer wants a person.
pub const HANDOFF_MARKER: &str = "HANDOFF";
/// Longest a single provider call may take, however much time the invocation has left.
const MAX_CALL: Duration = Duration::from_secs(25);
/// Time kept back from the invocation's deadline for sending and recording after the call.
const RESERVE: Duration = Duration::from_secs(4);
const MAX_OUTPUT_TOKENS: u32 = 512;
const ANTHROPIC_VERSION: &str = "2023-06-01";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Customer,
    Business,
}

/// One message of the conversation as the provider sees it.
#[derive(Debug, Clone)]
pub struct Turn {
    pub role: Role,
    pub text: MessageText,
}

/// What a provider is asked: the system text (rules, tenant instructions, knowledge) and the recent
/// conversation, oldest first, alternating and starting with the customer.
#[derive(Debug, Clone)]
pub struct Prompt {
    pub system: String,
    pub turns: Vec<Turn>,
}

/// Rough token count for budgeting: ~4 ASCII characters per token, one per other character.
pub fn estimate_tokens(text: &str) -> usize {
    let ascii = text.bytes().filter(u8::is_ascii).count();
    let other = text.chars().filter(|c| !c.is_ascii()).count();
    ascii.div_ceil(4) + other
}

impl Prompt {
    /// Builds the prompt from the tenant's instructions, the best-matching knowledge entries and as many
    /// of the newest messages (oldest first in `history`) as fit `history_budget` tokens. With
    /// `mask_personal_data`, conversation text is masked first.
    pub fn build(
        tenant: &Tenant,
        knowledge: &[&KnowledgeEntry],
        history: &[Message],
        history_budget: usize,
    ) -> Self {
        let mut system = format!(
            "You answer customers of {name} in their messaging inbox. Reply in the customer's language, \
             briefly and politely, as plain text without markdown. Use only the business information \
             below and the conversation; never invent prices, dates or policies. If you cannot answer \
             from it, or the customer asks for a person, reply with exactly {HANDOFF_MARKER} and nothing \
             else.",
            name = tenant.name
        );
        if !tenant.instructions.trim().is_empty() {
            system.push_str("\n\nInstructions from the business:\n");
            system.push_str(tenant.instructions.trim());
        }
        if !knowledge.is_empty() {
            system.push_str("\n\nBusiness information (questions and answers):");
            for entry in knowledge {
                system.push_str(&format!("\nQ: {}\nA: {}", entry.question, entry.answer));
            }
        }

        let mut turns: Vec<Turn> = Vec::new();
        let mut used = 0;
        for message in history.iter().rev() {
            let Some(text) = message.text.as_ref().filter(|t| !t.is_empty()) else {
                continue;
            };
            let text = if tenant.mask_personal_data {
                MessageText::new(mask::mask_personal_data(text.expose()))
            } else {
                text.clone()
            };
            used += estimate_tokens(text.expose());
            if used > history_budget && !turns.is_empty() {
                break;
            }
            let role = match message.author {
                Author::Customer => Role::Customer,
                Author::Ai | Author::Agent => Role::Business,
            };
            match turns.last_mut() {
                // Consecutive messages of one side become one turn (providers want alternation).
                Some(last) if last.role == role => {
                    last.text =
                        MessageText::new(format!("{}\n{}", text.expose(), last.text.expose()));
                }
                _ => turns.push(Turn { role, text }),
            }
        }
        turns.reverse();
        while turns.first().is_some_and(|t| t.role == Role::Business) {
            turns.remove(0);
        }
        Self { system, turns }
    }
}

/// A provider's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Reply(MessageText),
    Handoff,
}

/// Who answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnsweredBy {
    Llm(ProviderKind),
    Offline,
}

impl AnsweredBy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Llm(kind) => kind.as_str(),
            Self::Offline => "offline",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// Rate limited, 5xx, timed out, unreachable, or no time left: may work later.
    #[error("provider unavailable: {0}")]
    Unavailable(String),
    /// Refused the request (4xx: bad key, bad model): will not work by retrying as is.
    #[error("provider refused the request: {0}")]
    Rejected(String),
}

impl From<https::InvalidSegment> for ProviderError {
    fn from(err: https::InvalidSegment) -> Self {
        Self::Rejected(err.to_string())
    }
}

/// The chain's result.
#[derive(Debug)]
pub enum ChainOutcome {
    Answered {
        by: AnsweredBy,
        answer: Answer,
        input_tokens: u64,
        output_tokens: u64,
        latency: Duration,
        /// Providers that failed before this one answered.
        failures: Vec<(ProviderKind, ProviderError)>,
    },
    /// Every LLM failed and no knowledge entry matched: retry later.
    Unavailable {
        failures: Vec<(ProviderKind, ProviderError)>,
    },
}

struct Endpoint {
    base_url: String,
    model: String,
    key: AppSecret,
}

/// The configured providers, built once per container.
pub struct Providers {
    http: reqwest::Client,
    anthropic: Option<Endpoint>,
    openai: Option<Endpoint>,
}

struct Generated {
    text: String,
    input_tokens: u64,
    output_tokens: u64,
}

impl Providers {
    pub fn from_config(config: &Config, http: reqwest::Client) -> Self {
        let endpoint = |key: &Option<AppSecret>, base_url: &str, model: &str| {
            key.as_ref().map(|key| Endpoint {
                base_url: base_url.to_owned(),
                model: model.to_owned(),
                key: key.clone(),
            })
        };
        Self {
            http,
            anthropic: endpoint(
                &config.anthropic_api_key,
                &config.anthropic_base_url,
                &config.anthropic_model,
            ),
            openai: endpoint(
                &config.openai_api_key,
                &config.openai_base_url,
                &config.openai_model,
            ),
        }
    }

    fn endpoint(&self, kind: ProviderKind) -> Option<&Endpoint> {
        match kind {
            ProviderKind::Anthropic => self.anthropic.as_ref(),
            ProviderKind::Openai => self.openai.as_ref(),
        }
    }

    /// Runs the chain for `prompt`. `knowledge_match` is the offline provider's answer, if an entry
    /// matched the customer's question. Calls end before `deadline` (the invocation's).
    pub async fn answer(
        &self,
        order: &[ProviderKind],
        prompt: &Prompt,
        knowledge_match: Option<&KnowledgeEntry>,
        deadline: Instant,
    ) -> ChainOutcome {
        let mut failures = Vec::new();
        let mut tried_llm = false;
        for &kind in order {
            let Some(endpoint) = self.endpoint(kind) else {
                continue;
            };
            tried_llm = true;
            let started = Instant::now();
            let budget = deadline
                .saturating_duration_since(started)
                .saturating_sub(RESERVE)
                .min(MAX_CALL);
            let result = if budget < Duration::from_millis(500) {
                Err(ProviderError::Unavailable(
                    "no time left in this invocation".into(),
                ))
            } else {
                self.call(kind, endpoint, prompt, budget).await
            };
            match result {
                Ok(generated) => {
                    let text = generated.text.trim();
                    let answer = if text.starts_with(HANDOFF_MARKER) {
                        Answer::Handoff
                    } else {
                        Answer::Reply(MessageText::new(text))
                    };
                    return ChainOutcome::Answered {
                        by: AnsweredBy::Llm(kind),
                        answer,
                        input_tokens: generated.input_tokens,
                        output_tokens: generated.output_tokens,
                        latency: started.elapsed(),
                        failures,
                    };
                }
                Err(err) => {
                    tracing::warn!(provider = kind.as_str(), error = %err, "provider failed; trying the next");
                    failures.push((kind, err));
                }
            }
        }
        match (knowledge_match, tried_llm) {
            (Some(entry), _) => ChainOutcome::Answered {
                by: AnsweredBy::Offline,
                answer: Answer::Reply(MessageText::new(entry.answer.clone())),
                input_tokens: 0,
                output_tokens: 0,
                latency: Duration::ZERO,
                failures,
            },
            (None, false) => ChainOutcome::Answered {
                by: AnsweredBy::Offline,
                answer: Answer::Handoff,
                input_tokens: 0,
                output_tokens: 0,
                latency: Duration::ZERO,
                failures,
            },
            (None, true) => ChainOutcome::Unavailable { failures },
        }
    }

    async fn call(
        &self,
        kind: ProviderKind,
        endpoint: &Endpoint,
        prompt: &Prompt,
        timeout: Duration,
    ) -> Result<Generated, ProviderError> {
        let role = |role: Role| match role {
            Role::Customer => "user",
            Role::Business => "assistant",
        };
        let request = match kind {
            ProviderKind::Anthropic => {
                let messages: Vec<_> = prompt
                    .turns
                    .iter()
                    .map(|t| json!({"role": role(t.role), "content": t.text.expose()}))
                    .collect();
                self.http
                    .post(https::endpoint(&endpoint.base_url, &["v1", "messages"])?)
                    .header("x-api-key", endpoint.key.expose_secret())
                    .header("anthropic-version", ANTHROPIC_VERSION)
                    .json(&json!({
                        "model": endpoint.model,
                        "max_tokens": MAX_OUTPUT_TOKENS,
                        "system": prompt.system,
                        "messages": messages,
                    }))
            }
            ProviderKind::Openai => {
                let messages: Vec<_> =
                    std::iter::once(json!({"role": "system", "content": prompt.system}))
                        .chain(
                            prompt
                                .turns
                                .iter()
                                .map(|t| json!({"role": role(t.role), "content": t.text.expose()})),
                        )
                        .collect();
                self.http
                    .post(https::endpoint(
                        &endpoint.base_url,
                        &["chat", "completions"],
                    )?)
                    .bearer_auth(endpoint.key.expose_secret())
                    .json(&json!({
                        "model": endpoint.model,
                        "max_tokens": MAX_OUTPUT_TOKENS,
                        "messages": messages,
                    }))
            }
        };
        let response = request.timeout(timeout).send().await.map_err(|e| {
            ProviderError::Unavailable(if e.is_timeout() {
                format!("no answer within {} ms", timeout.as_millis())
            } else {
                format!("request failed: {}", e.without_url())
            })
        })?;
        let status = response.status();
        if status.as_u16() == 429 || status.is_server_error() {
            return Err(ProviderError::Unavailable(format!("HTTP {status}")));
        }
        if !status.is_success() {
            return Err(ProviderError::Rejected(format!("HTTP {status}")));
        }
        let body = response.bytes().await.map_err(|e| {
            ProviderError::Unavailable(format!("reading the answer: {}", e.without_url()))
        })?;
        let generated = match kind {
            ProviderKind::Anthropic => parse_anthropic(&body),
            ProviderKind::Openai => parse_openai(&body),
        }
        .ok_or_else(|| ProviderError::Unavailable("the answer has no text".into()))?;
        Ok(generated)
    }
}

fn parse_anthropic(body: &[u8]) -> Option<Generated> {
    #[derive(Deserialize)]
    struct Response {
        content: Vec<Block>,
        #[serde(default)]
        usage: Usage,
    }
    #[derive(Deserialize)]
    struct Block {
        #[serde(rename = "type")]
        kind: String,
        #[serde(default)]
        text: String,
    }
    #[derive(Deserialize, Default)]
    struct Usage {
        #[serde(default)]
        input_tokens: u64,
        #[serde(default)]
        output_tokens: u64,
    }
    let response: Response = serde_json::from_slice(body).ok()?;
    let text: String = response
        .content
        .into_iter()
        .filter(|b| b.kind == "text")
        .map(|b| b.text)
        .collect();
    (!text.trim().is_empty()).then_some(Generated {
        text,
        input_tokens: response.usage.input_tokens,
        output_tokens: response.usage.output_tokens,
    })
}

fn parse_openai(body: &[u8]) -> Option<Generated> {
    #[derive(Deserialize)]
    struct Response {
        choices: Vec<Choice>,
        #[serde(default)]
        usage: Usage,
    }
    #[derive(Deserialize)]
    struct Choice {
        message: ChoiceMessage,
    }
    #[derive(Deserialize)]
    struct ChoiceMessage {
        #[serde(default)]
        content: Option<String>,
    }
    #[derive(Deserialize, Default)]
    struct Usage {
        #[serde(default)]
        prompt_tokens: u64,
        #[serde(default)]
        completion_tokens: u64,
    }
    let response: Response = serde_json::from_slice(body).ok()?;
    let text = response.choices.into_iter().next()?.message.content?;
    (!text.trim().is_empty()).then_some(Generated {
        text,
        input_tokens: response.usage.prompt_tokens,
        output_tokens: response.usage.completion_tokens,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ChannelId, ConversationId, Direction, MessageStatus, TenantId};
    use time::macros::datetime;

    fn message(author: Author, text: &str) -> Message {
        Message {
            tenant_id: TenantId::new("t"),
            conversation_id: ConversationId::new("c"),
            channel_id: ChannelId::new("ch"),
            message_id: text.into(),
            direction: if author == Author::Customer {
                Direction::Inbound
            } else {
                Direction::Outbound
            },
            author,
            text: Some(MessageText::new(text)),
            attachments: Vec::new(),
            payload: None,
            status: MessageStatus::Received,
            error_code: None,
            sent_at: datetime!(2026-11-02 9:00 UTC),
            retain_until: datetime!(2027-11-02 9:00 UTC),
            reply_outcome: None,
        }
    }

    #[test]
    fn prompt_alternates_starts_with_the_customer_and_keeps_the_newest_within_budget() {
        let mut tenant = Tenant::new(
            TenantId::new("t"),
            "Kumo".into(),
            datetime!(2026-11-01 0:00 UTC),
        );
        tenant.instructions = "Be warm.".into();
        let history = vec![
            message(Author::Ai, "Welcome!"),
            message(Author::Customer, "old question ".repeat(50).as_str()),
            message(Author::Ai, "old answer"),
            message(Author::Customer, "Hi"),
            message(Author::Customer, "Do you ship to Osaka?"),
        ];
        let prompt = Prompt::build(&tenant, &[], &history, 20);
        assert!(prompt.system.contains("Be warm."));
        assert_eq!(prompt.turns.len(), 1, "the old turns do not fit 20 tokens");
        assert_eq!(prompt.turns[0].role, Role::Customer);
        assert_eq!(prompt.turns[0].text.expose(), "Hi\nDo you ship to Osaka?");

        let prompt = Prompt::build(&tenant, &[], &history, 10_000);
        let roles: Vec<Role> = prompt.turns.iter().map(|t| t.role).collect();
        assert_eq!(roles, [Role::Customer, Role::Business, Role::Customer]);
    }

    #[test]
    fn prompt_masks_personal_data_when_the_tenant_asks() {
        let mut tenant = Tenant::new(
            TenantId::new("t"),
            "Kumo".into(),
            datetime!(2026-11-01 0:00 UTC),
        );
        tenant.mask_personal_data = true;
        let history = vec![message(
            Author::Customer,
            "I'm aiko@example.com, card 4242 4242 4242 4242",
        )];
        let prompt = Prompt::build(&tenant, &[], &history, 1_000);
        assert_eq!(
            prompt.turns[0].text.expose(),
            "I'm [email], card [card number]"
        );
    }

    #[test]
    fn provider_answers_parse() {
        let a = parse_anthropic(
            br#"{"content":[{"type":"text","text":"Yes!"}],"usage":{"input_tokens":12,"output_tokens":3}}"#,
        )
        .unwrap();
        assert_eq!(
            (a.text.as_str(), a.input_tokens, a.output_tokens),
            ("Yes!", 12, 3)
        );
        let o = parse_openai(
            br#"{"choices":[{"message":{"role":"assistant","content":"Yes!"}}],"usage":{"prompt_tokens":9,"completion_tokens":2}}"#,
        )
        .unwrap();
        assert_eq!(
            (o.text.as_str(), o.input_tokens, o.output_tokens),
            ("Yes!", 9, 2)
        );
        assert!(parse_anthropic(br#"{"content":[]}"#).is_none());
        assert!(parse_openai(b"not json").is_none());
    }
}
