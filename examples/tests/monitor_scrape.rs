//! The scrape manager against small local HTTP servers: a good target,
//! refused, timeout (a body that drips), too big, malformed at a line,
//! sample and label limits, staleness (series that disappear, targets that
//! are removed, failed scrapes), honor_labels, honor_timestamps, gzip,
//! OpenMetrics negotiation, metric relabelling, file_sd changes, and that a
//! failing target does not hurt the others. Intervals are 100–300 ms.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use vigil_examples::monitor::config::Config;
use vigil_examples::monitor::scrape::{
    Health, ScrapeManager, TargetStatus, metadata_json, targets_json,
};
use vigil_exposition::STALE_NAN_BITS;
use vigil_exposition::client::Registry;
use vigil_tsdb::db::{Db, DbOptions};
use vigil_tsdb::index::Matcher;
use vigil_tsdb::labels::Labels;

/// What the test server saw of a request.
#[derive(Debug, Clone)]
struct Req {
    path: String,
    headers: Vec<(String, String)>,
}

impl Req {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

enum Reply {
    Ok {
        content_type: &'static str,
        body: Vec<u8>,
    },
    Status(u16),
    /// Headers, then one byte every `every`.
    Drip {
        every: Duration,
    },
}

struct Server {
    addr: String,
    requests: Arc<Mutex<Vec<Req>>>,
}

/// A server on 127.0.0.1 answering every request with `handler` (one
/// thread per connection; the threads end with the test process).
fn serve(handler: impl Fn(&Req) -> Reply + Send + Sync + 'static) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let handler = Arc::new(handler);
    let reqs = Arc::clone(&requests);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let handler = Arc::clone(&handler);
            let reqs = Arc::clone(&reqs);
            std::thread::spawn(move || {
                let _ = answer(stream, &*handler, &reqs);
            });
        }
    });
    Server { addr, requests }
}

fn answer(
    stream: TcpStream,
    handler: &dyn Fn(&Req) -> Reply,
    reqs: &Mutex<Vec<Req>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    let mut first = String::new();
    reader.read_line(&mut first)?;
    let path = first.split(' ').nth(1).unwrap_or("").to_owned();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        if let Some((n, v)) = line.split_once(':') {
            headers.push((n.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let req = Req { path, headers };
    reqs.lock().push(req.clone());
    let mut s = reader.into_inner();
    match handler(&req) {
        Reply::Ok { content_type, body } => {
            let gzip = req
                .header("accept-encoding")
                .is_some_and(|v| v.contains("gzip"))
                && content_type.contains("gzip-me");
            let content_type = content_type.replace(";gzip-me", "");
            let body = if gzip {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(&body)?;
                e.finish()?
            } else {
                body
            };
            write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{}Connection: close\r\n\r\n",
                body.len(),
                if gzip {
                    "Content-Encoding: gzip\r\n"
                } else {
                    ""
                }
            )?;
            s.write_all(&body)?;
        }
        Reply::Status(code) => {
            write!(
                s,
                "HTTP/1.1 {code} Oops\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )?;
        }
        Reply::Drip { every } => {
            write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n"
            )?;
            for _ in 0..1000 {
                s.write_all(b"#")?;
                s.flush()?;
                std::thread::sleep(every);
            }
        }
    }
    s.flush()
}

fn text(body: &str) -> Reply {
    Reply::Ok {
        content_type: "text/plain; version=0.0.4; charset=utf-8",
        body: body.as_bytes().to_vec(),
    }
}

/// A store in a fresh temporary directory.
fn store() -> (tempfile::TempDir, Arc<Db>) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), DbOptions::default()).unwrap();
    (dir, Arc::new(db))
}

fn config(yaml: &str) -> Config {
    Config::parse(yaml, Path::new("/tmp/prometheus.yml")).unwrap()
}

fn job(name: &str, targets: &[&str], extra: &str) -> String {
    let t: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
    format!(
        "  - job_name: {name}\n    scrape_interval: 200ms\n    scrape_timeout: 150ms\n{extra}    static_configs:\n      - targets: [{}]\n",
        t.join(", ")
    )
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out waiting for {what}");
}

fn target<'a>(ts: &'a [TargetStatus], addr: &str) -> Option<&'a TargetStatus> {
    ts.iter()
        .find(|t| t.labels.iter().any(|(n, v)| n == "instance" && v == addr))
}

/// Waits for a completed scrape of `addr` whose health is `health`.
fn wait_health(m: &ScrapeManager, addr: &str, health: Health) -> TargetStatus {
    let mut found = None;
    wait_for(
        &format!("{addr} {health:?}"),
        Duration::from_secs(10),
        || {
            found = target(&m.active_targets(), addr)
                .filter(|t| t.health == health)
                .cloned();
            found.is_some()
        },
    );
    found.unwrap()
}

fn series(db: &Db, name: &str) -> Vec<(Labels, Vec<(i64, f64)>)> {
    db.select(&[Matcher::equal("__name__", name)], 0, i64::MAX)
        .unwrap()
}

fn is_stale(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

fn last_value(db: &Db, name: &str, instance: &str) -> Option<f64> {
    series(db, name)
        .into_iter()
        .find(|(l, _)| l.get("instance") == Some(instance))
        .and_then(|(_, s)| s.last().map(|x| x.1))
}

const GOOD: &str = "# HELP http_requests_total Requests.\n# TYPE http_requests_total counter\nhttp_requests_total{code=\"200\"} 10\nhttp_requests_total{code=\"500\"} 2\n# TYPE temp gauge\ntemp 21.5\n";

#[test]
fn good_target_is_up_with_target_labels_and_synthetic_series() {
    let srv = serve(|_| text(GOOD));
    let (_d, db) = store();
    let m = ScrapeManager::new(Arc::clone(&db), &Registry::new());
    m.apply_config(&config(&format!(
        "scrape_configs:\n{}",
        job("app", &[&srv.addr], "    params:\n      x: ['1 2']\n")
    )));
    let t = wait_health(&m, &srv.addr, Health::Up);
    assert_eq!(t.last_error, "");
    assert_eq!(t.scrape_url, format!("http://{}/metrics?x=1+2", srv.addr));
    assert_eq!(t.scrape_interval, Duration::from_millis(200));
    assert!(t.last_scrape.is_some());
    wait_for("scrape_samples_scraped", Duration::from_secs(5), || {
        last_value(&db, "scrape_samples_scraped", &srv.addr) == Some(3.0)
    });
    let reqs = srv.requests.lock().clone();
    let r = &reqs[0];
    assert_eq!(r.path, "/metrics?x=1+2");
    let accept = r.header("accept").unwrap();
    assert!(
        accept.starts_with("application/openmetrics-text;version=1.0.0"),
        "{accept}"
    );
    assert!(
        accept.contains("text/plain;version=0.0.4;q=0.3"),
        "{accept}"
    );
    assert!(r.header("accept-encoding").unwrap().contains("gzip"));
    assert_eq!(
        r.header("x-prometheus-scrape-timeout-seconds"),
        Some("0.15")
    );

    let http = series(&db, "http_requests_total");
    assert_eq!(http.len(), 2);
    for (l, samples) in &http {
        assert_eq!(l.get("job"), Some("app"));
        assert_eq!(l.get("instance"), Some(srv.addr.as_str()));
        assert!(!samples.is_empty());
    }
    assert_eq!(last_value(&db, "up", &srv.addr), Some(1.0));
    assert_eq!(
        last_value(&db, "scrape_samples_post_metric_relabeling", &srv.addr),
        Some(3.0)
    );
    assert!(last_value(&db, "scrape_duration_seconds", &srv.addr).unwrap() > 0.0);
    // Series are added by the first scrape only.
    let added = &series(&db, "scrape_series_added")[0].1;
    assert_eq!(added[0].1, 3.0);
    wait_for("a second scrape", Duration::from_secs(5), || {
        series(&db, "scrape_series_added")[0].1.len() >= 2
    });
    assert_eq!(series(&db, "scrape_series_added")[0].1[1].1, 0.0);

    let md = m.metadata();
    let counter = md
        .iter()
        .find(|x| x.metric == "http_requests_total")
        .unwrap();
    assert_eq!(
        (counter.metric_type.as_str(), counter.help.as_str()),
        ("counter", "Requests.")
    );
    let v = metadata_json(&md, None, None, None);
    assert_eq!(v["temp"][0]["type"], "gauge");

    let j = targets_json(&m.active_targets(), &m.dropped_targets(), None);
    let at = &j["activeTargets"][0];
    assert_eq!(at["health"], "up");
    assert_eq!(at["scrapePool"], "app");
    assert_eq!(at["labels"]["job"], "app");
    assert_eq!(at["discoveredLabels"]["__address__"], srv.addr.as_str());
    assert_eq!(at["discoveredLabels"]["__param_x"], "1 2");
    assert_eq!(at["scrapeInterval"], "200ms");
    assert_eq!(at["scrapeTimeout"], "150ms");
    assert!(at["lastScrape"].as_str().unwrap().ends_with('Z'));
    assert!(at["lastScrapeDuration"].as_f64().unwrap() > 0.0);
    m.stop();
}

#[test]
fn refused_target_is_down_and_does_not_hurt_others() {
    let good = serve(|_| text(GOOD));
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let (_d, db) = store();
    let m = ScrapeManager::new(Arc::clone(&db), &Registry::new());
    m.apply_config(&config(&format!(
        "scrape_configs:\n{}",
        job("mixed", &[&dead, &good.addr], "")
    )));
    let t = wait_health(&m, &dead, Health::Down);
    assert!(!t.last_error.is_empty());
    wait_health(&m, &good.addr, Health::Up);
    wait_for("up 0 stored", Duration::from_secs(5), || {
        last_value(&db, "up", &dead) == Some(0.0)
    });
    assert_eq!(last_value(&db, "up", &good.addr), Some(1.0));
    assert_eq!(last_value(&db, "scrape_samples_scraped", &dead), Some(0.0));
    m.stop();
}

#[test]
fn dripping_body_fails_at_the_timeout() {
    let srv = serve(|_| Reply::Drip {
        every: Duration::from_millis(1000),
    });
    let (_d, db) = store();
    let m = ScrapeManager::new(Arc::clone(&db), &Registry::new());
    m.apply_config(&config(&format!(
        "scrape_configs:\n{}",
        job("drip", &[&srv.addr], "")
    )));
    let t = wait_health(&m, &srv.addr, Health::Down);
    assert!(t.last_error.contains("timed out"), "{}", t.last_error);
    // The whole request is bounded, not each read.
    assert!(
        t.last_scrape_duration < Duration::from_millis(800),
        "{:?}",
        t.last_scrape_duration
    );
    assert_eq!(last_value(&db, "up", &srv.addr), Some(0.0));
    m.stop();
}

#[test]
fn too_big_body_is_refused() {
    let srv = serve(|_| {
        let mut b = String::new();
        for i in 0..1000 {
            b.push_str(&format!("m{{i=\"{i}\"}} {i}\n"));
        }
        text(&b)
    });
    let (_d, db) = store();
    let registry = Registry::new();
    let m = ScrapeManager::new(Arc::clone(&db), &registry);
    m.apply_config(&config(&format!(
        "scrape_configs:\n{}",
        job("big", &[&srv.addr], "    body_size_limit: 1KB\n")
    )));
    let t = wait_health(&m, &srv.addr, Health::Down);
    assert_eq!(t.last_error, "body size limit exceeded");
    assert!(series(&db, "m").is_empty());
    let mut out = Vec::new();
    registry.encode(vigil_exposition::Format::Text, &mut out);
    let out = String::from_utf8(out).unwrap();
    let line = out
        .lines()
        .find(|l| l.starts_with("prometheus_target_scrapes_exceeded_body_size_limit_total "))
        .unwrap();
    assert_ne!(line.split(' ').nth(1), Some("0"), "{line}");
    m.stop();
}

#[test]
fn malformed_body_names_the_line_and_stores_nothing() {
    let srv = serve(|_| text("a 1\nb 2\nc{oops 3\nd 4\n"));
    let (_d, db) = store();
    let m = ScrapeManager::new(Arc::clone(&db), &Registry::new());
    m.apply_config(&config(&format!(
        "scrape_configs:\n{}",
        job("bad", &[&srv.addr], "")
    )));
    let t = wait_health(&m, &srv.addr, Health::Down);
    assert!(
        t.last_error.starts_with("line 3, column"),
        "{}",
        t.last_error
    );
    assert!(series(&db, "a").is_empty(), "a failed scrape is not stored");
    m.stop();
}

#[test]
fn non_200_status_is_an_error() {
    let srv = serve(|_| Reply::Status(503));
    let (_d, db) = store();
    let m = ScrapeManager::new(Arc::clone(&db), &Registry::new());
    m.apply_config(&config(&format!(
        "scrape_configs:\n{}",
        job("s", &[&srv.addr], "")
    )));
    let t = wait_health(&m, &srv.addr, Health::Down);
    assert!(t.last_error.contains("HTTP status 503"), "{}", t.last_error);
    m.stop();
}

#[test]
fn sample_and_label_limits_reject_the_whole_scrape() {
    let srv = serve(|_| text("a 1\nb 2\nc 3\nd{x=\"1\",y=\"2\",z=\"3\"} 4\n"));
    let (_d, db) = store();
    let m = ScrapeManager::new(Arc::clone(&db), &Registry::new());
    let yaml = format!(
        "scrape_configs:\n{}",
        job("lim", &[&srv.addr], "    sample_limit: 3\n")
    );
    m.apply_config(&config(&yaml));
    let t = wait_health(&m, &srv.addr, Health::Down);
    assert_eq!(t.last_error, "sample limit exceeded");
    assert!(series(&db, "a").is_empty());
    assert_eq!(last_value(&db, "up", &srv.addr), Some(0.0));

    let yaml = yaml.replace("sample_limit: 3", "label_limit: 4");
    m.apply_config(&config(&yaml));
    wait_for("label limit error", Duration::from_secs(5), || {
        target(&m.active_targets(), &srv.addr).is_some_and(|t| {
            t.last_error
                .starts_with("label_limit exceeded (metric: d, number of labels: 6, limit: 4)")
        })
    });
    assert!(series(&db, "a").is_empty());

    // Within the limits, everything is stored.
    let yaml = yaml.replace("label_limit: 4", "label_limit: 6\n    sample_limit: 4");
    m.apply_config(&config(&yaml));
    wait_health(&m, &srv.addr, Health::Up);
    wait_for("samples stored", Duration::from_secs(5), || {
        series(&db, "d").len() == 1
    });
    m.stop();
}

#[test]
fn series_that_disappear_get_a_staleness_marker() {
    let body = Arc::new(Mutex::new("a 1\nb 2\n".to_string()));
    let b2 = Arc::clone(&body);
    let srv = serve(move |_| text(&b2.lock()));
    let (_d, db) = store();
    let m = ScrapeManager::new(Arc::clone(&db), &Registry::new());
    m.apply_config(&config(&format!(
        "scrape_configs:\n{}",
        job("st", &[&srv.addr], "")
    )));
    wait_for("b stored", Duration::from_secs(5), || {
        series(&db, "b").len() == 1
    });
    *body.lock() = "a 1\n".into();
    wait_for("b stale", Duration::from_secs(5), || {
        series(&db, "b")[0].1.last().is_some_and(|s| is_stale(s.1))
    });
    // a keeps going, with no marker.
    let a = &series(&db, "a")[0].1;
    assert!(a.iter().all(|s| s.1 == 1.0));
    // It comes back as a normal series.
    *body.lock() = "a 1\nb 5\n".into();
    wait_for("b back", Duration::from_secs(5), || {
        series(&db, "b")[0].1.last().is_some_and(|s| s.1 == 5.0)
    });
    m.stop();
}

#[test]
fn a_failed_scrape_marks_the_last_series_stale() {
    let fail = Arc::new(Mutex::new(false));
    let f2 = Arc::clone(&fail);
    let srv = serve(move |_| {
        if *f2.lock() {
            Reply::Status(500)
        } else {
            text("a 1\n")
        }
    });
    let (_d, db) = store();
    let m = ScrapeManager::new(Arc::clone(&db), &Registry::new());
    m.apply_config(&config(&format!(
        "scrape_configs:\n{}",
        job("f", &[&srv.addr], "")
    )));
    wait_for("a stored", Duration::from_secs(5), || {
        series(&db, "a").len() == 1
    });
    *fail.lock() = true;
    wait_for("a stale", Duration::from_secs(5), || {
        series(&db, "a")[0].1.last().is_some_and(|s| is_stale(s.1))
    });
    // One marker only, however many scrapes fail.
    wait_health(&m, &srv.addr, Health::Down);
    std::thread::sleep(Duration::from_millis(500));
    let stale = series(&db, "a")[0]
        .1
        .iter()
        .filter(|s| is_stale(s.1))
        .count();
    assert_eq!(stale, 1);
    m.stop();
}

#[test]
fn removed_target_marks_all_its_series_stale_and_unchanged_ones_keep_running() {
    let a = serve(|_| text("x 1\ny 2\n"));
    let b = serve(|_| text("x 3\n"));
    let (_d, db) = store();
    let m = ScrapeManager::new(Arc::clone(&db), &Registry::new());
    m.apply_config(&config(&format!(
        "scrape_configs:\n{}{}",
        job("one", &[&a.addr], ""),
        job("two", &[&b.addr], "")
    )));
    wait_health(&m, &a.addr, Health::Up);
    wait_health(&m, &b.addr, Health::Up);
    let b_requests = b.requests.lock().len();
    // Job "one" goes away; job "two" is unchanged.
    m.apply_config(&config(&format!(
        "scrape_configs:\n{}",
        job("two", &[&b.addr], "")
    )));
    wait_for("a's series stale", Duration::from_secs(5), || {
        ["x", "y", "up"].iter().all(|name| {
            series(&db, name)
                .iter()
                .filter(|(l, _)| l.get("instance") == Some(a.addr.as_str()))
                .all(|(_, s)| s.last().is_some_and(|v| is_stale(v.1)))
        })
    });
    assert!(target(&m.active_targets(), &a.addr).is_none());
    wait_for("b keeps being scraped", Duration::from_secs(5), || {
        b.requests.lock().len() > b_requests + 1
    });
    let bx = series(&db, "x")
        .into_iter()
        .find(|(l, _)| l.get("instance") == Some(b.addr.as_str()))
        .unwrap();
    assert!(bx.1.iter().all(|s| !is_stale(s.1)));
    m.stop();
}

#[test]
fn a_changed_job_hands_its_series_over_without_staleness() {
    let a = serve(|_| text("x 1\n"));
    let (_d, db) = store();
    let m = ScrapeManager::new(Arc::clone(&db), &Registry::new());
    m.apply_config(&config(&format!(
        "scrape_configs:\n{}",
        job("one", &[&a.addr], "")
    )));
    wait_for("x stored", Duration::from_secs(5), || {
        series(&db, "x").len() == 1
    });
    m.apply_config(&config(&format!(
        "scrape_configs:\n{}",
        job("one", &[&a.addr], "    sample_limit: 100\n")
    )));
    let n = series(&db, "x")[0].1.len();
    wait_for("more scrapes", Duration::from_secs(5), || {
        series(&db, "x")[0].1.len() > n + 1
    });
    assert!(series(&db, "x")[0].1.iter().all(|s| !is_stale(s.1)));
    m.stop();
}

#[test]
fn honor_labels_and_exported_prefix() {
    let srv = serve(|_| text("m{job=\"pushed\",instance=\"elsewhere\",exported_job=\"x\"} 1\n"));
    let (_d, db) = store();
    let m = ScrapeManager::new(Arc::clone(&db), &Registry::new());
    m.apply_config(&config(&format!(
        "scrape_configs:\n{}{}",
        job("plain", &[&srv.addr], ""),
        // The same target in a second job, with honor_labels.
        job("honor", &[&srv.addr], "    honor_labels: true\n")
    )));
    wait_for("both stored", Duration::from_secs(5), || {
        series(&db, "m").len() == 2
    });
    let all = series(&db, "m");
    let plain = all
        .iter()
        .find(|(l, _)| l.get("job") == Some("plain"))
        .unwrap();
    assert_eq!(plain.0.get("instance"), Some(srv.addr.as_str()));
    assert_eq!(plain.0.get("exported_instance"), Some("elsewhere"));
    // The exposed `exported_job` stays; the clashing `job` goes one
    // prefix further (Prometheus's resolveConflictingExposedLabels).
    assert_eq!(plain.0.get("exported_job"), Some("x"));
    assert_eq!(plain.0.get("exported_exported_job"), Some("pushed"));
    let honored = all
        .iter()
        .find(|(l, _)| l.get("job") == Some("pushed"))
        .unwrap();
    assert_eq!(honored.0.get("instance"), Some("elsewhere"));
    m.stop();
}

#[test]
fn honor_timestamps_uses_the_exposed_time_or_not() {
    let t = 1_700_000_000_000i64;
    let srv = serve(move |_| text(&format!("ts_metric 1 {t}\n")));
    let (_d, db) = store();
    let m = ScrapeManager::new(Arc::clone(&db), &Registry::new());
    m.apply_config(&config(&format!(
        "scrape_configs:\n{}{}",
        job("yes", &[&srv.addr], ""),
        job("no", &[&srv.addr], "    honor_timestamps: false\n")
    )));
    wait_for("both stored", Duration::from_secs(5), || {
        series(&db, "ts_metric").len() == 2
    });
    for (l, s) in series(&db, "ts_metric") {
        if l.get("job") == Some("yes") {
            assert_eq!(s[0].0, t);
        } else {
            assert!(s[0].0 > t + 1000);
        }
    }
    m.stop();
}

#[test]
fn gzip_bodies_are_decoded() {
    let srv = serve(|_| Reply::Ok {
        content_type: "text/plain; version=0.0.4;gzip-me",
        body: GOOD.as_bytes().to_vec(),
    });
    let (_d, db) = store();
    let m = ScrapeManager::new(Arc::clone(&db), &Registry::new());
    m.apply_config(&config(&format!(
        "scrape_configs:\n{}",
        job("gz", &[&srv.addr], "")
    )));
    wait_health(&m, &srv.addr, Health::Up);
    wait_for("stored", Duration::from_secs(5), || {
        series(&db, "temp").len() == 1
    });
    m.stop();
}

#[test]
fn openmetrics_is_negotiated_and_text_is_the_fallback() {
    let srv = serve(|req| {
        let format = vigil_exposition::Format::negotiate(req.header("accept"));
        match format {
            vigil_exposition::Format::OpenMetrics => Reply::Ok {
                content_type: "application/openmetrics-text; version=1.0.0; charset=utf-8",
                body: b"# TYPE req_seconds counter\n# UNIT req_seconds seconds\n# HELP req_seconds Time.\nreq_seconds_total 2.5 # {trace_id=\"a\"} 1.0\nreq_seconds_created 1700000000.0\n# EOF\n".to_vec(),
            },
            vigil_exposition::Format::Text => text("only_text 1\n"),
        }
    });
    // A server that always answers text, with an OpenMetrics-only line
    // that text parsing would refuse if it were taken as OpenMetrics.
    let plain = serve(|_| Reply::Ok {
        content_type: "text/plain",
        body: b"plain_metric 1\n".to_vec(),
    });
    let (_d, db) = store();
    let m = ScrapeManager::new(Arc::clone(&db), &Registry::new());
    m.apply_config(&config(&format!(
        "scrape_configs:\n{}",
        job("om", &[&srv.addr, &plain.addr], "")
    )));
    wait_health(&m, &srv.addr, Health::Up);
    wait_health(&m, &plain.addr, Health::Up);
    wait_for("stored", Duration::from_secs(5), || {
        series(&db, "req_seconds_total").len() == 1 && series(&db, "plain_metric").len() == 1
    });
    assert!(series(&db, "only_text").is_empty());
    let md = m.metadata();
    let r = md.iter().find(|x| x.metric == "req_seconds").unwrap();
    assert_eq!(
        (r.metric_type.as_str(), r.unit.as_str(), r.help.as_str()),
        ("counter", "seconds", "Time.")
    );
    m.stop();
}

#[test]
fn metric_relabelling_applies_per_sample_and_target_relabelling_drops_targets() {
    let srv = serve(|_| text("keep_me 1\ndrop_me 2\ngo_gc 3\n"));
    let (_d, db) = store();
    let m = ScrapeManager::new(Arc::clone(&db), &Registry::new());
    let extra = "    metric_relabel_configs:\n      - source_labels: [__name__]\n        regex: '(drop_me|go_.*)'\n        action: drop\n      - target_label: added\n        replacement: yes\n    relabel_configs:\n      - source_labels: [__address__]\n        regex: 'nowhere:1'\n        action: drop\n";
    m.apply_config(&config(&format!(
        "scrape_configs:\n{}",
        job("mr", &[&srv.addr, "nowhere:1"], extra)
    )));
    wait_health(&m, &srv.addr, Health::Up);
    wait_for("stored", Duration::from_secs(5), || {
        series(&db, "keep_me").len() == 1
    });
    assert!(series(&db, "drop_me").is_empty() && series(&db, "go_gc").is_empty());
    assert_eq!(series(&db, "keep_me")[0].0.get("added"), Some("yes"));
    assert_eq!(
        last_value(&db, "scrape_samples_scraped", &srv.addr),
        Some(3.0)
    );
    assert_eq!(
        last_value(&db, "scrape_samples_post_metric_relabeling", &srv.addr),
        Some(1.0)
    );
    let dropped = m.dropped_targets();
    assert_eq!(dropped.len(), 1);
    let j = targets_json(&m.active_targets(), &dropped, Some("dropped"));
    assert_eq!(j["activeTargets"].as_array().unwrap().len(), 0);
    assert_eq!(
        j["droppedTargets"][0]["discoveredLabels"]["__address__"],
        "nowhere:1"
    );
    assert_eq!(j["droppedTargetCounts"]["mr"], 1);
    m.stop();
}

#[test]
fn file_sd_changes_are_picked_up_and_bad_files_keep_the_last_targets() {
    let a = serve(|_| text("from_a 1\n"));
    let b = serve(|_| text("from_b 1\n"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("targets.json");
    std::fs::write(
        &file,
        format!(
            "[{{\"targets\": [\"{}\"], \"labels\": {{\"team\": \"x\"}}}}]",
            a.addr
        ),
    )
    .unwrap();
    let cfg_path = dir.path().join("prometheus.yml");
    let yaml = "scrape_configs:\n  - job_name: files\n    scrape_interval: 200ms\n    scrape_timeout: 150ms\n    file_sd_configs:\n      - files: ['*.json', 'more/*.yml']\n        refresh_interval: 10m\n";
    std::fs::write(&cfg_path, yaml).unwrap();
    let cfg = Config::load(&cfg_path).unwrap();
    let (_d, db) = store();
    let m = ScrapeManager::new(Arc::clone(&db), &Registry::new());
    m.apply_config(&cfg);
    let t = wait_health(&m, &a.addr, Health::Up);
    assert!(t.labels.contains(&("team".into(), "x".into())));
    assert!(
        t.discovered_labels
            .contains(&("__meta_filepath".into(), file.display().to_string()))
    );
    // A rewrite moves the job to b.
    std::fs::write(&file, format!("[{{\"targets\": [\"{}\"]}}]", b.addr)).unwrap();
    wait_health(&m, &b.addr, Health::Up);
    wait_for("a gone", Duration::from_secs(5), || {
        target(&m.active_targets(), &a.addr).is_none()
    });
    // A broken file keeps the last good targets and says why.
    std::fs::write(&file, "[{\"targets\": [").unwrap();
    wait_for("error reported", Duration::from_secs(5), || {
        !m.discovery_errors().is_empty()
    });
    assert!(m.discovery_errors()[0].contains("targets.json"));
    assert!(target(&m.active_targets(), &b.addr).is_some());
    // A new YAML file in a second glob adds targets.
    std::fs::create_dir(dir.path().join("more")).unwrap();
    std::fs::write(
        dir.path().join("more/a.yml"),
        format!("- targets: ['{}']\n", a.addr),
    )
    .unwrap();
    wait_health(&m, &a.addr, Health::Up);
    m.stop();
}

#[test]
fn stop_joins_every_loop_and_marks_series_stale() {
    let srv = serve(|_| text("s 1\n"));
    let (_d, db) = store();
    let m = ScrapeManager::new(Arc::clone(&db), &Registry::new());
    m.apply_config(&config(&format!(
        "scrape_configs:\n{}",
        job("j", &[&srv.addr], "")
    )));
    wait_for("stored", Duration::from_secs(5), || {
        series(&db, "s").len() == 1
    });
    m.stop();
    let s = &series(&db, "s")[0].1;
    assert!(is_stale(s.last().unwrap().1));
    let n = srv.requests.lock().len();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(srv.requests.lock().len(), n, "no scrape after stop");
}

#[test]
fn own_metrics_have_prometheus_names() {
    let srv = serve(|_| text("a 1\n"));
    let (_d, db) = store();
    let registry = Registry::new();
    let m = ScrapeManager::new(Arc::clone(&db), &registry);
    m.apply_config(&config(&format!(
        "scrape_configs:\n{}",
        job("j", &[&srv.addr, "x:1"], "")
    )));
    wait_health(&m, &srv.addr, Health::Up);
    let mut out = Vec::new();
    registry.encode(vigil_exposition::Format::Text, &mut out);
    let out = String::from_utf8(out).unwrap();
    assert!(
        out.contains("prometheus_target_scrape_pool_targets{scrape_job=\"j\"} 2"),
        "{out}"
    );
    assert!(
        out.contains("prometheus_sd_discovered_targets{name=\"scrape\",config=\"j\"} 2"),
        "{out}"
    );
    assert!(
        out.contains("prometheus_target_scrapes_exceeded_sample_limit_total 0"),
        "{out}"
    );
    m.stop();
}

#[test]
fn reordered_series_are_not_stale_and_duplicate_lines_keep_the_first() {
    let n = Arc::new(Mutex::new(0u32));
    let n2 = Arc::clone(&n);
    // Every other scrape lists the series in another order and adds a
    // series; every scrape repeats `a` with another value.
    let srv = serve(move |_| {
        let mut k = n2.lock();
        *k += 1;
        if *k % 2 == 0 {
            text("c 3\nnew_one 9\nb 2\na 1\na 100\n")
        } else {
            text("a 1\nb 2\nc 3\na 100\n")
        }
    });
    let (_d, db) = store();
    let registry = Registry::new();
    let m = ScrapeManager::new(Arc::clone(&db), &registry);
    m.apply_config(&config(&format!(
        "scrape_configs:\n{}",
        job("o", &[&srv.addr], "")
    )));
    wait_for("six scrapes", Duration::from_secs(10), || *n.lock() >= 6);
    wait_for("stored", Duration::from_secs(5), || {
        series(&db, "a").first().is_some_and(|s| s.1.len() >= 5)
    });
    for name in ["a", "b", "c"] {
        let s = &series(&db, name)[0].1;
        assert!(s.iter().all(|x| !is_stale(x.1)), "{name}: {s:?}");
    }
    assert!(series(&db, "a")[0].1.iter().all(|x| x.1 == 1.0));
    // The series that comes and goes is marked stale each time it goes.
    let new_one = &series(&db, "new_one")[0].1;
    assert!(new_one.iter().any(|x| is_stale(x.1)), "{new_one:?}");
    assert_eq!(
        last_value(&db, "scrape_samples_scraped", &srv.addr).map(|v| v >= 4.0),
        Some(true)
    );
    let mut out = Vec::new();
    registry.encode(vigil_exposition::Format::Text, &mut out);
    let out = String::from_utf8(out).unwrap();
    let line = out
        .lines()
        .find(|l| l.starts_with("prometheus_target_scrapes_sample_duplicate_timestamp_total "))
        .unwrap();
    assert_ne!(line.split(' ').nth(1), Some("0"), "{line}");
    m.stop();
}

#[test]
fn host_names_are_resolved_and_scraped_repeatedly() {
    let srv = serve(|_| text("named 1\n"));
    let port = srv.addr.rsplit_once(':').unwrap().1;
    let named = format!("localhost:{port}");
    let (_d, db) = store();
    let m = ScrapeManager::new(Arc::clone(&db), &Registry::new());
    m.apply_config(&config(&format!(
        "scrape_configs:\n{}",
        job("dns", &[&named], "")
    )));
    wait_for("three scrapes", Duration::from_secs(10), || {
        series(&db, "named").first().is_some_and(|s| s.1.len() >= 3)
    });
    let t = wait_health(&m, &named, Health::Up);
    assert_eq!(t.scrape_url, format!("http://{named}/metrics"));
    m.stop();
}
