//! Times a reopen of an existing log: `Wal::open`, then one reader over
//! every record, with and without `Options::verify_sealed`, alternating,
//! and prints the wall time and the calling thread's CPU time of each step:
//!
//!     cargo run --release -p vigil-wal --example wal-open -- DIR [ROUNDS]
//!
//! DIR must hold a closed log (for example the WAL that
//! `benches/examples/tsdb_replay.rs` writes); it is opened read-only in
//! effect (nothing is appended), and a clean log has no tail to cut.

use std::time::Instant;

use vigil_wal::{Options, Wal};

/// The calling thread's CPU time in seconds, from the scheduler's
/// nanosecond counter (`/proc/thread-self/schedstat`, first field).
fn thread_cpu() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0.0, |ns| ns as f64 / 1e9)
}

fn main() -> Result<(), vigil_wal::Error> {
    let args: Vec<String> = std::env::args().collect();
    let dir = args
        .get(1)
        .expect("usage: wal-open DIR [ROUNDS]")
        .to_owned();
    let rounds: usize = args.get(2).map_or(3, |s| s.parse().expect("ROUNDS"));
    for round in 0..rounds {
        for verify in [true, false] {
            let (t0, c0) = (Instant::now(), thread_cpu());
            let wal = Wal::open(&dir, Options::default().verify_sealed(verify))?;
            let (open_wall, open_cpu) = (t0.elapsed().as_secs_f64(), thread_cpu() - c0);
            let (t1, c1) = (Instant::now(), thread_cpu());
            let (mut records, mut bytes) = (0u64, 0u64);
            for r in wal.reader(0)? {
                let (_, b) = r?;
                records += 1;
                bytes += b.len() as u64;
            }
            let (read_wall, read_cpu) = (t1.elapsed().as_secs_f64(), thread_cpu() - c1);
            println!(
                "round {round} verify_sealed {verify:5}: open {:6.1} ms wall {:6.1} ms CPU; \
                 read {records} records, {:.0} MB: {:6.1} ms wall {:6.1} ms CPU; \
                 total {:6.1} ms wall",
                open_wall * 1e3,
                open_cpu * 1e3,
                bytes as f64 / 1e6,
                read_wall * 1e3,
                read_cpu * 1e3,
                (open_wall + read_wall) * 1e3
            );
            drop(wal);
        }
    }
    Ok(())
}
