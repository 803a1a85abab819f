//! Alert rules that change at run time, and notifications that arrive (at least) once.
//!
//! ```text
//! POST/DELETE /rules ─► rules topic (compacted, key = rule id; delete = tombstone)
//!                           │ read fully by every process
//!                           ▼
//!                      RuleMirror ──► GET /rules
//!                           │ (worker 0 polls it)
//!                           ▼
//! enriched bars ─► Tick ─► Alerts (differential join of rules × latest values) ─► AlertSink
//!                                                                       │ bounded channel
//!                                                                       ▼
//!                    Notifier thread: alerts topic, QuestDB `alerts`, webhook/Slack/Telegram
//!                    (retries with backoff, rate limit per channel, dead letters)
//! ```
//!
//! Delivery is at least once: an alert may be delivered again after a retry whose first
//! attempt reached the receiver but whose answer was lost, or after a restart that replays
//! input. Every alert carries a stable id (`hash(rule id, symbol, event time)`, 16 hex digits;
//! the `Idempotency-Key` header on webhooks) so receivers can de-duplicate.
//!
//! - [`config`]: the `[alerts]` section of `cluster.toml`.
//! - [`rule`]: rules as users write them: parse, validate, lower to the dataflow's rule.
//! - [`store`]: the rules topic: writes, and the in-memory mirror every process keeps.
//! - [`api`]: the `/rules` HTTP routes for the status server.
//! - [`dataflow`]: the alert part of the dataflow and its sink into the notifier.
//! - [`metrics`]: the notifier's counters on `/metrics`.
//! - [`notify`]: delivery to Kafka, QuestDB and the rule's channel.
pub mod api;
pub mod config;
pub mod dataflow;
pub mod metrics;
pub mod notify;
pub mod rule;
pub mod store;

pub use api::routes;
pub use config::AlertsConfig;
pub use dataflow::{AlertsRuntime, build_alerts};
pub use rule::{Channel, RuleDef};
pub use store::{RuleMirror, RuleStore};
