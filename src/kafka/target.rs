//! Where a Kafka client connects and writes, checked once for every config section that
//! names brokers or topics (`[gateway]`, `[nobitex]`, `[alphavantage]`, `tickflow
//! generate --kafka`, `[alerts]`, and the Kafka source through [`broker_problem`] and
//! [`topic_problem`]). Each message names the key, the bad entry, why, and a good example.

/// The example every broker message ends with.
const BROKERS_EXAMPLE: &str = "127.0.0.1:9092";

/// Why one entry of a bootstrap list is not `host:port` with a port in 1-65535, if it is not.
///
/// ```
/// use tickflow::kafka::target::broker_problem;
/// assert_eq!(broker_problem("kafka-1:9092"), None);
/// assert_eq!(broker_problem("[::1]:9092"), None);
/// assert_eq!(broker_problem("kafka"), Some("has no port"));
/// assert_eq!(broker_problem("9092"), Some("has no host"));
/// assert_eq!(broker_problem("kafka:x"), Some("has no valid port (1-65535)"));
/// ```
pub fn broker_problem(b: &str) -> Option<&'static str> {
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

/// Every problem of the comma-separated bootstrap list `brokers` at config key `key`, one
/// message per bad entry; empty when usable.
///
/// ```
/// use tickflow::kafka::target::validate_brokers;
/// assert!(validate_brokers("gateway.brokers", "k1:9092, k2:9092").is_empty());
/// assert_eq!(
///     validate_brokers("alerts.brokers", "k1:9092,k2"),
///     ["alerts.brokers: \"k2\" has no port; expected e.g. \"127.0.0.1:9092\""]
/// );
/// ```
pub fn validate_brokers(key: &str, brokers: &str) -> Vec<String> {
    if brokers.trim().is_empty() {
        return vec![format!("{key}: {brokers:?} is empty; expected e.g. {BROKERS_EXAMPLE:?}")];
    }
    brokers
        .split(',')
        .map(str::trim)
        .filter_map(|b| broker_problem(b).map(|why| format!("{key}: {b:?} {why}; expected e.g. {BROKERS_EXAMPLE:?}")))
        .collect()
}

/// Why `t` is not a legal Kafka topic name, if it is not.
pub fn topic_problem(t: &str) -> Option<&'static str> {
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

/// The message for topic `t` at `key` when it is not a legal name.
pub fn validate_topic(key: &str, t: &str, example: &str) -> Option<String> {
    topic_problem(t).map(|why| format!("{key}: {t:?} {why}; expected e.g. {example:?}"))
}

/// Checks where a producer writes — brokers, the bars topic and the dead-letter topic — for
/// the config section `section` (`gateway`, `nobitex`, …); one message per problem.
///
/// ```
/// use tickflow::kafka::target::validate_kafka_target;
/// assert!(validate_kafka_target("gateway", "k:9092", "bars", "bars.dlq").is_empty());
/// assert_eq!(
///     validate_kafka_target("nobitex", "k:0", "bars", "bars"),
///     [
///         "nobitex.brokers: \"k:0\" has no valid port (1-65535); expected e.g. \"127.0.0.1:9092\"",
///         "nobitex.dead-letter-topic: \"bars\" is the same as nobitex.topic; expected e.g. \"bars.dlq\"",
///     ]
/// );
/// ```
pub fn validate_kafka_target(section: &str, brokers: &str, topic: &str, dead_letter_topic: &str) -> Vec<String> {
    let mut errs = validate_brokers(&format!("{section}.brokers"), brokers);
    for (key, t, example) in [("topic", topic, "bars"), ("dead-letter-topic", dead_letter_topic, "bars.dlq")] {
        errs.extend(validate_topic(&format!("{section}.{key}"), t, example));
    }
    if topic == dead_letter_topic {
        errs.push(format!(
            "{section}.dead-letter-topic: {dead_letter_topic:?} is the same as {section}.topic; expected e.g. \"{topic}.dlq\""
        ));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_entry_is_named() {
        assert_eq!(
            validate_brokers("x.brokers", "a:1,,b:65536, c:9092 ,:9"),
            [
                "x.brokers: \"\" is an empty list entry; expected e.g. \"127.0.0.1:9092\"",
                "x.brokers: \"b:65536\" has no valid port (1-65535); expected e.g. \"127.0.0.1:9092\"",
                "x.brokers: \":9\" has no host; expected e.g. \"127.0.0.1:9092\"",
            ]
        );
        assert_eq!(validate_brokers("x.brokers", " "), ["x.brokers: \" \" is empty; expected e.g. \"127.0.0.1:9092\""]);
        assert_eq!(
            validate_kafka_target("g", "a:1", "bad topic", ""),
            [
                "g.topic: \"bad topic\" may only contain [A-Za-z0-9._-]; expected e.g. \"bars\"",
                "g.dead-letter-topic: \"\" is empty; expected e.g. \"bars.dlq\"",
            ]
        );
        assert_eq!(topic_problem(&"t".repeat(250)), Some("is longer than 249 characters"));
        assert_eq!(topic_problem(".."), Some("is not a legal topic name"));
    }
}
