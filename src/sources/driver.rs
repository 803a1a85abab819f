//! The source driver: one timely operator per worker that runs a [`Reader`] (Kafka, files, the
//! generator), emits its bars at the reader's event-time watermark, gates itself on the
//! outputs' durable probe, and carries the checkpoint protocol of [`crate::recovery`].
//!
//! Outputs: the bars; *cut markers* `(target worker, epoch, watermark)`, one per worker at
//! each cut, for [`watermark_guard`]; and the part reports (to [`manifest_writer`]).
//!
//! Why markers: time is `(epoch, watermark)` in lexicographic order, so while some sources
//! have moved to epoch `k + 1` and others have not, the frontier is the least epoch-`k`
//! capability left, whose watermark may be above a moved source's. The guard, after the
//! exchange, holds the least marker of the epoch until every source has cut, so operators
//! never see a watermark above any source's.
//!
//! [`manifest_writer`]: crate::recovery::manifest_writer

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tickflow_operators::Bar;
use tickflow_operators::dataflow::Time;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::{ProbeHandle, Scope, StreamVec};
use timely::progress::frontier::AntichainRef;

use crate::checkpoint::{PutTicket, SourcePosition};
use crate::decode::DecodeError;
use crate::recovery::{PartReport, RunControl, SourceState};
use crate::status::Clock;

/// Records a source may have in flight (emitted, not yet durable at the outputs' probe); the
/// limit is the larger of this and two read batches, so a source can always have one batch in
/// the operators while it reads the next.
pub const MAX_IN_FLIGHT: u64 = 8 * 1024;
/// Longest sleep between two activations.
const HEARTBEAT: Duration = Duration::from_millis(100);
/// Retry delay while gated by the probe or waiting for a checkpoint step.
const GATE_RETRY: Duration = Duration::from_micros(200);

/// The watermark of a source whose input has ended (or that has no input): it never holds
/// anything back.
pub const DONE: u64 = u64::MAX;

/// What one activation read.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReadOutcome {
    /// Records read (valid and invalid).
    pub records: usize,
    /// The budget was used up: more is probably waiting (re-activate at once).
    pub more: bool,
    /// The input has ended (files read, generator count reached, Kafka end with `stop-at-end`).
    pub exhausted: bool,
}

/// A failure of a source: the run stops with this message.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(pub String);

/// Where a reader sends an invalid record: (location, event time of the last valid bar before
/// it in its partition, error, payload).
pub type DeadLetters<'a> = dyn FnMut(&str, Option<i64>, &DecodeError, &[u8]) + 'a;

/// Where a source's bars come from.
pub trait Reader: 'static {
    /// Reads at most `budget` records: valid bars into `out`, invalid records to `dead`
    /// (location, event time of the last valid bar before it in its partition, error,
    /// payload).
    fn read(
        &mut self,
        budget: usize,
        now_ms: i64,
        time: Time,
        out: &mut Vec<Bar>,
        dead: &mut DeadLetters<'_>,
    ) -> Result<ReadOutcome, SourceError>;
    /// The event-time watermark after what was read (`time::watermark_of(ms)`, so times
    /// before 1970 keep their order; `None`: nothing known, hold;
    /// [`DONE`]: never holds anything back).
    fn watermark(&mut self, now_ms: i64) -> Result<Option<u64>, SourceError>;
    /// The position to resume from after a checkpoint cut now.
    fn position(&self) -> SourceState;
    /// The position for people (`tickflow checkpoints show`).
    fn describe(&self) -> Vec<SourcePosition>;
    /// How long to sleep when nothing was read.
    fn idle_wake(&mut self, _now_ms: i64) -> Duration {
        HEARTBEAT
    }
    /// Wakes the source when new input arrives (Kafka's partition queues).
    fn set_waker(&mut self, _activator: timely::scheduling::SyncActivator) {}
    /// Called on every activation: events, periodic offset commits, status.
    fn housekeeping(&mut self, _durable: &ProbeHandle<Time>) {}
    /// The dataflow is complete (or stopping): last commits.
    fn finish(&mut self, _durable: &ProbeHandle<Time>) {}
}

/// What the driver hands its records and checkpoint steps to: the worker's
/// [`Coordinator`](crate::recovery::Coordinator) in a run, [`SimpleHost`] elsewhere.
pub trait Host {
    /// An invalid input record (`event_ms`: see [`Reader::read`]).
    fn dead_letter(&mut self, location: &str, event_ms: Option<i64>, error: &DecodeError, payload: &[u8]);
    /// After each batch read (`watermark` is the capability's, ms).
    fn source_batch(&mut self, records: u64, watermark: u64) -> Result<(), String>;
    /// The part of checkpoint `k`: see [`Coordinator::snapshot`](crate::recovery::Coordinator::snapshot).
    fn snapshot(
        &mut self,
        k: u64,
        watermark: u64,
        source: SourceState,
        sources: Vec<SourcePosition>,
        last: bool,
    ) -> Result<(PutTicket, PartReport), String>;
    /// Checkpoint `k` is published.
    fn committed(&mut self, k: u64) -> Result<(), String>;
    /// The final savepoint is complete.
    fn set_done(&mut self);
}

/// A host without checkpoints: invalid records go to a callback.
pub struct SimpleHost<F> {
    on_invalid: F,
}

impl<F: FnMut(&str, &DecodeError, &[u8])> SimpleHost<F> {
    /// Invalid records go to `on_invalid(location, error, payload)`.
    pub fn new(on_invalid: F) -> SimpleHost<F> {
        SimpleHost { on_invalid }
    }
}

impl<F: FnMut(&str, &DecodeError, &[u8])> Host for SimpleHost<F> {
    fn dead_letter(&mut self, location: &str, _event_ms: Option<i64>, error: &DecodeError, payload: &[u8]) {
        (self.on_invalid)(location, error, payload)
    }
    fn source_batch(&mut self, _records: u64, _watermark: u64) -> Result<(), String> {
        Ok(())
    }
    fn snapshot(
        &mut self,
        _k: u64,
        _watermark: u64,
        _source: SourceState,
        _sources: Vec<SourcePosition>,
        _last: bool,
    ) -> Result<(PutTicket, PartReport), String> {
        Err("checkpoints are off".into())
    }
    fn committed(&mut self, _k: u64) -> Result<(), String> {
        Ok(())
    }
    fn set_done(&mut self) {}
}

/// How the driver takes part in checkpoints.
pub struct DriverConfig {
    /// Operator name.
    pub name: String,
    /// The first epoch (0 on a fresh start, `k + 1` after restoring checkpoint `k`).
    pub epoch: u64,
    /// The watermark to start at (the restored cut's watermark), ms.
    pub start_watermark: u64,
    /// Checkpoint interval (`None`: no checkpoints; a stop request then drains).
    pub interval: Option<Duration>,
    /// Records per activation.
    pub batch: usize,
    /// Bars per second (0: as fast as possible), for this worker.
    pub rate: u64,
}

/// The probes the driver watches.
pub struct Probes {
    /// The outputs' durable frontier.
    pub durable: ProbeHandle<Time>,
    /// The sources' data outputs (all workers): every source has cut when it passes `k + 1`.
    pub sources: ProbeHandle<Time>,
    /// The manifest writer's output: checkpoint `k` is published when it passes `k + 1`.
    pub manifest: ProbeHandle<Time>,
    /// The sources' *snapshot taken* outputs (all workers): every worker has taken its
    /// snapshot of checkpoint `k` when it passes `(k + 1, 0)`; reading resumes then.
    pub snapped: ProbeHandle<Time>,
}

enum Phase {
    Running,
    /// All sources cut; waiting for the outputs to be durable up to the cut.
    Drain {
        k: u64,
        position: SourceState,
        sources: Vec<SourcePosition>,
        watermark: u64,
        last: bool,
    },
    /// The final savepoint is written; nothing more is read.
    Stopped,
}

/// A cut marker: (target worker, epoch, the source's watermark at the cut).
pub type Marker = (u64, u64, u64);

/// The driver's outputs: bars, cut markers, part reports, and the *snapshot taken* signal
/// (no data: its frontier passes `(k + 1, 0)` once this worker has taken its snapshot of `k`).
pub type DriverStreams<'s> =
    (StreamVec<'s, Time, Bar>, StreamVec<'s, Time, Marker>, StreamVec<'s, Time, PartReport>, StreamVec<'s, Time, ()>);

/// Builds the source operator of this worker around `reader`.
pub fn drive<'s, R: Reader>(
    scope: Scope<'s, Time>,
    cfg: DriverConfig,
    mut reader: R,
    probes: Probes,
    coordinator: Rc<RefCell<dyn Host>>,
    control: Arc<RunControl>,
    clock: Arc<dyn Clock>,
) -> DriverStreams<'s> {
    let mut builder = OperatorBuilder::new(cfg.name.clone(), scope);
    let info = builder.operator_info();
    let (data_out, data) = builder.new_output::<Vec<Bar>>();
    let (marker_out, markers) = builder.new_output::<Vec<Marker>>();
    let (report_out, reports) = builder.new_output::<Vec<PartReport>>();
    let (_snapped_out, snapped) = builder.new_output::<Vec<()>>();
    let activator = scope.activator_for(Rc::clone(&info.address));
    let sync = scope.worker().sync_activator_for(info.address.to_vec());
    control.register(sync.clone());
    reader.set_waker(sync);
    let index = scope.index();
    builder.build(move |mut caps| {
        let mut data_out: OutputBuilder<Time, CapacityContainerBuilder<Vec<Bar>>> = OutputBuilder::from(data_out);
        let mut marker_out: OutputBuilder<Time, CapacityContainerBuilder<Vec<Marker>>> =
            OutputBuilder::from(marker_out);
        let mut report_out: OutputBuilder<Time, CapacityContainerBuilder<Vec<PartReport>>> =
            OutputBuilder::from(report_out);
        let start: Time = (cfg.epoch, cfg.start_watermark);
        let mut snap_cap: Option<Capability<Time>> = caps.pop();
        let mut report_cap: Option<Capability<Time>> = caps.pop();
        let mut marker_cap: Option<Capability<Time>> = caps.pop();
        let mut data_cap: Option<Capability<Time>> = caps.pop();
        for c in [&mut data_cap, &mut marker_cap] {
            if let Some(c) = c.as_mut() {
                c.downgrade(&start);
            }
        }
        // The epoch this source is in (also once its input ended and it has no capability).
        let mut epoch = cfg.epoch;
        let peers = scope.peers() as u64;
        // Reports of checkpoint k travel at (k, 1). After reporting, the capability moves to
        // (k + 1, 0) when this source is stopping and to (k + 1, 1) otherwise: once manifest k
        // is published, the manifest probe's frontier is below (k + 1, 1) exactly when some
        // source is stopping, and then every source stops after it (one savepoint for all).
        if let Some(c) = report_cap.as_mut() {
            c.downgrade(&(cfg.epoch, 1));
        }
        if let Some(c) = snap_cap.as_mut() {
            c.downgrade(&(cfg.epoch, 0));
        }
        let interval_ms = cfg.interval.map(|d| d.as_millis().max(1) as i64);
        let first_cut = move |now: i64| interval_ms.map(|i| (now.div_euclid(i) + 1) * i);
        let mut next_cut = first_cut(clock.now_ms());
        let mut phase = Phase::Running;
        let mut writing: Option<(u64, PutTicket, PartReport)> = None;
        let mut awaiting_commit: Option<(u64, bool)> = None;
        // For the log: when the last cut was taken, and how long reading paused for it.
        let mut cut_at: Option<Instant> = None;
        let mut paused_ms = 0.0f64;
        let mut exhausted = false;
        let mut in_flight_bars = InFlight::new(MAX_IN_FLIGHT.max(2 * cfg.batch as u64));
        let mut batch: Vec<Bar> = Vec::with_capacity(cfg.batch);
        let mut pace = (cfg.rate > 0).then(|| (Instant::now(), 0u64));
        move |_frontiers| {
            if control.failed() {
                // The worker loop stops the run; hold everything (no drain, no commit).
                return;
            }
            reader.housekeeping(&probes.durable);
            let now = clock.now_ms();
            let mut wake = HEARTBEAT;

            // 1. The part write in flight: report it once durable, then move on an epoch.
            if let Some((k, ticket, _)) = writing.as_mut() {
                match ticket.poll() {
                    None => wake = wake.min(Duration::from_millis(1)),
                    Some(Ok(info)) => {
                        let (k, _, mut report) = writing.take().expect("checked above");
                        if let Some(started) = cut_at.take() {
                            tracing::debug!(
                                worker = index,
                                checkpoint = k,
                                bytes = info.bytes,
                                paused_ms,
                                written_ms = started.elapsed().as_secs_f64() * 1e3,
                                "checkpoint part written"
                            );
                        }
                        report.part = info;
                        if let Some(c) = report_cap.as_mut() {
                            report_out.activate().session(&*c).give(report.clone());
                            c.downgrade(&(k + 1, if report.final_savepoint { 0 } else { 1 }));
                        }
                        awaiting_commit = Some((k, report.final_savepoint));
                    }
                    Some(Err(e)) => {
                        control.fail(format!("worker {index}: writing its part of checkpoint {k}: {e}"));
                        return;
                    }
                }
            }
            // 2. The manifest of the awaited checkpoint is published: commit file parts.
            if let Some((k, last)) = awaiting_commit {
                if !probes.manifest.less_equal(&(k, 1)) {
                    // Published. Some source stopping (here or in another process)?
                    let last = last || probes.manifest.less_than(&(k + 1, 1));
                    awaiting_commit = None;
                    // The next cut is at the first boundary after reading resumes: a
                    // checkpoint that takes longer than the interval must not starve reading.
                    next_cut = first_cut(now);
                    if let Err(e) = coordinator.borrow_mut().committed(k) {
                        control.fail(format!("worker {index}: committing checkpoint {k}: {e}"));
                        return;
                    }
                    if last {
                        if data_cap.is_none() && probes.sources.with_frontier(|f| f.is_empty()) {
                            // Every source's input ended and the end state is checkpointed:
                            // release everything; the dataflow drains and the run completes.
                            tracing::debug!(worker = index, checkpoint = k, "inputs ended; draining");
                            marker_cap = None;
                            report_cap = None;
                            snap_cap = None;
                            reader.finish(&probes.durable);
                            return;
                        }
                        tracing::info!(worker = index, checkpoint = k, "savepoint complete; stopping");
                        coordinator.borrow_mut().set_done();
                        phase = Phase::Stopped;
                        return;
                    }
                } else {
                    wake = wake.min(Duration::from_millis(1));
                }
            }

            // 3. Checkpoint phases. A source whose input ended has no data capability: it
            //    follows the others' cuts (seen on the sources' probe), and when every
            //    source's input has ended it takes one last checkpoint and then lets the
            //    dataflow drain.
            phase = match std::mem::replace(&mut phase, Phase::Stopped) {
                Phase::Running if interval_ms.is_some() && writing.is_none() && awaiting_commit.is_none() => {
                    let stop = control.stop_requested();
                    let cut = match data_cap.as_mut() {
                        Some(c) => {
                            let due = next_cut.is_some_and(|t| now >= t);
                            (stop || due).then(|| {
                                let (k, watermark) = *c.time();
                                if let Some(m) = marker_cap.as_mut() {
                                    let mut out = marker_out.activate();
                                    let mut session = out.session(&*m);
                                    for target in 0..peers {
                                        session.give((target, k, watermark));
                                    }
                                    drop(session);
                                    drop(out);
                                    m.downgrade(&(k + 1, watermark));
                                }
                                c.downgrade(&(k + 1, watermark));
                                (k, watermark, stop)
                            })
                        }
                        // Input ended: follow the others' cuts (seen on the sources' probe).
                        None => {
                            let ended = probes.sources.with_frontier(|f| f.is_empty());
                            (!probes.sources.less_than(&(epoch + 1, 0))).then_some((epoch, DONE, stop || ended))
                        }
                    };
                    match cut {
                        Some((k, watermark, last)) => {
                            epoch = k + 1;
                            cut_at = Some(Instant::now());
                            next_cut = first_cut(now);
                            tracing::debug!(worker = index, checkpoint = k, watermark, last, "checkpoint cut");
                            // Reading is paused until the checkpoint is published: check the
                            // drain again soon, not at the next heartbeat.
                            wake = wake.min(GATE_RETRY);
                            Phase::Drain { k, position: reader.position(), sources: reader.describe(), watermark, last }
                        }
                        None => Phase::Running,
                    }
                }
                Phase::Drain { k, position, sources, watermark, last } => {
                    if probes.durable.less_than(&(k + 1, 0)) {
                        wake = wake.min(GATE_RETRY);
                        Phase::Drain { k, position, sources, watermark, last }
                    } else {
                        match coordinator.borrow_mut().snapshot(k, watermark, position, sources, last) {
                            Ok((ticket, report)) => {
                                writing = Some((k, ticket, report));
                                // Taken: once every worker's is, reading resumes (step 5).
                                if let Some(c) = snap_cap.as_mut() {
                                    c.downgrade(&(k + 1, 0));
                                }
                            }
                            Err(e) => {
                                control.fail(format!("worker {index}: checkpoint {k}: {e}"));
                                return;
                            }
                        }
                        wake = wake.min(Duration::from_millis(1));
                        paused_ms = cut_at.map_or(0.0, |t| t.elapsed().as_secs_f64() * 1e3);
                        Phase::Running
                    }
                }
                other => other,
            };
            if !matches!(phase, Phase::Running) {
                activator.activate_after(wake);
                return;
            }
            // Without checkpoints a stop request drains: the input simply ends here.
            if interval_ms.is_none() && control.stop_requested() {
                exhausted = true;
            }

            // 4. The input has ended: without checkpoints, release everything at once (the
            //    dataflow drains); with them, the last checkpoint decides (step 2).
            if exhausted {
                if interval_ms.is_none() {
                    data_cap = None;
                    marker_cap = None;
                    report_cap = None;
                    snap_cap = None;
                    reader.finish(&probes.durable);
                    return;
                }
                if let Some(c) = data_cap.take() {
                    epoch = c.time().0;
                }
                marker_cap = None;
                activator.activate_after(wake.min(Duration::from_millis(10)));
                return;
            }

            // 5. Read. Not until every worker has taken its snapshot of the checkpoint in
            //    flight: bars of the next epoch reaching a worker's operators first would end
            //    up in its snapshot. The part writes, the result-file fsyncs and the manifest
            //    go on meanwhile; the next cut waits for the manifest (step 3). A source that
            //    is stopping reads nothing after its last cut.
            let in_flight = writing.as_ref().map(|(k, _, r)| (*k, r.final_savepoint)).or(awaiting_commit);
            if let Some((k, last)) = in_flight {
                if last || probes.snapped.less_than(&(k + 1, 0)) {
                    activator.activate_after(wake.min(GATE_RETRY));
                    return;
                }
            }
            let Some(c) = data_cap.as_mut() else { return };
            if probes.durable.with_frontier(|f| in_flight_bars.full(f, c.time())) {
                activator.activate_after(GATE_RETRY);
                return;
            }
            let mut budget = cfg.batch;
            if let Some((started, emitted)) = pace.as_mut() {
                let due = (started.elapsed().as_secs_f64() * cfg.rate as f64) as u64;
                budget = budget.min(due.saturating_sub(*emitted) as usize);
                if budget == 0 {
                    activator.activate_after(Duration::from_millis(5));
                    return;
                }
            }
            batch.clear();
            let outcome = {
                let mut co = coordinator.borrow_mut();
                let mut dead = |location: &str, event_ms: Option<i64>, error: &DecodeError, payload: &[u8]| {
                    co.dead_letter(location, event_ms, error, payload)
                };
                reader.read(budget, now, *c.time(), &mut batch, &mut dead)
            };
            let outcome = match outcome {
                Ok(o) => o,
                Err(e) => {
                    control.fail(format!("worker {index}: source: {e}"));
                    return;
                }
            };
            if let Some((_, emitted)) = pace.as_mut() {
                *emitted += outcome.records as u64;
            }
            in_flight_bars.emitted(*c.time(), outcome.records as u64);
            if !batch.is_empty() {
                // The batch goes on as one container (no copy per bar); a fresh one of the
                // same capacity takes its place (an allocation per batch, none per bar).
                data_out.activate().session(&*c).give_container(&mut batch);
                batch = Vec::with_capacity(cfg.batch);
            }
            if let Err(e) = coordinator.borrow_mut().source_batch(outcome.records as u64, c.time().1) {
                control.fail(format!("worker {index}: writing results: {e}"));
                return;
            }
            let wm = if outcome.exhausted {
                exhausted = true;
                Some(DONE)
            } else {
                match reader.watermark(now) {
                    Ok(w) => w,
                    Err(e) => {
                        control.fail(format!("worker {index}: source: {e}"));
                        return;
                    }
                }
            };
            if let Some(wm) = wm {
                let t = (c.time().0, wm);
                if t > *c.time() {
                    c.downgrade(&t);
                    if let Some(m) = marker_cap.as_mut() {
                        m.downgrade(&t);
                    }
                }
            }
            if outcome.more || exhausted {
                activator.activate();
            } else {
                activator.activate_after(wake.min(reader.idle_wake(now)));
            }
        }
    });
    (data, markers, reports, snapped)
}

/// The records a source has emitted that the outputs' probe has not yet passed, by the time
/// they were emitted at. A batch leaves when the probe has passed its time; all leave once the
/// probe has caught up with the source's capability (so that a watermark held downstream, for
/// instance by an open candle, never stalls the source).
#[derive(Debug)]
struct InFlight {
    batches: std::collections::VecDeque<(Time, u64)>,
    total: u64,
    limit: u64,
}

impl InFlight {
    fn new(limit: u64) -> Self {
        InFlight { batches: std::collections::VecDeque::new(), total: 0, limit }
    }

    /// `records` were emitted at `time` (times never go down).
    fn emitted(&mut self, time: Time, records: u64) {
        if records == 0 {
            return;
        }
        match self.batches.back_mut() {
            Some((t, n)) if *t == time => *n += records,
            _ => self.batches.push_back((time, records)),
        }
        self.total += records;
    }

    /// Whether the source must wait: at least `limit` records in flight after those the probe
    /// has passed have left. `at` is the source's capability.
    fn full(&mut self, probe: AntichainRef<'_, Time>, at: &Time) -> bool {
        if !probe.less_than(at) {
            self.batches.clear();
            self.total = 0;
            return false;
        }
        while let Some(&(t, n)) = self.batches.front() {
            if probe.less_equal(&t) {
                break;
            }
            self.batches.pop_front();
            self.total -= n;
        }
        self.total >= self.limit
    }
}

/// After the exchange: passes the bars on, and holds, per epoch, the least cut marker's
/// capability until every source has cut (both inputs' frontiers passed `(k + 1, 0)`), so
/// that downstream the watermark never passes a source that has cut already (module docs).
pub fn watermark_guard<'s>(
    bars: StreamVec<'s, Time, Bar>,
    markers: StreamVec<'s, Time, Marker>,
) -> StreamVec<'s, Time, Bar> {
    use timely::dataflow::channels::pact::{Exchange, Pipeline};
    use timely::dataflow::operators::Operator;
    bars.binary_frontier::<_, CapacityContainerBuilder<Vec<Bar>>, _, _, _, _>(
        markers,
        Pipeline,
        Exchange::new(|m: &Marker| m.0),
        "WatermarkGuard",
        move |_cap, _info| {
            let mut held: std::collections::BTreeMap<u64, Capability<Time>> = std::collections::BTreeMap::new();
            move |(bars, bars_frontier), (markers, markers_frontier), output| {
                bars.for_each(|cap, data| {
                    output.session(&cap).give_container(data);
                });
                markers.for_each(|cap, data| {
                    for &(_, k, _) in data.iter() {
                        if let Some(c) = cap.retain_least(0) {
                            if held.get(&k).is_none_or(|h| c.time() < h.time()) {
                                held.insert(k, c);
                            }
                        }
                    }
                    data.clear();
                });
                held.retain(|&k, _| {
                    let next = (k + 1, 0);
                    bars_frontier.less_than(&next) || markers_frontier.less_than(&next)
                });
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use timely::progress::Antichain;

    use super::*;

    #[test]
    fn in_flight_records_leave_as_the_probe_passes_their_time() {
        let mut f = InFlight::new(10);
        // The probe at (0, 0); the source's capability ahead of it at (0, 5).
        f.emitted((0, 1), 6);
        f.emitted((0, 1), 2);
        f.emitted((0, 3), 2);
        f.emitted((0, 4), 0);
        assert_eq!(f.batches.len(), 2, "same times coalesce, empty batches are not kept");
        assert!(f.full(Antichain::from_elem((0, 0)).borrow(), &(0, 5)), "10 in flight, none passed");
        // The probe passes (0, 1) but not (0, 3): 8 leave, 2 remain.
        assert!(!f.full(Antichain::from_elem((0, 2)).borrow(), &(0, 5)));
        assert_eq!(f.total, 2);
        f.emitted((0, 5), 8);
        assert!(f.full(Antichain::from_elem((0, 2)).borrow(), &(0, 5)));
        // At (0, 3) itself the batch of (0, 3) has not passed.
        assert!(f.full(Antichain::from_elem((0, 3)).borrow(), &(0, 5)));
        // Caught up with the capability: everything leaves, held times or not.
        assert!(!f.full(Antichain::from_elem((0, 5)).borrow(), &(0, 5)));
        assert_eq!(f.total, 0);
        assert!(f.batches.is_empty());
        // An empty frontier (the dataflow done) passes everything.
        f.emitted((0, 6), 20);
        assert!(!f.full(Antichain::new().borrow(), &(0, 6)));
    }
}
