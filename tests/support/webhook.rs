//! A webhook receiver for alert tests: records every JSON body it gets, and answers 200 while
//! `accept` says so, 503 otherwise.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Every request: (the JSON body, answered with 200).
pub type Received = Arc<Mutex<Vec<(serde_json::Value, bool)>>>;

/// Starts a receiver on a free loopback port.
pub fn receiver(accept: Arc<AtomicBool>) -> (SocketAddr, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let got: Received = Arc::default();
    let g = got.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let (g, accept) = (g.clone(), accept.clone());
            std::thread::spawn(move || {
                let mut r = BufReader::new(conn.try_clone().unwrap());
                let mut w = conn;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut len = 0;
                    loop {
                        let mut h = String::new();
                        if r.read_line(&mut h).unwrap_or(0) == 0 {
                            return;
                        }
                        if h.trim().is_empty() {
                            break;
                        }
                        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap();
                        }
                    }
                    let mut body = vec![0; len];
                    if r.read_exact(&mut body).is_err() {
                        return;
                    }
                    let ok = accept.load(Ordering::SeqCst);
                    g.lock().unwrap().push((serde_json::from_slice(&body).unwrap(), ok));
                    let answer: &[u8] = if ok {
                        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
                    } else {
                        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"
                    };
                    if w.write_all(answer).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, got)
}
