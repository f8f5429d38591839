//! The triage verdict: which class of failure this is, the evidence that decided it, and the
//! runbook's next step. Rules are data (a runbook's `verdict:`), with defaults shipped here.

use serde::{Deserialize, Serialize};

use super::signal::{FailureClass, Signal};
use super::steps::StepReport;
use crate::render::Severity;

/// How many evidence lines a verdict shows.
const MAX_EVIDENCE: usize = 5;

/// One rule: these signals are evidence of this class.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// The class the signals point at.
    pub class: FailureClass,
    /// The signals that count.
    pub signals: Vec<Signal>,
    /// How much one critical finding counts relative to other rules (default 1).
    #[serde(default = "one")]
    pub weight: f64,
    /// What to do next, in words: `mitigate: scale out`, `rollback prompt`, ...
    pub next_step: String,
    /// The command that does it, offered as the report's first button.
    pub command: Option<String>,
}

fn one() -> f64 {
    1.0
}

/// A runbook's `verdict:` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerdictSpec {
    /// Rules, replacing the defaults when given.
    pub rules: Vec<Rule>,
}

/// The rules used when a runbook has no `verdict:` section.
pub fn default_rules(service: &str) -> Vec<Rule> {
    use Signal::*;
    let rule = |class, signals: &[Signal], next_step: &str, command: Option<String>| Rule {
        class,
        signals: signals.to_vec(),
        weight: 1.0,
        next_step: next_step.to_string(),
        command,
    };
    vec![
        rule(
            FailureClass::Infrastructure,
            &[
                OomKilled,
                CrashLoop,
                Unschedulable,
                Restarts,
                NodeNotReady,
                GpuExhausted,
                GpuXid,
            ],
            "mitigate: free or add GPU capacity; if the new revision needs more memory, roll the deployment back",
            Some(format!("/mitigate {service}")),
        ),
        rule(
            FailureClass::ServingEngine,
            &[
                KvCacheHigh,
                RequestsQueued,
                Preemptions,
                LatencySlo,
                EngineErrors,
                ErrorBudgetBurn,
            ],
            "mitigate: scale out (more replicas means more KV cache) or shed load",
            Some(format!("/mitigate {service}")),
        ),
        rule(
            FailureClass::ModelQuality,
            &[CanaryFailing, OutputAbnormal],
            "rollback prompt: switch the active prompt version back, or roll the model back",
            Some(format!("/rollback {service}")),
        ),
        rule(
            FailureClass::DataPipeline,
            &[PipelineFailed, PipelineStale],
            "re-run the failed pipeline job and check its logs; the model serves stale data until it succeeds",
            None,
        ),
    ]
}

/// One class's standing in the verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassScore {
    /// The class.
    pub class: FailureClass,
    /// Weighted evidence: a critical finding counts 3, a warning 1.
    pub score: f64,
    /// Findings that counted, as `step title: finding`.
    pub evidence: usize,
}

/// The verdict a triage report opens with.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// The failure class, or `none`.
    pub class: FailureClass,
    /// The evidence lines that decided it, most severe first.
    pub evidence: Vec<String>,
    /// The runbook's next step for this class.
    pub next_step: String,
    /// The command that does it, if the rule names one.
    pub command: Option<String>,
    /// Every class with evidence, best first.
    pub ranking: Vec<ClassScore>,
    /// Whether signals point at more than one class.
    pub mixed: bool,
}

/// One rule's evidence while judging.
#[derive(Default)]
struct Tally {
    /// Index of the rule in the runbook's order.
    rule: usize,
    score: f64,
    evidence: Vec<(Severity, String)>,
}

fn weight_of(severity: Severity) -> f64 {
    match severity {
        Severity::Critical => 3.0,
        Severity::Warning => 1.0,
        Severity::Ok | Severity::Info => 0.0,
    }
}

/// Weigh the findings of `steps` under `rules`.
pub fn judge(steps: &[StepReport], rules: &[Rule]) -> Verdict {
    let mut tallies: Vec<Tally> = (0..rules.len())
        .map(|rule| Tally {
            rule,
            ..Tally::default()
        })
        .collect();
    for step in steps {
        for finding in &step.findings {
            let (Some(signal), weight) = (finding.signal, weight_of(finding.severity)) else {
                continue;
            };
            if weight == 0.0 {
                continue;
            }
            for (tally, rule) in tallies.iter_mut().zip(rules) {
                if rule.signals.contains(&signal) {
                    tally.score += weight * rule.weight;
                    tally.evidence.push((
                        finding.severity,
                        format!("{}: {}", step.title, finding.text),
                    ));
                }
            }
        }
    }
    tallies.retain(|t| !t.evidence.is_empty());
    // Best score first; on a tie the rule written first wins, so runbook order is a tie-break.
    tallies.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.rule.cmp(&b.rule)));
    let ranking: Vec<ClassScore> = tallies
        .iter()
        .map(|t| ClassScore {
            class: rules[t.rule].class,
            score: t.score,
            evidence: t.evidence.len(),
        })
        .collect();
    let mixed = ranking
        .iter()
        .map(|r| r.class)
        .collect::<std::collections::BTreeSet<_>>()
        .len()
        > 1;
    match tallies.into_iter().next() {
        Some(Tally { rule, mut evidence, .. }) => {
            let rule = &rules[rule];
            evidence.sort_by_key(|(severity, _)| std::cmp::Reverse(*severity));
            evidence.truncate(MAX_EVIDENCE);
            Verdict {
                class: rule.class,
                evidence: evidence.into_iter().map(|(_, text)| text).collect(),
                next_step: rule.next_step.clone(),
                command: rule.command.clone(),
                ranking,
                mixed,
            }
        }
        None => Verdict {
            class: FailureClass::None,
            evidence: Vec::new(),
            next_step: "no failure signals found; watch the SLO dashboards and re-run /triage if users still report problems"
                .to_string(),
            command: None,
            ranking,
            mixed,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runbook::steps::{Finding, StepStatus};

    fn step(title: &str, findings: Vec<Finding>) -> StepReport {
        StepReport {
            number: 1,
            kind: "pods",
            title: title.into(),
            status: StepStatus::Critical,
            findings,
            table: None,
            error: None,
            elapsed_ms: 0,
        }
    }

    #[test]
    fn strongest_class_wins_and_mixed_signals_are_ranked() {
        let steps = vec![
            step(
                "Pods",
                vec![Finding::new(Severity::Critical, "x was OOMKilled").signal(Signal::OomKilled)],
            ),
            step(
                "Metrics",
                vec![
                    Finding::new(Severity::Warning, "kv 97%").signal(Signal::KvCacheHigh),
                    Finding::new(Severity::Info, "summary"),
                ],
            ),
        ];
        let verdict = judge(&steps, &default_rules("model-server"));
        assert_eq!(verdict.class, FailureClass::Infrastructure);
        assert_eq!(verdict.evidence, ["Pods: x was OOMKilled"]);
        assert!(verdict.mixed);
        let ranked: Vec<FailureClass> = verdict.ranking.iter().map(|r| r.class).collect();
        assert_eq!(
            ranked,
            [FailureClass::Infrastructure, FailureClass::ServingEngine]
        );
        assert_eq!(verdict.command.as_deref(), Some("/mitigate model-server"));
    }

    #[test]
    fn no_signals_is_none() {
        let steps = vec![step(
            "Pods",
            vec![Finding::new(Severity::Warning, "something odd")],
        )];
        let verdict = judge(&steps, &default_rules("s"));
        assert_eq!(verdict.class, FailureClass::None);
        assert!(!verdict.mixed && verdict.ranking.is_empty());
    }

    #[test]
    fn runbook_weights_change_the_outcome() {
        let steps = vec![step(
            "Mixed",
            vec![
                Finding::new(Severity::Critical, "oom").signal(Signal::OomKilled),
                Finding::new(Severity::Critical, "canary").signal(Signal::CanaryFailing),
            ],
        )];
        let mut rules = default_rules("s");
        rules[2].weight = 2.0;
        assert_eq!(judge(&steps, &rules).class, FailureClass::ModelQuality);
    }
}
