//! The log: appenders, group commit, segment rolls, recovery, truncation and
//! snapshots.
//!
//! Design note. One mutex (`State`) guards the queue of encoded frames that are
//! not yet written, the sequence-number counters and the segment list. An
//! appender queues its frames under that mutex and, depending on the sync
//! policy, returns or waits. A call with kilobytes of frames encodes them into
//! a buffer of its own before it takes the mutex (only sequence numbers and
//! checksums are filled in under it), so that large appends from many threads
//! copy their payloads in parallel; small calls copy theirs into a shared
//! buffer under the mutex. Exactly one thread at a time is the *leader*: it
//! takes the whole queue, releases the mutex, writes the queue's buffers with
//! one vectored positional write and (when durability is wanted) one `fdatasync`, then
//! publishes the new durable position and wakes everyone. Appenders that arrive
//! while a leader is busy queue up behind it and are all covered by the next
//! leader's single write and fsync. Under `SyncPolicy::Always` the leader is an
//! appender that found no leader; under `Batch` it is a background thread;
//! under `Never` it is whoever fills the write buffer or calls `sync`.
//!
//! Only the leader touches the active segment file (through `Writer`, whose
//! mutex is uncontended). Readers see records up to the durable position only,
//! so a reader never observes a record that a crash could take back.

use std::collections::VecDeque;
use std::mem;
use std::ops::{Range, RangeInclusive};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::Lsn;
use crate::error::{Error, Result};
use crate::format::{
    self, FRAME_HEADER, Frame, HeaderCheck, SEGMENT_HEADER, SnapshotCheck, VERSION,
};
use crate::io::{Storage, StorageFile};
use crate::options::{Options, SyncPolicy};
use crate::reader::Reader;

const HEADER: u64 = SEGMENT_HEADER as u64;
/// Sequence numbers read from files must lie below this; anything above is
/// damage (no real log gets there), and the bound keeps every `+` on them
/// from overflowing.
const LSN_LIMIT: Lsn = 1 << 62;
/// How many past failures an appender can look back through to learn the fate
/// of its records. Failures are rare; an appender that sleeps through this many
/// gets a conservative error.
const FAILURE_HISTORY: usize = 1024;
/// A call with at least this many bytes of frames encodes them into a buffer
/// of its own before taking the log's lock; smaller ones are copied into a
/// shared buffer under it, which costs less than a buffer and an I/O vector
/// entry per call.
const OWN_BUFFER_MIN: usize = 4 << 10;
/// Written buffers kept for reuse, and the largest capacity kept.
const POOL_BUFFERS: usize = 32;
const POOL_CAPACITY: usize = 4 << 20;
/// A `yield` that takes longer than this gave the processor to another
/// process for a time slice: the machine has no idle core, and polling only
/// takes processor time from the threads that would finish the work.
const SLOW_YIELD: Duration = Duration::from_micros(200);
/// After a slow yield, waiters sleep instead of polling for this long.
/// Each look whether polling pays again costs the time slices of the
/// threads that yield: long enough to make that rare.
const NO_POLL_AFTER_SLOW_YIELD: Duration = Duration::from_secs(1);

/// Zeros are written in pieces of this size (`Options::zero_fill`), so that
/// a close can stop a background fill between two of them.
const ZERO_CHUNK: usize = 1 << 20;

/// The next segment, zero-filled in the background (`Options::zero_fill`).
enum Prep {
    /// Not asked for yet (the active segment is less than half full).
    Idle,
    /// Asked for; the background thread has not started on it.
    Wanted,
    /// Being filled.
    Working,
    /// Filled with zeros and synced under its temporary name; no header yet.
    Ready(Box<dyn StorageFile>),
    /// Filling failed (a full disk, say); not tried again before the next
    /// roll, which uses `fallocate` instead.
    Failed,
}

/// Frames that have their sequence numbers but are not yet written, in LSN
/// order: a list of buffers that the leader writes with one vectored write.
#[derive(Default)]
struct Queue {
    bufs: Vec<Vec<u8>>,
    bytes: usize,
    /// The last buffer is a shared one that small calls extend.
    tail_shared: bool,
}

impl Queue {
    fn is_empty(&self) -> bool {
        self.bytes == 0
    }
}

/// What a waiter learnt by polling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Poll {
    /// Its records are durable.
    Durable,
    /// Something to look at under the lock (a failure, no leader).
    Look,
    /// Nothing yet: sleep until woken.
    Sleep,
}

/// A segment as readers and truncation see it.
#[derive(Debug, Clone)]
pub(crate) struct SegmentInfo {
    pub(crate) first_lsn: Lsn,
    pub(crate) path: PathBuf,
    /// Final length once sealed; `None` for the active segment.
    pub(crate) sealed_len: Option<u64>,
    /// The header's `GAP_BEFORE` flag: the records just before `first_lsn`
    /// may be missing (lost to a failed fsync, or covered by a snapshot).
    /// Readers check where one segment meets the next with it.
    pub(crate) gap_before: bool,
}

impl SegmentInfo {
    fn new(first_lsn: Lsn, path: PathBuf, sealed_len: Option<u64>, flags: u8) -> Self {
        SegmentInfo {
            first_lsn,
            path,
            sealed_len,
            gap_before: flags & format::SEG_FLAG_GAP_BEFORE != 0,
        }
    }
}

#[derive(Debug)]
struct Failure {
    epoch: u64,
    /// Records at or below this were durable before the failure.
    floor: Lsn,
    error: Error,
}

pub(crate) struct State {
    pending: Queue,
    /// LSN of the first record in `pending` (equals `next_lsn` when empty).
    pending_first: Lsn,
    /// Appender calls whose records are in `pending`.
    pending_calls: usize,
    pending_since: Option<Instant>,
    next_lsn: Lsn,
    pub(crate) durable_lsn: Lsn,
    /// First LSN of the segment that holds the durable end, and the byte
    /// offset of that end in it.
    pub(crate) durable_seg: Lsn,
    pub(crate) durable_off: u64,
    pub(crate) segments: Vec<SegmentInfo>,
    leader: bool,
    gathering: bool,
    last_group_calls: usize,
    sync_ewma: Duration,
    epoch: u64,
    failures: VecDeque<Failure>,
    /// The last write failure of a background flush, reported to `sync` and
    /// to appenders refused for want of queue space.
    last_error: Option<Error>,
    /// Acknowledged records lost to a failed fsync (only possible under
    /// `Never`), not yet reported by `sync`, and the last failure's message.
    lost: Vec<RangeInclusive<Lsn>>,
    lost_reason: String,
    pub(crate) reader_waiters: usize,
    /// Appenders waiting for durability: the last LSN each waits for, and
    /// its thread. The leader unparks exactly the ones its fsync covered, so
    /// they wake at once and in parallel instead of queueing one by one on
    /// the state mutex behind a condition variable.
    parked: Vec<(Lsn, std::thread::Thread)>,
    pub(crate) closed: bool,
    stats: Stats,
}

/// Counters of a log's group commits since it was opened, to see how well
/// concurrent appenders share fsyncs ([`Wal::stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Group writes that ended with an fsync of the log's records.
    pub syncs: u64,
    /// Append calls (`append` or `append_batch`) those fsyncs covered.
    pub synced_calls: u64,
    /// Records those fsyncs covered.
    pub synced_records: u64,
    /// Time spent in those group writes and fsyncs: over a busy period,
    /// its share of the wall time says how much of it the disk was kept
    /// waiting by the log (scheduling, gathering) rather than working.
    pub sync_time: Duration,
    /// Times an appender slept (parked) waiting for its fsync instead of
    /// polling for it.
    pub sleeps: u64,
    /// Yields that took a time slice (`SLOW_YIELD`): each turned polling
    /// off for a while because other processes wanted the processors.
    pub slow_yields: u64,
    /// Segments zero-filled by the background thread
    /// ([`Options::zero_fill`](crate::Options::zero_fill)).
    pub prepared_segments: u64,
    /// Rolls into a zero-filled segment (the others used `fallocate`).
    pub prepared_rolls: u64,
    /// Zero fills that failed (a full disk, say); the roll after one
    /// uses `fallocate`.
    pub prepare_failures: u64,
}

pub(crate) struct Shared {
    pub(crate) dir: PathBuf,
    pub(crate) storage: Arc<dyn Storage>,
    opts: Options,
    pub(crate) state: Mutex<State>,
    /// Appenders waiting for durability, and threads waiting for the leader.
    cv: Condvar,
    /// A leader gathering the next group.
    cv_gather: Condvar,
    /// The background flusher (Batch).
    cv_flush: Condvar,
    /// Readers in follow mode.
    pub(crate) cv_readers: Condvar,
    writer: Mutex<Writer>,
    /// Written buffers for the next frames to be encoded into.
    pool: Mutex<Vec<Vec<u8>>>,
    /// Copies of `durable_lsn` and the failure epoch that waiters can poll
    /// without the lock.
    durable_hint: std::sync::atomic::AtomicU64,
    epoch_hint: std::sync::atomic::AtomicU64,
    /// Whether a leader is at work, and the appender calls queued while one
    /// gathers, for the same waiters.
    leader_hint: std::sync::atomic::AtomicBool,
    calls_hint: std::sync::atomic::AtomicUsize,
    /// Polling (yielding the processor) is off until this many microseconds
    /// after `born` (see `SLOW_YIELD`).
    no_poll_until: std::sync::atomic::AtomicU64,
    slow_yields: std::sync::atomic::AtomicU64,
    born: Instant,
    /// The next segment, zero-filled in the background, and the signal for
    /// that thread (`Options::zero_fill`).
    prep: Mutex<Prep>,
    cv_prep: Condvar,
    /// The active segment is half full and the next one has been asked for.
    prep_asked: std::sync::atomic::AtomicBool,
    /// Set by `close`: the background fill stops between two pieces.
    prep_stop: std::sync::atomic::AtomicBool,
    prepared_segments: std::sync::atomic::AtomicU64,
    prepared_rolls: std::sync::atomic::AtomicU64,
    prepare_failures: std::sync::atomic::AtomicU64,
    /// Truncation keeps every segment holding a record at or above this
    /// sequence number (`u64::MAX`: no hold); see [`Wal::hold_front`].
    hold: std::sync::atomic::AtomicU64,
    _lock: Box<dyn std::any::Any + Send + Sync>,
}

/// What recovery found and did when the log was opened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoverySummary {
    /// Segments found.
    pub segments: usize,
    /// Records in the last segment after recovery.
    pub records_in_last_segment: u64,
    /// The last sequence number in the log after recovery (0 when empty).
    pub last_lsn: Lsn,
    /// A torn tail cut from the last segment: where the cut was made and how
    /// many bytes (up to the end of the written data) were discarded.
    pub torn_tail: Option<TornTail>,
    /// A last segment whose header had not been durably written, removed.
    pub removed_unfinished_segment: Option<PathBuf>,
    /// Damage repaired under `Options::repair`.
    pub repaired: Option<Repair>,
    /// Left-over temporary snapshot files removed.
    pub removed_temp_files: Vec<PathBuf>,
}

/// A torn tail cut away during recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The segment.
    pub segment: PathBuf,
    /// Where the log now ends in that segment.
    pub offset: u64,
    /// Non-zero bytes found after that point and discarded.
    pub discarded_bytes: u64,
    /// Why the first discarded frame was not accepted.
    pub reason: String,
}

/// Damage cut away under `Options::repair`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repair {
    /// The damaged segment.
    pub segment: PathBuf,
    /// Where the log was cut.
    pub offset: u64,
    /// What was wrong.
    pub reason: String,
    /// Later segments removed with it.
    pub removed_segments: Vec<PathBuf>,
}

/// A snapshot read back by [`Wal::latest_snapshot`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Records at or below this sequence number are covered by the snapshot.
    pub lsn: Lsn,
    /// The bytes given to [`Wal::save_snapshot`].
    pub data: Bytes,
}

/// A durable, totally ordered, append-only log. See the crate documentation.
///
/// `Wal` is `Send + Sync`: share it (for example in an `Arc`) and append from
/// many threads at once.
pub struct Wal {
    shared: Arc<Shared>,
    flusher: Option<JoinHandle<()>>,
    preparer: Option<JoinHandle<()>>,
    summary: RecoverySummary,
}

impl std::fmt::Debug for Wal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.shared.state.lock();
        f.debug_struct("Wal")
            .field("dir", &self.shared.dir)
            .field("last_lsn", &(st.next_lsn - 1))
            .field("durable_lsn", &st.durable_lsn)
            .field("segments", &st.segments.len())
            .finish()
    }
}

// ---------------------------------------------------------------------------
// Writer: the active segment, touched only by the leader.
// ---------------------------------------------------------------------------

struct Writer {
    file: Box<dyn StorageFile>,
    seg_first: Lsn,
    path: PathBuf,
    /// End of the bytes written.
    offset: u64,
    /// End of the bytes known durable.
    durable_offset: u64,
    /// The last LSN written to the files, and the last known durable. The
    /// writer is the one place that knows what its writes and fsyncs covered
    /// (an fsync done to cut or seal a segment makes earlier unsynced writes
    /// durable too); the leader publishes these after every group.
    written_lsn: Lsn,
    durable_lsn: Lsn,
    /// After a failure: the length (and the last LSN below it) the file must
    /// be cut back to before the next write, dropping whatever a failed write
    /// may have left.
    cut_to: Option<(u64, Lsn)>,
    /// Records written but lost to a failed fsync, for the leader to report.
    lost: Option<(Lsn, Lsn)>,
    /// After records were lost to a failed fsync, the next write starts a new
    /// segment so that sequence numbers inside a segment stay dense.
    roll_next: bool,
    /// A roll done by the current group, for the leader to publish.
    rolled: Option<Rolled>,
}

struct Rolled {
    old_first: Lsn,
    old_len: u64,
    new: SegmentInfo,
}

enum WriteFailure {
    /// Writing failed; bytes already durable are intact and the file is
    /// (or will be) cut back to the end of the last good write.
    Write(Error),
    /// fsync failed; everything after the last durable byte is suspect and
    /// the file is (or will be) cut back to it.
    Sync(Error),
}

impl Writer {
    fn write_group(
        &mut self,
        sh: &Shared,
        bufs: &[&[u8]],
        len: usize,
        first: Lsn,
        last: Lsn,
        fsync: bool,
    ) -> Result<(), WriteFailure> {
        if let Some((len, lsn)) = self.cut_to {
            self.cut(sh, len, lsn).map_err(WriteFailure::Write)?;
        }
        if len > 0
            && (self.roll_next
                || (self.offset > HEADER && self.offset + len as u64 > sh.opts.segment_size))
        {
            // Kept in `self.rolled` even if the write below fails: the new
            // segment exists and the old one is sealed either way.
            self.rolled = Some(self.roll(sh, first)?);
        }
        if len > 0 {
            if let Err(e) = self.file.write_vectored_at(self.offset, bufs) {
                self.cut_to = Some((self.offset, self.written_lsn));
                return Err(WriteFailure::Write(Error::io("write", &self.path, e)));
            }
            self.offset += len as u64;
            self.written_lsn = last;
            if sh.zero_fill() && self.offset > sh.opts.segment_size / 2 {
                sh.want_prepared();
            }
        }
        if fsync && self.durable_offset < self.offset {
            if let Err(e) = self.file.sync_data() {
                // This group is the caller's to fail or queue again; records
                // written before it without an fsync are lost.
                let lost_end = if len == 0 {
                    self.written_lsn
                } else {
                    first - 1
                };
                self.sync_failed(lost_end);
                return Err(WriteFailure::Sync(Error::io("fsync", &self.path, e)));
            }
            self.durable_offset = self.offset;
            self.durable_lsn = self.written_lsn;
        }
        Ok(())
    }

    /// After a failed fsync nothing past the last durable byte can be trusted:
    /// cut back to it, note the records up to `lost_end` that were written
    /// but never durable, and start a new segment after them.
    fn sync_failed(&mut self, lost_end: Lsn) {
        // Lost records are no longer in the log: every record that is, up to
        // `upto`, is durable, and a later loss must not report them again.
        let mut upto = self.durable_lsn;
        if lost_end > self.durable_lsn {
            self.lost = Some((self.durable_lsn + 1, lost_end));
            self.roll_next = true;
            upto = lost_end;
        }
        self.cut_to = Some((self.durable_offset, upto));
        self.offset = self.durable_offset;
        self.written_lsn = upto;
        self.durable_lsn = upto;
    }

    /// Cut the active segment back to `len` and make that durable.
    fn cut(&mut self, sh: &Shared, len: u64, lsn: Lsn) -> Result<()> {
        let io = |op, e| Error::io(op, &self.path, e);
        self.file.set_len(len).map_err(|e| io("truncate", e))?;
        if sh.opts.preallocate {
            // Best effort: a full disk must not stop the log from going on in
            // the space it already has.
            let _ = self.file.allocate(sh.opts.segment_size);
        }
        self.file.sync_data().map_err(|e| io("fsync", e))?;
        self.cut_to = None;
        self.offset = len;
        self.durable_offset = len;
        self.written_lsn = lsn;
        self.durable_lsn = lsn;
        Ok(())
    }

    /// Seal the active segment and start a new one whose first record is
    /// `first`. Order: cut and fsync the old segment, create and fsync the new
    /// one, fsync the directory; only then may a record in it be acknowledged.
    fn roll(&mut self, sh: &Shared, first: Lsn) -> Result<Rolled, WriteFailure> {
        let old_path = self.path.clone();
        if let Err(e) = self.file.set_len(self.offset) {
            return Err(WriteFailure::Write(Error::io("truncate", &old_path, e)));
        }
        if let Err(e) = self.file.sync_data() {
            let lost_end = self.written_lsn;
            self.sync_failed(lost_end);
            return Err(WriteFailure::Sync(Error::io("fsync", &old_path, e)));
        }
        // Everything in the old segment is durable now, even if creating the
        // new one fails below.
        self.durable_offset = self.offset;
        self.durable_lsn = self.written_lsn;
        let path = sh.dir.join(format::segment_name(first));
        let flags = if self.roll_next {
            format::SEG_FLAG_GAP_BEFORE
        } else {
            0
        };
        let prepared = sh
            .take_prepared()
            .and_then(|f| install_prepared(sh, f, &path, first, flags).ok());
        let file = match prepared {
            Some(f) => f,
            // Not ready (or installing it failed): a fallocated segment, as
            // without zero fill, rather than keep the appenders waiting.
            None => create_segment(&*sh.storage, &sh.dir, &sh.opts, &path, first, flags, false)
                .map_err(WriteFailure::Write)?,
        };
        let old_first = self.seg_first;
        let old_len = self.offset;
        self.file = file;
        self.path = path.clone();
        self.seg_first = first;
        self.offset = HEADER;
        self.durable_offset = HEADER;
        self.roll_next = false;
        Ok(Rolled {
            old_first,
            old_len,
            new: SegmentInfo::new(first, path, None, flags),
        })
    }
}

/// Write zeros over `[from, to)` of a file, a piece at a time; stops with
/// `Interrupted` once `stop` is set.
fn write_zeros(
    file: &dyn StorageFile,
    from: u64,
    to: u64,
    stop: Option<&std::sync::atomic::AtomicBool>,
) -> std::io::Result<()> {
    let zeros = vec![0u8; ZERO_CHUNK];
    let mut at = from;
    while at < to {
        if stop.is_some_and(|s| s.load(Relaxed)) {
            return Err(std::io::ErrorKind::Interrupted.into());
        }
        let n = (to - at).min(ZERO_CHUNK as u64) as usize;
        file.write_at(at, &zeros[..n])?;
        at += n as u64;
    }
    Ok(())
}

/// Turn the zero-filled temporary file into the segment at `path`: header,
/// fdatasync, rename, directory fsync (the same guarantees as
/// `create_segment`: the header is durable before the name is, and the name
/// before any record in it is acknowledged). Returns the segment opened by
/// its new name.
fn install_prepared(
    sh: &Shared,
    file: Box<dyn StorageFile>,
    path: &Path,
    first: Lsn,
    flags: u8,
) -> Result<Box<dyn StorageFile>> {
    let tmp = sh.dir.join(format::PREPARED_SEGMENT);
    let result = (|| {
        file.write_at(0, &format::encode_segment_header(first, flags))
            .map_err(|e| Error::io("write", &tmp, e))?;
        file.sync_data().map_err(|e| Error::io("fsync", &tmp, e))?;
        drop(file);
        sh.storage
            .rename(&tmp, path)
            .map_err(|e| Error::io("rename", &tmp, e))?;
        sh.storage
            .sync_dir(&sh.dir)
            .map_err(|e| Error::io("fsync directory", &sh.dir, e))?;
        sh.storage
            .open(path, false)
            .map_err(|e| Error::io("open", path, e))
    })();
    match &result {
        Ok(_) => {
            sh.prepared_rolls.fetch_add(1, Relaxed);
        }
        // The caller falls back to `create_segment`, which reuses a file
        // already renamed to `path`; a temporary file left behind is
        // removed by the next open.
        Err(_) => {
            let _ = sh.storage.remove(&tmp);
        }
    }
    result
}

fn create_segment(
    storage: &dyn Storage,
    dir: &Path,
    opts: &Options,
    path: &Path,
    first: Lsn,
    flags: u8,
    zero: bool,
) -> Result<Box<dyn StorageFile>> {
    let result = (|| {
        let file = storage
            .open(path, true)
            .map_err(|e| Error::io("create", path, e))?;
        file.set_len(0)
            .map_err(|e| Error::io("truncate", path, e))?;
        file.write_at(0, &format::encode_segment_header(first, flags))
            .map_err(|e| Error::io("write", path, e))?;
        if opts.preallocate && zero {
            write_zeros(&*file, HEADER, opts.segment_size, None)
                .map_err(|e| Error::io("zero fill", path, e))?;
        } else if opts.preallocate {
            file.allocate(opts.segment_size)
                .map_err(|e| Error::io("preallocate", path, e))?;
        }
        file.sync_data().map_err(|e| Error::io("fsync", path, e))?;
        storage
            .sync_dir(dir)
            .map_err(|e| Error::io("fsync directory", dir, e))?;
        Ok(file)
    })();
    if result.is_err() {
        // Leave no half-made segment behind: recovery would have to guess.
        if storage.remove(path).is_ok() {
            let _ = storage.sync_dir(dir);
        }
    }
    result
}

// ---------------------------------------------------------------------------
// Opening and recovery.
// ---------------------------------------------------------------------------

struct Found {
    first_lsn: Lsn,
    path: PathBuf,
}

impl Wal {
    /// Open (or create) the log in `dir`, recovering from any crash.
    ///
    /// Recovery cuts a torn tail from the newest segment (reported in
    /// [`Wal::recovery`]) and fails with [`Error::Corrupt`] on damage anywhere
    /// else, unless [`Options::repair`] is set. The records of the sealed
    /// segments are checked here only with [`Options::verify_sealed`] (or
    /// `repair`); by default a [`Reader`] checks them as it reads them and
    /// returns the same error there, so open reads only their headers and
    /// the newest segment.
    pub fn open(dir: impl AsRef<Path>, opts: Options) -> Result<Wal> {
        let dir = dir.as_ref().to_path_buf();
        let storage = opts.storage.clone();
        storage
            .create_dir_all(&dir)
            .map_err(|e| Error::io("create directory", &dir, e))?;
        let lock = storage.lock(&dir).map_err(|e| {
            if e.kind() == std::io::ErrorKind::WouldBlock {
                Error::Locked(dir.clone())
            } else {
                Error::io("lock", &dir, e)
            }
        })?;
        let mut summary = RecoverySummary::default();
        let names = storage.list(&dir).map_err(|e| Error::io("list", &dir, e))?;
        let mut found: Vec<Found> = Vec::new();
        let mut snapshot_max: Option<Lsn> = None;
        for name in names {
            let path = dir.join(&name);
            if let Some(first_lsn) = format::parse_segment_name(&name) {
                found.push(Found { first_lsn, path });
            } else if let Some(lsn) = format::parse_snapshot_name(&name) {
                // Trusted to move the clock forward only if its header agrees
                // with its name (the full check is `latest_snapshot`'s).
                if lsn < LSN_LIMIT && snapshot_header_lsn(&*storage, &path) == Some(lsn) {
                    snapshot_max = Some(snapshot_max.map_or(lsn, |m: Lsn| m.max(lsn)));
                }
            } else if (name.starts_with("snap-") && name.ends_with(".tmp"))
                || name.ends_with(format::TEMP_SEGMENT_SUFFIX)
            {
                // A snapshot or a zero-filled next segment that a crash
                // interrupted: neither was ever part of the log.
                storage
                    .remove(&path)
                    .map_err(|e| Error::io("remove", &path, e))?;
                summary.removed_temp_files.push(path);
            }
        }
        found.sort_by_key(|f| f.first_lsn);

        // `repair` must see the damage here, at open, to cut the log at it.
        let verify_sealed = opts.verify_sealed || opts.repair;
        let mut segments: Vec<SegmentInfo> = Vec::new();
        // (first_lsn, end offset, records, header flags) of the last segment
        // kept.
        let mut last: Option<(Lsn, u64, u64, u8)> = None;
        // The previous segment: its path, where its records end, the LSN
        // after its last record, and whether that is known exactly (it was
        // scanned).
        let mut prev: Option<(PathBuf, u64, Lsn, bool)> = None;
        let mut i = 0;
        while i < found.len() {
            let is_last = i + 1 == found.len();
            let f = &found[i];
            let len = storage
                .open(&f.path, false)
                .and_then(|file| file.len())
                .map_err(|e| Error::io("open", &f.path, e))?;
            let map = storage
                .map(&f.path, len)
                .map_err(|e| Error::io("map", &f.path, e))?;
            let damage: Option<(u64, String)> = match format::decode_segment_header(&map) {
                HeaderCheck::Unsupported(v) => {
                    return Err(Error::UnsupportedVersion {
                        path: f.path.clone(),
                        found: v,
                        supported: VERSION,
                    });
                }
                HeaderCheck::Bad(why) => {
                    // Only a file that is zeros throughout: the header is
                    // synced before any record goes behind it, so records
                    // behind a bad header mean damage, not an unfinished roll.
                    // A file shorter than a header holds no record either.
                    let unfinished = map.len() < SEGMENT_HEADER || map.iter().all(|&b| b == 0);
                    if is_last && unfinished {
                        // Created but never durably initialised: a crash
                        // during a roll. Nothing in it was ever acknowledged.
                        storage
                            .remove(&f.path)
                            .map_err(|e| Error::io("remove", &f.path, e))?;
                        storage
                            .sync_dir(&dir)
                            .map_err(|e| Error::io("fsync directory", &dir, e))?;
                        summary.removed_unfinished_segment = Some(f.path.clone());
                        found.pop();
                        continue;
                    }
                    Some((0, format!("segment header: {why}")))
                }
                HeaderCheck::Ok { first_lsn, .. } if first_lsn == 0 || first_lsn >= LSN_LIMIT => {
                    Some((0, format!("impossible first sequence number {first_lsn}")))
                }
                HeaderCheck::Ok { first_lsn, .. } if first_lsn != f.first_lsn => Some((
                    0,
                    format!(
                        "header says first record {first_lsn}, name says {}",
                        f.first_lsn
                    ),
                )),
                HeaderCheck::Ok { .. } => None,
            };
            if let (None, HeaderCheck::Ok { flags, .. }, Some((prev_path, prev_end, n, exact))) =
                (&damage, format::decode_segment_header(&map), &prev)
            {
                // A segment must start right after the previous one ends,
                // unless it is marked as following records lost to a failed
                // fsync. Otherwise the previous one lost its tail.
                let gap_allowed = flags & format::SEG_FLAG_GAP_BEFORE != 0;
                if f.first_lsn < *n || (*exact && f.first_lsn != *n && !gap_allowed) {
                    let reason = format!(
                        "segment ends before record {n}, but the next segment starts at {}",
                        f.first_lsn
                    );
                    if !opts.repair {
                        return Err(Error::Corrupt {
                            segment: prev_path.clone(),
                            offset: *prev_end,
                            reason,
                        });
                    }
                    let removed = remove_all(&*storage, &found[i..])?;
                    storage
                        .sync_dir(&dir)
                        .map_err(|e| Error::io("fsync directory", &dir, e))?;
                    summary.repaired = Some(Repair {
                        segment: prev_path.clone(),
                        offset: *prev_end,
                        reason,
                        removed_segments: removed,
                    });
                    found.truncate(i);
                    break;
                }
            }
            let flags = match format::decode_segment_header(&map) {
                HeaderCheck::Ok { flags, .. } => flags,
                _ => 0,
            };
            // Without `verify_sealed` a sealed segment's frames are checked
            // by the readers, as they read them (`Reader`), once per process.
            let scan = if damage.is_none() && (is_last || verify_sealed) {
                Some(scan_segment(&map, f.first_lsn))
            } else {
                None
            };
            let damage = damage.or_else(|| {
                let s = scan.as_ref()?;
                if is_last {
                    return None;
                }
                s.bad.clone().or_else(|| {
                    (s.valid_end != map.len() as u64).then(|| {
                        (
                            s.valid_end,
                            "unfinished batch at the end of a sealed segment".into(),
                        )
                    })
                })
            });
            if let Some((offset, reason)) = damage {
                if !opts.repair {
                    return Err(Error::Corrupt {
                        segment: f.path.clone(),
                        offset,
                        reason,
                    });
                }
                // Cut here, drop everything after.
                let cut = offset.max(HEADER);
                let mut removed = remove_all(&*storage, &found[i + 1..])?;
                let keep_file = offset >= HEADER;
                if keep_file {
                    let file = storage
                        .open(&f.path, false)
                        .map_err(|e| Error::io("open", &f.path, e))?;
                    file.set_len(cut)
                        .map_err(|e| Error::io("truncate", &f.path, e))?;
                    file.sync_data()
                        .map_err(|e| Error::io("fsync", &f.path, e))?;
                } else {
                    storage
                        .remove(&f.path)
                        .map_err(|e| Error::io("remove", &f.path, e))?;
                    removed.push(f.path.clone());
                }
                storage
                    .sync_dir(&dir)
                    .map_err(|e| Error::io("fsync directory", &dir, e))?;
                summary.repaired = Some(Repair {
                    segment: f.path.clone(),
                    offset: cut,
                    reason,
                    removed_segments: removed,
                });
                found.truncate(i + usize::from(keep_file));
                // Re-examine this segment (now the last) from its start.
                if keep_file {
                    continue;
                }
                break;
            }
            let (end, records) = match &scan {
                Some(s) => (s.valid_end, s.records),
                None => (len, 0),
            };
            if is_last {
                if let Some(s) = &scan {
                    let tail = &map[s.valid_end as usize..];
                    let nonzero = last_nonzero(tail).map_or(0, |p| p + 1);
                    if nonzero > 0 {
                        summary.torn_tail = Some(TornTail {
                            segment: f.path.clone(),
                            offset: s.valid_end,
                            discarded_bytes: nonzero as u64,
                            reason: s
                                .bad
                                .as_ref()
                                .map_or_else(|| "unfinished batch".to_owned(), |b| b.1.clone()),
                        });
                    }
                }
                last = Some((f.first_lsn, end, records, flags));
            } else {
                segments.push(SegmentInfo::new(
                    f.first_lsn,
                    f.path.clone(),
                    Some(len),
                    flags,
                ));
            }
            prev = Some(match scan {
                Some(_) => (f.path.clone(), end, f.first_lsn + records, true),
                None => (f.path.clone(), end, f.first_lsn + 1, false),
            });
            i += 1;
        }

        if last.is_none() {
            // The newest segment was removed (unfinished, or cut by repair):
            // the one before it becomes the active segment again.
            if let Some(s) = segments.pop() {
                let len = s.sealed_len.unwrap_or(HEADER);
                let map = storage
                    .map(&s.path, len)
                    .map_err(|e| Error::io("map", &s.path, e))?;
                let scan = scan_segment(&map, s.first_lsn);
                // It was sealed: held to a sealed segment's rules (with
                // `verify_sealed` the loop above has already checked them;
                // without, this is where they are checked), so an unfinished
                // batch at its end is damage here too, not a torn tail.
                let damage = scan.bad.or_else(|| {
                    (scan.valid_end != map.len() as u64).then(|| {
                        (
                            scan.valid_end,
                            "unfinished batch at the end of a sealed segment".to_owned(),
                        )
                    })
                });
                if let Some((offset, reason)) = damage {
                    return Err(Error::Corrupt {
                        segment: s.path,
                        offset,
                        reason,
                    });
                }
                let flags = if s.gap_before {
                    format::SEG_FLAG_GAP_BEFORE
                } else {
                    0
                };
                last = Some((s.first_lsn, scan.valid_end, scan.records, flags));
            }
        }

        let shared_opts = opts.clone();
        let floor_next = snapshot_max.map_or(1, |s| s.saturating_add(1));
        let (writer, next_lsn) = match last {
            Some((first, end, records, flags)) => {
                let path = dir.join(format::segment_name(first));
                let file = storage
                    .open(&path, false)
                    .map_err(|e| Error::io("open", &path, e))?;
                let file_len = file.len().map_err(|e| Error::io("open", &path, e))?;
                if file_len != end {
                    // Cut the torn tail (and zero any preallocated space after
                    // it) so a later crash cannot mistake old bytes for records.
                    file.set_len(end)
                        .map_err(|e| Error::io("truncate", &path, e))?;
                }
                if opts.preallocate {
                    let _ = file.allocate(opts.segment_size);
                }
                file.sync_data().map_err(|e| Error::io("fsync", &path, e))?;
                summary.records_in_last_segment = records;
                segments.push(SegmentInfo::new(first, path.clone(), None, flags));
                let next = first + records;
                let w = Writer {
                    file,
                    seg_first: first,
                    path,
                    offset: end,
                    durable_offset: end,
                    written_lsn: next - 1,
                    durable_lsn: next - 1,
                    cut_to: None,
                    lost: None,
                    roll_next: next < floor_next,
                    rolled: None,
                };
                (w, next.max(floor_next))
            }
            None => {
                let first = floor_next;
                let path = dir.join(format::segment_name(first));
                // With zero fill the first segment of a new log is filled
                // here, in `open`: later ones are filled in the background.
                let file = create_segment(&*storage, &dir, &opts, &path, first, 0, opts.zero_fill)?;
                segments.push(SegmentInfo::new(first, path.clone(), None, 0));
                let w = Writer {
                    file,
                    seg_first: first,
                    path,
                    offset: HEADER,
                    durable_offset: HEADER,
                    written_lsn: first - 1,
                    durable_lsn: first - 1,
                    cut_to: None,
                    lost: None,
                    roll_next: false,
                    rolled: None,
                };
                (w, first)
            }
        };
        summary.segments = segments.len();
        summary.last_lsn = next_lsn - 1;
        let state = State {
            pending: Queue::default(),
            pending_first: next_lsn,
            pending_calls: 0,
            pending_since: None,
            next_lsn,
            durable_lsn: next_lsn - 1,
            durable_seg: writer.seg_first,
            durable_off: writer.offset,
            segments,
            leader: false,
            gathering: false,
            last_group_calls: 0,
            sync_ewma: Duration::from_micros(300),
            epoch: 0,
            failures: VecDeque::new(),
            last_error: None,
            lost: Vec::new(),
            lost_reason: String::new(),
            reader_waiters: 0,
            parked: Vec::new(),
            closed: false,
            stats: Stats::default(),
        };
        let shared = Arc::new(Shared {
            dir,
            storage,
            opts: shared_opts,
            state: Mutex::new(state),
            cv: Condvar::new(),
            cv_gather: Condvar::new(),
            cv_flush: Condvar::new(),
            cv_readers: Condvar::new(),
            writer: Mutex::new(writer),
            pool: Mutex::new(Vec::new()),
            durable_hint: std::sync::atomic::AtomicU64::new(next_lsn - 1),
            epoch_hint: std::sync::atomic::AtomicU64::new(0),
            leader_hint: std::sync::atomic::AtomicBool::new(false),
            calls_hint: std::sync::atomic::AtomicUsize::new(0),
            no_poll_until: std::sync::atomic::AtomicU64::new(0),
            slow_yields: std::sync::atomic::AtomicU64::new(0),
            born: Instant::now(),
            hold: std::sync::atomic::AtomicU64::new(u64::MAX),
            prep: Mutex::new(Prep::Idle),
            cv_prep: Condvar::new(),
            prep_asked: std::sync::atomic::AtomicBool::new(false),
            prep_stop: std::sync::atomic::AtomicBool::new(false),
            prepared_segments: std::sync::atomic::AtomicU64::new(0),
            prepared_rolls: std::sync::atomic::AtomicU64::new(0),
            prepare_failures: std::sync::atomic::AtomicU64::new(0),
            _lock: lock,
        });
        let flusher = match opts.sync {
            SyncPolicy::Batch {
                max_delay,
                max_bytes,
            } => {
                let sh = shared.clone();
                Some(
                    std::thread::Builder::new()
                        .name("vigil-wal-flush".into())
                        .spawn(move || sh.flusher(max_delay, max_bytes))
                        .map_err(|e| Error::io("spawn flusher thread", &shared.dir, e))?,
                )
            }
            _ => None,
        };
        let preparer = if shared.zero_fill() {
            let sh = shared.clone();
            Some(
                std::thread::Builder::new()
                    .name("vigil-wal-zero".into())
                    .spawn(move || sh.preparer())
                    .map_err(|e| Error::io("spawn zero-fill thread", &shared.dir, e))?,
            )
        } else {
            None
        };
        Ok(Wal {
            shared,
            flusher,
            preparer,
            summary,
        })
    }

    /// What recovery found and did when this log was opened.
    pub fn recovery(&self) -> &RecoverySummary {
        &self.summary
    }

    /// The log's directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// Append one record; returns its sequence number. Under
    /// `SyncPolicy::Always` the record is durable when this returns.
    pub fn append(&self, record: &[u8]) -> Result<Lsn> {
        self.append_batch(&[record]).map(|r| r.start)
    }

    /// Append records as one batch: they get consecutive sequence numbers, go
    /// to disk in one write, and survive a crash all or none. Returns their
    /// sequence numbers (empty for an empty batch).
    pub fn append_batch<R: AsRef<[u8]>>(&self, records: &[R]) -> Result<Range<Lsn>> {
        let sh = &*self.shared;
        let mut bytes = 0usize;
        for r in records {
            let len = r.as_ref().len();
            if len > sh.opts.max_record_size {
                return Err(Error::RecordTooLarge {
                    size: len,
                    max: sh.opts.max_record_size,
                });
            }
            bytes += FRAME_HEADER + len;
        }
        // Checksum the payloads before taking the lock; only the 12 bytes of
        // length and sequence number are added under it.
        let one;
        let many: Vec<crc32fast::Hasher>;
        let hashers: &[crc32fast::Hasher] = if records.len() == 1 {
            let mut h = crc32fast::Hasher::new();
            h.update(records[0].as_ref());
            one = [h];
            &one
        } else {
            many = records
                .iter()
                .map(|r| {
                    let mut h = crc32fast::Hasher::new();
                    h.update(r.as_ref());
                    h
                })
                .collect();
            &many
        };

        // A large call also copies its payloads outside the lock, into a
        // buffer of its own that goes into the queue as it is; only the
        // sequence numbers and checksums are filled in under the lock.
        let own = (bytes >= OWN_BUFFER_MIN).then(|| {
            let mut buf = sh.pooled_buffer();
            buf.reserve(bytes);
            for (i, r) in records.iter().enumerate() {
                format::encode_unsealed_frame(&mut buf, r.as_ref(), i + 1 < records.len());
            }
            buf
        });

        let mut st = sh.state.lock();
        if records.is_empty() {
            return Ok(st.next_lsn..st.next_lsn);
        }
        sh.wait_for_room(&mut st, bytes)?;
        let first = st.next_lsn;
        if first.checked_add(records.len() as u64).is_none() {
            return Err(Error::LsnExhausted);
        }
        let queue = &mut st.pending;
        match own {
            Some(mut buf) => {
                let mut at = 0;
                for (i, (r, h)) in records.iter().zip(hashers).enumerate() {
                    format::seal_frame(&mut buf[at..], first + i as u64, h);
                    at += FRAME_HEADER + r.as_ref().len();
                }
                queue.bufs.push(buf);
                queue.tail_shared = false;
            }
            None => {
                if !queue.tail_shared {
                    queue.bufs.push(sh.pooled_buffer());
                    queue.tail_shared = true;
                }
                let tail = queue.bufs.last_mut().expect("a shared tail buffer");
                tail.reserve(bytes);
                for (i, (r, h)) in records.iter().zip(hashers).enumerate() {
                    let lsn = first + i as u64;
                    format::encode_frame(tail, lsn, r.as_ref(), h, i + 1 < records.len());
                }
            }
        }
        queue.bytes += bytes;
        st.next_lsn = first + records.len() as u64;
        st.pending_calls += 1;
        if st.pending_since.is_none() {
            st.pending_since = Some(Instant::now());
        }
        let last = st.next_lsn - 1;
        let epoch = st.epoch;
        match sh.opts.sync {
            SyncPolicy::Always => {
                if st.gathering {
                    sh.calls_hint.store(st.pending_calls, Release);
                    if st.pending_calls >= st.last_group_calls {
                        sh.cv_gather.notify_one();
                    }
                }
                sh.wait_durable(st, last, epoch)?;
            }
            SyncPolicy::Batch { max_bytes, .. } => {
                if st.pending.bytes >= max_bytes || st.pending_calls == 1 {
                    sh.cv_flush.notify_one();
                }
            }
            SyncPolicy::Never => {
                // After a failed write, only `sync` tries again: retrying on
                // every append would rewrite the whole growing queue each
                // time. The queue's bound then refuses appends (with the
                // cause) until a `sync` succeeds.
                if st.pending.bytes >= sh.opts.write_buffer && !st.leader && st.last_error.is_none()
                {
                    // The records are queued and acknowledged whatever this
                    // write does; a failure is kept for `sync` to report.
                    let _ = sh.lead(&mut st, false);
                }
            }
        }
        Ok(first..last + 1)
    }

    /// Make every record appended so far durable; returns the durable
    /// sequence number.
    pub fn sync(&self) -> Result<Lsn> {
        let sh = &*self.shared;
        let st = sh.state.lock();
        let target = st.next_lsn - 1;
        let epoch = st.epoch;
        let result = sh.wait_durable(st, target, epoch);
        let mut st = sh.state.lock();
        // A loss reported here once, whichever thread's write ran into it.
        if !st.lost.is_empty() {
            return Err(Error::SyncLost {
                lost: mem::take(&mut st.lost),
                reason: mem::take(&mut st.lost_reason),
            });
        }
        result.map(|()| st.durable_lsn)
    }

    /// Every record in the log at or below this sequence number survives a
    /// crash. Under `SyncPolicy::Never`, records lost to a failed fsync are no
    /// longer in the log (the next [`Wal::sync`] reports them as
    /// [`Error::SyncLost`]), and this number may pass over them.
    pub fn durable_lsn(&self) -> Lsn {
        self.shared.state.lock().durable_lsn
    }

    /// Counters of the group commits since the log was opened.
    pub fn stats(&self) -> Stats {
        let mut stats = self.shared.state.lock().stats;
        stats.slow_yields = self.shared.slow_yields.load(Relaxed);
        stats.prepared_segments = self.shared.prepared_segments.load(Relaxed);
        stats.prepared_rolls = self.shared.prepared_rolls.load(Relaxed);
        stats.prepare_failures = self.shared.prepare_failures.load(Relaxed);
        stats
    }

    /// The last sequence number handed out (0 if none ever was).
    pub fn last_lsn(&self) -> Lsn {
        self.shared.state.lock().next_lsn - 1
    }

    /// The first sequence number still kept in the log (the first of the
    /// oldest segment; it may be one that was never written, if the log is
    /// empty).
    pub fn oldest_lsn(&self) -> Lsn {
        self.shared.state.lock().segments[0].first_lsn
    }

    /// A reader positioned at `from`: it yields the records with sequence
    /// numbers `>= from` that are durable, in order.
    pub fn reader(&self, from: Lsn) -> Result<Reader> {
        Reader::new(self.shared.clone(), from)
    }

    /// Keep the records from `lsn` on through later truncations (by
    /// [`truncate_front`](Wal::truncate_front) and
    /// [`save_snapshot`](Wal::save_snapshot)) until the hold moves or is
    /// released (`None`), so that a reader following the log from `lsn`
    /// (remote write's WAL watcher) does not lose records to a checkpoint.
    /// A snapshot saved meanwhile is still complete; only the deletion of
    /// the segments it covers waits. There is one hold per log: a caller
    /// with several readers holds at the oldest of their positions.
    pub fn hold_front(&self, lsn: Option<Lsn>) {
        self.shared.hold.store(
            lsn.unwrap_or(u64::MAX),
            std::sync::atomic::Ordering::Release,
        );
    }

    /// The position [`hold_front`](Wal::hold_front) set, if any.
    pub fn front_hold(&self) -> Option<Lsn> {
        match self.shared.hold.load(std::sync::atomic::Ordering::Acquire) {
            u64::MAX => None,
            l => Some(l),
        }
    }

    /// Remove the segments whose records all lie below `lsn` (and below the
    /// [`hold_front`](Wal::hold_front) position, if one is set). The active
    /// segment is never removed. Returns how many segments were removed.
    pub fn truncate_front(&self, lsn: Lsn) -> Result<usize> {
        let sh = &*self.shared;
        let lsn = lsn.min(sh.hold.load(std::sync::atomic::Ordering::Acquire));
        let victims: Vec<PathBuf> = {
            let mut st = sh.state.lock();
            let n = st
                .segments
                .windows(2)
                .take_while(|w| w[1].first_lsn <= lsn)
                .count();
            st.segments.drain(..n).map(|s| s.path).collect()
        };
        if victims.is_empty() {
            return Ok(0);
        }
        // Oldest first: a crash in the middle leaves a contiguous suffix.
        for path in &victims {
            sh.storage
                .remove(path)
                .map_err(|e| Error::io("remove", path, e))?;
        }
        sh.storage
            .sync_dir(&sh.dir)
            .map_err(|e| Error::io("fsync directory", &sh.dir, e))?;
        Ok(victims.len())
    }

    /// Save a snapshot of the caller's state as of sequence number `lsn`
    /// (everything at or below it), atomically: temporary file, fsync,
    /// rename, directory fsync. The log is first made durable up to `lsn`.
    /// Then segments wholly covered by the snapshot are removed, and of older
    /// snapshots only the newest one is kept as a fallback.
    pub fn save_snapshot(&self, lsn: Lsn, data: &[u8]) -> Result<()> {
        let sh = &*self.shared;
        let last = self.last_lsn();
        if lsn > last {
            return Err(Error::SnapshotBeyondLog { lsn, last });
        }
        let unreported_loss = !sh.state.lock().lost.is_empty();
        if self.durable_lsn() < lsn || unreported_loss {
            // Also the place where a loss under `Never` is reported, so that
            // a snapshot never succeeds over records it does not know are gone.
            self.sync()?;
        }
        let name = format::snapshot_name(lsn);
        let path = sh.dir.join(&name);
        let tmp = sh.dir.join(format!("{name}.tmp"));
        let bytes = format::encode_snapshot(lsn, data);
        let file = sh
            .storage
            .open(&tmp, true)
            .map_err(|e| Error::io("create", &tmp, e))?;
        file.set_len(0)
            .map_err(|e| Error::io("truncate", &tmp, e))?;
        file.write_at(0, &bytes)
            .map_err(|e| Error::io("write", &tmp, e))?;
        file.sync_data().map_err(|e| Error::io("fsync", &tmp, e))?;
        drop(file);
        sh.storage
            .rename(&tmp, &path)
            .map_err(|e| Error::io("rename", &tmp, e))?;
        sh.storage
            .sync_dir(&sh.dir)
            .map_err(|e| Error::io("fsync directory", &sh.dir, e))?;
        let mut older: Vec<Lsn> = self
            .snapshot_lsns()?
            .into_iter()
            .filter(|&l| l < lsn)
            .collect();
        older.sort_unstable();
        older.pop(); // keep the newest older one
        for l in older {
            let p = sh.dir.join(format::snapshot_name(l));
            sh.storage
                .remove(&p)
                .map_err(|e| Error::io("remove", &p, e))?;
        }
        self.truncate_front(lsn.saturating_add(1))?;
        Ok(())
    }

    fn snapshot_lsns(&self) -> Result<Vec<Lsn>> {
        let sh = &*self.shared;
        Ok(sh
            .storage
            .list(&sh.dir)
            .map_err(|e| Error::io("list", &sh.dir, e))?
            .iter()
            .filter_map(|n| format::parse_snapshot_name(n))
            .collect())
    }

    /// The newest snapshot, checked against its checksum.
    pub fn latest_snapshot(&self) -> Result<Option<Snapshot>> {
        let sh = &*self.shared;
        let Some(lsn) = self.snapshot_lsns()?.into_iter().max() else {
            return Ok(None);
        };
        let path = sh.dir.join(format::snapshot_name(lsn));
        let len = sh
            .storage
            .open(&path, false)
            .and_then(|f| f.len())
            .map_err(|e| Error::io("open", &path, e))?;
        let map = sh
            .storage
            .map(&path, len)
            .map_err(|e| Error::io("map", &path, e))?;
        match format::decode_snapshot(&map) {
            SnapshotCheck::Ok {
                lsn: inner,
                start,
                end,
            } if inner == lsn => Ok(Some(Snapshot {
                lsn,
                data: map.slice(start..end),
            })),
            SnapshotCheck::Ok { lsn: inner, .. } => Err(Error::CorruptSnapshot {
                path,
                reason: format!("file name says {lsn}, header says {inner}"),
            }),
            SnapshotCheck::Unsupported(v) => Err(Error::UnsupportedVersion {
                path,
                found: v,
                supported: VERSION,
            }),
            SnapshotCheck::Bad(reason) => Err(Error::CorruptSnapshot {
                path,
                reason: reason.to_owned(),
            }),
        }
    }

    /// Sync everything and stop the background thread, reporting any error.
    /// Dropping the log does the same but cannot report.
    pub fn close(mut self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<()> {
        {
            let mut st = self.shared.state.lock();
            if st.closed {
                return Ok(());
            }
            st.closed = true;
            self.shared.cv_flush.notify_all();
        }
        if let Some(h) = self.flusher.take() {
            let _ = h.join();
        }
        if let Some(h) = self.preparer.take() {
            self.shared.prep_stop.store(true, Relaxed);
            {
                let _p = self.shared.prep.lock();
                self.shared.cv_prep.notify_all();
            }
            let _ = h.join();
            // The next open would remove it anyway: its zeros are of no use
            // to a log that reopens with its active segment fallocated.
            *self.shared.prep.lock() = Prep::Idle;
            let tmp = self.shared.dir.join(format::PREPARED_SEGMENT);
            let _ = self.shared.storage.remove(&tmp);
        }
        self.sync()?;
        // Cut the preallocated tail off the active segment: the next open
        // then finds the data ending at the end of the file and need not
        // read megabytes of zeros to prove there is no torn tail.
        let st = self.shared.state.lock();
        if st.last_error.is_none() && st.pending.is_empty() {
            let w = self.shared.writer.lock();
            if w.cut_to.is_none() && w.file.len().is_ok_and(|l| l > w.offset) {
                w.file
                    .set_len(w.offset)
                    .and_then(|()| w.file.sync_data())
                    .map_err(|e| Error::io("truncate", &w.path, e))?;
            }
        }
        Ok(())
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        let _ = self.shutdown();
        // Wake followers so they notice there will be no more records.
        self.shared.cv_readers.notify_all();
    }
}

/// Remove segment files (repair drops everything after the damage); returns
/// their paths. The caller syncs the directory.
fn remove_all(storage: &dyn Storage, segments: &[Found]) -> Result<Vec<PathBuf>> {
    segments
        .iter()
        .map(|f| {
            storage
                .remove(&f.path)
                .map_err(|e| Error::io("remove", &f.path, e))?;
            Ok(f.path.clone())
        })
        .collect()
}

/// Position of the last non-zero byte. Works a page at a time from the end:
/// a whole-page zero test vectorises, a byte-wise reverse scan does not, and
/// the preallocated tail is tens of megabytes of zeros.
fn last_nonzero(buf: &[u8]) -> Option<usize> {
    const PAGE: usize = 4096;
    let mut end = buf.len();
    while end > 0 {
        let start = end.saturating_sub(PAGE);
        let chunk = &buf[start..end];
        if !chunk.iter().all(|&b| b == 0) {
            return chunk.iter().rposition(|&b| b != 0).map(|p| start + p);
        }
        end = start;
    }
    None
}

/// The LSN in a snapshot file's header, if the header is readable.
fn snapshot_header_lsn(storage: &dyn Storage, path: &Path) -> Option<Lsn> {
    let file = storage.open(path, false).ok()?;
    let mut head = [0u8; format::SNAPSHOT_HEADER];
    if file.read_at(0, &mut head).ok()? != head.len() || &head[..8] != format::SNAPSHOT_MAGIC {
        return None;
    }
    Some(u64::from_le_bytes(head[16..24].try_into().ok()?))
}

pub(crate) struct Scan {
    pub(crate) valid_end: u64,
    pub(crate) records: u64,
    pub(crate) bad: Option<(u64, String)>,
}

/// Walk a segment's frames. `valid_end` is the end of the last complete batch.
pub(crate) fn scan_segment(map: &[u8], first_lsn: Lsn) -> Scan {
    let mut pos = SEGMENT_HEADER;
    let mut lsn = first_lsn;
    let mut valid_end = pos;
    let mut records = 0u64;
    loop {
        match format::read_frame(map, pos, lsn) {
            Frame::Record { end, continues, .. } => {
                pos = end;
                lsn += 1;
                if !continues {
                    valid_end = pos;
                    records = lsn - first_lsn;
                }
            }
            Frame::End => {
                return Scan {
                    valid_end: valid_end as u64,
                    records,
                    bad: None,
                };
            }
            Frame::Bad(why) => {
                return Scan {
                    valid_end: valid_end as u64,
                    records,
                    bad: Some((pos as u64, why.to_owned())),
                };
            }
        }
    }
}

/// What [`verify_sealed_frames`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Verified {
    /// The end of the last complete batch verified: every frame below it
    /// is valid.
    pub(crate) end: usize,
    /// Damage after `end`: the offset and the reason, as `Wal::open` with
    /// `verify_sealed` reports them for the same bytes.
    pub(crate) damage: Option<(u64, String)>,
}

/// Check the frames of a sealed segment (`buf`, the whole file) from `pos`,
/// where the frame must carry `lsn`; `batch_start` is where the batch that
/// `pos` is in began (`pos` itself at a batch boundary). Stops at the first
/// batch end at least `min_bytes` after `pos`, at the end of the segment
/// (which must end a batch: a sealed segment is frames to its last byte) or
/// at damage. The same checks as [`scan_segment`] plus the sealed-segment
/// rule of `Wal::open`, so a reader that verifies a segment window by
/// window reports exactly the damage that open would have.
pub(crate) fn verify_sealed_frames(
    buf: &[u8],
    mut pos: usize,
    mut lsn: Lsn,
    mut batch_start: usize,
    min_bytes: usize,
) -> Verified {
    let stop = pos.saturating_add(min_bytes);
    loop {
        match format::read_frame(buf, pos, lsn) {
            Frame::Record { end, continues, .. } => {
                pos = end;
                lsn += 1;
                if !continues {
                    batch_start = pos;
                    if pos >= stop {
                        return Verified {
                            end: pos,
                            damage: None,
                        };
                    }
                }
            }
            Frame::End if pos == buf.len() && batch_start == pos => {
                return Verified {
                    end: pos,
                    damage: None,
                };
            }
            // Zeros, or the end of the file, inside or after a batch that
            // never finished.
            Frame::End => {
                return Verified {
                    end: batch_start,
                    damage: Some((
                        batch_start as u64,
                        "unfinished batch at the end of a sealed segment".into(),
                    )),
                };
            }
            Frame::Bad(why) => {
                return Verified {
                    end: batch_start,
                    damage: Some((pos as u64, why.to_owned())),
                };
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Group commit.
// ---------------------------------------------------------------------------

impl Shared {
    /// Whether segments are zero-filled (`Options::zero_fill`).
    fn zero_fill(&self) -> bool {
        self.opts.zero_fill && self.opts.preallocate
    }

    /// Ask the background thread for a zero-filled next segment (once per
    /// segment: the flag is cleared at the roll).
    fn want_prepared(&self) {
        if self.prep_asked.swap(true, Relaxed) {
            return;
        }
        let mut p = self.prep.lock();
        if matches!(*p, Prep::Idle) {
            *p = Prep::Wanted;
            self.cv_prep.notify_one();
        }
    }

    /// At a roll: the zero-filled segment if it is ready. Either way the next
    /// segment gets its own request once it is half full, and a failed fill
    /// may be tried again.
    fn take_prepared(&self) -> Option<Box<dyn StorageFile>> {
        if !self.zero_fill() {
            return None;
        }
        self.prep_asked.store(false, Relaxed);
        let mut p = self.prep.lock();
        match mem::replace(&mut *p, Prep::Idle) {
            Prep::Ready(f) => Some(f),
            Prep::Failed | Prep::Idle => None,
            busy => {
                *p = busy;
                None
            }
        }
    }

    /// The background thread of `Options::zero_fill`: fills the next segment
    /// with zeros under a temporary name when asked, then syncs it.
    fn preparer(self: Arc<Self>) {
        let mut p = self.prep.lock();
        loop {
            if self.prep_stop.load(Relaxed) {
                return;
            }
            if !matches!(*p, Prep::Wanted) {
                self.cv_prep.wait(&mut p);
                continue;
            }
            *p = Prep::Working;
            let filled = MutexGuard::unlocked(&mut p, || self.fill_prepared());
            *p = match filled {
                Ok(f) => {
                    self.prepared_segments.fetch_add(1, Relaxed);
                    Prep::Ready(f)
                }
                Err(_) => {
                    self.prepare_failures.fetch_add(1, Relaxed);
                    Prep::Failed
                }
            };
        }
    }

    fn fill_prepared(&self) -> std::io::Result<Box<dyn StorageFile>> {
        let path = self.dir.join(format::PREPARED_SEGMENT);
        let result = (|| {
            let file = self.storage.open(&path, true)?;
            file.set_len(0)?;
            write_zeros(&*file, 0, self.opts.segment_size, Some(&self.prep_stop))?;
            file.sync_data()?;
            Ok(file)
        })();
        if result.is_err() {
            let _ = self.storage.remove(&path);
        }
        result
    }

    /// An empty buffer for frames, with the capacity of one written before.
    fn pooled_buffer(&self) -> Vec<u8> {
        self.pool.lock().pop().unwrap_or_default()
    }

    /// Keep written buffers for reuse (a bounded number, none huge).
    fn recycle(&self, bufs: Vec<Vec<u8>>) {
        let mut pool = self.pool.lock();
        for mut buf in bufs {
            if pool.len() >= POOL_BUFFERS {
                break;
            }
            if buf.capacity() <= POOL_CAPACITY {
                buf.clear();
                pool.push(buf);
            }
        }
    }

    /// Refuse or hold back an append when the queue is over its limit (only
    /// reachable under `Batch` and `Never`, when writes keep failing or the
    /// disk cannot keep up).
    fn wait_for_room(&self, st: &mut MutexGuard<'_, State>, bytes: usize) -> Result<()> {
        let limit = match self.opts.sync {
            SyncPolicy::Always => return Ok(()),
            SyncPolicy::Batch { max_bytes, .. } => (max_bytes * 4).max(64 << 20),
            SyncPolicy::Never => (self.opts.write_buffer * 4).max(64 << 20),
        };
        while !st.pending.is_empty() && st.pending.bytes + bytes > limit {
            // The queue is full because writes keep failing: refuse with the
            // cause (its I/O kind kept, so `is_disk_full` can tell).
            if let Some(e) = &st.last_error {
                return Err(e.duplicate());
            }
            match self.opts.sync {
                SyncPolicy::Never if !st.leader => {
                    let _ = self.lead(st, false);
                }
                _ => {
                    self.cv_flush.notify_one();
                    self.cv.wait(st);
                }
            }
        }
        Ok(())
    }

    /// Wait until every record up to `last` (appended in `epoch`) is durable,
    /// leading group commits while no one else does.
    fn wait_durable(&self, st: MutexGuard<'_, State>, last: Lsn, epoch: u64) -> Result<()> {
        let mut st = st;
        loop {
            if st.epoch == epoch {
                if st.durable_lsn >= last {
                    return Ok(());
                }
            } else {
                return match st.failures.iter().find(|f| f.epoch > epoch) {
                    Some(f) if last <= f.floor => Ok(()),
                    Some(f) => Err(f.error.duplicate()),
                    None => Err(Error::AppendFailed(
                        "outcome unknown: too many write failures since this append".into(),
                    )),
                };
            }
            if !st.leader {
                // Lead, and keep leading while others' records are queued:
                // this thread is already running, while handing over would
                // cost a wake-up. A few rounds at most, to bound the wait of
                // this thread's own caller.
                for _ in 0..4 {
                    // `lead` releases the lock while it wakes waiters, so
                    // another thread may have taken over meanwhile.
                    if st.leader {
                        break;
                    }
                    if let Err(e) = self.lead(&mut st, true) {
                        if !matches!(self.opts.sync, SyncPolicy::Always) {
                            self.wake_parked(&mut st, true);
                            return Err(e);
                        }
                        break;
                    }
                    if st.pending.is_empty() || st.epoch != epoch {
                        break;
                    }
                }
                if !st.pending.is_empty() {
                    // Someone must lead the queued records: wake them all.
                    self.wake_parked(&mut st, true);
                }
                continue;
            }
            if self.opts.spin_fraction > 0.0 && self.may_poll() {
                let budget = st.sync_ewma.mul_f64(self.opts.spin_fraction);
                drop(st);
                let outcome = self.poll_durable(budget, last, epoch);
                if outcome == Poll::Durable {
                    // Known without the lock: the caller returns at once
                    // instead of queueing on the mutex behind the others
                    // that the same fsync released.
                    return Ok(());
                }
                st = self.state.lock();
                if outcome == Poll::Look {
                    continue;
                }
            }
            // Look again under the lock before parking: a leader that
            // finished between the last poll and now has already woken the
            // parked appenders, and would not wake this one.
            if st.durable_lsn >= last || st.epoch != epoch || !st.leader {
                continue;
            }
            let me = std::thread::current();
            let id = me.id();
            st.parked.push((last, me));
            st.stats.sleeps += 1;
            MutexGuard::unlocked(&mut st, std::thread::park);
            st.parked.retain(|(_, t)| t.id() != id);
        }
    }

    /// Whether waiting threads may poll: not while a recent yield showed
    /// that other processes want the processors (`SLOW_YIELD`).
    fn may_poll(&self) -> bool {
        let now = self.born.elapsed().as_micros() as u64;
        now >= self.no_poll_until.load(Relaxed)
    }

    /// Yield the processor once; false (and no polling for a while) if that
    /// took a time slice, which means the processors are wanted elsewhere.
    fn yield_once(&self) -> bool {
        let t = Instant::now();
        std::thread::yield_now();
        if t.elapsed() < SLOW_YIELD {
            return true;
        }
        let until = self.born.elapsed() + NO_POLL_AFTER_SLOW_YIELD;
        self.no_poll_until
            .fetch_max(until.as_micros() as u64, Relaxed);
        self.slow_yields.fetch_add(1, Relaxed);
        false
    }

    /// Wait a little without sleeping, without the lock: yield the processor
    /// while polling the durable position, for about one fsync (`budget`).
    /// Parking and unparking costs a scheduler round trip per appender, which
    /// on a machine with fewer cores than appenders is longer than the fsync
    /// itself, as long as a core is idle. With the processors busy, a
    /// woken sleeper is served before a thread that yields, so polling stops
    /// at the first slow yield.
    fn poll_durable(&self, budget: Duration, last: Lsn, epoch: u64) -> Poll {
        let start = Instant::now();
        loop {
            // The durable position first: a value at or past `last` read
            // together with an unchanged epoch means this epoch's records
            // up to `last` were made durable (records whose write failed are
            // numbered again only in a later epoch, published before any
            // durable position that covers them again).
            if self.durable_hint.load(Acquire) >= last {
                return if self.epoch_hint.load(Acquire) == epoch {
                    Poll::Durable
                } else {
                    Poll::Look
                };
            }
            if self.epoch_hint.load(Acquire) != epoch || !self.leader_hint.load(Acquire) {
                // A failure to learn about, or a queue without a leader.
                return Poll::Look;
            }
            // Stop as soon as any thread found the processors busy.
            if start.elapsed() > budget || !self.may_poll() || !self.yield_once() {
                return Poll::Sleep;
            }
        }
    }

    /// Unpark the waiters whose records are now durable (or all of them).
    fn wake_parked(&self, st: &mut MutexGuard<'_, State>, all: bool) {
        if st.parked.is_empty() {
            return;
        }
        let durable = st.durable_lsn;
        let mut woken = Vec::new();
        st.parked.retain(|(lsn, t)| {
            if all || *lsn <= durable {
                woken.push(t.clone());
                false
            } else {
                true
            }
        });
        if !woken.is_empty() {
            MutexGuard::unlocked(st, || woken.iter().for_each(std::thread::Thread::unpark));
        }
    }

    /// Become the leader: write (and with `fsync`, sync) everything queued.
    fn lead(&self, st: &mut MutexGuard<'_, State>, fsync: bool) -> Result<()> {
        debug_assert!(!st.leader);
        st.leader = true;
        self.leader_hint.store(true, Release);
        if fsync && matches!(self.opts.sync, SyncPolicy::Always) {
            self.gather(st);
        }
        let Queue {
            bufs,
            bytes,
            tail_shared: _,
        } = mem::take(&mut st.pending);
        let first = st.pending_first;
        let last = st.next_lsn - 1;
        let calls = st.pending_calls;
        let since = st.pending_since;
        st.pending_first = st.next_lsn;
        st.pending_calls = 0;
        st.pending_since = None;
        let policy = self.opts.sync;
        let (result, rolled, lost, view, took, bufs) = MutexGuard::unlocked(st, || {
            let mut w = self.writer.lock();
            let t = Instant::now();
            let slices: Vec<&[u8]> = bufs.iter().map(Vec::as_slice).collect();
            let r = w.write_group(self, &slices, bytes, first, last, fsync);
            let view = (w.durable_lsn, w.seg_first, w.durable_offset);
            let took = t.elapsed();
            let (rolled, lost) = (w.rolled.take(), w.lost.take());
            drop(w);
            // Written: the buffers go back to the pool. Not written: they
            // stay the caller's to queue again or drop.
            let bufs = if r.is_ok() {
                self.recycle(bufs);
                Vec::new()
            } else {
                bufs
            };
            (r, rolled, lost, view, took, bufs)
        });
        st.leader = false;
        self.leader_hint.store(false, Release);
        if let Some(r) = rolled {
            if let Some(s) = st.segments.iter_mut().find(|s| s.first_lsn == r.old_first) {
                s.sealed_len = Some(r.old_len);
            }
            st.segments.push(r.new);
        }
        // Publish what the writer knows to be durable, success or failure: an
        // fsync that cut or sealed a segment may have covered earlier writes.
        let (w_durable, w_seg, w_durable_off) = view;
        st.durable_lsn = st.durable_lsn.max(w_durable);
        st.durable_seg = w_seg;
        st.durable_off = w_durable_off;
        let outcome = match result {
            Ok(()) => {
                if fsync {
                    st.sync_ewma = (st.sync_ewma * 7 + took) / 8;
                    st.last_error = None;
                    if last >= first {
                        st.stats.syncs += 1;
                        st.stats.synced_calls += calls as u64;
                        st.stats.synced_records += last + 1 - first;
                        st.stats.sync_time += took;
                    }
                }
                st.last_group_calls = calls;
                Ok(())
            }
            Err(WriteFailure::Write(e)) | Err(WriteFailure::Sync(e))
                if matches!(policy, SyncPolicy::Always) =>
            {
                // Every record not yet durable is dropped, its appender told,
                // and its sequence number handed out again (no one saw it).
                st.epoch += 1;
                let epoch = st.epoch;
                let floor = w_durable;
                st.failures.push_back(Failure {
                    epoch,
                    floor,
                    error: e.duplicate(),
                });
                if st.failures.len() > FAILURE_HISTORY {
                    st.failures.pop_front();
                }
                self.recycle(bufs);
                self.recycle(mem::take(&mut st.pending).bufs);
                st.pending_calls = 0;
                st.pending_since = None;
                st.next_lsn = floor + 1;
                st.pending_first = floor + 1;
                Err(e)
            }
            Err(WriteFailure::Write(e)) | Err(WriteFailure::Sync(e)) => {
                // Batch and Never acknowledged these records already: keep
                // them queued, in order, for the next attempt.
                let newer = mem::take(&mut st.pending);
                st.pending = Queue {
                    tail_shared: newer.tail_shared,
                    bytes: bytes + newer.bytes,
                    bufs: bufs.into_iter().chain(newer.bufs).collect(),
                };
                st.pending_first = first;
                st.pending_calls += calls;
                st.pending_since = since.or(st.pending_since);
                st.last_error = Some(e.duplicate());
                match lost {
                    Some((lo, hi)) => {
                        // The lost records are no longer in the log: every
                        // record that is, up to `hi`, is durable. (Waiters
                        // for `hi` would otherwise wait forever.)
                        st.durable_lsn = st.durable_lsn.max(hi);
                        let reason = e.to_string();
                        st.lost.push(lo..=hi);
                        st.lost_reason.clone_from(&reason);
                        Err(Error::SyncLost {
                            lost: vec![lo..=hi],
                            reason,
                        })
                    }
                    None => Err(e),
                }
            }
        };
        self.durable_hint
            .store(st.durable_lsn, std::sync::atomic::Ordering::Release);
        self.epoch_hint
            .store(st.epoch, std::sync::atomic::Ordering::Release);
        // After a failure every waiter must look at its outcome.
        let failed = outcome.is_err();
        self.wake_parked(st, failed);
        self.cv.notify_all();
        if st.reader_waiters > 0 {
            self.cv_readers.notify_all();
        }
        outcome
    }

    /// Under `Always`, give the appenders of the previous group a moment to
    /// return, so that one fsync covers them all. Bounded by a fraction of the
    /// measured fsync time. Polls (yielding) while a core is idle, as the
    /// waiters do, and sleeps on a condition variable otherwise.
    fn gather(&self, st: &mut MutexGuard<'_, State>) {
        let want = st.last_group_calls;
        if want <= 1 || st.pending_calls >= want || self.opts.gather_fraction <= 0.0 {
            return;
        }
        let budget = st
            .sync_ewma
            .mul_f64(self.opts.gather_fraction)
            .clamp(Duration::from_micros(5), Duration::from_millis(2));
        let deadline = Instant::now() + budget;
        st.gathering = true;
        self.calls_hint.store(st.pending_calls, Release);
        if self.opts.spin_fraction > 0.0 && self.may_poll() {
            MutexGuard::unlocked(st, || {
                while self.calls_hint.load(Acquire) < want
                    && Instant::now() < deadline
                    && self.may_poll()
                    && self.yield_once()
                {}
            });
        }
        while st.pending_calls < want {
            if self.cv_gather.wait_until(st, deadline).timed_out() {
                break;
            }
        }
        st.gathering = false;
    }

    /// The background flusher of `SyncPolicy::Batch`.
    fn flusher(self: Arc<Self>, max_delay: Duration, max_bytes: usize) {
        let mut st = self.state.lock();
        loop {
            if st.leader {
                self.cv.wait(&mut st);
                continue;
            }
            if st.closed {
                if !st.pending.is_empty() {
                    let _ = self.lead(&mut st, true);
                }
                return;
            }
            let Some(since) = st.pending_since.filter(|_| !st.pending.is_empty()) else {
                self.cv_flush.wait(&mut st);
                continue;
            };
            let due = since + max_delay;
            if st.pending.bytes < max_bytes && Instant::now() < due {
                self.cv_flush.wait_until(&mut st, due);
                continue;
            }
            if self.lead(&mut st, true).is_err() {
                // Do not spin while the disk is full; try again later.
                let pause = max_delay.max(Duration::from_millis(10));
                self.cv_flush.wait_for(&mut st, pause);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_and_its_readers_cross_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Wal>();
        send_sync::<crate::Reader>();
        send_sync::<crate::Error>();
    }

    #[test]
    fn last_nonzero_finds_the_last_set_byte_across_pages() {
        let mut buf = vec![0u8; 3 * 4096 + 17];
        assert_eq!(last_nonzero(&buf), None);
        buf[5] = 1;
        assert_eq!(last_nonzero(&buf), Some(5));
        buf[4096 * 2 + 3] = 9;
        assert_eq!(last_nonzero(&buf), Some(4096 * 2 + 3));
        let n = buf.len();
        buf[n - 1] = 1;
        assert_eq!(last_nonzero(&buf), Some(n - 1));
        assert_eq!(last_nonzero(&[]), None);
    }

    #[test]
    fn scan_stops_at_a_partial_batch() {
        let mut seg = format::encode_segment_header(1, 0).to_vec();
        let h = crc32fast::Hasher::new();
        format::encode_frame(&mut seg, 1, b"", &h, false);
        let complete = seg.len() as u64;
        format::encode_frame(&mut seg, 2, b"", &h, true);
        let s = scan_segment(&seg, 1);
        assert_eq!((s.valid_end, s.records, s.bad), (complete, 1, None));
    }
}
