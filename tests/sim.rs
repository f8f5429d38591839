//! Tests of the simulated Kubernetes API server.
