//! Retry with exponential backoff: the one policy and the one failure counter that every
//! component that retries shares (exchange connectors, the QuestDB sink, the alert notifier,
//! the generator's HTTP sink), and the `Retry-After` header.
//!
//! A [`Policy`] says how long the `n`-th consecutive failure waits: `initial · 2^(n-1)`,
//! capped at `max`, optionally with *equal jitter* (a random time in `[d/2, d]`: never less
//! than half the step, so a fleet does not retry in lockstep yet always slows down), and
//! optionally within a time budget (`max-elapsed`) or a number of attempts. A [`Backoff`] is
//! that policy's state for one sequence of attempts; the loop around it stays with the
//! caller, because what a wait does differs (sleep, probe the server, schedule a job, step
//! a simulated clock). The jitter comes from a small seeded generator, so tests are exact.
//!
//! Written here rather than taken from `backon`: that crate's jitter adds up to a whole step
//! on top (not the equal jitter the connectors rely on), it has no `Retry-After`, and its
//! backoffs are iterators that cannot be reset after a success or asked for a step by number
//! (the notifier schedules many jobs from one policy).
//!
//! ```
//! use std::time::Duration;
//! use tickflow::retry::Policy;
//! let policy = Policy::exponential(Duration::from_millis(100), Duration::from_secs(2))
//!     .with_max_elapsed(Duration::from_secs(1));
//! let mut b = policy.backoff(0);
//! let waits: Vec<_> = std::iter::from_fn(|| b.next_within(Duration::ZERO)).take(6).collect();
//! assert_eq!(waits, [100, 200, 400, 800].map(Duration::from_millis)); // the next, 1.6 s, is over budget
//! ```

use std::time::{Duration, SystemTime};

use tickflow_operators::time::Millis;

/// Longest `Retry-After` honoured (a server asking for more is asked again after a day).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(86_400);

/// How the wait of one step is spread.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Jitter {
    /// Exactly the step.
    #[default]
    None,
    /// Uniform in `[step/2, step]`.
    Equal,
}

/// How long consecutive failures wait, and when to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// The wait after the first failure.
    pub initial: Duration,
    /// The longest wait (never less than `initial`).
    pub max: Duration,
    /// How the step is spread.
    pub jitter: Jitter,
    /// Give up when the time spent plus the next wait would exceed this.
    pub max_elapsed: Option<Duration>,
    /// Give up after this many failures.
    pub max_attempts: Option<u32>,
}

impl Policy {
    /// `initial`, doubled per failure up to `max`; no jitter, no limit.
    pub const fn exponential(initial: Duration, max: Duration) -> Policy {
        Policy { initial, max, jitter: Jitter::None, max_elapsed: None, max_attempts: None }
    }

    /// The same with `jitter`.
    pub const fn with_jitter(self, jitter: Jitter) -> Policy {
        Policy { jitter, ..self }
    }

    /// The same, giving up once the time spent plus the next wait exceeds `budget`.
    pub const fn with_max_elapsed(self, budget: Duration) -> Policy {
        Policy { max_elapsed: Some(budget), ..self }
    }

    /// The same, giving up after `attempts` failures.
    pub const fn with_max_attempts(self, attempts: u32) -> Policy {
        Policy { max_attempts: Some(attempts), ..self }
    }

    /// The un-jittered wait after the `failure`-th consecutive failure (1-based; 0 is read as 1).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tickflow::retry::Policy;
    /// let p = Policy::exponential(Duration::from_millis(500), Duration::from_secs(60));
    /// assert_eq!([1, 2, 3, 8, 9].map(|n| p.step(n).as_millis()), [500, 1000, 2000, 60_000, 60_000]);
    /// ```
    pub fn step(&self, failure: u32) -> Duration {
        let shift = failure.saturating_sub(1).min(20);
        self.initial.saturating_mul(1 << shift).min(self.max.max(self.initial))
    }

    /// Whether another attempt follows the `failures`-th consecutive failure.
    pub fn attempts_left(&self, failures: u32) -> bool {
        self.max_attempts.is_none_or(|n| failures < n)
    }

    /// A fresh failure counter for this policy, its jitter drawn from `seed`.
    pub fn backoff(self, seed: u64) -> Backoff {
        // Distinct seeds give distinct states; xorshift's state must not be zero.
        let rng = seed ^ 0x9e37_79b9_7f4a_7c15;
        Backoff { policy: self, failures: 0, rng: if rng == 0 { 1 } else { rng } }
    }
}

/// A [`Policy`] applied to one sequence of attempts: counts consecutive failures.
#[derive(Clone, Debug)]
pub struct Backoff {
    policy: Policy,
    failures: u32,
    rng: u64,
}

impl Backoff {
    /// Records a failure and returns how long to wait before the next attempt (no limits).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tickflow::retry::{Jitter, Policy};
    /// let p = Policy::exponential(Duration::from_secs(1), Duration::from_secs(4)).with_jitter(Jitter::Equal);
    /// let mut b = p.backoff(7);
    /// for step in [1000, 2000, 4000, 4000] {
    ///     let d = b.next_delay().as_millis() as u64;
    ///     assert!(step / 2 <= d && d <= step, "{d} for step {step}");
    /// }
    /// b.reset();
    /// assert!(b.next_delay() <= Duration::from_secs(1));
    /// ```
    pub fn next_delay(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let step = self.policy.step(self.failures);
        match self.policy.jitter {
            Jitter::None => step,
            Jitter::Equal => {
                let half = step / 2;
                let nanos = u64::try_from((step - half).as_nanos()).unwrap_or(u64::MAX);
                half + Duration::from_nanos(if nanos == 0 { 0 } else { self.next_u64() % (nanos + 1) })
            }
        }
    }

    /// Records a failure after `elapsed` spent on this sequence and returns the wait before
    /// the next attempt, or `None` when the policy gives up (attempts spent, or the wait
    /// would end past `max-elapsed`).
    pub fn next_within(&mut self, elapsed: Duration) -> Option<Duration> {
        let delay = self.next_delay();
        let attempts_left = self.policy.attempts_left(self.failures);
        let in_budget = self.policy.max_elapsed.is_none_or(|b| elapsed.saturating_add(delay) <= b);
        (attempts_left && in_budget).then_some(delay)
    }

    /// Forgets the failures (after a success).
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Consecutive failures so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
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

/// A jitter seed from the clock (production; tests pass a fixed one).
pub fn clock_seed() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
}

/// Parses a `Retry-After` value (RFC 9110 §10.2.3): delay-seconds (`"30"`) or an HTTP-date
/// (IMF-fixdate `"Wed, 21 Oct 2015 07:28:00 GMT"`, or the obsolete RFC 850 and asctime
/// forms), relative to `now` (ms since the epoch). `None` when unreadable; a date in the
/// past is zero; capped at [`MAX_RETRY_AFTER`].
///
/// ```
/// use std::time::Duration;
/// use tickflow::retry::parse_retry_after;
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
        let at = httpdate::parse_http_date(v).ok()?;
        let at_ms = at.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_millis();
        Duration::from_millis(u64::try_from(at_ms.saturating_sub(u128::try_from(now).unwrap_or(0))).unwrap_or(u64::MAX))
    };
    Some(d.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn steps_double_up_to_the_cap() {
        let p = Policy::exponential(MS(100), MS(1000));
        let mut b = p.backoff(1);
        let waits: Vec<u64> = (0..6).map(|_| b.next_delay().as_millis() as u64).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(b.failures(), 6);
        b.reset();
        assert_eq!((b.failures(), b.next_delay()), (0, MS(100)));
        // A cap below the first step is read as the first step; huge failure counts saturate.
        assert_eq!(Policy::exponential(MS(500), MS(10)).step(3), MS(500));
        assert_eq!(Policy::exponential(Duration::MAX, Duration::MAX).step(u32::MAX), Duration::MAX);
    }

    #[test]
    fn equal_jitter_is_seeded_and_within_half_to_whole_step() {
        let p = Policy::exponential(MS(1000), MS(8000)).with_jitter(Jitter::Equal);
        let run = |seed| {
            let mut b = p.backoff(seed);
            (0..64).map(|_| b.next_delay()).collect::<Vec<_>>()
        };
        let a = run(42);
        assert_eq!(a, run(42), "the same seed draws the same waits");
        assert_ne!(a, run(43), "another seed draws other waits");
        for (i, d) in a.iter().enumerate() {
            let step = p.step(i as u32 + 1);
            assert!(step / 2 <= *d && *d <= step, "wait {i}: {d:?} outside [{:?}, {step:?}]", step / 2);
        }
        // The draws spread over the range rather than sticking to one end.
        let capped = &a[4..];
        assert!(capped.iter().any(|d| *d < MS(6000)) && capped.iter().any(|d| *d > MS(6000)), "{capped:?}");
    }

    #[test]
    fn limits_end_the_sequence() {
        let p = Policy::exponential(MS(100), MS(400)).with_max_attempts(3);
        let mut b = p.backoff(1);
        assert_eq!(b.next_within(Duration::ZERO), Some(MS(100)));
        assert_eq!(b.next_within(Duration::ZERO), Some(MS(200)));
        assert_eq!(b.next_within(Duration::ZERO), None, "the third failure is the last attempt");
        let p = Policy::exponential(MS(100), MS(400)).with_max_elapsed(MS(1000));
        let mut b = p.backoff(1);
        assert_eq!(b.next_within(MS(800)), Some(MS(100)));
        assert_eq!(b.next_within(MS(800)), Some(MS(200)), "800 + 200 is exactly the budget");
        assert_eq!(b.next_within(MS(800)), None);
    }

    #[test]
    fn retry_after_forms() {
        let now = 1_445_412_470_000; // 2015-10-21T07:27:50Z
        let s = Duration::from_secs;
        assert_eq!(parse_retry_after(" 120 ", now), Some(s(120)));
        assert_eq!(parse_retry_after("0", now), Some(s(0)));
        assert_eq!(parse_retry_after("99999999999999999999999", now), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now), Some(s(10)));
        assert_eq!(parse_retry_after("Wednesday, 21-Oct-15 07:28:00 GMT", now), Some(s(10)), "RFC 850");
        assert_eq!(parse_retry_after("Wed Oct 21 07:28:00 2015", now), Some(s(10)), "asctime");
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now), Some(s(0)), "in the past");
        assert_eq!(parse_retry_after("Sat, 21 Oct 2017 07:28:00 GMT", now), Some(MAX_RETRY_AFTER));
        for bad in ["", "soon", "-5", "1.5", "Wed, 31 Feb 2015 07:28:00 GMT", "Wed, 21 Oct 2015 07:28:00 CET"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
    }
}
