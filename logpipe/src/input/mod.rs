//! Inputs: where records come from. Each runs on its own thread and hands
//! its records to the pipeline through an [`Emitter`].
//!
//! - [`tail`]: files matched by glob patterns, with rotation, copytruncate,
//!   checkpoints in an offsets database and end-to-end acknowledgement.
//! - [`stdin`]: lines of the process's standard input.
//! - [`exec`]: a child process's standard output and error, also copied to
//!   ours (the `cmd 2>&1 | tee -a file` sidecar trick without a shell).
//! - [`kmsg`]: the kernel's log buffer (`/dev/kmsg`), or a file of its
//!   records.

pub mod exec;
pub mod kmsg;
pub mod stdin;
pub mod tail;

use crate::record::Record;
use std::time::{SystemTime, UNIX_EPOCH};

/// The pipeline as an input sees it.
pub trait Emitter: Send {
    /// Hands over the records read from `stream` up to byte `end` (`bytes`:
    /// the raw bytes they came from, counted against the input's memory
    /// limit). Blocks while the input is over its limit: the input pauses.
    /// False when the pipeline is stopping and the records were not taken.
    fn emit(&mut self, stream: u64, end: u64, records: Vec<Record>, bytes: usize) -> bool;

    /// Whether the input should stop reading.
    fn stopping(&self) -> bool;

    /// A stream starts at `offset` (already acknowledged, as after a restart).
    fn open_stream(&mut self, stream: u64, offset: u64);

    /// The offset of `stream` up to which every output acknowledged.
    fn committed(&self, stream: u64) -> Option<u64>;

    /// Forget a closed stream whose records are all acknowledged.
    fn close_stream(&mut self, stream: u64);

    /// Called once after the input stopped reading: blocks until the outputs
    /// have delivered (or given up, after the grace period), so that the
    /// input's last checkpoint is final.
    fn finish(&mut self);

    /// Asks the whole pipeline to stop (`Exit_After_Oneshot`).
    fn request_stop(&mut self) {}
}

/// Now, in nanoseconds since the Unix epoch.
pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// Splits off complete lines from `buf`: calls `line` for each (without its
/// `\n`, with the offset within `buf` just past it) and returns how many
/// bytes were consumed.
pub(crate) fn split_lines(buf: &[u8], mut line: impl FnMut(&[u8], usize)) -> usize {
    let mut start = 0;
    for nl in memchr::memchr_iter(b'\n', buf) {
        line(&buf[start..nl], nl + 1);
        start = nl + 1;
    }
    start
}

/// A line as text: valid UTF-8 is taken as is; anything else is decoded
/// with replacement characters rather than refused.
pub(crate) fn line_text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// A simple [`Emitter`] that collects everything, for tests and for
/// embedding an input without a pipeline: every record is acknowledged as
/// soon as it is emitted.
#[derive(Debug, Default)]
pub struct Collect {
    /// The records emitted so far.
    pub records: Vec<Record>,
    committed: std::collections::HashMap<u64, u64>,
    /// When set, the input stops at its next check.
    pub stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Emitter for Collect {
    fn emit(&mut self, stream: u64, end: u64, records: Vec<Record>, _bytes: usize) -> bool {
        self.records.extend(records);
        self.committed.insert(stream, end);
        true
    }

    fn stopping(&self) -> bool {
        self.stop.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn open_stream(&mut self, stream: u64, offset: u64) {
        self.committed.insert(stream, offset);
    }

    fn committed(&self, stream: u64) -> Option<u64> {
        self.committed.get(&stream).copied()
    }

    fn close_stream(&mut self, stream: u64) {
        self.committed.remove(&stream);
    }

    fn finish(&mut self) {}

    fn request_stop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Cuts a byte stream into lines, keeping a partial last line between
/// pushes; lines longer than the limit are delivered in pieces.
#[derive(Debug)]
pub(crate) struct LineSplitter {
    pending: Vec<u8>,
    max_line: usize,
}

impl LineSplitter {
    pub(crate) fn new(max_line: usize) -> Self {
        LineSplitter {
            pending: Vec::new(),
            max_line: max_line.max(1),
        }
    }

    /// Appends `bytes` and makes a record of each complete line with `make`;
    /// with `eof`, the last partial line too.
    pub(crate) fn push(
        &mut self,
        bytes: &[u8],
        eof: bool,
        mut make: impl FnMut(String) -> Record,
    ) -> Vec<Record> {
        self.pending.extend_from_slice(bytes);
        let mut out = Vec::new();
        let consumed = split_lines(&self.pending, |l, _| {
            for piece in l
                .chunks(self.max_line)
                .take(if l.is_empty() { 0 } else { usize::MAX })
            {
                out.push(make(line_text(piece)));
            }
            if l.is_empty() {
                out.push(make(String::new()));
            }
        });
        self.pending.drain(..consumed);
        while self.pending.len() >= self.max_line || (eof && !self.pending.is_empty()) {
            let n = self.pending.len().min(self.max_line);
            let piece: Vec<u8> = self.pending.drain(..n).collect();
            out.push(make(line_text(&piece)));
        }
        out
    }
}
