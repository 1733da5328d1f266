//! Families: one metric per label set, keyed by the user's label type.
//!
//! Design. The children live in a [`papaya::HashMap`], a lock-free hash map
//! whose readers take no lock and bump no shared counter: a lookup pins the
//! map's epoch collector (a store to this thread's own slot on entry, an
//! atomic exchange on it on exit), hashes the key with foldhash, and follows
//! pointers. The lookup hands out a reference valid while the pin lasts
//! rather than an `Arc` clone, whose count would be a cache line every
//! thread writes. Creating a child allocates (the entry, the rendered
//! labels, the metric) and may race with another creator; papaya keeps the
//! first.
//!
//! In front of the map, [`Family::with`] asks a small cache per thread (64
//! slots shared by every family the thread uses). A slot holds a child this
//! thread found, under the family's id, the key's hash (a cheap one of the
//! cache's own, not foldhash) and the family's generation, which every
//! removal bumps so that a removed child is never served. Each family also
//! remembers, per thread, the slot of its last hit: a thread that uses the
//! same label set again compares that child's key without hashing, and
//! otherwise hashes the key and compares the key in its slot. A hit makes no
//! atomic read-modify-write at all (the epoch pin makes one) and writes only
//! this thread's memory. A miss goes to the map and fills the slot (cloning
//! the child's `Arc`: the only shared write, once per thread and child while
//! the slot holds it). The slots keep their children alive until
//! overwritten or the thread ends, so a removed child's memory can outlive
//! its removal by up to 64 slots per thread.
//!
//! Keys can be looked up borrowed ([`LabelKey`]): a `Family<[String; 2], _>`
//! takes `&["GET", "200"]`, and an owned key is built only to create a
//! child.
//!
//! Each child's labels are rendered to bytes when it is created, so a scrape
//! copies them. Children are written in creation order (a sequence number),
//! so output is stable from scrape to scrape.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::hash::{Hash, Hasher as _};
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use papaya::{Equivalent, HashMap, LocalGuard};

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
    map: HashMap<L, Arc<Child<L, M>>, Hasher>,
    names: Box<[String]>,
    make: Constructor<M>,
    metric_type: MetricType,
    reserved: Option<&'static str>,
    next_seq: AtomicU64,
    /// Unique among families: names this family in the threads' caches.
    id: u64,
    /// Bumped by every removal: a cached child of an older generation may
    /// have been removed, so it is looked up again.
    generation: AtomicU64,
}

struct Child<L, M> {
    key: L,
    metric: M,
    rendered: Box<[u8]>,
    seq: u64,
}

/// A label set that finds the child of a `Family<L, _>` without being an
/// `L`: a borrowed form of the key, so that a lookup builds no owned key.
///
/// Implemented for every key type itself, and for `&str` forms of `String`
/// keys: `[&str; N]` for `[String; N]`, tuples of `&str` for tuples of
/// `String` (up to eight), and `[(&str, &str)]` or `[(&str, &str); N]` for
/// `Vec<(String, String)>`.
///
/// ```
/// use vigil_exposition::client::{Counter, Family};
///
/// let requests = Family::<[String; 2], Counter>::with_label_names(&["method", "code"]);
/// requests.with(&["GET", "200"], |c| c.inc()); // no String built once the child exists
/// requests.with(&["GET".to_owned(), "200".to_owned()], |c| c.inc());
/// assert_eq!(requests.get(&["GET", "200"]).map(|c| c.get()), Some(2));
/// ```
///
/// An implementation must hash exactly as the `L` it stands for does (feed
/// the hasher the same calls), or lookups of existing children miss and go
/// the slow way.
pub trait LabelKey<L> {
    /// Feeds the hasher as `L::hash` would for the equal key.
    fn hash_key<H: std::hash::Hasher>(&self, state: &mut H);
    /// Whether this is the label set `key`.
    fn matches(&self, key: &L) -> bool;
    /// The owned label set, built when its child is created.
    fn to_key(&self) -> L;
}

impl<L: Eq + Hash + Clone> LabelKey<L> for L {
    #[inline]
    fn hash_key<H: std::hash::Hasher>(&self, state: &mut H) {
        self.hash(state);
    }
    #[inline]
    fn matches(&self, key: &L) -> bool {
        self == key
    }
    fn to_key(&self) -> L {
        self.clone()
    }
}

impl<const N: usize> LabelKey<[String; N]> for [&str; N] {
    #[inline]
    fn hash_key<H: std::hash::Hasher>(&self, state: &mut H) {
        // As `[String; N]::hash`: the slice's length, then each string.
        self[..].hash(state);
    }
    #[inline]
    fn matches(&self, key: &[String; N]) -> bool {
        self.iter().zip(key).all(|(a, b)| *a == b)
    }
    fn to_key(&self) -> [String; N] {
        self.map(str::to_owned)
    }
}

impl LabelKey<Vec<(String, String)>> for [(&str, &str)] {
    #[inline]
    fn hash_key<H: std::hash::Hasher>(&self, state: &mut H) {
        self.hash(state);
    }
    #[inline]
    fn matches(&self, key: &Vec<(String, String)>) -> bool {
        self.len() == key.len() && self.iter().zip(key).all(|(a, b)| a.0 == b.0 && a.1 == b.1)
    }
    fn to_key(&self) -> Vec<(String, String)> {
        self.iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }
}

impl<const N: usize> LabelKey<Vec<(String, String)>> for [(&str, &str); N] {
    #[inline]
    fn hash_key<H: std::hash::Hasher>(&self, state: &mut H) {
        self[..].hash(state);
    }
    #[inline]
    fn matches(&self, key: &Vec<(String, String)>) -> bool {
        self[..].matches(key)
    }
    fn to_key(&self) -> Vec<(String, String)> {
        self[..].to_key()
    }
}

macro_rules! str_tuple_key {
    (@string $i:tt) => { String };
    (@str $i:tt) => { &str };
    ($($i:tt),+) => {
        impl LabelKey<($(str_tuple_key!(@string $i),)+)> for ($(str_tuple_key!(@str $i),)+) {
            #[inline]
            fn hash_key<H: std::hash::Hasher>(&self, state: &mut H) {
                // As the `String` tuple: each element in order.
                $( self.$i.hash(state); )+
            }
            #[inline]
            fn matches(&self, key: &($(str_tuple_key!(@string $i),)+)) -> bool {
                true $( && self.$i == key.$i )+
            }
            fn to_key(&self) -> ($(str_tuple_key!(@string $i),)+) {
                ($( self.$i.to_owned(), )+)
            }
        }
    };
}

str_tuple_key!(0);
str_tuple_key!(0, 1);
str_tuple_key!(0, 1, 2);
str_tuple_key!(0, 1, 2, 3);
str_tuple_key!(0, 1, 2, 3, 4);
str_tuple_key!(0, 1, 2, 3, 4, 5);
str_tuple_key!(0, 1, 2, 3, 4, 5, 6);
str_tuple_key!(0, 1, 2, 3, 4, 5, 6, 7);

/// A borrowed key as papaya sees it: hashed by [`LabelKey::hash_key`],
/// compared by [`LabelKey::matches`].
struct Probe<'q, Q: ?Sized, L>(&'q Q, PhantomData<fn() -> L>);

impl<'q, Q: ?Sized + LabelKey<L>, L> Probe<'q, Q, L> {
    fn new(q: &'q Q) -> Self {
        Probe(q, PhantomData)
    }
}

impl<Q: ?Sized + LabelKey<L>, L> Equivalent<L> for Probe<'_, Q, L> {
    #[inline]
    fn equivalent(&self, key: &L) -> bool {
        self.0.matches(key)
    }
}

impl<Q: ?Sized + LabelKey<L>, L> Hash for Probe<'_, Q, L> {
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash_key(state);
    }
}

/// Configures a [`Family`]: label names and how children are made.
pub struct FamilyBuilder<L, M> {
    names: Vec<String>,
    make: Option<Constructor<M>>,
    key: PhantomData<fn() -> L>,
}

impl<L, M> FamilyBuilder<L, M>
where
    L: LabelSet + Eq + Hash + Clone + Send + Sync + 'static,
    M: Metric + Clone,
{
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
    pub fn build(self) -> Family<L, M>
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
    pub fn build_with_constructor(self) -> Family<L, M> {
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
    pub fn builder() -> FamilyBuilder<L, M> {
        FamilyBuilder {
            key: PhantomData,
            names: Vec::new(),
            make: None,
        }
    }

    fn from_parts(names: Vec<String>, make: Constructor<M>) -> Self {
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
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
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                generation: AtomicU64::new(0),
            }),
        }
    }

    /// Runs `f` on the child for `labels`, creating it first if needed.
    /// For an existing child: no lock, no allocation, and (after this
    /// thread's first lookup of it) no write to memory other threads use.
    /// `labels` is the key or a borrowed form of it ([`LabelKey`]).
    ///
    /// # Panics
    ///
    /// When a new label set is invalid (see the type's docs).
    #[inline]
    pub fn with<Q, R>(&self, labels: &Q, f: impl FnOnce(&M) -> R) -> R
    where
        Q: LabelKey<L> + ?Sized,
    {
        self.try_with(labels, f).unwrap_or_else(|e| panic!("{e}"))
    }

    /// As [`with`](Family::with), returning the error of an invalid new
    /// label set.
    #[inline]
    pub fn try_with<Q, R>(&self, labels: &Q, f: impl FnOnce(&M) -> R) -> Result<R>
    where
        Q: LabelKey<L> + ?Sized,
    {
        let inner = &*self.inner;
        let generation = inner.generation.load(Ordering::Relaxed);
        let found = cache::lookup(
            inner.id,
            generation,
            |child: &Child<L, M>| labels.matches(&child.key),
            || cache::hash(labels),
            |child: &Child<L, M>| f(&child.metric),
        );
        match found {
            Ok(r) => Ok(r),
            Err(miss) => {
                let hash = miss.hash.unwrap_or_else(|| cache::hash(labels));
                inner.with_slow(labels, hash, generation, miss.f)
            }
        }
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
    pub fn get_or_create<Q: LabelKey<L> + ?Sized>(&self, labels: &Q) -> M {
        self.with(labels, M::clone)
    }

    /// As [`get_or_create`](Family::get_or_create), returning the error of an
    /// invalid new label set.
    pub fn try_get_or_create<Q: LabelKey<L> + ?Sized>(&self, labels: &Q) -> Result<M> {
        self.try_with(labels, M::clone)
    }

    /// An owned handle to the child for `labels`, if it exists.
    pub fn get<Q: LabelKey<L> + ?Sized>(&self, labels: &Q) -> Option<M> {
        let guard = self.inner.map.guard();
        self.inner
            .map
            .get(&Probe::new(labels), &guard)
            .map(|c| c.metric.clone())
    }

    /// Pins the family for lookups that return references (valid while the
    /// [`FamilyRef`] lives). Hold it for a short while: memory of removed
    /// children is reclaimed only once no pin that saw them remains.
    /// Lookups through a pin go to the map (one atomic exchange when the pin
    /// is dropped), not to the per-thread cache that [`with`](Family::with)
    /// uses.
    pub fn pin(&self) -> FamilyRef<'_, L, M> {
        FamilyRef {
            inner: &self.inner,
            guard: self.inner.map.guard(),
        }
    }

    /// Removes the child for `labels` (it is no longer written); `true` when
    /// there was one. Handles to it keep working but are not exported.
    pub fn remove<Q: LabelKey<L> + ?Sized>(&self, labels: &Q) -> bool {
        let guard = self.inner.map.guard();
        let removed = self.inner.map.remove(&Probe::new(labels), &guard).is_some();
        self.inner.generation.fetch_add(1, Ordering::Relaxed);
        removed
    }

    /// Removes every child.
    pub fn clear(&self) {
        let guard = self.inner.map.guard();
        self.inner.map.clear(&guard);
        self.inner.generation.fetch_add(1, Ordering::Relaxed);
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
    pub fn get_or_create<Q: LabelKey<L> + ?Sized>(&self, labels: &Q) -> &M {
        self.try_get_or_create(labels)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The child for `labels`, created if needed, or the error of an invalid
    /// new label set.
    #[inline]
    pub fn try_get_or_create<Q: LabelKey<L> + ?Sized>(&self, labels: &Q) -> Result<&M> {
        match self.inner.map.get(&Probe::new(labels), &self.guard) {
            Some(child) => Ok(&child.metric),
            None => Ok(&self.inner.create(labels, &self.guard)?.metric),
        }
    }

    /// The child for `labels`, if it exists.
    #[inline]
    pub fn get<Q: LabelKey<L> + ?Sized>(&self, labels: &Q) -> Option<&M> {
        self.inner
            .map
            .get(&Probe::new(labels), &self.guard)
            .map(|c| &c.metric)
    }
}

impl<L, M> Inner<L, M>
where
    L: LabelSet + Eq + Hash + Clone + Send + Sync + 'static,
    M: Metric + Clone,
{
    /// A lookup the thread's cache did not answer: through the map, then
    /// remembered in the cache.
    #[cold]
    fn with_slow<Q, R>(
        &self,
        labels: &Q,
        hash: u64,
        generation: u64,
        f: impl FnOnce(&Child<L, M>) -> R,
    ) -> Result<R>
    where
        Q: LabelKey<L> + ?Sized,
    {
        let guard = self.map.guard();
        let child = match self.map.get(&Probe::new(labels), &guard) {
            Some(child) => child,
            None => self.create(labels, &guard)?,
        };
        let shared: Arc<dyn Any + Send + Sync> = Arc::clone(child) as _;
        cache::remember(self.id, hash, generation, shared);
        Ok(f(child))
    }

    /// Checks and renders a new label set, and inserts its child (or finds
    /// the one a concurrent creator inserted first).
    #[cold]
    fn create<'g, Q>(&self, labels: &Q, guard: &'g LocalGuard<'_>) -> Result<&'g Arc<Child<L, M>>>
    where
        Q: LabelKey<L> + ?Sized,
    {
        let key = labels.to_key();
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
        key.write_labels(&mut w);
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
        let child = Arc::new(Child {
            key: key.clone(),
            metric: (self.make)(),
            rendered: rendered.into_boxed_slice(),
            seq: self.next_seq.fetch_add(1, Ordering::Relaxed),
        });
        Ok(self.map.get_or_insert(key, child, guard))
    }
}

/// The per-thread cache of looked-up children (see the module docs).
mod cache {
    use super::*;

    /// The cache's hash of a key. Not the map's (foldhash, seeded per
    /// family, which resists keys chosen to collide): a cache slot only
    /// needs a well-spread index, and a collision costs a trip to the map,
    /// never a wrong child, as the key is compared. This one costs a
    /// multiplication per 8 bytes where foldhash's path through
    /// `Hash::hash_slice` took ~120 instructions for `["GET", "200"]`.
    #[inline]
    pub(super) fn hash<Q: LabelKey<L> + ?Sized, L>(labels: &Q) -> u64 {
        let mut h = Quick(0);
        labels.hash_key(&mut h);
        h.finish()
    }

    struct Quick(u64);

    const K: u64 = 0x9e37_79b9_7f4a_7c15;

    #[inline]
    fn mix(h: u64, w: u64) -> u64 {
        (h.rotate_left(26) ^ w).wrapping_mul(K)
    }

    impl std::hash::Hasher for Quick {
        #[inline]
        fn write(&mut self, bytes: &[u8]) {
            let mut h = self.0;
            let mut chunks = bytes.chunks_exact(8);
            for c in &mut chunks {
                let mut w = [0u8; 8];
                w.copy_from_slice(c);
                h = mix(h, u64::from_le_bytes(w));
            }
            let rest = chunks.remainder();
            let n = rest.len();
            // 1 to 7 bytes without a variable-length copy: two overlapping
            // 4-byte reads, or the first, middle and last bytes.
            let tail = if n >= 4 {
                let lo = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
                let hi = u32::from_le_bytes([rest[n - 4], rest[n - 3], rest[n - 2], rest[n - 1]]);
                u64::from(lo) | u64::from(hi) << 32
            } else if n > 0 {
                u64::from(rest[0]) | u64::from(rest[n / 2]) << 8 | u64::from(rest[n - 1]) << 16
            } else {
                0
            };
            self.0 = mix(h, tail ^ (n as u64) << 56);
        }

        #[inline]
        fn write_u8(&mut self, i: u8) {
            self.0 = mix(self.0, u64::from(i));
        }

        #[inline]
        fn write_u16(&mut self, i: u16) {
            self.0 = mix(self.0, u64::from(i));
        }

        #[inline]
        fn write_u32(&mut self, i: u32) {
            self.0 = mix(self.0, u64::from(i));
        }

        #[inline]
        fn write_u64(&mut self, i: u64) {
            self.0 = mix(self.0, i);
        }

        #[inline]
        fn write_usize(&mut self, i: usize) {
            self.0 = mix(self.0, i as u64);
        }

        #[inline]
        fn finish(&self) -> u64 {
            // Spread the high bits (the slot index) over the whole input.
            let h = self.0;
            (h ^ (h >> 29)).wrapping_mul(K) ^ (h >> 32)
        }
    }

    const SLOTS: usize = 64;

    struct Slot {
        family: u64,
        hash: u64,
        generation: u64,
        child: Arc<dyn Any + Send + Sync>,
    }

    /// The slots, and for each family (by its id modulo `SLOTS`) the slot
    /// of the last child it found: a thread that looks up the same label
    /// set again and again compares that child's key without hashing.
    struct Cache {
        slots: RefCell<[Option<Slot>; SLOTS]>,
        last: [Cell<u8>; SLOTS],
    }

    thread_local! {
        static CACHE: Cache = const {
            Cache {
                slots: RefCell::new([const { None }; SLOTS]),
                last: [const { Cell::new(0) }; SLOTS],
            }
        };
    }

    #[inline]
    fn index(family: u64, hash: u64) -> usize {
        // The family's id spreads families that share keys over different
        // slots.
        ((hash ^ family.wrapping_mul(K)).wrapping_mul(K) >> (64 - SLOTS.trailing_zeros())) as usize
    }

    #[inline]
    fn last_of(family: u64) -> usize {
        (family % SLOTS as u64) as usize
    }

    /// The child in slot `i` if it is `family`'s, of this generation.
    #[inline]
    fn child_in<T: Any>(
        slots: &[Option<Slot>; SLOTS],
        i: usize,
        family: u64,
        generation: u64,
    ) -> Option<(&Slot, &T)> {
        let slot = slots.get(i)?.as_ref()?;
        if slot.family != family || slot.generation != generation {
            return None;
        }
        let child: &(dyn Any + Send + Sync) = &*slot.child;
        Some((slot, child.downcast_ref::<T>()?))
    }

    /// What a lookup the cache did not answer hands back: the key's hash
    /// if it was computed, and the closure.
    pub(super) struct Miss<F> {
        pub(super) hash: Option<u64>,
        pub(super) f: F,
    }

    /// Runs `f` on the cached child of `family` for which `is_key` holds:
    /// first the family's last hit, then the slot of the key's hash.
    #[inline]
    pub(super) fn lookup<T: Any, R, F: FnOnce(&T) -> R>(
        family: u64,
        generation: u64,
        is_key: impl Fn(&T) -> bool,
        hash: impl FnOnce() -> u64,
        f: F,
    ) -> Result<R, Miss<F>> {
        let mut f = Some(f);
        let mut computed = None;
        let found = CACHE
            .try_with(|cache| {
                // A lookup inside another's closure borrows again: shared
                // borrows nest.
                let slots = cache.slots.try_borrow().ok()?;
                let last = cache.last.get(last_of(family))?;
                let at = usize::from(last.get());
                if let Some((_, child)) = child_in::<T>(&slots, at, family, generation) {
                    if is_key(child) {
                        return f.take().map(|f| f(child));
                    }
                }
                let h = hash();
                computed = Some(h);
                let i = index(family, h);
                if i == at {
                    return None;
                }
                let (slot, child) = child_in::<T>(&slots, i, family, generation)?;
                if slot.hash != h || !is_key(child) {
                    return None;
                }
                last.set(i as u8);
                f.take().map(|f| f(child))
            })
            .ok()
            .flatten();
        match (found, f) {
            (Some(r), _) => Ok(r),
            (None, Some(f)) => Err(Miss { hash: computed, f }),
            // `f` is taken only on the way to returning its result.
            (None, None) => unreachable!("a cache hit returns the closure's result"),
        }
    }

    /// Puts `child` in its slot, replacing what was there. Skipped while a
    /// lookup's closure runs on this thread (the slots are borrowed).
    pub(super) fn remember(
        family: u64,
        hash: u64,
        generation: u64,
        child: Arc<dyn Any + Send + Sync>,
    ) {
        let old = CACHE
            .try_with(|cache| {
                let mut slots = cache.slots.try_borrow_mut().ok()?;
                let i = index(family, hash);
                if let Some(last) = cache.last.get(last_of(family)) {
                    last.set(i as u8);
                }
                let slot = slots.get_mut(i)?;
                slot.replace(Slot {
                    family,
                    hash,
                    generation,
                    child,
                })
            })
            .ok()
            .flatten();
        // Dropped outside the borrow: the last handle to a removed child
        // may go with it.
        drop(old);
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
        let mut children: Vec<(&L, &Arc<Child<L, M>>)> = self.inner.map.iter(&guard).collect();
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
    fn a_panicking_closure_leaves_the_cache_usable() {
        let f = Family::<[&'static str; 1], Counter>::with_label_names(&["k"]);
        f.with(&["a"], |c| c.inc());
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            f.with(&["a"], |_| panic!("in the closure"));
        }));
        assert!(caught.is_err());
        f.with(&["a"], |c| c.inc());
        f.with(&["b"], |c| c.inc());
        assert_eq!(f.get(&["a"]).map(|c| c.get()), Some(2));
        assert_eq!(f.get(&["b"]).map(|c| c.get()), Some(1));
    }

    #[test]
    fn the_cache_hash_matches_for_borrowed_and_owned_keys() {
        let owned = ["GET".to_owned(), "200".to_owned()];
        assert_eq!(
            cache::hash::<_, [String; 2]>(&["GET", "200"]),
            cache::hash::<_, [String; 2]>(&owned)
        );
        assert_ne!(
            cache::hash::<_, [String; 2]>(&["GET", "200"]),
            cache::hash::<_, [String; 2]>(&["GET2", "00"])
        );
        let pairs = vec![("a".to_owned(), "1".to_owned())];
        assert_eq!(
            cache::hash::<_, Vec<(String, String)>>(&[("a", "1")]),
            cache::hash::<_, Vec<(String, String)>>(&pairs)
        );
    }

    #[test]
    #[should_panic(expected = "does not give one value per label name")]
    fn with_panics_on_a_wrong_value_count() {
        let f = Family::<[&'static str; 1], Counter>::with_label_names(&["a", "b"]);
        f.with(&["x"], |c| c.inc());
    }
}
