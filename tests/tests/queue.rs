//! The queue publisher against SQS (moto).

use std::collections::BTreeMap;

use inbox_shared::queue::{QueueError, QueueMessage};
use inbox_tests::{AwsCalls, DropBatchEntry, TestEnv};

#[tokio::test]
async fn twenty_five_messages_take_three_batch_calls() {
    let env = TestEnv::new().await;
    let messages: Vec<_> = (0..25)
        .map(|i| QueueMessage::fifo(format!("body {i}"), format!("conv_{i}"), format!("m_{i}")))
        .collect();
    let report = env
        .publisher()
        .publish(&env.provisioned.inbound_queue_url, messages)
        .await
        .unwrap();
    assert_eq!((report.sent, report.calls, report.retried), (25, 3, 0));
    assert_eq!(env.calls.count("SendMessageBatch"), 3);
    assert_eq!(
        env.drain_queue(&env.provisioned.inbound_queue_url)
            .await
            .len(),
        25
    );
}

#[tokio::test]
async fn a_failed_entry_is_retried_and_group_order_holds() {
    // The first batch call loses entry "0" on the wire: SQS never sees it.
    let env = TestEnv::with_calls(AwsCalls::dropping(DropBatchEntry {
        nth_call: 0,
        entry_id: "0".into(),
    }))
    .await;
    let mut messages = Vec::new();
    for n in 0..4 {
        for group in ["a", "b", "c"] {
            messages.push(QueueMessage::fifo(
                format!("{group}{n}"),
                group,
                format!("{group}-{n}"),
            ));
        }
    }
    let report = env
        .publisher()
        .publish(&env.provisioned.inbound_queue_url, messages)
        .await
        .unwrap();
    assert_eq!(env.calls.dropped(), 1);
    assert_eq!((report.sent, report.retried), (12, 1));

    let mut by_group: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (group, body) in env.drain_queue(&env.provisioned.inbound_queue_url).await {
        by_group.entry(group.unwrap()).or_default().push(body);
    }
    for group in ["a", "b", "c"] {
        let expected: Vec<String> = (0..4).map(|n| format!("{group}{n}")).collect();
        assert_eq!(
            by_group[group], expected,
            "group {group} in order, each once"
        );
    }
}

#[tokio::test]
async fn oversized_message_is_refused_before_anything_is_sent() {
    let env = TestEnv::new().await;
    let messages = vec![
        QueueMessage::standard("ok".into()),
        QueueMessage::standard("x".repeat(300 * 1024)),
    ];
    let err = env
        .publisher()
        .publish(&env.provisioned.erasure_queue_url, messages)
        .await
        .unwrap_err();
    assert!(
        matches!(err, QueueError::TooLarge { index: 1, .. }),
        "{err}"
    );
    assert_eq!(env.calls.count("SendMessageBatch"), 0);
}

#[tokio::test]
async fn a_message_sqs_rejects_as_our_fault_is_permanent() {
    let env = TestEnv::new().await;
    // A FIFO queue refuses a message without a group id.
    let err = env
        .publisher()
        .publish(
            &env.provisioned.inbound_queue_url,
            vec![QueueMessage::standard("no group".into())],
        )
        .await
        .unwrap_err();
    assert!(!err.is_retryable(), "{err}");
}
