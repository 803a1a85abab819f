//! Errors at the gateway's boundary: starting it, configuring it, talking to Kafka.

use std::net::SocketAddr;

/// What can stop the gateway from starting or shutting down cleanly. Per-request problems
/// are not errors of this type: they become HTTP responses.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The configuration is unusable; one message per problem.
    #[error("invalid gateway config:\n  {}", .0.join("\n  "))]
    Config(Vec<String>),
    /// The listen address could not be bound.
    #[error("gateway: cannot bind {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The Kafka producer could not be created, or its shutdown flush gave up with records
    /// still queued (they may be unacknowledged).
    #[error("gateway: {0}")]
    Producer(#[from] crate::kafka::ProducerError),
    /// The tokio runtime or a thread could not be started.
    #[error("gateway: cannot start {what}: {source}")]
    Runtime {
        /// The runtime or thread.
        what: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
}
