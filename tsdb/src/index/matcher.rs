//! Label matchers with Prometheus's semantics.

use std::fmt;

use regex::Regex;

use crate::Error;

/// How a matcher compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchOp {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~`, fully anchored.
    Regex,
    /// `!~`, fully anchored.
    NotRegex,
}

/// A label matcher: `name op value`. A series without the label is matched
/// as if the label's value were the empty string, so `job=""` selects the
/// series without a `job` and `job!="x"` selects those too.
#[derive(Clone)]
pub struct Matcher {
    name: String,
    op: MatchOp,
    value: String,
    /// Compiled `^(?:value)$`, for the regex operators.
    re: Option<Regex>,
    /// The regex is a plain string (no metacharacters): compare instead.
    literal: bool,
}

impl Matcher {
    /// A matcher. Regular expressions use the RE2 syntax Prometheus uses
    /// and are anchored at both ends.
    pub fn new(
        name: impl Into<String>,
        op: MatchOp,
        value: impl Into<String>,
    ) -> Result<Matcher, Error> {
        let name = name.into();
        let value = value.into();
        let (re, literal) = match op {
            MatchOp::Regex | MatchOp::NotRegex => {
                let re =
                    Regex::new(&format!("^(?s:{value})$")).map_err(|e| Error::InvalidMatcher {
                        matcher: format!("{name}{}{value:?}", op_str(op)),
                        reason: e.to_string(),
                    })?;
                (Some(re), regex::escape(&value) == value)
            }
            _ => (None, false),
        };
        Ok(Matcher {
            name,
            op,
            value,
            re,
            literal,
        })
    }

    /// `name="value"`.
    pub fn equal(name: impl Into<String>, value: impl Into<String>) -> Matcher {
        Matcher {
            name: name.into(),
            op: MatchOp::Equal,
            value: value.into(),
            re: None,
            literal: false,
        }
    }

    /// The label name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The operator.
    pub fn op(&self) -> MatchOp {
        self.op
    }

    /// The value or pattern as written.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// Whether a label value (`""` for an absent label) matches.
    pub fn matches(&self, v: &str) -> bool {
        match self.op {
            MatchOp::Equal => v == self.value,
            MatchOp::NotEqual => v != self.value,
            MatchOp::Regex => self.regex_matches(v),
            MatchOp::NotRegex => !self.regex_matches(v),
        }
    }

    fn regex_matches(&self, v: &str) -> bool {
        if self.literal {
            return v == self.value;
        }
        self.re.as_ref().is_some_and(|re| re.is_match(v))
    }

    /// The one value this matcher accepts, when it accepts exactly one
    /// non-empty value (`=` or a literal `=~`): a single postings lookup.
    pub(crate) fn exact_value(&self) -> Option<&str> {
        let exact = match self.op {
            MatchOp::Equal => true,
            MatchOp::Regex => self.literal,
            _ => false,
        };
        (exact && !self.value.is_empty()).then_some(self.value.as_str())
    }
}

fn op_str(op: MatchOp) -> &'static str {
    match op {
        MatchOp::Equal => "=",
        MatchOp::NotEqual => "!=",
        MatchOp::Regex => "=~",
        MatchOp::NotRegex => "!~",
    }
}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{:?}", self.name, op_str(self.op), self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_semantics() {
        let re = |v: &str| Matcher::new("a", MatchOp::Regex, v).unwrap();
        assert!(re("fo+").matches("foo"));
        assert!(!re("fo+").matches("xfoo"), "anchored at the start");
        assert!(!re("fo+").matches("foox"), "anchored at the end");
        assert!(re("a|b").matches("b"));
        assert!(!re("a|b").matches("ab"));
        assert!(re(".*").matches(""));
        assert!(!re(".+").matches(""));
        assert!(
            re(".*").matches("line\nbreak"),
            "dot matches newline as in Prometheus"
        );
        let nre = Matcher::new("a", MatchOp::NotRegex, "x|y").unwrap();
        assert!(nre.matches("") && nre.matches("z") && !nre.matches("x"));
        assert!(Matcher::new("a", MatchOp::Regex, "(").is_err());
        assert_eq!(re("web").exact_value(), Some("web"));
        assert_eq!(re("web.*").exact_value(), None);
        assert_eq!(Matcher::equal("a", "").exact_value(), None);
    }
}
