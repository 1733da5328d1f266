//! Remote write with the real peer (Debian's Prometheus 2.42, started on
//! 127.0.0.1 with `--web.enable-remote-write-receiver` in a temporary
//! directory and stopped by pid):
//!
//! - ours → Prometheus: every series and sample arrives, queried back.
//! - Prometheus → ours: what it scraped is in our store, sample for sample.
//! - outage: Prometheus is stopped for 10 s (30 s in the ignored variant)
//!   while we append a round of samples every second, and our sender's
//!   process is killed with SIGKILL and restarted during the outage: after
//!   recovery every sample of our store is on Prometheus.
//!
//! Our side runs in this test process or in a child (this test binary
//! re-run with `VIGIL_RW_CHILD` set) that opens a store, starts
//! `RemoteWriter` and appends; vigil-monitor's binary is not used because
//! the composition wires remote write separately (see the README).

mod peers;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use vigil_examples::monitor::remote::{RemoteWriteConfig, RemoteWriter, receive};
use vigil_exposition::client::Registry;
use vigil_tsdb::db::{Db, DbOptions};
use vigil_tsdb::index::{MatchOp, Matcher};
use vigil_tsdb::labels::Labels;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Series → samples `(t ms, value as Prometheus prints it)`.
type Data = BTreeMap<String, BTreeMap<i64, String>>;

fn key(pairs: impl Iterator<Item = (String, String)>) -> String {
    let mut v: Vec<String> = pairs.map(|(n, v)| format!("{n}={v:?}")).collect();
    v.sort();
    v.join(",")
}

/// Prometheus's raw samples of `selector` in the hour before `at_ms`.
fn prom_samples(url: &str, selector: &str, at_ms: i64) -> Data {
    let q = format!(
        "{url}/api/v1/query?query={}&time={}.{:03}",
        peers::enc(&format!("{selector}[1h]")),
        at_ms / 1000,
        at_ms % 1000
    );
    let v = peers::get_json(&q);
    assert_eq!(v["status"], "success", "{v}");
    let mut out = Data::new();
    for r in v["data"]["result"].as_array().unwrap() {
        let labels = r["metric"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()));
        let e = out.entry(key(labels)).or_default();
        for s in r["values"].as_array().unwrap() {
            let t = (s[0].as_f64().unwrap() * 1000.0).round() as i64;
            e.insert(t, s[1].as_str().unwrap().to_owned());
        }
    }
    out
}

/// Our store's samples of series named like `name_re` in `[mint, maxt]`.
fn our_samples(db: &Db, name_re: &str, mint: i64, maxt: i64) -> Data {
    let m = Matcher::new("__name__", MatchOp::Regex, name_re).unwrap();
    let mut out = Data::new();
    for (l, s) in db.select(&[m], mint, maxt).unwrap() {
        let e = out
            .entry(key(l.iter().map(|(n, v)| (n.to_owned(), v.to_owned()))))
            .or_default();
        for (t, v) in s {
            e.insert(t, go_float(v));
        }
    }
    out
}

/// Prometheus's JSON rendering of a float (Go's `FormatFloat(v, 'f', -1)`:
/// the shortest decimal that reads back, never an exponent, as Rust's
/// `Display`).
fn go_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v}")
    }
}

fn prometheus_receiver(data_dir: &Path, addr: &str, config: &str) -> peers::Peer {
    let run = tempfile::tempdir().unwrap();
    std::fs::write(run.path().join("prometheus.yml"), config).unwrap();
    let args = vec![
        "--config.file=prometheus.yml".to_string(),
        format!("--storage.tsdb.path={}", data_dir.display()),
        format!("--web.listen-address={addr}"),
        "--web.enable-remote-write-receiver".to_string(),
    ];
    peers::start(
        "prometheus",
        Path::new("/usr/bin/prometheus"),
        &args,
        run,
        addr.to_owned(),
        "/-/ready",
    )
}

fn fast(url: &str) -> RemoteWriteConfig {
    let mut c = RemoteWriteConfig::new(url);
    c.name = "prom".into();
    c.queue_config.batch_send_deadline = Duration::from_millis(200);
    c.queue_config.min_backoff = Duration::from_millis(50);
    c.queue_config.max_backoff = Duration::from_millis(500);
    c
}

fn append_round(db: &Db, t: i64, round: i64, series: usize) {
    let mut app = db.head().appender();
    for s in 0..series {
        let l = Labels::new([
            ("__name__", "vigil_rw_test"),
            ("instance", "a"),
            ("s", &format!("{s:03}")),
        ])
        .unwrap();
        app.append(&l, t, (round * 1000 + s as i64) as f64).unwrap();
    }
    app.commit().unwrap();
}

#[test]
fn our_sender_writes_into_a_real_prometheus() {
    let data = tempfile::tempdir().unwrap();
    let addr = peers::free_addr();
    let prom = prometheus_receiver(data.path(), &addr, "global: {scrape_interval: 1m}\n");
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(dir.path(), DbOptions::default()).unwrap());
    let reg = Registry::new();
    let w = RemoteWriter::start(
        db.clone(),
        dir.path(),
        &[fast(&format!("{}/api/v1/write", prom.url()))],
        &[],
        &reg,
    )
    .unwrap();
    let t0 = now_ms() - 120_000;
    for r in 0..60 {
        append_round(&db, t0 + r * 1000, r, 200);
    }
    let last = t0 + 59_000;
    let want = our_samples(&db, "vigil_rw_test", 0, i64::MAX);
    assert_eq!(want.len(), 200);
    peers::wait_for(
        "Prometheus to hold all 12,000 samples",
        Duration::from_secs(60),
        || {
            let got = prom_samples(&prom.url(), "vigil_rw_test", last + 1);
            got.values().map(|s| s.len()).sum::<usize>() >= 12_000
        },
    );
    assert_eq!(prom_samples(&prom.url(), "vigil_rw_test", last + 1), want);
    w.stop();
}

#[test]
fn a_real_prometheus_writes_into_our_receiver() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(dir.path(), DbOptions::default()).unwrap());
    let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
    let our_url = format!(
        "http://{}/api/v1/write",
        server.server_addr().to_ip().unwrap()
    );
    let (s, d) = (server.clone(), db.clone());
    std::thread::spawn(move || {
        for mut req in s.incoming_requests() {
            let mut body = Vec::new();
            let _ = std::io::Read::read_to_end(req.as_reader(), &mut body);
            let enc = req
                .headers()
                .iter()
                .find(|h| h.field.equiv("Content-Encoding"))
                .map(|h| h.value.to_string());
            let r = receive(&d, &body, enc.as_deref());
            let _ =
                req.respond(tiny_http::Response::from_string(r.message).with_status_code(r.status));
        }
    });
    let addr = peers::free_addr();
    let config = format!(
        "global: {{scrape_interval: 1s}}\n\
         scrape_configs:\n- job_name: self\n  static_configs: [{{targets: ['{addr}']}}]\n\
         remote_write:\n- url: {our_url}\n  queue_config: {{batch_send_deadline: 500ms}}\n"
    );
    let pdata = tempfile::tempdir().unwrap();
    let prom = prometheus_receiver(pdata.path(), &addr, &config);
    let sent = |p: &peers::Peer| -> f64 {
        let text = peers::get(&format!("{}/metrics", p.url())).1;
        text.lines()
            .find(|l| {
                l.starts_with("prometheus_remote_storage_queue_highest_sent_timestamp_seconds{")
            })
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0.0)
    };
    // Prometheus starts its scrapes up to 5 s after it is ready, and its
    // sender after replaying its WAL: wait for 5 s of data sent.
    let first = {
        let mut first = 0.0;
        peers::wait_for("Prometheus to send", Duration::from_secs(60), || {
            first = sent(&prom);
            first > 0.0
        });
        first
    };
    peers::wait_for("5 s of data sent", Duration::from_secs(60), || {
        sent(&prom) > first + 5.0
    });
    let hi = sent(&prom);
    // Samples up to 3 s before the newest sent one have been sent by every
    // shard (batch deadline 500 ms); compare everything up to there.
    std::thread::sleep(Duration::from_secs(3));
    let upto = (hi * 1000.0) as i64 - 3000;
    let theirs = prom_samples(&prom.url(), "{__name__=~\".+\"}", upto);
    let ours = our_samples(&db, ".+", 0, upto);
    let n: usize = theirs.values().map(|s| s.len()).sum();
    assert!(
        theirs.len() > 100 && n > 300,
        "{} series, {n} samples up to {upto} (highest sent {hi}); ours {}:\n{}",
        theirs.len(),
        ours.len(),
        prom.log()
    );
    let missing: Vec<&String> = theirs.keys().filter(|k| !ours.contains_key(*k)).collect();
    assert!(missing.is_empty(), "series not received: {missing:?}");
    for (k, s) in &theirs {
        assert_eq!(&ours[k], s, "{k}");
    }
    drop(prom);
    server.unblock();
}

/// The child: appends a round of 50 series every second from `t0`
/// (`VIGIL_RW_T0`) and remote-writes to `VIGIL_RW_URL`, until the file
/// `stop` appears in its store's directory; then waits until nothing is
/// pending and exits.
#[test]
#[ignore = "run as a child process by the outage tests"]
fn child_sender() {
    let Ok(dir) = std::env::var("VIGIL_RW_CHILD") else {
        return;
    };
    let dir = Path::new(&dir);
    let url = std::env::var("VIGIL_RW_URL").unwrap();
    let t0: i64 = std::env::var("VIGIL_RW_T0").unwrap().parse().unwrap();
    let opts = DbOptions {
        head: vigil_tsdb::head::HeadOptions {
            wal: vigil_wal::Options::default()
                .segment_size(64 << 10)
                .sync(vigil_wal::SyncPolicy::Always),
            ..Default::default()
        },
        ..DbOptions::default()
    };
    let db = Arc::new(Db::open(dir, opts).unwrap());
    let w = RemoteWriter::start(db.clone(), dir, &[fast(&url)], &[], &Registry::new()).unwrap();
    let mut next = (now_ms() - t0).div_euclid(1000).max(0) + 1;
    loop {
        if dir.join("stop").exists() {
            break;
        }
        let due = t0 + next * 1000;
        let wait = due - now_ms();
        if wait > 0 {
            std::thread::sleep(Duration::from_millis(wait as u64));
        }
        append_round(&db, due, next, 50);
        // Checkpoints while the receiver is away would delete segments the
        // sender needs without its WAL hold.
        if next % 5 == 0 {
            db.head().checkpoint().unwrap();
        }
        next += 1;
    }
    let start = Instant::now();
    while w.pending().iter().any(|(_, n)| *n > 0) && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    w.stop();
}

fn spawn_child(dir: &Path, url: &str, t0: i64) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_sender", "--ignored", "--nocapture"])
        .env("VIGIL_RW_CHILD", dir)
        .env("VIGIL_RW_URL", url)
        .env("VIGIL_RW_T0", t0.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

fn outage(secs: u64) {
    let pdata = tempfile::tempdir().unwrap();
    let addr = peers::free_addr();
    let cfg = "global: {scrape_interval: 1m}\n";
    let prom = prometheus_receiver(pdata.path(), &addr, cfg);
    let url = format!("http://{addr}/api/v1/write");
    let ours = tempfile::tempdir().unwrap();
    let t0 = now_ms();
    let mut child = spawn_child(ours.path(), &url, t0);
    std::thread::sleep(Duration::from_secs(4));
    // The receiver goes away.
    let mut prom = prom;
    prom.signal("TERM");
    let stopping = Instant::now();
    while prom.try_wait().is_none() && stopping.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(prom);
    let down = Instant::now();
    std::thread::sleep(Duration::from_secs(secs / 2));
    // Our sender dies mid-outage and comes back.
    let _ = child.kill();
    let _ = child.wait();
    let mut child = spawn_child(ours.path(), &url, t0);
    let left = Duration::from_secs(secs).saturating_sub(down.elapsed());
    std::thread::sleep(left);
    let prom = prometheus_receiver(pdata.path(), &addr, cfg);
    std::thread::sleep(Duration::from_secs(4));
    std::fs::write(ours.path().join("stop"), b"").unwrap();
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            assert!(st.success(), "child failed: {st}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "child did not stop"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let db = Db::open(ours.path(), DbOptions::default()).unwrap();
    let want = our_samples(&db, "vigil_rw_test", 0, i64::MAX);
    let n: usize = want.values().map(|s| s.len()).sum();
    let rounds = (secs + 8) as usize;
    assert!(
        n >= 50 * rounds.saturating_sub(3),
        "only {n} samples appended"
    );
    let got = prom_samples(&prom.url(), "vigil_rw_test", now_ms());
    for (k, s) in &want {
        let g = got
            .get(k)
            .unwrap_or_else(|| panic!("series {k} missing on Prometheus"));
        let lost: Vec<&i64> = s.keys().filter(|t| !g.contains_key(*t)).collect();
        assert!(
            lost.is_empty(),
            "{k}: {} samples missing: {lost:?}",
            lost.len()
        );
        assert_eq!(g, s, "{k}");
    }
}

#[test]
fn an_outage_of_10s_with_a_kill9_loses_nothing() {
    outage(10);
}

#[test]
#[ignore = "30 s outage, the issue's figure; run by hand"]
fn an_outage_of_30s_with_a_kill9_loses_nothing() {
    outage(30);
}
