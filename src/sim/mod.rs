//! A simulated Kubernetes API server speaking real Kubernetes JSON over loopback HTTP.
//!
//! It owns loading scenarios (multi-document YAML manifests with `status`, plus pod logs),
//! the object store, and the HTTP surface kube-rs and the real `kubectl` need: discovery,
//! list/get with selectors and pagination, server-side Tables, pod logs, and the pod proxy
//! behind which simulated pods serve vLLM metrics and chat completions; and the writes
//! mitigations need (PATCH, PUT, the scale subresource, DELETE of pods) with a one-step
//! deployment controller, so `kubectl rollout undo/restart`, `scale` and `patch` work. It is both the
//! test double for Firebreak's integration tests and the cluster behind `firebreak demo`.

mod api;
mod columns;
mod controller;
mod discovery;
mod manifest;
mod patch;
mod proxy;
mod resources;
mod scenario;
mod selectors;
mod server;
mod status;
mod store;
mod table;
mod workload;
mod write;

pub use scenario::{Scenario, SimError};
pub use server::SimServer;
