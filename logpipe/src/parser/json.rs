//! The `json` format and the built-in `docker` parser: a top-level JSON
//! object whose keys become fields in source order.
//!
//! A small reader of our own rather than serde_json: records keep the keys in
//! the order the line had them (serde_json sorts them unless its
//! `preserve_order` feature is on for the whole build), and it builds
//! [`Value`]s directly. It follows RFC 8259 except that raw control
//! characters inside strings are accepted (fluent-bit's reader accepts them,
//! and log lines carry tabs), and nesting deeper than [`MAX_DEPTH`] is an
//! error rather than a stack overflow.

use super::{LineParser, Parsed, TimeAndTypes, fail};
use crate::Result;
use crate::record::{Fields, Text, Value};
use crate::strftime::TimeFormat;

/// Deepest nesting accepted.
pub const MAX_DEPTH: usize = 128;

/// A `Format json` parser.
#[derive(Debug)]
pub struct JsonParser {
    name: String,
    post: TimeAndTypes,
}

impl JsonParser {
    /// A JSON parser named `name`.
    pub fn new(name: &str, post: TimeAndTypes) -> JsonParser {
        JsonParser {
            name: name.to_owned(),
            post,
        }
    }

    /// fluent-bit's `docker` parser: Docker's json-file lines
    /// (`{"log":..,"stream":..,"time":..}`), the RFC 3339 nano time read and
    /// kept.
    pub fn docker() -> JsonParser {
        JsonParser::new(
            "docker",
            TimeAndTypes {
                time_key: "time".into(),
                time_format: Some(
                    TimeFormat::new("%Y-%m-%dT%H:%M:%S.%L%z").expect("docker time format compiles"),
                ),
                time_keep: true,
                ..TimeAndTypes::default()
            },
        )
    }
}

impl LineParser for JsonParser {
    fn name(&self) -> &str {
        &self.name
    }

    fn parse(&self, text: &str) -> Result<Parsed> {
        let mut fields = parse_object(text).map_err(|m| fail(&self.name, m))?;
        let time_ns = self.post.apply(&mut fields);
        Ok(Parsed { fields, time_ns })
    }
}

/// Reads `text` as one JSON object (white space around it allowed); the
/// error says what was wrong at which byte.
pub fn parse_object(text: &str) -> std::result::Result<Fields, String> {
    let mut r = Reader {
        s: text,
        b: text.as_bytes(),
        p: 0,
        pairs: SCRATCH.with(|c| c.take()),
    };
    let out = r.document();
    r.pairs.clear();
    SCRATCH.with(|c| c.replace(std::mem::take(&mut r.pairs)));
    out
}

thread_local! {
    // The pairs of the objects being read, reused from line to line so a
    // record's field vector is allocated once at its exact size instead of
    // growing (and reallocating) as keys arrive.
    static SCRATCH: std::cell::RefCell<Vec<(Text, Value)>> = const { std::cell::RefCell::new(Vec::new()) };
}

struct Reader<'a> {
    s: &'a str,
    b: &'a [u8],
    /// INVARIANT: p <= b.len() and p is on a char boundary of s.
    p: usize,
    /// A stack of the pairs of the objects being read (nested objects push
    /// above their parent's and take theirs off when they end).
    pairs: Vec<(Text, Value)>,
}

impl Reader<'_> {
    fn document(&mut self) -> std::result::Result<Fields, String> {
        self.ws();
        if self.peek() != Some(b'{') {
            return Err(self.err("expected a JSON object"));
        }
        let fields = self.object(0)?;
        self.ws();
        if self.p != self.b.len() {
            return Err(self.err("text after the JSON object"));
        }
        Ok(fields)
    }

    fn err(&self, what: &str) -> String {
        format!("{what} at byte {}", self.p)
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.p).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.p += 1;
        }
    }

    fn eat(&mut self, c: u8) -> std::result::Result<(), String> {
        if self.peek() == Some(c) {
            self.p += 1;
            Ok(())
        } else {
            Err(self.err(&format!("expected '{}'", c as char)))
        }
    }

    fn object(&mut self, depth: usize) -> std::result::Result<Fields, String> {
        if depth >= MAX_DEPTH {
            return Err(self.err("JSON nested too deep"));
        }
        self.eat(b'{')?;
        let base = self.pairs.len();
        self.ws();
        if self.peek() == Some(b'}') {
            self.p += 1;
            return Ok(Fields::new());
        }
        loop {
            self.ws();
            if self.peek() != Some(b'"') {
                return Err(self.err("expected a string key"));
            }
            let key = self.string()?;
            self.ws();
            self.eat(b':')?;
            self.ws();
            let v = self.value(depth + 1)?;
            self.pairs.push((key, v));
            self.ws();
            match self.peek() {
                Some(b',') => self.p += 1,
                Some(b'}') => {
                    self.p += 1;
                    // An exact-size iterator: one allocation of the final size.
                    return Ok(self.pairs.drain(base..).collect());
                }
                _ => return Err(self.err("expected ',' or '}'")),
            }
        }
    }

    fn value(&mut self, depth: usize) -> std::result::Result<Value, String> {
        match self.peek() {
            Some(b'{') => Ok(Value::Map(self.object(depth)?)),
            Some(b'[') => {
                if depth >= MAX_DEPTH {
                    return Err(self.err("JSON nested too deep"));
                }
                self.p += 1;
                let mut items = Vec::new();
                self.ws();
                if self.peek() == Some(b']') {
                    self.p += 1;
                    return Ok(Value::Array(items));
                }
                loop {
                    self.ws();
                    items.push(self.value(depth + 1)?);
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.p += 1,
                        Some(b']') => {
                            self.p += 1;
                            return Ok(Value::Array(items));
                        }
                        _ => return Err(self.err("expected ',' or ']'")),
                    }
                }
            }
            Some(b'"') => Ok(Value::Str(self.string()?)),
            Some(b't') => self.word("true", Value::Bool(true)),
            Some(b'f') => self.word("false", Value::Bool(false)),
            Some(b'n') => self.word("null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.err("expected a JSON value")),
        }
    }

    fn word(&mut self, w: &str, v: Value) -> std::result::Result<Value, String> {
        if self.b[self.p..].starts_with(w.as_bytes()) {
            self.p += w.len();
            Ok(v)
        } else {
            Err(self.err("expected a JSON value"))
        }
    }

    fn number(&mut self) -> std::result::Result<Value, String> {
        let start = self.p;
        if self.peek() == Some(b'-') {
            self.p += 1;
        }
        let digits = |r: &mut Self| {
            let s = r.p;
            while r.peek().is_some_and(|c| c.is_ascii_digit()) {
                r.p += 1;
            }
            r.p - s
        };
        if digits(self) == 0 {
            return Err(self.err("expected digits"));
        }
        let mut float = false;
        if self.peek() == Some(b'.') {
            self.p += 1;
            float = true;
            if digits(self) == 0 {
                return Err(self.err("expected digits after '.'"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.p += 1;
            float = true;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.p += 1;
            }
            if digits(self) == 0 {
                return Err(self.err("expected exponent digits"));
            }
        }
        let text = &self.s[start..self.p];
        if !float {
            if let Ok(i) = text.parse::<i64>() {
                return Ok(Value::Int(i));
            }
        }
        text.parse::<f64>()
            .map(Value::Float)
            .map_err(|_| self.err("bad number"))
    }

    fn string(&mut self) -> std::result::Result<Text, String> {
        self.p += 1;
        let start = self.p;
        // Fast path: no escapes, one copy.
        match memchr::memchr2(b'"', b'\\', &self.b[self.p..]) {
            Some(i) if self.b[self.p + i] == b'"' => {
                self.p += i + 1;
                return Ok(Text::from(&self.s[start..start + i]));
            }
            Some(_) => {}
            None => return Err(self.err("unterminated string")),
        }
        let mut out = Text::default();
        loop {
            let Some(i) = memchr::memchr2(b'"', b'\\', &self.b[self.p..]) else {
                return Err(self.err("unterminated string"));
            };
            out.push_str(&self.s[self.p..self.p + i]);
            self.p += i;
            if self.b[self.p] == b'"' {
                self.p += 1;
                return Ok(out);
            }
            self.p += 1;
            let Some(e) = self.peek() else {
                return Err(self.err("unterminated escape"));
            };
            self.p += 1;
            match e {
                b'"' => out.push('"'),
                b'\\' => out.push('\\'),
                b'/' => out.push('/'),
                b'b' => out.push('\u{8}'),
                b'f' => out.push('\u{c}'),
                b'n' => out.push('\n'),
                b'r' => out.push('\r'),
                b't' => out.push('\t'),
                b'u' => {
                    let hi = self.hex4()?;
                    let c = if (0xD800..0xDC00).contains(&hi) {
                        // A high surrogate wants a low one next; alone it
                        // becomes U+FFFD rather than failing the line.
                        if self.b[self.p..].starts_with(b"\\u") {
                            let save = self.p;
                            self.p += 2;
                            let lo = self.hex4()?;
                            if (0xDC00..0xE000).contains(&lo) {
                                char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))
                            } else {
                                self.p = save;
                                None
                            }
                        } else {
                            None
                        }
                    } else {
                        char::from_u32(hi)
                    };
                    out.push(c.unwrap_or('\u{FFFD}'));
                }
                _ => return Err(self.err("bad escape")),
            }
        }
    }

    fn hex4(&mut self) -> std::result::Result<u32, String> {
        let h = self
            .b
            .get(self.p..self.p + 4)
            .ok_or_else(|| self.err("short \\u escape"))?;
        let mut v = 0u32;
        for &c in h {
            let d = (c as char)
                .to_digit(16)
                .ok_or_else(|| self.err("bad \\u escape"))?;
            v = v * 16 + d;
        }
        self.p += 4;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_source_order_and_types() {
        let f = parse_object(
            r#" {"z":1,"a":"x\ty","m":{"k":[true,null,-1.5e2]},"big":18446744073709551616} "#,
        )
        .unwrap();
        let keys: Vec<_> = f.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["z", "a", "m", "big"]);
        assert_eq!(f.get("z"), Some(&Value::Int(1)));
        assert_eq!(f.get("a"), Some(&Value::from("x\ty")));
        assert_eq!(f.get("big"), Some(&Value::Float(18446744073709551616.0)));
        assert_eq!(
            crate::json::to_string(f.get("m").unwrap()),
            r#"{"k":[true,null,-150]}"#
        );
    }

    #[test]
    fn escapes_and_surrogates() {
        let f = parse_object(r#"{"s":"\"\\\/\n\u00e9\ud83d\ude00\ud800x"}"#).unwrap();
        assert_eq!(f.get("s"), Some(&Value::from("\"\\/\né😀\u{FFFD}x")));
    }

    #[test]
    fn errors_say_where() {
        assert_eq!(
            parse_object("[1]").unwrap_err(),
            "expected a JSON object at byte 0"
        );
        assert!(parse_object(r#"{"a":1"#).unwrap_err().contains("byte 6"));
        assert!(parse_object(r#"{"a":1} x"#).is_err());
        assert!(parse_object(r#"{"a":01x}"#).is_err());
        assert!(parse_object(r#"{"a":"#).is_err());
        assert!(parse_object(r#"{"a":"\u12"}"#).is_err());
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(500), "]".repeat(500));
        assert!(parse_object(&deep).unwrap_err().contains("too deep"));
    }

    #[test]
    fn docker_line() {
        let p = JsonParser::docker();
        let out = p
            .parse(r#"{"log":"hello\n","stream":"stdout","time":"2020-01-02T03:04:05.123456789Z"}"#)
            .unwrap();
        assert_eq!(out.time_ns, Some(1_577_934_245_123_456_789));
        assert_eq!(out.fields.len(), 3);
        assert_eq!(out.fields.get("log"), Some(&Value::from("hello\n")));
    }

    #[test]
    fn agrees_with_serde_json_on_values() {
        let text = r#"{"a":[1,2.5,"x",{"b":null}],"c":false,"d":-7,"e":"\u0041"}"#;
        let ours = Value::Map(parse_object(text).unwrap());
        let theirs: serde_json::Value = serde_json::from_str(text).unwrap();
        let back: serde_json::Value = serde_json::from_str(&crate::json::to_string(&ours)).unwrap();
        assert_eq!(back, theirs);
    }
}
