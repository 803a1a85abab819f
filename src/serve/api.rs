//! The `/api/v1` routes: parameters checked (400 naming the parameter, the value and an
//! example), the question answered from the local [`LiveStore`] or forwarded to the process
//! that owns the symbol ([`Peers`]), errors as `{"error": "..."}`.
//!
//! | route | answer |
//! |---|---|
//! | `GET /api/v1/symbols` | every symbol of the cluster: latest bar, indicators, signal, change |
//! | `GET /api/v1/symbols/{symbol}` | one of them; 404 with the reason when unknown |
//! | `GET /api/v1/bars?symbol=&from=&to=&limit=` | retained enriched bars, oldest first |
//! | `GET /api/v1/candles?symbol=&timeframe=&from=&to=&limit=` | retained candles |
//! | `GET /api/v1/signals?symbol=&timeframe=` | retained signal changes |
//! | `GET /api/v1/summary?symbol=&period=&fields=&timeframe=` | avg / highest / lowest per field, highest gain and loss |
//! | `POST /api/v1/summary` | the same for many symbols |
//! | `GET /api/v1/aggregate?symbol=&field=&fn=&period=&timeframe=` | one aggregate |
//! | `GET /api/v1/stream?symbol=&timeframe=` | the dashboard's live updates (SSE, [`super::stream`]) |
//! | `GET /api/v1/openapi.json` | the OpenAPI document |

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use tickflow_operators::rows::timeframe_label;
use tickflow_operators::time::{Millis, format_rfc3339};
use tickflow_operators::{IndicatorSet, Symbol};
use tokio::sync::Semaphore;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use super::peers::Peers;
use super::query::{Agg, Field, Row, bar_json, candle_json, change_json, close_moves, field_stats, period, range};
use super::store::{LiveStore, Ring};
use crate::http::Tokens;
use crate::http::limits::{BodyBudget, Limits};
use crate::status::ProcessMetrics;

/// Default `limit` of `/bars` and `/candles`.
pub const DEFAULT_LIMIT: usize = 500;
/// Largest `POST /api/v1/summary` body.
pub const MAX_SUMMARY_BODY: u64 = 256 * 1024;

/// What the routes share.
pub struct Api {
    /// This process's live state.
    pub store: Arc<LiveStore>,
    /// Column names and rule names.
    pub set: Arc<IndicatorSet>,
    /// The other processes.
    pub peers: Peers,
    /// Read tokens (empty = open), the status server's.
    pub read: Tokens,
    /// Body-read limits.
    pub limits: Limits,
    /// Buffered-body budget of the summary route.
    pub budget: BodyBudget,
    /// For the dashboard's cluster panel.
    pub metrics: Arc<ProcessMetrics>,
    /// Live stream slots.
    pub streams: Arc<Semaphore>,
}

/// Who asks: the caller's `Authorization`, and whether another process forwarded it.
#[derive(Clone, Debug, Default)]
pub struct Ctx {
    /// The `Authorization` header.
    pub auth: Option<String>,
    /// Answer from the local store only.
    pub forwarded: bool,
}

/// A refused request: status and message.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// `{"error": ...}`.
    pub error: String,
}

/// An answer.
pub type ApiResult = Result<Value, ApiError>;

fn bad(error: String) -> ApiError {
    ApiError { status: StatusCode::BAD_REQUEST, error }
}

/// JSON with the status, errors as `{"error": ...}`.
pub fn reply(r: ApiResult) -> Response {
    match r {
        Ok(v) => warp::reply::json(&v).into_response(),
        Err(e) => {
            let body = warp::reply::json(&json!({ "error": e.error }));
            let mut resp = warp::reply::with_status(body, e.status).into_response();
            if e.status == StatusCode::UNAUTHORIZED {
                resp.headers_mut().insert("www-authenticate", warp::http::HeaderValue::from_static("Bearer"));
            }
            resp
        }
    }
}

/// Query parameters, in order.
#[derive(Clone, Debug, Default)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    /// Parses a raw query string.
    pub fn parse(raw: &str) -> Params {
        Params(url::form_urlencoded::parse(raw.as_bytes()).into_owned().collect())
    }
    /// The first value of `k`.
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }
}

/// Parses a symbol parameter.
pub fn parse_symbol(key: &str, v: Option<&str>) -> Result<Symbol, ApiError> {
    let v = v.ok_or_else(|| bad(format!("{key}: missing; expected e.g. {key}=SYM0001")))?;
    Symbol::new(v).map_err(|e| bad(format!("{key}: {v:?} is not a symbol ({e}); expected e.g. {key}=SYM0001")))
}

/// Parses a time: epoch milliseconds or RFC 3339.
pub fn parse_time(key: &str, v: &str) -> Result<Millis, ApiError> {
    let v = v.trim();
    if let Ok(ms) = v.parse::<i64>() {
        return Ok(ms);
    }
    crate::decode::timestamp::parse_rfc3339(v).map_err(|_| {
        bad(format!(
            "{key}: {v:?} is not a time; expected epoch ms (e.g. 1700000000000) or RFC 3339 (e.g. 2023-11-14T22:13:20Z)"
        ))
    })
}

/// Parses a period: a duration (`90m`, `1h`) or a number of minutes (the seed API's form).
pub fn parse_period(key: &str, v: &Value) -> Result<Millis, ApiError> {
    let err = || {
        bad(format!("{key}: {v} is not a period; expected a duration such as \"1h\" or \"90m\", or minutes such as 60"))
    };
    let ms = match v {
        Value::Number(n) => n.as_f64().filter(|m| m.is_finite()).map(|m| (m * 60_000.0) as Millis).ok_or_else(err)?,
        Value::String(s) if s.trim().parse::<f64>().is_ok() => {
            (s.trim().parse::<f64>().map_err(|_| err())? * 60_000.0) as Millis
        }
        Value::String(s) => humantime::parse_duration(s.trim()).map_err(|_| err())?.as_millis() as Millis,
        _ => return Err(err()),
    };
    if ms <= 0 {
        return Err(bad(format!("{key}: {v} is not positive; expected e.g. \"1h\"")));
    }
    Ok(ms)
}

fn period_label(ms: Millis) -> String {
    humantime::format_duration(Duration::from_millis(ms as u64)).to_string()
}

/// The series a question is about: enriched bars or one timeframe's candles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Series {
    /// Enriched bars.
    Bars,
    /// Candles of the timeframe with this index.
    Candles(usize),
}

impl Api {
    /// The API of process `process` of `built`, over `store`.
    pub fn new(
        built: &crate::config::Built,
        spec: &super::ServeSpec,
        process: usize,
        store: Arc<LiveStore>,
        metrics: Arc<ProcessMetrics>,
    ) -> Api {
        let addrs =
            spec.peers.clone().unwrap_or_else(|| Peers::default_addrs(&built.processes, built.status_listen.port()));
        let opts = &built.status_options;
        Api {
            store,
            set: Arc::new(built.set.clone()),
            peers: Peers::new(process, built.workers, addrs, spec.peer_timeout, opts.tls.is_some()),
            read: opts.read_tokens.clone(),
            limits: opts.limits.clone(),
            budget: BodyBudget::new(MAX_SUMMARY_BODY * 16),
            metrics,
            streams: Arc::new(Semaphore::new(spec.stream_clients)),
        }
    }

    fn timeframes(&self) -> String {
        self.store.spec().timeframes.iter().map(|&t| timeframe_label(t)).collect::<Vec<_>>().join(", ")
    }

    /// Parses `timeframe` (`bar` or a configured one); `default` when absent.
    pub fn parse_series(&self, v: Option<&str>, default: Option<Series>) -> Result<Series, ApiError> {
        let Some(v) = v.map(str::trim) else {
            return default.ok_or_else(|| {
                bad(format!("timeframe: missing; expected one of {} (e.g. timeframe=5m)", self.timeframes()))
            });
        };
        if v == "bar" {
            return Ok(Series::Bars);
        }
        let ms = humantime::parse_duration(v).ok().map(|d| d.as_millis() as Millis);
        match ms.and_then(|m| self.store.timeframe_index(m)) {
            Some(i) => Ok(Series::Candles(i)),
            None => Err(bad(format!(
                "timeframe: {v:?} is not a configured timeframe; expected bar or one of {} (windows.timeframes)",
                self.timeframes()
            ))),
        }
    }

    fn series_label(&self, s: Series) -> String {
        match s {
            Series::Bars => "bar".into(),
            Series::Candles(i) => timeframe_label(self.store.spec().timeframes[i]),
        }
    }

    fn parse_limit(&self, v: Option<&str>) -> Result<usize, ApiError> {
        let max = self.store.spec().max_limit;
        let Some(v) = v else { return Ok(DEFAULT_LIMIT.min(max)) };
        match v.trim().parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(bad(format!("limit: {v:?} is outside 1..={max} (serve.max-limit); expected e.g. limit=500"))),
        }
    }

    fn parse_fields(&self, v: Option<Vec<String>>) -> Result<Vec<(String, Field)>, ApiError> {
        let names =
            v.unwrap_or_else(|| std::iter::once("close".to_string()).chain(self.set.columns().to_vec()).collect());
        if names.is_empty() {
            return Err(bad("fields: empty; expected e.g. fields=close,sma_5".into()));
        }
        names
            .into_iter()
            .map(|n| match Field::resolve(&n, &self.set) {
                Some(f) => Ok((n, f)),
                None => Err(bad(format!(
                    "fields: {n:?} is not a field; expected some of {}",
                    Field::names(&self.set).join(", ")
                ))),
            })
            .collect()
    }

    fn unknown(symbol: &Symbol) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            error: format!(
                "symbol: {symbol} is unknown: no bar of it has been processed by this cluster (GET /api/v1/symbols lists the known ones)"
            ),
        }
    }

    /// Answers locally when this process owns `symbol` (or the request was forwarded),
    /// else forwards `path_query` to the owner.
    async fn routed(
        &self,
        ctx: &Ctx,
        symbol: &Symbol,
        path_query: &str,
        local: impl FnOnce() -> ApiResult,
    ) -> ApiResult {
        let owner = self.peers.owner(symbol);
        if ctx.forwarded || owner == self.peers.me {
            return local();
        }
        self.ask(owner, path_query, ctx, None).await
    }

    /// Asks process `p` and turns its answer into ours.
    pub async fn ask(&self, p: usize, path_query: &str, ctx: &Ctx, body: Option<Vec<u8>>) -> ApiResult {
        let answer = self.peers.ask(p, path_query, ctx.auth.as_deref(), body).await.map_err(|e| ApiError {
            status: StatusCode::BAD_GATEWAY,
            error: format!("process {p} did not answer: {e}"),
        })?;
        let v: Value = serde_json::from_str(&answer.body).map_err(|e| ApiError {
            status: StatusCode::BAD_GATEWAY,
            error: format!("process {p} answered {} with a body that is not JSON: {e}", answer.status),
        })?;
        if (200..300).contains(&answer.status) {
            return Ok(v);
        }
        let error = v.get("error").and_then(Value::as_str).map_or_else(|| v.to_string(), str::to_string);
        Err(ApiError { status: StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY), error })
    }

    fn latest_json(&self) -> Vec<Value> {
        self.store
            .latest()
            .into_iter()
            .map(|(l, prev)| {
                let mut m = Map::new();
                m.insert("symbol".into(), l.bar.symbol.as_str().into());
                m.extend(bar_json(&l, &self.set));
                let change = prev.map(|p| l.bar.close - p);
                m.insert("change".into(), change.map_or(Value::Null, Value::from));
                let pct = prev.filter(|p| *p != 0.0).map(|p| (l.bar.close - p) / p * 100.0);
                m.insert("change_pct".into(), pct.filter(|x| x.is_finite()).map_or(Value::Null, Value::from));
                Value::Object(m)
            })
            .collect()
    }

    /// `GET /api/v1/symbols`: this process's symbols, and (unless forwarded) every other's.
    pub async fn symbols(&self, ctx: &Ctx) -> ApiResult {
        let mut all = self.latest_json();
        let mut errors = Vec::new();
        if !ctx.forwarded {
            let others = (0..self.peers.len()).filter(|&p| p != self.peers.me);
            let asks = others.map(|p| async move { (p, self.ask(p, "/api/v1/symbols", ctx, None).await) });
            for (p, r) in futures_util::future::join_all(asks).await {
                match r {
                    Ok(v) => all.extend(v["symbols"].as_array().cloned().unwrap_or_default()),
                    Err(e) => errors.push(json!({ "process": p, "error": e.error })),
                }
            }
            all.sort_by(|a, b| a["symbol"].as_str().cmp(&b["symbol"].as_str()));
        }
        let timeframes: Vec<String> = self.store.spec().timeframes.iter().map(|&t| timeframe_label(t)).collect();
        Ok(json!({
            "count": all.len(),
            "symbols": all,
            "columns": self.set.columns(),
            "timeframes": timeframes,
            "errors": errors,
        }))
    }

    /// `GET /api/v1/symbols/{symbol}`.
    pub async fn symbol(&self, ctx: &Ctx, name: &str) -> ApiResult {
        let symbol = parse_symbol("symbol", Some(name))?;
        let path = format!("/api/v1/symbols/{symbol}");
        self.routed(ctx, &symbol, &path, || {
            let v = self.latest_json().into_iter().find(|v| v["symbol"] == symbol.as_str());
            v.ok_or_else(|| Self::unknown(&symbol))
        })
        .await
    }

    /// `GET /api/v1/bars` (`series` = bars) and `/api/v1/candles`.
    pub async fn rows(&self, ctx: &Ctx, candles: bool, raw: &str) -> ApiResult {
        let q = Params::parse(raw);
        let symbol = parse_symbol("symbol", q.get("symbol"))?;
        let series = if candles { self.parse_series(q.get("timeframe"), None)? } else { Series::Bars };
        let from = q.get("from").map(|v| parse_time("from", v)).transpose()?;
        let to = q.get("to").map(|v| parse_time("to", v)).transpose()?;
        let limit = self.parse_limit(q.get("limit"))?;
        let path = format!("/api/v1/{}?{raw}", if candles { "candles" } else { "bars" });
        self.routed(ctx, &symbol, &path, || {
            let rows = self
                .store
                .with_symbol(&symbol, |h| match series {
                    Series::Bars => range(h.bars.rows().iter(), from, to, limit)
                        .into_iter()
                        .map(|r| bar_json(r, &self.set))
                        .collect(),
                    Series::Candles(i) => range(h.candles[i].rows().iter(), from, to, limit)
                        .into_iter()
                        .map(|c| candle_json(c, &self.set))
                        .collect::<Vec<_>>(),
                })
                .ok_or_else(|| Self::unknown(&symbol))?;
            Ok(json!({
                "symbol": symbol.as_str(),
                "timeframe": self.series_label(series),
                "count": rows.len(),
                "rows": rows,
            }))
        })
        .await
    }

    /// `GET /api/v1/signals`: retained signal changes of a series.
    pub async fn signals(&self, ctx: &Ctx, raw: &str) -> ApiResult {
        let q = Params::parse(raw);
        let symbol = parse_symbol("symbol", q.get("symbol"))?;
        let series = self.parse_series(q.get("timeframe"), Some(Series::Bars))?;
        let tf = match series {
            Series::Bars => 0,
            Series::Candles(i) => self.store.spec().timeframes[i],
        };
        self.routed(ctx, &symbol, &format!("/api/v1/signals?{raw}"), || {
            let changes = self
                .store
                .with_symbol(&symbol, |h| {
                    h.changes.rows().iter().filter(|c| c.timeframe == tf).map(|c| change_json(c, &self.set)).collect()
                })
                .ok_or_else(|| Self::unknown(&symbol))?;
            Ok(json!({ "symbol": symbol.as_str(), "timeframe": self.series_label(series), "changes": Value::Array(changes) }))
        })
        .await
    }

    /// The rows of `period` of one series of `symbol`, or why not.
    fn period_rows<R: Row + Copy>(
        &self,
        symbol: &Symbol,
        series: Series,
        ms: Millis,
        ring: impl Fn(&super::store::SymbolHistory) -> &Ring<R>,
    ) -> Result<Vec<R>, ApiError> {
        let (rows, last_evicted, oldest, cap) = self
            .store
            .with_symbol(symbol, |h| {
                let r = ring(h);
                (period(r.rows().iter().copied(), ms), r.last_evicted, r.rows().front().map(Row::ts), r.capacity())
            })
            .ok_or_else(|| Self::unknown(symbol))?;
        let end = rows.last().map(Row::ts);
        if let (Some(end), Some(evicted)) = (end, last_evicted) {
            if evicted > end - ms {
                let label = self.series_label(series);
                return Err(bad(format!(
                    "period: {} reaches back before the retention: {symbol} keeps its newest {cap} rows of {label}, \
                     back to {} (serve.retention.{label}); expected a period of at most {}",
                    period_label(ms),
                    oldest.map_or_else(|| "-".into(), format_rfc3339),
                    period_label(end - oldest.unwrap_or(end) + 1),
                )));
            }
        }
        Ok(rows)
    }

    fn summary_local(&self, symbol: &Symbol, series: Series, ms: Millis, fields: &[(String, Field)]) -> ApiResult {
        fn body<R: Row>(rows: &[R], fields: &[(String, Field)]) -> (Map<String, Value>, Value, Value) {
            let f = fields.iter().map(|(n, f)| (n.clone(), field_stats(rows, *f))).collect();
            let (gain, loss) = close_moves(rows);
            (f, gain, loss)
        }
        let (f, gain, loss, n, end) = match series {
            Series::Bars => {
                let rows = self.period_rows(symbol, series, ms, |h| &h.bars)?;
                let (f, g, l) = body(&rows, fields);
                (f, g, l, rows.len(), rows.last().map(|r| r.ts()))
            }
            Series::Candles(i) => {
                let rows = self.period_rows(symbol, series, ms, |h| &h.candles[i])?;
                let (f, g, l) = body(&rows, fields);
                (f, g, l, rows.len(), rows.last().map(|r| r.ts()))
            }
        };
        Ok(json!({
            "symbol": symbol.as_str(),
            "timeframe": self.series_label(series),
            "period": period_label(ms),
            "period_ms": ms,
            "start": end.map(|e| e - ms),
            "end": end,
            "rows": n,
            "fields": f,
            "highest_gain": gain,
            "highest_loss": loss,
        }))
    }

    /// `GET /api/v1/summary`.
    pub async fn summary(&self, ctx: &Ctx, raw: &str) -> ApiResult {
        let q = Params::parse(raw);
        let symbol = parse_symbol("symbol", q.get("symbol"))?;
        let ms = parse_period("period", &Value::from(q.get("period").unwrap_or("1h")))?;
        let series = self.parse_series(q.get("timeframe"), Some(Series::Bars))?;
        let fields =
            self.parse_fields(q.get("fields").map(|f| f.split(',').map(|s| s.trim().to_string()).collect()))?;
        self.routed(ctx, &symbol, &format!("/api/v1/summary?{raw}"), || {
            self.summary_local(&symbol, series, ms, &fields)
        })
        .await
    }

    /// `POST /api/v1/summary` with `{"symbols": [...], "period": "1h"}` or the seed API's
    /// `{"stock_symbol": [...], "period": 60}` (minutes); optional `fields`, `timeframe`.
    pub async fn summary_many(&self, ctx: &Ctx, body: &[u8]) -> ApiResult {
        let v: Value = serde_json::from_slice(body).map_err(|e| {
            bad(format!("body: not JSON ({e}); expected e.g. {{\"symbols\": [\"SYM0001\"], \"period\": \"1h\"}}"))
        })?;
        let list = v.get("symbols").or_else(|| v.get("stock_symbol")).ok_or_else(|| {
            bad("symbols: missing; expected e.g. {\"symbols\": [\"SYM0001\"], \"period\": \"1h\"}".into())
        })?;
        let names: Vec<&str> = match list {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a
                .iter()
                .map(|s| {
                    s.as_str().ok_or_else(|| bad(format!("symbols: {s} is not a string; expected e.g. \"SYM0001\"")))
                })
                .collect::<Result<_, _>>()?,
            other => return Err(bad(format!("symbols: {other} is not a list; expected e.g. [\"SYM0001\"]"))),
        };
        let max = self.store.spec().max_limit;
        if names.is_empty() || names.len() > max {
            return Err(bad(format!("symbols: {} symbols; expected 1..={max} (serve.max-limit)", names.len())));
        }
        let symbols: Vec<Symbol> = names.iter().map(|n| parse_symbol("symbols", Some(n))).collect::<Result<_, _>>()?;
        let ms = parse_period("period", v.get("period").unwrap_or(&Value::from("1h")))?;
        let tf = v.get("timeframe").and_then(Value::as_str);
        let series = self.parse_series(tf, Some(Series::Bars))?;
        let fields = match v.get("fields") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.split(',').map(|s| s.trim().to_string()).collect()),
            Some(Value::Array(a)) => Some(a.iter().map(|s| s.as_str().unwrap_or("").to_string()).collect()),
            Some(other) => {
                return Err(bad(format!("fields: {other} is not a list; expected e.g. [\"close\", \"sma_5\"]")));
            }
        };
        let fields = self.parse_fields(fields)?;

        // Group by owner: one forwarded request per other process.
        let mut by_owner: BTreeMap<usize, Vec<Symbol>> = BTreeMap::new();
        for s in &symbols {
            let p = if ctx.forwarded { self.peers.me } else { self.peers.owner(s) };
            by_owner.entry(p).or_default().push(*s);
        }
        let mut answers: BTreeMap<Symbol, Value> = BTreeMap::new();
        let mut errors: BTreeMap<Symbol, Value> = BTreeMap::new();
        let field_names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
        let asks = by_owner.iter().filter(|(p, _)| **p != self.peers.me).map(|(p, syms)| {
            let body = json!({
                "symbols": syms.iter().map(Symbol::as_str).collect::<Vec<_>>(),
                "period": format!("{ms}ms"),
                "timeframe": self.series_label(series),
                "fields": field_names,
            });
            async move { (*p, syms, self.ask(*p, "/api/v1/summary", ctx, Some(body.to_string().into_bytes())).await) }
        });
        for (p, syms, r) in futures_util::future::join_all(asks).await {
            match r {
                Ok(v) => {
                    for s in v["summaries"].as_array().into_iter().flatten() {
                        if let Some(sym) = s["symbol"].as_str().and_then(|n| Symbol::new(n).ok()) {
                            answers.insert(sym, s.clone());
                        }
                    }
                    for e in v["errors"].as_array().into_iter().flatten() {
                        if let Some(sym) = e["symbol"].as_str().and_then(|n| Symbol::new(n).ok()) {
                            errors.insert(sym, e.clone());
                        }
                    }
                }
                Err(e) => {
                    for s in syms {
                        errors.insert(*s, json!({ "symbol": s.as_str(), "status": e.status.as_u16(), "error": format!("process {p}: {}", e.error) }));
                    }
                }
            }
        }
        for s in by_owner.get(&self.peers.me).into_iter().flatten() {
            match self.summary_local(s, series, ms, &fields) {
                Ok(v) => {
                    answers.insert(*s, v);
                }
                Err(e) => {
                    errors.insert(*s, json!({ "symbol": s.as_str(), "status": e.status.as_u16(), "error": e.error }));
                }
            }
        }
        // In the order asked (each symbol once).
        let mut seen = std::collections::HashSet::new();
        let (mut summaries, mut errs) = (Vec::new(), Vec::new());
        for s in symbols.iter().filter(|s| seen.insert(**s)) {
            if let Some(a) = answers.remove(s) {
                summaries.push(a);
            } else if let Some(e) = errors.remove(s) {
                errs.push(e);
            }
        }
        Ok(
            json!({ "period": period_label(ms), "timeframe": self.series_label(series), "summaries": summaries, "errors": errs }),
        )
    }

    /// `GET /api/v1/aggregate?symbol=S&field=volume&fn=avg&period=1h`.
    pub async fn aggregate(&self, ctx: &Ctx, raw: &str) -> ApiResult {
        let q = Params::parse(raw);
        let symbol = parse_symbol("symbol", q.get("symbol"))?;
        let name = q.get("field").ok_or_else(|| bad("field: missing; expected e.g. field=volume".into()))?;
        let field = self.parse_fields(Some(vec![name.to_string()]))?[0].1;
        let f = q
            .get("fn")
            .ok_or_else(|| bad("fn: missing; expected one of avg, min, max, sum, first, last, count".into()))?;
        let agg = Agg::parse(f).ok_or_else(|| {
            bad(format!("fn: {f:?} is not a function; expected one of avg, min, max, sum, first, last, count"))
        })?;
        let ms = parse_period("period", &Value::from(q.get("period").unwrap_or("1h")))?;
        let series = self.parse_series(q.get("timeframe"), Some(Series::Bars))?;
        self.routed(ctx, &symbol, &format!("/api/v1/aggregate?{raw}"), || {
            let (value, n, end) = match series {
                Series::Bars => {
                    let rows = self.period_rows(&symbol, series, ms, |h| &h.bars)?;
                    (agg.apply(&rows, field), rows.len(), rows.last().map(|r| r.ts()))
                }
                Series::Candles(i) => {
                    let rows = self.period_rows(&symbol, series, ms, |h| &h.candles[i])?;
                    (agg.apply(&rows, field), rows.len(), rows.last().map(|r| r.ts()))
                }
            };
            Ok(json!({
                "symbol": symbol.as_str(),
                "timeframe": self.series_label(series),
                "field": name,
                "fn": f,
                "period": period_label(ms),
                "start": end.map(|e| e - ms),
                "end": end,
                "rows": n,
                "value": value,
            }))
        })
        .await
    }

    /// The `/status` report of every process (for the dashboard's cluster panel).
    pub async fn cluster_status(&self, ctx: &Ctx) -> Vec<Value> {
        let local = serde_json::to_value(crate::status::status_report(&self.metrics)).unwrap_or(Value::Null);
        let others = (0..self.peers.len()).filter(|&p| p != self.peers.me);
        let asks = others.map(|p| async move {
            self.ask(p, "/status", ctx, None)
                .await
                .unwrap_or_else(|e| json!({ "process": { "id": p }, "error": e.error }))
        });
        let mut all = vec![local];
        all.extend(futures_util::future::join_all(asks).await);
        all
    }

    /// Checks the read token.
    pub fn authorize(&self, ctx: &Ctx) -> Result<(), ApiError> {
        self.read
            .check(ctx.auth.as_deref())
            .map_err(|e| ApiError { status: StatusCode::UNAUTHORIZED, error: format!("authorization: {e}") })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_periods_parse_or_say_why() {
        assert_eq!(parse_time("from", "1700000000000"), Ok(1_700_000_000_000));
        assert_eq!(parse_time("from", "2023-11-14T22:13:20Z"), Ok(1_700_000_000_000));
        assert_eq!(
            parse_time("to", "yesterday").unwrap_err().error,
            "to: \"yesterday\" is not a time; expected epoch ms (e.g. 1700000000000) or RFC 3339 (e.g. 2023-11-14T22:13:20Z)"
        );
        assert_eq!(parse_period("period", &json!("1h")), Ok(3_600_000));
        assert_eq!(parse_period("period", &json!(60)), Ok(3_600_000));
        assert_eq!(parse_period("period", &json!("90")), Ok(5_400_000));
        assert_eq!(
            parse_period("period", &json!("soon")).unwrap_err().error,
            "period: \"soon\" is not a period; expected a duration such as \"1h\" or \"90m\", or minutes such as 60"
        );
        assert_eq!(
            parse_period("period", &json!(0)).unwrap_err().error,
            "period: 0 is not positive; expected e.g. \"1h\""
        );
        assert_eq!(parse_symbol("symbol", None).unwrap_err().error, "symbol: missing; expected e.g. symbol=SYM0001");
    }
}
