//! The part of a process's `/status` document that `tickflow top` shows, and reading it from
//! every process at once.
//!
//! The types mirror [`crate::status::StatusReport`] but only deserialize what the view needs,
//! with defaults for the rest, so a process of a slightly older or newer version still shows.

use serde::Deserialize;

use crate::status_cli::{FetchError, StatusClient};

/// One process's `/status`, as far as the view reads it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ProcessSample {
    /// Identity and the server's clock.
    pub process: ProcessPart,
    /// Readiness.
    pub ready: ReadyPart,
    /// The process's workers.
    pub workers: Vec<WorkerPart>,
    /// Kafka partitions read by this process.
    pub partitions: Vec<PartitionPart>,
    /// The sink.
    pub sink: SinkPart,
    /// The last error recorded anywhere in the process.
    pub last_error: Option<ErrorPart>,
}

/// `process` of `/status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ProcessPart {
    /// Process index in the cluster.
    pub id: usize,
    /// The server's wall clock at the snapshot, ms since the epoch.
    pub now_ms: i64,
    /// Uptime, ms.
    pub uptime_ms: i64,
}

/// `ready` of `/status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ReadyPart {
    /// Whether `/ready` answers 200.
    pub ready: bool,
    /// What is not ready.
    pub reasons: Vec<String>,
}

/// One entry of `workers` of `/status`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct WorkerPart {
    /// Global worker index.
    pub index: usize,
    /// Whether the worker runs.
    pub running: bool,
    /// Bars read.
    pub bars_in: u64,
    /// Bars passed on.
    pub bars_out: u64,
    /// Nanoseconds spent working.
    pub busy_ns: u64,
    /// Sink rows buffered.
    pub backlog: u64,
    /// Watermark lag behind the wall clock, ms.
    pub watermark_lag_ms: Option<i64>,
    /// Busy share of the last 10 s as the server computed it, percent.
    pub busy_pct_10s: Option<f64>,
}

/// One entry of `partitions` of `/status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct PartitionPart {
    /// Global index of the worker that reads it.
    pub owner_worker: usize,
    /// Messages not yet read.
    pub lag: i64,
}

/// `sink` of `/status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct SinkPart {
    /// Rows buffered, not yet written.
    pub backlog: u64,
    /// Whether the sink is reachable.
    pub reachable: bool,
}

/// An error record of `/status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ErrorPart {
    /// The message.
    pub message: String,
}

/// What one read of one endpoint gave.
pub type Reading = Result<ProcessSample, FetchError>;

/// Reads every URL in parallel (one thread each, so a process that times out does not delay
/// the others); the results are in the order of `urls`.
pub fn read_all(client: &StatusClient, urls: &[String]) -> Vec<Reading> {
    std::thread::scope(|s| {
        let handles: Vec<_> = urls.iter().map(|u| s.spawn(move || client.get_json::<ProcessSample>(u))).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(FetchError::Http("reader thread panicked".into()))))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_document_reads_with_the_fields_the_view_needs() {
        let doc = r#"{"process":{"id":1,"pid":7,"now_ms":5000,"uptime_ms":900,"version":"0.1.0"},
            "ready":{"ready":true,"reasons":[],"source_connected":true},
            "workers":[{"index":2,"running":true,"bars_in":10,"bars_out":9,"busy_ns":5,"backlog":3,
                        "watermark_lag_ms":1200,"busy_pct_10s":12.5,"candles_out":1}],
            "partitions":[{"topic":"bars","partition":0,"owner_worker":2,"offset":5,"high_watermark":9,"lag":4}],
            "sink":{"backlog":3,"reachable":true,"rows":1},"last_error":null,"operators":[]}"#;
        let s: ProcessSample = serde_json::from_str(doc).unwrap();
        assert_eq!(s.process, ProcessPart { id: 1, now_ms: 5000, uptime_ms: 900 });
        assert!(s.ready.ready);
        assert_eq!(
            s.workers,
            vec![WorkerPart {
                index: 2,
                running: true,
                bars_in: 10,
                bars_out: 9,
                busy_ns: 5,
                backlog: 3,
                watermark_lag_ms: Some(1200),
                busy_pct_10s: Some(12.5)
            }]
        );
        assert_eq!(s.partitions, vec![PartitionPart { owner_worker: 2, lag: 4 }]);
        assert_eq!(s.sink, SinkPart { backlog: 3, reachable: true });
        assert_eq!(s.last_error, None);
    }
}
