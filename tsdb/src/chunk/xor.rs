//! The Gorilla building blocks: XOR-coded floats and delta-of-delta
//! timestamps, and the open-chunk encoding (`0x01`) built from them.
//!
//! The bit codes are those of the Gorilla paper as Prometheus uses them,
//! with one more timestamp bucket (`FORMAT.md`, "Encoding 0x01"). Timestamp arithmetic wraps (mod 2^64) on
//! both sides, so any strictly increasing `i64` sequence, `i64::MIN` to
//! `i64::MAX` included, round-trips exactly.

use super::bits::{BitReader, BitWriter, Eof, zigzag};

/// XOR coder state for floats: the previous value's bits and the previous
/// meaningful-bits window.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct XorState {
    prev: u64,
    lead: u8,
    /// 0xff while no window has been written yet.
    trail: u8,
}

impl XorState {
    /// After the first value, written raw.
    pub(crate) fn new(first: u64) -> Self {
        Self {
            prev: first,
            lead: 0,
            trail: 0xff,
        }
    }

    /// Writes the XOR code of `v` after the previous value.
    #[inline]
    pub(crate) fn write(&mut self, w: &mut BitWriter, v: u64) {
        let x = v ^ self.prev;
        self.prev = v;
        if x == 0 {
            w.write(0, 1);
            return;
        }
        let lead = (x.leading_zeros() as u8).min(31);
        let trail = x.trailing_zeros() as u8;
        if self.trail != 0xff && lead >= self.lead && trail >= self.trail {
            // '10': the value fits the previous window.
            let sig = 64 - u32::from(self.lead) - u32::from(self.trail);
            w.write(0b10, 2);
            w.write(x >> self.trail, sig);
        } else {
            // '11' + 5 bits leading zeros + 6 bits width (64 written as 0).
            let sig = 64 - u32::from(lead) - u32::from(trail);
            w.write(0b11, 2);
            w.write(u64::from(lead), 5);
            w.write(u64::from(sig & 63), 6);
            w.write(x >> trail, sig);
            self.lead = lead;
            self.trail = trail;
        }
    }

    /// Reads the next value's bits.
    #[inline]
    pub(crate) fn read(&mut self, r: &mut BitReader<'_>) -> Result<u64, XorError> {
        if !r.read_bit()? {
            return Ok(self.prev);
        }
        if r.read_bit()? {
            let lead = r.read(5)? as u8;
            let mut sig = r.read(6)? as u32;
            if sig == 0 {
                sig = 64;
            }
            if u32::from(lead) + sig > 64 {
                return Err(XorError::BadWindow);
            }
            self.lead = lead;
            self.trail = (64 - u32::from(lead) - sig) as u8;
        } else if self.trail == 0xff {
            return Err(XorError::NoWindow);
        }
        let sig = 64 - u32::from(self.lead) - u32::from(self.trail);
        let bits = r.read(sig)?;
        // sig >= 1 and trail <= 63, so the shift is in range.
        self.prev ^= bits << self.trail;
        Ok(self.prev)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum XorError {
    Eof,
    /// Leading zeros plus width exceed 64.
    BadWindow,
    /// A '10' code before any window was set.
    NoWindow,
}

impl From<Eof> for XorError {
    fn from(_: Eof) -> Self {
        XorError::Eof
    }
}

/// Writes a delta-of-delta in the Gorilla prefix code. The buckets are
/// Prometheus's (14, 17, 20 bits and 64) with one of 7 bits in front: a
/// scrape a few milliseconds off its interval costs 9 bits, not 16.
#[inline]
pub(crate) fn write_dod(w: &mut BitWriter, dod: i64) {
    // Two's-complement ranges of 7, 14 and 20 bits.
    if dod == 0 {
        w.write(0, 1);
    } else if (-(1 << 6)..(1 << 6)).contains(&dod) {
        w.write(0b10, 2);
        w.write(dod as u64, 7);
    } else if (-(1 << 13)..(1 << 13)).contains(&dod) {
        w.write(0b110, 3);
        w.write(dod as u64, 14);
    } else if (-(1 << 19)..(1 << 19)).contains(&dod) {
        w.write(0b1110, 4);
        w.write(dod as u64, 20);
    } else {
        w.write(0b1111, 4);
        w.write(dod as u64, 64);
    }
}

/// Reads a delta-of-delta written by [`write_dod`].
#[inline]
pub(crate) fn read_dod(r: &mut BitReader<'_>) -> Result<i64, Eof> {
    let mut prefix = 0;
    while prefix < 4 && r.read_bit()? {
        prefix += 1;
    }
    let width = match prefix {
        0 => return Ok(0),
        1 => 7,
        2 => 14,
        3 => 20,
        _ => 64,
    };
    let raw = r.read(width)?;
    // Sign-extend from `width` bits.
    let shift = 64 - width;
    Ok(((raw << shift) as i64) >> shift)
}

/// Byte offset of the bit stream in an encoding-`0x01` chunk: encoding
/// byte, then the sample count as a big-endian u16.
pub(crate) const XOR_HEADER: usize = 3;

/// The most bytes one sample can add: a 64-bit timestamp delta-of-delta
/// with its prefix (68 bits, or a 10-byte varint for the first two) and a
/// value with a new window (77 bits).
const MAX_SAMPLE_BYTES: usize = 20;

/// How much an open chunk's buffer grows at a time.
const GROW: usize = 48;

/// Appender state of an open (encoding `0x01`) chunk. A head keeps one per
/// series, so the bit writer's and the XOR coder's fields are kept here
/// flat: nested, each struct's padding made it 72 bytes, flat it is 56.
#[derive(Debug, Clone)]
pub(crate) struct XorAppender {
    pub(crate) buf: Vec<u8>,
    t: i64,
    delta: u64,
    /// [`XorState`]'s fields.
    prev: u64,
    pub(crate) count: u16,
    lead: u8,
    trail: u8,
    /// Unused low bits of the last byte of `buf` (see `BitWriter`).
    free: u8,
}

impl XorAppender {
    pub(crate) fn new() -> Self {
        // A head holds one open chunk per series: start small and grow in
        // small exact steps (see `append`), not by doubling, which would
        // leave a third of every open chunk unused on average.
        let mut buf = Vec::with_capacity(GROW);
        buf.extend_from_slice(&[super::ENC_XOR, 0, 0]);
        Self {
            buf,
            t: 0,
            delta: 0,
            prev: 0,
            count: 0,
            lead: 0,
            trail: 0,
            free: 0,
        }
    }

    pub(crate) fn last_t(&self) -> Option<i64> {
        (self.count > 0).then_some(self.t)
    }

    /// Empties the chunk but keeps its buffer's capacity (see
    /// `ChunkWriter::clear`).
    pub(crate) fn clear(&mut self) {
        self.buf.clear();
        self.buf.extend_from_slice(&[super::ENC_XOR, 0, 0]);
        self.t = 0;
        self.delta = 0;
        self.prev = 0;
        self.count = 0;
        self.lead = 0;
        self.trail = 0;
        self.free = 0;
    }

    /// The first sample's timestamp, read back from the stream (the first
    /// thing in it, a zigzag varint right after the header), so that it
    /// costs no field.
    pub(crate) fn first_t(&self) -> Option<i64> {
        if self.count == 0 {
            return None;
        }
        let mut v = 0u64;
        for (i, &b) in self.buf.get(XOR_HEADER..)?.iter().take(10).enumerate() {
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Some(super::bits::unzigzag(v));
            }
        }
        None
    }

    /// Appends; the caller has checked order and capacity.
    pub(crate) fn append(&mut self, t: i64, v: f64) {
        let bits = v.to_bits();
        if self.buf.capacity() - self.buf.len() < MAX_SAMPLE_BYTES {
            self.buf.reserve_exact(GROW);
        }
        let mut w = BitWriter::resume(std::mem::take(&mut self.buf), u32::from(self.free));
        let mut vals = XorState {
            prev: self.prev,
            lead: self.lead,
            trail: self.trail,
        };
        match self.count {
            0 => {
                w.write_uvarint(zigzag(t));
                w.write(bits, 64);
                vals = XorState::new(bits);
            }
            1 => {
                self.delta = (t as u64).wrapping_sub(self.t as u64);
                w.write_uvarint(self.delta);
                vals.write(&mut w, bits);
            }
            _ => {
                let delta = (t as u64).wrapping_sub(self.t as u64);
                write_dod(&mut w, delta.wrapping_sub(self.delta) as i64);
                self.delta = delta;
                vals.write(&mut w, bits);
            }
        }
        let (buf, free) = w.into_parts();
        self.buf = buf;
        // Always below 8.
        self.free = free as u8;
        (self.prev, self.lead, self.trail) = (vals.prev, vals.lead, vals.trail);
        self.t = t;
        self.count += 1;
        let [hi, lo] = self.count.to_be_bytes();
        self.buf[1] = hi;
        self.buf[2] = lo;
    }
}
