//! Invariants shared by the fuzz targets: what every decoded bar and every decode error must
//! satisfy, beyond "did not panic".

use tickflow::decode::{DecodeError, DecodeErrorKind, Location, TsUnit, decode_json_line};
use tickflow::kafka::encode_bar;
use tickflow_operators::{Bar, TimeBounds};

/// The bounds the targets decode with: the default, and the default that also accepts prices
/// at or below zero (picked by one input bit).
pub fn bounds(permissive: bool) -> TimeBounds {
    TimeBounds { allow_non_positive_prices: permissive, ..TimeBounds::default() }
}

/// Every field of two bars bit for bit (`==` on `f64` would take `-0.0` for `0.0`).
pub fn assert_same_bar(a: &Bar, b: &Bar, what: &str) {
    let bits = |x: &Bar| [x.open, x.high, x.low, x.close, x.volume].map(f64::to_bits);
    assert!(a.symbol == b.symbol && a.ts == b.ts && bits(a) == bits(b), "{what}: {a:?} came back as {b:?}");
}

/// A decoded bar is valid under `bounds`, and reads back identical from the canonical JSON
/// the gateway produces and from an RFC 3339-timestamped CSV line.
pub fn check_bar(bar: &Bar, bounds: &TimeBounds) {
    assert!(bar.validate(bounds).is_ok(), "a decoded bar fails validation: {bar:?}");
    let mut json = Vec::with_capacity(128);
    encode_bar(bar, &mut json);
    match decode_json_line(&json, 1, bounds) {
        Ok(back) => assert_same_bar(bar, &back, "canonical JSON"),
        Err(e) => panic!("canonical JSON {:?} of {bar:?} does not decode: {e}", String::from_utf8_lossy(&json)),
    }
    let csv = format!(
        "ts,symbol,open,high,low,close,volume\n{},{},{:?},{:?},{:?},{:?},{:?}\n",
        TsUnit::Rfc3339.format(bar.ts),
        bar.symbol.as_str(),
        bar.open,
        bar.high,
        bar.low,
        bar.close,
        bar.volume
    );
    let mut reader = tickflow::decode::CsvReader::new(csv.as_bytes(), None, *bounds).expect("the CSV header is valid");
    match reader.next() {
        Some(Ok(back)) => assert_same_bar(bar, &back, "CSV"),
        other => panic!("CSV {csv:?} of {bar:?} reads as {other:?}"),
    }
}

/// A decode error says where (the location it was given), names a field whenever it is
/// about one (and the message shows that name), and a syntax error points inside the record.
pub fn check_error(e: &DecodeError, record_len: usize) {
    let text = e.to_string();
    let prefix = format!("{}: ", e.location);
    assert!(text.starts_with(&prefix), "error {text:?} does not start with its location {prefix:?}");
    assert!(text.len() > prefix.len(), "error {text:?} says nothing after the location");
    match &e.kind {
        DecodeErrorKind::Syntax { column, message, .. } => {
            assert!(
                *column >= 1 && *column <= record_len + 1,
                "syntax error column {column} outside 1..={} ({text})",
                record_len + 1
            );
            assert!(!message.is_empty(), "syntax error without a message");
        }
        DecodeErrorKind::Header { .. }
        | DecodeErrorKind::FieldCount { .. }
        | DecodeErrorKind::Udf { .. }
        | DecodeErrorKind::Io { .. } => {}
        DecodeErrorKind::Invalid(_) => {
            let field = e.field().expect("a bar rule names its field");
            assert!(!field.is_empty(), "a bar rule with an empty field name: {text}");
        }
        _ => {
            let field = e.field().unwrap_or_else(|| panic!("a field error names no field: {text}"));
            assert!(!field.is_empty() || matches!(e.location, Location::LineColumn(..)), "empty field name: {text}");
            assert!(text.contains(field), "error {text:?} does not show its field {field:?}");
        }
    }
}
