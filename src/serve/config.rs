//! `[serve]`: the query API and dashboard on the status port, and the live state behind them.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use tickflow_operators::rows::timeframe_label;
use tickflow_operators::time::Millis;

/// `[serve]` as written in `cluster.toml`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ServeConfig {
    /// Keep live state and serve `/api/v1/*` and the dashboard (`GET /`).
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// Rows kept per symbol, by series: `bar` (enriched bars) or a configured timeframe
    /// (`"1m"`, ...). Unlisted timeframes keep [`DEFAULT_CANDLE_RETENTION`].
    #[serde(default = "default_retention")]
    pub retention: BTreeMap<String, usize>,
    /// Signal changes kept per symbol (the dashboard's BUY/SELL markers).
    #[serde(default = "default_signal_changes")]
    pub signal_changes: usize,
    /// Symbols kept; bars of further symbols are not retained (counted).
    #[serde(default = "default_max_symbols")]
    pub max_symbols: usize,
    /// Largest `limit` of `/api/v1/bars` and `/api/v1/candles`, and of symbols per
    /// `POST /api/v1/summary`.
    #[serde(default = "default_max_limit")]
    pub max_limit: usize,
    /// Dashboard live streams (`/api/v1/stream`) open at once; more get 503.
    #[serde(default = "default_stream_clients")]
    pub stream_clients: usize,
    /// How often a live stream pushes an update.
    #[serde(default = "default_push_interval")]
    pub push_interval: String,
    /// Time limit of a request forwarded to the process that owns a symbol.
    #[serde(default = "default_peer_timeout")]
    pub peer_timeout: String,
    /// Status address of every process, in process order, when it does not follow the
    /// default rule (host of `cluster.processes[N]`, port `status.listen` + N), e.g. when
    /// every pod listens on the same port.
    #[serde(default)]
    pub peers: Option<Vec<String>>,
    /// After a finite input ended, keep answering queries this long (Ctrl-C ends it early).
    #[serde(default = "default_linger")]
    pub linger: String,
}

/// Candles kept per symbol for a timeframe not listed in `serve.retention`.
pub const DEFAULT_CANDLE_RETENTION: usize = 200;
/// Enriched bars kept per symbol when `serve.retention` does not list `bar`.
pub const DEFAULT_BAR_RETENTION: usize = 500;
/// The largest retention of one series.
pub const MAX_RETENTION: usize = 1_000_000;

fn default_enabled() -> bool {
    true
}
fn default_retention() -> BTreeMap<String, usize> {
    BTreeMap::from([("bar".to_string(), DEFAULT_BAR_RETENTION)])
}
fn default_signal_changes() -> usize {
    200
}
fn default_max_symbols() -> usize {
    2000
}
fn default_max_limit() -> usize {
    5000
}
fn default_stream_clients() -> usize {
    16
}
fn default_push_interval() -> String {
    "1s".into()
}
fn default_peer_timeout() -> String {
    "2s".into()
}
fn default_linger() -> String {
    "0s".into()
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            enabled: default_enabled(),
            retention: default_retention(),
            signal_changes: default_signal_changes(),
            max_symbols: default_max_symbols(),
            max_limit: default_max_limit(),
            stream_clients: default_stream_clients(),
            push_interval: default_push_interval(),
            peer_timeout: default_peer_timeout(),
            peers: None,
            linger: default_linger(),
        }
    }
}

/// `[serve]`, checked: what the store, the API and the streams run with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServeSpec {
    /// Bars kept per symbol.
    pub bar_retention: usize,
    /// Candles kept per symbol, per configured timeframe (same order as `timeframes`).
    pub candle_retention: Vec<usize>,
    /// The configured timeframes, ms.
    pub timeframes: Vec<Millis>,
    /// Signal changes kept per symbol.
    pub signal_changes: usize,
    /// Symbols kept.
    pub max_symbols: usize,
    /// Largest `limit`.
    pub max_limit: usize,
    /// Live streams at once.
    pub stream_clients: usize,
    /// Live stream cadence.
    pub push_interval: Duration,
    /// Forwarded request time limit.
    pub peer_timeout: Duration,
    /// Explicit status addresses of the processes.
    pub peers: Option<Vec<String>>,
    /// Serve on after a finite input ended.
    pub linger: Duration,
}

fn duration(errs: &mut Vec<String>, key: &str, v: &str, example: &str) -> Duration {
    humantime::parse_duration(v.trim()).unwrap_or_else(|e| {
        errs.push(format!("serve.{key}: {v:?} is not a duration ({e}); expected e.g. {example:?}"));
        Duration::from_secs(1)
    })
}

impl ServeConfig {
    /// Checks every key against the configured `timeframes` (ms) and the number of
    /// processes; `None` when serving is disabled. Problems are appended to `errs`.
    pub fn build(&self, timeframes: &[Millis], processes: usize, errs: &mut Vec<String>) -> Option<ServeSpec> {
        let labels: Vec<String> = timeframes.iter().map(|&t| timeframe_label(t)).collect();
        for (key, &n) in &self.retention {
            if key != "bar" && !labels.contains(key) {
                errs.push(format!(
                    "serve.retention.{key}: not \"bar\" nor a timeframe of windows.timeframes ({}); expected e.g. bar = 1000",
                    labels.join(", ")
                ));
            }
            if n == 0 || n > MAX_RETENTION {
                errs.push(format!("serve.retention.{key}: {n} is outside 1..={MAX_RETENTION}; expected e.g. 500"));
            }
        }
        let keep = |key: &str, default: usize| self.retention.get(key).copied().unwrap_or(default).max(1);
        for (key, v, lo, example) in [
            ("max-symbols", self.max_symbols, 1, 2000),
            ("max-limit", self.max_limit, 1, 5000),
            ("stream-clients", self.stream_clients, 1, 16),
        ] {
            if v < lo {
                errs.push(format!("serve.{key}: {v} must be at least {lo}; expected e.g. {example}"));
            }
        }
        let push_interval = duration(errs, "push-interval", &self.push_interval, "1s");
        if push_interval < Duration::from_millis(100) {
            errs.push(format!("serve.push-interval: {:?} is below 100ms; expected e.g. \"1s\"", self.push_interval));
        }
        let peer_timeout = duration(errs, "peer-timeout", &self.peer_timeout, "2s");
        if peer_timeout.is_zero() {
            errs.push("serve.peer-timeout: 0s would fail every forwarded request; expected e.g. \"2s\"".into());
        }
        let linger = duration(errs, "linger", &self.linger, "30s");
        if let Some(p) = &self.peers {
            if p.len() != processes {
                errs.push(format!(
                    "serve.peers: {} addresses for {processes} processes; expected one status address per process, \
                     e.g. [\"10.0.0.1:9100\", \"10.0.0.2:9100\"]",
                    p.len()
                ));
            }
            for (i, a) in p.iter().enumerate() {
                if !a.rsplit_once(':').is_some_and(|(h, port)| !h.is_empty() && port.parse::<u16>().is_ok()) {
                    errs.push(format!("serve.peers[{i}]: {a:?} is not host:port; expected e.g. \"10.0.0.2:9100\""));
                }
            }
        }
        self.enabled.then(|| ServeSpec {
            bar_retention: keep("bar", DEFAULT_BAR_RETENTION),
            candle_retention: labels.iter().map(|l| keep(l, DEFAULT_CANDLE_RETENTION)).collect(),
            timeframes: timeframes.to_vec(),
            signal_changes: self.signal_changes,
            max_symbols: self.max_symbols.max(1),
            max_limit: self.max_limit.max(1),
            stream_clients: self.stream_clients.max(1),
            push_interval,
            peer_timeout,
            peers: self.peers.clone(),
            linger,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(text: &str) -> (Option<ServeSpec>, Vec<String>) {
        let cfg: ServeConfig = toml::from_str(text).unwrap();
        let mut errs = Vec::new();
        let spec = cfg.build(&[60_000, 300_000], 2, &mut errs);
        (spec, errs)
    }

    #[test]
    fn defaults_keep_bars_and_every_timeframe() {
        let (spec, errs) = build("");
        assert!(errs.is_empty(), "{errs:?}");
        let spec = spec.unwrap();
        assert_eq!(spec.bar_retention, DEFAULT_BAR_RETENTION);
        assert_eq!(spec.candle_retention, vec![DEFAULT_CANDLE_RETENTION; 2]);
        assert_eq!(spec.push_interval, Duration::from_secs(1));
    }

    #[test]
    fn bad_values_are_all_reported() {
        let (_, errs) =
            build("retention = { bar = 0, \"15m\" = 10 }\nmax-limit = 0\npush-interval = \"soon\"\npeers = [\"x\"]");
        assert_eq!(
            errs,
            vec![
                "serve.retention.15m: not \"bar\" nor a timeframe of windows.timeframes (1m, 5m); expected e.g. bar = 1000",
                "serve.retention.bar: 0 is outside 1..=1000000; expected e.g. 500",
                "serve.max-limit: 0 must be at least 1; expected e.g. 5000",
                "serve.push-interval: \"soon\" is not a duration (expected number at 0); expected e.g. \"1s\"",
                "serve.peers: 1 addresses for 2 processes; expected one status address per process, e.g. [\"10.0.0.1:9100\", \"10.0.0.2:9100\"]",
                "serve.peers[0]: \"x\" is not host:port; expected e.g. \"10.0.0.2:9100\"",
            ]
        );
    }
}
