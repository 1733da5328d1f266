//! Parsers of the `/proc` files the host collectors read. Each takes the
//! file's text and the path it came from (for error messages), and returns
//! plain values; nothing here touches the file system, so every parser is
//! tested on fixture snapshots and with proptest.

use super::AgentError;

/// Per-CPU times from a `cpuN` line of `/proc/stat`, in USER_HZ ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuTimes {
    /// `user`: normal processes in user mode (guest time included, as the
    /// kernel counts it and node_exporter exports it).
    pub user: u64,
    /// `nice`: niced processes in user mode (guest_nice included).
    pub nice: u64,
    /// `system`: kernel mode.
    pub system: u64,
    /// `idle`.
    pub idle: u64,
    /// `iowait`.
    pub iowait: u64,
    /// `irq`: servicing interrupts.
    pub irq: u64,
    /// `softirq`: servicing softirqs.
    pub softirq: u64,
    /// `steal`: time stolen by the hypervisor.
    pub steal: u64,
    /// `guest`: running a virtual CPU for a guest.
    pub guest: u64,
    /// `guest_nice`: running a niced guest.
    pub guest_nice: u64,
}

impl CpuTimes {
    /// The modes node_exporter exports in `node_cpu_seconds_total`, with
    /// their values, in its order.
    pub fn modes(&self) -> [(&'static str, u64); 8] {
        [
            ("idle", self.idle),
            ("iowait", self.iowait),
            ("irq", self.irq),
            ("nice", self.nice),
            ("softirq", self.softirq),
            ("steal", self.steal),
            ("system", self.system),
            ("user", self.user),
        ]
    }

    /// Ticks not idle (the kubelet Summary's node CPU when there is no root
    /// cgroup to read): everything but idle and iowait, guest time being
    /// already inside user and nice.
    pub fn busy(&self) -> u64 {
        self.user + self.nice + self.system + self.irq + self.softirq + self.steal
    }
}

/// What `/proc/stat` holds that the `cpu` and `stat` collectors export.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stat {
    /// The aggregate `cpu` line.
    pub total: CpuTimes,
    /// `cpuN` lines: (N, times), in file order.
    pub cpus: Vec<(u32, CpuTimes)>,
    /// `intr`: the first number (total interrupts serviced).
    pub intr: u64,
    /// `ctxt`: context switches.
    pub ctxt: u64,
    /// `btime`: boot time, seconds since the epoch.
    pub btime: u64,
    /// `processes`: forks since boot.
    pub processes: u64,
    /// `procs_running`.
    pub procs_running: u64,
    /// `procs_blocked`.
    pub procs_blocked: u64,
}

fn num(path: &str, line: usize, field: &str, word: &str) -> Result<u64, AgentError> {
    word.parse::<u64>().map_err(|_| AgentError::Parse {
        path: path.to_owned(),
        line,
        reason: format!("{field}: {word:?} is not an unsigned integer"),
    })
}

fn fnum(path: &str, line: usize, field: &str, word: &str) -> Result<f64, AgentError> {
    word.parse::<f64>().map_err(|_| AgentError::Parse {
        path: path.to_owned(),
        line,
        reason: format!("{field}: {word:?} is not a number"),
    })
}

fn parse_err(path: &str, line: usize, reason: impl Into<String>) -> AgentError {
    AgentError::Parse {
        path: path.to_owned(),
        line,
        reason: reason.into(),
    }
}

/// Parses `/proc/stat`. Lines it does not use are skipped; a line it uses
/// with a bad number is an error naming the line.
pub fn parse_stat(text: &str, path: &str) -> Result<Stat, AgentError> {
    let mut st = Stat::default();
    let mut seen_btime = false;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let mut words = line.split_ascii_whitespace();
        let Some(key) = words.next() else { continue };
        if let Some(id) = key.strip_prefix("cpu") {
            // Older kernels have fewer columns; missing ones read as 0.
            let mut v = [0u64; 10];
            for (slot, w) in v.iter_mut().zip(words) {
                *slot = num(path, n, key, w)?;
            }
            let t = CpuTimes {
                user: v[0],
                nice: v[1],
                system: v[2],
                idle: v[3],
                iowait: v[4],
                irq: v[5],
                softirq: v[6],
                steal: v[7],
                guest: v[8],
                guest_nice: v[9],
            };
            if id.is_empty() {
                st.total = t;
            } else {
                let id = id
                    .parse::<u32>()
                    .map_err(|_| parse_err(path, n, format!("bad CPU name {key:?}")))?;
                st.cpus.push((id, t));
            }
            continue;
        }
        let first = |words: &mut std::str::SplitAsciiWhitespace<'_>| {
            words
                .next()
                .ok_or_else(|| parse_err(path, n, format!("{key}: missing value")))
                .and_then(|w| num(path, n, key, w))
        };
        match key {
            "intr" => st.intr = first(&mut words)?,
            "ctxt" => st.ctxt = first(&mut words)?,
            "btime" => {
                st.btime = first(&mut words)?;
                seen_btime = true;
            }
            "processes" => st.processes = first(&mut words)?,
            "procs_running" => st.procs_running = first(&mut words)?,
            "procs_blocked" => st.procs_blocked = first(&mut words)?,
            _ => {}
        }
    }
    if !seen_btime {
        return Err(parse_err(path, 0, "no btime line"));
    }
    Ok(st)
}

/// One `/proc/meminfo` field, named as node_exporter names the metric
/// (`MemTotal_bytes`, `Active_anon_bytes`, `HugePages_Total`).
#[derive(Debug, Clone, PartialEq)]
pub struct MemField {
    /// The name after `node_memory_`.
    pub name: String,
    /// The value, in bytes when the file gave kB.
    pub value: f64,
}

/// Parses `/proc/meminfo`: `Key:   value [kB]`. `(` in a key becomes `_`
/// and `)` is dropped (`Active(anon)` → `Active_anon`); kB values are
/// multiplied by 1024 and named with `_bytes`, as node_exporter does.
pub fn parse_meminfo(text: &str, path: &str) -> Result<Vec<MemField>, AgentError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let (key, rest) = line
            .split_once(':')
            .ok_or_else(|| parse_err(path, n, "no ':' after the field name"))?;
        let mut words = rest.split_ascii_whitespace();
        let value = words
            .next()
            .ok_or_else(|| parse_err(path, n, format!("{key}: missing value")))?;
        let value = num(path, n, key, value)? as f64;
        let mut name: String = key
            .trim()
            .chars()
            .filter_map(|c| match c {
                '(' => Some('_'),
                ')' => None,
                c => Some(c),
            })
            .collect();
        let value = match words.next() {
            Some("kB") => {
                name.push_str("_bytes");
                value * 1024.0
            }
            Some(unit) => return Err(parse_err(path, n, format!("{key}: unknown unit {unit:?}"))),
            None => value,
        };
        out.push(MemField { name, value });
    }
    Ok(out)
}

/// Looks a field up by its metric name (`MemTotal_bytes`).
pub fn mem_value(fields: &[MemField], name: &str) -> Option<f64> {
    fields.iter().find(|f| f.name == name).map(|f| f.value)
}

/// The three load averages of `/proc/loadavg`.
pub fn parse_loadavg(text: &str, path: &str) -> Result<[f64; 3], AgentError> {
    let mut words = text.split_ascii_whitespace();
    let mut out = [0.0; 3];
    for (slot, field) in out.iter_mut().zip(["load1", "load5", "load15"]) {
        let w = words
            .next()
            .ok_or_else(|| parse_err(path, 1, format!("{field}: missing")))?;
        *slot = fnum(path, 1, field, w)?;
    }
    Ok(out)
}

/// One line of `/proc/diskstats`: the device and its counters (fields 4
/// onward; kernels before 4.18 have 11, before 5.5 15, later 17; missing
/// ones are `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskStat {
    /// Major device number.
    pub major: u32,
    /// Minor device number.
    pub minor: u32,
    /// Device name (`vda`, `nvme0n1`).
    pub device: String,
    /// The counters in kernel order (reads completed, reads merged, sectors
    /// read, ms reading, writes completed, ..., flush ms).
    pub fields: Vec<u64>,
}

/// Parses `/proc/diskstats`.
pub fn parse_diskstats(text: &str, path: &str) -> Result<Vec<DiskStat>, AgentError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let mut words = line.split_ascii_whitespace();
        let (Some(major), Some(minor), Some(device)) = (words.next(), words.next(), words.next())
        else {
            if line.trim().is_empty() {
                continue;
            }
            return Err(parse_err(path, n, "fewer than 3 columns"));
        };
        let major = num(path, n, "major", major)? as u32;
        let minor = num(path, n, "minor", minor)? as u32;
        let fields = words
            .map(|w| num(path, n, device, w))
            .collect::<Result<Vec<_>, _>>()?;
        if fields.len() < 11 {
            return Err(parse_err(
                path,
                n,
                format!("{device}: {} counters, expected at least 11", fields.len()),
            ));
        }
        out.push(DiskStat {
            major,
            minor,
            device: device.to_owned(),
            fields,
        });
    }
    Ok(out)
}

/// node_exporter 1.5's default `--collector.diskstats.device-exclude`:
/// `^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$` (partitions and
/// pseudo devices), written out without a regex engine.
pub fn disk_excluded(device: &str) -> bool {
    let b = device.as_bytes();
    // The name must end in one or more digits after one of the prefixes.
    let digits_from = b
        .iter()
        .rposition(|c| !c.is_ascii_digit())
        .map_or(0, |p| p + 1);
    if digits_from == b.len() || digits_from == 0 {
        return false;
    }
    let head = &device[..digits_from];
    match head {
        "ram" | "loop" | "fd" => return true,
        _ => {}
    }
    let hb = head.as_bytes();
    // (h|s|v)d[a-z] and xvd[a-z]
    if hb.len() == 3 && matches!(hb[0], b'h' | b's' | b'v') && hb[1] == b'd' {
        return hb[2].is_ascii_lowercase();
    }
    if hb.len() == 4 && &hb[..3] == b"xvd" {
        return hb[3].is_ascii_lowercase();
    }
    // nvme\d+n\d+p
    if let Some(rest) = head.strip_prefix("nvme").and_then(|r| r.strip_suffix('p')) {
        if let Some((a, c)) = rest.split_once('n') {
            let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
            return all_digits(a) && all_digits(c);
        }
    }
    false
}

/// One interface of `/proc/net/dev`: receive then transmit counters, eight
/// each, in the file's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetDev {
    /// Interface name.
    pub device: String,
    /// bytes, packets, errs, drop, fifo, frame, compressed, multicast.
    pub receive: [u64; 8],
    /// bytes, packets, errs, drop, fifo, colls, carrier, compressed.
    pub transmit: [u64; 8],
}

/// The receive column names of `/proc/net/dev`, as node_exporter names them.
pub const NET_RECEIVE: [&str; 8] = [
    "bytes",
    "packets",
    "errs",
    "drop",
    "fifo",
    "frame",
    "compressed",
    "multicast",
];
/// The transmit column names of `/proc/net/dev`.
pub const NET_TRANSMIT: [&str; 8] = [
    "bytes",
    "packets",
    "errs",
    "drop",
    "fifo",
    "colls",
    "carrier",
    "compressed",
];

/// Parses `/proc/net/dev` (two header lines, then `name: 16 numbers`).
pub fn parse_net_dev(text: &str, path: &str) -> Result<Vec<NetDev>, AgentError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().skip(2) {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let (name, rest) = line
            .split_once(':')
            .ok_or_else(|| parse_err(path, n, "no ':' after the interface name"))?;
        let name = name.trim();
        let mut v = [0u64; 16];
        let mut count = 0;
        for w in rest.split_ascii_whitespace() {
            if count == 16 {
                return Err(parse_err(path, n, format!("{name}: more than 16 counters")));
            }
            v[count] = num(path, n, name, w)?;
            count += 1;
        }
        if count != 16 {
            return Err(parse_err(
                path,
                n,
                format!("{name}: {count} counters, expected 16"),
            ));
        }
        let mut receive = [0; 8];
        let mut transmit = [0; 8];
        receive.copy_from_slice(&v[..8]);
        transmit.copy_from_slice(&v[8..]);
        out.push(NetDev {
            device: name.to_owned(),
            receive,
            transmit,
        });
    }
    Ok(out)
}

/// One line of a mounts file (`/proc/1/mounts`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The mounted device (`/dev/vda`, `tmpfs`).
    pub device: String,
    /// Where it is mounted, octal escapes (`\040`) decoded.
    pub mountpoint: String,
    /// File system type.
    pub fstype: String,
    /// Whether the options include `ro`.
    pub readonly: bool,
}

/// Decodes the kernel's octal escapes (`\040` space, `\011` tab, `\012`,
/// `\134` backslash) in a mounts field.
pub fn unescape_octal(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_owned();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            let oct = &b[i + 1..i + 4];
            if oct.iter().all(|c| (b'0'..=b'7').contains(c)) {
                let v = u32::from(oct[0] - b'0') * 64
                    + u32::from(oct[1] - b'0') * 8
                    + u32::from(oct[2] - b'0');
                if let Ok(byte) = u8::try_from(v) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses a mounts file (`device mountpoint fstype options dump pass`).
pub fn parse_mounts(text: &str, path: &str) -> Result<Vec<Mount>, AgentError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let w: Vec<&str> = line.split_ascii_whitespace().collect();
        if w.len() < 4 {
            return Err(parse_err(
                path,
                n,
                format!("{} fields, expected 6", w.len()),
            ));
        }
        out.push(Mount {
            device: unescape_octal(w[0]),
            mountpoint: unescape_octal(w[1]),
            fstype: w[2].to_owned(),
            readonly: w[3].split(',').any(|o| o == "ro"),
        });
    }
    Ok(out)
}

/// node_exporter 1.5's default `--collector.filesystem.fs-types-exclude`.
pub const FS_TYPES_EXCLUDED: &[&str] = &[
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "configfs",
    "debugfs",
    "devpts",
    "devtmpfs",
    "fusectl",
    "hugetlbfs",
    "iso9660",
    "mqueue",
    "nsfs",
    "overlay",
    "proc",
    "procfs",
    "pstore",
    "rpc_pipefs",
    "securityfs",
    "selinuxfs",
    "squashfs",
    "sysfs",
    "tracefs",
];

/// node_exporter 1.5's default `--collector.filesystem.mount-points-exclude`:
/// `^/(dev|proc|run|sys|mnt|media|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)`.
pub fn mountpoint_excluded(mp: &str) -> bool {
    let Some(rest) = mp.strip_prefix('/') else {
        return false;
    };
    for top in ["dev", "proc", "run", "sys", "mnt", "media"] {
        if let Some(after) = rest.strip_prefix(top) {
            if after.is_empty() || after.starts_with('/') {
                return true;
            }
        }
    }
    for deep in ["var/lib/docker/", "var/lib/containers/storage/"] {
        // `.+` then `($|/)`: at least one character after the prefix.
        if rest.strip_prefix(deep).is_some_and(|r| !r.is_empty()) {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_escapes() {
        assert_eq!(unescape_octal(r"/mnt/my\040disk"), "/mnt/my disk");
        assert_eq!(unescape_octal(r"a\011b\134c"), "a\tb\\c");
        assert_eq!(unescape_octal(r"trailing\04"), r"trailing\04");
        assert_eq!(unescape_octal(r"\999"), r"\999");
    }

    #[test]
    fn disk_filter_is_node_exporters() {
        for d in [
            "loop0",
            "ram12",
            "fd0",
            "sda1",
            "vda2",
            "hdb3",
            "xvda1",
            "nvme0n1p1",
        ] {
            assert!(disk_excluded(d), "{d}");
        }
        for d in [
            "sda", "vda", "nvme0n1", "zram0", "dm-0", "md127", "sr0", "loop", "mmcblk0",
        ] {
            assert!(!disk_excluded(d), "{d}");
        }
    }

    #[test]
    fn mountpoint_filter_is_node_exporters() {
        for m in [
            "/dev",
            "/dev/shm",
            "/proc",
            "/sys/fs/cgroup",
            "/run/user/0",
            "/mnt/x",
            "/var/lib/docker/overlay2/a",
        ] {
            assert!(mountpoint_excluded(m), "{m}");
        }
        for m in [
            "/",
            "/home",
            "/devices",
            "/var/lib/docker",
            "/var/lib/docker/",
            "/srv",
        ] {
            assert!(!mountpoint_excluded(m), "{m}");
        }
    }
}
