//! Results to CSV or NDJSON files, written by each worker to its own files (no cross-worker
//! locking): `bars`, `candles`, `signal_changes`, `late` and `dead_letters`.
//!
//! CSV `bars` columns: `symbol,ts,open,high,low,close,volume`, one column per indicator output
//! (`sma_20`, `macd`, `bb_upper`, … in the configured order), then `signal`; warm-up cells are
//! empty. `ts` is written in the unit the input used (seconds for W1), else milliseconds.
//! Rows are formatted into one reusable buffer (ryu/itoa), so writing allocates nothing per row.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use tickflow_operators::IndicatorSet;
use tickflow_operators::rows::{BarOut, Candle, SignalChange, timeframe_label};
use tickflow_operators::{Bar, Values};

use crate::config::FileFormat;
use crate::decode::TsUnit;

/// Formats rows of one kind; keeps its scratch buffers.
pub struct RowFormat {
    format: FileFormat,
    /// NDJSON lines start with `"table":"<name>"` (one stream carrying every kind of row).
    tagged: bool,
    columns: Vec<String>,
    ts_unit: TsUnit,
    line: String,
    ryu: ryu::Buffer,
}

impl RowFormat {
    /// A formatter for `set`'s columns, writing timestamps in `ts_unit`.
    pub fn new(format: FileFormat, set: &IndicatorSet, ts_unit: TsUnit) -> RowFormat {
        RowFormat {
            format,
            tagged: false,
            columns: set.columns().to_vec(),
            ts_unit,
            line: String::with_capacity(512),
            ryu: ryu::Buffer::new(),
        }
    }

    fn num(&mut self, v: Option<f64>) {
        match v {
            Some(v) if v.is_finite() => {
                let s = self.ryu.format_finite(v);
                self.line.push_str(s.strip_suffix(".0").unwrap_or(s));
            }
            _ if self.format == FileFormat::Ndjson => self.line.push_str("null"),
            _ => {}
        }
    }

    fn key(&mut self, k: &str) {
        if self.format == FileFormat::Ndjson {
            if !self.line.ends_with('{') {
                self.line.push(',');
            }
            self.line.push('"');
            self.line.push_str(k);
            self.line.push_str("\":");
        } else if !self.line.is_empty() {
            self.line.push(',');
        }
    }

    fn text(&mut self, k: &str, v: &str) {
        self.key(k);
        if self.format == FileFormat::Ndjson {
            self.line.push('"');
            self.line.push_str(v);
            self.line.push('"');
        } else {
            self.line.push_str(v);
        }
    }

    fn ts(&mut self, k: &str, ms: i64) {
        self.key(k);
        let quote = self.format == FileFormat::Ndjson && self.ts_unit == TsUnit::Rfc3339;
        if quote {
            self.line.push('"');
        }
        self.ts_unit.format_into(ms, &mut self.line);
        if quote {
            self.line.push('"');
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
        if self.format == FileFormat::Ndjson {
            self.line.push('{');
            if self.tagged {
                self.text("table", table);
            }
        }
    }

    fn end(&mut self) -> &[u8] {
        if self.format == FileFormat::Ndjson {
            self.line.push('}');
        }
        self.line.push('\n');
        self.line.as_bytes()
    }

    /// The CSV header of `bars` rows (`None` for NDJSON).
    pub fn bars_header(&self) -> Option<String> {
        (self.format == FileFormat::Csv)
            .then(|| format!("symbol,ts,open,high,low,close,volume,{},signal\n", self.columns.join(",")))
    }

    /// One `bars` row.
    pub fn bar(&mut self, r: &BarOut) -> &[u8] {
        self.begin("bars");
        self.text("symbol", r.bar.symbol.as_str());
        self.ts("ts", r.bar.ts);
        self.ohlcv(&r.bar);
        self.values(&r.values);
        self.text("signal", r.decision.action.as_str());
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
        self.text("symbol", c.symbol.as_str());
        self.text("timeframe", &timeframe_label(c.timeframe));
        self.ts("ts", c.start);
        self.ohlcv(&c.as_bar());
        self.key("count");
        self.line.push_str(itoa::Buffer::new().format(c.count));
        self.field("volume_avg", Some(c.avg_volume()));
        self.field("open_avg", Some(c.avg_open()));
        self.field("close_avg", Some(c.avg_close()));
        self.field("window_vwap", c.vwap());
        self.key("revision");
        self.line.push_str(itoa::Buffer::new().format(c.revision));
        self.values(&c.values);
        self.text("signal", c.decision.action.as_str());
        self.end()
    }

    /// One `signal_changes` row.
    pub fn change(&mut self, c: &SignalChange, rule: &str) -> &[u8] {
        self.begin("signal_changes");
        self.text("symbol", c.symbol.as_str());
        self.text("timeframe", &timeframe_label(c.timeframe));
        self.ts("ts", c.ts);
        self.text("from", c.from.as_str());
        self.text("to", c.to.action.as_str());
        self.text("rule", rule);
        self.end()
    }

    /// The CSV header of `signal_changes` rows.
    pub fn changes_header(&self) -> Option<String> {
        (self.format == FileFormat::Csv).then(|| "symbol,timeframe,ts,from,to,rule\n".to_string())
    }
}

/// One worker's result files.
pub struct FileSink {
    set: IndicatorSet,
    fmt: RowFormat,
    bars: Out,
    candles: Out,
    changes: Out,
    late: Out,
    dead: Out,
    /// `{"table":"late",` style prefixes when every kind shares one stream.
    tagged: bool,
}

type Out = BufWriter<Box<dyn Write>>;

fn create(dir: &Path, name: &str, header: Option<String>) -> io::Result<Out> {
    let path = dir.join(name);
    let file = File::create(&path).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    let mut w: Out = BufWriter::with_capacity(1 << 20, Box::new(file));
    if let Some(h) = header {
        w.write_all(h.as_bytes())?;
    }
    Ok(w)
}

impl FileSink {
    /// Creates `dir` and this worker's files in it.
    pub fn create(
        dir: &Path,
        worker: usize,
        format: FileFormat,
        set: &IndicatorSet,
        ts_unit: TsUnit,
    ) -> io::Result<FileSink> {
        std::fs::create_dir_all(dir)?;
        let ext = if format == FileFormat::Csv { "csv" } else { "ndjson" };
        let fmt = RowFormat::new(format, set, ts_unit);
        Ok(FileSink {
            bars: create(dir, &format!("bars-w{worker}.{ext}"), fmt.bars_header())?,
            candles: create(dir, &format!("candles-w{worker}.{ext}"), fmt.candles_header())?,
            changes: create(dir, &format!("signal_changes-w{worker}.{ext}"), fmt.changes_header())?,
            late: create(dir, &format!("late-w{worker}.ndjson"), None)?,
            dead: create(dir, &format!("dead_letters-w{worker}.ndjson"), None)?,
            set: set.clone(),
            fmt,
            tagged: false,
        })
    }

    /// Every kind of row as NDJSON on standard output, each line tagged with its table
    /// (`{"table":"bars",...}`); whole lines only, so workers' lines never interleave.
    pub fn stdout(set: &IndicatorSet, ts_unit: TsUnit) -> FileSink {
        let mut fmt = RowFormat::new(FileFormat::Ndjson, set, ts_unit);
        fmt.tagged = true;
        let out = || -> Out { BufWriter::with_capacity(1 << 16, Box::new(io::stdout())) };
        FileSink {
            bars: out(),
            candles: out(),
            changes: out(),
            late: out(),
            dead: out(),
            set: set.clone(),
            fmt,
            tagged: true,
        }
    }

    /// Writes one enriched bar (and its signal change, if any).
    pub fn bar(&mut self, r: &BarOut) -> io::Result<()> {
        self.bars.write_all(self.fmt.bar(r))?;
        if let Some(c) = r.signal_change() {
            let rule = c.to.rule.map(|i| self.set.rule_name(i)).unwrap_or_default();
            self.changes.write_all(self.fmt.change(&c, &rule))?;
        }
        Ok(())
    }

    /// Writes one candle (and its signal change, if any).
    pub fn candle(&mut self, c: &Candle) -> io::Result<()> {
        self.candles.write_all(self.fmt.candle(c))?;
        if let Some(ch) = c.signal_change() {
            let rule = ch.to.rule.map(|i| self.set.rule_name(i)).unwrap_or_default();
            self.changes.write_all(self.fmt.change(&ch, &rule))?;
        }
        Ok(())
    }

    /// Records a bar too late to process (timeframe 0 = per-bar indicators).
    pub fn late(&mut self, bar: &Bar, timeframe: i64) -> io::Result<()> {
        writeln!(
            self.late,
            r#"{{{}"symbol":"{}","ts":{},"timeframe":"{}","open":{},"high":{},"low":{},"close":{},"volume":{}}}"#,
            if self.tagged { r#""table":"late","# } else { "" },
            bar.symbol,
            bar.ts,
            timeframe_label(timeframe),
            bar.open,
            bar.high,
            bar.low,
            bar.close,
            bar.volume
        )
    }

    /// Records an invalid input record with the reason.
    pub fn dead_letter(&mut self, source: &str, reason: &str, payload: &[u8]) -> io::Result<()> {
        let payload = String::from_utf8_lossy(&payload[..payload.len().min(4096)]);
        let line = if self.tagged {
            serde_json::json!({ "table": "dead_letters", "source": source, "reason": reason, "payload": payload })
        } else {
            serde_json::json!({ "source": source, "reason": reason, "payload": payload })
        };
        writeln!(self.dead, "{line}")
    }

    /// Flushes every file.
    pub fn flush(&mut self) -> io::Result<()> {
        for w in [&mut self.bars, &mut self.candles, &mut self.changes, &mut self.late, &mut self.dead] {
            w.flush()?;
        }
        Ok(())
    }
}

/// Concatenates per-worker part files (`parts`, each with the same header) into `out`, keeping
/// one header, and removes the parts. The first part is renamed (no copy); the others are
/// appended with `io::copy`, which Linux turns into an in-kernel `copy_file_range`.
/// Returns the bytes appended after the first part.
pub fn concat_parts(parts: &[PathBuf], out: &Path, has_header: bool) -> io::Result<u64> {
    let Some((first, rest)) = parts.split_first() else {
        File::create(out)?;
        return Ok(0);
    };
    std::fs::rename(first, out)?;
    let mut w = std::fs::OpenOptions::new().append(true).open(out)?;
    let mut bytes = 0u64;
    for p in rest {
        let mut r = File::open(p)?;
        if has_header {
            // Skip the repeated header line: find its length, then seek past it.
            let mut head = io::BufReader::new(File::open(p)?);
            let mut header = String::new();
            let n = io::BufRead::read_line(&mut head, &mut header)?;
            io::Seek::seek(&mut r, io::SeekFrom::Start(n as u64))?;
        }
        bytes += io::copy(&mut r, &mut w)?;
        std::fs::remove_file(p)?;
    }
    Ok(bytes)
}
