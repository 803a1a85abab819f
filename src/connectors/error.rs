//! Errors at the connectors' boundary: configuration, the Kafka producer, the runtime.
//! Per-request problems (rate limits, 5xx, rejected symbols) are not errors of this type:
//! they are [`Outcome`](super::Outcome)s of a poll and are retried by the poller.

use crate::kafka::{ProduceError, ProducerError};

/// What can stop a connector from starting, or a batch from reaching its sink.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// The configuration is unusable; one message per problem.
    #[error("invalid connector config:\n  {}", .0.join("\n  "))]
    Config(Vec<String>),
    /// The Kafka producer could not be created.
    #[error("connector: {0}")]
    Producer(#[from] ProducerError),
    /// A batch was not acknowledged by Kafka (retried by the run loop).
    #[error("connector: {0}")]
    Produce(#[from] ProduceError),
    /// The tokio runtime that waits for Kafka's acknowledgements could not be started.
    #[error("connector: cannot start the tokio runtime: {0}")]
    Runtime(std::io::Error),
    /// Writing bars to stdout failed.
    #[error("connector: writing to stdout: {0}")]
    Stdout(std::io::Error),
}
