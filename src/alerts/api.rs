//! The `/rules` HTTP routes, mounted on the status server (`ExtraRoutes`).
//!
//! - `POST /rules` (JSON [`RuleDef`]): validated (400 with every error), written to the rules
//!   topic, 201 with the rule once this process's mirror has it. Same id = replace.
//! - `GET /rules` (`?owner=NAME` keeps that owner's): every rule (from the mirror);
//!   `GET /rules/{id}`: one, or 404.
//! - `DELETE /rules/{id}`: 204 once deleted; 404 when unknown.
//!
//! Access ([`RulesAccess`]): the admin token (`alerts.token`) reads and changes every rule;
//! an owner token (`alerts.owner-tokens`) only its owner's — its `GET /rules` lists only
//! them, another owner's rule is a 404, posting a rule of another owner a 403. Writes need
//! one of these tokens when any is set (and one must be set off loopback:
//! [`AlertsConfig::validate_exposure`]); reads need a read token when the status server has
//! one (the admin token is accepted too). Tokens are compared in constant time
//! ([`Tokens::check`], [`Tokens::matching`]). A rule whose channel cannot work is refused at
//! `POST` (400: a Telegram channel without `alerts.telegram-bot-token`). Answers show channels with their secrets redacted
//! ([`RuleDef::redacted`]). Bodies are read within the listener's limits (64 KiB, the
//! body-read timeout, the buffered-body budget). Kafka failures answer 503. Errors are
//! `{"errors": ["field: problem; expected ..."]}`.

use std::sync::Arc;

use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use super::config::AlertsConfig;
use super::rule::{RuleContext, RuleDef};
use super::store::{RuleStore, StoreError};
use crate::http::limits::{BodyBudget, BodyRejection, BodyRequest, Limits, read_body};
use crate::http::{AuthError, Tokens};

/// Largest `POST /rules` body.
pub const MAX_RULE_BYTES: u64 = 64 * 1024;

/// Who may read and write rules, and the limits bodies are read within. Cheap to clone.
#[derive(Clone, Debug)]
pub struct RulesAccess {
    /// Tokens for `POST`/`DELETE` (empty = open).
    pub write: Tokens,
    /// Tokens for `GET /rules`, `GET /rules/{id}` and `GET /alerts/stats`, the write tokens
    /// included (empty = open).
    pub read: Tokens,
    /// Body-read timeout and drain bound.
    pub limits: Limits,
    /// Buffered-body budget shared by the rule routes.
    pub budget: BodyBudget,
    /// Owner names of `owner_tokens`, in the same order.
    pub owners: Vec<String>,
    /// Per-owner tokens: each sees and changes only its owner's rules.
    pub owner_tokens: Tokens,
}

/// Who a request is, as far as rules go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    /// The admin token, a read token, or open access: every rule.
    All,
    /// An owner token: that owner's rules only.
    Owner(String),
}

impl Principal {
    /// Whether this principal may see (and, with write access, change) `rule`.
    pub fn sees(&self, rule: &RuleDef) -> bool {
        match self {
            Principal::All => true,
            Principal::Owner(o) => rule.owner == *o,
        }
    }
}

impl RulesAccess {
    /// Writes guarded by `cfg`'s token, reads by `read` (plus the write token) when `read`
    /// is not empty, bodies within `limits`.
    pub fn new(cfg: &AlertsConfig, read: &Tokens, limits: &Limits) -> RulesAccess {
        let write = cfg.write_tokens();
        let read = if read.is_empty() { Tokens::none() } else { read.union(&write) };
        let (owners, owner_tokens) = cfg.owners();
        RulesAccess {
            write,
            read,
            limits: limits.clone(),
            budget: BodyBudget::new(limits.max_buffered_body_bytes),
            owners,
            owner_tokens,
        }
    }

    /// Who the request with `header` is, for a write (`write`) or a read. An owner token
    /// wins; otherwise the admin token (writes) or the read tokens (reads) decide, and where
    /// those are empty access is open — except once owner tokens exist: then `/rules` is
    /// never open (reads without read tokens need the admin token).
    pub fn principal(&self, header: Option<&str>, write: bool) -> Result<Principal, AuthError> {
        if !self.owner_tokens.is_empty() {
            let other = match self.owner_tokens.matching(header) {
                Ok(Some(i)) => return Ok(Principal::Owner(self.owners[i].clone())),
                Ok(None) => AuthError::Wrong,
                Err(e) => e,
            };
            let tokens = if write || self.read.is_empty() { &self.write } else { &self.read };
            if tokens.is_empty() {
                return Err(other);
            }
            return tokens.check(header).map(|()| Principal::All);
        }
        let tokens = if write { &self.write } else { &self.read };
        tokens.check(header).map(|()| Principal::All)
    }

    /// Everything open (tests on loopback).
    pub fn open() -> RulesAccess {
        let limits = Limits::default();
        RulesAccess {
            write: Tokens::none(),
            read: Tokens::none(),
            budget: BodyBudget::new(limits.max_buffered_body_bytes),
            limits,
            owners: Vec::new(),
            owner_tokens: Tokens::none(),
        }
    }
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

fn unauthorized(e: AuthError) -> Response {
    let reply = errors(StatusCode::UNAUTHORIZED, vec![format!("authorization: {e}")]);
    warp::reply::with_header(reply, "www-authenticate", "Bearer").into_response()
}

fn body_refused(e: &BodyRejection, retry_after_secs: u64) -> Response {
    let code = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let reply = errors(code, vec![format!("body: {e}")]);
    match e {
        BodyRejection::Busy { .. } => {
            warp::reply::with_header(reply, "retry-after", retry_after_secs.to_string()).into_response()
        }
        BodyRejection::TooLarge { .. } | BodyRejection::Timeout(_) => {
            warp::reply::with_header(reply, "connection", "close").into_response()
        }
        BodyRejection::Read(_) => reply,
    }
}

fn redacted_json(rule: &RuleDef) -> warp::reply::Json {
    warp::reply::json(&rule.redacted())
}

/// The `/rules` routes over `backend`, validating against `ctx`, guarded by `access`.
pub fn routes<B: RuleBackend>(backend: Arc<B>, ctx: RuleContext, access: RulesAccess) -> BoxedFilter<(Response,)> {
    let ctx = Arc::new(ctx);
    let access = Arc::new(access);
    let auth = warp::header::optional::<String>("authorization");
    let with = move || {
        let (b, c, a) = (backend.clone(), ctx.clone(), access.clone());
        warp::any().map(move || (b.clone(), c.clone(), a.clone()))
    };
    type With<B> = (Arc<B>, Arc<RuleContext>, Arc<RulesAccess>);

    let post = warp::path!("rules")
        .and(warp::post())
        .and(auth)
        .and(warp::header::optional::<u64>("content-length"))
        .and(warp::body::stream())
        .and(with())
        .then(|h: Option<String>, declared: Option<u64>, body, (b, c, a): With<B>| async move {
            let req = BodyRequest { declared, limit: MAX_RULE_BYTES };
            let who = match a.principal(h.as_deref(), true) {
                Ok(p) => p,
                Err(e) => return unauthorized(e),
            };
            let (body, _permit) = match read_body(body, req, &a.limits, &a.budget).await {
                Ok(b) => b,
                Err(e) => return body_refused(&e, a.limits.retry_after_secs),
            };
            let rule: RuleDef = match serde_json::from_slice(&body) {
                Ok(r) => r,
                Err(e) => return errors(StatusCode::BAD_REQUEST, vec![format!("body: {e}")]),
            };
            if let Err(e) = rule.lower(&c) {
                return errors(StatusCode::BAD_REQUEST, e);
            }
            let unusable = c.prerequisites(&rule);
            if !unusable.is_empty() {
                return errors(StatusCode::BAD_REQUEST, unusable);
            }
            if let Principal::Owner(o) = &who {
                if rule.owner != *o {
                    return errors(
                        StatusCode::FORBIDDEN,
                        vec![format!(
                            "owner: {:?} is not this token's owner {o:?}; expected \"owner\": {o:?}",
                            rule.owner
                        )],
                    );
                }
                // Replacing a rule of another owner (same id) is not this token's to do.
                if b.get(&rule.id).is_some_and(|old| old.owner != *o) {
                    return errors(StatusCode::FORBIDDEN, vec![format!("id: {:?} belongs to another owner", rule.id)]);
                }
            }
            let r = rule.clone();
            match tokio::task::spawn_blocking(move || b.put(&r)).await {
                Ok(Ok(())) => {
                    tracing::info!(rule = %rule.id, owner = %rule.owner, "rule stored");
                    warp::reply::with_status(redacted_json(&rule), StatusCode::CREATED).into_response()
                }
                Ok(Err(e)) => errors(StatusCode::SERVICE_UNAVAILABLE, vec![e.to_string()]),
                Err(e) => errors(StatusCode::INTERNAL_SERVER_ERROR, vec![e.to_string()]),
            }
        });

    let list = warp::path!("rules")
        .and(warp::get())
        .and(auth)
        .and(warp::query::<std::collections::HashMap<String, String>>())
        .and(with())
        .map(|h: Option<String>, query: std::collections::HashMap<String, String>, (b, _, a): With<B>| {
            let who = match a.principal(h.as_deref(), false) {
                Ok(p) => p,
                Err(e) => return unauthorized(e),
            };
            let owner = query.get("owner");
            let rules: Vec<RuleDef> = b
                .list()
                .iter()
                .filter(|r| who.sees(r) && owner.is_none_or(|o| r.owner == *o))
                .map(RuleDef::redacted)
                .collect();
            warp::reply::json(&rules).into_response()
        });

    let get = warp::path!("rules" / String).and(warp::get()).and(auth).and(with()).map(
        |id: String, h: Option<String>, (b, _, a): With<B>| {
            let who = match a.principal(h.as_deref(), false) {
                Ok(p) => p,
                Err(e) => return unauthorized(e),
            };
            match b.get(&id).filter(|r| who.sees(r)) {
                Some(r) => redacted_json(&r).into_response(),
                None => errors(StatusCode::NOT_FOUND, vec![format!("id: no rule {id:?}")]),
            }
        },
    );

    let delete = warp::path!("rules" / String).and(warp::delete()).and(auth).and(with()).then(
        |id: String, h: Option<String>, (b, _, a): With<B>| async move {
            let who = match a.principal(h.as_deref(), true) {
                Ok(p) => p,
                Err(e) => return unauthorized(e),
            };
            // Another owner's rule is not there, for this token.
            if b.get(&id).filter(|r| who.sees(r)).is_none() {
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
/// Guarded by `access.read`.
pub fn stats_route(stats: Arc<crate::alerts::notify::NotifyStats>, access: &RulesAccess) -> BoxedFilter<(Response,)> {
    use std::sync::atomic::Ordering::Relaxed;
    let read = access.read.clone();
    warp::path!("alerts" / "stats")
        .and(warp::get())
        .and(warp::header::optional::<String>("authorization"))
        .map(move |h: Option<String>| {
            if let Err(e) = read.check(h.as_deref()) {
                return unauthorized(e);
            }
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
