//! Grouping parsed entries into owned metric families.

use super::{Entry, Mode, Parser, Sample as RawSample};
use crate::Format;
use crate::error::Result;
use crate::model::{Exemplar, MetricFamily, MetricType, Sample};

/// Parses a whole exposition into owned families, in input order.
///
/// Samples join the family whose name they carry (with one of the type's
/// suffixes: `_bucket`, `_count`, `_sum`, `_total`, `_created`, ...); a sample
/// that fits no open family starts an untyped one named after it, as
/// Prometheus does. In OpenMetrics an empty `# HELP` or `# UNIT` counts as
/// absent.
///
/// ```
/// use vigil_exposition::{parse::{parse_families, Mode}, Format, MetricType};
///
/// let om = "# TYPE rpc_seconds histogram\n# UNIT rpc_seconds seconds\n\
///           rpc_seconds_bucket{le=\"0.1\"} 3\nrpc_seconds_bucket{le=\"+Inf\"} 5\n\
///           rpc_seconds_count 5\nrpc_seconds_sum 1.25\n# EOF\n";
/// let fams = parse_families(om.as_bytes(), Format::OpenMetrics, Mode::Strict)?;
/// assert_eq!(fams.len(), 1);
/// assert_eq!(fams[0].metric_type, MetricType::Histogram);
/// assert_eq!(fams[0].unit.as_deref(), Some("seconds"));
/// assert_eq!(fams[0].samples.len(), 4);
/// # Ok::<(), vigil_exposition::Error>(())
/// ```
pub fn parse_families(input: &[u8], format: Format, mode: Mode) -> Result<Vec<MetricFamily>> {
    let om = format == Format::OpenMetrics;
    let mut out: Vec<MetricFamily> = Vec::new();
    // What the last family has received: samples, and which metadata lines
    // (metadata after samples, or a second line of a kind, starts a new
    // family of the same name).
    let mut seen = Seen::default();
    for entry in Parser::with_mode(input, format, mode) {
        match entry? {
            Entry::Help { name, text } => {
                let fam = meta_family(&mut out, &name.as_cow(), &mut seen, Kind::Help);
                let text = text.as_cow().into_owned();
                fam.help = if om && text.is_empty() {
                    None
                } else {
                    Some(text)
                };
            }
            Entry::Type { name, metric_type } => {
                meta_family(&mut out, &name.as_cow(), &mut seen, Kind::Type).metric_type =
                    metric_type;
            }
            Entry::Unit { name, unit } => {
                let fam = meta_family(&mut out, &name.as_cow(), &mut seen, Kind::Unit);
                fam.unit = (!unit.is_empty()).then(|| unit.to_owned());
            }
            Entry::Comment(_) | Entry::Eof => {}
            Entry::Sample(s) => {
                let name = s.name.as_cow();
                let fits = out.last().is_some_and(|f| belongs(f, &name, om));
                if !fits {
                    out.push(MetricFamily::new(name.as_ref(), MetricType::Unknown));
                }
                seen.samples = true;
                if let Some(fam) = out.last_mut() {
                    fam.samples.push(to_owned(&s));
                }
            }
        }
    }
    Ok(out)
}

#[derive(Default)]
struct Seen {
    samples: bool,
    help: bool,
    type_: bool,
    unit: bool,
}

#[derive(Clone, Copy)]
enum Kind {
    Help,
    Type,
    Unit,
}

fn meta_family<'f>(
    out: &'f mut Vec<MetricFamily>,
    name: &str,
    seen: &mut Seen,
    kind: Kind,
) -> &'f mut MetricFamily {
    let again = match kind {
        Kind::Help => seen.help,
        Kind::Type => seen.type_,
        Kind::Unit => seen.unit,
    };
    let reuse = !seen.samples && !again && out.last().is_some_and(|f| f.name == name);
    if !reuse {
        out.push(MetricFamily::new(name, MetricType::Unknown));
        *seen = Seen::default();
    }
    match kind {
        Kind::Help => seen.help = true,
        Kind::Type => seen.type_ = true,
        Kind::Unit => seen.unit = true,
    }
    let last = out.len() - 1;
    &mut out[last]
}

/// Whether a sample named `name` belongs to family `f`.
fn belongs(f: &MetricFamily, name: &str, om: bool) -> bool {
    let Some(suffix) = name.strip_prefix(f.name.as_str()) else {
        return false;
    };
    if suffix.is_empty() {
        // Bare name: always fine in text; in OpenMetrics only for the types
        // whose samples carry it.
        return !om || f.metric_type.suffixes().contains(&"");
    }
    let allowed: &[&str] = if om {
        f.metric_type.suffixes()
    } else {
        match f.metric_type {
            MetricType::Histogram | MetricType::GaugeHistogram => {
                &["_bucket", "_count", "_sum", "_created"]
            }
            MetricType::Summary => &["_count", "_sum", "_created"],
            MetricType::Counter => &["_total", "_created"],
            _ => &[],
        }
    };
    allowed.contains(&suffix)
}

fn to_owned(s: &RawSample<'_>) -> Sample {
    Sample {
        name: s.name.as_cow().into_owned(),
        labels: s
            .labels
            .iter()
            .map(|(n, v)| (n.as_cow().into_owned(), v.as_cow().into_owned()))
            .collect(),
        value: s.value,
        timestamp_ms: s.timestamp_ms,
        exemplar: s.exemplar.map(|e| Exemplar {
            labels: e
                .labels
                .iter()
                .map(|(n, v)| (n.as_cow().into_owned(), v.as_cow().into_owned()))
                .collect(),
            value: e.value,
            timestamp_ms: e.timestamp_ms,
        }),
    }
}
