//! The integration tests against a real Kafka-protocol broker: each test starts its own
//! Tansu 0.6 (scripts/install-tansu.sh; `TANSU_BIN` overrides where it is) with in-memory
//! storage on a free loopback port and kills it at the end.
//!
//! ```text
//! cargo test --profile ci --test broker             # all
//! cargo test --profile ci --test broker kafka_source::
//! ```

#[path = "../support/mod.rs"]
mod support;

mod alerts_store;
mod cluster_alerts;
mod cluster_kafka;
mod connectors_kafka;
mod gateway_corpus;
mod gateway_kafka;
mod gateway_throughput;
mod generate;
mod hardening_gateway;
mod kafka_source;
mod recovery_alerts;
mod recovery_kafka;
