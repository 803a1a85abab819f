//! The tickflow tables: their DDL and how each output record becomes one ILP row.
//!
//! Every table is a WAL table partitioned by day with `DEDUP UPSERT KEYS` on the designated
//! timestamp and the record's identity (symbol, timeframe), so replaying input after a restart
//! rewrites the same rows instead of duplicating them. Indicator outputs become DOUBLE columns
//! named after [`IndicatorSet::columns`] (characters QuestDB does not allow in a column name,
//! such as the `.` in `bb_upper_10_2.5`, become `_`). A value still warming up is omitted from
//! the row, which QuestDB stores as NULL.

use tickflow_operators::IndicatorSet;
use tickflow_operators::rows::{BarOut, Candle, SignalChange};
use tickflow_operators::signal::Decision;
use tickflow_operators::time::Millis;

use super::encode::{EncodeError, Line, Name, RowBatch};

/// The most bytes of [`DeadLetter::payload`] written; the rest is cut (at a character boundary).
pub const DEAD_LETTER_PAYLOAD_MAX: usize = 4096;
/// The most bytes of [`DeadLetter::reason`] written.
pub const DEAD_LETTER_REASON_MAX: usize = 1024;

/// A record that could not be processed or written, kept for inspection in the
/// `dead_letters` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    /// When it was dead-lettered, ms since the epoch.
    pub ts_ms: i64,
    /// Where it came from, e.g. `kafka:bars` or `questdb` (a symbol: no control characters).
    pub source: String,
    /// Why, e.g. the decode error or QuestDB's message.
    pub reason: String,
    /// The record (capped at [`DEAD_LETTER_PAYLOAD_MAX`] bytes when written).
    pub payload: String,
}

/// Column names used by several tables, validated once.
#[derive(Clone, Debug)]
struct Cols {
    symbol: Name,
    open: Name,
    high: Name,
    low: Name,
    close: Name,
    volume: Name,
    signal: Name,
    signal_rule: Name,
    timeframe: Name,
    timeframe_ms: Name,
    count: Name,
    revision: Name,
    volume_total: Name,
    volume_avg: Name,
    open_avg: Name,
    close_avg: Name,
    vwap: Name,
    low_min: Name,
    high_max: Name,
    from_signal: Name,
    to_signal: Name,
    rule: Name,
    source: Name,
    reason: Name,
    payload: Name,
}

impl Cols {
    fn new() -> Result<Cols, EncodeError> {
        let n = Name::column;
        Ok(Cols {
            symbol: n("symbol")?,
            open: n("open")?,
            high: n("high")?,
            low: n("low")?,
            close: n("close")?,
            volume: n("volume")?,
            signal: n("signal")?,
            signal_rule: n("signal_rule")?,
            timeframe: n("timeframe")?,
            timeframe_ms: n("timeframe_ms")?,
            count: n("count")?,
            revision: n("revision")?,
            volume_total: n("volume_total")?,
            volume_avg: n("volume_avg")?,
            open_avg: n("open_avg")?,
            close_avg: n("close_avg")?,
            vwap: n("vwap")?,
            low_min: n("low_min")?,
            high_max: n("high_max")?,
            from_signal: n("from_signal")?,
            to_signal: n("to_signal")?,
            rule: n("rule")?,
            source: n("source")?,
            reason: n("reason")?,
            payload: n("payload")?,
        })
    }
}

/// The names of the five tables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableNames {
    /// Enriched bars.
    pub bars: Name,
    /// Closed candles with their indicators.
    pub candles: Name,
    /// Window aggregates.
    pub aggregates: Name,
    /// Signal changes.
    pub signal_changes: Name,
    /// Dead letters.
    pub dead_letters: Name,
}

/// Encoders and DDL for the tickflow tables of one [`IndicatorSet`]. Built once at start;
/// encoding a row allocates nothing.
#[derive(Clone, Debug)]
pub struct Tables {
    names: TableNames,
    indicators: Vec<Name>,
    rule_names: Vec<String>,
    c: Cols,
}

/// Replaces characters QuestDB does not accept in column names by `_`.
fn column_name(raw: &str) -> Result<Name, EncodeError> {
    let cleaned: String = raw.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    Name::column(&cleaned)
}

impl Tables {
    /// Validates the table and column names for `set`, with `prefix` before every table name.
    pub fn new(set: &IndicatorSet, prefix: &str) -> Result<Tables, EncodeError> {
        let t = |base: &str| Name::table(&format!("{prefix}{base}"));
        let names = TableNames {
            bars: t("bars")?,
            candles: t("candles")?,
            aggregates: t("aggregates")?,
            signal_changes: t("signal_changes")?,
            dead_letters: t("dead_letters")?,
        };
        let c = Cols::new()?;
        let reserved = [
            "ts",
            "symbol",
            "open",
            "high",
            "low",
            "close",
            "volume",
            "signal",
            "signal_rule",
            "timeframe",
            "count",
            "revision",
        ];
        let mut indicators: Vec<Name> = Vec::with_capacity(set.columns().len());
        for raw in set.columns() {
            let name = column_name(raw)?;
            if reserved.contains(&name.as_str()) || indicators.contains(&name) {
                return Err(EncodeError::BadName {
                    kind: "column",
                    name: name.as_str().to_string(),
                    why: "it is used twice in one table",
                });
            }
            indicators.push(name);
        }
        Ok(Tables { names, indicators, rule_names: set.rules().map(|r| r.name()).collect(), c })
    }

    /// The table names.
    pub fn names(&self) -> &TableNames {
        &self.names
    }

    /// `CREATE TABLE IF NOT EXISTS` statements for every table, in creation order.
    pub fn ddl(&self) -> Vec<String> {
        let ind: String = self.indicators.iter().map(|n| format!(", {n} DOUBLE")).collect();
        let ohlcv = "open DOUBLE, high DOUBLE, low DOUBLE, close DOUBLE, volume DOUBLE";
        let tail = |keys: &str| format!("TIMESTAMP(ts) PARTITION BY DAY WAL DEDUP UPSERT KEYS({keys})");
        let n = &self.names;
        vec![
            format!(
                "CREATE TABLE IF NOT EXISTS {} (ts TIMESTAMP, symbol SYMBOL, {ohlcv}{ind}, signal SYMBOL, \
                 signal_rule SYMBOL) {}",
                n.bars,
                tail("ts, symbol")
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {} (ts TIMESTAMP, symbol SYMBOL, timeframe SYMBOL, {ohlcv}, count LONG, \
                 revision LONG{ind}, signal SYMBOL, signal_rule SYMBOL) {}",
                n.candles,
                tail("ts, symbol, timeframe")
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {} (ts TIMESTAMP, symbol SYMBOL, timeframe SYMBOL, count LONG, \
                 volume_total DOUBLE, volume_avg DOUBLE, open_avg DOUBLE, close_avg DOUBLE, vwap DOUBLE, \
                 low_min DOUBLE, high_max DOUBLE) {}",
                n.aggregates,
                tail("ts, symbol, timeframe")
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {} (ts TIMESTAMP, symbol SYMBOL, timeframe SYMBOL, from_signal SYMBOL, \
                 to_signal SYMBOL, rule SYMBOL, timeframe_ms LONG) {}",
                n.signal_changes,
                tail("ts, symbol, timeframe")
            ),
            // `source` names the record (`topic/partition@offset`, `file@byte N`) and `ts` is
            // derived from the data, so a record dead-lettered again after a restore replaces
            // itself.
            format!(
                "CREATE TABLE IF NOT EXISTS {} (ts TIMESTAMP, source SYMBOL, reason STRING, payload STRING) {}",
                n.dead_letters,
                tail("ts, source")
            ),
        ]
    }

    fn rule_name(&self, d: &Decision) -> Option<&str> {
        d.rule.and_then(|i| self.rule_names.get(i as usize)).map(String::as_str)
    }

    fn indicators<'a>(&self, mut line: Line<'a>, values: &tickflow_operators::Values) -> Line<'a> {
        for (name, v) in self.indicators.iter().zip(values.iter()) {
            line = line.f64_opt(name, v);
        }
        line
    }

    /// Appends one `bars` row.
    pub fn bar(&self, batch: &mut RowBatch, row: &BarOut) -> Result<(), EncodeError> {
        let c = &self.c;
        let b = &row.bar;
        let line = batch.line(&self.names.bars).symbol(&c.symbol, b.symbol.as_str())?;
        let line = line
            .symbol(&c.signal, row.decision.action.as_str())?
            .symbol_opt(&c.signal_rule, self.rule_name(&row.decision))?
            .f64(&c.open, b.open)
            .f64(&c.high, b.high)
            .f64(&c.low, b.low)
            .f64(&c.close, b.close)
            .f64(&c.volume, b.volume);
        self.indicators(line, &row.values).at_millis(b.ts)
    }

    /// Appends one `candles` row (timestamp = window start).
    pub fn candle(&self, batch: &mut RowBatch, row: &Candle) -> Result<(), EncodeError> {
        let c = &self.c;
        let mut label = [0u8; 32];
        let line = batch
            .line(&self.names.candles)
            .symbol(&c.symbol, row.symbol.as_str())?
            .symbol(&c.timeframe, timeframe_label_into(row.timeframe, &mut label))?
            .symbol(&c.signal, row.decision.action.as_str())?
            .symbol_opt(&c.signal_rule, self.rule_name(&row.decision))?
            .f64(&c.open, row.open)
            .f64(&c.high, row.high)
            .f64(&c.low, row.low)
            .f64(&c.close, row.close)
            .f64(&c.volume, row.volume)
            .i64(&c.count, i64::try_from(row.count).unwrap_or(i64::MAX))
            .i64(&c.revision, i64::from(row.revision));
        self.indicators(line, &row.values).at_millis(row.start)
    }

    /// Appends one `aggregates` row for a candle's window.
    pub fn aggregate(&self, batch: &mut RowBatch, row: &Candle) -> Result<(), EncodeError> {
        let c = &self.c;
        let mut label = [0u8; 32];
        batch
            .line(&self.names.aggregates)
            .symbol(&c.symbol, row.symbol.as_str())?
            .symbol(&c.timeframe, timeframe_label_into(row.timeframe, &mut label))?
            .i64(&c.count, i64::try_from(row.count).unwrap_or(i64::MAX))
            .f64(&c.volume_total, row.volume)
            .f64(&c.volume_avg, row.avg_volume())
            .f64(&c.open_avg, row.avg_open())
            .f64(&c.close_avg, row.avg_close())
            .f64_opt(&c.vwap, row.vwap())
            .f64(&c.low_min, row.low)
            .f64(&c.high_max, row.high)
            .at_millis(row.start)
    }

    /// Appends one `signal_changes` row. Every other column is a symbol (tag), and an ILP line
    /// needs at least one field, so the timeframe is also written in ms as `timeframe_ms`.
    pub fn signal_change(&self, batch: &mut RowBatch, row: &SignalChange) -> Result<(), EncodeError> {
        let c = &self.c;
        let mut label = [0u8; 32];
        batch
            .line(&self.names.signal_changes)
            .symbol(&c.symbol, row.symbol.as_str())?
            .symbol(&c.timeframe, timeframe_label_into(row.timeframe, &mut label))?
            .symbol(&c.from_signal, row.from.as_str())?
            .symbol(&c.to_signal, row.to.action.as_str())?
            .symbol_opt(&c.rule, self.rule_name(&row.to))?
            .i64(&c.timeframe_ms, row.timeframe)
            .at_millis(row.ts)
    }

    /// Appends one `dead_letters` row; reason and payload are cut to their caps.
    pub fn dead_letter(&self, batch: &mut RowBatch, row: &DeadLetter) -> Result<(), EncodeError> {
        let c = &self.c;
        batch
            .line(&self.names.dead_letters)
            .symbol(&c.source, &row.source)?
            .str(&c.reason, cap(&row.reason, DEAD_LETTER_REASON_MAX))
            .str(&c.payload, cap(&row.payload, DEAD_LETTER_PAYLOAD_MAX))
            .at_millis(row.ts_ms)
    }
}

/// `s` cut to at most `max` bytes at a character boundary.
fn cap(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut n = max;
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    &s[..n]
}

/// [`tickflow_operators::rows::timeframe_label`] without allocating: writes into `buf`.
pub fn timeframe_label_into(ms: Millis, buf: &mut [u8; 32]) -> &str {
    let (n, unit): (i64, &str) = match ms {
        0 => (0, "bar"),
        ms if ms % 86_400_000 == 0 => (ms / 86_400_000, "d"),
        ms if ms % 3_600_000 == 0 => (ms / 3_600_000, "h"),
        ms if ms % 60_000 == 0 => (ms / 60_000, "m"),
        ms if ms % 1000 == 0 => (ms / 1000, "s"),
        ms => (ms, "ms"),
    };
    let mut len = 0;
    if ms != 0 {
        let mut ib = itoa::Buffer::new();
        let digits = ib.format(n).as_bytes();
        buf[..digits.len()].copy_from_slice(digits);
        len = digits.len();
    }
    buf[len..len + unit.len()].copy_from_slice(unit.as_bytes());
    len += unit.len();
    // Only ASCII digits, '-' and ASCII unit letters were written.
    std::str::from_utf8(&buf[..len]).expect("ASCII label")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tickflow_operators::rows::timeframe_label;

    #[test]
    fn label_matches_the_operators_label() {
        let mut buf = [0u8; 32];
        for ms in [0, 1, 250, 1000, 30_000, 60_000, 90_000, 300_000, 3_600_000, 86_400_000, -60_000, i64::MAX, i64::MIN]
        {
            assert_eq!(timeframe_label_into(ms, &mut buf), timeframe_label(ms), "{ms}");
        }
    }

    #[test]
    fn cap_cuts_at_char_boundary() {
        assert_eq!(cap("abc", 2), "ab");
        assert_eq!(cap("aé", 2), "a");
        assert_eq!(cap("aé", 3), "aé");
    }

    #[test]
    fn prefix_and_bad_indicator_characters() {
        let set = IndicatorSet::new(
            vec!["bb:10,2.5".parse().unwrap()],
            vec![],
            tickflow_operators::signal::Combine::FirstMatch,
        )
        .unwrap();
        let t = Tables::new(&set, "tf_").unwrap();
        assert_eq!(t.names().bars.as_str(), "tf_bars");
        assert!(t.ddl()[0].contains(", bb_upper_10_2_5 DOUBLE,"), "{}", t.ddl()[0]);
        assert!(Tables::new(&set, "tf-").is_err());
    }
}
