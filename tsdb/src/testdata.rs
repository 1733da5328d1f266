//! Data sets for measuring the codec (feature `testdata`).
//!
//! - [`node_exporter_day`] evolves every series of one node_exporter scrape
//!   over a day at a 15 s interval, the workload of issue 4's bytes-per-sample
//!   figure;
//! - [`parse_timestamped`] reads series stored as timestamped OpenMetrics
//!   text (`name{labels} value seconds.millis`), the form of the real series
//!   in `shared/corpus/series/`.
//!
//! Neither is a general parser: they read well-formed files of those shapes
//! and skip lines they do not understand.

use std::collections::HashMap;

/// One series: its name and labels as written in the source, and its
/// samples in time order.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// `name{labels}` as in the source text.
    pub key: String,
    /// `(timestamp_ms, value)`, strictly increasing in time.
    pub samples: Vec<(i64, f64)>,
}

/// Reads `key value timestamp_seconds` lines; `#` lines are skipped.
/// Samples are grouped by key in order of first appearance; a sample whose
/// timestamp is not after its series' last one is dropped.
pub fn parse_timestamped(text: &str) -> Vec<Series> {
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut out: Vec<Series> = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let Some((rest, ts)) = line.rsplit_once(' ') else {
            continue;
        };
        let Some((key, value)) = rest.rsplit_once(' ') else {
            continue;
        };
        let (Some(t), Some(v)) = (parse_millis(ts), parse_value(value)) else {
            continue;
        };
        let i = *index.entry(key).or_insert_with(|| {
            out.push(Series {
                key: key.to_string(),
                samples: Vec::new(),
            });
            out.len() - 1
        });
        let s = &mut out[i].samples;
        if s.last().is_none_or(|&(last, _)| t > last) {
            s.push((t, v));
        }
    }
    out
}

/// `"1795330448.344"` → `1795330448344`, exactly (no float on the way).
fn parse_millis(s: &str) -> Option<i64> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: i64 = int.parse().ok()?;
    let mut ms: i64 = if frac.is_empty() {
        0
    } else {
        frac.parse().ok()?
    };
    for _ in frac.len()..3 {
        ms *= 10;
    }
    secs.checked_mul(1000)?
        .checked_add(if secs < 0 || int.starts_with('-') {
            -ms
        } else {
            ms
        })
}

/// A Prometheus sample value (`NaN`, `+Inf`, `-Inf` or a float).
fn parse_value(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

/// Decimal places a value was written with (`"135.08"` → 2,
/// `"1.468993e+06"` → 0, `"1.462e-06"` → 9).
fn decimals(s: &str) -> u32 {
    let (mant, exp) = match s.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (s, 0),
    };
    let frac = mant.split_once('.').map_or(0, |(_, f)| f.len() as i32);
    (frac - exp).clamp(0, 15) as u32
}

/// A small deterministic generator (xorshift64*).
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    /// Uniform integer in `lo..=hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }
}

/// How a generated series evolves.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// Never changes (flags, info metrics, sizes, limits).
    Constant,
    /// Rises by about `rate` a scrape; `step` is its unit (1 for counts,
    /// 10^-decimals for seconds); may reset to zero once.
    Counter { rate: f64, reset_at: Option<usize> },
    /// Wanders around its start by relative `vol` a scrape, in multiples
    /// of `step`.
    Gauge { vol: f64, p_change: f64 },
    /// The scrape time in seconds (node_time_seconds).
    Clock,
}

/// Scrapes in a day at 15 s.
pub const DAY_SCRAPES: usize = 24 * 60 * 4;

/// Evolves every series of a node_exporter exposition (`# TYPE` lines and
/// unlabelled or labelled samples without timestamps) over `scrapes`
/// scrapes 15 s apart from `start_ms`.
///
/// - Timestamps: one per scrape, shared by all series as Prometheus stores
///   them, each off the 15 s grid by a uniform −3…+3 ms of jitter.
/// - Counters (and untyped integers, histogram and summary parts) rise at
///   the rate that would have brought them from zero to their value in
///   three days of uptime, in their own unit (whole numbers, or the decimal
///   places they were written with), with Poisson-like noise; idle zero
///   counters rarely tick; 3% reset to zero once during the day.
/// - Gauges keep the precision they were written with (whole bytes in pages
///   of 4096 when the value is one, 2 decimals for load averages, 9 for
///   durations) and wander by a random walk; those with values 0 or 1 and
///   those named as sizes, limits or info stay constant.
/// - `node_time_seconds` is the scrape time with nanosecond digits.
pub fn node_exporter_day(
    exposition: &str,
    start_ms: i64,
    scrapes: usize,
    seed: u64,
) -> Vec<Series> {
    let mut types: HashMap<&str, &str> = HashMap::new();
    let mut lines = Vec::new();
    for line in exposition.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.split_whitespace();
            if let (Some(name), Some(kind)) = (it.next(), it.next()) {
                types.insert(name, kind);
            }
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if let Some((key, value)) = line.rsplit_once(' ') {
            lines.push((key, value));
        }
    }

    let mut rng = Rng::new(seed);
    let times: Vec<i64> = (0..scrapes)
        .map(|i| start_ms + i as i64 * 15_000 + rng.range(-3, 3))
        .collect();

    let mut out = Vec::with_capacity(lines.len());
    for (idx, (key, text)) in lines.into_iter().enumerate() {
        let Some(v0) = parse_value(text) else {
            continue;
        };
        let name = key.split('{').next().unwrap_or(key);
        let family = ["_bucket", "_sum", "_count", "_total", "_created"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| types.contains_key(f)))
            .unwrap_or(name);
        let ty = types.get(family).copied().unwrap_or("untyped");
        let dec = decimals(text);
        let mut r = Rng::new(seed ^ (idx as u64 + 1).wrapping_mul(0xd1b5_4a32_d192_ed03));
        let integral = v0.fract() == 0.0;
        let counter_like = match ty {
            "counter" | "histogram" | "summary" => name != family || ty == "counter",
            "untyped" => integral && !name.ends_with("_bytes"),
            _ => false,
        };
        let constant_name = [
            "_info",
            "_max",
            "_min",
            "limit",
            "boot_time",
            "start_time",
            "mtime",
            "size_bytes",
            "Total_bytes",
            "DirectMap",
            "filesystem_files",
            "filesystem_size",
            "mtu",
            "speed",
            "_flags",
            "assign_type",
            "_type",
            "_id",
            "version",
            "_up",
            "success",
            "capacity",
        ]
        .iter()
        .any(|p| name.contains(p));
        let kind = if name == "node_time_seconds" {
            Kind::Clock
        } else if counter_like {
            let rate = if v0 > 0.0 {
                v0 / (3.0 * DAY_SCRAPES as f64)
            } else if r.chance(0.2) {
                0.01
            } else {
                0.0
            };
            let reset_at = r
                .chance(0.03)
                .then(|| r.range(1, scrapes.max(2) as i64 - 1) as usize);
            Kind::Counter { rate, reset_at }
        } else if !v0.is_finite() || v0 == 0.0 && r.chance(0.8) || v0 == 1.0 || constant_name {
            Kind::Constant
        } else {
            let vol = if name.contains("duration") { 0.2 } else { 0.01 };
            Kind::Gauge {
                vol,
                p_change: if integral && v0.abs() < 1000.0 {
                    0.3
                } else {
                    0.9
                },
            }
        };
        let step =
            if integral && v0.abs() >= 4096.0 && v0 % 4096.0 == 0.0 && name.ends_with("_bytes") {
                4096.0
            } else {
                1.0
            };
        let scale = 10f64.powi(dec as i32);
        // Values are kept as integers m of the unit 10^-dec (times `step`)
        // and written as m / 10^dec, what parsing the text would give.
        let to_value = |m: f64| if dec == 0 { m * step } else { m / scale };
        let mut m = if dec == 0 {
            (v0 / step).round()
        } else {
            (v0 * scale).round()
        };
        let m_start = m;
        let unit = if dec == 0 { step } else { 1.0 / scale };
        let mut samples = Vec::with_capacity(scrapes);
        for (i, &t) in times.iter().enumerate() {
            let v = match kind {
                Kind::Constant => v0,
                Kind::Clock => {
                    let ns = r.range(0, 999_999) as f64;
                    (t as f64 * 1e6 + ns) / 1e9
                }
                Kind::Counter { rate, reset_at } => {
                    if i > 0 {
                        if reset_at == Some(i) {
                            m = 0.0;
                        } else {
                            // Poisson-like: the mean rate in units, noisy.
                            let mean = rate / unit;
                            let inc = (mean * (0.5 + r.unit()) + r.unit()).floor();
                            m += inc;
                        }
                    }
                    to_value(m)
                }
                Kind::Gauge { vol, p_change } => {
                    if i > 0 && r.chance(p_change) {
                        let spread = (m_start.abs() * vol).max(1.0);
                        let delta = ((r.unit() - 0.5) * 2.0 * spread).round();
                        // Pulled back toward the start so it stays plausible.
                        let pull = ((m_start - m) * 0.05).round();
                        m = (m + delta + pull).max(0.0);
                    }
                    to_value(m)
                }
            };
            samples.push((t, v));
        }
        out.push(Series {
            key: key.to_string(),
            samples,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_and_decimals() {
        assert_eq!(parse_millis("1795330448.344"), Some(1_795_330_448_344));
        assert_eq!(parse_millis("1795330448.3"), Some(1_795_330_448_300));
        assert_eq!(parse_millis("12"), Some(12_000));
        assert_eq!(parse_millis("1.2345"), None);
        assert_eq!(decimals("135.08"), 2);
        assert_eq!(decimals("1.468993e+06"), 0);
        assert_eq!(decimals("1.462e-06"), 9);
        assert_eq!(decimals("0"), 0);
    }

    #[test]
    fn parses_timestamped_series() {
        let text = "# HELP x\na{b=\"c d\"} 1 10.5\na{b=\"c d\"} NaN 11\nz 2e3 10\n# EOF\n";
        let s = parse_timestamped(text);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].key, "a{b=\"c d\"}");
        assert_eq!(s[0].samples[0], (10_500, 1.0));
        assert!(s[0].samples[1].1.is_nan());
        assert_eq!(s[1].samples, vec![(10_000, 2000.0)]);
    }

    #[test]
    fn generator_keeps_shape_and_precision() {
        let text = "# TYPE c counter\nc_total 135.08\n# TYPE g gauge\ng 0.68\ngb_bytes 8192\n# TYPE k gauge\nk_info 1\n";
        let s = node_exporter_day(text, 1_700_000_000_000, 100, 7);
        assert_eq!(s.len(), 4);
        for series in &s {
            assert_eq!(series.samples.len(), 100);
            assert!(series.samples.windows(2).all(|w| w[1].0 > w[0].0));
        }
        // The counter keeps 2 decimals and never falls unless it resets.
        for &(_, v) in &s[0].samples {
            assert_eq!(v, (v * 100.0).round() / 100.0);
        }
        assert!(s[3].samples.iter().all(|&(_, v)| v == 1.0));
        assert!(s[2].samples.iter().all(|&(_, v)| v % 4096.0 == 0.0));
    }
}
