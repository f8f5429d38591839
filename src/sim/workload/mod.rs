//! What runs inside simulated pods: a vLLM-like model server (and optionally DCGM's exporter),
//! reached through the API server's pod proxy.

pub(crate) mod chat;
pub(crate) mod load;
pub(crate) mod metrics;
pub(crate) mod spec;

pub(crate) use spec::{WORKLOAD_KIND, Workload};
