//! Metrics and the status endpoint.
