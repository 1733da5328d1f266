//! Parsers: turn a line of text into fields and an optional time.
//!
//! Every `[PARSER]` section becomes a [`LineParser`] in a [`Parsers`]
//! registry, beside built-in parsers under fluent-bit's names (`json`,
//! `docker`, `cri`, `logfmt`, `ltsv`, `nginx`, `apache`, `apache2`,
//! `apache_error`, `syslog-rfc5424`, `syslog-rfc3164`, and `klog` for
//! Kubernetes components' lines); a `[PARSER]` of the
//! same name replaces the built-in. The keys a `[PARSER]` takes:
//!
//! | key | meaning |
//! |---|---|
//! | `Format` | `regex`, `json`, `logfmt` or `ltsv` |
//! | `Regex` | the pattern, with `(?<name>...)` captures (regex format) |
//! | `Time_Key` | the field holding the time (default `time`) |
//! | `Time_Format` | its strftime format ([`crate::strftime`]); without it the time is not read |
//! | `Time_Keep` | keep the time field after reading it (default off) |
//! | `Time_Offset` | `+hhmm` offset for formats without `%z` |
//! | `Types` | `key:integer key:float key:bool key:string key:hex` casts |
//! | `Skip_Empty_Values` | drop empty captures (default on, regex format) |
//! | `Logfmt_No_Bare_Keys` | reject logfmt lines with a key without a value |
//!
//! `[MULTILINE_PARSER]` sections become [`MultilineSpec`]s in the same
//! registry; [`CriJoiner`], [`DockerJoiner`] and [`Multiline`] are the
//! stateful per-stream line assemblers the tail input runs before the parser
//! (fluent-bit's `multiline.parser cri`, `docker`, and the rest).

mod backtrack;
pub mod cri;
pub mod docker;
pub mod json;
pub mod klog;
pub mod logfmt;
pub mod ltsv;
pub mod multiline;
pub mod regex;

pub use cri::{CriJoiner, CriParser};
pub use docker::DockerJoiner;
pub use json::{JsonParser, parse_object as parse_json_object};
pub use klog::KlogParser;
pub use logfmt::LogfmtParser;
pub use ltsv::LtsvParser;
pub use multiline::{Multiline, MultilineSpec};
pub use regex::RegexParser;

use crate::config::{Config, Section};
use crate::record::{Fields, Value};
use crate::strftime::{TimeFormat, parse_utc_offset};
use crate::{Error, Result};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

/// What a parser made of a line.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Parsed {
    /// The fields, in the order the line had them.
    pub fields: Fields,
    /// The record time read from the `Time_Key`, when the parser has a
    /// `Time_Format` and the value matched it.
    pub time_ns: Option<i64>,
}

/// A parser of one line of text. Implementations are immutable and shared
/// between threads.
pub trait LineParser: Send + Sync {
    /// The parser's name (`[PARSER] Name`).
    fn name(&self) -> &str;
    /// Parses `text`; an [`Error::Parse`] when it does not match.
    fn parse(&self, text: &str) -> Result<Parsed>;
}

impl std::fmt::Debug for dyn LineParser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LineParser({})", self.name())
    }
}

/// A type cast of `Types`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cast {
    /// `integer`: a decimal integer.
    Integer,
    /// `float`.
    Float,
    /// `bool`: `true` (any case) is true, anything else false.
    Bool,
    /// `string`: leave as text.
    Str,
    /// `hex`: a hexadecimal integer.
    Hex,
}

/// The part every format shares: reading the time and casting types after
/// the fields are extracted.
#[derive(Debug, Clone)]
pub struct TimeAndTypes {
    /// The time field.
    pub time_key: String,
    /// Its format; no time is read without one.
    pub time_format: Option<TimeFormat>,
    /// Keep the time field after reading it.
    pub time_keep: bool,
    /// Seconds east of UTC for formats without `%z`.
    pub time_offset: i64,
    /// Casts by field name.
    pub types: Vec<(String, Cast)>,
}

impl Default for TimeAndTypes {
    fn default() -> Self {
        TimeAndTypes {
            time_key: "time".into(),
            time_format: None,
            time_keep: false,
            time_offset: 0,
            types: Vec::new(),
        }
    }
}

impl TimeAndTypes {
    /// Reads the settings from a `[PARSER]` section.
    pub fn from_section(s: &Section) -> Result<TimeAndTypes> {
        let mut t = TimeAndTypes::default();
        if let Some(k) = s.get("time_key") {
            t.time_key = k.to_owned();
        }
        if let Some(f) = s.get("time_format") {
            t.time_format =
                Some(TimeFormat::new(f).map_err(|e| s.error_at("time_format", e.to_string()))?);
        }
        t.time_keep = s.get_bool_or("time_keep", false)?;
        if let Some(o) = s.get("time_offset") {
            t.time_offset = parse_utc_offset(o).ok_or_else(|| {
                s.error_at(
                    "time_offset",
                    format!("Time_Offset '{o}' is not +hhmm or -hh:mm"),
                )
            })?;
        }
        if let Some(types) = s.get("types") {
            for spec in types.split_whitespace() {
                let Some((key, ty)) = spec.rsplit_once(':') else {
                    return Err(
                        s.error_at("types", format!("Types entry '{spec}' is not key:type"))
                    );
                };
                let cast = match ty.to_ascii_lowercase().as_str() {
                    "integer" | "int" => Cast::Integer,
                    "float" => Cast::Float,
                    "bool" => Cast::Bool,
                    "string" => Cast::Str,
                    "hex" => Cast::Hex,
                    _ => {
                        return Err(s.error_at(
                            "types",
                            format!("Types entry '{spec}': unknown type '{ty}' (integer, float, bool, string, hex)"),
                        ));
                    }
                };
                t.types.push((key.to_owned(), cast));
            }
        }
        Ok(t)
    }

    /// Casts the typed fields and reads the time; removes the time field
    /// when it was read and `Time_Keep` is off. A value that does not read
    /// as its type or time stays as it was (fluent-bit logs and keeps it).
    pub fn apply(&self, fields: &mut Fields) -> Option<i64> {
        for (key, cast) in &self.types {
            if let Some(v) = fields.get_mut(key) {
                cast_value(v, *cast);
            }
        }
        let fmt = self.time_format.as_ref()?;
        let t = match fields.get(&self.time_key)? {
            Value::Str(s) => fmt.parse(s, self.time_offset),
            Value::Int(i) if fmt.as_str() == "%s" => i.checked_mul(1_000_000_000),
            Value::Float(x) if fmt.as_str().starts_with("%s") && x.is_finite() => {
                Some((x * 1e9) as i64)
            }
            _ => None,
        }?;
        if !self.time_keep {
            fields.remove(&self.time_key);
        }
        Some(t)
    }
}

fn cast_value(v: &mut Value, cast: Cast) {
    let Value::Str(s) = v else { return };
    let t = s.trim();
    let new = match cast {
        Cast::Str => return,
        Cast::Integer => t.parse::<i64>().ok().map(Value::Int),
        Cast::Float => t.parse::<f64>().ok().map(Value::Float),
        Cast::Hex => {
            let h = t
                .strip_prefix("0x")
                .or_else(|| t.strip_prefix("0X"))
                .unwrap_or(t);
            i64::from_str_radix(h, 16).ok().map(Value::Int)
        }
        Cast::Bool => Some(Value::Bool(t.eq_ignore_ascii_case("true"))),
    };
    if let Some(n) = new {
        *v = n;
    }
}

/// The keys a `[PARSER]` section may have.
const PARSER_KEYS: &[&str] = &[
    "format",
    "regex",
    "time_key",
    "time_format",
    "time_keep",
    "time_offset",
    "time_strict",
    "types",
    "skip_empty_values",
    "logfmt_no_bare_keys",
];

/// Builds the parser a `[PARSER]` section describes.
pub fn from_section(s: &Section) -> Result<Arc<dyn LineParser>> {
    let name = s
        .name()
        .ok_or_else(|| s.error(None, "[PARSER] without a Name"))?
        .to_owned();
    if let Some(e) = s
        .get_all("decode_field")
        .chain(s.get_all("decode_field_as"))
        .next()
    {
        return Err(s.error(
            Some(e),
            format!("parser {name}: {} is not supported by vigil-logpipe", e.key),
        ));
    }
    s.check_keys(PARSER_KEYS)?;
    let post = TimeAndTypes::from_section(s)?;
    let format = s
        .get("format")
        .ok_or_else(|| s.error(None, format!("parser {name}: no Format")))?;
    Ok(match format.to_ascii_lowercase().as_str() {
        "regex" => {
            let re = s.get("regex").ok_or_else(|| {
                s.error(None, format!("parser {name}: Format regex without a Regex"))
            })?;
            let skip_empty = s.get_bool_or("skip_empty_values", true)?;
            Arc::new(
                RegexParser::new(&name, re, post)
                    .map_err(|e| s.error_at("regex", e))?
                    .skip_empty_values(skip_empty),
            )
        }
        "json" => Arc::new(JsonParser::new(&name, post)),
        "logfmt" => Arc::new(LogfmtParser::new(
            &name,
            post,
            s.get_bool_or("logfmt_no_bare_keys", false)?,
        )),
        "ltsv" => Arc::new(LtsvParser::new(&name, post)),
        other => {
            return Err(s.error_at(
                "format",
                format!("parser {name}: unknown Format '{other}' (regex, json, logfmt, ltsv)"),
            ));
        }
    })
}

/// Every parser by name: the built-ins and the configuration's.
#[derive(Clone)]
pub struct Parsers {
    by_name: HashMap<String, Arc<dyn LineParser>>,
    multiline: HashMap<String, Arc<MultilineSpec>>,
}

impl std::fmt::Debug for Parsers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<_> = self.by_name.keys().collect();
        names.sort();
        let mut ml: Vec<_> = self.multiline.keys().collect();
        ml.sort();
        f.debug_struct("Parsers")
            .field("parsers", &names)
            .field("multiline", &ml)
            .finish()
    }
}

impl Default for Parsers {
    fn default() -> Self {
        Parsers::builtin()
    }
}

impl Parsers {
    /// The built-in parsers and multiline modes only. They are compiled
    /// once per process and shared (a clone copies two small maps of `Arc`s).
    pub fn builtin() -> Parsers {
        static BUILTIN: OnceLock<Parsers> = OnceLock::new();
        BUILTIN.get_or_init(Parsers::compile_builtin).clone()
    }

    fn compile_builtin() -> Parsers {
        let mut by_name: HashMap<String, Arc<dyn LineParser>> = HashMap::new();
        let mut add = |p: Arc<dyn LineParser>| {
            by_name.insert(p.name().to_owned(), p);
        };
        add(Arc::new(JsonParser::new("json", TimeAndTypes::default())));
        add(Arc::new(JsonParser::docker()));
        add(Arc::new(CriParser::new("cri")));
        add(Arc::new(KlogParser::new("klog")));
        add(Arc::new(LogfmtParser::new(
            "logfmt",
            TimeAndTypes::default(),
            false,
        )));
        add(Arc::new(LtsvParser::new("ltsv", TimeAndTypes::default())));
        for (name, re, fmt) in regex::BUILTIN {
            let post = TimeAndTypes {
                time_format: Some(TimeFormat::new(fmt).expect("built-in time format compiles")),
                ..TimeAndTypes::default()
            };
            add(Arc::new(
                RegexParser::new(name, re, post).expect("built-in regex compiles"),
            ));
        }
        let multiline = ["java", "python", "go"]
            .into_iter()
            .filter_map(MultilineSpec::builtin)
            .map(|m| (m.name().to_owned(), Arc::new(m)))
            .collect();
        Parsers { by_name, multiline }
    }

    /// The built-ins plus every `[PARSER]` and `[MULTILINE_PARSER]` of `cfg`
    /// (a configured parser replaces a built-in of the same name; two
    /// configured parsers of one name are an error, as in fluent-bit).
    pub fn from_config(cfg: &Config) -> Result<Parsers> {
        let mut parsers = Parsers::builtin();
        let mut seen: HashMap<String, &Section> = HashMap::new();
        for s in &cfg.parsers {
            let p = from_section(s)?;
            if let Some(prev) = seen.insert(p.name().to_owned(), s) {
                return Err(s.error(
                    None,
                    format!(
                        "parser '{}' is already defined at {}:{}",
                        p.name(),
                        prev.file.display(),
                        prev.line
                    ),
                ));
            }
            parsers.by_name.insert(p.name().to_owned(), p);
        }
        for s in &cfg.multiline_parsers {
            let m = MultilineSpec::from_section(s, &parsers)?;
            parsers.multiline.insert(m.name().to_owned(), Arc::new(m));
        }
        Ok(parsers)
    }

    /// Adds or replaces a parser.
    pub fn insert(&mut self, parser: Arc<dyn LineParser>) {
        self.by_name.insert(parser.name().to_owned(), parser);
    }

    /// The parser called `name` (exact name first, then any case).
    pub fn get(&self, name: &str) -> Option<Arc<dyn LineParser>> {
        self.by_name.get(name).cloned().or_else(|| {
            self.by_name
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        })
    }

    /// The multiline parser called `name` (`[MULTILINE_PARSER]` or a
    /// built-in mode: `java`, `python`, `go`). `cri` and `docker` are not
    /// here: they are [`CriJoiner`] and [`DockerJoiner`].
    pub fn multiline(&self, name: &str) -> Option<Arc<MultilineSpec>> {
        self.multiline.get(name).cloned()
    }

    /// Names of every parser, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.by_name.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }
}

/// An [`Error::Parse`] for parser `name`.
pub(crate) fn fail(name: &str, message: impl Into<String>) -> Error {
    Error::Parse {
        parser: name.to_owned(),
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{SectionKind, parse_str};
    use std::path::Path;

    #[test]
    fn seed_timing_parser() {
        let cfg = parse_str(
            "[PARSER]\n    Name   Timing\n    Format regex\n    Regex  (?<time>\\d\\d\\d\\d\\/[^\\[]*) (?<level>\\[[^ ]*)(?<context>.[^\"]*)\n",
            Path::new("parsers.conf"),
        )
        .unwrap();
        let ps = Parsers::from_config(&cfg).unwrap();
        let p = ps.get("Timing").unwrap();
        let out = p
            .parse("2018/11/10 08:00:01.123 [INFO ] [main] c.e.App - started \"x\"")
            .unwrap();
        assert_eq!(out.time_ns, None);
        let got: Vec<(&str, String)> = out.fields.iter().map(|(k, v)| (k, v.to_string())).collect();
        assert_eq!(
            got,
            [
                ("time", "2018/11/10 08:00:01.123".to_owned()),
                ("level", "[INFO".to_owned()),
                ("context", " ] [main] c.e.App - started ".to_owned()),
            ]
        );
        assert!(p.parse("no date here").is_err());
    }

    #[test]
    fn types_and_time_keep() {
        let s = Section::new(SectionKind::Parser, "p.conf", 1)
            .with("Name", "t")
            .with("Format", "regex")
            .with(
                "Regex",
                r"^(?<time>\S+) (?<n>\d+) (?<f>\S+) (?<b>\S+) (?<h>\S+)$",
            )
            .with("Time_Format", "%s")
            .with("Time_Keep", "On")
            .with("Types", "n:integer f:float b:bool h:hex");
        let p = from_section(&s).unwrap();
        let out = p.parse("1700000000 42 2.5 TRUE ff").unwrap();
        assert_eq!(out.time_ns, Some(1_700_000_000_000_000_000));
        assert_eq!(out.fields.get("time"), Some(&Value::from("1700000000")));
        assert_eq!(out.fields.get("n"), Some(&Value::Int(42)));
        assert_eq!(out.fields.get("f"), Some(&Value::Float(2.5)));
        assert_eq!(out.fields.get("b"), Some(&Value::Bool(true)));
        assert_eq!(out.fields.get("h"), Some(&Value::Int(255)));
    }

    #[test]
    fn config_errors_name_the_line() {
        let base = Section::new(SectionKind::Parser, "p.conf", 10).with("Name", "x");
        let e = from_section(&base.clone().with("Format", "yaml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("p.conf:12:") && e.contains("unknown Format"),
            "{e}"
        );
        let e = from_section(&base.clone().with("Format", "regex").with("Regex", "(?<a>"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("p.conf:13:"), "{e}");
        let e = from_section(&base.clone().with("Format", "json").with("Types", "a:date"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown type"), "{e}");
        let e = from_section(&base.clone().with("Format", "json").with("Colour", "red"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown key 'Colour'"), "{e}");
        let e = from_section(
            &base
                .with("Format", "json")
                .with("Decode_Field_As", "json log"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("not supported"), "{e}");
    }

    #[test]
    fn builtins_exist_and_config_overrides() {
        let ps = Parsers::builtin();
        for n in [
            "json",
            "docker",
            "cri",
            "logfmt",
            "ltsv",
            "nginx",
            "apache",
            "apache2",
            "apache_error",
            "syslog-rfc5424",
            "syslog-rfc3164",
        ] {
            assert!(ps.get(n).is_some(), "{n}");
        }
        assert!(ps.multiline("java").is_some());
        let cfg = parse_str(
            "[PARSER]\n    Name json\n    Format logfmt\n[PARSER]\n    Name json2\n    Format json\n",
            Path::new("p.conf"),
        )
        .unwrap();
        let ps = Parsers::from_config(&cfg).unwrap();
        assert!(ps.get("json").unwrap().parse("a=1").is_ok());
        let dup = parse_str(
            "[PARSER]\n    Name a\n    Format json\n[PARSER]\n    Name a\n    Format json\n",
            Path::new("p.conf"),
        )
        .unwrap();
        let e = Parsers::from_config(&dup).unwrap_err().to_string();
        assert!(
            e.starts_with("p.conf:4:") && e.contains("already defined at p.conf:1"),
            "{e}"
        );
    }
}
