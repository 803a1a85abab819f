//! `[questdb]` in `cluster.toml`: where and how the sink writes.
//!
//! Parse with serde, then call [`QuestDbConfig::validate`] to get every problem at once.
//!
//! ```
//! use tickflow::sinks::questdb::QuestDbConfig;
//! let c: QuestDbConfig = toml::from_str("addr = \"db:9000\"\nmax-delay = \"250ms\"").unwrap();
//! assert_eq!(c.max_delay.get().as_millis(), 250);
//! assert!(c.validate().is_empty());
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How lines reach QuestDB.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Transport {
    /// ILP over HTTP (`POST /write`): every request is acknowledged or rejected with a reason,
    /// so rejected rows can be isolated. The default.
    #[default]
    Http,
    /// ILP over TCP (port 9009): no replies; a bad line makes the server close the connection
    /// and cannot be attributed to a row. Use only when HTTP is not available.
    Tcp,
}

/// When a lane sends what it has buffered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Batching {
    /// Send as soon as no more rows are waiting: an idle sink sends every batch at once (low
    /// latency), a busy one collects what arrives while its previous request is in flight
    /// (large requests under load). `max-rows`/`max-bytes` still split requests. The default.
    #[default]
    Adaptive,
    /// Wait for `max-rows` or `max-bytes`, or until `max-delay` after the first buffered row:
    /// fewest requests (bulk loads, a QuestDB that should see few large transactions), at the
    /// cost of up to `max-delay` of added latency.
    Fill,
}

pub use crate::config::HumanDuration;

/// The QuestDB sink's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct QuestDbConfig {
    /// `host:port` of QuestDB: the HTTP port (9000) for `transport = "http"`, the ILP TCP
    /// port (9009) for `transport = "tcp"`.
    #[serde(default = "default_addr")]
    pub addr: String,
    /// `http` (default; acknowledged, bad rows isolated) or `tcp` (fire and forget).
    #[serde(default)]
    pub transport: Transport,
    /// `host:port` of QuestDB's HTTP port for the table DDL when `transport = "tcp"`
    /// (with `http` the DDL goes to `addr`).
    #[serde(default)]
    pub rest_addr: Option<String>,
    /// Prepended to every table name, e.g. `"tf_"` gives `tf_bars`. Default: none.
    #[serde(default)]
    pub table_prefix: String,
    /// Create the tables (`CREATE TABLE IF NOT EXISTS ... DEDUP UPSERT KEYS`) at start.
    #[serde(default = "default_create_tables")]
    pub create_tables: bool,
    /// Flush once this many rows are buffered.
    #[serde(default = "default_max_rows")]
    pub max_rows: usize,
    /// Flush once this many bytes are buffered (one HTTP request stays below it unless a
    /// single input batch is larger).
    #[serde(default = "default_max_bytes")]
    pub max_bytes: usize,
    /// Flush rows at the latest this long after the first of them arrived.
    #[serde(default = "default_max_delay")]
    pub max_delay: HumanDuration,
    /// `adaptive` (default: send when nothing more is waiting) or `fill` (wait for a full
    /// request or `max-delay`); see [`Batching`].
    #[serde(default)]
    pub batching: Batching,
    /// Connections (one writer thread each) per process. A worker's rows always go through
    /// the same connection, in order, so a row key's versions reach QuestDB in the order they
    /// were made. Default: one per worker of the process.
    #[serde(default)]
    pub connections: Option<usize>,
    /// Rows the sink may hold (queued plus being written) before `send` blocks: the
    /// backpressure bound. At least `max-rows`.
    #[serde(default = "default_queue_rows")]
    pub queue_rows: usize,
    /// Give up (the sink fails, nothing further is acknowledged) when a write has kept
    /// failing transiently for this long.
    #[serde(default = "default_retry_max_elapsed")]
    pub retry_max_elapsed: HumanDuration,
    /// First retry delay; doubled after each failure.
    #[serde(default = "default_retry_initial")]
    pub retry_initial: HumanDuration,
    /// Longest delay between retries.
    #[serde(default = "default_retry_max")]
    pub retry_max: HumanDuration,
    /// Connect and response timeout of one HTTP request (and connect/write timeout for TCP).
    #[serde(default = "default_request_timeout")]
    pub request_timeout: HumanDuration,
    /// Bearer token sent as `Authorization: Bearer <token>` (QuestDB Enterprise). HTTP only.
    #[serde(default)]
    pub token: Option<String>,
    /// `user:password` sent as HTTP basic auth. HTTP only; exclusive with `token`.
    #[serde(default)]
    pub basic_auth: Option<String>,
}

fn default_addr() -> String {
    "127.0.0.1:9000".into()
}
fn default_create_tables() -> bool {
    true
}
fn default_max_rows() -> usize {
    10_000
}
fn default_max_bytes() -> usize {
    4 * 1024 * 1024
}
fn default_max_delay() -> HumanDuration {
    HumanDuration(Duration::from_millis(250))
}
fn default_queue_rows() -> usize {
    100_000
}
fn default_retry_max_elapsed() -> HumanDuration {
    HumanDuration(Duration::from_secs(300))
}
fn default_retry_initial() -> HumanDuration {
    HumanDuration(Duration::from_millis(100))
}
fn default_retry_max() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}
fn default_request_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}

impl Default for QuestDbConfig {
    fn default() -> Self {
        QuestDbConfig {
            addr: default_addr(),
            transport: Transport::Http,
            rest_addr: None,
            table_prefix: String::new(),
            create_tables: default_create_tables(),
            max_rows: default_max_rows(),
            max_bytes: default_max_bytes(),
            max_delay: default_max_delay(),
            batching: Batching::default(),
            connections: None,
            queue_rows: default_queue_rows(),
            retry_max_elapsed: default_retry_max_elapsed(),
            retry_initial: default_retry_initial(),
            retry_max: default_retry_max(),
            request_timeout: default_request_timeout(),
            token: None,
            basic_auth: None,
        }
    }
}

/// The most `connections` a process may open.
pub const MAX_CONNECTIONS: usize = 64;

impl QuestDbConfig {
    /// The connections a process with `workers` workers opens: `connections`, or one per
    /// worker.
    pub fn connections_for(&self, workers: usize) -> usize {
        self.connections.unwrap_or(workers).clamp(1, MAX_CONNECTIONS)
    }

    /// Every problem with the settings, each naming the key, the bad value and a good example.
    /// Empty when the config is usable.
    pub fn validate(&self) -> Vec<String> {
        let mut errs = Vec::new();
        let default_port = if self.transport == Transport::Tcp { 9009 } else { 9000 };
        if let Some(e) = check_addr("questdb.addr", &self.addr, default_port) {
            errs.push(e);
        }
        if let Some(rest) = &self.rest_addr
            && let Some(e) = check_addr("questdb.rest-addr", rest, 9000)
        {
            errs.push(e);
        }
        if self.transport == Transport::Tcp && self.create_tables && self.rest_addr.is_none() {
            errs.push(
                "questdb.rest-addr: missing while transport = \"tcp\" and create-tables = true (DDL needs the HTTP \
                 port); expected e.g. \"127.0.0.1:9000\", or set create-tables = false"
                    .into(),
            );
        }
        if !self.table_prefix.is_empty() && super::encode::Name::table(&format!("{}bars", self.table_prefix)).is_err() {
            errs.push(format!(
                "questdb.table-prefix: {:?} is not usable in a table name (only [A-Za-z0-9_], not starting with a \
                 digit); expected e.g. \"tf_\"",
                self.table_prefix
            ));
        }
        let positive = |errs: &mut Vec<String>, key: &str, v: usize, example: &str| {
            if v == 0 {
                errs.push(format!("questdb.{key}: 0 must be at least 1; expected e.g. {example}"));
            }
        };
        positive(&mut errs, "max-rows", self.max_rows, "10000");
        positive(&mut errs, "max-bytes", self.max_bytes, "4194304");
        positive(&mut errs, "queue-rows", self.queue_rows, "100000");
        if let Some(n) = self.connections
            && !(1..=MAX_CONNECTIONS).contains(&n)
        {
            errs.push(format!(
                "questdb.connections: {n} is outside 1..={MAX_CONNECTIONS}; expected e.g. 2 (or leave it out: one per \
                 worker)"
            ));
        }
        if self.queue_rows < self.max_rows {
            errs.push(format!(
                "questdb.queue-rows: {} is below max-rows ({}), so a full batch could never form; expected e.g. {}",
                self.queue_rows,
                self.max_rows,
                self.max_rows * 10
            ));
        }
        let nonzero = |errs: &mut Vec<String>, key: &str, v: HumanDuration, example: &str| {
            if v.0.is_zero() {
                errs.push(format!("questdb.{key}: \"{v}\" must be above zero; expected e.g. \"{example}\""));
            }
        };
        nonzero(&mut errs, "max-delay", self.max_delay, "250ms");
        nonzero(&mut errs, "retry-initial", self.retry_initial, "100ms");
        nonzero(&mut errs, "retry-max", self.retry_max, "10s");
        nonzero(&mut errs, "request-timeout", self.request_timeout, "30s");
        if self.retry_max < self.retry_initial {
            errs.push(format!(
                "questdb.retry-max: \"{}\" is below retry-initial (\"{}\"); expected e.g. \"10s\"",
                self.retry_max, self.retry_initial
            ));
        }
        if self.token.is_some() && self.basic_auth.is_some() {
            errs.push("questdb.token: set together with basic-auth; expected only one of them".into());
        }
        if let Some(t) = &self.token
            && (t.is_empty() || t.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            errs.push("questdb.token: (hidden) is empty or contains whitespace; expected e.g. \"qt1abc...\"".into());
        }
        if let Some(b) = &self.basic_auth
            && !b.contains(':')
        {
            errs.push("questdb.basic-auth: (hidden) has no ':'; expected e.g. \"admin:quest\"".into());
        }
        if self.transport == Transport::Tcp && (self.token.is_some() || self.basic_auth.is_some()) {
            errs.push("questdb.transport: \"tcp\" cannot authenticate with token/basic-auth; expected \"http\"".into());
        }
        errs
    }
}

/// Checks a `host:port` address; `None` when fine.
fn check_addr(key: &str, addr: &str, port: u16) -> Option<String> {
    let example = format!("expected e.g. \"127.0.0.1:{port}\"");
    if addr.contains("://") || addr.contains('/') {
        return Some(format!("{key}: {addr:?} must be host:port without scheme or path; {example}"));
    }
    let Some((host, p)) = addr.rsplit_once(':') else {
        return Some(if addr.bytes().all(|c| c.is_ascii_digit()) && !addr.is_empty() {
            format!("{key}: {addr:?} has no host; {example}")
        } else {
            format!("{key}: {addr:?} has no port; {example}")
        });
    };
    if host.is_empty() {
        return Some(format!("{key}: {addr:?} has no host; {example}"));
    }
    if host.chars().any(|c| c.is_whitespace()) {
        return Some(format!("{key}: {addr:?} has whitespace in the host; {example}"));
    }
    match p.parse::<u16>() {
        Ok(0) | Err(_) => Some(format!("{key}: {addr:?} has an invalid port {p:?}; {example}")),
        Ok(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_parse_from_empty() {
        let c: QuestDbConfig = toml::from_str("").unwrap();
        assert_eq!(c, QuestDbConfig::default());
        assert!(c.validate().is_empty(), "{:?}", c.validate());
    }

    #[test]
    fn every_problem_is_reported_with_key_value_and_example() {
        let c: QuestDbConfig = toml::from_str(
            "addr = \"9009\"\nmax-rows = 0\nqueue-rows = 0\nmax-delay = \"0s\"\ntable-prefix = \"a b\"\ntoken = \"x\"\nbasic-auth = \"nocolon\"",
        )
        .unwrap();
        let errs = c.validate();
        assert!(errs.contains(&"questdb.addr: \"9009\" has no host; expected e.g. \"127.0.0.1:9000\"".to_string()));
        let c0: QuestDbConfig = toml::from_str("connections = 0").unwrap();
        assert_eq!(
            c0.validate(),
            ["questdb.connections: 0 is outside 1..=64; expected e.g. 2 (or leave it out: one per worker)"]
        );
        for key in ["max-rows", "queue-rows", "max-delay", "table-prefix", "token", "basic-auth"] {
            assert!(errs.iter().any(|e| e.starts_with(&format!("questdb.{key}:"))), "{key} missing in {errs:#?}");
        }
        assert!(errs.iter().all(|e| e.contains("expected")), "{errs:#?}");
    }

    #[test]
    fn unknown_keys_and_bad_durations_are_rejected() {
        assert!(toml::from_str::<QuestDbConfig>("adr = \"x:1\"").is_err());
        let e = toml::from_str::<QuestDbConfig>("batching = \"eager\"").unwrap_err().to_string();
        assert!(e.contains("adaptive") && e.contains("fill"), "{e}");
        let e = toml::from_str::<QuestDbConfig>("max-delay = \"soon\"").unwrap_err().to_string();
        assert!(e.contains("\"soon\" is not a duration"), "{e}");
    }
}
