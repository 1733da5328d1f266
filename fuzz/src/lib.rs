//! The logic of Vigil's fuzz targets.
//!
//! Each target in `fuzz_targets/` is one line that calls a `run` function
//! here. The regression tests of the crates (for example
//! `wal/tests/fuzz_regressions.rs`) include these same files with `#[path]`,
//! so a saved crash input replays through exactly the code that found it.
//! Each module depends only on `std`, `arbitrary`, `crc32fast` and the crate
//! it tests. `expo` serves the three vigil-exposition targets, `tsdb_chunk`
//! the vigil-tsdb chunk codec's `tsdb_chunk_decode`, `tsdb_block` a block's
//! `chunks` file (`tsdb_block_chunks`), `logpipe` the
//! vigil-logpipe configuration reader and parsers (it also uses serde_json,
//! as the JSON reader's reference), `logpipe_node` its klog parser and
//! kmsg record reader, `remote_write` the remote write receiver's body
//! decoder and `monitor_config` vigil-monitor's prometheus.yml and file_sd
//! readers (both in vigil-examples).

pub mod expo;
pub mod logpipe;
pub mod logpipe_node;
pub mod monitor_config;
pub mod remote_write;
pub mod rules;
pub mod tsdb_block;
pub mod tsdb_chunk;
pub mod wal_model;
pub mod wal_open;
