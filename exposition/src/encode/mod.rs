//! The encoder: writes Prometheus text 0.0.4 or OpenMetrics 1.0.
//!
//! [`Encoder`] is the low-level writer that both the owned families
//! ([`encode_families`]) and the client's registry go through; it writes
//! straight into a byte buffer, so encoding a registry allocates nothing per
//! sample.

pub(crate) mod float;

use crate::Format;
use crate::model::{MetricFamily, MetricType};
use crate::names::{is_legacy_label_name, is_legacy_metric_name};

/// Writes one exposition into a `Vec<u8>`.
///
/// Call [`family`](Encoder::family) before each family's samples,
/// [`sample`](Encoder::sample) for each sample, and [`finish`](Encoder::finish)
/// at the end (it writes OpenMetrics's `# EOF`).
///
/// ```
/// use vigil_exposition::{encode::Encoder, Format, MetricType};
///
/// let mut out = Vec::new();
/// let mut enc = Encoder::new(&mut out, Format::Text);
/// enc.family("http_requests", MetricType::Counter, Some("Requests served."), None);
/// enc.sample("http_requests", "_total").label("code", "200").value_u64(7).finish();
/// enc.finish();
/// let text = String::from_utf8(out).unwrap();
/// let lines: Vec<&str> = text.lines().collect();
/// assert_eq!(lines, [
///     "# HELP http_requests_total Requests served.",
///     "# TYPE http_requests_total counter",
///     "http_requests_total{code=\"200\"} 7",
/// ]);
/// ```
pub struct Encoder<'o> {
    out: &'o mut Vec<u8>,
    format: Format,
}

impl<'o> Encoder<'o> {
    /// An encoder appending to `out`.
    pub fn new(out: &'o mut Vec<u8>, format: Format) -> Encoder<'o> {
        Encoder { out, format }
    }

    /// The format being written.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Writes a family's metadata lines.
    ///
    /// In OpenMetrics: `# TYPE`, `# UNIT` (when given), `# HELP` (when given),
    /// with the family name. In text 0.0.4 the metadata is written for the
    /// name the samples carry: a counter family `foo` gets `# TYPE foo_total
    /// counter` (as Prometheus's own encoders do since OpenMetrics), because a
    /// text parser matches metadata to sample names literally. Text 0.0.4 has
    /// no UNIT line.
    pub fn family(&mut self, name: &str, ty: MetricType, help: Option<&str>, unit: Option<&str>) {
        match self.format {
            Format::OpenMetrics => {
                self.meta_line(b"# TYPE ", name, "");
                self.out.extend_from_slice(ty.openmetrics_word().as_bytes());
                self.out.push(b'\n');
                if let Some(unit) = unit.filter(|u| !u.is_empty()) {
                    self.meta_line(b"# UNIT ", name, "");
                    self.out.extend_from_slice(unit.as_bytes());
                    self.out.push(b'\n');
                }
                if let Some(help) = help {
                    self.meta_line(b"# HELP ", name, "");
                    escape_into(self.out, help, true);
                    self.out.push(b'\n');
                }
            }
            Format::Text => {
                let suffix = if ty == MetricType::Counter && !name.ends_with("_total") {
                    "_total"
                } else {
                    ""
                };
                if let Some(help) = help {
                    self.meta_line(b"# HELP ", name, suffix);
                    escape_into(self.out, help, false);
                    self.out.push(b'\n');
                }
                self.meta_line(b"# TYPE ", name, suffix);
                self.out.extend_from_slice(ty.text_word().as_bytes());
                self.out.push(b'\n');
            }
        }
    }

    /// Writes a family's metadata lines with the name exactly as given, in
    /// either format (no `_total` added for text counters). For families
    /// that came from a parser, whose names already are what the format
    /// carries.
    pub fn family_verbatim(
        &mut self,
        name: &str,
        ty: MetricType,
        help: Option<&str>,
        unit: Option<&str>,
    ) {
        match self.format {
            Format::OpenMetrics => self.family(name, ty, help, unit),
            Format::Text => {
                if let Some(help) = help {
                    self.meta_line(b"# HELP ", name, "");
                    escape_into(self.out, help, false);
                    self.out.push(b'\n');
                }
                self.meta_line(b"# TYPE ", name, "");
                self.out.extend_from_slice(ty.text_word().as_bytes());
                self.out.push(b'\n');
            }
        }
    }

    fn meta_line(&mut self, head: &[u8], name: &str, suffix: &str) {
        self.out.extend_from_slice(head);
        if is_legacy_metric_name(name) && suffix.bytes().all(is_name_byte) {
            self.out.extend_from_slice(name.as_bytes());
            self.out.extend_from_slice(suffix.as_bytes());
        } else {
            self.out.push(b'"');
            escape_into(self.out, name, true);
            escape_into(self.out, suffix, true);
            self.out.push(b'"');
        }
        self.out.push(b' ');
    }

    /// Starts a sample line for `name` + `suffix` (`"_total"`, `"_bucket"`,
    /// or `""`). Add labels, then write the value, which ends the line.
    pub fn sample<'e>(&'e mut self, name: &str, suffix: &str) -> SampleWriter<'e, 'o> {
        let quoted = !(is_legacy_metric_name(name) && suffix.bytes().all(is_name_byte));
        if quoted {
            // UTF-8 name: `{"my.name"` and labels follow inside the braces.
            self.out.extend_from_slice(b"{\"");
            escape_into(self.out, name, true);
            escape_into(self.out, suffix, true);
            self.out.push(b'"');
        } else {
            self.out.extend_from_slice(name.as_bytes());
            self.out.extend_from_slice(suffix.as_bytes());
        }
        SampleWriter {
            enc: self,
            open: quoted,
            in_exemplar: false,
        }
    }

    /// Ends the exposition (OpenMetrics: `# EOF`; text: nothing).
    pub fn finish(self) {
        if self.format == Format::OpenMetrics {
            self.out.extend_from_slice(b"# EOF\n");
        }
    }
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b':'
}

/// The rest of one sample line: labels, value, timestamp, exemplar.
#[must_use = "a sample line is complete only once its value is written"]
pub struct SampleWriter<'e, 'o> {
    enc: &'e mut Encoder<'o>,
    /// A `{` was written and not yet closed.
    open: bool,
    in_exemplar: bool,
}

impl SampleWriter<'_, '_> {
    /// Adds a label.
    pub fn label(mut self, name: &str, value: &str) -> Self {
        self.push_label_name(name);
        escape_into(self.enc.out, value, true);
        self.enc.out.push(b'"');
        self
    }

    /// Adds labels from pairs.
    pub fn labels<N: AsRef<str>, V: AsRef<str>>(mut self, labels: &[(N, V)]) -> Self {
        for (n, v) in labels {
            self = self.label(n.as_ref(), v.as_ref());
        }
        self
    }

    /// Adds labels rendered beforehand: comma-separated `name="value"` pairs,
    /// names quoted and values escaped as [`label`](SampleWriter::label)
    /// writes them (the client renders each child's label set once, at
    /// creation). An empty slice adds nothing.
    pub(crate) fn labels_rendered(mut self, rendered: &[u8]) -> Self {
        if !rendered.is_empty() {
            self.enc.out.push(if self.open { b',' } else { b'{' });
            self.open = true;
            self.enc.out.extend_from_slice(rendered);
        }
        self
    }

    /// Adds a label whose value is a number (`le`, `quantile`), in the
    /// OpenMetrics canonical form (`1.0`, `+Inf`) in OpenMetrics and Go's form
    /// (`1`, `+Inf`) in text, as Prometheus's encoders write them.
    pub fn label_f64(mut self, name: &str, value: f64) -> Self {
        self.push_label_name(name);
        match self.enc.format {
            Format::OpenMetrics => float::write_float_om(self.enc.out, value),
            Format::Text => float::write_float(self.enc.out, value),
        }
        self.enc.out.push(b'"');
        self
    }

    fn push_label_name(&mut self, name: &str) {
        let out = &mut *self.enc.out;
        out.push(if self.open { b',' } else { b'{' });
        self.open = true;
        write_label_name(out, name);
        out.extend_from_slice(b"=\"");
    }

    fn close_labels(&mut self) {
        if self.open {
            self.enc.out.push(b'}');
            self.open = false;
        } else if self.in_exemplar {
            // An exemplar's label set is written even when empty.
            self.enc.out.extend_from_slice(b"{}");
        }
        self.enc.out.push(b' ');
    }

    /// Writes a float value. Ends the labels; add a timestamp or exemplar,
    /// then [`finish`](ValueWriter::finish).
    pub fn value(mut self, v: f64) -> ValueWriter<Self> {
        self.close_labels();
        match self.enc.format {
            Format::OpenMetrics => float::write_float_om(self.enc.out, v),
            Format::Text => float::write_float(self.enc.out, v),
        }
        ValueWriter(self)
    }

    /// Writes an integer value (counters and bucket counts kept as integers).
    pub fn value_u64(mut self, v: u64) -> ValueWriter<Self> {
        self.close_labels();
        float::write_u64(self.enc.out, v);
        ValueWriter(self)
    }

    /// Writes a value given in milliseconds as seconds (`1520430000.123`),
    /// with integer arithmetic: the client's `_created` samples.
    pub(crate) fn value_ms_as_seconds(mut self, ms: i64) -> ValueWriter<Self> {
        self.close_labels();
        float::write_ms_as_seconds(self.enc.out, ms);
        ValueWriter(self)
    }

    /// Writes a signed integer value.
    pub fn value_i64(mut self, v: i64) -> ValueWriter<Self> {
        self.close_labels();
        float::write_i64(self.enc.out, v);
        ValueWriter(self)
    }
}

/// A sample line whose value is written: optionally a timestamp and an
/// exemplar, then [`finish`](ValueWriter::finish).
#[must_use = "call finish() to end the line"]
pub struct ValueWriter<S>(S);

impl<'e, 'o> ValueWriter<SampleWriter<'e, 'o>> {
    /// Adds a timestamp (milliseconds since the epoch; written as
    /// milliseconds in text 0.0.4 and as seconds in OpenMetrics).
    pub fn timestamp_ms(mut self, ms: i64) -> Self {
        let w = &mut self.0;
        w.enc.out.push(b' ');
        match w.enc.format {
            Format::OpenMetrics => float::write_ms_as_seconds(w.enc.out, ms),
            Format::Text => float::write_i64(w.enc.out, ms),
        }
        self
    }

    /// Adds an exemplar (OpenMetrics only; ignored in text 0.0.4, which has
    /// no exemplars).
    pub fn exemplar<N: AsRef<str>, V: AsRef<str>>(
        mut self,
        labels: &[(N, V)],
        value: f64,
        timestamp_ms: Option<i64>,
    ) -> Self {
        let w = &mut self.0;
        if w.enc.format != Format::OpenMetrics {
            return self;
        }
        w.enc.out.extend_from_slice(b" # ");
        let mut sw = SampleWriter {
            enc: &mut *w.enc,
            open: false,
            in_exemplar: true,
        };
        for (n, v) in labels {
            sw = sw.label(n.as_ref(), v.as_ref());
        }
        let mut vw = sw.value(value);
        if let Some(ms) = timestamp_ms {
            vw = vw.timestamp_ms(ms);
        }
        // The inner writer wrote the exemplar; the line ending is ours.
        let _ = vw;
        self
    }

    /// Ends the line.
    pub fn finish(self) {
        self.0.enc.out.push(b'\n');
    }
}

/// Writes a label name, quoted and escaped when it is not a classic name.
pub(crate) fn write_label_name(out: &mut Vec<u8>, name: &str) {
    if is_legacy_label_name(name) {
        out.extend_from_slice(name.as_bytes());
    } else {
        out.push(b'"');
        escape_into(out, name, true);
        out.push(b'"');
    }
}

/// Escapes a label value or HELP text. Label values (and OpenMetrics HELP)
/// escape `\`, `"` and newline; text 0.0.4 HELP escapes only `\` and newline.
pub(crate) fn escape_into(out: &mut Vec<u8>, s: &str, quote: bool) {
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'"' if quote => b"\\\"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(esc);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Encodes owned families. OpenMetrics output ends with `# EOF`.
///
/// Names, label order and values are written as given (a family's name
/// verbatim, see [`Encoder::family_verbatim`]); in text 0.0.4 exemplars and
/// units are dropped and `_created` samples are kept as plain samples.
pub fn encode_families(families: &[MetricFamily], format: Format, out: &mut Vec<u8>) {
    let mut enc = Encoder::new(out, format);
    for fam in families {
        enc.family_verbatim(
            &fam.name,
            fam.metric_type,
            fam.help.as_deref(),
            fam.unit.as_deref(),
        );
        for s in &fam.samples {
            let (name, suffix) = (s.name.as_str(), "");
            let mut w = enc.sample(name, suffix).labels(&s.labels).value(s.value);
            if let Some(ms) = s.timestamp_ms {
                w = w.timestamp_ms(ms);
            }
            if let Some(ex) = &s.exemplar {
                w = w.exemplar(&ex.labels, ex.value, ex.timestamp_ms);
            }
            w.finish();
        }
    }
    enc.finish();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Exemplar, Sample};

    fn text(format: Format, f: impl FnOnce(&mut Encoder<'_>)) -> String {
        let mut out = Vec::new();
        let mut enc = Encoder::new(&mut out, format);
        f(&mut enc);
        enc.finish();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escapes_label_values_and_help() {
        let got = text(Format::Text, |e| {
            e.family("x", MetricType::Gauge, Some("a \\ b\nc \"q\""), None);
            e.sample("x", "")
                .label("v", "a\\b\"c\nd")
                .value(1.5)
                .finish();
        });
        assert_eq!(
            got,
            "# HELP x a \\\\ b\\nc \"q\"\n# TYPE x gauge\nx{v=\"a\\\\b\\\"c\\nd\"} 1.5\n"
        );
        let got = text(Format::OpenMetrics, |e| {
            e.family("x", MetricType::Gauge, Some("say \"hi\""), None);
        });
        assert_eq!(got, "# TYPE x gauge\n# HELP x say \\\"hi\\\"\n# EOF\n");
    }

    #[test]
    fn utf8_names_are_quoted() {
        let got = text(Format::Text, |e| {
            e.family("http.server.requests", MetricType::Counter, None, None);
            e.sample("http.server.requests", "_total")
                .label("a.b", "c")
                .value_u64(3)
                .finish();
        });
        assert_eq!(
            got,
            "# TYPE \"http.server.requests_total\" counter\n\
             {\"http.server.requests_total\",\"a.b\"=\"c\"} 3\n"
        );
    }

    #[test]
    fn openmetrics_timestamps_exemplars_and_eof() {
        let fam = MetricFamily {
            name: "foo".into(),
            metric_type: MetricType::Histogram,
            help: None,
            unit: None,
            samples: vec![
                Sample {
                    exemplar: Some(Exemplar {
                        labels: vec![("trace_id".into(), "abc".into())],
                        value: 0.67,
                        timestamp_ms: Some(1520879607789),
                    }),
                    ..Sample::new("foo_bucket", 11.0).label("le", "1.0")
                },
                Sample {
                    timestamp_ms: Some(1500),
                    ..Sample::new("foo_count", 11.0)
                },
            ],
        };
        let mut out = Vec::new();
        encode_families(std::slice::from_ref(&fam), Format::OpenMetrics, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "# TYPE foo histogram\n\
             foo_bucket{le=\"1.0\"} 11.0 # {trace_id=\"abc\"} 0.67 1520879607.789\n\
             foo_count 11.0 1.5\n# EOF\n"
        );
        let mut out = Vec::new();
        encode_families(&[fam], Format::Text, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "# TYPE foo histogram\nfoo_bucket{le=\"1.0\"} 11\nfoo_count 11 1500\n"
        );
    }

    #[test]
    fn empty_exemplar_labels_are_written_as_braces() {
        let got = text(Format::OpenMetrics, |e| {
            let empty: &[(&str, &str)] = &[];
            e.sample("a", "_total")
                .value_u64(1)
                .exemplar(empty, 0.5, None)
                .finish();
        });
        assert_eq!(got, "a_total 1 # {} 0.5\n# EOF\n");
    }
}
