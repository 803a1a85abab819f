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

use std::borrow::Cow;
use std::io::BufRead;

use tickflow_operators::{Bar, Symbol, TimeBounds};

use super::error::{DecodeError, DecodeErrorKind, Location, show_bytes, show_str};
use super::lines::Lines;
use super::timestamp::{self, TsUnit, is_json_number};

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

/// Decodes a Nobitex UDF history body (`{"s":"ok","t":[..],"o":[..],"h":[..],"l":[..],
/// "c":[..],"v":[..]}`, `t` in unix seconds) for `symbol`: one result per row (record =
/// 1-based row). `"s":"no_data"` gives no bars; `"s":"error"` (with its `errmsg`), arrays
/// of unequal length and invalid JSON fail the whole body (record 1).
///
/// ```
/// use tickflow::decode::decode_udf;
/// use tickflow_operators::{Symbol, TimeBounds};
/// let body = br#"{"s":"ok","t":[1700000000],"o":[10],"h":[11],"l":[9],"c":[10.5],"v":["3.5"]}"#;
/// let bars = decode_udf(body, Symbol::new("BTCIRT").unwrap(), &TimeBounds::default()).unwrap();
/// assert_eq!(bars[0].as_ref().unwrap().volume, 3.5);
/// ```
pub fn decode_udf(
    body: &[u8],
    symbol: Symbol,
    bounds: &TimeBounds,
) -> Result<Vec<Result<Bar, DecodeError>>, DecodeError> {
    let whole = |kind| DecodeError::new(Location::Record(1), kind);
    let udf = parse_udf(body).map_err(|e| whole(e.into_kind()))?.map_err(whole)?;
    match udf.status.as_deref() {
        Some("ok") => {}
        Some("no_data") => return Ok(Vec::new()),
        Some("error") => {
            let msg = udf.errmsg.as_deref().unwrap_or("(no errmsg)");
            return Err(whole(DecodeErrorKind::Udf { message: format!("error: {}", show_str(msg)) }));
        }
        Some(other) => {
            let message = format!("unknown status \"s\": {}", show_str(other));
            return Err(whole(DecodeErrorKind::Udf { message }));
        }
        None => return Err(whole(DecodeErrorKind::Missing { names: &["s"] })),
    }
    let cols = [&udf.t, &udf.o, &udf.h, &udf.l, &udf.c, &udf.v];
    const NAMES: [&str; 6] = ["t", "o", "h", "l", "c", "v"];
    for (name, col) in NAMES.iter().zip(cols) {
        if col.is_none() {
            return Err(whole(DecodeErrorKind::Missing { names: std::slice::from_ref(name) }));
        }
    }
    let lens: Vec<usize> = cols.iter().map(|c| c.as_ref().map_or(0, Vec::len)).collect();
    if lens.iter().any(|&l| l != lens[0]) {
        let parts: Vec<String> = NAMES.iter().zip(&lens).map(|(n, l)| format!("{n}={l}")).collect();
        let message = format!("arrays differ in length ({})", parts.join(", "));
        return Err(whole(DecodeErrorKind::Udf { message }));
    }
    fn get<'a>(col: &Option<Vec<UdfValue<'a>>>, i: usize) -> Option<UdfValue<'a>> {
        col.as_ref().map(|c| c[i].clone())
    }
    let mut out = Vec::with_capacity(lens[0]);
    for i in 0..lens[0] {
        let at = |kind| DecodeError::new(Location::Record(i as u64 + 1), kind);
        let row = (|| {
            let (text, shown) = match get(&udf.t, i) {
                Some(UdfValue::Num(text)) => (Cow::Borrowed(text), show_bytes(text.as_bytes())),
                Some(UdfValue::Str(text)) => {
                    let shown = show_str(&text);
                    (text, shown)
                }
                Some(UdfValue::Bad(f)) => {
                    return Err(f.into_kind("t", "a number or a numeric string"));
                }
                // Every column was checked to be present above.
                None => return Err(DecodeErrorKind::Missing { names: &["t"] }),
            };
            let ts = timestamp::parse_numeric_in(&text, TsUnit::Seconds)
                .map_err(|reason| DecodeErrorKind::Timestamp { field: "t".into(), value: shown, reason })?;
            let num = |col, name| get(col, i).map_or(Ok(0.0), |v: UdfValue<'_>| v.number(name));
            let bar = Bar::new(
                symbol,
                ts,
                num(&udf.o, "o")?,
                num(&udf.h, "h")?,
                num(&udf.l, "l")?,
                num(&udf.c, "c")?,
                num(&udf.v, "v")?,
            );
            bar.validate(bounds)?;
            Ok(bar)
        })();
        out.push(row.map_err(at));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// The fast path.

/// One pass over the common shape: a flat object of the seven bar fields (any order, any
/// recognised spelling), plain decimal numbers, an ASCII symbol without escapes. Digits are
/// accumulated while they are scanned (no second pass, no UTF-8 check: every accepted byte
/// is ASCII), keys are dispatched by [`slot_of`]. Anything else — escapes, exponents, strings
/// for numbers, unknown keys, ticks, duplicates, more digits than are exact, an invalid bar —
/// gives `None`, and the general path decodes the line (and names what is wrong). So this
/// only decides how fast, never what: when it returns a bar it is the general path's bar
/// (tests: `fast_path_agrees_with_the_general_path`).
mod fast {
    use super::{Slot, TsUnit, slot_of};
    use tickflow_operators::{Bar, Symbol, TimeBounds};

    /// Powers of ten that are exact doubles.
    const POW10: [f64; 23] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19,
        1e20, 1e21, 1e22,
    ];

    /// A plain decimal number token `-?(0|[1-9][0-9]*)(.[0-9]+)?` of at most 19 digits (so
    /// its digits fit a u64 exactly), read as it is scanned.
    struct Num {
        neg: bool,
        /// All digits, the fraction's included, as one integer.
        mantissa: u64,
        /// How many of them are fraction digits.
        frac_digits: u32,
    }

    /// Digits at `b[*i..]`: how many, and their value (wrapping; callers bound the count).
    #[inline(always)]
    fn digits(b: &[u8], i: &mut usize, mut m: u64) -> (usize, u64) {
        let start = *i;
        while let Some(&c) = b.get(*i) {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            m = m.wrapping_mul(10).wrapping_add(u64::from(d));
            *i += 1;
        }
        (*i - start, m)
    }

    #[inline(always)]
    fn number(b: &[u8], i: &mut usize) -> Option<Num> {
        let neg = b.get(*i) == Some(&b'-');
        *i += usize::from(neg);
        let first = *b.get(*i)?;
        let (int_len, mut m) = digits(b, i, 0);
        // No digit, or a leading zero (`01`): not JSON.
        if int_len == 0 || (first == b'0' && int_len > 1) {
            return None;
        }
        let mut frac_len = 0;
        if b.get(*i) == Some(&b'.') {
            *i += 1;
            (frac_len, m) = digits(b, i, m);
            if frac_len == 0 {
                return None;
            }
        }
        if int_len + frac_len > 19 || matches!(b.get(*i), Some(b'e' | b'E')) {
            return None;
        }
        Some(Num { neg, mantissa: m, frac_digits: frac_len as u32 })
    }

    const POW10_U64: [u64; 20] = {
        let mut p = [1u64; 20];
        let mut k = 1;
        while k < 20 {
            p[k] = p[k - 1] * 10;
            k += 1;
        }
        p
    };

    impl Num {
        /// Clinger's fast path: `mantissa` and `10^frac_digits` are exact doubles, so one
        /// IEEE division is correctly rounded (the same double as `str::parse`).
        #[inline(always)]
        fn f64(&self) -> Option<f64> {
            if self.mantissa >= 1 << 53 || self.frac_digits as usize >= POW10.len() {
                return None;
            }
            let v = self.mantissa as f64 / POW10[self.frac_digits as usize];
            Some(if self.neg { -v } else { v })
        }

        /// As [`super::timestamp::parse_numeric`]: the unit from the integer part's order of
        /// magnitude, the value floored to milliseconds (non-negative values only here).
        #[inline(always)]
        fn ts(&self) -> Option<(i64, TsUnit)> {
            if self.neg {
                return None;
            }
            let f = self.frac_digits as usize;
            let scale = POW10_U64[f];
            let (int, frac) = (self.mantissa / scale, self.mantissa % scale);
            let int_digits = POW10_U64.iter().take_while(|&&p| p <= int).count();
            let (unit, ms) = match int_digits {
                0..=11 => {
                    // The first three fraction digits, floored.
                    let frac_ms = if f <= 3 { frac * POW10_U64[3 - f] } else { frac / POW10_U64[f - 3] };
                    (TsUnit::Seconds, int * 1000 + frac_ms)
                }
                12..=14 => (TsUnit::Millis, int),
                15..=17 => (TsUnit::Micros, int / 1000),
                _ => (TsUnit::Nanos, int / 1_000_000),
            };
            Some((i64::try_from(ms).ok()?, unit))
        }
    }

    #[inline(always)]
    fn ws(b: &[u8], i: &mut usize) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = b.get(*i) {
            *i += 1;
        }
    }

    /// The bytes of a string at `b[*i] == '"'` when they are printable ASCII without
    /// escapes; `None` otherwise.
    #[inline(always)]
    fn ascii_string<'a>(b: &'a [u8], i: &mut usize) -> Option<&'a [u8]> {
        let start = *i + 1;
        let mut j = start;
        loop {
            match *b.get(j)? {
                b'"' => break,
                b'\\' => return None,
                0x20..=0x7e => j += 1,
                _ => return None,
            }
        }
        *i = j + 1;
        Some(&b[start..j])
    }

    /// A key spelling with its closing quote as two little-endian words and masks, so a key
    /// is recognised with two loads and compares.
    struct KeyWord {
        lo: u64,
        lo_mask: u64,
        hi: u64,
        hi_mask: u64,
        slot: Slot,
        len: usize,
    }

    const fn key_word(name: &[u8], slot: Slot) -> KeyWord {
        let (mut lo, mut lo_mask, mut hi, mut hi_mask) = (0u64, 0u64, 0u64, 0u64);
        let mut k = 0;
        // The name and its closing quote, at most 16 bytes.
        while k <= name.len() {
            let c = if k < name.len() { name[k] } else { b'"' };
            if k < 8 {
                lo |= (c as u64) << (8 * k);
                lo_mask |= 0xff << (8 * k);
            } else {
                hi |= (c as u64) << (8 * (k - 8));
                hi_mask |= 0xff << (8 * (k - 8));
            }
            k += 1;
        }
        KeyWord { lo, lo_mask, hi, hi_mask, slot, len: name.len() }
    }

    /// The spellings of the bar fields of at most 15 bytes, most common first.
    const KEYS: [KeyWord; 11] = [
        key_word(b"stock_symbol", Slot::Symbol),
        key_word(b"timestamp", Slot::Ts),
        key_word(b"open", Slot::Open),
        key_word(b"high", Slot::High),
        key_word(b"low", Slot::Low),
        key_word(b"close", Slot::Close),
        key_word(b"volume", Slot::Volume),
        key_word(b"symbol", Slot::Symbol),
        key_word(b"ts", Slot::Ts),
        key_word(b"size", Slot::Volume),
        key_word(b"local_time", Slot::Ts),
    ];

    /// The slot of the key at `b[*i] == '"'`, compared with the known spellings word-wise (a
    /// key with escapes or of another spelling goes by [`slot_of`], or gives `None`).
    #[inline(always)]
    fn key(b: &[u8], i: &mut usize) -> Option<Slot> {
        if let Some(head) = b.get(*i + 1..*i + 17) {
            let (lo, hi) = head.split_at(8);
            // Both halves are 8 bytes long (split of a 16-byte slice).
            let lo = u64::from_le_bytes(lo.try_into().ok()?);
            let hi = u64::from_le_bytes(hi.try_into().ok()?);
            for k in &KEYS {
                if lo & k.lo_mask == k.lo && hi & k.hi_mask == k.hi {
                    *i += k.len + 2;
                    return Some(k.slot);
                }
            }
        }
        // The other spellings (`opening_price`, ...), or a key near the end of the line.
        let key = ascii_string(b, i)?;
        slot_of(key).map(|(slot, _)| slot)
    }

    /// The bar of `line` when it has the common shape and is valid; `None` sends the line
    /// to the general path.
    #[inline]
    pub(super) fn decode(line: &[u8], bounds: &TimeBounds) -> Option<(Bar, TsUnit)> {
        let b = line;
        let mut i = 0;
        ws(b, &mut i);
        if b.get(i) != Some(&b'{') {
            return None;
        }
        i += 1;
        let mut seen = 0u8;
        let mut nums = [0f64; 8];
        let mut symbol: &[u8] = &[];
        let mut ts = (0i64, TsUnit::Millis);
        loop {
            ws(b, &mut i);
            if b.get(i) != Some(&b'"') {
                return None;
            }
            let slot = key(b, &mut i)?;
            let bit = 1u8 << slot as u8;
            if seen & bit != 0 || slot == Slot::Price {
                return None;
            }
            seen |= bit;
            ws(b, &mut i);
            if b.get(i) != Some(&b':') {
                return None;
            }
            i += 1;
            ws(b, &mut i);
            match slot {
                Slot::Symbol => {
                    if b.get(i) != Some(&b'"') {
                        return None;
                    }
                    symbol = ascii_string(b, &mut i)?;
                }
                Slot::Ts => ts = number(b, &mut i)?.ts()?,
                _ => nums[slot as usize] = number(b, &mut i)?.f64()?,
            }
            ws(b, &mut i);
            match b.get(i) {
                Some(b',') => i += 1,
                Some(b'}') => {
                    i += 1;
                    break;
                }
                _ => return None,
            }
        }
        ws(b, &mut i);
        const ALL: u8 = (1 << Slot::Symbol as u8)
            | (1 << Slot::Ts as u8)
            | (1 << Slot::Open as u8)
            | (1 << Slot::High as u8)
            | (1 << Slot::Low as u8)
            | (1 << Slot::Close as u8)
            | (1 << Slot::Volume as u8);
        if i != b.len() || seen != ALL {
            return None;
        }
        // Printable ASCII, checked above.
        let symbol = Symbol::new(std::str::from_utf8(symbol).ok()?).ok()?;
        let n = |s: Slot| nums[s as usize];
        let bar = Bar::new(symbol, ts.0, n(Slot::Open), n(Slot::High), n(Slot::Low), n(Slot::Close), n(Slot::Volume));
        bar.validate(bounds).ok()?;
        Some((bar, ts.1))
    }
}

// ---------------------------------------------------------------------------------------
// The scanner.

/// A syntax error at a byte offset.
struct Syntax {
    pos: usize,
    message: Cow<'static, str>,
}

impl Syntax {
    fn into_kind(self) -> DecodeErrorKind {
        DecodeErrorKind::Syntax { format: "JSON", column: self.pos + 1, message: self.message.into_owned() }
    }
}

struct Scanner<'a> {
    b: &'a [u8],
    pos: usize,
}

/// Nesting depth at which an ignored value is rejected (guards the recursion).
const MAX_DEPTH: usize = 64;

impl<'a> Scanner<'a> {
    fn new(b: &'a [u8]) -> Self {
        Scanner { b, pos: 0 }
    }

    fn syntax(&self, message: impl Into<Cow<'static, str>>) -> Syntax {
        let message = message.into();
        if self.eof() {
            Syntax { pos: self.pos, message: format!("unexpected end of input, {message}").into() }
        } else {
            Syntax { pos: self.pos, message }
        }
    }

    fn eof(&self) -> bool {
        self.pos >= self.b.len()
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn skip_bom(&mut self) {
        if self.b[self.pos..].starts_with(b"\xEF\xBB\xBF") {
            self.pos += 3;
        }
    }

    /// Walks the object at the current `{` to its `}`: for each member, reads the key and the
    /// `:` and calls `value` with the scanner at the value, which must consume it.
    fn object(&mut self, mut value: impl FnMut(&mut Self, Cow<'a, [u8]>) -> Result<(), Syntax>) -> Result<(), Syntax> {
        self.expect(b'{', "expected '{'")?;
        self.ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.ws();
            if self.peek() != Some(b'"') {
                return Err(self.syntax("expected '\"' (a key)"));
            }
            let key = self.key()?;
            self.ws();
            self.expect(b':', "expected ':'")?;
            self.ws();
            value(self, key)?;
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(self.syntax("expected ',' or '}'")),
            }
        }
    }

    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.b.get(self.pos) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, c: u8, message: &'static str) -> Result<(), Syntax> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.syntax(message))
        }
    }

    /// A string starting at the current `"`; borrowed unless it has escapes.
    fn string(&mut self) -> Result<Cow<'a, str>, Syntax> {
        let start = self.pos + 1;
        let mut i = start;
        let mut high = 0u8;
        loop {
            match self.b.get(i) {
                Some(b'"') => break,
                Some(b'\\') => return self.string_escaped(start, i),
                Some(&c) if c < 0x20 => {
                    self.pos = i;
                    return Err(self.syntax("control character in string"));
                }
                Some(&c) => {
                    high |= c;
                    i += 1;
                }
                None => {
                    self.pos = i;
                    return Err(self.syntax("unterminated string"));
                }
            }
        }
        let raw = &self.b[start..i];
        let s = if high < 0x80 {
            // All bytes are ASCII, which is valid UTF-8.
            std::str::from_utf8(raw).map_err(|_| Syntax { pos: start, message: "invalid UTF-8".into() })?
        } else {
            std::str::from_utf8(raw)
                .map_err(|e| Syntax { pos: start + e.valid_up_to(), message: "invalid UTF-8 in string".into() })?
        };
        self.pos = i + 1;
        Ok(Cow::Borrowed(s))
    }

    /// An object key as bytes: keys are only compared with known ASCII names, so an escape-free
    /// ASCII key needs no UTF-8 validation (non-ASCII keys are still validated, and keys with
    /// escapes decoded, by [`Scanner::string`]).
    fn key(&mut self) -> Result<Cow<'a, [u8]>, Syntax> {
        let start = self.pos + 1;
        let mut i = start;
        while let Some(&c) = self.b.get(i) {
            if c == b'"' {
                self.pos = i + 1;
                return Ok(Cow::Borrowed(&self.b[start..i]));
            }
            if c == b'\\' || !(0x20..0x80).contains(&c) {
                break;
            }
            i += 1;
        }
        Ok(match self.string()? {
            Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
            Cow::Owned(s) => Cow::Owned(s.into_bytes()),
        })
    }

    /// The slow path of [`Scanner::string`]: decodes escapes into an owned string.
    fn string_escaped(&mut self, start: usize, first_escape: usize) -> Result<Cow<'a, str>, Syntax> {
        let mut out: Vec<u8> = self.b[start..first_escape].to_vec();
        let mut i = first_escape;
        loop {
            match self.b.get(i) {
                Some(b'"') => break,
                Some(b'\\') => {
                    let e = self.b.get(i + 1).copied();
                    i += 2;
                    let simple = match e {
                        Some(b'"') => b'"',
                        Some(b'\\') => b'\\',
                        Some(b'/') => b'/',
                        Some(b'b') => 8,
                        Some(b'f') => 12,
                        Some(b'n') => b'\n',
                        Some(b'r') => b'\r',
                        Some(b't') => b'\t',
                        Some(b'u') => {
                            let hi = self.hex4(i)?;
                            i += 4;
                            let cp = if (0xD800..0xDC00).contains(&hi) {
                                if self.b.get(i..i + 2) != Some(b"\\u") {
                                    self.pos = i;
                                    return Err(self.syntax("unpaired surrogate in \\u escape"));
                                }
                                let lo = self.hex4(i + 2)?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    self.pos = i;
                                    return Err(self.syntax("unpaired surrogate in \\u escape"));
                                }
                                i += 6;
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else if (0xDC00..0xE000).contains(&hi) {
                                self.pos = i - 6;
                                return Err(self.syntax("unpaired surrogate in \\u escape"));
                            } else {
                                hi
                            };
                            // Surrogates were excluded above, so the code point is valid.
                            let ch = char::from_u32(cp).unwrap_or(char::REPLACEMENT_CHARACTER);
                            let mut tmp = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut tmp).as_bytes());
                            continue;
                        }
                        _ => {
                            self.pos = i - 2;
                            return Err(self.syntax("invalid escape in string"));
                        }
                    };
                    out.push(simple);
                }
                Some(&c) if c < 0x20 => {
                    self.pos = i;
                    return Err(self.syntax("control character in string"));
                }
                Some(&c) => {
                    out.push(c);
                    i += 1;
                }
                None => {
                    self.pos = i;
                    return Err(self.syntax("unterminated string"));
                }
            }
        }
        self.pos = i + 1;
        String::from_utf8(out)
            .map(Cow::Owned)
            .map_err(|_| Syntax { pos: start, message: "invalid UTF-8 in string".into() })
    }

    fn hex4(&mut self, at: usize) -> Result<u32, Syntax> {
        let digits = self.b.get(at..at + 4).filter(|d| d.iter().all(u8::is_ascii_hexdigit));
        match digits {
            Some(d) => Ok(d.iter().fold(0, |acc, &c| acc * 16 + (c as char).to_digit(16).unwrap_or(0))),
            None => {
                self.pos = at;
                Err(self.syntax("expected 4 hex digits after \\u"))
            }
        }
    }

    /// A number token (JSON grammar); returns its text.
    #[inline]
    fn number(&mut self) -> Result<&'a str, Syntax> {
        let start = self.pos;
        let b = self.b;
        let mut i = start;
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        let digits = |i: &mut usize| {
            let s = *i;
            while *i < b.len() && b[*i].is_ascii_digit() {
                *i += 1;
            }
            *i - s
        };
        match b.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => {
                digits(&mut i);
            }
            _ => {
                self.pos = i;
                return Err(self.syntax("expected a digit"));
            }
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            if digits(&mut i) == 0 {
                self.pos = i;
                return Err(self.syntax("expected a digit after '.'"));
            }
        }
        if let Some(b'e' | b'E') = b.get(i) {
            i += 1;
            if let Some(b'+' | b'-') = b.get(i) {
                i += 1;
            }
            if digits(&mut i) == 0 {
                self.pos = i;
                return Err(self.syntax("expected a digit in the exponent"));
            }
        }
        self.pos = i;
        // The token is ASCII (sign, digits, '.', 'e', '+'), hence valid UTF-8.
        std::str::from_utf8(&b[start..i]).map_err(|_| Syntax { pos: start, message: "invalid number".into() })
    }

    /// A run of ASCII letters (after an optional sign) at the current position, for the
    /// literals `true`, `false`, `null` and the non-JSON `NaN` / `Infinity` spellings.
    fn word(&mut self) -> &'a [u8] {
        let start = self.pos;
        let mut i = start;
        if let Some(b'-' | b'+') = self.b.get(i) {
            i += 1;
        }
        while i < self.b.len() && self.b[i].is_ascii_alphabetic() {
            i += 1;
        }
        self.pos = i;
        &self.b[start..i]
    }

    /// Skips any JSON value (for ignored fields), checking its syntax.
    fn skip_value(&mut self, depth: usize) -> Result<(), Syntax> {
        if depth > MAX_DEPTH {
            return Err(self.syntax("nesting too deep"));
        }
        match self.peek() {
            Some(b'"') => self.string().map(drop),
            Some(b'-' | b'0'..=b'9') if !self.sign_then_letter() => self.number().map(drop),
            Some(b'{') => self.object(|s, _| s.skip_value(depth + 1)),
            Some(b'[') => {
                self.pos += 1;
                self.ws();
                if self.peek() == Some(b']') {
                    self.pos += 1;
                    return Ok(());
                }
                loop {
                    self.ws();
                    self.skip_value(depth + 1)?;
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b']') => {
                            self.pos += 1;
                            return Ok(());
                        }
                        _ => return Err(self.syntax("expected ',' or ']'")),
                    }
                }
            }
            _ => {
                let start = self.pos;
                match self.word() {
                    b"true" | b"false" | b"null" | b"NaN" | b"Infinity" | b"-Infinity" => Ok(()),
                    _ => {
                        self.pos = start;
                        Err(self.syntax("expected a value"))
                    }
                }
            }
        }
    }

    fn sign_then_letter(&self) -> bool {
        self.peek() == Some(b'-') && self.b.get(self.pos + 1).is_some_and(u8::is_ascii_alphabetic)
    }

    /// Reads a value for a numeric field: a number, a numeric string, or a NaN/Infinity
    /// spelling. `Ok(Err(_))` is a field error (the value was skipped, scanning can go on).
    fn field_value(&mut self) -> Result<Result<Value<'a>, Found>, Syntax> {
        match self.peek() {
            Some(b'"') => Ok(Ok(Value::Str(self.string()?))),
            Some(b'-' | b'0'..=b'9') if !self.sign_then_letter() => Ok(Ok(Value::Num(self.number()?))),
            Some(b'{') => {
                self.skip_value(0)?;
                Ok(Err(Found::Type("an object")))
            }
            Some(b'[') => {
                self.skip_value(0)?;
                Ok(Err(Found::Type("an array")))
            }
            _ => {
                let start = self.pos;
                let w = self.word();
                match w {
                    b"true" => Ok(Err(Found::Type("true"))),
                    b"false" => Ok(Err(Found::Type("false"))),
                    b"null" => Ok(Err(Found::Type("null"))),
                    _ if is_non_finite_word(w) => Ok(Err(Found::NonFinite(show_bytes(w)))),
                    _ => {
                        self.pos = start;
                        Err(self.syntax("expected a value"))
                    }
                }
            }
        }
    }
}

/// `nan`, `inf`, `infinity` in any case, with an optional sign.
fn is_non_finite_word(w: &[u8]) -> bool {
    let w = w.strip_prefix(b"-").or_else(|| w.strip_prefix(b"+")).unwrap_or(w);
    w.eq_ignore_ascii_case(b"nan") || w.eq_ignore_ascii_case(b"inf") || w.eq_ignore_ascii_case(b"infinity")
}

/// A scalar value of a recognised field.
#[derive(Clone)]
enum Value<'a> {
    Num(&'a str),
    Str(Cow<'a, str>),
}

/// A value that is not acceptable for the field: its type, or a NaN/Infinity token.
#[derive(Clone)]
enum Found {
    Type(&'static str),
    NonFinite(String),
}

impl Found {
    fn into_kind(self, field: &str, expected: &'static str) -> DecodeErrorKind {
        match self {
            Found::Type(t) => DecodeErrorKind::WrongType { field: field.into(), expected, found: t.into() },
            Found::NonFinite(v) => DecodeErrorKind::NotFinite { field: field.into(), value: v },
        }
    }
}

const NUMBER: &str = "a number or a numeric string";

/// A JSON number token's text, or a numeric string (`quoted`), to a finite f64: the number
/// rule of every decoder (the CSV reader passes its fields as strings). The error names
/// `field` and shows the value.
///
/// ```
/// use tickflow::decode::json::parse_f64;
/// assert_eq!(parse_f64("close", "101.25", true), Ok(101.25));
/// assert!(parse_f64("close", "1.", true).is_err());
/// ```
pub fn parse_f64(field: &str, text: &str, quoted: bool) -> Result<f64, DecodeErrorKind> {
    let shown = || {
        if quoted { show_str(text) } else { show_bytes(text.as_bytes()) }
    };
    if quoted && !is_json_number(text.as_bytes()) {
        let t = text.trim();
        if is_non_finite_word(t.as_bytes()) {
            return Err(DecodeErrorKind::NotFinite { field: field.into(), value: shown() });
        }
        return Err(DecodeErrorKind::NotANumber { field: field.into(), value: shown() });
    }
    if let Some(v) = fast_f64(text.as_bytes()) {
        return Ok(v);
    }
    match text.parse::<f64>() {
        Ok(v) if underflows(text, v) => Err(DecodeErrorKind::Underflow { field: field.into(), value: shown() }),
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err(DecodeErrorKind::NotFinite { field: field.into(), value: shown() }),
        Err(_) => Err(DecodeErrorKind::NotANumber { field: field.into(), value: shown() }),
    }
}

/// Whether `text` parsed to 0 only by underflow: a literal with a non-zero digit (`1e-400`)
/// whose value is below the smallest f64 above 0 (`0e-400` and `0.000` are a true 0;
/// subnormals such as `5e-324` are kept, they round-trip).
fn underflows(text: &str, v: f64) -> bool {
    if v != 0.0 {
        return false;
    }
    let mantissa = text.split(['e', 'E']).next().unwrap_or("");
    mantissa.bytes().any(|b| matches!(b, b'1'..=b'9'))
}

/// Clinger's fast path for plain decimals (`-?digits[.digits]`, no exponent): when the
/// digits form an integer `m < 2^53` and there are at most 22 fractional digits, `m` and
/// `10^k` are exact doubles and one IEEE division rounds correctly, so the result is the
/// same as `str::parse`. `None` sends everything else to `str::parse`.
#[inline]
fn fast_f64(b: &[u8]) -> Option<f64> {
    const POW10: [f64; 23] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19,
        1e20, 1e21, 1e22,
    ];
    let (neg, digits) = match b.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, b),
    };
    if digits.is_empty() || digits.len() > 17 {
        return None;
    }
    let mut m: u64 = 0;
    let mut frac: Option<usize> = None;
    for (i, &c) in digits.iter().enumerate() {
        match c {
            b'0'..=b'9' => m = m * 10 + u64::from(c - b'0'),
            b'.' if frac.is_none() => frac = Some(digits.len() - i - 1),
            _ => return None,
        }
    }
    // At most 17 digits: m < 10^17 fits in u64; it must also be exact as a double.
    if m >= 1 << 53 {
        return None;
    }
    let v = m as f64 / POW10[frac.unwrap_or(0)];
    Some(if neg { -v } else { v })
}

/// A timestamp value (number token, or a string when `quoted`) to milliseconds and the unit it
/// was written in: every form of [`super::timestamp`].
///
/// ```
/// use tickflow::decode::{TsUnit, json::parse_ts};
/// assert_eq!(parse_ts("ts", "1700000000", true), Ok((1_700_000_000_000, TsUnit::Seconds)));
/// ```
pub fn parse_ts(field: &str, text: &str, quoted: bool) -> Result<(i64, TsUnit), DecodeErrorKind> {
    let shown = || {
        if quoted { show_str(text) } else { show_bytes(text.as_bytes()) }
    };
    let r = if quoted {
        if is_non_finite_word(text.trim().as_bytes()) {
            return Err(DecodeErrorKind::NotFinite { field: field.into(), value: shown() });
        }
        timestamp::parse_str(text)
    } else {
        timestamp::parse_numeric(text)
    };
    r.map_err(|reason| DecodeErrorKind::Timestamp { field: field.into(), value: shown(), reason })
}

// ---------------------------------------------------------------------------------------
// The bar object.

#[derive(Clone, Copy, PartialEq, Eq)]
enum Slot {
    Symbol,
    Ts,
    Open,
    High,
    Low,
    Close,
    Volume,
    Price,
}

const SLOTS: usize = 8;

/// The recognised keys: their slot and their spelling as a `'static` name for messages.
#[inline]
fn slot_of(key: &[u8]) -> Option<(Slot, &'static str)> {
    Some(match key {
        b"symbol" => (Slot::Symbol, "symbol"),
        b"stock_symbol" => (Slot::Symbol, "stock_symbol"),
        b"timestamp" => (Slot::Ts, "timestamp"),
        b"ts" => (Slot::Ts, "ts"),
        b"local_time" => (Slot::Ts, "local_time"),
        b"open" => (Slot::Open, "open"),
        b"opening_price" => (Slot::Open, "opening_price"),
        b"high" => (Slot::High, "high"),
        b"low" => (Slot::Low, "low"),
        b"close" => (Slot::Close, "close"),
        b"closing_price" => (Slot::Close, "closing_price"),
        b"volume" => (Slot::Volume, "volume"),
        b"size" => (Slot::Volume, "size"),
        b"price" => (Slot::Price, "price"),
        _ => return None,
    })
}

const NAMES_SYMBOL: &[&str] = &["symbol", "stock_symbol"];
const NAMES_TS: &[&str] = &["timestamp", "ts", "local_time"];
const NAMES_OPEN: &[&str] = &["open", "opening_price"];
const NAMES_HIGH: &[&str] = &["high"];
const NAMES_LOW: &[&str] = &["low"];
const NAMES_CLOSE: &[&str] = &["close", "closing_price"];
const NAMES_VOLUME: &[&str] = &["volume", "size"];

/// Scans one object at the scanner's position (which must be at `{`) and builds the bar.
/// The outer error is a syntax error (the object's end is unknown); the inner one a field,
/// presence or validation error (the scanner is past the object).
fn decode_object(s: &mut Scanner<'_>, bounds: &TimeBounds) -> Result<Result<(Bar, TsUnit), DecodeErrorKind>, Syntax> {
    let mut names: [Option<&'static str>; SLOTS] = [None; SLOTS];
    let mut nums = [0f64; SLOTS];
    let mut symbol: Option<Cow<'_, str>> = None;
    let mut ts: Option<(i64, TsUnit)> = None;
    let mut first_err: Option<DecodeErrorKind> = None;
    s.object(|s, key| {
        match slot_of(&key) {
            None => s.skip_value(0)?,
            Some((slot, name)) => {
                let value = s.field_value()?;
                if first_err.is_none() {
                    first_err = store(slot, name, value, &mut names, &mut nums, &mut symbol, &mut ts).err();
                }
                names[slot as usize].get_or_insert(name);
            }
        }
        Ok(())
    })?;
    if let Some(e) = first_err {
        return Ok(Err(e));
    }
    Ok(build(&names, &nums, symbol, ts, bounds))
}

/// Stores a recognised field's value in its slot, or says what is wrong with it.
fn store<'a>(
    slot: Slot,
    name: &'static str,
    value: Result<Value<'a>, Found>,
    names: &mut [Option<&'static str>; SLOTS],
    nums: &mut [f64; SLOTS],
    symbol: &mut Option<Cow<'a, str>>,
    ts: &mut Option<(i64, TsUnit)>,
) -> Result<(), DecodeErrorKind> {
    if let Some(first) = names[slot as usize] {
        return Err(DecodeErrorKind::Duplicate { field: name, first });
    }
    let ohlc = [Slot::Open, Slot::High, Slot::Low, Slot::Close];
    if slot == Slot::Price {
        if let Some(other) = ohlc.iter().find_map(|&o| names[o as usize]) {
            return Err(DecodeErrorKind::Conflict { field: name, other });
        }
    } else if ohlc.contains(&slot) {
        if let Some(other) = names[Slot::Price as usize] {
            return Err(DecodeErrorKind::Conflict { field: name, other });
        }
    }
    match slot {
        Slot::Symbol => match value {
            Ok(Value::Str(v)) => *symbol = Some(v),
            Ok(Value::Num(n)) => {
                let found = show_bytes(n.as_bytes());
                return Err(DecodeErrorKind::WrongType { field: name.into(), expected: "a string", found });
            }
            Err(f) => return Err(f.into_kind(name, "a string")),
        },
        Slot::Ts => {
            *ts = Some(match value {
                Ok(Value::Num(n)) => parse_ts(name, n, false)?,
                Ok(Value::Str(v)) => parse_ts(name, &v, true)?,
                Err(f) => return Err(f.into_kind(name, "a number or a string")),
            })
        }
        _ => {
            nums[slot as usize] = match value {
                Ok(Value::Num(n)) => parse_f64(name, n, false)?,
                Ok(Value::Str(v)) => parse_f64(name, &v, true)?,
                Err(f) => return Err(f.into_kind(name, NUMBER)),
            }
        }
    }
    Ok(())
}

fn build(
    names: &[Option<&'static str>; SLOTS],
    nums: &[f64; SLOTS],
    symbol: Option<Cow<'_, str>>,
    ts: Option<(i64, TsUnit)>,
    bounds: &TimeBounds,
) -> Result<(Bar, TsUnit), DecodeErrorKind> {
    let missing = |names| DecodeErrorKind::Missing { names };
    let symbol = symbol.ok_or(missing(NAMES_SYMBOL))?;
    let (ts, unit) = ts.ok_or(missing(NAMES_TS))?;
    let has = |slot: Slot| names[slot as usize].is_some();
    let n = |slot: Slot| nums[slot as usize];
    let symbol = Symbol::new(&symbol)?;
    let bar = if has(Slot::Price) {
        Bar::tick(symbol, ts, n(Slot::Price), n(Slot::Volume))
    } else {
        for (slot, names) in [
            (Slot::Open, NAMES_OPEN),
            (Slot::High, NAMES_HIGH),
            (Slot::Low, NAMES_LOW),
            (Slot::Close, NAMES_CLOSE),
            (Slot::Volume, NAMES_VOLUME),
        ] {
            if !has(slot) {
                // A record with none of the bar prices is most likely a tick missing "price".
                let none = [Slot::Open, Slot::High, Slot::Low, Slot::Close].iter().all(|&s| !has(s));
                return Err(missing(if none && slot == Slot::Open { NAMES_PRICE_OR_OPEN } else { names }));
            }
        }
        Bar::new(symbol, ts, n(Slot::Open), n(Slot::High), n(Slot::Low), n(Slot::Close), n(Slot::Volume))
    };
    bar.validate(bounds)?;
    Ok((bar, unit))
}

const NAMES_PRICE_OR_OPEN: &[&str] = &["open", "opening_price", "price"];

// ---------------------------------------------------------------------------------------
// UDF bodies.

#[derive(Clone)]
enum UdfValue<'a> {
    Num(&'a str),
    Str(Cow<'a, str>),
    Bad(Found),
}

impl UdfValue<'_> {
    fn number(self, name: &str) -> Result<f64, DecodeErrorKind> {
        match self {
            UdfValue::Num(n) => parse_f64(name, n, false),
            UdfValue::Str(s) => parse_f64(name, &s, true),
            UdfValue::Bad(f) => Err(f.into_kind(name, NUMBER)),
        }
    }
}

struct Udf<'a> {
    status: Option<Cow<'a, str>>,
    errmsg: Option<Cow<'a, str>>,
    t: Option<Vec<UdfValue<'a>>>,
    o: Option<Vec<UdfValue<'a>>>,
    h: Option<Vec<UdfValue<'a>>>,
    l: Option<Vec<UdfValue<'a>>>,
    c: Option<Vec<UdfValue<'a>>>,
    v: Option<Vec<UdfValue<'a>>>,
}

fn parse_udf(body: &[u8]) -> Result<Result<Udf<'_>, DecodeErrorKind>, Syntax> {
    let mut s = Scanner::new(body);
    let mut udf = Udf { status: None, errmsg: None, t: None, o: None, h: None, l: None, c: None, v: None };
    let mut err = None;
    s.skip_bom();
    s.ws();
    s.object(|s, key| {
        let col = match key.as_ref() {
            b"t" => Some((&mut udf.t, "t")),
            b"o" => Some((&mut udf.o, "o")),
            b"h" => Some((&mut udf.h, "h")),
            b"l" => Some((&mut udf.l, "l")),
            b"c" => Some((&mut udf.c, "c")),
            b"v" => Some((&mut udf.v, "v")),
            _ => None,
        };
        if let Some((col, name)) = col {
            if s.peek() == Some(b'[') {
                let values = udf_array(s)?;
                if col.is_some() && err.is_none() {
                    err = Some(DecodeErrorKind::Duplicate { field: name, first: name });
                }
                *col = Some(values);
            } else {
                let found = match s.field_value()? {
                    Ok(Value::Num(n)) => show_bytes(n.as_bytes()),
                    Ok(Value::Str(v)) => show_str(&v),
                    Err(Found::Type(t)) => t.to_string(),
                    Err(Found::NonFinite(v)) => v,
                };
                err.get_or_insert(DecodeErrorKind::WrongType { field: name.into(), expected: "an array", found });
            }
        } else if let b"s" | b"errmsg" = key.as_ref() {
            let v = if s.peek() == Some(b'"') {
                Some(s.string()?)
            } else {
                s.skip_value(0)?;
                let field = String::from_utf8_lossy(&key).into_owned();
                err.get_or_insert(DecodeErrorKind::WrongType {
                    field,
                    expected: "a string",
                    found: "another type".into(),
                });
                None
            };
            if key.as_ref() == b"s" { udf.status = v } else { udf.errmsg = v }
        } else {
            s.skip_value(0)?;
        }
        Ok(())
    })?;
    s.ws();
    if !s.eof() {
        return Err(s.syntax("unexpected text after the object"));
    }
    Ok(match err {
        Some(e) => Err(e),
        None => Ok(udf),
    })
}

fn udf_array<'a>(s: &mut Scanner<'a>) -> Result<Vec<UdfValue<'a>>, Syntax> {
    let mut out = Vec::new();
    s.expect(b'[', "expected '['")?;
    s.ws();
    if s.peek() == Some(b']') {
        s.pos += 1;
        return Ok(out);
    }
    loop {
        s.ws();
        out.push(match s.field_value()? {
            Ok(Value::Num(n)) => UdfValue::Num(n),
            Ok(Value::Str(v)) => UdfValue::Str(v),
            Err(f) => UdfValue::Bad(f),
        });
        s.ws();
        match s.peek() {
            Some(b',') => s.pos += 1,
            Some(b']') => {
                s.pos += 1;
                return Ok(out);
            }
            _ => return Err(s.syntax("expected ',' or ']'")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Number texts around the fast path's edges: plain decimals of every length, leading
    /// zeros, signs, exponents, too many digits, and broken tokens.
    fn number_text() -> impl Strategy<Value = String> {
        prop_oneof![
            (0u64..10_000_000, 0usize..6).prop_map(|(m, f)| {
                let s = m.to_string();
                if f == 0 || f >= s.len() { s } else { format!("{}.{}", &s[..s.len() - f], &s[s.len() - f..]) }
            }),
            "-?(0|[1-9][0-9]{0,22})(\\.[0-9]{1,25})?([eE][+-]?[0-9]{1,3})?",
            "-?0[0-9]{1,3}(\\.[0-9]{0,3})?",
            "\"[0-9.]{1,8}\"|-|\\.5|1\\.|NaN|1e400|9007199254740993|0\\.0000000000000000000000001",
        ]
    }

    fn ts_text() -> impl Strategy<Value = String> {
        prop_oneof![
            (1_600_000_000u64..1_800_000_000, 0u32..4).prop_map(|(s, d)| if d == 0 {
                format!("{s}")
            } else {
                format!("{s}.{:0w$}", s % 10u64.pow(d), w = d as usize)
            }),
            (1_600_000_000_000u64..1_800_000_000_000).prop_map(|ms| ms.to_string()),
            (1_600_000_000_000_000u64..1_800_000_000_000_000).prop_map(|us| format!("{us}")),
            "[0-9]{1,20}(\\.[0-9]{1,6})?|-[0-9]{1,12}",
        ]
    }

    proptest! {
        /// Whenever the fast path returns a bar, it is the one the general path returns.
        #[test]
        fn fast_path_agrees_with_the_general_path(
            sym in "SYM[0-9]{4}|[A-Z]{1,5}|A\\u0042|A\"B|-|x{33}",
            ts in ts_text(),
            o in number_text(), h in number_text(), l in number_text(), c in number_text(), v in number_text(),
            keys in prop::sample::select(vec![
                ["stock_symbol", "timestamp", "open", "high", "low", "close", "volume"],
                ["symbol", "ts", "opening_price", "high", "low", "closing_price", "size"],
                ["symbol", "local_time", "open", "high", "low", "close", "price"],
                ["symbol", "ts", "open", "high", "high", "close", "volume"],
                ["symbol", "ts", "open", "high", "low", "close", "other"],
            ]),
            order in Just((0..7).collect::<Vec<usize>>()).prop_shuffle(),
            sep in prop::sample::select(vec![", ", ",", " , ", ",\t"]),
            tail in prop::sample::select(vec!["", "\n", "\r\n", " x", "}"]),
        ) {
            let vals = [format!("\"{sym}\""), ts, o, h, l, c, v];
            let fields: Vec<String> = order.iter().map(|&k| format!("\"{}\": {}", keys[k], vals[k])).collect();
            let line = format!("{{{}}}{tail}", fields.join(sep));
            let bounds = TimeBounds::default();
            if let Some((bar, unit)) = fast::decode(line.as_bytes(), &bounds) {
                prop_assert_eq!(decode_general(line.as_bytes(), 1, &bounds), Ok((bar, unit)), "{}", line);
            }
        }
    }

    #[test]
    fn fuzz_ndjson_reader_and_body_agree_on_a_string_open_at_the_line_end() {
        // fuzz/artifacts/ndjson/crash-11ba77b9…: the reader decoded the line with its `\n`.
        let body = b"{\"symbol\":\"A\",\"ts\":1,\"open\":1,\"high\":1,\"low\":1,\"close\":1,\"volume\":1}\n{\"symbol\":\"C\x7f\n";
        for crlf in [false, true] {
            let body: Vec<u8> = if crlf {
                body.iter().flat_map(|&c| if c == b'\n' { vec![b'\r', c] } else { vec![c] }).collect()
            } else {
                body.to_vec()
            };
            let b = TimeBounds::default();
            let streamed: Vec<_> = NdjsonReader::new(&body[..], b).collect();
            assert_eq!(streamed, decode_json_body(&body, &b), "crlf: {crlf}");
            assert!(streamed[0].is_ok());
            assert_eq!(streamed[1].as_ref().unwrap_err().record(), 2);
        }
        let err = NdjsonReader::new(&body[..], TimeBounds::default()).nth(1).unwrap().unwrap_err();
        assert!(err.to_string().contains("unterminated string"), "{err}");
    }

    #[test]
    fn array_elements_are_delimited_through_strings_and_nesting() {
        let body = br#" [ {"a": "x,]}"}, {"b": [1, 2]} ,3 ] "#;
        let got: Vec<&str> =
            json_array_elements(body).into_iter().map(|r| std::str::from_utf8(&body[r]).unwrap()).collect();
        assert_eq!(got, [r#"{"a": "x,]}"}"#, r#"{"b": [1, 2]}"#, "3"]);
        assert!(json_array_elements(b"[]").is_empty());
        let broken = br#"[{"a": 1}, {"b": tru}, {"c": 3}]  "#;
        let got: Vec<&str> =
            json_array_elements(broken).into_iter().map(|r| std::str::from_utf8(&broken[r]).unwrap()).collect();
        assert_eq!(got, [r#"{"a": 1}"#, r#"{"b": tru}, {"c": 3}]"#]);
    }

    #[test]
    fn w1_lines_take_the_fast_path() {
        let bounds = TimeBounds::default();
        for line in [
            r#"{"stock_symbol": "SYM0007", "timestamp": 1700000000.0, "open": 101.2345, "high": 101.9, "low": 100.8812, "close": 101.5, "volume": 48211.37}"#,
            "{\"symbol\":\"AAPL\",\"ts\":1700000000123,\"open\":1,\"high\":2,\"low\":0.5,\"close\":1.5,\"volume\":0}\r\n",
        ] {
            let fast = fast::decode(line.as_bytes(), &bounds);
            assert!(fast.is_some(), "{line}");
            assert_eq!(fast.map(Ok), Some(decode_general(line.as_bytes(), 1, &bounds)));
        }
        let (bar, unit) = fast::decode(
            br#"{"symbol":"A","ts":1700000000.1239,"open":3,"high":3,"low":3,"close":3,"volume":1}"#,
            &bounds,
        )
        .unwrap();
        assert_eq!((bar.ts, unit), (1_700_000_000_123, TsUnit::Seconds));
    }

    fn err(line: &str) -> String {
        decode_json_line(line.as_bytes(), 3, &TimeBounds::default()).unwrap_err().to_string()
    }

    #[test]
    fn underflowing_numbers_are_rejected_not_read_as_zero() {
        assert_eq!(
            err(r#"{"symbol":"AAPL","ts":1700000000000,"open":1,"high":1,"low":1,"close":1,"volume":1e-400}"#),
            "record 3: volume: 1e-400 underflows to 0: its magnitude is below 5e-324, the smallest number above 0 \
             that can be stored"
        );
        assert_eq!(
            err(r#"{"symbol":"AAPL","ts":1700000000000,"open":"-2.5E-999","high":1,"low":1,"close":1,"volume":1}"#),
            "record 3: open: \"-2.5E-999\" underflows to 0: its magnitude is below 5e-324, the smallest number above \
             0 that can be stored"
        );
        // A true zero, however written, is a zero; subnormals are kept.
        let ok = |v: &str| {
            let line =
                format!(r#"{{"symbol":"A","ts":1700000000000,"open":1,"high":1,"low":1,"close":1,"volume":{v}}}"#);
            decode_json_line(line.as_bytes(), 1, &TimeBounds::default()).map(|b| b.volume)
        };
        assert_eq!(ok("0e-400"), Ok(0.0));
        assert_eq!(ok("0.000"), Ok(0.0));
        assert_eq!(ok("5e-324"), Ok(5e-324));
    }

    #[test]
    fn negative_and_zero_bars_and_punctuation_symbols_are_rejected() {
        assert_eq!(
            err(r#"{"symbol":"SPRD","ts":1700000000000,"open":-1,"high":-0.5,"low":-2,"close":-1,"volume":3}"#),
            "record 3: open: -1 is not above 0 (rule: prices > 0; allow-non-positive-prices accepts instruments that \
             can go negative)"
        );
        assert_eq!(
            err(r#"{"symbol":"ZERO","ts":1700000000000,"open":0,"high":0,"low":0,"close":0,"volume":0}"#),
            "record 3: open: 0 is not above 0 (rule: prices > 0; allow-non-positive-prices accepts instruments that \
             can go negative)"
        );
        let spreads = TimeBounds { allow_non_positive_prices: true, ..TimeBounds::default() };
        let line = br#"{"symbol":"SPRD","ts":1700000000000,"open":-1,"high":-0.5,"low":-2,"close":-1,"volume":3}"#;
        assert_eq!(decode_json_line(line, 1, &spreads).unwrap().low, -2.0);
        for sym in ["-", ".", ".."] {
            assert_eq!(
                err(&format!(r#"{{"symbol":"{sym}","ts":1700000000000,"price":1}}"#)),
                format!("record 3: symbol: {sym:?} has no letter or digit; a symbol needs at least one of A-Z a-z 0-9")
            );
        }
    }
}
