//! What a hostile or careless client can do to an HTTP listener, against the real status
//! server with the rules API mounted (no broker: an in-memory rule backend): slow-loris
//! headers, idle and trickled connections, connections over the cap, bodies over the
//! limit sent whole before reading, bodies over the shared budget; and who may do what:
//! tokens, redaction, target validation, refusing to start open off loopback.

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tickflow::alerts::api::{RulesAccess, routes, stats_route};
use tickflow::alerts::notify::NotifyStats;
use tickflow::alerts::rule::RuleContext;
use tickflow::config::Config;
use tickflow::gateway::{Gateway, GatewayConfig};
use tickflow::http::{HttpLimits, Limits, Tokens};
use tickflow::status::{ProcessMetrics, ServerOptions, StatusServer};
use tickflow_operators::IndicatorSet;
use warp::Filter as _;

use crate::support::rules::Memory;

const WRITE: &str = "write-token-0123456789";
const READ: &str = "read-token-0123456789";

fn limits(tweak: impl FnOnce(&mut HttpLimits)) -> Limits {
    let mut l = HttpLimits::default();
    tweak(&mut l);
    l.build("status").unwrap()
}

/// The status server with `/rules` and `/alerts/stats`, tokens optional.
fn server(limits: Limits, write: Option<&str>, read: Option<&str>) -> StatusServer {
    let metrics = Arc::new(ProcessMetrics::with_system_clock(0, 0..1));
    if let Some(w) = metrics.workers().first() {
        w.set_running(true);
    }
    metrics.set_source_connected(true);
    metrics.set_sink_reachable(true);
    // As the cluster's config does: the rules (write) token reads too, when reads need one.
    let write = Tokens::new(write);
    let read = Tokens::new(read);
    let read_tokens = if read.is_empty() { Tokens::none() } else { read.union(&write) };
    let access = RulesAccess {
        read: read_tokens.clone(),
        write,
        budget: tickflow::http::BodyBudget::new(limits.max_buffered_body_bytes),
        limits: limits.clone(),
        owners: Vec::new(),
        owner_tokens: Tokens::none(),
    };
    let ctx = RuleContext::new(&IndicatorSet::standard(), &[60_000]);
    let api = routes(Arc::new(Memory::default()), ctx, access.clone())
        .or(stats_route(Arc::new(NotifyStats::default()), &access))
        .unify()
        .boxed();
    let options = ServerOptions { sample_interval: None, read_tokens, limits, ..ServerOptions::default() };
    StatusServer::start_with("127.0.0.1:0".parse().unwrap(), metrics, Some(api), options).unwrap()
}

/// A status line, headers (lower-case names) and body read from a raw socket.
#[derive(Debug)]
struct Raw {
    status: u16,
    headers: BTreeMap<String, String>,
    body: String,
}

/// Reads one answer from `s` (until its declared length, or the server closes).
fn read_answer(s: &mut TcpStream) -> Raw {
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let text = crate::support::gateway::read_answer(s);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Raw { status, headers, body: body.to_string() }
}

fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Raw {
    let mut s = TcpStream::connect(addr).unwrap();
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    read_answer(&mut s)
}

/// Whether the server closed `s` (EOF or reset), waiting up to `limit` — a generous
/// deadline, not a timing assertion.
fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let start = Instant::now();
    let mut b = [0u8; 1024];
    while start.elapsed() < limit {
        match s.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return true,
        }
    }
    false
}

#[test]
fn slow_loris_headers_are_cut_off() {
    let srv = server(limits(|l| l.header_read_timeout = "300ms".into()), None, None);
    let mut s = TcpStream::connect(srv.local_addr()).unwrap();
    s.write_all(b"GET /status HTTP/1.1\r\nhost: x\r\n").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    // One header byte every 50 ms, for up to 60 s: the server must hang up long before.
    let mut cut_off = false;
    let mut b = [0u8; 256];
    for i in 0..1200 {
        if s.write_all(&[b'a' + (i % 26) as u8]).is_err() {
            cut_off = true;
            break;
        }
        match s.read(&mut b) {
            Ok(0) => {
                cut_off = true;
                break;
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            _ => {
                cut_off = true;
                break;
            }
        }
    }
    assert!(cut_off, "a client trickling its headers was still connected after 1200 bytes over 60 s");
    // The server still serves everyone else.
    assert_eq!(request(srv.local_addr(), "GET", "/health", &[], "").status, 200);
}

#[test]
fn idle_connections_are_closed_before_and_between_requests() {
    let srv = server(limits(|l| l.header_read_timeout = "300ms".into()), None, None);
    let mut silent = TcpStream::connect(srv.local_addr()).unwrap();
    assert!(closed_within(&mut silent, Duration::from_secs(60)), "a connection that never sent a byte stayed open");
    let mut kept = TcpStream::connect(srv.local_addr()).unwrap();
    kept.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
    assert_eq!(read_answer(&mut kept).status, 200);
    assert!(
        closed_within(&mut kept, Duration::from_secs(60)),
        "a kept-alive connection with no next request stayed open"
    );
}

#[test]
fn a_trickled_body_is_answered_408() {
    let srv = server(limits(|l| l.body_read_timeout = "300ms".into()), None, None);
    let mut s = TcpStream::connect(srv.local_addr()).unwrap();
    s.write_all(b"POST /rules HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{")
        .unwrap();
    let writer = s.try_clone().unwrap();
    let trickle = std::thread::spawn(move || {
        let mut w = writer;
        for _ in 0..1000 {
            if w.write_all(b" ").is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let r = read_answer(&mut s);
    assert_eq!(r.status, 408, "{r:?}");
    assert_eq!(r.body, r#"{"errors":["body: the request body did not arrive within 300ms"]}"#);
    drop(s);
    trickle.join().unwrap();
}

#[test]
fn connections_over_the_cap_get_503_with_retry_after() {
    let srv = server(limits(|l| l.max_connections = 3), None, None);
    let addr = srv.local_addr();
    // Three connections that hold their slot (they prove it by being answered).
    let mut held: Vec<TcpStream> = (0..3)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
            assert_eq!(read_answer(&mut s).status, 200);
            s
        })
        .collect();
    let r = request(addr, "GET", "/health", &[], "");
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(r.headers.get("retry-after").map(String::as_str), Some("1"));
    assert_eq!(
        r.body,
        r#"{"error":"server busy: 3 connections are open, the most it serves at once; retry later","retry_after_s":1}"#
    );
    held.clear();
    // Once they are gone, a new client is served again (poll: the server notices the
    // closes asynchronously).
    let deadline = Instant::now() + Duration::from_secs(60);
    while request(addr, "GET", "/health", &[], "").status != 200 {
        assert!(Instant::now() < deadline, "never served again after the held connections closed");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_body_over_the_limit_sent_whole_before_reading_still_gets_413() {
    let srv = server(Limits::default(), None, None);
    let mut s = TcpStream::connect(srv.local_addr()).unwrap();
    let body = vec![b' '; 16 << 20];
    let head = format!(
        "POST /rules HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    // Like Python's urllib: everything is written before anything is read.
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&body).expect("the server drains the refused body, so the whole write goes through");
    let r = read_answer(&mut s);
    assert_eq!(r.status, 413, "{r:?}");
    assert_eq!(r.body, r#"{"errors":["body: body of 16777216 bytes or more exceeds the limit of 65536 bytes"]}"#);
    assert_eq!(r.headers.get("connection").map(String::as_str), Some("close"));
}

#[test]
fn bodies_beyond_the_shared_budget_get_503_and_the_budget_returns() {
    let srv = server(limits(|l| l.max_buffered_body_bytes = 100 * 1024), None, None);
    let addr = srv.local_addr();
    let head = "POST /rules HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 61440\r\n\r\n";
    let mut holder = TcpStream::connect(addr).unwrap();
    holder.write_all(head.as_bytes()).unwrap();
    holder.write_all(&vec![b' '; 61439]).unwrap();
    // The holder's 60 KiB are reserved once its request is being read; poll until a second
    // body of the same size is refused for lack of budget.
    let deadline = Instant::now() + Duration::from_secs(60);
    let refused = loop {
        let r = request(addr, "POST", "/rules", &[("content-type", "application/json")], &" ".repeat(61440));
        if r.status == 503 {
            break r;
        }
        assert!(Instant::now() < deadline, "a second 60 KiB body was never refused: {r:?}");
    };
    assert_eq!(refused.headers.get("retry-after").map(String::as_str), Some("1"));
    assert_eq!(
        refused.body,
        r#"{"errors":["body: server busy: 61440 more body bytes do not fit in the 102400 bytes buffered for all requests at once; retry later"]}"#
    );
    // The holder finishes (a body of spaces is not a rule): its bytes return to the budget.
    holder.write_all(b" ").unwrap();
    assert_eq!(read_answer(&mut holder).status, 400);
    drop(holder);
    let r = request(addr, "POST", "/rules", &[("content-type", "application/json")], &" ".repeat(61440));
    assert_eq!(r.status, 400, "the budget is free again: {r:?}");
}

fn rule_json(id: &str, url: &str) -> String {
    format!(r#"{{"id":"{id}","symbol":"AAPL","condition":"price > 1","channel":{{"type":"webhook","url":"{url}"}}}}"#)
}

#[test]
fn tokens_guard_writes_and_optionally_reads_with_one_check() {
    let srv = server(Limits::default(), Some(WRITE), Some(READ));
    let addr = srv.local_addr();
    let bearer = |t: &str| format!("Bearer {t}");
    let json = ("content-type", "application/json");
    // Probes stay open.
    assert_eq!(request(addr, "GET", "/health", &[], "").status, 200);
    assert_eq!(request(addr, "GET", "/ready", &[], "").status, 200);
    // Reads need the read token (or the write token); the scheme is case-insensitive.
    for path in ["/status", "/metrics", "/rules", "/alerts/stats"] {
        let r = request(addr, "GET", path, &[], "");
        assert_eq!(r.status, 401, "{path}: {r:?}");
        assert_eq!(r.headers.get("www-authenticate").map(String::as_str), Some("Bearer"), "{path}");
        let lower = format!("bearer {READ}");
        assert_eq!(request(addr, "GET", path, &[("authorization", &lower)], "").status, 200, "{path}");
        assert_eq!(request(addr, "GET", path, &[("authorization", &bearer(WRITE))], "").status, 200, "{path}");
    }
    let wrong = request(addr, "GET", "/status", &[("authorization", "Bearer read-token-0123456788")], "");
    assert_eq!(wrong.body, r#"{"error":"authorization: bearer token not accepted"}"#);
    // Writes need the write token; the read token is not enough.
    let secret_url = "https://user:pw@hooks.example.com/services/T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX?sig=abc";
    let body = rule_json("r1", secret_url);
    let r = request(addr, "POST", "/rules", &[json], &body);
    assert_eq!(
        (r.status, r.body.as_str()),
        (
            401,
            r#"{"errors":["authorization: missing Authorization header; expected \"Authorization: Bearer <token>\""]}"#
        )
    );
    assert_eq!(request(addr, "POST", "/rules", &[json, ("authorization", &bearer(READ))], &body).status, 401);
    let created = request(addr, "POST", "/rules", &[json, ("authorization", &format!("BEARER {WRITE}"))], &body);
    assert_eq!(created.status, 201, "{created:?}");
    // Every answer shows the channel with its secrets redacted.
    let shown = "https://***@hooks.example.com/services/T000/B000/***?***";
    let rule: serde_json::Value = serde_json::from_str(&created.body).unwrap();
    assert_eq!(rule["channel"]["url"], shown);
    let list = request(addr, "GET", "/rules", &[("authorization", &bearer(READ))], "");
    let rules: serde_json::Value = serde_json::from_str(&list.body).unwrap();
    assert_eq!(rules[0]["channel"]["url"], shown, "{}", list.body);
    assert!(!list.body.contains("pw@") && !list.body.contains("sig=") && !list.body.contains("XXXXXXXX"));
    let one = request(addr, "GET", "/rules/r1", &[("authorization", &bearer(READ))], "");
    assert!(one.body.contains(shown), "{}", one.body);
    assert_eq!(request(addr, "DELETE", "/rules/r1", &[("authorization", &bearer(READ))], "").status, 401);
    assert_eq!(request(addr, "DELETE", "/rules/r1", &[("authorization", &bearer(WRITE))], "").status, 204);
}

#[test]
fn rule_targets_are_validated_when_written() {
    let srv = server(Limits::default(), None, None);
    let addr = srv.local_addr();
    let json = ("content-type", "application/json");
    let post = |url: &str| request(addr, "POST", "/rules", &[json], &rule_json("t", url));
    let r = post("http://169.254.169.254/latest/meta-data");
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body,
        r#"{"errors":["channel.url: host \"169.254.169.254\" is link-local (cloud metadata lives here); such targets are refused unless listed in alerts.allowed-hosts, e.g. allowed-hosts = [\"169.254.169.254\"]"]}"#
    );
    let r = post(r"http://hooks.example.com/a\r\nX-Injected: 1");
    assert_eq!(r.status, 400);
    assert!(r.body.contains(r#"has CR at byte 26; a URL has no whitespace or control characters"#), "{}", r.body);
    for url in ["http://localhost:9000/hook", "http://10.0.0.7/hook", "http://[::1]/hook", "file:///etc/passwd"] {
        assert_eq!(post(url).status, 400, "{url}");
    }
    assert_eq!(post("https://hooks.example.com/alerts").status, 201);
}

#[test]
fn write_apis_refuse_to_start_open_off_loopback() {
    let cfg = GatewayConfig { listen: "0.0.0.0:0".into(), ..GatewayConfig::default() };
    let err = Gateway::start(&cfg).err().expect("an open gateway on 0.0.0.0 must not start").to_string();
    assert_eq!(
        err,
        "invalid gateway config:\n  gateway.tokens: /ingest would listen on 0.0.0.0:0 (not loopback) without a token, \
         so anyone who can reach the port could use it; set a secret of at least 16 characters with \
         TICKFLOW_GATEWAY_TOKENS=<secret> (or gateway.tokens in the config file), or listen on 127.0.0.1"
    );
    let text = "[status]\nlisten = \"0.0.0.0:9100\"\n[alerts]\nbrokers = \"127.0.0.1:9092\"\n";
    let errs = Config::parse(text).unwrap().build().unwrap_err().0;
    assert_eq!(
        errs,
        ["alerts.token: POST/DELETE /rules would listen on 0.0.0.0:9100 (not loopback) without a token, so anyone \
          who can reach the port could use it; set a secret of at least 16 characters with \
          TICKFLOW_ALERTS_TOKEN=<secret> (or alerts.token in the config file), or listen on 127.0.0.1"]
    );
    let docker = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docker/cluster.toml")).unwrap();
    let errs = Config::parse(&docker).unwrap().build().unwrap_err().0;
    assert_eq!(
        errs,
        ["status.read-token: not set, and status.require-read-token = true; set a secret of at least 16 characters \
          with TICKFLOW_STATUS_READ_TOKEN=<secret> (or status.read-token in the config file)"],
        "docker/cluster.toml publishes the status port: it must not start without a token"
    );
    let ok = format!("{text}token = \"{WRITE}\"\n");
    assert!(Config::parse(&ok).unwrap().build().is_ok());
    // The shipped file (every new key documented there) is valid as it stands.
    let shipped = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/cluster.toml")).unwrap();
    assert!(Config::parse(&shipped).unwrap().build().is_ok());
}

#[test]
fn listeners_serve_https_when_given_a_certificate() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls");
    let files =
        tickflow::http::TlsFiles { cert: format!("{dir}/server.pem").into(), key: format!("{dir}/server.key").into() };
    let metrics = Arc::new(ProcessMetrics::with_system_clock(0, 0..1));
    let options =
        ServerOptions { sample_interval: None, tls: Some(files.load("status").unwrap()), ..ServerOptions::default() };
    let srv = StatusServer::start_with("127.0.0.1:0".parse().unwrap(), metrics, None, options).unwrap();
    let ca = std::fs::read(format!("{dir}/ca.pem")).unwrap();
    let roots = vec![ureq::tls::Certificate::from_pem(&ca).unwrap()];
    let tls = ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::Specific(Arc::new(roots))).build();
    let agent =
        ureq::Agent::new_with_config(ureq::Agent::config_builder().tls_config(tls).http_status_as_error(false).build());
    let mut r = agent.get(&format!("https://127.0.0.1:{}/health", srv.local_addr().port())).call().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.body_mut().read_to_string().unwrap(), r#"{"status":"ok"}"#);
    // Plain HTTP to the TLS port gets no HTTP answer.
    assert_eq!(request(srv.local_addr(), "GET", "/health", &[], "").status, 0);
    let missing = tickflow::http::TlsFiles { cert: "/nonexistent/cert.pem".into(), key: files.key.clone() };
    assert_eq!(
        missing.load("gateway").unwrap_err(),
        "gateway.tls.cert: /nonexistent/cert.pem: No such file or directory (os error 2)"
    );
    let swapped = tickflow::http::TlsFiles { cert: files.key.clone(), key: files.cert.clone() };
    assert!(swapped.load("status").unwrap_err().starts_with("status.tls.cert: "), "a key is not a certificate");
}
