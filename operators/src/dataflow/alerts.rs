//! `Alerts`: alert rules that change at run time, evaluated against the latest values of each
//! symbol, firing once per episode with a per-rule cooldown.
//!
//! ```text
//! ticks ──Latest (upsert by (symbol, timeframe))──────────────────────────┐
//!   └──Symbols (first sighting)──┐                                        │
//! rules ─┬─ symbol rules ────────┼───────────────────────────► join ─► holds? ─► Fire ─► alerts
//!        └─ `*` rules ─ join ────┘ (one rule per seen symbol)
//! ```
//! - The latest values are an arrangement built with [`arrange_from_upsert`]: each tick
//!   replaces its key's snapshot. Joined with the rules collection and filtered by the rule's
//!   condition, the result is `+1` when a rule starts to hold for a symbol and `−1` when it
//!   stops (a changed value that still holds is a `−1`/`+1` pair at the same time).
//! - Rules are a differential collection ([`rules_source`]): adding one joins it with the
//!   current snapshots at once; removing one retracts its matches at once.
//! - Whether to *fire* is stateful per (rule, symbol), so it is a plain timely operator after
//!   the join ([`Alerts`]): a rule fires when it starts to hold, and again only after it
//!   stopped holding *and* its cooldown (in event time) passed since the last alert. A rule
//!   that starts to hold again within its cooldown fires at the first tick after the cooldown
//!   if it still holds then.
//!
//! Values are fixed-point `i64` scaled by [`SCALE`] (1e8), because differential data must be
//! `Ord` (`f64` is not): a value of 101.25 is `10_125_000_000`. Values beyond ±9.2e10
//! saturate (they compare as the extreme, which is right for every threshold inside that
//! range).
//!
//! Time: a tick enters the collections at its own event time (`ts`, or the message's timely
//! time when that is later), so two bars of one symbol never share a time and "latest" is
//! exact. A rule change enters at the ticks' frontier when it is read: it is evaluated against
//! every snapshot before that time, and its output is complete once the watermark passes it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use differential_dataflow::operators::arrange::upsert::arrange_from_upsert;
use differential_dataflow::trace::implementations::{ValBuilder, ValSpine};
use differential_dataflow::{AsCollection, VecCollection};
use serde::{Deserialize, Serialize};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::operator::source;
use timely::dataflow::operators::{Capability, Operator};
use timely::dataflow::{ProbeHandle, Scope, StreamVec};

use super::EventTime;
use crate::rows::{BarOut, Candle};
use crate::signal::Action;
use crate::symbol::{StableHasher, Symbol};
use crate::time::Millis;

/// Fixed-point scale of every value in this module: `value = round(x * SCALE)`.
pub const SCALE: i64 = 100_000_000;

/// A missing value (an indicator still warming up, or no signal change on this tick).
pub const MISSING: i64 = i64::MIN;

/// `x` in fixed point; [`MISSING`] when `x` is not finite; saturating beyond ±9.2e10.
///
/// ```
/// use tickflow_operators::dataflow::alerts::{from_fixed, to_fixed, MISSING};
/// assert_eq!(to_fixed(101.25), 10_125_000_000);
/// assert_eq!(to_fixed(f64::NAN), MISSING);
/// assert_eq!(from_fixed(to_fixed(-0.5)), -0.5);
/// ```
pub fn to_fixed(x: f64) -> i64 {
    if !x.is_finite() {
        return MISSING;
    }
    // `as` saturates; keep MISSING (i64::MIN) for "no value".
    ((x * SCALE as f64).round() as i64).max(MISSING + 1)
}

/// The `f64` of a fixed-point value (`NaN` for [`MISSING`]).
pub fn from_fixed(v: i64) -> f64 {
    if v == MISSING { f64::NAN } else { v as f64 / SCALE as f64 }
}

/// Slot of the close price in a [`Snapshot`].
pub const PRICE_SLOT: usize = 0;
/// Slot of the signal change in a [`Snapshot`]: [`SIGNAL_BUY`], [`SIGNAL_SELL`], or
/// [`MISSING`] when the tick did not change the signal.
pub const SIGNAL_SLOT: usize = 1;
/// First slot of the indicator columns: column `i` of the set is slot `COLUMN_SLOT + i`.
pub const COLUMN_SLOT: usize = 2;
/// The signal changed to BUY.
pub const SIGNAL_BUY: i64 = 1;
/// The signal changed to SELL.
pub const SIGNAL_SELL: i64 = -1;
/// The signal changed to HOLD.
pub const SIGNAL_HOLD: i64 = 0;

/// The latest values of one (symbol, timeframe): price, signal change and every indicator
/// column, now and on the previous tick (for crossings), in fixed point.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Snapshot {
    /// Event time of the bar (or candle start) these values are for.
    pub ts: Millis,
    /// Values now, by slot ([`PRICE_SLOT`], [`SIGNAL_SLOT`], [`COLUMN_SLOT`]..).
    pub cur: Vec<i64>,
    /// Values on the previous tick of this key ([`MISSING`] for the first).
    pub prev: Vec<i64>,
}

/// One update of the latest values: what [`Alerts`] consumes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tick {
    /// The instrument.
    pub symbol: Symbol,
    /// 0 for per-bar values, else the candle timeframe in ms.
    pub timeframe: Millis,
    /// Event time of the bar (or candle start).
    pub ts: Millis,
    /// Values by slot (see [`Snapshot::cur`]).
    pub values: Vec<i64>,
}

fn signal_code(a: Action) -> i64 {
    match a {
        Action::Buy => SIGNAL_BUY,
        Action::Sell => SIGNAL_SELL,
        Action::Hold => SIGNAL_HOLD,
    }
}

impl Tick {
    /// The tick of an enriched bar (timeframe 0).
    pub fn from_bar(row: &BarOut) -> Tick {
        let mut values = Vec::with_capacity(COLUMN_SLOT + row.values.len());
        values.push(to_fixed(row.bar.close));
        values.push(row.changed_from.map_or(MISSING, |_| signal_code(row.decision.action)));
        values.extend(row.values.iter().map(|v| v.map_or(MISSING, to_fixed)));
        Tick { symbol: row.bar.symbol, timeframe: 0, ts: row.bar.ts, values }
    }

    /// The tick of a closed candle (its timeframe; event time = the candle's start).
    pub fn from_candle(c: &Candle) -> Tick {
        let mut values = Vec::with_capacity(COLUMN_SLOT + c.values.len());
        values.push(to_fixed(c.close));
        values.push(c.changed_from.map_or(MISSING, |_| signal_code(c.decision.action)));
        values.extend(c.values.iter().map(|v| v.map_or(MISSING, to_fixed)));
        Tick { symbol: c.symbol, timeframe: c.timeframe, ts: c.start, values }
    }
}

/// A rule's condition on the latest values of a symbol. Thresholds are fixed point.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Condition {
    /// `slot > value`.
    Above {
        /// The slot read.
        slot: u16,
        /// The threshold.
        value: i64,
    },
    /// `slot < value`.
    Below {
        /// The slot read.
        slot: u16,
        /// The threshold.
        value: i64,
    },
    /// `slot < low || slot > high`: the value left the range `[low, high]`.
    Outside {
        /// The slot read.
        slot: u16,
        /// Lower bound (inclusive in range).
        low: i64,
        /// Upper bound (inclusive in range).
        high: i64,
    },
    /// The previous value was `<= value` and this one is `> value`.
    CrossesAbove {
        /// The slot read.
        slot: u16,
        /// The level.
        value: i64,
    },
    /// The previous value was `>= value` and this one is `< value`.
    CrossesBelow {
        /// The slot read.
        slot: u16,
        /// The level.
        value: i64,
    },
    /// The signal changed to `to` ([`SIGNAL_BUY`] or [`SIGNAL_SELL`]) on this tick (the
    /// alert's value is then the price).
    SignalTo {
        /// The new signal's code.
        to: i64,
    },
}

impl Condition {
    /// The value that makes the condition hold on `s`, or `None` when it does not hold (or a
    /// value it needs is missing).
    ///
    /// ```
    /// use tickflow_operators::dataflow::alerts::{Condition, Snapshot, to_fixed, MISSING};
    /// let s = Snapshot { ts: 0, cur: vec![to_fixed(101.0), MISSING], prev: vec![to_fixed(99.0), MISSING] };
    /// let above = Condition::Above { slot: 0, value: to_fixed(100.0) };
    /// assert_eq!(above.holds(&s), Some(to_fixed(101.0)));
    /// assert_eq!(Condition::CrossesAbove { slot: 0, value: to_fixed(100.0) }.holds(&s), Some(to_fixed(101.0)));
    /// assert_eq!(Condition::Below { slot: 0, value: to_fixed(100.0) }.holds(&s), None);
    /// ```
    pub fn holds(&self, s: &Snapshot) -> Option<i64> {
        let get = |v: &[i64], slot: u16| v.get(slot as usize).copied().filter(|&x| x != MISSING);
        match *self {
            Condition::Above { slot, value } => get(&s.cur, slot).filter(|&x| x > value),
            Condition::Below { slot, value } => get(&s.cur, slot).filter(|&x| x < value),
            Condition::Outside { slot, low, high } => get(&s.cur, slot).filter(|&x| x < low || x > high),
            Condition::CrossesAbove { slot, value } => {
                let p = get(&s.prev, slot)?;
                get(&s.cur, slot).filter(|&x| p <= value && x > value)
            }
            Condition::CrossesBelow { slot, value } => {
                let p = get(&s.prev, slot)?;
                get(&s.cur, slot).filter(|&x| p >= value && x < value)
            }
            // The value of a signal alert is the price it changed at.
            Condition::SignalTo { to } => {
                get(&s.cur, SIGNAL_SLOT as u16).filter(|&x| x == to).and_then(|_| get(&s.cur, PRICE_SLOT as u16))
            }
        }
    }
}

/// A rule as the dataflow sees it. The application keeps richer rules (owner, channel) and
/// passes what a notification needs through [`AlertRule::meta`].
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AlertRule {
    /// Unique id (the rule's key).
    pub id: String,
    /// The symbol, or `None` for every symbol (`*`).
    pub symbol: Option<Symbol>,
    /// 0 for per-bar values, else a candle timeframe in ms.
    pub timeframe: Millis,
    /// When the rule holds.
    pub condition: Condition,
    /// Least event time between two alerts of this rule for one symbol, ms.
    pub cooldown_ms: Millis,
    /// Opaque to the dataflow; copied into every [`Alert`] of this rule.
    pub meta: String,
}

/// A fired alert.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Alert {
    /// Stable id: [`alert_id`] of (rule, symbol, ts). Receivers de-duplicate on it.
    pub id: u64,
    /// The rule's id.
    pub rule: String,
    /// The symbol it fired for.
    pub symbol: Symbol,
    /// The rule's timeframe (0 = per bar).
    pub timeframe: Millis,
    /// Event time of the tick that made it fire.
    pub ts: Millis,
    /// The value that made the condition hold, fixed point.
    pub value: i64,
    /// The rule's condition.
    pub condition: Condition,
    /// The rule's [`AlertRule::meta`].
    pub meta: String,
}

/// The stable id of an alert: FNV-1a over the rule id, the symbol and the event time,
/// finished with splitmix64. Identical in every process, on every run and every replay.
///
/// ```
/// use tickflow_operators::Symbol;
/// use tickflow_operators::dataflow::alerts::alert_id;
/// let s = Symbol::new("AAPL").unwrap();
/// assert_eq!(alert_id("r1", &s, 1000), alert_id("r1", &s, 1000));
/// assert_ne!(alert_id("r1", &s, 1000), alert_id("r1", &s, 2000));
/// assert_ne!(alert_id("r1", &s, 1000), alert_id("r2", &s, 1000));
/// // Ids are stored in outboxes and sent to receivers: the value never changes.
/// assert_eq!(alert_id("r1", &s, 1000), 0x047d_8034_bb1e_17b6);
/// ```
pub fn alert_id(rule: &str, symbol: &Symbol, ts: Millis) -> u64 {
    let mut h = StableHasher::new();
    h.write(rule.as_bytes());
    h.write(&[0xff]); // separator: ("ab","c") and ("a","bc") differ
    h.write(symbol.as_str().as_bytes());
    h.write(&[0xff]);
    h.write(&ts.to_le_bytes());
    h.finish()
}

/// The rules collection, fed on worker 0 from `poll` (the other workers contribute nothing
/// and release their capability at once).
///
/// `poll` returns the whole current rule set when it changed since the last call (`None`
/// otherwise); the source emits the difference. Each rule change enters at the frontier of
/// `ticks` (the probe of the values stream) so it is evaluated against the latest values;
/// the source follows that frontier and closes when it is empty (the input ended). It polls
/// every `every`.
pub fn rules_source<'s, T: AlertTime>(
    scope: Scope<'s, T>,
    name: &str,
    ticks: ProbeHandle<T>,
    every: Duration,
    mut poll: impl FnMut() -> Option<Vec<AlertRule>> + 'static,
) -> VecCollection<'s, T, AlertRule> {
    let index = scope.index();
    source::<_, CapacityContainerBuilder<Vec<(AlertRule, T, isize)>>, _, _>(scope, name, move |cap, info| {
        let activator = scope.activator_for(info.address);
        let mut cap = (index == 0).then_some(cap);
        let mut current: BTreeMap<String, AlertRule> = BTreeMap::new();
        move |output| {
            let Some(c) = cap.as_mut() else { return };
            let frontier = ticks.with_frontier(|f| f.first().copied());
            let Some(f) = frontier else {
                cap = None; // the values are complete: no rule can match anything new
                return;
            };
            if f > *c.time() {
                c.downgrade(&f);
            }
            if let Some(rules) = poll() {
                let next: BTreeMap<String, AlertRule> = rules.into_iter().map(|r| (r.id.clone(), r)).collect();
                let t = *c.time();
                let mut session = output.session(&*c);
                for (id, old) in &current {
                    if next.get(id) != Some(old) {
                        session.give((old.clone(), t, -1));
                    }
                }
                for (id, new) in &next {
                    if current.get(id) != Some(new) {
                        session.give((new.clone(), t, 1));
                    }
                }
                current = next;
            }
            activator.activate_after(every);
        }
    })
    .as_collection()
}

/// One match of a rule on a symbol's snapshot, as the join produces it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
struct Hit {
    rule: String,
    symbol: Symbol,
    ts: Millis,
    value: i64,
    timeframe: Millis,
    cooldown_ms: Millis,
    condition: Condition,
    meta: String,
}

/// Firing state of one (rule, symbol).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FireState {
    /// Matches currently holding (0 or 1; more only with duplicated inputs).
    holding: isize,
    /// Stopped holding since the last alert (or never fired).
    armed: bool,
    /// Event time of the last alert.
    last: Option<Millis>,
}

/// Fired alerts from run-time rules: see the [module docs](self).
///
/// The input is the stream of [`Tick`]s at bar/candle rate, in any partitioning. Alerts come
/// out at the event time of the tick that fired them, on the worker of hash(rule, symbol).
///
/// ```
/// use std::time::Duration;
/// use timely::dataflow::operators::{Capture, Probe, ToStream, capture::Extract};
/// use timely::dataflow::ProbeHandle;
/// use tickflow_operators::Symbol;
/// use tickflow_operators::dataflow::alerts::*;
///
/// let s = Symbol::new("X").unwrap();
/// // Closes 99, 101 (crosses 100: fires), 102 (still above), 98 (stops), 103 (fires again).
/// let ticks: Vec<Tick> = [99.0, 101.0, 102.0, 98.0, 103.0].iter().enumerate()
///     .map(|(i, &p)| Tick { symbol: s, timeframe: 0, ts: 1000 * i as i64, values: vec![to_fixed(p), MISSING] })
///     .collect();
/// let rule = AlertRule {
///     id: "x-above-100".into(), symbol: Some(s), timeframe: 0,
///     condition: Condition::Above { slot: PRICE_SLOT as u16, value: to_fixed(100.0) },
///     cooldown_ms: 0, meta: String::new(),
/// };
/// let out = timely::example(move |scope| {
///     let probe = ProbeHandle::new();
///     let mut once = Some(vec![rule]);
///     let rules = rules_source(scope, "Rules", probe.clone(), Duration::from_millis(1), move || once.take());
///     ticks.to_stream(scope).probe_with(&probe).alerts(rules).capture()
/// });
/// let fired: Vec<(i64, f64)> = out.extract().into_iter()
///     .flat_map(|(_, v)| v).map(|a| (a.ts, from_fixed(a.value))).collect();
/// assert_eq!(fired, vec![(1000, 101.0), (4000, 103.0)]);
/// ```
pub trait Alerts<'s, T: AlertTime> {
    /// [`Alerts::alerts_named`] with the name "Alerts".
    fn alerts(self, rules: VecCollection<'s, T, AlertRule>) -> StreamVec<'s, T, Alert>;
    /// Names the operators (`{name}Latest`, `{name}Symbols`, `{name}Fire`).
    fn alerts_named(self, name: &str, rules: VecCollection<'s, T, AlertRule>) -> StreamVec<'s, T, Alert>;
    /// Keeps the state in `core` (restored beforehand, checkpointed by the caller).
    fn alerts_with(
        self,
        name: &str,
        rules: VecCollection<'s, T, AlertRule>,
        core: std::rc::Rc<std::cell::RefCell<AlertsCore>>,
    ) -> StreamVec<'s, T, Alert>;
}

/// The timestamps alerts run on: event time that differential can arrange.
pub trait AlertTime: EventTime + differential_dataflow::lattice::Lattice + timely::ExchangeData {}
impl<T: EventTime + differential_dataflow::lattice::Lattice + timely::ExchangeData> AlertTime for T {}

/// `t`, or the same epoch at event time `ts` when that is later.
fn at_least<T: EventTime>(t: T, ts: Millis) -> T {
    t.with_watermark(t.watermark().max(ts))
}

type Key = (Symbol, Millis);

/// The state of one worker's alert operators, shareable (same thread) with whoever
/// checkpoints it: the latest values per (symbol, timeframe) and the symbols seen, on the
/// symbols' worker; the firing state per (rule, symbol), on its [`fire_owner`].
#[derive(Debug, Default)]
pub struct AlertsCore {
    latest: HashMap<Key, Snapshot>,
    seen: HashSet<(Millis, Symbol)>,
    fire: HashMap<(String, Symbol), FireState>,
}

/// The checkpointed form of an [`AlertsCore`] (sorted, so equal states encode equally).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertsSnapshot {
    /// Latest values per (symbol, timeframe).
    pub latest: Vec<(Key, Snapshot)>,
    /// (timeframe, symbol) seen (for `*` rules).
    pub seen: Vec<(Millis, Symbol)>,
    /// Firing state per (rule, symbol).
    pub fire: Vec<((String, Symbol), FireState)>,
}

impl AlertsCore {
    /// A copy of the state.
    pub fn snapshot(&self) -> AlertsSnapshot {
        let mut latest: Vec<_> = self.latest.iter().map(|(k, v)| (*k, v.clone())).collect();
        latest.sort();
        let mut seen: Vec<_> = self.seen.iter().copied().collect();
        seen.sort();
        let mut fire: Vec<_> = self.fire.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        fire.sort_by(|a, b| a.0.cmp(&b.0));
        AlertsSnapshot { latest, seen, fire }
    }

    /// Adds what this worker owns of `snap` (`index` of `peers`; `owns` says whether it owns a
    /// symbol). Call before the dataflow runs: the restored latest values are fed to the join
    /// again at start, and re-establish which rules hold; firing state keeps when each rule
    /// last fired and whether it may fire again.
    pub fn restore(&mut self, snap: AlertsSnapshot, index: usize, peers: usize, owns: impl Fn(&Symbol) -> bool) {
        self.latest.extend(snap.latest.into_iter().filter(|(k, _)| owns(&k.0)));
        self.seen.extend(snap.seen.into_iter().filter(|(_, s)| owns(s)));
        for ((rule, symbol), mut st) in snap.fire {
            if fire_owner(&rule, &symbol, peers) == index {
                st.holding = 0; // the re-fed values say again which rules hold
                self.fire.insert((rule, symbol), st);
            }
        }
    }
}

/// The worker that keeps the firing state of (`rule`, `symbol`).
pub fn fire_owner(rule: &str, symbol: &Symbol, peers: usize) -> usize {
    (alert_id(rule, symbol, 0) % peers.max(1) as u64) as usize
}

impl<'s, T: AlertTime> Alerts<'s, T> for StreamVec<'s, T, Tick> {
    fn alerts(self, rules: VecCollection<'s, T, AlertRule>) -> StreamVec<'s, T, Alert> {
        self.alerts_named("Alerts", rules)
    }

    fn alerts_named(self, name: &str, rules: VecCollection<'s, T, AlertRule>) -> StreamVec<'s, T, Alert> {
        self.alerts_with(name, rules, Default::default())
    }

    fn alerts_with(
        self,
        name: &str,
        rules: VecCollection<'s, T, AlertRule>,
        core: std::rc::Rc<std::cell::RefCell<AlertsCore>>,
    ) -> StreamVec<'s, T, Alert> {
        let scope = self.scope();
        // Upserts at each tick's event time, carrying the previous values of the key (for
        // crossings), and first sightings of each (timeframe, symbol) for `*` rules. Ticks
        // arrive partitioned by symbol (or not: duplicates only raise multiplicities, which
        // the firing state treats as "holds").
        let c1 = core.clone();
        let upserts = self.clone().unary(Pipeline, &format!("{name}Latest"), move |cap, info| {
            // Restored values enter again at the start (under the initial capability).
            let mut restore = (!c1.borrow().latest.is_empty()).then_some(cap);
            scope.activator_for(info.address).activate();
            move |input, output| {
                let mut core = c1.borrow_mut();
                if let Some(c) = restore.take() {
                    let t = *c.time();
                    let mut all: Vec<_> = core.latest.iter().map(|(k, v)| (*k, v.clone())).collect();
                    all.sort();
                    output.session(&c).give_iterator(all.into_iter().map(|(k, v)| (k, Some(v), t)));
                }
                input.for_each(|cap, data| {
                    let Some(c) = cap.retain_least(output.output_index()) else { return };
                    let t0 = *c.time();
                    let mut session = output.session(&c);
                    for tick in data.drain(..) {
                        let t = at_least(t0, tick.ts);
                        let key = (tick.symbol, tick.timeframe);
                        let prev_values = match core.latest.get(&key) {
                            Some(old) => old.cur.clone(),
                            None => vec![MISSING; tick.values.len()],
                        };
                        let snap = Snapshot { ts: tick.ts, cur: tick.values, prev: prev_values };
                        core.latest.insert(key, snap.clone());
                        session.give((key, Some(snap), t));
                    }
                });
            }
        });
        let c2 = core.clone();
        let symbols = self
            .unary(Pipeline, &format!("{name}Symbols"), move |cap, info| {
                let mut restore = (!c2.borrow().seen.is_empty()).then_some(cap);
                scope.activator_for(info.address).activate();
                move |input, output| {
                    let mut core = c2.borrow_mut();
                    if let Some(c) = restore.take() {
                        let t = *c.time();
                        let mut all: Vec<_> = core.seen.iter().copied().collect();
                        all.sort();
                        output.session(&c).give_iterator(all.into_iter().map(|k| (k, t, 1isize)));
                    }
                    input.for_each(|cap, data| {
                        let Some(c) = cap.retain_least(output.output_index()) else { return };
                        let t0 = *c.time();
                        let mut session = output.session(&c);
                        for tick in data.drain(..) {
                            if core.seen.insert((tick.timeframe, tick.symbol)) {
                                session.give(((tick.timeframe, tick.symbol), at_least(t0, tick.ts), 1isize));
                            }
                        }
                    });
                }
            })
            .as_collection();

        let latest = arrange_from_upsert::<ValBuilder<Key, Snapshot, T, isize>, ValSpine<Key, Snapshot, T, isize>, _, _>(
            upserts,
            &format!("{name}Latest"),
        );
        let wildcard = rules
            .clone()
            .filter(|r| r.symbol.is_none())
            .map(|r| (r.timeframe, r))
            .join_core(symbols.arrange_by_key_named(&format!("{name}Symbols")), |_tf, rule, sym| {
                Some(((*sym, rule.timeframe), rule.clone()))
            });
        let specific = rules.flat_map(|r| r.symbol.map(|s| ((s, r.timeframe), r)));
        let hits = specific.concat(wildcard).join_core(latest, |&(symbol, timeframe), rule, snap| {
            rule.condition.holds(snap).map(|value| Hit {
                rule: rule.id.clone(),
                symbol,
                ts: snap.ts,
                value,
                timeframe,
                cooldown_ms: rule.cooldown_ms,
                condition: rule.condition.clone(),
                meta: rule.meta.clone(),
            })
        });
        fire(hits.inner, &format!("{name}Fire"), core)
    }
}

fn hit_route<T>(h: &(Hit, T, isize)) -> u64 {
    alert_id(&h.0.rule, &h.0.symbol, 0)
}

/// Per (rule, symbol): turns the +1/−1 transitions of the join into alerts, in time order
/// once the frontier passed each time.
fn fire<'s, T: AlertTime>(
    hits: StreamVec<'s, T, (Hit, T, isize)>,
    name: &str,
    core: std::rc::Rc<std::cell::RefCell<AlertsCore>>,
) -> StreamVec<'s, T, Alert> {
    hits.unary_frontier(Exchange::new(hit_route), name, move |_cap, _info| {
        let mut held: Option<Capability<T>> = None;
        let mut pending: BTreeMap<T, Vec<(Hit, isize)>> = BTreeMap::new();
        move |(input, frontier), output| {
            let mut core = core.borrow_mut();
            let states = &mut core.fire;
            input.for_each(|cap, data| {
                if let Some(c) = cap.retain_least(output.output_index()) {
                    if held.as_ref().is_none_or(|h| c.time() < h.time()) {
                        held = Some(c);
                    }
                }
                for (hit, t, d) in data.drain(..) {
                    pending.entry(t).or_default().push((hit, d));
                }
            });
            while let Some((&t, _)) = pending.first_key_value() {
                if frontier.less_equal(&t) {
                    break;
                }
                // `t` was sent under a capability no later than `held`'s (which we keep at
                // the least pending time), so `held` exists while anything is pending.
                let cap = held.as_ref().expect("a capability is held while hits are pending").delayed(&t);
                let mut batch = pending.pop_first().map(|(_, v)| v).unwrap_or_default();
                // Group by key; within a key, the retractions and the newest match.
                batch.sort_by(|a, b| (&a.0.rule, a.0.symbol, a.0.ts).cmp(&(&b.0.rule, b.0.symbol, b.0.ts)));
                let mut session = output.session(&cap);
                let mut i = 0;
                while i < batch.len() {
                    let key = (batch[i].0.rule.clone(), batch[i].0.symbol);
                    let mut j = i;
                    let mut delta = 0;
                    let mut newest: Option<&Hit> = None;
                    while j < batch.len() && batch[j].0.rule == key.0 && batch[j].0.symbol == key.1 {
                        delta += batch[j].1;
                        if batch[j].1 > 0 {
                            newest = Some(&batch[j].0); // sorted by ts: the last is the newest
                        }
                        j += 1;
                    }
                    let st =
                        states.entry(key.clone()).or_insert_with(|| FireState { armed: true, ..FireState::default() });
                    st.holding += delta;
                    if st.holding <= 0 {
                        st.holding = 0;
                        st.armed = true;
                        if st.last.is_none() {
                            states.remove(&key);
                        }
                    } else if let Some(h) = newest {
                        let cooled = st.last.is_none_or(|l| h.ts >= l.saturating_add(h.cooldown_ms));
                        if st.armed && cooled {
                            st.armed = false;
                            st.last = Some(h.ts);
                            session.give(Alert {
                                id: alert_id(&h.rule, &h.symbol, h.ts),
                                rule: h.rule.clone(),
                                symbol: h.symbol,
                                timeframe: h.timeframe,
                                ts: h.ts,
                                value: h.value,
                                condition: h.condition.clone(),
                                meta: h.meta.clone(),
                            });
                        }
                    }
                    i = j;
                }
            }
            match (pending.first_key_value(), held.as_mut()) {
                (Some((&t, _)), Some(h)) => {
                    if *h.time() < t {
                        h.downgrade(&t);
                    }
                }
                _ => held = None,
            }
        }
    })
}
