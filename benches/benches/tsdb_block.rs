//! Opening a large block (100,000 series, 4 labels each, 2 h at 15 s) and
//! selecting in it (one series; 200 series decoded eagerly, or listed
//! lazily with one decoded): time per open and per select, and the heap a
//! block keeps once open (counted by a global allocator wrapper, printed
//! once before the timings). Mapped file pages are page cache, not heap,
//! and are not counted. Then compaction of three blocks (samples per
//! second merged).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};

use criterion::{Criterion, criterion_group, criterion_main};
use vigil_tsdb::block::{Block, write_block};
use vigil_tsdb::db::{Db, DbOptions};
use vigil_tsdb::index::Matcher;
use vigil_tsdb::labels::Labels;

const SERIES: usize = 100_000;
const SAMPLES: i64 = 480;

/// Bytes currently allocated on the heap by the whole process.
static LIVE: AtomicIsize = AtomicIsize::new(0);

struct Counting;

// SAFETY: forwards every call to the system allocator unchanged; only
// counts the bytes.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn labels(i: usize) -> Labels {
    Labels::new([
        ("__name__", format!("metric_{}", i % 500)),
        (
            "instance",
            format!("10.1.{}.{}:9100", (i / 500) % 200, i % 250),
        ),
        (
            "job",
            ["api", "web", "db", "cache", "node"][i % 5].to_owned(),
        ),
        ("pod", format!("pod-{i:06}")),
    ])
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let series = (0..SERIES).map(|i| {
        let s: Vec<(i64, f64)> = (0..SAMPLES)
            .map(|k| (k * 15_000, (k * (i as i64 % 17 + 1)) as f64))
            .collect();
        (labels(i), s)
    });
    let path = write_block(dir.path(), 0, SAMPLES * 15_000, series).unwrap();
    let size = |f: &str| std::fs::metadata(path.join(f)).unwrap().len();
    let before = LIVE.load(Ordering::Relaxed);
    let block = Block::open(&path).unwrap();
    let kept = LIVE.load(Ordering::Relaxed) - before;
    eprintln!(
        "tsdb_block: {SERIES} series; index file {} bytes, chunks file {} bytes; \
         heap kept by the open block: {kept} bytes ({:.1} per series)",
        size("index"),
        size("chunks"),
        kept as f64 / SERIES as f64
    );
    drop(block);

    let mut g = c.benchmark_group("tsdb_block");
    g.sample_size(10);
    g.bench_function("open_100k_series", |b| {
        b.iter(|| black_box(Block::open(&path).unwrap()))
    });
    let block = Block::open(&path).unwrap();
    let one = [
        Matcher::equal("__name__", "metric_7"),
        Matcher::equal("pod", "pod-050007"),
    ];
    g.bench_function("select_one_series_of_100k", |b| {
        b.iter(|| {
            let got = block.select(&one, 0, SAMPLES * 15_000).unwrap();
            assert_eq!(got.len(), 1);
            black_box(got)
        })
    });
    // One metric name: 200 series. Eager: every series decoded; lazy: the
    // series listed, one of them decoded.
    let name = [Matcher::equal("__name__", "metric_7")];
    g.bench_function("select_200_decode_all", |b| {
        b.iter(|| {
            let got = block.select(&name, 0, SAMPLES * 15_000).unwrap();
            assert_eq!(got.len(), 200);
            black_box(got)
        })
    });
    g.bench_function("select_200_lazy_decode_one", |b| {
        let mut buf = Vec::new();
        b.iter(|| {
            let got = block.select_series(&name, 0, SAMPLES * 15_000).unwrap();
            assert_eq!(got.len(), 200);
            buf.clear();
            block
                .read_series(&got[100], 0, SAMPLES * 15_000, &mut buf)
                .unwrap();
            assert_eq!(buf.len(), SAMPLES as usize);
            black_box(&buf);
        })
    });
    g.finish();
    compaction(c);
}

/// Compaction of three adjacent 2 h blocks of 20,000 series × 480 samples:
/// the same series in all three (decoded, merged, re-encoded), or different
/// series in each (chunks copied whole). Each iteration copies the three
/// blocks into a fresh store first (not timed).
fn compaction(c: &mut Criterion) {
    const N: usize = 20_000;
    const RANGE: i64 = SAMPLES * 15_000;
    let src = tempfile::tempdir().unwrap();
    for (kind, offset) in [("same", [0, 0, 0]), ("disjoint", [0, N, 2 * N])] {
        let dir = src.path().join(kind);
        std::fs::create_dir_all(&dir).unwrap();
        for (b, off) in offset.iter().enumerate() {
            let start = b as i64 * RANGE;
            let series = (0..N).map(|i| {
                let s: Vec<(i64, f64)> = (0..SAMPLES)
                    .map(|k| (start + k * 15_000, (k * (i as i64 % 17 + 1)) as f64))
                    .collect();
                (labels(i + off), s)
            });
            write_block(&dir, start, start + RANGE, series).unwrap();
        }
    }
    let mut g = c.benchmark_group("tsdb_compact");
    g.sample_size(10);
    g.throughput(criterion::Throughput::Elements(
        3 * N as u64 * SAMPLES as u64,
    ));
    for kind in ["same", "disjoint"] {
        g.bench_function(format!("3_blocks_20k_series_{kind}"), |b| {
            b.iter_batched(
                || {
                    let store = tempfile::tempdir().unwrap();
                    let blocks = store.path().join("blocks");
                    for e in std::fs::read_dir(src.path().join(kind)).unwrap() {
                        let from = e.unwrap().path();
                        let to = blocks.join(from.file_name().unwrap());
                        std::fs::create_dir_all(&to).unwrap();
                        for f in std::fs::read_dir(&from).unwrap() {
                            let f = f.unwrap().path();
                            std::fs::copy(&f, to.join(f.file_name().unwrap())).unwrap();
                        }
                    }
                    let opts = DbOptions {
                        block_range_ms: RANGE,
                        retention_ms: None,
                        ..DbOptions::default()
                    };
                    let db = Db::open(store.path(), opts).unwrap();
                    (store, db)
                },
                |(store, db)| {
                    assert!(db.compact_oldest(3).unwrap());
                    (store, db)
                },
                criterion::BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
