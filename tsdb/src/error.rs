//! The crate's one error type.

/// What went wrong, and where.
///
/// Offsets are byte offsets from the start of the chunk; `sample` is the
/// zero-based index of the sample being appended or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The chunk has no bytes at all.
    #[error("empty chunk: no encoding byte at offset 0")]
    Empty,
    /// The first byte names no encoding this version knows.
    #[error("unknown chunk encoding {0:#04x} at offset 0")]
    UnknownEncoding(u8),
    /// The bytes end before the part being read.
    #[error("chunk truncated at offset {offset}: {what} runs past the end")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Where it started (byte offset).
        offset: usize,
    },
    /// A field holds a value the format does not allow.
    #[error("invalid chunk at offset {offset}: {what}")]
    Invalid {
        /// What is wrong.
        what: &'static str,
        /// Where the field is (byte offset).
        offset: usize,
    },
    /// Decoded timestamps do not increase: the bytes are damaged.
    #[error("damaged chunk: timestamp {t} of sample {sample} is not after {prev}")]
    NotIncreasing {
        /// Index of the offending sample.
        sample: usize,
        /// Its decoded timestamp.
        t: i64,
        /// The previous sample's timestamp.
        prev: i64,
    },
    /// `append` was given a timestamp that is not after the last one.
    #[error("out of order: timestamp {t} is not after the chunk's last timestamp {last}")]
    OutOfOrder {
        /// The rejected timestamp.
        t: i64,
        /// The chunk's last timestamp.
        last: i64,
    },
    /// The chunk holds the most samples one chunk may hold.
    #[error("chunk full: it already holds {0} samples, the most a chunk may hold")]
    Full(usize),
    /// A label set is not valid (a repeated or empty name).
    #[error("invalid labels: {reason}")]
    InvalidLabels {
        /// What is wrong with them.
        reason: String,
    },
    /// A label matcher's regular expression does not compile.
    #[error("invalid matcher {matcher}: {reason}")]
    InvalidMatcher {
        /// The matcher as written (`name=~"value"`).
        matcher: String,
        /// The regex compiler's message.
        reason: String,
    },
    /// A sample is older than its series' newest one (beyond the
    /// out-of-order window, if any).
    #[error("out of order sample: timestamp {t} is before the series' newest sample at {last}")]
    OutOfOrderSample {
        /// The refused sample's timestamp.
        t: i64,
        /// The series' newest timestamp.
        last: i64,
    },
    /// A sample older than the head accepts: its range is already in a block.
    #[error(
        "out of bounds: timestamp {t} is before {min_valid}, whose range is already in a block"
    )]
    OutOfBounds {
        /// The refused sample's timestamp.
        t: i64,
        /// The earliest timestamp the head accepts.
        min_valid: i64,
    },
    /// A second, different value for a timestamp the series already has.
    #[error("duplicate sample for timestamp {t} with a different value")]
    DuplicateSample {
        /// The timestamp.
        t: i64,
    },
    /// `append_ref` with a reference no series has.
    #[error("unknown series reference {0}")]
    UnknownSeries(u64),
    /// A WAL record does not decode.
    #[error("WAL record at sequence number {lsn}, byte {offset}: {what}")]
    BadRecord {
        /// The record's sequence number in the WAL.
        lsn: u64,
        /// Byte offset in the record.
        offset: usize,
        /// What is wrong.
        what: &'static str,
    },
    /// The WAL failed (I/O, corruption): its own error says where.
    #[error("WAL: {0}")]
    Wal(String),
    /// A file operation failed.
    #[error("{op} {path}: {reason}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: std::path::PathBuf,
        /// The operating system's message.
        reason: String,
    },
    /// A block file is damaged.
    #[error("block file {file} at byte {offset}: {what}")]
    BadBlock {
        /// The file.
        file: std::path::PathBuf,
        /// Byte offset of the damage.
        offset: u64,
        /// What check failed.
        what: String,
    },
}

impl From<vigil_wal::Error> for Error {
    fn from(e: vigil_wal::Error) -> Error {
        Error::Wal(e.to_string())
    }
}
