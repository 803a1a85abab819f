//! JSON bar payloads: one object per NDJSON line, arrays of objects, Nobitex UDF history.
//!
//! A hand-written, strict scanner (RFC 8259 grammar, UTF-8 checked, escapes decoded) reads the
//! flat bar object straight into typed slots: no DOM, no per-record heap allocation unless a
//! string carries escapes. Why not serde_json into a borrowed struct: that cannot name the
//! field of a `NaN`/`Infinity` token (it is a syntax error there), cannot accept several
//! shapes and aliases while rejecting duplicates across aliases without a second pass, and
//! its default float parser is not always correctly rounded. Measured on W1 lines
//! (`benches/decode.rs`, shared 2-core box): this decoder 2.8-3.5M lines/s including timestamp,
//! symbol and bar validation; serde_json into a borrowed struct without any validation
//! ~4.7M/s; into a `Value` ~2.5M/s. Prices go through a Clinger fast path or
//! `str::parse::<f64>`, both correctly rounded, so shortest-round-trip output from any
//! language reads back bit-identical.
//!
//! # Accepted object shapes (field names exact)
//! - bar: `symbol` | `stock_symbol`; `timestamp` | `ts` | `local_time`; `open` |
//!   `opening_price`; `high`; `low`; `close` | `closing_price`; `volume` | `size`.
//! - price tick: `symbol`, `timestamp`, `price`, optional `size` (default 0) → o=h=l=c=price.
//!   `price` together with `open`/`high`/`low`/`close` is an error.
//!
//! Numbers may be JSON numbers or numeric strings (`"101.5"`). Timestamps: see
//! [`super::timestamp`]. Unknown fields are ignored (any JSON value, and also the `NaN` /
//! `Infinity` tokens Python writes). A recognised field given twice, under any spelling, is an
//! error. Errors are reported in this order: invalid JSON anywhere in the record, then the
//! first bad field from the left, then the first missing field, then the bar rules
//! ([`Bar::validate`]).

use std::io::BufRead;

use tickflow_operators::{Bar, TimeBounds};

use super::error::{DecodeError, DecodeErrorKind, Location};
use super::lines::Lines;
use super::timestamp::TsUnit;

pub(super) mod fast;
mod number;
mod object;
mod scanner;
#[cfg(test)]
mod tests;
mod udf;

pub use number::{parse_f64, parse_ts};
use object::decode_object;
use scanner::{Scanner, Syntax};
pub use udf::decode_udf;

/// Decodes one JSON bar object (an NDJSON line; surrounding whitespace allowed) and validates
/// it. `record_no` (1-based) is only used to locate errors.
///
/// ```
/// use tickflow::decode::decode_json_line;
/// use tickflow_operators::TimeBounds;
/// let line = br#"{"stock_symbol": "SYM0007", "timestamp": 1700000000.0, "open": 10, "high": 11, "low": 9.5, "close": 10.5, "volume": 100}"#;
/// let bar = decode_json_line(line, 1, &TimeBounds::default()).unwrap();
/// assert_eq!((bar.symbol.as_str(), bar.ts, bar.close), ("SYM0007", 1_700_000_000_000, 10.5));
/// let err = decode_json_line(br#"{"symbol": "A", "ts": 1700000000, "price": "NaN"}"#, 4, &TimeBounds::default());
/// assert_eq!(err.unwrap_err().to_string(), r#"record 4: price: "NaN" is not a finite number"#);
/// ```
pub fn decode_json_line(line: &[u8], record_no: u64, bounds: &TimeBounds) -> Result<Bar, DecodeError> {
    decode_json_line_with_unit(line, record_no, bounds).map(|(bar, _)| bar)
}

/// Like [`decode_json_line`], also returning the unit the timestamp was written in.
#[inline]
pub fn decode_json_line_with_unit(
    line: &[u8],
    record_no: u64,
    bounds: &TimeBounds,
) -> Result<(Bar, TsUnit), DecodeError> {
    match fast::decode(line, bounds) {
        Some(r) => Ok(r),
        None => decode_general(line, record_no, bounds),
    }
}

/// The general path of [`decode_json_line_with_unit`]: every shape, every error.
#[inline(never)]
fn decode_general(line: &[u8], record_no: u64, bounds: &TimeBounds) -> Result<(Bar, TsUnit), DecodeError> {
    let at = |kind| DecodeError::new(Location::Record(record_no), kind);
    let mut s = Scanner::new(line);
    s.skip_bom();
    s.ws();
    let result = decode_object(&mut s, bounds).map_err(|e| at(e.into_kind()))?;
    s.ws();
    if !s.eof() {
        return Err(at(s.syntax("unexpected text after the object").into_kind()));
    }
    result.map_err(at)
}

/// What a JSON request body holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JsonBodyKind {
    /// Nothing but whitespace.
    Empty,
    /// One object.
    Object,
    /// An array of objects.
    Array,
    /// Several objects, one per line.
    Ndjson,
}

/// Tells a single object, an array and NDJSON apart by looking at the first value: `[` is an
/// array; an object followed by more non-blank text is NDJSON. A malformed first object is
/// classified as NDJSON when its first line looks like a whole object (`{...}`), so that the
/// following lines are still decoded.
pub fn detect_json_body(body: &[u8]) -> JsonBodyKind {
    let mut s = Scanner::new(body);
    s.skip_bom();
    s.ws();
    match s.peek() {
        None => JsonBodyKind::Empty,
        Some(b'[') => JsonBodyKind::Array,
        _ => {
            let start = s.pos;
            if s.skip_value(0).is_ok() {
                s.ws();
                if s.eof() { JsonBodyKind::Object } else { JsonBodyKind::Ndjson }
            } else {
                let rest = &body[start..];
                let first = rest.split(|&c| c == b'\n').next().unwrap_or(rest).trim_ascii();
                let more = rest.len() > first.len() && !rest[first.len()..].trim_ascii().is_empty();
                if more && first.starts_with(b"{") && first.ends_with(b"}") {
                    JsonBodyKind::Ndjson
                } else {
                    JsonBodyKind::Object
                }
            }
        }
    }
}

/// Decodes a body of any [`JsonBodyKind`]: one result per object (record numbers are line
/// numbers for NDJSON, 1-based element indices for arrays).
pub fn decode_json_body(body: &[u8], bounds: &TimeBounds) -> Vec<Result<Bar, DecodeError>> {
    match detect_json_body(body) {
        JsonBodyKind::Empty => Vec::new(),
        JsonBodyKind::Object => vec![decode_json_line(body, 1, bounds)],
        JsonBodyKind::Array => decode_json_array(body, bounds),
        JsonBodyKind::Ndjson => body
            .split(|&c| c == b'\n')
            .enumerate()
            .filter(|(_, line)| !line.trim_ascii().is_empty())
            .map(|(i, line)| decode_json_line(line, i as u64 + 1, bounds))
            .collect(),
    }
}

/// Decodes a JSON array of bar objects into one result per element (record = 1-based
/// index). A syntax error inside the array ends it: the element where it happened gets the
/// error and no further elements are read (their boundaries are unknown).
pub fn decode_json_array(body: &[u8], bounds: &TimeBounds) -> Vec<Result<Bar, DecodeError>> {
    let mut out = Vec::new();
    let mut s = Scanner::new(body);
    let fail = |out: &mut Vec<Result<Bar, DecodeError>>, e: Syntax| {
        let n = out.len() as u64 + 1;
        out.push(Err(DecodeError::new(Location::Record(n), e.into_kind())));
    };
    s.skip_bom();
    s.ws();
    if let Err(e) = s.expect(b'[', "expected '['") {
        fail(&mut out, e);
        return out;
    }
    s.ws();
    if s.peek() == Some(b']') {
        s.pos += 1;
    } else {
        loop {
            s.ws();
            match decode_object(&mut s, bounds) {
                Ok(r) => {
                    let n = out.len() as u64 + 1;
                    out.push(r.map(|(bar, _)| bar).map_err(|k| DecodeError::new(Location::Record(n), k)));
                }
                Err(e) => {
                    fail(&mut out, e);
                    return out;
                }
            }
            s.ws();
            match s.peek() {
                Some(b',') => s.pos += 1,
                Some(b']') => {
                    s.pos += 1;
                    break;
                }
                _ => {
                    fail(&mut out, s.syntax("expected ',' or ']'"));
                    return out;
                }
            }
        }
    }
    s.ws();
    if !s.eof() {
        fail(&mut out, s.syntax("unexpected text after the array"));
    }
    out
}

/// Byte ranges of the top-level elements of a JSON array body (for finding a record's raw
/// text), by the same scanner as [`decode_json_array`]: element `n` is `[n-1]`. An element
/// with a syntax error gets the rest of the body from where it starts (its end is unknown),
/// and ends the list, as it ends the decoding.
pub fn json_array_elements(body: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut s = Scanner::new(body);
    s.skip_bom();
    s.ws();
    if s.expect(b'[', "").is_err() {
        return out;
    }
    s.ws();
    if s.peek() == Some(b']') {
        return out;
    }
    loop {
        s.ws();
        let start = s.pos;
        if s.skip_value(0).is_err() {
            out.push(start..body.trim_ascii_end().len().max(start));
            return out;
        }
        out.push(start..s.pos);
        s.ws();
        match s.peek() {
            Some(b',') => s.pos += 1,
            _ => return out,
        }
    }
}

/// Reads NDJSON from a `BufRead`, one result per non-blank line, reusing one line buffer.
/// Record numbers are line numbers. After a bad line, [`NdjsonReader::line`] still holds its
/// raw bytes for dead-lettering. An I/O error is reported once and ends the iteration.
pub struct NdjsonReader<R> {
    lines: Lines<R>,
    bounds: TimeBounds,
}

impl<R: BufRead> NdjsonReader<R> {
    /// A reader of `reader` that validates timestamps against `bounds`.
    pub fn new(reader: R, bounds: TimeBounds) -> Self {
        NdjsonReader { lines: Lines::new(reader, 512), bounds }
    }

    /// The raw bytes of the line last returned (without its line terminator).
    pub fn line(&self) -> &[u8] {
        self.lines.line()
    }

    /// The 1-based number of the line last read.
    pub fn line_number(&self) -> u64 {
        self.lines.number()
    }
}

impl<R: BufRead> Iterator for NdjsonReader<R> {
    type Item = Result<Bar, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(match self.lines.advance()? {
            // The line as `decode_json_body` and the gateway split a body, without its `\n`:
            // with it, a string left open at the line's end was "control character in
            // string" here and "unterminated string" there (fuzz finding, ndjson).
            Ok(()) => decode_json_line(self.lines.text(), self.lines.number(), &self.bounds),
            Err(e) => {
                let kind = DecodeErrorKind::Io { message: e.to_string() };
                Err(DecodeError::new(Location::Record(self.lines.number() + 1), kind))
            }
        })
    }
}
