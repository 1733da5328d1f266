//! Exemplars: the labels (usually a trace id) of one recent observation,
//! kept beside a counter or a histogram bucket and written in OpenMetrics
//! (`… 17 # {trace_id="abc"} 0.25 1700000000.123`). Text 0.0.4 has no
//! exemplars, so that format leaves them out.
//!
//! Recording one takes a short lock (a mutex per counter or per bucket,
//! never shared with the plain increment) and reuses the strings of the
//! exemplar it replaces, so steady recording with label sets of the same
//! shape allocates only when a value grows past the old capacity.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use super::metric::unix_millis;
use crate::error::{Error, Result};
use crate::names::check_label_name;

/// OpenMetrics: "The combined length of the label names and values of an
/// Exemplar's LabelSet MUST NOT exceed 128 UTF-8 character code points."
pub const MAX_EXEMPLAR_CHARS: usize = 128;

/// The latest exemplar of a counter or a bucket.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StoredExemplar {
    pub(crate) labels: Vec<(String, String)>,
    pub(crate) value: f64,
    pub(crate) timestamp_ms: i64,
}

/// Holds at most one exemplar; a new one replaces the old.
#[derive(Debug, Default)]
pub(crate) struct ExemplarCell(Mutex<Option<StoredExemplar>>);

impl ExemplarCell {
    fn lock(&self) -> MutexGuard<'_, Option<StoredExemplar>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Replaces the exemplar, timestamped now. `labels` must have passed
    /// [`check_labels`].
    pub(crate) fn set<K: AsRef<str>, V: AsRef<str>>(&self, labels: &[(K, V)], value: f64) {
        let timestamp_ms = unix_millis(SystemTime::now());
        let mut slot = self.lock();
        let ex = slot.get_or_insert_with(|| StoredExemplar {
            labels: Vec::with_capacity(labels.len()),
            value,
            timestamp_ms,
        });
        ex.labels.truncate(labels.len());
        for (i, (k, v)) in labels.iter().enumerate() {
            match ex.labels.get_mut(i) {
                Some((name, val)) => {
                    name.clear();
                    name.push_str(k.as_ref());
                    val.clear();
                    val.push_str(v.as_ref());
                }
                None => ex
                    .labels
                    .push((k.as_ref().to_owned(), v.as_ref().to_owned())),
            }
        }
        ex.value = value;
        ex.timestamp_ms = timestamp_ms;
    }

    /// Runs `f` on the exemplar, if there is one (under the lock).
    pub(crate) fn with<R>(&self, f: impl FnOnce(Option<&StoredExemplar>) -> R) -> R {
        f(self.lock().as_ref())
    }
}

/// Checks an exemplar's label set: valid, distinct names, and at most
/// [`MAX_EXEMPLAR_CHARS`] characters of names and values together.
pub(crate) fn check_labels<K: AsRef<str>, V: AsRef<str>>(labels: &[(K, V)]) -> Result<()> {
    let mut chars = 0;
    for (i, (k, v)) in labels.iter().enumerate() {
        let name = k.as_ref();
        check_label_name(name)?;
        if labels[..i].iter().any(|(n, _)| n.as_ref() == name) {
            return Err(Error::InvalidName {
                what: "exemplar label name",
                name: name.to_owned(),
                reason: "appears twice in the exemplar's label set",
            });
        }
        chars += name.chars().count() + v.as_ref().chars().count();
    }
    if chars > MAX_EXEMPLAR_CHARS {
        let rendered: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{}={:?}", k.as_ref(), v.as_ref()))
            .collect();
        return Err(Error::InvalidName {
            what: "exemplar label set",
            name: rendered.join(","),
            reason: "has more than 128 characters of label names and values (OpenMetrics' limit)",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_counts_characters_not_bytes() {
        let at_limit = "é".repeat(MAX_EXEMPLAR_CHARS - 8);
        assert!(check_labels(&[("trace_id", at_limit.as_str())]).is_ok());
        let over = format!("{at_limit}x");
        let err = check_labels(&[("trace_id", over.as_str())]).unwrap_err();
        assert!(err.to_string().contains("128 characters"), "{err}");
        assert!(check_labels(&[("a", "1"), ("a", "2")]).is_err());
        assert!(check_labels(&[("__a", "1")]).is_err());
        assert!(check_labels::<&str, &str>(&[]).is_ok());
    }

    #[test]
    fn a_new_exemplar_replaces_the_old_in_place() {
        let cell = ExemplarCell::default();
        assert!(cell.with(|e| e.is_none()));
        cell.set(&[("trace_id", "aaaa"), ("span", "1")], 1.5);
        cell.set(&[("trace_id", "bb")], 2.5);
        cell.with(|e| {
            let e = e.expect("an exemplar");
            assert_eq!(e.labels, [("trace_id".to_owned(), "bb".to_owned())]);
            assert_eq!(e.value, 2.5);
            assert!(e.timestamp_ms > 0);
        });
    }
}
