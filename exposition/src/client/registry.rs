//! The registry: named metrics, collectors and sub-registries, encoded
//! together.

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use super::collector::{Collector, CollectorWriter};
use super::metric::{ConstLabels, Fam, Metric, MetricWriter};
use crate::Format;
use crate::error::{Error, Result};
use crate::model::{MetricFamily, MetricType};
use crate::names::{check_label_name, check_metric_name};

/// A set of metrics to expose, with an optional name prefix and constant
/// labels, and sub-registries that add their own.
///
/// A cheap handle: clones (and sub-registries) share the registrations, so
/// one registry can be given to every library of a program, each taking a
/// sub-registry with its prefix. Registration takes `&self`.
///
/// Families are written in registration order (a sub-registry's where it
/// was created), each family's children in their creation order.
///
/// ```
/// use vigil_exposition::client::{Counter, Gauge, Registry};
/// use vigil_exposition::Format;
///
/// let registry = Registry::new();
/// let http = registry.sub_registry_with_prefix("http");
/// let requests = Counter::<u64>::new();
/// http.register("requests", "Requests served.", requests.clone())?;
/// let shard = registry.sub_registry_with_labels(&[("shard", "7")])?;
/// let depth = Gauge::<i64>::new();
/// shard.register("queue_depth", "Jobs waiting.", depth.clone())?;
///
/// requests.inc();
/// depth.set(12);
/// // The same name twice is refused, however it was reached.
/// assert!(registry.register("http_requests", "again", Counter::<u64>::new()).is_err());
///
/// let mut out = Vec::new();
/// registry.encode(Format::Text, &mut out);
/// assert_eq!(String::from_utf8(out).unwrap(), "\
/// ## HELP http_requests_total Requests served.
/// ## TYPE http_requests_total counter
/// http_requests_total 1
/// ## HELP queue_depth Jobs waiting.
/// ## TYPE queue_depth gauge
/// queue_depth{shard=\"7\"} 12
/// ");
/// # Ok::<(), vigil_exposition::Error>(())
/// ```
#[derive(Clone)]
pub struct Registry {
    node: Arc<Node>,
}

struct Node {
    prefix: Option<String>,
    consts: ConstLabels,
    items: RwLock<Vec<Item>>,
    /// Names taken anywhere in the tree, shared by every node.
    claimed: Arc<Mutex<Claimed>>,
}

#[derive(Default)]
struct Claimed {
    families: HashSet<String>,
    samples: HashSet<String>,
}

enum Item {
    Metric {
        name: String,
        help: Option<String>,
        unit: Option<String>,
        metric: Box<dyn Metric>,
    },
    Collector(Box<dyn Collector>),
    Sub(Registry),
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::from_node(None, ConstLabels::default(), Arc::default())
    }

    /// An empty registry whose metric names all start with `prefix_`.
    pub fn with_prefix(prefix: &str) -> Registry {
        let prefix = (!prefix.is_empty()).then(|| prefix.to_owned());
        Registry::from_node(prefix, ConstLabels::default(), Arc::default())
    }

    /// An empty registry whose samples all carry these labels (`instance`
    /// and `job` are better left to the scraper).
    pub fn with_labels(labels: &[(&str, &str)]) -> Result<Registry> {
        Registry::new().sub_registry_with_labels(labels)
    }

    fn from_node(
        prefix: Option<String>,
        consts: ConstLabels,
        claimed: Arc<Mutex<Claimed>>,
    ) -> Registry {
        Registry {
            node: Arc::new(Node {
                prefix,
                consts,
                items: RwLock::new(Vec::new()),
                claimed,
            }),
        }
    }

    /// A sub-registry whose names start with this registry's prefix, then
    /// `prefix_`. Names are checked against the whole tree.
    pub fn sub_registry_with_prefix(&self, prefix: &str) -> Registry {
        let prefix = match (&self.node.prefix, prefix.is_empty()) {
            (Some(p), false) => Some(format!("{p}_{prefix}")),
            (Some(p), true) => Some(p.clone()),
            (None, false) => Some(prefix.to_owned()),
            (None, true) => None,
        };
        let sub = Registry::from_node(
            prefix,
            self.node.consts.clone(),
            Arc::clone(&self.node.claimed),
        );
        self.push(Item::Sub(sub.clone()));
        sub
    }

    /// A sub-registry whose samples carry these labels after this
    /// registry's. Fails on an invalid or repeated label name.
    pub fn sub_registry_with_labels(&self, labels: &[(&str, &str)]) -> Result<Registry> {
        let mut consts = self.node.consts.clone();
        for (name, value) in labels {
            check_label_name(name)?;
            if consts.pairs.iter().any(|(n, _)| n == name) {
                return Err(Error::InvalidName {
                    what: "label name",
                    name: (*name).to_owned(),
                    reason: "is already a constant label of this registry",
                });
            }
            consts.push(name, value);
        }
        let sub = Registry::from_node(
            self.node.prefix.clone(),
            consts,
            Arc::clone(&self.node.claimed),
        );
        self.push(Item::Sub(sub.clone()));
        Ok(sub)
    }

    fn push(&self, item: Item) {
        self.node
            .items
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(item);
    }

    /// Registers `metric` (keep a clone to update it) under `name`, with
    /// this registry's prefix. A counter's trailing `_total` is taken off the
    /// family name (the samples get it back).
    ///
    /// Fails with [`Error::InvalidName`] on an empty name or an invalid label
    /// name, and with [`Error::AlreadyRegistered`] when the family name, or
    /// one of the sample names it writes, is already taken in this registry's
    /// tree (a gauge `foo_total` beside a counter `foo`).
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) -> Result<()> {
        self.register_inner(name, help, None, Box::new(metric))
    }

    /// As [`register`](Registry::register), with a unit (OpenMetrics
    /// `# UNIT`; `seconds`, `bytes`, ...). The name gets `_unit` appended
    /// unless it already ends with it, as OpenMetrics requires. Info and
    /// state sets have no unit.
    pub fn register_with_unit(
        &self,
        name: &str,
        help: &str,
        unit: &str,
        metric: impl Metric,
    ) -> Result<()> {
        self.register_inner(name, help, Some(unit), Box::new(metric))
    }

    /// Registers a collector, called at every encode and gather.
    pub fn register_collector(&self, collector: impl Collector) {
        self.push(Item::Collector(Box::new(collector)));
    }

    fn register_inner(
        &self,
        name: &str,
        help: &str,
        unit: Option<&str>,
        metric: Box<dyn Metric>,
    ) -> Result<()> {
        let ty = metric.metric_type();
        let mut full = match &self.node.prefix {
            Some(p) => format!("{p}_{name}"),
            None => name.to_owned(),
        };
        check_metric_name(name)?;
        if ty == MetricType::Counter {
            if let Some(stripped) = full.strip_suffix("_total") {
                full.truncate(stripped.len());
            }
        }
        let unit = unit.filter(|u| !u.is_empty());
        if let Some(unit) = unit {
            check_unit(unit, ty)?;
            let suffix = format!("_{unit}");
            if !full.ends_with(&suffix) {
                full.push_str(&suffix);
            }
        }
        if ty == MetricType::StateSet {
            // The family name is also the state label's name.
            check_label_name(&full)?;
        }
        metric.validate()?;
        {
            let mut claimed = self
                .node
                .claimed
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let samples: Vec<String> = ty.suffixes().iter().map(|s| format!("{full}{s}")).collect();
            if claimed.families.contains(&full)
                || samples.iter().any(|s| claimed.samples.contains(s))
            {
                return Err(Error::AlreadyRegistered(full));
            }
            claimed.families.insert(full.clone());
            claimed.samples.extend(samples);
        }
        let help = (!help.is_empty()).then(|| help.to_owned());
        self.push(Item::Metric {
            name: full,
            help,
            unit: unit.map(str::to_owned),
            metric,
        });
        Ok(())
    }

    /// Encodes every family of this registry and its sub-registries into
    /// `out`, in `format` (OpenMetrics ends with `# EOF`). This is what a
    /// `/metrics` handler calls, with the format from
    /// [`Format::negotiate`].
    ///
    /// Allocation: none per sample (labels are copied as bytes rendered when
    /// each child was created); the family's child list is collected once
    /// per family.
    pub fn encode(&self, format: Format, out: &mut Vec<u8>) {
        let mut w = MetricWriter::encoder(out, format);
        self.write(&mut w);
        w.finish();
    }

    /// Every family as owned values, with `_created` samples and numeric
    /// labels (`le`, `quantile`) in the OpenMetrics canonical form.
    pub fn gather(&self) -> Vec<MetricFamily> {
        let mut out = Vec::new();
        let mut w = MetricWriter::gather(&mut out);
        self.write(&mut w);
        w.finish();
        out
    }

    fn write(&self, w: &mut MetricWriter<'_>) {
        let node = &*self.node;
        let items = node.items.read().unwrap_or_else(PoisonError::into_inner);
        for item in items.iter() {
            match item {
                Item::Metric {
                    name,
                    help,
                    unit,
                    metric,
                } => {
                    w.begin_family(name, metric.metric_type(), help.as_deref(), unit.as_deref());
                    metric.encode(
                        w,
                        &Fam {
                            name,
                            consts: &node.consts,
                        },
                    );
                }
                Item::Collector(c) => {
                    c.collect(&mut CollectorWriter::new(
                        w,
                        node.prefix.as_deref(),
                        &node.consts,
                    ));
                }
                Item::Sub(sub) => sub.write(w),
            }
        }
    }
}

fn check_unit(unit: &str, ty: MetricType) -> Result<()> {
    let reason = if matches!(ty, MetricType::Info | MetricType::StateSet) {
        "info and stateset metrics have no unit"
    } else if !unit
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
    {
        "a unit is made of letters, digits, '_' and ':'"
    } else {
        return Ok(());
    };
    Err(Error::InvalidName {
        what: "unit",
        name: unit.to_owned(),
        reason,
    })
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new()
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let items = self
            .node
            .items
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("Registry")
            .field("prefix", &self.node.prefix)
            .field("labels", &self.node.consts.pairs)
            .field("items", &items.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{Counter, Gauge, Histogram, Info, StateSet};

    #[test]
    fn duplicate_and_clashing_names_are_refused() {
        let r = Registry::new();
        r.register("foo", "", Counter::<u64>::new()).unwrap();
        let e = r
            .register("foo_total", "", Counter::<u64>::new())
            .unwrap_err();
        assert!(
            matches!(e, Error::AlreadyRegistered(ref n) if n == "foo"),
            "{e}"
        );
        assert!(r.register("foo_created", "", Gauge::<i64>::new()).is_err());
        assert!(r.register("foo", "", Gauge::<i64>::new()).is_err());
        let sub = r.sub_registry_with_prefix("a");
        sub.register("b", "", Histogram::default()).unwrap();
        assert!(r.register("a_b_count", "", Gauge::<i64>::new()).is_err());
        assert!(r.register("", "", Gauge::<i64>::new()).is_err());
    }

    #[test]
    fn units_are_suffixes_and_checked() {
        let r = Registry::new();
        r.register_with_unit("latency", "", "seconds", Histogram::default())
            .unwrap();
        r.register_with_unit("size_bytes", "", "bytes", Gauge::<i64>::new())
            .unwrap();
        let names: Vec<String> = r.gather().into_iter().map(|f| f.name).collect();
        assert_eq!(names, ["latency_seconds", "size_bytes"]);
        assert!(
            r.register_with_unit("x", "", "sec onds", Gauge::<i64>::new())
                .is_err()
        );
        let info = Info::new(&vec![("v", "1")]);
        assert!(r.register_with_unit("build", "", "bytes", info).is_err());
        assert!(r.register("__state", "", StateSet::new(&["a"])).is_err());
    }

    #[test]
    fn constant_labels_are_checked() {
        let r = Registry::new();
        assert!(r.sub_registry_with_labels(&[("__x", "1")]).is_err());
        let s = r.sub_registry_with_labels(&[("a", "1")]).unwrap();
        assert!(s.sub_registry_with_labels(&[("a", "2")]).is_err());
    }
}
