//! The triage verdict end to end: each shipped scenario gets its failure class, with evidence,
//! through the binary exactly as the README runs it.

use firebreak::runbook::{Runbook, RunbookError};

use crate::support::{SHIPPED_RUNBOOK, firebreak};

fn triage(scenario: &str) -> String {
    let out = firebreak(&["demo", "--scenario", scenario], "/triage model-server\n");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// The verdict field and the evidence lines under it.
fn verdict_of(text: &str) -> (String, Vec<String>) {
    let class = text
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Verdict")
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no verdict in:\n{text}"));
    let evidence = text
        .lines()
        .filter(|l| l.starts_with("- "))
        .map(str::to_string)
        .collect();
    (class, evidence)
}

#[test]
fn each_scenario_gets_its_failure_class_with_evidence() {
    let cases = [
        ("oom", "infrastructure", "OOMKilled"),
        ("kv-cache", "serving-engine", "KV cache"),
        ("bad-prompt", "model-quality", "golden prompts passed"),
        ("stale-index", "data-pipeline", "rag-index-rebuild"),
    ];
    for (scenario, class, evidence_mentions) in cases {
        let text = triage(scenario);
        let (verdict, evidence) = verdict_of(&text);
        assert_eq!(verdict, class, "scenario {scenario}:\n{text}");
        assert!(
            evidence.iter().any(|e| e.contains(evidence_mentions)),
            "scenario {scenario}: evidence should mention {evidence_mentions:?}: {evidence:#?}\n{text}"
        );
        // The report opens with the verdict: it comes before the first step.
        let verdict_at = text.find("Verdict").unwrap();
        let first_step = text.find("-- 1.").unwrap();
        assert!(verdict_at < first_step, "scenario {scenario}");
        assert!(text.contains("Next step"), "scenario {scenario}");
    }
}

#[test]
fn mixed_signals_are_ranked() {
    let text = triage("demo");
    let (verdict, _) = verdict_of(&text);
    assert_eq!(verdict, "infrastructure", "{text}");
    let ranking = text
        .lines()
        .find(|l| l.contains("Signals point several ways"))
        .unwrap_or_else(|| panic!("{text}"));
    let infra = ranking.find("infrastructure").unwrap();
    let engine = ranking
        .find("serving-engine")
        .unwrap_or_else(|| panic!("{ranking}"));
    assert!(infra < engine, "{ranking}");
}

#[test]
fn verdict_rules_are_data_and_checked_at_load() {
    let custom = format!(
        "{SHIPPED_RUNBOOK}\nverdict:\n  rules:\n    - class: model-quality\n      signals: [canary_failing]\n      weight: 2\n      next_step: rollback prompt\n      command: /rollback model-server\n"
    );
    let runbook = Runbook::from_yaml(&custom, "custom.yaml").unwrap();
    assert_eq!(runbook.verdict_rules().len(), 1);

    let typo = custom.replace("[canary_failing]", "[canary_failed]");
    match Runbook::from_yaml(&typo, "typo.yaml") {
        Err(RunbookError::Parse { line, message, .. }) => {
            assert!(line > 0);
            assert!(
                message.contains("unknown variant `canary_failed`"),
                "{message}"
            );
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
}
