//! The full `promtool tsdb bench write --metrics=10000 --scrapes=3000`
//! workload on the vigil head, as one process, to be timed and measured
//! (peak RSS) beside promtool by `scripts/bench-tsdb-ingest`:
//!
//!     cargo run --release -p vigil-benches --example tsdb_ingest_full -- LABELS.json [SERIES] [ROUNDS] [THREADS]
//!
//! LABELS.json is the output of ../shared/corpus/bench/gen_bench_series.py.
//! The series are appended in promtool's shards of 1,000 (`common/ingest.rs`)
//! from THREADS threads (default: the number of cores, as promtool's
//! goroutines run on all of them). Prints samples/s, the thread count, the
//! head's series count, the process's peak RSS, and the restart time:
//! replaying the whole WAL, and loading a checkpoint.
//! With `HEAD_MEMORY=1` it measures the head's own memory instead (no WAL);
//! with `INGEST_ONLY=1` it stops after the ingest (for profiling it);
//! `WAL_MAX_MIB=n` sets the WAL's batch size (default 8, see `main`).

#[path = "../common/ingest.rs"]
mod ingest;

use std::time::{Duration, Instant};

use vigil_tsdb::head::{Head, HeadOptions};
use vigil_tsdb::labels::Labels;
use vigil_wal::SyncPolicy;

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// The head's own memory: the same workload into a head without a WAL,
/// measured as the growth of the resident set (the label sets, already
/// loaded, are not counted, but the head's copy of their strings is), and
/// as the head's own account of its heap bytes, part by part.
fn head_memory(sets: &[Labels], rounds: usize) {
    let before = rss_kib();
    let head = Head::in_memory(HeadOptions::default());
    // One thread: the figure is about the head, not about scheduling.
    ingest::ingest(&head, sets, rounds, 1);
    let grew = rss_kib().saturating_sub(before) * 1024;
    let label_bytes: usize = sets
        .iter()
        .map(|l| l.iter().map(|(n, v)| n.len() + v.len()).sum::<usize>())
        .sum();
    let n = sets.len() as f64;
    println!(
        "vigil head (no WAL): resident set grew {:.1} MiB for {} series x {rounds} samples = {} bytes per series \
         (their label strings: {} bytes per series before interning)",
        grew as f64 / (1 << 20) as f64,
        sets.len(),
        grew / sets.len() as u64,
        label_bytes / sets.len()
    );
    print!("{}", ingest::breakdown(&head.memory(), n));
    drop(head);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let file = args
        .get(1)
        .expect("usage: tsdb_ingest_full LABELS.json [SERIES] [ROUNDS] [THREADS]");
    let series: usize = args.get(2).map_or(10_000, |s| s.parse().unwrap());
    let rounds: usize = args.get(3).map_or(3_000, |s| s.parse().unwrap());
    let threads: usize = args.get(4).map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        |s| s.parse().unwrap(),
    );
    let sets = ingest::parse_label_sets(&std::fs::read_to_string(file).unwrap(), series);
    if std::env::var_os("HEAD_MEMORY").is_some() {
        head_memory(&sets, rounds);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // The WAL writes and fsyncs every 100 ms or every WAL_MAX_MIB MiB
    // queued (default 8). Until 2026-11-23 it was 64 MiB, which let a fast
    // ingest queue 20-40 MB between two writes (peak RSS 65-103 MiB with
    // the raw open chunks, against 55-69 at 8 MiB); Prometheus's WAL
    // queues a 32 KiB page.
    let wal_mib: usize = std::env::var("WAL_MAX_MIB")
        .ok()
        .map_or(8, |s| s.parse().expect("WAL_MAX_MIB: a number of MiB"));
    let opts = HeadOptions {
        wal: vigil_wal::Options::default().sync(SyncPolicy::Batch {
            max_delay: Duration::from_millis(100),
            max_bytes: wal_mib << 20,
        }),
        ..HeadOptions::default()
    };
    let head = Head::open(dir.path(), opts).unwrap();
    let start = Instant::now();
    let cpu = ingest::cpu_secs();
    ingest::ingest(&head, &sets, rounds, threads);
    let took = start.elapsed();
    let cpu = ingest::cpu_secs() - cpu;
    let samples = sets.len() * rounds;
    println!(
        "vigil head: {samples} samples in {:.2} s = {:.2} M samples/s; {threads} threads; {} series; peak RSS {} MiB; \
         {cpu:.2} CPU-s = {:.2} M samples/CPU-s",
        took.as_secs_f64(),
        samples as f64 / took.as_secs_f64() / 1e6,
        head.num_series(),
        peak_rss_kib() / 1024,
        samples as f64 / cpu / 1e6
    );
    if std::env::var_os("INGEST_ONLY").is_some() {
        return;
    }
    // Restart: open the same directory again, which replays the whole WAL.
    let opts = HeadOptions::default();
    drop(head);
    let start = Instant::now();
    let cpu = ingest::cpu_secs();
    let head = Head::open(dir.path(), opts).unwrap();
    let took = start.elapsed();
    let cpu = ingest::cpu_secs() - cpu;
    println!(
        "vigil head: reopened (WAL replay of {samples} samples, {} series, {} threads) in {:.2} s = {:.1} M samples/s; \
         {cpu:.2} CPU-s = {:.1} M samples/CPU-s",
        head.num_series(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        took.as_secs_f64(),
        samples as f64 / took.as_secs_f64() / 1e6,
        samples as f64 / cpu / 1e6
    );
    // Restart after a checkpoint: load it instead of replaying.
    let start = Instant::now();
    head.checkpoint().unwrap();
    let saved = start.elapsed();
    drop(head);
    let start = Instant::now();
    let head = Head::open(dir.path(), HeadOptions::default()).unwrap();
    let took = start.elapsed();
    println!(
        "vigil head: checkpoint written in {:.2} s; reopened from it ({} series, {samples} samples) in {:.3} s = {:.0} M samples/s",
        saved.as_secs_f64(),
        head.num_series(),
        took.as_secs_f64(),
        samples as f64 / took.as_secs_f64() / 1e6
    );
}
