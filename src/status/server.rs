//! The status HTTP server: warp on a tokio runtime thread of its own.
//!
//! Timely workers are synchronous threads and must never wait on async code, so the server
//! gets a dedicated thread running a current-thread tokio runtime. It only reads the shared
//! [`ProcessMetrics`]; the workers never wait on it. A 1 s interval task on the same runtime
//! takes the rate samples.
//!
//! Routes: `GET /health`, `GET /ready`, `GET /status`, `GET /metrics` (see [`routes`]), plus
//! any extra filter passed in (tickflow's `/rules` endpoints), tried after these. With read
//! tokens configured, `/status` and `/metrics` need one (`/health` and `/ready` stay open
//! for probes). Connections are served by [`crate::http::serve()`]: capped, with header and
//! idle timeouts.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::watch;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use super::error::StatusError;
use super::process::ProcessMetrics;
use super::prometheus;
use super::snapshot::{ReadyInfo, status_report};
use crate::http::auth::validate_token;
use crate::http::{HttpLimits, Limits, ServeStats, Tls, TlsFiles, Tokens};

/// Routes mounted next to the built-in ones: any warp filter mapped to a [`Response`]
/// (`.map(|r| r.into_response()).boxed()`).
pub type ExtraRoutes = BoxedFilter<(Response,)>;

/// Tunables of [`StatusServer::start_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerOptions {
    /// How often to sample counters for rates; `None` disables the sampler (tests sample by
    /// hand with [`ProcessMetrics::sample`]).
    pub sample_interval: Option<Duration>,
    /// How long shutdown waits for in-flight requests before closing connections.
    pub shutdown_grace: Duration,
    /// Tokens for `/status` and `/metrics`; empty = open.
    pub read_tokens: Tokens,
    /// Timeouts and caps of the listener.
    pub limits: Limits,
    /// Serve HTTPS with this certificate; `None` = plain HTTP.
    pub tls: Option<Tls>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            sample_interval: Some(Duration::from_secs(1)),
            shutdown_grace: Duration::from_secs(5),
            read_tokens: Tokens::none(),
            limits: Limits::default(),
            tls: None,
        }
    }
}

/// The env var that sets `status.read-token` (it wins over the file).
pub const READ_TOKEN_ENV: &str = "TICKFLOW_STATUS_READ_TOKEN";

impl ServerOptions {
    /// The options `[status]` asks for: the read token (from [`READ_TOKEN_ENV`] when set),
    /// required when `require` is set, `[status.limits]` and `[status.tls]`. Problems are
    /// appended to `errs`, one message each.
    pub fn from_config(
        read_token: Option<&str>,
        require: bool,
        limits: &HttpLimits,
        tls: Option<&TlsFiles>,
        errs: &mut Vec<String>,
    ) -> ServerOptions {
        let env = std::env::var(READ_TOKEN_ENV).ok().filter(|t| !t.trim().is_empty());
        let token = env.as_deref().or(read_token);
        match token {
            Some(t) => errs.extend(validate_token("status.read-token", t.trim())),
            None if require => errs.push(format!(
                "status.read-token: not set, and status.require-read-token = true; set a secret of at least 16 \
                 characters with {READ_TOKEN_ENV}=<secret> (or status.read-token in the config file)"
            )),
            None => {}
        }
        let limits = limits.build("status").unwrap_or_else(|e| {
            errs.extend(e);
            Limits::default()
        });
        let tls = tls.and_then(|t| t.load("status").map_err(|e| errs.push(e)).ok());
        ServerOptions { read_tokens: Tokens::new(token), limits, tls, ..ServerOptions::default() }
    }
}

/// The built-in routes over `metrics`, boxed so they can be served, tested with
/// `warp::test`, or merged into a larger filter.
///
/// - `GET /health`: 200 `{"status":"ok"}`.
/// - `GET /ready`: 200 when ready, else 503; body [`ReadyInfo`].
/// - `GET /status`: the [`StatusReport`](super::StatusReport) as JSON.
/// - `GET /metrics`: Prometheus text format 0.0.4.
pub fn routes(metrics: Arc<ProcessMetrics>) -> BoxedFilter<(Response,)> {
    routes_with(metrics, Tokens::none())
}

/// [`routes`] with `/status` and `/metrics` guarded by `read` (empty = open); `401` with
/// `WWW-Authenticate: Bearer` otherwise.
pub fn routes_with(metrics: Arc<ProcessMetrics>, read: Tokens) -> BoxedFilter<(Response,)> {
    let with_metrics = warp::any().map(move || Arc::clone(&metrics));
    let read = Arc::new(read);
    let guard = move || {
        let read = Arc::clone(&read);
        warp::header::optional::<String>("authorization").and_then(move |h: Option<String>| {
            let read = Arc::clone(&read);
            async move {
                match read.check(h.as_deref()) {
                    Ok(()) => Ok::<_, warp::Rejection>(None),
                    Err(e) => Ok(Some(unauthorized(&format!("authorization: {e}")))),
                }
            }
        })
    };

    let health = warp::path!("health")
        .and(warp::get())
        .map(|| warp::reply::json(&serde_json::json!({ "status": "ok" })).into_response());

    let ready = warp::path!("ready").and(warp::get()).and(with_metrics.clone()).map(|m: Arc<ProcessMetrics>| {
        let info = ReadyInfo::from(m.readiness());
        let code = if info.ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
        warp::reply::with_status(warp::reply::json(&info), code).into_response()
    });

    let status = warp::path!("status").and(warp::get()).and(guard()).and(with_metrics.clone()).map(
        |denied: Option<Response>, m: Arc<ProcessMetrics>| {
            denied.unwrap_or_else(|| warp::reply::json(&status_report(&m)).into_response())
        },
    );

    let exposition = warp::path!("metrics").and(warp::get()).and(guard()).and(with_metrics).map(
        |denied: Option<Response>, m: Arc<ProcessMetrics>| {
            denied.unwrap_or_else(|| {
                warp::reply::with_header(prometheus::render(&m), "content-type", prometheus::CONTENT_TYPE)
                    .into_response()
            })
        },
    );

    health.or(ready).unify().or(status).unify().or(exposition).unify().boxed()
}

/// `401` with a JSON `{"error": ...}` body and `WWW-Authenticate: Bearer`.
pub(crate) fn unauthorized(message: &str) -> Response {
    let body = warp::reply::json(&serde_json::json!({ "error": message }));
    let reply = warp::reply::with_status(body, StatusCode::UNAUTHORIZED);
    warp::reply::with_header(reply, "www-authenticate", "Bearer").into_response()
}

/// A running status server. Dropping it shuts the server down (gracefully) and joins its
/// thread, as [`StatusServer::shutdown`] does.
#[derive(Debug)]
pub struct StatusServer {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl StatusServer {
    /// Binds `addr` (port 0 picks a free port) and serves the built-in routes plus `extra`
    /// on a new thread, sampling rates once a second.
    pub fn start(
        addr: SocketAddr,
        metrics: Arc<ProcessMetrics>,
        extra: Option<ExtraRoutes>,
    ) -> Result<Self, StatusError> {
        Self::start_with(addr, metrics, extra, ServerOptions::default())
    }

    /// [`StatusServer::start`] with explicit [`ServerOptions`].
    pub fn start_with(
        addr: SocketAddr,
        metrics: Arc<ProcessMetrics>,
        extra: Option<ExtraRoutes>,
        mut options: ServerOptions,
    ) -> Result<Self, StatusError> {
        options.limits.fit_open_files("status.limits.max-connections");
        // Bind on the caller's thread so a bad address is an error here, not a panic there.
        let listener = std::net::TcpListener::bind(addr).map_err(|source| StatusError::Bind { addr, source })?;
        let bind_err = |source| StatusError::Bind { addr, source };
        listener.set_nonblocking(true).map_err(bind_err)?;
        let local = listener.local_addr().map_err(bind_err)?;

        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(StatusError::Runtime)?;

        let mut filter = routes_with(Arc::clone(&metrics), options.read_tokens.clone());
        if let Some(extra) = extra {
            filter = filter.or(extra).unify().boxed();
        }

        let (stop, stop_rx) = watch::channel(false);
        let thread = std::thread::Builder::new()
            .name("tickflow-status".to_owned())
            .spawn(move || runtime.block_on(serve(listener, filter, metrics, stop_rx, options)))
            .map_err(StatusError::Thread)?;
        tracing::info!(addr = %local, "status server listening");
        Ok(Self { addr: local, stop, thread: Some(thread) })
    }

    /// The address actually bound (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets in-flight requests finish (up to the grace period), and joins
    /// the server thread.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        // Fails only if the server task already ended, which is what we want anyway.
        let _ = self.stop.send(true);
        if thread.join().is_err() {
            tracing::error!(addr = %self.addr, "status server thread panicked");
        } else {
            tracing::info!(addr = %self.addr, "status server stopped");
        }
    }
}

impl Drop for StatusServer {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// Resolves once shutdown is asked for (or the handle is gone).
async fn stopped(mut stop: watch::Receiver<bool>) {
    // Err means the sender was dropped: treat as stop.
    let _ = stop.wait_for(|s| *s).await;
}

async fn serve(
    listener: std::net::TcpListener,
    filter: BoxedFilter<(Response,)>,
    metrics: Arc<ProcessMetrics>,
    stop: watch::Receiver<bool>,
    options: ServerOptions,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(error) => {
            tracing::error!(%error, "status server: cannot register listener with tokio");
            return;
        }
    };
    if let Some(every) = options.sample_interval {
        tokio::spawn(sample_every(every, metrics));
    }
    let stats = Arc::new(ServeStats::default());
    crate::http::serve(listener, filter, options.limits, options.tls, stopped(stop), options.shutdown_grace, stats)
        .await;
}

async fn sample_every(every: Duration, metrics: Arc<ProcessMetrics>) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        metrics.sample();
    }
}
