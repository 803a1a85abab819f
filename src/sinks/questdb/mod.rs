//! QuestDB over the InfluxDB line protocol (ILP).
//!
//! Timely workers encode their output rows ([`Tables`]) into a [`RowBatch`] and hand it to a
//! [`SinkHandle`]; the [`QuestDbSink`] thread batches, writes over HTTP (or TCP), retries
//! transient failures with backoff, isolates rows QuestDB rejects, and acknowledges each
//! batch's sequence number once it is written, so sources advance offsets only after that.
//!
//! - [`config`]: `[questdb]` settings and their validation.
//! - [`encode`]: the strict, allocation-free line encoder.
//! - [`tables`]: DDL and row encoders for the tickflow tables.
//! - [`sink`]: the writer thread, handles, batching, isolation and acknowledgement.
//! - [`transport`]: HTTP / TCP, failure classification, retry.
//! - [`stats`]: counters and the events that update them.

pub mod config;
pub mod encode;
pub mod sink;
pub mod stats;
pub mod tables;
pub mod transport;

pub use config::{Batching, HumanDuration, QuestDbConfig, Transport};
pub use encode::{EncodeError, Line, Name, RowBatch};
pub use sink::{QuestDbSink, RejectedRow, SendError, SinkBuilder, SinkHandle};
pub use stats::{SinkStats, StatsSnapshot};
pub use tables::{DeadLetter, TableNames, Tables};
pub use transport::SinkError;
