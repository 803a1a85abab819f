//! The flat bar object on the general path: keys to slots, values stored and checked, the
//! bar built and validated.

use std::borrow::Cow;

use tickflow_operators::{Bar, Symbol, TimeBounds};

use crate::decode::error::{DecodeErrorKind, show_bytes};
use crate::decode::timestamp::TsUnit;

use super::number::{NUMBER, parse_f64, parse_ts};
use super::scanner::{Found, Scanner, Syntax, Value};

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Slot {
    Symbol,
    Ts,
    Open,
    High,
    Low,
    Close,
    Volume,
    Price,
}

pub(super) const SLOTS: usize = 8;

/// The recognised keys: their slot and their spelling as a `'static` name for messages.
#[inline]
pub(super) fn slot_of(key: &[u8]) -> Option<(Slot, &'static str)> {
    Some(match key {
        b"symbol" => (Slot::Symbol, "symbol"),
        b"stock_symbol" => (Slot::Symbol, "stock_symbol"),
        b"timestamp" => (Slot::Ts, "timestamp"),
        b"ts" => (Slot::Ts, "ts"),
        b"local_time" => (Slot::Ts, "local_time"),
        b"open" => (Slot::Open, "open"),
        b"opening_price" => (Slot::Open, "opening_price"),
        b"high" => (Slot::High, "high"),
        b"low" => (Slot::Low, "low"),
        b"close" => (Slot::Close, "close"),
        b"closing_price" => (Slot::Close, "closing_price"),
        b"volume" => (Slot::Volume, "volume"),
        b"size" => (Slot::Volume, "size"),
        b"price" => (Slot::Price, "price"),
        _ => return None,
    })
}

pub(super) const NAMES_SYMBOL: &[&str] = &["symbol", "stock_symbol"];
pub(super) const NAMES_TS: &[&str] = &["timestamp", "ts", "local_time"];
pub(super) const NAMES_OPEN: &[&str] = &["open", "opening_price"];
pub(super) const NAMES_HIGH: &[&str] = &["high"];
pub(super) const NAMES_LOW: &[&str] = &["low"];
pub(super) const NAMES_CLOSE: &[&str] = &["close", "closing_price"];
pub(super) const NAMES_VOLUME: &[&str] = &["volume", "size"];

/// Scans one object at the scanner's position (which must be at `{`) and builds the bar.
/// The outer error is a syntax error (the object's end is unknown); the inner one a field,
/// presence or validation error (the scanner is past the object).
pub(super) fn decode_object(
    s: &mut Scanner<'_>,
    bounds: &TimeBounds,
) -> Result<Result<(Bar, TsUnit), DecodeErrorKind>, Syntax> {
    let mut names: [Option<&'static str>; SLOTS] = [None; SLOTS];
    let mut nums = [0f64; SLOTS];
    let mut symbol: Option<Cow<'_, str>> = None;
    let mut ts: Option<(i64, TsUnit)> = None;
    let mut first_err: Option<DecodeErrorKind> = None;
    s.object(|s, key| {
        match slot_of(&key) {
            None => s.skip_value(0)?,
            Some((slot, name)) => {
                let value = s.field_value()?;
                if first_err.is_none() {
                    first_err = store(slot, name, value, &mut names, &mut nums, &mut symbol, &mut ts).err();
                }
                names[slot as usize].get_or_insert(name);
            }
        }
        Ok(())
    })?;
    if let Some(e) = first_err {
        return Ok(Err(e));
    }
    Ok(build(&names, &nums, symbol, ts, bounds))
}

/// Stores a recognised field's value in its slot, or says what is wrong with it.
pub(super) fn store<'a>(
    slot: Slot,
    name: &'static str,
    value: Result<Value<'a>, Found>,
    names: &mut [Option<&'static str>; SLOTS],
    nums: &mut [f64; SLOTS],
    symbol: &mut Option<Cow<'a, str>>,
    ts: &mut Option<(i64, TsUnit)>,
) -> Result<(), DecodeErrorKind> {
    if let Some(first) = names[slot as usize] {
        return Err(DecodeErrorKind::Duplicate { field: name, first });
    }
    let ohlc = [Slot::Open, Slot::High, Slot::Low, Slot::Close];
    if slot == Slot::Price {
        if let Some(other) = ohlc.iter().find_map(|&o| names[o as usize]) {
            return Err(DecodeErrorKind::Conflict { field: name, other });
        }
    } else if ohlc.contains(&slot) {
        if let Some(other) = names[Slot::Price as usize] {
            return Err(DecodeErrorKind::Conflict { field: name, other });
        }
    }
    match slot {
        Slot::Symbol => match value {
            Ok(Value::Str(v)) => *symbol = Some(v),
            Ok(Value::Num(n)) => {
                let found = show_bytes(n.as_bytes());
                return Err(DecodeErrorKind::WrongType { field: name.into(), expected: "a string", found });
            }
            Err(f) => return Err(f.into_kind(name, "a string")),
        },
        Slot::Ts => {
            *ts = Some(match value {
                Ok(Value::Num(n)) => parse_ts(name, n, false)?,
                Ok(Value::Str(v)) => parse_ts(name, &v, true)?,
                Err(f) => return Err(f.into_kind(name, "a number or a string")),
            })
        }
        _ => {
            nums[slot as usize] = match value {
                Ok(Value::Num(n)) => parse_f64(name, n, false)?,
                Ok(Value::Str(v)) => parse_f64(name, &v, true)?,
                Err(f) => return Err(f.into_kind(name, NUMBER)),
            }
        }
    }
    Ok(())
}

pub(super) fn build(
    names: &[Option<&'static str>; SLOTS],
    nums: &[f64; SLOTS],
    symbol: Option<Cow<'_, str>>,
    ts: Option<(i64, TsUnit)>,
    bounds: &TimeBounds,
) -> Result<(Bar, TsUnit), DecodeErrorKind> {
    let missing = |names| DecodeErrorKind::Missing { names };
    let symbol = symbol.ok_or(missing(NAMES_SYMBOL))?;
    let (ts, unit) = ts.ok_or(missing(NAMES_TS))?;
    let has = |slot: Slot| names[slot as usize].is_some();
    let n = |slot: Slot| nums[slot as usize];
    let symbol = Symbol::new(&symbol)?;
    let bar = if has(Slot::Price) {
        Bar::tick(symbol, ts, n(Slot::Price), n(Slot::Volume))
    } else {
        for (slot, names) in [
            (Slot::Open, NAMES_OPEN),
            (Slot::High, NAMES_HIGH),
            (Slot::Low, NAMES_LOW),
            (Slot::Close, NAMES_CLOSE),
            (Slot::Volume, NAMES_VOLUME),
        ] {
            if !has(slot) {
                // A record with none of the bar prices is most likely a tick missing "price".
                let none = [Slot::Open, Slot::High, Slot::Low, Slot::Close].iter().all(|&s| !has(s));
                return Err(missing(if none && slot == Slot::Open { NAMES_PRICE_OR_OPEN } else { names }));
            }
        }
        Bar::new(symbol, ts, n(Slot::Open), n(Slot::High), n(Slot::Low), n(Slot::Close), n(Slot::Volume))
    };
    bar.validate(bounds)?;
    Ok((bar, unit))
}

pub(super) const NAMES_PRICE_OR_OPEN: &[&str] = &["open", "opening_price", "price"];
