//! Incidents end to end in the console: an Alertmanager notification opens an incident and
//! triages it, a rollback is requested and approved in the incident's channel, the incident is
//! resolved, and the post-mortem draft holds every step with its actor and time. Plus
//! duplicate, resolved and malformed notifications, and a restart.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use firebreak::Bot;
use firebreak::chat::alertmanager::{self, Destination};
use firebreak::chat::console::ConsoleOutbox;
use firebreak::render::{Effect, Reply};
use firebreak::store::Store;

use crate::support::{SHIPPED_RUNBOOK, bot, demo, say_as, shown, sim};

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// A firing notification as Alertmanager sends it (webhook payload version 4).
const FIRING: &str = include_str!("data/alertmanager-firing.json");

/// What the console outbox printed, shared with the test.
#[derive(Clone, Default)]
struct Screen(Arc<Mutex<Vec<u8>>>);

impl Write for Screen {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Screen {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// Wait until the screen shows `needle` (bounded, so a hang fails instead of stalling).
    async fn wait_for(&self, needle: &str) -> String {
        for _ in 0..300 {
            let text = self.text();
            if text.contains(needle) {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the console never showed {needle:?}:\n{}", self.text());
    }
}

async fn webhook(bot: Arc<Bot>, screen: &Screen, token: Option<&str>) -> String {
    let destinations = vec![Destination {
        outbox: Arc::new(ConsoleOutbox::new(screen.clone())),
        channel: "C_TEST".into(),
    }];
    let routes = alertmanager::routes(bot, token.map(firebreak::config::Secret::new), destinations);
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let url = format!("http://{}/alertmanager", listener.local_addr().unwrap());
    tokio::spawn(firebreak::server::serve(
        listener,
        firebreak::server::app(vec![routes]),
        std::future::pending(),
    ));
    url
}

async fn post(url: &str, body: &str, token: Option<&str>) -> (u16, serde_json::Value) {
    let mut request = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("webhook answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

fn attachment(reply: &Reply) -> (String, String) {
    reply
        .effects
        .iter()
        .find_map(|e| match e {
            Effect::Attach { filename, content } => Some((filename.clone(), content.clone())),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no file attached to:\n{}", shown(reply)))
}

fn section<'a>(draft: &'a str, heading: &str) -> &'a str {
    let start = draft
        .find(heading)
        .unwrap_or_else(|| panic!("no {heading:?} in the draft:\n{draft}"));
    let rest = &draft[start + heading.len()..];
    let end = rest.find("\n## ").unwrap_or(rest.len());
    &rest[..end]
}

#[tokio::test]
async fn alert_to_post_mortem_in_the_console() -> TestResult {
    let server = sim(demo()).await;
    let dir = tempfile::tempdir()?;
    let state = dir.path().join("state.db");
    let groups: firebreak::approval::Groups = [(
        "oncall".to_string(),
        vec!["alice".to_string(), "bob".to_string()],
    )]
    .into_iter()
    .collect();
    let pm_dir = dir.path().join("postmortems");
    // Like `bot()`, but on a durable store that a restart reopens.
    let make_bot = |store: Store| {
        Bot::new(
            firebreak::runbook::Runbooks::load("runbooks".as_ref()).unwrap(),
            firebreak::render::Templates::load_dir("templates".as_ref()).unwrap(),
            firebreak::cluster::Cluster::from_url(&server.url()).unwrap(),
            store,
        )
        .with_groups(groups.clone())
        .with_postmortem_dir(Some(pm_dir.clone()))
    };
    let bot = Arc::new(make_bot(Store::open(&state)?));
    let screen = Screen::default();
    let url = webhook(Arc::clone(&bot), &screen, Some("s3cret")).await;

    // Refusals change nothing.
    let (status, _) = post(&url, FIRING, Some("wrong")).await;
    assert_eq!(status, 401);
    let (status, body) = post(
        &url,
        r#"{"version": "4", "alerts": "nope"}"#,
        Some("s3cret"),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("Alertmanager")
    );
    assert!(bot.store().incidents().await?.is_empty());

    // A firing group opens an incident, announces it, and triages automatically.
    let (status, body) = post(&url, FIRING, Some("s3cret")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["incident"], "INC-1");
    assert_eq!(body["outcome"], "opened");
    let text = screen.wait_for("Triage: model-server").await;
    assert!(text.contains("INC-1 (sev2): VLLMKVCacheFull"), "{text}");

    // The same group again joins it: no second incident, nothing posted.
    let before = screen.text().len();
    let (_, body) = post(&url, FIRING, Some("s3cret")).await;
    assert_eq!(body["outcome"], "joined");
    assert_eq!(bot.store().incidents().await?.len(), 1);

    // In the incident's channel, commands attach to it without naming it.
    let prompt = say_as(&bot, "alice", "alice", "/rollback model-server undo").await;
    let id = prompt
        .buttons
        .iter()
        .find_map(|b| b.command.strip_prefix("/approve "))
        .expect("an Approve button")
        .to_string();
    let done = say_as(
        &bot,
        "bob",
        "bob",
        &format!("/approve {id} v0.11 fills the cache"),
    )
    .await;
    assert!(shown(&done).contains("Done: undo"), "{}", shown(&done));
    say_as(&bot, "alice", "alice", "/incident role scribe carol").await;
    say_as(
        &bot,
        "alice",
        "alice",
        "/incident status rolled back, watching the KV cache",
    )
    .await;
    say_as(
        &bot,
        "carol",
        "carol",
        "/incident note v0.11 raised max_num_seqs",
    )
    .await;

    // Alertmanager's resolved notification updates the announcement instead of posting.
    let resolved = FIRING.replace("\"status\": \"firing\"", "\"status\": \"resolved\"");
    let (_, body) = post(&url, &resolved, Some("s3cret")).await;
    assert_eq!(body["outcome"], "resolved");
    let text = screen.wait_for("updated ---").await;
    assert!(
        !text[before..].contains("--- message 3 "),
        "nothing new was posted:\n{}",
        &text[before..]
    );

    let closing = say_as(&bot, "alice", "alice", "/incident resolve").await;
    assert!(
        shown(&closing).contains("INC-1 resolved"),
        "{}",
        shown(&closing)
    );
    let (filename, draft) = attachment(&closing);
    assert_eq!(filename, "INC-1-postmortem.md");
    assert_eq!(
        std::fs::read_to_string(pm_dir.join(&filename))?,
        draft,
        "written to the configured directory too"
    );

    // Section by section.
    assert!(
        section(&draft, "## Summary").contains("serving-engine")
            || section(&draft, "## Summary").contains("infrastructure"),
        "{draft}"
    );
    let impact = section(&draft, "## Impact");
    assert!(
        impact.contains("| Started | 2026-11-28T02:51:00Z |"),
        "{impact}"
    );
    assert!(impact.contains("| Mitigated | 20"), "{impact}");
    assert!(impact.contains("| Resolved | 20"), "{impact}");
    assert!(section(&draft, "## Detection").contains("alert VLLMKVCacheFull"));
    assert!(section(&draft, "## Failure class and evidence").contains("Triage classified this as"));
    let actions = section(&draft, "## Resolution: actions taken");
    assert!(actions.contains("**undo** (rollout_undo)"), "{actions}");
    assert!(actions.contains("Requested by alice"), "{actions}");
    assert!(actions.contains("approved by bob at 20"), "{actions}");
    assert!(actions.contains("v0.11 fills the cache"), "{actions}");
    assert!(actions.contains("Result: succeeded"), "{actions}");
    let versions = section(&draft, "## Versions involved");
    assert!(
        versions.contains("image: vllm/vllm-openai:v0.11.0 → vllm/vllm-openai:v0.10.1"),
        "{versions}"
    );
    let timeline = section(&draft, "## Timeline (UTC)");
    for (who, what) in [
        ("Alertmanager", "declared"),
        ("Alertmanager", "alert: firing"),
        ("Alertmanager", "verdict"),
        ("alice", "plan"),
        ("bob", "decision"),
        ("Firebreak", "action: undo succeeded"),
        ("alice", "role"),
        ("alice", "status"),
        ("carol", "note"),
        (
            "Alertmanager",
            "alert: Alertmanager reports the group resolved",
        ),
        ("alice", "resolved"),
    ] {
        assert!(
            timeline
                .lines()
                .any(|l| l.starts_with("| 20") && l.contains(&format!("| {who} | {what}"))),
            "no timeline row by {who} for {what}:\n{timeline}"
        );
    }
    for heading in [
        "## Root cause and trigger",
        "### What went well",
        "### What went wrong",
        "### Where we got lucky",
        "## Action items",
    ] {
        assert!(draft.contains(heading), "{heading} missing:\n{draft}");
    }

    // Regenerating gives the same timeline.
    let again = say_as(
        &bot,
        "alice",
        "alice",
        "/incident note INC-1 follow-up filed",
    )
    .await;
    assert!(shown(&again).contains("Noted"), "{}", shown(&again));

    // The incident and its whole timeline survive a restart.
    let kinds_before: Vec<String> = bot
        .store()
        .timeline("INC-1")
        .await?
        .into_iter()
        .map(|e| e.kind)
        .collect();
    drop(bot);
    let reopened = make_bot(Store::open(&state)?);
    let incident = reopened
        .store()
        .incident("INC-1")
        .await?
        .expect("still there");
    assert!(!incident.open);
    let kinds_after: Vec<String> = reopened
        .store()
        .timeline("INC-1")
        .await?
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds_before, kinds_after);
    assert!(kinds_after.len() >= 11, "{kinds_after:?}");
    Ok(())
}

#[tokio::test]
async fn declaring_by_hand_binds_the_channel_and_refuses_bad_input() -> TestResult {
    let server = sim(demo()).await;
    let bot = bot(&server, &[SHIPPED_RUNBOOK]);
    let missing = say_as(&bot, "alice", "alice", "/incident status all good").await;
    assert!(
        shown(&missing).contains("this channel has none open"),
        "{}",
        shown(&missing)
    );
    let bad = say_as(&bot, "alice", "alice", "/incident declare sev9 oops").await;
    assert!(shown(&bad).contains("needs a severity"), "{}", shown(&bad));
    let untitled = say_as(&bot, "alice", "alice", "/incident declare sev2").await;
    assert!(
        shown(&untitled).contains("needs a title"),
        "{}",
        shown(&untitled)
    );

    let declared = say_as(
        &bot,
        "alice",
        "alice",
        "/incident declare sev3 Canary failing",
    )
    .await;
    assert!(
        shown(&declared).contains("INC-1 (sev3): Canary failing"),
        "{}",
        shown(&declared)
    );
    assert!(declared.effects.iter().any(|e| matches!(
        e,
        Effect::OpenChannel { name, .. } if name == "inc-1-canary-failing"
    )));
    // Only the people running it change it: bob is refused until alice gives him a role.
    let refused = say_as(&bot, "bob", "bob", "/incident severity sev1").await;
    assert!(
        shown(&refused).contains("only INC-1's commander (alice)"),
        "{}",
        shown(&refused)
    );
    let noted = say_as(&bot, "bob", "bob", "/incident note canary on v7").await;
    assert!(shown(&noted).contains("Noted"), "{}", shown(&noted));
    say_as(&bot, "alice", "alice", "/incident role ops bob").await;
    let raised = say_as(&bot, "bob", "bob", "/incident severity sev1").await;
    assert!(
        shown(&raised).contains("INC-1 (sev1)"),
        "{}",
        shown(&raised)
    );
    let list = say_as(&bot, "bob", "bob", "/incident list").await;
    assert!(shown(&list).contains("INC-1"), "{}", shown(&list));
    let draft = say_as(&bot, "bob", "bob", "/postmortem").await;
    let (_, content) = attachment(&draft);
    assert!(
        content.contains("changed the severity from sev3 to sev1"),
        "{content}"
    );
    Ok(())
}
