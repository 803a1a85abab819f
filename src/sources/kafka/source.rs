//! The Kafka source operator: one `BaseConsumer` per worker, statically assigned partitions,
//! bars emitted at the worker's event-time watermark, gated on the outputs' probe.
//!
//! Setup (metadata, watermarks, committed offsets, `assign`) happens in [`kafka_source`] while
//! the dataflow is built, so configuration and connection problems come back as a
//! [`KafkaSourceError`] before any record flows. Each owned partition gets its own librdkafka
//! queue (`split_partition_queue`) whose non-empty callback wakes the operator through a
//! `SyncActivator`; reads are fair across partitions and bounded by `max-batch` per
//! activation. The main queue (errors, statistics, commit results) is polled on every
//! activation, and a heartbeat re-activates the operator at least every 100 ms (idleness is a
//! matter of time passing, not of new messages).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::util::Timeout;
use tickflow_operators::dataflow::Time;
use tickflow_operators::{Bar, TimeBounds};
use timely::dataflow::operators::generic::operator::source;
use timely::dataflow::{ProbeHandle, Scope, StreamVec};
use timely::scheduling::SyncActivator;

use super::config::{KafkaSourceConfig, StartPosition};
use super::context::SourceContext;
use super::error::{KafkaSourceError, is_retryable};
use super::offsets::OffsetTracker;
use super::watermark::Watermarks;
use crate::decode::{DecodeError, DecodeErrorKind, Location, decode_json_line};
use crate::status::{Clock, LocalCounters, PartitionUpdate, ProcessMetrics, SystemClock};

/// Records a source may emit while the outputs' probe lags behind its capability.
pub const MAX_IN_FLIGHT: u64 = 64 * 1024;
/// Longest sleep between two activations (idleness, main queue, commits, stop requests).
const HEARTBEAT: Duration = Duration::from_millis(100);
/// Retry delay while gated by the probe.
const GATE_RETRY: Duration = Duration::from_micros(200);
/// Main-queue events served per activation.
const MAX_EVENTS: usize = 64;
/// How often partition positions are published to the status endpoint without new data.
const STATUS_EVERY: Duration = Duration::from_secs(1);

type KafkaConsumer = BaseConsumer<SourceContext>;

/// The partitions of `partitions` that worker `index` of `peers` owns: `p % peers == index`.
///
/// ```
/// use tickflow::sources::kafka::owned_partitions;
/// assert_eq!(owned_partitions(5, 1, 2), [1, 3]);
/// assert_eq!(owned_partitions(2, 2, 3), [] as [i32; 0]); // more workers than partitions
/// ```
pub fn owned_partitions(partitions: i32, index: usize, peers: usize) -> Vec<i32> {
    (0..partitions).filter(|p| *p as usize % peers.max(1) == index).collect()
}

/// Counters of one worker's source, published once per batch (relaxed atomics; readable from
/// any thread, e.g. the status server or the end-of-run summary).
#[derive(Debug, Default)]
pub struct KafkaSourceStats {
    /// Messages read (valid and invalid).
    pub messages: AtomicU64,
    /// Valid bars emitted.
    pub bars: AtomicU64,
    /// Invalid messages handed to `on_invalid`.
    pub invalid: AtomicU64,
    /// Consume errors reported by librdkafka (retried by it).
    pub errors: AtomicU64,
    /// Offset commits issued.
    pub commits: AtomicU64,
}

/// Stops a running source from any thread (e.g. a signal handler): it emits what it has read,
/// drops its capability, and the dataflow drains. Commit with [`KafkaSourceHandle::finish`]
/// once the worker's dataflow is complete.
#[derive(Clone, Debug, Default)]
pub struct KafkaStopper {
    flag: Arc<AtomicBool>,
    activator: Arc<OnceLock<SyncActivator>>,
}

impl KafkaStopper {
    /// Asks the source to stop and wakes it.
    pub fn stop(&self) {
        self.flag.store(true, Ordering::Relaxed);
        if let Some(a) = self.activator.get() {
            // The worker may have finished already; then there is nothing to wake.
            let _ = a.activate();
        }
    }

    /// Whether [`Self::stop`] was called.
    pub fn is_stopped(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }
}

/// What the operator and the handle share (same worker thread).
struct Shared {
    consumer: Option<Arc<KafkaConsumer>>,
    tracker: OffsetTracker,
}

/// The worker-local handle of a Kafka source: its partitions, counters, stop switch, and the
/// offset commits of what the outputs completed.
pub struct KafkaSourceHandle {
    topic: String,
    group: String,
    worker: usize,
    partitions: Vec<i32>,
    shared: Rc<RefCell<Shared>>,
    probe: ProbeHandle<Time>,
    stats: Arc<KafkaSourceStats>,
    stopper: KafkaStopper,
}

impl KafkaSourceHandle {
    /// The partitions this worker reads.
    pub fn partitions(&self) -> &[i32] {
        &self.partitions
    }

    /// The source's counters.
    pub fn stats(&self) -> &Arc<KafkaSourceStats> {
        &self.stats
    }

    /// A stop switch usable from any thread.
    pub fn stopper(&self) -> KafkaStopper {
        self.stopper.clone()
    }

    /// Commits (asynchronously) the offsets of every batch the probe has passed; returns how
    /// many partitions got a new offset. The operator does this itself every
    /// `commit-interval`; call it from the worker loop for tighter lag reporting.
    pub fn commit_completed(&self) -> Result<usize, KafkaSourceError> {
        commit(&self.shared, &self.probe, &self.topic, &self.group, CommitMode::Async, &self.stats)
    }

    /// Commits synchronously the offsets of every batch the probe has passed. Call it after the
    /// worker's dataflow completed (`while worker.step_or_park(..) {}`): then the probe is
    /// empty and every offset read is committed. Returns how many partitions were committed.
    pub fn finish(&self) -> Result<usize, KafkaSourceError> {
        let n = commit(&self.shared, &self.probe, &self.topic, &self.group, CommitMode::Sync, &self.stats)?;
        tracing::info!(
            worker = self.worker,
            topic = %self.topic,
            partitions = ?self.partitions,
            committed = n,
            bars = self.stats.bars.load(Ordering::Relaxed),
            invalid = self.stats.invalid.load(Ordering::Relaxed),
            "Kafka source finished"
        );
        Ok(n)
    }

    /// The next offset after everything the outputs completed on `partition`, if anything.
    pub fn completed_offset(&self, partition: i32) -> Option<i64> {
        self.shared.borrow().tracker.completed_offset(partition)
    }
}

/// Marks complete what `probe` passed, commits the new offsets with `mode`.
fn commit(
    shared: &Rc<RefCell<Shared>>,
    probe: &ProbeHandle<Time>,
    topic: &str,
    group: &str,
    mode: CommitMode,
    stats: &KafkaSourceStats,
) -> Result<usize, KafkaSourceError> {
    let mut shared = shared.borrow_mut();
    let Shared { consumer, tracker } = &mut *shared;
    let Some(consumer) = consumer.as_ref() else { return Ok(0) };
    probe.with_frontier(|f| tracker.completed(&f));
    let commits = tracker.take_commits();
    if commits.is_empty() {
        return Ok(0);
    }
    let mut tpl = TopicPartitionList::with_capacity(commits.len());
    for &(partition, offset) in &commits {
        tpl.add_partition_offset(topic, partition, Offset::Offset(offset)).map_err(|source| {
            KafkaSourceError::Commit { topic: topic.to_owned(), group: group.to_owned(), source: Box::new(source) }
        })?;
    }
    stats.commits.fetch_add(1, Ordering::Relaxed);
    if let Err(source) = consumer.commit(&tpl, mode) {
        // Hand the offsets out again so the next commit retries them.
        tracker.reset_committed();
        return Err(KafkaSourceError::Commit {
            topic: topic.to_owned(),
            group: group.to_owned(),
            source: Box::new(source),
        });
    }
    tracing::debug!(topic, partitions = commits.len(), ?mode, "committing completed offsets");
    Ok(commits.len())
}

/// One owned partition's read position.
#[derive(Clone, Copy, Debug)]
struct PartitionPos {
    partition: i32,
    /// Next offset to read.
    next: i64,
    /// Latest known high watermark (at start, statistics, end-of-partition, what we read).
    high: i64,
    /// Caught up at least once: librdkafka reported end-of-partition, or the partition was
    /// empty at start. For `stop-at-end` this is the signal, not `next >= high at start`:
    /// Tansu 0.6.0 under-reports the high watermark in ListOffsets (it returns the last
    /// batch's base offset + 1), so that target would drop the rest of the last batch.
    /// End-of-partition means "at the current end", which is at or past the end at start.
    reached_end: bool,
}

/// The Kafka source of this worker: bars of `cfg.topic`'s partitions `p % peers == index`,
/// emitted at the worker's watermark (newest event time minus `watermark_delay_ms`, minimum
/// over non-idle partitions).
///
/// - `bounds`: accepted event times (decoding rejects bars outside).
/// - `gate`: the probe of the dataflow's outputs; while it lags behind the source's capability
///   at most [`MAX_IN_FLIGHT`] records are emitted. Offsets are committed only for batches the
///   probe has passed.
/// - `on_invalid(location, error, payload)`: every message that is not a valid bar, with
///   location `topic/partition@offset` (decode errors, empty payloads, tombstones, invalid
///   UTF-8). The error's record number is the Kafka offset.
/// - `metrics`: partition positions and connection state for the status endpoint.
///
/// Returns the stream of bars and the worker-local [`KafkaSourceHandle`] (commits, stop,
/// counters). Errors: invalid config, unreachable brokers within `connect-timeout`, a missing
/// topic.
#[allow(clippy::too_many_arguments)]
pub fn kafka_source<'s>(
    scope: Scope<'s, Time>,
    cfg: &KafkaSourceConfig,
    bounds: TimeBounds,
    watermark_delay_ms: i64,
    gate: ProbeHandle<Time>,
    mut on_invalid: impl FnMut(&str, &DecodeError, &[u8]) + 'static,
    metrics: Option<Arc<ProcessMetrics>>,
) -> Result<(StreamVec<'s, Time, Bar>, KafkaSourceHandle), KafkaSourceError> {
    let errs = cfg.validate();
    if !errs.is_empty() {
        return Err(KafkaSourceError::Config(errs));
    }
    let index = scope.index();
    let peers = scope.peers();
    let clock: Arc<dyn Clock> = match &metrics {
        Some(m) => Arc::clone(m.clock()),
        None => Arc::new(SystemClock),
    };
    let topic = cfg.topic.clone();
    let setup = connect(cfg, index, peers, metrics.clone())?;
    let partitions: Vec<i32> = setup.positions.iter().map(|p| p.partition).collect();
    if let Some(m) = &metrics {
        m.set_source_connected(true);
    }
    let stats = Arc::new(KafkaSourceStats::default());
    let stopper = KafkaStopper::default();
    let shared = Rc::new(RefCell::new(Shared { consumer: setup.consumer.clone(), tracker: OffsetTracker::default() }));
    let handle = KafkaSourceHandle {
        topic: topic.clone(),
        group: cfg.group_id.clone(),
        worker: index,
        partitions: partitions.clone(),
        shared: Rc::clone(&shared),
        probe: gate.clone(),
        stats: Arc::clone(&stats),
        stopper: stopper.clone(),
    };

    let cfg = cfg.clone();
    let stream = source(scope, "KafkaSource", move |cap, info| {
        let activator = scope.activator_for(Rc::clone(&info.address));
        let sync = scope.worker().sync_activator_for(info.address.to_vec());
        let _ = stopper.activator.set(sync.clone());
        let mut cap = Some(cap);
        let consumer = setup.consumer;
        if consumer.is_none() {
            tracing::info!(worker = index, topic = %topic, "Kafka source owns no partition; releasing its capability");
            cap = None;
        }
        // Per-partition queues, each waking the operator when it becomes non-empty.
        let mut queues = Vec::with_capacity(partitions.len());
        for (&p, consumer) in partitions.iter().zip(std::iter::repeat(&consumer).flatten()) {
            // `split_partition_queue` only fails for a topic name with a NUL byte (validated
            // away) or an unknown partition (we just read it from the metadata).
            let mut q = consumer.split_partition_queue(&topic, p).expect("an assigned partition has a queue");
            let s = sync.clone();
            q.set_nonempty_callback(move || {
                // Fails only once the worker is gone; then nobody needs waking.
                let _ = s.activate();
            });
            queues.push(q);
        }
        let mut positions = setup.positions;
        let now = clock.now_ms();
        let mut watermarks =
            Watermarks::new(&partitions, watermark_delay_ms, cfg.idle_timeout().as_millis() as i64, now);
        for (i, pos) in positions.iter().enumerate() {
            if pos.reached_end {
                watermarks.on_end(i);
            }
        }
        let max_batch = cfg.max_batch;
        let stop_at_end = cfg.stop_at_end;
        let commit_every = cfg.commit_interval();
        let mut last_commit = Instant::now();
        let mut last_status = Instant::now() - STATUS_EVERY;
        let mut emitted_since_caught_up = 0u64;
        let mut batch: Vec<Bar> = Vec::with_capacity(max_batch);
        let group = cfg.group_id.clone();
        let mut location = String::new();
        if consumer.is_some() {
            tracing::info!(
                worker = index,
                topic = %topic,
                partitions = ?partitions,
                start = %cfg.start_position(),
                stop_at_end,
                "Kafka source assigned"
            );
        }
        move |output| {
            let Some(consumer) = consumer.as_ref() else { return };
            // Serve errors, statistics and commit results.
            for _ in 0..MAX_EVENTS {
                match consumer.poll(Duration::ZERO) {
                    None => break,
                    Some(Ok(m)) => tracing::warn!(
                        worker = index,
                        partition = m.partition(),
                        offset = m.offset(),
                        "unexpected message on the main queue; skipped"
                    ),
                    Some(Err(error)) => {
                        stats.errors.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(worker = index, topic = %topic, %error, "Kafka consumer event");
                    }
                }
            }
            let Some(c) = cap.as_mut() else { return };
            if stopper.is_stopped() {
                tracing::info!(worker = index, topic = %topic, "Kafka source stopped; releasing its capability");
                cap = None;
                return;
            }
            let periodic_commit = |shared: &Rc<RefCell<Shared>>, last_commit: &mut Instant| {
                if last_commit.elapsed() >= commit_every {
                    *last_commit = Instant::now();
                    if let Err(error) = commit(shared, &gate, &topic, &group, CommitMode::Async, &stats) {
                        tracing::warn!(worker = index, %error, "committing offsets failed; the next commit retries");
                    }
                }
            };
            // Backpressure: wait while the outputs lag and we already have much in flight.
            if gate.less_than(c.time()) {
                if emitted_since_caught_up >= MAX_IN_FLIGHT {
                    periodic_commit(&shared, &mut last_commit);
                    activator.activate_after(GATE_RETRY);
                    return;
                }
            } else {
                emitted_since_caught_up = 0;
            }

            let now = clock.now_ms();
            let time = *c.time();
            let share = max_batch.div_ceil(queues.len()).max(1);
            let (mut messages, mut invalid, mut errors) = (0u64, 0u64, 0u64);
            let mut more = false;
            let mut touched = false;
            batch.clear();
            for (i, q) in queues.iter().enumerate() {
                let pos = &mut positions[i];
                let (mut read, mut max_ts) = (0usize, None::<i64>);
                while read < share {
                    match q.poll(Duration::ZERO) {
                        None => break,
                        Some(Err(KafkaError::PartitionEOF(_))) => {
                            watermarks.on_end(i);
                            pos.reached_end = true;
                            pos.high = pos.high.max(pos.next);
                        }
                        Some(Err(error)) => {
                            errors += 1;
                            tracing::warn!(worker = index, topic = %topic, partition = pos.partition, %error, "consume error; librdkafka retries");
                            break;
                        }
                        Some(Ok(m)) => {
                            read += 1;
                            let offset = m.offset();
                            pos.next = offset + 1;
                            let decoded = match m.payload() {
                                None => Err(payload_error(offset, "tombstone: the message has no payload")),
                                Some([]) => Err(payload_error(offset, "empty payload")),
                                Some(p) => decode_json_line(p, offset as u64, &bounds),
                            };
                            match decoded {
                                Ok(bar) => {
                                    max_ts = Some(max_ts.map_or(bar.ts, |t| t.max(bar.ts)));
                                    batch.push(bar);
                                }
                                Err(error) => {
                                    invalid += 1;
                                    use std::fmt::Write as _;
                                    location.clear();
                                    // Writing to a String cannot fail.
                                    let _ = write!(location, "{topic}/{}@{offset}", pos.partition);
                                    on_invalid(&location, &error, m.payload().unwrap_or(&[]));
                                }
                            }
                        }
                    }
                }
                if read > 0 {
                    messages += read as u64;
                    touched = true;
                    watermarks.on_messages(i, max_ts, now);
                    shared.borrow_mut().tracker.emitted(pos.partition, time, pos.next);
                    pos.high = pos.high.max(pos.next);
                }
                more |= read == share;
            }
            let bars = batch.len() as u64;
            if !batch.is_empty() {
                let mut session = output.session(c);
                session.give_iterator(batch.drain(..));
            }
            emitted_since_caught_up += messages;
            if messages > 0 || invalid > 0 || errors > 0 {
                stats.messages.fetch_add(messages, Ordering::Relaxed);
                stats.bars.fetch_add(bars, Ordering::Relaxed);
                stats.invalid.fetch_add(invalid, Ordering::Relaxed);
                stats.errors.fetch_add(errors, Ordering::Relaxed);
            }
            if let Some(m) = &metrics {
                if let Ok(w) = m.worker(index) {
                    let mut local = LocalCounters {
                        bars_in: messages,
                        batches: u64::from(messages > 0),
                        ..LocalCounters::default()
                    };
                    local.watermark_ms = (*c.time() > 0).then_some(*c.time() as i64);
                    local.publish(w);
                }
                if touched || last_status.elapsed() >= STATUS_EVERY {
                    last_status = Instant::now();
                    if touched {
                        m.set_source_connected(true);
                    }
                    let ctx = consumer.context();
                    m.update_partitions(positions.iter_mut().map(|p| {
                        p.high = p.high.max(ctx.high_watermark(p.partition).unwrap_or(i64::MIN));
                        PartitionUpdate {
                            topic: &topic,
                            partition: p.partition,
                            owner_worker: index,
                            offset: p.next,
                            high_watermark: p.high,
                        }
                    }));
                }
            }
            if stop_at_end && positions.iter().all(|p| p.reached_end) {
                tracing::info!(worker = index, topic = %topic, "Kafka source reached the end of its partitions; releasing its capability");
                cap = None;
                return;
            }
            // Advance the watermark (never backwards); hold while nothing is known.
            if let Some(wm) = watermarks.watermark(now) {
                let wm = wm.max(0) as Time;
                if wm > *c.time() {
                    c.downgrade(&wm);
                }
            }
            periodic_commit(&shared, &mut last_commit);
            if more {
                activator.activate();
            } else {
                let idle_in = watermarks.next_idle_in_ms(now).map(|ms| Duration::from_millis(ms as u64));
                activator.activate_after(idle_in.map_or(HEARTBEAT, |d| d.min(HEARTBEAT)));
            }
        }
    });
    Ok((stream, handle))
}

/// A decode error for a message without a usable payload.
fn payload_error(offset: i64, message: &str) -> DecodeError {
    DecodeError::new(
        Location::Record(offset as u64),
        DecodeErrorKind::Syntax { format: "JSON", column: 1, message: message.to_owned() },
    )
}

/// The consumer and positions of one worker, after `assign`.
struct Setup {
    consumer: Option<Arc<KafkaConsumer>>,
    positions: Vec<PartitionPos>,
}

/// Creates the consumer, reads the partition count, owned partitions' watermarks and (for
/// `start = "committed"`) committed offsets, and assigns the owned partitions.
fn connect(
    cfg: &KafkaSourceConfig,
    index: usize,
    peers: usize,
    metrics: Option<Arc<ProcessMetrics>>,
) -> Result<Setup, KafkaSourceError> {
    let topic = cfg.topic.as_str();
    let brokers = cfg.brokers.as_str();
    let mut cc = ClientConfig::new();
    cc.set("statistics.interval.ms", "5000");
    // librdkafka lets a fetch wait up to 500 ms for data by default: a latency floor for a
    // stream processor. 10 ms keeps p50 low at the cost of more fetch requests when idle.
    cc.set("fetch.wait.max.ms", "10");
    for (k, v) in &cfg.options {
        cc.set(k.trim(), v);
    }
    cc.set("bootstrap.servers", brokers)
        .set("group.id", &cfg.group_id)
        .set("client.id", format!("tickflow-w{index}"))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest");
    let consumer: KafkaConsumer = cc
        .create_with_context(SourceContext::new(topic, index, metrics))
        .map_err(|source| KafkaSourceError::Client { brokers: brokers.to_owned(), source: Box::new(source) })?;

    let deadline = Instant::now() + cfg.connect_timeout();
    let remaining = || deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(100));
    let count = retry(deadline, |last| {
        let md = consumer.fetch_metadata(Some(topic), remaining().min(Duration::from_secs(5))).map_err(|source| {
            KafkaSourceError::Metadata {
                topic: topic.to_owned(),
                brokers: brokers.to_owned(),
                source: Box::new(source),
            }
        })?;
        let t = md.topics().iter().find(|t| t.name() == topic);
        match t {
            Some(t) if t.error().is_none() && !t.partitions().is_empty() => Ok(t.partitions().len() as i32),
            // Right after creation a topic may briefly report "leader not available".
            Some(t) if !last && t.error().is_some_and(|e| is_retryable(&KafkaError::MetadataFetch(e.into()))) => {
                Err(KafkaSourceError::Metadata {
                    topic: topic.to_owned(),
                    brokers: brokers.to_owned(),
                    source: Box::new(KafkaError::MetadataFetch(
                        t.error().map(Into::into).unwrap_or(RDKafkaErrorCode::Fail),
                    )),
                })
            }
            _ => Err(KafkaSourceError::TopicNotFound { topic: topic.to_owned(), brokers: brokers.to_owned() }),
        }
    })?;
    let owned = owned_partitions(count, index, peers);
    tracing::debug!(worker = index, topic, partitions = count, owned = ?owned, "Kafka topic metadata read");
    if owned.is_empty() {
        return Ok(Setup { consumer: None, positions: Vec::new() });
    }
    let mut ranges = Vec::with_capacity(owned.len());
    for &p in &owned {
        let (low, high) = retry(deadline, |_| {
            consumer.fetch_watermarks(topic, p, remaining().min(Duration::from_secs(5))).map_err(|source| {
                KafkaSourceError::Watermarks { topic: topic.to_owned(), partition: p, source: Box::new(source) }
            })
        })?;
        ranges.push((p, low.max(0), high.max(0)));
    }
    let committed: Vec<Option<i64>> = match cfg.start_position() {
        StartPosition::Committed => {
            let mut tpl = TopicPartitionList::with_capacity(owned.len());
            for &p in &owned {
                tpl.add_partition(topic, p);
            }
            let got = retry(deadline, |_| {
                consumer.committed_offsets(tpl.clone(), Timeout::After(remaining())).map_err(|source| {
                    KafkaSourceError::Committed {
                        group: cfg.group_id.clone(),
                        topic: topic.to_owned(),
                        source: Box::new(source),
                    }
                })
            })?;
            owned
                .iter()
                .map(|&p| match got.find_partition(topic, p).map(|e| e.offset()) {
                    Some(Offset::Offset(o)) if o >= 0 => Some(o),
                    _ => None,
                })
                .collect()
        }
        _ => vec![None; owned.len()],
    };
    let mut tpl = TopicPartitionList::with_capacity(owned.len());
    let mut positions = Vec::with_capacity(owned.len());
    for (&(p, low, high), committed) in ranges.iter().zip(committed) {
        let start = match cfg.start_position() {
            StartPosition::Earliest => low,
            StartPosition::Latest => high,
            // A committed offset below the retained range resumes at the oldest message. No
            // upper clamp: Tansu under-reports the high watermark (see `reached_end`); past the
            // real end, librdkafka's `auto.offset.reset = earliest` applies.
            StartPosition::Committed => committed.map_or(low, |c| c.max(low)),
        };
        let assign = |tpl: &mut TopicPartitionList| tpl.add_partition_offset(topic, p, Offset::Offset(start));
        assign(&mut tpl).map_err(|source| KafkaSourceError::Assign {
            topic: topic.to_owned(),
            partitions: owned.clone(),
            source: Box::new(source),
        })?;
        positions.push(PartitionPos { partition: p, next: start, high, reached_end: high <= low });
    }
    consumer.assign(&tpl).map_err(|source| KafkaSourceError::Assign {
        topic: topic.to_owned(),
        partitions: owned.clone(),
        source: Box::new(source),
    })?;
    Ok(Setup { consumer: Some(Arc::new(consumer)), positions })
}

/// Runs `f` until it succeeds, fails with a non-retryable error, or `deadline` passes
/// (backoff 100 ms doubling to 2 s). `f` is told whether this is the last attempt.
fn retry<T>(deadline: Instant, mut f: impl FnMut(bool) -> Result<T, KafkaSourceError>) -> Result<T, KafkaSourceError> {
    let mut backoff = Duration::from_millis(100);
    loop {
        let last = Instant::now() + backoff >= deadline;
        match f(last) {
            Ok(v) => return Ok(v),
            Err(e) if e.is_retryable() && !last => {
                tracing::warn!(error = %e, retry_in = ?backoff, "Kafka not ready; retrying");
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_partition_has_exactly_one_owner() {
        for peers in 1..6 {
            for partitions in 0..9 {
                let mut owners = vec![0; partitions as usize];
                for w in 0..peers {
                    for p in owned_partitions(partitions, w, peers) {
                        assert_eq!(p as usize % peers, w);
                        owners[p as usize] += 1;
                    }
                }
                assert!(owners.iter().all(|&n| n == 1), "{peers} peers, {partitions} partitions: {owners:?}");
            }
        }
    }

    #[test]
    fn payload_errors_read_like_decode_errors() {
        let e = payload_error(42, "empty payload");
        assert_eq!(e.to_string(), "record 42: invalid JSON at column 1: empty payload");
    }

    #[test]
    fn invalid_config_is_reported_before_connecting() {
        let cfg = KafkaSourceConfig { max_batch: 0, ..Default::default() };
        let mut got = None;
        timely::execute_directly(move |worker| {
            let probe = ProbeHandle::new();
            worker.dataflow::<Time, _, _>(|scope| {
                got = kafka_source(scope, &cfg, TimeBounds::default(), 0, probe.clone(), |_, _, _| {}, None).err();
            });
            assert!(matches!(&got, Some(KafkaSourceError::Config(e)) if e.len() == 1), "{got:?}");
        });
    }
}
