//! `[source.kafka]`: which topics, where to start, and how the watermark treats idleness.
//!
//! Parse (serde, [`KafkaSourceConfig`]) → [`KafkaSourceConfig::validate`] (every problem at
//! once, each naming the key `source.kafka.<key>`, the bad value and a good example) → a typed
//! [`KafkaSpec`] (durations, the start position, the compiled pattern) that the runtime uses
//! as it is; nothing is parsed again, nothing falls back to a default later.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::kafka::target::{broker_problem, topic_problem};

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
/// use tickflow::sources::kafka::{KafkaSourceConfig, TopicSelection};
/// let cfg: KafkaSourceConfig = toml::from_str(r#"brokers = "127.0.0.1:9092"
/// topic-pattern = "^bars\\."
/// topic-refresh = "30s"
/// start = "earliest"
/// idle-timeout = "5s"
/// options = { "fetch.min.bytes" = "1" }"#).unwrap();
/// let spec = cfg.validate().unwrap();
/// assert!(matches!(&spec.topics, TopicSelection::Pattern { regex, .. } if regex.is_match("bars.crypto")));
/// let bad: KafkaSourceConfig = toml::from_str(r#"brokers = "9092""#).unwrap();
/// assert_eq!(
///     bad.validate().unwrap_err(),
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
    /// [`crate::decode::decode_json_line`] accepts), keyed by symbol. At most one of `topic`,
    /// `topics` and `topic-pattern` may be set; with none of them the topic is `"bars"`.
    #[serde(default)]
    pub topic: Option<String>,
    /// Several topics of bars, e.g. one per symbol (`["BTCIRT", "ETHIRT"]`) or per exchange.
    /// Every one must exist at start.
    #[serde(default)]
    pub topics: Option<Vec<String>>,
    /// Every topic whose name matches this regular expression (Rust `regex` syntax, matched
    /// anywhere in the name unless anchored: `"^bars\\."`), except internal topics (`__...`).
    /// Matching nothing at start is a warning: topics created later are picked up.
    #[serde(default)]
    pub topic_pattern: Option<String>,
    /// With `topic-pattern`: how often the brokers' topic list is read again; new matching
    /// topics (and new partitions of matching topics) are read from `earliest` without a
    /// restart. Not used with `topic`/`topics`, nor with `stop-at-end` (a back-fill reads the
    /// topics that match at start).
    #[serde(default = "default_topic_refresh")]
    pub topic_refresh: String,
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
    /// How long to keep trying to reach the brokers and read the topics' metadata at start.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: String,
    /// librdkafka consumer properties passed through as they are, e.g.
    /// `{ "fetch.min.bytes" = "1", "statistics.interval.ms" = "5000" }`. The keys in
    /// [`RESERVED_OPTIONS`] are set by tickflow and rejected here.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

/// The topic read when none of `topic`, `topics` and `topic-pattern` is given.
pub const DEFAULT_TOPIC: &str = "bars";

fn default_brokers() -> String {
    "127.0.0.1:9092".into()
}
fn default_topic_refresh() -> String {
    "1m".into()
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
            topic: None,
            topics: None,
            topic_pattern: None,
            topic_refresh: default_topic_refresh(),
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

/// Which topics the source reads, checked.
#[derive(Clone, Debug)]
pub enum TopicSelection {
    /// These topics (one from `topic`, or `topics` in configured order, duplicates removed);
    /// each must exist at start.
    Topics(Vec<String>),
    /// Every non-internal topic matching `regex`, the brokers' list read again every `refresh`.
    Pattern {
        /// The compiled `topic-pattern`.
        regex: Regex,
        /// `topic-refresh`.
        refresh: Duration,
    },
}

impl TopicSelection {
    /// Whether a topic named `name` is selected.
    pub fn selects(&self, name: &str) -> bool {
        match self {
            TopicSelection::Topics(t) => t.iter().any(|t| t == name),
            TopicSelection::Pattern { regex, .. } => !name.starts_with("__") && regex.is_match(name),
        }
    }
}

impl fmt::Display for TopicSelection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TopicSelection::Topics(t) => f.write_str(&t.join(",")),
            TopicSelection::Pattern { regex, .. } => write!(f, "/{}/", regex.as_str()),
        }
    }
}

/// `[source.kafka]`, validated: what the source runs with.
#[derive(Clone, Debug)]
pub struct KafkaSpec {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// `topic`, `topics` or `topic-pattern`.
    pub topics: TopicSelection,
    /// `group-id`.
    pub group_id: String,
    /// `start`.
    pub start: StartPosition,
    /// `idle-timeout` (positive).
    pub idle_timeout: Duration,
    /// `max-batch` (1..=[`MAX_BATCH_LIMIT`]).
    pub max_batch: usize,
    /// `stop-at-end`.
    pub stop_at_end: bool,
    /// `commit-interval`.
    pub commit_interval: Duration,
    /// `connect-timeout` (positive).
    pub connect_timeout: Duration,
    /// `options`, none of them reserved.
    pub options: BTreeMap<String, String>,
}

impl KafkaSpec {
    /// The default section for `brokers` reading `topic` (tests, tools).
    pub fn for_topic(brokers: &str, topic: &str) -> KafkaSpec {
        let cfg =
            KafkaSourceConfig { brokers: brokers.to_owned(), topic: Some(topic.to_owned()), ..Default::default() };
        // The defaults are valid (a unit test says so); only the two strings can be bad.
        match cfg.validate() {
            Ok(spec) => spec,
            Err(errs) => panic!("KafkaSpec::for_topic({brokers:?}, {topic:?}): {}", errs.join("; ")),
        }
    }
}

/// Largest accepted `max-batch`: one activation should stay well under a millisecond-ish slice.
pub const MAX_BATCH_LIMIT: usize = 1 << 20;

impl KafkaSourceConfig {
    /// The typed section, or every problem in it, one message each.
    pub fn validate(&self) -> Result<KafkaSpec, Vec<String>> {
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
        let topics = self.topic_selection(&mut errs);
        if self.group_id.trim().is_empty() {
            errs.push(format!("source.kafka.group-id: {:?} is empty; expected e.g. \"tickflow\"", self.group_id));
        }
        let start = StartPosition::parse(&self.start);
        if start.is_none() {
            errs.push(format!(
                "source.kafka.start: {:?} is not a start position; expected \"earliest\", \"latest\" or \"committed\"",
                self.start
            ));
        }
        let mut duration = |key: &str, value: &str, positive: bool| match humantime::parse_duration(value.trim()) {
            Ok(d) if positive && d.is_zero() => {
                errs.push(format!("source.kafka.{key}: {value:?} must be positive; expected e.g. \"5s\""));
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                errs.push(format!(
                    "source.kafka.{key}: {value:?} is not a duration ({e}); expected e.g. \"250ms\", \"5s\", \"1m\""
                ));
                None
            }
        };
        let idle_timeout = duration("idle-timeout", &self.idle_timeout, true);
        let commit_interval = duration("commit-interval", &self.commit_interval, false);
        let connect_timeout = duration("connect-timeout", &self.connect_timeout, true);
        let refresh = duration("topic-refresh", &self.topic_refresh, true);
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
        match (topics, start, idle_timeout, commit_interval, connect_timeout, refresh) {
            (Some(topics), Some(start), Some(idle_timeout), Some(commit_interval), Some(connect_timeout), Some(r))
                if errs.is_empty() =>
            {
                let topics = match topics {
                    Selected::Topics(t) => TopicSelection::Topics(t),
                    Selected::Pattern(regex) => TopicSelection::Pattern { regex, refresh: r },
                };
                Ok(KafkaSpec {
                    brokers: self.brokers.clone(),
                    topics,
                    group_id: self.group_id.clone(),
                    start,
                    idle_timeout,
                    max_batch: self.max_batch,
                    stop_at_end: self.stop_at_end,
                    commit_interval,
                    connect_timeout,
                    options: self.options.iter().map(|(k, v)| (k.trim().to_owned(), v.clone())).collect(),
                })
            }
            _ => Err(errs),
        }
    }

    /// `topic`, `topics` or `topic-pattern` (exactly one of them, or none: [`DEFAULT_TOPIC`]).
    fn topic_selection(&self, errs: &mut Vec<String>) -> Option<Selected> {
        let given: Vec<&str> = [
            self.topic.as_ref().map(|_| "topic"),
            self.topics.as_ref().map(|_| "topics"),
            self.topic_pattern.as_ref().map(|_| "topic-pattern"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if given.len() > 1 {
            errs.push(format!(
                "source.kafka: {} are all set; set exactly one, e.g. topics = [\"bars.nasdaq\", \"bars.crypto\"]",
                given.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(" and ")
            ));
            return None;
        }
        let check = |key: &str, t: &str, errs: &mut Vec<String>| match topic_problem(t) {
            Some(why) => {
                errs.push(format!("source.kafka.{key}: {t:?} {why}; expected e.g. \"bars\""));
                false
            }
            None => true,
        };
        if let Some(p) = &self.topic_pattern {
            if p.trim().is_empty() {
                errs.push(format!("source.kafka.topic-pattern: {p:?} is empty; expected e.g. \"^bars\\\\.\""));
                return None;
            }
            return match Regex::new(p) {
                Ok(re) => Some(Selected::Pattern(re)),
                Err(e) => {
                    // The regex crate's message spans lines (it draws the position); keep one.
                    let why = e.to_string().lines().last().unwrap_or("invalid").trim().to_owned();
                    errs.push(format!(
                        "source.kafka.topic-pattern: {p:?} is not a regular expression ({why}); expected e.g. \"^bars\\\\.\""
                    ));
                    None
                }
            };
        }
        if let Some(list) = &self.topics {
            if list.is_empty() {
                errs.push("source.kafka.topics: [] is empty; expected e.g. [\"bars.nasdaq\", \"bars.crypto\"]".into());
                return None;
            }
            let mut out: Vec<String> = Vec::with_capacity(list.len());
            let mut ok = true;
            for t in list {
                ok &= check("topics", t, errs);
                if !out.contains(t) {
                    out.push(t.clone());
                }
            }
            return ok.then_some(Selected::Topics(out));
        }
        let t = self.topic.as_deref().unwrap_or(DEFAULT_TOPIC);
        check("topic", t, errs).then(|| Selected::Topics(vec![t.to_owned()]))
    }
}

/// A topic selection before `topic-refresh` is known.
enum Selected {
    Topics(Vec<String>),
    Pattern(Regex),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::target::broker_problem;

    fn parse(s: &str) -> KafkaSourceConfig {
        toml::from_str(s).unwrap()
    }

    fn topics(s: &str) -> TopicSelection {
        parse(s).validate().unwrap().topics
    }

    #[test]
    fn defaults_are_valid_and_documented_values() {
        let c = parse("");
        assert_eq!(c, KafkaSourceConfig::default());
        let s = c.validate().unwrap();
        assert_eq!(s.brokers, "127.0.0.1:9092");
        assert!(matches!(&s.topics, TopicSelection::Topics(t) if t == &["bars"]));
        assert_eq!(s.group_id, "tickflow");
        assert_eq!(s.start, StartPosition::Earliest);
        assert_eq!(s.idle_timeout, Duration::from_secs(5));
        assert_eq!(s.commit_interval, Duration::from_secs(5));
        assert_eq!(s.connect_timeout, Duration::from_secs(30));
        assert_eq!(s.max_batch, 4096);
        assert!(!s.stop_at_end);
        assert_eq!(KafkaSpec::for_topic("h:1", "t").brokers, "h:1");
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let e = toml::from_str::<KafkaSourceConfig>("topik = \"bars\"").unwrap_err().to_string();
        assert!(e.contains("unknown field `topik`"), "{e}");
    }

    #[test]
    fn the_three_topic_forms() {
        assert!(matches!(topics("topic = \"BTCIRT\""), TopicSelection::Topics(t) if t == ["BTCIRT"]));
        // Configured order is kept (it decides the assignment), duplicates are dropped.
        let t = topics("topics = [\"b\", \"a\", \"b\"]");
        assert!(matches!(&t, TopicSelection::Topics(t) if t == &["b", "a"]), "{t:?}");
        assert!(t.selects("a") && !t.selects("c"));
        let p = topics("topic-pattern = '^bars\\.'\ntopic-refresh = \"250ms\"");
        let TopicSelection::Pattern { regex, refresh } = &p else { panic!("{p:?}") };
        assert_eq!((regex.as_str(), *refresh), ("^bars\\.", Duration::from_millis(250)));
        assert!(p.selects("bars.crypto") && !p.selects("xbars.crypto") && !p.selects("bars"));
        assert_eq!(p.to_string(), "/^bars\\./");
        // Unanchored: anywhere in the name; internal topics never.
        let any = topics("topic-pattern = 'IRT'");
        assert!(any.selects("BTCIRT") && !any.selects("__IRT_offsets"));
        assert!(matches!(topics(""), TopicSelection::Topics(t) if t == [DEFAULT_TOPIC]));
        let d = topics("topic-pattern = 'x'");
        assert!(matches!(d, TopicSelection::Pattern { refresh, .. } if refresh == Duration::from_secs(60)));
    }

    #[test]
    fn topic_forms_are_checked_and_exclusive() {
        let errs = |s: &str| parse(s).validate().unwrap_err();
        assert_eq!(
            errs("topic = \"a\"\ntopics = [\"b\"]\ntopic-pattern = \"c\""),
            ["source.kafka: `topic` and `topics` and `topic-pattern` are all set; set exactly one, \
              e.g. topics = [\"bars.nasdaq\", \"bars.crypto\"]"]
        );
        assert_eq!(
            errs("topics = [\"ok\", \"not ok\"]"),
            [r#"source.kafka.topics: "not ok" may only contain [A-Za-z0-9._-]; expected e.g. "bars""#]
        );
        assert_eq!(
            errs("topics = []"),
            [r#"source.kafka.topics: [] is empty; expected e.g. ["bars.nasdaq", "bars.crypto"]"#]
        );
        assert_eq!(
            errs("topic-pattern = \"^bars(\""),
            [
                r#"source.kafka.topic-pattern: "^bars(" is not a regular expression (error: unclosed group); expected e.g. "^bars\\.""#
            ]
        );
        assert_eq!(
            errs("topic-pattern = \"x\"\ntopic-refresh = \"0s\""),
            [r#"source.kafka.topic-refresh: "0s" must be positive; expected e.g. "5s""#]
        );
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
        let errs = c.validate().unwrap_err();
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
        assert!(c.validate().is_ok());
    }
}
