//! Property tests of the chunk codec: any strictly increasing sample
//! sequence, with any values (NaN payloads, the stale marker, ±Inf, -0.0,
//! subnormals, extremes), comes back bit for bit through the open chunk and
//! through every sealed layout; damaged chunks give errors, never panics.

use proptest::prelude::*;
use vigil_tsdb::chunk::{Chunk, ChunkWriter, Encoder, Encoding, Encodings, encode};

/// Prometheus's staleness marker.
const STALE: u64 = 0x7ff0_0000_0000_0002;

const SPECIAL: [u64; 14] = [
    STALE,
    0x7ff8_0000_0000_0000, // the canonical NaN
    0xfff8_0000_0000_0001, // a negative NaN with a payload
    0x7ff4_0000_0000_0000, // a signalling NaN
    0x7ff0_0000_0000_0000, // +Inf
    0xfff0_0000_0000_0000, // -Inf
    0x8000_0000_0000_0000, // -0.0
    0,                     // +0.0
    1,                     // the smallest subnormal
    0x800f_ffff_ffff_ffff, // the largest negative subnormal
    0x7fef_ffff_ffff_ffff, // f64::MAX
    0xffef_ffff_ffff_ffff, // f64::MIN
    0x4340_0000_0000_0000, // 2^53
    0x4340_0000_0000_0001, // 2^53 + 2
];

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        (0..SPECIAL.len()).prop_map(|i| f64::from_bits(SPECIAL[i])),
        any::<u64>().prop_map(f64::from_bits),
        // Decimals of every scale, as a scrape would parse them.
        (any::<i32>(), 0..=15i32).prop_map(|(m, k)| f64::from(m) / 10f64.powi(k)),
        // Counters and page-sized gauges.
        (0..1_000_000i64).prop_map(|i| i as f64),
        any::<i16>().prop_map(|i| f64::from(i) * 4096.0),
        // Huge and tiny.
        (-1e300..1e300f64),
        (-1e-300..1e-300f64),
    ]
}

fn step() -> impl Strategy<Value = i64> {
    prop_oneof![
        4 => Just(15_000i64),
        3 => 14_995..=15_005i64,
        1 => 1..=100i64,
        1 => 1..=i64::MAX,
        1 => (0..=62u32).prop_map(|s| 1i64 << s),
    ]
}

/// Strictly increasing samples, starting anywhere in `i64` (extremes
/// included), stopping where the next step would overflow.
fn samples(max: usize) -> impl Strategy<Value = Vec<(i64, f64)>> {
    let start = prop_oneof![
        Just(i64::MIN),
        Just(i64::MAX),
        Just(0i64),
        Just(-1i64),
        any::<i64>(),
        (1_600_000_000_000..1_900_000_000_000i64),
    ];
    (
        start,
        prop::collection::vec((step(), value()), 0..max),
        // Repeat some values so constant and slowly moving runs appear.
        prop::collection::vec(any::<bool>(), 0..max),
    )
        .prop_map(|(start, steps, repeat)| {
            let mut out = Vec::with_capacity(steps.len());
            let mut t = start;
            for (i, (d, v)) in steps.into_iter().enumerate() {
                let v = match (repeat.get(i), out.last()) {
                    (Some(true), Some(&(_, prev))) => prev,
                    _ => v,
                };
                out.push((t, v));
                match t.checked_add(d) {
                    Some(n) => t = n,
                    None => break,
                }
            }
            out
        })
}

fn encodings() -> impl Strategy<Value = Encodings> {
    any::<u8>().prop_map(|f| {
        let mut e = Encodings::none();
        e.grid_timestamps = f & 1 != 0;
        e.constant_values = f & 2 != 0;
        e.decimal_values = f & 4 != 0;
        e.tiered_streams = f & 8 != 0;
        e.sparse_streams = f & 16 != 0;
        e.common_divisor = f & 32 != 0;
        e.float_deltas = f & 64 != 0;
        e
    })
}

fn decode(bytes: &[u8]) -> Result<Vec<(i64, f64)>, vigil_tsdb::Error> {
    Chunk::new(bytes)?.iter().collect()
}

fn assert_same(want: &[(i64, f64)], got: &[(i64, f64)]) -> Result<(), TestCaseError> {
    prop_assert_eq!(want.len(), got.len());
    for (i, (a, b)) in want.iter().zip(got).enumerate() {
        prop_assert_eq!(a.0, b.0, "timestamp of sample {}", i);
        prop_assert_eq!(
            a.1.to_bits(),
            b.1.to_bits(),
            "value of sample {}: {:?} vs {:?}",
            i,
            a.1,
            b.1
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn open_and_sealed_round_trip(s in samples(300), enc in encodings()) {
        let mut w = ChunkWriter::new();
        for &(t, v) in &s {
            w.append(t, v).unwrap();
        }
        assert_same(&s, &decode(w.bytes()).unwrap())?;
        if s.is_empty() {
            return Ok(());
        }
        let sealed = w.seal();
        assert_same(&s, &decode(&sealed).unwrap())?;
        let sealed_kind = matches!(Chunk::new(&sealed).unwrap().encoding(), Encoding::Sealed { .. });
        prop_assert!(sealed_kind, "sealing gives a sealed chunk");
        prop_assert_eq!(&encode(&s).unwrap(), &sealed);
        // Sealing straight from the samples (as WAL replay does, with one
        // encoder for many chunks) gives the bytes sealing the open chunk
        // gives, whatever the encoder sealed before.
        let mut reused = Encoder::new();
        let mut out = Vec::new();
        reused.encode(&s[s.len() / 2..], &mut out).unwrap();
        out.clear();
        reused.encode(&s, &mut out).unwrap();
        prop_assert_eq!(&out, &sealed);
        let mut restricted = Vec::new();
        Encoder::with_encodings(enc).encode(&s, &mut restricted).unwrap();
        assert_same(&s, &decode(&restricted).unwrap())?;
    }

    #[test]
    fn every_special_value_in_every_layout(
        special in 0..SPECIAL.len(),
        at in 0..120usize,
        base in prop_oneof![Just(0.0f64), Just(1.5), Just(1e9), Just(-3.0)],
        step_ms in prop_oneof![Just(15_000i64), (1..20_000i64)],
        enc in encodings(),
    ) {
        // A series that fits the decimal, constant or integer layouts, with
        // one special value in it.
        let s: Vec<(i64, f64)> = (0..120)
            .map(|i| {
                let v = if i == at { f64::from_bits(SPECIAL[special]) } else { base + (i / 10) as f64 };
                (1_795_000_000_000 + i as i64 * step_ms, v)
            })
            .collect();
        for e in [Encodings::all(), enc] {
            let mut out = Vec::new();
            Encoder::with_encodings(e).encode(&s, &mut out).unwrap();
            assert_same(&s, &decode(&out).unwrap())?;
        }
        let all: Vec<(i64, f64)> = (0..120)
            .map(|i| (i as i64, f64::from_bits(SPECIAL[(i + special) % SPECIAL.len()])))
            .collect();
        assert_same(&all, &decode(&encode(&all).unwrap()).unwrap())?;
    }

    #[test]
    fn damaged_chunks_never_panic(
        s in samples(150),
        flips in prop::collection::vec((any::<usize>(), 0..8u8), 1..4),
        cut in any::<usize>(),
    ) {
        prop_assume!(!s.is_empty());
        let mut w = ChunkWriter::new();
        for &(t, v) in &s {
            w.append(t, v).unwrap();
        }
        for bytes in [w.bytes().to_vec(), w.seal()] {
            let mut bad = bytes.clone();
            for &(at, bit) in &flips {
                let i = at % bad.len();
                bad[i] ^= 1 << bit;
            }
            if let Ok(back) = decode(&bad) {
                // Whatever decodes is a valid sequence.
                prop_assert!(back.windows(2).all(|p| p[0].0 < p[1].0));
            }
            let _ = decode(&bytes[..cut % bytes.len()]).map_err(|e| e.to_string());
        }
        // A sealed chunk cut short is always an error.
        let sealed = w.seal();
        prop_assert!(decode(&sealed[..cut % sealed.len()]).is_err());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200), enc in 0..3u8) {
        let mut bytes = bytes;
        if let Some(b) = bytes.first_mut() {
            *b = enc;
        }
        let _ = decode(&bytes).map_err(|e| e.to_string());
    }
}

#[test]
fn out_of_order_is_refused() {
    let mut w = ChunkWriter::new();
    w.append(i64::MAX, 1.0).unwrap();
    assert!(w.append(i64::MAX, 1.0).is_err());
    assert!(w.append(i64::MIN, 1.0).is_err());
    assert!(encode(&[(0, 1.0), (0, 2.0)]).is_err());
}
