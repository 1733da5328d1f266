//! Summaries: count and sum of observations, and optionally quantiles over a
//! sliding time window.
//!
//! Quantiles are estimated with a log-bucketed sketch (the DDSketch idea):
//! an observation `x > 0` is counted in bucket `ceil(log_γ(x))` with
//! `γ = (1 + α) / (1 − α)`, so every estimate is within a relative error `α`
//! of a value whose rank is the asked-for quantile, and the memory is bounded
//! by the range of values, not their number. (client_golang bounds the rank
//! error instead; a relative value error is what latency dashboards read.)
//! The window is a ring of `age_buckets` sketches, each covering
//! `max_age / age_buckets`; the oldest is cleared as time moves on, as in
//! client_golang's `MaxAge`/`AgeBuckets`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use super::atomic::add_f64;
use super::metric::{
    ChildLabels, Extra, Fam, MetricWriter, Value, sealed::EncodeMetric, unix_millis, write_created,
};
use crate::model::MetricType;

/// Counts observations and sums them; with quantiles configured
/// ([`Summary::builder`]), also estimates quantiles over a sliding window.
///
/// # Negative observations
///
/// As in Prometheus's Go client, a negative observation is accepted: it
/// counts, lowers the sum, and takes part in the quantiles, so a quantile
/// can be negative. Text 0.0.4 writes everything, as client_golang does.
/// OpenMetrics requires the sum and every quantile value of a summary to be
/// non-negative (client_golang writes them anyway, and parsers that follow
/// the specification, such as Python's `prometheus_client`, reject its
/// output); so in OpenMetrics, and in [`gather`](super::Registry::gather),
/// a negative quantile is left out, and a negative sum is left out with
/// its count. Observe magnitudes (or use a gauge) when values can be
/// negative.
///
/// # Cost
///
/// Without quantiles, [`observe`](Summary::observe) is two atomic operations,
/// no lock and no allocation. **With quantiles it takes a short lock** (a
/// mutex around the window, held to insert into one sketch and, once per
/// `max_age / age_buckets`, to clear the oldest) and allocates when a value
/// lands in a sketch bucket not seen before in that slice. Prefer a
/// [`Histogram`](super::Histogram) on hot paths: its quantiles can also be
/// aggregated across instances, which a summary's cannot.
///
/// ```
/// use std::time::Duration;
/// use vigil_exposition::client::Summary;
///
/// let s = Summary::builder()
///     .quantiles(&[0.5, 0.99])
///     .max_age(Duration::from_secs(60))
///     .build();
/// for v in 1..=100 {
///     s.observe(v as f64);
/// }
/// assert_eq!(s.count(), 100);
/// let q = s.quantiles();
/// assert!((q[0].1 - 50.0).abs() <= 50.0 * 0.01 + 1.0); // median
/// ```
pub struct Summary {
    core: Arc<Core>,
}

/// Aligned to a cache line (see [`Histogram`](super::Histogram)).
#[repr(align(64))]
struct Core {
    count: AtomicU64,
    sum: AtomicU64,
    created: i64,
    window: Option<Window>,
}

struct Window {
    quantiles: Box<[f64]>,
    slice: Duration,
    gamma_ln: f64,
    gamma: f64,
    ring: Mutex<Ring>,
}

struct Ring {
    sketches: Vec<Sketch>,
    head: usize,
    head_start: Instant,
}

#[derive(Default, Clone)]
struct Sketch {
    pos: BTreeMap<i32, u64>,
    neg: BTreeMap<i32, u64>,
    zero: u64,
}

impl Sketch {
    fn clear(&mut self) {
        self.pos.clear();
        self.neg.clear();
        self.zero = 0;
    }

    fn merge(&mut self, other: &Sketch) {
        for (k, n) in &other.pos {
            *self.pos.entry(*k).or_default() += n;
        }
        for (k, n) in &other.neg {
            *self.neg.entry(*k).or_default() += n;
        }
        self.zero += other.zero;
    }

    fn count(&self) -> u64 {
        self.pos.values().sum::<u64>() + self.neg.values().sum::<u64>() + self.zero
    }
}

/// Configures a [`Summary`] with quantiles.
#[derive(Debug, Clone)]
pub struct SummaryBuilder {
    quantiles: Vec<f64>,
    max_age: Duration,
    age_buckets: u32,
    relative_error: f64,
    created: Option<SystemTime>,
}

impl SummaryBuilder {
    /// The quantiles to report, each in `[0, 1]` (none by default: count
    /// and sum only).
    pub fn quantiles(mut self, quantiles: &[f64]) -> Self {
        self.quantiles = quantiles.to_vec();
        self
    }

    /// How far back the window reaches (10 minutes by default, as
    /// client_golang): older observations stop counting towards quantiles.
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// Into how many slices the window is cut (5 by default, as
    /// client_golang): the window moves on by `max_age / age_buckets` at a
    /// time; more slices move it more smoothly at the cost of memory.
    pub fn age_buckets(mut self, age_buckets: u32) -> Self {
        self.age_buckets = age_buckets;
        self
    }

    /// The relative error `α` of quantile estimates (0.01 by default): an
    /// estimate is within `α · value` of an observation of the right rank.
    pub fn relative_error(mut self, alpha: f64) -> Self {
        self.relative_error = alpha;
        self
    }

    /// The `_created` time (now by default).
    pub fn created(mut self, created: SystemTime) -> Self {
        self.created = Some(created);
        self
    }

    /// Builds the summary.
    ///
    /// # Panics
    ///
    /// When a quantile is outside `[0, 1]`, `max_age` is zero,
    /// `age_buckets` is zero, or the relative error is not in `(0, 1)`:
    /// mistakes in the program, not conditions to handle.
    pub fn build(self) -> Summary {
        for &q in &self.quantiles {
            assert!(
                (0.0..=1.0).contains(&q),
                "summary quantile {q} is outside [0, 1]"
            );
        }
        assert!(!self.max_age.is_zero(), "summary max_age must be positive");
        assert!(self.age_buckets > 0, "summary age_buckets must be positive");
        let a = self.relative_error;
        assert!(
            a > 0.0 && a < 1.0,
            "summary relative error {a} is outside (0, 1)"
        );
        let window = (!self.quantiles.is_empty()).then(|| {
            let gamma = (1.0 + a) / (1.0 - a);
            Window {
                quantiles: self.quantiles.into_boxed_slice(),
                slice: self.max_age / self.age_buckets,
                gamma_ln: gamma.ln(),
                gamma,
                ring: Mutex::new(Ring {
                    sketches: vec![Sketch::default(); self.age_buckets as usize],
                    head: 0,
                    head_start: Instant::now(),
                }),
            }
        });
        Summary {
            core: Arc::new(Core {
                count: AtomicU64::new(0),
                sum: AtomicU64::new(0f64.to_bits()),
                created: unix_millis(self.created.unwrap_or_else(SystemTime::now)),
                window,
            }),
        }
    }
}

impl Summary {
    /// A summary of count and sum only, created now.
    pub fn new() -> Summary {
        Summary::builder().build()
    }

    /// Configures quantiles, window and creation time.
    pub fn builder() -> SummaryBuilder {
        SummaryBuilder {
            quantiles: Vec::new(),
            max_age: Duration::from_secs(600),
            age_buckets: 5,
            relative_error: 0.01,
            created: None,
        }
    }

    /// Records one observation.
    #[inline]
    pub fn observe(&self, v: f64) {
        let core = &*self.core;
        core.count.fetch_add(1, Ordering::Relaxed);
        add_f64(&core.sum, v);
        if let Some(w) = &core.window {
            w.insert(v, Instant::now());
        }
    }

    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.core.count.load(Ordering::Relaxed)
    }

    /// Sum of observations.
    pub fn sum(&self) -> f64 {
        f64::from_bits(self.core.sum.load(Ordering::Relaxed))
    }

    /// `(quantile, estimate)` for each configured quantile, over the current
    /// window; NaN estimates when the window is empty.
    pub fn quantiles(&self) -> Vec<(f64, f64)> {
        match &self.core.window {
            Some(w) => w.estimate(Instant::now()),
            None => Vec::new(),
        }
    }
}

impl Window {
    fn lock(&self) -> std::sync::MutexGuard<'_, Ring> {
        self.ring.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn insert(&self, v: f64, now: Instant) {
        if v.is_nan() {
            return;
        }
        let key = (v.abs() > 0.0).then(|| (v.abs().ln() / self.gamma_ln).ceil() as i32);
        let mut ring = self.lock();
        ring.rotate(now, self.slice);
        let head = ring.head;
        let sketch = &mut ring.sketches[head];
        match key {
            None => sketch.zero += 1,
            Some(k) if v > 0.0 => *sketch.pos.entry(k).or_default() += 1,
            Some(k) => *sketch.neg.entry(k).or_default() += 1,
        }
    }

    fn estimate(&self, now: Instant) -> Vec<(f64, f64)> {
        let merged = {
            let mut ring = self.lock();
            ring.rotate(now, self.slice);
            let mut merged = Sketch::default();
            for s in &ring.sketches {
                merged.merge(s);
            }
            merged
        };
        let n = merged.count();
        self.quantiles
            .iter()
            .map(|&q| {
                if n == 0 {
                    return (q, f64::NAN);
                }
                // 0-based rank of the wanted observation.
                let rank = (q * (n - 1) as f64).round() as u64;
                (q, self.value_at_rank(&merged, rank))
            })
            .collect()
    }

    fn value_at_rank(&self, s: &Sketch, rank: u64) -> f64 {
        let mid = |k: i32| 2.0 * self.gamma.powi(k) / (self.gamma + 1.0);
        let mut seen = 0u64;
        // Ascending values: negatives from the largest magnitude, zeros,
        // positives from the smallest.
        for (&k, &c) in s.neg.iter().rev() {
            seen += c;
            if seen > rank {
                return -mid(k);
            }
        }
        seen += s.zero;
        if seen > rank {
            return 0.0;
        }
        for (&k, &c) in &s.pos {
            seen += c;
            if seen > rank {
                return mid(k);
            }
        }
        f64::NAN
    }
}

impl Ring {
    /// Moves the head on by the slices that have passed, clearing each.
    fn rotate(&mut self, now: Instant, slice: Duration) {
        let elapsed = now.saturating_duration_since(self.head_start);
        if elapsed < slice {
            return;
        }
        let steps = (elapsed.as_nanos() / slice.as_nanos().max(1)) as u64;
        let n = self.sketches.len();
        for _ in 0..steps.min(n as u64) {
            self.head = (self.head + 1) % n;
            self.sketches[self.head].clear();
        }
        let step_nanos = slice.as_nanos().saturating_mul(u128::from(steps));
        self.head_start += Duration::from_nanos(u64::try_from(step_nanos).unwrap_or(u64::MAX));
    }
}

impl Default for Summary {
    fn default() -> Self {
        Summary::new()
    }
}

impl Clone for Summary {
    fn clone(&self) -> Self {
        Summary {
            core: Arc::clone(&self.core),
        }
    }
}

impl fmt::Debug for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Summary")
            .field("count", &self.count())
            .field("sum", &self.sum())
            .finish()
    }
}

impl EncodeMetric for Summary {
    fn metric_type(&self) -> MetricType {
        MetricType::Summary
    }

    fn encode_child(&self, w: &mut MetricWriter<'_>, fam: &Fam<'_>, labels: &ChildLabels<'_>) {
        // As client_golang: negative observations count, and the quantiles
        // are estimated over them. OpenMetrics forbids negative quantile
        // values, so that format (and gathered families) leaves such a
        // quantile out; text 0.0.4 writes it, as client_golang does.
        let om = w.openmetrics_rules();
        for (q, v) in self.quantiles() {
            if om && v < 0.0 {
                continue;
            }
            w.sample(fam, "", labels, Extra::Number("quantile", q), Value::F64(v));
        }
        // OpenMetrics: count and sum are counters; a negative or NaN sum
        // (from negative or NaN observations) is left out of that format.
        let sum = self.sum();
        if sum >= 0.0 || !w.openmetrics_rules() {
            w.sample(fam, "_count", labels, Extra::None, Value::U64(self.count()));
            w.sample(fam, "_sum", labels, Extra::None, Value::F64(sum));
        }
        write_created(w, fam, labels, self.core.created);
    }

    fn reserved_label(&self) -> Option<&'static str> {
        Some("quantile")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(quantiles: &[f64]) -> Summary {
        Summary::builder()
            .quantiles(quantiles)
            .max_age(Duration::from_secs(50))
            .build()
    }

    #[test]
    fn quantiles_are_within_the_relative_error() {
        let s = summary(&[0.0, 0.5, 0.9, 1.0]);
        for v in 1..=1000 {
            s.observe(v as f64);
        }
        let q = s.quantiles();
        for ((_, got), want) in q.iter().zip([1.0, 500.0, 900.0, 1000.0]) {
            assert!((got - want).abs() <= want * 0.0101 + 1.0, "{got} vs {want}");
        }
    }

    #[test]
    fn negative_zero_and_empty() {
        let s = summary(&[0.5]);
        assert!(s.quantiles()[0].1.is_nan());
        for v in [-10.0, -10.0, 0.0, 5.0, 5.0] {
            s.observe(v);
        }
        assert_eq!(s.quantiles()[0].1, 0.0);
        let s = summary(&[0.0]);
        s.observe(-10.0);
        s.observe(3.0);
        assert!((s.quantiles()[0].1 + 10.0).abs() < 0.11);
    }

    #[test]
    fn negative_quantiles_are_written_in_text_and_left_out_of_openmetrics() {
        use crate::Format;
        use crate::client::Registry;
        use crate::parse::{Mode, parse_families};

        let r = Registry::new();
        let s = summary(&[0.0, 0.5, 1.0]);
        r.register("temperature_delta", "Changes.", s.clone())
            .unwrap();
        for v in [-4.0, -2.0, 3.0] {
            s.observe(v);
        }
        let mut text = Vec::new();
        r.encode(Format::Text, &mut text);
        let text = String::from_utf8(text).unwrap();
        assert!(
            text.contains("temperature_delta{quantile=\"0\"} -"),
            "{text}"
        );
        assert!(text.contains("temperature_delta_sum -3\n"), "{text}");
        let mut om = Vec::new();
        r.encode(Format::OpenMetrics, &mut om);
        let fams = parse_families(&om, Format::OpenMetrics, Mode::Strict).unwrap();
        let quantiles: Vec<&str> = fams[0]
            .samples
            .iter()
            .filter_map(|s| s.labels.iter().find(|(n, _)| n == "quantile"))
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(quantiles, ["1.0"], "{}", String::from_utf8_lossy(&om));
        let gathered = r.gather();
        assert_eq!(gathered[0].samples.len(), 2, "{gathered:?}"); // 1.0 and _created
    }

    #[test]
    fn the_window_forgets_old_observations() {
        let s = summary(&[0.5]);
        let w = s.core.window.as_ref().unwrap();
        let t0 = Instant::now();
        w.insert(100.0, t0);
        assert!((w.estimate(t0)[0].1 - 100.0).abs() < 1.01);
        // 4 slices of 10 s later the observation is still in the window ...
        assert!(!w.estimate(t0 + Duration::from_secs(40))[0].1.is_nan());
        // ... and after the whole window it is gone.
        assert!(w.estimate(t0 + Duration::from_secs(51))[0].1.is_nan());
        w.insert(7.0, t0 + Duration::from_secs(52));
        assert!((w.estimate(t0 + Duration::from_secs(52))[0].1 - 7.0).abs() < 0.08);
    }
}
