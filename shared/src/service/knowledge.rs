//! A tenant's knowledge entries (what the AI answers from): added, changed, removed and imported in
//! bulk, each change audited. The checks live here so every edge (the console, `inboxctl`) applies the
//! same ones.

use std::collections::HashMap;

use serde::Serialize;

use crate::ids::new_id;
use crate::model::{KnowledgeEntry, Tenant};
use crate::store::{Store, StoreError};

use super::audit;

/// The longest question (or alternate wording) taken, in characters.
pub const MAX_QUESTION_CHARS: usize = 500;
/// The longest answer taken, in characters (LINE's message limit, the longest of the platforms).
pub const MAX_ANSWER_CHARS: usize = 5000;
/// The most alternate wordings of one entry.
pub const MAX_ALTERNATES: usize = 20;
/// The most rows one import takes.
pub const MAX_IMPORT_ROWS: usize = 1000;

/// A field of an entry that is not acceptable, and why (no text of the field itself).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct Invalid {
    pub field: &'static str,
    pub reason: String,
}

fn invalid(field: &'static str, reason: impl Into<String>) -> Invalid {
    Invalid {
        field,
        reason: reason.into(),
    }
}

/// An entry as a person writes it: trimmed and checked by [`EntryText::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryText {
    pub question: String,
    pub answer: String,
    pub alternates: Vec<String>,
}

fn checked(field: &'static str, text: &str, limit: usize) -> Result<String, Invalid> {
    let text = text.trim();
    if text.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if text.chars().count() > limit {
        return Err(invalid(field, format!("is longer than {limit} characters")));
    }
    Ok(text.to_owned())
}

impl EntryText {
    /// Trimmed; question and answer not empty and within their limits; blank alternates dropped.
    pub fn new(question: &str, answer: &str, alternates: &[String]) -> Result<Self, Invalid> {
        let question = checked("question", question, MAX_QUESTION_CHARS)?;
        let answer = checked("answer", answer, MAX_ANSWER_CHARS)?;
        let alternates: Vec<String> = alternates
            .iter()
            .filter(|a| !a.trim().is_empty())
            .map(|a| checked("alternates", a, MAX_QUESTION_CHARS))
            .collect::<Result<_, _>>()?;
        if alternates.len() > MAX_ALTERNATES {
            return Err(invalid(
                "alternates",
                format!("at most {MAX_ALTERNATES} alternates"),
            ));
        }
        Ok(Self {
            question,
            answer,
            alternates,
        })
    }
}

/// The form two questions are the same in: trimmed, case folded.
pub fn same_question(question: &str) -> String {
    question.trim().to_lowercase()
}

/// Whether `entry_id` could be one of our entry ids (it becomes part of a key).
pub fn is_entry_id(entry_id: &str) -> bool {
    !entry_id.is_empty()
        && entry_id.len() <= 64
        && entry_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Adds an entry; audited.
pub async fn add(
    store: &Store,
    actor: &str,
    tenant: &Tenant,
    text: EntryText,
) -> Result<KnowledgeEntry, StoreError> {
    let entry = KnowledgeEntry {
        tenant_id: tenant.tenant_id.clone(),
        entry_id: new_id("kb"),
        question: text.question,
        answer: text.answer,
        alternates: text.alternates,
        created_at: store.now(),
    };
    store.add_knowledge(&entry).await?;
    audit(store, actor, tenant, "knowledge.add", &entry.entry_id).await?;
    Ok(entry)
}

/// Replaces an entry's texts (it must exist: otherwise `NotFound`); audited.
pub async fn update(
    store: &Store,
    actor: &str,
    tenant: &Tenant,
    entry_id: &str,
    text: EntryText,
) -> Result<KnowledgeEntry, StoreError> {
    let mut entry = store
        .get_knowledge(&tenant.tenant_id, entry_id)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("knowledge entry {entry_id}")))?;
    entry.question = text.question;
    entry.answer = text.answer;
    entry.alternates = text.alternates;
    store.replace_knowledge(&entry).await?;
    audit(store, actor, tenant, "knowledge.update", entry_id).await?;
    Ok(entry)
}

/// Removes an entry (it must exist: otherwise `NotFound`); audited.
pub async fn remove(
    store: &Store,
    actor: &str,
    tenant: &Tenant,
    entry_id: &str,
) -> Result<(), StoreError> {
    store
        .get_knowledge(&tenant.tenant_id, entry_id)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("knowledge entry {entry_id}")))?;
    store.delete_knowledge(&tenant.tenant_id, entry_id).await?;
    audit(store, actor, tenant, "knowledge.remove", entry_id).await
}

/// One row of an import: a question and its answer as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRow {
    pub question: String,
    pub answer: String,
}

/// A row an import did not take: its number (1-based, the header not counted) and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejected {
    pub row: usize,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    pub added: usize,
    pub updated: usize,
    pub rejected: Vec<Rejected>,
}

/// Rows from CSV text with a `question,answer` header (in either order; other columns ignored).
/// Fields may be quoted (`"a, ""b"""`, line breaks inside quotes kept); blank lines are skipped.
/// A row without both columns is taken with an empty field (then rejected by the import with its
/// number).
pub fn parse_csv(text: &str) -> Result<Vec<ImportRow>, String> {
    let records = csv_records(text.strip_prefix('\u{feff}').unwrap_or(text))?;
    let mut records = records.into_iter();
    let header = records.next().ok_or("the CSV is empty")?;
    let column = |name: &str| {
        header
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(name))
            .ok_or_else(|| "the header must name the columns question and answer".to_owned())
    };
    let (q, a) = (column("question")?, column("answer")?);
    let rows: Vec<ImportRow> = records
        .map(|record| ImportRow {
            question: record.get(q).cloned().unwrap_or_default(),
            answer: record.get(a).cloned().unwrap_or_default(),
        })
        .collect();
    if rows.len() > MAX_IMPORT_ROWS {
        return Err(format!("at most {MAX_IMPORT_ROWS} rows per import"));
    }
    Ok(rows)
}

/// RFC 4180 records (CRLF or LF), blank lines skipped.
fn csv_records(text: &str) -> Result<Vec<Vec<String>>, String> {
    let mut records = Vec::new();
    let mut record: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    // Whether the current field was quoted (text after its closing quote is an error).
    let mut was_quoted = false;
    let mut line = 1;
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                '\n' => {
                    line += 1;
                    field.push(c);
                }
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() && !was_quoted => {
                quoted = true;
                was_quoted = true;
            }
            ',' => {
                record.push(std::mem::take(&mut field));
                was_quoted = false;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' => {
                record.push(std::mem::take(&mut field));
                was_quoted = false;
                if !(record.len() == 1 && record[0].is_empty()) {
                    records.push(std::mem::take(&mut record));
                }
                record.clear();
                line += 1;
            }
            _ if was_quoted => {
                return Err(format!("line {line}: text after a closing quote"));
            }
            _ => field.push(c),
        }
    }
    if quoted {
        return Err(format!("line {line}: a quoted field is not closed"));
    }
    record.push(field);
    if !(record.len() == 1 && record[0].is_empty()) {
        records.push(record);
    }
    Ok(records)
}

/// Imports rows: a row whose question is the same (trimmed, case folded) as an entry's replaces that
/// entry's answer ("updated"), any other valid row is a new entry ("added"); invalid rows are reported
/// and skipped. Audited once with the counts.
pub async fn import(
    store: &Store,
    actor: &str,
    tenant: &Tenant,
    rows: &[ImportRow],
) -> Result<ImportReport, StoreError> {
    let mut report = ImportReport::default();
    if rows.len() > MAX_IMPORT_ROWS {
        report.rejected.push(Rejected {
            row: MAX_IMPORT_ROWS + 1,
            reason: format!("at most {MAX_IMPORT_ROWS} rows per import"),
        });
        return Ok(report);
    }
    let mut existing: HashMap<String, KnowledgeEntry> = store
        .knowledge_of_tenant(&tenant.tenant_id)
        .await?
        .into_iter()
        .map(|e| (same_question(&e.question), e))
        .collect();
    for (i, row) in rows.iter().enumerate() {
        let text = match EntryText::new(&row.question, &row.answer, &[]) {
            Ok(text) => text,
            Err(why) => {
                report.rejected.push(Rejected {
                    row: i + 1,
                    reason: why.to_string(),
                });
                continue;
            }
        };
        let key = same_question(&text.question);
        match existing.get_mut(&key) {
            Some(entry) => {
                entry.answer = text.answer;
                store.replace_knowledge(entry).await?;
                report.updated += 1;
            }
            None => {
                let entry = KnowledgeEntry {
                    tenant_id: tenant.tenant_id.clone(),
                    entry_id: new_id("kb"),
                    question: text.question,
                    answer: text.answer,
                    alternates: Vec::new(),
                    created_at: store.now(),
                };
                store.add_knowledge(&entry).await?;
                existing.insert(key, entry);
                report.added += 1;
            }
        }
    }
    let subject = format!(
        "added={} updated={} rejected={}",
        report.added,
        report.updated,
        report.rejected.len()
    );
    audit(store, actor, tenant, "knowledge.import", &subject).await?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(text: &str) -> Vec<(String, String)> {
        parse_csv(text)
            .unwrap()
            .into_iter()
            .map(|r| (r.question, r.answer))
            .collect()
    }

    #[test]
    fn csv_with_quotes_crlf_and_columns_in_any_order() {
        assert_eq!(
            rows(
                "question,answer\r\nHours?,9 to 5\r\n\"Where, exactly?\",\"On \"\"Main\"\"\nStreet\"\r\n"
            ),
            vec![
                ("Hours?".into(), "9 to 5".into()),
                ("Where, exactly?".into(), "On \"Main\"\nStreet".into()),
            ]
        );
        assert_eq!(
            rows("\u{feff}Answer,Question,extra\nyes,Open?,x\n\nno"),
            vec![("Open?".into(), "yes".into()), (String::new(), "no".into())]
        );
        assert!(parse_csv("q,a\nx,y").is_err());
        assert!(parse_csv("").is_err());
        assert!(parse_csv("question,answer\n\"open,x").is_err());
        assert!(parse_csv("question,answer\n\"a\"b,c").is_err());
    }

    #[test]
    fn entries_are_trimmed_and_bounded() {
        let e = EntryText::new(" Q ", " A ", &[" ".into(), " alt ".into()]).unwrap();
        assert_eq!((e.question.as_str(), e.answer.as_str()), ("Q", "A"));
        assert_eq!(e.alternates, vec!["alt".to_owned()]);
        assert_eq!(EntryText::new(" ", "A", &[]).unwrap_err().field, "question");
        assert_eq!(
            EntryText::new("Q", &"x".repeat(MAX_ANSWER_CHARS + 1), &[])
                .unwrap_err()
                .field,
            "answer"
        );
        assert_eq!(same_question("  Opening HOURS? "), "opening hours?");
        assert!(is_entry_id("kb_01abc-x") && !is_entry_id("kb#1") && !is_entry_id(""));
    }
}
