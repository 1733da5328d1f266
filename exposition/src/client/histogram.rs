//! Histograms: observations counted into buckets.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use super::atomic::{add_f64, stripes, thread_stripe};
use super::exemplar::{ExemplarCell, check_labels};
use super::metric::{
    ChildLabels, Extra, Fam, MetricWriter, Value, sealed::EncodeMetric, unix_millis, write_created,
};
use crate::encode::float;
use crate::error::Result;
use crate::model::MetricType;

/// Prometheus's default buckets (client_golang's `DefBuckets`), for
/// latencies in seconds from 5 ms to 10 s.
pub const DEFAULT_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// `count` buckets starting at `start`, each `width` above the last.
///
/// ```
/// assert_eq!(vigil_exposition::client::linear_buckets(1.0, 0.5, 3), [1.0, 1.5, 2.0]);
/// ```
///
/// # Panics
///
/// When `count` is 0 or `width` is not positive: those are mistakes in the
/// program, not conditions to handle.
pub fn linear_buckets(start: f64, width: f64, count: usize) -> Vec<f64> {
    assert!(count > 0, "linear_buckets needs a positive count");
    assert!(
        width > 0.0,
        "linear_buckets needs a positive width, got {width}"
    );
    (0..count).map(|i| start + width * i as f64).collect()
}

/// `count` buckets starting at `start`, each `factor` times the last.
///
/// ```
/// assert_eq!(vigil_exposition::client::exponential_buckets(0.001, 10.0, 3), [0.001, 0.01, 0.1]);
/// ```
///
/// # Panics
///
/// When `count` is 0, `start` is not positive or `factor` is not above 1.
pub fn exponential_buckets(start: f64, factor: f64, count: usize) -> Vec<f64> {
    assert!(count > 0, "exponential_buckets needs a positive count");
    assert!(
        start > 0.0,
        "exponential_buckets needs a positive start, got {start}"
    );
    assert!(
        factor > 1.0,
        "exponential_buckets needs a factor above 1, got {factor}"
    );
    let mut v = start;
    (0..count)
        .map(|_| {
            let b = v;
            v *= factor;
            // Round away float noise (0.1 * 10 * 10 = 10.000000000000002).
            round_sig(b)
        })
        .collect()
}

/// `count` exponential buckets from `min` to `max` (both included), as
/// client_golang's `ExponentialBucketsRange`.
///
/// ```
/// let b = vigil_exposition::client::exponential_buckets_range(1.0, 1000.0, 4);
/// assert_eq!(b, [1.0, 10.0, 100.0, 1000.0]);
/// ```
///
/// # Panics
///
/// When `count` is below 2, `min` is not positive or `max` is not above
/// `min`.
pub fn exponential_buckets_range(min: f64, max: f64, count: usize) -> Vec<f64> {
    assert!(
        count >= 2,
        "exponential_buckets_range needs a count of at least 2"
    );
    assert!(
        min > 0.0,
        "exponential_buckets_range needs a positive min, got {min}"
    );
    assert!(max > min, "exponential_buckets_range needs max > min");
    let factor = (max / min).powf(1.0 / (count - 1) as f64);
    exponential_buckets(min, factor, count)
}

/// Rounds to 15 significant digits, which drops the last-bit noise of
/// repeated multiplication while keeping every bound distinct.
fn round_sig(v: f64) -> f64 {
    format!("{v:.14e}").parse().unwrap_or(v)
}

/// Counts observations into buckets, and keeps their count and sum.
///
/// A cheap handle: clones share the buckets. [`observe`](Histogram::observe)
/// finds the bucket by binary search and does one atomic add for it and a
/// compare-and-swap loop for the sum; no lock, no allocation (after the
/// first observation from a second thread). Like a
/// [`Counter`](super::Counter), the cells are striped per thread: threads
/// observing one histogram at once each write lines of their own, which
/// costs `64 × ⌈(buckets + 2) / 8⌉` bytes per stripe (128 bytes for the 11
/// default buckets) once a second thread observes.
///
/// Written as cumulative `name_bucket{le="..."}` samples ending with
/// `le="+Inf"`, then `name_count` and `name_sum` (and `name_created` in
/// OpenMetrics). OpenMetrics treats the sum as a counter: when a bucket
/// bound is negative, or the sum is negative or NaN, that format (and
/// [`gather`](super::Registry::gather)) leaves out `_sum` and `_count`, as
/// the specification requires. The `+Inf` bucket and `_count` are computed from the same
/// reading, so they always agree; `_sum` is read beside them and may lag an
/// observation in flight.
///
/// ```
/// use vigil_exposition::client::{exponential_buckets, Histogram};
///
/// let latency = Histogram::new(exponential_buckets(0.001, 2.0, 10));
/// latency.observe(0.003);
/// latency.observe(0.5);
/// let snap = latency.snapshot();
/// assert_eq!(snap.count, 2);
/// assert_eq!(snap.buckets[2], (0.004, 1)); // cumulative: 1 observation <= 0.004
/// ```
pub struct Histogram {
    core: Arc<Core>,
}

struct Core {
    /// Upper bounds, strictly increasing, finite; `+Inf` is implicit.
    bounds: Box<[f64]>,
    /// One counter per bound plus the `+Inf` bucket: non-cumulative.
    /// The sum (cell 0, f64 bits), then one counter per bound plus the
    /// `+Inf` bucket (non-cumulative), contiguous on cache-line-aligned
    /// lines: an observation then often moves one line between cores, not
    /// two.
    cells: Box<[Line]>,
    /// The same cells again for each further stripe (see
    /// [`Counter`](super::Counter)'s striping), allocated the first time a
    /// thread whose stripe is not 0 observes.
    rest: OnceLock<Box<[Box<[Line]>]>>,
    created: i64,
    /// `le="..."` of every bucket, `+Inf` included, rendered once: for
    /// bucket `i`, the text 0.0.4 form ends at `le_ends[2i]` and the
    /// OpenMetrics form at `le_ends[2i + 1]`, each starting where the
    /// previous one ends.
    le: Box<[u8]>,
    le_ends: Box<[u32]>,
    /// One exemplar per bucket (`+Inf` included), allocated by the first
    /// [`Histogram::observe_with_exemplar`].
    exemplars: OnceLock<Box<[ExemplarCell]>>,
}

/// Eight atomic cells on one cache line.
#[repr(align(64))]
#[derive(Default)]
struct Line([AtomicU64; 8]);

fn cell(lines: &[Line], i: usize) -> Option<&AtomicU64> {
    lines.get(i / 8).map(|l| &l.0[i % 8])
}

fn new_lines(bounds: usize) -> Box<[Line]> {
    (0..(bounds + 2).div_ceil(8))
        .map(|_| Line(Default::default()))
        .collect()
}

impl Core {
    /// The cells the calling thread writes.
    #[inline]
    fn lines(&self) -> &[Line] {
        let s = thread_stripe();
        if s == 0 {
            return &self.cells;
        }
        let rest = self.rest.get_or_init(|| {
            (1..stripes())
                .map(|_| new_lines(self.bounds.len()))
                .collect()
        });
        rest.get(s - 1).map_or(&self.cells, |l| l)
    }

    fn stripes(&self) -> impl Iterator<Item = &[Line]> {
        std::iter::once(&*self.cells).chain(self.rest.get().into_iter().flatten().map(|l| &**l))
    }

    /// Observations in bucket `i` (`bounds.len()` is `+Inf`), not
    /// cumulative, over every stripe.
    fn count(&self, i: usize) -> u64 {
        self.stripes()
            .filter_map(|l| cell(l, i + 1))
            .fold(0, |n, c| n.wrapping_add(c.load(Ordering::Relaxed)))
    }

    fn counts(&self) -> impl Iterator<Item = u64> + '_ {
        (0..=self.bounds.len()).map(|i| self.count(i))
    }

    fn sum(&self) -> f64 {
        self.stripes()
            .filter_map(|l| cell(l, 0))
            .map(|c| f64::from_bits(c.load(Ordering::Relaxed)))
            .sum()
    }
}

/// A reading of a [`Histogram`].
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// `(upper bound, cumulative count)`, the last bound `+Inf`.
    pub buckets: Vec<(f64, u64)>,
    /// Number of observations (equal to the `+Inf` bucket).
    pub count: u64,
    /// Sum of observations.
    pub sum: f64,
}

impl Histogram {
    /// A histogram with these upper bounds. They are sorted; NaN, infinite
    /// and repeated bounds are dropped, and the `+Inf` bucket is always
    /// there (so an empty list gives a histogram of one bucket).
    pub fn new(buckets: impl IntoIterator<Item = f64>) -> Histogram {
        Histogram::with_created(buckets, SystemTime::now())
    }

    /// As [`new`](Histogram::new), with this `_created` time.
    pub fn with_created(buckets: impl IntoIterator<Item = f64>, created: SystemTime) -> Histogram {
        let mut bounds: Vec<f64> = buckets.into_iter().filter(|b| b.is_finite()).collect();
        bounds.sort_by(f64::total_cmp);
        bounds.dedup();
        let cells = new_lines(bounds.len());
        let (le, le_ends) = render_bounds(&bounds);
        Histogram {
            core: Arc::new(Core {
                bounds: bounds.into_boxed_slice(),
                cells,
                rest: OnceLock::new(),
                created: unix_millis(created),
                le,
                le_ends,
                exemplars: OnceLock::new(),
            }),
        }
    }

    /// Records one observation. NaN counts only in the `+Inf` bucket (and
    /// makes the sum NaN), as in client_golang.
    #[inline]
    pub fn observe(&self, v: f64) {
        self.observe_at(v);
    }

    /// Records the observation; returns its bucket.
    #[inline]
    fn observe_at(&self, v: f64) -> usize {
        let core = &*self.core;
        // First bound >= v; NaN goes past every bound.
        let i = if v.is_nan() {
            core.bounds.len()
        } else {
            core.bounds.partition_point(|&b| b < v)
        };
        let lines = core.lines();
        if let Some(c) = cell(lines, i + 1) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(sum) = cell(lines, 0) {
            add_f64(sum, v);
        }
        i
    }

    /// Records one observation and `labels` (a trace id) as the exemplar of
    /// the bucket it falls in, replacing that bucket's previous one;
    /// OpenMetrics writes it on that bucket's line
    /// (`le="0.5"} 3 # {trace_id="…"} 0.27 1700000000.123`).
    ///
    /// The observation always counts; the exemplar is refused (the
    /// previous one kept) with an error when its label names are invalid or
    /// repeat, or names and values together exceed 128 characters
    /// ([`MAX_EXEMPLAR_CHARS`](super::MAX_EXEMPLAR_CHARS)). The first call
    /// allocates a slot per bucket; each call takes a short lock of that
    /// bucket's exemplar (never taken by [`observe`](Histogram::observe)).
    ///
    /// ```
    /// use vigil_exposition::client::{Histogram, Registry};
    /// use vigil_exposition::Format;
    ///
    /// let registry = Registry::new();
    /// let latency = Histogram::new([0.1, 0.5]);
    /// registry.register("latency_seconds", "Latency.", latency.clone())?;
    /// latency.observe_with_exemplar(0.27, &[("trace_id", "4bf92f35")])?;
    ///
    /// let mut out = Vec::new();
    /// registry.encode(Format::OpenMetrics, &mut out);
    /// let text = String::from_utf8(out).unwrap();
    /// assert!(text.contains("latency_seconds_bucket{le=\"0.5\"} 1 # {trace_id=\"4bf92f35\"} 0.27 "));
    /// # Ok::<(), vigil_exposition::Error>(())
    /// ```
    pub fn observe_with_exemplar<K: AsRef<str>, V: AsRef<str>>(
        &self,
        v: f64,
        labels: &[(K, V)],
    ) -> Result<()> {
        let i = self.observe_at(v);
        check_labels(labels)?;
        let cells = self.core.exemplars.get_or_init(|| {
            (0..=self.core.bounds.len())
                .map(|_| ExemplarCell::default())
                .collect()
        });
        if let Some(cell) = cells.get(i) {
            cell.set(labels, v);
        }
        Ok(())
    }

    /// The upper bounds, without the implicit `+Inf`.
    pub fn bounds(&self) -> &[f64] {
        &self.core.bounds
    }

    /// Reads the buckets (cumulative), count and sum.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut buckets = Vec::with_capacity(self.core.bounds.len() + 1);
        let mut total = 0u64;
        for (i, c) in self.core.counts().enumerate() {
            total = total.wrapping_add(c);
            let bound = self.core.bounds.get(i).copied().unwrap_or(f64::INFINITY);
            buckets.push((bound, total));
        }
        HistogramSnapshot {
            buckets,
            count: total,
            sum: self.core.sum(),
        }
    }
}

/// Renders `le="bound"` for every bound and `+Inf`, in both formats (see
/// `Core::le`), as the encoder's `label_f64` writes them.
fn render_bounds(bounds: &[f64]) -> (Box<[u8]>, Box<[u32]>) {
    let mut out = Vec::new();
    let mut ends = Vec::with_capacity(2 * (bounds.len() + 1));
    for b in bounds.iter().copied().chain([f64::INFINITY]) {
        for om in [false, true] {
            out.extend_from_slice(b"le=\"");
            if om {
                float::write_float_om(&mut out, b);
            } else {
                float::write_float(&mut out, b);
            }
            out.push(b'"');
            ends.push(u32::try_from(out.len()).unwrap_or(u32::MAX));
        }
    }
    (out.into_boxed_slice(), ends.into_boxed_slice())
}

impl Default for Histogram {
    /// A histogram with [`DEFAULT_BUCKETS`].
    fn default() -> Self {
        Histogram::new(DEFAULT_BUCKETS)
    }
}

impl Clone for Histogram {
    fn clone(&self) -> Self {
        Histogram {
            core: Arc::clone(&self.core),
        }
    }
}

impl fmt::Debug for Histogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.snapshot();
        f.debug_struct("Histogram")
            .field("buckets", &s.buckets)
            .field("sum", &s.sum)
            .finish()
    }
}

impl EncodeMetric for Histogram {
    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }

    fn encode_child(&self, w: &mut MetricWriter<'_>, fam: &Fam<'_>, labels: &ChildLabels<'_>) {
        let core = &*self.core;
        let mut total = 0u64;
        for (i, c) in core.counts().enumerate() {
            total = total.wrapping_add(c);
            let bound = core.bounds.get(i).copied().unwrap_or(f64::INFINITY);
            let at = |k: usize| core.le_ends.get(k).map_or(0, |&e| e as usize);
            let start = if i == 0 { 0 } else { at(2 * i - 1) };
            let (text, om) = (
                &core.le[start..at(2 * i)],
                &core.le[at(2 * i)..at(2 * i + 1)],
            );
            let extra = Extra::NumberRendered("le", bound, text, om);
            match core.exemplars.get().and_then(|e| e.get(i)) {
                Some(cell) => cell.with(|ex| {
                    w.sample_ex(fam, "_bucket", labels, extra, Value::U64(total), ex);
                }),
                None => w.sample(fam, "_bucket", labels, extra, Value::U64(total)),
            }
        }
        // OpenMetrics: the sum is a counter, so with a negative bucket it
        // must be left out (and `_count` goes with it); a negative or NaN sum
        // (negative or NaN observations) is left out of that format too.
        let sum = core.sum();
        let sum_ok = core.bounds.first().is_none_or(|&b| b >= 0.0) && sum >= 0.0;
        if sum_ok || !w.openmetrics_rules() {
            w.sample(fam, "_count", labels, Extra::None, Value::U64(total));
            w.sample(fam, "_sum", labels, Extra::None, Value::F64(sum));
        }
        write_created(w, fam, labels, core.created);
    }

    fn reserved_label(&self) -> Option<&'static str> {
        Some("le")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_helpers() {
        assert_eq!(exponential_buckets(0.1, 10.0, 4), [0.1, 1.0, 10.0, 100.0]);
        assert_eq!(linear_buckets(-1.0, 1.0, 3), [-1.0, 0.0, 1.0]);
        let r = exponential_buckets_range(0.001, 10.0, 5);
        assert_eq!(r, [0.001, 0.01, 0.1, 1.0, 10.0]);
    }

    #[test]
    #[should_panic(expected = "factor above 1")]
    fn exponential_factor_must_grow() {
        exponential_buckets(1.0, 1.0, 3);
    }

    #[test]
    fn bounds_are_cleaned() {
        let h = Histogram::new([5.0, 1.0, f64::NAN, 1.0, f64::INFINITY]);
        assert_eq!(h.bounds(), [1.0, 5.0]);
        h.observe(1.0);
        h.observe(f64::NAN);
        h.observe(7.0);
        let s = h.snapshot();
        assert_eq!(s.buckets, [(1.0, 1), (5.0, 1), (f64::INFINITY, 3)]);
        assert!(s.sum.is_nan());
    }
}
