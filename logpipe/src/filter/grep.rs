//! The `grep` filter.
//!
//! `Regex KEY REGEX` keeps records whose field matches, `Exclude KEY REGEX`
//! drops those whose field matches (KEY may be a record accessor,
//! `$kubernetes['labels']['app']`). With the default (legacy) logic every
//! `Regex` must match and no `Exclude` may; `Logical_Op AND` / `OR` combine
//! the rules (all / any), which must then be all `Regex` or all `Exclude`,
//! as fluent-bit requires. A missing field matches nothing.

use super::{Accessor, Action, COMMON_KEYS, Filter, split_kv, text_of};
use crate::Result;
use crate::config::Section;
use crate::record::{Fields, Record};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Legacy,
    And,
    Or,
}

/// One `Regex` or `Exclude` rule (log_to_metrics reads the same keys).
#[derive(Debug)]
pub(super) struct Rule {
    /// An `Exclude` rule.
    pub(super) exclude: bool,
    key: Accessor,
    re: regex::Regex,
}

impl Rule {
    /// The section's `Regex FIELD PATTERN` and `Exclude FIELD PATTERN`
    /// entries, in order.
    pub(super) fn read_all(s: &Section) -> Result<Vec<Rule>> {
        let mut rules = Vec::new();
        for e in &s.entries {
            let exclude = if e.key.eq_ignore_ascii_case("regex") {
                false
            } else if e.key.eq_ignore_ascii_case("exclude") {
                true
            } else {
                continue;
            };
            let (key, pattern) = split_kv(&e.value)
                .ok_or_else(|| s.error(Some(e), format!("{} wants KEY REGEX", e.key)))?;
            let key = Accessor::parse(key)
                .ok_or_else(|| s.error(Some(e), format!("bad record accessor '{key}'")))?;
            let re = regex::Regex::new(pattern)
                .map_err(|err| s.error(Some(e), format!("bad regex: {err}")))?;
            rules.push(Rule { exclude, key, re });
        }
        Ok(rules)
    }

    /// Whether the rule's field exists and its text matches (before
    /// `exclude` is applied).
    pub(super) fn hit(&self, fields: &Fields) -> bool {
        self.key
            .get(fields)
            .is_some_and(|v| self.re.is_match(&text_of(v)))
    }
}

/// The grep filter.
#[derive(Debug)]
pub struct Grep {
    rules: Vec<Rule>,
    op: Op,
}

impl Grep {
    /// Reads a `[FILTER] Name grep` section.
    pub fn from_section(s: &Section) -> Result<Grep> {
        let mut keys = COMMON_KEYS.to_vec();
        keys.extend(["regex", "exclude", "logical_op"]);
        s.check_keys(&keys)?;
        let op = match s.get("logical_op").map(str::to_ascii_lowercase).as_deref() {
            None | Some("legacy") => Op::Legacy,
            Some("and") => Op::And,
            Some("or") => Op::Or,
            Some(other) => {
                return Err(s.error_at(
                    "logical_op",
                    format!("Logical_Op '{other}' is not legacy, AND or OR"),
                ));
            }
        };
        let rules = Rule::read_all(s)?;
        if rules.is_empty() {
            return Err(s.error(None, "grep filter without Regex or Exclude rules"));
        }
        if op != Op::Legacy && rules.iter().any(|r| r.exclude) && rules.iter().any(|r| !r.exclude) {
            return Err(s.error_at(
                "logical_op",
                "Logical_Op AND/OR cannot mix Regex and Exclude rules",
            ));
        }
        Ok(Grep { rules, op })
    }
}

impl Filter for Grep {
    fn filter(&mut self, rec: &mut Record) -> Action {
        let hit = |r: &Rule| r.hit(&rec.fields);
        let keep = match self.op {
            Op::Legacy => self.rules.iter().all(|r| hit(r) != r.exclude),
            Op::And => {
                let all = self.rules.iter().all(hit);
                all != self.rules[0].exclude
            }
            Op::Or => {
                let any = self.rules.iter().any(hit);
                any != self.rules[0].exclude
            }
        };
        if keep { Action::Keep } else { Action::Drop }
    }
}
