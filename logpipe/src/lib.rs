//! vigil-logpipe: the sidecar log pipeline.
//!
//! Inputs (tail with rotation and checkpoints, stdin, a child process, the
//! kernel log) feed records through parsers and filters (log-derived
//! metrics among them) to outputs chosen by tag pattern,
//! through a memory-limited or on-disk buffer, with end-to-end
//! acknowledgement: an input's position is checkpointed only after every
//! output that matched a record has taken it. It reads fluent-bit's classic
//! configuration format.
//!
//! ```
//! use vigil_logpipe::record::Record;
//!
//! let rec = Record::line("app.log", 0, "hello");
//! assert_eq!(rec.fields.get("log").and_then(|v| v.as_str()), Some("hello"));
//! ```

#![forbid(unsafe_code)]

pub mod buffer;
pub mod config;
pub mod engine;
mod error;
pub mod filter;
pub mod input;
pub mod json;
pub mod metrics;
pub mod offsets;
pub mod output;
pub mod parser;
pub mod record;
pub mod router;
pub mod strftime;

pub use error::{Error, Result};
pub use record::{Fields, Origin, Record, Value};
