//! The manifest: what makes a checkpoint exist.
//!
//! A checkpoint is its parts plus `manifest-{id:020}.json`, written last and create-only.
//! The manifest lists every part with its size and checksum, so a reader can tell a complete
//! checkpoint from one a crash interrupted. It is JSON so that an operator can read it.

use serde::{Deserialize, Serialize};

/// One checkpoint's table of contents.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Manifest {
    /// The format version ([`FORMAT_VERSION`](super::FORMAT_VERSION)) of the manifest and its parts.
    pub version: u32,
    /// The checkpoint id: the epoch it closes.
    pub id: u64,
    /// When it was written, wall clock, ms since the Unix epoch.
    pub created_ms: i64,
    /// The number of processes of the cluster that took it.
    pub processes: usize,
    /// Workers per process of the cluster that took it.
    pub workers: usize,
    /// Every part; all must exist with the listed size and checksum.
    pub parts: Vec<PartInfo>,
    /// The event-time watermark of the cut, ms since the Unix epoch.
    pub watermark_ms: Option<i64>,
    /// Symbols with state.
    pub symbols: u64,
    /// Source positions, human-readable, for `tickflow checkpoints show`.
    pub sources: Vec<SourcePosition>,
    /// Taken on SIGTERM (stop-with-savepoint).
    pub final_savepoint: bool,
}

/// One part as the manifest lists it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct PartInfo {
    /// The part's name inside its checkpoint (`ckpt-{id:020}/{name}`).
    pub name: String,
    /// Its size in bytes, header included.
    pub bytes: u64,
    /// The checksum in its header (xxh3-64 of the payload).
    pub checksum: u64,
}

/// Where one source was when the checkpoint was cut.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct SourcePosition {
    /// Which source: `kafka:bars/3`, `file:data.ndjson`, `generator:w0`.
    pub source: String,
    /// Where in it: `offset 1234`, `byte 98765`, `round 17`.
    pub position: String,
    /// That source's watermark, ms since the Unix epoch.
    pub watermark_ms: Option<i64>,
}

impl Manifest {
    /// The sum of the parts' sizes.
    pub fn total_bytes(&self) -> u64 {
        self.parts.iter().map(|p| p.bytes).sum()
    }

    /// The same checkpoint, whenever it was written: equal in every field but `created_ms`.
    /// A second writer of the same manifest (a retry, a deterministic re-run) is harmless.
    pub fn same_checkpoint(&self, other: &Manifest) -> bool {
        let mut other = other.clone();
        other.created_ms = self.created_ms;
        *self == other
    }
}

/// The object key of a checkpoint's manifest.
pub fn manifest_key(id: u64) -> String {
    format!("manifest-{id:020}.json")
}

/// The object key prefix (a "directory") of a checkpoint's parts.
pub fn parts_prefix(id: u64) -> String {
    format!("ckpt-{id:020}")
}

/// The object key of part `name` of checkpoint `id`.
pub fn part_key(id: u64, name: &str) -> String {
    format!("ckpt-{id:020}/{name}")
}

/// The id in a manifest's file name (`manifest-00000000000000000042.json` → 42).
pub fn parse_manifest_name(name: &str) -> Option<u64> {
    parse_id(name.strip_prefix("manifest-")?.strip_suffix(".json")?)
}

/// The id in a parts directory's name (`ckpt-00000000000000000042` → 42).
pub fn parse_parts_prefix(name: &str) -> Option<u64> {
    parse_id(name.strip_prefix("ckpt-")?)
}

fn parse_id(digits: &str) -> Option<u64> {
    if digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()) { digits.parse().ok() } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_by_id_and_parse_back() {
        assert_eq!(manifest_key(42), "manifest-00000000000000000042.json");
        assert_eq!(part_key(42, "w0"), "ckpt-00000000000000000042/w0");
        assert!(manifest_key(9) < manifest_key(10));
        assert_eq!(parse_manifest_name(&manifest_key(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_parts_prefix(&parts_prefix(7)), Some(7));
        assert_eq!(parse_manifest_name("manifest-42.json"), None);
        assert_eq!(parse_manifest_name("manifest-00000000000000000042.json#1"), None);
        assert_eq!(parse_parts_prefix("ckpt-0000000000000000004x"), None);
    }
}
