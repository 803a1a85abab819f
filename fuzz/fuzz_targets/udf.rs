//! Nobitex UDF history bodies: rows decode to valid bars that read back identical, written
//! back as a UDF body they decode to the same bars; errors say which row and name a field.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tickflow::decode::TsUnit;
use tickflow::decode::decode_udf;
use tickflow_fuzz::{assert_same_bar, bounds, check_bar, check_error};
use tickflow_operators::Symbol;

fuzz_target!(|data: &[u8]| {
    let permissive = data.first().is_some_and(|b| b & 1 == 1);
    let b = bounds(permissive);
    let symbol = Symbol::new("BTCIRT").unwrap();
    match decode_udf(data, symbol, &b) {
        Err(e) => {
            assert_eq!(e.record(), 1, "a whole-body error is record 1");
            check_error(&e, data.len());
        }
        Ok(rows) => {
            let mut good = Vec::new();
            for (i, r) in rows.iter().enumerate() {
                match r {
                    Ok(bar) => {
                        assert_eq!(bar.symbol, symbol);
                        check_bar(bar, &b);
                        good.push(*bar);
                    }
                    Err(e) => {
                        assert_eq!(e.record(), i as u64 + 1, "row {} reported as {}", i + 1, e.record());
                        check_error(e, data.len());
                    }
                }
            }
            // The good rows written back as a UDF body (t in seconds) decode to the same bars.
            let col = |f: &dyn Fn(&tickflow_operators::Bar) -> String| good.iter().map(f).collect::<Vec<_>>().join(",");
            let body = format!(
                r#"{{"s":"ok","t":[{}],"o":[{}],"h":[{}],"l":[{}],"c":[{}],"v":[{}]}}"#,
                col(&|x| TsUnit::Seconds.format(x.ts)),
                col(&|x| format!("{:?}", x.open)),
                col(&|x| format!("{:?}", x.high)),
                col(&|x| format!("{:?}", x.low)),
                col(&|x| format!("{:?}", x.close)),
                col(&|x| format!("\"{:?}\"", x.volume)),
            );
            let back =
                decode_udf(body.as_bytes(), symbol, &b).unwrap_or_else(|e| panic!("{body:?} does not decode: {e}"));
            assert_eq!(back.len(), good.len());
            for (a, r) in good.iter().zip(&back) {
                match r {
                    Ok(x) => assert_same_bar(a, x, "UDF written back"),
                    Err(e) => panic!("{body:?}: {e}"),
                }
            }
        }
    }
});
