//! The connector's state machine: which symbol to ask for next, which range, what of the
//! answer is new, and when to ask again. No clock and no sleeping inside: the caller passes
//! `now` to [`Poller::poll_once`] and is told when to call it next, so tests step it
//! deterministically and the run loop ([`super::run`]) owns the real clock.
//!
//! # Per symbol
//! - A *cursor*: the open time of the earliest bar not yet emitted. The first poll sets it
//!   to `now - backfill` (aligned down to the bar length); it only ever moves forward.
//! - *Closed bars only*: a bar is emitted once `ts + bar length <= now - settle`. The
//!   forming bar (its values still change) is skipped and fetched again by a later poll,
//!   when it is closed. So every `(symbol, ts)` is produced once per run, with its final
//!   values, at the cost of one bar length of latency; downstream indicators never see a
//!   bar revised.
//! - *De-duplication*: rows before the cursor or at/before the last emitted bar are
//!   dropped (overlapping pages, Alpha Vantage's repeated 100 bars) and counted.
//! - Invalid rows (a broken OHLC rule, a bad number) go to the dead-letter list with the
//!   reason and their raw values, once: they advance the cursor like a bar.
//! - Nobitex ranges are paged: `[cursor, cursor + max-bars-per-request · bar length)`. While
//!   the page lies wholly in the closed past the symbol is polled again at once (subject to
//!   `request-interval`); once caught up, every `poll-interval`.
//!
//! # Over all symbols
//! - The due symbol with the earliest due time is polled, one request per call.
//! - `request-interval` spaces any two requests. A rate limit (HTTP 429, Alpha Vantage's
//!   `Note` / `Information`), a 5xx or 408, an unreadable body or no answer blocks *every*
//!   request for a backoff step (exponential, with jitter, at least the `Retry-After` and
//!   the `request-interval`): the
//!   limit is per client, not per symbol. A rejection of one symbol (Nobitex
//!   `"s":"error"`, Alpha Vantage `Error Message`, other 4xx) parks only that symbol for
//!   `backoff-max`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tickflow_operators::time::Millis;
use tickflow_operators::{Bar, Symbol, TimeBounds};

use super::config::{BuiltConnector, Exchange, SymbolSpec};
use super::http::{Fetch, HttpResponse, UreqFetch};
use super::metrics::{ConnectorMetrics, PollCompleted};
use super::{alphavantage, nobitex};
use crate::decode::DecodeError;
use crate::retry::{Backoff, parse_retry_after};

/// One row of an exchange's answer: its time when readable, the validated bar or why not,
/// and (for bad rows) its raw JSON for the dead letter.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Open time in ms (UTC), if it could be read.
    pub ts: Option<Millis>,
    /// The bar, or why the row is not one.
    pub bar: Result<Bar, DecodeError>,
    /// The row as JSON (empty for good rows).
    pub raw: String,
}

/// An exchange's answer, classified.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// Rows (possibly none: `no_data`).
    Rows(Vec<Row>),
    /// Too many requests: back off.
    RateLimited {
        /// The server's `Retry-After`.
        retry_after: Option<Duration>,
        /// What the server said.
        message: String,
    },
    /// Server trouble or no answer: back off and retry.
    Transient {
        /// The server's `Retry-After`.
        retry_after: Option<Duration>,
        /// What happened.
        message: String,
    },
    /// The exchange refused this symbol's request; retrying soon will not help.
    Rejected(String),
}

/// A row that failed validation, for the dead-letter topic.
#[derive(Clone, Debug, PartialEq)]
pub struct DeadRow {
    /// The symbol polled.
    pub symbol: Symbol,
    /// 0-based index of the row in its answer.
    pub index: u64,
    /// The field the problem is about, if any.
    pub field: Option<String>,
    /// Why it was rejected.
    pub reason: String,
    /// The row's raw JSON.
    pub raw: String,
}

/// What one [`Poller::poll_once`] did.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Nothing was due: no request was made.
    Idle,
    /// The exchange answered with rows.
    Rows {
        /// Rows in the answer.
        received: usize,
        /// Rows already emitted (or before the back-fill window).
        duplicates: usize,
        /// Rows of bars not closed yet.
        forming: usize,
    },
    /// Rate limited: no request for `delay`.
    RateLimited {
        /// What the exchange said.
        message: String,
        /// How long every request waits.
        delay: Duration,
    },
    /// 5xx, no answer or an unreadable body: no request for `delay`.
    Transient {
        /// What happened.
        message: String,
        /// How long every request waits.
        delay: Duration,
    },
    /// The exchange rejected the symbol; it is polled again at `retry_at`.
    Rejected {
        /// What the exchange said.
        message: String,
        /// When the symbol is polled again (ms).
        retry_at: Millis,
    },
}

impl Outcome {
    /// A short name for logs and metrics: `idle`, `ok`, `rate_limited`, `transient`,
    /// `rejected`.
    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::Idle => "idle",
            Outcome::Rows { .. } => "ok",
            Outcome::RateLimited { .. } => "rate_limited",
            Outcome::Transient { .. } => "transient",
            Outcome::Rejected { .. } => "rejected",
        }
    }
}

/// The result of one step: what was produced and when to step again.
#[derive(Clone, Debug, PartialEq)]
pub struct Poll {
    /// The symbol asked for (`None` when idle).
    pub symbol: Option<Symbol>,
    /// What happened.
    pub outcome: Outcome,
    /// New closed bars, oldest first.
    pub bars: Vec<Bar>,
    /// New invalid rows.
    pub dead_letters: Vec<DeadRow>,
    /// When to call [`Poller::poll_once`] next (ms); calling earlier is harmless.
    pub next_poll_at: Millis,
}

/// Where one symbol stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SymbolState {
    /// The symbol.
    pub spec: SymbolSpec,
    /// Open time of the earliest bar not yet emitted (ms); `None` before the first poll.
    pub cursor: Option<Millis>,
    /// Open time of the last bar emitted (or dead-lettered).
    pub last_ts: Option<Millis>,
    /// When the symbol is due (ms).
    pub next_at: Millis,
    /// How often the exchange rejected it.
    pub rejections: u64,
}

/// Polls one exchange for a list of symbols, one request per [`Poller::poll_once`].
pub struct Poller<F = UreqFetch> {
    cfg: BuiltConnector,
    fetch: F,
    bounds: TimeBounds,
    symbols: Vec<SymbolState>,
    /// No request before this (request spacing, backoff).
    not_before: Millis,
    backoff: Backoff,
    metrics: Arc<ConnectorMetrics>,
}

fn ms(d: Duration) -> Millis {
    Millis::try_from(d.as_millis()).unwrap_or(Millis::MAX / 4)
}

impl<F: Fetch> Poller<F> {
    /// A poller for `cfg`'s symbols over `fetch`; `seed` drives the backoff jitter.
    /// Every symbol is due at once.
    pub fn new(cfg: BuiltConnector, fetch: F, seed: u64) -> Poller<F> {
        let symbols = cfg
            .symbols
            .iter()
            .map(|spec| SymbolState {
                spec: spec.clone(),
                cursor: None,
                last_ts: None,
                next_at: Millis::MIN,
                rejections: 0,
            })
            .collect();
        let backoff = cfg.backoff_policy().backoff(seed);
        Poller {
            cfg,
            fetch,
            bounds: TimeBounds::default(),
            symbols,
            not_before: Millis::MIN,
            backoff,
            metrics: Arc::new(ConnectorMetrics::default()),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &BuiltConnector {
        &self.cfg
    }

    /// Every symbol's state, in config order.
    pub fn symbols(&self) -> &[SymbolState] {
        &self.symbols
    }

    /// The counters (shared, for a metrics endpoint).
    pub fn metrics(&self) -> &Arc<ConnectorMetrics> {
        &self.metrics
    }

    /// When the next request may be made (ms).
    pub fn next_poll_at(&self) -> Millis {
        let due = self.symbols.iter().map(|s| s.next_at).min().unwrap_or(Millis::MAX);
        due.max(self.not_before)
    }

    /// Makes at most one request (for the symbol due first) if one is due at `now` (ms
    /// since the epoch, UTC), and returns the new closed bars, the invalid rows and when to
    /// call again.
    pub fn poll_once(&mut self, now: Millis) -> Poll {
        let due = (0..self.symbols.len()).min_by_key(|&i| self.symbols[i].next_at);
        let Some(i) = due.filter(|&i| self.symbols[i].next_at <= now && self.not_before <= now) else {
            let next_poll_at =
                if self.symbols.is_empty() { now + ms(self.cfg.poll_interval) } else { self.next_poll_at() };
            return Poll {
                symbol: None,
                outcome: Outcome::Idle,
                bars: Vec::new(),
                dead_letters: Vec::new(),
                next_poll_at,
            };
        };
        let started = Instant::now();
        let period = self.cfg.period_ms;
        // A bar is closed (final) once `ts + period <= close_limit`.
        let close_limit = now - ms(self.cfg.settle);
        let backfill = ms(self.cfg.backfill);
        let cfg = &self.cfg;
        let st = &mut self.symbols[i];
        let cursor = *st.cursor.get_or_insert_with(|| (now - backfill).div_euclid(period) * period);
        let (url, slice_end) = match cfg.exchange {
            Exchange::Nobitex => {
                let from_s = cursor.div_euclid(1000);
                let span_s = cfg.max_bars_per_request as i64 * period / 1000;
                let to_s = (from_s + span_s - 1).min(now.div_euclid(1000)).max(from_s);
                (nobitex::history_url(&cfg.base_url, &st.spec.remote, &cfg.resolution, from_s, to_s), Some(to_s * 1000))
            }
            Exchange::Alphavantage => {
                let full = (now - cursor) / period > alphavantage::COMPACT_BARS;
                let key = cfg.api_key.as_ref().map_or("", |k| k.expose());
                (alphavantage::intraday_url(&cfg.base_url, &st.spec, &cfg.resolution, full, key), None)
            }
        };
        self.not_before = now + ms(cfg.request_interval);
        let reply = match self.fetch.get(&url) {
            Err(e) => Reply::Transient { retry_after: None, message: e.to_string() },
            Ok(resp) => classify(cfg.exchange, resp, &st.spec, &self.bounds, now),
        };

        let symbol = st.spec.symbol;
        let mut bars = Vec::new();
        let mut dead_letters = Vec::new();
        let outcome = match reply {
            Reply::Rows(mut rows) => {
                self.backoff.reset();
                // Stable: rows without a readable time keep their place at the front.
                rows.sort_by_key(|r| r.ts.unwrap_or(Millis::MIN));
                let received = rows.len();
                let (mut duplicates, mut forming) = (0, 0);
                let mut last = st.last_ts;
                for row in rows {
                    if let Some(ts) = row.ts {
                        if ts < cursor || last.is_some_and(|l| ts <= l) {
                            duplicates += 1;
                            continue;
                        }
                        if ts + period > close_limit {
                            forming += 1;
                            continue;
                        }
                        last = Some(ts);
                    }
                    match row.bar {
                        Ok(bar) => bars.push(bar),
                        Err(e) => dead_letters.push(DeadRow {
                            symbol,
                            index: e.record().saturating_sub(1),
                            field: e.field().map(String::from),
                            reason: e.kind.to_string(),
                            raw: row.raw,
                        }),
                    }
                }
                let mut new_cursor = last.map_or(cursor, |l| cursor.max(l + period));
                let mut behind = false;
                if let Some(end) = slice_end {
                    // A page wholly in the closed past is complete: nothing more can appear
                    // in it, even where it had no bars (no trades).
                    if end + period <= close_limit {
                        new_cursor = new_cursor.max(end + 1000);
                        behind = new_cursor + period <= close_limit;
                    }
                }
                st.cursor = Some(new_cursor);
                st.last_ts = last;
                st.next_at = if behind { now } else { now + ms(cfg.poll_interval) };
                Outcome::Rows { received, duplicates, forming }
            }
            Reply::RateLimited { retry_after, message } => {
                // Never sooner than the request spacing, nor than the server asked.
                let delay = self.backoff.next_delay().max(retry_after.unwrap_or_default()).max(cfg.request_interval);
                self.not_before = now + ms(delay);
                Outcome::RateLimited { message, delay }
            }
            Reply::Transient { retry_after, message } => {
                let delay = self.backoff.next_delay().max(retry_after.unwrap_or_default()).max(cfg.request_interval);
                self.not_before = now + ms(delay);
                Outcome::Transient { message, delay }
            }
            Reply::Rejected(message) => {
                self.backoff.reset();
                st.rejections += 1;
                st.next_at = now + ms(cfg.backoff_max);
                Outcome::Rejected { message, retry_at: st.next_at }
            }
        };
        PollCompleted {
            exchange: cfg.exchange,
            symbol: symbol.as_str(),
            outcome: &outcome,
            bars: bars.len(),
            dead_letters: dead_letters.len(),
            elapsed: started.elapsed(),
        }
        .emit(&self.metrics);
        Poll { symbol: Some(symbol), outcome, bars, dead_letters, next_poll_at: self.next_poll_at() }
    }
}

/// An HTTP answer to a [`Reply`].
fn classify(exchange: Exchange, resp: HttpResponse, spec: &SymbolSpec, bounds: &TimeBounds, now: Millis) -> Reply {
    let retry_after = resp.retry_after.as_deref().and_then(|v| parse_retry_after(v, now));
    let message = || {
        let text = String::from_utf8_lossy(&resp.body[..resp.body.len().min(300)]).trim().to_string();
        format!("HTTP {}: {text}", resp.status)
    };
    match resp.status {
        200 => match exchange {
            Exchange::Nobitex => nobitex::parse_history(&resp.body, spec.symbol, bounds),
            Exchange::Alphavantage => alphavantage::parse_intraday(&resp.body, spec, bounds),
        },
        429 => Reply::RateLimited { retry_after, message: message() },
        408 | 500..=599 => Reply::Transient { retry_after, message: message() },
        _ => Reply::Rejected(message()),
    }
}
