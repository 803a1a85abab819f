//! Event time: milliseconds since the Unix epoch (UTC), its RFC 3339 form for messages, and
//! the proleptic Gregorian calendar arithmetic every parser of dates shares (leap years,
//! days per month, civil dates to days and back, strict `YYYY-MM-DD` and `HH:MM:SS`), so no
//! parser writes its own and none accepts February 31.

/// Milliseconds since 1970-01-01T00:00:00Z. Event time of bars, windows and watermarks.
pub type Millis = i64;

/// Event time (`Millis`, which is negative before 1970) to the watermark coordinate of the
/// application's timely time, which is a `u64`: the order-preserving map that flips the
/// sign bit, so `i64::MIN` ms is watermark 0 (the least time of an epoch) and market history
/// from any century keeps its order. [`ms_of_watermark`] is the inverse.
///
/// ```
/// use tickflow_operators::time::{ms_of_watermark, watermark_of};
/// assert!(watermark_of(-2_208_988_800_000) < watermark_of(0)); // 1900 before 1970
/// assert_eq!(watermark_of(i64::MIN), 0);
/// assert_eq!(watermark_of(i64::MAX), u64::MAX);
/// assert_eq!(ms_of_watermark(watermark_of(-1)), -1);
/// ```
pub const fn watermark_of(ms: Millis) -> u64 {
    (ms as u64) ^ (1 << 63)
}

/// The inverse of [`watermark_of`].
pub const fn ms_of_watermark(wm: u64) -> Millis {
    (wm ^ (1 << 63)) as Millis
}

/// Formats `ms` as RFC 3339 UTC with millisecond precision, e.g. `2023-11-14T22:13:20.000Z`.
///
/// ```
/// use tickflow_operators::time::format_rfc3339;
/// assert_eq!(format_rfc3339(1_700_000_000_000), "2023-11-14T22:13:20.000Z");
/// assert_eq!(format_rfc3339(-1), "1969-12-31T23:59:59.999Z");
/// ```
pub fn format_rfc3339(ms: Millis) -> String {
    match rfc3339_bytes(ms) {
        // ASCII digits and separators only.
        Some(b) => String::from_utf8_lossy(&b).into_owned(),
        None => {
            let (y, m, d, h, mi, s, milli) = rfc3339_parts(ms);
            format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
        }
    }
}

fn rfc3339_parts(ms: Millis) -> (i64, u32, u32, i64, i64, i64, i64) {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    (y, m, d, rem / 3_600_000, rem / 60_000 % 60, rem / 1000 % 60, rem % 1000)
}

/// [`format_rfc3339`]'s 24 bytes, with no allocation, for years 0–9999 (`None` outside them,
/// where the text is longer): what writers of rows use per row.
///
/// ```
/// use tickflow_operators::time::rfc3339_bytes;
/// assert_eq!(&rfc3339_bytes(1_700_000_000_123).unwrap(), b"2023-11-14T22:13:20.123Z");
/// assert_eq!(rfc3339_bytes(-62_167_219_200_001), None); // the last ms of year -1
/// ```
pub fn rfc3339_bytes(ms: Millis) -> Option<[u8; 24]> {
    let (y, m, d, h, mi, s, milli) = rfc3339_parts(ms);
    if !(0..=9999).contains(&y) {
        return None;
    }
    let mut b = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, width: usize, mut v: u64| {
        for k in (at..at + width).rev() {
            b[k] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, y as u64);
    put(5, 2, u64::from(m));
    put(8, 2, u64::from(d));
    put(11, 2, h as u64);
    put(14, 2, mi as u64);
    put(17, 2, s as u64);
    put(20, 3, milli as u64);
    Some(b)
}

/// Days since the epoch to a (year, month, day) civil date (proleptic Gregorian).
/// Howard Hinnant's algorithm, exact for all i64 inputs of practical size.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A (year, month, day) civil date to days since the epoch; inverse of [`civil_from_days`].
///
/// ```
/// use tickflow_operators::time::{civil_from_days, days_from_civil};
/// assert_eq!(days_from_civil(1970, 1, 1), 0);
/// assert_eq!(civil_from_days(days_from_civil(2024, 2, 29)), (2024, 2, 29));
/// ```
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Milliseconds in a day.
pub const DAY_MS: Millis = 86_400_000;

/// Whether `year` is a leap year of the proleptic Gregorian calendar.
///
/// ```
/// use tickflow_operators::time::is_leap_year;
/// assert!(is_leap_year(2024) && is_leap_year(2000) && !is_leap_year(1900) && !is_leap_year(2023));
/// ```
pub const fn is_leap_year(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Days in `month` (1-12) of `year`; 0 for a month outside 1-12, so `day <= days_in_month`
/// is the whole check of a day.
///
/// ```
/// use tickflow_operators::time::days_in_month;
/// assert_eq!([days_in_month(2024, 2), days_in_month(2023, 2), days_in_month(2023, 4), days_in_month(2023, 12)], [29, 28, 30, 31]);
/// assert_eq!(days_in_month(2023, 13), 0);
/// ```
pub const fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        _ => 0,
    }
}

/// [`days_from_civil`] for a date that exists: `None` for month 0 or 13, day 0, February 30
/// or April 31.
///
/// ```
/// use tickflow_operators::time::date_to_days;
/// assert_eq!(date_to_days(2024, 2, 29), Some(19_782));
/// assert_eq!(date_to_days(2023, 2, 29), None);
/// assert_eq!(date_to_days(2023, 2, 31), None);
/// ```
pub fn date_to_days(year: i64, month: u32, day: u32) -> Option<i64> {
    (day >= 1 && day <= days_in_month(year, month)).then(|| days_from_civil(year, month, day))
}

/// The weekday of a day since the epoch, Sunday = 0 (1970-01-01 was a Thursday, 4).
///
/// ```
/// use tickflow_operators::time::{days_from_civil, weekday};
/// assert_eq!(weekday(0), 4);
/// assert_eq!(weekday(days_from_civil(2024, 3, 10)), 0);
/// ```
pub const fn weekday(days: i64) -> u32 {
    (days + 4).rem_euclid(7) as u32
}

/// `n` ASCII digits as a number, or `None` when `s` is not exactly `n` digits.
fn digits(s: &str, n: usize) -> Option<u32> {
    (s.len() == n && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.bytes().fold(0, |a, b| a * 10 + u32::from(b - b'0')))
}

/// A strict `YYYY-MM-DD` (four, two and two digits) to days since the epoch; `None` when it
/// is not that shape or the date does not exist.
///
/// ```
/// use tickflow_operators::time::parse_date;
/// assert_eq!(parse_date("1970-01-02"), Some(1));
/// assert_eq!(parse_date("2023-02-31"), None);
/// assert_eq!(parse_date("2023-2-1"), None);
/// ```
pub fn parse_date(s: &str) -> Option<i64> {
    let mut p = s.split('-');
    let (y, m, d) = (digits(p.next()?, 4)?, digits(p.next()?, 2)?, digits(p.next()?, 2)?);
    if p.next().is_some() {
        return None;
    }
    date_to_days(i64::from(y), m, d)
}

/// A strict `HH:MM:SS` (two digits each; `HH:MM` too when `seconds_optional`) to
/// milliseconds since midnight; `None` past 23:59:59.
///
/// ```
/// use tickflow_operators::time::parse_time_of_day;
/// assert_eq!(parse_time_of_day("01:02:03", false), Some(3_723_000));
/// assert_eq!(parse_time_of_day("01:02", true), Some(3_720_000));
/// assert_eq!(parse_time_of_day("01:02", false), None);
/// assert_eq!(parse_time_of_day("24:00:00", false), None);
/// ```
pub fn parse_time_of_day(s: &str, seconds_optional: bool) -> Option<Millis> {
    let mut p = s.split(':');
    let (h, m) = (digits(p.next()?, 2)?, digits(p.next()?, 2)?);
    let sec = match p.next() {
        Some(sec) => digits(sec, 2)?,
        None if seconds_optional => 0,
        None => return None,
    };
    if p.next().is_some() || h > 23 || m > 59 || sec > 59 {
        return None;
    }
    Some(Millis::from(h * 3600 + m * 60 + sec) * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The allocation-free form writes what `format!` writes, at the edges of its years and
    /// of days, and the long form is kept outside them.
    #[test]
    fn rfc3339_bytes_is_the_formatted_text() {
        let by_format = |ms: Millis| {
            let (y, m, d, h, mi, s, milli) = rfc3339_parts(ms);
            format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
        };
        let year0 = days_from_civil(0, 1, 1) * DAY_MS;
        let year10000 = days_from_civil(10_000, 1, 1) * DAY_MS;
        let mut cases = vec![0, -1, 1, 999, 1000, DAY_MS - 1, DAY_MS, year0, year10000 - 1, 1_709_164_799_999];
        let mut x: i64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            cases.push(year0 + x.rem_euclid(year10000 - year0));
        }
        for ms in cases {
            let b = rfc3339_bytes(ms).expect("a year in 0..=9999");
            assert_eq!(std::str::from_utf8(&b).unwrap(), by_format(ms), "{ms}");
            assert_eq!(format_rfc3339(ms), by_format(ms));
        }
        for ms in [year0 - 1, year10000, i64::MIN / 4, i64::MAX / 4] {
            assert_eq!(rfc3339_bytes(ms), None, "{ms}");
            assert_eq!(format_rfc3339(ms), by_format(ms));
        }
    }

    /// Every day of 1600-2400 through `parse_date` and back, against a day-by-day walk.
    #[test]
    fn calendar_matches_a_day_by_day_walk() {
        let mut days = days_from_civil(1600, 1, 1);
        for year in 1600..2400 {
            for month in 1..=12 {
                for day in 1..=31 {
                    let text = format!("{year:04}-{month:02}-{day:02}");
                    if day <= days_in_month(year, month) {
                        assert_eq!(parse_date(&text), Some(days), "{text}");
                        assert_eq!(civil_from_days(days), (year, month, day));
                        days += 1;
                    } else {
                        assert_eq!(parse_date(&text), None, "{text} does not exist");
                    }
                }
            }
        }
    }
}
