//! vigil-logpipe parser throughput on generated log lines: the nginx
//! combined regex (remote, host, user, time, method, path, code, size,
//! referer, agent; `Time_Format %d/%b/%Y:%H:%M:%S %z`), the JSON parser and
//! logfmt. `nginx_regex` is the built-in `nginx` parser (a one-pass
//! pattern); `nginx_regex_backtracking` the same fields through fluent-bit's
//! pattern with lazy and optional groups, which only a backtracker runs.
//! Each iteration parses a batch of varied lines into records (fields, time
//! read), as the pipeline does; criterion prints bytes/s, and ns/line = time
//! per batch / LINES.
//!
//! Measured in thread CPU time (`CLOCK_THREAD_CPUTIME_ID`), not wall time:
//! the benchmark machine is shared, and wall time would count the time other
//! processes hold the core.
//!
//! The pipeline's target is 3x Fluent Bit's 26 MB/s for tail + regex + file
//! output on one core, so the regex parser alone must run well above 80 MB/s.

use std::hint::black_box;

use criterion::measurement::WallTime;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vigil_logpipe::parser::{LineParser, Parsers};

const LINES: usize = 1000;

#[path = "common/cpu_time.rs"]
mod cpu_time;
use cpu_time::CpuTime;

/// A small deterministic generator (xorshift) so every run sees the same
/// lines.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

const PATHS: &[&str] = &[
    "/",
    "/index.html",
    "/api/v1/users/12345/orders?page=2&limit=50",
    "/static/js/app.3f9a1c.js",
    "/healthz",
    "/images/logo-large@2x.png",
];
const AGENTS: &[&str] = &[
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "curl/8.5.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
    "kube-probe/1.29",
];
const METHODS: &[&str] = &["GET", "GET", "GET", "POST", "PUT", "DELETE"];
const LEVELS: &[&str] = &["debug", "info", "info", "warn", "error"];

fn nginx_lines() -> Vec<String> {
    let mut g = Gen(0x9E37_79B9_7F4A_7C15);
    (0..LINES)
        .map(|i| {
            format!(
                "10.{}.{}.{} - - [{:02}/Mar/2024:{:02}:{:02}:{:02} +0000] \"{} {} HTTP/1.1\" {} {} \"https://example.com/\" \"{}\"",
                g.next() % 256,
                g.next() % 256,
                g.next() % 256,
                1 + i % 28,
                i % 24,
                i % 60,
                (i * 7) % 60,
                g.pick(METHODS),
                g.pick(PATHS),
                [200, 200, 200, 304, 404, 500][(g.next() % 6) as usize],
                g.next() % 100_000,
                g.pick(AGENTS),
            )
        })
        .collect()
}

fn json_lines() -> Vec<String> {
    let mut g = Gen(0x2545_F491_4F6C_DD1D);
    (0..LINES)
        .map(|i| {
            format!(
                "{{\"time\":\"2024-03-01T12:{:02}:{:02}.{:06}Z\",\"level\":\"{}\",\"logger\":\"com.example.orders.OrderService\",\"msg\":\"order processed for {}\",\"order_id\":{},\"amount\":{}.{:02},\"user\":{{\"id\":{},\"country\":\"DE\"}},\"trace_id\":\"{:016x}\"}}",
                i % 60,
                (i * 7) % 60,
                g.next() % 1_000_000,
                g.pick(LEVELS),
                g.pick(PATHS),
                g.next() % 10_000_000,
                g.next() % 1000,
                g.next() % 100,
                g.next() % 100_000,
                g.next(),
            )
        })
        .collect()
}

fn logfmt_lines() -> Vec<String> {
    let mut g = Gen(0xD1B5_4A32_D192_ED03);
    (0..LINES)
        .map(|i| {
            format!(
                "ts=2024-03-01T12:{:02}:{:02}Z level={} caller=server.go:{} msg=\"request completed\" method={} path={} status={} duration={}ms bytes={}",
                i % 60,
                (i * 7) % 60,
                g.pick(LEVELS),
                g.next() % 500,
                g.pick(METHODS),
                g.pick(PATHS),
                [200, 200, 404, 500][(g.next() % 4) as usize],
                g.next() % 1000,
                g.next() % 100_000,
            )
        })
        .collect()
}

fn run(
    c: &mut Criterion<CpuTime>,
    name: &str,
    parser: &dyn LineParser,
    lines: &[String],
    expect_time: bool,
) {
    // Every line must parse (and carry a time where the parser reads one),
    // or the bench would measure the failure path.
    for l in lines {
        let p = parser
            .parse(l)
            .unwrap_or_else(|e| panic!("{name}: {e}: {l}"));
        assert_eq!(p.time_ns.is_some(), expect_time, "{name}: {l}");
    }
    let bytes: usize = lines.iter().map(|l| l.len()).sum();
    let mut g = c.benchmark_group("logpipe_parse");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function(name, |b| {
        b.iter(|| {
            let mut n = 0usize;
            for l in lines {
                let p = parser.parse(black_box(l)).expect("parses");
                n += p.fields.len();
            }
            black_box(n)
        })
    });
    g.finish();
}

fn bench(c: &mut Criterion<CpuTime>) {
    let ps = Parsers::builtin();
    run(
        c,
        "nginx_regex",
        &*ps.get("nginx").unwrap(),
        &nginx_lines(),
        true,
    );
    // The same lines through a pattern the regex crate cannot run one-pass
    // (the path and protocol classes overlap), so captures take its
    // backtracker: the figure for arbitrary user patterns.
    let post = vigil_logpipe::parser::TimeAndTypes {
        time_format: Some(
            vigil_logpipe::strftime::TimeFormat::new("%d/%b/%Y:%H:%M:%S %z").unwrap(),
        ),
        ..Default::default()
    };
    let backtracking = vigil_logpipe::parser::RegexParser::new(
        "nginx_backtracking",
        r#"^(?<remote>\S+) (?<host>\S+) (?<user>\S+) \[(?<time>[^\]]+)\] "(?<method>\S+) (?<path>[^ "]+)[^"]*" (?<code>\d+) (?<size>\d+|-)(?: "(?<referer>[^"]*)" "(?<agent>[^"]*)")?"#,
        post,
    )
    .unwrap();
    run(
        c,
        "nginx_regex_backtracking",
        &backtracking,
        &nginx_lines(),
        true,
    );
    run(c, "json", &*ps.get("json").unwrap(), &json_lines(), false);
    run(
        c,
        "logfmt",
        &*ps.get("logfmt").unwrap(),
        &logfmt_lines(),
        false,
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(CpuTime(WallTime));
    targets = bench
}
criterion_main!(benches);
