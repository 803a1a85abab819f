//! The sink's counters and the internal events that update them.
//!
//! Each event method both logs (structured fields, then a sentence) and counts, and is called
//! once per flush or retry, never per row. With a [`ProcessMetrics`] attached
//! ([`SinkBuilder::report_to`](super::SinkBuilder::report_to)) every event is also published
//! there as it happens: reachability (`/ready`), retries, failures, the last error and the
//! queued rows (`/status`, `/metrics`).

use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::status::ProcessMetrics;

/// Live counters of one sink, shared by its thread and its handles.
#[derive(Debug, Default)]
pub struct SinkStats {
    rows_written: AtomicU64,
    batches: AtomicU64,
    bytes: AtomicU64,
    retries: AtomicU64,
    rows_rejected: AtomicU64,
    last_flush_ms: AtomicI64,
    /// Highest acknowledged sequence number plus one; 0 = none yet.
    acked_seq_plus_one: AtomicU64,
    pub(crate) queue_rows: AtomicUsize,
    last_error: Mutex<Option<String>>,
    failed: Mutex<Option<String>>,
    /// Where health is published, if anywhere.
    status: Option<Arc<ProcessMetrics>>,
}

/// A point-in-time copy of [`SinkStats`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Rows QuestDB acknowledged (HTTP) or that were written to the socket (TCP).
    pub rows_written: u64,
    /// Flushes that completed.
    pub batches: u64,
    /// Bytes of the rows in completed flushes.
    pub bytes: u64,
    /// Transient failures that were retried.
    pub retries: u64,
    /// Rows QuestDB rejected and that went to the rejected-row callback.
    pub rows_rejected: u64,
    /// When the last flush completed, ms since the epoch (0 = never).
    pub last_flush_ms: i64,
    /// Highest sequence number acknowledged (see [`RowBatch::set_seq`](super::RowBatch::set_seq)).
    pub acked_seq: Option<u64>,
    /// Rows accepted by `send` and not yet written or rejected.
    pub queue_rows: usize,
    /// The last error seen, transient or not.
    pub last_error: Option<String>,
    /// Set when the sink stopped on an error it cannot recover from.
    pub failed: Option<String>,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding this lock cannot leave the Option inconsistent.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl SinkStats {
    /// Counters that also publish the sink's health to `status`.
    pub fn reporting_to(status: Option<Arc<ProcessMetrics>>) -> SinkStats {
        SinkStats { status, ..SinkStats::default() }
    }

    /// Event: the server answered (tables created, or a write went through).
    pub(crate) fn reachable(&self) {
        if let Some(m) = &self.status {
            let ended = m.sink_health().succeeded();
            if !m.readiness().sink_reachable {
                tracing::info!(failures = ended, "QuestDB reachable; the sink writes again.");
            }
            m.set_sink_reachable(true);
        }
    }

    /// Event: rows waiting in the sink changed.
    pub(crate) fn set_queue_rows(&self, rows: usize) {
        self.queue_rows.store(rows, Relaxed);
        if let Some(m) = &self.status {
            m.sink_health().set_queued_rows(rows as u64);
        }
    }

    /// Event: a write went through after `failures` failed attempts over `took`.
    pub(crate) fn recovered(&self, what: &str, failures: u32, took: Duration) {
        tracing::info!(what, failures, took_ms = took.as_millis() as u64, "QuestDB request succeeded after retries.");
    }

    /// A copy of every counter.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            rows_written: self.rows_written.load(Relaxed),
            batches: self.batches.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            retries: self.retries.load(Relaxed),
            rows_rejected: self.rows_rejected.load(Relaxed),
            last_flush_ms: self.last_flush_ms.load(Relaxed),
            acked_seq: self.acked_seq(),
            queue_rows: self.queue_rows.load(Relaxed),
            last_error: lock(&self.last_error).clone(),
            failed: lock(&self.failed).clone(),
        }
    }

    /// The highest acknowledged sequence number: every batch sent with a sequence number up
    /// to this one has been written (or its rejected rows handed to the callback).
    pub fn acked_seq(&self) -> Option<u64> {
        self.acked_seq_plus_one.load(Relaxed).checked_sub(1)
    }

    pub(crate) fn ack(&self, seq: u64) {
        self.acked_seq_plus_one.fetch_max(seq.saturating_add(1), Relaxed);
    }

    /// Event: a flush completed.
    pub(crate) fn flushed(&self, rows: usize, rejected: usize, bytes: usize, took: Duration) {
        let written = rows - rejected;
        self.rows_written.fetch_add(written as u64, Relaxed);
        self.batches.fetch_add(1, Relaxed);
        self.bytes.fetch_add(bytes as u64, Relaxed);
        self.last_flush_ms.store(now_ms(), Relaxed);
        self.reachable();
        tracing::debug!(rows = written, rejected, bytes, took_ms = took.as_millis() as u64, "QuestDB flush completed.");
    }

    /// Event: rows were rejected by QuestDB (counted per flush).
    pub(crate) fn rejected(&self, rows: usize) {
        self.rows_rejected.fetch_add(rows as u64, Relaxed);
    }

    /// Event: a transient failure, retried after `delay`.
    pub(crate) fn retry(&self, what: &str, error: &str, attempt: u32, delay: Duration) {
        self.retries.fetch_add(1, Relaxed);
        *lock(&self.last_error) = Some(error.to_string());
        tracing::warn!(what, error, attempt, delay_ms = delay.as_millis() as u64, "QuestDB request failed; retrying.");
        if let Some(m) = &self.status {
            m.sink_health().retried();
            m.set_sink_reachable(false);
            m.record_sink_error(format!(
                "QuestDB {what} failed (attempt {attempt}, next in at most {} ms): {error}",
                delay.as_millis()
            ));
        }
    }

    /// Event: the sink stopped on an unrecoverable error.
    pub(crate) fn failed(&self, error: &str) {
        *lock(&self.last_error) = Some(error.to_string());
        *lock(&self.failed) = Some(error.to_string());
        tracing::error!(error, "QuestDB sink stopped; nothing further is acknowledged.");
        if let Some(m) = &self.status {
            m.sink_health().failed();
            m.set_sink_reachable(false);
            m.record_sink_error(format!("QuestDB sink stopped: {error}"));
        }
    }
}
