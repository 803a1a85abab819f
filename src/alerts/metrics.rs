//! The alert notifier's counters on `/metrics` (the same values `GET /alerts/stats` shows as
//! JSON), so alert delivery can be graphed and alerted on like the rest of the pipeline.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::alerts::notify::NotifyStats;
use crate::prometheus::{Exposition, Kind, NAMESPACE};

/// Appends one counter family per notifier counter, `tickflow_alerts_<name>_total`, with a
/// `process` label.
pub fn render_into(out: &mut String, process: usize, s: &NotifyStats) {
    let families: [(&str, &str, &AtomicU64); 9] = [
        ("queued", "Alerts accepted into the notifier's queue.", &s.queued),
        ("overflowed", "Alerts refused because the notifier's queue was full (dead-lettered).", &s.overflowed),
        ("delivery_attempts", "Delivery attempts to alert channels.", &s.attempts),
        ("delivered", "Alerts delivered to their channel.", &s.delivered),
        ("retried", "Delivery attempts that failed and will be retried.", &s.retried),
        ("dead_lettered", "Alerts written to the dead-letter file.", &s.dead_lettered),
        ("kafka_written", "Alerts written to the alerts topic.", &s.kafka_written),
        ("kafka_failed", "Alerts the alerts topic did not take.", &s.kafka_failed),
        ("questdb_written", "Alerts queued to the QuestDB alerts table.", &s.questdb_written),
    ];
    let process = process.to_string();
    let mut e = Exposition::new(NAMESPACE);
    for (name, help, value) in families {
        e.family(&format!("alerts_{name}_total"), Kind::Counter, help)
            .sample(&[("process", &process)], value.load(Relaxed));
    }
    // The status server's `Exposer`s append text after the process's own families.
    out.push_str(&e.finish());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_counter_is_a_family() {
        let s = NotifyStats::default();
        s.delivered.store(3, Relaxed);
        s.dead_lettered.store(1, Relaxed);
        let mut out = String::new();
        render_into(&mut out, 1, &s);
        assert!(
            out.contains(
                "# TYPE tickflow_alerts_delivered_total counter\ntickflow_alerts_delivered_total{process=\"1\"} 3\n"
            ),
            "{out}"
        );
        assert!(out.contains("tickflow_alerts_dead_lettered_total{process=\"1\"} 1\n"), "{out}");
        assert_eq!(out.matches("# TYPE ").count(), 9);
    }
}
