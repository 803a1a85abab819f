//! Event time: milliseconds since the Unix epoch (UTC), and its RFC 3339 form for messages.

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
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    let (h, mi, s, milli) = (rem / 3_600_000, rem / 60_000 % 60, rem / 1000 % 60, rem % 1000);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
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
