//! Behaviour of the log on the real file system, one test per behaviour.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::read_all;
use vigil_wal::{Error, Options, SyncPolicy, Wal};

fn small() -> Options {
    Options::default().segment_size(4096)
}

#[test]
fn lsns_start_at_one_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), small()).unwrap();
    assert_eq!(wal.last_lsn(), 0);
    assert_eq!(wal.append(b"a").unwrap(), 1);
    assert_eq!(wal.append(b"b").unwrap(), 2);
    assert_eq!(wal.durable_lsn(), 2);
    drop(wal);
    let wal = Wal::open(dir.path(), small()).unwrap();
    assert_eq!(wal.last_lsn(), 2);
    assert_eq!(wal.append(b"c").unwrap(), 3);
    assert_eq!(
        read_all(&wal, 1),
        vec![(1, b"a".to_vec()), (2, b"b".to_vec()), (3, b"c".to_vec())]
    );
    assert_eq!(read_all(&wal, 3), vec![(3, b"c".to_vec())]);
}

#[test]
fn records_span_many_segments_and_read_back_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), small()).unwrap();
    for i in 0..500u32 {
        let rec = vec![(i % 251) as u8; (i as usize * 7) % 300];
        assert_eq!(wal.append(&rec).unwrap(), u64::from(i) + 1);
    }
    let segs = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "wal")
        })
        .count();
    assert!(segs > 10, "only {segs} segments");
    let check = |wal: &Wal| {
        let all = read_all(wal, 1);
        assert_eq!(all.len(), 500);
        for (i, (lsn, rec)) in all.iter().enumerate() {
            assert_eq!(*lsn, i as u64 + 1);
            assert_eq!(rec.len(), (i * 7) % 300);
            assert!(rec.iter().all(|&b| b == (i % 251) as u8));
        }
    };
    check(&wal);
    drop(wal);
    let wal = Wal::open(dir.path(), small()).unwrap();
    check(&wal);
    // Start in the middle of a segment.
    assert_eq!(read_all(&wal, 250)[0].0, 250);
}

#[test]
fn batch_gets_consecutive_lsns() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), small()).unwrap();
    wal.append(b"x").unwrap();
    let r = wal.append_batch(&[b"1".as_slice(), b"2", b"3"]).unwrap();
    assert_eq!(r, 2..5);
    let empty: [&[u8]; 0] = [];
    assert_eq!(wal.append_batch(&empty).unwrap(), 5..5);
    assert_eq!(read_all(&wal, 2).len(), 3);
}

#[test]
fn every_policy_round_trips() {
    for policy in [
        SyncPolicy::Always,
        SyncPolicy::Never,
        SyncPolicy::Batch {
            max_delay: Duration::from_millis(2),
            max_bytes: 1000,
        },
    ] {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::open(dir.path(), small().sync(policy).write_buffer(700)).unwrap();
        for i in 0..300u32 {
            wal.append(&i.to_le_bytes()).unwrap();
        }
        assert_eq!(wal.sync().unwrap(), 300, "{policy:?}");
        assert_eq!(read_all(&wal, 1).len(), 300);
        drop(wal);
        let wal = Wal::open(dir.path(), small()).unwrap();
        assert_eq!(wal.last_lsn(), 300, "{policy:?}");
        let all = read_all(&wal, 1);
        for (i, (_, rec)) in all.iter().enumerate() {
            assert_eq!(rec[..], (i as u32).to_le_bytes());
        }
    }
}

#[test]
fn batch_policy_becomes_durable_without_sync() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(
        dir.path(),
        small().sync(SyncPolicy::Batch {
            max_delay: Duration::from_millis(5),
            max_bytes: 1 << 20,
        }),
    )
    .unwrap();
    wal.append(b"later").unwrap();
    let t = std::time::Instant::now();
    while wal.durable_lsn() < 1 {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "flusher never synced"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn readers_see_only_durable_records_under_never() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), small().sync(SyncPolicy::Never)).unwrap();
    wal.append(b"a").unwrap();
    assert_eq!(wal.durable_lsn(), 0);
    assert!(read_all(&wal, 1).is_empty());
    wal.sync().unwrap();
    assert_eq!(read_all(&wal, 1).len(), 1);
}

#[test]
fn many_threads_append_concurrently() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Arc::new(Wal::open(dir.path(), Options::default().segment_size(64 << 10)).unwrap());
    let threads: Vec<_> = (0..8u8)
        .map(|t| {
            let wal = wal.clone();
            std::thread::spawn(move || {
                let mut mine = Vec::new();
                for i in 0..200u32 {
                    let mut rec = vec![t];
                    rec.extend_from_slice(&i.to_le_bytes());
                    let lsn = wal.append(&rec).unwrap();
                    assert!(wal.durable_lsn() >= lsn);
                    mine.push(lsn);
                }
                mine
            })
        })
        .collect();
    let mut all: Vec<u64> = threads
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    all.sort_unstable();
    assert_eq!(all, (1..=1600).collect::<Vec<_>>());
    // Each thread's records are in its own order.
    let mut next = [0u32; 8];
    for (_, rec) in read_all(&wal, 1) {
        let t = rec[0] as usize;
        assert_eq!(u32::from_le_bytes(rec[1..5].try_into().unwrap()), next[t]);
        next[t] += 1;
    }
    assert_eq!(next, [200; 8]);
}

#[test]
fn follower_sees_records_as_they_are_appended() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Arc::new(Wal::open(dir.path(), small()).unwrap());
    let mut reader = wal.reader(1).unwrap();
    assert!(reader.next_timeout(Duration::from_millis(10)).is_none());
    let w = wal.clone();
    let writer = std::thread::spawn(move || {
        for i in 0..200u32 {
            w.append(&i.to_le_bytes()).unwrap();
            if i % 50 == 0 {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    });
    for i in 0..200u32 {
        let (lsn, rec) = reader
            .next_timeout(Duration::from_secs(10))
            .expect("timed out waiting for a record")
            .unwrap();
        assert_eq!(lsn, u64::from(i) + 1);
        assert_eq!(rec[..], i.to_le_bytes());
    }
    writer.join().unwrap();
}

#[test]
fn truncate_front_drops_old_segments_but_keeps_lsns() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), small()).unwrap();
    for _ in 0..200 {
        wal.append(&[7u8; 100]).unwrap();
    }
    let removed = wal.truncate_front(150).unwrap();
    assert!(removed > 0);
    let oldest = wal.oldest_lsn();
    assert!(oldest <= 150 && oldest > 1, "oldest {oldest}");
    assert!(matches!(
        wal.reader(1),
        Err(Error::Truncated { requested: 1, .. })
    ));
    assert_eq!(read_all(&wal, 150)[0].0, 150);
    // Truncating everything keeps the active segment and the clock.
    wal.truncate_front(u64::MAX).unwrap();
    drop(wal);
    let wal = Wal::open(dir.path(), small()).unwrap();
    assert_eq!(wal.last_lsn(), 200);
    assert_eq!(wal.append(b"z").unwrap(), 201);
}

#[test]
fn snapshots_are_atomic_and_truncate_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), small()).unwrap();
    assert!(wal.latest_snapshot().unwrap().is_none());
    for i in 0..100u32 {
        wal.append(&[i as u8; 90]).unwrap();
    }
    wal.save_snapshot(60, b"state at 60").unwrap();
    wal.save_snapshot(80, b"state at 80").unwrap();
    wal.save_snapshot(90, b"state at 90").unwrap();
    assert!(matches!(
        wal.save_snapshot(101, b"x"),
        Err(Error::SnapshotBeyondLog {
            lsn: 101,
            last: 100
        })
    ));
    let snap = wal.latest_snapshot().unwrap().unwrap();
    assert_eq!(snap.lsn, 90);
    assert_eq!(&snap.data[..], b"state at 90");
    assert!(wal.oldest_lsn() <= 91 && wal.oldest_lsn() > 1);
    let snaps: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("snap-"))
        .collect();
    assert_eq!(snaps.len(), 2, "{snaps:?}");
    drop(wal);
    let wal = Wal::open(dir.path(), small()).unwrap();
    assert_eq!(wal.latest_snapshot().unwrap().unwrap().lsn, 90);
    assert_eq!(read_all(&wal, 91).len(), 10);
}

#[test]
fn a_second_writer_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _wal = Wal::open(dir.path(), small()).unwrap();
    assert!(matches!(
        Wal::open(dir.path(), small()),
        Err(Error::Locked(_))
    ));
}

#[test]
fn oversized_records_are_refused_and_nothing_changes() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), small().max_record_size(10)).unwrap();
    assert!(matches!(
        wal.append(&[0; 11]),
        Err(Error::RecordTooLarge { size: 11, max: 10 })
    ));
    assert_eq!(wal.append(&[0; 10]).unwrap(), 1);
}

#[test]
fn records_larger_than_a_segment_get_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), small()).unwrap();
    wal.append(b"small").unwrap();
    let big = vec![0xAB; 10_000];
    wal.append(&big).unwrap();
    wal.append(b"after").unwrap();
    drop(wal);
    let wal = Wal::open(dir.path(), small()).unwrap();
    let all = read_all(&wal, 1);
    assert_eq!(all[1].1, big);
    assert_eq!(all[2].1, b"after");
}

#[test]
fn without_preallocation_too() {
    let dir = tempfile::tempdir().unwrap();
    let opts = || small().preallocate(false);
    let wal = Wal::open(dir.path(), opts()).unwrap();
    let mut reader = wal.reader(1).unwrap();
    for i in 0..100u32 {
        wal.append(&i.to_le_bytes()).unwrap();
        let (lsn, _) = reader.next().unwrap().unwrap();
        assert_eq!(lsn, u64::from(i) + 1);
    }
    drop(reader);
    drop(wal);
    let wal = Wal::open(dir.path(), opts()).unwrap();
    assert_eq!(read_all(&wal, 1).len(), 100);
}
