//! vigil-loadgen: many scrape targets in one process, for benchmarking a
//! monitor (ours or Prometheus) against the same load.
//!
//! `vigil-loadgen TARGETS SERIES [FIRST_PORT]` listens on 127.0.0.1 at
//! TARGETS consecutive ports from FIRST_PORT (default 20000); each serves
//! `/metrics` with SERIES series in text format 0.0.4: counters that grow
//! on every scrape and gauges that move, spread over 10 metric families
//! with a few labels, the shape of a typical exporter. It prints the
//! targets as a YAML list for a `static_configs` block, then serves until
//! killed.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

fn body(target: usize, series: usize, scrape: u64) -> String {
    let mut out = String::with_capacity(series * 80);
    let families = 10usize;
    let per = series.div_ceil(families);
    let mut written = 0;
    for f in 0..families {
        if written == series {
            break;
        }
        let counter = f % 2 == 0;
        let name = if counter {
            format!("loadgen_requests_{f}_total")
        } else {
            format!("loadgen_inflight_{f}")
        };
        let kind = if counter { "counter" } else { "gauge" };
        let _ = writeln!(out, "# HELP {name} Synthetic series for load tests.");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for i in 0..per {
            if written == series {
                break;
            }
            let v = if counter {
                (scrape * (i as u64 % 7 + 1)) as f64
            } else {
                ((scrape + i as u64 + target as u64) % 100) as f64 / 4.0
            };
            let _ = writeln!(
                out,
                "{name}{{handler=\"/api/v{}/item\",method=\"{}\",code=\"{}\",shard=\"{i}\"}} {v}",
                i % 5,
                ["GET", "POST", "PUT"][i % 3],
                [200, 404, 500][i % 3],
            );
            written += 1;
        }
    }
    out
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parse = |i: usize, default: usize| -> usize {
        args.get(i)
            .map(|s| {
                s.parse().unwrap_or_else(|_| {
                    eprintln!("usage: vigil-loadgen TARGETS SERIES [FIRST_PORT]");
                    std::process::exit(2)
                })
            })
            .unwrap_or(default)
    };
    let targets = parse(0, 200);
    let series = parse(1, 1000);
    let first = parse(2, 20000);
    let mut handles = Vec::new();
    for t in 0..targets {
        let addr = format!("127.0.0.1:{}", first + t);
        let server = match tiny_http::Server::http(&addr) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("vigil-loadgen: {addr}: {e}");
                std::process::exit(1);
            }
        };
        println!("- '{addr}'");
        let scrapes = Arc::new(AtomicU64::new(0));
        handles.push(std::thread::spawn(move || {
            let header = tiny_http::Header::from_bytes(
                &b"Content-Type"[..],
                &b"text/plain; version=0.0.4; charset=utf-8"[..],
            )
            .expect("static header");
            for req in server.incoming_requests() {
                let n = scrapes.fetch_add(1, Ordering::Relaxed);
                let resp = tiny_http::Response::from_string(body(t, series, n))
                    .with_header(header.clone());
                let _ = req.respond(resp);
            }
        }));
    }
    for h in handles {
        let _ = h.join();
    }
}
