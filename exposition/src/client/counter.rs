//! Counters: totals that only go up.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use super::atomic::Striped;
use super::atomic::sealed::Number;
use super::exemplar::{ExemplarCell, check_labels};
use super::metric::{
    ChildLabels, Extra, Fam, MetricWriter, sealed::EncodeMetric, unix_millis, write_created,
};
use crate::error::Result;
use crate::model::MetricType;

/// The number types a [`Counter`] can count in: `u64` (the default) and
/// `f64`. Sealed.
pub trait CounterValue: Number {}
impl CounterValue for u64 {}
impl CounterValue for f64 {}

/// A monotonically non-decreasing total, `u64` by default or `f64`
/// (`Counter<f64>`, for seconds or bytes summed from fractional values).
///
/// A cheap handle: clones share the value. Incrementing is one atomic
/// instruction (`u64`) or a compare-and-swap loop (`f64`) on a cache line of
/// the calling thread's own (the counter is striped per thread, see below);
/// no lock, no allocation after the first increment from a second thread.
///
/// Written as `name_total` (and, in OpenMetrics, `name_created` with the
/// creation time). A name registered with a trailing `_total` has it taken
/// off the family name, as OpenMetrics wants.
///
/// ```
/// use vigil_exposition::client::Counter;
///
/// let c = Counter::<u64>::new();
/// c.inc();
/// c.inc_by(2);
/// assert_eq!(c.get(), 3);
///
/// let seconds = Counter::<f64>::new();
/// seconds.inc_by(0.25);
/// assert_eq!(seconds.get(), 0.25);
/// ```
///
/// # Striping
///
/// Threads incrementing one shared counter would move its cache line
/// between their cores on every increment (about 10 ns each on two cores,
/// more on more). So the value is split into stripes, one cache line each:
/// the first lives in the counter, the others (as many as the CPUs the
/// process may use, rounded up to a power of two, at most 16) are
/// allocated together the first time a thread whose stripe is not the first
/// increments. Threads take stripes round-robin as they first increment.
/// [`get`](Counter::get) and every scrape add the stripes up: a `u64` total
/// is exact; an `f64` total is the sum of each thread's exact running sum.
///
/// Memory: 128 bytes for a counter only one thread increments, plus
/// `64 × stripes` once several do (256 bytes in all on 2 CPUs, 1,152 on 16
/// or more).
///
/// # Exemplars
///
/// [`inc_with_exemplar`](Counter::inc_with_exemplar) also records the
/// labels of this increment (a trace id), which OpenMetrics writes after
/// the total:
///
/// ```
/// use vigil_exposition::client::{Counter, Registry};
/// use vigil_exposition::Format;
///
/// let registry = Registry::new();
/// let requests = Counter::<u64>::new();
/// registry.register("requests", "Requests served.", requests.clone())?;
/// requests.inc_with_exemplar(&[("trace_id", "4bf92f3577b34da6")])?;
///
/// let mut out = Vec::new();
/// registry.encode(Format::OpenMetrics, &mut out);
/// let text = String::from_utf8(out).unwrap();
/// assert!(text.contains("requests_total 1 # {trace_id=\"4bf92f3577b34da6\"} 1.0 "));
/// # Ok::<(), vigil_exposition::Error>(())
/// ```
pub struct Counter<N: CounterValue = u64> {
    core: Arc<Core<N>>,
}

struct Core<N: CounterValue> {
    value: Striped<N>,
    created: i64,
    exemplar: ExemplarCell,
}

impl<N: CounterValue> Counter<N> {
    /// A counter at zero, created now.
    pub fn new() -> Self {
        Counter::with_created(SystemTime::now())
    }

    /// A counter at zero whose `_created` time is `created` (for a counter
    /// that mirrors one started elsewhere, and for reproducible output).
    pub fn with_created(created: SystemTime) -> Self {
        Counter {
            core: Arc::new(Core {
                value: Striped::new(),
                created: unix_millis(created),
                exemplar: ExemplarCell::default(),
            }),
        }
    }

    /// Adds one.
    #[inline]
    pub fn inc(&self)
    where
        N: From<u8>,
    {
        self.core.value.add(N::from(1u8));
    }

    /// Adds `v`. A negative or NaN `v` (only possible with `f64`) is ignored:
    /// a counter never goes down. Debug builds assert.
    #[inline]
    pub fn inc_by(&self, v: N) {
        if v.is_valid_increment() {
            self.core.value.add(v);
        } else {
            debug_assert!(false, "counter increment must be >= 0, got {v:?}");
        }
    }

    /// Adds one and records `labels` as the counter's exemplar (with the
    /// value 1 and the time now), replacing the previous one.
    ///
    /// The increment always happens; the exemplar is refused (the previous
    /// one kept) with an error when its label names are invalid or repeat,
    /// or names and values together exceed 128 characters
    /// ([`MAX_EXEMPLAR_CHARS`](super::MAX_EXEMPLAR_CHARS)). Recording takes a
    /// short lock of this counter's exemplar (never taken by
    /// [`inc`](Counter::inc)).
    pub fn inc_with_exemplar<K: AsRef<str>, V: AsRef<str>>(&self, labels: &[(K, V)]) -> Result<()>
    where
        N: From<u8>,
    {
        self.inc_by_with_exemplar(N::from(1u8), labels)
    }

    /// Adds `v` and records `labels` as the exemplar, with the value `v`
    /// (see [`inc_with_exemplar`](Counter::inc_with_exemplar)). A negative
    /// or NaN `v` changes nothing.
    pub fn inc_by_with_exemplar<K: AsRef<str>, V: AsRef<str>>(
        &self,
        v: N,
        labels: &[(K, V)],
    ) -> Result<()> {
        self.inc_by(v);
        check_labels(labels)?;
        if v.is_valid_increment() {
            self.core.exemplar.set(labels, v.value().as_f64());
        }
        Ok(())
    }

    /// The current total.
    #[inline]
    pub fn get(&self) -> N {
        self.core.value.get()
    }
}

impl<N: CounterValue> Default for Counter<N> {
    fn default() -> Self {
        Counter::new()
    }
}

impl<N: CounterValue> Clone for Counter<N> {
    fn clone(&self) -> Self {
        Counter {
            core: Arc::clone(&self.core),
        }
    }
}

impl<N: CounterValue> fmt::Debug for Counter<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Counter")
            .field("value", &self.get())
            .finish()
    }
}

impl<N: CounterValue> EncodeMetric for Counter<N> {
    fn metric_type(&self) -> MetricType {
        MetricType::Counter
    }

    fn encode_child(&self, w: &mut MetricWriter<'_>, fam: &Fam<'_>, labels: &ChildLabels<'_>) {
        let value = self.get().value();
        self.core.exemplar.with(|ex| {
            w.sample_ex(fam, "_total", labels, Extra::None, value, ex);
        });
        write_created(w, fam, labels, self.core.created);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_value() {
        let a = Counter::<u64>::default();
        let b = a.clone();
        a.inc();
        b.inc_by(41);
        assert_eq!(a.get(), 42);
    }

    #[test]
    #[cfg_attr(debug_assertions, should_panic(expected = "must be >= 0"))]
    fn float_counters_refuse_to_go_down() {
        let c = Counter::<f64>::new();
        c.inc_by(1.5);
        c.inc_by(-1.0);
        assert_eq!(c.get(), 1.5);
    }
}
