//! The one error type of the crate.

use std::io;
use std::ops::RangeInclusive;
use std::path::PathBuf;

use crate::Lsn;

/// Everything that can go wrong in the log. Each variant says what happened and
/// where (file, byte offset, sequence number).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system call failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done ("write", "fsync", "create", ...).
        op: &'static str,
        /// The file or directory it was done to.
        path: PathBuf,
        /// The error the operating system gave.
        #[source]
        source: io::Error,
    },

    /// Bytes that were once durable do not read back as they were written.
    ///
    /// Raised for damage anywhere but the unsynced tail of the newest segment.
    /// `Options::repair` lets `Wal::open` cut the log at `offset` instead.
    #[error("corrupt log segment {segment} at byte {offset}: {reason}")]
    Corrupt {
        /// The segment file.
        segment: PathBuf,
        /// Byte offset of the first damaged frame in that file.
        offset: u64,
        /// What check failed.
        reason: String,
    },

    /// A snapshot file failed its checksum or header check.
    #[error("corrupt snapshot {path}: {reason}")]
    CorruptSnapshot {
        /// The snapshot file.
        path: PathBuf,
        /// What check failed.
        reason: String,
    },

    /// The segment or snapshot was written by a newer, unknown format version.
    #[error("{path}: format version {found} is not supported (this build reads up to {supported})")]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version byte found.
        found: u8,
        /// The newest version this build reads.
        supported: u8,
    },

    /// A record is larger than `Options::max_record_size`.
    #[error("record of {size} bytes exceeds the maximum record size of {max} bytes")]
    RecordTooLarge {
        /// The record's size.
        size: usize,
        /// The configured maximum.
        max: usize,
    },

    /// A reader asked for records that truncation has already removed.
    #[error("sequence number {requested} is no longer in the log (oldest kept is {oldest})")]
    Truncated {
        /// The sequence number asked for.
        requested: Lsn,
        /// The oldest sequence number still in the log.
        oldest: Lsn,
    },

    /// A snapshot was asked for at a sequence number the log has not reached.
    #[error("snapshot at sequence number {lsn} is beyond the last appended record {last}")]
    SnapshotBeyondLog {
        /// The requested snapshot position.
        lsn: Lsn,
        /// The last sequence number handed out.
        last: Lsn,
    },

    /// A write or sync failed earlier and the appends it covered were dropped.
    ///
    /// Returned to every appender whose records were part of the failed write
    /// (their sequence numbers were never made visible and will be reused).
    #[error("append failed: {0}")]
    AppendFailed(String),

    /// Under `SyncPolicy::Never`, a failed fsync lost records that had been
    /// acknowledged but were not yet durable. They are no longer in the log;
    /// it continues after them and this process does not hand their sequence
    /// numbers out again (after a crash, as with every record acknowledged
    /// under `Never` but never synced, they may be).
    #[error("fsync failed; acknowledged records {} are lost: {reason}", ranges(.lost))]
    SyncLost {
        /// The lost sequence numbers, as disjoint ranges in order (several
        /// when losses happened more than once since the last report).
        lost: Vec<RangeInclusive<Lsn>>,
        /// The underlying failure.
        reason: String,
    },

    /// The sequence numbers are used up (2^64 − 1 records, or a snapshot that
    /// claims to cover that many).
    #[error("no sequence numbers left")]
    LsnExhausted,

    /// Another process (or another `Wal` in this one) holds the directory.
    #[error("log directory {0} is locked by another writer")]
    Locked(PathBuf),

    /// The log was closed.
    #[error("the log is closed")]
    Closed,
}

fn ranges(lost: &[RangeInclusive<Lsn>]) -> String {
    lost.iter()
        .map(|r| format!("{}..={}", r.start(), r.end()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// A copy of this error, for telling every appender of a failed group the
    /// same thing (`io::Error` is not `Clone`; its kind and message are kept).
    pub(crate) fn duplicate(&self) -> Error {
        match self {
            Error::Io { op, path, source } => Error::Io {
                op,
                path: path.clone(),
                source: io::Error::new(source.kind(), source.to_string()),
            },
            Error::SyncLost { lost, reason } => Error::SyncLost {
                lost: lost.clone(),
                reason: reason.clone(),
            },
            other => Error::AppendFailed(other.to_string()),
        }
    }

    /// Whether this error came from the disk being full.
    pub fn is_disk_full(&self) -> bool {
        match self {
            Error::Io { source, .. } => source.kind() == io::ErrorKind::StorageFull,
            _ => false,
        }
    }
}
