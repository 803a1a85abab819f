//! The QuestDB sink's health is true while QuestDB goes away and comes back: a loopback
//! server answering like QuestDB's `/write` (204; 400 with QuestDB's JSON error for a bad
//! line) is stopped and restarted on the same port. While it is gone `/ready` fails and
//! `/status` and `/metrics` show the retries, the last error and the backlog; when it is back
//! the sink writes again without waiting out its backoff slot (set to an hour here, so only
//! the probe can bring it back within the test's deadline).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tickflow::sinks::questdb::{Name, QuestDbConfig, QuestDbSink, RowBatch, Tables};
use tickflow::status::{ProcessMetrics, render_prometheus, status_report};
use tickflow_operators::IndicatorSet;

/// The accept loop of a running fake: its stop flag, its connections, its thread.
struct Running {
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
    thread: std::thread::JoinHandle<()>,
}

/// A QuestDB stand-in on a fixed port that can be stopped (listener and connections
/// closed) and started again.
struct FakeQuestDb {
    port: u16,
    lines: Arc<Mutex<Vec<String>>>,
    running: Option<Running>,
}

impl FakeQuestDb {
    fn start() -> FakeQuestDb {
        let mut f = FakeQuestDb { port: 0, lines: Arc::default(), running: None };
        f.listen();
        f
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn listen(&mut self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).expect("bind (the port is ours to rebind)");
        self.port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (s, c, lines) = (stop.clone(), conns.clone(), self.lines.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                c.lock().unwrap().push(conn.try_clone().unwrap());
                let lines = lines.clone();
                std::thread::spawn(move || serve(conn, &lines));
            }
        });
        self.running = Some(Running { stop, conns, thread });
    }

    /// Goes away: no listener, every open connection closed.
    fn stop(&mut self) {
        if let Some(Running { stop, conns, thread }) = self.running.take() {
            stop.store(true, Ordering::SeqCst);
            let _ = TcpStream::connect(self.addr()); // wake the accept loop
            thread.join().unwrap();
            for c in conns.lock().unwrap().drain(..) {
                let _ = c.shutdown(Shutdown::Both);
            }
        }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
}

/// QuestDB's `/write`: the whole request is accepted (204) or, when a line holds `BAD`,
/// rejected whole with a 400 naming the line.
fn serve(conn: TcpStream, lines: &Mutex<Vec<String>>) {
    let mut r = BufReader::new(conn.try_clone().unwrap());
    let mut out = conn;
    loop {
        let mut head = String::new();
        if r.read_line(&mut head).unwrap_or(0) == 0 {
            return;
        }
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap();
                }
            }
        }
        let mut body = vec![0; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        let text = String::from_utf8(body).unwrap();
        let answer = match text.lines().position(|l| l.contains("BAD")) {
            Some(i) => {
                let json = format!(
                    r#"{{"code":"invalid","message":"failed to parse line protocol: error in line {}","line":{},"errorId":"x-1"}}"#,
                    i + 1,
                    i + 1
                );
                format!(
                    "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{json}",
                    json.len()
                )
            }
            None => {
                lines.lock().unwrap().extend(text.lines().map(String::from));
                "HTTP/1.1 204 No Content\r\n\r\n".to_string()
            }
        };
        if out.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

fn rows(values: &[&str]) -> RowBatch {
    let t = Name::table("t").unwrap();
    let c = Name::column("v").unwrap();
    let mut b = RowBatch::new();
    for (i, v) in values.iter().enumerate() {
        b.line(&t).str(&c, v).at_nanos(i as i64 + 1).unwrap();
    }
    b
}

/// Polls `f` every 20 ms until it holds; fails after a generous `limit`.
fn eventually(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "never happened within {limit:?}: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn metric(text: &str, name: &str) -> f64 {
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{name}{{")))
        .unwrap_or_else(|| panic!("no {name} in /metrics:\n{text}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[test]
fn questdb_outage_is_visible_and_the_sink_reconnects_when_it_returns() {
    let mut qdb = FakeQuestDb::start();
    let metrics = Arc::new(ProcessMetrics::with_system_clock(0, 0..1));
    metrics.set_source_connected(true);
    let _running = metrics.workers()[0].running_guard();

    let mut cfg = QuestDbConfig { addr: qdb.addr().to_string(), create_tables: false, ..QuestDbConfig::default() };
    // An hour's backoff slot: without the probe the sink would not write again in time.
    cfg.retry_initial = Duration::from_secs(3600).into();
    cfg.retry_max = Duration::from_secs(3600).into();
    cfg.retry_max_elapsed = Duration::from_secs(36_000).into();
    cfg.request_timeout = Duration::from_secs(30).into();
    cfg.max_delay = Duration::from_millis(20).into();
    let tables = Tables::new(&IndicatorSet::standard(), "").unwrap();
    let sink = QuestDbSink::builder(cfg, &tables).report_to(metrics.clone()).start().unwrap();
    let handle = sink.handle();
    assert!(metrics.readiness().is_ready(), "{:?}", metrics.readiness().reasons());

    // QuestDB up: a good row is written; a bad one (400) is isolated, not an outage.
    handle.send(rows(&["before", "BAD"])).unwrap();
    handle.flush().unwrap();
    assert_eq!(qdb.lines().len(), 1);
    let s = status_report(&metrics);
    assert_eq!((s.sink.reachable, s.sink.retries, s.sink.errors, s.sink.backlog), (true, 0, 0, 0));

    // QuestDB goes away while rows are waiting.
    qdb.stop();
    handle.send(rows(&["during-1", "during-2", "during-3"])).unwrap();
    eventually("the outage shows in /status", Duration::from_secs(60), || {
        let s = status_report(&metrics);
        !s.sink.reachable && s.sink.retries >= 1
    });
    let s = status_report(&metrics);
    assert!(!s.ready.ready);
    assert_eq!(s.ready.reasons, ["sink not reachable"]);
    assert_eq!(s.sink.backlog, 3, "the waiting rows are the backlog");
    assert!(s.sink.consecutive_failures >= 1);
    let err = s.sink.last_error.expect("the outage's error").message;
    assert!(err.starts_with("QuestDB write failed (attempt 1, next in at most 3600000 ms): "), "{err}");
    let text = render_prometheus(&metrics);
    assert_eq!(metric(&text, "tickflow_sink_reachable"), 0.0);
    assert_eq!(metric(&text, "tickflow_ready"), 0.0);
    assert!(metric(&text, "tickflow_sink_write_retries_total") >= 1.0);
    assert_eq!(metric(&text, "tickflow_sink_queued_rows"), 3.0);

    // QuestDB comes back on the same port: the rows are written, the health is true again.
    qdb.listen();
    eventually("the waiting rows reach QuestDB after it returned", Duration::from_secs(60), || qdb.lines().len() == 4);
    handle.flush().unwrap();
    assert_eq!(qdb.lines().iter().filter(|l| l.contains("during")).count(), 3, "each row once: {:?}", qdb.lines());
    let s = status_report(&metrics);
    assert!(s.sink.reachable && s.ready.ready, "{:?}", s.ready.reasons);
    assert_eq!((s.sink.consecutive_failures, s.sink.backlog), (0, 0));
    let text = render_prometheus(&metrics);
    assert_eq!(metric(&text, "tickflow_sink_reachable"), 1.0);
    assert_eq!(metric(&text, "tickflow_sink_consecutive_failures"), 0.0);
    let stats = sink.close().unwrap();
    assert_eq!((stats.rows_written, stats.rows_rejected), (4, 1));
    assert!(stats.retries >= 1);
}
