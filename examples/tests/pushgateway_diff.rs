//! Differential test: one scripted sequence of pushes to Debian's real
//! Pushgateway 1.5 and to vigil-pushgateway, each started on 127.0.0.1 with
//! a temporary directory. After every step both must have answered the
//! same status code and expose the same series (names, labels and values;
//! for `push_time_seconds`/`push_failure_time_seconds` only whether the
//! value is zero), leaving out each gateway's own `go_*`, `process_*` and
//! `pushgateway_*` metrics. `scripts/test` installs prometheus-pushgateway.

mod pushgateway_util;

use std::collections::BTreeMap;

use pushgateway_util::{Gateway, request};

/// `(method, path, content type, body)`.
type Step = (&'static str, &'static str, &'static str, &'static [u8]);

const OM: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const TEXT: &str = "text/plain; version=0.0.4";

const STEPS: &[Step] = &[
    ("PUT", "/metrics/job/j1", TEXT, b"foo 1\n"),
    (
        "POST",
        "/metrics/job/j1/instance/i1",
        TEXT,
        b"# TYPE bar counter\n# HELP bar A bar.\nbar{a=\"1\"} 2\nbar{a=\"2\"} 3\n",
    ),
    // Pushed timestamps are refused (and the failure is recorded).
    ("PUT", "/metrics/job/j2", TEXT, b"ts 1 1000\n"),
    // Another group's bar is a counter.
    ("PUT", "/metrics/job/j3", TEXT, b"# TYPE bar gauge\nbar 3\n"),
    // Only HELP differs: accepted.
    (
        "PUT",
        "/metrics/job/j4",
        TEXT,
        b"# TYPE bar counter\n# HELP bar other.\nbar 3\n",
    ),
    // Parse errors: refused, nothing recorded.
    ("PUT", "/metrics/job/j5", TEXT, b"bad{ 3\n"),
    ("PUT", "/metrics/job/j5", TEXT, b"g{a=\"1\",a=\"2\"} 1\n"),
    ("PUT", "/metrics/job/j5", TEXT, b"g{a=\"\xff\"} 1\n"),
    (
        "PUT",
        "/metrics/job/j5",
        TEXT,
        b"# TYPE g gauge\n# TYPE g gauge\ng 1\n",
    ),
    (
        "PUT",
        "/metrics/job/j5",
        TEXT,
        b"# TYPE h histogram\nh_bucket{le=\"x\"} 1\n",
    ),
    // A bucket or quantile line without its label records nothing.
    (
        "PUT",
        "/metrics/job/j6",
        TEXT,
        b"# TYPE h histogram\nh_bucket 1\n",
    ),
    (
        "PUT",
        "/metrics/job/j7",
        TEXT,
        b"# TYPE s summary\ns 1\ns_count 4\n",
    ),
    // base64 job and label values, URL-safe alphabet, padding optional.
    (
        "PUT",
        "/metrics/job@base64/Zm9vL2Jhcg/path@base64/L3Zhcg",
        TEXT,
        b"x 1\n",
    ),
    ("PUT", "/metrics/job/b64/k@base64/Pz8-", TEXT, b"y 1\n"),
    ("PUT", "/metrics/job/b64/k@base64/YQ==", TEXT, b"y 2\n"),
    ("PUT", "/metrics/job/b64/k@base64/=", TEXT, b"y 3\n"),
    ("PUT", "/metrics/job/b64/k@base64/!!", TEXT, b"y 4\n"),
    ("PUT", "/metrics/job@base64/=", TEXT, b"y 5\n"),
    // Path shapes.
    ("PUT", "/metrics/job/", TEXT, b"x 1\n"),
    ("PUT", "/metrics/job", TEXT, b"x 1\n"),
    ("PUT", "/metrics/job/a/b", TEXT, b"x 1\n"),
    ("PUT", "/metrics/job/a/1b/c", TEXT, b"x 1\n"),
    ("PUT", "/metrics/job/a/__k/c", TEXT, b"x 1\n"),
    ("PUT", "/metrics/job/a/k/v/", TEXT, b"x 1\n"),
    ("PUT", "/metrics/job/a/job/c", TEXT, b"x 2\n"),
    ("PUT", "/metrics/job/t/", TEXT, b"x 3\n"),
    ("PUT", "/metrics/job/t/k/", TEXT, b"x 4\n"),
    ("PUT", "/metrics/job/p%2Fq/k/v%20w", TEXT, b"x 5\n"),
    ("PUT", "/metrics/job/a//b", TEXT, b"x 1\n"),
    ("GET", "/metrics/job/a", TEXT, b""),
    // Grouping labels win over pushed ones; instance is kept when not in
    // the grouping key.
    (
        "PUT",
        "/metrics/job/lb/k/pathk",
        TEXT,
        b"z{job=\"other\",instance=\"x\",k=\"bodyk\"} 1\n",
    ),
    // Histograms and summaries.
    (
        "PUT",
        "/metrics/job/hist",
        TEXT,
        b"# TYPE h histogram\n# HELP h H.\nh_bucket{le=\"0.5\"} 1\nh_bucket{le=\"+Inf\"} 2\n\
          h_sum 3\nh_count 2\n# TYPE s summary\ns{quantile=\"0.5\"} 1\ns_sum 3\ns_count 2\n",
    ),
    // Collides with the histogram h of another group.
    ("PUT", "/metrics/job/coll", TEXT, b"h_count 1\n"),
    // The same series twice.
    (
        "PUT",
        "/metrics/job/dupl",
        TEXT,
        b"# TYPE q gauge\nq 1\nq 2\n",
    ),
    // The same series from two groups.
    ("PUT", "/metrics/job/d/instance/x", TEXT, b"m 1\n"),
    ("PUT", "/metrics/job/d", TEXT, b"m{instance=\"x\"} 2\n"),
    // Untyped against gauge.
    ("POST", "/metrics/job/g1", TEXT, b"# TYPE g gauge\ng 1\n"),
    ("POST", "/metrics/job/g2", TEXT, b"g 1\n"),
    // POST replaces same-name families only; PUT the whole group.
    (
        "POST",
        "/metrics/job/j1/instance/i1",
        TEXT,
        b"# TYPE bar counter\nbar{a=\"1\"} 5\n",
    ),
    ("POST", "/metrics/job/j1/instance/i1", TEXT, b"other 7\n"),
    ("PUT", "/metrics/job/j1/instance/i1", TEXT, b"only 1\n"),
    ("PUT", "/metrics/job/empty", TEXT, b""),
    ("POST", "/metrics/job/empty2", TEXT, b""),
    // The gateway's own timestamps cannot be pushed over.
    (
        "PUT",
        "/metrics/job/pts",
        TEXT,
        b"# TYPE push_time_seconds counter\npush_time_seconds 1\n",
    ),
    // OpenMetrics bodies.
    (
        "PUT",
        "/metrics/job/om",
        OM,
        b"# TYPE om counter\n# HELP om OM.\nom_total 1\n# EOF\n",
    ),
    // Text details: escapes, empty label values, comments and blank lines,
    // special values, colons and underscores in names, CRLF.
    (
        "PUT",
        "/metrics/job/text",
        TEXT,
        b"# a comment\n\nesc{v=\"q\\\"b\\\\s\\nn\"} 1\nempty{e=\"\"} 2\nspecial{k=\"nan\"} NaN\n\
          special{k=\"inf\"} +Inf\nspecial{k=\"ninf\"} -Inf\nspecial{k=\"exp\"} 1.5e3\n\
          rec:rule:sum 4\n_under{_l=\"1\"} 5\n# HELP only_help Help without samples.\n",
    ),
    ("PUT", "/metrics/job/crlf", TEXT, b"crlf 1\r\n"),
    ("PUT", "/metrics/job/trail", TEXT, b"trail{a=\"1\",} 1\n"),
    ("PUT", "/metrics/job/notrail", TEXT, b"notrail 1"),
    // Suffixed names without a TYPE are plain families of their own.
    ("PUT", "/metrics/job/sfx", TEXT, b"lone_bucket{le=\"1\"} 1\nlone_count 1\nlone_sum 2\n"),
    // POST replaces a histogram family as a whole.
    (
        "POST",
        "/metrics/job/hist",
        TEXT,
        b"# TYPE h histogram\nh_bucket{le=\"1\"} 4\nh_bucket{le=\"+Inf\"} 5\nh_sum 6\nh_count 5\n",
    ),
    // A histogram without its +Inf bucket gets one from its count.
    ("PUT", "/metrics/job/noinf", TEXT, b"# TYPE hi histogram\nhi_bucket{le=\"1\"} 1\nhi_sum 1\nhi_count 3\n"),
    // More OpenMetrics: gauges, info, stateset, unit, timestamps, no EOF.
    (
        "PUT",
        "/metrics/job/om2",
        OM,
        b"# TYPE omg gauge\n# UNIT omg seconds\nomg_seconds 1\n# TYPE build info\nbuild_info{v=\"1\"} 1\n\
          # TYPE st stateset\nst{st=\"a\"} 1\nst{st=\"b\"} 0\n# EOF\n",
    ),
    ("PUT", "/metrics/job/om3", OM, b"# TYPE omt gauge\nomt 1 100\n# EOF\n"),
    ("PUT", "/metrics/job/om4", OM, b"# TYPE ome gauge\nome 1\n"),
    // Deleting.
    ("DELETE", "/metrics/job/j1", TEXT, b""),
    ("DELETE", "/metrics/job/nonexistent", TEXT, b""),
    ("DELETE", "/metrics/job/b64/k@base64/Pz8-", TEXT, b""),
    ("DELETE", "/metrics/job/j3", TEXT, b""),
    (
        "PUT",
        "/metrics/job/j3",
        TEXT,
        b"# TYPE bar counter\nbar 9\n",
    ),
    // Lifecycle API off: 403 for PUT/POST, 405 for other methods.
    ("POST", "/-/quit", TEXT, b""),
    ("GET", "/-/quit", TEXT, b""),
    ("PUT", "/api/v1/admin/wipe", TEXT, b""),
    ("PUT", "/metrics/job/after", TEXT, b"after_wipe 1\n"),
];

/// The series a gateway exposes: `name{labels}` to the value as compared.
fn series(gw: &Gateway) -> BTreeMap<String, String> {
    let (status, body) = request(&gw.addr, "GET", "/metrics", "", b"");
    assert_eq!(status, 200, "{}: GET /metrics", gw.name);
    let mut out = BTreeMap::new();
    let parser =
        vigil_exposition::parse::Parser::new(body.as_bytes(), vigil_exposition::Format::Text);
    for entry in parser {
        let entry = entry.unwrap_or_else(|e| panic!("{}: /metrics does not parse: {e}", gw.name));
        let vigil_exposition::parse::Entry::Sample(s) = entry else {
            continue;
        };
        let name = s.name.as_cow().into_owned();
        if ["go_", "process_", "pushgateway_"]
            .iter()
            .any(|p| name.starts_with(p))
        {
            continue;
        }
        let mut labels: Vec<String> = s
            .labels
            .iter()
            .map(|(n, v)| format!("{}={:?}", n.as_cow(), v.as_cow()))
            .collect();
        labels.sort();
        let value = if name == "push_time_seconds" || name == "push_failure_time_seconds" {
            if s.value == 0.0 { "zero" } else { "set" }.to_owned()
        } else {
            s.value.to_string()
        };
        out.insert(format!("{name}{{{}}}", labels.join(",")), value);
    }
    out
}

#[test]
fn same_status_codes_and_series_as_pushgateway_1_5() {
    let real = Gateway::real(&["--web.enable-admin-api"]);
    let ours = Gateway::ours(&["--web.enable-admin-api"]);
    let mut differences = Vec::new();
    for (i, (method, path, ct, body)) in STEPS.iter().enumerate() {
        let (a, a_body) = request(&real.addr, method, path, ct, body);
        let (b, b_body) = request(&ours.addr, method, path, ct, body);
        if a != b {
            differences.push(format!(
                "step {i} {method} {path}: status {a} (real: {}) vs {b} (ours: {})",
                a_body.trim(),
                b_body.trim()
            ));
        }
        let (sa, sb) = (series(&real), series(&ours));
        if sa != sb {
            let only_real: Vec<_> = sa.iter().filter(|(k, v)| sb.get(*k) != Some(v)).collect();
            let only_ours: Vec<_> = sb.iter().filter(|(k, v)| sa.get(*k) != Some(v)).collect();
            differences.push(format!(
                "step {i} {method} {path}: series differ\n  real only: {only_real:?}\n  ours only: {only_ours:?}"
            ));
        }
        assert!(differences.len() < 10, "{}", differences.join("\n"));
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
    // The sequence exercises what it means to: refusals of both kinds and
    // groups that only hold a failure time.
    let s = series(&ours);
    assert_eq!(
        s.get("after_wipe{instance=\"\",job=\"after\"}")
            .map(String::as_str),
        Some("1")
    );
    assert_eq!(s.len(), 3, "{s:?}");
}
