//! Exposition parsing throughput: vigil-exposition against prometheus-parse
//! (its default API, `Scrape::parse` over lines), on captured real scrapes.
//!
//! Vigil's side decodes every label pair (name and value, unescaped) and reads
//! every value, so the work compares with a parser that builds owned samples.
//! `ns/sample` = time per file / samples in it; criterion prints bytes/s.
//!
//! The `.om` groups read the same captures as OpenMetrics, as this crate's
//! encoder writes them (timestamps in seconds, `# EOF`); vigil only, as
//! prometheus-parse reads text 0.0.4 alone.
//!
//! Measured in thread CPU time (`CLOCK_THREAD_CPUTIME_ID`), not wall time:
//! the benchmark machine is shared by several builds at once, and wall time
//! counts the time other processes hold the core (it varied 4x between runs
//! minutes apart; CPU time did not).

use std::hint::black_box;
use std::path::PathBuf;

use criterion::measurement::WallTime;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vigil_exposition::Format;
use vigil_exposition::encode::encode_families;
use vigil_exposition::parse::{Entry, Mode, Parser, parse_families};

#[path = "common/cpu_time.rs"]
mod cpu_time;
use cpu_time::CpuTime;

fn corpus(rel: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/corpus")
        .join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{} (../shared must exist): {e}", p.display()))
}

/// Parses with the zero-copy API, decoding every label; returns a checksum.
fn vigil_parse(input: &[u8], format: Format) -> (usize, f64) {
    let mut n = 0;
    let mut acc = 0.0;
    for e in Parser::new(input, format) {
        if let Entry::Sample(s) = e.expect("corpus parses") {
            for (name, value) in s.labels.iter() {
                acc += (name.as_cow().len() + value.as_cow().len()) as f64;
            }
            acc += s.value;
            n += 1;
        }
    }
    (n, acc)
}

fn bench(c: &mut Criterion<CpuTime>) {
    let files = [
        ("node_exporter", "exposition/node_exporter.prom"),
        ("federate", "exposition/federate.prom"),
        ("alltypes237", "textparse/alltypes.237mfs.prom.txt"),
    ];
    for (label, rel) in files {
        let input = corpus(rel);
        let text = String::from_utf8(input.clone()).expect("utf-8 corpus");
        let (samples, _) = vigil_parse(&input, Format::Text);
        let mut g = c.benchmark_group(format!("parse/{label}"));
        g.throughput(Throughput::Bytes(input.len() as u64));
        eprintln!("{label}: {} bytes, {samples} samples", input.len());
        g.bench_function("vigil", |b| {
            b.iter(|| black_box(vigil_parse(black_box(&input), Format::Text)))
        });
        g.bench_function("vigil_no_label_decode", |b| {
            b.iter(|| {
                let mut acc = 0.0;
                for e in Parser::new(black_box(&input), Format::Text) {
                    if let Entry::Sample(s) = e.expect("corpus parses") {
                        acc += s.value;
                    }
                }
                black_box(acc)
            })
        });
        g.bench_function("vigil_owned_families", |b| {
            b.iter(|| {
                black_box(parse_families(black_box(&input), Format::Text, Mode::Scrape).unwrap())
            })
        });
        g.bench_function("prometheus_parse", |b| {
            b.iter(|| {
                let lines = black_box(&text).lines().map(|l| Ok(l.to_owned()));
                black_box(prometheus_parse::Scrape::parse(lines).unwrap())
            })
        });
        g.finish();

        let families = parse_families(&input, Format::Text, Mode::Scrape).expect("corpus parses");
        let mut om = Vec::new();
        encode_families(&families, Format::OpenMetrics, &mut om);
        let (om_samples, _) = vigil_parse(&om, Format::OpenMetrics);
        assert_eq!(
            om_samples, samples,
            "{label}: OpenMetrics holds the same samples"
        );
        let mut g = c.benchmark_group(format!("parse/{label}.om"));
        g.throughput(Throughput::Bytes(om.len() as u64));
        eprintln!("{label}.om: {} bytes, {om_samples} samples", om.len());
        g.bench_function("vigil", |b| {
            b.iter(|| black_box(vigil_parse(black_box(&om), Format::OpenMetrics)))
        });
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(CpuTime(WallTime));
    targets = bench
}
criterion_main!(benches);
