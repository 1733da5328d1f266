//! The seam between the metric types and the two outputs: the [`Encoder`]
//! (what `/metrics` serves) and owned [`MetricFamily`] values
//! ([`Registry::gather`](super::Registry::gather)).
//!
//! Every metric writes its samples once, through [`MetricWriter`], whatever
//! the output; the writer adds the registry's constant labels and the
//! family's child labels. On the encoder side those labels are copied as
//! bytes rendered once (at registration and child creation), so a scrape
//! escapes nothing that did not change.

use super::exemplar::StoredExemplar;
use crate::Format;
use crate::encode::{Encoder, escape_into, float, write_label_name};
use crate::model::{Exemplar, MetricFamily, MetricType, Sample};

pub(crate) mod sealed {
    use super::{ChildLabels, Fam, MetricWriter};
    use crate::model::MetricType;

    /// How a metric writes itself. Sealed: only this crate's types are
    /// metrics; scrape-time metrics of your own are a
    /// [`Collector`](crate::client::Collector).
    pub trait EncodeMetric: Send + Sync + 'static {
        /// The family type.
        fn metric_type(&self) -> MetricType;

        /// Writes this metric's samples with `labels` (a family child's, or
        /// none) after the registry's constant labels.
        fn encode_child(&self, w: &mut MetricWriter<'_>, fam: &Fam<'_>, labels: &ChildLabels<'_>);

        /// Writes every sample of the family (a [`Family`] writes each child).
        ///
        /// [`Family`]: crate::client::Family
        fn encode(&self, w: &mut MetricWriter<'_>, fam: &Fam<'_>) {
            self.encode_child(w, fam, &ChildLabels::NONE);
        }

        /// A label name this type writes itself (`le`, `quantile`), which a
        /// family's label sets must not use.
        fn reserved_label(&self) -> Option<&'static str> {
            None
        }

        /// Checks what registration can check (label names).
        fn validate(&self) -> crate::Result<()> {
            Ok(())
        }
    }
}

/// A metric that can be registered: [`Counter`], [`Gauge`], [`Histogram`],
/// [`Summary`], [`Info`], [`StateSet`], and a [`Family`] of any of these.
///
/// The trait is sealed; for metrics computed when scraped, implement
/// [`Collector`](super::Collector) instead.
///
/// [`Counter`]: super::Counter
/// [`Gauge`]: super::Gauge
/// [`Histogram`]: super::Histogram
/// [`Summary`]: super::Summary
/// [`Info`]: super::Info
/// [`StateSet`]: super::StateSet
/// [`Family`]: super::Family
pub trait Metric: sealed::EncodeMetric {}

impl<T: sealed::EncodeMetric> Metric for T {}

/// Constant labels of a registry node: rendered for the encoder, and as
/// pairs for gathering.
#[derive(Debug, Clone, Default)]
pub(crate) struct ConstLabels {
    pub(crate) rendered: Vec<u8>,
    pub(crate) pairs: Vec<(String, String)>,
}

impl ConstLabels {
    pub(crate) fn push(&mut self, name: &str, value: &str) {
        render_label(&mut self.rendered, name, value);
        self.pairs.push((name.to_owned(), value.to_owned()));
    }
}

/// Appends `name="value"` (with a leading comma when `out` is not empty),
/// quoted and escaped exactly as the encoder writes a label.
pub(crate) fn render_label(out: &mut Vec<u8>, name: &str, value: &str) {
    if !out.is_empty() {
        out.push(b',');
    }
    write_label_name(out, name);
    out.extend_from_slice(b"=\"");
    escape_into(out, value, true);
    out.push(b'"');
}

/// The family being written: its full name and the registry's constant
/// labels.
pub struct Fam<'a> {
    pub(crate) name: &'a str,
    pub(crate) consts: &'a ConstLabels,
}

/// A visitor over label pairs (used only when gathering owned families).
pub(crate) type PairsFn<'a> = &'a dyn Fn(&mut dyn FnMut(&str, &str));

/// The labels of one child of a family.
pub struct ChildLabels<'a> {
    pub(crate) rendered: &'a [u8],
    pub(crate) pairs: Option<PairsFn<'a>>,
}

impl ChildLabels<'_> {
    pub(crate) const NONE: ChildLabels<'static> = ChildLabels {
        rendered: &[],
        pairs: None,
    };
}

/// A sample value.
#[derive(Debug, Clone, Copy)]
pub enum Value {
    /// An unsigned integer (counts).
    U64(u64),
    /// A signed integer (integer gauges).
    I64(i64),
    /// A float.
    F64(f64),
    /// Milliseconds since the epoch, written as seconds (`_created`).
    Millis(i64),
}

impl Value {
    pub(crate) fn as_f64(self) -> f64 {
        match self {
            Value::U64(v) => v as f64,
            Value::I64(v) => v as f64,
            Value::F64(v) => v,
            Value::Millis(ms) => ms as f64 / 1000.0,
        }
    }
}

/// A label a metric type adds after the child's labels.
#[derive(Clone, Copy)]
pub(crate) enum Extra<'a> {
    None,
    /// A numeric label (`le`, `quantile`), in canonical form.
    Number(&'static str, f64),
    /// A numeric label rendered beforehand for each format (a histogram's
    /// `le`): `name="value"` for text 0.0.4, then for OpenMetrics.
    NumberRendered(&'static str, f64, &'a [u8], &'a [u8]),
    /// A plain label (a stateset's state).
    Label(&'a str, &'a str),
    /// Several labels rendered beforehand, and the same as pairs (an info's).
    Rendered(&'a [u8], &'a [(String, String)]),
}

enum Sink<'a> {
    Encode(Encoder<'a>),
    Gather(&'a mut Vec<MetricFamily>),
}

/// Writes metric families to the encoder or to owned families.
pub struct MetricWriter<'a> {
    sink: Sink<'a>,
    /// Reused for names built at scrape time (`foo_info` in text).
    scratch: String,
}

impl<'a> MetricWriter<'a> {
    pub(crate) fn encoder(out: &'a mut Vec<u8>, format: Format) -> MetricWriter<'a> {
        MetricWriter::with(Sink::Encode(Encoder::new(out, format)))
    }

    pub(crate) fn gather(out: &'a mut Vec<MetricFamily>) -> MetricWriter<'a> {
        MetricWriter::with(Sink::Gather(out))
    }

    fn with(sink: Sink<'a>) -> MetricWriter<'a> {
        MetricWriter {
            sink,
            scratch: String::new(),
        }
    }

    /// Ends the output (OpenMetrics: `# EOF`).
    pub(crate) fn finish(self) {
        if let Sink::Encode(enc) = self.sink {
            enc.finish();
        }
    }

    /// Whether `_created` samples are written: in OpenMetrics and in
    /// gathered families, not in text 0.0.4 (which has no such samples).
    pub(crate) fn wants_created(&self) -> bool {
        self.openmetrics_rules()
    }

    /// Whether OpenMetrics's semantic rules apply to what is written (in
    /// OpenMetrics and in gathered families, which follow its model).
    pub(crate) fn openmetrics_rules(&self) -> bool {
        match &self.sink {
            Sink::Encode(enc) => enc.format() == Format::OpenMetrics,
            Sink::Gather(_) => true,
        }
    }

    /// Writes a family's metadata (or starts an owned family).
    pub(crate) fn begin_family(
        &mut self,
        name: &str,
        ty: MetricType,
        help: Option<&str>,
        unit: Option<&str>,
    ) {
        match &mut self.sink {
            Sink::Encode(enc) => {
                if enc.format() == Format::Text && ty == MetricType::Info {
                    // Text 0.0.4 has no info type: the samples are a gauge
                    // named `foo_info`, and the metadata must carry that name.
                    self.scratch.clear();
                    self.scratch.push_str(name);
                    self.scratch.push_str("_info");
                    enc.family(&self.scratch, ty, help, unit);
                } else {
                    enc.family(name, ty, help, unit);
                }
            }
            Sink::Gather(out) => {
                let mut fam = MetricFamily::new(name, ty);
                fam.help = help.map(str::to_owned);
                fam.unit = unit.filter(|u| !u.is_empty()).map(str::to_owned);
                out.push(fam);
            }
        }
    }

    /// Writes one sample of a registered metric: `fam.name` + `suffix`,
    /// constant labels, child labels, the extra label, the value.
    pub(crate) fn sample(
        &mut self,
        fam: &Fam<'_>,
        suffix: &str,
        child: &ChildLabels<'_>,
        extra: Extra<'_>,
        value: Value,
    ) {
        self.sample_ex(fam, suffix, child, extra, value, None);
    }

    /// As [`sample`](MetricWriter::sample), with the sample's exemplar
    /// (written in OpenMetrics and gathered; text 0.0.4 has none).
    pub(crate) fn sample_ex(
        &mut self,
        fam: &Fam<'_>,
        suffix: &str,
        child: &ChildLabels<'_>,
        extra: Extra<'_>,
        value: Value,
        exemplar: Option<&StoredExemplar>,
    ) {
        match &mut self.sink {
            Sink::Encode(enc) => {
                let enc_format = enc.format();
                let sw = enc
                    .sample(fam.name, suffix)
                    .labels_rendered(&fam.consts.rendered)
                    .labels_rendered(child.rendered);
                let sw = match extra {
                    Extra::None => sw,
                    Extra::Number(name, v) => sw.label_f64(name, v),
                    Extra::Label(name, v) => sw.label(name, v),
                    Extra::Rendered(bytes, _) => sw.labels_rendered(bytes),
                    Extra::NumberRendered(_, _, text, om) => match enc_format {
                        Format::Text => sw.labels_rendered(text),
                        Format::OpenMetrics => sw.labels_rendered(om),
                    },
                };
                let vw = match value {
                    Value::U64(v) => sw.value_u64(v),
                    Value::I64(v) => sw.value_i64(v),
                    Value::F64(v) => sw.value(v),
                    Value::Millis(ms) => sw.value_ms_as_seconds(ms),
                };
                match exemplar {
                    Some(ex) => vw.exemplar(&ex.labels, ex.value, Some(ex.timestamp_ms)),
                    None => vw,
                }
                .finish();
            }
            Sink::Gather(out) => {
                let mut labels = fam.consts.pairs.clone();
                if let Some(pairs) = child.pairs {
                    pairs(&mut |n, v| labels.push((n.to_owned(), v.to_owned())));
                }
                match extra {
                    Extra::None => {}
                    Extra::Number(name, v) | Extra::NumberRendered(name, v, _, _) => {
                        let mut buf = Vec::new();
                        float::write_float_om(&mut buf, v);
                        labels.push((name.to_owned(), String::from_utf8_lossy(&buf).into_owned()));
                    }
                    Extra::Label(name, v) => labels.push((name.to_owned(), v.to_owned())),
                    Extra::Rendered(_, pairs) => labels.extend_from_slice(pairs),
                }
                push_sample(out, fam.name, suffix, labels, value.as_f64(), None);
                if let (Some(ex), Some(sample)) =
                    (exemplar, out.last_mut().and_then(|f| f.samples.last_mut()))
                {
                    sample.exemplar = Some(Exemplar {
                        labels: ex.labels.clone(),
                        value: ex.value,
                        timestamp_ms: Some(ex.timestamp_ms),
                    });
                }
            }
        }
    }

    /// Writes one sample given as label pairs (collectors).
    pub(crate) fn sample_pairs<N: AsRef<str>, V: AsRef<str>>(
        &mut self,
        fam: &Fam<'_>,
        suffix: &str,
        labels: &[(N, V)],
        value: f64,
        timestamp_ms: Option<i64>,
    ) {
        match &mut self.sink {
            Sink::Encode(enc) => {
                let mut w = enc
                    .sample(fam.name, suffix)
                    .labels_rendered(&fam.consts.rendered)
                    .labels(labels)
                    .value(value);
                if let Some(ms) = timestamp_ms {
                    w = w.timestamp_ms(ms);
                }
                w.finish();
            }
            Sink::Gather(out) => {
                let mut all = fam.consts.pairs.clone();
                all.extend(
                    labels
                        .iter()
                        .map(|(n, v)| (n.as_ref().to_owned(), v.as_ref().to_owned())),
                );
                push_sample(out, fam.name, suffix, all, value, timestamp_ms);
            }
        }
    }
}

fn push_sample(
    out: &mut [MetricFamily],
    name: &str,
    suffix: &str,
    labels: Vec<(String, String)>,
    value: f64,
    timestamp_ms: Option<i64>,
) {
    let mut full = String::with_capacity(name.len() + suffix.len());
    full.push_str(name);
    full.push_str(suffix);
    if let Some(fam) = out.last_mut() {
        fam.samples.push(Sample {
            name: full,
            labels,
            value,
            timestamp_ms,
            exemplar: None,
        });
    }
}

/// Milliseconds since the Unix epoch of `t`, for `_created` (negative
/// before the epoch).
pub(crate) fn unix_millis(t: std::time::SystemTime) -> i64 {
    match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

/// Writes the `_created` sample when the output wants it.
pub(crate) fn write_created(
    w: &mut MetricWriter<'_>,
    fam: &Fam<'_>,
    labels: &ChildLabels<'_>,
    created_ms: i64,
) {
    if w.wants_created() {
        w.sample(
            fam,
            "_created",
            labels,
            Extra::None,
            Value::Millis(created_ms),
        );
    }
}
