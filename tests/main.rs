//! Firebreak's integration tests: one crate, one module per concept.

mod sim;
