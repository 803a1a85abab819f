//! `GET /api/v1/stream?symbol=S&timeframe=5m&from=TS`: the dashboard's live updates as
//! Server-Sent Events.
//!
//! Every `serve.push-interval` the stream sends one `update` event: every symbol's latest
//! state (`/api/v1/symbols`), the `/status` of every process, and for the selected series the
//! rows at or after its cursor (the last row sent, so a forming row is re-sent as it changes)
//! and its signal changes. Built from the live state (forwarded to the owner like any other
//! question), so the page never polls per symbol.
//!
//! Bounded: at most `serve.stream-clients` streams (more get 503); each has a queue of
//! [`QUEUE_EVENTS`] events, and a client that lets it fill (it does not read) is dropped;
//! one event carries at most `serve.max-limit` rows. A page left open holds one stream.

use std::convert::Infallible;
use std::sync::Arc;

use serde_json::{Value, json};
use tickflow_operators::time::Millis;
use tokio::sync::mpsc::error::TrySendError;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use super::api::{Api, ApiError, Ctx, Params, Series, parse_symbol, parse_time, reply};

/// Events queued per stream before its client counts as too slow and is dropped.
pub const QUEUE_EVENTS: usize = 4;

/// Opens a stream (or refuses it).
pub fn open(api: Arc<Api>, ctx: Ctx, raw: &str) -> Response {
    let q = Params::parse(raw);
    let parsed = (|| {
        let symbol = q.get("symbol").map(|s| parse_symbol("symbol", Some(s))).transpose()?;
        let series = api.parse_series(q.get("timeframe"), Some(Series::Bars))?;
        let from = q.get("from").map(|v| parse_time("from", v)).transpose()?;
        Ok::<_, ApiError>((symbol, series, q.get("timeframe").unwrap_or("bar").to_string(), from))
    })();
    let (symbol, series, tf, from) = match parsed {
        Ok(p) => p,
        Err(e) => return reply(Err(e)),
    };
    let Ok(permit) = api.streams.clone().try_acquire_owned() else {
        let e = ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            error: format!(
                "{} live streams are open, the most this process serves (serve.stream-clients); retry later",
                api.store.spec().stream_clients
            ),
        };
        return reply(Err(e));
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<warp::sse::Event>(QUEUE_EVENTS);
    let every = api.store.spec().push_interval;
    tokio::spawn(async move {
        let _permit = permit;
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut cursor: Option<Millis> = from;
        loop {
            tick.tick().await;
            if tx.is_closed() {
                break;
            }
            let update = build(&api, &ctx, symbol.as_ref(), series, &tf, &mut cursor).await;
            let event = warp::sse::Event::default().event("update").data(update.to_string());
            match tx.try_send(event) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    tracing::info!(queued = QUEUE_EVENTS, "live stream client does not read its updates; dropped");
                    break;
                }
                Err(TrySendError::Closed(_)) => break,
            }
        }
    });
    let events =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (Ok::<_, Infallible>(e), rx)) });
    let mut resp = warp::sse::reply(warp::sse::keep_alive().stream(events)).into_response();
    resp.headers_mut().insert("cache-control", warp::http::HeaderValue::from_static("no-store"));
    resp
}

async fn build(
    api: &Api,
    ctx: &Ctx,
    symbol: Option<&tickflow_operators::Symbol>,
    series: Series,
    tf: &str,
    cursor: &mut Option<Millis>,
) -> Value {
    let symbols = api.symbols(ctx).await.unwrap_or_else(|e| json!({ "error": e.error }));
    let status = api.cluster_status(ctx).await;
    let mut out = json!({ "symbols": symbols["symbols"], "status": status });
    let Some(symbol) = symbol else { return out };
    let candles = series != Series::Bars;
    let limit = api.store.spec().max_limit;
    // No cursor yet: send only the newest row.
    let query = match cursor {
        Some(c) => format!("symbol={symbol}&timeframe={tf}&from={c}&limit={limit}"),
        None => format!("symbol={symbol}&timeframe={tf}&limit=1"),
    };
    let rows = api.rows(ctx, candles, &query).await;
    let changes = api.signals(ctx, &format!("symbol={symbol}&timeframe={tf}")).await;
    if let Ok(r) = &rows {
        if let Some(ts) = r["rows"].as_array().and_then(|a| a.last()).and_then(|l| l["ts"].as_i64()) {
            *cursor = Some(ts);
        }
    }
    out["symbol"] = symbol.as_str().into();
    out["timeframe"] = tf.into();
    out["rows"] = rows.map_or_else(|e| json!({ "error": e.error }), |r| r["rows"].clone());
    out["changes"] = changes.map_or(Value::Null, |c| c["changes"].clone());
    out
}
