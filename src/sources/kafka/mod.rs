//! The Kafka source: bars from Kafka topics (any Kafka-protocol broker, e.g. Tansu) — one
//! `topic`, a list of `topics`, or every topic matching `topic-pattern` — read by a timely
//! `source` operator on every worker.
//!
//! - (topic, partition)s are assigned statically by a rule every worker evaluates alike
//!   ([`assign`]), with `assign`, never `subscribe`: no group rebalancing can move a partition
//!   under a running dataflow. A worker that owns no partition drops its capability at once,
//!   unless a pattern may give it one later (then it follows the wall clock meanwhile).
//! - With a pattern the topic list is read again every `topic-refresh`; new matching topics are
//!   read from the beginning. Their bars may be behind the watermark the other topics already
//!   moved: those are late (counted and written as late, never dropped silently).
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
//! Files: [`config`] (`[source.kafka]`), [`assign`] (who reads which partition), [`source`]
//! (the operator), [`watermark`] (pure partition/idleness logic), [`offsets`] (pure offset
//! tracking), [`context`] (librdkafka callbacks → tracing and status), [`error`].
pub mod assign;
pub mod config;
pub mod context;
pub mod error;
pub mod offsets;
pub mod source;
pub mod watermark;

pub use assign::Assigner;
pub use config::{DEFAULT_TOPIC, KafkaSourceConfig, KafkaSpec, StartPosition, TopicSelection};
pub use error::KafkaSourceError;
pub use offsets::OffsetTracker;
pub use source::{
    KafkaReader, KafkaSourceHandle, KafkaSourceStats, KafkaStopper, MAX_IN_FLIGHT, kafka_reader, kafka_source,
};
pub use watermark::{PartitionClock, Watermarks};
