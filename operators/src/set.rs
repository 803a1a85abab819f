//! A configured set of indicators and signal rules, and the per-symbol state that runs it.
//!
//! [`IndicatorSet`] is built once from config; [`SymbolState`] holds one symbol's indicator
//! state machines. [`IndicatorSet::update`] feeds one bar and writes every output column into
//! a fixed-size [`Values`] row — no allocation per bar.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::bar::Bar;
use crate::indicators::{
    Atr, Bollinger, Donchian, Ema, Indicator, Macd, Obv, PeriodError, Roc, RollingVwap, Rsi, Sma, Vwap,
};
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

    /// Builds the state machine.
    pub fn build(&self) -> Result<AnyIndicator, PeriodError> {
        use IndicatorSpec::*;
        Ok(match *self {
            Sma(n) => AnyIndicator::Sma(crate::indicators::Sma::new(n)?),
            Ema(n) => AnyIndicator::Ema(crate::indicators::Ema::new(n)?),
            Rsi(n) => AnyIndicator::Rsi(crate::indicators::Rsi::new(n)?),
            Macd(f, s, g) => AnyIndicator::Macd(crate::indicators::Macd::new(f, s, g)?),
            Bollinger(n, k) => AnyIndicator::Bollinger(crate::indicators::Bollinger::new(n, k)?),
            Atr(n) => AnyIndicator::Atr(crate::indicators::Atr::new(n)?),
            Obv => AnyIndicator::Obv(crate::indicators::Obv::default()),
            Vwap => AnyIndicator::Vwap(crate::indicators::Vwap::default()),
            RollingVwap(n) => AnyIndicator::RollingVwap(crate::indicators::RollingVwap::new(n)?),
            Donchian(n) => AnyIndicator::Donchian(crate::indicators::Donchian::new(n)?),
            Roc(n) => AnyIndicator::Roc(crate::indicators::Roc::new(n)?),
        })
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
        spec.build().map_err(|e| err(e.to_string()))?;
        Ok(spec)
    }
}

/// Any indicator's state machine (an enum, so a symbol's state is one `Vec` with no boxes).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum AnyIndicator {
    Sma(Sma),
    Ema(Ema),
    Rsi(Rsi),
    Macd(Macd),
    Bollinger(Bollinger),
    Atr(Atr),
    Obv(Obv),
    Vwap(Vwap),
    RollingVwap(RollingVwap),
    Donchian(Donchian),
    Roc(Roc),
}

impl AnyIndicator {
    /// Feeds `bar` and writes this indicator's outputs to `out` (NaN = no value yet).
    #[inline]
    pub fn update_into(&mut self, bar: &Bar, out: &mut [f64]) {
        const NONE: f64 = f64::NAN;
        let one = |v: Option<f64>, out: &mut [f64]| out[0] = v.unwrap_or(NONE);
        match self {
            AnyIndicator::Sma(i) => one(i.update(bar), out),
            AnyIndicator::Ema(i) => one(i.update(bar), out),
            AnyIndicator::Rsi(i) => one(i.update(bar), out),
            AnyIndicator::Atr(i) => one(i.update(bar), out),
            AnyIndicator::Obv(i) => one(i.update(bar), out),
            AnyIndicator::Vwap(i) => one(i.update(bar), out),
            AnyIndicator::RollingVwap(i) => one(i.update(bar), out),
            AnyIndicator::Roc(i) => one(i.update(bar), out),
            AnyIndicator::Macd(i) => match i.update(bar) {
                Some(v) => out[..3].copy_from_slice(&[v.macd, v.signal, v.hist]),
                None => out[..3].fill(NONE),
            },
            AnyIndicator::Bollinger(i) => match i.update(bar) {
                Some(v) => out[..3].copy_from_slice(&[v.upper, v.middle, v.lower]),
                None => out[..3].fill(NONE),
            },
            AnyIndicator::Donchian(i) => match i.update(bar) {
                Some(v) => out[..3].copy_from_slice(&[v.upper, v.middle, v.lower]),
                None => out[..3].fill(NONE),
            },
        }
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
    offsets: Vec<usize>,
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
            spec.build()?;
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
        let rules = wiring
            .into_iter()
            .map(|(rule, a, oa, b, ob)| RuleInputs { rule, a: offsets[a] + oa, b: offsets[b] + ob })
            .collect();
        Ok(IndicatorSet { specs, offsets, columns, rules, combine })
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
        SymbolState {
            // Every spec was built once in `new`, so building again cannot fail.
            indicators: self.specs.iter().map(|s| s.build().expect("validated in IndicatorSet::new")).collect(),
            prev_diff: vec![None; self.rules.len()],
            change: ChangeDetector::default(),
        }
    }

    /// Feeds one bar of the state's symbol: writes every column to `out`, returns the signal.
    #[inline]
    pub fn update(&self, state: &mut SymbolState, bar: &Bar, out: &mut Values) -> Decision {
        out.len = self.columns.len() as u8;
        for (ind, &off) in state.indicators.iter_mut().zip(&self.offsets) {
            ind.update_into(bar, &mut out.cells[off..]);
        }
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
                    match (std::mem::replace(&mut state.prev_diff[i], now), now) {
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

/// One symbol's indicator and rule state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SymbolState {
    indicators: Vec<AnyIndicator>,
    prev_diff: Vec<Option<f64>>,
    /// Detects changes of this symbol's signal.
    pub change: ChangeDetector,
}
