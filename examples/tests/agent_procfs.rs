//! The /proc parsers on snapshots of this machine's files (in
//! `tests/agent/proc/`, with a few lines added: an old-kernel 11-counter
//! disk and its partition, a mount point with an escaped space, a read-only
//! mount), the host collectors over that snapshot, and property tests:
//! rendered tables parse back to what was rendered, and no input panics.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use vigil_examples::agent::procfs::{self, CpuTimes};
use vigil_examples::agent::{Agent, AgentError, AgentOptions};
use vigil_exposition::parse::{Mode, parse_families};
use vigil_exposition::{Format, MetricFamily};

fn proc_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/agent/proc")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(proc_dir().join(rel)).unwrap()
}

#[test]
fn stat_snapshot() {
    let st = procfs::parse_stat(&read("stat"), "stat").unwrap();
    assert_eq!(st.cpus.len(), 2);
    assert_eq!(st.cpus[0].0, 0);
    assert_eq!(st.cpus[0].1.user, 826_567);
    assert_eq!(st.btime, 1_795_335_111);
    assert!(st.ctxt > 0 && st.processes > 0 && st.intr > 0);
    let sum: u64 = st.cpus.iter().map(|(_, t)| t.user).sum();
    assert!(
        sum.abs_diff(st.total.user) < 100,
        "per-CPU user adds up to the total"
    );
}

#[test]
fn meminfo_snapshot() {
    let m = procfs::parse_meminfo(&read("meminfo"), "meminfo").unwrap();
    assert_eq!(
        procfs::mem_value(&m, "MemTotal_bytes"),
        Some(24_684_092.0 * 1024.0)
    );
    assert!(procfs::mem_value(&m, "Active_anon_bytes").is_some());
    assert!(procfs::mem_value(&m, "Inactive_file_bytes").is_some());
    // Counts, not sizes: no _bytes.
    assert!(procfs::mem_value(&m, "HugePages_Total").is_some());
    assert!(
        !m.iter()
            .any(|f| f.name.contains('(') || f.name.contains(')'))
    );
}

#[test]
fn loadavg_diskstats_netdev_mounts_snapshots() {
    let l = procfs::parse_loadavg(&read("loadavg"), "loadavg").unwrap();
    assert_eq!(l, [12.79, 12.45, 8.91]);
    let d = procfs::parse_diskstats(&read("diskstats"), "diskstats").unwrap();
    let kept: Vec<&str> = d
        .iter()
        .filter(|d| !procfs::disk_excluded(&d.device))
        .map(|d| d.device.as_str())
        .collect();
    assert_eq!(kept, ["vda", "zram0", "sda"]);
    let sda = d.iter().find(|d| d.device == "sda").unwrap();
    assert_eq!((sda.major, sda.minor, sda.fields.len()), (8, 0, 11));
    let n = procfs::parse_net_dev(&read("net/dev"), "net/dev").unwrap();
    let names: Vec<&str> = n.iter().map(|d| d.device.as_str()).collect();
    assert_eq!(names, ["lo", "ifb0", "ifb1", "eth0"]);
    assert_eq!(
        n[0].receive[0], n[0].transmit[0],
        "loopback sends what it receives"
    );
    let m = procfs::parse_mounts(&read("1/mounts"), "1/mounts").unwrap();
    let spaced = m.iter().find(|m| m.mountpoint == "/mnt/my disk").unwrap();
    assert!(spaced.readonly);
    assert!(
        m.iter()
            .find(|m| m.mountpoint == "/")
            .is_some_and(|m| !m.readonly)
    );
}

#[test]
fn malformed_lines_are_errors_with_file_and_line() {
    let e = procfs::parse_stat("cpu  1 2 3\nctxt x\nbtime 1\n", "/p/stat").unwrap_err();
    assert_eq!(
        e.to_string(),
        "/p/stat:2: ctxt: \"x\" is not an unsigned integer"
    );
    let e = procfs::parse_stat("cpu 1 2 3\n", "/p/stat").unwrap_err();
    assert_eq!(e.to_string(), "/p/stat: no btime line");
    let e = procfs::parse_meminfo("MemTotal: 1 kB\nBroken 2 kB\n", "mi").unwrap_err();
    assert!(matches!(e, AgentError::Parse { line: 2, .. }), "{e}");
    let e = procfs::parse_meminfo("MemTotal: 1 MB\n", "mi").unwrap_err();
    assert!(e.to_string().contains("unknown unit \"MB\""), "{e}");
    let e = procfs::parse_net_dev("h\nh\n eth0: 1 2 3\n", "nd").unwrap_err();
    assert_eq!(e.to_string(), "nd:3: eth0: 3 counters, expected 16");
    let e = procfs::parse_diskstats("8 0 sda 1 2\n", "ds").unwrap_err();
    assert!(e.to_string().starts_with("ds:1: sda: 2 counters"), "{e}");
    assert!(procfs::parse_loadavg("0.5 nan-ish", "la").is_err());
}

fn scrape(o: AgentOptions) -> Vec<MetricFamily> {
    let body = Agent::new(o).encode(Format::Text);
    parse_families(&body, Format::Text, Mode::Strict).unwrap()
}

fn value(fams: &[MetricFamily], name: &str, want: &[(&str, &str)]) -> Option<f64> {
    fams.iter()
        .flat_map(|f| &f.samples)
        .find(|s| s.name == name && want.iter().all(|(k, v)| s.get_label(k) == Some(*v)))
        .map(|s| s.value)
}

#[test]
fn host_collectors_over_the_snapshot() {
    let fams = scrape(AgentOptions {
        procfs: proc_dir(),
        containers: false,
        ..AgentOptions::default()
    });
    assert_eq!(
        value(&fams, "node_memory_MemTotal_bytes", &[]),
        Some(24_684_092.0 * 1024.0)
    );
    assert_eq!(
        value(
            &fams,
            "node_cpu_seconds_total",
            &[("cpu", "0"), ("mode", "user")]
        ),
        Some(8265.67)
    );
    assert_eq!(
        value(&fams, "node_boot_time_seconds", &[]),
        Some(1_795_335_111.0)
    );
    assert_eq!(value(&fams, "node_load15", &[]), Some(8.91));
    // Sectors are 512 bytes; milliseconds become seconds by multiplying by
    // 0.001, as node_exporter does (its 1049.3120000000001 has the same
    // rounding), not by dividing by 1000.
    assert_eq!(
        value(&fams, "node_disk_read_bytes_total", &[("device", "sda")]),
        Some(80.0 * 512.0)
    );
    assert_eq!(
        value(
            &fams,
            "node_disk_io_time_seconds_total",
            &[("device", "sda")]
        ),
        Some(9.0 * 0.001)
    );
    assert_eq!(
        value(&fams, "node_disk_read_bytes_total", &[("device", "sda1")]),
        None
    );
    assert_eq!(
        value(&fams, "node_disk_read_bytes_total", &[("device", "loop0")]),
        None
    );
    // An 11-counter disk has no discard series; a 17-counter one has.
    assert_eq!(
        value(
            &fams,
            "node_disk_discards_completed_total",
            &[("device", "sda")]
        ),
        None
    );
    assert!(
        value(
            &fams,
            "node_disk_discards_completed_total",
            &[("device", "vda")]
        )
        .is_some()
    );
    assert_eq!(
        value(
            &fams,
            "node_network_receive_bytes_total",
            &[("device", "lo")]
        ),
        None
    );
    assert!(
        value(
            &fams,
            "node_network_transmit_packets_total",
            &[("device", "eth0")]
        )
        .is_some()
    );
    // Mounts: / (read live through statvfs), /srv/data (absent here: a
    // device error), /mnt/... and the pseudo file systems excluded.
    let root = [("mountpoint", "/"), ("fstype", "ext4")];
    assert!(value(&fams, "node_filesystem_size_bytes", &root).unwrap() > 0.0);
    assert_eq!(
        value(&fams, "node_filesystem_device_error", &root),
        Some(0.0)
    );
    let srv = [
        ("mountpoint", "/srv/data"),
        ("device", "/dev/sdb1"),
        ("fstype", "xfs"),
    ];
    assert_eq!(
        value(&fams, "node_filesystem_device_error", &srv),
        Some(1.0)
    );
    assert_eq!(value(&fams, "node_filesystem_readonly", &srv), Some(1.0));
    assert_eq!(value(&fams, "node_filesystem_size_bytes", &srv), None);
    let mounts: Vec<&str> = fams
        .iter()
        .flat_map(|f| &f.samples)
        .filter(|s| s.name == "node_filesystem_readonly")
        .filter_map(|s| s.get_label("mountpoint"))
        .collect();
    assert_eq!(mounts, ["/", "/srv/data"]);
    assert!(!fams.iter().any(|f| f.name.starts_with("container_")));
}

fn cpu_line(name: &str, t: &CpuTimes) -> String {
    format!(
        "{name} {} {} {} {} {} {} {} {} {} {}\n",
        t.user,
        t.nice,
        t.system,
        t.idle,
        t.iowait,
        t.irq,
        t.softirq,
        t.steal,
        t.guest,
        t.guest_nice
    )
}

fn cpu_times() -> impl Strategy<Value = CpuTimes> {
    prop::array::uniform10(0u64..1 << 50).prop_map(|v| CpuTimes {
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
    })
}

proptest! {
    #[test]
    fn stat_round_trip(
        total in cpu_times(),
        cpus in prop::collection::vec(cpu_times(), 1..8),
        ctxt in any::<u64>(),
        btime in 0u64..1 << 40,
        procs in (any::<u64>(), 0u64..10_000, 0u64..10_000),
    ) {
        let mut text = cpu_line("cpu", &total);
        for (i, c) in cpus.iter().enumerate() {
            text.push_str(&cpu_line(&format!("cpu{i}"), c));
        }
        text.push_str(&format!(
            "intr 99 1 2 3\nctxt {ctxt}\nbtime {btime}\nprocesses {}\nprocs_running {}\nprocs_blocked {}\nsoftirq 1 2\n",
            procs.0, procs.1, procs.2
        ));
        let st = procfs::parse_stat(&text, "stat").unwrap();
        prop_assert_eq!(st.total, total);
        prop_assert_eq!(st.cpus.iter().map(|(_, t)| *t).collect::<Vec<_>>(), cpus);
        prop_assert_eq!((st.ctxt, st.btime, st.intr), (ctxt, btime, 99));
        prop_assert_eq!((st.processes, st.procs_running, st.procs_blocked), procs);
    }

    #[test]
    fn meminfo_round_trip(
        rows in prop::collection::vec(("[A-Z][A-Za-z0-9_]{0,12}(\\([a-z]{1,5}\\))?", 0u64..1 << 40, any::<bool>()), 0..40)
    ) {
        let text: String = rows
            .iter()
            .map(|(k, v, kb)| format!("{k}:{}{v}{}\n", " ".repeat(8), if *kb { " kB" } else { "" }))
            .collect();
        let m = procfs::parse_meminfo(&text, "meminfo").unwrap();
        prop_assert_eq!(m.len(), rows.len());
        for (f, (k, v, kb)) in m.iter().zip(&rows) {
            let base = k.replace('(', "_").replace(')', "");
            let name = if *kb { format!("{base}_bytes") } else { base };
            prop_assert_eq!(&f.name, &name);
            prop_assert_eq!(f.value, if *kb { *v as f64 * 1024.0 } else { *v as f64 });
        }
    }

    #[test]
    fn net_dev_and_diskstats_round_trip(
        ifs in prop::collection::vec(("[a-z][a-z0-9.-]{0,10}", prop::array::uniform16(any::<u64>())), 0..10),
        disks in prop::collection::vec((0u32..512, 0u32..256, "[a-z][a-z0-9]{0,8}", prop::collection::vec(any::<u64>(), 11..=17)), 0..10),
    ) {
        let mut text = String::from("Inter-|   Receive |  Transmit\n face |bytes packets|bytes packets\n");
        for (name, v) in &ifs {
            text.push_str(&format!("{name:>6}: {}\n", v.iter().map(u64::to_string).collect::<Vec<_>>().join(" ")));
        }
        let n = procfs::parse_net_dev(&text, "dev").unwrap();
        prop_assert_eq!(n.len(), ifs.len());
        for (d, (name, v)) in n.iter().zip(&ifs) {
            prop_assert_eq!(&d.device, name);
            prop_assert_eq!(&d.receive[..], &v[..8]);
            prop_assert_eq!(&d.transmit[..], &v[8..]);
        }
        let text: String = disks
            .iter()
            .map(|(ma, mi, name, f)| format!("{ma:4} {mi:7} {name} {}\n", f.iter().map(u64::to_string).collect::<Vec<_>>().join(" ")))
            .collect();
        let d = procfs::parse_diskstats(&text, "ds").unwrap();
        prop_assert_eq!(d.len(), disks.len());
        for (s, (ma, mi, name, f)) in d.iter().zip(&disks) {
            prop_assert_eq!((s.major, s.minor, &s.device, &s.fields), (*ma, *mi, name, f));
        }
    }

    #[test]
    fn octal_escapes_round_trip(s in "[ -~\t\n]{0,40}") {
        // The kernel escapes space, tab, newline and backslash.
        let mut esc = String::new();
        for c in s.chars() {
            match c {
                ' ' | '\t' | '\n' | '\\' => esc.push_str(&format!("\\{:03o}", c as u32)),
                c => esc.push(c),
            }
        }
        prop_assert_eq!(procfs::unescape_octal(&esc), s);
    }

    #[test]
    fn parsers_never_panic(s in "\\PC{0,200}", t in "[0-9a-z: ()\n\t.-]{0,300}") {
        for input in [&s, &t] {
            let _ = procfs::parse_stat(input, "x");
            let _ = procfs::parse_meminfo(input, "x");
            let _ = procfs::parse_loadavg(input, "x");
            let _ = procfs::parse_diskstats(input, "x");
            let _ = procfs::parse_net_dev(input, "x");
            let _ = procfs::parse_mounts(input, "x");
            let _ = procfs::unescape_octal(input);
            let _ = procfs::disk_excluded(input);
            let _ = procfs::mountpoint_excluded(input);
            let _ = vigil_examples::agent::cgroup::parse_kubepods(input);
            let _ = vigil_examples::agent::cgroup::parse_io_stat(input);
            let _ = vigil_examples::agent::cgroup::parse_blkio_v1(input, input);
        }
    }
}
