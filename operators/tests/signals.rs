//! Signal rules on scripted price paths: thresholds, crossings, combination, change events.

use tickflow_operators::set::default_rules;
use tickflow_operators::signal::{Action, ChangeDetector, Combine, Rule};
use tickflow_operators::{Bar, IndicatorSet, IndicatorSpec, Symbol, Values};

fn run(set: &IndicatorSet, closes: &[f64]) -> Vec<(Action, Option<String>)> {
    let s = Symbol::new("S").unwrap();
    let mut st = set.new_state();
    let mut row = Values::default();
    closes
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let d = set.update(&mut st, &Bar::new(s, i as i64, c, c, c, c, 1.0), &mut row);
            (d.action, d.rule.map(|r| set.rule_name(r)))
        })
        .collect()
}

#[test]
fn rsi_thresholds_are_levels() {
    let set = IndicatorSet::new(
        vec![],
        vec![Rule::Rsi { period: 2, buy_below: 30.0, sell_above: 70.0 }],
        Combine::FirstMatch,
    )
    .unwrap();
    assert_eq!(set.columns(), ["rsi_2"], "a rule adds the indicator it needs");
    let out = run(&set, &[10.0, 9.0, 8.0, 7.0, 8.0, 9.0, 10.0, 10.0]);
    let actions: Vec<Action> = out.iter().map(|o| o.0).collect();
    use Action::*;
    // RSI: -, -, 0, 0, 50, 75, 87.5, 87.5
    assert_eq!(actions, vec![Hold, Hold, Buy, Buy, Hold, Sell, Sell, Sell]);
    assert_eq!(out[2].1.as_deref(), Some("rsi_2"));
    assert_eq!(out[4].1, None, "a HOLD no rule asked for names no rule");
}

#[test]
fn ma_cross_fires_on_the_crossing_bar_only() {
    let set = IndicatorSet::new(vec![], vec![Rule::MaCross { fast: 1, slow: 3 }], Combine::FirstMatch).unwrap();
    assert_eq!(set.columns(), ["sma_1", "ema_3"]);
    use Action::*;
    let out: Vec<Action> = run(&set, &[5.0, 5.0, 5.0, 6.0, 7.0, 7.0, 4.0, 3.0, 3.0]).into_iter().map(|o| o.0).collect();
    // ema_3 seeded at bar 2 (=5); sma_1 = close. diff: 0, +, +, +, -, -, -
    assert_eq!(out, vec![Hold, Hold, Hold, Buy, Hold, Hold, Sell, Hold, Hold]);
}

#[test]
fn macd_cross_and_first_match_order() {
    let rules = vec![
        Rule::Rsi { period: 3, buy_below: 1.0, sell_above: 99.0 },
        Rule::MacdCross { fast: 2, slow: 3, signal: 2 },
    ];
    let set = IndicatorSet::new(vec![], rules.clone(), Combine::FirstMatch).unwrap();
    let closes = [10.0, 11.0, 12.0, 13.0, 12.0, 11.0, 10.0, 11.0, 12.0, 13.0];
    let out = run(&set, &closes);
    let fired: Vec<(usize, Action, String)> = out
        .iter()
        .enumerate()
        .filter(|(_, o)| o.0 != Action::Hold)
        .map(|(i, o)| (i, o.0, o.1.clone().unwrap()))
        .collect();
    // rising 10..13 gives RSI 100 (> 99) at bar 3 first; MACD crosses down on the fall and up on the rise
    assert_eq!(fired[0], (3, Action::Sell, "rsi_3".to_string()));
    assert!(fired.iter().any(|f| f.1 == Action::Sell && f.2 == "macd_cross_2_3_2"), "{fired:?}");
    assert!(fired.iter().any(|f| f.1 == Action::Buy && f.2 == "macd_cross_2_3_2"), "{fired:?}");
}

#[test]
fn standard_set_and_default_rules_are_valid() {
    let set = IndicatorSet::standard();
    assert_eq!(set.rules().count(), default_rules().len());
    assert_eq!(
        set.columns(),
        [
            "sma_5",
            "sma_20",
            "ema_10",
            "ema_20",
            "rsi_14",
            "rsi_10",
            "macd",
            "macd_signal",
            "macd_hist",
            "bb_upper",
            "bb_middle",
            "bb_lower",
            "atr_14",
            "obv",
            "vwap"
        ]
    );
}

#[test]
fn invalid_sets_are_rejected_with_reasons() {
    let e = IndicatorSet::new(
        vec![],
        vec![Rule::Rsi { period: 14, buy_below: 70.0, sell_above: 30.0 }],
        Combine::FirstMatch,
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "rule rsi_14: buy_below 70 must be finite and below sell_above 30");
    let e = IndicatorSet::new(vec![IndicatorSpec::Sma(20), IndicatorSpec::Sma(20)], vec![], Combine::FirstMatch)
        .unwrap_err();
    assert_eq!(e.to_string(), "column \"sma_20\" is configured twice");
    let e = IndicatorSet::new(vec![IndicatorSpec::Sma(0)], vec![], Combine::FirstMatch).unwrap_err();
    assert_eq!(e.to_string(), "sma: period 0 is outside 1..=100000");
    let e = IndicatorSet::new((1..=33).map(IndicatorSpec::Sma).collect(), vec![], Combine::FirstMatch).unwrap_err();
    assert_eq!(e.to_string(), "33 output columns is more than the 32 supported; configure fewer indicators");
    assert_eq!(
        "macd:26,12,9".parse::<IndicatorSpec>().unwrap_err().to_string(),
        "\"macd:26,12,9\": macd slow: period 12 is outside 27..=100000; expected e.g. \"sma:20\", \"macd:12,26,9\", \"bb:20,2\", \"obv\""
    );
    assert_eq!("wma:5".parse::<IndicatorSpec>().unwrap_err().why, "unknown indicator \"wma\"");
}

#[test]
fn change_detector_only_reports_changes() {
    let mut d = ChangeDetector::default();
    let seq = [Action::Hold, Action::Buy, Action::Buy, Action::Hold, Action::Sell, Action::Sell];
    let changes: Vec<_> = seq.iter().filter_map(|&a| d.observe(a).map(|from| (from, a))).collect();
    assert_eq!(changes, vec![(Action::Hold, Action::Buy), (Action::Buy, Action::Hold), (Action::Hold, Action::Sell)]);
}
