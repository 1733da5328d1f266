//! Write-ahead log benchmarks: `vigil-wal` side by side with `okaywal`.
//!
//! Three families, all in one run so that the two logs see the same machine
//! state:
//!
//! 1. `append_<policy>_<size>`: append throughput of 100 B, 1 KiB and 64 KiB
//!    records under `SyncPolicy::Never`, `Batch` (1 ms / 1 MiB) and `Always`,
//!    from 1 and 8 threads. okaywal appears only next to `Always`: its
//!    `EntryWriter::commit` always fsyncs, so it has no equivalent of `Never`
//!    or `Batch`. `append_always_100B` (and `8t_x_batch64` below) also run
//!    `vigil_zero`: vigil-wal with `Options::zero_fill` (segments written
//!    with zeros rather than fallocated; its default is off).
//! 2. `always_100B_concurrent`: durable 100 B records from 8 threads that each
//!    append batches of 64 (`append_batch`; okaywal: an entry of 64 chunks per
//!    commit), and from 64 threads that each append single records (okaywal: a
//!    single-chunk entry per commit).
//! 3. `replay_1KiB`: open a log of 256 MiB of 1 KiB records and read every
//!    record back (okaywal: `WriteAheadLog::recover` with a log manager that
//!    reads every chunk and checks its CRC).
//!
//! Each criterion "iteration" is one round: a fixed number of records,
//! timed by wall clock from the moment all appending threads are released
//! until the last one returns (`iter_custom`). Opening a fresh log in a fresh
//! temporary directory under `/tmp`, spawning the threads, and closing and
//! deleting the log afterwards are not timed. The throughput that criterion
//! reports (elements and bytes per second) is per round: records per round
//! and payload bytes per round (frame headers not counted).
//!
//! okaywal is used with its defaults throughout: `WriteAheadLog::recover(dir,
//! manager)`, which is `Configuration::default_for(dir)` (1 MiB preallocated
//! segment files, a checkpoint every 768 KiB, 16 KiB buffers). For the append
//! benchmarks the manager is okaywal's own `LogVoid`, whose checkpoint does
//! nothing, so segment files are recycled as okaywal intends. See
//! `KeepLog` for the one place where the manager has to differ.
//!
//! `scripts/bench-wal` runs this and prints a summary table.

use std::hint::black_box;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group,
    criterion_main, measurement::WallTime,
};
use okaywal::{Entry, EntryId, LogManager, LogVoid, ReadChunkResult, SegmentReader, WriteAheadLog};
use tempfile::TempDir;
use vigil_wal::{Options, SyncPolicy, Wal};

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

/// Record sizes of the append benchmarks.
const SIZES: [(usize, &str); 3] = [(100, "100B"), (KIB, "1KiB"), (64 * KIB, "64KiB")];

/// A fresh temporary directory under `/tmp`, deleted when dropped.
fn temp_dir() -> TempDir {
    tempfile::Builder::new()
        .prefix("vigil-bench-")
        .tempdir_in("/tmp")
        .expect("create a temporary directory under /tmp")
}

/// A record payload of `size` bytes; the content does not matter to either
/// log, but it is not all zeros.
fn payload(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i * 31 + 7) as u8).collect()
}

/// Run `work(thread_index)` on `threads` threads released together; returns
/// the wall time from the release until the last thread finished. Spawning
/// is not timed.
fn timed_threads<F>(threads: usize, work: F) -> Duration
where
    F: Fn(usize) + Sync,
{
    let start = Barrier::new(threads + 1);
    thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let start = &start;
                let work = &work;
                s.spawn(move || {
                    start.wait();
                    work(t);
                })
            })
            .collect();
        start.wait();
        let t0 = Instant::now();
        for h in handles {
            h.join().expect("benchmark thread panicked");
        }
        t0.elapsed()
    })
}

/// One appending workload: `threads` threads append `records` records in all,
/// `batch` records per call.
#[derive(Clone, Copy)]
struct Load {
    size: usize,
    records: usize,
    threads: usize,
    batch: usize,
}

impl Load {
    fn calls_per_thread(&self) -> usize {
        assert_eq!(
            self.records % (self.threads * self.batch),
            0,
            "records must split evenly into threads and batches"
        );
        self.records / (self.threads * self.batch)
    }

    fn throughput(&self) -> Throughput {
        Throughput::ElementsAndBytes {
            elements: self.records as u64,
            bytes: (self.records * self.size) as u64,
        }
    }
}

/// One round of appends to a fresh vigil log. Under `Batch` the round ends
/// with `Wal::sync`, so its figure is durable records per second; under
/// `Never` the round is the appends alone (the records are queued or written
/// to the page cache, not durable); under `Always` every append returns
/// durable.
fn vigil_round(policy: SyncPolicy, load: Load) -> Duration {
    vigil_round_with(Options::default().sync(policy), load)
}

/// [`vigil_round`] with `Options::zero_fill`: the fresh log's first segment
/// is written with zeros in `open`, before the clock starts. 16 MiB segments
/// (a round writes at most 12 MB) keep that fill short.
fn vigil_zero_round(policy: SyncPolicy, load: Load) -> Duration {
    let opts = Options::default()
        .sync(policy)
        .zero_fill(true)
        .segment_size(16 << 20);
    vigil_round_with(opts, load)
}

fn vigil_round_with(opts: Options, load: Load) -> Duration {
    let policy = opts.sync;
    let dir = temp_dir();
    let wal = Wal::open(dir.path().join("wal"), opts).expect("open vigil log");
    let rec = payload(load.size);
    let batch: Vec<&[u8]> = vec![&rec[..]; load.batch];
    let calls = load.calls_per_thread();
    let took = timed_threads(load.threads, |_| {
        for _ in 0..calls {
            if load.batch == 1 {
                black_box(wal.append(&rec).expect("append"));
            } else {
                black_box(wal.append_batch(&batch).expect("append_batch"));
            }
        }
        if matches!(policy, SyncPolicy::Batch { .. }) {
            wal.sync().expect("sync");
        }
    });
    assert_eq!(wal.last_lsn(), load.records as u64);
    wal.close().expect("close vigil log");
    took
}

/// One round of commits to a fresh okaywal log (defaults; `LogVoid` manager).
/// Each call is one entry of `batch` chunks; `commit` returns after fsync.
fn okaywal_round(load: Load) -> Duration {
    let dir = temp_dir();
    let wal = WriteAheadLog::recover(dir.path().join("wal"), LogVoid).expect("open okaywal log");
    let rec = payload(load.size);
    let calls = load.calls_per_thread();
    let took = timed_threads(load.threads, |_| {
        for _ in 0..calls {
            let mut entry = wal.begin_entry().expect("begin_entry");
            for _ in 0..load.batch {
                black_box(entry.write_chunk(&rec).expect("write_chunk"));
            }
            black_box(entry.commit().expect("commit"));
        }
    });
    wal.shutdown().expect("shut okaywal down");
    took
}

/// Sum the rounds criterion asks for.
fn rounds(iters: u64, mut round: impl FnMut() -> Duration) -> Duration {
    (0..iters).map(|_| round()).sum()
}

fn configure(group: &mut BenchmarkGroup<'_, WallTime>) {
    // Each round is 50-500 ms of disk work: few samples, one round each.
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
}

/// Records per round, sized so that a round takes roughly 50-500 ms on a
/// small VM with a ~100 µs fsync (see `scripts/bench-wal`). okaywal gets
/// fewer records where it is slower, to keep the whole run short; the
/// comparison is by rate, not by time per round.
fn append_records(policy: &str, size: usize, threads: usize, okaywal: bool) -> usize {
    match (policy, size, threads, okaywal) {
        ("never", 100, _, _) => 1_000_000,
        ("never", KIB, _, _) => 200_000,
        ("never", _, _, _) => 4_096,
        ("batch", 100, _, _) => 1_000_000,
        ("batch", KIB, _, _) => 160_000,
        ("batch", _, _, _) => 2_048,
        ("always", 100 | KIB, 1, _) => 1_000,
        ("always", _, 1, _) => 500,
        ("always", 100 | KIB, _, false) => 12_000,
        ("always", 100 | KIB, _, true) => 8_000,
        ("always", _, _, _) => 2_000,
        _ => unreachable!("unknown policy {policy}"),
    }
}

/// Family 1: append throughput by policy, record size and thread count.
fn append(c: &mut Criterion) {
    let policies = [
        ("never", SyncPolicy::Never),
        (
            "batch",
            SyncPolicy::Batch {
                max_delay: Duration::from_millis(1),
                max_bytes: MIB,
            },
        ),
        ("always", SyncPolicy::Always),
    ];
    for (pname, policy) in policies {
        for (size, sname) in SIZES {
            let mut group = c.benchmark_group(format!("append_{pname}_{sname}"));
            configure(&mut group);
            for threads in [1, 8] {
                let load = Load {
                    size,
                    records: append_records(pname, size, threads, false),
                    threads,
                    batch: 1,
                };
                group.throughput(load.throughput());
                group.bench_function(BenchmarkId::new("vigil", format!("{threads}t")), |b| {
                    b.iter_custom(|iters| rounds(iters, || vigil_round(policy, load)))
                });
                if matches!(policy, SyncPolicy::Always) && size == 100 {
                    // The same log with zero-filled segments (`Options::zero_fill`).
                    group.bench_function(
                        BenchmarkId::new("vigil_zero", format!("{threads}t")),
                        |b| b.iter_custom(|iters| rounds(iters, || vigil_zero_round(policy, load))),
                    );
                }
                if matches!(policy, SyncPolicy::Always) {
                    // okaywal's commit fsyncs: its only policy is `Always`.
                    let load = Load {
                        records: append_records(pname, size, threads, true),
                        ..load
                    };
                    group.throughput(load.throughput());
                    group.bench_function(BenchmarkId::new("okaywal", format!("{threads}t")), |b| {
                        b.iter_custom(|iters| rounds(iters, || okaywal_round(load)))
                    });
                }
            }
            group.finish();
        }
    }
}

/// Family 2: durable 100 B records from many concurrent appenders.
fn concurrent(c: &mut Criterion) {
    let mut group = c.benchmark_group("always_100B_concurrent");
    configure(&mut group);
    let workloads = [
        // 8 threads, each appending batches of 64 records (okaywal: entries
        // of 64 chunks).
        (
            "8t_x_batch64",
            Load {
                size: 100,
                records: 8 * 64 * 200,
                threads: 8,
                batch: 64,
            },
            8 * 64 * 150,
        ),
        // 64 threads, each appending one record per call (okaywal: one
        // single-chunk entry per commit).
        (
            "64t_x_single",
            Load {
                size: 100,
                records: 64 * 500,
                threads: 64,
                batch: 1,
            },
            64 * 150,
        ),
    ];
    for (name, load, okaywal_records) in workloads {
        group.throughput(load.throughput());
        group.bench_function(BenchmarkId::new("vigil", name), |b| {
            b.iter_custom(|iters| rounds(iters, || vigil_round(SyncPolicy::Always, load)))
        });
        if load.batch > 1 {
            // 59 KiB groups: where zero-filled space gained most in the probes.
            group.bench_function(BenchmarkId::new("vigil_zero", name), |b| {
                b.iter_custom(|iters| rounds(iters, || vigil_zero_round(SyncPolicy::Always, load)))
            });
        }
        let load = Load {
            records: okaywal_records,
            ..load
        };
        group.throughput(load.throughput());
        group.bench_function(BenchmarkId::new("okaywal", name), |b| {
            b.iter_custom(|iters| rounds(iters, || okaywal_round(load)))
        });
    }
    group.finish();
}

// ---------------------------------------------------------------------------
// Replay.
// ---------------------------------------------------------------------------

const REPLAY_RECORD: usize = KIB;
const REPLAY_BYTES: usize = 256 * MIB;
const REPLAY_RECORDS: usize = REPLAY_BYTES / REPLAY_RECORD;
/// Both logs are written in batches (okaywal: entries) of this many records.
const REPLAY_BATCH: usize = 64;

/// Write the vigil log that replay reads: 256 MiB of 1 KiB records in
/// batches of 64, then close (which syncs).
fn write_vigil_replay_log(dir: &Path) {
    let wal = Wal::open(dir, Options::default().sync(SyncPolicy::Never)).expect("open vigil log");
    let rec = payload(REPLAY_RECORD);
    let batch: Vec<&[u8]> = vec![&rec[..]; REPLAY_BATCH];
    for _ in 0..REPLAY_RECORDS / REPLAY_BATCH {
        wal.append_batch(&batch).expect("append_batch");
    }
    wal.close().expect("close vigil log");
}

/// Open the vigil log and read every record; timed as a whole.
fn vigil_replay(dir: &Path) -> Duration {
    let t0 = Instant::now();
    let wal = Wal::open(dir, Options::default()).expect("open vigil log");
    let (mut records, mut bytes) = (0usize, 0usize);
    for r in wal.reader(0).expect("reader") {
        let (_, payload) = r.expect("read record");
        bytes += black_box(payload).len();
        records += 1;
    }
    let took = t0.elapsed();
    assert_eq!((records, bytes), (REPLAY_RECORDS, REPLAY_BYTES));
    drop(wal);
    took
}

/// A one-shot gate: `wait` blocks until `open` is called.
#[derive(Debug, Default)]
struct Gate {
    open: Mutex<bool>,
    cv: Condvar,
}

impl Gate {
    fn wait(&self) {
        let mut open = self.open.lock().expect("gate lock");
        while !*open {
            open = self.cv.wait(open).expect("gate lock");
        }
    }

    fn open(&self) {
        *self.open.lock().expect("gate lock") = true;
        self.cv.notify_all();
    }
}

/// The okaywal log manager of the replay benchmark. Recovery reads every
/// chunk of every entry and checks its CRC, counting records and bytes.
///
/// okaywal hands a segment to the manager's `checkpoint_to` every 768 KiB and
/// then empties it for reuse: with a checkpoint that completes, a default
/// okaywal log never holds 256 MiB to replay. This manager stands for a
/// storage layer that has not caught up: `checkpoint_to` blocks until the
/// benchmark opens the gate (after the timed part), then fails, so okaywal's
/// checkpoint thread stops without emptying anything and the log keeps all
/// its default-sized segments for the next round. The configuration stays
/// okaywal's default.
#[derive(Debug, Default)]
struct KeepLog {
    gate: Arc<Gate>,
    records: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
    buf: Vec<u8>,
}

impl KeepLog {
    fn handle(&self) -> KeepLog {
        KeepLog {
            gate: self.gate.clone(),
            records: self.records.clone(),
            bytes: self.bytes.clone(),
            buf: Vec::new(),
        }
    }
}

impl LogManager for KeepLog {
    fn recover(&mut self, entry: &mut Entry<'_>) -> io::Result<()> {
        loop {
            let mut chunk = match entry.read_chunk()? {
                ReadChunkResult::Chunk(chunk) => chunk,
                ReadChunkResult::EndOfEntry => return Ok(()),
                ReadChunkResult::AbortedEntry => {
                    return Err(io::Error::other("aborted entry in the replay log"));
                }
            };
            let len = chunk.bytes_remaining() as usize;
            self.buf.resize(len, 0);
            chunk.read_exact(&mut self.buf)?;
            if !chunk.check_crc()? {
                return Err(io::Error::other("chunk CRC mismatch in the replay log"));
            }
            black_box(&self.buf);
            self.records.fetch_add(1, Ordering::Relaxed);
            self.bytes.fetch_add(len as u64, Ordering::Relaxed);
        }
    }

    fn checkpoint_to(
        &mut self,
        _last_checkpointed_id: EntryId,
        _checkpointed_entries: &mut SegmentReader,
        _wal: &WriteAheadLog,
    ) -> io::Result<()> {
        self.gate.wait();
        Err(io::Error::other(
            "benchmark log manager keeps the log: checkpoint declined",
        ))
    }
}

/// Write the okaywal log that replay reads: 256 MiB of 1 KiB chunks in
/// entries of 64 chunks, with okaywal's default configuration.
fn write_okaywal_replay_log(dir: &Path) {
    let manager = KeepLog::default();
    let gate = manager.gate.clone();
    let wal = WriteAheadLog::recover(dir, manager).expect("open okaywal log");
    let rec = payload(REPLAY_RECORD);
    for _ in 0..REPLAY_RECORDS / REPLAY_BATCH {
        let mut entry = wal.begin_entry().expect("begin_entry");
        for _ in 0..REPLAY_BATCH {
            entry.write_chunk(&rec).expect("write_chunk");
        }
        entry.commit().expect("commit");
    }
    gate.open();
    // The checkpoint thread ends with the declined checkpoint; that error is
    // expected here.
    let _ = wal.shutdown();
}

/// Open (recover) the okaywal log, reading every chunk; timed as a whole.
fn okaywal_replay(dir: &Path) -> Duration {
    let manager = KeepLog::default();
    let handle = manager.handle();
    let t0 = Instant::now();
    let wal = WriteAheadLog::recover(dir, manager).expect("recover okaywal log");
    let took = t0.elapsed();
    let records = handle.records.load(Ordering::Relaxed) as usize;
    let bytes = handle.bytes.load(Ordering::Relaxed) as usize;
    handle.gate.open();
    let _ = wal.shutdown();
    assert_eq!((records, bytes), (REPLAY_RECORDS, REPLAY_BYTES));
    took
}

/// Family 3: replay of 256 MiB of 1 KiB records.
fn replay(c: &mut Criterion) {
    let mut group = c.benchmark_group("replay_1KiB");
    configure(&mut group);
    group.throughput(Throughput::ElementsAndBytes {
        elements: REPLAY_RECORDS as u64,
        bytes: REPLAY_BYTES as u64,
    });
    let param = format!("{}MiB", REPLAY_BYTES / MIB);
    // The logs are written lazily, only when their benchmark runs (so that a
    // filtered run does not pay for them), and deleted at the end.
    let root = temp_dir();
    let vigil_dir: PathBuf = root.path().join("vigil");
    let okaywal_dir: PathBuf = root.path().join("okaywal");
    let mut vigil_written = false;
    group.bench_function(BenchmarkId::new("vigil", &param), |b| {
        if !vigil_written {
            write_vigil_replay_log(&vigil_dir);
            vigil_written = true;
        }
        b.iter_custom(|iters| rounds(iters, || vigil_replay(&vigil_dir)))
    });
    let mut okaywal_written = false;
    group.bench_function(BenchmarkId::new("okaywal", &param), |b| {
        if !okaywal_written {
            write_okaywal_replay_log(&okaywal_dir);
            okaywal_written = true;
        }
        b.iter_custom(|iters| rounds(iters, || okaywal_replay(&okaywal_dir)))
    });
    group.finish();
    drop(root);
}

criterion_group!(benches, append, concurrent, replay);
criterion_main!(benches);
