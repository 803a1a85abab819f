//! The timely cluster: builds the dataflow on every worker and runs it.
//!
//! ```text
//! source (file | generator; per worker) ──exchange by symbol hash──┬─ Enrich ──► bars, signal changes, late
//!   └─ invalid records ► dead letters                              └─ Candles ─► candles + aggregates, late
//! ```
//! Sources emit bars at their watermark (timely time) and gate themselves on a probe of the
//! outputs, so no queue between operators grows without bound.

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tickflow_operators::Bar;
use tickflow_operators::dataflow::{Candles, Enrich, Time, route};
use timely::CommunicationConfig;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::operator::source;
use timely::dataflow::operators::{Capability, Concat, Exchange, Operator, Probe};
use timely::dataflow::{ProbeHandle, Scope, StreamVec};

use crate::alerts::api::stats_route as alert_stats_route;
use crate::alerts::dataflow::{AlertsRuntime, build_alerts, ticks_from_bars, ticks_from_candles};
use crate::alerts::notify::{Notifier, Outputs as AlertOutputs, alerts_ddl};
use crate::alerts::rule::RuleContext;
use crate::alerts::{RuleStore, routes as alert_routes};
use crate::config::{Built, FileFormat, SourceSpec};
use crate::decode::DecodeError;
use crate::decode::TsUnit;
use crate::sinks::file::{FileSink, concat_parts};
use crate::sinks::questdb::{Name, QuestDbSink, Tables};
use crate::sinks::worker::{AckTable, OutputError, QuestDbOut, WorkerOutputs, record_ack};
use crate::sources::file::{FileRecord, FileSource, streams_for_worker};
use crate::sources::generator::{GeneratorConfig, MarketGenerator};
use crate::sources::kafka::{KafkaSourceHandle, kafka_source};
use crate::status::{ProcessMetrics, StatusServer, register_timely_logging};

/// Set to stop every source of this process: the dataflow then drains, the sinks flush, and
/// `run` returns (Ctrl-C / SIGTERM do this in the binary).
pub static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Records emitted per source activation.
const BATCH: usize = 4096;
/// Records a source may emit while the outputs lag behind its watermark.
const MAX_IN_FLIGHT: u64 = 64 * 1024;

/// Counters of one run, summed over this process's workers (read from its metrics).
pub type Totals = crate::status::CounterValues;

/// What a run writes where.
#[derive(Clone, Debug)]
pub enum Output {
    /// The configured sinks (`[sinks]`), and the status server.
    Configured,
    /// One-shot replay: enriched bars to one file (CSV or NDJSON by extension), the other
    /// outputs beside it in `<FILE>.d/`.
    Replay(PathBuf),
}

/// Runs process `process` of the cluster until its sources are exhausted (or forever).
pub fn run(built: Built, process: usize, output: Output) -> anyhow::Result<Totals> {
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
    let metrics = Arc::new(ProcessMetrics::with_system_clock(process, first..first + built.workers));
    let (sink_dir, format) = match &output {
        Output::Configured => match &built.file_sink {
            Some((dir, f)) => (Some(dir.clone()), *f),
            None => (None, FileFormat::Csv),
        },
        Output::Replay(file) => {
            let ndjson = file.extension().is_some_and(|e| e == "ndjson" || e == "json" || e == "jsonl");
            (Some(part_dir(file)), if ndjson { FileFormat::Ndjson } else { FileFormat::Csv })
        }
    };
    let acks: AckTable = Arc::new((0..built.workers * built.processes.len()).map(|_| Default::default()).collect());
    let questdb = match (&output, &built.questdb) {
        (Output::Configured, Some(cfg)) => {
            let tables = Tables::new(&built.set, &cfg.table_prefix).context("QuestDB table layout")?;
            let m = metrics.clone();
            let a = acks.clone();
            let alerts_ddl = built.alerts.iter().map(|_| alerts_ddl(&format!("{}alerts", cfg.table_prefix)));
            let sink = QuestDbSink::builder(cfg.clone(), &tables)
                .report_to(metrics.clone())
                .extra_ddl(alerts_ddl)
                .on_ack(move |seq| {
                    record_ack(&a, seq);
                    m.mark_sink_flush();
                })
                .on_rejected(|row| tracing::error!(line = %row.line, message = %row.message, "QuestDB rejected a row"))
                .start()
                .with_context(|| format!("starting the QuestDB sink at {}", cfg.addr))?;
            metrics.set_sink_reachable(true);
            Some((sink, Arc::new(tables)))
        }
        _ => {
            metrics.set_sink_reachable(true);
            None
        }
    };
    // Alerts: the rules store (compacted topic + mirror), the notifier thread, the /rules routes.
    let alerts = match (&output, &built.alerts) {
        (Output::Configured, Some(cfg)) => {
            let store = Arc::new(RuleStore::start(cfg).context("alerts: the rules topic")?);
            let qdb = match (&questdb, &built.questdb) {
                (Some((sink, _)), Some(q)) => {
                    let table = Name::table(&format!("{}alerts", q.table_prefix)).context("alerts table name")?;
                    Some((sink.handle(), table))
                }
                _ => None,
            };
            let notifier = Notifier::start(cfg, AlertOutputs { questdb: qdb }).context("alerts: the notifier")?;
            let ctx = RuleContext::new(&built.set, &built.windows.timeframes)
                .with_targets(crate::alerts::notify::target::TargetPolicy::new(&cfg.allowed_hosts));
            Some((store, notifier, ctx, cfg.clone()))
        }
        _ => None,
    };
    let server = match &output {
        Output::Configured => {
            let addr = built.status_addr(process);
            let options = built.status_options.clone();
            let extra = alerts.as_ref().map(|(store, notifier, ctx, cfg)| {
                use warp::Filter as _;
                let access = crate::alerts::api::RulesAccess::new(cfg, &options.read_tokens, &options.limits);
                alert_routes(store.clone(), ctx.clone(), access.clone())
                    .or(alert_stats_route(notifier.handle().stats(), &access))
                    .unify()
                    .boxed()
            });
            let server = StatusServer::start_with(addr, metrics.clone(), extra, options)
                .with_context(|| format!("starting the status server on {addr}"))?;
            tracing::info!(addr = %server.local_addr(), "status server listening");
            Some(server)
        }
        Output::Replay(_) => None,
    };
    // Generator and file sources are connected as soon as the workers run; the Kafka source
    // says so itself once it has reached the brokers.
    if !matches!(built.source, SourceSpec::Kafka(_)) {
        metrics.set_source_connected(true);
    }
    let unit = match &built.source {
        SourceSpec::File { paths, symbol, .. } => detect_ts_unit(paths, *symbol, built.bounds),
        SourceSpec::Generator { .. } | SourceSpec::Kafka(_) => TsUnit::Millis,
    };
    let to_stdout = built.stdout && matches!(output, Output::Configured);
    let alerts_rt = alerts.as_ref().map(|(store, notifier, ctx, cfg)| AlertsRuntime {
        mirror: store.mirror(),
        ctx: ctx.clone(),
        notifier: Some(notifier.handle()),
        poll_interval: cfg.poll_interval(),
    });
    let b = built.clone();
    let m = metrics.clone();
    let qdb = questdb.as_ref().map(|(s, t)| (s.handle(), t.clone(), acks.clone()));
    let guards = timely::execute(config, move |worker| {
        let index = worker.index();
        let wm = m.worker(index).expect("worker ranges match the config").clone();
        let _running = wm.running_guard();
        let _ = register_timely_logging(worker, &m);
        let set = Rc::new(b.set.clone());
        let probe = ProbeHandle::<Time>::new();
        let file = match &sink_dir {
            Some(dir) => {
                Some(FileSink::create(dir, index, format, &b.set, unit).expect("creating result files failed"))
            }
            None if to_stdout => Some(FileSink::stdout(&b.set, unit)),
            None => None,
        };
        let qdb = qdb.as_ref().map(|(h, t, a)| QuestDbOut::new(h.clone(), t.clone(), a.clone()));
        let outputs = Rc::new(RefCell::new(WorkerOutputs::new(index, file, qdb, Some(wm.clone()))));
        let mut kafka: Option<KafkaSourceHandle> = None;
        worker.dataflow::<Time, _, _>(|scope| {
            let bars = match &b.source {
                SourceSpec::Kafka(cfg) => {
                    let o = outputs.clone();
                    let on_invalid = move |location: &str, error: &DecodeError, payload: &[u8]| {
                        let mut out = o.borrow_mut();
                        out.dead_letter(location, &error.to_string(), payload).expect("writing dead letters failed");
                    };
                    let (bars, handle) = kafka_source(
                        scope,
                        cfg,
                        b.bounds,
                        b.watermark_delay,
                        probe.clone(),
                        on_invalid,
                        Some(m.clone()),
                    )
                    .unwrap_or_else(|e| panic!("worker {index}: Kafka source: {e}"));
                    kafka = Some(handle);
                    bars
                }
                _ => bar_source(scope, &b, probe.clone(), outputs.clone()),
            };
            let bars = bars.exchange(route);
            let enriched = bars.clone().enrich(set.clone());
            let bars_done = durable_sink(enriched.clone(), "BarSink", outputs.clone(), |out, r| match r {
                Ok(row) => out.bar(&row),
                Err(bar) => out.late(&bar, 0),
            });
            bars_done.probe_with(&probe);
            let candles = (!b.windows.timeframes.is_empty()).then(|| bars.candles(set.clone(), b.windows.clone()));
            if let Some(candles) = &candles {
                durable_sink(candles.clone(), "CandleSink", outputs.clone(), |out, r| match r {
                    Ok(c) => out.candle(&c),
                    Err((bar, tf)) => out.late(&bar, tf),
                })
                .probe_with(&probe);
            }
            if let Some(rt) = &alerts_rt {
                let mut ticks = ticks_from_bars(enriched);
                if let Some(c) = &candles {
                    ticks = ticks.concat(ticks_from_candles(c.clone()));
                }
                build_alerts(scope, ticks, rt).probe_with(&probe);
            }
        });
        let stopper = kafka.as_ref().map(KafkaSourceHandle::stopper);
        while worker.step_or_park(Some(Duration::from_millis(100))) {
            if let Some(s) = &stopper {
                if STOP.load(std::sync::atomic::Ordering::Relaxed) && !s.is_stopped() {
                    s.stop();
                }
            }
        }
        outputs.borrow_mut().finish().expect("flushing results failed");
        if let Some(k) = &kafka {
            // The dataflow is complete, so every record read is durably written: commit all.
            if let Err(e) = k.finish() {
                tracing::warn!(error = %e, "final Kafka offset commit failed");
            }
        }
    })
    .map_err(|e| anyhow::anyhow!("starting the timely workers failed: {e}"))?;
    for (i, r) in guards.join().into_iter().enumerate() {
        r.map_err(|e| anyhow::anyhow!("worker {i} failed: {e}"))?;
    }
    if let Some((_, notifier, _, _)) = alerts {
        notifier.close();
    }
    if let Some((sink, _)) = questdb {
        sink.close().context("closing the QuestDB sink")?;
    }
    if let Some(s) = server {
        s.shutdown();
    }
    if let Output::Replay(file) = &output {
        let dir = part_dir(file);
        let ext = if format == FileFormat::Csv { "csv" } else { "ndjson" };
        let parts: Vec<PathBuf> = (0..built.workers).map(|w| dir.join(format!("bars-w{w}.{ext}"))).collect();
        concat_parts(&parts, file, format == FileFormat::Csv).with_context(|| format!("writing {}", file.display()))?;
    }
    Ok(metrics.totals())
}

/// The unit of the first valid timestamp in the inputs (the unit results are written in).
fn detect_ts_unit(
    paths: &[PathBuf],
    symbol: Option<tickflow_operators::Symbol>,
    bounds: tickflow_operators::TimeBounds,
) -> TsUnit {
    let Ok(streams) = streams_for_worker(paths, symbol, bounds, 0, 1) else { return TsUnit::Millis };
    for mut s in streams {
        for _ in 0..100 {
            match s.peek_ts() {
                Ok(Some(_)) => {
                    if let Some(u) = s.ts_unit {
                        return u;
                    }
                    s.take();
                }
                _ => break,
            }
        }
    }
    TsUnit::Millis
}

/// Writes every record through `write` into the worker's outputs and holds the capability of
/// its time until the outputs made it durable (files flushed, QuestDB acknowledged). The
/// returned stream carries no data: a probe on it is the *durable* frontier, which gates the
/// sources and decides which Kafka offsets may be committed.
fn durable_sink<'s, D: 'static>(
    stream: StreamVec<'s, Time, D>,
    name: &str,
    outputs: Rc<RefCell<WorkerOutputs>>,
    mut write: impl FnMut(&mut WorkerOutputs, D) -> Result<(), OutputError> + 'static,
) -> StreamVec<'s, Time, ()> {
    let scope = stream.scope();
    stream.unary_frontier::<CapacityContainerBuilder<Vec<()>>, _, _, _>(Pipeline, name, move |_cap, info| {
        let activator = scope.activator_for(info.address);
        // (capability, the output batch its records went into)
        let mut held: Vec<(Capability<Time>, u64)> = Vec::new();
        move |(input, _frontier), output| {
            let mut out = outputs.borrow_mut();
            let mut any = false;
            input.for_each(|cap, data| {
                any = true;
                let batch = out.batch_no();
                if let Some(c) = cap.retain_least(output.output_index()) {
                    if !held.last().is_some_and(|(h, b)| *b == batch && h.time() <= c.time()) {
                        held.push((c, batch));
                    }
                }
                for r in data.drain(..) {
                    write(&mut out, r).expect("writing results failed");
                }
            });
            if any {
                out.end_batch().expect("writing results failed");
            }
            let mut failed = None;
            held.retain(|(_, b)| match out.durable(*b) {
                Ok(done) => !done,
                Err(e) => {
                    failed = Some(e);
                    true
                }
            });
            if let Some(e) = failed {
                panic!("{e}");
            }
            if !held.is_empty() {
                activator.activate_after(Duration::from_millis(2));
            }
            let _ = output;
        }
    })
}

/// Where a replay keeps its per-worker files: `<FILE>.d/`.
pub fn part_dir(file: &std::path::Path) -> PathBuf {
    let mut s = file.as_os_str().to_owned();
    s.push(".d");
    PathBuf::from(s)
}

/// The source of this worker: file replay or the generator, emitting valid bars at the
/// source watermark; invalid records go straight to the dead-letter file.
#[allow(clippy::too_many_arguments)]
fn bar_source<'s>(
    scope: Scope<'s, Time>,
    built: &Built,
    probe: ProbeHandle<Time>,
    outputs: Rc<RefCell<WorkerOutputs>>,
) -> StreamVec<'s, Time, Bar> {
    let index = scope.index();
    let peers = scope.peers();
    let built = built.clone();
    source(scope, "Source", move |cap, info| {
        let activator = scope.activator_for(info.address);
        let mut cap = Some(cap);
        let mut files = None;
        let mut generator = None;
        let mut pace: Option<(Instant, u64, u64)> = None; // (start, bars per second, emitted)
        let mut delay = built.watermark_delay;
        let mut emitted_since_caught_up = 0u64;
        let mut batch: Vec<Bar> = Vec::with_capacity(BATCH);
        let mut max_seen = i64::MIN;
        match &built.source {
            SourceSpec::File { paths, symbol, rate } => {
                if *rate > 0 {
                    pace = Some((Instant::now(), (*rate).div_ceil(peers as u64), 0));
                }
                let streams =
                    streams_for_worker(paths, *symbol, built.bounds, index, peers).expect("opening input files failed");
                files = Some(FileSource::new(streams));
            }
            // The Kafka source is its own operator (`kafka_source`); never built here.
            SourceSpec::Kafka(_) => unreachable!("bar_source is not used for Kafka"),
            SourceSpec::Generator { symbols, rate, seed, interval, count } => {
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
                    interval_ms: *interval,
                    records: (*count > 0).then_some(*count),
                    ..GeneratorConfig::default()
                };
                generator =
                    Some(MarketGenerator::for_worker(cfg, index, peers).expect("generator config was validated"));
                if *rate > 0 {
                    pace = Some((Instant::now(), (*rate).div_ceil(peers as u64), 0));
                }
                delay = delay.max(0);
            }
        }
        move |output| {
            if STOP.load(std::sync::atomic::Ordering::Relaxed) {
                cap = None;
            }
            let Some(c) = cap.as_mut() else { return };
            // Backpressure: wait while the outputs lag and we already have much in flight.
            if probe.less_than(c.time()) {
                if emitted_since_caught_up >= MAX_IN_FLIGHT {
                    activator.activate_after(Duration::from_micros(200));
                    return;
                }
            } else {
                emitted_since_caught_up = 0;
            }
            let mut budget = BATCH;
            if let Some((start, rate, emitted)) = pace.as_mut() {
                let due = (start.elapsed().as_secs_f64() * *rate as f64) as u64;
                budget = budget.min(due.saturating_sub(*emitted) as usize);
                if budget == 0 {
                    activator.activate_after(Duration::from_millis(5));
                    return;
                }
                *emitted += budget as u64;
            }
            batch.clear();
            let mut exhausted = false;
            let mut out = outputs.borrow_mut();
            if let Some(g) = generator.as_mut() {
                let n = g.fill(&mut batch, budget);
                exhausted |= n < budget;
            }
            if let Some(f) = files.as_mut() {
                while batch.len() < budget {
                    match f.next_record().expect("reading input failed") {
                        None => {
                            exhausted = true;
                            break;
                        }
                        Some(FileRecord::Bar(b)) => batch.push(b),
                        Some(FileRecord::Invalid { location, error, payload }) => {
                            tracing::debug!(%location, %error, "invalid record dead-lettered");
                            out.dead_letter(&location, &error.to_string(), &payload)
                                .expect("writing dead letters failed");
                        }
                    }
                }
            }
            let n = batch.len() as u64;
            if !batch.is_empty() {
                let mut session = output.session(c);
                for b in batch.drain(..) {
                    max_seen = max_seen.max(b.ts);
                    session.give(b);
                }
            }
            out.counters.bars_in += n;
            out.counters.batches += 1;
            emitted_since_caught_up += n;
            if exhausted {
                out.end_batch().expect("writing results failed");
                cap = None;
                return;
            }
            // Advance the watermark: never past what a stream can still yield on time.
            // Time-sorted inputs: the next bar's time. Otherwise the newest time minus the delay.
            let mut wm = max_seen.saturating_sub(delay);
            if delay == 0 {
                if let Some(f) = files.as_mut() {
                    if let Some(low) = f.low_watermark().expect("reading input failed") {
                        wm = low;
                    }
                }
            }
            let wm = wm.max(0) as Time;
            if wm > *c.time() {
                c.downgrade(&wm);
            }
            out.counters.watermark_ms = Some(wm as i64);
            out.end_batch().expect("writing results failed");
            drop(out);
            activator.activate();
        }
    })
}
