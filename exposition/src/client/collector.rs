//! Collectors: metrics computed when scraped.

use super::metric::{ConstLabels, Fam, MetricWriter};
use crate::model::{MetricFamily, MetricType};

/// Metrics computed at scrape time: the state of a cache, a connection
/// pool, a value read from the system. Registered with
/// [`Registry::register_collector`](super::Registry::register_collector).
///
/// A collector writes its families through a [`CollectorWriter`] rather
/// than returning `Vec<MetricFamily>`: on a `/metrics` request that writer
/// is the encoder itself, so a collector of thousands of series (a node
/// agent's per-cgroup figures) allocates nothing per sample, and the same
/// code fills owned families for [`Registry::gather`](super::Registry::gather).
/// A collector that already has owned families (proxied from elsewhere)
/// passes them to [`CollectorWriter::families`].
///
/// The registry's prefix and constant labels apply to what a collector
/// writes. Its names are not checked against the registered ones: keep them
/// distinct. `collect` runs while the registry is read-locked, so it must
/// not register anything in the same registry.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
/// use vigil_exposition::client::{Collector, CollectorWriter, Registry};
/// use vigil_exposition::{Format, MetricType};
///
/// struct Pool { idle: Arc<AtomicUsize> }
///
/// impl Collector for Pool {
///     fn collect(&self, out: &mut CollectorWriter<'_, '_>) {
///         out.family("pool_connections", MetricType::Gauge, "Connections by state.")
///             .sample("", &[("state", "idle")], self.idle.load(Ordering::Relaxed) as f64);
///     }
/// }
///
/// let registry = Registry::new();
/// registry.register_collector(Pool { idle: Arc::new(AtomicUsize::new(3)) });
/// let mut out = Vec::new();
/// registry.encode(Format::Text, &mut out);
/// assert_eq!(String::from_utf8(out).unwrap(), "\
/// ## HELP pool_connections Connections by state.
/// ## TYPE pool_connections gauge
/// pool_connections{state=\"idle\"} 3
/// ");
/// ```
pub trait Collector: Send + Sync + 'static {
    /// Writes the collector's families.
    fn collect(&self, out: &mut CollectorWriter<'_, '_>);
}

/// Where a [`Collector`] writes its families.
pub struct CollectorWriter<'w, 'a> {
    w: &'w mut MetricWriter<'a>,
    prefix: Option<&'w str>,
    consts: &'w ConstLabels,
    name: String,
}

impl<'w, 'a> CollectorWriter<'w, 'a> {
    pub(crate) fn new(
        w: &'w mut MetricWriter<'a>,
        prefix: Option<&'w str>,
        consts: &'w ConstLabels,
    ) -> CollectorWriter<'w, 'a> {
        CollectorWriter {
            w,
            prefix,
            consts,
            name: String::new(),
        }
    }

    fn set_name(&mut self, name: &str, unit: Option<&str>) {
        self.name.clear();
        if let Some(p) = self.prefix {
            self.name.push_str(p);
            self.name.push('_');
        }
        self.name.push_str(name);
        if let Some(unit) = unit.filter(|u| !u.is_empty()) {
            if !name.ends_with(unit) || !name[..name.len() - unit.len()].ends_with('_') {
                self.name.push('_');
                self.name.push_str(unit);
            }
        }
    }

    /// Starts a family (its metadata is written now); write its samples
    /// through the returned writer. An empty `help` writes no HELP line.
    pub fn family(&mut self, name: &str, ty: MetricType, help: &str) -> FamilyWriter<'_, 'a> {
        self.family_with_unit(name, ty, help, "")
    }

    /// Starts a family with a unit (OpenMetrics `# UNIT`). As at
    /// registration, `_unit` is appended to the name unless it ends with it.
    pub fn family_with_unit(
        &mut self,
        name: &str,
        ty: MetricType,
        help: &str,
        unit: &str,
    ) -> FamilyWriter<'_, 'a> {
        self.set_name(name, Some(unit));
        let help = (!help.is_empty()).then_some(help);
        let unit = (!unit.is_empty()).then_some(unit);
        self.w.begin_family(&self.name, ty, help, unit);
        FamilyWriter {
            w: self.w,
            name: &self.name,
            consts: self.consts,
        }
    }

    /// Writes owned families as they are (names get the registry's prefix,
    /// samples its constant labels).
    pub fn families(&mut self, families: &[MetricFamily]) {
        let mut sample_name = String::new();
        for fam in families {
            self.set_name(&fam.name, None);
            let help = fam.help.as_deref().filter(|h| !h.is_empty());
            self.w
                .begin_family(&self.name, fam.metric_type, help, fam.unit.as_deref());
            for s in &fam.samples {
                sample_name.clear();
                if let Some(p) = self.prefix {
                    sample_name.push_str(p);
                    sample_name.push('_');
                }
                sample_name.push_str(&s.name);
                let f = Fam {
                    name: &sample_name,
                    consts: self.consts,
                };
                self.w
                    .sample_pairs(&f, "", &s.labels, s.value, s.timestamp_ms);
            }
        }
    }
}

/// Writes the samples of one family of a [`Collector`].
pub struct FamilyWriter<'c, 'a> {
    w: &'c mut MetricWriter<'a>,
    name: &'c str,
    consts: &'c ConstLabels,
}

impl FamilyWriter<'_, '_> {
    /// Writes a sample named the family name plus `suffix` (`"_total"`,
    /// `"_bucket"`, `""`, ...), with these labels after the registry's.
    pub fn sample<N: AsRef<str>, V: AsRef<str>>(
        &mut self,
        suffix: &str,
        labels: &[(N, V)],
        value: f64,
    ) -> &mut Self {
        let fam = Fam {
            name: self.name,
            consts: self.consts,
        };
        self.w.sample_pairs(&fam, suffix, labels, value, None);
        self
    }

    /// As [`sample`](FamilyWriter::sample), with a timestamp in milliseconds
    /// since the epoch (for values observed at a known earlier time).
    pub fn sample_at<N: AsRef<str>, V: AsRef<str>>(
        &mut self,
        suffix: &str,
        labels: &[(N, V)],
        value: f64,
        timestamp_ms: i64,
    ) -> &mut Self {
        let fam = Fam {
            name: self.name,
            consts: self.consts,
        };
        self.w
            .sample_pairs(&fam, suffix, labels, value, Some(timestamp_ms));
        self
    }
}
