//! `Enrich`: per-bar indicators and signal for each symbol, in event-time order.

use std::cell::RefCell;
use std::rc::Rc;

use serde::{Deserialize, Serialize};
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::Operator;

use super::EventTime;
use super::reorder::Reorder;
use crate::bar::Bar;
use crate::rows::BarOut;
use crate::set::{IndicatorSet, SymbolState, Values};
use crate::signal::Decision;
use crate::symbol::{Symbol, SymbolTable};

/// Computes every indicator of an [`IndicatorSet`] and the signal for each bar.
///
/// The input must already be partitioned by symbol (exchange by [`super::route`]): each
/// symbol's state lives on one worker. A bar that is not newer than the last bar processed
/// for its symbol cannot be applied in order: it comes out as `Err(bar)` (late).
///
/// ```
/// use std::rc::Rc;
/// use timely::dataflow::operators::{Capture, ToStream, capture::Event};
/// use tickflow_operators::dataflow::Enrich;
/// use tickflow_operators::{Bar, IndicatorSet, Symbol};
///
/// let s = Symbol::new("X").unwrap();
/// let bars: Vec<Bar> = (0..30).map(|i| Bar::new(s, 1000 * i, 1.0, 2.0, 0.5, 1.0 + i as f64, 10.0)).collect();
/// let out = timely::example(move |scope| {
///     bars.to_stream(scope).enrich(Rc::new(IndicatorSet::standard())).capture()
/// });
/// let rows: Vec<_> = out.iter().flat_map(|e| match e { Event::Messages(_, v) => v, _ => vec![] }).collect();
/// assert_eq!(rows.len(), 30);
/// let last = rows.last().unwrap().as_ref().unwrap();
/// assert_eq!(last.values.get(0), Some(28.0)); // sma_5 of closes 26..30
/// ```
/// The state of one `Enrich` operator: per-symbol indicator state and the bars waiting for
/// the frontier. Shared (`Rc<RefCell<..>>`, same worker thread) with whoever checkpoints it.
pub struct EnrichCore<T: EventTime> {
    reorder: Reorder<T>,
    table: SymbolTable,
    states: Vec<(SymbolState, i64)>,
}

impl<T: EventTime> Default for EnrichCore<T> {
    fn default() -> Self {
        EnrichCore { reorder: Reorder::default(), table: SymbolTable::default(), states: Vec::new() }
    }
}

/// The checkpointed form of an [`EnrichCore`], keyed by symbol (so it can be re-partitioned).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EnrichSnapshot {
    /// Per symbol: indicator and signal state, and the event time of its last bar.
    pub symbols: Vec<(Symbol, SymbolState, i64)>,
    /// Bars received and not yet released (event time at or past the watermark).
    pub pending: Vec<Bar>,
}

impl<T: EventTime> EnrichCore<T> {
    /// A copy of the state, symbols in first-seen order.
    pub fn snapshot(&self) -> EnrichSnapshot {
        let symbols = self
            .states
            .iter()
            .enumerate()
            .map(|(id, (s, ts))| (self.table.symbol(id as u32), s.clone(), *ts))
            .collect();
        EnrichSnapshot { symbols, pending: self.reorder.pending().to_vec() }
    }

    /// Adds the part of `snap` whose symbols `keep` accepts (the symbols this worker owns).
    /// Call before the dataflow runs; several snapshots (of other workers) may be merged.
    pub fn restore(&mut self, snap: EnrichSnapshot, keep: impl Fn(&Symbol) -> bool) {
        for (symbol, state, ts) in snap.symbols.into_iter().filter(|s| keep(&s.0)) {
            let id = self.table.intern(symbol) as usize;
            if id == self.states.len() {
                self.states.push((state, ts));
            } else {
                self.states[id] = (state, ts);
            }
        }
        self.reorder.restore(snap.pending.into_iter().filter(|b| keep(&b.symbol)));
    }

    /// Symbols with state.
    pub fn symbols(&self) -> usize {
        self.states.len()
    }
}

/// Computes every indicator of an [`IndicatorSet`] and the signal for each bar.
///
/// The input must already be partitioned by symbol (exchange by [`super::route`]): each
/// symbol's state lives on one worker. A bar that is not newer than the last bar processed
/// for its symbol cannot be applied in order: it comes out as `Err(bar)` (late).
///
/// ```
/// use std::rc::Rc;
/// use timely::dataflow::operators::{Capture, ToStream, capture::Event};
/// use tickflow_operators::dataflow::Enrich;
/// use tickflow_operators::{Bar, IndicatorSet, Symbol};
///
/// let s = Symbol::new("X").unwrap();
/// let bars: Vec<Bar> = (0..30).map(|i| Bar::new(s, 1000 * i, 1.0, 2.0, 0.5, 1.0 + i as f64, 10.0)).collect();
/// let out = timely::example(move |scope| {
///     bars.to_stream(scope).enrich(Rc::new(IndicatorSet::standard())).capture()
/// });
/// let rows: Vec<_> = out.iter().flat_map(|e| match e { Event::Messages(_, v) => v, _ => vec![] }).collect();
/// assert_eq!(rows.len(), 30);
/// let last = rows.last().unwrap().as_ref().unwrap();
/// assert_eq!(last.values.get(0), Some(28.0)); // sma_5 of closes 26..30
/// ```
pub trait Enrich<'scope, T: EventTime> {
    /// [`Enrich::enrich_named`] with the name "Enrich".
    fn enrich(self, set: Rc<IndicatorSet>) -> StreamVec<'scope, T, Result<BarOut, Bar>>;
    /// Names the operator (shown in logs and the status endpoint).
    fn enrich_named(self, name: &str, set: Rc<IndicatorSet>) -> StreamVec<'scope, T, Result<BarOut, Bar>>;
    /// Keeps its state in `core` (restored beforehand, checkpointed by the caller).
    fn enrich_with(
        self,
        name: &str,
        set: Rc<IndicatorSet>,
        core: Rc<RefCell<EnrichCore<T>>>,
    ) -> StreamVec<'scope, T, Result<BarOut, Bar>>;
}

impl<'scope, T: EventTime> Enrich<'scope, T> for StreamVec<'scope, T, Bar> {
    fn enrich(self, set: Rc<IndicatorSet>) -> StreamVec<'scope, T, Result<BarOut, Bar>> {
        self.enrich_named("Enrich", set)
    }

    fn enrich_named(self, name: &str, set: Rc<IndicatorSet>) -> StreamVec<'scope, T, Result<BarOut, Bar>> {
        self.enrich_with(name, set, Rc::default())
    }

    fn enrich_with(
        self,
        name: &str,
        set: Rc<IndicatorSet>,
        core: Rc<RefCell<EnrichCore<T>>>,
    ) -> StreamVec<'scope, T, Result<BarOut, Bar>> {
        self.unary_frontier(Pipeline, name, move |cap, _info| {
            {
                // Restored bars wait for the frontier like received ones, under the initial
                // capability.
                let mut c = core.borrow_mut();
                if c.reorder.backlog() > 0 {
                    c.reorder.hold(cap);
                }
            }
            // The rows of one release, sent as one container: each row is written once, in
            // place (a `BarOut` is 360 bytes; pushing it through a session copies it again,
            // in containers of ~22 rows).
            let mut rows: Vec<Result<BarOut, Bar>> = Vec::new();
            move |(input, frontier), output| {
                let mut core = core.borrow_mut();
                let EnrichCore { reorder, table, states } = &mut *core;
                reorder.absorb::<Pipeline>(input, output.output_index());
                if let Some((cap, bars)) = reorder.release(frontier) {
                    if !bars.is_empty() {
                        rows.reserve(bars.len());
                        for bar in bars {
                            let id = table.intern(bar.symbol) as usize;
                            if id == states.len() {
                                states.push((set.new_state(), i64::MIN));
                            }
                            let (state, last_ts) = &mut states[id];
                            if bar.ts <= *last_ts {
                                rows.push(Err(*bar));
                                continue;
                            }
                            *last_ts = bar.ts;
                            rows.push(Ok(BarOut {
                                bar: *bar,
                                values: Values::default(),
                                decision: Decision::default(),
                                changed_from: None,
                            }));
                            if let Some(Ok(row)) = rows.last_mut() {
                                row.decision = set.update(state, bar, &mut row.values);
                                row.changed_from = state.change.observe(row.decision.action);
                            }
                        }
                        output.session(cap).give_container(&mut rows);
                        rows.clear();
                    }
                }
                reorder.finish(frontier, false);
            }
        })
    }
}
