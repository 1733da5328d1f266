//! Head ingest: the workload of `promtool tsdb bench write` (see
//! ../shared/corpus/bench/README.md): label sets from the shared generator,
//! one sample per series per round, timestamps +30 s and values +1000 per
//! round, split as promtool splits it (`common/ingest.rs`: shards of 1,000
//! series, a commit per shard and round; one thread here), WAL on (`SyncPolicy::Batch`, as Prometheus's
//! WAL, which fsyncs segments rather than commits).
//!
//! Each criterion iteration ingests `ROUNDS` rounds into a fresh head, so the
//! figure includes creating the 10,000 series once. Before measuring, it
//! prints the head's memory per series after the workload, part by part
//! (`Head::memory`), after 1 round and after `ROUNDS` rounds.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

#[path = "../common/ingest.rs"]
mod ingest;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vigil_tsdb::head::{Head, HeadOptions};
use vigil_tsdb::labels::Labels;
use vigil_wal::SyncPolicy;

const SERIES: usize = 10_000;
const ROUNDS: usize = 300;

/// The first `n` label sets of the shared generator (seed 1).
fn label_sets(n: usize) -> Vec<Labels> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/corpus/bench/gen_bench_series.py");
    let out = Command::new("python3")
        .arg(&script)
        .args(["--lines", &n.to_string()])
        .output()
        .unwrap_or_else(|e| panic!("run {} (../shared must exist): {e}", script.display()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ingest::parse_label_sets(&String::from_utf8(out.stdout).unwrap(), n)
}

/// Ingests the workload into a fresh head in a temporary directory.
fn ingest(sets: &[Labels], rounds: usize) -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let opts = HeadOptions {
        wal: vigil_wal::Options::default().sync(SyncPolicy::Batch {
            max_delay: Duration::from_millis(100),
            max_bytes: 64 << 20,
        }),
        ..HeadOptions::default()
    };
    let head = Head::open(dir.path(), opts).unwrap();
    let start = Instant::now();
    ingest::ingest(&head, sets, rounds, 1);
    let took = start.elapsed();
    drop(head);
    took
}

/// Prints the head's heap bytes per series after `rounds` rounds.
fn report_memory(sets: &[Labels], rounds: usize) {
    let head = Head::in_memory(HeadOptions::default());
    ingest::ingest(&head, sets, rounds, 1);
    let m = head.memory();
    eprintln!(
        "tsdb_ingest memory after {rounds} round(s), {} series:",
        m.series
    );
    eprint!("{}", ingest::breakdown(&m, m.series as f64));
}

fn bench(c: &mut Criterion) {
    let sets = label_sets(SERIES);
    report_memory(&sets, 1);
    report_memory(&sets, ROUNDS);
    let mut g = c.benchmark_group("tsdb_ingest");
    g.sample_size(10);
    g.throughput(Throughput::Elements((SERIES * ROUNDS) as u64));
    g.bench_function("10k_series_x_300_rounds", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| ingest(&sets, ROUNDS)).sum())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
