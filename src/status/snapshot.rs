//! The `/status` document: a serializable snapshot of [`ProcessMetrics`] at one instant.

use std::collections::BTreeMap;

use serde::Serialize;

use super::metrics::CounterValues;
use super::operators::OperatorValues;
use super::process::{ErrorRecord, PartitionStatus, ProcessMetrics, Readiness};
use super::rates::Rates;

/// Short rate window, ms.
pub const SHORT_WINDOW_MS: i64 = 10_000;
/// Long rate window, ms.
pub const LONG_WINDOW_MS: i64 = 60_000;

/// The whole `/status` document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusReport {
    /// Who and what this process is.
    pub process: ProcessInfo,
    /// Readiness and its reasons.
    pub ready: ReadyInfo,
    /// One entry per local worker.
    pub workers: Vec<WorkerStatus>,
    /// Kafka partitions read by this process.
    pub partitions: Vec<PartitionStatus>,
    /// Sums over the local workers.
    pub totals: Totals,
    /// Rates over the last 10 s and 60 s.
    pub rates: RatesReport,
    /// The sink's state.
    pub sink: SinkStatus,
    /// The last error recorded anywhere in the process.
    pub last_error: Option<ErrorRecord>,
    /// Operator busy time by name.
    pub operators: Vec<OperatorSummary>,
}

/// Identity and age of the process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcessInfo {
    /// Process index in the cluster.
    pub id: usize,
    /// OS process id.
    pub pid: u32,
    /// tickflow version.
    pub version: &'static str,
    /// When metrics were created, ms since the epoch.
    pub started_ms: i64,
    /// Wall-clock time of this snapshot, ms since the epoch.
    pub now_ms: i64,
    /// `now_ms - started_ms`.
    pub uptime_ms: i64,
    /// First global worker index of this process.
    pub first_worker: usize,
    /// Number of local workers.
    pub worker_count: usize,
}

/// Readiness as served by `/status` and `/ready`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReadyInfo {
    /// Whether `/ready` answers 200.
    pub ready: bool,
    /// What is not ready, one sentence each; empty when ready.
    pub reasons: Vec<String>,
    /// The inputs to the decision.
    #[serde(flatten)]
    pub readiness: Readiness,
}

impl From<Readiness> for ReadyInfo {
    fn from(readiness: Readiness) -> Self {
        Self { ready: readiness.is_ready(), reasons: readiness.reasons(), readiness }
    }
}

/// One worker's status.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkerStatus {
    /// Global worker index.
    pub index: usize,
    /// Whether the worker is running.
    pub running: bool,
    /// Monotone counters.
    #[serde(flatten)]
    pub counters: CounterValues,
    /// Sink rows buffered, not yet written.
    pub backlog: u64,
    /// Event-time watermark, ms since the epoch.
    pub watermark_ms: Option<i64>,
    /// How far the watermark is behind the wall clock, ms; never negative (0 while event
    /// time runs ahead of the wall clock).
    pub watermark_lag_ms: Option<i64>,
    /// Busy share of the last 10 s, percent.
    pub busy_pct_10s: Option<f64>,
    /// Symbols with live state on this worker.
    pub symbols_tracked: u64,
    /// Last time a publish moved a counter, ms since the epoch.
    pub last_activity_ms: Option<i64>,
}

/// Sums over the local workers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Summed counters.
    #[serde(flatten)]
    pub counters: CounterValues,
    /// Summed sink backlog.
    pub backlog: u64,
    /// Summed symbols tracked.
    pub symbols_tracked: u64,
    /// The lowest watermark among workers that have one.
    pub watermark_ms: Option<i64>,
    /// How far that watermark is behind the wall clock, ms; never negative.
    pub watermark_lag_ms: Option<i64>,
    /// Summed Kafka lag over the partitions.
    pub partition_lag: i64,
}

/// Process rates over one window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RateSummary {
    /// The span actually covered, ms (shorter than asked while history is short).
    pub window_ms: i64,
    /// Bars read per second.
    pub bars_in_per_s: f64,
    /// Bars passed on per second.
    pub bars_out_per_s: f64,
    /// Candles emitted per second.
    pub candles_out_per_s: f64,
    /// Sink rows written per second.
    pub sink_rows_per_s: f64,
}

impl From<&Rates> for RateSummary {
    fn from(r: &Rates) -> Self {
        Self {
            window_ms: r.window_ms,
            bars_in_per_s: r.bars_in_per_s,
            bars_out_per_s: r.bars_out_per_s,
            candles_out_per_s: r.candles_out_per_s,
            sink_rows_per_s: r.sink_rows_per_s,
        }
    }
}

/// Rates over both windows; `null` until the sampler has two samples.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RatesReport {
    /// Over the last 10 s.
    pub last_10s: Option<RateSummary>,
    /// Over the last 60 s.
    pub last_60s: Option<RateSummary>,
}

/// The sink's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SinkStatus {
    /// Whether the sink is reachable.
    pub reachable: bool,
    /// Batches flushed.
    pub batches: u64,
    /// Rows written.
    pub rows: u64,
    /// Write attempts retried (by the sink thread, and any a worker counted).
    pub retries: u64,
    /// Write attempts failed, retried or not (sink thread and workers).
    pub errors: u64,
    /// Failed write attempts since the last successful one.
    pub consecutive_failures: u64,
    /// Rows buffered, not yet written: the larger of what the workers last reported and
    /// what the sink holds now (workers blocked on a stuck sink do not report).
    pub backlog: u64,
    /// Last successful flush, ms since the epoch.
    pub last_flush_ms: Option<i64>,
    /// Time since the last successful flush, ms.
    pub last_flush_age_ms: Option<i64>,
    /// The last sink error.
    pub last_error: Option<ErrorRecord>,
}

/// Busy time of one operator name, summed over workers, with the per-worker split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OperatorSummary {
    /// Operator name.
    pub name: String,
    /// Nanoseconds scheduled, all workers.
    pub busy_ns: u64,
    /// Times scheduled, all workers.
    pub schedules: u64,
    /// Per-worker values.
    pub workers: Vec<OperatorValues>,
}

/// Builds the `/status` document from `metrics` at the clock's current time.
pub fn status_report(metrics: &ProcessMetrics) -> StatusReport {
    let now = metrics.now_ms();
    let values = metrics.worker_values();
    let short = metrics.rates(SHORT_WINDOW_MS);
    let long = metrics.rates(LONG_WINDOW_MS);
    let partitions = metrics.partitions();

    let workers: Vec<WorkerStatus> = values
        .iter()
        .enumerate()
        .map(|(local, w)| WorkerStatus {
            index: w.index,
            running: w.running,
            counters: w.counters,
            backlog: w.backlog,
            watermark_ms: w.watermark_ms,
            watermark_lag_ms: w.watermark_ms.map(|wm| now.saturating_sub(wm).max(0)),
            busy_pct_10s: short.as_ref().and_then(|r| r.worker_busy_pct.get(local).copied()),
            symbols_tracked: w.symbols_tracked,
            last_activity_ms: w.last_activity_ms,
        })
        .collect();

    let mut counters = CounterValues::default();
    for w in &values {
        counters.add(&w.counters);
    }
    let watermark_ms = values.iter().filter_map(|w| w.watermark_ms).min();
    let backlog = values.iter().map(|w| w.backlog).sum();
    let totals = Totals {
        counters,
        backlog,
        symbols_tracked: values.iter().map(|w| w.symbols_tracked).sum(),
        watermark_ms,
        watermark_lag_ms: watermark_ms.map(|wm| now.saturating_sub(wm).max(0)),
        partition_lag: partitions.iter().map(|p| p.lag).sum(),
    };

    let last_flush_ms = metrics.sink_last_flush_ms();
    let readiness = metrics.readiness();
    let health = metrics.sink_health().load();
    let sink = SinkStatus {
        reachable: readiness.sink_reachable,
        batches: counters.sink_batches,
        rows: counters.sink_rows,
        retries: counters.sink_retries + health.retries,
        errors: counters.sink_errors + health.failures,
        consecutive_failures: health.consecutive_failures,
        backlog: backlog.max(health.queued_rows),
        last_flush_ms,
        last_flush_age_ms: last_flush_ms.map(|t| now.saturating_sub(t)),
        last_error: metrics.sink_last_error(),
    };

    let mut by_name: BTreeMap<String, OperatorSummary> = BTreeMap::new();
    for op in metrics.operators().snapshot() {
        let entry = by_name.entry(op.name.clone()).or_insert_with(|| OperatorSummary {
            name: op.name.clone(),
            busy_ns: 0,
            schedules: 0,
            workers: Vec::new(),
        });
        entry.busy_ns += op.busy_ns;
        entry.schedules += op.schedules;
        entry.workers.push(op);
    }

    let range = metrics.worker_range();
    StatusReport {
        process: ProcessInfo {
            id: metrics.process_id(),
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION"),
            started_ms: metrics.started_ms(),
            now_ms: now,
            uptime_ms: now.saturating_sub(metrics.started_ms()),
            first_worker: range.start,
            worker_count: range.len(),
        },
        ready: readiness.into(),
        workers,
        partitions,
        totals,
        rates: RatesReport {
            last_10s: short.as_ref().map(RateSummary::from),
            last_60s: long.as_ref().map(RateSummary::from),
        },
        sink,
        last_error: metrics.last_error(),
        operators: by_name.into_values().collect(),
    }
}
