//! The sealed encoding (`0x02`): column layouts chosen per chunk.
//!
//! ```text
//! 0x02 | n: uvarint | layouts: u8 | ts_len: uvarint | timestamps (ts_len bytes) | values
//! ```
//!
//! `FORMAT.md` ("Encoding 0x02") gives each section. The encoder computes the
//! exact size of every allowed layout and keeps the smallest.

use super::bits::{BitReader, BitWriter, uvarint_len, zigzag};
use super::stream::{self, Layouts, StreamReader, truncated, varint_err};
use super::xor::XorState;
use super::{
    ChunkWriter, ENC_SEALED, Encoding, MAX_SAMPLES, TimestampLayout, ValueLayout, xor_err,
};
use crate::Error;

const TS_GRID: u8 = 0;
const TS_DELTA: u8 = 1;
const V_XOR: u8 = 0;
const V_CONST: u8 = 1;
const V_DECIMAL: u8 = 2;
const V_BITS: u8 = 3;

/// Largest decimal scale: 10^22 is the largest power of ten an f64 holds
/// exactly.
const MAX_SCALE: u32 = 22;
/// Integers up to 2^53 convert to f64 and back exactly.
const MAX_EXACT: f64 = 9_007_199_254_740_992.0;

const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// The value of decimal integer `m` at scale `k`, as writer and reader both
/// compute it: one correctly rounded division.
#[inline]
fn from_decimal(m: i64, k: u32) -> f64 {
    if k == 0 {
        m as f64
    } else {
        m as f64 / POW10[k as usize]
    }
}

/// The integer `m` with `from_decimal(m, k)` bit-equal to `v`, if any.
#[inline]
fn to_decimal(v: f64, k: u32) -> Option<i64> {
    if k == 0 {
        // The same answer without `round` (a libm call on baseline
        // x86-64, and the most common scale): a value that is an integer
        // within ±2^53 truncates to itself; any other does not come back.
        let m = v as i64;
        return (v.abs() <= MAX_EXACT && (m as f64).to_bits() == v.to_bits()).then_some(m);
    }
    let m = (v * POW10[k as usize]).round();
    if m.abs() <= MAX_EXACT && from_decimal(m as i64, k).to_bits() == v.to_bits() {
        Some(m as i64)
    } else {
        None
    }
}

/// Values the decimal layout keeps aside, raw: NaN, ±Inf and -0.0.
#[inline]
fn is_exception(v: f64) -> bool {
    !v.is_finite() || v.to_bits() == (-0.0f64).to_bits()
}

/// Which layouts the sealing [`Encoder`] may choose from.
///
/// Everything is allowed by default, and the encoder picks the smallest. A
/// writer turns layouts off to measure what each one brings, or to write
/// chunks that a reader of an older format version understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Encodings {
    /// Timestamps as offsets from a regular grid (else deltas only).
    pub grid_timestamps: bool,
    /// Values that never change stored once.
    pub constant_values: bool,
    /// Values as integers scaled by a power of ten.
    pub decimal_values: bool,
    /// Integer columns in the tiered prefix code.
    pub tiered_streams: bool,
    /// Integer columns as a base plus the positions that differ.
    pub sparse_streams: bool,
    /// Integer columns divided by their common divisor.
    pub common_divisor: bool,
    /// Other floats as differences of their bits (else XOR).
    pub float_deltas: bool,
}

impl Default for Encodings {
    fn default() -> Self {
        Self::all()
    }
}

impl Encodings {
    /// Every layout.
    pub const fn all() -> Self {
        Self {
            grid_timestamps: true,
            constant_values: true,
            decimal_values: true,
            tiered_streams: true,
            sparse_streams: true,
            common_divisor: true,
            float_deltas: true,
        }
    }

    /// None of the refinements: delta timestamps bit-packed, XOR values.
    pub const fn none() -> Self {
        Self {
            grid_timestamps: false,
            constant_values: false,
            decimal_values: false,
            tiered_streams: false,
            sparse_streams: false,
            common_divisor: false,
            float_deltas: false,
        }
    }

    fn layouts(&self) -> Layouts {
        Layouts {
            tiered: self.tiered_streams,
            sparse: self.sparse_streams,
            gcd: self.common_divisor,
        }
    }
}

/// Seals chunks; keeps its scratch buffers between chunks, so sealing does
/// not allocate once they have grown.
#[derive(Debug, Clone, Default)]
pub struct Encoder {
    enc: Encodings,
    ts: Vec<i64>,
    vs: Vec<f64>,
    col: Vec<i64>,
    col2: Vec<i64>,
    sorted: Vec<i64>,
    exc: Vec<(usize, u64)>,
    w: BitWriter,
    xor: BitWriter,
}

impl Encoder {
    /// An encoder that may use every layout.
    pub fn new() -> Self {
        Self::default()
    }

    /// An encoder restricted to `enc`.
    pub fn with_encodings(enc: Encodings) -> Self {
        Self {
            enc,
            ..Self::default()
        }
    }

    /// Appends one sealed chunk of `samples` to `out`. Timestamps must be
    /// strictly increasing; 1 to [`MAX_SAMPLES`] samples.
    pub fn encode(&mut self, samples: &[(i64, f64)], out: &mut Vec<u8>) -> Result<(), Error> {
        if samples.len() > MAX_SAMPLES {
            return Err(Error::Full(samples.len()));
        }
        self.ts.clear();
        self.vs.clear();
        for &(t, v) in samples {
            if let Some(&last) = self.ts.last() {
                if t <= last {
                    return Err(Error::OutOfOrder { t, last });
                }
            }
            self.ts.push(t);
            self.vs.push(v);
        }
        if !self.ts.is_empty() {
            self.encode_columns(out);
        }
        Ok(())
    }

    /// Appends one sealed chunk of the samples `fill` pushes into the
    /// timestamp and value columns (given empty): strictly increasing, at
    /// most [`MAX_SAMPLES`], as the head's raw open chunks hold them
    /// (`head/open.rs`). Nothing is appended when `fill` pushes nothing.
    pub(crate) fn encode_with(
        &mut self,
        fill: impl FnOnce(&mut Vec<i64>, &mut Vec<f64>),
        out: &mut Vec<u8>,
    ) {
        self.ts.clear();
        self.vs.clear();
        fill(&mut self.ts, &mut self.vs);
        debug_assert!(self.ts.windows(2).all(|w| w[0] < w[1]));
        debug_assert!(self.ts.len() <= MAX_SAMPLES && self.ts.len() == self.vs.len());
        if !self.ts.is_empty() {
            self.encode_columns(out);
        }
    }

    pub(crate) fn encode_open(&mut self, w: &ChunkWriter, out: &mut Vec<u8>) {
        self.ts.clear();
        self.vs.clear();
        if w.is_empty() {
            return;
        }
        // The writer's own bytes: always decodable.
        if let Ok(chunk) = super::Chunk::new(w.bytes()) {
            for (t, v) in chunk.iter().flatten() {
                self.ts.push(t);
                self.vs.push(v);
            }
        }
        debug_assert_eq!(self.ts.len(), w.len());
        self.encode_columns(out);
    }

    fn encode_columns(&mut self, out: &mut Vec<u8>) {
        let n = self.ts.len();
        let layouts = self.enc.layouts();
        let mut w = std::mem::take(&mut self.w);
        w.buf.clear();
        w.align();

        // Timestamps: deltas, and (if allowed) offsets from a grid whose
        // interval is the median or most frequent delta. `col` holds the
        // deltas, `col2` the chosen grid's offsets.
        self.col.clear();
        self.col
            .extend(self.ts.windows(2).map(|p| p[1].wrapping_sub(p[0])));
        let delta_plan = stream::plan(&self.col, &mut self.sorted, layouts);
        let mut ts_mode = TS_DELTA;
        let mut ts_bits = 8 * uvarint_len(zigzag(self.ts[0])) + delta_plan.bits;
        let mut grid = None;
        // On a regular grid (every delta the same) the grid layout costs
        // exactly what the deltas do (a constant stream either way) and a
        // tie keeps the deltas: no need to try it.
        if self.enc.grid_timestamps && n > 2 && !delta_plan.is_const() {
            // The grid's interval: the most frequent delta, or the median
            // one (a ms-jittered series' most frequent delta can be off by
            // one, which would make the offsets drift).
            let c = stream::center(&self.col, &mut self.sorted);
            let both = [c.median, c.mode];
            let candidates = if c.mode == c.median {
                &both[..1]
            } else {
                &both[..]
            };
            for &d in candidates {
                self.col2.clear();
                self.col2.extend(
                    self.ts
                        .iter()
                        .enumerate()
                        .map(|(i, &t)| t.wrapping_sub((i as i64).wrapping_mul(d))),
                );
                let p = stream::plan(&self.col2, &mut self.sorted, layouts);
                let bits = 8 * uvarint_len(zigzag(d)) + p.bits;
                if bits < ts_bits {
                    ts_mode = TS_GRID;
                    ts_bits = bits;
                    grid = Some((d, p));
                }
            }
            // Leave the chosen grid's offsets in col2.
            if let Some((d, _)) = grid {
                self.col2.clear();
                self.col2.extend(
                    self.ts
                        .iter()
                        .enumerate()
                        .map(|(i, &t)| t.wrapping_sub((i as i64).wrapping_mul(d))),
                );
            }
        }
        match grid {
            Some((d, p)) => {
                w.write_ivarint(d);
                stream::write(&mut w, &self.col2, &p);
            }
            None => {
                w.write_ivarint(self.ts[0]);
                stream::write(&mut w, &self.col, &delta_plan);
            }
        }
        w.align();
        let ts_len = w.buf.len();

        // Values: constant and decimal when they apply; XOR (always
        // possible) only when they do not beat its least possible size.
        let first = self.vs[0].to_bits();
        let mut v_mode = V_XOR;
        let mut v_bits = usize::MAX;
        if self.enc.constant_values && self.vs.iter().all(|v| v.to_bits() == first) {
            v_mode = V_CONST;
            v_bits = 64;
        }
        let mut dec = None;
        if self.enc.decimal_values {
            if let Some((k, m0)) = self.decimal_columns() {
                let p = stream::plan(&self.col, &mut self.sorted, layouts);
                let exc_bits: usize = {
                    let mut prev = 0usize;
                    self.exc
                        .iter()
                        .enumerate()
                        .map(|(j, &(i, _))| {
                            let gap = if j == 0 { i } else { i - prev - 1 };
                            prev = i;
                            8 * uvarint_len(gap as u64) + 64
                        })
                        .sum()
                };
                let bits = 8
                    + 8 * uvarint_len(self.exc.len() as u64)
                    + exc_bits
                    + 8 * uvarint_len(zigzag(m0))
                    + p.bits;
                if bits < v_bits {
                    v_mode = V_DECIMAL;
                    v_bits = bits;
                    dec = Some((k, m0, p));
                }
            }
        }
        // XOR takes at least 64 bits and one a sample after the first.
        if v_bits > 64 + (n - 1) {
            self.xor.buf.clear();
            self.xor.align();
            self.xor.write(first, 64);
            let mut st = XorState::new(first);
            for v in &self.vs[1..] {
                st.write(&mut self.xor, v.to_bits());
            }
            if self.xor.bit_len() <= v_bits {
                v_mode = V_XOR;
                v_bits = self.xor.bit_len();
            }
        }
        // Float bits as integers, in differences: a slowly moving float of
        // any precision changes its bits by a small integer.
        let mut bits_plan = None;
        if self.enc.float_deltas && v_mode == V_XOR {
            self.col.clear();
            self.col.extend(
                self.vs
                    .windows(2)
                    .map(|p| (p[1].to_bits() as i64).wrapping_sub(p[0].to_bits() as i64)),
            );
            let p = stream::plan(&self.col, &mut self.sorted, layouts);
            if 64 + p.bits < v_bits {
                v_mode = V_BITS;
                bits_plan = Some(p);
            }
        }
        match v_mode {
            V_CONST => w.write(first, 64),
            V_BITS => {
                if let Some(p) = bits_plan {
                    w.write(first, 64);
                    stream::write(&mut w, &self.col, &p);
                }
            }
            V_DECIMAL => {
                if let Some((k, m0, p)) = dec {
                    w.write(u64::from(k), 8);
                    w.write_uvarint(self.exc.len() as u64);
                    let mut prev = 0usize;
                    for (j, &(i, bits)) in self.exc.iter().enumerate() {
                        let gap = if j == 0 { i } else { i - prev - 1 };
                        prev = i;
                        w.write_uvarint(gap as u64);
                        w.write(bits, 64);
                    }
                    w.write_ivarint(m0);
                    stream::write(&mut w, &self.col, &p);
                }
            }
            _ => {
                // Copy the XOR bits already written.
                let full = self.xor.bit_len() / 8;
                for &b in &self.xor.buf[..full] {
                    w.write(u64::from(b), 8);
                }
                let rest = (self.xor.bit_len() % 8) as u32;
                if rest > 0 {
                    w.write(u64::from(self.xor.buf[full] >> (8 - rest)), rest);
                }
            }
        }

        out.push(ENC_SEALED);
        push_uvarint(out, n as u64);
        out.push(ts_mode | (v_mode << 4));
        push_uvarint(out, ts_len as u64);
        out.extend_from_slice(&w.buf);
        self.w = w;
    }

    /// Fills `col` with the deltas of the decimal integers and `exc` with
    /// the values kept aside; returns the scale and the first integer, or
    /// `None` when some value is no short decimal.
    fn decimal_columns(&mut self) -> Option<(u32, i64)> {
        match self.integer_columns() {
            Some(found) => found,
            None => self.scaled_columns(),
        }
    }

    /// [`decimal_columns`](Self::decimal_columns) at any scale.
    fn scaled_columns(&mut self) -> Option<(u32, i64)> {
        let n = self.vs.len();
        // Smallest scale that holds every value (each value's smallest
        // scale, maximised; checked again below at the final scale).
        let mut k = 0u32;
        let mut finite = 0usize;
        for &v in &self.vs {
            if is_exception(v) {
                continue;
            }
            finite += 1;
            while to_decimal(v, k).is_none() {
                k += 1;
                if k > MAX_SCALE {
                    return None;
                }
            }
        }
        if finite == 0 || (n - finite) * 4 > n {
            return None;
        }
        let m0 = self.columns_at(k)?;
        Some((k, m0))
    }

    /// [`decimal_columns`](Self::decimal_columns) at scale 0 in one pass
    /// (the common case, integers: the general path finds the scale in
    /// one pass and converts in a second): `None` when some finite value
    /// is not an integer (the general path decides), else its answer.
    fn integer_columns(&mut self) -> Option<Option<(u32, i64)>> {
        let n = self.vs.len();
        let Some(m0) = self.columns_at(0) else {
            // Every value kept aside: no decimal layout at any scale. Else
            // a finite value is no integer, and the general path decides.
            return (self.exc.len() == n).then_some(None);
        };
        if self.exc.len() * 4 > n {
            return Some(None);
        }
        Some(Some((0, m0)))
    }

    /// The values at scale `k` into `col2`, each kept-aside value (into
    /// `exc`) holding its neighbour's integer (the previous one, or the
    /// first for a leading run) so that it costs a zero delta, and their
    /// deltas into `col`; returns the first integer, or `None` when a
    /// finite value has no integer at scale `k` or there is none.
    fn columns_at(&mut self, k: u32) -> Option<i64> {
        self.exc.clear();
        self.col2.clear();
        let mut first = None;
        for (i, &v) in self.vs.iter().enumerate() {
            if is_exception(v) {
                self.exc.push((i, v.to_bits()));
                self.col2.push(self.col2.last().copied().unwrap_or(0));
            } else {
                let m = to_decimal(v, k)?;
                if first.is_none() {
                    first = Some(m);
                    // Back-fill the leading run of exceptions.
                    for x in &mut self.col2 {
                        *x = m;
                    }
                }
                self.col2.push(m);
            }
        }
        let m0 = first?;
        self.col.clear();
        self.col
            .extend(self.col2.windows(2).map(|p| p[1].wrapping_sub(p[0])));
        Some(m0)
    }
}

fn push_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Decoder of a sealed chunk.
#[derive(Debug, Clone)]
pub(crate) struct SealedIter<'a> {
    n: usize,
    i: usize,
    ts_r: BitReader<'a>,
    v_r: BitReader<'a>,
    ts: TsDec,
    vals: ValDec,
    t: i64,
    /// Reader of the kept-aside values (decimal layout).
    exc_r: Option<BitReader<'a>>,
}

#[derive(Debug, Clone)]
enum TsDec {
    Grid { d: i64, s: StreamReader },
    Delta { s: StreamReader },
}

#[derive(Debug, Clone)]
enum ValDec {
    Xor(XorState),
    /// Differences of the float bits as integers.
    Bits {
        prev: u64,
        s: StreamReader,
    },
    Const(u64),
    Decimal {
        k: u32,
        m: i64,
        s: StreamReader,
        exc_left: u64,
        /// Position and bits of the next value kept aside.
        next: Option<(usize, u64)>,
    },
}

/// Reads a sealed chunk's headers: sample count, encoding and a decoder.
pub(crate) fn open(data: &[u8]) -> Result<(usize, Encoding, SealedIter<'_>), Error> {
    let mut r = BitReader::new(data);
    let _ = r.read(8);
    let at = r.offset();
    let n = r
        .read_uvarint()
        .map_err(|e| varint_err("sample count", &r, e))?;
    if n == 0 || n > MAX_SAMPLES as u64 {
        return Err(Error::Invalid {
            what: "sample count not in 1..=65535",
            offset: at,
        });
    }
    let n = n as usize;
    let at = r.offset();
    let modes = r.read(8).map_err(|_| truncated("layout byte", &r))? as u8;
    let (ts_mode, v_mode) = (modes & 0xf, modes >> 4);
    if ts_mode > TS_DELTA || v_mode > V_BITS {
        return Err(Error::Invalid {
            what: "unknown column layout",
            offset: at,
        });
    }
    let at = r.offset();
    let ts_len = r
        .read_uvarint()
        .map_err(|e| varint_err("timestamp section length", &r, e))?;
    let ts_start = r.pos();
    let ts_end = (ts_len as usize)
        .checked_mul(8)
        .and_then(|b| b.checked_add(ts_start))
        .filter(|&e| e <= data.len() * 8)
        .ok_or(Error::Truncated {
            what: "timestamp section",
            offset: at,
        })?;
    let mut ts_r = BitReader::with_range(data, ts_start, ts_end);
    let (ts, t) = if ts_mode == TS_GRID {
        let d = ts_r
            .read_ivarint()
            .map_err(|e| varint_err("grid interval", &ts_r, e))?;
        (
            TsDec::Grid {
                d,
                s: StreamReader::new(&mut ts_r, n)?,
            },
            0,
        )
    } else {
        let t0 = ts_r
            .read_ivarint()
            .map_err(|e| varint_err("first timestamp", &ts_r, e))?;
        (
            TsDec::Delta {
                s: StreamReader::new(&mut ts_r, n - 1)?,
            },
            t0,
        )
    };
    let mut v_r = BitReader::with_range(data, ts_end, data.len() * 8);
    let vals = match v_mode {
        V_XOR => ValDec::Xor(XorState::default()),
        V_BITS => {
            let first = v_r.read(64).map_err(|_| truncated("first value", &v_r))?;
            ValDec::Bits {
                prev: first,
                s: StreamReader::new(&mut v_r, n - 1)?,
            }
        }
        V_CONST => ValDec::Const(
            v_r.read(64)
                .map_err(|_| truncated("constant value", &v_r))?,
        ),
        _ => {
            let at = v_r.offset();
            let k = v_r.read(8).map_err(|_| truncated("decimal scale", &v_r))? as u32;
            if k > MAX_SCALE {
                return Err(Error::Invalid {
                    what: "decimal scale above 22",
                    offset: at,
                });
            }
            let at = v_r.offset();
            let exc_left = v_r
                .read_uvarint()
                .map_err(|e| varint_err("exception count", &v_r, e))?;
            if exc_left > n as u64 {
                return Err(Error::Invalid {
                    what: "more exceptions than samples",
                    offset: at,
                });
            }
            // The exceptions come before the integer column; skip them
            // now and read them from a second reader as samples pass.
            let exc_r = v_r.clone();
            for _ in 0..exc_left {
                v_r.read_uvarint()
                    .map_err(|e| varint_err("exception position", &v_r, e))?;
                v_r.read(64)
                    .map_err(|_| truncated("exception value", &v_r))?;
            }
            let m = v_r
                .read_ivarint()
                .map_err(|e| varint_err("first decimal", &v_r, e))?;
            let s = StreamReader::new(&mut v_r, n - 1)?;
            let mut dec = ValDec::Decimal {
                k,
                m,
                s,
                exc_left,
                next: None,
            };
            let mut exc_r = exc_r;
            load_exception(&mut dec, &mut exc_r, None)?;
            return Ok((
                n,
                Encoding::Sealed {
                    timestamps: ts_layout(ts_mode),
                    values: ValueLayout::Decimal,
                },
                SealedIter {
                    n,
                    i: 0,
                    ts_r,
                    v_r,
                    ts,
                    vals: dec,
                    t,
                    exc_r: Some(exc_r),
                },
            ));
        }
    };
    let values = match v_mode {
        V_XOR => ValueLayout::Xor,
        V_BITS => ValueLayout::FloatDelta,
        _ => ValueLayout::Constant,
    };
    Ok((
        n,
        Encoding::Sealed {
            timestamps: ts_layout(ts_mode),
            values,
        },
        SealedIter {
            n,
            i: 0,
            ts_r,
            v_r,
            ts,
            vals,
            t,
            exc_r: None,
        },
    ))
}

fn ts_layout(mode: u8) -> TimestampLayout {
    if mode == TS_GRID {
        TimestampLayout::Grid
    } else {
        TimestampLayout::Delta
    }
}

/// Reads the next kept-aside value's position (after `prev`) and bits.
fn load_exception(
    dec: &mut ValDec,
    r: &mut BitReader<'_>,
    prev: Option<usize>,
) -> Result<(), Error> {
    if let ValDec::Decimal { exc_left, next, .. } = dec {
        if *exc_left == 0 {
            *next = None;
            return Ok(());
        }
        *exc_left -= 1;
        let at = r.offset();
        let gap = r
            .read_uvarint()
            .map_err(|e| varint_err("exception position", r, e))?;
        let pos = match prev {
            None => Some(gap),
            Some(p) => gap.checked_add(p as u64 + 1),
        }
        .filter(|&p| p < MAX_SAMPLES as u64)
        .ok_or(Error::Invalid {
            what: "exception position past the samples",
            offset: at,
        })?;
        let bits = r.read(64).map_err(|_| truncated("exception value", r))?;
        *next = Some((pos as usize, bits));
    }
    Ok(())
}

impl SealedIter<'_> {
    pub(crate) fn left(&self) -> usize {
        self.n - self.i
    }

    #[inline]
    pub(crate) fn next_sample(&mut self) -> Result<Option<(i64, f64)>, Error> {
        let i = self.i;
        if i >= self.n {
            return Ok(None);
        }
        let t = match &mut self.ts {
            TsDec::Grid { d, s } => s
                .next(&mut self.ts_r)?
                .wrapping_add((i as i64).wrapping_mul(*d)),
            TsDec::Delta { s } => {
                if i == 0 {
                    self.t
                } else {
                    self.t.wrapping_add(s.next(&mut self.ts_r)?)
                }
            }
        };
        if i > 0 && t <= self.t {
            return Err(Error::NotIncreasing {
                sample: i,
                t,
                prev: self.t,
            });
        }
        let at = self.v_r.offset();
        let mut aside = false;
        let bits = match &mut self.vals {
            ValDec::Const(b) => *b,
            ValDec::Bits { prev, s } => {
                if i > 0 {
                    *prev = prev.wrapping_add(s.next(&mut self.v_r)? as u64);
                }
                *prev
            }
            ValDec::Xor(st) => {
                if i == 0 {
                    let b = self
                        .v_r
                        .read(64)
                        .map_err(|_| truncated("first value", &self.v_r))?;
                    *st = XorState::new(b);
                    b
                } else {
                    st.read(&mut self.v_r).map_err(|e| xor_err(e, at))?
                }
            }
            ValDec::Decimal { k, m, s, next, .. } => {
                if i > 0 {
                    *m = m.wrapping_add(s.next(&mut self.v_r)?);
                }
                match *next {
                    Some((pos, bits)) if pos == i => {
                        aside = true;
                        bits
                    }
                    _ => from_decimal(*m, *k).to_bits(),
                }
            }
        };
        if aside {
            if let Some(r) = &mut self.exc_r {
                load_exception(&mut self.vals, r, Some(i))?;
            }
        }
        self.t = t;
        self.i += 1;
        if self.i == self.n {
            self.check_end()?;
        }
        Ok(Some((t, f64::from_bits(bits))))
    }

    /// After the last sample: nothing may be left but padding, and every
    /// kept-aside value must have been used.
    fn check_end(&self) -> Result<(), Error> {
        if self.ts_r.remaining() >= 8 {
            return Err(Error::Invalid {
                what: "bytes after the last timestamp",
                offset: self.ts_r.offset(),
            });
        }
        if self.v_r.remaining() >= 8 {
            return Err(Error::Invalid {
                what: "bytes after the last value",
                offset: self.v_r.offset(),
            });
        }
        if let ValDec::Decimal { next: Some(_), .. } = self.vals {
            return Err(Error::Invalid {
                what: "a kept-aside value past the last sample",
                offset: self.v_r.offset(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn value() -> impl Strategy<Value = f64> {
        prop_oneof![
            6 => (-1000..1000i64).prop_map(|i| i as f64),
            1 => any::<i64>().prop_map(|i| i as f64),
            1 => (-1000..1000i64).prop_map(|i| i as f64 / 100.0),
            1 => prop_oneof![
                Just(f64::NAN),
                Just(f64::INFINITY),
                Just(-0.0),
                Just(f64::from_bits(0x7ff0_0000_0000_0002)),
            ],
            1 => any::<u64>().prop_map(f64::from_bits),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// The one-pass integer path gives what the general path gives
        /// wherever it answers (so sealing writes the same bytes as before
        /// it existed).
        #[test]
        fn integer_columns_agree_with_the_general_path(
            vs in prop::collection::vec(value(), 1..200),
        ) {
            let mut a = Encoder::new();
            a.vs = vs.clone();
            let mut b = Encoder::new();
            b.vs = vs;
            if let Some(fast) = a.integer_columns() {
                let slow = b.scaled_columns();
                prop_assert_eq!(fast, slow);
                if slow.is_some() {
                    prop_assert_eq!(&a.col, &b.col);
                    prop_assert_eq!(&a.col2, &b.col2);
                    prop_assert_eq!(&a.exc, &b.exc);
                }
            } else {
                // Declined only when a finite value is no integer.
                prop_assert!(b.vs.iter().any(|&v| !is_exception(v) && to_decimal(v, 0).is_none()));
            }
        }
    }
}
