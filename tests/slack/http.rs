//! Slack's request URLs: slash commands, button clicks, mentions, and what is refused.

use std::time::Duration;

use serde_json::Value;

use super::fake::now;
use super::{
    BODY_LIMIT, Harness, Mode, block_actions, button_values, command_form, header, in_progress,
};

const FORM: &str = "application/x-www-form-urlencoded";
const JSON: &str = "application/json";

/// A final (not in-progress) message whose header contains `title`, posted or updated.
fn final_message(calls: &[super::fake::Call], title: &str) -> Option<Value> {
    calls
        .iter()
        .filter(|c| c.method == "chat.postMessage" || c.method == "chat.update")
        .map(|c| c.body.clone())
        .find(|b| header(b).contains(title) && !in_progress(b))
}

#[tokio::test]
async fn a_slash_command_is_acknowledged_then_posted_updated_and_finished_in_one_message() {
    let h = Harness::start(Mode::Http).await;
    // Slow deployment reads so the report visibly fills in step by step.
    h.sim.set_latency(
        "/apis/apps/v1/namespaces/ai-production/deployments",
        Duration::from_millis(700),
    );
    let response = h
        .post_signed(
            "/slack/commands",
            FORM,
            &command_form(&h.fake, "/triage", "model-server"),
        )
        .await;
    assert_eq!(response.status(), 200);
    let ack: Value = response.json().await.unwrap();
    assert_eq!(ack["response_type"], "ephemeral");
    assert_eq!(ack["text"], "Running triage on model-server…");

    let calls = h
        .fake
        .wait_for("the final triage report", |calls| {
            final_message(calls, "Triage: model-server").is_some()
        })
        .await;
    let posts: Vec<_> = calls
        .iter()
        .filter(|c| c.method == "chat.postMessage")
        .collect();
    let updates: Vec<_> = calls.iter().filter(|c| c.method == "chat.update").collect();
    assert_eq!(posts.len(), 1, "one message, updated in place: {calls:#?}");
    let post = &posts[0].body;
    assert_eq!(post["channel"], "C_INC");
    assert!(
        in_progress(post),
        "the first post is a progress snapshot: {post}"
    );
    assert!(header(post).contains("Triage: model-server"), "{post}");
    assert_eq!(posts[0].auth.as_deref(), Some("Bearer xoxb-test-bot"));
    assert!(
        updates.iter().any(|u| in_progress(&u.body)),
        "the report is updated while steps finish: {calls:#?}"
    );
    assert!(
        updates
            .iter()
            .all(|u| u.body["channel"] == "C_INC" && u.body["ts"] == "1700000000.000001"),
        "every update edits the posted message: {updates:#?}"
    );

    let last = &updates.last().unwrap().body;
    assert!(
        !in_progress(last),
        "the last update is the final report: {last}"
    );
    assert!(
        last["text"]
            .as_str()
            .unwrap()
            .contains("Triage: model-server"),
        "plain-text fallback: {last}"
    );
    let values = button_values(last);
    assert!(
        values.contains(&"/mitigate model-server".to_string()),
        "{values:?}"
    );
    let actions = last["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "actions")
        .unwrap();
    assert_eq!(actions["elements"][0]["action_id"], "fb-0");
    assert_eq!(actions["elements"][0]["style"], "primary");

    // Nothing went to the response_url: the channel message was enough.
    assert!(h.fake.calls_of("response_url").is_empty());
}

#[tokio::test]
async fn clicking_mitigate_on_the_triage_report_posts_the_mitigate_report() {
    let h = Harness::start(Mode::Http).await;
    let payload = block_actions(
        &h.fake.response_url("click-1"),
        ("U_BOB", "bob"),
        "/mitigate model-server",
        "1699999999.000100",
    );
    let form = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
    let response = h.post_signed("/slack/interactions", FORM, &form).await;
    assert_eq!(response.status(), 200);

    let calls = h
        .fake
        .wait_for("the acknowledgement and the mitigate report", |calls| {
            final_message(calls, "Mitigate: model-server").is_some()
                && calls.iter().any(|c| c.method == "response_url")
        })
        .await;
    let posted = calls
        .iter()
        .find(|c| c.method == "chat.postMessage")
        .expect("a new message for the mitigate report");
    assert_eq!(posted.body["channel"], "C_INC");
    // The clicker alone is told at once that the click was taken.
    let acks: Vec<_> = calls
        .iter()
        .filter(|c| c.method == "response_url")
        .collect();
    assert_eq!(acks.len(), 1, "{calls:#?}");
    assert_eq!(acks[0].body["response_type"], "ephemeral");
    assert_eq!(acks[0].body["text"], "Running mitigate on model-server…");
    // A stage report is a new message: the triage report that held the button stays.
    assert!(
        !calls
            .iter()
            .any(|c| c.method == "chat.update" && c.body["ts"] == "1699999999.000100"),
        "{calls:#?}"
    );
}

#[tokio::test]
async fn a_mention_is_a_command_too() {
    let h = Harness::start(Mode::Http).await;
    let event = super::data("app_mention.json");
    // Slack's redelivery of an event it thinks was missed is acknowledged and not run again.
    let body = event.to_string();
    let ts = now().to_string();
    let response = h
        .post_raw(
            "/slack/events",
            JSON,
            body.clone(),
            &[
                ("x-slack-request-timestamp", ts.clone()),
                (
                    "x-slack-signature",
                    super::fake::sign(super::SECRET, &ts, &body),
                ),
                ("x-slack-retry-num", "1".to_string()),
                ("x-slack-retry-reason", "http_timeout".to_string()),
            ],
        )
        .await;
    assert_eq!(response.status(), 200);
    let response = h.post_signed("/slack/events", JSON, &body).await;
    assert_eq!(response.status(), 200);
    let calls = h
        .fake
        .wait_for("the help reply", |calls| {
            calls.iter().any(|c| c.method == "chat.postMessage")
        })
        .await;
    let posts: Vec<_> = calls
        .iter()
        .filter(|c| c.method == "chat.postMessage")
        .collect();
    assert_eq!(posts.len(), 1, "the retry did not run: {calls:#?}");
    let acks = h
        .fake
        .wait_for("the acknowledgement", |calls| {
            calls.iter().any(|c| c.method == "chat.postEphemeral")
        })
        .await;
    let ack = acks
        .iter()
        .find(|c| c.method == "chat.postEphemeral")
        .unwrap();
    assert_eq!(ack.body["user"], "U_ALICE");
    assert_eq!(ack.body["text"], "Working on /help…");
    let post = &posts[0].body;
    assert_eq!(post["channel"], "C_INC");
    assert!(post["text"].as_str().unwrap().contains("/triage"), "{post}");
}

#[tokio::test]
async fn url_verification_is_answered_with_the_challenge() {
    let h = Harness::start(Mode::Http).await;
    let body = super::data("url_verification.json").to_string();
    let response = h.post_signed("/slack/events", JSON, &body).await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(
        answer["challenge"],
        "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    );
}

#[tokio::test]
async fn bad_signatures_stale_timestamps_malformed_and_oversize_bodies_are_refused() {
    let h = Harness::start(Mode::Http).await;
    let form = command_form(&h.fake, "/triage", "model-server");

    // Signed with another secret.
    let ts = now().to_string();
    let forged = super::fake::sign("not-the-secret", &ts, &form);
    let response = h
        .post_raw(
            "/slack/commands",
            FORM,
            form.clone(),
            &[
                ("x-slack-request-timestamp", ts.clone()),
                ("x-slack-signature", forged),
            ],
        )
        .await;
    assert_eq!(response.status(), 401);

    // No signature at all.
    let response = h.post_raw("/slack/commands", FORM, form.clone(), &[]).await;
    assert_eq!(response.status(), 401);

    // A valid signature over a body that was changed afterwards.
    let signature = super::fake::sign(super::SECRET, &ts, &form);
    let response = h
        .post_raw(
            "/slack/commands",
            FORM,
            form.replace("model-server", "other"),
            &[
                ("x-slack-request-timestamp", ts.clone()),
                ("x-slack-signature", signature),
            ],
        )
        .await;
    assert_eq!(response.status(), 401);

    // Correctly signed, but ten minutes old: a replay.
    let response = h
        .post_signed_at("/slack/commands", FORM, &form, now() - 600)
        .await;
    assert_eq!(response.status(), 401);
    let response = h
        .post_signed_at("/slack/events", JSON, "{}", now() - 301)
        .await;
    assert_eq!(response.status(), 401);

    // Signed, but not what Slack sends.
    for (path, content_type, body) in [
        ("/slack/commands", FORM, "text=only-some-fields"),
        ("/slack/interactions", FORM, "payload=%7Bnot-json"),
        ("/slack/interactions", FORM, "no_payload=1"),
        (
            "/slack/interactions",
            FORM,
            "payload=%7B%22type%22%3A%22block_actions%22%7D",
        ),
        ("/slack/events", JSON, "[1,2,3"),
        ("/slack/events", JSON, "{\"type\":\"unheard_of\"}"),
    ] {
        let response = h.post_signed(path, content_type, body).await;
        assert_eq!(response.status(), 400, "{path} {body}");
    }

    // Over the limit: refused before the signature is even looked at.
    let huge = format!("text={}", "x".repeat(BODY_LIMIT + 1));
    let response = h.post_signed("/slack/commands", FORM, &huge).await;
    assert_eq!(response.status(), 413);
    let response = h
        .post_raw("/slack/events", JSON, "y".repeat(BODY_LIMIT * 2), &[])
        .await;
    assert_eq!(response.status(), 413);

    // None of it reached Slack's API.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(h.fake.calls().is_empty(), "{:#?}", h.fake.calls());
}

#[tokio::test]
async fn a_command_that_does_not_parse_is_answered_to_its_author_only() {
    let h = Harness::start(Mode::Http).await;
    let response = h
        .post_signed(
            "/slack/commands",
            FORM,
            &command_form(&h.fake, "/incident", "note 'half quoted"),
        )
        .await;
    assert_eq!(response.status(), 200);
    let ack: Value = response.json().await.unwrap();
    assert_eq!(ack["response_type"], "ephemeral");
    let text = ack["text"].as_str().unwrap();
    assert!(
        text.starts_with("cannot read that command: unclosed quote"),
        "{text}"
    );
    assert!(text.ends_with("try /help"), "{text}");
}
