//! Grouping keys from push paths: `/metrics/job/<job>{/<label>/<value>}`
//! and `/metrics/job@base64/<job>...`, with `<label>@base64/<value>` for
//! values that hold `/` or are empty.

use std::fmt;

use super::store::GroupKey;

/// Why a push path was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PathError {
    /// Not a push path at all (404).
    NotFound,
    /// The job is empty.
    NoJob,
    /// The label part does not split into name/value pairs.
    OddComponents(String),
    /// A label name is not `[a-zA-Z_][a-zA-Z0-9_]*` or starts with `__`.
    LabelName(String),
    /// A `@base64` value does not decode (or is not UTF-8).
    Base64 {
        /// The label.
        label: String,
        /// The value as written.
        value: String,
    },
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathError::NotFound => f.write_str("404 page not found"),
            PathError::NoJob => f.write_str("job name is required"),
            PathError::OddComponents(s) => {
                write!(f, "odd number of components in label string {s:?}")
            }
            PathError::LabelName(n) => write!(f, "improper label name {n:?}"),
            PathError::Base64 { label, value } => {
                write!(f, "invalid base64 encoding for label {label}={value:?}")
            }
        }
    }
}

impl std::error::Error for PathError {}

/// The grouping key of a (percent-decoded) push path.
///
/// ```
/// use vigil_examples::pushgateway::grouping_key;
///
/// let k = grouping_key("/metrics/job@base64/Zm9vL2Jhcg/path@base64/L3Zhcg==/i/x").unwrap();
/// assert_eq!(k["job"], "foo/bar");
/// assert_eq!(k["path"], "/var");
/// assert_eq!(k["i"], "x");
/// ```
pub fn grouping_key(path: &str) -> Result<GroupKey, PathError> {
    let (b64, rest) = if let Some(r) = path.strip_prefix("/metrics/job@base64/") {
        (true, r)
    } else if let Some(r) = path.strip_prefix("/metrics/job/") {
        (false, r)
    } else {
        return Err(PathError::NotFound);
    };
    let (job, labels) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if job.is_empty() && b64 {
        return Err(PathError::NotFound);
    }
    let job = if b64 {
        decode_value("job", job)?
    } else {
        job.to_owned()
    };
    if job.is_empty() {
        return Err(PathError::NoJob);
    }
    let mut key = GroupKey::new();
    if labels.len() > 1 {
        let parts: Vec<&str> = labels.split('/').collect();
        if parts.len() % 2 == 0 {
            return Err(PathError::OddComponents(labels.to_owned()));
        }
        for pair in parts[1..].chunks(2) {
            let (name, value) = (pair[0], pair[1]);
            let (plain, is_b64) = match name.strip_suffix("@base64") {
                Some(n) => (n, true),
                None => (name, false),
            };
            if !vigil_exposition::is_legacy_label_name(plain) || plain.starts_with("__") {
                return Err(PathError::LabelName(plain.to_owned()));
            }
            let value = if is_b64 {
                decode_value(plain, value)?
            } else {
                value.to_owned()
            };
            key.insert(plain.to_owned(), value);
        }
    }
    // The job of the path wins over a `job` pair in the labels.
    key.insert("job".into(), job);
    Ok(key)
}

fn decode_value(label: &str, value: &str) -> Result<String, PathError> {
    let err = || PathError::Base64 {
        label: label.to_owned(),
        value: value.to_owned(),
    };
    let bytes = base64_url_decode(value.trim_end_matches('=')).ok_or_else(err)?;
    String::from_utf8(bytes).map_err(|_| err())
}

/// URL-safe base64 without padding (RFC 4648 §5); `None` on any other
/// character or an impossible length.
fn base64_url_decode(s: &str) -> Option<Vec<u8>> {
    let sextet = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        } as u32)
    };
    if s.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.as_bytes().chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= sextet(c)? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
        // Go's strict decoder refuses set bits past the last whole byte.
        let used = (chunk.len() - 1) * 8;
        if chunk.len() < 4 && acc & ((1 << (24 - used)) - 1) != 0 {
            return None;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_as_pushgateway_1_5() {
        let k = grouping_key("/metrics/job/a/k@base64/=").unwrap();
        assert_eq!(k["k"], "");
        let k = grouping_key("/metrics/job/a/k@base64/").unwrap();
        assert_eq!(k["k"], "");
        assert_eq!(grouping_key("/metrics/job/a/k/").unwrap()["k"], "");
        assert_eq!(grouping_key("/metrics/job/a/").unwrap().len(), 1);
        assert_eq!(
            grouping_key("/metrics/job/a/k@base64/Pz8-").unwrap()["k"],
            "??>"
        );
        assert_eq!(grouping_key("/metrics/job/a/job/c").unwrap()["job"], "a");
        assert_eq!(
            grouping_key("/metrics/job/a/k/v/"),
            Err(PathError::OddComponents("/k/v/".into()))
        );
        assert_eq!(
            grouping_key("/metrics/job/a/b"),
            Err(PathError::OddComponents("/b".into()))
        );
        assert_eq!(
            grouping_key("/metrics/job/a/1b/c"),
            Err(PathError::LabelName("1b".into()))
        );
        assert_eq!(
            grouping_key("/metrics/job/a/__k/c"),
            Err(PathError::LabelName("__k".into()))
        );
        assert_eq!(grouping_key("/metrics/job@base64/="), Err(PathError::NoJob));
        assert_eq!(
            grouping_key("/metrics/job@base64/"),
            Err(PathError::NotFound)
        );
        assert!(matches!(
            grouping_key("/metrics/job/a/k@base64/!!"),
            Err(PathError::Base64 { .. })
        ));
    }

    #[test]
    fn base64_matches_the_alphabet() {
        assert_eq!(base64_url_decode("Zm9vYmFy").unwrap(), b"foobar");
        assert_eq!(base64_url_decode("Zm9vYg").unwrap(), b"foob");
        assert_eq!(base64_url_decode("Zm9vYmE").unwrap(), b"fooba");
        assert!(base64_url_decode("Zm9vY").is_none());
        assert!(base64_url_decode("Zh").is_none(), "trailing bits set");
        assert!(base64_url_decode("a+b/").is_none(), "standard alphabet");
    }
}
