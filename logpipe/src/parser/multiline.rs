//! Multiline assembly: lines that belong to one event (a stack trace, a
//! message continued on indented lines) are joined with `\n` before parsing.
//!
//! A [`MultilineSpec`] is the compiled rule set, shared; a [`Multiline`] is
//! the per-stream state (one per tailed file). Two kinds of spec:
//!
//! - **Rules**, fluent-bit's `[MULTILINE_PARSER]` with `type regex`: each
//!   `rule "<from states>" "/<regex>/" "<to state>"` (from states may be a
//!   comma-separated list). A line matching a `start_state` rule begins an
//!   event; while an event is open, a line matching a rule whose from state
//!   is the current state continues it (the state moves to the rule's to
//!   state). Any other line closes the open event, and is itself either the
//!   start of the next one or an event of its own. Continuation rules are
//!   tried before start rules, as fluent-bit does.
//! - **First line**, the legacy tail `Multiline On` + `Parser_Firstline`: a
//!   line matching the first-line regex starts an event, any other line
//!   continues the open one.
//!
//! Built-in modes `java`, `python` and `go` are rule sets written for those
//! runtimes' stack traces. An event that waits longer than the flush
//! timeout is emitted by the caller through [`Multiline::flush`].

use crate::Result;
use crate::config::Section;
use crate::parser::Parsers;
use std::sync::Arc;
use std::time::{Duration, Instant};

const START: u16 = 0;

#[derive(Debug)]
struct Rule {
    from: Vec<u16>,
    re: regex::Regex,
    to: u16,
}

#[derive(Debug)]
enum Kind {
    Rules(Vec<Rule>),
    FirstLine(regex::Regex),
}

/// A compiled multiline rule set.
#[derive(Debug)]
pub struct MultilineSpec {
    name: String,
    kind: Kind,
    flush_timeout: Duration,
    key_content: Option<String>,
    max_bytes: usize,
}

/// fluent-bit's default `flush_timeout` (milliseconds).
const DEFAULT_FLUSH_MS: u64 = 4000;

impl MultilineSpec {
    /// Builds a spec from rules given as (from states, regex, to state).
    pub fn from_rules(
        name: &str,
        rules: &[(&str, &str, &str)],
    ) -> std::result::Result<MultilineSpec, String> {
        let mut states: Vec<String> = vec!["start_state".into()];
        let mut id = |s: &str| -> u16 {
            let s = s.trim();
            match states.iter().position(|x| x == s) {
                Some(i) => i as u16,
                None => {
                    states.push(s.to_owned());
                    (states.len() - 1) as u16
                }
            }
        };
        let mut compiled = Vec::new();
        for (from, re, to) in rules {
            let re = regex::Regex::new(re)
                .map_err(|e| format!("multiline parser {name}: cannot compile rule regex: {e}"))?;
            let from: Vec<u16> = from.split(',').map(&mut id).collect();
            let to = id(to);
            compiled.push(Rule { from, re, to });
        }
        if !compiled.iter().any(|r| r.from.contains(&START)) {
            return Err(format!(
                "multiline parser {name}: no rule starts from \"start_state\""
            ));
        }
        Ok(MultilineSpec {
            name: name.to_owned(),
            kind: Kind::Rules(compiled),
            flush_timeout: Duration::from_millis(DEFAULT_FLUSH_MS),
            key_content: None,
            max_bytes: 2 << 20,
        })
    }

    /// The legacy first-line mode: `first_line` starts an event, every
    /// other line continues it.
    pub fn first_line(
        name: &str,
        first_line: regex::Regex,
        flush_timeout: Duration,
    ) -> MultilineSpec {
        MultilineSpec {
            name: name.to_owned(),
            kind: Kind::FirstLine(first_line),
            flush_timeout,
            key_content: None,
            max_bytes: 2 << 20,
        }
    }

    /// Reads a `[MULTILINE_PARSER]` section (`name`, `type regex`,
    /// `flush_timeout` in milliseconds, `key_content`, `rule` ...).
    pub fn from_section(s: &Section, _parsers: &Parsers) -> Result<MultilineSpec> {
        let name = s
            .name()
            .ok_or_else(|| s.error(None, "[MULTILINE_PARSER] without a name"))?;
        if let Some(e) = s.entry("parser") {
            return Err(s.error(
                Some(e),
                format!("multiline parser {name}: 'parser' (pre-parsing) is not supported by vigil-logpipe"),
            ));
        }
        s.check_keys(&["type", "flush_timeout", "key_content", "rule"])?;
        match s.get("type") {
            Some(t) if t.eq_ignore_ascii_case("regex") => {}
            Some(t) => {
                return Err(s.error_at(
                    "type",
                    format!("multiline parser {name}: type '{t}' is not supported (only regex)"),
                ));
            }
            None => return Err(s.error(None, format!("multiline parser {name}: no type"))),
        }
        let mut rules: Vec<(String, String, String)> = Vec::new();
        for e in s.get_all("rule") {
            let parts = quoted_parts(&e.value);
            let [from, re, to] = parts.as_slice() else {
                return Err(s.error(
                    Some(e),
                    format!(
                        "rule wants three quoted parts: \"from\" \"/regex/\" \"to\", got {}",
                        e.value
                    ),
                ));
            };
            let re = re
                .strip_prefix('/')
                .and_then(|r| r.strip_suffix('/'))
                .ok_or_else(|| s.error(Some(e), format!("rule regex {re} is not written /.../")))?;
            rules.push((from.clone(), re.to_owned(), to.clone()));
        }
        let borrowed: Vec<(&str, &str, &str)> = rules
            .iter()
            .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()))
            .collect();
        let mut spec = MultilineSpec::from_rules(name, &borrowed).map_err(|m| s.error(None, m))?;
        if let Some(ms) = s.get_usize("flush_timeout")? {
            spec.flush_timeout = Duration::from_millis(ms as u64);
        }
        spec.key_content = s.get("key_content").map(str::to_owned);
        Ok(spec)
    }

    /// A built-in mode: `java`, `python` or `go`.
    pub fn builtin(name: &str) -> Option<MultilineSpec> {
        let rules: &[(&str, &str, &str)] = match name {
            "java" => &[
                (
                    "start_state",
                    r#"^(?:Exception in thread "[^"]*" )?(?:[a-zA-Z_$][\w$]*\.)+[A-Z][\w$]*(?:Exception|Error|Throwable)\b.*$"#,
                    "java_after_exception",
                ),
                ("java_after_exception, java", r"^[\t ]+at \S.*$", "java"),
                (
                    "java_after_exception, java",
                    r"^[\t ]+\.\.\. \d+ (?:more|common frames omitted)\s*$",
                    "java",
                ),
                (
                    "java_after_exception, java",
                    r"^[\t ]*(?:Caused by|Suppressed): \S.*$",
                    "java_after_exception",
                ),
            ],
            "python" => &[
                (
                    "start_state",
                    r"^Traceback \(most recent call last\):\s*$",
                    "python",
                ),
                (
                    "python, python_code",
                    r#"^[\t ]+File "[^"]*", line \d+.*$"#,
                    "python_code",
                ),
                ("python_code", r"^[\t ]+\S.*$", "python"),
                (
                    "python, python_code",
                    r"^(?:[A-Za-z_][\w.]*(?:Error|Exception|Warning|Exit|Interrupt|Iteration)|KeyboardInterrupt)(?::.*)?$",
                    "python_end",
                ),
            ],
            "go" => &[
                ("start_state", r"^(?:panic: |fatal error: )", "go"),
                ("go", r"^$", "go"),
                ("go", r"^goroutine \d+ \[.*\]:$", "go"),
                ("go", r"^\t", "go"),
                ("go", r"^[\w./()*\[\]{}-]+\(.*\)$", "go"),
                ("go", r"^(?:created by |\[signal |exit status \d+$)", "go"),
            ],
            _ => return None,
        };
        Some(MultilineSpec::from_rules(name, rules).expect("built-in multiline rules compile"))
    }

    /// The parser's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How long an open event may wait for more lines.
    pub fn flush_timeout(&self) -> Duration {
        self.flush_timeout
    }

    /// The field that holds the text in structured records (`key_content`).
    pub fn key_content(&self) -> Option<&str> {
        self.key_content.as_deref()
    }

    /// Sets the flush timeout.
    pub fn with_flush_timeout(mut self, t: Duration) -> MultilineSpec {
        self.flush_timeout = t;
        self
    }

    /// Sets the most bytes one event may hold before it is emitted anyway.
    pub fn with_max_bytes(mut self, max: usize) -> MultilineSpec {
        self.max_bytes = max.max(1);
        self
    }
}

/// The parts of a rule value: double-quoted strings separated by white
/// space. A quote ends a part only when white space or the end follows, so
/// regexes with quotes inside (`[^"]*`) survive.
fn quoted_parts(v: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let b = v.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if b[i] != b'"' {
            let start = i;
            while i < b.len() && !b[i].is_ascii_whitespace() {
                i += 1;
            }
            parts.push(v[start..i].to_owned());
            continue;
        }
        let start = i + 1;
        let mut j = start;
        loop {
            match b[j..].iter().position(|&c| c == b'"') {
                Some(k) => {
                    j += k;
                    if j + 1 == b.len() || b[j + 1].is_ascii_whitespace() {
                        break;
                    }
                    j += 1;
                }
                None => {
                    j = b.len();
                    break;
                }
            }
        }
        parts.push(v[start..j].to_owned());
        i = j + 1;
    }
    parts
}

/// Per-stream multiline state.
#[derive(Debug)]
pub struct Multiline {
    spec: Arc<MultilineSpec>,
    buf: String,
    state: Option<u16>,
    since: Option<Instant>,
}

impl Multiline {
    /// Fresh state for one stream.
    pub fn new(spec: Arc<MultilineSpec>) -> Multiline {
        Multiline {
            spec,
            buf: String::new(),
            state: None,
            since: None,
        }
    }

    /// The spec this state runs.
    pub fn spec(&self) -> &Arc<MultilineSpec> {
        &self.spec
    }

    /// Feeds one line (without its newline). Returns the events it
    /// completed, oldest first: none while an event grows, the closed event
    /// and/or this line when it does not continue.
    pub fn push(&mut self, line: &str) -> Vec<String> {
        let line = line.strip_suffix('\n').unwrap_or(line);
        let mut out = Vec::new();
        if let Some(st) = self.state {
            if self.continues(st, line) {
                self.buf.push('\n');
                self.buf.push_str(line);
                if self.buf.len() >= self.spec.max_bytes {
                    out.extend(self.flush());
                }
                return out;
            }
            out.extend(self.flush());
        }
        match self.starts(line) {
            Some(to) => {
                self.buf.clear();
                self.buf.push_str(line);
                self.state = Some(to);
                self.since = Some(Instant::now());
            }
            None => out.push(line.to_owned()),
        }
        out
    }

    fn continues(&mut self, st: u16, line: &str) -> bool {
        match &self.spec.kind {
            Kind::FirstLine(re) => !re.is_match(line),
            Kind::Rules(rules) => {
                if st == START {
                    return false;
                }
                match rules
                    .iter()
                    .find(|r| r.from.contains(&st) && r.re.is_match(line))
                {
                    Some(r) => {
                        self.state = Some(r.to);
                        true
                    }
                    None => false,
                }
            }
        }
    }

    fn starts(&self, line: &str) -> Option<u16> {
        match &self.spec.kind {
            Kind::FirstLine(re) => re.is_match(line).then_some(1),
            Kind::Rules(rules) => rules
                .iter()
                .find(|r| r.from.contains(&START) && r.re.is_match(line))
                .map(|r| r.to),
        }
    }

    /// When the open event started, if one is open.
    pub fn pending_since(&self) -> Option<Instant> {
        self.since
    }

    /// Emits the open event if it has waited at least the flush timeout.
    pub fn flush_if_due(&mut self, now: Instant) -> Option<String> {
        let since = self.since?;
        (now.saturating_duration_since(since) >= self.spec.flush_timeout)
            .then(|| self.flush())
            .flatten()
    }

    /// Emits the open event, if any (end of file, timeout, shutdown).
    pub fn flush(&mut self) -> Option<String> {
        self.state.take()?;
        self.since = None;
        Some(std::mem::take(&mut self.buf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(spec: MultilineSpec, lines: &[&str]) -> Vec<String> {
        let mut m = Multiline::new(Arc::new(spec));
        let mut out = Vec::new();
        for l in lines {
            out.extend(m.push(l));
        }
        out.extend(m.flush());
        out
    }

    #[test]
    fn java_stack_trace() {
        let out = run(
            MultilineSpec::builtin("java").unwrap(),
            &[
                "2024-01-01 ERROR failed",
                "java.lang.IllegalStateException: boom",
                "\tat com.example.App.run(App.java:10)",
                "\tat com.example.App.main(App.java:5)",
                "Caused by: java.io.IOException: disk",
                "\tat com.example.Disk.read(Disk.java:3)",
                "\t... 2 more",
                "2024-01-01 INFO next",
            ],
        );
        assert_eq!(out.len(), 3, "{out:#?}");
        assert_eq!(out[0], "2024-01-01 ERROR failed");
        assert!(
            out[1].starts_with("java.lang.IllegalStateException: boom\n\tat com.example.App.run")
        );
        assert!(out[1].ends_with("\t... 2 more"));
        assert_eq!(out[2], "2024-01-01 INFO next");
    }

    #[test]
    fn python_and_go() {
        let out = run(
            MultilineSpec::builtin("python").unwrap(),
            &[
                "Traceback (most recent call last):",
                "  File \"x.py\", line 3, in <module>",
                "    main()",
                "  File \"x.py\", line 2, in main",
                "    raise ValueError('bad')",
                "ValueError: bad",
                "after",
            ],
        );
        assert_eq!(out.len(), 2, "{out:#?}");
        assert!(out[0].ends_with("ValueError: bad"));
        let out = run(
            MultilineSpec::builtin("go").unwrap(),
            &[
                "panic: oops",
                "",
                "goroutine 1 [running]:",
                "main.main()",
                "\t/app/main.go:5 +0x1d",
                "exit status 2",
                "next",
            ],
        );
        assert_eq!(out.len(), 2, "{out:#?}");
        assert_eq!(out[0].lines().count(), 6);
    }

    #[test]
    fn section_rules_and_errors() {
        let s = Section::new(crate::config::SectionKind::MultilineParser, "p.conf", 1)
            .with("name", "ml")
            .with("type", "regex")
            .with("flush_timeout", "500")
            .with(
                "rule",
                r#""start_state"   "/^\d{4}-\d\d-\d\d "x"/"  "cont""#,
            )
            .with("rule", r#""cont" "/^\s+/" "cont""#);
        let spec = MultilineSpec::from_section(&s, &Parsers::builtin()).unwrap();
        assert_eq!(spec.flush_timeout(), Duration::from_millis(500));
        let out = run(
            spec,
            &[
                "2024-01-01 \"x\" a",
                "  b",
                "  c",
                "2024-01-02 \"x\" d",
                "e",
            ],
        );
        assert_eq!(
            out,
            ["2024-01-01 \"x\" a\n  b\n  c", "2024-01-02 \"x\" d", "e"]
        );

        let bad = Section::new(crate::config::SectionKind::MultilineParser, "p.conf", 1)
            .with("name", "ml")
            .with("type", "regex")
            .with("rule", r#""cont" "/x/" "cont""#);
        let e = MultilineSpec::from_section(&bad, &Parsers::builtin())
            .unwrap_err()
            .to_string();
        assert!(e.contains("start_state"), "{e}");
        let bad = Section::new(crate::config::SectionKind::MultilineParser, "p.conf", 1)
            .with("name", "ml")
            .with("type", "regex")
            .with("rule", r#""start_state" "x" "cont""#);
        let e = MultilineSpec::from_section(&bad, &Parsers::builtin())
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("p.conf:4:"), "{e}");
    }

    #[test]
    fn first_line_mode_and_timeout() {
        let spec =
            MultilineSpec::first_line("fl", regex::Regex::new(r"^\[").unwrap(), Duration::ZERO);
        let mut m = Multiline::new(Arc::new(spec));
        assert_eq!(m.push("orphan"), ["orphan"]);
        assert!(m.push("[1] a").is_empty());
        assert!(m.push("b").is_empty());
        assert!(m.pending_since().is_some());
        assert_eq!(m.flush_if_due(Instant::now()).as_deref(), Some("[1] a\nb"));
        assert!(m.flush().is_none());
    }

    #[test]
    fn max_bytes_emits_long_events() {
        let spec =
            MultilineSpec::first_line("fl", regex::Regex::new(r"^\[").unwrap(), Duration::ZERO)
                .with_max_bytes(10);
        let out = run(spec, &["[1] aaaa", "bbbbbb", "cc"]);
        assert_eq!(out, ["[1] aaaa\nbbbbbb", "cc"]);
    }
}
