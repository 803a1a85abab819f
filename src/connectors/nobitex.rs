//! Nobitex's public OHLC endpoint, `GET /market/udf/history?symbol=BTCIRT&resolution=1&
//! from=<unix s>&to=<unix s>`, answered with a UDF body (`{"s":"ok","t":[..],"o":[..],..}`,
//! `{"s":"no_data"}` or `{"s":"error","errmsg":".."}`). Bars are stamped with their open
//! time in unix seconds; prices of `..IRT` markets are in rials. The body is decoded by
//! [`decode_udf`], the same decoder the gateway uses for UDF uploads.

use serde_json::Value;
use tickflow_operators::time::Millis;
use tickflow_operators::{Symbol, TimeBounds};

use super::config::SymbolSpec;
use super::http::encode_component;
use super::poller::{Reply, Row};
use crate::decode::{DecodeErrorKind, decode_udf};

/// The markets polled when `symbols` is not configured.
pub const SEED_SYMBOLS: [&str; 5] = ["BTCIRT", "ETHIRT", "USDTIRT", "ETCIRT", "SHIBIRT"];

/// The resolutions Nobitex serves: minutes, or `D` for days.
pub const RESOLUTIONS: [&str; 10] = ["1", "5", "15", "30", "60", "180", "240", "360", "720", "D"];

/// The bar length of a resolution in ms; `None` for one Nobitex does not serve.
///
/// ```
/// use tickflow::connectors::nobitex::period_ms;
/// assert_eq!((period_ms("15"), period_ms("D"), period_ms("2")), (Some(900_000), Some(86_400_000), None));
/// ```
pub fn period_ms(resolution: &str) -> Option<i64> {
    match resolution {
        "D" => Some(86_400_000),
        r if RESOLUTIONS.contains(&r) => r.parse::<i64>().ok().map(|m| m * 60_000),
        _ => None,
    }
}

/// A configured Nobitex market symbol (`BTCIRT`): upper-case letters and digits.
pub fn symbol_spec(s: &str) -> Result<SymbolSpec, String> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()) {
        return Err("is not a Nobitex market symbol (upper-case A-Z and 0-9); expected e.g. \"BTCIRT\"".into());
    }
    let symbol = Symbol::new(s).map_err(|e| format!("is not a valid symbol ({e}); expected e.g. \"BTCIRT\""))?;
    Ok(SymbolSpec { symbol, remote: s.to_string(), market: None })
}

/// The history URL for `[from_s, to_s]` (unix seconds, both inclusive).
///
/// ```
/// use tickflow::connectors::nobitex::history_url;
/// assert_eq!(
///     history_url("http://127.0.0.1:8081", "BTCIRT", "1", 1704067200, 1704067499),
///     "http://127.0.0.1:8081/market/udf/history?symbol=BTCIRT&resolution=1&from=1704067200&to=1704067499"
/// );
/// ```
pub fn history_url(base: &str, symbol: &str, resolution: &str, from_s: i64, to_s: i64) -> String {
    format!(
        "{base}/market/udf/history?symbol={}&resolution={}&from={from_s}&to={to_s}",
        encode_component(symbol),
        encode_component(resolution)
    )
}

/// A `200` body: rows (none for `no_data`), [`Reply::Rejected`] for `"s":"error"` (an
/// unknown symbol, a bad range: retrying at once will not help), [`Reply::Transient`] for
/// a body that is not a UDF answer at all (a proxy's error page).
pub fn parse_history(body: &[u8], symbol: Symbol, bounds: &TimeBounds) -> Reply {
    match decode_udf(body, symbol, bounds) {
        Ok(results) => {
            // Only bad rows need their raw values (for the dead letter and to place them in
            // time); parse the body a second time only then.
            let doc: Option<Value> =
                if results.iter().any(Result::is_err) { serde_json::from_slice(body).ok() } else { None };
            let rows = results
                .into_iter()
                .enumerate()
                .map(|(i, r)| match r {
                    Ok(bar) => Row { ts: Some(bar.ts), bar: Ok(bar), raw: String::new() },
                    Err(e) => {
                        let (ts, raw) = raw_row(doc.as_ref(), i);
                        Row { ts, bar: Err(e), raw }
                    }
                })
                .collect();
            Reply::Rows(rows)
        }
        Err(e) if matches!(&e.kind, DecodeErrorKind::Udf { message } if message.starts_with("error:")) => {
            Reply::Rejected(e.kind.to_string())
        }
        Err(e) => Reply::Transient { retry_after: None, message: format!("not a UDF history body: {}", e.kind) },
    }
}

/// Row `i` of a UDF body as a JSON object (`{"t":..,"o":..,..}`) and its time, if readable.
fn raw_row(doc: Option<&Value>, i: usize) -> (Option<Millis>, String) {
    let mut row = serde_json::Map::new();
    for k in ["t", "o", "h", "l", "c", "v"] {
        if let Some(x) = doc.and_then(|d| d.get(k)).and_then(|a| a.get(i)) {
            row.insert(k.to_string(), x.clone());
        }
    }
    let ts = row
        .get("t")
        .and_then(|t| t.as_f64().or_else(|| t.as_str()?.trim().parse().ok()))
        .filter(|s: &f64| s.is_finite() && s.abs() < 1e15)
        .map(|s| (s * 1000.0).round() as Millis);
    (ts, Value::Object(row).to_string())
}
