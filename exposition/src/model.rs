//! The owned data model: metric families of samples, as both formats carry
//! them. The parser groups into it, the encoder writes it.

use std::fmt;

/// The type of a metric family. Prometheus text 0.0.4 calls [`Unknown`]
/// "untyped"; both spellings are read.
///
/// [`Unknown`]: MetricType::Unknown
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MetricType {
    /// A monotonically non-decreasing total (`_total`, `_created`).
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// Cumulative buckets (`_bucket` with `le`), `_count`, `_sum`, `_created`.
    Histogram,
    /// OpenMetrics: a histogram of current values (`_bucket`, `_gcount`, `_gsum`).
    GaugeHistogram,
    /// Quantiles (`quantile` label), `_count`, `_sum`, `_created`.
    Summary,
    /// OpenMetrics: textual information as labels of a `_info` sample valued 1.
    Info,
    /// OpenMetrics: a set of booleans, one sample per state.
    StateSet,
    /// No type given ("untyped" in text 0.0.4, "unknown" in OpenMetrics).
    #[default]
    Unknown,
}

impl MetricType {
    /// Reads a `# TYPE` word. `untyped` and `unknown` both give [`MetricType::Unknown`].
    pub fn from_word(word: &str) -> Option<MetricType> {
        Some(match word {
            "counter" => MetricType::Counter,
            "gauge" => MetricType::Gauge,
            "histogram" => MetricType::Histogram,
            "gaugehistogram" => MetricType::GaugeHistogram,
            "summary" => MetricType::Summary,
            "info" => MetricType::Info,
            "stateset" => MetricType::StateSet,
            "unknown" | "untyped" => MetricType::Unknown,
            _ => return None,
        })
    }

    /// The OpenMetrics `# TYPE` word.
    pub fn openmetrics_word(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Summary => "summary",
            MetricType::Info => "info",
            MetricType::StateSet => "stateset",
            MetricType::Unknown => "unknown",
        }
    }

    /// The text 0.0.4 `# TYPE` word. That format has only counter, gauge,
    /// histogram, summary and untyped; the OpenMetrics-only types are written
    /// the way Prometheus's own encoders map them (gaugehistogram as
    /// histogram, info and stateset as gauge).
    pub fn text_word(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge | MetricType::Info | MetricType::StateSet => "gauge",
            MetricType::Histogram | MetricType::GaugeHistogram => "histogram",
            MetricType::Summary => "summary",
            MetricType::Unknown => "untyped",
        }
    }

    /// The sample-name suffixes this type's samples may carry in
    /// OpenMetrics, `""` meaning the bare family name.
    pub fn suffixes(self) -> &'static [&'static str] {
        match self {
            MetricType::Counter => &["_total", "_created"],
            MetricType::Gauge | MetricType::StateSet | MetricType::Unknown => &[""],
            MetricType::Histogram => &["_bucket", "_count", "_sum", "_created"],
            MetricType::GaugeHistogram => &["_bucket", "_gcount", "_gsum"],
            MetricType::Summary => &["", "_count", "_sum", "_created"],
            MetricType::Info => &["_info"],
        }
    }
}

impl fmt::Display for MetricType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.openmetrics_word())
    }
}

/// A label: name and (unescaped) value.
pub type Label = (String, String);

/// An exemplar attached to a sample (OpenMetrics).
#[derive(Debug, Clone, PartialEq)]
pub struct Exemplar {
    /// The exemplar's own labels, usually a trace id.
    pub labels: Vec<Label>,
    /// The observed value.
    pub value: f64,
    /// When it was observed, in milliseconds since the Unix epoch.
    pub timestamp_ms: Option<i64>,
}

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The full sample name, suffix included (`http_requests_total`).
    pub name: String,
    /// Labels in exposition order, values unescaped.
    pub labels: Vec<Label>,
    /// The value (`NaN`, `±Inf` included).
    pub value: f64,
    /// Milliseconds since the Unix epoch. OpenMetrics writes seconds; they are
    /// converted (sub-millisecond digits are dropped, as Prometheus does).
    pub timestamp_ms: Option<i64>,
    /// OpenMetrics exemplar, if any.
    pub exemplar: Option<Exemplar>,
}

impl Sample {
    /// A sample with no labels, timestamp or exemplar.
    pub fn new(name: impl Into<String>, value: f64) -> Sample {
        Sample {
            name: name.into(),
            labels: Vec::new(),
            value,
            timestamp_ms: None,
            exemplar: None,
        }
    }

    /// Adds a label (builder style).
    pub fn label(mut self, name: impl Into<String>, value: impl Into<String>) -> Sample {
        self.labels.push((name.into(), value.into()));
        self
    }

    /// The value of label `name`, if present.
    pub fn get_label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A metric family: metadata and its samples in exposition order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MetricFamily {
    /// The family name (without type suffixes).
    pub name: String,
    /// The type; [`MetricType::Unknown`] when no `# TYPE` was given.
    pub metric_type: MetricType,
    /// `# HELP` text, unescaped. `None` when absent (an empty HELP in
    /// OpenMetrics counts as absent, per the specification).
    pub help: Option<String>,
    /// `# UNIT` (OpenMetrics). `None` when absent or empty.
    pub unit: Option<String>,
    /// The samples.
    pub samples: Vec<Sample>,
}

impl MetricFamily {
    /// An empty family.
    pub fn new(name: impl Into<String>, metric_type: MetricType) -> MetricFamily {
        MetricFamily {
            name: name.into(),
            metric_type,
            ..MetricFamily::default()
        }
    }
}

/// The staleness marker Prometheus writes into a series that disappeared: a
/// NaN with this exact bit pattern.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;
