//! Settings of a log, each with the reason for its default.

use std::sync::Arc;
use std::time::Duration;

use crate::io::{StdFs, Storage};

/// When an append counts as done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// `append` returns once the record is on disk (written and fsynced).
    /// Concurrent appenders share one write and one fsync (group commit).
    Always,
    /// `append` returns once the record is queued; a background thread writes
    /// and fsyncs at most `max_delay` after the oldest queued record, or as soon
    /// as `max_bytes` are queued. A crash loses at most that window.
    Batch {
        /// Longest time a record waits before its fsync starts.
        max_delay: Duration,
        /// Queued bytes that start a write and fsync at once.
        max_bytes: usize,
    },
    /// `append` returns once the record is queued; bytes reach the file when
    /// `Options::write_buffer` fills and become durable only when the caller
    /// calls [`crate::Wal::sync`].
    Never,
}

/// How a log is opened. Build with [`Options::default`] and the setters.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// Size at which a segment is sealed and a new one begun. 64 MiB: large
    /// enough that segment rolls (two fsyncs and a directory fsync) are rare,
    /// small enough that front truncation frees space in useful steps.
    pub segment_size: u64,
    /// Largest record accepted. 16 MiB: anything bigger is almost surely a bug
    /// in the caller, and a wrong length read back during recovery must be
    /// bounded.
    pub max_record_size: usize,
    /// When an append counts as done.
    pub sync: SyncPolicy,
    /// Reserve each segment's blocks when it is created (`fallocate`), so an
    /// fsync does not also have to write file-size metadata, and a full disk
    /// shows up when a segment is created rather than in the middle of one.
    pub preallocate: bool,
    /// With `preallocate`, prepare segments by writing zeros (and syncing
    /// them) instead of reserving blocks with `fallocate`. On ext4 (and
    /// other file systems with unwritten extents) the first `fdatasync`
    /// after a write into fallocated space must also commit the block's
    /// conversion to "written", and on the project's disk that made a small
    /// durable write slower on average and in its tail than the same write
    /// into space that already holds zeros (README, "Zero-filled
    /// segments"). The cost is writing every segment twice. A fresh log's
    /// first segment is zero-filled when the log is created (one write of
    /// `segment_size` in `open`); every later one is zero-filled by a
    /// background thread under a temporary name once the active segment is
    /// half full, and renamed into place at the roll (a roll that finds it
    /// not ready falls back to `fallocate`). Off by default: it doubles the
    /// bytes written, which a log bound by bandwidth (`Never`, `Batch`, large
    /// records) pays for and does not get back. Also, after a crash,
    /// recovery reads the newest segment's unused tail to prove it holds no
    /// torn record: zeros written to disk are read back from it, where a
    /// fallocated tail reads as zeros without I/O.
    pub zero_fill: bool,
    /// Check every record of the sealed segments (all but the newest) when
    /// opening, on the calling thread. Off by default: `Wal::open` then reads
    /// only the segments' headers and the newest segment (which it must scan
    /// to find where the log ends), and a [`Reader`](crate::Reader) checks a
    /// sealed segment's records as it first reads them, with the same checks
    /// and the same [`Error::Corrupt`](crate::Error::Corrupt) (segment and
    /// offset) that `open` would give, after returning every record of the
    /// complete batches before the damage. So a restart that reads the whole
    /// log checks each record once, on the thread that reads it, instead of
    /// twice with the first pass holding up everything else. On: damage
    /// anywhere is found at open. `repair` always verifies at open, because
    /// it must find the damage to cut the log there.
    pub verify_sealed: bool,
    /// On damage in a sealed segment, cut the log at the damage (dropping it
    /// and everything after it) instead of failing with `Error::Corrupt`. Off
    /// by default: losing records must be the caller's decision.
    pub repair: bool,
    /// Under `SyncPolicy::Never`, queued bytes that trigger a write to the
    /// file. 1 MiB: large writes, bounded memory.
    pub write_buffer: usize,
    /// Under `Always`, how long the thread that leads a group commit may wait
    /// for the appenders of the previous group to come back, as a fraction of
    /// the measured fsync time. Waiting a little lets one fsync cover all
    /// concurrent appenders instead of splitting them into two alternating
    /// groups; `0.0` turns it off.
    pub gather_fraction: f64,
    /// Under `Always`, how long an appender polls for its fsync to finish
    /// (yielding the processor) before it sleeps, as a fraction of the
    /// measured fsync time. `0.0` sleeps at once.
    pub spin_fraction: f64,
    /// The file system. [`StdFs`] unless a test supplies a
    /// [`SimFs`](crate::io::SimFs).
    pub storage: Arc<dyn Storage>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            segment_size: 64 << 20,
            max_record_size: 16 << 20,
            sync: SyncPolicy::Always,
            preallocate: true,
            zero_fill: false,
            verify_sealed: false,
            repair: false,
            write_buffer: 1 << 20,
            gather_fraction: 0.5,
            spin_fraction: 1.0,
            storage: Arc::new(StdFs),
        }
    }
}

impl Options {
    /// Set [`Options::segment_size`].
    pub fn segment_size(mut self, bytes: u64) -> Self {
        self.segment_size = bytes;
        self
    }
    /// Set [`Options::max_record_size`] (at most 1 GiB − 1).
    pub fn max_record_size(mut self, bytes: usize) -> Self {
        self.max_record_size = bytes.min(crate::format::MAX_PAYLOAD);
        self
    }
    /// Set [`Options::sync`].
    pub fn sync(mut self, policy: SyncPolicy) -> Self {
        self.sync = policy;
        self
    }
    /// Set [`Options::preallocate`].
    pub fn preallocate(mut self, on: bool) -> Self {
        self.preallocate = on;
        self
    }
    /// Set [`Options::zero_fill`].
    pub fn zero_fill(mut self, on: bool) -> Self {
        self.zero_fill = on;
        self
    }
    /// Set [`Options::verify_sealed`].
    pub fn verify_sealed(mut self, on: bool) -> Self {
        self.verify_sealed = on;
        self
    }
    /// Set [`Options::repair`].
    pub fn repair(mut self, on: bool) -> Self {
        self.repair = on;
        self
    }
    /// Set [`Options::write_buffer`].
    pub fn write_buffer(mut self, bytes: usize) -> Self {
        self.write_buffer = bytes;
        self
    }
    /// Set [`Options::gather_fraction`].
    pub fn gather_fraction(mut self, fraction: f64) -> Self {
        self.gather_fraction = fraction;
        self
    }
    /// Set [`Options::spin_fraction`].
    pub fn spin_fraction(mut self, fraction: f64) -> Self {
        self.spin_fraction = fraction;
        self
    }
    /// Set [`Options::storage`].
    pub fn storage(mut self, storage: Arc<dyn Storage>) -> Self {
        self.storage = storage;
        self
    }
}
