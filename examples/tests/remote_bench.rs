//! Processes for `benches/remote-write.sh` (not a test: every function
//! here returns at once unless `VIGIL_RW_BENCH` names its role). The bench
//! runs each role as its own process so that `/proc` gives each one's CPU:
//!
//! - `sink`: a remote write receiver that only decodes and counts samples,
//!   answering `GET /count`.
//! - `relay`: our side of the comparison: a store, the `/api/v1/write`
//!   handler writing into it and a `RemoteWriter` reading its WAL and
//!   sending to `VIGIL_RW_SINK` (the same path as a Prometheus started with
//!   `--web.enable-remote-write-receiver` and a `remote_write` entry).
//! - `load`: sends `VIGIL_RW_SERIES` series × `VIGIL_RW_ROUNDS` rounds to
//!   `VIGIL_RW_TARGET` as remote write requests of one round each.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use vigil_examples::monitor::remote::{RemoteWriteConfig, RemoteWriter, proto, receive};
use vigil_exposition::client::Registry;
use vigil_tsdb::db::{Db, DbOptions};

fn role(name: &str) -> bool {
    std::env::var("VIGIL_RW_BENCH").is_ok_and(|r| r == name)
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}

fn serve(addr: &str, f: impl Fn(&[u8], Option<&str>) -> (u16, String) + Send + Sync + 'static) {
    let server = Arc::new(tiny_http::Server::http(addr).unwrap());
    let f = Arc::new(f);
    let mut threads = Vec::new();
    for _ in 0..4 {
        let (s, f) = (server.clone(), f.clone());
        threads.push(std::thread::spawn(move || {
            for mut req in s.incoming_requests() {
                let mut body = Vec::new();
                let _ = std::io::Read::read_to_end(req.as_reader(), &mut body);
                let enc = req
                    .headers()
                    .iter()
                    .find(|h| h.field.equiv("Content-Encoding"))
                    .map(|h| h.value.to_string());
                let (status, msg) = f(&body, enc.as_deref());
                let _ = req.respond(tiny_http::Response::from_string(msg).with_status_code(status));
            }
        }));
    }
    for t in threads {
        let _ = t.join();
    }
}

#[test]
#[ignore = "a process of benches/remote-write.sh"]
fn sink() {
    if !role("sink") {
        return;
    }
    let n = Arc::new(AtomicU64::new(0));
    serve(&env("VIGIL_RW_ADDR"), move |body, _| {
        if body.is_empty() {
            return (200, n.load(Ordering::Relaxed).to_string());
        }
        match proto::decode(body, 256 << 20) {
            Ok(r) => {
                let k: usize = r.timeseries.iter().map(|t| t.samples.len()).sum();
                n.fetch_add(k as u64, Ordering::Relaxed);
                (204, String::new())
            }
            Err(e) => (400, e.to_string()),
        }
    });
}

#[test]
#[ignore = "a process of benches/remote-write.sh"]
fn relay() {
    if !role("relay") {
        return;
    }
    let dir = std::path::PathBuf::from(env("VIGIL_RW_DIR"));
    // As the monitor runs its store: WAL synced in batches.
    let opts = DbOptions {
        head: vigil_tsdb::head::HeadOptions {
            wal: vigil_wal::Options::default().sync(vigil_wal::SyncPolicy::Batch {
                max_delay: Duration::from_secs(1),
                max_bytes: 4 << 20,
            }),
            ..Default::default()
        },
        ..DbOptions::default()
    };
    let db = Arc::new(Db::open(&dir, opts).unwrap());
    let mut c = RemoteWriteConfig::new(&env("VIGIL_RW_SINK"));
    c.name = "bench".into();
    let w = RemoteWriter::start(db.clone(), &dir, &[c], &[], &Registry::new()).unwrap();
    serve(&env("VIGIL_RW_ADDR"), move |body, enc| {
        let r = receive(&db, body, enc);
        (r.status, r.message)
    });
    w.stop();
}

#[test]
#[ignore = "a process of benches/remote-write.sh"]
fn load() {
    if !role("load") {
        return;
    }
    let series: usize = env("VIGIL_RW_SERIES").parse().unwrap();
    let rounds: i64 = env("VIGIL_RW_ROUNDS").parse().unwrap();
    let target = env("VIGIL_RW_TARGET");
    let t0 = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    // Label sets shaped like node_exporter's: a name, job, instance and two
    // more labels.
    let labels: Vec<Vec<proto::Label>> = (0..series)
        .map(|i| {
            [
                ("__name__", format!("node_metric_{}", i % 100)),
                ("cpu", format!("{}", i / 100 % 8)),
                (
                    "instance",
                    format!("10.0.{}.{}:9100", i / 800 % 256, i / 8 / 100 % 256),
                ),
                ("job", "node".into()),
                ("mode", format!("m{}", i % 7)),
            ]
            .into_iter()
            .map(|(n, v)| proto::Label {
                name: n.into(),
                value: v,
            })
            .collect()
        })
        .collect();
    for r in 0..rounds {
        // One millisecond apart: after the receiver's start, in order.
        let t = t0 + r;
        for part in labels.chunks(2000) {
            let req = proto::WriteRequest {
                timeseries: part
                    .iter()
                    .enumerate()
                    .map(|(i, l)| proto::TimeSeries {
                        labels: l.clone(),
                        samples: vec![proto::Sample {
                            value: (r * 10 + i as i64 % 10) as f64,
                            timestamp: t,
                        }],
                        exemplars: vec![],
                    })
                    .collect(),
                metadata: vec![],
            };
            let body = proto::encode(&req);
            let res = agent
                .post(&target)
                .header("Content-Encoding", "snappy")
                .header("Content-Type", "application/x-protobuf")
                .header("X-Prometheus-Remote-Write-Version", "0.1.0")
                .send(&body[..])
                .unwrap();
            assert!(res.status().is_success(), "{target}: {}", res.status());
        }
    }
}
