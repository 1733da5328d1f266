//! Select + full decode of 10,000 series × 2 h at a 15 s interval (480
//! samples each, 4.8 M samples) from the head, counters rising at different
//! rates: the read path PromQL will take.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vigil_tsdb::head::{Head, HeadOptions};
use vigil_tsdb::index::Matcher;
use vigil_tsdb::labels::Labels;

const SERIES: usize = 10_000;
const SAMPLES: i64 = 480;

fn head() -> Head {
    let head = Head::in_memory(HeadOptions::default());
    let refs: Vec<_> = {
        let mut app = head.appender();
        let refs = (0..SERIES)
            .map(|i| {
                let l = Labels::new([
                    ("__name__", "http_requests_total".to_owned()),
                    ("instance", format!("10.0.{}.{}:9100", i / 250, i % 250)),
                    ("job", ["api", "web", "db", "cache"][i % 4].to_owned()),
                ])
                .unwrap();
                app.append(&l, 0, 0.0).unwrap()
            })
            .collect();
        app.commit().unwrap();
        refs
    };
    for k in 1..SAMPLES {
        let mut app = head.appender_with_capacity(SERIES);
        for (i, &r) in refs.iter().enumerate() {
            app.append_ref(r, k * 15_000, (k * (i as i64 % 17 + 1)) as f64)
                .unwrap();
        }
        app.commit().unwrap();
    }
    head
}

fn bench(c: &mut Criterion) {
    let head = head();
    let mut g = c.benchmark_group("tsdb_select");
    g.sample_size(10);
    g.throughput(Throughput::Elements(SERIES as u64 * SAMPLES as u64));
    let all = [Matcher::equal("__name__", "http_requests_total")];
    g.bench_function("10k_series_x_2h_decode_all", |b| {
        b.iter(|| {
            let mut n = 0usize;
            let mut acc = 0.0;
            for s in head.querier(0, SAMPLES * 15_000).select(&all) {
                for x in s.samples() {
                    let (_, v) = x.unwrap();
                    acc += v;
                    n += 1;
                }
            }
            black_box((n, acc))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
