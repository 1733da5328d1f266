//! The `null` output: accepts everything and keeps nothing (for benchmarks
//! and for inputs whose records are only wanted for their side effects).

use super::{Flush, Output};
use crate::record::Record;

/// Discards records.
#[derive(Debug, Default)]
pub struct Null;

impl Output for Null {
    fn flush(&mut self, _records: &[Record]) -> Flush {
        Flush::Ok
    }
}
