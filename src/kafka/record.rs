//! The payloads produced to the bars topics (by the gateway, the connectors, the generator): the canonical JSON bar (bars topic) and the
//! dead-letter record (dead-letter topic).
//!
//! The canonical bar is `{"symbol":"AAPL","timestamp":1700000000000,"open":10.0,"high":11.0,
//! "low":9.5,"close":10.5,"volume":1200.0}`: the timestamp in integer milliseconds (in
//! seconds with three decimals for 1966-10 .. 1973-03, where a millisecond count would be
//! read as seconds), prices in shortest round-trip digits (ryu), so
//! [`crate::decode::decode_json_line`] reads it back to the identical [`Bar`] for any time
//! within the default [`TimeBounds`](tickflow_operators::TimeBounds). It is written
//! into a caller's buffer: one buffer per request, no allocation per record.

use serde::Serialize;
use tickflow_operators::Bar;

/// Timestamps whose magnitude in ms is below this would be read back as seconds (see
/// [`crate::decode::timestamp`]).
const AMBIGUOUS_MS: u64 = 100_000_000_000;

/// Appends `bar` as canonical JSON (no newline) to `out`. The bar must be valid (finite
/// numbers): every valid bar encodes to valid JSON.
///
/// ```
/// use tickflow::kafka::encode_bar;
/// use tickflow_operators::{Bar, Symbol};
/// let bar = Bar::new(Symbol::new("AAPL").unwrap(), 1_700_000_000_000, 10.0, 11.0, 9.5, 10.5, 1200.0);
/// let mut buf = Vec::new();
/// encode_bar(&bar, &mut buf);
/// assert_eq!(
///     std::str::from_utf8(&buf).unwrap(),
///     r#"{"symbol":"AAPL","timestamp":1700000000000,"open":10.0,"high":11.0,"low":9.5,"close":10.5,"volume":1200.0}"#
/// );
/// ```
pub fn encode_bar(bar: &Bar, out: &mut Vec<u8>) {
    let mut f = ryu::Buffer::new();
    let mut i = itoa::Buffer::new();
    // Symbols are [A-Za-z0-9._:-] (checked by `Symbol::new`): nothing to escape.
    out.extend_from_slice(b"{\"symbol\":\"");
    out.extend_from_slice(bar.symbol.as_str().as_bytes());
    out.extend_from_slice(b"\",\"timestamp\":");
    if bar.ts.unsigned_abs() >= AMBIGUOUS_MS {
        out.extend_from_slice(i.format(bar.ts).as_bytes());
    } else {
        // Below 1e11 a number reads as seconds (1966-10 .. 1973-03 in ms): write seconds
        // with the milliseconds as three decimals, which read back exactly.
        if bar.ts < 0 {
            out.push(b'-');
        }
        let abs = bar.ts.unsigned_abs();
        out.extend_from_slice(i.format(abs / 1000).as_bytes());
        if abs % 1000 != 0 {
            let frac = abs % 1000;
            out.extend_from_slice(&[
                b'.',
                b'0' + (frac / 100) as u8,
                b'0' + (frac / 10 % 10) as u8,
                b'0' + (frac % 10) as u8,
            ]);
        }
    }
    for (name, v) in [
        (&b",\"open\":"[..], bar.open),
        (b",\"high\":", bar.high),
        (b",\"low\":", bar.low),
        (b",\"close\":", bar.close),
        (b",\"volume\":", bar.volume),
    ] {
        out.extend_from_slice(name);
        // A valid bar's numbers are finite; `format` would write `NaN`/`inf` (not JSON)
        // for anything else, so an invalid bar shows up as a decode error downstream.
        out.extend_from_slice(f.format(v).as_bytes());
    }
    out.push(b'}');
}

/// Largest raw record copied into a dead letter; longer ones are cut (and flagged).
pub const MAX_DEAD_LETTER_RAW: usize = 64 * 1024;

/// One rejected record as written to the dead-letter topic (JSON).
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter<'a> {
    /// Who wrote it.
    pub source: &'static str,
    /// 0-based index of the record in its request (line for NDJSON/CSV, element for
    /// arrays, row for UDF).
    pub index: u64,
    /// The field the problem is about, if any.
    pub field: Option<&'a str>,
    /// Why it was rejected (the decoder's message).
    pub reason: String,
    /// The request's media type.
    pub content_type: &'a str,
    /// When the gateway received it (ms since the epoch).
    pub received_ms: i64,
    /// The record's raw text (lossy UTF-8), cut at [`MAX_DEAD_LETTER_RAW`] bytes.
    pub raw: std::borrow::Cow<'a, str>,
    /// Whether `raw` was cut.
    pub raw_truncated: bool,
}

impl DeadLetter<'_> {
    /// The JSON payload.
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing a struct of strings and integers into a Vec cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// `raw` cut at [`MAX_DEAD_LETTER_RAW`] bytes, as lossy UTF-8, and whether it was cut.
pub fn dead_letter_raw(raw: &[u8]) -> (std::borrow::Cow<'_, str>, bool) {
    let cut = raw.len() > MAX_DEAD_LETTER_RAW;
    (String::from_utf8_lossy(&raw[..raw.len().min(MAX_DEAD_LETTER_RAW)]), cut)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::decode_json_line;
    use proptest::prelude::*;
    use tickflow_operators::{Symbol, TimeBounds};

    #[test]
    fn timestamps_near_1970_read_back_although_small_numbers_are_seconds() {
        let bounds = TimeBounds::default();
        for ts in [0, 1, -1, -1500, 86_400_000, 86_400_120, 99_999_999_999, 100_000_000_000, -100_000_000_001] {
            let bar = Bar::new(Symbol::new("OLD").unwrap(), ts, 1.0, 1.0, 1.0, 1.0, 1.0);
            let mut buf = Vec::new();
            encode_bar(&bar, &mut buf);
            let back = decode_json_line(&buf, 1, &bounds).unwrap();
            assert_eq!(back.ts, ts, "{}", String::from_utf8_lossy(&buf));
        }
    }

    proptest! {
        #[test]
        fn canonical_json_reads_back_to_the_identical_bar(
            ts in TimeBounds::DEFAULT_MIN..TimeBounds::DEFAULT_MAX,
            a in -1e12f64..1e12, b in -1e12f64..1e12, spread in 0f64..1e6, vol in 0f64..1e15,
            sym in "[A-Za-z0-9][A-Za-z0-9._:-]{0,31}",
        ) {
            let (o, c) = (a, b);
            // Negative prices too (the round trip is about the number format).
            let any = TimeBounds { allow_non_positive_prices: true, ..TimeBounds::default() };
            let bar = Bar::new(Symbol::new(&sym).unwrap(), ts, o, o.max(c) + spread, o.min(c) - spread, c, vol);
            prop_assume!(bar.validate(&any).is_ok());
            let mut buf = Vec::new();
            encode_bar(&bar, &mut buf);
            let back = decode_json_line(&buf, 1, &any).unwrap();
            prop_assert_eq!(back, bar);
            prop_assert_eq!(back.close.to_bits(), bar.close.to_bits());
        }
    }

    #[test]
    fn extreme_floats_read_back_bit_identical() {
        let any = TimeBounds { allow_non_positive_prices: true, ..TimeBounds::default() };
        for v in [0.0, 5e-324, 1e-7, 1e16, 1.7976931348623157e308, 0.1 + 0.2] {
            let bar = Bar::new(Symbol::new("X").unwrap(), 1_700_000_000_000, v, v, v, v, v);
            let mut buf = Vec::new();
            encode_bar(&bar, &mut buf);
            let back = decode_json_line(&buf, 1, &any).unwrap();
            assert_eq!(back.open.to_bits(), v.to_bits(), "{}", String::from_utf8_lossy(&buf));
        }
    }
}
