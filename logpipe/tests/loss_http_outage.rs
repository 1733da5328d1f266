//! Loss test (d): a writer appends numbered lines at 50,000 lines/s while
//! the HTTP output's destination (a small server in this test, on
//! 127.0.0.1) is down for 40 % of the run: connections are refused, the
//! output retries with backoff, the input pauses at its memory limit, and
//! when the server is back everything arrives exactly once. The CI variant
//! runs 5 s; the 20 s variant is `--ignored`.
#![cfg(feature = "http")]

mod common;

use common::*;
use std::time::{Duration, Instant};

fn run(secs: f64) {
    let d = dir();
    let root = d.path();
    let log = root.join("app.log");
    std::fs::write(&log, "").unwrap();
    let mut server = TestServer::start();
    let conf = format!(
        "[SERVICE]\n    Flush 0.2\n    Grace 10\n    scheduler.base 0.2\n    scheduler.cap 1\n\
         [INPUT]\n    Name tail\n    Path {}\n    Read_From_Head On\n    Mem_Buf_Limit 8MB\n\
         [OUTPUT]\n    Name http\n    Match *\n    Host 127.0.0.1\n    Port {}\n    URI /ingest\n    Format json_lines\n    Retry_Limit False\n",
        p(&log),
        server.port
    );
    let running = Running::start(&conf, root);
    let writer = Writer::start(&log, 50_000, secs, Rotation::None);
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(secs * 0.2));
    server.set_down(true);
    let down_at = start.elapsed();
    std::thread::sleep(Duration::from_secs_f64(secs * 0.4));
    server.set_down(false);
    let up_at = start.elapsed();
    let n = writer.join();
    wait_until(Duration::from_secs(180), || server.tally(n).unique == n);
    let retries = running
        .metrics
        .outputs
        .lock()
        .iter()
        .map(|o| o.retries.load(std::sync::atomic::Ordering::Relaxed))
        .sum::<u64>();
    running.stop();
    let t = server.tally(n);
    println!(
        "loss (d) http server down {:.1}s..{:.1}s of {secs} s ({retries} retries): {t}",
        down_at.as_secs_f64(),
        up_at.as_secs_f64()
    );
    assert!(retries > 0, "the outage was not noticed");
    assert_eq!(t.lost, 0, "{t}");
    assert_eq!(t.duplicates, 0, "{t}");
    assert_eq!(t.unexpected, 0, "{t}");
}

#[test]
fn http_outage_loses_nothing() {
    run(5.0);
}

#[test]
#[ignore = "the issue's 20 s run; CI runs the 5 s one"]
fn http_outage_loses_nothing_20s() {
    run(20.0);
}
