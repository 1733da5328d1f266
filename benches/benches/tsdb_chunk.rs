//! Chunk codec speed: vigil-tsdb beside tsz (plain Gorilla) and pco, per
//! sample, on the same chunks (the default policy: 240 samples or 1 h).
//!
//! Data: the first 2 h of the generated node_exporter day (513 series) and
//! the real series of `shared/corpus/series` (1,331 series, 57 min).
//! Criterion prints samples/s (elements). Bytes per sample are not a
//! timing: `cargo run --release -p vigil-benches --example tsdb_chunk_bytes`.
//!
//! - `encode/vigil_append_seal`: what a head does: append every sample to an
//!   open chunk, then seal it (reusing one `Encoder`).
//! - `encode/vigil_append`: the open (Gorilla) chunk alone.
//! - `decode/*`: every sample of every chunk, checksummed.

#[path = "../common/tsdb_data.rs"]
mod tsdb_data;

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tsdb_data::{Dataset, chunks, pco_decode, pco_encode, tsz_decode, tsz_encode, vigil_open};
use vigil_tsdb::chunk::{Chunk, ChunkPolicy, ChunkWriter, Encoder};

fn checksum(acc: &mut (i64, u64), t: i64, v: f64) {
    acc.0 = acc.0.wrapping_add(t);
    acc.1 = acc.1.wrapping_add(v.to_bits());
}

fn bench_data(c: &mut Criterion, label: &str, data: &Dataset) {
    let cs = chunks(data, ChunkPolicy::default());
    let samples: usize = cs.iter().map(|c| c.len()).sum();
    eprintln!("{label}: {} chunks, {samples} samples", cs.len());

    let mut g = c.benchmark_group(format!("tsdb_chunk/encode/{label}"));
    g.throughput(Throughput::Elements(samples as u64));
    g.bench_function("vigil_append_seal", |b| {
        let mut enc = Encoder::new();
        let mut out = Vec::with_capacity(samples);
        b.iter(|| {
            out.clear();
            for c in &cs {
                let mut w = ChunkWriter::new();
                for &(t, v) in c.iter() {
                    w.append(t, v).expect("append");
                }
                w.seal_into(&mut enc, &mut out);
            }
            black_box(out.len())
        })
    });
    g.bench_function("vigil_append", |b| {
        b.iter(|| {
            let mut n = 0;
            for c in &cs {
                n += vigil_open(c).bytes().len();
            }
            black_box(n)
        })
    });
    g.bench_function("vigil_encode_slice", |b| {
        let mut enc = Encoder::new();
        let mut out = Vec::with_capacity(samples);
        b.iter(|| {
            out.clear();
            for c in &cs {
                enc.encode(c, &mut out).expect("encode");
            }
            black_box(out.len())
        })
    });
    g.bench_function("tsz", |b| {
        b.iter(|| {
            let mut n = 0;
            for c in &cs {
                n += tsz_encode(c).len();
            }
            black_box(n)
        })
    });
    g.bench_function("pco", |b| {
        b.iter(|| {
            let mut n = 0;
            for c in &cs {
                let (t, v) = pco_encode(c);
                n += t.len() + v.len();
            }
            black_box(n)
        })
    });
    g.finish();

    // Encoded forms, made once.
    let mut enc = Encoder::new();
    let sealed: Vec<Vec<u8>> = cs
        .iter()
        .map(|c| {
            let mut out = Vec::new();
            enc.encode(c, &mut out).expect("encode");
            out
        })
        .collect();
    let open: Vec<Vec<u8>> = cs.iter().map(|c| vigil_open(c).bytes().to_vec()).collect();
    let tsz: Vec<Box<[u8]>> = cs.iter().map(|c| tsz_encode(c)).collect();
    let pco: Vec<(Vec<u8>, Vec<u8>)> = cs.iter().map(|c| pco_encode(c)).collect();

    let mut g = c.benchmark_group(format!("tsdb_chunk/decode/{label}"));
    g.throughput(Throughput::Elements(samples as u64));
    for (name, bytes) in [("vigil_sealed", &sealed), ("vigil_open", &open)] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut acc = (0i64, 0u64);
                for c in bytes.iter() {
                    for s in Chunk::new(c).expect("chunk").iter() {
                        let (t, v) = s.expect("sample");
                        checksum(&mut acc, t, v);
                    }
                }
                black_box(acc)
            })
        });
    }
    g.bench_function("tsz", |b| {
        let mut out = Vec::new();
        b.iter(|| {
            let mut acc = (0i64, 0u64);
            for c in &tsz {
                // tsz's reader takes ownership of its bytes.
                tsz_decode(c.clone(), &mut out);
                for &(t, v) in &out {
                    checksum(&mut acc, t, v);
                }
            }
            black_box(acc)
        })
    });
    g.bench_function("pco", |b| {
        b.iter(|| {
            let mut acc = (0i64, 0u64);
            for (t, v) in &pco {
                let (ts, vs) = pco_decode(t, v);
                for (&t, &v) in ts.iter().zip(&vs) {
                    checksum(&mut acc, t, v);
                }
            }
            black_box(acc)
        })
    });
    g.finish();
}

fn bench(c: &mut Criterion) {
    let mut generated = tsdb_data::node_exporter_day();
    for s in &mut generated.series {
        s.samples.truncate(480); // 2 h
    }
    bench_data(c, "generated_2h", &generated);
    bench_data(c, "real", &tsdb_data::real_series());
}

criterion_group!(benches, bench);
criterion_main!(benches);
