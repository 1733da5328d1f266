//! Content negotiation: which format to answer a scrape with, and which
//! parser a response's `Content-Type` calls for.

use crate::Format;

impl Format {
    /// The `Content-Type` to send with this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }

    /// The format a response's `Content-Type` names. OpenMetrics for
    /// `application/openmetrics-text` (any version); text 0.0.4 for
    /// everything else, including a missing or unknown type, as Prometheus
    /// falls back.
    pub fn from_content_type(content_type: &str) -> Format {
        let media = content_type.split(';').next().unwrap_or("").trim();
        if media.eq_ignore_ascii_case("application/openmetrics-text") {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }

    /// The format to answer a request with, from its `Accept` header
    /// (`None` when absent): OpenMetrics when the client prefers
    /// `application/openmetrics-text` with version 1.0.0 (or with none, or the
    /// 0.0.1 draft Prometheus 2.x also asks for) by q-value, text otherwise.
    /// Ties go to OpenMetrics, which carries more (units, exemplars,
    /// `_created`).
    ///
    /// ```
    /// use vigil_exposition::Format;
    /// let prom = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;\
    ///             version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    /// assert_eq!(Format::negotiate(Some(prom)), Format::OpenMetrics);
    /// assert_eq!(Format::negotiate(Some("text/plain")), Format::Text);
    /// assert_eq!(Format::negotiate(None), Format::Text);
    /// ```
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Text;
        };
        let (mut best_om, mut best_text) = (-1.0f32, -1.0f32);
        for range in accept.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim();
            let mut q = 1.0f32;
            let mut version: Option<&str> = None;
            for p in parts {
                let Some((k, v)) = p.split_once('=') else {
                    continue;
                };
                let (k, v) = (k.trim(), v.trim().trim_matches('"'));
                if k.eq_ignore_ascii_case("q") {
                    q = v.parse().unwrap_or(0.0);
                } else if k.eq_ignore_ascii_case("version") {
                    version = Some(v);
                }
            }
            if q <= 0.0 {
                continue;
            }
            if media.eq_ignore_ascii_case("application/openmetrics-text") {
                if matches!(version, None | Some("1.0.0") | Some("0.0.1")) {
                    best_om = best_om.max(q);
                }
            } else if media.eq_ignore_ascii_case("text/plain")
                || media == "*/*"
                || media.eq_ignore_ascii_case("text/*")
            {
                best_text = best_text.max(q);
            }
        }
        if best_om >= 0.0 && best_om >= best_text {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation() {
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text")),
            Format::OpenMetrics
        );
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text;version=2.0.0")),
            Format::Text
        );
        assert_eq!(
            Format::negotiate(Some("text/plain;q=0.9, application/openmetrics-text;q=0.5")),
            Format::Text
        );
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text;q=0")),
            Format::Text
        );
        assert_eq!(Format::negotiate(Some("*/*")), Format::Text);
        assert_eq!(Format::negotiate(Some("")), Format::Text);
    }

    #[test]
    fn content_types() {
        for f in [Format::Text, Format::OpenMetrics] {
            assert_eq!(Format::from_content_type(f.content_type()), f);
        }
        assert_eq!(Format::from_content_type(""), Format::Text);
        assert_eq!(
            Format::from_content_type("Application/OpenMetrics-Text; version=1.0.0"),
            Format::OpenMetrics
        );
    }
}
