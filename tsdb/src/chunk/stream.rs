//! Integer streams: the workhorse of the sealed encoding (`FORMAT.md`,
//! "Integer streams").
//!
//! A stream holds `n` `i64`s (`n` is known to the reader from the chunk
//! header). The encoder computes the exact size of three layouts and writes
//! the smallest:
//!
//! - **packed**: every `(x - min) / g` in `w` bits (frame of reference);
//! - **tiered**: `(x - base) / g` zigzagged, in a prefix code of three widths
//!   chosen for this stream (`0` = the base itself);
//! - **sparse**: the base, then only the elements that differ from it, each
//!   with its position;
//! - **constant**: every element is the base (no payload).
//!
//! `base` is the most frequent element, `g` the greatest common divisor of
//! the differences (so multiples of 4096, or of 1000, cost no bits for their
//! zeros). All arithmetic wraps mod 2^64 on both sides.

use super::bits::{BitReader, BitWriter, VarintError, bit_len, unzigzag, uvarint_len, zigzag};
use crate::Error;

pub(crate) const KIND_PACKED: u8 = 0;
pub(crate) const KIND_TIERED: u8 = 1;
pub(crate) const KIND_SPARSE: u8 = 2;
/// Every element equals the base: no payload.
pub(crate) const KIND_CONST: u8 = 3;
const HAS_G: u8 = 0b100;

/// Which stream layouts the encoder may pick (all by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layouts {
    pub(crate) tiered: bool,
    pub(crate) sparse: bool,
    pub(crate) gcd: bool,
}

impl Default for Layouts {
    fn default() -> Self {
        Self {
            tiered: true,
            sparse: true,
            gcd: true,
        }
    }
}

/// The chosen layout of one stream, and its exact size.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    kind: u8,
    base: i64,
    g: u64,
    widths: [u8; 3],
    exceptions: usize,
    /// Size in bits, header included, before padding.
    pub(crate) bits: usize,
}

impl Plan {
    /// Whether every element is the base (no payload).
    pub(crate) fn is_const(&self) -> bool {
        self.kind == KIND_CONST
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    if a == 0 {
        return b;
    }
    if b == 0 {
        return a;
    }
    let shift = (a | b).trailing_zeros();
    a >>= a.trailing_zeros();
    loop {
        b >>= b.trailing_zeros();
        if a > b {
            std::mem::swap(&mut a, &mut b);
        }
        b -= a;
        if b == 0 {
            return a << shift;
        }
    }
}

/// `y / g` for the signed layouts (`1 <= g <= i64::MAX`), without a
/// division in the common case `g == 1`.
#[inline]
fn div(y: i64, g: u64) -> i64 {
    if g == 1 { y } else { y / g as i64 }
}

fn header_bits(base: i64, g: u64) -> usize {
    8 + 8 * uvarint_len(zigzag(base)) + if g > 1 { 8 * uvarint_len(g) } else { 0 }
}

/// Where a column sits: its extremes, most frequent element and median.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Center {
    pub(crate) min: i64,
    pub(crate) max: i64,
    /// The most frequent element when the column's range is small or one
    /// element is a majority; otherwise the median.
    pub(crate) mode: i64,
    pub(crate) median: i64,
}

/// Range below which [`center`] counts every value exactly.
const COUNT_RANGE: u64 = 512;

/// Computes a [`Center`] in linear time (no sort): exact counts when the
/// range is small, else a majority vote, else a selection for the median.
/// `scratch` is scratch space. `xs` must not be empty.
pub(crate) fn center(xs: &[i64], scratch: &mut Vec<i64>) -> Center {
    // A constant column first, in a loop without branches (vectorised):
    // the vote below costs a branch an element, and a head seals two
    // constant columns per chunk of a regular counter.
    let x0 = xs.first().copied().unwrap_or(0);
    if xs.iter().fold(true, |same, &x| same & (x == x0)) {
        return Center {
            min: x0,
            max: x0,
            mode: x0,
            median: x0,
        };
    }
    let (mut min, mut max) = (i64::MAX, i64::MIN);
    // Boyer-Moore majority vote.
    let (mut cand, mut votes) = (0i64, 0usize);
    for &x in xs {
        min = min.min(x);
        max = max.max(x);
        if votes == 0 {
            cand = x;
            votes = 1;
        } else if x == cand {
            votes += 1;
        } else {
            votes -= 1;
        }
    }
    let n = xs.len();
    if min == max {
        // A constant column (a regular scrape's time deltas, a counter's
        // steady rate): nothing to count. Half the cost of sealing such
        // chunks was clearing and scanning the counts below.
        return Center {
            min,
            max,
            mode: min,
            median: min,
        };
    }
    let range = (max as u64).wrapping_sub(min as u64);
    if range < COUNT_RANGE {
        let mut counts = [0u16; COUNT_RANGE as usize];
        for &x in xs {
            let i = (x as u64).wrapping_sub(min as u64) as usize;
            counts[i] = counts[i].saturating_add(1);
        }
        let (mut mode, mut best, mut seen, mut median) = (0usize, 0u16, 0usize, None);
        for (i, &c) in counts.iter().enumerate().take(range as usize + 1) {
            if c > best {
                best = c;
                mode = i;
            }
            seen += usize::from(c);
            if median.is_none() && seen > n / 2 {
                median = Some(i);
            }
        }
        let at = |i: usize| (min as u64).wrapping_add(i as u64) as i64;
        return Center {
            min,
            max,
            mode: at(mode),
            median: at(median.unwrap_or(0)),
        };
    }
    scratch.clear();
    scratch.extend_from_slice(xs);
    let (_, &mut median, _) = scratch.select_nth_unstable(n / 2);
    let majority = xs.iter().filter(|&&x| x == cand).count() * 2 > n;
    Center {
        min,
        max,
        mode: if majority { cand } else { median },
        median,
    }
}

/// Chooses the smallest layout for `xs`. `sorted` is scratch space.
pub(crate) fn plan(xs: &[i64], sorted: &mut Vec<i64>, allow: Layouts) -> Plan {
    let n = xs.len();
    if n == 0 {
        return Plan {
            kind: KIND_PACKED,
            base: 0,
            g: 1,
            widths: [0; 3],
            exceptions: 0,
            bits: 0,
        };
    }
    let Center {
        min,
        max,
        mode,
        median: _,
    } = center(xs, sorted);

    if min == max {
        // Checked before the divisors, which it does not need.
        return Plan {
            kind: KIND_CONST,
            base: min,
            g: 1,
            widths: [0; 3],
            exceptions: 0,
            bits: header_bits(min, 1),
        };
    }
    // Packed, relative to the minimum: differences fit u64 exactly.
    let mut g_min = 0u64;
    let mut g_mode = 0u64;
    if allow.gcd {
        for &x in xs {
            g_min = gcd(g_min, (x as u64).wrapping_sub(min as u64));
            g_mode = gcd(g_mode, x.wrapping_sub(mode).unsigned_abs());
            if g_min == 1 && g_mode == 1 {
                break;
            }
        }
    }
    let g_min = g_min.max(1);
    // Signed layouts divide an i64, so g must fit one.
    let g_mode = if g_mode == 0 || g_mode > i64::MAX as u64 {
        1
    } else {
        g_mode
    };
    let range = (max as u64).wrapping_sub(min as u64) / g_min;
    let w = bit_len(range);
    let mut best_plan = Plan {
        kind: KIND_PACKED,
        base: min,
        g: g_min,
        widths: [w as u8, 0, 0],
        exceptions: 0,
        bits: header_bits(min, g_min) + 8 + n * w as usize,
    };
    if !(allow.tiered || allow.sparse) {
        return best_plan;
    }

    // Histogram of zigzagged quotient widths around the mode.
    let mut hist = [0usize; 65];
    for &x in xs {
        let q = div(x.wrapping_sub(mode), g_mode);
        hist[bit_len(zigzag(q)) as usize] += 1;
    }
    let head = header_bits(mode, g_mode);
    let exceptions = n - hist[0];
    let max_w = (0..=64).rev().find(|&b| hist[b] > 0).unwrap_or(0);

    if allow.sparse {
        let pb = bit_len(n as u64 - 1) as usize;
        let bits = head + 8 + 8 * uvarint_len(exceptions as u64) + exceptions * (pb + max_w);
        if bits < best_plan.bits {
            best_plan = Plan {
                kind: KIND_SPARSE,
                base: mode,
                g: g_mode,
                widths: [max_w as u8, 0, 0],
                exceptions,
                bits,
            };
        }
    }
    if allow.tiered {
        let mut present = [0usize; 64];
        let mut np = 0;
        for (b, &h) in hist.iter().enumerate().skip(1) {
            if h > 0 {
                present[np] = b;
                np += 1;
            }
        }
        let present = &present[..np];
        let w3 = max_w;
        // cum[b] = elements of width 1..=b.
        let mut cum = [0usize; 65];
        for b in 1..=64 {
            cum[b] = cum[b - 1] + hist[b];
        }
        let nonzero = cum[64];
        for (i, &w1) in present.iter().enumerate() {
            for &w2 in &present[i..] {
                let t1 = cum[w1];
                let t2 = cum[w2] - t1;
                let t3 = nonzero - cum[w2];
                let bits = head + 24 + hist[0] + t1 * (2 + w1) + t2 * (3 + w2) + t3 * (3 + w3);
                if bits < best_plan.bits {
                    best_plan = Plan {
                        kind: KIND_TIERED,
                        base: mode,
                        g: g_mode,
                        widths: [w1 as u8, w2 as u8, w3 as u8],
                        exceptions: 0,
                        bits,
                    };
                }
            }
        }
        if present.is_empty() {
            // All equal to the base: one bit each.
            let bits = head + 24 + hist[0];
            if bits < best_plan.bits {
                best_plan = Plan {
                    kind: KIND_TIERED,
                    base: mode,
                    g: g_mode,
                    widths: [0; 3],
                    exceptions: 0,
                    bits,
                };
            }
        }
    }
    best_plan
}

/// Writes `xs` in the layout `p` (from [`plan`] on the same `xs`).
pub(crate) fn write(w: &mut BitWriter, xs: &[i64], p: &Plan) {
    if xs.is_empty() {
        return;
    }
    let start = w.bit_len();
    let has_g = p.g > 1;
    w.write(u64::from(p.kind | if has_g { HAS_G } else { 0 }), 8);
    w.write_ivarint(p.base);
    if has_g {
        w.write_uvarint(p.g);
    }
    match p.kind {
        KIND_PACKED => {
            let width = u32::from(p.widths[0]);
            w.write(u64::from(p.widths[0]), 8);
            for &x in xs {
                let d = (x as u64).wrapping_sub(p.base as u64);
                w.write(if p.g == 1 { d } else { d / p.g }, width);
            }
        }
        KIND_TIERED => {
            for &b in &p.widths {
                w.write(u64::from(b), 8);
            }
            let [w1, w2, w3] = p.widths.map(u32::from);
            for &x in xs {
                let zz = zigzag(div(x.wrapping_sub(p.base), p.g));
                let b = bit_len(zz);
                if zz == 0 {
                    w.write(0, 1);
                } else if b <= w1 {
                    w.write(0b10, 2);
                    w.write(zz, w1);
                } else if b <= w2 {
                    w.write(0b110, 3);
                    w.write(zz, w2);
                } else {
                    w.write(0b111, 3);
                    w.write(zz, w3);
                }
            }
        }
        KIND_CONST => {}
        _ => {
            let we = u32::from(p.widths[0]);
            w.write(u64::from(p.widths[0]), 8);
            w.write_uvarint(p.exceptions as u64);
            let pb = bit_len(xs.len() as u64 - 1);
            for (i, &x) in xs.iter().enumerate() {
                let zz = zigzag(div(x.wrapping_sub(p.base), p.g));
                if zz != 0 {
                    w.write(i as u64, pb);
                    w.write(zz, we);
                }
            }
        }
    }
    debug_assert_eq!(w.bit_len() - start, p.bits, "plan size of {:?}", p);
}

/// Decodes one stream, element by element.
#[derive(Debug, Clone)]
pub(crate) struct StreamReader {
    kind: u8,
    base: i64,
    g: u64,
    widths: [u32; 3],
    /// Sparse: exceptions not yet read, the next one's position and value.
    exc_left: u64,
    next_pos: u64,
    next_val: i64,
    pb: u32,
    i: u64,
    n: u64,
}

pub(crate) fn truncated(what: &'static str, r: &BitReader<'_>) -> Error {
    Error::Truncated {
        what,
        offset: r.offset(),
    }
}

impl StreamReader {
    /// Reads the header of a stream of `n` elements (nothing when `n == 0`).
    pub(crate) fn new(r: &mut BitReader<'_>, n: usize) -> Result<Self, Error> {
        let mut s = Self {
            kind: KIND_PACKED,
            base: 0,
            g: 1,
            widths: [0; 3],
            exc_left: 0,
            next_pos: u64::MAX,
            next_val: 0,
            pb: 0,
            i: 0,
            n: n as u64,
        };
        if n == 0 {
            return Ok(s);
        }
        let at = r.offset();
        let head = r.read(8).map_err(|_| truncated("stream layout byte", r))? as u8;
        if head & !(HAS_G | 0b11) != 0 || head == KIND_CONST | HAS_G {
            return Err(Error::Invalid {
                what: "unknown stream layout",
                offset: at,
            });
        }
        s.kind = head & 0b11;
        s.base = r
            .read_ivarint()
            .map_err(|e| varint_err("stream base", r, e))?;
        if head & HAS_G != 0 {
            let at = r.offset();
            s.g = r
                .read_uvarint()
                .map_err(|e| varint_err("stream divisor", r, e))?;
            if s.g < 2 {
                return Err(Error::Invalid {
                    what: "stream divisor below 2",
                    offset: at,
                });
            }
        }
        let nw = match s.kind {
            KIND_TIERED => 3,
            KIND_CONST => 0,
            _ => 1,
        };
        for k in 0..nw {
            let at = r.offset();
            let b = r.read(8).map_err(|_| truncated("stream width", r))?;
            if b > 64 {
                return Err(Error::Invalid {
                    what: "stream width above 64",
                    offset: at,
                });
            }
            s.widths[k] = b as u32;
        }
        if s.kind == KIND_SPARSE {
            let at = r.offset();
            s.exc_left = r
                .read_uvarint()
                .map_err(|e| varint_err("exception count", r, e))?;
            if s.exc_left > n as u64 {
                return Err(Error::Invalid {
                    what: "more exceptions than elements",
                    offset: at,
                });
            }
            s.pb = bit_len(n as u64 - 1);
            s.load_exception(r)?;
        }
        Ok(s)
    }

    fn load_exception(&mut self, r: &mut BitReader<'_>) -> Result<(), Error> {
        if self.exc_left == 0 {
            self.next_pos = u64::MAX;
            return Ok(());
        }
        self.exc_left -= 1;
        let at = r.offset();
        let pos = r
            .read(self.pb)
            .map_err(|_| truncated("exception position", r))?;
        if pos < self.i || pos >= self.n || (self.next_pos != u64::MAX && pos <= self.next_pos) {
            return Err(Error::Invalid {
                what: "exception positions not increasing",
                offset: at,
            });
        }
        let zz = r
            .read(self.widths[0])
            .map_err(|_| truncated("exception value", r))?;
        self.next_pos = pos;
        self.next_val = unzigzag(zz);
        Ok(())
    }

    /// The next element. The caller reads exactly `n` of them.
    #[inline]
    pub(crate) fn next(&mut self, r: &mut BitReader<'_>) -> Result<i64, Error> {
        let x = match self.kind {
            KIND_PACKED => {
                let q = r
                    .read(self.widths[0])
                    .map_err(|_| truncated("packed element", r))?;
                (self.base as u64).wrapping_add(q.wrapping_mul(self.g)) as i64
            }
            KIND_CONST => self.base,
            KIND_TIERED => {
                let zz = if !r.read_bit().map_err(|_| truncated("tier code", r))? {
                    0
                } else {
                    let width = if !r.read_bit().map_err(|_| truncated("tier code", r))? {
                        self.widths[0]
                    } else if !r.read_bit().map_err(|_| truncated("tier code", r))? {
                        self.widths[1]
                    } else {
                        self.widths[2]
                    };
                    r.read(width).map_err(|_| truncated("tiered element", r))?
                };
                self.base
                    .wrapping_add(unzigzag(zz).wrapping_mul(self.g as i64))
            }
            _ => {
                let q = if self.i == self.next_pos {
                    let q = self.next_val;
                    self.load_exception(r)?;
                    q
                } else {
                    0
                };
                self.base.wrapping_add(q.wrapping_mul(self.g as i64))
            }
        };
        self.i += 1;
        Ok(x)
    }
}

/// The error for a varint that could not be read.
pub(crate) fn varint_err(what: &'static str, r: &BitReader<'_>, e: VarintError) -> Error {
    match e {
        VarintError::Eof => truncated(what, r),
        VarintError::Overflow => Error::Invalid {
            what: "varint longer than 64 bits",
            offset: r.offset(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(xs: &[i64], allow: Layouts) -> Plan {
        let mut sorted = Vec::new();
        let p = plan(xs, &mut sorted, allow);
        let mut w = BitWriter::default();
        w.write(0b101, 3); // start unaligned
        write(&mut w, xs, &p);
        let mut r = BitReader::new(&w.buf);
        assert_eq!(r.read(3), Ok(0b101));
        let mut s = StreamReader::new(&mut r, xs.len()).expect("header");
        for (i, &x) in xs.iter().enumerate() {
            assert_eq!(s.next(&mut r), Ok(x), "element {i} of {xs:?} as {p:?}");
        }
        assert!(r.remaining() < 8, "{} bits left", r.remaining());
        p
    }

    #[test]
    fn layouts_round_trip() {
        let cases: Vec<Vec<i64>> = vec![
            vec![],
            vec![5],
            vec![0; 100],
            vec![15_000; 100],
            (0..100).map(|i| i * 4096).collect(),
            (0..100).map(|i| if i % 37 == 5 { 3 } else { 0 }).collect(),
            (0..100).map(|i| (i * 7919 % 13) - 6).collect(),
            vec![i64::MIN, i64::MAX, 0, -1, 1, i64::MIN, i64::MAX],
            vec![i64::MIN, i64::MIN, i64::MAX],
            vec![i64::MIN, 0, 0, 0],
            vec![i64::MAX, -1, -1],
        ];
        for xs in &cases {
            for allow in [
                Layouts::default(),
                Layouts {
                    tiered: false,
                    sparse: false,
                    gcd: false,
                },
                Layouts {
                    tiered: true,
                    sparse: false,
                    gcd: true,
                },
                Layouts {
                    tiered: false,
                    sparse: true,
                    gcd: true,
                },
            ] {
                round_trip(xs, allow);
            }
        }
    }

    #[test]
    fn picks_the_layout_that_fits() {
        let sparse: Vec<i64> = (0..200).map(|i| if i == 77 { 5 } else { 0 }).collect();
        assert_eq!(round_trip(&sparse, Layouts::default()).kind, KIND_SPARSE);
        let pages: Vec<i64> = (0..100).map(|i| ((i * 7 % 5) * 4096) + (1 << 20)).collect();
        let p = round_trip(&pages, Layouts::default());
        assert!(p.g >= 4096, "{p:?}");
        let laplace: Vec<i64> = (0..200)
            .map(|i| match i % 10 {
                0..=5 => 0,
                6 | 7 => 1,
                8 => -3,
                _ => 200,
            })
            .collect();
        assert_eq!(round_trip(&laplace, Layouts::default()).kind, KIND_TIERED);
    }

    #[test]
    fn center_small_and_wide() {
        let mut s = Vec::new();
        let c = center(&[5, 3, 5, 9, 5, 3], &mut s);
        assert_eq!((c.min, c.max, c.mode, c.median), (3, 9, 5, 5));
        let c = center(&[i64::MIN, 7, 7, i64::MAX, 7], &mut s);
        assert_eq!((c.min, c.max, c.mode, c.median), (i64::MIN, i64::MAX, 7, 7));
        let c = center(&[0, 1000, 2000, 3000, 4000], &mut s);
        assert_eq!((c.mode, c.median), (2000, 2000));
        let c = center(&[i64::MAX], &mut s);
        assert_eq!(
            (c.min, c.max, c.mode, c.median),
            (i64::MAX, i64::MAX, i64::MAX, i64::MAX)
        );
    }

    proptest::proptest! {
        /// `center` against a sort: the same extremes and median, and a
        /// most frequent element when the range is small or one is a
        /// majority.
        #[test]
        fn center_matches_a_sort(
            xs in proptest::collection::vec(
                proptest::prop_oneof![-20..20i64, proptest::prelude::any::<i64>()],
                1..300,
            ),
        ) {
            let mut scratch = Vec::new();
            let c = center(&xs, &mut scratch);
            let mut sorted = xs.clone();
            sorted.sort_unstable();
            proptest::prop_assert_eq!(c.min, sorted[0]);
            proptest::prop_assert_eq!(c.max, sorted[sorted.len() - 1]);
            proptest::prop_assert_eq!(c.median, sorted[xs.len() / 2]);
            let count = |v: i64| xs.iter().filter(|&&x| x == v).count();
            let best = sorted.iter().map(|&v| count(v)).max().unwrap_or(0);
            let small = (c.max as u64).wrapping_sub(c.min as u64) < COUNT_RANGE;
            if small || best * 2 > xs.len() {
                proptest::prop_assert_eq!(count(c.mode), best);
            }
        }
    }

    #[test]
    fn gcd_is_right() {
        assert_eq!(gcd(0, 0), 0);
        assert_eq!(gcd(12, 18), 6);
        assert_eq!(gcd(0, 7), 7);
        assert_eq!(gcd(1 << 63, 1 << 62), 1 << 62);
    }
}
