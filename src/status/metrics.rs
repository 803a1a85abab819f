//! Per-worker counters: a worker counts in plain integers and publishes once per batch.
//!
//! Each timely worker owns a [`LocalCounters`] that it bumps in its per-record loops (plain
//! `u64` adds, no atomics, no locks) and, once per batch or per `step()`, calls
//! [`LocalCounters::publish`] to add the deltas into its shared [`WorkerMetrics`] with relaxed
//! atomics. The status server only ever reads [`WorkerMetrics`], so the HTTP thread never
//! touches a cache line a worker writes per record.
//!
//! ```
//! use std::sync::Arc;
//! use tickflow::status::{LocalCounters, ManualClock, WorkerMetrics};
//!
//! let worker = WorkerMetrics::new(0, Arc::new(ManualClock::new(1_000)));
//! let mut local = LocalCounters::default();
//! for _bar in 0..3 {
//!     local.bars_in += 1;
//! }
//! local.batches += 1;
//! local.watermark_ms = Some(900);
//! local.publish(&worker); // once per batch
//! let values = worker.load();
//! assert_eq!(values.counters.bars_in, 3);
//! assert_eq!(values.watermark_ms, Some(900));
//! assert_eq!(local.bars_in, 0, "publish resets the local deltas");
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};

use serde::Serialize;

use super::clock::Clock;

/// Stored in an `AtomicI64` time slot that has never been set.
const UNSET_MS: i64 = i64::MIN;

fn ms_option(v: i64) -> Option<i64> {
    (v != UNSET_MS).then_some(v)
}

/// Defines the monotone per-worker counters once, and from that list the local deltas
/// ([`LocalCounters`]), the read-side values ([`CounterValues`]) and the shared atomics, so the
/// three can never disagree.
macro_rules! worker_counters {
    ($($name:ident: $help:literal,)*) => {
        /// A worker's local, non-atomic counters and gauges.
        ///
        /// Bump the counters in per-record loops; call [`LocalCounters::publish`] once per
        /// batch. Counters are deltas since the last publish; gauges (`Some`) are absolute
        /// values stored on publish and left untouched when `None`.
        #[derive(Debug, Default, Clone, PartialEq, Eq)]
        pub struct LocalCounters {
            $(#[doc = $help] pub $name: u64,)*
            /// Sink backlog: rows buffered but not yet durably written (gauge).
            pub backlog: Option<u64>,
            /// Event-time watermark in ms since the epoch (gauge).
            pub watermark_ms: Option<i64>,
            /// Symbols with live state on this worker (gauge).
            pub symbols_tracked: Option<u64>,
        }

        /// A snapshot of one worker's counters (or their sum over workers).
        #[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
        pub struct CounterValues {
            $(#[doc = $help] pub $name: u64,)*
        }

        impl CounterValues {
            /// `(name, help)` of every counter, in the order of [`CounterValues::values`].
            pub const FIELDS: &'static [(&'static str, &'static str)] =
                &[$((stringify!($name), $help),)*];

            /// The counter values in the order of [`CounterValues::FIELDS`].
            pub fn values(&self) -> Vec<u64> {
                vec![$(self.$name,)*]
            }

            /// Adds `other` field by field (wrapping, as the atomics do).
            pub fn add(&mut self, other: &CounterValues) {
                $(self.$name = self.$name.wrapping_add(other.$name);)*
            }
        }

        /// The shared atomic side of the counters.
        #[derive(Debug, Default)]
        struct AtomicCounters {
            $($name: AtomicU64,)*
        }

        impl AtomicCounters {
            /// Adds the local deltas, skipping zeros (no write, no cache-line traffic), and
            /// resets them. Returns whether anything was non-zero.
            fn drain_from(&self, local: &mut LocalCounters) -> bool {
                let mut any = false;
                $(
                    if local.$name != 0 {
                        self.$name.fetch_add(local.$name, Relaxed);
                        local.$name = 0;
                        any = true;
                    }
                )*
                any
            }

            fn load(&self) -> CounterValues {
                CounterValues { $($name: self.$name.load(Relaxed),)* }
            }
        }
    };
}

worker_counters! {
    bars_in: "Bars read from the source, valid or not.",
    bars_out: "Bars passed on to the indicators after validation.",
    bars_late: "Bars behind the watermark by more than the allowed lateness.",
    bars_invalid: "Bars rejected by validation or decoding.",
    dead_letters: "Records sent to the dead-letter output.",
    candles_out: "Candles emitted.",
    signal_changes: "Signal state changes emitted.",
    batches: "Batches processed (source polls or operator activations with data).",
    busy_ns: "Nanoseconds this worker spent doing work.",
    sink_rows: "Rows the sink wrote durably.",
    sink_batches: "Batches the sink flushed.",
    sink_retries: "Sink write attempts that were retried.",
    sink_errors: "Sink write attempts that failed.",
}

impl LocalCounters {
    /// Adds the counter deltas into `target` (relaxed atomic adds, only for non-zero deltas),
    /// stores the gauges that are `Some`, and resets `self` to its default.
    ///
    /// Call once per batch or step, never per record. If any counter moved, the worker's
    /// `last_activity_ms` is set from its clock (one clock read per active publish).
    pub fn publish(&mut self, target: &WorkerMetrics) {
        let active = target.counters.drain_from(self);
        if let Some(backlog) = self.backlog.take() {
            target.backlog.store(backlog, Relaxed);
        }
        if let Some(watermark) = self.watermark_ms.take() {
            target.watermark_ms.store(watermark, Relaxed);
        }
        if let Some(symbols) = self.symbols_tracked.take() {
            target.symbols_tracked.store(symbols, Relaxed);
        }
        if active {
            target.last_activity_ms.store(target.clock.now_ms(), Relaxed);
        }
    }
}

/// The shared metrics of one timely worker, written by that worker (via
/// [`LocalCounters::publish`] and the setters) and read by the status server.
///
/// Aligned to 128 bytes (two cache lines, the prefetch pair on x86) so that two workers'
/// blocks never share a line: a worker publishing never invalidates a neighbour's cache.
#[repr(align(128))]
#[derive(Debug)]
pub struct WorkerMetrics {
    index: usize,
    clock: Arc<dyn Clock>,
    counters: AtomicCounters,
    backlog: AtomicU64,
    watermark_ms: AtomicI64,
    symbols_tracked: AtomicU64,
    last_activity_ms: AtomicI64,
    running: AtomicBool,
    latency: super::latency::LatencyHistogram,
}

/// A consistent-enough snapshot of one worker (each field read once, relaxed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerValues {
    /// Global timely worker index.
    pub index: usize,
    /// Monotone counters.
    pub counters: CounterValues,
    /// Sink backlog (rows buffered, not yet written).
    pub backlog: u64,
    /// Event-time watermark, ms since the epoch; `None` before the first one.
    pub watermark_ms: Option<i64>,
    /// Symbols with live state on this worker.
    pub symbols_tracked: u64,
    /// Wall-clock time of the last publish that moved a counter; `None` if never.
    pub last_activity_ms: Option<i64>,
    /// Whether the worker has started and not yet stopped.
    pub running: bool,
}

impl WorkerMetrics {
    /// Metrics for global worker `index`; `clock` stamps `last_activity_ms`.
    pub fn new(index: usize, clock: Arc<dyn Clock>) -> Self {
        Self {
            index,
            clock,
            counters: AtomicCounters::default(),
            backlog: AtomicU64::new(0),
            watermark_ms: AtomicI64::new(UNSET_MS),
            symbols_tracked: AtomicU64::new(0),
            last_activity_ms: AtomicI64::new(UNSET_MS),
            running: AtomicBool::new(false),
            latency: Default::default(),
        }
    }

    /// Event time → sink acknowledgement of this worker's rows (published per batch).
    pub fn latency(&self) -> &super::latency::LatencyHistogram {
        &self.latency
    }

    /// The wall clock of the metrics, ms since the epoch.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Global timely worker index.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Marks the worker running (or stopped); readiness needs every local worker running.
    /// Prefer [`WorkerMetrics::running_guard`], which also clears the flag on panic.
    pub fn set_running(&self, running: bool) {
        self.running.store(running, Relaxed);
    }

    /// Marks the worker running until the returned guard is dropped (including by unwinding).
    pub fn running_guard(self: &Arc<Self>) -> RunningGuard {
        self.set_running(true);
        RunningGuard { worker: Arc::clone(self) }
    }

    /// Adds `ns` to the busy time directly (used by the timely logging hook, per step).
    pub fn add_busy_ns(&self, ns: u64) {
        if ns != 0 {
            self.counters.busy_ns.fetch_add(ns, Relaxed);
        }
    }

    /// Reads every field once (relaxed).
    pub fn load(&self) -> WorkerValues {
        WorkerValues {
            index: self.index,
            counters: self.counters.load(),
            backlog: self.backlog.load(Relaxed),
            watermark_ms: ms_option(self.watermark_ms.load(Relaxed)),
            symbols_tracked: self.symbols_tracked.load(Relaxed),
            last_activity_ms: ms_option(self.last_activity_ms.load(Relaxed)),
            running: self.running.load(Relaxed),
        }
    }
}

/// Keeps a worker marked running; clears the flag when dropped. See
/// [`WorkerMetrics::running_guard`].
#[derive(Debug)]
#[must_use = "the worker is marked stopped as soon as the guard is dropped"]
pub struct RunningGuard {
    worker: Arc<WorkerMetrics>,
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.worker.set_running(false);
    }
}

/// The sink thread's own view of its health, published as it happens (the sink is one
/// thread per process, not per worker, so these are process-wide, not worker counters).
///
/// The QuestDB sink updates it on every retry, failure, flush and queue change (once per
/// event, never per row); `/status`, `/metrics` and `/ready` read it.
#[derive(Debug, Default)]
pub struct SinkHealth {
    retries: AtomicU64,
    failures: AtomicU64,
    consecutive_failures: AtomicU64,
    queued_rows: AtomicU64,
}

/// A snapshot of [`SinkHealth`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SinkHealthValues {
    /// Write attempts that failed transiently and were retried.
    pub retries: u64,
    /// Write attempts that failed (retried or not).
    pub failures: u64,
    /// Failed attempts since the last successful write.
    pub consecutive_failures: u64,
    /// Rows handed to the sink and not yet written.
    pub queued_rows: u64,
}

impl SinkHealth {
    /// A failed attempt that will be retried.
    pub fn retried(&self) {
        self.retries.fetch_add(1, Relaxed);
        self.failed();
    }

    /// A failed attempt (retried or not). Returns the failures in a row, this one included.
    pub fn failed(&self) -> u64 {
        self.failures.fetch_add(1, Relaxed);
        self.consecutive_failures.fetch_add(1, Relaxed) + 1
    }

    /// A successful write. Returns the failures in a row it ended.
    pub fn succeeded(&self) -> u64 {
        self.consecutive_failures.swap(0, Relaxed)
    }

    /// Rows queued in the sink now (a gauge).
    pub fn set_queued_rows(&self, rows: u64) {
        self.queued_rows.store(rows, Relaxed);
    }

    /// Reads every field once.
    pub fn load(&self) -> SinkHealthValues {
        SinkHealthValues {
            retries: self.retries.load(Relaxed),
            failures: self.failures.load(Relaxed),
            consecutive_failures: self.consecutive_failures.load(Relaxed),
            queued_rows: self.queued_rows.load(Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::clock::ManualClock;

    fn worker() -> (Arc<ManualClock>, Arc<WorkerMetrics>) {
        let clock = Arc::new(ManualClock::new(10_000));
        let metrics = Arc::new(WorkerMetrics::new(3, clock.clone()));
        (clock, metrics)
    }

    #[test]
    fn worker_metrics_do_not_share_cache_lines() {
        assert_eq!(std::mem::align_of::<WorkerMetrics>(), 128);
        assert_eq!(std::mem::size_of::<WorkerMetrics>() % 128, 0);
    }

    #[test]
    fn publish_adds_deltas_stores_gauges_and_resets() {
        let (clock, w) = worker();
        let mut local = LocalCounters {
            bars_in: 5,
            sink_rows: 7,
            backlog: Some(12),
            watermark_ms: Some(9_000),
            symbols_tracked: Some(4),
            ..LocalCounters::default()
        };
        local.publish(&w);
        assert_eq!(local, LocalCounters::default());
        clock.advance(500);
        local.bars_in = 2;
        local.publish(&w);

        let v = w.load();
        assert_eq!(v.index, 3);
        assert_eq!(v.counters.bars_in, 7);
        assert_eq!(v.counters.sink_rows, 7);
        assert_eq!(v.backlog, 12, "a None gauge leaves the stored value alone");
        assert_eq!(v.watermark_ms, Some(9_000));
        assert_eq!(v.symbols_tracked, 4);
        assert_eq!(v.last_activity_ms, Some(10_500));
    }

    #[test]
    fn publish_with_only_gauges_is_not_activity() {
        let (_clock, w) = worker();
        let mut local = LocalCounters { backlog: Some(1), ..LocalCounters::default() };
        local.publish(&w);
        assert_eq!(w.load().last_activity_ms, None);
        assert_eq!(w.load().watermark_ms, None);
    }

    #[test]
    fn running_guard_clears_flag_on_drop() {
        let (_clock, w) = worker();
        assert!(!w.load().running);
        let guard = w.running_guard();
        assert!(w.load().running);
        drop(guard);
        assert!(!w.load().running);
    }

    #[test]
    fn fields_table_matches_values_order() {
        let v = CounterValues { bars_in: 1, sink_errors: 13, ..CounterValues::default() };
        let h = SinkHealth::default();
        h.retried();
        assert_eq!(h.failed(), 2);
        assert_eq!(h.succeeded(), 2);
        h.set_queued_rows(7);
        assert_eq!(h.load(), SinkHealthValues { retries: 1, failures: 2, consecutive_failures: 0, queued_rows: 7 });
        let values = v.values();
        assert_eq!(values.len(), CounterValues::FIELDS.len());
        assert_eq!(CounterValues::FIELDS[0].0, "bars_in");
        assert_eq!(values[0], 1);
        assert_eq!(CounterValues::FIELDS[12].0, "sink_errors");
        assert_eq!(values[12], 13);
    }
}
