//! Strict OpenMetrics validation: the rules of the specification beyond its
//! grammar, checked entry by entry as the parser produces them.
//!
//! The state is the open family, the open metric (its label set without the
//! point's own `le`/`quantile`/state label) and the open metric point; every
//! family, metric and sample name seen before stays recorded so that
//! interleaving and clashing names are caught. Strict mode is for validation,
//! so clarity wins over allocation here.

use std::collections::HashSet;

use super::{Entry, Sample, number};
use crate::error::{Error, Result};
use crate::model::MetricType;

pub(crate) struct Validator {
    /// Names of the families already closed.
    families: HashSet<String>,
    /// Sample names that closed families may carry (family name + suffix).
    produced: HashSet<String>,
    fam: Option<Family>,
}

struct Family {
    name: String,
    ty: Option<MetricType>,
    unit: Option<String>,
    has_help: bool,
    has_samples: bool,
    line: u32,
    /// Keys of the metrics already finished in this family.
    metrics: HashSet<String>,
    point: Option<Point>,
}

/// The open metric point: all samples of one metric (label set) sharing a
/// timestamp.
struct Point {
    key: String,
    /// Timestamp text of the point's samples, `None` when they have none.
    ts: Option<String>,
    ts_value: Option<f64>,
    /// `name` + special label value of the samples seen in this point.
    seen: HashSet<String>,
    buckets: Vec<(f64, f64)>,
    inf_bucket: Option<f64>,
    count: Option<f64>,
    sum: Option<f64>,
    total: bool,
    line: u32,
}

fn invalid(line: u32, reason: String) -> Error {
    Error::Invalid {
        line,
        column: 1,
        reason,
    }
}

impl Validator {
    pub(crate) fn new() -> Validator {
        Validator {
            families: HashSet::new(),
            produced: HashSet::new(),
            fam: None,
        }
    }

    pub(crate) fn check(&mut self, entry: &Entry<'_>, _line: &str, no: u32) -> Result<()> {
        match entry {
            Entry::Help { name, .. } => self.meta(&name.as_cow(), Meta::Help, no),
            Entry::Type { name, metric_type } => {
                self.meta(&name.as_cow(), Meta::Type(*metric_type), no)
            }
            Entry::Unit { name, unit } => self.meta(&name.as_cow(), Meta::Unit(unit), no),
            Entry::Sample(s) => self.sample(s, no),
            Entry::Comment(_) | Entry::Eof => Ok(()),
        }
    }

    pub(crate) fn finish(&mut self, no: u32) -> Result<()> {
        self.close_family(no)
    }

    fn meta(&mut self, name: &str, meta: Meta<'_>, no: u32) -> Result<()> {
        let same = self.fam.as_ref().is_some_and(|f| f.name == name);
        if !same {
            self.open_family(name, no)?;
        }
        let Some(fam) = self.fam.as_mut() else {
            return Ok(());
        };
        if fam.has_samples {
            return Err(invalid(
                no,
                format!("metadata for {name:?} after its samples"),
            ));
        }
        let (kind, dup) = match meta {
            Meta::Help => ("HELP", std::mem::replace(&mut fam.has_help, true)),
            Meta::Type(t) => ("TYPE", fam.ty.replace(t).is_some()),
            Meta::Unit(u) => ("UNIT", fam.unit.replace(u.to_owned()).is_some()),
        };
        if dup {
            return Err(invalid(no, format!("second {kind} line for {name:?}")));
        }
        if let (Some(t @ (MetricType::Info | MetricType::StateSet)), Some(u)) = (fam.ty, &fam.unit)
        {
            if !u.is_empty() {
                return Err(invalid(
                    no,
                    format!("a {t} family ({name:?}) must not have a unit"),
                ));
            }
        }
        Ok(())
    }

    /// Starts family `name`, closing the open one; a name seen before means
    /// the families are interleaved or clash.
    fn open_family(&mut self, name: &str, no: u32) -> Result<()> {
        self.close_family(no)?;
        if self.families.contains(name) {
            return Err(invalid(
                no,
                format!(
                    "metric family {name:?} appears a second time (families must not be interleaved)"
                ),
            ));
        }
        if self.produced.contains(name) {
            return Err(invalid(
                no,
                format!(
                    "metric family name {name:?} clashes with a sample name of an earlier family"
                ),
            ));
        }
        self.fam = Some(Family {
            name: name.to_owned(),
            ty: None,
            unit: None,
            has_help: false,
            has_samples: false,
            line: no,
            metrics: HashSet::new(),
            point: None,
        });
        Ok(())
    }

    fn close_family(&mut self, no: u32) -> Result<()> {
        let Some(mut fam) = self.fam.take() else {
            return Ok(());
        };
        if let Some(p) = fam.point.take() {
            close_point(&fam, p)?;
        }
        let ty = fam.ty.unwrap_or(MetricType::Unknown);
        for suffix in ty.suffixes() {
            let n = format!("{}{suffix}", fam.name);
            if self.families.contains(&n) || !self.produced.insert(n.clone()) {
                return Err(invalid(
                    fam.line.max(no.min(fam.line)),
                    format!(
                        "the samples of {ty} family {:?} would clash with an earlier family over the name {n:?}",
                        fam.name
                    ),
                ));
            }
        }
        self.families.insert(fam.name);
        Ok(())
    }

    fn sample(&mut self, s: &Sample<'_>, no: u32) -> Result<()> {
        let name = s.name.as_cow();
        let fits = self
            .fam
            .as_ref()
            .is_some_and(|f| suffix_of(f, &name).is_some());
        if !fits {
            if let Some(f) = &self.fam {
                if f.ty.is_some() && (name == f.name || self.produced.contains(name.as_ref())) {
                    let ty = f.ty.unwrap_or_default();
                    return Err(invalid(
                        no,
                        format!(
                            "sample {name:?} does not fit {ty} family {:?} (its samples end in {})",
                            f.name,
                            ty.suffixes()
                                .iter()
                                .map(|s| if s.is_empty() { "nothing" } else { s })
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                }
            }
            self.open_family(&name, no)?;
        }
        let Some(fam) = self.fam.as_mut() else {
            return Ok(());
        };
        fam.has_samples = true;
        let ty = fam.ty.unwrap_or(MetricType::Unknown);
        let suffix = suffix_of(fam, &name).unwrap_or("");

        // The label that tells a point's samples apart, if any.
        let special: Option<&str> = match (ty, suffix) {
            (MetricType::Histogram | MetricType::GaugeHistogram, "_bucket") => Some("le"),
            (MetricType::Summary, "") => Some("quantile"),
            (MetricType::StateSet, _) => Some(fam.name.as_str()),
            _ => None,
        };
        let mut special_value: Option<String> = None;
        let mut key_parts: Vec<String> = Vec::with_capacity(s.labels.len());
        for (n, v) in s.labels.iter() {
            let n = n.as_cow();
            let v = v.as_cow();
            if n.starts_with("__") {
                return Err(invalid(
                    no,
                    format!("{name:?}: label name {n:?} is reserved (names starting with __)"),
                ));
            }
            if Some(n.as_ref()) == special {
                special_value = Some(v.into_owned());
                continue;
            }
            match (ty, n.as_ref()) {
                (MetricType::Histogram | MetricType::GaugeHistogram, "le") => {
                    return Err(invalid(
                        no,
                        format!("{name:?}: only _bucket samples may have an \"le\" label"),
                    ));
                }
                (MetricType::Summary, "quantile") => {
                    return Err(invalid(
                        no,
                        format!("{name:?}: only quantile samples may have a \"quantile\" label"),
                    ));
                }
                _ => {}
            }
            key_parts.push(format!("{n}={v:?}"));
        }
        if let Some(label) = special {
            if special_value.is_none() {
                return Err(invalid(
                    no,
                    format!("{ty} sample {name:?} lacks its {label:?} label"),
                ));
            }
        }
        key_parts.sort();
        let key = key_parts.join(",");

        check_value(ty, suffix, &name, s, special_value.as_deref(), no)?;
        check_exemplar(ty, suffix, &name, s, no)?;

        // Metric and point bookkeeping.
        let ts_text = s.timestamp_text().map(str::to_owned);
        let ts_value = s.timestamp_text().and_then(number::real_seconds);
        let mut new_point = true;
        if let Some(p) = fam.point.as_mut() {
            if p.key == key {
                if p.ts.is_some() != ts_text.is_some() {
                    return Err(invalid(
                        no,
                        format!("{name:?}: samples of one metric must all have timestamps or none"),
                    ));
                }
                if let (Some(prev), Some(cur)) = (p.ts_value, ts_value) {
                    if cur < prev {
                        return Err(invalid(no, format!("{name:?}: timestamp goes backwards")));
                    }
                }
                let id = format!("{name}\u{0}{}", special_value.as_deref().unwrap_or(""));
                let same_ts = p.ts == ts_text;
                if same_ts && !p.seen.contains(&id) {
                    new_point = false;
                } else if ts_text.is_none() {
                    return Err(invalid(
                        no,
                        format!("duplicate sample {name:?} without timestamps"),
                    ));
                }
            }
        }
        if new_point {
            let old = fam.point.take();
            let same_metric = old.as_ref().is_some_and(|p| p.key == key);
            if let Some(p) = old {
                let old_key = p.key.clone();
                close_point(fam, p)?;
                if !same_metric {
                    fam.metrics.insert(old_key);
                }
            }
            if !same_metric && fam.metrics.contains(&key) {
                return Err(invalid(
                    no,
                    format!(
                        "{name:?}: metric {{{key}}} appears again after another metric (metrics must not be interleaved)"
                    ),
                ));
            }
            fam.point = Some(Point {
                key,
                ts: ts_text,
                ts_value,
                seen: HashSet::new(),
                buckets: Vec::new(),
                inf_bucket: None,
                count: None,
                sum: None,
                total: false,
                line: no,
            });
        }
        let Some(p) = fam.point.as_mut() else {
            return Ok(());
        };
        p.seen.insert(format!(
            "{name}\u{0}{}",
            special_value.as_deref().unwrap_or("")
        ));
        match (ty, suffix) {
            (MetricType::Histogram | MetricType::GaugeHistogram, "_bucket") => {
                let le = special_value.unwrap_or_default();
                if le == "+Inf" {
                    p.inf_bucket = Some(s.value);
                } else {
                    let bound = number::parse_value(&le)
                        .map(|(v, _)| v)
                        .filter(|v| !v.is_nan() && *v != f64::INFINITY)
                        .ok_or_else(|| invalid(no, format!("{name:?}: le {le:?} is not a number (the infinite bucket is written \"+Inf\")")))?;
                    if p.inf_bucket.is_some() {
                        return Err(invalid(
                            no,
                            format!("{name:?}: bucket le={le:?} after the +Inf bucket"),
                        ));
                    }
                    if let Some(&(prev, prev_count)) = p.buckets.last() {
                        if bound <= prev {
                            return Err(invalid(
                                no,
                                format!(
                                    "{name:?}: buckets must be sorted by increasing le ({le} after {prev})"
                                ),
                            ));
                        }
                        if s.value < prev_count {
                            return Err(invalid(
                                no,
                                format!("{name:?}: bucket counts must not decrease (le={le})"),
                            ));
                        }
                    }
                    p.buckets.push((bound, s.value));
                }
                if let (Some(inf), Some(&(_, last))) = (p.inf_bucket, p.buckets.last()) {
                    if inf < last {
                        return Err(invalid(
                            no,
                            format!("{name:?}: the +Inf bucket is below a lower bucket"),
                        ));
                    }
                }
            }
            (MetricType::Histogram, "_count") | (MetricType::GaugeHistogram, "_gcount") => {
                p.count = Some(s.value)
            }
            (MetricType::Histogram, "_sum") | (MetricType::GaugeHistogram, "_gsum") => {
                p.sum = Some(s.value)
            }
            (MetricType::Counter, "_total") => p.total = true,
            _ => {}
        }
        Ok(())
    }
}

enum Meta<'a> {
    Help,
    Type(MetricType),
    Unit(&'a str),
}

/// The suffix with which `name` belongs to `fam`, if it does.
fn suffix_of<'s>(fam: &Family, name: &str) -> Option<&'s str> {
    let rest = name.strip_prefix(fam.name.as_str())?;
    fam.ty
        .unwrap_or(MetricType::Unknown)
        .suffixes()
        .iter()
        .copied()
        .find(|s| *s == rest)
}

fn is_integer(v: f64) -> bool {
    v.is_finite() && v.fract() == 0.0
}

/// The value rules of each type and sample kind.
fn check_value(
    ty: MetricType,
    suffix: &str,
    name: &str,
    s: &Sample<'_>,
    special: Option<&str>,
    no: u32,
) -> Result<()> {
    let v = s.value;
    let bad = |what: &str| {
        Err(invalid(
            no,
            format!("{ty} sample {name:?}: {what} (value {v})"),
        ))
    };
    match (ty, suffix) {
        (MetricType::Counter, "_total") if v.is_nan() || v < 0.0 => {
            bad("a counter total must be a number >= 0")
        }
        (MetricType::Histogram | MetricType::GaugeHistogram, "_bucket")
        | (MetricType::Histogram, "_count")
        | (MetricType::GaugeHistogram, "_gcount")
        | (MetricType::Summary, "_count")
            if v < 0.0 || !is_integer(v) =>
        {
            bad("bucket and count values must be integers >= 0")
        }
        (MetricType::Histogram | MetricType::Summary, "_sum") if v.is_nan() || v < 0.0 => {
            bad("a sum must be a number >= 0")
        }
        (MetricType::GaugeHistogram, "_gsum") if v.is_nan() => bad("a gsum must not be NaN"),
        (MetricType::Summary, "") => {
            let q = special.unwrap_or_default();
            match number::parse_value(q) {
                Some((q, _)) if (0.0..=1.0).contains(&q) => {}
                _ => {
                    return Err(invalid(
                        no,
                        format!(
                            "summary sample {name:?}: quantile {q:?} must be a number between 0 and 1"
                        ),
                    ));
                }
            }
            if v < 0.0 {
                bad("a quantile value must not be negative")
            } else {
                Ok(())
            }
        }
        (MetricType::Info, _) if v != 1.0 => bad("an info value must be 1"),
        (MetricType::StateSet, _) if v != 0.0 && v != 1.0 => bad("a state must be 0 or 1"),
        _ => Ok(()),
    }
}

/// Exemplars: only on counter totals and histogram buckets, at most 128
/// characters of label names and values.
fn check_exemplar(ty: MetricType, suffix: &str, name: &str, s: &Sample<'_>, no: u32) -> Result<()> {
    let Some(ex) = &s.exemplar else { return Ok(()) };
    let allowed = matches!(
        (ty, suffix),
        (MetricType::Counter, "_total")
            | (
                MetricType::Histogram | MetricType::GaugeHistogram,
                "_bucket"
            )
    );
    if !allowed {
        return Err(invalid(
            no,
            format!("{name:?}: exemplars are allowed only on counter totals and histogram buckets"),
        ));
    }
    let mut chars = 0;
    let mut names = HashSet::new();
    for (n, v) in ex.labels.iter() {
        let n = n.as_cow();
        chars += n.chars().count() + v.as_cow().chars().count();
        if !names.insert(n.into_owned()) {
            return Err(invalid(
                no,
                format!("{name:?}: duplicate exemplar label name"),
            ));
        }
    }
    if chars > 128 {
        return Err(invalid(
            no,
            format!("{name:?}: exemplar labels have {chars} characters, more than 128"),
        ));
    }
    Ok(())
}

/// The rules that need a whole metric point.
fn close_point(fam: &Family, p: Point) -> Result<()> {
    let ty = fam.ty.unwrap_or(MetricType::Unknown);
    let no = p.line;
    let name = &fam.name;
    match ty {
        MetricType::Histogram | MetricType::GaugeHistogram => {
            let (count, sum) = if ty == MetricType::Histogram {
                ("_count", "_sum")
            } else {
                ("_gcount", "_gsum")
            };
            let Some(inf) = p.inf_bucket else {
                return Err(invalid(
                    no,
                    format!("{ty} {name:?}: a metric point needs a bucket with le=\"+Inf\""),
                ));
            };
            if p.count.is_some() != p.sum.is_some() {
                return Err(invalid(
                    no,
                    format!("{ty} {name:?}: {count} and {sum} come together or not at all"),
                ));
            }
            if let Some(c) = p.count {
                if c != inf {
                    return Err(invalid(
                        no,
                        format!(
                            "{ty} {name:?}: {count} ({c}) differs from the +Inf bucket ({inf})"
                        ),
                    ));
                }
            }
            let negative = p.buckets.first().is_some_and(|&(le, _)| le < 0.0);
            if let Some(s) = p.sum {
                if ty == MetricType::Histogram && negative {
                    return Err(invalid(
                        no,
                        format!(
                            "histogram {name:?}: a histogram with negative buckets must not have a _sum"
                        ),
                    ));
                }
                if ty == MetricType::GaugeHistogram && !negative && s < 0.0 {
                    return Err(invalid(
                        no,
                        format!(
                            "gaugehistogram {name:?}: _gsum may be negative only with negative buckets"
                        ),
                    ));
                }
            }
        }
        MetricType::Counter if !p.total => {
            return Err(invalid(
                no,
                format!("counter {name:?}: a metric point needs its _total sample"),
            ));
        }
        _ => {}
    }
    Ok(())
}
