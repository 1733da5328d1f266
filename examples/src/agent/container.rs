//! The container collector: cAdvisor's `container_*` families for every
//! cgroup, with the kubelet's label set (`container`, `id`, `image`,
//! `name`, `namespace`, `pod`).
//!
//! What fills the labels, without a kubelet or a container runtime to ask:
//! `id` is the cgroup path (as cAdvisor's raw handler). `pod` and
//! `namespace` come from the kubelet's pod log directories
//! (`/var/log/pods/<namespace>_<pod>_<uid>`) matched by the pod UID in the
//! kubepods path, and `container` from the `/var/log/containers/
//! <pod>_<namespace>_<container>-<id>.log` links matched by the container
//! id; where those are absent they are empty, as cAdvisor leaves labels it
//! cannot fill. `image` and `name` are always empty (only the runtime
//! knows them). The pod UID, container id and QoS class that the path does
//! carry are exposed in `vigil_agent_kubepods_cgroup_info`, joinable on
//! `id`, so the `container_*` series keep cAdvisor's exact label set.

use std::collections::BTreeMap;
use std::path::Path;

use vigil_exposition::MetricType;
use vigil_exposition::client::CollectorWriter;

use super::cgroup::{self, CgroupStats, KubeNames, KubeRef};
use super::procfs;
use super::{AgentError, AgentOptions};

/// cAdvisor treats anything above 2^62 as "unlimited" and reports 0 (the
/// kernel's unlimited values are rounded to pages below `i64::MAX`).
const MAX_MEMORY: u64 = 1 << 62;

/// cAdvisor's `ignoredDevicePrefixes` for container network statistics.
const IGNORED_NET_PREFIXES: [&str; 4] = ["lo", "veth", "docker", "nerdctl"];

/// Everything one scrape of the container collector reads, before writing.
pub struct Snapshot {
    /// Every cgroup, by id.
    pub cgroups: Vec<CgroupStats>,
    /// The kubepods identity of each cgroup that has one (same index).
    pub kube: Vec<Option<KubeRef>>,
    /// Names from the kubelet's log directories.
    pub names: KubeNames,
    /// `major:minor` → `/dev/<name>`.
    pub devices: BTreeMap<(u32, u32), String>,
    /// Network counters per cgroup index, where readable.
    pub net: BTreeMap<usize, Vec<procfs::NetDev>>,
}

/// The labels of a cgroup: (container, namespace, pod).
pub fn kube_names<'a>(names: &'a KubeNames, kube: Option<&KubeRef>) -> (&'a str, &'a str, &'a str) {
    let Some(k) = kube else { return ("", "", "") };
    if let Some(id) = &k.container_id {
        if let Some((ns, pod, c)) = names.containers.get(id) {
            return (c, ns, pod);
        }
    }
    match names.pods.get(&k.pod_uid) {
        Some((ns, pod)) => ("", ns, pod),
        None => ("", "", ""),
    }
}

impl Snapshot {
    /// Reads the cgroups under `opts.cgroup_root` and what goes with them.
    pub fn read(opts: &AgentOptions) -> Result<Snapshot, AgentError> {
        let cgroups = cgroup::read_all(&opts.cgroup_root)?;
        let kube = cgroups
            .iter()
            .map(|c| cgroup::parse_kubepods(&c.id))
            .collect();
        let names = KubeNames::read(&opts.pod_logs, &opts.container_logs);
        let mut devices = BTreeMap::new();
        if let Ok(t) = std::fs::read_to_string(opts.procfs.join("diskstats")) {
            if let Ok(disks) = procfs::parse_diskstats(&t, "diskstats") {
                for d in disks {
                    devices.insert((d.major, d.minor), format!("/dev/{}", d.device));
                }
            }
        }
        let mut net = BTreeMap::new();
        let host_ns = std::fs::read_link(opts.procfs.join("1/ns/net")).ok();
        for (i, c) in cgroups.iter().enumerate() {
            let path = if c.id == "/" {
                opts.procfs.join("net/dev")
            } else {
                // Only a cgroup whose processes have their own network
                // namespace has network figures of its own.
                let Some(pid) = c.first_pid else { continue };
                let ns = std::fs::read_link(opts.procfs.join(format!("{pid}/ns/net"))).ok();
                if ns.is_none() || ns == host_ns {
                    continue;
                }
                opts.procfs.join(format!("{pid}/net/dev"))
            };
            if let Some(devs) = read_net(&path) {
                net.insert(i, devs);
            }
        }
        Ok(Snapshot {
            cgroups,
            kube,
            names,
            devices,
            net,
        })
    }

    /// Writes the families.
    pub fn write(&self, out: &mut CollectorWriter<'_, '_>) {
        let base: Vec<[(&str, &str); 6]> = self
            .cgroups
            .iter()
            .zip(&self.kube)
            .map(|(c, k)| {
                let (container, ns, pod) = kube_names(&self.names, k.as_ref());
                [
                    ("container", container),
                    ("id", c.id.as_str()),
                    ("image", ""),
                    ("name", ""),
                    ("namespace", ns),
                    ("pod", pod),
                ]
            })
            .collect();
        let rows: Vec<(&CgroupStats, &[(&str, &str); 6])> =
            self.cgroups.iter().zip(base.iter()).collect();

        type Get = fn(&CgroupStats) -> Option<f64>;
        let ns = |v: Option<u64>| v.map(|v| v as f64 / 1e9);
        let cpu: [(&str, &str, Get); 2] = [
            (
                "container_cpu_user_seconds",
                "Cumulative user cpu time consumed in seconds.",
                |c| c.cpu_user_ns.map(|v| v as f64 / 1e9),
            ),
            (
                "container_cpu_system_seconds",
                "Cumulative system cpu time consumed in seconds.",
                |c| c.cpu_system_ns.map(|v| v as f64 / 1e9),
            ),
        ];
        for (name, help, get) in cpu {
            counter(out, name, help, &rows, get);
        }
        if rows.iter().any(|(c, _)| c.cpu_usage_ns.is_some()) {
            let mut f = out.family(
                "container_cpu_usage_seconds",
                MetricType::Counter,
                "Cumulative cpu time consumed in seconds.",
            );
            for (c, l) in &rows {
                if let Some(v) = ns(c.cpu_usage_ns) {
                    f.sample("_total", &with(l, ("cpu", "total")), v);
                }
            }
        }
        // cAdvisor writes the CFS families only for cgroups with a quota.
        let cfs: [(&str, &str, Get); 3] = [
            (
                "container_cpu_cfs_periods",
                "Number of elapsed enforcement period intervals.",
                |c| {
                    c.cfs
                        .filter(|_| c.cpu_quota_us.is_some())
                        .map(|s| s.periods as f64)
                },
            ),
            (
                "container_cpu_cfs_throttled_periods",
                "Number of throttled period intervals.",
                |c| {
                    c.cfs
                        .filter(|_| c.cpu_quota_us.is_some())
                        .map(|s| s.throttled_periods as f64)
                },
            ),
            (
                "container_cpu_cfs_throttled_seconds",
                "Total time duration the container has been throttled.",
                |c| {
                    c.cfs
                        .filter(|_| c.cpu_quota_us.is_some())
                        .map(|s| s.throttled_ns as f64 / 1e9)
                },
            ),
        ];
        for (name, help, get) in cfs {
            counter(out, name, help, &rows, get);
        }
        let mem: [(&str, &str, Get); 7] = [
            (
                "container_memory_cache",
                "Number of bytes of page cache memory.",
                |c| c.mem_cache.map(|v| v as f64),
            ),
            ("container_memory_rss", "Size of RSS in bytes.", |c| {
                c.mem_rss.map(|v| v as f64)
            }),
            (
                "container_memory_mapped_file",
                "Size of memory mapped files in bytes.",
                |c| c.mem_mapped_file.map(|v| v as f64),
            ),
            (
                "container_memory_swap",
                "Container swap usage in bytes.",
                |c| c.mem_swap.map(|v| v as f64),
            ),
            (
                "container_memory_usage_bytes",
                "Current memory usage in bytes, including all memory regardless of when it was accessed",
                |c| c.mem_usage.map(|v| v as f64),
            ),
            (
                "container_memory_max_usage_bytes",
                "Maximum memory usage recorded in bytes",
                |c| c.mem_max_usage.map(|v| v as f64),
            ),
            (
                "container_memory_working_set_bytes",
                "Current working set in bytes.",
                |c| c.mem_working_set.map(|v| v as f64),
            ),
        ];
        for (name, help, get) in mem {
            gauge(out, name, help, &rows, get);
        }
        // cAdvisor types this counter without `_total`, which OpenMetrics
        // forbids; untyped keeps the name valid in both formats.
        family(
            out,
            "container_memory_failcnt",
            MetricType::Unknown,
            "Number of memory usage hits limits",
            &rows,
            |c| c.mem_failcnt.map(|v| v as f64),
        );
        // A cgroup with memory figures has a limit; "unlimited" reads as 0.
        gauge(
            out,
            "container_spec_memory_limit_bytes",
            "Memory limit for the container.",
            &rows,
            |c| {
                c.mem_usage.map(|_| match c.mem_limit {
                    Some(l) if l <= MAX_MEMORY => l as f64,
                    _ => 0.0,
                })
            },
        );
        gauge(
            out,
            "container_spec_cpu_period",
            "CPU period of the container.",
            &rows,
            |c| c.cpu_period_us.map(|v| v as f64),
        );
        gauge(
            out,
            "container_spec_cpu_quota",
            "CPU quota of the container.",
            &rows,
            |c| c.cpu_quota_us.map(|v| v as f64),
        );
        self.write_io(out, &rows);
        self.write_net(out, &rows);
        if self.kube.iter().all(Option::is_none) {
            return;
        }
        let mut f = out.family(
            "vigil_agent_kubepods_cgroup_info",
            MetricType::Gauge,
            "What a kubepods cgroup path says: pod UID, container id, QoS class and cgroup driver (join on id).",
        );
        for (c, k) in self.cgroups.iter().zip(&self.kube) {
            if let Some(k) = k {
                f.sample(
                    "",
                    &[
                        ("id", c.id.as_str()),
                        ("pod_uid", k.pod_uid.as_str()),
                        ("container_id", k.container_id.as_deref().unwrap_or("")),
                        ("qos_class", k.qos.as_str()),
                        (
                            "driver",
                            match k.driver {
                                cgroup::Driver::Cgroupfs => "cgroupfs",
                                cgroup::Driver::Systemd => "systemd",
                            },
                        ),
                    ],
                    1.0,
                );
            }
        }
    }

    fn write_io(
        &self,
        out: &mut CollectorWriter<'_, '_>,
        rows: &[(&CgroupStats, &[(&str, &str); 6])],
    ) {
        type Pick = fn(&cgroup::BlkIo) -> u64;
        let fams: [(&str, &str, Pick); 4] = [
            (
                "container_fs_reads_bytes",
                "Cumulative count of bytes read",
                |d| d.read_bytes,
            ),
            (
                "container_fs_writes_bytes",
                "Cumulative count of bytes written",
                |d| d.write_bytes,
            ),
            (
                "container_fs_reads",
                "Cumulative count of reads completed",
                |d| d.reads,
            ),
            (
                "container_fs_writes",
                "Cumulative count of writes completed",
                |d| d.writes,
            ),
        ];
        if rows.iter().all(|(c, _)| c.io.is_empty()) {
            return;
        }
        for (name, help, pick) in fams {
            let mut f = out.family(name, MetricType::Counter, help);
            for (c, l) in rows {
                for d in &c.io {
                    let dev = self
                        .devices
                        .get(&(d.major, d.minor))
                        .map_or("", String::as_str);
                    f.sample("_total", &with(l, ("device", dev)), pick(d) as f64);
                }
            }
        }
    }

    fn write_net(
        &self,
        out: &mut CollectorWriter<'_, '_>,
        rows: &[(&CgroupStats, &[(&str, &str); 6])],
    ) {
        // (name, help, receive side?, column)
        let fams: [(&str, &str, bool, usize); 8] = [
            (
                "container_network_receive_bytes",
                "Cumulative count of bytes received",
                true,
                0,
            ),
            (
                "container_network_receive_errors",
                "Cumulative count of errors encountered while receiving",
                true,
                2,
            ),
            (
                "container_network_receive_packets_dropped",
                "Cumulative count of packets dropped while receiving",
                true,
                3,
            ),
            (
                "container_network_receive_packets",
                "Cumulative count of packets received",
                true,
                1,
            ),
            (
                "container_network_transmit_bytes",
                "Cumulative count of bytes transmitted",
                false,
                0,
            ),
            (
                "container_network_transmit_errors",
                "Cumulative count of errors encountered while transmitting",
                false,
                2,
            ),
            (
                "container_network_transmit_packets_dropped",
                "Cumulative count of packets dropped while transmitting",
                false,
                3,
            ),
            (
                "container_network_transmit_packets",
                "Cumulative count of packets transmitted",
                false,
                1,
            ),
        ];
        if self.net.is_empty() {
            return;
        }
        for (name, help, rx, col) in fams {
            let mut f = out.family(name, MetricType::Counter, help);
            for (i, (_, l)) in rows.iter().enumerate() {
                let Some(devs) = self.net.get(&i) else {
                    continue;
                };
                for d in devs {
                    let v = if rx { d.receive[col] } else { d.transmit[col] };
                    f.sample(
                        "_total",
                        &with(l, ("interface", d.device.as_str())),
                        v as f64,
                    );
                }
            }
        }
    }
}

fn read_net(path: &Path) -> Option<Vec<procfs::NetDev>> {
    let t = std::fs::read_to_string(path).ok()?;
    let devs = procfs::parse_net_dev(&t, &path.display().to_string()).ok()?;
    Some(
        devs.into_iter()
            .filter(|d| !IGNORED_NET_PREFIXES.iter().any(|p| d.device.starts_with(p)))
            .collect(),
    )
}

fn with<'a>(base: &[(&'a str, &'a str); 6], extra: (&'a str, &'a str)) -> [(&'a str, &'a str); 7] {
    [base[0], base[1], base[2], base[3], base[4], base[5], extra]
}

fn family(
    out: &mut CollectorWriter<'_, '_>,
    name: &str,
    ty: MetricType,
    help: &str,
    rows: &[(&CgroupStats, &[(&str, &str); 6])],
    get: fn(&CgroupStats) -> Option<f64>,
) {
    let values: Vec<(f64, &[(&str, &str); 6])> = rows
        .iter()
        .filter_map(|(c, l)| get(c).map(|v| (v, *l)))
        .collect();
    // A family with no sample is left out rather than written empty.
    if values.is_empty() {
        return;
    }
    let suffix = if ty == MetricType::Counter {
        "_total"
    } else {
        ""
    };
    let base = if ty == MetricType::Counter {
        name.strip_suffix("_total").unwrap_or(name)
    } else {
        name
    };
    let mut f = out.family(base, ty, help);
    for (v, l) in values {
        f.sample(suffix, l.as_slice(), v);
    }
}

fn counter(
    out: &mut CollectorWriter<'_, '_>,
    name: &str,
    help: &str,
    rows: &[(&CgroupStats, &[(&str, &str); 6])],
    get: fn(&CgroupStats) -> Option<f64>,
) {
    family(out, name, MetricType::Counter, help, rows, get);
}

fn gauge(
    out: &mut CollectorWriter<'_, '_>,
    name: &str,
    help: &str,
    rows: &[(&CgroupStats, &[(&str, &str); 6])],
    get: fn(&CgroupStats) -> Option<f64>,
) {
    family(out, name, MetricType::Gauge, help, rows, get);
}
