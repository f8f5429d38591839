//! The issue-14 findings against the Slack endpoints, signed as Slack signs: non-ASCII
//! arguments, other workspaces, strangers changing incidents, replays, escaping.

use std::time::Duration;

use firebreak::chat::access::{AccessConfig, NOT_ENABLED_SLACK};
use firebreak::store::Incident;
use serde_json::{Value, json};

use super::fake::{now, sign};
use super::{Harness, Mode, SECRET, block_actions, unique_trigger_id};

const FORM: &str = "application/x-www-form-urlencoded";

/// A slash command form from `user` of workspace `team` in channel `C_INC`.
fn form(h: &Harness, team: &str, user: (&str, &str), command: &str, text: &str) -> String {
    serde_urlencoded::to_string([
        ("token", "gIkuvaNzQIHg97ATvDxqgjtO"),
        ("team_id", team),
        ("team_domain", "example"),
        ("channel_id", "C_INC"),
        ("user_id", user.0),
        ("user_name", user.1),
        ("command", command),
        ("text", text),
        ("api_app_id", "A0FIREBRK"),
        ("response_url", h.fake.response_url("cmd").as_str()),
        ("trigger_id", &unique_trigger_id()),
    ])
    .unwrap()
}

/// POST a slash command; its immediate (ephemeral) answer's text.
async fn say(h: &Harness, team: &str, user: (&str, &str), command: &str, text: &str) -> String {
    let response = h
        .post_signed("/slack/commands", FORM, &form(h, team, user, command, text))
        .await;
    assert_eq!(response.status(), 200);
    let ack: Value = response.json().await.unwrap();
    ack["text"].as_str().unwrap_or_default().to_string()
}

/// Wait (bounded) until `done` holds for the incident, which must exist.
async fn wait_incident(
    h: &Harness,
    id: &str,
    what: &str,
    done: impl Fn(&Incident) -> bool,
) -> Incident {
    for _ in 0..400 {
        if let Ok(Some(incident)) = h.bot.store().incident(id).await
            && done(&incident)
        {
            return incident;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "timed out waiting for {what}: {:?}",
        h.bot.store().incident(id).await
    );
}

/// Wait (bounded) for a reply posted anywhere whose text contains `needle`.
async fn wait_reply(h: &Harness, needle: &str) {
    h.fake
        .wait_for(needle, |calls| {
            calls.iter().any(|c| {
                matches!(
                    c.method.as_str(),
                    "chat.postMessage" | "chat.update" | "response_url"
                ) && c.body.to_string().contains(needle)
            })
        })
        .await;
}

async fn timeline_text(h: &Harness, id: &str) -> String {
    h.bot
        .store()
        .timeline(id)
        .await
        .unwrap()
        .iter()
        .map(|e| e.text.clone())
        .collect::<Vec<_>>()
        .join("\n")
}

const ALICE: (&str, &str) = ("U_ALICE", "alice");
const EVE: (&str, &str) = ("U_EVE", "eve");

#[tokio::test]
async fn finding_1_non_ascii_arguments_are_answered_not_a_panic() {
    let h = Harness::start(Mode::Http).await;
    // Outside an incident: the first word is checked for an incident id, and must not panic.
    say(&h, "T0001", ALICE, "/incident", "note Noté").await;
    wait_reply(&h, "this channel has none open").await;
    say(
        &h,
        "T0001",
        ALICE,
        "/incident",
        "declare sev2 KV cache full",
    )
    .await;
    wait_incident(&h, "INC-1", "the declaration", |_| true).await;
    for text in ["note Noté", "note 数据库 down", "note ñ"] {
        say(&h, "T0001", ALICE, "/incident", text).await;
    }
    say(&h, "T0001", ALICE, "/incident", "resolve ñoño").await;
    wait_incident(&h, "INC-1", "the resolution", |i| !i.open).await;
    let timeline = timeline_text(&h, "INC-1").await;
    for text in ["Noté", "数据库 down", "resolved the incident: ñoño"] {
        assert!(timeline.contains(text), "{text} missing from {timeline}");
    }
}

#[tokio::test]
async fn finding_2_other_workspaces_are_refused_and_audited() {
    let h = Harness::start(Mode::Http).await;
    let answer = say(
        &h,
        "T_OTHER",
        ("U_MALLORY", "mallory"),
        "/incident",
        "declare sev1 pwned",
    )
    .await;
    assert_eq!(answer, NOT_ENABLED_SLACK);
    let answer = say(&h, "", ("U_MALLORY", "mallory"), "/incident", "list").await;
    assert_eq!(answer, NOT_ENABLED_SLACK);
    // A click on an approval from another workspace where the app is installed.
    let mut click = block_actions(
        &h.fake.response_url("click-other"),
        ("U_MALLORY", "mallory"),
        "/incident declare sev1 from a click",
        "1700000000.000001",
    );
    click["team"]["id"] = json!("T_OTHER");
    click["user"]["team_id"] = json!("T_OTHER");
    let body = serde_urlencoded::to_string([("payload", click.to_string())]).unwrap();
    assert_eq!(
        h.post_signed("/slack/interactions", FORM, &body)
            .await
            .status(),
        200
    );
    h.fake
        .wait_for("the refused click's explanation", |calls| {
            calls.iter().any(|c| {
                c.method == "response_url"
                    && c.body
                        .to_string()
                        .contains("not enabled for this workspace")
            })
        })
        .await;
    // A Slack Connect user of another workspace clicking in one of ours is refused too.
    let mut guest = block_actions(
        &h.fake.response_url("click-guest"),
        ("U_GUEST", "guest"),
        "/incident declare sev1 from a guest",
        "1700000000.000001",
    );
    guest["user"]["team_id"] = json!("T_OTHER");
    let body = serde_urlencoded::to_string([("payload", guest.to_string())]).unwrap();
    assert_eq!(
        h.post_signed("/slack/interactions", FORM, &body)
            .await
            .status(),
        200
    );

    // Our own workspace still works, and nothing above declared anything.
    say(&h, "T0001", ALICE, "/incident", "declare sev3 ours").await;
    let first = wait_incident(&h, "INC-1", "our declaration", |_| true).await;
    assert_eq!(first.title, "ours");
    assert_eq!(h.bot.store().incidents().await.unwrap().len(), 1);
    let refused: Vec<String> = h
        .bot
        .store()
        .audit_log(None)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "refused")
        .map(|e| e.detail)
        .collect();
    assert_eq!(refused.len(), 4, "{refused:#?}");
    assert!(
        refused[0].contains("T_OTHER") && refused[0].contains("declare sev1 pwned"),
        "{refused:#?}"
    );

    // An Enterprise Grid organisation listed in the config lets its workspaces in.
    h.slack.allow(&AccessConfig {
        slack_enterprises: vec!["E_GRID".into()],
        ..AccessConfig::default()
    });
    let mut grid = form(&h, "T_GRID", ("U_GRID", "grace"), "/incident", "list");
    grid.push_str("&enterprise_id=E_GRID");
    let response = h.post_signed("/slack/commands", FORM, &grid).await;
    let ack: Value = response.json().await.unwrap();
    assert_ne!(ack["text"], NOT_ENABLED_SLACK);
}

#[tokio::test]
async fn finding_3_only_the_people_running_an_incident_change_it() {
    let h = Harness::start(Mode::Http).await;
    say(
        &h,
        "T0001",
        ALICE,
        "/incident",
        "declare sev2 KV cache full",
    )
    .await;
    wait_incident(&h, "INC-1", "the declaration", |_| true).await;
    for text in [
        "severity sev4",
        "resolve nothing to see",
        "role commander <@U_EVE>",
        "status all fine",
    ] {
        say(&h, "T0001", EVE, "/incident", text).await;
        wait_reply(&h, "only INC-1's commander").await;
    }
    // Anyone let in may still add to the record.
    say(&h, "T0001", EVE, "/incident", "note I saw 500s at 02:10").await;
    let incident = wait_incident(&h, "INC-1", "eve's note", |_| true).await;
    assert_eq!((incident.severity.as_str(), incident.open), ("sev2", true));
    let refusals = h
        .bot
        .store()
        .audit_log(Some("INC-1"))
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "refused" && e.actor.id == "U_EVE")
        .count();
    assert_eq!(refusals, 4);
    // A responder named by mention may; the commander may.
    say(&h, "T0001", ALICE, "/incident", "role ops <@U_EVE|eve>").await;
    wait_incident(&h, "INC-1", "eve made ops", |i| {
        i.data.roles.contains_key("ops")
    })
    .await;
    say(&h, "T0001", EVE, "/incident", "severity sev1").await;
    wait_incident(&h, "INC-1", "eve's severity", |i| i.severity == "sev1").await;
    let timeline = timeline_text(&h, "INC-1").await;
    assert!(timeline.contains("I saw 500s"), "{timeline}");
}

#[tokio::test]
async fn finding_4_a_replayed_signed_request_runs_once() {
    let h = Harness::start(Mode::Http).await;
    let body = form(&h, "T0001", ALICE, "/incident", "declare sev2 replayed");
    let ts = now().to_string();
    let signature = sign(SECRET, &ts, &body);
    let mut answers = Vec::new();
    for _ in 0..5 {
        let response = h
            .post_raw(
                "/slack/commands",
                FORM,
                body.clone(),
                &[
                    ("x-slack-request-timestamp", ts.clone()),
                    ("x-slack-signature", signature.clone()),
                ],
            )
            .await;
        assert_eq!(response.status(), 200);
        answers.push(response.text().await.unwrap());
    }
    assert!(answers[0].contains("Working on /incident"), "{answers:?}");
    // The same trigger id signed anew (a Socket Mode redelivery, or a second signature).
    let later = (now() + 1).to_string();
    let response = h
        .post_raw(
            "/slack/commands",
            FORM,
            body.clone(),
            &[
                ("x-slack-request-timestamp", later.clone()),
                ("x-slack-signature", sign(SECRET, &later, &body)),
            ],
        )
        .await;
    let again: Value = response.json().await.unwrap();
    assert!(
        again["text"].as_str().unwrap().contains("Already received"),
        "{again}"
    );
    wait_incident(&h, "INC-1", "the one declaration", |_| true).await;
    // A later, different command runs, and is INC-2: the replays declared nothing.
    say(&h, "T0001", ALICE, "/incident", "declare sev3 second").await;
    let second = wait_incident(&h, "INC-2", "the second declaration", |_| true).await;
    assert_eq!(second.title, "second");
    assert_eq!(h.bot.store().incidents().await.unwrap().len(), 2);
}

#[tokio::test]
async fn finding_6_user_text_echoed_into_slack_stays_escaped() {
    let h = Harness::start(Mode::Http).await;
    say(
        &h,
        "T0001",
        ALICE,
        "/incident",
        "declare sev2 <!channel> ping <@U_BOSS> & <!here>",
    )
    .await;
    wait_incident(&h, "INC-1", "the declaration", |_| true).await;
    let calls = h
        .fake
        .wait_for("the summary", |calls| {
            calls
                .iter()
                .any(|c| c.method == "chat.postMessage" && c.body.to_string().contains("INC-1"))
        })
        .await;
    // Slack parses mentions in mrkdwn text and a message's fallback `text`; `plain_text`
    // (the header) is shown as typed and never pings.
    let mut parsed: Vec<String> = Vec::new();
    for call in calls
        .iter()
        .filter(|c| matches!(c.method.as_str(), "chat.postMessage" | "chat.update"))
    {
        parsed.extend(call.body["text"].as_str().map(str::to_string));
        mrkdwn_texts(&call.body["blocks"], &mut parsed);
    }
    assert!(
        parsed.iter().any(|t| t.contains("&lt;!channel&gt;")),
        "{parsed:#?}"
    );
    for text in &parsed {
        for raw in ["<!channel>", "<!here>", "<@U_BOSS>"] {
            assert!(!text.contains(raw), "{raw} reached Slack unescaped: {text}");
        }
    }
}

fn mrkdwn_texts(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if map.get("type").and_then(Value::as_str) == Some("mrkdwn")
                && let Some(text) = map.get("text").and_then(Value::as_str)
            {
                out.push(text.to_string());
            }
            map.values().for_each(|v| mrkdwn_texts(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| mrkdwn_texts(v, out)),
        _ => {}
    }
}
