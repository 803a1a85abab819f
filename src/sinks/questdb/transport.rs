//! Getting bytes to QuestDB: ILP over HTTP (acknowledged) or TCP (fire and forget), the REST
//! `/exec` endpoint for DDL, failure classification and retry with exponential backoff.
//!
//! While the server cannot be reached at all (connection refused, reset, no route), the wait
//! before the next attempt is spent probing it with a TCP connect every [`PROBE_EVERY`], and
//! the attempt is made as soon as it accepts connections again instead of at the end of the
//! backoff slot. Failures that come from a server that answers (HTTP 5xx, 429, timeouts)
//! wait the whole slot.

use std::io::{ErrorKind, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use thiserror::Error;

use super::config::QuestDbConfig;
use super::stats::SinkStats;
use crate::retry::Policy;

/// An error that stops the sink (or its start). Transient failures are retried and only
/// surface as [`SinkError::RetriesExhausted`].
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum SinkError {
    /// The configuration is invalid; one message per problem.
    #[error("invalid QuestDB sink config: {}", .0.join("; "))]
    Config(Vec<String>),
    /// A table or column name is invalid.
    #[error(transparent)]
    Encode(#[from] super::encode::EncodeError),
    /// QuestDB refused the credentials (401/403). Retrying cannot help.
    #[error("QuestDB refused the credentials (HTTP {status}) on {what}: {message}")]
    Auth {
        /// 401 or 403.
        status: u16,
        /// `write` or `exec`.
        what: &'static str,
        /// The response body.
        message: String,
    },
    /// An HTTP status that is neither success, a row rejection, nor transient (e.g. 404).
    #[error("QuestDB answered HTTP {status} on {what}: {message}")]
    Unexpected {
        /// The status.
        status: u16,
        /// `write` or `exec`.
        what: &'static str,
        /// The response body.
        message: String,
    },
    /// Transient failures went on for longer than `retry-max-elapsed`.
    #[error("gave up on {what} after {elapsed:?} of transient failures; last: {last}")]
    RetriesExhausted {
        /// `write` or `exec`.
        what: &'static str,
        /// How long it kept failing.
        elapsed: Duration,
        /// The last failure.
        last: String,
    },
    /// A `CREATE TABLE` statement was refused.
    #[error("QuestDB refused {statement:?}: {message}")]
    Ddl {
        /// The statement.
        statement: String,
        /// QuestDB's `error` text.
        message: String,
    },
    /// The request could not even be built (bad address); retrying cannot help.
    #[error("cannot send to QuestDB: {0}")]
    Request(String),
    /// The sink has stopped (closed, or failed earlier).
    #[error("the QuestDB sink has stopped")]
    Closed,
}

/// The result of one write of a range of rows, after transient failures were retried.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum WriteOutcome {
    /// Everything was accepted.
    Written,
    /// The whole request was rejected (HTTP 400); `line` is QuestDB's 1-based line number.
    Rejected { line: Option<usize>, message: String },
    /// The request was too large (HTTP 413).
    TooLarge { message: String },
}

/// Writes encoded rows somewhere.
pub(crate) trait Transport: Send {
    /// Writes `body` (whole lines), retrying transient failures.
    fn write(&mut self, body: &[u8]) -> Result<WriteOutcome, SinkError>;
    /// Whether a rejection can be attributed to rows (HTTP yes, TCP no).
    fn reports_rejections(&self) -> bool;
}

/// One attempt's result.
enum Attempt<T> {
    Done(T),
    /// The server answered, or took too long: wait the backoff slot.
    Transient(String),
    /// The server could not be reached: probe it during the backoff slot.
    Unreachable(String),
}

/// How often an unreachable server is probed during a backoff slot.
pub const PROBE_EVERY: Duration = Duration::from_millis(100);

/// Whether a TCP connection to `addr` can be opened within `timeout`.
fn accepts_connections(addr: &str, timeout: Duration) -> bool {
    addr.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| TcpStream::connect_timeout(&a, timeout).is_ok())
}

/// Exponential backoff ([`crate::retry`]): `initial`, doubled per failure up to `max`, for
/// at most `max_elapsed`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Backoff(Policy);

impl Backoff {
    pub(crate) fn from_config(c: &QuestDbConfig) -> Backoff {
        Backoff(
            Policy::exponential(c.retry_initial.get(), c.retry_max.get()).with_max_elapsed(c.retry_max_elapsed.get()),
        )
    }

    /// Runs `attempt` until it is done, fails permanently, or the time budget is spent.
    /// While the server is unreachable, `addr` is probed during each backoff slot.
    fn run<T>(
        self,
        what: &'static str,
        stats: &SinkStats,
        addr: &str,
        mut attempt: impl FnMut() -> Result<Attempt<T>, SinkError>,
    ) -> Result<T, SinkError> {
        let start = Instant::now();
        let mut backoff = self.0.backoff(0);
        let mut spent_quick_retry = false;
        loop {
            let (error, unreachable) = match attempt()? {
                Attempt::Done(t) => {
                    let n = backoff.failures();
                    if n > 0 {
                        stats.recovered(what, n, start.elapsed());
                    }
                    return Ok(t);
                }
                Attempt::Transient(error) => (error, false),
                Attempt::Unreachable(error) => (error, true),
            };
            let elapsed = start.elapsed();
            let Some(delay) = backoff.next_within(elapsed) else {
                return Err(SinkError::RetriesExhausted { what, elapsed, last: error });
            };
            stats.retry(what, &error, backoff.failures(), delay);
            if unreachable {
                wait_probing(addr, delay, &mut spent_quick_retry);
            } else {
                std::thread::sleep(delay);
            }
        }
    }
}

/// Waits up to `delay` for `addr` to accept connections again, probing every
/// [`PROBE_EVERY`]; returns as soon as it does after having been seen down. A server that
/// accepts from the first probe (the failure was a stale kept-alive connection, say) gets
/// one quick retry per write (`quick`); after that the slot is waited out, so a server that
/// accepts and then fails is not hammered.
fn wait_probing(addr: &str, delay: Duration, quick: &mut bool) {
    let until = Instant::now() + delay;
    let mut seen_down = false;
    loop {
        let now = Instant::now();
        if now >= until {
            return;
        }
        std::thread::sleep(PROBE_EVERY.min(until - now));
        if accepts_connections(addr, PROBE_EVERY) {
            if seen_down {
                tracing::info!(addr, "QuestDB accepts connections again; retrying now");
                return;
            }
            if !*quick {
                *quick = true;
                return;
            }
            std::thread::sleep(until.saturating_duration_since(Instant::now()));
            return;
        }
        seen_down = true;
    }
}

/// ILP over HTTP with ureq (blocking; 4xx/5xx come back as responses, not errors).
pub(crate) struct Http {
    agent: ureq::Agent,
    /// host:port of `write_url` (probed while unreachable).
    addr: String,
    write_url: String,
    exec_url: String,
    auth: Option<String>,
    backoff: Backoff,
    stats: Arc<SinkStats>,
}

impl Http {
    /// `addr` is the host:port for `/write`, `rest_addr` the one for `/exec`.
    pub(crate) fn new(c: &QuestDbConfig, rest_addr: &str, stats: Arc<SinkStats>) -> Http {
        let timeout = c.request_timeout.get();
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(timeout))
            .timeout_global(Some(timeout))
            .build();
        let auth = match (&c.token, &c.basic_auth) {
            (Some(t), _) => Some(format!("Bearer {t}")),
            (None, Some(b)) => Some(format!("Basic {}", base64(b.as_bytes()))),
            (None, None) => None,
        };
        Http {
            agent: ureq::Agent::new_with_config(config),
            addr: rest_addr.to_string(),
            write_url: format!("http://{}/write?precision=n", c.addr),
            exec_url: format!("http://{rest_addr}/exec?query="),
            auth,
            backoff: Backoff::from_config(c),
            stats,
        }
    }

    /// Runs one SQL statement via `GET /exec`, retrying transient failures.
    pub(crate) fn exec(&mut self, sql: &str) -> Result<(), SinkError> {
        let url = format!("{}{}", self.exec_url, percent_encode(sql));
        let (agent, auth) = (&self.agent, &self.auth);
        self.backoff.run("exec", &self.stats, &self.addr, || {
            let mut req = agent.get(&url);
            if let Some(a) = auth {
                req = req.header("Authorization", a);
            }
            let (status, body) = match req.call() {
                Ok(mut r) => (r.status().as_u16(), read_body(r.body_mut())),
                Err(e) => return classify_io(e),
            };
            match status {
                200..=299 => Ok(Attempt::Done(())),
                400 => {
                    let message = serde_json::from_str::<serde_json::Value>(&body)
                        .ok()
                        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
                        .unwrap_or(body);
                    Err(SinkError::Ddl { statement: sql.to_string(), message })
                }
                s => classify_status(s, "exec", body),
            }
        })
    }
}

impl Transport for Http {
    fn write(&mut self, body: &[u8]) -> Result<WriteOutcome, SinkError> {
        let (agent, auth, url) = (&self.agent, &self.auth, &self.write_url);
        self.backoff.run("write", &self.stats, &self.addr, || {
            let mut req = agent.post(url).header("Content-Type", "text/plain; charset=utf-8");
            if let Some(a) = auth {
                req = req.header("Authorization", a);
            }
            let (status, text) = match req.send(body) {
                Ok(mut r) => (r.status().as_u16(), read_body(r.body_mut())),
                Err(e) => return classify_io(e),
            };
            match status {
                200..=299 => Ok(Attempt::Done(WriteOutcome::Written)),
                400 => {
                    let json = serde_json::from_str::<serde_json::Value>(&text).ok();
                    let line = json.as_ref().and_then(|v| v.get("line")?.as_u64()).map(|l| l as usize);
                    let message =
                        json.as_ref().and_then(|v| v.get("message")?.as_str().map(str::to_string)).unwrap_or(text);
                    Ok(Attempt::Done(WriteOutcome::Rejected { line, message }))
                }
                413 => Ok(Attempt::Done(WriteOutcome::TooLarge { message: text })),
                s => classify_status(s, "write", text),
            }
        })
    }

    fn reports_rejections(&self) -> bool {
        true
    }
}

/// Reads at most 64 KiB of a response body; errors become part of the text.
fn read_body(body: &mut ureq::Body) -> String {
    body.with_config().limit(64 * 1024).lossy_utf8(true).read_to_string().unwrap_or_else(|e| format!("<{e}>"))
}

fn classify_status<T>(status: u16, what: &'static str, message: String) -> Result<Attempt<T>, SinkError> {
    match status {
        401 | 403 => Err(SinkError::Auth { status, what, message }),
        408 | 429 | 500..=599 => Ok(Attempt::Transient(format!("HTTP {status}: {message}"))),
        _ => Err(SinkError::Unexpected { status, what, message }),
    }
}

fn classify_io<T>(e: ureq::Error) -> Result<Attempt<T>, SinkError> {
    use std::io::ErrorKind as K;
    use ureq::Error as E;
    match e {
        E::BadUri(_) | E::Http(_) | E::InvalidProxyUrl | E::RequireHttpsOnly(_) => {
            Err(SinkError::Request(e.to_string()))
        }
        // Nobody there: probe until somebody is.
        E::ConnectionFailed | E::HostNotFound => Ok(Attempt::Unreachable(e.to_string())),
        E::Io(ref io)
            if matches!(
                io.kind(),
                K::ConnectionRefused
                    | K::ConnectionReset
                    | K::ConnectionAborted
                    | K::NotConnected
                    | K::BrokenPipe
                    | K::AddrNotAvailable
                    | K::HostUnreachable
                    | K::NetworkUnreachable
            ) =>
        {
            Ok(Attempt::Unreachable(e.to_string()))
        }
        // Timeouts, a connection closed mid-response, ...: the server may be busy.
        other => Ok(Attempt::Transient(other.to_string())),
    }
}

/// ILP over TCP: lines are written to a socket with no reply. Reconnects with backoff on any
/// error and resends the whole flush (duplicates are absorbed by DEDUP UPSERT). A bad line
/// makes QuestDB close the connection; that cannot be attributed to a row, and the rows
/// written with it may be lost — hence HTTP is the default.
pub(crate) struct Tcp {
    addr: String,
    timeout: Duration,
    stream: Option<TcpStream>,
    backoff: Backoff,
    stats: Arc<SinkStats>,
}

impl Tcp {
    pub(crate) fn new(c: &QuestDbConfig, stats: Arc<SinkStats>) -> Tcp {
        Tcp {
            addr: c.addr.clone(),
            timeout: c.request_timeout.get(),
            stream: None,
            backoff: Backoff::from_config(c),
            stats,
        }
    }
}

/// Whether the peer has closed `s` (QuestDB closes after a bad line); checked before writing
/// so that later flushes do not vanish into a half-closed socket.
fn peer_closed(s: &TcpStream) -> bool {
    if s.set_nonblocking(true).is_err() {
        return true;
    }
    let mut b = [0u8; 1];
    let closed = match s.peek(&mut b) {
        Ok(0) => true,
        Ok(_) => false, // QuestDB never sends; treat unexpected bytes as alive
        Err(e) => e.kind() != ErrorKind::WouldBlock,
    };
    closed || s.set_nonblocking(false).is_err()
}

impl Transport for Tcp {
    fn write(&mut self, body: &[u8]) -> Result<WriteOutcome, SinkError> {
        let (addr, timeout, slot) = (&self.addr, self.timeout, &mut self.stream);
        self.backoff.run("write", &self.stats, addr, || {
            if slot.as_ref().is_some_and(peer_closed) {
                *slot = None;
            }
            if slot.is_none() {
                let sock = match addr.to_socket_addrs().map(|mut a| a.next()) {
                    Ok(Some(a)) => a,
                    Ok(None) => {
                        return Ok(Attempt::Transient(format!("{addr} resolves to nothing")));
                    }
                    Err(e) => return Ok(Attempt::Transient(format!("resolving {addr}: {e}"))),
                };
                match TcpStream::connect_timeout(&sock, timeout) {
                    Ok(s) => {
                        let _ = s.set_write_timeout(Some(timeout));
                        let _ = s.set_nodelay(true);
                        *slot = Some(s);
                    }
                    Err(e) => return Ok(Attempt::Unreachable(format!("connecting to {addr}: {e}"))),
                }
            }
            // Set just above.
            let s = slot.as_mut().expect("connected");
            match s.write_all(body).and_then(|()| s.flush()) {
                Ok(()) => Ok(Attempt::Done(WriteOutcome::Written)),
                Err(e) => {
                    *slot = None;
                    Ok(Attempt::Unreachable(format!("writing to {addr}: {e}")))
                }
            }
        })
    }

    fn reports_rejections(&self) -> bool {
        false
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub(crate) fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[(b >> 4) as usize]));
            out.push(char::from(b"0123456789ABCDEF"[(b & 15) as usize]));
        }
    }
    out
}

/// Standard base64 with padding (for HTTP basic auth).
fn base64(input: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("admin:quest", "YWRtaW46cXVlc3Q="),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn percent_encoding_keeps_unreserved_only() {
        assert_eq!(percent_encode("a b(c),d;é"), "a%20b%28c%29%2Cd%3B%C3%A9");
    }

    #[test]
    fn statuses_are_classified() {
        assert!(matches!(classify_status::<()>(503, "write", String::new()), Ok(Attempt::Transient(_))));
        assert!(matches!(classify_status::<()>(429, "write", String::new()), Ok(Attempt::Transient(_))));
        assert!(matches!(classify_status::<()>(401, "write", String::new()), Err(SinkError::Auth { status: 401, .. })));
        assert!(matches!(classify_status::<()>(404, "write", String::new()), Err(SinkError::Unexpected { .. })));
    }
}
