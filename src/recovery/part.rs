//! What one worker writes into a checkpoint.

use serde::{Deserialize, Serialize};
use tickflow_operators::dataflow::alerts::AlertsSnapshot;
use tickflow_operators::dataflow::candles::CandlesSnapshot;
use tickflow_operators::dataflow::enrich::EnrichSnapshot;

use crate::checkpoint::{PartInfo, SourcePosition};
use crate::sinks::file::FileParts;
use crate::sources::generator::GeneratorState;

/// The part `w{index}.bin` of a checkpoint: everything worker `worker` needs to continue.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WorkerPart {
    /// Global worker index, and how many workers the cluster had.
    pub worker: usize,
    /// Workers in the cluster (all processes).
    pub peers: usize,
    /// The checkpoint (epoch) this part closes.
    pub epoch: u64,
    /// The source's watermark at the cut (ms; `u64::MAX` once its input ended).
    pub watermark: u64,
    /// What the state depends on (indicator columns, timeframes, lateness): a restore into a
    /// different set would produce different rows, so it is refused.
    pub fingerprint: String,
    /// The source position.
    pub source: SourceState,
    /// Per-bar indicator state.
    pub enrich: EnrichSnapshot,
    /// Candle windows and candle indicators (when windows are configured).
    pub candles: Option<CandlesSnapshot>,
    /// The worker's in-progress and rolled result files.
    pub files: FileParts,
    /// Alert state (latest values, firing state), when alerts are configured.
    pub alerts: Option<AlertsSnapshot>,
}

/// One Kafka partition's position.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KafkaPartitionState {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The next offset to read.
    pub next: i64,
    /// The newest event time read (the partition's watermark generator).
    pub max_ts: Option<i64>,
}

/// Where a worker's source resumes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum SourceState {
    /// Nothing to resume (a worker without input).
    None,
    /// Kafka partitions owned by the worker.
    Kafka(Vec<KafkaPartitionState>),
    /// The synthetic market generator of this worker (same shape only).
    Generator(GeneratorState),
}

/// A worker's report of its part of checkpoint `epoch`, sent to worker 0 through the dataflow.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PartReport {
    /// The checkpoint.
    pub epoch: u64,
    /// The part as written.
    pub part: PartInfo,
    /// Symbols with state on this worker.
    pub symbols: u64,
    /// The source's watermark at the cut.
    pub watermark: u64,
    /// Human-readable source positions.
    pub sources: Vec<SourcePosition>,
    /// Taken on a stop request (stop-with-savepoint).
    pub final_savepoint: bool,
}
