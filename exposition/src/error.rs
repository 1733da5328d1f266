//! The one error type of the crate.

use std::borrow::Cow;

/// Everything that can go wrong in this crate. Parse errors say where (line and
/// column, both counted from 1, columns in bytes) and what was expected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input does not follow the format's grammar.
    #[error("line {line}, column {column}: expected {expected}, found {found}")]
    Syntax {
        /// Line of the offending byte, from 1.
        line: u32,
        /// Byte column of the offending byte, from 1.
        column: u32,
        /// What the grammar allows here.
        expected: Cow<'static, str>,
        /// What is there instead, quoted, or "end of line" / "end of input".
        found: String,
    },

    /// The input is well-formed text but breaks a rule of the format (strict
    /// OpenMetrics: a counter without `_total`, buckets not cumulative, ...).
    #[error("line {line}, column {column}: {reason}")]
    Invalid {
        /// Line where the rule is broken, from 1.
        line: u32,
        /// Byte column, from 1.
        column: u32,
        /// Which rule, and with which names or values.
        reason: String,
    },

    /// A metric or label name given to the client or encoder is not valid.
    #[error("invalid {what} {name:?}: {reason}")]
    InvalidName {
        /// "metric name", "label name", "unit", ...
        what: &'static str,
        /// The name as given.
        name: String,
        /// Why it was refused.
        reason: &'static str,
    },

    /// A metric family with this name is already registered.
    #[error("a metric named {0:?} is already registered")]
    AlreadyRegistered(String),

    /// Writing the encoded output failed.
    #[error("writing exposition: {0}")]
    Io(#[from] std::io::Error),
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
