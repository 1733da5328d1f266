//! The demo app served in-process: endpoints and status codes, counters that
//! move with requests, the histogram and in-flight gauge, OpenMetrics
//! negotiation, `promtool check metrics` on both formats, the nginx
//! `combined` access log, and the self-load.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vigil_examples::demoapp::{AccessLog, DemoApp, DemoOptions};
use vigil_exposition::Format;
use vigil_exposition::parse::{Entry, Parser};

/// GET `path` with extra header lines: status, Content-Type and body.
fn get(addr: SocketAddr, path: &str, headers: &str) -> (u16, String, String) {
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let ct = head
        .lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case("content-type"))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_default();
    (status, ct, body.to_owned())
}

/// `name{sorted labels}` → value of every sample of a text 0.0.4 scrape.
fn samples(addr: SocketAddr) -> BTreeMap<String, f64> {
    let (status, _, body) = get(addr, "/metrics", "");
    assert_eq!(status, 200);
    let mut out = BTreeMap::new();
    for e in Parser::new(body.as_bytes(), Format::Text) {
        if let Entry::Sample(s) = e.unwrap() {
            let mut labels: Vec<String> = s
                .labels
                .iter()
                .map(|(n, v)| format!("{}={}", n.as_cow(), v.as_cow()))
                .collect();
            labels.sort();
            out.insert(
                format!("{}{{{}}}", s.name.as_cow(), labels.join(",")),
                s.value,
            );
        }
    }
    out
}

fn start(log: AccessLog, rps: f64) -> DemoApp {
    DemoApp::start(DemoOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        access_log: log,
        self_load_rps: rps,
    })
    .unwrap()
}

#[test]
fn endpoints_and_counters() {
    let app = start(AccessLog::Off, 0.0);
    let addr = app.addr();
    assert_eq!(get(addr, "/", "").0, 200);
    let (status, ct, body) = get(addr, "/api/items", "");
    assert_eq!((status, ct.as_str()), (200, "application/json"));
    assert!(body.contains("\"items\""), "{body}");
    assert_eq!(get(addr, "/api/error", "").0, 500);
    assert_eq!(get(addr, "/nope", "").0, 404);
    let t = Instant::now();
    assert_eq!(get(addr, "/api/slow", "").0, 200);
    assert!(
        t.elapsed() >= Duration::from_millis(50),
        "{:?}",
        t.elapsed()
    );

    let s = samples(addr);
    let key =
        |m: &str, p: &str, c: &str| format!("http_requests_total{{code={c},method={m},path={p}}}");
    assert_eq!(s[&key("GET", "/", "200")], 1.0);
    assert_eq!(s[&key("GET", "/api/items", "200")], 1.0);
    assert_eq!(s[&key("GET", "/api/error", "500")], 1.0);
    assert_eq!(s[&key("GET", "other", "404")], 1.0);
    assert_eq!(s[&key("GET", "/api/slow", "200")], 1.0);
    // The slow request's duration is in its histogram, within 50-500 ms
    // (plus scheduling).
    let slow_sum = s["http_request_duration_seconds_sum{method=GET,path=/api/slow}"];
    assert!((0.05..5.0).contains(&slow_sum), "{slow_sum}");
    assert_eq!(
        s["http_request_duration_seconds_count{method=GET,path=/api/slow}"],
        1.0
    );
    assert_eq!(
        s["http_request_duration_seconds_bucket{le=0.005,method=GET,path=/api/slow}"],
        0.0
    );
    assert_eq!(
        s["http_request_duration_seconds_bucket{le=+Inf,method=GET,path=/api/slow}"],
        1.0
    );
    // Prometheus's default buckets: 11 plus +Inf.
    let buckets = s
        .keys()
        .filter(|k| {
            k.starts_with("http_request_duration_seconds_bucket") && k.ends_with("path=/api/slow}")
        })
        .count();
    assert_eq!(buckets, 12);
    // The scrape itself is in flight while it is encoded.
    assert_eq!(s["http_requests_in_flight{}"], 1.0);
    assert!(s.contains_key("process_resident_memory_bytes{}"), "{s:?}");

    // Counters move with requests.
    for _ in 0..3 {
        get(addr, "/api/items", "");
    }
    assert_eq!(samples(addr)[&key("GET", "/api/items", "200")], 4.0);
    // A scrape is counted once it is encoded: this third one sees two.
    assert_eq!(samples(addr)[&key("GET", "/metrics", "200")], 2.0);
    app.stop();
}

#[test]
fn metrics_negotiate_and_pass_promtool() {
    let app = start(AccessLog::Off, 0.0);
    let addr = app.addr();
    get(addr, "/api/items", "");
    get(addr, "/api/error", "");
    let (_, ct, text) = get(addr, "/metrics", "");
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    let (_, ct, om) = get(
        addr,
        "/metrics",
        "Accept: application/openmetrics-text;version=1.0.0,text/plain;q=0.5\r\n",
    );
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    assert!(om.ends_with("# EOF\n"));
    vigil_exposition::parse::parse_families(
        om.as_bytes(),
        Format::OpenMetrics,
        vigil_exposition::parse::Mode::Strict,
    )
    .unwrap();
    // promtool reads text 0.0.4 (its OpenMetrics support is partial in 2.42).
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
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    app.stop();
}

#[test]
fn access_log_is_nginx_combined() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    let app = start(AccessLog::File(path.clone()), 0.0);
    let addr = app.addr();
    get(
        addr,
        "/api/items?page=2",
        "User-Agent: tester/1.0\r\nReferer: http://example.com/x\r\n",
    );
    get(addr, "/nope", "");
    get(addr, "/api/error", "User-Agent: say \"hi\"\r\n");
    app.stop();
    let log = std::fs::read_to_string(&path).unwrap();
    // nginx's combined format, field by field.
    let re = regex::Regex::new(
        r#"^(?P<remote>\S+) - (?P<user>\S+) \[(?P<time>\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\] "(?P<method>[A-Z]+) (?P<path>\S+) (?P<proto>HTTP/[0-9.]+)" (?P<code>\d{3}) (?P<size>\d+) "(?P<referer>[^"]*)" "(?P<agent>[^"]*)"$"#,
    )
    .unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 3, "{log}");
    let caps: Vec<regex::Captures<'_>> = lines
        .iter()
        .map(|l| {
            re.captures(l)
                .unwrap_or_else(|| panic!("not combined format: {l}"))
        })
        .collect();
    assert_eq!(&caps[0]["remote"], "127.0.0.1");
    assert_eq!(&caps[0]["user"], "-");
    assert_eq!(&caps[0]["path"], "/api/items?page=2");
    assert_eq!(&caps[0]["proto"], "HTTP/1.1");
    assert_eq!(&caps[0]["code"], "200");
    assert!(caps[0]["size"].parse::<usize>().unwrap() > 0);
    assert_eq!(&caps[0]["referer"], "http://example.com/x");
    assert_eq!(&caps[0]["agent"], "tester/1.0");
    assert!(caps[0]["time"].ends_with("+0000"));
    assert_eq!(
        (&caps[1]["code"], &caps[1]["referer"], &caps[1]["agent"]),
        ("404", "-", "-")
    );
    // Quotes inside a variable are escaped the way nginx does.
    assert_eq!(&caps[2]["agent"], "say \\x22hi\\x22");
}

#[test]
fn self_load_produces_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    let app = start(AccessLog::File(path.clone()), 50.0);
    let addr = app.addr();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = samples(addr);
        let by_path = |p: &str| -> f64 {
            s.iter()
                .filter(|(k, _)| {
                    k.starts_with("http_requests_total") && k.contains(&format!("path={p}}}"))
                })
                .map(|(_, v)| v)
                .sum()
        };
        if by_path("/api/items") >= 5.0 && by_path("/api/error") >= 1.0 && by_path("other") >= 1.0 {
            break;
        }
        assert!(Instant::now() < deadline, "self-load too slow: {s:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    app.stop();
    let log = std::fs::read_to_string(&path).unwrap();
    assert!(
        log.lines().any(|l| l.contains("vigil-demo-app-selfload/")),
        "{log}"
    );
}

#[test]
fn binary_help_and_bad_flags() {
    let bin = env!("CARGO_BIN_EXE_vigil-demo-app");
    let out = Command::new(bin).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in ["--web.listen-address", "--access-log", "--self-load"] {
        assert!(help.contains(flag), "{help}");
    }
    let out = Command::new(bin).arg("--self-load=fast").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--self-load"));
}
