//! `Wal::hold_front`: a reader that follows the log (remote write's WAL
//! watcher) keeps its records through checkpoints until it lets them go.

use vigil_wal::{Error, Options, Wal};

fn small() -> Options {
    Options::default().segment_size(4096)
}

fn fill(wal: &Wal, n: usize) {
    for i in 0..n {
        wal.append(&[i as u8; 200]).unwrap();
    }
}

#[test]
fn a_hold_keeps_records_through_snapshots_until_released() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), small()).unwrap();
    fill(&wal, 200);
    wal.hold_front(Some(50));
    assert_eq!(wal.front_hold(), Some(50));
    wal.save_snapshot(wal.last_lsn(), b"state").unwrap();
    assert!(wal.oldest_lsn() <= 50, "oldest {}", wal.oldest_lsn());
    assert!(
        wal.oldest_lsn() > 1,
        "segments wholly below the hold still go"
    );
    let got: Vec<_> = wal.reader(50).unwrap().map(|r| r.unwrap().0).collect();
    assert_eq!(got, (50..=200).collect::<Vec<_>>());

    // Moving the hold forward lets the next truncation take more.
    wal.hold_front(Some(150));
    wal.truncate_front(wal.last_lsn()).unwrap();
    assert!(wal.oldest_lsn() <= 150 && wal.oldest_lsn() > 50);
    assert!(matches!(wal.reader(50), Err(Error::Truncated { .. })));

    wal.hold_front(None);
    assert_eq!(wal.front_hold(), None);
    fill(&wal, 50);
    wal.save_snapshot(wal.last_lsn(), b"state").unwrap();
    assert!(wal.oldest_lsn() > 150);
}

#[test]
fn a_hold_below_the_oldest_record_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), small()).unwrap();
    fill(&wal, 100);
    wal.hold_front(Some(0));
    assert_eq!(wal.truncate_front(90).unwrap(), 0);
    assert_eq!(wal.oldest_lsn(), 1);
}
