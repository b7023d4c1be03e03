//! `cargo xtask demo` end to end: the real binary against the test run's moto. The demo checks its own
//! story as it goes (a forged webhook refused, a duplicate and an echo never answered, exactly four sends,
//! expired content swept) and fails otherwise; this test holds it to exit 0 and to telling every part.

use std::process::Command;

#[test]
fn the_demo_tells_the_whole_story_and_exits_cleanly() {
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("demo")
        .env("AWS_ENDPOINT_URL", inbox_tests::endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        // The offline provider, whatever keys the machine has.
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("OPENAI_API_KEY")
        .output()
        .expect("run xtask demo");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the demo failed: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    for part in [
        "GET /webhooks/meta → 200 1158201444",
        "Meta delivers the same webhook again → 200 (a duplicate",
        "→ sent via Messenger Send API",
        "outcome recorded on the message: replied",
        "→ 401",
        "recognised by its tag (inbox-ai:",
        "→ sent via WhatsApp Cloud API",
        "→ sent via LINE reply API",
        "ai-reply: handed_off",
        "ai-reply: human_mode",
        "ai-reply: drafted; the draft waits",
        "Page \"Kumo Bakery\" connected",
        "the number registered (its PIN sealed)",
        "webhook URL set, LINE's test delivery: ok",
        "GET /v1/conversations?mode=human → Jun's conversation",
        "nothing sent twice",
        "without a token → 401",
        "approving again sends nothing (5 sends)",
        "status page: \"completed\"",
        "Completed. Your data has been deleted.",
        "expired_content.messages:",
        "5 messages were sent to the platforms in all",
        "The demo is over",
    ] {
        assert!(
            stdout.contains(part),
            "the demo did not tell {part:?}:\n{stdout}"
        );
    }
}
