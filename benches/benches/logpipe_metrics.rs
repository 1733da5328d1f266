//! Records per second through vigil-logpipe's `log_to_metrics` filter: 1000
//! generated nginx access-log lines, parsed once by the built-in `nginx`
//! parser (as the pipeline does before its filters), then each iteration
//! runs the batch through the filter. Criterion's elements/s is records/s.
//!
//! - `counter_by_code`: the stack's `demo_access_log_requests_total{code}`.
//! - `counter_5xx_regex`: only `Regex code ^5` records counted, by code.
//! - `histogram_size`: response sizes (text captures read as numbers) into
//!   five buckets.
//! - `counter_by_path_capped`: a label from a field with many values, past
//!   a `Max_Label_Sets` of 4 (the overflow path).
//! - `stack_pair`: the stack's two filters one after the other.
//!
//! Measured in thread CPU time, as `logpipe_parse`: the machine is shared.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vigil_logpipe::Record;
use vigil_logpipe::config::parse_str;
use vigil_logpipe::filter::{Filter, LogMetrics, LogToMetrics};
use vigil_logpipe::parser::Parsers;

const LINES: usize = 1000;

#[path = "common/cpu_time.rs"]
mod cpu_time;
use cpu_time::CpuTime;

/// Deterministic lines: six paths, four methods, codes with one in six a
/// 500, sizes 0 to 99,999.
fn records() -> Vec<Record> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let paths = [
        "/",
        "/index.html",
        "/api/items",
        "/api/slow",
        "/api/error",
        "/healthz",
    ];
    let methods = ["GET", "GET", "POST", "DELETE"];
    let nginx = Parsers::builtin().get("nginx").unwrap();
    (0..LINES)
        .map(|i| {
            let line = format!(
                "10.0.{}.{} - - [22/Nov/2026:06:{:02}:{:02} +0000] \"{} {}?i={i} HTTP/1.1\" {} {} \"-\" \"vigil-selfload\"",
                next() % 256,
                next() % 256,
                i % 60,
                (i * 7) % 60,
                methods[(next() % 4) as usize],
                paths[(next() % 6) as usize],
                [200, 200, 200, 304, 404, 500][(next() % 6) as usize],
                next() % 100_000,
            );
            let parsed = nginx.parse(&line).unwrap();
            let mut r = Record::line("demo.access.log", parsed.time_ns.unwrap_or(0), "");
            r.fields = parsed.fields;
            r
        })
        .collect()
}

fn filter(conf: &str, store: &LogMetrics) -> LogToMetrics {
    let cfg = parse_str(conf, Path::new("bench.conf")).unwrap();
    LogToMetrics::from_section(&cfg.filters[0], store).unwrap()
}

const COUNTER: &str = "[FILTER]\n    Name log_to_metrics\n    Match *\n    Metric_Namespace demo\n    Metric_Subsystem access_log\n    Metric_Name requests_total\n    Metric_Description d\n    Label_Field code\n";
const REGEX: &str = "[FILTER]\n    Name log_to_metrics\n    Match *\n    Metric_Name errors\n    Metric_Description d\n    Regex code ^5\n    Label_Field code\n";
const HISTOGRAM: &str = "[FILTER]\n    Name log_to_metrics\n    Match *\n    Metric_Mode histogram\n    Metric_Namespace demo\n    Metric_Subsystem access_log\n    Metric_Name response_size_bytes\n    Metric_Description d\n    Value_Field size\n    Bucket 64\n    Bucket 256\n    Bucket 1024\n    Bucket 4096\n    Bucket 16384\n";
const CAPPED: &str = "[FILTER]\n    Name log_to_metrics\n    Match *\n    Metric_Name by_path\n    Metric_Description d\n    Label_Field path\n    Max_Label_Sets 4\n";

fn bench(c: &mut Criterion<CpuTime>) {
    // The cap's one warning goes to stderr before the measurements.
    let mut recs = records();
    let mut g = c.benchmark_group("log_to_metrics");
    g.throughput(Throughput::Elements(LINES as u64));
    for (name, confs) in [
        ("counter_by_code", &[COUNTER][..]),
        ("counter_5xx_regex", &[REGEX][..]),
        ("histogram_size", &[HISTOGRAM][..]),
        ("counter_by_path_capped", &[CAPPED][..]),
        ("stack_pair", &[COUNTER, HISTOGRAM][..]),
    ] {
        let store = LogMetrics::new();
        let mut filters: Vec<LogToMetrics> = confs.iter().map(|c| filter(c, &store)).collect();
        g.bench_function(name, |b| {
            b.iter(|| {
                for r in recs.iter_mut() {
                    for f in filters.iter_mut() {
                        black_box(f.filter(r));
                    }
                }
            })
        });
    }
    g.finish();
}

fn config() -> Criterion<CpuTime> {
    Criterion::default()
        .with_measurement(CpuTime(WallTime))
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench
}
criterion_main!(benches);
