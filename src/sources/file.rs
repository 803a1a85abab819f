//! File replay: NDJSON and CSV files of bars, read by every worker in parallel.
//!
//! An NDJSON file is cut into 256 KiB chunks aligned to line starts; worker `w` of `P` reads
//! chunks `w, w+P, w+2P, …`, so all workers decode at once and move through a time-sorted
//! file together. A CSV file is read whole by worker `i % P` (its header names the columns).
//! A worker merges its streams by event time (k-way merge on the next bar of each stream),
//! so several time-sorted files replay in global event-time order.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use tickflow_operators::{Bar, Symbol, TimeBounds};

use crate::decode::{CsvReader, DecodeError, TsUnit, decode_json_line_with_unit};

/// Chunk size for splitting NDJSON files across workers. Workers move through a time-sorted
/// file a chunk apart, and everything between the slowest and the fastest waits in the
/// operators for the watermark: the smaller the chunk, the less is held (BENCHMARKS.md,
/// "Peak memory").
pub const CHUNK: u64 = 256 << 10;

/// One record read from a file: a bar, or why the line is not one (with the raw line).
pub enum FileRecord {
    /// A valid bar.
    Bar(Bar),
    /// An invalid line: where, why, and its bytes.
    Invalid {
        /// `path@byte offset` or `path:line`.
        location: String,
        /// The decode error.
        error: DecodeError,
        /// The raw line.
        payload: Vec<u8>,
    },
}

enum Reader {
    Ndjson { path: PathBuf, file: BufReader<File>, chunks: Vec<u64>, pos: u64, end: u64, buf: Vec<u8> },
    Csv { path: PathBuf, csv: Box<CsvReader<BufReader<File>>> },
}

/// One input stream of a worker, with its next record peeked.
pub struct FileStream {
    reader: Reader,
    bounds: TimeBounds,
    /// The unit the timestamps were written in (first record's).
    pub ts_unit: Option<TsUnit>,
    peeked: Option<FileRecord>,
    done: bool,
}

fn is_csv(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"))
}

/// The unit the inputs write their timestamps in, read from the text of the first records
/// whose timestamp field parses (a CSV's `ts`/`timestamp` column, an NDJSON object's
/// `timestamp`/`ts`/`local_time`), whether or not the rest of the record is a valid bar: so
/// the unit of the results never depends on which rows were valid. `None` when the first
/// 1000 lines of every input have no readable timestamp.
pub fn sniff_ts_unit(paths: &[PathBuf]) -> Option<TsUnit> {
    use crate::decode::timestamp::{parse_numeric, parse_str};
    for path in paths {
        let Ok(f) = File::open(path) else { continue };
        let mut lines = BufReader::new(f).lines().map_while(Result::ok).filter(|l| !l.trim().is_empty()).take(1000);
        if is_csv(path) {
            let Some(header) = lines.next() else { continue };
            let col = header.split(',').position(|h| {
                let h = h.trim().trim_matches('"').trim();
                h.eq_ignore_ascii_case("ts") || h.eq_ignore_ascii_case("timestamp")
            });
            let Some(col) = col else { continue };
            for line in lines {
                if let Some(field) = line.split(',').nth(col) {
                    if let Ok((_, unit)) = parse_str(field.trim().trim_matches('"')) {
                        return Some(unit);
                    }
                }
            }
        } else {
            for line in lines {
                let Ok(serde_json::Value::Object(obj)) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                for key in ["timestamp", "ts", "local_time"] {
                    let unit = match obj.get(key) {
                        Some(serde_json::Value::Number(n)) => parse_numeric(&n.to_string()).ok().map(|(_, u)| u),
                        Some(serde_json::Value::String(t)) => parse_str(t).ok().map(|(_, u)| u),
                        _ => None,
                    };
                    if unit.is_some() {
                        return unit;
                    }
                }
            }
        }
    }
    None
}

/// The streams worker `index` of `peers` reads from `paths`.
pub fn streams_for_worker(
    paths: &[PathBuf],
    symbol: Option<Symbol>,
    bounds: TimeBounds,
    index: usize,
    peers: usize,
) -> io::Result<Vec<FileStream>> {
    let mut out = Vec::new();
    let ctx = |p: &Path, e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", p.display()));
    for (i, path) in paths.iter().enumerate() {
        if is_csv(path) {
            if i % peers != index {
                continue;
            }
            let f = File::open(path).map_err(|e| ctx(path, e))?;
            let csv = CsvReader::new(BufReader::with_capacity(1 << 20, f), symbol, bounds)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", path.display())))?;
            out.push(FileStream::new(Reader::Csv { path: path.clone(), csv: Box::new(csv) }, bounds));
        } else {
            let f = File::open(path).map_err(|e| ctx(path, e))?;
            let len = f.metadata().map_err(|e| ctx(path, e))?.len();
            let chunks: Vec<u64> =
                (0..len.div_ceil(CHUNK)).filter(|k| (k % peers as u64) as usize == index).rev().collect();
            let reader = Reader::Ndjson {
                path: path.clone(),
                file: BufReader::with_capacity(CHUNK as usize, f),
                chunks,
                pos: 0,
                end: 0,
                buf: Vec::with_capacity(512),
            };
            out.push(FileStream::new(reader, bounds));
        }
    }
    Ok(out)
}

impl FileStream {
    fn new(reader: Reader, bounds: TimeBounds) -> FileStream {
        FileStream { reader, bounds, ts_unit: None, peeked: None, done: false }
    }

    /// The event time of the next bar, reading ahead if needed; `None` when exhausted.
    /// An invalid record peeks as `Some(i64::MIN)` so it is taken at once.
    pub fn peek_ts(&mut self) -> io::Result<Option<i64>> {
        if self.peeked.is_none() && !self.done {
            self.peeked = self.read()?;
            self.done = self.peeked.is_none();
        }
        Ok(match &self.peeked {
            Some(FileRecord::Bar(b)) => Some(b.ts),
            Some(FileRecord::Invalid { .. }) => Some(i64::MIN),
            None => None,
        })
    }

    /// Takes the peeked record.
    pub fn take(&mut self) -> Option<FileRecord> {
        self.peeked.take()
    }

    fn read(&mut self) -> io::Result<Option<FileRecord>> {
        match &mut self.reader {
            Reader::Csv { path, csv } => match csv.next() {
                None => Ok(None),
                Some(Ok(bar)) => {
                    self.ts_unit = self.ts_unit.or(csv.ts_unit());
                    Ok(Some(FileRecord::Bar(bar)))
                }
                Some(Err(error)) => Ok(Some(FileRecord::Invalid {
                    location: format!("{}:{}", path.display(), csv.line_number()),
                    error,
                    payload: csv.line().to_vec(),
                })),
            },
            Reader::Ndjson { path, file, chunks, pos, end, buf } => loop {
                if *pos >= *end {
                    let Some(k) = chunks.pop() else { return Ok(None) };
                    let start = k * CHUNK;
                    *end = start + CHUNK;
                    file.seek(SeekFrom::Start(start.saturating_sub(1)))?;
                    *pos = start.saturating_sub(1);
                    if start > 0 {
                        // Skip the line that began in the previous chunk (it belongs there):
                        // if the byte before `start` is a newline, a line begins exactly here.
                        buf.clear();
                        let n = file.read_until(b'\n', buf)? as u64;
                        *pos += n;
                    } else {
                        *pos = 0;
                    }
                    continue;
                }
                let line_start = *pos;
                // A line wholly inside the reader's buffer is decoded where it lies; one that
                // crosses the buffer's end is gathered into `buf` first.
                let avail = file.fill_buf()?;
                let (line, n, in_place): (&[u8], usize, bool) = match memchr::memchr(b'\n', avail) {
                    Some(k) => (&avail[..=k], k + 1, true),
                    None => {
                        buf.clear();
                        let n = file.read_until(b'\n', buf)?;
                        (&buf[..], n, false)
                    }
                };
                if n == 0 {
                    *end = 0;
                    *pos = 0;
                    if chunks.is_empty() {
                        return Ok(None);
                    }
                    continue;
                }
                *pos += n as u64;
                let record = if line.trim_ascii().is_empty() {
                    None
                } else {
                    Some(match decode_json_line_with_unit(line, line_start, &self.bounds) {
                        Ok((bar, unit)) => {
                            self.ts_unit.get_or_insert(unit);
                            FileRecord::Bar(bar)
                        }
                        Err(mut error) => FileRecord::Invalid {
                            location: format!("{}@byte {line_start}", path.display()),
                            // The decoder was handed the line's byte offset, not a record number.
                            error: {
                                error.location = crate::decode::Location::ByteOffset(line_start);
                                error
                            },
                            payload: line.trim_ascii_end().to_vec(),
                        },
                    })
                };
                if in_place {
                    file.consume(n);
                }
                match record {
                    Some(r) => return Ok(Some(r)),
                    None => continue,
                }
            },
        }
    }
}

/// Merges a worker's streams by event time.
pub struct FileSource {
    streams: Vec<FileStream>,
}

impl FileSource {
    /// Over `streams`.
    pub fn new(streams: Vec<FileStream>) -> FileSource {
        FileSource { streams }
    }

    /// The next record in event-time order across streams; `None` when all are exhausted.
    pub fn next_record(&mut self) -> io::Result<Option<FileRecord>> {
        let mut best: Option<(usize, i64)> = None;
        for (i, s) in self.streams.iter_mut().enumerate() {
            if let Some(ts) = s.peek_ts()? {
                if best.is_none_or(|(_, b)| ts < b) {
                    best = Some((i, ts));
                }
            }
        }
        Ok(best.and_then(|(i, _)| self.streams[i].take()))
    }

    /// The least event time any stream can still yield (`None` when exhausted).
    pub fn low_watermark(&mut self) -> io::Result<Option<i64>> {
        let mut low: Option<i64> = None;
        for s in &mut self.streams {
            if let Some(ts) = s.peek_ts()? {
                low = Some(low.map_or(ts, |l| l.min(ts)));
            }
        }
        Ok(low)
    }

    /// The timestamp unit of the first stream that has seen one.
    pub fn ts_unit(&self) -> Option<TsUnit> {
        self.streams.iter().find_map(|s| s.ts_unit)
    }
}
