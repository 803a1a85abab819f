//! Errors at the Kafka source's boundary: building the consumer, reading metadata, committing.

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// What can go wrong setting up or finishing the Kafka source. Errors while running (a broker
/// going away, a failed fetch, a failed topic refresh) are retried and logged, not returned.
/// Configuration problems are found earlier, by [`super::KafkaSourceConfig::validate`].
#[derive(Debug, thiserror::Error)]
pub enum KafkaSourceError {
    /// `[source.kafka]` is invalid; one message per problem.
    #[error("{} problem(s) in [source.kafka]: {}", .0.len(), .0.join("; "))]
    Config(Vec<String>),
    /// librdkafka rejected the consumer configuration (e.g. an unknown `options` key).
    #[error("kafka: creating the consumer for {brokers} failed: {source}")]
    Client {
        /// `bootstrap.servers`.
        brokers: String,
        /// librdkafka's error.
        source: Box<KafkaError>,
    },
    /// The topic's (or, for a pattern, the topic list's) metadata could not be read within
    /// `connect-timeout`.
    #[error("kafka: reading metadata of topic {topic:?} from {brokers} failed: {source}")]
    Metadata {
        /// The topic.
        topic: String,
        /// `bootstrap.servers`.
        brokers: String,
        /// The last error seen.
        source: Box<KafkaError>,
    },
    /// The topic does not exist (or has no partitions).
    #[error(
        "kafka: topic {topic:?} does not exist on {brokers} or has no partitions \
         (create it, e.g. `scripts/tansu.sh topic {topic} 4`)"
    )]
    TopicNotFound {
        /// The topic.
        topic: String,
        /// `bootstrap.servers`.
        brokers: String,
    },
    /// The low/high watermarks of a partition could not be read.
    #[error("kafka: reading the watermarks of {topic}/{partition} failed: {source}")]
    Watermarks {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// librdkafka's error.
        source: Box<KafkaError>,
    },
    /// The group's committed offsets could not be read (`start = "committed"`).
    #[error("kafka: reading the committed offsets of group {group:?} on {topic:?} failed: {source}")]
    Committed {
        /// `group-id`.
        group: String,
        /// The topics (`a,b`, or `/pattern/`).
        topic: String,
        /// librdkafka's error.
        source: Box<KafkaError>,
    },
    /// Assigning the owned partitions failed.
    #[error("kafka: assigning partitions {} failed: {source}", .partitions.join(", "))]
    Assign {
        /// The partitions, `topic/partition`.
        partitions: Vec<String>,
        /// librdkafka's error.
        source: Box<KafkaError>,
    },
    /// Committing offsets failed.
    #[error("kafka: committing offsets to group {group:?} failed: {source}")]
    Commit {
        /// `group-id`.
        group: String,
        /// librdkafka's error.
        source: Box<KafkaError>,
    },
}

impl KafkaSourceError {
    /// Whether trying again later may succeed (the broker was unreachable or busy), as opposed
    /// to a problem that needs a change (configuration, a missing topic).
    pub fn is_retryable(&self) -> bool {
        match self {
            KafkaSourceError::Config(_) | KafkaSourceError::Client { .. } | KafkaSourceError::TopicNotFound { .. } => {
                false
            }
            KafkaSourceError::Metadata { source, .. }
            | KafkaSourceError::Watermarks { source, .. }
            | KafkaSourceError::Committed { source, .. }
            | KafkaSourceError::Assign { source, .. }
            | KafkaSourceError::Commit { source, .. } => is_retryable(source),
        }
    }
}

/// Transport-level and "try again" broker errors; everything else needs a change.
pub(crate) fn is_retryable(e: &KafkaError) -> bool {
    use RDKafkaErrorCode as C;
    let code = match e {
        KafkaError::MetadataFetch(c)
        | KafkaError::OffsetFetch(c)
        | KafkaError::ConsumerCommit(c)
        | KafkaError::MessageConsumption(c)
        | KafkaError::Global(c) => *c,
        _ => return false,
    };
    matches!(
        code,
        C::BrokerTransportFailure
            | C::AllBrokersDown
            | C::OperationTimedOut
            | C::RequestTimedOut
            | C::Resolve
            | C::LeaderNotAvailable
            | C::NotLeaderForPartition
            | C::CoordinatorLoadInProgress
            | C::CoordinatorNotAvailable
            | C::NotCoordinator
            | C::NetworkException
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_failures_are_retryable_config_problems_are_not() {
        let down = KafkaError::MetadataFetch(RDKafkaErrorCode::AllBrokersDown);
        let e = KafkaSourceError::Metadata { topic: "bars".into(), brokers: "h:1".into(), source: Box::new(down) };
        assert!(e.is_retryable());
        let e = KafkaSourceError::TopicNotFound { topic: "bars".into(), brokers: "h:1".into() };
        assert!(!e.is_retryable());
        assert_eq!(
            e.to_string(),
            "kafka: topic \"bars\" does not exist on h:1 or has no partitions \
             (create it, e.g. `scripts/tansu.sh topic bars 4`)"
        );
        let auth = KafkaError::MetadataFetch(RDKafkaErrorCode::TopicAuthorizationFailed);
        assert!(!is_retryable(&auth));
    }
}
