//! A head series' open chunk, kept raw until it is sealed.
//!
//! The head used to append each sample to a Gorilla stream (encoding
//! `0x01`) and, when the chunk was full, decode that stream again to
//! re-encode it into the sealed layout: every sample was encoded twice,
//! and the first encoding (bit writes, XOR windows, reading the first
//! timestamp back from the stream) was about a quarter of the appending
//! thread's CPU on the promtool workload (README, "Head"). Here a sample
//! is a fixed-width record written in place; sealing (on the background
//! sealer, `sealer.rs`) reads the records straight into the encoder's
//! columns. The sealed bytes are those of the Gorilla path: the same
//! encoder on the same samples (pinned by the tests below).
//!
//! The form is in memory only: the head's open chunks, the chunks in the
//! sealer's hands and a querier's snapshot of them. A checkpoint saves the
//! open chunk's samples (FORMAT.md, "Head snapshot"), and blocks are
//! written from samples, so no file ever holds it.
//!
//! ```text
//! 0x80 | width: u8 (0: 4-byte offsets, 1: 8-byte) | first timestamp: i64 LE
//! then per sample: t − first (u32 or u64 LE) | value bits (u64 LE)
//! ```
//!
//! A sample costs 12 bytes (16 once a chunk spans more than 2^32 ms, about
//! 49 days: the chunk is widened in place), against about 2–5 bytes in the
//! Gorilla stream for scraped series: that is the memory this trades for
//! the CPU (README, "Head memory").

use crate::Error;
use crate::chunk::{Encoder, MAX_SAMPLES};

/// Encoding byte of a raw open chunk (never in a file; see the module docs).
/// Its high bit marks it as in-memory only: no file encoding (`0x01`–`0x03`)
/// has it, and FORMAT.md reserves it.
pub(crate) const ENC_RAW: u8 = 0x80;
/// Encoding byte, width byte, first timestamp.
const HEADER: usize = 10;
/// A record with a 4-byte offset, and with an 8-byte one.
const NARROW: usize = 12;
const WIDE: usize = 16;
/// Records a new chunk's buffer has room for.
const FIRST_RECORDS: usize = 3;

/// The open chunk of a series: its samples as fixed-width records, with
/// the first and last timestamps and the count kept beside the buffer so
/// that an append and the head's checks touch only the record written.
#[derive(Debug, Default, Clone)]
pub(crate) struct OpenChunk {
    /// Header and records; empty (capacity kept) while no sample.
    buf: Vec<u8>,
    first: i64,
    last: i64,
    count: u16,
    wide: bool,
}

impl OpenChunk {
    /// Samples held.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        usize::from(self.count)
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.count == 0
    }

    #[inline]
    pub(crate) fn first_time(&self) -> Option<i64> {
        (self.count > 0).then_some(self.first)
    }

    #[inline]
    pub(crate) fn last_time(&self) -> Option<i64> {
        (self.count > 0).then_some(self.last)
    }

    /// Heap bytes held (the buffer's capacity).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.buf.capacity()
    }

    /// The chunk in its raw encoding, readable by [`decode`] (empty while
    /// no sample).
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf
    }

    fn record(&self) -> usize {
        if self.wide { WIDE } else { NARROW }
    }

    /// Appends a sample after the last one (inlined into the head's
    /// append: it runs once a sample).
    #[inline(always)]
    pub(crate) fn append(&mut self, t: i64, v: f64) -> Result<(), Error> {
        if self.count == 0 {
            self.start(t);
        } else if t <= self.last {
            return Err(Error::OutOfOrder { t, last: self.last });
        } else if self.len() >= MAX_SAMPLES {
            return Err(Error::Full(self.len()));
        }
        // t >= first, so the wrapped difference is the true one.
        let off = (t as u64).wrapping_sub(self.first as u64);
        if !self.wide && off > u64::from(u32::MAX) {
            self.widen();
        }
        let rec = self.record();
        if self.buf.capacity() - self.buf.len() < rec {
            self.grow(rec);
        }
        if self.wide {
            self.buf.extend_from_slice(&off.to_le_bytes());
        } else {
            self.buf.extend_from_slice(&(off as u32).to_le_bytes());
        }
        self.buf.extend_from_slice(&v.to_bits().to_le_bytes());
        self.last = t;
        self.count += 1;
        self.prefetch_next(rec);
        Ok(())
    }

    /// Asks for the cache line the next append will write. A head appends
    /// to a thousand other series between two appends to this one, so the
    /// line arrives meanwhile instead of stalling that append's store
    /// (README, "Head": the raw record writes were mostly that miss).
    #[inline(always)]
    fn prefetch_next(&self, rec: usize) {
        #[cfg(target_arch = "x86_64")]
        {
            let end = self.buf.len() + rec;
            if end <= self.buf.capacity() {
                let p = self.buf.as_ptr().wrapping_add(end - 1);
                // SAFETY: a prefetch is a hint: it reads no memory the
                // program can observe and cannot fault, whatever the
                // address (here inside the buffer's allocation anyway).
                #[allow(unsafe_code)]
                unsafe {
                    std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
                }
            }
        }
        // Elsewhere there is no stable prefetch hint; the append just waits.
        #[cfg(not(target_arch = "x86_64"))]
        let _ = rec;
    }

    /// Appends `samples` (strictly increasing, after the last sample, at
    /// most [`MAX_SAMPLES`] in all) with one allocation; refused as a
    /// whole, nothing appended, otherwise.
    pub(crate) fn append_all(&mut self, samples: &[(i64, f64)]) -> Result<(), Error> {
        let mut last = self.last_time();
        for &(t, _) in samples {
            if let Some(l) = last {
                if t <= l {
                    return Err(Error::OutOfOrder { t, last: l });
                }
            }
            last = Some(t);
        }
        if self.len() + samples.len() > MAX_SAMPLES {
            return Err(Error::Full(self.len()));
        }
        let (Some(&(lo, _)), Some(&(hi, _))) = (samples.first(), samples.last()) else {
            return Ok(());
        };
        let first = self.first_time().unwrap_or(lo);
        let wide = self.wide || (hi as u64).wrapping_sub(first as u64) > u64::from(u32::MAX);
        let rec = if wide { WIDE } else { NARROW };
        let want = HEADER + (self.len() + samples.len()) * rec;
        if self.buf.capacity() < want {
            self.buf.reserve_exact(want - self.buf.len());
        }
        for &(t, v) in samples {
            // Checked above: in order, room for all.
            let _ = self.append(t, v);
        }
        Ok(())
    }

    fn start(&mut self, t: i64) {
        self.buf.clear();
        if self.buf.capacity() < HEADER + FIRST_RECORDS * NARROW {
            self.buf.reserve_exact(HEADER + FIRST_RECORDS * NARROW);
        }
        self.buf.push(ENC_RAW);
        self.buf.push(0);
        self.buf.extend_from_slice(&t.to_le_bytes());
        self.first = t;
        self.last = t;
        self.wide = false;
    }

    /// Half as many records again: a series' first chunk reaches 120
    /// samples in 9 steps; later chunks start in this buffer (`clear`).
    #[cold]
    fn grow(&mut self, rec: usize) {
        let have = (self.buf.capacity().saturating_sub(HEADER)) / rec;
        let more = (have / 2).max(FIRST_RECORDS);
        self.buf.reserve_exact(more * rec);
    }

    /// Rewrites the records with 8-byte offsets (a chunk spanning more
    /// than 2^32 ms).
    #[cold]
    fn widen(&mut self) {
        let mut wide = Vec::with_capacity(HEADER + (self.len() + 1) * WIDE);
        wide.push(ENC_RAW);
        wide.push(1);
        wide.extend_from_slice(&self.first.to_le_bytes());
        for (t, v) in self.samples() {
            wide.extend_from_slice(&(t as u64).wrapping_sub(self.first as u64).to_le_bytes());
            wide.extend_from_slice(&v.to_bits().to_le_bytes());
        }
        self.buf = wide;
        self.wide = true;
    }

    /// Empties the chunk; the next one starts in the same buffer. A buffer
    /// far larger than the chunk it held is shrunk to about that chunk's
    /// size (the next chunk of a regular series is as long).
    pub(crate) fn clear(&mut self) {
        let used = self.buf.len();
        if used > 0 && self.buf.capacity() > used + used / 8 {
            self.buf.shrink_to(used + used / 32);
        }
        self.buf.clear();
        self.count = 0;
        self.wide = false;
    }

    /// Empties the chunk and hands its buffer over (the chunk, whole, for
    /// the sealer); the next chunk starts in `spare`, made large enough for
    /// a chunk as long as this one. Copying the full chunk out instead was
    /// about 3 % of ingest CPU (README, "Ingest after midnight").
    pub(crate) fn take(&mut self, mut spare: Vec<u8>) -> Vec<u8> {
        let used = self.buf.len();
        spare.clear();
        if spare.capacity() < used {
            spare.reserve_exact(used + used / 32);
        }
        self.count = 0;
        self.wide = false;
        std::mem::replace(&mut self.buf, spare)
    }

    /// The samples, oldest first.
    pub(crate) fn samples(&self) -> impl Iterator<Item = (i64, f64)> + '_ {
        let rec = self.record();
        let first = self.first as u64;
        let wide = self.wide;
        self.buf
            .get(HEADER..)
            .unwrap_or_default()
            .chunks_exact(rec)
            .map(move |r| read_record(r, first, wide))
    }

    /// The value stored at `t`, if any.
    pub(crate) fn value_at(&self, t: i64) -> Option<f64> {
        if self.count == 0 || t < self.first || t > self.last {
            return None;
        }
        let rec = self.record();
        let recs = self.buf.get(HEADER..)?;
        let want = (t as u64).wrapping_sub(self.first as u64);
        let (mut lo, mut hi) = (0, recs.len() / rec);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let r = recs.get(mid * rec..(mid + 1) * rec)?;
            let off = read_offset(r, self.wide);
            match off.cmp(&want) {
                std::cmp::Ordering::Equal => {
                    return Some(read_record(r, self.first as u64, self.wide).1);
                }
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
            }
        }
        None
    }

    /// Keeps the samples whose timestamps `keep` accepts.
    pub(crate) fn retain(&mut self, keep: impl Fn(i64) -> bool) {
        let kept: Vec<(i64, f64)> = self.samples().filter(|&(t, _)| keep(t)).collect();
        *self = OpenChunk::default();
        // In order and fewer than before.
        let _ = self.append_all(&kept);
    }

    /// Appends the sealed form of the samples to `out` (nothing when
    /// empty), as sealing the Gorilla stream of the same samples does.
    pub(crate) fn seal_into(&self, enc: &mut Encoder, out: &mut Vec<u8>) {
        enc.encode_with(
            |ts, vs| {
                ts.reserve(self.len());
                vs.reserve(self.len());
                for (t, v) in self.samples() {
                    ts.push(t);
                    vs.push(v);
                }
            },
            out,
        );
    }
}

#[inline(always)]
fn read_offset(r: &[u8], wide: bool) -> u64 {
    let mut b = [0u8; 8];
    if wide {
        b.copy_from_slice(&r[..8]);
    } else {
        b[..4].copy_from_slice(&r[..4]);
    }
    u64::from_le_bytes(b)
}

/// One record (`r` is exactly one record long).
#[inline(always)]
fn read_record(r: &[u8], first: u64, wide: bool) -> (i64, f64) {
    let at = if wide { 8 } else { 4 };
    let mut v = [0u8; 8];
    v.copy_from_slice(&r[at..at + 8]);
    (
        first.wrapping_add(read_offset(r, wide)) as i64,
        f64::from_bits(u64::from_le_bytes(v)),
    )
}

/// Calls `f` with each sample of raw chunk `bytes`, checking the header,
/// the length and that timestamps increase; returns the count.
pub(crate) fn walk(bytes: &[u8], mut f: impl FnMut(i64, f64)) -> Result<usize, Error> {
    let (Some(&ENC_RAW), Some(&width)) = (bytes.first(), bytes.get(1)) else {
        return Err(match bytes.first() {
            None => Error::Empty,
            Some(&ENC_RAW) => Error::Truncated {
                what: "raw chunk header",
                offset: 1,
            },
            Some(&b) => Error::UnknownEncoding(b),
        });
    };
    let wide = match width {
        0 => false,
        1 => true,
        _ => {
            return Err(Error::Invalid {
                what: "raw chunk width",
                offset: 1,
            });
        }
    };
    let head = bytes.get(2..HEADER).ok_or(Error::Truncated {
        what: "raw chunk's first timestamp",
        offset: 2,
    })?;
    let mut first = [0u8; 8];
    first.copy_from_slice(head);
    let first = u64::from_le_bytes(first);
    let rec = if wide { WIDE } else { NARROW };
    let recs = &bytes[HEADER..];
    if recs.len() % rec != 0 {
        return Err(Error::Truncated {
            what: "raw chunk record",
            offset: HEADER + recs.len() / rec * rec,
        });
    }
    let n = recs.len() / rec;
    if n > MAX_SAMPLES {
        return Err(Error::Invalid {
            what: "raw chunk holds more samples than a chunk may",
            offset: 0,
        });
    }
    let mut prev = None;
    for (i, r) in recs.chunks_exact(rec).enumerate() {
        let off = read_offset(r, wide);
        let (t, v) = read_record(r, first, wide);
        match prev {
            None if off != 0 => {
                return Err(Error::Invalid {
                    what: "raw chunk's first sample is not at its first timestamp",
                    offset: HEADER,
                });
            }
            Some((p, pt)) if off <= p => {
                return Err(Error::NotIncreasing {
                    sample: i,
                    t,
                    prev: pt,
                });
            }
            _ => {}
        }
        prev = Some((off, t));
        f(t, v);
    }
    Ok(n)
}

/// Decodes any chunk the head holds (raw or an encoding [`crate::chunk::Chunk`]
/// reads) into `out` (cleared first).
pub(crate) fn decode_into(bytes: &[u8], out: &mut Vec<(i64, f64)>) -> Result<(), Error> {
    out.clear();
    if bytes.first() == Some(&ENC_RAW) {
        walk(bytes, |t, v| out.push((t, v)))?;
        Ok(())
    } else {
        crate::chunk::Chunk::new(bytes)?.decode_into(out)
    }
}

/// Seals raw chunk `bytes` into `out` (appending), as [`OpenChunk::seal_into`]
/// would; an error (bytes not from an [`OpenChunk`]) leaves `out` as it was.
pub(crate) fn seal_raw(enc: &mut Encoder, bytes: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
    let mut res = Ok(0);
    enc.encode_with(
        |ts, vs| {
            res = walk(bytes, |t, v| {
                ts.push(t);
                vs.push(v);
            });
            if res.is_err() {
                ts.clear();
                vs.clear();
            }
        },
        out,
    );
    res.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::ChunkWriter;
    use proptest::prelude::*;

    fn samples_strategy() -> impl Strategy<Value = Vec<(i64, f64)>> {
        (
            any::<i64>(),
            proptest::collection::vec(
                (
                    prop_oneof![
                        1..100_000i64,
                        Just(15_000i64),
                        1..(1i64 << 40),
                        1..i64::MAX / 300
                    ],
                    prop_oneof![
                        any::<u64>().prop_map(f64::from_bits),
                        (0..1_000_000i64).prop_map(|i| i as f64),
                        Just(f64::from_bits(0x7ff0_0000_0000_0002)),
                        Just(-0.0),
                        Just(f64::INFINITY),
                    ],
                ),
                0..300,
            ),
        )
            .prop_map(|(start, steps)| {
                let mut t = start;
                let mut out = Vec::new();
                for (d, v) in steps {
                    match t.checked_add(d) {
                        Some(n) => t = n,
                        None => break,
                    }
                    out.push((t, v));
                }
                out
            })
    }

    fn bits(s: &[(i64, f64)]) -> Vec<(i64, u64)> {
        s.iter().map(|&(t, v)| (t, v.to_bits())).collect()
    }

    proptest! {
        /// Samples in, the same samples out: through the chunk itself, its
        /// bytes, lookups; and its sealed bytes are the Gorilla path's.
        #[test]
        fn raw_round_trips_and_seals_as_gorilla(samples in samples_strategy(), split in 0..300usize) {
            let mut c = OpenChunk::default();
            let mut g = ChunkWriter::new();
            let (a, b) = samples.split_at(split.min(samples.len()));
            for &(t, v) in a {
                c.append(t, v).unwrap();
                g.append(t, v).unwrap();
            }
            c.append_all(b).unwrap();
            for &(t, v) in b {
                g.append(t, v).unwrap();
            }
            prop_assert_eq!(c.len(), samples.len());
            prop_assert_eq!(bits(&c.samples().collect::<Vec<_>>()), bits(&samples));
            let mut back = Vec::new();
            if !samples.is_empty() {
                decode_into(c.bytes(), &mut back).unwrap();
                prop_assert_eq!(bits(&back), bits(&samples));
            }
            for &(t, v) in &samples {
                prop_assert_eq!(c.value_at(t).map(f64::to_bits), Some(v.to_bits()));
            }
            if let Some(&(t, _)) = samples.first() {
                prop_assert_eq!(c.value_at(t.wrapping_sub(1)), None);
                prop_assert!(c.append(t, 0.0).is_err());
            }
            // Sealed: from the chunk, from its bytes, from the Gorilla stream.
            let mut enc = Encoder::new();
            let (mut x, mut y) = (Vec::new(), Vec::new());
            c.seal_into(&mut enc, &mut x);
            prop_assert_eq!(&x, &g.seal());
            if !samples.is_empty() {
                seal_raw(&mut enc, c.bytes(), &mut y).unwrap();
                prop_assert_eq!(&x, &y);
            }
            prop_assert_eq!(c.first_time(), g.first_time());
            prop_assert_eq!(c.last_time(), g.last_time());
            // Cleared and refilled: the same again.
            c.clear();
            prop_assert!(c.is_empty());
            for &(t, v) in &samples {
                c.append(t, v).unwrap();
            }
            prop_assert_eq!(bits(&c.samples().collect::<Vec<_>>()), bits(&samples));
        }

        /// Damaged raw bytes give errors, never a panic.
        #[test]
        fn damaged_raw_bytes_never_panic(samples in samples_strategy(), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4), cut in any::<usize>()) {
            let mut c = OpenChunk::default();
            c.append_all(&samples).unwrap();
            let mut b = c.bytes().to_vec();
            for (at, x) in flips {
                if !b.is_empty() {
                    let i = at % b.len();
                    b[i] ^= x;
                }
            }
            let keep = if b.is_empty() { 0 } else { cut % (b.len() + 1) };
            b.truncate(keep);
            let mut samples = Vec::new();
            let decoded = decode_into(&b, &mut samples);
            let mut sealed = Vec::new();
            let res = seal_raw(&mut Encoder::new(), &b, &mut sealed);
            // Both readers agree on what is damaged; a refused chunk
            // leaves nothing behind, an accepted one seals what decoded.
            prop_assert_eq!(decoded.is_ok(), res.is_ok());
            if res.is_err() {
                prop_assert!(sealed.is_empty());
            } else if !samples.is_empty() {
                let back: Vec<(i64, f64)> = crate::chunk::Chunk::new(&sealed)
                    .unwrap()
                    .iter()
                    .collect::<Result<_, _>>()
                    .unwrap();
                prop_assert_eq!(bits(&back), bits(&samples));
            }
        }
    }

    #[test]
    fn wide_spans_and_retain() {
        let mut c = OpenChunk::default();
        c.append(i64::MIN, 1.0).unwrap();
        c.append(-5, 2.0).unwrap();
        assert!(c.wide);
        c.append(i64::MAX, 3.0).unwrap();
        assert_eq!(
            c.samples().collect::<Vec<_>>(),
            vec![(i64::MIN, 1.0), (-5, 2.0), (i64::MAX, 3.0)]
        );
        c.retain(|t| t > i64::MIN);
        assert_eq!(c.first_time(), Some(-5));
        assert_eq!(c.samples().count(), 2);
        c.retain(|_| false);
        assert!(c.is_empty() && c.bytes().is_empty());
        assert!(matches!(
            walk(&[ENC_RAW, 2, 0, 0, 0, 0, 0, 0, 0, 0], |_, _| ()),
            Err(Error::Invalid { .. })
        ));
        assert_eq!(walk(&[], |_, _| ()), Err(Error::Empty));
    }

    #[test]
    fn a_regular_chunk_keeps_its_size_across_cuts() {
        let mut c = OpenChunk::default();
        for round in 0..3 {
            for i in 0..120i64 {
                c.append(round * 10_000_000 + i * 30_000, i as f64).unwrap();
            }
            let used = c.bytes().len();
            assert!(c.heap_bytes() >= used);
            c.clear();
            if round > 0 {
                assert!(
                    c.heap_bytes() <= used + used / 8,
                    "{} for {used}",
                    c.heap_bytes()
                );
            }
        }
    }
}
