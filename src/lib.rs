//! # tickflow
//!
//! The application around [`tickflow_operators`]: configuration, sources, sinks, the status
//! server and the timely cluster that ties them together. The binary (`src/main.rs`) is thin.
//!
//! # Layout
//! - [`alerts`]: run-time alert rules (`/rules`, rules topic), the alert dataflow, notifications.
//! - [`cli`]: what the binary's commands share: log setup, usage errors (exit 2), error text.
//! - [`checkpoint`]: checkpoint parts, manifests, the store (directory, S3), `tickflow checkpoints`.
//! - [`config`]: `cluster.toml`: parse, validate (every error at once), build.
//! - [`connectors`]: `tickflow connect`: exchange pollers (Nobitex, Alpha Vantage) to Kafka.
//! - [`decode`]: bar payloads (JSON shapes, CSV) to validated bars, with per-record errors.
//! - [`gateway`]: `tickflow gateway`: HTTP ingest, validated, to the bars topic on Kafka.
//! - [`generate`]: `tickflow generate`: the synthetic market to the gateway, Kafka or a file.
//! - [`http`]: what every HTTP listener shares: bearer tokens, client limits, the accept loop.
//! - [`kafka`]: producing bars to Kafka (gateway, connectors, generator), broker/topic checks.
//! - [`logs`]: rate limits for repeated library log lines (librdkafka).
//! - [`prometheus`]: the one Prometheus text-format writer behind every `/metrics`.
//! - [`recovery`]: crash-exact recovery: epochs, checkpoint parts, restore, commit.
//! - [`retry`]: the one exponential backoff (jitter, budget) and `Retry-After`, for every retry.
//! - [`sources`]: the source driver (epochs, backpressure) around Kafka, files, the generator.
//! - [`serve`]: the query API (`/api/v1`) and the dashboard (`/`) over the live state.
//! - [`sinks`]: file/stdout (CSV, NDJSON) and QuestDB over ILP.
//! - [`status`]: per-worker metrics and the warp status endpoint.
//! - [`status_cli`]: `tickflow status`, and the status client `top` shares.
//! - [`top`]: `tickflow top`: the live terminal view of every process and worker.
pub mod alerts;
pub mod checkpoint;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod connectors;
pub mod decode;
pub mod gateway;
pub mod generate;
pub mod http;
pub mod kafka;
pub mod logs;
pub mod prometheus;
pub mod recovery;
pub mod retry;
pub mod serve;
pub mod sinks;
pub mod sources;
pub mod status;
pub mod status_cli;
pub mod top;
