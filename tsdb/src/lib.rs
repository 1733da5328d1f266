//! Vigil's time-series store, under construction: the chunk codec, label
//! sets and the inverted index, and the head (appender, WAL-first commits,
//! replay, checkpoints, querier), immutable blocks on disk read through
//! memory maps, and the store over both (compaction, retention, deletion).
//!
//! - [`labels::Labels`]: a series' identity; [`index::Index`] with
//!   [`index::Matcher`] (`=`, `!=`, `=~`, `!~` with Prometheus's semantics).
//! - [`head::Head`]: samples in memory, durable through vigil-wal; see its
//!   docs for an example of appending, reopening and querying.
//! - [`chunk`]: the compressed chunks the head keeps, described below.
//! - [`block`] and [`db::Db`]: blocks cut from the head, planned compaction,
//!   and lazily decoded queries over blocks and head.
//!
//! `unsafe` is denied everywhere but in `block/mapped.rs`, which maps block
//! files (`memmap2`), and one cache prefetch hint in `head/open.rs`
//! (about a tenth of the ingest's CPU in alternating runs, README "Ingest
//! after midnight"); their safety arguments are written there.
//!
//! A series' samples `(timestamp_ms: i64, value: f64)` live in compressed
//! chunks. [`chunk::ChunkWriter`] appends samples in time order into an open
//! chunk (a Gorilla stream: delta-of-delta timestamps, XOR floats) and seals
//! it into the smallest of several per-chunk encodings (timestamps on a grid,
//! values as scaled decimals, constants, bit-packed, tiered or sparse integer
//! streams). [`chunk::Chunk`] reads either form back, bit-exactly, and never
//! panics on damaged bytes. `FORMAT.md` gives the bytes. The [`head`] keeps
//! its own open chunks uncompressed instead (faster appends, more memory
//! per active series: its module docs say how much) and seals them with
//! the same encoder.
//!
//! ```
//! use vigil_tsdb::chunk::{Chunk, ChunkWriter};
//!
//! # fn main() -> Result<(), vigil_tsdb::Error> {
//! let mut w = ChunkWriter::new();
//! for i in 0..120 {
//!     w.append(1_700_000_000_000 + i * 15_000, (i * 3) as f64)?;
//! }
//! let sealed = w.seal();
//! assert!(sealed.len() < 40);
//! let chunk = Chunk::new(&sealed)?;
//! let samples: Vec<(i64, f64)> = chunk.iter().collect::<Result<_, _>>()?;
//! assert_eq!(samples.len(), 120);
//! assert_eq!(samples[119], (1_700_000_000_000 + 119 * 15_000, 357.0));
//! # Ok(())
//! # }
//! ```
#![deny(unsafe_code)]
#![deny(missing_docs)]

pub mod block;
pub mod chunk;
pub mod db;
mod error;
pub mod head;
pub mod index;
pub mod labels;
#[cfg(feature = "testdata")]
pub mod testdata;

pub use error::Error;
