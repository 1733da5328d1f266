//! WAL replay on open, in parallel.
//!
//! Restart time is what Prometheus users complain about most, and nearly
//! all of it is applying samples, which is independent per series. So the
//! records are read in order and gathered into batches; a batch's `Samples`
//! records are decoded by all threads (each takes every n-th record), then
//! every thread applies the samples of its own shard of series (blocks of
//! 64 consecutive ids, dealt round-robin), with no lock and no allocation
//! per sample. `Series` records are applied as they are read (creating a
//! series changes no other), `Delete` records in order between batches, so
//! every sample meets the head exactly as a sequential replay would.
//!
//! A sample is not appended to its series' open (Gorilla) chunk one by one:
//! building that chunk and then decoding it again to seal it cost half the
//! replay. Instead each series gathers its in-order samples in a plain
//! `(t, v)` buffer, and when the chunk policy would cut, the buffer is
//! sealed straight from the slice — the same encoder on the same samples,
//! so the same bytes as `MemSeries::cut`. Only the tail left at the end
//! becomes an open chunk. Anything else (a late, duplicate or refused
//! sample; a deletion) first moves the buffer into the open chunk and then
//! takes the ordinary `MemSeries::append` path. The buffers together are
//! bounded ([`PENDING_BYTES`]); a series that finds the budget spent takes
//! the ordinary path.

use std::sync::atomic::{AtomicUsize, Ordering};

use vigil_wal::Wal;

use super::open::OpenChunk;
use super::record::{self, Record};
use super::series::{MemSeries, frame_header};
use super::{HeadOptions, State};
use crate::Error;
use crate::chunk::{Encoder, MAX_SAMPLES};

/// Samples gathered before a batch is applied: large enough that starting
/// threads is noise, small enough that the decoded batch (24 bytes a
/// sample) stays a few megabytes.
const BATCH_SAMPLES: usize = 1 << 19;

/// The first batch's size; each next one is twice as large, up to
/// [`BATCH_SAMPLES`].
const FIRST_BATCH_SAMPLES: usize = 1 << 16;

/// Series the reading thread indexes after handing over a batch (a few
/// milliseconds of work) before it reads on.
const INDEX_SLICE: usize = 2048;

/// Below this many samples a batch is applied on the calling thread.
const PARALLEL_MIN: usize = 1 << 14;

/// Consecutive series ids per shard block.
const BLOCK: usize = 64;

/// Most bytes the per-series sample buffers may hold together: 128 MiB is
/// a full default chunk (240 samples, 3,840 bytes) for 35,000 series.
const PENDING_BYTES: usize = 128 << 20;

/// A decoded sample: series id, timestamp, value.
type Sample = (u64, i64, f64);

/// One record's samples, decoded, by shard.
type Parts = Vec<Vec<Sample>>;

/// A series' in-order samples not in its chunks yet (module docs).
#[derive(Default)]
struct Pending {
    buf: Vec<(i64, f64)>,
    /// The maxt of the series' last sealed chunk, once looked up; `None`
    /// again whenever the ordinary path may have changed the chunks.
    base: Option<i64>,
    /// The WAL position of the record that created the series (0: it was
    /// there before): a sample before it names a series not created yet.
    since: u64,
    /// Chunks sealed here, framed, not yet appended to the series (one
    /// reallocation of its exactly sized buffer then, not one a chunk).
    frames: Vec<u8>,
}

/// The record kind byte of a `Samples` record (FORMAT.md, "WAL records").
const SAMPLES_KIND: u8 = 2;

/// Replay's state besides the head: the sample buffers, each thread's
/// sealing scratch, and what is left of the buffers' budget.
struct Replayer<'o> {
    opts: &'o HeadOptions,
    threads: usize,
    /// By series id, as `State::series.slots`.
    pending: Vec<Pending>,
    /// A batch's samples, decoded, by record and by shard (kept between
    /// batches: fresh vectors of this size cost page faults every time).
    parts: Vec<Parts>,
    scratch: Vec<Scratch>,
    budget: AtomicUsize,
}

/// A thread's sealing scratch, kept for the whole replay.
#[derive(Default)]
struct Scratch {
    enc: Encoder,
    out: Vec<u8>,
}

/// What the reading thread hands over: `Samples` records to apply, the
/// series created among them, and the deletion that ended the batch.
struct Batch<B> {
    /// `(lsn, id)` of each series created, in WAL order (the reading
    /// thread indexes their labels: see [`read`]).
    series: Vec<(u64, u64)>,
    /// Records as the WAL reader lends them (its mapping, no copy).
    samples: Vec<(u64, B)>,
    delete: Option<Vec<(u64, i64, i64)>>,
}

impl<B> Default for Batch<B> {
    fn default() -> Self {
        Batch {
            series: Vec::new(),
            samples: Vec::new(),
            delete: None,
        }
    }
}

/// Replays the WAL from `from` into `state`.
///
/// One thread reads the WAL (CRCs, page faults of the mapping, decoding
/// `Series` records) and hands batches over, so that reading the next
/// batch overlaps applying this one. That thread also adds the new
/// series' labels to the index, a slice after each batch it hands over:
/// on the calling thread, indexing 10,000 series took 30–40 ms in which
/// the other threads waited.
pub(super) fn replay(
    wal: &Wal,
    from: u64,
    state: &mut State,
    opts: &HeadOptions,
) -> Result<(), Error> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let mut r = Replayer {
        opts,
        threads,
        pending: Vec::new(),
        parts: Vec::new(),
        scratch: (0..threads).map(|_| Scratch::default()).collect(),
        budget: AtomicUsize::new(PENDING_BYTES),
    };
    let reader = wal.reader(from.max(wal.oldest_lsn()))?;
    let known = Known::new(state.series.iter().map(|(id, _)| id));
    let mut index = std::mem::replace(&mut state.index, crate::index::Index::new());
    let res = std::thread::scope(|sc| {
        // One batch ready while one is applied.
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let index = &mut index;
        sc.spawn(move || read(reader, &tx, index, known));
        for batch in rx {
            r.apply_batch(batch?, state)?;
        }
        r.finish(state);
        Ok(())
    });
    // The reading thread is done with it (the scope joined it).
    state.index = index;
    res
}

/// Series ids the head holds or a `Series` record created so far, as the
/// reading thread sees them: the first record of an id creates it, a later
/// one is ignored (as `State::create` does).
struct Known {
    /// Ids present before the replay (a checkpoint's), one bit each.
    before: Vec<u64>,
    /// Ids created by records.
    created: std::collections::HashSet<u64, foldhash::fast::RandomState>,
}

impl Known {
    fn new(ids: impl Iterator<Item = u64>) -> Known {
        let mut before = Vec::new();
        for id in ids {
            let (w, b) = ((id / 64) as usize, id % 64);
            if before.len() <= w {
                before.resize(w + 1, 0);
            }
            before[w] |= 1 << b;
        }
        Known {
            before,
            created: Default::default(),
        }
    }

    /// True when `id` was not known (and is now).
    fn insert(&mut self, id: u64) -> bool {
        let old = usize::try_from(id / 64)
            .ok()
            .and_then(|w| self.before.get(w))
            .is_some_and(|w| w & (1 << (id % 64)) != 0);
        !old && self.created.insert(id)
    }
}

/// Reads records into batches and sends them; stops at the end, at an
/// error (sent after the batch before it) or when the receiver is gone.
/// The labels of the series a batch creates go into `index` after the
/// batch is sent, [`INDEX_SLICE`] after each batch, while batches are
/// applied. (An id the head refuses as implausible may be indexed here:
/// the replay then fails, and the head with it.)
fn read<B: AsRef<[u8]>>(
    reader: impl Iterator<Item = Result<(u64, B), vigil_wal::Error>>,
    tx: &std::sync::mpsc::SyncSender<Result<Batch<B>, Error>>,
    index: &mut crate::index::Index,
    mut known: Known,
) {
    let mut batch = Batch::default();
    let mut batch_samples = 0usize;
    // The first batches small, so that the applying threads start early
    // instead of waiting for a whole batch to be read.
    let mut limit = FIRST_BATCH_SAMPLES;
    // Labels not indexed yet, oldest first, from `done` on.
    let mut labels: Vec<(u64, crate::labels::Labels)> = Vec::new();
    let mut done = 0usize;
    // Indexes up to `most` of them (a slice after each batch sent, so
    // that reading stays ahead of the applying threads).
    let mut index_them = |labels: &mut Vec<(u64, crate::labels::Labels)>, most: usize| {
        let end = labels.len().min(done.saturating_add(most));
        for (id, l) in &labels[done..end] {
            index.add(*id, l);
        }
        done = end;
        if done == labels.len() {
            labels.clear();
            done = 0;
        }
    };
    for rec in reader {
        let (lsn, bytes) = match rec {
            Ok(r) => r,
            Err(e) => {
                let _ = tx.send(Ok(batch));
                let _ = tx.send(Err(e.into()));
                index_them(&mut labels, usize::MAX);
                return;
            }
        };
        if bytes.as_ref().first() == Some(&SAMPLES_KIND) {
            // A count that is wrong only sizes the batch; decode checks it.
            batch_samples += bytes.as_ref().len() / 10;
            batch.samples.push((lsn, bytes));
            if batch_samples < limit {
                continue;
            }
        } else {
            match record::decode(bytes.as_ref(), lsn) {
                Ok(Record::Series(list)) => {
                    // Created before the batch's samples are applied: a
                    // series' samples follow its record, and creating one
                    // touches no other (`Pending::since` keeps a sample
                    // before its series' record an error).
                    for (id, l) in list {
                        if known.insert(id) {
                            batch.series.push((lsn, id));
                            labels.push((id, l));
                        }
                    }
                    continue;
                }
                Ok(Record::Delete(list)) => batch.delete = Some(list),
                Ok(Record::Samples(_)) => {
                    let _ = tx.send(Ok(batch));
                    let _ = tx.send(unreachable_samples(lsn).map(|()| Batch::default()));
                    index_them(&mut labels, usize::MAX);
                    return;
                }
                Err(e) => {
                    let _ = tx.send(Ok(batch));
                    let _ = tx.send(Err(e));
                    index_them(&mut labels, usize::MAX);
                    return;
                }
            }
        }
        if tx.send(Ok(std::mem::take(&mut batch))).is_err() {
            return;
        }
        index_them(&mut labels, INDEX_SLICE);
        batch_samples = 0;
        limit = (limit * 2).min(BATCH_SAMPLES);
    }
    let _ = tx.send(Ok(batch));
    index_them(&mut labels, usize::MAX);
}

/// A `Samples` record that did not start with its kind byte cannot decode
/// as one; should the codec ever disagree, say so rather than drop it.
fn unreachable_samples(lsn: u64) -> Result<(), Error> {
    Err(Error::BadRecord {
        lsn,
        offset: 0,
        what: "samples record with an unexpected kind byte",
    })
}

impl Replayer<'_> {
    /// Applies a batch: creates its series, applies its samples, then
    /// its deletion.
    fn apply_batch<B: AsRef<[u8]> + Sync>(
        &mut self,
        batch: Batch<B>,
        state: &mut State,
    ) -> Result<(), Error> {
        for (lsn, id) in batch.series {
            // New (the reading thread kept the first record of each id);
            // its labels are the reading thread's to index.
            if !state.series.insert(id) {
                return Err(Error::BadRecord {
                    lsn,
                    offset: 0,
                    what: "series id far beyond the ids in use",
                });
            }
            state.next_id = state.next_id.max(id + 1);
            let i = usize::try_from(id).unwrap_or(usize::MAX);
            if self.pending.len() <= i {
                self.pending.resize_with(i + 1, Pending::default);
            }
            self.pending[i].since = lsn;
        }
        self.apply_samples(&batch.samples, state)?;
        for (id, mint, maxt) in batch.delete.into_iter().flatten() {
            let Ok(i) = usize::try_from(id) else { continue };
            if let Some(Some(s)) = state.series.slot_mut(i) {
                if let Some(p) = self.pending.get_mut(i) {
                    flush(s, p, self.opts);
                }
                s.delete(mint, maxt);
            }
        }
        Ok(())
    }

    /// Decodes and applies a batch of `Samples` records.
    fn apply_samples<B: AsRef<[u8]> + Sync>(
        &mut self,
        batch: &[(u64, B)],
        state: &mut State,
    ) -> Result<(), Error> {
        if batch.is_empty() {
            return Ok(());
        }
        let known = state.series.slots_len();
        self.pending.resize_with(known, Pending::default);
        let (opts, budget) = (self.opts, &self.budget);
        let approx: usize = batch.iter().map(|(_, b)| b.as_ref().len() / 10).sum();
        let threads = if approx < PARALLEL_MIN {
            1
        } else {
            self.threads
        };
        // Decode: thread k takes records k, k + n, ... and deals each
        // record's samples to the shards that own them.
        if self.parts.len() < batch.len() {
            self.parts.resize_with(batch.len(), Vec::new);
        }
        let parts = &mut self.parts[..batch.len()];
        for p in parts.iter_mut() {
            p.resize_with(threads, Vec::new);
        }
        let mut results: Vec<Result<(), Error>> = Vec::new();
        {
            let mut outs: Vec<Vec<(usize, &mut Parts)>> =
                (0..threads).map(|_| Vec::new()).collect();
            for (i, p) in parts.iter_mut().enumerate() {
                outs[i % threads].push((i, p));
            }
            let decode = |out: Vec<(usize, &mut Parts)>| {
                for (i, p) in out {
                    let (lsn, bytes) = &batch[i];
                    decode_into(bytes.as_ref(), *lsn, known, &mut p[..threads])?;
                }
                Ok(())
            };
            let mut outs = outs.into_iter();
            let mine = outs.next();
            std::thread::scope(|sc| {
                let handles: Vec<_> = outs.map(|out| sc.spawn(|| decode(out))).collect();
                if let Some(out) = mine {
                    results.push(decode(out));
                }
                results.extend(
                    handles
                        .into_iter()
                        .map(|h| h.join().unwrap_or(Err(panicked()))),
                );
            });
        }
        // The first error in WAL order, as a sequential replay meets it.
        let first_err = results
            .into_iter()
            .filter_map(Result::err)
            .min_by_key(|e| match e {
                Error::BadRecord { lsn, .. } => *lsn,
                _ => 0,
            });
        if let Some(e) = first_err {
            return Err(e);
        }
        // Apply: thread k owns the blocks of ids b with b % n == k.
        let shards = Shard::split(
            threads,
            state.series.runs_mut(BLOCK),
            &mut self.pending,
            &mut self.scratch,
        );
        let parts = &self.parts[..batch.len()];
        run(shards, |shard| shard.apply(batch, parts, opts, budget))
    }

    /// Moves every buffer left into its series' open chunk.
    fn finish(&mut self, state: &mut State) {
        self.pending
            .resize_with(state.series.slots_len(), Pending::default);
        let opts = self.opts;
        let shards = Shard::split(
            self.threads,
            state.series.runs_mut(BLOCK),
            &mut self.pending,
            &mut self.scratch,
        );
        // Flushing cannot fail: a thread that panicked would have said so.
        let _ = run(shards, |shard| {
            for (slots, pending) in shard.blocks.iter_mut() {
                for (s, p) in slots.iter_mut().zip(pending.iter_mut()) {
                    if let Some(s) = s {
                        flush(s, p, opts);
                    }
                    *p = Pending::default();
                }
            }
            Ok(())
        });
        self.pending = Vec::new();
    }
}

/// Runs `f` on each shard, each on its own thread (the first on the
/// calling one), and returns the first error.
fn run<'a, F>(mut shards: Vec<Shard<'a>>, f: F) -> Result<(), Error>
where
    F: Fn(&mut Shard<'a>) -> Result<(), Error> + Sync,
{
    let Some(mut first) = shards.pop() else {
        return Ok(());
    };
    let f = &f;
    let results: Vec<Result<(), Error>> = std::thread::scope(|sc| {
        let handles: Vec<_> = shards
            .into_iter()
            .map(|mut shard| sc.spawn(move || f(&mut shard)))
            .collect();
        let mut results = vec![f(&mut first)];
        results.extend(
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or(Err(panicked()))),
        );
        results
    });
    results.into_iter().collect()
}

/// The series one replay thread may touch, their buffers, its scratch.
struct Shard<'a> {
    /// Its blocks of `BLOCK` slots and their buffers, in id order.
    blocks: Vec<(&'a mut [Option<MemSeries>], &'a mut [Pending])>,
    /// This shard's number and the number of shards.
    k: usize,
    threads: usize,
    scratch: &'a mut Scratch,
}

impl<'a> Shard<'a> {
    /// All `threads` shards, each with its scratch.
    fn split(
        threads: usize,
        slots: impl Iterator<Item = &'a mut [Option<MemSeries>]>,
        pending: &'a mut [Pending],
        scratch: &'a mut [Scratch],
    ) -> Vec<Self> {
        let mut shards: Vec<Shard<'a>> = scratch
            .iter_mut()
            .take(threads)
            .enumerate()
            .map(|(k, scratch)| Shard {
                blocks: Vec::new(),
                k,
                threads,
                scratch,
            })
            .collect();
        let n = shards.len().max(1);
        for (b, blk) in slots.zip(pending.chunks_mut(BLOCK)).enumerate() {
            if let Some(s) = shards.get_mut(b % n) {
                s.blocks.push(blk);
            }
        }
        for s in &mut shards {
            s.threads = n;
        }
        shards
    }

    /// Applies this shard's part of each record (`parts[r][k]`, sorted by
    /// series id), a block of series at a time: the block's buffers stay
    /// in cache while every record's samples of the block go in, where
    /// sample by sample in WAL order each would miss it.
    fn apply<B>(
        &mut self,
        batch: &[(u64, B)],
        parts: &[Parts],
        opts: &HeadOptions,
        budget: &AtomicUsize,
    ) -> Result<(), Error> {
        let mut cur = vec![0usize; parts.len()];
        // The id at each record's cursor (`u64::MAX` past its end), side
        // by side: most records hold nothing of a given block, and
        // reading each one's next entry to find that out cost a cache
        // miss per record and block.
        let mut next: Vec<u64> = parts
            .iter()
            .map(|p| {
                p.get(self.k)
                    .and_then(|l| l.first())
                    .map_or(u64::MAX, |s| s.0)
            })
            .collect();
        for (j, (slots, pending)) in self.blocks.iter_mut().enumerate() {
            let lo = ((j * self.threads + self.k) * BLOCK) as u64;
            let hi = lo + BLOCK as u64;
            for (r, (lsn, _)) in batch.iter().enumerate().take(parts.len()) {
                if next[r] >= hi {
                    continue;
                }
                let (Some(list), Some(c)) = (parts[r].get(self.k), cur.get_mut(r)) else {
                    continue;
                };
                while let Some(&(id, t, v)) = list.get(*c) {
                    if id >= hi {
                        break;
                    }
                    *c += 1;
                    // An id below `lo` would be one of an earlier block,
                    // which took all of them.
                    let i = id.wrapping_sub(lo) as usize;
                    let (Some(Some(s)), Some(p)) = (slots.get_mut(i), pending.get_mut(i)) else {
                        return Err(missing(*lsn));
                    };
                    if p.since > *lsn {
                        return Err(missing(*lsn));
                    }
                    put(s, p, t, v, opts, self.scratch, budget);
                }
                next[r] = list.get(*c).map_or(u64::MAX, |s| s.0);
            }
        }
        Ok(())
    }
}

/// The error of a replay thread that panicked.
fn panicked() -> Error {
    Error::BadRecord {
        lsn: 0,
        offset: 0,
        what: "a replay thread panicked",
    }
}

/// The error of a sample whose series no record created.
fn missing(lsn: u64) -> Error {
    Error::BadRecord {
        lsn,
        offset: 0,
        what: "sample of a series no record created",
    }
}

/// Decodes a `Samples` record (FORMAT.md, "WAL records") into `out`, one
/// vector per shard (cleared first), each sorted by series id (stably: a
/// series' own samples keep their order, and series are independent);
/// every id must be below `known`. The same format and checks as
/// `record::decode`, into reused vectors; on damage it asks
/// `record::decode` for the error, so the message is the same.
fn decode_into(bytes: &[u8], lsn: u64, known: usize, out: &mut [Vec<Sample>]) -> Result<(), Error> {
    for o in out.iter_mut() {
        o.clear();
    }
    let shards = out.len().max(1) as u64;
    match parse_samples(bytes, |id, t, v| {
        out[((id / BLOCK as u64) % shards) as usize].push((id, t, v));
    }) {
        Some(max_id) if n_samples(out) > 0 && max_id >= known as u64 => return Err(missing(lsn)),
        Some(_) => {}
        None => {
            return Err(match record::decode(bytes, lsn) {
                Err(canonical) => canonical,
                // Cannot happen (both read the same format); should they
                // disagree, refuse rather than guess.
                Ok(_) => unreachable_samples(lsn).err().unwrap_or(missing(lsn)),
            });
        }
    }
    for o in out.iter_mut() {
        if !o.is_sorted_by_key(|x| x.0) {
            o.sort_by_key(|x| x.0);
        }
    }
    Ok(())
}

/// Reads a `Samples` record (version 1 or 2, FORMAT.md "WAL records"),
/// calling `each` per sample; the largest id, or `None` where
/// `record::decode` would fail. Its own loop over the bytes, as the
/// decoder's spends most of its time checking one-byte varints for errors
/// one field at a time.
#[inline]
fn parse_samples(b: &[u8], mut each: impl FnMut(u64, i64, f64)) -> Option<u64> {
    let v1 = match b.get(..2)? {
        [SAMPLES_KIND, 1] => true,
        [SAMPLES_KIND, 2] => false,
        _ => return None,
    };
    let mut at = 2;
    let n = uvarint(b, &mut at)?;
    // As `record::decode`: at least 10 (version 1) or 3 bytes a sample.
    if n > ((b.len() - at) / if v1 { 10 } else { 3 }) as u64 {
        return None;
    }
    let raw = |b: &[u8], at: &mut usize| -> Option<f64> {
        let x = u64::from_le_bytes(b.get(*at..*at + 8)?.try_into().ok()?);
        *at += 8;
        Some(f64::from_bits(x))
    };
    let (mut id, mut t, mut max_id) = (0i64, 0i64, 0u64);
    for _ in 0..n {
        id = id.wrapping_add(unzigzag(uvarint(b, &mut at)?));
        t = t.wrapping_add(unzigzag(uvarint(b, &mut at)?));
        let v = if v1 {
            raw(b, &mut at)?
        } else {
            // 0, then the raw bits; else an integer, zigzagged, plus one.
            match uvarint(b, &mut at)? {
                0 => raw(b, &mut at)?,
                u => {
                    let i = unzigzag(u - 1);
                    if i.unsigned_abs() >= 1 << 53 {
                        return None;
                    }
                    i as f64
                }
            }
        };
        max_id = max_id.max(id as u64);
        each(id as u64, t, v);
    }
    (at == b.len()).then_some(max_id)
}

/// A varint as `record::Reader::uvarint` reads it (at most 10 bytes).
#[inline(always)]
fn uvarint(b: &[u8], at: &mut usize) -> Option<u64> {
    let first = *b.get(*at)?;
    *at += 1;
    if first < 0x80 {
        return Some(u64::from(first));
    }
    let mut v = u64::from(first & 0x7f);
    for shift in (7..64).step_by(7) {
        let x = *b.get(*at)?;
        *at += 1;
        v |= u64::from(x & 0x7f) << shift;
        if x & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

#[inline(always)]
fn unzigzag(u: u64) -> i64 {
    (u >> 1) as i64 ^ -((u & 1) as i64)
}

fn n_samples(out: &[Vec<Sample>]) -> usize {
    out.iter().map(Vec::len).sum()
}

/// Applies one sample to series `s` with buffer `p`, as
/// `MemSeries::append` would (module docs).
fn put(
    s: &mut MemSeries,
    p: &mut Pending,
    t: i64,
    v: f64,
    opts: &HeadOptions,
    sc: &mut Scratch,
    budget: &AtomicUsize,
) {
    let policy = &opts.chunk_policy;
    match p.buf.last() {
        Some(&(last, _)) if t > last => {
            if policy.should_cut_len(p.buf.len(), p.buf[0].0, t) {
                seal(s, p, sc, opts);
            }
        }
        Some(_) => {
            flush(s, p, opts);
            ordinary(s, p, t, v, opts);
            return;
        }
        None => {
            commit_frames(s, p);
            if s.max_time().is_some_and(|last| t <= last) {
                ordinary(s, p, t, v, opts);
                return;
            }
            // In order: the open chunk (if any) becomes the buffer.
            let open = s.open.len();
            if !reserve(&mut p.buf, open + 1, policy.max_samples, budget) {
                ordinary(s, p, t, v, opts);
                return;
            }
            if open > 0 {
                p.buf.extend(s.open.samples());
                s.open = OpenChunk::default();
                if policy.should_cut_len(open, p.buf[0].0, t) {
                    seal(s, p, sc, opts);
                }
            }
        }
    }
    let want = p.buf.len() + 1;
    if !reserve(&mut p.buf, want, policy.max_samples, budget) {
        flush(s, p, opts);
        ordinary(s, p, t, v, opts);
        return;
    }
    p.buf.push((t, v));
}

/// The ordinary path. Samples refused when first committed were refused
/// then too; the same rules give the same result.
fn ordinary(s: &mut MemSeries, p: &mut Pending, t: i64, v: f64, opts: &HeadOptions) {
    commit_frames(s, p);
    p.base = None;
    let _ = s.append(t, v, &opts.chunk_policy, opts.out_of_order_window_ms);
}

/// Grows `p` to hold `want` samples if the budget allows; false if not.
fn reserve(p: &mut Vec<(i64, f64)>, want: usize, max_samples: usize, budget: &AtomicUsize) -> bool {
    if p.capacity() >= want {
        return true;
    }
    // A whole chunk at once when chunks are small (the default 240); by
    // doubling when a policy allows huge ones.
    let chunk = max_samples.clamp(1, MAX_SAMPLES);
    let cap = if chunk <= 1024 {
        chunk.max(want)
    } else {
        want.max(p.capacity() * 2).max(64)
    };
    let bytes = (cap - p.capacity()) * std::mem::size_of::<(i64, f64)>();
    let took = budget.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
        left.checked_sub(bytes)
    });
    if took.is_err() {
        return false;
    }
    p.reserve_exact(cap - p.len());
    true
}

/// Seals the buffer into a chunk of `s` (as `MemSeries::cut` seals the
/// open chunk).
fn seal(s: &mut MemSeries, p: &mut Pending, sc: &mut Scratch, opts: &HeadOptions) {
    let (Some(&(mint, _)), Some(&(maxt, _))) = (p.buf.first(), p.buf.last()) else {
        return;
    };
    sc.out.clear();
    if sc.enc.encode(&p.buf, &mut sc.out).is_ok() {
        let base = *p.base.get_or_insert_with(|| s.sealed.last_base());
        let mut frame = [0u8; 32];
        let n = frame_header(&mut frame, sc.out.len(), mint, maxt, base);
        p.frames.extend_from_slice(&frame[..n]);
        p.frames.extend_from_slice(&sc.out);
        p.base = Some(maxt);
        p.buf.clear();
    } else {
        // Cannot happen (the buffer is increasing and at most one chunk);
        // should it, the ordinary path stores the samples all the same.
        flush(s, p, opts);
    }
}

/// Appends the chunks sealed from the buffer to the series.
fn commit_frames(s: &mut MemSeries, p: &mut Pending) {
    if !p.frames.is_empty() {
        s.sealed.append_frames(&p.frames);
        p.frames = Vec::new();
    }
}

/// Makes the buffer the series' open chunk in one step when appending it
/// sample by sample would only append (the open chunk is empty, the
/// buffer comes after the series' last sample, and the policy would cut
/// nowhere in it, which `put` ensures); false, touching nothing, if not.
fn bulk_open(s: &mut MemSeries, p: &Pending, opts: &HeadOptions) -> bool {
    let Some(&(first, _)) = p.buf.first() else {
        return true;
    };
    if !s.open.is_empty() || s.max_time().is_some_and(|last| first <= last) {
        return false;
    }
    let policy = &opts.chunk_policy;
    let cuts = p
        .buf
        .iter()
        .enumerate()
        .skip(1)
        .any(|(n, &(t, _))| policy.should_cut_len(n, first, t));
    !cuts && s.open.append_all(&p.buf).is_ok()
}

/// Moves the sealed chunks and the buffer into the series, the buffer
/// into its open chunk (at once, or sample by sample where that would do
/// more than append).
fn flush(s: &mut MemSeries, p: &mut Pending, opts: &HeadOptions) {
    commit_frames(s, p);
    if bulk_open(s, p, opts) {
        // The series' own path cuts its chunks from here on.
        p.base = None;
        p.buf.clear();
        return;
    }
    let buf = std::mem::take(&mut p.buf);
    for &(t, v) in &buf {
        ordinary(s, p, t, v, opts);
    }
    p.buf = buf;
    p.buf.clear();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::ChunkPolicy;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        /// A sample of series `i`, `dt` after the previous sample's time
        /// (negative: late).
        Sample(usize, i64, f64),
        /// Deletes series `i`'s samples in `[from, from + len]`.
        Delete(usize, i64, i64),
    }

    const STALE: u64 = 0x7ff0_0000_0000_0002;

    fn value() -> impl Strategy<Value = f64> {
        prop_oneof![
            4 => (0..50i64).prop_map(|i| i as f64),
            2 => (0..1000i64).prop_map(|i| i as f64 / 100.0),
            1 => Just(f64::from_bits(STALE)),
            1 => Just(f64::NAN),
            1 => Just(-0.0),
            1 => any::<u64>().prop_map(f64::from_bits),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            20 => (0..3usize, prop_oneof![8 => 1..40i64, 1 => Just(0i64), 2 => -60..0i64], value())
                .prop_map(|(i, dt, v)| Op::Sample(i, dt, v)),
            1 => (0..3usize, -200..200i64, 0..100i64).prop_map(|(i, f, l)| Op::Delete(i, f, l)),
        ]
    }

    /// Applies `ops` to three series sample by sample (`MemSeries::append`,
    /// the reference) and through replay's buffers, after `prefix` ops
    /// applied to both the ordinary way (as a checkpoint would leave
    /// them: open chunks holding samples); the series must come out
    /// byte for byte the same.
    fn check(ops: &[Op], prefix: usize, opts: &HeadOptions, budget: usize) {
        let mut want: Vec<MemSeries> = (0..3).map(|_| MemSeries::default()).collect();
        let mut got: Vec<MemSeries> = (0..3).map(|_| MemSeries::default()).collect();
        let mut pend: Vec<Pending> = (0..3).map(|_| Pending::default()).collect();
        let mut sc = Scratch::default();
        let budget = AtomicUsize::new(budget);
        let mut clock = [0i64; 3];
        let (policy, window) = (&opts.chunk_policy, opts.out_of_order_window_ms);
        for (n, op) in ops.iter().enumerate() {
            match *op {
                Op::Sample(i, dt, v) => {
                    clock[i] += dt;
                    let t = clock[i];
                    let _ = want[i].append(t, v, policy, window);
                    if n < prefix {
                        let _ = got[i].append(t, v, policy, window);
                    } else {
                        put(&mut got[i], &mut pend[i], t, v, opts, &mut sc, &budget);
                    }
                }
                Op::Delete(i, from, len) => {
                    let (lo, hi) = (clock[i] + from, clock[i] + from + len);
                    want[i].delete(lo, hi);
                    flush(&mut got[i], &mut pend[i], opts);
                    got[i].delete(lo, hi);
                }
            }
        }
        for (s, p) in got.iter_mut().zip(&mut pend) {
            flush(s, p, opts);
        }
        for (i, (w, g)) in want.iter().zip(&got).enumerate() {
            assert_eq!(w.sealed.raw(), g.sealed.raw(), "series {i}: sealed chunks");
            assert_eq!(w.open.bytes(), g.open.bytes(), "series {i}: open chunk");
            let ooo = |s: &MemSeries| -> Vec<(i64, u64)> {
                s.ooo_iter().map(|(t, v)| (t, v.to_bits())).collect()
            };
            assert_eq!(ooo(w), ooo(g), "series {i}: out-of-order samples");
            assert_eq!(
                w.sealed.capacity(),
                g.sealed.capacity(),
                "series {i}: fitted"
            );
        }
    }

    fn opts(max_samples: usize, max_span_ms: i64, window: i64) -> HeadOptions {
        HeadOptions {
            chunk_policy: ChunkPolicy {
                max_samples,
                max_span_ms,
            },
            out_of_order_window_ms: window,
            ..HeadOptions::default()
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn buffered_replay_builds_the_same_series(
            ops in prop::collection::vec(op(), 0..400),
            prefix in 0..50usize,
            max_samples in prop_oneof![Just(0usize), 1..8usize, Just(240)],
            max_span_ms in prop_oneof![Just(i64::MAX), 30..300i64],
            window in prop_oneof![Just(0i64), 1..100i64],
            budget in prop_oneof![Just(PENDING_BYTES), Just(0usize), 0..300usize],
        ) {
            check(&ops, prefix, &opts(max_samples, max_span_ms, window), budget);
        }

        #[test]
        fn decode_into_matches_record_decode(
            samples in prop::collection::vec(
                (
                    prop_oneof![0..200u64, Just(u64::MAX)],
                    any::<i64>(),
                    prop_oneof![
                        any::<u64>(),
                        (-1000..1000i64).prop_map(|i| (i as f64).to_bits()),
                        any::<i64>().prop_map(|i| ((i >> 8) as f64).to_bits()),
                    ],
                ),
                0..300,
            ),
            shards in 1..4usize,
            flip in (any::<prop::sample::Index>(), 1..=255u8),
            v1 in any::<bool>(),
        ) {
            let samples: Vec<Sample> =
                samples.into_iter().map(|(id, t, v)| (id, t, f64::from_bits(v))).collect();
            let mut b = Vec::new();
            if v1 {
                // Version 1 (still read): values as their 8 raw bytes.
                b.extend_from_slice(&[SAMPLES_KIND, 1]);
                record::put_uvarint(&mut b, samples.len() as u64);
                let (mut pid, mut pt) = (0i64, 0i64);
                for &(id, t, v) in &samples {
                    record::put_varint(&mut b, (id as i64).wrapping_sub(pid));
                    record::put_varint(&mut b, t.wrapping_sub(pt));
                    b.extend_from_slice(&v.to_bits().to_le_bytes());
                    (pid, pt) = (id as i64, t);
                }
            } else {
                record::encode_samples(&samples, &mut b);
            }
            let known = 150;
            let mut out: Vec<Vec<Sample>> = vec![Vec::new(); shards];
            let got = decode_into(&b, 7, known, &mut out);
            if samples.iter().any(|s| s.0 >= known as u64) {
                prop_assert_eq!(got, Err(missing(7)));
            } else {
                prop_assert!(got.is_ok());
                for (k, o) in out.iter().enumerate() {
                    let mut want: Vec<Sample> = samples
                        .iter()
                        .filter(|s| (s.0 / BLOCK as u64) % shards as u64 == k as u64)
                        .copied()
                        .collect();
                    want.sort_by_key(|s| s.0);
                    let bits = |v: &[Sample]| -> Vec<(u64, i64, u64)> {
                        v.iter().map(|&(i, t, x)| (i, t, x.to_bits())).collect()
                    };
                    prop_assert_eq!(bits(o), bits(&want));
                }
            }
            // A flipped byte: accepted exactly when record::decode accepts
            // it, with the same samples; else its error.
            let mut bad = b.clone();
            let at = flip.0.index(bad.len());
            bad[at] ^= flip.1;
            let got = decode_into(&bad, 7, usize::MAX, &mut out);
            match record::decode(&bad, 7) {
                Err(e) => prop_assert_eq!(got, Err(e)),
                Ok(Record::Samples(list)) if list.iter().any(|s| s.0 == u64::MAX) => {
                    prop_assert_eq!(got, Err(missing(7)));
                }
                Ok(Record::Samples(list)) => {
                    prop_assert!(got.is_ok());
                    let mut all: Vec<(u64, i64, u64)> =
                        out.concat().iter().map(|&(i, t, x)| (i, t, x.to_bits())).collect();
                    let mut want: Vec<(u64, i64, u64)> =
                        list.iter().map(|&(i, t, x)| (i, t, x.to_bits())).collect();
                    all.sort();
                    want.sort();
                    prop_assert_eq!(all, want);
                }
                Ok(_) => prop_assert!(got.is_err()),
            }
            // Damage gives record::decode's own error.
            for cut in [0, 1, 2, b.len() / 2, b.len().saturating_sub(1)] {
                if cut < b.len() {
                    prop_assert_eq!(
                        decode_into(&b[..cut], 7, known, &mut out).err(),
                        record::decode(&b[..cut], 7).err()
                    );
                }
            }
        }
    }

    #[test]
    fn a_regular_series_seals_from_its_buffer() {
        // Many chunks through the buffer, none through the open chunk.
        let ops: Vec<Op> = (0..2000)
            .map(|i| Op::Sample(i % 3, 15, (i / 3) as f64))
            .collect();
        check(&ops, 0, &opts(240, 3_600_000, 0), PENDING_BYTES);
        check(&ops, 700, &opts(120, 1_000, 0), PENDING_BYTES);
    }
}
