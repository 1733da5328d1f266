//! vigil-rules: parsing, the reference range query on the
//! in-memory store and on vigil-tsdb, and one evaluation of a group of 100
//! alerting rules, each over 10,000 series scraped every 15 s.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use vigil_rules::rules::{AlertingRule, GroupState, Rule, RuleGroup};
use vigil_rules::{Engine, Labels, MemoryStore, Queryable, parse};

const SERIES: usize = 10_000;
const SCRAPE: i64 = 15_000;
/// 1 h 10 min of samples: a 1 h range query plus its 5 min windows.
const SPAN: i64 = 70 * 60_000;

fn series_labels(i: usize) -> (String, String) {
    (
        format!("job{}", i % 100),
        format!("10.0.{}.{}:9100", i / 250, i % 250),
    )
}

fn memory_store() -> MemoryStore {
    let mut s = MemoryStore::new();
    for i in 0..SERIES {
        let (job, inst) = series_labels(i);
        let l = Labels::from_pairs(&[("__name__", "x_total"), ("job", &job), ("instance", &inst)]);
        let mut t = 0;
        while t <= SPAN {
            s.add_sample(&l, t, (t / SCRAPE) as f64 * (i % 7 + 1) as f64);
            t += SCRAPE;
        }
    }
    s
}

fn tsdb_store(dir: &std::path::Path) -> vigil_tsdb::db::Db {
    let db = vigil_tsdb::db::Db::open(dir, vigil_tsdb::db::DbOptions::default()).unwrap();
    let labels: Vec<vigil_tsdb::labels::Labels> = (0..SERIES)
        .map(|i| {
            let (job, inst) = series_labels(i);
            vigil_tsdb::labels::Labels::new([
                ("__name__", "x_total".to_owned()),
                ("job", job),
                ("instance", inst),
            ])
            .unwrap()
        })
        .collect();
    let mut t = 0;
    while t <= SPAN {
        let mut app = db.head().appender_with_capacity(SERIES);
        for (i, l) in labels.iter().enumerate() {
            app.append(l, t, (t / SCRAPE) as f64 * (i % 7 + 1) as f64)
                .unwrap();
        }
        app.commit().unwrap();
        t += SCRAPE;
    }
    db
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("promql");

    // A long expression: 50 rate sums joined by +.
    let big: String = (0..50)
        .map(|i| {
            format!("sum by (job) (rate(http_requests_total{{job=\"j{i}\", code=~\"5..\"}}[5m]))")
        })
        .collect::<Vec<_>>()
        .join(" + ");
    g.bench_function("parse 50-term expression", |b| {
        b.iter(|| parse(black_box(&big)).unwrap())
    });

    let engine = Engine::new();
    let q = "sum by (job) (rate(x_total[5m]))";
    let (start, end, step) = (10 * 60_000, 70 * 60_000, 15_000);
    g.sample_size(10);
    let mem = memory_store();
    g.bench_function(
        "sum by (job) (rate(x[5m])) 10k series 1h/15s, memory",
        |b| b.iter(|| engine.range_query(&mem, q, start, end, step).unwrap()),
    );
    let dir = tempfile::tempdir().unwrap();
    let db = tsdb_store(dir.path());
    g.bench_function(
        "sum by (job) (rate(x[5m])) 10k series 1h/15s, vigil-tsdb",
        |b| {
            b.iter(|| {
                engine
                    .range_query(&db as &dyn Queryable, q, start, end, step)
                    .unwrap()
            })
        },
    );

    // 100 alerting rules, one per job (100 series each).
    let rules = (0..100)
        .map(|j| {
            Rule::Alerting(AlertingRule {
                alert: format!("High{j}"),
                expr: format!("rate(x_total{{job=\"job{j}\"}}[5m]) > 0.2"),
                for_ms: 300_000,
                keep_firing_for_ms: 0,
                labels: vec![("severity".into(), "page".into())],
                annotations: vec![(
                    "summary".into(),
                    "{{ $labels.instance }} at {{ $value | humanize }}".into(),
                )],
            })
        })
        .collect();
    let group = RuleGroup {
        name: "alerts".into(),
        interval: None,
        query_offset: None,
        limit: 0,
        labels: Vec::new(),
        rules,
    };
    let mut state = GroupState::new(group).unwrap();
    let mut t = 10 * 60_000;
    g.bench_function("group of 100 alerting rules over 10k series, memory", |b| {
        b.iter(|| {
            t = if t >= SPAN { 10 * 60_000 } else { t + SCRAPE };
            state.eval(&engine, &mem, t, &mut |_| {})
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
