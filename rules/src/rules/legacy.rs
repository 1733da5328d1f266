//! The Prometheus 1.x rule syntax:
//!
//! ```text
//! # comment
//! ALERT <name>
//!   IF <expr>
//!   [ FOR <duration> ]
//!   [ LABELS { name = "value", ... } ]
//!   [ ANNOTATIONS { name = "value", ... } ]
//!
//! <record>[{ name = "value", ... }] = <expr>
//! ```
//!
//! Keywords are case-insensitive. An expression runs until the next clause
//! keyword (`FOR`, `LABELS`, `ANNOTATIONS`, `ALERT`) outside brackets and
//! quotes, or until a line that starts a recording rule. Prometheus 1.x
//! refused a line break inside a quoted label value; we read one (with the
//! indentation around it) as a single space, because documents that print
//! rules wrap long values (the seed rule's summary is an example).

use super::{AlertingRule, RecordingRule, Rule, RuleGroup};
use crate::Error;
use crate::error::line_col;
use crate::promql::parse_duration;

/// Parses a legacy rule file into one group named `group`.
pub fn parse_legacy(text: &str, group: &str) -> Result<RuleGroup, Error> {
    let mut sc = Scanner { s: text, pos: 0 };
    let mut rules = Vec::new();
    loop {
        sc.skip();
        if sc.pos >= text.len() {
            break;
        }
        let start = sc.pos;
        let Some(word) = sc.word() else {
            return Err(sc.err(start, "expected ALERT or a recording rule"));
        };
        if word.eq_ignore_ascii_case("ALERT") {
            rules.push(Rule::Alerting(sc.alert()?));
        } else {
            rules.push(Rule::Recording(sc.recording(word.to_string())?));
        }
    }
    Ok(RuleGroup {
        name: group.to_string(),
        interval: None,
        query_offset: None,
        limit: 0,
        labels: Vec::new(),
        rules,
    })
}

struct Scanner<'a> {
    s: &'a str,
    pos: usize,
}

fn is_word_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c == b':'
}

fn is_word(c: u8) -> bool {
    is_word_start(c) || c.is_ascii_digit()
}

const CLAUSES: [&str; 4] = ["FOR", "LABELS", "ANNOTATIONS", "ALERT"];

impl<'a> Scanner<'a> {
    fn b(&self) -> &'a [u8] {
        self.s.as_bytes()
    }

    fn peek(&self) -> Option<u8> {
        self.b().get(self.pos).copied()
    }

    fn err(&self, at: usize, msg: impl Into<String>) -> Error {
        let (line, column) = line_col(self.s, at);
        Error::Rule {
            line,
            column,
            message: msg.into(),
        }
    }

    /// Skips whitespace and `#` comments.
    fn skip(&mut self) {
        while let Some(c) = self.peek() {
            if c.is_ascii_whitespace() {
                self.pos += 1;
            } else if c == b'#' {
                while self.peek().is_some_and(|c| c != b'\n') {
                    self.pos += 1;
                }
            } else {
                break;
            }
        }
    }

    fn word(&mut self) -> Option<&'a str> {
        let start = self.pos;
        if !self.peek().is_some_and(is_word_start) {
            return None;
        }
        while self.peek().is_some_and(is_word) {
            self.pos += 1;
        }
        Some(&self.s[start..self.pos])
    }

    /// The clause keyword at the cursor, without consuming it.
    fn keyword(&self) -> Option<&'static str> {
        let rest = &self.b()[self.pos..];
        CLAUSES.into_iter().find(|k| {
            rest.len() >= k.len()
                && rest[..k.len()].eq_ignore_ascii_case(k.as_bytes())
                && !rest.get(k.len()).is_some_and(|c| is_word(*c))
        })
    }

    fn expect_keyword(&mut self, kw: &str) -> Result<(), Error> {
        self.skip();
        let at = self.pos;
        match self.word() {
            Some(w) if w.eq_ignore_ascii_case(kw) => Ok(()),
            _ => Err(self.err(at, format!("expected {kw}"))),
        }
    }

    fn alert(&mut self) -> Result<AlertingRule, Error> {
        self.skip();
        let at = self.pos;
        let name = self
            .word()
            .ok_or_else(|| self.err(at, "expected an alert name after ALERT"))?
            .to_string();
        self.expect_keyword("IF")?;
        let expr = self.expr()?;
        let mut rule = AlertingRule {
            alert: name,
            expr,
            for_ms: 0,
            keep_firing_for_ms: 0,
            labels: Vec::new(),
            annotations: Vec::new(),
        };
        loop {
            self.skip();
            let at = self.pos;
            match self.keyword() {
                Some("FOR") => {
                    self.pos += 3;
                    self.skip();
                    let ds = self.pos;
                    while self.peek().is_some_and(|c| c.is_ascii_alphanumeric()) {
                        self.pos += 1;
                    }
                    let d = &self.s[ds..self.pos];
                    rule.for_ms = parse_duration(d)
                        .ok_or_else(|| self.err(ds, format!("bad duration {d:?} after FOR")))?;
                }
                Some("LABELS") => {
                    self.pos += 6;
                    rule.labels = self.label_set()?;
                }
                Some("ANNOTATIONS") => {
                    self.pos += 11;
                    rule.annotations = self.label_set()?;
                }
                _ => {
                    let _ = at;
                    break;
                }
            }
        }
        Ok(rule)
    }

    fn recording(&mut self, record: String) -> Result<RecordingRule, Error> {
        self.skip();
        let labels = if self.peek() == Some(b'{') {
            self.label_set()?
        } else {
            Vec::new()
        };
        self.skip();
        let at = self.pos;
        if self.peek() != Some(b'=') || matches!(self.b().get(self.pos + 1), Some(b'=' | b'~')) {
            return Err(self.err(
                at,
                format!("expected \"=\" after the recording rule name {record:?}"),
            ));
        }
        self.pos += 1;
        let expr = self.expr()?;
        Ok(RecordingRule {
            record,
            expr,
            labels,
        })
    }

    /// The expression from the cursor to the next clause or rule; it must
    /// parse as PromQL.
    fn expr(&mut self) -> Result<String, Error> {
        let start = self.pos;
        let b = self.b();
        let mut depth = 0usize;
        let mut i = start;
        let mut line_start = false;
        while i < b.len() {
            let c = b[i];
            match c {
                b'"' | b'\'' | b'`' => {
                    i += 1;
                    while i < b.len() && b[i] != c {
                        if b[i] == b'\\' && c != b'`' {
                            i += 1;
                        }
                        i += 1;
                    }
                }
                b'#' => {
                    while i < b.len() && b[i] != b'\n' {
                        i += 1;
                    }
                    continue;
                }
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' => depth = depth.saturating_sub(1),
                b'\n' => line_start = true,
                _ if depth == 0 && is_word_start(c) && (i == 0 || !is_word(b[i - 1])) => {
                    self.pos = i;
                    if self.keyword().is_some() || (line_start && self.starts_recording()) {
                        break;
                    }
                }
                _ => {}
            }
            if !c.is_ascii_whitespace() {
                line_start = false;
            }
            i += 1;
        }
        let end = i.min(b.len());
        self.pos = end;
        let text = self.s[start..end].trim();
        if text.is_empty() {
            return Err(self.err(start, "expected an expression"));
        }
        crate::parse(text).map_err(|e| {
            let lead = self.s[start..].len() - self.s[start..].trim_start().len();
            match e {
                Error::Parse {
                    line,
                    column,
                    message,
                } => {
                    // Positions inside the expression, moved to the file.
                    let base = start + lead;
                    let (bl, bc) = line_col(self.s, base);
                    let (l, c) = if line == 1 {
                        (bl, bc + column - 1)
                    } else {
                        (bl + line - 1, column)
                    };
                    Error::Rule {
                        line: l,
                        column: c,
                        message: format!("parse error: {message}"),
                    }
                }
                other => other,
            }
        })?;
        Ok(text.to_string())
    }

    /// Whether a recording rule (`name{...} =`) starts at the cursor.
    fn starts_recording(&self) -> bool {
        let b = self.b();
        let mut i = self.pos;
        while i < b.len() && is_word(b[i]) {
            i += 1;
        }
        while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
            i += 1;
        }
        if i < b.len() && b[i] == b'{' {
            while i < b.len() && b[i] != b'}' {
                i += 1;
            }
            i += 1;
            while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
                i += 1;
            }
        }
        i < b.len() && b[i] == b'=' && !matches!(b.get(i + 1), Some(b'=' | b'~'))
    }

    /// `{ name = "value", ... }`
    fn label_set(&mut self) -> Result<Vec<(String, String)>, Error> {
        self.skip();
        let at = self.pos;
        if self.peek() != Some(b'{') {
            return Err(self.err(at, "expected \"{\""));
        }
        self.pos += 1;
        let mut out: Vec<(String, String)> = Vec::new();
        loop {
            self.skip();
            let at = self.pos;
            match self.peek() {
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(out);
                }
                None => return Err(self.err(at, "unclosed \"{\"")),
                _ => {}
            }
            let name = match self.peek() {
                Some(b'"' | b'\'' | b'`') => self.string()?,
                _ => self
                    .word()
                    .ok_or_else(|| self.err(at, "expected a label name"))?
                    .to_string(),
            };
            self.skip();
            if self.peek() != Some(b'=') {
                return Err(self.err(
                    self.pos,
                    format!("expected \"=\" after label name {name:?}"),
                ));
            }
            self.pos += 1;
            self.skip();
            let value = self.string()?;
            if out.iter().any(|(n, _)| *n == name) {
                return Err(self.err(at, format!("label {name:?} appears twice")));
            }
            out.push((name, value));
            self.skip();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {}
                _ => return Err(self.err(self.pos, "expected \",\" or \"}\"")),
            }
        }
    }

    /// A quoted string with Go escapes; a raw line break (with the
    /// whitespace around it) reads as one space.
    fn string(&mut self) -> Result<String, Error> {
        let start = self.pos;
        let q = self
            .peek()
            .ok_or_else(|| self.err(start, "expected a string"))?;
        if !matches!(q, b'"' | b'\'' | b'`') {
            return Err(self.err(start, "expected a quoted string"));
        }
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.s[self.pos..].chars().next() else {
                return Err(self.err(start, "unterminated quoted string"));
            };
            self.pos += c.len_utf8();
            if c as u32 == u32::from(q) {
                return Ok(out);
            }
            match c {
                '\n' | '\r' => {
                    while out.ends_with([' ', '\t']) {
                        out.pop();
                    }
                    while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
                        self.pos += 1;
                    }
                    out.push(' ');
                }
                '\\' if q != b'`' => {
                    let Some(e) = self.s[self.pos..].chars().next() else {
                        return Err(self.err(start, "unterminated quoted string"));
                    };
                    self.pos += e.len_utf8();
                    match e {
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'r' => out.push('\r'),
                        '\\' => out.push('\\'),
                        '"' => out.push('"'),
                        '\'' => out.push('\''),
                        'u' | 'U' | 'x' => {
                            let n = match e {
                                'x' => 2,
                                'u' => 4,
                                _ => 8,
                            };
                            let hex = self.s.get(self.pos..self.pos + n).unwrap_or("");
                            let v = u32::from_str_radix(hex, 16)
                                .ok()
                                .and_then(char::from_u32)
                                .ok_or_else(|| self.err(self.pos, "bad escape in string"))?;
                            self.pos += n;
                            out.push(v);
                        }
                        other => {
                            return Err(self.err(self.pos, format!("unknown escape \\{other}")));
                        }
                    }
                }
                c => out.push(c),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seed document's rule, exactly as printed there (the summary
    /// string is broken across a line).
    const SEED: &str = "ALERT Example\n  IF metricsCPU > 0.9\n  FOR 10m\n  LABELS {severity=\"High\"}\n  ANNOTATIONS {description=\"Node CPU too high: {{ $labels.instance }} CPU {{$value}}\", summary=\"Node\nCPU too high\"}\n";

    #[test]
    fn seed_rule_loads_and_converts() {
        let g = parse_legacy(SEED, "seed").unwrap();
        assert_eq!(
            g.rules,
            vec![Rule::Alerting(AlertingRule {
                alert: "Example".into(),
                expr: "metricsCPU > 0.9".into(),
                for_ms: 600_000,
                keep_firing_for_ms: 0,
                labels: vec![("severity".into(), "High".into())],
                annotations: vec![
                    (
                        "description".into(),
                        "Node CPU too high: {{ $labels.instance }} CPU {{$value}}".into()
                    ),
                    ("summary".into(), "Node CPU too high".into()),
                ],
            })]
        );
        let golden = "groups:\n  - name: \"seed\"\n    rules:\n      - alert: \"Example\"\n        expr: \"metricsCPU > 0.9\"\n        for: 10m\n        labels:\n          \"severity\": \"High\"\n        annotations:\n          \"description\": \"Node CPU too high: {{ $labels.instance }} CPU {{$value}}\"\n          \"summary\": \"Node CPU too high\"\n";
        assert_eq!(g.to_yaml(), golden);
    }

    #[test]
    fn recording_rules_comments_and_multiline_exprs() {
        let text = "# comments are skipped\njob:up:sum = sum by (job) (up)\ninstance:errors:rate5m{team=\"a\"} =\n  rate(errors_total[5m])\n    / on(instance) rate(requests_total[5m])\nALERT Down IF ALERTS{alertname=\"x\"} == 0 for 5m\n";
        let g = parse_legacy(text, "g").unwrap();
        assert_eq!(g.rules.len(), 3);
        let Rule::Recording(r) = &g.rules[1] else {
            panic!("{:?}", g.rules[1])
        };
        assert_eq!(r.record, "instance:errors:rate5m");
        assert_eq!(r.labels, vec![("team".into(), "a".into())]);
        assert!(r.expr.starts_with("rate(errors_total[5m])"), "{}", r.expr);
        let Rule::Alerting(a) = &g.rules[2] else {
            panic!()
        };
        assert_eq!(a.expr, "ALERTS{alertname=\"x\"} == 0");
        assert_eq!(a.for_ms, 300_000);
    }

    #[test]
    fn errors_say_where() {
        let e = parse_legacy("ALERT X\n  IF rate(x)\n", "g").unwrap_err();
        let msg = e.to_string();
        // The column of the offending argument, in the file.
        assert!(msg.starts_with("2:11: rule error: parse error:"), "{msg}");
        assert!(msg.contains("expected type range vector"), "{msg}");
        let e = parse_legacy("ALERT X IF up FOR 10 parsecs", "g").unwrap_err();
        assert!(e.to_string().contains("bad duration"), "{e}");
        let e = parse_legacy("ALERT X IF up LABELS {a=\"b\"", "g").unwrap_err();
        assert!(e.to_string().contains("expected \",\" or \"}\""), "{e}");
    }
}
