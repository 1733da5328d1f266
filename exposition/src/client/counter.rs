//! Counters: totals that only go up.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use super::atomic::sealed::Number;
use super::metric::{
    ChildLabels, Extra, Fam, MetricWriter, sealed::EncodeMetric, unix_millis, write_created,
};
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
/// instruction (`u64`) or a compare-and-swap loop (`f64`); no lock, no
/// allocation.
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
pub struct Counter<N: CounterValue = u64> {
    core: Arc<Core<N>>,
}

/// Aligned to a cache line, so counters updated from different threads
/// (children of one family, allocated one after the other) do not share one.
#[repr(align(64))]
struct Core<N: CounterValue> {
    value: N::Atomic,
    created: i64,
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
                value: N::new_atomic(N::ZERO),
                created: unix_millis(created),
            }),
        }
    }

    /// Adds one.
    #[inline]
    pub fn inc(&self)
    where
        N: From<u8>,
    {
        N::add(&self.core.value, N::from(1u8));
    }

    /// Adds `v`. A negative or NaN `v` (only possible with `f64`) is ignored:
    /// a counter never goes down. Debug builds assert.
    #[inline]
    pub fn inc_by(&self, v: N) {
        if v.is_valid_increment() {
            N::add(&self.core.value, v);
        } else {
            debug_assert!(false, "counter increment must be >= 0, got {v:?}");
        }
    }

    /// The current total.
    #[inline]
    pub fn get(&self) -> N {
        N::get(&self.core.value)
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
        w.sample(fam, "_total", labels, Extra::None, self.get().value());
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
