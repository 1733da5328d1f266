//! A segmented, append-only, totally ordered write-ahead log.
//!
//! Every record gets a sequence number ([`Lsn`]) that is strictly increasing
//! and never reused, across restarts and truncation: the log's own clock.
//! Records are CRC-framed in segment files; concurrent appenders share one
//! write and one fsync (group commit); readers iterate from any sequence
//! number without copying and can follow the log as it grows; the front can be
//! truncated and state snapshots saved atomically; recovery after a crash cuts
//! a torn tail and reports real corruption. `FORMAT.md` gives the bytes and the
//! commit protocol.
//!
//! ```
//! use vigil_wal::{Options, SyncPolicy, Wal};
//!
//! # fn main() -> Result<(), vigil_wal::Error> {
//! let dir = std::env::temp_dir().join(format!("vigil-wal-doc-{}", std::process::id()));
//! # let _ = std::fs::remove_dir_all(&dir);
//! let wal = Wal::open(&dir, Options::default().sync(SyncPolicy::Always))?;
//! let first = wal.append(b"hello")?;
//! let batch = wal.append_batch(&[&b"a"[..], b"b"])?; // all or nothing
//! assert_eq!(batch, first + 1..first + 3);
//! assert_eq!(wal.durable_lsn(), first + 2);
//! drop(wal);
//!
//! // Reopen: the records are there, in order.
//! let wal = Wal::open(&dir, Options::default())?;
//! let records: Vec<_> = wal.reader(first)?.collect::<Result<_, _>>()?;
//! assert_eq!(records.len(), 3);
//! assert_eq!(&records[0].1[..], b"hello");
//! assert_eq!(wal.append(b"next")?, first + 3);
//! # drop(wal);
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod error;
mod format;
pub mod io;
mod options;
mod reader;
mod wal;

pub use error::{Error, Result};
pub use options::{Options, SyncPolicy};
pub use reader::Reader;
pub use wal::{RecoverySummary, Repair, Snapshot, Stats, TornTail, Wal};

/// A log sequence number: the position of a record in the log's total order.
/// The first record of a new log gets 1.
pub type Lsn = u64;
