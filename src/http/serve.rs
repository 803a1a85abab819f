//! The accept loop every tickflow HTTP listener runs: warp routes served by hyper's HTTP/1
//! connection with a header-read timeout, an idle watchdog on each socket, a cap on
//! connections (excess ones get a canned `503` with `Retry-After`), accept errors that back
//! off instead of spinning, and a graceful stop on a shutdown future.
//!
//! When a connection ends after an answer to a request whose body was not read (a `413`, a
//! `401`, a `503` for a full budget), the socket is half-closed and what the client still
//! sends is read and discarded, up to `drain-limit-bytes` within `body-read-timeout` (a
//! "lingering close"): a client that writes its whole body before reading then finds the
//! answer instead of a connection reset.
//!
//! Like mini-redis's listener: a [`Semaphore`] bounds the connections, a permit travels
//! with each connection task and returns when it ends.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::time::{Instant, Sleep};
use warp::filters::BoxedFilter;
use warp::reply::Response;

use super::limits::Limits;
use super::tls::Tls;

/// hyper's per-connection read buffer (it also bounds the request head: larger heads get
/// `431`). Small, so many connections cost little memory.
pub const MAX_BUF_BYTES: usize = 64 * 1024;

/// Refusals (`503` to connections over the cap) written at once; beyond that new
/// connections wait in the kernel's backlog.
const MAX_REFUSING: usize = 64;

/// Counters of one listener.
#[derive(Debug, Default)]
pub struct ServeStats {
    /// Connections accepted and served.
    pub accepted: AtomicU64,
    /// Connections open now.
    pub open: AtomicUsize,
    /// Connections over the cap, answered `503` (or closed) at once.
    pub refused: AtomicU64,
    /// Failed `accept` calls (e.g. out of file descriptors).
    pub accept_errors: AtomicU64,
}

/// One connection over the cap: logs (at most once a second) and counts.
fn connection_refused(stats: &ServeStats, peer: SocketAddr, cap: usize, last_log: &mut Option<Instant>) {
    stats.refused.fetch_add(1, Relaxed);
    if last_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
        *last_log = Some(Instant::now());
        let refused = stats.refused.load(Relaxed);
        tracing::warn!(%peer, cap, refused, "connection cap reached; answering 503 to new connections");
    }
}

/// Serves `filter` on `listener` within `limits` (over TLS when `tls` is given) until
/// `shutdown` resolves, then stops accepting and lets open connections finish for up to
/// `grace`.
pub async fn serve(
    listener: TcpListener,
    filter: BoxedFilter<(Response,)>,
    limits: Limits,
    tls: Option<Tls>,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
    stats: Arc<ServeStats>,
) {
    let conns = Arc::new(Semaphore::new(limits.max_connections));
    let refusing = Arc::new(Semaphore::new(MAX_REFUSING));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    let (mut last_refusal_log, mut last_error_log): (Option<Instant>, Option<Instant>) = (None, None);
    loop {
        // A slot before the connection: one of the cap, or one to refuse with. With neither
        // free, wait: new connections queue in the kernel's backlog instead of being reset.
        let slot = match Arc::clone(&conns).try_acquire_owned() {
            Ok(p) => Slot::Serve(p),
            Err(_) => match Arc::clone(&refusing).try_acquire_owned() {
                Ok(r) => Slot::Refuse(r),
                Err(_) => tokio::select! {
                    p = Arc::clone(&conns).acquire_owned() => Slot::Serve(p.expect("the semaphore is never closed")),
                    r = Arc::clone(&refusing).acquire_owned() => Slot::Refuse(r.expect("the semaphore is never closed")),
                    () = &mut shutdown => break,
                },
            },
        };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                stats.accept_errors.fetch_add(1, Relaxed);
                // Out of descriptors (EMFILE/ENFILE) or memory: back off rather than spin;
                // the connections that hold them end by their timeouts.
                if last_error_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                    last_error_log = Some(Instant::now());
                    tracing::error!(error = %e, "accept failed; backing off 100ms");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // A connection may have ended while we waited to accept.
        let slot = match slot {
            Slot::Refuse(r) => match Arc::clone(&conns).try_acquire_owned() {
                Ok(p) => Slot::Serve(p),
                Err(_) => Slot::Refuse(r),
            },
            serve => serve,
        };
        let permit = match slot {
            Slot::Serve(p) => p,
            Slot::Refuse(r) => {
                connection_refused(&stats, peer, limits.max_connections, &mut last_refusal_log);
                let (retry, cap, tls) = (limits.retry_after_secs, limits.max_connections, tls.clone());
                tokio::spawn(async move {
                    match tls {
                        None => refuse(stream, retry, cap).await,
                        Some(tls) => {
                            let handshake = tls.acceptor().accept(stream);
                            if let Ok(Ok(s)) = tokio::time::timeout(Duration::from_secs(1), handshake).await {
                                refuse(s, retry, cap).await;
                            }
                        }
                    }
                    drop(r);
                });
                continue;
            }
        };
        stats.accepted.fetch_add(1, Relaxed);
        stats.open.fetch_add(1, Relaxed);
        let (filter, limits, stats, stop) = (filter.clone(), limits.clone(), Arc::clone(&stats), stop_rx.clone());
        let tls = tls.clone();
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            match tls {
                None => connection(stream, peer, filter, &limits, stop).await,
                Some(tls) => {
                    // The handshake counts against the header-read timeout.
                    let handshake = tls.acceptor().accept(stream);
                    match tokio::time::timeout(limits.header_read_timeout, handshake).await {
                        Ok(Ok(s)) => connection(s, peer, filter, &limits, stop).await,
                        Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake did not finish within the header-read timeout"),
                    }
                }
            }
            stats.open.fetch_sub(1, Relaxed);
            drop(permit);
        });
    }
    drop(listener);
    // Ask every connection to finish its request and close; wait until all permits are back.
    let _ = stop_tx.send(true);
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(grace, conns.acquire_many(all)).await.is_err() {
        tracing::warn!(
            ?grace,
            open = stats.open.load(Relaxed),
            "connections still open after the grace period; closing them"
        );
    }
}

/// What the accept loop holds for the next connection.
enum Slot {
    /// A place under the connection cap.
    Serve(tokio::sync::OwnedSemaphorePermit),
    /// A place among the refusals being written.
    Refuse(tokio::sync::OwnedSemaphorePermit),
}

/// Serves one connection until it ends, then lingers if its last request's body was not read.
async fn connection<IO>(
    stream: IO,
    peer: SocketAddr,
    filter: BoxedFilter<(Response,)>,
    limits: &Limits,
    mut stop: watch::Receiver<bool>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let state = Arc::new(ConnState::new());
    let io = TokioIo::new(Watched::new(stream, Arc::clone(&state), limits.idle_timeout));
    let service = Tracked {
        inner: hyper_util::service::TowerToHyperService::new(warp::service(filter)),
        state: Arc::clone(&state),
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_BUF_BYTES)
        .keep_alive(true);
    let mut conn = builder.serve_connection(io, service);
    let mut stopping = *stop.borrow();
    if stopping {
        Pin::new(&mut conn).graceful_shutdown();
    }
    let mut changed = Box::pin(stop.changed());
    let result = std::future::poll_fn(|cx| {
        if !stopping && changed.as_mut().poll(cx).is_ready() {
            stopping = true;
            Pin::new(&mut conn).graceful_shutdown();
        }
        conn.poll_without_shutdown(cx)
    })
    .await;
    drop(changed);
    if let Err(error) = &result {
        tracing::debug!(%peer, %error, "connection ended with an error");
    }
    let unread = state.unread_body.load(Relaxed);
    let parts = conn.into_parts();
    let mut stream = parts.io.into_inner().into_inner();
    if unread && result.is_ok() {
        linger(&mut stream, limits.drain_limit_bytes, limits.body_read_timeout).await;
    } else {
        let _ = tokio::time::timeout(Duration::from_secs(1), stream.shutdown()).await;
    }
}

/// Half-closes `stream` (the client sees the end of the answer) and reads and discards what
/// the client still sends: until it closes, `limit` bytes, or `within`.
async fn linger<IO: AsyncRead + AsyncWrite + Unpin>(stream: &mut IO, limit: u64, within: Duration) {
    let deadline = Instant::now() + within;
    if tokio::time::timeout_at(deadline, stream.shutdown()).await.is_err() {
        return;
    }
    let mut buf = vec![0u8; 16 * 1024];
    let mut seen = 0u64;
    while seen < limit {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => seen += n as u64,
            _ => return,
        }
    }
}

/// Answers a connection over the cap with `503` and closes it, reading (and discarding) what
/// the client is still sending so it sees the answer rather than a reset: until it pauses
/// for 50 ms, 256 KiB, or 1 s.
async fn refuse<IO: AsyncRead + AsyncWrite + Unpin>(mut stream: IO, retry_after: u64, cap: usize) {
    let body = format!(
        "{{\"error\":\"server busy: {cap} connections are open, the most it serves at once; retry later\",\
         \"retry_after_s\":{retry_after}}}"
    );
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: {retry_after}\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let second = Duration::from_secs(1);
    if tokio::time::timeout(second, stream.write_all(answer.as_bytes())).await.is_err() {
        return;
    }
    let deadline = Instant::now() + second;
    let _ = tokio::time::timeout(second, stream.shutdown()).await;
    let mut buf = vec![0u8; 16 * 1024];
    let mut seen = 0usize;
    while seen < 256 * 1024 {
        let pause = (Instant::now() + Duration::from_millis(50)).min(deadline);
        match tokio::time::timeout_at(pause, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => seen += n,
            _ => return,
        }
    }
}

/// What the service and the socket of one connection share: requests being handled, when a
/// byte last moved, and whether the last request's body was left unread.
#[derive(Debug)]
struct ConnState {
    base: Instant,
    /// Microseconds after `base` of the last progress.
    last_us: AtomicU64,
    in_flight: AtomicUsize,
    unread_body: AtomicBool,
}

impl ConnState {
    fn new() -> ConnState {
        ConnState {
            base: Instant::now(),
            last_us: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            unread_body: AtomicBool::new(false),
        }
    }

    fn touch(&self) {
        self.last_us.store(self.base.elapsed().as_micros() as u64, Relaxed);
    }

    fn last(&self) -> Instant {
        self.base + Duration::from_micros(self.last_us.load(Relaxed))
    }
}

/// Counts a request as in flight from the call until its response is ready.
struct InFlight(Arc<ConnState>);

impl InFlight {
    fn new(state: Arc<ConnState>) -> InFlight {
        state.in_flight.fetch_add(1, Relaxed);
        state.touch();
        InFlight(state)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Relaxed);
    }
}

/// The routes as a hyper service that marks requests in flight (so a handler waiting for
/// Kafka is not mistaken for an idle connection).
struct Tracked<S> {
    inner: S,
    state: Arc<ConnState>,
}

impl<S> hyper::service::Service<hyper::Request<Incoming>> for Tracked<S>
where
    S: hyper::service::Service<hyper::Request<TrackedBody>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn call(&self, req: hyper::Request<Incoming>) -> Self::Future {
        let guard = InFlight::new(Arc::clone(&self.state));
        let has_body = !hyper::body::Body::is_end_stream(req.body());
        self.state.unread_body.store(has_body, Relaxed);
        let state = Arc::clone(&self.state);
        let fut = self.inner.call(req.map(|inner| TrackedBody { inner, state }));
        Box::pin(async move {
            let out = fut.await;
            drop(guard);
            out
        })
    }
}

/// A request body that tells its connection when it has been read to the end.
struct TrackedBody {
    inner: Incoming,
    state: Arc<ConnState>,
}

impl hyper::body::Body for TrackedBody {
    type Data = hyper::body::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let out = Pin::new(&mut this.inner).poll_frame(cx);
        if matches!(out, Poll::Ready(None)) || this.inner.is_end_stream() {
            this.state.unread_body.store(false, Relaxed);
        }
        out
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// A socket that fails with `TimedOut` when no byte has moved for `idle`: reads only
/// while no request is being handled, writes always (a client that stops reading its
/// answer).
struct Watched<IO> {
    inner: IO,
    state: Arc<ConnState>,
    idle: Duration,
    sleep: Pin<Box<Sleep>>,
}

impl<IO> Watched<IO> {
    fn into_inner(self) -> IO {
        self.inner
    }

    fn new(inner: IO, state: Arc<ConnState>, idle: Duration) -> Watched<IO> {
        let sleep = Box::pin(tokio::time::sleep(idle));
        Watched { inner, state, idle, sleep }
    }

    /// Called when the socket is not ready: `Pending` with the idle timer armed, or the
    /// timeout error.
    fn poll_idle(&mut self, cx: &mut Context<'_>, reading: bool) -> Poll<io::Error> {
        loop {
            let deadline = self.state.last() + self.idle;
            if Instant::now() >= deadline {
                if reading && self.state.in_flight.load(Relaxed) > 0 {
                    self.state.touch();
                    continue;
                }
                let what = if reading { "nothing received" } else { "the client read nothing" };
                return Poll::Ready(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("connection idle: {what} for {:?}", self.idle),
                ));
            }
            self.sleep.as_mut().reset(deadline);
            if self.sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Watched<IO> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    this.state.touch();
                }
                Poll::Ready(r)
            }
            Poll::Pending => this.poll_idle(cx, true).map(Err),
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Watched<IO> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Ready(r) => {
                if r.as_ref().is_ok_and(|&n| n > 0) {
                    this.state.touch();
                }
                Poll::Ready(r)
            }
            Poll::Pending => this.poll_idle(cx, false).map(Err),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(r) => {
                if r.as_ref().is_ok_and(|&n| n > 0) {
                    this.state.touch();
                }
                Poll::Ready(r)
            }
            Poll::Pending => this.poll_idle(cx, false).map(Err),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
