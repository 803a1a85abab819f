//! Per-worker metrics and the status HTTP server every tickflow process serves.
//!
//! Workers count in a local [`LocalCounters`] and publish once per batch into their
//! [`WorkerMetrics`] (relaxed atomics, one cache-line-aligned block per worker). Process-wide
//! state (readiness, Kafka partitions, errors, sink flushes, operator busy time) lives in
//! [`ProcessMetrics`]. A [`StatusServer`] on its own tokio thread reads it all and serves
//! `/health`, `/ready`, `/status` (JSON) and `/metrics` (Prometheus). Time comes from a
//! [`Clock`], so tests move time by hand.

mod clock;
mod error;
mod latency;
mod metrics;
mod operators;
mod proc_self;
mod process;
mod prometheus;
mod rates;
mod server;
mod snapshot;
mod timely_log;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::StatusError;
pub use latency::{LatencyHistogram, LatencyValues, LocalLatency};
pub use metrics::{
    CounterValues, LocalCounters, RunningGuard, SinkHealth, SinkHealthValues, WorkerMetrics, WorkerValues,
};
pub use operators::{OperatorEntry, OperatorRecorder, OperatorStats, OperatorValues};
pub use process::{ErrorRecord, PartitionStatus, PartitionUpdate, ProcessMetrics, Readiness};
pub use prometheus::{
    CONTENT_TYPE as PROMETHEUS_CONTENT_TYPE, render as render_prometheus, render_process as render_process_prometheus,
};
pub use rates::{RateRing, Rates, Sample};
pub use server::{ExtraRoutes, READ_TOKEN_ENV, ServerOptions, StatusServer, routes, routes_with};
pub use snapshot::{
    OperatorSummary, ProcessInfo, RateSummary, RatesReport, ReadyInfo, SinkStatus, StatusReport, Totals, WorkerStatus,
    status_report,
};
pub use timely_log::register_timely_logging;
