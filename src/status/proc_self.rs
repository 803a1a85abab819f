//! The standard Prometheus `process_*` metrics (CPU time, memory, file descriptors, start
//! time), read from `/proc/self` at scrape time, as the official client libraries do. On a
//! system without `/proc` the values are absent and the families are left out.

use crate::prometheus::{Exposition, Kind};

/// Linux reports `/proc/<pid>/stat` times in `USER_HZ` ticks, which is 100 on every
/// architecture Linux supports (it is part of the user-space ABI, independent of the
/// kernel's `CONFIG_HZ`).
const USER_HZ: f64 = 100.0;

/// What one scrape read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProcSelf {
    /// User + system CPU seconds.
    pub cpu_seconds: Option<f64>,
    /// Resident set size, bytes.
    pub resident_bytes: Option<u64>,
    /// Virtual memory size, bytes.
    pub virtual_bytes: Option<u64>,
    /// Open file descriptors.
    pub open_fds: Option<u64>,
    /// The soft limit on open file descriptors.
    pub max_fds: Option<u64>,
    /// Start time of the process, Unix seconds.
    pub start_time_seconds: Option<f64>,
}

/// Fields after the command name (`pid (comm) state ...`; `comm` may contain spaces and
/// parentheses, so split after the last `)`). Index 0 is `state` (field 3 of proc(5)).
fn stat_fields(stat: &str) -> Vec<&str> {
    stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default()
}

/// Parses `/proc/self/stat`, `/proc/self/status`, `/proc/self/limits` and the `btime` line
/// of `/proc/stat` (pure, so it is tested on fixed text).
pub fn parse(stat: &str, status: &str, limits: &str, proc_stat: &str) -> ProcSelf {
    let f = stat_fields(stat);
    // proc(5): utime = field 14, stime = 15, starttime = 22 → indices 11, 12, 19 here.
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
    let cpu_seconds = match (ticks(11), ticks(12)) {
        (Some(u), Some(s)) => Some((u + s) as f64 / USER_HZ),
        _ => None,
    };
    let kb = |key: &str| {
        status.lines().find_map(|l| l.strip_prefix(key)).and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
    };
    let btime = proc_stat.lines().find_map(|l| l.strip_prefix("btime ")).and_then(|v| v.trim().parse::<u64>().ok());
    let start_time_seconds = match (btime, ticks(19)) {
        (Some(b), Some(t)) => Some(b as f64 + t as f64 / USER_HZ),
        _ => None,
    };
    let max_fds = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse::<u64>().ok());
    ProcSelf {
        cpu_seconds,
        resident_bytes: kb("VmRSS:").map(|k| k * 1024),
        virtual_bytes: kb("VmSize:").map(|k| k * 1024),
        open_fds: None,
        max_fds,
        start_time_seconds,
    }
}

/// Reads this process's values (once per scrape).
pub fn read() -> ProcSelf {
    let text = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let mut v =
        parse(&text("/proc/self/stat"), &text("/proc/self/status"), &text("/proc/self/limits"), &text("/proc/stat"));
    v.open_fds = std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count() as u64);
    v
}

/// Appends the `process_*` families (no `tickflow_` prefix: these are the standard names
/// that dashboards and alerts expect) with a `process` label.
pub fn render_into(e: &mut Exposition, process: &str, v: &ProcSelf) {
    let mut family = |name: &str, kind: Kind, help: &str, value: Option<String>| {
        if let Some(value) = value {
            e.standard_family(name, kind, help).sample(&[("process", process)], value);
        }
    };
    family(
        "process_cpu_seconds_total",
        Kind::Counter,
        "Total user and system CPU time spent in seconds.",
        v.cpu_seconds.map(|s| s.to_string()),
    );
    family(
        "process_resident_memory_bytes",
        Kind::Gauge,
        "Resident memory size in bytes.",
        v.resident_bytes.map(|b| b.to_string()),
    );
    family(
        "process_virtual_memory_bytes",
        Kind::Gauge,
        "Virtual memory size in bytes.",
        v.virtual_bytes.map(|b| b.to_string()),
    );
    family("process_open_fds", Kind::Gauge, "Number of open file descriptors.", v.open_fds.map(|n| n.to_string()));
    family(
        "process_max_fds",
        Kind::Gauge,
        "Maximum number of open file descriptors.",
        v.max_fds.map(|n| n.to_string()),
    );
    family(
        "process_start_time_seconds",
        Kind::Gauge,
        "Start time of the process since unix epoch in seconds.",
        v.start_time_seconds.map(|s| s.to_string()),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files_parse() {
        let stat = "4242 (tick flow) S 1 4242 4242 0 -1 4194304 5000 0 0 0 250 125 0 0 20 0 7 0 123456 \
                    1234567 2048 18446744073709551615";
        let status = "Name:\ttickflow\nVmSize:\t  204800 kB\nVmRSS:\t   10240 kB\n";
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 524288               files\n";
        let v = parse(stat, status, limits, "cpu  1 2 3\nbtime 1700000000\n");
        assert_eq!(v.cpu_seconds, Some(3.75));
        assert_eq!(v.resident_bytes, Some(10_485_760));
        assert_eq!(v.virtual_bytes, Some(209_715_200));
        assert_eq!(v.max_fds, Some(1024));
        assert_eq!(v.start_time_seconds, Some(1_700_001_234.56));
        let mut e = Exposition::new("tickflow_");
        render_into(&mut e, "0", &v);
        let out = e.finish();
        assert!(out.contains("process_cpu_seconds_total{process=\"0\"} 3.75\n"), "{out}");
        assert!(out.contains("process_start_time_seconds{process=\"0\"} 1700001234.56\n"), "{out}");
        assert!(!out.contains("process_open_fds"), "absent values are left out: {out}");
    }

    #[test]
    fn this_process_has_values() {
        let v = read();
        if std::path::Path::new("/proc/self/stat").exists() {
            assert!(v.resident_bytes.unwrap() > 0 && v.open_fds.unwrap() > 0 && v.start_time_seconds.unwrap() > 1e9);
        }
    }
}
