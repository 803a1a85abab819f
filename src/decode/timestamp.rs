//! Timestamps in every accepted form to event time in milliseconds, and back.
//!
//! # Accepted forms
//! - **Numbers** (JSON numbers, numeric strings, CSV fields) in the JSON number grammar,
//!   e.g. `1700000000`, `1700000000.5`, `1.7e9`, `1700000000000`. The unit is inferred from
//!   the magnitude `|v|`: `< 1e11` seconds, `< 1e14` milliseconds, `< 1e17` microseconds,
//!   otherwise nanoseconds. (1e11 s is the year 5138 and 1e11 ms is 1973-03-03, so neither
//!   plausible seconds nor plausible milliseconds are misread.) The decimal text is converted
//!   exactly, never through `f64`, so `1700000000.123` is exactly 1 700 000 000 123 ms.
//! - **RFC 3339 / ISO 8601 strings**: `YYYY-MM-DDTHH:MM:SS[.frac][Z|±HH:MM]`; the `T` may be
//!   a space or `t`; `z` is accepted for `Z`. Without a zone the time is taken as UTC
//!   (`2023-11-14 22:13:20`). Seconds may be `60` (a leap second reads as the next minute's
//!   first second). Years `0000`–`9999`.
//!
//! # Precision
//! Event time is `i64` milliseconds. Sub-millisecond digits are dropped by rounding toward
//! negative infinity (floor), so `-0.0005` s is -1 ms and every instant maps to the
//! millisecond that contains it, whatever the input unit.

use tickflow_operators::time::{Millis, days_from_civil, days_in_month, format_rfc3339, rfc3339_bytes};

/// Where text is appended: a `String`, or the byte buffer of a row writer (which copies a
/// symbol's or a timestamp's ASCII bytes with no UTF-8 check).
pub trait TextOut {
    /// Appends `s`.
    fn push_str(&mut self, s: &str);
    /// Appends `b`, which is ASCII.
    fn push_ascii(&mut self, b: &[u8]);
    /// Appends one ASCII character.
    fn push(&mut self, c: char);
}

impl TextOut for String {
    fn push_str(&mut self, s: &str) {
        String::push_str(self, s);
    }
    fn push_ascii(&mut self, b: &[u8]) {
        // Callers pass ASCII (digits, separators); anything else would be a bug there, and
        // is kept visible rather than dropped.
        String::push_str(self, &String::from_utf8_lossy(b));
    }
    fn push(&mut self, c: char) {
        String::push(self, c);
    }
}

impl TextOut for Vec<u8> {
    fn push_str(&mut self, s: &str) {
        self.extend_from_slice(s.as_bytes());
    }
    fn push_ascii(&mut self, b: &[u8]) {
        self.extend_from_slice(b);
    }
    fn push(&mut self, c: char) {
        let mut b = [0u8; 4];
        self.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
    }
}

/// The unit (or form) a timestamp was written in, so an output can write `ts` back the way
/// its input file had it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TsUnit {
    /// Unix seconds, possibly fractional.
    Seconds,
    /// Unix milliseconds.
    Millis,
    /// Unix microseconds.
    Micros,
    /// Unix nanoseconds.
    Nanos,
    /// RFC 3339 text.
    Rfc3339,
}

impl TsUnit {
    /// `ms` written in this unit: seconds as an integer when whole, else a decimal with up to
    /// three fractional digits (`1700000000`, `1700000000.5`); milliseconds, microseconds and
    /// nanoseconds as integers; RFC 3339 as `2023-11-14T22:13:20.000Z`. Reading the text back
    /// gives `ms` again.
    ///
    /// ```
    /// use tickflow::decode::TsUnit;
    /// assert_eq!(TsUnit::Seconds.format(1_700_000_000_000), "1700000000");
    /// assert_eq!(TsUnit::Seconds.format(1_700_000_000_500), "1700000000.5");
    /// assert_eq!(TsUnit::Millis.format(1_700_000_000_500), "1700000000500");
    /// assert_eq!(TsUnit::Rfc3339.format(1_700_000_000_000), "2023-11-14T22:13:20.000Z");
    /// ```
    pub fn format(self, ms: Millis) -> String {
        let mut s = String::with_capacity(24);
        self.format_into(ms, &mut s);
        s
    }

    /// Like [`TsUnit::format`], appending to `out` (a `String` or a byte buffer; no allocation
    /// when `out` has room).
    pub fn format_into(self, ms: Millis, out: &mut impl TextOut) {
        match self {
            TsUnit::Seconds => {
                let (neg, abs) = (ms < 0, ms.unsigned_abs());
                let (secs, frac) = (abs / 1000, abs % 1000);
                if neg {
                    out.push('-');
                }
                out.push_str(itoa::Buffer::new().format(secs));
                if frac != 0 {
                    let digits = [b'0' + (frac / 100) as u8, b'0' + (frac / 10 % 10) as u8, b'0' + (frac % 10) as u8];
                    let keep = if frac % 100 == 0 {
                        1
                    } else if frac % 10 == 0 {
                        2
                    } else {
                        3
                    };
                    out.push('.');
                    out.push_ascii(&digits[..keep]);
                }
            }
            TsUnit::Millis => out.push_str(itoa::Buffer::new().format(ms)),
            TsUnit::Micros => out.push_str(itoa::Buffer::new().format(i128::from(ms) * 1000)),
            TsUnit::Nanos => out.push_str(itoa::Buffer::new().format(i128::from(ms) * 1_000_000)),
            TsUnit::Rfc3339 => match rfc3339_bytes(ms) {
                Some(b) => out.push_ascii(&b),
                None => out.push_str(&format_rfc3339(ms)),
            },
        }
    }

    /// The unit's name in messages and config (`seconds`, `millis`, ...).
    pub fn name(self) -> &'static str {
        match self {
            TsUnit::Seconds => "seconds",
            TsUnit::Millis => "millis",
            TsUnit::Micros => "micros",
            TsUnit::Nanos => "nanos",
            TsUnit::Rfc3339 => "rfc3339",
        }
    }

    /// The power of ten that turns a value in this unit into milliseconds (3 for seconds).
    fn ms_scale(self) -> i32 {
        match self {
            TsUnit::Seconds => 3,
            TsUnit::Millis | TsUnit::Rfc3339 => 0,
            TsUnit::Micros => -3,
            TsUnit::Nanos => -6,
        }
    }
}

/// Whether `s` follows the JSON number grammar `-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?`.
pub fn is_json_number(s: &[u8]) -> bool {
    let mut i = usize::from(s.first() == Some(&b'-'));
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < s.len() && s[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    match s.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            digits(&mut i);
        }
        _ => return false,
    }
    if s.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    }
    if matches!(s.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(s.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == s.len()
}

/// Parses a numeric timestamp (JSON number grammar, see [`is_json_number`]) with the unit
/// inferred from its magnitude (module docs). Returns the milliseconds and the unit.
///
/// ```
/// use tickflow::decode::timestamp::parse_numeric;
/// use tickflow::decode::TsUnit;
/// assert_eq!(parse_numeric("1700000000.5"), Ok((1_700_000_000_500, TsUnit::Seconds)));
/// assert_eq!(parse_numeric("1700000000123"), Ok((1_700_000_000_123, TsUnit::Millis)));
/// assert_eq!(parse_numeric("1700000000123456"), Ok((1_700_000_000_123, TsUnit::Micros)));
/// ```
pub fn parse_numeric(text: &str) -> Result<(Millis, TsUnit), String> {
    let d = Decimal::parse(text)?;
    let unit = match d.order() {
        None => TsUnit::Seconds,
        Some(m) if m <= 11 => TsUnit::Seconds,
        Some(m) if m <= 14 => TsUnit::Millis,
        Some(m) if m <= 17 => TsUnit::Micros,
        Some(_) => TsUnit::Nanos,
    };
    Ok((d.to_millis(unit)?, unit))
}

/// Parses a numeric timestamp whose unit is known (UDF bodies carry seconds).
pub fn parse_numeric_in(text: &str, unit: TsUnit) -> Result<Millis, String> {
    Decimal::parse(text)?.to_millis(unit)
}

/// Parses a timestamp string: a numeric string (as [`parse_numeric`]) or RFC 3339 text.
pub fn parse_str(s: &str) -> Result<(Millis, TsUnit), String> {
    if is_json_number(s.as_bytes()) { parse_numeric(s) } else { parse_rfc3339(s).map(|ms| (ms, TsUnit::Rfc3339)) }
}

/// A decimal literal `mantissa * 10^exp10`, exact up to 36 significant digits; digits beyond
/// are dropped and remembered in `sticky` (so flooring stays exact).
struct Decimal {
    neg: bool,
    mantissa: u128,
    digits: i64,
    exp10: i64,
    sticky: bool,
}

impl Decimal {
    const MAX_DIGITS: i64 = 36;

    fn parse(text: &str) -> Result<Decimal, String> {
        let b = text.as_bytes();
        if !is_json_number(b) {
            return Err("not a number".to_string());
        }
        let neg = b[0] == b'-';
        let mut d = Decimal { neg, mantissa: 0, digits: 0, exp10: 0, sticky: false };
        let mut i = usize::from(neg);
        let mut in_frac = false;
        while i < b.len() {
            match b[i] {
                b'.' => in_frac = true,
                c @ b'0'..=b'9' => {
                    let v = u128::from(c - b'0');
                    if d.digits == 0 && v == 0 {
                        // Leading zero: only its position matters.
                        if in_frac {
                            d.exp10 -= 1;
                        }
                    } else if d.digits < Self::MAX_DIGITS {
                        d.mantissa = d.mantissa * 10 + v;
                        d.digits += 1;
                        if in_frac {
                            d.exp10 -= 1;
                        }
                    } else {
                        d.sticky |= v != 0;
                        if !in_frac {
                            d.exp10 += 1;
                        }
                    }
                }
                _ => break,
            }
            i += 1;
        }
        if i < b.len() {
            // An exponent: b[i] is 'e' or 'E' (the grammar was checked above).
            let exp = &text[i + 1..];
            let exp = exp.strip_prefix('+').unwrap_or(exp);
            // Exponents beyond ±10^6 are clamped: they are out of range either way.
            let e: i64 = if exp.trim_start_matches('-').len() > 7 {
                if exp.starts_with('-') { -10_000_000 } else { 10_000_000 }
            } else {
                exp.parse().map_err(|_| "bad exponent".to_string())?
            };
            d.exp10 += e;
        }
        Ok(d)
    }

    /// `m` such that `10^(m-1) <= |value| < 10^m`, or `None` for zero.
    fn order(&self) -> Option<i64> {
        (self.mantissa != 0).then(|| self.digits + self.exp10)
    }

    fn to_millis(&self, unit: TsUnit) -> Result<Millis, String> {
        const OUT: &str = "out of range for 64-bit milliseconds";
        if self.mantissa == 0 {
            return Ok(if self.neg && self.sticky { -1 } else { 0 });
        }
        let scale = self.exp10 + i64::from(unit.ms_scale());
        let (mut q, mut sticky) = (self.mantissa, self.sticky);
        if scale >= 0 {
            for _ in 0..scale {
                q = q.checked_mul(10).filter(|&q| q <= i64::MAX as u128).ok_or(OUT)?;
            }
        } else if scale < -38 {
            sticky = true;
            q = 0;
        } else {
            let p = 10u128.pow((-scale) as u32);
            sticky |= q % p != 0;
            q /= p;
        }
        let q = i64::try_from(q).map_err(|_| OUT.to_string())?;
        Ok(if self.neg { -q - i64::from(sticky) } else { q })
    }
}

/// Parses RFC 3339 (and the space-separated, zone-less form) to milliseconds (module docs).
///
/// ```
/// use tickflow::decode::timestamp::parse_rfc3339;
/// assert_eq!(parse_rfc3339("2023-11-14T22:13:20Z"), Ok(1_700_000_000_000));
/// assert_eq!(parse_rfc3339("2023-11-15T01:43:20.25+03:30"), Ok(1_700_000_000_250));
/// assert_eq!(parse_rfc3339("2023-11-14 22:13:20"), Ok(1_700_000_000_000));
/// ```
pub fn parse_rfc3339(s: &str) -> Result<Millis, String> {
    let b = s.as_bytes();
    let num = |at: usize, len: usize, what: &str| -> Result<u32, String> {
        let part = b.get(at..at + len).filter(|p| p.iter().all(u8::is_ascii_digit));
        match part {
            Some(p) => Ok(p.iter().fold(0u32, |acc, &c| acc * 10 + u32::from(c - b'0'))),
            None => Err(format!("expected {len} digits of {what} at character {}", at + 1)),
        }
    };
    let sep = |at: usize, ok: &[u8], what: &str| -> Result<(), String> {
        match b.get(at) {
            Some(c) if ok.contains(c) => Ok(()),
            _ => Err(format!("expected {what} at character {}", at + 1)),
        }
    };
    let year = num(0, 4, "year")?;
    sep(4, b"-", "'-'")?;
    let month = num(5, 2, "month")?;
    sep(7, b"-", "'-'")?;
    let day = num(8, 2, "day")?;
    sep(10, b"Tt ", "'T' or ' '")?;
    let hour = num(11, 2, "hour")?;
    sep(13, b":", "':'")?;
    let minute = num(14, 2, "minute")?;
    sep(16, b":", "':'")?;
    let second = num(17, 2, "second")?;
    let mut i = 19;
    let mut frac_ms = 0u32;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 3 {
                frac_ms = frac_ms * 10 + u32::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return Err(format!("expected digits after '.' at character {}", i + 1));
        }
        for _ in (i - start)..3 {
            frac_ms *= 10;
        }
    }
    let offset_min: i64 = match b.get(i) {
        None => 0,
        Some(b'Z' | b'z') => {
            i += 1;
            0
        }
        Some(&c @ (b'+' | b'-')) => {
            let oh = num(i + 1, 2, "offset hours")?;
            sep(i + 3, b":", "':' in the offset")?;
            let om = num(i + 4, 2, "offset minutes")?;
            if oh > 23 || om > 59 {
                return Err(format!("offset {} out of range", &s[i..i + 6]));
            }
            i += 6;
            let m = i64::from(oh * 60 + om);
            if c == b'-' { -m } else { m }
        }
        Some(_) => {
            return Err(format!("expected 'Z', '+hh:mm' or '-hh:mm' at character {}", i + 1));
        }
    };
    if i != b.len() {
        return Err(format!("unexpected text after the time at character {}", i + 1));
    }
    if !(1..=12).contains(&month) {
        return Err(format!("month {month} out of range 1..=12"));
    }
    let dim = days_in_month(i64::from(year), month);
    if day < 1 || day > dim {
        return Err(format!("day {day} out of range 1..={dim} for {year:04}-{month:02}"));
    }
    if hour > 23 || minute > 59 || second > 60 {
        return Err(format!("time {hour:02}:{minute:02}:{second:02} out of range"));
    }
    let days = days_from_civil(i64::from(year), month, day);
    let secs = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second) - offset_min * 60;
    Ok(secs * 1000 + i64::from(frac_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magnitude_heuristic_boundaries() {
        assert_eq!(parse_numeric("99999999999"), Ok((99_999_999_999_000, TsUnit::Seconds)));
        assert_eq!(parse_numeric("100000000000"), Ok((100_000_000_000, TsUnit::Millis)));
        assert_eq!(parse_numeric("1e11"), Ok((100_000_000_000, TsUnit::Millis)));
        assert_eq!(parse_numeric("99999999999999"), Ok((99_999_999_999_999, TsUnit::Millis)));
        assert_eq!(parse_numeric("100000000000000"), Ok((100_000_000_000, TsUnit::Micros)));
        assert_eq!(parse_numeric("1700000000123456789"), Ok((1_700_000_000_123, TsUnit::Nanos)));
        assert_eq!(parse_numeric("1.7e9"), Ok((1_700_000_000_000, TsUnit::Seconds)));
        assert_eq!(parse_numeric("0"), Ok((0, TsUnit::Seconds)));
        assert_eq!(parse_numeric("-0.0"), Ok((0, TsUnit::Seconds)));
    }

    #[test]
    fn sub_millisecond_digits_floor() {
        assert_eq!(parse_numeric("1700000000.1239"), Ok((1_700_000_000_123, TsUnit::Seconds)));
        assert_eq!(parse_numeric("-0.0005"), Ok((-1, TsUnit::Seconds)));
        assert_eq!(parse_numeric("-1.5"), Ok((-1500, TsUnit::Seconds)));
        assert_eq!(parse_numeric("-1e-9"), Ok((-1, TsUnit::Seconds)));
        assert_eq!(parse_numeric("1e-9"), Ok((0, TsUnit::Seconds)));
        assert_eq!(
            parse_numeric("1700000000.1234567890123456789012345678901234567"),
            Ok((1_700_000_000_123, TsUnit::Seconds))
        );
    }

    #[test]
    fn out_of_range_numbers_are_errors() {
        assert_eq!(parse_numeric("1e999"), Err("out of range for 64-bit milliseconds".to_string()));
        assert_eq!(parse_numeric("1e99999999999"), Err("out of range for 64-bit milliseconds".to_string()));
        assert_eq!(parse_numeric("1e-99999999999"), Ok((0, TsUnit::Seconds)));
        assert_eq!(parse_numeric("abc"), Err("not a number".to_string()));
    }

    #[test]
    fn rfc3339_forms() {
        assert_eq!(parse_rfc3339("2023-11-14T22:13:20.123456Z"), Ok(1_700_000_000_123));
        assert_eq!(parse_rfc3339("2023-11-14t22:13:20z"), Ok(1_700_000_000_000));
        assert_eq!(parse_rfc3339("2023-11-14T18:43:20-03:30"), Ok(1_700_000_000_000));
        assert_eq!(parse_rfc3339("2024-02-29T00:00:00Z"), Ok(1_709_164_800_000));
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59.999Z"), Ok(-1));
        assert_eq!(parse_rfc3339("2016-12-31T23:59:60Z"), Ok(1_483_228_800_000));
        assert_eq!(parse_rfc3339("2023-02-29T00:00:00Z"), Err("day 29 out of range 1..=28 for 2023-02".to_string()));
        assert_eq!(parse_rfc3339("2023-13-01T00:00:00Z"), Err("month 13 out of range 1..=12".to_string()));
        assert_eq!(parse_rfc3339("2023-11-14T24:00:00Z"), Err("time 24:00:00 out of range".to_string()));
        assert_eq!(parse_rfc3339("2023-11-14T22:13Z"), Err("expected ':' at character 17".to_string()));
        assert_eq!(
            parse_rfc3339("2023-11-14T22:13:20+0330"),
            Err("expected ':' in the offset at character 23".to_string())
        );
        assert_eq!(
            parse_rfc3339("2023-11-14T22:13:20Z "),
            Err("unexpected text after the time at character 21".to_string())
        );
        assert_eq!(parse_rfc3339("2023-11-14T22:13:20."), Err("expected digits after '.' at character 21".to_string()));
    }

    #[test]
    fn seconds_format_round_trips() {
        for ms in [0, 1, -1, 999, -999, 1000, -1000, 1_700_000_000_001, -1_700_000_000_010, 1_700_000_000_120] {
            let s = TsUnit::Seconds.format(ms);
            assert_eq!(parse_numeric_in(&s, TsUnit::Seconds), Ok(ms), "{s}");
        }
        assert_eq!(TsUnit::Seconds.format(-500), "-0.5");
        assert_eq!(TsUnit::Seconds.format(1_700_000_000_120), "1700000000.12");
        assert_eq!(TsUnit::Micros.format(1), "1000");
        assert_eq!(TsUnit::Nanos.format(-1), "-1000000");
    }
}
