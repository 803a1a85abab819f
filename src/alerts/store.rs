//! The rules topic: a compacted Kafka topic keyed by rule id (value = the rule's JSON, a
//! tombstone = deleted). Every process reads it fully into a [`RuleMirror`]; any process
//! writes to it. So every process of the cluster, and a restarted cluster, sees the same rules.
//!
//! Create the topic compacted, e.g. `kafka-topics --create --topic tickflow-rules
//! --config cleanup.policy=compact`.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, DefaultConsumerContext};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, ProducerContext};
use rdkafka::{Offset, TopicPartitionList};

use super::config::AlertsConfig;
use super::rule::RuleDef;

/// How long a write waits for the broker's acknowledgement and for the mirror to catch up.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// A failed rules-topic operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The Kafka client failed (creating, metadata, producing).
    #[error("rules topic {topic}: {what}: {message}")]
    Kafka {
        /// The topic.
        topic: String,
        /// What was being done.
        what: &'static str,
        /// librdkafka's message.
        message: String,
    },
    /// The broker did not acknowledge (or the mirror did not see) a write in time.
    #[error("rules topic {topic}: {what} not done within {timeout:?}")]
    Timeout {
        /// The topic.
        topic: String,
        /// What was being waited for.
        what: &'static str,
        /// The bound.
        timeout: Duration,
    },
}

/// The current rules, as read from the topic. Cheap to read; `version` changes with every
/// applied record.
#[derive(Debug, Default)]
pub struct RuleMirror {
    rules: RwLock<BTreeMap<String, RuleDef>>,
    version: AtomicU64,
    positions: Mutex<HashMap<i32, i64>>,
    invalid: AtomicU64,
}

impl RuleMirror {
    /// An empty mirror.
    pub fn new() -> Arc<RuleMirror> {
        Arc::new(RuleMirror::default())
    }

    /// Every rule, by id.
    pub fn list(&self) -> Vec<RuleDef> {
        // A poisoned lock only means a reader panicked; the map itself is still consistent.
        self.rules.read().unwrap_or_else(|e| e.into_inner()).values().cloned().collect()
    }

    /// One rule.
    pub fn get(&self, id: &str) -> Option<RuleDef> {
        self.rules.read().unwrap_or_else(|e| e.into_inner()).get(id).cloned()
    }

    /// Changes whenever a record was applied.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Records in the topic that were not valid rule JSON (skipped).
    pub fn invalid(&self) -> u64 {
        self.invalid.load(Ordering::Relaxed)
    }

    /// Applies one record of the topic: a rule, or a tombstone (`None`).
    pub fn apply(&self, key: &str, payload: Option<&[u8]>) {
        let mut rules = self.rules.write().unwrap_or_else(|e| e.into_inner());
        match payload.map(serde_json::from_slice::<RuleDef>) {
            None => {
                rules.remove(key);
            }
            Some(Ok(rule)) if rule.id == key => {
                rules.insert(key.to_string(), rule);
            }
            Some(Ok(rule)) => {
                self.invalid.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(key, id = %rule.id, "rules topic: key and rule id differ; record skipped");
            }
            Some(Err(error)) => {
                self.invalid.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(key, %error, "rules topic: record is not a rule; skipped");
            }
        }
        self.version.fetch_add(1, Ordering::AcqRel);
    }

    fn advance(&self, partition: i32, next: i64) {
        let mut p = self.positions.lock().unwrap_or_else(|e| e.into_inner());
        let e = p.entry(partition).or_insert(0);
        *e = (*e).max(next);
    }

    fn position(&self, partition: i32) -> i64 {
        self.positions.lock().unwrap_or_else(|e| e.into_inner()).get(&partition).copied().unwrap_or(0)
    }
}

type Ack = crossbeam_channel::Sender<Result<(i32, i64), String>>;

/// Hands each delivery report to the writer waiting for it.
struct Acks;
impl ClientContext for Acks {}
impl ProducerContext for Acks {
    type DeliveryOpaque = Box<Ack>;
    fn delivery(&self, result: &DeliveryResult<'_>, ack: Box<Ack>) {
        let r = match result {
            Ok(m) => Ok((m.partition(), m.offset())),
            Err((e, _)) => Err(e.to_string()),
        };
        let _ = ack.send(r); // the writer may have timed out and left
    }
}

/// Writes rules to the topic and keeps a [`RuleMirror`] of it up to date on a thread.
pub struct RuleStore {
    topic: String,
    producer: Mutex<BaseProducer<Acks>>,
    mirror: Arc<RuleMirror>,
    stop: Arc<AtomicBool>,
    reader: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for RuleStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleStore").field("topic", &self.topic).finish_non_exhaustive()
    }
}

impl RuleStore {
    /// Connects, assigns every partition of the rules topic from the beginning, and starts
    /// the mirror thread. Fails when the topic does not exist.
    pub fn start(cfg: &AlertsConfig) -> Result<RuleStore, StoreError> {
        let topic = cfg.rules_topic.clone();
        let err = |what: &'static str| {
            let topic = topic.clone();
            move |e: rdkafka::error::KafkaError| StoreError::Kafka { topic, what, message: e.to_string() }
        };
        let producer: BaseProducer<Acks> = ClientConfig::new()
            .set("bootstrap.servers", &cfg.brokers)
            .set("enable.idempotence", "false")
            .set("linger.ms", "0")
            .set("message.timeout.ms", "10000")
            .create_with_context(Acks)
            .map_err(err("creating the producer"))?;
        let consumer: BaseConsumer<DefaultConsumerContext> = ClientConfig::new()
            .set("bootstrap.servers", &cfg.brokers)
            .set("group.id", "tickflow-rules-mirror")
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .create()
            .map_err(err("creating the consumer"))?;
        let md = consumer.fetch_metadata(Some(&topic), Duration::from_secs(10)).map_err(err("metadata"))?;
        let partitions: Vec<i32> = md
            .topics()
            .iter()
            .filter(|t| t.name() == topic)
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        if partitions.is_empty() {
            return Err(StoreError::Kafka {
                topic: topic.clone(),
                what: "metadata",
                message: "the topic does not exist or has no partitions; create it (compacted)".into(),
            });
        }
        let mut tpl = TopicPartitionList::new();
        for p in &partitions {
            tpl.add_partition_offset(&topic, *p, Offset::Beginning).map_err(err("assign"))?;
        }
        consumer.assign(&tpl).map_err(err("assign"))?;
        let mirror = RuleMirror::new();
        let stop = Arc::new(AtomicBool::new(false));
        let (m, s, t) = (mirror.clone(), stop.clone(), topic.clone());
        let reader = std::thread::Builder::new()
            .name("tickflow-rules".into())
            .spawn(move || read_loop(consumer, &t, &m, &s))
            .map_err(|e| StoreError::Kafka {
                topic: topic.clone(),
                what: "spawning the reader",
                message: e.to_string(),
            })?;
        tracing::info!(%topic, partitions = partitions.len(), "rules mirror reading");
        // The rules stored before the start must be in the mirror before any bar is
        // evaluated: otherwise a (re)started cluster catching up on a backlog would evaluate
        // it without them and miss its alerts. The high watermarks read now bound what is
        // stored; the mirror waits (bounded) until it has read that far.
        let probe: Option<BaseConsumer<DefaultConsumerContext>> =
            ClientConfig::new().set("bootstrap.servers", &cfg.brokers).create().ok();
        let ends: Vec<(i32, i64)> = partitions
            .iter()
            .filter_map(|&p| {
                let (low, high) = probe.as_ref()?.fetch_watermarks(&topic, p, Duration::from_secs(5)).ok()?;
                Some((p, high.max(low)))
            })
            .collect();
        let deadline = Instant::now() + WRITE_TIMEOUT;
        while ends.iter().any(|&(p, high)| high > 0 && mirror.position(p) < high) {
            if Instant::now() >= deadline {
                tracing::warn!(%topic, "rules mirror: not caught up with the topic after 10 s; rules may apply late");
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(RuleStore { topic, producer: Mutex::new(producer), mirror, stop, reader: Some(reader) })
    }

    /// The mirror of the topic.
    pub fn mirror(&self) -> Arc<RuleMirror> {
        self.mirror.clone()
    }

    /// Writes (adds or replaces) `rule`; returns once the mirror has it.
    pub fn put(&self, rule: &RuleDef) -> Result<(), StoreError> {
        // A RuleDef is plain strings: serializing cannot fail.
        let json = serde_json::to_vec(rule).expect("RuleDef serializes");
        self.write(&rule.id, Some(&json))
    }

    /// Deletes rule `id` (a tombstone); returns once the mirror no longer has it.
    pub fn delete(&self, id: &str) -> Result<(), StoreError> {
        self.write(id, None)
    }

    fn write(&self, key: &str, payload: Option<&[u8]>) -> Result<(), StoreError> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let deadline = Instant::now() + WRITE_TIMEOUT;
        let timeout = |what| StoreError::Timeout { topic: self.topic.clone(), what, timeout: WRITE_TIMEOUT };
        {
            let producer = self.producer.lock().unwrap_or_else(|e| e.into_inner());
            let mut record = BaseRecord::with_opaque_to(&self.topic, Box::new(tx)).key(key);
            if let Some(p) = payload {
                record = record.payload(p);
            }
            producer.send(record).map_err(|(e, _)| StoreError::Kafka {
                topic: self.topic.clone(),
                what: "producing",
                message: e.to_string(),
            })?;
            loop {
                producer.poll(Duration::from_millis(20));
                match rx.try_recv() {
                    Ok(r) => break r,
                    Err(_) if Instant::now() < deadline => continue,
                    Err(_) => return Err(timeout("delivery")),
                }
            }
        }
        .map_err(|message| StoreError::Kafka { topic: self.topic.clone(), what: "delivery", message })
        .and_then(|(partition, offset)| {
            while self.mirror.position(partition) <= offset {
                if Instant::now() >= deadline {
                    return Err(timeout("mirror catch-up"));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Ok(())
        })
    }
}

impl Drop for RuleStore {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

fn read_loop(consumer: BaseConsumer, topic: &str, mirror: &RuleMirror, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Ok(m)) => {
                match m.key().map(std::str::from_utf8) {
                    Some(Ok(key)) => mirror.apply(key, m.payload()),
                    _ => {
                        mirror.invalid.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(topic, offset = m.offset(), "rules topic: record without a UTF-8 key; skipped");
                    }
                }
                mirror.advance(m.partition(), m.offset() + 1);
            }
            Some(Err(error)) => tracing::warn!(topic, %error, "rules topic: read failed; retrying"),
        }
    }
}
