//! Group commit under `SyncPolicy::Always`: every appender returns, the
//! fsyncs are shared, and the counters say so.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use vigil_wal::io::SimFs;
use vigil_wal::{Options, SyncPolicy, Wal};

/// Run `rounds` rounds of `threads` appenders, each appending `per_thread`
/// single records, on a fresh log; fail if any round does not finish within
/// a generous time (an appender left parked with no one to wake it).
fn rounds_finish(
    rounds: usize,
    opts: impl Fn() -> Options + Send + 'static,
    threads: usize,
    per_thread: usize,
) {
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        for round in 0..rounds {
            let dir = tempfile::tempdir().unwrap();
            let wal = Arc::new(Wal::open(dir.path(), opts()).unwrap());
            std::thread::scope(|s| {
                for t in 0..threads {
                    let wal = wal.clone();
                    s.spawn(move || {
                        for i in 0..per_thread {
                            wal.append(format!("{round}/{t}/{i}").as_bytes()).unwrap();
                        }
                    });
                }
            });
            assert_eq!(wal.durable_lsn(), (threads * per_thread) as u64);
        }
        done.send(()).unwrap();
    });
    finished
        .recv_timeout(Duration::from_secs(120))
        .expect("an appender was never woken: its record was queued with no leader");
}

/// Pins the lost wake-up found while reworking the group commit: an appender
/// whose poll for its fsync ran out just as the leader finished parked after
/// the leader had woken the parked ones, and slept with its record queued and
/// no leader until some other append came (never, for the last ones). Waiters
/// here park at once (`spin_fraction` 0) or after a very short poll, so the
/// window is hit often; the simulated file system's fsync takes no time.
#[test]
fn appenders_that_park_are_always_woken() {
    for spin in [0.0, 0.001] {
        rounds_finish(
            200,
            move || {
                Options::default()
                    .sync(SyncPolicy::Always)
                    .spin_fraction(spin)
                    // Small segments: the simulated fsync copies the file.
                    .segment_size(64 << 10)
                    .storage(Arc::new(SimFs::new()))
            },
            8,
            25,
        );
    }
}

/// The same on the real file system, whose fsync takes long enough for the
/// waiters to run out their poll and park.
#[test]
fn appenders_that_park_are_always_woken_on_a_real_disk() {
    for spin in [0.0, 0.05, 1.0] {
        rounds_finish(
            10,
            move || {
                Options::default()
                    .sync(SyncPolicy::Always)
                    .spin_fraction(spin)
            },
            8,
            25,
        );
    }
}

/// Eight threads append 50 one-byte records each, all at once.
fn append_from_8_threads(wal: &Wal) {
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                for _ in 0..50 {
                    wal.append(b"x").unwrap();
                }
            });
        }
    });
}

#[test]
fn concurrent_appenders_share_fsyncs_and_the_stats_count_them() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Arc::new(Wal::open(dir.path(), Options::default().sync(SyncPolicy::Always)).unwrap());
    append_from_8_threads(&wal);
    let stats = wal.stats();
    assert_eq!(stats.synced_records, 400);
    assert_eq!(stats.synced_calls, 400);
    assert!(stats.syncs >= 1 && stats.syncs <= 400);
    assert!(stats.sync_time > Duration::ZERO);
    // Batches count once per call and once per record.
    wal.append_batch(&[&b"a"[..], b"b", b"c"]).unwrap();
    let after = wal.stats();
    assert_eq!(after.syncs, stats.syncs + 1);
    assert_eq!(after.synced_calls, stats.synced_calls + 1);
    assert_eq!(after.synced_records, stats.synced_records + 3);
}

#[test]
fn appenders_that_may_not_poll_sleep_and_the_stats_count_it() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Arc::new(
        Wal::open(
            dir.path(),
            Options::default()
                .sync(SyncPolicy::Always)
                .spin_fraction(0.0),
        )
        .unwrap(),
    );
    append_from_8_threads(&wal);
    let stats = wal.stats();
    assert_eq!(stats.synced_records, 400);
    // Eight appenders and one leader at a time: the others waited, asleep.
    assert!(stats.sleeps > 0, "{stats:?}");
    assert_eq!(stats.slow_yields, 0, "no one polled, so no one yielded");
}
