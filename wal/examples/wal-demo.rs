//! Writes a log from several threads, reopens it, reads it back, takes a
//! snapshot and truncates: the WAL's whole life in a few seconds.
//!
//! `cargo run --release -p vigil-wal --example wal-demo [DIR]` (a temporary
//! directory when none is given; it is removed at the end).

use std::sync::Arc;
use std::time::Instant;

use vigil_wal::{Options, SyncPolicy, Wal};

const THREADS: u64 = 8;
const PER_THREAD: u64 = 2_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (dir, temporary) = match std::env::args_os().nth(1) {
        Some(d) => (std::path::PathBuf::from(d), false),
        None => (
            std::env::temp_dir().join(format!("vigil-wal-demo-{}", std::process::id())),
            true,
        ),
    };
    let opts = || {
        Options::default()
            .sync(SyncPolicy::Always)
            .segment_size(1 << 20)
    };

    let wal = Arc::new(Wal::open(&dir, opts())?);
    let start_lsn = wal.last_lsn() + 1;
    println!(
        "opened {} (next sequence number {start_lsn})",
        dir.display()
    );

    let t = Instant::now();
    let handles: Vec<_> = (0..THREADS)
        .map(|thread| {
            let wal = wal.clone();
            std::thread::spawn(move || -> Result<(), vigil_wal::Error> {
                for i in 0..PER_THREAD {
                    let record = format!("thread {thread} record {i:05} {}", "x".repeat(60));
                    wal.append(record.as_bytes())?;
                }
                Ok(())
            })
        })
        .collect();
    for h in handles {
        h.join().expect("appender thread panicked")?;
    }
    let took = t.elapsed();
    let n = THREADS * PER_THREAD;
    println!(
        "appended {n} records of ~90 B from {THREADS} threads with SyncPolicy::Always in {:.0} ms: {:.0} durable records/s",
        took.as_secs_f64() * 1e3,
        n as f64 / took.as_secs_f64()
    );
    println!("durable up to sequence number {}", wal.durable_lsn());
    let wal = Arc::into_inner(wal).expect("threads have finished");
    wal.close()?;
    println!("closed");

    let t = Instant::now();
    let wal = Wal::open(&dir, opts())?;
    let summary = wal.recovery();
    println!(
        "reopened in {:.1} ms: {} segments, last sequence number {}, torn tail: {}",
        t.elapsed().as_secs_f64() * 1e3,
        summary.segments,
        summary.last_lsn,
        summary
            .torn_tail
            .as_ref()
            .map_or("none".to_owned(), |t| format!(
                "{} bytes cut",
                t.discarded_bytes
            )),
    );

    let t = Instant::now();
    let mut per_thread = [0u64; THREADS as usize];
    let mut bytes = 0usize;
    let mut count = 0u64;
    for item in wal.reader(start_lsn)? {
        let (_, record) = item?;
        let text = std::str::from_utf8(&record)?;
        let mut words = text.split(' ');
        let thread: usize = words.nth(1).ok_or("bad record")?.parse()?;
        let i: u64 = words.nth(1).ok_or("bad record")?.parse()?;
        // Each thread's records come back in the order it appended them.
        assert_eq!(i, per_thread[thread], "thread {thread} out of order");
        per_thread[thread] += 1;
        bytes += record.len();
        count += 1;
    }
    assert_eq!(count, n);
    println!(
        "read back {count} records ({bytes} bytes) in {:.1} ms, every thread's records in its own order",
        t.elapsed().as_secs_f64() * 1e3
    );

    let last = wal.last_lsn();
    wal.save_snapshot(last, format!("{count} records seen").as_bytes())?;
    let snap = wal.latest_snapshot()?.ok_or("snapshot missing")?;
    println!(
        "saved a snapshot at {} ({:?}); the log now starts at {}",
        snap.lsn,
        std::str::from_utf8(&snap.data)?,
        wal.oldest_lsn()
    );
    let next = wal.append(b"after the snapshot")?;
    println!("next append got sequence number {next}: numbers are never reused");
    wal.close()?;
    if temporary {
        std::fs::remove_dir_all(&dir)?;
    }
    Ok(())
}
