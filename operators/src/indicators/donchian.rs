//! Rolling maximum and minimum (TA-Lib `MAX`/`MIN`), and the Donchian channel built on them:
//! the highest high and lowest low of the last n bars, first value at bar n−1. Monotonic
//! deques make each update O(1) amortized; their capacity is fixed at n.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::{Indicator, PeriodError, check_period};
use crate::bar::Bar;

/// Rolling extreme over the last n values: the maximum when `MAX` is true, else the minimum.
///
/// ```
/// use tickflow_operators::indicators::RollingExtreme;
/// let mut max = RollingExtreme::<true>::new(3).unwrap();
/// let out: Vec<_> = [1.0, 3.0, 2.0, 0.0, 0.5].into_iter().map(|x| max.next(x)).collect();
/// assert_eq!(out, vec![None, None, Some(3.0), Some(3.0), Some(2.0)]);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RollingExtreme<const MAX: bool> {
    period: usize,
    seen: u64,
    /// (index, value), values monotonic from the front (the extreme) to the back.
    deque: VecDeque<(u64, f64)>,
}

impl<const MAX: bool> RollingExtreme<MAX> {
    /// Over the last `period ≥ 1` values.
    pub fn new(period: usize) -> Result<Self, PeriodError> {
        let period = check_period(if MAX { "max" } else { "min" }, period, 1)?;
        Ok(RollingExtreme { period, seen: 0, deque: VecDeque::with_capacity(period + 1) })
    }

    /// Feeds the next value.
    pub fn next(&mut self, x: f64) -> Option<f64> {
        let i = self.seen;
        self.seen += 1;
        while let Some(&(_, back)) = self.deque.back() {
            let dominated = if MAX { back <= x } else { back >= x };
            if !dominated {
                break;
            }
            self.deque.pop_back();
        }
        self.deque.push_back((i, x));
        while let Some(&(j, _)) = self.deque.front() {
            if j + self.period as u64 > i {
                break;
            }
            self.deque.pop_front();
        }
        // The deque is non-empty: x was just pushed and is within the window.
        (self.seen >= self.period as u64).then(|| self.deque.front().expect("non-empty").1)
    }
}

/// Highest high, lowest low and their midpoint over the last n bars.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Channel {
    /// Highest high.
    pub upper: f64,
    /// (upper + lower) / 2.
    pub middle: f64,
    /// Lowest low.
    pub lower: f64,
}

/// The Donchian channel over the last n bars.
///
/// ```
/// use tickflow_operators::{Bar, Symbol, indicators::{Donchian, Indicator}};
/// let s = Symbol::new("X").unwrap();
/// let mut d = Donchian::new(2).unwrap();
/// assert_eq!(d.update(&Bar::new(s, 0, 5.0, 6.0, 4.0, 5.0, 1.0)), None);
/// let c = d.update(&Bar::new(s, 0, 5.0, 7.0, 4.5, 6.0, 1.0)).unwrap();
/// assert_eq!((c.upper, c.middle, c.lower), (7.0, 5.5, 4.0));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Donchian {
    high: RollingExtreme<true>,
    low: RollingExtreme<false>,
}

impl Donchian {
    /// Channel over `period ≥ 1` bars.
    pub fn new(period: usize) -> Result<Donchian, PeriodError> {
        Ok(Donchian { high: RollingExtreme::new(period)?, low: RollingExtreme::new(period)? })
    }

    /// The period.
    pub fn period(&self) -> usize {
        self.high.period
    }
}

impl Indicator for Donchian {
    type Output = Channel;
    fn update(&mut self, bar: &Bar) -> Option<Channel> {
        let upper = self.high.next(bar.high);
        let lower = self.low.next(bar.low);
        let (upper, lower) = (upper?, lower?);
        Some(Channel { upper, middle: (upper + lower) / 2.0, lower })
    }
}
