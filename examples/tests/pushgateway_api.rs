//! vigil-pushgateway as a process: persistence across a restart (SIGTERM
//! writes the file; the interval writes it without a stop), `promtool check
//! metrics` on its `/metrics`, the JSON of `/api/v1/metrics` in the real
//! one's shape, and the refusals that are ours alone (protobuf, body limit).

mod pushgateway_util;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pushgateway_util::{Gateway, request};

const DOCUMENTED: &[u8] = b"# HELP batch_records_total Records processed.\n\
# TYPE batch_records_total counter\nbatch_records_total 1234\n\
# HELP batch_duration_seconds How long the batch ran.\n# TYPE batch_duration_seconds histogram\n\
batch_duration_seconds_bucket{le=\"1\"} 0\nbatch_duration_seconds_bucket{le=\"10\"} 1\n\
batch_duration_seconds_bucket{le=\"+Inf\"} 1\nbatch_duration_seconds_sum 4.5\n\
batch_duration_seconds_count 1\n\
# HELP batch_last_success_timestamp_seconds When the batch last succeeded.\n\
# TYPE batch_last_success_timestamp_seconds gauge\nbatch_last_success_timestamp_seconds 1.7e+09\n";

fn metrics(gw: &Gateway) -> String {
    let (status, body) = request(&gw.addr, "GET", "/metrics", "", b"");
    assert_eq!(status, 200);
    body
}

/// The lines of `/metrics` that are not the process's own.
fn pushed_lines(gw: &Gateway) -> Vec<String> {
    metrics(gw)
        .lines()
        .filter(|l| !l.contains("process_") && !l.contains("pushgateway_"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn persistence_survives_a_restart() {
    let gw = Gateway::ours(&[]);
    let put = |gw: &Gateway, path: &str, body: &[u8]| {
        request(&gw.addr, "PUT", path, "text/plain", body).0
    };
    assert_eq!(
        put(&gw, "/metrics/job/batch/instance/host1", DOCUMENTED),
        200
    );
    assert_eq!(
        put(
            &gw,
            "/metrics/job@base64/L3Zhci9qb2I/shard@base64/=",
            b"x{a=\"q\\\"\\n\"} 1\n"
        ),
        200
    );
    // A refused push leaves a group with only its failure time.
    assert_eq!(put(&gw, "/metrics/job/late", b"x 1 1000\n"), 400);
    let before = pushed_lines(&gw);
    let api_before = request(&gw.addr, "GET", "/api/v1/metrics", "", b"").1;
    let dir = gw.terminate();
    assert!(dir.path().join("pg.data").exists());
    let gw = Gateway::ours_in(dir, &[]);
    assert_eq!(pushed_lines(&gw), before);
    assert_eq!(
        request(&gw.addr, "GET", "/api/v1/metrics", "", b"").1,
        api_before
    );
    assert!(
        before
            .iter()
            .any(|l| l.starts_with("batch_records_total{instance=\"host1\",job=\"batch\"} 1234"))
    );

    // A corrupt file is refused at start with its name, not silently emptied.
    let dir = gw.terminate();
    std::fs::write(
        dir.path().join("pg.data"),
        b"{\"format\":\"something else\"}",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vigil-pushgateway"))
        .arg(format!(
            "--persistence.file={}",
            dir.path().join("pg.data").display()
        ))
        .arg(format!(
            "--web.listen-address={}",
            pushgateway_util::free_addr()
        ))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("pg.data") && err.contains("corrupt"), "{err}");
}

#[test]
fn persistence_interval_writes_without_a_stop() {
    let gw = Gateway::ours(&["--persistence.interval=200ms"]);
    let file = gw.dir.path().join("pg.data");
    assert_eq!(
        request(&gw.addr, "PUT", "/metrics/job/j", "", b"a 1\n").0,
        200
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&file)
        .unwrap_or_default()
        .contains("a{instance=\\\"\\\",job=\\\"j\\\"} 1")
    {
        assert!(Instant::now() < deadline, "not written within 10 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    // No temporary file is left beside it.
    let names: Vec<String> = std::fs::read_dir(gw.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("pg.data"))
        .collect();
    assert_eq!(names, ["pg.data"]);
}

#[test]
fn promtool_checks_our_metrics() {
    let gw = Gateway::ours(&[]);
    assert_eq!(
        request(&gw.addr, "PUT", "/metrics/job/batch", "", DOCUMENTED).0,
        200
    );
    assert_eq!(
        request(
            &gw.addr,
            "PUT",
            "/metrics/job/batch/instance/b",
            "",
            DOCUMENTED
        )
        .0,
        200
    );
    let body = metrics(&gw);
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is not installed: scripts/test installs Debian's prometheus");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{body}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // HELP and TYPE once per family, the groups' series together under it.
    assert_eq!(
        body.matches("# TYPE batch_records_total counter").count(),
        1
    );
    assert_eq!(body.matches("# TYPE push_time_seconds gauge").count(), 1);
    assert!(body.contains(
        "pushgateway_http_requests_total{code=\"200\",handler=\"push\",method=\"put\"} 2"
    ));
}

#[test]
fn api_json_has_the_real_shape() {
    let real = Gateway::real(&[]);
    let ours = Gateway::ours(&[]);
    let shape = |gw: &Gateway| -> serde_json::Value {
        let path = "/metrics/job/batch/instance/h";
        assert_eq!(request(&gw.addr, "PUT", path, "", DOCUMENTED).0, 200);
        let (_, s) = request(
            &gw.addr,
            "PUT",
            "/metrics/job/sum",
            "",
            b"# TYPE s summary\ns{quantile=\"0.5\"} 1\ns_sum 3\ns_count 2\n",
        );
        assert_eq!(s, "");
        assert_eq!(
            request(&gw.addr, "PUT", "/metrics/job/bad", "", b"x 1 5\n").0,
            400
        );
        let (status, body) = request(&gw.addr, "GET", "/api/v1/metrics", "", b"");
        assert_eq!(status, 200);
        let mut v: serde_json::Value = serde_json::from_str(&body).unwrap();
        // Timestamps and values of the time gauges differ by nature.
        let groups = v["data"].as_array_mut().unwrap();
        groups.sort_by_key(|g| g["labels"]["job"].as_str().unwrap_or_default().to_owned());
        for g in groups.iter_mut() {
            for (name, fam) in g.as_object_mut().unwrap() {
                if let Some(f) = fam.as_object_mut() {
                    if f.contains_key("time_stamp") {
                        f.insert("time_stamp".into(), "T".into());
                    }
                    if name.starts_with("push_") {
                        for m in f["metrics"].as_array_mut().unwrap() {
                            let zero = m["value"] == "0";
                            m["value"] = if zero { "0" } else { "set" }.into();
                        }
                    }
                }
            }
        }
        v
    };
    assert_eq!(shape(&ours), shape(&real));
}

#[test]
fn refusals_of_our_own() {
    let gw = Gateway::ours(&["--push.max-body-bytes=100"]);
    let pb = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";
    let (status, body) = request(&gw.addr, "PUT", "/metrics/job/pb", pb, b"\x05abcde");
    assert_eq!(status, 415, "{body}");
    assert!(body.contains("protobuf"), "{body}");
    let big = "a 1\n".repeat(100);
    assert_eq!(
        request(&gw.addr, "PUT", "/metrics/job/big", "", big.as_bytes()).0,
        413
    );
    // The admin API is off by default, as in the real one.
    assert_eq!(
        request(&gw.addr, "PUT", "/api/v1/admin/wipe", "", b"").0,
        404
    );
    // Without the consistency check, pushes are accepted with 202.
    let lax = Gateway::ours(&["--push.disable-consistency-check"]);
    assert_eq!(
        request(&lax.addr, "PUT", "/metrics/job/a", "", b"x 1\n").0,
        202
    );
    // Health, readiness and status.
    assert_eq!(request(&gw.addr, "GET", "/-/healthy", "", b"").0, 200);
    assert_eq!(request(&gw.addr, "GET", "/-/ready", "", b"").0, 200);
    let (status, body) = request(&gw.addr, "GET", "/api/v1/status", "", b"");
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["data"]["flags"]["push.max-body-bytes"], "100");
}

#[test]
fn help_lists_every_flag() {
    let out = Command::new(env!("CARGO_BIN_EXE_vigil-pushgateway"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--web.listen-address",
        "--web.enable-admin-api",
        "--web.enable-lifecycle",
        "--persistence.file",
        "--persistence.interval",
        "--push.disable-consistency-check",
        "--push.max-body-bytes",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_vigil-pushgateway"))
        .arg("--web.listen-address=:9091")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn quit_stops_the_process_after_persisting() {
    let off = Gateway::ours(&[]);
    assert_eq!(request(&off.addr, "POST", "/-/quit", "", b"").0, 403);
    assert_eq!(request(&off.addr, "GET", "/-/quit", "", b"").0, 405);
    let mut gw = Gateway::ours(&["--web.enable-lifecycle"]);
    assert_eq!(
        request(&gw.addr, "PUT", "/metrics/job/q", "", b"q 1\n").0,
        200
    );
    assert_eq!(request(&gw.addr, "PUT", "/-/quit", "", b"").0, 200);
    let status = gw.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "{status}");
    let data = std::fs::read_to_string(gw.dir.path().join("pg.data")).unwrap();
    assert!(data.contains("q{instance="), "{data}");
}
