//! The process collector: CPU, memory, file descriptors and start time of a
//! process, read from `/proc`, with client_golang's names.

use super::collector::{Collector, CollectorWriter};
use crate::model::MetricType;

/// Writes client_golang's process metrics for this process (or another one)
/// on Linux, read from `/proc` at each scrape:
///
/// | family | type | from |
/// |---|---|---|
/// | `process_cpu_seconds_total` | counter | `stat`: user + system time |
/// | `process_open_fds` | gauge | entries of `fd/` |
/// | `process_max_fds` | gauge | `limits`: soft "Max open files" |
/// | `process_virtual_memory_bytes` | gauge | `stat`: vsize |
/// | `process_virtual_memory_max_bytes` | gauge | `limits`: soft "Max address space" (unlimited: 2^64 − 1, as client_golang) |
/// | `process_resident_memory_bytes` | gauge | `stat`: rss × page size |
/// | `process_start_time_seconds` | gauge | `stat`: start time, plus the boot time from `/proc/stat` |
///
/// A file that cannot be read leaves its families out of that scrape. On
/// other systems the collector writes nothing.
///
/// ```
/// use vigil_exposition::client::{ProcessCollector, Registry};
///
/// let registry = Registry::new();
/// registry.register_collector(ProcessCollector::new());
/// # #[cfg(target_os = "linux")] {
/// let names: Vec<String> = registry.gather().into_iter().map(|f| f.name).collect();
/// assert!(names.contains(&"process_resident_memory_bytes".to_string()));
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ProcessCollector {
    dir: String,
}

impl ProcessCollector {
    /// The collector for this process (`/proc/self`).
    pub fn new() -> ProcessCollector {
        ProcessCollector {
            dir: "/proc/self".to_owned(),
        }
    }

    /// The collector for process `pid` (`/proc/<pid>`).
    pub fn for_pid(pid: u32) -> ProcessCollector {
        ProcessCollector {
            dir: format!("/proc/{pid}"),
        }
    }
}

impl Default for ProcessCollector {
    fn default() -> Self {
        ProcessCollector::new()
    }
}

const NO_LABELS: &[(&str, &str)] = &[];

impl Collector for ProcessCollector {
    #[cfg(not(target_os = "linux"))]
    fn collect(&self, _out: &mut CollectorWriter<'_, '_>) {}

    #[cfg(target_os = "linux")]
    fn collect(&self, out: &mut CollectorWriter<'_, '_>) {
        let ticks = rustix::param::clock_ticks_per_second() as f64;
        let page = rustix::param::page_size() as f64;
        let stat = std::fs::read_to_string(format!("{}/stat", self.dir)).ok();
        let stat = stat.as_deref().and_then(parse_stat);
        if let Some(s) = &stat {
            out.family_with_unit(
                "process_cpu_seconds",
                MetricType::Counter,
                "Total user and system CPU time spent in seconds.",
                "seconds",
            )
            .sample("_total", NO_LABELS, (s.utime + s.stime) as f64 / ticks);
        }
        if let Ok(entries) = std::fs::read_dir(format!("{}/fd", self.dir)) {
            out.family(
                "process_open_fds",
                MetricType::Gauge,
                "Number of open file descriptors.",
            )
            .sample("", NO_LABELS, entries.count() as f64);
        }
        let limits = std::fs::read_to_string(format!("{}/limits", self.dir)).ok();
        if let Some(max) = limits
            .as_deref()
            .and_then(|l| soft_limit(l, "Max open files"))
        {
            out.family(
                "process_max_fds",
                MetricType::Gauge,
                "Maximum number of open file descriptors.",
            )
            .sample("", NO_LABELS, max);
        }
        if let Some(s) = &stat {
            out.family_with_unit(
                "process_virtual_memory_bytes",
                MetricType::Gauge,
                "Virtual memory size in bytes.",
                "bytes",
            )
            .sample("", NO_LABELS, s.vsize as f64);
        }
        if let Some(max) = limits
            .as_deref()
            .and_then(|l| soft_limit(l, "Max address space"))
        {
            out.family_with_unit(
                "process_virtual_memory_max_bytes",
                MetricType::Gauge,
                "Maximum amount of virtual memory available in bytes.",
                "bytes",
            )
            .sample("", NO_LABELS, max);
        }
        if let Some(s) = &stat {
            out.family_with_unit(
                "process_resident_memory_bytes",
                MetricType::Gauge,
                "Resident memory size in bytes.",
                "bytes",
            )
            .sample("", NO_LABELS, s.rss as f64 * page);
            let boot = std::fs::read_to_string("/proc/stat")
                .ok()
                .as_deref()
                .and_then(boot_time);
            if let Some(boot) = boot {
                out.family_with_unit(
                    "process_start_time_seconds",
                    MetricType::Gauge,
                    "Start time of the process since unix epoch in seconds.",
                    "seconds",
                )
                .sample("", NO_LABELS, boot + s.starttime as f64 / ticks);
            }
        }
    }
}

/// The fields of `/proc/<pid>/stat` the collector uses.
#[derive(Debug, PartialEq)]
struct Stat {
    utime: u64,
    stime: u64,
    starttime: u64,
    vsize: u64,
    rss: i64,
}

/// Parses `/proc/<pid>/stat`. The command name (field 2) is in parentheses
/// and may hold spaces and parentheses itself, so fields are counted from
/// the last `)`.
fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    // Field 3 (state) is index 0 here; field n is index n - 3.
    let f: Vec<&str> = rest.split_ascii_whitespace().collect();
    let get = |n: usize| f.get(n - 3).copied();
    Some(Stat {
        utime: get(14)?.parse().ok()?,
        stime: get(15)?.parse().ok()?,
        starttime: get(22)?.parse().ok()?,
        vsize: get(23)?.parse().ok()?,
        rss: get(24)?.parse().ok()?,
    })
}

/// The soft limit of the `/proc/<pid>/limits` row starting with `name`;
/// "unlimited" reads as 2^64 − 1, as client_golang reports it.
fn soft_limit(limits: &str, name: &str) -> Option<f64> {
    let line = limits.lines().find(|l| l.starts_with(name))?;
    let soft = line[name.len()..].split_ascii_whitespace().next()?;
    if soft == "unlimited" {
        Some(u64::MAX as f64)
    } else {
        soft.parse::<u64>().ok().map(|v| v as f64)
    }
}

/// The `btime` (boot time, seconds since the epoch) of `/proc/stat`.
fn boot_time(stat: &str) -> Option<f64> {
    let line = stat.lines().find(|l| l.starts_with("btime "))?;
    line[6..].trim().parse::<u64>().ok().map(|v| v as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_a_tricky_command_name() {
        let text = "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 50 0 0 20 0 4 0 \
                    9000 123456789 2048 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
        assert_eq!(
            parse_stat(text),
            Some(Stat {
                utime: 250,
                stime: 50,
                starttime: 9000,
                vsize: 123456789,
                rss: 2048
            })
        );
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn limits_and_boot_time() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max open files            1024                 524288               files     \n\
                      Max address space         unlimited            unlimited            bytes     \n";
        assert_eq!(soft_limit(limits, "Max open files"), Some(1024.0));
        assert_eq!(
            soft_limit(limits, "Max address space"),
            Some(u64::MAX as f64)
        );
        assert_eq!(
            boot_time("cpu  1 2 3\nbtime 1700000000\nprocesses 5\n"),
            Some(1.7e9)
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn reads_this_process() {
        let r = crate::client::Registry::new();
        r.register_collector(ProcessCollector::new());
        let fams = r.gather();
        let get = |n: &str| {
            fams.iter()
                .find(|f| f.name == n)
                .map(|f| f.samples[0].value)
        };
        assert!(get("process_resident_memory_bytes").unwrap() > 0.0);
        assert!(get("process_open_fds").unwrap() >= 3.0);
        assert!(get("process_max_fds").unwrap() >= 1.0);
        let start = get("process_start_time_seconds").unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        assert!(start > 1.0e9 && start <= now.as_secs_f64() + 1.0, "{start}");
        assert!(get("process_cpu_seconds").is_some());
    }
}
