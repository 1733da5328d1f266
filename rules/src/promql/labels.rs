//! Label sets.

use std::fmt;
use std::sync::Arc;

/// One label.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Label {
    /// Name.
    pub name: String,
    /// Value (never empty in a stored label set).
    pub value: String,
}

/// A label set, kept sorted by name with no empty values. Cloning is a
/// reference-count increment (the evaluator copies label sets at every
/// step); changing a shared set copies it first.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Labels(Arc<Vec<Label>>);

/// The metric name label.
pub(crate) const NAME: &str = "__name__";

impl Labels {
    /// The empty set.
    pub fn new() -> Self {
        Labels::default()
    }

    /// Builds a set from pairs; empty values are dropped, later duplicates win.
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        let mut l = Labels::new();
        for (n, v) in pairs {
            l.set(n, v);
        }
        l
    }

    /// The value of `name`, or `""` when absent.
    pub fn get(&self, name: &str) -> &str {
        match self.0.binary_search_by(|l| l.name.as_str().cmp(name)) {
            Ok(i) => &self.0[i].value,
            Err(_) => "",
        }
    }

    /// The value of `__name__` (usually the first label), or `""`.
    pub fn metric_name(&self) -> &str {
        match self.0.first() {
            Some(l) if l.name == NAME => &l.value,
            _ => self.get(NAME),
        }
    }

    /// The address of the shared storage: equal for clones of one set.
    pub(crate) fn ptr_key(&self) -> usize {
        Arc::as_ptr(&self.0) as usize
    }

    /// Whether `name` is present.
    pub fn has(&self, name: &str) -> bool {
        self.0
            .binary_search_by(|l| l.name.as_str().cmp(name))
            .is_ok()
    }

    /// Sets `name` to `value`; an empty value removes the label.
    pub fn set(&mut self, name: &str, value: &str) {
        match self.0.binary_search_by(|l| l.name.as_str().cmp(name)) {
            Ok(i) => {
                if value.is_empty() {
                    Arc::make_mut(&mut self.0).remove(i);
                } else if self.0[i].value != value {
                    Arc::make_mut(&mut self.0)[i].value = value.to_string();
                }
            }
            Err(i) => {
                if !value.is_empty() {
                    Arc::make_mut(&mut self.0).insert(
                        i,
                        Label {
                            name: name.to_string(),
                            value: value.to_string(),
                        },
                    );
                }
            }
        }
    }

    /// Removes `name`.
    pub fn remove(&mut self, name: &str) {
        if let Ok(i) = self.0.binary_search_by(|l| l.name.as_str().cmp(name)) {
            Arc::make_mut(&mut self.0).remove(i);
        }
    }

    /// The labels in name order.
    pub fn iter(&self) -> impl Iterator<Item = &Label> {
        self.0.iter()
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no labels.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A copy without `__name__`.
    pub fn without_name(&self) -> Labels {
        let mut l = self.clone();
        l.remove(NAME);
        l
    }

    /// A copy keeping only the listed names (`keep == true`) or dropping
    /// them (`keep == false`).
    pub(crate) fn filtered(&self, names: &[String], keep: bool) -> Labels {
        if self.0.iter().all(|l| names.contains(&l.name) == keep) {
            return self.clone();
        }
        Labels(Arc::new(
            self.0
                .iter()
                .filter(|l| names.contains(&l.name) == keep)
                .cloned()
                .collect(),
        ))
    }
}

/// Writes `{a="b", c="d"}` with Go-style quoting, as Prometheus prints.
impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, l) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            let plain = l
                .name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && l.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_');
            if plain {
                write!(f, "{}={}", l.name, go_quote(l.value.as_bytes()))?;
            } else {
                write!(
                    f,
                    "{}={}",
                    go_quote(l.name.as_bytes()),
                    go_quote(l.value.as_bytes())
                )?;
            }
        }
        f.write_str("}")
    }
}

/// Quotes bytes as Go's `%q` does (invalid UTF-8 becomes `\xNN`).
pub(crate) fn go_quote(b: &[u8]) -> String {
    let mut out = String::from("\"");
    let mut rest = b;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                push_escaped(&mut out, s);
                break;
            }
            Err(e) => {
                let (good, bad) = rest.split_at(e.valid_up_to());
                push_escaped(&mut out, std::str::from_utf8(good).unwrap_or(""));
                let n = e.error_len().unwrap_or(bad.len()).max(1);
                for byte in &bad[..n] {
                    out.push_str(&format!("\\x{byte:02x}"));
                }
                rest = &bad[n..];
            }
        }
    }
    out.push('"');
    out
}

fn push_escaped(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
}
