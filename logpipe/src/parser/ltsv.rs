//! The `ltsv` format (Labeled Tab-separated Values): `label:value` pairs
//! separated by tabs. A label is everything before the first `:` of a pair;
//! the value may contain further colons.

use super::{LineParser, Parsed, TimeAndTypes, fail};
use crate::Result;
use crate::record::{Fields, Value};

/// A `Format ltsv` parser.
#[derive(Debug)]
pub struct LtsvParser {
    name: String,
    post: TimeAndTypes,
}

impl LtsvParser {
    /// An LTSV parser named `name`.
    pub fn new(name: &str, post: TimeAndTypes) -> LtsvParser {
        LtsvParser {
            name: name.to_owned(),
            post,
        }
    }
}

impl LineParser for LtsvParser {
    fn name(&self) -> &str {
        &self.name
    }

    fn parse(&self, text: &str) -> Result<Parsed> {
        let mut fields = parse_fields(text).map_err(|m| fail(&self.name, m))?;
        let time_ns = self.post.apply(&mut fields);
        Ok(Parsed { fields, time_ns })
    }
}

/// Reads an LTSV line into fields; a pair without `:` is an error. Empty
/// pairs (two tabs in a row, a trailing tab) are skipped.
pub fn parse_fields(text: &str) -> std::result::Result<Fields, String> {
    let text = text.strip_suffix('\n').unwrap_or(text);
    let text = text.strip_suffix('\r').unwrap_or(text);
    let mut fields = Fields::new();
    for (i, pair) in text.split('\t').enumerate() {
        if pair.is_empty() {
            continue;
        }
        let Some((label, value)) = pair.split_once(':') else {
            return Err(format!("field {} ('{pair}') has no ':'", i + 1));
        };
        if label.is_empty() {
            return Err(format!("field {} has an empty label", i + 1));
        }
        fields.push(label, Value::from(value));
    }
    if fields.is_empty() {
        return Err("no label:value pairs".into());
    }
    Ok(fields)
}

/// Writes fields as an LTSV line; values are their text forms (tabs and
/// newlines in them cannot be represented and are replaced by spaces).
pub fn write(fields: &Fields, out: &mut String) {
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push('\t');
        }
        out.push_str(k);
        out.push(':');
        out.push_str(&v.to_string().replace(['\t', '\n', '\r'], " "));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pairs_with_colons_in_values() {
        let f = parse_fields(
            "time:[10/Oct/2000:13:55:36 -0700]\thost:127.0.0.1\treq:GET / HTTP/1.1\t\n",
        )
        .unwrap();
        assert_eq!(f.len(), 3);
        assert_eq!(
            f.get("time"),
            Some(&Value::from("[10/Oct/2000:13:55:36 -0700]"))
        );
        assert!(
            parse_fields("a:1\tnocolon")
                .unwrap_err()
                .contains("field 2")
        );
        assert!(parse_fields(":x").is_err());
        assert!(parse_fields("").is_err());
    }
}
