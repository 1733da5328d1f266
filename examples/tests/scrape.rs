//! The glue end to end: a registry served over HTTP, scraped into a
//! vigil-tsdb store, queried with PromQL; and a dead target gives `up` 0.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

use vigil_examples::scrape;
use vigil_exposition::Format;
use vigil_exposition::client::{Counter, Registry};
use vigil_rules::{Engine, Value};
use vigil_tsdb::db::{Db, DbOptions};

/// Answers `n` requests with the registry, in the format asked for.
fn serve(listener: TcpListener, registry: Registry, n: usize) {
    for stream in listener.incoming().take(n) {
        let mut reader = BufReader::new(stream.unwrap());
        let mut accept = None;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                break;
            }
            if let Some(v) = line.strip_prefix("Accept: ") {
                accept = Some(v.trim().to_owned());
            }
        }
        let format = Format::negotiate(accept.as_deref());
        let mut body = Vec::new();
        registry.encode(format, &mut body);
        let mut s = reader.into_inner();
        write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nContent-Length: {}\r\n\r\n",
            format.content_type(),
            body.len()
        )
        .unwrap();
        s.write_all(&body).unwrap();
    }
}

fn scalar(engine: &Engine, db: &Db, q: &str, t: i64) -> Vec<f64> {
    match engine.instant_query(db, q, t).unwrap().value {
        Value::Vector(v) => v.into_iter().map(|s| s.value).collect(),
        other => panic!("{q}: {other:?}"),
    }
}

#[test]
fn scrape_store_and_query() {
    let registry = Registry::new();
    let jobs = Counter::<u64>::new();
    registry
        .register("jobs_done", "Jobs done.", jobs.clone())
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server = std::thread::spawn({
        let registry = registry.clone();
        move || serve(listener, registry, 3)
    });
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), DbOptions::default()).unwrap();
    for (i, t) in [10_000i64, 20_000, 30_000].into_iter().enumerate() {
        jobs.inc_by(10 * (i as u64 + 1));
        let r = scrape(&db, &addr, "worker", t).unwrap();
        assert!(r.up);
        assert!(r.samples >= 2, "jobs_done_total and _created: {r:?}");
    }
    server.join().unwrap();
    let engine = Engine::new();
    assert_eq!(scalar(&engine, &db, "jobs_done_total", 30_000), [60.0]);
    assert_eq!(scalar(&engine, &db, "up{job=\"worker\"}", 30_000), [1.0]);
    // 50 over the 20 s sampled; Prometheus extrapolates toward the window's
    // start (5 s away) but not past where the counter would reach zero (10/50 of
    // the 20 s, i.e. 4 s before the first sample): 50 * 24/20.
    assert_eq!(
        scalar(&engine, &db, "increase(jobs_done_total[25s])", 30_000),
        [60.0]
    );

    // A target that is gone: up 0, nothing else appended.
    let dead = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap().to_string();
    drop(dead);
    let r = scrape(&db, &dead_addr, "gone", 40_000).unwrap();
    assert!(!r.up && r.samples == 0);
    assert_eq!(scalar(&engine, &db, "up{job=\"gone\"}", 40_000), [0.0]);
}
