//! librdkafka callbacks: logs and errors to `tracing` (and the status endpoint), partition high
//! watermarks from librdkafka's statistics, commit results.
//!
//! librdkafka calls these from its own threads (logs) or from the worker's poll of the main
//! queue (statistics, errors, commit results); everything here is cheap and lock-light.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::TopicPartitionList;

use crate::status::ProcessMetrics;

/// The consumer context of one worker's Kafka source.
pub struct SourceContext {
    worker: usize,
    metrics: Option<Arc<ProcessMetrics>>,
    /// Topic → partition → high watermark, from the latest statistics event (librdkafka's
    /// statistics cover the assigned partitions).
    high: Mutex<HashMap<String, HashMap<i32, i64>>>,
    /// Repeated librdkafka log lines and client errors, held back.
    repeats: crate::logs::Repeats,
}

impl SourceContext {
    /// A context for `worker`, reporting to `metrics` if given.
    pub fn new(worker: usize, metrics: Option<Arc<ProcessMetrics>>) -> SourceContext {
        SourceContext { worker, metrics, high: Mutex::new(HashMap::new()), repeats: crate::logs::Repeats::default() }
    }

    /// The high watermark of `partition` of `topic` from the latest statistics, if any arrived.
    pub fn high_watermark(&self, topic: &str, partition: i32) -> Option<i64> {
        self.high.lock().unwrap_or_else(PoisonError::into_inner).get(topic)?.get(&partition).copied()
    }
}

impl ClientContext for SourceContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        // Repeats (a broker away: the same refusal every few hundred ms) are held back.
        crate::logs::kafka_log(&self.repeats, level, fac, log_message);
    }

    fn stats(&self, statistics: Statistics) {
        let mut high = self.high.lock().unwrap_or_else(PoisonError::into_inner);
        for (name, topic) in &statistics.topics {
            let by_partition = match high.get_mut(name) {
                Some(h) => h,
                None => high.entry(name.clone()).or_default(),
            };
            for (&partition, p) in &topic.partitions {
                // Partition -1 is librdkafka's internal "unassigned" partition.
                if partition >= 0 && p.hi_offset >= 0 {
                    by_partition.insert(partition, p.hi_offset);
                }
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // Reaching the end of a partition is news, not an error (end-of-partition events are on).
        if matches!(error, KafkaError::PartitionEOF(_) | KafkaError::Global(RDKafkaErrorCode::PartitionEOF)) {
            return;
        }
        if let Some(held_back) = self.repeats.admit(&format!("{error}: {reason}"), std::time::Instant::now()) {
            tracing::warn!(worker = self.worker, %error, reason, held_back, "Kafka client error; librdkafka retries");
        }
        if let Some(m) = &self.metrics {
            m.record_error(format!("kafka (worker {}): {error}: {reason}", self.worker));
            if matches!(error, KafkaError::Global(RDKafkaErrorCode::AllBrokersDown)) {
                m.set_source_connected(false);
            }
        }
    }
}

impl ConsumerContext for SourceContext {
    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        match result {
            Ok(()) => tracing::debug!(worker = self.worker, partitions = offsets.count(), "offsets committed"),
            Err(error) => {
                tracing::warn!(worker = self.worker, %error, "committing offsets failed; the next commit retries");
                if let Some(m) = &self.metrics {
                    m.record_error(format!("kafka (worker {}): committing offsets failed: {error}", self.worker));
                }
            }
        }
    }
}
