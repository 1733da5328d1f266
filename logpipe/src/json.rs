//! JSON encoding of records and values, written straight into a byte buffer
//! (outputs encode every record, so this avoids serde_json's intermediate
//! tree).

use crate::record::{Fields, Value};
use std::fmt::Write as _;

/// Appends `value` as JSON to `out`.
pub fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(x) if x.is_finite() => {
            let _ = write!(out, "{x}");
        }
        // JSON has no NaN or infinities; fluent-bit prints them as null too.
        Value::Float(_) => out.push_str("null"),
        Value::Str(s) => write_str(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Map(fields) => write_fields(out, fields),
    }
}

/// Appends `fields` as a JSON object to `out`.
pub fn write_fields(out: &mut String, fields: &Fields) {
    out.push('{');
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(out, k);
        out.push(':');
        write_value(out, v);
    }
    out.push('}');
}

/// Appends `s` as a JSON string literal, escaping what RFC 8259 requires.
pub fn write_str(out: &mut String, s: &str) {
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// `value` as a JSON string.
pub fn to_string(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

/// Converts a parsed `serde_json` value into a record value, keeping key
/// order as it appeared (serde_json's `preserve_order` is not enabled, so
/// callers that need source order keep their own parser).
pub fn from_serde(v: serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => Value::from(s),
        serde_json::Value::Array(a) => Value::Array(a.into_iter().map(from_serde).collect()),
        serde_json::Value::Object(o) => {
            Value::Map(o.into_iter().map(|(k, v)| (k, from_serde(v))).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_control_characters_and_quotes() {
        let mut out = String::new();
        write_str(&mut out, "a\"b\\c\nd\u{1}é");
        assert_eq!(out, r#""a\"b\\c\nd\u0001é""#);
        let back: String = serde_json::from_str(&out).unwrap();
        assert_eq!(back, "a\"b\\c\nd\u{1}é");
    }

    #[test]
    fn nested_values_round_trip_through_serde_json() {
        let mut inner = Fields::new();
        inner.push("n", 3i64);
        let mut f = Fields::new();
        f.push("s", "x");
        f.push("f", 1.5);
        f.push("nan", f64::NAN);
        f.push("m", Value::Map(inner));
        f.push("a", Value::Array(vec![Value::Null, Value::Bool(true)]));
        let mut out = String::new();
        write_fields(&mut out, &f);
        assert_eq!(
            out,
            r#"{"s":"x","f":1.5,"nan":null,"m":{"n":3},"a":[null,true]}"#
        );
        let _: serde_json::Value = serde_json::from_str(&out).unwrap();
    }
}
