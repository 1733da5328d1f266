//! The store against a model: random appends, block cuts, compactions
//! (`compact_oldest` and the planner of `Db::compact`), deletions,
//! restarts and queries; whatever was committed reads back exactly once,
//! from head and blocks merged.

use std::collections::BTreeMap;

use proptest::prelude::*;
use vigil_tsdb::db::{Db, DbOptions};
use vigil_tsdb::index::Matcher;
use vigil_tsdb::labels::Labels;

#[derive(Debug, Clone)]
enum Op {
    Append(usize, i64),
    Commit,
    Cut,
    Compact(usize),
    Plan,
    Restart,
    Delete(usize, i64, i64),
    Query(i64, i64),
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        10 => (0usize..4, 1i64..400).prop_map(|(s, d)| Op::Append(s, d)),
        3 => Just(Op::Commit),
        2 => Just(Op::Cut),
        1 => (2usize..4).prop_map(Op::Compact),
        2 => Just(Op::Plan),
        1 => Just(Op::Restart),
        1 => (0usize..5, 0i64..6000, 0i64..1500).prop_map(|(s, a, w)| Op::Delete(s, a, a + w)),
        2 => (0i64..6000, 0i64..6000).prop_map(|(a, w)| Op::Query(a, a + w)),
    ];
    proptest::collection::vec(op, 1..120)
}

fn labels(s: usize) -> Labels {
    Labels::new([("__name__", "m".to_owned()), ("s", s.to_string())]).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    #[test]
    fn db_agrees_with_model(ops in ops()) {
        let dir = tempfile::tempdir().unwrap();
        let opts = DbOptions {
            block_range_ms: 1000,
            retention_ms: None,
            head: vigil_tsdb::head::HeadOptions {
                chunk_policy: vigil_tsdb::chunk::ChunkPolicy { max_samples: 5, max_span_ms: 700 },
                ..Default::default()
            },
            ..DbOptions::default()
        };
        let mut db = Db::open(dir.path(), opts.clone()).unwrap();
        let mut model: BTreeMap<Labels, BTreeMap<i64, f64>> = BTreeMap::new();
        let mut pending: Vec<(usize, i64, f64)> = Vec::new();
        let mut clock = [0i64; 4];
        for op in ops {
            match op {
                Op::Append(s, d) => {
                    clock[s] += d;
                    pending.push((s, clock[s], (clock[s] * 3) as f64));
                }
                Op::Commit => {
                    let min_valid = db.head().min_valid_time();
                    let mut app = db.head().appender();
                    for &(s, t, v) in &pending {
                        let r = app.append(&labels(s), t, v);
                        // Ranges already cut into blocks refuse samples.
                        prop_assert_eq!(r.is_err(), t < min_valid, "{:?}", r);
                    }
                    app.commit().unwrap();
                    for (s, t, v) in pending.drain(..) {
                        if t >= min_valid {
                            model.entry(labels(s)).or_default().insert(t, v);
                        }
                    }
                }
                Op::Cut => {
                    db.cut_blocks().unwrap();
                }
                Op::Compact(n) => {
                    db.compact_oldest(n).unwrap();
                }
                Op::Plan => {
                    db.compact().unwrap();
                    let r = db.block_ranges();
                    prop_assert!(r.windows(2).all(|w| w[0].1 <= w[1].0), "overlaps left: {:?}", r);
                    prop_assert_eq!(db.compact().unwrap(), 0, "a plan was left: {:?}", r);
                }
                Op::Restart => {
                    pending.clear();
                    drop(db);
                    db = Db::open(dir.path(), opts.clone()).unwrap();
                    prop_assert!(db.damaged_blocks().is_empty());
                }
                Op::Delete(s, mint, maxt) => {
                    // Series s, or (s == 4) every series.
                    let m = if s == 4 {
                        Matcher::equal("__name__", "m")
                    } else {
                        Matcher::equal("s", s.to_string())
                    };
                    db.delete(&[m], mint, maxt).unwrap();
                    for (l, samples) in model.iter_mut() {
                        if s == 4 || l.get("s") == Some(s.to_string().as_str()) {
                            let dead: Vec<i64> = samples.range(mint..=maxt).map(|(&t, _)| t).collect();
                            for t in dead {
                                samples.remove(&t);
                            }
                        }
                    }
                }
                Op::Query(mint, maxt) => {
                    let got = db.select(&[Matcher::equal("__name__", "m")], mint, maxt).unwrap();
                    let want: Vec<(Labels, Vec<(i64, f64)>)> = model
                        .iter()
                        .map(|(l, m)| (l.clone(), m.range(mint..=maxt).map(|(&t, &v)| (t, v)).collect::<Vec<_>>()))
                        .filter(|(_, v)| !v.is_empty())
                        .collect();
                    prop_assert_eq!(&got, &want, "query [{}, {}], blocks {:?}", mint, maxt, db.block_ranges());
                    // The lazy path, read series by series in reverse
                    // order, gives the same.
                    let lazy = db.select_series(&[Matcher::equal("__name__", "m")], mint, maxt).unwrap();
                    let mut back: Vec<(Labels, Vec<(i64, f64)>)> = Vec::new();
                    for s in lazy.iter().rev() {
                        let v: Vec<(i64, f64)> = s.samples().collect::<Result<_, _>>().unwrap();
                        if !v.is_empty() {
                            back.push((s.labels.clone(), v));
                        }
                    }
                    back.reverse();
                    prop_assert_eq!(back, want);
                }
            }
        }
    }
}

#[test]
fn retention_by_time_and_size() {
    let dir = tempfile::tempdir().unwrap();
    let opts = DbOptions {
        block_range_ms: 1000,
        retention_ms: Some(2500),
        ..DbOptions::default()
    };
    let db = Db::open(dir.path(), opts).unwrap();
    let mut app = db.head().appender();
    for t in (0..6000).step_by(100) {
        app.append(&labels(0), t, 1.0).unwrap();
    }
    app.commit().unwrap();
    assert_eq!(db.cut_blocks().unwrap(), 5);
    // Newest sample 5900: blocks ending at or before 3400 go.
    assert_eq!(db.apply_retention().unwrap(), 3);
    assert_eq!(db.block_ranges(), [(3000, 4000), (4000, 5000)]);
    let got = db.select(&[Matcher::equal("s", "0")], 0, 10_000).unwrap();
    assert_eq!(got[0].1.first().map(|x| x.0), Some(3000));
    drop(db);
    let opts = DbOptions {
        block_range_ms: 1000,
        retention_ms: None,
        retention_bytes: Some(1),
        ..DbOptions::default()
    };
    let db = Db::open(dir.path(), opts).unwrap();
    assert_eq!(
        db.apply_retention().unwrap(),
        2,
        "over the size limit: every block goes"
    );
    assert!(db.block_ranges().is_empty());
}

/// A day of cuts compacted by the planner ends in Prometheus's levels (3×
/// the block range, then 9×, …), the newest block left alone, every sample
/// still there once; a block whose tombstones name most of its series is
/// rewritten without them.
#[test]
fn planner_compacts_into_levels_and_rewrites_tombstoned_blocks() {
    let dir = tempfile::tempdir().unwrap();
    // A tenth of the retention is 10 s: ranges of 1, 3 and 9 s.
    let opts = DbOptions {
        block_range_ms: 1000,
        retention_ms: Some(100_000),
        ..DbOptions::default()
    };
    let db = Db::open(dir.path(), opts.clone()).unwrap();
    let mut app = db.head().appender();
    for s in 0..10 {
        for t in (0..24_500).step_by(250) {
            app.append(&labels(s), t, t as f64).unwrap();
        }
    }
    app.commit().unwrap();
    assert_eq!(db.cut_blocks().unwrap(), 24);
    let before = db.select(&[], i64::MIN, i64::MAX).unwrap();
    assert!(db.compact().unwrap() > 0);
    assert_eq!(
        db.block_ranges(),
        [
            (0, 9000),
            (9000, 18_000),
            (18_000, 21_000),
            (21_000, 22_000),
            (22_000, 23_000),
            (23_000, 24_000)
        ]
    );
    assert_eq!(db.select(&[], i64::MIN, i64::MAX).unwrap(), before);
    // Deleting 3 of the 10 series in the big [0, 9000) block: more than 5 %.
    for s in 0..3 {
        db.delete(&[Matcher::equal("s", s.to_string())], 0, 8999)
            .unwrap();
    }
    assert_eq!(db.compact().unwrap(), 1);
    let after = db.select(&[Matcher::equal("s", "1")], 0, 8999).unwrap();
    assert!(after.is_empty(), "{after:?}");
    assert_eq!(db.block_ranges()[0], (0, 9000));
    drop(db);
    // Compacted and rewritten blocks open clean.
    let db = Db::open(dir.path(), opts).unwrap();
    assert!(db.damaged_blocks().is_empty());
    assert_eq!(
        db.select(&[Matcher::equal("s", "5")], i64::MIN, i64::MAX)
            .unwrap(),
        before[5..6].to_vec()
    );
}

/// `Db::select_series` decodes a block's chunks only for the series that
/// are iterated: with another series' chunk damaged on disk, a query that
/// lists every series and reads one succeeds, where the eager `select`
/// fails.
#[test]
fn lazy_select_decodes_only_what_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let opts = DbOptions {
        block_range_ms: 1000,
        retention_ms: None,
        ..DbOptions::default()
    };
    let db = Db::open(dir.path(), opts.clone()).unwrap();
    let mut app = db.head().appender();
    for s in 0..4 {
        // s=0 one millisecond off the others: the block shares a timestamp
        // section between chunks with equal timestamps (FORMAT.md,
        // `chunks`), and the chunk damaged below must be s=0's alone.
        let off = i64::from(s == 0);
        for t in (0..1500).step_by(100) {
            app.append(&labels(s), t + off, (t + s as i64) as f64)
                .unwrap();
        }
    }
    app.commit().unwrap();
    assert_eq!(db.cut_blocks().unwrap(), 1);
    drop(db);
    // Series s=0 comes first in the block: damage its chunk.
    let block = std::fs::read_dir(dir.path().join("blocks"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let p = block.join("chunks");
    let mut bytes = std::fs::read(&p).unwrap();
    bytes[12] ^= 0x55;
    std::fs::write(&p, &bytes).unwrap();
    let db = Db::open(dir.path(), opts).unwrap();
    let m = [Matcher::equal("__name__", "m")];
    assert!(db.select(&m, 0, 2000).is_err(), "the eager path reads s=0");
    let series = db.select_series(&m, 0, 2000).unwrap();
    assert_eq!(series.len(), 4);
    let two: Vec<(i64, f64)> = series[2].samples().collect::<Result<_, _>>().unwrap();
    let want: Vec<(i64, f64)> = (0..1500)
        .step_by(100)
        .map(|t| (t, (t + 2) as f64))
        .collect();
    assert_eq!(two, want, "block and head merged");
    let zero: Result<Vec<(i64, f64)>, _> = series[0].samples().collect();
    assert!(zero.unwrap_err().to_string().contains("chunks"));
}
