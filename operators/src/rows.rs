//! The records the dataflow produces: enriched bars, closed windows (candles and aggregates),
//! and signal changes. Sinks encode these; they are `Copy` and allocation-free.

use serde::{Deserialize, Serialize};

use crate::bar::Bar;
use crate::set::Values;
use crate::signal::{Action, Decision};
use crate::symbol::Symbol;
use crate::time::Millis;

/// One input bar with every configured indicator value and the signal for it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BarOut {
    /// The bar as received.
    pub bar: Bar,
    /// Indicator outputs, in the set's column order.
    pub values: Values,
    /// The signal and the rule that decided it.
    pub decision: Decision,
    /// The symbol's previous signal when this bar changed it (a signal-change event).
    pub changed_from: Option<Action>,
}

impl BarOut {
    /// The signal-change event this bar carries, if any.
    pub fn signal_change(&self) -> Option<SignalChange> {
        let from = self.changed_from?;
        Some(SignalChange { symbol: self.bar.symbol, timeframe: 0, ts: self.bar.ts, from, to: self.decision })
    }
}

/// One event-time window `[start, start + timeframe)` of one symbol: the candle, the
/// aggregates, and the indicators and signal computed over the closed candles of this
/// timeframe.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Candle {
    /// The instrument.
    pub symbol: Symbol,
    /// Window length in ms (e.g. 60_000 for 1m).
    pub timeframe: Millis,
    /// Window start (inclusive), ms since the epoch; also the row's timestamp.
    pub start: Millis,
    /// Open of the earliest bar by event time.
    pub open: f64,
    /// Highest high.
    pub high: f64,
    /// Lowest low.
    pub low: f64,
    /// Close of the latest bar by event time.
    pub close: f64,
    /// Total volume.
    pub volume: f64,
    /// Number of bars.
    pub count: u64,
    /// Σ open (for the average open).
    pub sum_open: f64,
    /// Σ close (for the average close).
    pub sum_close: f64,
    /// Σ typical price × volume (for the VWAP).
    pub sum_pv: f64,
    /// Event time of the earliest bar (its open is the candle's open).
    pub first_ts: Millis,
    /// Event time of the latest bar (its close is the candle's close).
    pub last_ts: Millis,
    /// 0 for the first emission of this window; n for the n-th correction by late bars.
    pub revision: u32,
    /// Indicators over this timeframe's candles, in the set's column order.
    pub values: Values,
    /// The signal over this timeframe's candles.
    pub decision: Decision,
    /// The previous candle signal when this candle changed it.
    pub changed_from: Option<Action>,
}

impl Candle {
    /// Mean volume per bar.
    pub fn avg_volume(&self) -> f64 {
        self.volume / self.count as f64
    }
    /// Mean open.
    pub fn avg_open(&self) -> f64 {
        self.sum_open / self.count as f64
    }
    /// Mean close.
    pub fn avg_close(&self) -> f64 {
        self.sum_close / self.count as f64
    }
    /// Volume-weighted typical price; `None` when the volume is 0.
    pub fn vwap(&self) -> Option<f64> {
        (self.volume > 0.0).then(|| self.sum_pv / self.volume)
    }

    /// A candle of one bar, before indicators.
    pub fn from_bar(bar: &Bar, timeframe: Millis, start: Millis) -> Candle {
        CandleAgg::from_bar(bar, timeframe, start).candle()
    }

    /// Adds a bar of the same window. Open is the earliest bar's by event time, close the
    /// latest's (ties: the bar that arrived last wins the close, the first keeps the open).
    pub fn add(&mut self, bar: &Bar) {
        let mut agg = CandleAgg::of(self);
        agg.add(bar);
        agg.fill(self);
    }

    /// The candle as a bar (start time, OHLCV), the input of candle indicators.
    pub fn as_bar(&self) -> Bar {
        Bar::new(self.symbol, self.start, self.open, self.high, self.low, self.close, self.volume)
    }

    /// The signal-change event this candle carries, if any.
    pub fn signal_change(&self) -> Option<SignalChange> {
        let from = self.changed_from?;
        Some(SignalChange { symbol: self.symbol, timeframe: self.timeframe, ts: self.start, from, to: self.decision })
    }
}

/// The part of a [`Candle`] its bars make (all but the indicator outputs and the signal),
/// kept for a window while it is open: 120 of a candle's 416 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CandleAgg {
    /// [`Candle::symbol`].
    pub symbol: Symbol,
    /// [`Candle::timeframe`].
    pub timeframe: Millis,
    /// [`Candle::start`].
    pub start: Millis,
    /// [`Candle::open`].
    pub open: f64,
    /// [`Candle::high`].
    pub high: f64,
    /// [`Candle::low`].
    pub low: f64,
    /// [`Candle::close`].
    pub close: f64,
    /// [`Candle::volume`].
    pub volume: f64,
    /// [`Candle::count`].
    pub count: u64,
    /// [`Candle::sum_open`].
    pub sum_open: f64,
    /// [`Candle::sum_close`].
    pub sum_close: f64,
    /// [`Candle::sum_pv`].
    pub sum_pv: f64,
    /// [`Candle::first_ts`].
    pub first_ts: Millis,
    /// [`Candle::last_ts`].
    pub last_ts: Millis,
    /// [`Candle::revision`].
    pub revision: u32,
}

impl CandleAgg {
    /// The window of one bar.
    pub fn from_bar(bar: &Bar, timeframe: Millis, start: Millis) -> CandleAgg {
        CandleAgg {
            symbol: bar.symbol,
            timeframe,
            start,
            open: bar.open,
            high: bar.high,
            low: bar.low,
            close: bar.close,
            volume: bar.volume,
            count: 1,
            sum_open: bar.open,
            sum_close: bar.close,
            sum_pv: bar.typical_price() * bar.volume,
            revision: 0,
            first_ts: bar.ts,
            last_ts: bar.ts,
        }
    }

    /// Adds a bar of the same window (see [`Candle::add`]).
    pub fn add(&mut self, bar: &Bar) {
        if bar.ts < self.first_ts {
            self.first_ts = bar.ts;
            self.open = bar.open;
        }
        if bar.ts >= self.last_ts {
            self.last_ts = bar.ts;
            self.close = bar.close;
        }
        self.high = self.high.max(bar.high);
        self.low = self.low.min(bar.low);
        self.volume += bar.volume;
        self.count += 1;
        self.sum_open += bar.open;
        self.sum_close += bar.close;
        self.sum_pv += bar.typical_price() * bar.volume;
    }

    /// The aggregate part of `c`.
    pub fn of(c: &Candle) -> CandleAgg {
        let Candle {
            symbol,
            timeframe,
            start,
            open,
            high,
            low,
            close,
            volume,
            count,
            sum_open,
            sum_close,
            sum_pv,
            first_ts,
            last_ts,
            revision,
            values: _,
            decision: _,
            changed_from: _,
        } = *c;
        CandleAgg {
            symbol,
            timeframe,
            start,
            open,
            high,
            low,
            close,
            volume,
            count,
            sum_open,
            sum_close,
            sum_pv,
            first_ts,
            last_ts,
            revision,
        }
    }

    /// Writes the aggregate part of `c`.
    pub fn fill(&self, c: &mut Candle) {
        c.symbol = self.symbol;
        c.timeframe = self.timeframe;
        c.start = self.start;
        c.open = self.open;
        c.high = self.high;
        c.low = self.low;
        c.close = self.close;
        c.volume = self.volume;
        c.count = self.count;
        c.sum_open = self.sum_open;
        c.sum_close = self.sum_close;
        c.sum_pv = self.sum_pv;
        c.first_ts = self.first_ts;
        c.last_ts = self.last_ts;
        c.revision = self.revision;
    }

    /// The candle, before indicators (no values, HOLD).
    pub fn candle(&self) -> Candle {
        Candle {
            symbol: self.symbol,
            timeframe: self.timeframe,
            start: self.start,
            open: self.open,
            high: self.high,
            low: self.low,
            close: self.close,
            volume: self.volume,
            count: self.count,
            sum_open: self.sum_open,
            sum_close: self.sum_close,
            sum_pv: self.sum_pv,
            revision: self.revision,
            values: Values::default(),
            decision: Decision::default(),
            changed_from: None,
            first_ts: self.first_ts,
            last_ts: self.last_ts,
        }
    }
}

/// A symbol's signal changed (per bar when `timeframe` is 0, else on that timeframe's candles).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalChange {
    /// The instrument.
    pub symbol: Symbol,
    /// 0 for per-bar signals, else the candle timeframe in ms.
    pub timeframe: Millis,
    /// Event time of the bar or candle start where the change happened.
    pub ts: Millis,
    /// The previous signal.
    pub from: Action,
    /// The new signal and its deciding rule.
    pub to: Decision,
}

/// Formats a timeframe in ms as a label: `1m`, `5m`, `1h`, `1d`, `30s`, `250ms`.
///
/// ```
/// use tickflow_operators::rows::timeframe_label;
/// assert_eq!(timeframe_label(60_000), "1m");
/// assert_eq!(timeframe_label(3_600_000), "1h");
/// assert_eq!(timeframe_label(90_000), "90s");
/// assert_eq!(timeframe_label(0), "bar");
/// ```
pub fn timeframe_label(ms: Millis) -> String {
    match ms {
        0 => "bar".into(),
        ms if ms % 86_400_000 == 0 => format!("{}d", ms / 86_400_000),
        ms if ms % 3_600_000 == 0 => format!("{}h", ms / 3_600_000),
        ms if ms % 60_000 == 0 => format!("{}m", ms / 60_000),
        ms if ms % 1000 == 0 => format!("{}s", ms / 1000),
        ms => format!("{ms}ms"),
    }
}
