//! What `Appender::append_ref` checks, readable without the head's lock.
//!
//! `append_ref` refuses a sample older than its series' newest committed
//! one. Reading that from the series table needs the state lock, and the
//! lock's two atomic operations were 13 % of the ingest CPU (README,
//! "Head"). So the head keeps each series' newest timestamp a second time,
//! here, in pages that are allocated once and never move, found through a
//! directory that grows by doubling segments that never move either: a
//! lookup is three dependent loads and no lock, and no `unsafe`.
//!
//! Whoever changes a series' newest timestamp (a commit, a deletion, a
//! truncation, a collection, the replay at open) writes it here while it
//! still holds the state's write lock, so a thread that sees a commit
//! return sees its timestamps here too. A slot that says [`ASK`] (never
//! written, a series dropped, or one whose newest sample really is at
//! `i64::MAX`) sends `append_ref` to the locked series table, which then
//! answers exactly as before: this table only ever answers what the locked
//! path would.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicI64, Ordering};

use crate::index::SeriesId;

/// Slot value: look in the locked series table.
pub(crate) const ASK: i64 = i64::MAX;
/// Slot value of a series without samples (no order to keep: any
/// timestamp is after it).
pub(crate) const EMPTY: i64 = i64::MIN;

/// Ids per page (2 KiB a page).
const PAGE: usize = 256;
/// Directory segments: segment `k` holds `2^k` pages, so 40 of them
/// address `256 × (2^40 − 1)` ids; a larger id asks the locked table.
const SEGMENTS: usize = 40;

type Page = Box<[AtomicI64]>;

/// Newest timestamp per series id (see the module docs).
pub(crate) struct Front {
    segments: [OnceLock<Box<[OnceLock<Page>]>>; SEGMENTS],
}

impl Default for Front {
    fn default() -> Self {
        Front {
            segments: std::array::from_fn(|_| OnceLock::new()),
        }
    }
}

/// Segment and offset of page `p`: page `p` is number `p + 1 − 2^k` of
/// segment `k = ⌊log2(p + 1)⌋`.
fn locate(id: SeriesId) -> Option<(usize, usize, usize)> {
    let x = (id / PAGE as u64).checked_add(1)?;
    let k = (63 - x.leading_zeros()) as usize;
    if k >= SEGMENTS {
        return None;
    }
    let off = usize::try_from(x - (1u64 << k)).ok()?;
    Some((k, off, (id % PAGE as u64) as usize))
}

/// The page of slots last looked up, kept by a caller that looks up many
/// ids in a row (`append_ref`, a commit's loop): ids of a shard of series
/// share pages, so most lookups skip the directory's three dependent loads.
#[derive(Default, Clone, Copy)]
pub(crate) struct Cursor<'a> {
    /// The id of `page[0]`.
    first: SeriesId,
    /// Empty until a page is found.
    page: &'a [AtomicI64],
}

impl Front {
    /// The slot of `id` through `c`, moving `c` to `id`'s page if needed.
    #[inline]
    fn slot_at<'a>(&'a self, c: &mut Cursor<'a>, id: SeriesId) -> Option<&'a AtomicI64> {
        let i = id.wrapping_sub(c.first);
        if let Some(s) = usize::try_from(i).ok().and_then(|i| c.page.get(i)) {
            return Some(s);
        }
        let (k, off, i) = locate(id)?;
        let page = self.segments[k].get()?.get(off)?.get()?;
        *c = Cursor {
            first: id - i as u64,
            page,
        };
        page.get(i)
    }

    /// [`get`](Self::get) through a cursor.
    #[inline]
    pub(crate) fn get_at<'a>(&'a self, c: &mut Cursor<'a>, id: SeriesId) -> i64 {
        self.slot_at(c, id)
            .map_or(ASK, |s| s.load(Ordering::Acquire))
    }

    /// [`set`](Self::set) through a cursor.
    #[inline]
    pub(crate) fn set_at<'a>(&'a self, c: &mut Cursor<'a>, id: SeriesId, newest: Option<i64>) {
        let v = newest.unwrap_or(EMPTY);
        if let Some(s) = self.slot_at(c, id) {
            s.store(v, Ordering::Release);
            return;
        }
        self.set_new(id, v);
    }

    /// The slot of `id`, if its page exists.
    #[inline]
    fn slot(&self, id: SeriesId) -> Option<&AtomicI64> {
        let (k, off, i) = locate(id)?;
        self.segments[k].get()?.get(off)?.get()?.get(i)
    }

    /// What the table says about `id`: [`ASK`], [`EMPTY`] or the series'
    /// newest timestamp (the head asks through [`get_at`](Self::get_at)).
    #[cfg(test)]
    pub(crate) fn get(&self, id: SeriesId) -> i64 {
        self.slot(id).map_or(ASK, |s| s.load(Ordering::Acquire))
    }

    /// Records `id`'s newest timestamp (`None`: no sample), creating its
    /// page if needed. Callers hold the state's write lock.
    #[inline]
    pub(crate) fn set(&self, id: SeriesId, newest: Option<i64>) {
        let v = newest.unwrap_or(EMPTY);
        if let Some(s) = self.slot(id) {
            s.store(v, Ordering::Release);
            return;
        }
        self.set_new(id, v);
    }

    /// [`set`](Self::set) where `id`'s page does not exist yet: once per
    /// 256 series, so kept out of the commit's loop.
    #[cold]
    #[inline(never)]
    fn set_new(&self, id: SeriesId, v: i64) {
        let Some((k, off, i)) = locate(id) else {
            return; // beyond the table: the locked path answers
        };
        let seg =
            self.segments[k].get_or_init(|| (0..1usize << k).map(|_| OnceLock::new()).collect());
        if let Some(page) = seg.get(off) {
            let page = page.get_or_init(|| (0..PAGE).map(|_| AtomicI64::new(ASK)).collect());
            page[i].store(v, Ordering::Release);
        }
    }

    /// Sends `id` to the locked table from now on (the series is gone).
    pub(crate) fn forget(&self, id: SeriesId) {
        if let Some(s) = self.slot(id) {
            s.store(ASK, Ordering::Release);
        }
    }

    /// Heap bytes: pages and directory segments.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.segments
            .iter()
            .filter_map(OnceLock::get)
            .map(|seg| {
                seg.len() * std::mem::size_of::<OnceLock<Page>>()
                    + seg.iter().filter(|p| p.get().is_some()).count() * PAGE * 8
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_answers_as_the_table() {
        let f = Front::default();
        for id in (0..3000u64).step_by(7) {
            f.set(id, Some(id as i64 * 3));
        }
        let mut c = Cursor::default();
        // Forward, backward and across pages; ids never set ask.
        for id in (0..3100u64)
            .chain((0..3100u64).rev())
            .chain([5, 2999, 0, 1 << 50])
        {
            assert_eq!(f.get_at(&mut c, id), f.get(id), "id {id}");
        }
        let mut c = Cursor::default();
        for id in [10u64, 300, 11, 5000, 1 << 20] {
            f.set_at(&mut c, id, Some(-1));
            assert_eq!(f.get(id), -1);
        }
    }

    #[test]
    fn pages_cover_every_id_once() {
        // Consecutive ids walk the segments without gap or overlap.
        let mut last = None;
        for id in [0u64, 1, 255, 256, 511, 512, 767, 768, 100_000, 1 << 30] {
            let (k, off, i) = locate(id).unwrap();
            let page = (1u64 << k) - 1 + off as u64;
            assert_eq!(page * PAGE as u64 + i as u64, id);
            assert!(off < 1 << k);
            if let Some(l) = last {
                assert!(id > l);
            }
            last = Some(id);
        }
        assert!(locate(u64::MAX).is_none());
        assert!(locate(PAGE as u64 * ((1 << SEGMENTS) - 1)).is_none());
        assert!(locate(PAGE as u64 * ((1 << SEGMENTS) - 1) - 1).is_some());
    }

    #[test]
    fn unset_ids_ask_and_set_ones_answer() {
        let f = Front::default();
        assert_eq!(f.get(7), ASK);
        f.set(7, Some(42));
        f.set(70_000, None);
        assert_eq!(f.get(7), 42);
        assert_eq!(f.get(8), ASK, "a fresh page's other slots ask");
        assert_eq!(f.get(70_000), EMPTY);
        f.forget(7);
        assert_eq!(f.get(7), ASK);
        f.set(u64::MAX, Some(1)); // beyond the table: ignored
        assert_eq!(f.get(u64::MAX), ASK);
        assert_eq!(f.heap_bytes() % 8, 0);
    }
}
