//! The bad-input corpus: every case gets its documented status and error text, good
//! records of mixed batches are produced exactly once, and the gateway keeps serving.
//! Runs against a real broker (Tansu, started here) because even a `400` waits for the
//! dead letters' acknowledgement.

use std::collections::HashSet;
use std::time::Duration;

use crate::support::gateway::*;
use tickflow::decode::decode_json_line;
use tickflow_operators::TimeBounds;

const TOKEN: &str = "corpus-token-0123456789";
const LIMIT: u64 = 4 * 1024 * 1024;

/// What a case must answer.
enum Expect {
    /// 202 with this many accepted.
    Accepted(u64),
    /// 400 with per-record errors: accepted count, and the first error's index, field and
    /// a fragment of its reason.
    Rejected { accepted: u64, rejected: u64, index: u64, field: Option<&'static str>, reason: &'static str },
    /// A request-level answer: status and a fragment of `error`.
    Request(u16, &'static str),
}
use Expect::*;

struct Case {
    name: &'static str,
    content_type: Option<&'static str>,
    query: String,
    auth: Option<String>,
    body: Vec<u8>,
    expect: Expect,
}

/// A valid bar object for case `n`, record `i` (unique symbol+timestamp across the corpus).
fn good(n: usize, i: usize) -> String {
    format!(
        r#"{{"symbol":"C{n:03}","timestamp":{},"open":10.5,"high":11,"low":10,"close":10.75,"volume":100}}"#,
        1_700_000_000 + i as u64 * 60
    )
}

/// A bar object with one field's raw JSON text replaced.
fn with(field: &str, raw: &str) -> String {
    let mut fields = vec![
        ("symbol", "\"X\"".to_string()),
        ("timestamp", "1700000000".into()),
        ("open", "10".into()),
        ("high", "11".into()),
        ("low", "9".into()),
        ("close", "10.5".into()),
        ("volume", "100".into()),
    ];
    for f in &mut fields {
        if f.0 == field {
            f.1 = raw.to_string();
        }
    }
    let inner: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
    format!("{{{}}}", inner.join(","))
}

fn json_case(name: &'static str, body: impl Into<Vec<u8>>, expect: Expect) -> Case {
    Case { name, content_type: Some("application/json"), query: String::new(), auth: None, body: body.into(), expect }
}

fn rejected(index: u64, field: Option<&'static str>, reason: &'static str) -> Expect {
    Rejected { accepted: 0, rejected: 1, index, field, reason }
}

fn corpus() -> Vec<Case> {
    let mut c: Vec<Case> = Vec::new();
    let nf = |f| rejected(0, Some(f), "is not a finite number");
    // Malformed JSON.
    c.push(json_case("lone brace", "{", rejected(0, None, "invalid JSON")));
    c.push(json_case("unterminated object", r#"{"symbol":"A""#, rejected(0, None, "invalid JSON")));
    c.push(json_case("trailing comma", with("volume", "1,"), rejected(0, None, "invalid JSON")));
    c.push(json_case("single quotes", "{'symbol':'A'}", rejected(0, None, "invalid JSON")));
    c.push(json_case("missing comma", r#"{"symbol":"A" "timestamp":1}"#, rejected(0, None, "invalid JSON")));
    c.push(json_case("bare string", r#""hello""#, rejected(0, None, "invalid JSON")));
    c.push(json_case("bare number", "123", rejected(0, None, "invalid JSON")));
    c.push(json_case("null literal misspelled", with("open", "nul"), rejected(0, None, "invalid JSON")));
    c.push(json_case(
        "invalid UTF-8 in a string",
        {
            let mut b = with("symbol", "\"A\"").into_bytes();
            b[12] = 0xff;
            b
        },
        rejected(0, None, "invalid JSON"),
    ));
    c.push(json_case(
        "raw control character in a string",
        with("symbol", "\"A\u{1}B\""),
        rejected(0, None, "invalid JSON"),
    ));
    c.push(json_case(
        "deep nesting in an unknown field",
        format!(r#"{{"x":{}1{},"symbol":"A"}}"#, "[".repeat(10_000), "]".repeat(10_000)),
        rejected(0, None, "invalid JSON"),
    ));
    c.push(json_case("text after the object", format!("{} trailing", good(11, 0)), rejected(0, None, "invalid JSON")));
    // Truncated bodies.
    c.push(Case {
        name: "NDJSON with a truncated last line",
        content_type: Some("application/x-ndjson"),
        query: String::new(),
        auth: None,
        body: format!("{}\n{}\n{{\"symbol\":\"C012\",\"ti", good(12, 0), good(12, 1)).into_bytes(),
        expect: Rejected { accepted: 2, rejected: 1, index: 2, field: None, reason: "invalid JSON" },
    });
    c.push(json_case(
        "array truncated mid-element",
        format!("[{},{{\"sym", good(13, 0)),
        Rejected { accepted: 1, rejected: 1, index: 1, field: None, reason: "invalid JSON" },
    ));
    c.push(json_case(
        "array without its closing bracket",
        format!("[{}", good(14, 0)),
        Rejected { accepted: 1, rejected: 1, index: 1, field: None, reason: "invalid JSON" },
    ));
    // Wrong types.
    c.push(json_case("open is a boolean", with("open", "true"), rejected(0, Some("open"), "expected")));
    c.push(json_case("open is an array", with("open", "[1]"), rejected(0, Some("open"), "expected")));
    c.push(json_case("open is an object", with("open", r#"{"v":1}"#), rejected(0, Some("open"), "expected")));
    c.push(json_case("open is null", with("open", "null"), rejected(0, Some("open"), "expected")));
    c.push(json_case("symbol is a number", with("symbol", "123"), rejected(0, Some("symbol"), "expected")));
    c.push(json_case("timestamp is a boolean", with("timestamp", "false"), rejected(0, Some("timestamp"), "")));
    c.push(json_case("volume is a word", with("volume", "\"abc\""), rejected(0, Some("volume"), "is not a number")));
    c.push(json_case("close is an empty string", with("close", "\"\""), rejected(0, Some("close"), "is not a number")));
    c.push(json_case("high has a unit", with("high", "\"11 USD\""), rejected(0, Some("high"), "is not a number")));
    // NaN and Infinity, every spelling.
    for (name, raw) in [
        ("NaN token", "NaN"),
        ("\"NaN\" string", "\"NaN\""),
        ("\"nan\" string", "\"nan\""),
        ("\"-nan\" string", "\"-nan\""),
        ("Infinity token", "Infinity"),
        ("-Infinity token", "-Infinity"),
        ("\"inf\" string", "\"inf\""),
        ("\"+inf\" string", "\"+inf\""),
        ("\"-Infinity\" string", "\"-Infinity\""),
        ("\"INFINITY\" string", "\"INFINITY\""),
        ("1e999 overflows", "1e999"),
        ("-1e400 overflows", "-1e400"),
    ] {
        c.push(json_case(name, with("open", raw), nf("open")));
    }
    c.push(json_case("tick price \"NaN\"", r#"{"symbol":"A","timestamp":1700000000,"price":"NaN"}"#, nf("price")));
    c.push(json_case("volume Infinity", with("volume", "Infinity"), nf("volume")));
    // Bar rules.
    c.push(json_case(
        "negative volume",
        with("volume", "-1"),
        rejected(0, Some("volume"), "volume: -1 is negative (rule: volume >= 0)"),
    ));
    c.push(json_case(
        "negative tick size",
        r#"{"symbol":"A","timestamp":1700000000,"price":5,"size":-0.5}"#,
        rejected(0, Some("volume"), "is negative"),
    ));
    c.push(json_case(
        "high below low",
        with("high", "8"),
        rejected(0, Some("high"), "high: 8 is below max(open, close) = 10.5"),
    ));
    c.push(json_case(
        "low above open",
        with("low", "10.2"),
        rejected(0, Some("low"), "low: 10.2 is above min(open, close) = 10"),
    ));
    // Symbols.
    c.push(json_case(
        "empty symbol",
        with("symbol", "\"\""),
        rejected(0, Some("symbol"), "length 0 is outside 1..=32"),
    ));
    c.push(json_case(
        "10 kB symbol",
        with("symbol", &format!("\"{}\"", "S".repeat(10_240))),
        rejected(0, Some("symbol"), "length 10240 is outside 1..=32"),
    ));
    c.push(json_case(
        "symbol with a space",
        with("symbol", "\"A B\""),
        rejected(0, Some("symbol"), "has ' ' at byte 1"),
    ));
    c.push(json_case("unicode symbol", with("symbol", "\"ÄPFEL\""), rejected(0, Some("symbol"), "has 'Ä' at byte 0")));
    c.push(json_case("emoji symbol", with("symbol", "\"📈\""), rejected(0, Some("symbol"), "has '📈'")));
    c.push(json_case(
        "escaped unicode symbol is fine",
        r#"{"symbol":"\u0043050","timestamp":1700000000,"open":1,"high":1,"low":1,"close":1,"volume":1}"#,
        Accepted(1),
    ));
    // Timestamps.
    c.push(json_case(
        "timestamp at 2100 (exclusive bound)",
        with("timestamp", "4102444800000"),
        rejected(0, Some("timestamp"), "outside the accepted range"),
    ));
    c.push(json_case(
        // 1970 and earlier are real history now (the default range starts at 1600-01-01).
        "timestamp before 1600",
        with("timestamp", "-12000000000"),
        rejected(0, Some("timestamp"), "1589-09-26T02:40:00.000Z"),
    ));
    c.push(json_case(
        "far negative timestamp",
        with("timestamp", "-99999999999"),
        rejected(0, Some("timestamp"), "outside the accepted range"),
    ));
    c.push(json_case(
        "far-future year 9999",
        with("timestamp", "\"9999-12-31T23:59:59Z\""),
        rejected(0, Some("timestamp"), "outside the accepted range"),
    ));
    c.push(json_case("timestamp 1e30", with("timestamp", "1e30"), rejected(0, Some("timestamp"), "")));
    c.push(json_case(
        "timestamp not a date",
        with("timestamp", "\"yesterday\""),
        rejected(0, Some("timestamp"), "is not a valid timestamp"),
    ));
    c.push(json_case(
        "month 13",
        with("timestamp", "\"2023-13-01T00:00:00Z\""),
        rejected(0, Some("timestamp"), "is not a valid timestamp"),
    ));
    c.push(json_case(
        "RFC 3339 timestamp is fine",
        r#"{"symbol":"C051","timestamp":"2023-11-14T22:13:20Z","open":1,"high":1,"low":1,"close":1,"volume":1}"#,
        Accepted(1),
    ));
    // Duplicated and conflicting keys, missing fields.
    c.push(json_case(
        "duplicated key",
        r#"{"symbol":"A","symbol":"B","timestamp":1700000000,"open":1,"high":1,"low":1,"close":1,"volume":1}"#,
        rejected(0, Some("symbol"), "\"symbol\" duplicates \"symbol\""),
    ));
    c.push(json_case(
        "duplicated key across aliases",
        r#"{"symbol":"A","stock_symbol":"A","timestamp":1700000000,"open":1,"high":1,"low":1,"close":1,"volume":1}"#,
        rejected(0, Some("stock_symbol"), "duplicates \"symbol\""),
    ));
    c.push(json_case(
        "price and open together",
        r#"{"symbol":"A","timestamp":1700000000,"open":1,"price":1}"#,
        rejected(0, Some("price"), "cannot be combined with \"open\""),
    ));
    c.push(json_case(
        "missing volume",
        r#"{"symbol":"A","timestamp":1700000000,"open":1,"high":1,"low":1,"close":1}"#,
        rejected(0, Some("volume"), "\"volume\" (or \"size\") missing"),
    ));
    c.push(json_case("empty object", "{}", rejected(0, Some("symbol"), "missing")));
    // Arrays, big and mixed.
    let big: Vec<String> = (0..20_000).map(|i| good(60, i)).collect();
    c.push(json_case("array of 20000 bars", format!("[{}]", big.join(",")), Accepted(20_000)));
    let bad: Vec<String> = (0..3000).map(|_| with("volume", "-1")).collect();
    c.push(json_case(
        "array of 3000 bad bars",
        format!("[{}]", bad.join(",")),
        Rejected { accepted: 0, rejected: 3000, index: 0, field: Some("volume"), reason: "is negative" },
    ));
    let mut mixed: Vec<String> = (0..500).map(|i| good(62, i)).collect();
    mixed[250] = with("high", "1");
    c.push(json_case(
        "array with one bad element among 500",
        format!("[{}]", mixed.join(",")),
        Rejected { accepted: 499, rejected: 1, index: 250, field: Some("high"), reason: "is below max(open, close)" },
    ));
    c.push(json_case("empty array", "[]", Accepted(0)));
    c.push(Case {
        name: "all-or-nothing with a bad record",
        content_type: Some("application/x-ndjson"),
        query: "?all_or_nothing=true".into(),
        auth: None,
        body: format!("{}\n{}\n", good(64, 0), with("volume", "-1")).into_bytes(),
        expect: Rejected { accepted: 0, rejected: 1, index: 1, field: Some("volume"), reason: "is negative" },
    });
    // Accepted shapes.
    c.push(Case {
        name: "NDJSON with CRLF and blank lines",
        content_type: Some("application/x-ndjson"),
        query: String::new(),
        auth: None,
        body: format!("{}\r\n\r\n{}\r\n", good(65, 0), good(65, 1)).into_bytes(),
        expect: Accepted(2),
    });
    c.push(json_case("seed format (stock_symbol, opening_price, closing_price)", r#"{"stock_symbol":"C066","timestamp":1700000000.0,"opening_price":10,"high":11,"low":9,"closing_price":10.5,"volume":5}"#, Accepted(1)));
    c.push(json_case(
        "price tick",
        r#"{"symbol":"C067","timestamp":1700000000123,"price":"37000.5","size":0.25}"#,
        Accepted(1),
    ));
    c.push(json_case("byte-order mark", format!("\u{feff}{}", good(68, 0)), Accepted(1)));
    // UDF bodies.
    let udf = |q: &str, body: &str, e| Case {
        name: "udf",
        content_type: Some("application/json"),
        query: q.to_string(),
        auth: None,
        body: body.as_bytes().to_vec(),
        expect: e,
    };
    c.push(Case {
        name: "UDF ok",
        ..udf(
            "?symbol=C069",
            r#"{"s":"ok","t":[1700000000,1700000060],"o":[1,2],"h":[2,3],"l":[1,2],"c":[2,3],"v":["1.5",2]}"#,
            Accepted(2),
        )
    });
    c.push(Case {
        name: "UDF error status",
        ..udf(
            "?symbol=BTCIRT",
            r#"{"s":"error","errmsg":"Invalid symbol"}"#,
            rejected(0, None, "UDF body: error: \"Invalid symbol\""),
        )
    });
    c.push(Case {
        name: "UDF unequal arrays",
        ..udf(
            "?symbol=BTCIRT",
            r#"{"s":"ok","t":[1,2],"o":[1],"h":[1],"l":[1],"c":[1],"v":[1]}"#,
            rejected(0, None, "arrays differ in length"),
        )
    });
    c.push(Case { name: "UDF no data", ..udf("?symbol=BTCIRT", r#"{"s":"no_data"}"#, Accepted(0)) });
    c.push(Case {
        name: "UDF bad row",
        ..udf(
            "?format=udf&symbol=C073",
            r#"{"s":"ok","t":[1700000000,1700000060],"o":[1,2],"h":[2,1],"l":[1,2],"c":[2,3],"v":[1,2]}"#,
            Rejected { accepted: 1, rejected: 1, index: 1, field: Some("high"), reason: "is below" },
        )
    });
    c.push(Case {
        name: "UDF without symbol",
        ..udf("?format=udf", r#"{"s":"no_data"}"#, Request(400, "query parameter symbol: missing"))
    });
    c.push(Case {
        name: "UDF with a 10 kB symbol",
        ..udf(
            &format!("?symbol={}", "S".repeat(10_240)),
            r#"{"s":"no_data"}"#,
            Request(400, "query parameter symbol: symbol: length 10240"),
        )
    });
    // CSV.
    let csv = |body: &str, e| Case {
        name: "csv",
        content_type: Some("text/csv"),
        query: String::new(),
        auth: None,
        body: body.as_bytes().to_vec(),
        expect: e,
    };
    c.push(Case {
        name: "CSV ok",
        ..csv("symbol,ts,open,high,low,close,volume\nC076,1700000000,1,2,1,2,3\n", Accepted(1))
    });
    c.push(Case {
        name: "CSV with a bad row",
        ..csv(
            "symbol,ts,open,high,low,close,volume\nC077,1700000000,1,2,1,2,3\nC077,1700000060,1,2,1,2,-3\n",
            Rejected { accepted: 1, rejected: 1, index: 2, field: Some("volume"), reason: "is negative" },
        )
    });
    c.push(Case { name: "JSON sent as CSV", ..csv(&good(78, 0), rejected(0, None, "header")) });
    c.push(json_case("CSV sent as JSON", "symbol,ts,open\nA,1,2\n", rejected(0, None, "invalid JSON")));
    // Request-level failures.
    let req = |ct: Option<&'static str>, e| Case {
        name: "req",
        content_type: ct,
        query: String::new(),
        auth: None,
        body: good(90, 0).into_bytes(),
        expect: e,
    };
    c.push(Case {
        name: "text/plain",
        ..req(Some("text/plain"), Request(415, "unsupported Content-Type \"text/plain\""))
    });
    c.push(Case { name: "no content type", ..req(None, Request(415, "unsupported Content-Type \"\"")) });
    c.push(Case {
        name: "application/xml",
        ..req(Some("application/xml"), Request(415, "expected one of application/json"))
    });
    c.push(Case {
        name: "form encoded",
        ..req(Some("application/x-www-form-urlencoded"), Request(415, "unsupported Content-Type"))
    });
    c.push(Case {
        name: "no token",
        auth: Some(String::new()),
        ..req(Some("application/json"), Request(401, "authorization: missing Authorization header"))
    });
    c.push(Case {
        name: "wrong token",
        auth: Some("Bearer nope-nope-nope-nope".into()),
        ..req(Some("application/json"), Request(401, "authorization: bearer token not accepted"))
    });
    c.push(Case {
        name: "basic auth",
        auth: Some(format!("Basic {TOKEN}")),
        ..req(Some("application/json"), Request(401, "authorization: Authorization header is not \"Bearer <token>\""))
    });
    c.push(Case {
        name: "unknown query parameter",
        query: "?atomic=1".into(),
        ..req(Some("application/json"), Request(400, "query parameter atomic: unknown"))
    });
    c.push(Case {
        name: "bad format",
        query: "?format=xml".into(),
        ..req(Some("application/json"), Request(400, "query parameter format: \"xml\" is not one of"))
    });
    c.push(Case {
        name: "bad all_or_nothing",
        query: "?all_or_nothing=maybe".into(),
        ..req(Some("application/json"), Request(400, "is not true or false"))
    });
    c.push(json_case("empty body", "", Request(400, "empty body: no records")));
    c.push(json_case("whitespace body", " \n\t ", Request(400, "empty body: no records")));
    c
}

#[test]
fn bad_input_corpus_gets_documented_answers_and_good_records_are_produced_once() {
    let stack = Stack::start(3, |c| {
        c.tokens = vec![TOKEN.into()];
        c.max_body_bytes = LIMIT;
        c.queue_capacity = 30_000;
    });
    let cases = corpus();
    assert!(cases.len() >= 50, "{} cases", cases.len());
    let bearer = format!("Bearer {TOKEN}");
    let mut failures = Vec::new();
    let (mut accepted_total, mut dead_total) = (0u64, 0u64);
    for case in &cases {
        let mut headers: Vec<(&str, &str)> = Vec::new();
        if let Some(ct) = case.content_type {
            headers.push(("content-type", ct));
        }
        match &case.auth {
            None => headers.push(("authorization", &bearer)),
            Some(a) if a.is_empty() => {}
            Some(a) => headers.push(("authorization", a)),
        }
        let r = post(stack.addr(), &format!("/ingest{}", case.query), &headers, &case.body);
        let j: serde_json::Value = serde_json::from_str(&r.body).unwrap_or(serde_json::Value::Null);
        let ok = match &case.expect {
            Accepted(n) => r.status == 202 && j["accepted"] == *n && j["rejected"] == 0,
            Rejected { accepted, rejected, index, field, reason } => {
                let e = &j["errors"][0];
                r.status == 400
                    && j["accepted"] == *accepted
                    && j["rejected"] == *rejected
                    && j["dead_lettered"] == *rejected
                    && e["index"] == *index
                    && e["field"].as_str() == *field
                    && e["reason"].as_str().is_some_and(|s| s.contains(reason))
            }
            Request(status, fragment) => {
                r.status == *status && j["error"].as_str().is_some_and(|s| s.contains(fragment))
            }
        };
        if ok {
            accepted_total += j["accepted"].as_u64().unwrap_or(0);
            dead_total += j["dead_lettered"].as_u64().unwrap_or(0);
        } else {
            let body: String = r.body.chars().take(400).collect();
            failures.push(format!("{}: got {} {}", case.name, r.status, body));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));

    // Over the body limit: answered 413 from the declared length, before the body is read,
    // and for a chunked body once the limit is passed.
    let head = format!(
        "POST /ingest HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nauthorization: {bearer}\r\ncontent-length: {}\r\n\r\n",
        LIMIT + 1
    );
    let r = raw_http(stack.addr(), &head, Vec::new());
    assert_eq!(r.status, 413, "{}", r.body);
    assert!(r.json()["error"].as_str().unwrap().contains("exceeds the limit of 4194304 bytes"), "{}", r.body);
    let head = format!(
        "POST /ingest HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nauthorization: {bearer}\r\ntransfer-encoding: chunked\r\n\r\n"
    );
    let mut chunked = format!("{:x}\r\n", LIMIT + 1).into_bytes();
    chunked.extend(std::iter::repeat_n(b' ', LIMIT as usize + 1));
    chunked.extend_from_slice(b"\r\n0\r\n\r\n");
    let r = raw_http(stack.addr(), &head, chunked);
    assert_eq!(r.status, 413, "{}", r.body);

    // The 3000-error case lists 1000 and counts the rest.
    let big_bad = cases.iter().find(|c| c.name == "array of 3000 bad bars").unwrap();
    let r = post(
        stack.addr(),
        "/ingest",
        &[("content-type", "application/json"), ("authorization", &bearer)],
        &big_bad.body,
    );
    let j = r.json();
    assert_eq!((j["errors"].as_array().unwrap().len(), j["errors_omitted"].as_u64()), (1000, Some(2000)));
    dead_total += 3000;

    // Still alive, and every good record is on the topic exactly once.
    assert_eq!(get(stack.addr(), "/health").status, 200);
    let got = read_topic(&stack.tansu.brokers(), "bars", 3, accepted_total as usize, Duration::from_secs(60));
    assert_eq!(got.len() as u64, accepted_total);
    let mut seen = HashSet::new();
    for rec in &got {
        let bar = decode_json_line(rec.payload.as_bytes(), 1, &TimeBounds::default()).unwrap();
        assert!(seen.insert((bar.symbol, bar.ts)), "duplicate {bar:?}");
    }
    let dlq = read_topic(&stack.tansu.brokers(), "bars.dlq", 1, dead_total as usize, Duration::from_secs(60));
    assert_eq!(dlq.len() as u64, dead_total);
    let metrics = get(stack.addr(), "/metrics").body;
    assert!(metrics.contains("tickflow_gateway_requests_total{code=\"415\"} 4"), "{metrics}");
}
