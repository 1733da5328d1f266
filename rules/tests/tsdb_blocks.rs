//! The same queries on the in-memory store and on vigil-tsdb with its data
//! cut into blocks (through the `tsdb` adapter) give the same answers:
//! queries read blocks and the head merged, across block boundaries.

use vigil_rules::{Engine, Labels, MemoryStore, Queryable, STALE_NAN_BITS, Value};

/// A series' label pairs and samples.
type TestSeries = (Vec<(String, String)>, Vec<(i64, f64)>);

fn series() -> Vec<TestSeries> {
    let mut out = Vec::new();
    for i in 0..20 {
        let labels = vec![
            (
                "__name__".to_string(),
                if i % 2 == 0 { "req_total" } else { "temp" }.to_string(),
            ),
            ("job".to_string(), format!("j{}", i % 3)),
            ("instance".to_string(), format!("i{i}")),
        ];
        let mut samples = Vec::new();
        let mut v = 0.0;
        let mut t = 0;
        while t <= 3 * 3_600_000 {
            // Gaps, a counter reset and a stale marker now and then.
            if (t / 15_000 + i) % 37 != 0 {
                v = if (t / 15_000) % 500 == 499 {
                    1.0
                } else {
                    v + (i % 5) as f64 + 0.5
                };
                samples.push((t, v));
            } else if i % 4 == 0 {
                samples.push((t, f64::from_bits(STALE_NAN_BITS)));
            }
            t += 15_000;
        }
        out.push((labels, samples));
    }
    out
}

#[test]
fn blocks_and_head_answer_like_the_memory_store() {
    let data = series();
    let mut mem = MemoryStore::new();
    let dir = std::env::temp_dir().join(format!("vigil-rules-blocks-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut opts = vigil_tsdb::db::DbOptions {
        block_range_ms: 30 * 60_000,
        ..Default::default()
    };
    let mut wal = vigil_wal::Options::default();
    wal.sync = vigil_wal::SyncPolicy::Never;
    wal.preallocate = false;
    wal.segment_size = 1 << 20;
    opts.head.wal = wal;
    let db = vigil_tsdb::db::Db::open(&dir, opts).unwrap();
    let tl: Vec<vigil_tsdb::labels::Labels> = data
        .iter()
        .map(|(l, _)| vigil_tsdb::labels::Labels::new(l.iter().cloned()).unwrap())
        .collect();
    // Append in time order, as a scraper would.
    let mut t = 0;
    while t <= 3 * 3_600_000 {
        let mut app = db.head().appender();
        for (k, (l, samples)) in data.iter().enumerate() {
            if let Ok(i) = samples.binary_search_by_key(&t, |s| s.0) {
                let pairs: Vec<(&str, &str)> =
                    l.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
                mem.add_sample(&Labels::from_pairs(&pairs), t, samples[i].1);
                app.append(&tl[k], t, samples[i].1).unwrap();
            }
        }
        app.commit().unwrap();
        t += 15_000;
    }
    let cut = db.cut_blocks().unwrap();
    assert!(cut >= 4, "expected several blocks, got {cut}");

    let engine = Engine::new();
    let queries = [
        "req_total",
        "rate(req_total[5m])",
        "sum by (job) (increase(req_total[1h]))",
        "max_over_time(temp[45m])",
        "count_over_time({job=\"j1\"}[31m] offset 7m)",
        "avg_over_time(rate(req_total[2m])[40m:1m])",
        "resets(req_total[3h])",
        "temp @ 3600",
    ];
    for q in queries {
        for t in [600_000, 1_800_000, 3_700_000, 7_200_000, 10_000_000] {
            let a = engine.instant_query(&mem, q, t).unwrap().value;
            let b = engine
                .instant_query(&db as &dyn Queryable, q, t)
                .unwrap()
                .value;
            assert_eq!(norm(a), norm(b), "{q} at {t}");
        }
        let a = engine
            .range_query(&mem, q, 0, 3 * 3_600_000, 300_000)
            .unwrap()
            .value;
        let b = engine
            .range_query(&db as &dyn Queryable, q, 0, 3 * 3_600_000, 300_000)
            .unwrap()
            .value;
        assert_eq!(norm(a), norm(b), "{q} as a range query");
    }
    drop(db);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Results in a comparable form: sorted, NaN as its bits.
fn norm(v: Value) -> Vec<(String, i64, u64)> {
    let mut out: Vec<(String, i64, u64)> = match v {
        Value::Vector(v) => v
            .into_iter()
            .map(|s| (s.labels.to_string(), s.t, s.value.to_bits()))
            .collect(),
        Value::Matrix(m) => m
            .into_iter()
            .flat_map(|s| {
                let l = s.labels.to_string();
                s.floats
                    .into_iter()
                    .map(move |p| (l.clone(), p.t, p.v.to_bits()))
            })
            .collect(),
        Value::Scalar { t, v } => vec![(String::new(), t, v.to_bits())],
        Value::String { t, s } => vec![(s, t, 0)],
    };
    out.sort();
    out
}
