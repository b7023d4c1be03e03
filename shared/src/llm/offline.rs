//! The offline provider: answers from the tenant's knowledge entries when one matches the customer's
//! question well enough, and hands off otherwise. No network, no model: it keeps the AI useful without an
//! LLM key, and it ranks the entries the LLM prompt includes.
//!
//! Ranking is Okapi BM25 over each entry's question and answer (k1 = 1.2, b = 0.75, the non-negative IDF
//! of BM25+ so a term present in every entry still counts). Whether the best entry answers is decided
//! without BM25's unbounded scale, which shifts with the number of entries: it must contain at least half
//! of the question's distinct terms, counted plainly and weighted by IDF (a rare word matters more than a
//! common one). A single shared word ("hours") in a long question is not an answer.

use std::collections::{HashMap, HashSet};

use crate::model::KnowledgeEntry;

const K1: f64 = 1.2;
const B: f64 = 0.75;
/// The share of the question's distinct terms (plain and IDF-weighted) an answering entry contains.
const MIN_COVERAGE: f64 = 0.5;

/// Words too common to say anything about which entry answers.
const STOPWORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "can", "could", "do", "does", "for", "from", "have",
    "how", "i", "if", "in", "is", "it", "me", "my", "of", "on", "or", "our", "please", "so",
    "that", "the", "there", "this", "to", "us", "was", "we", "what", "when", "where", "which",
    "who", "will", "with", "would", "you", "your",
];

/// Lower-cased terms of a text: words of letters and digits; CJK and other unspaced scripts as
/// overlapping character pairs (Japanese has no spaces between words).
pub fn terms(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut unspaced: Vec<char> = Vec::new();
    let flush_word = |word: &mut String, out: &mut Vec<String>| {
        if !word.is_empty() && !STOPWORDS.contains(&word.as_str()) {
            out.push(std::mem::take(word));
        }
        word.clear();
    };
    let flush_unspaced = |chars: &mut Vec<char>, out: &mut Vec<String>| {
        match chars.len() {
            0 => {}
            1 => out.push(chars[0].to_string()),
            _ => out.extend(chars.windows(2).map(|pair| pair.iter().collect())),
        }
        chars.clear();
    };
    for c in text.chars() {
        if is_unspaced_script(c) {
            flush_word(&mut word, &mut out);
            unspaced.push(c);
        } else if c.is_alphanumeric() {
            flush_unspaced(&mut unspaced, &mut out);
            word.extend(c.to_lowercase());
        } else {
            flush_word(&mut word, &mut out);
            flush_unspaced(&mut unspaced, &mut out);
        }
    }
    flush_word(&mut word, &mut out);
    flush_unspaced(&mut unspaced, &mut out);
    out
}

fn is_unspaced_script(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF   // hiragana, katakana
        | 0x3400..=0x4DBF // CJK extension A
        | 0x4E00..=0x9FFF // CJK unified ideographs
        | 0xAC00..=0xD7AF // hangul syllables
        | 0x0E00..=0x0E7F // thai
    )
}

/// A BM25 index over one tenant's knowledge entries.
pub struct KnowledgeIndex<'a> {
    entries: &'a [KnowledgeEntry],
    docs: Vec<HashMap<String, u32>>,
    lengths: Vec<f64>,
    average_length: f64,
    document_frequency: HashMap<String, u32>,
}

/// An entry and how well it matched.
#[derive(Debug, Clone, Copy)]
pub struct Ranked<'a> {
    pub entry: &'a KnowledgeEntry,
    pub score: f64,
    /// The share of the question's distinct terms found in the entry.
    pub coverage: f64,
    /// The same share weighted by each term's IDF.
    pub weighted_coverage: f64,
}

impl<'a> KnowledgeIndex<'a> {
    pub fn new(entries: &'a [KnowledgeEntry]) -> Self {
        let docs: Vec<HashMap<String, u32>> = entries
            .iter()
            .map(|e| {
                let mut tf = HashMap::new();
                for term in terms(&e.question).into_iter().chain(terms(&e.answer)) {
                    *tf.entry(term).or_insert(0) += 1;
                }
                tf
            })
            .collect();
        let lengths: Vec<f64> = docs
            .iter()
            .map(|d| f64::from(d.values().sum::<u32>()))
            .collect();
        let average_length = if lengths.is_empty() {
            0.0
        } else {
            lengths.iter().sum::<f64>() / lengths.len() as f64
        };
        let mut document_frequency = HashMap::new();
        for doc in &docs {
            for term in doc.keys() {
                *document_frequency.entry(term.clone()).or_insert(0) += 1;
            }
        }
        Self {
            entries,
            docs,
            lengths,
            average_length,
            document_frequency,
        }
    }

    /// Entries with any shared term, best first.
    pub fn rank(&self, question: &str) -> Vec<Ranked<'a>> {
        let query: HashSet<String> = terms(question).into_iter().collect();
        if query.is_empty() {
            return Vec::new();
        }
        let n = self.docs.len() as f64;
        let idf = |term: &String| {
            let df = f64::from(self.document_frequency.get(term).copied().unwrap_or(0));
            (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
        };
        let query_weight: f64 = query.iter().map(idf).sum();
        let mut ranked: Vec<Ranked<'a>> = self
            .docs
            .iter()
            .enumerate()
            .filter_map(|(i, doc)| {
                let mut score = 0.0;
                let mut matched = 0usize;
                let mut matched_weight = 0.0;
                for term in &query {
                    let Some(&tf) = doc.get(term) else { continue };
                    matched += 1;
                    let idf = idf(term);
                    matched_weight += idf;
                    let tf = f64::from(tf);
                    let norm = 1.0 - B + B * self.lengths[i] / self.average_length.max(1.0);
                    score += idf * tf * (K1 + 1.0) / (tf + K1 * norm);
                }
                (matched > 0).then(|| Ranked {
                    entry: &self.entries[i],
                    score,
                    coverage: matched as f64 / query.len() as f64,
                    weighted_coverage: matched_weight / query_weight,
                })
            })
            .collect();
        ranked.sort_by(|a, b| b.score.total_cmp(&a.score));
        ranked
    }

    /// The entry that answers the question, if one matches well enough.
    pub fn best_match(&self, question: &str) -> Option<Ranked<'a>> {
        self.rank(question)
            .into_iter()
            .next()
            .filter(|r| r.coverage >= MIN_COVERAGE && r.weighted_coverage >= MIN_COVERAGE)
    }
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
            created_at: datetime!(2026-11-01 0:00 UTC),
        }
    }

    fn faq() -> Vec<KnowledgeEntry> {
        vec![
            entry(
                "What are your opening hours?",
                "We open 8:00-18:00, Tuesday to Sunday.",
            ),
            entry(
                "Do you ship to Osaka?",
                "Yes, we ship anywhere in Japan within 2 days.",
            ),
            entry("Can I pay by card?", "We take Visa, Mastercard and JCB."),
            entry(
                "予約できますか？",
                "はい、お電話またはLINEでご予約いただけます。",
            ),
        ]
    }

    #[test]
    fn the_matching_entry_ranks_first() {
        let entries = faq();
        let index = KnowledgeIndex::new(&entries);
        let best = index.best_match("when do you open? what hours").unwrap();
        assert_eq!(best.entry.question, "What are your opening hours?");
        let best = index.best_match("Do you ship to Osaka").unwrap();
        assert!(best.entry.answer.starts_with("Yes, we ship"));
    }

    #[test]
    fn a_single_entry_knowledge_base_still_answers() {
        let entries = vec![entry("What are your opening hours?", "8:00 to 18:00.")];
        let index = KnowledgeIndex::new(&entries);
        assert!(index.best_match("what are your opening hours?").is_some());
        assert!(
            index
                .best_match("are you open on holidays, and where do I park?")
                .is_none()
        );
    }

    #[test]
    fn japanese_questions_match_by_character_pairs() {
        let entries = faq();
        let index = KnowledgeIndex::new(&entries);
        let best = index.best_match("明日予約できますか").unwrap();
        assert_eq!(best.entry.question, "予約できますか？");
    }

    #[test]
    fn an_unrelated_question_matches_nothing() {
        let entries = faq();
        let index = KnowledgeIndex::new(&entries);
        assert!(
            index
                .best_match("my parcel arrived broken, I want a refund")
                .is_none()
        );
        assert!(index.best_match("").is_none());
        assert!(index.best_match("?!").is_none());
        assert!(KnowledgeIndex::new(&[]).best_match("hours").is_none());
    }

    #[test]
    fn terms_drop_stopwords_and_fold_case() {
        assert_eq!(terms("What ARE the Hours?"), vec!["hours"]);
        assert_eq!(terms("予約"), vec!["予約"]);
        assert_eq!(terms("予約OK"), vec!["予約", "ok"]);
    }
}
