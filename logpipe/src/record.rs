//! The unit that flows through the pipeline: a tag, a time and ordered fields.

use std::fmt;

/// Text in records: keys and string values. Strings of up to 24 bytes (most
/// keys, and most values a log parser captures: addresses, methods, codes,
/// sizes) live inline, so a parsed record costs a few heap allocations
/// instead of two per field.
pub use compact_str::CompactString as Text;

/// A field value: the JSON data model plus a distinct integer, as fluent-bit's
/// msgpack records have.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A signed integer (a type cast or a JSON integer).
    Int(i64),
    /// A float.
    Float(f64),
    /// Text (a raw line, a capture, a JSON string).
    Str(Text),
    /// A list.
    Array(Vec<Value>),
    /// A nested map, order kept.
    Map(Fields),
}

impl Value {
    /// The text when this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(Text::from(s))
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(Text::from(s))
    }
}

impl From<Text> for Value {
    fn from(s: Text) -> Self {
        Value::Str(s)
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}

/// A record's fields: keys in the order they were set (outputs print them in
/// that order, as fluent-bit does). Few keys per record make a vector faster
/// than a map.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fields(Vec<(Text, Value)>);

impl Fields {
    /// No fields.
    pub fn new() -> Self {
        Fields(Vec::new())
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The value of `key`, mutably.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.0.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Sets `key`, replacing its value in place or appending it.
    pub fn set(&mut self, key: impl Into<Text>, value: impl Into<Value>) {
        let key = key.into();
        let value = value.into();
        match self.get_mut(&key) {
            Some(slot) => *slot = value,
            None => self.0.push((key, value)),
        }
    }

    /// Appends `key` without looking for an existing one (parsers building a
    /// fresh record know the keys are new).
    pub fn push(&mut self, key: impl Into<Text>, value: impl Into<Value>) {
        self.0.push((key.into(), value.into()));
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let i = self.0.iter().position(|(k, _)| k == key)?;
        Some(self.0.remove(i).1)
    }

    /// Renames `from` to `to` in place; false when `from` is absent.
    pub fn rename(&mut self, from: &str, to: impl Into<Text>) -> bool {
        match self.0.iter_mut().find(|(k, _)| k == from) {
            Some(entry) => {
                entry.0 = to.into();
                true
            }
            None => false,
        }
    }

    /// Whether `key` is set.
    pub fn contains(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<K: Into<Text>, V: Into<Value>> FromIterator<(K, V)> for Fields {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Fields(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

/// Where a record came from, so that its input can checkpoint the position
/// once every output that matched the record has acknowledged it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    /// Index of the input in the pipeline.
    pub input: usize,
    /// The input's stream (a tailed file's identity; 0 for stdin/exec).
    pub stream: u64,
    /// The byte offset just past the record in that stream.
    pub end: u64,
}

/// One log record.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The routing tag (`kube.var.log.app.log`).
    pub tag: Text,
    /// Event time, nanoseconds since the Unix epoch.
    pub time_ns: i64,
    /// The fields; an unparsed line is the single field `log`.
    pub fields: Fields,
    /// Where it came from, for end-to-end acknowledgement.
    pub origin: Option<Origin>,
}

impl Record {
    /// A record holding a raw line under `log`, as fluent-bit's inputs make.
    pub fn line(tag: impl Into<Text>, time_ns: i64, line: impl Into<Value>) -> Self {
        let mut fields = Fields::new();
        fields.push("log", line.into());
        Record {
            tag: tag.into(),
            time_ns,
            fields,
            origin: None,
        }
    }
}

impl fmt::Display for Value {
    /// Text form as outputs print a field in plain mode: strings bare, the
    /// rest as JSON.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Str(s) => f.write_str(s),
            Value::Array(_) | Value::Map(_) => f.write_str(&crate::json::to_string(self)),
        }
    }
}
