//! The worker's side of checkpoints ([`Coordinator`]), the run-wide stop/failure switch
//! ([`RunControl`]), and worker 0's manifest writer ([`manifest_writer`]).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tickflow_operators::dataflow::Time;
use tickflow_operators::dataflow::alerts::AlertsCore;
use tickflow_operators::dataflow::candles::CandlesCore;
use tickflow_operators::dataflow::enrich::EnrichCore;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::{Capability, Operator};
use timely::dataflow::{Scope, StreamVec};
use timely::scheduling::SyncActivator;

use super::part::{PartReport, SourceState, WorkerPart};
use crate::checkpoint::{CheckpointStore, FORMAT_VERSION, Manifest, PartInfo, PutTicket, SourcePosition, encode_part};
use crate::decode::DecodeError;
use crate::sinks::worker::WorkerOutputs;

/// Stop requests and failures of one process's run, shared by its workers, the signal
/// handler and the services. Replaces a global flag: tests run several clusters at once.
#[derive(Default)]
pub struct RunControl {
    stop: AtomicBool,
    failed: AtomicBool,
    failure: Mutex<Option<String>>,
    activators: Mutex<Vec<SyncActivator>>,
}

impl std::fmt::Debug for RunControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunControl").field("stop", &self.stop_requested()).field("failure", &self.failure()).finish()
    }
}

impl RunControl {
    /// A new switch.
    pub fn new() -> Arc<RunControl> {
        Arc::new(RunControl::default())
    }

    /// Stop: with checkpoints, take a savepoint and exit without draining (open windows stay
    /// in the checkpoint); without, end the input so the dataflow drains.
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.wake();
    }

    /// Whether a stop was requested.
    pub fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Records the first failure: the run stops, nothing more is committed.
    pub fn fail(&self, message: String) {
        let mut f = self.failure.lock().unwrap_or_else(|p| p.into_inner());
        if f.is_none() {
            tracing::error!(error = %message, "the run failed");
            *f = Some(message);
        }
        self.failed.store(true, Ordering::SeqCst);
        drop(f);
        self.wake();
    }

    /// Whether the run failed.
    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }

    /// The first failure.
    pub fn failure(&self) -> Option<String> {
        self.failure.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Wakes `a` on stop requests and failures.
    pub fn register(&self, a: SyncActivator) {
        self.activators.lock().unwrap_or_else(|p| p.into_inner()).push(a);
    }

    fn wake(&self) {
        for a in self.activators.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            // Fails only once the worker is gone.
            let _ = a.activate();
        }
    }
}

/// One worker's checkpoint actions: snapshot its operators, outputs and source position into
/// its part; commit result files once a checkpoint is published.
pub struct Coordinator {
    worker: usize,
    peers: usize,
    store: Option<CheckpointStore>,
    fingerprint: String,
    enrich: Rc<RefCell<EnrichCore<Time>>>,
    candles: Option<Rc<RefCell<CandlesCore<Time>>>>,
    alerts: Option<Rc<RefCell<AlertsCore>>>,
    outputs: Rc<RefCell<WorkerOutputs>>,
    io_error: Option<String>,
    /// The final savepoint is complete: the worker may stop.
    pub done: bool,
}

impl crate::sources::driver::Host for Coordinator {
    fn dead_letter(&mut self, location: &str, event_ms: Option<i64>, error: &DecodeError, payload: &[u8]) {
        Coordinator::dead_letter(self, location, event_ms, error, payload)
    }
    fn source_batch(&mut self, records: u64, watermark: u64) -> Result<(), String> {
        Coordinator::source_batch(self, records, watermark)
    }
    fn snapshot(
        &mut self,
        k: u64,
        watermark: u64,
        source: SourceState,
        sources: Vec<SourcePosition>,
        last: bool,
    ) -> Result<(PutTicket, PartReport), String> {
        Coordinator::snapshot(self, k, watermark, source, sources, last)
    }
    fn committed(&mut self, k: u64) -> Result<(), String> {
        Coordinator::committed(self, k)
    }
    fn set_done(&mut self) {
        self.done = true;
    }
}

impl Coordinator {
    /// The coordinator of worker `worker` of `peers`.
    #[allow(clippy::too_many_arguments)] // one handle per piece of state it checkpoints
    pub fn new(
        worker: usize,
        peers: usize,
        store: Option<CheckpointStore>,
        fingerprint: String,
        enrich: Rc<RefCell<EnrichCore<Time>>>,
        candles: Option<Rc<RefCell<CandlesCore<Time>>>>,
        alerts: Option<Rc<RefCell<AlertsCore>>>,
        outputs: Rc<RefCell<WorkerOutputs>>,
    ) -> Coordinator {
        Coordinator { worker, peers, store, fingerprint, enrich, candles, alerts, outputs, io_error: None, done: false }
    }

    /// The part of checkpoint `k` (everything before the cut is durable at the sinks now):
    /// flushes the result files and copies the operators' state and the source position;
    /// fsyncing the files, encoding and writing the part happen off the worker thread. Returns the write and the report to send once it is done.
    pub fn snapshot(
        &mut self,
        k: u64,
        watermark: u64,
        source: SourceState,
        sources: Vec<SourcePosition>,
        last: bool,
    ) -> Result<(PutTicket, PartReport), String> {
        let store = self.store.as_ref().ok_or("checkpoints are off")?;
        let started = std::time::Instant::now();
        let files = self.outputs.borrow_mut().precommit(k, last).map_err(|e| e.to_string())?;
        let files_ms = started.elapsed().as_secs_f64() * 1e3;
        let enrich = self.enrich.borrow().snapshot();
        let candles = self.candles.as_ref().map(|c| c.borrow().snapshot());
        let symbols = enrich.symbols.len() as u64;
        let part = WorkerPart {
            worker: self.worker,
            peers: self.peers,
            epoch: k,
            watermark,
            fingerprint: self.fingerprint.clone(),
            source,
            enrich,
            candles,
            files,
            alerts: self.alerts.as_ref().map(|a| a.borrow().snapshot()),
        };
        // The state is copied; encoding and writing it happen off the worker thread.
        let ticket = store.submit_part_with(k, &part_name(self.worker), move || {
            part.files.sync().map_err(|e| format!("making the result files durable: {e}"))?;
            Ok(encode_part(&part))
        });
        tracing::debug!(
            worker = self.worker,
            checkpoint = k,
            files_ms,
            state_ms = started.elapsed().as_secs_f64() * 1e3 - files_ms,
            "checkpoint snapshot taken"
        );
        let report = PartReport {
            epoch: k,
            part: PartInfo { name: part_name(self.worker), bytes: 0, checksum: 0 },
            symbols,
            watermark,
            sources,
            final_savepoint: last,
        };
        Ok((ticket, report))
    }

    /// Checkpoint `k` is published: commit the result parts it closed.
    pub fn committed(&mut self, k: u64) -> Result<(), String> {
        tracing::debug!(worker = self.worker, checkpoint = k, "checkpoint published; committing result parts");
        self.outputs.borrow_mut().commit().map_err(|e| e.to_string())
    }

    /// An invalid input record (written with the other results of the epoch).
    pub fn dead_letter(&mut self, location: &str, event_ms: Option<i64>, error: &DecodeError, payload: &[u8]) {
        tracing::debug!(%location, %error, "invalid record dead-lettered");
        if let Err(e) = self.outputs.borrow_mut().dead_letter(location, event_ms, &error.to_string(), payload) {
            self.io_error.get_or_insert_with(|| e.to_string());
        }
    }

    /// After a source batch: counters, and the batch's outputs handed on.
    pub fn source_batch(&mut self, records: u64, watermark: u64) -> Result<(), String> {
        if let Some(e) = self.io_error.take() {
            return Err(e);
        }
        let mut out = self.outputs.borrow_mut();
        out.counters.bars_in += records;
        out.counters.batches += u64::from(records > 0);
        if watermark != crate::sources::driver::DONE && watermark > 0 {
            // The time's watermark coordinate, back in ms (negative before 1970).
            out.counters.watermark_ms = Some(tickflow_operators::time::ms_of_watermark(watermark));
        }
        out.end_batch().map_err(|e| e.to_string())
    }
}

/// The name of worker `w`'s part.
pub fn part_name(w: usize) -> String {
    format!("w{w:05}.bin")
}

/// Worker 0 collects the part reports of every checkpoint (sent at `(k, 1)`); once all
/// `peers` parts of `k` are durable (the reports' frontier passed `(k, 1)`), it writes
/// manifest `k`, holding a capability at `(k, 1)` until the manifest is durable: a probe on
/// the output passing `(k, 1)` means checkpoint `k` is published. Older checkpoints beyond
/// `retain` are then removed.
#[allow(clippy::too_many_arguments)]
pub fn manifest_writer<'s>(
    reports: StreamVec<'s, Time, PartReport>,
    store: Option<CheckpointStore>,
    processes: usize,
    workers: usize,
    retain: usize,
    control: Arc<RunControl>,
) -> StreamVec<'s, Time, ()> {
    let scope: Scope<'s, Time> = reports.scope();
    reports.unary_frontier::<CapacityContainerBuilder<Vec<()>>, _, _, _>(
        Exchange::new(|_: &PartReport| 0),
        "ManifestWriter",
        move |_cap, info| {
            let activator = scope.activator_for(info.address);
            let mut held: BTreeMap<u64, (Capability<Time>, Vec<PartReport>)> = BTreeMap::new();
            let mut writing: Option<(u64, PutTicket)> = None;
            let gc_running = Arc::new(AtomicBool::new(false));
            move |(input, frontier), _output| {
                input.for_each(|cap, data| {
                    for r in data.drain(..) {
                        let e = held.entry(r.epoch).or_insert_with(|| (cap.retain_least(0).expect("reports are sent under a capability"), Vec::new()));
                        e.1.push(r);
                    }
                });
                let Some(store) = store.as_ref() else { return };
                if let Some((k, ticket)) = writing.as_mut() {
                    match ticket.poll() {
                        None => {}
                        Some(Ok(_)) => {
                            let k = *k;
                            writing = None;
                            held.remove(&k);
                            tracing::info!(checkpoint = k, "checkpoint complete");
                            if !gc_running.swap(true, Ordering::SeqCst) {
                                let (store, flag) = (store.clone(), gc_running.clone());
                                std::thread::spawn(move || {
                                    if let Err(e) = store.retain(retain) {
                                        tracing::warn!(error = %e, "removing old checkpoints failed; retried after the next one");
                                    }
                                    flag.store(false, Ordering::SeqCst);
                                });
                            }
                        }
                        Some(Err(e)) => {
                            control.fail(format!("writing the manifest of checkpoint {k}: {e}"));
                            return;
                        }
                    }
                }
                if writing.is_none() {
                    if let Some((&k, (_, parts))) = held.first_key_value() {
                        if !frontier.less_equal(&(k, 1)) {
                            let peers = processes * workers;
                            if parts.len() != peers {
                                control.fail(format!("checkpoint {k}: {} of {peers} parts reported", parts.len()));
                                return;
                            }
                            let mut parts = parts.clone();
                            parts.sort_by_key(|p| p.part.name.clone());
                            let manifest = Manifest {
                                version: FORMAT_VERSION,
                                id: k,
                                created_ms: std::time::SystemTime::now()
                                    .duration_since(std::time::UNIX_EPOCH)
                                    .map_or(0, |d| d.as_millis() as i64),
                                processes,
                                workers,
                                watermark_ms: parts
                                    .iter()
                                    .map(|p| p.watermark)
                                    .min()
                                    .filter(|&w| w != crate::sources::driver::DONE)
                                    .map(tickflow_operators::time::ms_of_watermark),
                                symbols: parts.iter().map(|p| p.symbols).sum(),
                                sources: parts.iter().flat_map(|p| p.sources.iter().cloned()).collect(),
                                final_savepoint: parts.iter().any(|p| p.final_savepoint),
                                parts: parts.iter().map(|p| p.part.clone()).collect(),
                            };
                            writing = Some((k, store.submit_manifest(manifest)));
                        }
                    }
                }
                if !held.is_empty() {
                    activator.activate_after(Duration::from_millis(1));
                }
            }
        },
    )
}
