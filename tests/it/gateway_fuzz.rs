//! Fuzz harness (proptest) for the gateway's body parser: arbitrary bytes and mutated bar
//! bodies under every media type never panic, every record gets exactly one result, every
//! error is locatable in the body, and every accepted bar survives the produce encoding.

use proptest::prelude::*;
use tickflow::decode::decode_json_line;
use tickflow::gateway::body::RawIndex;
use tickflow::gateway::{IngestQuery, MediaType, decode_body};
use tickflow::kafka::encode_bar;
use tickflow_operators::TimeBounds;

fn media() -> impl Strategy<Value = (MediaType, IngestQuery)> {
    prop_oneof![
        Just((MediaType::Json, IngestQuery::default())),
        Just((MediaType::Ndjson, IngestQuery::default())),
        Just((MediaType::Csv, IngestQuery { symbol: Some("F".into()), ..IngestQuery::default() })),
        Just((MediaType::Json, IngestQuery { symbol: Some("BTCIRT".into()), ..IngestQuery::default() })),
    ]
}

/// Bodies that look like what clients send, with random damage.
fn bar_body() -> impl Strategy<Value = Vec<u8>> {
    let value = prop_oneof![
        "-?[0-9]{1,6}(\\.[0-9]{1,4})?",
        Just("NaN".to_string()),
        Just("\"Infinity\"".to_string()),
        Just("null".to_string()),
        Just("\"x\"".to_string()),
        Just("1e999".to_string()),
        Just("17000000[0-9]{2}".to_string()),
    ];
    let obj =
        ("[A-Z]{1,5}", 1_600_000_000i64..1_800_000_000, proptest::collection::vec(value, 5)).prop_map(|(s, ts, v)| {
            format!(
                r#"{{"symbol":"{s}","timestamp":{ts},"open":{},"high":{},"low":{},"close":{},"volume":{}}}"#,
                v[0], v[1], v[2], v[3], v[4]
            )
        });
    (proptest::collection::vec(obj, 0..20), any::<bool>(), any::<u16>(), any::<u8>()).prop_map(
        |(objs, array, cut_at, byte)| {
            let mut body = if array { format!("[{}]", objs.join(",")) } else { objs.join("\n") }.into_bytes();
            // Damage: sometimes cut, sometimes overwrite one byte.
            if !body.is_empty() {
                let at = usize::from(cut_at) % body.len();
                match byte % 4 {
                    0 => body.truncate(at),
                    1 => body[at] = byte,
                    _ => {}
                }
            }
            body
        },
    )
}

fn check(media: MediaType, query: &IngestQuery, body: &[u8]) -> Result<(), TestCaseError> {
    let bounds = TimeBounds::default();
    let Ok(decoded) = decode_body(media, query, body, &bounds) else {
        return Ok(());
    };
    let index = RawIndex::new(body, decoded.kind);
    let mut buf = Vec::new();
    let mut last = 0;
    for r in &decoded.records {
        match r {
            Ok(bar) => {
                buf.clear();
                encode_bar(bar, &mut buf);
                let back = decode_json_line(&buf, 1, &bounds);
                prop_assert_eq!(back.as_ref(), Ok(bar));
            }
            Err(e) => {
                prop_assert!(e.record() >= 1);
                prop_assert!(e.record() >= last, "record numbers ascend");
                last = e.record();
                let raw = index.raw(e.record());
                prop_assert!(raw.len() <= body.len() * 2 + 64);
                prop_assert!(!e.to_string().is_empty());
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic((media, query) in media(), body in proptest::collection::vec(any::<u8>(), 0..512)) {
        check(media, &query, &body)?;
    }

    #[test]
    fn damaged_bar_bodies_never_panic((media, query) in media(), body in bar_body()) {
        check(media, &query, &body)?;
    }

    #[test]
    fn undamaged_ndjson_has_one_result_per_line(n in 0usize..30) {
        let line = r#"{"symbol":"A","timestamp":1700000000,"open":1,"high":2,"low":0.5,"close":1.5,"volume":3}"#;
        let body = vec![line; n].join("\n");
        let d = decode_body(MediaType::Ndjson, &IngestQuery::default(), body.as_bytes(), &TimeBounds::default()).unwrap();
        prop_assert_eq!(d.records.len(), n);
        prop_assert!(d.records.iter().all(Result::is_ok));
    }
}
