//! Firebreak's integration tests: one crate, one module per concept.

mod actions;
mod approvals;
mod canary;
mod cli;
mod deploy;
mod discord;
mod gpu_pipelines;
mod incidents;
mod metrics;
mod prometheus;
mod properties;
mod runbook;
mod security;
mod sim;
mod sim_scenarios;
mod sim_workload;
mod sim_writes;
mod slack;
mod support;
mod triage;
mod verdict;
