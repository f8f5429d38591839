//! `firebreak check`: validate runbooks and templates before they are needed at 3 a.m.,
//! in the spirit of `promtool check`.

use std::path::{Path, PathBuf};

use crate::approval::{Policy, RequestView};
use crate::command::COMMANDS;
use crate::command::action::ActionOffer;
use crate::command::stage::StageView;
use crate::render::{Severity, Templates};
use crate::runbook::actions::{DryRun, Plan, VersionChange};
use crate::runbook::signal::Signal;
use crate::runbook::steps::{Finding, StepReport, StepStatus};
use crate::runbook::verdict;
use crate::runbook::{Runbook, Runbooks, StageReport};
use crate::store::{Actor, Decision, DecisionRecord, Request, RequestState};

/// The verdict on one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// What was checked.
    pub path: String,
    /// `Ok(summary)` or `Err(problems)`, one line each.
    pub outcome: Result<String, Vec<String>>,
}

/// Check each path: a runbook file, a template file, or a directory of either.
pub fn check_paths(paths: &[PathBuf]) -> Vec<Checked> {
    paths
        .iter()
        .map(|p| Checked {
            path: p.display().to_string(),
            outcome: check_path(p),
        })
        .collect()
}

fn check_path(path: &Path) -> Result<String, Vec<String>> {
    let has = |ext: &[&str]| {
        std::fs::read_dir(path).map(|entries| {
            entries.filter_map(|e| e.ok()).any(|e| {
                e.path()
                    .extension()
                    .is_some_and(|x| ext.iter().any(|want| x == *want))
            })
        })
    };
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default();
    if path.is_dir() {
        if has(&["hbs"]).unwrap_or(false) {
            check_templates(path)
        } else if has(&["yaml", "yml"]).unwrap_or(false) {
            check_runbooks(path)
        } else {
            Err(vec![format!(
                "{}: nothing to check here; expected *.yaml runbooks or *.hbs templates",
                path.display()
            )])
        }
    } else if !path.exists() {
        Err(vec![format!(
            "{}: no such file or directory",
            path.display()
        )])
    } else if extension == "hbs" {
        // A template only makes sense with its siblings (partials, required stages).
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let dir = if dir.ends_with("partials") {
            dir.parent().unwrap_or(dir)
        } else {
            dir
        };
        check_templates(dir)
    } else if extension == "yaml" || extension == "yml" {
        check_runbooks(path)
    } else {
        Err(vec![format!(
            "{}: not a runbook (.yaml) or a template (.hbs)",
            path.display()
        )])
    }
}

fn check_runbooks(path: &Path) -> Result<String, Vec<String>> {
    let files = Runbooks::files(path).map_err(|e| vec![e.to_string()])?;
    let mut problems = Vec::new();
    let mut all = Runbooks::default();
    let (mut stages, mut steps) = (0, 0);
    for file in &files {
        let parsed = std::fs::read_to_string(file)
            .map_err(|e| format!("{}: {e}", file.display()))
            .and_then(|text| {
                Runbook::from_yaml(&text, &file.display().to_string()).map_err(|e| e.to_string())
            });
        match parsed {
            Ok(runbook) => {
                stages += runbook.stages.len();
                steps += runbook
                    .stages
                    .values()
                    .map(|s| s.steps.len())
                    .sum::<usize>();
                if runbook.stages.values().all(|s| s.steps.is_empty()) {
                    problems.push(format!("{}: no stage has any steps", file.display()));
                }
                if let Err(e) = all.add(runbook) {
                    problems.push(e.to_string());
                }
            }
            Err(message) => problems.push(message),
        }
    }
    if problems.is_empty() {
        Ok(format!(
            "{} runbook(s) ({}), {stages} stages, {steps} steps",
            files.len(),
            all.services().join(", ")
        ))
    } else {
        Err(problems)
    }
}

fn check_templates(dir: &Path) -> Result<String, Vec<String>> {
    let templates = Templates::load_dir(dir).map_err(|e| vec![e.to_string()])?;
    let mut problems = Vec::new();
    let mut count = 0;
    let offers = sample_offers();
    for stage in ["triage", "mitigate", "rollback", "postmortem"] {
        for report in [sample_report(stage, true), sample_report(stage, false)] {
            for actions in [&offers[..], &[]] {
                count += 1;
                let view = StageView {
                    report: &report,
                    actions,
                };
                if let Err(e) = templates.render(stage, &view, report.severity, Vec::new()) {
                    problems.push(e.to_string());
                }
            }
        }
    }
    for request in sample_requests() {
        count += 1;
        let view = RequestView {
            request: &request,
            approvals: request.approvals(),
            needed: request.policy.approvals,
            approvers: "group:oncall (alice, bob)".into(),
            dry_run: "passed (dryRun=All)".into(),
            dry_run_passed: true,
            calls: vec![
                "PATCH /apis/apps/v1/namespaces/ai-production/deployments/model-server → 200"
                    .into(),
            ],
            verification: Some("3/3 replicas updated and available".into()),
            notice: Some("Approved: applying the plan…".into()),
        };
        if let Err(e) = templates.render("approval", &view, Severity::Warning, Vec::new()) {
            problems.push(e.to_string());
        }
    }
    let help = serde_json::json!({
        "commands": COMMANDS,
        "services": [{"service": "model-server", "description": "vLLM", "namespace": "ai-production", "stages": "triage"}],
    });
    let error = serde_json::json!({
        "message": "unknown command `/x`", "hint": "try /help", "commands": COMMANDS, "services": ["model-server"],
    });
    for (name, data) in [("help", help), ("error", error)] {
        count += 1;
        if let Err(e) = templates.render(name, &data, Severity::Info, Vec::new()) {
            problems.push(e.to_string());
        }
    }
    problems.dedup();
    if problems.is_empty() {
        Ok(format!(
            "{count} renders of the required templates succeeded"
        ))
    } else {
        Err(problems)
    }
}

/// Offers exercising both shapes: planned, and not plannable.
fn sample_offers() -> Vec<ActionOffer> {
    vec![
        ActionOffer {
            id: "undo".into(),
            kind: "rollout_undo",
            title: Some("Roll back the model server".into()),
            summary: Some("roll back from revision 3 to revision 2".into()),
            dry_run: Some("passed".into()),
            error: None,
            approval: "1 approval(s) from group:oncall (alice, bob)".into(),
            command: "/rollback model-server undo".into(),
        },
        ActionOffer {
            id: "prompt".into(),
            kind: "prompt_rollback",
            title: None,
            summary: None,
            dry_run: None,
            error: Some("there is no previous prompt version".into()),
            approval: "no approval (marked safe)".into(),
            command: "/rollback model-server prompt".into(),
        },
    ]
}

/// A request in each state a template shows.
fn sample_requests() -> Vec<Request> {
    let actor = |name: &str| Actor {
        id: name.into(),
        name: name.into(),
        platform: "slack".into(),
        channel: "C1".into(),
    };
    let pending = Request {
        id: "7f3a9c1e".into(),
        service: "model-server".into(),
        stage: "rollback".into(),
        action: "undo".into(),
        plan: Plan {
            action: "undo".into(),
            kind: "rollout_undo".into(),
            target: "deployment/model-server -n ai-production".into(),
            summary: "roll back from revision 3 to revision 2".into(),
            diff: "- image: vllm:v2\n+ image: vllm:v1".into(),
            calls: Vec::new(),
            dry_run: DryRun::Passed,
            versions: vec![VersionChange {
                what: "image".into(),
                from: "vllm:v2".into(),
                to: "vllm:v1".into(),
            }],
        },
        policy: Policy {
            reason: true,
            ..Policy::default()
        },
        requester: actor("alice"),
        incident: Some("INC-1".into()),
        created_at: "2026-11-28T03:00:00Z".into(),
        expires_at: "2026-11-28T03:15:00Z".into(),
        state: RequestState::Pending,
        outcome: None,
        decisions: Vec::new(),
    };
    let decided = Request {
        state: RequestState::Succeeded,
        outcome: Some("rolled back; 3/3 available".into()),
        decisions: vec![DecisionRecord {
            actor: actor("bob"),
            decision: Decision::Approve,
            reason: Some("v2 fills the KV cache".into()),
            at: "2026-11-28T03:02:00Z".into(),
        }],
        ..pending.clone()
    };
    vec![pending, decided]
}

/// A report exercising every field templates may use, finished or still running.
fn sample_report(stage: &'static str, done: bool) -> StageReport {
    let step = |number, status, error: Option<&str>| StepReport {
        number,
        kind: "pods",
        title: "Serving pods".into(),
        status,
        findings: vec![
            Finding::new(
                Severity::Critical,
                "`model-server-x` was OOMKilled (exit 137), 6 restarts",
            )
            .signal(Signal::OomKilled),
            Finding::new(Severity::Warning, "`model-server-x` KV cache 97.0%")
                .signal(Signal::KvCacheHigh),
        ],
        table: Some("NAME  READY\nx     0/1".into()),
        error: error.map(str::to_string),
        elapsed_ms: 12,
    };
    let steps = vec![
        step(1, StepStatus::Critical, None),
        step(
            2,
            if done {
                StepStatus::Timeout
            } else {
                StepStatus::Pending
            },
            done.then_some("timed out after 10s"),
        ),
    ];
    // Mixed signals, so templates meet the ranking as well as the verdict.
    let verdict = (stage == "triage")
        .then(|| verdict::judge(&steps, &verdict::default_rules("model-server")));
    StageReport {
        stage,
        service: "model-server".into(),
        namespace: "ai-production".into(),
        deployment: "model-server".into(),
        selector: "app=model-server".into(),
        severity: Severity::Critical,
        steps,
        finished: if done { 2 } else { 1 },
        done,
        elapsed_ms: 40,
        verdict,
    }
}
