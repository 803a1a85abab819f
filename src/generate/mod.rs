//! `tickflow generate`: the synthetic market for demos and load tests.
//!
//! Bars come from [`MarketGenerator`](crate::sources::generator::MarketGenerator)
//! (deterministic for a seed, random-walk OHLCV per symbol) and go to the gateway over
//! HTTP (concurrent NDJSON batches, `503` retried after `Retry-After`), straight to Kafka
//! (the gateway's canonical JSON, keyed by symbol), or to a file (W1 NDJSON, canonical
//! NDJSON or CSV), at a target rate or as fast as the destination takes them. With the
//! defaults it writes exactly the W1 benchmark input.
//!
//! - [`args`]: the command line, targets, validation.
//! - [`sink`]: file, HTTP and Kafka destinations.
//! - [`run`]: pacing, progress, the loop.
pub mod args;
mod error;
pub mod run;
pub mod sink;

pub use args::{Format, GenerateArgs, Plan, ProgressMode, Target};
pub use error::GenerateError;
pub use run::{Summary, run_generate, run_plan};
