//! Remote write's hot paths on one request of `SERIES` series with one
//! sample each (the shape of `benches/remote-write.sh`'s load: label sets
//! like node_exporter's, five labels each):
//!
//! - `encode`: the sender's request body, protobuf in snappy. `prost` is
//!   how the sender built it before (labels cloned into owned
//!   `TimeSeries`, `prost::Message::encode_to_vec`, a fresh snappy
//!   encoder); `body_encoder` is how it builds it now (labels encoded once
//!   per series, `proto::BodyEncoder` with reused buffers).
//! - `decode`: prost's decoding of the same body into owned structs (what
//!   the receiver did before), beside `receive`: the whole `/api/v1/write`
//!   handler (borrowing decode, label cache, one commit into a store with
//!   its WAL).
//!
//! The end-to-end figure against a real Prometheus is the script's; this
//! bench is for iterating on the parts.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use vigil_examples::monitor::remote::proto::{self, BodyEncoder};
use vigil_examples::monitor::remote::receive;
use vigil_tsdb::db::{Db, DbOptions};

const SERIES: usize = 2_000;

fn label_sets() -> Vec<Vec<proto::Label>> {
    (0..SERIES)
        .map(|i| {
            [
                ("__name__", format!("node_metric_{}", i % 100)),
                ("cpu", format!("{}", i / 100 % 8)),
                ("instance", format!("10.0.{}.{}:9100", i / 800, i / 8 % 256)),
                ("job", "node".into()),
                ("mode", format!("m{}", i % 7)),
            ]
            .into_iter()
            .map(|(n, v)| proto::Label {
                name: n.into(),
                value: v,
            })
            .collect()
        })
        .collect()
}

fn request(sets: &[Vec<proto::Label>], t: i64) -> proto::WriteRequest {
    proto::WriteRequest {
        timeseries: sets
            .iter()
            .enumerate()
            .map(|(i, l)| proto::TimeSeries {
                labels: l.clone(),
                samples: vec![proto::Sample {
                    value: (t * 10 + i as i64 % 10) as f64,
                    timestamp: t,
                }],
                exemplars: vec![],
            })
            .collect(),
        metadata: vec![],
    }
}

fn bench(c: &mut Criterion) {
    let sets = label_sets();
    let samples: Vec<proto::Sample> = (0..SERIES)
        .map(|i| proto::Sample {
            value: i as f64,
            timestamp: 1_700_000_000_000,
        })
        .collect();

    let mut g = c.benchmark_group("remote_write/encode");
    g.throughput(Throughput::Elements(SERIES as u64));
    g.bench_function("prost", |b| {
        b.iter(|| {
            let req = proto::WriteRequest {
                timeseries: sets
                    .iter()
                    .zip(&samples)
                    .map(|(l, s)| proto::TimeSeries {
                        labels: l.clone(),
                        samples: vec![*s],
                        exemplars: vec![],
                    })
                    .collect(),
                metadata: vec![],
            };
            proto::encode(&req).len()
        })
    });
    let encoded: Vec<Vec<u8>> = sets
        .iter()
        .map(|l| {
            let mut out = Vec::new();
            proto::encode_labels(l.iter().map(|l| (&*l.name, &*l.value)), &mut out);
            out
        })
        .collect();
    let mut enc = BodyEncoder::new();
    g.bench_function("body_encoder", |b| {
        b.iter(|| {
            enc.clear();
            for (l, s) in encoded.iter().zip(&samples) {
                enc.push_series(l, std::slice::from_ref(s));
            }
            enc.finish().len()
        })
    });
    g.finish();

    let mut g = c.benchmark_group("remote_write/decode");
    g.throughput(Throughput::Elements(SERIES as u64));
    let body = proto::encode(&request(&sets, 1_700_000_000_000));
    g.bench_function("prost", |b| {
        b.iter(|| proto::decode(&body, 64 << 20).unwrap().timeseries.len())
    });
    let dir = tempfile::tempdir().unwrap();
    let opts = DbOptions {
        head: vigil_tsdb::head::HeadOptions {
            wal: vigil_wal::Options::default().sync(vigil_wal::SyncPolicy::Batch {
                max_delay: Duration::from_secs(1),
                max_bytes: 4 << 20,
            }),
            ..Default::default()
        },
        ..DbOptions::default()
    };
    let db = Db::open(dir.path(), opts).unwrap();
    // Every request one millisecond after the previous one, as a sender
    // sends a series' samples in order.
    let t = AtomicI64::new(1_700_000_000_000);
    g.bench_function("receive", |b| {
        b.iter_batched(
            || proto::encode(&request(&sets, t.fetch_add(1, Ordering::Relaxed))),
            |body| {
                let r = receive(&db, &body, Some("snappy"));
                assert_eq!(r.status, 204, "{}", r.message);
                r.samples
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
