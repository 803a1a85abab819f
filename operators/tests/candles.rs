//! Oracle test for `Candles`: bars arrive out of order with an advancing watermark; every bar
//! ends up either in a window or in the late output, the last revision of each window equals
//! a from-scratch aggregation of its bars, and the candle indicators of the last revisions
//! equal the indicator set run over the final candles in order.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use proptest::prelude::*;
use tickflow_operators::dataflow::{CandleOut, Candles, WindowConfig};
use tickflow_operators::rows::Candle;
use tickflow_operators::{Bar, IndicatorSet, Symbol, Values};
use timely::dataflow::InputHandle;
use timely::dataflow::operators::{Input, Inspect, Probe};

const TF: i64 = 60_000;

/// Runs `arrivals` (bar, watermark after it) through Candles; returns (candles, late bars).
fn run(arrivals: Vec<(Bar, i64)>, lateness: i64) -> (Vec<Candle>, Vec<Bar>) {
    let out: Arc<Mutex<Vec<CandleOut>>> = Arc::default();
    let sink = out.clone();
    timely::execute_directly(move |worker| {
        let mut input = InputHandle::new();
        let probe = worker.dataflow::<u64, _, _>(|scope| {
            let cfg = WindowConfig { timeframes: vec![TF], allowed_lateness: lateness };
            let set = Rc::new(IndicatorSet::standard());
            let (probe, _) = scope
                .input_from(&mut input)
                .candles(set, cfg)
                .inspect(move |x: &CandleOut| sink.lock().unwrap().push(*x))
                .probe();
            probe
        });
        for (bar, wm) in &arrivals {
            input.send(*bar);
            let wm = *wm as u64;
            if wm > *input.time() {
                input.advance_to(wm);
            }
            while probe.less_than(input.time()) {
                worker.step();
            }
        }
    });
    let out = Arc::try_unwrap(out).unwrap().into_inner().unwrap();
    let mut candles = Vec::new();
    let mut late = Vec::new();
    for r in out {
        match r {
            Ok(c) => candles.push(c),
            Err((b, _)) => late.push(b),
        }
    }
    (candles, late)
}

fn arrivals() -> impl Strategy<Value = (Vec<(Bar, i64)>, i64)> {
    let lateness = prop_oneof![Just(0i64), Just(TF), Just(3 * TF)];
    (prop::collection::vec((0i64..40, 0.0f64..0.02, -0.01f64..0.01, 1.0f64..10.0), 1..120), lateness, 0i64..(2 * TF))
        .prop_map(|(steps, lateness, delay)| {
            let s = Symbol::new("S").unwrap();
            let mut price = 100.0f64;
            let mut arrivals = Vec::new();
            let mut max_ts = 0i64;
            for (i, (jitter, up, ret, vol)) in steps.into_iter().enumerate() {
                // event times move forward ~10 s per bar; arrival order perturbed by `jitter`
                let ts = 1_700_000_000_000 + (i as i64) * 10_000 - jitter * 2_000;
                let open = price;
                price *= 1.0 + ret;
                let bar = Bar::new(s, ts, open, open.max(price) * (1.0 + up), open.min(price) * (1.0 - up), price, vol);
                max_ts = max_ts.max(ts);
                arrivals.push((bar, max_ts - delay));
            }
            (arrivals, lateness)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 120, ..ProptestConfig::default() })]

    #[test]
    fn final_revisions_equal_scratch((arrivals, lateness) in arrivals()) {
        let bars: Vec<Bar> = arrivals.iter().map(|a| a.0).collect();
        let (candles, late) = run(arrivals, lateness);

        // Last revision per window.
        let mut last: BTreeMap<i64, Candle> = BTreeMap::new();
        for c in &candles {
            let e = last.entry(c.start).or_insert(*c);
            if c.revision >= e.revision { *e = *c; }
        }
        // Conservation: every bar is in a final window or late.
        let in_windows: u64 = last.values().map(|c| c.count).sum();
        prop_assert_eq!(in_windows as usize + late.len(), bars.len());

        // Scratch aggregation of the bars that were not late.
        let mut late_left = late.clone();
        let mut groups: BTreeMap<i64, Vec<Bar>> = BTreeMap::new();
        for b in &bars {
            if let Some(i) = late_left.iter().position(|l| l == b) { late_left.swap_remove(i); continue; }
            groups.entry(b.ts - b.ts.rem_euclid(TF)).or_default().push(*b);
        }
        prop_assert_eq!(groups.keys().collect::<Vec<_>>(), last.keys().collect::<Vec<_>>());
        let set = IndicatorSet::standard();
        let mut state = set.new_state();
        let mut row = Values::default();
        for (start, group) in &groups {
            let c = &last[start];
            let mut by_time = group.clone();
            by_time.sort_by_key(|b| b.ts);
            prop_assert_eq!(c.count as usize, group.len());
            prop_assert_eq!(c.open, by_time[0].open);
            prop_assert_eq!(c.close, by_time.last().unwrap().close);
            prop_assert_eq!(c.high, group.iter().map(|b| b.high).fold(f64::MIN, f64::max));
            prop_assert_eq!(c.low, group.iter().map(|b| b.low).fold(f64::MAX, f64::min));
            let vol: f64 = group.iter().map(|b| b.volume).sum();
            prop_assert!((c.volume - vol).abs() <= 1e-9 * vol);
            // candle indicators over the final candles, in order
            let d = set.update(&mut state, &c.as_bar(), &mut row);
            prop_assert_eq!(d, c.decision);
            for (a, b) in row.iter().zip(c.values.iter()) {
                match (a, b) {
                    (Some(a), Some(b)) => prop_assert!((a - b).abs() <= 1e-9 * a.abs().max(1.0), "{} vs {}", a, b),
                    (a, b) => prop_assert_eq!(a, b),
                }
            }
        }
        if lateness == 0 {
            prop_assert!(candles.iter().all(|c| c.revision == 0), "no corrections without lateness");
        }
    }
}

#[test]
fn a_late_bar_within_lateness_corrects_the_window_and_one_beyond_is_late() {
    let s = Symbol::new("S").unwrap();
    let t0 = 1_700_000_040_000; // a minute boundary: 1_700_000_040_000 % 60_000 == 0
    assert_eq!(t0 % TF, 0);
    let bar = |dt: i64, px: f64| Bar::new(s, t0 + dt, px, px, px, px, 1.0);
    let arrivals = vec![
        (bar(0, 10.0), t0),
        (bar(30_000, 11.0), t0 + 30_000),
        (bar(70_000, 12.0), t0 + 70_000),   // watermark passes 60 s: [0, 60) closes
        (bar(50_000, 13.0), t0 + 70_000),   // late, within 60 s lateness: correction
        (bar(200_000, 14.0), t0 + 200_000), // watermark passes 60 + 60 s: [0, 60) final
        (bar(10_000, 15.0), t0 + 200_000),  // too late: late output
    ];
    let (candles, late) = run(arrivals, TF);
    let first: Vec<&Candle> = candles.iter().filter(|c| c.start == t0).collect();
    assert_eq!(first.len(), 2, "{first:#?}");
    assert_eq!((first[0].revision, first[0].count, first[0].close), (0, 2, 11.0));
    assert_eq!((first[1].revision, first[1].count, first[1].close, first[1].high), (1, 3, 13.0, 13.0));
    assert_eq!(late.len(), 1);
    assert_eq!(late[0].close, 15.0);
}
