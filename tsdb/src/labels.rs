//! Series identity: a set of label pairs, `__name__` included.

use std::fmt;

use crate::Error;

/// The label that holds the metric name.
pub const METRIC_NAME: &str = "__name__";

/// A series' labels: sorted by name, names unique and non-empty. A label with
/// an empty value is the same as no label (Prometheus's rule), so it is
/// dropped. Names and values may be any UTF-8 (Prometheus 3).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Labels(Vec<(String, String)>);

impl Labels {
    /// Builds a label set from pairs in any order.
    ///
    /// ```
    /// use vigil_tsdb::labels::Labels;
    /// let l = Labels::new([("job", "node"), ("__name__", "up"), ("zone", "")])?;
    /// assert_eq!(l.get("__name__"), Some("up"));
    /// assert_eq!(l.len(), 2); // the empty `zone` is no label
    /// # Ok::<(), vigil_tsdb::Error>(())
    /// ```
    pub fn new<N: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (N, V)>,
    ) -> Result<Labels, Error> {
        let mut v: Vec<(String, String)> = pairs
            .into_iter()
            .map(|(n, v)| (n.into(), v.into()))
            .filter(|(_, v)| !v.is_empty())
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        for w in v.windows(2) {
            if w[0].0 == w[1].0 {
                return Err(Error::InvalidLabels {
                    reason: format!("label name {:?} appears twice", w[0].0),
                });
            }
        }
        if v.first().is_some_and(|(n, _)| n.is_empty()) {
            return Err(Error::InvalidLabels {
                reason: "empty label name".into(),
            });
        }
        Ok(Labels(v))
    }

    /// The value of label `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].1.as_str())
    }

    /// The metric name (`__name__`), if any.
    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    /// The pairs, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no labels.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Prometheus's notation: `{__name__="up", job="node"}`.
impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (n, v)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{n}={v:?}")?;
        }
        f.write_str("}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_unique_and_empty_values_dropped() {
        let l = Labels::new([("b", "2"), ("a", "1"), ("c", "")]).unwrap();
        assert_eq!(l.iter().collect::<Vec<_>>(), [("a", "1"), ("b", "2")]);
        assert_eq!(l.get("c"), None);
        assert!(Labels::new([("a", "1"), ("a", "2")]).is_err());
        assert!(Labels::new([("", "1")]).is_err());
        assert_eq!(l.to_string(), "{a=\"1\", b=\"2\"}");
        assert_eq!(
            Labels::new([("http.path", "/ä")]).unwrap().get("http.path"),
            Some("/ä")
        );
    }
}
