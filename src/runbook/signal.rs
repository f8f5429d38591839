//! Signals: the named kinds of evidence steps attach to findings, which the triage verdict
//! weighs. Named in runbooks (verdict rules, a `logs` step's `signal:`), so a typo fails at load.

use serde::{Deserialize, Serialize};

/// The failure classes a triage verdict can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureClass {
    /// Pods, nodes, GPUs: the platform under the model.
    Infrastructure,
    /// The inference engine under load: KV cache, queues, preemptions, latency.
    ServingEngine,
    /// The model or its prompt answers badly while everything reports healthy.
    ModelQuality,
    /// Jobs feeding the model (RAG index, features) failed or went stale.
    DataPipeline,
    /// Nothing points anywhere.
    None,
}

impl FailureClass {
    /// The name as written in runbooks and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::Infrastructure => "infrastructure",
            FailureClass::ServingEngine => "serving-engine",
            FailureClass::ModelQuality => "model-quality",
            FailureClass::DataPipeline => "data-pipeline",
            FailureClass::None => "none",
        }
    }
}

/// A kind of evidence a finding carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// A container was OOMKilled (exit 137).
    OomKilled,
    /// A container is in CrashLoopBackOff.
    CrashLoop,
    /// A pod cannot be scheduled (e.g. `Insufficient nvidia.com/gpu`).
    Unschedulable,
    /// Restarts above the runbook's threshold without a clearer reason.
    Restarts,
    /// A node is NotReady or under memory/disk/PID pressure.
    NodeNotReady,
    /// Requested GPUs exceed allocatable, or none is free.
    GpuExhausted,
    /// A GPU reported an XID error (DCGM).
    GpuXid,
    /// KV cache usage above its limit.
    KvCacheHigh,
    /// Requests waiting in the engine's queue.
    RequestsQueued,
    /// The engine preempted requests for lack of cache.
    Preemptions,
    /// Time to first token or end-to-end latency over the SLO.
    LatencySlo,
    /// Requests finishing with `error` or `abort`.
    EngineErrors,
    /// An error-ratio SLO burning its budget too fast.
    ErrorBudgetBurn,
    /// Golden prompts failing their checks.
    CanaryFailing,
    /// Abnormal output: a high share of `length` or `repetition` finishes.
    OutputAbnormal,
    /// A data-pipeline Job failed.
    PipelineFailed,
    /// A data pipeline's last success is older than its freshness target.
    PipelineStale,
}

impl Signal {
    /// The class this signal points at unless a runbook says otherwise.
    pub fn default_class(self) -> FailureClass {
        use Signal::*;
        match self {
            OomKilled | CrashLoop | Unschedulable | Restarts | NodeNotReady | GpuExhausted
            | GpuXid => FailureClass::Infrastructure,
            KvCacheHigh | RequestsQueued | Preemptions | LatencySlo | EngineErrors
            | ErrorBudgetBurn => FailureClass::ServingEngine,
            CanaryFailing | OutputAbnormal => FailureClass::ModelQuality,
            PipelineFailed | PipelineStale => FailureClass::DataPipeline,
        }
    }
}
