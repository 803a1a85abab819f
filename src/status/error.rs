//! Errors at the status module's boundary.

use std::net::SocketAddr;
use std::ops::Range;

/// What can go wrong starting the status server or wiring metrics.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// The listen address could not be bound (in use, no permission, bad interface).
    #[error("status server: cannot bind {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The tokio runtime for the server could not be built.
    #[error("status server: cannot build tokio runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// The server thread could not be spawned.
    #[error("status server: cannot spawn thread: {0}")]
    Thread(#[source] std::io::Error),
    /// The server thread ended before reporting its bound address (it panicked).
    #[error("status server: thread exited during startup")]
    StartupAborted,
    /// A worker index outside this process's worker range.
    #[error("worker {index} is not in this process's worker range {range:?}")]
    UnknownWorker {
        /// The index asked for.
        index: usize,
        /// The process's global worker range.
        range: Range<usize>,
    },
    /// The timely worker has no log registry (logging disabled in its config).
    #[error("worker {index} has no timely log registry")]
    NoLogRegistry {
        /// The worker's global index.
        index: usize,
    },
}
