//! Errors of `tickflow generate`.

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// Bad arguments (every problem listed).
    #[error("generate: {0}")]
    Args(String),
    /// Writing the file failed.
    #[error("generate: writing {path}: {source}")]
    Io {
        /// The file (or `stdout`).
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The gateway refused a batch for good (4xx other than 429) or kept failing.
    #[error("generate: {url}: {message}")]
    Http {
        /// The URL.
        url: String,
        /// Status and body, or the transport error.
        message: String,
    },
    /// The Kafka producer failed.
    #[error("generate: kafka: {0}")]
    Kafka(String),
}
