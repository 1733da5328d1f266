//! Metric and label name rules.

/// A metric name in the classic character set `[a-zA-Z_:][a-zA-Z0-9_:]*`,
/// which needs no quoting in either format.
pub fn is_legacy_metric_name(name: &str) -> bool {
    let b = name.as_bytes();
    match b.first() {
        Some(c) if c.is_ascii_alphabetic() || *c == b'_' || *c == b':' => {}
        _ => return false,
    }
    b[1..]
        .iter()
        .all(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
}

/// A label name in the classic character set `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_legacy_label_name(name: &str) -> bool {
    let b = name.as_bytes();
    match b.first() {
        Some(c) if c.is_ascii_alphabetic() || *c == b'_' => {}
        _ => return false,
    }
    b[1..]
        .iter()
        .all(|&c| c.is_ascii_alphanumeric() || c == b'_')
}

/// Checks a metric name for the client: classic names, or (Prometheus 3) any
/// non-empty UTF-8 string, which the encoders then quote.
pub(crate) fn check_metric_name(name: &str) -> crate::Result<()> {
    if name.is_empty() {
        return Err(crate::Error::InvalidName {
            what: "metric name",
            name: name.into(),
            reason: "is empty",
        });
    }
    Ok(())
}

/// Checks a label name for the client: non-empty, not `__`-prefixed
/// (reserved for the monitoring system).
pub(crate) fn check_label_name(name: &str) -> crate::Result<()> {
    let reason = if name.is_empty() {
        "is empty"
    } else if name.starts_with("__") {
        "names starting with __ are reserved"
    } else {
        return Ok(());
    };
    Err(crate::Error::InvalidName {
        what: "label name",
        name: name.into(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_names() {
        assert!(is_legacy_metric_name("a:b_c9"));
        assert!(is_legacy_metric_name("_x"));
        assert!(!is_legacy_metric_name("9a"));
        assert!(!is_legacy_metric_name("a.b"));
        assert!(!is_legacy_metric_name(""));
        assert!(is_legacy_label_name("le"));
        assert!(!is_legacy_label_name("a:b"));
        assert!(!is_legacy_label_name("é"));
        assert!(check_label_name("__name__").is_err());
        assert!(check_metric_name("").is_err());
    }
}
