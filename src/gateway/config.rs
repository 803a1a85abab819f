//! The gateway's configuration: a `[gateway]` section of a TOML file and/or command-line flags
//! (flags win). Parse → [`GatewayConfig::validate`] (every problem at once) → [`GatewayConfig::build`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::error::GatewayError;
use crate::http::auth::{Tokens, require_off_loopback, validate_token};
use crate::http::limits::{HttpLimits, Limits};
use crate::http::tls::{Tls, TlsFiles};
use crate::kafka::target::validate_kafka_target;

/// `[gateway]`: where the gateway listens, where it produces, and its limits.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct GatewayConfig {
    /// `host:port` to serve `/ingest`, `/health`, `/ready`, `/status` and `/metrics` on.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Kafka bootstrap servers, comma-separated `host:port`.
    #[serde(default = "default_brokers")]
    pub brokers: String,
    /// Topic valid bars are produced to (keyed by symbol).
    #[serde(default = "default_topic")]
    pub topic: String,
    /// Topic invalid records are produced to, with the reason.
    #[serde(default = "default_dead_letter_topic")]
    pub dead_letter_topic: String,
    /// Largest accepted request body in bytes; larger requests get `413`.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: u64,
    /// `/ingest` requests worked on at once (reading, decoding, waiting for Kafka); further
    /// ones get `503` with `Retry-After` before their body is read. Bounds what requests hold
    /// besides their buffered body (decoded records: ~100 bytes each).
    #[serde(default = "default_max_concurrent_requests")]
    pub max_concurrent_requests: usize,
    /// Bearer tokens; when non-empty every `/ingest` request needs `Authorization: Bearer
    /// <one of them>`. The env var `TICKFLOW_GATEWAY_TOKENS` (comma-separated) adds more, so
    /// secrets need not sit in a file or on a command line. Required (the gateway refuses to
    /// start without one) when `listen` is not a loopback address.
    #[serde(default)]
    pub tokens: Vec<String>,
    /// Bearer tokens for `/status` and `/metrics` (the `tokens` above are accepted there
    /// too); empty = those are open. `/health` and `/ready` are always open, for probes.
    /// `TICKFLOW_GATEWAY_READ_TOKENS` (comma-separated) adds more.
    #[serde(default)]
    pub read_tokens: Vec<String>,
    /// Accept bars whose prices are zero or negative (spreads, some futures). By default
    /// every price must be > 0.
    #[serde(default)]
    pub allow_non_positive_prices: bool,
    /// `[gateway.limits]`: timeouts, connection cap and buffered-body budget.
    #[serde(default)]
    pub limits: HttpLimits,
    /// `[gateway.tls]`: serve HTTPS with this certificate and key (PEM); absent = plain HTTP
    /// (put a TLS-terminating proxy in front when the port leaves the host).
    #[serde(default)]
    pub tls: Option<TlsFiles>,
    /// Records (bars and dead letters, over all requests) that may wait for the broker's
    /// acknowledgement at once. A request that does not fit gets `503` with `Retry-After`.
    #[serde(default = "default_queue_capacity")]
    pub queue_capacity: usize,
    /// How long a request may wait for the broker's acknowledgements before `503`
    /// (human-readable, e.g. `"10s"`). Also the producer's message timeout.
    #[serde(default = "default_request_timeout")]
    pub request_timeout: String,
    /// The `Retry-After` sent with `503` (whole seconds, e.g. `"1s"`).
    #[serde(default = "default_retry_after")]
    pub retry_after: String,
    /// How often the broker connection and both topics are checked (drives `/ready`).
    #[serde(default = "default_probe_interval")]
    pub probe_interval: String,
    /// How long shutdown waits for in-flight requests to finish.
    #[serde(default = "default_shutdown_grace")]
    pub shutdown_grace: String,
    /// The producer's `linger.ms`: how long records wait to be batched (e.g. `"5ms"`).
    #[serde(default = "default_linger")]
    pub linger: String,
    /// Tokio worker threads serving HTTP.
    #[serde(default = "default_threads")]
    pub threads: usize,
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
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
fn default_max_body_bytes() -> u64 {
    16 * 1024 * 1024
}
fn default_max_concurrent_requests() -> usize {
    32
}
fn default_queue_capacity() -> usize {
    100_000
}
fn default_request_timeout() -> String {
    "10s".into()
}
fn default_retry_after() -> String {
    "1s".into()
}
fn default_probe_interval() -> String {
    "1s".into()
}
fn default_shutdown_grace() -> String {
    "10s".into()
}
fn default_linger() -> String {
    "5ms".into()
}
fn default_threads() -> usize {
    2
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            listen: default_listen(),
            brokers: default_brokers(),
            topic: default_topic(),
            dead_letter_topic: default_dead_letter_topic(),
            max_body_bytes: default_max_body_bytes(),
            max_concurrent_requests: default_max_concurrent_requests(),
            tokens: Vec::new(),
            read_tokens: Vec::new(),
            allow_non_positive_prices: false,
            limits: HttpLimits::default(),
            tls: None,
            queue_capacity: default_queue_capacity(),
            request_timeout: default_request_timeout(),
            retry_after: default_retry_after(),
            probe_interval: default_probe_interval(),
            shutdown_grace: default_shutdown_grace(),
            linger: default_linger(),
            threads: default_threads(),
        }
    }
}

/// A validated [`GatewayConfig`] with parsed addresses and durations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuiltGateway {
    /// Listen address.
    pub listen: SocketAddr,
    /// Kafka bootstrap servers.
    pub brokers: String,
    /// Bars topic.
    pub topic: String,
    /// Dead-letter topic.
    pub dead_letter_topic: String,
    /// Body limit in bytes.
    pub max_body_bytes: u64,
    /// `/ingest` requests worked on at once.
    pub max_concurrent_requests: usize,
    /// Accepted bearer tokens for `/ingest` (empty: no authentication).
    pub tokens: Tokens,
    /// Accepted bearer tokens for `/status` and `/metrics`, write tokens included (empty:
    /// open).
    pub read_tokens: Tokens,
    /// Whether prices ≤ 0 are accepted.
    pub allow_non_positive_prices: bool,
    /// Server limits (with `retry_after_secs` set from `retry-after`).
    pub limits: Limits,
    /// The loaded certificate and key, when serving HTTPS.
    pub tls: Option<Tls>,
    /// Producer queue bound, in records.
    pub queue_capacity: usize,
    /// Request timeout (and producer message timeout).
    pub request_timeout: Duration,
    /// `Retry-After` in whole seconds (at least 1).
    pub retry_after_secs: u64,
    /// Broker probe interval.
    pub probe_interval: Duration,
    /// Shutdown grace period.
    pub shutdown_grace: Duration,
    /// Producer linger.
    pub linger: Duration,
    /// HTTP worker threads.
    pub threads: usize,
}

fn duration(errs: &mut Vec<String>, key: &str, v: &str, example: &str) -> Duration {
    match humantime::parse_duration(v.trim()) {
        Ok(d) => d,
        Err(e) => {
            errs.push(format!("gateway.{key}: {v:?} is not a duration ({e}); expected e.g. {example:?}"));
            Duration::ZERO
        }
    }
}

impl GatewayConfig {
    /// Every problem, one message each naming the key, the bad value and a good example.
    /// Empty when the config is usable.
    pub fn validate(&self) -> Vec<String> {
        let mut errs = Vec::new();
        self.check(&mut errs);
        errs
    }

    fn check(&self, errs: &mut Vec<String>) -> BuiltGateway {
        let listen = match self.listen.parse::<SocketAddr>() {
            Ok(a) => a,
            Err(_) => {
                errs.push(format!(
                    "gateway.listen: {:?} is not an ip:port address; expected e.g. \"0.0.0.0:8080\"",
                    self.listen
                ));
                SocketAddr::from(([127, 0, 0, 1], 0))
            }
        };
        errs.extend(validate_kafka_target("gateway", &self.brokers, &self.topic, &self.dead_letter_topic));
        if self.max_body_bytes == 0 || self.max_body_bytes > 1 << 30 {
            errs.push(format!(
                "gateway.max-body-bytes: {} is outside 1 ..= 1073741824; expected e.g. 16777216",
                self.max_body_bytes
            ));
        }
        if !(1..=100_000).contains(&self.max_concurrent_requests) {
            errs.push(format!(
                "gateway.max-concurrent-requests: {} is outside 1 ..= 100000; expected e.g. 32",
                self.max_concurrent_requests
            ));
        }
        for (i, t) in self.tokens.iter().enumerate() {
            errs.extend(validate_token(&format!("gateway.tokens[{i}]"), t));
        }
        for (i, t) in self.read_tokens.iter().enumerate() {
            errs.extend(validate_token(&format!("gateway.read-tokens[{i}]"), t));
        }
        let tokens = Tokens::new(&self.tokens);
        if let Err(e) = require_off_loopback(listen, &tokens, "/ingest", "gateway.tokens", TOKENS_ENV) {
            errs.push(e);
        }
        let read_tokens =
            if self.read_tokens.is_empty() { Tokens::none() } else { Tokens::new(&self.read_tokens).union(&tokens) };
        let mut limits = match self.limits.build("gateway") {
            Ok(l) => l,
            Err(e) => {
                errs.extend(e);
                Limits::default()
            }
        };
        if self.queue_capacity == 0 || self.queue_capacity > 10_000_000 {
            errs.push(format!(
                "gateway.queue-capacity: {} is outside 1 ..= 10000000; expected e.g. 100000",
                self.queue_capacity
            ));
        }
        let request_timeout = duration(errs, "request-timeout", &self.request_timeout, "10s");
        if request_timeout < Duration::from_millis(100) && !request_timeout.is_zero() {
            errs.push(format!(
                "gateway.request-timeout: {:?} is below 100ms; expected e.g. \"10s\"",
                self.request_timeout
            ));
        }
        let retry_after = duration(errs, "retry-after", &self.retry_after, "1s");
        let probe_interval = duration(errs, "probe-interval", &self.probe_interval, "1s");
        if probe_interval.is_zero() {
            errs.push(format!("gateway.probe-interval: {:?} is zero; expected e.g. \"1s\"", self.probe_interval));
        }
        let shutdown_grace = duration(errs, "shutdown-grace", &self.shutdown_grace, "10s");
        let linger = duration(errs, "linger", &self.linger, "5ms");
        if linger > Duration::from_secs(5) {
            errs.push(format!("gateway.linger: {:?} is above 5s; expected e.g. \"5ms\"", self.linger));
        }
        if self.threads == 0 || self.threads > 256 {
            errs.push(format!("gateway.threads: {} is outside 1 ..= 256; expected e.g. 2", self.threads));
        }
        limits.retry_after_secs = retry_after.as_secs().max(1);
        let tls = self.tls.as_ref().and_then(|t| t.load("gateway").map_err(|e| errs.push(e)).ok());
        BuiltGateway {
            listen,
            brokers: self.brokers.trim().to_string(),
            topic: self.topic.clone(),
            dead_letter_topic: self.dead_letter_topic.clone(),
            max_body_bytes: self.max_body_bytes,
            max_concurrent_requests: self.max_concurrent_requests.clamp(1, 100_000),
            tokens,
            read_tokens,
            allow_non_positive_prices: self.allow_non_positive_prices,
            limits,
            tls,
            queue_capacity: self.queue_capacity,
            request_timeout,
            retry_after_secs: retry_after.as_secs().max(1),
            probe_interval,
            shutdown_grace,
            linger,
            threads: self.threads,
        }
    }

    /// Validates and converts; the error lists every problem.
    pub fn build(&self) -> Result<BuiltGateway, GatewayError> {
        let mut errs = Vec::new();
        let built = self.check(&mut errs);
        if errs.is_empty() { Ok(built) } else { Err(GatewayError::Config(errs)) }
    }

    /// Reads the `[gateway]` section of a TOML file (other sections are ignored, so the
    /// section can live in `cluster.toml`); a missing section gives the defaults.
    pub fn from_toml(text: &str) -> Result<GatewayConfig, GatewayError> {
        #[derive(Deserialize)]
        struct File {
            #[serde(default)]
            gateway: GatewayConfig,
            #[serde(flatten)]
            _rest: toml::Table,
        }
        let file: File = toml::from_str(text).map_err(|e| GatewayError::Config(vec![e.to_string()]))?;
        Ok(file.gateway)
    }
}

/// `tickflow gateway`: HTTP ingest to Kafka. Flags override the `[gateway]` section of
/// `--config`.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct GatewayArgs {
    /// A TOML file with a `[gateway]` section (e.g. cluster.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Listen address, e.g. 0.0.0.0:8080.
    #[arg(long)]
    pub listen: Option<String>,
    /// Kafka bootstrap servers, comma-separated.
    #[arg(long)]
    pub brokers: Option<String>,
    /// Topic for valid bars.
    #[arg(long)]
    pub topic: Option<String>,
    /// Topic for invalid records.
    #[arg(long)]
    pub dead_letter_topic: Option<String>,
    /// Largest request body in bytes.
    #[arg(long)]
    pub max_body_bytes: Option<u64>,
    /// Accepted bearer token (repeatable). Prefer TICKFLOW_GATEWAY_TOKENS (comma-separated).
    /// Required when --listen is not a loopback address.
    #[arg(long = "token")]
    pub tokens: Vec<String>,
    /// Accept prices ≤ 0 (spreads, some futures); by default prices must be > 0.
    #[arg(long)]
    pub allow_non_positive_prices: bool,
    /// Records that may await broker acknowledgement at once.
    #[arg(long)]
    pub queue_capacity: Option<usize>,
    /// Request timeout, e.g. 10s.
    #[arg(long)]
    pub request_timeout: Option<String>,
    /// HTTP worker threads.
    #[arg(long)]
    pub threads: Option<usize>,
}

/// The env var with extra bearer tokens (comma-separated).
pub const TOKENS_ENV: &str = "TICKFLOW_GATEWAY_TOKENS";
/// The env var with extra read tokens (comma-separated).
pub const READ_TOKENS_ENV: &str = "TICKFLOW_GATEWAY_READ_TOKENS";

impl GatewayArgs {
    /// The file's `[gateway]` section (or the defaults), the flags applied on top, and
    /// the tokens from [`TOKENS_ENV`] appended.
    pub fn to_config(&self) -> Result<GatewayConfig, GatewayError> {
        let mut cfg = match &self.config {
            None => GatewayConfig::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| GatewayError::Config(vec![format!("{}: {e}", path.display())]))?;
                GatewayConfig::from_toml(&text).map_err(|e| match e {
                    GatewayError::Config(v) => {
                        GatewayError::Config(v.into_iter().map(|m| format!("{}: {m}", path.display())).collect())
                    }
                    other => other,
                })?
            }
        };
        let set = |dst: &mut String, v: &Option<String>| {
            if let Some(v) = v {
                dst.clone_from(v);
            }
        };
        set(&mut cfg.listen, &self.listen);
        set(&mut cfg.brokers, &self.brokers);
        set(&mut cfg.topic, &self.topic);
        set(&mut cfg.dead_letter_topic, &self.dead_letter_topic);
        set(&mut cfg.request_timeout, &self.request_timeout);
        if let Some(v) = self.max_body_bytes {
            cfg.max_body_bytes = v;
        }
        if let Some(v) = self.queue_capacity {
            cfg.queue_capacity = v;
        }
        if let Some(v) = self.threads {
            cfg.threads = v;
        }
        cfg.tokens.extend(self.tokens.iter().cloned());
        cfg.allow_non_positive_prices |= self.allow_non_positive_prices;
        let from_env = |name: &str| -> Vec<String> {
            std::env::var(name)
                .map(|v| v.split(',').map(str::trim).filter(|t| !t.is_empty()).map(String::from).collect())
                .unwrap_or_default()
        };
        cfg.tokens.extend(from_env(TOKENS_ENV));
        cfg.read_tokens.extend(from_env(READ_TOKENS_ENV));
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(GatewayConfig::default().validate(), Vec::<String>::new());
        assert_eq!(GatewayConfig::from_toml("").unwrap(), GatewayConfig::default());
    }

    #[test]
    fn every_problem_is_reported_with_key_value_and_example() {
        let cfg = GatewayConfig::from_toml(
            "[cluster]\nworkers = 2\n[gateway]\nlisten = \"8080\"\nbrokers = \"kafka\"\ntopic = \"bad topic\"\n\
             request-timeout = \"soon\"\nqueue-capacity = 0\ntokens = [\"short\"]\n",
        )
        .unwrap();
        let errs = cfg.validate();
        assert_eq!(errs.len(), 6, "{errs:#?}");
        assert_eq!(errs[0], "gateway.listen: \"8080\" is not an ip:port address; expected e.g. \"0.0.0.0:8080\"");
        assert!(errs[1].starts_with("gateway.brokers: \"kafka\""), "{}", errs[1]);
        assert!(errs[2].starts_with("gateway.topic: \"bad topic\""), "{}", errs[2]);
        assert!(errs[3].starts_with("gateway.tokens[0]: a token of 5 bytes"), "{}", errs[3]);
        assert!(errs[4].starts_with("gateway.queue-capacity: 0"), "{}", errs[4]);
        assert!(errs[5].starts_with("gateway.request-timeout: \"soon\" is not a duration"), "{}", errs[5]);
    }

    #[test]
    fn a_public_listen_address_needs_a_token() {
        let cfg = GatewayConfig { listen: "0.0.0.0:8080".into(), ..GatewayConfig::default() };
        assert_eq!(
            cfg.validate(),
            ["gateway.tokens: /ingest would listen on 0.0.0.0:8080 (not loopback) without a token, so anyone who \
              can reach the port could use it; set a secret of at least 16 characters with \
              TICKFLOW_GATEWAY_TOKENS=<secret> (or gateway.tokens in the config file), or listen on 127.0.0.1"]
        );
        let with = GatewayConfig { tokens: vec!["0123456789abcdef".into()], ..cfg };
        assert_eq!(with.validate(), Vec::<String>::new());
        let limits = GatewayConfig::from_toml("[gateway.limits]\nmax-connections = 0\n").unwrap();
        assert_eq!(limits.validate(), ["gateway.limits.max-connections: 0 is outside 1 ..= 100000; expected e.g. 512"]);
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = GatewayConfig::from_toml("[gateway]\nlisten-addr = \"1.2.3.4:5\"\n").unwrap_err();
        assert!(err.to_string().contains("unknown field `listen-addr`"), "{err}");
    }
}
