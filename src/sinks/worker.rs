//! One worker's outputs: the file sink and the QuestDB sink handle behind one interface, plus
//! the worker's metrics. Operators call it per record; it batches, and publishes counters and
//! hands QuestDB batches over once per batch ([`WorkerOutputs::end_batch`]).

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tickflow_operators::Bar;
use tickflow_operators::rows::{BarOut, Candle};

use crate::sinks::file::FileSink;
use crate::sinks::questdb::{DeadLetter, RowBatch, SinkHandle, Tables};
use crate::status::{LocalCounters, LocalLatency, WorkerMetrics};

/// Acknowledged batches per worker: entry `w` holds 1 + the number of worker `w`'s last
/// batch that QuestDB acknowledged (0: none yet). Filled by the sink's `on_ack` callback from
/// batch sequence numbers made by [`batch_seq`].
pub type AckTable = Arc<Vec<AtomicU64>>;

/// The sequence number of batch `n` of worker `worker` (the worker in the high bits).
pub fn batch_seq(worker: usize, n: u64) -> u64 {
    ((worker as u64) << 40) | (n & ((1 << 40) - 1))
}

/// Records an acknowledged sequence number in `acks` (the sink calls this per batch, in order).
pub fn record_ack(acks: &AckTable, seq: u64) {
    let worker = (seq >> 40) as usize;
    if let Some(slot) = acks.get(worker) {
        slot.store((seq & ((1 << 40) - 1)) + 1, Ordering::Release);
    }
}

/// QuestDB rows of this worker, encoded into a batch handed to the sink thread.
pub struct QuestDbOut {
    /// The process's sink handle.
    pub handle: SinkHandle,
    /// Table encoders.
    pub tables: Arc<Tables>,
    acks: AckTable,
    batch: Option<RowBatch>,
    /// Number of the batch being filled.
    batch_no: u64,
    /// (batch number, rows, event times of its bars) handed over and not yet acknowledged.
    unacked: VecDeque<(u64, u64, Vec<i64>)>,
    /// Emptied event-time buffers of acknowledged batches, for reuse (no allocation per batch
    /// in the steady state).
    spare: Vec<Vec<i64>>,
}

impl QuestDbOut {
    /// Rows go to `handle`, encoded by `tables`; acknowledgements arrive in `acks`.
    pub fn new(handle: SinkHandle, tables: Arc<Tables>, acks: AckTable) -> QuestDbOut {
        QuestDbOut { handle, tables, acks, batch: None, batch_no: 0, unacked: VecDeque::new(), spare: Vec::new() }
    }

    fn batch(&mut self) -> &mut RowBatch {
        let handle = &self.handle;
        self.batch.get_or_insert_with(|| handle.batch())
    }
}

/// The wall clock, from the worker's metrics when it has them (tests pass a manual clock).
fn now_ms(metrics: Option<&WorkerMetrics>) -> i64 {
    metrics.map_or_else(
        || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64),
        WorkerMetrics::now_ms,
    )
}

/// Everything one worker writes.
pub struct WorkerOutputs {
    file: Option<FileSink>,
    questdb: Option<QuestDbOut>,
    metrics: Option<Arc<WorkerMetrics>>,
    worker: usize,
    /// Counted locally, published per batch.
    pub counters: LocalCounters,
    /// Rows that could not be encoded for QuestDB (counted as sink errors, logged).
    encode_errors: u64,
    /// Reads the number of symbols with state on this worker (each symbol lives on one
    /// worker) for the `symbols_tracked` gauge, once per batch; `None` when it cannot be read
    /// right now.
    symbols: Option<Box<dyn Fn() -> Option<u64>>>,
    /// Rows written to the result files since the last flush: durable (and counted as
    /// `sink_rows`) at the flush, when files are the only sink.
    file_rows: u64,
    /// Event times of the bars of the batch being filled (the buffer is reused).
    batch_ts: Vec<i64>,
    /// Latency observations, published per batch.
    latency: LocalLatency,
}

/// A failure writing results: the run cannot continue without losing data.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// Writing a result file failed.
    #[error("writing result files: {0}")]
    File(#[from] io::Error),
    /// The QuestDB sink stopped (its last error says why).
    #[error("the QuestDB sink stopped: {0}")]
    QuestDb(String),
}

impl WorkerOutputs {
    /// Outputs of one worker.
    pub fn new(
        worker: usize,
        file: Option<FileSink>,
        questdb: Option<QuestDbOut>,
        metrics: Option<Arc<WorkerMetrics>>,
    ) -> WorkerOutputs {
        WorkerOutputs {
            file,
            questdb,
            metrics,
            worker,
            counters: LocalCounters::default(),
            encode_errors: 0,
            symbols: None,
            file_rows: 0,
            batch_ts: Vec::new(),
            latency: LocalLatency::default(),
        }
    }

    /// The number of the output batch being filled: rows written now are durable once
    /// [`WorkerOutputs::durable`] says so for this number.
    pub fn batch_no(&self) -> u64 {
        self.questdb.as_ref().map_or(0, |q| q.batch_no)
    }

    /// Whether everything up to and including batch `n` is durably written: files are flushed
    /// at every [`WorkerOutputs::end_batch`]; QuestDB batches once the sink acknowledged them.
    /// Fails when the QuestDB sink stopped, since then nothing will be acknowledged any more.
    pub fn durable(&mut self, n: u64) -> Result<bool, OutputError> {
        let Some(q) = self.questdb.as_mut() else { return Ok(true) };
        let acked = q.acks.get(self.worker).map_or(0, |a| a.load(Ordering::Acquire));
        let mut now = None;
        while let Some(&(b, rows, _)) = q.unacked.front() {
            if b >= acked {
                break;
            }
            let Some((_, _, mut ts)) = q.unacked.pop_front() else { break };
            self.counters.sink_rows += rows;
            self.counters.sink_batches += 1;
            let now = *now.get_or_insert_with(|| now_ms(self.metrics.as_deref()));
            for t in ts.drain(..) {
                self.latency.observe(now - t);
            }
            q.spare.push(ts);
        }
        if now.is_some() {
            if let Some(m) = &self.metrics {
                self.latency.publish(m.latency());
            }
        }
        if n < acked || (n == q.batch_no && q.batch.as_ref().is_none_or(|b| b.rows() == 0) && q.unacked.is_empty()) {
            return Ok(true);
        }
        if let Some(failed) = q.handle.stats().snapshot().failed {
            return Err(OutputError::QuestDb(failed));
        }
        Ok(false)
    }

    /// Where the `symbols_tracked` gauge is read from, once per batch (not per bar).
    pub fn track_symbols(&mut self, symbols: impl Fn() -> Option<u64> + 'static) {
        self.symbols = Some(Box::new(symbols));
    }

    /// An enriched bar (and its signal change).
    pub fn bar(&mut self, row: &BarOut) -> Result<(), OutputError> {
        self.counters.bars_out += 1;
        self.batch_ts.push(row.bar.ts);
        if row.changed_from.is_some() {
            self.counters.signal_changes += 1;
        }
        if let Some(f) = self.file.as_mut() {
            f.bar(row)?;
            self.file_rows += 1;
        }
        if let Some(q) = self.questdb.as_mut() {
            let tables = q.tables.clone();
            let batch = q.batch();
            let mut ok = tables.bar(batch, row).is_ok();
            if let Some(change) = row.signal_change() {
                ok &= tables.signal_change(batch, &change).is_ok();
            }
            if !ok {
                self.encode_errors += 1;
            }
        }
        Ok(())
    }

    /// A candle (first emission or correction) with its aggregates.
    pub fn candle(&mut self, c: &Candle) -> Result<(), OutputError> {
        self.counters.candles_out += 1;
        if c.changed_from.is_some() {
            self.counters.signal_changes += 1;
        }
        if let Some(f) = self.file.as_mut() {
            f.candle(c)?;
            self.file_rows += 1;
        }
        if let Some(q) = self.questdb.as_mut() {
            let tables = q.tables.clone();
            let batch = q.batch();
            let mut ok = tables.candle(batch, c).is_ok() & tables.aggregate(batch, c).is_ok();
            if let Some(change) = c.signal_change() {
                ok &= tables.signal_change(batch, &change).is_ok();
            }
            if !ok {
                self.encode_errors += 1;
            }
        }
        Ok(())
    }

    /// A bar too late for per-bar indicators (timeframe 0) or for a window.
    pub fn late(&mut self, bar: &Bar, timeframe: i64) -> Result<(), OutputError> {
        self.counters.bars_late += 1;
        if let Some(f) = self.file.as_mut() {
            f.late(bar, timeframe)?;
            self.file_rows += 1;
        }
        Ok(())
    }

    /// An invalid input record. `event_ms` (the event time of the last valid bar before it in
    /// its partition) is its QuestDB timestamp, so a record dead-lettered again after a
    /// restore replaces itself (`DEDUP UPSERT KEYS(ts, source)`); without one, the wall clock.
    pub fn dead_letter(
        &mut self,
        source: &str,
        event_ms: Option<i64>,
        reason: &str,
        payload: &[u8],
    ) -> Result<(), OutputError> {
        self.counters.bars_invalid += 1;
        self.counters.dead_letters += 1;
        if let Some(f) = self.file.as_mut() {
            f.dead_letter(source, reason, payload)?;
            self.file_rows += 1;
        }
        if let Some(q) = self.questdb.as_mut() {
            let ts_ms = event_ms.unwrap_or_else(|| {
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
            });
            let row = DeadLetter {
                ts_ms,
                source: source.to_string(),
                reason: reason.to_string(),
                payload: String::from_utf8_lossy(payload).into_owned(),
            };
            let tables = q.tables.clone();
            if tables.dead_letter(q.batch(), &row).is_err() {
                self.encode_errors += 1;
            }
        }
        Ok(())
    }

    /// Ends a batch: hands QuestDB rows to the sink (blocking while its queue is full — this is
    /// the backpressure that slows the dataflow to what QuestDB absorbs) and publishes counters.
    pub fn end_batch(&mut self) -> Result<(), OutputError> {
        if let Some(q) = self.questdb.as_mut() {
            if let Some(mut batch) = q.batch.take() {
                if batch.rows() > 0 {
                    batch.set_seq(batch_seq(self.worker, q.batch_no));
                    let ts = std::mem::replace(&mut self.batch_ts, q.spare.pop().unwrap_or_default());
                    q.unacked.push_back((q.batch_no, batch.rows() as u64, ts));
                    q.batch_no += 1;
                    q.handle.send(batch).map_err(|e| OutputError::QuestDb(e.to_string()))?;
                } else {
                    q.batch = Some(batch);
                }
            }
        }
        if self.encode_errors > 0 {
            tracing::warn!(rows = self.encode_errors, "rows that cannot be encoded for QuestDB were skipped");
            self.counters.sink_errors += std::mem::take(&mut self.encode_errors);
        }
        if let Some(f) = self.file.as_mut() {
            f.flush()?;
            if self.questdb.is_none() {
                // Flushed is what the file sink acknowledges (checkpoints add the fsync).
                if self.file_rows > 0 {
                    self.counters.sink_rows += self.file_rows;
                    self.counters.sink_batches += 1;
                }
                if !self.batch_ts.is_empty() {
                    let now = now_ms(self.metrics.as_deref());
                    for t in self.batch_ts.drain(..) {
                        self.latency.observe(now - t);
                    }
                    if let Some(m) = &self.metrics {
                        self.latency.publish(m.latency());
                    }
                }
            }
        }
        self.file_rows = 0;
        if self.questdb.is_none() {
            // No sink acknowledges these bars (stdout or no sink): nothing to measure.
            self.batch_ts.clear();
        }
        if let Some(q) = self.questdb.as_ref() {
            self.counters.backlog = Some(q.unacked.iter().map(|u| u.1).sum());
        }
        if let Some(n) = self.symbols.as_ref().and_then(|f| f()) {
            self.counters.symbols_tracked = Some(n);
        }
        if let Some(m) = &self.metrics {
            self.counters.publish(m);
        }
        Ok(())
    }

    /// Checkpoint `k` is cut and everything before it is durable at the sinks: makes the
    /// result files durable and lists them for the checkpoint (`last`: close every part).
    pub fn precommit(&mut self, k: u64, last: bool) -> Result<crate::sinks::file::FileParts, OutputError> {
        self.end_batch()?;
        match self.file.as_mut() {
            Some(f) => Ok(f.precommit(k, last)?),
            None => Ok(Default::default()),
        }
    }

    /// The checkpoint that closed result parts is complete: commit (rename) them.
    pub fn commit(&mut self) -> Result<(), OutputError> {
        match self.file.as_mut() {
            Some(f) => Ok(f.commit()?),
            None => Ok(()),
        }
    }

    /// Flushes files and the QuestDB batch at the end of a run; result parts become final.
    pub fn finish(&mut self) -> Result<(), OutputError> {
        self.end_batch()?;
        if let Some(f) = self.file.as_mut() {
            f.finish()?;
        }
        if let Some(q) = self.questdb.as_ref() {
            q.handle.flush().map_err(|e| OutputError::QuestDb(e.to_string()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FileFormat;
    use crate::decode::TsUnit;
    use crate::status::ManualClock;
    use tickflow_operators::signal::{Action, Decision};
    use tickflow_operators::{IndicatorSet, Symbol, Values};

    /// Regression: `/status` showed `sink rows 0` while the file sink wrote.
    #[test]
    fn file_rows_count_as_sink_rows_and_their_latency_is_observed_at_the_flush() {
        let dir = tempfile::tempdir().unwrap();
        let set = IndicatorSet::standard();
        let file = FileSink::create(
            dir.path(),
            0,
            FileFormat::Csv,
            &set,
            TsUnit::Millis,
            crate::sinks::file::BarColumns::all(&set),
        )
        .unwrap();
        let metrics = Arc::new(WorkerMetrics::new(0, Arc::new(ManualClock::new(1_700_000_000_250))));
        let mut out = WorkerOutputs::new(0, Some(file), None, Some(metrics.clone()));
        let bar = Bar::new(Symbol::new("AAPL").unwrap(), 1_700_000_000_000, 1.0, 2.0, 0.5, 1.5, 10.0);
        let mut values = Values::default();
        set.update(&mut set.new_state(), &bar, &mut values);
        let row = BarOut { bar, values, decision: Decision { action: Action::Hold, rule: None }, changed_from: None };
        out.bar(&row).unwrap();
        out.bar(&BarOut { bar: Bar { ts: bar.ts + 100, ..bar }, ..row }).unwrap();
        out.late(&bar, 0).unwrap();
        out.end_batch().unwrap();
        let v = metrics.load();
        assert_eq!((v.counters.sink_rows, v.counters.sink_batches), (3, 1), "2 bars and a late row, one flush");
        let latency = metrics.latency().load();
        assert_eq!(latency.count(), 2, "bars only");
        assert_eq!(latency.sum_ms, 250 + 150);
        out.end_batch().unwrap();
        assert_eq!(metrics.load().counters.sink_batches, 1, "an empty flush is not a batch");
    }
}
