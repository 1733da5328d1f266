//! `vigil-demo [SECONDS] [DIR]`: the crates working together, until
//! vigil-stack exists. A demo service instruments itself with
//! vigil-exposition and serves `/metrics` on 127.0.0.1; a scrape loop fetches
//! it every second (negotiating OpenMetrics), parses it and stores the
//! samples in a vigil-tsdb store in DIR (a temporary directory by default);
//! each round it answers PromQL queries with vigil-rules over the store and
//! prints them. At the end it cuts the data into blocks, reopens the store
//! and queries it again.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use vigil_examples::scrape;
use vigil_exposition::Format;
use vigil_exposition::client::{Counter, Family, Histogram, ProcessCollector, Registry};
use vigil_rules::{Engine, Value};
use vigil_tsdb::db::{Db, DbOptions};

/// Serves `registry` on `listener`, one request per connection.
fn serve(listener: TcpListener, registry: Registry) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let mut reader = BufReader::new(stream);
        let mut accept = None;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("accept") {
                    accept = Some(v.trim().to_owned());
                }
            }
        }
        let format = Format::negotiate(accept.as_deref());
        let mut body = Vec::new();
        registry.encode(format, &mut body);
        let mut stream = reader.into_inner();
        let _ = write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            format.content_type(),
            body.len()
        );
        let _ = stream.write_all(&body);
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn print_query(engine: &Engine, db: &Db, query: &str, t: i64) {
    match engine.instant_query(db, query, t) {
        Ok(r) => match r.value {
            Value::Vector(v) if v.is_empty() => println!("  {query}  =>  (no data yet)"),
            Value::Vector(v) => {
                for s in v {
                    println!("  {query}  =>  {} {:.4}", s.labels, s.value);
                }
            }
            Value::Scalar { v, .. } => println!("  {query}  =>  {v}"),
            other => println!("  {query}  =>  {other:?}"),
        },
        Err(e) => println!("  {query}  =>  error: {e}"),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let seconds: u64 = args.first().map_or(Ok(8), |s| s.parse())?;
    let tmp;
    let dir = match args.get(1) {
        Some(d) => std::path::PathBuf::from(d),
        None => {
            tmp = std::env::temp_dir().join(format!("vigil-demo-{}", std::process::id()));
            tmp.clone()
        }
    };

    // The instrumented service.
    let registry = Registry::with_prefix("demo");
    let requests = Family::<[&'static str; 2], Counter>::with_label_names(&["path", "code"]);
    registry.register("http_requests", "Requests served.", requests.clone())?;
    let latency = Histogram::new([0.005, 0.01, 0.05, 0.1, 0.5]);
    registry.register_with_unit(
        "request_duration",
        "Request latency.",
        "seconds",
        latency.clone(),
    )?;
    registry.register_collector(ProcessCollector::new());
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?.to_string();
    std::thread::spawn({
        let registry = registry.clone();
        move || serve(listener, registry)
    });
    println!("demo service: http://{addr}/metrics");
    println!("store: {}", dir.display());

    let db = Db::open(
        &dir,
        DbOptions {
            block_range_ms: 2_000,
            ..DbOptions::default()
        },
    )?;
    let engine = Engine::new();
    let queries = [
        "up",
        "sum by (code) (rate(demo_http_requests_total[3s]))",
        "histogram_quantile(0.9, rate(demo_request_duration_seconds_bucket[3s]))",
        "demo_process_resident_memory_bytes / 2^20",
    ];
    for round in 0..seconds {
        // Traffic: some requests, a few errors, latencies spread out.
        for i in 0..(50 + round * 10) {
            let code = if i % 17 == 0 { "500" } else { "200" };
            requests.with(&["/api", code], |c| c.inc());
            latency.observe(0.002 * ((i % 40) as f64 + 1.0));
        }
        let t = now_ms();
        let report = scrape(&db, &addr, "demo", t)?;
        println!(
            "scrape {}: up={} samples={}",
            round + 1,
            report.up,
            report.samples
        );
        for q in &queries {
            print_query(&engine, &db, q, t);
        }
        std::thread::sleep(Duration::from_secs(1));
    }

    let written = db.cut_blocks()?;
    let series = db.head().num_series();
    drop(db);
    let db = Db::open(
        &dir,
        DbOptions {
            block_range_ms: 2_000,
            ..DbOptions::default()
        },
    )?;
    println!(
        "cut {written} block(s) to disk; reopened the store: {} block(s), {series} series",
        db.block_ranges().len()
    );
    print_query(&engine, &db, "count(count_over_time(up[1h]))", now_ms());
    print_query(
        &engine,
        &db,
        "sum(count_over_time({job=\"demo\"}[1h]))",
        now_ms(),
    );
    drop(db);
    if args.get(1).is_none() {
        std::fs::remove_dir_all(&dir)?;
    }
    Ok(())
}
