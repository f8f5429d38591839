//! vLLM serving metrics: a `/metrics` text read into a typed [`ServingSnapshot`].
//!
//! Counters and histograms in one scrape are totals since the engine started, so shares and
//! quantiles here describe the pod's whole life, not the last five minutes; a fresh restart
//! shows the current incident clearly, a week-old pod dilutes it. The report says "since start".

pub mod exposition;
pub mod histogram;
pub mod prometheus;

use std::collections::BTreeMap;

use exposition::Exposition;
use histogram::{Histogram, Quantile};

/// The KV cache gauge of current vLLM (fraction 0–1).
pub const KV_CACHE_USAGE: &str = "vllm:kv_cache_usage_perc";
/// The same gauge under the name older vLLM versions (before V1) expose.
pub const KV_CACHE_USAGE_DEPRECATED: &str = "vllm:gpu_cache_usage_perc";
/// Requests queued for a slot.
pub const REQUESTS_WAITING: &str = "vllm:num_requests_waiting";
/// Requests being decoded.
pub const REQUESTS_RUNNING: &str = "vllm:num_requests_running";
/// Requests preempted (KV cache ran out; they are recomputed later).
pub const PREEMPTIONS: &str = "vllm:num_preemptions_total";
/// Finished requests, labelled by `finished_reason`.
pub const REQUEST_SUCCESS: &str = "vllm:request_success_total";
/// Time to first token histogram (base name).
pub const TTFT: &str = "vllm:time_to_first_token_seconds";
/// End-to-end request latency histogram (base name).
pub const E2E: &str = "vllm:e2e_request_latency_seconds";

/// Finish reasons that mean the user did not get a normal answer.
pub const ABNORMAL_FINISH_REASONS: [&str; 4] = ["length", "abort", "error", "repetition"];

/// p50, p95 and p99 of one latency histogram.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latency {
    /// Median.
    pub p50: Option<Quantile>,
    /// 95th percentile.
    pub p95: Option<Quantile>,
    /// 99th percentile.
    pub p99: Option<Quantile>,
    /// Observations.
    pub count: f64,
}

impl Latency {
    fn of(histogram: &Histogram) -> Latency {
        Latency {
            p50: histogram.quantile(0.5),
            p95: histogram.quantile(0.95),
            p99: histogram.quantile(0.99),
            count: histogram.count().unwrap_or(0.0),
        }
    }
}

/// What one vLLM server says about itself, summed over its engines and models.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServingSnapshot {
    /// KV cache usage in percent (0–100); the fullest engine when there are several.
    pub kv_cache_usage_percent: Option<f64>,
    /// Which gauge the cache usage came from.
    pub kv_cache_gauge: Option<&'static str>,
    /// Requests waiting for a slot.
    pub requests_waiting: Option<f64>,
    /// Requests running.
    pub requests_running: Option<f64>,
    /// Preemptions since start.
    pub preemptions_total: Option<f64>,
    /// Finished requests by `finished_reason` since start.
    pub finished: BTreeMap<String, f64>,
    /// Time to first token.
    pub ttft: Option<Latency>,
    /// End-to-end request latency.
    pub e2e: Option<Latency>,
    /// Lines of the text that did not parse.
    pub bad_lines: usize,
}

/// Why a `/metrics` text could not be read as vLLM metrics.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricsError {
    /// No sample parsed at all: probably not a metrics endpoint.
    #[error(
        "no Prometheus samples in the answer ({bad_lines} unreadable lines, starting `{start}`); is `path:`/`port:` the vLLM metrics endpoint?"
    )]
    NotMetrics {
        /// Unreadable lines.
        bad_lines: usize,
        /// The first characters of the text.
        start: String,
    },
    /// Samples, but none from vLLM.
    #[error(
        "{samples} samples but no `vllm:` metrics; is this a vLLM server (other engines name their metrics differently)?"
    )]
    NotVllm {
        /// Samples read.
        samples: usize,
    },
}

impl ServingSnapshot {
    /// Read a snapshot from an exposition text.
    pub fn parse(text: &str) -> Result<ServingSnapshot, MetricsError> {
        let exposition = exposition::parse(text);
        if exposition.samples.is_empty() {
            return Err(MetricsError::NotMetrics {
                bad_lines: exposition.bad_lines.len(),
                start: text.trim_start().chars().take(40).collect(),
            });
        }
        if !exposition
            .samples
            .iter()
            .any(|s| s.name.starts_with("vllm:"))
        {
            return Err(MetricsError::NotVllm {
                samples: exposition.samples.len(),
            });
        }
        if !exposition.bad_lines.is_empty() {
            tracing::debug!(bad = ?exposition.bad_lines, "unreadable lines in /metrics");
        }
        Ok(ServingSnapshot::from_exposition(&exposition))
    }

    /// Read a snapshot from parsed samples.
    pub fn from_exposition(exposition: &Exposition) -> ServingSnapshot {
        // Prefer the current gauge; old servers only have the deprecated one, and servers in
        // between expose both with the same value.
        let (kv_cache_gauge, kv) = [KV_CACHE_USAGE, KV_CACHE_USAGE_DEPRECATED]
            .into_iter()
            .find_map(|name| max(exposition, name).map(|v| (Some(name), Some(v))))
            .unwrap_or((None, None));
        let mut finished = BTreeMap::new();
        for sample in exposition.named(REQUEST_SUCCESS) {
            if sample.value.is_finite() {
                let reason = sample.label("finished_reason").unwrap_or("unknown");
                *finished.entry(reason.to_string()).or_insert(0.0) += sample.value;
            }
        }
        ServingSnapshot {
            // vLLM's gauge is a fraction despite the `_perc` name.
            kv_cache_usage_percent: kv.map(|v| v * 100.0),
            kv_cache_gauge,
            requests_waiting: sum(exposition, REQUESTS_WAITING),
            requests_running: sum(exposition, REQUESTS_RUNNING),
            preemptions_total: sum(exposition, PREEMPTIONS),
            finished,
            ttft: Histogram::from_exposition(exposition, TTFT).map(|h| Latency::of(&h)),
            e2e: Histogram::from_exposition(exposition, E2E).map(|h| Latency::of(&h)),
            bad_lines: exposition.bad_lines.len(),
        }
    }

    /// Finished requests since start, all reasons.
    pub fn finished_total(&self) -> f64 {
        self.finished.values().sum()
    }

    /// Share (0–1) of finished requests with `reason`; `None` before the first request.
    pub fn finish_share(&self, reason: &str) -> Option<f64> {
        let total = self.finished_total();
        (total > 0.0).then(|| self.finished.get(reason).copied().unwrap_or(0.0) / total)
    }
}

/// Summed over label sets (engines, models): queues and counters add up.
fn sum(exposition: &Exposition, name: &str) -> Option<f64> {
    let values: Vec<f64> = exposition
        .named(name)
        .map(|s| s.value)
        .filter(|v| v.is_finite())
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

/// The largest over label sets: a usage fraction does not add up, and the fullest engine is
/// the one that preempts first.
fn max(exposition: &Exposition, name: &str) -> Option<f64> {
    exposition
        .named(name)
        .map(|s| s.value)
        .filter(|v| v.is_finite())
        .reduce(f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="chat"} 0.42
vllm:kv_cache_usage_perc{engine="1",model_name="chat"} 0.97
vllm:gpu_cache_usage_perc{engine="0",model_name="chat"} 0.10
vllm:num_requests_waiting{engine="0",model_name="chat"} 3
vllm:num_requests_waiting{engine="1",model_name="chat"} 28
vllm:num_requests_running{engine="0",model_name="chat"} 48
vllm:num_preemptions_total{engine="0",model_name="chat"} 17
vllm:request_success_total{engine="0",finished_reason="stop",model_name="chat"} 900
vllm:request_success_total{engine="0",finished_reason="length",model_name="chat"} 60
vllm:request_success_total{engine="1",finished_reason="length",model_name="chat"} 20
vllm:request_success_total{engine="0",finished_reason="abort",model_name="chat"} 20
vllm:time_to_first_token_seconds_bucket{le="0.5"} 50
vllm:time_to_first_token_seconds_bucket{le="1.0"} 90
vllm:time_to_first_token_seconds_bucket{le="+Inf"} 100
"#;

    #[test]
    fn snapshot_reads_every_signal() {
        let s = ServingSnapshot::parse(TEXT).unwrap();
        assert_eq!(s.kv_cache_gauge, Some(KV_CACHE_USAGE));
        assert!((s.kv_cache_usage_percent.unwrap() - 97.0).abs() < 1e-9);
        assert_eq!(s.requests_waiting, Some(31.0));
        assert_eq!(s.requests_running, Some(48.0));
        assert_eq!(s.preemptions_total, Some(17.0));
        assert_eq!(s.finished_total(), 1000.0);
        assert_eq!(s.finish_share("length"), Some(0.08));
        assert_eq!(s.finish_share("abort"), Some(0.02));
        assert_eq!(s.finish_share("error"), Some(0.0));
        let ttft = s.ttft.unwrap();
        assert_eq!(ttft.count, 100.0);
        assert!(ttft.p95.unwrap().beyond_top_bucket);
        assert_eq!(ttft.p95.unwrap().value, 1.0);
        assert_eq!(s.e2e, None);
    }

    #[test]
    fn old_servers_expose_only_the_deprecated_gauge() {
        let s =
            ServingSnapshot::parse("vllm:gpu_cache_usage_perc{model_name=\"m\"} 0.885\n").unwrap();
        assert_eq!(s.kv_cache_gauge, Some(KV_CACHE_USAGE_DEPRECATED));
        assert!((s.kv_cache_usage_percent.unwrap() - 88.5).abs() < 1e-9);
        assert_eq!(s.finish_share("length"), None);
    }

    #[test]
    fn html_and_other_exporters_are_errors_not_panics() {
        let err = ServingSnapshot::parse("<html><body>404</body></html>").unwrap_err();
        assert!(
            matches!(err, MetricsError::NotMetrics { bad_lines: 1, .. }),
            "{err}"
        );
        let err = ServingSnapshot::parse("node_load1 0.5\n").unwrap_err();
        assert_eq!(err, MetricsError::NotVllm { samples: 1 });
    }
}
