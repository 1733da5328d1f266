//! The `stdout` output: records printed as fluent-bit prints them.
//!
//! `Format msgpack` (the default) is fluent-bit's debug print:
//! `[0] tag: [[1700000000.123456789, {}], {"log"=>"line"}]`, the index
//! counting the records of one flush, maps as `{"k"=>v, ...}`, floats with
//! six decimals, `nil` for null, strings unescaped (as msgpack-c prints
//! them). `json_lines` prints one JSON object per line, `json` one array
//! per flush, both with the time under `json_date_key` (`date`).

use super::{DateFormat, Flush, Output, split_time, write_json_record};
use crate::config::Section;
use crate::error::Result;
use crate::record::{Fields, Record, Value};
use std::fmt::Write as _;
use std::io::Write;

/// The keys of the stdout output.
pub const KEYS: &[&str] = &["format", "json_date_key", "json_date_format"];

/// How records are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StdoutFormat {
    /// fluent-bit's `[0] tag: [[time, {}], {...}]`.
    Msgpack,
    /// One JSON array per flush.
    Json,
    /// One JSON object per line.
    JsonLines,
}

/// The stdout output (it can also write to any other writer).
pub struct Stdout {
    format: StdoutFormat,
    date_key: Option<String>,
    date_format: DateFormat,
    sink: Box<dyn Write + Send>,
    buf: String,
}

impl std::fmt::Debug for Stdout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stdout")
            .field("format", &self.format)
            .finish()
    }
}

impl Stdout {
    /// From an `[OUTPUT] Name stdout` section.
    pub fn from_section(s: &Section) -> Result<Self> {
        let format = match s.get("format").map(str::to_ascii_lowercase).as_deref() {
            None | Some("msgpack") => StdoutFormat::Msgpack,
            Some("json") => StdoutFormat::Json,
            Some("json_lines") | Some("json_stream") => StdoutFormat::JsonLines,
            Some(other) => {
                return Err(s.error_at(
                    "format",
                    format!("unknown stdout format '{other}' (msgpack, json, json_lines)"),
                ));
            }
        };
        let date_key = match s.get("json_date_key") {
            Some(k) if k.eq_ignore_ascii_case("false") || k.eq_ignore_ascii_case("off") => None,
            Some(k) => Some(k.to_owned()),
            None => Some("date".to_owned()),
        };
        Ok(Stdout::new(
            format,
            date_key,
            DateFormat::from_section(s)?,
            Box::new(std::io::stdout()),
        ))
    }

    /// Prints to `sink` in `format`.
    pub fn new(
        format: StdoutFormat,
        date_key: Option<String>,
        date_format: DateFormat,
        sink: Box<dyn Write + Send>,
    ) -> Self {
        Stdout {
            format,
            date_key,
            date_format,
            sink,
            buf: String::new(),
        }
    }
}

/// Appends a record in fluent-bit's stdout debug form.
pub fn write_msgpack_style(out: &mut String, index: usize, r: &Record) {
    let (sec, nsec) = split_time(r.time_ns);
    let _ = write!(out, "[{index}] {}: [[{sec}.{nsec:09}, {{}}], ", r.tag);
    print_map(out, &r.fields);
    out.push_str("]\n");
}

fn print_map(out: &mut String, f: &Fields) {
    out.push('{');
    for (i, (k, v)) in f.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "\"{k}\"=>");
        print_value(out, v);
    }
    out.push('}');
}

fn print_value(out: &mut String, v: &Value) {
    let _ = match v {
        Value::Null => write!(out, "nil"),
        Value::Bool(b) => write!(out, "{b}"),
        Value::Int(i) => write!(out, "{i}"),
        Value::Float(x) => write!(out, "{x:.6}"),
        Value::Str(s) => write!(out, "\"{s}\""),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                print_value(out, item);
            }
            out.push(']');
            Ok(())
        }
        Value::Map(m) => {
            print_map(out, m);
            Ok(())
        }
    };
}

impl Output for Stdout {
    fn flush(&mut self, records: &[Record]) -> Flush {
        self.buf.clear();
        match self.format {
            StdoutFormat::Msgpack => {
                for (i, r) in records.iter().enumerate() {
                    write_msgpack_style(&mut self.buf, i, r);
                }
            }
            StdoutFormat::JsonLines => {
                for r in records {
                    write_json_record(&mut self.buf, r, self.date_key.as_deref(), self.date_format);
                    self.buf.push('\n');
                }
            }
            StdoutFormat::Json => {
                self.buf.push('[');
                for (i, r) in records.iter().enumerate() {
                    if i > 0 {
                        self.buf.push(',');
                    }
                    write_json_record(&mut self.buf, r, self.date_key.as_deref(), self.date_format);
                }
                self.buf.push_str("]\n");
            }
        }
        match self
            .sink
            .write_all(self.buf.as_bytes())
            .and_then(|()| self.sink.flush())
        {
            Ok(()) => Flush::Ok,
            // A closed stdout will not reopen: retrying cannot help.
            Err(e) => Flush::Error(format!("write to stdout: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn rec() -> Record {
        let mut r = Record::line("kube.app", 1_700_000_000_123_456_789, "hello");
        r.fields.push("n", 3i64);
        r.fields.push("x", 1.5);
        r.fields.push("none", Value::Null);
        r.fields
            .push("a", Value::Array(vec![Value::Bool(true), "s".into()]));
        r
    }

    #[test]
    fn prints_like_fluent_bit() {
        let sink = Shared::default();
        let mut out = Stdout::new(
            StdoutFormat::Msgpack,
            None,
            DateFormat::Double,
            Box::new(sink.clone()),
        );
        assert_eq!(out.flush(&[rec(), rec()]), Flush::Ok);
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let want = "[0] kube.app: [[1700000000.123456789, {}], {\"log\"=>\"hello\", \"n\"=>3, \"x\"=>1.500000, \"none\"=>nil, \"a\"=>[true, \"s\"]}]\n";
        assert_eq!(text, format!("{want}{}", want.replacen("[0]", "[1]", 1)));
    }

    #[test]
    fn json_lines_with_date_key() {
        let sink = Shared::default();
        let mut out = Stdout::new(
            StdoutFormat::JsonLines,
            Some("date".into()),
            DateFormat::Double,
            Box::new(sink.clone()),
        );
        out.flush(&[rec()]);
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            text,
            "{\"date\":1700000000.123456,\"log\":\"hello\",\"n\":3,\"x\":1.5,\"none\":null,\"a\":[true,\"s\"]}\n"
        );
    }
}
