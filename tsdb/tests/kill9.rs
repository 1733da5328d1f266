//! Real process death: a child process ingests into a store with
//! `SyncPolicy::Always`, cutting blocks and compacting them as it goes
//! (`Db::compact`'s planner after every cut, `compact_oldest` now and then), and
//! prints each batch it committed; the test kills it with SIGKILL at a random
//! moment, reopens the store and checks that every acknowledged sample is
//! there exactly once, that nothing appears that was never appended, and that
//! the store opens clean (no damaged block). Rounds repeat on the same
//! directory, so kills land in ingest, in block writes, in compaction and in
//! recovery itself.
//!
//! The child is this test binary run again with `--exact kill9_child` and the
//! store directory in `VIGIL_TSDB_KILL9_DIR`; without it the child returns.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use vigil_tsdb::db::{Db, DbOptions};
use vigil_tsdb::index::Matcher;
use vigil_tsdb::labels::Labels;
use vigil_wal::SyncPolicy;

const DIR_ENV: &str = "VIGIL_TSDB_KILL9_DIR";
const MARK: &str = "@kill9 ";
const SERIES: u64 = 8;
const PER_BATCH: u64 = 5;

fn opts() -> DbOptions {
    DbOptions {
        block_range_ms: 2_000,
        retention_ms: None,
        head: vigil_tsdb::head::HeadOptions {
            wal: vigil_wal::Options::default()
                .sync(SyncPolicy::Always)
                .segment_size(64 * 1024),
            ..Default::default()
        },
        ..DbOptions::default()
    }
}

fn labels(s: u64) -> Labels {
    Labels::new([("__name__", "k9".to_owned()), ("s", s.to_string())]).unwrap()
}

/// Batch `b` holds, for every series, the samples at `t = b * PER_BATCH + i`
/// (ms), valued `t * 10 + s`: the parent can rebuild any batch from its
/// number.
fn batch(b: u64) -> impl Iterator<Item = (u64, i64, f64)> {
    (0..SERIES).flat_map(move |s| {
        (0..PER_BATCH).map(move |i| {
            let t = (b * PER_BATCH + i) as i64 * 100;
            (s, t, (t * 10) as f64 + s as f64)
        })
    })
}

#[test]
fn kill9_child() {
    let Some(dir) = std::env::var_os(DIR_ENV) else {
        return;
    };
    let db = Db::open(&dir, opts()).unwrap();
    // Continue after the last batch the store holds.
    let have = db
        .select(&[Matcher::equal("s", "0")], i64::MIN, i64::MAX)
        .unwrap();
    let mut next = have
        .first()
        .and_then(|(_, v)| v.last())
        .map_or(0, |&(t, _)| (t / 100) as u64 / PER_BATCH + 1);
    loop {
        let mut app = db.head().appender();
        for (s, t, v) in batch(next) {
            app.append(&labels(s), t, v).unwrap();
        }
        app.commit().unwrap();
        println!("{MARK}{next}");
        next += 1;
        if next % 7 == 0 {
            db.cut_blocks().unwrap();
            // As the monitor's upkeep: the planner after every cut (2 s
            // blocks merged into 6 s, 18 s, 54 s ones as windows fill).
            db.compact().unwrap();
        }
        if next % 23 == 0 {
            db.compact_oldest(2).unwrap();
        }
    }
}

#[test]
fn kill9_ingest_cut_and_compaction_lose_and_double_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("kill9 seed {seed}");
    let mut x = seed;
    let mut acked: u64 = 0; // batches 0..acked are acknowledged
    for round in 0..20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "kill9_child", "--nocapture", "--test-threads=1"])
            .env(DIR_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // The test harness prints `test kill9_child ... ` without a
                // newline before the child's first line: find the mark
                // anywhere in the line.
                if let Some(n) = line.find(MARK).map(|i| &line[i + MARK.len()..]) {
                    let _ = tx.send(n.parse::<u64>().unwrap());
                }
            }
        });
        let deadline = Instant::now() + Duration::from_millis(50 + x % 400);
        while Instant::now() < deadline {
            if let Ok(n) = rx.recv_timeout(Duration::from_millis(5)) {
                acked = acked.max(n + 1);
            }
        }
        // SIGKILL, by the child's own process id.
        child.kill().unwrap();
        child.wait().unwrap();
        // Every line the child wrote before it died counts: read the pipe
        // to its end before tallying (a line still in the pipe is a batch
        // the child had committed).
        reader.join().unwrap();
        while let Ok(n) = rx.try_recv() {
            acked = acked.max(n + 1);
        }
        let db = Db::open(dir.path(), opts()).unwrap();
        assert!(
            db.damaged_blocks().is_empty(),
            "round {round}: {:?}",
            db.damaged_blocks()
        );
        let got = db
            .select(&[Matcher::equal("__name__", "k9")], i64::MIN, i64::MAX)
            .unwrap();
        let got: BTreeMap<String, Vec<(i64, f64)>> =
            got.into_iter().map(|(l, v)| (l.to_string(), v)).collect();
        // Every acknowledged batch, and at most one more (in flight at the
        // kill), all or nothing, and nothing twice (the store returns one
        // sample per timestamp; the counts below catch a missing one).
        for s in 0..SERIES {
            let have = got.get(&labels(s).to_string()).cloned().unwrap_or_default();
            let want: Vec<(i64, f64)> = (0..acked)
                .flat_map(batch)
                .filter(|x| x.0 == s)
                .map(|x| (x.1, x.2))
                .collect();
            assert!(
                have.len() == want.len() || have.len() == want.len() + PER_BATCH as usize,
                "round {round}, series {s}: {} samples, {} acknowledged",
                have.len(),
                want.len()
            );
            assert_eq!(&have[..want.len()], &want[..], "round {round}, series {s}");
            let extra: Vec<(i64, f64)> = batch(acked)
                .filter(|x| x.0 == s)
                .map(|x| (x.1, x.2))
                .collect();
            assert!(
                have.len() == want.len() || have[want.len()..] == extra[..],
                "round {round}: unexpected samples"
            );
        }
        // A kill between writing a compacted block and deleting its sources
        // leaves overlapping blocks: the planner merges them first, and then
        // has nothing more to do.
        db.compact().unwrap();
        let ranges = db.block_ranges();
        assert!(
            ranges.windows(2).all(|w| w[0].1 <= w[1].0),
            "round {round}: overlapping blocks after compact: {ranges:?}"
        );
        assert_eq!(db.compact().unwrap(), 0, "round {round}: {ranges:?}");
        let again = db
            .select(&[Matcher::equal("__name__", "k9")], i64::MIN, i64::MAX)
            .unwrap();
        let again: BTreeMap<String, Vec<(i64, f64)>> =
            again.into_iter().map(|(l, v)| (l.to_string(), v)).collect();
        assert_eq!(again, got, "round {round}: compaction changed the data");
        // A batch in flight at the kill that made it to disk is now part of
        // the store: the next child resumes after it without printing it, so
        // count it as acknowledged (else the next round sees two extra).
        let s0 = got.get(&labels(0).to_string()).map_or(0, Vec::len);
        if s0 as u64 == (acked + 1) * PER_BATCH {
            acked += 1;
        }
        drop(db);
        let _ = Path::new("");
    }
    assert!(acked > 0, "the child never committed");
}
