//! ai-reply's own work per message, excluding the provider call and AWS round trips: ranking the tenant's
//! knowledge (BM25 over 50 entries, its index kept warm), the offline decision, masking, and building the prompt from 30 messages.
//! Run with `cargo bench -p inbox-shared --bench reply_prep`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use inbox_shared::llm::Prompt;
use inbox_shared::llm::offline::{KnowledgeIndex, Verdict};
use inbox_shared::model::*;
use inbox_shared::secret::MessageText;
use time::macros::datetime;

fn knowledge() -> Vec<KnowledgeEntry> {
    (0..50)
        .map(|i| KnowledgeEntry {
            tenant_id: TenantId::new("t"),
            entry_id: format!("kb_{i}"),
            question: format!(
                "Question {i} about delivery, opening hours, payment and booking number {i}?"
            ),
            answer: format!(
                "Answer {i}: we deliver in 2 days, open 8-18, take cards, and book by phone."
            ),
            alternates: Vec::new(),
            created_at: datetime!(2026-11-01 0:00 UTC),
        })
        .collect()
}

fn history() -> Vec<Message> {
    (0..30)
        .map(|i| Message {
            tenant_id: TenantId::new("t"),
            conversation_id: ConversationId::new("c"),
            channel_id: ChannelId::new("ch"),
            message_id: format!("m{i}"),
            direction: if i % 2 == 0 { Direction::Inbound } else { Direction::Outbound },
            author: if i % 2 == 0 { Author::Customer } else { Author::Ai },
            text: Some(MessageText::new(format!(
                "Message {i}: can you deliver to Osaka by Friday? My phone is +81 90-1234-5678, mail aiko@example.com"
            ))),
            attachments: Vec::new(),
            payload: None,
            status: MessageStatus::Received,
            error_code: None,
            sent_at: datetime!(2026-11-02 9:00 UTC),
            retain_until: datetime!(2027-11-02 9:00 UTC),
            reply_outcome: None,
        })
        .collect()
}

fn prepare(c: &mut Criterion) {
    let entries = knowledge();
    let history = history();
    let mut tenant = Tenant::new(
        TenantId::new("t"),
        "Kumo Bakery".into(),
        datetime!(2026-11-01 0:00 UTC),
    );
    tenant.instructions = "Be warm and brief.".into();
    tenant.mask_personal_data = true;
    let question = "Can you deliver to Osaka by Friday, and what are your opening hours?";
    c.bench_function(
        "reply preparation (50 entries, 30 messages, masking on)",
        |b| {
            // The index is built once per tenant and knowledge version in a warm container.
            let index = KnowledgeIndex::new(entries.clone());
            b.iter(|| {
                let ranked = index.rank(question);
                let in_prompt: Vec<&KnowledgeEntry> =
                    ranked.iter().take(3).map(|r| r.entry).collect();
                let matched = matches!(index.decide(question), Verdict::Answer(_));
                let prompt = Prompt::build(&tenant, &in_prompt, black_box(&history), 2_000);
                (matched, prompt.turns.len())
            })
        },
    );
}

/// 500 entries in five languages, as a large tenant's knowledge base: one offline decision (the index
/// kept warm, as the container keeps it) against the 200 µs, and building the index (once per
/// tenant and knowledge version in a warm container).
fn offline_decision(c: &mut Criterion) {
    let topics = [
        (
            "What are your opening hours on day {i}?",
            "We open 8:00-18:00 on day {i}.",
        ),
        (
            "Доставка в район {i} есть?",
            "Да, доставляем в район {i} за 2 часа.",
        ),
        (
            "Жеткізу {i} қалаға бар ма?",
            "Иә, {i} қалаға 3 күнде жеткіземіз.",
        ),
        (
            "{i}番のカットはいくらですか？",
            "{i}番のカットは4,400円です。",
        ),
        ("นวดแบบที่ {i} ราคาเท่าไหร่คะ", "นวดแบบที่ {i} ชั่วโมงละ 300 บาทค่ะ"),
    ];
    let entries: Vec<KnowledgeEntry> = (0..500)
        .map(|i| {
            let (question, answer) = topics[i % topics.len()];
            KnowledgeEntry {
                tenant_id: TenantId::new("t"),
                entry_id: format!("kb_{i}"),
                question: question.replace("{i}", &i.to_string()),
                answer: answer.replace("{i}", &i.to_string()),
                alternates: Vec::new(),
                created_at: datetime!(2026-11-01 0:00 UTC),
            }
        })
        .collect();
    let index = KnowledgeIndex::new(entries.clone());
    for question in [
        "what time do you open on day 42?",
        "доставляете в район 17?",
        "is there parking nearby?",
    ] {
        c.bench_function(
            &format!("offline decision (500 entries): {question}"),
            |b| b.iter(|| matches!(index.decide(black_box(question)), Verdict::Answer(_))),
        );
    }
    c.bench_function("offline index build (500 entries)", |b| {
        b.iter(|| KnowledgeIndex::new(black_box(entries.clone())))
    });
}

criterion_group!(benches, prepare, offline_decision);
criterion_main!(benches);
