//! `Options::zero_fill`: segments written with zeros instead of fallocated.
//! The first segment of a new log is filled in `open`; later ones by a
//! background thread under a temporary name, renamed into place at the roll
//! (FORMAT.md, "Sizes and preallocation" and "Commit protocol"). On `SimFs`:
//! the order of the roll's operations, crashes with the temporary file on
//! disk (finished or half-filled), a fill that runs out of space; and the
//! same life on the real file system.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vigil_wal::io::{SimFs, SimOp, Storage};
use vigil_wal::{Options, Wal};

const SEG: u64 = 4096;
const TMP: &str = "next.wal.tmp";

fn dir() -> PathBuf {
    Path::new("/log").into()
}

fn opts(fs: &SimFs) -> Options {
    Options::default()
        .segment_size(SEG)
        .zero_fill(true)
        .storage(Arc::new(fs.clone()))
}

/// Wait until the background thread has filled `n` segments in all.
fn wait_prepared(wal: &Wal, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while wal.stats().prepared_segments < n {
        assert!(
            Instant::now() < deadline,
            "no zero-filled segment after 30 s: {:?}",
            wal.stats()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn segment(lsn: u64) -> PathBuf {
    dir().join(format!("{lsn:020}.wal"))
}

#[test]
fn a_new_log_starts_with_a_synced_zero_filled_segment() {
    let fs = SimFs::new();
    fs.record_ops(true);
    let wal = Wal::open(dir(), opts(&fs)).unwrap();
    let seg = segment(1);
    let ops = fs.ops();
    // Zeros written (not a mere extension) after the header, then synced.
    let zeros = ops
        .iter()
        .position(|o| {
            *o == SimOp::Write {
                path: seg.clone(),
                offset: 32,
                len: SEG as usize - 32,
            }
        })
        .unwrap_or_else(|| panic!("no zero fill in {ops:?}"));
    let sync = ops
        .iter()
        .position(|o| *o == SimOp::SyncFile(seg.clone()))
        .unwrap();
    assert!(zeros < sync, "{ops:?}");
    assert!(
        !ops.iter()
            .any(|o| matches!(o, SimOp::SetLen(p, l) if *p == seg && *l == SEG))
    );
    // A power cut right after open keeps the whole zero-filled file.
    let crashed = fs.crash(|_| 0);
    let content = crashed.contents(&seg).unwrap();
    assert_eq!(content.len() as u64, SEG);
    assert!(content[32..].iter().all(|&b| b == 0));
    // Without the option the same segment is only extended.
    drop(wal);
    let plain = SimFs::new();
    plain.record_ops(true);
    let _wal = Wal::open(dir(), opts(&plain).zero_fill(false)).unwrap();
    assert!(
        plain
            .ops()
            .iter()
            .any(|o| *o == SimOp::SetLen(seg.clone(), SEG))
    );
}

#[test]
fn a_roll_installs_the_zero_filled_segment_header_sync_rename_directory_sync() {
    let fs = SimFs::new();
    let wal = Wal::open(dir(), opts(&fs)).unwrap();
    // Past half the segment: the next one is asked for.
    for i in 0..3u8 {
        wal.append(&[i; 900]).unwrap();
    }
    wait_prepared(&wal, 1);
    assert!(
        fs.contents(&dir().join(TMP))
            .is_some_and(|c| c.len() as u64 == SEG)
    );
    wal.append(&[3; 900]).unwrap();
    fs.record_ops(true);
    let lsn = wal.append(&[4; 900]).unwrap();
    assert_eq!(lsn, 5);
    let ops = fs.ops();
    let old = segment(1);
    let new = segment(5);
    let tmp = dir().join(TMP);
    let pos = |want: &dyn Fn(&SimOp) -> bool| {
        ops.iter()
            .position(want)
            .unwrap_or_else(|| panic!("missing op in {ops:?}"))
    };
    let seal = pos(&|o| matches!(o, SimOp::SetLen(p, _) if *p == old));
    let sync_old = pos(&|o| *o == SimOp::SyncFile(old.clone()));
    let header = pos(&|o| {
        *o == SimOp::Write {
            path: tmp.clone(),
            offset: 0,
            len: 32,
        }
    });
    let sync_tmp = pos(&|o| *o == SimOp::SyncFile(tmp.clone()));
    let rename = pos(&|o| *o == SimOp::Rename(tmp.clone(), new.clone()));
    let sync_dir = pos(&|o| *o == SimOp::SyncDir(dir()));
    let record = pos(&|o| matches!(o, SimOp::Write { path, offset: 32, .. } if *path == new));
    let sync_new = pos(&|o| *o == SimOp::SyncFile(new.clone()));
    assert!(seal < sync_old, "{ops:?}");
    assert!(sync_old < header && header < sync_tmp, "{ops:?}");
    assert!(sync_tmp < rename && rename < sync_dir, "{ops:?}");
    assert!(sync_dir < record && record < sync_new, "{ops:?}");
    // Not created by the fallback, and not extended with `fallocate`.
    assert!(
        !ops.iter().any(|o| *o == SimOp::Create(new.clone())),
        "{ops:?}"
    );
    assert_eq!(wal.stats().prepared_rolls, 1);
    // A power cut right after: all five records, and the log goes on.
    let crashed = fs.crash(|_| 0);
    drop(wal);
    let wal = Wal::open(dir(), opts(&crashed)).unwrap();
    let got = common::read_all(&wal, 0);
    assert_eq!(got.len(), 5);
    for (i, (lsn, rec)) in got.iter().enumerate() {
        assert_eq!(*lsn, i as u64 + 1);
        assert_eq!(rec[..], [i as u8; 900][..]);
    }
    assert_eq!(wal.append(b"more").unwrap(), 6);
}

#[test]
fn a_crash_with_the_filled_temporary_file_on_disk_removes_it_and_loses_nothing() {
    let fs = SimFs::new();
    let wal = Wal::open(dir(), opts(&fs)).unwrap();
    for i in 0..3u8 {
        wal.append(&[i; 900]).unwrap();
    }
    wait_prepared(&wal, 1);
    // A snapshot syncs the directory, so the temporary file's entry is
    // durable and a power cut keeps it.
    wal.save_snapshot(1, b"s").unwrap();
    let crashed = fs.crash(|n| n);
    assert!(crashed.contents(&dir().join(TMP)).is_some());
    drop(wal);
    let wal = Wal::open(dir(), opts(&crashed)).unwrap();
    assert_eq!(wal.recovery().removed_temp_files, vec![dir().join(TMP)]);
    assert!(crashed.contents(&dir().join(TMP)).is_none());
    assert_eq!(common::read_all(&wal, 0).len(), 3);
    // It goes on, and prepares and uses the next segment again.
    wal.append(&[3; 900]).unwrap();
    wait_prepared(&wal, 1);
    assert_eq!(wal.append(&[4; 900]).unwrap(), 5);
    assert_eq!(wal.stats().prepared_rolls, 1);
}

#[test]
fn a_crash_mid_fill_or_mid_install_leaves_a_log_that_opens() {
    // What a cut in the middle of a fill leaves, or one between the header
    // of the temporary file and its rename: a temporary file of any length
    // and content. Recovery removes it whatever it holds.
    for content in [vec![0u8; 1000], vec![7u8; 40], {
        let mut v = vec![0u8; SEG as usize];
        v[..8].copy_from_slice(b"VIGILWAL");
        v
    }] {
        let fs = SimFs::new();
        let wal = Wal::open(dir(), opts(&fs)).unwrap();
        wal.append(b"kept").unwrap();
        drop(wal);
        let f = fs.open(&dir().join(TMP), true).unwrap();
        f.write_at(0, &content).unwrap();
        f.sync_data().unwrap();
        fs.sync_dir(&dir()).unwrap();
        let crashed = fs.crash(|_| 0);
        let wal = Wal::open(dir(), opts(&crashed)).unwrap();
        assert_eq!(wal.recovery().removed_temp_files, vec![dir().join(TMP)]);
        assert_eq!(common::read_all(&wal, 0), vec![(1, b"kept".to_vec())]);
        assert_eq!(wal.append(b"next").unwrap(), 2);
    }
    // A cut after the rename was made durable: the new segment has its
    // synced header and zeros, an empty newest segment that recovery takes
    // as the active one. The roll test above ends in that state; here the
    // cut also keeps nothing that was not synced.
    let fs = SimFs::new();
    let wal = Wal::open(dir(), opts(&fs)).unwrap();
    for i in 0..4u8 {
        wal.append(&[i; 900]).unwrap();
    }
    wait_prepared(&wal, 1);
    fs.fail_write_in(1); // the first record's write into the new segment
    assert!(wal.append(&[4; 900]).is_err());
    let crashed = fs.crash(|_| 0);
    drop(wal);
    assert!(
        crashed
            .contents(&segment(5))
            .is_some_and(|c| c.len() as u64 == SEG)
    );
    let wal = Wal::open(dir(), opts(&crashed)).unwrap();
    assert_eq!(common::read_all(&wal, 0).len(), 4);
    assert_eq!(wal.append(b"after").unwrap(), 5);
}

#[test]
fn a_fill_that_runs_out_of_space_fails_nothing_and_the_roll_falls_back() {
    let fs = SimFs::new();
    let wal = Wal::open(dir(), opts(&fs)).unwrap();
    for i in 0..2u8 {
        wal.append(&[i; 900]).unwrap();
    }
    // A full disk: the records still fit (the segment's space was written
    // with zeros when it was made), the fill that the next write asks for
    // does not.
    fs.set_capacity(Some(fs.used()));
    wal.append(&[2; 900]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while wal.stats().prepare_failures == 0 {
        assert!(Instant::now() < deadline, "the fill did not fail");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(fs.contents(&dir().join(TMP)).is_none());
    assert_eq!(wal.append(&[3; 900]).unwrap(), 4);
    // The roll needs space: it fails, and once space is back it finds no
    // filled segment and falls back to `fallocate`.
    assert!(wal.append(&[4; 900]).unwrap_err().is_disk_full());
    fs.set_capacity(None);
    assert_eq!(wal.append(&[4; 900]).unwrap(), 5);
    assert_eq!(wal.stats().prepared_rolls, 0);
    assert_eq!(common::read_all(&wal, 0).len(), 5);
    // The next segment is asked for again and used.
    for i in 5..8u8 {
        wal.append(&[i; 900]).unwrap();
    }
    wait_prepared(&wal, 1);
    assert_eq!(wal.append(&[8; 900]).unwrap(), 9);
    assert_eq!(wal.stats().prepared_rolls, 1);
}

#[test]
fn close_stops_the_fill_and_removes_the_temporary_file() {
    let fs = SimFs::new();
    let wal = Wal::open(dir(), opts(&fs)).unwrap();
    for i in 0..3u8 {
        wal.append(&[i; 900]).unwrap();
    }
    wait_prepared(&wal, 1);
    wal.close().unwrap();
    assert!(fs.contents(&dir().join(TMP)).is_none());
    let wal = Wal::open(dir(), opts(&fs)).unwrap();
    assert!(wal.recovery().removed_temp_files.is_empty());
    assert_eq!(common::read_all(&wal, 0).len(), 3);
}

#[test]
fn on_the_real_file_system_segments_roll_through_zero_filled_files() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("wal");
    let o = || Options::default().segment_size(64 << 10).zero_fill(true);
    // A half-filled leftover from a crash is removed at open.
    std::fs::create_dir_all(&path).unwrap();
    std::fs::write(path.join(TMP), [9u8; 5000]).unwrap();
    let wal = Wal::open(&path, o()).unwrap();
    assert_eq!(wal.recovery().removed_temp_files, vec![path.join(TMP)]);
    assert_eq!(
        std::fs::metadata(path.join(format!("{:020}.wal", 1)))
            .unwrap()
            .len(),
        64 << 10
    );
    // 1,016-byte frames: 64 to a segment, the next one asked for after 33.
    let rec = [5u8; 1000];
    let mut n = 0u64;
    for round in 1..=3u64 {
        let first = 1 + 64 * (round - 1);
        while n < first + 40 {
            n = wal.append(&rec).unwrap();
        }
        wait_prepared(&wal, round);
        while n < first + 64 + 5 {
            n = wal.append(&rec).unwrap();
        }
    }
    assert_eq!(wal.stats().prepared_rolls, 3);
    wal.close().unwrap();
    assert!(!path.join(TMP).exists());
    let wal = Wal::open(&path, o()).unwrap();
    let got = common::read_all(&wal, 0);
    assert_eq!(got.len() as u64, n);
    assert!(got.iter().all(|(_, r)| r[..] == rec[..]));
    assert_eq!(wal.recovery().segments, 4);
}
