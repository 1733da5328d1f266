//! The `log_to_metrics` filter: records become metrics (fluent-bit's filter
//! of the same name, with its keys).
//!
//! | key | meaning |
//! |---|---|
//! | `Metric_Mode` | `counter` (default), `gauge` (the last value), `histogram` |
//! | `Metric_Name` | the name (required) |
//! | `Metric_Namespace` | prefix, default `log_metric` (fluent-bit's) |
//! | `Metric_Subsystem` | second part, default the mode's name (fluent-bit's) |
//! | `Metric_Description` | the help text (required) |
//! | `Value_Field` | the numeric field; required for `gauge` and `histogram`; for `counter` the amount added (1 without it) |
//! | `Label_Field` | a field as a label (repeatable; a record accessor names the label by its last key) |
//! | `Add_Label` | `NAME FIELD`: label `NAME` from `FIELD` (repeatable) |
//! | `Kubernetes_Mode` | labels `namespace_name`, `pod_name`, `container_name`, `docker_id`, `pod_id` from `$kubernetes[...]` |
//! | `Regex` / `Exclude` | `FIELD REGEX`: only records whose field matches every `Regex` and no `Exclude` count |
//! | `Bucket` | a histogram's upper bound (repeatable; default Prometheus's 0.005 … 10) |
//! | `Discard_Logs` | drop every record after counting it |
//! | `Max_Label_Sets` | (vigil) the most distinct label sets kept, default 1000 |
//! | `Tag`, `Emitter_Name`, `Emitter_Mem_Buf_Limit`, `Flush_Interval_Sec`, `Flush_Interval_Nsec` | accepted, no effect (see below) |
//!
//! The full name is `namespace_subsystem_name` (empty parts left out), as
//! cmetrics builds it; a counter is exposed as `<name>_total` (a `Metric_Name`
//! that already ends in `_total` does not get it twice).
//!
//! Where fluent-bit emits the metrics as a separate stream of metric records
//! (hence `Tag` and the emitter keys), the metrics here live in a
//! [`LogMetrics`] store that the pipeline owns and exposes through
//! vigil-exposition (the `metrics` feature; the sidecar's `/metrics`), so a
//! Prometheus-style monitor scrapes them. Filters built from the same
//! section on several input threads share one metric: every filter with the
//! same full name adds to the same series, and two definitions of one name
//! that disagree (mode, labels, buckets) are a configuration error.
//!
//! Labels are values taken from records, so a field such as a request path
//! can make series without end. At most `Max_Label_Sets` label sets are
//! kept per metric; a record with a new label set past that is not counted,
//! `vigil_logpipe_log_to_metrics_label_sets_dropped_total{metric=...}`
//! counts it, and the first one is reported on stderr. A record whose value
//! field is missing or not a number (or, for a counter, negative) counts in
//! `vigil_logpipe_log_to_metrics_unreadable_values_total{metric=...}`.
//!
//! Unlike fluent-bit, whose rules decide at the first `Regex` that matches
//! (a later `Exclude` is not consulted), every `Regex` must match and no
//! `Exclude` may, as in the grep filter's default logic.

use super::grep::Rule;
use super::{Accessor, Action, COMMON_KEYS, Filter, split_kv, text_of};
use crate::Result;
use crate::config::{Entry, Section};
use crate::record::{Fields, Record, Value};
use parking_lot::Mutex;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

/// The keys a `[FILTER] Name log_to_metrics` reads.
pub const KEYS: &[&str] = &[
    "tag",
    "metric_mode",
    "metric_name",
    "metric_namespace",
    "metric_subsystem",
    "metric_description",
    "value_field",
    "label_field",
    "add_label",
    "kubernetes_mode",
    "regex",
    "exclude",
    "bucket",
    "discard_logs",
    "emitter_name",
    "emitter_mem_buf_limit",
    "flush_interval_sec",
    "flush_interval_nsec",
    "max_label_sets",
];

/// Prometheus's default histogram buckets (fluent-bit's default too).
pub const DEFAULT_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Label sets kept per metric unless `Max_Label_Sets` says otherwise: enough
/// for status codes × methods × a few hundred pods, small enough that a
/// label taken from an unbounded field cannot exhaust the sidecar's memory.
pub const DEFAULT_MAX_LABEL_SETS: usize = 1000;

/// fluent-bit's default `Metric_Namespace`.
const DEFAULT_NAMESPACE: &str = "log_metric";

const KUBE_LABELS: [&str; 5] = [
    "namespace_name",
    "pod_name",
    "container_name",
    "docker_id",
    "pod_id",
];

/// What a metric measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A count of matching records (or a running total of `Value_Field`).
    Counter,
    /// The last value of `Value_Field`.
    Gauge,
    /// The distribution of `Value_Field` over `Bucket`s.
    Histogram,
}

impl Mode {
    /// The name as `Metric_Mode` writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Counter => "counter",
            Mode::Gauge => "gauge",
            Mode::Histogram => "histogram",
        }
    }
}

/// One series of a metric.
#[derive(Debug, Clone, PartialEq)]
struct Series {
    labels: Vec<String>,
    /// Counter total, gauge value or histogram sum.
    value: f64,
    /// Histogram observations.
    count: u64,
    /// Histogram counts per bucket, not cumulative, `+Inf` last.
    buckets: Vec<u64>,
}

#[derive(Debug, Default)]
struct State {
    /// By the label values encoded as one key ([`push_key`]), so that a
    /// lookup of an existing series allocates nothing.
    series: HashMap<String, Series>,
    dropped_label_sets: u64,
    unreadable_values: u64,
    warned: bool,
}

/// One log-derived metric and its series.
#[derive(Debug)]
pub struct LogMetric {
    name: String,
    help: String,
    mode: Mode,
    label_names: Vec<String>,
    buckets: Vec<f64>,
    max_label_sets: usize,
    state: Mutex<State>,
}

/// A reading of one histogram series.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramReading {
    /// `(upper bound, cumulative count)`, the last bound `+Inf`.
    pub buckets: Vec<(f64, u64)>,
    /// Observations.
    pub count: u64,
    /// Their sum.
    pub sum: f64,
}

impl LogMetric {
    /// The full name (`namespace_subsystem_name`; a counter's samples add
    /// `_total`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The help text.
    pub fn help(&self) -> &str {
        &self.help
    }

    /// The mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The label names, in order.
    pub fn label_names(&self) -> &[String] {
        &self.label_names
    }

    /// A histogram's upper bounds (without `+Inf`).
    pub fn buckets(&self) -> &[f64] {
        &self.buckets
    }

    /// The counter total or gauge value of the series with these label
    /// values (in [`label_names`](LogMetric::label_names) order); a
    /// histogram's sum.
    pub fn value(&self, labels: &[&str]) -> Option<f64> {
        let st = self.state.lock();
        st.series.get(&key_of(labels)).map(|s| s.value)
    }

    /// A histogram series.
    pub fn histogram(&self, labels: &[&str]) -> Option<HistogramReading> {
        let st = self.state.lock();
        let s = st.series.get(&key_of(labels))?;
        Some(self.reading(s))
    }

    fn reading(&self, s: &Series) -> HistogramReading {
        let mut cum = 0;
        let mut buckets = Vec::with_capacity(s.buckets.len());
        for (i, n) in s.buckets.iter().enumerate() {
            cum += n;
            buckets.push((self.buckets.get(i).copied().unwrap_or(f64::INFINITY), cum));
        }
        HistogramReading {
            buckets,
            count: s.count,
            sum: s.value,
        }
    }

    /// Distinct label sets kept.
    pub fn label_sets(&self) -> usize {
        self.state.lock().series.len()
    }

    /// Records not counted because their label set was new and the metric
    /// already had `Max_Label_Sets`.
    pub fn dropped_label_sets(&self) -> u64 {
        self.state.lock().dropped_label_sets
    }

    /// Records whose value field was missing or not a usable number.
    pub fn unreadable_values(&self) -> u64 {
        self.state.lock().unreadable_values
    }

    fn unreadable(&self) {
        self.state.lock().unreadable_values += 1;
    }

    /// Adds `value` to the series whose encoded label key is `key`.
    fn record(&self, key: &str, value: f64) {
        let mut st = self.state.lock();
        if let Some(s) = st.series.get_mut(key) {
            self.apply(s, value);
            return;
        }
        if st.series.len() >= self.max_label_sets {
            st.dropped_label_sets += 1;
            if !st.warned {
                st.warned = true;
                warn(&format!(
                    "metric {}: more than {} label sets; records with a new label set are not counted (vigil_logpipe_log_to_metrics_label_sets_dropped_total counts them); raise Max_Label_Sets or label by a field with fewer values",
                    self.name, self.max_label_sets
                ));
            }
            return;
        }
        let mut s = Series {
            labels: decode_key(key),
            value: 0.0,
            count: 0,
            buckets: if self.mode == Mode::Histogram {
                vec![0; self.buckets.len() + 1]
            } else {
                Vec::new()
            },
        };
        self.apply(&mut s, value);
        st.series.insert(key.to_owned(), s);
    }

    fn apply(&self, s: &mut Series, value: f64) {
        match self.mode {
            Mode::Counter => s.value += value,
            Mode::Gauge => s.value = value,
            Mode::Histogram => {
                // `le` is inclusive: the first bound not below the value.
                let i = self.buckets.partition_point(|b| *b < value);
                if let Some(c) = s.buckets.get_mut(i) {
                    *c += 1;
                }
                s.count += 1;
                s.value += value;
            }
        }
    }

    fn same_shape(&self, other: &LogMetric) -> bool {
        self.mode == other.mode
            && self.label_names == other.label_names
            && self.buckets == other.buckets
    }

    /// The series sorted by label values (a stable exposition order).
    #[cfg(feature = "metrics")]
    fn sorted_series(&self) -> Vec<Series> {
        let mut v: Vec<Series> = self.state.lock().series.values().cloned().collect();
        v.sort_by(|a, b| a.labels.cmp(&b.labels));
        v
    }
}

/// A warning on stderr, in the engine's (fluent-bit's) shape.
fn warn(msg: &str) {
    let (secs, _) = crate::output::split_time(crate::input::now_ns());
    let (y, mo, d, h, mi, s) = crate::output::civil(secs);
    eprintln!(
        "[{y:04}/{mo:02}/{d:02} {h:02}:{mi:02}:{s:02}] [ warn] [filter:log_to_metrics] {msg}"
    );
}

/// Every log-derived metric of one pipeline. Shared by the filters (on
/// every input thread) and by whoever exposes them.
#[derive(Debug, Default)]
pub struct LogMetrics {
    metrics: Mutex<Vec<Arc<LogMetric>>>,
}

impl LogMetrics {
    /// An empty store.
    pub fn new() -> Self {
        LogMetrics::default()
    }

    /// The metrics defined so far, in definition order.
    pub fn metrics(&self) -> Vec<Arc<LogMetric>> {
        self.metrics.lock().clone()
    }

    /// The metric called `name` (its full name).
    pub fn get(&self, name: &str) -> Option<Arc<LogMetric>> {
        self.metrics.lock().iter().find(|m| m.name == name).cloned()
    }

    /// `m`, or the metric already defined under its name when that one has
    /// the same shape; an error message when it does not.
    fn define(&self, m: LogMetric) -> std::result::Result<Arc<LogMetric>, String> {
        let mut all = self.metrics.lock();
        if let Some(prev) = all.iter().find(|p| p.name == m.name) {
            if prev.same_shape(&m) {
                return Ok(prev.clone());
            }
            return Err(format!(
                "metric {} is already defined as a {} with labels [{}]{}",
                m.name,
                prev.mode.as_str(),
                prev.label_names.join(", "),
                if prev.mode == Mode::Histogram {
                    format!(" and buckets {:?}", prev.buckets)
                } else {
                    String::new()
                }
            ));
        }
        let m = Arc::new(m);
        all.push(m.clone());
        Ok(m)
    }
}

/// The filter: counts, measures or records the last value of matching
/// records into a [`LogMetric`]; passes every record on unchanged (or drops
/// all with `Discard_Logs`).
#[derive(Debug)]
pub struct LogToMetrics {
    metric: Arc<LogMetric>,
    rules: Vec<Rule>,
    labels: Vec<Accessor>,
    value: Option<Accessor>,
    discard: bool,
    /// Reused buffer for the encoded label key.
    key: String,
}

/// Whether `s` is a metric name of the classic character set.
fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Whether `s` is a label name of the classic character set.
fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with("__")
}

/// The label name a `Label_Field` gives: the field, or a record
/// accessor's last key (`$kubernetes['labels']['app']` → `app`).
fn label_name_of(field: &str) -> &str {
    let Some(rest) = field.strip_prefix('$') else {
        return field;
    };
    match rest.rfind('[') {
        Some(at) => rest[at + 1..]
            .trim_end_matches(']')
            .trim_matches(|c| c == '\'' || c == '"'),
        None => rest,
    }
}

/// A number from a field: integers and floats as they are, text that reads
/// as a number (the regex parsers' captures are text).
fn number_of(v: &Value) -> Option<f64> {
    match v {
        Value::Int(i) => Some(*i as f64),
        Value::Float(x) => Some(*x),
        Value::Str(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|x| !x.is_nan())
}

/// A label value from a field: text as it is, numbers and booleans as
/// text, anything else (null, lists, maps, a missing field) empty, as
/// fluent-bit does.
fn label_value_of(v: Option<&Value>) -> Cow<'_, str> {
    match v {
        Some(v @ (Value::Str(_) | Value::Int(_) | Value::Float(_) | Value::Bool(_))) => text_of(v),
        _ => Cow::Borrowed(""),
    }
}

/// Starts a series key. Never empty: comparing an empty key costs a
/// `memcmp` of nothing at a dangling address, which AVX-512 `memcmp`s turn
/// into a masked load with a microcode assist (measured: four times the
/// time of a whole counter update).
fn start_key(key: &mut String) {
    key.clear();
    key.push('#');
}

/// Appends one label value to a series key: its length, `:`, the value.
/// Length prefixes keep `("a,b", "c")` and `("a", "b,c")` apart whatever
/// the values hold.
fn push_key(key: &mut String, value: &str) {
    // The length in decimal without the formatting machinery (a tenth of
    // a counter update's time through `write!`).
    let mut digits = [0u8; 20];
    let mut n = value.len();
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[i..] {
        key.push(char::from(d));
    }
    key.push(':');
    key.push_str(value);
}

fn key_of(values: &[&str]) -> String {
    let mut k = String::new();
    start_key(&mut k);
    for v in values {
        push_key(&mut k, v);
    }
    k
}

fn decode_key(key: &str) -> Vec<String> {
    let mut key = key.strip_prefix('#').unwrap_or(key);
    let mut out = Vec::new();
    while let Some((len, rest)) = key.split_once(':') {
        let Ok(n) = len.parse::<usize>() else { break };
        let Some(v) = rest.get(..n) else { break };
        out.push(v.to_owned());
        key = &rest[n..];
    }
    out
}

/// fluent-bit's `Bucket` values: a plain decimal number.
fn parse_bucket(s: &Section, e: &Entry) -> Result<f64> {
    e.value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|x| x.is_finite())
        .ok_or_else(|| {
            s.error(
                Some(e),
                format!("Bucket '{}' is not a finite number", e.value),
            )
        })
}

impl LogToMetrics {
    /// Reads a `[FILTER] Name log_to_metrics` section; its metric is
    /// defined in `store` (or the one already there of the same name and
    /// shape is used).
    pub fn from_section(s: &Section, store: &LogMetrics) -> Result<LogToMetrics> {
        let mut keys = COMMON_KEYS.to_vec();
        keys.extend(KEYS);
        s.check_keys(&keys)?;
        let mode = match s.get("metric_mode").map(str::to_ascii_lowercase).as_deref() {
            None | Some("counter") => Mode::Counter,
            Some("gauge") => Mode::Gauge,
            Some("histogram") => Mode::Histogram,
            Some(other) => {
                return Err(s.error_at(
                    "metric_mode",
                    format!("Metric_Mode '{other}' is not counter, gauge or histogram"),
                ));
            }
        };
        let base = s
            .get("metric_name")
            .filter(|n| !n.is_empty())
            .ok_or_else(|| s.error(None, "log_to_metrics needs a Metric_Name"))?;
        let help = s
            .get("metric_description")
            .filter(|d| !d.is_empty())
            .ok_or_else(|| s.error(None, "log_to_metrics needs a Metric_Description"))?;
        let namespace = s.get("metric_namespace").unwrap_or(DEFAULT_NAMESPACE);
        let subsystem = s
            .get("metric_subsystem")
            .filter(|x| !x.is_empty())
            .unwrap_or(mode.as_str());
        let mut name = [namespace, subsystem, base]
            .iter()
            .filter(|p| !p.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join("_");
        if mode == Mode::Counter
            && let Some(stem) = name.strip_suffix("_total")
        {
            name = stem.to_owned();
        }
        if !is_metric_name(&name) {
            return Err(s.error_at(
                "metric_name",
                format!("'{name}' is not a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)"),
            ));
        }

        let value =
            match s.entry("value_field") {
                Some(e) => Some(Accessor::parse(&e.value).ok_or_else(|| {
                    s.error(Some(e), format!("bad record accessor '{}'", e.value))
                })?),
                None if mode != Mode::Counter => {
                    return Err(s.error(
                        None,
                        format!("Metric_Mode {} needs a Value_Field", mode.as_str()),
                    ));
                }
                None => None,
            };

        let mut label_names: Vec<String> = Vec::new();
        let mut labels = Vec::new();
        if s.get_bool_or("kubernetes_mode", false)? {
            for k in KUBE_LABELS {
                label_names.push(k.to_owned());
                labels.push(
                    Accessor::parse(&format!("$kubernetes['{k}']"))
                        .expect("a well-formed accessor"),
                );
            }
        }
        for e in &s.entries {
            let (lname, field) = if e.key.eq_ignore_ascii_case("label_field") {
                (label_name_of(&e.value), e.value.as_str())
            } else if e.key.eq_ignore_ascii_case("add_label") {
                split_kv(&e.value).ok_or_else(|| s.error(Some(e), "Add_Label wants NAME FIELD"))?
            } else {
                continue;
            };
            if !is_label_name(lname) || (mode == Mode::Histogram && lname == "le") {
                return Err(s.error(
                    Some(e),
                    format!("'{lname}' cannot be a label name ([a-zA-Z_][a-zA-Z0-9_]*, not __*, not le on a histogram)"),
                ));
            }
            if label_names.iter().any(|n| n == lname) {
                return Err(s.error(Some(e), format!("label '{lname}' is given twice")));
            }
            let acc = Accessor::parse(field)
                .ok_or_else(|| s.error(Some(e), format!("bad record accessor '{field}'")))?;
            label_names.push(lname.to_owned());
            labels.push(acc);
        }

        let mut buckets = Vec::new();
        for e in s.get_all("bucket") {
            if mode != Mode::Histogram {
                return Err(s.error(Some(e), "Bucket is only for Metric_Mode histogram"));
            }
            buckets.push(parse_bucket(s, e)?);
        }
        if mode == Mode::Histogram {
            if buckets.is_empty() {
                buckets = DEFAULT_BUCKETS.to_vec();
            }
            buckets.sort_by(f64::total_cmp);
            if buckets.windows(2).any(|w| w[0] == w[1]) {
                return Err(s.error_at("bucket", "a Bucket is given twice"));
            }
        }

        let rules = Rule::read_all(s)?;

        let max_label_sets = match s.get_usize("max_label_sets")? {
            Some(0) => {
                return Err(s.error_at("max_label_sets", "Max_Label_Sets must be at least 1"));
            }
            Some(n) => n,
            None => DEFAULT_MAX_LABEL_SETS,
        };
        let discard = s.get_bool_or("discard_logs", false)?;
        let metric = store
            .define(LogMetric {
                name,
                help: help.to_owned(),
                mode,
                label_names,
                buckets,
                max_label_sets,
                state: Mutex::new(State::default()),
            })
            .map_err(|m| s.error_at("metric_name", m))?;
        Ok(LogToMetrics {
            metric,
            rules,
            labels,
            value,
            discard,
            key: String::new(),
        })
    }

    /// The metric this filter feeds.
    pub fn metric(&self) -> &Arc<LogMetric> {
        &self.metric
    }

    fn matches(&self, fields: &Fields) -> bool {
        self.rules.iter().all(|r| r.hit(fields) != r.exclude)
    }
}

impl Filter for LogToMetrics {
    fn filter(&mut self, rec: &mut Record) -> Action {
        let after = if self.discard {
            Action::Drop
        } else {
            Action::Keep
        };
        if !self.matches(&rec.fields) {
            return after;
        }
        let value = match &self.value {
            None => 1.0,
            Some(acc) => match acc.get(&rec.fields).and_then(number_of) {
                Some(x) if self.metric.mode != Mode::Counter || (x >= 0.0 && x.is_finite()) => x,
                _ => {
                    self.metric.unreadable();
                    return after;
                }
            },
        };
        start_key(&mut self.key);
        for acc in &self.labels {
            push_key(&mut self.key, &label_value_of(acc.get(&rec.fields)));
        }
        self.metric.record(&self.key, value);
        after
    }
}

#[cfg(feature = "metrics")]
mod expose {
    use super::*;
    use vigil_exposition::MetricType;
    use vigil_exposition::client::{Collector, CollectorWriter, Registry};

    struct LogMetricsCollector(Arc<LogMetrics>);

    /// `le` as Prometheus clients write it: always with a fraction or an
    /// exponent (`1.0`, not `1`), as OpenMetrics wants.
    fn le_text(b: f64) -> String {
        let s = b.to_string();
        if s.contains(['.', 'e', 'E']) {
            s
        } else {
            format!("{s}.0")
        }
    }

    impl Collector for LogMetricsCollector {
        fn collect(&self, out: &mut CollectorWriter<'_, '_>) {
            let metrics = self.0.metrics();
            for m in &metrics {
                let ty = match m.mode {
                    Mode::Counter => MetricType::Counter,
                    Mode::Gauge => MetricType::Gauge,
                    Mode::Histogram => MetricType::Histogram,
                };
                let series = m.sorted_series();
                let mut f = out.family(&m.name, ty, &m.help);
                for s in &series {
                    let mut labels: Vec<(&str, &str)> = m
                        .label_names
                        .iter()
                        .map(String::as_str)
                        .zip(s.labels.iter().map(String::as_str))
                        .collect();
                    match m.mode {
                        Mode::Counter => {
                            f.sample("_total", &labels, s.value);
                        }
                        Mode::Gauge => {
                            f.sample("", &labels, s.value);
                        }
                        Mode::Histogram => {
                            let r = m.reading(s);
                            let les: Vec<String> = r
                                .buckets
                                .iter()
                                .map(|(b, _)| {
                                    if b.is_infinite() {
                                        "+Inf".to_owned()
                                    } else {
                                        le_text(*b)
                                    }
                                })
                                .collect();
                            for ((_, n), le) in r.buckets.iter().zip(&les) {
                                labels.push(("le", le));
                                f.sample("_bucket", &labels, *n as f64);
                                labels.pop();
                            }
                            f.sample("_sum", &labels, r.sum);
                            f.sample("_count", &labels, r.count as f64);
                        }
                    }
                }
            }
            if metrics.is_empty() {
                return;
            }
            let mut f = out.family(
                "vigil_logpipe_log_to_metrics_label_sets_dropped",
                MetricType::Counter,
                "Records not counted by a log_to_metrics filter because their label set was new and the metric already had Max_Label_Sets.",
            );
            for m in &metrics {
                f.sample(
                    "_total",
                    &[("metric", m.name.as_str())],
                    m.dropped_label_sets() as f64,
                );
            }
            let mut f = out.family(
                "vigil_logpipe_log_to_metrics_unreadable_values",
                MetricType::Counter,
                "Records whose value field was missing or not a usable number.",
            );
            for m in &metrics {
                f.sample(
                    "_total",
                    &[("metric", m.name.as_str())],
                    m.unreadable_values() as f64,
                );
            }
        }
    }

    impl LogMetrics {
        /// Exposes every metric of this store (now and defined later)
        /// through `registry`.
        pub fn register(self: &Arc<Self>, registry: &Registry) {
            registry.register_collector(LogMetricsCollector(self.clone()));
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use crate::config::SectionKind;

        #[test]
        fn exposed_and_read_back_strictly() {
            let store = Arc::new(LogMetrics::new());
            let c = Section::new(SectionKind::Filter, "f.conf", 1)
                .with("Name", "log_to_metrics")
                .with("Metric_Namespace", "demo")
                .with("Metric_Subsystem", "access_log")
                .with("Metric_Name", "requests_total")
                .with("Metric_Description", "Requests by code.")
                .with("Label_Field", "code");
            let h = Section::new(SectionKind::Filter, "f.conf", 20)
                .with("Name", "log_to_metrics")
                .with("Metric_Mode", "histogram")
                .with("Metric_Namespace", "demo")
                .with("Metric_Subsystem", "http")
                .with("Metric_Name", "size_bytes")
                .with("Metric_Description", "Response sizes.")
                .with("Value_Field", "size")
                .with("Bucket", "100")
                .with("Bucket", "1000");
            let mut fc = LogToMetrics::from_section(&c, &store).unwrap();
            let mut fh = LogToMetrics::from_section(&h, &store).unwrap();
            for (code, size) in [("200", "612"), ("500", "20"), ("200", "5000")] {
                let mut r = Record::line("t", 0, "");
                r.fields.set("code", code);
                r.fields.set("size", size);
                fc.filter(&mut r);
                fh.filter(&mut r);
            }
            let reg = Registry::new();
            store.register(&reg);
            let mut out = Vec::new();
            reg.encode(vigil_exposition::Format::Text, &mut out);
            let text = String::from_utf8(out).unwrap();
            for want in [
                "# TYPE demo_access_log_requests_total counter\n",
                "demo_access_log_requests_total{code=\"200\"} 2\n",
                "demo_access_log_requests_total{code=\"500\"} 1\n",
                "# TYPE demo_http_size_bytes histogram\n",
                "demo_http_size_bytes_bucket{le=\"100.0\"} 1\n",
                "demo_http_size_bytes_bucket{le=\"1000.0\"} 2\n",
                "demo_http_size_bytes_bucket{le=\"+Inf\"} 3\n",
                "demo_http_size_bytes_sum 5632\n",
                "demo_http_size_bytes_count 3\n",
                "vigil_logpipe_log_to_metrics_label_sets_dropped_total{metric=\"demo_access_log_requests\"} 0\n",
            ] {
                assert!(text.contains(want), "{want} missing in\n{text}");
            }
            vigil_exposition::parse::parse_families(
                text.as_bytes(),
                vigil_exposition::Format::Text,
                vigil_exposition::parse::Mode::Strict,
            )
            .unwrap();
            let mut om = Vec::new();
            reg.encode(vigil_exposition::Format::OpenMetrics, &mut om);
            vigil_exposition::parse::parse_families(
                &om,
                vigil_exposition::Format::OpenMetrics,
                vigil_exposition::parse::Mode::Strict,
            )
            .unwrap();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SectionKind;

    fn section(entries: &[(&str, &str)]) -> Section {
        let mut s = Section::new(SectionKind::Filter, "m.conf", 10).with("Name", "log_to_metrics");
        for (k, v) in entries {
            s = s.with(k, v);
        }
        s
    }

    fn rec(fields: &[(&str, Value)]) -> Record {
        let mut r = Record::line("t", 0, "x");
        for (k, v) in fields {
            r.fields.set(*k, v.clone());
        }
        r
    }

    #[test]
    fn counter_of_matching_records_by_label() {
        let store = LogMetrics::new();
        let mut f = LogToMetrics::from_section(
            &section(&[
                ("Metric_Name", "errors"),
                ("Metric_Description", "5xx"),
                ("Regex", "code ^5"),
                ("Exclude", "path ^/health"),
                ("Label_Field", "code"),
            ]),
            &store,
        )
        .unwrap();
        assert_eq!(f.metric().name(), "log_metric_counter_errors");
        for (code, path) in [
            ("500", "/a"),
            ("502", "/b"),
            ("500", "/c"),
            ("200", "/a"),
            ("503", "/healthz"),
        ] {
            let mut r = rec(&[("code", code.into()), ("path", path.into())]);
            assert_eq!(f.filter(&mut r), Action::Keep);
            assert_eq!(r.fields.get("code"), Some(&Value::from(code)), "unchanged");
        }
        let m = store.get("log_metric_counter_errors").unwrap();
        assert_eq!(m.value(&["500"]), Some(2.0));
        assert_eq!(m.value(&["502"]), Some(1.0));
        assert_eq!(m.value(&["200"]), None);
        assert_eq!(m.value(&["503"]), None);
    }

    #[test]
    fn gauge_keeps_the_last_value_and_counts_unreadable_ones() {
        let store = LogMetrics::new();
        let mut f = LogToMetrics::from_section(
            &section(&[
                ("Metric_Mode", "gauge"),
                ("Metric_Namespace", ""),
                ("Metric_Subsystem", "queue"),
                ("Metric_Name", "depth"),
                ("Metric_Description", "Queue depth."),
                ("Value_Field", "$stats['depth']"),
            ]),
            &store,
        )
        .unwrap();
        let mk = |v: Value| {
            let mut inner = Fields::new();
            inner.push("depth", v);
            rec(&[("stats", Value::Map(inner))])
        };
        f.filter(&mut mk(Value::Int(7)));
        f.filter(&mut mk(Value::Float(2.5)));
        f.filter(&mut mk(Value::from("nope")));
        f.filter(&mut rec(&[]));
        let m = store.get("queue_depth").unwrap();
        assert_eq!(m.value(&[]), Some(2.5));
        assert_eq!(m.unreadable_values(), 2);
    }

    #[test]
    fn histogram_buckets_are_inclusive_upper_bounds() {
        let store = LogMetrics::new();
        let mut f = LogToMetrics::from_section(
            &section(&[
                ("Metric_Mode", "histogram"),
                ("Metric_Name", "size"),
                ("Metric_Description", "Sizes."),
                ("Value_Field", "size"),
                ("Bucket", "1000"),
                ("Bucket", "10"),
                ("Bucket", "100"),
            ]),
            &store,
        )
        .unwrap();
        for v in ["10", "11", "100", "5000", "-", "0"] {
            f.filter(&mut rec(&[("size", v.into())]));
        }
        let m = store.get("log_metric_histogram_size").unwrap();
        assert_eq!(m.buckets(), [10.0, 100.0, 1000.0]);
        let h = m.histogram(&[]).unwrap();
        assert_eq!(
            h.buckets,
            [(10.0, 2), (100.0, 4), (1000.0, 4), (f64::INFINITY, 5)]
        );
        assert_eq!((h.count, h.sum), (5, 5121.0));
        assert_eq!(m.unreadable_values(), 1);
    }

    #[test]
    fn counter_with_a_value_field_adds_it() {
        let store = LogMetrics::new();
        let mut f = LogToMetrics::from_section(
            &section(&[
                ("Metric_Namespace", "app"),
                ("Metric_Subsystem", "http"),
                ("Metric_Name", "sent_bytes_total"),
                ("Metric_Description", "Bytes sent."),
                ("Value_Field", "size"),
            ]),
            &store,
        )
        .unwrap();
        assert_eq!(f.metric().name(), "app_http_sent_bytes");
        for v in [Value::Int(100), Value::from("50"), Value::Int(-3)] {
            f.filter(&mut rec(&[("size", v)]));
        }
        assert_eq!(f.metric().value(&[]), Some(150.0));
        assert_eq!(f.metric().unreadable_values(), 1);
    }

    #[test]
    fn label_sets_are_capped_and_the_overflow_counted() {
        let store = LogMetrics::new();
        let mut f = LogToMetrics::from_section(
            &section(&[
                ("Metric_Name", "by_path"),
                ("Metric_Description", "Requests by path."),
                ("Label_Field", "path"),
                ("Add_Label", "verb method"),
                ("Max_Label_Sets", "3"),
            ]),
            &store,
        )
        .unwrap();
        for i in 0..10 {
            let mut r = rec(&[("path", format!("/p{i}").into()), ("method", "GET".into())]);
            f.filter(&mut r);
        }
        // Known label sets still count past the cap.
        f.filter(&mut rec(&[
            ("path", "/p0".into()),
            ("method", "GET".into()),
        ]));
        let m = f.metric().clone();
        assert_eq!(m.label_names(), ["path", "verb"]);
        assert_eq!(m.label_sets(), 3);
        assert_eq!(m.dropped_label_sets(), 7);
        assert_eq!(m.value(&["/p0", "GET"]), Some(2.0));
        assert_eq!(m.value(&["/p9", "GET"]), None);
    }

    #[test]
    fn kubernetes_mode_and_missing_labels() {
        let store = LogMetrics::new();
        let mut f = LogToMetrics::from_section(
            &section(&[
                ("Metric_Name", "lines"),
                ("Metric_Description", "Lines."),
                ("Kubernetes_Mode", "on"),
                ("Label_Field", "$kubernetes['labels']['app']"),
            ]),
            &store,
        )
        .unwrap();
        let mut labels = Fields::new();
        labels.push("app", "web");
        let mut k = Fields::new();
        k.push("namespace_name", "default");
        k.push("pod_name", "web-1");
        k.push("labels", Value::Map(labels));
        f.filter(&mut rec(&[("kubernetes", Value::Map(k))]));
        f.filter(&mut rec(&[]));
        let m = f.metric();
        assert_eq!(
            m.label_names(),
            [
                "namespace_name",
                "pod_name",
                "container_name",
                "docker_id",
                "pod_id",
                "app"
            ]
        );
        assert_eq!(m.value(&["default", "web-1", "", "", "", "web"]), Some(1.0));
        assert_eq!(m.value(&["", "", "", "", "", ""]), Some(1.0));
    }

    #[test]
    fn discard_logs_drops_every_record_after_counting() {
        let store = LogMetrics::new();
        let mut f = LogToMetrics::from_section(
            &section(&[
                ("Metric_Name", "n"),
                ("Metric_Description", "n"),
                ("Regex", "log ^x$"),
                ("Discard_Logs", "true"),
            ]),
            &store,
        )
        .unwrap();
        assert_eq!(f.filter(&mut rec(&[])), Action::Drop);
        assert_eq!(f.filter(&mut rec(&[("log", "y".into())])), Action::Drop);
        assert_eq!(f.metric().value(&[]), Some(1.0));
    }

    #[test]
    fn same_name_shares_a_metric_and_a_different_shape_is_an_error() {
        let store = LogMetrics::new();
        let s = section(&[("Metric_Name", "n"), ("Metric_Description", "n")]);
        let mut a = LogToMetrics::from_section(&s, &store).unwrap();
        let mut b = LogToMetrics::from_section(&s, &store).unwrap();
        a.filter(&mut rec(&[]));
        b.filter(&mut rec(&[]));
        assert_eq!(store.metrics().len(), 1);
        assert_eq!(a.metric().value(&[]), Some(2.0));
        let other = section(&[
            ("Metric_Name", "n"),
            ("Metric_Description", "n"),
            ("Label_Field", "code"),
        ]);
        let e = LogToMetrics::from_section(&other, &store)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("m.conf:12:") && e.contains("already defined as a counter"),
            "{e}"
        );
    }

    #[test]
    fn configuration_errors_name_the_line() {
        let store = LogMetrics::new();
        // (entries, where the error is, what it says)
        type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
        let cases: &[Case<'_>] = &[
            (
                &[("Metric_Description", "d")],
                "m.conf:10:",
                "needs a Metric_Name",
            ),
            (
                &[("Metric_Name", "n")],
                "m.conf:10:",
                "needs a Metric_Description",
            ),
            (
                &[
                    ("Metric_Name", "n"),
                    ("Metric_Description", "d"),
                    ("Metric_Mode", "summary"),
                ],
                "m.conf:14:",
                "not counter, gauge or histogram",
            ),
            (
                &[
                    ("Metric_Name", "n"),
                    ("Metric_Description", "d"),
                    ("Metric_Mode", "gauge"),
                ],
                "m.conf:10:",
                "needs a Value_Field",
            ),
            (
                &[("Metric_Name", "n-x"), ("Metric_Description", "d")],
                "m.conf:12:",
                "is not a metric name",
            ),
            (
                &[
                    ("Metric_Name", "n"),
                    ("Metric_Description", "d"),
                    ("Label_Field", "a-b"),
                ],
                "m.conf:14:",
                "cannot be a label name",
            ),
            (
                &[
                    ("Metric_Name", "n"),
                    ("Metric_Description", "d"),
                    ("Label_Field", "a"),
                    ("Add_Label", "a b"),
                ],
                "m.conf:15:",
                "given twice",
            ),
            (
                &[
                    ("Metric_Name", "n"),
                    ("Metric_Description", "d"),
                    ("Bucket", "1"),
                ],
                "m.conf:14:",
                "only for Metric_Mode histogram",
            ),
            (
                &[
                    ("Metric_Name", "n"),
                    ("Metric_Description", "d"),
                    ("Metric_Mode", "histogram"),
                    ("Value_Field", "v"),
                    ("Bucket", "x"),
                ],
                "m.conf:16:",
                "not a finite number",
            ),
            (
                &[
                    ("Metric_Name", "n"),
                    ("Metric_Description", "d"),
                    ("Regex", "code ("),
                ],
                "m.conf:14:",
                "bad regex",
            ),
            (
                &[
                    ("Metric_Name", "n"),
                    ("Metric_Description", "d"),
                    ("Colour", "red"),
                ],
                "m.conf:14:",
                "unknown key 'Colour'",
            ),
            (
                &[
                    ("Metric_Name", "n"),
                    ("Metric_Description", "d"),
                    ("Max_Label_Sets", "0"),
                ],
                "m.conf:14:",
                "at least 1",
            ),
        ];
        for (entries, at, what) in cases {
            let e = LogToMetrics::from_section(&section(entries), &store)
                .unwrap_err()
                .to_string();
            assert!(e.starts_with(at) && e.contains(what), "{entries:?}: {e}");
        }
    }

    #[test]
    fn series_keys_round_trip() {
        for vals in [&[][..], &[""][..], &["a:b", "3:x"][..], &["", "", "é"][..]] {
            assert_eq!(decode_key(&key_of(vals)), vals);
        }
        assert_ne!(key_of(&["a,b", "c"]), key_of(&["a", "b,c"]));
        let long = "x".repeat(1234);
        assert_eq!(
            key_of(&[&long, "0123456789ab"]),
            format!("#1234:{long}12:0123456789ab")
        );
        assert_eq!(decode_key(&key_of(&[&long, "y"])), [long.as_str(), "y"]);
    }
}
