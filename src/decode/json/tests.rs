use super::*;
use proptest::prelude::*;

/// Number texts around the fast path's edges: plain decimals of every length, leading
/// zeros, signs, exponents, too many digits, and broken tokens.
fn number_text() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u64..10_000_000, 0usize..6).prop_map(|(m, f)| {
            let s = m.to_string();
            if f == 0 || f >= s.len() { s } else { format!("{}.{}", &s[..s.len() - f], &s[s.len() - f..]) }
        }),
        "-?(0|[1-9][0-9]{0,22})(\\.[0-9]{1,25})?([eE][+-]?[0-9]{1,3})?",
        "-?0[0-9]{1,3}(\\.[0-9]{0,3})?",
        "\"[0-9.]{1,8}\"|-|\\.5|1\\.|NaN|1e400|9007199254740993|0\\.0000000000000000000000001",
    ]
}

fn ts_text() -> impl Strategy<Value = String> {
    prop_oneof![
        (1_600_000_000u64..1_800_000_000, 0u32..4).prop_map(|(s, d)| if d == 0 {
            format!("{s}")
        } else {
            format!("{s}.{:0w$}", s % 10u64.pow(d), w = d as usize)
        }),
        (1_600_000_000_000u64..1_800_000_000_000).prop_map(|ms| ms.to_string()),
        (1_600_000_000_000_000u64..1_800_000_000_000_000).prop_map(|us| format!("{us}")),
        "[0-9]{1,20}(\\.[0-9]{1,6})?|-[0-9]{1,12}",
    ]
}

proptest! {
    /// Whenever the fast path returns a bar, it is the one the general path returns.
    #[test]
    fn fast_path_agrees_with_the_general_path(
        sym in "SYM[0-9]{4}|[A-Z]{1,5}|A\\u0042|A\"B|-|x{33}",
        ts in ts_text(),
        o in number_text(), h in number_text(), l in number_text(), c in number_text(), v in number_text(),
        keys in prop::sample::select(vec![
            ["stock_symbol", "timestamp", "open", "high", "low", "close", "volume"],
            ["symbol", "ts", "opening_price", "high", "low", "closing_price", "size"],
            ["symbol", "local_time", "open", "high", "low", "close", "price"],
            ["symbol", "ts", "open", "high", "high", "close", "volume"],
            ["symbol", "ts", "open", "high", "low", "close", "other"],
        ]),
        order in Just((0..7).collect::<Vec<usize>>()).prop_shuffle(),
        sep in prop::sample::select(vec![", ", ",", " , ", ",\t"]),
        tail in prop::sample::select(vec!["", "\n", "\r\n", " x", "}"]),
    ) {
        let vals = [format!("\"{sym}\""), ts, o, h, l, c, v];
        let fields: Vec<String> = order.iter().map(|&k| format!("\"{}\": {}", keys[k], vals[k])).collect();
        let line = format!("{{{}}}{tail}", fields.join(sep));
        let bounds = TimeBounds::default();
        if let Some((bar, unit)) = fast::decode(line.as_bytes(), &bounds) {
            prop_assert_eq!(decode_general(line.as_bytes(), 1, &bounds), Ok((bar, unit)), "{}", line);
        }
    }
}

#[test]
fn fuzz_ndjson_reader_and_body_agree_on_a_string_open_at_the_line_end() {
    // fuzz/artifacts/ndjson/crash-11ba77b9…: the reader decoded the line with its `\n`.
    let body =
        b"{\"symbol\":\"A\",\"ts\":1,\"open\":1,\"high\":1,\"low\":1,\"close\":1,\"volume\":1}\n{\"symbol\":\"C\x7f\n";
    for crlf in [false, true] {
        let body: Vec<u8> = if crlf {
            body.iter().flat_map(|&c| if c == b'\n' { vec![b'\r', c] } else { vec![c] }).collect()
        } else {
            body.to_vec()
        };
        let b = TimeBounds::default();
        let streamed: Vec<_> = NdjsonReader::new(&body[..], b).collect();
        assert_eq!(streamed, decode_json_body(&body, &b), "crlf: {crlf}");
        assert!(streamed[0].is_ok());
        assert_eq!(streamed[1].as_ref().unwrap_err().record(), 2);
    }
    let err = NdjsonReader::new(&body[..], TimeBounds::default()).nth(1).unwrap().unwrap_err();
    assert!(err.to_string().contains("unterminated string"), "{err}");
}

#[test]
fn array_elements_are_delimited_through_strings_and_nesting() {
    let body = br#" [ {"a": "x,]}"}, {"b": [1, 2]} ,3 ] "#;
    let got: Vec<&str> =
        json_array_elements(body).into_iter().map(|r| std::str::from_utf8(&body[r]).unwrap()).collect();
    assert_eq!(got, [r#"{"a": "x,]}"}"#, r#"{"b": [1, 2]}"#, "3"]);
    assert!(json_array_elements(b"[]").is_empty());
    let broken = br#"[{"a": 1}, {"b": tru}, {"c": 3}]  "#;
    let got: Vec<&str> =
        json_array_elements(broken).into_iter().map(|r| std::str::from_utf8(&broken[r]).unwrap()).collect();
    assert_eq!(got, [r#"{"a": 1}"#, r#"{"b": tru}, {"c": 3}]"#]);
}

#[test]
fn w1_lines_take_the_fast_path() {
    let bounds = TimeBounds::default();
    for line in [
        r#"{"stock_symbol": "SYM0007", "timestamp": 1700000000.0, "open": 101.2345, "high": 101.9, "low": 100.8812, "close": 101.5, "volume": 48211.37}"#,
        "{\"symbol\":\"AAPL\",\"ts\":1700000000123,\"open\":1,\"high\":2,\"low\":0.5,\"close\":1.5,\"volume\":0}\r\n",
    ] {
        let fast = fast::decode(line.as_bytes(), &bounds);
        assert!(fast.is_some(), "{line}");
        assert_eq!(fast.map(Ok), Some(decode_general(line.as_bytes(), 1, &bounds)));
    }
    let (bar, unit) =
        fast::decode(br#"{"symbol":"A","ts":1700000000.1239,"open":3,"high":3,"low":3,"close":3,"volume":1}"#, &bounds)
            .unwrap();
    assert_eq!((bar.ts, unit), (1_700_000_000_123, TsUnit::Seconds));
}

fn err(line: &str) -> String {
    decode_json_line(line.as_bytes(), 3, &TimeBounds::default()).unwrap_err().to_string()
}

#[test]
fn underflowing_numbers_are_rejected_not_read_as_zero() {
    assert_eq!(
        err(r#"{"symbol":"AAPL","ts":1700000000000,"open":1,"high":1,"low":1,"close":1,"volume":1e-400}"#),
        "record 3: volume: 1e-400 underflows to 0: its magnitude is below 5e-324, the smallest number above 0 \
         that can be stored"
    );
    assert_eq!(
        err(r#"{"symbol":"AAPL","ts":1700000000000,"open":"-2.5E-999","high":1,"low":1,"close":1,"volume":1}"#),
        "record 3: open: \"-2.5E-999\" underflows to 0: its magnitude is below 5e-324, the smallest number above \
         0 that can be stored"
    );
    // A true zero, however written, is a zero; subnormals are kept.
    let ok = |v: &str| {
        let line = format!(r#"{{"symbol":"A","ts":1700000000000,"open":1,"high":1,"low":1,"close":1,"volume":{v}}}"#);
        decode_json_line(line.as_bytes(), 1, &TimeBounds::default()).map(|b| b.volume)
    };
    assert_eq!(ok("0e-400"), Ok(0.0));
    assert_eq!(ok("0.000"), Ok(0.0));
    assert_eq!(ok("5e-324"), Ok(5e-324));
}

#[test]
fn negative_and_zero_bars_and_punctuation_symbols_are_rejected() {
    assert_eq!(
        err(r#"{"symbol":"SPRD","ts":1700000000000,"open":-1,"high":-0.5,"low":-2,"close":-1,"volume":3}"#),
        "record 3: open: -1 is not above 0 (rule: prices > 0; allow-non-positive-prices accepts instruments that \
         can go negative)"
    );
    assert_eq!(
        err(r#"{"symbol":"ZERO","ts":1700000000000,"open":0,"high":0,"low":0,"close":0,"volume":0}"#),
        "record 3: open: 0 is not above 0 (rule: prices > 0; allow-non-positive-prices accepts instruments that \
         can go negative)"
    );
    let spreads = TimeBounds { allow_non_positive_prices: true, ..TimeBounds::default() };
    let line = br#"{"symbol":"SPRD","ts":1700000000000,"open":-1,"high":-0.5,"low":-2,"close":-1,"volume":3}"#;
    assert_eq!(decode_json_line(line, 1, &spreads).unwrap().low, -2.0);
    for sym in ["-", ".", ".."] {
        assert_eq!(
            err(&format!(r#"{{"symbol":"{sym}","ts":1700000000000,"price":1}}"#)),
            format!("record 3: symbol: {sym:?} has no letter or digit; a symbol needs at least one of A-Z a-z 0-9")
        );
    }
}
