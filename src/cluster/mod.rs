//! The timely cluster: starts the process's services, restores the newest checkpoint, builds
//! the dataflow on every worker ([`dataflow`]) and runs it until its input ends, a stop
//! request has been turned into a savepoint, or something fails.

pub mod dataflow;
pub mod progress;
pub mod services;

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tickflow_operators::dataflow::Time;
use tickflow_operators::dataflow::alerts::AlertsCore;
use tickflow_operators::dataflow::candles::CandlesCore;
use tickflow_operators::dataflow::enrich::EnrichCore;
use timely::CommunicationConfig;

use crate::checkpoint::CheckpointStore;
use crate::config::{Built, FileFormat, SourceSpec};
use crate::decode::TsUnit;
use crate::recovery::plan::owns;
use crate::recovery::{Coordinator, RestorePlan, Resume, RunControl, SourceState};
use crate::sinks::file::{FileSink, RowFormat, SharedFile};
use crate::sinks::worker::{QuestDbOut, WorkerOutputs};
use crate::sources::driver::{DriverConfig, Host, Reader};
use crate::sources::file::{FileSource, streams_for_worker};
use crate::sources::generator::{GeneratorConfig, MarketGenerator};
use crate::sources::kafka::kafka_reader;
use crate::sources::local::{FileReader, GeneratorReader};
use crate::status::{ProcessMetrics, register_timely_logging};
use dataflow::{Parts, WorkerProbes, build_dataflow};
use services::Services;

/// Records emitted per source activation (file and generator sources).
const BATCH: usize = 4096;

/// Counters of one run, summed over this process's workers (read from its metrics).
pub type Totals = crate::status::CounterValues;

/// What a run writes where.
#[derive(Clone, Debug)]
pub enum Output {
    /// The configured sinks (`[sinks]`), checkpoints, and the status server.
    Configured,
    /// One-shot replay: enriched bars to one file (CSV or NDJSON by extension), the other
    /// outputs beside it in `<FILE>.d/`. No checkpoints.
    Replay(PathBuf),
}

/// How a run starts and stops.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Which checkpoint to resume from.
    pub resume: Resume,
    /// Stop requests (signals) and failures.
    pub control: Arc<RunControl>,
    /// Redraw a progress line on stderr once a second ([`progress`]; for a terminal).
    pub progress: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions { resume: Resume::Latest, control: RunControl::new(), progress: false }
    }
}

/// What the state of a checkpoint depends on: a checkpoint taken with other indicators,
/// rules or windows cannot be restored (its rows would differ).
pub fn fingerprint(built: &Built) -> String {
    let text = format!(
        "{}|{:?}|{}",
        serde_json::to_string(&built.set).unwrap_or_default(),
        built.windows.timeframes,
        built.windows.allowed_lateness
    );
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("columns {} x{} timeframes, set {h:016x}", built.set.columns().len(), built.windows.timeframes.len())
}

/// Runs process `process` of the cluster until its input ends (or it is stopped).
pub fn run(built: Built, process: usize, output: Output, opts: RunOptions) -> anyhow::Result<Totals> {
    let control = opts.control.clone();
    let communication = if built.processes.len() > 1 {
        CommunicationConfig::Cluster {
            threads: built.workers,
            process,
            addresses: built.processes.clone(),
            report: false,
            zerocopy: false,
        }
    } else {
        CommunicationConfig::Process(built.workers)
    };
    let config = timely::Config { communication, worker: Default::default() };
    let first = process * built.workers;
    let peers = built.workers * built.processes.len();
    let metrics = Arc::new(ProcessMetrics::with_system_clock(process, first..first + built.workers));
    let progress = opts.progress.then(|| progress::Progress::start(metrics.clone()));
    let (sink_dir, format) = match &output {
        Output::Configured => match &built.file_sink {
            Some((dir, f)) => (Some(dir.clone()), *f),
            None => (None, FileFormat::Csv),
        },
        Output::Replay(file) => {
            let format = FileFormat::from_path(file).ok_or_else(|| {
                crate::cli::UsageError(format!(
                    "--output {}: unknown extension; expected .csv or .ndjson",
                    file.display()
                ))
            })?;
            (Some(part_dir(file)), format)
        }
    };
    // A missing input is a usage error, reported before a worker starts or a result
    // directory is created.
    if let SourceSpec::File { paths, .. } = &built.source {
        for p in paths {
            std::fs::File::open(p).map_err(|e| crate::cli::UsageError(format!("input {}: {e}", p.display())))?;
        }
    }
    // Checkpoints: `run` only, and only for sources whose position is recorded.
    let checkpoints = match (&output, &built.checkpoint, &built.source) {
        (Output::Configured, Some(_), SourceSpec::File { .. }) => {
            tracing::warn!("checkpoints are off: a file source's position is not recorded (use `tickflow replay`)");
            None
        }
        (Output::Configured, Some(c), _) => Some(c.clone()),
        _ => None,
    };
    let store = match &checkpoints {
        Some(c) => Some(CheckpointStore::open(&c.url).with_context(|| format!("checkpoint.url {:?}", c.url))?),
        None => None,
    };
    let plan = match &store {
        Some(s) => RestorePlan::prepare(s, opts.resume, &fingerprint(&built), sink_dir.as_deref())?,
        None => RestorePlan::default(),
    };
    if plan.checkpoint.is_some() && !plan.shape_is(peers) && matches!(built.source, SourceSpec::Generator { .. }) {
        anyhow::bail!(
            "checkpoint {}: a generator source resumes only into the shape it was taken with ({} workers in all); \
             this config has {peers}. Use the same shape, or --fresh",
            plan.checkpoint.unwrap_or_default(),
            plan.parts.first().map_or(0, |p| p.peers)
        );
    }
    let services = Services::start(&built, process, &output, &metrics)?;
    if !matches!(built.source, SourceSpec::Kafka(_)) {
        metrics.set_source_connected(true);
    }
    // `output.ts-unit`: one unit for every text sink of the run, decided before it starts.
    let unit = match (built.ts_unit, &built.source) {
        (Some(unit), _) => unit,
        (None, SourceSpec::File { paths, .. }) => crate::sources::file::sniff_ts_unit(paths).unwrap_or(TsUnit::Millis),
        (None, SourceSpec::Generator { .. } | SourceSpec::Kafka(_)) => TsUnit::Millis,
    };
    let to_stdout = built.stdout && matches!(output, Output::Configured);
    // A replay's workers all append their rows to one file (no concatenation after), hidden
    // until the run succeeded.
    let shared_bars = match &output {
        Output::Replay(file) => {
            let header = RowFormat::with_columns(format, &built.set, unit, built.file_columns.clone()).bars_header();
            let tmp = in_progress_path(file);
            Some(SharedFile::create(&tmp, header.as_deref()).with_context(|| format!("creating {}", tmp.display()))?)
        }
        Output::Configured => None,
    };
    let plan = Arc::new(plan);
    let b = built.clone();
    let m = metrics.clone();
    let qdb = services.questdb_out();
    let alerts_rt = services.alerts_runtime();
    let ctl = control.clone();
    let transactional = checkpoints.is_some();
    let interval = checkpoints.as_ref().map(|c| c.interval);
    let store_w = store.clone();
    let live = services.live();
    let guards = timely::execute(config, move |worker| -> Result<(), String> {
        let index = worker.index();
        let peers = worker.peers();
        let wm = m.worker(index).map_err(|e| e.to_string())?.clone();
        let _running = wm.running_guard();
        let _ = register_timely_logging(worker, &m);
        let file = match &sink_dir {
            Some(dir) if transactional => Some(
                FileSink::transactional(dir, index, plan.epoch, b.roll, format, &b.set, unit, b.file_columns.clone())
                    .map_err(|e| format!("creating result files in {}: {e}", dir.display()))?,
            ),
            Some(dir) => Some(
                match &shared_bars {
                    Some(bars) => {
                        FileSink::replay(dir, index, format, &b.set, unit, b.file_columns.clone(), bars.clone())
                    }
                    None => FileSink::create(dir, index, format, &b.set, unit, b.file_columns.clone()),
                }
                .map_err(|e| format!("creating result files in {}: {e}", dir.display()))?,
            ),
            None if to_stdout => Some(FileSink::stdout(&b.set, unit)),
            None => None,
        };
        let qdb = qdb.as_ref().map(|(h, t, a)| QuestDbOut::new(h.for_producer(index), t.clone(), a.clone()));
        let outputs = Rc::new(RefCell::new(WorkerOutputs::new(index, file, qdb, Some(wm.clone()))));
        let enrich = Rc::new(RefCell::new(EnrichCore::<Time>::default()));
        let tracked = Rc::downgrade(&enrich);
        outputs.borrow_mut().track_symbols(move || {
            let core = tracked.upgrade()?;
            let n = core.try_borrow().ok()?.symbols();
            Some(n as u64)
        });
        let candles = (!b.windows.timeframes.is_empty()).then(|| Rc::new(RefCell::new(CandlesCore::new(&b.windows))));
        let alerts = alerts_rt.as_ref().map(|rt| (rt.clone(), Rc::new(RefCell::new(AlertsCore::default()))));
        for part in &plan.parts {
            enrich.borrow_mut().restore(part.enrich.clone(), |s| owns(s, index, peers));
            if let (Some(core), Some(snap)) = (&candles, &part.candles) {
                core.borrow_mut().restore(snap.clone(), |s| owns(s, index, peers));
            }
            if let (Some((_, core)), Some(snap)) = (&alerts, &part.alerts) {
                core.borrow_mut().restore(snap.clone(), index, peers, |s| owns(s, index, peers));
            }
        }
        if plan.checkpoint.is_some() {
            tracing::debug!(worker = index, symbols = enrich.borrow().symbols(), "operator state restored");
        }
        let coordinator = Rc::new(RefCell::new(Coordinator::new(
            index,
            peers,
            store_w.clone(),
            fingerprint(&b),
            enrich.clone(),
            candles.clone(),
            alerts.as_ref().map(|(_, c)| c.clone()),
            outputs.clone(),
        )));
        let host: Rc<RefCell<dyn Host>> = coordinator.clone();
        let probes = WorkerProbes::default();
        let clock = Arc::clone(m.clock());
        let driver = |name: &str, batch: usize, rate: u64| DriverConfig {
            name: name.into(),
            epoch: plan.epoch,
            start_watermark: plan.watermark,
            interval,
            batch,
            rate: rate.div_ceil(peers as u64),
        };
        macro_rules! parts {
            ($reader:expr, $driver:expr) => {
                Parts {
                    reader: $reader,
                    driver: $driver,
                    host: host.clone(),
                    enrich: enrich.clone(),
                    candles: candles.clone(),
                    outputs: outputs.clone(),
                    alerts: alerts.clone(),
                    store: store_w.clone(),
                    live: live.clone(),
                }
            };
        }
        let mut kafka_handle = None;
        match &b.source {
            SourceSpec::Kafka(cfg) => {
                let restored = plan.kafka_positions();
                let (reader, handle) = kafka_reader(
                    cfg,
                    index,
                    peers,
                    b.bounds,
                    b.watermark_delay,
                    probes.durable.clone(),
                    Some(m.clone()),
                    &restored,
                )
                .map_err(|e| format!("worker {index}: Kafka source: {e}"))?;
                kafka_handle = Some(handle);
                let d = driver("KafkaSource", cfg.max_batch.max(1), 0);
                install(worker, &b, parts!(reader, d), &probes, &ctl, &clock);
            }
            SourceSpec::Generator { symbols, rate, seed, interval: step, count } => {
                let start_ms = if *rate > 0 {
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_millis() as i64 / 1000 * 1000)
                        .unwrap_or(0)
                } else {
                    1_700_000_000_000
                };
                let cfg = GeneratorConfig {
                    symbols: *symbols,
                    seed: *seed,
                    start_ms,
                    interval_ms: *step,
                    records: (*count > 0).then_some(*count),
                    ..GeneratorConfig::default()
                };
                let mut generator = MarketGenerator::for_worker(cfg, index, peers).map_err(|e| e.to_string())?;
                if let Some(SourceState::Generator(state)) = plan.same_shape_source(index, peers) {
                    generator.restore(state.clone()).map_err(|e| e.to_string())?;
                }
                let reader = GeneratorReader::new(generator, index, b.watermark_delay);
                install(worker, &b, parts!(reader, driver("Source", BATCH, *rate)), &probes, &ctl, &clock);
            }
            SourceSpec::File { paths, symbol, rate } => {
                let streams = streams_for_worker(paths, *symbol, b.bounds, index, peers)
                    .map_err(|e| format!("opening input files: {e}"))?;
                let reader = FileReader::new(FileSource::new(streams), b.watermark_delay);
                install(worker, &b, parts!(reader, driver("Source", BATCH, *rate)), &probes, &ctl, &clock);
            }
        }
        // Step until the dataflow completes (input ended), the savepoint is written, or the
        // run fails; in the last two cases the dataflow is dropped without draining.
        while worker.step_or_park(Some(Duration::from_millis(100))) {
            if ctl.failed() || coordinator.borrow().done {
                break;
            }
        }
        let complete = worker.installed_dataflows().is_empty();
        for id in worker.installed_dataflows() {
            worker.drop_dataflow(id);
        }
        if let Some(f) = ctl.failure() {
            return Err(f);
        }
        if complete {
            outputs.borrow_mut().finish().map_err(|e| format!("flushing results: {e}"))?;
            if let Some(k) = &kafka_handle {
                // Everything read is durable now: commit all of it (for lag dashboards).
                if let Err(e) = k.finish() {
                    tracing::warn!(error = %e, "final Kafka offset commit failed");
                }
            }
        }
        Ok(())
    })
    .map_err(|e| anyhow::anyhow!("starting the timely workers failed: {e}"))?;
    let mut failure = None;
    for (i, r) in guards.join().into_iter().enumerate() {
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failure = failure.or(Some(e)),
            Err(panic) => failure = failure.or(Some(format!("worker {i} panicked: {panic}"))),
        }
    }
    drop(progress); // clears the line before anything else is printed
    if failure.is_none() && !control.stop_requested() && matches!(output, Output::Configured) {
        linger(&built, &control);
    }
    services.close(failure.is_none())?;
    if let Some(e) = failure.or_else(|| control.failure()) {
        anyhow::bail!(e);
    }
    if let Output::Replay(file) = &output {
        let tmp = in_progress_path(file);
        std::fs::rename(&tmp, file).with_context(|| format!("renaming {} to {}", tmp.display(), file.display()))?;
    }
    Ok(metrics.totals())
}

/// Where a replay writes its output file until the run succeeded: `.<FILE>.inprogress` beside it.
fn in_progress_path(file: &std::path::Path) -> PathBuf {
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    file.with_file_name(format!(".{name}.inprogress"))
}

/// With `serve.linger`, keeps the status server (and the query API over the final state)
/// up after a finite input ended, until the time is up or a stop is requested.
fn linger(built: &Built, control: &RunControl) {
    let Some(spec) = &built.serve else { return };
    if spec.linger.is_zero() {
        return;
    }
    tracing::info!(linger = ?spec.linger, "input done; serving queries until the linger time is up (Ctrl-C stops)");
    let until = std::time::Instant::now() + spec.linger;
    while std::time::Instant::now() < until && !control.stop_requested() {
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn install<R: Reader>(
    worker: &mut timely::worker::Worker,
    built: &Built,
    parts: Parts<R>,
    probes: &WorkerProbes,
    control: &Arc<RunControl>,
    clock: &Arc<dyn crate::status::Clock>,
) {
    // The root scope counts epochs; the dataflow lives in a child scope whose time
    // `(epoch, watermark)` refines it (a tuple time cannot be a root scope's).
    worker.dataflow::<u64, _, _>(|root| {
        root.scoped::<Time, _, _>("Tickflow", |scope| {
            build_dataflow(scope, built, parts, probes, control.clone(), clock.clone());
        });
    });
}

/// Where a replay keeps its per-worker files: `<FILE>.d/`.
pub fn part_dir(file: &std::path::Path) -> PathBuf {
    let mut s = file.as_os_str().to_owned();
    s.push(".d");
    PathBuf::from(s)
}
