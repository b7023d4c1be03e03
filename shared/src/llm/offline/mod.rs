//! The offline provider: answers from the tenant's knowledge entries when one clearly answers the
//! customer's question, and hands off otherwise. No network, no model: it keeps the AI useful without an
//! LLM key, it is the last link of the provider chain, and its ranking picks the entries the LLM prompt
//! includes.
//!
//! A wrong answer is sent in the business's name, so the decision ([`KnowledgeIndex::decide`]) is built
//! to know when it does not know:
//! - a message that is only a greeting or thanks ([`social`]) is not a question: no answer, no handoff;
//! - the question's words are analysed the same way as the entries' ([`analysis`]: normalisation,
//!   segmentation of unspaced scripts, stop words, stemming), misspelt words are looked up at one edit,
//!   an unknown Cyrillic word also in Latin letters;
//! - a word also stands for the **concept** it names ([`concepts`]: "how much", "cost", "цена",
//!   "いくら", "ราคา" all name `~price`), so a customer's word matches an entry worded otherwise. A
//!   concept match scores half a match of the word itself, and only an entry's question and
//!   alternates name its concepts (its answer mentions things in passing: "book by phone");
//! - entries are ranked with Okapi BM25 (k1 = 1.2, b = 0.75, BM25+'s non-negative IDF), a term of the
//!   entry's question or of one of its alternative phrasings (`KnowledgeEntry::alternates`, written by
//!   the business) counting twice one of its answer;
//! - the best entry answers only if it **covers** enough of the question — the IDF-weighted share of the
//!   question's terms it contains, a term found only in its answer counting half — and **clearly beats**
//!   the other entries, unless only it has a phrasing about just the concepts asked ("予約したい": the
//!   booking entry, not the one about cancelling a booking). A word the knowledge base has never seen
//!   weighs the most: "do you sell gift cards?" is not answered by the payment entry because it shares
//!   "card". A question word no entry uses weighs nothing there, and a word that only frames the
//!   request ("want", "today", a number) little. An entry sharing only question words ("how much")
//!   neither answers nor competes.
//!
//! The thresholds were chosen on the evaluation set in `tests/fixtures/answerer/`, whose test
//! (`shared/tests/answerer_evaluation.rs`) holds every language to precision ≥ 0.98, recall ≥ 0.80 and
//! no answer to a negative, and to precision ≥ 0.98 on held-out paraphrases (README).

pub mod analysis;
pub mod cache;
mod concepts;
mod kazakh;
pub mod social;

use std::collections::HashMap;

use crate::model::KnowledgeEntry;
use analysis::Token;
pub use social::Social;

const K1: f64 = 1.2;
const B: f64 = 0.75;
/// A term in the entry's question counts this many times one in its answer: customers ask what the
/// business wrote as the question.
const QUESTION_WEIGHT: u32 = 2;
/// Coverage credit of a question term found only in the entry's answer.
const ANSWER_ONLY_CREDIT: f64 = 0.5;
/// Least IDF-weighted share of the question the answering entry covers: half, and more than half
/// when it shares a single word with the question.
const MIN_COVERAGE: f64 = 0.5;
/// The best entry's score must be at least this multiple of the runner-up's.
const MIN_LEAD: f64 = 1.3;
/// What a word of the entries sharing the question word's root, or one edit away, scores of what the
/// word itself would: a guess is weaker evidence than the word.
const RELATED_TERM_STRENGTH: f64 = 0.5;
/// The lead needed when the best entry's only evidence is one word that the runner-up shares.
const MIN_LEAD_ON_ONE_WORD: f64 = 2.0;
/// What a match on a concept a question word names ([`concepts`]: "cost" for "price") scores of a
/// match on the word itself.
const CONCEPT_STRENGTH: f64 = 0.5;
/// Share of a rare word's weight that a framing word ([`analysis::Token::is_weak`]) the entries never
/// use weighs.
const UNKNOWN_WEAK_WEIGHT: f64 = 0.25;
/// Words shorter than this are not corrected: at one edit, too many short words are neighbours.
const MIN_CORRECTED_LETTERS: usize = 4;
/// Letters two words share at their start to be taken for one root.
const MIN_SHARED_ROOT: usize = 5;

/// Why the offline provider does not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoAnswer {
    /// No words to match: empty, or only symbols (a sticker or a photo without a caption).
    NoQuestion,
    /// No entry shares a term with the question.
    NoMatch,
    /// The best entry leaves too much of the question uncovered.
    LowCoverage,
    /// Two entries match about equally well.
    Ambiguous,
}

impl NoAnswer {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoQuestion => "no_question",
            Self::NoMatch => "no_match",
            Self::LowCoverage => "low_coverage",
            Self::Ambiguous => "ambiguous",
        }
    }
}

/// What the offline provider makes of a message.
#[derive(Debug, Clone, Copy)]
pub enum Verdict<'a> {
    /// This entry answers it.
    Answer(Ranked<'a>),
    /// Only a greeting or thanks: not a question.
    Social(Social),
    /// Hand the conversation to a person.
    HandOff(NoAnswer),
}

/// An entry and how well it matched.
#[derive(Debug, Clone, Copy)]
pub struct Ranked<'a> {
    pub entry: &'a KnowledgeEntry,
    pub score: f64,
    /// The IDF-weighted share of the question's terms the entry contains (answer-only terms at half).
    pub coverage: f64,
    /// The question's tokens the entry contains, question words not counted.
    pub evidence: usize,
    /// Its position among the index's entries.
    position: usize,
}

/// Where a term occurs in one entry.
#[derive(Debug, Clone, Copy)]
struct Posting {
    entry: u32,
    in_question: u16,
    in_answer: u16,
}

/// A BM25 index over one tenant's knowledge entries. It owns them, so a warm container keeps it
/// ([`cache::IndexCache`]).
pub struct KnowledgeIndex {
    entries: Vec<KnowledgeEntry>,
    postings: HashMap<String, Vec<Posting>>,
    /// Entry lengths in terms, question terms weighted.
    lengths: Vec<f64>,
    average_length: f64,
    /// Each word term of the entries with one letter deleted → those words (misspelling look-up).
    deletions: HashMap<String, Vec<String>>,
    /// The word terms of the entries, sorted (root look-up).
    words: Vec<String>,
    /// Per entry, per phrasing (its question, then its alternates): the concepts it names, sorted.
    phrasing_concepts: Vec<Vec<Vec<&'static str>>>,
}

/// A question's token as matched: the terms that match it and its weight.
struct QueryToken {
    terms: Vec<Alternative>,
    /// The concepts it names.
    concepts: Vec<&'static str>,
    weight: f64,
    is_question_word: bool,
}

/// A term that matches a question's token, and what a match on it scores of one on the token's own
/// term: less for the concept it names or an entry word sharing its root or one edit away.
struct Alternative {
    term: String,
    strength: f64,
}

impl KnowledgeIndex {
    pub fn new(entries: Vec<KnowledgeEntry>) -> Self {
        let mut postings: HashMap<String, Vec<Posting>> = HashMap::new();
        let mut lengths = Vec::with_capacity(entries.len());
        let mut words: Vec<String> = Vec::new();
        let mut phrasing_concepts = Vec::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            let mut named_by_phrasings = Vec::new();
            let mut counts: HashMap<String, (u16, u16)> = HashMap::new();
            let mut length = 0;
            let texts = std::iter::once((&entry.question, true))
                .chain(entry.alternates.iter().map(|a| (a, true)))
                .chain(std::iter::once((&entry.answer, false)));
            for (text, in_question) in texts {
                let mut named: Vec<&'static str> = Vec::new();
                for token in analysis::tokens(text) {
                    if in_question {
                        named.extend(token.concepts.iter().copied());
                    }
                    length += if in_question { QUESTION_WEIGHT } else { 1 };
                    if token.is_word {
                        words.extend(token.terms.iter().cloned());
                    }
                    let concepts = token
                        .concepts
                        .iter()
                        // What the entry is about is in its question and alternates; its answer
                        // mentions more in passing ("book by phone" is not about contacting).
                        .filter(|_| in_question)
                        .map(|c| (*c).to_owned());
                    for term in token.terms.into_iter().chain(concepts) {
                        let count = counts.entry(term).or_default();
                        if in_question {
                            count.0 = count.0.saturating_add(1);
                        } else {
                            count.1 = count.1.saturating_add(1);
                        }
                    }
                }
                if in_question {
                    named.sort_unstable();
                    named.dedup();
                    named_by_phrasings.push(named);
                }
            }
            phrasing_concepts.push(named_by_phrasings);
            for (term, (in_question, in_answer)) in counts {
                postings.entry(term).or_default().push(Posting {
                    entry: i as u32,
                    in_question,
                    in_answer,
                });
            }
            lengths.push(f64::from(length));
        }
        let average_length = if lengths.is_empty() {
            0.0
        } else {
            lengths.iter().sum::<f64>() / lengths.len() as f64
        };
        words.sort_unstable();
        words.dedup();
        let mut deletions: HashMap<String, Vec<String>> = HashMap::new();
        for word in &words {
            if word.chars().count() >= MIN_CORRECTED_LETTERS {
                for variant in one_deleted(word) {
                    deletions.entry(variant).or_default().push(word.clone());
                }
            }
        }
        Self {
            entries,
            postings,
            lengths,
            average_length,
            deletions,
            words,
            phrasing_concepts,
        }
    }

    pub fn entries(&self) -> &[KnowledgeEntry] {
        &self.entries
    }

    /// Whether an entry answers `question`, the message is only social, or a person should take it.
    pub fn decide(&self, question: &str) -> Verdict<'_> {
        let stripped = social::strip(question);
        if let Some(social) = stripped.social {
            return Verdict::Social(social);
        }
        let query = self.query(&stripped.rest);
        if query.is_empty() {
            return Verdict::HandOff(NoAnswer::NoQuestion);
        }
        let ranked = self.rank_query(&query);
        if ranked.is_empty() {
            return Verdict::HandOff(NoAnswer::NoMatch);
        }
        // An entry sharing only question words with the question ("how much", "where") neither
        // answers it nor competes with one that shares its subject.
        let mut candidates = ranked.iter().filter(|r| r.evidence > 0);
        let Some(best) = candidates.next().copied() else {
            return Verdict::HandOff(NoAnswer::LowCoverage);
        };
        let covered_enough = if best.evidence == 1 {
            best.coverage > MIN_COVERAGE
        } else {
            best.coverage >= MIN_COVERAGE
        };
        if !covered_enough {
            return Verdict::HandOff(NoAnswer::LowCoverage);
        }
        // One word that several entries use says which of them is meant only if one is about it
        // far more than the others ("delivery" the delivery entry, not "free" of three).
        let lead = if best.evidence < 2 {
            MIN_LEAD_ON_ONE_WORD
        } else {
            MIN_LEAD
        };
        let close: Vec<&Ranked<'_>> = candidates
            .take_while(|r| best.score < lead * r.score)
            .collect();
        if !close.is_empty() && !self.told_apart(&best, &close, &query) {
            return Verdict::HandOff(NoAnswer::Ambiguous);
        }
        Verdict::Answer(best)
    }

    /// Whether what the question is about tells `best` from the entries scoring close to it: one of
    /// its phrasings names just the concepts the question names and none of theirs does
    /// ("予約したい": the booking entry, not the one about cancelling a booking).
    fn told_apart(&self, best: &Ranked<'_>, close: &[&Ranked<'_>], query: &[QueryToken]) -> bool {
        let mut asked: Vec<&'static str> = query
            .iter()
            .flat_map(|t| t.concepts.iter().copied())
            .collect();
        asked.sort_unstable();
        asked.dedup();
        let names_just_what_is_asked = |ranked: &Ranked<'_>| {
            !asked.is_empty() && self.phrasing_concepts[ranked.position].contains(&asked)
        };
        names_just_what_is_asked(best) && !close.iter().any(|r| names_just_what_is_asked(r))
    }

    /// Entries sharing a term with the question, best first: what the LLM prompt carries.
    pub fn rank(&self, question: &str) -> Vec<Ranked<'_>> {
        self.rank_query(&self.query(&social::strip(question).rest))
    }

    /// The question's distinct tokens with their weights and alternatives: the concepts a token
    /// names; entry words sharing its root; for a word the entries never use, the entry words one
    /// edit away and its Latin spelling ("каспи" for "Kaspi").
    fn query(&self, text: &str) -> Vec<QueryToken> {
        let mut seen: Vec<String> = Vec::new();
        let mut query = Vec::new();
        for Token {
            terms,
            concepts,
            is_word,
            is_question_word,
            is_weak,
        } in analysis::tokens(text)
        {
            let mut alternatives: Vec<Alternative> = terms
                .iter()
                .map(|term| Alternative {
                    term: term.clone(),
                    strength: 1.0,
                })
                .chain(concepts.iter().map(|concept| Alternative {
                    term: (*concept).to_owned(),
                    strength: CONCEPT_STRENGTH,
                }))
                .collect();
            // The main term, or the concept of one spelt in hiragana, says whether it was seen.
            let Some(first) = alternatives.first() else {
                continue;
            };
            if seen.contains(&first.term) {
                continue;
            }
            seen.push(first.term.clone());
            // How common the word is among the entries, or else the concept it names.
            let document_frequency = self
                .largest_document_frequency(terms.iter().map(String::as_str))
                .or_else(|| self.largest_document_frequency(concepts.iter().copied()));
            let known = document_frequency.is_some();
            // A word the entries never use weighs as a word only one of them uses: it may be what
            // the question is about, or a paraphrase's own word for it. Unless it only asks "how
            // much" or "when", or frames the request ("I want", "today"): then it is not a subject
            // the knowledge base lacks.
            let weight = self.idf(document_frequency.unwrap_or(1))
                * match (known, is_question_word, is_weak) {
                    (true, _, _) => 1.0,
                    (false, true, _) => 0.0,
                    (false, false, true) => UNKNOWN_WEAK_WEIGHT,
                    (false, false, false) => 1.0,
                };
            if is_word {
                let mut related: Vec<String> =
                    terms.iter().flat_map(|t| self.same_root(t)).collect();
                if !known {
                    related.extend(terms.iter().flat_map(|t| self.corrections(t)));
                    related.extend(
                        terms
                            .iter()
                            .filter_map(|t| analysis::in_latin_letters(t))
                            .filter(|t| self.postings.contains_key(t)),
                    );
                }
                for term in related {
                    if !alternatives.iter().any(|a| a.term == term) {
                        alternatives.push(Alternative {
                            term,
                            strength: RELATED_TERM_STRENGTH,
                        });
                    }
                }
            }
            query.push(QueryToken {
                terms: alternatives,
                concepts,
                weight,
                is_question_word,
            });
        }
        query
    }

    /// Words of the entries one insertion, deletion, substitution or transposition away from `word`.
    fn corrections(&self, word: &str) -> Vec<String> {
        if word.chars().count() < MIN_CORRECTED_LETTERS {
            return Vec::new();
        }
        let mut found: Vec<String> = Vec::new();
        // The customer left a letter out: `word` is a deletion of an entry word.
        if let Some(words) = self.deletions.get(word) {
            found.extend(words.iter().cloned());
        }
        for variant in one_deleted(word) {
            // An extra letter: the variant is the entry word.
            if self.postings.contains_key(&variant) {
                found.push(variant.clone());
            }
            // A wrong or swapped letter: both lose one letter to the same variant.
            if let Some(words) = self.deletions.get(&variant) {
                found.extend(words.iter().cloned());
            }
        }
        found.sort_unstable();
        found.dedup();
        found
    }

    /// Words of the entries that share a root with `word` the stemmer did not find: one starts with
    /// the other ("deliv", "deliveri"), or both start with the same [`MIN_SHARED_ROOT`] letters
    /// ("оплат", "оплачива").
    fn same_root(&self, word: &str) -> Vec<String> {
        let letters = word.chars().count();
        if letters < MIN_CORRECTED_LETTERS {
            return Vec::new();
        }
        let root: String = word.chars().take(MIN_SHARED_ROOT.min(letters)).collect();
        let start = self.words.partition_point(|w| w.as_str() < root.as_str());
        self.words[start..]
            .iter()
            .take_while(|w| w.starts_with(&root))
            .filter(|w| {
                let shares_root =
                    letters >= MIN_SHARED_ROOT && w.chars().count() >= MIN_SHARED_ROOT;
                w.as_str() != word
                    && (shares_root || w.starts_with(word) || word.starts_with(w.as_str()))
            })
            .cloned()
            .collect()
    }

    fn document_frequency(&self, term: &str) -> usize {
        self.postings.get(term).map_or(0, Vec::len)
    }

    /// The number of entries using the most used of `terms`; `None` when no entry uses any.
    fn largest_document_frequency<'t>(
        &self,
        terms: impl Iterator<Item = &'t str>,
    ) -> Option<usize> {
        terms
            .map(|t| self.document_frequency(t))
            .filter(|&df| df > 0)
            .max()
    }

    fn idf(&self, document_frequency: usize) -> f64 {
        let n = self.entries.len() as f64;
        let df = document_frequency as f64;
        (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
    }

    fn rank_query(&self, query: &[QueryToken]) -> Vec<Ranked<'_>> {
        let total_weight: f64 = query.iter().map(|t| t.weight).sum();
        if total_weight <= 0.0 {
            return Vec::new();
        }
        let mut scores = vec![0.0; self.entries.len()];
        let mut covered = vec![0.0; self.entries.len()];
        let mut evidence = vec![0; self.entries.len()];
        // Per entry, the best of the token's alternatives: (bm25, coverage credit).
        let mut best_of_token: HashMap<u32, (f64, f64)> = HashMap::new();
        for token in query {
            best_of_token.clear();
            for Alternative { term, strength } in &token.terms {
                let Some(postings) = self.postings.get(term) else {
                    continue;
                };
                let idf = self.idf(postings.len());
                for posting in postings {
                    let tf = f64::from(
                        QUESTION_WEIGHT * u32::from(posting.in_question)
                            + u32::from(posting.in_answer),
                    );
                    let norm = 1.0 - B
                        + B * self.lengths[posting.entry as usize] / self.average_length.max(1.0);
                    let bm25 = strength * idf * tf * (K1 + 1.0) / (tf + K1 * norm);
                    let credit = if posting.in_question > 0 {
                        1.0
                    } else {
                        ANSWER_ONLY_CREDIT
                    };
                    let best = best_of_token.entry(posting.entry).or_insert((0.0, 0.0));
                    best.0 = best.0.max(bm25);
                    best.1 = f64::max(best.1, credit);
                }
            }
            for (&entry, &(bm25, credit)) in &best_of_token {
                scores[entry as usize] += bm25;
                covered[entry as usize] += credit * token.weight;
                evidence[entry as usize] += usize::from(!token.is_question_word);
            }
        }
        let mut ranked: Vec<Ranked<'_>> = scores
            .iter()
            .enumerate()
            .filter(|&(_, &score)| score > 0.0)
            .map(|(i, &score)| Ranked {
                entry: &self.entries[i],
                position: i,
                score,
                coverage: covered[i] / total_weight,
                evidence: evidence[i],
            })
            .collect();
        ranked.sort_by(|a, b| b.score.total_cmp(&a.score));
        ranked
    }
}

/// `word` with each one of its letters deleted.
fn one_deleted(word: &str) -> Vec<String> {
    word.char_indices()
        .map(|(at, c)| {
            let mut variant = String::with_capacity(word.len());
            variant.push_str(&word[..at]);
            variant.push_str(&word[at + c.len_utf8()..]);
            variant
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TenantId;
    use time::macros::datetime;

    fn entry(question: &str, answer: &str) -> KnowledgeEntry {
        KnowledgeEntry {
            tenant_id: TenantId::new("t"),
            entry_id: question.into(),
            question: question.into(),
            answer: answer.into(),
            alternates: Vec::new(),
            created_at: datetime!(2026-11-01 0:00 UTC),
        }
    }

    fn faq() -> KnowledgeIndex {
        KnowledgeIndex::new(vec![
            entry(
                "What are your opening hours?",
                "We open 8:00-18:00, Tuesday to Sunday. Thank you!",
            ),
            entry(
                "Do you deliver?",
                "Yes, within 5 km; free delivery over $40.",
            ),
            entry("Can I pay by card?", "We take Visa, Mastercard and JCB."),
            entry(
                "予約できますか？",
                "はい、お電話またはLINEでご予約いただけます。",
            ),
        ])
    }

    fn answer(index: &KnowledgeIndex, question: &str) -> Option<String> {
        match index.decide(question) {
            Verdict::Answer(ranked) => Some(ranked.entry.question.clone()),
            _ => None,
        }
    }

    #[test]
    fn a_paraphrase_gets_its_entry() {
        let index = faq();
        assert_eq!(
            answer(&index, "when do you open? what hours").as_deref(),
            Some("What are your opening hours?")
        );
        assert_eq!(
            answer(&index, "予約したいです").as_deref(),
            Some("予約できますか？")
        );
    }

    #[test]
    fn a_misspelt_word_is_found_one_edit_away() {
        let index = faq();
        assert_eq!(
            answer(&index, "do you delivr?").as_deref(),
            Some("Do you deliver?")
        );
    }

    #[test]
    fn one_shared_ordinary_word_is_not_an_answer() {
        let index = faq();
        assert!(matches!(
            index.decide("thanks"),
            Verdict::Social(Social::Thanks)
        ));
        assert!(matches!(
            index.decide("free?"),
            Verdict::HandOff(NoAnswer::LowCoverage)
        ));
        assert!(matches!(
            index.decide("do you sell gift cards?"),
            Verdict::HandOff(NoAnswer::LowCoverage)
        ));
    }

    #[test]
    fn nothing_to_match_hands_off_with_its_reason() {
        let index = faq();
        assert!(matches!(
            index.decide(""),
            Verdict::HandOff(NoAnswer::NoQuestion)
        ));
        assert!(matches!(
            index.decide("?!"),
            Verdict::HandOff(NoAnswer::NoQuestion)
        ));
        assert!(matches!(
            index.decide("is there parking nearby?"),
            Verdict::HandOff(NoAnswer::NoMatch)
        ));
        assert!(matches!(
            KnowledgeIndex::new(Vec::new()).decide("hours"),
            Verdict::HandOff(NoAnswer::NoMatch)
        ));
    }

    #[test]
    fn an_alternate_phrasing_of_the_business_answers_as_its_question_does() {
        let mut vegan = entry("Do you have vegan options?", "Vegan brownies every day.");
        let delivery = entry("Do you deliver?", "Yes, within 5 km.");
        assert_eq!(
            answer(
                &KnowledgeIndex::new(vec![vegan.clone(), delivery.clone()]),
                "anything plant based"
            ),
            None
        );
        vegan.alternates = vec!["Is anything plant-based?".into()];
        assert_eq!(
            answer(
                &KnowledgeIndex::new(vec![vegan, delivery]),
                "got anything plant based?"
            )
            .as_deref(),
            Some("Do you have vegan options?")
        );
    }

    #[test]
    fn a_concept_links_a_question_to_an_entry_worded_otherwise_in_every_language() {
        let index = KnowledgeIndex::new(vec![
            entry("Haircut prices", "From $30."),
            entry("Do you deliver?", "Yes, within 5 km."),
            entry("Цены на стрижку", "От 1500 рублей."),
            entry("Есть доставка?", "Да, по городу."),
            entry("Шаш қию бағасы", "3000 теңге."),
            entry("Жеткізу бар ма?", "Иә, қала бойынша."),
            entry("ราคาตัดผม", "300 บาทค่ะ"),
            entry("มีที่จอดรถไหมคะ", "มีค่ะ"),
            entry("カットの料金", "4,400円です。"),
            entry("駐車場はありますか？", "ありません。"),
        ]);
        for (question, expected) in [
            ("how much is a haircut?", "Haircut prices"),
            ("what does a haircut cost", "Haircut prices"),
            ("сколько стоит стрижка?", "Цены на стрижку"),
            ("шаш қию қанша тұрады?", "Шаш қию бағасы"),
            ("ตัดผมกี่บาท", "ราคาตัดผม"),
            ("カットいくら？", "カットの料金"),
            ("カットの値段は？", "カットの料金"),
            ("車を停める所ある？", "駐車場はありますか？"),
        ] {
            assert_eq!(
                answer(&index, question).as_deref(),
                Some(expected),
                "{question}"
            );
        }
        // A price with no subject, thanks, or a subject no entry has are still not answered.
        for question in [
            "how much?",
            "сколько стоит?",
            "いくら？",
            "thanks",
            "do you sell gift cards?",
        ] {
            assert_eq!(answer(&index, question), None, "{question}");
        }
    }

    #[test]
    fn an_entry_about_just_what_is_asked_wins_a_close_call() {
        let index = KnowledgeIndex::new(vec![
            entry("予約はできますか？", "お電話でどうぞ。"),
            entry("予約のキャンセルはできますか？", "前日まで無料です。"),
            entry("カットの料金は？", "4,400円です。"),
            entry("カラーの料金は？", "6,600円です。"),
        ]);
        assert_eq!(
            answer(&index, "予約したいです").as_deref(),
            Some("予約はできますか？")
        );
        assert_eq!(
            answer(&index, "予約を取り消したい").as_deref(),
            Some("予約のキャンセルはできますか？")
        );
        // Both price entries are about just a price: which one is meant is not said.
        assert!(matches!(
            index.decide("料金はいくらですか"),
            Verdict::HandOff(NoAnswer::Ambiguous)
        ));
    }

    #[test]
    fn the_prompt_ranking_puts_the_matching_entry_first_in_every_script() {
        let index = KnowledgeIndex::new(vec![
            entry("営業時間を教えてください", "10時から20時までです。"),
            entry(
                "駐車場はありますか？",
                "近くのコインパーキングをご利用ください。",
            ),
            entry("มีที่จอดรถไหมคะ", "มีที่จอดรถฟรี 5 คันค่ะ"),
            entry("Где находится магазин?", "Улица Ленина, 15."),
            entry("Жеткізу бар ма?", "Иә, Алматы бойынша жеткіземіз."),
        ]);
        for (question, first) in [
            ("駐車場ある？", "駐車場はありますか？"),
            ("จอดรถได้ไหม", "มีที่จอดรถไหมคะ"),
            ("где ваш магазин?", "Где находится магазин?"),
            ("Астанаға жеткізесіздер ме?", "Жеткізу бар ма?"),
        ] {
            assert_eq!(index.rank(question)[0].entry.question, first, "{question}");
        }
    }

    #[test]
    fn two_entries_matching_alike_are_ambiguous() {
        let index = KnowledgeIndex::new(vec![
            entry("How much is a Thai massage?", "300 baht an hour."),
            entry("How much is a foot massage?", "350 baht an hour."),
        ]);
        assert!(matches!(
            index.decide("how much is a massage"),
            Verdict::HandOff(NoAnswer::Ambiguous)
        ));
        assert_eq!(
            answer(&index, "foot massage how much?").as_deref(),
            Some("How much is a foot massage?")
        );
    }
}
