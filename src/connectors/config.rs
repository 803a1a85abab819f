//! A connector's configuration: a `[nobitex]` or `[alphavantage]` section of a TOML file
//! (e.g. `connectors.toml`) and/or command-line flags (flags win). Parse →
//! [`ConnectorConfig::validate`] (every problem at once) → [`ConnectorConfig::build`].
//!
//! Keys whose good value depends on the exchange (`base-url`, `symbols`, `resolution`,
//! `poll-interval`, `request-interval`) are optional and default per exchange.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use tickflow_operators::Symbol;

use super::error::ConnectorError;
use super::http::HTTPS_SUPPORTED;
use super::{alphavantage, nobitex};
use crate::kafka::target::validate_kafka_target;
use crate::retry::{Jitter, Policy};

/// The env var holding the Alpha Vantage API key (preferred over the file).
pub const API_KEY_ENV: &str = "ALPHAVANTAGE_API_KEY";

/// Which exchange API a connector polls.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Exchange {
    /// Nobitex's public UDF history (`/market/udf/history`).
    #[default]
    Nobitex,
    /// Alpha Vantage intraday (`TIME_SERIES_INTRADAY`, `CRYPTO_INTRADAY`).
    Alphavantage,
}

impl Exchange {
    /// The name used in config sections, logs, metrics and dead letters.
    pub fn name(self) -> &'static str {
        match self {
            Exchange::Nobitex => "nobitex",
            Exchange::Alphavantage => "alphavantage",
        }
    }
}

impl fmt::Display for Exchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `[nobitex]` / `[alphavantage]`: what to poll, how often, and where bars go.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ConnectorConfig {
    /// The exchange (the section name; not a key).
    #[serde(skip)]
    pub exchange: Exchange,
    /// The API's base URL, `http://host[:port][/prefix]`. Defaults: `https://apiv2.nobitex.ir`,
    /// `https://www.alphavantage.co` (need TLS: see [`HTTPS_SUPPORTED`]).
    #[serde(default)]
    pub base_url: Option<String>,
    /// Symbols to poll. Nobitex: market symbols (`BTCIRT`); default BTCIRT, ETHIRT, USDTIRT,
    /// ETCIRT, SHIBIRT. Alpha Vantage: equities (`IBM`) or digital currencies as
    /// `CODE/MARKET` (`ETH/USD`, produced as symbol `ETHUSD`); default `IBM`.
    #[serde(default)]
    pub symbols: Option<Vec<String>>,
    /// Bar size. Nobitex: minutes `1 5 15 30 60 180 240 360 720` or `D` (default `1`).
    /// Alpha Vantage: `1min 5min 15min 30min 60min` (default `5min`).
    #[serde(default)]
    pub resolution: Option<String>,
    /// How often a caught-up symbol is polled (default `30s` Nobitex, `5m` Alpha Vantage).
    #[serde(default)]
    pub poll_interval: Option<String>,
    /// Least time between two requests of this connector, over all symbols (default `1s`
    /// Nobitex, `15s` Alpha Vantage: 5 requests/minute).
    #[serde(default)]
    pub request_interval: Option<String>,
    /// How far back the first poll of each symbol reaches (e.g. `"6h"`, `"2d"`).
    #[serde(default = "default_backfill")]
    pub backfill: String,
    /// Most bars asked for in one Nobitex request; longer ranges are paged in consecutive
    /// slices (Alpha Vantage returns 100 bars, or everything with `outputsize=full`). Keep it
    /// at or below the exchange's own cap on bars per answer: a page wholly in the closed past
    /// is taken as complete.
    #[serde(default = "default_max_bars_per_request")]
    pub max_bars_per_request: usize,
    /// How long after its end a bar still counts as forming (the exchange may still be
    /// aggregating its last trades), e.g. `"2s"`.
    #[serde(default = "default_settle")]
    pub settle: String,
    /// First backoff step after a rate limit, 5xx or connection error (e.g. `"1s"`).
    #[serde(default = "default_backoff_initial")]
    pub backoff_initial: String,
    /// Largest backoff step; also how long a symbol the exchange rejected waits (e.g. `"5m"`).
    #[serde(default = "default_backoff_max")]
    pub backoff_max: String,
    /// Timeout of one HTTP request, body included (e.g. `"30s"`).
    #[serde(default = "default_http_timeout")]
    pub http_timeout: String,
    /// Alpha Vantage API key. Prefer the env var `ALPHAVANTAGE_API_KEY`, which wins.
    #[serde(default)]
    pub api_key: Option<String>,
    /// Kafka bootstrap servers, comma-separated `host:port`.
    #[serde(default = "default_brokers")]
    pub brokers: String,
    /// Topic valid bars are produced to (keyed by symbol).
    #[serde(default = "default_topic")]
    pub topic: String,
    /// Topic invalid rows are produced to, with the reason.
    #[serde(default = "default_dead_letter_topic")]
    pub dead_letter_topic: String,
}

fn default_backfill() -> String {
    "6h".into()
}
fn default_max_bars_per_request() -> usize {
    500
}
fn default_settle() -> String {
    "2s".into()
}
fn default_backoff_initial() -> String {
    "1s".into()
}
fn default_backoff_max() -> String {
    "5m".into()
}
fn default_http_timeout() -> String {
    "30s".into()
}
fn default_brokers() -> String {
    "127.0.0.1:9092".into()
}
fn default_topic() -> String {
    "bars".into()
}
fn default_dead_letter_topic() -> String {
    "bars.dlq".into()
}

impl ConnectorConfig {
    /// The defaults for `exchange`.
    pub fn new(exchange: Exchange) -> ConnectorConfig {
        ConnectorConfig {
            exchange,
            base_url: None,
            symbols: None,
            resolution: None,
            poll_interval: None,
            request_interval: None,
            backfill: default_backfill(),
            max_bars_per_request: default_max_bars_per_request(),
            settle: default_settle(),
            backoff_initial: default_backoff_initial(),
            backoff_max: default_backoff_max(),
            http_timeout: default_http_timeout(),
            api_key: None,
            brokers: default_brokers(),
            topic: default_topic(),
            dead_letter_topic: default_dead_letter_topic(),
        }
    }
}

/// The Alpha Vantage API key: never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// The key itself, for the request URL.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

/// One configured symbol: the bar symbol produced and how the exchange names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SymbolSpec {
    /// The symbol of the bars produced (the Kafka key).
    pub symbol: Symbol,
    /// The exchange's symbol (`BTCIRT`, `IBM`, `ETH`).
    pub remote: String,
    /// Alpha Vantage digital currencies: the market (`USD`).
    pub market: Option<String>,
}

/// A validated [`ConnectorConfig`] with parsed durations and symbols.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuiltConnector {
    /// The exchange.
    pub exchange: Exchange,
    /// Base URL without a trailing `/`.
    pub base_url: String,
    /// Symbols, in config order.
    pub symbols: Vec<SymbolSpec>,
    /// The resolution as sent to the exchange (`"1"`, `"D"`, `"5min"`).
    pub resolution: String,
    /// The bar length in ms.
    pub period_ms: i64,
    /// Poll interval of a caught-up symbol.
    pub poll_interval: Duration,
    /// Least time between two requests.
    pub request_interval: Duration,
    /// Back-fill window.
    pub backfill: Duration,
    /// Most bars per Nobitex request.
    pub max_bars_per_request: usize,
    /// Settle time after a bar's end.
    pub settle: Duration,
    /// First backoff step.
    pub backoff_initial: Duration,
    /// Largest backoff step.
    pub backoff_max: Duration,
    /// HTTP request timeout.
    pub http_timeout: Duration,
    /// Alpha Vantage API key.
    pub api_key: Option<ApiKey>,
    /// Kafka bootstrap servers.
    pub brokers: String,
    /// Bars topic.
    pub topic: String,
    /// Dead-letter topic.
    pub dead_letter_topic: String,
}

impl BuiltConnector {
    /// Failures back off from `backoff-initial` doubling to `backoff-max`, with equal jitter
    /// so connectors restarted together do not retry in lockstep.
    pub fn backoff_policy(&self) -> Policy {
        Policy::exponential(self.backoff_initial, self.backoff_max).with_jitter(Jitter::Equal)
    }
}

impl ConnectorConfig {
    /// Every problem, one message each naming the key, the bad value and a good example.
    /// Empty when the config is usable.
    pub fn validate(&self) -> Vec<String> {
        let mut errs = Vec::new();
        self.check(&mut errs);
        errs
    }

    /// Validates and converts; the error lists every problem.
    pub fn build(&self) -> Result<BuiltConnector, ConnectorError> {
        let mut errs = Vec::new();
        let built = self.check(&mut errs);
        if errs.is_empty() { Ok(built) } else { Err(ConnectorError::Config(errs)) }
    }

    fn check(&self, errs: &mut Vec<String>) -> BuiltConnector {
        let ex = self.exchange;
        // `None` (reported) when unreadable, so range checks below only see readable values.
        let mut duration = |key: &str, v: &str, example: &str| match humantime::parse_duration(v.trim()) {
            Ok(d) => Some(d),
            Err(e) => {
                errs.push(format!("{ex}.{key}: {v:?} is not a duration ({e}); expected e.g. {example:?}"));
                None
            }
        };
        let (def_url, def_res, def_poll, def_req) = match ex {
            Exchange::Nobitex => ("https://apiv2.nobitex.ir", "1", "30s", "1s"),
            Exchange::Alphavantage => ("https://www.alphavantage.co", "5min", "5m", "15s"),
        };
        let poll_v = self.poll_interval.as_deref().unwrap_or(def_poll);
        let poll_interval = duration("poll-interval", poll_v, def_poll);
        let req_v = self.request_interval.as_deref().unwrap_or(def_req);
        let request_interval = duration("request-interval", req_v, def_req);
        let backfill = duration("backfill", &self.backfill, "6h");
        let settle = duration("settle", &self.settle, "2s");
        let backoff_initial = duration("backoff-initial", &self.backoff_initial, "1s");
        let backoff_max = duration("backoff-max", &self.backoff_max, "5m");
        let http_timeout = duration("http-timeout", &self.http_timeout, "30s");

        let base_url = self.base_url.as_deref().unwrap_or(def_url).trim().trim_end_matches('/').to_string();
        let example = "http://127.0.0.1:8081";
        match base_url.split_once("://") {
            Some(("https", _)) if !HTTPS_SUPPORTED => errs.push(format!(
                "{ex}.base-url: {base_url:?} needs TLS, which this build's HTTP client lacks; run a TLS-terminating \
                 proxy to it and give the proxy's address, e.g. {example:?}"
            )),
            Some(("http" | "https", rest)) if !rest.is_empty() && !rest.starts_with('/') && !rest.contains('?') => {}
            _ => errs.push(format!(
                "{ex}.base-url: {base_url:?} is not an http://host[:port][/prefix] URL; expected e.g. {example:?}"
            )),
        }

        let resolution = self.resolution.clone().unwrap_or_else(|| def_res.to_string());
        let period = match ex {
            Exchange::Nobitex => nobitex::period_ms(&resolution),
            Exchange::Alphavantage => alphavantage::period_ms(&resolution),
        };
        let period_ms = period.unwrap_or_else(|| {
            let allowed = match ex {
                Exchange::Nobitex => nobitex::RESOLUTIONS.join(" "),
                Exchange::Alphavantage => alphavantage::INTERVALS.join(" "),
            };
            errs.push(format!("{ex}.resolution: {resolution:?} is not one of {allowed}; expected e.g. {def_res:?}"));
            60_000
        });

        let symbols = self.symbols.clone().unwrap_or_else(|| match ex {
            Exchange::Nobitex => nobitex::SEED_SYMBOLS.iter().map(|s| s.to_string()).collect(),
            Exchange::Alphavantage => vec!["IBM".to_string()],
        });
        if symbols.is_empty() {
            let e = match ex {
                Exchange::Nobitex => "[\"BTCIRT\", \"ETHIRT\"]",
                Exchange::Alphavantage => "[\"IBM\", \"ETH/USD\"]",
            };
            errs.push(format!("{ex}.symbols: [] is empty; expected e.g. {e}"));
        }
        let mut specs: Vec<SymbolSpec> = Vec::new();
        for (i, s) in symbols.iter().enumerate() {
            let spec = match ex {
                Exchange::Nobitex => nobitex::symbol_spec(s),
                Exchange::Alphavantage => alphavantage::symbol_spec(s),
            };
            match spec {
                Ok(spec) if specs.iter().any(|o| o.symbol == spec.symbol) => {
                    errs.push(format!("{ex}.symbols[{i}]: {s:?} is listed twice; expected each symbol once"));
                }
                Ok(spec) => specs.push(spec),
                Err(why) => errs.push(format!("{ex}.symbols[{i}]: {s:?} {why}")),
            }
        }

        if poll_interval.is_some_and(|d| d < Duration::from_secs(1)) {
            errs.push(format!("{ex}.poll-interval: {poll_v:?} is below 1s; expected e.g. {def_poll:?}"));
        }
        if backfill.is_some_and(|d| d > Duration::from_secs(366 * 86_400)) {
            errs.push(format!("{ex}.backfill: {:?} is more than a year; expected e.g. \"6h\"", self.backfill));
        }
        if !(1..=10_000).contains(&self.max_bars_per_request) {
            errs.push(format!(
                "{ex}.max-bars-per-request: {} is outside 1 ..= 10000; expected e.g. 500",
                self.max_bars_per_request
            ));
        }
        if backoff_initial.is_some_and(|d| d < Duration::from_millis(10)) {
            errs.push(format!("{ex}.backoff-initial: {:?} is below 10ms; expected e.g. \"1s\"", self.backoff_initial));
        }
        if matches!((backoff_initial, backoff_max), (Some(i), Some(m)) if m < i) {
            errs.push(format!(
                "{ex}.backoff-max: {:?} is below backoff-initial {:?}; expected e.g. \"5m\"",
                self.backoff_max, self.backoff_initial
            ));
        }
        if http_timeout.is_some_and(|d| d < Duration::from_millis(100)) {
            errs.push(format!("{ex}.http-timeout: {:?} is below 100ms; expected e.g. \"30s\"", self.http_timeout));
        }
        let api_key = self.api_key.as_deref().map(str::trim).filter(|k| !k.is_empty()).map(|k| ApiKey(k.into()));
        if ex == Exchange::Alphavantage && api_key.is_none() {
            errs.push(format!(
                "{ex}.api-key: missing; set the env var {API_KEY_ENV} (or api-key in the file), e.g. \"demo\" for the \
                 documentation's example symbols"
            ));
        }
        errs.extend(validate_kafka_target(&ex.to_string(), &self.brokers, &self.topic, &self.dead_letter_topic));
        BuiltConnector {
            exchange: ex,
            base_url,
            symbols: specs,
            resolution,
            period_ms,
            poll_interval: poll_interval.unwrap_or_default(),
            request_interval: request_interval.unwrap_or_default(),
            backfill: backfill.unwrap_or_default(),
            max_bars_per_request: self.max_bars_per_request,
            settle: settle.unwrap_or_default(),
            backoff_initial: backoff_initial.unwrap_or_default(),
            backoff_max: backoff_max.unwrap_or_default(),
            http_timeout: http_timeout.unwrap_or_default(),
            api_key,
            brokers: self.brokers.trim().to_string(),
            topic: self.topic.clone(),
            dead_letter_topic: self.dead_letter_topic.clone(),
        }
    }

    /// Reads the `[nobitex]` or `[alphavantage]` section of a connectors TOML file; a
    /// missing section gives the defaults. Unknown sections and keys are errors.
    pub fn from_toml(text: &str, exchange: Exchange) -> Result<ConnectorConfig, ConnectorError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct File {
            nobitex: Option<ConnectorConfig>,
            alphavantage: Option<ConnectorConfig>,
        }
        let file: File = toml::from_str(text).map_err(|e| ConnectorError::Config(vec![e.to_string()]))?;
        let section = match exchange {
            Exchange::Nobitex => file.nobitex,
            Exchange::Alphavantage => file.alphavantage,
        };
        let mut cfg = section.unwrap_or_else(|| ConnectorConfig::new(exchange));
        cfg.exchange = exchange;
        Ok(cfg)
    }
}

/// `tickflow connect nobitex|alphavantage`: poll an exchange and produce its bars to Kafka.
/// Flags override the exchange's section of `--config`.
#[derive(Clone, Debug, clap::Args)]
pub struct ConnectorArgs {
    /// The exchange to poll.
    #[arg(value_enum)]
    pub exchange: Exchange,
    /// A TOML file with a `[nobitex]` and/or `[alphavantage]` section (e.g. connectors.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The API's base URL, e.g. https://apiv2.nobitex.ir (the default) or a local test server.
    #[arg(long)]
    pub base_url: Option<String>,
    /// A symbol to poll (repeatable; replaces the configured list), e.g. BTCIRT or ETH/USD.
    #[arg(long = "symbol")]
    pub symbols: Vec<String>,
    /// Bar size: Nobitex 1 5 15 30 60 180 240 360 720 D; Alpha Vantage 1min .. 60min.
    #[arg(long)]
    pub resolution: Option<String>,
    /// Poll interval of a caught-up symbol, e.g. 30s.
    #[arg(long)]
    pub poll_interval: Option<String>,
    /// Back-fill window of the first poll, e.g. 6h.
    #[arg(long)]
    pub backfill: Option<String>,
    /// Kafka bootstrap servers, comma-separated.
    #[arg(long)]
    pub brokers: Option<String>,
    /// Topic for valid bars.
    #[arg(long)]
    pub topic: Option<String>,
    /// Topic for invalid rows.
    #[arg(long)]
    pub dead_letter_topic: Option<String>,
    /// Print bars as canonical NDJSON on stdout instead of producing to Kafka.
    #[arg(long)]
    pub stdout: bool,
}

impl ConnectorArgs {
    /// The file's section (or the defaults), the flags applied on top, and the API key
    /// from [`API_KEY_ENV`] when set.
    pub fn to_config(&self) -> Result<ConnectorConfig, ConnectorError> {
        let mut cfg = match &self.config {
            None => ConnectorConfig::new(self.exchange),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| ConnectorError::Config(vec![format!("{}: {e}", path.display())]))?;
                ConnectorConfig::from_toml(&text, self.exchange).map_err(|e| match e {
                    ConnectorError::Config(v) => {
                        ConnectorError::Config(v.into_iter().map(|m| format!("{}: {m}", path.display())).collect())
                    }
                    other => other,
                })?
            }
        };
        let set = |dst: &mut Option<String>, v: &Option<String>| {
            if v.is_some() {
                dst.clone_from(v);
            }
        };
        set(&mut cfg.base_url, &self.base_url);
        set(&mut cfg.resolution, &self.resolution);
        set(&mut cfg.poll_interval, &self.poll_interval);
        if !self.symbols.is_empty() {
            cfg.symbols = Some(self.symbols.clone());
        }
        for (dst, v) in [
            (&mut cfg.backfill, &self.backfill),
            (&mut cfg.brokers, &self.brokers),
            (&mut cfg.topic, &self.topic),
            (&mut cfg.dead_letter_topic, &self.dead_letter_topic),
        ] {
            if let Some(v) = v {
                dst.clone_from(v);
            }
        }
        if let Ok(key) = std::env::var(API_KEY_ENV) {
            if !key.trim().is_empty() {
                cfg.api_key = Some(key);
            }
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(exchange: Exchange) -> ConnectorConfig {
        let mut c = ConnectorConfig::new(exchange);
        c.base_url = Some("http://127.0.0.1:8081".into());
        c.api_key = Some("demo".into());
        c
    }

    #[test]
    fn defaults_with_a_local_base_url_are_valid() {
        assert_eq!(local(Exchange::Nobitex).validate(), Vec::<String>::new());
        assert_eq!(local(Exchange::Alphavantage).validate(), Vec::<String>::new());
        let built = local(Exchange::Nobitex).build().unwrap();
        let names: Vec<&str> = built.symbols.iter().map(|s| s.symbol.as_str()).collect();
        assert_eq!(names, ["BTCIRT", "ETHIRT", "USDTIRT", "ETCIRT", "SHIBIRT"]);
        assert_eq!((built.period_ms, built.poll_interval), (60_000, Duration::from_secs(30)));
    }

    #[test]
    fn the_https_defaults_are_valid_with_tls_built_in() {
        const { assert!(HTTPS_SUPPORTED) };
        assert_eq!(ConnectorConfig::new(Exchange::Nobitex).validate(), Vec::<String>::new());
    }

    #[test]
    fn every_problem_is_reported_with_key_value_and_example() {
        let cfg = ConnectorConfig::from_toml(
            "[alphavantage]\nbase-url = \"127.0.0.1:8081\"\nsymbols = [\"IBM\", \"ETH/\", \"IBM\"]\n\
             resolution = \"2min\"\npoll-interval = \"often\"\nmax-bars-per-request = 0\n",
            Exchange::Alphavantage,
        )
        .unwrap();
        let errs = cfg.validate();
        assert_eq!(errs.len(), 7, "{errs:#?}");
        assert!(errs[0].starts_with("alphavantage.poll-interval: \"often\" is not a duration ("), "{}", errs[0]);
        assert!(errs[0].ends_with("; expected e.g. \"5m\""), "{}", errs[0]);
        assert!(errs[1].starts_with("alphavantage.base-url: \"127.0.0.1:8081\" is not an http://"), "{}", errs[1]);
        assert_eq!(
            errs[2],
            "alphavantage.resolution: \"2min\" is not one of 1min 5min 15min 30min 60min; expected e.g. \"5min\""
        );
        assert!(errs[3].starts_with("alphavantage.symbols[1]: \"ETH/\" "), "{}", errs[3]);
        assert_eq!(errs[4], "alphavantage.symbols[2]: \"IBM\" is listed twice; expected each symbol once");
        assert!(errs[5].starts_with("alphavantage.max-bars-per-request: 0 is outside"), "{}", errs[5]);
        assert!(
            errs[6].starts_with("alphavantage.api-key: missing; set the env var ALPHAVANTAGE_API_KEY"),
            "{}",
            errs[6]
        );
    }

    #[test]
    fn unknown_keys_and_sections_are_rejected() {
        let err = ConnectorConfig::from_toml("[nobitex]\nsymbol = [\"BTCIRT\"]\n", Exchange::Nobitex).unwrap_err();
        assert!(err.to_string().contains("unknown field `symbol`"), "{err}");
        let err = ConnectorConfig::from_toml("[nobitx]\n", Exchange::Nobitex).unwrap_err();
        assert!(err.to_string().contains("unknown field `nobitx`"), "{err}");
    }

    #[test]
    fn the_subcommand_parses_and_flags_override_the_file() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(subcommand)]
            command: Command,
        }
        #[derive(clap::Subcommand)]
        enum Command {
            Connect(ConnectorArgs),
        }
        let cli = Cli::try_parse_from([
            "tickflow",
            "connect",
            "nobitex",
            "--symbol",
            "BTCIRT",
            "--symbol",
            "ETHIRT",
            "--resolution",
            "5",
            "--base-url",
            "http://127.0.0.1:8081",
            "--stdout",
        ])
        .unwrap();
        let Command::Connect(args) = cli.command;
        assert!(args.stdout);
        let cfg = args.to_config().unwrap();
        assert_eq!(cfg.symbols, Some(vec!["BTCIRT".to_string(), "ETHIRT".to_string()]));
        let built = cfg.build().unwrap();
        assert_eq!(
            (built.exchange, built.period_ms, built.base_url.as_str()),
            (Exchange::Nobitex, 300_000, "http://127.0.0.1:8081")
        );
        assert!(Cli::try_parse_from(["tickflow", "connect", "binance"]).is_err());
    }

    #[test]
    fn the_api_key_is_never_printed() {
        let built = local(Exchange::Alphavantage).build().unwrap();
        assert!(!format!("{built:?}").contains("demo"));
    }
}
