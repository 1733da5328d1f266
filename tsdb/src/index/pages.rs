//! Bytes kept in fixed-size pages that never move.
//!
//! The index's two byte stores (interned strings, series' label
//! references) grow with every new series. A single growing buffer is
//! copied at each growth, and the allocator keeps the copies it frees
//! resident: measured with glibc on the ingest workload, those holes were
//! about 250 of the 955 resident bytes per series, where the store's own
//! heap was 575. Pages are allocated once at their full size and only ever
//! appended to, so nothing is copied and nothing is freed until a
//! compaction rewrites the whole store.

/// Largest page: below glibc's initial mmap threshold (128 KiB), and 16
/// bits of offset, so a position is a `u32` of page and offset.
const PAGE_BITS: u32 = 16;
const PAGE: usize = 1 << PAGE_BITS;

/// Entries of bytes, each contiguous in one page, addressed by a `u32`
/// position (page number in the high 16 bits, offset in the low 16).
#[derive(Default)]
pub(crate) struct Pages {
    pages: Vec<Vec<u8>>,
    /// Bytes in all pages.
    len: usize,
}

impl Pages {
    /// Appends `bytes` as one entry and returns its position; `None` when
    /// the 65,536 pages (4 GiB) are used up.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Option<u32> {
        let fits = self
            .pages
            .last()
            .is_some_and(|p| p.capacity() - p.len() >= bytes.len() && p.len() < PAGE);
        if !fits {
            if self.pages.len() >= 1 << (32 - PAGE_BITS) {
                return None;
            }
            // Pages double from 4 KiB to `PAGE`, so a small index stays
            // small; an entry longer than a page gets a page of its size.
            let last = self.pages.last().map_or(0, Vec::capacity);
            let cap = (last * 2).clamp(4096, PAGE).max(bytes.len());
            self.pages.push(Vec::with_capacity(cap));
        }
        let n = self.pages.len() - 1;
        let page = &mut self.pages[n];
        let at = ((n as u32) << PAGE_BITS) | page.len() as u32;
        page.extend_from_slice(bytes);
        self.len += bytes.len();
        Some(at)
    }

    /// The entry at `at` of `len` bytes, or `None` when there is none.
    pub(crate) fn get(&self, at: u32, len: u32) -> Option<&[u8]> {
        let page = self.pages.get((at >> PAGE_BITS) as usize)?;
        let start = (at & (PAGE as u32 - 1)) as usize;
        page.get(start..start.checked_add(len as usize)?)
    }

    /// Bytes stored.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Bytes allocated.
    pub(crate) fn capacity(&self) -> usize {
        self.pages.iter().map(Vec::capacity).sum::<usize>() + self.pages.capacity() * 24
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn every_entry_reads_back(entries in proptest::collection::vec(
            proptest::collection::vec(any::<u8>(), 0..40_000), 0..40)) {
            let mut p = Pages::default();
            let at: Vec<u32> = entries.iter().map(|e| p.push(e).unwrap()).collect();
            for (e, &a) in entries.iter().zip(&at) {
                prop_assert_eq!(p.get(a, e.len() as u32).unwrap(), &e[..]);
            }
            prop_assert_eq!(p.len(), entries.iter().map(Vec::len).sum::<usize>());
        }
    }

    #[test]
    fn pages_do_not_move_and_long_entries_get_their_own() {
        let mut p = Pages::default();
        let a = p.push(&[1; 60_000]).unwrap();
        let first = p.pages[0].as_ptr();
        let b = p.push(&[2; 10_000]).unwrap();
        assert_eq!(b >> PAGE_BITS, 1, "did not fit the first page");
        assert_eq!(p.pages[0].as_ptr(), first, "the first page did not move");
        let c = p.push(&[3; 200_000]).unwrap();
        assert_eq!(p.get(c, 200_000).unwrap(), &[3; 200_000][..]);
        assert_eq!(p.get(a, 60_000).unwrap(), &[1; 60_000][..]);
        assert_eq!(p.get(b, 10_000).unwrap(), &[2; 10_000][..]);
        let d = p.push(&[4; 5]).unwrap();
        assert_eq!(d >> PAGE_BITS, 3, "a new page after a page of its own");
        assert!(p.get(d, 6).is_none());
        assert!(p.get(9 << PAGE_BITS, 1).is_none());
    }
}
