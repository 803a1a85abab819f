//! Decoders and the synthetic market: every accepted shape, every rejected input's exact
//! message, CSV streaming, UDF bodies, generator determinism and partitioning, and
//! writer → decoder round trips.

use proptest::prelude::*;
use tickflow::decode::{
    CsvReader, DecodeError, JsonBodyKind, NdjsonReader, TsUnit, decode_json_array, decode_json_body, decode_json_line,
    decode_json_line_with_unit, decode_udf, detect_json_body,
};
use tickflow::sources::generator::{CSV_HEADER, GeneratorConfig, MarketGenerator, write_csv_row, write_w1_line};
use tickflow_operators::{Bar, Symbol, TimeBounds};

const T0: i64 = 1_700_000_000_000;

fn sym(s: &str) -> Symbol {
    Symbol::new(s).unwrap()
}

fn bar(s: &str, ts: i64, o: f64, h: f64, l: f64, c: f64, v: f64) -> Bar {
    Bar::new(sym(s), ts, o, h, l, c, v)
}

fn line(s: &str) -> Result<Bar, DecodeError> {
    decode_json_line(s.as_bytes(), 1, &TimeBounds::default())
}

fn err(s: &str) -> String {
    match line(s) {
        Ok(b) => panic!("{s} decoded to {b:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn every_json_shape_decodes_to_the_exact_bar() {
    let want = bar("AAPL", T0, 10.0, 11.0, 9.5, 10.5, 1200.0);
    let shapes = [
        r#"{"symbol": "AAPL", "timestamp": 1700000000, "open": 10, "high": 11, "low": 9.5, "close": 10.5, "volume": 1200}"#,
        r#"{"stock_symbol":"AAPL","timestamp":1700000000.0,"open":10.0,"high":11.0,"low":9.5,"close":10.5,"volume":1200.0}"#,
        r#"{"stock_symbol":"AAPL","opening_price":10,"closing_price":10.5,"high":11,"low":9.5,"volume":1200,"timestamp":1700000000}"#,
        r#"{"stock_symbol":"AAPL","local_time":"2023-11-14 22:13:20","open":10,"high":11,"low":9.5,"close":10.5,"volume":1200}"#,
        r#"{"symbol":"AAPL","ts":1700000000000,"open":"10","high":"11.0","low":"9.5","close":"10.5","volume":"1200"}"#,
        r#" {"volume":1.2e3,"close":10.5,"low":0.95e1,"high":11,"open":10,"ts":"2023-11-14T22:13:20Z","symbol":"AAPL","extra":{"a":[1,null,true,"x"]},"n":NaN} "#,
        r#"{"symbol":"\u0041APL","ts":"1700000000","open":10,"high":11,"low":9.5,"close":10.5,"volume":1200}"#,
    ];
    for s in shapes {
        assert_eq!(line(s), Ok(want), "{s}");
    }
    let tick = r#"{"symbol":"BTCUSDT","price":"37000.5","size":0.25,"timestamp":1700000000.5}"#;
    assert_eq!(line(tick), Ok(Bar::tick(sym("BTCUSDT"), T0 + 500, 37000.5, 0.25)));
    let tick = r#"{"symbol":"BTCUSDT","price":37000.5,"ts":1700000000123}"#;
    assert_eq!(line(tick), Ok(Bar::tick(sym("BTCUSDT"), T0 + 123, 37000.5, 0.0)));
}

#[test]
fn every_timestamp_form_decodes_to_the_exact_millisecond() {
    let cases: &[(&str, i64, TsUnit)] = &[
        ("1700000000", T0, TsUnit::Seconds),
        ("1700000000.5", T0 + 500, TsUnit::Seconds),
        ("1700000000.0", T0, TsUnit::Seconds),
        ("1.7e9", T0, TsUnit::Seconds),
        ("1700000000.1239", T0 + 123, TsUnit::Seconds),
        ("1700000000123", T0 + 123, TsUnit::Millis),
        ("1700000000123.9", T0 + 123, TsUnit::Millis),
        ("1700000000123456", T0 + 123, TsUnit::Micros),
        ("1700000000123456789", T0 + 123, TsUnit::Nanos),
        ("\"1700000000\"", T0, TsUnit::Seconds),
        ("\"1700000000123\"", T0 + 123, TsUnit::Millis),
        ("\"2023-11-14T22:13:20Z\"", T0, TsUnit::Rfc3339),
        ("\"2023-11-14T22:13:20.123Z\"", T0 + 123, TsUnit::Rfc3339),
        ("\"2023-11-14T22:13:20.123999999Z\"", T0 + 123, TsUnit::Rfc3339),
        ("\"2023-11-15T01:43:20+03:30\"", T0, TsUnit::Rfc3339),
        ("\"2023-11-14T17:13:20.5-05:00\"", T0 + 500, TsUnit::Rfc3339),
        ("\"2023-11-14 22:13:20\"", T0, TsUnit::Rfc3339),
        ("\"2023-11-14T22:13:20\"", T0, TsUnit::Rfc3339),
    ];
    for &(ts, ms, unit) in cases {
        let s = format!(r#"{{"symbol":"A","ts":{ts},"price":1}}"#);
        let (b, u) = decode_json_line_with_unit(s.as_bytes(), 1, &TimeBounds::default()).unwrap();
        assert_eq!((b.ts, u), (ms, unit), "{ts}");
    }
}

/// At least 40 rejected inputs, each with its exact message.
#[test]
fn bad_json_inputs_have_exact_messages() {
    let ok = r#""symbol":"A","ts":1700000000"#;
    let long_symbol = "X".repeat(10_000);
    let long_value = format!(
        r#"{{"symbol":"A","ts":1700000000,"open":"{}","high":1,"low":1,"close":1,"volume":1}}"#,
        "9".repeat(200) + "x"
    );
    let cases: Vec<(String, String)> = vec![
        // Malformed and truncated JSON.
        ("".into(), "record 1: invalid JSON at column 1: unexpected end of input, expected '{'".into()),
        ("[]".into(), "record 1: invalid JSON at column 1: expected '{'".into()),
        ("{".into(), "record 1: invalid JSON at column 2: unexpected end of input, expected '\"' (a key)".into()),
        (r#"{"symbol":"A""#.into(), "record 1: invalid JSON at column 14: unexpected end of input, expected ',' or '}'".into()),
        (r#"{"symbol":"A" "ts":1}"#.into(), "record 1: invalid JSON at column 15: expected ',' or '}'".into()),
        (r#"{"symbol":"A",}"#.into(), "record 1: invalid JSON at column 15: expected '\"' (a key)".into()),
        (r#"{"symbol" "A"}"#.into(), "record 1: invalid JSON at column 11: expected ':'".into()),
        (r#"{"symbol":"A}"#.into(), "record 1: invalid JSON at column 14: unexpected end of input, unterminated string".into()),
        (r#"{symbol:"A"}"#.into(), "record 1: invalid JSON at column 2: expected '\"' (a key)".into()),
        (r#"{"symbol":'A'}"#.into(), "record 1: invalid JSON at column 11: expected a value".into()),
        (r#"{"open":01}"#.into(), "record 1: invalid JSON at column 10: expected ',' or '}'".into()),
        (r#"{"open":1.}"#.into(), "record 1: invalid JSON at column 11: expected a digit after '.'".into()),
        (r#"{"open":-}"#.into(), "record 1: invalid JSON at column 10: expected a digit".into()),
        (r#"{"x":"a\qb"}"#.into(), "record 1: invalid JSON at column 8: invalid escape in string".into()),
        (r#"{"x":"\ud800"}"#.into(), "record 1: invalid JSON at column 13: unpaired surrogate in \\u escape".into()),
        ("{\"x\":\"a\tb\"}".into(), "record 1: invalid JSON at column 8: control character in string".into()),
        (format!("{{{ok}}} x"), "record 1: invalid JSON at column 32: unexpected text after the object".into()),
        (format!("{{{ok},\"x\":{}1{}}}", "[".repeat(70), "]".repeat(70)),
            "record 1: invalid JSON at column 100: nesting too deep".into()),
        // Missing fields.
        (r#"{"ts":1700000000,"price":1}"#.into(), "record 1: \"symbol\" (or \"stock_symbol\") missing".into()),
        (r#"{"symbol":"A","price":1}"#.into(), "record 1: \"timestamp\" (or \"ts\", \"local_time\") missing".into()),
        (format!("{{{ok}}}"), "record 1: \"open\" (or \"opening_price\", \"price\") missing".into()),
        (format!(r#"{{{ok},"open":1,"high":1,"low":1,"close":1}}"#), "record 1: \"volume\" (or \"size\") missing".into()),
        (format!(r#"{{{ok},"open":1,"low":1,"close":1,"volume":1}}"#), "record 1: \"high\" missing".into()),
        // Duplicates and conflicts.
        (format!(r#"{{{ok},"price":1,"price":2}}"#), "record 1: \"price\" duplicates \"price\"".into()),
        (r#"{"symbol":"A","stock_symbol":"B","ts":1700000000,"price":1}"#.into(), "record 1: \"stock_symbol\" duplicates \"symbol\"".into()),
        (r#"{"symbol":"A","ts":1700000000,"timestamp":1700000000,"price":1}"#.into(), "record 1: \"timestamp\" duplicates \"ts\"".into()),
        (format!(r#"{{{ok},"open":1,"opening_price":1}}"#), "record 1: \"opening_price\" duplicates \"open\"".into()),
        (format!(r#"{{{ok},"open":1,"price":1}}"#), "record 1: \"price\" cannot be combined with \"open\"".into()),
        // Wrong types.
        (format!(r#"{{{ok},"price":true}}"#), "record 1: price: expected a number or a numeric string, found true".into()),
        (format!(r#"{{{ok},"price":null}}"#), "record 1: price: expected a number or a numeric string, found null".into()),
        (format!(r#"{{{ok},"price":[1]}}"#), "record 1: price: expected a number or a numeric string, found an array".into()),
        (format!(r#"{{{ok},"price":{{"v":1}}}}"#), "record 1: price: expected a number or a numeric string, found an object".into()),
        (format!(r#"{{{ok},"price":"abc"}}"#), "record 1: price: \"abc\" is not a number".into()),
        (format!(r#"{{{ok},"price":"1,5"}}"#), "record 1: price: \"1,5\" is not a number".into()),
        (format!(r#"{{{ok},"price":""}}"#), "record 1: price: \"\" is not a number".into()),
        (r#"{"symbol":42,"ts":1700000000,"price":1}"#.into(), "record 1: symbol: expected a string, found 42".into()),
        (r#"{"symbol":"A","ts":true,"price":1}"#.into(), "record 1: ts: expected a number or a string, found true".into()),
        (long_value, format!("record 1: open: \"{}…\" is not a number", "9".repeat(80))),
        // NaN and infinities in every spelling.
        (format!(r#"{{{ok},"price":NaN}}"#), "record 1: price: NaN is not a finite number".into()),
        (format!(r#"{{{ok},"price":"NaN"}}"#), "record 1: price: \"NaN\" is not a finite number".into()),
        (format!(r#"{{{ok},"price":"nan"}}"#), "record 1: price: \"nan\" is not a finite number".into()),
        (format!(r#"{{{ok},"price":Infinity}}"#), "record 1: price: Infinity is not a finite number".into()),
        (format!(r#"{{{ok},"price":-Infinity}}"#), "record 1: price: -Infinity is not a finite number".into()),
        (format!(r#"{{{ok},"price":"inf"}}"#), "record 1: price: \"inf\" is not a finite number".into()),
        (format!(r#"{{{ok},"price":"-Infinity"}}"#), "record 1: price: \"-Infinity\" is not a finite number".into()),
        (format!(r#"{{{ok},"price":1e999}}"#), "record 1: price: 1e999 is not a finite number".into()),
        (format!(r#"{{{ok},"price":"-1e400"}}"#), "record 1: price: \"-1e400\" is not a finite number".into()),
        (r#"{"symbol":"A","ts":NaN,"price":1}"#.into(), "record 1: ts: NaN is not a finite number".into()),
        // Bar rules.
        (format!(r#"{{{ok},"open":10,"high":9,"low":9.5,"close":10.5,"volume":1}}"#),
            "record 1: high: 9 is below max(open, close) = 10.5 (rule: high >= max(open, close))".into()),
        (format!(r#"{{{ok},"open":10,"high":11,"low":12,"close":10.5,"volume":1}}"#),
            "record 1: low: 12 is above min(open, close) = 10 (rule: low <= min(open, close))".into()),
        (format!(r#"{{{ok},"price":1,"size":-5}}"#), "record 1: volume: -5 is negative (rule: volume >= 0)".into()),
        // Symbols.
        (r#"{"symbol":"","ts":1700000000,"price":1}"#.into(), "record 1: symbol: length 0 is outside 1..=32 characters".into()),
        (format!(r#"{{"symbol":"{long_symbol}","ts":1700000000,"price":1}}"#), "record 1: symbol: length 10000 is outside 1..=32 characters".into()),
        (r#"{"symbol":"ÄPFEL","ts":1700000000,"price":1}"#.into(), "record 1: symbol: \"ÄPFEL\" has 'Ä' at byte 0; allowed are A-Z a-z 0-9 . _ : -".into()),
        (r#"{"symbol":"A\u00dcB","ts":1700000000,"price":1}"#.into(), "record 1: symbol: \"AÜB\" has 'Ü' at byte 1; allowed are A-Z a-z 0-9 . _ : -".into()),
        (r#"{"symbol":"BTC USD","ts":1700000000,"price":1}"#.into(), "record 1: symbol: \"BTC USD\" has ' ' at byte 3; allowed are A-Z a-z 0-9 . _ : -".into()),
        // Timestamps.
        (r#"{"symbol":"A","ts":17000000000000000000000000000,"price":1}"#.into(), "record 1: ts: 17000000000000000000000000000 is not a valid timestamp: out of range for 64-bit milliseconds".into()),
        (r#"{"symbol":"A","ts":1700000000000000000000,"price":1}"#.into(),
            "record 1: timestamp: 55840-11-08T22:13:20.000Z (1700000000000000 ms) is outside the accepted range 1600-01-01T00:00:00.000Z .. 2100-01-01T00:00:00.000Z".into()),
        (r#"{"symbol":"A","ts":1e999,"price":1}"#.into(), "record 1: ts: 1e999 is not a valid timestamp: out of range for 64-bit milliseconds".into()),
        (r#"{"symbol":"A","ts":4102444800,"price":1}"#.into(),
            "record 1: timestamp: 2100-01-01T00:00:00.000Z (4102444800000 ms) is outside the accepted range 1600-01-01T00:00:00.000Z .. 2100-01-01T00:00:00.000Z".into()),
        (r#"{"symbol":"A","ts":-12000000000,"price":1}"#.into(),
            "record 1: timestamp: 1589-09-26T02:40:00.000Z (-12000000000000 ms) is outside the accepted range 1600-01-01T00:00:00.000Z .. 2100-01-01T00:00:00.000Z".into()),
        (r#"{"symbol":"A","ts":"yesterday","price":1}"#.into(), "record 1: ts: \"yesterday\" is not a valid timestamp: expected 4 digits of year at character 1".into()),
        (r#"{"symbol":"A","ts":"2023-02-30T00:00:00Z","price":1}"#.into(), "record 1: ts: \"2023-02-30T00:00:00Z\" is not a valid timestamp: day 30 out of range 1..=28 for 2023-02".into()),
        (r#"{"symbol":"A","ts":"2023-11-14T22:13:20+25:00","price":1}"#.into(), "record 1: ts: \"2023-11-14T22:13:20+25:00\" is not a valid timestamp: offset +25:00 out of range".into()),
    ];
    assert!(cases.len() >= 40, "{}", cases.len());
    let mut wrong = Vec::new();
    for (input, want) in &cases {
        let got = err(input);
        if &got != want {
            wrong.push(format!("input: {}\n  got:  {got}\n  want: {want}", &input[..input.len().min(120)]));
        }
    }
    assert!(wrong.is_empty(), "{} of {} wrong:\n{}", wrong.len(), cases.len(), wrong.join("\n"));
}

#[test]
fn errors_name_record_and_field() {
    let e = decode_json_line(br#"{"symbol":"A","ts":1700000000,"price":"x"}"#, 17, &TimeBounds::default()).unwrap_err();
    assert_eq!(e.record(), 17);
    assert_eq!(e.field(), Some("price"));
    let e = decode_json_line(br#"{"symbol":"A","ts":1700000000,"open":1}"#, 3, &TimeBounds::default()).unwrap_err();
    assert_eq!(e.field(), Some("high"));
    assert_eq!(e.to_string(), "record 3: \"high\" missing");
    let e = decode_json_line(b"\xff", 2, &TimeBounds::default()).unwrap_err();
    assert_eq!(e.field(), None);
}

#[test]
fn invalid_utf8_is_a_syntax_error() {
    assert_eq!(err("{\"symbol\":\"A\u{0}\"}"), "record 1: invalid JSON at column 13: control character in string");
    let e = decode_json_line(b"{\"symbol\":\"A\xffB\"}", 1, &TimeBounds::default()).unwrap_err();
    assert_eq!(e.to_string(), "record 1: invalid JSON at column 13: invalid UTF-8 in string");
}

#[test]
fn ndjson_reader_reports_line_numbers_and_keeps_the_raw_line() {
    let input = "\
{\"symbol\":\"A\",\"ts\":1700000000,\"price\":1}\r
\n\
{\"symbol\":\"A\",\"ts\":1700000060,\"price\":-1,\"size\":\"-2\"}\n\
not json\n\
{\"symbol\":\"B\",\"ts\":1700000120,\"price\":2}";
    let mut r = NdjsonReader::new(input.as_bytes(), TimeBounds::default());
    assert_eq!(r.next(), Some(Ok(Bar::tick(sym("A"), T0, 1.0, 0.0))));
    assert_eq!(r.line(), br#"{"symbol":"A","ts":1700000000,"price":1}"#);
    assert_eq!(r.next().unwrap().unwrap_err().to_string(), "record 3: volume: -2 is negative (rule: volume >= 0)");
    assert_eq!(r.line_number(), 3);
    assert_eq!(r.next().unwrap().unwrap_err().to_string(), "record 4: invalid JSON at column 1: expected '{'");
    assert_eq!(r.line(), b"not json");
    assert_eq!(r.next(), Some(Ok(Bar::tick(sym("B"), T0 + 120_000, 2.0, 0.0))));
    assert_eq!(r.next(), None);
}

#[test]
fn arrays_give_one_result_per_element() {
    let body = br#" [ {"symbol":"A","ts":1700000000,"price":1}, {"symbol":"A","ts":1700000000,"price":"x"},
        {"symbol":"B","ts":1700000000,"price":2} ] "#;
    let got = decode_json_array(body, &TimeBounds::default());
    assert_eq!(got.len(), 3);
    assert_eq!(got[0], Ok(Bar::tick(sym("A"), T0, 1.0, 0.0)));
    assert_eq!(got[1].as_ref().unwrap_err().to_string(), "record 2: price: \"x\" is not a number");
    assert_eq!(got[2], Ok(Bar::tick(sym("B"), T0, 2.0, 0.0)));
    assert_eq!(decode_json_array(b"[]", &TimeBounds::default()), vec![]);
    let cut = decode_json_array(br#"[{"symbol":"A","ts":1700000000,"price":1},{"symbol""#, &TimeBounds::default());
    assert_eq!(cut.len(), 2);
    assert_eq!(
        cut[1].as_ref().unwrap_err().to_string(),
        "record 2: invalid JSON at column 52: unexpected end of input, expected ':'"
    );
    let bad = decode_json_array(br#"[{"symbol":"A","ts":1700000000,"price":1} {}]"#, &TimeBounds::default());
    assert_eq!(bad[1].as_ref().unwrap_err().to_string(), "record 2: invalid JSON at column 43: expected ',' or ']'");
}

#[test]
fn bodies_are_detected_and_decoded() {
    let one = br#"{"symbol":"A","ts":1700000000,"price":1}"#;
    let pretty = b"{\n  \"symbol\": \"A\",\n  \"ts\": 1700000000,\n  \"price\": 1\n}\n";
    let nd = b"{\"symbol\":\"A\",\"ts\":1700000000,\"price\":1}\n{\"symbol\":\"B\",\"ts\":1700000000,\"price\":2}\n";
    let nd_bad_first =
        b"{\"symbol\":\"A\",\"ts\":NaN,\"price\":1,}\n{\"symbol\":\"B\",\"ts\":1700000000,\"price\":2}\n";
    assert_eq!(detect_json_body(b"  \n"), JsonBodyKind::Empty);
    assert_eq!(detect_json_body(one), JsonBodyKind::Object);
    assert_eq!(detect_json_body(pretty), JsonBodyKind::Object);
    assert_eq!(detect_json_body(b" [1]"), JsonBodyKind::Array);
    assert_eq!(detect_json_body(nd), JsonBodyKind::Ndjson);
    assert_eq!(detect_json_body(nd_bad_first), JsonBodyKind::Ndjson);
    let b = TimeBounds::default();
    assert_eq!(decode_json_body(pretty, &b), vec![Ok(Bar::tick(sym("A"), T0, 1.0, 0.0))]);
    let got = decode_json_body(nd_bad_first, &b);
    assert_eq!(got[0].as_ref().unwrap_err().to_string(), "record 1: invalid JSON at column 34: expected '\"' (a key)");
    assert_eq!(got[1], Ok(Bar::tick(sym("B"), T0, 2.0, 0.0)));
    assert_eq!(decode_json_body(b"", &b), vec![]);
}

#[test]
fn udf_bodies() {
    let b = TimeBounds::default();
    let s = sym("BTCIRT");
    let ok =
        br#"{"s":"ok","t":[1700000000,1700000060],"o":[10,"10.5"],"h":[11,12],"l":[9,10],"c":[10.5,11],"v":[3.25,0]}"#;
    let got = decode_udf(ok, s, &b).unwrap();
    assert_eq!(
        got,
        vec![
            Ok(Bar::new(s, T0, 10.0, 11.0, 9.0, 10.5, 3.25)),
            Ok(Bar::new(s, T0 + 60_000, 10.5, 12.0, 10.0, 11.0, 0.0)),
        ]
    );
    let row_bad =
        br#"{"s":"ok","t":[1700000000,1700000060],"o":[10,10],"h":[11,9],"l":[9,9],"c":[10.5,null],"v":[1,1]}"#;
    let got = decode_udf(row_bad, s, &b).unwrap();
    assert!(got[0].is_ok());
    assert_eq!(
        got[1].as_ref().unwrap_err().to_string(),
        "record 2: c: expected a number or a numeric string, found null"
    );
    assert_eq!(decode_udf(br#"{"s":"no_data","nextTime":1699990000}"#, s, &b), Ok(vec![]));
    let e = |body: &[u8]| decode_udf(body, s, &b).unwrap_err().to_string();
    assert_eq!(e(br#"{"s":"error","errmsg":"Invalid symbol"}"#), "record 1: UDF body: error: \"Invalid symbol\"");
    assert_eq!(
        e(br#"{"s":"ok","t":[1700000000],"o":[1,2],"h":[1],"l":[1],"c":[1],"v":[1]}"#),
        "record 1: UDF body: arrays differ in length (t=1, o=2, h=1, l=1, c=1, v=1)"
    );
    assert_eq!(e(br#"{"s":"ok","t":[1700000000],"o":[1],"h":[1],"l":[1],"c":[1]}"#), "record 1: \"v\" missing");
    assert_eq!(e(br#"{"t":[]}"#), "record 1: \"s\" missing");
    assert_eq!(
        e(br#"{"s":"ok","t":[1],"#),
        "record 1: invalid JSON at column 19: unexpected end of input, expected '\"' (a key)"
    );
    assert_eq!(e(br#"{"s":"ok","t":5}"#), "record 1: t: expected an array, found 5");
}

fn csv_all(input: &str, default: Option<&str>) -> (Vec<Result<Bar, String>>, Option<TsUnit>) {
    let mut r = CsvReader::new(input.as_bytes(), default.map(sym), TimeBounds::default()).unwrap();
    let out = r.by_ref().map(|x| x.map_err(|e| e.to_string())).collect();
    (out, r.ts_unit())
}

#[test]
fn csv_with_and_without_symbol_column_in_any_order() {
    let (got, unit) = csv_all("symbol,ts,open,high,low,close,volume\nAAPL,1700000000,10,11,9.5,10.5,1200\n", None);
    assert_eq!(got, vec![Ok(bar("AAPL", T0, 10.0, 11.0, 9.5, 10.5, 1200.0))]);
    assert_eq!(unit, Some(TsUnit::Seconds));
    let input = "Volume, Close ,low,HIGH,open,timestamp,note\r\n1200,10.5,9.5,11,10,1700000000123,\"a, b\"\r\n\r\n";
    let (got, unit) = csv_all(input, Some("MSFT"));
    assert_eq!(got, vec![Ok(bar("MSFT", T0 + 123, 10.0, 11.0, 9.5, 10.5, 1200.0))]);
    assert_eq!(unit, Some(TsUnit::Millis));
    let (got, unit) =
        csv_all("stock_symbol,ts,open,high,low,close,volume\n\"X\",2023-11-14T22:13:20Z,1,1,1,1,1\n", Some("IGNORED"));
    assert_eq!(got, vec![Ok(bar("X", T0, 1.0, 1.0, 1.0, 1.0, 1.0))]);
    assert_eq!(unit, Some(TsUnit::Rfc3339));
}

#[test]
fn csv_bad_rows_mid_file_do_not_stop_the_good_ones() {
    let input = "\
symbol,ts,open,high,low,close,volume
A,1700000000,10,11,9,10.5,1
A,1700000060,10,abc,9,10.5,1
A,1700000120,10,11,9,10.5
A,1700000180,10,9,9,10.5,1
A,1700000240,NaN,11,9,10.5,1
A,1700000300,10,11,9,,1
,1700000360,10,11,9,10.5,1
A,soon,10,11,9,10.5,1
A,\"1700000420,10,11,9,10.5,1
B,1700000480,10,11,9,10.5,1
";
    let (got, _) = csv_all(input, None);
    let want: Vec<Result<Bar, String>> = vec![
        Ok(bar("A", T0, 10.0, 11.0, 9.0, 10.5, 1.0)),
        Err("line 3, column 4: high: \"abc\" is not a number".into()),
        Err("line 4: 6 fields, the header has 7".into()),
        Err("line 5: high: 9 is below max(open, close) = 10.5 (rule: high >= max(open, close))".into()),
        Err("line 6, column 3: open: \"NaN\" is not a finite number".into()),
        Err("line 7, column 6: close: expected a number, found an empty field".into()),
        Err("line 8, column 1: symbol: length 0 is outside 1..=32 characters".into()),
        Err("line 9, column 2: ts: \"soon\" is not a valid timestamp: expected 4 digits of year at character 1".into()),
        Err("line 10: invalid CSV at column 3: unterminated quoted field".into()),
        Ok(bar("B", T0 + 480_000, 10.0, 11.0, 9.0, 10.5, 1.0)),
    ];
    assert_eq!(got, want);
}

#[test]
fn csv_header_errors() {
    let e = |input: &str, default: Option<&str>| {
        CsvReader::new(input.as_bytes(), default.map(sym), TimeBounds::default()).err().unwrap().to_string()
    };
    assert_eq!(e("", None), "line 1: header: the input is empty; a header line is required");
    assert_eq!(
        e("ts,open,high,low,close\n", Some("A")),
        "line 1: header: no \"volume\" column (found \"ts\", \"open\", \"high\", \"low\", \"close\")"
    );
    assert_eq!(
        e("ts,open,high,low,close,volume\n", None),
        "line 1: header: no \"symbol\" or \"stock_symbol\" column and no symbol given for the file"
    );
    assert_eq!(
        e("ts,timestamp,open,high,low,close,volume\n", Some("A")),
        "line 1: header: columns 1 and 2 (\"ts\" and \"timestamp\") name the same field"
    );
}

#[test]
fn csv_reports_the_raw_line() {
    let mut r =
        CsvReader::new("ts,open,high,low,close,volume\n1,2\n".as_bytes(), Some(sym("A")), TimeBounds::default())
            .unwrap();
    assert!(r.next().unwrap().is_err());
    assert_eq!(r.line(), b"1,2");
    assert_eq!(r.line_number(), 2);
}

// ---------------------------------------------------------------------------------------
// Generator.

fn small(seed: u64, symbols: usize, records: u64) -> GeneratorConfig {
    GeneratorConfig { seed, symbols, records: Some(records), ..GeneratorConfig::default() }
}

#[test]
fn generator_is_deterministic_per_seed() {
    let a: Vec<Bar> = MarketGenerator::new(small(1, 10, 500)).unwrap().collect();
    let b: Vec<Bar> = MarketGenerator::new(small(1, 10, 500)).unwrap().collect();
    let c: Vec<Bar> = MarketGenerator::new(small(2, 10, 500)).unwrap().collect();
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_eq!(a.len(), 500);
}

/// Pins the output for one seed: changing it breaks reproducibility of recorded runs.
#[test]
fn generator_output_is_pinned() {
    let mut g = MarketGenerator::new(small(20_240_601, 3, 6)).unwrap();
    let mut lines = Vec::new();
    for b in g.by_ref() {
        let mut s = String::new();
        write_w1_line(&mut s, &b);
        lines.push(s);
    }
    let joined = lines.join("\n");
    let expected = PINNED;
    assert_eq!(joined, expected.trim_end());
}

#[test]
fn generator_has_the_w1_shape() {
    let cfg = small(7, 13, 13 * 50 + 5);
    let bars: Vec<Bar> = MarketGenerator::new(cfg.clone()).unwrap().collect();
    assert_eq!(bars.len(), 13 * 50 + 5);
    let mut last_close = vec![None; 13];
    for (i, b) in bars.iter().enumerate() {
        let (s, k) = (i % 13, (i / 13) as i64);
        assert_eq!(b.symbol.as_str(), format!("SYM{s:04}"));
        assert_eq!(b.ts, cfg.start_ms + k * cfg.interval_ms);
        if let Some(c) = last_close[s] {
            assert_eq!(b.open, c);
        }
        last_close[s] = Some(b.close);
        assert!(b.high >= b.open.max(b.close) && b.low <= b.open.min(b.close) && b.low > 0.0);
        assert!((1000.0..100_000.0).contains(&b.volume));
        for p in [b.open, b.high, b.low, b.close] {
            assert_eq!((p * 1e4).round() / 1e4, p);
        }
        assert_eq!((b.volume * 100.0).round() / 100.0, b.volume);
        assert_eq!(b.validate(&TimeBounds::default()), Ok(()));
    }
    let wide: Vec<Bar> = MarketGenerator::new(small(7, 10_001, 10_001)).unwrap().collect();
    assert_eq!(wide[10_000].symbol.as_str(), "SYM10000");
    assert_eq!(wide[7].symbol.as_str(), "SYM00007");
}

#[test]
fn partitioned_generation_equals_the_whole() {
    let cfg = small(99, 37, 37 * 20 + 11);
    let whole: Vec<Bar> = MarketGenerator::new(cfg.clone()).unwrap().collect();
    for peers in [1, 2, 3, 4, 7] {
        let mut parts: Vec<Vec<Bar>> =
            (0..peers).map(|w| MarketGenerator::for_worker(cfg.clone(), w, peers).unwrap().collect()).collect();
        for (w, part) in parts.iter().enumerate() {
            assert!(part.iter().all(|b| b.symbol.owner(peers) == w));
            let want: Vec<Bar> = whole.iter().filter(|b| b.symbol.owner(peers) == w).copied().collect();
            assert_eq!(part, &want, "worker {w} of {peers}");
        }
        let mut merged: Vec<Bar> = parts.drain(..).flatten().collect();
        let mut sorted_whole = whole.clone();
        let key = |b: &Bar| (b.ts, b.symbol);
        merged.sort_by_key(key);
        sorted_whole.sort_by_key(key);
        assert_eq!(merged, sorted_whole);
    }
}

#[test]
fn fill_appends_batches() {
    let mut g = MarketGenerator::new(small(3, 4, 10)).unwrap();
    let mut out = Vec::new();
    assert_eq!(g.fill(&mut out, 6), 6);
    assert_eq!(g.fill(&mut out, 6), 4);
    assert_eq!(g.fill(&mut out, 6), 0);
    let all: Vec<Bar> = MarketGenerator::new(small(3, 4, 10)).unwrap().collect();
    assert_eq!(out, all);
}

#[test]
fn generator_config_errors() {
    let e = |cfg: GeneratorConfig| MarketGenerator::new(cfg).err().unwrap().to_string();
    assert_eq!(
        e(GeneratorConfig { symbols: 0, ..GeneratorConfig::default() }),
        "generator.symbols: 0 symbols; expected e.g. 1000"
    );
    assert_eq!(
        e(GeneratorConfig { interval_ms: 0, ..GeneratorConfig::default() }),
        "generator.interval_ms: 0 is not positive; expected e.g. 60000"
    );
    assert_eq!(
        MarketGenerator::for_worker(GeneratorConfig::default(), 2, 2).err().unwrap().to_string(),
        "generator.worker: worker 2 of 2 peers; expected 0 <= worker < peers"
    );
}

#[test]
fn generated_files_read_back_identically() {
    let cfg = small(5, 20, 400);
    let bars: Vec<Bar> = MarketGenerator::new(cfg.clone()).unwrap().collect();
    let mut nd = Vec::new();
    MarketGenerator::new(cfg).unwrap().write_ndjson(&mut nd, usize::MAX).unwrap();
    let back: Vec<Bar> = NdjsonReader::new(nd.as_slice(), TimeBounds::default()).map(Result::unwrap).collect();
    assert_eq!(back, bars);
    let first = std::str::from_utf8(&nd).unwrap().lines().next().unwrap().to_string();
    assert!(first.starts_with(r#"{"stock_symbol": "SYM0000", "timestamp": 1700000000.0, "open": "#), "{first}");
}

// ---------------------------------------------------------------------------------------
// Round trips of arbitrary valid bars through the writers.

fn arb_bar() -> impl Strategy<Value = Bar> {
    let price = prop_oneof![
        0.0001f64..1e6,
        (1u64..1_000_000_000).prop_map(|n| n as f64 / 1e4),
        any::<f64>().prop_filter("positive finite", |v| v.is_finite() && *v > 0.0).prop_map(|v| v.min(1e300)),
    ];
    (
        // A symbol needs a letter or digit (Symbol::new refuses "-", "..").
        "[A-Za-z0-9][A-Za-z0-9._:-]{0,31}",
        TimeBounds::DEFAULT_MIN..TimeBounds::DEFAULT_MAX,
        price.clone(),
        price,
        0.0f64..1.0,
        0.0f64..1.0,
        prop_oneof![Just(0.0), 0.0f64..1e9, any::<f64>().prop_filter("finite >= 0", |v| v.is_finite() && *v >= 0.0)],
    )
        .prop_map(|(s, ts, o, c, up, down, v)| {
            let high = o.max(c) * (1.0 + up);
            let low = o.min(c) * (1.0 - down);
            Bar::new(Symbol::new(&s).unwrap(), ts, o, high.max(o.max(c)), low.min(o.min(c)), c, v)
        })
        .prop_filter("valid", |b| b.validate(&TimeBounds::default()).is_ok())
}

fn bits(b: &Bar) -> (Symbol, i64, [u64; 5]) {
    (b.symbol, b.ts, [b.open, b.high, b.low, b.close, b.volume].map(f64::to_bits))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn ndjson_written_reads_back_bit_identical(bars in prop::collection::vec(arb_bar(), 1..20)) {
        let mut text = String::new();
        for b in &bars {
            write_w1_line(&mut text, b);
            text.push('\n');
        }
        let back: Vec<Bar> = NdjsonReader::new(text.as_bytes(), TimeBounds::default()).map(Result::unwrap).collect();
        prop_assert_eq!(back.iter().map(bits).collect::<Vec<_>>(), bars.iter().map(bits).collect::<Vec<_>>());
    }

    #[test]
    fn csv_written_reads_back_bit_identical(
        bars in prop::collection::vec(arb_bar(), 1..20),
        unit in prop_oneof![Just(TsUnit::Seconds), Just(TsUnit::Millis), Just(TsUnit::Micros), Just(TsUnit::Nanos), Just(TsUnit::Rfc3339)],
    ) {
        // Numbers below 1e11 read as seconds: milliseconds (and finer) of 1966-10 .. 1973-03
        // are ambiguous by design (module docs of decode::timestamp); such inputs are written
        // in seconds or RFC 3339.
        let ambiguous = |b: &Bar| b.ts.unsigned_abs() < 100_000_000_000;
        prop_assume!(matches!(unit, TsUnit::Seconds | TsUnit::Rfc3339) || !bars.iter().any(ambiguous));
        let mut text = format!("{CSV_HEADER}\n");
        for b in &bars {
            write_csv_row(&mut text, b, unit);
            text.push('\n');
        }
        let mut r = CsvReader::new(text.as_bytes(), None, TimeBounds::default()).unwrap();
        let back: Vec<Bar> = r.by_ref().map(Result::unwrap).collect();
        prop_assert_eq!(back.iter().map(bits).collect::<Vec<_>>(), bars.iter().map(bits).collect::<Vec<_>>());
        prop_assert_eq!(r.ts_unit(), Some(unit));
    }
}

const PINNED: &str = r#"{"stock_symbol": "SYM0000", "timestamp": 1700000000.0, "open": 351.8449, "high": 352.4786, "low": 351.1119, "close": 351.1675, "volume": 5467.29}
{"stock_symbol": "SYM0001", "timestamp": 1700000000.0, "open": 383.877, "high": 385.6025, "low": 383.8664, "close": 385.0002, "volume": 19321.09}
{"stock_symbol": "SYM0002", "timestamp": 1700000000.0, "open": 388.1938, "high": 389.3324, "low": 386.0455, "close": 386.0697, "volume": 21065.8}
{"stock_symbol": "SYM0000", "timestamp": 1700000060.0, "open": 351.1675, "high": 352.0256, "low": 350.2963, "close": 351.868, "volume": 67732.0}
{"stock_symbol": "SYM0001", "timestamp": 1700000060.0, "open": 385.0002, "high": 385.2295, "low": 383.1834, "close": 383.2644, "volume": 26066.7}
{"stock_symbol": "SYM0002", "timestamp": 1700000060.0, "open": 386.0697, "high": 388.8733, "low": 384.8303, "close": 387.9698, "volume": 74836.32}"#;
