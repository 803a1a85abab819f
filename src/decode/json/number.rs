//! Numbers and timestamps from JSON tokens or numeric strings: the number rule every decoder
//! shares.

use crate::decode::error::{DecodeErrorKind, show_bytes, show_str};
use crate::decode::timestamp::{self, TsUnit, is_json_number};

use super::scanner::is_non_finite_word;

pub(super) const NUMBER: &str = "a number or a numeric string";

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
pub(super) fn underflows(text: &str, v: f64) -> bool {
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
pub(super) fn fast_f64(b: &[u8]) -> Option<f64> {
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
