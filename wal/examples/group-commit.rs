//! How well concurrent appenders share fsyncs under `SyncPolicy::Always`.
//!
//! `cargo run --release -p vigil-wal --example group-commit -- [threads] [seconds] [record bytes] [spin fraction] [gather fraction] [zero]`
//! (defaults 8, 3, 100, and `Options`' default fractions; `zero` turns on
//! `Options::zero_fill`, whose first segment is filled before the clock
//! starts). N threads each append single records in a loop. It
//! prints the durable records per second, the fsyncs per second and records
//! per fsync (from [`Wal::stats`]), and the raw latency of a 100 B `pwrite` +
//! `fdatasync` measured in the same directory just before and after, which
//! gives the bound N records per fsync would reach. For iterating on the
//! group commit; the figures of record come from the criterion benches.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use vigil_wal::{Options, SyncPolicy, Wal};

/// Median of 300 × (pwrite 100 B, fdatasync) on a zero-filled file.
fn raw_fsync(dir: &Path) -> std::io::Result<Duration> {
    let path = dir.join("probe");
    let f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)?;
    f.write_all_at(&vec![0u8; 1 << 20], 0)?;
    f.sync_all()?;
    let buf = [b'x'; 100];
    let mut lat: Vec<Duration> = (0..300u64)
        .map(|i| {
            let t = Instant::now();
            f.write_all_at(&buf, i * 100)?;
            f.sync_data()?;
            Ok(t.elapsed())
        })
        .collect::<std::io::Result<_>>()?;
    std::fs::remove_file(&path)?;
    lat.sort();
    Ok(lat[lat.len() / 2])
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let threads: usize = args.next().map_or(Ok(8), |a| a.parse())?;
    let seconds: f64 = args.next().map_or(Ok(3.0), |a| a.parse())?;
    let size: usize = args.next().map_or(Ok(100), |a| a.parse())?;
    let mut opts = Options::default().sync(SyncPolicy::Always);
    if let Some(spin) = args.next() {
        opts = opts.spin_fraction(spin.parse()?);
    }
    if let Some(gather) = args.next() {
        opts = opts.gather_fraction(gather.parse()?);
    }
    if let Some(zero) = args.next() {
        opts = opts.zero_fill(zero == "zero");
    }
    let root = std::env::temp_dir().join(format!("vigil-wal-group-commit-{}", std::process::id()));
    std::fs::create_dir_all(&root)?;
    let before = raw_fsync(&root)?;
    let wal_zero = opts.zero_fill;
    let wal = Wal::open(root.join("wal"), opts)?;
    let record = vec![7u8; size];
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                while Instant::now() < deadline {
                    wal.append(&record).expect("append");
                }
            });
        }
    });
    let took = t0.elapsed().as_secs_f64();
    let stats = wal.stats();
    wal.close()?;
    let after = raw_fsync(&root)?;
    std::fs::remove_dir_all(&root)?;
    let fsync = before.min(after).as_secs_f64();
    let rate = stats.synced_records as f64 / took;
    let bound = threads as f64 / fsync;
    println!(
        "{threads} threads, {size} B: {rate:.0} records/s, {:.0} fsyncs/s, {:.2} records per fsync, \
         writing or syncing {:.0} % of the time ({:.0} us per group), {} sleeps, {} slow yields; \
         zero fill {}; raw fsync {:.1} / {:.1} us (before / after): bound {bound:.0} records/s, {:.0} %",
        stats.syncs as f64 / took,
        stats.synced_records as f64 / stats.syncs.max(1) as f64,
        100.0 * stats.sync_time.as_secs_f64() / took,
        1e6 * stats.sync_time.as_secs_f64() / stats.syncs.max(1) as f64,
        stats.sleeps,
        stats.slow_yields,
        if wal_zero { "on" } else { "off" },
        before.as_secs_f64() * 1e6,
        after.as_secs_f64() * 1e6,
        100.0 * rate / bound
    );
    Ok(())
}
