//! Exponential backoff with jitter, and the `Retry-After` header.
//!
//! The n-th consecutive failure waits a random time in `[d/2, d]` with
//! `d = min(max, initial · 2^(n-1))` ("equal jitter": never less than half the step, so a
//! fleet of connectors does not retry in lockstep yet always slows down). A `Retry-After`
//! the server sent is a lower bound on top of that.

use std::time::Duration;

use tickflow_operators::time::Millis;
use tickflow_operators::time::days_from_civil;

/// Longest `Retry-After` honoured (a server asking for more is asked again after a day).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(86_400);

/// Consecutive-failure backoff. Deterministic for a given seed (tests), seeded from the
/// clock in production.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    failures: u32,
    rng: u64,
}

impl Backoff {
    /// A backoff from `initial` doubling up to `max`, with jitter drawn from `seed`.
    pub fn new(initial: Duration, max: Duration, seed: u64) -> Backoff {
        // xorshift's state must not be zero.
        Backoff { initial, max: max.max(initial), failures: 0, rng: seed | 1 }
    }

    /// Records a failure and returns how long to wait before the next attempt.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tickflow::connectors::backoff::Backoff;
    /// let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(4), 7);
    /// for step in [1000, 2000, 4000, 4000] {
    ///     let d = b.next_delay().as_millis() as u64;
    ///     assert!(step / 2 <= d && d <= step, "{d} for step {step}");
    /// }
    /// b.reset();
    /// assert!(b.next_delay() <= Duration::from_secs(1));
    /// ```
    pub fn next_delay(&mut self) -> Duration {
        let shift = self.failures.min(20);
        self.failures = self.failures.saturating_add(1);
        let step = self.initial.saturating_mul(1 << shift).min(self.max);
        let half = step / 2;
        let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(if nanos == 0 { 0 } else { self.next_u64() % (nanos + 1) })
    }

    /// Forgets the failures (after a success).
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Consecutive failures so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    fn next_u64(&mut self) -> u64 {
        // xorshift64*: plenty for jitter.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Parses a `Retry-After` value: delay-seconds (`"30"`) or an IMF-fixdate
/// (`"Wed, 21 Oct 2015 07:28:00 GMT"`, relative to `now`). `None` when unreadable; a date
/// in the past is zero; capped at [`MAX_RETRY_AFTER`].
///
/// ```
/// use std::time::Duration;
/// use tickflow::connectors::backoff::parse_retry_after;
/// assert_eq!(parse_retry_after("30", 0), Some(Duration::from_secs(30)));
/// let now = 1_445_412_470_000; // 2015-10-21T07:27:50Z
/// assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now), Some(Duration::from_secs(10)));
/// assert_eq!(parse_retry_after("soon", now), None);
/// ```
pub fn parse_retry_after(value: &str, now: Millis) -> Option<Duration> {
    let v = value.trim();
    let d = if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        Duration::from_secs(v.parse::<u64>().unwrap_or(u64::MAX))
    } else {
        let at = parse_imf_fixdate(v)?;
        Duration::from_millis(u64::try_from(at - now).unwrap_or(0))
    };
    Some(d.min(MAX_RETRY_AFTER))
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` in ms since the epoch.
fn parse_imf_fixdate(v: &str) -> Option<Millis> {
    let rest = v.split_once(", ")?.1;
    let mut p = rest.split(' ');
    let (day, month, year, time, zone) = (p.next()?, p.next()?, p.next()?, p.next()?, p.next()?);
    if zone != "GMT" || p.next().is_some() {
        return None;
    }
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let month = MONTHS.iter().position(|m| *m == month)? as u32 + 1;
    let day: u32 = day.parse().ok()?;
    let year: i64 = year.parse().ok()?;
    let mut t = time.split(':');
    let (h, m, s): (i64, i64, i64) = (t.next()?.parse().ok()?, t.next()?.parse().ok()?, t.next()?.parse().ok()?);
    if !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400_000 + (h * 3600 + m * 60 + s) * 1000)
}
