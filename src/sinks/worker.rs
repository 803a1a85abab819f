//! One worker's outputs: the file sink and the QuestDB sink handle behind one interface, plus
//! the worker's metrics. Operators call it per record; it batches, and publishes counters and
//! hands QuestDB batches over once per batch ([`WorkerOutputs::end_batch`]).

use std::io;
use std::sync::Arc;

use tickflow_operators::Bar;
use tickflow_operators::rows::{BarOut, Candle};

use crate::sinks::file::FileSink;
use crate::sinks::questdb::{DeadLetter, RowBatch, SinkHandle, Tables};
use crate::status::{LocalCounters, WorkerMetrics};

/// QuestDB rows of this worker, encoded into a batch handed to the sink thread.
pub struct QuestDbOut {
    /// The process's sink handle.
    pub handle: SinkHandle,
    /// Table encoders.
    pub tables: Arc<Tables>,
    batch: Option<RowBatch>,
}

impl QuestDbOut {
    /// Rows go to `handle`, encoded by `tables`.
    pub fn new(handle: SinkHandle, tables: Arc<Tables>) -> QuestDbOut {
        QuestDbOut { handle, tables, batch: None }
    }

    fn batch(&mut self) -> &mut RowBatch {
        let handle = &self.handle;
        self.batch.get_or_insert_with(|| handle.batch())
    }
}

/// Everything one worker writes.
pub struct WorkerOutputs {
    file: Option<FileSink>,
    questdb: Option<QuestDbOut>,
    metrics: Option<Arc<WorkerMetrics>>,
    /// Counted locally, published per batch.
    pub counters: LocalCounters,
    /// Set when an encode error made a row unwritable (it is dead-lettered instead).
    encode_errors: u64,
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
        file: Option<FileSink>,
        questdb: Option<QuestDbOut>,
        metrics: Option<Arc<WorkerMetrics>>,
    ) -> WorkerOutputs {
        WorkerOutputs { file, questdb, metrics, counters: LocalCounters::default(), encode_errors: 0 }
    }

    /// An enriched bar (and its signal change).
    pub fn bar(&mut self, row: &BarOut) -> Result<(), OutputError> {
        self.counters.bars_out += 1;
        if row.changed_from.is_some() {
            self.counters.signal_changes += 1;
        }
        if let Some(f) = self.file.as_mut() {
            f.bar(row)?;
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
        }
        Ok(())
    }

    /// An invalid input record.
    pub fn dead_letter(&mut self, source: &str, reason: &str, payload: &[u8]) -> Result<(), OutputError> {
        self.counters.bars_invalid += 1;
        self.counters.dead_letters += 1;
        if let Some(f) = self.file.as_mut() {
            f.dead_letter(source, reason, payload)?;
        }
        if let Some(q) = self.questdb.as_mut() {
            let ts_ms =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
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
            if let Some(batch) = q.batch.take() {
                if batch.rows() > 0 {
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
            f.flush_if_due()?;
        }
        if let Some(m) = &self.metrics {
            self.counters.publish(m);
        }
        Ok(())
    }

    /// Flushes files and the QuestDB batch at the end of a run.
    pub fn finish(&mut self) -> Result<(), OutputError> {
        self.end_batch()?;
        if let Some(f) = self.file.as_mut() {
            f.flush()?;
        }
        if let Some(q) = self.questdb.as_ref() {
            q.handle.flush().map_err(|e| OutputError::QuestDb(e.to_string()))?;
        }
        Ok(())
    }
}
