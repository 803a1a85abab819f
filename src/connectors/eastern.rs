//! US/Eastern wall time to UTC, with the US daylight-saving rule in force since 2007:
//! daylight time (UTC-4) from the second Sunday of March, 02:00, to the first Sunday of
//! November, 02:00; standard time (UTC-5) otherwise. Alpha Vantage stamps equity bars in
//! this zone; no time-zone database is needed for one zone with one rule.
//!
//! Wall times that do not exist or exist twice are resolved the way most libraries do: the
//! skipped hour in March (02:00-02:59) is read as standard time (02:30 → 07:30Z, i.e. 03:30
//! daylight time), the repeated hour in November (01:00-01:59) as its first occurrence,
//! daylight time. US equity sessions never trade in either hour (they fall on a Sunday
//! night). Dates before 2007 (the older rule) are converted with this rule too.

use tickflow_operators::time::{
    DAY_MS as DAY, Millis, civil_from_days, days_from_civil, parse_date, parse_time_of_day, weekday,
};

const HOUR: i64 = 3_600_000;

/// The day (days since the epoch) of the `n`-th (1-based) Sunday of `month` in `year`.
fn nth_sunday(year: i64, month: u32, n: i64) -> i64 {
    let first = days_from_civil(year, month, 1);
    first + i64::from((7 - weekday(first)) % 7) + 7 * (n - 1)
}

/// Whether daylight-saving time applies to the US/Eastern wall time `local_ms` (a wall
/// clock reading written as if it were UTC milliseconds).
///
/// ```
/// use tickflow::connectors::eastern::is_dst;
/// // 2024-03-10 01:59 and 03:00 (the clocks jumped from 02:00 to 03:00).
/// assert!(!is_dst(1_710_035_940_000));
/// assert!(is_dst(1_710_039_600_000));
/// ```
pub fn is_dst(local_ms: Millis) -> bool {
    let (year, _, _) = civil_from_days(local_ms.div_euclid(DAY));
    // Wall times from 03:00 on are daylight time; the skipped hour reads as standard time.
    let start = nth_sunday(year, 3, 2) * DAY + 3 * HOUR;
    // The repeated hour 01:00-01:59 reads as its first (daylight) occurrence.
    let end = nth_sunday(year, 11, 1) * DAY + 2 * HOUR;
    (start..end).contains(&local_ms)
}

/// The UTC instant of the US/Eastern wall time `local_ms`.
///
/// ```
/// use tickflow::connectors::eastern::to_utc;
/// // 2024-01-05 19:55 EST = 2024-01-06 00:55Z; 2024-07-01 09:30 EDT = 13:30Z.
/// assert_eq!(to_utc(1_704_484_500_000), 1_704_502_500_000);
/// assert_eq!(to_utc(1_719_826_200_000), 1_719_840_600_000);
/// ```
pub fn to_utc(local_ms: Millis) -> Millis {
    local_ms + if is_dst(local_ms) { 4 * HOUR } else { 5 * HOUR }
}

/// Parses `YYYY-MM-DD HH:MM:SS` (or `YYYY-MM-DD`) as a wall-clock reading in milliseconds
/// (as if it were UTC). `None` when it is not such a date-time.
pub fn parse_wall_time(s: &str) -> Option<Millis> {
    let s = s.trim();
    let (date, time) = match s.split_once([' ', 'T']) {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let day = parse_date(date)? * DAY;
    match time {
        Some(t) => Some(day + parse_time_of_day(t, true)?),
        None => Some(day),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wall(s: &str) -> Millis {
        parse_wall_time(s).unwrap()
    }
    fn utc(s: &str) -> Millis {
        wall(s)
    }

    #[test]
    fn second_sunday_of_march_and_first_of_november() {
        for (year, march, november) in [(2007, 11, 4), (2023, 12, 5), (2024, 10, 3), (2025, 9, 2), (2026, 8, 1)] {
            assert_eq!(nth_sunday(year, 3, 2), days_from_civil(year, 3, march), "{year}");
            assert_eq!(nth_sunday(year, 11, 1), days_from_civil(year, 11, november), "{year}");
        }
    }

    #[test]
    fn transitions_in_2024() {
        // Spring forward: 2024-03-10 02:00 EST = 07:00Z.
        assert_eq!(to_utc(wall("2024-03-10 01:59:00")), utc("2024-03-10 06:59:00"));
        assert_eq!(to_utc(wall("2024-03-10 02:30:00")), utc("2024-03-10 07:30:00"));
        assert_eq!(to_utc(wall("2024-03-10 03:00:00")), utc("2024-03-10 07:00:00"));
        // Fall back: 2024-11-03 02:00 EDT = 06:00Z, clocks back to 01:00 EST.
        assert_eq!(to_utc(wall("2024-11-03 00:59:00")), utc("2024-11-03 04:59:00"));
        assert_eq!(to_utc(wall("2024-11-03 01:30:00")), utc("2024-11-03 05:30:00"));
        assert_eq!(to_utc(wall("2024-11-03 02:00:00")), utc("2024-11-03 07:00:00"));
        // Ordinary days either side.
        assert_eq!(to_utc(wall("2024-03-08 19:55:00")), utc("2024-03-09 00:55:00"));
        assert_eq!(to_utc(wall("2024-03-11 04:00:00")), utc("2024-03-11 08:00:00"));
        assert_eq!(to_utc(wall("2024-11-01 19:55:00")), utc("2024-11-01 23:55:00"));
        assert_eq!(to_utc(wall("2024-11-04 04:00:00")), utc("2024-11-04 09:00:00"));
    }

    #[test]
    fn wall_times_are_parsed_strictly() {
        assert_eq!(wall("2024-01-05 19:55:00"), 1_704_484_500_000);
        assert_eq!(wall("2024-01-05"), 1_704_412_800_000);
        assert_eq!(wall("2024-02-29 00:00"), 1_709_164_800_000);
        for bad in ["2023-02-29 00:00:00", "2024-1-05 19:55:00", "2024-01-05 24:00:00", "2024-01-05 19:55:00:00", "x"] {
            assert_eq!(parse_wall_time(bad), None, "{bad}");
        }
    }
}
