//! vigil-monitor against the real Prometheus tools (Debian's prometheus,
//! promtool, alertmanager and node_exporter, installed by scripts/test):
//! each peer runs on 127.0.0.1 with a temporary directory and is stopped by
//! its process id.

mod peers;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use peers::{enc, get, get_json, post, wait_for};

/// Our series selected by `selector` at the latest time, as sorted
/// `name{labels}` strings (values left out).
fn series_now(base: &str, selector: &str) -> BTreeSet<String> {
    let v = get_json(&format!("{base}/api/v1/query?query={}", enc(selector)));
    assert_eq!(v["status"], "success", "{base}: {v}");
    v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let m = s["metric"].as_object().unwrap();
            let mut pairs: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap()))
                .collect();
            pairs.sort();
            pairs.join(",")
        })
        .collect()
}

fn all_up(base: &str, n: usize) -> bool {
    let v = get_json(&format!("{base}/api/v1/targets"));
    let active = v["data"]["activeTargets"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    active.len() == n && active.iter().all(|t| t["health"] == "up")
}

/// The difference of two series sets, for failure messages.
fn diff(a: &BTreeSet<String>, b: &BTreeSet<String>) -> String {
    let only_a: Vec<_> = a.difference(b).take(5).collect();
    let only_b: Vec<_> = b.difference(a).take(5).collect();
    format!("only ours: {only_a:?}; only theirs: {only_b:?}")
}

/// Polls until both sets agree (targets change between two moments, e.g.
/// a new HTTP handler series after a query; after a scrape interval with
/// no change both stores hold the same), failing after `limit`.
fn converge(
    what: &str,
    limit: Duration,
    mut f: impl FnMut() -> (BTreeSet<String>, BTreeSet<String>),
) {
    let start = std::time::Instant::now();
    loop {
        let (ours, theirs) = f();
        if ours == theirs && !ours.is_empty() {
            eprintln!("{what}: {} series agree", ours.len());
            return;
        }
        assert!(
            start.elapsed() < limit,
            "{what}: {} vs {} series; {}",
            ours.len(),
            theirs.len(),
            diff(&ours, &theirs)
        );
        std::thread::sleep(Duration::from_millis(700));
    }
}

fn promtool(args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(["query"])
        .args(args)
        .output()
        .expect("promtool is installed by scripts/test");
    assert!(
        out.status.success(),
        "promtool query {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// promtool prints a vector as `name{labels} => value @[time]` lines; the
/// series with their values (times dropped), sorted. Used for counts, which
/// must agree.
fn promtool_series(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.split(" @[").next())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn scrapes_real_peers_like_prometheus_and_answers_promtool_alike() {
    let node = peers::node_exporter();
    let am = peers::alertmanager();
    let scrape_config = |prom_addr: &str| {
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n\
             - job_name: node\n  static_configs:\n  - targets: ['{}']\n\
             - job_name: alertmanager\n  static_configs:\n  - targets: ['{}']\n\
             - job_name: prometheus\n  static_configs:\n  - targets: ['{prom_addr}']\n",
            node.addr, am.addr
        )
    };
    // Prometheus scrapes itself; we scrape it too, plus the same two peers.
    let prom_addr = peers::free_addr();
    let prom = {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("prometheus.yml"), scrape_config(&prom_addr)).unwrap();
        let args = vec![
            "--config.file=prometheus.yml".to_string(),
            "--storage.tsdb.path=data".to_string(),
            format!("--web.listen-address={prom_addr}"),
        ];
        peers::start(
            "prometheus",
            std::path::Path::new("/usr/bin/prometheus"),
            &args,
            dir,
            prom_addr.clone(),
            "/-/ready",
        )
    };
    let ours = peers::monitor(&scrape_config(&prom_addr), &[], &[]);
    let (o, p) = (ours.url(), prom.url());
    wait_for("every target of ours up", Duration::from_secs(20), || {
        all_up(&o, 3)
    });
    wait_for(
        "every target of Prometheus up",
        Duration::from_secs(20),
        || all_up(&p, 3),
    );

    // The same series per job (synthetic ones included) in both stores.
    for job in ["node", "alertmanager", "prometheus"] {
        let sel = format!("{{job=\"{job}\"}}");
        converge(&format!("job {job}"), Duration::from_secs(30), || {
            (series_now(&o, &sel), series_now(&p, &sel))
        });
    }
    for synthetic in [
        "up",
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "scrape_samples_post_metric_relabeling",
        "scrape_series_added",
    ] {
        assert_eq!(series_now(&o, synthetic).len(), 3, "{synthetic}");
    }

    // promtool's four query commands give the same series from both.
    let node_sel = "{job=\"node\"}";
    converge("promtool query instant", Duration::from_secs(30), || {
        let q = "count by (__name__) ({job=~\"node|alertmanager\"})";
        let a = promtool_series(&promtool(&["instant", &o, q]));
        let b = promtool_series(&promtool(&["instant", &p, q]));
        (a, b)
    });

    converge("promtool query range", Duration::from_secs(30), || {
        let q = "sum by (job) (up)";
        // A range that ends a moment ago, fresh at every try, so both
        // stores have committed their samples for all of it.
        let now = rules_now() - 2;
        let start = (now - 20).to_string();
        let end = now.to_string();
        let args = |u: &str| {
            promtool(&[
                "range", "--start", &start, "--end", &end, "--step", "5s", u, q,
            ])
        };
        let (a, b) = (args(&o), args(&p));
        // Range output: one block per series headed by its labels.
        let heads = |t: &str| -> BTreeSet<String> {
            t.lines()
                .filter(|l| l.starts_with('{') || l.contains("{job"))
                .map(|l| l.split(" =>").next().unwrap_or(l).trim().to_string())
                .collect()
        };
        (heads(&a), heads(&b))
    });
    converge("promtool query series", Duration::from_secs(30), || {
        let m = format!("--match={node_sel}");
        let a: BTreeSet<String> = promtool(&["series", &m, &o])
            .lines()
            .map(String::from)
            .collect();
        let b: BTreeSet<String> = promtool(&["series", &m, &p])
            .lines()
            .map(String::from)
            .collect();
        (a, b)
    });
    converge("promtool query labels", Duration::from_secs(30), || {
        let a: BTreeSet<String> = promtool(&["labels", &o, "job"])
            .lines()
            .map(String::from)
            .collect();
        let b: BTreeSet<String> = promtool(&["labels", &p, "job"])
            .lines()
            .map(String::from)
            .collect();
        (a, b)
    });
    drop((node, am));
}

fn rules_now() -> i64 {
    vigil_examples::monitor::rules::now_ms() / 1000
}

#[test]
fn prometheus_scrapes_and_federates_from_us() {
    let node = peers::node_exporter();
    let ours = peers::monitor(
        &format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  external_labels:\n    monitor: vigil\nscrape_configs:\n\
             - job_name: node\n  static_configs:\n  - targets: ['{}']\n",
            node.addr
        ),
        &[],
        &[],
    );
    let o = ours.url();
    wait_for("node up in ours", Duration::from_secs(20), || all_up(&o, 1));
    let prom = peers::prometheus(
        &format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n\
             - job_name: vigil\n  static_configs:\n  - targets: ['{0}']\n\
             - job_name: federate\n  honor_labels: true\n  metrics_path: /federate\n  params:\n    'match[]': ['{{job=\"node\"}}']\n  static_configs:\n  - targets: ['{0}']\n",
            ours.addr
        ),
        &[],
    );
    let p = prom.url();
    wait_for("Prometheus's targets up", Duration::from_secs(20), || {
        all_up(&p, 2)
    });
    // Our /metrics, as Prometheus stored it.
    let own = series_now(&p, "{job=\"vigil\",__name__=~\"prometheus_.*|process_.*\"}");
    assert!(own.len() > 10, "{own:?}");
    // Federated node series arrive with their own job and our external
    // label, as many as we hold.
    converge("federated node series", Duration::from_secs(30), || {
        let theirs: BTreeSet<String> = series_now(&p, "{job=\"node\",monitor=\"vigil\"}")
            .into_iter()
            .map(|s| s.replace(",monitor=vigil", ""))
            .collect();
        let ours_now = series_now(&o, "{job=\"node\"}");
        (ours_now, theirs)
    });
}

/// A target exposing `metricsCPU` with a value the test sets.
fn cpu_target() -> (String, std::sync::Arc<parking_lot::Mutex<f64>>) {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let addr = server.server_addr().to_ip().unwrap().to_string();
    let value = std::sync::Arc::new(parking_lot::Mutex::new(0.95));
    let v = value.clone();
    std::thread::spawn(move || {
        for req in server.incoming_requests() {
            let body = format!("# TYPE metricsCPU gauge\nmetricsCPU {}\n", *v.lock());
            let _ = req.respond(tiny_http::Response::from_string(body));
        }
    });
    (addr, value)
}

#[test]
fn the_seed_alert_reaches_a_real_alertmanager_and_resolves_there() {
    let am = peers::alertmanager();
    let (target, cpu) = cpu_target();
    let ours = peers::monitor(
        &format!(
            "global:\n  scrape_interval: 500ms\n  scrape_timeout: 500ms\n  evaluation_interval: 500ms\n\
             rule_files: ['seed.rules']\n\
             alerting:\n  alertmanagers:\n  - static_configs:\n    - targets: ['{}']\n\
             scrape_configs:\n- job_name: node\n  static_configs:\n  - targets: ['{target}']\n",
            am.addr
        ),
        &[(
            "seed.rules",
            "ALERT Example\n  IF metricsCPU > 0.9\n  FOR 2s\n  LABELS {severity=\"High\"}\n  ANNOTATIONS {description=\"Node CPU too high: {{ $labels.instance }} CPU {{$value}}\", summary=\"Node CPU too high\"}\n",
        )],
        &["--rules.alert.resend-delay=1s"],
    );
    let am_alerts = || -> Vec<serde_json::Value> {
        get_json(&format!("{}/api/v2/alerts", am.url()))
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|a| a["labels"]["alertname"] == "Example")
            .collect()
    };
    wait_for("the alert at Alertmanager", Duration::from_secs(30), || {
        !am_alerts().is_empty()
    });
    let a = &am_alerts()[0];
    assert_eq!(a["labels"]["severity"], "High");
    assert_eq!(a["labels"]["instance"], target.as_str());
    assert_eq!(
        a["annotations"]["description"],
        format!("Node CPU too high: {target} CPU 0.95")
    );
    assert_eq!(a["annotations"]["summary"], "Node CPU too high");
    assert_eq!(a["status"]["state"], "active");
    // Ours says firing too.
    let alerts = get_json(&format!("{}/api/v1/alerts", ours.url()));
    assert_eq!(alerts["data"]["alerts"][0]["state"], "firing");

    *cpu.lock() = 0.1;
    wait_for(
        "the alert resolved at Alertmanager",
        Duration::from_secs(30),
        || am_alerts().is_empty(),
    );
}

#[test]
fn reloads_by_http_file_sd_and_sighup_and_refuses_a_broken_config() {
    let (t1, _v1) = cpu_target();
    let (t2, _v2) = cpu_target();
    let (t3, _v3) = cpu_target();
    let base = "global:\n  scrape_interval: 300ms\n  scrape_timeout: 300ms\nscrape_configs:\n";
    let one = format!("{base}- job_name: a\n  static_configs:\n  - targets: ['{t1}']\n");
    let ours = peers::monitor(&one, &[], &["--web.enable-lifecycle"]);
    let o = ours.url();
    let cfg = ours.dir.path().join("prometheus.yml");
    wait_for("one target", Duration::from_secs(10), || all_up(&o, 1));

    // /-/reload adds a target.
    let two = format!(
        "{one}- job_name: b\n  static_configs:\n  - targets: ['{t2}']\n\
         - job_name: files\n  file_sd_configs:\n  - files: ['targets/*.json']\n    refresh_interval: 1s\n"
    );
    std::fs::create_dir_all(ours.dir.path().join("targets")).unwrap();
    std::fs::write(&cfg, &two).unwrap();
    let (status, body) = post(&format!("{o}/-/reload"), "");
    assert_eq!(status, 200, "{body}");
    wait_for(
        "two targets after /-/reload",
        Duration::from_secs(10),
        || all_up(&o, 2),
    );

    // A file_sd change is picked up on its own.
    std::fs::write(
        ours.dir.path().join("targets/t.json"),
        format!("[{{\"targets\": [\"{t3}\"], \"labels\": {{\"team\": \"x\"}}}}]"),
    )
    .unwrap();
    wait_for(
        "three targets after a file_sd change",
        Duration::from_secs(15),
        || all_up(&o, 3),
    );
    assert_eq!(series_now(&o, "up{team=\"x\"}").len(), 1);

    // A broken config is refused and the old one keeps scraping.
    std::fs::write(&cfg, format!("{two}  bogus_field: 1\n")).unwrap();
    let (status, body) = post(&format!("{o}/-/reload"), "");
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("prometheus.yml"), "{body}");
    // Our own /metrics is not scraped here; ask the text directly.
    let text = get(&format!("{o}/metrics")).1;
    assert!(
        text.lines()
            .any(|l| l == "prometheus_config_last_reload_successful 0"),
        "{text}"
    );
    assert!(all_up(&o, 3));

    // SIGHUP reloads too: back to one job.
    std::fs::write(&cfg, &one).unwrap();
    ours.signal("HUP");
    wait_for("one target after SIGHUP", Duration::from_secs(10), || {
        all_up(&o, 1)
    });
    let text = get(&format!("{o}/metrics")).1;
    assert!(
        text.lines()
            .any(|l| l == "prometheus_config_last_reload_successful 1")
    );

    // Without --web.enable-lifecycle, /-/reload is refused.
    let locked = peers::monitor(&one, &[], &[]);
    assert_eq!(post(&format!("{}/-/reload", locked.url()), "").0, 403);
}

#[test]
fn a_broken_config_at_start_exits_non_zero_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("prometheus.yml"),
        "global:\n  scrape_interval: 5x\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vigil-monitor"))
        .current_dir(dir.path())
        .args([
            "--config.file=prometheus.yml",
            "--web.listen-address=127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("prometheus.yml:2:"), "{err}");
    assert!(err.contains("scrape_interval"), "{err}");
}

/// Bytes of `len` generated on the fly: series lines `hostile{i="N"} 1`.
struct Series {
    next: u64,
    buf: Vec<u8>,
    pos: usize,
    left: u64,
}

impl std::io::Read for Series {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
            for _ in 0..1000 {
                self.buf
                    .extend_from_slice(format!("hostile{{i=\"{}\"}} 1\n", self.next).as_bytes());
                self.next += 1;
            }
        }
        let n = out
            .len()
            .min(self.buf.len() - self.pos)
            .min(self.left.min(usize::MAX as u64) as usize);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        self.left -= n as u64;
        Ok(n)
    }
}

/// Serves a hostile body per path: `/huge` 1 GB, `/million` 1,000,000
/// series, `/garbage` bytes that are not an exposition, `/drip` one byte a
/// second.
fn hostile_server() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                use std::io::{BufRead, Write};
                let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
                let mut first = String::new();
                let _ = reader.read_line(&mut first);
                loop {
                    let mut l = String::new();
                    if reader.read_line(&mut l).unwrap_or(0) == 0 || l == "\r\n" {
                        break;
                    }
                }
                let path = first.split_whitespace().nth(1).unwrap_or("").to_string();
                let head = |len: u64| {
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
                    )
                };
                match path.as_str() {
                    "/huge" | "/million" => {
                        let len = if path == "/huge" { 1 << 30 } else { 30_000_000 };
                        let mut body = Series {
                            next: 0,
                            buf: Vec::new(),
                            pos: 0,
                            left: len,
                        };
                        // The million-series body is cut at exactly its size
                        // below; what counts is that it holds > 1e6 lines.
                        let _ = stream.write_all(head(len).as_bytes());
                        let _ = std::io::copy(&mut body, &mut stream);
                    }
                    "/garbage" => {
                        let body = "ok_metric 1\nthis is { not an exposition\n";
                        let _ = stream.write_all(head(body.len() as u64).as_bytes());
                        let _ = stream.write_all(body.as_bytes());
                    }
                    _ => {
                        let _ = stream.write_all(head(1000).as_bytes());
                        for _ in 0..1000 {
                            if stream.write_all(b"#").is_err() {
                                break;
                            }
                            std::thread::sleep(Duration::from_secs(1));
                        }
                    }
                }
            });
        }
    });
    addr
}

fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn hostile_targets_hit_their_limits_and_memory_stays_bounded() {
    let bad = hostile_server();
    let (good, _v) = cpu_target();
    let job = |name: &str, path: &str, extra: &str| {
        format!(
            "- job_name: {name}\n  metrics_path: {path}\n{extra}  static_configs:\n  - targets: ['{bad}']\n"
        )
    };
    let config = format!(
        "global:\n  scrape_interval: 2s\n  scrape_timeout: 2s\nscrape_configs:\n\
         - job_name: good\n  static_configs:\n  - targets: ['{good}']\n{}{}{}{}",
        job("huge", "/huge", "  body_size_limit: 10MB\n"),
        job("million", "/million", "  sample_limit: 100000\n"),
        job("garbage", "/garbage", ""),
        job("drip", "/drip", ""),
    );
    let ours = peers::monitor(&config, &[], &[]);
    let o = ours.url();
    let errors = || -> Vec<(String, String, String)> {
        get_json(&format!("{o}/api/v1/targets"))["data"]["activeTargets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["scrapePool"].as_str().unwrap().to_string(),
                    t["health"].as_str().unwrap().to_string(),
                    t["lastError"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    wait_for(
        "every hostile target scraped",
        Duration::from_secs(40),
        || errors().iter().all(|(_, h, _)| h != "unknown"),
    );
    // Two more rounds, so the limits are hit more than once.
    std::thread::sleep(Duration::from_secs(5));
    let got = errors();
    let find = |job: &str| got.iter().find(|(j, _, _)| j == job).unwrap().clone();
    assert_eq!(find("good").1, "up", "{got:?}");
    for job in ["huge", "million", "garbage", "drip"] {
        assert_eq!(find(job).1, "down", "{job}: {got:?}");
    }
    let why = |job: &str| find(job).2.to_lowercase();
    assert!(why("huge").contains("body size limit"), "{}", why("huge"));
    assert!(
        why("million").contains("sample limit"),
        "{}",
        why("million")
    );
    assert!(why("garbage").contains("line 2"), "{}", why("garbage"));
    assert!(
        why("drip").contains("timeout") || why("drip").contains("timed out"),
        "{}",
        why("drip")
    );
    // Nothing of the rejected scrapes was stored.
    assert!(series_now(&o, "{__name__=\"hostile\"}").is_empty());
    assert!(series_now(&o, "ok_metric").is_empty());
    let rss_mib = peak_rss_kib(ours.pid()) / 1024;
    eprintln!("peak RSS with hostile targets: {rss_mib} MiB");
    assert!(rss_mib < 400, "peak RSS {rss_mib} MiB");
}

#[test]
fn remote_write_both_ways_with_a_real_prometheus() {
    let (target, _cpu) = cpu_target();
    // A real Prometheus receiving our remote write …
    let prom = peers::prometheus(
        "global:\n  scrape_interval: 1m\n",
        &["--web.enable-remote-write-receiver"],
    );
    // … and ours scraping the target and sending everything to it, while
    // receiving what a second real Prometheus sends.
    let ours = peers::monitor(
        &format!(
            "global:\n  scrape_interval: 500ms\n  scrape_timeout: 500ms\n\
             remote_write:\n- url: {}/api/v1/write\n  queue_config:\n    batch_send_deadline: 200ms\n\
             scrape_configs:\n- job_name: cpu\n  static_configs:\n  - targets: ['{target}']\n",
            prom.url()
        ),
        &[],
        &["--web.enable-remote-write-receiver"],
    );
    let o = ours.url();
    let p = prom.url();
    wait_for(
        "our series at the real Prometheus",
        Duration::from_secs(30),
        || !series_now(&p, "metricsCPU{job=\"cpu\"}").is_empty(),
    );
    assert_eq!(series_now(&p, "metricsCPU"), series_now(&o, "metricsCPU"));
    let sender = peers::prometheus(
        &format!(
            "global:\n  scrape_interval: 500ms\n  scrape_timeout: 500ms\n\
             remote_write:\n- url: {o}/api/v1/write\n\
             scrape_configs:\n- job_name: sent\n  static_configs:\n  - targets: ['{target}']\n"
        ),
        &[],
    );
    wait_for(
        "the real Prometheus's samples in ours",
        Duration::from_secs(40),
        || !series_now(&o, "metricsCPU{job=\"sent\"}").is_empty(),
    );
    drop(sender);
}
