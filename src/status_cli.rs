//! `tickflow status`: asks every process of a cluster for its `/status` and prints one line each.
//!
//! [`StatusClient`] and [`read_token`] are shared with `tickflow top` ([`crate::top`]): both
//! find the processes the same way (`status.listen` + process index) and send the same read
//! token.

use std::time::Duration;

use serde_json::Value;

use crate::config::{Built, Config};
use crate::status::READ_TOKEN_ENV;

/// Why a process's `/status` could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The server answered 401: no token, or not the one it accepts.
    #[error(
        "401 unauthorized: the status server needs a read token; set {READ_TOKEN_ENV} (or status.read-token in the config)"
    )]
    Unauthorized,
    /// Connection refused, timeout, another HTTP status.
    #[error("{0}")]
    Http(String),
    /// The body is not the JSON asked for.
    #[error("bad JSON: {0}")]
    Json(String),
}

/// The bearer token for a cluster's read endpoints: [`READ_TOKEN_ENV`] when set (as the
/// server itself reads it), else `status.read-token` of the config.
pub fn read_token(config: Option<&Config>) -> Option<String> {
    let env = std::env::var(READ_TOKEN_ENV).ok().map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
    env.or_else(|| config.and_then(|c| c.status.read_token.as_ref()).map(|t| t.trim().to_owned()))
}

/// The `/status` URL of every process of `built` (`https` when `[status.tls]` is set).
pub fn status_urls(built: &Built, tls: bool) -> Vec<String> {
    let scheme = if tls { "https" } else { "http" };
    (0..built.processes.len()).map(|p| format!("{scheme}://{}/status", built.status_addr(p))).collect()
}

/// A small blocking HTTP client for `/status`, with a timeout and the read token.
#[derive(Debug, Clone)]
pub struct StatusClient {
    agent: ureq::Agent,
    token: Option<String>,
}

impl StatusClient {
    /// A client that gives up on a request after `timeout` and sends `token` as a bearer token.
    pub fn new(timeout: Duration, token: Option<String>) -> StatusClient {
        let agent = ureq::Agent::config_builder().timeout_global(Some(timeout)).build().into();
        StatusClient { agent, token }
    }

    /// GETs `url` and returns its body.
    pub fn get_text(&self, url: &str) -> Result<String, FetchError> {
        let mut req = self.agent.get(url);
        if let Some(t) = &self.token {
            req = req.header("authorization", &format!("Bearer {t}"));
        }
        let mut resp = req.call().map_err(|e| match e {
            ureq::Error::StatusCode(401) => FetchError::Unauthorized,
            e => FetchError::Http(e.to_string()),
        })?;
        resp.body_mut().read_to_string().map_err(|e| FetchError::Http(e.to_string()))
    }

    /// GETs `url` and parses its body as JSON into `T`.
    pub fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, FetchError> {
        let text = self.get_text(url)?;
        serde_json::from_str(&text).map_err(|e| FetchError::Json(e.to_string()))
    }
}

/// Prints the status table; returns how many processes are down or not ready.
pub fn print_status(built: &Built, token: Option<String>) -> usize {
    let client = StatusClient::new(Duration::from_secs(3), token);
    println!(
        "{:<8} {:<22} {:<6} {:>10} {:>10} {:>8} {:>8} {:>9} {:>10} {:>12}  last error",
        "process",
        "status address",
        "ready",
        "bars in",
        "bars out",
        "late",
        "invalid",
        "candles",
        "in/s 10s",
        "wm lag ms"
    );
    let mut bad = 0;
    let tls = built.status_options.tls.is_some();
    for (p, url) in status_urls(built, tls).iter().enumerate() {
        let addr = built.status_addr(p);
        match client.get_json::<Value>(url) {
            Err(e) => {
                bad += 1;
                println!("{p:<8} {addr:<22} down   ({e})");
            }
            Ok(v) => {
                let t = &v["totals"];
                let ready = v["ready"]["ready"].as_bool().unwrap_or(false);
                if !ready {
                    bad += 1;
                }
                let n = |x: &Value| x.as_u64().map_or("-".to_string(), |v| v.to_string());
                let rate = v["rates"]["last_10s"]["bars_in_per_s"].as_f64().map_or("-".into(), |r| format!("{r:.0}"));
                let lag = t["watermark_lag_ms"].as_i64().map_or("-".into(), |l| l.to_string());
                let err = v["last_error"]["message"].as_str().unwrap_or("");
                println!(
                    "{p:<8} {addr:<22} {:<6} {:>10} {:>10} {:>8} {:>8} {:>9} {:>10} {:>12}  {err}",
                    if ready { "yes" } else { "no" },
                    n(&t["bars_in"]),
                    n(&t["bars_out"]),
                    n(&t["bars_late"]),
                    n(&t["bars_invalid"]),
                    n(&t["candles_out"]),
                    rate,
                    lag
                );
            }
        }
    }
    bad
}
