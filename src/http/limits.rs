//! What one client may hold of a server: time to send headers and body, idle time,
//! connections, requests in progress and buffered body bytes, with the body reader that
//! enforces the last one.
//!
//! [`HttpLimits`] is the config table (`[gateway.limits]`, `[status.limits]`); [`Limits`] the
//! validated values. [`RequestSlots`] caps the requests a handler works on at once (taken
//! before any body byte is read, so an excess request is refused at once). [`read_body`]
//! reads a request body within the per-request limit, the body-read timeout and the
//! listener-wide [`BodyBudget`]. A refused body is answered at once;
//! the listener then reads and discards the rest of it (up to `drain-limit-bytes`, within the
//! body-read timeout) before closing, so that clients that write the whole body before reading
//! (Python's `urllib`/`requests`, many scripts) see the answer instead of a reset connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use warp::Buf;

/// `[gateway.limits]` / `[status.limits]`: how much of the server one client can hold.
/// Bounds measured for the gateway are in `cluster.toml` and `SECURITY.md`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct HttpLimits {
    /// Time allowed for a request's line and headers, counted from when the server starts
    /// waiting for them; also closes a kept-alive connection that sends no next request.
    #[serde(default = "default_header_read_timeout")]
    pub header_read_timeout: String,
    /// Time allowed to receive a whole request body once its headers are in (`408` after).
    #[serde(default = "default_body_read_timeout")]
    pub body_read_timeout: String,
    /// A connection on which no byte moves for this long (no request being handled, or a
    /// client that stops reading its answer) is closed.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout: String,
    /// Connections served at once; further ones get `503` with `Retry-After` and are
    /// closed. Lowered at start to stay below the process's open-file limit.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Request body bytes buffered at once over all connections; a request whose body
    /// does not fit gets `503` with `Retry-After`.
    #[serde(default = "default_max_buffered_body_bytes")]
    pub max_buffered_body_bytes: u64,
    /// After answering a request whose body was not read (`413`, `401`, `503`, ...), the
    /// connection reads and discards up to this many more bytes (within `body-read-timeout`)
    /// before it closes, so clients that send everything before reading still get the answer.
    #[serde(default = "default_drain_limit_bytes")]
    pub drain_limit_bytes: u64,
}

fn default_header_read_timeout() -> String {
    "10s".into()
}
fn default_body_read_timeout() -> String {
    "30s".into()
}
fn default_idle_timeout() -> String {
    "60s".into()
}
fn default_max_connections() -> usize {
    512
}
fn default_max_buffered_body_bytes() -> u64 {
    64 << 20
}
fn default_drain_limit_bytes() -> u64 {
    64 << 20
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_read_timeout: default_header_read_timeout(),
            body_read_timeout: default_body_read_timeout(),
            idle_timeout: default_idle_timeout(),
            max_connections: default_max_connections(),
            max_buffered_body_bytes: default_max_buffered_body_bytes(),
            drain_limit_bytes: default_drain_limit_bytes(),
        }
    }
}

/// Validated [`HttpLimits`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// See [`HttpLimits::header_read_timeout`].
    pub header_read_timeout: Duration,
    /// See [`HttpLimits::body_read_timeout`].
    pub body_read_timeout: Duration,
    /// See [`HttpLimits::idle_timeout`].
    pub idle_timeout: Duration,
    /// See [`HttpLimits::max_connections`].
    pub max_connections: usize,
    /// See [`HttpLimits::max_buffered_body_bytes`].
    pub max_buffered_body_bytes: u64,
    /// See [`HttpLimits::drain_limit_bytes`].
    pub drain_limit_bytes: u64,
    /// `Retry-After` of the `503`s these limits cause, whole seconds.
    pub retry_after_secs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        // The defaults are literals known to be valid.
        HttpLimits::default().build("limits").expect("default limits are valid")
    }
}

impl HttpLimits {
    /// Every problem, each naming `section.limits.<key>`, the bad value and an example.
    pub fn validate(&self, section: &str) -> Vec<String> {
        let mut errs = Vec::new();
        self.check(section, &mut errs);
        errs
    }

    /// Validates and converts (`Retry-After` defaults to 1 s; see [`Limits::retry_after_secs`]).
    pub fn build(&self, section: &str) -> Result<Limits, Vec<String>> {
        let mut errs = Vec::new();
        let l = self.check(section, &mut errs);
        if errs.is_empty() { Ok(l) } else { Err(errs) }
    }

    fn check(&self, section: &str, errs: &mut Vec<String>) -> Limits {
        let mut dur = |key: &str, v: &str, example: &str| match humantime::parse_duration(v.trim()) {
            Ok(d) if d >= Duration::from_millis(10) && d <= Duration::from_secs(3600) => d,
            Ok(_) => {
                errs.push(format!("{section}.limits.{key}: {v:?} is outside 10ms ..= 1h; expected e.g. {example:?}"));
                Duration::from_secs(1)
            }
            Err(e) => {
                errs.push(format!("{section}.limits.{key}: {v:?} is not a duration ({e}); expected e.g. {example:?}"));
                Duration::from_secs(1)
            }
        };
        let header_read_timeout = dur("header-read-timeout", &self.header_read_timeout, "10s");
        let body_read_timeout = dur("body-read-timeout", &self.body_read_timeout, "30s");
        let idle_timeout = dur("idle-timeout", &self.idle_timeout, "60s");
        if !(1..=100_000).contains(&self.max_connections) {
            errs.push(format!(
                "{section}.limits.max-connections: {} is outside 1 ..= 100000; expected e.g. 512",
                self.max_connections
            ));
        }
        if !(1024..=(4u64 << 30)).contains(&self.max_buffered_body_bytes) {
            errs.push(format!(
                "{section}.limits.max-buffered-body-bytes: {} is outside 1024 ..= 4294967296; expected e.g. 67108864",
                self.max_buffered_body_bytes
            ));
        }
        if self.drain_limit_bytes > 1 << 40 {
            errs.push(format!(
                "{section}.limits.drain-limit-bytes: {} is above 1099511627776; expected e.g. 67108864",
                self.drain_limit_bytes
            ));
        }
        Limits {
            header_read_timeout,
            body_read_timeout,
            idle_timeout,
            max_connections: self.max_connections.max(1),
            max_buffered_body_bytes: self.max_buffered_body_bytes.clamp(1024, 4 << 30),
            drain_limit_bytes: self.drain_limit_bytes,
            retry_after_secs: 1,
        }
    }
}

/// Requests a handler works on at once, over all connections: a request takes a slot before
/// its body is read and keeps it until it is answered, so what requests hold besides their
/// body (decoded records, work queued for a broker) is bounded too. Cheap to clone.
///
/// ```
/// use tickflow::http::RequestSlots;
/// let slots = RequestSlots::new(1);
/// let first = slots.try_acquire().unwrap();
/// assert!(slots.try_acquire().is_none(), "the second concurrent request is refused");
/// assert_eq!((slots.in_use(), slots.refused()), (1, 1));
/// drop(first);
/// assert!(slots.try_acquire().is_some());
/// ```
#[derive(Clone, Debug)]
pub struct RequestSlots {
    slots: Arc<Semaphore>,
    total: usize,
    refused: Arc<AtomicU64>,
}

/// One request's slot in [`RequestSlots`]; returned on drop.
#[derive(Debug)]
pub struct RequestSlot(#[allow(dead_code)] OwnedSemaphorePermit);

impl RequestSlots {
    /// `total` slots (at least 1).
    pub fn new(total: usize) -> RequestSlots {
        let total = total.clamp(1, Semaphore::MAX_PERMITS);
        RequestSlots { slots: Arc::new(Semaphore::new(total)), total, refused: Arc::default() }
    }

    /// A slot, never waiting; `None` (and counted in [`RequestSlots::refused`]) when all are taken.
    pub fn try_acquire(&self) -> Option<RequestSlot> {
        match Arc::clone(&self.slots).try_acquire_owned() {
            Ok(p) => Some(RequestSlot(p)),
            Err(_) => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// The number of slots.
    pub fn total(&self) -> usize {
        self.total
    }

    /// Slots held now.
    pub fn in_use(&self) -> usize {
        self.total - self.slots.available_permits()
    }

    /// Requests refused because every slot was taken, so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

/// The listener-wide budget of buffered request-body bytes. Cheap to clone.
#[derive(Clone, Debug)]
pub struct BodyBudget {
    bytes: Arc<Semaphore>,
    total: u64,
    refused: Arc<AtomicU64>,
}

/// Bytes of a [`BodyBudget`] held by one request; returned on drop.
#[derive(Debug)]
pub struct BodyPermit(Option<OwnedSemaphorePermit>);

impl BodyBudget {
    /// A budget of `total` bytes (at most 4 GiB).
    pub fn new(total: u64) -> BodyBudget {
        let total = total.min(4 << 30);
        // At most 4 GiB: far below Semaphore::MAX_PERMITS.
        BodyBudget { bytes: Arc::new(Semaphore::new(total as usize)), total, refused: Arc::default() }
    }

    /// Requests refused because their body did not fit, so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    fn busy(&self, wanted: u64) -> BodyRejection {
        self.refused.fetch_add(1, Ordering::Relaxed);
        BodyRejection::Busy { wanted, total: self.total }
    }

    /// The whole budget.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Bytes not held by any request now.
    pub fn available(&self) -> u64 {
        self.bytes.available_permits() as u64
    }

    /// Takes `n` more bytes into `permit`, never waiting. `false` when they are not free.
    fn grow(&self, permit: &mut BodyPermit, n: u64) -> bool {
        if n == 0 {
            return true;
        }
        let Ok(n32) = u32::try_from(n) else {
            return false;
        };
        match Arc::clone(&self.bytes).try_acquire_many_owned(n32) {
            Ok(p) => {
                match &mut permit.0 {
                    Some(held) => held.merge(p),
                    None => permit.0 = Some(p),
                }
                true
            }
            Err(_) => false,
        }
    }
}

/// What [`read_body`] needs to know of the request besides its body.
#[derive(Clone, Copy, Debug)]
pub struct BodyRequest {
    /// `Content-Length`, if declared.
    pub declared: Option<u64>,
    /// Largest body accepted for this route.
    pub limit: u64,
}

/// Why [`read_body`] did not return a body. The caller turns it into a status: `413`,
/// `503` + `Retry-After`, `408`, `400`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BodyRejection {
    /// The body is larger than the route's limit.
    #[error("body of {seen} bytes or more exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The declared length, or how much had arrived when the limit was crossed.
        seen: u64,
        /// The limit.
        limit: u64,
    },
    /// The listener's buffered-body budget is spent by other requests.
    #[error(
        "server busy: {wanted} more body bytes do not fit in the {total} bytes buffered for all requests at once; retry later"
    )]
    Busy {
        /// Bytes this request needed beyond what it held.
        wanted: u64,
        /// The listener-wide budget.
        total: u64,
    },
    /// The body did not arrive within the body-read timeout.
    #[error("the request body did not arrive within {0:?}")]
    Timeout(Duration),
    /// The connection failed while the body was read.
    #[error("reading the body failed: {0}")]
    Read(String),
}

impl BodyRejection {
    /// The status to answer with.
    pub fn status(&self) -> u16 {
        match self {
            BodyRejection::TooLarge { .. } => 413,
            BodyRejection::Busy { .. } => 503,
            BodyRejection::Timeout(_) => 408,
            BodyRejection::Read(_) => 400,
        }
    }
}

/// Reads the whole body of `req` from `stream`, holding its bytes in `budget`.
///
/// The budget is taken up front for a declared length and chunk by chunk otherwise, for the
/// buffer's whole capacity (a growing buffer doubles; the bytes it reserves are what the
/// process holds, not just those filled). A body over the limit, or one the budget cannot
/// hold, is refused without reading further (the listener drains what follows after the
/// answer).
pub async fn read_body<S, B>(
    stream: S,
    req: BodyRequest,
    limits: &Limits,
    budget: &BodyBudget,
) -> Result<(Vec<u8>, BodyPermit), BodyRejection>
where
    S: futures_util::Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let deadline = tokio::time::Instant::now() + limits.body_read_timeout;
    let mut stream = std::pin::pin!(stream);
    let mut permit = BodyPermit(None);
    let mut held = 0u64;
    if let Some(len) = req.declared {
        if len > req.limit {
            return Err(BodyRejection::TooLarge { seen: len, limit: req.limit });
        }
        if !budget.grow(&mut permit, len) {
            return Err(budget.busy(len));
        }
        held = len;
    }
    // `held` <= limit <= 1 GiB: fits in usize.
    let mut body = Vec::with_capacity(held as usize);
    loop {
        let next = match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(n) => n,
            Err(_) => return Err(BodyRejection::Timeout(limits.body_read_timeout)),
        };
        let Some(chunk) = next else { break };
        let mut chunk = chunk.map_err(|e| BodyRejection::Read(e.to_string()))?;
        let n = chunk.remaining() as u64;
        let len = body.len() as u64;
        if len + n > req.limit {
            return Err(BodyRejection::TooLarge { seen: len + n, limit: req.limit });
        }
        // Chunked (or a body longer than declared, which hyper refuses anyway): grow the
        // buffer (doubling, at most to the limit) only after the permit grew to match.
        if len + n > held {
            let cap = (held * 2).max(len + n).min(req.limit);
            if !budget.grow(&mut permit, cap - held) {
                return Err(budget.busy(cap - held));
            }
            body.reserve_exact((cap - len) as usize);
            held = cap;
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            body.extend_from_slice(part);
            let k = part.len();
            chunk.advance(k);
        }
    }
    Ok((body, permit))
}

/// The soft limit on open files of this process (`/proc/self/limits`), if known.
pub fn open_file_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

impl Limits {
    /// Lowers `max_connections` to what this process's open-file limit allows
    /// ([`connection_cap`]), with a warning naming the setting (`key`) when it does.
    pub fn fit_open_files(&mut self, key: &str) {
        let fds = open_file_limit();
        let cap = connection_cap(self.max_connections, fds);
        if cap < self.max_connections {
            tracing::warn!(
                configured = self.max_connections,
                cap,
                open_file_limit = ?fds,
                "{key} is above what the open-file limit allows; lowered (raise `ulimit -n` to serve more)"
            );
            self.max_connections = cap;
        }
    }
}

/// File descriptors kept free of HTTP connections: the listener, Kafka and QuestDB
/// sockets, log and data files, the runtime's own.
pub const RESERVED_FDS: u64 = 128;

/// `wanted` connections, lowered so that they and [`RESERVED_FDS`] fit in `fd_limit`.
///
/// ```
/// use tickflow::http::limits::connection_cap;
/// assert_eq!(connection_cap(512, Some(1024)), 512);
/// assert_eq!(connection_cap(512, Some(256)), 128);
/// assert_eq!(connection_cap(512, Some(100)), 1);
/// assert_eq!(connection_cap(512, None), 512);
/// ```
pub fn connection_cap(wanted: usize, fd_limit: Option<u64>) -> usize {
    match fd_limit {
        Some(fds) => wanted.min(fds.saturating_sub(RESERVED_FDS).max(1) as usize),
        None => wanted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(parts: &[&'static [u8]]) -> impl futures_util::Stream<Item = Result<&'static [u8], warp::Error>> {
        futures_util::stream::iter(parts.iter().map(|p| Ok(*p)).collect::<Vec<_>>())
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    #[test]
    fn defaults_are_valid_and_errors_name_key_value_example() {
        assert_eq!(HttpLimits::default().validate("gateway"), Vec::<String>::new());
        let bad = HttpLimits {
            header_read_timeout: "soon".into(),
            idle_timeout: "2h".into(),
            max_connections: 0,
            ..HttpLimits::default()
        };
        assert_eq!(
            bad.validate("status"),
            [
                "status.limits.header-read-timeout: \"soon\" is not a duration (expected number at 0); expected e.g. \"10s\"",
                "status.limits.idle-timeout: \"2h\" is outside 10ms ..= 1h; expected e.g. \"60s\"",
                "status.limits.max-connections: 0 is outside 1 ..= 100000; expected e.g. 512",
            ]
        );
    }

    #[test]
    fn budget_is_shared_and_returned_on_drop() {
        rt().block_on(async {
            let limits = Limits::default();
            let budget = BodyBudget::new(10);
            let req = BodyRequest { declared: Some(6), limit: 100 };
            let (a, held) = read_body(chunks(&[b"abc", b"def"]), req, &limits, &budget).await.unwrap();
            assert_eq!(a, b"abcdef");
            assert_eq!(budget.available(), 4);
            let err = read_body(chunks(&[b"abcdef"]), req, &limits, &budget).await.unwrap_err();
            assert_eq!(err, BodyRejection::Busy { wanted: 6, total: 10 });
            assert_eq!(err.status(), 503);
            // Chunked: grows as it goes, refused once past what is free.
            let chunked = BodyRequest { declared: None, ..req };
            let err = read_body(chunks(&[b"ab", b"cd", b"ef"]), chunked, &limits, &budget).await.unwrap_err();
            // 2, then 4 bytes of buffer fit; the third chunk doubles the buffer to 8: 4 more.
            assert_eq!(err, BodyRejection::Busy { wanted: 4, total: 10 });
            assert_eq!(budget.available(), 4, "a refused request returns what it held");
            assert_eq!(budget.refused(), 2);
            drop(held);
            assert_eq!(budget.available(), 10);
        });
    }

    #[test]
    fn over_the_limit_is_too_large_declared_or_not() {
        rt().block_on(async {
            let limits = Limits::default();
            let budget = BodyBudget::new(1 << 20);
            let req = BodyRequest { declared: Some(7), limit: 5 };
            let err = read_body(chunks(&[b"abcdefg"]), req, &limits, &budget).await.unwrap_err();
            assert_eq!(err.to_string(), "body of 7 bytes or more exceeds the limit of 5 bytes");
            let req = BodyRequest { declared: None, ..req };
            let err = read_body(chunks(&[b"abc", b"def"]), req, &limits, &budget).await.unwrap_err();
            assert_eq!(err, BodyRejection::TooLarge { seen: 6, limit: 5 });
            assert_eq!(budget.available(), 1 << 20);
        });
    }

    #[test]
    fn chunked_bodies_hold_their_buffer_capacity_in_the_budget() {
        rt().block_on(async {
            let limits = Limits::default();
            let budget = BodyBudget::new(1 << 20);
            let req = BodyRequest { declared: None, limit: 1000 };
            let parts: Vec<&'static [u8]> = vec![&[b'x'; 100]; 7];
            let (body, held) = read_body(chunks(&parts), req, &limits, &budget).await.unwrap();
            assert_eq!(body.len(), 700);
            // 100, 200, 400, 800: the buffer doubled, and the budget holds all of it.
            assert!(body.capacity() <= 800, "capacity {}", body.capacity());
            assert_eq!(budget.total() - budget.available(), 800);
            drop(held);
            assert_eq!(budget.available(), 1 << 20);
            // Doubling stops at the limit: a body of exactly the limit holds the limit.
            let parts: Vec<&'static [u8]> = vec![&[b'x'; 100]; 10];
            let (body, held) = read_body(chunks(&parts), req, &limits, &budget).await.unwrap();
            assert_eq!((body.len(), budget.total() - budget.available()), (1000, 1000));
            drop(held);
        });
    }

    #[test]
    fn request_slots_refuse_beyond_the_cap_and_count_it() {
        let slots = RequestSlots::new(2);
        let a = slots.try_acquire().unwrap();
        let b = slots.try_acquire().unwrap();
        assert!(slots.try_acquire().is_none());
        assert!(slots.try_acquire().is_none());
        assert_eq!((slots.total(), slots.in_use(), slots.refused()), (2, 2, 2));
        drop(a);
        let c = slots.try_acquire().unwrap();
        assert_eq!(slots.in_use(), 2);
        drop((b, c));
        assert_eq!(slots.in_use(), 0);
    }
}
