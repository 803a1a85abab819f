//! Every validation rule of the bar model, asserting the exact error text.

use tickflow_operators::{Bar, BarError, Field, Symbol, TimeBounds};

const TS: i64 = 1_700_000_000_000;

fn bar(o: f64, h: f64, l: f64, c: f64, v: f64) -> Bar {
    Bar::new(Symbol::new("AAPL").unwrap(), TS, o, h, l, c, v)
}

fn err(b: Bar) -> String {
    b.validate(&TimeBounds::default()).unwrap_err().to_string()
}

#[test]
fn symbol_rules() {
    assert_eq!(Symbol::new("").unwrap_err().to_string(), "symbol: length 0 is outside 1..=32 characters");
    assert_eq!(Symbol::new(&"A".repeat(33)).unwrap_err().to_string(), "symbol: length 33 is outside 1..=32 characters");
    assert_eq!(
        Symbol::new(&"A".repeat(10_000)).unwrap_err().to_string(),
        "symbol: length 10000 is outside 1..=32 characters"
    );
    assert_eq!(
        Symbol::new("BTC USD").unwrap_err().to_string(),
        r#"symbol: "BTC USD" has ' ' at byte 3; allowed are A-Z a-z 0-9 . _ : -"#
    );
    assert_eq!(
        Symbol::new("ÄPPL").unwrap_err().to_string(),
        r#"symbol: "ÄPPL" has 'Ä' at byte 0; allowed are A-Z a-z 0-9 . _ : -"#
    );
    assert_eq!(Symbol::new("ÄÄ").unwrap_err(), BarError::SymbolChar { symbol: "ÄÄ".into(), ch: 'Ä', pos: 0 });
    for ok in ["A", "BRK.B", "BTC-USD", "ETH_USDT", "NYSE:IBM", &"Z".repeat(32)] {
        assert_eq!(Symbol::new(ok).unwrap().as_str(), ok);
    }
}

#[test]
fn every_number_must_be_finite() {
    assert_eq!(err(bar(f64::NAN, 1.0, 1.0, 1.0, 1.0)), "open: NaN is not a finite number");
    assert_eq!(err(bar(1.0, f64::INFINITY, 1.0, 1.0, 1.0)), "high: inf is not a finite number");
    assert_eq!(err(bar(1.0, 1.0, f64::NEG_INFINITY, 1.0, 1.0)), "low: -inf is not a finite number");
    assert_eq!(err(bar(1.0, 1.0, 1.0, f64::NAN, 1.0)), "close: NaN is not a finite number");
    assert_eq!(err(bar(1.0, 1.0, 1.0, 1.0, f64::NAN)), "volume: NaN is not a finite number");
    let e = bar(1.0, 1.0, 1.0, f64::NAN, 1.0).validate(&TimeBounds::default()).unwrap_err();
    assert_eq!(e.field(), Field::Close);
}

#[test]
fn volume_must_not_be_negative() {
    assert_eq!(err(bar(1.0, 1.0, 1.0, 1.0, -5.0)), "volume: -5 is negative (rule: volume >= 0)");
    assert!(bar(1.0, 1.0, 1.0, 1.0, 0.0).validate(&TimeBounds::default()).is_ok(), "zero volume is valid");
}

#[test]
fn low_and_high_must_bracket_open_and_close() {
    assert_eq!(
        err(bar(10.0, 11.0, 10.5, 10.8, 1.0)),
        "low: 10.5 is above min(open, close) = 10 (rule: low <= min(open, close))"
    );
    assert_eq!(
        err(bar(10.0, 10.5, 9.0, 10.8, 1.0)),
        "high: 10.5 is below max(open, close) = 10.8 (rule: high >= max(open, close))"
    );
    assert_eq!(
        bar(10.0, 9.0, 11.0, 10.0, 1.0).validate(&TimeBounds::default()).unwrap_err().field(),
        Field::Low,
        "high < low is reported on the first rule it breaks"
    );
    assert!(bar(5.0, 5.0, 5.0, 5.0, 1.0).validate(&TimeBounds::default()).is_ok(), "a tick is a valid bar");
}

#[test]
fn timestamp_must_be_within_bounds() {
    let mut b = bar(1.0, 1.0, 1.0, 1.0, 1.0);
    b.ts = -12_000_000_000_000; // 1589: before any market history
    assert_eq!(
        err(b),
        "timestamp: 1589-09-26T02:40:00.000Z (-12000000000000 ms) is outside the accepted range \
         1600-01-01T00:00:00.000Z .. 2100-01-01T00:00:00.000Z"
    );
    b.ts = -2_208_988_800_000; // 1900-01-01: the Dow's history, accepted by default
    assert!(b.validate(&TimeBounds::default()).is_ok());
    b.ts = 1_700_000_000_000_000; // microseconds mistaken for milliseconds
    assert!(err(b).starts_with("timestamp: 55840-11-08T22:13:20.000Z"), "{}", err(b));
    let tight = TimeBounds { min: TS, max: TS + 1, ..TimeBounds::default() };
    b.ts = TS;
    assert!(b.validate(&tight).is_ok());
    b.ts = TS + 1;
    assert_eq!(
        b.validate(&tight).unwrap_err().to_string(),
        "timestamp: 2023-11-14T22:13:20.001Z (1700000000001 ms) is outside the accepted range \
         2023-11-14T22:13:20.000Z .. 2023-11-14T22:13:20.001Z"
    );
}
