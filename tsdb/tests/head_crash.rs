//! Power cuts through the WAL's simulated file system, which keeps only what
//! was fsynced (plus a random prefix of the rest): every commit acknowledged
//! under `SyncPolicy::Always` is there after reopening, and nothing appears
//! that was never appended.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use vigil_tsdb::head::{Head, HeadOptions};
use vigil_tsdb::index::Matcher;
use vigil_tsdb::labels::Labels;
use vigil_wal::io::SimFs;
use vigil_wal::{Options, SyncPolicy};

/// xorshift: small and deterministic.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn opts(fs: &SimFs) -> HeadOptions {
    HeadOptions {
        wal: Options::default()
            .sync(SyncPolicy::Always)
            .segment_size(64 * 1024)
            .storage(Arc::new(fs.clone())),
        ..HeadOptions::default()
    }
}

fn read_all(head: &Head) -> BTreeMap<String, Vec<(i64, f64)>> {
    head.querier(i64::MIN, i64::MAX)
        .select(&[Matcher::equal("__name__", "m")])
        .iter()
        .map(|s| {
            (
                s.labels.to_string(),
                s.samples().collect::<Result<Vec<_>, _>>().unwrap(),
            )
        })
        .collect()
}

#[test]
fn acknowledged_commits_survive_power_cuts() {
    let dir = Path::new("/db");
    for round in 0..60u64 {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ ((round + 1) * 0x1234_5678));
        let fs = SimFs::new();
        let head = Head::open(dir, opts(&fs)).unwrap();
        let mut acked: BTreeMap<String, Vec<(i64, f64)>> = BTreeMap::new();
        let mut all: BTreeMap<String, Vec<(i64, f64)>> = BTreeMap::new();
        let batches = 1 + rng.next() % 12;
        for b in 0..batches {
            let mut app = head.appender();
            let mut batch: Vec<(String, i64, f64)> = Vec::new();
            for k in 0..(1 + rng.next() % 20) {
                let s = rng.next() % 6;
                let labels =
                    Labels::new([("__name__", "m".to_owned()), ("s", s.to_string())]).unwrap();
                let t = (b * 100 + k) as i64;
                let v = (rng.next() % 1000) as f64;
                app.append(&labels, t, v).unwrap();
                batch.push((labels.to_string(), t, v));
            }
            for (l, t, v) in &batch {
                all.entry(l.clone()).or_default().push((*t, *v));
            }
            // The last batch is cut off before its commit returns (or is
            // never committed): it may or may not survive, whole or not at all.
            if b + 1 == batches && rng.next() % 2 == 0 {
                break;
            }
            app.commit().unwrap();
            if rng.next() % 4 == 0 {
                head.checkpoint().unwrap();
            }
            for (l, t, v) in batch {
                acked.entry(l).or_default().push((t, v));
            }
        }
        let crashed = fs.crash(|n| rng.next() % (n + 1));
        drop(head);
        let head = Head::open(dir, opts(&crashed)).unwrap();
        let got = read_all(&head);
        for (l, want) in &acked {
            let have = got.get(l).map(Vec::as_slice).unwrap_or(&[]);
            assert!(
                want.iter().all(|x| have.contains(x)),
                "round {round}: {l} lost acknowledged samples: had {want:?}, reopened with {have:?}"
            );
        }
        for (l, have) in &got {
            let appended = all.get(l).map(Vec::as_slice).unwrap_or(&[]);
            assert!(
                have.iter().all(|x| appended.contains(x)),
                "round {round}: {l} has samples never appended"
            );
        }
    }
}
