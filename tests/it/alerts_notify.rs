//! Notification formats byte-for-byte against a local HTTP server; a failing receiver is
//! retried until it recovers, and each alert is delivered once; permanent failures are
//! dead-lettered. Plus the `/rules` routes over an in-memory backend.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tickflow::alerts::AlertsConfig;
use tickflow::alerts::api::{RulesAccess, routes};
use tickflow::alerts::notify::{Notifier, Outputs};
use tickflow::alerts::rule::{RuleContext, RuleDef};
use tickflow_operators::dataflow::alerts::{Alert, Condition, alert_id, to_fixed};
use tickflow_operators::{IndicatorSet, Symbol};

use crate::support::rules::Memory;

#[derive(Default)]
struct Seen {
    /// (path, headers lower-cased, body, status answered)
    requests: Vec<(String, BTreeMap<String, String>, String, u16)>,
    script: VecDeque<u16>,
}

/// A tiny HTTP/1.1 server: answers each request with the next scripted status (200 after).
fn server(script: Vec<u16>) -> (String, Arc<Mutex<Seen>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Seen { script: script.into(), ..Seen::default() }));
    let s = seen.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let s = s.clone();
            std::thread::spawn(move || {
                let conn = conn.unwrap();
                let mut r = BufReader::new(conn.try_clone().unwrap());
                let mut out = conn;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let path = line.split(' ').nth(1).unwrap().to_string();
                    let mut headers = BTreeMap::new();
                    loop {
                        let mut h = String::new();
                        r.read_line(&mut h).unwrap();
                        let h = h.trim_end();
                        if h.is_empty() {
                            break;
                        }
                        let (k, v) = h.split_once(':').unwrap();
                        headers.insert(k.to_ascii_lowercase(), v.trim().to_string());
                    }
                    let len: usize = headers.get("content-length").map_or(0, |v| v.parse().unwrap());
                    let mut body = vec![0; len];
                    r.read_exact(&mut body).unwrap();
                    let status = {
                        let mut g = s.lock().unwrap();
                        let st = g.script.pop_front().unwrap_or(200);
                        g.requests.push((path, headers, String::from_utf8(body).unwrap(), st));
                        st
                    };
                    let resp = format!("HTTP/1.1 {status} X\r\nContent-Length: 2\r\n\r\nok");
                    if out.write_all(resp.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (base, seen)
}

fn alert(rule: &RuleDef, ts: i64, value: f64) -> Alert {
    let symbol = Symbol::new(&rule.symbol).unwrap();
    Alert {
        id: alert_id(&rule.id, &symbol, ts),
        rule: rule.id.clone(),
        symbol,
        timeframe: 0,
        ts,
        value: to_fixed(value),
        condition: Condition::Above { slot: 0, value: 0 },
        meta: serde_json::to_string(rule).unwrap(),
    }
}

fn rule(id: &str, channel: &str) -> RuleDef {
    serde_json::from_str(&format!(
        r#"{{"id":"{id}","owner":"alice","symbol":"AAPL","condition":"price > 100","channel":{channel}}}"#
    ))
    .unwrap()
}

fn config(dir: &tempfile::TempDir, telegram_base: &str) -> AlertsConfig {
    let mut c = AlertsConfig::new("127.0.0.1:1");
    c.alerts_topic = String::new(); // no Kafka here
    c.dead_letter = dir.path().join("dead.ndjson");
    c.initial_backoff = Duration::from_millis(5).into();
    c.max_backoff = Duration::from_millis(20).into();
    c.min_interval = Duration::ZERO.into();
    c.max_attempts = 5;
    c.telegram_base_url = telegram_base.into();
    c.telegram_bot_token = Some("123:abc".into());
    // The receivers are local test servers: allowed explicitly (loopback is refused otherwise).
    c.allowed_hosts = vec!["127.0.0.1".into()];
    assert!(c.validate().is_empty(), "{:?}", c.validate());
    c
}

fn wait(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn formats_byte_for_byte_and_retries_until_the_receiver_recovers() {
    // The webhook answers 503 twice, then 200; Slack and Telegram answer 200.
    let (hook, hook_seen) = server(vec![503, 503]);
    let (other, other_seen) = server(vec![]);
    let dir = tempfile::tempdir().unwrap();
    let notifier = Notifier::start(&config(&dir, &other), Outputs::default()).unwrap();
    let w = rule("w", &format!(r#"{{"type":"webhook","url":"{hook}/hook"}}"#));
    let s = rule("s", &format!(r#"{{"type":"slack","url":"{other}/slack"}}"#));
    let t = rule("t", r#"{"type":"telegram","chat_id":"42"}"#);
    let ts = 1_700_000_000_000;
    let (aw, as_, at) = (alert(&w, ts, 101.5), alert(&s, ts, 101.5), alert(&t, ts, 101.5));
    notifier.handle().offer([aw.clone(), as_.clone(), at.clone()]);
    let stats = notifier.handle().stats();
    wait("three deliveries", || stats.summary().0 == 3);
    notifier.close();
    let (delivered, retried, dead, attempts, overflowed) = stats.summary();
    assert_eq!((delivered, retried, dead, attempts, overflowed), (3, 2, 0, 5, 0));

    let id = |a: &Alert| format!("{:016x}", a.id);
    let hooks = hook_seen.lock().unwrap();
    let expected_hook = format!(
        r#"{{"id":"{}","rule":"w","owner":"alice","symbol":"AAPL","timeframe":"bar","condition":"price > 100","value":101.5,"ts":1700000000000,"time":"2023-11-14T22:13:20.000Z"}}"#,
        id(&aw)
    );
    assert_eq!(hooks.requests.len(), 3);
    for (i, (path, headers, body, status)) in hooks.requests.iter().enumerate() {
        assert_eq!(path, "/hook");
        assert_eq!(body, &expected_hook, "attempt {i}");
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(headers["idempotency-key"], id(&aw));
        assert_eq!(*status, if i < 2 { 503 } else { 200 });
    }
    let others = other_seen.lock().unwrap();
    let by_path: BTreeMap<&str, &str> = others.requests.iter().map(|r| (r.0.as_str(), r.2.as_str())).collect();
    assert_eq!(others.requests.len(), 2, "one request each, no duplicates");
    let text = |a: &Alert, r: &str| {
        format!("AAPL price > 100 (bar): price = 101.5 at 2023-11-14T22:13:20.000Z [rule {r}, alert {}]", id(a))
    };
    assert_eq!(by_path["/slack"], format!(r#"{{"text":"{}"}}"#, text(&as_, "s")));
    assert_eq!(by_path["/bot123:abc/sendMessage"], format!(r#"{{"chat_id":"42","text":"{}"}}"#, text(&at, "t")));
}

#[test]
fn permanent_failures_and_exhausted_retries_are_dead_lettered() {
    let (hook, seen) = server(vec![400, 500, 500, 500, 500, 500]);
    let dir = tempfile::tempdir().unwrap();
    let notifier = Notifier::start(&config(&dir, "http://127.0.0.1:1"), Outputs::default()).unwrap();
    let bad = rule("bad", &format!(r#"{{"type":"webhook","url":"{hook}/a"}}"#));
    let flaky = rule("flaky", &format!(r#"{{"type":"webhook","url":"{hook}/b"}}"#));
    notifier.handle().offer([alert(&bad, 1000, 1.0)]);
    let stats = notifier.handle().stats();
    wait("first dead letter", || stats.summary().2 == 1);
    notifier.handle().offer([alert(&flaky, 2000, 2.0)]);
    wait("second dead letter", || stats.summary().2 == 2);
    notifier.close();
    assert_eq!(seen.lock().unwrap().requests.len(), 6, "1 for the 400, 5 attempts for the 500s");
    let text = std::fs::read_to_string(dir.path().join("dead.ndjson")).unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["rule"], "bad");
    assert!(lines[0]["reason"].as_str().unwrap().contains("HTTP 400"), "{}", lines[0]);
    assert_eq!(lines[1]["reason"], "5 attempts failed, last: HTTP 500");
    assert_eq!(lines[1]["definition"]["channel"]["type"], "webhook");
}

/// The routes mounted on the real status server (as the cluster does), over HTTP.
#[test]
fn rules_routes_validate_authorize_and_round_trip() {
    let ctx = RuleContext::new(&IndicatorSet::standard(), &[60_000]);
    let tok = tickflow::http::Tokens::new(["tok"]);
    let access = RulesAccess { write: tok.clone(), read: tok, ..RulesAccess::open() };
    let api = routes(Arc::new(Memory::default()), ctx, access);
    let metrics = Arc::new(tickflow::status::ProcessMetrics::with_system_clock(0, 0..1));
    let server = tickflow::status::StatusServer::start("127.0.0.1:0".parse().unwrap(), metrics, Some(api)).unwrap();
    let base = format!("http://{}", server.local_addr());
    let agent = ureq::Agent::new_with_config(ureq::Agent::config_builder().http_status_as_error(false).build());
    let call = |method: &str, path: &str, token: bool, body: Option<&str>| -> (u16, String) {
        let url = format!("{base}{path}");
        let mut r = match method {
            "POST" => {
                let mut q = agent.post(&url);
                if token {
                    q = q.header("authorization", "Bearer tok");
                }
                q.send(body.unwrap()).unwrap()
            }
            "DELETE" => {
                let mut q = agent.delete(&url);
                if token {
                    q = q.header("authorization", "Bearer tok");
                }
                q.call().unwrap()
            }
            _ => {
                let mut q = agent.get(&url);
                if token {
                    q = q.header("authorization", "Bearer tok");
                }
                q.call().unwrap()
            }
        };
        (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
    };
    let body = r#"{"id":"r1","symbol":"AAPL","condition":"rsi_14 < 30","channel":{"type":"webhook","url":"https://hooks.example.com/x"}}"#;
    assert_eq!(call("POST", "/rules", false, Some(body)).0, 401);
    let (code, text) = call("POST", "/rules", true, Some(body));
    assert_eq!(code, 201, "{text}");
    let bad = r#"{"id":"r 2","symbol":"AAPL","condition":"rsi_14 <","channel":{"type":"webhook","url":"https://hooks.example.com/x"}}"#;
    let (code, text) = call("POST", "/rules", true, Some(bad));
    assert_eq!(code, 400);
    let errors: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(errors["errors"].as_array().unwrap().len(), 2, "{errors}");
    let (code, text) = call("GET", "/rules", true, None);
    assert_eq!(code, 200);
    let list: Vec<RuleDef> = serde_json::from_str(&text).unwrap();
    assert_eq!(list.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["r1"]);
    assert_eq!(list[0].cooldown, "0s");
    assert_eq!(call("GET", "/rules/r1", true, None).0, 200);
    assert_eq!(call("GET", "/rules/nope", true, None).0, 404);
    assert_eq!(call("DELETE", "/rules/r1", true, None).0, 204);
    assert_eq!(call("DELETE", "/rules/r1", true, None).0, 404);
    assert_eq!(call("GET", "/health", false, None).0, 200, "built-in routes still answer");
    server.shutdown();
}

/// Per-owner tokens: each sees and changes only its owner's rules, the admin token all;
/// `?owner=` filters; a Telegram rule without a bot token is refused when posted.
#[test]
fn owner_tokens_see_only_their_rules_and_unusable_channels_are_refused() {
    let ctx = RuleContext::new(&IndicatorSet::standard(), &[60_000]).with_telegram(false);
    let (admin, alice, bob) = ("admin-token-0123456789", "alice-token-0123456789", "bob-token-01234567890");
    let mut cfg = AlertsConfig::new("127.0.0.1:9092");
    cfg.token = Some(admin.into());
    cfg.owner_tokens.insert("alice".into(), alice.into());
    cfg.owner_tokens.insert("bob".into(), bob.into());
    let access = RulesAccess::new(&cfg, &tickflow::http::Tokens::none(), &tickflow::http::limits::Limits::default());
    let api = routes(Arc::new(Memory::default()), ctx, access);
    let metrics = Arc::new(tickflow::status::ProcessMetrics::with_system_clock(0, 0..1));
    let server = tickflow::status::StatusServer::start("127.0.0.1:0".parse().unwrap(), metrics, Some(api)).unwrap();
    let base = format!("http://{}", server.local_addr());
    let agent = ureq::Agent::new_with_config(ureq::Agent::config_builder().http_status_as_error(false).build());
    let call = |method: &str, path: &str, token: Option<&str>, body: Option<&str>| -> (u16, String) {
        let url = format!("{base}{path}");
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut r = match method {
            "POST" => {
                let mut q = agent.post(&url);
                if let Some(a) = &auth {
                    q = q.header("authorization", a);
                }
                q.send(body.unwrap()).unwrap()
            }
            "DELETE" => {
                let mut q = agent.delete(&url);
                if let Some(a) = &auth {
                    q = q.header("authorization", a);
                }
                q.call().unwrap()
            }
            _ => {
                let mut q = agent.get(&url);
                if let Some(a) = &auth {
                    q = q.header("authorization", a);
                }
                q.call().unwrap()
            }
        };
        (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
    };
    let rule = |id: &str, owner: &str| {
        format!(
            r#"{{"id":"{id}","owner":"{owner}","symbol":"AAPL","condition":"rsi_14 < 30","channel":{{"type":"webhook","url":"https://hooks.example.com/x"}}}}"#
        )
    };
    let ids = |text: &str| -> Vec<String> {
        let list: Vec<RuleDef> = serde_json::from_str(text).unwrap();
        list.into_iter().map(|r| r.id).collect()
    };
    assert_eq!(call("POST", "/rules", Some(alice), Some(&rule("a1", "alice"))).0, 201);
    assert_eq!(call("POST", "/rules", Some(bob), Some(&rule("b1", "bob"))).0, 201);
    assert_eq!(call("POST", "/rules", Some(admin), Some(&rule("b2", "bob"))).0, 201, "the admin writes for anyone");
    let (code, text) = call("POST", "/rules", Some(alice), Some(&rule("a2", "bob")));
    assert_eq!(code, 403, "{text}");
    assert!(text.contains(r#"owner: \"bob\" is not this token's owner \"alice\""#), "{text}");
    let (code, text) = call("POST", "/rules", Some(alice), Some(&rule("b1", "alice")));
    assert_eq!((code, text.contains("belongs to another owner")), (403, true), "{text}");
    assert_eq!(call("POST", "/rules", None, Some(&rule("x", "alice"))).0, 401, "writes are never open");

    assert_eq!(ids(&call("GET", "/rules", Some(alice), None).1), ["a1"]);
    assert_eq!(ids(&call("GET", "/rules", Some(bob), None).1), ["b1", "b2"]);
    assert_eq!(ids(&call("GET", "/rules", Some(admin), None).1), ["a1", "b1", "b2"]);
    assert_eq!(ids(&call("GET", "/rules?owner=bob", Some(admin), None).1), ["b1", "b2"]);
    assert_eq!(ids(&call("GET", "/rules?owner=bob", Some(alice), None).1), Vec::<String>::new());
    assert_eq!(call("GET", "/rules", None, None).0, 401, "with owner tokens, /rules is never open");
    assert_eq!(call("GET", "/rules/b1", Some(alice), None).0, 404, "another owner's rule is not there");
    assert_eq!(call("DELETE", "/rules/b1", Some(alice), None).0, 404);
    assert_eq!(call("DELETE", "/rules/b1", Some(bob), None).0, 204);
    assert_eq!(call("DELETE", "/rules/a1", Some(admin), None).0, 204);

    let telegram = r#"{"id":"t1","owner":"alice","symbol":"AAPL","condition":"rsi_14 < 30","channel":{"type":"telegram","chat_id":"123"}}"#;
    let (code, text) = call("POST", "/rules", Some(alice), Some(telegram));
    assert_eq!(code, 400, "{text}");
    assert!(text.contains("a telegram channel needs alerts.telegram-bot-token"), "{text}");
    server.shutdown();
}
