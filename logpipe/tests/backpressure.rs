//! Backpressure: a slow output never makes the pipeline's memory grow past
//! its `Mem_Buf_Limit`. The pipeline runs in a child process (this test
//! binary run again) tailing a 64 MiB file from its head into an HTTP
//! destination that answers each request after 300 ms; the child's RSS is
//! sampled from /proc every 20 ms. The same run with an empty file gives
//! the baseline (code, threads, allocator), and the growth over it must
//! stay within the limit plus the buffers that are not records (the read
//! buffer, one encoded request body of at most a 4 MiB batch).
#![cfg(feature = "http")]

mod common;

use common::*;
use std::io::Write;
use std::time::{Duration, Instant};

const CHILD: &str = "backpressure_child_pipeline";
const LIMIT_MB: u64 = 16;

#[test]
fn backpressure_child_pipeline() {
    child_main();
}

/// Runs the child for `secs` on `log`; the peak RSS and how many records
/// the server took.
fn peak_rss(root: &std::path::Path, log: &std::path::Path, secs: f64, server: &TestServer) -> u64 {
    let conf = root.join(format!(
        "fluent-bit-{}.conf",
        log.file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(
        &conf,
        format!(
            "[SERVICE]\n    Flush 0.2\n    Grace 1\n    scheduler.base 0.2\n    scheduler.cap 0.5\n\
             [INPUT]\n    Name tail\n    Path {}\n    Read_From_Head On\n    Mem_Buf_Limit {LIMIT_MB}MB\n\
             [OUTPUT]\n    Name http\n    Match *\n    Port {}\n    Format json_lines\n    Retry_Limit False\n",
            p(log),
            server.port
        ),
    )
    .unwrap();
    let stop = root.join(format!(
        "stop-{}",
        log.file_name().unwrap().to_string_lossy()
    ));
    let mut child = spawn_child(CHILD, &conf, &stop);
    let start = Instant::now();
    let mut peak = 0;
    while start.elapsed().as_secs_f64() < secs {
        if let Some(r) = rss_bytes(child.id()) {
            peak = peak.max(r);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    peak
}

#[test]
fn slow_output_keeps_memory_within_the_limit() {
    let d = dir();
    let root = d.path();
    let server = TestServer::start();
    server.set_delay(Duration::from_millis(300));
    let empty = root.join("empty.log");
    std::fs::write(&empty, "").unwrap();
    let big = root.join("big.log");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&big).unwrap());
    let mut seq = 0;
    while f.get_ref().metadata().unwrap().len() < 64 << 20 {
        for _ in 0..10_000 {
            f.write_all(line(seq).as_bytes()).unwrap();
            seq += 1;
        }
        f.flush().unwrap();
    }
    drop(f);
    let base = peak_rss(root, &empty, 2.0, &server);
    let loaded = peak_rss(root, &big, 6.0, &server);
    let delivered = server.tally(seq).unique;
    let mb = |b: u64| b as f64 / (1 << 20) as f64;
    println!(
        "backpressure: baseline RSS {:.1} MiB, peak with a slow output {:.1} MiB (+{:.1} MiB, Mem_Buf_Limit {LIMIT_MB} MiB), {delivered} of {seq} records delivered",
        mb(base),
        mb(loaded),
        mb(loaded.saturating_sub(base))
    );
    assert!(
        delivered > 0 && delivered < seq,
        "the output must be the bottleneck: {delivered} of {seq}"
    );
    let allowed = (LIMIT_MB + 8) << 20;
    assert!(
        loaded.saturating_sub(base) <= allowed,
        "memory grew {:.1} MiB over the baseline, more than the {LIMIT_MB} MiB limit plus 8 MiB of buffers",
        mb(loaded.saturating_sub(base))
    );
}
