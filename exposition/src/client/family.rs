//! Families: one metric per label set, keyed by the user's label type.
//!
//! Design. The children live in a [`papaya::HashMap`], a lock-free hash map
//! whose readers take no lock and write no shared memory: a lookup pins the
//! map's epoch collector (a store to this thread's own slot), hashes the key
//! with foldhash, and follows pointers. So looking up an existing child from
//! many threads scales like reading, which a `RwLock<HashMap>` (one reader
//! count bounced between cores) does not. The lookup hands out a reference
//! valid while the pin lasts — [`Family::with`] or [`Family::pin`] — rather
//! than an `Arc` clone, whose count would be another shared cache line.
//! Creating a child allocates (the entry, the rendered labels, the metric)
//! and may race with another creator; papaya keeps the first.
//!
//! Each child's labels are rendered to bytes when it is created, so a scrape
//! copies them. Children are written in creation order (a sequence number),
//! so output is stable from scrape to scrape.

use std::fmt;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use papaya::{HashMap, LocalGuard};

use super::labels::{LabelSet, LabelWriter};
use super::metric::{ChildLabels, Fam, Metric, MetricWriter, render_label, sealed::EncodeMetric};
use crate::error::{Error, Result};
use crate::model::MetricType;
use crate::names::check_label_name;

type Hasher = foldhash::fast::RandomState;

/// One metric of type `M` per label set of type `L`, created on first use.
///
/// `L` is any [`LabelSet`]: an array or tuple of values named by
/// [`with_label_names`](Family::with_label_names) (`[&'static str; 2]`,
/// `(Method, u16)`), pairs (`Vec<(String, String)>`), or a struct of your own
/// ([`label_set!`](crate::label_set)).
///
/// Looking up an existing child takes no lock and allocates nothing:
///
/// ```
/// use vigil_exposition::client::{Counter, Family, Registry};
/// use vigil_exposition::Format;
///
/// let registry = Registry::new();
/// let requests = Family::<[&'static str; 2], Counter>::with_label_names(&["method", "code"]);
/// registry.register("http_requests", "Requests served.", requests.clone())?;
///
/// requests.with(&["GET", "200"], |c| c.inc());          // a closure over the child
/// requests.pin().get_or_create(&["GET", "200"]).inc();  // or a pinned reference
/// let post = requests.get_or_create(&["POST", "500"]);  // or an owned handle to keep
/// post.inc();
///
/// let mut out = Vec::new();
/// registry.encode(Format::Text, &mut out);
/// assert_eq!(String::from_utf8(out).unwrap(), "\
/// ## HELP http_requests_total Requests served.
/// ## TYPE http_requests_total counter
/// http_requests_total{method=\"GET\",code=\"200\"} 2
/// http_requests_total{method=\"POST\",code=\"500\"} 1
/// ");
/// # Ok::<(), vigil_exposition::Error>(())
/// ```
///
/// A label set is checked when its child is created: its names must be
/// valid label names, distinct, not the one the metric type writes itself
/// (`le` for histograms, `quantile` for summaries), and a set of values must
/// have as many values as the family has names. [`with`](Family::with) and
/// [`get_or_create`](Family::get_or_create) panic on a label set that fails
/// (it is a mistake in the program, found the first time that label set is
/// used); the `try_` forms return the error.
pub struct Family<L, M> {
    inner: Arc<Inner<L, M>>,
}

type Constructor<M> = Box<dyn Fn() -> M + Send + Sync>;

struct Inner<L, M> {
    map: HashMap<L, Child<M>, Hasher>,
    names: Box<[String]>,
    make: Constructor<M>,
    metric_type: MetricType,
    reserved: Option<&'static str>,
    next_seq: AtomicU64,
}

struct Child<M> {
    metric: M,
    rendered: Box<[u8]>,
    seq: u64,
}

/// Configures a [`Family`]: label names and how children are made.
pub struct FamilyBuilder<M> {
    names: Vec<String>,
    make: Option<Constructor<M>>,
}

impl<M: Metric + Clone> FamilyBuilder<M> {
    /// The names of the labels, for label sets that give only values
    /// (arrays, tuples).
    pub fn label_names<S: AsRef<str>>(mut self, names: &[S]) -> Self {
        self.names = names.iter().map(|s| s.as_ref().to_owned()).collect();
        self
    }

    /// How a child is made (`|| Histogram::new(buckets.clone())`); `M::default`
    /// otherwise.
    pub fn constructor(mut self, make: impl Fn() -> M + Send + Sync + 'static) -> Self {
        self.make = Some(Box::new(make));
        self
    }

    /// Builds the family.
    pub fn build<L: LabelSet + Eq + Hash + Clone + Send + Sync + 'static>(self) -> Family<L, M>
    where
        M: Default,
    {
        let make = self.make.unwrap_or_else(|| Box::new(M::default));
        Family::from_parts(self.names, make)
    }

    /// Builds the family, for metric types without a default (a
    /// [`StateSet`](super::StateSet), an [`Info`](super::Info)).
    ///
    /// # Panics
    ///
    /// When no [`constructor`](FamilyBuilder::constructor) was given.
    pub fn build_with_constructor<L: LabelSet + Eq + Hash + Clone + Send + Sync + 'static>(
        self,
    ) -> Family<L, M> {
        let make = self
            .make
            .expect("FamilyBuilder::build_with_constructor needs a constructor");
        Family::from_parts(self.names, make)
    }
}

impl<L, M> Family<L, M>
where
    L: LabelSet + Eq + Hash + Clone + Send + Sync + 'static,
    M: Metric + Clone,
{
    /// A family whose label sets name their labels, children made by
    /// `M::default()`.
    pub fn new() -> Self
    where
        M: Default,
    {
        Family::from_parts(Vec::new(), Box::new(M::default))
    }

    /// A family whose label sets give values for these names, children made
    /// by `M::default()`.
    pub fn with_label_names<S: AsRef<str>>(names: &[S]) -> Self
    where
        M: Default,
    {
        Family::from_parts(
            names.iter().map(|s| s.as_ref().to_owned()).collect(),
            Box::new(M::default),
        )
    }

    /// A family whose label sets name their labels, children made by `make`.
    pub fn new_with(make: impl Fn() -> M + Send + Sync + 'static) -> Self {
        Family::from_parts(Vec::new(), Box::new(make))
    }

    /// Label names and a constructor together.
    ///
    /// ```
    /// use vigil_exposition::client::{Family, Histogram, linear_buckets};
    ///
    /// let sizes = Family::<[&'static str; 1], Histogram>::builder()
    ///     .label_names(&["route"])
    ///     .constructor(|| Histogram::new(linear_buckets(100.0, 100.0, 5)))
    ///     .build();
    /// sizes.with(&["/upload"], |h| h.observe(250.0));
    /// ```
    pub fn builder() -> FamilyBuilder<M> {
        FamilyBuilder {
            names: Vec::new(),
            make: None,
        }
    }

    fn from_parts(names: Vec<String>, make: Constructor<M>) -> Self {
        let prototype = make();
        let (metric_type, reserved) = (prototype.metric_type(), prototype.reserved_label());
        Family {
            inner: Arc::new(Inner {
                map: HashMap::builder().hasher(Hasher::default()).build(),
                names: names.into_boxed_slice(),
                make,
                metric_type,
                reserved,
                next_seq: AtomicU64::new(0),
            }),
        }
    }

    /// Runs `f` on the child for `labels`, creating it first if needed.
    /// For an existing child: no lock, no allocation.
    ///
    /// # Panics
    ///
    /// When a new label set is invalid (see the type's docs).
    #[inline]
    pub fn with<R>(&self, labels: &L, f: impl FnOnce(&M) -> R) -> R {
        let guard = self.inner.map.guard();
        let child = match self.inner.map.get(labels, &guard) {
            Some(child) => child,
            None => self
                .inner
                .create(labels, &guard)
                .unwrap_or_else(|e| panic!("{e}")),
        };
        f(&child.metric)
    }

    /// As [`with`](Family::with), returning the error of an invalid new
    /// label set.
    pub fn try_with<R>(&self, labels: &L, f: impl FnOnce(&M) -> R) -> Result<R> {
        let guard = self.inner.map.guard();
        let child = match self.inner.map.get(labels, &guard) {
            Some(child) => child,
            None => self.inner.create(labels, &guard)?,
        };
        Ok(f(&child.metric))
    }

    /// An owned handle to the child for `labels`, created if needed. Keep it
    /// where the labels are known in advance; in a hot loop, [`with`]
    /// avoids the reference-count increment (a write to memory every thread
    /// shares).
    ///
    /// # Panics
    ///
    /// When a new label set is invalid (see the type's docs).
    ///
    /// [`with`]: Family::with
    pub fn get_or_create(&self, labels: &L) -> M {
        self.with(labels, M::clone)
    }

    /// As [`get_or_create`](Family::get_or_create), returning the error of an
    /// invalid new label set.
    pub fn try_get_or_create(&self, labels: &L) -> Result<M> {
        self.try_with(labels, M::clone)
    }

    /// An owned handle to the child for `labels`, if it exists.
    pub fn get(&self, labels: &L) -> Option<M> {
        let guard = self.inner.map.guard();
        self.inner.map.get(labels, &guard).map(|c| c.metric.clone())
    }

    /// Pins the family for lookups that return references (valid while the
    /// [`FamilyRef`] lives). Hold it for a short while: memory of removed
    /// children is reclaimed only once no pin that saw them remains.
    pub fn pin(&self) -> FamilyRef<'_, L, M> {
        FamilyRef {
            inner: &self.inner,
            guard: self.inner.map.guard(),
        }
    }

    /// Removes the child for `labels` (it is no longer written); `true` when
    /// there was one. Handles to it keep working but are not exported.
    pub fn remove(&self, labels: &L) -> bool {
        let guard = self.inner.map.guard();
        self.inner.map.remove(labels, &guard).is_some()
    }

    /// Removes every child.
    pub fn clear(&self) {
        let guard = self.inner.map.guard();
        self.inner.map.clear(&guard);
    }

    /// The number of children.
    pub fn len(&self) -> usize {
        self.inner.map.len()
    }

    /// Whether the family has no children.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A pinned [`Family`]: lookups return references valid while it lives.
pub struct FamilyRef<'f, L, M> {
    inner: &'f Inner<L, M>,
    guard: LocalGuard<'f>,
}

impl<L, M> FamilyRef<'_, L, M>
where
    L: LabelSet + Eq + Hash + Clone + Send + Sync + 'static,
    M: Metric + Clone,
{
    /// The child for `labels`, created if needed.
    ///
    /// # Panics
    ///
    /// When a new label set is invalid (see [`Family`]).
    #[inline]
    pub fn get_or_create(&self, labels: &L) -> &M {
        match self.inner.map.get(labels, &self.guard) {
            Some(child) => &child.metric,
            None => {
                &self
                    .inner
                    .create(labels, &self.guard)
                    .unwrap_or_else(|e| panic!("{e}"))
                    .metric
            }
        }
    }

    /// The child for `labels`, created if needed, or the error of an invalid
    /// new label set.
    pub fn try_get_or_create(&self, labels: &L) -> Result<&M> {
        match self.inner.map.get(labels, &self.guard) {
            Some(child) => Ok(&child.metric),
            None => Ok(&self.inner.create(labels, &self.guard)?.metric),
        }
    }

    /// The child for `labels`, if it exists.
    #[inline]
    pub fn get(&self, labels: &L) -> Option<&M> {
        self.inner.map.get(labels, &self.guard).map(|c| &c.metric)
    }
}

impl<L, M> Inner<L, M>
where
    L: LabelSet + Eq + Hash + Clone + Send + Sync + 'static,
    M: Metric + Clone,
{
    /// Checks and renders a new label set, and inserts its child (or finds
    /// the one a concurrent creator inserted first).
    #[cold]
    fn create<'g>(&self, labels: &L, guard: &'g LocalGuard<'_>) -> Result<&'g Child<M>> {
        let mut rendered = Vec::new();
        let mut seen: Vec<String> = Vec::new();
        let mut bad: Option<Error> = None;
        let mut sink = |name: &str, value: &str| {
            if bad.is_some() {
                return;
            }
            if let Err(e) = check_label_name(name) {
                bad = Some(e);
            } else if seen.iter().any(|s| s == name) {
                bad = Some(invalid(name, "appears twice in the label set"));
            } else if self.reserved == Some(name) {
                bad = Some(invalid(name, "is written by the metric type itself"));
            }
            seen.push(name.to_owned());
            render_label(&mut rendered, name, value);
        };
        let mut w = LabelWriter::new(&self.names, &mut sink);
        labels.write_labels(&mut w);
        let count_ok = w.values_match();
        if let Some(e) = bad {
            return Err(e);
        }
        if !count_ok {
            return Err(Error::InvalidName {
                what: "label set",
                name: String::from_utf8_lossy(&rendered).into_owned(),
                reason: if self.names.is_empty() {
                    "gives values, but the family has no label names"
                } else {
                    "does not give one value per label name of the family"
                },
            });
        }
        let child = Child {
            metric: (self.make)(),
            rendered: rendered.into_boxed_slice(),
            seq: self.next_seq.fetch_add(1, Ordering::Relaxed),
        };
        Ok(self.map.get_or_insert(labels.clone(), child, guard))
    }
}

fn invalid(name: &str, reason: &'static str) -> Error {
    Error::InvalidName {
        what: "label name",
        name: name.to_owned(),
        reason,
    }
}

impl<L, M> Default for Family<L, M>
where
    L: LabelSet + Eq + Hash + Clone + Send + Sync + 'static,
    M: Metric + Clone + Default,
{
    fn default() -> Self {
        Family::new()
    }
}

impl<L, M> Clone for Family<L, M> {
    fn clone(&self) -> Self {
        Family {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<L: Eq + Hash, M> fmt::Debug for Family<L, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Family")
            .field("type", &self.inner.metric_type)
            .field("label_names", &self.inner.names)
            .field("children", &self.inner.map.len())
            .finish()
    }
}

impl<L, M> EncodeMetric for Family<L, M>
where
    L: LabelSet + Eq + Hash + Clone + Send + Sync + 'static,
    M: Metric + Clone,
{
    fn metric_type(&self) -> MetricType {
        self.inner.metric_type
    }

    fn encode(&self, w: &mut MetricWriter<'_>, fam: &Fam<'_>) {
        self.encode_child(w, fam, &ChildLabels::NONE);
    }

    fn encode_child(&self, w: &mut MetricWriter<'_>, fam: &Fam<'_>, parent: &ChildLabels<'_>) {
        let guard = self.inner.map.guard();
        let mut children: Vec<(&L, &Child<M>)> = self.inner.map.iter(&guard).collect();
        children.sort_unstable_by_key(|(_, c)| c.seq);
        let names = &self.inner.names;
        let mut combined = Vec::new();
        for (key, child) in children {
            let pairs = |f: &mut dyn FnMut(&str, &str)| {
                if let Some(p) = parent.pairs {
                    p(f);
                }
                let mut lw = LabelWriter::new(names, f);
                key.write_labels(&mut lw);
            };
            // A family inside a family (unusual) writes the outer labels first.
            let rendered: &[u8] = if parent.rendered.is_empty() {
                &child.rendered
            } else {
                combined.clear();
                combined.extend_from_slice(parent.rendered);
                if !child.rendered.is_empty() {
                    combined.push(b',');
                    combined.extend_from_slice(&child.rendered);
                }
                &combined
            };
            child.metric.encode_child(
                w,
                fam,
                &ChildLabels {
                    rendered,
                    pairs: Some(&pairs),
                },
            );
        }
    }

    fn reserved_label(&self) -> Option<&'static str> {
        self.inner.reserved
    }

    fn validate(&self) -> Result<()> {
        for (i, name) in self.inner.names.iter().enumerate() {
            check_label_name(name)?;
            if self.inner.names[..i].contains(name) {
                return Err(invalid(name, "appears twice in the family's label names"));
            }
            if self.inner.reserved == Some(name.as_str()) {
                return Err(invalid(name, "is written by the metric type itself"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{Counter, Histogram};

    #[test]
    fn children_are_created_once_and_shared() {
        let f = Family::<Vec<(String, String)>, Counter>::new();
        let key = vec![("a".to_owned(), "1".to_owned())];
        f.with(&key, |c| c.inc());
        f.get_or_create(&key).inc();
        assert_eq!(f.get(&key).map(|c| c.get()), Some(2));
        assert_eq!(f.len(), 1);
        assert!(f.remove(&key));
        assert!(f.get(&key).is_none());
        assert!(f.is_empty());
    }

    #[test]
    fn invalid_label_sets_are_refused() {
        let f = Family::<[&'static str; 2], Counter>::with_label_names(&["a"]);
        assert!(f.try_with(&["x", "y"], |_| ()).is_err());
        let f = Family::<[&'static str; 1], Counter>::new();
        assert!(f.try_get_or_create(&["x"]).is_err());
        let f = Family::<Vec<(&'static str, &'static str)>, Counter>::new();
        assert!(f.try_get_or_create(&vec![("a", "1"), ("a", "2")]).is_err());
        assert!(f.try_get_or_create(&vec![("__a", "1")]).is_err());
        let h = Family::<Vec<(&'static str, &'static str)>, Histogram>::new();
        let err = h.try_get_or_create(&vec![("le", "1")]).unwrap_err();
        assert!(
            err.to_string().contains("written by the metric type"),
            "{err}"
        );
        assert!(h.is_empty());
    }

    #[test]
    #[should_panic(expected = "does not give one value per label name")]
    fn with_panics_on_a_wrong_value_count() {
        let f = Family::<[&'static str; 1], Counter>::with_label_names(&["a", "b"]);
        f.with(&["x"], |c| c.inc());
    }
}
