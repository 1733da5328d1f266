//! fluent-bit's classic configuration format.
//!
//! ```text
//! @SET  LOG_DIR=/var/log
//! @INCLUDE outputs/*.conf
//! [SERVICE]
//!     Flush        1
//!     Parsers_File parsers.conf
//! [INPUT]
//!     Name tail
//!     Path ${LOG_DIR}/*.log
//! ```
//!
//! The rules this reader keeps, as fluent-bit's own reader does:
//! - A section header `[NAME]` starts at column 0; its name is
//!   case-insensitive. The known sections are `SERVICE`, `INPUT`, `FILTER`,
//!   `OUTPUT`, `PARSER` and `MULTILINE_PARSER`; any other is an error.
//! - Entries are indented, every entry of a section by the same amount (the
//!   first entry sets it). An entry is a key, white space, and a value that
//!   runs to the end of the line (trimmed). Keys are case-insensitive and may
//!   repeat (`Regex`, `Add`, `rule` ...).
//! - `#` starts a comment line. fluent-bit's documentation asks for comments
//!   inside a section to be indented too, but its reader skips them at any
//!   column, and real files (the seed's) rely on that.
//! - `@INCLUDE pattern` (a glob, relative to the including file) reads other
//!   files in place; `@SET name=value` defines a variable.
//! - `${NAME}` in a value is replaced by the `@SET` variable of that name, or
//!   else the environment variable; an undefined one becomes the empty string
//!   (fluent-bit substitutes nothing and logs a warning; we keep the warning
//!   in [`Config::warnings`]). `${NAME:-default}` gives `default` when the
//!   variable is unset or empty (fluent-bit 5.0.6+). Substitution happens
//!   after the whole file set is read, so a later `@SET` counts, as in
//!   fluent-bit where values are resolved when plugins are configured.
//! - `[SERVICE] Parsers_File` (repeatable) names files of `[PARSER]` and
//!   `[MULTILINE_PARSER]` sections, relative to the main file's folder.

use crate::{Error, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Include nesting deeper than this is taken as a cycle.
const MAX_INCLUDE_DEPTH: usize = 32;

/// The kind of a section, from its `[HEADER]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SectionKind {
    /// `[SERVICE]`: global settings.
    Service,
    /// `[INPUT]`.
    Input,
    /// `[FILTER]`.
    Filter,
    /// `[OUTPUT]`.
    Output,
    /// `[PARSER]`.
    Parser,
    /// `[MULTILINE_PARSER]`.
    MultilineParser,
}

impl SectionKind {
    /// The header as fluent-bit spells it.
    pub fn header(self) -> &'static str {
        match self {
            SectionKind::Service => "SERVICE",
            SectionKind::Input => "INPUT",
            SectionKind::Filter => "FILTER",
            SectionKind::Output => "OUTPUT",
            SectionKind::Parser => "PARSER",
            SectionKind::MultilineParser => "MULTILINE_PARSER",
        }
    }

    fn from_header(name: &str) -> Option<SectionKind> {
        let kinds = [
            SectionKind::Service,
            SectionKind::Input,
            SectionKind::Filter,
            SectionKind::Output,
            SectionKind::Parser,
            SectionKind::MultilineParser,
        ];
        kinds
            .into_iter()
            .find(|k| k.header().eq_ignore_ascii_case(name))
    }
}

/// One `key value` line of a section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The key as written (compare with `eq_ignore_ascii_case`).
    pub key: String,
    /// The value, trimmed, with `${VAR}` substituted.
    pub value: String,
    /// 1-based line in [`Section::file`].
    pub line: usize,
}

/// A `[SECTION]` and its entries, remembering where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// Which section.
    pub kind: SectionKind,
    /// The file it was read from.
    pub file: PathBuf,
    /// 1-based line of its header.
    pub line: usize,
    /// Entries in file order.
    pub entries: Vec<Entry>,
}

/// Keys every plugin section may carry whatever the plugin (fluent-bit's
/// instance properties), accepted by [`Section::check_keys`] without listing.
const ALWAYS_ALLOWED: &[&str] = &["name", "alias", "log_level"];

impl Section {
    /// An empty section of `kind`, as if written at `file:line`.
    pub fn new(kind: SectionKind, file: impl Into<PathBuf>, line: usize) -> Section {
        Section {
            kind,
            file: file.into(),
            line,
            entries: Vec::new(),
        }
    }

    /// Adds an entry (for building sections in code and tests).
    pub fn with(mut self, key: &str, value: &str) -> Section {
        let line = self.line + self.entries.len() + 1;
        self.entries.push(Entry {
            key: key.to_owned(),
            value: value.to_owned(),
            line,
        });
        self
    }

    /// The `Name` key: the plugin name of an input, filter or output, or the
    /// parser's name.
    pub fn name(&self) -> Option<&str> {
        self.get("name")
    }

    /// The value of `key` (case-insensitive); the last one wins when it repeats.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entry(key).map(|e| e.value.as_str())
    }

    /// The last entry of `key` (case-insensitive).
    pub fn entry(&self, key: &str) -> Option<&Entry> {
        self.entries
            .iter()
            .rev()
            .find(|e| e.key.eq_ignore_ascii_case(key))
    }

    /// Every entry of `key`, in file order (for repeated keys: `Regex`,
    /// `Add`, `rule` ...).
    pub fn get_all<'a>(&'a self, key: &str) -> impl Iterator<Item = &'a Entry> + use<'a> {
        let key = key.to_owned();
        self.entries
            .iter()
            .filter(move |e| e.key.eq_ignore_ascii_case(&key))
    }

    /// A configuration error at `entry`'s line, or at the section header.
    pub fn error(&self, entry: Option<&Entry>, message: impl Into<String>) -> Error {
        Error::Config {
            file: self.file.clone(),
            line: entry.map_or(self.line, |e| e.line),
            message: message.into(),
        }
    }

    /// A configuration error at the line of `key` (or the header when absent).
    pub fn error_at(&self, key: &str, message: impl Into<String>) -> Error {
        self.error(self.entry(key), message)
    }

    /// Fails on the first key not in `allowed` (case-insensitive; an entry
    /// ending in `*`, as `storage.*`, allows every key with that prefix).
    /// `Name`, `Alias` and `Log_Level` are always allowed.
    pub fn check_keys(&self, allowed: &[&str]) -> Result<()> {
        for e in &self.entries {
            let ok = ALWAYS_ALLOWED
                .iter()
                .chain(allowed)
                .any(|pat| key_matches(pat, &e.key));
            if !ok {
                let what = match (self.kind, self.name()) {
                    (SectionKind::Service, _) | (_, None) => {
                        format!("[{}]", self.kind.header())
                    }
                    (_, Some(n)) => format!("[{}] {n}", self.kind.header()),
                };
                return Err(self.error(Some(e), format!("unknown key '{}' in {what}", e.key)));
            }
        }
        Ok(())
    }

    /// `key` as a boolean (`on`/`off`, `true`/`false`, `yes`/`no`, any case).
    pub fn get_bool(&self, key: &str) -> Result<Option<bool>> {
        self.typed(key, "a boolean (on/off, true/false, yes/no)", parse_bool)
    }

    /// `key` as a boolean, `default` when absent.
    pub fn get_bool_or(&self, key: &str, default: bool) -> Result<bool> {
        Ok(self.get_bool(key)?.unwrap_or(default))
    }

    /// `key` as a byte size (`5MB`, `64k`, `1.5M`; see [`parse_size`]).
    pub fn get_size(&self, key: &str) -> Result<Option<u64>> {
        self.typed(key, "a size (as 5MB or 64K)", parse_size)
    }

    /// `key` as a duration (`5` seconds, `5s`, `1m`, `2h`, `1d`, `0.5`).
    pub fn get_duration(&self, key: &str) -> Result<Option<Duration>> {
        self.typed(key, "a duration (as 5, 5s, 1m)", parse_duration)
    }

    /// `key` as a non-negative integer.
    pub fn get_usize(&self, key: &str) -> Result<Option<usize>> {
        self.typed(key, "a non-negative integer", |v| v.parse().ok())
    }

    /// `key` as an integer.
    pub fn get_i64(&self, key: &str) -> Result<Option<i64>> {
        self.typed(key, "an integer", |v| v.parse().ok())
    }

    /// `key` as a number.
    pub fn get_f64(&self, key: &str) -> Result<Option<f64>> {
        self.typed(key, "a number", |v| {
            v.parse().ok().filter(|x: &f64| x.is_finite())
        })
    }

    fn typed<T>(
        &self,
        key: &str,
        what: &str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<Option<T>> {
        match self.entry(key) {
            None => Ok(None),
            Some(e) => match parse(e.value.trim()) {
                Some(v) => Ok(Some(v)),
                None => Err(self.error(Some(e), format!("{}: '{}' is not {what}", e.key, e.value))),
            },
        }
    }
}

fn key_matches(pattern: &str, key: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => {
            key.len() >= prefix.len()
                && key.is_char_boundary(prefix.len())
                && key[..prefix.len()].eq_ignore_ascii_case(prefix)
        }
        None => pattern.eq_ignore_ascii_case(key),
    }
}

/// fluent-bit's booleans: `on`/`off`, `true`/`false`, `yes`/`no`, any case.
pub fn parse_bool(v: &str) -> Option<bool> {
    let v = v.trim();
    if ["on", "true", "yes"]
        .iter()
        .any(|t| v.eq_ignore_ascii_case(t))
    {
        Some(true)
    } else if ["off", "false", "no"]
        .iter()
        .any(|t| v.eq_ignore_ascii_case(t))
    {
        Some(false)
    } else {
        None
    }
}

/// A size as fluent-bit reads it (`flb_utils_size_to_bytes`): a number with
/// an optional `K`, `M` or `G` suffix, optionally followed by `B`, any case.
/// The multipliers are decimal (K = 1000), as in fluent-bit.
pub fn parse_size(v: &str) -> Option<u64> {
    let v = v.trim();
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let num: f64 = num.parse().ok()?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        _ => return None,
    };
    let bytes = num * mult;
    (bytes.is_finite() && bytes >= 0.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
}

/// A duration: seconds as a plain number (`5`, `0.5`), or with a suffix
/// `ms`, `s`, `m`, `h`, `d` (fluent-bit's `flb_utils_time_to_seconds`
/// suffixes plus milliseconds).
pub fn parse_duration(v: &str) -> Option<Duration> {
    let v = v.trim();
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let num: f64 = num.parse().ok()?;
    let secs = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "s" => num,
        "ms" => num / 1e3,
        "m" => num * 60.0,
        "h" => num * 3600.0,
        "d" => num * 86400.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(secs).ok()
}

/// A whole configuration: the main file, its includes and its parsers files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `[SERVICE]` (all of them merged, in order; an empty section when there
    /// is none).
    pub service: Section,
    /// `[INPUT]` sections in order.
    pub inputs: Vec<Section>,
    /// `[PARSER]` sections from the main files and every `Parsers_File`.
    pub parsers: Vec<Section>,
    /// `[MULTILINE_PARSER]` sections, likewise.
    pub multiline_parsers: Vec<Section>,
    /// `[FILTER]` sections in order.
    pub filters: Vec<Section>,
    /// `[OUTPUT]` sections in order.
    pub outputs: Vec<Section>,
    /// Things fluent-bit would warn about (an undefined `${VAR}`), with file
    /// and line.
    pub warnings: Vec<String>,
}

/// Reads the configuration at `path`, following `@INCLUDE` and
/// `Parsers_File`.
pub fn load(path: &Path) -> Result<Config> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse_str(&text, path)
}

/// Reads configuration `text` as if it were the file `path` (includes and
/// parsers files are resolved relative to `path`'s folder).
pub fn parse_str(text: &str, path: &Path) -> Result<Config> {
    let mut reader = Reader::default();
    reader.read_text(text, path, 0, false)?;
    let base = path.parent().unwrap_or(Path::new("")).to_path_buf();
    // Parsers_File values go through variable substitution like any value.
    let parser_files: Vec<(String, usize, PathBuf)> = reader
        .sections
        .iter()
        .filter(|s| s.kind == SectionKind::Service)
        .flat_map(|s| {
            s.get_all("parsers_file")
                .map(|e| (e.value.clone(), e.line, s.file.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    for (raw, line, file) in parser_files {
        let (value, _) = reader.substitute(&raw);
        let p = base.join(value.trim());
        let text = std::fs::read_to_string(&p).map_err(|e| Error::Config {
            file: file.clone(),
            line,
            message: format!("cannot read parsers file {}: {e}", p.display()),
        })?;
        reader.read_text(&text, &p, 0, true)?;
    }
    reader.finish()
}

#[derive(Default)]
struct Reader {
    sections: Vec<Section>,
    vars: HashMap<String, String>,
}

impl Reader {
    fn read_text(
        &mut self,
        text: &str,
        file: &Path,
        depth: usize,
        parsers_only: bool,
    ) -> Result<()> {
        let err = |line: usize, message: String| Error::Config {
            file: file.to_path_buf(),
            line,
            message,
        };
        // Index into self.sections of the section being filled, and its
        // indentation once the first entry has set it.
        let mut current: Option<usize> = None;
        let mut indent: Option<&str> = None;
        for (i, raw) in text.split('\n').enumerate() {
            let line_no = i + 1;
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let lead = &line[..line.len() - line.trim_start().len()];
            if lead.is_empty() {
                if let Some(rest) = strip_prefix_ci(trimmed, "@include") {
                    if !rest.starts_with(|c: char| c.is_whitespace()) {
                        return Err(err(line_no, format!("malformed command '{trimmed}'")));
                    }
                    current = None;
                    self.include(rest.trim(), file, line_no, depth, parsers_only)?;
                    continue;
                }
                if let Some(rest) = strip_prefix_ci(trimmed, "@set") {
                    let Some((k, v)) = rest
                        .starts_with(|c: char| c.is_whitespace())
                        .then(|| rest.trim().split_once('='))
                        .flatten()
                    else {
                        return Err(err(
                            line_no,
                            format!("malformed @SET '{trimmed}' (want @SET name=value)"),
                        ));
                    };
                    let k = k.trim();
                    if k.is_empty() {
                        return Err(err(line_no, "@SET without a variable name".into()));
                    }
                    self.vars.insert(k.to_owned(), v.trim().to_owned());
                    continue;
                }
                if trimmed.starts_with('@') {
                    return Err(err(line_no, format!("unknown command '{trimmed}'")));
                }
                if let Some(inner) = trimmed.strip_prefix('[') {
                    let Some(name) = inner.strip_suffix(']') else {
                        return Err(err(
                            line_no,
                            format!("section header '{trimmed}' has no closing ']'"),
                        ));
                    };
                    let name = name.trim();
                    let Some(kind) = SectionKind::from_header(name) else {
                        return Err(err(
                            line_no,
                            format!(
                                "unknown section [{name}] (known: SERVICE, INPUT, FILTER, OUTPUT, PARSER, MULTILINE_PARSER)"
                            ),
                        ));
                    };
                    if parsers_only
                        && !matches!(kind, SectionKind::Parser | SectionKind::MultilineParser)
                    {
                        return Err(err(
                            line_no,
                            format!(
                                "a parsers file holds only [PARSER] and [MULTILINE_PARSER], not [{name}]"
                            ),
                        ));
                    }
                    self.sections.push(Section::new(kind, file, line_no));
                    current = Some(self.sections.len() - 1);
                    indent = None;
                    continue;
                }
                return Err(err(
                    line_no,
                    format!("'{trimmed}' is neither a section header nor an indented entry"),
                ));
            }
            let Some(cur) = current else {
                return Err(err(
                    line_no,
                    format!("entry '{trimmed}' outside of any section"),
                ));
            };
            match indent {
                None => indent = Some(lead),
                Some(ind) if ind != lead => {
                    return Err(err(
                        line_no,
                        format!(
                            "invalid indentation level: {} characters where the section's entries use {}",
                            lead.len(),
                            ind.len()
                        ),
                    ));
                }
                Some(_) => {}
            }
            let (key, value) = match trimmed.find(char::is_whitespace) {
                Some(at) => (&trimmed[..at], trimmed[at..].trim()),
                None => (trimmed, ""),
            };
            if value.is_empty() {
                return Err(err(line_no, format!("key '{key}' has no value")));
            }
            self.sections[cur].entries.push(Entry {
                key: key.to_owned(),
                value: value.to_owned(),
                line: line_no,
            });
        }
        Ok(())
    }

    fn include(
        &mut self,
        pattern: &str,
        from: &Path,
        line: usize,
        depth: usize,
        parsers_only: bool,
    ) -> Result<()> {
        let err = |message: String| Error::Config {
            file: from.to_path_buf(),
            line,
            message,
        };
        if depth >= MAX_INCLUDE_DEPTH {
            return Err(err(format!(
                "@INCLUDE nested more than {MAX_INCLUDE_DEPTH} deep (a cycle?)"
            )));
        }
        if pattern.is_empty() {
            return Err(err("@INCLUDE without a file".into()));
        }
        let base = from.parent().unwrap_or(Path::new(""));
        let full = base.join(pattern);
        let full_str = full.to_string_lossy().into_owned();
        let has_glob = pattern.contains(['*', '?', '[']);
        let mut files: Vec<PathBuf> = if has_glob {
            glob::glob(&full_str)
                .map_err(|e| err(format!("bad @INCLUDE pattern '{pattern}': {e}")))?
                .filter_map(|r| r.ok())
                .filter(|p| p.is_file())
                .collect()
        } else {
            vec![full]
        };
        files.sort();
        for f in files {
            let text = std::fs::read_to_string(&f)
                .map_err(|e| err(format!("cannot read @INCLUDE file {}: {e}", f.display())))?;
            self.read_text(&text, &f, depth + 1, parsers_only)?;
        }
        Ok(())
    }

    /// `raw` with `${NAME}` and `${NAME:-default}` replaced; also the names
    /// that were undefined.
    fn substitute(&self, raw: &str) -> (String, Vec<String>) {
        let mut out = String::with_capacity(raw.len());
        let mut undefined = Vec::new();
        let mut rest = raw;
        while let Some(at) = rest.find("${") {
            out.push_str(&rest[..at]);
            let after = &rest[at + 2..];
            let Some(end) = after.find('}') else {
                // An unterminated reference stays as written.
                out.push_str(&rest[at..]);
                rest = "";
                break;
            };
            let inner = &after[..end];
            let (name, default) = match inner.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (inner, None),
            };
            let value = self
                .vars
                .get(name)
                .cloned()
                .or_else(|| std::env::var(name).ok());
            match (value, default) {
                (Some(v), Some(d)) if v.is_empty() => out.push_str(d),
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => undefined.push(name.to_owned()),
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        (out, undefined)
    }

    fn finish(self) -> Result<Config> {
        let mut warnings = Vec::new();
        let mut service: Option<Section> = None;
        let mut cfg_inputs = Vec::new();
        let mut filters = Vec::new();
        let mut outputs = Vec::new();
        let mut parsers = Vec::new();
        let mut multiline_parsers = Vec::new();
        for mut s in self.sections.iter().cloned() {
            for e in &mut s.entries {
                if e.value.contains("${") {
                    let (v, undefined) = self.substitute(&e.value);
                    for name in undefined {
                        warnings.push(format!(
                            "{}:{}: variable ${{{name}}} is used but not set",
                            s.file.display(),
                            e.line
                        ));
                    }
                    e.value = v.trim().to_owned();
                }
            }
            match s.kind {
                SectionKind::Service => match &mut service {
                    Some(svc) => svc.entries.extend(s.entries),
                    None => service = Some(s),
                },
                SectionKind::Input => cfg_inputs.push(s),
                SectionKind::Filter => filters.push(s),
                SectionKind::Output => outputs.push(s),
                SectionKind::Parser => parsers.push(s),
                SectionKind::MultilineParser => multiline_parsers.push(s),
            }
        }
        Ok(Config {
            service: service.unwrap_or_else(|| Section::new(SectionKind::Service, "", 0)),
            inputs: cfg_inputs,
            parsers,
            multiline_parsers,
            filters,
            outputs,
            warnings,
        })
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    (s.len() >= prefix.len()
        && s.is_char_boundary(prefix.len())
        && s[..prefix.len()].eq_ignore_ascii_case(prefix))
    .then(|| &s[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config> {
        parse_str(text, Path::new("/nonexistent/test.conf"))
    }

    #[test]
    fn sections_entries_and_case_insensitive_keys() {
        let cfg = parse(
            "[SERVICE]\n    Flush 1\n\n[input]\n    Name  tail\n    # comment\n    PATH  /var/log/*.log\n    Tag   app.*\n[OUTPUT]\n  Name stdout\n  Match *\n",
        )
        .unwrap();
        assert_eq!(cfg.service.get("flush"), Some("1"));
        assert_eq!(cfg.inputs.len(), 1);
        let i = &cfg.inputs[0];
        assert_eq!(i.name(), Some("tail"));
        assert_eq!(i.get("path"), Some("/var/log/*.log"));
        assert_eq!(i.line, 4);
        assert_eq!(i.entry("tag").unwrap().line, 8);
        assert_eq!(cfg.outputs[0].get("MATCH"), Some("*"));
    }

    #[test]
    fn values_keep_inner_spaces_and_last_wins() {
        let cfg = parse("[FILTER]\n    Name modify\n    Add a  b c \n    Add d e\n").unwrap();
        let f = &cfg.filters[0];
        let all: Vec<_> = f.get_all("add").map(|e| e.value.as_str()).collect();
        assert_eq!(all, ["a  b c", "d e"]);
        assert_eq!(f.get("Add"), Some("d e"));
    }

    #[test]
    fn bad_indentation_is_an_error_with_line() {
        let e = parse("[INPUT]\n    Name tail\n  Path x\n").unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("/nonexistent/test.conf:3:"), "{msg}");
        assert!(msg.contains("indentation"), "{msg}");
    }

    #[test]
    fn errors_for_unknown_section_unindented_entry_missing_value() {
        let e = parse("[INPUTS]\n    Name tail\n").unwrap_err().to_string();
        assert!(
            e.contains(":1:") && e.contains("unknown section [INPUTS]"),
            "{e}"
        );
        let e = parse("[INPUT]\nName tail\n").unwrap_err().to_string();
        assert!(e.contains(":2:"), "{e}");
        let e = parse("[INPUT]\n    Name\n").unwrap_err().to_string();
        assert!(e.contains(":2:") && e.contains("no value"), "{e}");
        let e = parse("    Name tail\n").unwrap_err().to_string();
        assert!(e.contains(":1:") && e.contains("outside"), "{e}");
        let e = parse("@FOO bar\n").unwrap_err().to_string();
        assert!(e.contains("unknown command"), "{e}");
    }

    #[test]
    fn set_and_env_substitution_with_defaults() {
        // Setting environment variables needs unsafe in edition 2024 and the
        // crate forbids it: use a name nobody defines, and PATH, which is set.
        let cfg = parse(
            "@SET A=alpha\n[INPUT]\n    Name tail\n    Path ${A}/x/${VIGIL_L1_SURELY_UNSET}/y\n    Tag ${VIGIL_L1_SURELY_UNSET:-dflt}.*\n    Alias ${B}\n@SET B=late\n",
        )
        .unwrap();
        let i = &cfg.inputs[0];
        assert_eq!(i.get("path"), Some("alpha/x//y"));
        assert_eq!(i.get("tag"), Some("dflt.*"));
        assert_eq!(i.get("alias"), Some("late"));
        assert_eq!(cfg.warnings.len(), 1);
        assert!(
            cfg.warnings[0].contains(":4:") && cfg.warnings[0].contains("VIGIL_L1_SURELY_UNSET")
        );
        // The environment is consulted after @SET: PATH is always set.
        let cfg = parse("[INPUT]\n    Name x\n    P ${PATH}\n").unwrap();
        assert_eq!(
            cfg.inputs[0].get("p").map(str::to_owned),
            std::env::var("PATH").ok()
        );
    }

    #[test]
    fn check_keys_names_file_line_and_allows_prefixes() {
        let cfg =
            parse("[INPUT]\n    Name tail\n    storage.type filesystem\n    Bogus 1\n").unwrap();
        let i = &cfg.inputs[0];
        let e = i
            .check_keys(&["path", "storage.*"])
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "/nonexistent/test.conf:4: unknown key 'Bogus' in [INPUT] tail"
        );
        i.check_keys(&["storage.*", "bogus"]).unwrap();
    }

    #[test]
    fn typed_getters() {
        let s = Section::new(SectionKind::Input, "f", 1)
            .with("a", "On")
            .with("b", "5MB")
            .with("c", "64k")
            .with("d", "1m")
            .with("e", "maybe")
            .with("f", "0.5");
        assert_eq!(s.get_bool("a").unwrap(), Some(true));
        assert_eq!(s.get_size("b").unwrap(), Some(5_000_000));
        assert_eq!(s.get_size("c").unwrap(), Some(64_000));
        assert_eq!(s.get_duration("d").unwrap(), Some(Duration::from_secs(60)));
        assert_eq!(
            s.get_duration("f").unwrap(),
            Some(Duration::from_millis(500))
        );
        assert_eq!(s.get_bool("zz").unwrap(), None);
        let e = s.get_bool("e").unwrap_err().to_string();
        assert!(e.starts_with("f:6: e: 'maybe' is not a boolean"), "{e}");
        assert!(s.get_size("e").is_err());
        assert_eq!(parse_size("1.5M"), Some(1_500_000));
        assert_eq!(parse_size("10"), Some(10));
        assert_eq!(parse_size("-1"), None);
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration("x"), None);
    }

    #[test]
    fn multiple_service_sections_merge() {
        let cfg = parse("[SERVICE]\n    Flush 1\n[SERVICE]\n    Log_Level debug\n").unwrap();
        assert_eq!(cfg.service.get("flush"), Some("1"));
        assert_eq!(cfg.service.get("log_level"), Some("debug"));
    }

    #[test]
    fn crlf_and_tabs() {
        let cfg = parse("[INPUT]\r\n\tName\ttail\r\n\tPath\t/x\r\n").unwrap();
        assert_eq!(cfg.inputs[0].get("path"), Some("/x"));
    }
}
