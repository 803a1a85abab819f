//! Producing to Kafka, for every part of tickflow that writes bars to a topic (the gateway,
//! the exchange connectors, `tickflow generate --kafka`), and the checks of where a client
//! connects and writes.
//!
//! - [`producer`]: the idempotent producer, bounded queue of unacknowledged records, broker
//!   probe, and the client settings every bars producer shares ([`producer::kafka_config`]).
//! - [`record`]: what goes on the topics: the canonical bar and the dead-letter record.
//! - [`target`]: broker lists and topic names, validated once (used by every config section
//!   that names them).
pub mod producer;
pub mod record;
pub mod target;

pub use producer::{ProduceError, Producer, ProducerError};
pub use record::{DeadLetter, dead_letter_raw, encode_bar};
