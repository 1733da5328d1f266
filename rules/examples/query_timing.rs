//! Times the reference workload on the in-memory store:
//! `sum by (job) (rate(x[5m]))` over 10,000 series, a 1 h range at a 15 s
//! step (241 steps), with 15 s scrapes over 1 h 10 m.
//!
//! `cargo run --release -p vigil-rules --example query_timing`

use std::time::Instant;

use vigil_rules::{Engine, Labels, MemoryStore, Value};

fn main() {
    let mut store = MemoryStore::new();
    let series = 10_000;
    let scrape = 15_000;
    let span = 70 * 60_000;
    for i in 0..series {
        let l = Labels::from_pairs(&[
            ("__name__", "x"),
            ("job", &format!("job{}", i % 10)),
            ("instance", &format!("host{i}:9100")),
        ]);
        let mut v = 0.0;
        let mut t = 0;
        while t <= span {
            v += (i % 7) as f64;
            store.add_sample(&l, t, v);
            t += scrape;
        }
    }
    let engine = Engine::new();
    let (start, end, step) = (10 * 60_000, 70 * 60_000, 15_000);
    if std::env::var_os("TIMING_ALL").is_some() {
        for q in ["x", "rate(x[5m])", "sum(x)", "count_over_time(x[5m])"] {
            let t0 = Instant::now();
            engine
                .range_query(&store, q, start, end, step)
                .expect("query runs");
            println!("{q}: {:.1} ms", t0.elapsed().as_secs_f64() * 1e3);
        }
    }
    let t0 = Instant::now();
    let r = engine
        .range_query(&store, "sum by (job) (rate(x[5m]))", start, end, step)
        .expect("query runs");
    let took = t0.elapsed();
    let Value::Matrix(m) = r.value else {
        panic!("expected a matrix")
    };
    println!(
        "sum by (job) (rate(x[5m])): {series} series, {} steps, {} result series, {:.1} ms",
        (end - start) / step + 1,
        m.len(),
        took.as_secs_f64() * 1e3
    );
}
