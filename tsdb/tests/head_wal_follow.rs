//! Following the head's WAL from outside (remote write's watcher):
//! `Head::wal_reader` + `record::decode` see every commit, `series_labels`
//! resolves ids, and `hold_wal` keeps records through checkpoints.

use vigil_tsdb::head::record::{Record, decode};
use vigil_tsdb::head::{Head, HeadOptions};
use vigil_tsdb::labels::Labels;

fn opts() -> HeadOptions {
    HeadOptions {
        wal: vigil_wal::Options::default().segment_size(4096),
        ..HeadOptions::default()
    }
}

fn read(head: &Head, from: u64) -> Vec<(u64, Record)> {
    head.wal_reader(from)
        .unwrap()
        .unwrap()
        .map(|r| {
            let (lsn, b) = r.unwrap();
            (lsn, decode(&b, lsn).unwrap())
        })
        .collect()
}

#[test]
fn a_follower_sees_series_then_samples_and_resolves_ids() {
    let dir = tempfile::tempdir().unwrap();
    let head = Head::open(dir.path(), opts()).unwrap();
    let up = Labels::new([("__name__", "up"), ("job", "a")]).unwrap();
    let mut app = head.appender();
    let id = app.append(&up, 1_000, 1.0).unwrap();
    app.commit().unwrap();
    let mut app = head.appender();
    app.append_ref(id, 2_000, 0.0).unwrap();
    app.commit().unwrap();
    let recs = read(&head, 0);
    assert_eq!(recs.len(), 3);
    assert_eq!(recs[0].1, Record::Series(vec![(id, up.clone())]));
    assert_eq!(recs[1].1, Record::Samples(vec![(id, 1_000, 1.0)]));
    assert_eq!(recs[2].1, Record::Samples(vec![(id, 2_000, 0.0)]));
    assert_eq!(head.series_labels(id), Some(up));
    assert_eq!(head.series_labels(id + 100), None);
    assert_eq!(head.wal_bounds(), (1, 3));
}

#[test]
fn a_held_position_survives_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let head = Head::open(dir.path(), opts()).unwrap();
    let mut n = 0;
    let mut commit = |head: &Head| {
        for _ in 0..100 {
            let mut app = head.appender();
            let l = Labels::new([("__name__", "x"), ("i", &format!("{}", n % 7))]).unwrap();
            app.append(&l, n * 1000, n as f64).unwrap();
            app.commit().unwrap();
            n += 1;
        }
    };
    for _ in 0..3 {
        commit(&head);
    }
    let (_, last) = head.wal_bounds();
    head.hold_wal(Some(last - 20));
    for _ in 0..3 {
        commit(&head);
    }
    head.checkpoint().unwrap();
    let (oldest, _) = head.wal_bounds();
    assert!(oldest <= last - 20 && oldest > 1, "oldest {oldest}");
    let recs = read(&head, last - 20);
    assert_eq!(recs.first().map(|r| r.0), Some(last - 20));
    head.hold_wal(None);
    head.checkpoint().unwrap();
    assert!(head.wal_bounds().0 > last - 20);
    assert!(head.wal_reader(last - 20).is_err());
    drop(head);
    // The checkpoint is complete although segments were kept.
    let head = Head::open(dir.path(), opts()).unwrap();
    assert_eq!(head.num_series(), 7);
}
