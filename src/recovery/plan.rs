//! Choosing the checkpoint a run resumes from, and what each worker restores from it.

use std::path::Path;

use anyhow::Context as _;
use tickflow_operators::Symbol;

use super::part::{KafkaPartitionState, SourceState, WorkerPart};
use crate::checkpoint::{CheckpointStore, decode_part};
use crate::sinks::file::recover_dir;

/// Which checkpoint `tickflow run` starts from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Resume {
    /// The newest complete checkpoint, if any (the default).
    #[default]
    Latest,
    /// None: start from the configured source start (`--fresh`).
    Fresh,
    /// Exactly this one (`--from-checkpoint ID`).
    From(u64),
}

/// What a run restores: the checkpoint's parts (of every worker of the run that took it),
/// and where the new run's epochs and watermark start.
#[derive(Clone, Debug, Default)]
pub struct RestorePlan {
    /// The checkpoint restored, if any.
    pub checkpoint: Option<u64>,
    /// The first epoch of this run.
    pub epoch: u64,
    /// The watermark to start at (the cut's), ms.
    pub watermark: u64,
    /// Every part of the checkpoint.
    pub parts: Vec<WorkerPart>,
}

impl RestorePlan {
    /// Loads the checkpoint `resume` asks for from `store` (none → a fresh plan), checks it
    /// fits this cluster (`fingerprint`), and makes `file_dir` hold exactly what it covers.
    pub fn prepare(
        store: &CheckpointStore,
        resume: Resume,
        fingerprint: &str,
        file_dir: Option<&Path>,
    ) -> anyhow::Result<RestorePlan> {
        let loaded = match resume {
            Resume::Fresh => None,
            Resume::Latest => store.load_latest().with_context(|| format!("reading checkpoints in {}", store.url()))?,
            Resume::From(id) => Some(store.load(id).with_context(|| format!("checkpoint {id} in {}", store.url()))?),
        };
        let Some(loaded) = loaded else {
            // Start after every existing checkpoint, so a fresh run never mixes with them.
            let newest = store.list().map(|l| l.first().map(|m| m.id + 1)).unwrap_or(None).unwrap_or(0);
            if let Some(dir) = file_dir {
                let r = recover_dir(dir, None, &[]).with_context(|| format!("cleaning {}", dir.display()))?;
                if r.removed > 0 {
                    tracing::info!(dir = %dir.display(), removed = r.removed, "removed uncommitted result parts");
                }
            }
            tracing::info!(epoch = newest, "starting without a checkpoint");
            return Ok(RestorePlan { checkpoint: None, epoch: newest, watermark: 0, parts: Vec::new() });
        };
        let m = &loaded.manifest;
        let mut parts = Vec::with_capacity(m.parts.len());
        for info in &m.parts {
            let bytes = loaded
                .part(&info.name)
                .with_context(|| format!("checkpoint {}: part {} is missing", m.id, info.name))?;
            let part: WorkerPart =
                decode_part(bytes).with_context(|| format!("checkpoint {}: part {}", m.id, info.name))?;
            if part.fingerprint != fingerprint {
                anyhow::bail!(
                    "checkpoint {} was taken with other indicators or windows ({}); this config has {}. \
                     Start with --fresh to ignore checkpoints, or restore the old config",
                    m.id,
                    part.fingerprint,
                    fingerprint
                );
            }
            parts.push(part);
        }
        let watermark = parts.iter().map(|p| p.watermark).min().unwrap_or(0);
        let watermark = if watermark == crate::sources::driver::DONE { 0 } else { watermark };
        if let Some(dir) = file_dir {
            let files: Vec<_> = parts.iter().map(|p| p.files.clone()).collect();
            let r = recover_dir(dir, Some(m.id), &files).with_context(|| format!("restoring {}", dir.display()))?;
            tracing::info!(
                dir = %dir.display(),
                restored = r.restored,
                removed = r.removed,
                elsewhere = r.missing,
                "result files rolled back to the checkpoint"
            );
        }
        tracing::info!(
            checkpoint = m.id,
            shape = %format!("{}x{}", m.processes, m.workers),
            symbols = m.symbols,
            watermark = %m.watermark_ms.map_or("-".to_string(), tickflow_operators::time::format_rfc3339),
            "resuming from checkpoint"
        );
        Ok(RestorePlan { checkpoint: Some(m.id), epoch: m.id + 1, watermark, parts })
    }

    /// The Kafka partitions' positions of every part (any shape).
    pub fn kafka_positions(&self) -> Vec<KafkaPartitionState> {
        self.parts
            .iter()
            .flat_map(|p| match &p.source {
                SourceState::Kafka(v) => v.clone(),
                _ => Vec::new(),
            })
            .collect()
    }

    /// The source state of worker `worker` when the checkpoint had `peers` workers, else
    /// `None` (sources that cannot be re-partitioned need the same shape).
    pub fn same_shape_source(&self, worker: usize, peers: usize) -> Option<&SourceState> {
        self.parts.iter().find(|p| p.worker == worker && p.peers == peers).map(|p| &p.source)
    }

    /// Whether the checkpoint was taken with `peers` workers.
    pub fn shape_is(&self, peers: usize) -> bool {
        self.parts.iter().all(|p| p.peers == peers)
    }
}

/// Whether worker `index` of `peers` owns `symbol` (the same routing as the dataflow's
/// exchange: timely sends a record with hash `h` to worker `h % peers`).
pub fn owns(symbol: &Symbol, index: usize, peers: usize) -> bool {
    (symbol.route_hash() % peers as u64) as usize == index
}
