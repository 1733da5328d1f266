//! vigil-stack end to end: started on free ports in a temporary directory,
//! every target comes up, the demo app's requests show in PromQL, the alert
//! on its 5xx rate fires, so does the one on the 5xx rate its access log
//! shows (counted by the sidecar), the sidecar ships its access log parsed into
//! fields, SIGTERM stops it cleanly, and a restart keeps the data.

mod peers;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use peers::{enc, free_addr, get_json, wait_for};

struct Running {
    child: Child,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &std::path::Path, ports: &[String; 5]) -> Running {
    let child = Command::new(env!("CARGO_BIN_EXE_vigil-stack"))
        .current_dir(dir)
        .args([
            format!("--monitor.listen-address={}", ports[0]),
            format!("--agent.listen-address={}", ports[1]),
            format!("--pushgateway.listen-address={}", ports[2]),
            format!("--demo.listen-address={}", ports[3]),
            format!("--sidecar.listen-address={}", ports[4]),
            "--scrape-interval=500ms".into(),
            "--demo.self-load=20".into(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Running { child }
}

fn value(base: &str, q: &str) -> Option<f64> {
    let v = get_json(&format!("{base}/api/v1/query?query={}", enc(q)));
    v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

#[test]
fn the_stack_runs_alerts_ships_logs_and_keeps_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let ports = [
        free_addr(),
        free_addr(),
        free_addr(),
        free_addr(),
        free_addr(),
    ];
    let base = format!("http://{}", ports[0]);
    let mut s = start(dir.path(), &ports);
    wait_for("the monitor", Duration::from_secs(30), || {
        peers::get(&format!("{base}/-/ready")).0 == 200
    });
    wait_for("every target up", Duration::from_secs(30), || {
        value(&base, "count(up == 1)") == Some(5.0)
    });
    for job in [
        "vigil-monitor",
        "vigil-agent",
        "pushgateway",
        "demo-app",
        "vigil-sidecar",
    ] {
        assert_eq!(
            value(&base, &format!("up{{job=\"{job}\"}}")),
            Some(1.0),
            "{job}"
        );
    }
    wait_for("the demo app's requests", Duration::from_secs(30), || {
        value(&base, "sum(http_requests_total{job=\"demo-app\"})").is_some_and(|n| n > 10.0)
    });
    // Host metrics from the agent, through the recording rule the seed's
    // alert reads.
    wait_for("metricsCPU recorded", Duration::from_secs(30), || {
        value(&base, "metricsCPU").is_some()
    });
    wait_for("DemoAppErrors firing", Duration::from_secs(60), || {
        get_json(&format!("{base}/api/v1/alerts"))["data"]["alerts"]
            .as_array()
            .is_some_and(|a| {
                a.iter()
                    .any(|x| x["labels"]["alertname"] == "DemoAppErrors" && x["state"] == "firing")
            })
    });
    // From the logs: access-log lines → the sidecar's log_to_metrics
    // filter → its /metrics → scrape → PromQL → the DemoAppLogErrors alert.
    wait_for(
        "the access log's 5xx count",
        Duration::from_secs(30),
        || {
            value(
                &base,
                "sum(demo_access_log_requests_total{job=\"vigil-sidecar\",code=\"500\"})",
            )
            .is_some_and(|n| n > 0.0)
        },
    );
    wait_for("DemoAppLogErrors firing", Duration::from_secs(60), || {
        get_json(&format!("{base}/api/v1/alerts"))["data"]["alerts"]
            .as_array()
            .is_some_and(|a| {
                a.iter().any(|x| {
                    x["labels"]["alertname"] == "DemoAppLogErrors" && x["state"] == "firing"
                })
            })
    });
    assert!(
        value(
            &base,
            "sum(demo_access_log_response_size_bytes_count{job=\"vigil-sidecar\"})"
        )
        .is_some_and(|n| n > 0.0)
    );
    // The sidecar's output: access-log lines parsed into fields.
    let shipped = dir.path().join("vigil-data/logs/shipped/access.jsonl");
    wait_for("shipped log lines", Duration::from_secs(30), || {
        std::fs::read_to_string(&shipped).is_ok_and(|t| t.lines().count() > 10)
    });
    let text = std::fs::read_to_string(&shipped).unwrap();
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    for field in ["remote", "method", "path", "code", "size", "agent"] {
        assert!(first.get(field).is_some(), "{field} missing in {first}");
    }
    assert!(text.lines().any(|l| l.contains("\"code\":\"500\"")));
    // The sidecar's own metrics reached the monitor.
    wait_for("the sidecar's counters", Duration::from_secs(30), || {
        value(&base, "sum(fluentbit_output_proc_records_total)").is_some_and(|n| n > 0.0)
    });

    // SIGTERM: a clean stop.
    let before = value(&base, "count_over_time(up{job=\"demo-app\"}[10m])").unwrap();
    let ok = Command::new("kill")
        .args(["-TERM", &s.child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let status = s.child.wait().unwrap();
    assert!(status.success(), "{status}");
    drop(s);

    // A restart keeps what was stored.
    let _s = start(dir.path(), &ports);
    wait_for("the monitor again", Duration::from_secs(30), || {
        peers::get(&format!("{base}/-/ready")).0 == 200
    });
    let after = value(&base, "count_over_time(up{job=\"demo-app\"}[10m])").unwrap();
    assert!(
        after >= before,
        "{after} samples after the restart, {before} before"
    );
}

#[test]
fn every_binary_has_a_complete_help() {
    for (bin, words) in [
        (
            env!("CARGO_BIN_EXE_vigil-stack"),
            &[
                "--data-dir",
                "--monitor.listen-address",
                "--scrape-interval",
            ][..],
        ),
        (
            env!("CARGO_BIN_EXE_vigil-monitor"),
            &[
                "--config.file",
                "--storage.tsdb.path",
                "--web.listen-address",
            ][..],
        ),
        (
            env!("CARGO_BIN_EXE_vigil-agent"),
            &["--web.listen-address"][..],
        ),
        (
            env!("CARGO_BIN_EXE_vigil-pushgateway"),
            &["--web.listen-address", "--persistence.file"][..],
        ),
        (
            env!("CARGO_BIN_EXE_vigil-demo-app"),
            &["--web.listen-address", "--access-log"][..],
        ),
        (env!("CARGO_BIN_EXE_vigil-sidecar"), &["-c"][..]),
    ] {
        let out = Command::new(bin).arg("--help").output().unwrap();
        assert!(out.status.success(), "{bin} --help");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("usage"), "{bin}: {text}");
        for w in words {
            assert!(text.contains(w), "{bin} --help lacks {w}: {text}");
        }
    }
}
