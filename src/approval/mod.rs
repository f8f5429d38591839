//! Approvals: who may let a planned action change the cluster, and the life of one request
//! from "requested" to "executed once" (or denied, or expired).
//!
//! The policy is data in the runbook ([`Policy`]); requests and decisions live in the durable
//! [`crate::store`], whose transactions are what make execution happen at most once.

pub mod policy;

pub use policy::Policy;
