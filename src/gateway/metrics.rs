//! Gateway metrics: one event per finished request that both logs and counts (never per
//! record), rendered next to the process metrics on `/metrics`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::http::{BodyBudget, RequestSlots, ServeStats};
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

    /// Appends the gateway families in the Prometheus text format 0.0.4.
    pub fn render_into(&self, out: &mut String, in_flight: usize, capacity: usize, broker_up: bool) {
        // Writing to a String cannot fail.
        let _ = writeln!(out, "# HELP tickflow_gateway_requests_total Ingest requests answered, by status.");
        let _ = writeln!(out, "# TYPE tickflow_gateway_requests_total counter");
        for (i, s) in STATUSES.iter().enumerate() {
            let _ = writeln!(out, "tickflow_gateway_requests_total{{code=\"{s}\"}} {}", self.requests[i].load(Relaxed));
        }
        let families: [(&str, &str, &str, String); 5] = [
            ("body_bytes_total", "counter", "Request body bytes read.", self.body_bytes.load(Relaxed).to_string()),
            (
                "request_seconds_total",
                "counter",
                "Time spent answering ingest requests.",
                format!("{:.6}", self.request_ns.load(Relaxed) as f64 / 1e9),
            ),
            ("queue_in_flight", "gauge", "Records waiting for Kafka acknowledgement.", in_flight.to_string()),
            ("queue_capacity", "gauge", "Bound on records waiting for acknowledgement.", capacity.to_string()),
            (
                "broker_up",
                "gauge",
                "1 when the Kafka broker and both topics are reachable.",
                u8::from(broker_up).to_string(),
            ),
        ];
        for (name, kind, help, value) in families {
            let _ = writeln!(out, "# HELP tickflow_gateway_{name} {help}");
            let _ = writeln!(out, "# TYPE tickflow_gateway_{name} {kind}");
            let _ = writeln!(out, "tickflow_gateway_{name} {value}");
        }
    }

    /// Appends the per-record counters (counted per request into the process's worker block).
    pub fn render_records(&self, out: &mut String, process: &ProcessMetrics) {
        let c = process.totals();
        let families: [(&str, &str, u64); 4] = [
            ("records_total", "Records received in ingest requests, valid or not.", c.bars_in),
            ("bars_produced_total", "Valid bars acknowledged by Kafka.", c.bars_out),
            ("records_invalid_total", "Records rejected by validation.", c.bars_invalid),
            ("dead_letters_total", "Invalid records acknowledged on the dead-letter topic.", c.dead_letters),
        ];
        for (name, help, value) in families {
            let _ = writeln!(out, "# HELP tickflow_gateway_{name} {help}");
            let _ = writeln!(out, "# TYPE tickflow_gateway_{name} counter");
            let _ = writeln!(out, "tickflow_gateway_{name} {value}");
        }
    }

    /// Appends the listener's families: connections open, accepted, refused at the cap,
    /// failed accepts, requests in progress and their cap, the buffered-body budget in use,
    /// and the requests refused (`503`) by each of the last two.
    pub fn render_http(&self, out: &mut String, stats: &ServeStats, budget: &BodyBudget, slots: &RequestSlots) {
        let _ = writeln!(
            out,
            "# HELP tickflow_gateway_requests_refused_total Ingest requests answered 503 for lack of a request slot or of room in the buffered-body budget."
        );
        let _ = writeln!(out, "# TYPE tickflow_gateway_requests_refused_total counter");
        let _ = writeln!(
            out,
            "tickflow_gateway_requests_refused_total{{limit=\"concurrent_requests\"}} {}",
            slots.refused()
        );
        let _ = writeln!(out, "tickflow_gateway_requests_refused_total{{limit=\"body_budget\"}} {}", budget.refused());
        let families: [(&str, &str, &str, u64); 8] = [
            ("connections_open", "gauge", "HTTP connections open.", stats.open.load(Relaxed) as u64),
            ("connections_accepted_total", "counter", "HTTP connections accepted.", stats.accepted.load(Relaxed)),
            (
                "connections_refused_total",
                "counter",
                "HTTP connections over the cap, answered 503.",
                stats.refused.load(Relaxed),
            ),
            (
                "accept_errors_total",
                "counter",
                "Failed accepts (e.g. out of file descriptors).",
                stats.accept_errors.load(Relaxed),
            ),
            ("requests_in_progress", "gauge", "Ingest requests being worked on.", slots.in_use() as u64),
            (
                "requests_in_progress_max",
                "gauge",
                "Ingest requests that may be worked on at once (max-concurrent-requests).",
                slots.total() as u64,
            ),
            ("body_budget_bytes", "gauge", "Bytes of request bodies that may be buffered at once.", budget.total()),
            (
                "body_buffered_bytes",
                "gauge",
                "Bytes of request bodies buffered now.",
                budget.total() - budget.available(),
            ),
        ];
        for (name, kind, help, value) in families {
            let _ = writeln!(out, "# HELP tickflow_gateway_{name} {help}");
            let _ = writeln!(out, "# TYPE tickflow_gateway_{name} {kind}");
            let _ = writeln!(out, "tickflow_gateway_{name} {value}");
        }
    }
}
