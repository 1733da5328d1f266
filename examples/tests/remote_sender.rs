//! The remote write sender against a receiver in the test (tiny_http):
//! protocol headers, external labels and write relabelling, retries of 5xx
//! and 429, dropping (and counting) other 4xx, and resuming after a restart
//! without losing what the WAL held, checkpoints included.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use vigil_examples::monitor::relabel::{Action, RelabelConfig};
use vigil_examples::monitor::remote::{RemoteWriteConfig, RemoteWriter, proto};
use vigil_exposition::Format;
use vigil_exposition::client::Registry;
use vigil_tsdb::db::{Db, DbOptions};
use vigil_tsdb::head::HeadOptions;
use vigil_tsdb::labels::Labels;

/// Series name → (timestamp → value) as received, and every request's
/// headers.
#[derive(Default)]
struct Got {
    samples: BTreeMap<String, BTreeMap<i64, f64>>,
    total: usize,
    headers: Vec<Vec<(String, String)>>,
}

struct Receiver {
    url: String,
    got: Arc<Mutex<Got>>,
    /// The status to answer (204 stores the request).
    status: Arc<AtomicU16>,
    requests: Arc<AtomicUsize>,
    server: Arc<tiny_http::Server>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

fn receiver() -> Receiver {
    let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
    let url = format!(
        "http://{}/api/v1/write",
        server.server_addr().to_ip().unwrap()
    );
    let got = Arc::new(Mutex::new(Got::default()));
    let status = Arc::new(AtomicU16::new(204));
    let requests = Arc::new(AtomicUsize::new(0));
    let (s, g, st, rq) = (
        server.clone(),
        got.clone(),
        status.clone(),
        requests.clone(),
    );
    std::thread::spawn(move || {
        for mut req in s.incoming_requests() {
            let mut body = Vec::new();
            let _ = req.as_reader().read_to_end(&mut body);
            rq.fetch_add(1, Ordering::SeqCst);
            let code = st.load(Ordering::SeqCst);
            if code == 204 {
                let w = proto::decode(&body, 64 << 20).unwrap();
                let mut g = g.lock();
                g.headers.push(
                    req.headers()
                        .iter()
                        .map(|h| (h.field.to_string(), h.value.to_string()))
                        .collect(),
                );
                for ts in w.timeseries {
                    let name: Vec<String> = ts
                        .labels
                        .iter()
                        .map(|l| format!("{}={}", l.name, l.value))
                        .collect();
                    let e = g.samples.entry(name.join(",")).or_default();
                    for s in &ts.samples {
                        e.insert(s.timestamp, s.value);
                    }
                    g.total += ts.samples.len();
                }
            }
            let _ = req.respond(tiny_http::Response::empty(code));
        }
    });
    Receiver {
        url,
        got,
        status,
        requests,
        server,
    }
}

fn open(dir: &std::path::Path) -> Arc<Db> {
    let opts = DbOptions {
        head: HeadOptions {
            wal: vigil_wal::Options::default().segment_size(16 << 10),
            ..HeadOptions::default()
        },
        ..DbOptions::default()
    };
    Arc::new(Db::open(dir, opts).unwrap())
}

fn cfg(url: &str) -> RemoteWriteConfig {
    let mut c = RemoteWriteConfig::new(url);
    c.name = "test".into();
    c.queue_config.batch_send_deadline = Duration::from_millis(50);
    c.queue_config.min_backoff = Duration::from_millis(10);
    c.queue_config.max_backoff = Duration::from_millis(100);
    c.queue_config.max_samples_per_send = 100;
    c
}

/// `rounds` commits of `series` series each, at 1 s steps from `t0`; the
/// value of series `s` at `t` is `t + s`.
fn append(db: &Db, t0: i64, rounds: i64, series: usize) {
    for r in 0..rounds {
        let mut app = db.head().appender();
        for s in 0..series {
            let l = Labels::new([("__name__", "m"), ("s", &format!("{s:03}"))]).unwrap();
            app.append(&l, t0 + r * 1000, (t0 + r * 1000 + s as i64) as f64)
                .unwrap();
        }
        app.commit().unwrap();
    }
}

fn wait(what: &str, secs: u64, f: impl Fn() -> bool) {
    let start = std::time::Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn metric(reg: &Registry, name: &str) -> f64 {
    let mut out = Vec::new();
    reg.encode(Format::Text, &mut out);
    let text = String::from_utf8(out).unwrap();
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

/// Every sample of `append(db, t0, rounds, series)` arrived, once each.
fn check_all(got: &Got, t0: i64, rounds: i64, series: usize, prefix: &str) {
    for s in 0..series {
        let key = format!("__name__=m,{prefix}s={s:03}");
        let g = got
            .samples
            .get(&key)
            .unwrap_or_else(|| panic!("series {key} missing; have {:?}", got.samples.keys()));
        let want: BTreeMap<i64, f64> = (0..rounds)
            .map(|r| (t0 + r * 1000, (t0 + r * 1000 + s as i64) as f64))
            .collect();
        assert_eq!(g, &want, "series {key}");
    }
}

#[test]
fn delivers_every_sample_with_the_protocol_headers_and_relabelling() {
    let rx = receiver();
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let reg = Registry::new();
    let mut c = cfg(&rx.url);
    c.headers = vec![("X-Scope-OrgID".into(), "tenant-1".into())];
    c.authorization = Some(("Bearer".into(), "tok".into()));
    let mut drop_rule = RelabelConfig::builder();
    drop_rule.source_labels = Some(vec!["s".into()]);
    drop_rule.regex = Some("00[0-4]".into());
    drop_rule.action = Some(Action::Drop);
    c.write_relabel_configs = vec![drop_rule.build().unwrap()];
    let ext = vec![("cluster".to_string(), "eu".to_string())];
    let w = RemoteWriter::start(db.clone(), dir.path(), &[c], &ext, &reg).unwrap();
    append(&db, 1_000_000, 30, 20);
    wait("15 series × 30 samples", 30, || rx.got.lock().total >= 450);
    std::thread::sleep(Duration::from_millis(200));
    let got = rx.got.lock();
    assert_eq!(
        got.total, 450,
        "5 of 20 series dropped by write_relabel_configs"
    );
    for s in 5..20 {
        let key = format!("__name__=m,cluster=eu,s={s:03}");
        assert_eq!(got.samples[&key].len(), 30, "{key}");
    }
    let h = &got.headers[0];
    let has = |k: &str, v: &str| {
        h.iter()
            .any(|(a, b)| a.eq_ignore_ascii_case(k) && b.starts_with(v))
    };
    assert!(has("Content-Encoding", "snappy"), "{h:?}");
    assert!(has("Content-Type", "application/x-protobuf"), "{h:?}");
    assert!(has("X-Prometheus-Remote-Write-Version", "0.1.0"), "{h:?}");
    assert!(has("User-Agent", "vigil-monitor/"), "{h:?}");
    assert!(has("X-Scope-OrgID", "tenant-1"), "{h:?}");
    assert!(has("Authorization", "Bearer tok"), "{h:?}");
    drop(got);
    assert_eq!(
        metric(&reg, "prometheus_remote_storage_samples_total"),
        450.0
    );
    assert_eq!(
        metric(&reg, "prometheus_remote_storage_samples_dropped_total"),
        150.0
    );
    assert_eq!(metric(&reg, "prometheus_remote_storage_shards"), 1.0);
    assert!(
        metric(
            &reg,
            "prometheus_remote_storage_highest_timestamp_in_seconds"
        ) >= 1029.0
    );
    assert!(
        metric(
            &reg,
            "prometheus_remote_storage_queue_highest_sent_timestamp_seconds"
        ) >= 1029.0
    );
    w.stop();
}

#[test]
fn retries_5xx_and_429_and_drops_other_4xx() {
    let rx = receiver();
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let reg = Registry::new();
    let w = RemoteWriter::start(db.clone(), dir.path(), &[cfg(&rx.url)], &[], &reg).unwrap();
    rx.status.store(503, Ordering::SeqCst);
    append(&db, 0, 5, 10);
    wait("a few refused attempts", 10, || {
        rx.requests.load(Ordering::SeqCst) >= 3
    });
    rx.status.store(429, Ordering::SeqCst);
    let n = rx.requests.load(Ordering::SeqCst);
    wait("a 429 attempt", 10, || {
        rx.requests.load(Ordering::SeqCst) > n + 1
    });
    rx.status.store(204, Ordering::SeqCst);
    wait("all 50 after the retries", 20, || rx.got.lock().total >= 50);
    check_all(&rx.got.lock(), 0, 5, 10, "");
    assert!(metric(&reg, "prometheus_remote_storage_samples_retried_total") >= 50.0);
    assert_eq!(
        metric(&reg, "prometheus_remote_storage_samples_failed_total"),
        0.0
    );

    // A 400 is not retried: dropped and counted.
    rx.status.store(400, Ordering::SeqCst);
    let before = rx.requests.load(Ordering::SeqCst);
    append(&db, 10_000, 1, 10);
    wait("the refused batch counted", 10, || {
        metric(&reg, "prometheus_remote_storage_samples_failed_total") >= 10.0
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        rx.requests.load(Ordering::SeqCst),
        before + 1,
        "one attempt only"
    );
    rx.status.store(204, Ordering::SeqCst);
    append(&db, 11_000, 1, 10);
    wait("the next batch", 10, || rx.got.lock().total >= 60);
    assert_eq!(rx.got.lock().total, 60);
    w.stop();
}

#[test]
fn a_restart_during_an_outage_loses_nothing_the_wal_holds() {
    let rx = receiver();
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let w = RemoteWriter::start(
        db.clone(),
        dir.path(),
        &[cfg(&rx.url)],
        &[],
        &Registry::new(),
    )
    .unwrap();
    append(&db, 0, 10, 30);
    wait("the first 300", 20, || rx.got.lock().total >= 300);
    // Outage: nothing gets through; the store checkpoints meanwhile (which
    // would delete the segments the sender still needs without its hold).
    rx.status.store(503, Ordering::SeqCst);
    append(&db, 10_000, 100, 30);
    db.head().checkpoint().unwrap();
    append(&db, 110_000, 50, 30);
    db.head().checkpoint().unwrap();
    w.stop();
    drop(db);
    // Restart with the receiver back.
    let db = open(dir.path());
    rx.status.store(204, Ordering::SeqCst);
    let w = RemoteWriter::start(
        db.clone(),
        dir.path(),
        &[cfg(&rx.url)],
        &[],
        &Registry::new(),
    )
    .unwrap();
    append(&db, 160_000, 5, 30);
    wait("all 165 rounds of 30 series", 60, || {
        rx.got.lock().total >= 165 * 30
    });
    std::thread::sleep(Duration::from_millis(300));
    let got = rx.got.lock();
    check_all(&got, 0, 165, 30, "");
    assert_eq!(got.total, 165 * 30, "nothing sent twice");
    drop(got);
    w.stop();
}
