//! `PublishBars` and `PublishCandles`: sink operators that copy each batch of the dataflow's
//! per-symbol results into the process's [`LiveStore`] (one lock per batch).

use std::sync::Arc;

use tickflow_operators::Bar;
use tickflow_operators::dataflow::{CandleOut, Time};
use tickflow_operators::rows::BarOut;
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::operator::Operator;

use super::store::LiveStore;

/// Publishes the `Enrich` output (enriched bars; late bars are ignored) to `store`.
pub fn publish_bars(stream: StreamVec<'_, Time, Result<BarOut, Bar>>, store: Arc<LiveStore>) {
    stream.sink(Pipeline, "PublishBars", move |(input, _frontier)| {
        input.for_each(|_, data| store.publish_bars(data));
    });
}

/// Publishes the `Candles` output (closed windows and corrections) to `store`.
pub fn publish_candles(stream: StreamVec<'_, Time, CandleOut>, store: Arc<LiveStore>) {
    stream.sink(Pipeline, "PublishCandles", move |(input, _frontier)| {
        input.for_each(|_, data| store.publish_candles(data));
    });
}
