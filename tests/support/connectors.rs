//! Shared by the connector tests: a scripted exchange (a std `TcpListener` on 127.0.0.1:0
//! speaking just enough HTTP/1.1: one request per connection, answered from a script of
//! recorded bodies), fixtures, configs and time helpers.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use tickflow::connectors::{ConnectorConfig, Exchange};
use tickflow_operators::time::days_from_civil;

/// One scripted answer.
pub enum Step {
    /// Answer with this status, extra headers and body.
    Answer { status: u16, headers: Vec<(String, String)>, body: Vec<u8> },
    /// Read the request, then close the connection without answering.
    Close,
}

impl Step {
    /// `200` with a fixture file as body.
    pub fn fixture(name: &str) -> Step {
        Step::Answer { status: 200, headers: Vec::new(), body: fixture(name) }
    }

    /// `status` with a fixture file as body.
    pub fn status_fixture(status: u16, name: &str) -> Step {
        Step::Answer { status, headers: Vec::new(), body: fixture(name) }
    }

    /// `status` with a small HTML body (as proxies send).
    pub fn status(status: u16) -> Step {
        let body = format!("<html><body><h1>{status}</h1></body></html>").into_bytes();
        Step::Answer { status, headers: Vec::new(), body }
    }

    /// Adds a header to an answer.
    pub fn header(mut self, k: &str, v: &str) -> Step {
        if let Step::Answer { headers, .. } = &mut self {
            headers.push((k.into(), v.into()));
        }
        self
    }
}

/// The bytes of `tests/fixtures/connectors/<name>`.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/connectors/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {path}: {e}"))
}

#[derive(Default)]
struct State {
    script: VecDeque<Step>,
    /// Request targets (path and query), in order.
    requests: Vec<String>,
}

/// A fake exchange API replaying a script, one step per request.
#[derive(Clone)]
pub struct FakeExchange {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl FakeExchange {
    pub fn start(script: Vec<Step>) -> FakeExchange {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let state = Arc::new(Mutex::new(State { script: script.into(), requests: Vec::new() }));
        let fake = FakeExchange { addr: listener.local_addr().unwrap(), state };
        let f = fake.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                match conn {
                    Ok(c) => f.serve(c),
                    Err(_) => return,
                }
            }
        });
        fake
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Request targets seen so far.
    pub fn requests(&self) -> Vec<String> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Appends steps to the script.
    pub fn push(&self, steps: Vec<Step>) {
        self.state.lock().unwrap().script.extend(steps);
    }

    fn serve(&self, conn: TcpStream) {
        let mut reader = BufReader::new(conn.try_clone().unwrap());
        let mut head = String::new();
        if reader.read_line(&mut head).unwrap_or(0) == 0 {
            return;
        }
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim_end().is_empty() {
                break;
            }
        }
        let target = head.split(' ').nth(1).unwrap_or("").to_string();
        let step = {
            let mut st = self.state.lock().unwrap();
            st.requests.push(target);
            st.script.pop_front()
        };
        let (status, headers, body) = match step {
            Some(Step::Close) => return,
            Some(Step::Answer { status, headers, body }) => (status, headers, body),
            None => (500, Vec::new(), b"{\"error\":\"script exhausted\"}".to_vec()),
        };
        let reason = match status {
            200 => "OK",
            429 => "Too Many Requests",
            503 => "Service Unavailable",
            _ => "Status",
        };
        let mut out = conn;
        let mut resp = format!(
            "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
            body.len()
        );
        for (k, v) in headers {
            resp.push_str(&format!("{k}: {v}\r\n"));
        }
        resp.push_str("\r\n");
        let _ = out.write_all(resp.as_bytes()).and_then(|()| out.write_all(&body)).and_then(|()| out.flush());
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` in ms.
pub fn utc(s: &str) -> i64 {
    let (date, time) = s.trim_end_matches('Z').split_once('T').unwrap();
    let d: Vec<u32> = date.split('-').map(|p| p.parse().unwrap()).collect();
    let t: Vec<i64> = time.split(':').map(|p| p.parse().unwrap()).collect();
    days_from_civil(i64::from(d[0]), d[1], d[2]) * 86_400_000 + (t[0] * 3600 + t[1] * 60 + t[2]) * 1000
}

/// A Nobitex connector at `base`: 1-minute bars, small pages, short intervals.
pub fn nobitex_config(base: &str, symbols: &[&str]) -> ConnectorConfig {
    let mut c = ConnectorConfig::new(Exchange::Nobitex);
    c.base_url = Some(base.into());
    c.symbols = Some(symbols.iter().map(|s| s.to_string()).collect());
    c.resolution = Some("1".into());
    c.poll_interval = Some("60s".into());
    c.request_interval = Some("1s".into());
    c.backfill = "10m".into();
    c.max_bars_per_request = 5;
    c.settle = "2s".into();
    c.backoff_initial = "1s".into();
    c.backoff_max = "5m".into();
    c.http_timeout = "5s".into();
    c
}

/// An Alpha Vantage connector at `base`: 5-minute bars, a 4-day back-fill, key `demo`.
pub fn alphavantage_config(base: &str, symbols: &[&str]) -> ConnectorConfig {
    let mut c = ConnectorConfig::new(Exchange::Alphavantage);
    c.base_url = Some(base.into());
    c.symbols = Some(symbols.iter().map(|s| s.to_string()).collect());
    c.resolution = Some("5min".into());
    c.poll_interval = Some("5m".into());
    c.request_interval = Some("15s".into());
    c.backfill = "4d".into();
    c.api_key = Some("demo".into());
    c.http_timeout = "5s".into();
    c
}
