//! The view of `tickflow top`, as pure functions: two readings of every process → rows with
//! rates ([`Frame::build`]) → text lines ([`Frame::lines`]). No I/O, so it is tested on made-up
//! samples.

use std::fmt::Write as _;

use super::sample::{ProcessSample, Reading, WorkerPart};

/// What one row shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    /// Bars read per second since the previous reading.
    pub in_per_s: Option<f64>,
    /// Bars passed on per second since the previous reading.
    pub out_per_s: Option<f64>,
    /// Watermark lag behind the wall clock, ms (a process: its slowest worker).
    pub watermark_lag_ms: Option<i64>,
    /// Kafka messages not yet read (none without Kafka partitions).
    pub partition_lag: Option<i64>,
    /// Sink rows buffered, not yet written.
    pub sink_backlog: u64,
    /// Busy share since the previous reading (before there is one: the server's 10 s value), %.
    pub busy_pct: Option<f64>,
}

/// One worker's row.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerRow {
    /// Global worker index.
    pub index: usize,
    /// Whether it runs.
    pub running: bool,
    /// Its numbers.
    pub stats: Stats,
}

/// One process: its totals and its workers, or why it could not be read.
#[derive(Debug, Clone, PartialEq)]
pub enum ProcessRow {
    /// Read.
    Up {
        /// Process index.
        id: usize,
        /// Where it was read.
        url: String,
        /// Whether `/ready` answers 200, and what is not ready.
        ready: Result<(), Vec<String>>,
        /// Totals over its workers.
        stats: Stats,
        /// Its workers.
        workers: Vec<WorkerRow>,
        /// The last error it recorded.
        last_error: Option<String>,
    },
    /// Not read.
    Down {
        /// Its position in the endpoint list (= process index for a config).
        id: usize,
        /// Where it was asked.
        url: String,
        /// Why it could not be read.
        error: String,
    },
}

/// Every process's row at one refresh.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// In endpoint order.
    pub processes: Vec<ProcessRow>,
}

/// Per second between two counter values `dt_ms` apart; `None` when time did not move or the
/// counter went back (the process restarted).
fn per_second(prev: u64, cur: u64, dt_ms: i64) -> Option<f64> {
    (dt_ms > 0 && cur >= prev).then(|| (cur - prev) as f64 * 1000.0 / dt_ms as f64)
}

fn worker_stats(prev: Option<(&WorkerPart, i64)>, cur: &WorkerPart, partition_lag: Option<i64>) -> Stats {
    let rate = |get: fn(&WorkerPart) -> u64| prev.and_then(|(p, dt)| per_second(get(p), get(cur), dt));
    let busy = prev
        .and_then(|(p, dt)| {
            (dt > 0 && cur.busy_ns >= p.busy_ns)
                .then(|| ((cur.busy_ns - p.busy_ns) as f64 / (dt as f64 * 1e6) * 100.0).min(100.0))
        })
        .or(cur.busy_pct_10s);
    Stats {
        in_per_s: rate(|w| w.bars_in),
        out_per_s: rate(|w| w.bars_out),
        watermark_lag_ms: cur.watermark_lag_ms,
        partition_lag,
        sink_backlog: cur.backlog,
        busy_pct: busy,
    }
}

fn process_row(url: &str, prev: Option<&ProcessSample>, cur: &ProcessSample) -> ProcessRow {
    let dt = prev.map(|p| cur.process.now_ms - p.process.now_ms);
    let workers: Vec<WorkerRow> = cur
        .workers
        .iter()
        .map(|w| {
            let before =
                prev.zip(dt).and_then(|(p, dt)| p.workers.iter().find(|x| x.index == w.index).map(|x| (x, dt)));
            let owned: Vec<i64> = cur.partitions.iter().filter(|p| p.owner_worker == w.index).map(|p| p.lag).collect();
            let lag = (!owned.is_empty()).then(|| owned.iter().sum());
            WorkerRow { index: w.index, running: w.running, stats: worker_stats(before, w, lag) }
        })
        .collect();
    let sum = |get: fn(&Stats) -> Option<f64>| -> Option<f64> {
        workers.iter().map(|w| get(&w.stats)).sum::<Option<f64>>().filter(|_| !workers.is_empty())
    };
    let busy: Vec<f64> = workers.iter().filter_map(|w| w.stats.busy_pct).collect();
    let stats = Stats {
        in_per_s: sum(|s| s.in_per_s),
        out_per_s: sum(|s| s.out_per_s),
        watermark_lag_ms: workers.iter().filter_map(|w| w.stats.watermark_lag_ms).max(),
        partition_lag: (!cur.partitions.is_empty()).then(|| cur.partitions.iter().map(|p| p.lag).sum()),
        sink_backlog: cur.sink.backlog,
        busy_pct: (!busy.is_empty()).then(|| busy.iter().sum::<f64>() / busy.len() as f64),
    };
    let ready = if cur.ready.ready { Ok(()) } else { Err(cur.ready.reasons.clone()) };
    Up {
        id: cur.process.id,
        url: url.to_owned(),
        ready,
        stats,
        workers,
        last_error: cur.last_error.as_ref().map(|e| e.message.clone()),
    }
}

use ProcessRow::Up;

impl Frame {
    /// The rows for the readings `cur` of `urls`, with rates against `prev` (the readings one
    /// refresh earlier, same order; empty on the first refresh).
    pub fn build(urls: &[String], prev: &[Reading], cur: &[Reading]) -> Frame {
        let processes = urls
            .iter()
            .zip(cur)
            .enumerate()
            .map(|(i, (url, reading))| match reading {
                Ok(s) => process_row(url, prev.get(i).and_then(|r| r.as_ref().ok()), s),
                Err(e) => ProcessRow::Down { id: i, url: url.clone(), error: e.to_string() },
            })
            .collect();
        Frame { processes }
    }

    /// How many processes could not be read.
    pub fn down(&self) -> usize {
        self.processes.iter().filter(|p| matches!(p, ProcessRow::Down { .. })).count()
    }

    /// How many workers the readable processes have.
    pub fn workers(&self) -> usize {
        self.processes
            .iter()
            .map(|p| match p {
                Up { workers, .. } => workers.len(),
                ProcessRow::Down { .. } => 0,
            })
            .sum()
    }

    /// The table: a header, then per process a row (`all` in the worker column) followed by a
    /// row per worker; then the last error of each process that has one.
    pub fn lines(&self) -> Vec<String> {
        let mut out = vec![format!(
            "{:<7} {:<6} {:<9} {:>10} {:>10} {:>8} {:>9} {:>9} {:>6}  {}",
            "PROCESS", "WORKER", "STATE", "IN/S", "OUT/S", "WM LAG", "PART LAG", "BACKLOG", "BUSY", "ENDPOINT"
        )];
        let mut errors = Vec::new();
        for p in &self.processes {
            match p {
                ProcessRow::Down { id, url, error } => {
                    out.push(format!(
                        "{id:<7} {:<6} {:<9} {:>10} {:>10} {:>8} {:>9} {:>9} {:>6}  {url}",
                        "all", "down", "-", "-", "-", "-", "-", "-"
                    ));
                    errors.push(format!("process {id} ({url}): {error}"));
                }
                Up { id, url, ready, stats, workers, last_error } => {
                    let state = if ready.is_ok() { "ready" } else { "not ready" };
                    out.push(row(*id, "all", state, stats, url));
                    for w in workers {
                        let state = if w.running { "running" } else { "stopped" };
                        out.push(row(*id, &w.index.to_string(), state, &w.stats, ""));
                    }
                    if let Err(reasons) = ready {
                        errors.push(format!("process {id}: not ready: {}", reasons.join("; ")));
                    }
                    if let Some(e) = last_error {
                        errors.push(format!("process {id}: last error: {e}"));
                    }
                }
            }
        }
        if !errors.is_empty() {
            out.push(String::new());
            out.extend(errors);
        }
        out
    }
}

fn row(process: usize, worker: &str, state: &str, s: &Stats, url: &str) -> String {
    let mut line = String::new();
    // Writing to a String cannot fail.
    let _ = write!(
        line,
        "{process:<7} {worker:<6} {state:<9} {:>10} {:>10} {:>8} {:>9} {:>9} {:>6}  {url}",
        rate(s.in_per_s),
        rate(s.out_per_s),
        s.watermark_lag_ms.map_or_else(|| "-".into(), duration),
        s.partition_lag.map_or_else(|| "-".into(), |l| l.to_string()),
        s.sink_backlog,
        s.busy_pct.map_or_else(|| "-".into(), |b| format!("{b:.1}%")),
    );
    line.trim_end().to_owned()
}

fn rate(r: Option<f64>) -> String {
    r.map_or_else(|| "-".into(), |r| format!("{r:.1}"))
}

/// A lag in ms, short: `850ms`, `1.2s`, `3m05s`, `2h01m`.
pub fn duration(ms: i64) -> String {
    let ms = ms.max(0);
    match ms {
        0..1_000 => format!("{ms}ms"),
        1_000..60_000 => format!("{:.1}s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{}m{:02}s", ms / 60_000, ms / 1000 % 60),
        _ => format!("{}h{:02}m", ms / 3_600_000, ms / 60_000 % 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status_cli::FetchError;
    use crate::top::sample::{PartitionPart, ProcessPart, ReadyPart, SinkPart};

    fn worker(index: usize, bars_in: u64, busy_ns: u64) -> WorkerPart {
        WorkerPart {
            index,
            running: true,
            bars_in,
            bars_out: bars_in / 2,
            busy_ns,
            backlog: 1,
            watermark_lag_ms: Some(1500 + index as i64),
            busy_pct_10s: Some(50.0),
        }
    }

    fn sample(now_ms: i64, workers: Vec<WorkerPart>) -> ProcessSample {
        ProcessSample {
            process: ProcessPart { id: 0, now_ms, uptime_ms: 0 },
            ready: ReadyPart { ready: true, reasons: vec![] },
            workers,
            partitions: vec![
                PartitionPart { owner_worker: 0, lag: 3 },
                PartitionPart { owner_worker: 0, lag: 4 },
                PartitionPart { owner_worker: 1, lag: 5 },
            ],
            sink: SinkPart { backlog: 9, reachable: true },
            last_error: None,
        }
    }

    #[test]
    fn rates_are_counter_deltas_over_the_servers_clock() {
        let urls = vec!["http://a/status".to_string(), "http://b/status".to_string()];
        let prev =
            vec![Ok(sample(10_000, vec![worker(0, 100, 0), worker(1, 0, 0)])), Err(FetchError::Http("x".into()))];
        let cur = vec![
            Ok(sample(12_000, vec![worker(0, 300, 500_000_000), worker(1, 50, 2_000_000_000)])),
            Err(FetchError::Http("connection refused".into())),
        ];
        let f = Frame::build(&urls, &prev, &cur);
        let Up { stats, workers, .. } = &f.processes[0] else { panic!("process 0 is up") };
        assert_eq!(workers[0].stats.in_per_s, Some(100.0));
        assert_eq!(workers[0].stats.out_per_s, Some(50.0));
        assert_eq!(workers[0].stats.busy_pct, Some(25.0));
        assert_eq!(workers[0].stats.partition_lag, Some(7));
        assert_eq!(workers[1].stats.in_per_s, Some(25.0));
        assert_eq!(workers[1].stats.busy_pct, Some(100.0));
        assert_eq!(
            *stats,
            Stats {
                in_per_s: Some(125.0),
                out_per_s: Some(62.5),
                watermark_lag_ms: Some(1501),
                partition_lag: Some(12),
                sink_backlog: 9,
                busy_pct: Some(62.5),
            }
        );
        assert_eq!(f.down(), 1);
        assert_eq!(f.workers(), 2);
        assert_eq!(
            f.lines(),
            vec![
                "PROCESS WORKER STATE           IN/S      OUT/S   WM LAG  PART LAG   BACKLOG   BUSY  ENDPOINT",
                "0       all    ready          125.0       62.5     1.5s        12         9  62.5%  http://a/status",
                "0       0      running        100.0       50.0     1.5s         7         1  25.0%",
                "0       1      running         25.0       12.5     1.5s         5         1 100.0%",
                "1       all    down               -          -        -         -         -      -  http://b/status",
                "",
                "process 1 (http://b/status): connection refused",
            ]
        );
    }

    #[test]
    fn without_a_previous_reading_there_is_no_rate_and_busy_is_the_servers() {
        let urls = vec!["u".to_string()];
        let f = Frame::build(&urls, &[], &[Ok(sample(1, vec![worker(0, 5, 5)]))]);
        let Up { stats, .. } = &f.processes[0] else { panic!("up") };
        assert_eq!((stats.in_per_s, stats.busy_pct), (None, Some(50.0)));
    }

    #[test]
    fn a_restarted_process_shows_no_rate_instead_of_a_negative_one() {
        let urls = vec!["u".to_string()];
        let f = Frame::build(
            &urls,
            &[Ok(sample(1000, vec![worker(0, 500, 0)]))],
            &[Ok(sample(2000, vec![worker(0, 7, 0)]))],
        );
        let Up { workers, .. } = &f.processes[0] else { panic!("up") };
        assert_eq!(workers[0].stats.in_per_s, None);
    }

    #[test]
    fn durations_are_short() {
        assert_eq!(
            [0, 850, 1_250, 59_999, 185_000, 7_260_000, -5].map(duration),
            ["0ms", "850ms", "1.2s", "60.0s", "3m05s", "2h01m", "0ms"]
        );
    }
}
