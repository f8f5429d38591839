//! What runs inside simulated pods: a vLLM-like model server (and optionally DCGM's exporter),
//! reached through the API server's pod proxy.

/// `/v1/chat/completions` and `/v1/models`.
pub(crate) mod chat;
/// Loading and checking PodWorkload documents.
pub(crate) mod load;
/// The Prometheus text vLLM and DCGM expose.
pub(crate) mod metrics;
/// The PodWorkload document and its field reference.
pub(crate) mod spec;

pub(crate) use spec::{WORKLOAD_KIND, Workload};
