//! The alert part of the dataflow: enriched bars (and candles) to [`Tick`]s, the run-time
//! rules from the [`RuleMirror`], the [`Alerts`] operator, and a sink into the notifier.

use std::sync::Arc;
use std::time::Duration;

use tickflow_operators::Bar;
use tickflow_operators::dataflow::alerts::{Alert, Alerts, Tick, rules_source};
use tickflow_operators::dataflow::{CandleOut, Time};
use tickflow_operators::rows::BarOut;
use timely::dataflow::operators::Probe;
use timely::dataflow::operators::vec::Map;
use timely::dataflow::{ProbeHandle, Scope, StreamVec};

use super::notify::NotifierHandle;
use super::rule::RuleContext;
use super::store::RuleMirror;
use crate::recovery::RunControl;

/// What every worker's alert dataflow needs; clone one per worker.
#[derive(Clone, Debug)]
pub struct AlertsRuntime {
    /// The rules (worker 0 polls it).
    pub mirror: Arc<RuleMirror>,
    /// Columns and timeframes rules are lowered against.
    pub ctx: RuleContext,
    /// Where fired alerts go; `None` only returns the stream (tests).
    pub notifier: Option<NotifierHandle>,
    /// How often worker 0 checks the mirror.
    pub poll_interval: Duration,
}

/// Per-bar ticks (timeframe `bar`) of the enriched bars; late bars carry no new values.
pub fn ticks_from_bars<'s>(bars: StreamVec<'s, Time, Result<BarOut, Bar>>) -> StreamVec<'s, Time, Tick> {
    bars.flat_map(|r| r.ok().map(|row| Tick::from_bar(&row)))
}

/// Candle ticks (each candle's timeframe) of closed candles; only first emissions, so a
/// late correction does not move "latest" back in time.
pub fn ticks_from_candles<'s>(candles: StreamVec<'s, Time, CandleOut>) -> StreamVec<'s, Time, Tick> {
    candles.flat_map(|r| r.ok().filter(|c| c.revision == 0).map(|c| Tick::from_candle(&c)))
}

/// Builds the alerts of `ticks` under the mirror's rules and hands them to the notifier.
/// Returns the fired alerts (each on the worker of hash(rule, symbol)).
pub fn build_alerts<'s>(
    scope: Scope<'s, Time>,
    ticks: StreamVec<'s, Time, Tick>,
    rt: &AlertsRuntime,
    core: std::rc::Rc<std::cell::RefCell<tickflow_operators::dataflow::alerts::AlertsCore>>,
    control: Arc<RunControl>,
) -> StreamVec<'s, Time, Alert> {
    let probe = ProbeHandle::new();
    let ticks = ticks.probe_with(&probe);
    let mirror = rt.mirror.clone();
    let ctx = rt.ctx.clone();
    let mut seen = None;
    let poll = move || {
        let v = mirror.version();
        if seen == Some(v) {
            return None;
        }
        seen = Some(v);
        let rules = mirror
            .list()
            .into_iter()
            .filter_map(|r| match r.lower(&ctx) {
                Ok(a) => Some(a),
                Err(errors) => {
                    tracing::warn!(rule = %r.id, ?errors, "rule does not fit this cluster's indicators; ignored");
                    None
                }
            })
            .collect::<Vec<_>>();
        tracing::info!(rules = rules.len(), version = v, "alert rules changed");
        Some(rules)
    };
    let rules = rules_source(scope, "AlertRules", probe, rt.poll_interval, poll);
    let alerts = ticks.alerts_with("Alerts", rules, core);
    match rt.notifier.clone() {
        Some(n) => alert_sink(alerts, n, control),
        None => alerts,
    }
}

/// Hands fired alerts to the notifier and passes them on, holding each batch's capability
/// until the notifier has kept it (in its fsynced outbox): the durable frontier, and so every
/// checkpoint, only passes alerts that a crash cannot lose.
fn alert_sink<'s>(
    alerts: StreamVec<'s, Time, Alert>,
    notifier: NotifierHandle,
    control: Arc<RunControl>,
) -> StreamVec<'s, Time, Alert> {
    use timely::container::CapacityContainerBuilder;
    use timely::dataflow::channels::pact::Pipeline;
    use timely::dataflow::operators::{Capability, Operator};
    let scope = alerts.scope();
    alerts.unary_frontier::<CapacityContainerBuilder<Vec<Alert>>, _, _, _>(Pipeline, "AlertSink", move |_cap, info| {
        let activator = scope.activator_for(info.address);
        let mut held: Vec<(Capability<Time>, u64)> = Vec::new();
        move |(input, _frontier), output| {
            input.for_each(|cap, data| {
                let seq = notifier.offer(data.iter().cloned());
                if seq > 0 {
                    if let Some(c) = cap.retain_least(output.output_index()) {
                        held.push((c, seq));
                    }
                }
                output.session(&cap).give_container(data);
            });
            if let Some(why) = notifier.failure() {
                control.fail(why);
                return; // keep every capability: nothing more becomes durable
            }
            held.retain(|(_, seq)| !notifier.kept(*seq));
            if !held.is_empty() {
                activator.activate_after(std::time::Duration::from_millis(1));
            }
        }
    })
}
