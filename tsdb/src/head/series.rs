//! One series in the head, laid out for memory.
//!
//! A head holds many series that each hold little, so what costs is not the
//! samples (a sealed chunk of a regular series is a dozen bytes) but the
//! bookkeeping around them: an allocation, a reference count and two
//! timestamps per chunk cost more than the chunk. So a series keeps all its
//! sealed chunks back to back in **one** byte buffer, each framed as
//!
//! ```text
//! uvarint len | varint mint − previous chunk's maxt | uvarint maxt − mint | len bytes
//! ```
//!
//! (the first chunk's "previous maxt" is 0), grown exactly, so a chunk costs
//! its bytes plus three or four bytes of framing; and the out-of-order map
//! exists only for a series that received a late sample.

use std::cell::RefCell;
use std::collections::BTreeMap;

use super::open::OpenChunk;
use crate::Error;
use crate::chunk::{Chunk, ChunkPolicy, ChunkWriter, Encoder};

thread_local! {
    /// Sealing's scratch (the encoder's column buffers and the sealed
    /// bytes), kept per thread: a fresh encoder per chunk cost dozens of
    /// allocations per chunk as its buffers grew again.
    static SEAL: RefCell<(Encoder, Vec<u8>)> = RefCell::new((Encoder::new(), Vec::new()));
}

/// Sealed chunks back to back (module docs have the framing). Its
/// capacity is always [`size_class`] of its length: grown exactly, a
/// buffer was reallocated (and often copied) at every chunk, 5–6 % of
/// ingest CPU once sealing left the appending thread (README, "Head").
#[derive(Default, Clone)]
pub(crate) struct SealedChunks {
    buf: Vec<u8>,
    /// The last chunk's maxt (0, the first frame's base, when none): kept
    /// so that appending a chunk or asking a series' newest time does not
    /// walk every frame (2.4 % of ingest CPU, README "Head").
    last_maxt: i64,
}

/// One sealed chunk, borrowed from a [`SealedChunks`] buffer.
#[derive(Clone, Copy)]
pub(crate) struct SealedRef<'a> {
    pub(crate) mint: i64,
    pub(crate) maxt: i64,
    pub(crate) bytes: &'a [u8],
    /// Where its frame starts and ends in the buffer.
    pub(crate) start: usize,
    pub(crate) end: usize,
    /// The previous chunk's maxt (0 for the first), against which `mint`
    /// is framed.
    pub(crate) base: i64,
}

impl SealedChunks {
    /// Iterates the chunks, oldest first.
    pub(crate) fn iter(&self) -> SealedIter<'_> {
        SealedIter::new(&self.buf, 0)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.iter().count()
    }

    /// Bytes held.
    pub(crate) fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// The raw framed bytes (for a querier's copy).
    pub(crate) fn raw(&self) -> &[u8] {
        &self.buf
    }

    pub(crate) fn first(&self) -> Option<SealedRef<'_>> {
        self.iter().next()
    }

    /// The last chunk's maxt, without walking the frames.
    pub(crate) fn last_maxt(&self) -> Option<i64> {
        (!self.buf.is_empty()).then_some(self.last_maxt)
    }

    /// Appends a chunk after the last one.
    pub(crate) fn push(&mut self, mint: i64, maxt: i64, bytes: &[u8]) {
        let base = self.last_base();
        let mut frame = [0u8; 32];
        let n = frame_header(&mut frame, bytes.len(), mint, maxt, base);
        self.grow_for(n + bytes.len());
        self.buf.extend_from_slice(&frame[..n]);
        self.buf.extend_from_slice(bytes);
        self.last_maxt = maxt;
    }

    /// Makes room for `more` bytes, keeping the capacity at the size
    /// class of the length.
    fn grow_for(&mut self, more: usize) {
        let want = self.buf.len() + more;
        if want > self.buf.capacity() {
            self.buf.reserve_exact(size_class(want) - self.buf.len());
        }
    }

    /// Rebuilds the buffer from the chunks `f` maps each chunk to (`None`
    /// drops it; `Some` keeps new bytes with their range).
    pub(crate) fn rewrite(
        &mut self,
        mut f: impl FnMut(SealedRef<'_>) -> Option<(i64, i64, Vec<u8>)>,
    ) {
        let mut out = SealedChunks::default();
        for c in self.iter() {
            if let Some((mint, maxt, bytes)) = f(c) {
                out.push(mint, maxt, &bytes);
            }
        }
        *self = out;
    }
}

/// The capacity a sealed buffer of `len` bytes has: 64-byte steps up to
/// 256, then steps of a quarter of the power of two below `len` (at most
/// 25 % unused, about 12 % on average), so a buffer growing a chunk at a
/// time is reallocated every few chunks, and the same bytes appended in
/// one step (WAL replay) or in many end with the same capacity.
pub(crate) fn size_class(len: usize) -> usize {
    if len <= 256 {
        return len.next_multiple_of(64);
    }
    let step = 1usize << (usize::BITS - 1 - len.leading_zeros() - 2);
    len.next_multiple_of(step)
}

/// Writes a chunk's frame header into `out`; returns its length.
pub(crate) fn frame_header(
    out: &mut [u8; 32],
    len: usize,
    mint: i64,
    maxt: i64,
    base: i64,
) -> usize {
    let mut at = 0;
    for mut v in [
        len as u64,
        zigzag(mint.wrapping_sub(base)),
        maxt.wrapping_sub(mint) as u64,
    ] {
        // Three varints of at most 10 bytes each fit in 32.
        while v >= 0x80 {
            out[at] = v as u8 | 0x80;
            v >>= 7;
            at += 1;
        }
        out[at] = v as u8;
        at += 1;
    }
    at
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(u: u64) -> i64 {
    (u >> 1) as i64 ^ -((u & 1) as i64)
}

/// Walks framed chunks. The buffer was written by this process, so a frame
/// never fails to parse; should one, the walk ends rather than panic.
pub(crate) struct SealedIter<'a> {
    buf: &'a [u8],
    at: usize,
    prev: i64,
}

impl<'a> SealedIter<'a> {
    /// Walks `buf`, whose first frame's mint is relative to `base`.
    pub(crate) fn new(buf: &'a [u8], base: i64) -> Self {
        SealedIter {
            buf,
            at: 0,
            prev: base,
        }
    }

    fn uvarint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.at)?;
            self.at += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
}

impl<'a> Iterator for SealedIter<'a> {
    type Item = SealedRef<'a>;

    fn next(&mut self) -> Option<SealedRef<'a>> {
        let start = self.at;
        let len = usize::try_from(self.uvarint()?).ok()?;
        let mint = self.prev.wrapping_add(unzigzag(self.uvarint()?));
        let maxt = mint.wrapping_add(self.uvarint()? as i64);
        let end = self.at.checked_add(len)?;
        let bytes = self.buf.get(self.at..end)?;
        self.at = end;
        let base = self.prev;
        self.prev = maxt;
        Some(SealedRef {
            mint,
            maxt,
            bytes,
            start,
            end,
            base,
        })
    }
}

/// A series' samples in memory.
#[derive(Default)]
pub(crate) struct MemSeries {
    pub(crate) sealed: SealedChunks,
    pub(crate) open: OpenChunk,
    /// Late samples accepted within the out-of-order window; allocated only
    /// for a series that got one. Boxed so that the other series pay 8
    /// bytes for it, not the 24 of an empty map.
    #[allow(clippy::box_collection)]
    pub(crate) ooo: Option<Box<BTreeMap<i64, f64>>>,
}

impl MemSeries {
    pub(crate) fn max_time(&self) -> Option<i64> {
        self.open.last_time().or_else(|| self.sealed.last_maxt())
    }

    pub(crate) fn min_time(&self) -> Option<i64> {
        let first = self
            .sealed
            .first()
            .map(|c| c.mint)
            .or(self.open.first_time());
        match (first, self.ooo_first()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn ooo_first(&self) -> Option<i64> {
        self.ooo.as_ref()?.keys().next().copied()
    }

    pub(crate) fn ooo_len(&self) -> usize {
        self.ooo.as_ref().map_or(0, |m| m.len())
    }

    pub(crate) fn ooo_iter(&self) -> impl Iterator<Item = (i64, f64)> + '_ {
        self.ooo
            .iter()
            .flat_map(|m| m.iter().map(|(&t, &v)| (t, v)))
    }

    pub(crate) fn ooo_range(&self, mint: i64, maxt: i64) -> Vec<(i64, f64)> {
        match &self.ooo {
            Some(m) if mint <= maxt => m.range(mint..=maxt).map(|(&t, &v)| (t, v)).collect(),
            _ => Vec::new(),
        }
    }

    pub(crate) fn insert_ooo(&mut self, t: i64, v: f64) {
        self.ooo.get_or_insert_with(Default::default).insert(t, v);
    }

    /// True when the series holds no sample.
    pub(crate) fn is_empty(&self) -> bool {
        self.sealed.is_empty() && self.open.is_empty() && self.ooo.is_none()
    }

    /// Adds a sample; `Ok(false)` when it was a duplicate of a stored one.
    pub(crate) fn append(
        &mut self,
        t: i64,
        v: f64,
        policy: &ChunkPolicy,
        window: i64,
    ) -> Result<bool, Error> {
        self.append_with(t, v, policy, window, MemSeries::cut)
    }

    /// [`append`](Self::append), but a full chunk is handed to `seals`
    /// (for the background sealer, `sealer.rs`) instead of being sealed
    /// here; the head keeps it readable meanwhile (`State::pending`).
    /// Not for a series with an out-of-order window: a late sample would
    /// not find the samples of a chunk in flight.
    pub(crate) fn append_deferring(
        &mut self,
        id: u64,
        t: i64,
        v: f64,
        policy: &ChunkPolicy,
        window: i64,
        seals: &mut SealJobs,
    ) -> Result<bool, Error> {
        self.append_with(t, v, policy, window, |s| s.cut_deferred(id, seals))
    }

    fn append_with(
        &mut self,
        t: i64,
        v: f64,
        policy: &ChunkPolicy,
        window: i64,
        cut: impl FnOnce(&mut Self),
    ) -> Result<bool, Error> {
        match self.max_time() {
            Some(last) if t < last || (t == last && !self.same_as_last(v)) => {
                if t == last {
                    return Err(Error::DuplicateSample { t });
                }
                if window == 0 || last.saturating_sub(t) > window {
                    return Err(Error::OutOfOrderSample { t, last });
                }
                let old = self.ooo.as_ref().and_then(|m| m.get(&t).copied());
                return match old {
                    Some(old) if old.to_bits() == v.to_bits() => Ok(false),
                    Some(_) => Err(Error::DuplicateSample { t }),
                    None => match self.stored_at(t) {
                        Some(old) if old.to_bits() != v.to_bits() => {
                            Err(Error::DuplicateSample { t })
                        }
                        Some(_) => Ok(false),
                        None => {
                            self.insert_ooo(t, v);
                            Ok(true)
                        }
                    },
                };
            }
            Some(last) if t == last => return Ok(false),
            _ => {}
        }
        if let Some(first) = self.open.first_time() {
            if policy.should_cut_len(self.open.len(), first, t) {
                cut(self);
            }
        }
        self.open.append(t, v)?;
        Ok(true)
    }

    /// Copies the open chunk into `seals` for the background sealer and
    /// empties it (keeping its buffer, as [`cut`](Self::cut)).
    fn cut_deferred(&mut self, id: u64, seals: &mut SealJobs) {
        if let (Some(mint), Some(maxt)) = (self.open.first_time(), self.open.last_time()) {
            let spare = seals.spare.pop().unwrap_or_default();
            let i = seals.bufs.len();
            seals.bufs.push(self.open.take(spare));
            seals.jobs.push(SealJob {
                id,
                mint,
                maxt,
                at: i..i + 1,
            });
        } else {
            self.open.clear();
        }
    }

    /// Seals the open chunk into the sealed buffer.
    pub(crate) fn cut(&mut self) {
        if let (Some(mint), Some(maxt)) = (self.open.first_time(), self.open.last_time()) {
            SEAL.with_borrow_mut(|(enc, out)| {
                out.clear();
                self.open.seal_into(enc, out);
                self.sealed.push(mint, maxt, out);
            });
        }
        // The next chunk starts in this one's buffer, already its size:
        // growing a fresh one 48 bytes at a time, and freeing this one, were
        // about 9 allocator calls a chunk, 15-20 % of ingest CPU (README,
        // "Head").
        self.open.clear();
    }

    /// Removes the samples in `[mint, maxt]`: chunks wholly inside go,
    /// chunks that overlap are rewritten without them.
    pub(crate) fn delete(&mut self, mint: i64, maxt: i64) {
        let keep = |ts: i64| ts < mint || ts > maxt;
        self.sealed.rewrite(|c| {
            if c.maxt < mint || c.mint > maxt {
                return Some((c.mint, c.maxt, c.bytes.to_vec()));
            }
            let w = rewrite_keeping(c.bytes, keep);
            match (w.first_time(), w.last_time()) {
                (Some(lo), Some(hi)) => Some((lo, hi, w.seal())),
                _ => None,
            }
        });
        if self.open.first_time().is_some_and(|f| f <= maxt)
            && self.open.last_time().is_some_and(|l| l >= mint)
        {
            self.open.retain(keep);
        }
        if let Some(m) = &mut self.ooo {
            m.retain(|&ts, _| keep(ts));
            if m.is_empty() {
                self.ooo = None;
            }
        }
    }

    /// Drops the samples before `t`: whole chunks before it go, one that
    /// straddles it is rewritten from `t` on.
    pub(crate) fn truncate_before(&mut self, t: i64) {
        if self.sealed.first().is_some_and(|c| c.mint < t) {
            self.sealed.rewrite(|c| {
                if c.maxt < t {
                    None
                } else if c.mint < t {
                    let w = rewrite_keeping(c.bytes, |ts| ts >= t);
                    match (w.first_time(), w.last_time()) {
                        (Some(lo), Some(hi)) => Some((lo, hi, w.seal())),
                        _ => None,
                    }
                } else {
                    Some((c.mint, c.maxt, c.bytes.to_vec()))
                }
            });
        }
        if self.open.first_time().is_some_and(|f| f < t) {
            self.open.retain(|ts| ts >= t);
        }
        if let Some(m) = &mut self.ooo {
            let kept = m.split_off(&t);
            **m = kept;
            if m.is_empty() {
                self.ooo = None;
            }
        }
    }

    fn same_as_last(&self, v: f64) -> bool {
        self.max_time()
            .and_then(|t| self.stored_at(t))
            .is_some_and(|old| old.to_bits() == v.to_bits())
    }

    /// The in-order value stored at `t`, if any (decodes one chunk).
    pub(crate) fn stored_at(&self, t: i64) -> Option<f64> {
        let find = |bytes: &[u8]| {
            Chunk::new(bytes)
                .ok()?
                .iter()
                .filter_map(Result::ok)
                .find(|&(ts, _)| ts == t)
                .map(|(_, v)| v)
        };
        if self.open.first_time().is_some_and(|f| f <= t) {
            return self.open.value_at(t);
        }
        self.sealed
            .iter()
            .find(|c| c.maxt >= t)
            .filter(|c| c.mint <= t)
            .and_then(|c| find(c.bytes))
    }

    /// Heap bytes this series holds (capacities), by part: sealed chunks,
    /// open chunk, out-of-order samples.
    pub(crate) fn heap_bytes(&self) -> (usize, usize, usize) {
        // A B-tree node holds up to 11 entries of 16 bytes plus links.
        let ooo = self.ooo.as_ref().map_or(0, |m| {
            std::mem::size_of::<BTreeMap<i64, f64>>() + m.len().div_ceil(11) * 280
        });
        (self.sealed.capacity(), self.open.heap_bytes(), ooo)
    }
}

/// A new open chunk holding the samples of chunk `bytes` whose timestamps
/// `keep` accepts.
pub(crate) fn rewrite_keeping(bytes: &[u8], keep: impl Fn(i64) -> bool) -> ChunkWriter {
    let mut w = ChunkWriter::new();
    if let Ok(c) = Chunk::new(bytes) {
        for (ts, v) in c.iter().filter_map(Result::ok).filter(|&(ts, _)| keep(ts)) {
            // Decoded in order from a chunk this head wrote: appends succeed.
            let _ = w.append(ts, v);
        }
    }
    w
}

/// WAL replay's bulk path (head/replay.rs), which seals many chunks into
/// each series in a row: it frames them itself (knowing the previous
/// chunk's maxt, so no walk over the frames) and appends them at once.
impl SealedChunks {
    /// The last chunk's maxt, or 0 (the frame base) when there is none.
    pub(crate) fn last_base(&self) -> i64 {
        if self.buf.is_empty() {
            0
        } else {
            self.last_maxt
        }
    }

    /// Appends framed chunks (as [`frame_header`] frames them, the first
    /// against this buffer's last maxt), growing the buffer at most once.
    pub(crate) fn append_frames(&mut self, frames: &[u8]) {
        if frames.is_empty() {
            return;
        }
        let base = self.last_base();
        if let Some(c) = SealedIter::new(frames, base).last() {
            self.last_maxt = c.maxt;
        }
        self.grow_for(frames.len());
        self.buf.extend_from_slice(frames);
    }
}

/// Full chunks a commit cut and left to the background sealer
/// (`head/sealer.rs`): each one's raw buffer (`open.rs`), handed over
/// whole, and which series and range each is, in the order they were cut;
/// and empty buffers for the open chunks that follow them.
#[derive(Default)]
pub(crate) struct SealJobs {
    pub(crate) bufs: Vec<Vec<u8>>,
    pub(crate) jobs: Vec<SealJob>,
    pub(crate) spare: Vec<Vec<u8>>,
}

/// One chunk to seal: series `id`'s chunk `[mint, maxt]`, whose raw bytes
/// are the one buffer `bufs[at]` of its [`SealJobs`] (or, in a result,
/// whose sealed encoding is the bytes `at`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SealJob {
    pub(crate) id: u64,
    pub(crate) mint: i64,
    pub(crate) maxt: i64,
    pub(crate) at: std::ops::Range<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_series_slot_stays_small() {
        // The series table holds one slot per series: every byte here is
        // paid 10,000 times on the promtool workload (README, "Head").
        assert!(std::mem::size_of::<Option<MemSeries>>() <= 88);
    }

    #[test]
    fn size_classes_hold_their_length_and_grow_by_a_quarter_at_most() {
        let mut prev = 0;
        for len in 0..100_000usize {
            let c = size_class(len);
            assert!(c >= len && c >= prev, "{len}: {c}");
            assert!(len <= 256 || c - len <= len / 4, "{len}: {c}");
            // A class is its own class: a buffer at its class grows only
            // when it must.
            assert_eq!(size_class(c), c);
            prev = c;
        }
    }

    #[test]
    fn frames_round_trip_with_extreme_ranges() {
        let mut s = SealedChunks::default();
        let ranges = [
            (i64::MIN, i64::MIN + 5),
            (-10, 10),
            (11, 11),
            (1_000_000, i64::MAX),
        ];
        for (i, &(lo, hi)) in ranges.iter().enumerate() {
            s.push(lo, hi, &vec![i as u8; i * 100]);
        }
        let back: Vec<(i64, i64, Vec<u8>)> = s
            .iter()
            .map(|c| (c.mint, c.maxt, c.bytes.to_vec()))
            .collect();
        assert_eq!(back.len(), 4);
        for (i, (lo, hi, b)) in back.into_iter().enumerate() {
            assert_eq!((lo, hi), ranges[i]);
            assert_eq!(b, vec![i as u8; i * 100]);
        }
        assert_eq!(s.capacity(), size_class(s.raw().len()), "grown by class");
        s.rewrite(|c| (c.mint > 0).then(|| (c.mint, c.maxt, c.bytes.to_vec())));
        assert_eq!(s.len(), 2);
        assert_eq!(s.first().map(|c| c.mint), Some(11));
    }
}
