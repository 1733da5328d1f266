//! `tsdb_chunk_decode`: the vigil-tsdb chunk codec.
//!
//! Every input is used twice:
//! 1. as chunk bytes: opening and decoding them must never panic; if they
//!    decode, the samples must come back unchanged through both encodings
//!    (the open one and the sealed one);
//! 2. as a recipe for a sample sequence (timestamps with small, jittered,
//!    huge and extreme steps; values from special floats, decimals, repeats
//!    and raw bits): it must round-trip bit for bit through the open chunk,
//!    through sealing with every layout allowed and with a random subset,
//!    and truncating the sealed bytes must give an error, never a panic or a
//!    silent short read.
//!
//! `VIGIL_FUZZ_TRACE=1` prints the samples and the encoded bytes (for triage).

use arbitrary::Unstructured;
use vigil_tsdb::chunk::{Chunk, ChunkWriter, Encoder, Encodings, MAX_SAMPLES};

/// The Prometheus staleness marker.
const STALE: u64 = 0x7ff0_0000_0000_0002;
/// Sequences longer than this are cut (keeps runs fast).
const MAX_LEN: usize = 2_000;

fn trace(f: impl FnOnce() -> String) {
    if std::env::var_os("VIGIL_FUZZ_TRACE").is_some() {
        eprintln!("{}", f());
    }
}

fn same(a: &[(i64, f64)], b: &[(i64, f64)]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.0 == y.0 && x.1.to_bits() == y.1.to_bits())
}

/// Decodes `bytes`; `None` when they are not a chunk.
fn decode(bytes: &[u8]) -> Option<Vec<(i64, f64)>> {
    let chunk = Chunk::new(bytes).ok()?;
    let mut out = Vec::new();
    for s in chunk.iter() {
        match s {
            Ok(s) => out.push(s),
            Err(e) => {
                let _ = e.to_string();
                return None;
            }
        }
    }
    assert_eq!(out.len(), chunk.len(), "a chunk that decodes has its count");
    assert!(
        out.windows(2).all(|w| w[0].0 < w[1].0),
        "decoded timestamps increase"
    );
    Some(out)
}

/// Encodes `samples` every way and checks each decodes to them.
fn round_trip(samples: &[(i64, f64)], subset: Encodings, cut: usize) {
    let mut w = ChunkWriter::new();
    for &(t, v) in samples {
        w.append(t, v).expect("strictly increasing samples append");
    }
    let open = w.bytes().to_vec();
    trace(|| format!("open {open:02x?}"));
    let back = decode(&open).expect("the open chunk decodes");
    assert!(same(samples, &back), "open chunk round trip");
    if samples.is_empty() {
        return;
    }
    for enc in [Encodings::all(), subset] {
        let mut sealed = Vec::new();
        w.seal_into(&mut Encoder::with_encodings(enc), &mut sealed);
        trace(|| format!("sealed {enc:?} {sealed:02x?}"));
        let back = decode(&sealed).expect("the sealed chunk decodes");
        assert!(same(samples, &back), "sealed chunk round trip with {enc:?}");
        let mut direct = Vec::new();
        Encoder::with_encodings(enc)
            .encode(samples, &mut direct)
            .expect("encode");
        assert_eq!(
            direct, sealed,
            "sealing the writer equals encoding the samples"
        );
        let cut = cut % sealed.len();
        assert!(
            decode(&sealed[..cut]).is_none(),
            "a sealed chunk cut to {cut} of {} bytes decodes",
            sealed.len()
        );
    }
}

fn value(u: &mut Unstructured<'_>, prev: f64) -> arbitrary::Result<f64> {
    const SPECIAL: [u64; 12] = [
        STALE,
        0x7ff8_0000_0000_0000, // NaN
        0xfff8_0000_0000_0001, // negative NaN with a payload
        0x7ff0_0000_0000_0000, // +Inf
        0xfff0_0000_0000_0000, // -Inf
        0x8000_0000_0000_0000, // -0.0
        0,                     // 0.0
        1,                     // smallest subnormal
        0x000f_ffff_ffff_ffff, // largest subnormal
        0x7fef_ffff_ffff_ffff, // f64::MAX
        0x4340_0000_0000_0001, // 2^53 + 2
        0x3fb9_9999_9999_999a, // 0.1
    ];
    Ok(match u.int_in_range(0u8..=7)? {
        0 => f64::from_bits(SPECIAL[usize::from(u.int_in_range(0u8..=11)?)]),
        1 => f64::from_bits(u.arbitrary()?),
        2 | 3 => prev,
        4 => {
            // A decimal: m / 10^k.
            let m: i32 = u.arbitrary()?;
            let k = u.int_in_range(0..=12)?;
            f64::from(m) / 10f64.powi(k)
        }
        5 => prev + f64::from(u.int_in_range(-3i8..=100)?),
        6 => f64::from(u.arbitrary::<i16>()?) * 4096.0,
        _ => prev * (1.0 + f64::from(u.arbitrary::<i8>()?) / 1000.0),
    })
}

fn step(u: &mut Unstructured<'_>) -> arbitrary::Result<i64> {
    Ok(match u.int_in_range(0u8..=5)? {
        0..=2 => 15_000,
        3 => 15_000 + i64::from(u.int_in_range(-5i8..=5)?),
        4 => i64::from(u.arbitrary::<u16>()?) + 1,
        // Shifted by at least one: positive, up to i64::MAX.
        _ => (u.arbitrary::<u64>()? >> u.int_in_range(1..=63)?) as i64 | 1,
    })
}

/// Runs one input.
pub fn run(data: &[u8]) {
    // 1. The bytes as a chunk.
    if let Some(samples) = decode(data) {
        trace(|| format!("decoded {} samples", samples.len()));
        if samples.len() <= MAX_SAMPLES {
            round_trip(&samples, Encodings::all(), data.len());
        }
    }

    // 2. The bytes as a recipe for samples.
    let mut u = Unstructured::new(data);
    let mut samples = Vec::new();
    let (Ok(mut t), Ok(flags), Ok(cut)) = (
        u.arbitrary::<i64>(),
        u.arbitrary::<u8>(),
        u.arbitrary::<u16>(),
    ) else {
        return;
    };
    let mut v = 0.0;
    while samples.len() < MAX_LEN && !u.is_empty() {
        let Ok(nv) = value(&mut u, v) else { break };
        v = nv;
        samples.push((t, v));
        let Ok(d) = step(&mut u) else { break };
        match t.checked_add(d) {
            Some(next) => t = next,
            None => break,
        }
    }
    let mut subset = Encodings::none();
    subset.grid_timestamps = flags & 1 != 0;
    subset.constant_values = flags & 2 != 0;
    subset.decimal_values = flags & 4 != 0;
    subset.tiered_streams = flags & 8 != 0;
    subset.sparse_streams = flags & 16 != 0;
    subset.common_divisor = flags & 32 != 0;
    subset.float_deltas = flags & 64 != 0;
    trace(|| format!("samples {samples:?}"));
    round_trip(&samples, subset, usize::from(cut));
}
