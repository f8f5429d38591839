//! vLLM's and DCGM's Prometheus text exposition (format 0.0.4), rendered from a [`Workload`].

use std::fmt::Write as _;

use super::spec::{Dcgm, Quantiles, Workload};

/// The Content-Type Prometheus' Python client (and so vLLM) answers with.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

// vLLM's own bucket boundaries (vllm/v1/metrics/loggers.py), so `histogram_quantile` over the
// simulator gives the resolution it would on a real server.
const TTFT_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
];
const ITL_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
    40.0, 80.0,
];
const E2E_BUCKETS: &[f64] = &[
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0,
    480.0, 960.0, 1920.0, 7680.0,
];

/// Format a sample value as Python's `repr(float)` does (`42.0`, `0.97`), like prometheus_client.
fn num(v: f64) -> String {
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    format!("{v:?}")
}

/// Escape a label value per the text format: backslash, double quote and newline.
fn escape(v: &str) -> String {
    v.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

struct Exposition {
    out: String,
    labels: String,
}

impl Exposition {
    fn header(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, extra: &str, value: f64) {
        // prometheus_client prints labels in declaration order; vLLM declares its own first.
        let sep = if extra.is_empty() { "" } else { "," };
        let _ = writeln!(
            self.out,
            "{name}{{{}{sep}{extra}}} {}",
            self.labels,
            num(value)
        );
    }

    fn gauge(&mut self, name: &str, help: &str, value: f64) {
        self.header(name, "gauge", help);
        self.sample(name, "", value);
    }

    fn counter(&mut self, name: &str, help: &str, value: f64) {
        self.header(name, "counter", help);
        self.sample(name, "", value);
    }

    fn histogram(&mut self, name: &str, help: &str, bounds: &[f64], q: Quantiles, count: u64) {
        self.header(name, "histogram", help);
        let count_f = count as f64;
        for le in bounds {
            let below = (cdf(q, *le) * count_f).round();
            self.sample(
                &format!("{name}_bucket"),
                &format!("le=\"{}\"", num(*le)),
                below,
            );
        }
        self.sample(&format!("{name}_bucket"), "le=\"+Inf\"", count_f);
        self.sample(&format!("{name}_count"), "", count_f);
        self.sample(&format!("{name}_sum"), "", mean(q) * count_f);
    }
}

/// The quantile curve as (fraction, seconds) points: linear between the given quantiles, from
/// zero to a tail at 1.5 × p99. Piecewise linear keeps the buckets cumulative by construction.
fn points(q: Quantiles) -> [(f64, f64); 5] {
    [
        (0.0, 0.0),
        (0.5, q.p50),
        (0.95, q.p95),
        (0.99, q.p99),
        (1.0, q.p99 * 1.5),
    ]
}

/// The share of observations at or below `x` seconds.
fn cdf(q: Quantiles, x: f64) -> f64 {
    let pts = points(q);
    for pair in pts.windows(2) {
        let ((f0, v0), (f1, v1)) = (pair[0], pair[1]);
        if x < v1 {
            if v1 <= v0 {
                return f0;
            }
            return f0 + (f1 - f0) * (x - v0) / (v1 - v0);
        }
    }
    1.0
}

/// The mean of the same distribution, for `_sum`.
fn mean(q: Quantiles) -> f64 {
    points(q)
        .windows(2)
        .map(|p| (p[1].0 - p[0].0) * (p[0].1 + p[1].1) / 2.0)
        .sum()
}

/// `GET /metrics` on the model server's port.
pub(crate) fn vllm(w: &Workload) -> String {
    let m = &w.metrics;
    let mut x = Exposition {
        out: String::new(),
        labels: format!("model_name=\"{}\",engine=\"0\"", escape(&w.model)),
    };
    let finished = m.finished.total();
    // Typical chat traffic: ~480 prompt tokens and ~220 generated tokens per request.
    let prompt_tokens = m.prompt_tokens.unwrap_or(finished * 480);
    let generation_tokens = m.generation_tokens.unwrap_or(finished * 220);
    x.gauge(
        "vllm:num_requests_running",
        "Number of requests in model execution batches.",
        m.requests_running as f64,
    );
    x.gauge(
        "vllm:num_requests_waiting",
        "Number of requests waiting to be processed.",
        m.requests_waiting as f64,
    );
    x.gauge(
        m.cache_gauge_name.metric_name(),
        "KV-cache usage. 1 means 100 percent usage.",
        m.kv_cache_usage,
    );
    x.counter(
        "vllm:num_preemptions_total",
        "Cumulative number of preemption from the engine.",
        m.preemptions as f64,
    );
    x.counter(
        "vllm:prompt_tokens_total",
        "Number of prefill tokens processed.",
        prompt_tokens as f64,
    );
    x.counter(
        "vllm:generation_tokens_total",
        "Number of generation tokens processed.",
        generation_tokens as f64,
    );
    x.header(
        "vllm:request_success_total",
        "counter",
        "Count of successfully processed requests.",
    );
    let f = &m.finished;
    for (reason, n) in [
        ("stop", f.stop),
        ("length", f.length),
        ("abort", f.abort),
        ("error", f.error),
        ("repetition", f.repetition),
    ] {
        x.sample(
            "vllm:request_success_total",
            &format!("finished_reason=\"{reason}\""),
            n as f64,
        );
    }
    x.histogram(
        "vllm:time_to_first_token_seconds",
        "Histogram of time to first token in seconds.",
        TTFT_BUCKETS,
        m.ttft_seconds,
        finished,
    );
    x.histogram(
        "vllm:inter_token_latency_seconds",
        "Histogram of inter-token latency in seconds.",
        ITL_BUCKETS,
        m.itl_seconds,
        generation_tokens.saturating_sub(finished),
    );
    x.histogram(
        "vllm:e2e_request_latency_seconds",
        "Histogram of e2e request latency in seconds.",
        E2E_BUCKETS,
        m.e2e_seconds,
        finished,
    );
    x.out
}

/// `GET /metrics` on DCGM exporter's port.
pub(crate) fn dcgm(d: &Dcgm, hostname: &str, pod: &str, namespace: &str) -> String {
    let mut x = Exposition {
        out: String::new(),
        labels: format!(
            "gpu=\"{}\",UUID=\"GPU-{:08x}-0000-4000-8000-000000000000\",device=\"nvidia{}\",modelName=\"NVIDIA H100 80GB HBM3\",Hostname=\"{}\",container=\"vllm\",namespace=\"{}\",pod=\"{}\"",
            d.gpu,
            d.gpu,
            d.gpu,
            escape(hostname),
            escape(namespace),
            escape(pod)
        ),
    };
    x.gauge(
        "DCGM_FI_DEV_XID_ERRORS",
        "Value of the last XID error encountered.",
        f64::from(d.xid),
    );
    x.gauge(
        "DCGM_FI_DEV_FB_FREE",
        "Framebuffer memory free (in MiB).",
        d.fb_free_mib as f64,
    );
    x.gauge(
        "DCGM_FI_DEV_FB_USED",
        "Framebuffer memory used (in MiB).",
        d.fb_used_mib as f64,
    );
    x.out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_match_the_quantiles() {
        let q = Quantiles::new(0.5, 3.0, 6.0);
        let mut last = 0.0;
        for le in TTFT_BUCKETS {
            let c = cdf(q, *le);
            assert!(c >= last, "cdf must not decrease");
            last = c;
        }
        assert!((cdf(q, 0.5) - 0.5).abs() < 1e-9);
        assert!((cdf(q, 3.0) - 0.95).abs() < 1e-9);
        assert_eq!(cdf(q, 1e6), 1.0);
    }

    #[test]
    fn numbers_print_like_python() {
        assert_eq!(num(42.0), "42.0");
        assert_eq!(num(0.97), "0.97");
        assert_eq!(num(f64::INFINITY), "+Inf");
    }
}
