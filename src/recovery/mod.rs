//! Crash-exact recovery: epochs, what each worker checkpoints, and how a run resumes.
//!
//! # The protocol
//! Timely time is `(epoch, watermark)`, ordered lexicographically. Every `[checkpoint]
//! interval` (aligned to the wall clock, so all processes cut together) each source *cuts*:
//! it records its position, moves its data capability to `(k + 1, w)` and stops reading,
//! while a second "hold" capability stays at `(k, w)` so that the event-time watermark of
//! epoch `k` cannot pass any source's watermark `w`. Once every source has cut (a probe on
//! the sources), the holds move to `k + 1` too. Once the outputs' durable probe passes
//! `(k + 1, 0)`, everything read before the cut has been processed and is durable (files
//! fsynced, QuestDB acknowledged): each worker then snapshots its operators' state, its
//! source position and its in-progress file parts into one part (`w{index}.bin`), resumes
//! reading at epoch `k + 1`, and reports the part to worker 0 through the dataflow. When all
//! parts of `k` are durable, worker 0 writes manifest `k` (the publication point); once the
//! manifest is durable every worker commits (renames) the file parts rolled at `k`.
//!
//! A restore loads the newest complete checkpoint, re-partitions the per-symbol state by the
//! current routing (any shape), re-assigns Kafka partitions with their offsets and
//! watermarks, truncates in-progress files to their checkpointed length and deletes what was
//! written after the cut, and starts at epoch `k + 1`. Operators are deterministic per symbol,
//! so the rows written after the cut are rewritten identically.
//!
//! - [`part`]: the per-worker part and the source positions.
//! - [`plan`]: choosing and loading a checkpoint, the per-worker restore data.
//! - [`coordinator`]: the worker's side: snapshot, part write, commit; the manifest writer.
pub mod coordinator;
pub mod part;
pub mod plan;

pub use coordinator::{Coordinator, RunControl, manifest_writer};
pub use part::{KafkaPartitionState, PartReport, SourceState, WorkerPart};
pub use plan::{RestorePlan, Resume};
