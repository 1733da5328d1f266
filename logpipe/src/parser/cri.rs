//! CRI container logs (`/var/log/containers/*.log` under containerd and
//! CRI-O): `<RFC 3339 nano time> <stdout|stderr> <P|F>[:<tags>] <message>`.
//!
//! [`CriParser`] reads one line as fluent-bit's shipped `cri` parser does
//! (fields `stream`, `logtag`, `message`, the time read and removed).
//! [`CriJoiner`] does what fluent-bit's `multiline.parser cri` does: it joins
//! the `P` (partial) fragments the runtime splits long lines into, per
//! stream, until the `F` (full) one, and emits `stream`, `_p`, `log`.

use super::{LineParser, Parsed, fail};
use crate::Result;
use crate::record::{Fields, Value};
use crate::strftime::TimeFormat;
use std::sync::OnceLock;

fn time_format() -> &'static TimeFormat {
    static F: OnceLock<TimeFormat> = OnceLock::new();
    F.get_or_init(|| TimeFormat::new("%Y-%m-%dT%H:%M:%S.%L%z").expect("CRI time format compiles"))
}

/// One CRI line, split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CriLine<'a> {
    /// The time as written.
    pub time: &'a str,
    /// `stdout` or `stderr`.
    pub stream: &'a str,
    /// The tag field (`P`, `F`, or `F:more`).
    pub logtag: &'a str,
    /// Whether this is a partial fragment (`P`).
    pub partial: bool,
    /// The message (may be empty).
    pub message: &'a str,
}

/// Splits a CRI line; the error says which part is missing.
pub fn split(line: &str) -> std::result::Result<CriLine<'_>, &'static str> {
    let line = line.strip_suffix('\n').unwrap_or(line);
    let (time, rest) = line.split_once(' ').ok_or("no space after the time")?;
    let (stream, rest) = rest.split_once(' ').ok_or("no space after the stream")?;
    if stream != "stdout" && stream != "stderr" {
        return Err("stream is neither stdout nor stderr");
    }
    let (logtag, message) = rest.split_once(' ').unwrap_or((rest, ""));
    let partial = match logtag.split(':').next() {
        Some("P") => true,
        Some("F") => false,
        _ => return Err("log tag is neither P nor F"),
    };
    if time.is_empty() {
        return Err("empty time");
    }
    Ok(CriLine {
        time,
        stream,
        logtag,
        partial,
        message,
    })
}

/// The `cri` parser.
#[derive(Debug)]
pub struct CriParser {
    name: String,
}

impl CriParser {
    /// A CRI parser named `name`.
    pub fn new(name: &str) -> CriParser {
        CriParser {
            name: name.to_owned(),
        }
    }
}

impl LineParser for CriParser {
    fn name(&self) -> &str {
        &self.name
    }

    fn parse(&self, text: &str) -> Result<Parsed> {
        let l = split(text).map_err(|m| fail(&self.name, m))?;
        let time_ns = time_format().parse(l.time, 0);
        let mut fields = Fields::new();
        if time_ns.is_none() {
            fields.push("time", l.time);
        }
        fields.push("stream", l.stream);
        fields.push("logtag", l.logtag);
        fields.push("message", l.message);
        Ok(Parsed { fields, time_ns })
    }
}

#[derive(Debug, Default)]
struct Pending {
    text: String,
    time_ns: Option<i64>,
    active: bool,
}

/// Joins CRI partial lines, per stream, into whole messages.
#[derive(Debug)]
pub struct CriJoiner {
    /// Index 0: stdout, 1: stderr.
    pending: [Pending; 2],
    max_bytes: usize,
}

impl Default for CriJoiner {
    fn default() -> Self {
        CriJoiner::new()
    }
}

impl CriJoiner {
    /// A joiner that holds at most 2 MiB per stream before emitting what it
    /// has (a runtime never ends a partial run otherwise).
    pub fn new() -> CriJoiner {
        CriJoiner {
            pending: Default::default(),
            max_bytes: 2 << 20,
        }
    }

    /// Sets the most bytes held per stream.
    pub fn with_max_bytes(mut self, max: usize) -> CriJoiner {
        self.max_bytes = max.max(1);
        self
    }

    /// Feeds one line. Returns the joined record when `line` completes one
    /// (an `F` line, or a `P` line that makes the pending text exceed the
    /// limit, emitted with `_p` = `P`). A malformed line is an error and
    /// leaves the pending fragments as they were.
    pub fn push(&mut self, line: &str) -> Result<Option<Parsed>> {
        let l = split(line).map_err(|m| fail("cri", m))?;
        let slot = &mut self.pending[usize::from(l.stream == "stderr")];
        if !slot.active {
            slot.active = true;
            slot.time_ns = time_format().parse(l.time, 0);
            slot.text.clear();
        }
        slot.text.push_str(l.message);
        if l.partial && slot.text.len() < self.max_bytes {
            return Ok(None);
        }
        Ok(Some(emit(slot, l.stream, l.partial)))
    }

    /// Whether fragments are waiting for their `F` line.
    pub fn is_pending(&self) -> bool {
        self.pending.iter().any(|p| p.active)
    }

    /// Emits whatever is pending (at end of file or on a flush timeout),
    /// with `_p` = `P`; stdout first.
    pub fn flush(&mut self) -> Vec<Parsed> {
        let mut out = Vec::new();
        for (i, stream) in ["stdout", "stderr"].into_iter().enumerate() {
            if self.pending[i].active {
                out.push(emit(&mut self.pending[i], stream, true));
            }
        }
        out
    }
}

fn emit(slot: &mut Pending, stream: &str, partial: bool) -> Parsed {
    slot.active = false;
    let mut fields = Fields::new();
    fields.push("stream", stream);
    fields.push("_p", if partial { "P" } else { "F" });
    fields.push("log", Value::from(std::mem::take(&mut slot.text)));
    Parsed {
        fields,
        time_ns: slot.time_ns.take(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parser_fields() {
        let p = CriParser::new("cri");
        let out = p
            .parse("2016-10-06T00:17:09.669794202Z stdout F The content of the log entry 1")
            .unwrap();
        assert_eq!(out.time_ns, Some(1_475_713_029_669_794_202));
        let s = crate::json::to_string(&Value::Map(out.fields));
        assert_eq!(
            s,
            r#"{"stream":"stdout","logtag":"F","message":"The content of the log entry 1"}"#
        );
        assert!(p.parse("2016 stdin F x").is_err());
        assert!(p.parse("nospace").is_err());
        let out = p.parse("2016-10-06T00:17:09Z stderr F").unwrap();
        assert_eq!(out.fields.get("message"), Some(&Value::from("")));
        // A time that does not read stays a field.
        let out = p.parse("yesterday stdout F x").unwrap();
        assert_eq!(out.time_ns, None);
        assert_eq!(out.fields.get("time"), Some(&Value::from("yesterday")));
    }

    #[test]
    fn joins_partials_per_stream() {
        let mut j = CriJoiner::new();
        assert!(
            j.push("2020-01-01T00:00:00.1Z stdout P part one, ")
                .unwrap()
                .is_none()
        );
        assert!(
            j.push("2020-01-01T00:00:00.2Z stderr P err ")
                .unwrap()
                .is_none()
        );
        assert!(j.push("bad line").is_err());
        let out = j
            .push("2020-01-01T00:00:00.3Z stdout F part two\n")
            .unwrap()
            .unwrap();
        assert_eq!(
            out.fields.get("log"),
            Some(&Value::from("part one, part two"))
        );
        assert_eq!(out.fields.get("_p"), Some(&Value::from("F")));
        assert_eq!(out.time_ns, Some(1_577_836_800_100_000_000));
        assert!(j.is_pending());
        let rest = j.flush();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].fields.get("stream"), Some(&Value::from("stderr")));
        assert_eq!(rest[0].fields.get("_p"), Some(&Value::from("P")));
        assert!(!j.is_pending());
    }

    #[test]
    fn limit_emits_long_runs() {
        let mut j = CriJoiner::new().with_max_bytes(8);
        assert!(j.push("t stdout P 12345").unwrap().is_none());
        let out = j.push("t stdout P 6789").unwrap().unwrap();
        assert_eq!(out.fields.get("log"), Some(&Value::from("123456789")));
        assert_eq!(out.fields.get("_p"), Some(&Value::from("P")));
    }
}
