//! Restart time alone: builds the WAL of the `tsdb_ingest_full` workload
//! once in DIR (if DIR holds none yet), then reopens DIR REPS times,
//! replaying the whole WAL each time, and prints wall time and CPU-seconds
//! of each reopen:
//!
//!     cargo run --release -p vigil-benches --example tsdb_replay -- LABELS.json DIR [REPS] [SERIES] [ROUNDS]
//!
//! Keeping the WAL between runs lets two builds be timed on the same bytes,
//! alternately, which a shared machine needs.

#[path = "../common/ingest.rs"]
mod ingest;

use std::time::{Duration, Instant};

use vigil_tsdb::head::{Head, HeadOptions};
use vigil_wal::SyncPolicy;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: tsdb_replay LABELS.json DIR [REPS] [SERIES] [ROUNDS]";
    let file = args.get(1).expect(usage);
    let dir = std::path::PathBuf::from(args.get(2).expect(usage));
    let reps: usize = args.get(3).map_or(3, |s| s.parse().unwrap());
    let series: usize = args.get(4).map_or(10_000, |s| s.parse().unwrap());
    let rounds: usize = args.get(5).map_or(3_000, |s| s.parse().unwrap());
    let fresh = !dir.exists();
    if fresh {
        let sets = ingest::parse_label_sets(&std::fs::read_to_string(file).unwrap(), series);
        let opts = HeadOptions {
            wal: vigil_wal::Options::default().sync(SyncPolicy::Batch {
                max_delay: Duration::from_millis(100),
                max_bytes: 64 << 20,
            }),
            ..HeadOptions::default()
        };
        let head = Head::open(&dir, opts).unwrap();
        // Written as `tsdb_ingest_full` writes it: promtool's split, from
        // as many threads as cores.
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        ingest::ingest(&head, &sets, rounds, threads);
        println!(
            "wrote the WAL of {} series x {rounds} rounds into {}",
            sets.len(),
            dir.display()
        );
    }
    for _ in 0..reps {
        let start = Instant::now();
        let cpu = ingest::cpu_secs();
        let head = Head::open(&dir, HeadOptions::default()).unwrap();
        let took = start.elapsed().as_secs_f64();
        let cpu = ingest::cpu_secs() - cpu;
        let samples = series * rounds;
        println!(
            "replay: {} series, {} chunks ({} sealed bytes, {} open), {samples} samples, wall {took:.3} s, CPU {cpu:.2} s = {:.1} M samples/s, {:.1} M samples/CPU-s",
            head.num_series(),
            head.stats(0).chunks,
            head.memory().sealed_chunks,
            head.memory().open_chunks,
            samples as f64 / took / 1e6,
            samples as f64 / cpu / 1e6
        );
        drop(head);
    }
}
