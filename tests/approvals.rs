//! Approvals end to end through the core, against the simulator: the prompt, the policy's
//! refusals, exactly-once execution under 100 concurrent clicks, a `kill -9` between request
//! and approval, and the audit log that records all of it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use firebreak::Bot;
use firebreak::render::{ButtonStyle, Delivery, Reply};
use firebreak::sim::SimServer;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::support::{SHIPPED_RUNBOOK, bot, demo, kubectl, say_as, shown, sim};

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

const DEPLOYMENT: &str = "/apis/apps/v1/namespaces/ai-production/deployments/model-server";

fn oncall() -> BTreeMap<String, Vec<String>> {
    let members = ["alice", "bob", "carol"]
        .into_iter()
        .map(String::from)
        .chain((0..100).map(|n| format!("approver-{n}")))
        .collect();
    [("oncall".to_string(), members)].into_iter().collect()
}

fn approvals_bot(server: &SimServer, runbook: &str) -> Bot {
    bot(server, &[runbook]).with_groups(oncall())
}

/// The request id from a prompt's Approve button.
fn request_id(prompt: &Reply) -> String {
    let approve = prompt
        .buttons
        .iter()
        .find(|b| b.label == "Approve")
        .unwrap_or_else(|| panic!("no Approve button in:\n{}", shown(prompt)));
    assert_eq!(approve.style, ButtonStyle::Danger);
    assert!(approve.confirm.is_some(), "a destructive button asks first");
    approve
        .command
        .strip_prefix("/approve ")
        .expect("the button runs /approve ID")
        .to_string()
}

/// Changing writes to the deployment (not dry runs), as counted by the simulator.
fn deployment_writes(server: &SimServer) -> usize {
    server
        .writes()
        .iter()
        .filter(|w| w.starts_with("PATCH") && w.ends_with(DEPLOYMENT))
        .count()
}

#[tokio::test]
async fn a_rollback_is_planned_approved_by_someone_else_applied_once_and_audited() -> TestResult {
    let server = sim(demo()).await;
    let bot = approvals_bot(&server, SHIPPED_RUNBOOK);

    let offer = say_as(&bot, "alice", "alice", "/rollback model-server").await;
    let text = shown(&offer);
    assert!(text.contains("Actions"), "{text}");
    assert!(text.contains("/rollback model-server undo"), "{text}");
    assert!(
        offer.buttons.iter().any(|b| b.label == "Request undo"),
        "{text}"
    );
    assert_eq!(
        deployment_writes(&server),
        0,
        "offering plans changes nothing"
    );

    let prompt = say_as(&bot, "alice", "alice", "/rollback model-server undo").await;
    let text = shown(&prompt);
    assert!(
        text.contains("Approval needed: undo on model-server"),
        "{text}"
    );
    assert!(text.contains("Requested by  alice"), "{text}");
    assert!(
        text.contains("v0.10.1"),
        "the plan names the target image:\n{text}"
    );
    assert!(text.contains("Dry run"), "{text}");
    assert!(text.contains("passed"), "{text}");
    let id = request_id(&prompt);

    let own = say_as(&bot, "alice", "alice", &format!("/approve {id}")).await;
    assert_eq!(own.delivery, Delivery::Ephemeral);
    assert!(
        shown(&own).contains("needs someone else to approve"),
        "{}",
        shown(&own)
    );
    let stranger = say_as(&bot, "mallory", "mallory", &format!("/approve {id}")).await;
    assert_eq!(stranger.delivery, Delivery::Ephemeral);
    assert!(shown(&stranger).contains("not an approver"));
    assert_eq!(deployment_writes(&server), 0);

    let done = say_as(&bot, "bob", "bob", &format!("/approve {id}")).await;
    let text = shown(&done);
    assert_eq!(done.delivery, Delivery::ReplaceOrigin);
    assert!(text.contains("Done: undo on model-server"), "{text}");
    assert!(text.contains("approved by bob"), "{text}");
    assert!(done.buttons.is_empty(), "no stale buttons:\n{text}");
    assert_eq!(deployment_writes(&server), 1);

    let again = say_as(&bot, "carol", "carol", &format!("/approve {id}")).await;
    assert!(
        shown(&again).contains("already succeeded"),
        "{}",
        shown(&again)
    );
    assert_eq!(deployment_writes(&server), 1);

    let image = kubectl(
        &server,
        &[
            "get",
            "deployment/model-server",
            "-n",
            "ai-production",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}",
        ],
    )
    .await?;
    assert!(image.contains("v0.10.1"), "{image}");
    let history = kubectl(
        &server,
        &[
            "rollout",
            "history",
            "deployment/model-server",
            "-n",
            "ai-production",
        ],
    )
    .await?;
    assert!(history.contains('3'), "a new revision 3:\n{history}");

    let audit: Vec<String> = bot
        .store()
        .audit_log(None)
        .await?
        .iter()
        .map(|e| e.line())
        .collect();
    let audit = audit.join("\n");
    for expected in [
        "command",
        "/rollback model-server undo",
        "plan",
        "refused",
        "requester may not approve",
        "not an approver",
        "decision",
        "approved (1/1)",
        "api_call",
        "PATCH /apis/apps/v1/namespaces/ai-production/deployments/model-server",
        "outcome",
        "succeeded",
    ] {
        assert!(
            audit.contains(expected),
            "audit lacks {expected:?}:\n{audit}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_denied_request_never_runs() -> TestResult {
    let server = sim(demo()).await;
    let bot = approvals_bot(&server, SHIPPED_RUNBOOK);
    let prompt = say_as(&bot, "alice", "alice", "/mitigate model-server restart").await;
    let id = request_id(&prompt);
    let denied = say_as(
        &bot,
        "bob",
        "bob",
        &format!("/deny {id} not while the canary runs"),
    )
    .await;
    let text = shown(&denied);
    assert_eq!(denied.delivery, Delivery::ReplaceOrigin);
    assert!(text.contains("Denied: restart"), "{text}");
    assert!(text.contains("not while the canary runs"), "{text}");
    let late = say_as(&bot, "carol", "carol", &format!("/approve {id}")).await;
    assert!(shown(&late).contains("already denied"), "{}", shown(&late));
    assert_eq!(deployment_writes(&server), 0);
    Ok(())
}

#[tokio::test]
async fn failover_needs_two_approvers_with_reasons() -> TestResult {
    let server = sim(demo()).await;
    let bot = approvals_bot(&server, SHIPPED_RUNBOOK);
    let prompt = say_as(&bot, "alice", "alice", "/mitigate model-server failover").await;
    let id = request_id(&prompt);
    let bare = say_as(&bot, "bob", "bob", &format!("/approve {id}")).await;
    assert!(shown(&bare).contains("needs a reason"), "{}", shown(&bare));
    let first = say_as(
        &bot,
        "bob",
        "bob",
        &format!("/approve {id} us-east GPUs are gone"),
    )
    .await;
    let text = shown(&first);
    assert!(text.contains("Approvals (1/2)"), "{text}");
    assert!(
        !first.buttons.is_empty(),
        "still open for the second approver"
    );
    let second = say_as(&bot, "carol", "carol", &format!("/approve {id} agreed")).await;
    assert!(
        shown(&second).contains("Done: failover"),
        "{}",
        shown(&second)
    );
    let weights = kubectl(
        &server,
        &[
            "get",
            "httproute/model-server",
            "-n",
            "ai-production",
            "-o",
            "jsonpath={.spec.rules[0].backendRefs[*].weight}",
        ],
    )
    .await?;
    assert_eq!(weights.split_whitespace().collect::<Vec<_>>().len(), 2);
    assert!(
        weights.contains("100") && weights.contains('0'),
        "{weights}"
    );
    Ok(())
}

#[tokio::test]
async fn an_expired_request_cannot_be_approved() -> TestResult {
    let server = sim(demo()).await;
    let runbook = SHIPPED_RUNBOOK.replace(
        "id: restart\n        title: Restart every model-server pod\n        approval: {approvers: [group:oncall], approvals: 1}",
        "id: restart\n        title: Restart every model-server pod\n        approval: {approvers: [group:oncall], approvals: 1, expires: 0s}",
    );
    assert_ne!(
        runbook, SHIPPED_RUNBOOK,
        "the test edits the restart policy"
    );
    let bot = approvals_bot(&server, &runbook);
    let prompt = say_as(&bot, "alice", "alice", "/mitigate model-server restart").await;
    let id = request_id(&prompt);
    let late = say_as(&bot, "bob", "bob", &format!("/approve {id}")).await;
    assert!(shown(&late).contains("expired"), "{}", shown(&late));
    assert_eq!(deployment_writes(&server), 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_concurrent_approvals_apply_the_action_once() -> TestResult {
    let server = sim(demo()).await;
    let bot = Arc::new(approvals_bot(&server, SHIPPED_RUNBOOK));
    let prompt = say_as(&bot, "alice", "alice", "/mitigate model-server restart").await;
    let id = request_id(&prompt);
    let clicks = (0..100).map(|n| {
        let bot = Arc::clone(&bot);
        let command = format!("/approve {id}");
        tokio::spawn(async move {
            let who = format!("approver-{n}");
            say_as(&bot, &who, &who, &command).await
        })
    });
    let replies = futures::future::join_all(clicks).await;
    let done = replies
        .iter()
        .filter(|r| r.as_ref().is_ok_and(|r| shown(r).contains("Done: restart")))
        .count();
    assert_eq!(done, 1, "exactly one click executes");
    assert_eq!(
        deployment_writes(&server),
        1,
        "the simulator saw one change"
    );
    Ok(())
}

/// Read the child's stdout until a line contains `needle`; return everything read.
async fn read_until(
    lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    needle: &str,
) -> String {
    let mut seen = String::new();
    let wait = async {
        while let Ok(Some(line)) = lines.next_line().await {
            seen.push_str(&line);
            seen.push('\n');
            if line.contains(needle) {
                return true;
            }
        }
        false
    };
    // A bound on waiting, not a speed claim: a hung child fails the test instead of CI.
    let found = tokio::time::timeout(Duration::from_secs(60), wait)
        .await
        .unwrap_or(false);
    assert!(found, "never saw {needle:?}; output so far:\n{seen}");
    seen
}

fn console(
    dir: &std::path::Path,
    kubeconfig: &std::path::Path,
    user: &str,
) -> std::io::Result<tokio::process::Child> {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_firebreak"))
        .args(["console", "--kubeconfig"])
        .arg(kubeconfig)
        .arg("--state")
        .arg(dir.join("state.db"))
        .arg("--config")
        .arg(dir.join("firebreak.yaml"))
        .args(["--user", user])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
}

#[tokio::test]
async fn a_request_survives_kill_9_and_runs_once_after_the_restart() -> TestResult {
    let server = sim(demo()).await;
    let dir = tempfile::tempdir()?;
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, server.kubeconfig_yaml("ai-production"))?;
    std::fs::write(
        dir.path().join("firebreak.yaml"),
        "groups:\n  oncall: [alice, bob]\n",
    )?;

    let mut first = console(dir.path(), &kubeconfig, "alice")?;
    let mut input = first.stdin.take().expect("stdin is piped");
    let mut output = BufReader::new(first.stdout.take().expect("stdout is piped")).lines();
    input.write_all(b"/rollback model-server undo\n").await?;
    let prompt = read_until(&mut output, "/approve ").await;
    let id = prompt
        .lines()
        .find_map(|l| l.split("/approve ").nth(1))
        .map(|rest| {
            rest.split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .expect("the prompt prints its Approve button");
    first.start_kill()?; // SIGKILL: no shutdown code runs.
    first.wait().await?;
    assert_eq!(deployment_writes(&server), 0);

    let mut second = console(dir.path(), &kubeconfig, "alice")?;
    let mut input = second.stdin.take().expect("stdin is piped");
    let mut output = BufReader::new(second.stdout.take().expect("stdout is piped")).lines();
    input
        .write_all(format!("/as bob\n/approve {id}\n").as_bytes())
        .await?;
    let mut outcome = read_until(&mut output, "Done: undo on model-server").await;
    input.write_all(b"/quit\n").await?;
    while let Some(line) = output.next_line().await? {
        outcome.push_str(&line);
        outcome.push('\n');
    }
    second.wait().await?;
    assert!(outcome.contains("approved by bob"), "{outcome}");
    assert_eq!(deployment_writes(&server), 1);

    let audit = std::process::Command::new(env!("CARGO_BIN_EXE_firebreak"))
        .args(["audit", "--state"])
        .arg(dir.path().join("state.db"))
        .output()?;
    let log = String::from_utf8_lossy(&audit.stdout);
    assert!(audit.status.success(), "{log}");
    for expected in [
        "alice via console#console: /rollback model-server undo",
        "plan",
        "bob via console#console: /approve",
        "approved (1/1)",
        "api_call",
        "succeeded",
    ] {
        assert!(log.contains(expected), "audit lacks {expected:?}:\n{log}");
    }
    Ok(())
}
