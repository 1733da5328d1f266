//! The data sets and peer codecs shared by the `tsdb_chunk` bench and the
//! `tsdb_chunk_bytes` example (included by both with `#[path]`).

#![allow(dead_code)]

use std::io::Read;
use std::path::PathBuf;

use vigil_tsdb::chunk::{ChunkPolicy, ChunkWriter, Encoder};
use vigil_tsdb::testdata::{self, Series};

/// A named set of series.
pub struct Dataset {
    pub name: &'static str,
    pub series: Vec<Series>,
}

impl Dataset {
    pub fn samples(&self) -> usize {
        self.series.iter().map(|s| s.samples.len()).sum()
    }
}

/// `shared/corpus`, beside the repository (or `$VIGIL_CORPUS`).
pub fn corpus_dir() -> PathBuf {
    std::env::var_os("VIGIL_CORPUS").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus"),
        PathBuf::from,
    )
}

/// Every series of node_exporter.prom evolved over 24 h at 15 s.
pub fn node_exporter_day() -> Dataset {
    let path = corpus_dir().join("exposition/node_exporter.prom");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    Dataset {
        name: "node_exporter 24h (generated)",
        series: testdata::node_exporter_day(&text, 1_795_000_000_000, testdata::DAY_SCRAPES, 42),
    }
}

/// The real series of `series/real_15s.om.gz`.
pub fn real_series() -> Dataset {
    let path = corpus_dir().join("series/real_15s.om.gz");
    let gz = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let mut text = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut text)
        .expect("gunzip the real series");
    Dataset {
        name: "real 57 min (Prometheus 2.42: 1.339)",
        series: testdata::parse_timestamped(&text),
    }
}

/// Cuts each series into chunks by `policy`, as a head would.
pub fn chunks(data: &Dataset, policy: ChunkPolicy) -> Vec<&[(i64, f64)]> {
    let mut out = Vec::new();
    for s in &data.series {
        let mut w = ChunkWriter::new();
        let mut start = 0;
        for (i, &(t, _)) in s.samples.iter().enumerate() {
            if policy.should_cut(&w, t) {
                out.push(&s.samples[start..i]);
                start = i;
                w = ChunkWriter::new();
            }
            // Only the count and span matter for the policy.
            w.append(t, 0.0).expect("series in time order");
        }
        if start < s.samples.len() {
            out.push(&s.samples[start..]);
        }
    }
    out
}

/// The open (Gorilla) chunk of `c`.
pub fn vigil_open(c: &[(i64, f64)]) -> ChunkWriter {
    let mut w = ChunkWriter::new();
    for &(t, v) in c {
        w.append(t, v).expect("append");
    }
    w
}

/// The sealed chunk of `c`, appended to `out`.
pub fn vigil_sealed(enc: &mut Encoder, c: &[(i64, f64)], out: &mut Vec<u8>) {
    enc.encode(c, out).expect("encode");
}

/// tsz (plain Gorilla): one stream per chunk, starting at its first
/// timestamp.
pub fn tsz_encode(c: &[(i64, f64)]) -> Box<[u8]> {
    use tsz::stream::BufferedWriter;
    use tsz::{DataPoint, Encode, StdEncoder};
    let mut e = StdEncoder::new(c[0].0 as u64, BufferedWriter::new());
    for &(t, v) in c {
        e.encode(DataPoint::new(t as u64, v));
    }
    e.close()
}

pub fn tsz_decode(bytes: Box<[u8]>, out: &mut Vec<(i64, f64)>) {
    use tsz::stream::BufferedReader;
    use tsz::{Decode, StdDecoder};
    let mut d = StdDecoder::new(BufferedReader::new(bytes));
    out.clear();
    while let Ok(p) = d.next() {
        out.push((p.get_time() as i64, p.get_value()));
    }
}

/// pco with its default level: timestamps and values as two arrays.
pub fn pco_encode(c: &[(i64, f64)]) -> (Vec<u8>, Vec<u8>) {
    let ts: Vec<i64> = c.iter().map(|s| s.0).collect();
    let vs: Vec<f64> = c.iter().map(|s| s.1).collect();
    (
        pco::standalone::simpler_compress(&ts, pco::DEFAULT_COMPRESSION_LEVEL).expect("pco ts"),
        pco::standalone::simpler_compress(&vs, pco::DEFAULT_COMPRESSION_LEVEL).expect("pco values"),
    )
}

pub fn pco_decode(ts: &[u8], vs: &[u8]) -> (Vec<i64>, Vec<f64>) {
    (
        pco::standalone::simple_decompress(ts).expect("pco ts"),
        pco::standalone::simple_decompress(vs).expect("pco values"),
    )
}
