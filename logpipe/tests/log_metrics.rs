//! log_to_metrics in a running pipeline: nginx access-log lines parsed by
//! the built-in parser become a counter by status code, a histogram of
//! response sizes and a gauge; two inputs feed one metric; the records go
//! on to the output unchanged; the pipeline's registry exposes it all.

mod common;

use common::{Running, dir, p, wait_until};
use std::time::Duration;

fn access_log(n: usize) -> String {
    let mut s = String::new();
    for i in 0..n {
        let (code, size) = if i % 10 == 0 {
            (500, 0)
        } else {
            (200, 100 * (i % 7) + 1)
        };
        s.push_str(&format!(
            "10.0.0.{} - - [22/Nov/2026:06:00:{:02} +0000] \"GET /api/items?i={i} HTTP/1.1\" {code} {size} \"-\" \"vigil-selfload\"\n",
            i % 250,
            i % 60
        ));
    }
    s
}

const FILTERS: &str = "\
[FILTER]
    Name               log_to_metrics
    Match              demo.*
    Tag                demo.metrics
    Metric_Mode        counter
    Metric_Namespace   demo
    Metric_Subsystem   access_log
    Metric_Name        requests_total
    Metric_Description Requests in the access log by status code.
    Label_Field        code
[FILTER]
    Name               log_to_metrics
    Match              demo.*
    Tag                demo.metrics
    Metric_Mode        histogram
    Metric_Namespace   demo
    Metric_Subsystem   access_log
    Metric_Name        response_size_bytes
    Metric_Description Response sizes in the access log.
    Value_Field        size
    Regex              code ^2
    Bucket             100
    Bucket             500
[FILTER]
    Name               log_to_metrics
    Match              demo.*
    Tag                demo.metrics
    Metric_Mode        gauge
    Metric_Namespace   demo
    Metric_Subsystem   access_log
    Metric_Name        last_response_size_bytes
    Metric_Description The size of the last response logged.
    Value_Field        size
";

#[test]
fn access_log_lines_become_metrics() {
    let d = dir();
    let root = d.path();
    std::fs::write(root.join("a.log"), access_log(100)).unwrap();
    std::fs::write(root.join("b.log"), access_log(50)).unwrap();
    let mut conf = String::from("[SERVICE]\n    Flush 0.1\n");
    for f in ["a.log", "b.log"] {
        conf.push_str(&format!(
            "[INPUT]\n    Name exec\n    Tag demo.{f}\n    Command cat {}\n    Parser nginx\n    Oneshot On\n    Tee Off\n",
            p(&root.join(f))
        ));
    }
    conf.push_str(FILTERS);
    conf.push_str(&format!(
        "[OUTPUT]\n    Name file\n    Match demo.*\n    Path {}\n    File out.jsonl\n    Format plain\n",
        p(root)
    ));
    let running = Running::start(&conf, root);
    let store = running.metrics.log_metrics.clone();
    let requests = store.get("demo_access_log_requests").unwrap();
    let out = root.join("out.jsonl");
    assert!(wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(&out).is_ok_and(|t| t.lines().count() == 150)
    }));
    #[cfg(feature = "metrics")]
    let text = {
        let reg = vigil_exposition::client::Registry::new();
        running.metrics.register(&reg);
        let mut out = Vec::new();
        reg.encode(vigil_exposition::Format::Text, &mut out);
        String::from_utf8(out).unwrap()
    };
    running.stop();

    // One metric for both inputs (each input thread builds its own filter).
    assert_eq!(store.metrics().len(), 3);
    assert_eq!(requests.value(&["500"]), Some(15.0));
    assert_eq!(requests.value(&["200"]), Some(135.0));
    let sizes = store.get("demo_access_log_response_size_bytes").unwrap();
    let h = sizes.histogram(&[]).unwrap();
    assert_eq!(h.count, 135);
    // Sizes 1, 101, ..., 601 by i % 7; 500s excluded by the Regex.
    let want_sum: usize = (0..100)
        .chain(0..50)
        .filter(|i| i % 10 != 0)
        .map(|i| 100 * (i % 7) + 1)
        .sum();
    assert_eq!(h.sum, want_sum as f64);
    let le100 = (0..100)
        .chain(0..50)
        .filter(|i| i % 10 != 0 && i % 7 == 0)
        .count() as u64;
    assert_eq!(h.buckets[0], (100.0, le100));
    assert_eq!(h.buckets[2], (f64::INFINITY, 135));
    assert!(
        store
            .get("demo_access_log_last_response_size_bytes")
            .unwrap()
            .value(&[])
            .is_some()
    );
    // The records themselves went on, parsed and unchanged.
    let first: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(&out)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(first["method"], "GET");

    #[cfg(feature = "metrics")]
    {
        assert!(
            text.contains("demo_access_log_requests_total{code=\"500\"} 15\n"),
            "{text}"
        );
        assert!(
            text.contains("demo_access_log_response_size_bytes_count 135\n"),
            "{text}"
        );
        vigil_exposition::parse::parse_families(
            text.as_bytes(),
            vigil_exposition::Format::Text,
            vigil_exposition::parse::Mode::Strict,
        )
        .unwrap();
        promtool_check_metrics(&text);
    }
}

/// Prometheus's own linter on the exposed text (names, suffixes, help,
/// histogram buckets).
#[cfg(feature = "metrics")]
fn promtool_check_metrics(text: &str) {
    use std::io::Write;
    use std::process::{Command, Stdio};
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
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_label_from_an_unbounded_field_is_capped() {
    let d = dir();
    let root = d.path();
    std::fs::write(root.join("a.log"), access_log(40)).unwrap();
    let conf = format!(
        "[SERVICE]\n    Flush 0.1\n\
         [INPUT]\n    Name exec\n    Tag demo.a\n    Command cat {}\n    Parser nginx\n    Oneshot On\n    Tee Off\n\
         [FILTER]\n    Name log_to_metrics\n    Match demo.*\n    Metric_Name by_path\n    Metric_Description Requests by path.\n    Label_Field path\n    Max_Label_Sets 10\n    Discard_Logs On\n\
         [OUTPUT]\n    Name file\n    Match demo.*\n    Path {}\n    File out.jsonl\n",
        p(&root.join("a.log")),
        p(root)
    );
    let running = Running::start(&conf, root);
    let m = running
        .metrics
        .log_metrics
        .get("log_metric_counter_by_path")
        .unwrap();
    assert!(wait_until(Duration::from_secs(10), || m.label_sets()
        + m.dropped_label_sets() as usize
        == 40));
    running.stop();
    assert_eq!(m.label_sets(), 10);
    assert_eq!(m.dropped_label_sets(), 30);
    // Discard_Logs: nothing reached the output.
    assert!(
        std::fs::read_to_string(root.join("out.jsonl"))
            .unwrap_or_default()
            .is_empty()
    );
}
