//! Rates over sliding windows, from a small ring of counter samples.
//!
//! A sampler (the status server's 1 s tokio interval, or a test by hand) pushes a [`Sample`]
//! of the process totals; a scrape computes rates between the newest sample and the newest one
//! at least a window older. Workers pay nothing for this.

use std::collections::VecDeque;

use serde::Serialize;

/// The longest window rates are asked for; older samples are dropped.
pub const MAX_WINDOW_MS: i64 = 60_000;

/// Hard cap on samples kept, in case the sampler runs much faster than once a second.
const MAX_SAMPLES: usize = 1_024;

/// Process totals at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// Wall-clock time of the sample, ms since the epoch.
    pub at_ms: i64,
    /// Total bars read.
    pub bars_in: u64,
    /// Total bars passed on after validation.
    pub bars_out: u64,
    /// Total candles emitted.
    pub candles_out: u64,
    /// Total rows written by the sink.
    pub sink_rows: u64,
    /// Busy nanoseconds per local worker, in local worker order.
    pub busy_ns: Vec<u64>,
}

/// Rates over one window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rates {
    /// The span actually covered, ms: the asked window, or less while history is short.
    pub window_ms: i64,
    /// Bars read per second.
    pub bars_in_per_s: f64,
    /// Bars passed on per second.
    pub bars_out_per_s: f64,
    /// Candles emitted per second.
    pub candles_out_per_s: f64,
    /// Sink rows written per second.
    pub sink_rows_per_s: f64,
    /// Busy time per local worker as a percentage of the window (0–100).
    pub worker_busy_pct: Vec<f64>,
}

/// A ring of recent samples.
#[derive(Debug, Default)]
pub struct RateRing {
    samples: VecDeque<Sample>,
}

impl RateRing {
    /// An empty ring.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of samples held.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether no sample is held.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Adds a sample. A sample older than the newest one (clock stepped back) clears the ring,
    /// so rates never span a jump backwards.
    pub fn push(&mut self, sample: Sample) {
        match self.samples.back() {
            Some(b) if b.at_ms > sample.at_ms => self.samples.clear(),
            // Two samples at one instant carry no rate: keep the newer values.
            Some(b) if b.at_ms == sample.at_ms => {
                self.samples.pop_back();
            }
            _ => {}
        }
        let newest = sample.at_ms;
        self.samples.push_back(sample);
        // Keep one sample at or before the longest window's start, drop what is older.
        while self.samples.len() > 2 && self.samples[1].at_ms <= newest - MAX_WINDOW_MS {
            self.samples.pop_front();
        }
        while self.samples.len() > MAX_SAMPLES {
            self.samples.pop_front();
        }
    }

    /// Rates between the newest sample and the newest sample at least `window_ms` older (or
    /// the oldest one, if history is shorter). `None` with fewer than two samples.
    pub fn rates(&self, window_ms: i64) -> Option<Rates> {
        let last = self.samples.back()?;
        let start = last.at_ms - window_ms;
        let base = self.samples.iter().rev().find(|s| s.at_ms <= start).or_else(|| self.samples.front())?;
        let span_ms = last.at_ms - base.at_ms;
        if span_ms <= 0 {
            return None;
        }
        let per_s = |now: u64, then: u64| now.saturating_sub(then) as f64 * 1_000.0 / span_ms as f64;
        let worker_busy_pct = last
            .busy_ns
            .iter()
            .zip(base.busy_ns.iter().chain(std::iter::repeat(&0)))
            .map(|(&now, &then)| {
                let pct = now.saturating_sub(then) as f64 / (span_ms as f64 * 1e6) * 100.0;
                pct.min(100.0)
            })
            .collect();
        Some(Rates {
            window_ms: span_ms,
            bars_in_per_s: per_s(last.bars_in, base.bars_in),
            bars_out_per_s: per_s(last.bars_out, base.bars_out),
            candles_out_per_s: per_s(last.candles_out, base.candles_out),
            sink_rows_per_s: per_s(last.sink_rows, base.sink_rows),
            worker_busy_pct,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at_ms: i64, bars_in: u64, busy_ns: u64) -> Sample {
        Sample { at_ms, bars_in, bars_out: bars_in / 2, candles_out: 0, sink_rows: 0, busy_ns: vec![busy_ns] }
    }

    #[test]
    fn no_rates_without_two_samples() {
        let mut ring = RateRing::new();
        assert_eq!(ring.rates(10_000), None);
        ring.push(sample(0, 0, 0));
        assert_eq!(ring.rates(10_000), None);
    }

    #[test]
    fn rates_over_exact_windows() {
        let mut ring = RateRing::new();
        // One sample a second; 100 bars/s for 60 s, then 1000 bars/s for 10 s.
        let mut bars = 0;
        for t in 0..=70 {
            ring.push(sample(t * 1_000, bars, t as u64 * 250_000_000));
            bars += if t < 60 { 100 } else { 1_000 };
        }
        let r10 = ring.rates(10_000).unwrap();
        assert_eq!(r10.window_ms, 10_000);
        assert_eq!(r10.bars_in_per_s, 1_000.0);
        assert_eq!(r10.bars_out_per_s, 500.0);
        assert_eq!(r10.worker_busy_pct, vec![25.0]);
        let r60 = ring.rates(60_000).unwrap();
        assert_eq!(r60.window_ms, 60_000);
        // 50 s at 100/s + 10 s at 1000/s over 60 s.
        assert_eq!(r60.bars_in_per_s, (50.0 * 100.0 + 10.0 * 1_000.0) / 60.0);
        assert!(ring.len() <= 62, "old samples are dropped, kept {}", ring.len());
    }

    #[test]
    fn short_history_uses_the_span_it_has() {
        let mut ring = RateRing::new();
        ring.push(sample(1_000, 0, 0));
        ring.push(sample(4_000, 300, 0));
        let r = ring.rates(10_000).unwrap();
        assert_eq!(r.window_ms, 3_000);
        assert_eq!(r.bars_in_per_s, 100.0);
    }

    #[test]
    fn clock_stepping_back_resets_history() {
        let mut ring = RateRing::new();
        ring.push(sample(10_000, 0, 0));
        ring.push(sample(11_000, 100, 0));
        ring.push(sample(5_000, 200, 0));
        assert_eq!(ring.len(), 1);
        assert_eq!(ring.rates(10_000), None);
    }

    #[test]
    fn same_instant_sample_replaces_the_last() {
        let mut ring = RateRing::new();
        ring.push(sample(0, 0, 0));
        ring.push(sample(1_000, 50, 0));
        ring.push(sample(1_000, 100, 0));
        assert_eq!(ring.len(), 2);
        assert_eq!(ring.rates(10_000).unwrap().bars_in_per_s, 100.0);
    }
}
