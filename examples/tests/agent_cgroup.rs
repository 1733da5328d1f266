//! The container collector on fixture trees (cgroup v2 with the systemd
//! driver's kubepods layout, v1 with the cgroupfs driver's) and on the live
//! v1 hierarchy of this machine: cAdvisor's families, values and labels.

use std::path::{Path, PathBuf};

use vigil_examples::agent::cgroup::{self, CgroupMode};
use vigil_examples::agent::{Agent, AgentOptions};
use vigil_exposition::parse::{Mode, parse_families};
use vigil_exposition::{Format, MetricFamily, MetricType};

const UID: &str = "6f1c2e7a-1b2c-4d5e-8f90-0123456789ab";
const UID2: &str = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
const CID: &str = "c0ffee0000000000000000000000000000000000000000000000000000123456";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/agent")
}

fn opts(cgroup_root: &Path, with_logs: bool) -> AgentOptions {
    let f = fixtures();
    AgentOptions {
        procfs: f.join("proc"),
        cgroup_root: cgroup_root.to_path_buf(),
        pod_logs: if with_logs {
            f.join("logs/pods")
        } else {
            f.join("nowhere")
        },
        container_logs: if with_logs {
            f.join("logs/containers")
        } else {
            f.join("nowhere")
        },
        ..AgentOptions::default()
    }
}

fn scrape(o: AgentOptions) -> Vec<MetricFamily> {
    let body = Agent::new(o).encode(Format::Text);
    parse_families(&body, Format::Text, Mode::Strict).expect("our own output parses strictly")
}

/// The value of `name` for the sample whose labels include all of `want`.
fn value(fams: &[MetricFamily], name: &str, want: &[(&str, &str)]) -> Option<f64> {
    fams.iter()
        .flat_map(|f| &f.samples)
        .find(|s| s.name == name && want.iter().all(|(k, v)| s.get_label(k) == Some(*v)))
        .map(|s| s.value)
}

fn family<'a>(fams: &'a [MetricFamily], name: &str) -> Option<&'a MetricFamily> {
    fams.iter().find(|f| f.name == name)
}

fn success(fams: &[MetricFamily], collector: &str) -> Option<f64> {
    value(
        fams,
        "node_scrape_collector_success",
        &[("collector", collector)],
    )
}

#[test]
fn v2_systemd_kubepods_fixture() {
    let root = fixtures().join("cgroup-v2-systemd");
    assert_eq!(cgroup::detect(&root), Some(CgroupMode::V2));
    let fams = scrape(opts(&root, true));
    assert_eq!(success(&fams, "container"), Some(1.0));
    let pod_id = format!(
        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice",
        UID.replace('-', "_")
    );
    let cid = format!("{pod_id}/cri-containerd-{CID}.scope");
    // The container: names from the kubelet's log links.
    let c = [
        ("id", cid.as_str()),
        ("container", "nginx"),
        ("pod", "web-7d4f9"),
        ("namespace", "shop"),
        ("image", ""),
        ("name", ""),
    ];
    assert_eq!(
        value(
            &fams,
            "container_cpu_usage_seconds_total",
            &[c[0], ("cpu", "total")]
        ),
        Some(240.0)
    );
    assert_eq!(
        value(&fams, "container_cpu_usage_seconds_total", &c),
        Some(240.0)
    );
    assert_eq!(
        value(&fams, "container_cpu_user_seconds_total", &c),
        Some(190.0)
    );
    assert_eq!(
        value(&fams, "container_cpu_system_seconds_total", &c),
        Some(50.0)
    );
    assert_eq!(
        value(&fams, "container_cpu_cfs_periods_total", &c),
        Some(100.0)
    );
    assert_eq!(
        value(&fams, "container_cpu_cfs_throttled_periods_total", &c),
        Some(7.0)
    );
    assert_eq!(
        value(&fams, "container_cpu_cfs_throttled_seconds_total", &c),
        Some(0.35)
    );
    assert_eq!(
        value(&fams, "container_memory_usage_bytes", &c),
        Some(200_000_000.0)
    );
    // usage − inactive_file
    assert_eq!(
        value(&fams, "container_memory_working_set_bytes", &c),
        Some(150_000_000.0)
    );
    assert_eq!(
        value(&fams, "container_memory_rss", &c),
        Some(100_000_000.0)
    );
    assert_eq!(
        value(&fams, "container_memory_cache", &c),
        Some(90_000_000.0)
    );
    assert_eq!(
        value(&fams, "container_memory_mapped_file", &c),
        Some(4_000_000.0)
    );
    assert_eq!(
        value(&fams, "container_memory_max_usage_bytes", &c),
        Some(230_000_000.0)
    );
    assert_eq!(value(&fams, "container_memory_failcnt", &c), Some(3.0));
    assert_eq!(
        value(&fams, "container_spec_memory_limit_bytes", &c),
        Some(268_435_456.0)
    );
    assert_eq!(
        value(&fams, "container_spec_cpu_quota", &c),
        Some(200_000.0)
    );
    assert_eq!(
        value(&fams, "container_spec_cpu_period", &c),
        Some(100_000.0)
    );
    // 8:0 is sda in the fixture's diskstats.
    let dev = [c[0], ("device", "/dev/sda")];
    assert_eq!(
        value(&fams, "container_fs_reads_bytes_total", &dev),
        Some(1_048_576.0)
    );
    assert_eq!(
        value(&fams, "container_fs_writes_bytes_total", &dev),
        Some(2_097_152.0)
    );
    assert_eq!(value(&fams, "container_fs_reads_total", &dev), Some(16.0));
    assert_eq!(value(&fams, "container_fs_writes_total", &dev), Some(32.0));
    // Network: the container's first process (4242) has its own network
    // namespace in the fixture's /proc; lo is left out as cAdvisor does.
    let eth = [c[0], ("interface", "eth0")];
    assert_eq!(
        value(&fams, "container_network_receive_bytes_total", &eth),
        Some(5_000_000.0)
    );
    assert_eq!(
        value(&fams, "container_network_receive_packets_total", &eth),
        Some(4000.0)
    );
    assert_eq!(
        value(&fams, "container_network_receive_errors_total", &eth),
        Some(3.0)
    );
    assert_eq!(
        value(
            &fams,
            "container_network_receive_packets_dropped_total",
            &eth
        ),
        Some(2.0)
    );
    assert_eq!(
        value(&fams, "container_network_transmit_bytes_total", &eth),
        Some(7_000_000.0)
    );
    assert_eq!(
        value(
            &fams,
            "container_network_transmit_packets_dropped_total",
            &eth
        ),
        Some(4.0)
    );
    assert_eq!(
        value(
            &fams,
            "container_network_receive_bytes_total",
            &[c[0], ("interface", "lo")]
        ),
        None
    );
    // The root container's network is the host's /proc/net/dev.
    assert!(
        value(
            &fams,
            "container_network_receive_bytes_total",
            &[("id", "/"), ("interface", "eth0")]
        )
        .is_some()
    );
    // A cgroup without processes of its own has no network series.
    let pod_net = [("id", pod_id.as_str()), ("interface", "eth0")];
    assert_eq!(
        value(&fams, "container_network_receive_bytes_total", &pod_net),
        None
    );
    // The pod's own cgroup: pod and namespace from /var/log/pods, no container.
    let p = [
        ("id", pod_id.as_str()),
        ("pod", "web-7d4f9"),
        ("namespace", "shop"),
        ("container", ""),
    ];
    assert_eq!(
        value(&fams, "container_memory_working_set_bytes", &p),
        Some(157_286_400.0)
    );
    // The best-effort pod: no quota, so no CFS series; no memory limit → 0.
    let be = format!(
        "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{}.slice",
        UID2.replace('-', "_")
    );
    let b = [("id", be.as_str()), ("pod", ""), ("namespace", "")];
    assert_eq!(value(&fams, "container_cpu_cfs_periods_total", &b), None);
    assert_eq!(
        value(&fams, "container_spec_memory_limit_bytes", &b),
        Some(0.0)
    );
    assert_eq!(
        value(&fams, "container_cpu_usage_seconds_total", &b),
        Some(0.001)
    );
    // What the path says, joinable on id.
    let info = [
        ("id", cid.as_str()),
        ("pod_uid", UID),
        ("container_id", CID),
        ("qos_class", "Burstable"),
        ("driver", "systemd"),
    ];
    assert_eq!(
        value(&fams, "vigil_agent_kubepods_cgroup_info", &info),
        Some(1.0)
    );
    // The conmon scope is a cgroup (id) but not a container of the pod.
    let conmon = value(
        &fams,
        "vigil_agent_kubepods_cgroup_info",
        &[("qos_class", "BestEffort"), ("container_id", "")],
    );
    assert_eq!(conmon, Some(1.0), "the best-effort pod's own cgroup");
    let infos = &family(&fams, "vigil_agent_kubepods_cgroup_info")
        .unwrap()
        .samples;
    assert!(
        infos
            .iter()
            .all(|s| !s.get_label("id").unwrap().contains("conmon"))
    );
    // Root and system cgroups are containers too, as in cAdvisor.
    assert_eq!(
        value(&fams, "container_cpu_usage_seconds_total", &[("id", "/")]),
        Some(9000.0)
    );
    assert_eq!(
        value(
            &fams,
            "container_memory_usage_bytes",
            &[("id", "/system.slice/containerd.service")]
        ),
        Some(50_000_000.0)
    );
    // Types as cAdvisor's.
    for (name, ty) in [
        ("container_cpu_usage_seconds_total", MetricType::Counter),
        (
            "container_cpu_cfs_throttled_periods_total",
            MetricType::Counter,
        ),
        ("container_memory_working_set_bytes", MetricType::Gauge),
        ("container_spec_memory_limit_bytes", MetricType::Gauge),
        ("container_fs_reads_bytes_total", MetricType::Counter),
    ] {
        assert_eq!(
            family(&fams, name).map(|f| f.metric_type),
            Some(ty),
            "{name}"
        );
    }
}

#[test]
fn v2_fixture_without_kubelet_logs_leaves_names_empty() {
    let root = fixtures().join("cgroup-v2-systemd");
    let fams = scrape(opts(&root, false));
    let cid = format!(
        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-{CID}.scope",
        UID.replace('-', "_")
    );
    let c = [
        ("id", cid.as_str()),
        ("container", ""),
        ("pod", ""),
        ("namespace", ""),
    ];
    assert_eq!(
        value(&fams, "container_memory_usage_bytes", &c),
        Some(200_000_000.0)
    );
}

#[test]
fn v1_cgroupfs_kubepods_fixture() {
    let root = fixtures().join("cgroup-v1-cgroupfs");
    assert_eq!(cgroup::detect(&root), Some(CgroupMode::V1));
    let fams = scrape(opts(&root, true));
    assert_eq!(success(&fams, "container"), Some(1.0));
    let cid = format!("/kubepods/burstable/pod{UID}/{CID}");
    let c = [
        ("id", cid.as_str()),
        ("container", "nginx"),
        ("pod", "web-7d4f9"),
        ("namespace", "shop"),
    ];
    assert_eq!(
        value(&fams, "container_cpu_usage_seconds_total", &c),
        Some(0.24)
    );
    // cpuacct.stat ticks (USER_HZ 100): 19 → 0.19 s.
    assert_eq!(
        value(&fams, "container_cpu_user_seconds_total", &c),
        Some(0.19)
    );
    assert_eq!(
        value(&fams, "container_cpu_cfs_throttled_seconds_total", &c),
        Some(0.35)
    );
    assert_eq!(
        value(&fams, "container_memory_working_set_bytes", &c),
        Some(150_000_000.0)
    );
    assert_eq!(
        value(&fams, "container_memory_rss", &c),
        Some(100_000_000.0)
    );
    assert_eq!(
        value(&fams, "container_memory_cache", &c),
        Some(90_000_000.0)
    );
    assert_eq!(
        value(&fams, "container_spec_memory_limit_bytes", &c),
        Some(268_435_456.0)
    );
    let dev = [c[0], ("device", "/dev/sda")];
    assert_eq!(
        value(&fams, "container_fs_reads_bytes_total", &dev),
        Some(1_048_576.0)
    );
    assert_eq!(value(&fams, "container_fs_writes_total", &dev), Some(32.0));
    // The root: unlimited (9223372036854771712) reads as 0, no quota → no CFS.
    assert_eq!(
        value(&fams, "container_spec_memory_limit_bytes", &[("id", "/")]),
        Some(0.0)
    );
    assert_eq!(
        value(&fams, "container_cpu_cfs_periods_total", &[("id", "/")]),
        None
    );
    assert_eq!(
        value(&fams, "container_memory_working_set_bytes", &[("id", "/")]),
        Some(2_500_000_000.0)
    );
    let info = [
        ("id", cid.as_str()),
        ("driver", "cgroupfs"),
        ("qos_class", "Burstable"),
        ("pod_uid", UID),
    ];
    assert_eq!(
        value(&fams, "vigil_agent_kubepods_cgroup_info", &info),
        Some(1.0)
    );
}

#[test]
fn missing_cgroup_root_fails_only_the_container_collector() {
    let fams = scrape(opts(&fixtures().join("no-such-dir"), false));
    assert_eq!(success(&fams, "container"), Some(0.0));
    assert_eq!(success(&fams, "meminfo"), Some(1.0));
    assert!(family(&fams, "container_cpu_usage_seconds_total").is_none());
    assert!(family(&fams, "node_memory_MemTotal_bytes").is_some());
}

/// This machine runs cgroup v1: the live hierarchy is read as such, every
/// memory cgroup of it appears with the figures its files hold.
#[test]
fn live_cgroup_v1_hierarchy() {
    let root = Path::new("/sys/fs/cgroup");
    if cgroup::detect(root) != Some(CgroupMode::V1) {
        eprintln!("skipped: /sys/fs/cgroup is not cgroup v1 on this machine");
        return;
    }
    // Cgroups come and go (sessions on this machine make them): a directory
    // seen before a read and still there after it must be in the read.
    let mut dirs = Vec::new();
    collect_dirs(&root.join("memory"), "", &mut dirs);
    let stats = cgroup::read_all(root).unwrap();
    let still = |d: &str| root.join("memory").join(d.trim_start_matches('/')).is_dir();
    let root_cg = stats.iter().find(|c| c.id == "/").expect("the root cgroup");
    assert!(root_cg.cpu_usage_ns.unwrap() > 0);
    assert!(root_cg.mem_usage.unwrap() > 0);
    for d in dirs.iter().filter(|d| still(d)) {
        assert!(stats.iter().any(|c| &c.id == d), "{d} missing");
    }
    let fams = scrape(AgentOptions {
        cgroup_root: root.to_path_buf(),
        ..AgentOptions::default()
    });
    assert_eq!(success(&fams, "container"), Some(1.0));
    let usage = value(&fams, "container_memory_usage_bytes", &[("id", "/")]).unwrap();
    let ws = value(&fams, "container_memory_working_set_bytes", &[("id", "/")]).unwrap();
    assert!(ws <= usage && usage > 0.0, "ws {ws} usage {usage}");
    let series = &family(&fams, "container_memory_usage_bytes")
        .unwrap()
        .samples;
    for d in dirs.iter().filter(|d| still(d)) {
        assert!(
            series.iter().any(|s| s.get_label("id") == Some(d.as_str())),
            "no container_memory_usage_bytes for {d}"
        );
    }
    // The live root has cpuacct: CPU by the root cgroup, cpu="total".
    assert!(
        value(
            &fams,
            "container_cpu_usage_seconds_total",
            &[("id", "/"), ("cpu", "total")]
        )
        .unwrap()
            > 0.0
    );
}

fn collect_dirs(dir: &Path, rel: &str, out: &mut Vec<String>) {
    out.push(if rel.is_empty() {
        "/".into()
    } else {
        rel.into()
    });
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.file_type().unwrap().is_dir() {
            let name = e.file_name().into_string().unwrap();
            collect_dirs(&e.path(), &format!("{rel}/{name}"), out);
        }
    }
}

#[test]
fn v1_systemd_kubepods_fixture() {
    let root = fixtures().join("cgroup-v1-systemd");
    assert_eq!(cgroup::detect(&root), Some(CgroupMode::V1));
    let fams = scrape(opts(&root, false));
    let uid = "11112222-3333-4444-5555-666677778888";
    let cid_hex = "d0".repeat(32);
    let id = format!(
        "/kubepods.slice/kubepods-pod{}.slice/docker-{cid_hex}.scope",
        uid.replace('-', "_")
    );
    let c = [("id", id.as_str()), ("pod", ""), ("container", "")];
    assert_eq!(
        value(&fams, "container_cpu_usage_seconds_total", &c),
        Some(3.0)
    );
    assert_eq!(
        value(&fams, "container_cpu_user_seconds_total", &c),
        Some(2.0)
    );
    assert_eq!(
        value(&fams, "container_memory_working_set_bytes", &c),
        Some(48_000_000.0)
    );
    assert_eq!(
        value(&fams, "container_spec_memory_limit_bytes", &c),
        Some(134_217_728.0)
    );
    // Present only under cpuacct: CPU series, no memory ones.
    let pod = format!(
        "/kubepods.slice/kubepods-pod{}.slice",
        uid.replace('-', "_")
    );
    assert_eq!(
        value(
            &fams,
            "container_cpu_usage_seconds_total",
            &[("id", pod.as_str())]
        ),
        Some(3.0)
    );
    assert_eq!(
        value(
            &fams,
            "container_memory_usage_bytes",
            &[("id", pod.as_str())]
        ),
        None
    );
    let info = [
        ("id", id.as_str()),
        ("driver", "systemd"),
        ("qos_class", "Guaranteed"),
        ("pod_uid", uid),
        ("container_id", cid_hex.as_str()),
    ];
    assert_eq!(
        value(&fams, "vigil_agent_kubepods_cgroup_info", &info),
        Some(1.0)
    );
}
