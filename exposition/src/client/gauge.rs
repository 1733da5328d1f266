//! Gauges: values that go up and down.

use std::fmt;
use std::sync::Arc;

use super::atomic::sealed::Number;
use super::metric::{ChildLabels, Extra, Fam, MetricWriter, sealed::EncodeMetric};
use crate::model::MetricType;

/// The number types a [`Gauge`] can hold: `i64` (the default) and `f64`.
/// Sealed.
pub trait GaugeValue: Number {}
impl GaugeValue for i64 {}
impl GaugeValue for f64 {}

/// A value that goes up and down, `i64` by default or `f64`.
///
/// A cheap handle: clones share the value. `set` is one atomic store, `add`
/// and `sub` one atomic add (`i64`) or a compare-and-swap loop (`f64`); no
/// lock, no allocation.
///
/// ```
/// use vigil_exposition::client::Gauge;
///
/// let in_flight = Gauge::<i64>::new();
/// in_flight.inc();
/// in_flight.inc();
/// in_flight.dec();
/// assert_eq!(in_flight.get(), 1);
///
/// let temperature = Gauge::<f64>::new();
/// temperature.set(21.5);
/// temperature.sub(0.5);
/// assert_eq!(temperature.get(), 21.0);
/// ```
pub struct Gauge<N: GaugeValue = i64> {
    value: Arc<Padded<N::Atomic>>,
}

/// Aligned to a cache line, so gauges updated from different threads do not
/// share one.
#[repr(align(64))]
struct Padded<T>(T);

impl<N: GaugeValue> Gauge<N> {
    /// A gauge at zero.
    pub fn new() -> Self {
        Gauge {
            value: Arc::new(Padded(N::new_atomic(N::ZERO))),
        }
    }

    /// Sets the value.
    #[inline]
    pub fn set(&self, v: N) {
        N::set(&self.value.0, v);
    }

    /// Sets the value and returns the previous one.
    #[inline]
    pub fn swap(&self, v: N) -> N {
        N::swap(&self.value.0, v)
    }

    /// Adds `v`.
    #[inline]
    pub fn add(&self, v: N) {
        N::add(&self.value.0, v);
    }

    /// Subtracts `v`.
    #[inline]
    pub fn sub(&self, v: N) {
        N::sub(&self.value.0, v);
    }

    /// Adds one.
    #[inline]
    pub fn inc(&self)
    where
        N: From<i8>,
    {
        N::add(&self.value.0, N::from(1i8));
    }

    /// Subtracts one.
    #[inline]
    pub fn dec(&self)
    where
        N: From<i8>,
    {
        N::sub(&self.value.0, N::from(1i8));
    }

    /// The current value.
    #[inline]
    pub fn get(&self) -> N {
        N::get(&self.value.0)
    }
}

impl<N: GaugeValue> Default for Gauge<N> {
    fn default() -> Self {
        Gauge::new()
    }
}

impl<N: GaugeValue> Clone for Gauge<N> {
    fn clone(&self) -> Self {
        Gauge {
            value: Arc::clone(&self.value),
        }
    }
}

impl<N: GaugeValue> fmt::Debug for Gauge<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gauge").field("value", &self.get()).finish()
    }
}

impl<N: GaugeValue> EncodeMetric for Gauge<N> {
    fn metric_type(&self) -> MetricType {
        MetricType::Gauge
    }

    fn encode_child(&self, w: &mut MetricWriter<'_>, fam: &Fam<'_>, labels: &ChildLabels<'_>) {
        w.sample(fam, "", labels, Extra::None, self.get().value());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_and_float_gauges() {
        let g = Gauge::<i64>::new();
        g.sub(5);
        assert_eq!(g.get(), -5);
        assert_eq!(g.swap(3), -5);
        let f = Gauge::<f64>::default();
        f.add(0.1);
        f.add(0.2);
        assert!((f.get() - 0.3).abs() < 1e-12);
    }
}
