//! Fault injection through `SimFs`: failed writes, failed fsyncs, a full disk,
//! and the order of writes, fsyncs and directory changes the commit protocol
//! promises (FORMAT.md, "Commit protocol").

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use vigil_wal::io::{SimFs, SimOp};
use vigil_wal::{Error, Options, SyncPolicy, Wal};

fn dir() -> PathBuf {
    Path::new("/log").into()
}

fn opts(fs: &SimFs) -> Options {
    Options::default()
        .segment_size(1024)
        .storage(Arc::new(fs.clone()))
}

fn records(wal: &Wal) -> Vec<(u64, Vec<u8>)> {
    common::read_all(wal, 0)
}

#[test]
fn full_disk_fails_the_append_keeps_the_log_and_recovers_when_space_returns() {
    let fs = SimFs::new();
    let wal = Wal::open(dir(), opts(&fs)).unwrap();
    for i in 0..5u8 {
        wal.append(&[i; 100]).unwrap();
    }
    // Room for neither the record nor a new preallocated segment.
    fs.set_capacity(Some(fs.used()));
    let mut failures = 0;
    for _ in 0..20 {
        match wal.append(&[9; 100]) {
            Ok(_) => {}
            Err(e) => {
                assert!(e.is_disk_full(), "{e}");
                failures += 1;
            }
        }
    }
    assert!(failures > 0, "a full disk never failed an append");
    let durable = wal.durable_lsn();
    // Readable, and what was durable is intact.
    let got = records(&wal);
    assert_eq!(got.len() as u64, durable);
    assert!(
        got[..5]
            .iter()
            .enumerate()
            .all(|(i, (_, r))| r[..] == [i as u8; 100])
    );
    // A crash now loses nothing durable.
    let crashed = fs.crash(|n| n / 2);
    fs.set_capacity(None);
    let lsn = wal.append(b"space again").unwrap();
    assert_eq!(
        lsn,
        durable + 1,
        "failed appends' numbers are handed out again"
    );
    drop(wal);
    let wal = Wal::open(dir(), opts(&crashed)).unwrap();
    assert_eq!(records(&wal).len() as u64, durable);
}

#[test]
fn a_failed_write_fails_only_that_group_and_the_next_append_works() {
    let fs = SimFs::new();
    let wal = Wal::open(dir(), opts(&fs)).unwrap();
    wal.append(b"one").unwrap();
    fs.fail_write_in(0);
    assert!(matches!(
        wal.append(b"lost"),
        Err(Error::Io { op: "write", .. })
    ));
    assert_eq!(wal.durable_lsn(), 1);
    assert_eq!(wal.append(b"two").unwrap(), 2);
    assert_eq!(
        records(&wal),
        vec![(1, b"one".to_vec()), (2, b"two".to_vec())]
    );
    // The half-written bytes of the failed write were cut away: after a
    // crash the log holds exactly the two records.
    let wal2 = {
        let crashed = fs.crash(|n| n);
        drop(wal);
        Wal::open(dir(), opts(&crashed)).unwrap()
    };
    assert_eq!(records(&wal2).len(), 2);
}

#[test]
fn a_failed_fsync_is_an_error_and_the_record_never_becomes_visible() {
    let fs = SimFs::new();
    let wal = Wal::open(dir(), opts(&fs)).unwrap();
    wal.append(b"one").unwrap();
    fs.fail_sync_in(0);
    assert!(matches!(
        wal.append(b"maybe"),
        Err(Error::Io { op: "fsync", .. })
    ));
    assert_eq!(records(&wal).len(), 1);
    assert_eq!(wal.append(b"two").unwrap(), 2);
    assert_eq!(records(&wal)[1].1, b"two");
}

#[test]
fn concurrent_appenders_all_learn_of_a_failed_group() {
    let fs = SimFs::new();
    let wal = Arc::new(Wal::open(dir(), opts(&fs)).unwrap());
    fs.fail_sync_in(3);
    let handles: Vec<_> = (0..8u8)
        .map(|t| {
            let wal = wal.clone();
            std::thread::spawn(move || {
                (0..50)
                    .map(|i| wal.append(&[t, i]).map(|l| (l, vec![t, i])))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut acked = Vec::new();
    let mut failed = 0;
    for h in handles {
        for r in h.join().unwrap() {
            match r {
                Ok(x) => acked.push(x),
                Err(_) => failed += 1,
            }
        }
    }
    assert!(failed > 0);
    acked.sort();
    // Exactly the acknowledged records are in the log, each once.
    assert_eq!(records(&wal), acked);
}

#[test]
fn batch_policy_keeps_acknowledged_records_through_failed_writes() {
    let fs = SimFs::new();
    let wal = Wal::open(
        dir(),
        opts(&fs).sync(SyncPolicy::Batch {
            max_delay: Duration::from_millis(1),
            max_bytes: 200,
        }),
    )
    .unwrap();
    fs.fail_write_in(1);
    fs.fail_sync_in(2);
    for i in 0..100u8 {
        wal.append(&[i; 30]).unwrap();
    }
    // The background flusher retries; a sync reports a failure if it meets one.
    let mut tries = 0;
    while wal.sync().is_err() {
        tries += 1;
        assert!(tries < 10);
    }
    let got = records(&wal);
    assert_eq!(got.len(), 100);
    for (i, (lsn, r)) in got.iter().enumerate() {
        assert_eq!(*lsn, i as u64 + 1);
        assert_eq!(r[..], [i as u8; 30]);
    }
}

#[test]
fn never_policy_reports_records_lost_to_a_failed_fsync_and_goes_on_after_them() {
    let fs = SimFs::new();
    let wal = Wal::open(dir(), opts(&fs).sync(SyncPolicy::Never).write_buffer(64)).unwrap();
    wal.append(b"durable").unwrap();
    wal.sync().unwrap();
    // Written to the file (the buffer is small) but not synced.
    for _ in 0..4 {
        wal.append(&[1; 40]).unwrap();
    }
    fs.fail_sync_in(0);
    match wal.sync() {
        Err(Error::SyncLost { lost, .. }) => {
            assert_eq!(lost.len(), 1, "{lost:?}");
            assert_eq!(*lost[0].start(), 2);
            assert!((2..=5).contains(lost[0].end()));
        }
        other => panic!("expected SyncLost, got {other:?}"),
    }
    let next = wal.append(b"after").unwrap();
    assert!(
        next > 5,
        "sequence numbers of acknowledged records are not reused"
    );
    wal.sync().unwrap();
    let got = records(&wal);
    assert_eq!(got.first().unwrap().1, b"durable");
    assert_eq!(got.last().unwrap(), &(next, b"after".to_vec()));
    drop(wal);
    // The gap is marked in the segment header, so recovery accepts it.
    let wal = Wal::open(dir(), opts(&fs)).unwrap();
    assert_eq!(wal.last_lsn(), next);
    assert!(wal.recovery().repaired.is_none());
}

#[test]
fn an_acknowledged_append_has_been_written_and_fsynced() {
    let fs = SimFs::new();
    let wal = Wal::open(dir(), opts(&fs)).unwrap();
    fs.record_ops(true);
    wal.append(b"x").unwrap();
    let ops = fs.ops();
    let seg = dir().join("00000000000000000001.wal");
    assert!(
        matches!(&ops[..], [SimOp::Write { path, .. }, SimOp::SyncFile(p)] if *path == seg && *p == seg),
        "{ops:?}"
    );
}

#[test]
fn a_segment_roll_seals_and_syncs_the_old_segment_before_the_new_one_is_used() {
    let fs = SimFs::new();
    let wal = Wal::open(dir(), opts(&fs)).unwrap();
    wal.append(&[0; 900]).unwrap();
    fs.record_ops(true);
    let lsn = wal.append(&[1; 900]).unwrap();
    let ops = fs.ops();
    let old = dir().join("00000000000000000001.wal");
    let new = dir().join(format!("{lsn:020}.wal"));
    let pos = |want: &dyn Fn(&SimOp) -> bool| {
        ops.iter()
            .position(want)
            .unwrap_or_else(|| panic!("missing op in {ops:?}"))
    };
    let seal = pos(&|o| matches!(o, SimOp::SetLen(p, _) if *p == old));
    let sync_old = pos(&|o| *o == SimOp::SyncFile(old.clone()));
    let create = pos(&|o| *o == SimOp::Create(new.clone()));
    let header = pos(&|o| matches!(o, SimOp::Write { path, offset: 0, .. } if *path == new));
    let sync_new = pos(&|o| *o == SimOp::SyncFile(new.clone()));
    let sync_dir = pos(&|o| *o == SimOp::SyncDir(dir()));
    let record = pos(&|o| matches!(o, SimOp::Write { path, offset: 32, .. } if *path == new));
    let last_sync = ops
        .iter()
        .rposition(|o| *o == SimOp::SyncFile(new.clone()))
        .unwrap();
    assert!(seal < sync_old, "{ops:?}");
    assert!(sync_old < create, "{ops:?}");
    assert!(create < header && header < sync_new, "{ops:?}");
    assert!(sync_new < sync_dir, "{ops:?}");
    assert!(sync_dir < record, "{ops:?}");
    assert!(record < last_sync, "{ops:?}");
}

#[test]
fn a_snapshot_is_written_synced_renamed_and_the_directory_synced() {
    let fs = SimFs::new();
    let wal = Wal::open(dir(), opts(&fs)).unwrap();
    wal.append(b"a").unwrap();
    fs.record_ops(true);
    wal.save_snapshot(1, b"state").unwrap();
    let ops = fs.ops();
    let tmp = dir().join("snap-00000000000000000001.snap.tmp");
    let fin = dir().join("snap-00000000000000000001.snap");
    let want = [
        SimOp::Create(tmp.clone()),
        SimOp::SetLen(tmp.clone(), 0),
        SimOp::Write {
            path: tmp.clone(),
            offset: 0,
            len: 32 + 5 + 4,
        },
        SimOp::SyncFile(tmp.clone()),
        SimOp::Rename(tmp, fin),
        SimOp::SyncDir(dir()),
    ];
    assert_eq!(ops[..want.len()], want, "{ops:?}");
    // And a crash right after keeps it.
    let crashed = fs.crash(|_| 0);
    drop(wal);
    let wal = Wal::open(dir(), opts(&crashed)).unwrap();
    assert_eq!(&wal.latest_snapshot().unwrap().unwrap().data[..], b"state");
}

#[test]
fn a_crash_mid_snapshot_leaves_the_previous_snapshot_and_no_temp_file() {
    let fs = SimFs::new();
    let wal = Wal::open(dir(), opts(&fs)).unwrap();
    wal.append(b"a").unwrap();
    wal.append(b"b").unwrap();
    wal.save_snapshot(1, b"first").unwrap();
    fs.fail_sync_in(0); // the temp file's fsync
    assert!(wal.save_snapshot(2, b"second").is_err());
    let crashed = fs.crash(|n| n);
    drop(wal);
    let wal = Wal::open(dir(), opts(&crashed)).unwrap();
    assert_eq!(&wal.latest_snapshot().unwrap().unwrap().data[..], b"first");
}

#[test]
fn truncation_removes_then_syncs_the_directory() {
    let fs = SimFs::new();
    let wal = Wal::open(dir(), opts(&fs)).unwrap();
    for _ in 0..30 {
        wal.append(&[0; 200]).unwrap();
    }
    fs.record_ops(true);
    let n = wal.truncate_front(20).unwrap();
    let ops = fs.ops();
    assert_eq!(ops.len(), n + 1, "{ops:?}");
    assert!(ops[..n].iter().all(|o| matches!(o, SimOp::Remove(_))));
    assert_eq!(ops[n], SimOp::SyncDir(dir()));
}

#[test]
fn never_policy_queues_through_a_full_disk_then_refuses_with_the_cause_and_loses_nothing() {
    let fs = SimFs::new();
    let wal = Wal::open(
        dir(),
        opts(&fs)
            .segment_size(4 << 20)
            .sync(SyncPolicy::Never)
            .write_buffer(1 << 20),
    )
    .unwrap();
    fs.set_capacity(Some(fs.used()));
    let record = vec![7u8; 1 << 20];
    let mut acked = 0u64;
    let refused = loop {
        match wal.append(&record) {
            Ok(_) => acked += 1,
            Err(e) => break e,
        }
        assert!(acked < 200, "the queue never filled up");
    };
    // Refused once the bounded queue (64 MiB) is full, with the disk's error.
    assert!(refused.is_disk_full(), "{refused}");
    // 64 MiB queued, plus what fit in the segment preallocated before the
    // disk filled.
    assert!((60..=68).contains(&acked), "{acked} records queued");
    assert!(wal.sync().is_err());
    fs.set_capacity(None);
    assert_eq!(wal.sync().unwrap(), acked);
    assert_eq!(records(&wal).len() as u64, acked);
    assert_eq!(wal.append(b"again").unwrap(), acked + 1);
}

/// Calls of mixed sizes queue as a mix of buffers: small ones share one, a
/// call with kilobytes of frames brings its own (encoded outside the lock).
/// Returns the payloads appended, in order.
fn append_mixed(wal: &Wal, round: u8) -> Vec<Vec<u8>> {
    let mut sent = Vec::new();
    let small = |i: u8| vec![round ^ i; 20 + i as usize];
    let large = |i: u8| vec![round ^ i; 5000 + i as usize];
    for i in 0..3u8 {
        wal.append(&small(i)).unwrap();
        sent.push(small(i));
    }
    wal.append(&large(3)).unwrap();
    sent.push(large(3));
    wal.append(&small(4)).unwrap();
    sent.push(small(4));
    let batch = [small(5), large(6), small(7)];
    wal.append_batch(&batch).unwrap();
    sent.extend(batch);
    wal.append(&large(8)).unwrap();
    sent.push(large(8));
    sent
}

#[test]
fn a_vectored_write_that_fails_part_way_through_the_queue_keeps_it_all_queued() {
    for policy in [
        SyncPolicy::Never,
        SyncPolicy::Batch {
            max_delay: Duration::from_secs(3600),
            max_bytes: 1 << 20,
        },
    ] {
        let fs = SimFs::new();
        let wal = Wal::open(
            dir(),
            opts(&fs)
                .segment_size(1 << 20)
                .sync(policy)
                .write_buffer(1 << 20),
        )
        .unwrap();
        let mut sent = append_mixed(&wal, 0);
        let queued: usize = sent.iter().map(|r| r.len() + 16).sum();
        fs.record_ops(true);
        fs.fail_write_in(0);
        assert!(
            matches!(wal.sync(), Err(Error::Io { op: "write", .. })),
            "{policy:?}"
        );
        // The whole queue went down in one write, which stopped half-way.
        let writes: Vec<SimOp> = fs
            .ops()
            .into_iter()
            .filter(|op| matches!(op, SimOp::Write { .. }))
            .collect();
        assert_eq!(writes.len(), 1, "{policy:?}: {writes:?}");
        let SimOp::Write { len, .. } = writes[0] else {
            unreachable!()
        };
        assert_eq!(len, queued / 2, "{policy:?}");
        assert!(
            records(&wal).is_empty(),
            "{policy:?}: nothing is visible before it is durable"
        );
        // More calls behind the failed ones, then a sync that works: all of
        // them, in order, once each.
        sent.extend(append_mixed(&wal, 1));
        assert_eq!(wal.sync().unwrap(), sent.len() as u64, "{policy:?}");
        let check = |got: Vec<(u64, Vec<u8>)>| {
            assert_eq!(got.len(), sent.len(), "{policy:?}");
            for (i, ((lsn, r), s)) in got.iter().zip(&sent).enumerate() {
                assert_eq!((*lsn, r), (i as u64 + 1, s), "{policy:?}");
            }
        };
        check(records(&wal));
        // The half-written bytes were cut before the retry: after a power
        // cut the log is exactly the records.
        let crashed = fs.crash(|n| n);
        drop(wal);
        let wal = Wal::open(dir(), opts(&crashed)).unwrap();
        assert!(wal.recovery().torn_tail.is_none(), "{policy:?}");
        check(records(&wal));
    }
}

#[test]
fn a_failed_vectored_write_under_always_fails_its_appenders_and_leaves_no_half_frame() {
    let fs = SimFs::new();
    let wal = Wal::open(
        dir(),
        opts(&fs).segment_size(1 << 20).sync(SyncPolicy::Always),
    )
    .unwrap();
    wal.append(b"one").unwrap();
    fs.fail_write_in(0);
    // A call with its own buffer (kilobytes of frames) whose write fails.
    let big = [vec![1u8; 3000], vec![2u8; 3000]];
    assert!(matches!(
        wal.append_batch(&big),
        Err(Error::Io { op: "write", .. })
    ));
    assert_eq!(wal.durable_lsn(), 1);
    // Its sequence numbers are handed out again, to the next call.
    assert_eq!(wal.append_batch(&big).unwrap(), 2..4);
    assert_eq!(wal.append(b"four").unwrap(), 4);
    let want = vec![
        (1, b"one".to_vec()),
        (2, big[0].clone()),
        (3, big[1].clone()),
        (4, b"four".to_vec()),
    ];
    assert_eq!(records(&wal), want);
    let crashed = fs.crash(|n| n);
    drop(wal);
    let wal = Wal::open(dir(), opts(&crashed)).unwrap();
    assert_eq!(records(&wal), want);
}

#[test]
fn a_full_disk_under_never_keeps_a_mixed_queue_and_writes_it_once_space_returns() {
    let fs = SimFs::new();
    let wal = Wal::open(
        dir(),
        opts(&fs)
            .segment_size(1 << 20)
            .sync(SyncPolicy::Never)
            .write_buffer(1 << 20),
    )
    .unwrap();
    let mut sent = append_mixed(&wal, 0);
    wal.sync().unwrap();
    // The preallocated segment has room; take away room for the next one,
    // and make the queue not fit in this one.
    fs.set_capacity(Some(fs.used()));
    let more = vec![9u8; 300 << 10];
    for _ in 0..4 {
        wal.append(&more).unwrap();
        sent.push(more.clone());
    }
    sent.extend(append_mixed(&wal, 2));
    let e = wal.sync().unwrap_err();
    assert!(e.is_disk_full(), "{e}");
    let durable = wal.durable_lsn();
    assert_eq!(records(&wal).len() as u64, durable);
    fs.set_capacity(None);
    assert_eq!(wal.sync().unwrap(), sent.len() as u64);
    let got = records(&wal);
    assert_eq!(got.len(), sent.len());
    assert!(got.iter().zip(&sent).all(|((_, r), s)| r == s));
}

/// Many failed groups while eight appenders run, each failure handing the
/// failed sequence numbers out again: an appender learns its own outcome
/// (also when it learns it by polling, without the log's lock), so exactly
/// the acknowledged records, with their bytes, are in the log.
#[test]
fn concurrent_appenders_through_repeated_failures_each_learn_their_own_outcome() {
    for round in 0..16u8 {
        let spin = [1.0, 0.0, 0.05, 1.0][usize::from(round % 4)];
        let fs = SimFs::new();
        let wal = Arc::new(
            Wal::open(
                dir(),
                opts(&fs)
                    .segment_size(64 << 10)
                    .sync(SyncPolicy::Always)
                    .spin_fraction(spin),
            )
            .unwrap(),
        );
        // The first failure is certain; the appenders arm more as they go.
        fs.fail_sync_in(2);
        let handles: Vec<_> = (0..8u8)
            .map(|t| {
                let (wal, fs) = (wal.clone(), fs.clone());
                std::thread::spawn(move || {
                    let mut rng = common::Rng::new(u64::from(round) << 8 | u64::from(t));
                    (0..300u16)
                        .map(|i| {
                            if i % 25 == 24 {
                                if rng.below(2) == 0 {
                                    fs.fail_sync_in(rng.below_u64(6));
                                } else {
                                    fs.fail_write_in(rng.below_u64(6));
                                }
                            }
                            let rec = [t, i as u8, (i >> 8) as u8, round];
                            wal.append(&rec).map(|l| (l, rec.to_vec()))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut acked = Vec::new();
        let mut failed = 0;
        for h in handles {
            for r in h.join().unwrap() {
                match r {
                    Ok(x) => acked.push(x),
                    Err(_) => failed += 1,
                }
            }
        }
        assert!(failed > 0, "spin {spin}: no append failed");
        acked.sort();
        assert_eq!(records(&wal), acked, "spin {spin}");
    }
}
