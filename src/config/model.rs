//! The configuration structs, one per `cluster.toml` section. Every field is documented here
//! and in the shipped `cluster.toml`.

use serde::Deserialize;

/// The whole file.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Config {
    /// Processes and workers.
    #[serde(default)]
    pub cluster: ClusterConfig,
    /// The status HTTP server.
    #[serde(default)]
    pub status: StatusConfig,
    /// Where bars come from.
    #[serde(default)]
    pub source: SourceConfig,
    /// Event time: watermarks, lateness, accepted range.
    #[serde(default)]
    pub time: TimeConfig,
    /// Per-bar (and per-candle) indicators.
    #[serde(default)]
    pub indicators: IndicatorsConfig,
    /// Signal rules.
    #[serde(default)]
    pub signals: SignalsConfig,
    /// Event-time windows.
    #[serde(default)]
    pub windows: WindowsConfig,
    /// Where results go.
    #[serde(default)]
    pub sinks: SinksConfig,
    /// `[output]`: how results are written, whatever the sink.
    #[serde(default)]
    pub output: OutputConfig,
    /// `[checkpoint]`: consistent checkpoints for crash-exact recovery.
    #[serde(default)]
    pub checkpoint: CheckpointConfig,
    /// `[alerts]`: run-time alert rules and notifications (present = enabled).
    #[serde(default)]
    pub alerts: Option<crate::alerts::AlertsConfig>,
    /// `[serve]`: the query API and dashboard on the status port (on by default).
    #[serde(default)]
    pub serve: crate::serve::ServeConfig,
    /// The ingest gateway (`tickflow gateway --config`); the cluster ignores it.
    #[serde(default)]
    pub gateway: Option<crate::gateway::GatewayConfig>,
}

/// `[cluster]`
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ClusterConfig {
    /// Worker threads per process.
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// `host:port` of every process's timely endpoint, in process order; the same list in
    /// every process. One entry = a single process (no network).
    #[serde(default = "default_processes")]
    pub processes: Vec<String>,
}

fn default_workers() -> usize {
    2
}
fn default_processes() -> Vec<String> {
    vec!["127.0.0.1:2101".into()]
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig { workers: default_workers(), processes: default_processes() }
    }
}

/// `[status]`
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct StatusConfig {
    /// Address of process 0's status server; process N listens on port + N.
    #[serde(default = "default_status_listen")]
    pub listen: String,
    /// Bearer token for `/status`, `/metrics`, `/alerts/stats` and `GET /rules` (the
    /// `alerts.token` is accepted there too); none = those are open. `/health` and `/ready`
    /// stay open. `TICKFLOW_STATUS_READ_TOKEN` sets it from the environment.
    #[serde(default)]
    pub read_token: Option<String>,
    /// Refuse to start unless a read token is set (for deployments that publish the port,
    /// e.g. `docker/cluster.toml`).
    #[serde(default)]
    pub require_read_token: bool,
    /// `[status.limits]`: timeouts, connection cap, buffered-body budget.
    #[serde(default)]
    pub limits: crate::http::HttpLimits,
    /// `[status.tls]`: serve HTTPS with this certificate and key (PEM); absent = plain HTTP.
    #[serde(default)]
    pub tls: Option<crate::http::TlsFiles>,
}

fn default_status_listen() -> String {
    "127.0.0.1:9100".into()
}

impl Default for StatusConfig {
    fn default() -> Self {
        StatusConfig {
            listen: default_status_listen(),
            read_token: None,
            require_read_token: false,
            limits: crate::http::HttpLimits::default(),
            tls: None,
        }
    }
}

/// `[source]`
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SourceConfig {
    /// `generator` (built-in synthetic market), `file` (replay files) or `kafka`.
    #[serde(default = "default_source_kind")]
    pub kind: String,
    /// `[source.generator]`
    #[serde(default)]
    pub generator: GeneratorSection,
    /// `[source.file]`
    #[serde(default)]
    pub file: FileSection,
    /// `[source.kafka]`
    #[serde(default)]
    pub kafka: crate::sources::kafka::KafkaSourceConfig,
    /// Accept bars whose prices are zero or negative (spreads, some futures); by default
    /// every price must be > 0 and other bars are dead-lettered.
    #[serde(default)]
    pub allow_non_positive_prices: bool,
}

fn default_source_kind() -> String {
    "generator".into()
}

impl Default for SourceConfig {
    fn default() -> Self {
        SourceConfig {
            kind: default_source_kind(),
            generator: GeneratorSection::default(),
            file: FileSection::default(),
            kafka: Default::default(),
            allow_non_positive_prices: false,
        }
    }
}

/// `[source.generator]`
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct GeneratorSection {
    /// How many symbols (`SYM0000` ...).
    #[serde(default = "default_gen_symbols")]
    pub symbols: usize,
    /// Bars per second for the whole cluster; 0 = as fast as possible.
    #[serde(default = "default_gen_rate")]
    pub rate: u64,
    /// Seed: the same seed gives the same market.
    #[serde(default = "default_gen_seed")]
    pub seed: u64,
    /// Event-time step between two bars of one symbol, e.g. "1s", "1m"; "auto" (default) makes
    /// event time advance with the wall clock (symbols / rate seconds per round).
    #[serde(default = "default_gen_interval")]
    pub interval: String,
    /// Stop after this many bars in total; 0 = run until stopped.
    #[serde(default)]
    pub count: u64,
}

fn default_gen_symbols() -> usize {
    20
}
fn default_gen_rate() -> u64 {
    2000
}
fn default_gen_seed() -> u64 {
    42
}
fn default_gen_interval() -> String {
    "auto".into()
}

impl Default for GeneratorSection {
    fn default() -> Self {
        GeneratorSection {
            symbols: default_gen_symbols(),
            rate: default_gen_rate(),
            seed: default_gen_seed(),
            interval: default_gen_interval(),
            count: 0,
        }
    }
}

/// `[source.file]`
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct FileSection {
    /// Files to replay (NDJSON `.json`/`.ndjson`/`.jsonl`, or CSV `.csv`).
    #[serde(default)]
    pub paths: Vec<String>,
    /// Symbol of CSV files without a symbol column.
    #[serde(default)]
    pub symbol: Option<String>,
    /// Replay rate in bars per second for the whole cluster; 0 = as fast as possible.
    #[serde(default)]
    pub rate: u64,
}

/// `[output]`
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct OutputConfig {
    /// The unit of `ts` in every text result (files and stdout; QuestDB stores a timestamp
    /// column): "input" (default: the unit the input's timestamps are written in, read from
    /// the first timestamps of the input files whether or not their rows are valid bars;
    /// milliseconds for Kafka and the generator), "s" (Unix seconds, fractional when the bar
    /// has milliseconds), "ms" (Unix milliseconds) or "rfc3339" (`2023-11-14T22:13:20.000Z`).
    #[serde(default = "default_ts_unit")]
    pub ts_unit: String,
}

fn default_ts_unit() -> String {
    "input".into()
}

impl Default for OutputConfig {
    fn default() -> Self {
        OutputConfig { ts_unit: default_ts_unit() }
    }
}

/// `[time]`
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct TimeConfig {
    /// Bounded out-of-orderness: the watermark trails the newest event time seen by this much.
    /// Bars up to this much out of order are processed in event-time order.
    #[serde(default = "default_zero")]
    pub watermark_delay: String,
    /// How long after a window closed a late bar may still correct it.
    #[serde(default = "default_lateness")]
    pub allowed_lateness: String,
    /// Earliest accepted event time (RFC 3339 date or date-time). Default 1600-01-01: any real
    /// market history; set e.g. "1990-01-01" to dead-letter seconds misread as milliseconds.
    #[serde(default = "default_min_ts")]
    pub min_timestamp: String,
    /// Latest accepted event time (exclusive).
    #[serde(default = "default_max_ts")]
    pub max_timestamp: String,
}

fn default_zero() -> String {
    "0s".into()
}
fn default_lateness() -> String {
    "0s".into()
}
fn default_min_ts() -> String {
    "1600-01-01".into()
}
fn default_max_ts() -> String {
    "2100-01-01".into()
}

impl Default for TimeConfig {
    fn default() -> Self {
        TimeConfig {
            watermark_delay: default_zero(),
            allowed_lateness: default_lateness(),
            min_timestamp: default_min_ts(),
            max_timestamp: default_max_ts(),
        }
    }
}

/// `[indicators]`
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct IndicatorsConfig {
    /// Indicators in text form: "sma:20", "ema:10", "rsi:14", "macd:12,26,9", "bb:20,2",
    /// "atr:14", "obv", "vwap", "vwap:20", "donchian:20", "roc:10".
    #[serde(default = "default_indicators")]
    pub list: Vec<String>,
}

fn default_indicators() -> Vec<String> {
    tickflow_operators::IndicatorSpec::standard().iter().map(ToString::to_string).collect()
}

impl Default for IndicatorsConfig {
    fn default() -> Self {
        IndicatorsConfig { list: default_indicators() }
    }
}

/// `[signals]`
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SignalsConfig {
    /// How rule opinions combine: "first-match", "majority" or "unanimous".
    #[serde(default = "default_combine")]
    pub combine: String,
    /// The rules, in order.
    #[serde(default = "default_rule_list")]
    pub rules: Vec<RuleConfig>,
}

fn default_combine() -> String {
    "first-match".into()
}

fn default_rule_list() -> Vec<RuleConfig> {
    vec![
        RuleConfig {
            kind: "rsi".into(),
            period: Some(14),
            buy_below: Some(30.0),
            sell_above: Some(70.0),
            ..RuleConfig::default()
        },
        RuleConfig { kind: "ma-cross".into(), fast: Some(5), slow: Some(20), ..RuleConfig::default() },
        RuleConfig {
            kind: "macd-cross".into(),
            fast: Some(12),
            slow: Some(26),
            signal: Some(9),
            ..RuleConfig::default()
        },
    ]
}

impl Default for SignalsConfig {
    fn default() -> Self {
        SignalsConfig { combine: default_combine(), rules: default_rule_list() }
    }
}

/// One `[[signals.rules]]` entry.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RuleConfig {
    /// "rsi", "ma-cross" (SMA(fast) vs EMA(slow)) or "macd-cross".
    pub kind: String,
    /// RSI period (rsi).
    pub period: Option<usize>,
    /// BUY below this RSI (rsi, default 30).
    pub buy_below: Option<f64>,
    /// SELL above this RSI (rsi, default 70).
    pub sell_above: Option<f64>,
    /// Fast period (ma-cross, macd-cross).
    pub fast: Option<usize>,
    /// Slow period (ma-cross, macd-cross).
    pub slow: Option<usize>,
    /// Signal period (macd-cross).
    pub signal: Option<usize>,
}

/// `[windows]`
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct WindowsConfig {
    /// Tumbling window lengths, e.g. ["1m", "5m", "1h"]; empty = no candles.
    #[serde(default = "default_timeframes")]
    pub timeframes: Vec<String>,
}

fn default_timeframes() -> Vec<String> {
    vec!["1m".into(), "5m".into(), "1h".into()]
}

impl Default for WindowsConfig {
    fn default() -> Self {
        WindowsConfig { timeframes: default_timeframes() }
    }
}

/// `[sinks]`
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SinksConfig {
    /// `[sinks.file]`: results to files.
    pub file: Option<FileSinkSection>,
    /// `[sinks.stdout]`: every result as tagged NDJSON on standard output.
    pub stdout: Option<StdoutSinkSection>,
    /// `[sinks.questdb]`: results to QuestDB over ILP.
    pub questdb: Option<crate::sinks::questdb::QuestDbConfig>,
}

/// `[checkpoint]`: where and how often the cluster checkpoints its state (see the README's
/// "Recovery" section).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct CheckpointConfig {
    /// Take checkpoints (`tickflow run` only; `replay` never does).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Where: a local directory (relative to the working directory), `file:///abs/dir`, or
    /// `s3://bucket/prefix` (credentials and endpoint from the `AWS_*` environment).
    #[serde(default = "default_checkpoint_url")]
    pub url: String,
    /// How often, wall clock, aligned to multiples of it (so every process cuts together).
    #[serde(default = "default_checkpoint_interval")]
    pub interval: String,
    /// How many complete checkpoints to keep.
    #[serde(default = "default_checkpoint_retain")]
    pub retain: usize,
}

fn default_true() -> bool {
    true
}
fn default_checkpoint_url() -> String {
    "run/checkpoints".into()
}
fn default_checkpoint_interval() -> String {
    "10s".into()
}
fn default_checkpoint_retain() -> usize {
    3
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        CheckpointConfig {
            enabled: true,
            url: default_checkpoint_url(),
            interval: default_checkpoint_interval(),
            retain: default_checkpoint_retain(),
        }
    }
}

/// `[sinks.stdout]`: NDJSON lines `{"table":"bars"|"candles"|"signal_changes"|"late"|
/// "dead_letters", ...}` on standard output (logs go to standard error).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct StdoutSinkSection {}

/// `[sinks.file]`
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct FileSinkSection {
    /// Directory for result files (one set per worker: `bars-w<N>.csv`, `candles-w<N>.csv`, ...).
    /// Required by `tickflow run`; `tickflow replay` writes to its `--output` instead.
    #[serde(default)]
    pub dir: Option<String>,
    /// The columns of `bars` rows, in order (default: every column, `symbol, ts, open, high,
    /// low, close, volume`, the indicator columns, `signal`).
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    /// "csv" or "ndjson".
    #[serde(default = "default_file_format")]
    pub format: String,
    /// With checkpoints, results go to hidden in-progress parts that are committed (renamed
    /// to `bars-w<N>-<epoch>.csv`, ...) at the first checkpoint after a part is this old...
    #[serde(default = "default_roll_interval")]
    pub roll_interval: String,
    /// ...or this large (bytes).
    #[serde(default = "default_roll_bytes")]
    pub roll_bytes: u64,
}

fn default_roll_interval() -> String {
    "1m".into()
}
fn default_roll_bytes() -> u64 {
    128 << 20
}

fn default_file_format() -> String {
    "csv".into()
}
