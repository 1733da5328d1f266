//! What several integration tests share.
// Each test file is its own crate and uses only part of this.
#![allow(dead_code)]

/// xorshift64*: small, deterministic, good enough to pick offsets, sizes and
/// delays from a printed seed.
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed` (any value, zero included).
    pub fn new(seed: u64) -> Rng {
        let s = seed ^ 0x9E37_79B9_7F4A_7C15;
        Rng(if s == 0 { 0x2545_F491_4F6C_DD1D } else { s })
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-ish in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Uniform-ish in `0..n` (`n > 0`).
    pub fn below_u64(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Every record a reader from `from` returns, as owned pairs.
pub fn read_all(wal: &vigil_wal::Wal, from: u64) -> Vec<(u64, Vec<u8>)> {
    wal.reader(from)
        .unwrap()
        .map(|r| {
            let (l, b) = r.unwrap();
            (l, b.to_vec())
        })
        .collect()
}
