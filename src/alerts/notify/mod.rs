//! Delivery of fired alerts: the `alerts` Kafka topic, the QuestDB `alerts` table, and the
//! rule's channel (webhook, Slack, Telegram), on a thread of its own.
//!
//! Workers hand alerts over through a *bounded* queue ([`NotifierHandle::offer`]); when it is
//! full the alert goes to the dead-letter file (counted) instead of blocking the worker. The
//! thread retries retryable failures (connection errors, timeouts, 408, 429, 5xx) with
//! exponential backoff, at most `max-attempts` times, and sends to one channel at most once
//! per `min-interval`. An alert that cannot be delivered (attempts exhausted, a permanent
//! 4xx, no Telegram token, shutdown before delivery) is appended to the dead-letter file.
//! Every attempt's outcome is counted ([`NotifyStats`]).
//!
//! Before each webhook or Slack request the URL's host is resolved and checked against
//! `alerts.allowed-hosts` ([`target`]); redirects are never followed, and URLs in logs and
//! dead letters are redacted.
//!
//! At least once: a request whose answer is lost is retried, so a receiver can see an alert
//! twice; it carries the same [`AlertEvent::id`] both times.

pub mod slack;
pub mod target;
pub mod telegram;
pub mod webhook;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde::Serialize;
use tickflow_operators::dataflow::alerts::{Alert, from_fixed};
use tickflow_operators::rows::timeframe_label;
use tickflow_operators::time::format_rfc3339;

use super::config::AlertsConfig;
use super::rule::{Channel, RuleDef};
use crate::retry::Policy;
use crate::sinks::questdb::{Name, SinkHandle};

/// An HTTP request to send: URL, headers, body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// `http://...`.
    pub url: String,
    /// Header names and values, in order.
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// An alert as receivers see it (the webhook body, the alerts topic's value).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AlertEvent {
    /// Stable id, 16 hex digits: hash(rule id, symbol, event time). De-duplicate on it.
    pub id: String,
    /// The rule's id.
    pub rule: String,
    /// The rule's owner.
    pub owner: String,
    /// The symbol.
    pub symbol: String,
    /// `bar` or the candle timeframe (`1m`).
    pub timeframe: String,
    /// The rule's condition, as written.
    pub condition: String,
    /// The value that made it hold.
    pub value: f64,
    /// Event time of the bar (candle start), ms since the epoch.
    pub ts: i64,
    /// The same in RFC 3339.
    pub time: String,
}

impl AlertEvent {
    /// The event of `alert` fired by `rule`.
    pub fn new(alert: &Alert, rule: &RuleDef) -> AlertEvent {
        AlertEvent {
            id: format!("{:016x}", alert.id),
            rule: alert.rule.clone(),
            owner: rule.owner.clone(),
            symbol: alert.symbol.as_str().to_string(),
            timeframe: timeframe_label(alert.timeframe),
            condition: rule.condition.clone(),
            value: from_fixed(alert.value),
            ts: alert.ts,
            time: format_rfc3339(alert.ts),
        }
    }

    /// One line for chat channels.
    pub fn text(&self) -> String {
        format!(
            "{} {} ({}): {} = {} at {} [rule {}, alert {}]",
            self.symbol,
            self.condition,
            self.timeframe,
            self.condition.split_whitespace().next().unwrap_or("value"),
            self.value,
            self.time,
            self.rule,
            self.id
        )
    }

    /// A fixed event for examples and tests.
    pub fn example() -> AlertEvent {
        AlertEvent {
            id: "00000000000000ff".into(),
            rule: "r1".into(),
            owner: "alice".into(),
            symbol: "AAPL".into(),
            timeframe: "bar".into(),
            condition: "price > 100".into(),
            value: 101.5,
            ts: 1_700_000_000_000,
            time: format_rfc3339(1_700_000_000_000),
        }
    }
}

/// Counters of the notifier, shared with whoever reports them.
#[derive(Debug, Default)]
pub struct NotifyStats {
    /// Alerts accepted into the queue.
    pub queued: AtomicU64,
    /// Alerts refused because the queue was full (dead-lettered).
    pub overflowed: AtomicU64,
    /// Delivery attempts made.
    pub attempts: AtomicU64,
    /// Alerts delivered to their channel.
    pub delivered: AtomicU64,
    /// Attempts that failed and will be retried.
    pub retried: AtomicU64,
    /// Alerts written to the dead-letter file.
    pub dead_lettered: AtomicU64,
    /// Alerts written to the alerts topic.
    pub kafka_written: AtomicU64,
    /// Alerts the alerts topic did not take.
    pub kafka_failed: AtomicU64,
    /// Alerts queued to QuestDB.
    pub questdb_written: AtomicU64,
}

impl NotifyStats {
    /// (delivered, retried, dead-lettered, attempts, overflowed).
    pub fn summary(&self) -> (u64, u64, u64, u64, u64) {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        (g(&self.delivered), g(&self.retried), g(&self.dead_lettered), g(&self.attempts), g(&self.overflowed))
    }
}

/// The dead-letter file: one JSON object per line (`reason`, `alert`, `rule`).
#[derive(Debug)]
pub struct DeadLetters {
    path: PathBuf,
    lock: Mutex<()>,
    stats: Arc<NotifyStats>,
}

impl DeadLetters {
    /// Appends one undeliverable alert. A failing file is logged loudly: it is the last place
    /// the alert could be kept.
    pub fn write(&self, reason: &str, alert: &Alert) {
        let rule = serde_json::from_str::<serde_json::Value>(&alert.meta).unwrap_or(serde_json::Value::Null);
        let line = serde_json::json!({
            "reason": reason,
            "id": format!("{:016x}", alert.id),
            "rule": alert.rule,
            "symbol": alert.symbol.as_str(),
            "ts": alert.ts,
            "value": from_fixed(alert.value),
            "definition": rule,
        });
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let r = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .and_then(|mut f| writeln!(f, "{line}"));
        match r {
            Ok(()) => {
                self.stats.dead_lettered.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(alert = %format!("{:016x}", alert.id), rule = %alert.rule, reason, "alert dead-lettered");
            }
            Err(error) => tracing::error!(
                path = %self.path.display(), %error, alert = %line, "alert LOST: the dead-letter file cannot be written"
            ),
        }
    }
}

/// The workers' side of the notifier: cheap to clone, `Send`.
#[derive(Clone, Debug)]
pub struct NotifierHandle {
    tx: Sender<(u64, Alert)>,
    dead: Arc<DeadLetters>,
    stats: Arc<NotifyStats>,
    /// The sequence number of the last alert queued (queued in this order, under the lock).
    sent: Arc<Mutex<u64>>,
    /// Every alert up to this sequence number is kept (in the outbox, or handed on).
    kept: Arc<AtomicU64>,
    /// Why the outbox cannot be written, once it cannot.
    failure: Arc<Mutex<Option<String>>>,
}

impl NotifierHandle {
    /// Queues `alerts` without blocking; those that do not fit are dead-lettered. Counters
    /// are updated once per call. Returns the sequence number to wait for with
    /// [`NotifierHandle::kept`] (0: nothing was queued).
    pub fn offer(&self, alerts: impl IntoIterator<Item = Alert>) -> u64 {
        let (mut queued, mut overflowed) = (0, 0);
        let mut sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        let mut last = 0;
        for a in alerts {
            match self.tx.try_send((*sent + 1, a)) {
                Ok(()) => {
                    queued += 1;
                    *sent += 1;
                    last = *sent;
                }
                Err(TrySendError::Full((_, a))) => {
                    overflowed += 1;
                    self.dead.write("notification queue full", &a);
                }
                Err(TrySendError::Disconnected((_, a))) => {
                    overflowed += 1;
                    self.dead.write("notifier stopped", &a);
                }
            }
        }
        drop(sent);
        self.stats.queued.fetch_add(queued, Ordering::Relaxed);
        self.stats.overflowed.fetch_add(overflowed, Ordering::Relaxed);
        last
    }

    /// Whether the alerts queued up to `seq` are kept: written to the outbox (fsynced), from
    /// which a restarted notifier delivers whatever was not delivered yet. The workers'
    /// alert sink holds the frontier until then, so a checkpoint never covers an alert that
    /// a crash could lose.
    pub fn kept(&self, seq: u64) -> bool {
        self.kept.load(Ordering::Acquire) >= seq
    }

    /// Why the notifier cannot keep alerts any more (the outbox failed), if it cannot.
    pub fn failure(&self) -> Option<String> {
        self.failure.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The counters.
    pub fn stats(&self) -> Arc<NotifyStats> {
        self.stats.clone()
    }
}

/// A failed notifier start.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The alerts-topic producer could not be created.
    #[error("alerts topic {topic}: creating the producer: {message}")]
    Kafka {
        /// The topic.
        topic: String,
        /// librdkafka's message.
        message: String,
    },
    /// The thread could not be spawned.
    #[error("spawning the notifier thread: {0}")]
    Thread(#[source] std::io::Error),
    /// The outbox could not be read or written.
    #[error("alerts outbox {path}: {source}")]
    Outbox {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Optional outputs besides the channels.
#[derive(Default)]
pub struct Outputs {
    /// QuestDB: the sink's handle and the `alerts` table's name.
    pub questdb: Option<(SinkHandle, Name)>,
    /// The outbox file ([`Outbox`]); none: alerts are kept in memory only.
    pub outbox: Option<PathBuf>,
}

/// The notifier's write-ahead log (NDJSON): every alert is appended and fsynced
/// (`{"alert":{..}}`) before the workers' frontier may pass it, and marked done
/// (`{"done":"<id>"}`) once delivered or dead-lettered. A notifier starting on an existing
/// outbox delivers every alert not marked done (same id: receivers de-duplicate), so an alert
/// fired before a crash is delivered after the restart even though the restored checkpoint
/// says it has fired. The file is rewritten with only the undelivered alerts at start and
/// whenever it holds more than [`Outbox::COMPACT_LINES`] lines.
pub struct Outbox {
    path: PathBuf,
    file: std::fs::File,
    lines: usize,
}

impl Outbox {
    /// Lines after which the outbox is rewritten with the undelivered alerts only.
    pub const COMPACT_LINES: usize = 10_000;

    /// Opens (or creates) the outbox at `path`; returns it with the alerts not yet done.
    pub fn open(path: &std::path::Path) -> std::io::Result<(Outbox, Vec<Alert>)> {
        use std::io::BufRead as _;
        let mut alerts: Vec<Alert> = Vec::new();
        let mut done = std::collections::HashSet::new();
        match std::fs::File::open(path) {
            Ok(f) => {
                for line in std::io::BufReader::new(f).lines() {
                    let line = line?;
                    // A torn last line (a crash while appending) is not an alert that was kept.
                    let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
                    if let Some(a) = v.get("alert").and_then(|a| serde_json::from_value::<Alert>(a.clone()).ok()) {
                        alerts.push(a);
                    } else if let Some(id) = v.get("done").and_then(|d| d.as_str()) {
                        if let Ok(id) = u64::from_str_radix(id, 16) {
                            done.insert(id);
                        }
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let mut seen = std::collections::HashSet::new();
        alerts.retain(|a| !done.contains(&a.id) && seen.insert(a.id));
        let outbox = Outbox::rewrite(path, &alerts)?;
        Ok((outbox, alerts))
    }

    fn rewrite(path: &std::path::Path, alerts: &[Alert]) -> std::io::Result<Outbox> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("rewrite");
        {
            let mut w = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
            for a in alerts {
                writeln!(w, "{}", serde_json::json!({ "alert": a }))?;
            }
            w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        }
        std::fs::rename(&tmp, path)?;
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
        std::fs::File::open(dir)?.sync_all()?;
        let file = std::fs::OpenOptions::new().append(true).open(path)?;
        Ok(Outbox { path: path.to_path_buf(), file, lines: alerts.len() })
    }

    /// Appends `alerts` and fsyncs: they are kept.
    pub fn append<'a>(&mut self, alerts: impl IntoIterator<Item = &'a Alert>) -> std::io::Result<()> {
        let mut buf = Vec::new();
        for a in alerts {
            serde_json::to_writer(&mut buf, &serde_json::json!({ "alert": a }))?;
            buf.push(b'\n');
            self.lines += 1;
        }
        self.file.write_all(&buf)?;
        self.file.sync_data()
    }

    /// Marks an alert delivered or dead-lettered (not fsynced: at worst it is delivered again,
    /// with the same id).
    pub fn done(&mut self, id: u64) -> std::io::Result<()> {
        self.lines += 1;
        writeln!(self.file, "{}", serde_json::json!({ "done": format!("{id:016x}") }))
    }

    /// Rewrites the file with `pending` only once it grew past [`Outbox::COMPACT_LINES`].
    pub fn maybe_compact<'a>(&mut self, pending: impl Iterator<Item = &'a Alert>) -> std::io::Result<()> {
        if self.lines > Self::COMPACT_LINES {
            let pending: Vec<Alert> = pending.cloned().collect();
            *self = Outbox::rewrite(&self.path, &pending)?;
        }
        Ok(())
    }
}

/// The notifier thread. Dropping it (or [`Notifier::close`]) stops it after the queue drained.
pub struct Notifier {
    handle: NotifierHandle,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier").finish_non_exhaustive()
    }
}

/// Why one attempt failed.
#[derive(Debug)]
enum Failure {
    Retry(String),
    Permanent(String),
}

struct Job {
    alert: Alert,
    rule: Option<RuleDef>,
    attempt: u32,
}

impl Notifier {
    /// Starts the thread.
    pub fn start(cfg: &AlertsConfig, mut outputs: Outputs) -> Result<Notifier, NotifyError> {
        let stats = Arc::new(NotifyStats::default());
        let dead = Arc::new(DeadLetters { path: cfg.dead_letter.clone(), lock: Mutex::new(()), stats: stats.clone() });
        let (tx, rx) = crossbeam_channel::bounded(cfg.queue);
        let (outbox, recovered) = match outputs.outbox.take() {
            Some(path) => {
                let (o, pending) = Outbox::open(&path)
                    .map_err(|e| NotifyError::Outbox { path: path.display().to_string(), source: e })?;
                if !pending.is_empty() {
                    tracing::info!(path = %path.display(), alerts = pending.len(), "delivering the alerts the outbox kept");
                }
                (Some(o), pending)
            }
            None => (None, Vec::new()),
        };
        let producer = if cfg.alerts_topic.is_empty() {
            None
        } else {
            let p: BaseProducer = ClientConfig::new()
                .set("bootstrap.servers", &cfg.brokers)
                .set("message.timeout.ms", "30000")
                .create()
                .map_err(|e| NotifyError::Kafka { topic: cfg.alerts_topic.clone(), message: e.to_string() })?;
            Some(p)
        };
        let mut worker = Worker {
            cfg: cfg.clone(),
            retry: cfg.retry_policy(),
            agent: ureq::Agent::new_with_config(
                ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .timeout_connect(Some(cfg.http_timeout()))
                    .timeout_global(Some(cfg.http_timeout()))
                    // A redirect would take the request past the target checks.
                    .max_redirects(0)
                    .build(),
            ),
            targets: target::TargetPolicy::new(&cfg.allowed_hosts),
            producer,
            outputs,
            stats: stats.clone(),
            dead: dead.clone(),
            pending: BinaryHeap::new(),
            jobs: HashMap::new(),
            next_free: HashMap::new(),
            seq: 0,
            outbox,
            kept: Arc::new(AtomicU64::new(0)),
            failure: Arc::new(Mutex::new(None)),
        };
        let (kept, failure) = (worker.kept.clone(), worker.failure.clone());
        // Alerts the outbox kept from before a restart: delivered like new ones (same ids).
        if !recovered.is_empty() {
            worker.accept(recovered.into_iter().map(|a| (0, a)).collect());
        }
        let thread = std::thread::Builder::new()
            .name("tickflow-notify".into())
            .spawn(move || worker.run(rx))
            .map_err(NotifyError::Thread)?;
        let handle = NotifierHandle { tx, dead, stats, sent: Arc::new(Mutex::new(0)), kept, failure };
        Ok(Notifier { handle, thread: Some(thread) })
    }

    /// A handle for the workers.
    pub fn handle(&self) -> NotifierHandle {
        self.handle.clone()
    }

    /// Stops accepting and joins the thread once everything queued is delivered or
    /// dead-lettered (retries included: at most `max-attempts` each, so this can take up to
    /// that many backoffs).
    pub fn close(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        // Replace our sender with a disconnected one so the thread sees the end of input once
        // every worker's handle is gone too.
        let (tx, _) = crossbeam_channel::bounded(1);
        drop(std::mem::replace(&mut self.handle.tx, tx));
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                tracing::error!("notifier thread panicked");
            }
        }
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Worker {
    cfg: AlertsConfig,
    /// `cfg`'s retry policy; each job's attempts are counted in the job.
    retry: Policy,
    agent: ureq::Agent,
    targets: target::TargetPolicy,
    producer: Option<BaseProducer>,
    outputs: Outputs,
    stats: Arc<NotifyStats>,
    dead: Arc<DeadLetters>,
    /// (due, job number), earliest first.
    pending: BinaryHeap<Reverse<(Instant, u64)>>,
    jobs: HashMap<u64, Job>,
    next_free: HashMap<String, Instant>,
    seq: u64,
    outbox: Option<Outbox>,
    kept: Arc<AtomicU64>,
    failure: Arc<Mutex<Option<String>>>,
}

impl Worker {
    fn run(&mut self, rx: Receiver<(u64, Alert)>) {
        let mut open = true;
        while open || !self.pending.is_empty() {
            let now = Instant::now();
            let wait = self
                .pending
                .peek()
                .map_or(Duration::from_millis(200), |Reverse((due, _))| due.saturating_duration_since(now));
            if open {
                match rx.recv_timeout(wait) {
                    Ok(a) => {
                        let mut batch = vec![a];
                        batch.extend(rx.try_iter().take(1023));
                        let last = batch.last().map_or(0, |(seq, _)| *seq);
                        if let Some(o) = self.outbox.as_mut() {
                            if let Err(e) = o.append(batch.iter().map(|(_, a)| a)) {
                                // Not kept: the workers' frontier stays, and the run stops.
                                let why = format!("writing the alerts outbox {}: {e}", o.path.display());
                                tracing::error!(error = %why, "alerts cannot be kept");
                                *self.failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
                                self.accept(batch);
                                continue;
                            }
                        }
                        self.kept.store(last, Ordering::Release);
                        self.accept(batch);
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => open = false,
                }
            } else {
                std::thread::sleep(wait.min(Duration::from_millis(200)));
            }
            self.deliver_due();
            if let Some(p) = &self.producer {
                p.poll(Duration::ZERO);
            }
        }
        if let Some(p) = &self.producer {
            if let Err(e) = p.flush(Duration::from_secs(10)) {
                tracing::warn!(error = %e, "alerts topic: flush at shutdown failed");
            }
        }
    }

    /// Alerts topic and QuestDB (once per alert), then the channel's first attempt.
    /// Alerts from the workers, or recovered from the outbox (those go to the topic and the
    /// table again, which de-duplicate on the id).
    fn accept(&mut self, batch: Vec<(u64, Alert)>) {
        let (mut kafka_ok, mut kafka_failed) = (0, 0);
        let mut rows = self.outputs.questdb.as_ref().map(|(h, _)| h.batch());
        for (_, alert) in batch {
            let rule = serde_json::from_str::<RuleDef>(&alert.meta).ok();
            let event = rule.as_ref().map(|r| AlertEvent::new(&alert, r));
            if let (Some(p), Some(ev)) = (&self.producer, &event) {
                // AlertEvent is plain data: serializing cannot fail.
                let json = serde_json::to_vec(ev).expect("AlertEvent serializes");
                match p.send(BaseRecord::<str, [u8]>::to(&self.cfg.alerts_topic).key(&ev.id).payload(&json)) {
                    Ok(()) => kafka_ok += 1,
                    Err((e, _)) => {
                        kafka_failed += 1;
                        tracing::warn!(error = %e, alert = %ev.id, "alerts topic: produce failed");
                    }
                }
            }
            if let (Some(rows), Some((_, table))) = (rows.as_mut(), &self.outputs.questdb) {
                if let Err(e) = encode_row(rows, table, &alert) {
                    tracing::warn!(error = %e, "alerts table: row not encodable");
                }
            }
            let n = self.seq;
            self.seq += 1;
            self.jobs.insert(n, Job { alert, rule, attempt: 0 });
            self.pending.push(Reverse((Instant::now(), n)));
        }
        if let (Some(rows), Some((h, _))) = (rows, &self.outputs.questdb) {
            let n = rows.rows() as u64;
            match h.send(rows) {
                Ok(()) => {
                    self.stats.questdb_written.fetch_add(n, Ordering::Relaxed);
                }
                Err(e) => tracing::warn!(error = %e, "alerts table: QuestDB sink refused rows"),
            }
        }
        self.stats.kafka_written.fetch_add(kafka_ok, Ordering::Relaxed);
        self.stats.kafka_failed.fetch_add(kafka_failed, Ordering::Relaxed);
    }

    fn deliver_due(&mut self) {
        let (mut attempts, mut delivered, mut retried) = (0, 0, 0);
        while let Some(&Reverse((due, n))) = self.pending.peek() {
            let now = Instant::now();
            if due > now {
                break;
            }
            self.pending.pop();
            let Some(mut job) = self.jobs.remove(&n) else { continue };
            let Some(rule) = job.rule.clone() else {
                self.dead.write("rule definition unreadable", &job.alert);
                self.finished(job.alert.id);
                continue;
            };
            let key = rule.channel.key();
            if let Some(&free) = self.next_free.get(&key) {
                if free > now {
                    self.jobs.insert(n, job);
                    self.pending.push(Reverse((free, n)));
                    continue;
                }
            }
            self.next_free.insert(key, now + self.cfg.min_interval());
            attempts += 1;
            job.attempt += 1;
            match self.attempt(&job.alert, &rule) {
                Ok(()) => {
                    delivered += 1;
                    self.finished(job.alert.id);
                    tracing::debug!(alert = %format!("{:016x}", job.alert.id), rule = %rule.id, "alert delivered");
                }
                Err(Failure::Retry(why)) if self.retry.attempts_left(job.attempt) => {
                    retried += 1;
                    let backoff = self.retry.step(job.attempt);
                    tracing::debug!(alert = %format!("{:016x}", job.alert.id), attempt = job.attempt, why, ?backoff, "alert delivery failed; will retry");
                    self.jobs.insert(n, job);
                    self.pending.push(Reverse((now + backoff, n)));
                }
                Err(Failure::Retry(why)) => {
                    self.dead.write(&format!("{} attempts failed, last: {why}", job.attempt), &job.alert);
                    self.finished(job.alert.id);
                }
                Err(Failure::Permanent(why)) => {
                    self.dead.write(&why, &job.alert);
                    self.finished(job.alert.id);
                }
            }
        }
        if let Some(o) = self.outbox.as_mut() {
            if let Err(e) = o.maybe_compact(self.jobs.values().map(|j| &j.alert)) {
                tracing::warn!(path = %o.path.display(), error = %e, "compacting the alerts outbox failed; retried later");
            }
        }
        self.stats.attempts.fetch_add(attempts, Ordering::Relaxed);
        self.stats.delivered.fetch_add(delivered, Ordering::Relaxed);
        self.stats.retried.fetch_add(retried, Ordering::Relaxed);
    }

    /// An alert is delivered or dead-lettered: the outbox need not keep it.
    fn finished(&mut self, id: u64) {
        if let Some(o) = self.outbox.as_mut() {
            if let Err(e) = o.done(id) {
                tracing::warn!(path = %o.path.display(), error = %e, "alerts outbox: marking an alert done failed (it may be delivered again)");
            }
        }
    }

    fn attempt(&self, alert: &Alert, rule: &RuleDef) -> Result<(), Failure> {
        let event = AlertEvent::new(alert, rule);
        if let Channel::Webhook { url } | Channel::Slack { url } = &rule.channel {
            self.targets.check_resolved(url).map_err(Failure::Permanent)?;
        }
        let req = match &rule.channel {
            Channel::Webhook { url } => webhook::request(&event, url),
            Channel::Slack { url } => slack::request(&event, url),
            Channel::Telegram { chat_id } => match &self.cfg.telegram_bot_token {
                Some(t) => telegram::request(&event, &self.cfg.telegram_base_url, t, chat_id),
                None => return Err(Failure::Permanent("telegram channel but no alerts.telegram-bot-token".into())),
            },
        };
        let shown = match &rule.channel.redacted() {
            Channel::Webhook { url } | Channel::Slack { url } => url.clone(),
            Channel::Telegram { chat_id } => format!("telegram chat {chat_id}"),
        };
        send(&self.agent, &req, &shown)
    }
}

/// Sends one request; classifies the outcome. `shown` is the target as it may be logged.
fn send(agent: &ureq::Agent, req: &Request, shown: &str) -> Result<(), Failure> {
    let mut r = agent.post(&req.url);
    for (k, v) in &req.headers {
        r = r.header(*k, v);
    }
    match r.send(&req.body[..]) {
        Ok(resp) => match resp.status().as_u16() {
            200..=299 => Ok(()),
            s @ (408 | 429 | 500..=599) => Err(Failure::Retry(format!("HTTP {s}"))),
            s => Err(Failure::Permanent(format!("HTTP {s} from {shown}"))),
        },
        // ureq's errors can quote the URL: name the redacted target instead.
        Err(e) => Err(Failure::Retry(format!("{shown}: {}", redact_error(&e.to_string(), &req.url, shown)))),
    }
}

/// `message` with every occurrence of `url` replaced by `shown`.
fn redact_error(message: &str, url: &str, shown: &str) -> String {
    message.replace(url, shown)
}

/// The `alerts` table's DDL (WAL, deduplicated on the alert's identity).
pub fn alerts_ddl(table: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {table} (alert_id SYMBOL, rule SYMBOL, symbol SYMBOL, timeframe SYMBOL, \
         value DOUBLE, ts TIMESTAMP) TIMESTAMP(ts) PARTITION BY DAY WAL DEDUP UPSERT KEYS(ts, alert_id)"
    )
}

/// One `alerts` row: rule, symbol, timeframe, id, value at the alert's event time.
pub fn encode_row(
    rows: &mut crate::sinks::questdb::RowBatch,
    table: &Name,
    alert: &Alert,
) -> Result<(), crate::sinks::questdb::EncodeError> {
    // Fixed, valid column names.
    let col = |n: &str| Name::column(n).expect("valid column name");
    rows.line(table)
        .symbol(&col("alert_id"), &format!("{:016x}", alert.id))?
        .symbol(&col("rule"), &alert.rule)?
        .symbol(&col("symbol"), alert.symbol.as_str())?
        .symbol(&col("timeframe"), &timeframe_label(alert.timeframe))?
        .f64(&col("value"), from_fixed(alert.value))
        .at_nanos(alert.ts.saturating_mul(1_000_000))
}
