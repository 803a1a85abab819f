//! Process-wide metrics: the workers' blocks, readiness, Kafka partitions, errors, sink state.
//!
//! One [`ProcessMetrics`] per process, shared as `Arc` between the timely workers (writers)
//! and the status server (reader). Everything a worker writes per batch is either an atomic
//! or behind a lock taken once per batch; nothing here is meant for per-record calls.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use serde::Serialize;

use super::clock::{Clock, SystemClock};
use super::error::StatusError;
use super::metrics::{CounterValues, SinkHealth, WorkerMetrics, WorkerValues};
use super::operators::{OperatorRecorder, OperatorStats};
use super::rates::{RateRing, Rates, Sample};

/// Stored in `sink_last_flush_ms` before the first flush.
const NEVER: i64 = i64::MIN;

/// The read position of one Kafka partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionStatus {
    /// Kafka topic.
    pub topic: String,
    /// Partition number.
    pub partition: i32,
    /// Global index of the worker that reads it.
    pub owner_worker: usize,
    /// Next offset to read.
    pub offset: i64,
    /// The partition's high watermark (offset of the next message to be written).
    pub high_watermark: i64,
    /// `high_watermark - offset`, never negative.
    pub lag: i64,
}

/// One partition's position, as a worker reports it per batch (borrows the topic, so an update
/// allocates nothing once the partition is known).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionUpdate<'a> {
    /// Kafka topic.
    pub topic: &'a str,
    /// Partition number.
    pub partition: i32,
    /// Global index of the worker that reads it.
    pub owner_worker: usize,
    /// Next offset to read.
    pub offset: i64,
    /// The partition's high watermark.
    pub high_watermark: i64,
}

/// An error message and when it was recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorRecord {
    /// The error, rendered with its causes (`{:#}`).
    pub message: String,
    /// Wall-clock time recorded, ms since the epoch.
    pub at_ms: i64,
}

/// What readiness depends on, as read at one instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Readiness {
    /// Whether the source (Kafka) is connected.
    pub source_connected: bool,
    /// Whether the sink (QuestDB) is reachable.
    pub sink_reachable: bool,
    /// Local workers marked running.
    pub workers_running: usize,
    /// Local workers expected.
    pub workers_expected: usize,
    /// Global indices of local workers not running.
    pub workers_not_running: Vec<usize>,
}

impl Readiness {
    /// Ready: source connected, sink reachable and every local worker running.
    pub fn is_ready(&self) -> bool {
        self.source_connected && self.sink_reachable && self.workers_not_running.is_empty()
    }

    /// One sentence per unmet condition; empty when ready.
    pub fn reasons(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.source_connected {
            out.push("source not connected".to_owned());
        }
        if !self.sink_reachable {
            out.push("sink not reachable".to_owned());
        }
        if !self.workers_not_running.is_empty() {
            out.push(format!(
                "{} of {} workers running; not running: {:?}",
                self.workers_running, self.workers_expected, self.workers_not_running
            ));
        }
        out
    }
}

/// Appends more Prometheus families to `/metrics` (a component outside the status module,
/// such as the alert notifier, exposing its own counters).
pub type Exposer = Arc<dyn Fn(&mut String) + Send + Sync>;

/// The metrics of one tickflow process.
pub struct ProcessMetrics {
    process_id: usize,
    worker_range: Range<usize>,
    workers: Vec<Arc<WorkerMetrics>>,
    clock: Arc<dyn Clock>,
    started_ms: i64,
    source_connected: AtomicBool,
    sink_reachable: AtomicBool,
    /// topic → partition → status; nested so per-batch updates look up by `&str`.
    partitions: RwLock<BTreeMap<String, BTreeMap<i32, PartitionStatus>>>,
    last_error: Mutex<Option<ErrorRecord>>,
    sink_last_error: Mutex<Option<ErrorRecord>>,
    sink_last_flush_ms: AtomicI64,
    sink_health: SinkHealth,
    operators: Arc<OperatorStats>,
    rates: Mutex<RateRing>,
    exposers: RwLock<Vec<Exposer>>,
}

impl std::fmt::Debug for ProcessMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessMetrics")
            .field("process_id", &self.process_id)
            .field("worker_range", &self.worker_range)
            .field("workers", &self.workers)
            .field("started_ms", &self.started_ms)
            .finish_non_exhaustive()
    }
}

impl ProcessMetrics {
    /// Metrics for process `process_id` running global workers `worker_range`, reading time
    /// from `clock`. Uptime counts from now.
    pub fn new(process_id: usize, worker_range: Range<usize>, clock: Arc<dyn Clock>) -> Self {
        let workers = worker_range.clone().map(|i| Arc::new(WorkerMetrics::new(i, Arc::clone(&clock)))).collect();
        Self {
            process_id,
            worker_range,
            workers,
            started_ms: clock.now_ms(),
            clock,
            source_connected: AtomicBool::new(false),
            sink_reachable: AtomicBool::new(false),
            partitions: RwLock::new(BTreeMap::new()),
            last_error: Mutex::new(None),
            sink_last_error: Mutex::new(None),
            sink_last_flush_ms: AtomicI64::new(NEVER),
            sink_health: SinkHealth::default(),
            operators: Arc::new(OperatorStats::new()),
            rates: Mutex::new(RateRing::new()),
            exposers: RwLock::new(Vec::new()),
        }
    }

    /// Adds families to every later `/metrics` rendering (see [`Exposer`]).
    pub fn add_exposer(&self, exposer: Exposer) {
        // A poisoned lock only means a renderer panicked; the list itself is intact.
        self.exposers.write().unwrap_or_else(|e| e.into_inner()).push(exposer);
    }

    /// Runs every [`Exposer`] into `out`.
    pub fn expose_extra(&self, out: &mut String) {
        for e in self.exposers.read().unwrap_or_else(|e| e.into_inner()).iter() {
            e(out);
        }
    }

    /// [`ProcessMetrics::new`] with the system clock.
    pub fn with_system_clock(process_id: usize, worker_range: Range<usize>) -> Self {
        Self::new(process_id, worker_range, Arc::new(SystemClock))
    }

    /// This process's index in the cluster.
    pub fn process_id(&self) -> usize {
        self.process_id
    }

    /// The global indices of this process's workers.
    pub fn worker_range(&self) -> Range<usize> {
        self.worker_range.clone()
    }

    /// The local workers' metrics, in global index order.
    pub fn workers(&self) -> &[Arc<WorkerMetrics>] {
        &self.workers
    }

    /// The metrics of global worker `index` (e.g. `worker.index()` in timely).
    pub fn worker(&self, index: usize) -> Result<&Arc<WorkerMetrics>, StatusError> {
        index
            .checked_sub(self.worker_range.start)
            .and_then(|local| self.workers.get(local))
            .ok_or_else(|| StatusError::UnknownWorker { index, range: self.worker_range.clone() })
    }

    /// The clock every time here is read from.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Now, by [`ProcessMetrics::clock`].
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// When these metrics were created, ms since the epoch.
    pub fn started_ms(&self) -> i64 {
        self.started_ms
    }

    /// Marks the source connected or not.
    pub fn set_source_connected(&self, connected: bool) {
        self.source_connected.store(connected, Relaxed);
    }

    /// Marks the sink reachable or not.
    pub fn set_sink_reachable(&self, reachable: bool) {
        self.sink_reachable.store(reachable, Relaxed);
    }

    /// The sink thread's retries, failures and queue, published as they happen.
    pub fn sink_health(&self) -> &SinkHealth {
        &self.sink_health
    }

    /// Reads everything readiness depends on.
    pub fn readiness(&self) -> Readiness {
        let workers_not_running: Vec<usize> =
            self.workers.iter().map(|w| w.load()).filter(|w| !w.running).map(|w| w.index).collect();
        Readiness {
            source_connected: self.source_connected.load(Relaxed),
            sink_reachable: self.sink_reachable.load(Relaxed),
            workers_running: self.workers.len() - workers_not_running.len(),
            workers_expected: self.workers.len(),
            workers_not_running,
        }
    }

    /// Records the positions of a worker's partitions; takes the lock once per call, so call
    /// once per batch with all the partitions the batch touched.
    pub fn update_partitions<'a>(&self, updates: impl IntoIterator<Item = PartitionUpdate<'a>>) {
        let mut map = self.partitions.write().unwrap_or_else(PoisonError::into_inner);
        for u in updates {
            let lag = u.high_watermark.saturating_sub(u.offset).max(0);
            let by_partition = match map.get_mut(u.topic) {
                Some(p) => p,
                None => map.entry(u.topic.to_owned()).or_default(),
            };
            match by_partition.get_mut(&u.partition) {
                Some(s) => {
                    s.owner_worker = u.owner_worker;
                    s.offset = u.offset;
                    s.high_watermark = u.high_watermark;
                    s.lag = lag;
                }
                None => {
                    by_partition.insert(
                        u.partition,
                        PartitionStatus {
                            topic: u.topic.to_owned(),
                            partition: u.partition,
                            owner_worker: u.owner_worker,
                            offset: u.offset,
                            high_watermark: u.high_watermark,
                            lag,
                        },
                    );
                }
            }
        }
    }

    /// Forgets a partition (no longer owned by this process).
    pub fn remove_partition(&self, topic: &str, partition: i32) {
        let mut map = self.partitions.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(by_partition) = map.get_mut(topic) {
            by_partition.remove(&partition);
            if by_partition.is_empty() {
                map.remove(topic);
            }
        }
    }

    /// Every known partition, by topic then partition.
    pub fn partitions(&self) -> Vec<PartitionStatus> {
        let map = self.partitions.read().unwrap_or_else(PoisonError::into_inner);
        map.values().flat_map(|p| p.values().cloned()).collect()
    }

    /// Records `message` as the process's last error, stamped now.
    pub fn record_error(&self, message: impl Into<String>) {
        let record = ErrorRecord { message: message.into(), at_ms: self.now_ms() };
        *self.last_error.lock().unwrap_or_else(PoisonError::into_inner) = Some(record);
    }

    /// Records a sink error: both the sink's and the process's last error.
    pub fn record_sink_error(&self, message: impl Into<String>) {
        let record = ErrorRecord { message: message.into(), at_ms: self.now_ms() };
        *self.sink_last_error.lock().unwrap_or_else(PoisonError::into_inner) = Some(record.clone());
        *self.last_error.lock().unwrap_or_else(PoisonError::into_inner) = Some(record);
    }

    /// The last error recorded, if any.
    pub fn last_error(&self) -> Option<ErrorRecord> {
        self.last_error.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The last sink error recorded, if any.
    pub fn sink_last_error(&self) -> Option<ErrorRecord> {
        self.sink_last_error.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Marks a successful sink flush now (keeps the latest if sinks on several workers race).
    pub fn mark_sink_flush(&self) {
        self.sink_last_flush_ms.fetch_max(self.now_ms(), Relaxed);
    }

    /// When the sink last flushed, ms since the epoch.
    pub fn sink_last_flush_ms(&self) -> Option<i64> {
        let v = self.sink_last_flush_ms.load(Relaxed);
        (v != NEVER).then_some(v)
    }

    /// The operator busy-time table.
    pub fn operators(&self) -> &Arc<OperatorStats> {
        &self.operators
    }

    /// An [`OperatorRecorder`] for global worker `index`, to be fed from timely logging.
    pub fn operator_recorder(&self, index: usize) -> Result<OperatorRecorder, StatusError> {
        let worker = Arc::clone(self.worker(index)?);
        Ok(OperatorRecorder::new(worker, Arc::clone(&self.operators)))
    }

    /// Every local worker's values, in index order.
    pub fn worker_values(&self) -> Vec<WorkerValues> {
        self.workers.iter().map(|w| w.load()).collect()
    }

    /// Counters summed over the local workers.
    pub fn totals(&self) -> CounterValues {
        let mut sum = CounterValues::default();
        for w in &self.workers {
            sum.add(&w.load().counters);
        }
        sum
    }

    /// Takes a rate sample of the current totals, stamped now. The server calls this once a
    /// second; tests call it by hand after moving a manual clock.
    pub fn sample(&self) {
        let workers = self.worker_values();
        let mut totals = CounterValues::default();
        for w in &workers {
            totals.add(&w.counters);
        }
        let sample = Sample {
            at_ms: self.now_ms(),
            bars_in: totals.bars_in,
            bars_out: totals.bars_out,
            candles_out: totals.candles_out,
            sink_rows: totals.sink_rows,
            busy_ns: workers.iter().map(|w| w.counters.busy_ns).collect(),
        };
        self.rates.lock().unwrap_or_else(PoisonError::into_inner).push(sample);
    }

    /// Rates over the last `window_ms` of samples; `None` before two samples exist.
    pub fn rates(&self, window_ms: i64) -> Option<Rates> {
        self.rates.lock().unwrap_or_else(PoisonError::into_inner).rates(window_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::clock::ManualClock;
    use crate::status::metrics::LocalCounters;

    fn metrics() -> (Arc<ManualClock>, ProcessMetrics) {
        let clock = Arc::new(ManualClock::new(1_000_000));
        (clock.clone(), ProcessMetrics::new(1, 2..4, clock))
    }

    #[test]
    fn worker_lookup_uses_global_indices() {
        let (_c, m) = metrics();
        assert_eq!(m.worker(3).unwrap().index(), 3);
        let err = m.worker(4).unwrap_err().to_string();
        assert_eq!(err, "worker 4 is not in this process's worker range 2..4");
        assert!(m.worker(0).is_err());
    }

    #[test]
    fn readiness_lists_every_unmet_condition() {
        let (_c, m) = metrics();
        let r = m.readiness();
        assert!(!r.is_ready());
        assert_eq!(
            r.reasons(),
            vec!["source not connected", "sink not reachable", "0 of 2 workers running; not running: [2, 3]"]
        );
        m.set_source_connected(true);
        m.set_sink_reachable(true);
        let _g2 = m.worker(2).unwrap().running_guard();
        let _g3 = m.worker(3).unwrap().running_guard();
        assert!(m.readiness().is_ready());
        assert!(m.readiness().reasons().is_empty());
    }

    #[test]
    fn partitions_update_in_place_and_lag_never_negative() {
        let (_c, m) = metrics();
        let upd = |p, off, hw| PartitionUpdate {
            topic: "bars",
            partition: p,
            owner_worker: 2,
            offset: off,
            high_watermark: hw,
        };
        m.update_partitions([upd(1, 10, 15), upd(0, 5, 5)]);
        m.update_partitions([upd(1, 12, 20)]);
        m.update_partitions([upd(0, 7, 6)]); // stale high watermark
        let parts = m.partitions();
        assert_eq!(parts.len(), 2);
        assert_eq!((parts[0].partition, parts[0].offset, parts[0].lag), (0, 7, 0));
        assert_eq!((parts[1].partition, parts[1].offset, parts[1].lag), (1, 12, 8));
        m.remove_partition("bars", 0);
        assert_eq!(m.partitions().len(), 1);
    }

    #[test]
    fn sink_error_is_also_the_last_error() {
        let (clock, m) = metrics();
        m.record_error("decode failed");
        clock.advance(5);
        m.record_sink_error("questdb: connection refused");
        let expect = ErrorRecord { message: "questdb: connection refused".into(), at_ms: 1_000_005 };
        assert_eq!(m.last_error(), Some(expect.clone()));
        assert_eq!(m.sink_last_error(), Some(expect));
        assert_eq!(m.sink_last_flush_ms(), None);
        m.mark_sink_flush();
        assert_eq!(m.sink_last_flush_ms(), Some(1_000_005));
    }

    #[test]
    fn samples_feed_rates_and_totals_sum_workers() {
        let (clock, m) = metrics();
        m.sample();
        let mut local = LocalCounters { bars_in: 300, ..LocalCounters::default() };
        local.publish(m.worker(2).unwrap());
        local.bars_in = 200;
        local.publish(m.worker(3).unwrap());
        clock.advance(10_000);
        m.sample();
        assert_eq!(m.totals().bars_in, 500);
        assert_eq!(m.rates(10_000).unwrap().bars_in_per_s, 50.0);
    }
}
