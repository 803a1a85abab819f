//! A configured set of indicators and signal rules, and the per-symbol state that runs it.
//!
//! [`IndicatorSet`] is built once from config, with the layout of a symbol's state;
//! [`SymbolState`] holds one symbol's indicator and rule state in one exact-size buffer.
//! [`IndicatorSet::update`] feeds one bar and writes every output column into a fixed-size
//! [`Values`] row — no allocation per bar.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::bar::Bar;
use crate::indicators::{Layout, PeriodError};
use crate::signal::{Action, ChangeDetector, Combine, Decision, Rule, combine};

/// The most output columns one set may have.
pub const MAX_COLUMNS: usize = 32;
/// The most signal rules one set may have.
pub const MAX_RULES: usize = 8;

/// One configured indicator. Text form (config and CLI): `sma:20`, `ema:10`, `rsi:14`,
/// `macd:12,26,9`, `bb:20,2`, `atr:14`, `obv`, `vwap` (cumulative), `vwap:20` (rolling),
/// `donchian:20`, `roc:10`.
///
/// ```
/// use tickflow_operators::IndicatorSpec;
/// let s: IndicatorSpec = "macd:12,26,9".parse().unwrap();
/// assert_eq!(s.columns(), vec!["macd", "macd_signal", "macd_hist"]);
/// assert_eq!("bb:10,2.5".parse::<IndicatorSpec>().unwrap().columns()[0], "bb_upper_10_2.5");
/// assert!("sma:x".parse::<IndicatorSpec>().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum IndicatorSpec {
    /// SMA(period) of closes.
    Sma(usize),
    /// EMA(period) of closes.
    Ema(usize),
    /// RSI(period) of closes.
    Rsi(usize),
    /// MACD(fast, slow, signal).
    Macd(usize, usize, usize),
    /// Bollinger bands(period, k).
    Bollinger(usize, f64),
    /// ATR(period).
    Atr(usize),
    /// On-balance volume.
    Obv,
    /// Cumulative VWAP.
    Vwap,
    /// Rolling VWAP(period).
    RollingVwap(usize),
    /// Donchian channel(period).
    Donchian(usize),
    /// Rate of change(period), percent.
    Roc(usize),
}

impl IndicatorSpec {
    /// The standard set: SMA 5 and 20, EMA 10 and 20, RSI 14 and 10, MACD 12/26/9,
    /// Bollinger 20/2, ATR 14, OBV, VWAP — the reference vectors' columns, in their order.
    pub fn standard() -> Vec<IndicatorSpec> {
        use IndicatorSpec::*;
        vec![
            Sma(5),
            Sma(20),
            Ema(10),
            Ema(20),
            Rsi(14),
            Rsi(10),
            Macd(12, 26, 9),
            Bollinger(20, 2.0),
            Atr(14),
            Obv,
            Vwap,
        ]
    }

    /// Output column names, in order.
    pub fn columns(&self) -> Vec<String> {
        use IndicatorSpec::*;
        match self {
            Sma(n) => vec![format!("sma_{n}")],
            Ema(n) => vec![format!("ema_{n}")],
            Rsi(n) => vec![format!("rsi_{n}")],
            Atr(n) => vec![format!("atr_{n}")],
            Roc(n) => vec![format!("roc_{n}")],
            Obv => vec!["obv".into()],
            Vwap => vec!["vwap".into()],
            RollingVwap(n) => vec![format!("vwap_{n}")],
            Donchian(n) => ["dc_upper", "dc_middle", "dc_lower"].iter().map(|c| format!("{c}_{n}")).collect(),
            Macd(f, s, g) => {
                let suffix = if (*f, *s, *g) == (12, 26, 9) { String::new() } else { format!("_{f}_{s}_{g}") };
                ["macd", "macd_signal", "macd_hist"].iter().map(|c| format!("{c}{suffix}")).collect()
            }
            Bollinger(n, k) => {
                let suffix = if (*n, *k) == (20, 2.0) { String::new() } else { format!("_{n}_{k}") };
                ["bb_upper", "bb_middle", "bb_lower"].iter().map(|c| format!("{c}{suffix}")).collect()
            }
        }
    }

    /// Checks the parameters (periods within range, Bollinger's k finite and ≥ 0).
    pub fn check(&self) -> Result<(), PeriodError> {
        use IndicatorSpec::*;
        match *self {
            Sma(n) => crate::indicators::Sma::new(n).map(drop),
            Ema(n) => crate::indicators::Ema::new(n).map(drop),
            Rsi(n) => crate::indicators::Rsi::new(n).map(drop),
            Macd(f, s, g) => crate::indicators::Macd::new(f, s, g).map(drop),
            Bollinger(n, k) => crate::indicators::Bollinger::new(n, k).map(drop),
            Atr(n) => crate::indicators::Atr::new(n).map(drop),
            Obv | Vwap => Ok(()),
            RollingVwap(n) => crate::indicators::RollingVwap::new(n).map(drop),
            Donchian(n) => crate::indicators::Donchian::new(n).map(drop),
            Roc(n) => crate::indicators::Roc::new(n).map(drop),
        }
    }
}

impl fmt::Display for IndicatorSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use IndicatorSpec::*;
        match self {
            Sma(n) => write!(f, "sma:{n}"),
            Ema(n) => write!(f, "ema:{n}"),
            Rsi(n) => write!(f, "rsi:{n}"),
            Macd(a, b, c) => write!(f, "macd:{a},{b},{c}"),
            Bollinger(n, k) => write!(f, "bb:{n},{k}"),
            Atr(n) => write!(f, "atr:{n}"),
            Obv => write!(f, "obv"),
            Vwap => write!(f, "vwap"),
            RollingVwap(n) => write!(f, "vwap:{n}"),
            Donchian(n) => write!(f, "donchian:{n}"),
            Roc(n) => write!(f, "roc:{n}"),
        }
    }
}

/// A malformed indicator in text form.
#[derive(Clone, Debug, PartialEq, Error)]
#[error("{text:?}: {why}; expected e.g. \"sma:20\", \"macd:12,26,9\", \"bb:20,2\", \"obv\"")]
pub struct SpecError {
    /// The text given.
    pub text: String,
    /// What is wrong with it.
    pub why: String,
}

impl FromStr for IndicatorSpec {
    type Err = SpecError;
    fn from_str(text: &str) -> Result<Self, SpecError> {
        let err = |why: String| SpecError { text: text.to_string(), why };
        let (name, args) = match text.trim().split_once(':') {
            Some((n, a)) => (n.trim(), a.split(',').map(str::trim).collect::<Vec<_>>()),
            None => (text.trim(), Vec::new()),
        };
        let int = |i: usize| -> Result<usize, SpecError> {
            args.get(i)
                .ok_or_else(|| err(format!("{name} needs {} parameter(s)", i + 1)))?
                .parse::<usize>()
                .map_err(|_| err(format!("parameter {} ({:?}) is not a whole number", i + 1, args[i])))
        };
        let arity = |n: usize| -> Result<(), SpecError> {
            if args.len() == n {
                Ok(())
            } else {
                Err(err(format!("{name} takes {n} parameter(s), got {}", args.len())))
            }
        };
        let spec = match name {
            "sma" => {
                arity(1)?;
                IndicatorSpec::Sma(int(0)?)
            }
            "ema" => {
                arity(1)?;
                IndicatorSpec::Ema(int(0)?)
            }
            "rsi" => {
                arity(1)?;
                IndicatorSpec::Rsi(int(0)?)
            }
            "atr" => {
                arity(1)?;
                IndicatorSpec::Atr(int(0)?)
            }
            "roc" => {
                arity(1)?;
                IndicatorSpec::Roc(int(0)?)
            }
            "donchian" => {
                arity(1)?;
                IndicatorSpec::Donchian(int(0)?)
            }
            "obv" => {
                arity(0)?;
                IndicatorSpec::Obv
            }
            "vwap" if args.is_empty() => IndicatorSpec::Vwap,
            "vwap" => {
                arity(1)?;
                IndicatorSpec::RollingVwap(int(0)?)
            }
            "macd" => {
                arity(3)?;
                IndicatorSpec::Macd(int(0)?, int(1)?, int(2)?)
            }
            "bb" | "bollinger" => {
                arity(2)?;
                let k = args[1].parse::<f64>().map_err(|_| err(format!("k ({:?}) is not a number", args[1])))?;
                IndicatorSpec::Bollinger(int(0)?, k)
            }
            other => return Err(err(format!("unknown indicator {other:?}"))),
        };
        spec.check().map_err(|e| err(e.to_string()))?;
        Ok(spec)
    }
}

/// One row of indicator outputs, inline. A non-finite cell means "no value" (warm-up).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Values {
    len: u8,
    cells: [f64; MAX_COLUMNS],
}

impl Default for Values {
    fn default() -> Self {
        Values { len: 0, cells: [f64::NAN; MAX_COLUMNS] }
    }
}

impl Values {
    /// How many columns.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether there are no columns.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Column `i`, or `None` while that output warms up.
    #[inline]
    pub fn get(&self, i: usize) -> Option<f64> {
        let v = self.cells[..self.len()][i];
        v.is_finite().then_some(v)
    }

    /// All columns as options.
    pub fn iter(&self) -> impl Iterator<Item = Option<f64>> + '_ {
        self.cells[..self.len()].iter().map(|v| v.is_finite().then_some(*v))
    }
}

/// Column indices a rule reads.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct RuleInputs {
    rule: Rule,
    /// For RSI: the rsi column. For crossings: the fast and slow line columns.
    a: usize,
    b: usize,
}

/// An invalid indicator set.
#[derive(Clone, Debug, PartialEq, Error)]
pub enum SetError {
    /// An indicator's parameters are invalid.
    #[error(transparent)]
    Period(#[from] PeriodError),
    /// Too many output columns.
    #[error("{0} output columns is more than the {MAX_COLUMNS} supported; configure fewer indicators")]
    TooManyColumns(usize),
    /// Too many rules.
    #[error("{0} signal rules is more than the {MAX_RULES} supported")]
    TooManyRules(usize),
    /// A rule's thresholds are inverted or not finite.
    #[error("rule {rule}: buy_below {buy_below} must be finite and below sell_above {sell_above}")]
    Thresholds {
        /// The rule's name.
        rule: String,
        /// Its BUY threshold.
        buy_below: f64,
        /// Its SELL threshold.
        sell_above: f64,
    },
    /// The same output column twice.
    #[error("column {0:?} is configured twice")]
    DuplicateColumn(String),
}

/// The configured indicators and signal rules. Rules read indicator columns; an indicator a
/// rule needs is added to the set (and so to the output) when not configured explicitly.
///
/// ```
/// use tickflow_operators::{Bar, IndicatorSet, Symbol, Values, signal::Action};
/// let set = IndicatorSet::standard();
/// assert_eq!(set.columns().len(), 15);
/// let mut state = set.new_state();
/// let mut row = Values::default();
/// let s = Symbol::new("X").unwrap();
/// let d = set.update(&mut state, &Bar::new(s, 0, 1.0, 1.0, 1.0, 1.0, 5.0), &mut row);
/// assert_eq!(d.action, Action::Hold);
/// assert_eq!(row.get(set.column("obv").unwrap()), Some(5.0));
/// assert_eq!(row.get(set.column("sma_20").unwrap()), None); // warming up
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IndicatorSet {
    specs: Vec<IndicatorSpec>,
    /// Where each indicator's state and first column are.
    layout: Layout,
    columns: Vec<String>,
    rules: Vec<RuleInputs>,
    combine: Combine,
}

impl IndicatorSet {
    /// The standard indicators with the default rules.
    pub fn standard() -> IndicatorSet {
        // The standard specs and rules are valid by construction (covered by tests).
        IndicatorSet::new(IndicatorSpec::standard(), default_rules(), Combine::FirstMatch)
            .expect("standard set is valid")
    }

    /// Builds and checks a set.
    pub fn new(mut specs: Vec<IndicatorSpec>, rules: Vec<Rule>, combine: Combine) -> Result<IndicatorSet, SetError> {
        if rules.len() > MAX_RULES {
            return Err(SetError::TooManyRules(rules.len()));
        }
        let find_or_add = |spec: IndicatorSpec, specs: &mut Vec<IndicatorSpec>| -> usize {
            match specs.iter().position(|s| *s == spec) {
                Some(i) => i,
                None => {
                    specs.push(spec);
                    specs.len() - 1
                }
            }
        };
        // (rule, spec index a, output within a, spec index b, output within b)
        let mut wiring = Vec::with_capacity(rules.len());
        for rule in &rules {
            match *rule {
                Rule::Rsi { period, buy_below, sell_above } => {
                    if !(buy_below.is_finite() && sell_above.is_finite() && buy_below < sell_above) {
                        return Err(SetError::Thresholds { rule: rule.name(), buy_below, sell_above });
                    }
                    let i = find_or_add(IndicatorSpec::Rsi(period), &mut specs);
                    wiring.push((rule.clone(), i, 0, i, 0));
                }
                Rule::MaCross { fast, slow } => {
                    let a = find_or_add(IndicatorSpec::Sma(fast), &mut specs);
                    let b = find_or_add(IndicatorSpec::Ema(slow), &mut specs);
                    wiring.push((rule.clone(), a, 0, b, 0));
                }
                Rule::MacdCross { fast, slow, signal } => {
                    let i = find_or_add(IndicatorSpec::Macd(fast, slow, signal), &mut specs);
                    wiring.push((rule.clone(), i, 0, i, 1));
                }
            }
        }
        let mut offsets = Vec::with_capacity(specs.len());
        let mut columns: Vec<String> = Vec::new();
        for spec in &specs {
            spec.check()?;
            offsets.push(columns.len());
            for c in spec.columns() {
                if columns.contains(&c) {
                    return Err(SetError::DuplicateColumn(c));
                }
                columns.push(c);
            }
        }
        if columns.len() > MAX_COLUMNS {
            return Err(SetError::TooManyColumns(columns.len()));
        }
        let rules: Vec<RuleInputs> = wiring
            .into_iter()
            .map(|(rule, a, oa, b, ob)| RuleInputs { rule, a: offsets[a] + oa, b: offsets[b] + ob })
            .collect();
        // One word per rule: the crossing rules' previous difference (NaN = none yet).
        let layout = Layout::new(&specs, rules.len());
        Ok(IndicatorSet { specs, layout, columns, rules, combine })
    }

    /// Output column names, in row order.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The index of a column by name.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    /// The indicators, including those added for rules.
    pub fn specs(&self) -> &[IndicatorSpec] {
        &self.specs
    }

    /// The rules, in order.
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.rules.iter().map(|r| &r.rule)
    }

    /// The name of rule `i` (as reported in [`Decision::rule`]).
    pub fn rule_name(&self, i: u8) -> String {
        self.rules[i as usize].rule.name()
    }

    /// Fresh state for one symbol.
    pub fn new_state(&self) -> SymbolState {
        SymbolState { words: self.layout.fresh(), change: ChangeDetector::default() }
    }

    /// The bytes one symbol's state takes, its heap buffer included.
    pub fn state_bytes(&self) -> usize {
        std::mem::size_of::<SymbolState>() + 8 * self.layout.words()
    }

    /// Feeds one bar of the state's symbol: writes every column to `out`, returns the signal.
    #[inline]
    pub fn update(&self, state: &mut SymbolState, bar: &Bar, out: &mut Values) -> Decision {
        out.len = self.columns.len() as u8;
        self.layout.update(&mut state.words, bar, &mut out.cells);
        let prev_diff = &mut state.words[self.layout.extra_at()..];
        let mut opinions = [None; MAX_RULES];
        for (i, r) in self.rules.iter().enumerate() {
            opinions[i] = match r.rule {
                Rule::Rsi { buy_below, sell_above, .. } => out.get(r.a).map(|v| {
                    if v < buy_below {
                        Action::Buy
                    } else if v > sell_above {
                        Action::Sell
                    } else {
                        Action::Hold
                    }
                }),
                Rule::MaCross { .. } | Rule::MacdCross { .. } => {
                    let now = match (out.get(r.a), out.get(r.b)) {
                        (Some(a), Some(b)) => Some(a - b),
                        _ => None,
                    };
                    // NaN stands for "no difference": a difference of two finite values is
                    // never NaN (an overflow is ±inf), so the encoding is exact.
                    let prev = f64::from_bits(prev_diff[i]);
                    prev_diff[i] = now.unwrap_or(f64::NAN).to_bits();
                    match ((!prev.is_nan()).then_some(prev), now) {
                        (Some(prev), Some(now)) if prev <= 0.0 && now > 0.0 => Some(Action::Buy),
                        (Some(prev), Some(now)) if prev >= 0.0 && now < 0.0 => Some(Action::Sell),
                        _ => None,
                    }
                }
            };
        }
        combine(self.combine, &opinions[..self.rules.len()])
    }
}

/// The default rules: RSI(14) 30/70, SMA(5)×EMA(20) crossing, MACD(12,26,9) crossing, first match.
pub fn default_rules() -> Vec<Rule> {
    vec![
        Rule::Rsi { period: 14, buy_below: 30.0, sell_above: 70.0 },
        Rule::MaCross { fast: 5, slow: 20 },
        Rule::MacdCross { fast: 12, slow: 26, signal: 9 },
    ]
}

/// One symbol's indicator and rule state: the words its set's layout describes (`f64` bits
/// and counters), in one allocation of exactly that size.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SymbolState {
    words: Box<[u64]>,
    /// Detects changes of this symbol's signal.
    pub change: ChangeDetector,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::symbol::Symbol;

    /// The standard set's state, word by word: the bar count and the closes ring's head (2),
    /// the ring of 21 closes (SMA 20 and Bollinger 20 read 20 closes and the one leaving),
    /// SMA 5 and 20 (1 each), EMA 10 and 20 (1 each), RSI 14 and 10 (2 each), MACD (3),
    /// Bollinger (4), ATR (1), OBV (1), VWAP (2), and one word per rule (3).
    const STANDARD_WORDS: usize = 2 + 21 + 2 + 2 + 4 + 3 + 4 + 1 + 1 + 2 + 3;

    #[test]
    fn standard_state_is_exactly_its_layout() {
        let set = IndicatorSet::standard();
        let st = set.new_state();
        assert_eq!(st.words.len(), STANDARD_WORDS);
        // The buffer has exactly that size (a boxed slice has no spare capacity).
        assert_eq!(set.state_bytes(), std::mem::size_of::<SymbolState>() + 8 * STANDARD_WORDS);
        assert!(set.state_bytes() <= 400, "standard state is {} bytes", set.state_bytes());
        assert!(std::mem::size_of::<SymbolState>() <= 24);
    }

    #[test]
    fn state_round_trips_through_serde_mid_warmup_and_after() {
        let set = IndicatorSet::standard();
        let s = Symbol::new("RT").unwrap();
        let (mut a, mut row_a, mut row_b) = (set.new_state(), Values::default(), Values::default());
        for i in 0..60 {
            let close = 100.0 + (i as f64 * 0.7).sin() * 5.0;
            let bar = Bar::new(s, i * 1000, close, close + 1.0, close - 1.0, close, 10.0 + i as f64);
            let json = serde_json::to_string(&a).unwrap();
            let mut b: SymbolState = serde_json::from_str(&json).unwrap();
            assert_eq!(a, b, "state after {i} bars");
            let da = set.update(&mut a, &bar, &mut row_a);
            let db = set.update(&mut b, &bar, &mut row_b);
            assert_eq!(da, db);
            let bits = |r: &Values| r.cells[..r.len()].iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&row_a), bits(&row_b), "row at bar {i}");
        }
        assert!(row_a.iter().all(|v| v.is_some()), "warmed up after 60 bars");
    }

    #[test]
    fn crossing_rules_start_without_a_previous_difference() {
        let set = IndicatorSet::standard();
        let st = set.new_state();
        let rules = &st.words[set.layout.extra_at()..];
        assert_eq!(rules.len(), 3);
        assert!(rules.iter().all(|w| f64::from_bits(*w).is_nan()));
    }
}
