//! The bar model: one OHLCV observation of one symbol at one event time, and its validation.
//!
//! A trade or a price tick is a bar with `open = high = low = close` ([`Bar::tick`]).
//! Validation names the field, the value and the rule it broke, so an operator reading a
//! dead-letter record knows exactly what to fix.

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::symbol::Symbol;
use crate::time::{Millis, format_rfc3339};

/// One OHLCV bar. `ts` is the bar's event time in milliseconds since the epoch (UTC).
///
/// ```
/// use tickflow_operators::{Bar, Symbol, TimeBounds};
/// let bar = Bar::new(Symbol::new("AAPL").unwrap(), 1_700_000_000_000, 10.0, 11.0, 9.5, 10.5, 1200.0);
/// assert!(bar.validate(&TimeBounds::default()).is_ok());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bar {
    /// The instrument.
    pub symbol: Symbol,
    /// Event time, milliseconds since the epoch (UTC).
    pub ts: Millis,
    /// First traded price of the bar.
    pub open: f64,
    /// Highest traded price of the bar.
    pub high: f64,
    /// Lowest traded price of the bar.
    pub low: f64,
    /// Last traded price of the bar.
    pub close: f64,
    /// Traded quantity (base units).
    pub volume: f64,
}

impl Bar {
    /// A bar from its parts (not yet validated: call [`Bar::validate`]).
    pub fn new(symbol: Symbol, ts: Millis, open: f64, high: f64, low: f64, close: f64, volume: f64) -> Bar {
        Bar { symbol, ts, open, high, low, close, volume }
    }

    /// A trade or price tick: a bar whose four prices are `price`.
    ///
    /// ```
    /// use tickflow_operators::{Bar, Symbol};
    /// let t = Bar::tick(Symbol::new("BTCUSDT").unwrap(), 1_700_000_000_000, 37000.5, 0.25);
    /// assert_eq!((t.open, t.high, t.low, t.close), (37000.5, 37000.5, 37000.5, 37000.5));
    /// ```
    pub fn tick(symbol: Symbol, ts: Millis, price: f64, size: f64) -> Bar {
        Bar::new(symbol, ts, price, price, price, price, size)
    }

    /// The typical price `(high + low + close) / 3` (used by VWAP).
    pub fn typical_price(&self) -> f64 {
        (self.high + self.low + self.close) / 3.0
    }

    /// Checks every rule of the bar model; the first broken rule is returned.
    ///
    /// Rules, in the order they are checked: every number finite; `volume ≥ 0`; every price
    /// `> 0` (unless [`TimeBounds::allow_non_positive_prices`]); `low ≤ min(open, close)`;
    /// `high ≥ max(open, close)`; `ts` within `bounds`.
    /// (The symbol is validated when it is built: [`Symbol::new`].)
    ///
    /// ```
    /// use tickflow_operators::{Bar, Symbol, TimeBounds};
    /// let bad = Bar::new(Symbol::new("AAPL").unwrap(), 1_700_000_000_000, 10.0, 9.0, 9.5, 10.5, 1.0);
    /// assert_eq!(
    ///     bad.validate(&TimeBounds::default()).unwrap_err().to_string(),
    ///     "high: 9 is below max(open, close) = 10.5 (rule: high >= max(open, close))"
    /// );
    /// ```
    pub fn validate(&self, bounds: &TimeBounds) -> Result<(), BarError> {
        for (field, value) in [
            (Field::Open, self.open),
            (Field::High, self.high),
            (Field::Low, self.low),
            (Field::Close, self.close),
            (Field::Volume, self.volume),
        ] {
            if !value.is_finite() {
                return Err(BarError::NotFinite { field, value });
            }
        }
        if self.volume < 0.0 {
            return Err(BarError::NegativeVolume { volume: self.volume });
        }
        if !bounds.allow_non_positive_prices {
            for (field, value) in
                [(Field::Open, self.open), (Field::High, self.high), (Field::Low, self.low), (Field::Close, self.close)]
            {
                if value <= 0.0 {
                    return Err(BarError::NonPositivePrice { field, value });
                }
            }
        }
        let min_oc = self.open.min(self.close);
        if self.low > min_oc {
            return Err(BarError::LowAboveOpenClose { low: self.low, min_open_close: min_oc });
        }
        let max_oc = self.open.max(self.close);
        if self.high < max_oc {
            return Err(BarError::HighBelowOpenClose { high: self.high, max_open_close: max_oc });
        }
        bounds.check(self.ts)
    }
}

/// A field of a bar, as named in error messages and input formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Field {
    /// The symbol.
    Symbol,
    /// The event time.
    Timestamp,
    /// The open price.
    Open,
    /// The high price.
    High,
    /// The low price.
    Low,
    /// The close price.
    Close,
    /// The volume.
    Volume,
}

impl Field {
    /// The field's name as used in messages and in the canonical JSON format.
    pub fn name(self) -> &'static str {
        match self {
            Field::Symbol => "symbol",
            Field::Timestamp => "timestamp",
            Field::Open => "open",
            Field::High => "high",
            Field::Low => "low",
            Field::Close => "close",
            Field::Volume => "volume",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a bar is invalid: names the field, the offending value and the rule.
#[derive(Clone, Debug, PartialEq, Error)]
pub enum BarError {
    /// The symbol is empty or longer than 32 characters.
    #[error("symbol: length {len} is outside 1..=32 characters")]
    SymbolLength {
        /// Length of the rejected symbol, in characters.
        len: usize,
    },
    /// The symbol is only punctuation (`-`, `.`, `..`): it names nothing.
    #[error("symbol: {symbol:?} has no letter or digit; a symbol needs at least one of A-Z a-z 0-9")]
    SymbolNoAlphanumeric {
        /// The rejected symbol.
        symbol: String,
    },
    /// The symbol has a character outside `[A-Za-z0-9._:-]`.
    #[error("symbol: {symbol:?} has {ch:?} at byte {pos}; allowed are A-Z a-z 0-9 . _ : -")]
    SymbolChar {
        /// The rejected symbol (cut at 40 characters).
        symbol: String,
        /// The first character not allowed.
        ch: char,
        /// Its byte offset.
        pos: usize,
    },
    /// A price or the volume is NaN or infinite.
    #[error("{field}: {value} is not a finite number")]
    NotFinite {
        /// Which number.
        field: Field,
        /// The value seen.
        value: f64,
    },
    /// A price is zero or negative while the bounds do not allow that.
    #[error(
        "{field}: {value} is not above 0 (rule: prices > 0; allow-non-positive-prices accepts instruments that can go negative)"
    )]
    NonPositivePrice {
        /// Which price.
        field: Field,
        /// The value seen.
        value: f64,
    },
    /// The volume is negative.
    #[error("volume: {volume} is negative (rule: volume >= 0)")]
    NegativeVolume {
        /// The value seen.
        volume: f64,
    },
    /// `low > min(open, close)`.
    #[error("low: {low} is above min(open, close) = {min_open_close} (rule: low <= min(open, close))")]
    LowAboveOpenClose {
        /// The low seen.
        low: f64,
        /// min(open, close).
        min_open_close: f64,
    },
    /// `high < max(open, close)`.
    #[error("high: {high} is below max(open, close) = {max_open_close} (rule: high >= max(open, close))")]
    HighBelowOpenClose {
        /// The high seen.
        high: f64,
        /// max(open, close).
        max_open_close: f64,
    },
    /// The timestamp is outside the configured bounds.
    #[error(
        "timestamp: {} ({ts} ms) is outside the accepted range {} .. {}",
        format_rfc3339(*ts), format_rfc3339(*min), format_rfc3339(*max)
    )]
    TimestampOutOfRange {
        /// The timestamp seen (ms).
        ts: Millis,
        /// Smallest accepted (ms, inclusive).
        min: Millis,
        /// Largest accepted (ms, exclusive).
        max: Millis,
    },
}

impl BarError {
    /// The field the error is about.
    pub fn field(&self) -> Field {
        match self {
            BarError::SymbolLength { .. } | BarError::SymbolChar { .. } | BarError::SymbolNoAlphanumeric { .. } => {
                Field::Symbol
            }
            BarError::NotFinite { field, .. } | BarError::NonPositivePrice { field, .. } => *field,
            BarError::NegativeVolume { .. } => Field::Volume,
            BarError::LowAboveOpenClose { .. } => Field::Low,
            BarError::HighBelowOpenClose { .. } => Field::High,
            BarError::TimestampOutOfRange { .. } => Field::Timestamp,
        }
    }
}

/// The accepted range of a bar's values: event times `[min, max)` in ms since the epoch and,
/// unless allowed, prices above 0.
///
/// The default, 1600-01-01 .. 2100-01-01, accepts any real market history (the Amsterdam
/// exchange from 1602, the Dow from 1896, the S&P 500 from 1928) and still rejects
/// microseconds or nanoseconds read as milliseconds (they land past the year 50000). A
/// narrower `time.min-timestamp` (e.g. 1990-01-01) also catches seconds read as
/// milliseconds (they land in 1970), for feeds known to be recent.
/// (The price rule lives here because these bounds are what every decoder is handed; a
/// rename to `BarBounds` is left for a refactor that touches every caller anyway.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeBounds {
    /// Smallest accepted timestamp (ms, inclusive).
    pub min: Millis,
    /// Largest accepted timestamp (ms, exclusive).
    pub max: Millis,
    /// Accept prices ≤ 0 (spreads, some futures and energy contracts). Default: `false`,
    /// every price must be > 0.
    #[serde(default)]
    pub allow_non_positive_prices: bool,
}

impl TimeBounds {
    /// 1600-01-01T00:00:00Z in ms.
    pub const DEFAULT_MIN: Millis = -11_676_096_000_000;
    /// 2100-01-01T00:00:00Z in ms.
    pub const DEFAULT_MAX: Millis = 4_102_444_800_000;

    /// Checks `ts` against the bounds.
    ///
    /// ```
    /// use tickflow_operators::TimeBounds;
    /// let b = TimeBounds::default();
    /// assert!(b.check(1_700_000_000_000).is_ok());
    /// assert!(b.check(-2_208_988_800_000).is_ok(), "1900-01-01: real history");
    /// assert_eq!(
    ///     b.check(1_700_000_000_000_000).unwrap_err().to_string(),
    ///     "timestamp: 55840-11-08T22:13:20.000Z (1700000000000000 ms) is outside the accepted range \
    ///      1600-01-01T00:00:00.000Z .. 2100-01-01T00:00:00.000Z"
    /// );
    /// ```
    pub fn check(&self, ts: Millis) -> Result<(), BarError> {
        if ts < self.min || ts >= self.max {
            return Err(BarError::TimestampOutOfRange { ts, min: self.min, max: self.max });
        }
        Ok(())
    }
}

impl Default for TimeBounds {
    fn default() -> Self {
        TimeBounds { min: Self::DEFAULT_MIN, max: Self::DEFAULT_MAX, allow_non_positive_prices: false }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(o: f64, h: f64, l: f64, c: f64, v: f64) -> Bar {
        Bar::new(Symbol::new("SPREAD").unwrap(), 1_700_000_000_000, o, h, l, c, v)
    }

    #[test]
    fn negative_and_zero_prices_are_rejected_unless_allowed() {
        let strict = TimeBounds::default();
        let negative = bar(-1.0, -0.5, -2.0, -1.0, 10.0);
        assert_eq!(
            negative.validate(&strict).unwrap_err().to_string(),
            "open: -1 is not above 0 (rule: prices > 0; allow-non-positive-prices accepts instruments that can go negative)"
        );
        let zero = bar(0.0, 0.0, 0.0, 0.0, 0.0);
        let e = zero.validate(&strict).unwrap_err();
        assert_eq!(e, BarError::NonPositivePrice { field: Field::Open, value: 0.0 });
        assert_eq!(e.field(), Field::Open);
        let low_only = bar(1.0, 1.0, -0.0, 1.0, 0.0);
        assert_eq!(low_only.validate(&strict).unwrap_err().field(), Field::Low);
        let lenient = TimeBounds { allow_non_positive_prices: true, ..strict };
        assert_eq!(negative.validate(&lenient), Ok(()));
        assert_eq!(zero.validate(&lenient), Ok(()));
        // The other rules still hold for negative prices.
        assert_eq!(bar(-1.0, -0.5, -0.9, -1.0, 1.0).validate(&lenient).unwrap_err().field(), Field::Low);
    }
}
