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

/// The bar's fields with the prices as bits, so that `-0.0` and `0.0` differ.
fn bits(bar: &Bar) -> (String, i64, [u64; 5]) {
    let p = [bar.open, bar.high, bar.low, bar.close, bar.volume].map(f64::to_bits);
    (bar.symbol.as_str().to_string(), bar.ts, p)
}

/// `line` takes the fast path, and gives bit for bit the general path's bar and unit.
#[track_caller]
fn fast_and_general_agree(line: &str) -> (Bar, TsUnit) {
    // Any time and any price, so that every number is a bar.
    let bounds = TimeBounds { min: i64::MIN, max: i64::MAX, allow_non_positive_prices: true };
    let general = decode_general(line.as_bytes(), 1, &bounds);
    let Some((bar, unit)) = fast::decode(line.as_bytes(), &bounds) else {
        panic!("the fast path refused {line:?} (general path: {general:?})");
    };
    let (want, want_unit) = general.unwrap_or_else(|e| panic!("{line:?}: fast path read a bar, general path: {e}"));
    assert_eq!((bits(&bar), unit), (bits(&want), want_unit), "{line:?}");
    (bar, unit)
}

/// A bar line with `volume` (the last field) written as `v` and the prices as `p`.
fn line_with(p: &str, v: &str) -> String {
    format!(
        r#"{{"stock_symbol": "SYM0001", "timestamp": 1700000000.0, "open": {p}, "high": {p}, "low": {p}, "close": {p}, "volume": {v}}}"#
    )
}

#[test]
fn fast_path_numbers_at_the_word_boundaries_and_the_digit_limit() {
    // Runs of 8, 9, 16, 17 digits (the SWAR words), 19 digits (the most that are exact),
    // leading zeros in fractions, and `-0`, both mid-line and as the line's last value.
    for v in [
        "12345678",
        "123456789",
        "1234567890123456",
        "0.12345678",
        "0.123456789",
        "1.234567890123456",
        "12345678.12345678",
        "0.000000000000000001",
        "123456789.0123456",
        "0",
        "0.0",
        "-0",
        "-0.0",
        "0.000001",
        "100.5",
        "9007199254740991",
    ] {
        let (bar, _) = fast_and_general_agree(&line_with(v, v));
        let want: f64 = v.parse().unwrap();
        assert_eq!((bar.open.to_bits(), bar.volume.to_bits()), (want.to_bits(), want.to_bits()), "{v}");
    }
    // 17 digits, 20 digits, exponents, leading zeros: general path only.
    for v in [
        "12345678901234567",
        "9007199254740992",
        "1234567890.123456789",
        "12345678901234567890",
        "0.00000000000000000001",
        "1e2",
        "1.5E-3",
        "01",
        "-01.5",
    ] {
        let bounds = TimeBounds::default();
        assert_eq!(fast::decode(line_with("1", v).as_bytes(), &bounds), None, "{v}");
        assert_eq!(fast::decode(line_with(v, "1").as_bytes(), &bounds), None, "{v}");
    }
    // The timestamp's units, up to 19 digits.
    for (ts, ms, unit) in [
        ("1700000000.1239", 1_700_000_000_123, TsUnit::Seconds),
        ("1700000000.123456789", 1_700_000_000_123, TsUnit::Seconds),
        ("99999999999.99", 99_999_999_999_990, TsUnit::Seconds),
        ("1700000000123", 1_700_000_000_123, TsUnit::Millis),
        ("1700000000123456", 1_700_000_000_123, TsUnit::Micros),
        ("1700000000123456789", 1_700_000_000_123, TsUnit::Nanos),
    ] {
        let line = format!(r#"{{"symbol":"A","ts":{ts},"open":1,"high":1,"low":1,"close":1,"volume":1}}"#);
        let (bar, u) = fast_and_general_agree(&line);
        assert_eq!((bar.ts, u), (ms, unit), "{ts}");
    }
}

#[test]
fn fast_path_keys_in_any_order_spelling_and_spacing() {
    for line in [
        // Every key last in the line, its value ending the line (the zero-padded loads).
        r#"{"ts":1700000000,"open":1,"high":1,"low":1,"close":1,"volume":1,"symbol":"A"}"#,
        r#"{"symbol":"A","open":1,"high":1,"low":1,"close":1,"volume":1,"ts":1700000000}"#,
        r#"{"symbol":"A","ts":1,"high":1,"low":1,"close":1,"volume":1,"opening_price":1}"#,
        r#"{"symbol":"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345","ts":1700000000,"open":1,"high":1,"low":1,"close":1,"size":1}"#,
        r#"{"local_time":1700000000,"symbol":"ABCDEFGH","open":2,"high":3,"low":1,"closing_price":2,"volume":0}"#,
        // Whitespace anywhere between tokens, CRLF and LF ends.
        "  { \"symbol\" : \"A\" ,\t\"ts\"\t:\t1700000000 ,\n\"open\":1,\"high\":1 , \"low\" :1,\"close\": 1,  \"volume\":1 }  ",
        "{\"symbol\":\"A\",\"ts\":1700000000,\"open\":1,\"high\":1,\"low\":1,\"close\":1,\"volume\":1}\r\n",
        "{\"symbol\":\"A\",\"ts\":1700000000,\"open\":1,\"high\":1,\"low\":1,\"close\":1,\"volume\":1}\r",
        "{\"symbol\": \"A\", \"ts\": 1700000000, \"open\":  1, \"high\":\r\n1, \"low\": 1, \"close\": 1, \"volume\": 1}",
    ] {
        fast_and_general_agree(line);
    }
}

#[test]
fn fast_path_refuses_keys_it_does_not_know_and_duplicates_under_any_spelling() {
    let bounds = TimeBounds::default();
    let base = [
        ("symbol", "\"A\""),
        ("ts", "1700000000"),
        ("open", "1"),
        ("high", "1"),
        ("low", "1"),
        ("close", "1"),
        ("volume", "1"),
    ];
    let line = |fields: &[(&str, &str)]| {
        let f: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\": {v}")).collect();
        format!("{{{}}}", f.join(", "))
    };
    assert!(fast::decode(line(&base).as_bytes(), &bounds).is_some());
    // One field's key replaced by a prefix or extension of a spelling: the general path
    // misses the field, so a fast path that took it for the field would be wrong.
    for (k, other) in [
        (0, "sym"),
        (0, "symbols"),
        (0, "stock_symbo"),
        (0, "stock_symbol_"),
        (1, "t"),
        (1, "tsx"),
        (1, "time"),
        (1, "timestamps"),
        (1, "local"),
        (2, "opening"),
        (2, "opens"),
        (3, "hig"),
        (4, "lo"),
        (4, "lows"),
        (5, "clos"),
        (5, "closing"),
        (6, "volumes"),
        (6, "siz"),
        (6, "sizes"),
    ] {
        let mut fields = base;
        fields[k].0 = other;
        let text = line(&fields);
        assert_eq!(fast::decode(text.as_bytes(), &bounds), None, "{text}");
        assert!(decode_general(text.as_bytes(), 1, &bounds).is_err(), "{text}");
    }
    // The same field twice under two spellings.
    for (k, other) in [(0, "stock_symbol"), (1, "timestamp"), (1, "local_time"), (2, "opening_price"), (6, "size")] {
        let mut fields = base.to_vec();
        fields.push((other, base[k].1));
        let text = line(&fields);
        assert_eq!(fast::decode(text.as_bytes(), &bounds), None, "{text}");
        assert!(decode_general(text.as_bytes(), 1, &bounds).is_err(), "{text}");
    }
    // Broken or truncated lines, and escapes in the symbol.
    let ok = line(&base);
    for text in [
        &ok[..ok.len() - 1],
        &ok[..ok.len() - 2],
        &ok[..20],
        &ok[..3],
        "{",
        "",
        "{}",
        &format!("{ok},"),
        &format!("{ok}}}"),
        r#"{"symbol":"A\"B","ts":1700000000,"open":1,"high":1,"low":1,"close":1,"volume":1}"#,
        r#"{"symbol":"A\u0042","ts":1700000000,"open":1,"high":1,"low":1,"close":1,"volume":1}"#,
        r#"{"symbol":"A","ts":1700000000,"open":1,"high":1,"low":1,"close":1,"volume":1"#,
        r#"{"symbol":"A","ts":1700000000,"open":1,"high":1,"low":1,"close":1,"volume":}"#,
        r#"{"symbol":"A","ts":1700000000,"open":1,"high":1,"low":1,"close":1,"volume"}"#,
        r#"{"symbol":"A","ts":1700000000,"open":1,"high":1,"low":1,"close":1,"volume":1 1}"#,
        r#"{"symbol":"A","ts":1700000000,"open":1,"high":1,"low":1,"close":1,,"volume":1}"#,
        r#"{"symbol":"A","ts":1700000000,"open":1,"high":1,"low":1,"close":1 "volume":1}"#,
        r#"{"symbol":"A","ts":1700000000,"open":1,"high":1,"low":1,"close":1,"volume":"1"}"#,
    ] {
        let general = decode_general(text.as_bytes(), 1, &bounds);
        match fast::decode(text.as_bytes(), &bounds) {
            None => {}
            Some(r) => panic!("{text:?}: the fast path read {r:?}, the general path {general:?}"),
        }
    }
}
