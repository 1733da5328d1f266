//! Filters: change, enrich or drop records between the parser and the
//! outputs. One synchronous seam, [`Filter`]; [`build`] makes the filter a
//! `[FILTER]` section names.
//!
//! | `Name` | what it does |
//! |---|---|
//! | `grep` | keep or drop by `Regex`/`Exclude` rules on fields, `Logical_Op` |
//! | `modify` | `Set`, `Add`, `Remove`, `Remove_wildcard`, `Remove_regex`, `Rename`, `Hard_rename`, `Copy`, `Hard_copy`, under `Condition`s |
//! | `record_modifier` | `Record`, `Remove_key`, `Allowlist_key` (`Whitelist_key`) |
//! | `parser` | parse a field with one of several parsers (`Key_Name`, `Parser`, `Reserve_Data`, `Preserve_Key`) |
//! | `kubernetes` | pod, namespace, container from the tag's log path; `Merge_Log` |
//! | `throttle` | at most `Rate` records per `Interval` averaged over `Window` intervals |
//! | `log_to_metrics` | records become counters, gauges or histograms in a [`LogMetrics`] store (see [`build_with`]) |

mod grep;
mod kubernetes;
pub mod log_to_metrics;
mod modify;
mod parse;
mod record_modifier;
mod throttle;

pub use grep::Grep;
pub use kubernetes::{KubeMeta, Kubernetes, kube_meta_from_path};
pub use log_to_metrics::{LogMetrics, LogToMetrics};
pub use modify::Modify;
pub use parse::ParserFilter;
pub use record_modifier::RecordModifier;
pub use throttle::Throttle;

use crate::Result;
use crate::config::Section;
use crate::parser::Parsers;
use crate::record::{Fields, Record, Value};

/// What happens to a record after a filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Pass it on (possibly changed).
    Keep,
    /// Drop it.
    Drop,
}

/// A filter over records. Filters may keep state (throttle), so they take
/// `&mut self`; each pipeline thread owns its filters.
pub trait Filter: Send {
    /// Changes `rec` in place and says whether it goes on.
    fn filter(&mut self, rec: &mut Record) -> Action;
}

/// Keys every `[FILTER]` may carry besides its own.
pub(crate) const COMMON_KEYS: &[&str] = &["match", "match_regex"];

/// Builds the filter `section` names (`Name grep`, ...). Unknown plugins and
/// keys are errors naming the file and line.
pub fn build(section: &Section, parsers: &Parsers) -> Result<Box<dyn Filter>> {
    let name = section
        .name()
        .ok_or_else(|| section.error(None, "[FILTER] without a Name"))?;
    Ok(match name.to_ascii_lowercase().as_str() {
        "grep" => Box::new(Grep::from_section(section)?),
        "modify" => Box::new(Modify::from_section(section)?),
        "record_modifier" => Box::new(RecordModifier::from_section(section)?),
        "parser" => Box::new(ParserFilter::from_section(section, parsers)?),
        "kubernetes" => Box::new(Kubernetes::from_section(section)?),
        "throttle" => Box::new(Throttle::from_section(section)?),
        // Its metrics go to a store of its own, seen by no one: a pipeline
        // calls `build_with` with the store it exposes.
        "log_to_metrics" => Box::new(LogToMetrics::from_section(section, &LogMetrics::new())?),
        other => {
            return Err(section.error_at(
                "name",
                format!(
                    "unknown filter plugin '{other}' (vigil-logpipe has grep, modify, record_modifier, parser, kubernetes, throttle, log_to_metrics)"
                ),
            ));
        }
    })
}

/// As [`build`], with the store where `log_to_metrics` filters define their
/// metrics (the pipeline's, which it exposes; filters of one section built
/// on several input threads share one metric through it).
pub fn build_with(
    section: &Section,
    parsers: &Parsers,
    log_metrics: &LogMetrics,
) -> Result<Box<dyn Filter>> {
    if section
        .name()
        .is_some_and(|n| n.eq_ignore_ascii_case("log_to_metrics"))
    {
        return Ok(Box::new(LogToMetrics::from_section(section, log_metrics)?));
    }
    build(section, parsers)
}

/// A field reference: a plain key, or fluent-bit's record accessor
/// `$key['sub']["sub2"]` into nested maps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accessor {
    path: Vec<String>,
}

impl Accessor {
    /// Parses `s`; `None` when a `$` form is malformed.
    pub fn parse(s: &str) -> Option<Accessor> {
        let Some(rest) = s.strip_prefix('$') else {
            return Some(Accessor {
                path: vec![s.to_owned()],
            });
        };
        let first_end = rest.find('[').unwrap_or(rest.len());
        let mut path = vec![rest[..first_end].to_owned()];
        if path[0].is_empty() {
            return None;
        }
        let mut r = &rest[first_end..];
        while !r.is_empty() {
            let inner = r.strip_prefix('[')?;
            let q = inner.chars().next()?;
            if q != '\'' && q != '"' {
                return None;
            }
            let inner = &inner[1..];
            let end = inner.find(q)?;
            path.push(inner[..end].to_owned());
            r = inner[end + 1..].strip_prefix(']')?;
        }
        Some(Accessor { path })
    }

    /// The value it names in `fields`.
    pub fn get<'a>(&self, fields: &'a Fields) -> Option<&'a Value> {
        let mut v = fields.get(&self.path[0])?;
        for k in &self.path[1..] {
            match v {
                Value::Map(m) => v = m.get(k)?,
                _ => return None,
            }
        }
        Some(v)
    }

    /// The top-level key (the whole reference when it is a plain key).
    pub fn top(&self) -> &str {
        &self.path[0]
    }
}

/// A value's text for matching: strings as they are, scalars as JSON text.
pub(crate) fn text_of(v: &Value) -> std::borrow::Cow<'_, str> {
    match v {
        Value::Str(s) => std::borrow::Cow::Borrowed(s),
        other => std::borrow::Cow::Owned(other.to_string()),
    }
}

/// Splits `key rest-of-value` at the first run of white space.
pub(crate) fn split_kv(v: &str) -> Option<(&str, &str)> {
    let v = v.trim();
    let at = v.find(char::is_whitespace)?;
    Some((&v[..at], v[at..].trim_start()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SectionKind;

    #[test]
    fn accessor_forms() {
        let mut inner = Fields::new();
        inner.push("app", "web");
        let mut labels = Fields::new();
        labels.push("labels", Value::Map(inner));
        let mut f = Fields::new();
        f.push("kubernetes", Value::Map(labels));
        f.push("log", "x");
        let a = Accessor::parse("$kubernetes['labels'][\"app\"]").unwrap();
        assert_eq!(a.get(&f), Some(&Value::from("web")));
        assert_eq!(
            Accessor::parse("log").unwrap().get(&f),
            Some(&Value::from("x"))
        );
        assert_eq!(
            Accessor::parse("$log").unwrap().get(&f),
            Some(&Value::from("x"))
        );
        assert!(
            Accessor::parse("$kubernetes['x']['y']")
                .unwrap()
                .get(&f)
                .is_none()
        );
        assert!(Accessor::parse("$a[b]").is_none());
        assert!(Accessor::parse("$").is_none());
        assert!(Accessor::parse("$a['b'").is_none());
    }

    #[test]
    fn unknown_plugin_names_the_line() {
        let s = Section::new(SectionKind::Filter, "f.conf", 3).with("Name", "lua");
        let e = build(&s, &Parsers::builtin()).err().unwrap().to_string();
        assert!(
            e.starts_with("f.conf:4: unknown filter plugin 'lua'"),
            "{e}"
        );
    }
}
