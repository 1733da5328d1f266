//! Pushed metrics in the Pushgateway's own data model (client_golang's
//! `dto.MetricFamily`): a family's name is the full sample name of its simple
//! samples (a counter is `x_total`, not `x`), a histogram or summary is one
//! metric per label set holding its buckets or quantiles, count and sum.
//!
//! Design note: pushed bodies are grouped the way the Pushgateway 1.5's text
//! parser (Go's `expfmt.TextParser`) groups them, not the way Prometheus's
//! scrape parser does, because what is stored, exposed and checked for
//! consistency depends on it: a `# TYPE x counter` followed by `x_total 1`
//! is an untyped `x_total` there. Errors are split into parse errors (the
//! push is refused, nothing is recorded) and consistency errors (refused, and
//! the group's `push_failure_time_seconds` is set), as 1.5 splits them.

use std::collections::BTreeMap;

use vigil_exposition::parse::{Entry, Mode, Parser, parse_families};
use vigil_exposition::{Format, MetricFamily, MetricType, Sample, is_legacy_label_name};

/// The types of the Go data model (no OpenMetrics-only types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `counter`.
    Counter,
    /// `gauge`.
    Gauge,
    /// `untyped`.
    Untyped,
    /// `histogram`.
    Histogram,
    /// `summary`.
    Summary,
}

impl Kind {
    /// The upper-case name the JSON API and Go's error messages use.
    pub fn upper(self) -> &'static str {
        match self {
            Kind::Counter => "COUNTER",
            Kind::Gauge => "GAUGE",
            Kind::Untyped => "UNTYPED",
            Kind::Histogram => "HISTOGRAM",
            Kind::Summary => "SUMMARY",
        }
    }

    fn metric_type(self) -> MetricType {
        match self {
            Kind::Counter => MetricType::Counter,
            Kind::Gauge => MetricType::Gauge,
            Kind::Untyped => MetricType::Unknown,
            Kind::Histogram => MetricType::Histogram,
            Kind::Summary => MetricType::Summary,
        }
    }
}

/// A metric's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Counter, gauge or untyped.
    Simple(f64),
    /// Cumulative buckets `(le, count)` in input order, count and sum.
    Histogram {
        /// `(upper bound, cumulative count)`.
        buckets: Vec<(f64, f64)>,
        /// `_count`.
        count: f64,
        /// `_sum`.
        sum: f64,
    },
    /// Quantiles `(quantile, value)`, count and sum.
    Summary {
        /// `(quantile, value)`.
        quantiles: Vec<(f64, f64)>,
        /// `_count`.
        count: f64,
        /// `_sum`.
        sum: f64,
    },
}

/// One metric: a label set (sorted by name) and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// Labels sorted by name (without `le` or `quantile`).
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: Value,
    /// A pushed timestamp (which the consistency check refuses).
    pub timestamp_ms: Option<i64>,
}

/// A family of metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    /// The name (the full sample name for simple types).
    pub name: String,
    /// The type.
    pub kind: Kind,
    /// `# HELP` text; `None` when absent.
    pub help: Option<String>,
    /// The metrics, in input order.
    pub metrics: Vec<Metric>,
}

/// Parses a pushed body. `openmetrics` selects the OpenMetrics 1.0 parser
/// (for `Content-Type: application/openmetrics-text`); otherwise it is text
/// 0.0.4. Families without metrics are dropped (Go's gatherer drops them).
pub fn parse_body(body: &[u8], openmetrics: bool) -> Result<Vec<Family>, String> {
    if !openmetrics {
        return parse_text(body);
    }
    // OpenMetrics: parse, then restate in the Go model's names and re-read
    // as text, so that both paths share one grouping and one set of checks.
    // 1.5 reads every body as text; a body labelled OpenMetrics that is not
    // valid OpenMetrics (no `# EOF`, say) is read as text too, so that what
    // 1.5 accepts is accepted here.
    let fams = match parse_families(body, Format::OpenMetrics, Mode::Scrape) {
        Ok(f) => f,
        Err(om) => {
            return parse_text(body).map_err(|text| format!("{text} (as OpenMetrics: {om})"));
        }
    };
    let mut restated = Vec::with_capacity(fams.len());
    for mut f in fams {
        f.samples.retain(|s| !s.name.ends_with("_created"));
        for s in &mut f.samples {
            s.exemplar = None;
        }
        f.unit = None;
        match f.metric_type {
            MetricType::Counter => f.name.push_str("_total"),
            MetricType::Info => {
                f.name.push_str("_info");
                f.metric_type = MetricType::Gauge;
            }
            MetricType::StateSet => f.metric_type = MetricType::Gauge,
            MetricType::GaugeHistogram => {
                return Err(format!(
                    "metric family {:?}: gaugehistogram is not supported by the Pushgateway",
                    f.name
                ));
            }
            _ => {}
        }
        restated.push(f);
    }
    let mut text = Vec::new();
    vigil_exposition::encode::encode_families(&restated, Format::Text, &mut text);
    parse_text(&text)
}

/// Text 0.0.4, grouped as Go's `expfmt.TextParser` groups it.
fn parse_text(body: &[u8]) -> Result<Vec<Family>, String> {
    // Go's parser wants every line ended, the last one too.
    if !body.is_empty() && !body.ends_with(b"\n") {
        let line = body.iter().filter(|&&b| b == b'\n').count() + 1;
        return Err(format!(
            "text format parsing error in line {line}: unexpected end of input stream"
        ));
    }
    let mut fams: Vec<Family> = Vec::new();
    let mut by_name: BTreeMap<String, usize> = BTreeMap::new();
    // Which families got a HELP or TYPE line already.
    let mut helped: Vec<bool> = Vec::new();
    let mut typed: Vec<bool> = Vec::new();
    fn get(
        fams: &mut Vec<Family>,
        by_name: &mut BTreeMap<String, usize>,
        helped: &mut Vec<bool>,
        typed: &mut Vec<bool>,
        name: &str,
    ) -> usize {
        *by_name.entry(name.to_owned()).or_insert_with(|| {
            fams.push(Family {
                name: name.to_owned(),
                kind: Kind::Untyped,
                help: None,
                metrics: Vec::new(),
            });
            helped.push(false);
            typed.push(false);
            fams.len() - 1
        })
    }
    for entry in Parser::with_mode(body, Format::Text, Mode::Scrape) {
        let entry = entry.map_err(|e| format!("text format parsing error in {e}"))?;
        match entry {
            Entry::Help { name, text } => {
                let name = name.as_cow();
                check_metric_name(&name)?;
                let i = get(&mut fams, &mut by_name, &mut helped, &mut typed, &name);
                if helped[i] {
                    return Err(format!("second HELP line for metric name {name:?}"));
                }
                helped[i] = true;
                fams[i].help = Some(text.as_cow().into_owned());
            }
            Entry::Type { name, metric_type } => {
                let name = name.as_cow();
                check_metric_name(&name)?;
                let i = get(&mut fams, &mut by_name, &mut helped, &mut typed, &name);
                if typed[i] || !fams[i].metrics.is_empty() {
                    return Err(format!(
                        "second TYPE line for metric name {name:?}, or TYPE reported after samples"
                    ));
                }
                typed[i] = true;
                fams[i].kind = match metric_type {
                    MetricType::Counter => Kind::Counter,
                    MetricType::Gauge => Kind::Gauge,
                    MetricType::Histogram => Kind::Histogram,
                    MetricType::Summary => Kind::Summary,
                    MetricType::Unknown => Kind::Untyped,
                    other => return Err(format!("unknown metric type {other:?} for {name:?}")),
                };
            }
            Entry::Unit { .. } | Entry::Comment(_) | Entry::Eof => {}
            Entry::Sample(s) => {
                let name = s.name.as_cow();
                check_metric_name(&name)?;
                let mut labels: Vec<(String, String)> = Vec::with_capacity(s.labels.len());
                for (n, v) in s.labels.iter() {
                    let n = n.as_cow();
                    if !is_legacy_label_name(&n) {
                        return Err(format!("invalid label name {n:?} for metric {name:?}"));
                    }
                    if labels.iter().any(|(have, _)| *have == *n) {
                        return Err(format!("duplicate label names for metric {name:?}"));
                    }
                    labels.push((n.into_owned(), v.as_cow().into_owned()));
                }
                // A `_sum`/`_count`/`_bucket` joins its summary or histogram
                // only when no family has the sample's own name.
                let i = match by_name.get(name.as_ref()) {
                    Some(&i) => i,
                    None => match parent(&fams, &by_name, &name) {
                        Some(i) => i,
                        None => get(&mut fams, &mut by_name, &mut helped, &mut typed, &name),
                    },
                };
                add_sample(&mut fams[i], &name, labels, s.value, s.timestamp_ms)?;
            }
        }
    }
    fams.retain(|f| !f.metrics.is_empty());
    Ok(fams)
}

fn check_metric_name(name: &str) -> Result<(), String> {
    if vigil_exposition::is_legacy_metric_name(name) {
        Ok(())
    } else {
        Err(format!("invalid metric name {name:?}"))
    }
}

/// The summary or histogram family a suffixed sample belongs to.
fn parent(fams: &[Family], by_name: &BTreeMap<String, usize>, name: &str) -> Option<usize> {
    for (suffix, kinds) in [
        ("_sum", &[Kind::Summary, Kind::Histogram][..]),
        ("_count", &[Kind::Summary, Kind::Histogram][..]),
        ("_bucket", &[Kind::Histogram][..]),
    ] {
        if let Some(base) = name.strip_suffix(suffix) {
            if let Some(&i) = by_name.get(base) {
                if kinds.contains(&fams[i].kind) {
                    return Some(i);
                }
            }
        }
    }
    None
}

fn take_label(labels: &mut Vec<(String, String)>, name: &str) -> Option<String> {
    let pos = labels.iter().position(|(n, _)| n == name)?;
    Some(labels.remove(pos).1)
}

fn parse_bound(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

fn add_sample(
    fam: &mut Family,
    name: &str,
    mut labels: Vec<(String, String)>,
    value: f64,
    timestamp_ms: Option<i64>,
) -> Result<(), String> {
    let suffix = &name[fam.name.len().min(name.len())..];
    let (kind, fam_name) = (fam.kind, fam.name.clone());
    let mut bound = None;
    match (kind, suffix) {
        // Without its `le` or `quantile` label a bucket or quantile line
        // still makes the metric exist but records nothing, as in Go's
        // parser.
        (Kind::Histogram, "_bucket") => {
            if let Some(le) = take_label(&mut labels, "le") {
                bound = Some(parse_bound(&le).ok_or_else(|| {
                    format!("expected float as value for 'le' label, got {le:?} in {name:?}")
                })?);
            }
        }
        (Kind::Summary, "") => {
            if let Some(q) = take_label(&mut labels, "quantile") {
                bound = Some(parse_bound(&q).ok_or_else(|| {
                    format!("expected float as value for 'quantile' label, got {q:?} in {name:?}")
                })?);
            }
        }
        (Kind::Histogram | Kind::Summary, "_sum" | "_count") => {}
        (Kind::Histogram, _) => {
            return Err(format!(
                "sample {name:?} of histogram {fam_name:?} is not a _bucket, _sum or _count"
            ));
        }
        (_, "") => {}
        _ => return Err(format!("sample {name:?} does not belong to {fam_name:?}")),
    }
    labels.sort_by(|a, b| a.0.cmp(&b.0));
    if matches!(kind, Kind::Histogram | Kind::Summary) {
        // Consecutive lines with the same labels build one metric, as Go's
        // parser does; a label set seen again later starts a second metric
        // (which the consistency check refuses as a duplicate).
        let same = fam
            .metrics
            .last()
            .is_some_and(|m| m.labels == labels && m.timestamp_ms == timestamp_ms);
        if !same {
            fam.metrics.push(Metric {
                labels,
                value: if kind == Kind::Histogram {
                    Value::Histogram {
                        buckets: Vec::new(),
                        count: 0.0,
                        sum: 0.0,
                    }
                } else {
                    Value::Summary {
                        quantiles: Vec::new(),
                        count: 0.0,
                        sum: 0.0,
                    }
                },
                timestamp_ms,
            });
        }
        let Some(m) = fam.metrics.last_mut() else {
            return Err(format!("no metric for {name:?}"));
        };
        match (&mut m.value, suffix) {
            (Value::Histogram { buckets, .. }, "_bucket") => {
                if let Some(le) = bound {
                    buckets.push((le, value));
                }
            }
            (Value::Summary { quantiles, .. }, "") => {
                if let Some(q) = bound {
                    quantiles.push((q, value));
                }
            }
            (Value::Histogram { count, .. } | Value::Summary { count, .. }, "_count") => {
                *count = value;
            }
            (Value::Histogram { sum, .. } | Value::Summary { sum, .. }, "_sum") => *sum = value,
            _ => return Err(format!("sample {name:?} does not fit {fam_name:?}")),
        }
    } else {
        fam.metrics.push(Metric {
            labels,
            value: Value::Simple(value),
            timestamp_ms,
        });
    }
    Ok(())
}

impl Family {
    /// The sample names this family exposes.
    pub fn sample_names(&self) -> Vec<String> {
        match self.kind {
            Kind::Histogram => ["_bucket", "_sum", "_count"]
                .iter()
                .map(|s| format!("{}{s}", self.name))
                .collect(),
            Kind::Summary => vec![
                self.name.clone(),
                format!("{}_sum", self.name),
                format!("{}_count", self.name),
            ],
            _ => vec![self.name.clone()],
        }
    }

    /// Restates the family as exposition samples (a histogram without a
    /// `+Inf` bucket gets one holding its count, as Go's encoder adds it).
    pub fn to_exposition(&self) -> MetricFamily {
        let mut out = MetricFamily::new(self.name.clone(), self.kind.metric_type());
        out.help = self.help.clone();
        for m in &self.metrics {
            let with = |name: String, extra: Option<(&str, f64)>, v: f64| {
                let mut s = Sample::new(name, v);
                s.labels = m.labels.clone();
                if let Some((n, b)) = extra {
                    s.labels.push((n.to_owned(), go_float(b)));
                }
                s.timestamp_ms = m.timestamp_ms;
                s
            };
            match &m.value {
                Value::Simple(v) => out.samples.push(with(self.name.clone(), None, *v)),
                Value::Histogram {
                    buckets,
                    count,
                    sum,
                } => {
                    let bucket = format!("{}_bucket", self.name);
                    for (le, c) in buckets {
                        out.samples
                            .push(with(bucket.clone(), Some(("le", *le)), *c));
                    }
                    if !buckets.iter().any(|(le, _)| *le == f64::INFINITY) {
                        out.samples
                            .push(with(bucket, Some(("le", f64::INFINITY)), *count));
                    }
                    out.samples
                        .push(with(format!("{}_sum", self.name), None, *sum));
                    out.samples
                        .push(with(format!("{}_count", self.name), None, *count));
                }
                Value::Summary {
                    quantiles,
                    count,
                    sum,
                } => {
                    for (q, v) in quantiles {
                        out.samples
                            .push(with(self.name.clone(), Some(("quantile", *q)), *v));
                    }
                    out.samples
                        .push(with(format!("{}_sum", self.name), None, *sum));
                    out.samples
                        .push(with(format!("{}_count", self.name), None, *count));
                }
            }
        }
        out
    }

    /// Encodes the family as text 0.0.4 (the persistence file keeps it so).
    pub fn to_text(&self) -> String {
        let mut out = Vec::new();
        vigil_exposition::encode::encode_families(&[self.to_exposition()], Format::Text, &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// Go's `strconv.FormatFloat(v, 'g', -1, 64)` with Prometheus's spelling of
/// the infinities, through the exposition encoder (which renders floats that
/// way).
pub fn go_float(v: f64) -> String {
    let mut out = Vec::new();
    let mut enc = vigil_exposition::encode::Encoder::new(&mut out, Format::Text);
    enc.sample("x", "").value(v).finish();
    enc.finish();
    let s = String::from_utf8_lossy(&out);
    s.trim_end().strip_prefix("x ").unwrap_or("NaN").to_owned()
}

/// client_golang's order of metrics within a family: fewer labels first,
/// then label values compared in label-name order.
pub fn sort_metrics(metrics: &mut [Metric]) {
    metrics.sort_by(|a, b| {
        a.labels.len().cmp(&b.labels.len()).then_with(|| {
            a.labels
                .iter()
                .zip(&b.labels)
                .map(|((_, x), (_, y))| x.cmp(y))
                .find(|o| o.is_ne())
                .unwrap_or(std::cmp::Ordering::Equal)
        })
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_as_go_text_parser() {
        let body = b"# TYPE om counter\nom_total 1\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\n\
                     h_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\nx_count 4\n";
        let fams = parse_text(body).unwrap();
        let names: Vec<(&str, Kind)> = fams.iter().map(|f| (f.name.as_str(), f.kind)).collect();
        assert_eq!(
            names,
            [
                ("om_total", Kind::Untyped),
                ("h", Kind::Histogram),
                ("x_count", Kind::Untyped)
            ]
        );
        assert_eq!(
            fams[1].metrics[0].value,
            Value::Histogram {
                buckets: vec![(1.0, 1.0), (f64::INFINITY, 2.0)],
                count: 2.0,
                sum: 3.0
            }
        );
    }

    #[test]
    fn openmetrics_counters_get_their_total_name() {
        let body = b"# TYPE om counter\n# HELP om Things.\nom_total 1\nom_created 5\n# EOF\n";
        let fams = parse_body(body, true).unwrap();
        assert_eq!(fams.len(), 1);
        assert_eq!(
            (fams[0].name.as_str(), fams[0].kind),
            ("om_total", Kind::Counter)
        );
        assert_eq!(fams[0].help.as_deref(), Some("Things."));
    }

    #[test]
    fn refuses_what_go_refuses() {
        for bad in [
            &b"g{a=\"1\",a=\"2\"} 1\n"[..],
            b"# TYPE g gauge\n# TYPE g gauge\ng 1\n",
            b"g 1\n# TYPE g gauge\n",
            b"# TYPE h histogram\nh_bucket{le=\"x\"} 1\n",
            b"bad{ 3\n",
            b"g{\"a.b\"=\"1\"} 1\n",
        ] {
            assert!(parse_text(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn go_floats() {
        assert_eq!(go_float(1.7953524896921043e9), "1.7953524896921043e+09");
        assert_eq!(go_float(3.0), "3");
        assert_eq!(go_float(f64::INFINITY), "+Inf");
    }

    #[test]
    fn round_trips_through_text() {
        let body =
            b"# HELP s S.\n# TYPE s summary\ns{quantile=\"0.5\",a=\"x\"} 1\ns_sum{a=\"x\"} 3\n\
                     s_count{a=\"x\"} 2\n";
        let fams = parse_text(body).unwrap();
        let again = parse_text(fams[0].to_text().as_bytes()).unwrap();
        assert_eq!(fams, again);
    }
}
