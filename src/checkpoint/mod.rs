//! Checkpoint storage for crash-exact recovery: the part format, the manifest that
//! publishes a checkpoint, the store (local directory, S3, memory) and `tickflow checkpoints`.
//!
//! A checkpoint `id` (the epoch it closes) is a set of parts, each written by whichever
//! worker owns that state, then one manifest written last that lists every part with its
//! size and checksum. Without its manifest a checkpoint does not exist; with a manifest whose
//! parts do not all read back intact it is skipped on restore, and the one before it is used.
//! The dataflow side (epochs, snapshots, when to write) lives elsewhere and calls
//! [`CheckpointStore`].
//!
//! - [`format`]: one part's bytes: header (magic, version, length, xxh3) and bincode payload.
//! - [`manifest`]: the manifest and its object keys.
//! - [`store`]: [`CheckpointStore`]: put (blocking or as a [`PutTicket`]), list, load, retain.
//! - [`cli`]: `tickflow checkpoints list|show`.
pub mod cli;
pub mod format;
pub mod manifest;
pub mod store;

pub use format::{
    FORMAT_VERSION, FormatError, HEADER_LEN, MAGIC, PartHeader, decode_part, encode_part, read_header, try_encode_part,
    verify_part,
};
pub use manifest::{Manifest, PartInfo, SourcePosition};
pub use store::{CheckpointStore, Loaded, PutTicket, RetainReport, StoreError};
