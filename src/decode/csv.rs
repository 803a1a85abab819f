//! CSV bar files: a header line, then one bar per line.
//!
//! Columns (header names, case-insensitive, surrounding spaces ignored, any order):
//! `ts` | `timestamp`, `open`, `high`, `low`, `close`, `volume`, and optionally `symbol` |
//! `stock_symbol`; without a symbol column the caller names the file's symbol. Other
//! columns are ignored. Fields may be quoted (`"..."`, `""` for a quote) but may not span
//! lines. Numbers follow the JSON number grammar (so `1e5` but not `1.` or `+1`);
//! timestamps take every form of [`super::timestamp`]. Blank lines are skipped; `\r\n` line
//! ends are accepted. Record numbers are line numbers (the header is line 1).

use std::borrow::Cow;
use std::io::BufRead;

use tickflow_operators::{Bar, Symbol, TimeBounds};

use super::error::{DecodeError, DecodeErrorKind, Location, show_str};
use super::json::{fast, parse_f64, parse_ts};
use super::lines::Lines;
use super::timestamp::TsUnit;

/// Where the needed columns are in a file, from its header.
#[derive(Clone, Debug)]
struct Columns {
    symbol: Option<usize>,
    ts: usize,
    open: usize,
    high: usize,
    low: usize,
    close: usize,
    volume: usize,
}

/// Reads bars from CSV over a `BufRead`, reusing its line and field buffers.
///
/// ```
/// use tickflow::decode::{CsvReader, TsUnit};
/// use tickflow_operators::TimeBounds;
/// let csv = "ts,symbol,open,high,low,close,volume,note\n1700000000,AAPL,10,11,9.5,10.5,100,x\n";
/// let mut r = CsvReader::new(csv.as_bytes(), None, TimeBounds::default()).unwrap();
/// let bar = r.next().unwrap().unwrap();
/// assert_eq!((bar.symbol.as_str(), bar.ts, bar.close), ("AAPL", 1_700_000_000_000, 10.5));
/// assert_eq!(r.ts_unit(), Some(TsUnit::Seconds));
/// ```
pub struct CsvReader<R> {
    lines: Lines<R>,
    fields: Vec<(usize, usize, bool)>,
    header: Vec<String>,
    cols: Columns,
    default_symbol: Option<Symbol>,
    bounds: TimeBounds,
    ts_unit: Option<TsUnit>,
}

impl<R: BufRead> CsvReader<R> {
    /// Reads the header of `reader`. `default_symbol` is the symbol of every bar when the
    /// file has no symbol column (it is ignored when it has one). Fails when the header is
    /// absent, lacks a required column, repeats one, or there is no symbol from either place.
    pub fn new(reader: R, default_symbol: Option<Symbol>, bounds: TimeBounds) -> Result<Self, DecodeError> {
        let header_err = |line, message| DecodeError::new(Location::Line(line), DecodeErrorKind::Header { message });
        let mut lines = Lines::new(reader, 256);
        match lines.advance() {
            Some(Ok(())) => {}
            Some(Err(e)) => return Err(io_error(lines.number() + 1, &e)),
            None => {
                return Err(header_err(lines.number().max(1), "the input is empty; a header line is required".into()));
            }
        }
        let line_no = lines.number();
        let mut fields = Vec::new();
        let line = lines.line();
        let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        split_fields(line, &mut fields).map_err(|col| syntax(line_no, col, "unterminated quoted field"))?;
        let mut header = Vec::with_capacity(fields.len());
        for &(s, e, quoted) in &fields {
            header.push(field_text(line, s, e, quoted).trim().to_string());
        }
        let find = |names: &[&str]| -> Result<Option<usize>, String> {
            let hits: Vec<usize> =
                (0..header.len()).filter(|&i| names.iter().any(|n| header[i].eq_ignore_ascii_case(n))).collect();
            match hits.as_slice() {
                [] => Ok(None),
                [one] => Ok(Some(*one)),
                [a, b, ..] => Err(format!(
                    "columns {} and {} ({} and {}) name the same field",
                    a + 1,
                    b + 1,
                    show_str(&header[*a]),
                    show_str(&header[*b])
                )),
            }
        };
        let required = |names: &[&str]| -> Result<usize, String> {
            find(names)?.ok_or_else(|| {
                let alts: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
                let seen: Vec<String> = header.iter().map(|h| show_str(h)).collect();
                format!("no {} column (found {})", alts.join(" or "), seen.join(", "))
            })
        };
        let cols = (|| -> Result<Columns, String> {
            Ok(Columns {
                symbol: find(&["symbol", "stock_symbol"])?,
                ts: required(&["ts", "timestamp"])?,
                open: required(&["open"])?,
                high: required(&["high"])?,
                low: required(&["low"])?,
                close: required(&["close"])?,
                volume: required(&["volume"])?,
            })
        })()
        .map_err(|m| header_err(line_no, m))?;
        if cols.symbol.is_none() && default_symbol.is_none() {
            return Err(header_err(
                line_no,
                "no \"symbol\" or \"stock_symbol\" column and no symbol given for the file".into(),
            ));
        }
        Ok(CsvReader { lines, fields, header, cols, default_symbol, bounds, ts_unit: None })
    }

    /// The unit of the `ts` column, from the first line whose timestamp parsed (`None`
    /// before that), so an output can write timestamps back in the input's unit.
    pub fn ts_unit(&self) -> Option<TsUnit> {
        self.ts_unit
    }

    /// The header's column names, as written (trimmed).
    pub fn header(&self) -> &[String] {
        &self.header
    }

    /// The raw bytes of the line last returned (without its line terminator).
    pub fn line(&self) -> &[u8] {
        self.lines.line()
    }

    /// The 1-based number of the line last read.
    pub fn line_number(&self) -> u64 {
        self.lines.number()
    }

    fn decode_line(&mut self) -> Result<Bar, DecodeError> {
        let line_no = self.lines.number();
        let line = self.lines.line();
        split_fields(line, &mut self.fields).map_err(|col| syntax(line_no, col, "unterminated quoted field"))?;
        if self.fields.len() != self.header.len() {
            let kind = DecodeErrorKind::FieldCount { expected: self.header.len(), found: self.fields.len() };
            return Err(DecodeError::new(Location::Line(line_no), kind));
        }
        let fields = &self.fields;
        let header = &self.header;
        let at_col = |col: usize, kind| DecodeError::new(Location::LineColumn(line_no, col + 1), kind);
        let text = |col: usize| {
            let (s, e, q) = fields[col];
            field_text(line, s, e, q)
        };
        let num = |col: usize| -> Result<f64, DecodeError> {
            // Nearly every field is an unquoted plain decimal: read straight from the bytes.
            // What this accepts, `parse_f64` reads to the same double (the JSON fast path's
            // number), and what it trims `str::trim` trims too.
            let (s, e, quoted) = fields[col];
            if !quoted && let Some(v) = fast::plain_f64(line[s..e].trim_ascii()) {
                return Ok(v);
            }
            let t = text(col);
            let t = t.trim();
            if t.is_empty() {
                let kind = DecodeErrorKind::WrongType {
                    field: header[col].clone(),
                    expected: "a number",
                    found: "an empty field".into(),
                };
                return Err(at_col(col, kind));
            }
            parse_f64(&header[col], t, true).map_err(|k| at_col(col, k))
        };
        let symbol = match self.cols.symbol {
            Some(col) => Symbol::new(text(col).trim()).map_err(|e| at_col(col, e.into()))?,
            // `new` refuses a file with neither a symbol column nor a default symbol.
            None => self.default_symbol.ok_or_else(|| {
                DecodeError::new(Location::Line(line_no), DecodeErrorKind::Missing { names: &["symbol"] })
            })?,
        };
        let ts_col = self.cols.ts;
        let (s, e, quoted) = fields[ts_col];
        let plain = if quoted { None } else { fast::plain_ts(line[s..e].trim_ascii()) };
        let (ts, unit) = match plain {
            Some(t) => t,
            None => parse_ts(&header[ts_col], text(ts_col).trim(), true).map_err(|k| at_col(ts_col, k))?,
        };
        let bar = Bar::new(
            symbol,
            ts,
            num(self.cols.open)?,
            num(self.cols.high)?,
            num(self.cols.low)?,
            num(self.cols.close)?,
            num(self.cols.volume)?,
        );
        self.ts_unit.get_or_insert(unit);
        bar.validate(&self.bounds).map_err(|e| DecodeError::new(Location::Line(line_no), e.into()))?;
        Ok(bar)
    }
}

impl<R: BufRead> Iterator for CsvReader<R> {
    type Item = Result<Bar, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(match self.lines.advance()? {
            Ok(()) => self.decode_line(),
            Err(e) => Err(io_error(self.lines.number() + 1, &e)),
        })
    }
}

fn io_error(line: u64, e: &std::io::Error) -> DecodeError {
    DecodeError::new(Location::Line(line), DecodeErrorKind::Io { message: e.to_string() })
}

fn syntax(line: u64, column: usize, message: &str) -> DecodeError {
    let kind = DecodeErrorKind::Syntax { format: "CSV", column, message: message.into() };
    DecodeError::new(Location::Line(line), kind)
}

/// Splits `line` at commas outside quotes into `(start, end, quoted)` byte ranges (for a
/// quoted field, the range inside the quotes). Returns the 1-based byte column of an
/// unterminated quote as the error.
fn split_fields(line: &[u8], out: &mut Vec<(usize, usize, bool)>) -> Result<(), usize> {
    out.clear();
    let mut i = 0;
    loop {
        // Leading spaces before a quote are allowed (`a, "b"`).
        let mut j = i;
        while j < line.len() && line[j] == b' ' {
            j += 1;
        }
        if line.get(j) == Some(&b'"') {
            let start = j + 1;
            let mut k = start;
            loop {
                match line.get(k) {
                    None => return Err(j + 1),
                    Some(b'"') if line.get(k + 1) == Some(&b'"') => k += 2,
                    Some(b'"') => break,
                    Some(_) => k += 1,
                }
            }
            out.push((start, k, true));
            // Skip to the next comma (text after the closing quote is ignored).
            let mut m = k + 1;
            while m < line.len() && line[m] != b',' {
                m += 1;
            }
            if m >= line.len() {
                return Ok(());
            }
            i = m + 1;
        } else {
            let end = line[i..].iter().position(|&c| c == b',').map_or(line.len(), |p| i + p);
            out.push((i, end, false));
            if end >= line.len() {
                return Ok(());
            }
            i = end + 1;
        }
    }
}

/// A field's text: borrowed unless it is quoted with `""` escapes; invalid UTF-8 is replaced
/// (and then rejected by the number or symbol rules, naming the field).
fn field_text(line: &[u8], s: usize, e: usize, quoted: bool) -> Cow<'_, str> {
    let raw = &line[s..e];
    // `from_utf8` first: valid text (nearly every field) is borrowed without the lossy
    // decoder's per-chunk walk.
    let text = match std::str::from_utf8(raw) {
        Ok(t) => Cow::Borrowed(t),
        Err(_) => String::from_utf8_lossy(raw),
    };
    if quoted && raw.windows(2).any(|w| w == b"\"\"") { Cow::Owned(text.replace("\"\"", "\"")) } else { text }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The fields the fast path takes read exactly as the general rule reads them
        /// (padding included); the others are left to it.
        #[test]
        fn plain_fields_read_as_the_general_rule_reads_them(
            pad_l in "[ \t]{0,2}",
            num in "-?(0|[1-9][0-9]{0,21})(\\.[0-9]{1,24})?([eE][0-9])?|-?0[0-9]|\\.5|1\\.|-",
            pad_r in "[ \t\u{a0}]{0,2}",
        ) {
            let field = format!("{pad_l}{num}{pad_r}");
            if let Some(v) = fast::plain_f64(field.as_bytes().trim_ascii()) {
                prop_assert_eq!(Ok(v.to_bits()), parse_f64("x", field.trim(), true).map(f64::to_bits), "{:?}", field);
            }
            if let Some(t) = fast::plain_ts(field.as_bytes().trim_ascii()) {
                prop_assert_eq!(Ok(t), parse_ts("ts", field.trim(), true), "{:?}", field);
            }
        }
    }

    #[test]
    fn split_handles_quotes_and_empty_fields() {
        let mut f = Vec::new();
        let line = br#"a,"b,c",,"d""e""#;
        split_fields(line, &mut f).unwrap();
        let texts: Vec<String> = f.iter().map(|&(s, e, q)| field_text(line, s, e, q).into_owned()).collect();
        assert_eq!(texts, ["a", "b,c", "", "d\"e"]);
        assert_eq!(split_fields(b"a,\"b", &mut f), Err(3));
        split_fields(b"", &mut f).unwrap();
        assert_eq!(f.len(), 1);
    }
}
