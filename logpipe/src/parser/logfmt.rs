//! The `logfmt` format: `key=value key="quoted value" bare`.
//!
//! A key is a run of characters other than space, `=` and `"`; a value is a
//! bare run up to the next space or a double-quoted string with `\"`, `\\`,
//! `\n`, `\r`, `\t` escapes. A key without `=` is `true` (fluent-bit's
//! documented reading) unless `Logfmt_No_Bare_Keys` is on, when the line is
//! rejected. `key=` is the empty string.

use super::{LineParser, Parsed, TimeAndTypes, fail};
use crate::Result;
use crate::record::{Fields, Text, Value};

/// A `Format logfmt` parser.
#[derive(Debug)]
pub struct LogfmtParser {
    name: String,
    post: TimeAndTypes,
    no_bare_keys: bool,
}

impl LogfmtParser {
    /// A logfmt parser; `no_bare_keys` rejects lines with a key alone.
    pub fn new(name: &str, post: TimeAndTypes, no_bare_keys: bool) -> LogfmtParser {
        LogfmtParser {
            name: name.to_owned(),
            post,
            no_bare_keys,
        }
    }
}

impl LineParser for LogfmtParser {
    fn name(&self) -> &str {
        &self.name
    }

    fn parse(&self, text: &str) -> Result<Parsed> {
        let mut fields = parse_fields(text, self.no_bare_keys).map_err(|m| fail(&self.name, m))?;
        let time_ns = self.post.apply(&mut fields);
        Ok(Parsed { fields, time_ns })
    }
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

/// Reads a logfmt line into fields.
pub fn parse_fields(text: &str, no_bare_keys: bool) -> std::result::Result<Fields, String> {
    let b = text.as_bytes();
    let mut p = 0;
    // A plain vector moved into Fields at the end (collect reuses it).
    let mut fields: Vec<(Text, Value)> = Vec::with_capacity(8);
    loop {
        while p < b.len() && is_space(b[p]) {
            p += 1;
        }
        if p == b.len() {
            break;
        }
        let ks = p;
        while p < b.len() && !is_space(b[p]) && b[p] != b'=' && b[p] != b'"' {
            p += 1;
        }
        if p == ks {
            return Err(format!("expected a key at byte {p}"));
        }
        let key = &text[ks..p];
        if p == b.len() || is_space(b[p]) {
            if no_bare_keys {
                return Err(format!("key '{key}' has no value (Logfmt_No_Bare_Keys)"));
            }
            fields.push((Text::from(key), Value::Bool(true)));
            continue;
        }
        if b[p] == b'"' {
            return Err(format!("unexpected '\"' in a key at byte {p}"));
        }
        p += 1; // '='
        if p < b.len() && b[p] == b'"' {
            p += 1;
            let mut val = String::new();
            let mut run = p;
            loop {
                let Some(i) = memchr::memchr2(b'"', b'\\', &b[p..]) else {
                    return Err(format!("unterminated quoted value of '{key}'"));
                };
                p += i;
                if b[p] == b'"' {
                    val.push_str(&text[run..p]);
                    p += 1;
                    break;
                }
                val.push_str(&text[run..p]);
                let esc = b.get(p + 1).copied();
                match esc {
                    Some(b'"') => val.push('"'),
                    Some(b'\\') => val.push('\\'),
                    Some(b'n') => val.push('\n'),
                    Some(b'r') => val.push('\r'),
                    Some(b't') => val.push('\t'),
                    // Unknown escapes stay as written.
                    Some(c) if c.is_ascii() => {
                        val.push('\\');
                        val.push(c as char);
                    }
                    _ => {
                        val.push('\\');
                        p += 1;
                        run = p;
                        continue;
                    }
                }
                p += 2;
                run = p;
            }
            fields.push((Text::from(key), Value::from(val)));
            if p < b.len() && !is_space(b[p]) {
                return Err(format!(
                    "expected a space after the value of '{key}' at byte {p}"
                ));
            }
        } else {
            let vs = p;
            while p < b.len() && !is_space(b[p]) {
                p += 1;
            }
            fields.push((Text::from(key), Value::from(&text[vs..p])));
        }
    }
    Ok(fields.into_iter().collect())
}

/// Writes string fields as a logfmt line (quoting values that need it);
/// non-string values are written as their JSON text.
pub fn write(fields: &Fields, out: &mut String) {
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(k);
        out.push('=');
        let s = v.to_string();
        let needs_quotes = s.is_empty()
            || s.bytes()
                .any(|c| is_space(c) || c == b'"' || c == b'=' || c == b'\\');
        if !needs_quotes {
            out.push_str(&s);
            continue;
        }
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_bare_quoted_and_empty() {
        let f = parse_fields(
            r#"level=info msg="hello \"world\"" empty= flag path=/a=b"#,
            false,
        )
        .unwrap();
        let got: Vec<(&str, String)> = f.iter().map(|(k, v)| (k, v.to_string())).collect();
        assert_eq!(
            got,
            [
                ("level", "info".into()),
                ("msg", "hello \"world\"".into()),
                ("empty", "".into()),
                ("flag", "true".into()),
                ("path", "/a=b".into()),
            ]
        );
        assert_eq!(f.get("flag"), Some(&Value::Bool(true)));
    }

    #[test]
    fn errors() {
        assert!(parse_fields("a b", true).is_err());
        assert!(parse_fields(r#"a="x"#, false).is_err());
        assert!(parse_fields(r#"a="x"y"#, false).is_err());
        assert!(parse_fields("=x", false).is_err());
        assert!(parse_fields(r#"a"b=1"#, false).is_err());
        assert!(parse_fields("", false).unwrap().is_empty());
    }

    #[test]
    fn write_then_read() {
        let mut f = Fields::new();
        f.push("a", "x y");
        f.push("b", "");
        f.push("c", "q\"\\\n");
        let mut s = String::new();
        write(&f, &mut s);
        assert_eq!(parse_fields(&s, true).unwrap(), f);
    }
}
