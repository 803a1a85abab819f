//! `/metrics`: [`ProcessMetrics`] in the Prometheus text exposition format 0.0.4.
//!
//! Labels are only `process`, `worker`, `topic`, `partition`, `operator`, the histogram's
//! `le` and `tickflow_build_info`'s `version`: all bounded by the deployment. Never add a per-symbol label (unbounded cardinality). Times are exposed in
//! seconds (Prometheus base unit); rates are left to PromQL's `rate()`.

use super::metrics::CounterValues;
use super::process::{PartitionStatus, ProcessMetrics};
pub use crate::prometheus::CONTENT_TYPE;
use crate::prometheus::{Exposition, Kind, NAMESPACE, ms_as_seconds, ns_as_seconds};

/// Reads one value of a partition.
type PartitionField = fn(&PartitionStatus) -> i64;

/// The families every tickflow process exposes (the cluster and the gateway alike):
/// `tickflow_build_info`, the standard `process_*` (CPU, memory, file descriptors, start
/// time), uptime and readiness. No `tickflow_up`: Prometheus records `up` for every scrape.
fn render_process_into(e: &mut Exposition, metrics: &ProcessMetrics) {
    let now = metrics.now_ms();
    let process = metrics.process_id().to_string();
    let p = process.as_str();
    let readiness = metrics.readiness();
    e.family("build_info", Kind::Gauge, "Always 1; the labels say which build runs.")
        .sample(&[("process", p), ("version", env!("CARGO_PKG_VERSION"))], 1);
    super::proc_self::render_into(e, p, &super::proc_self::read());
    e.family("uptime_seconds", Kind::Gauge, "Seconds since the process started.")
        .sample(&[("process", p)], ms_as_seconds(now.saturating_sub(metrics.started_ms())));
    e.family("ready", Kind::Gauge, "1 when the source is connected, the sink reachable and every worker running.")
        .sample(&[("process", p)], u8::from(readiness.is_ready()));
}

/// Only the process-wide families (build, `process_*`, uptime, readiness): what a process
/// that is not a cluster member (the gateway) exposes before its own families.
pub fn render_process(e: &mut Exposition, metrics: &ProcessMetrics) {
    render_process_into(e, metrics);
}

/// Renders every metric of a cluster process at the clock's current time.
pub fn render(metrics: &ProcessMetrics) -> String {
    let now = metrics.now_ms();
    let process = metrics.process_id().to_string();
    let p = process.as_str();
    let workers = metrics.worker_values();
    let worker_ids: Vec<String> = workers.iter().map(|w| w.index.to_string()).collect();
    let readiness = metrics.readiness();
    let mut e = Exposition::new(NAMESPACE);

    // Process.
    render_process_into(&mut e, metrics);
    e.family("source_connected", Kind::Gauge, "1 when the source is connected.")
        .sample(&[("process", p)], u8::from(readiness.source_connected));
    e.family("sink_reachable", Kind::Gauge, "1 when the sink is reachable.")
        .sample(&[("process", p)], u8::from(readiness.sink_reachable));
    let sink = metrics.sink_health().load();
    e.family(
        "sink_write_retries_total",
        Kind::Counter,
        "Sink write attempts that failed transiently and were retried.",
    )
    .sample(&[("process", p)], sink.retries);
    e.family("sink_write_failures_total", Kind::Counter, "Sink write attempts that failed, retried or not.")
        .sample(&[("process", p)], sink.failures);
    e.family("sink_consecutive_failures", Kind::Gauge, "Failed sink write attempts since the last successful one.")
        .sample(&[("process", p)], sink.consecutive_failures);
    e.family("sink_queued_rows", Kind::Gauge, "Rows handed to the sink thread and not yet written.")
        .sample(&[("process", p)], sink.queued_rows);
    e.family("workers_running", Kind::Gauge, "Local workers running.")
        .sample(&[("process", p)], readiness.workers_running);
    let mut f =
        e.family("sink_last_flush_timestamp_seconds", Kind::Gauge, "Unix time of the last successful sink flush.");
    if let Some(t) = metrics.sink_last_flush_ms() {
        f.sample(&[("process", p)], ms_as_seconds(t));
    }

    // Workers: counters.
    let values: Vec<Vec<u64>> = workers.iter().map(|w| w.counters.values()).collect();
    for (field, (name, help)) in CounterValues::FIELDS.iter().enumerate() {
        let (metric, in_seconds) = match name.strip_suffix("_ns") {
            Some(stem) => (format!("{stem}_seconds_total"), true),
            None => (format!("{name}_total"), false),
        };
        let help = if in_seconds { help.replace("Nanoseconds", "Seconds") } else { (*help).to_owned() };
        let mut f = e.family(&metric, Kind::Counter, &help);
        for (w, id) in values.iter().zip(&worker_ids) {
            let labels = [("process", p), ("worker", id.as_str())];
            if in_seconds {
                f.sample(&labels, ns_as_seconds(w[field]));
            } else {
                f.sample(&labels, w[field]);
            }
        }
    }

    // Workers: gauges.
    let mut f = e.family("worker_running", Kind::Gauge, "1 while the worker runs.");
    for (w, id) in workers.iter().zip(&worker_ids) {
        f.sample(&[("process", p), ("worker", id)], u8::from(w.running));
    }
    let mut f = e.family("sink_backlog_rows", Kind::Gauge, "Rows buffered in the sink, not yet written.");
    for (w, id) in workers.iter().zip(&worker_ids) {
        f.sample(&[("process", p), ("worker", id)], w.backlog);
    }
    let mut f = e.family("symbols_tracked", Kind::Gauge, "Symbols with live state on the worker.");
    for (w, id) in workers.iter().zip(&worker_ids) {
        f.sample(&[("process", p), ("worker", id)], w.symbols_tracked);
    }
    let mut f =
        e.family("watermark_timestamp_seconds", Kind::Gauge, "Event-time watermark of the worker, Unix seconds.");
    for (w, id) in workers.iter().zip(&worker_ids) {
        if let Some(wm) = w.watermark_ms {
            f.sample(&[("process", p), ("worker", id)], ms_as_seconds(wm));
        }
    }
    let mut f =
        e.family("watermark_lag_seconds", Kind::Gauge, "How far the worker's watermark is behind the wall clock.");
    for (w, id) in workers.iter().zip(&worker_ids) {
        if let Some(wm) = w.watermark_ms {
            f.sample(&[("process", p), ("worker", id)], ms_as_seconds(now.saturating_sub(wm).max(0)));
        }
    }
    let mut f =
        e.family("last_activity_timestamp_seconds", Kind::Gauge, "Unix time the worker last published moved counters.");
    for (w, id) in workers.iter().zip(&worker_ids) {
        if let Some(t) = w.last_activity_ms {
            f.sample(&[("process", p), ("worker", id)], ms_as_seconds(t));
        }
    }

    // Latency: event time → sink acknowledgement, summed over the local workers.
    let mut latency = super::latency::LatencyValues::default();
    for w in metrics.workers() {
        latency.add(&w.latency().load());
    }
    e.family(
        "sink_latency_seconds",
        Kind::Histogram,
        "From a bar's event time to the sink's acknowledgement of its row (files flushed, QuestDB answered).",
    )
    .histogram(
        &[("process", p)],
        super::latency::BOUNDS_MS.iter().zip(&latency.cumulative).map(|(bound, n)| (ms_as_seconds(*bound as i64), *n)),
        ms_as_seconds(latency.sum_ms as i64),
        latency.count(),
    );

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
        let mut f = e.family(name, Kind::Gauge, help);
        for (s, (part, owner)) in partitions.iter().zip(&partition_labels) {
            let labels =
                [("process", p), ("worker", owner.as_str()), ("topic", s.topic.as_str()), ("partition", part.as_str())];
            f.sample(&labels, get(s));
        }
    }

    // Operators.
    let operators = metrics.operators().snapshot();
    let op_workers: Vec<String> = operators.iter().map(|o| o.worker.to_string()).collect();
    let mut f = e.family("operator_busy_seconds_total", Kind::Counter, "Seconds the operator spent scheduled.");
    for (o, w) in operators.iter().zip(&op_workers) {
        let labels = [("process", p), ("worker", w.as_str()), ("operator", o.name.as_str())];
        f.sample(&labels, ns_as_seconds(o.busy_ns));
    }
    let mut f = e.family("operator_schedules_total", Kind::Counter, "Times the operator was scheduled.");
    for (o, w) in operators.iter().zip(&op_workers) {
        let labels = [("process", p), ("worker", w.as_str()), ("operator", o.name.as_str())];
        f.sample(&labels, o.schedules);
    }

    // Components that expose their own families (the alert notifier).
    let mut out = e.finish();
    metrics.expose_extra(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prometheus::tests::parse_exposition;

    #[test]
    fn a_cluster_process_exposition_parses() {
        let m = ProcessMetrics::with_system_clock(1, 0..2);
        m.add_exposer(std::sync::Arc::new(|out: &mut String| {
            let mut e = Exposition::new(NAMESPACE);
            e.family("extra_total", Kind::Counter, "An extra family.").sample(&[("process", "1")], 5);
            out.push_str(&e.finish());
        }));
        let text = render(&m);
        let samples = parse_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let has = |series: &str| samples.iter().any(|(s, _)| s == series);
        assert!(has("tickflow_sink_latency_seconds_bucket{process=\"1\",le=\"+Inf\"}"), "{text}");
        assert!(has("tickflow_sink_latency_seconds_count{process=\"1\"}"), "{text}");
        assert!(has("tickflow_extra_total{process=\"1\"}"), "{text}");
        assert_eq!(text.matches("# TYPE tickflow_worker_running gauge\n").count(), 1);
    }
}
