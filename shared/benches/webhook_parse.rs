//! The pure path of webhook-ingest per event: signature check over the raw bytes, parse, normalise.
//! Run with `cargo bench -p inbox-shared --bench webhook_parse`; criterion prints time per delivery and
//! events per second (a batch of 1 gives µs per event directly). Target: ≤ 10 µs per Messenger event.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use inbox_shared::platform::signature::{self, line_signature, meta_signature};
use inbox_shared::platform::{line, meta};
use inbox_shared::secret::{AppSecret, ChannelSecret};

const APP_SECRET: &str = "bench-app-secret";
const LINE_SECRET: &str = "bench-line-channel-secret";

fn messenger(events: usize) -> Vec<u8> {
    let items: Vec<String> = (0..events)
        .map(|i| {
            format!(
                r#"{{"sender":{{"id":"72345000000{i:05}"}},"recipient":{{"id":"104857600000001"}},"timestamp":{ts},"message":{{"mid":"m_bench{i}","text":"Do you ship to Osaka? \u00e4\u00f6\u00e5 order #{i}","quick_reply":{{"payload":"SHIPPING_Q"}}}}}}"#,
                ts = 1_767_225_600_000u64 + i as u64
            )
        })
        .collect();
    format!(
        r#"{{"object":"page","entry":[{{"id":"104857600000001","time":1767225600123,"messaging":[{}]}}]}}"#,
        items.join(",")
    )
    .into_bytes()
}

fn whatsapp(events: usize) -> Vec<u8> {
    let items: Vec<String> = (0..events)
        .map(|i| {
            format!(
                r#"{{"from":"8190123{i:05}","id":"wamid.HBgLODE5MDEyMzQ1Njc4FQIAEhg{i:05}","timestamp":"{ts}","type":"text","text":{{"body":"Is the store open Sunday? ({i})"}}}}"#,
                ts = 1_767_225_900 + i
            )
        })
        .collect();
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"102290129340398","changes":[{{"field":"messages","value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550783881","phone_number_id":"106540352242922"}},"contacts":[{{"profile":{{"name":"Aiko"}},"wa_id":"819012345678"}}],"messages":[{}]}}}}]}}]}}"#,
        items.join(",")
    )
    .into_bytes()
}

fn line_events(events: usize) -> Vec<u8> {
    let items: Vec<String> = (0..events)
        .map(|i| {
            format!(
                r#"{{"type":"message","mode":"active","timestamp":{ts},"webhookEventId":"01JH3Q8Z6YV0K8P5M2N4R{i:05}","deliveryContext":{{"isRedelivery":false}},"source":{{"type":"user","userId":"Uaaaabbbbccccddddeeeeffff000{i:05}"}},"replyToken":"b60d432864f44d079f6d8efe86cf404b","message":{{"id":"51234567{i:05}","type":"text","quoteToken":"q3Plxr4AgKd","text":"予約できますか？ {i}"}}}}"#,
                ts = 1_767_226_100_000u64 + i as u64
            )
        })
        .collect();
    format!(
        r#"{{"destination":"U0123456789abcdef0123456789abcdef","events":[{}]}}"#,
        items.join(",")
    )
    .into_bytes()
}

fn verify_and_parse(c: &mut Criterion) {
    let app_secret = AppSecret::new(APP_SECRET.to_owned());
    let line_secret = ChannelSecret::new(LINE_SECRET.to_owned());
    let mut group = c.benchmark_group("verify+parse");
    for events in [1usize, 100] {
        group.throughput(Throughput::Elements(events as u64));
        for (platform, body) in [
            ("messenger", messenger(events)),
            ("whatsapp", whatsapp(events)),
        ] {
            let header = meta_signature(APP_SECRET, &body);
            group.bench_with_input(BenchmarkId::new(platform, events), &body, |b, body| {
                b.iter(|| {
                    signature::verify_meta(&app_secret, body, Some(&header)).expect("signed");
                    let parsed = meta::parse(black_box(body)).expect("parses");
                    assert_eq!(parsed.events.len(), events);
                    parsed
                })
            });
        }
        let body = line_events(events);
        let header = line_signature(LINE_SECRET, &body);
        group.bench_with_input(BenchmarkId::new("line", events), &body, |b, body| {
            b.iter(|| {
                // The destination picks the channel whose secret verifies the body.
                line::destination(black_box(body)).expect("parses");
                signature::verify_line(&line_secret, body, Some(&header)).expect("signed");
                let parsed = line::parse(body).expect("parses");
                assert_eq!(parsed.events.len(), events);
                parsed
            })
        });
    }
    group.finish();
}

criterion_group!(benches, verify_and_parse);
criterion_main!(benches);
