//! `/metrics`: [`ProcessMetrics`] in the Prometheus text exposition format 0.0.4.
//!
//! Labels are only `process`, `worker`, `topic`, `partition`, `operator`, the histogram's
//! `le` and `tickflow_build_info`'s `version`: all bounded by the deployment. Never add a per-symbol label (unbounded cardinality). Times are exposed in
//! seconds (Prometheus base unit); rates are left to PromQL's `rate()`.

use std::fmt::{Display, Write as _};

use super::metrics::CounterValues;
use super::process::{PartitionStatus, ProcessMetrics};

/// The `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Reads one value of a partition.
type PartitionField = fn(&PartitionStatus) -> i64;

/// Prefix of every metric name.
const PREFIX: &str = "tickflow_";

/// Builds the exposition text one metric family at a time.
struct Exposition {
    out: String,
}

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        // Writing to a String cannot fail.
        let _ = writeln!(self.out, "# HELP {PREFIX}{name} {help}");
        let _ = writeln!(self.out, "# TYPE {PREFIX}{name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Display) {
        self.out.push_str(PREFIX);
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(k);
                self.out.push_str("=\"");
                escape_label_value(v, &mut self.out);
                self.out.push('"');
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }
}

/// Escapes `\`, `"` and newline as the 0.0.4 format requires.
fn escape_label_value(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// `value / 10^digits` as an exact decimal without trailing zeros (`1500, 3` → `1.5`).
fn fixed_point(value: i128, digits: u32) -> String {
    let scale = 10i128.pow(digits);
    let sign = if value < 0 { "-" } else { "" };
    let abs = value.unsigned_abs();
    let (int, frac) = (abs / scale as u128, abs % scale as u128);
    if frac == 0 {
        return format!("{sign}{int}");
    }
    let frac = format!("{frac:0width$}", width = digits as usize);
    format!("{sign}{int}.{}", frac.trim_end_matches('0'))
}

/// Milliseconds as seconds.
fn ms_as_seconds(ms: i64) -> String {
    fixed_point(i128::from(ms), 3)
}

/// Nanoseconds as seconds.
fn ns_as_seconds(ns: u64) -> String {
    fixed_point(i128::from(ns), 9)
}

/// The families every tickflow process exposes (the cluster and the gateway alike):
/// `tickflow_build_info`, the standard `process_*` (CPU, memory, file descriptors, start
/// time), uptime and readiness. No `tickflow_up`: Prometheus records `up` for every scrape.
fn render_process_into(e: &mut Exposition, metrics: &ProcessMetrics) {
    let now = metrics.now_ms();
    let process = metrics.process_id().to_string();
    let p = process.as_str();
    let readiness = metrics.readiness();
    e.family("build_info", "gauge", "Always 1; the labels say which build runs.");
    e.sample("build_info", &[("process", p), ("version", env!("CARGO_PKG_VERSION"))], 1);
    super::proc_self::render_into(&mut e.out, p, &super::proc_self::read());
    e.family("uptime_seconds", "gauge", "Seconds since the process started.");
    e.sample("uptime_seconds", &[("process", p)], ms_as_seconds(now.saturating_sub(metrics.started_ms())));
    e.family("ready", "gauge", "1 when the source is connected, the sink reachable and every worker running.");
    e.sample("ready", &[("process", p)], u8::from(readiness.is_ready()));
}

/// Only the process-wide families (build, `process_*`, uptime, readiness): what a process
/// that is not a cluster member (the gateway) exposes before its own families.
pub fn render_process(metrics: &ProcessMetrics) -> String {
    let mut e = Exposition { out: String::new() };
    render_process_into(&mut e, metrics);
    e.out
}

/// Renders every metric of a cluster process at the clock's current time.
pub fn render(metrics: &ProcessMetrics) -> String {
    let now = metrics.now_ms();
    let process = metrics.process_id().to_string();
    let p = process.as_str();
    let workers = metrics.worker_values();
    let worker_ids: Vec<String> = workers.iter().map(|w| w.index.to_string()).collect();
    let readiness = metrics.readiness();
    let mut e = Exposition { out: String::new() };

    // Process.
    render_process_into(&mut e, metrics);
    e.family("source_connected", "gauge", "1 when the source is connected.");
    e.sample("source_connected", &[("process", p)], u8::from(readiness.source_connected));
    e.family("sink_reachable", "gauge", "1 when the sink is reachable.");
    e.sample("sink_reachable", &[("process", p)], u8::from(readiness.sink_reachable));
    let sink = metrics.sink_health().load();
    e.family("sink_write_retries_total", "counter", "Sink write attempts that failed transiently and were retried.");
    e.sample("sink_write_retries_total", &[("process", p)], sink.retries);
    e.family("sink_write_failures_total", "counter", "Sink write attempts that failed, retried or not.");
    e.sample("sink_write_failures_total", &[("process", p)], sink.failures);
    e.family("sink_consecutive_failures", "gauge", "Failed sink write attempts since the last successful one.");
    e.sample("sink_consecutive_failures", &[("process", p)], sink.consecutive_failures);
    e.family("sink_queued_rows", "gauge", "Rows handed to the sink thread and not yet written.");
    e.sample("sink_queued_rows", &[("process", p)], sink.queued_rows);
    e.family("workers_running", "gauge", "Local workers running.");
    e.sample("workers_running", &[("process", p)], readiness.workers_running);
    e.family("sink_last_flush_timestamp_seconds", "gauge", "Unix time of the last successful sink flush.");
    if let Some(t) = metrics.sink_last_flush_ms() {
        e.sample("sink_last_flush_timestamp_seconds", &[("process", p)], ms_as_seconds(t));
    }

    // Workers: counters.
    let values: Vec<Vec<u64>> = workers.iter().map(|w| w.counters.values()).collect();
    for (field, (name, help)) in CounterValues::FIELDS.iter().enumerate() {
        let (metric, in_seconds) = match name.strip_suffix("_ns") {
            Some(stem) => (format!("{stem}_seconds_total"), true),
            None => (format!("{name}_total"), false),
        };
        let help = if in_seconds { help.replace("Nanoseconds", "Seconds") } else { (*help).to_owned() };
        e.family(&metric, "counter", &help);
        for (w, id) in values.iter().zip(&worker_ids) {
            let labels = [("process", p), ("worker", id.as_str())];
            if in_seconds {
                e.sample(&metric, &labels, ns_as_seconds(w[field]));
            } else {
                e.sample(&metric, &labels, w[field]);
            }
        }
    }

    // Workers: gauges.
    e.family("worker_running", "gauge", "1 while the worker runs.");
    for (w, id) in workers.iter().zip(&worker_ids) {
        e.sample("worker_running", &[("process", p), ("worker", id)], u8::from(w.running));
    }
    e.family("sink_backlog_rows", "gauge", "Rows buffered in the sink, not yet written.");
    for (w, id) in workers.iter().zip(&worker_ids) {
        e.sample("sink_backlog_rows", &[("process", p), ("worker", id)], w.backlog);
    }
    e.family("symbols_tracked", "gauge", "Symbols with live state on the worker.");
    for (w, id) in workers.iter().zip(&worker_ids) {
        e.sample("symbols_tracked", &[("process", p), ("worker", id)], w.symbols_tracked);
    }
    e.family("watermark_timestamp_seconds", "gauge", "Event-time watermark of the worker, Unix seconds.");
    for (w, id) in workers.iter().zip(&worker_ids) {
        if let Some(wm) = w.watermark_ms {
            e.sample("watermark_timestamp_seconds", &[("process", p), ("worker", id)], ms_as_seconds(wm));
        }
    }
    e.family("watermark_lag_seconds", "gauge", "How far the worker's watermark is behind the wall clock.");
    for (w, id) in workers.iter().zip(&worker_ids) {
        if let Some(wm) = w.watermark_ms {
            e.sample(
                "watermark_lag_seconds",
                &[("process", p), ("worker", id)],
                ms_as_seconds(now.saturating_sub(wm).max(0)),
            );
        }
    }
    e.family("last_activity_timestamp_seconds", "gauge", "Unix time the worker last published moved counters.");
    for (w, id) in workers.iter().zip(&worker_ids) {
        if let Some(t) = w.last_activity_ms {
            e.sample("last_activity_timestamp_seconds", &[("process", p), ("worker", id)], ms_as_seconds(t));
        }
    }

    // Latency: event time → sink acknowledgement, summed over the local workers.
    let mut latency = super::latency::LatencyValues::default();
    for w in metrics.workers() {
        latency.add(&w.latency().load());
    }
    e.family(
        "sink_latency_seconds",
        "histogram",
        "From a bar's event time to the sink's acknowledgement of its row (files flushed, QuestDB answered).",
    );
    for (bound, n) in super::latency::BOUNDS_MS.iter().zip(&latency.cumulative) {
        e.sample("sink_latency_seconds_bucket", &[("process", p), ("le", &ms_as_seconds(*bound as i64))], n);
    }
    e.sample("sink_latency_seconds_bucket", &[("process", p), ("le", "+Inf")], latency.count());
    e.sample("sink_latency_seconds_sum", &[("process", p)], ms_as_seconds(latency.sum_ms as i64));
    e.sample("sink_latency_seconds_count", &[("process", p)], latency.count());

    // Kafka partitions.
    let partitions = metrics.partitions();
    let partition_labels: Vec<(String, String)> =
        partitions.iter().map(|s| (s.partition.to_string(), s.owner_worker.to_string())).collect();
    let gauges: [(&str, &str, PartitionField); 3] = [
        ("kafka_partition_offset", "Next offset to read from the partition.", |s| s.offset),
        ("kafka_partition_high_watermark", "High watermark of the partition.", |s| s.high_watermark),
        ("kafka_partition_lag", "Messages in the partition not yet read (high watermark - offset).", |s| s.lag),
    ];
    for (name, help, get) in gauges {
        e.family(name, "gauge", help);
        for (s, (part, owner)) in partitions.iter().zip(&partition_labels) {
            let labels =
                [("process", p), ("worker", owner.as_str()), ("topic", s.topic.as_str()), ("partition", part.as_str())];
            e.sample(name, &labels, get(s));
        }
    }

    // Operators.
    let operators = metrics.operators().snapshot();
    let op_workers: Vec<String> = operators.iter().map(|o| o.worker.to_string()).collect();
    e.family("operator_busy_seconds_total", "counter", "Seconds the operator spent scheduled.");
    for (o, w) in operators.iter().zip(&op_workers) {
        let labels = [("process", p), ("worker", w.as_str()), ("operator", o.name.as_str())];
        e.sample("operator_busy_seconds_total", &labels, ns_as_seconds(o.busy_ns));
    }
    e.family("operator_schedules_total", "counter", "Times the operator was scheduled.");
    for (o, w) in operators.iter().zip(&op_workers) {
        let labels = [("process", p), ("worker", w.as_str()), ("operator", o.name.as_str())];
        e.sample("operator_schedules_total", &labels, o.schedules);
    }

    // Components that expose their own families (the alert notifier).
    metrics.expose_extra(&mut e.out);
    e.out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_point_is_exact_and_trimmed() {
        assert_eq!(ms_as_seconds(1_500), "1.5");
        assert_eq!(ms_as_seconds(2_000), "2");
        assert_eq!(ms_as_seconds(-1_250), "-1.25");
        assert_eq!(ms_as_seconds(7), "0.007");
        assert_eq!(ns_as_seconds(1_000_000_001), "1.000000001");
        assert_eq!(ns_as_seconds(0), "0");
    }

    #[test]
    fn label_values_are_escaped() {
        let mut out = String::new();
        escape_label_value("a\"b\\c\nd", &mut out);
        assert_eq!(out, r#"a\"b\\c\nd"#);
    }
}
