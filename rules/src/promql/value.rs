//! Query values.
//!
//! Floats and (later) native histograms are kept apart, as Prometheus does:
//! a [`Series`] has a `floats` list, and a `histograms` list will sit beside
//! it; a [`Sample`] will gain an optional histogram next to `value`.

use crate::promql::labels::Labels;

/// The bit pattern of a staleness marker (a NaN that no arithmetic makes).
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// Whether `v` is a staleness marker.
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// A float at a time (milliseconds since the epoch).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FPoint {
    /// Timestamp in milliseconds.
    pub t: i64,
    /// Value.
    pub v: f64,
}

/// One element of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The series' labels.
    pub labels: Labels,
    /// Evaluation timestamp in milliseconds.
    pub t: i64,
    /// Value.
    pub value: f64,
    /// Delayed `__name__` removal: the name is dropped when the query ends.
    pub drop_name: bool,
}

/// One element of a range vector or of a range query's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The series' labels.
    pub labels: Labels,
    /// Float points in time order.
    pub floats: Vec<FPoint>,
    /// Delayed `__name__` removal.
    pub drop_name: bool,
}

/// The result of evaluating an expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A scalar at a time.
    Scalar {
        /// Timestamp in milliseconds.
        t: i64,
        /// Value.
        v: f64,
    },
    /// A string at a time.
    String {
        /// Timestamp in milliseconds.
        t: i64,
        /// Value.
        s: String,
    },
    /// An instant vector.
    Vector(Vec<Sample>),
    /// A range vector, or the result of a range query.
    Matrix(Vec<Series>),
}
