//! The warp filter mounted on the status server: `/api/v1/*` (read-token guarded, like
//! `/status`) and the dashboard (`/` and `/assets/*`, static, embedded in the binary; the
//! page asks for the token when the API wants one).

use std::sync::Arc;

use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::{Method, StatusCode};
use warp::reply::{Reply, Response};

use super::api::{Api, ApiError, Ctx, MAX_SUMMARY_BODY, reply};
use super::peers::FORWARDED_HEADER;
use crate::http::limits::{BodyRequest, read_body};

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const CHARTS_JS: &str = include_str!("assets/lightweight-charts.standalone.production.js");
const CHARTS_LICENSE: &str = include_str!("assets/lightweight-charts.LICENSE");
const OPENAPI: &str = include_str!("assets/openapi.json");

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let r = warp::reply::with_header(body, "content-type", content_type);
    warp::reply::with_header(r, "cache-control", "no-cache").into_response()
}

/// The API and dashboard routes over `api`.
pub fn routes(api: Arc<Api>) -> BoxedFilter<(Response,)> {
    let index = warp::path::end().and(warp::get()).map(|| asset(INDEX_HTML, "text/html; charset=utf-8"));
    let assets = warp::path!("assets" / String).and(warp::get()).map(|name: String| match name.as_str() {
        "app.js" => asset(APP_JS, "text/javascript; charset=utf-8"),
        "lightweight-charts.standalone.production.js" => asset(CHARTS_JS, "text/javascript; charset=utf-8"),
        "lightweight-charts.LICENSE" => asset(CHARTS_LICENSE, "text/plain; charset=utf-8"),
        _ => warp::reply::with_status("no such asset", StatusCode::NOT_FOUND).into_response(),
    });
    let raw_query = warp::query::raw().or(warp::any().map(String::new)).unify();
    let v1 = warp::path("api")
        .and(warp::path("v1"))
        .and(warp::path::tail())
        .and(warp::method())
        .and(raw_query)
        .and(warp::header::optional::<String>("authorization"))
        .and(warp::header::optional::<String>(FORWARDED_HEADER))
        .and(warp::header::optional::<u64>("content-length"))
        .and(warp::body::stream())
        .then(move |tail: warp::path::Tail, method: Method, raw: String, auth, fwd: Option<String>, declared, body| {
            let api = Arc::clone(&api);
            async move {
                let ctx = Ctx { auth, forwarded: fwd.is_some() };
                let path = tail.as_str().to_string();
                if path == "openapi.json" && method == Method::GET {
                    return asset(OPENAPI, "application/json");
                }
                if let Err(e) = api.authorize(&ctx) {
                    return reply(Err(e));
                }
                match (method.clone(), path.as_str()) {
                    (Method::GET, "symbols") => reply(api.symbols(&ctx).await),
                    (Method::GET, p) if p.starts_with("symbols/") => {
                        let name = decode(&p["symbols/".len()..]);
                        reply(api.symbol(&ctx, &name).await)
                    }
                    (Method::GET, "bars") => reply(api.rows(&ctx, false, &raw).await),
                    (Method::GET, "candles") => reply(api.rows(&ctx, true, &raw).await),
                    (Method::GET, "signals") => reply(api.signals(&ctx, &raw).await),
                    (Method::GET, "summary") => reply(api.summary(&ctx, &raw).await),
                    (Method::GET, "aggregate") => reply(api.aggregate(&ctx, &raw).await),
                    (Method::GET, "stream") => super::stream::open(Arc::clone(&api), ctx, &raw),
                    (Method::POST, "summary") => {
                        let req = BodyRequest { declared, limit: MAX_SUMMARY_BODY };
                        match read_body(body, req, &api.limits, &api.budget).await {
                            Ok((bytes, _permit)) => reply(api.summary_many(&ctx, &bytes).await),
                            Err(e) => {
                                let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
                                reply(Err(ApiError { status, error: format!("body: {e}") }))
                            }
                        }
                    }
                    (m, p @ ("symbols" | "bars" | "candles" | "signals" | "summary" | "aggregate" | "stream")) => {
                        reply(Err(ApiError {
                            status: StatusCode::METHOD_NOT_ALLOWED,
                            error: format!("{m} /api/v1/{p} is not served; see /api/v1/openapi.json"),
                        }))
                    }
                    (m, p) => reply(Err(ApiError {
                        status: StatusCode::NOT_FOUND,
                        error: format!("no route {m} /api/v1/{p}; the routes are listed in /api/v1/openapi.json"),
                    })),
                }
            }
        });
    index.or(assets).unify().or(v1).unify().boxed()
}

/// Percent-decodes a path segment.
fn decode(segment: &str) -> String {
    url::form_urlencoded::parse(format!("s={segment}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}
