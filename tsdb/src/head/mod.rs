//! The head: the series being written, in memory, made durable through
//! vigil-wal.
//!
//! Each series keeps its sealed chunks back to back in one buffer
//! (`series.rs` says why and how), one open chunk, and, when an
//! out-of-order window is set, the late samples it accepted. The open
//! chunk is not compressed: 12 bytes a sample, sealed once it is full (on
//! a background thread unless [`HeadOptions::seal_in_background`] is off).
//! That halves the CPU an append costs against a Gorilla open chunk, and
//! costs memory: about 1.5 KB a series at 120-sample chunks, 2.9 KB at
//! the default 240, against 0.3–0.55 KB (crate README, "Head memory"); a
//! choice of the compressed form is not built yet. An [`Appender`] gathers a batch; its
//! [`commit`](Appender::commit) writes the batch to the WAL as one atomic
//! record batch (durable per the WAL's sync policy) and only then applies it,
//! under the head's write lock, so a querier sees all of a commit or none of
//! it. [`Head::open`] replays the WAL.

mod front;
mod open;
pub mod record;
mod replay;
mod sealer;
mod series;
mod snapshot;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use foldhash::fast::RandomState;
use std::path::Path;

use parking_lot::RwLock;
use vigil_wal::{SyncPolicy, Wal};

use crate::Error;
use crate::chunk::ChunkPolicy;
use crate::index::{Index, Matcher, SeriesId};
use crate::labels::Labels;
use series::MemSeries;

/// How the head behaves.
#[derive(Clone)]
pub struct HeadOptions {
    /// When to cut chunks.
    pub chunk_policy: ChunkPolicy,
    /// Accept samples up to this many milliseconds older than a series'
    /// newest sample (Prometheus's `out_of_order_time_window`). 0, the
    /// default, rejects every out-of-order sample.
    pub out_of_order_window_ms: i64,
    /// The WAL's options (sync policy, segment size, storage).
    pub wal: vigil_wal::Options,
    /// Seal full chunks on a thread of the head's own instead of in the
    /// committing thread (default true): sealing was about 30 % of the
    /// appending thread's CPU, which another core can take. Turn it off
    /// where there is no other core to take it.
    pub seal_in_background: bool,
    /// Under `SyncPolicy::Batch`, the most bytes of committed records the
    /// WAL may hold that are not yet durable: a commit that passes it waits
    /// for the WAL's fsync (`Wal::sync`). `Batch` acknowledges a record once
    /// it is queued, and while the disk stalls the WAL's queue may grow to
    /// 64 MiB or more, all of it resident (README, "Ingest after
    /// midnight"). Default 16 MiB; 0 leaves the queue to the WAL. Other
    /// sync policies ignore it.
    pub wal_lag_bytes: usize,
}

impl Default for HeadOptions {
    fn default() -> Self {
        HeadOptions {
            chunk_policy: ChunkPolicy::default(),
            out_of_order_window_ms: 0,
            wal: vigil_wal::Options::default(),
            seal_in_background: true,
            wal_lag_bytes: 16 << 20,
        }
    }
}

/// Slots per page of the series table (20 KiB a page): a multiple of
/// replay's blocks, small enough that a head of a few series stays small.
const SLOT_PAGE: usize = 256;

/// Series by id. Ids are handed out one after the other, so a table
/// indexed by id is both the smallest and the fastest map. It is kept in
/// pages of `SLOT_PAGE` slots that never move: one growing vector was
/// copied at each growth, and glibc kept the freed copies resident (about
/// 100 of 955 resident bytes per series on the ingest workload).
#[derive(Default)]
struct SeriesTable {
    pages: Vec<Box<[Option<MemSeries>]>>,
    count: usize,
}

impl SeriesTable {
    fn get(&self, id: SeriesId) -> Option<&MemSeries> {
        let i = usize::try_from(id).ok()?;
        self.pages.get(i / SLOT_PAGE)?[i % SLOT_PAGE].as_ref()
    }

    fn get_mut(&mut self, id: SeriesId) -> Option<&mut MemSeries> {
        self.slot_mut(usize::try_from(id).ok()?)?.as_mut()
    }

    /// Slot `i`, empty or not.
    fn slot_mut(&mut self, i: usize) -> Option<&mut Option<MemSeries>> {
        self.pages
            .get_mut(i / SLOT_PAGE)
            .map(|p| &mut p[i % SLOT_PAGE])
    }

    fn contains(&self, id: SeriesId) -> bool {
        self.get(id).is_some()
    }

    /// Slots allocated (ids below this have a slot).
    fn slots_len(&self) -> usize {
        self.pages.len() * SLOT_PAGE
    }

    /// Inserts an empty series; false when `id` is implausibly far beyond
    /// the ids in use (a damaged record), which would cost a huge table.
    fn insert(&mut self, id: SeriesId) -> bool {
        let Ok(i) = usize::try_from(id) else {
            return false;
        };
        if i > self.slots_len() + (1 << 16) {
            return false;
        }
        while self.pages.len() <= i / SLOT_PAGE {
            self.pages.push((0..SLOT_PAGE).map(|_| None).collect());
        }
        let slot = &mut self.pages[i / SLOT_PAGE][i % SLOT_PAGE];
        if slot.is_none() {
            self.count += 1;
        }
        *slot = Some(MemSeries::default());
        true
    }

    /// Drops series `id`; its slot stays empty (ids are never reused).
    fn remove(&mut self, id: SeriesId) -> bool {
        let slot = usize::try_from(id).ok().and_then(|i| self.slot_mut(i));
        match slot {
            Some(s @ Some(_)) => {
                *s = None;
                self.count -= 1;
                true
            }
            _ => false,
        }
    }

    fn len(&self) -> usize {
        self.count
    }

    fn iter(&self) -> impl Iterator<Item = (SeriesId, &MemSeries)> {
        self.pages.iter().enumerate().flat_map(|(p, page)| {
            page.iter()
                .enumerate()
                .filter_map(move |(j, s)| Some(((p * SLOT_PAGE + j) as SeriesId, s.as_ref()?)))
        })
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = &mut MemSeries> {
        self.pages.iter_mut().flat_map(|p| p.iter_mut()).flatten()
    }

    /// The slots in runs of `n` (a divisor of `SLOT_PAGE`), in id order.
    fn runs_mut(&mut self, n: usize) -> impl Iterator<Item = &mut [Option<MemSeries>]> {
        self.pages.iter_mut().flat_map(move |p| p.chunks_mut(n))
    }

    /// Heap bytes of the table itself.
    fn heap_bytes(&self) -> usize {
        self.slots_len() * std::mem::size_of::<Option<MemSeries>>()
            + self.pages.capacity() * std::mem::size_of::<Box<[Option<MemSeries>]>>()
    }
}

struct State {
    /// Labels, interned, and the series found by them.
    index: Index,
    series: SeriesTable,
    next_id: SeriesId,
    /// Series created in memory whose record is not in the WAL yet: the
    /// first commit with a sample of theirs writes it (whichever appender
    /// created them, even one rolled back since).
    unlogged: HashSet<SeriesId, RandomState>,
    /// Samples before this time are refused: their range is already on disk
    /// in a block (Prometheus's "out of bounds").
    min_valid: i64,
    /// Chunks cut by commits and in the background sealer's hands
    /// (`sealer.rs`), by series and mint: they come after the series'
    /// sealed chunks and before its open one. Empty whenever a checkpoint
    /// is encoded, and before a truncation, deletion or collection.
    pending: BTreeMap<(SeriesId, i64), Pending>,
}

/// A chunk in the sealer's hands, in its raw form (`open.rs`).
struct Pending {
    maxt: i64,
    /// The commit's cut chunks, shared with the sealer, and which is this.
    bufs: Arc<Vec<Vec<u8>>>,
    i: usize,
}

impl Pending {
    fn bytes(&self) -> &[u8] {
        self.bufs.get(self.i).map_or(&[], Vec::as_slice)
    }
}

impl State {
    /// Creates series `id`; false if the id is not plausible.
    fn create(&mut self, id: SeriesId, labels: Labels) -> bool {
        if self.series.contains(id) {
            // Two commits may both have logged a new series; the first wins.
            return true;
        }
        if !self.series.insert(id) {
            return false;
        }
        self.index.add(id, &labels);
        self.next_id = self.next_id.max(id + 1);
        true
    }
}

impl State {
    /// The id of the series with exactly `labels`.
    fn lookup(&self, labels: &Labels) -> Option<SeriesId> {
        self.index.lookup(labels)
    }
}

/// What a commit did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CommitSummary {
    /// Samples stored.
    pub appended: usize,
    /// Samples that were already stored with the same value (ignored).
    pub duplicates: usize,
    /// Samples of series the head dropped (by [`Head::gc_series`]) between
    /// their `append_ref` and the commit: not stored; append them again by
    /// labels.
    pub unknown_series: usize,
}

/// What [`Head::stats`] reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeadStats {
    /// Series and label statistics from the index.
    pub index: crate::index::IndexStats,
    /// Chunks in memory.
    pub chunks: usize,
    /// Oldest and newest sample time, if any.
    pub time_range: Option<(i64, i64)>,
}

/// Where the head's memory goes, in heap bytes: capacities, so what the
/// allocator was asked for, without its own per-allocation overhead (see
/// [`Head::memory`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeadMemory {
    /// Series in the head.
    pub series: usize,
    /// The table of series by id: one slot per id ever handed out, and
    /// the lock-free copy of each series' newest timestamp (8 bytes an id).
    pub series_table: usize,
    /// Sealed chunks, with their framing (length and time range).
    pub sealed_chunks: usize,
    /// Open chunks' buffers.
    pub open_chunks: usize,
    /// Out-of-order samples (estimated from B-tree node sizes).
    pub out_of_order: usize,
    /// Series created but not yet logged to the WAL.
    pub unlogged: usize,
    /// The index: interned label strings, per-series label references,
    /// the label-set table, postings.
    pub index: crate::index::IndexMemory,
}

impl HeadMemory {
    /// The sum of every part.
    pub fn total(&self) -> usize {
        self.series_table
            + self.sealed_chunks
            + self.open_chunks
            + self.out_of_order
            + self.unlogged
            + self.index.total()
    }
}

/// Committed WAL bytes not yet seen durable, for
/// [`HeadOptions::wal_lag_bytes`]: each commit's end and the running total
/// of bytes written at it.
#[derive(Default)]
struct WalLag {
    total: u64,
    durable: u64,
    marks: std::collections::VecDeque<(u64, u64)>,
}

impl WalLag {
    /// Notes a commit's records (ending before LSN `end`, `bytes` long)
    /// and waits for the WAL's fsync if more than `limit` bytes are not
    /// durable (0: no limit).
    fn wrote(&mut self, wal: &Wal, end: u64, bytes: u64, limit: usize) {
        if limit == 0 {
            return;
        }
        self.total += bytes;
        self.marks.push_back((end, self.total));
        if self.total - self.durable <= limit as u64 {
            return;
        }
        // Records at or below `durable_lsn` are durable.
        let durable = wal.durable_lsn();
        while let Some(&(e, t)) = self.marks.front() {
            if e > durable.saturating_add(1) {
                break;
            }
            self.durable = t;
            self.marks.pop_front();
        }
        // This commit's records are queued and acknowledged, as `Batch`
        // promises, whatever the fsync does: its failure is the WAL's to
        // report (to the next `sync`, or to appends once its queue is
        // full), not a reason to leave the batch unapplied here.
        if self.total - self.durable > limit as u64 && wal.sync().is_ok() {
            self.durable = self.total;
            self.marks.clear();
        }
    }
}

/// The in-memory head of the store, durable through its WAL.
///
/// ```
/// use vigil_tsdb::head::{Head, HeadOptions};
/// use vigil_tsdb::index::Matcher;
/// use vigil_tsdb::labels::Labels;
///
/// let dir = std::env::temp_dir().join(format!("vigil-head-doc-{}", std::process::id()));
/// # let _ = std::fs::remove_dir_all(&dir);
/// let head = Head::open(&dir, HeadOptions::default())?;
/// let up = Labels::new([("__name__", "up"), ("job", "node")])?;
/// let mut app = head.appender();
/// let r = app.append(&up, 1_000, 1.0)?;
/// app.append_ref(r, 16_000, 0.0)?;
/// app.commit()?;
/// drop(head);
///
/// let head = Head::open(&dir, HeadOptions::default())?; // replays the WAL
/// let series = head.querier(0, 20_000).select(&[Matcher::equal("job", "node")]);
/// let samples: Vec<(i64, f64)> = series[0].samples().collect::<Result<_, _>>()?;
/// assert_eq!(samples, [(1_000, 1.0), (16_000, 0.0)]);
/// # drop(head); std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), vigil_tsdb::Error>(())
/// ```
pub struct Head {
    wal: Option<Wal>,
    opts: HeadOptions,
    state: RwLock<State>,
    /// Held from a commit's WAL write until its samples are applied, and by
    /// a checkpoint, so that a checkpoint's state and WAL position agree.
    /// It guards what commits have written and not seen durable yet.
    commit: parking_lot::Mutex<WalLag>,
    /// Series collections so far ([`Head::gc_series`]): a commit whose
    /// appends all came after the last one need not look for collected
    /// series.
    gc_epoch: AtomicU64,
    /// Each series' newest timestamp, for `append_ref` to check without
    /// the state lock (`front.rs`); written under the write lock.
    front: front::Front,
    /// `State::min_valid`, for the same reader.
    min_valid: AtomicI64,
    /// Seals the chunks commits cut (`sealer.rs`), if
    /// `seal_in_background`: started by the first commit that cuts a
    /// chunk (a thread's stack and malloc arena cost a head that never
    /// fills a chunk about 200 KB); `None` inside if it could not start.
    sealer: std::sync::OnceLock<Option<sealer::Sealer>>,
}

impl Head {
    /// A head that keeps nothing on disk (tests, caches).
    pub fn in_memory(opts: HeadOptions) -> Head {
        Head::new(None, opts, State::new())
    }

    /// Opens the head whose WAL lives in `dir` (created if missing) and
    /// replays it.
    pub fn open(dir: impl AsRef<Path>, opts: HeadOptions) -> Result<Head, Error> {
        let wal = Wal::open(dir.as_ref(), opts.wal.clone())?;
        // Start from the newest checkpoint, then replay what follows it.
        let (mut state, from) = match wal.latest_snapshot()? {
            Some(snap) => (
                snapshot::decode(&snap.data, snap.lsn, &opts.chunk_policy)?,
                snap.lsn + 1,
            ),
            None => (State::new(), wal.oldest_lsn()),
        };
        replay::replay(&wal, from, &mut state, &opts)?;
        Ok(Head::new(Some(wal), opts, state))
    }

    fn new(wal: Option<Wal>, opts: HeadOptions, state: State) -> Head {
        let head = Head {
            sealer: std::sync::OnceLock::new(),
            wal,
            opts,
            min_valid: AtomicI64::new(state.min_valid),
            state: RwLock::new(state),
            commit: parking_lot::Mutex::new(WalLag::default()),
            gc_epoch: AtomicU64::new(0),
            front: front::Front::default(),
        };
        head.refresh_front(&head.state.read());
        head
    }

    /// The background sealer, if started.
    fn sealer(&self) -> Option<&sealer::Sealer> {
        self.sealer.get().and_then(Option::as_ref)
    }

    /// Whether a commit may hand its cut chunks to the sealer: it is on,
    /// not failed to start, and not behind.
    fn may_defer(&self) -> bool {
        self.opts.seal_in_background
            && self.opts.out_of_order_window_ms == 0
            && match self.sealer.get() {
                None => true,
                Some(s) => s
                    .as_ref()
                    .is_some_and(|s| s.in_flight() < sealer::MAX_IN_FLIGHT),
            }
    }

    /// Appends the chunks the background sealer has sealed to their
    /// series (in the order they were cut) and drops their pending copies.
    fn swap_sealed(&self, st: &mut State) {
        let Some(sealer) = self.sealer() else { return };
        for batch in sealer.take_done() {
            for (job, bytes) in batch.iter() {
                if st.pending.remove(&(job.id, job.mint)).is_some() {
                    if let Some(s) = st.series.get_mut(job.id) {
                        s.sealed.push(job.mint, job.maxt, bytes);
                    }
                }
            }
            sealer.recycle(batch);
        }
    }

    /// Waits until every chunk handed to the background sealer is back,
    /// and appends it to its series; seals here whatever the sealer did
    /// not take (its thread gone). Afterwards no chunk is pending: what
    /// follows sees the series as sealing in place leaves them. Callers
    /// hold the commit lock, so no commit hands over more.
    fn settle_seals(&self) {
        if let Some(sealer) = self.sealer() {
            loop {
                // Read before swapping: a count of 0 means every chunk is
                // already back.
                let idle = sealer.in_flight() == 0 || sealer.is_gone();
                self.swap_sealed(&mut self.state.write());
                if idle {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_micros(100));
            }
        }
        let mut st = self.state.write();
        if st.pending.is_empty() {
            return;
        }
        let mut enc = crate::chunk::Encoder::new();
        let (mut samples, mut out) = (Vec::new(), Vec::new());
        // In key order: by series, then mint, the order they were cut.
        for ((id, mint), p) in std::mem::take(&mut st.pending) {
            out.clear();
            sealer::seal(&mut enc, &mut samples, p.bytes(), &mut out);
            if let Some(s) = st.series.get_mut(id) {
                s.sealed.push(mint, p.maxt, &out);
            }
        }
    }

    /// Writes every series' newest timestamp into `front` (after a change
    /// to many series; callers hold the write lock, or own the head).
    fn refresh_front(&self, st: &State) {
        for (id, s) in st.series.iter() {
            self.front.set(id, s.max_time());
        }
    }

    /// Saves the whole head as a checkpoint in the WAL directory (atomically:
    /// written, fsynced and renamed by vigil-wal) and drops the WAL records
    /// it covers, so the next [`Head::open`] loads it instead of replaying
    /// them. Returns the WAL position it covers. Commits wait meanwhile.
    pub fn checkpoint(&self) -> Result<u64, Error> {
        let Some(wal) = &self.wal else { return Ok(0) };
        let _commits = self.commit.lock();
        self.settle_seals();
        let (lsn, data) = {
            let st = self.state.read();
            let mut data = Vec::new();
            snapshot::encode(&st, &mut data);
            (wal.last_lsn(), data)
        };
        wal.save_snapshot(lsn, &data)?;
        Ok(lsn)
    }

    /// A reader of the head's WAL from sequence number `from` (0: the
    /// oldest kept), for a consumer that follows what is committed (remote
    /// write's WAL watcher); decode what it yields with
    /// [`record::decode`]. `None` for a head kept only in memory. A position
    /// a checkpoint already dropped is `vigil_wal::Error::Truncated`; hold
    /// it with [`hold_wal`](Head::hold_wal).
    pub fn wal_reader(&self, from: u64) -> Result<Option<vigil_wal::Reader>, Error> {
        match &self.wal {
            Some(wal) => Ok(Some(wal.reader(from)?)),
            None => Ok(None),
        }
    }

    /// The WAL's oldest kept and last written sequence numbers (`(0, 0)`
    /// for a head kept only in memory).
    pub fn wal_bounds(&self) -> (u64, u64) {
        match &self.wal {
            Some(wal) => (wal.oldest_lsn(), wal.last_lsn()),
            None => (0, 0),
        }
    }

    /// Keeps the WAL's records from `lsn` on through checkpoints (see
    /// `vigil_wal::Wal::hold_front`) until moved or released (`None`): the
    /// checkpoint is still taken, only the deletion of segments waits, so a
    /// WAL follower that is behind (a remote-write receiver is down) loses
    /// nothing. The WAL grows while it is held.
    pub fn hold_wal(&self, lsn: Option<u64>) {
        if let Some(wal) = &self.wal {
            wal.hold_front(lsn);
        }
    }

    /// The labels of the series with id `id` (the ids of WAL records), if
    /// the head still holds it.
    pub fn series_labels(&self, id: SeriesId) -> Option<Labels> {
        self.state.read().index.labels(id)
    }

    /// Drops from memory every chunk that ends before `t`, and late samples
    /// before `t` (after they went into a block). Chunks that straddle `t`
    /// stay whole; readers merging head and blocks drop the duplicates. Call
    /// [`checkpoint`](Head::checkpoint) after it, or a restart replays the
    /// dropped samples from the WAL again.
    pub fn truncate_before(&self, t: i64) {
        let _commits = self.commit.lock();
        self.settle_seals();
        let mut st = self.state.write();
        st.min_valid = st.min_valid.max(t);
        self.min_valid.store(st.min_valid, Ordering::Release);
        for slot in st.series.iter_mut() {
            slot.truncate_before(t);
        }
        self.refresh_front(&st);
    }

    /// Cardinality and size of the head: the index's statistics (see
    /// [`Index::stats`](crate::index::Index::stats), `top` entries per
    /// list), the number of chunks (sealed plus open ones holding samples)
    /// and the time range.
    pub fn stats(&self, top: usize) -> HeadStats {
        let st = self.state.read();
        let chunks = st
            .series
            .iter()
            .map(|(_, s)| s.sealed.len() + usize::from(!s.open.is_empty()))
            .sum::<usize>()
            + st.pending.len();
        HeadStats {
            index: st.index.stats(top),
            chunks,
            time_range: self.time_range_locked(&st),
        }
    }

    /// Where the head's memory goes, part by part ([`HeadMemory`]); walks
    /// every series under the read lock.
    pub fn memory(&self) -> HeadMemory {
        let st = self.state.read();
        let mut m = HeadMemory {
            series: st.series.len(),
            series_table: st.series.heap_bytes() + self.front.heap_bytes(),
            unlogged: st.unlogged.capacity() * 9,
            index: st.index.memory(),
            ..HeadMemory::default()
        };
        // Chunks in the sealer's hands count as sealed ones, at their open
        // size.
        m.sealed_chunks += st.pending.values().map(|p| p.bytes().len()).sum::<usize>();
        for (_, s) in st.series.iter() {
            let (sealed, open, ooo) = s.heap_bytes();
            m.sealed_chunks += sealed;
            m.open_chunks += open;
            m.out_of_order += ooo;
        }
        m
    }

    /// Drops every series that holds no sample any more (after
    /// [`truncate_before`](Head::truncate_before) moved its data into a
    /// block), with its index entries, as Prometheus's head garbage
    /// collection does, so a store with churning series does not grow for
    /// ever. A series created by an appender that has not committed yet is
    /// kept. References to dropped series fail with
    /// [`Error::UnknownSeries`]; append by labels to create the series anew.
    /// Call [`checkpoint`](Head::checkpoint) after it, or a restart replays
    /// the dropped series from the WAL. Returns how many were dropped.
    pub fn gc_series(&self) -> usize {
        let _commits = self.commit.lock();
        self.settle_seals();
        let mut st = self.state.write();
        let dead: Vec<SeriesId> = st
            .series
            .iter()
            .filter(|(id, s)| s.is_empty() && !st.unlogged.contains(id))
            .map(|(id, _)| id)
            .collect();
        for &id in &dead {
            st.index.remove(id);
            st.series.remove(id);
            self.front.forget(id);
        }
        if !dead.is_empty() {
            self.gc_epoch.fetch_add(1, Ordering::Release);
        }
        dead.len()
    }

    /// Deletes the samples in `[mint, maxt]` of every series `matchers`
    /// select, durably: the deletion is a WAL record, replayed on restart.
    /// Returns how many series it touched.
    pub fn delete(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<usize, Error> {
        let _commits = self.commit.lock();
        self.settle_seals();
        let ids = self.state.read().index.select(matchers);
        let ranges: Vec<(SeriesId, i64, i64)> = ids.iter().map(|&id| (id, mint, maxt)).collect();
        if ranges.is_empty() {
            return Ok(0);
        }
        if let Some(wal) = &self.wal {
            let mut b = Vec::new();
            record::encode_delete(&ranges, &mut b);
            wal.append(&b)?;
        }
        let mut st = self.state.write();
        for &(id, lo, hi) in &ranges {
            if let Some(s) = st.series.get_mut(id) {
                s.delete(lo, hi);
                self.front.set(id, s.max_time());
            }
        }
        Ok(ranges.len())
    }

    /// The earliest timestamp the head accepts (samples before it belong to
    /// ranges already cut into blocks).
    pub fn min_valid_time(&self) -> i64 {
        self.state.read().min_valid
    }

    /// Refuse samples before `t` from now on (the store sets this to the end
    /// of its newest block when it opens).
    pub fn set_min_valid_time(&self, t: i64) {
        let mut st = self.state.write();
        st.min_valid = st.min_valid.max(t);
        self.min_valid.store(st.min_valid, Ordering::Release);
    }

    /// The time range of the samples in memory, if any.
    pub fn time_range(&self) -> Option<(i64, i64)> {
        let st = self.state.read();
        self.time_range_locked(&st)
    }

    fn time_range_locked(&self, st: &State) -> Option<(i64, i64)> {
        let mut range: Option<(i64, i64)> = None;
        for (_, s) in st.series.iter() {
            if let (Some(lo), Some(hi)) = (s.min_time(), s.max_time()) {
                range = Some(range.map_or((lo, hi), |(a, b)| (a.min(lo), b.max(hi))));
            }
        }
        // A pending chunk may be a series' first (its open chunk, after
        // it, holds the newest sample).
        for &(_, lo) in st.pending.keys() {
            range = range.map(|(a, b)| (a.min(lo), b));
        }
        range
    }

    /// A new batch of appends.
    pub fn appender(&self) -> Appender<'_> {
        self.appender_with_capacity(0)
    }

    /// A new batch with room for `samples` samples (a scrape knows its size).
    pub fn appender_with_capacity(&self, samples: usize) -> Appender<'_> {
        Appender {
            head: self,
            samples: Vec::with_capacity(samples),
            front: front::Cursor::default(),
            gc_epoch: self.gc_epoch.load(Ordering::Acquire),
        }
    }

    /// Number of series.
    pub fn num_series(&self) -> usize {
        self.state.read().series.len()
    }

    /// A querier over samples with `mint <= t <= maxt`.
    pub fn querier(&self, mint: i64, maxt: i64) -> Querier<'_> {
        Querier {
            head: self,
            mint,
            maxt,
        }
    }

    /// The series reference for `labels`, creating the series (in memory)
    /// if needed; also says whether it was created.
    fn get_or_create(&self, labels: &Labels) -> (SeriesId, bool) {
        if let Some(id) = self.state.read().lookup(labels) {
            return (id, false);
        }
        let mut st = self.state.write();
        if let Some(id) = st.lookup(labels) {
            return (id, false);
        }
        let id = st.next_id;
        // next_id is always plausible.
        let _ = st.create(id, labels.clone());
        self.front.set(id, None);
        if self.wal.is_some() {
            st.unlogged.insert(id);
        }
        (id, true)
    }
}

impl State {
    fn new() -> State {
        State {
            index: Index::new(),
            series: SeriesTable::default(),
            next_id: 1,
            unlogged: HashSet::default(),
            min_valid: i64::MIN,
            pending: BTreeMap::new(),
        }
    }
}

/// A batch of samples, durable and visible together at [`commit`](Appender::commit).
pub struct Appender<'h> {
    head: &'h Head,
    samples: Vec<(SeriesId, i64, f64)>,
    /// `front`'s page of the last id checked.
    front: front::Cursor<'h>,
    /// `Head::gc_epoch` when the appender was made: every series it
    /// appended to existed at or after this collection.
    gc_epoch: u64,
}

impl Appender<'_> {
    /// Adds a sample for the series `labels`; returns its reference for
    /// [`append_ref`](Appender::append_ref). A sample older than the series'
    /// newest committed one (beyond the out-of-order window) is refused here;
    /// one that is out of order only against this batch's own samples, or a
    /// second value at a stored timestamp, is refused by the commit (as
    /// Prometheus does).
    pub fn append(&mut self, labels: &Labels, t: i64, v: f64) -> Result<SeriesId, Error> {
        if labels.is_empty() {
            return Err(Error::InvalidLabels {
                reason: "a series needs at least one label".into(),
            });
        }
        let (id, _) = self.head.get_or_create(labels);
        self.append_ref(id, t, v)?;
        Ok(id)
    }

    /// Adds a sample for a series by reference (fast path: no label lookup).
    pub fn append_ref(&mut self, id: SeriesId, t: i64, v: f64) -> Result<(), Error> {
        // Without the lock first: the same checks against front.rs's copy
        // of what the locked path reads below.
        let last = self.head.front.get_at(&mut self.front, id);
        if last != front::ASK {
            let min_valid = self.head.min_valid.load(Ordering::Acquire);
            if t < min_valid {
                return Err(Error::OutOfBounds { t, min_valid });
            }
            let window = self.head.opts.out_of_order_window_ms;
            if last != front::EMPTY && t < last && (window == 0 || last.saturating_sub(t) > window)
            {
                return Err(Error::OutOfOrderSample { t, last });
            }
            self.samples.push((id, t, v));
            return Ok(());
        }
        let st = self.head.state.read();
        let s = st.series.get(id).ok_or(Error::UnknownSeries(id))?;
        if t < st.min_valid {
            return Err(Error::OutOfBounds {
                t,
                min_valid: st.min_valid,
            });
        }
        if let Some(last) = s.max_time() {
            let window = self.head.opts.out_of_order_window_ms;
            if t < last && (window == 0 || last.saturating_sub(t) > window) {
                return Err(Error::OutOfOrderSample { t, last });
            }
        }
        drop(st);
        self.samples.push((id, t, v));
        Ok(())
    }

    /// Writes the batch to the WAL and, once it is there, makes it visible.
    /// Samples that turn out to be out of order against another appender's
    /// commit are refused with an error; the others are kept.
    pub fn commit(mut self) -> Result<CommitSummary, Error> {
        // The samples record is encoded before the commit lock is taken,
        // so beside another thread's commit.
        let mut samples_rec = Vec::new();
        if self.head.wal.is_some() && !self.samples.is_empty() {
            record::encode_samples(&self.samples, &mut samples_rec);
        }
        let mut lag = self.head.commit.lock();
        let mut summary = CommitSummary::default();
        // The commit lock keeps series collection out until the batch is
        // applied; a series collected since its append_ref is left out of
        // the WAL too, so a replay never meets a sample without its series.
        // No collection since the appender was made: nothing to look for
        // (a pass over every sample's series, each a cache miss).
        if self.head.gc_epoch.load(Ordering::Acquire) != self.gc_epoch {
            let st = self.head.state.read();
            let before = self.samples.len();
            self.samples.retain(|s| st.series.contains(s.0));
            summary.unknown_series = before - self.samples.len();
            if summary.unknown_series > 0 {
                samples_rec.clear();
                if self.head.wal.is_some() && !self.samples.is_empty() {
                    record::encode_samples(&self.samples, &mut samples_rec);
                }
            }
        }
        let mut logged: Vec<SeriesId> = Vec::new();
        if let Some(wal) = &self.head.wal {
            let series: Vec<(SeriesId, Labels)> = {
                let st = self.head.state.read();
                if st.unlogged.is_empty() {
                    Vec::new()
                } else {
                    let mut ids: Vec<SeriesId> = self
                        .samples
                        .iter()
                        .map(|s| s.0)
                        .filter(|id| st.unlogged.contains(id))
                        .collect();
                    ids.sort_unstable();
                    ids.dedup();
                    ids.into_iter()
                        .filter_map(|id| st.index.labels(id).map(|l| (id, l)))
                        .collect()
                }
            };
            let mut series_rec = Vec::new();
            let mut recs: Vec<&[u8]> = Vec::with_capacity(2);
            if !series.is_empty() {
                record::encode_series(&series, &mut series_rec);
                recs.push(&series_rec);
            }
            if !samples_rec.is_empty() {
                recs.push(&samples_rec);
            }
            if !recs.is_empty() {
                let lsns = wal.append_batch(&recs)?;
                if let SyncPolicy::Batch { .. } = self.head.opts.wal.sync {
                    let bytes = recs.iter().map(|r| r.len() as u64).sum();
                    lag.wrote(wal, lsns.end, bytes, self.head.opts.wal_lag_bytes);
                }
            }
            logged = series.into_iter().map(|(id, _)| id).collect();
        }
        let opts = &self.head.opts;
        let mut st = self.head.state.write();
        self.head.swap_sealed(&mut st);
        // Chunks this commit cuts go to the background sealer, unless it
        // is behind (then they are sealed here, as without it).
        let defer = self.head.may_defer();
        let mut seals = match (self.head.sealer(), defer) {
            (Some(sealer), true) => sealer.jobs(),
            _ => series::SealJobs::default(),
        };
        for id in logged {
            st.unlogged.remove(&id);
        }
        let mut first_err = None;
        let mut cursor = front::Cursor::default();
        for &(id, t, v) in &self.samples {
            let min_valid = st.min_valid;
            let Some(s) = st.series.get_mut(id) else {
                continue;
            };
            if t < min_valid {
                first_err.get_or_insert(Error::OutOfBounds { t, min_valid });
                continue;
            }
            let window = opts.out_of_order_window_ms;
            let stored = if defer {
                s.append_deferring(id, t, v, &opts.chunk_policy, window, &mut seals)
            } else {
                s.append(t, v, &opts.chunk_policy, window)
            };
            if matches!(stored, Ok(true)) {
                self.head.front.set_at(&mut cursor, id, s.max_time());
            }
            match stored {
                Ok(true) => summary.appended += 1,
                Ok(false) => summary.duplicates += 1,
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        let spare = std::mem::take(&mut seals.spare);
        if let (Some(sealer), false) = (self.head.sealer(), spare.is_empty()) {
            sealer.give_spare(spare);
        }
        if !seals.jobs.is_empty() {
            // Readable from here on, under the same lock as the samples.
            let bufs = Arc::new(seals.bufs);
            for job in &seals.jobs {
                let p = Pending {
                    maxt: job.maxt,
                    bufs: bufs.clone(),
                    i: job.at.start,
                };
                st.pending.insert((job.id, job.mint), p);
            }
            drop(st);
            let sealer = self.head.sealer.get_or_init(sealer::Sealer::start);
            if let Some(sealer) = sealer {
                // If its thread is gone, they wait for `settle_seals`.
                let _ = sealer.send(bufs, seals.jobs);
            }
            // If it could not start, they wait for `settle_seals` too, and
            // later commits seal in place.
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(summary),
        }
    }

    /// Drops the batch. Series it created stay (empty, and not logged until
    /// a sample of theirs is committed), as in Prometheus.
    pub fn rollback(self) {}
}

/// Reads the head over a time range.
pub struct Querier<'h> {
    head: &'h Head,
    mint: i64,
    maxt: i64,
}

impl Querier<'_> {
    /// The series all `matchers` select whose chunks overlap the range,
    /// sorted by labels, each with a lazily decoded sample iterator over a
    /// snapshot taken now. (Overlap is judged by chunk, so an iterator may
    /// yield nothing when a chunk spans the range without a sample in it.)
    pub fn select(&self, matchers: &[Matcher]) -> Vec<Series> {
        let st = self.head.state.read();
        let mut out = Vec::new();
        for id in st.index.select(matchers) {
            let Some(s) = st.series.get(id) else {
                continue;
            };
            // The chunks in range are contiguous in the series' buffer:
            // one copy of their frames, plus the open chunk framed the same
            // way, is the snapshot this series' iterator reads.
            let mut data = Vec::new();
            let mut base = 0;
            let mut start = None;
            let mut end = 0;
            let mut prev = 0;
            for c in s.sealed.iter() {
                if c.maxt < self.mint {
                    continue;
                }
                if c.mint > self.maxt {
                    break;
                }
                if start.is_none() {
                    start = Some(c.start);
                    base = c.base;
                }
                end = c.end;
                prev = c.maxt;
            }
            if let Some(start) = start {
                data.extend_from_slice(&s.sealed.raw()[start..end]);
            }
            if !st.pending.is_empty() {
                // Chunks in the sealer's hands, framed as the sealed ones.
                for (&(_, lo), p) in st.pending.range((id, i64::MIN)..=(id, i64::MAX)) {
                    if lo > self.maxt || p.maxt < self.mint {
                        continue;
                    }
                    let mut frame = [0u8; 32];
                    let n = series::frame_header(&mut frame, p.bytes().len(), lo, p.maxt, prev);
                    data.extend_from_slice(&frame[..n]);
                    data.extend_from_slice(p.bytes());
                    prev = p.maxt;
                }
            }
            if let (Some(lo), Some(hi)) = (s.open.first_time(), s.open.last_time()) {
                if lo <= self.maxt && hi >= self.mint {
                    let mut frame = [0u8; 32];
                    let n = series::frame_header(&mut frame, s.open.bytes().len(), lo, hi, prev);
                    data.reserve_exact(n + s.open.bytes().len());
                    data.extend_from_slice(&frame[..n]);
                    data.extend_from_slice(s.open.bytes());
                }
            }
            let ooo = s.ooo_range(self.mint, self.maxt);
            if data.is_empty() && ooo.is_empty() {
                continue;
            }
            let Some(labels) = st.index.labels(id) else {
                continue;
            };
            out.push(Series {
                id,
                labels,
                data,
                base,
                ooo,
                mint: self.mint,
                maxt: self.maxt,
            });
        }
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }

    /// Label names of the selected series (all series with no matchers).
    pub fn label_names(&self, matchers: &[Matcher]) -> Vec<String> {
        self.head.state.read().index.label_names(matchers)
    }

    /// Values of label `name` among the selected series.
    pub fn label_values(&self, name: &str, matchers: &[Matcher]) -> Vec<String> {
        self.head.state.read().index.label_values(name, matchers)
    }
}

/// One selected series: its labels and its samples in the range.
pub struct Series {
    /// The series reference.
    pub id: SeriesId,
    /// The labels.
    pub labels: Labels,
    /// Framed chunks as in the head (`series.rs`), the open one last.
    data: Vec<u8>,
    /// What the first frame's mint is relative to.
    base: i64,
    ooo: Vec<(i64, f64)>,
    mint: i64,
    maxt: i64,
}

impl Series {
    /// The samples, oldest first, decoded as they are read.
    pub fn samples(&self) -> SeriesSamples<'_> {
        SeriesSamples {
            s: self,
            chunks: series::SealedIter::new(&self.data, self.base),
            buf: Vec::new(),
            at: 0,
            ooo: 0,
            failed: false,
        }
    }
}

/// Iterator over a [`Series`]' samples: in-order chunks merged with the
/// out-of-order samples.
pub struct SeriesSamples<'s> {
    s: &'s Series,
    chunks: series::SealedIter<'s>,
    buf: Vec<(i64, f64)>,
    at: usize,
    ooo: usize,
    failed: bool,
}

impl SeriesSamples<'_> {
    /// The next in-order sample in range, decoding chunks as needed.
    fn peek_in_order(&mut self) -> Option<Result<(i64, f64), Error>> {
        loop {
            if let Some(&x) = self.buf.get(self.at) {
                if x.0 < self.s.mint {
                    self.at += 1;
                    continue;
                }
                if x.0 > self.s.maxt {
                    return None;
                }
                return Some(Ok(x));
            }
            let bytes = self.chunks.next()?.bytes;
            self.buf.clear();
            self.at = 0;
            if let Err(e) = open::decode_into(bytes, &mut self.buf) {
                return Some(Err(e));
            }
        }
    }
}

impl Iterator for SeriesSamples<'_> {
    type Item = Result<(i64, f64), Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let late = self.s.ooo.get(self.ooo).copied();
        match self.peek_in_order() {
            Some(Err(e)) => {
                self.failed = true;
                Some(Err(e))
            }
            Some(Ok(x)) => match late {
                Some(o) if o.0 < x.0 => {
                    self.ooo += 1;
                    Some(Ok(o))
                }
                Some(o) if o.0 == x.0 => {
                    self.ooo += 1;
                    self.at += 1;
                    Some(Ok(x))
                }
                _ => {
                    self.at += 1;
                    Some(Ok(x))
                }
            },
            None => {
                self.ooo += 1;
                late.map(Ok)
            }
        }
    }
}

#[cfg(test)]
mod lag_tests {
    use super::*;
    use std::time::Duration;

    /// Under a batch policy that would not write for an hour, commits past
    /// the bound wait for the fsync: what is not durable never exceeds it
    /// by more than one commit, and below the bound nothing is forced.
    #[test]
    fn a_commit_past_the_lag_bound_waits_for_the_fsync() {
        let dir = tempfile::tempdir().unwrap();
        let opts = vigil_wal::Options::default().sync(SyncPolicy::Batch {
            max_delay: Duration::from_secs(3600),
            max_bytes: 1 << 30,
        });
        let wal = Wal::open(dir.path(), opts).unwrap();
        let mut lag = WalLag::default();
        let rec = vec![7u8; 1000];
        let mut sizes = Vec::new();
        for i in 0..40u64 {
            let lsns = wal.append_batch(&[&rec]).unwrap();
            lag.wrote(&wal, lsns.end, 1000, 10_000);
            sizes.push(lsns.end);
            let durable = wal.durable_lsn();
            // Records above `durable` are the ones not on disk.
            let open = sizes.iter().filter(|&&e| e > durable + 1).count() as u64;
            assert!(
                open * 1000 <= 10_000,
                "commit {i}: {open} records not durable"
            );
            if i < 10 {
                assert!(open == i + 1, "commit {i}: forced a sync below the bound");
            }
        }
        // Without a bound, nothing is forced.
        let mut free = WalLag::default();
        let before = wal.durable_lsn();
        for _ in 0..40 {
            let lsns = wal.append_batch(&[&rec]).unwrap();
            free.wrote(&wal, lsns.end, 1000, 0);
        }
        assert_eq!(wal.durable_lsn(), before);
    }
}
