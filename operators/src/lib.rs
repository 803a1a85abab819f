//! # tickflow-operators
//!
//! The pure, engine-independent logic of tickflow and the timely operators built on it:
//! no I/O, no async, no config parsing. Everything here is deterministic and testable on its
//! own.
//!
//! # Layout
//! - [`bar`]: the OHLCV bar, its validation rules and typed errors.
//! - [`symbol`]: inline symbols, the stable routing hash, the per-worker interner.
//! - [`time`]: event time in milliseconds and its RFC 3339 form.
//! - [`indicators`]: exact incremental TA-Lib indicators, one per file.
//! - [`signal`]: buy/sell/hold rules, how they combine, signal-change detection.
//! - [`rows`]: the records the dataflow produces (enriched bars, candles, signal changes).
//! - [`dataflow`]: the timely operators (per-bar enrichment, event-time candles).
//! - [`set`]: a configured set of indicators and rules, and per-symbol state.
#![deny(missing_docs)]

pub mod bar;
pub mod dataflow;
pub mod indicators;
pub mod rows;
pub mod set;
pub mod signal;
pub mod symbol;
pub mod time;

pub use bar::{Bar, BarError, Field, TimeBounds};
pub use set::{IndicatorSet, IndicatorSpec, SymbolState, Values};
pub use signal::{Action, Decision};
pub use symbol::{Symbol, SymbolTable};
