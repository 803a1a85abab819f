//! Log hygiene for chatty libraries: librdkafka repeats the same warning (a refused
//! connection, "all brokers down") every few hundred milliseconds while a broker is away.
//! [`Repeats`] lets the first of a kind through, holds back the same message for a window,
//! then lets it through once more saying how many were held back. State changes (broker
//! down → up) are logged by their owners, once each.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long the same librdkafka message is held back after it was logged.
pub const KAFKA_REPEAT_WINDOW: Duration = Duration::from_secs(60);

/// Kinds of messages remembered at most (a full table starts over: at worst a few extra lines).
const MAX_KINDS: usize = 256;

/// A rate limit per kind of message. A message's kind is its text with the digits removed
/// (addresses, counts and durations vary between repeats of one message).
#[derive(Debug)]
pub struct Repeats {
    window: Duration,
    seen: Mutex<HashMap<String, (Instant, u64)>>,
}

impl Default for Repeats {
    fn default() -> Self {
        Repeats::new(KAFKA_REPEAT_WINDOW)
    }
}

impl Repeats {
    /// Holds back a repeat for `window` after the message was last logged.
    pub fn new(window: Duration) -> Repeats {
        Repeats { window, seen: Mutex::new(HashMap::new()) }
    }

    /// Whether to log `message` at `now`: `Some(n)` with the number of its kind held back
    /// since it was last logged, `None` to hold it back.
    pub fn admit(&self, message: &str, now: Instant) -> Option<u64> {
        let kind: String = message.chars().filter(|c| !c.is_ascii_digit()).collect();
        // A poisoned lock only means a logger panicked; the table is still usable.
        let mut seen = self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.len() >= MAX_KINDS && !seen.contains_key(&kind) {
            seen.clear();
        }
        match seen.get_mut(&kind) {
            Some((last, held)) if now.saturating_duration_since(*last) < self.window => {
                *held += 1;
                None
            }
            Some((last, held)) => {
                *last = now;
                Some(std::mem::take(held))
            }
            None => {
                seen.insert(kind, (now, 0));
                Some(0)
            }
        }
    }
}

/// Logs a librdkafka log line through tracing, held back by `repeats`.
pub fn kafka_log(repeats: &Repeats, level: rdkafka::config::RDKafkaLogLevel, facility: &str, message: &str) {
    use rdkafka::config::RDKafkaLogLevel as L;
    if matches!(level, L::Debug) {
        tracing::debug!(target: "librdkafka", facility, "{message}");
        return;
    }
    let Some(held_back) = repeats.admit(message, Instant::now()) else { return };
    match level {
        L::Emerg | L::Alert | L::Critical | L::Error => {
            tracing::error!(target: "librdkafka", facility, held_back, "{message}")
        }
        L::Warning => tracing::warn!(target: "librdkafka", facility, held_back, "{message}"),
        _ => tracing::info!(target: "librdkafka", facility, held_back, "{message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_message_is_let_through_once_per_window_with_the_count_held_back() {
        let r = Repeats::new(Duration::from_secs(60));
        let t0 = Instant::now();
        let refused = |ms: u32| format!("127.0.0.1:9092/bootstrap: Connect failed: Connection refused (after {ms}ms)");
        assert_eq!(r.admit(&refused(0), t0), Some(0), "the first is logged");
        // 600 repeats in 25 s (the gateway with its broker down): none logged.
        for i in 1..=600u32 {
            assert_eq!(r.admit(&refused(i), t0 + Duration::from_millis(u64::from(i) * 40)), None);
        }
        assert_eq!(r.admit("another message", t0 + Duration::from_secs(1)), Some(0), "other kinds pass");
        assert_eq!(r.admit(&refused(7), t0 + Duration::from_secs(61)), Some(600), "then once, with the count");
        assert_eq!(r.admit(&refused(8), t0 + Duration::from_secs(62)), None);
    }
}
