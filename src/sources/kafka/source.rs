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
use timely::dataflow::{ProbeHandle, Scope, StreamVec};
use timely::scheduling::SyncActivator;

use super::config::{KafkaSourceConfig, StartPosition};
use super::context::SourceContext;
use super::error::{KafkaSourceError, is_retryable};
use super::offsets::OffsetTracker;
use super::watermark::Watermarks;
use crate::decode::{DecodeError, DecodeErrorKind, Location, decode_json_line};
use crate::status::{Clock, PartitionUpdate, ProcessMetrics, SystemClock};

pub use crate::sources::driver::MAX_IN_FLIGHT;
/// Longest sleep between two activations (idleness, main queue, commits, stop requests).
const HEARTBEAT: Duration = Duration::from_millis(100);
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
    /// The oldest retained offset at start (the floor of a [`Resume`] seek-back).
    low: i64,
    /// Set while a resume position (a checkpoint's or a committed offset) is unconfirmed.
    resume: Option<Resume>,
}

/// Confirms that reading resumed exactly at `target`. A broker answers a fetch at an offset
/// inside a record batch with the whole batch, and the client drops the records below the
/// offset (Kafka's protocol; librdkafka does it). Tansu 0.6 answers with the *next* batch
/// instead, and may re-send older batches at the end of a partition: resuming a checkpoint
/// there would skip or repeat records. So until a record at or below `target` is seen, a
/// first record past it (or an end of partition, or silence) seeks back (`back` records,
/// growing 4x, down to the oldest retained offset); records below `next` are always dropped.
/// On a conforming broker the first record is `target` and nothing else happens.
#[derive(Clone, Copy, Debug)]
struct Resume {
    target: i64,
    back: i64,
    /// A record below `target` was delivered: the fetch covers `target`; what follows is real.
    covered: bool,
    /// When the last seek was issued (silence after it also seeks back).
    since: Instant,
}

/// How long a resumed partition may stay silent before [`Resume`] seeks back.
const RESUME_SILENCE: Duration = Duration::from_millis(500);

/// The Kafka source of this worker without checkpoints (tests, tools): [`kafka_reader`]
/// driven by [`crate::sources::driver::drive`] with no checkpoint interval.
///
/// - `bounds`: accepted event times (decoding rejects bars outside).
/// - `gate`: the probe of the dataflow's outputs; while it lags behind the source's capability
///   at most [`MAX_IN_FLIGHT`] records are emitted. Offsets are committed only for batches the
///   probe has passed.
/// - `on_invalid(location, error, payload)`: every message that is not a valid bar, with
///   location `topic/partition@offset`.
///
/// Returns the stream of bars and the worker-local [`KafkaSourceHandle`].
#[allow(clippy::too_many_arguments)]
pub fn kafka_source<'s>(
    scope: Scope<'s, Time>,
    cfg: &KafkaSourceConfig,
    bounds: TimeBounds,
    watermark_delay_ms: i64,
    gate: ProbeHandle<Time>,
    on_invalid: impl FnMut(&str, &DecodeError, &[u8]) + 'static,
    metrics: Option<Arc<ProcessMetrics>>,
) -> Result<(StreamVec<'s, Time, Bar>, KafkaSourceHandle), KafkaSourceError> {
    use crate::sources::driver::{DriverConfig, Probes, SimpleHost, drive};
    use timely::dataflow::operators::Probe;
    let clock: Arc<dyn Clock> = match &metrics {
        Some(m) => Arc::clone(m.clock()),
        None => Arc::new(SystemClock),
    };
    let (reader, handle) =
        kafka_reader(cfg, scope.index(), scope.peers(), bounds, watermark_delay_ms, gate.clone(), metrics, &[])?;
    let control = crate::recovery::RunControl::new();
    let host = Rc::new(RefCell::new(SimpleHost::new(on_invalid)));
    let probes = Probes {
        durable: gate,
        sources: ProbeHandle::new(),
        manifest: ProbeHandle::new(),
        snapped: ProbeHandle::new(),
    };
    let sources = probes.sources.clone();
    let cfg = DriverConfig {
        name: "KafkaSource".into(),
        epoch: 0,
        start_watermark: 0,
        interval: None,
        batch: cfg.max_batch.max(1),
        rate: 0,
    };
    let (bars, _markers, _reports, _snapped) = drive(scope, cfg, reader, probes, host, control, clock);
    Ok((bars.probe_with(&sources), handle))
}

/// This worker's Kafka reader: it connects, assigns the partitions `p % peers == index`,
/// resuming those in `restored` at their checkpointed offsets and watermarks (the others at
/// the configured `start`), and reads bars for [`crate::sources::driver::drive`].
#[allow(clippy::too_many_arguments)]
pub fn kafka_reader(
    cfg: &KafkaSourceConfig,
    index: usize,
    peers: usize,
    bounds: TimeBounds,
    watermark_delay_ms: i64,
    gate: ProbeHandle<Time>,
    metrics: Option<Arc<ProcessMetrics>>,
    restored: &[crate::recovery::KafkaPartitionState],
) -> Result<(KafkaReader, KafkaSourceHandle), KafkaSourceError> {
    let errs = cfg.validate();
    if !errs.is_empty() {
        return Err(KafkaSourceError::Config(errs));
    }
    let clock: Arc<dyn Clock> = match &metrics {
        Some(m) => Arc::clone(m.clock()),
        None => Arc::new(SystemClock),
    };
    let topic = cfg.topic.clone();
    let setup = connect(cfg, index, peers, metrics.clone(), restored)?;
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
        probe: gate,
        stats: Arc::clone(&stats),
        stopper: stopper.clone(),
    };
    // Per-partition queues, each waking the worker when it becomes non-empty.
    let mut queues = Vec::with_capacity(partitions.len());
    let wake = Arc::new(OnceLock::<SyncActivator>::new());
    for (&p, consumer) in partitions.iter().zip(std::iter::repeat(&setup.consumer).flatten()) {
        // `split_partition_queue` only fails for a topic name with a NUL byte (validated
        // away) or an unknown partition (we just read it from the metadata).
        let mut q = consumer.split_partition_queue(&topic, p).expect("an assigned partition has a queue");
        let w = Arc::clone(&wake);
        q.set_nonempty_callback(move || {
            if let Some(a) = w.get() {
                // Fails only once the worker is gone; then nobody needs waking.
                let _ = a.activate();
            }
        });
        queues.push(q);
    }
    let now = clock.now_ms();
    let mut watermarks = Watermarks::new(&partitions, watermark_delay_ms, cfg.idle_timeout().as_millis() as i64, now);
    for (i, pos) in setup.positions.iter().enumerate() {
        if let Some(ts) =
            restored.iter().find(|r| r.topic == topic && r.partition == pos.partition).and_then(|r| r.max_ts)
        {
            watermarks.on_data(i, ts, now);
        }
        if pos.reached_end {
            watermarks.on_end(i);
        }
    }
    if setup.consumer.is_some() {
        tracing::info!(
            worker = index,
            topic = %topic,
            partitions = ?partitions,
            start = %cfg.start_position(),
            resumed = restored.iter().filter(|r| r.topic == topic && partitions.contains(&r.partition)).count(),
            stop_at_end = cfg.stop_at_end,
            "Kafka source assigned"
        );
    } else {
        tracing::info!(worker = index, topic = %topic, "Kafka source owns no partition");
    }
    let reader = KafkaReader {
        consumer: setup.consumer,
        queues,
        positions: setup.positions,
        watermarks,
        topic,
        group: cfg.group_id.clone(),
        index,
        bounds,
        stats,
        shared,
        stopper,
        metrics,
        commit_every: cfg.commit_interval(),
        last_commit: Instant::now(),
        last_status: Instant::now() - STATUS_EVERY,
        stop_at_end: cfg.stop_at_end,
        location: String::new(),
        wake,
    };
    Ok((reader, handle))
}

/// One worker's Kafka partitions, read for the source driver.
pub struct KafkaReader {
    consumer: Option<Arc<KafkaConsumer>>,
    queues: Vec<rdkafka::consumer::base_consumer::PartitionQueue<SourceContext>>,
    positions: Vec<PartitionPos>,
    watermarks: Watermarks,
    topic: String,
    group: String,
    index: usize,
    bounds: TimeBounds,
    stats: Arc<KafkaSourceStats>,
    shared: Rc<RefCell<Shared>>,
    stopper: KafkaStopper,
    metrics: Option<Arc<ProcessMetrics>>,
    commit_every: Duration,
    last_commit: Instant,
    last_status: Instant,
    stop_at_end: bool,
    location: String,
    wake: Arc<OnceLock<SyncActivator>>,
}

impl KafkaReader {
    /// Wakes `activator` when a partition queue becomes non-empty.
    pub fn wake_with(&self, activator: SyncActivator) {
        let _ = self.wake.set(activator.clone());
        let _ = self.stopper.activator.set(activator);
    }
}

impl crate::sources::driver::Reader for KafkaReader {
    fn set_waker(&mut self, activator: SyncActivator) {
        self.wake_with(activator);
    }

    fn read(
        &mut self,
        budget: usize,
        now_ms: i64,
        time: Time,
        out: &mut Vec<Bar>,
        dead: &mut crate::sources::driver::DeadLetters<'_>,
    ) -> Result<crate::sources::driver::ReadOutcome, crate::sources::driver::SourceError> {
        use crate::sources::driver::ReadOutcome;
        if self.consumer.is_none() || self.stopper.is_stopped() {
            return Ok(ReadOutcome { records: 0, more: false, exhausted: true });
        }
        let share = budget.div_ceil(self.queues.len().max(1)).max(1);
        let (mut messages, mut invalid, mut errors) = (0u64, 0u64, 0u64);
        let before = out.len();
        let mut more = false;
        let mut touched = false;
        for (i, q) in self.queues.iter().enumerate() {
            let pos = &mut self.positions[i];
            let (mut read, mut max_ts) = (0usize, None::<i64>);
            let mut dropped = 0usize;
            if pos.resume.is_some_and(|r| !r.covered && r.since.elapsed() >= RESUME_SILENCE) {
                seek_back(self.consumer.as_deref(), &self.topic, self.index, pos);
                continue;
            }
            while read + dropped < share {
                match q.poll(Duration::ZERO) {
                    None => break,
                    Some(Err(KafkaError::PartitionEOF(_))) => {
                        if pos.resume.is_some_and(|r| !r.covered) {
                            seek_back(self.consumer.as_deref(), &self.topic, self.index, pos);
                            break;
                        }
                        pos.resume = None;
                        self.watermarks.on_end(i);
                        pos.reached_end = true;
                        pos.high = pos.high.max(pos.next);
                    }
                    Some(Ok(m)) if m.offset() < pos.next => {
                        // Already read (a seek-back, or a broker re-sending a batch).
                        dropped += 1;
                        if let Some(r) = pos.resume.as_mut() {
                            r.covered = true;
                        }
                    }
                    Some(Ok(m)) if m.offset() > pos.next && pos.resume.is_some_and(|r| !r.covered) => {
                        // The broker skipped from the resume offset to a later batch.
                        seek_back(self.consumer.as_deref(), &self.topic, self.index, pos);
                        break;
                    }
                    Some(Err(error)) => {
                        errors += 1;
                        tracing::warn!(worker = self.index, topic = %self.topic, partition = pos.partition, %error, "consume error; librdkafka retries");
                        break;
                    }
                    Some(Ok(m)) => {
                        read += 1;
                        let offset = m.offset();
                        pos.next = offset + 1;
                        pos.resume = None;
                        let decoded = match m.payload() {
                            None => Err(payload_error(offset, "tombstone: the message has no payload")),
                            Some([]) => Err(payload_error(offset, "empty payload")),
                            Some(p) => decode_json_line(p, offset as u64, &self.bounds).map_err(|mut e| {
                                e.location = Location::Offset(offset as u64);
                                e
                            }),
                        };
                        match decoded {
                            Ok(bar) => {
                                max_ts = Some(max_ts.map_or(bar.ts, |t| t.max(bar.ts)));
                                out.push(bar);
                            }
                            Err(error) => {
                                invalid += 1;
                                use std::fmt::Write as _;
                                self.location.clear();
                                // Writing to a String cannot fail.
                                let _ = write!(self.location, "{}/{}@{offset}", self.topic, pos.partition);
                                let before = self.watermarks.partitions()[i].max_ts;
                                let event_ms = match (before, max_ts) {
                                    (Some(a), Some(b)) => Some(a.max(b)),
                                    (a, b) => a.or(b),
                                };
                                dead(&self.location, event_ms, &error, m.payload().unwrap_or(&[]));
                            }
                        }
                    }
                }
            }
            if read > 0 {
                messages += read as u64;
                touched = true;
                self.watermarks.on_messages(i, max_ts, now_ms);
                self.shared.borrow_mut().tracker.emitted(pos.partition, time, pos.next);
                pos.high = pos.high.max(pos.next);
            }
            more |= read + dropped == share;
        }
        let bars = (out.len() - before) as u64;
        if messages > 0 || invalid > 0 || errors > 0 {
            self.stats.messages.fetch_add(messages, Ordering::Relaxed);
            self.stats.bars.fetch_add(bars, Ordering::Relaxed);
            self.stats.invalid.fetch_add(invalid, Ordering::Relaxed);
            self.stats.errors.fetch_add(errors, Ordering::Relaxed);
        }
        if let (Some(m), Some(consumer)) = (&self.metrics, self.consumer.as_ref()) {
            if touched || self.last_status.elapsed() >= STATUS_EVERY {
                self.last_status = Instant::now();
                if touched {
                    m.set_source_connected(true);
                }
                let ctx = consumer.context();
                let topic = &self.topic;
                let index = self.index;
                m.update_partitions(self.positions.iter_mut().map(|p| {
                    p.high = p.high.max(ctx.high_watermark(p.partition).unwrap_or(i64::MIN));
                    PartitionUpdate {
                        topic,
                        partition: p.partition,
                        owner_worker: index,
                        offset: p.next,
                        high_watermark: p.high,
                    }
                }));
            }
        }
        let exhausted = self.stop_at_end && self.positions.iter().all(|p| p.reached_end);
        if exhausted {
            tracing::info!(worker = self.index, topic = %self.topic, "Kafka source reached the end of its partitions");
        }
        Ok(ReadOutcome { records: messages as usize, more, exhausted })
    }

    fn watermark(&mut self, now_ms: i64) -> Result<Option<u64>, crate::sources::driver::SourceError> {
        if self.consumer.is_none() {
            return Ok(Some(crate::sources::driver::DONE));
        }
        Ok(self.watermarks.watermark(now_ms).map(tickflow_operators::time::watermark_of))
    }

    fn position(&self) -> crate::recovery::SourceState {
        let clocks = self.watermarks.partitions();
        crate::recovery::SourceState::Kafka(
            self.positions
                .iter()
                .zip(clocks)
                .map(|(p, c)| crate::recovery::KafkaPartitionState {
                    topic: self.topic.clone(),
                    partition: p.partition,
                    next: p.next,
                    max_ts: c.max_ts,
                })
                .collect(),
        )
    }

    fn describe(&self) -> Vec<crate::checkpoint::SourcePosition> {
        let clocks = self.watermarks.partitions();
        self.positions
            .iter()
            .zip(clocks)
            .map(|(p, c)| crate::checkpoint::SourcePosition {
                source: format!("kafka:{}/{}", self.topic, p.partition),
                position: format!("offset {}", p.next),
                watermark_ms: c.max_ts,
            })
            .collect()
    }

    fn idle_wake(&mut self, now_ms: i64) -> Duration {
        let idle_in = self.watermarks.next_idle_in_ms(now_ms).map(|ms| Duration::from_millis(ms as u64));
        idle_in.map_or(HEARTBEAT, |d| d.min(HEARTBEAT))
    }

    fn housekeeping(&mut self, durable: &ProbeHandle<Time>) {
        let Some(consumer) = self.consumer.as_ref() else { return };
        // Serve errors, statistics and commit results.
        for _ in 0..MAX_EVENTS {
            match consumer.poll(Duration::ZERO) {
                None => break,
                Some(Ok(m)) => tracing::warn!(
                    worker = self.index,
                    partition = m.partition(),
                    offset = m.offset(),
                    "unexpected message on the main queue; skipped"
                ),
                Some(Err(error)) => {
                    self.stats.errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(worker = self.index, topic = %self.topic, %error, "Kafka consumer event");
                }
            }
        }
        if self.last_commit.elapsed() >= self.commit_every {
            self.last_commit = Instant::now();
            if let Err(error) = commit(&self.shared, durable, &self.topic, &self.group, CommitMode::Async, &self.stats)
            {
                tracing::warn!(worker = self.index, %error, "committing offsets failed; the next commit retries");
            }
        }
    }

    fn finish(&mut self, durable: &ProbeHandle<Time>) {
        if let Err(error) = commit(&self.shared, durable, &self.topic, &self.group, CommitMode::Async, &self.stats) {
            tracing::warn!(worker = self.index, %error, "committing offsets failed");
        }
    }
}

/// A decode error for a message without a usable payload.
fn payload_error(offset: i64, message: &str) -> DecodeError {
    DecodeError::new(
        Location::Offset(offset as u64),
        DecodeErrorKind::Syntax { format: "JSON", column: 1, message: message.to_owned() },
    )
}

/// The consumer and positions of one worker, after `assign`.
struct Setup {
    consumer: Option<Arc<KafkaConsumer>>,
    positions: Vec<PartitionPos>,
}

/// Re-seeks a resumed partition further back ([`Resume`]), down to the oldest retained offset;
/// from there on, whatever the broker delivers first is taken as it is.
fn seek_back(consumer: Option<&KafkaConsumer>, topic: &str, worker: usize, pos: &mut PartitionPos) {
    let (Some(consumer), Some(r)) = (consumer, pos.resume.as_mut()) else { return };
    let to = (r.target - r.back).max(pos.low);
    tracing::warn!(
        worker,
        topic,
        partition = pos.partition,
        resume = r.target,
        seek = to,
        "the broker did not resume the partition at the requested offset; reading from further back \
         and dropping what was already read"
    );
    match consumer.seek(topic, pos.partition, Offset::Offset(to), Duration::from_secs(5)) {
        Ok(()) => {
            r.back = r.back.saturating_mul(4);
            r.since = Instant::now();
            if to == pos.low {
                // Nothing older exists: the next record delivered is the real continuation.
                r.covered = true;
            }
        }
        Err(error) => {
            tracing::warn!(worker, topic, partition = pos.partition, %error, "seek failed; retrying");
            r.since = Instant::now();
        }
    }
}

/// Creates the consumer, reads the partition count, owned partitions' watermarks and (for
/// `start = "committed"`) committed offsets, and assigns the owned partitions.
fn connect(
    cfg: &KafkaSourceConfig,
    index: usize,
    peers: usize,
    metrics: Option<Arc<ProcessMetrics>>,
    restored: &[crate::recovery::KafkaPartitionState],
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
        // A checkpoint's position wins over `start` (offsets below the retained range resume
        // at the oldest message, and say so).
        let start = match restored.iter().find(|r| r.topic == topic && r.partition == p) {
            Some(r) if r.next < low => {
                tracing::warn!(
                    topic,
                    partition = p,
                    checkpoint = r.next,
                    oldest = low,
                    "checkpointed offset no longer retained; resuming at the oldest message"
                );
                low
            }
            Some(r) => r.next,
            None => start,
        };
        let assign = |tpl: &mut TopicPartitionList| tpl.add_partition_offset(topic, p, Offset::Offset(start));
        assign(&mut tpl).map_err(|source| KafkaSourceError::Assign {
            topic: topic.to_owned(),
            partitions: owned.clone(),
            source: Box::new(source),
        })?;
        let resume = (start > low).then(|| Resume { target: start, back: 1024, covered: false, since: Instant::now() });
        positions.push(PartitionPos { partition: p, next: start, high, reached_end: high <= low, low, resume });
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
        assert_eq!(e.to_string(), "offset 42: invalid JSON at column 1: empty payload");
    }

    #[test]
    fn invalid_config_is_reported_before_connecting() {
        let cfg = KafkaSourceConfig { max_batch: 0, ..Default::default() };
        let mut got = None;
        timely::execute_directly(move |worker| {
            let probe = ProbeHandle::new();
            worker.dataflow::<u64, _, _>(|root| {
                root.scoped::<Time, _, _>("Test", |scope| {
                    got = kafka_source(scope, &cfg, TimeBounds::default(), 0, probe.clone(), |_, _, _| {}, None).err();
                })
            });
            assert!(matches!(&got, Some(KafkaSourceError::Config(e)) if e.len() == 1), "{got:?}");
        });
    }
}
