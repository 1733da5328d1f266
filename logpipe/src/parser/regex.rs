//! The `regex` format: named captures become fields.
//!
//! fluent-bit compiles Ruby (Onigmo) patterns; the regex crate reads the
//! `(?<name>...)` capture syntax fluent-bit users write, the escapes they
//! use (`\/`, `\[`, `\d`, `\S`), and fails with a clear message on what it
//! lacks (look-around, back-references). Matching is a search, not anchored,
//! as in fluent-bit: anchor with `^` when the line must start with the
//! pattern.

use super::backtrack::{Backtracker, Frame};
use super::{LineParser, Parsed, TimeAndTypes, fail};
use crate::Result;
use crate::record::{Fields, Text, Value};
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};

/// Built-in regex parsers under fluent-bit's names: name, pattern, time
/// format. The patterns are written for the log formats they name.
pub(super) const BUILTIN: &[(&str, &str, &str)] = &[
    (
        "nginx",
        r#"^(?<remote>[^ ]+) (?<host>[^ ]+) (?<user>[^ ]+) \[(?<time>[^\]]+)\] "(?<method>[^ "]+) (?<path>[^ "]*)(?: [^"]*)?" (?<code>\d+) (?<size>\d+|-)(?: "(?<referer>[^"]*)" "(?<agent>[^"]*)")?"#,
        "%d/%b/%Y:%H:%M:%S %z",
    ),
    (
        "apache",
        r#"^(?<host>\S+) \S+ (?<user>\S+) \[(?<time>[^\]]+)\] "(?<method>\S+) (?<path>[^ "]+)[^"]*" (?<code>\d+) (?<size>\d+|-)"#,
        "%d/%b/%Y:%H:%M:%S %z",
    ),
    (
        "apache2",
        r#"^(?<host>\S+) \S+ (?<user>\S+) \[(?<time>[^\]]+)\] "(?<method>\S+) (?<path>[^ "]+)[^"]*" (?<code>\d+) (?<size>\d+|-)(?: "(?<referer>[^"]*)" "(?<agent>[^"]*)")?"#,
        "%d/%b/%Y:%H:%M:%S %z",
    ),
    (
        "apache_error",
        r"^\[(?<time>[^\]]+)\] \[(?<level>[^\]]+)\](?: \[pid (?<pid>\d+)[^\]]*\])?(?: \[client (?<client>[^\]]+)\])? (?<message>.*)$",
        "%a %b %d %H:%M:%S.%L %Y",
    ),
    (
        "syslog-rfc5424",
        r"^<(?<pri>\d{1,3})>1 (?<time>\S+) (?<host>\S+) (?<ident>\S+) (?<pid>\S+) (?<msgid>\S+) (?<extradata>-|\[.*?\])(?: (?<message>.*))?$",
        "%Y-%m-%dT%H:%M:%S.%L%z",
    ),
    (
        "syslog-rfc3164",
        r"^<(?<pri>\d{1,3})>(?<time>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) (?<host>\S+) (?<ident>[^:\[ ]+)(?:\[(?<pid>\d+)\])?: (?<message>.*)$",
        "%b %d %H:%M:%S",
    ),
];

/// A `Format regex` parser.
#[derive(Debug)]
pub struct RegexParser {
    name: String,
    re: regex::bytes::Regex,
    /// The same pattern for the plain backtracker, when it is in the subset
    /// that one runs (see `backtrack`); the regex crate answers otherwise.
    fast: Option<Backtracker>,
    /// (capture group index, field name) of every named group, in pattern
    /// order.
    groups: Vec<(usize, Text)>,
    skip_empty: bool,
    post: TimeAndTypes,
    /// Identifies this parser's capture slots in the per-thread cache.
    id: u64,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

thread_local! {
    // Capture slots reused across lines on each thread: a fresh
    // `CaptureLocations` per line is an allocation on the hot path.
    static SLOTS: RefCell<Option<(u64, regex::bytes::CaptureLocations)>> = const { RefCell::new(None) };
    // The backtracker's slots and stack, likewise reused.
    static FAST: RefCell<(Vec<usize>, Vec<Frame>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

impl RegexParser {
    /// Compiles `pattern`; the error says what the regex crate could not
    /// read.
    pub fn new(name: &str, pattern: &str, post: TimeAndTypes) -> Result<RegexParser, String> {
        // ASCII classes first: Onigmo, fluent-bit's engine, reads `\d`,
        // `\w`, `\s` as ASCII, and the smaller automaton is several times
        // faster. A pattern that needs Unicode (`\p{L}`) gets it.
        let (re, fast) = match regex::bytes::RegexBuilder::new(pattern)
            .unicode(false)
            .build()
        {
            Ok(re) => (re, Backtracker::new(pattern).ok()),
            Err(_) => (
                regex::bytes::RegexBuilder::new(pattern)
                    .build()
                    .map_err(|e| format!("parser {name}: cannot compile Regex: {e}"))?,
                None,
            ),
        };
        let groups: Vec<(usize, Text)> = re
            .capture_names()
            .enumerate()
            .filter_map(|(i, n)| n.map(|n| (i, Text::from(n))))
            .collect();
        if groups.is_empty() {
            return Err(format!(
                "parser {name}: Regex has no named capture (?<name>...)"
            ));
        }
        Ok(RegexParser {
            name: name.to_owned(),
            re,
            fast,
            groups,
            skip_empty: true,
            post,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// Whether empty captures are left out (fluent-bit's
    /// `Skip_Empty_Values`, on by default).
    pub fn skip_empty_values(mut self, on: bool) -> RegexParser {
        self.skip_empty = on;
        self
    }

    fn extract(&self, text: &str, locs: &mut regex::bytes::CaptureLocations) -> Option<Fields> {
        self.re.captures_read(locs, text.as_bytes())?;
        Some(self.fields(text, |i| locs.get(i)))
    }

    /// The backtracker's answer: `Err` when it ran out of steps and the
    /// regex crate must answer instead.
    fn extract_fast(&self, fast: &Backtracker, text: &str) -> Result<Option<Fields>, ()> {
        FAST.with(|cell| {
            let (slots, stack) = &mut *cell.borrow_mut();
            slots.resize(fast.slot_count(), usize::MAX);
            if !fast.search(text.as_bytes(), slots, stack)? {
                return Ok(None);
            }
            Ok(Some(self.fields(text, |i| {
                match (slots.get(2 * i), slots.get(2 * i + 1)) {
                    (Some(&s), Some(&e)) if s != usize::MAX && e != usize::MAX => Some((s, e)),
                    _ => None,
                }
            })))
        })
    }

    fn fields(&self, text: &str, span: impl Fn(usize) -> Option<(usize, usize)>) -> Fields {
        // Built as a vector of the right size, then moved into Fields
        // (collect reuses the allocation): no regrowth per record.
        let mut fields: Vec<(Text, Value)> = Vec::with_capacity(self.groups.len());
        for (i, name) in &self.groups {
            if let Some((s, e)) = span(*i) {
                if s == e && self.skip_empty {
                    continue;
                }
                // A byte-level `.` can end a capture inside a multi-byte
                // character; such a capture is kept lossily.
                let v = match text.get(s..e) {
                    Some(v) => Text::from(v),
                    None => Text::from(String::from_utf8_lossy(&text.as_bytes()[s..e])),
                };
                fields.push((name.clone(), Value::Str(v)));
            }
        }
        fields.into_iter().collect()
    }
}

impl LineParser for RegexParser {
    fn name(&self) -> &str {
        &self.name
    }

    fn parse(&self, text: &str) -> Result<Parsed> {
        let fast = self.fast.as_ref().map(|f| self.extract_fast(f, text));
        let fields = match fast {
            Some(Ok(found)) => found,
            _ => SLOTS.with(|cell| {
                let mut slot = cell.borrow_mut();
                // Slots belong to one regex; another parser on this thread
                // replaces them (a thread usually runs one parser).
                if slot.as_ref().is_none_or(|(id, _)| *id != self.id) {
                    *slot = Some((self.id, self.re.capture_locations()));
                }
                match slot.as_mut() {
                    Some((_, locs)) => self.extract(text, locs),
                    None => self.extract(text, &mut self.re.capture_locations()),
                }
            }),
        };
        let mut fields =
            fields.ok_or_else(|| fail(&self.name, "the line does not match the Regex"))?;
        let time_ns = self.post.apply(&mut fields);
        Ok(Parsed { fields, time_ns })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::Parsers;

    #[test]
    fn nginx_combined() {
        let p = Parsers::builtin().get("nginx").unwrap();
        let line = r#"192.168.1.10 - alice [17/Mar/2019:10:09:38 +0100] "GET /index.html?q=1 HTTP/1.1" 200 612 "http://example.com/" "Mozilla/5.0 (X11)""#;
        let out = p.parse(line).unwrap();
        assert_eq!(out.time_ns, Some(1_552_813_778_000_000_000));
        let s = crate::json::to_string(&Value::Map(out.fields));
        assert_eq!(
            s,
            r#"{"remote":"192.168.1.10","host":"-","user":"alice","method":"GET","path":"/index.html?q=1","code":"200","size":"612","referer":"http://example.com/","agent":"Mozilla/5.0 (X11)"}"#
        );
    }

    #[test]
    fn skip_empty_values_and_unmatched_optional_groups() {
        let p = RegexParser::new(
            "t",
            r"^(?<a>\w*)-(?<b>\w*)(?:!(?<c>\w+))?",
            TimeAndTypes::default(),
        )
        .unwrap();
        let out = p.parse("-x").unwrap();
        assert_eq!(out.fields.len(), 1);
        assert_eq!(out.fields.get("b"), Some(&Value::from("x")));
        let p = p.skip_empty_values(false);
        assert_eq!(p.parse("-x").unwrap().fields.len(), 2);
    }

    #[test]
    fn unsupported_constructs_are_clear_errors() {
        let e = RegexParser::new("t", r"(?<a>x)(?=y)", TimeAndTypes::default()).unwrap_err();
        assert!(e.contains("cannot compile"), "{e}");
        let e = RegexParser::new("t", r"(x)", TimeAndTypes::default()).unwrap_err();
        assert!(e.contains("no named capture"), "{e}");
    }

    #[test]
    fn ascii_classes_and_split_characters() {
        // `\w` is ASCII as in Onigmo.
        let p = RegexParser::new("t", r"^(?<w>\w+)", TimeAndTypes::default()).unwrap();
        assert_eq!(
            p.parse("héllo").unwrap().fields.get("w"),
            Some(&Value::from("h"))
        );
        // A byte-level `.` splits "é": kept lossily, never a panic.
        let p = RegexParser::new("t", r"^x(?<one>.)", TimeAndTypes::default()).unwrap();
        assert_eq!(
            p.parse("xé").unwrap().fields.get("one"),
            Some(&Value::from("\u{FFFD}"))
        );
        // Unicode classes still work.
        let p = RegexParser::new("t", r"^(?<l>\p{L}+)", TimeAndTypes::default()).unwrap();
        assert_eq!(
            p.parse("héllo").unwrap().fields.get("l"),
            Some(&Value::from("héllo"))
        );
    }

    #[test]
    fn two_parsers_on_one_thread_share_slots_safely() {
        let a = RegexParser::new("a", r"(?<x>\d+)", TimeAndTypes::default()).unwrap();
        let b = RegexParser::new(
            "b",
            r"(?<x>\d+)-(?<y>\d+)-(?<z>\d+)",
            TimeAndTypes::default(),
        )
        .unwrap();
        for _ in 0..3 {
            assert_eq!(a.parse("n=5").unwrap().fields.len(), 1);
            assert_eq!(b.parse("1-2-3").unwrap().fields.len(), 3);
        }
    }
}
