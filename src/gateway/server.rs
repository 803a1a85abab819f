//! The HTTP side: `POST /ingest` plus the status routes, served by warp on a tokio runtime
//! of the gateway's own, with graceful shutdown.
//!
//! A request is checked in this order, cheapest first: bearer token (`401`), media type
//! (`415`), declared length (`413`), query (`400`), a free request slot
//! (`max-concurrent-requests`, `503`), broker reachable (`503`); then the body is read up to
//! the limit (`413`), within the body-read timeout (`408`) and the gateway's buffered-body
//! budget (`503`; taken for the declared length before the first byte is read, and as chunks
//! arrive otherwise), decoded and validated, the records are handed to the
//! producer within a reservation of queue space (`503` when full), and the answer waits for
//! Kafka's acknowledgement of every record: `202` when all were valid, `400` listing the bad
//! ones (whose dead letters were acknowledged too), `503` with `Retry-After` listing the
//! index of every record Kafka did not acknowledge. A refused body is answered at once and
//! drained (bounded) by the listener afterwards, so clients that send it whole before
//! reading still see the answer.
//!
//! The listener itself ([`crate::http::serve()`]) caps connections and enforces header and
//! idle timeouts.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tickflow_operators::TimeBounds;
use tokio::sync::watch;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};
use warp::{Buf, Filter};

use super::body::{BodyError, IngestQuery, MediaType, RawIndex, decode_body};
use super::config::{BuiltGateway, GatewayArgs, GatewayConfig};
use super::error::GatewayError;
use super::metrics::{GatewayMetrics, RequestCompleted};
use crate::http::limits::{BodyBudget, BodyRejection, BodyRequest, RequestSlots, read_body};
use crate::http::{AuthError, ServeStats};
use crate::kafka::{DeadLetter, dead_letter_raw, encode_bar};
use crate::kafka::{ProduceError, Producer};
use crate::prometheus::{self, Exposition};
use crate::status::{ProcessMetrics, ReadyInfo, render_process_prometheus};

/// At most this many per-record errors are listed in a `400` body (the rest are counted in
/// `errors_omitted`; all of them are in the dead-letter topic).
pub const MAX_LISTED_ERRORS: usize = 1000;

/// One bad record in a `400` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordError {
    /// 0-based index of the record: the line for NDJSON and CSV (header = line 0), the
    /// element for arrays, the row for UDF bodies.
    pub index: u64,
    /// The field the problem is about, as spelled in the input, if any.
    pub field: Option<String>,
    /// What is wrong.
    pub reason: String,
}

/// The body of `202` and of a per-record `400`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IngestReport {
    /// Valid bars acknowledged by Kafka.
    pub accepted: usize,
    /// Records rejected by validation.
    pub rejected: usize,
    /// Rejected records acknowledged on the dead-letter topic.
    pub dead_lettered: usize,
    /// Whether the client asked for all-or-nothing (then `accepted` is 0 if anything was
    /// rejected).
    pub all_or_nothing: bool,
    /// The rejected records, at most [`MAX_LISTED_ERRORS`].
    pub errors: Vec<RecordError>,
    /// Rejected records not listed in `errors`.
    pub errors_omitted: usize,
}

/// Shared by every request.
struct State {
    cfg: BuiltGateway,
    producer: Arc<Producer>,
    metrics: Arc<GatewayMetrics>,
    process: Arc<ProcessMetrics>,
    bounds: TimeBounds,
    budget: BodyBudget,
    slots: RequestSlots,
    serve_stats: Arc<ServeStats>,
}

fn error_reply(status: StatusCode, message: &str) -> Response {
    warp::reply::with_status(warp::reply::json(&serde_json::json!({ "error": message })), status).into_response()
}

fn unavailable(state: &State, message: &str) -> Response {
    unavailable_with(state, serde_json::json!({ "error": message }))
}

/// `503` + `Retry-After` with `body` (an object) and `retry_after_s` added to it.
fn unavailable_with(state: &State, mut body: serde_json::Value) -> Response {
    body["retry_after_s"] = state.cfg.retry_after_secs.into();
    let reply = warp::reply::with_status(warp::reply::json(&body), StatusCode::SERVICE_UNAVAILABLE);
    warp::reply::with_header(reply, "retry-after", state.cfg.retry_after_secs.to_string()).into_response()
}

/// `401` with the reason and `WWW-Authenticate: Bearer`.
fn unauthorized(e: AuthError) -> Response {
    let reply = error_reply(StatusCode::UNAUTHORIZED, &format!("authorization: {e}"));
    warp::reply::with_header(reply, "www-authenticate", "Bearer").into_response()
}

/// The answer to a refused body; `413` and `408` also close the connection (the listener
/// drains what the client still sends, bounded, before closing).
fn body_refused(state: &State, e: &BodyRejection) -> Response {
    match e {
        BodyRejection::Busy { .. } => unavailable(state, &e.to_string()),
        BodyRejection::TooLarge { .. } => {
            let reply = error_reply(StatusCode::PAYLOAD_TOO_LARGE, &e.to_string());
            warp::reply::with_header(reply, "connection", "close").into_response()
        }
        BodyRejection::Timeout(_) => {
            let reply = error_reply(StatusCode::REQUEST_TIMEOUT, &e.to_string());
            warp::reply::with_header(reply, "connection", "close").into_response()
        }
        BodyRejection::Read(_) => error_reply(StatusCode::BAD_REQUEST, &e.to_string()),
    }
}

/// Everything the ingest handler needs from the request.
struct IngestRequest<S> {
    content_type: Option<String>,
    authorization: Option<String>,
    content_length: Option<u64>,
    query: Vec<(String, String)>,
    body: S,
}

async fn ingest<S, B>(state: Arc<State>, req: IngestRequest<S>) -> Response
where
    S: futures_util::Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let started = Instant::now();
    let mut event = RequestCompleted::default();
    let response = handle(&state, req, &mut event).await;
    event.status = response.status().as_u16();
    event.elapsed_ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
    event.emit(&state.metrics, &state.process);
    response
}

async fn handle<S, B>(state: &State, req: IngestRequest<S>, event: &mut RequestCompleted) -> Response
where
    S: futures_util::Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    // Refusals answer at once; the listener drains the unread body afterwards (bounded).
    if let Err(e) = state.cfg.tokens.check(req.authorization.as_deref()) {
        return unauthorized(e);
    }
    let Some(media) = MediaType::from_header(req.content_type.as_deref()) else {
        let message = BodyError::UnsupportedType(req.content_type.unwrap_or_default()).to_string();
        return error_reply(StatusCode::UNSUPPORTED_MEDIA_TYPE, &message);
    };
    let body_req = BodyRequest { declared: req.content_length, limit: state.cfg.max_body_bytes };
    if let Some(len) = req.content_length.filter(|&l| l > body_req.limit) {
        return body_refused(state, &BodyRejection::TooLarge { seen: len, limit: body_req.limit });
    }
    let query = match IngestQuery::from_pairs(&req.query) {
        Ok(q) => q,
        Err(e) => return error_reply(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    // Held until the answer: the body, the decoded records and the wait for Kafka.
    let Some(_slot) = state.slots.try_acquire() else {
        let message = format!(
            "server busy: all {} request slots (gateway.max-concurrent-requests) are in use; retry later",
            state.slots.total()
        );
        return unavailable(state, &message);
    };
    if !state.producer.health().is_up() {
        let reason = ProduceError::BrokerDown(state.producer.health().reason()).to_string();
        return unavailable(state, &reason);
    }

    // Read the body within the limit, the timeout and the gateway-wide budget.
    let (body, body_permit) = match read_body(req.body, body_req, &state.cfg.limits, &state.budget).await {
        Ok(b) => b,
        Err(e) => return body_refused(state, &e),
    };
    event.bytes = body.len() as u64;
    if body.trim_ascii().is_empty() {
        return error_reply(StatusCode::BAD_REQUEST, "empty body: no records");
    }

    let decoded = match decode_body(media, &query, &body, &state.bounds) {
        Ok(d) => d,
        Err(e) => return error_reply(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let numbers = decoded.numbers;
    let records = decoded.records;
    let invalid = records.iter().filter(|r| r.is_err()).count();
    let valid = records.len() - invalid;
    event.records = records.len() as u64;
    event.rejected = invalid as u64;
    let produce_bars = invalid == 0 || !query.all_or_nothing;
    let wanted = invalid + if produce_bars { valid } else { 0 };

    let mut reservation = match state.producer.reserve(wanted) {
        Ok(r) => r,
        Err(e @ ProduceError::TooLarge { .. }) => return error_reply(StatusCode::PAYLOAD_TOO_LARGE, &e.to_string()),
        Err(e) => return unavailable(state, &e.to_string()),
    };

    // Hot path: one reused buffer for every bar of the request.
    if produce_bars {
        let mut buf = Vec::with_capacity(160);
        for (bar, &n) in records.iter().zip(&numbers).filter_map(|(r, n)| Some((r.as_ref().ok()?, n))) {
            buf.clear();
            encode_bar(bar, &mut buf);
            state.producer.send_bar(&mut reservation, n.saturating_sub(1), bar.symbol.as_str(), &buf);
        }
    }
    let mut errors = Vec::new();
    if invalid > 0 {
        let raw_index = RawIndex::new(&body, decoded.kind);
        let received_ms = state.process.now_ms();
        for err in records.iter().filter_map(|r| r.as_ref().err()) {
            let index = err.record().saturating_sub(1);
            let reason = err.kind.to_string();
            let raw = raw_index.raw(err.record());
            let (raw, raw_truncated) = dead_letter_raw(&raw);
            let letter = DeadLetter {
                source: "gateway",
                index,
                field: err.field(),
                reason: reason.clone(),
                content_type: media.name(),
                received_ms,
                raw,
                raw_truncated,
            };
            state.producer.send_dead_letter(&mut reservation, index, &letter.to_json());
            if errors.len() < MAX_LISTED_ERRORS {
                errors.push(RecordError { index, field: err.field().map(String::from), reason });
            }
        }
    }
    drop(body);
    drop(body_permit);

    match state.producer.wait(reservation).await {
        Ok(_) => {}
        Err(e) => {
            let mut answer = serde_json::json!({ "error": e.to_string() });
            if let ProduceError::Unacknowledged { delivered, unacknowledged, .. } = &e {
                tracing::warn!(delivered, failed = unacknowledged.len(), error = %e, "records not acknowledged; answering 503");
                answer["acknowledged"] = (*delivered).into();
                answer["unacknowledged"] = serde_json::json!(unacknowledged);
            }
            return unavailable_with(state, answer);
        }
    }
    let accepted = if produce_bars { valid } else { 0 };
    event.accepted = accepted as u64;
    event.dead_lettered = invalid as u64;
    let report = IngestReport {
        accepted,
        rejected: invalid,
        dead_lettered: invalid,
        all_or_nothing: query.all_or_nothing,
        errors_omitted: invalid - errors.len(),
        errors,
    };
    let status = if invalid == 0 { StatusCode::ACCEPTED } else { StatusCode::BAD_REQUEST };
    warp::reply::with_status(warp::reply::json(&report), status).into_response()
}

/// All of the gateway's routes over `state`.
fn routes(state: Arc<State>) -> BoxedFilter<(Response,)> {
    let st = Arc::clone(&state);
    let ingest_route = warp::path!("ingest")
        .and(warp::post())
        .and(warp::header::optional::<String>("content-type"))
        .and(warp::header::optional::<String>("authorization"))
        .and(warp::header::optional::<u64>("content-length"))
        .and(warp::query::<Vec<(String, String)>>())
        .and(warp::body::stream())
        .then(move |content_type, authorization, content_length, query, body| {
            let req = IngestRequest { content_type, authorization, content_length, query, body };
            ingest(Arc::clone(&st), req)
        });
    let st = Arc::clone(&state);
    let metrics = warp::path!("metrics").and(warp::get()).and(warp::header::optional::<String>("authorization")).map(
        move |auth: Option<String>| {
            if let Err(e) = st.cfg.read_tokens.check(auth.as_deref()) {
                return unauthorized(e);
            }
            // The gateway's own families only: none of the cluster's (watermarks, sinks,
            // candles, partitions, operators) that would read 0 here.
            let mut e = Exposition::new(prometheus::NAMESPACE);
            render_process_prometheus(&mut e, &st.process);
            st.metrics.render_records(&mut e, &st.process);
            let p = &st.producer;
            st.metrics.render_into(&mut e, p.in_flight(), p.capacity(), p.health().is_up());
            st.metrics.render_http(&mut e, &st.serve_stats, &st.budget, &st.slots);
            warp::reply::with_header(e.finish(), "content-type", prometheus::CONTENT_TYPE).into_response()
        },
    );
    // `/ready` from the producer's health as it is now (a delivery failure shows at once,
    // not at the next probe).
    let st = Arc::clone(&state);
    let ready = warp::path!("ready").and(warp::get()).map(move || {
        let mut readiness = st.process.readiness();
        let health = st.producer.health();
        readiness.sink_reachable = health.is_up();
        let mut info = ReadyInfo::from(readiness);
        if !health.is_up() {
            info.reasons.push(format!("kafka: {}", health.reason()));
        }
        let code = if info.ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
        warp::reply::with_status(warp::reply::json(&info), code).into_response()
    });
    let st = Arc::clone(&state);
    let protected = crate::status::routes_with(Arc::clone(&state.process), st.cfg.read_tokens.clone());
    ingest_route.or(metrics).unify().or(ready).unify().or(protected).unify().boxed()
}

/// A running gateway. [`Gateway::shutdown`] (or drop) stops accepting, drains in-flight
/// requests, flushes the producer and joins every thread.
pub struct Gateway {
    addr: SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
    stop: watch::Sender<bool>,
    server: Option<tokio::task::JoinHandle<()>>,
    probe: Option<(crossbeam_channel::Sender<()>, std::thread::JoinHandle<()>)>,
    state: Arc<State>,
}

impl Gateway {
    /// Validates `config`, binds the listen address and starts serving.
    pub fn start(config: &GatewayConfig) -> Result<Gateway, GatewayError> {
        let cfg = config.build()?;
        let producer = Arc::new(Producer::new(
            &cfg.brokers,
            &cfg.topic,
            &cfg.dead_letter_topic,
            cfg.queue_capacity,
            cfg.request_timeout,
            cfg.linger,
        )?);
        let process = Arc::new(ProcessMetrics::with_system_clock(0, 0..1));
        if let Some(w) = process.workers().first() {
            w.set_running(true);
        }
        let mut cfg = cfg;
        cfg.limits.fit_open_files("gateway.limits.max-connections");
        let listener = std::net::TcpListener::bind(cfg.listen)
            .map_err(|source| GatewayError::Bind { addr: cfg.listen, source })?;
        let bind_err = |source| GatewayError::Bind { addr: cfg.listen, source };
        listener.set_nonblocking(true).map_err(bind_err)?;
        let addr = listener.local_addr().map_err(bind_err)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cfg.threads)
            .thread_name("tickflow-gateway")
            .enable_all()
            .build()
            .map_err(|source| GatewayError::Runtime { what: "tokio runtime", source })?;

        let bounds = TimeBounds { allow_non_positive_prices: cfg.allow_non_positive_prices, ..TimeBounds::default() };
        let budget = BodyBudget::new(cfg.limits.max_buffered_body_bytes);
        let slots = RequestSlots::new(cfg.max_concurrent_requests);
        let state = Arc::new(State {
            cfg,
            producer: Arc::clone(&producer),
            metrics: Arc::new(GatewayMetrics::default()),
            process: Arc::clone(&process),
            bounds,
            budget,
            slots,
            serve_stats: Arc::new(ServeStats::default()),
        });

        // The probe blocks on metadata requests: a thread of its own, not the runtime.
        let (probe_stop, probe_rx) = crossbeam_channel::bounded::<()>(1);
        let every = state.cfg.probe_interval;
        let (p, pm) = (Arc::clone(&producer), Arc::clone(&process));
        let probe = std::thread::Builder::new()
            .name("tickflow-gateway-probe".into())
            .spawn(move || {
                loop {
                    // A metadata round trip gets 3 s: one slow answer on a loaded machine is
                    // not an outage (deliveries that fail mark the broker down at once).
                    let up = p.probe(every.max(Duration::from_secs(3)));
                    pm.set_sink_reachable(up);
                    if !up {
                        pm.record_sink_error(format!("kafka: {}", p.health().reason()));
                    }
                    if !matches!(probe_rx.recv_timeout(every), Err(crossbeam_channel::RecvTimeoutError::Timeout)) {
                        break;
                    }
                }
            })
            .map_err(|source| GatewayError::Runtime { what: "probe thread", source })?;

        let (stop, stop_rx) = watch::channel(false);
        let filter = routes(Arc::clone(&state));
        let server = runtime.block_on(async {
            let listener =
                tokio::net::TcpListener::from_std(listener).map_err(|source| GatewayError::Bind { addr, source })?;
            let mut rx = stop_rx;
            let stopped = async move {
                // Err: the handle is gone, which also means stop.
                let _ = rx.wait_for(|s| *s).await;
            };
            let (limits, tls, grace, stats) = (
                state.cfg.limits.clone(),
                state.cfg.tls.clone(),
                state.cfg.shutdown_grace,
                Arc::clone(&state.serve_stats),
            );
            let serve = crate::http::serve(listener, filter, limits, tls, stopped, grace, stats);
            Ok::<_, GatewayError>(tokio::spawn(serve))
        })?;
        process.set_source_connected(true);
        tracing::info!(
            %addr,
            brokers = %state.cfg.brokers,
            topic = %state.cfg.topic,
            max_connections = state.cfg.limits.max_connections,
            max_concurrent_requests = state.cfg.max_concurrent_requests,
            max_buffered_body_bytes = state.cfg.limits.max_buffered_body_bytes,
            auth = !state.cfg.tokens.is_empty(),
            tls = state.cfg.tls.is_some(),
            "gateway listening"
        );
        Ok(Gateway {
            addr,
            runtime: Some(runtime),
            stop,
            server: Some(server),
            probe: Some((probe_stop, probe)),
            state,
        })
    }

    /// The bound address (the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Requests answered with `status` so far.
    pub fn requests(&self, status: u16) -> u64 {
        self.state.metrics.requests(status)
    }

    /// Whether the broker and both topics were reachable at the last probe or delivery.
    pub fn broker_up(&self) -> bool {
        self.state.producer.health().is_up()
    }

    /// Blocks until SIGINT or SIGTERM, then shuts down.
    pub fn run_until_signal(self) -> Result<(), GatewayError> {
        if let Some(rt) = &self.runtime {
            rt.block_on(shutdown_signal());
            tracing::info!("gateway: shutdown signal received; draining");
        }
        self.shutdown()
    }

    /// Stops accepting, lets in-flight requests finish (up to the grace period), flushes
    /// the producer and joins the threads.
    pub fn shutdown(mut self) -> Result<(), GatewayError> {
        self.stop_all()
    }

    fn stop_all(&mut self) -> Result<(), GatewayError> {
        let Some(runtime) = self.runtime.take() else {
            return Ok(());
        };
        self.state.process.set_source_connected(false);
        // Fails only if the server already ended.
        let _ = self.stop.send(true);
        let grace = self.state.cfg.shutdown_grace;
        if let Some(server) = self.server.take() {
            // `serve` itself bounds the drain by the grace period; the margin covers the rest.
            let drained =
                runtime.block_on(async { tokio::time::timeout(grace + Duration::from_secs(1), server).await.is_ok() });
            if !drained {
                tracing::warn!(?grace, "gateway: requests still open after the grace period; closing");
            }
        }
        runtime.shutdown_timeout(Duration::from_secs(1));
        if let Some((stop, thread)) = self.probe.take() {
            let _ = stop.send(());
            if thread.join().is_err() {
                tracing::error!("gateway probe thread panicked");
            }
        }
        let flushed = self.state.producer.flush(grace);
        tracing::info!(addr = %self.addr, in_flight = self.state.producer.in_flight(), "gateway stopped");
        Ok(flushed?)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Err(e) = self.stop_all() {
            tracing::error!(error = %e, "gateway shutdown");
        }
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// `tickflow gateway`: builds the config from `args`, serves until SIGINT/SIGTERM, drains.
pub fn run_gateway(args: GatewayArgs) -> anyhow::Result<()> {
    let config = args.to_config()?;
    let gateway = Gateway::start(&config)?;
    eprintln!("tickflow gateway: listening on http://{}/ingest", gateway.local_addr());
    gateway.run_until_signal()?;
    Ok(())
}
