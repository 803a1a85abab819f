//! Readers for the sources inside the cluster process: file replay and the generator.

use tickflow_operators::Bar;
use tickflow_operators::time::watermark_of;

use super::driver::{DONE, ReadOutcome, Reader, SourceError};
use super::file::{FileRecord, FileSource};
use super::generator::MarketGenerator;
use crate::checkpoint::SourcePosition;
use crate::recovery::SourceState;

/// The synthetic market, this worker's symbols. Its watermark trails the newest bar by the
/// watermark delay; its position is the generator's state (restorable into the same shape).
pub struct GeneratorReader {
    generator: MarketGenerator,
    worker: usize,
    delay: i64,
    max_seen: i64,
    ended: bool,
}

impl GeneratorReader {
    /// Reads `generator` (already restored, when resuming) for worker `worker`.
    pub fn new(generator: MarketGenerator, worker: usize, delay_ms: i64) -> GeneratorReader {
        GeneratorReader { generator, worker, delay: delay_ms.max(0), max_seen: i64::MIN, ended: false }
    }
}

impl Reader for GeneratorReader {
    fn read(
        &mut self,
        budget: usize,
        _now_ms: i64,
        _time: tickflow_operators::dataflow::Time,
        out: &mut Vec<Bar>,
        _dead: &mut crate::sources::driver::DeadLetters<'_>,
    ) -> Result<ReadOutcome, SourceError> {
        let before = out.len();
        let n = self.generator.fill(out, budget);
        for b in &out[before..] {
            self.max_seen = self.max_seen.max(b.ts);
        }
        self.ended |= n < budget;
        Ok(ReadOutcome { records: n, more: n == budget, exhausted: self.ended })
    }

    fn watermark(&mut self, _now_ms: i64) -> Result<Option<u64>, SourceError> {
        if self.ended {
            return Ok(Some(DONE));
        }
        Ok((self.max_seen > i64::MIN).then(|| watermark_of(self.max_seen.saturating_sub(self.delay))))
    }

    fn position(&self) -> SourceState {
        SourceState::Generator(self.generator.state())
    }

    fn describe(&self) -> Vec<SourcePosition> {
        vec![SourcePosition {
            source: format!("generator:w{}", self.worker),
            position: format!("round {}", self.generator.state().round()),
            watermark_ms: (self.max_seen > i64::MIN).then_some(self.max_seen),
        }]
    }
}

/// Files (NDJSON, CSV) merged by event time. With no watermark delay the watermark is the
/// next bar's time (time-sorted inputs), else the newest time minus the delay. Not
/// resumable from a checkpoint (its position is not recorded): `run` with a file source
/// takes no checkpoints; `replay` never does.
pub struct FileReader {
    files: FileSource,
    delay: i64,
    max_seen: i64,
    ended: bool,
}

impl FileReader {
    /// Reads `files`.
    pub fn new(files: FileSource, delay_ms: i64) -> FileReader {
        FileReader { files, delay: delay_ms, max_seen: i64::MIN, ended: false }
    }
}

fn io(e: std::io::Error) -> SourceError {
    SourceError(format!("reading input: {e}"))
}

impl Reader for FileReader {
    fn read(
        &mut self,
        budget: usize,
        _now_ms: i64,
        _time: tickflow_operators::dataflow::Time,
        out: &mut Vec<Bar>,
        dead: &mut crate::sources::driver::DeadLetters<'_>,
    ) -> Result<ReadOutcome, SourceError> {
        let mut records = 0;
        while records < budget {
            match self.files.next_record().map_err(io)? {
                None => {
                    self.ended = true;
                    break;
                }
                Some(FileRecord::Bar(b)) => {
                    self.max_seen = self.max_seen.max(b.ts);
                    out.push(b);
                }
                Some(FileRecord::Invalid { location, error, payload }) => {
                    dead(&location, (self.max_seen > i64::MIN).then_some(self.max_seen), &error, &payload)
                }
            }
            records += 1;
        }
        Ok(ReadOutcome { records, more: records == budget, exhausted: self.ended })
    }

    fn watermark(&mut self, _now_ms: i64) -> Result<Option<u64>, SourceError> {
        if self.ended {
            return Ok(Some(DONE));
        }
        let mut wm = self.max_seen.saturating_sub(self.delay);
        if self.delay == 0 {
            if let Some(low) = self.files.low_watermark().map_err(io)? {
                wm = low;
            }
        }
        Ok(Some(watermark_of(wm)))
    }

    fn position(&self) -> SourceState {
        SourceState::None
    }

    fn describe(&self) -> Vec<SourcePosition> {
        Vec::new()
    }
}
