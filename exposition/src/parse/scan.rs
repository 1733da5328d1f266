//! Byte scanning on the parse hot path: eight bytes at a time in a `u64`
//! (SWAR), which beats both a byte loop and a SIMD call's setup on the short
//! names and label values that scrapes are made of.

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// High bit set in every byte of `w` equal to `b`. Borrows can set bits only
/// above a true match, so the lowest set bit is always exact.
#[inline(always)]
fn eq_mask(w: u64, b: u8) -> u64 {
    let x = w ^ (LO * u64::from(b));
    x.wrapping_sub(LO) & !x & HI
}

/// High bit set in every byte of `w` below `n` (`n` at most 0x80), exact
/// for the lowest one as in [`eq_mask`].
#[inline(always)]
fn lt_mask(w: u64, n: u8) -> u64 {
    w.wrapping_sub(LO * u64::from(n)) & !w & HI
}

/// `word(b, i)` without the bounds check (and the overflow test of
/// `i + 8` that came with it: five instructions a read), where the caller
/// has proven the range.
///
/// # Safety
///
/// `i + 8 <= b.len()`.
#[inline(always)]
#[allow(unsafe_code)]
unsafe fn word_unchecked(b: &[u8], i: usize) -> u64 {
    debug_assert!(i + 8 <= b.len(), "word at {i} of {}", b.len());
    // SAFETY: the caller guarantees the eight bytes are inside `b`;
    // `read_unaligned` has no alignment requirement.
    u64::from_le(unsafe { b.as_ptr().add(i).cast::<u64>().read_unaligned() })
}

#[inline(always)]
fn word(b: &[u8], i: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[i..i + 8]);
    u64::from_le_bytes(a)
}

/// Index of the first `"` or `\` at or after `from`.
#[inline]
pub(crate) fn find_quote_or_backslash(b: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    // Short values: words in registers. Long ones: the SIMD search.
    let swar_end = b.len().min(from + 64);
    while i + 8 <= swar_end {
        let w = word(b, i);
        let m = eq_mask(w, b'"') | eq_mask(w, b'\\');
        if m != 0 {
            return Some(i + (m.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    if i + 8 > b.len() {
        while i < b.len() {
            if b[i] == b'"' || b[i] == b'\\' {
                return Some(i);
            }
            i += 1;
        }
        return None;
    }
    memchr::memchr2(b'"', b'\\', &b[i..]).map(|k| i + k)
}

/// Index of the first `"`, `\` or line feed at or after `from`: the end of
/// a label value for the parser's fast path, which reads ahead of the line
/// split and must not let a value run into the next line.
#[inline]
pub(crate) fn find_value_end(b: &[u8], from: usize) -> Option<usize> {
    // Sixteen bytes a test with SSE2 (three compares, one mask), then the
    // words and bytes of the tail.
    #[cfg(target_arch = "x86_64")]
    let from = match super::simd::value_end16(b, from) {
        Ok(k) => return Some(k),
        Err(i) => i,
    };
    let mut i = from;
    let swar_end = b.len().min(from + 64);
    while i + 8 <= swar_end {
        // One test for all bytes below '#' ('"', line feed, and the blanks
        // and controls, which a value may hold) and one for '\\': two masks
        // instead of three.
        let w = word(b, i);
        let m = lt_mask(w, b'"' + 1) | eq_mask(w, b'\\');
        if m != 0 {
            let k = i + (m.trailing_zeros() / 8) as usize;
            if matches!(b[k], b'"' | b'\\' | b'\n') {
                return Some(k);
            }
            i = k + 1;
            continue;
        }
        i += 8;
    }
    if i + 8 > b.len() {
        while i < b.len() {
            if matches!(b[i], b'"' | b'\\' | b'\n') {
                return Some(i);
            }
            i += 1;
        }
        return None;
    }
    memchr::memchr3(b'"', b'\\', b'\n', &b[i..]).map(|k| i + k)
}

/// Index of the first `byte` at or after `from`, for the short runs (label
/// names) where a SIMD call's setup would cost more than the search.
#[inline]
pub(crate) fn find_byte(b: &[u8], from: usize, byte: u8) -> Option<usize> {
    let mut i = from;
    // The first sixteen bytes with one SSE2 compare (a type word and its
    // line feed, a label name and its '=').
    #[cfg(target_arch = "x86_64")]
    if i + 16 <= b.len() {
        if let Some(k) = super::simd::find16(b, i, byte) {
            return Some(i + k);
        }
        i += 16;
    }
    while i + 8 <= b.len() {
        let m = eq_mask(word(b, i), byte);
        if m != 0 {
            return Some(i + (m.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    while i < b.len() {
        if b[i] == byte {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// Whether `b[i..]` starts with `p`, sixteen bytes at a time (no library
/// call for the short names this compares).
#[inline(always)]
#[allow(unsafe_code)]
pub(crate) fn starts_with_at(b: &[u8], i: usize, p: &[u8]) -> bool {
    let n = p.len();
    // `b.get(i..i + n)` tested `i + n` for overflow besides the bounds.
    if n > b.len() || i > b.len() - n {
        return false;
    }
    // SAFETY: `i + n <= b.len()`, tested just before without overflow.
    let s = unsafe { b.get_unchecked(i..i + n) };
    if n < 8 {
        return s == p;
    }
    // Whole words, the last one overlapping the one before it: no tail
    // loop and no library call. A 16-byte compare is one SSE2 compare and
    // mask (metric names are 20-60 bytes: two to four of them). `s` and `p`
    // are both `n` bytes long; the reads are unchecked (the compiler kept
    // a bounds and overflow test per read).
    if n <= 16 {
        // SAFETY: `8 <= n`: the words at 0 and `n - 8` are inside both.
        return unsafe {
            word_unchecked(s, 0) == word_unchecked(p, 0)
                && word_unchecked(s, n - 8) == word_unchecked(p, n - 8)
        };
    }
    let mut k = 0;
    while k + 16 < n {
        // SAFETY: `k + 16 < n`: inside both.
        if unsafe { word16_unchecked(s, k) != word16_unchecked(p, k) } {
            return false;
        }
        k += 16;
    }
    // SAFETY: `16 < n`: the last sixteen bytes of both.
    unsafe { word16_unchecked(s, n - 16) == word16_unchecked(p, n - 16) }
}

/// Sixteen bytes at `b[i..]` as one number, unchecked.
///
/// # Safety
///
/// `i + 16 <= b.len()`.
#[inline(always)]
#[allow(unsafe_code)]
unsafe fn word16_unchecked(b: &[u8], i: usize) -> u128 {
    debug_assert!(i + 16 <= b.len(), "16 bytes at {i} of {}", b.len());
    // SAFETY: the caller guarantees the sixteen bytes are inside `b`;
    // `read_unaligned` has no alignment requirement.
    u128::from_le(unsafe { b.as_ptr().add(i).cast::<u128>().read_unaligned() })
}

static LABEL: [bool; 256] = table(false);
static METRIC: [bool; 256] = table(true);

const fn table(colon: bool) -> [bool; 256] {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric() || b == b'_' || (colon && b == b':');
        c += 1;
    }
    t
}

#[inline(always)]
fn run(b: &[u8], mut i: usize, colon: bool) -> usize {
    let t = if colon { &METRIC } else { &LABEL };
    #[cfg(target_arch = "x86_64")]
    {
        i = super::simd::name_run16(b, i, colon);
        if i + 16 <= b.len() {
            return i;
        }
    }
    // Eight lookups without a branch between them, then one test; then a
    // byte loop. (Measured: cheaper than gathering the eight lookups into a
    // word to find the end without the loop, and than a SWAR class test.)
    while i + 8 <= b.len() {
        let all = t[usize::from(b[i])]
            & t[usize::from(b[i + 1])]
            & t[usize::from(b[i + 2])]
            & t[usize::from(b[i + 3])]
            & t[usize::from(b[i + 4])]
            & t[usize::from(b[i + 5])]
            & t[usize::from(b[i + 6])]
            & t[usize::from(b[i + 7])];
        if !all {
            break;
        }
        i += 8;
    }
    while i < b.len() && t[usize::from(b[i])] {
        i += 1;
    }
    i
}

/// Length of a classic label name at `i` (0 if none).
#[inline]
pub(crate) fn label_name_len(b: &[u8], i: usize) -> usize {
    match b.get(i) {
        Some(&c) if c.is_ascii_alphabetic() || c == b'_' => {}
        _ => return 0,
    }
    1 + label_chars(b, i + 1)
}

/// Label names of up to 15 bytes that have passed the name check,
/// remembered by their bytes. A scrape repeats a handful of names
/// (`instance`, `job`, a family's own) on every line; finding the `=` after
/// the name sixteen bytes at a time and looking the bytes up here costs less
/// than checking each character again.
pub(crate) struct NameCache {
    /// Each a name of `n < 16` bytes and its `=` as one 128-bit key: the
    /// sixteen bytes at the name's start with those past the `=` zeroed.
    /// A name holds no `=`, so the key gives the length (and `a\0=` is not
    /// `a=`). Built the same way for every length, with a mask from a table:
    /// no branch on the length (which names of under and over eight bytes
    /// in turn made hard to predict). Zero, which no key is, marks an empty
    /// slot.
    slots: [u128; NAME_SLOTS],
}

/// Direct-mapped; a collision only costs a check.
const NAME_SLOTS: usize = 64;

/// `KEEP[n]`: ones in the low `n + 1` bytes (a name of `n` and its `=`).
const KEEP: [u128; 16] = keep_masks();

const fn keep_masks() -> [u128; 16] {
    let mut t = [0u128; 16];
    let mut n = 0;
    while n < 16 {
        t[n] = if n == 15 {
            u128::MAX
        } else {
            (1u128 << (8 * (n + 1))) - 1
        };
        n += 1;
    }
    t
}

/// The slot of a name of `n` bytes whose first three bytes at the name's
/// start, unmasked, are `lo3`. They are the name's (and its `="` for the
/// shortest), so the slot is a function of the name; taken before the
/// masking, the hash does not wait for the mask's load (the lookup is on
/// every pair). The whole key is compared, so two names in one slot only
/// cost checks.
#[inline(always)]
fn slot_of(lo3: u64, n: usize) -> usize {
    let lo = lo3;
    let h = (lo ^ n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (h >> 58) as usize % NAME_SLOTS
}

impl NameCache {
    pub(crate) fn new() -> NameCache {
        NameCache {
            slots: [0; NAME_SLOTS],
        }
    }

    /// The same as [`label_name_len`] (`None` for 0): the length of the
    /// classic label name at `b[i..]`; the name is inside `b` (the parser's
    /// unchecked reads after it rely on `i + n <= b.len()`).
    #[inline(always)]
    #[allow(unsafe_code)]
    pub(crate) fn name_len(&mut self, b: &[u8], i: usize) -> Option<usize> {
        let checked = |n: usize| (n > 0).then_some(n);
        if i + 16 > b.len() {
            return checked(label_name_len(b, i));
        }
        // The name's end, if it is in the plain form `name=`: the first '='.
        // One SSE2 compare finds it in the sixteen bytes.
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `i + 16 <= b.len()` (just tested; `i + 16` cannot wrap, a
        // slice is at most `isize::MAX` bytes).
        let eq = unsafe { super::simd::find16_unchecked(b, i, b'=') };
        #[cfg(not(target_arch = "x86_64"))]
        let eq = {
            // SAFETY: as above.
            let (w0, w1) = unsafe { (word_unchecked(b, i), word_unchecked(b, i + 8)) };
            let m = eq_mask(w0, b'=');
            if m != 0 {
                Some((m.trailing_zeros() / 8) as usize)
            } else {
                let m = eq_mask(w1, b'=');
                (m != 0).then(|| 8 + (m.trailing_zeros() / 8) as usize)
            }
        };
        let Some(n) = eq else {
            return checked(label_name_len(b, i));
        };
        // SAFETY: `i + 16 <= b.len()` and `n < 16`, as `is_name16` needs.
        if unsafe { self.is_name16(b, i, n) } {
            return Some(n);
        }
        // Not a name up to the '=': the name check's own length.
        checked(label_name_len(b, i))
    }

    /// Whether the `n` bytes at `b[i..]`, which the first `=` in the
    /// sixteen bytes at `b[i..]` follows, are a classic label name: a
    /// lookup, and the character check on a miss (remembering the name when
    /// it passes).
    ///
    /// # Safety
    ///
    /// `i + 16 <= b.len()` and `n < 16`.
    #[inline(always)]
    #[allow(unsafe_code)]
    pub(crate) unsafe fn is_name16(&mut self, b: &[u8], i: usize, n: usize) -> bool {
        debug_assert!(
            i + 16 <= b.len() && n < 16,
            "name of {n} at {i} of {}",
            b.len()
        );
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: `i + 16 <= b.len()` (the caller's contract).
            let v = unsafe { super::simd::load16_unchecked(b, i) };
            // SAFETY: as above, and `n < 16`.
            unsafe { self.is_name16_v(v, b, i, n) }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            // SAFETY: `i + 16 <= b.len()` (the caller's contract).
            let v = unsafe { word_unchecked(b, i) } as u128
                | (unsafe { word_unchecked(b, i + 8) } as u128) << 64;
            let key = v & KEEP[n & 15];
            let slot = &mut self.slots[slot_of(v as u64 & 0xff_ffff, n)];
            if *slot == key {
                return true;
            }
            Self::fill(slot, key, b, i, n)
        }
    }

    /// [`NameCache::is_name16`] with the sixteen bytes at `b[i..]` already
    /// loaded in `v` (the parser's pair masks loaded them): the key is
    /// masked and compared in the vector register.
    ///
    /// # Safety
    ///
    /// `v` holds the sixteen bytes at `b[i..]`, `i + 16 <= b.len()` and
    /// `n < 16`.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    #[allow(unsafe_code)]
    pub(crate) unsafe fn is_name16_v(
        &mut self,
        v: std::arch::x86_64::__m128i,
        b: &[u8],
        i: usize,
        n: usize,
    ) -> bool {
        use std::arch::x86_64::{
            _mm_and_si128, _mm_cmpeq_epi8, _mm_cvtsi128_si64, _mm_loadu_si128, _mm_movemask_epi8,
        };
        debug_assert!(
            i + 16 <= b.len() && n < 16,
            "name of {n} at {i} of {}",
            b.len()
        );
        // `n < 16`: an index into the table.
        let keep: *const u128 = &KEEP[n & 15];
        // SAFETY: `keep` and the slot are sixteen-byte values; `loadu` has
        // no alignment requirement; the rest is register-only SSE2,
        // baseline on x86-64.
        let (key, lo) = unsafe {
            let key = _mm_and_si128(v, _mm_loadu_si128(keep.cast()));
            (key, _mm_cvtsi128_si64(v) as u64 & 0xff_ffff)
        };
        let slot = &mut self.slots[slot_of(lo, n)];
        let at: *const u128 = slot;
        // SAFETY: as above.
        let same = unsafe { _mm_movemask_epi8(_mm_cmpeq_epi8(key, _mm_loadu_si128(at.cast()))) };
        if same == 0xffff {
            return true;
        }
        // SAFETY: a vector is sixteen bytes, as a `u128`.
        let key: u128 = unsafe { std::mem::transmute(key) };
        Self::fill(slot, key, b, i, n)
    }

    /// A name not in its slot: checked, and remembered when it passes.
    #[inline(always)]
    fn fill(slot: &mut u128, key: u128, b: &[u8], i: usize, n: usize) -> bool {
        let ok = n > 0 && label_name_len(b, i) == n;
        if ok {
            *slot = key;
        }
        ok
    }
}

/// Length of the run of `[a-zA-Z0-9_]` at `i`.
#[inline]
pub(crate) fn label_chars(b: &[u8], i: usize) -> usize {
    run(b, i, false).saturating_sub(i)
}

/// Length of the run of `[a-zA-Z0-9_:]` at `i`.
#[inline]
pub(crate) fn metric_chars(b: &[u8], i: usize) -> usize {
    run(b, i, true).saturating_sub(i)
}

/// The run of ASCII digits at `b[i..]`, appended to the digits of `acc`:
/// the value and the run's length. The value is exact when it has at most
/// 19 digits in all (it wraps beyond; callers check the length). A byte loop: on this machine class it beat
/// an eight-digit SWAR conversion, whose multiplications form a long
/// dependency chain, on the short values and 13-digit timestamps of scrapes.
#[inline(always)]
pub(crate) fn digit_run(b: &[u8], i: usize, acc: u64) -> (u64, usize) {
    let mut j = i;
    let mut v = acc;
    while let Some(&c) = b.get(j) {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        v = v.wrapping_mul(10).wrapping_add(u64::from(d));
        j += 1;
    }
    (v, j - i)
}

/// Whether `c` is a metric-name character.
#[inline]
pub(crate) fn is_metric_char(c: u8) -> bool {
    METRIC[usize::from(c)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_quotes_and_backslashes_at_every_offset() {
        for len in 0..150 {
            for at in 0..=len {
                let mut v = vec![b'a'; len];
                if at < len {
                    v[at] = if at % 2 == 0 { b'"' } else { b'\\' };
                }
                let want = (at < len).then_some(at);
                assert_eq!(find_quote_or_backslash(&v, 0), want, "len {len} at {at}");
                // A byte just below '"' must not be taken for it.
                if at < len {
                    v[at] = b'"' - 1;
                    assert_eq!(find_quote_or_backslash(&v, 0), None);
                }
            }
        }
        assert_eq!(find_quote_or_backslash(b"ab\"c", 3), None);
    }

    #[test]
    fn finds_value_ends_at_every_offset() {
        for len in 0..150 {
            for at in 0..=len {
                for c in [b'"', b'\\', b'\n'] {
                    let mut v = vec![b'a'; len];
                    if at < len {
                        v[at] = c;
                    }
                    let want = (at < len).then_some(at);
                    assert_eq!(find_value_end(&v, 0), want, "len {len} at {at}");
                }
            }
        }
    }

    proptest::proptest! {
        /// The SIMD, word and byte steps of `find_byte` agree with a byte
        /// loop on any bytes, from any start.
        #[test]
        fn found_bytes_agree_with_a_byte_loop(
            v in proptest::collection::vec(proptest::prop_oneof![
                4 => proptest::sample::select(b"ab_09<>".to_vec()),
                1 => proptest::sample::select(b"=\n".to_vec()),
                1 => proptest::num::u8::ANY,
            ], 0..60),
            from in 0usize..60,
            byte in proptest::sample::select(b"=\n".to_vec()),
        ) {
            let from = from.min(v.len());
            let want = v[from..].iter().position(|&c| c == byte).map(|k| from + k);
            proptest::prop_assert_eq!(find_byte(&v, from, byte), want);
        }

        /// The SIMD and word scans agree with a byte loop on any bytes.
        #[test]
        fn value_ends_agree_with_a_byte_loop(
            v in proptest::collection::vec(proptest::prop_oneof![
                4 => proptest::sample::select(b"ab \t!#0=,}".to_vec()),
                1 => proptest::sample::select(b"\"\\\n".to_vec()),
                1 => proptest::num::u8::ANY,
            ], 0..100),
            from in 0usize..100,
        ) {
            let from = from.min(v.len());
            let want = v[from..]
                .iter()
                .position(|&c| matches!(c, b'"' | b'\\' | b'\n'))
                .map(|k| from + k);
            proptest::prop_assert_eq!(find_value_end(&v, from), want);
        }
    }

    #[test]
    fn value_ends_skip_blanks_and_controls() {
        // Bytes below '"' other than the line feed, and bytes just above
        // it, belong to the value; so do bytes of multi-byte characters.
        let inside = [
            0u8, b'\t', b'\r', b' ', b'!', b'#', 0x1f, 0x7f, 0x80, 0xc3, 0xff,
        ];
        for len in 0..80 {
            for at in 0..len {
                for &c in &inside {
                    let mut v = vec![b'a'; len];
                    v[at] = c;
                    assert_eq!(find_value_end(&v, 0), None, "{c:#x} at {at} of {len}");
                    v.push(b'"');
                    assert_eq!(find_value_end(&v, 0), Some(len), "{c:#x} at {at} of {len}");
                    // Followed by a real end in the same word.
                    if at + 1 < len {
                        v[at + 1] = b'\n';
                        assert_eq!(find_value_end(&v, 0), Some(at + 1), "{c:#x} at {at}");
                    }
                }
            }
        }
    }

    #[test]
    fn finds_a_byte_at_every_offset() {
        for len in 0..40 {
            for at in 0..=len {
                let mut v = vec![b'a'; len];
                if at < len {
                    v[at] = b'=';
                }
                let want = (at < len).then_some(at);
                assert_eq!(find_byte(&v, 0, b'='), want, "len {len} at {at}");
                if at < len {
                    // Bytes next to '=' in value must not match it.
                    v[at] = b'=' + 1;
                    assert_eq!(find_byte(&v, 0, b'='), None);
                    v[at] = b'=' - 1;
                    assert_eq!(find_byte(&v, 0, b'='), None);
                }
            }
        }
        assert_eq!(find_byte(b"a=b=", 2, b'='), Some(3));
    }

    #[test]
    fn name_cache_agrees_with_the_name_check() {
        let mut cache = NameCache::new();
        // Every length around the cache's two words, every byte class at
        // every place, the valid name first so its twin meets a full slot.
        let bytes = [
            b'a', b'Z', b'_', b'7', b'.', b'-', 0, 0xc3, b'"', b' ', b'=',
        ];
        for round in 0..2 {
            for len in 0..20 {
                for at in 0..len {
                    for &c in &bytes {
                        for name in [vec![b'q'; len], {
                            let mut v = vec![b'q'; len];
                            v[at] = c;
                            v
                        }] {
                            for pad in [0usize, 2, 30] {
                                let mut line = b"{".to_vec();
                                line.extend_from_slice(&name);
                                line.extend_from_slice(b"=\"v\"");
                                line.resize(line.len() + pad, b'x');
                                let want = label_name_len(&line, 1);
                                let got = cache.name_len(&line, 1);
                                assert_eq!(
                                    got,
                                    (want > 0).then_some(want),
                                    "round {round} {:?}",
                                    String::from_utf8_lossy(&line)
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn name_runs() {
        assert_eq!(label_chars(b"instance_name=\"x\"", 0), 13);
        assert_eq!(label_chars(b"a:b", 0), 1);
        assert_eq!(metric_chars(b"a:b{", 0), 3);
        assert_eq!(
            metric_chars(b"node_network_receive_bytes_total{device", 0),
            32
        );
        assert_eq!(metric_chars(b"", 0), 0);
        assert_eq!(metric_chars("é".as_bytes(), 0), 0);
    }

    #[test]
    fn name_runs_agree_with_a_byte_loop() {
        let is_label = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
        // Past two 16-byte SIMD chunks, on a background of every class
        // of name character, so that each lane meets each byte.
        let background = b"aZ_09zA";
        for c in 0..=255u8 {
            for len in 0..40 {
                for at in 0..=len {
                    let mut v: Vec<u8> = (0..len).map(|k| background[k % 7]).collect();
                    if at < len {
                        v[at] = c;
                    }
                    let want = v.iter().position(|&x| !is_label(x)).unwrap_or(len);
                    assert_eq!(label_chars(&v, 0), want, "byte {c:#x} at {at} of {len}");
                    let want = v
                        .iter()
                        .position(|&x| !(is_label(x) || x == b':'))
                        .unwrap_or(len);
                    assert_eq!(metric_chars(&v, 0), want, "byte {c:#x} at {at} of {len}");
                }
            }
        }
    }

    proptest::proptest! {
        /// The SIMD name runs (x86-64) and the table loop agree with a
        /// plain byte test on any bytes, from any start.
        #[test]
        fn name_runs_agree_with_a_byte_test_on_any_bytes(
            v in proptest::collection::vec(proptest::prop_oneof![
                3 => proptest::sample::select(b"abcxyzABCXYZ0189_:".to_vec()),
                1 => proptest::num::u8::ANY,
            ], 0..80),
            from in 0usize..80,
        ) {
            let from = from.min(v.len());
            let is_label = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
            let want = v[from..].iter().position(|&x| !is_label(x)).unwrap_or(v.len() - from);
            proptest::prop_assert_eq!(label_chars(&v, from), want);
            let want = v[from..]
                .iter()
                .position(|&x| !(is_label(x) || x == b':'))
                .unwrap_or(v.len() - from);
            proptest::prop_assert_eq!(metric_chars(&v, from), want);
        }
    }

    #[test]
    fn prefixes() {
        let b = b"node_cpu_seconds_total{cpu=\"0\"}";
        assert!(starts_with_at(b, 0, b"node_cpu_seconds_total"));
        assert!(starts_with_at(b, 5, b"cpu_seconds"));
        assert!(!starts_with_at(b, 0, b"node_cpu_seconds_totaX"));
        assert!(!starts_with_at(b, 30, b"0\"}x"));
        assert!(starts_with_at(b, 0, b""));
    }

    #[test]
    fn prefixes_agree_with_slice_compare_at_every_length_and_difference() {
        let b: Vec<u8> = (0..72u8).map(|k| b'a' + k % 26).collect();
        for at in 0..b.len() {
            for len in 0..=b.len() + 1 - at {
                let Some(p) = b.get(at..at + len) else {
                    // Longer than what is left: never a prefix.
                    let mut p = b[at..].to_vec();
                    p.push(b'x');
                    assert!(!starts_with_at(&b, at, &p));
                    continue;
                };
                assert!(starts_with_at(&b, at, p), "at {at} len {len}");
                for d in 0..len {
                    let mut q = p.to_vec();
                    q[d] ^= 0x20;
                    assert!(
                        !starts_with_at(&b, at, &q),
                        "at {at} len {len} differs at {d}"
                    );
                }
            }
        }
    }

    #[test]
    fn digit_runs() {
        for s in [
            "",
            "0",
            "7",
            "12",
            "1234567",
            "12345678",
            "123456789",
            "1795328359972",
        ] {
            for tail in ["", " ", "x", ".5", "\u{e9}"] {
                let t = format!("{s}{tail}");
                let (v, n) = digit_run(t.as_bytes(), 0, 0);
                assert_eq!(n, s.len(), "{t:?}");
                assert_eq!(v, s.parse::<u64>().unwrap_or(0), "{t:?}");
            }
        }
        let (v, n) = digit_run(b"x1234567890123456789 ", 1, 0);
        assert_eq!((v, n), (1234567890123456789, 19));
        assert_eq!(digit_run(b"34.", 0, 12), (1234, 2));
        for c in 0..=255u8 {
            let b = [b'4', c, b'2'];
            let n = if c.is_ascii_digit() { 3 } else { 1 };
            assert_eq!(digit_run(&b, 0, 0).1, n, "{c:#x}");
        }
    }
}
