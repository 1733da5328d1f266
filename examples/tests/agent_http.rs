//! The vigil-agent binary over HTTP: `/metrics` in both formats by
//! negotiation (and accepted by promtool), `/stats/summary` in the kubelet
//! Summary shape over a kubepods fixture and over this machine,
//! `/-/healthy`, `--help` and bad flags.

mod peers;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use vigil_exposition::Format;
use vigil_exposition::parse::{Mode, parse_families};

const UID: &str = "6f1c2e7a-1b2c-4d5e-8f90-0123456789ab";

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_vigil-agent"))
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/agent")
}

fn agent(extra: &[String]) -> peers::Peer {
    let dir = tempfile::tempdir().unwrap();
    let addr = peers::free_addr();
    let mut args = vec![format!("--web.listen-address={addr}")];
    args.extend(extra.iter().cloned());
    peers::start("vigil-agent", &bin(), &args, dir, addr, "/-/healthy")
}

/// GET with an Accept header: status, Content-Type, body.
fn get_accept(url: &str, accept: &str) -> (u16, String, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut r = agent.get(url).header("Accept", accept).call().unwrap();
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (
        r.status().as_u16(),
        ct,
        r.body_mut().read_to_string().unwrap(),
    )
}

#[test]
fn metrics_negotiated_and_checked_by_promtool() {
    let a = agent(&[]);
    let url = format!("{}/metrics", a.url());
    let (status, ct, text) = get_accept(&url, "text/plain;version=0.0.4");
    assert_eq!(status, 200);
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    parse_families(text.as_bytes(), Format::Text, Mode::Strict).unwrap();
    let prom = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5";
    let (status, ct, om) = get_accept(&url, prom);
    assert_eq!(status, 200);
    assert!(
        ct.starts_with("application/openmetrics-text; version=1.0.0"),
        "{ct}"
    );
    assert!(om.ends_with("# EOF\n"));
    let fams = parse_families(om.as_bytes(), Format::OpenMetrics, Mode::Strict).unwrap();
    for name in [
        "node_cpu_seconds",
        "node_memory_MemTotal_bytes",
        "container_cpu_usage_seconds",
        "container_memory_working_set_bytes",
        "process_resident_memory_bytes",
    ] {
        assert!(
            fams.iter().any(|f| f.name == name),
            "{name} missing in OpenMetrics"
        );
    }

    // promtool check metrics: no parse error. Its only complaints are the
    // camelCase lint on node_memory_* names, which are node_exporter's own
    // names (its output gets the same lint).
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (scripts/test installs Debian's prometheus)");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let code = out.status.code();
    assert!(
        code == Some(0) || code == Some(3),
        "promtool exit {code:?}: {report}"
    );
    for line in report.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            line.starts_with("node_memory_")
                && line.ends_with("metric names should be written in 'snake_case' not 'camelCase'"),
            "unexpected promtool complaint: {line}"
        );
    }

    assert_eq!(peers::get(&format!("{}/-/healthy", a.url())).0, 200);
    assert_eq!(peers::get(&format!("{}/nope", a.url())).0, 404);
}

#[test]
fn summary_over_the_v2_kubepods_fixture() {
    let f = fixtures();
    let a = agent(&[
        format!("--cgroup.root={}", f.join("cgroup-v2-systemd").display()),
        format!("--path.podlogs={}", f.join("logs/pods").display()),
        format!(
            "--path.containerlogs={}",
            f.join("logs/containers").display()
        ),
    ]);
    let v = peers::get_json(&format!("{}/stats/summary", a.url()));
    let node = &v["node"];
    assert!(node["nodeName"].as_str().is_some_and(|n| !n.is_empty()));
    assert!(node["startTime"].as_str().unwrap().ends_with('Z'));
    // The fixture's root cgroup: usage_usec 9000000000.
    assert_eq!(node["cpu"]["usageCoreNanoSeconds"], 9_000_000_000_000u64);
    // The agent took a reading at start: a rate exists at once, and the
    // fixture does not move.
    assert_eq!(node["cpu"]["usageNanoCores"], 0);
    let mem = &node["memory"];
    let ws = mem["workingSetBytes"].as_u64().unwrap();
    let avail = mem["availableBytes"].as_u64().unwrap();
    assert!(ws > 0 && avail > 0 && mem["usageBytes"].as_u64().unwrap() >= ws);

    let pods = v["pods"].as_array().unwrap();
    assert_eq!(pods.len(), 2, "{v:#}");
    let web = pods
        .iter()
        .find(|p| p["podRef"]["uid"] == UID)
        .expect("the burstable pod");
    assert_eq!(web["podRef"]["name"], "web-7d4f9");
    assert_eq!(web["podRef"]["namespace"], "shop");
    assert_eq!(web["cpu"]["usageCoreNanoSeconds"], 250_000_000_000u64);
    assert_eq!(web["memory"]["workingSetBytes"], 157_286_400u64);
    assert_eq!(web["memory"]["rssBytes"], 104_857_600u64);
    let cs = web["containers"].as_array().unwrap();
    assert_eq!(cs.len(), 1);
    assert_eq!(cs[0]["name"], "nginx");
    assert_eq!(cs[0]["cpu"]["usageCoreNanoSeconds"], 240_000_000_000u64);
    assert_eq!(cs[0]["memory"]["workingSetBytes"], 150_000_000u64);
    assert_eq!(cs[0]["memory"]["usageBytes"], 200_000_000u64);
    // The best-effort pod: not named by any log directory; its CRI-O
    // container stands under its id, the conmon scope is not a container.
    let be = pods.iter().find(|p| p["podRef"]["uid"] != UID).unwrap();
    assert_eq!(be["podRef"]["name"], "");
    let bcs = be["containers"].as_array().unwrap();
    assert_eq!(bcs.len(), 1, "{be:#}");
    assert!(bcs[0]["name"].as_str().unwrap().starts_with("beef"));
}

#[test]
fn summary_of_this_machine() {
    let a = agent(&[]);
    let url = format!("{}/stats/summary", a.url());
    let v = peers::get_json(&url);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let w = peers::get_json(&url);
    let (c1, c2) = (
        v["node"]["cpu"]["usageCoreNanoSeconds"].as_u64().unwrap(),
        w["node"]["cpu"]["usageCoreNanoSeconds"].as_u64().unwrap(),
    );
    assert!(c2 >= c1);
    assert!(w["node"]["cpu"]["usageNanoCores"].as_u64().is_some());
    let text = std::fs::read_to_string("/proc/meminfo").unwrap();
    let total_kb: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|r| r.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    let avail = w["node"]["memory"]["availableBytes"].as_u64().unwrap();
    assert!(avail > 0 && avail <= total_kb * 1024);
    // Pods come from kubepods cgroups; on a machine without them the list
    // is empty, not absent.
    let pods = w["pods"].as_array().expect("pods is a list");
    let kubepods = ["kubepods", "kubepods.slice"].iter().any(|d| {
        Path::new("/sys/fs/cgroup/memory").join(d).exists()
            || Path::new("/sys/fs/cgroup").join(d).exists()
    });
    if !kubepods {
        assert!(pods.is_empty());
    }
}

#[test]
fn help_and_bad_flags() {
    let out = Command::new(bin()).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--web.listen-address",
        "--path.procfs",
        "--path.sysfs",
        "--path.rootfs",
        "--cgroup.root",
        "--path.podlogs",
        "--path.containerlogs",
        "--no-collector.container",
    ] {
        assert!(help.contains(flag), "{flag} not in --help");
    }
    let out = Command::new(bin()).arg("--path.nope=1").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown flag --path.nope"));
}

#[test]
fn missing_procfs_fails_collectors_not_the_scrape() {
    let a = agent(&[format!(
        "--path.procfs={}",
        fixtures().join("nowhere").display()
    )]);
    let (status, body) = peers::get(&format!("{}/metrics", a.url()));
    assert_eq!(status, 200);
    let fams = parse_families(body.as_bytes(), Format::Text, Mode::Strict).unwrap();
    let success = |c: &str| {
        fams.iter()
            .flat_map(|f| &f.samples)
            .find(|s| {
                s.name == "node_scrape_collector_success" && s.get_label("collector") == Some(c)
            })
            .map(|s| s.value)
    };
    for c in [
        "cpu",
        "meminfo",
        "loadavg",
        "diskstats",
        "netdev",
        "stat",
        "filesystem",
    ] {
        assert_eq!(success(c), Some(0.0), "{c}");
    }
    // Those that do not read procfs still work.
    assert_eq!(success("uname"), Some(1.0));
    assert_eq!(success("time"), Some(1.0));
    assert!(!fams.iter().any(|f| f.name == "node_memory_MemTotal_bytes"));
    // The summary needs /proc/stat: a clear 500, not a panic.
    let (status, body) = peers::get(&format!("{}/stats/summary", a.url()));
    assert_eq!(status, 500);
    assert!(body.contains("nowhere/stat"), "{body}");
}
