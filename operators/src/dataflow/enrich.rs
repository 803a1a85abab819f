//! `Enrich`: per-bar indicators and signal for each symbol, in event-time order.

use std::rc::Rc;

use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::Operator;

use super::Time;
use super::reorder::Reorder;
use crate::bar::Bar;
use crate::rows::BarOut;
use crate::set::{IndicatorSet, SymbolState, Values};
use crate::symbol::SymbolTable;

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
pub trait Enrich<'scope> {
    /// [`Enrich::enrich_named`] with the name "Enrich".
    fn enrich(self, set: Rc<IndicatorSet>) -> StreamVec<'scope, Time, Result<BarOut, Bar>>;
    /// Names the operator (shown in logs and the status endpoint).
    fn enrich_named(self, name: &str, set: Rc<IndicatorSet>) -> StreamVec<'scope, Time, Result<BarOut, Bar>>;
}

impl<'scope> Enrich<'scope> for StreamVec<'scope, Time, Bar> {
    fn enrich(self, set: Rc<IndicatorSet>) -> StreamVec<'scope, Time, Result<BarOut, Bar>> {
        self.enrich_named("Enrich", set)
    }

    fn enrich_named(self, name: &str, set: Rc<IndicatorSet>) -> StreamVec<'scope, Time, Result<BarOut, Bar>> {
        self.unary_frontier(Pipeline, name, move |_cap, _info| {
            let mut reorder = Reorder::default();
            let mut table = SymbolTable::default();
            let mut states: Vec<(SymbolState, i64)> = Vec::new();
            let mut row = Values::default();
            move |(input, frontier), output| {
                reorder.absorb::<Pipeline>(input, output.output_index());
                if let Some((cap, bars)) = reorder.release(frontier) {
                    if !bars.is_empty() {
                        let mut session = output.session(cap);
                        for bar in bars {
                            let id = table.intern(bar.symbol) as usize;
                            if id == states.len() {
                                states.push((set.new_state(), i64::MIN));
                            }
                            let (state, last_ts) = &mut states[id];
                            if bar.ts <= *last_ts {
                                session.give(Err(*bar));
                                continue;
                            }
                            *last_ts = bar.ts;
                            let decision = set.update(state, bar, &mut row);
                            let changed_from = state.change.observe(decision.action);
                            session.give(Ok(BarOut { bar: *bar, values: row, decision, changed_from }));
                        }
                    }
                }
                reorder.finish(frontier, false);
            }
        })
    }
}
