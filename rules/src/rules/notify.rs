//! Handing alerts to Alertmanager: the API v2 payload
//! (`POST /api/v2/alerts`, a JSON array of `postableAlert`) and the
//! [`Notifier`] seam the monitor implements with its HTTP client.

use std::collections::BTreeMap;

use serde::Serialize;

use super::alerting::{Alert, AlertState};

/// One `postableAlert` of Alertmanager's API v2.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PostableAlert {
    /// The alert's identifying labels.
    pub labels: BTreeMap<String, String>,
    /// Its annotations.
    pub annotations: BTreeMap<String, String>,
    /// RFC 3339 time it started firing.
    pub starts_at: String,
    /// RFC 3339 time it ends: when it resolved, or until when it is valid
    /// without a further update.
    pub ends_at: String,
    /// A link to the expression in the Prometheus-compatible UI.
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
}

impl PostableAlert {
    pub(crate) fn from_alert(a: &Alert, generator_url: &str) -> PostableAlert {
        let ends = match (a.state, a.resolved_at) {
            (AlertState::Inactive, Some(r)) => r,
            _ => a.valid_until,
        };
        PostableAlert {
            labels: a
                .labels
                .iter()
                .map(|l| (l.name.clone(), l.value.clone()))
                .collect(),
            annotations: a.annotations.iter().cloned().collect(),
            starts_at: rfc3339(a.fired_at.unwrap_or(a.active_at)),
            ends_at: rfc3339(ends),
            generator_url: generator_url.to_string(),
        }
    }
}

/// Where alerts go (the monitor POSTs them to Alertmanager).
pub trait Notifier {
    /// Hands over alerts that need sending now.
    fn notify(&self, alerts: &[PostableAlert]);
}

/// Go's RFC 3339 with nanoseconds, trailing zeros trimmed, in UTC
/// (`1970-01-01T00:01:00.5Z`), from milliseconds.
pub fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let milli = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let frac = if milli == 0 {
        String::new()
    } else {
        format!(".{milli:03}").trim_end_matches('0').to_string()
    };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}{frac}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

/// Go's `url.QueryEscape`.
pub(crate) fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn times() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_500), "1970-01-01T00:00:01.5Z");
        assert_eq!(rfc3339(1_764_000_000_000), "2025-11-24T16:00:00Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999Z");
    }
}
