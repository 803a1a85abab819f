//! Which process owns a symbol, and asking it.
//!
//! A symbol lives on the worker `route_hash % peers` (the dataflow's exchange), so its
//! process is that worker's index divided by the workers per process. A request for a symbol
//! owned elsewhere is forwarded once to the owner's status port with
//! [`FORWARDED_HEADER`] (the owner answers from its own store and never forwards again); the
//! caller's `Authorization` header goes along (every process has the same read tokens).
//! Requests run on the blocking pool of the status server's runtime, with a time limit and
//! a cap on the answer's size.

use std::time::Duration;

use tickflow_operators::Symbol;

/// Marks a request forwarded by another process: answer from the local store only.
pub const FORWARDED_HEADER: &str = "x-tickflow-forwarded";

/// Largest answer read from a peer.
pub const MAX_PEER_ANSWER_BYTES: u64 = 32 * 1024 * 1024;

/// The processes of the cluster as seen from one of them.
#[derive(Clone, Debug)]
pub struct Peers {
    /// This process's index.
    pub me: usize,
    /// Workers per process.
    pub workers: usize,
    /// Status `host:port` of every process.
    pub addrs: Vec<String>,
    scheme: &'static str,
    agent: ureq::Agent,
}

/// A peer's answer: status and body.
#[derive(Debug)]
pub struct PeerAnswer {
    /// HTTP status.
    pub status: u16,
    /// Body (JSON from tickflow).
    pub body: String,
}

impl Peers {
    /// `addrs`: the status address of every process; `tls`: they serve HTTPS.
    pub fn new(me: usize, workers: usize, addrs: Vec<String>, timeout: Duration, tls: bool) -> Peers {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(timeout))
            .timeout_global(Some(timeout))
            .build();
        Peers { me, workers: workers.max(1), addrs, scheme: if tls { "https" } else { "http" }, agent: config.into() }
    }

    /// The default status addresses: host of `cluster.processes[N]`, port `listen_port + N`.
    pub fn default_addrs(processes: &[String], listen_port: u16) -> Vec<String> {
        processes
            .iter()
            .enumerate()
            .map(|(n, p)| {
                let host = p.rsplit_once(':').map_or(p.as_str(), |(h, _)| h);
                format!("{host}:{}", listen_port as usize + n)
            })
            .collect()
    }

    /// How many processes.
    pub fn len(&self) -> usize {
        self.addrs.len()
    }

    /// Whether there are none (never, for a running cluster).
    pub fn is_empty(&self) -> bool {
        self.addrs.is_empty()
    }

    /// The process whose worker owns `symbol`.
    pub fn owner(&self, symbol: &Symbol) -> usize {
        symbol.owner(self.workers * self.addrs.len().max(1)) / self.workers
    }

    /// Sends `GET path_and_query` (`POST` with `body`, JSON) to process `p`, marked forwarded.
    pub async fn ask(
        &self,
        p: usize,
        path_and_query: &str,
        auth: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Result<PeerAnswer, String> {
        let Some(addr) = self.addrs.get(p) else { return Err(format!("no process {p}")) };
        let url = format!("{}://{addr}{path_and_query}", self.scheme);
        let agent = self.agent.clone();
        let auth = auth.map(str::to_string);
        let call = move || -> Result<PeerAnswer, String> {
            let result = match body {
                Some(b) => {
                    let mut req =
                        agent.post(&url).header(FORWARDED_HEADER, "1").header("content-type", "application/json");
                    if let Some(a) = &auth {
                        req = req.header("authorization", a);
                    }
                    req.send(&b[..])
                }
                None => {
                    let mut req = agent.get(&url).header(FORWARDED_HEADER, "1");
                    if let Some(a) = &auth {
                        req = req.header("authorization", a);
                    }
                    req.call()
                }
            };
            let mut r = result.map_err(|e| format!("{url}: {e}"))?;
            let status = r.status().as_u16();
            let body = r
                .body_mut()
                .with_config()
                .limit(MAX_PEER_ANSWER_BYTES)
                .read_to_string()
                .map_err(|e| format!("{url}: reading the answer: {e}"))?;
            Ok(PeerAnswer { status, body })
        };
        tokio::task::spawn_blocking(call).await.map_err(|e| format!("process {p}: {e}"))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_addresses_follow_the_status_port_rule() {
        let p = vec!["10.0.0.1:2101".to_string(), "10.0.0.2:2101".to_string()];
        assert_eq!(Peers::default_addrs(&p, 9100), vec!["10.0.0.1:9100", "10.0.0.2:9101"]);
    }

    #[test]
    fn the_owner_is_the_process_of_the_owning_worker() {
        let peers = Peers::new(0, 2, vec!["a:1".into(), "b:2".into()], Duration::from_secs(1), false);
        for name in ["SYM0000", "SYM0001", "SYM0002", "BTCIRT", "AAPL"] {
            let s = Symbol::new(name).unwrap();
            assert_eq!(peers.owner(&s), s.owner(4) / 2);
            assert!(crate::recovery::plan::owns(&s, s.owner(4), 4));
        }
    }
}
