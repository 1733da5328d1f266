//! Sub-slices of the validated input text without the standard checks.
//!
//! `str::get(a..b)` tests both bounds and that both ends are character
//! boundaries: about ten instructions a slice, and a sample line hands out
//! five to ten slices (name, label set, each label name and value,
//! timestamp). The fast path has already found every end it slices at on
//! an ASCII byte of the text, so the checks cannot fail there; measured by
//! cachegrind on `/federate` output, they were ~100 of ~1,300 instructions
//! a sample. The byte-slice and two- and eight-byte reads below (and
//! `scan`'s unchecked words) serve the same purpose where the parser has
//! proven the range (fourth and fifth rounds, crate README). The crate's
//! other `unsafe` is the SSE2 code in [`super::simd`] and the label-name
//! cache's vector compare in `scan`.

#![allow(unsafe_code)]

/// `s[a..b]`, unchecked in release builds (checked by a debug assertion).
///
/// # Safety
///
/// `a <= b <= s.len()`, and both `a` and `b` are character boundaries of
/// `s`. Every index the parser derives is one: 0, `s.len()`, or a position
/// whose byte, or the byte before it, is ASCII (an ASCII byte is a whole
/// character, so a character starts at it and right after it).
#[inline(always)]
pub(crate) unsafe fn sub(s: &str, a: usize, b: usize) -> &str {
    debug_assert!(
        a <= b && b <= s.len() && s.is_char_boundary(a) && s.is_char_boundary(b),
        "span {a}..{b} of a text of {} bytes",
        s.len()
    );
    // SAFETY: the caller guarantees `get_unchecked`'s contract: both ends in
    // order, in bounds and on character boundaries.
    unsafe { s.get_unchecked(a..b) }
}

/// `b[a..c]`, unchecked in release builds (checked by a debug assertion).
///
/// # Safety
///
/// `a <= c <= b.len()`.
#[inline(always)]
pub(crate) unsafe fn bytes(b: &[u8], a: usize, c: usize) -> &[u8] {
    debug_assert!(a <= c && c <= b.len(), "bytes {a}..{c} of {}", b.len());
    // SAFETY: the caller guarantees both ends in order and in bounds.
    unsafe { b.get_unchecked(a..c) }
}

/// The two bytes `b[i]`, `b[i + 1]` as a little-endian number, unchecked in
/// release builds (checked by a debug assertion).
///
/// # Safety
///
/// `i + 2 <= b.len()`.
#[inline(always)]
pub(crate) unsafe fn u16_at(b: &[u8], i: usize) -> u16 {
    debug_assert!(i + 2 <= b.len(), "bytes {i}..{} of {}", i + 2, b.len());
    // SAFETY: the caller guarantees both bytes are inside `b`;
    // `read_unaligned` has no alignment requirement.
    u16::from_le(unsafe { b.as_ptr().add(i).cast::<u16>().read_unaligned() })
}

/// The eight bytes at `b[i..]` as a little-endian number, unchecked in
/// release builds (checked by a debug assertion).
///
/// # Safety
///
/// `i + 8 <= b.len()`.
#[inline(always)]
pub(crate) unsafe fn u64_at(b: &[u8], i: usize) -> u64 {
    debug_assert!(i + 8 <= b.len(), "bytes {i}..{} of {}", i + 8, b.len());
    // SAFETY: the caller guarantees the eight bytes are inside `b`;
    // `read_unaligned` has no alignment requirement.
    u64::from_le(unsafe { b.as_ptr().add(i).cast::<u64>().read_unaligned() })
}
