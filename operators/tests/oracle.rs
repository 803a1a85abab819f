//! Oracle tests: each incremental indicator against a from-scratch recomputation over the
//! window (or prefix) on random series — random walks, flat runs, monotonic runs, zero
//! volume, at price scales 1e-4, 1, 100 and 1e10 — and checkpoint/restore equivalence.

use proptest::prelude::*;
use tickflow_operators::indicators::{
    Atr, Bollinger, Donchian, Ema, Indicator, Macd, Obv, Roc, RollingVwap, Rsi, Sma, Vwap,
};
use tickflow_operators::{Bar, Symbol};

#[derive(Clone, Copy, Debug)]
enum Step {
    Walk(f64),
    Flat,
    Up,
    Down,
}

fn series() -> impl Strategy<Value = (f64, Vec<Bar>)> {
    let scale = prop_oneof![Just(1e-4), Just(1.0), Just(100.0), Just(1e10)];
    let step = prop_oneof![
        4 => (-0.02f64..0.02).prop_map(Step::Walk),
        1 => Just(Step::Flat),
        1 => Just(Step::Up),
        1 => Just(Step::Down),
    ];
    let bar = (step, 0.0f64..0.01, 0.0f64..0.01, prop_oneof![3 => 1.0f64..1e5, 1 => Just(0.0)]);
    (scale, prop::collection::vec(bar, 0..300)).prop_map(|(scale, steps)| {
        let sym = Symbol::new("P").unwrap();
        let mut close = scale;
        let bars = steps
            .into_iter()
            .enumerate()
            .map(|(i, (step, up, down, vol))| {
                let open = close;
                close = match step {
                    Step::Walk(r) => close * (1.0 + r),
                    Step::Flat => close,
                    Step::Up => close * 1.001,
                    Step::Down => close * 0.999,
                };
                let high = open.max(close) * (1.0 + up);
                let low = open.min(close) * (1.0 - down);
                Bar::new(sym, i as i64 * 60_000, open, high, low, close, vol)
            })
            .collect();
        (scale, bars)
    })
}

fn close_to(a: Option<f64>, b: Option<f64>, scale: f64) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(scale),
        _ => false,
    }
}

fn closes(bars: &[Bar]) -> Vec<f64> {
    bars.iter().map(|b| b.close).collect()
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// TA-Lib's EMA from scratch over a whole prefix (`None` before bar n-1).
fn ema_scratch(xs: &[f64], n: usize) -> Option<f64> {
    if xs.len() < n {
        return None;
    }
    let k = 2.0 / (n as f64 + 1.0);
    let mut e = mean(&xs[..n]);
    for &x in &xs[n..] {
        e = (x - e).mul_add(k, e);
    }
    Some(e)
}

fn rsi_scratch(xs: &[f64], n: usize) -> Option<f64> {
    if xs.len() <= n {
        return None;
    }
    let d: Vec<f64> = xs.windows(2).map(|w| w[1] - w[0]).collect();
    let (mut g, mut l) = (0.0, 0.0);
    for &x in &d[..n] {
        if x < 0.0 { l -= x } else { g += x }
    }
    g /= n as f64;
    l /= n as f64;
    for &x in &d[n..] {
        g *= n as f64 - 1.0;
        l *= n as f64 - 1.0;
        if x < 0.0 {
            l -= x
        } else {
            g += x
        }
        g /= n as f64;
        l /= n as f64;
    }
    let t = g + l;
    Some(if t.abs() < 1e-14 { 0.0 } else { 100.0 * (g / t) })
}

fn macd_scratch(xs: &[f64], f: usize, s: usize, g: usize) -> Option<(f64, f64, f64)> {
    if xs.len() < s + g - 1 {
        return None;
    }
    let macd_at = |i: usize| {
        let slow = ema_scratch(&xs[..=i], s).unwrap();
        let kf = 2.0 / (f as f64 + 1.0);
        let mut fast = mean(&xs[s - f..s]);
        for &x in &xs[s..=i] {
            fast = (x - fast).mul_add(kf, fast);
        }
        fast - slow
    };
    let macds: Vec<f64> = (s - 1..xs.len()).map(macd_at).collect();
    let signal = ema_scratch(&macds, g).unwrap();
    let m = *macds.last().unwrap();
    Some((m, signal, m - signal))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn incremental_equals_scratch((scale, bars) in series(), n in 2usize..30) {
        let xs = closes(&bars);
        let mut sma = Sma::new(n).unwrap();
        let mut ema = Ema::new(n).unwrap();
        let mut rsi = Rsi::new(n).unwrap();
        let mut bb = Bollinger::new(n, 2.0).unwrap();
        let mut atr = Atr::new(n).unwrap();
        let mut obv = Obv::default();
        let mut vwap = Vwap::default();
        let mut rvwap = RollingVwap::new(n).unwrap();
        let mut dc = Donchian::new(n).unwrap();
        let mut roc = Roc::new(n).unwrap();
        let mut macd = Macd::new(n, n + 5, 4).unwrap();
        for i in 0..bars.len() {
            let b = &bars[i];
            let p = &xs[..=i];
            let win = (i + 1 >= n).then(|| &bars[i + 1 - n..=i]);

            let want = win.map(|_| mean(&p[i + 1 - n..]));
            prop_assert!(close_to(sma.update(b), want, scale), "sma at {i}");
            prop_assert!(close_to(ema.update(b), ema_scratch(p, n), scale), "ema at {i}");
            prop_assert!(close_to(rsi.update(b), rsi_scratch(p, n), 100.0), "rsi at {i}");

            let bands = bb.update(b);
            let want = win.map(|_| {
                let w = &p[i + 1 - n..];
                let m = mean(w);
                let var = w.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n as f64;
                let sd = if var < 1e-14 { 0.0 } else { var.sqrt() };
                (m + 2.0 * sd, m, m - 2.0 * sd)
            });
            prop_assert!(close_to(bands.map(|v| v.upper), want.map(|w| w.0), scale), "bb upper at {i}");
            prop_assert!(close_to(bands.map(|v| v.middle), want.map(|w| w.1), scale), "bb middle at {i}");
            prop_assert!(close_to(bands.map(|v| v.lower), want.map(|w| w.2), scale), "bb lower at {i}");

            let tr: Vec<f64> = (1..=i).map(|j| Atr::true_range(&bars[j], bars[j - 1].close)).collect();
            let want = (tr.len() >= n).then(|| {
                let mut a = mean(&tr[..n]);
                for &t in &tr[n..] { a = (a * (n as f64 - 1.0) + t) / n as f64; }
                a
            });
            prop_assert!(close_to(atr.update(b), want, scale), "atr at {i}");

            let mut o = bars[0].volume;
            for j in 1..=i {
                if bars[j].close > bars[j - 1].close { o += bars[j].volume }
                else if bars[j].close < bars[j - 1].close { o -= bars[j].volume }
            }
            prop_assert!(close_to(obv.update(b), Some(o), 1e5), "obv at {i}");

            let (pv, v) = bars[..=i].iter().fold((0.0, 0.0), |(pv, v), b| (pv + b.typical_price() * b.volume, v + b.volume));
            prop_assert!(close_to(vwap.update(b), (v != 0.0).then(|| pv / v), scale), "vwap at {i}");

            let want = win.and_then(|w| {
                let (pv, v) = w.iter().fold((0.0, 0.0), |(pv, v), b| (pv + b.typical_price() * b.volume, v + b.volume));
                (v != 0.0).then(|| pv / v)
            });
            prop_assert!(close_to(rvwap.update(b), want, scale), "rolling vwap at {i}");

            let ch = dc.update(b);
            let want = win.map(|w| (w.iter().map(|b| b.high).fold(f64::MIN, f64::max), w.iter().map(|b| b.low).fold(f64::MAX, f64::min)));
            prop_assert_eq!(ch.map(|c| (c.upper, c.lower)), want, "donchian at {}", i);

            let want = (i >= n).then(|| if xs[i - n] != 0.0 { (xs[i] / xs[i - n] - 1.0) * 100.0 } else { 0.0 });
            prop_assert!(close_to(roc.update(b), want, 100.0), "roc at {i}");

            let m = macd.update(b);
            let want = macd_scratch(p, n, n + 5, 4);
            prop_assert!(close_to(m.map(|v| v.macd), want.map(|w| w.0), scale), "macd at {i}");
            prop_assert!(close_to(m.map(|v| v.signal), want.map(|w| w.1), scale), "macd signal at {i}");
            prop_assert!(close_to(m.map(|v| v.hist), want.map(|w| w.2), scale), "macd hist at {i}");
        }
    }

    #[test]
    fn checkpoint_restore_is_invisible((_scale, bars) in series(), cut in 0usize..300) {
        use tickflow_operators::{IndicatorSet, Values};
        let set = IndicatorSet::standard();
        let cut = cut.min(bars.len());
        let (mut a, mut b) = (set.new_state(), set.new_state());
        let (mut ra, mut rb) = (Values::default(), Values::default());
        for bar in &bars[..cut] {
            set.update(&mut a, bar, &mut ra);
            set.update(&mut b, bar, &mut rb);
        }
        let json = serde_json::to_string(&b).unwrap();
        let mut b: tickflow_operators::SymbolState = serde_json::from_str(&json).unwrap();
        for bar in &bars[cut..] {
            let da = set.update(&mut a, bar, &mut ra);
            let db = set.update(&mut b, bar, &mut rb);
            prop_assert_eq!(da, db);
            for (x, y) in ra.iter().zip(rb.iter()) {
                prop_assert!(close_to(x, y, 0.0) || x == y);
            }
        }
    }
}

#[test]
fn flat_series_never_yields_nan_or_fake_values() {
    let sym = Symbol::new("F").unwrap();
    for price in [1e-4, 1.0, 1e10] {
        let set = tickflow_operators::IndicatorSet::standard();
        let mut st = set.new_state();
        let mut row = tickflow_operators::Values::default();
        for i in 0..100 {
            set.update(&mut st, &Bar::new(sym, i * 1000, price, price, price, price, 0.0), &mut row);
        }
        let get = |c: &str| row.get(set.column(c).unwrap());
        assert_eq!(get("rsi_14"), Some(0.0), "TA-Lib: flat RSI is 0");
        let near = |v: Option<f64>| (v.unwrap() - price).abs() <= 1e-12 * price;
        assert_eq!(get("bb_upper"), get("bb_middle"), "flat: sigma is exactly 0");
        assert_eq!(get("bb_lower"), get("bb_middle"));
        assert!(near(get("bb_middle")));
        assert_eq!(get("atr_14"), Some(0.0));
        assert!(get("macd").unwrap().abs() <= 1e-12 * price, "flat: MACD is 0 up to rounding of the seeds");
        assert_eq!(get("vwap"), None, "no volume, no VWAP");
        assert!(near(get("sma_20")));
        assert_eq!(get("obv"), Some(0.0));
    }
}
