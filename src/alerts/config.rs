//! The `[alerts]` section of `cluster.toml`.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::HumanDuration;
use crate::http::auth::{Tokens, require_off_loopback, validate_token};
use crate::kafka::target::{validate_brokers, validate_topic};
use crate::retry::Policy;

/// Alert rules and notifications. Present = enabled.
///
/// ```toml
/// [alerts]
/// brokers = "127.0.0.1:9092"
/// rules-topic = "tickflow-rules"     # compacted, key = rule id
/// alerts-topic = "tickflow-alerts"
/// token = "4f9c2d7e8a1b3c5d"         # admin token: every rule (or TICKFLOW_ALERTS_TOKEN)
/// owner-tokens = { alice = "a1b2c3d4e5f60718" } # each sees and changes only its owner's rules
/// allowed-hosts = ["hooks.slack.com"] # where channels may point (empty: any public host)
/// dead-letter = "alerts-dead.ndjson"
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct AlertsConfig {
    /// Kafka bootstrap servers of the rules and alerts topics, e.g. "127.0.0.1:9092".
    pub brokers: String,
    /// The compacted topic holding the rules (key = rule id, value = rule JSON, tombstone =
    /// deleted).
    #[serde(default = "default_rules_topic")]
    pub rules_topic: String,
    /// The topic fired alerts are written to (key = alert id); "" disables it.
    #[serde(default = "default_alerts_topic")]
    pub alerts_topic: String,
    /// Bearer token required by `POST`/`DELETE /rules` (and accepted on every read
    /// endpoint); none = rule writes are open, which is allowed only while the status server
    /// listens on a loopback address. `TICKFLOW_ALERTS_TOKEN` sets it from the environment.
    #[serde(default)]
    pub token: Option<String>,
    /// Per-owner bearer tokens, `owner = "token"`: a request with one of them lists, reads,
    /// posts and deletes only rules whose `owner` is that owner (`alerts.token` stays the
    /// admin token, which sees all). `TICKFLOW_ALERTS_OWNER_TOKENS="alice=…,bob=…"` adds to
    /// them from the environment. Compared in constant time, like every token.
    #[serde(default)]
    pub owner_tokens: std::collections::BTreeMap<String, String>,
    /// Hosts webhook and Slack channels may point at (names or IPs, `*.example.com` for
    /// subdomains). Empty: any public host; loopback, private, link-local and internal-only
    /// names are refused unless listed here.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// File (NDJSON, appended) keeping alerts that could not be delivered or queued.
    #[serde(default = "default_dead_letter")]
    pub dead_letter: PathBuf,
    /// The notifier's outbox (NDJSON): fired alerts are fsynced here before a checkpoint may
    /// cover them, and delivered from here after a crash. Each process writes its own file,
    /// `-p<N>` inserted before the extension (`alerts-outbox-p0.ndjson`).
    #[serde(default = "default_outbox")]
    pub outbox: PathBuf,
    /// Alerts queued between the workers and the notifier thread; when full, further alerts
    /// go to the dead-letter file (counted) instead of blocking the workers.
    #[serde(default = "default_queue")]
    pub queue: usize,
    /// Delivery attempts per alert and channel before it is dead-lettered.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Wait before the first retry; doubles per attempt up to `max-backoff`.
    #[serde(default = "default_initial_backoff")]
    pub initial_backoff: HumanDuration,
    /// Longest wait between retries.
    #[serde(default = "default_max_backoff")]
    pub max_backoff: HumanDuration,
    /// Least time between two requests to one channel (URL or chat): the rate limit.
    #[serde(default = "default_min_interval")]
    pub min_interval: HumanDuration,
    /// Timeout of one delivery request.
    #[serde(default = "default_http_timeout")]
    pub http_timeout: HumanDuration,
    /// Base URL of the Telegram Bot API (`{base}/bot{token}/sendMessage`): the real API over
    /// HTTPS by default (TLS is built in: rustls with the webpki roots); an `http://` URL
    /// points at a local relay or a test server.
    #[serde(default = "default_telegram_base_url")]
    pub telegram_base_url: String,
    /// The Telegram bot's token (kept here, not in rules, so `GET /rules` never shows it).
    #[serde(default)]
    pub telegram_bot_token: Option<String>,
    /// How often worker 0 checks the rule mirror for changes.
    #[serde(default = "default_poll_interval")]
    pub poll_interval: HumanDuration,
}

fn default_rules_topic() -> String {
    "tickflow-rules".into()
}
fn default_alerts_topic() -> String {
    "tickflow-alerts".into()
}
fn default_dead_letter() -> PathBuf {
    PathBuf::from("alerts-dead-letters.ndjson")
}
fn default_outbox() -> PathBuf {
    PathBuf::from("alerts-outbox.ndjson")
}
/// Process `process`'s outbox file: `-p<N>` before the extension of `alerts.outbox`.
pub fn outbox_for(path: &std::path::Path, process: usize) -> PathBuf {
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "alerts-outbox".into());
    let name = match path.extension() {
        Some(ext) => format!("{stem}-p{process}.{}", ext.to_string_lossy()),
        None => format!("{stem}-p{process}"),
    };
    path.with_file_name(name)
}
fn default_queue() -> usize {
    10_000
}
fn default_max_attempts() -> u32 {
    8
}
fn default_initial_backoff() -> HumanDuration {
    HumanDuration(humantime::parse_duration("500ms").expect("a literal duration"))
}
fn default_max_backoff() -> HumanDuration {
    HumanDuration(humantime::parse_duration("1m").expect("a literal duration"))
}
fn default_min_interval() -> HumanDuration {
    HumanDuration(humantime::parse_duration("1s").expect("a literal duration"))
}
fn default_http_timeout() -> HumanDuration {
    HumanDuration(humantime::parse_duration("10s").expect("a literal duration"))
}
fn default_telegram_base_url() -> String {
    "https://api.telegram.org".into()
}
fn default_poll_interval() -> HumanDuration {
    HumanDuration(humantime::parse_duration("200ms").expect("a literal duration"))
}

/// The env var that sets `alerts.token` (it wins over the file).
pub const TOKEN_ENV: &str = "TICKFLOW_ALERTS_TOKEN";
/// The env var that adds owner tokens: `alice=token,bob=token` (it wins over the file for
/// the owners it names).
pub const OWNER_TOKENS_ENV: &str = "TICKFLOW_ALERTS_OWNER_TOKENS";

impl AlertsConfig {
    /// The config with `alerts.token` taken from [`TOKEN_ENV`] when that is set (and not
    /// empty), so the secret need not sit in the file.
    pub fn with_env(mut self) -> AlertsConfig {
        if let Some(t) = std::env::var(TOKEN_ENV).ok().filter(|t| !t.trim().is_empty()) {
            self.token = Some(t.trim().to_string());
        }
        if let Ok(list) = std::env::var(OWNER_TOKENS_ENV) {
            for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
                // A malformed entry becomes an owner named after it with an empty token,
                // which validation reports (naming the variable, never echoing a secret).
                let (owner, token) = entry.split_once('=').unwrap_or((entry, ""));
                self.owner_tokens.insert(owner.trim().to_string(), token.trim().to_string());
            }
        }
        self
    }

    /// The owner tokens, owners and tokens in the same order.
    pub fn owners(&self) -> (Vec<String>, Tokens) {
        // Empty tokens are dropped by `Tokens::new`: drop their owners too (validation
        // refuses them anyway), so the two lists stay aligned.
        let pairs: Vec<(&String, &String)> = self.owner_tokens.iter().filter(|(_, t)| !t.trim().is_empty()).collect();
        (pairs.iter().map(|(o, _)| (*o).clone()).collect(), Tokens::new(pairs.iter().map(|(_, t)| t.as_str())))
    }

    /// The token for rule writes (empty = open).
    pub fn write_tokens(&self) -> Tokens {
        Tokens::new(self.token.iter())
    }

    /// The start-up rule: rule writes served on `status_listen` need a token unless that is
    /// a loopback address. One message, or none.
    pub fn validate_exposure(&self, status_listen: std::net::SocketAddr) -> Vec<String> {
        let guarded = self.write_tokens().union(&self.owners().1);
        require_off_loopback(status_listen, &guarded, "POST/DELETE /rules", "alerts.token", TOKEN_ENV)
            .err()
            .into_iter()
            .collect()
    }

    /// A config with every default and these brokers.
    pub fn new(brokers: &str) -> AlertsConfig {
        // An empty table plus brokers is always valid TOML for this struct.
        toml::from_str(&format!("brokers = {brokers:?}")).expect("defaults deserialize")
    }

    /// Every problem, each naming the key, the bad value and an example.
    pub fn validate(&self) -> Vec<String> {
        let mut errors = Vec::new();
        errors.extend(validate_brokers("alerts.brokers", &self.brokers));
        errors.extend(validate_topic("alerts.rules-topic", &self.rules_topic, "tickflow-rules"));
        if !self.alerts_topic.is_empty() {
            errors.extend(validate_topic("alerts.alerts-topic", &self.alerts_topic, "tickflow-alerts"));
        }
        if let Some(t) = &self.token {
            errors.extend(validate_token("alerts.token", t));
        }
        let mut seen = std::collections::BTreeMap::new();
        for (owner, token) in &self.owner_tokens {
            if owner.trim().is_empty() {
                errors.push(
                    "alerts.owner-tokens: an empty owner name; expected e.g. alice = \"4f9c2d7e8a1b3c5d\"".into(),
                );
            }
            errors.extend(validate_token(&format!("alerts.owner-tokens.{owner}"), token));
            if self.token.as_deref() == Some(token.as_str()) {
                errors.push(format!("alerts.owner-tokens.{owner}: the same as alerts.token (the admin token); give each owner a token of its own"));
            }
            if let Some(other) = seen.insert(token.as_str(), owner.as_str()) {
                errors.push(format!(
                    "alerts.owner-tokens.{owner}: the same token as {other:?}; give each owner a token of its own"
                ));
            }
        }
        for (i, h) in self.allowed_hosts.iter().enumerate() {
            let host = h.trim();
            let bare = host.strip_prefix("*.").unwrap_or(host);
            let url = if bare.contains(':') && !bare.starts_with('[') {
                format!("http://[{bare}]/")
            } else {
                format!("http://{bare}/")
            };
            if host.is_empty() || super::notify::target::parse(&url).is_err() {
                errors.push(format!(
                    "alerts.allowed-hosts[{i}]: {h:?} is not a host name or IP address; expected e.g. \"hooks.slack.com\", \"*.example.com\" or \"10.0.0.5\""
                ));
            }
        }

        if self.queue == 0 {
            errors.push("alerts.queue: 0 must be at least 1; expected e.g. 10000".into());
        }
        if self.max_attempts == 0 {
            errors.push("alerts.max-attempts: 0 must be at least 1; expected e.g. 8".into());
        }
        if self.http_timeout.get().is_zero() {
            errors.push("alerts.http-timeout: \"0s\" would fail every request; expected e.g. \"10s\"".into());
        }
        if !(self.telegram_base_url.starts_with("http://") || self.telegram_base_url.starts_with("https://")) {
            errors.push(format!(
                "alerts.telegram-base-url: {:?} must be an http:// or https:// URL; expected e.g. \"https://api.telegram.org\"",
                self.telegram_base_url
            ));
        }
        errors
    }

    /// How failed deliveries back off: `initial-backoff` doubling to `max-backoff`, at most
    /// `max-attempts` attempts (each alert and channel is scheduled on its own, by attempt).
    pub fn retry_policy(&self) -> Policy {
        Policy::exponential(self.initial_backoff.get(), self.max_backoff.get()).with_max_attempts(self.max_attempts)
    }
    /// `min-interval`.
    pub fn min_interval(&self) -> Duration {
        self.min_interval.get()
    }
    /// `http-timeout`.
    pub fn http_timeout(&self) -> Duration {
        self.http_timeout.get()
    }
    /// `poll-interval`.
    pub fn poll_interval(&self) -> Duration {
        self.poll_interval.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_errors_name_key_value_example() {
        assert!(AlertsConfig::new("127.0.0.1:9092").validate().is_empty());
        let mut c = AlertsConfig::new("nohost");
        c.queue = 0;
        let e = c.validate();
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[0].starts_with("alerts.brokers: \"nohost\""), "{e:?}");
        // Durations are typed: a bad one is refused when the file is read, naming the value.
        let bad = toml::from_str::<AlertsConfig>("brokers = \"a:1\"\nmin-interval = \"soon\"").unwrap_err();
        assert!(bad.message().starts_with("\"soon\" is not a duration"), "{bad}");
        let c: AlertsConfig = toml::from_str("brokers = \"a:1\"\nmax-backoff = \"2s\"\nmax-attempts = 3").unwrap();
        assert_eq!(c.retry_policy().step(9), Duration::from_secs(2));
        assert_eq!(c.retry_policy().max_attempts, Some(3));
        assert!(toml::from_str::<AlertsConfig>("brokers = \"a:1\"\nbogus = 1").is_err());
    }

    #[test]
    fn rule_writes_off_loopback_need_a_token() {
        let open = AlertsConfig::new("127.0.0.1:9092");
        assert_eq!(open.validate_exposure("127.0.0.1:9100".parse().unwrap()), Vec::<String>::new());
        assert_eq!(
            open.validate_exposure("0.0.0.0:9100".parse().unwrap()),
            ["alerts.token: POST/DELETE /rules would listen on 0.0.0.0:9100 (not loopback) without a token, so \
              anyone who can reach the port could use it; set a secret of at least 16 characters with \
              TICKFLOW_ALERTS_TOKEN=<secret> (or alerts.token in the config file), or listen on 127.0.0.1"]
        );
        let mut c = AlertsConfig { token: Some("0123456789abcdef".into()), ..open };
        assert!(c.validate_exposure("0.0.0.0:9100".parse().unwrap()).is_empty());
        c.token = Some("s3cret".into());
        c.allowed_hosts = vec!["hooks.slack.com".into(), "*.corp.example".into(), "::1".into(), "bad host".into()];
        assert_eq!(
            c.validate(),
            [
                "alerts.token: a token of 6 bytes; expected at least 16 printable ASCII characters without spaces, e.g. \"4f9c2d7e8a1b3c5d\"",
                "alerts.allowed-hosts[3]: \"bad host\" is not a host name or IP address; expected e.g. \"hooks.slack.com\", \"*.example.com\" or \"10.0.0.5\"",
            ]
        );
    }

    #[test]
    fn telegram_defaults_to_the_real_api_over_https() {
        assert_eq!(AlertsConfig::new("127.0.0.1:9092").telegram_base_url, "https://api.telegram.org");
    }

    #[test]
    fn owner_tokens_are_validated_and_guard_exposure() {
        let mut c = AlertsConfig::new("127.0.0.1:9092");
        c.owner_tokens.insert("alice".into(), "alice-token-0123456789".into());
        assert!(c.validate().is_empty(), "{:?}", c.validate());
        assert!(c.validate_exposure("0.0.0.0:9100".parse().unwrap()).is_empty(), "owner tokens guard the writes");
        c.owner_tokens.insert("bob".into(), "alice-token-0123456789".into());
        c.owner_tokens.insert("carol".into(), "short".into());
        let e = c.validate();
        assert!(
            e.iter().any(
                |m| m == "alerts.owner-tokens.bob: the same token as \"alice\"; give each owner a token of its own"
            ),
            "{e:?}"
        );
        assert!(e.iter().any(|m| m.starts_with("alerts.owner-tokens.carol: a token of 5 bytes")), "{e:?}");
        let (owners, tokens) = c.owners();
        assert_eq!(owners, ["alice", "bob", "carol"]);
        assert!(tokens.check(Some("Bearer alice-token-0123456789")).is_ok());
    }
}
