//! Compressed per-series chunks of samples `(timestamp_ms, value)`.
//!
//! A chunk is a byte string whose first byte names its encoding
//! (`FORMAT.md` has every byte):
//!
//! - `0x01`, **open**: the Gorilla stream of Prometheus's XOR chunks
//!   (delta-of-delta timestamps, XOR floats). [`ChunkWriter`] appends to it
//!   one sample at a time, in place, so the open chunk of a series costs
//!   about what Prometheus's does and can be read while it grows.
//! - `0x02`, **sealed**: when a chunk is full, [`ChunkWriter::seal`]
//!   re-encodes it column by column into the smallest of several layouts,
//!   chosen per chunk from exact sizes: timestamps on a regular grid or as
//!   deltas; values as one constant, as scaled decimals (integers and
//!   decimal fractions become integers, with non-finite values kept aside),
//!   or XOR; each integer column bit-packed, tiered or sparse.
//!
//! [`Chunk`] reads both. Decoding never panics: damaged bytes give an
//! [`Error`] that says what and where. Values come back bit for bit (NaN
//! payloads such as Prometheus's stale marker, `-0.0`, infinities,
//! subnormals).

mod bits;
mod sealed;
mod stream;
mod xor;

use crate::Error;
use bits::BitReader;
pub use sealed::{Encoder, Encodings};
use xor::{XOR_HEADER, XorAppender, XorState, read_dod};

/// Encoding byte of an open (Gorilla) chunk.
pub(crate) const ENC_XOR: u8 = 0x01;
/// Encoding byte of a sealed chunk.
pub(crate) const ENC_SEALED: u8 = 0x02;

/// The most samples one chunk may hold (the open chunk's count is a `u16`).
pub const MAX_SAMPLES: usize = u16::MAX as usize;

/// When to start a new chunk (`FORMAT.md`, "Chunk size").
///
/// A chunk is cut when it holds `max_samples` samples, or when the next
/// sample would make it span more than `max_span_ms`, whichever comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkPolicy {
    /// Most samples per chunk. Default 240: a sealed chunk's header costs
    /// 15–25 bytes, so 240 samples keep it near 0.1 byte a sample while a
    /// query that needs one sample decodes at most 240 (about a microsecond).
    pub max_samples: usize,
    /// Longest time a chunk may span, in milliseconds. Default one hour:
    /// 240 samples at a 15 s interval, and never more than one 2 h block
    /// can hold in two chunks.
    pub max_span_ms: i64,
}

impl Default for ChunkPolicy {
    fn default() -> Self {
        Self {
            max_samples: 240,
            max_span_ms: 3_600_000,
        }
    }
}

impl ChunkPolicy {
    /// Whether `w` should be sealed before a sample at `next_t` is appended.
    pub fn should_cut(&self, w: &ChunkWriter, next_t: i64) -> bool {
        match w.first_time() {
            None => false,
            Some(first) => self.should_cut_len(w.len(), first, next_t),
        }
    }

    /// Whether a chunk of `len` samples (at least one) starting at `first`
    /// should be sealed before a sample at `next_t` is appended: the rule
    /// of [`should_cut`](Self::should_cut) for samples not in a writer.
    #[inline]
    pub fn should_cut_len(&self, len: usize, first: i64, next_t: i64) -> bool {
        len >= self.max_samples.min(MAX_SAMPLES) || next_t.saturating_sub(first) >= self.max_span_ms
    }
}

/// Appends samples in time order to an open chunk, and seals it.
///
/// ```
/// use vigil_tsdb::chunk::{Chunk, ChunkWriter};
/// let mut w = ChunkWriter::new();
/// w.append(1000, 0.5)?;
/// w.append(2000, f64::from_bits(0x7ff0_0000_0000_0002))?; // stale marker
/// assert!(w.append(2000, 1.0).is_err()); // not after the last timestamp
/// let sealed = w.seal();
/// let back: Vec<_> = Chunk::new(&sealed)?.iter().collect::<Result<_, _>>()?;
/// assert_eq!(back[1].1.to_bits(), 0x7ff0_0000_0000_0002);
/// # Ok::<(), vigil_tsdb::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ChunkWriter {
    app: XorAppender,
}

impl Default for ChunkWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkWriter {
    /// An empty open chunk.
    pub fn new() -> Self {
        Self {
            app: XorAppender::new(),
        }
    }

    /// Appends a sample. `t` must be after the last sample's timestamp.
    pub fn append(&mut self, t: i64, v: f64) -> Result<(), Error> {
        if let Some(last) = self.app.last_t() {
            if t <= last {
                return Err(Error::OutOfOrder { t, last });
            }
        }
        if self.len() >= MAX_SAMPLES {
            return Err(Error::Full(self.len()));
        }
        self.app.append(t, v);
        Ok(())
    }

    /// Empties the chunk, as [`ChunkWriter::new`] would, but keeps the
    /// buffer: a head cutting a series' chunk starts the next one in the
    /// same allocation, sized by the chunk before, instead of growing a new
    /// one 48 bytes at a time (about 9 allocator calls a chunk).
    pub fn clear(&mut self) {
        self.app.clear();
    }

    /// Samples appended.
    pub fn len(&self) -> usize {
        usize::from(self.app.count)
    }

    /// Whether no sample was appended.
    pub fn is_empty(&self) -> bool {
        self.app.count == 0
    }

    /// Timestamp of the first sample.
    pub fn first_time(&self) -> Option<i64> {
        self.app.first_t()
    }

    /// Timestamp of the last sample.
    pub fn last_time(&self) -> Option<i64> {
        self.app.last_t()
    }

    /// Heap bytes the open chunk holds (its buffer's capacity).
    pub fn heap_bytes(&self) -> usize {
        self.app.buf.capacity()
    }

    /// The open chunk's bytes (encoding `0x01`), readable by [`Chunk`].
    pub fn bytes(&self) -> &[u8] {
        &self.app.buf
    }

    /// The sealed form of the samples so far (see [`Encoder`]).
    pub fn seal(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.seal_into(&mut Encoder::new(), &mut out);
        out
    }

    /// Appends the sealed form to `out`, reusing `enc`'s buffers. An empty
    /// writer appends nothing.
    pub fn seal_into(&self, enc: &mut Encoder, out: &mut Vec<u8>) {
        enc.encode_open(self, out);
    }
}

/// Encodes `samples` (strictly increasing timestamps, at most
/// [`MAX_SAMPLES`]) into one sealed chunk.
pub fn encode(samples: &[(i64, f64)]) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    Encoder::new().encode(samples, &mut out)?;
    Ok(out)
}

/// How a chunk is encoded, as [`Chunk::encoding`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Encoding {
    /// `0x01`: an open Gorilla chunk.
    Open,
    /// `0x02`: a sealed chunk and its column layouts.
    Sealed {
        /// How the timestamps are laid out.
        timestamps: TimestampLayout,
        /// How the values are laid out.
        values: ValueLayout,
    },
}

/// Timestamp layout of a sealed chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TimestampLayout {
    /// Offsets from a regular grid `i × interval`.
    Grid,
    /// Differences between neighbours.
    Delta,
}

/// Value layout of a sealed chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ValueLayout {
    /// Gorilla XOR.
    Xor,
    /// One value for every sample.
    Constant,
    /// Integers scaled by a power of ten, non-finite values aside.
    Decimal,
    /// Differences of the float bits read as integers.
    FloatDelta,
}

/// A read-only view of one chunk's bytes, checked at its headers.
#[derive(Debug, Clone)]
pub struct Chunk<'a> {
    n: usize,
    encoding: Encoding,
    start: Samples<'a>,
}

impl<'a> Chunk<'a> {
    /// Reads the headers of `data`, which holds exactly one chunk.
    pub fn new(data: &'a [u8]) -> Result<Self, Error> {
        match data.first() {
            None => Err(Error::Empty),
            Some(&ENC_XOR) => {
                let n = match data.get(1..XOR_HEADER) {
                    Some(&[hi, lo]) => usize::from(u16::from_be_bytes([hi, lo])),
                    _ => {
                        return Err(Error::Truncated {
                            what: "sample count",
                            offset: 1,
                        });
                    }
                };
                Ok(Self {
                    n,
                    encoding: Encoding::Open,
                    start: Samples {
                        inner: Inner::Open(OpenIter {
                            r: BitReader::with_range(data, XOR_HEADER * 8, data.len() * 8),
                            n,
                            i: 0,
                            t: 0,
                            delta: 0,
                            vals: XorState::default(),
                        }),
                        done: n == 0,
                    },
                })
            }
            Some(&ENC_SEALED) => {
                let (n, encoding, it) = sealed::open(data)?;
                Ok(Self {
                    n,
                    encoding,
                    start: Samples {
                        inner: Inner::Sealed(Box::new(it)),
                        done: false,
                    },
                })
            }
            Some(&b) => Err(Error::UnknownEncoding(b)),
        }
    }

    /// Samples in the chunk, as its header says.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether the chunk holds no sample (only an open chunk can).
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The chunk's encoding and layouts.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// Decodes the samples in order. After an error the iterator ends.
    pub fn iter(&self) -> Samples<'a> {
        self.start.clone()
    }

    /// Decodes every sample into `out` (cleared first).
    pub fn decode_into(&self, out: &mut Vec<(i64, f64)>) -> Result<(), Error> {
        out.clear();
        out.reserve(self.n);
        for s in self.iter() {
            out.push(s?);
        }
        Ok(())
    }
}

/// Iterator over a chunk's samples; see [`Chunk::iter`].
#[derive(Debug, Clone)]
pub struct Samples<'a> {
    inner: Inner<'a>,
    done: bool,
}

#[derive(Debug, Clone)]
enum Inner<'a> {
    Open(OpenIter<'a>),
    Sealed(Box<sealed::SealedIter<'a>>),
}

impl Iterator for Samples<'_> {
    type Item = Result<(i64, f64), Error>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let r = match &mut self.inner {
            Inner::Open(it) => it.next_sample(),
            Inner::Sealed(it) => it.next_sample(),
        };
        match r {
            Ok(Some(s)) => Some(Ok(s)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = match (&self.inner, self.done) {
            (_, true) => 0,
            (Inner::Open(it), _) => it.n - it.i,
            (Inner::Sealed(it), _) => it.left(),
        };
        (0, Some(left))
    }
}

/// Decoder of an open (`0x01`) chunk.
#[derive(Debug, Clone)]
struct OpenIter<'a> {
    r: BitReader<'a>,
    n: usize,
    i: usize,
    t: i64,
    delta: u64,
    vals: XorState,
}

impl OpenIter<'_> {
    fn next_sample(&mut self) -> Result<Option<(i64, f64)>, Error> {
        if self.i >= self.n {
            return Ok(None);
        }
        let r = &mut self.r;
        let at = r.offset();
        let (t, bits) = match self.i {
            0 => {
                let t = r
                    .read_ivarint()
                    .map_err(|e| stream::varint_err("first timestamp", r, e))?;
                let v = r
                    .read(64)
                    .map_err(|_| stream::truncated("first value", r))?;
                self.vals = XorState::new(v);
                (t, v)
            }
            1 => {
                self.delta = r
                    .read_uvarint()
                    .map_err(|e| stream::varint_err("second timestamp delta", r, e))?;
                let v = self.vals.read(r).map_err(|e| xor_err(e, at))?;
                ((self.t as u64).wrapping_add(self.delta) as i64, v)
            }
            _ => {
                let dod = read_dod(r).map_err(|_| stream::truncated("timestamp", r))?;
                self.delta = self.delta.wrapping_add(dod as u64);
                let v = self.vals.read(r).map_err(|e| xor_err(e, at))?;
                ((self.t as u64).wrapping_add(self.delta) as i64, v)
            }
        };
        if self.i > 0 && t <= self.t {
            return Err(Error::NotIncreasing {
                sample: self.i,
                t,
                prev: self.t,
            });
        }
        self.t = t;
        self.i += 1;
        Ok(Some((t, f64::from_bits(bits))))
    }
}

pub(crate) fn xor_err(e: xor::XorError, offset: usize) -> Error {
    match e {
        xor::XorError::Eof => Error::Truncated {
            what: "XOR value",
            offset,
        },
        xor::XorError::BadWindow => Error::Invalid {
            what: "XOR window wider than 64 bits",
            offset,
        },
        xor::XorError::NoWindow => Error::Invalid {
            what: "XOR code reuses a window before one was set",
            offset,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STALE: u64 = 0x7ff0_0000_0000_0002;

    fn check(samples: &[(i64, f64)]) -> (usize, usize, Encoding) {
        let mut w = ChunkWriter::new();
        for &(t, v) in samples {
            w.append(t, v).expect("append");
        }
        let open = w.bytes().to_vec();
        let sealed = w.seal();
        for bytes in [&open, &sealed] {
            if bytes.is_empty() {
                continue;
            }
            let c = Chunk::new(bytes).expect("open the chunk");
            assert_eq!(c.len(), samples.len());
            let back: Vec<(i64, f64)> = c.iter().collect::<Result<_, _>>().expect("decode");
            assert_eq!(back.len(), samples.len());
            for (i, (a, b)) in samples.iter().zip(&back).enumerate() {
                assert_eq!(a.0, b.0, "timestamp {i}");
                assert_eq!(
                    a.1.to_bits(),
                    b.1.to_bits(),
                    "value {i}: {} vs {}",
                    a.1,
                    b.1
                );
            }
        }
        let enc = if sealed.is_empty() {
            Encoding::Open
        } else {
            Chunk::new(&sealed).expect("sealed").encoding()
        };
        (open.len(), sealed.len(), enc)
    }

    fn regular(n: i64, f: impl Fn(i64) -> f64) -> Vec<(i64, f64)> {
        (0..n)
            .map(|i| (1_700_000_000_000 + i * 15_000, f(i)))
            .collect()
    }

    #[test]
    fn empty_and_single() {
        let (open, sealed, _) = check(&[]);
        assert_eq!((open, sealed), (3, 0));
        check(&[(i64::MIN, -0.0)]);
        check(&[(i64::MAX, f64::from_bits(STALE))]);
    }

    #[test]
    fn special_values_round_trip() {
        let specials = [
            f64::from_bits(STALE),
            f64::NAN,
            -f64::NAN,
            f64::from_bits(0x7ff8_dead_beef_0001),
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.0,
            0.0,
            f64::MIN_POSITIVE / 3.0,
            -5e-324,
            f64::MAX,
            f64::MIN,
            1e-300,
            9_007_199_254_740_993.0,
            0.1 + 0.2,
        ];
        for (i, &s) in specials.iter().enumerate() {
            // Alone, among integers, among decimals.
            check(&regular(50, |_| s));
            check(&regular(50, |j| if j == 7 { s } else { j as f64 }));
            check(&regular(50, |j| {
                if j == 0 || j == 49 {
                    s
                } else {
                    j as f64 * 0.25
                }
            }));
            check(&regular(50, |j| {
                specials[(j as usize + i) % specials.len()]
            }));
        }
    }

    #[test]
    fn timestamp_extremes_round_trip() {
        check(&[(i64::MIN, 1.0), (i64::MAX, 2.0)]);
        check(&[(i64::MIN, 1.0), (-1, 2.0), (0, 3.0), (i64::MAX, 4.0)]);
        check(&[
            (i64::MIN, 1.0),
            (i64::MIN + 1, 2.0),
            (i64::MAX - 1, 3.0),
            (i64::MAX, 4.0),
        ]);
        let jumps: Vec<(i64, f64)> = (0..40)
            .map(|i| {
                let t = i128::from(i64::MIN)
                    + i128::from(i) * i128::from(i64::MAX / 20)
                    + i128::from(i % 3);
                (t as i64, i as f64)
            })
            .collect();
        check(&jumps);
    }

    #[test]
    fn layouts_are_chosen_and_small() {
        // Constant: a few bytes whatever the count.
        let (open, sealed, enc) = check(&regular(240, |_| 1.0));
        assert!(
            sealed <= 20,
            "{sealed} bytes, {enc:?}: {:02x?}",
            encode(&regular(240, |_| 1.0))
        );
        assert!(open > sealed);
        // A counter at a constant rate.
        let (_, sealed, enc) = check(&regular(240, |i| (1000 + 15 * i) as f64));
        assert!(sealed < 24, "{sealed} bytes, {enc:?}");
        assert!(matches!(
            enc,
            Encoding::Sealed {
                values: ValueLayout::Decimal,
                ..
            }
        ));
        // Two-decimal gauge.
        let (open, sealed, enc) = check(&regular(240, |i| ((i * 37 % 11) as f64 + 40.0) / 100.0));
        assert!(sealed * 2 < open, "{sealed} vs {open} bytes, {enc:?}");
        // Stale marker at the end of an integer series stays decimal.
        let (_, _, enc) = check(&regular(240, |i| {
            if i == 239 {
                f64::from_bits(STALE)
            } else {
                (i / 10) as f64
            }
        }));
        assert!(matches!(
            enc,
            Encoding::Sealed {
                values: ValueLayout::Decimal,
                ..
            }
        ));
    }

    #[test]
    fn out_of_order_and_full_are_refused() {
        let mut w = ChunkWriter::new();
        w.append(10, 1.0).unwrap();
        assert_eq!(
            w.append(10, 1.0),
            Err(Error::OutOfOrder { t: 10, last: 10 })
        );
        assert_eq!(w.append(9, 1.0), Err(Error::OutOfOrder { t: 9, last: 10 }));
        assert_eq!(w.len(), 1);
        let mut w = ChunkWriter::new();
        for i in 0..MAX_SAMPLES as i64 {
            w.append(i, 0.0).unwrap();
        }
        assert_eq!(w.append(1 << 40, 0.0), Err(Error::Full(MAX_SAMPLES)));
        check(
            &(0..MAX_SAMPLES as i64)
                .map(|i| (i * 3, (i % 7) as f64))
                .collect::<Vec<_>>(),
        );
        assert!(matches!(
            encode(&[(2, 0.0), (1, 0.0)]),
            Err(Error::OutOfOrder { t: 1, last: 2 })
        ));
    }

    #[test]
    fn damaged_bytes_give_errors() {
        assert_eq!(Chunk::new(&[]).unwrap_err(), Error::Empty);
        assert_eq!(Chunk::new(&[7]).unwrap_err(), Error::UnknownEncoding(7));
        assert!(matches!(
            Chunk::new(&[ENC_XOR, 0]),
            Err(Error::Truncated { offset: 1, .. })
        ));
        let mut w = ChunkWriter::new();
        for (t, v) in regular(100, |i| (i * i) as f64 * 0.5) {
            w.append(t, v).unwrap();
        }
        for bytes in [w.bytes().to_vec(), w.seal()] {
            // Every truncation is an error, never a panic or a silent short read.
            for cut in 0..bytes.len() {
                let r =
                    Chunk::new(&bytes[..cut]).and_then(|c| c.iter().collect::<Result<Vec<_>, _>>());
                assert!(
                    r.is_err() || bytes[0] == ENC_XOR && cut + 1 >= bytes.len(),
                    "cut at {cut}"
                );
            }
            // Trailing bytes after a sealed chunk are refused.
            if bytes[0] == ENC_SEALED {
                let mut long = bytes.clone();
                long.push(0);
                let r = Chunk::new(&long).and_then(|c| c.iter().collect::<Result<Vec<_>, _>>());
                assert!(r.is_err());
            }
        }
    }

    #[test]
    fn policy_cuts_by_count_and_span() {
        let p = ChunkPolicy::default();
        let mut w = ChunkWriter::new();
        assert!(!p.should_cut(&w, 0));
        w.append(0, 1.0).unwrap();
        assert!(!p.should_cut(&w, 3_599_999));
        assert!(p.should_cut(&w, 3_600_000));
        for i in 1..240 {
            w.append(i, 1.0).unwrap();
        }
        assert!(p.should_cut(&w, 241));
    }
}
