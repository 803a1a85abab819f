//! `tickflow connect`: exchange connectors that poll OHLC bars from exchange HTTP APIs and
//! feed them through the gateway's validation and the shared producer ([`crate::kafka`]).
//!
//! A connector is a [`Poller`] (a step-able state machine: [`Poller::poll_once`] makes at
//! most one HTTP request, returns the bars it produced and when to poll next) in front of a
//! [`BarSink`] (Kafka through the gateway's [`Producer`](crate::kafka::Producer),
//! or stdout). Only *closed* bars are emitted, each `(symbol, ts)` once per run: the cursor
//! per symbol only moves forward. Rate limits (HTTP 429, Alpha Vantage's `Note` /
//! `Information`), 5xx and connection errors back off exponentially with jitter for the
//! whole connector ([`crate::retry`]) and honour `Retry-After`; a symbol the exchange rejects is retried only
//! after `backoff-max`.
//!
//! - [`config`]: `[nobitex]` / `[alphavantage]` sections and flags, validated.
//! - [`http`]: one GET with ureq (plain HTTP only in this build: see [`http::HTTPS_SUPPORTED`]).
//! - [`nobitex`]: the UDF history endpoint: URLs, resolutions, body → rows.
//! - [`alphavantage`]: intraday equities and digital currencies: URLs, body → rows.
//! - [`eastern`]: US/Eastern wall time → UTC with the US daylight-saving rule.
//! - [`poller`]: per-symbol cursors, de-duplication, the forming-bar rule, scheduling.
//! - [`metrics`]: one event per poll that logs and counts.
//! - [`sink`]: Kafka (bars keyed by symbol, dead letters) or stdout.
//! - [`run`]: `tickflow connect`: the loop with a real clock.

/// Set (by the binary's signal handler) to stop a running connector after its current poll.
pub static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub mod alphavantage;
pub mod config;
pub mod eastern;
mod error;
pub mod http;
pub mod metrics;
pub mod nobitex;
pub mod poller;
pub mod run;
pub mod sink;

pub use config::{BuiltConnector, ConnectorArgs, ConnectorConfig, Exchange, SymbolSpec};
pub use error::ConnectorError;
pub use http::{Fetch, FetchError, HttpResponse, UreqFetch};
pub use metrics::ConnectorMetrics;
pub use poller::{DeadRow, Outcome, Poll, Poller};
pub use run::{run_connector, run_until};
pub use sink::{BarSink, KafkaSink, StdoutSink};
