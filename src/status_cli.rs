//! `tickflow status`: asks every process of a cluster for its `/status` and prints one line each.

use std::time::Duration;

use serde_json::Value;

use crate::config::Built;

/// One process's line, or why it could not be read.
fn fetch(agent: &ureq::Agent, url: &str) -> Result<Value, String> {
    let mut resp = agent.get(url).call().map_err(|e| e.to_string())?;
    let text = resp.body_mut().read_to_string().map_err(|e| e.to_string())?;
    serde_json::from_str(&text).map_err(|e| format!("bad JSON: {e}"))
}

/// Prints the status table; returns how many processes are down or not ready.
pub fn print_status(built: &Built) -> usize {
    let agent: ureq::Agent = ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(3))).build().into();
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
    for p in 0..built.processes.len() {
        let addr = built.status_addr(p);
        match fetch(&agent, &format!("http://{addr}/status")) {
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
