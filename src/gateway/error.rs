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
    /// The Kafka producer could not be created (bad client config).
    #[error("gateway: cannot create Kafka producer for {brokers}: {source}")]
    Producer {
        /// The bootstrap servers.
        brokers: String,
        /// librdkafka's error.
        source: rdkafka::error::KafkaError,
    },
    /// The tokio runtime or a thread could not be started.
    #[error("gateway: cannot start {what}: {source}")]
    Runtime {
        /// The runtime or thread.
        what: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// Records were still queued for the broker when shutdown's flush gave up.
    #[error("gateway: shutdown flush failed, records may be unacknowledged: {0}")]
    Flush(rdkafka::error::KafkaError),
}
