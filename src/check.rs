//! `firebreak check`: validate runbooks and templates before they are needed at 3 a.m.,
//! in the spirit of `promtool check`.

use std::path::{Path, PathBuf};

use crate::command::COMMANDS;
use crate::render::{Severity, Templates};
use crate::runbook::signal::Signal;
use crate::runbook::steps::{Finding, StepReport, StepStatus};
use crate::runbook::verdict;
use crate::runbook::{Runbook, Runbooks, StageReport};

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
    for stage in ["triage", "mitigate", "rollback", "postmortem"] {
        for report in [sample_report(stage, true), sample_report(stage, false)] {
            count += 1;
            if let Err(e) = templates.render(stage, &report, report.severity, Vec::new()) {
                problems.push(e.to_string());
            }
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
