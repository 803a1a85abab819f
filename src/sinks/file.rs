//! Results to CSV or NDJSON files, written by each worker to its own files (no cross-worker
//! locking): `bars`, `candles`, `signal_changes`, `late` and `dead_letters`.
//!
//! CSV `bars` columns: `symbol,ts,open,high,low,close,volume`, one column per indicator output
//! (`sma_20`, `macd`, `bb_upper`, … in the configured order), then `signal`; warm-up cells are
//! empty; `sinks.file.columns` ([`BarColumns`]) chooses which of them, in which order. `ts` is
//! written in the unit the input used (seconds for W1), else milliseconds.
//! Rows are formatted into one reusable buffer ([`FloatText`], itoa), so writing allocates
//! nothing per row.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use tickflow_operators::IndicatorSet;
use tickflow_operators::rows::{BarOut, Candle, SignalChange, timeframe_label};
use tickflow_operators::{Bar, Values};

use crate::config::FileFormat;
use crate::decode::TsUnit;
use crate::sinks::float::FloatText;

/// One column of `bars` rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BarColumn {
    /// `symbol`
    Symbol,
    /// `ts`
    Ts,
    /// `open`
    Open,
    /// `high`
    High,
    /// `low`
    Low,
    /// `close`
    Close,
    /// `volume`
    Volume,
    /// The indicator set's output column of this index (`sma_20`, ...).
    Value(usize),
    /// `signal`
    Signal,
}

/// The columns of `bars` rows, in order (`sinks.file.columns`); by default every column:
/// `symbol,ts,open,high,low,close,volume`, the indicator columns, `signal`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BarColumns(Vec<BarColumn>);

impl BarColumns {
    /// Every column of `set`'s rows, in the default order.
    pub fn all(set: &IndicatorSet) -> BarColumns {
        use BarColumn::*;
        let mut v = vec![Symbol, Ts, Open, High, Low, Close, Volume];
        v.extend((0..set.columns().len()).map(Value));
        v.push(Signal);
        BarColumns(v)
    }

    /// The columns named in `names` (each known, none twice, at least one), or one message
    /// per problem, each naming the field, the bad value and what is accepted.
    pub fn parse(names: &[String], set: &IndicatorSet) -> Result<BarColumns, Vec<String>> {
        let known = || {
            let mut k = vec!["symbol", "ts", "open", "high", "low", "close", "volume"];
            k.extend(set.columns().iter().map(String::as_str));
            k.push("signal");
            k.join(", ")
        };
        let mut errs = Vec::new();
        let mut out = Vec::with_capacity(names.len());
        if names.is_empty() {
            errs.push(format!("sinks.file.columns: empty; expected some of: {}", known()));
        }
        for (i, name) in names.iter().enumerate() {
            let col = match name.as_str() {
                "symbol" => Some(BarColumn::Symbol),
                "ts" => Some(BarColumn::Ts),
                "open" => Some(BarColumn::Open),
                "high" => Some(BarColumn::High),
                "low" => Some(BarColumn::Low),
                "close" => Some(BarColumn::Close),
                "volume" => Some(BarColumn::Volume),
                "signal" => Some(BarColumn::Signal),
                other => set.column(other).map(BarColumn::Value),
            };
            match col {
                None => errs.push(format!(
                    "sinks.file.columns[{i}]: {name:?} is not a column of the bars rows of this config; expected one \
                     of: {}",
                    known()
                )),
                Some(c) if out.contains(&c) => {
                    errs.push(format!("sinks.file.columns[{i}]: {name:?} is listed twice; list each column once"))
                }
                Some(c) => out.push(c),
            }
        }
        if errs.is_empty() { Ok(BarColumns(out)) } else { Err(errs) }
    }
}

/// Formats rows of one kind; keeps its scratch buffers.
pub struct RowFormat {
    format: FileFormat,
    /// NDJSON lines start with `"table":"<name>"` (one stream carrying every kind of row).
    tagged: bool,
    columns: Vec<String>,
    bar_columns: BarColumns,
    ts_unit: TsUnit,
    line: Vec<u8>,
    /// Whether the row being written has no field yet (no separator before the next).
    first: bool,
    /// Labels of the timeframes seen (`1m`, ...), so a candle row formats none.
    labels: Vec<(i64, String)>,
    /// The set's rule names, so a signal-change row formats none.
    rules: Vec<String>,
    float: FloatText,
}

impl RowFormat {
    /// A formatter for `set`'s columns, writing timestamps in `ts_unit`.
    pub fn new(format: FileFormat, set: &IndicatorSet, ts_unit: TsUnit) -> RowFormat {
        RowFormat::with_columns(format, set, ts_unit, BarColumns::all(set))
    }

    /// Like [`RowFormat::new`], writing only `bar_columns` in `bars` rows.
    pub fn with_columns(format: FileFormat, set: &IndicatorSet, ts_unit: TsUnit, bar_columns: BarColumns) -> RowFormat {
        RowFormat {
            format,
            tagged: false,
            columns: set.columns().to_vec(),
            bar_columns,
            ts_unit,
            line: Vec::with_capacity(512),
            first: true,
            labels: Vec::new(),
            rules: (0..set.rules().count()).map(|i| set.rule_name(i as u8)).collect(),
            float: FloatText::new(),
        }
    }

    /// Appends the label of `timeframe` (`1m`), made once per timeframe.
    fn timeframe(&mut self, k: &str, timeframe: i64) {
        self.key(k);
        let i = match self.labels.iter().position(|(t, _)| *t == timeframe) {
            Some(i) => i,
            None => {
                self.labels.push((timeframe, timeframe_label(timeframe)));
                self.labels.len() - 1
            }
        };
        let quote = self.format == FileFormat::Ndjson;
        if quote {
            self.line.push(b'"');
        }
        self.line.extend_from_slice(self.labels[i].1.as_bytes());
        if quote {
            self.line.push(b'"');
        }
    }

    fn num(&mut self, v: Option<f64>) {
        match v {
            Some(v) if v.is_finite() => self.float.write(v, &mut self.line, true),
            _ if self.format == FileFormat::Ndjson => self.line.extend_from_slice(b"null"),
            _ => {}
        }
    }

    fn key(&mut self, k: &str) {
        if !std::mem::replace(&mut self.first, false) {
            self.line.push(b',');
        }
        if self.format == FileFormat::Ndjson {
            self.line.push(b'"');
            self.line.extend_from_slice(k.as_bytes());
            self.line.extend_from_slice(b"\":");
        }
    }

    fn text(&mut self, k: &str, v: &[u8]) {
        self.key(k);
        if self.format == FileFormat::Ndjson {
            self.line.push(b'"');
            self.line.extend_from_slice(v);
            self.line.push(b'"');
        } else {
            self.line.extend_from_slice(v);
        }
    }

    fn ts(&mut self, k: &str, ms: i64) {
        self.key(k);
        let quote = self.format == FileFormat::Ndjson && self.ts_unit == TsUnit::Rfc3339;
        if quote {
            self.line.push(b'"');
        }
        self.ts_unit.format_into(ms, &mut self.line);
        if quote {
            self.line.push(b'"');
        }
    }

    fn field(&mut self, k: &str, v: Option<f64>) {
        self.key(k);
        self.num(v);
    }

    fn ohlcv(&mut self, b: &Bar) {
        self.field("open", Some(b.open));
        self.field("high", Some(b.high));
        self.field("low", Some(b.low));
        self.field("close", Some(b.close));
        self.field("volume", Some(b.volume));
    }

    fn values(&mut self, values: &Values) {
        for i in 0..self.columns.len() {
            let name = std::mem::take(&mut self.columns[i]);
            self.field(&name, values.get(i));
            self.columns[i] = name;
        }
    }

    fn begin(&mut self, table: &str) {
        self.line.clear();
        self.first = true;
        if self.format == FileFormat::Ndjson {
            self.line.push(b'{');
            if self.tagged {
                self.text("table", table.as_bytes());
            }
        }
    }

    fn end(&mut self) -> &[u8] {
        if self.format == FileFormat::Ndjson {
            self.line.push(b'}');
        }
        self.line.push(b'\n');
        &self.line
    }

    /// The name of a `bars` column.
    fn bar_column_name(&self, c: BarColumn) -> &str {
        match c {
            BarColumn::Symbol => "symbol",
            BarColumn::Ts => "ts",
            BarColumn::Open => "open",
            BarColumn::High => "high",
            BarColumn::Low => "low",
            BarColumn::Close => "close",
            BarColumn::Volume => "volume",
            BarColumn::Value(i) => &self.columns[i],
            BarColumn::Signal => "signal",
        }
    }

    /// The CSV header of `bars` rows (`None` for NDJSON).
    pub fn bars_header(&self) -> Option<String> {
        (self.format == FileFormat::Csv).then(|| {
            let names: Vec<&str> = self.bar_columns.0.iter().map(|&c| self.bar_column_name(c)).collect();
            format!("{}\n", names.join(","))
        })
    }

    /// One `bars` row.
    pub fn bar(&mut self, r: &BarOut) -> &[u8] {
        self.begin("bars");
        for i in 0..self.bar_columns.0.len() {
            match self.bar_columns.0[i] {
                BarColumn::Symbol => self.text("symbol", r.bar.symbol.as_bytes()),
                BarColumn::Ts => self.ts("ts", r.bar.ts),
                BarColumn::Open => self.field("open", Some(r.bar.open)),
                BarColumn::High => self.field("high", Some(r.bar.high)),
                BarColumn::Low => self.field("low", Some(r.bar.low)),
                BarColumn::Close => self.field("close", Some(r.bar.close)),
                BarColumn::Volume => self.field("volume", Some(r.bar.volume)),
                BarColumn::Value(k) => {
                    let name = std::mem::take(&mut self.columns[k]);
                    self.field(&name, r.values.get(k));
                    self.columns[k] = name;
                }
                BarColumn::Signal => self.text("signal", r.decision.action.as_str().as_bytes()),
            }
        }
        self.end()
    }

    /// The CSV header of `candles` rows.
    pub fn candles_header(&self) -> Option<String> {
        (self.format == FileFormat::Csv).then(|| {
            format!(
                "symbol,timeframe,ts,open,high,low,close,volume,count,volume_avg,open_avg,close_avg,window_vwap,revision,{},signal\n",
                self.columns.join(",")
            )
        })
    }

    /// One `candles` row (candle, aggregates, candle indicators).
    pub fn candle(&mut self, c: &Candle) -> &[u8] {
        self.begin("candles");
        self.text("symbol", c.symbol.as_bytes());
        self.timeframe("timeframe", c.timeframe);
        self.ts("ts", c.start);
        self.ohlcv(&c.as_bar());
        self.key("count");
        self.line.extend_from_slice(itoa::Buffer::new().format(c.count).as_bytes());
        self.field("volume_avg", Some(c.avg_volume()));
        self.field("open_avg", Some(c.avg_open()));
        self.field("close_avg", Some(c.avg_close()));
        self.field("window_vwap", c.vwap());
        self.key("revision");
        self.line.extend_from_slice(itoa::Buffer::new().format(c.revision).as_bytes());
        self.values(&c.values);
        self.text("signal", c.decision.action.as_str().as_bytes());
        self.end()
    }

    /// One `signal_changes` row.
    pub fn change(&mut self, c: &SignalChange) -> &[u8] {
        self.begin("signal_changes");
        self.text("symbol", c.symbol.as_bytes());
        self.timeframe("timeframe", c.timeframe);
        self.ts("ts", c.ts);
        self.text("from", c.from.as_str().as_bytes());
        self.text("to", c.to.action.as_str().as_bytes());
        self.key("rule");
        // A rule name is kept by index: borrowed from `self.rules` while `self.line` grows.
        let rule = c.to.rule.and_then(|i| self.rules.get(usize::from(i))).map_or(&[][..], |r| r.as_bytes());
        if self.format == FileFormat::Ndjson {
            self.line.push(b'"');
            self.line.extend_from_slice(rule);
            self.line.push(b'"');
        } else {
            self.line.extend_from_slice(rule);
        }
        self.end()
    }

    /// The CSV header of `signal_changes` rows.
    pub fn changes_header(&self) -> Option<String> {
        (self.format == FileFormat::Csv).then(|| "symbol,timeframe,ts,from,to,rule\n".to_string())
    }
}

/// One worker's result files.
pub struct FileSink {
    fmt: RowFormat,
    bars: PartFile,
    candles: PartFile,
    changes: PartFile,
    late: PartFile,
    dead: PartFile,
    /// `{"table":"late",` style prefixes when every kind shares one stream.
    tagged: bool,
}

/// When a transactional part is closed and committed (renamed to its final name).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RollPolicy {
    /// Close a part at the first checkpoint after it is this old.
    pub interval: std::time::Duration,
    /// Close a part at the first checkpoint after it reached this many bytes.
    pub bytes: u64,
}

impl Default for RollPolicy {
    fn default() -> Self {
        RollPolicy { interval: std::time::Duration::from_secs(60), bytes: 128 << 20 }
    }
}

/// The result files of one worker inside a checkpoint: the in-progress parts with their
/// durable length at the cut, and the parts closed at the cut (renamed once it completes).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileParts {
    /// The output directory.
    pub dir: String,
    /// Every part the checkpoint covers.
    pub entries: Vec<PartEntry>,
}

impl FileParts {
    /// Makes every listed part durable up to (at least) its listed length, and the directory
    /// entries of new parts: fsync each, then the directory. Safe on another thread while the
    /// worker appends to the same files (the parts are renamed only after the checkpoint is
    /// published, which waits for this).
    pub fn sync(&self) -> io::Result<()> {
        if self.entries.is_empty() {
            return Ok(());
        }
        let dir = Path::new(&self.dir);
        for e in &self.entries {
            let path = dir.join(&e.in_progress);
            File::open(&path).and_then(|f| f.sync_data()).map_err(|err| with_path(&path, err))?;
        }
        sync_dir(dir)
    }
}

/// One part file in a checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PartEntry {
    /// The file name while in progress (`.bars-w0-00000003.csv.inprogress`).
    pub in_progress: String,
    /// The committed file name (`bars-w0-00000003.csv`).
    pub name: String,
    /// Bytes durable at the cut: a restore truncates the file to this length.
    pub len: u64,
    /// Closed at this checkpoint: renamed to `name` once the checkpoint completes.
    pub closed: bool,
}

struct OpenPart {
    writer: BufWriter<File>,
    in_progress: String,
    name: String,
    len: u64,
    opened: std::time::Instant,
}

/// One kind of result of one worker: a plain file (replay), standard output, or
/// transactional parts (`run` with checkpoints).
struct PartFile {
    kind: &'static str,
    ext: &'static str,
    header: Option<String>,
    worker: usize,
    target: Target,
}

enum Target {
    Direct(BufWriter<Box<dyn Write>>),
    /// Whole blocks of rows appended to a file other workers append to as well.
    Shared {
        file: SharedFile,
        buf: Vec<u8>,
    },
    Parts {
        dir: PathBuf,
        epoch: u64,
        roll: RollPolicy,
        open: Option<OpenPart>,
        closed: Vec<PartEntry>,
    },
}

fn create(dir: &Path, name: &str, header: Option<&str>) -> io::Result<BufWriter<Box<dyn Write>>> {
    let path = dir.join(name);
    let file = File::create(&path).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    let mut w: BufWriter<Box<dyn Write>> = BufWriter::with_capacity(1 << 20, Box::new(file));
    if let Some(h) = header {
        w.write_all(h.as_bytes())?;
    }
    Ok(w)
}

/// One result file that every worker of a process appends to (a replay's `--output`), so no
/// pass concatenates per-worker files after the run. Each worker formats rows into its own
/// buffer and appends it as one block of whole lines under a lock held for that one `write`;
/// a block is [`SharedFile::BLOCK`] bytes, so the lock is taken about once per 10,000 rows.
/// Rows of different workers interleave block by block; each worker's rows (and so each
/// symbol's) keep their order.
#[derive(Clone)]
pub struct SharedFile(std::sync::Arc<std::sync::Mutex<File>>);

impl SharedFile {
    /// The size of the blocks workers append.
    pub const BLOCK: usize = 1 << 20;

    /// Creates `path` and writes `header` (if any) to it.
    pub fn create(path: &Path, header: Option<&str>) -> io::Result<SharedFile> {
        let mut file = File::create(path).map_err(|e| with_path(path, e))?;
        if let Some(h) = header {
            file.write_all(h.as_bytes()).map_err(|e| with_path(path, e))?;
        }
        Ok(SharedFile(std::sync::Arc::new(std::sync::Mutex::new(file))))
    }

    fn append(&self, block: &[u8]) -> io::Result<()> {
        let mut f = self.0.lock().map_err(|_| io::Error::other("a worker failed while writing the result file"))?;
        f.write_all(block)
    }
}

/// The committed name of the part of `kind` that worker `worker` opened in `epoch`.
pub fn part_name(kind: &str, worker: usize, epoch: u64, ext: &str) -> String {
    format!("{kind}-w{worker}-{epoch:08}.{ext}")
}

/// The in-progress name of a part (hidden, so readers of the directory see committed parts only).
pub fn in_progress_name(name: &str) -> String {
    format!(".{name}.inprogress")
}

/// The epoch a part file (committed or in progress) was opened in, if `file` is one.
pub fn part_epoch(file: &str) -> Option<u64> {
    let base = file.strip_prefix('.').and_then(|f| f.strip_suffix(".inprogress")).unwrap_or(file);
    let stem = base.rsplit_once('.')?.0;
    let (rest, epoch) = stem.rsplit_once('-')?;
    let (_, worker) = rest.rsplit_once("-w")?;
    (epoch.len() == 8 && worker.bytes().all(|b| b.is_ascii_digit())).then(|| epoch.parse().ok())?
}

fn with_path(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// Fsyncs a directory, so renames and new files in it survive a crash.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| with_path(dir, e))
}

impl PartFile {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match &mut self.target {
            Target::Direct(w) => w.write_all(bytes),
            Target::Shared { file, buf } => {
                if buf.len() + bytes.len() > SharedFile::BLOCK && !buf.is_empty() {
                    file.append(buf)?;
                    buf.clear();
                }
                buf.extend_from_slice(bytes);
                Ok(())
            }
            Target::Parts { dir, epoch, open, .. } => {
                if open.is_none() {
                    let name = part_name(self.kind, self.worker, *epoch, self.ext);
                    let in_progress = in_progress_name(&name);
                    let path = dir.join(&in_progress);
                    let file = File::create(&path).map_err(|e| with_path(&path, e))?;
                    let mut writer = BufWriter::with_capacity(1 << 20, file);
                    let mut len = 0;
                    if let Some(h) = &self.header {
                        writer.write_all(h.as_bytes())?;
                        len = h.len() as u64;
                    }
                    *open = Some(OpenPart { writer, in_progress, name, len, opened: std::time::Instant::now() });
                }
                // Just opened if it was missing.
                let part = open.as_mut().expect("opened above");
                part.writer.write_all(bytes)?;
                part.len += bytes.len() as u64;
                Ok(())
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.target {
            Target::Direct(w) => w.flush(),
            Target::Shared { file, buf } => {
                file.append(buf)?;
                buf.clear();
                Ok(())
            }
            Target::Parts { open, .. } => open.as_mut().map_or(Ok(()), |p| p.writer.flush()),
        }
    }

    /// Makes what was written durable and lists the parts for checkpoint `k`; closes the open
    /// part when the roll policy (or `last`) says so. Files written after this go to epoch
    /// `k + 1`'s parts.
    fn precommit(&mut self, k: u64, last: bool, entries: &mut Vec<PartEntry>) -> io::Result<bool> {
        let Target::Parts { dir, epoch, roll, open, closed } = &mut self.target else { return Ok(false) };
        *epoch = k + 1;
        let mut created = false;
        if let Some(part) = open.as_mut() {
            // Flushed here, fsynced by [`FileParts::sync`] off the worker thread before the
            // checkpoint that lists it can be published.
            let path = dir.join(&part.in_progress);
            part.writer.flush().map_err(|e| with_path(&path, e))?;
            created = true;
            let close = last || part.len >= roll.bytes || part.opened.elapsed() >= roll.interval;
            let entry = PartEntry {
                in_progress: part.in_progress.clone(),
                name: part.name.clone(),
                len: part.len,
                closed: close,
            };
            entries.push(entry.clone());
            if close {
                *open = None;
                closed.push(entry);
            }
        }
        Ok(created)
    }

    /// Renames the parts closed at checkpoints up to `k` (now complete) to their final names.
    fn commit(&mut self) -> io::Result<bool> {
        let Target::Parts { dir, closed, .. } = &mut self.target else { return Ok(false) };
        let any = !closed.is_empty();
        for e in closed.drain(..) {
            let from = dir.join(&e.in_progress);
            std::fs::rename(&from, dir.join(&e.name)).map_err(|err| with_path(&from, err))?;
        }
        Ok(any)
    }

    /// The run is complete: everything written is final.
    fn finish(&mut self) -> io::Result<bool> {
        if let Target::Parts { dir, open, closed, .. } = &mut self.target {
            if let Some(mut part) = open.take() {
                part.writer.flush()?;
                let path = dir.join(&part.in_progress);
                part.writer.get_ref().sync_data().map_err(|e| with_path(&path, e))?;
                closed.push(PartEntry { in_progress: part.in_progress, name: part.name, len: part.len, closed: true });
            }
        }
        self.commit()
    }

    fn dir(&self) -> Option<&Path> {
        match &self.target {
            Target::Parts { dir, .. } => Some(dir),
            Target::Direct(_) | Target::Shared { .. } => None,
        }
    }
}

impl FileSink {
    /// Creates `dir` and this worker's files in it (plain files, for replays).
    pub fn create(
        dir: &Path,
        worker: usize,
        format: FileFormat,
        set: &IndicatorSet,
        ts_unit: TsUnit,
        columns: BarColumns,
    ) -> io::Result<FileSink> {
        FileSink::create_with(dir, worker, format, set, ts_unit, columns, None)
    }

    /// A replay's files: like [`FileSink::create`], but `bars` rows go to `bars` (the output
    /// file every worker shares, its header already written).
    pub fn replay(
        dir: &Path,
        worker: usize,
        format: FileFormat,
        set: &IndicatorSet,
        ts_unit: TsUnit,
        columns: BarColumns,
        bars: SharedFile,
    ) -> io::Result<FileSink> {
        FileSink::create_with(dir, worker, format, set, ts_unit, columns, Some(bars))
    }

    fn create_with(
        dir: &Path,
        worker: usize,
        format: FileFormat,
        set: &IndicatorSet,
        ts_unit: TsUnit,
        columns: BarColumns,
        shared: Option<SharedFile>,
    ) -> io::Result<FileSink> {
        std::fs::create_dir_all(dir)?;
        let ext = if format == FileFormat::Csv { "csv" } else { "ndjson" };
        let fmt = RowFormat::with_columns(format, set, ts_unit, columns);
        let direct = |kind: &'static str, ext: &'static str, header: Option<String>| -> io::Result<PartFile> {
            let w = create(dir, &format!("{kind}-w{worker}.{ext}"), header.as_deref())?;
            Ok(PartFile { kind, ext, header, worker, target: Target::Direct(w) })
        };
        let bars = match shared {
            Some(file) => PartFile {
                kind: "bars",
                ext,
                header: None,
                worker,
                target: Target::Shared { file, buf: Vec::with_capacity(SharedFile::BLOCK) },
            },
            None => direct("bars", ext, fmt.bars_header())?,
        };
        Ok(FileSink {
            bars,
            candles: direct("candles", ext, fmt.candles_header())?,
            changes: direct("signal_changes", ext, fmt.changes_header())?,
            late: direct("late", "ndjson", None)?,
            dead: direct("dead_letters", "ndjson", None)?,
            fmt,
            tagged: false,
        })
    }

    /// This worker's transactional result parts in `dir`, starting at `epoch`: rows go to
    /// hidden in-progress parts, made durable at every checkpoint, closed by `roll` and
    /// renamed to `{kind}-w{worker}-{epoch}.{ext}` once the checkpoint that closed them
    /// completed ([`FileSink::precommit`], [`FileSink::commit`]).
    #[allow(clippy::too_many_arguments)]
    pub fn transactional(
        dir: &Path,
        worker: usize,
        epoch: u64,
        roll: RollPolicy,
        format: FileFormat,
        set: &IndicatorSet,
        ts_unit: TsUnit,
        columns: BarColumns,
    ) -> io::Result<FileSink> {
        std::fs::create_dir_all(dir).map_err(|e| with_path(dir, e))?;
        let ext = if format == FileFormat::Csv { "csv" } else { "ndjson" };
        let fmt = RowFormat::with_columns(format, set, ts_unit, columns);
        let parts = |kind: &'static str, ext: &'static str, header: Option<String>| PartFile {
            kind,
            ext,
            header,
            worker,
            target: Target::Parts { dir: dir.to_path_buf(), epoch, roll, open: None, closed: Vec::new() },
        };
        Ok(FileSink {
            bars: parts("bars", ext, fmt.bars_header()),
            candles: parts("candles", ext, fmt.candles_header()),
            changes: parts("signal_changes", ext, fmt.changes_header()),
            late: parts("late", "ndjson", None),
            dead: parts("dead_letters", "ndjson", None),
            fmt,
            tagged: false,
        })
    }

    /// Every kind of row as NDJSON on standard output, each line tagged with its table
    /// (`{"table":"bars",...}`); whole lines only, so workers' lines never interleave.
    pub fn stdout(set: &IndicatorSet, ts_unit: TsUnit) -> FileSink {
        let mut fmt = RowFormat::new(FileFormat::Ndjson, set, ts_unit);
        fmt.tagged = true;
        let out = |kind: &'static str| PartFile {
            kind,
            ext: "ndjson",
            header: None,
            worker: 0,
            target: Target::Direct(BufWriter::with_capacity(1 << 16, Box::new(io::stdout()))),
        };
        FileSink {
            bars: out("bars"),
            candles: out("candles"),
            changes: out("signal_changes"),
            late: out("late"),
            dead: out("dead_letters"),
            fmt,
            tagged: true,
        }
    }

    fn all(&mut self) -> [&mut PartFile; 5] {
        [&mut self.bars, &mut self.candles, &mut self.changes, &mut self.late, &mut self.dead]
    }

    /// Checkpoint `k` is cut: flushes every open part and lists them with their length
    /// (closing those the roll policy says to close, or all with `last`). Call
    /// [`FileParts::sync`] before the checkpoint may be published.
    pub fn precommit(&mut self, k: u64, last: bool) -> io::Result<FileParts> {
        let mut entries = Vec::new();
        let mut dir = None;
        for f in self.all() {
            f.precommit(k, last, &mut entries)?;
            dir = dir.or_else(|| f.dir().map(Path::to_path_buf));
        }
        Ok(FileParts { dir: dir.map(|d| d.display().to_string()).unwrap_or_default(), entries })
    }

    /// The checkpoint covering every closed part is complete: commit them.
    pub fn commit(&mut self) -> io::Result<()> {
        let mut any = false;
        let mut dir = None;
        for f in self.all() {
            any |= f.commit()?;
            dir = dir.or_else(|| f.dir().map(Path::to_path_buf));
        }
        match (any, dir) {
            (true, Some(d)) => sync_dir(&d),
            _ => Ok(()),
        }
    }

    /// The run is complete (its input ended): every part is final.
    pub fn finish(&mut self) -> io::Result<()> {
        let mut any = false;
        let mut dir = None;
        for f in self.all() {
            f.flush()?;
            any |= f.finish()?;
            dir = dir.or_else(|| f.dir().map(Path::to_path_buf));
        }
        match (any, dir) {
            (true, Some(d)) => sync_dir(&d),
            _ => Ok(()),
        }
    }

    /// Writes one enriched bar (and its signal change, if any).
    pub fn bar(&mut self, r: &BarOut) -> io::Result<()> {
        self.bars.write_all(self.fmt.bar(r))?;
        if let Some(c) = r.signal_change() {
            self.changes.write_all(self.fmt.change(&c))?;
        }
        Ok(())
    }

    /// Writes one candle (and its signal change, if any).
    pub fn candle(&mut self, c: &Candle) -> io::Result<()> {
        self.candles.write_all(self.fmt.candle(c))?;
        if let Some(ch) = c.signal_change() {
            self.changes.write_all(self.fmt.change(&ch))?;
        }
        Ok(())
    }

    /// Records a bar too late to process (timeframe 0 = per-bar indicators).
    pub fn late(&mut self, bar: &Bar, timeframe: i64) -> io::Result<()> {
        let line = format!(
            concat!(
                r#"{{{}"symbol":"{}","ts":{},"timeframe":"{}","open":{},"high":{},"low":{},"close":{},"volume":{}}}"#,
                "\n"
            ),
            if self.tagged { r#""table":"late","# } else { "" },
            bar.symbol,
            bar.ts,
            timeframe_label(timeframe),
            bar.open,
            bar.high,
            bar.low,
            bar.close,
            bar.volume
        );
        self.late.write_all(line.as_bytes())
    }

    /// Records an invalid input record with the reason.
    pub fn dead_letter(&mut self, source: &str, reason: &str, payload: &[u8]) -> io::Result<()> {
        let payload = String::from_utf8_lossy(&payload[..payload.len().min(4096)]);
        let line = if self.tagged {
            serde_json::json!({ "table": "dead_letters", "source": source, "reason": reason, "payload": payload })
        } else {
            serde_json::json!({ "source": source, "reason": reason, "payload": payload })
        };
        self.dead.write_all(format!("{line}\n").as_bytes())
    }

    /// Flushes every file.
    pub fn flush(&mut self) -> io::Result<()> {
        for w in self.all() {
            w.flush()?;
        }
        Ok(())
    }
}

/// What [`recover_dir`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Parts truncated to their checkpointed length and committed.
    pub restored: usize,
    /// Files written after the cut, removed.
    pub removed: usize,
    /// Parts the checkpoint lists that are not in this directory (another machine's).
    pub missing: usize,
}

/// Before a run resumes from checkpoint `k` (`None`: starts without one): makes `dir` hold
/// exactly the results the checkpoint covers. Every part the checkpoint lists is truncated
/// to its durable length and committed; parts opened after the cut, and in-progress parts
/// the checkpoint does not list, are removed. Committed parts from before the cut are never
/// touched. Idempotent, so every process may run it on a shared directory.
pub fn recover_dir(dir: &Path, k: Option<u64>, parts: &[FileParts]) -> io::Result<Recovered> {
    let mut report = Recovered::default();
    if !dir.exists() {
        return Ok(report);
    }
    let mut listed = std::collections::HashSet::new();
    for e in parts.iter().flat_map(|p| &p.entries) {
        listed.insert(e.in_progress.clone());
        listed.insert(e.name.clone());
        // Every process of a cluster may run this on a shared directory at once: a file
        // another process already renamed or removed is not an error.
        let (from, to) = (dir.join(&e.in_progress), dir.join(&e.name));
        let mut done = false;
        for path in [&from, &to] {
            let f = match std::fs::OpenOptions::new().write(true).open(path) {
                Ok(f) => f,
                Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                Err(err) => return Err(with_path(path, err)),
            };
            if f.metadata()?.len() > e.len {
                f.set_len(e.len).map_err(|err| with_path(path, err))?;
            }
            f.sync_all().map_err(|err| with_path(path, err))?;
            if path == &from {
                match std::fs::rename(&from, &to) {
                    Ok(()) => {}
                    Err(err) if err.kind() == io::ErrorKind::NotFound && to.exists() => {}
                    Err(err) => return Err(with_path(&from, err)),
                }
            }
            done = true;
            break;
        }
        if done {
            report.restored += 1;
        } else {
            report.missing += 1;
        }
    }
    for entry in std::fs::read_dir(dir).map_err(|e| with_path(dir, e))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(epoch) = part_epoch(&name) else { continue };
        if listed.contains(&name) {
            continue;
        }
        let uncommitted = name.ends_with(".inprogress");
        if uncommitted || k.is_some_and(|k| epoch > k) {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => report.removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(with_path(&entry.path(), e)),
            }
        }
    }
    sync_dir(dir)?;
    Ok(report)
}
