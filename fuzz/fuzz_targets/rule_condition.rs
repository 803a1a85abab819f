//! Alert rule conditions: whatever parses, written back in the grammar's own words, parses to
//! the same condition; whatever fails says why in a message naming the condition.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tickflow::alerts::rule::parse_condition;
use tickflow_operators::dataflow::alerts::{COLUMN_SLOT, Condition, PRICE_SLOT, SIGNAL_BUY, from_fixed};

fn column(slot: u16, columns: &[String]) -> String {
    if slot as usize == PRICE_SLOT { "price".into() } else { columns[slot as usize - COLUMN_SLOT].clone() }
}

fn write(c: &Condition, columns: &[String]) -> String {
    // `{:?}` of an f64 is its shortest round-trip form, which `str::parse` reads back.
    match c {
        Condition::Above { slot, value } => format!("{} > {:?}", column(*slot, columns), from_fixed(*value)),
        Condition::Below { slot, value } => format!("{} < {:?}", column(*slot, columns), from_fixed(*value)),
        Condition::CrossesAbove { slot, value } => {
            format!("{} crosses above {:?}", column(*slot, columns), from_fixed(*value))
        }
        Condition::CrossesBelow { slot, value } => {
            format!("{} crosses below {:?}", column(*slot, columns), from_fixed(*value))
        }
        Condition::Outside { slot, low, high } => {
            format!("{} outside {:?}..{:?}", column(*slot, columns), from_fixed(*low), from_fixed(*high))
        }
        Condition::SignalTo { to } => format!("signal = {}", if *to == SIGNAL_BUY { "BUY" } else { "SELL" }),
    }
}

/// Equal, except that thresholds beyond 2^53 (|x| > 9e7, where a fixed-point value has no
/// exact decimal round trip through `f64`) may differ in their last bits.
fn same(a: &Condition, b: &Condition) -> bool {
    let close = |x: i64, y: i64| x == y || (x.abs_diff(y) <= x.unsigned_abs() >> 48 && x.unsigned_abs() > 1 << 53);
    match (a, b) {
        (Condition::Above { slot: s, value: v }, Condition::Above { slot: t, value: w })
        | (Condition::Below { slot: s, value: v }, Condition::Below { slot: t, value: w })
        | (Condition::CrossesAbove { slot: s, value: v }, Condition::CrossesAbove { slot: t, value: w })
        | (Condition::CrossesBelow { slot: s, value: v }, Condition::CrossesBelow { slot: t, value: w }) => {
            s == t && close(*v, *w)
        }
        (Condition::Outside { slot: s, low: l, high: h }, Condition::Outside { slot: t, low: m, high: i }) => {
            s == t && close(*l, *m) && close(*h, *i)
        }
        _ => a == b,
    }
}

fuzz_target!(|text: &str| {
    let columns: Vec<String> = ["sma_5", "rsi_14", "macd", "bb_upper_20"].map(String::from).to_vec();
    match parse_condition(text, &columns) {
        Ok(c) => {
            let again = write(&c, &columns);
            match parse_condition(&again, &columns) {
                Ok(back) => assert!(same(&c, &back), "{text:?} parsed to {c:?}, written {again:?}, read back {back:?}"),
                Err(e) => panic!("{text:?} parsed to {c:?}, written {again:?}, which fails: {e:?}"),
            }
        }
        Err(errors) => {
            assert!(!errors.is_empty(), "an error without a message");
            for e in &errors {
                assert!(e.starts_with("condition: "), "{e:?} does not name the field");
            }
        }
    }
});
