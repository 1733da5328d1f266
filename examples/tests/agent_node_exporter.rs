//! vigil-agent beside the real node_exporter 1.5 (Debian's
//! prometheus-node-exporter, installed by scripts/test) on the same machine
//! at the same time, with node_exporter limited to the collectors we
//! implement: the same family names, types and label names, and the same
//! values where they hold still (CPU count, MemTotal, uname, file system
//! sizes, boot time).

mod peers;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use vigil_exposition::parse::{Mode, parse_families};
use vigil_exposition::{Format, MetricFamily, MetricType};

/// The collectors both implement.
const COLLECTORS: [&str; 9] = [
    "cpu",
    "diskstats",
    "filesystem",
    "loadavg",
    "meminfo",
    "netdev",
    "stat",
    "time",
    "uname",
];

/// Families node_exporter 1.5 writes for those collectors that we do not:
/// netlink-only statistics, what needs udev or a time zone database, and
/// node_exporter's own build information.
const NOT_OURS: [&str; 4] = [
    "node_exporter_build_info",
    "node_network_receive_nohandler_total",
    "node_disk_info",
    "node_time_zone_offset_seconds",
];

fn families(body: &str) -> Vec<MetricFamily> {
    parse_families(body.as_bytes(), Format::Text, Mode::Strict).expect("parses")
}

/// name → (type, label names of every sample).
fn shape(fams: &[MetricFamily]) -> BTreeMap<String, (MetricType, BTreeSet<Vec<String>>)> {
    fams.iter()
        .filter(|f| f.name.starts_with("node_"))
        .map(|f| {
            let labels = f
                .samples
                .iter()
                .map(|s| {
                    let mut n: Vec<String> = s.labels.iter().map(|(k, _)| k.clone()).collect();
                    n.sort();
                    n
                })
                .collect();
            // The text format names counters with their _total.
            (f.name.clone(), (f.metric_type, labels))
        })
        .collect()
}

fn values(fams: &[MetricFamily], name: &str) -> BTreeMap<Vec<(String, String)>, f64> {
    fams.iter()
        .flat_map(|f| &f.samples)
        .filter(|s| s.name == name)
        .map(|s| {
            let mut l = s.labels.clone();
            l.sort();
            (l, s.value)
        })
        .collect()
}

#[test]
fn same_families_types_labels_and_stable_values_as_node_exporter() {
    let dir = tempfile::tempdir().unwrap();
    let addr = peers::free_addr();
    let mut args = vec![
        format!("--web.listen-address={addr}"),
        "--collector.disable-defaults".to_string(),
    ];
    args.extend(COLLECTORS.iter().map(|c| format!("--collector.{c}")));
    let bin = PathBuf::from("/usr/bin/prometheus-node-exporter");
    assert!(
        bin.exists(),
        "prometheus-node-exporter is not installed (scripts/test installs it)"
    );
    let ne = peers::start("node_exporter", &bin, &args, dir, addr, "/metrics");

    let agent_dir = tempfile::tempdir().unwrap();
    let agent_addr = peers::free_addr();
    let agent = peers::start(
        "vigil-agent",
        &PathBuf::from(env!("CARGO_BIN_EXE_vigil-agent")),
        &[format!("--web.listen-address={agent_addr}")],
        agent_dir,
        agent_addr,
        "/-/healthy",
    );

    let (s1, theirs) = peers::get(&format!("{}/metrics", ne.url()));
    let (s2, ours) = peers::get(&format!("{}/metrics", agent.url()));
    assert_eq!((s1, s2), (200, 200));
    let (theirs, ours) = (families(&theirs), families(&ours));
    let (t, o) = (shape(&theirs), shape(&ours));

    // Every family of ours that node_exporter has: same type, same label
    // names. Every node_ family of ours exists there (no invented names).
    for (name, (ty, labels)) in &o {
        let (tty, tlabels) = t
            .get(name)
            .unwrap_or_else(|| panic!("{name}: node_exporter has no such family"));
        assert_eq!(ty, tty, "{name}: type");
        // Label name sets (the empty family of a missing device aside).
        if !labels.is_empty() && !tlabels.is_empty() {
            assert_eq!(labels, tlabels, "{name}: label names");
        }
    }
    // Every family node_exporter writes for these collectors, we write too.
    for name in t.keys() {
        if NOT_OURS.contains(&name.as_str()) || name.starts_with("node_scrape_collector") {
            continue;
        }
        assert!(
            o.contains_key(name),
            "{name}: node_exporter has it, we do not"
        );
    }
    // The scrape self-metrics for each collector, all succeeding here.
    for c in COLLECTORS {
        let key = vec![("collector".to_string(), c.to_string())];
        assert_eq!(
            values(&ours, "node_scrape_collector_success").get(&key),
            Some(&1.0),
            "{c}"
        );
        assert_eq!(
            values(&theirs, "node_scrape_collector_success").get(&key),
            Some(&1.0),
            "{c}"
        );
    }

    // Stable values: the set of CPUs and modes, MemTotal, uname, boot time,
    // file system sizes (and the set of file systems), the disk and network
    // devices.
    let keys = |f: &[MetricFamily], n: &str| values(f, n).into_keys().collect::<BTreeSet<_>>();
    for name in [
        "node_cpu_seconds_total",
        "node_cpu_guest_seconds_total",
        "node_filesystem_size_bytes",
        "node_disk_read_bytes_total",
        "node_network_receive_bytes_total",
        "node_time_clocksource_current_info",
    ] {
        assert_eq!(keys(&ours, name), keys(&theirs, name), "{name}: series");
    }
    for name in [
        "node_memory_MemTotal_bytes",
        "node_memory_SwapTotal_bytes",
        "node_uname_info",
        "node_boot_time_seconds",
        "node_filesystem_size_bytes",
        "node_filesystem_files",
        "node_filesystem_readonly",
        "node_memory_HugePages_Total",
    ] {
        assert_eq!(values(&ours, name), values(&theirs, name), "{name}: values");
    }
    // Clocks agree within a few seconds.
    let now = |f: &[MetricFamily]| values(f, "node_time_seconds").into_values().next().unwrap();
    assert!((now(&ours) - now(&theirs)).abs() < 10.0);
    // Counters move forward only: ours, read after theirs, is not below.
    let ctx = |f: &[MetricFamily]| {
        values(f, "node_context_switches_total")
            .into_values()
            .next()
            .unwrap()
    };
    assert!(ctx(&ours) >= ctx(&theirs));
}
