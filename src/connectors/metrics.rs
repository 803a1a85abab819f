//! Connector metrics: one event per poll that both logs and counts (never per bar), and
//! the Prometheus families. Labelled by exchange and outcome only (never by symbol).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use super::config::Exchange;
use super::poller::Outcome;
use crate::prometheus::{Exposition, Kind};

/// The request outcomes counted, in metric order ([`Outcome::kind`]).
pub const OUTCOMES: [&str; 4] = ["ok", "rate_limited", "transient", "rejected"];

/// Counters of one connector.
#[derive(Debug, Default)]
pub struct ConnectorMetrics {
    requests: [AtomicU64; OUTCOMES.len()],
    bars: AtomicU64,
    dead_letters: AtomicU64,
    duplicates: AtomicU64,
    forming: AtomicU64,
    request_ns: AtomicU64,
}

/// One finished poll (a request was made).
#[derive(Debug)]
pub struct PollCompleted<'a> {
    /// The exchange.
    pub exchange: Exchange,
    /// The symbol polled.
    pub symbol: &'a str,
    /// What happened.
    pub outcome: &'a Outcome,
    /// New closed bars.
    pub bars: usize,
    /// New invalid rows.
    pub dead_letters: usize,
    /// Time of the request and its decoding.
    pub elapsed: Duration,
}

impl PollCompleted<'_> {
    /// Logs the poll (debug when fine, info with dead letters, warn on failures) and counts
    /// it.
    pub fn emit(&self, m: &ConnectorMetrics) {
        let (exchange, symbol, bars, dead_letters) = (self.exchange.name(), self.symbol, self.bars, self.dead_letters);
        let elapsed_ms = u64::try_from(self.elapsed.as_millis()).unwrap_or(u64::MAX);
        match self.outcome {
            Outcome::Idle => return,
            Outcome::Rows { received, duplicates, forming } => {
                m.duplicates.fetch_add(*duplicates as u64, Relaxed);
                m.forming.fetch_add(*forming as u64, Relaxed);
                if dead_letters > 0 {
                    tracing::info!(
                        exchange,
                        symbol,
                        received,
                        bars,
                        dead_letters,
                        elapsed_ms,
                        "poll: invalid rows dead-lettered"
                    );
                } else {
                    tracing::debug!(exchange, symbol, received, bars, duplicates, forming, elapsed_ms, "poll done");
                }
            }
            Outcome::RateLimited { message, delay } => {
                let delay_ms = delay.as_millis() as u64;
                tracing::warn!(exchange, symbol, delay_ms, %message, "rate limited; every request waits");
            }
            Outcome::Transient { message, delay } => {
                let delay_ms = delay.as_millis() as u64;
                tracing::warn!(exchange, symbol, delay_ms, %message, "request failed; backing off");
            }
            Outcome::Rejected { message, retry_at } => {
                tracing::warn!(exchange, symbol, retry_at, %message, "exchange rejected the symbol; parked until retry_at");
            }
        }
        if let Some(i) = OUTCOMES.iter().position(|k| *k == self.outcome.kind()) {
            m.requests[i].fetch_add(1, Relaxed);
        }
        m.bars.fetch_add(bars as u64, Relaxed);
        m.dead_letters.fetch_add(dead_letters as u64, Relaxed);
        m.request_ns.fetch_add(u64::try_from(self.elapsed.as_nanos()).unwrap_or(u64::MAX), Relaxed);
    }
}

impl ConnectorMetrics {
    /// Requests that ended with `outcome` (an [`OUTCOMES`] name).
    pub fn requests(&self, outcome: &str) -> u64 {
        OUTCOMES.iter().position(|k| *k == outcome).map_or(0, |i| self.requests[i].load(Relaxed))
    }

    /// Closed bars emitted.
    pub fn bars(&self) -> u64 {
        self.bars.load(Relaxed)
    }

    /// Invalid rows emitted for the dead-letter topic.
    pub fn dead_letters(&self) -> u64 {
        self.dead_letters.load(Relaxed)
    }

    /// Rows dropped as already emitted.
    pub fn duplicates(&self) -> u64 {
        self.duplicates.load(Relaxed)
    }

    /// Rows skipped as not closed yet.
    pub fn forming(&self) -> u64 {
        self.forming.load(Relaxed)
    }

    /// Adds the families, each labelled with the exchange.
    pub fn render_into(&self, e: &mut Exposition, exchange: Exchange) {
        let ex = exchange.name();
        let mut requests = e.family("connector_requests_total", Kind::Counter, "Exchange requests, by outcome.");
        for (i, k) in OUTCOMES.iter().enumerate() {
            requests.sample(&[("exchange", ex), ("outcome", k)], self.requests[i].load(Relaxed));
        }
        let families = [
            ("bars_total", "Closed bars emitted.", self.bars()),
            ("dead_letters_total", "Invalid rows dead-lettered.", self.dead_letters()),
            ("duplicates_total", "Rows dropped as already emitted.", self.duplicates()),
            ("forming_total", "Rows skipped as not closed yet.", self.forming()),
        ];
        for (name, help, v) in families {
            e.family(&format!("connector_{name}"), Kind::Counter, help).sample(&[("exchange", ex)], v);
        }
    }
}
