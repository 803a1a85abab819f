//! `[source.kafka]`: where the topic is, where to start, and how the watermark treats idleness.
//!
//! Parse (serde) → [`KafkaSourceConfig::validate`] (every problem at once, each naming the key
//! `source.kafka.<key>`, the bad value and a good example) → the typed accessors, which are
//! only called on a validated config.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// librdkafka options tickflow sets itself; `options` may not override them.
pub const RESERVED_OPTIONS: &[&str] = &[
    "bootstrap.servers",
    "metadata.broker.list",
    "group.id",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "enable.partition.eof",
    "auto.offset.reset",
];

/// `[source.kafka]`
///
/// ```
/// use tickflow::sources::kafka::KafkaSourceConfig;
/// let cfg: KafkaSourceConfig = toml::from_str(r#"brokers = "127.0.0.1:9092"
/// topic = "bars"
/// start = "earliest"
/// idle-timeout = "5s"
/// options = { "fetch.min.bytes" = "1" }"#).unwrap();
/// assert!(cfg.validate().is_empty());
/// let bad: KafkaSourceConfig = toml::from_str(r#"brokers = "9092""#).unwrap();
/// assert_eq!(
///     bad.validate(),
///     [r#"source.kafka.brokers: "9092" has no host; expected e.g. "127.0.0.1:9092""#]
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct KafkaSourceConfig {
    /// Bootstrap brokers, `host:port`, comma-separated (librdkafka `bootstrap.servers`).
    #[serde(default = "default_brokers")]
    pub brokers: String,
    /// The topic of bars: one JSON bar object per message (the W1 shape or any shape
    /// [`crate::decode::decode_json_line`] accepts), keyed by symbol.
    #[serde(default = "default_topic")]
    pub topic: String,
    /// Consumer group that offsets are committed to, for lag dashboards and
    /// `start = "committed"`. The source never joins the group (no `subscribe`).
    #[serde(default = "default_group_id")]
    pub group_id: String,
    /// Where to start reading each partition: `"earliest"` (oldest retained message),
    /// `"latest"` (only messages produced after start) or `"committed"` (the group's committed
    /// offset; `earliest` for partitions without one).
    #[serde(default = "default_start")]
    pub start: String,
    /// A partition that is caught up (at its high watermark) and got no new message for this
    /// long stops holding back the watermark. Trade-off: a message that then arrives on it with
    /// an event time behind the watermark is late.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout: String,
    /// Records read per activation of the source operator, over all its partitions.
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
    /// Finish once every owned partition reached the high watermark it had at start
    /// (tests, back-fills, benchmarks). `false`: run until stopped.
    #[serde(default)]
    pub stop_at_end: bool,
    /// How often completed offsets are committed (asynchronously) while running; a final
    /// synchronous commit happens at [`super::KafkaSourceHandle::finish`].
    #[serde(default = "default_commit_interval")]
    pub commit_interval: String,
    /// How long to keep trying to reach the brokers and read the topic's metadata at start.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: String,
    /// librdkafka consumer properties passed through as they are, e.g.
    /// `{ "fetch.min.bytes" = "1", "statistics.interval.ms" = "5000" }`. The keys in
    /// [`RESERVED_OPTIONS`] are set by tickflow and rejected here.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

fn default_brokers() -> String {
    "127.0.0.1:9092".into()
}
fn default_topic() -> String {
    "bars".into()
}
fn default_group_id() -> String {
    "tickflow".into()
}
fn default_start() -> String {
    "earliest".into()
}
fn default_idle_timeout() -> String {
    "5s".into()
}
fn default_max_batch() -> usize {
    4096
}
fn default_commit_interval() -> String {
    "5s".into()
}
fn default_connect_timeout() -> String {
    "30s".into()
}

impl Default for KafkaSourceConfig {
    fn default() -> Self {
        KafkaSourceConfig {
            brokers: default_brokers(),
            topic: default_topic(),
            group_id: default_group_id(),
            start: default_start(),
            idle_timeout: default_idle_timeout(),
            max_batch: default_max_batch(),
            stop_at_end: false,
            commit_interval: default_commit_interval(),
            connect_timeout: default_connect_timeout(),
            options: BTreeMap::new(),
        }
    }
}

/// Where a partition starts ([`KafkaSourceConfig::start`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartPosition {
    /// The oldest retained message.
    Earliest,
    /// The high watermark at start: only new messages.
    Latest,
    /// The group's committed offset, or `Earliest` without one.
    Committed,
}

impl StartPosition {
    /// Parses `"earliest" | "latest" | "committed"`.
    pub fn parse(s: &str) -> Option<StartPosition> {
        match s.trim() {
            "earliest" => Some(StartPosition::Earliest),
            "latest" => Some(StartPosition::Latest),
            "committed" => Some(StartPosition::Committed),
            _ => None,
        }
    }
}

impl fmt::Display for StartPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StartPosition::Earliest => "earliest",
            StartPosition::Latest => "latest",
            StartPosition::Committed => "committed",
        })
    }
}

/// Largest accepted `max-batch`: one activation should stay well under a millisecond-ish slice.
pub const MAX_BATCH_LIMIT: usize = 1 << 20;

impl KafkaSourceConfig {
    /// Every problem in the section, one message each; empty when valid.
    pub fn validate(&self) -> Vec<String> {
        let mut errs = Vec::new();
        let brokers: Vec<&str> = self.brokers.split(',').map(str::trim).collect();
        if self.brokers.trim().is_empty() {
            errs.push(r#"source.kafka.brokers: "" is empty; expected e.g. "127.0.0.1:9092""#.to_owned());
        } else {
            for b in brokers {
                if let Some(why) = broker_problem(b) {
                    errs.push(format!("source.kafka.brokers: {b:?} {why}; expected e.g. \"127.0.0.1:9092\""));
                }
            }
        }
        if let Some(why) = topic_problem(&self.topic) {
            errs.push(format!("source.kafka.topic: {:?} {why}; expected e.g. \"bars\"", self.topic));
        }
        if self.group_id.trim().is_empty() {
            errs.push(format!("source.kafka.group-id: {:?} is empty; expected e.g. \"tickflow\"", self.group_id));
        }
        if StartPosition::parse(&self.start).is_none() {
            errs.push(format!(
                "source.kafka.start: {:?} is not a start position; expected \"earliest\", \"latest\" or \"committed\"",
                self.start
            ));
        }
        for (key, value, positive) in [
            ("idle-timeout", &self.idle_timeout, true),
            ("commit-interval", &self.commit_interval, false),
            ("connect-timeout", &self.connect_timeout, true),
        ] {
            match humantime::parse_duration(value.trim()) {
                Ok(d) if positive && d.is_zero() => {
                    errs.push(format!("source.kafka.{key}: {value:?} must be positive; expected e.g. \"5s\""))
                }
                Ok(_) => {}
                Err(e) => errs.push(format!(
                    "source.kafka.{key}: {value:?} is not a duration ({e}); expected e.g. \"250ms\", \"5s\", \"1m\""
                )),
            }
        }
        if self.max_batch == 0 || self.max_batch > MAX_BATCH_LIMIT {
            errs.push(format!(
                "source.kafka.max-batch: {} is outside 1..={MAX_BATCH_LIMIT}; expected e.g. 4096",
                self.max_batch
            ));
        }
        for (key, value) in &self.options {
            if RESERVED_OPTIONS.contains(&key.trim()) {
                errs.push(format!(
                    "source.kafka.options: {key:?} = {value:?} is set by tickflow and cannot be overridden; \
                     expected other librdkafka properties, e.g. {{ \"fetch.min.bytes\" = \"1\" }}"
                ));
            }
        }
        errs
    }

    /// The start position (`earliest` on an invalid value; call [`Self::validate`] first).
    pub fn start_position(&self) -> StartPosition {
        StartPosition::parse(&self.start).unwrap_or(StartPosition::Earliest)
    }

    /// `idle-timeout` (5 s on an invalid value; call [`Self::validate`] first).
    pub fn idle_timeout(&self) -> Duration {
        duration_or(&self.idle_timeout, Duration::from_secs(5))
    }

    /// `commit-interval` (5 s on an invalid value; call [`Self::validate`] first).
    pub fn commit_interval(&self) -> Duration {
        duration_or(&self.commit_interval, Duration::from_secs(5))
    }

    /// `connect-timeout` (30 s on an invalid value; call [`Self::validate`] first).
    pub fn connect_timeout(&self) -> Duration {
        duration_or(&self.connect_timeout, Duration::from_secs(30))
    }
}

fn duration_or(s: &str, fallback: Duration) -> Duration {
    humantime::parse_duration(s.trim()).unwrap_or(fallback)
}

/// Why `b` is not a `host:port` broker address, if it is not.
fn broker_problem(b: &str) -> Option<&'static str> {
    if b.is_empty() {
        return Some("is an empty list entry");
    }
    let Some((host, port)) = b.rsplit_once(':') else {
        return Some(if b.bytes().all(|c| c.is_ascii_digit()) { "has no host" } else { "has no port" });
    };
    if host.is_empty() || host == "[]" {
        return Some("has no host");
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => Some("has no valid port (1-65535)"),
        Ok(_) => None,
    }
}

/// Why `t` is not a legal Kafka topic name, if it is not.
fn topic_problem(t: &str) -> Option<&'static str> {
    if t.is_empty() {
        Some("is empty")
    } else if t == "." || t == ".." {
        Some("is not a legal topic name")
    } else if t.len() > 249 {
        Some("is longer than 249 characters")
    } else if !t.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-')) {
        Some("may only contain [A-Za-z0-9._-]")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> KafkaSourceConfig {
        toml::from_str(s).unwrap()
    }

    #[test]
    fn defaults_are_valid_and_documented_values() {
        let c = parse("");
        assert_eq!(c, KafkaSourceConfig::default());
        assert!(c.validate().is_empty());
        assert_eq!(c.brokers, "127.0.0.1:9092");
        assert_eq!((c.topic.as_str(), c.group_id.as_str()), ("bars", "tickflow"));
        assert_eq!(c.start_position(), StartPosition::Earliest);
        assert_eq!(c.idle_timeout(), Duration::from_secs(5));
        assert_eq!(c.max_batch, 4096);
        assert!(!c.stop_at_end);
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let e = toml::from_str::<KafkaSourceConfig>("topics = \"bars\"").unwrap_err().to_string();
        assert!(e.contains("unknown field `topics`"), "{e}");
    }

    #[test]
    fn every_problem_is_reported_with_key_value_and_example() {
        let c = parse(
            r#"brokers = "localhost:9092,:9093,host:0"
            topic = "bad topic"
            group-id = ""
            start = "beginning"
            idle-timeout = "soon"
            max-batch = 0
            commit-interval = "0s"
            connect-timeout = "0s"
            options = { "enable.auto.commit" = "true", "fetch.min.bytes" = "1" }"#,
        );
        let errs = c.validate();
        assert_eq!(
            errs,
            [
                r#"source.kafka.brokers: ":9093" has no host; expected e.g. "127.0.0.1:9092""#,
                r#"source.kafka.brokers: "host:0" has no valid port (1-65535); expected e.g. "127.0.0.1:9092""#,
                r#"source.kafka.topic: "bad topic" may only contain [A-Za-z0-9._-]; expected e.g. "bars""#,
                r#"source.kafka.group-id: "" is empty; expected e.g. "tickflow""#,
                r#"source.kafka.start: "beginning" is not a start position; expected "earliest", "latest" or "committed""#,
                r#"source.kafka.idle-timeout: "soon" is not a duration (expected number at 0); expected e.g. "250ms", "5s", "1m""#,
                r#"source.kafka.connect-timeout: "0s" must be positive; expected e.g. "5s""#,
                r#"source.kafka.max-batch: 0 is outside 1..=1048576; expected e.g. 4096"#,
                r#"source.kafka.options: "enable.auto.commit" = "true" is set by tickflow and cannot be overridden; expected other librdkafka properties, e.g. { "fetch.min.bytes" = "1" }"#,
            ]
        );
    }

    #[test]
    fn broker_lists_and_ports() {
        assert_eq!(broker_problem("127.0.0.1:9092"), None);
        assert_eq!(broker_problem("[::1]:9092"), None);
        assert_eq!(broker_problem("kafka-1.internal:19092"), None);
        assert_eq!(broker_problem("9092"), Some("has no host"));
        assert_eq!(broker_problem("localhost"), Some("has no port"));
        assert_eq!(broker_problem("h:99999"), Some("has no valid port (1-65535)"));
        let c = KafkaSourceConfig { brokers: "a:1, b:2".into(), ..Default::default() };
        assert!(c.validate().is_empty());
    }
}
