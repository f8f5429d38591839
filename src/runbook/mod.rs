//! Runbooks as data: the YAML model of a service, its SLOs and its stages' steps, and loading
//! it with errors that point at the file and line.

pub mod actions;
pub mod signal;
pub mod steps;
pub mod verdict;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use steps::{StageReport, StepReport, StepSpec, StepStatus};

/// The runbook stages a slash command can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Find out what is wrong.
    Triage,
    /// Stop the bleeding.
    Mitigate,
    /// Go back to a known-good version.
    Rollback,
    /// Gather what the post-mortem needs.
    Postmortem,
}

impl Stage {
    /// Whether the stage may offer actions that change the cluster.
    pub fn has_actions(self) -> bool {
        matches!(self, Stage::Mitigate | Stage::Rollback)
    }

    /// Every stage, in the order an incident usually goes through them.
    pub const ALL: [Stage; 4] = [
        Stage::Triage,
        Stage::Mitigate,
        Stage::Rollback,
        Stage::Postmortem,
    ];

    /// The stage's name, as typed in commands and runbooks.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Triage => "triage",
            Stage::Mitigate => "mitigate",
            Stage::Rollback => "rollback",
            Stage::Postmortem => "postmortem",
        }
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Service-level objectives the runbook's checks compare against.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Slo {
    /// Availability target, percent of successful requests (e.g. 99.9).
    pub availability_percent: Option<f64>,
    /// Time to first token, 95th percentile, seconds.
    pub ttft_p95_seconds: Option<f64>,
    /// End-to-end request latency, 95th percentile, seconds.
    pub e2e_p95_seconds: Option<f64>,
    /// Highest acceptable KV cache usage, percent.
    pub kv_cache_usage_max_percent: Option<f64>,
}

/// One stage of a runbook: steps run concurrently, reported in order.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageSpec {
    /// What this stage is for, shown in `/help`.
    #[serde(default)]
    pub description: String,
    /// The steps.
    #[serde(default)]
    pub steps: Vec<StepSpec>,
    /// Actions this stage offers; each runs only after its approval policy is met.
    #[serde(default)]
    pub actions: Vec<actions::ActionSpec>,
}

/// A service's runbook, as written in `runbooks/*.yaml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Runbook {
    /// The service name used in commands, e.g. `model-server`.
    pub service: String,
    /// One line on what the service is.
    #[serde(default)]
    pub description: String,
    /// Namespace the service runs in.
    pub namespace: String,
    /// Label selector of the serving pods, e.g. `app=model-server`.
    pub selector: LabelSelector,
    /// The Deployment that runs the pods.
    pub deployment: String,
    /// Containers of interest (the first is the default for logs).
    #[serde(default)]
    pub containers: Vec<String>,
    /// SLO targets.
    #[serde(default)]
    pub slo: Slo,
    /// The stages this runbook defines.
    pub stages: BTreeMap<Stage, StageSpec>,
    /// How triage findings map to a failure class; the defaults when absent.
    pub verdict: Option<verdict::VerdictSpec>,
    /// Where the runbook was loaded from.
    #[serde(skip)]
    pub source: String,
}

/// A Kubernetes label selector string, checked for shape when the runbook loads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelSelector(pub String);

impl<'de> Deserialize<'de> for LabelSelector {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let valid = regex::Regex::new(
            r"^\s*!?[A-Za-z0-9./_-]+\s*((==?|!=)\s*[A-Za-z0-9._-]*|\s+(in|notin)\s*\([^()]*\))?\s*$",
        )
        .map_err(serde::de::Error::custom)?;
        if text.trim().is_empty() || !text.split(',').all(|term| valid.is_match(term)) {
            return Err(serde::de::Error::custom(format!(
                "`{text}` is not a label selector; expected e.g. `app=model-server` or `app in (a,b),tier!=cache`"
            )));
        }
        Ok(LabelSelector(text))
    }
}

impl std::fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a runbook could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum RunbookError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The YAML does not parse or does not match the runbook format.
    #[error("{file}:{line}:{column}: {message}")]
    Parse {
        /// File name.
        file: String,
        /// 1-based line (0 if unknown).
        line: usize,
        /// 1-based column (0 if unknown).
        column: usize,
        /// What was expected, from the parser.
        message: String,
    },
    /// Two runbooks claim one service.
    #[error("service `{service}` is defined twice: in {first} and in {second}; rename one")]
    Duplicate {
        /// The service.
        service: String,
        /// First file.
        first: String,
        /// Second file.
        second: String,
    },
    /// No runbook found at all.
    #[error("no runbooks (*.yaml) found in {0}; write one like runbooks/model-server.yaml")]
    Empty(String),
}

impl Runbook {
    /// Parse one runbook; `origin` names it in errors.
    pub fn from_yaml(text: &str, origin: &str) -> Result<Runbook, RunbookError> {
        let mut runbook: Runbook = serde_norway::from_str(text).map_err(|e| {
            let (line, column) = e
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((0, 0));
            // serde_norway appends " at line L column C"; the prefix already says where.
            let message = e.to_string();
            let message = match message.rfind(" at line ") {
                Some(at) if line > 0 => message[..at].to_string(),
                _ => message,
            };
            RunbookError::Parse {
                file: origin.to_string(),
                line,
                column,
                message,
            }
        })?;
        for (stage, spec) in &runbook.stages {
            actions::check(stage.as_str(), &spec.actions).map_err(|message| {
                RunbookError::Parse {
                    file: origin.to_string(),
                    line: 0,
                    column: 0,
                    message,
                }
            })?;
        }
        runbook.source = origin.to_string();
        Ok(runbook)
    }

    /// The steps of `stage`, if this runbook defines it.
    pub fn stage(&self, stage: Stage) -> Option<&StageSpec> {
        self.stages.get(&stage)
    }

    /// The verdict rules: the runbook's own, else the shipped defaults.
    pub fn verdict_rules(&self) -> Vec<verdict::Rule> {
        match &self.verdict {
            Some(spec) => spec.rules.clone(),
            None => verdict::default_rules(&self.service),
        }
    }

    /// The container that log steps read by default.
    pub fn main_container(&self) -> Option<&str> {
        self.containers.first().map(String::as_str)
    }
}

/// The shipped runbooks, for running away from a checkout.
const EMBEDDED: &[(&str, &str)] = &[(
    "runbooks/model-server.yaml",
    include_str!("../../runbooks/model-server.yaml"),
)];

/// Every runbook Firebreak knows, by service name.
#[derive(Debug, Clone, Default)]
pub struct Runbooks {
    by_service: BTreeMap<String, Runbook>,
}

impl Runbooks {
    /// The runbooks compiled into the binary.
    pub fn embedded() -> Result<Runbooks, RunbookError> {
        let mut runbooks = Runbooks::default();
        for (origin, text) in EMBEDDED {
            runbooks.add(Runbook::from_yaml(text, origin)?)?;
        }
        Ok(runbooks)
    }

    /// The runbook files at `path`: every `*.yaml`/`*.yml` in a directory (sorted), or the
    /// file itself.
    pub fn files(path: &Path) -> Result<Vec<PathBuf>, RunbookError> {
        if !path.is_dir() {
            return Ok(vec![path.to_path_buf()]);
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|source| RunbookError::Read {
                path: path.to_path_buf(),
                source,
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension()
                    .is_some_and(|ext| ext == "yaml" || ext == "yml")
            })
            .collect();
        files.sort();
        Ok(files)
    }

    /// Load every `*.yaml`/`*.yml` in `dir`, or one file.
    pub fn load(path: &Path) -> Result<Runbooks, RunbookError> {
        let read_err = |path: &Path, source| RunbookError::Read {
            path: path.to_path_buf(),
            source,
        };
        let files = Runbooks::files(path)?;
        let mut runbooks = Runbooks::default();
        for file in &files {
            let text = std::fs::read_to_string(file).map_err(|e| read_err(file, e))?;
            runbooks.add(Runbook::from_yaml(&text, &file.display().to_string())?)?;
        }
        if runbooks.by_service.is_empty() {
            return Err(RunbookError::Empty(path.display().to_string()));
        }
        Ok(runbooks)
    }

    /// Add one runbook; a second runbook for the same service is an error.
    pub fn add(&mut self, runbook: Runbook) -> Result<(), RunbookError> {
        if let Some(first) = self.by_service.get(&runbook.service) {
            return Err(RunbookError::Duplicate {
                service: runbook.service.clone(),
                first: first.source.clone(),
                second: runbook.source.clone(),
            });
        }
        self.by_service.insert(runbook.service.clone(), runbook);
        Ok(())
    }

    /// The runbook of `service`.
    pub fn get(&self, service: &str) -> Option<&Runbook> {
        self.by_service.get(service)
    }

    /// The only runbook, when there is exactly one (so `/triage` alone is unambiguous).
    pub fn only(&self) -> Option<&Runbook> {
        let mut all = self.by_service.values();
        match (all.next(), all.next()) {
            (Some(one), None) => Some(one),
            _ => None,
        }
    }

    /// All runbooks, by service name.
    pub fn iter(&self) -> impl Iterator<Item = &Runbook> {
        self.by_service.values()
    }

    /// Service names, sorted.
    pub fn services(&self) -> Vec<&str> {
        self.by_service.keys().map(String::as_str).collect()
    }
}
