//! The `PodWorkload` scenario document: what a pod's model server answers behind the pod proxy.
//!
//! ```yaml
//! apiVersion: sim.firebreak.dev/v1
//! kind: PodWorkload
//! metadata: {name: model-server-7c9d4f8b6-h5r2c, namespace: ai-production}
//! model: meta-llama/Llama-3.1-8B-Instruct   # served model name, also the `model_name` label
//! port: 8000                                # optional, default 8000; a container must declare it
//! metrics:                                  # optional; every field has a quiet default
//!   cache_gauge_name: kv_cache_usage_perc   # or gpu_cache_usage_perc (vLLM before v0.10)
//!   kv_cache_usage: 0.42                    # 0..1
//!   requests_running: 12
//!   requests_waiting: 0
//!   preemptions: 0
//!   finished: {stop: 9000, length: 300, abort: 20, error: 0, repetition: 0}
//!   prompt_tokens: 4500000                  # optional; derived from `finished` when absent
//!   generation_tokens: 2100000
//!   ttft_seconds: {p50: 0.12, p95: 0.4, p99: 0.8}   # turned into cumulative buckets
//!   e2e_seconds: {p50: 3.1, p95: 7.9, p99: 12.0}
//!   itl_seconds: {p50: 0.018, p95: 0.031, p99: 0.05}
//! dcgm: {port: 9400, gpu: 0, xid: 0, fb_used_mib: 74000, fb_free_mib: 7000}   # optional
//! chat:
//!   prompt_config: {configmap: prompt-versions, active_key: active}
//!   versions:
//!     v7:
//!       rules:
//!       - when_prompt_contains: capital of France     # case-insensitive, on the last user message
//!         answer: Paris is the capital of France.
//!       default: I can help with that.
//!       finish_reason: stop                # optional: stop (default) or length
//!       latency_ms: 0                      # optional delay before answering
//!       status: 500                        # optional: answer an error instead
//!       hang: false                        # optional: never answer (clients time out)
//! ```
//!
//! The active version is read from the ConfigMap on every request, so a prompt rollback
//! (a change to the ConfigMap) changes the answers.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The apiVersion/kind of workload documents.
pub(crate) const WORKLOAD_API_VERSION: &str = "sim.firebreak.dev/v1";
/// See [`WORKLOAD_API_VERSION`].
pub(crate) const WORKLOAD_KIND: &str = "PodWorkload";

/// A PodWorkload document as written in a scenario.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct PodWorkloadDoc {
    pub(crate) api_version: String,
    #[allow(dead_code)] // checked before deserializing; kept so deny_unknown_fields accepts it
    pub(crate) kind: String,
    pub(crate) metadata: WorkloadMeta,
    // Spelled out rather than `#[serde(flatten)] Workload`: flatten disables deny_unknown_fields.
    pub(crate) model: String,
    #[serde(default = "default_port")]
    pub(crate) port: u16,
    #[serde(default)]
    pub(crate) metrics: Metrics,
    pub(crate) dcgm: Option<Dcgm>,
    pub(crate) chat: Option<Chat>,
}

impl PodWorkloadDoc {
    /// The workload without its envelope.
    pub(crate) fn into_workload(self) -> Workload {
        Workload {
            model: self.model,
            port: self.port,
            metrics: self.metrics,
            dcgm: self.dcgm,
            chat: self.chat,
        }
    }
}

/// Which pod the workload runs in.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WorkloadMeta {
    pub(crate) name: String,
    pub(crate) namespace: Option<String>,
}

/// What the pod serves.
#[derive(Debug, Clone)]
pub(crate) struct Workload {
    pub(crate) model: String,
    pub(crate) port: u16,
    pub(crate) metrics: Metrics,
    pub(crate) dcgm: Option<Dcgm>,
    pub(crate) chat: Option<Chat>,
}

fn default_port() -> u16 {
    8000
}

/// Which of vLLM's two cache gauge names the server exposes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum CacheGauge {
    /// `vllm:kv_cache_usage_perc`, vLLM v0.10 and later.
    #[default]
    KvCacheUsagePerc,
    /// `vllm:gpu_cache_usage_perc`, the deprecated name older servers expose.
    GpuCacheUsagePerc,
}

impl CacheGauge {
    /// The metric name as it appears in the exposition.
    pub(crate) fn metric_name(self) -> &'static str {
        match self {
            CacheGauge::KvCacheUsagePerc => "vllm:kv_cache_usage_perc",
            CacheGauge::GpuCacheUsagePerc => "vllm:gpu_cache_usage_perc",
        }
    }
}

/// The serving engine's state, as `/metrics` reports it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Metrics {
    pub(crate) cache_gauge_name: CacheGauge,
    pub(crate) kv_cache_usage: f64,
    pub(crate) requests_running: u64,
    pub(crate) requests_waiting: u64,
    pub(crate) preemptions: u64,
    pub(crate) finished: Finished,
    pub(crate) prompt_tokens: Option<u64>,
    pub(crate) generation_tokens: Option<u64>,
    pub(crate) ttft_seconds: Quantiles,
    pub(crate) e2e_seconds: Quantiles,
    pub(crate) itl_seconds: Quantiles,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics {
            cache_gauge_name: CacheGauge::default(),
            kv_cache_usage: 0.35,
            requests_running: 8,
            requests_waiting: 0,
            preemptions: 0,
            finished: Finished::default(),
            prompt_tokens: None,
            generation_tokens: None,
            ttft_seconds: Quantiles::new(0.12, 0.35, 0.7),
            e2e_seconds: Quantiles::new(3.0, 7.5, 11.0),
            itl_seconds: Quantiles::new(0.018, 0.03, 0.045),
        }
    }
}

/// Finished requests by `finished_reason`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Finished {
    pub(crate) stop: u64,
    pub(crate) length: u64,
    pub(crate) abort: u64,
    pub(crate) error: u64,
    pub(crate) repetition: u64,
}

impl Default for Finished {
    fn default() -> Finished {
        Finished {
            stop: 9400,
            length: 310,
            abort: 25,
            error: 0,
            repetition: 0,
        }
    }
}

impl Finished {
    /// All finished requests, the histograms' `_count`.
    pub(crate) fn total(&self) -> u64 {
        self.stop + self.length + self.abort + self.error + self.repetition
    }
}

/// A latency distribution given by three quantiles, in seconds.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Quantiles {
    pub(crate) p50: f64,
    pub(crate) p95: f64,
    pub(crate) p99: f64,
}

impl Quantiles {
    /// Quantiles in seconds; [`Workload::check`] wants them ordered.
    pub(crate) const fn new(p50: f64, p95: f64, p99: f64) -> Quantiles {
        Quantiles { p50, p95, p99 }
    }
}

/// A DCGM exporter beside the server, on its own port.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Dcgm {
    #[serde(default = "default_dcgm_port")]
    pub(crate) port: u16,
    #[serde(default)]
    pub(crate) gpu: u32,
    /// The last XID error code (0 for none); a gauge in DCGM, not a count.
    #[serde(default)]
    pub(crate) xid: u32,
    pub(crate) fb_used_mib: u64,
    pub(crate) fb_free_mib: u64,
}

fn default_dcgm_port() -> u16 {
    9400
}

/// The chat endpoint's behaviour, per prompt version.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Chat {
    pub(crate) prompt_config: PromptConfig,
    pub(crate) versions: BTreeMap<String, Version>,
}

/// Where the active prompt version is read from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PromptConfig {
    pub(crate) configmap: String,
    #[serde(default = "default_active_key")]
    pub(crate) active_key: String,
}

fn default_active_key() -> String {
    "active".into()
}

/// How the model answers while one prompt version is active.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Version {
    #[serde(default)]
    pub(crate) rules: Vec<Rule>,
    #[serde(default)]
    pub(crate) default: String,
    #[serde(default)]
    pub(crate) finish_reason: FinishReason,
    #[serde(default)]
    pub(crate) latency_ms: u64,
    pub(crate) status: Option<u16>,
    #[serde(default)]
    pub(crate) hang: bool,
}

/// One canned answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Rule {
    pub(crate) when_prompt_contains: String,
    pub(crate) answer: String,
    pub(crate) finish_reason: Option<FinishReason>,
}

/// Why generation stopped, as the OpenAI API reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum FinishReason {
    #[default]
    Stop,
    Length,
}

impl FinishReason {
    /// The wire spelling.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
        }
    }
}

impl Workload {
    /// Checks serde cannot express; each message names the field to fix.
    pub(crate) fn check(&self) -> Result<(), String> {
        let m = &self.metrics;
        if !(0.0..=1.0).contains(&m.kv_cache_usage) {
            return Err(format!(
                "metrics.kv_cache_usage is {}, but it is a fraction between 0 and 1 (0.97 means 97%)",
                m.kv_cache_usage
            ));
        }
        for (field, q) in [
            ("ttft_seconds", m.ttft_seconds),
            ("e2e_seconds", m.e2e_seconds),
            ("itl_seconds", m.itl_seconds),
        ] {
            let ordered = q.p50 > 0.0 && q.p50 <= q.p95 && q.p95 <= q.p99 && q.p99.is_finite();
            if !ordered {
                return Err(format!(
                    "metrics.{field} must have 0 < p50 <= p95 <= p99 (seconds); got p50 {}, p95 {}, p99 {}",
                    q.p50, q.p95, q.p99
                ));
            }
        }
        if let Some(d) = &self.dcgm
            && d.port == self.port
        {
            return Err(format!(
                "dcgm.port {} is the model server's port too; DCGM's exporter listens on 9400",
                d.port
            ));
        }
        if let Some(chat) = &self.chat {
            if chat.versions.is_empty() {
                return Err("chat.versions is empty; give at least the active version".into());
            }
            for (name, v) in &chat.versions {
                if let Some(code) = v.status
                    && !(400..=599).contains(&code)
                {
                    return Err(format!(
                        "chat.versions.{name}.status is {code}; use an error status (400-599), or drop it to answer normally"
                    ));
                }
            }
        }
        Ok(())
    }
}
