//! MSB-first bit I/O over byte buffers.
//!
//! INVARIANT (writer): `free` is the number of unused low bits of the last
//! byte of `buf`; `free == 0` when the last byte is full or `buf` is empty.
//! The reader never reads past `end` (a bit position) and never panics:
//! every read past the end returns [`Eof`].

/// Reading past the end of the bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Eof;

/// Appends bits to a byte vector, most significant bit first.
#[derive(Debug, Clone, Default)]
pub(crate) struct BitWriter {
    pub(crate) buf: Vec<u8>,
    free: u32,
}

impl BitWriter {
    /// Total bits written.
    pub(crate) fn bit_len(&self) -> usize {
        self.buf.len() * 8 - self.free as usize
    }

    /// Continues writing after `buf`, whose last byte has `free` unused
    /// low bits (what [`into_parts`](Self::into_parts) returned).
    pub(crate) fn resume(buf: Vec<u8>, free: u32) -> Self {
        debug_assert!(free < 8 && (free == 0 || !buf.is_empty()));
        Self { buf, free }
    }

    /// The bytes and the unused low bits of the last one.
    pub(crate) fn into_parts(self) -> (Vec<u8>, u32) {
        (self.buf, self.free)
    }

    /// Writes the low `n` bits of `v` (`n <= 64`).
    #[inline]
    pub(crate) fn write(&mut self, v: u64, n: u32) {
        debug_assert!(n <= 64);
        if n == 0 {
            return;
        }
        let mut n = n;
        // Fill the partial last byte first.
        if self.free > 0 {
            let take = n.min(self.free);
            n -= take;
            let bits = ((v >> n) as u8) & low_mask8(take);
            if let Some(last) = self.buf.last_mut() {
                *last |= bits << (self.free - take);
            }
            self.free -= take;
            if n == 0 {
                return;
            }
        }
        // The rest, left-aligned in a word, as whole bytes in one copy
        // (a push per byte was the open chunk's hottest loop).
        let word = (v << (64 - n)).to_be_bytes();
        let bytes = n.div_ceil(8);
        self.buf.extend_from_slice(&word[..bytes as usize]);
        self.free = bytes * 8 - n;
    }

    /// Pads with zero bits to the next byte boundary.
    pub(crate) fn align(&mut self) {
        self.free = 0;
    }

    /// Writes `v` as LEB128 (7 bits a byte, low group first).
    pub(crate) fn write_uvarint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.write((v & 0x7f) | 0x80, 8);
            v >>= 7;
        }
        self.write(v, 8);
    }

    pub(crate) fn write_ivarint(&mut self, v: i64) {
        self.write_uvarint(zigzag(v));
    }
}

#[inline]
fn low_mask8(n: u32) -> u8 {
    ((1u16 << n) - 1) as u8
}

/// Reads bits written by [`BitWriter`].
#[derive(Debug, Clone)]
pub(crate) struct BitReader<'a> {
    data: &'a [u8],
    /// Next bit to read. INVARIANT: `pos <= end <= data.len() * 8`.
    pos: usize,
    end: usize,
}

impl<'a> BitReader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Self {
            data,
            pos: 0,
            end: data.len() * 8,
        }
    }

    /// A reader over bits `[start, end)` of `data` (clamped to the data).
    pub(crate) fn with_range(data: &'a [u8], start: usize, end: usize) -> Self {
        let end = end.min(data.len() * 8);
        Self {
            data,
            pos: start.min(end),
            end,
        }
    }

    /// Bit position of the next read.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// Byte offset of the next read (for error messages).
    pub(crate) fn offset(&self) -> usize {
        self.pos / 8
    }

    pub(crate) fn remaining(&self) -> usize {
        self.end - self.pos
    }

    /// Reads `n <= 64` bits.
    #[inline]
    pub(crate) fn read(&mut self, n: u32) -> Result<u64, Eof> {
        debug_assert!(n <= 64);
        if n == 0 {
            return Ok(0);
        }
        if self.end - self.pos < n as usize {
            return Err(Eof);
        }
        let byte = self.pos / 8;
        let off = (self.pos % 8) as u32;
        // Fast path: one unaligned big-endian word holds all the bits.
        if n + off <= 64 {
            if let Some(w) = self.data.get(byte..byte + 8) {
                let mut word = [0u8; 8];
                word.copy_from_slice(w);
                let word = u64::from_be_bytes(word);
                self.pos += n as usize;
                return Ok((word << off) >> (64 - n));
            }
        }
        // Slow path near the end of the data, or for wide unaligned reads.
        let mut v: u64 = 0;
        let mut left = n;
        while left > 0 {
            let byte = self.pos / 8;
            let off = (self.pos % 8) as u32;
            let avail = 8 - off;
            let take = left.min(avail);
            let b = u64::from(self.data.get(byte).copied().ok_or(Eof)?);
            let bits = (b >> (avail - take)) & ((1u64 << take) - 1);
            v = if take == 64 { bits } else { (v << take) | bits };
            left -= take;
            self.pos += take as usize;
        }
        Ok(v)
    }

    #[inline]
    pub(crate) fn read_bit(&mut self) -> Result<bool, Eof> {
        Ok(self.read(1)? == 1)
    }

    pub(crate) fn read_uvarint(&mut self) -> Result<u64, VarintError> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let b = self.read(8).map_err(|_| VarintError::Eof)?;
            let group = b & 0x7f;
            if i == 9 && group > 1 {
                return Err(VarintError::Overflow);
            }
            v |= group << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(VarintError::Overflow)
    }

    pub(crate) fn read_ivarint(&mut self) -> Result<i64, VarintError> {
        self.read_uvarint().map(unzigzag)
    }
}

/// A varint that ends too early or does not fit 64 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VarintError {
    Eof,
    Overflow,
}

#[inline]
pub(crate) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[inline]
pub(crate) fn unzigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

/// Bits needed to write `v` (0 for 0).
#[inline]
pub(crate) fn bit_len(v: u64) -> u32 {
    64 - v.leading_zeros()
}

/// Bytes of `v` as a LEB128 varint.
#[inline]
pub(crate) fn uvarint_len(v: u64) -> usize {
    (bit_len(v).max(1) as usize).div_ceil(7)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_round_trip_at_every_alignment() {
        let widths = [1u32, 3, 7, 8, 9, 13, 31, 32, 33, 57, 63, 64, 0, 2, 64, 5];
        let mut w = BitWriter::default();
        let mut want = Vec::new();
        for (i, &n) in widths.iter().cycle().take(200).enumerate() {
            let v = (0x9e37_79b9_7f4a_7c15u64.wrapping_mul(i as u64 + 1))
                & if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
            w.write(v, n);
            want.push((v, n));
        }
        let bits = w.bit_len();
        let mut r = BitReader::with_range(&w.buf, 0, bits);
        for (v, n) in want {
            assert_eq!(r.read(n), Ok(v), "width {n}");
        }
        assert_eq!(r.read(1), Err(Eof));
    }

    #[test]
    fn varints_round_trip_and_reject_overflow() {
        let mut w = BitWriter::default();
        w.write(1, 3); // unaligned on purpose
        for v in [
            0i64,
            1,
            -1,
            63,
            -64,
            64,
            i64::MAX,
            i64::MIN,
            1_700_000_000_000,
        ] {
            w.write_ivarint(v);
        }
        let mut r = BitReader::new(&w.buf);
        assert_eq!(r.read(3), Ok(1));
        for v in [
            0i64,
            1,
            -1,
            63,
            -64,
            64,
            i64::MAX,
            i64::MIN,
            1_700_000_000_000,
        ] {
            assert_eq!(r.read_ivarint(), Ok(v));
        }
        let bad = [0xffu8; 11];
        assert_eq!(
            BitReader::new(&bad).read_uvarint(),
            Err(VarintError::Overflow)
        );
        assert_eq!(
            BitReader::new(&[0x80]).read_uvarint(),
            Err(VarintError::Eof)
        );
        assert_eq!(uvarint_len(0), 1);
        assert_eq!(uvarint_len(127), 1);
        assert_eq!(uvarint_len(128), 2);
        assert_eq!(uvarint_len(u64::MAX), 10);
    }

    #[test]
    fn zigzag_extremes() {
        for v in [0, 1, -1, i64::MAX, i64::MIN] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(1), 2);
    }
}
