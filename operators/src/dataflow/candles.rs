//! `Candles`: event-time tumbling windows per symbol and timeframe — candles, aggregates and
//! the indicators and signal over each timeframe's closed candles.
//!
//! A window `[start, start + tf)` closes when the watermark (input frontier) passes its end:
//! it is emitted with `revision` 0. Until the watermark passes `end + allowed_lateness`, a late
//! bar for it updates it and re-emits it (`revision` + 1), together with every later closed
//! candle of that symbol and timeframe, whose indicators depend on it; the candle indicator
//! state is restored from a snapshot taken before the corrected candle, so corrections are
//! exact. After that the window is final and a bar for it goes to the late output.
//! Windows without bars produce no candle.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;

use serde::{Deserialize, Serialize};
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::Operator;

use super::reorder::Reorder;
use super::{EventTime, frontier_watermark};
use crate::bar::Bar;
use crate::rows::{Candle, CandleAgg};
use crate::set::{IndicatorSet, SymbolState, Values};
use crate::symbol::{Symbol, SymbolTable};
use crate::time::Millis;

/// Window settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowConfig {
    /// Window lengths in ms, e.g. `[60_000, 300_000, 3_600_000]`.
    pub timeframes: Vec<Millis>,
    /// How long after a window closed a late bar may still correct it, in ms.
    pub allowed_lateness: Millis,
}

/// A candle (first emission or correction), or a bar too late for the window of `timeframe`.
pub type CandleOut = Result<Candle, (Bar, Millis)>;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Window {
    /// The candle without its indicator columns: those are computed when it closes and
    /// travel in the emitted [`Candle`] only.
    candle: CandleAgg,
    closed: bool,
    emitted: bool,
    /// Candle-indicator state before this candle was applied (kept while corrections are
    /// possible).
    before: Option<SymbolState>,
}

/// One (symbol, timeframe): its open and correctable windows and candle-indicator state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Series {
    windows: Vec<Window>,
    state: SymbolState,
    /// Windows ending at or before this are final.
    final_upto: Millis,
}

/// The state of one `Candles` operator, shareable (same worker thread) with whoever
/// checkpoints it.
pub struct CandlesCore<T: EventTime> {
    reorder: Reorder<T>,
    table: SymbolTable,
    /// series[symbol id * timeframes + timeframe index]
    series: Vec<Series>,
    /// (end, series index, start) of open windows, and of closed ones by end + lateness.
    to_close: BTreeSet<(Millis, usize, Millis)>,
    to_final: BTreeSet<(Millis, usize, Millis)>,
    /// The watermark up to which windows have been closed.
    closed_upto: Millis,
    timeframes: usize,
    lateness: Millis,
}

impl<T: EventTime> CandlesCore<T> {
    /// An empty state for `config`.
    pub fn new(config: &WindowConfig) -> CandlesCore<T> {
        CandlesCore {
            reorder: Reorder::default(),
            table: SymbolTable::default(),
            series: Vec::new(),
            to_close: BTreeSet::new(),
            to_final: BTreeSet::new(),
            closed_upto: Millis::MIN,
            timeframes: config.timeframes.len(),
            lateness: config.allowed_lateness.max(0),
        }
    }

    /// A copy of the state, keyed by symbol.
    pub fn snapshot(&self) -> CandlesSnapshot {
        let n = self.timeframes.max(1);
        let symbols = (0..self.table.len())
            .map(|id| (self.table.symbol(id as u32), self.series[id * n..(id + 1) * n].to_vec()))
            .collect();
        CandlesSnapshot { symbols, pending: self.reorder.pending().to_vec(), closed_upto: self.closed_upto }
    }

    /// Adds the part of `snap` whose symbols `keep` accepts. Call before the dataflow runs;
    /// snapshots of several workers may be merged (rescaling).
    pub fn restore(&mut self, snap: CandlesSnapshot, keep: impl Fn(&Symbol) -> bool) {
        let n = self.timeframes;
        for (symbol, series) in snap.symbols.into_iter().filter(|s| keep(&s.0)) {
            if series.len() != n {
                continue; // validated by the caller: the checkpoint has the same timeframes
            }
            let id = self.table.intern(symbol) as usize;
            for (k, s) in series.into_iter().enumerate() {
                let si = id * n + k;
                for w in &s.windows {
                    let end = w.candle.start + w.candle.timeframe;
                    if w.closed {
                        self.to_final.insert((end + self.lateness, si, w.candle.start));
                    } else {
                        self.to_close.insert((end, si, w.candle.start));
                    }
                }
                if si == self.series.len() {
                    self.series.push(s);
                } else {
                    self.series[si] = s;
                }
            }
        }
        self.closed_upto = self.closed_upto.max(snap.closed_upto);
        self.reorder.restore(snap.pending.into_iter().filter(|b| keep(&b.symbol)));
    }

    /// Symbols with state.
    pub fn symbols(&self) -> usize {
        self.table.len()
    }

    fn pending_windows(&self) -> bool {
        !self.to_close.is_empty() || !self.to_final.is_empty()
    }
}

/// The checkpointed form of a [`CandlesCore`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CandlesSnapshot {
    /// Per symbol, one series per configured timeframe (in config order).
    pub symbols: Vec<(Symbol, Vec<Series>)>,
    /// Bars received and not yet released.
    pub pending: Vec<Bar>,
    /// The watermark up to which windows were closed.
    pub closed_upto: Millis,
}

/// Emits candles for each configured timeframe. Input must be partitioned by symbol.
///
/// ```
/// use std::rc::Rc;
/// use timely::dataflow::operators::{Capture, ToStream, capture::Event};
/// use tickflow_operators::dataflow::{Candles, WindowConfig};
/// use tickflow_operators::{Bar, IndicatorSet, Symbol};
///
/// let s = Symbol::new("X").unwrap();
/// // three bars in the first minute, one in the second
/// let bars = vec![
///     Bar::new(s, 0, 10.0, 12.0, 9.0, 11.0, 1.0),
///     Bar::new(s, 20_000, 11.0, 15.0, 11.0, 14.0, 2.0),
///     Bar::new(s, 40_000, 14.0, 14.0, 8.0, 9.0, 3.0),
///     Bar::new(s, 60_000, 9.0, 9.0, 9.0, 9.0, 1.0),
/// ];
/// let cfg = WindowConfig { timeframes: vec![60_000], allowed_lateness: 0 };
/// let out = timely::example(move |scope| {
///     bars.to_stream(scope).candles(Rc::new(IndicatorSet::standard()), cfg).capture()
/// });
/// let candles: Vec<_> = out.iter()
///     .flat_map(|e| match e { Event::Messages(_, v) => v, _ => vec![] })
///     .map(Result::unwrap)
///     .collect();
/// assert_eq!(candles.len(), 2);
/// let c = &candles[0];
/// assert_eq!((c.start, c.open, c.high, c.low, c.close, c.volume, c.count), (0, 10.0, 15.0, 8.0, 9.0, 6.0, 3));
/// assert_eq!(c.avg_close(), (11.0 + 14.0 + 9.0) / 3.0);
/// ```
pub trait Candles<'scope, T: EventTime> {
    /// [`Candles::candles_named`] with the name "Candles".
    fn candles(self, set: Rc<IndicatorSet>, config: WindowConfig) -> StreamVec<'scope, T, CandleOut>;
    /// Names the operator.
    fn candles_named(self, name: &str, set: Rc<IndicatorSet>, config: WindowConfig) -> StreamVec<'scope, T, CandleOut>;
    /// Keeps its state in `core` (made by [`CandlesCore::new`] with the same `config`).
    fn candles_with(
        self,
        name: &str,
        set: Rc<IndicatorSet>,
        config: WindowConfig,
        core: Rc<RefCell<CandlesCore<T>>>,
    ) -> StreamVec<'scope, T, CandleOut>;
}

impl<'scope, T: EventTime> Candles<'scope, T> for StreamVec<'scope, T, Bar> {
    fn candles(self, set: Rc<IndicatorSet>, config: WindowConfig) -> StreamVec<'scope, T, CandleOut> {
        self.candles_named("Candles", set, config)
    }

    fn candles_named(self, name: &str, set: Rc<IndicatorSet>, config: WindowConfig) -> StreamVec<'scope, T, CandleOut> {
        let core = Rc::new(RefCell::new(CandlesCore::new(&config)));
        self.candles_with(name, set, config, core)
    }

    fn candles_with(
        self,
        name: &str,
        set: Rc<IndicatorSet>,
        config: WindowConfig,
        core: Rc<RefCell<CandlesCore<T>>>,
    ) -> StreamVec<'scope, T, CandleOut> {
        self.unary_frontier(Pipeline, name, move |cap, _info| {
            {
                // Restored windows and bars are emitted under the initial capability.
                let mut c = core.borrow_mut();
                if c.reorder.backlog() > 0 || c.pending_windows() {
                    c.reorder.hold(cap);
                }
            }
            let tfs = config.timeframes.clone();
            let lateness = config.allowed_lateness.max(0);
            let mut corrected: Vec<(usize, Millis)> = Vec::new();
            let mut row = Values::default();
            let mut emit: Vec<CandleOut> = Vec::new();

            move |(input, frontier), output| {
                let mut core = core.borrow_mut();
                let CandlesCore { reorder, table, series, to_close, to_final, closed_upto, .. } = &mut *core;
                reorder.absorb::<Pipeline>(input, output.output_index());
                let watermark = frontier_watermark(frontier).unwrap_or(Millis::MAX);
                emit.clear();
                if let Some((_, bars)) = reorder.release(frontier) {
                    for bar in bars {
                        let id = table.intern(bar.symbol) as usize;
                        if id * tfs.len() == series.len() {
                            for _ in &tfs {
                                series.push(Series {
                                    windows: Vec::with_capacity(2),
                                    state: set.new_state(),
                                    final_upto: Millis::MIN,
                                });
                            }
                        }
                        for (k, &tf) in tfs.iter().enumerate() {
                            let si = id * tfs.len() + k;
                            let s = &mut series[si];
                            let start = window_start(bar.ts, tf);
                            let end = start + tf;
                            match s.windows.binary_search_by_key(&start, |w| w.candle.start) {
                                _ if end <= s.final_upto => emit.push(Err((*bar, tf))),
                                Ok(i) => {
                                    s.windows[i].candle.add(bar);
                                    if s.windows[i].closed && !corrected.contains(&(si, start)) {
                                        corrected.push((si, start));
                                    }
                                }
                                Err(_) if end.saturating_add(lateness) <= *closed_upto => emit.push(Err((*bar, tf))),
                                Err(i) if end <= *closed_upto => {
                                    // A window first seen after its close, within the lateness:
                                    // it goes between closed candles; replay from it.
                                    let before =
                                        s.windows[i..].iter().find(|w| w.closed).and_then(|w| w.before.clone());
                                    let before = before.unwrap_or_else(|| s.state.clone());
                                    let candle = CandleAgg::from_bar(bar, tf, start);
                                    s.windows.insert(
                                        i,
                                        Window { candle, closed: true, emitted: false, before: Some(before) },
                                    );
                                    to_final.insert((end + lateness, si, start));
                                    corrected.push((si, start));
                                }
                                Err(i) => {
                                    let candle = CandleAgg::from_bar(bar, tf, start);
                                    s.windows.insert(i, Window { candle, closed: false, emitted: false, before: None });
                                    to_close.insert((end, si, start));
                                }
                            }
                        }
                    }
                }
                // Corrections: restore the state before the corrected candle, replay the rest.
                for (si, start) in corrected.drain(..) {
                    let s = &mut series[si];
                    let Some(first) = s.windows.iter().position(|w| w.candle.start == start) else { continue };
                    // A correction is only recorded for a closed window, which has a snapshot.
                    s.state = s.windows[first].before.clone().expect("closed windows keep a snapshot");
                    for w in s.windows[first..].iter_mut().filter(|w| w.closed) {
                        w.before = Some(s.state.clone());
                        if w.emitted {
                            w.candle.revision += 1;
                        }
                        let mut candle = w.candle.candle();
                        apply(&set, &mut s.state, &mut candle, &mut row);
                        w.emitted = true;
                        emit.push(Ok(candle));
                    }
                }
                // Close windows the watermark passed, in end order.
                while let Some(&(end, si, start)) = to_close.first() {
                    if end > watermark {
                        break;
                    }
                    to_close.pop_first();
                    let s = &mut series[si];
                    // Every window in `to_close` is present until closed.
                    let w = s.windows.iter_mut().find(|w| w.candle.start == start).expect("open window present");
                    if lateness > 0 {
                        w.before = Some(s.state.clone());
                        to_final.insert((end + lateness, si, start));
                    }
                    let mut candle = w.candle.candle();
                    apply(&set, &mut s.state, &mut candle, &mut row);
                    w.closed = true;
                    w.emitted = true;
                    emit.push(Ok(candle));
                    if lateness == 0 {
                        s.final_upto = s.final_upto.max(end);
                        s.windows.retain(|w| w.candle.start != start);
                    }
                }
                *closed_upto = (*closed_upto).max(watermark);
                while let Some(&(deadline, si, start)) = to_final.first() {
                    if deadline > watermark {
                        break;
                    }
                    to_final.pop_first();
                    let s = &mut series[si];
                    s.final_upto = s.final_upto.max(deadline - lateness);
                    s.windows.retain(|w| w.candle.start != start);
                }
                if !emit.is_empty() {
                    if let Some(cap) = reorder.capability() {
                        output.session(cap).give_iterator(emit.drain(..));
                    }
                }
                let pending_windows = !to_close.is_empty() || !to_final.is_empty();
                reorder.finish(frontier, pending_windows);
            }
        })
    }
}

/// The start of the window of length `tf` (ms) that event time `ts` falls in (windows are
/// aligned to the epoch; times before 1970 round down too).
///
/// ```
/// use tickflow_operators::dataflow::candles::window_start;
/// assert_eq!(window_start(119_999, 60_000), 60_000);
/// assert_eq!(window_start(120_000, 60_000), 120_000);
/// assert_eq!(window_start(-1, 60_000), -60_000);
/// ```
pub fn window_start(ts: Millis, tf: Millis) -> Millis {
    ts - ts.rem_euclid(tf)
}

/// What closing a window does to its candle: the candle indicators and signal over the
/// series' closed candles (`state`, advanced by this candle) and the signal change. Public
/// for engine-free loops that close candles themselves (the benchmarks' no-engine loop).
pub fn apply(set: &IndicatorSet, state: &mut SymbolState, candle: &mut Candle, row: &mut Values) {
    let decision = set.update(state, &candle.as_bar(), row);
    candle.values = *row;
    candle.decision = decision;
    candle.changed_from = state.change.observe(decision.action);
}
