//! The hermetic integration tests: one binary, one module per area; nothing external is
//! needed (fakes for QuestDB, exchanges and webhooks run in-process; clusters are real
//! `tickflow` processes on loopback). The S3 checkpoint test uses the server
//! scripts/test.sh starts, and says why it skips without one.
//!
//! ```text
//! cargo test --profile ci --test it                 # all
//! cargo test --profile ci --test it recovery::      # one module
//! ```

#[path = "../support/mod.rs"]
mod support;

mod alerts_dataflow;
mod alerts_notify;
mod cli_edges;
mod cluster_questdb;
mod cluster_shapes;
mod connectors;
mod decode;
mod gateway_fuzz;
mod generate;
mod grafana;
mod hardening_http;
mod hardening_sink;
mod questdb_sink;
mod recovery;
mod serve_api;
mod status_server;
mod top;
