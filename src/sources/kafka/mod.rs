//! The Kafka source: bars from a Kafka topic (any Kafka-protocol broker, e.g. Tansu), read by a
//! timely `source` operator on every worker.
//!
//! - Partitions are assigned statically, partition `p` to worker `p % peers` ([`owned_partitions`]),
//!   with `assign`, never `subscribe`: no group rebalancing can move a partition under a running
//!   dataflow. A worker that owns no partition drops its capability at once.
//! - Bars travel at the timely time of the worker's event-time watermark ([`watermark`]): per
//!   partition the newest event time seen minus the watermark delay, per worker the minimum over
//!   its partitions that are not idle. Bars are emitted at the current capability time; bars
//!   behind it are still emitted (downstream decides what is late).
//! - Bad payloads (decode errors, empty payloads, tombstones, invalid UTF-8) go to the caller's
//!   `on_invalid` with their `topic/partition@offset`, and are counted.
//! - Offsets are tracked per batch with the capability time they were emitted at ([`offsets`])
//!   and committed to the group `group-id` only after the dataflow's probe passed that time.
//!   Committed offsets feed lag dashboards and `start = "committed"`; they are not a checkpoint.
//!
//! Files: [`config`] (`[source.kafka]`), [`source`] (the operator), [`watermark`] (pure
//! partition/idleness logic), [`offsets`] (pure offset tracking), [`context`] (librdkafka
//! callbacks → tracing and status), [`error`].
pub mod config;
pub mod context;
pub mod error;
pub mod offsets;
pub mod source;
pub mod watermark;

pub use config::{KafkaSourceConfig, StartPosition};
pub use error::KafkaSourceError;
pub use offsets::OffsetTracker;
pub use source::{
    KafkaReader, KafkaSourceHandle, KafkaSourceStats, KafkaStopper, MAX_IN_FLIGHT, kafka_reader, kafka_source,
    owned_partitions,
};
pub use watermark::{PartitionClock, Watermarks};
