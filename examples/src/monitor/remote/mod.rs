//! Remote write in and out (issue 10): the road from one vigil-monitor to a
//! distributed store (Thanos, Mimir, Cortex, VictoriaMetrics) and back.
//!
//! - [`RemoteWriter`]: the `remote_write` sender. It follows the store's WAL
//!   (as Prometheus's WAL watcher does), shards by series, retries 5xx and
//!   429 with exponential backoff, drops and counts other 4xx, saves its
//!   position in the data directory and holds the WAL from there, so an
//!   outage of the receiver or a restart of the monitor loses nothing the
//!   WAL still holds. See `sender.rs` for why.
//! - [`receive`]: the `/api/v1/write` handler (behind
//!   `--web.enable-remote-write-receiver`).
//! - [`proto`]: the wire messages (prost-derived, no protoc) and the body
//!   codec (protobuf in snappy's block format), with the hand-written
//!   encoder and borrowing decoder the sender and receiver use.
//! - [`RemoteWriteConfig`]: the `remote_write` section of prometheus.yml.

pub mod config;
pub mod proto;
mod receiver;
mod sender;

use std::path::PathBuf;

pub use config::{MetadataConfig, QueueConfig, RemoteWriteConfig};
pub use receiver::{MAX_BODY, MAX_DECODED, Received, receive};
pub use sender::{RemoteWriter, USER_AGENT};

/// What went wrong in remote write.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteError {
    /// A request body that is not snappy-compressed protobuf, or too large.
    #[error("bad remote write body: {0}")]
    BadBody(String),
    /// A file of the sender's state could not be read or written.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
    /// A saved position file is damaged (delete it to start from the WAL's
    /// end).
    #[error("{}: not a remote write position file", path.display())]
    BadState {
        /// The file.
        path: PathBuf,
    },
}
