//! Alpha Vantage intraday bars: equities (`function=TIME_SERIES_INTRADAY`, stamped in the
//! exchange's local time, `US/Eastern`) and digital currencies (`function=CRYPTO_INTRADAY`,
//! stamped in UTC). Bars are labelled with their open time (`19:55:00` is 19:55-20:00).
//!
//! Failures come back as HTTP 200: `{"Note": ..}` and `{"Information": ..}` (rate limit,
//! premium-only parameter) are rate limiting; `{"Error Message": ..}` (unknown symbol, bad
//! parameter, bad key) is a permanent error for that symbol.

use serde_json::Value;
use tickflow_operators::time::Millis;
use tickflow_operators::{Bar, Symbol, TimeBounds};

use super::config::SymbolSpec;
use super::eastern;
use super::http::encode_component;
use super::poller::{Reply, Row};
use crate::decode::{DecodeError, DecodeErrorKind, Location};

/// The intervals Alpha Vantage serves.
pub const INTERVALS: [&str; 5] = ["1min", "5min", "15min", "30min", "60min"];

/// Bars in an `outputsize=compact` answer; a longer gap is fetched with `outputsize=full`.
pub const COMPACT_BARS: i64 = 100;

/// The bar length of an interval in ms; `None` for one Alpha Vantage does not serve.
///
/// ```
/// use tickflow::connectors::alphavantage::period_ms;
/// assert_eq!((period_ms("5min"), period_ms("2min")), (Some(300_000), None));
/// ```
pub fn period_ms(interval: &str) -> Option<i64> {
    if !INTERVALS.contains(&interval) {
        return None;
    }
    interval.strip_suffix("min")?.parse::<i64>().ok().map(|m| m * 60_000)
}

fn is_code(s: &str, extra: &[u8]) -> bool {
    !s.is_empty()
        && s.len() <= 16
        && s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || extra.contains(&b))
}

/// A configured symbol: an equity (`IBM`, `BRK.B`) or a digital currency `CODE/MARKET`
/// (`ETH/USD`, produced as symbol `ETHUSD`).
pub fn symbol_spec(s: &str) -> Result<SymbolSpec, String> {
    let s = s.trim();
    let (name, remote, market) = match s.split_once('/') {
        Some((code, market)) => {
            if !is_code(code, b"") || !is_code(market, b"") {
                return Err("is not CODE/MARKET in upper-case letters and digits; expected e.g. \"ETH/USD\"".into());
            }
            (format!("{code}{market}"), code, Some(market.to_string()))
        }
        None => {
            if !is_code(s, b".-") {
                return Err(
                    "is not an equity symbol (upper-case A-Z 0-9 . -) or CODE/MARKET; expected e.g. \"IBM\"".into()
                );
            }
            (s.to_string(), s, None)
        }
    };
    let symbol = Symbol::new(&name).map_err(|e| format!("is not a valid symbol ({e}); expected e.g. \"IBM\""))?;
    Ok(SymbolSpec { symbol, remote: remote.to_string(), market })
}

/// The query URL for one symbol; `full` asks for `outputsize=full`.
///
/// ```
/// use tickflow::connectors::alphavantage::{intraday_url, symbol_spec};
/// let url = intraday_url("http://av", &symbol_spec("ETH/USD").unwrap(), "5min", false, "demo");
/// assert_eq!(url, "http://av/query?function=CRYPTO_INTRADAY&symbol=ETH&market=USD&interval=5min&outputsize=compact&apikey=demo");
/// ```
pub fn intraday_url(base: &str, spec: &SymbolSpec, interval: &str, full: bool, api_key: &str) -> String {
    let size = if full { "full" } else { "compact" };
    let (symbol, interval, key) =
        (encode_component(&spec.remote), encode_component(interval), encode_component(api_key));
    match &spec.market {
        None => format!(
            "{base}/query?function=TIME_SERIES_INTRADAY&symbol={symbol}&interval={interval}&outputsize={size}&apikey={key}"
        ),
        Some(m) => format!(
            "{base}/query?function=CRYPTO_INTRADAY&symbol={symbol}&market={}&interval={interval}&outputsize={size}&apikey={key}",
            encode_component(m)
        ),
    }
}

/// The zone a body's times are in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Zone {
    Eastern,
    Utc,
}

/// A `200` body: rows, or the rate-limit / error answers Alpha Vantage sends with `200`.
pub fn parse_intraday(body: &[u8], spec: &SymbolSpec, bounds: &TimeBounds) -> Reply {
    let transient = |message: String| Reply::Transient { retry_after: None, message };
    let doc: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return transient(format!("not JSON: {e}")),
    };
    let Some(obj) = doc.as_object() else {
        return transient("not a JSON object".into());
    };
    let text = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_owned);
    if let Some(m) = obj.get("Error Message") {
        return Reply::Rejected(format!("Error Message: {}", text(m)));
    }
    for key in ["Note", "Information"] {
        if let Some(m) = obj.get(key) {
            return Reply::RateLimited { retry_after: None, message: format!("{key}: {}", text(m)) };
        }
    }
    let zone_name = obj
        .get("Meta Data")
        .and_then(Value::as_object)
        .and_then(|m| m.iter().find(|(k, _)| k.ends_with("Time Zone")))
        .and_then(|(_, v)| v.as_str());
    let zone = match zone_name {
        Some("US/Eastern" | "America/New_York" | "EST5EDT") => Zone::Eastern,
        Some("UTC" | "Etc/UTC" | "GMT") => Zone::Utc,
        Some(other) => return Reply::Rejected(format!("unsupported time zone {other:?} (supported: US/Eastern, UTC)")),
        None if spec.market.is_some() => Zone::Utc,
        None => Zone::Eastern,
    };
    let Some(series) = obj.iter().find(|(k, _)| k.starts_with("Time Series")).and_then(|(_, v)| v.as_object()) else {
        let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        return transient(format!("no \"Time Series\" object (keys: {keys:?})"));
    };
    let rows = series
        .iter()
        .enumerate()
        .map(|(i, (time, fields))| {
            let ts = eastern::parse_wall_time(time).map(|w| if zone == Zone::Eastern { eastern::to_utc(w) } else { w });
            let bar = decode_row(spec.symbol, time, ts, fields, bounds)
                .map_err(|kind| DecodeError::new(Location::Record(i as u64 + 1), kind));
            let raw = if bar.is_err() {
                let mut m = serde_json::Map::new();
                m.insert(time.clone(), fields.clone());
                Value::Object(m).to_string()
            } else {
                String::new()
            };
            Row { ts, bar, raw }
        })
        .collect();
    Reply::Rows(rows)
}

fn decode_row(
    symbol: Symbol,
    time: &str,
    ts: Option<Millis>,
    fields: &Value,
    bounds: &TimeBounds,
) -> Result<Bar, DecodeErrorKind> {
    let ts = ts.ok_or_else(|| DecodeErrorKind::Timestamp {
        field: "timestamp".into(),
        value: format!("{time:?}"),
        reason: "expected \"YYYY-MM-DD HH:MM:SS\"".into(),
    })?;
    let Some(fields) = fields.as_object() else {
        return Err(DecodeErrorKind::WrongType {
            field: time.into(),
            expected: "an object",
            found: fields.to_string(),
        });
    };
    let num = |names: &'static [&'static str]| -> Result<f64, DecodeErrorKind> {
        let name = names[0];
        let v = fields.get(name).ok_or(DecodeErrorKind::Missing { names })?;
        let (txt, shown) = match v {
            Value::String(s) => (s.trim().to_string(), format!("{s:?}")),
            Value::Number(n) => (n.to_string(), n.to_string()),
            other => {
                let expected = "a number or a numeric string";
                return Err(DecodeErrorKind::WrongType { field: name.into(), expected, found: other.to_string() });
            }
        };
        let x: f64 =
            txt.parse().map_err(|_| DecodeErrorKind::NotANumber { field: name.into(), value: shown.clone() })?;
        if !x.is_finite() {
            return Err(DecodeErrorKind::NotFinite { field: name.into(), value: shown });
        }
        Ok(x)
    };
    let bar = Bar::new(
        symbol,
        ts,
        num(&["1. open"])?,
        num(&["2. high"])?,
        num(&["3. low"])?,
        num(&["4. close"])?,
        num(&["5. volume"])?,
    );
    bar.validate(bounds)?;
    Ok(bar)
}
