//! The host collectors: node_exporter 1.5's `cpu`, `meminfo`, `loadavg`,
//! `diskstats`, `filesystem`, `netdev`, `stat`, `time` and `uname`, with its
//! metric names, types, help texts, labels and units.
//!
//! Each collector reads and parses everything first and writes only then,
//! so a file that cannot be read or parsed leaves that collector's families
//! out of the scrape entirely (reported by `node_scrape_collector_success`)
//! instead of half-written.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use vigil_exposition::MetricType;
use vigil_exposition::client::CollectorWriter;

use super::procfs::{
    self, FS_TYPES_EXCLUDED, NET_RECEIVE, NET_TRANSMIT, disk_excluded, mountpoint_excluded,
};
use super::{AgentError, AgentOptions};

/// A host collector: reads its files under the options' paths and writes
/// its families.
pub type CollectFn = fn(&AgentOptions, &mut CollectorWriter<'_, '_>) -> Result<(), AgentError>;

/// The host collectors, by node_exporter's collector names.
pub const COLLECTORS: &[(&str, CollectFn)] = &[
    ("cpu", cpu),
    ("diskstats", diskstats),
    ("filesystem", filesystem),
    ("loadavg", loadavg),
    ("meminfo", meminfo),
    ("netdev", netdev),
    ("stat", stat),
    ("time", time),
    ("uname", uname),
];

const NO_LABELS: &[(&str, &str)] = &[];

/// Reads a file to a string, the error naming it.
pub fn read_file(path: &Path) -> Result<String, AgentError> {
    std::fs::read_to_string(path).map_err(|e| AgentError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

fn read_proc(opts: &AgentOptions, rel: &str) -> Result<(String, String), AgentError> {
    let path = opts.procfs.join(rel);
    let text = read_file(&path)?;
    Ok((text, path.display().to_string()))
}

fn ticks() -> f64 {
    // node_exporter (procfs) divides by USER_HZ, 100 on Linux.
    match rustix::param::clock_ticks_per_second() {
        0 => 100.0,
        t => t as f64,
    }
}

fn cpu(opts: &AgentOptions, out: &mut CollectorWriter<'_, '_>) -> Result<(), AgentError> {
    let (text, path) = read_proc(opts, "stat")?;
    let st = procfs::parse_stat(&text, &path)?;
    let hz = ticks();
    let mut ids: Vec<String> = Vec::with_capacity(st.cpus.len());
    ids.extend(st.cpus.iter().map(|(id, _)| id.to_string()));
    let mut f = out.family(
        "node_cpu_seconds",
        MetricType::Counter,
        "Seconds the CPUs spent in each mode.",
    );
    for ((_, t), id) in st.cpus.iter().zip(&ids) {
        for (mode, v) in t.modes() {
            f.sample(
                "_total",
                &[("cpu", id.as_str()), ("mode", mode)],
                v as f64 / hz,
            );
        }
    }
    let mut f = out.family(
        "node_cpu_guest_seconds",
        MetricType::Counter,
        "Seconds the CPUs spent in guests (VMs) for each mode.",
    );
    for ((_, t), id) in st.cpus.iter().zip(&ids) {
        f.sample(
            "_total",
            &[("cpu", id.as_str()), ("mode", "nice")],
            t.guest_nice as f64 / hz,
        );
        f.sample(
            "_total",
            &[("cpu", id.as_str()), ("mode", "user")],
            t.guest as f64 / hz,
        );
    }
    Ok(())
}

fn stat(opts: &AgentOptions, out: &mut CollectorWriter<'_, '_>) -> Result<(), AgentError> {
    let (text, path) = read_proc(opts, "stat")?;
    let st = procfs::parse_stat(&text, &path)?;
    let families: [(&str, MetricType, &str, u64); 6] = [
        (
            "node_boot_time_seconds",
            MetricType::Gauge,
            "Node boot time, in unixtime.",
            st.btime,
        ),
        (
            "node_context_switches",
            MetricType::Counter,
            "Total number of context switches.",
            st.ctxt,
        ),
        (
            "node_forks",
            MetricType::Counter,
            "Total number of forks.",
            st.processes,
        ),
        (
            "node_intr",
            MetricType::Counter,
            "Total number of interrupts serviced.",
            st.intr,
        ),
        (
            "node_procs_blocked",
            MetricType::Gauge,
            "Number of processes blocked waiting for I/O to complete.",
            st.procs_blocked,
        ),
        (
            "node_procs_running",
            MetricType::Gauge,
            "Number of processes in runnable state.",
            st.procs_running,
        ),
    ];
    for (name, ty, help, v) in families {
        let suffix = if ty == MetricType::Counter {
            "_total"
        } else {
            ""
        };
        out.family(name, ty, help)
            .sample(suffix, NO_LABELS, v as f64);
    }
    Ok(())
}

fn meminfo(opts: &AgentOptions, out: &mut CollectorWriter<'_, '_>) -> Result<(), AgentError> {
    let (text, path) = read_proc(opts, "meminfo")?;
    let fields = procfs::parse_meminfo(&text, &path)?;
    let mut name = String::new();
    let mut help = String::new();
    for f in &fields {
        name.clear();
        name.push_str("node_memory_");
        name.push_str(&f.name);
        help.clear();
        help.push_str("Memory information field ");
        help.push_str(&f.name);
        help.push('.');
        out.family(&name, MetricType::Gauge, &help)
            .sample("", NO_LABELS, f.value);
    }
    Ok(())
}

fn loadavg(opts: &AgentOptions, out: &mut CollectorWriter<'_, '_>) -> Result<(), AgentError> {
    let (text, path) = read_proc(opts, "loadavg")?;
    let l = procfs::parse_loadavg(&text, &path)?;
    for (name, help, v) in [
        ("node_load1", "1m load average.", l[0]),
        ("node_load15", "15m load average.", l[2]),
        ("node_load5", "5m load average.", l[1]),
    ] {
        out.family(name, MetricType::Gauge, help)
            .sample("", NO_LABELS, v);
    }
    Ok(())
}

/// node_exporter's diskstats families: (name, type, help, field index,
/// scale). Sectors are 512 bytes whatever the device's sector size; times
/// are milliseconds.
const DISK_FAMILIES: &[(&str, MetricType, &str, usize, f64)] = &[
    (
        "node_disk_reads_completed",
        MetricType::Counter,
        "The total number of reads completed successfully.",
        0,
        1.0,
    ),
    (
        "node_disk_reads_merged",
        MetricType::Counter,
        "The total number of reads merged.",
        1,
        1.0,
    ),
    (
        "node_disk_read_bytes",
        MetricType::Counter,
        "The total number of bytes read successfully.",
        2,
        512.0,
    ),
    (
        "node_disk_read_time_seconds",
        MetricType::Counter,
        "The total number of seconds spent by all reads.",
        3,
        0.001,
    ),
    (
        "node_disk_writes_completed",
        MetricType::Counter,
        "The total number of writes completed successfully.",
        4,
        1.0,
    ),
    (
        "node_disk_writes_merged",
        MetricType::Counter,
        "The number of writes merged.",
        5,
        1.0,
    ),
    (
        "node_disk_written_bytes",
        MetricType::Counter,
        "The total number of bytes written successfully.",
        6,
        512.0,
    ),
    (
        "node_disk_write_time_seconds",
        MetricType::Counter,
        "This is the total number of seconds spent by all writes.",
        7,
        0.001,
    ),
    (
        "node_disk_io_now",
        MetricType::Gauge,
        "The number of I/Os currently in progress.",
        8,
        1.0,
    ),
    (
        "node_disk_io_time_seconds",
        MetricType::Counter,
        "Total seconds spent doing I/Os.",
        9,
        0.001,
    ),
    (
        "node_disk_io_time_weighted_seconds",
        MetricType::Counter,
        "The weighted # of seconds spent doing I/Os.",
        10,
        0.001,
    ),
    (
        "node_disk_discards_completed",
        MetricType::Counter,
        "The total number of discards completed successfully.",
        11,
        1.0,
    ),
    (
        "node_disk_discards_merged",
        MetricType::Counter,
        "The total number of discards merged.",
        12,
        1.0,
    ),
    (
        "node_disk_discarded_sectors",
        MetricType::Counter,
        "The total number of sectors discarded successfully.",
        13,
        1.0,
    ),
    (
        "node_disk_discard_time_seconds",
        MetricType::Counter,
        "This is the total number of seconds spent by all discards.",
        14,
        0.001,
    ),
    (
        "node_disk_flush_requests",
        MetricType::Counter,
        "The total number of flush requests completed successfully",
        15,
        1.0,
    ),
    (
        "node_disk_flush_requests_time_seconds",
        MetricType::Counter,
        "This is the total number of seconds spent by all flush requests.",
        16,
        0.001,
    ),
];

fn diskstats(opts: &AgentOptions, out: &mut CollectorWriter<'_, '_>) -> Result<(), AgentError> {
    let (text, path) = read_proc(opts, "diskstats")?;
    let disks = procfs::parse_diskstats(&text, &path)?;
    let disks: Vec<_> = disks.iter().filter(|d| !disk_excluded(&d.device)).collect();
    for &(name, ty, help, idx, scale) in DISK_FAMILIES {
        // Families of fields this kernel does not have are left out.
        if !disks.iter().any(|d| d.fields.len() > idx) {
            continue;
        }
        let suffix = if ty == MetricType::Counter {
            "_total"
        } else {
            ""
        };
        let mut f = out.family(name, ty, help);
        for d in &disks {
            if let Some(&v) = d.fields.get(idx) {
                f.sample(suffix, &[("device", d.device.as_str())], v as f64 * scale);
            }
        }
    }
    Ok(())
}

/// One file system's figures (or the error statvfs gave).
struct FsStat<'m> {
    mount: &'m procfs::Mount,
    stats: Option<[f64; 5]>,
}

fn filesystem(opts: &AgentOptions, out: &mut CollectorWriter<'_, '_>) -> Result<(), AgentError> {
    // node_exporter reads PID 1's mount table (the host's, when the agent
    // runs in a container with the host's /proc), then its own.
    let (text, path) = match read_proc(opts, "1/mounts") {
        Ok(t) => t,
        Err(_) => read_proc(opts, "mounts")?,
    };
    let mounts = procfs::parse_mounts(&text, &path)?;
    let root = opts.rootfs.as_path();
    let mut seen: Vec<(&str, &str, &str)> = Vec::new();
    let mut stats: Vec<FsStat<'_>> = Vec::new();
    for m in &mounts {
        // Mount points are seen from inside --path.rootfs.
        let mp = strip_rootfs(root, &m.mountpoint);
        if mountpoint_excluded(mp) || FS_TYPES_EXCLUDED.contains(&m.fstype.as_str()) {
            continue;
        }
        let key = (m.device.as_str(), mp, m.fstype.as_str());
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        let full = if root == Path::new("/") {
            std::path::PathBuf::from(&m.mountpoint)
        } else {
            root.join(mp.trim_start_matches('/'))
        };
        // node_exporter multiplies block counts by f_bsize (statfs's), which
        // Linux's statvfs also reports; they equal f_frsize on every common
        // file system.
        let s = rustix::fs::statvfs(&full).ok().map(|v| {
            let bs = v.f_bsize as f64;
            [
                v.f_blocks as f64 * bs,
                v.f_bfree as f64 * bs,
                v.f_bavail as f64 * bs,
                v.f_files as f64,
                v.f_ffree as f64,
            ]
        });
        stats.push(FsStat { mount: m, stats: s });
    }
    let labels = |s: &FsStat<'_>| {
        [
            ("device", s.mount.device.clone()),
            ("fstype", s.mount.fstype.clone()),
            (
                "mountpoint",
                strip_rootfs(root, &s.mount.mountpoint).to_owned(),
            ),
        ]
    };
    let all: Vec<_> = stats.iter().map(|s| (labels(s), s)).collect();
    let fams: [(&str, &str, usize); 5] = [
        ("node_filesystem_size_bytes", "Filesystem size in bytes.", 0),
        (
            "node_filesystem_free_bytes",
            "Filesystem free space in bytes.",
            1,
        ),
        (
            "node_filesystem_avail_bytes",
            "Filesystem space available to non-root users in bytes.",
            2,
        ),
        ("node_filesystem_files", "Filesystem total file nodes.", 3),
        (
            "node_filesystem_files_free",
            "Filesystem total free file nodes.",
            4,
        ),
    ];
    for (name, help, i) in fams {
        let mut f = out.family(name, MetricType::Gauge, help);
        for (l, s) in &all {
            if let Some(v) = s.stats {
                f.sample("", l, v[i]);
            }
        }
    }
    let mut f = out.family(
        "node_filesystem_device_error",
        MetricType::Gauge,
        "Whether an error occurred while getting statistics for the given device.",
    );
    for (l, s) in &all {
        f.sample("", l, if s.stats.is_some() { 0.0 } else { 1.0 });
    }
    let mut f = out.family(
        "node_filesystem_readonly",
        MetricType::Gauge,
        "Filesystem read-only status.",
    );
    for (l, s) in &all {
        f.sample("", l, if s.mount.readonly { 1.0 } else { 0.0 });
    }
    Ok(())
}

fn strip_rootfs<'a>(root: &Path, mp: &'a str) -> &'a str {
    let Some(r) = root.to_str().filter(|r| *r != "/") else {
        return mp;
    };
    match mp.strip_prefix(r.trim_end_matches('/')) {
        Some("") => "/",
        Some(rest) if rest.starts_with('/') => rest,
        _ => mp,
    }
}

fn netdev(opts: &AgentOptions, out: &mut CollectorWriter<'_, '_>) -> Result<(), AgentError> {
    let (text, path) = read_proc(opts, "net/dev")?;
    let devs = procfs::parse_net_dev(&text, &path)?;
    // node_exporter's default --collector.netdev.device-exclude is ^lo$.
    let devs: Vec<_> = devs.iter().filter(|d| d.device != "lo").collect();
    let mut name = String::new();
    let mut help = String::new();
    for (dir, cols, pick) in [
        ("receive", &NET_RECEIVE, 0usize),
        ("transmit", &NET_TRANSMIT, 1usize),
    ] {
        for (i, col) in cols.iter().enumerate() {
            name.clear();
            name.push_str("node_network_");
            name.push_str(dir);
            name.push('_');
            name.push_str(col);
            help.clear();
            help.push_str("Network device statistic ");
            help.push_str(dir);
            help.push('_');
            help.push_str(col);
            help.push('.');
            let mut f = out.family(&name, MetricType::Counter, &help);
            for d in &devs {
                let v = if pick == 0 {
                    d.receive[i]
                } else {
                    d.transmit[i]
                };
                f.sample("_total", &[("device", d.device.as_str())], v as f64);
            }
        }
    }
    Ok(())
}

fn time(opts: &AgentOptions, out: &mut CollectorWriter<'_, '_>) -> Result<(), AgentError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| AgentError::Io {
            path: "system clock".into(),
            reason: e.to_string(),
        })?
        .as_secs_f64();
    // Clock sources are optional (node_exporter skips them when sysfs lacks
    // them too).
    let dir = opts.sysfs.join("devices/system/clocksource");
    let mut sources: Vec<(String, Vec<String>, String)> = Vec::new();
    if let Ok(rd) = std::fs::read_dir(&dir) {
        let mut names: Vec<String> = rd
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.starts_with("clocksource"))
            .collect();
        names.sort();
        for n in names {
            let d = dir.join(&n);
            let avail =
                std::fs::read_to_string(d.join("available_clocksource")).unwrap_or_default();
            let cur = std::fs::read_to_string(d.join("current_clocksource")).unwrap_or_default();
            let id = n.trim_start_matches("clocksource").to_owned();
            sources.push((
                id,
                avail.split_ascii_whitespace().map(str::to_owned).collect(),
                cur.trim().to_owned(),
            ));
        }
    }
    out.family(
        "node_time_seconds",
        MetricType::Gauge,
        "System time in seconds since epoch (1970).",
    )
    .sample("", NO_LABELS, now);
    if !sources.is_empty() {
        let mut f = out.family(
            "node_time_clocksource_available_info",
            MetricType::Gauge,
            "Available clocksources read from '/sys/devices/system/clocksource'.",
        );
        for (id, avail, _) in &sources {
            for a in avail {
                f.sample(
                    "",
                    &[("clocksource", a.as_str()), ("device", id.as_str())],
                    1.0,
                );
            }
        }
        let mut f = out.family(
            "node_time_clocksource_current_info",
            MetricType::Gauge,
            "Current clocksource read from '/sys/devices/system/clocksource'.",
        );
        for (id, _, cur) in &sources {
            if !cur.is_empty() {
                f.sample(
                    "",
                    &[("clocksource", cur.as_str()), ("device", id.as_str())],
                    1.0,
                );
            }
        }
    }
    Ok(())
}

fn uname(_opts: &AgentOptions, out: &mut CollectorWriter<'_, '_>) -> Result<(), AgentError> {
    let u = rustix::system::uname();
    let s = |c: &std::ffi::CStr| c.to_string_lossy().into_owned();
    let labels = [
        ("domainname", s(u.domainname())),
        ("machine", s(u.machine())),
        ("nodename", s(u.nodename())),
        ("release", s(u.release())),
        ("sysname", s(u.sysname())),
        ("version", s(u.version())),
    ];
    out.family(
        "node_uname_info",
        MetricType::Gauge,
        "Labeled system information as provided by the uname system call.",
    )
    .sample("", &labels, 1.0);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rootfs_prefix_is_stripped() {
        assert_eq!(strip_rootfs(Path::new("/"), "/home"), "/home");
        assert_eq!(strip_rootfs(Path::new("/host"), "/host/home"), "/home");
        assert_eq!(strip_rootfs(Path::new("/host/"), "/host"), "/");
        assert_eq!(strip_rootfs(Path::new("/host"), "/hostile"), "/hostile");
    }
}
