//! The dataflow of one worker, top to bottom.
//!
//! ```text
//! source driver ─┬ bars ── exchange by symbol ─┬ WatermarkGuard ─┬ Enrich ──► BarSink ────┐
//!   (reader,     └ cut markers ─ to every worker ┘                 └ Candles ─► CandleSink ─┴► durable probe
//!    epochs)
//!        └ part reports ─► ManifestWriter (worker 0) ─► manifest probe
//! ```
//!
//! With `[serve]`, `PublishBars` and `PublishCandles` also copy the `Enrich` and `Candles`
//! outputs into the process's live state, once per batch, for the query API.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use tickflow_operators::dataflow::candles::CandlesCore;
use tickflow_operators::dataflow::enrich::EnrichCore;
use tickflow_operators::dataflow::{Candles, Enrich, Time, route};
use tickflow_operators::{Bar, IndicatorSet};
use timely::dataflow::operators::{Concat, Exchange, Probe};
use timely::dataflow::{ProbeHandle, Scope};

use crate::alerts::dataflow::{AlertsRuntime, build_alerts, ticks_from_bars, ticks_from_candles};
use crate::checkpoint::CheckpointStore;
use crate::config::Built;
use crate::recovery::{RunControl, manifest_writer};
use crate::serve::publish::{publish_bars, publish_candles};
use crate::sinks::durable::durable_sink;
use crate::sinks::worker::WorkerOutputs;
use crate::sources::driver::{DriverConfig, Host, Probes, Reader, drive, watermark_guard};
use crate::status::Clock;

/// What one worker's dataflow is built from.
pub struct Parts<R: Reader> {
    /// The source's reader.
    pub reader: R,
    /// The source driver's settings.
    pub driver: DriverConfig,
    /// The worker's host of checkpoint steps.
    pub host: Rc<RefCell<dyn Host>>,
    /// The operators' state (restored before building).
    pub enrich: Rc<RefCell<EnrichCore<Time>>>,
    /// Candle state, when windows are configured.
    pub candles: Option<Rc<RefCell<CandlesCore<Time>>>>,
    /// The worker's outputs.
    pub outputs: Rc<RefCell<WorkerOutputs>>,
    /// Alerts, when configured, and their state.
    pub alerts: Option<(AlertsRuntime, Rc<RefCell<tickflow_operators::dataflow::alerts::AlertsCore>>)>,
    /// Where checkpoints go (worker 0 writes manifests).
    pub store: Option<CheckpointStore>,
    /// The process's live state for the query API (`[serve]`), if serving.
    pub live: Option<Arc<crate::serve::LiveStore>>,
}

/// The probes a worker's loop and source watch.
#[derive(Clone, Default)]
pub struct WorkerProbes {
    /// Every output durable.
    pub durable: ProbeHandle<Time>,
    /// Every source's data capability.
    pub sources: ProbeHandle<Time>,
    /// Checkpoints published.
    pub manifest: ProbeHandle<Time>,
    /// Every worker's snapshot of a checkpoint taken.
    pub snapped: ProbeHandle<Time>,
}

/// Builds the worker's dataflow in `scope`.
pub fn build_dataflow<'s, R: Reader>(
    scope: Scope<'s, Time>,
    built: &Built,
    parts: Parts<R>,
    probes: &WorkerProbes,
    control: Arc<RunControl>,
    clock: Arc<dyn Clock>,
) {
    let Parts { reader, driver, host, enrich, candles, outputs, alerts, store, live } = parts;
    let set = Rc::new(built.set.clone());
    let driver_probes = Probes {
        durable: probes.durable.clone(),
        sources: probes.sources.clone(),
        manifest: probes.manifest.clone(),
        snapped: probes.snapped.clone(),
    };
    let (bars, markers, reports, snapped) = drive(scope, driver, reader, driver_probes, host, control.clone(), clock);
    snapped.probe_with(&probes.snapped);
    let bars = watermark_guard(bars.probe_with(&probes.sources).exchange(route), markers);

    let enriched = bars.clone().enrich_with("Enrich", set.clone(), enrich);
    durable_sink(enriched.clone(), "BarSink", outputs.clone(), control.clone(), |out, r| match r {
        Ok(row) => out.bar(row),
        Err(bar) => out.late(bar, 0),
    })
    .probe_with(&probes.durable);

    let candles = candles.map(|core| candles_stream(bars, set, built, core));
    if let Some(live) = &live {
        publish_bars(enriched.clone(), live.clone());
        if let Some(c) = &candles {
            publish_candles(c.clone(), live.clone());
        }
    }
    if let Some(c) = &candles {
        durable_sink(c.clone(), "CandleSink", outputs.clone(), control.clone(), |out, r| match r {
            Ok(c) => out.candle(c),
            Err((bar, tf)) => out.late(bar, *tf),
        })
        .probe_with(&probes.durable);
    }
    if let Some((rt, core)) = alerts {
        let mut ticks = ticks_from_bars(enriched);
        if let Some(c) = &candles {
            ticks = ticks.concat(ticks_from_candles(c.clone()));
        }
        build_alerts(scope, ticks, &rt, core, control.clone()).probe_with(&probes.durable);
    }
    let retain = built.checkpoint.as_ref().map_or(1, |c| c.retain);
    manifest_writer(reports, store, built.processes.len(), built.workers, retain, control).probe_with(&probes.manifest);
}

fn candles_stream<'s>(
    bars: timely::dataflow::StreamVec<'s, Time, Bar>,
    set: Rc<IndicatorSet>,
    built: &Built,
    core: Rc<RefCell<CandlesCore<Time>>>,
) -> timely::dataflow::StreamVec<'s, Time, tickflow_operators::dataflow::CandleOut> {
    bars.candles_with("Candles", set, built.windows.clone(), core)
}
