//! Firebreak's integration tests: one crate, one module per concept.

mod runbook;
mod sim;
