//! `pipelines`: the data pipelines feeding the model (RAG index rebuilds, feature jobs): each
//! CronJob's last success against a freshness target, and failed runs with their reason.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use kube::api::ListParams;
use serde::Deserialize;

use super::{Finding, StepCx, StepError, StepOutput, Timeout, age, aligned_table};
use crate::render::Severity;
use crate::runbook::signal::Signal;

/// Runbook form of the `pipelines` step.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pipelines {
    /// Heading shown in the report.
    pub title: Option<String>,
    /// Time limit for this step.
    pub timeout: Option<Timeout>,
    /// Where the pipelines run, when not in the service's namespace.
    pub namespace: Option<String>,
    /// CronJobs to check, by name.
    #[serde(default)]
    pub cronjobs: Vec<CronJobCheck>,
    /// Plain Jobs to check, by name prefix or label selector.
    #[serde(default)]
    pub jobs: Vec<JobCheck>,
}

/// One CronJob and how fresh its output must be.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CronJobCheck {
    /// The CronJob's name.
    pub name: String,
    /// The last success may be at most this old, e.g. `26h`; without it only failures count.
    pub max_age: Option<Timeout>,
}

/// A family of Jobs, matched by name prefix or label selector (exactly one).
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "JobCheckDef")]
pub struct JobCheck {
    /// How the Jobs are found.
    pub matcher: JobMatch,
    /// The newest success may be at most this old.
    pub max_age: Option<Timeout>,
}

/// How a [`JobCheck`] finds its Jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobMatch {
    /// Jobs whose name starts with this.
    NamePrefix(String),
    /// Jobs matching this label selector.
    Selector(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct JobCheckDef {
    name_prefix: Option<String>,
    selector: Option<String>,
    max_age: Option<Timeout>,
}

impl TryFrom<JobCheckDef> for JobCheck {
    type Error = String;

    fn try_from(d: JobCheckDef) -> Result<JobCheck, String> {
        let matcher = match (d.name_prefix, d.selector) {
            (Some(p), None) if !p.is_empty() => JobMatch::NamePrefix(p),
            (None, Some(s)) if !s.is_empty() => JobMatch::Selector(s),
            _ => {
                return Err(
                    "pipelines: each `jobs:` entry needs exactly one of `name_prefix:` or `selector:`"
                        .to_string(),
                );
            }
        };
        Ok(JobCheck {
            matcher,
            max_age: d.max_age,
        })
    }
}

/// What one Job run came to.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Succeeded,
    /// Failed, with the condition's `reason: message` when there is one.
    Failed(String),
    Running,
}

impl Pipelines {
    pub(super) async fn run(&self, cx: &StepCx<'_>) -> Result<StepOutput, StepError> {
        let ns = self
            .namespace
            .clone()
            .unwrap_or_else(|| cx.runbook.namespace.clone());
        let jobs = cx
            .cluster
            .list_all(
                &cx.cluster.namespaced::<Job>(&ns),
                &ListParams::default(),
                &ns,
            )
            .await?;
        let cronjobs = cx.cluster.namespaced::<CronJob>(&ns);
        let now = Timestamp::now();
        let mut findings = Vec::new();
        let mut rows = Vec::new();
        for check in &self.cronjobs {
            let name = &check.name;
            let cj = cronjobs
                .get_opt(name)
                .await
                .map_err(|e| cx.cluster.explain(e, &format!("cronjob {name}"), &ns))?;
            let Some(cj) = cj else {
                findings.push(Finding::new(
                    Severity::Warning,
                    format!(
                        "CronJob `{name}` not found in `{ns}`; check the step's `cronjobs:` (or `namespace:`)"
                    ),
                ));
                rows.push(vec![
                    name.clone(),
                    "-".into(),
                    "-".into(),
                    "not found".into(),
                ]);
                continue;
            };
            let uid = cj.metadata.uid.as_deref();
            let mut owned: Vec<&Job> = jobs
                .iter()
                .filter(|j| {
                    j.metadata.owner_references.iter().flatten().any(|o| {
                        o.kind == "CronJob"
                            && (Some(o.uid.as_str()) == uid || (uid.is_none() && &o.name == name))
                    })
                })
                .collect();
            newest_first(&mut owned);
            let status = cj.status.as_ref();
            let last_success = status
                .and_then(|s| s.last_successful_time.as_ref().map(|t| t.0))
                .or_else(|| newest_success(&owned));
            let last_run = status
                .and_then(|s| s.last_schedule_time.as_ref().map(|t| t.0))
                .or_else(|| owned.first().and_then(|j| started(j)));
            if cj.spec.as_ref().and_then(|s| s.suspend) == Some(true) {
                findings.push(Finding::new(
                    Severity::Warning,
                    format!("CronJob `{name}` is suspended: no new runs are scheduled"),
                ));
            }
            let label = format!("`{name}`");
            findings.extend(freshness(&label, now, last_success, check.max_age));
            findings.extend(failures(&label, now, &owned));
            rows.push(row(name, now, last_success, last_run, &owned));
        }
        for check in &self.jobs {
            let (label, mut matched): (String, Vec<&Job>) = match &check.matcher {
                JobMatch::NamePrefix(p) => (
                    format!("{p}*"),
                    jobs.iter()
                        .filter(|j| j.metadata.name.as_deref().is_some_and(|n| n.starts_with(p)))
                        .collect(),
                ),
                JobMatch::Selector(s) => {
                    let selected = cx
                        .cluster
                        .list_all(
                            &cx.cluster.namespaced::<Job>(&ns),
                            &ListParams::default().labels(s),
                            &ns,
                        )
                        .await?;
                    let names: Vec<Option<String>> =
                        selected.into_iter().map(|j| j.metadata.name).collect();
                    (
                        s.clone(),
                        jobs.iter()
                            .filter(|j| names.contains(&j.metadata.name))
                            .collect(),
                    )
                }
            };
            if matched.is_empty() {
                findings.push(Finding::new(
                    Severity::Warning,
                    format!("no Jobs match `{label}` in `{ns}`; check the step's `jobs:`"),
                ));
                rows.push(vec![label, "-".into(), "-".into(), "no jobs".into()]);
                continue;
            }
            newest_first(&mut matched);
            let last_success = newest_success(&matched);
            let last_run = matched.first().and_then(|j| started(j));
            let shown = format!("`{label}`");
            findings.extend(freshness(&shown, now, last_success, check.max_age));
            findings.extend(failures(&shown, now, &matched));
            rows.push(row(&label, now, last_success, last_run, &matched));
        }
        if self.cronjobs.is_empty() && self.jobs.is_empty() {
            findings.push(Finding::new(
                Severity::Warning,
                "the step names no `cronjobs:` or `jobs:`; nothing to check",
            ));
        }
        findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
        let table = (!rows.is_empty()).then(|| aligned_table(&HEADERS, &rows));
        Ok(StepOutput { findings, table })
    }
}

const HEADERS: [&str; 4] = ["PIPELINE", "LAST SUCCESS", "LAST RUN", "RESULT"];

fn row(
    name: &str,
    now: Timestamp,
    last_success: Option<Timestamp>,
    last_run: Option<Timestamp>,
    runs: &[&Job],
) -> Vec<String> {
    let ago = |t: Option<Timestamp>| {
        t.map(|t| format!("{} ago", age(now, t)))
            .unwrap_or_else(|| "never".to_string())
    };
    let result = match runs.first().map(|j| outcome(j)) {
        Some(Outcome::Succeeded) => "Succeeded".to_string(),
        Some(Outcome::Failed(why)) => format!("Failed ({})", short_reason(&why)),
        Some(Outcome::Running) => "Running".to_string(),
        None => "-".to_string(),
    };
    vec![name.to_string(), ago(last_success), ago(last_run), result]
}

/// The last success against the freshness target; critical when older or never seen.
fn freshness(
    label: &str,
    now: Timestamp,
    last_success: Option<Timestamp>,
    max_age: Option<Timeout>,
) -> Option<Finding> {
    let limit = max_age?.0;
    let target = short_duration(limit);
    let text = match last_success {
        Some(t) => {
            let elapsed = now.as_second().saturating_sub(t.as_second()).max(0) as u64;
            if elapsed <= limit.as_secs() {
                return None;
            }
            format!(
                "{label} last succeeded {} ago (freshness target {target})",
                age(now, t)
            )
        }
        None => format!("{label} has no recorded success (freshness target {target})"),
    };
    Some(Finding::new(Severity::Critical, text).signal(Signal::PipelineStale))
}

/// Failed runs in the kept history: critical when the newest run failed (the pipeline is
/// broken now), a warning when a later run succeeded.
fn failures(label: &str, now: Timestamp, runs: &[&Job]) -> Option<Finding> {
    let failed: Vec<(&Job, String)> = runs
        .iter()
        .filter_map(|j| match outcome(j) {
            Outcome::Failed(why) => Some((*j, why)),
            _ => None,
        })
        .collect();
    let (newest_failed, why) = failed.first()?;
    let newest_is_failed = runs
        .first()
        .map(|j| j.metadata.name == newest_failed.metadata.name)
        == Some(true);
    let job = newest_failed.metadata.name.as_deref().unwrap_or("?");
    let when = started(newest_failed)
        .map(|t| format!(", started {} ago", age(now, t)))
        .unwrap_or_default();
    let (severity, text) = if newest_is_failed {
        // Count the unbroken streak of failures: "the last 3 runs failed" is the useful number.
        let streak = runs
            .iter()
            .take_while(|j| matches!(outcome(j), Outcome::Failed(_)))
            .count();
        let runs_text = if streak == 1 {
            "the last run failed".to_string()
        } else {
            format!("the last {streak} runs failed")
        };
        (
            Severity::Critical,
            format!("{label}: {runs_text}: {why} (newest `{job}`{when})"),
        )
    } else {
        (
            Severity::Warning,
            format!(
                "{label}: {} of {} kept runs failed, the newest run did not: {why} (`{job}`{when})",
                failed.len(),
                runs.len()
            ),
        )
    };
    Some(Finding::new(severity, text).signal(Signal::PipelineFailed))
}

/// A Job's result: its `Complete`/`Failed` conditions first, the pod counters as a fallback
/// for Jobs whose controller has not written conditions yet.
fn outcome(job: &Job) -> Outcome {
    let Some(status) = &job.status else {
        return Outcome::Running;
    };
    let conditions = status.conditions.iter().flatten();
    for c in conditions.clone() {
        if c.type_ == "Failed" && c.status == "True" {
            let why = match (&c.reason, &c.message) {
                (Some(r), Some(m)) => format!("{r}: {m}"),
                (Some(x), None) | (None, Some(x)) => x.clone(),
                (None, None) => "Failed".to_string(),
            };
            return Outcome::Failed(why);
        }
    }
    if conditions
        .clone()
        .any(|c| c.type_ == "Complete" && c.status == "True")
        || status.succeeded.unwrap_or(0) > 0 && status.active.unwrap_or(0) == 0
    {
        return Outcome::Succeeded;
    }
    let failed = status.failed.unwrap_or(0);
    if failed > 0 && status.active.unwrap_or(0) == 0 {
        return Outcome::Failed(format!("{failed} failed pods"));
    }
    Outcome::Running
}

/// `BackoffLimitExceeded` from `BackoffLimitExceeded: Job has reached ...`.
fn short_reason(why: &str) -> &str {
    why.split(':').next().unwrap_or(why)
}

fn started(job: &Job) -> Option<Timestamp> {
    job.status
        .as_ref()
        .and_then(|s| s.start_time.as_ref().map(|t| t.0))
        .or_else(|| job.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

fn newest_first(jobs: &mut [&Job]) {
    jobs.sort_by_key(|j| std::cmp::Reverse(started(j)));
}

/// The completion time of the newest succeeded run in `runs` (newest first).
fn newest_success(runs: &[&Job]) -> Option<Timestamp> {
    runs.iter()
        .filter(|j| outcome(j) == Outcome::Succeeded)
        .filter_map(|j| {
            j.status
                .as_ref()
                .and_then(|s| s.completion_time.as_ref().map(|t| t.0))
        })
        .max()
}

/// `26h`, `3d`, `90m`: a freshness target as a runbook writes it.
fn short_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 86_400 && s.is_multiple_of(86_400) {
        format!("{}d", s / 86_400)
    } else if s >= 3600 && s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else {
        super::human_duration(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_print_as_written() {
        assert_eq!(short_duration(Duration::from_secs(26 * 3600)), "26h");
        assert_eq!(short_duration(Duration::from_secs(3 * 86_400)), "3d");
        assert_eq!(short_duration(Duration::from_secs(90 * 60)), "90m");
    }

    #[test]
    fn a_job_check_needs_one_matcher() {
        let both: Result<JobCheck, _> = serde_norway::from_str("{name_prefix: a, selector: 'x=y'}");
        assert!(both.is_err());
        let one: JobCheck = serde_norway::from_str("{name_prefix: embed-, max_age: 3d}").unwrap();
        assert_eq!(one.matcher, JobMatch::NamePrefix("embed-".into()));
    }
}
