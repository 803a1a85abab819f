//! The sink: writer threads of its own that batch rows from bounded input, write them, retry,
//! isolate rejected rows and acknowledge what was written.
//!
//! Timely workers are synchronous, so they never talk to QuestDB themselves: they encode rows
//! into a [`RowBatch`] and hand it to a [`SinkHandle`]. The handle admits at most `queue-rows`
//! rows that are not yet written; beyond that [`SinkHandle::send`] blocks (backpressure, which
//! slows the dataflow down to what QuestDB absorbs) and [`SinkHandle::try_send`] returns the
//! batch.
//!
//! The sink has `connections` lanes, each a thread with its own connection. A handle made by
//! [`QuestDbSink::handle_for`] always uses the same lane, so one producer's batches are written
//! and acknowledged in the order they were sent (and a row key, which belongs to one worker,
//! never has two versions in flight on two connections). With `batching = "adaptive"` (the
//! default) a lane sends as soon as no more rows wait for it — an idle sink adds no delay, a
//! busy one sends what collected while its previous request was in flight; with `"fill"` it
//! waits for `max-rows`, `max-bytes` or `max-delay`. Either way a request never exceeds
//! `max-rows`/`max-bytes` (unless one input batch does) and waits at most `max-delay`.

use std::ops::Range;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use thiserror::Error;

use super::config::{Batching, QuestDbConfig, Transport as TransportKind};
use super::encode::RowBatch;
use super::stats::{SinkStats, StatsSnapshot};
use super::tables::{DeadLetter, Tables};
use super::transport::{Http, SinkError, Tcp, Transport, WriteOutcome};

/// A row QuestDB rejected, with the server's reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectedRow {
    /// The row as sent, without its newline.
    pub line: String,
    /// QuestDB's message (for HTTP 400 the JSON `message`).
    pub message: String,
}

impl RejectedRow {
    fn new(row: &[u8], message: String) -> RejectedRow {
        let row = row.strip_suffix(b"\n").unwrap_or(row);
        RejectedRow { line: String::from_utf8_lossy(row).into_owned(), message }
    }

    /// As a [`DeadLetter`] from source `questdb`, to be written to the `dead_letters` table.
    pub fn to_dead_letter(&self, ts_ms: i64) -> DeadLetter {
        DeadLetter { ts_ms, source: "questdb".into(), reason: self.message.clone(), payload: self.line.clone() }
    }
}

/// Why a batch was not accepted by [`SinkHandle::send`] or [`SinkHandle::try_send`]; the batch
/// is handed back.
#[derive(Debug, Error)]
pub enum SendError {
    /// `queue-rows` rows are already waiting (only from `try_send`).
    #[error("the QuestDB sink queue is full")]
    Full(RowBatch),
    /// The sink has stopped; the error says why (boxed to keep the `Result` small).
    #[error("the QuestDB sink has stopped: {1}")]
    Stopped(RowBatch, Box<SinkError>),
}

type AckFn = Box<dyn FnMut(u64) + Send>;
type RejectFn = Box<dyn FnMut(RejectedRow) + Send>;

/// The callbacks, shared by the lanes (called once per flush, never per row).
#[derive(Clone, Default)]
struct Callbacks {
    on_ack: Option<Arc<Mutex<AckFn>>>,
    on_rejected: Option<Arc<Mutex<RejectFn>>>,
}

enum Msg {
    Rows(RowBatch),
    Flush(Sender<Result<(), SinkError>>),
    Close,
}

/// Admission control in rows, shared by handles and the sink thread.
struct Shared {
    gate: Mutex<Gate>,
    cond: Condvar,
    cap: usize,
    stats: Arc<SinkStats>,
}

struct Gate {
    in_use: usize,
    stopped: Option<SinkError>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Gate> {
        // The gate's fields are updated in single statements; a poisoned lock is still consistent.
        self.gate.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reserves `n` rows. A batch larger than the whole capacity is admitted when nothing else
    /// is in flight, so it cannot wait forever.
    fn acquire(&self, n: usize, block: bool) -> Result<(), Option<SinkError>> {
        let mut g = self.lock();
        loop {
            if let Some(e) = &g.stopped {
                return Err(Some(e.clone()));
            }
            if g.in_use == 0 || g.in_use + n <= self.cap {
                g.in_use += n;
                self.stats.set_queue_rows(g.in_use);
                return Ok(());
            }
            if !block {
                return Err(None);
            }
            g = self.cond.wait(g).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn release(&self, n: usize) {
        let mut g = self.lock();
        g.in_use = g.in_use.saturating_sub(n);
        self.stats.set_queue_rows(g.in_use);
        self.cond.notify_all();
    }

    fn stop(&self, e: SinkError) {
        self.lock().stopped.get_or_insert(e);
        self.cond.notify_all();
    }

    fn stopped(&self) -> SinkError {
        self.lock().stopped.clone().unwrap_or(SinkError::Closed)
    }
}

/// The producer side of the sink: cheap to clone, `Send`, one per timely worker. Its batches
/// go through one lane (connection), in order.
#[derive(Clone)]
pub struct SinkHandle {
    /// Every lane's input; `lane` indexes the one this handle sends to.
    lanes: Arc<[Sender<Msg>]>,
    lane: usize,
    pool: Receiver<RowBatch>,
    shared: Arc<Shared>,
}

impl SinkHandle {
    /// An empty batch, recycled from earlier sends when possible (so steady-state encoding
    /// does not allocate).
    pub fn batch(&self) -> RowBatch {
        self.pool.try_recv().unwrap_or_default()
    }

    /// Queues `batch`, blocking while `queue-rows` rows are already waiting (backpressure).
    /// Fails only when the sink has stopped.
    pub fn send(&self, batch: RowBatch) -> Result<(), SendError> {
        let n = batch.rows();
        if let Err(e) = self.shared.acquire(n, true) {
            return Err(SendError::Stopped(batch, Box::new(e.unwrap_or(SinkError::Closed))));
        }
        self.lanes[self.lane].send(Msg::Rows(batch)).map_err(|e| {
            self.shared.release(n);
            match e.0 {
                Msg::Rows(b) => SendError::Stopped(b, Box::new(self.shared.stopped())),
                _ => unreachable!("sent Rows"),
            }
        })
    }

    /// Queues `batch` if there is room now; otherwise hands it back in [`SendError::Full`].
    pub fn try_send(&self, batch: RowBatch) -> Result<(), SendError> {
        let n = batch.rows();
        match self.shared.acquire(n, false) {
            Ok(()) => {}
            Err(None) => return Err(SendError::Full(batch)),
            Err(Some(e)) => return Err(SendError::Stopped(batch, Box::new(e))),
        }
        self.lanes[self.lane].try_send(Msg::Rows(batch)).map_err(|e| {
            self.shared.release(n);
            match e {
                TrySendError::Full(Msg::Rows(b)) => SendError::Full(b),
                TrySendError::Disconnected(Msg::Rows(b)) => SendError::Stopped(b, Box::new(self.shared.stopped())),
                _ => unreachable!("sent Rows"),
            }
        })
    }

    /// Writes everything queued before this call and waits for it: on `Ok`, every row sent
    /// earlier through any handle (on any lane) is written or was handed to the rejected-row
    /// callback.
    pub fn flush(&self) -> Result<(), SinkError> {
        let (tx, rx) = crossbeam_channel::bounded(self.lanes.len());
        for lane in self.lanes.iter() {
            lane.send(Msg::Flush(tx.clone())).map_err(|_| self.shared.stopped())?;
        }
        drop(tx);
        let mut result = Ok(());
        for _ in 0..self.lanes.len() {
            let r = rx.recv().unwrap_or_else(|_| Err(self.shared.stopped()));
            if result.is_ok() {
                result = r;
            }
        }
        result
    }

    /// The number of lanes (connections) of the sink.
    pub fn lanes(&self) -> usize {
        self.lanes.len()
    }

    /// A handle sending through lane `producer % lanes`.
    pub fn for_producer(&self, producer: usize) -> SinkHandle {
        SinkHandle { lane: producer % self.lanes.len(), ..self.clone() }
    }

    /// The sink's counters.
    pub fn stats(&self) -> &SinkStats {
        &self.shared.stats
    }
}

/// Configures and starts a [`QuestDbSink`].
pub struct SinkBuilder {
    config: QuestDbConfig,
    workers: usize,
    ddl: Vec<String>,
    on_ack: Option<AckFn>,
    on_rejected: Option<RejectFn>,
    status: Option<Arc<crate::status::ProcessMetrics>>,
}

impl SinkBuilder {
    /// The workers of this process: the number of connections when `connections` is not set.
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n.max(1);
        self
    }

    /// More `CREATE TABLE` statements to run at start (tables of other modules, e.g. alerts).
    pub fn extra_ddl(mut self, ddl: impl IntoIterator<Item = String>) -> Self {
        self.ddl.extend(ddl);
        self
    }

    /// Called on a sink thread with each batch's sequence number once all its rows are
    /// written: in send order for the batches of one handle (one lane); the lanes call it one
    /// at a time. Advance source offsets here.
    pub fn on_ack(mut self, f: impl FnMut(u64) + Send + 'static) -> Self {
        self.on_ack = Some(Box::new(f));
        self
    }

    /// Called on the sink thread for every row QuestDB rejected, before the batch holding it
    /// is acknowledged. Without a callback rejected rows are logged at error level (and
    /// counted in any case).
    pub fn on_rejected(mut self, f: impl FnMut(RejectedRow) + Send + 'static) -> Self {
        self.on_rejected = Some(Box::new(f));
        self
    }

    /// Publishes the sink's health to `metrics` as it changes: reachability (so `/ready`
    /// fails while writes fail), retries, failures, the last error and the queued rows.
    pub fn report_to(mut self, metrics: Arc<crate::status::ProcessMetrics>) -> Self {
        self.status = Some(metrics);
        self
    }

    /// Validates the config, creates the tables (when `create-tables`), and starts the lanes.
    pub fn start(self) -> Result<QuestDbSink, SinkError> {
        let c = self.config;
        let problems = c.validate();
        if !problems.is_empty() {
            return Err(SinkError::Config(problems));
        }
        let stats = Arc::new(SinkStats::reporting_to(self.status));
        if c.create_tables {
            // validate() requires rest-addr with tcp + create-tables.
            let rest = match c.transport {
                TransportKind::Http => c.addr.as_str(),
                TransportKind::Tcp => c.rest_addr.as_deref().unwrap_or(&c.addr),
            };
            create_tables(&mut Http::new(&c, rest, stats.clone()), &self.ddl)?;
        }
        // Started (and the tables created, if asked): reachable until a write says otherwise.
        stats.reachable();
        let shared = Arc::new(Shared {
            gate: Mutex::new(Gate { in_use: 0, stopped: None }),
            cond: Condvar::new(),
            cap: c.queue_rows,
            stats: stats.clone(),
        });
        let callbacks = Callbacks {
            on_ack: self.on_ack.map(|f| Arc::new(Mutex::new(f))),
            on_rejected: self.on_rejected.map(|f| Arc::new(Mutex::new(f))),
        };
        let n = c.connections_for(self.workers);
        let (pool_tx, pool_rx) = crossbeam_channel::bounded(64);
        let mut senders = Vec::with_capacity(n);
        let mut threads = Vec::with_capacity(n);
        for lane in 0..n {
            let transport: Box<dyn Transport> = match c.transport {
                TransportKind::Http => Box::new(Http::new(&c, &c.addr, stats.clone())),
                TransportKind::Tcp => Box::new(Tcp::new(&c, stats.clone())),
            };
            // Messages, not rows: the gate bounds rows; this only bounds the channel's slots.
            let (tx, rx) = crossbeam_channel::bounded(c.queue_rows);
            let worker = Lane {
                transport,
                shared: shared.clone(),
                batching: c.batching,
                max_rows: c.max_rows,
                max_bytes: c.max_bytes,
                max_delay: c.max_delay.get(),
                pending: RowBatch::with_capacity(c.max_rows.min(1 << 16), c.max_bytes.min(64 << 20)),
                marks: Vec::new(),
                first_at: None,
                callbacks: callbacks.clone(),
                pool: pool_tx.clone(),
            };
            let thread = std::thread::Builder::new()
                .name(format!("questdb-sink-{lane}"))
                .spawn(move || worker.run(rx))
                .map_err(|e| SinkError::Request(format!("cannot start a sink thread: {e}")));
            match thread {
                Ok(t) => {
                    senders.push(tx);
                    threads.push(t);
                }
                Err(e) => {
                    // Stop the lanes already started before reporting.
                    drop(tx);
                    for s in &senders {
                        let _ = s.send(Msg::Close);
                    }
                    for t in threads {
                        let _ = t.join();
                    }
                    return Err(e);
                }
            }
        }
        tracing::info!(addr = %c.addr, transport = ?c.transport, connections = n, batching = ?c.batching, max_rows = c.max_rows, queue_rows = c.queue_rows, "QuestDB sink started.");
        let handle = SinkHandle { lanes: senders.into(), lane: 0, pool: pool_rx, shared };
        Ok(QuestDbSink { handle, threads })
    }
}

fn create_tables(http: &mut Http, ddl: &[String]) -> Result<(), SinkError> {
    for sql in ddl {
        http.exec(sql)?;
        tracing::info!(statement = %sql, "QuestDB table ensured.");
    }
    Ok(())
}

/// The QuestDB sink: owns the writer thread. See the module docs for the behaviour.
pub struct QuestDbSink {
    handle: SinkHandle,
    threads: Vec<JoinHandle<()>>,
}

impl QuestDbSink {
    /// A builder for a sink writing the `tables`.
    pub fn builder(config: QuestDbConfig, tables: &Tables) -> SinkBuilder {
        SinkBuilder { config, workers: 1, ddl: tables.ddl(), on_ack: None, on_rejected: None, status: None }
    }

    /// A producer handle on the first lane.
    pub fn handle(&self) -> SinkHandle {
        self.handle.clone()
    }

    /// A handle for producer (worker) `producer`: always the same lane, `producer % lanes`.
    pub fn handle_for(&self, producer: usize) -> SinkHandle {
        self.handle.for_producer(producer)
    }

    /// The sink's counters.
    pub fn stats(&self) -> &SinkStats {
        self.handle.stats()
    }

    /// See [`SinkHandle::flush`].
    pub fn flush(&self) -> Result<(), SinkError> {
        self.handle.flush()
    }

    /// Writes everything queued, stops the thread and returns the final counters; the error
    /// if the sink had stopped on one. Sends through other handles fail afterwards.
    pub fn close(mut self) -> Result<StatsSnapshot, SinkError> {
        self.shutdown();
        let snap = self.stats().snapshot();
        match self.handle.shared.stopped() {
            SinkError::Closed => Ok(snap),
            e => Err(e),
        }
    }

    fn shutdown(&mut self) {
        if self.threads.is_empty() {
            return;
        }
        for lane in self.handle.lanes.iter() {
            let _ = lane.send(Msg::Close);
        }
        for t in self.threads.drain(..) {
            if t.join().is_err() {
                self.handle.shared.stop(SinkError::Request("a sink thread panicked".into()));
            }
        }
    }
}

impl Drop for QuestDbSink {
    /// Drains and stops like [`QuestDbSink::close`].
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// One connection and the thread writing to it.
struct Lane {
    transport: Box<dyn Transport>,
    shared: Arc<Shared>,
    batching: Batching,
    max_rows: usize,
    max_bytes: usize,
    max_delay: Duration,
    /// Rows waiting for the next flush, back to back.
    pending: RowBatch,
    /// Per input batch in `pending`: its sequence number and row count.
    marks: Vec<(Option<u64>, usize)>,
    /// When the oldest pending batch arrived.
    first_at: Option<Instant>,
    callbacks: Callbacks,
    pool: Sender<RowBatch>,
}

/// Marks the sink stopped however the thread ends, so that senders blocked on backpressure
/// wake up even if a user callback panicked.
struct StopOnExit(Arc<Shared>);

impl Drop for StopOnExit {
    fn drop(&mut self) {
        // Keeps an earlier, more precise error if there is one.
        self.0.stop(SinkError::Request("the sink thread ended by a panic".into()));
    }
}

impl Lane {
    fn run(mut self, rx: Receiver<Msg>) {
        let _stop = StopOnExit(self.shared.clone());
        let err = match self.serve(&rx) {
            Ok(()) => SinkError::Closed,
            Err(e) => {
                self.shared.stats.failed(&e.to_string());
                e
            }
        };
        self.shared.stop(err.clone());
        // Answer flushes that were queued behind the failure; batches are dropped unacknowledged.
        for msg in rx.try_iter() {
            if let Msg::Flush(reply) = msg {
                let _ = reply.send(Err(err.clone()));
            }
        }
    }

    fn serve(&mut self, rx: &Receiver<Msg>) -> Result<(), SinkError> {
        loop {
            let msg = match self.first_at {
                Some(t) => match rx.recv_deadline(t + self.max_delay) {
                    Ok(m) => Some(m),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => Some(Msg::Close),
                },
                None => Some(rx.recv().unwrap_or(Msg::Close)),
            };
            match msg {
                None => self.flush()?,
                Some(Msg::Rows(mut b)) => {
                    if !self.pending.is_empty() && self.pending.len_bytes() + b.len_bytes() > self.max_bytes {
                        self.flush()?;
                    }
                    self.pending.append(&b);
                    self.marks.push((b.seq(), b.rows()));
                    self.first_at.get_or_insert_with(Instant::now);
                    b.clear();
                    let _ = self.pool.try_send(b);
                    if self.pending.rows() >= self.max_rows
                        || self.pending.len_bytes() >= self.max_bytes
                        || self.pending.is_empty()
                        || (self.batching == Batching::Adaptive && rx.is_empty())
                    {
                        self.flush()?;
                    }
                }
                Some(Msg::Flush(reply)) => {
                    let r = self.flush();
                    let _ = reply.send(r.clone());
                    r?;
                }
                Some(Msg::Close) => return self.flush(),
            }
        }
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.first_at = None;
        if self.marks.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let rows = self.pending.rows();
        let mut rejected = Vec::new();
        if rows > 0 {
            if self.transport.reports_rejections() {
                write_isolating(self.transport.as_mut(), &self.pending, 0..rows, &mut rejected)?;
            } else {
                self.transport.write(self.pending.as_bytes())?;
            }
        }
        if !rejected.is_empty() {
            self.shared.stats.rejected(rejected.len());
            tracing::warn!(rows = rejected.len(), first = %rejected[0].message, "QuestDB rejected rows; they were isolated and the rest written.");
        }
        let n_rejected = rejected.len();
        match &self.callbacks.on_rejected {
            Some(f) if !rejected.is_empty() => {
                let mut f = f.lock().unwrap_or_else(|e| e.into_inner());
                for r in rejected {
                    f(r);
                }
            }
            _ => {
                for r in rejected {
                    tracing::error!(line = %r.line, reason = %r.message, "QuestDB rejected a row.")
                }
            }
        }
        self.shared.stats.flushed(rows, n_rejected, self.pending.len_bytes(), started.elapsed());
        let mut released = 0;
        let mut on_ack = self.callbacks.on_ack.as_ref().map(|f| f.lock().unwrap_or_else(|e| e.into_inner()));
        for (seq, n) in self.marks.drain(..) {
            released += n;
            if let Some(s) = seq {
                self.shared.stats.ack(s);
                if let Some(f) = on_ack.as_mut() {
                    f(s);
                }
            }
        }
        drop(on_ack);
        self.pending.clear();
        self.shared.release(released);
        Ok(())
    }
}

/// Writes rows `range` of `batch`. When QuestDB rejects the request (which it does whole),
/// splits it around the line it names — or in halves without a usable line number — and
/// writes each part, until every rejected row stands alone; those go to `out`. A wrong line
/// number costs requests, never correctness.
fn write_isolating(
    t: &mut dyn Transport,
    batch: &RowBatch,
    range: Range<usize>,
    out: &mut Vec<RejectedRow>,
) -> Result<(), SinkError> {
    if range.is_empty() {
        return Ok(());
    }
    let (message, line) = match t.write(batch.rows_bytes(range.clone()))? {
        WriteOutcome::Written => return Ok(()),
        WriteOutcome::Rejected { line, message } => (message, line),
        WriteOutcome::TooLarge { message } => (format!("request too large (HTTP 413): {message}"), None),
    };
    if range.len() == 1 {
        out.push(RejectedRow::new(batch.row(range.start), message));
        return Ok(());
    }
    tracing::debug!(rows = range.len(), line, "QuestDB rejected a request; isolating the bad rows.");
    match line.and_then(|l| l.checked_sub(1)).filter(|&i| i < range.len()) {
        Some(i) => {
            let bad = range.start + i;
            write_isolating(t, batch, range.start..bad, out)?;
            write_isolating(t, batch, bad..bad + 1, out)?;
            write_isolating(t, batch, bad + 1..range.end, out)
        }
        None => {
            let mid = range.start + range.len() / 2;
            write_isolating(t, batch, range.start..mid, out)?;
            write_isolating(t, batch, mid..range.end, out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rejects (whole) any request holding a line with "BAD", naming its 1-based line, or a
    /// wrong line when `lie` is set.
    struct Picky {
        lie: bool,
        written: Vec<String>,
        requests: usize,
    }

    impl Transport for Picky {
        fn write(&mut self, body: &[u8]) -> Result<WriteOutcome, SinkError> {
            self.requests += 1;
            let text = std::str::from_utf8(body).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            match lines.iter().position(|l| l.contains("BAD")) {
                Some(i) => Ok(WriteOutcome::Rejected {
                    line: Some(if self.lie { 1 } else { i + 1 }),
                    message: format!("bad line {}", i + 1),
                }),
                None => {
                    self.written.extend(lines.iter().map(|l| l.to_string()));
                    Ok(WriteOutcome::Written)
                }
            }
        }
        fn reports_rejections(&self) -> bool {
            true
        }
    }

    fn batch(lines: &[&str]) -> RowBatch {
        let t = super::super::encode::Name::table("t").unwrap();
        let c = super::super::encode::Name::column("v").unwrap();
        let mut b = RowBatch::new();
        for (i, l) in lines.iter().enumerate() {
            b.line(&t).str(&c, l).at_nanos(i as i64).unwrap();
        }
        b
    }

    #[test]
    fn isolation_writes_every_good_row_once_with_true_or_false_hints() {
        let input = ["a", "BAD1", "b", "c", "BAD2", "d", "e"];
        for lie in [false, true] {
            let b = batch(&input);
            let mut t = Picky { lie, written: vec![], requests: 0 };
            let mut out = vec![];
            write_isolating(&mut t, &b, 0..b.rows(), &mut out).unwrap();
            let good: Vec<String> = (0..b.rows())
                .filter(|&i| !input[i].contains("BAD"))
                .map(|i| RejectedRow::new(b.row(i), String::new()).line)
                .collect();
            assert_eq!(t.written, good, "lie={lie}");
            assert_eq!(out.iter().map(|r| r.line.contains("BAD")).filter(|x| *x).count(), 2);
            assert_eq!(out.len(), 2);
        }
    }
}
