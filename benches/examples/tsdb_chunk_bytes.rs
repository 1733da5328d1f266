//! Bytes per sample of the chunk codec beside tsz (Gorilla) and pco, on the
//! generated node_exporter day and on the real series, with what each
//! layout of the sealed encoding brings (added in turn, then everything but
//! it).
//!
//! `cargo run --release -p vigil-benches --example tsdb_chunk_bytes`
//!
//! Every encoded chunk is decoded again and compared bit for bit.

#[path = "../common/tsdb_data.rs"]
mod tsdb_data;

use std::collections::BTreeMap;

use tsdb_data::{Dataset, chunks, pco_decode, pco_encode, tsz_decode, tsz_encode, vigil_open};
use vigil_tsdb::chunk::{Chunk, ChunkPolicy, Encoder, Encodings};

/// One chunk's samples.
type Samples<'a> = &'a [(i64, f64)];

fn same(a: &[(i64, f64)], b: &[(i64, f64)]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.0 == y.0 && x.1.to_bits() == y.1.to_bits())
}

fn per_sample(bytes: usize, samples: usize) -> String {
    format!("{:.3}", bytes as f64 / samples as f64)
}

fn sealed_bytes(
    cs: &[&[(i64, f64)]],
    enc: Encodings,
    mix: Option<&mut BTreeMap<String, usize>>,
) -> usize {
    let mut e = Encoder::with_encodings(enc);
    let mut out = Vec::new();
    let mut total = 0;
    let mut back = Vec::new();
    let mut mix = mix;
    for c in cs {
        out.clear();
        e.encode(c, &mut out).expect("encode");
        total += out.len();
        let chunk = Chunk::new(&out).expect("sealed chunk");
        chunk.decode_into(&mut back).expect("decode");
        assert!(same(c, &back), "sealed round trip");
        if let Some(m) = mix.as_deref_mut() {
            *m.entry(format!("{:?}", chunk.encoding())).or_default() += 1;
        }
    }
    total
}

/// Header bytes (encoding, count, layouts, section length) and timestamp
/// section bytes of a sealed chunk (FORMAT.md, "Encoding 0x02").
fn sections(b: &[u8]) -> (usize, usize) {
    let mut i = 1;
    let varint = |i: &mut usize| {
        let mut v = 0u64;
        let mut shift = 0;
        loop {
            let x = b[*i];
            *i += 1;
            v |= u64::from(x & 0x7f) << shift;
            shift += 7;
            if x & 0x80 == 0 {
                return v as usize;
            }
        }
    };
    varint(&mut i);
    i += 1;
    let ts = varint(&mut i);
    (i, ts)
}

fn report(data: &Dataset) {
    let n = data.samples();
    println!(
        "\n## {}: {} series, {} samples\n",
        data.name,
        data.series.len(),
        n
    );
    println!("| codec | 120 samples/chunk | 240 samples or 1 h (default) | 480 samples or 2 h |");
    println!("|---|---|---|---|");
    let policies = [
        ChunkPolicy {
            max_samples: 120,
            max_span_ms: i64::MAX,
        },
        ChunkPolicy::default(),
        ChunkPolicy {
            max_samples: 480,
            max_span_ms: 7_200_000,
        },
    ];
    let cuts: Vec<Vec<&[(i64, f64)]>> = policies.iter().map(|&p| chunks(data, p)).collect();

    let row = |name: &str, f: &dyn Fn(&[Samples<'_>]) -> usize| {
        let cells: Vec<String> = cuts.iter().map(|cs| per_sample(f(cs), n)).collect();
        println!("| {name} | {} |", cells.join(" | "));
    };
    row("tsz (Gorilla, seconds buckets)", &|cs| {
        let mut back = Vec::new();
        cs.iter()
            .map(|c| {
                let b = tsz_encode(c);
                let len = b.len();
                tsz_decode(b, &mut back);
                assert!(same(c, &back), "tsz round trip");
                len
            })
            .sum()
    });
    row("pco (default level, per chunk)", &|cs| {
        cs.iter()
            .map(|c| {
                let (t, v) = pco_encode(c);
                let (bt, bv) = pco_decode(&t, &v);
                assert!(bt.iter().zip(c.iter()).all(|(a, b)| *a == b.0));
                assert!(
                    bv.iter()
                        .zip(c.iter())
                        .all(|(a, b)| a.to_bits() == b.1.to_bits())
                );
                t.len() + v.len()
            })
            .sum()
    });
    row("vigil open chunk (Gorilla, 0x01)", &|cs| {
        let mut back = Vec::new();
        cs.iter()
            .map(|c| {
                let w = vigil_open(c);
                Chunk::new(w.bytes())
                    .expect("open")
                    .decode_into(&mut back)
                    .expect("decode");
                assert!(same(c, &back), "open round trip");
                w.bytes().len()
            })
            .sum()
    });
    let mut steps = Vec::new();
    let mut e = Encodings::none();
    steps.push(("sealed: delta ts bit-packed, XOR values", e));
    e.grid_timestamps = true;
    steps.push(("+ grid timestamps", e));
    e.sparse_streams = true;
    e.tiered_streams = true;
    steps.push(("+ sparse and tiered integer columns", e));
    e.common_divisor = true;
    steps.push(("+ common divisor", e));
    e.constant_values = true;
    steps.push(("+ constant values", e));
    e.decimal_values = true;
    steps.push(("+ decimal values", e));
    e.float_deltas = true;
    steps.push(("+ float bit deltas = **vigil sealed (0x02)**", e));
    for (name, enc) in steps {
        row(name, &|cs| sealed_bytes(cs, enc, None));
    }
    // What each layout is worth on its own: everything but it.
    let all = Encodings::all();
    let but = |f: fn(&mut Encodings)| {
        let mut e = all;
        f(&mut e);
        e
    };
    let without = [
        (
            "all but grid timestamps",
            but(|e| e.grid_timestamps = false),
        ),
        (
            "all but sparse and tiered columns",
            but(|e| {
                e.sparse_streams = false;
                e.tiered_streams = false;
            }),
        ),
        ("all but common divisor", but(|e| e.common_divisor = false)),
        (
            "all but constant values",
            but(|e| e.constant_values = false),
        ),
        ("all but decimal values", but(|e| e.decimal_values = false)),
        ("all but float bit deltas", but(|e| e.float_deltas = false)),
    ];
    for (name, enc) in without {
        row(name, &|cs| sealed_bytes(cs, enc, None));
    }
    let whole: usize = data
        .series
        .iter()
        .map(|s| {
            let (t, v) = pco_encode(&s.samples);
            t.len() + v.len()
        })
        .sum();
    println!(
        "\npco on each whole series (one chunk per series): {}",
        per_sample(whole, n)
    );

    let mut mix = BTreeMap::new();
    let total = sealed_bytes(&cuts[1], Encodings::all(), Some(&mut mix));
    let (mut head, mut ts) = (0, 0);
    let mut e = Encoder::new();
    let mut out = Vec::new();
    for c in &cuts[1] {
        out.clear();
        e.encode(c, &mut out).expect("encode");
        let (h, t) = sections(&out);
        head += h;
        ts += t;
    }
    println!(
        "\nvigil sealed, default policy, bytes/sample by part: chunk header {}, timestamps {}, values {}",
        per_sample(head, n),
        per_sample(ts, n),
        per_sample(total - head - ts, n)
    );
    println!(
        "\nlayouts chosen (default policy, {} chunks):",
        cuts[1].len()
    );
    for (k, v) in mix {
        println!("- {v:6} {k}");
    }
}

/// With `VIGIL_TOP=N`: the N series that take the most sealed bytes.
fn top(data: &Dataset) {
    let Some(k) = std::env::var("VIGIL_TOP")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    else {
        return;
    };
    let mut e = Encoder::new();
    let mut rows: Vec<(usize, usize, &str, String)> = data
        .series
        .iter()
        .map(|s| {
            let mut out = Vec::new();
            let mut ts = 0;
            let mut enc = Vec::new();
            for c in chunks(
                &Dataset {
                    name: "",
                    series: vec![s.clone()],
                },
                ChunkPolicy::default(),
            ) {
                let start = out.len();
                e.encode(c, &mut out).expect("encode");
                ts += sections(&out[start..]).1;
                enc.push(format!(
                    "{:?}",
                    Chunk::new(&out[start..]).expect("chunk").encoding()
                ));
            }
            enc.dedup();
            (out.len(), ts, s.key.as_str(), enc.join(","))
        })
        .collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.0));
    for (bytes, ts, key, enc) in rows.into_iter().take(k) {
        println!("{bytes:7} {ts:6} {key} {enc}");
    }
}

/// Bytes per sample of the data written as the store writes it: 2 h blocks
/// (`block::write_block`), the `chunks` files counted whole (file header,
/// each chunk's length, bytes and CRC-32). Beside it, what the same chunks
/// take with every timestamp section kept (a version 1 `chunks` file: the
/// same cuts, sealed one by one and framed). Every block is read back and
/// compared bit for bit.
fn blocks(data: &Dataset) {
    use vigil_tsdb::block::{Block, write_block};
    use vigil_tsdb::index::Matcher;
    use vigil_tsdb::labels::Labels;

    const RANGE: i64 = 7_200_000;
    let dir = tempfile::tempdir().expect("temp dir");
    let labelled: Vec<(Labels, &[(i64, f64)])> = data
        .series
        .iter()
        .map(|s| {
            let l = Labels::new([("__name__", "s".to_owned()), ("key", s.key.clone())])
                .expect("labels");
            (l, &s.samples[..])
        })
        .collect();
    let lo = labelled
        .iter()
        .filter_map(|(_, s)| s.first())
        .map(|x| x.0)
        .min()
        .unwrap();
    let hi = labelled
        .iter()
        .filter_map(|(_, s)| s.last())
        .map(|x| x.0)
        .max()
        .unwrap();
    let (mut v2, mut v1, mut index) = (0u64, 0u64, 0u64);
    let mut start = lo.div_euclid(RANGE) * RANGE;
    let policy = ChunkPolicy::default();
    while start <= hi {
        let end = start + RANGE;
        let part: Vec<(Labels, Vec<(i64, f64)>)> = labelled
            .iter()
            .map(|(l, s)| {
                let a = s.partition_point(|x| x.0 < start);
                let b = s.partition_point(|x| x.0 < end);
                (l.clone(), s[a..b].to_vec())
            })
            .filter(|(_, s)| !s.is_empty())
            .collect();
        // The version 1 size: 8 bytes of header, then each chunk framed.
        v1 += 8;
        for (_, s) in &part {
            let mut w = vigil_tsdb::chunk::ChunkWriter::new();
            let mut frame = |w: &vigil_tsdb::chunk::ChunkWriter| {
                let len = w.seal().len() as u64;
                v1 += len + 4 + (64 - len.leading_zeros()).div_ceil(7).max(1) as u64;
            };
            for &(t, v) in s {
                if policy.should_cut(&w, t) {
                    frame(&w);
                    w = vigil_tsdb::chunk::ChunkWriter::new();
                }
                w.append(t, v).expect("append");
            }
            frame(&w);
        }
        let path = write_block(dir.path(), start, end, part.clone()).expect("write block");
        v2 += std::fs::metadata(path.join("chunks"))
            .expect("chunks")
            .len();
        index += std::fs::metadata(path.join("index")).expect("index").len();
        let b = Block::open(&path).expect("open block");
        let mut back = b
            .select(&[Matcher::equal("__name__", "s")], i64::MIN, i64::MAX)
            .expect("select");
        let mut want = part;
        want.sort_by(|a, b| a.0.cmp(&b.0));
        back.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(back.len(), want.len());
        for ((lb, got), (lw, w)) in back.iter().zip(&want) {
            assert_eq!(lb, lw);
            assert!(
                same(got.as_ref().expect("read series"), w),
                "block round trip"
            );
        }
        start = end;
    }
    let n = data.samples();
    println!(
        "
blocks (2 h, as the store writes them), `chunks` files whole: {} bytes/sample \
         (timestamp sections shared between chunks with equal timestamps); \
         {} with every chunk's own timestamps (version 1 framing); index files {}",
        per_sample(v2 as usize, n),
        per_sample(v1 as usize, n),
        per_sample(index as usize, n)
    );
}

fn main() {
    let generated = tsdb_data::node_exporter_day();
    report(&generated);
    blocks(&generated);
    top(&generated);
    let real = tsdb_data::real_series();
    report(&real);
    blocks(&real);
    top(&real);
}
