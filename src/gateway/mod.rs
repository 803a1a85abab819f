//! `tickflow gateway`: HTTP ingest in front of the bars topic.
//!
//! Clients `POST /ingest` bars as JSON, NDJSON, CSV or a Nobitex UDF body; every record is
//! decoded and validated with the cluster's own rules ([`crate::decode`]), valid bars are
//! produced to Kafka keyed by symbol in the canonical JSON form, invalid records go to the
//! dead-letter topic with the reason, and the answer waits for Kafka's acknowledgement.
//! The gateway keeps no state between requests: run as many replicas as needed.
//!
//! - [`config`]: `[gateway]` / flags, validated.
//! - [`body`]: media types and body decoding (pure; fuzzed).
//!
//! Producing (the producer, the canonical bar, the dead-letter record, broker and topic
//! checks) lives in [`crate::kafka`], shared with the connectors and the generator.
//! - [`metrics`]: per-request events and `/metrics` families.
//! - [`server`]: warp routes, the handler, start/shutdown.
pub mod body;
pub mod config;
mod error;
pub mod metrics;
pub mod server;

pub use body::{BodyError, BodyKind, IngestQuery, MediaType, decode_body};
pub use config::{BuiltGateway, GatewayArgs, GatewayConfig};
pub use error::GatewayError;
pub use server::{Gateway, IngestReport, RecordError, run_gateway};
