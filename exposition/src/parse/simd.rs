//! Name-character runs sixteen bytes at a time with SSE2, which every
//! x86-64 CPU has (no runtime detection needed); other targets use the
//! table loop in [`super::scan`].
//!
//! A metric name is 20 to 60 bytes; the table loop costs about two and a
//! half instructions a byte, this about one instruction per byte and a
//! half less (cachegrind on `/federate` output, whose `# TYPE` line per
//! 2.5 samples brings a new name each time: see the crate README).

#![allow(unsafe_code)]

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::{
    __m128i, _mm_add_epi8, _mm_cmpeq_epi8, _mm_cmplt_epi8, _mm_loadu_si128, _mm_movemask_epi8,
    _mm_or_si128, _mm_set1_epi8,
};

/// Bytes of `v` in `lo..=hi`, as 0xff lanes: shifted so that `lo` is the
/// smallest signed byte, one signed compare.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn in_range(v: __m128i, lo: u8, hi: u8) -> __m128i {
    let shift = 0x80u8.wrapping_sub(lo) as i8;
    let limit = (0x80u8.wrapping_add(hi - lo + 1)) as i8;
    // SAFETY: SSE2 is part of the x86-64 baseline, so these intrinsics are
    // available on every CPU this code is compiled for; they only compute
    // on registers.
    unsafe {
        let t = _mm_add_epi8(v, _mm_set1_epi8(shift));
        _mm_cmplt_epi8(t, _mm_set1_epi8(limit))
    }
}

/// The index of the first byte at or after `i` that is not `[a-zA-Z0-9_]`
/// (with `colon`, also not `:`), or the last multiple of sixteen bytes
/// from `i` that fits in `b` when all of those are name characters: the
/// caller goes on from there with the byte loop.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn name_run16(b: &[u8], mut i: usize, colon: bool) -> usize {
    while i + 16 <= b.len() {
        // SAFETY: `i + 16 <= b.len()`, so the sixteen bytes read are inside
        // `b`; `loadu` has no alignment requirement; SSE2 is baseline on
        // x86-64 (see `in_range`).
        let v = unsafe { _mm_loadu_si128(b.as_ptr().add(i).cast()) };
        // SAFETY: as above, register-only SSE2.
        let underscore = unsafe { _mm_cmpeq_epi8(v, _mm_set1_epi8(b'_' as i8)) };
        // SAFETY: as above.
        let lower = unsafe { _mm_or_si128(v, _mm_set1_epi8(0x20)) };
        let alpha = in_range(lower, b'a', b'z');
        let digit = in_range(v, b'0', if colon { b':' } else { b'9' });
        // SAFETY: as above.
        let ok = unsafe { _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(alpha, digit), underscore)) };
        let bad = !ok & 0xffff;
        if bad != 0 {
            return i + bad.trailing_zeros() as usize;
        }
        i += 16;
    }
    i
}

/// The first `"`, `\\` or line feed at or after `i` in the 16-byte chunks
/// that fit in `b` (`Ok`), or where those chunks end (`Err`): the caller
/// goes on from there with the word and byte loops. Label values are
/// mostly 5-30 bytes: one or two tests, against two to four words.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn value_end16(b: &[u8], mut i: usize) -> Result<usize, usize> {
    while i + 16 <= b.len() {
        // SAFETY: `i + 16 <= b.len()`, so the sixteen bytes read are inside
        // `b`; `loadu` has no alignment requirement; the rest is
        // register-only SSE2, baseline on x86-64 (see `in_range`).
        let m = unsafe {
            let v = _mm_loadu_si128(b.as_ptr().add(i).cast());
            let q = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
            let e = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
            let n = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\n' as i8));
            _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(q, e), n))
        };
        if m != 0 {
            return Ok(i + m.trailing_zeros() as usize);
        }
        i += 16;
    }
    Err(i)
}

/// The offset of the first `byte` in `b[i..i + 16]`, which must be inside
/// `b` (checked: a panic, never a read outside).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn find16(b: &[u8], i: usize, byte: u8) -> Option<usize> {
    let chunk = &b[i..i + 16];
    // SAFETY: `chunk` is sixteen bytes long, so the load stays inside it;
    // `loadu` has no alignment requirement; the rest is register-only SSE2,
    // baseline on x86-64 (see `in_range`).
    let m = unsafe {
        let v = _mm_loadu_si128(chunk.as_ptr().cast());
        _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(byte as i8)))
    };
    (m != 0).then(|| m.trailing_zeros() as usize)
}

/// [`find16`] without the bounds check (and the overflow test of `i + 16`
/// that came with it), where the caller has proven the range.
///
/// # Safety
///
/// `i + 16 <= b.len()`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) unsafe fn find16_unchecked(b: &[u8], i: usize, byte: u8) -> Option<usize> {
    debug_assert!(i + 16 <= b.len(), "16 bytes at {i} of {}", b.len());
    // SAFETY: the caller guarantees the sixteen bytes are inside `b`;
    // `loadu` has no alignment requirement; the rest is register-only SSE2,
    // baseline on x86-64 (see `in_range`).
    let m = unsafe {
        let v = _mm_loadu_si128(b.as_ptr().add(i).cast());
        _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(byte as i8)))
    };
    (m != 0).then(|| m.trailing_zeros() as usize)
}

/// For the label pair starting at `b[i]`: the `=` bytes of the sixteen
/// bytes at `b[i..]` (bit k for `b[i + k]`), and the `"`, `\\` and line
/// feed bytes of the 32 bytes at `b[i..]`, and the first sixteen bytes (for
/// the name's key). Both loads depend on `i` alone,
/// so the value's end follows from the name's end by shifts, not by a
/// second load that waits for it (the pairs of a line are a chain: each
/// starts after the one before it ends).
///
/// # Safety
///
/// `i + 32 <= b.len()`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) unsafe fn pair_masks32(b: &[u8], i: usize) -> (u32, u32, __m128i) {
    debug_assert!(i + 32 <= b.len(), "32 bytes at {i} of {}", b.len());
    // SAFETY: the caller guarantees the 32 bytes are inside `b`; `loadu` has
    // no alignment requirement; the rest is register-only SSE2, baseline on
    // x86-64 (see `in_range`).
    unsafe {
        let v0 = _mm_loadu_si128(b.as_ptr().add(i).cast());
        let v1 = _mm_loadu_si128(b.as_ptr().add(i + 16).cast());
        let eq = _mm_movemask_epi8(_mm_cmpeq_epi8(v0, _mm_set1_epi8(b'=' as i8))) as u32;
        let q = _mm_set1_epi8(b'"' as i8);
        let e = _mm_set1_epi8(b'\\' as i8);
        let n = _mm_set1_epi8(b'\n' as i8);
        let end = |v: __m128i| {
            _mm_movemask_epi8(_mm_or_si128(
                _mm_or_si128(_mm_cmpeq_epi8(v, q), _mm_cmpeq_epi8(v, e)),
                _mm_cmpeq_epi8(v, n),
            )) as u32
        };
        (eq, end(v0) | end(v1) << 16, v0)
    }
}

/// The sixteen bytes at `b[i..]`.
///
/// # Safety
///
/// `i + 16 <= b.len()`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) unsafe fn load16_unchecked(b: &[u8], i: usize) -> __m128i {
    debug_assert!(i + 16 <= b.len(), "16 bytes at {i} of {}", b.len());
    // SAFETY: the caller guarantees the sixteen bytes are inside `b`;
    // `loadu` has no alignment requirement.
    unsafe { _mm_loadu_si128(b.as_ptr().add(i).cast()) }
}
