//! The bars producer of the gateway and the connectors: an idempotent producer (acks=all)
//! whose deliveries are counted per request (or batch), a bounded reservation of queue space, and a broker probe.
//!
//! A request first reserves one permit per record it will produce ([`Producer::reserve`]);
//! when the permits run out the request is answered `503` at once, so the producer's queue
//! never holds more than `queue-capacity` records and is never unbounded. The permits live
//! in the request's [`Batch`] and return only when librdkafka has reported the last of its
//! records, so a request that timed out still counts against the bound until then.
//! Deliveries arrive on the producer's polling thread and are counted in the batch
//! (atomics); the last one wakes the waiting request.
//!
//! A producer can break in ways it does not recover from by itself: its producer id fenced
//! or forgotten by a restarted broker (`UnknownProducerId`, `OutOfOrderSequenceNumber`), a
//! fatal error, or records that time out (`MessageTimedOut`) while the broker answers
//! metadata requests. Any of these marks the producer broken, [`BrokerHealth`] down (so
//! `/ready` says so), and the next [`Producer::probe`] replaces it; a broker that was
//! unreachable for longer than the message timeout also gets a fresh producer when it comes
//! back. Reports of a replaced producer still settle their requests but no longer move the
//! health. Each record's outcome is kept by its slot, so a `503` names exactly the records
//! that were not acknowledged.
//!
//! Keys are symbols and the partitioner is `murmur2_random`, the Java client's default, so
//! every producer in the system (Java, librdkafka, this one) puts a symbol on the same
//! partition.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseRecord, Producer as _, ProducerContext, ThreadedProducer};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

/// The producer could not be created, or did not flush.
#[derive(Debug, thiserror::Error)]
pub enum ProducerError {
    /// The Kafka producer could not be created (bad client config).
    #[error("cannot create Kafka producer for {brokers}: {source}")]
    Create {
        /// The bootstrap servers.
        brokers: String,
        /// librdkafka's error.
        source: KafkaError,
    },
    /// Records were still queued for the broker when the flush gave up.
    #[error("shutdown flush failed, records may be unacknowledged: {0}")]
    Flush(KafkaError),
}

/// librdkafka settings shared by every bars producer: the gateway, the connectors and
/// `tickflow generate --to kafka://`.
pub fn kafka_config(brokers: &str, message_timeout: Duration, linger: Duration, max_messages: usize) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("partitioner", "murmur2_random")
        .set("compression.type", "none")
        .set("message.timeout.ms", message_timeout.as_millis().max(1).to_string())
        .set("linger.ms", linger.as_millis().to_string())
        .set("queue.buffering.max.messages", max_messages.clamp(1, 10_000_000).to_string())
        .set("queue.buffering.max.kbytes", "1048576")
        .set("socket.connection.setup.timeout.ms", "3000")
        .set("reconnect.backoff.max.ms", "1000")
        .set("log_level", "3");
    c
}

/// Tracks the broker's reachability: set by the probe and by delivery outcomes.
#[derive(Debug, Default)]
pub struct BrokerHealth {
    up: AtomicBool,
    /// Set when a delivery failed in a way the producer cannot recover from by itself (its
    /// producer id was fenced or forgotten, records time out): the probe then replaces it.
    needs_new_producer: AtomicBool,
    /// The current producer's generation; reports of older ones leave the health alone.
    generation: AtomicU64,
    reason: Mutex<String>,
    /// Since when the probe has failed (reset when it succeeds).
    down_since: Mutex<Option<Instant>>,
    /// librdkafka's repeated log lines, held back across producer generations.
    repeats: crate::logs::Repeats,
}

impl BrokerHealth {
    /// Whether the last probe or delivery reached the broker.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Why it is down ("" when up).
    pub fn reason(&self) -> String {
        self.reason.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Whether the current producer is marked for replacement.
    pub fn producer_broken(&self) -> bool {
        self.needs_new_producer.load(Ordering::Relaxed)
    }

    fn set(&self, up: bool, reason: &str) {
        let was = self.up.swap(up, Ordering::Relaxed);
        if was != up {
            if up {
                tracing::info!("kafka broker reachable again");
            } else {
                tracing::warn!(%reason, "kafka broker unreachable; answering 503 until it is back");
            }
        }
        if let Ok(mut r) = self.reason.lock() {
            if *r != reason {
                r.clear();
                r.push_str(reason);
            }
        }
    }
}

/// What a failed delivery says about the producer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Failure {
    /// Only this record is bad (too large, invalid): the producer is fine.
    Record,
    /// The producer cannot recover by itself: replace it.
    Broken,
    /// The broker did not take it (unreachable, leader moving): down until a probe succeeds.
    Broker,
}

fn classify(e: &KafkaError) -> Failure {
    use rdkafka::types::RDKafkaErrorCode as C;
    match e.rdkafka_error_code() {
        Some(
            C::ProducerFenced
            | C::InvalidProducerEpoch
            | C::UnknownProducerId
            | C::OutOfOrderSequenceNumber
            | C::InvalidProducerIdMapping
            | C::Fatal
            | C::MessageTimedOut
            | C::Inconsistent,
        ) => Failure::Broken,
        Some(
            C::MessageSizeTooLarge
            | C::InvalidMessageSize
            | C::InvalidMessage
            | C::InvalidRecord
            | C::BadMessage
            | C::InvalidArgument
            | C::PurgeQueue
            | C::PurgeInflight,
        ) => Failure::Record,
        _ => Failure::Broker,
    }
}

/// A record's outcome in [`Batch::outcome`].
const PENDING: u8 = 0;
const DELIVERED: u8 = 1;
const FAILED: u8 = 2;

/// The outcome of one request's records, counted as librdkafka reports them.
#[derive(Debug)]
pub struct Batch {
    /// Records sent and not yet reported, plus one until [`Producer::wait`].
    pending: AtomicUsize,
    delivered: AtomicUsize,
    failed: AtomicUsize,
    /// One entry per reserved slot, in send order.
    outcome: Vec<AtomicU8>,
    first_error: Mutex<Option<String>>,
    done: Mutex<Option<oneshot::Sender<()>>>,
    /// Returned to the semaphore when the last reference (the last delivery) goes.
    _permits: Option<OwnedSemaphorePermit>,
}

impl Batch {
    fn report(&self, slot: usize, result: Result<(), &KafkaError>) {
        let state = match result {
            Ok(()) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
                DELIVERED
            }
            Err(e) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut first) = self.first_error.lock() {
                    first.get_or_insert_with(|| e.to_string());
                }
                FAILED
            }
        };
        if let Some(o) = self.outcome.get(slot) {
            o.store(state, Ordering::Relaxed);
        }
        self.release();
    }

    fn release(&self) {
        if self.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            if let Some(tx) = self.done.lock().ok().and_then(|mut d| d.take()) {
                // The receiver is gone when the request already timed out: nothing to wake.
                let _ = tx.send(());
            }
        }
    }
}

/// The delivery opaque: which batch, which slot of it.
pub struct Slot {
    batch: Arc<Batch>,
    slot: usize,
}

/// Counts a batch's deliveries; marks the broker down on delivery failures.
pub struct DeliveryContext {
    health: Arc<BrokerHealth>,
    generation: u64,
}

impl DeliveryContext {
    fn current(&self) -> bool {
        self.health.generation.load(Ordering::Relaxed) == self.generation
    }
}

impl ClientContext for DeliveryContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        crate::logs::kafka_log(&self.health.repeats, level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // librdkafka also logs every error through `log` (above, rate-limited): here only
        // the state change (`BrokerHealth::set`) is logged, once, at warn.
        tracing::debug!(%error, %reason, "kafka client error");
        if self.current() {
            if let KafkaError::Global(rdkafka::types::RDKafkaErrorCode::AllBrokersDown) = error {
                self.health.set(false, &format!("all brokers down: {reason}"));
            }
            if let KafkaError::Global(rdkafka::types::RDKafkaErrorCode::Fatal) = error {
                self.health.needs_new_producer.store(true, Ordering::Relaxed);
                self.health.set(false, &format!("fatal producer error: {reason}"));
            }
        }
    }
}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = Box<Slot>;

    fn delivery(&self, result: &DeliveryResult<'_>, slot: Box<Slot>) {
        match result {
            Ok(_) => {
                if self.current() && !self.health.is_up() && !self.health.producer_broken() {
                    self.health.set(true, "");
                }
                slot.batch.report(slot.slot, Ok(()));
            }
            Err((e, _)) => {
                if self.current() {
                    match classify(e) {
                        Failure::Record => {}
                        Failure::Broken => {
                            if !self.health.needs_new_producer.swap(true, Ordering::Relaxed) {
                                tracing::warn!(error = %e, "kafka producer is broken; it is replaced at the next probe");
                            }
                            self.health.set(false, &e.to_string());
                        }
                        Failure::Broker => self.health.set(false, &e.to_string()),
                    }
                }
                slot.batch.report(slot.slot, Err(e));
            }
        }
    }
}

/// Why records could not be handed to the producer (answered `503` or `413`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProduceError {
    /// The broker is unreachable (probe or deliveries failed).
    #[error("Kafka broker unreachable: {0}")]
    BrokerDown(String),
    /// Not enough queue space now; retry later.
    #[error("producer queue full: {wanted} records do not fit (capacity {capacity})")]
    QueueFull {
        /// Records the request needs.
        wanted: usize,
        /// The queue bound.
        capacity: usize,
    },
    /// The request alone is larger than the whole queue: it can never fit.
    #[error("request has {wanted} records; the producer queue holds at most {capacity}: split it")]
    TooLarge {
        /// Records the request needs.
        wanted: usize,
        /// The queue bound.
        capacity: usize,
    },
    /// Not every record was acknowledged in time.
    #[error(
        "{failed} of {total} records not acknowledged by Kafka (they may or may not be on the topic; resend them): {reason}"
    )]
    Unacknowledged {
        /// Records acknowledged.
        delivered: usize,
        /// Records failed or not reported in time.
        failed: usize,
        /// All records sent.
        total: usize,
        /// The first error.
        reason: String,
        /// The caller's index of every record not acknowledged, in send order.
        unacknowledged: Vec<u64>,
    },
}

/// Queue space for one request and the [`Batch`] counting its deliveries.
#[must_use = "records are only counted once sent and sealed"]
pub struct Reservation {
    /// The producer current when the request started (replaced ones stay usable until
    /// their last request ends).
    producer: ThreadedProducer<DeliveryContext>,
    batch: Arc<Batch>,
    rx: oneshot::Receiver<()>,
    sent: usize,
    /// The caller's index of each slot's record.
    indices: Vec<u64>,
}

/// The gateway's producer (cheap to share behind an `Arc`).
pub struct Producer {
    /// Replaced after a fatal error (e.g. the broker fenced our producer id), so an
    /// idempotent producer's dead end does not take the gateway with it.
    inner: RwLock<ThreadedProducer<DeliveryContext>>,
    config: ClientConfig,
    brokers: String,
    topic: String,
    dead_letter_topic: String,
    permits: Arc<Semaphore>,
    capacity: usize,
    health: Arc<BrokerHealth>,
    message_timeout: Duration,
}

fn create(
    cfg: &ClientConfig,
    health: &Arc<BrokerHealth>,
    brokers: &str,
) -> Result<ThreadedProducer<DeliveryContext>, KafkaError> {
    let generation = health.generation.fetch_add(1, Ordering::Relaxed) + 1;
    let p = cfg.create_with_context(DeliveryContext { health: Arc::clone(health), generation });
    if p.is_ok() {
        tracing::debug!(brokers, generation, "kafka producer created");
    }
    p
}

impl Producer {
    /// A producer for `brokers` that writes bars to `topic` and dead letters to
    /// `dead_letter_topic`, holding at most `capacity` records in flight.
    pub fn new(
        brokers: &str,
        topic: &str,
        dead_letter_topic: &str,
        capacity: usize,
        message_timeout: Duration,
        linger: Duration,
    ) -> Result<Producer, ProducerError> {
        let health = Arc::new(BrokerHealth::default());
        // librdkafka's own bound sits above ours, so our permits always fail first.
        let cfg = kafka_config(brokers, message_timeout, linger, capacity + 1024);
        let inner = create(&cfg, &health, brokers)
            .map_err(|source| ProducerError::Create { brokers: brokers.into(), source })?;
        Ok(Producer {
            inner: RwLock::new(inner),
            config: cfg,
            brokers: brokers.into(),
            topic: topic.into(),
            dead_letter_topic: dead_letter_topic.into(),
            permits: Arc::new(Semaphore::new(capacity)),
            capacity,
            health,
            message_timeout,
        })
    }

    /// The broker's reachability.
    pub fn health(&self) -> &Arc<BrokerHealth> {
        &self.health
    }

    /// The queue bound in records.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Records waiting for acknowledgement now.
    pub fn in_flight(&self) -> usize {
        self.capacity - self.permits.available_permits()
    }

    /// Reserves queue space for `n` records, never waiting.
    pub fn reserve(&self, n: usize) -> Result<Reservation, ProduceError> {
        if !self.health.is_up() {
            return Err(ProduceError::BrokerDown(self.health.reason()));
        }
        if n > self.capacity {
            return Err(ProduceError::TooLarge { wanted: n, capacity: self.capacity });
        }
        let permits = if n == 0 {
            None
        } else {
            let n32 = u32::try_from(n).map_err(|_| ProduceError::TooLarge { wanted: n, capacity: self.capacity })?;
            Some(
                Arc::clone(&self.permits)
                    .try_acquire_many_owned(n32)
                    .map_err(|_| ProduceError::QueueFull { wanted: n, capacity: self.capacity })?,
            )
        };
        let (tx, rx) = oneshot::channel();
        let batch = Arc::new(Batch {
            pending: AtomicUsize::new(1),
            delivered: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            outcome: (0..n).map(|_| AtomicU8::new(PENDING)).collect(),
            first_error: Mutex::new(None),
            done: Mutex::new(Some(tx)),
            _permits: permits,
        });
        Ok(Reservation { producer: self.current(), batch, rx, sent: 0, indices: Vec::with_capacity(n) })
    }

    /// Sends one bar payload keyed by its symbol; `index` is the caller's number for the
    /// record (listed if it is not acknowledged).
    pub fn send_bar(&self, r: &mut Reservation, index: u64, key: &str, payload: &[u8]) {
        self.send(r, index, &self.topic, Some(key), payload);
    }

    /// Sends one dead letter (no key).
    pub fn send_dead_letter(&self, r: &mut Reservation, index: u64, payload: &[u8]) {
        self.send(r, index, &self.dead_letter_topic, None, payload);
    }

    fn send(&self, r: &mut Reservation, index: u64, topic: &str, key: Option<&str>, payload: &[u8]) {
        let slot = r.sent;
        r.batch.pending.fetch_add(1, Ordering::AcqRel);
        r.sent += 1;
        r.indices.push(index);
        let opaque = Box::new(Slot { batch: Arc::clone(&r.batch), slot });
        let mut record = BaseRecord::with_opaque_to(topic, opaque).payload(payload);
        if let Some(k) = key {
            record = record.key(k);
        }
        if let Err((e, record)) = r.producer.send(record) {
            // Not queued (queue full despite the permits, message too large, fatal
            // producer error): report it as a failed delivery of this batch.
            let Slot { batch, slot } = *record.delivery_opaque;
            batch.report(slot, Err(&e));
        }
    }

    /// Waits until every record sent under `r` is acknowledged or failed (at most the
    /// message timeout plus a margin). `Ok` with the count only if all were acknowledged.
    pub async fn wait(&self, r: Reservation) -> Result<usize, ProduceError> {
        let Reservation { producer, batch, rx, sent, indices } = r;
        drop(producer);
        // Drop the +1 held since `reserve`; if everything was already reported this fires.
        batch.release();
        let limit = self.message_timeout + Duration::from_secs(2);
        let timed_out = tokio::time::timeout(limit, rx).await.is_err();
        // Read the outcomes once: a late report after this point does not change the answer.
        let unacknowledged: Vec<u64> = batch.outcome[..sent]
            .iter()
            .zip(&indices)
            .filter(|(o, _)| o.load(Ordering::Relaxed) != DELIVERED)
            .map(|(_, &i)| i)
            .collect();
        let delivered = sent - unacknowledged.len();
        if unacknowledged.is_empty() && !timed_out {
            return Ok(delivered);
        }
        let reason = batch
            .first_error
            .lock()
            .ok()
            .and_then(|e| e.clone())
            .unwrap_or_else(|| format!("no acknowledgement within {limit:?}"));
        Err(ProduceError::Unacknowledged {
            delivered,
            failed: unacknowledged.len(),
            total: sent,
            reason,
            unacknowledged,
        })
    }

    /// Checks that the broker answers and both topics exist (blocking, up to `timeout`),
    /// replacing the producer first when it is broken or the broker was unreachable for
    /// longer than the message timeout, and records the result in [`Producer::health`].
    pub fn probe(&self, timeout: Duration) -> bool {
        let result = (|| {
            let mut producer = self.current();
            let fatal = producer.client().fatal_error();
            let broken = self.health.needs_new_producer.load(Ordering::Relaxed);
            if fatal.is_some() || broken {
                tracing::warn!(?fatal, "replacing the kafka producer (broken: fenced, forgotten or timing out)");
                producer = self.replace()?;
            }
            for topic in [&self.topic, &self.dead_letter_topic] {
                let md = producer.client().fetch_metadata(Some(topic), timeout).map_err(|e| e.to_string())?;
                match md.topics().iter().find(|t| t.name() == topic.as_str()) {
                    Some(t) if t.error().is_none() && !t.partitions().is_empty() => {}
                    Some(t) => return Err(format!("topic {topic:?}: {:?}", t.error())),
                    None => return Err(format!("topic {topic:?} missing from metadata")),
                }
            }
            // Back after a long outage: the old producer's id and queue belong to a broker
            // that may have forgotten them; start clean rather than wait for timeouts.
            let was_down = self.health.down_since.lock().ok().and_then(|d| *d);
            if was_down.is_some_and(|t| t.elapsed() >= self.message_timeout) {
                tracing::info!(down_for = ?was_down.map(|t| t.elapsed()), "kafka broker back after an outage; replacing the producer");
                let _fresh = self.replace()?;
            }
            Ok(())
        })();
        match result {
            Ok(()) => {
                if let Ok(mut d) = self.health.down_since.lock() {
                    *d = None;
                }
                self.health.set(true, "");
                true
            }
            Err(reason) => {
                if let Ok(mut d) = self.health.down_since.lock() {
                    d.get_or_insert_with(Instant::now);
                }
                self.health.set(false, &reason);
                false
            }
        }
    }

    /// A new producer in place of the current one (which stays alive until its last
    /// request ends).
    fn replace(&self) -> Result<ThreadedProducer<DeliveryContext>, String> {
        let producer = create(&self.config, &self.health, &self.brokers)
            .map_err(|e| format!("cannot recreate the producer for {}: {e}", self.brokers))?;
        self.health.needs_new_producer.store(false, Ordering::Relaxed);
        let old = match self.inner.write() {
            Ok(mut slot) => std::mem::replace(&mut *slot, producer.clone()),
            Err(p) => std::mem::replace(&mut *p.into_inner(), producer.clone()),
        };
        // Dropping the last handle purges what it still holds (those requests get their
        // failures at once) and may block for up to 500 ms: here, on the probe's thread.
        drop(old);
        Ok(producer)
    }

    /// Waits up to `timeout` for every queued record to be acknowledged.
    pub fn flush(&self, timeout: Duration) -> Result<(), ProducerError> {
        self.current().flush(timeout).map_err(ProducerError::Flush)
    }

    fn current(&self) -> ThreadedProducer<DeliveryContext> {
        // A poisoned lock only means a panic elsewhere while swapping: the value is whole.
        self.inner.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}
