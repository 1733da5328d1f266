//! The `modify` filter: rules applied in the order written, when every
//! `Condition` holds.
//!
//! Rules: `Set K V` (overwrite or add), `Add K V` (only if absent),
//! `Remove K`, `Remove_wildcard PATTERN` (`*` globs), `Remove_regex RE`,
//! `Rename A B` (only if B is absent), `Hard_rename A B` (replacing B),
//! `Copy A B` (only if B is absent), `Hard_copy A B`.
//! Conditions: `Key_exists K`, `Key_does_not_exist K`, `A_key_matches RE`,
//! `No_key_matches RE`, `Key_value_equals K V`, `Key_value_does_not_equal K
//! V`, `Key_value_matches K RE`, `Key_value_does_not_match K RE`,
//! `Matching_keys_have_matching_values KRE VRE`,
//! `Matching_keys_do_not_have_matching_values KRE VRE`. Keys in conditions
//! may be record accessors.

use super::{Accessor, Action, COMMON_KEYS, Filter, split_kv, text_of};
use crate::Result;
use crate::config::{Entry, Section};
use crate::record::{Fields, Record};
use crate::router::wildcard_match;

#[derive(Debug)]
enum Rule {
    Set(String, String),
    Add(String, String),
    Remove(String),
    RemoveWildcard(String),
    RemoveRegex(regex::Regex),
    Rename(String, String, bool),
    Copy(String, String, bool),
}

#[derive(Debug)]
enum Cond {
    KeyExists(Accessor, bool),
    AKeyMatches(regex::Regex, bool),
    ValueEquals(Accessor, String, bool),
    ValueMatches(Accessor, regex::Regex, bool),
    MatchingKeysValues(regex::Regex, regex::Regex, bool),
}

/// The modify filter.
#[derive(Debug)]
pub struct Modify {
    rules: Vec<Rule>,
    conditions: Vec<Cond>,
}

fn one(s: &Section, e: &Entry) -> Result<String> {
    let v = e.value.trim();
    if v.contains(char::is_whitespace) {
        return Err(s.error(Some(e), format!("{} takes one argument", e.key)));
    }
    Ok(v.to_owned())
}

fn two(s: &Section, e: &Entry, text: &str) -> Result<(String, String)> {
    split_kv(text)
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .ok_or_else(|| s.error(Some(e), format!("{} takes two arguments", e.key)))
}

fn re(s: &Section, e: &Entry, p: &str) -> Result<regex::Regex> {
    regex::Regex::new(p).map_err(|err| s.error(Some(e), format!("bad regex '{p}': {err}")))
}

fn acc(s: &Section, e: &Entry, k: &str) -> Result<Accessor> {
    Accessor::parse(k).ok_or_else(|| s.error(Some(e), format!("bad record accessor '{k}'")))
}

impl Modify {
    /// Reads a `[FILTER] Name modify` section.
    pub fn from_section(s: &Section) -> Result<Modify> {
        let mut rules = Vec::new();
        let mut conditions = Vec::new();
        for e in &s.entries {
            let key = e.key.to_ascii_lowercase();
            match key.as_str() {
                "name" | "alias" | "log_level" => {}
                k if COMMON_KEYS.contains(&k) => {}
                "set" => {
                    let (a, b) = two(s, e, &e.value)?;
                    rules.push(Rule::Set(a, b));
                }
                "add" => {
                    let (a, b) = two(s, e, &e.value)?;
                    rules.push(Rule::Add(a, b));
                }
                "remove" => rules.push(Rule::Remove(one(s, e)?)),
                "remove_wildcard" => rules.push(Rule::RemoveWildcard(one(s, e)?)),
                "remove_regex" => rules.push(Rule::RemoveRegex(re(s, e, &one(s, e)?)?)),
                "rename" | "hard_rename" | "copy" | "hard_copy" => {
                    let (a, b) = two(s, e, &e.value)?;
                    if b.contains(char::is_whitespace) {
                        return Err(s.error(Some(e), format!("{} takes two arguments", e.key)));
                    }
                    let hard = key.starts_with("hard");
                    rules.push(if key.ends_with("rename") {
                        Rule::Rename(a, b, hard)
                    } else {
                        Rule::Copy(a, b, hard)
                    });
                }
                "condition" => {
                    let (kind, args) = split_kv(&e.value).unwrap_or((e.value.trim(), ""));
                    let c = match kind.to_ascii_lowercase().as_str() {
                        "key_exists" => Cond::KeyExists(acc(s, e, args.trim())?, true),
                        "key_does_not_exist" => Cond::KeyExists(acc(s, e, args.trim())?, false),
                        "a_key_matches" => Cond::AKeyMatches(re(s, e, args.trim())?, true),
                        "no_key_matches" => Cond::AKeyMatches(re(s, e, args.trim())?, false),
                        "key_value_equals" | "key_value_does_not_equal" => {
                            let (k, v) = two(s, e, args)?;
                            Cond::ValueEquals(
                                acc(s, e, &k)?,
                                v,
                                kind.eq_ignore_ascii_case("key_value_equals"),
                            )
                        }
                        "key_value_matches" | "key_value_does_not_match" => {
                            let (k, v) = two(s, e, args)?;
                            Cond::ValueMatches(
                                acc(s, e, &k)?,
                                re(s, e, &v)?,
                                kind.eq_ignore_ascii_case("key_value_matches"),
                            )
                        }
                        "matching_keys_have_matching_values"
                        | "matching_keys_do_not_have_matching_values" => {
                            let (k, v) = two(s, e, args)?;
                            Cond::MatchingKeysValues(
                                re(s, e, &k)?,
                                re(s, e, &v)?,
                                kind.eq_ignore_ascii_case("matching_keys_have_matching_values"),
                            )
                        }
                        other => {
                            return Err(
                                s.error(Some(e), format!("unknown modify condition '{other}'"))
                            );
                        }
                    };
                    if args.trim().is_empty() {
                        return Err(s.error(Some(e), format!("condition {kind} needs arguments")));
                    }
                    conditions.push(c);
                }
                _ => {
                    return Err(s.error(
                        Some(e),
                        format!("unknown key '{}' in [FILTER] modify", e.key),
                    ));
                }
            }
        }
        if rules.is_empty() {
            return Err(s.error(None, "modify filter without rules"));
        }
        Ok(Modify { rules, conditions })
    }

    fn holds(&self, f: &Fields) -> bool {
        self.conditions.iter().all(|c| match c {
            Cond::KeyExists(k, want) => k.get(f).is_some() == *want,
            Cond::AKeyMatches(re, want) => f.iter().any(|(k, _)| re.is_match(k)) == *want,
            Cond::ValueEquals(k, v, want) => {
                // A missing key satisfies neither form, as in fluent-bit.
                k.get(f)
                    .is_some_and(|x| (text_of(x) == v.as_str()) == *want)
            }
            Cond::ValueMatches(k, re, want) => {
                k.get(f).is_some_and(|x| re.is_match(&text_of(x)) == *want)
            }
            Cond::MatchingKeysValues(kre, vre, want) => {
                let mut any = false;
                let all = f.iter().filter(|(k, _)| kre.is_match(k)).all(|(_, v)| {
                    any = true;
                    vre.is_match(&text_of(v))
                });
                any && (all == *want)
            }
        })
    }
}

fn remove_where(f: &mut Fields, pred: impl Fn(&str) -> bool) {
    let keys: Vec<String> = f
        .iter()
        .filter(|(k, _)| pred(k))
        .map(|(k, _)| k.to_owned())
        .collect();
    for k in keys {
        f.remove(&k);
    }
}

impl Filter for Modify {
    fn filter(&mut self, rec: &mut Record) -> Action {
        if !self.holds(&rec.fields) {
            return Action::Keep;
        }
        let f = &mut rec.fields;
        for r in &self.rules {
            match r {
                Rule::Set(k, v) => f.set(k.as_str(), v.as_str()),
                Rule::Add(k, v) => {
                    if !f.contains(k) {
                        f.push(k.as_str(), v.as_str());
                    }
                }
                Rule::Remove(k) => {
                    f.remove(k);
                }
                Rule::RemoveWildcard(p) => {
                    remove_where(f, |k| wildcard_match(p.as_bytes(), k.as_bytes()))
                }
                Rule::RemoveRegex(re) => remove_where(f, |k| re.is_match(k)),
                Rule::Rename(a, b, hard) => {
                    if f.contains(a) && a != b {
                        if f.contains(b) {
                            if !hard {
                                continue;
                            }
                            f.remove(b);
                        }
                        f.rename(a, b.as_str());
                    }
                }
                Rule::Copy(a, b, hard) => {
                    let Some(v) = f.get(a).cloned() else { continue };
                    if f.contains(b) {
                        if *hard {
                            f.set(b.as_str(), v);
                        }
                    } else {
                        f.push(b.as_str(), v);
                    }
                }
            }
        }
        Action::Keep
    }
}
