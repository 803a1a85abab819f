//! Gateway metrics: one event per finished request that both logs and counts (never per
//! record), rendered next to the process metrics on `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::http::{BodyBudget, RequestSlots, ServeStats};
use crate::prometheus::{Exposition, Kind, ns_as_seconds};
use crate::status::{LocalCounters, ProcessMetrics};

/// The HTTP statuses the gateway answers `/ingest` with, in metric order.
pub const STATUSES: [u16; 8] = [202, 400, 401, 408, 413, 415, 503, 500];

/// Request counters of the gateway (the per-record counts go to the process metrics'
/// worker block: `bars_in`, `bars_out`, `bars_invalid`, `dead_letters`, `batches`).
#[derive(Debug, Default)]
pub struct GatewayMetrics {
    requests: [AtomicU64; STATUSES.len()],
    body_bytes: AtomicU64,
    request_ns: AtomicU64,
}

/// One finished `/ingest` request: what it carried and how it ended.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestCompleted {
    /// The status answered.
    pub status: u16,
    /// Body bytes read.
    pub bytes: u64,
    /// Records in the body.
    pub records: u64,
    /// Bars acknowledged by Kafka.
    pub accepted: u64,
    /// Records rejected by validation.
    pub rejected: u64,
    /// Dead letters acknowledged by Kafka.
    pub dead_lettered: u64,
    /// Wall time of the request in ns.
    pub elapsed_ns: u64,
}

impl RequestCompleted {
    /// Logs the request (debug for success, info for rejections, warn for 5xx) and counts
    /// it: once per request.
    pub fn emit(&self, gw: &GatewayMetrics, process: &ProcessMetrics) {
        let (status, records, accepted, rejected) = (self.status, self.records, self.accepted, self.rejected);
        let elapsed_ms = self.elapsed_ns / 1_000_000;
        match status {
            200..=299 => tracing::debug!(status, records, accepted, elapsed_ms, "ingest request accepted"),
            500..=599 => tracing::warn!(status, records, accepted, rejected, elapsed_ms, "ingest request failed"),
            _ => tracing::info!(status, records, accepted, rejected, elapsed_ms, "ingest request rejected"),
        }
        let slot = STATUSES.iter().position(|&s| s == status).unwrap_or(STATUSES.len() - 1);
        gw.requests[slot].fetch_add(1, Relaxed);
        gw.body_bytes.fetch_add(self.bytes, Relaxed);
        gw.request_ns.fetch_add(self.elapsed_ns, Relaxed);
        if let Some(worker) = process.workers().first() {
            let mut local = LocalCounters {
                bars_in: records,
                bars_out: accepted,
                bars_invalid: rejected,
                dead_letters: self.dead_lettered,
                batches: 1,
                ..LocalCounters::default()
            };
            local.publish(worker);
        }
    }
}

impl GatewayMetrics {
    /// Requests answered with `status` so far.
    pub fn requests(&self, status: u16) -> u64 {
        STATUSES.iter().position(|&s| s == status).map_or(0, |i| self.requests[i].load(Relaxed))
    }

    /// Adds the gateway's request and queue families.
    pub fn render_into(&self, e: &mut Exposition, in_flight: usize, capacity: usize, broker_up: bool) {
        let mut requests = e.family("gateway_requests_total", Kind::Counter, "Ingest requests answered, by status.");
        for (i, s) in STATUSES.iter().enumerate() {
            requests.sample(&[("code", &s.to_string())], self.requests[i].load(Relaxed));
        }
        e.family("gateway_body_bytes_total", Kind::Counter, "Request body bytes read.")
            .sample(&[], self.body_bytes.load(Relaxed));
        e.family("gateway_request_seconds_total", Kind::Counter, "Time spent answering ingest requests.")
            .sample(&[], ns_as_seconds(self.request_ns.load(Relaxed)));
        e.family("gateway_queue_in_flight", Kind::Gauge, "Records waiting for Kafka acknowledgement.")
            .sample(&[], in_flight);
        e.family("gateway_queue_capacity", Kind::Gauge, "Bound on records waiting for acknowledgement.")
            .sample(&[], capacity);
        e.family("gateway_broker_up", Kind::Gauge, "1 when the Kafka broker and both topics are reachable.")
            .sample(&[], u8::from(broker_up));
    }

    /// Adds the per-record counters (counted per request into the process's worker block).
    pub fn render_records(&self, e: &mut Exposition, process: &ProcessMetrics) {
        let c = process.totals();
        let families: [(&str, &str, u64); 4] = [
            ("records_total", "Records received in ingest requests, valid or not.", c.bars_in),
            ("bars_produced_total", "Valid bars acknowledged by Kafka.", c.bars_out),
            ("records_invalid_total", "Records rejected by validation.", c.bars_invalid),
            ("dead_letters_total", "Invalid records acknowledged on the dead-letter topic.", c.dead_letters),
        ];
        for (name, help, value) in families {
            e.family(&format!("gateway_{name}"), Kind::Counter, help).sample(&[], value);
        }
    }

    /// Adds the listener's families: connections open, accepted, refused at the cap,
    /// failed accepts, requests in progress and their cap, the buffered-body budget in use,
    /// and the requests refused (`503`) by each of the last two.
    pub fn render_http(&self, e: &mut Exposition, stats: &ServeStats, budget: &BodyBudget, slots: &RequestSlots) {
        e.family(
            "gateway_requests_refused_total",
            Kind::Counter,
            "Ingest requests answered 503 for lack of a request slot or of room in the buffered-body budget.",
        )
        .sample(&[("limit", "concurrent_requests")], slots.refused())
        .sample(&[("limit", "body_budget")], budget.refused());
        let families: [(&str, Kind, &str, u64); 8] = [
            ("connections_open", Kind::Gauge, "HTTP connections open.", stats.open.load(Relaxed) as u64),
            ("connections_accepted_total", Kind::Counter, "HTTP connections accepted.", stats.accepted.load(Relaxed)),
            (
                "connections_refused_total",
                Kind::Counter,
                "HTTP connections over the cap, answered 503.",
                stats.refused.load(Relaxed),
            ),
            (
                "accept_errors_total",
                Kind::Counter,
                "Failed accepts (e.g. out of file descriptors).",
                stats.accept_errors.load(Relaxed),
            ),
            ("requests_in_progress", Kind::Gauge, "Ingest requests being worked on.", slots.in_use() as u64),
            (
                "requests_in_progress_max",
                Kind::Gauge,
                "Ingest requests that may be worked on at once (max-concurrent-requests).",
                slots.total() as u64,
            ),
            ("body_budget_bytes", Kind::Gauge, "Bytes of request bodies that may be buffered at once.", budget.total()),
            (
                "body_buffered_bytes",
                Kind::Gauge,
                "Bytes of request bodies buffered now.",
                budget.total() - budget.available(),
            ),
        ];
        for (name, kind, help, value) in families {
            e.family(&format!("gateway_{name}"), kind, help).sample(&[], value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prometheus::NAMESPACE;
    use crate::prometheus::tests::parse_exposition;

    /// The gateway's `/metrics` text, as its route builds it.
    fn gateway_exposition(gw: &GatewayMetrics, process: &ProcessMetrics) -> String {
        let mut e = Exposition::new(NAMESPACE);
        crate::status::render_process_prometheus(&mut e, process);
        gw.render_records(&mut e, process);
        gw.render_into(&mut e, 3, 100, true);
        gw.render_http(&mut e, &ServeStats::default(), &BodyBudget::new(1 << 20), &RequestSlots::new(32));
        e.finish()
    }

    #[test]
    fn the_gateway_exposes_its_own_families_only() {
        let process = ProcessMetrics::with_system_clock(0, 0..1);
        let gw = GatewayMetrics::default();
        let done = RequestCompleted {
            status: 202,
            bytes: 500,
            records: 4,
            accepted: 3,
            rejected: 1,
            dead_lettered: 1,
            elapsed_ns: 1_500_000,
        };
        done.emit(&gw, &process);
        let text = gateway_exposition(&gw, &process);
        let samples = parse_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let mut families: Vec<&str> =
            text.lines().filter_map(|l| l.strip_prefix("# TYPE ")).map(|l| l.split(' ').next().unwrap()).collect();
        families.retain(|f| !f.starts_with("process_"));
        assert_eq!(
            families,
            [
                "tickflow_build_info",
                "tickflow_uptime_seconds",
                "tickflow_ready",
                "tickflow_gateway_records_total",
                "tickflow_gateway_bars_produced_total",
                "tickflow_gateway_records_invalid_total",
                "tickflow_gateway_dead_letters_total",
                "tickflow_gateway_requests_total",
                "tickflow_gateway_body_bytes_total",
                "tickflow_gateway_request_seconds_total",
                "tickflow_gateway_queue_in_flight",
                "tickflow_gateway_queue_capacity",
                "tickflow_gateway_broker_up",
                "tickflow_gateway_requests_refused_total",
                "tickflow_gateway_connections_open",
                "tickflow_gateway_connections_accepted_total",
                "tickflow_gateway_connections_refused_total",
                "tickflow_gateway_accept_errors_total",
                "tickflow_gateway_requests_in_progress",
                "tickflow_gateway_requests_in_progress_max",
                "tickflow_gateway_body_budget_bytes",
                "tickflow_gateway_body_buffered_bytes",
            ],
            "no cluster family (watermarks, sinks, partitions, operators) at zero: {text}"
        );
        let value = |series: &str| samples.iter().find(|(s, _)| s == series).map(|(_, v)| *v);
        assert_eq!(value("tickflow_gateway_requests_total{code=\"202\"}"), Some(1.0));
        assert_eq!(value("tickflow_gateway_records_total{}"), Some(4.0));
        assert_eq!(value("tickflow_gateway_request_seconds_total{}"), Some(0.0015));
        assert_eq!(value("tickflow_gateway_body_budget_bytes{}"), Some(1_048_576.0));
        assert_eq!(value("tickflow_gateway_requests_in_progress_max{}"), Some(32.0));
        assert_eq!(value("tickflow_gateway_requests_refused_total{limit=\"body_budget\"}"), Some(0.0));
    }
}
