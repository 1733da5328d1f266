use std::path::PathBuf;

/// Everything that can go wrong in the pipeline, saying what and where.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration file is malformed or names an unknown key or plugin.
    #[error("{file}:{line}: {message}")]
    Config {
        /// The file (after `@INCLUDE` resolution).
        file: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What was wrong.
        message: String,
    },
    /// A parser could not read a record.
    #[error("parser {parser}: {message}")]
    Parse {
        /// The parser's name.
        parser: String,
        /// What did not match.
        message: String,
    },
    /// An output could not deliver (after its retries, or permanently).
    #[error("output {output}: {message}")]
    Output {
        /// The output's name (plugin name and index, as `es.0`).
        output: String,
        /// What the destination said.
        message: String,
    },
    /// The disk buffer (vigil-wal) failed.
    #[error("disk buffer {path}: {source}")]
    Buffer {
        /// The buffer's directory.
        path: PathBuf,
        /// The WAL's error.
        #[source]
        source: vigil_wal::Error,
    },
    /// The tail input's offsets database is damaged or of an unknown version.
    #[error("offsets database {path}: byte {offset}: {message}")]
    Offsets {
        /// The database file.
        path: PathBuf,
        /// Where in the file.
        offset: usize,
        /// What was wrong there.
        message: String,
    },
    /// A record in the disk buffer could not be decoded.
    #[error("disk buffer {path}: record {lsn}: {message}")]
    BufferRecord {
        /// The buffer's directory.
        path: PathBuf,
        /// The WAL sequence number of the damaged record.
        lsn: u64,
        /// What was wrong.
        message: String,
    },
    /// An I/O error on a named path.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
