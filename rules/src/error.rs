//! The crate's one error type.

/// Everything that can go wrong in vigil-rules.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A PromQL expression did not lex, parse or type-check. `line` and
    /// `column` are 1-based (column counts characters) and point at the
    /// offending token in the query text.
    #[error("{line}:{column}: parse error: {message}")]
    Parse {
        /// 1-based line in the query.
        line: usize,
        /// 1-based column (in characters) in that line.
        column: usize,
        /// What was wrong, in Prometheus's words where it has them
        /// ("unexpected X, expected Y").
        message: String,
    },
    /// Evaluation failed. The message is Prometheus's own text for the same
    /// failure (for example "vector cannot contain metrics with the same
    /// labelset"), which conformance tests compare verbatim.
    #[error("{0}")]
    Eval(String),
    /// A regular expression in a matcher or function argument did not compile.
    #[error("invalid regular expression {pattern:?}: {source}")]
    Regex {
        /// The pattern as written in the query.
        pattern: String,
        /// Why the regex crate refused it.
        source: Box<regex::Error>,
    },
    /// A rule file did not load. `line` and `column` are 1-based.
    #[error("{line}:{column}: rule error: {message}")]
    Rule {
        /// 1-based line in the file.
        line: usize,
        /// 1-based column (in characters).
        column: usize,
        /// What was wrong.
        message: String,
    },
    /// A YAML rule file did not load; the message names the group and rule.
    #[error("rule file: {0}")]
    RuleFile(String),
    /// A label or annotation template did not parse or expand.
    #[error("template {name:?}: {line}:{column}: {message}")]
    Template {
        /// Which template (for example `annotation summary`).
        name: String,
        /// 1-based line in the template (0 when expanding).
        line: usize,
        /// 1-based column (0 when expanding).
        column: usize,
        /// What was wrong, in Go's words where it has them.
        message: String,
    },
    /// The storage behind a [`crate::Queryable`] failed.
    #[error("storage error while selecting series: {0}")]
    Storage(String),
}

impl Error {
    pub(crate) fn parse_at(input: &str, offset: usize, message: impl Into<String>) -> Self {
        let offset = offset.min(input.len());
        let before = &input[..floor_char_boundary(input, offset)];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        Error::Parse {
            line,
            column,
            message: message.into(),
        }
    }
}

pub(crate) fn line_col(input: &str, offset: usize) -> (usize, usize) {
    let before = &input[..floor_char_boundary(input, offset.min(input.len()))];
    let line = before.matches('\n').count() + 1;
    let ls = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[ls..].chars().count() + 1)
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}
