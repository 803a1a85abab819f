//! Operator busy time by name, from timely's `Schedule` start/stop events.
//!
//! [`OperatorStats`] is the shared, process-wide table the status server reads: one
//! [`OperatorEntry`] (two atomics) per (worker, operator name). A worker feeds it through its
//! own [`OperatorRecorder`]: events are folded into local sums, and [`OperatorRecorder::publish`]
//! adds them into the entries once per log flush (timely flushes once per `step()`). The
//! table's lock is only taken when an operator is first seen.
//!
//! Operators that share a name on one worker (two `Map`s) share an entry; name operators
//! (`foo_named("Foo")`) to tell them apart. Nested regions count their children's time too.
//! Time spent in top-level dataflows is the worker's busy time and goes to
//! [`WorkerMetrics::add_busy_ns`] instead.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;

use super::metrics::WorkerMetrics;

/// Busy time and schedule count of one operator name on one worker.
#[derive(Debug)]
pub struct OperatorEntry {
    worker: usize,
    name: String,
    busy_ns: AtomicU64,
    schedules: AtomicU64,
}

impl OperatorEntry {
    /// Adds busy time and schedule count.
    pub fn add(&self, busy_ns: u64, schedules: u64) {
        self.busy_ns.fetch_add(busy_ns, Relaxed);
        self.schedules.fetch_add(schedules, Relaxed);
    }
}

/// One row of [`OperatorStats::snapshot`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OperatorValues {
    /// Global worker index.
    pub worker: usize,
    /// Operator name.
    pub name: String,
    /// Nanoseconds spent scheduled.
    pub busy_ns: u64,
    /// Times scheduled.
    pub schedules: u64,
}

/// The shared table of operator entries for a process.
#[derive(Debug, Default)]
pub struct OperatorStats {
    entries: Mutex<Vec<Arc<OperatorEntry>>>,
}

impl OperatorStats {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// The entry for (`worker`, `name`), created on first use. Takes the table's lock: call
    /// when an operator is created, and keep the handle.
    pub fn entry(&self, worker: usize, name: &str) -> Arc<OperatorEntry> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(e) = entries.iter().find(|e| e.worker == worker && e.name == name) {
            return Arc::clone(e);
        }
        let entry = Arc::new(OperatorEntry {
            worker,
            name: name.to_owned(),
            busy_ns: AtomicU64::new(0),
            schedules: AtomicU64::new(0),
        });
        entries.push(Arc::clone(&entry));
        entry
    }

    /// Every entry's values, sorted by name, then worker.
    pub fn snapshot(&self) -> Vec<OperatorValues> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out: Vec<OperatorValues> = entries
            .iter()
            .map(|e| OperatorValues {
                worker: e.worker,
                name: e.name.clone(),
                busy_ns: e.busy_ns.load(Relaxed),
                schedules: e.schedules.load(Relaxed),
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name).then(a.worker.cmp(&b.worker)));
        out
    }
}

/// Local sums for one operator id since the last publish.
#[derive(Debug)]
struct Slot {
    /// `None` for a top-level dataflow, whose time is the worker's busy time.
    entry: Option<Arc<OperatorEntry>>,
    busy_ns: u64,
    schedules: u64,
}

/// A worker's updater for [`OperatorStats`]: feed it timely's `Operates` and `Schedule`
/// events, call [`OperatorRecorder::publish`] once per flush. Not shared between threads.
#[derive(Debug)]
pub struct OperatorRecorder {
    worker: Arc<WorkerMetrics>,
    stats: Arc<OperatorStats>,
    slots: HashMap<usize, Slot>,
    /// Operators started and not yet stopped (timely nests a dataflow's children inside it).
    open: Vec<(usize, Duration)>,
    /// Busy time of top-level dataflows since the last publish.
    worker_busy_ns: u64,
}

impl OperatorRecorder {
    /// A recorder for `worker`, publishing into `stats`.
    pub fn new(worker: Arc<WorkerMetrics>, stats: Arc<OperatorStats>) -> Self {
        Self { worker, stats, slots: HashMap::new(), open: Vec::new(), worker_busy_ns: 0 }
    }

    /// An operator was created: `id` is worker-unique, `addr` its scope path (length 1 for a
    /// top-level dataflow).
    pub fn operates(&mut self, id: usize, addr: &[usize], name: &str) {
        let entry = (addr.len() > 1).then(|| self.stats.entry(self.worker.index(), name));
        self.slots.insert(id, Slot { entry, busy_ns: 0, schedules: 0 });
    }

    /// Operator `id` was scheduled at `at` (time since the worker's logging epoch).
    pub fn schedule_start(&mut self, id: usize, at: Duration) {
        self.open.push((id, at));
    }

    /// Operator `id` returned at `at`. Unknown ids (created before the recorder) are ignored.
    pub fn schedule_stop(&mut self, id: usize, at: Duration) {
        let Some(pos) = self.open.iter().rposition(|&(open, _)| open == id) else {
            return;
        };
        let started = self.open[pos].1;
        self.open.truncate(pos);
        let ns = u64::try_from(at.saturating_sub(started).as_nanos()).unwrap_or(u64::MAX);
        if let Some(slot) = self.slots.get_mut(&id) {
            slot.schedules += 1;
            if slot.entry.is_some() {
                slot.busy_ns += ns;
            } else {
                self.worker_busy_ns += ns;
            }
        }
    }

    /// Adds the local sums into the shared entries and the worker's busy time.
    pub fn publish(&mut self) {
        for slot in self.slots.values_mut() {
            if slot.schedules != 0 {
                if let Some(entry) = &slot.entry {
                    entry.add(slot.busy_ns, slot.schedules);
                }
                slot.busy_ns = 0;
                slot.schedules = 0;
            }
        }
        self.worker.add_busy_ns(std::mem::take(&mut self.worker_busy_ns));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::clock::ManualClock;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn nested_schedules_split_worker_and_operator_time() {
        let worker = Arc::new(WorkerMetrics::new(2, Arc::new(ManualClock::new(0))));
        let stats = Arc::new(OperatorStats::new());
        let mut rec = OperatorRecorder::new(Arc::clone(&worker), Arc::clone(&stats));
        rec.operates(1, &[0, 1], "Map");
        rec.operates(2, &[0, 2], "Map");
        rec.operates(3, &[0, 3], "Candles");
        rec.operates(0, &[0], "Dataflow");

        rec.schedule_start(0, ms(0));
        rec.schedule_start(1, ms(1));
        rec.schedule_stop(1, ms(3));
        rec.schedule_start(2, ms(3));
        rec.schedule_stop(2, ms(4));
        rec.schedule_start(3, ms(4));
        rec.schedule_stop(3, ms(9));
        rec.schedule_stop(0, ms(10));
        rec.schedule_stop(42, ms(11)); // unknown: ignored
        rec.publish();
        rec.publish(); // nothing new: no change

        assert_eq!(
            stats.snapshot(),
            vec![
                OperatorValues { worker: 2, name: "Candles".into(), busy_ns: 5_000_000, schedules: 1 },
                OperatorValues { worker: 2, name: "Map".into(), busy_ns: 3_000_000, schedules: 2 },
            ]
        );
        assert_eq!(worker.load().counters.busy_ns, 10_000_000);
    }
}
