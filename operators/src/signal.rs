//! Buy / sell / hold signals from configurable rules, and signal-change detection.
//!
//! Rules read the indicator values of the current bar (columns of an
//! [`IndicatorSet`](crate::IndicatorSet)) and give an opinion:
//! - [`Rule::Rsi`] is a *level* rule: BUY while RSI < `buy_below`, SELL while RSI > `sell_above`.
//! - [`Rule::MaCross`] and [`Rule::MacdCross`] are *event* rules: BUY on the bar where the fast
//!   line crosses above the slow one (previous difference ≤ 0, now > 0), SELL on the bar where
//!   it crosses below; no opinion on other bars.
//!
//! A rule whose inputs are still warming up has no opinion. [`Combine`] says how opinions
//! become one [`Decision`]; with no opinion at all the decision is HOLD with no rule.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The three signal values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Action {
    /// Buy.
    Buy,
    /// Sell.
    Sell,
    /// Hold (also: no rule had an opinion).
    #[default]
    Hold,
}

impl Action {
    /// `"BUY"`, `"SELL"` or `"HOLD"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Buy => "BUY",
            Action::Sell => "SELL",
            Action::Hold => "HOLD",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One signal rule (see the module docs for level vs event rules).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Rule {
    /// RSI(period) below `buy_below` → BUY, above `sell_above` → SELL.
    Rsi {
        /// RSI period.
        period: usize,
        /// BUY threshold (default 30).
        buy_below: f64,
        /// SELL threshold (default 70).
        sell_above: f64,
    },
    /// SMA(fast) crossing EMA(slow).
    MaCross {
        /// SMA period.
        fast: usize,
        /// EMA period.
        slow: usize,
    },
    /// The MACD line crossing its signal line.
    MacdCross {
        /// Fast EMA period.
        fast: usize,
        /// Slow EMA period.
        slow: usize,
        /// Signal EMA period.
        signal: usize,
    },
}

impl Rule {
    /// A short stable name used in outputs, e.g. `rsi_14`, `ma_cross_5_20`, `macd_cross_12_26_9`.
    pub fn name(&self) -> String {
        match self {
            Rule::Rsi { period, .. } => format!("rsi_{period}"),
            Rule::MaCross { fast, slow } => format!("ma_cross_{fast}_{slow}"),
            Rule::MacdCross { fast, slow, signal } => format!("macd_cross_{fast}_{slow}_{signal}"),
        }
    }
}

/// How the opinions of several rules combine into one decision.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Combine {
    /// The first rule (in configured order) with a BUY or SELL opinion decides.
    #[default]
    FirstMatch,
    /// More BUY than SELL opinions → BUY, more SELL than BUY → SELL, a tie → HOLD.
    /// The deciding rule reported is the first one that voted for the winner.
    Majority,
    /// BUY (SELL) only when every rule says BUY (SELL); otherwise HOLD.
    Unanimous,
}

/// The signal for one bar and the index of the rule that decided it (`None` for a HOLD that
/// no rule asked for).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// The signal.
    pub action: Action,
    /// Index into the configured rules of the deciding rule.
    pub rule: Option<u8>,
}

/// Combines per-rule opinions (`None` = no opinion) into a decision.
///
/// ```
/// use tickflow_operators::signal::{combine, Action, Combine};
/// let ops = [None, Some(Action::Sell), Some(Action::Buy), Some(Action::Buy)];
/// assert_eq!(combine(Combine::FirstMatch, &ops).action, Action::Sell);
/// assert_eq!(combine(Combine::FirstMatch, &ops).rule, Some(1));
/// assert_eq!(combine(Combine::Majority, &ops).action, Action::Buy);
/// assert_eq!(combine(Combine::Majority, &ops).rule, Some(2));
/// assert_eq!(combine(Combine::Unanimous, &ops).action, Action::Hold);
/// ```
pub fn combine(how: Combine, opinions: &[Option<Action>]) -> Decision {
    let first = |want: Action| opinions.iter().position(|o| *o == Some(want)).map(|i| i as u8);
    match how {
        Combine::FirstMatch => opinions
            .iter()
            .enumerate()
            .find_map(|(i, o)| match o {
                Some(a @ (Action::Buy | Action::Sell)) => Some(Decision { action: *a, rule: Some(i as u8) }),
                _ => None,
            })
            .unwrap_or_default(),
        Combine::Majority => {
            let buys = opinions.iter().filter(|o| **o == Some(Action::Buy)).count();
            let sells = opinions.iter().filter(|o| **o == Some(Action::Sell)).count();
            match buys.cmp(&sells) {
                std::cmp::Ordering::Greater => Decision { action: Action::Buy, rule: first(Action::Buy) },
                std::cmp::Ordering::Less => Decision { action: Action::Sell, rule: first(Action::Sell) },
                std::cmp::Ordering::Equal => Decision::default(),
            }
        }
        Combine::Unanimous => {
            for want in [Action::Buy, Action::Sell] {
                if !opinions.is_empty() && opinions.iter().all(|o| *o == Some(want)) {
                    return Decision { action: want, rule: Some(0) };
                }
            }
            Decision::default()
        }
    }
}

/// Emits an event only when a symbol's signal changes. A symbol starts at HOLD, so its first
/// BUY or SELL is a change and a leading run of HOLDs is not.
///
/// ```
/// use tickflow_operators::signal::{Action, ChangeDetector};
/// let mut d = ChangeDetector::default();
/// assert_eq!(d.observe(Action::Hold), None);
/// assert_eq!(d.observe(Action::Buy), Some(Action::Hold));
/// assert_eq!(d.observe(Action::Buy), None);
/// assert_eq!(d.observe(Action::Sell), Some(Action::Buy));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeDetector {
    last: Action,
}

impl ChangeDetector {
    /// Records `now`; returns the previous action if it differs.
    pub fn observe(&mut self, now: Action) -> Option<Action> {
        let prev = std::mem::replace(&mut self.last, now);
        (prev != now).then_some(prev)
    }
}
