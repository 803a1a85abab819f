//! Oracle test of the `Alerts` operator: random rule sets (changed at run time, `*` rules,
//! every condition kind, cooldowns) over random value sequences of several symbols and
//! timeframes, on one and on two workers, against a from-scratch reference model written
//! from the module docs: a rule fires for a symbol when it starts to hold, and again only
//! after it stopped holding *and* its cooldown (in event time) passed since the last alert;
//! one that starts to hold again within the cooldown fires at the first tick after it, if it
//! still holds then.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use tickflow_operators::Symbol;
use tickflow_operators::dataflow::alerts::{
    Alert, AlertRule, Alerts, COLUMN_SLOT, Condition, MISSING, SCALE, SIGNAL_BUY, SIGNAL_HOLD, SIGNAL_SELL,
    SIGNAL_SLOT, Tick, alert_id, rules_source,
};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::{Input, Inspect, Probe};
use timely::dataflow::{InputHandle, ProbeHandle};

/// Values per tick: price, signal, two indicator columns.
const SLOTS: usize = COLUMN_SLOT + 2;
const SYMBOLS: [&str; 3] = ["A", "B", "C"];
const TIMEFRAMES: [i64; 2] = [0, 60_000];

/// One round `k` of the script: ticks at event time `1000 k`, then (at `1000 k + 500`)
/// optionally a new rule set.
#[derive(Clone, Debug)]
struct Round {
    ticks: Vec<Tick>,
    rules: Option<Vec<AlertRule>>,
}

/// The reference condition, written again from the `Condition` docs (not calling `holds`).
fn reference_holds(c: &Condition, cur: &[i64], prev: &[i64]) -> Option<i64> {
    let at = |v: &[i64], slot: u16| match v.get(slot as usize) {
        Some(&x) if x != MISSING => Some(x),
        _ => None,
    };
    match *c {
        Condition::Above { slot, value } => at(cur, slot).filter(|x| *x > value),
        Condition::Below { slot, value } => at(cur, slot).filter(|x| *x < value),
        Condition::Outside { slot, low, high } => at(cur, slot).filter(|x| !(low..=high).contains(x)),
        Condition::CrossesAbove { slot, value } => match (at(prev, slot), at(cur, slot)) {
            (Some(p), Some(x)) if p <= value && x > value => Some(x),
            _ => None,
        },
        Condition::CrossesBelow { slot, value } => match (at(prev, slot), at(cur, slot)) {
            (Some(p), Some(x)) if p >= value && x < value => Some(x),
            _ => None,
        },
        Condition::SignalTo { to } => {
            if at(cur, SIGNAL_SLOT as u16) == Some(to) {
                at(cur, 0)
            } else {
                None
            }
        }
    }
}

/// What an alert is compared on.
type Fired = (String, String, i64, i64, i64, String);

fn fired(a: &Alert) -> Fired {
    (a.rule.clone(), a.symbol.as_str().to_string(), a.timeframe, a.ts, a.value, a.meta.clone())
}

/// A snapshot of the reference: (ts, values, previous values).
type Snap = (i64, Vec<i64>, Vec<i64>);

/// `rule` (if any) with its key's latest snapshot, when it applies to `symbol` and the key
/// has been seen.
fn verdict<'a>(
    rule: Option<&'a AlertRule>,
    symbol: &str,
    latest: &'a BTreeMap<(String, i64), Snap>,
) -> Option<(&'a AlertRule, &'a Snap)> {
    let rule = rule.filter(|r| r.symbol.as_ref().is_none_or(|s| s.as_str() == symbol))?;
    latest.get(&(symbol.to_string(), rule.timeframe)).map(|snap| (rule, snap))
}

/// The reference: replays the script in event-time order, keeping per (rule, symbol) only
/// "holds now", "may fire again" and "last fired at".
fn reference(script: &[Round]) -> Vec<Fired> {
    // Latest (ts, values, previous values) per (symbol, timeframe).
    let mut latest: BTreeMap<(String, i64), Snap> = BTreeMap::new();
    let mut rules: BTreeMap<String, AlertRule> = BTreeMap::new();
    struct St {
        armed: bool,
        last: Option<i64>,
    }
    let mut state: HashMap<(String, String), St> = HashMap::new();
    let mut out = Vec::new();
    // One (rule, symbol) was touched (its key got a tick, or its rule changed): `now` is the
    // hit that holds afterwards, if any.
    let mut touch = |rule: &AlertRule, symbol: &str, now: Option<(i64, i64)>, out: &mut Vec<Fired>| {
        let st = state.entry((rule.id.clone(), symbol.to_string())).or_insert(St { armed: true, last: None });
        match now {
            None => st.armed = true,
            Some((ts, value)) => {
                let cooled = st.last.is_none_or(|l| ts >= l.saturating_add(rule.cooldown_ms));
                if st.armed && cooled {
                    st.armed = false;
                    st.last = Some(ts);
                    out.push((rule.id.clone(), symbol.to_string(), rule.timeframe, ts, value, rule.meta.clone()));
                }
            }
        }
    };
    let applies = |r: &AlertRule, symbol: &str, tf: i64| {
        r.timeframe == tf && r.symbol.as_ref().is_none_or(|s| s.as_str() == symbol)
    };
    let eval = |r: &AlertRule, snap: Option<&Snap>| {
        snap.and_then(|(ts, cur, prev)| reference_holds(&r.condition, cur, prev).map(|v| (*ts, v)))
    };
    for round in script {
        for t in &round.ticks {
            let key = (t.symbol.as_str().to_string(), t.timeframe);
            let prev = latest.get(&key).map_or_else(|| vec![MISSING; t.values.len()], |(_, cur, _)| cur.clone());
            latest.insert(key.clone(), (t.ts, t.values.clone(), prev));
            for r in rules.values().filter(|r| applies(r, &key.0, key.1)) {
                touch(r, &key.0, eval(r, latest.get(&key)), &mut out);
            }
        }
        if let Some(next) = &round.rules {
            let next: BTreeMap<String, AlertRule> = next.iter().map(|r| (r.id.clone(), r.clone())).collect();
            for id in rules.keys().chain(next.keys()).collect::<std::collections::BTreeSet<_>>() {
                let (old, new) = (rules.get(id), next.get(id));
                if old == new {
                    continue;
                }
                // Firing state is per (rule, symbol), whatever the timeframe: for every
                // symbol, the old rule's verdict on its key against the new rule's on its key
                // (none where a rule is gone or does not apply).
                let symbols: std::collections::BTreeSet<&String> = latest.keys().map(|(s, _)| s).collect();
                for symbol in symbols {
                    let (old_key, new_key) = (verdict(old, symbol, &latest), verdict(new, symbol, &latest));
                    let was = old_key.and_then(|(r, snap)| eval(r, Some(snap)));
                    let now = new_key.and_then(|(r, snap)| eval(r, Some(snap)));
                    // A symbol without a hit either side is not touched.
                    if now.is_none() && was.is_none() {
                        continue;
                    }
                    let rule = new_key.or(old_key).map(|(r, _)| r).expect("a hit has a rule");
                    touch(rule, symbol, now, &mut out);
                }
            }
            rules = next;
        }
    }
    out.sort();
    out
}

/// Runs the operator on `workers` workers (worker 0 sends every tick).
fn run(script: Vec<Round>, workers: usize) -> Vec<Fired> {
    let alerts: Arc<Mutex<Vec<Alert>>> = Arc::default();
    let (sink, script) = (Arc::clone(&alerts), Arc::new(script));
    timely::execute(timely::Config::process(workers), move |worker| {
        let index = worker.index();
        let mut input = InputHandle::<u64, CapacityContainerBuilder<Vec<Tick>>>::new();
        let probe = ProbeHandle::new();
        let (script, sink) = (Arc::clone(&script), Arc::clone(&sink));
        let changes: Vec<(u64, Vec<AlertRule>)> = script
            .iter()
            .enumerate()
            .filter_map(|(k, r)| r.rules.clone().map(|rules| (k as u64 * 1000 + 500, rules)))
            .collect();
        worker.dataflow::<u64, _, _>(|scope| {
            let ticks_probe = ProbeHandle::new();
            let ticks = scope.input_from(&mut input).probe_with(&ticks_probe);
            let watch = ticks_probe.clone();
            let mut next = 0;
            let poll = move || {
                let frontier = watch.with_frontier(|f| f.first().copied())?;
                let mut change = None;
                while next < changes.len() && changes[next].0 <= frontier {
                    change = Some(changes[next].1.clone());
                    next += 1;
                }
                change
            };
            let rules = rules_source(scope, "Rules", ticks_probe, Duration::from_millis(1), poll);
            ticks.alerts(rules).inspect(move |a: &Alert| sink.lock().unwrap().push(a.clone())).probe_with(&probe);
        });
        for (k, round) in script.iter().enumerate() {
            if index == 0 {
                for t in &round.ticks {
                    input.send(t.clone());
                }
            }
            for t in [k as u64 * 1000 + 500, k as u64 * 1000 + 1000] {
                input.advance_to(t);
                // A stuck dataflow is a failure, not a hang (no timing is asserted).
                let deadline = Instant::now() + Duration::from_secs(120);
                while probe.less_than(&t) {
                    assert!(Instant::now() < deadline, "worker {index} stuck before {t}");
                    worker.step();
                }
            }
        }
    })
    .expect("timely runs");
    let alerts = alerts.lock().unwrap();
    for a in alerts.iter() {
        assert_eq!(a.id, alert_id(&a.rule, &a.symbol, a.ts), "alert id of {a:?}");
    }
    let mut out: Vec<Fired> = alerts.iter().map(fired).collect();
    out.sort();
    out
}

fn level() -> impl Strategy<Value = i64> {
    prop_oneof![1 => Just(MISSING), 6 => (-3i64..=3).prop_map(|x| x * SCALE)]
}

fn condition() -> impl Strategy<Value = Condition> {
    // Slot 5 does not exist: such a rule never holds.
    let slot = prop_oneof![Just(0u16), Just(COLUMN_SLOT as u16), Just(COLUMN_SLOT as u16 + 1), Just(5u16)];
    let value = (-3i64..=3).prop_map(|x| x * SCALE);
    prop_oneof![
        (slot.clone(), value.clone()).prop_map(|(slot, value)| Condition::Above { slot, value }),
        (slot.clone(), value.clone()).prop_map(|(slot, value)| Condition::Below { slot, value }),
        (slot.clone(), value.clone(), 0i64..=3).prop_map(|(slot, low, w)| Condition::Outside {
            slot,
            low,
            high: low + w * SCALE
        }),
        (slot.clone(), value.clone()).prop_map(|(slot, value)| Condition::CrossesAbove { slot, value }),
        (slot, value).prop_map(|(slot, value)| Condition::CrossesBelow { slot, value }),
        prop_oneof![Just(SIGNAL_BUY), Just(SIGNAL_SELL)].prop_map(|to| Condition::SignalTo { to }),
    ]
}

fn rule_set() -> impl Strategy<Value = Vec<AlertRule>> {
    let rule = (
        0usize..4,
        prop_oneof![1 => Just(None), 3 => (0usize..SYMBOLS.len()).prop_map(Some)],
        0usize..TIMEFRAMES.len(),
        condition(),
        prop_oneof![Just(0i64), Just(1000), Just(2500), Just(5000)],
        0u8..2,
    )
        .prop_map(|(id, sym, tf, condition, cooldown_ms, meta)| AlertRule {
            id: format!("r{id}"),
            symbol: sym.map(|i| Symbol::new(SYMBOLS[i]).unwrap()),
            timeframe: TIMEFRAMES[tf],
            condition,
            cooldown_ms,
            meta: format!("m{meta}"),
        });
    // Ids collide on purpose (the set keeps one rule per id: the last).
    prop::collection::vec(rule, 0..5).prop_map(|rules| {
        let by_id: BTreeMap<String, AlertRule> = rules.into_iter().map(|r| (r.id.clone(), r)).collect();
        by_id.into_values().collect()
    })
}

fn script() -> impl Strategy<Value = Vec<Round>> {
    let tick = (
        0usize..SYMBOLS.len(),
        0usize..TIMEFRAMES.len(),
        prop_oneof![Just(MISSING), Just(SIGNAL_BUY), Just(SIGNAL_SELL), Just(SIGNAL_HOLD)],
        prop::collection::vec(level(), SLOTS - 1),
    );
    let round = (prop::collection::vec(tick, 0..4), prop_oneof![3 => Just(None), 1 => rule_set().prop_map(Some)]);
    (rule_set(), prop::collection::vec(round, 1..25)).prop_map(|(first, rounds)| {
        let mut script: Vec<Round> = Vec::with_capacity(rounds.len() + 1);
        // Round 0 has no ticks: the first rule set enters at 500, before any value.
        script.push(Round { ticks: Vec::new(), rules: Some(first) });
        for (k, (ticks, rules)) in rounds.into_iter().enumerate() {
            let ts = (k as i64 + 1) * 1000;
            // One tick per (symbol, timeframe) and round: a key's ticks have distinct times.
            let mut seen = std::collections::BTreeSet::new();
            let ticks = ticks
                .into_iter()
                .filter(|(s, tf, _, _)| seen.insert((*s, *tf)))
                .map(|(s, tf, signal, rest)| {
                    let mut values = vec![rest[0], signal];
                    values.extend_from_slice(&rest[1..]);
                    Tick { symbol: Symbol::new(SYMBOLS[s]).unwrap(), timeframe: TIMEFRAMES[tf], ts, values }
                })
                .collect();
            script.push(Round { ticks, rules });
        }
        script
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn alerts_match_the_reference_on_one_worker(script in script()) {
        let want = reference(&script);
        let got = run(script, 1);
        prop_assert_eq!(got, want);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn alerts_match_the_reference_on_two_workers(script in script()) {
        let want = reference(&script);
        let got = run(script, 2);
        prop_assert_eq!(got, want);
    }
}

/// The model itself, on the module's documented cases, so a wrong model cannot agree with a
/// wrong operator silently.
#[test]
fn the_reference_fires_once_per_episode_and_after_the_cooldown() {
    let s = Symbol::new("A").unwrap();
    let rule = AlertRule {
        id: "r".into(),
        symbol: Some(s),
        timeframe: 0,
        condition: Condition::Above { slot: 0, value: 0 },
        cooldown_ms: 2500,
        meta: String::new(),
    };
    // Holds at 1, 2 (same episode), stops at 3, holds at 4 (within 2500 of 1000... no: 4000
    // >= 3500, fires), stops at 5, holds at 6 (6000 < 4000 + 2500: not yet), 7 (fires).
    let prices = [1, 1, -1, 1, -1, 1, 1];
    let mut script = vec![Round { ticks: Vec::new(), rules: Some(vec![rule]) }];
    for (k, p) in prices.iter().enumerate() {
        let tick = Tick { symbol: s, timeframe: 0, ts: (k as i64 + 1) * 1000, values: vec![p * SCALE, MISSING] };
        script.push(Round { ticks: vec![tick], rules: None });
    }
    let ts: Vec<i64> = reference(&script).into_iter().map(|f| f.3).collect();
    assert_eq!(ts, [1000, 4000, 7000]);
    assert_eq!(run(script, 1).into_iter().map(|f| f.3).collect::<Vec<_>>(), [1000, 4000, 7000]);
}
