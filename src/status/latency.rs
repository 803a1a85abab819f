//! End-to-end latency: from a bar's event time to the sink's acknowledgement of its row
//! (file flushed, QuestDB answered 204), as a Prometheus histogram so p50/p99 come from
//! `histogram_quantile()`.
//!
//! A worker observes into a plain [`LocalLatency`] (array adds, no atomics) for the rows of a
//! batch when the batch is acknowledged, and publishes it into its [`LatencyHistogram`]
//! (relaxed atomic buckets) once per batch, as the counters are. On a live feed (Kafka, the
//! gateway, the generator on the wall clock) event time is ingest time, so this is the
//! pipeline's latency; a replay of history lands in the `+Inf` bucket.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Upper bounds of the buckets, in milliseconds (the last bucket, `+Inf`, is implicit).
pub const BOUNDS_MS: [u64; 16] =
    [1, 2, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 300_000];

const BUCKETS: usize = BOUNDS_MS.len() + 1;

fn bucket(ms: u64) -> usize {
    BOUNDS_MS.partition_point(|&b| b < ms)
}

/// A worker's not yet published observations.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LocalLatency {
    counts: [u64; BUCKETS],
    sum_ms: u64,
}

impl LocalLatency {
    /// One row acknowledged `ms` after its event time (negative: event time ahead of the
    /// wall clock, counted as 0).
    pub fn observe(&mut self, ms: i64) {
        let ms = ms.max(0) as u64;
        self.counts[bucket(ms)] += 1;
        self.sum_ms = self.sum_ms.saturating_add(ms);
    }

    /// Adds the observations into `target` (relaxed atomics) and resets `self`.
    pub fn publish(&mut self, target: &LatencyHistogram) {
        for (slot, n) in target.counts.iter().zip(&mut self.counts) {
            if *n > 0 {
                slot.fetch_add(std::mem::take(n), Relaxed);
            }
        }
        if self.sum_ms > 0 {
            target.sum_ms.fetch_add(std::mem::take(&mut self.sum_ms), Relaxed);
        }
    }
}

/// The shared histogram of one worker (read by `/metrics`).
#[derive(Debug, Default)]
pub struct LatencyHistogram {
    counts: [AtomicU64; BUCKETS],
    sum_ms: AtomicU64,
}

/// A snapshot: cumulative counts per bound (`le`), the last one `+Inf` (= the count).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LatencyValues {
    /// Observations `<= BOUNDS_MS[i]`; the last entry counts all of them.
    pub cumulative: [u64; BUCKETS],
    /// Sum of all observations, ms.
    pub sum_ms: u64,
}

impl LatencyValues {
    /// Adds `other` (for a process-wide sum over workers).
    pub fn add(&mut self, other: &LatencyValues) {
        for (a, b) in self.cumulative.iter_mut().zip(&other.cumulative) {
            *a += b;
        }
        self.sum_ms += other.sum_ms;
    }

    /// How many rows were observed.
    pub fn count(&self) -> u64 {
        self.cumulative[BUCKETS - 1]
    }
}

impl LatencyHistogram {
    /// Reads every bucket once (relaxed), cumulatively.
    pub fn load(&self) -> LatencyValues {
        let mut v = LatencyValues { sum_ms: self.sum_ms.load(Relaxed), ..LatencyValues::default() };
        let mut total = 0;
        for (c, slot) in v.cumulative.iter_mut().zip(&self.counts) {
            total += slot.load(Relaxed);
            *c = total;
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_cumulative_buckets_once_published() {
        let h = LatencyHistogram::default();
        let mut local = LocalLatency::default();
        for ms in [0, 1, 2, 3, 40, 999_999, -5] {
            local.observe(ms);
        }
        assert_eq!(h.load().count(), 0, "nothing before publish");
        local.publish(&h);
        assert_eq!(local, LocalLatency::default(), "publish resets the local buckets");
        let v = h.load();
        assert_eq!(v.cumulative[0], 3, "le 1 ms: 0, 1 and the negative one");
        assert_eq!(v.cumulative[1], 4, "le 2 ms");
        assert_eq!(v.cumulative[2], 5, "le 5 ms");
        assert_eq!(v.cumulative[5], 6, "le 50 ms");
        assert_eq!(v.cumulative[BOUNDS_MS.len() - 1], 6, "le 300 s");
        assert_eq!(v.count(), 7, "+Inf");
        assert_eq!(v.sum_ms, 1 + 2 + 3 + 40 + 999_999);
    }
}
