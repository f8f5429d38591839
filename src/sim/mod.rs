//! A simulated Kubernetes API server speaking real Kubernetes JSON over loopback HTTP.
