//! Head garbage collection: series that hold no sample after a truncation
//! leave the index and memory; live ones stay; references to dropped ones
//! fail and appending by labels creates them anew; a commit racing a
//! collection neither stores nor logs the orphaned samples, so a restart
//! replays cleanly.

use vigil_tsdb::Error;
use vigil_tsdb::db::{Db, DbOptions};
use vigil_tsdb::head::{Head, HeadOptions};
use vigil_tsdb::index::Matcher;
use vigil_tsdb::labels::Labels;

fn l(name: &str, pod: &str) -> Labels {
    Labels::new([("__name__", name), ("pod", pod)]).unwrap()
}

#[test]
fn series_without_samples_are_collected_and_live_ones_stay() {
    let dir = tempfile::tempdir().unwrap();
    let head = Head::open(dir.path(), HeadOptions::default()).unwrap();
    let mut app = head.appender();
    let live = app.append(&l("m", "a"), 1_000, 1.0).unwrap();
    let gone = app.append(&l("m", "b"), 1_000, 1.0).unwrap();
    app.commit().unwrap();
    let mut app = head.appender();
    app.append_ref(live, 500_000, 2.0).unwrap();
    app.commit().unwrap();

    head.truncate_before(100_000);
    assert_eq!(head.gc_series(), 1);
    assert_eq!(head.num_series(), 1);
    let q = head.querier(i64::MIN, i64::MAX);
    let names: Vec<String> = q
        .select(&[Matcher::equal("__name__", "m")])
        .iter()
        .map(|s| s.labels.to_string())
        .collect();
    assert_eq!(names, [r#"{__name__="m", pod="a"}"#]);
    assert_eq!(
        head.querier(i64::MIN, i64::MAX).label_values("pod", &[]),
        ["a"]
    );

    // The old reference is dead; appending by labels makes a new series.
    let mut app = head.appender();
    assert!(matches!(
        app.append_ref(gone, 600_000, 3.0),
        Err(Error::UnknownSeries(_))
    ));
    let again = app.append(&l("m", "b"), 600_000, 3.0).unwrap();
    assert_ne!(again, gone);
    app.commit().unwrap();
    assert_eq!(head.num_series(), 2);
    // Nothing left to collect: both have samples.
    assert_eq!(head.gc_series(), 0);
}

#[test]
fn a_commit_racing_a_collection_drops_the_orphans_and_replays_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    {
        let head = Head::open(dir.path(), HeadOptions::default()).unwrap();
        let mut app = head.appender();
        let a = app.append(&l("m", "a"), 1_000, 1.0).unwrap();
        let b = app.append(&l("m", "b"), 1_000, 1.0).unwrap();
        app.commit().unwrap();
        head.truncate_before(100_000);
        // An appender took its references before the collection.
        let mut app = head.appender();
        app.append_ref(a, 200_000, 5.0).unwrap();
        app.append_ref(b, 200_000, 6.0).unwrap();
        assert_eq!(head.gc_series(), 2);
        let summary = app.commit().unwrap();
        assert_eq!(summary.appended, 0);
        assert_eq!(summary.unknown_series, 2);
        // A new series after the collection, then no checkpoint: the
        // restart replays the whole WAL.
        let mut app = head.appender();
        app.append(&l("m", "c"), 300_000, 7.0).unwrap();
        app.commit().unwrap();
    }
    let head = Head::open(dir.path(), HeadOptions::default()).unwrap();
    let got: Vec<String> = head
        .querier(300_000, 300_000)
        .select(&[])
        .iter()
        .map(|s| s.labels.to_string())
        .collect();
    assert_eq!(got, [r#"{__name__="m", pod="c"}"#]);
}

#[test]
fn cutting_blocks_collects_series_that_stopped_and_restarts_without_them() {
    let dir = tempfile::tempdir().unwrap();
    let opts = || DbOptions {
        block_range_ms: 60_000,
        ..DbOptions::default()
    };
    {
        let db = Db::open(dir.path(), opts()).unwrap();
        let mut app = db.head().appender();
        app.append(&l("m", "old"), 1_000, 1.0).unwrap();
        let live = app.append(&l("m", "live"), 1_000, 1.0).unwrap();
        app.commit().unwrap();
        for t in (15_000..=200_000).step_by(15_000) {
            let mut app = db.head().appender();
            app.append_ref(live, t, 1.0).unwrap();
            app.commit().unwrap();
        }
        assert!(db.cut_blocks().unwrap() > 0);
        assert_eq!(db.head().num_series(), 1);
        // Both are still readable: the old one from its block.
        let all = db
            .select(&[Matcher::equal("__name__", "m")], 0, i64::MAX)
            .unwrap();
        assert_eq!(all.len(), 2);
    }
    let db = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(db.head().num_series(), 1);
    let all = db
        .select(&[Matcher::equal("__name__", "m")], 0, i64::MAX)
        .unwrap();
    assert_eq!(all.len(), 2);
}

#[test]
fn head_stats_rank_names_pairs_and_label_names() {
    let head = Head::in_memory(HeadOptions::default());
    let mut app = head.appender();
    for i in 0..30 {
        let pod = format!("p{i}");
        app.append(&l("http_requests_total", &pod), 1_000, 1.0)
            .unwrap();
        if i < 10 {
            app.append(&l("up", &pod), 1_000, 1.0).unwrap();
        }
    }
    app.append(
        &Labels::new([("__name__", "up"), ("job", "node")]).unwrap(),
        2_000,
        1.0,
    )
    .unwrap();
    app.commit().unwrap();
    let st = head.stats(2);
    assert_eq!(st.index.series, 41);
    assert_eq!(st.chunks, 41);
    assert_eq!(st.time_range, Some((1_000, 2_000)));
    assert_eq!(
        st.index.series_by_metric_name,
        [
            ("http_requests_total".to_string(), 30),
            ("up".to_string(), 11)
        ]
    );
    assert_eq!(
        st.index.series_by_label_pair,
        [
            ("__name__=http_requests_total".to_string(), 30),
            ("__name__=up".to_string(), 11)
        ]
    );
    assert_eq!(
        st.index.values_by_label_name,
        [("pod".to_string(), 30), ("__name__".to_string(), 2)]
    );
    // Ties at the cut are broken by name, exactly.
    let one = head.stats(1);
    assert_eq!(one.index.values_by_label_name, [("pod".to_string(), 30)]);
    assert_eq!(one.index.series_by_label_pair.len(), 1);
    assert_eq!(head.stats(0).index.series_by_label_pair, []);
}

#[test]
fn clean_tombstones_rewrites_blocks_without_the_deleted_samples() {
    let dir = tempfile::tempdir().unwrap();
    let opts = || DbOptions {
        block_range_ms: 60_000,
        retention_ms: None,
        ..DbOptions::default()
    };
    let db = Db::open(dir.path(), opts()).unwrap();
    let (a, b) = (l("m", "a"), l("m", "b"));
    for t in (0..=180_000).step_by(15_000) {
        let mut app = db.head().appender();
        app.append(&a, t, t as f64).unwrap();
        app.append(&b, t, 1.0).unwrap();
        app.commit().unwrap();
    }
    assert!(db.cut_blocks().unwrap() >= 2);
    // Delete a's first minute and the whole of b.
    db.delete(&[Matcher::equal("pod", "a")], 0, 59_999).unwrap();
    db.delete(&[Matcher::equal("pod", "b")], i64::MIN, i64::MAX)
        .unwrap();
    let before = db
        .select(&[Matcher::equal("__name__", "m")], 0, 119_999)
        .unwrap();
    assert!(db.clean_tombstones().unwrap() >= 2);
    assert_eq!(db.clean_tombstones().unwrap(), 0, "nothing left to clean");
    let after = db
        .select(&[Matcher::equal("__name__", "m")], 0, 119_999)
        .unwrap();
    assert_eq!(before, after);
    assert_eq!(after.len(), 1);
    assert!(after[0].1.iter().all(|&(t, _)| t >= 60_000));
    // The rewritten blocks hold no tombstones and reopen the same.
    drop(db);
    let db = Db::open(dir.path(), opts()).unwrap();
    assert!(db.damaged_blocks().is_empty());
    let reopened = db
        .select(&[Matcher::equal("__name__", "m")], 0, 119_999)
        .unwrap();
    assert_eq!(reopened, after);
    for e in std::fs::read_dir(dir.path().join("blocks")).unwrap() {
        assert!(!e.unwrap().path().join("tombstones").exists());
    }
}
