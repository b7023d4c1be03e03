//! How well the offline provider answers a labelled set: a knowledge base, paraphrases of its
//! questions as customers write them, and messages it must not answer. The evaluation test holds every
//! language of `tests/fixtures/answerer/` to the goal. Test code only: it is not in the Lambda binaries.

use std::collections::BTreeMap;

use serde::Deserialize;
use time::OffsetDateTime;

use inbox_shared::llm::offline::{KnowledgeIndex, Verdict};
use inbox_shared::model::{KnowledgeEntry, TenantId};

/// One language's set, as stored in `tests/fixtures/answerer/<language>.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct EvaluationSet {
    pub language: String,
    pub entries: Vec<LabelledEntry>,
    pub negatives: Vec<Negative>,
}

/// A knowledge entry and the ways customers ask it.
#[derive(Debug, Clone, Deserialize)]
pub struct LabelledEntry {
    pub id: String,
    pub question: String,
    pub answer: String,
    /// Other ways the business words the question ([`KnowledgeEntry::alternates`]).
    #[serde(default)]
    pub alternates: Vec<String>,
    pub paraphrases: Vec<String>,
}

/// Paraphrases of one language's entries kept out of the tuning, as stored in
/// `tests/fixtures/answerer/held_out/<language>.json`: written before the recall work of issue 16.
#[derive(Debug, Clone, Deserialize)]
pub struct HeldOut {
    pub language: String,
    /// Entry id → paraphrases.
    pub paraphrases: BTreeMap<String, Vec<String>>,
}

/// A message no entry answers.
#[derive(Debug, Clone, Deserialize)]
pub struct Negative {
    pub kind: NegativeKind,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NegativeKind {
    /// A greeting, thanks or acknowledgement alone: recognised as social.
    Social,
    /// Chat that asks nothing the business answers ("are you a bot?").
    SmallTalk,
    /// A question the knowledge base does not cover, or does not say which entry covers.
    Uncovered,
}

/// A message the provider got wrong, for reading a failed evaluation.
#[derive(Debug, Clone)]
pub struct Miss {
    pub text: String,
    /// The entry it should have answered with (`None` for a negative).
    pub expected: Option<String>,
    /// What it did: an entry id, `social`, or `handoff:<reason>`.
    pub got: String,
}

/// The figures of one language.
#[derive(Debug, Clone, Default)]
pub struct Scores {
    pub language: String,
    pub paraphrases: usize,
    /// Paraphrases answered, right or wrong.
    pub answered: usize,
    /// Paraphrases answered with their own entry.
    pub answered_right: usize,
    pub negatives: usize,
    /// Negatives answered with an entry: must be none.
    pub negatives_answered: usize,
    pub social: usize,
    /// Social negatives recognised as social.
    pub social_recognised: usize,
    pub misses: Vec<Miss>,
}

impl Scores {
    /// Of the paraphrases answered, the share answered with the right entry (1 when none was).
    pub fn precision(&self) -> f64 {
        ratio(self.answered_right, self.answered, 1.0)
    }

    /// Of all paraphrases, the share answered with the right entry.
    pub fn recall(&self) -> f64 {
        ratio(self.answered_right, self.paraphrases, 0.0)
    }
}

fn ratio(part: usize, whole: usize, if_none: f64) -> f64 {
    if whole == 0 {
        if_none
    } else {
        part as f64 / whole as f64
    }
}

/// Whether the knowledge base is indexed with the business's alternative phrasings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alternates {
    Used,
    Left,
}

fn index_of(set: &EvaluationSet, alternates: Alternates) -> KnowledgeIndex {
    KnowledgeIndex::new(
        set.entries
            .iter()
            .map(|e| KnowledgeEntry {
                tenant_id: TenantId::new("evaluation"),
                entry_id: e.id.clone(),
                question: e.question.clone(),
                answer: e.answer.clone(),
                alternates: match alternates {
                    Alternates::Used => e.alternates.clone(),
                    Alternates::Left => Vec::new(),
                },
                created_at: OffsetDateTime::UNIX_EPOCH,
            })
            .collect(),
    )
}

fn outcome(index: &KnowledgeIndex, text: &str) -> Result<String, String> {
    match index.decide(text) {
        Verdict::Answer(ranked) => Ok(ranked.entry.entry_id.clone()),
        Verdict::Social(_) => Err("social".to_owned()),
        Verdict::HandOff(reason) => Err(format!("handoff:{}", reason.as_str())),
    }
}

/// Asks the provider every paraphrase and negative of `set` against its knowledge base.
pub fn evaluate(set: &EvaluationSet) -> Scores {
    evaluate_with(set, Alternates::Used)
}

/// Asks the provider the held-out paraphrases of `set`'s entries (no negatives).
pub fn evaluate_held_out(set: &EvaluationSet, held_out: &HeldOut) -> Scores {
    let index = index_of(set, Alternates::Used);
    let mut scores = Scores {
        language: held_out.language.clone(),
        ..Scores::default()
    };
    for (id, paraphrases) in &held_out.paraphrases {
        assert!(
            set.entries.iter().any(|e| &e.id == id),
            "{}: held-out paraphrases of an unknown entry {id}",
            held_out.language
        );
        for paraphrase in paraphrases {
            score_paraphrase(&mut scores, id, paraphrase, outcome(&index, paraphrase));
        }
    }
    scores
}

fn score_paraphrase(scores: &mut Scores, id: &str, text: &str, got: Result<String, String>) {
    scores.paraphrases += 1;
    match got {
        Ok(got) if got == id => {
            scores.answered += 1;
            scores.answered_right += 1;
        }
        got => {
            scores.answered += usize::from(got.is_ok());
            scores.misses.push(Miss {
                text: text.to_owned(),
                expected: Some(id.to_owned()),
                got: got.unwrap_or_else(|other| other),
            });
        }
    }
}

/// [`evaluate`], with or without the business's alternative phrasings.
pub fn evaluate_with(set: &EvaluationSet, alternates: Alternates) -> Scores {
    let index = index_of(set, alternates);
    let mut scores = Scores {
        language: set.language.clone(),
        ..Scores::default()
    };
    let outcome = |text: &str| outcome(&index, text);
    for entry in &set.entries {
        for paraphrase in &entry.paraphrases {
            score_paraphrase(&mut scores, &entry.id, paraphrase, outcome(paraphrase));
        }
    }
    for negative in &set.negatives {
        scores.negatives += 1;
        let got = outcome(&negative.text);
        let recognised_social = matches!(&got, Err(what) if what == "social");
        let wrong = got.is_ok() || (negative.kind == NegativeKind::Social && !recognised_social);
        if negative.kind == NegativeKind::Social {
            scores.social += 1;
            scores.social_recognised += usize::from(recognised_social);
        }
        scores.negatives_answered += usize::from(got.is_ok());
        if wrong {
            scores.misses.push(Miss {
                text: negative.text.clone(),
                expected: None,
                got: got.unwrap_or_else(|other| other),
            });
        }
    }
    scores
}
