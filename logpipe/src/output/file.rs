//! The `file` output: records appended to `Path/File` (the file named after
//! the tag when `File` is not set), in fluent-bit's `out_file` formats:
//!
//! - `out_file` (the default): `tag: [1700000000.123456789, {"log":"..."}]`
//! - `plain`: the record as JSON, one per line
//! - `csv`: `1700000000.123456789,"v1",2` (`Delimiter`)
//! - `ltsv`: `time:1700000000.123456789<TAB>key:value` (`Label_Delimiter`)
//! - `template`: `Template` with `{key}` replaced by the record's values and
//!   `{time}` by the time (default `{time} {message}`)

use super::{Flush, Output, split_time};
use crate::config::Section;
use crate::error::Result;
use crate::record::{Record, Value};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;

/// The keys of the file output.
pub const KEYS: &[&str] = &[
    "path",
    "file",
    "format",
    "delimiter",
    "label_delimiter",
    "template",
    "mkdir",
];

/// A format of the file output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileFormat {
    /// `tag: [time, json]`.
    OutFile,
    /// The record JSON.
    Plain,
    /// Values separated by the delimiter.
    Csv(String),
    /// `label:value` pairs separated by the delimiter.
    Ltsv {
        /// Between pairs.
        delimiter: String,
        /// Between label and value.
        label_delimiter: String,
    },
    /// A template with `{key}` placeholders.
    Template(String),
}

/// The file output.
#[derive(Debug)]
pub struct FileOut {
    dir: Option<PathBuf>,
    file: Option<String>,
    format: FileFormat,
    mkdir: bool,
    open: HashMap<String, File>,
    buf: String,
}

fn delimiter(v: Option<&str>, default: &str) -> String {
    match v.map(str::to_ascii_lowercase).as_deref() {
        None => default.to_owned(),
        Some("\\t") | Some("tab") => "\t".into(),
        Some("space") => " ".into(),
        Some("comma") => ",".into(),
        Some(_) => v.unwrap_or(default).to_owned(),
    }
}

impl FileOut {
    /// From an `[OUTPUT] Name file` section.
    pub fn from_section(s: &Section) -> Result<Self> {
        let format = match s.get("format").map(str::to_ascii_lowercase).as_deref() {
            None | Some("out_file") => FileFormat::OutFile,
            Some("plain") => FileFormat::Plain,
            Some("csv") => FileFormat::Csv(delimiter(s.get("delimiter"), ",")),
            Some("ltsv") => FileFormat::Ltsv {
                delimiter: delimiter(s.get("delimiter"), "\t"),
                label_delimiter: delimiter(s.get("label_delimiter"), ":"),
            },
            Some("template") => {
                FileFormat::Template(s.get("template").unwrap_or("{time} {message}").to_owned())
            }
            Some("msgpack") => {
                return Err(s.error_at(
                    "format",
                    "the msgpack format of the file output is not supported",
                ));
            }
            Some(other) => {
                return Err(s.error_at(
                    "format",
                    format!("unknown file format '{other}' (out_file, plain, csv, ltsv, template)"),
                ));
            }
        };
        Ok(FileOut {
            dir: s.get("path").map(PathBuf::from),
            file: s.get("file").map(str::to_owned),
            format,
            mkdir: s.get_bool_or("mkdir", false)?,
            open: HashMap::new(),
            buf: String::new(),
        })
    }

    fn path_for(&self, tag: &str) -> PathBuf {
        let name = self.file.as_deref().unwrap_or(tag);
        match &self.dir {
            Some(d) => d.join(name),
            None => PathBuf::from(name),
        }
    }

    fn format_record(&self, out: &mut String, r: &Record) {
        let (sec, nsec) = split_time(r.time_ns);
        match &self.format {
            FileFormat::OutFile => {
                let _ = write!(out, "{}: [{sec}.{nsec:09}, ", r.tag);
                super::json_fields(out, &r.fields);
                out.push_str("]\n");
            }
            FileFormat::Plain => {
                super::json_fields(out, &r.fields);
                out.push('\n');
            }
            FileFormat::Csv(d) => {
                let _ = write!(out, "{sec}.{nsec:09}");
                for (_, v) in r.fields.iter() {
                    out.push_str(d);
                    match v {
                        Value::Str(s) => super::json_str(out, s),
                        other => super::json_value(out, other),
                    }
                }
                out.push('\n');
            }
            FileFormat::Ltsv {
                delimiter,
                label_delimiter,
            } => {
                let _ = write!(out, "time{label_delimiter}{sec}.{nsec:09}");
                for (k, v) in r.fields.iter() {
                    let _ = write!(out, "{delimiter}{k}{label_delimiter}{v}");
                }
                out.push('\n');
            }
            FileFormat::Template(t) => {
                let mut rest = t.as_str();
                while let Some(open) = rest.find('{') {
                    out.push_str(&rest[..open]);
                    let after = &rest[open + 1..];
                    match after.find('}') {
                        Some(close) => {
                            let key = &after[..close];
                            if key == "time" {
                                let _ = write!(out, "{sec}.{nsec:09}");
                            } else if let Some(v) = r.fields.get(key) {
                                let _ = write!(out, "{v}");
                            }
                            rest = &after[close + 1..];
                        }
                        None => {
                            out.push('{');
                            rest = after;
                        }
                    }
                }
                out.push_str(rest);
                out.push('\n');
            }
        }
    }

    fn write(&mut self, tag: &str, bytes: &[u8]) -> std::result::Result<(), String> {
        if !self.open.contains_key(tag) {
            let path = self.path_for(tag);
            if self.mkdir {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| format!("create {}: {e}", parent.display()))?;
                }
            }
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| format!("open {}: {e}", path.display()))?;
            self.open.insert(tag.to_owned(), f);
        }
        let Some(f) = self.open.get_mut(tag) else {
            return Err("file vanished from the open set".into());
        };
        f.write_all(bytes).map_err(|e| {
            // Reopen next time: the file may have been moved or the disk
            // may have been full.
            let msg = format!("write {}: {e}", self.path_for(tag).display());
            self.open.remove(tag);
            msg
        })
    }
}

impl Output for FileOut {
    fn flush(&mut self, records: &[Record]) -> Flush {
        // Runs of records with the same tag go to their file in one write.
        let mut start = 0;
        while start < records.len() {
            let tag = &records[start].tag;
            let same_file = |r: &Record| self.file.is_some() || r.tag == *tag;
            let end = start
                + records[start..]
                    .iter()
                    .position(|r| !same_file(r))
                    .unwrap_or(records.len() - start);
            let mut buf = std::mem::take(&mut self.buf);
            buf.clear();
            for r in &records[start..end] {
                self.format_record(&mut buf, r);
            }
            let key = if self.file.is_some() {
                ""
            } else {
                tag.as_str()
            };
            let res = self.write(key, buf.as_bytes());
            self.buf = buf;
            if let Err(e) = res {
                // Part of the batch may be written: a retry duplicates it,
                // which at-least-once allows.
                return Flush::Retry(e);
            }
            start = end;
        }
        Flush::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Section, SectionKind};

    fn section(dir: &std::path::Path, format: &str) -> Section {
        Section::new(SectionKind::Output, "t.conf", 1)
            .with("Name", "file")
            .with("Path", dir.to_str().unwrap())
            .with("Format", format)
    }

    fn rec(tag: &str) -> Record {
        let mut r = Record::line(tag, 1_700_000_000_000_000_001, "hi \"there\"");
        r.fields.push("code", 200i64);
        r
    }

    #[test]
    fn formats() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            (
                "out_file",
                "a: [1700000000.000000001, {\"log\":\"hi \\\"there\\\"\",\"code\":200}]\n",
            ),
            ("plain", "{\"log\":\"hi \\\"there\\\"\",\"code\":200}\n"),
            ("csv", "1700000000.000000001,\"hi \\\"there\\\"\",200\n"),
            (
                "ltsv",
                "time:1700000000.000000001\tlog:hi \"there\"\tcode:200\n",
            ),
        ];
        for (fmt, want) in cases {
            let sub = dir.path().join(fmt);
            std::fs::create_dir(&sub).unwrap();
            let mut out = FileOut::from_section(&section(&sub, fmt)).unwrap();
            assert_eq!(out.flush(&[rec("a")]), Flush::Ok);
            assert_eq!(
                std::fs::read_to_string(sub.join("a")).unwrap(),
                want,
                "{fmt}"
            );
        }
        let sub = dir.path().join("tpl");
        std::fs::create_dir(&sub).unwrap();
        let s = section(&sub, "template").with("Template", "{time} {code} {log} {missing}");
        let mut out = FileOut::from_section(&s).unwrap();
        out.flush(&[rec("a")]);
        assert_eq!(
            std::fs::read_to_string(sub.join("a")).unwrap(),
            "1700000000.000000001 200 hi \"there\" \n"
        );
    }

    #[test]
    fn one_file_per_tag_unless_file_is_set_and_errors_retry() {
        let dir = tempfile::tempdir().unwrap();
        let mut out = FileOut::from_section(&section(dir.path(), "plain")).unwrap();
        out.flush(&[rec("a"), rec("b"), rec("a")]);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("a"))
                .unwrap()
                .lines()
                .count(),
            2
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("b"))
                .unwrap()
                .lines()
                .count(),
            1
        );
        let s = section(&dir.path().join("missing"), "plain");
        let mut out = FileOut::from_section(&s).unwrap();
        assert!(matches!(out.flush(&[rec("a")]), Flush::Retry(e) if e.contains("missing")));
        let mut out = FileOut::from_section(&s.with("Mkdir", "on")).unwrap();
        assert_eq!(out.flush(&[rec("a")]), Flush::Ok);
    }
}
