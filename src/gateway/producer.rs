//! The Kafka side of the gateway: an idempotent producer (acks=all) whose deliveries are
//! counted per request, a bounded reservation of queue space, and a broker probe.
//!
//! A request first reserves one permit per record it will produce ([`Producer::reserve`]);
//! when the permits run out the request is answered `503` at once, so the producer's queue
//! never holds more than `queue-capacity` records and is never unbounded. The permits live
//! in the request's [`Batch`] and return only when librdkafka has reported the last of its
//! records, so a request that timed out still counts against the bound until then.
//! Deliveries arrive on the producer's polling thread and are counted in the batch
//! (atomics); the last one wakes the waiting request.
//!
//! Keys are symbols and the partitioner is `murmur2_random`, the Java client's default, so
//! every producer in the system (Java, librdkafka, this one) puts a symbol on the same
//! partition.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseRecord, Producer as _, ProducerContext, ThreadedProducer};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use super::error::GatewayError;

/// librdkafka settings shared by the gateway and `tickflow generate --to kafka://`.
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
    /// producer id was fenced or forgotten): the probe then replaces the producer.
    needs_new_producer: AtomicBool,
    reason: Mutex<String>,
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

/// The outcome of one request's records, counted as librdkafka reports them.
#[derive(Debug)]
pub struct Batch {
    /// Records sent and not yet reported, plus one until [`Reservation::seal`].
    pending: AtomicUsize,
    delivered: AtomicUsize,
    failed: AtomicUsize,
    first_error: Mutex<Option<String>>,
    done: Mutex<Option<oneshot::Sender<()>>>,
    health: Arc<BrokerHealth>,
    /// Returned to the semaphore when the last reference (the last delivery) goes.
    _permits: Option<OwnedSemaphorePermit>,
}

impl Batch {
    fn report(&self, result: Result<(), &KafkaError>) {
        match result {
            Ok(()) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut first) = self.first_error.lock() {
                    first.get_or_insert_with(|| e.to_string());
                }
            }
        }
        if self.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            if let Some(tx) = self.done.lock().ok().and_then(|mut d| d.take()) {
                // The receiver is gone when the request already timed out: nothing to wake.
                let _ = tx.send(());
            }
        }
    }
}

/// Counts a batch's deliveries; marks the broker down on delivery failures.
pub struct DeliveryContext {
    health: Arc<BrokerHealth>,
}

impl ClientContext for DeliveryContext {
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(%error, %reason, "kafka client error");
    }
}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = Arc<Batch>;

    fn delivery(&self, result: &DeliveryResult<'_>, batch: Arc<Batch>) {
        match result {
            Ok(_) => {
                if !self.health.is_up() {
                    self.health.set(true, "");
                }
                batch.report(Ok(()));
            }
            Err((e, _)) => {
                use rdkafka::types::RDKafkaErrorCode as C;
                if matches!(
                    e.rdkafka_error_code(),
                    Some(
                        C::ProducerFenced
                            | C::InvalidProducerEpoch
                            | C::UnknownProducerId
                            | C::OutOfOrderSequenceNumber
                            | C::Fatal
                    )
                ) {
                    self.health.needs_new_producer.store(true, Ordering::Relaxed);
                }
                batch.health.set(false, &e.to_string());
                batch.report(Err(e));
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
    #[error("{failed} of {total} records not acknowledged by Kafka: {reason}")]
    Unacknowledged {
        /// Records acknowledged.
        delivered: usize,
        /// Records failed or not reported in time.
        failed: usize,
        /// All records sent.
        total: usize,
        /// The first error.
        reason: String,
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
    ) -> Result<Producer, GatewayError> {
        let health = Arc::new(BrokerHealth::default());
        // librdkafka's own bound sits above ours, so our permits always fail first.
        let cfg = kafka_config(brokers, message_timeout, linger, capacity + 1024);
        let inner = cfg
            .create_with_context(DeliveryContext { health: Arc::clone(&health) })
            .map_err(|source| GatewayError::Producer { brokers: brokers.into(), source })?;
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
            first_error: Mutex::new(None),
            done: Mutex::new(Some(tx)),
            health: Arc::clone(&self.health),
            _permits: permits,
        });
        Ok(Reservation { producer: self.current(), batch, rx, sent: 0 })
    }

    /// Sends one bar payload keyed by its symbol.
    pub fn send_bar(&self, r: &mut Reservation, key: &str, payload: &[u8]) {
        self.send(r, &self.topic, Some(key), payload);
    }

    /// Sends one dead letter (no key).
    pub fn send_dead_letter(&self, r: &mut Reservation, payload: &[u8]) {
        self.send(r, &self.dead_letter_topic, None, payload);
    }

    fn send(&self, r: &mut Reservation, topic: &str, key: Option<&str>, payload: &[u8]) {
        r.batch.pending.fetch_add(1, Ordering::AcqRel);
        r.sent += 1;
        let mut record = BaseRecord::with_opaque_to(topic, Arc::clone(&r.batch)).payload(payload);
        if let Some(k) = key {
            record = record.key(k);
        }
        if let Err((e, record)) = r.producer.send(record) {
            // Not queued (queue full despite the permits, message too large, fatal
            // producer error): report it as a failed delivery of this batch.
            record.delivery_opaque.report(Err(&e));
        }
    }

    /// Waits until every record sent under `r` is acknowledged or failed (at most the
    /// message timeout plus a margin). `Ok` with the count only if all were acknowledged.
    pub async fn wait(&self, r: Reservation) -> Result<usize, ProduceError> {
        let Reservation { producer, batch, rx, sent } = r;
        drop(producer);
        // Drop the +1 held since `reserve`; if everything was already reported this fires.
        batch.report_seal();
        let limit = self.message_timeout + Duration::from_secs(2);
        let timed_out = tokio::time::timeout(limit, rx).await.is_err();
        let delivered = batch.delivered.load(Ordering::Relaxed);
        let failed = sent - delivered.min(sent);
        if failed == 0 && !timed_out {
            return Ok(delivered);
        }
        let reason = batch
            .first_error
            .lock()
            .ok()
            .and_then(|e| e.clone())
            .unwrap_or_else(|| format!("no acknowledgement within {limit:?}"));
        Err(ProduceError::Unacknowledged { delivered, failed, total: sent, reason })
    }

    /// Checks that the broker answers and both topics exist (blocking, up to `timeout`),
    /// and records the result in [`Producer::health`].
    pub fn probe(&self, timeout: Duration) -> bool {
        let result = (|| {
            let mut producer = self.current();
            let fatal = producer.client().fatal_error();
            if fatal.is_some() || self.health.needs_new_producer.swap(false, Ordering::Relaxed) {
                tracing::error!(?fatal, "kafka producer cannot recover its producer id; replacing it");
                producer = self
                    .config
                    .create_with_context(DeliveryContext { health: Arc::clone(&self.health) })
                    .map_err(|e| format!("cannot recreate the producer for {}: {e}", self.brokers))?;
                if let Ok(mut slot) = self.inner.write() {
                    *slot = producer.clone();
                }
            }
            for topic in [&self.topic, &self.dead_letter_topic] {
                let md = producer.client().fetch_metadata(Some(topic), timeout).map_err(|e| e.to_string())?;
                match md.topics().iter().find(|t| t.name() == topic.as_str()) {
                    Some(t) if t.error().is_none() && !t.partitions().is_empty() => {}
                    Some(t) => return Err(format!("topic {topic:?}: {:?}", t.error())),
                    None => return Err(format!("topic {topic:?} missing from metadata")),
                }
            }
            Ok(())
        })();
        match result {
            Ok(()) => {
                self.health.set(true, "");
                true
            }
            Err(reason) => {
                self.health.set(false, &reason);
                false
            }
        }
    }

    /// Waits up to `timeout` for every queued record to be acknowledged.
    pub fn flush(&self, timeout: Duration) -> Result<(), GatewayError> {
        self.current().flush(timeout).map_err(GatewayError::Flush)
    }

    fn current(&self) -> ThreadedProducer<DeliveryContext> {
        // A poisoned lock only means a panic elsewhere while swapping: the value is whole.
        self.inner.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

impl Batch {
    fn report_seal(&self) {
        if self.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            if let Some(tx) = self.done.lock().ok().and_then(|mut d| d.take()) {
                let _ = tx.send(());
            }
        }
    }
}
