//! Docker's json-file driver splits lines longer than 16 KiB into several
//! records; only the last one's `log` ends with `\n`. [`DockerJoiner`] does
//! what fluent-bit's `multiline.parser docker` does: it joins them, per
//! stream, and emits `log`, `stream`, `time` (the first fragment's) with the
//! time read, as the `docker` parser would for the whole line.

use super::{LineParser, Parsed, fail};
use crate::Result;
use crate::parser::JsonParser;
use crate::record::{Fields, Value};

#[derive(Debug, Default)]
struct Pending {
    log: String,
    time: Option<Value>,
    time_ns: Option<i64>,
    active: bool,
}

/// Joins Docker json-file fragments into whole lines.
#[derive(Debug)]
pub struct DockerJoiner {
    parser: JsonParser,
    /// Index 0: stdout (and anything else), 1: stderr.
    pending: [Pending; 2],
    max_bytes: usize,
}

impl Default for DockerJoiner {
    fn default() -> Self {
        DockerJoiner::new()
    }
}

impl DockerJoiner {
    /// A joiner that holds at most 2 MiB per stream before emitting.
    pub fn new() -> DockerJoiner {
        DockerJoiner {
            parser: JsonParser::docker(),
            pending: Default::default(),
            max_bytes: 2 << 20,
        }
    }

    /// Sets the most bytes held per stream.
    pub fn with_max_bytes(mut self, max: usize) -> DockerJoiner {
        self.max_bytes = max.max(1);
        self
    }

    /// Feeds one json-file line; returns the whole record when this line
    /// ends one. A line that is not a json-file record (no string `log`) is
    /// an error and leaves the pending fragments as they were.
    pub fn push(&mut self, line: &str) -> Result<Option<Parsed>> {
        let mut parsed = self.parser.parse(line)?;
        let Some(Value::Str(log)) = parsed.fields.remove("log") else {
            return Err(fail("docker", "no string \"log\" field"));
        };
        let stream = match parsed.fields.get("stream") {
            Some(Value::Str(s)) => s.to_string(),
            _ => "stdout".to_owned(),
        };
        let slot = &mut self.pending[usize::from(stream == "stderr")];
        if !slot.active {
            slot.active = true;
            slot.log.clear();
            slot.time = parsed.fields.get("time").cloned();
            slot.time_ns = parsed.time_ns;
        }
        slot.log.push_str(&log);
        if !log.ends_with('\n') && slot.log.len() < self.max_bytes {
            return Ok(None);
        }
        Ok(Some(emit(slot, stream)))
    }

    /// Whether fragments wait for their last part.
    pub fn is_pending(&self) -> bool {
        self.pending.iter().any(|p| p.active)
    }

    /// Emits whatever is pending (end of file, flush timeout).
    pub fn flush(&mut self) -> Vec<Parsed> {
        let mut out = Vec::new();
        for (i, stream) in ["stdout", "stderr"].into_iter().enumerate() {
            if self.pending[i].active {
                out.push(emit(&mut self.pending[i], stream.to_owned()));
            }
        }
        out
    }
}

fn emit(slot: &mut Pending, stream: String) -> Parsed {
    slot.active = false;
    let mut fields = Fields::new();
    fields.push("log", Value::from(std::mem::take(&mut slot.log)));
    fields.push("stream", stream);
    if let Some(t) = slot.time.take() {
        fields.push("time", t);
    }
    Parsed {
        fields,
        time_ns: slot.time_ns.take(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_until_newline_per_stream() {
        let mut j = DockerJoiner::new();
        let a = r#"{"log":"part 1 ","stream":"stdout","time":"2020-01-02T03:04:05.1Z"}"#;
        let e = r#"{"log":"err ","stream":"stderr","time":"2020-01-02T03:04:05.2Z"}"#;
        let b = r#"{"log":"part 2\n","stream":"stdout","time":"2020-01-02T03:04:05.3Z"}"#;
        assert!(j.push(a).unwrap().is_none());
        assert!(j.push(e).unwrap().is_none());
        assert!(j.push("{}").is_err());
        let out = j.push(b).unwrap().unwrap();
        assert_eq!(
            crate::json::to_string(&Value::Map(out.fields)),
            r#"{"log":"part 1 part 2\n","stream":"stdout","time":"2020-01-02T03:04:05.1Z"}"#
        );
        assert_eq!(out.time_ns, Some(1_577_934_245_100_000_000));
        let rest = j.flush();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].fields.get("log"), Some(&Value::from("err ")));
        assert!(!j.is_pending());
    }

    #[test]
    fn whole_lines_pass_and_limit_applies() {
        let mut j = DockerJoiner::new().with_max_bytes(4);
        let out = j
            .push(r#"{"log":"x\n","stream":"stdout"}"#)
            .unwrap()
            .unwrap();
        assert_eq!(out.fields.get("log"), Some(&Value::from("x\n")));
        let out = j
            .push(r#"{"log":"abcdef","stream":"stdout"}"#)
            .unwrap()
            .unwrap();
        assert_eq!(out.fields.get("log"), Some(&Value::from("abcdef")));
    }
}
