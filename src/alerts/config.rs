//! The `[alerts]` section of `cluster.toml`.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Alert rules and notifications. Present = enabled.
///
/// ```toml
/// [alerts]
/// brokers = "127.0.0.1:9092"
/// rules-topic = "tickflow-rules"     # compacted, key = rule id
/// alerts-topic = "tickflow-alerts"
/// token = "s3cret"                   # Bearer token for POST/DELETE /rules (none = open)
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
    /// Bearer token required by every `/rules` request; none = open.
    #[serde(default)]
    pub token: Option<String>,
    /// File (NDJSON, appended) keeping alerts that could not be delivered or queued.
    #[serde(default = "default_dead_letter")]
    pub dead_letter: PathBuf,
    /// Alerts queued between the workers and the notifier thread; when full, further alerts
    /// go to the dead-letter file (counted) instead of blocking the workers.
    #[serde(default = "default_queue")]
    pub queue: usize,
    /// Delivery attempts per alert and channel before it is dead-lettered.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Wait before the first retry; doubles per attempt up to `max-backoff`.
    #[serde(default = "default_initial_backoff")]
    pub initial_backoff: String,
    /// Longest wait between retries.
    #[serde(default = "default_max_backoff")]
    pub max_backoff: String,
    /// Least time between two requests to one channel (URL or chat): the rate limit.
    #[serde(default = "default_min_interval")]
    pub min_interval: String,
    /// Timeout of one delivery request.
    #[serde(default = "default_http_timeout")]
    pub http_timeout: String,
    /// Base URL of the Telegram Bot API (`{base}/bot{token}/sendMessage`). This build has no
    /// TLS, so point it at an HTTP relay (or a test server).
    #[serde(default = "default_telegram_base_url")]
    pub telegram_base_url: String,
    /// The Telegram bot's token (kept here, not in rules, so `GET /rules` never shows it).
    #[serde(default)]
    pub telegram_bot_token: Option<String>,
    /// How often worker 0 checks the rule mirror for changes.
    #[serde(default = "default_poll_interval")]
    pub poll_interval: String,
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
fn default_queue() -> usize {
    10_000
}
fn default_max_attempts() -> u32 {
    8
}
fn default_initial_backoff() -> String {
    "500ms".into()
}
fn default_max_backoff() -> String {
    "1m".into()
}
fn default_min_interval() -> String {
    "1s".into()
}
fn default_http_timeout() -> String {
    "10s".into()
}
fn default_telegram_base_url() -> String {
    "http://127.0.0.1:8081".into()
}
fn default_poll_interval() -> String {
    "200ms".into()
}

/// Parses a human-readable duration; the default on error (validation reports it first).
fn dur(text: &str, default: &str) -> Duration {
    humantime::parse_duration(text)
        // The defaults are literals known to parse.
        .unwrap_or_else(|_| humantime::parse_duration(default).expect("default durations parse"))
}

impl AlertsConfig {
    /// A config with every default and these brokers.
    pub fn new(brokers: &str) -> AlertsConfig {
        // An empty table plus brokers is always valid TOML for this struct.
        toml::from_str(&format!("brokers = {brokers:?}")).expect("defaults deserialize")
    }

    /// Every problem, each naming the key, the bad value and an example.
    pub fn validate(&self) -> Vec<String> {
        let mut errors = Vec::new();
        if self.brokers.trim().is_empty() || !self.brokers.split(',').all(|b| b.trim().contains(':')) {
            errors.push(format!(
                "alerts.brokers: {:?} is not a host:port list; expected e.g. \"127.0.0.1:9092\"",
                self.brokers
            ));
        }
        if self.rules_topic.trim().is_empty() {
            errors.push("alerts.rules-topic: \"\" is empty; expected e.g. \"tickflow-rules\"".into());
        }
        if self.token.as_deref().is_some_and(|t| t.trim().is_empty()) {
            errors.push("alerts.token: \"\" is empty; remove the key for open access or set e.g. \"s3cret\"".into());
        }
        if self.queue == 0 {
            errors.push("alerts.queue: 0 must be at least 1; expected e.g. 10000".into());
        }
        if self.max_attempts == 0 {
            errors.push("alerts.max-attempts: 0 must be at least 1; expected e.g. 8".into());
        }
        for (key, value, example) in [
            ("initial-backoff", &self.initial_backoff, "500ms"),
            ("max-backoff", &self.max_backoff, "1m"),
            ("min-interval", &self.min_interval, "1s"),
            ("http-timeout", &self.http_timeout, "10s"),
            ("poll-interval", &self.poll_interval, "200ms"),
        ] {
            if humantime::parse_duration(value).is_err() {
                errors.push(format!("alerts.{key}: {value:?} is not a duration; expected e.g. {example:?}"));
            }
        }
        if !(self.telegram_base_url.starts_with("http://") || self.telegram_base_url.starts_with("https://")) {
            errors.push(format!(
                "alerts.telegram-base-url: {:?} must be an http:// or https:// URL; expected e.g. \"https://api.telegram.org\"",
                self.telegram_base_url
            ));
        }
        errors
    }

    /// `initial-backoff`.
    pub fn initial_backoff(&self) -> Duration {
        dur(&self.initial_backoff, "500ms")
    }
    /// `max-backoff`.
    pub fn max_backoff(&self) -> Duration {
        dur(&self.max_backoff, "1m")
    }
    /// `min-interval`.
    pub fn min_interval(&self) -> Duration {
        dur(&self.min_interval, "1s")
    }
    /// `http-timeout`.
    pub fn http_timeout(&self) -> Duration {
        dur(&self.http_timeout, "10s")
    }
    /// `poll-interval`.
    pub fn poll_interval(&self) -> Duration {
        dur(&self.poll_interval, "200ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_errors_name_key_value_example() {
        assert!(AlertsConfig::new("127.0.0.1:9092").validate().is_empty());
        let mut c = AlertsConfig::new("nohost");
        c.min_interval = "soon".into();
        c.queue = 0;
        let e = c.validate();
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(e[0].starts_with("alerts.brokers: \"nohost\""), "{e:?}");
        assert!(e.iter().any(|m| m == "alerts.min-interval: \"soon\" is not a duration; expected e.g. \"1s\""));
        assert!(toml::from_str::<AlertsConfig>("brokers = \"a:1\"\nbogus = 1").is_err());
    }
}
