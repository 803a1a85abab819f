//! `tickflow checkpoints list|show`: what is in a checkpoint store.
//!
//! The store's URL is `--url`, else `[checkpoint] url` of the config file (`--config`, or
//! `cluster.toml` when it exists), else `run/checkpoints`. A relative directory is relative
//! to the current directory. Failures (an unreadable store, an unknown id) are a
//! [`CheckpointsError`], which the binary prints on one line and exits with code 2.

use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::manifest::Manifest;
use super::store::{CheckpointStore, StoreError};

/// The store URL when neither `--url` nor the config names one.
pub const DEFAULT_URL: &str = "run/checkpoints";

/// `tickflow checkpoints`.
#[derive(Debug, clap::Args)]
pub struct CheckpointsArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: CheckpointsCommand,
}

/// `tickflow checkpoints` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum CheckpointsCommand {
    /// One line per complete checkpoint, newest first.
    List {
        /// Where the store is.
        #[command(flatten)]
        at: StoreArgs,
    },
    /// One checkpoint's manifest: every field, every part, every source position.
    Show {
        /// The checkpoint id (as `list` prints it).
        id: u64,
        /// Print the manifest as JSON instead.
        #[arg(long)]
        json: bool,
        /// Where the store is.
        #[command(flatten)]
        at: StoreArgs,
    },
}

/// Where the store is.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// The cluster config; its `[checkpoint] url` is the store (default: `cluster.toml` if it
    /// exists).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The store: a directory, file:///dir, s3://bucket/prefix. Overrides the config.
    #[arg(long)]
    pub url: Option<String>,
}

/// Why `tickflow checkpoints` failed; one line, exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CheckpointsError(pub String);

impl From<StoreError> for CheckpointsError {
    fn from(e: StoreError) -> Self {
        CheckpointsError(e.to_string())
    }
}

/// Runs `tickflow checkpoints`, printing to `out`.
pub fn run_checkpoints(args: CheckpointsArgs, out: &mut impl Write) -> Result<(), CheckpointsError> {
    let io = |e: std::io::Error| CheckpointsError(format!("writing the output: {e}"));
    match args.command {
        CheckpointsCommand::List { at } => {
            let store = CheckpointStore::open_existing(&resolve_url(&at)?)?;
            let all = store.list()?;
            if all.is_empty() {
                eprintln!("no complete checkpoints in {}", store.url());
            }
            out.write_all(format_list(&all).as_bytes()).map_err(io)
        }
        CheckpointsCommand::Show { id, json, at } => {
            let store = CheckpointStore::open_existing(&resolve_url(&at)?)?;
            let (manifest, status) = store.inspect(id)?;
            let text = if json {
                if let Err(reason) = &status {
                    eprintln!("warning: checkpoint {id} is not complete: {reason}");
                }
                // Plain structs of numbers and strings always serialize.
                serde_json::to_string_pretty(&manifest).expect("a Manifest serializes") + "\n"
            } else {
                format_show(&manifest, &status, store.url())
            };
            out.write_all(text.as_bytes()).map_err(io)
        }
    }
}

/// The store URL: `--url`, the config's `[checkpoint] url`, or [`DEFAULT_URL`].
pub fn resolve_url(at: &StoreArgs) -> Result<String, CheckpointsError> {
    if let Some(url) = &at.url {
        return Ok(url.clone());
    }
    let config = match &at.config {
        Some(path) => path.clone(),
        None if Path::new("cluster.toml").exists() => PathBuf::from("cluster.toml"),
        None => return Ok(DEFAULT_URL.to_string()),
    };
    let text = std::fs::read_to_string(&config)
        .map_err(|e| CheckpointsError(format!("cannot read {}: {e}", config.display())))?;
    url_from_config(&text).map_err(|e| CheckpointsError(format!("{}: {e}", config.display())))
}

/// `checkpoint.url` of a config file's text, or [`DEFAULT_URL`]. Read as plain TOML so that
/// only this key matters here.
pub fn url_from_config(text: &str) -> Result<String, String> {
    let table: toml::Table = toml::from_str(text).map_err(|e| e.message().to_string())?;
    match table.get("checkpoint").and_then(|c| c.get("url")) {
        None => Ok(DEFAULT_URL.to_string()),
        Some(toml::Value::String(url)) => Ok(url.clone()),
        Some(other) => Err(format!("checkpoint.url: {other} is not a string; expected e.g. \"{DEFAULT_URL}\"")),
    }
}

/// An instant in ms since the Unix epoch as RFC 3339 UTC with milliseconds.
pub fn rfc3339_ms(ms: i64) -> String {
    // humantime formats years 1970..=9999 only.
    if (0..=253_402_300_799_999).contains(&ms) {
        humantime::format_rfc3339_millis(SystemTime::UNIX_EPOCH + Duration::from_millis(ms as u64)).to_string()
    } else {
        format!("{ms}ms")
    }
}

fn watermark(ms: Option<i64>) -> String {
    ms.map_or_else(|| "-".to_string(), rfc3339_ms)
}

/// The table `list` prints: a header, then one line per checkpoint.
pub fn format_list(all: &[Manifest]) -> String {
    let mut s = format!(
        "{:<20}  {:<24}  {:<7}  {:<24}  {:>8}  {:>12}\n",
        "id", "created (UTC)", "shape", "watermark (UTC)", "symbols", "bytes"
    );
    for m in all {
        let shape = format!("{}x{}", m.processes, m.workers);
        let mark = if m.final_savepoint { "  savepoint" } else { "" };
        let _ = writeln!(
            s,
            "{:<20}  {:<24}  {shape:<7}  {:<24}  {:>8}  {:>12}{mark}",
            m.id,
            rfc3339_ms(m.created_ms),
            watermark(m.watermark_ms),
            m.symbols,
            m.total_bytes()
        );
    }
    s
}

/// What `show` prints.
pub fn format_show(m: &Manifest, status: &Result<(), String>, url: &str) -> String {
    let mut s = String::new();
    let status = match status {
        Ok(()) => "complete".to_string(),
        Err(reason) => format!("NOT COMPLETE: {reason}"),
    };
    let _ = writeln!(s, "checkpoint {}: {status}", m.id);
    let _ = writeln!(s, "  store:           {url}");
    let _ = writeln!(s, "  format version:  {}", m.version);
    let _ = writeln!(s, "  created:         {} ({} ms)", rfc3339_ms(m.created_ms), m.created_ms);
    let _ = writeln!(s, "  shape:           {} process(es) x {} worker(s)", m.processes, m.workers);
    let wm = m.watermark_ms.map_or_else(|| "-".to_string(), |w| format!("{} ({w} ms)", rfc3339_ms(w)));
    let _ = writeln!(s, "  watermark:       {wm}");
    let _ = writeln!(s, "  symbols:         {}", m.symbols);
    let _ = writeln!(s, "  final savepoint: {}", if m.final_savepoint { "yes (taken on SIGTERM)" } else { "no" });
    let _ = writeln!(s, "  parts:           {} ({} bytes)", m.parts.len(), m.total_bytes());
    let width = m.parts.iter().map(|p| p.name.len()).max().unwrap_or(0);
    for p in &m.parts {
        let _ = writeln!(s, "    {:<width$}  {:>12} bytes  checksum {:#018x}", p.name, p.bytes, p.checksum);
    }
    let _ = writeln!(s, "  sources:         {}", m.sources.len());
    let width = m.sources.iter().map(|p| p.source.len()).max().unwrap_or(0);
    for p in &m.sources {
        let _ = writeln!(s, "    {:<width$}  {}  watermark {}", p.source, p.position, watermark(p.watermark_ms));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::{PartInfo, SourcePosition};

    fn manifest() -> Manifest {
        Manifest {
            version: 1,
            id: 42,
            created_ms: 1_764_620_000_123,
            processes: 2,
            workers: 4,
            parts: vec![
                PartInfo { name: "p0-w0".into(), bytes: 100, checksum: 0xab },
                PartInfo { name: "p1-w0".into(), bytes: 28, checksum: 1 },
            ],
            watermark_ms: Some(1_764_619_990_000),
            symbols: 7,
            sources: vec![SourcePosition {
                source: "kafka:bars/3".into(),
                position: "offset 1234".into(),
                watermark_ms: None,
            }],
            final_savepoint: true,
        }
    }

    #[test]
    fn list_line_has_every_column() {
        let text = format_list(&[manifest()]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[1],
            "42                    2025-12-01T20:13:20.123Z  2x4      2025-12-01T20:13:10.000Z         7           128  savepoint"
        );
    }

    #[test]
    fn show_prints_every_field() {
        let text = format_show(&manifest(), &Err("part \"p1-w0\" is missing".into()), "/x");
        assert_eq!(
            text,
            "checkpoint 42: NOT COMPLETE: part \"p1-w0\" is missing
  store:           /x
  format version:  1
  created:         2025-12-01T20:13:20.123Z (1764620000123 ms)
  shape:           2 process(es) x 4 worker(s)
  watermark:       2025-12-01T20:13:10.000Z (1764619990000 ms)
  symbols:         7
  final savepoint: yes (taken on SIGTERM)
  parts:           2 (128 bytes)
    p0-w0           100 bytes  checksum 0x00000000000000ab
    p1-w0            28 bytes  checksum 0x0000000000000001
  sources:         1
    kafka:bars/3  offset 1234  watermark -
"
        );
    }

    #[test]
    fn url_comes_from_the_checkpoint_section_or_the_default() {
        assert_eq!(url_from_config("[checkpoint]\nurl = \"s3://b/p\"\n").unwrap(), "s3://b/p");
        assert_eq!(url_from_config("[cluster]\nworkers = 2\n").unwrap(), DEFAULT_URL);
        assert_eq!(url_from_config("[checkpoint]\nretain = 3\n").unwrap(), DEFAULT_URL);
        assert!(url_from_config("[checkpoint]\nurl = 3\n").unwrap_err().contains("checkpoint.url"));
        assert!(url_from_config("[checkpoint\n").is_err());
    }

    #[test]
    fn times_outside_humantimes_range_print_as_numbers() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(-5), "-5ms");
    }
}
