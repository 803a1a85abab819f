//! The `/rules` HTTP routes, mounted on the status server (`ExtraRoutes`).
//!
//! - `POST /rules` (JSON [`RuleDef`]): validated (400 with every error), written to the rules
//!   topic, 201 with the rule once this process's mirror has it. Same id = replace.
//! - `GET /rules`: every rule (from the mirror); `GET /rules/{id}`: one, or 404.
//! - `DELETE /rules/{id}`: 204 once deleted; 404 when unknown.
//!
//! With a token configured, every request needs `Authorization: Bearer <token>` (401).
//! Kafka failures answer 503. Errors are `{"errors": ["field: problem; expected ..."]}`.

use std::sync::Arc;

use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};
use warp::{Buf, Filter};

use super::rule::{RuleContext, RuleDef};
use super::store::{RuleStore, StoreError};

/// The request body as bytes (warp does not re-export its `Bytes` type).
fn body_vec<B: Buf>(mut b: B) -> Vec<u8> {
    let mut v = Vec::with_capacity(b.remaining());
    while b.has_remaining() {
        let chunk = b.chunk();
        v.extend_from_slice(chunk);
        let n = chunk.len();
        b.advance(n);
    }
    v
}

/// Where the routes read and write rules: the Kafka-backed [`RuleStore`], or a stand-in in
/// tests.
pub trait RuleBackend: Send + Sync + 'static {
    /// Every rule.
    fn list(&self) -> Vec<RuleDef>;
    /// One rule.
    fn get(&self, id: &str) -> Option<RuleDef>;
    /// Adds or replaces (blocking until visible in [`RuleBackend::list`]).
    fn put(&self, rule: &RuleDef) -> Result<(), StoreError>;
    /// Deletes (blocking until gone from [`RuleBackend::list`]).
    fn delete(&self, id: &str) -> Result<(), StoreError>;
}

impl RuleBackend for RuleStore {
    fn list(&self) -> Vec<RuleDef> {
        self.mirror().list()
    }
    fn get(&self, id: &str) -> Option<RuleDef> {
        self.mirror().get(id)
    }
    fn put(&self, rule: &RuleDef) -> Result<(), StoreError> {
        RuleStore::put(self, rule)
    }
    fn delete(&self, id: &str) -> Result<(), StoreError> {
        RuleStore::delete(self, id)
    }
}

fn errors(code: StatusCode, errors: Vec<String>) -> Response {
    warp::reply::with_status(warp::reply::json(&serde_json::json!({ "errors": errors })), code).into_response()
}

fn authorized(token: &Option<String>, header: Option<String>) -> bool {
    match token {
        None => true,
        Some(t) => header.is_some_and(|h| h.strip_prefix("Bearer ").is_some_and(|given| given == t)),
    }
}

/// The `/rules` routes over `backend`, validating against `ctx`, guarded by `token`.
pub fn routes<B: RuleBackend>(backend: Arc<B>, ctx: RuleContext, token: Option<String>) -> BoxedFilter<(Response,)> {
    let ctx = Arc::new(ctx);
    let token = Arc::new(token);
    let auth = warp::header::optional::<String>("authorization");
    let with = move || {
        let (b, c, t) = (backend.clone(), ctx.clone(), token.clone());
        warp::any().map(move || (b.clone(), c.clone(), t.clone()))
    };

    let post = warp::path!("rules")
        .and(warp::post())
        .and(auth)
        .and(warp::body::content_length_limit(64 * 1024))
        .and(warp::body::bytes().map(body_vec))
        .and(with())
        .then(
            |h: Option<String>, body: Vec<u8>, (b, c, t): (Arc<B>, Arc<RuleContext>, Arc<Option<String>>)| async move {
                if !authorized(&t, h) {
                    return errors(
                        StatusCode::UNAUTHORIZED,
                        vec!["authorization: missing or wrong bearer token".into()],
                    );
                }
                let rule: RuleDef = match serde_json::from_slice(&body) {
                    Ok(r) => r,
                    Err(e) => return errors(StatusCode::BAD_REQUEST, vec![format!("body: {e}")]),
                };
                if let Err(e) = rule.lower(&c) {
                    return errors(StatusCode::BAD_REQUEST, e);
                }
                let r = rule.clone();
                match tokio::task::spawn_blocking(move || b.put(&r)).await {
                    Ok(Ok(())) => {
                        tracing::info!(rule = %rule.id, owner = %rule.owner, "rule stored");
                        warp::reply::with_status(warp::reply::json(&rule), StatusCode::CREATED).into_response()
                    }
                    Ok(Err(e)) => errors(StatusCode::SERVICE_UNAVAILABLE, vec![e.to_string()]),
                    Err(e) => errors(StatusCode::INTERNAL_SERVER_ERROR, vec![e.to_string()]),
                }
            },
        );

    let list = warp::path!("rules").and(warp::get()).and(auth).and(with()).map(
        |h: Option<String>, (b, _, t): (Arc<B>, Arc<RuleContext>, Arc<Option<String>>)| {
            if !authorized(&t, h) {
                return errors(StatusCode::UNAUTHORIZED, vec!["authorization: missing or wrong bearer token".into()]);
            }
            warp::reply::json(&b.list()).into_response()
        },
    );

    let get = warp::path!("rules" / String).and(warp::get()).and(auth).and(with()).map(
        |id: String, h: Option<String>, (b, _, t): (Arc<B>, Arc<RuleContext>, Arc<Option<String>>)| {
            if !authorized(&t, h) {
                return errors(StatusCode::UNAUTHORIZED, vec!["authorization: missing or wrong bearer token".into()]);
            }
            match b.get(&id) {
                Some(r) => warp::reply::json(&r).into_response(),
                None => errors(StatusCode::NOT_FOUND, vec![format!("id: no rule {id:?}")]),
            }
        },
    );

    let delete = warp::path!("rules" / String).and(warp::delete()).and(auth).and(with()).then(
        |id: String, h: Option<String>, (b, _, t): (Arc<B>, Arc<RuleContext>, Arc<Option<String>>)| async move {
            if !authorized(&t, h) {
                return errors(StatusCode::UNAUTHORIZED, vec!["authorization: missing or wrong bearer token".into()]);
            }
            if b.get(&id).is_none() {
                return errors(StatusCode::NOT_FOUND, vec![format!("id: no rule {id:?}")]);
            }
            let i = id.clone();
            match tokio::task::spawn_blocking(move || b.delete(&i)).await {
                Ok(Ok(())) => {
                    tracing::info!(rule = %id, "rule deleted");
                    StatusCode::NO_CONTENT.into_response()
                }
                Ok(Err(e)) => errors(StatusCode::SERVICE_UNAVAILABLE, vec![e.to_string()]),
                Err(e) => errors(StatusCode::INTERNAL_SERVER_ERROR, vec![e.to_string()]),
            }
        },
    );

    post.or(list).unify().or(get).unify().or(delete).unify().boxed()
}

/// `GET /alerts/stats`: the notifier's counters — every delivery attempt's outcome — as JSON
/// (`queued`, `overflowed`, `attempts`, `delivered`, `retried`, `dead_lettered`,
/// `kafka_written`, `kafka_failed`, `questdb_written`).
pub fn stats_route(stats: Arc<crate::alerts::notify::NotifyStats>) -> BoxedFilter<(Response,)> {
    use std::sync::atomic::Ordering::Relaxed;
    warp::path!("alerts" / "stats")
        .and(warp::get())
        .map(move || {
            let s = &stats;
            let body = serde_json::json!({
                "queued": s.queued.load(Relaxed),
                "overflowed": s.overflowed.load(Relaxed),
                "attempts": s.attempts.load(Relaxed),
                "delivered": s.delivered.load(Relaxed),
                "retried": s.retried.load(Relaxed),
                "dead_lettered": s.dead_lettered.load(Relaxed),
                "kafka_written": s.kafka_written.load(Relaxed),
                "kafka_failed": s.kafka_failed.load(Relaxed),
                "questdb_written": s.questdb_written.load(Relaxed),
            });
            warp::reply::json(&body).into_response()
        })
        .boxed()
}
