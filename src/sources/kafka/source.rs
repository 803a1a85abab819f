//! The Kafka source operator: one `BaseConsumer` per worker, statically assigned
//! (topic, partition)s ([`super::assign`]), bars emitted at the worker's event-time watermark,
//! gated on the outputs' probe.
//!
//! Setup (metadata, watermarks, committed offsets, `assign`) happens in [`kafka_source`] while
//! the dataflow is built, so configuration and connection problems come back as a
//! [`KafkaSourceError`] before any record flows. With `topic-pattern` a thread of the reader
//! reads the brokers' topic list every `topic-refresh` and hands it to the worker, which
//! assigns the new (topic, partition)s it owns (`incremental_assign`, from the beginning, or
//! from a checkpoint's position) between two activations. Each owned partition gets its own
//! librdkafka queue (`split_partition_queue`) whose non-empty callback wakes the operator
//! through a `SyncActivator`; reads are fair across partitions and bounded by `max-batch` per
//! activation. The main queue (errors, statistics, commit results) is polled on every
//! activation, and a heartbeat re-activates the operator at least every 100 ms (idleness is a
//! matter of time passing, not of new messages).

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError};
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

use super::assign::Assigner;
use super::config::{KafkaSpec, StartPosition, TopicSelection};
use super::context::SourceContext;
use super::error::{KafkaSourceError, is_retryable};
use super::offsets::OffsetTracker;
use super::watermark::Watermarks;
use crate::decode::{DecodeError, DecodeErrorKind, Location, decode_json_line};
use crate::recovery::KafkaPartitionState;
use crate::status::{Clock, PartitionUpdate, ProcessMetrics, SystemClock};

pub use crate::sources::driver::MAX_IN_FLIGHT;
/// Longest sleep between two activations (idleness, main queue, commits, stop requests).
const HEARTBEAT: Duration = Duration::from_millis(100);
/// Main-queue events served per activation.
const MAX_EVENTS: usize = 64;
/// How often partition positions are published to the status endpoint without new data.
const STATUS_EVERY: Duration = Duration::from_secs(1);

type KafkaConsumer = BaseConsumer<SourceContext>;

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
    /// Keyed by index into `slots`.
    tracker: OffsetTracker<usize>,
    /// Every (topic, partition) this worker reads, in the order they were assigned.
    slots: Vec<(String, i32)>,
}

/// The worker-local handle of a Kafka source: its partitions, counters, stop switch, and the
/// offset commits of what the outputs completed.
pub struct KafkaSourceHandle {
    topics: String,
    group: String,
    worker: usize,
    partitions: Vec<(String, i32)>,
    shared: Rc<RefCell<Shared>>,
    probe: ProbeHandle<Time>,
    stats: Arc<KafkaSourceStats>,
    stopper: KafkaStopper,
}

impl KafkaSourceHandle {
    /// The (topic, partition)s this worker was assigned at start (a pattern may add more
    /// while running: [`Self::assigned`]).
    pub fn partitions(&self) -> &[(String, i32)] {
        &self.partitions
    }

    /// Every (topic, partition) this worker reads now.
    pub fn assigned(&self) -> Vec<(String, i32)> {
        self.shared.borrow().slots.clone()
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
        commit(&self.shared, &self.probe, &self.group, CommitMode::Async, &self.stats)
    }

    /// Commits synchronously the offsets of every batch the probe has passed. Call it after the
    /// worker's dataflow completed (`while worker.step_or_park(..) {}`): then the probe is
    /// empty and every offset read is committed. Returns how many partitions were committed.
    pub fn finish(&self) -> Result<usize, KafkaSourceError> {
        let n = commit(&self.shared, &self.probe, &self.group, CommitMode::Sync, &self.stats)?;
        tracing::info!(
            worker = self.worker,
            topics = %self.topics,
            partitions = self.shared.borrow().slots.len(),
            committed = n,
            bars = self.stats.bars.load(Ordering::Relaxed),
            invalid = self.stats.invalid.load(Ordering::Relaxed),
            "Kafka source finished"
        );
        Ok(n)
    }

    /// The next offset after everything the outputs completed on `partition` of `topic`, if
    /// anything.
    pub fn completed_offset(&self, topic: &str, partition: i32) -> Option<i64> {
        let shared = self.shared.borrow();
        let slot = shared.slots.iter().position(|(t, p)| t == topic && *p == partition)?;
        shared.tracker.completed_offset(slot)
    }
}

/// Marks complete what `probe` passed, commits the new offsets with `mode`.
fn commit(
    shared: &Rc<RefCell<Shared>>,
    probe: &ProbeHandle<Time>,
    group: &str,
    mode: CommitMode,
    stats: &KafkaSourceStats,
) -> Result<usize, KafkaSourceError> {
    let mut shared = shared.borrow_mut();
    let Shared { consumer, tracker, slots } = &mut *shared;
    let Some(consumer) = consumer.as_ref() else { return Ok(0) };
    probe.with_frontier(|f| tracker.completed(&f));
    let commits = tracker.take_commits();
    if commits.is_empty() {
        return Ok(0);
    }
    let mut tpl = TopicPartitionList::with_capacity(commits.len());
    for &(slot, offset) in &commits {
        let (topic, partition) = &slots[slot];
        tpl.add_partition_offset(topic, *partition, Offset::Offset(offset))
            .map_err(|source| KafkaSourceError::Commit { group: group.to_owned(), source: Box::new(source) })?;
    }
    stats.commits.fetch_add(1, Ordering::Relaxed);
    if let Err(source) = consumer.commit(&tpl, mode) {
        // Hand the offsets out again so the next commit retries them.
        tracker.reset_committed();
        return Err(KafkaSourceError::Commit { group: group.to_owned(), source: Box::new(source) });
    }
    tracing::debug!(partitions = commits.len(), ?mode, "committing completed offsets");
    Ok(commits.len())
}

/// One owned partition's read position.
#[derive(Clone, Debug)]
struct PartitionPos {
    topic: String,
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
/// - `gate`: the probe of the dataflow's outputs; at most [`MAX_IN_FLIGHT`] records (or two
///   batches, when larger) the probe has not passed are in flight. Offsets are committed only for batches the
///   probe has passed.
/// - `on_invalid(location, error, payload)`: every message that is not a valid bar, with
///   location `topic/partition@offset`.
///
/// Returns the stream of bars and the worker-local [`KafkaSourceHandle`].
#[allow(clippy::too_many_arguments)]
pub fn kafka_source<'s>(
    scope: Scope<'s, Time>,
    spec: &KafkaSpec,
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
        kafka_reader(spec, scope.index(), scope.peers(), bounds, watermark_delay_ms, gate.clone(), metrics, &[])?;
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
        batch: spec.max_batch.max(1),
        rate: 0,
    };
    let (bars, _markers, _reports, _snapped) = drive(scope, cfg, reader, probes, host, control, clock);
    Ok((bars.probe_with(&sources), handle))
}

/// This worker's Kafka reader: it connects, assigns the (topic, partition)s the
/// [`Assigner`] gives worker `index` of `peers`, resuming those in `restored` at their
/// checkpointed offsets and watermarks (the others at the configured `start`), and reads bars
/// for [`crate::sources::driver::drive`].
#[allow(clippy::too_many_arguments)]
pub fn kafka_reader(
    spec: &KafkaSpec,
    index: usize,
    peers: usize,
    bounds: TimeBounds,
    watermark_delay_ms: i64,
    gate: ProbeHandle<Time>,
    metrics: Option<Arc<ProcessMetrics>>,
    restored: &[KafkaPartitionState],
) -> Result<(KafkaReader, KafkaSourceHandle), KafkaSourceError> {
    let clock: Arc<dyn Clock> = match &metrics {
        Some(m) => Arc::clone(m.clock()),
        None => Arc::new(SystemClock),
    };
    let ignored: BTreeSet<&str> =
        restored.iter().map(|r| r.topic.as_str()).filter(|t| !spec.topics.selects(t)).collect();
    if !ignored.is_empty() {
        tracing::warn!(
            worker = index,
            topics = ?ignored,
            selection = %spec.topics,
            "the checkpoint has positions of topics the configuration no longer selects; they are not read"
        );
    }
    let setup = connect(spec, index, peers, metrics.clone(), restored)?;
    let slots: Vec<(String, i32)> = setup.positions.iter().map(|p| (p.topic.clone(), p.partition)).collect();
    if let Some(m) = &metrics {
        m.set_source_connected(true);
    }
    let stats = Arc::new(KafkaSourceStats::default());
    let stopper = KafkaStopper::default();
    let shared = Rc::new(RefCell::new(Shared {
        consumer: setup.consumer.clone(),
        tracker: OffsetTracker::default(),
        slots: Vec::new(),
    }));
    let handle = KafkaSourceHandle {
        topics: spec.topics.to_string(),
        group: spec.group_id.clone(),
        worker: index,
        partitions: slots.clone(),
        shared: Rc::clone(&shared),
        probe: gate,
        stats: Arc::clone(&stats),
        stopper: stopper.clone(),
    };
    let wake = Arc::new(OnceLock::<SyncActivator>::new());
    let now = clock.now_ms();
    let mut watermarks = Watermarks::new(&[], watermark_delay_ms, spec.idle_timeout.as_millis() as i64, now);
    // A worker that owns nothing yet, while a pattern may give it a topic later, follows the
    // wall clock (as if its partitions were idle) instead of holding every worker back.
    let discover = matches!(spec.topics, TopicSelection::Pattern { .. }) && !spec.stop_at_end;
    watermarks.set_follow_clock_when_empty(discover);
    let mut reader = KafkaReader {
        consumer: setup.consumer.clone(),
        queues: Vec::new(),
        positions: Vec::new(),
        watermarks,
        topics: spec.topics.to_string(),
        group: spec.group_id.clone(),
        index,
        bounds,
        stats,
        shared,
        stopper,
        metrics,
        commit_every: spec.commit_interval,
        last_commit: Instant::now(),
        last_status: Instant::now() - STATUS_EVERY,
        stop_at_end: spec.stop_at_end,
        location: String::new(),
        wake: Arc::clone(&wake),
        discovery: None,
        assigner: setup.assigner,
        known: setup.known,
        restored: Vec::new(),
    };
    for pos in setup.positions {
        reader.add_partition(pos, restored, now);
    }
    if let (true, Some(consumer), TopicSelection::Pattern { refresh, .. }) = (discover, &setup.consumer, &spec.topics) {
        reader.restored = restored.iter().filter(|r| spec.topics.selects(&r.topic)).cloned().collect();
        reader.discovery = Some(Discovery::start(Arc::clone(consumer), spec.topics.clone(), *refresh, wake, index));
    }
    if reader.consumer.is_some() {
        tracing::info!(
            worker = index,
            topics = %spec.topics,
            partitions = ?slots.iter().map(|(t, p)| format!("{t}/{p}")).collect::<Vec<_>>(),
            start = %spec.start,
            resumed = restored.iter().filter(|r| slots.iter().any(|(t, p)| *t == r.topic && *p == r.partition)).count(),
            stop_at_end = spec.stop_at_end,
            "Kafka source assigned"
        );
    } else {
        tracing::info!(worker = index, topics = %spec.topics, "Kafka source owns no partition");
    }
    Ok((reader, handle))
}

/// One worker's Kafka partitions, read for the source driver.
pub struct KafkaReader {
    /// With a pattern (and without `stop-at-end`): the topic list, read again periodically.
    /// First, so its thread is stopped and joined before the consumer goes.
    discovery: Option<Discovery>,
    consumer: Option<Arc<KafkaConsumer>>,
    queues: Vec<rdkafka::consumer::base_consumer::PartitionQueue<SourceContext>>,
    /// Parallel to `queues`, to the watermarks' partitions and to `Shared::slots`.
    positions: Vec<PartitionPos>,
    watermarks: Watermarks,
    /// The selection, for logs.
    topics: String,
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
    assigner: Assigner,
    /// Every (topic, partition) seen in metadata (owned or not): what a refresh adds is the rest.
    known: BTreeSet<(String, i32)>,
    /// With a pattern: the checkpoint's positions, for topics that show up only later.
    restored: Vec<KafkaPartitionState>,
}

impl KafkaReader {
    /// Wakes `activator` when a partition queue becomes non-empty.
    pub fn wake_with(&self, activator: SyncActivator) {
        let _ = self.wake.set(activator.clone());
        let _ = self.stopper.activator.set(activator);
    }

    /// Starts reading `pos` (already assigned on the consumer): its own queue, waking the
    /// worker when it becomes non-empty, its watermark (restored from `restored` if there),
    /// its offset slot.
    fn add_partition(&mut self, pos: PartitionPos, restored: &[KafkaPartitionState], now_ms: i64) {
        let Some(consumer) = self.consumer.as_ref() else { return };
        // `split_partition_queue` only fails for a topic name with a NUL byte (validated or
        // read from the metadata: never) or an unassigned partition (assigned just before).
        let Some(mut q) = consumer.split_partition_queue(&pos.topic, pos.partition) else {
            tracing::error!(worker = self.index, topic = %pos.topic, partition = pos.partition, "no queue for an assigned partition; not read");
            return;
        };
        let w = Arc::clone(&self.wake);
        q.set_nonempty_callback(move || {
            if let Some(a) = w.get() {
                // Fails only once the worker is gone; then nobody needs waking.
                let _ = a.activate();
            }
        });
        let i = self.watermarks.add(pos.partition, now_ms);
        if let Some(ts) =
            restored.iter().find(|r| r.topic == pos.topic && r.partition == pos.partition).and_then(|r| r.max_ts)
        {
            self.watermarks.on_data(i, ts, now_ms);
        }
        if pos.reached_end {
            self.watermarks.on_end(i);
        }
        self.shared.borrow_mut().slots.push((pos.topic.clone(), pos.partition));
        self.queues.push(q);
        self.positions.push(pos);
    }

    /// Takes the latest topic list from the discovery thread, if one came, and starts reading
    /// the new (topic, partition)s this worker owns: from a checkpoint's position if it has
    /// one, else from the beginning (the topic was created after the source started).
    fn take_new_topics(&mut self, now_ms: i64) {
        let Some(d) = self.discovery.as_ref() else { return };
        let topics = match d.rx.try_recv() {
            Ok(t) => t,
            Err(TryRecvError::Empty) => return,
            Err(TryRecvError::Disconnected) => {
                self.discovery = None;
                return;
            }
        };
        let Some(consumer) = self.consumer.clone() else { return };
        let mut new = Vec::new();
        for (topic, partitions) in &topics {
            for p in 0..*partitions {
                let key = (topic.clone(), p);
                if self.known.contains(&key) {
                    continue;
                }
                if self.assigner.owner(topic, p) == Some(self.index) {
                    new.push(key);
                } else {
                    self.known.insert(key);
                }
            }
        }
        if new.is_empty() {
            return;
        }
        let mut tpl = TopicPartitionList::with_capacity(new.len());
        let mut positions = Vec::with_capacity(new.len());
        for (topic, p) in &new {
            let restored = self.restored.iter().find(|r| r.topic == *topic && r.partition == *p);
            let (offset, next) = match restored {
                Some(r) => (Offset::Offset(r.next), r.next),
                None => (Offset::Beginning, 0),
            };
            if let Err(error) = tpl.add_partition_offset(topic, *p, offset) {
                tracing::warn!(worker = self.index, topic, partition = p, %error, "cannot assign a new partition; retrying at the next refresh");
                return;
            }
            let resume = (next > 0).then(|| Resume { target: next, back: 1024, covered: false, since: Instant::now() });
            positions.push(PartitionPos {
                topic: topic.clone(),
                partition: *p,
                next,
                high: 0,
                reached_end: false,
                low: 0,
                resume,
            });
        }
        if let Err(error) = consumer.incremental_assign(&tpl) {
            tracing::warn!(worker = self.index, %error, partitions = new.len(), "assigning new partitions failed; retrying at the next refresh");
            return;
        }
        tracing::info!(
            worker = self.index,
            partitions = ?new.iter().map(|(t, p)| format!("{t}/{p}")).collect::<Vec<_>>(),
            "new partitions of topics matching the pattern assigned; reading from the beginning"
        );
        let restored = std::mem::take(&mut self.restored);
        for pos in positions {
            self.known.insert((pos.topic.clone(), pos.partition));
            self.add_partition(pos, &restored, now_ms);
        }
        // Positions taken over are not needed again: a partition is assigned once.
        self.restored = restored
            .into_iter()
            .filter(|r| !self.positions.iter().any(|p| p.topic == r.topic && p.partition == r.partition))
            .collect();
    }
}

/// Reads the brokers' topic list every `refresh` on a thread of its own (a metadata request
/// may take up to 5 s on a broker in trouble; the worker thread must not wait for it) and
/// hands the matching topics, as (name, partitions), to the worker through a one-slot channel.
/// Stops, and is joined, when dropped.
struct Discovery {
    rx: Receiver<Vec<(String, i32)>>,
    stop: Option<SyncSender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Discovery {
    fn start(
        consumer: Arc<KafkaConsumer>,
        selection: TopicSelection,
        refresh: Duration,
        wake: Arc<OnceLock<SyncActivator>>,
        worker: usize,
    ) -> Discovery {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let (stop, stopped) = std::sync::mpsc::sync_channel::<()>(1);
        let thread = std::thread::Builder::new().name(format!("kafka-topics-w{worker}")).spawn(move || {
            loop {
                match stopped.recv_timeout(refresh) {
                    Err(RecvTimeoutError::Timeout) => {}
                    _ => return,
                }
                let topics = match consumer.fetch_metadata(None, refresh.min(Duration::from_secs(5))) {
                    Ok(md) => md
                        .topics()
                        .iter()
                        .filter(|t| t.error().is_none() && !t.partitions().is_empty() && selection.selects(t.name()))
                        .map(|t| (t.name().to_owned(), t.partitions().len() as i32))
                        .collect::<Vec<_>>(),
                    Err(error) => {
                        tracing::warn!(worker, %error, "reading the topic list failed; retrying at the next refresh");
                        continue;
                    }
                };
                // Full: the worker has not taken the previous list yet; the next one will do.
                if tx.try_send(topics).is_ok() {
                    if let Some(a) = wake.get() {
                        let _ = a.activate();
                    }
                }
            }
        });
        let thread = match thread {
            Ok(t) => Some(t),
            Err(error) => {
                tracing::error!(worker, %error, "starting the topic refresh thread failed; new topics are not picked up");
                None
            }
        };
        Discovery { rx, stop: Some(stop), thread }
    }
}

impl Drop for Discovery {
    fn drop(&mut self) {
        // Dropping the sender wakes the thread at once (disconnected).
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
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
        self.take_new_topics(now_ms);
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
                seek_back(self.consumer.as_deref(), self.index, pos);
                continue;
            }
            while read + dropped < share {
                match q.poll(Duration::ZERO) {
                    None => break,
                    Some(Err(KafkaError::PartitionEOF(_))) => {
                        if pos.resume.is_some_and(|r| !r.covered) {
                            seek_back(self.consumer.as_deref(), self.index, pos);
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
                        seek_back(self.consumer.as_deref(), self.index, pos);
                        break;
                    }
                    Some(Err(error)) => {
                        errors += 1;
                        tracing::warn!(worker = self.index, topic = %pos.topic, partition = pos.partition, %error, "consume error; librdkafka retries");
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
                                let _ = write!(self.location, "{}/{}@{offset}", pos.topic, pos.partition);
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
                self.shared.borrow_mut().tracker.emitted(i, time, pos.next);
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
                let index = self.index;
                m.update_partitions(self.positions.iter_mut().map(|p| {
                    p.high = p.high.max(ctx.high_watermark(&p.topic, p.partition).unwrap_or(i64::MIN));
                    PartitionUpdate {
                        topic: &p.topic,
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
            tracing::info!(worker = self.index, topics = %self.topics, "Kafka source reached the end of its partitions");
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
                .map(|(p, c)| KafkaPartitionState {
                    topic: p.topic.clone(),
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
                source: format!("kafka:{}/{}", p.topic, p.partition),
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
                    tracing::warn!(worker = self.index, topics = %self.topics, %error, "Kafka consumer event");
                }
            }
        }
        if self.last_commit.elapsed() >= self.commit_every {
            self.last_commit = Instant::now();
            if let Err(error) = commit(&self.shared, durable, &self.group, CommitMode::Async, &self.stats) {
                tracing::warn!(worker = self.index, %error, "committing offsets failed; the next commit retries");
            }
        }
    }

    fn finish(&mut self, durable: &ProbeHandle<Time>) {
        if let Err(error) = commit(&self.shared, durable, &self.group, CommitMode::Async, &self.stats) {
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
    assigner: Assigner,
    /// Every (topic, partition) in the metadata read at start.
    known: BTreeSet<(String, i32)>,
}

/// Re-seeks a resumed partition further back ([`Resume`]), down to the oldest retained offset;
/// from there on, whatever the broker delivers first is taken as it is.
fn seek_back(consumer: Option<&KafkaConsumer>, worker: usize, pos: &mut PartitionPos) {
    let (Some(consumer), Some(r)) = (consumer, pos.resume.as_mut()) else { return };
    let topic = pos.topic.as_str();
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

/// Creates the consumer, reads the selected topics' partition counts, the owned partitions'
/// watermarks and (for `start = "committed"`) committed offsets, and assigns the owned
/// partitions.
fn connect(
    spec: &KafkaSpec,
    index: usize,
    peers: usize,
    metrics: Option<Arc<ProcessMetrics>>,
    restored: &[KafkaPartitionState],
) -> Result<Setup, KafkaSourceError> {
    let brokers = spec.brokers.as_str();
    let mut cc = ClientConfig::new();
    cc.set("statistics.interval.ms", "5000");
    // librdkafka lets a fetch wait up to 500 ms for data by default: a latency floor for a
    // stream processor. 10 ms keeps p50 low at the cost of more fetch requests when idle.
    cc.set("fetch.wait.max.ms", "10");
    for (k, v) in &spec.options {
        cc.set(k, v);
    }
    cc.set("bootstrap.servers", brokers)
        .set("group.id", &spec.group_id)
        .set("client.id", format!("tickflow-w{index}"))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest");
    let consumer: KafkaConsumer = cc
        .create_with_context(SourceContext::new(index, metrics))
        .map_err(|source| KafkaSourceError::Client { brokers: brokers.to_owned(), source: Box::new(source) })?;

    let deadline = Instant::now() + spec.connect_timeout;
    let remaining = || deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(100));
    let metadata_error = |topic: &str, source: KafkaError| KafkaSourceError::Metadata {
        topic: topic.to_owned(),
        brokers: brokers.to_owned(),
        source: Box::new(source),
    };
    // (topic, partition count): listed topics in configured order, matched ones by name.
    let mut topics: Vec<(String, i32)> = Vec::new();
    let assigner = match &spec.topics {
        TopicSelection::Topics(list) => {
            for topic in list {
                let count = retry(deadline, |last| {
                    let md = consumer
                        .fetch_metadata(Some(topic), remaining().min(Duration::from_secs(5)))
                        .map_err(|source| metadata_error(topic, source))?;
                    let t = md.topics().iter().find(|t| t.name() == topic);
                    match t {
                        Some(t) if t.error().is_none() && !t.partitions().is_empty() => Ok(t.partitions().len() as i32),
                        // Right after creation a topic may briefly report "leader not available".
                        Some(t)
                            if !last
                                && t.error().is_some_and(|e| is_retryable(&KafkaError::MetadataFetch(e.into()))) =>
                        {
                            Err(metadata_error(
                                topic,
                                KafkaError::MetadataFetch(t.error().map(Into::into).unwrap_or(RDKafkaErrorCode::Fail)),
                            ))
                        }
                        _ => Err(KafkaSourceError::TopicNotFound { topic: topic.clone(), brokers: brokers.to_owned() }),
                    }
                })?;
                topics.push((topic.clone(), count));
            }
            Assigner::listed(topics.iter().map(|(t, n)| (t.as_str(), *n)), peers)
        }
        TopicSelection::Pattern { .. } => {
            let pattern = spec.topics.to_string();
            topics = retry(deadline, |_| {
                let md = consumer
                    .fetch_metadata(None, remaining().min(Duration::from_secs(5)))
                    .map_err(|source| metadata_error(&pattern, source))?;
                Ok(md
                    .topics()
                    .iter()
                    .filter(|t| t.error().is_none() && !t.partitions().is_empty() && spec.topics.selects(t.name()))
                    .map(|t| (t.name().to_owned(), t.partitions().len() as i32))
                    .collect())
            })?;
            topics.sort();
            if topics.is_empty() && index == 0 {
                tracing::warn!(
                    pattern = %pattern,
                    brokers,
                    refresh = ?match &spec.topics { TopicSelection::Pattern { refresh, .. } => *refresh, _ => Duration::ZERO },
                    "source.kafka.topic-pattern matches no topic yet; topics created later are read once found"
                );
            }
            Assigner::by_name(peers)
        }
    };
    let known: BTreeSet<(String, i32)> =
        topics.iter().flat_map(|(t, n)| (0..*n).map(move |p| (t.clone(), p))).collect();
    let owned = assigner.owned(topics.iter().map(|(t, n)| (t.as_str(), *n)), index);
    tracing::debug!(worker = index, topics = ?topics, owned = ?owned, "Kafka topic metadata read");
    let discover = matches!(spec.topics, TopicSelection::Pattern { .. }) && !spec.stop_at_end;
    if owned.is_empty() && !discover {
        return Ok(Setup { consumer: None, positions: Vec::new(), assigner, known });
    }
    let owned_names = || owned.iter().map(|(t, p)| format!("{t}/{p}")).collect::<Vec<_>>();
    let mut ranges = Vec::with_capacity(owned.len());
    for (topic, p) in &owned {
        let (low, high) = retry(deadline, |_| {
            consumer.fetch_watermarks(topic, *p, remaining().min(Duration::from_secs(5))).map_err(|source| {
                KafkaSourceError::Watermarks { topic: topic.clone(), partition: *p, source: Box::new(source) }
            })
        })?;
        ranges.push((low.max(0), high.max(0)));
    }
    let committed: Vec<Option<i64>> = match spec.start {
        StartPosition::Committed if !owned.is_empty() => {
            let mut tpl = TopicPartitionList::with_capacity(owned.len());
            for (topic, p) in &owned {
                tpl.add_partition(topic, *p);
            }
            let got = retry(deadline, |_| {
                consumer.committed_offsets(tpl.clone(), Timeout::After(remaining())).map_err(|source| {
                    KafkaSourceError::Committed {
                        group: spec.group_id.clone(),
                        topic: spec.topics.to_string(),
                        source: Box::new(source),
                    }
                })
            })?;
            owned
                .iter()
                .map(|(topic, p)| match got.find_partition(topic, *p).map(|e| e.offset()) {
                    Some(Offset::Offset(o)) if o >= 0 => Some(o),
                    _ => None,
                })
                .collect()
        }
        _ => vec![None; owned.len()],
    };
    let mut tpl = TopicPartitionList::with_capacity(owned.len());
    let mut positions = Vec::with_capacity(owned.len());
    for (((topic, p), &(low, high)), committed) in owned.iter().zip(&ranges).zip(committed) {
        let p = *p;
        let start = match spec.start {
            // Resuming a checkpoint, a partition it lacks is one the last run had not found
            // yet (a topic created later, a new partition, a topic added to the list): it is
            // read from its beginning, as the last run would have.
            _ if !restored.is_empty() => low,
            StartPosition::Earliest => low,
            StartPosition::Latest => high,
            // A committed offset below the retained range resumes at the oldest message. No
            // upper clamp: Tansu under-reports the high watermark (see `reached_end`); past the
            // real end, librdkafka's `auto.offset.reset = earliest` applies.
            StartPosition::Committed => committed.map_or(low, |c| c.max(low)),
        };
        // A checkpoint's position wins over `start` (offsets below the retained range resume
        // at the oldest message, and say so).
        let start = match restored.iter().find(|r| r.topic == *topic && r.partition == p) {
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
        tpl.add_partition_offset(topic, p, Offset::Offset(start))
            .map_err(|source| KafkaSourceError::Assign { partitions: owned_names(), source: Box::new(source) })?;
        let resume = (start > low).then(|| Resume { target: start, back: 1024, covered: false, since: Instant::now() });
        positions.push(PartitionPos {
            topic: topic.clone(),
            partition: p,
            next: start,
            high,
            reached_end: high <= low,
            low,
            resume,
        });
    }
    if !owned.is_empty() {
        consumer
            .assign(&tpl)
            .map_err(|source| KafkaSourceError::Assign { partitions: owned_names(), source: Box::new(source) })?;
    }
    Ok(Setup { consumer: Some(Arc::new(consumer)), positions, assigner, known })
}

/// Start-up retries: 100 ms doubling to 2 s, no jitter (one consumer per worker).
const STARTUP_RETRY: crate::retry::Policy =
    crate::retry::Policy::exponential(Duration::from_millis(100), Duration::from_secs(2));

/// Runs `f` until it succeeds, fails with a non-retryable error, or `deadline` passes
/// ([`STARTUP_RETRY`]). `f` is told whether this is the last attempt.
fn retry<T>(deadline: Instant, mut f: impl FnMut(bool) -> Result<T, KafkaSourceError>) -> Result<T, KafkaSourceError> {
    let mut backoff = STARTUP_RETRY.backoff(0);
    let mut wait = STARTUP_RETRY.step(1);
    loop {
        let last = Instant::now() + wait >= deadline;
        match f(last) {
            Ok(v) => return Ok(v),
            Err(e) if e.is_retryable() && !last => {
                wait = backoff.next_delay();
                tracing::warn!(error = %e, retry_in = ?wait, "Kafka not ready; retrying");
                std::thread::sleep(wait);
                wait = STARTUP_RETRY.step(backoff.failures() + 1);
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_errors_read_like_decode_errors() {
        let e = payload_error(42, "empty payload");
        assert_eq!(e.to_string(), "offset 42: invalid JSON at column 1: empty payload");
    }

    #[test]
    fn an_unreachable_broker_is_an_error_naming_the_topic() {
        // Nothing listens on port 1: connecting gives up at the connect timeout, with the topic.
        let cfg = crate::sources::kafka::KafkaSourceConfig {
            brokers: "127.0.0.1:1".into(),
            topics: Some(vec!["a".into(), "b".into()]),
            connect_timeout: "300ms".into(),
            ..Default::default()
        };
        let spec = cfg.validate().unwrap();
        let mut got = None;
        timely::execute_directly(move |worker| {
            let probe = ProbeHandle::new();
            worker.dataflow::<u64, _, _>(|root| {
                root.scoped::<Time, _, _>("Test", |scope| {
                    got = kafka_source(scope, &spec, TimeBounds::default(), 0, probe.clone(), |_, _, _| {}, None).err();
                })
            });
            let msg = got.as_ref().map(ToString::to_string).unwrap_or_default();
            assert!(matches!(&got, Some(KafkaSourceError::Metadata { topic, .. }) if topic == "a"), "{msg}");
        });
    }
}
