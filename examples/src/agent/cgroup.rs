//! Container statistics from the cgroup file systems, v1 and v2, as
//! cAdvisor's raw-cgroup handler reads them, and the Kubernetes identity
//! that the kubepods path layouts carry.
//!
//! Design note: every cgroup is a "container" (cAdvisor's raw handler does
//! the same: `id` is the cgroup path, `/` the root). On v1 each controller
//! is its own hierarchy, so the set of cgroups is the union of the
//! directories under the controllers read (`cpu`, `cpuacct`, `memory`,
//! `blkio`, `pids`), and each statistic comes from the hierarchy that has
//! that cgroup; a cgroup present only under `memory` gets memory figures
//! only. A hybrid machine (v1 controllers plus `unified/`) is read as v1,
//! as cAdvisor does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::AgentError;

/// Which cgroup layout a root holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupMode {
    /// One hierarchy per controller (`cpu/`, `memory/`, ...).
    V1,
    /// The unified hierarchy (`cgroup.controllers` at the root).
    V2,
}

/// Detects the layout under `root` (usually `/sys/fs/cgroup`): v2 when the
/// root itself has `cgroup.controllers`, v1 when a `memory` or `cpuacct`
/// hierarchy exists, `None` otherwise.
pub fn detect(root: &Path) -> Option<CgroupMode> {
    if root.join("cgroup.controllers").is_file() {
        Some(CgroupMode::V2)
    } else if root.join("memory").is_dir() || root.join("cpuacct").is_dir() {
        Some(CgroupMode::V1)
    } else {
        None
    }
}

/// CFS bandwidth counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cfs {
    /// Enforcement periods elapsed.
    pub periods: u64,
    /// Periods in which the group was throttled.
    pub throttled_periods: u64,
    /// Time throttled, nanoseconds.
    pub throttled_ns: u64,
}

/// Bytes and operations on one block device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BlkIo {
    /// Device major number.
    pub major: u32,
    /// Device minor number.
    pub minor: u32,
    /// Bytes read.
    pub read_bytes: u64,
    /// Bytes written.
    pub write_bytes: u64,
    /// Read operations.
    pub reads: u64,
    /// Write operations.
    pub writes: u64,
}

/// What one cgroup's files say. `None` where the controller is not there
/// for this cgroup or the file was unreadable.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CgroupStats {
    /// The cgroup path relative to the hierarchy root, starting with `/`
    /// (`/` for the root): cAdvisor's `id`.
    pub id: String,
    /// Total CPU time, nanoseconds.
    pub cpu_usage_ns: Option<u64>,
    /// User CPU time, nanoseconds.
    pub cpu_user_ns: Option<u64>,
    /// System CPU time, nanoseconds.
    pub cpu_system_ns: Option<u64>,
    /// CFS quota in microseconds per period (`None`: unlimited).
    pub cpu_quota_us: Option<u64>,
    /// CFS period in microseconds.
    pub cpu_period_us: Option<u64>,
    /// CFS counters.
    pub cfs: Option<Cfs>,
    /// Memory usage in bytes (v1 `memory.usage_in_bytes`, v2 `memory.current`).
    pub mem_usage: Option<u64>,
    /// Usage minus inactive file pages, floored at 0 (cAdvisor's working set).
    pub mem_working_set: Option<u64>,
    /// Anonymous memory (v1 `total_rss`, v2 `anon`).
    pub mem_rss: Option<u64>,
    /// Page cache (v1 `total_cache`, v2 `file`).
    pub mem_cache: Option<u64>,
    /// Mapped files (v1 `total_mapped_file`, v2 `file_mapped`).
    pub mem_mapped_file: Option<u64>,
    /// Swap in use (v1 `total_swap`, v2 `memory.swap.current`).
    pub mem_swap: Option<u64>,
    /// Limit hits (v1 `memory.failcnt`, v2 `max` of `memory.events`).
    pub mem_failcnt: Option<u64>,
    /// Peak usage (v1 `memory.max_usage_in_bytes`, v2 `memory.peak`).
    pub mem_max_usage: Option<u64>,
    /// The limit in bytes (`None`: unlimited or unknown).
    pub mem_limit: Option<u64>,
    /// Page faults (`pgfault`, `pgmajfault`) of `memory.stat`.
    pub mem_faults: Option<(u64, u64)>,
    /// Block I/O per device.
    pub io: Vec<BlkIo>,
    /// The first process in the cgroup, if any (for its network namespace).
    pub first_pid: Option<u32>,
}

/// Reads every cgroup under `root`, sorted by id.
pub fn read_all(root: &Path) -> Result<Vec<CgroupStats>, AgentError> {
    match detect(root) {
        Some(CgroupMode::V2) => read_v2(root),
        Some(CgroupMode::V1) => read_v1(root),
        None => Err(AgentError::Io {
            path: root.display().to_string(),
            reason: "no cgroup hierarchy here (neither cgroup.controllers nor memory/ or cpuacct/)"
                .into(),
        }),
    }
}

/// Collects the relative paths of every directory under `dir` (depth-first,
/// the root as `/`). Unreadable subdirectories are skipped: cgroups come
/// and go while we walk.
fn walk(dir: &Path, rel: &mut String, out: &mut Vec<String>) {
    out.push(if rel.is_empty() {
        "/".to_owned()
    } else {
        rel.clone()
    });
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    for name in names {
        let len = rel.len();
        rel.push('/');
        rel.push_str(&name);
        walk(&dir.join(&name), rel, out);
        rel.truncate(len);
    }
}

fn under(hier: &Path, id: &str) -> PathBuf {
    if id == "/" {
        hier.to_path_buf()
    } else {
        hier.join(&id[1..])
    }
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn read_u64(path: &Path) -> Option<u64> {
    read(path)?.trim().parse().ok()
}

/// `key value` lines (`memory.stat`, `cpu.stat`, `cpuacct.stat`) into a map.
pub fn parse_flat_keyed(text: &str) -> BTreeMap<&str, u64> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_ascii_whitespace();
            let k = w.next()?;
            let v = w.next()?.parse().ok()?;
            Some((k, v))
        })
        .collect()
}

/// Whether a cgroup id names a runtime's container: its last segment ends
/// in a 64-hex-digit id (`docker-<id>.scope`, `cri-containerd-<id>.scope`,
/// `crio-<id>.scope`, `libpod-<id>.scope`, cgroupfs `/<id>`).
pub fn is_runtime_container(id: &str) -> bool {
    let last = id.rsplit('/').next().unwrap_or("");
    let last = last.strip_suffix(".scope").unwrap_or(last);
    let hex = last.rsplit('-').next().unwrap_or("");
    hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The first process of a runtime's container cgroup (for its network
/// namespace). Listing a cgroup's processes makes the kernel build the
/// whole sorted list, which for the root and for large system cgroups was
/// most of a scrape's cost; cAdvisor itself reads network figures only for
/// runtime containers and the root, so only those are asked, and only the
/// first line is read.
fn first_pid(path: &Path, id: &str) -> Option<u32> {
    use std::io::Read;
    if !is_runtime_container(id) {
        return None;
    }
    let mut buf = [0u8; 24];
    let mut f = std::fs::File::open(path.join("cgroup.procs")).ok()?;
    let n = f.read(&mut buf).ok()?;
    let text = std::str::from_utf8(&buf[..n]).ok()?;
    // A line cut short by the buffer is not a pid.
    let (line, _) = text.split_once('\n')?;
    line.trim().parse().ok()
}

fn v1_read(root: &Path) -> Vec<(&'static str, PathBuf)> {
    let mut out: Vec<(&'static str, PathBuf)> = Vec::new();
    for c in ["cpu", "cpuacct", "memory", "blkio", "pids"] {
        let dir = root.join(c);
        if dir.is_dir() {
            out.push((c, dir));
        }
    }
    out
}

fn read_v1(root: &Path) -> Result<Vec<CgroupStats>, AgentError> {
    let ticks = clock_ticks();
    let hiers = v1_read(root);
    // Where `cpu` and `cpuacct` are one mount (`cpu,cpuacct` with
    // symlinks), walk it once.
    let mut walked: Vec<PathBuf> = Vec::new();
    let mut ids: Vec<String> = Vec::new();
    for (_, dir) in &hiers {
        let canon = dir.canonicalize().unwrap_or_else(|_| dir.clone());
        if walked.contains(&canon) {
            continue;
        }
        walked.push(canon);
        walk(dir, &mut String::new(), &mut ids);
    }
    ids.sort();
    ids.dedup();
    let hier = |name: &str| hiers.iter().find(|(c, _)| *c == name).map(|(_, d)| d);
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let mut s = CgroupStats {
            id,
            ..CgroupStats::default()
        };
        if let Some(d) = hier("cpuacct") {
            let p = under(d, &s.id);
            s.cpu_usage_ns = read_u64(&p.join("cpuacct.usage"));
            if let Some(t) = read(&p.join("cpuacct.stat")) {
                let m = parse_flat_keyed(&t);
                // USER_HZ ticks to nanoseconds, as libcontainer converts.
                let ns = |k| m.get(k).map(|v| v * (1_000_000_000 / ticks));
                s.cpu_user_ns = ns("user");
                s.cpu_system_ns = ns("system");
            }
            s.first_pid = s.first_pid.or_else(|| first_pid(&p, &s.id));
        }
        if let Some(d) = hier("cpu") {
            let p = under(d, &s.id);
            if let Some(t) = read(&p.join("cpu.stat")) {
                let m = parse_flat_keyed(&t);
                s.cfs = Some(Cfs {
                    periods: m.get("nr_periods").copied().unwrap_or(0),
                    throttled_periods: m.get("nr_throttled").copied().unwrap_or(0),
                    throttled_ns: m.get("throttled_time").copied().unwrap_or(0),
                });
            }
            s.cpu_period_us = read_u64(&p.join("cpu.cfs_period_us"));
            // -1 is "no quota": it does not parse as u64, so it reads as None.
            s.cpu_quota_us = read(&p.join("cpu.cfs_quota_us"))
                .and_then(|q| q.trim().parse::<i64>().ok())
                .and_then(|q| u64::try_from(q).ok())
                .filter(|&q| q > 0);
            s.first_pid = s.first_pid.or_else(|| first_pid(&p, &s.id));
        }
        if let Some(d) = hier("memory") {
            let p = under(d, &s.id);
            s.mem_usage = read_u64(&p.join("memory.usage_in_bytes"));
            if let Some(t) = read(&p.join("memory.stat")) {
                let m = parse_flat_keyed(&t);
                let get = |k| m.get(k).copied();
                s.mem_rss = get("total_rss");
                s.mem_cache = get("total_cache");
                s.mem_mapped_file = get("total_mapped_file");
                s.mem_swap = get("total_swap");
                s.mem_faults = get("total_pgfault").zip(get("total_pgmajfault"));
                s.mem_working_set = s
                    .mem_usage
                    .map(|u| u.saturating_sub(get("total_inactive_file").unwrap_or(0)));
            }
            s.mem_failcnt = read_u64(&p.join("memory.failcnt"));
            s.mem_max_usage = read_u64(&p.join("memory.max_usage_in_bytes"));
            s.mem_limit = read_u64(&p.join("memory.limit_in_bytes"));
            s.first_pid = s.first_pid.or_else(|| first_pid(&p, &s.id));
        }
        if let Some(d) = hier("blkio") {
            let p = under(d, &s.id);
            s.io = read_blkio_v1(&p);
        }
        out.push(s);
    }
    Ok(out)
}

/// libcontainer's order: the CFQ files, then BFQ's, then the throttling
/// layer's (which every kernel with blkio has); the first that has entries.
fn read_blkio_v1(p: &Path) -> Vec<BlkIo> {
    for prefix in ["blkio.", "blkio.bfq.", "blkio.throttle."] {
        let bytes = read(&p.join(format!("{prefix}io_service_bytes_recursive")));
        let ops = read(&p.join(format!("{prefix}io_serviced_recursive")));
        let Some(bytes) = bytes else { continue };
        let mut devs = parse_blkio_v1(&bytes, ops.as_deref().unwrap_or(""));
        if !devs.is_empty() {
            devs.sort_by_key(|d| (d.major, d.minor));
            return devs;
        }
    }
    Vec::new()
}

/// Parses v1 `io_service_bytes` and `io_serviced` (`MAJ:MIN Read N` lines,
/// a final `Total N`) into per-device figures.
pub fn parse_blkio_v1(bytes: &str, ops: &str) -> Vec<BlkIo> {
    let mut devs: Vec<BlkIo> = Vec::new();
    for (text, is_bytes) in [(bytes, true), (ops, false)] {
        for line in text.lines() {
            let mut w = line.split_ascii_whitespace();
            let (Some(dev), Some(op), Some(v)) = (w.next(), w.next(), w.next()) else {
                continue;
            };
            let Some((maj, min)) = parse_devno(dev) else {
                continue;
            };
            let Ok(v) = v.parse::<u64>() else { continue };
            let i = match devs.iter().position(|d| d.major == maj && d.minor == min) {
                Some(i) => i,
                None => {
                    devs.push(BlkIo {
                        major: maj,
                        minor: min,
                        ..BlkIo::default()
                    });
                    devs.len() - 1
                }
            };
            let d = &mut devs[i];
            match (op, is_bytes) {
                ("Read", true) => d.read_bytes = v,
                ("Write", true) => d.write_bytes = v,
                ("Read", false) => d.reads = v,
                ("Write", false) => d.writes = v,
                _ => {}
            }
        }
    }
    devs
}

fn parse_devno(s: &str) -> Option<(u32, u32)> {
    let (a, b) = s.split_once(':')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Parses v2 `io.stat` (`MAJ:MIN rbytes=N wbytes=N rios=N wios=N ...`).
pub fn parse_io_stat(text: &str) -> Vec<BlkIo> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut w = line.split_ascii_whitespace();
        let Some((major, minor)) = w.next().and_then(parse_devno) else {
            continue;
        };
        let mut d = BlkIo {
            major,
            minor,
            ..BlkIo::default()
        };
        for kv in w {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(v) = v.parse::<u64>() else { continue };
            match k {
                "rbytes" => d.read_bytes = v,
                "wbytes" => d.write_bytes = v,
                "rios" => d.reads = v,
                "wios" => d.writes = v,
                _ => {}
            }
        }
        out.push(d);
    }
    out.sort_by_key(|d| (d.major, d.minor));
    out
}

fn read_v2(root: &Path) -> Result<Vec<CgroupStats>, AgentError> {
    let mut ids = Vec::new();
    walk(root, &mut String::new(), &mut ids);
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let p = under(root, &id);
        let mut s = CgroupStats {
            id,
            ..CgroupStats::default()
        };
        if let Some(t) = read(&p.join("cpu.stat")) {
            let m = parse_flat_keyed(&t);
            let us = |k| m.get(k).map(|v| v * 1000);
            s.cpu_usage_ns = us("usage_usec");
            s.cpu_user_ns = us("user_usec");
            s.cpu_system_ns = us("system_usec");
            // nr_periods appears only where the cpu controller is enabled.
            if let Some(&periods) = m.get("nr_periods") {
                s.cfs = Some(Cfs {
                    periods,
                    throttled_periods: m.get("nr_throttled").copied().unwrap_or(0),
                    throttled_ns: m.get("throttled_usec").copied().unwrap_or(0) * 1000,
                });
            }
        }
        if let Some(t) = read(&p.join("cpu.max")) {
            let mut w = t.split_ascii_whitespace();
            s.cpu_quota_us = w.next().and_then(|q| q.parse().ok());
            s.cpu_period_us = w.next().and_then(|q| q.parse().ok());
        }
        s.mem_usage = read_u64(&p.join("memory.current"));
        if let Some(t) = read(&p.join("memory.stat")) {
            let m = parse_flat_keyed(&t);
            let get = |k| m.get(k).copied();
            s.mem_rss = get("anon");
            s.mem_cache = get("file");
            s.mem_mapped_file = get("file_mapped");
            s.mem_faults = get("pgfault").zip(get("pgmajfault"));
            s.mem_working_set = s
                .mem_usage
                .map(|u| u.saturating_sub(get("inactive_file").unwrap_or(0)));
        }
        s.mem_swap = read_u64(&p.join("memory.swap.current"));
        s.mem_max_usage = read_u64(&p.join("memory.peak"));
        // "max" does not parse: unlimited.
        s.mem_limit = read_u64(&p.join("memory.max"));
        s.mem_failcnt =
            read(&p.join("memory.events")).and_then(|t| parse_flat_keyed(&t).get("max").copied());
        if let Some(t) = read(&p.join("io.stat")) {
            s.io = parse_io_stat(&t);
        }
        s.first_pid = first_pid(&p, &s.id);
        out.push(s);
    }
    Ok(out)
}

fn clock_ticks() -> u64 {
    // USER_HZ is 100 on every Linux architecture the kernel builds today;
    // rustix reads the real value from the auxiliary vector.
    let t = rustix::param::clock_ticks_per_second();
    if t == 0 { 100 } else { t }
}

/// The pod's QoS class, from its cgroup parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QosClass {
    /// Directly under `kubepods` (no QoS level).
    Guaranteed,
    /// Under `burstable`.
    Burstable,
    /// Under `besteffort`.
    BestEffort,
}

impl QosClass {
    /// Kubernetes's spelling (`Guaranteed`, `Burstable`, `BestEffort`).
    pub fn as_str(self) -> &'static str {
        match self {
            QosClass::Guaranteed => "Guaranteed",
            QosClass::Burstable => "Burstable",
            QosClass::BestEffort => "BestEffort",
        }
    }
}

/// The cgroup driver that named the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    /// `kubepods/burstable/pod<uid>/<id>`.
    Cgroupfs,
    /// `kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid>.slice/cri-containerd-<id>.scope`.
    Systemd,
}

/// What a kubepods cgroup path says about a pod or one of its containers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeRef {
    /// Which driver's layout the path follows.
    pub driver: Driver,
    /// The QoS class.
    pub qos: QosClass,
    /// The pod UID (dashes restored on the systemd layout).
    pub pod_uid: String,
    /// The container id (the runtime's, 64 hex digits usually), `None` for
    /// the pod's own cgroup.
    pub container_id: Option<String>,
    /// The runtime prefix of a systemd scope (`cri-containerd`, `crio`,
    /// `docker`), empty for cgroupfs.
    pub runtime: String,
}

/// Parses a kubepods cgroup id of either driver. `None` for a cgroup that is
/// not a pod or container (the `kubepods` and QoS levels themselves
/// included), or for a CRI-O `crio-conmon-` scope (the monitor process,
/// not the container).
pub fn parse_kubepods(id: &str) -> Option<KubeRef> {
    let segs: Vec<&str> = id.split('/').filter(|s| !s.is_empty()).collect();
    let start = segs.iter().position(|s| {
        *s == "kubepods" || *s == "kubepods.slice" || s.ends_with("-kubepods.slice")
    })?;
    let rest = &segs[start + 1..];
    if segs[start] == "kubepods" {
        let (qos, rest) = match rest.first() {
            Some(&"burstable") => (QosClass::Burstable, &rest[1..]),
            Some(&"besteffort") => (QosClass::BestEffort, &rest[1..]),
            _ => (QosClass::Guaranteed, rest),
        };
        let uid = rest.first()?.strip_prefix("pod")?;
        if uid.is_empty() {
            return None;
        }
        let container_id = match rest.get(1) {
            Some(c) if rest.len() == 2 => Some((*c).to_owned()),
            None => None,
            _ => return None,
        };
        return Some(KubeRef {
            driver: Driver::Cgroupfs,
            qos,
            pod_uid: uid.to_owned(),
            container_id,
            runtime: String::new(),
        });
    }
    // systemd: the slice names repeat their parents' (kubepods-burstable-pod…).
    let (qos, rest) = match rest.first() {
        Some(s) if s.ends_with("kubepods-burstable.slice") => (QosClass::Burstable, &rest[1..]),
        Some(s) if s.ends_with("kubepods-besteffort.slice") => (QosClass::BestEffort, &rest[1..]),
        _ => (QosClass::Guaranteed, rest),
    };
    let pod = rest.first()?.strip_suffix(".slice")?;
    let uid = &pod[pod.rfind("-pod")? + 4..];
    if uid.is_empty() {
        return None;
    }
    let uid = uid.replace('_', "-");
    let (container_id, runtime) = match rest.get(1) {
        None => (None, String::new()),
        Some(c) if rest.len() == 2 => {
            let scope = c.strip_suffix(".scope")?;
            let dash = scope.rfind('-')?;
            let runtime = &scope[..dash];
            if runtime.ends_with("conmon") {
                return None;
            }
            (Some(scope[dash + 1..].to_owned()), runtime.to_owned())
        }
        _ => return None,
    };
    Some(KubeRef {
        driver: Driver::Systemd,
        qos,
        pod_uid: uid,
        container_id,
        runtime,
    })
}

/// Pod and container names that the kubelet's log directories reveal:
/// `/var/log/pods/<namespace>_<pod>_<uid>/` and
/// `/var/log/containers/<pod>_<namespace>_<container>-<id>.log`.
#[derive(Debug, Clone, Default)]
pub struct KubeNames {
    /// Pod UID → (namespace, pod name).
    pub pods: BTreeMap<String, (String, String)>,
    /// Container id → (namespace, pod name, container name).
    pub containers: BTreeMap<String, (String, String, String)>,
}

impl KubeNames {
    /// Reads the two directories; a missing one gives no names.
    pub fn read(pod_logs: &Path, container_logs: &Path) -> KubeNames {
        let mut names = KubeNames::default();
        let list = |d: &Path| -> Vec<String> {
            std::fs::read_dir(d)
                .map(|rd| {
                    rd.filter_map(Result::ok)
                        .filter_map(|e| e.file_name().into_string().ok())
                        .collect()
                })
                .unwrap_or_default()
        };
        for dir in list(pod_logs) {
            if let Some((ns, pod, uid)) = parse_pod_log_dir(&dir) {
                names
                    .pods
                    .insert(uid.to_owned(), (ns.to_owned(), pod.to_owned()));
            }
        }
        for file in list(container_logs) {
            if let Some((pod, ns, container, id)) = parse_container_log_name(&file) {
                names.containers.insert(
                    id.to_owned(),
                    (ns.to_owned(), pod.to_owned(), container.to_owned()),
                );
            }
        }
        names
    }
}

/// `<namespace>_<pod>_<uid>` (names cannot hold `_`; the UID is last).
pub fn parse_pod_log_dir(name: &str) -> Option<(&str, &str, &str)> {
    let mut it = name.splitn(3, '_');
    let (ns, pod, uid) = (it.next()?, it.next()?, it.next()?);
    (!ns.is_empty() && !pod.is_empty() && !uid.is_empty()).then_some((ns, pod, uid))
}

/// `<pod>_<namespace>_<container>-<id>.log` → (pod, namespace, container, id).
pub fn parse_container_log_name(name: &str) -> Option<(&str, &str, &str, &str)> {
    let stem = name.strip_suffix(".log")?;
    let mut it = stem.splitn(3, '_');
    let (pod, ns, rest) = (it.next()?, it.next()?, it.next()?);
    let dash = rest.rfind('-')?;
    let (container, id) = (&rest[..dash], &rest[dash + 1..]);
    (!pod.is_empty() && !ns.is_empty() && !container.is_empty() && !id.is_empty())
        .then_some((pod, ns, container, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubepods_cgroupfs() {
        let r =
            parse_kubepods("/kubepods/burstable/pod6f1c2e7a-1b2c-4d5e-8f90-0123456789ab/0123abcd")
                .unwrap();
        assert_eq!(r.driver, Driver::Cgroupfs);
        assert_eq!(r.qos, QosClass::Burstable);
        assert_eq!(r.pod_uid, "6f1c2e7a-1b2c-4d5e-8f90-0123456789ab");
        assert_eq!(r.container_id.as_deref(), Some("0123abcd"));
        let g = parse_kubepods("/kubepods/podabc").unwrap();
        assert_eq!((g.qos, g.container_id), (QosClass::Guaranteed, None));
        assert_eq!(parse_kubepods("/kubepods/burstable"), None);
        assert_eq!(parse_kubepods("/kubepods"), None);
        assert_eq!(parse_kubepods("/system.slice/docker.service"), None);
        assert_eq!(parse_kubepods("/kubepods/podabc/c1/extra"), None);
    }

    #[test]
    fn kubepods_systemd() {
        let r = parse_kubepods(
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod6f1c2e7a_1b2c_4d5e_8f90_0123456789ab.slice/cri-containerd-ffee00.scope",
        )
        .unwrap();
        assert_eq!(r.driver, Driver::Systemd);
        assert_eq!(r.qos, QosClass::BestEffort);
        assert_eq!(r.pod_uid, "6f1c2e7a-1b2c-4d5e-8f90-0123456789ab");
        assert_eq!(r.container_id.as_deref(), Some("ffee00"));
        assert_eq!(r.runtime, "cri-containerd");
        let g = parse_kubepods("/kubepods.slice/kubepods-podaa_bb.slice/crio-12ab.scope").unwrap();
        assert_eq!(g.qos, QosClass::Guaranteed);
        assert_eq!(g.pod_uid, "aa-bb");
        assert_eq!(g.runtime, "crio");
        assert_eq!(
            parse_kubepods("/kubepods.slice/kubepods-podaa_bb.slice/crio-conmon-12ab.scope"),
            None
        );
        assert_eq!(
            parse_kubepods("/kubepods.slice/kubepods-burstable.slice"),
            None
        );
    }

    #[test]
    fn runtime_containers() {
        let id = "ab".repeat(32);
        assert!(is_runtime_container(&format!(
            "/kubepods/besteffort/podx/{id}"
        )));
        assert!(is_runtime_container(&format!(
            "/system.slice/docker-{id}.scope"
        )));
        assert!(is_runtime_container(&format!("/a/crio-{id}.scope")));
        assert!(!is_runtime_container("/"));
        assert!(!is_runtime_container(
            "/process_api/ccc7af5b8462bea48bd14ea0fdd08940"
        ));
        assert!(!is_runtime_container(&format!(
            "/a/docker-{}.scope",
            "zz".repeat(32)
        )));
    }

    #[test]
    fn log_names() {
        assert_eq!(
            parse_container_log_name("web-7d4_default_nginx-proxy-0123abcd.log"),
            Some(("web-7d4", "default", "nginx-proxy", "0123abcd"))
        );
        assert_eq!(parse_container_log_name("nope.log"), None);
        assert_eq!(
            parse_pod_log_dir("kube-system_coredns-5d7_6f1c-2e"),
            Some(("kube-system", "coredns-5d7", "6f1c-2e"))
        );
    }

    #[test]
    fn blkio_tables() {
        let b = "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 1\n8:0 Total 12288\n253:1 Read 7\nTotal 12295\n";
        let o = "8:0 Read 1\n8:0 Write 2\n";
        let d = parse_blkio_v1(b, o);
        assert_eq!(d.len(), 2);
        assert_eq!(
            (d[0].read_bytes, d[0].write_bytes, d[0].reads, d[0].writes),
            (4096, 8192, 1, 2)
        );
        assert_eq!((d[1].major, d[1].minor, d[1].read_bytes), (253, 1, 7));
        let v2 = parse_io_stat(
            "259:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n8:16 rbytes=5\n",
        );
        assert_eq!(v2[0].major, 8);
        assert_eq!(
            (
                v2[1].read_bytes,
                v2[1].write_bytes,
                v2[1].reads,
                v2[1].writes
            ),
            (10, 20, 1, 2)
        );
    }
}
