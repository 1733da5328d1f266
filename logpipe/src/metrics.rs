//! The pipeline's own counters, per input and per output, under fluent-bit's
//! metric names where fluent-bit has one (`fluentbit_input_records_total`,
//! `fluentbit_output_proc_records_total`, `fluentbit_output_retries_total`,
//! ...), labelled `name="tail.0"` as fluent-bit labels them. Buffer use has
//! no fluent-bit counterpart with the same meaning, so it is
//! `vigil_logpipe_input_buffered_bytes` and
//! `vigil_logpipe_output_buffered_bytes`.
//!
//! The counters are plain atomics and always kept; the `metrics` feature
//! adds [`Metrics::register`], which exposes them through a
//! vigil-exposition registry.

use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// All counters of one pipeline.
#[derive(Debug, Default)]
pub struct Metrics {
    /// One entry per input, in configuration order.
    pub inputs: Mutex<Vec<Arc<InputMetrics>>>,
    /// One entry per output, in configuration order.
    pub outputs: Mutex<Vec<Arc<OutputMetrics>>>,
    /// The metrics the `log_to_metrics` filters derive from records.
    pub log_metrics: Arc<crate::filter::LogMetrics>,
}

/// Counters of one input.
#[derive(Debug, Default)]
pub struct InputMetrics {
    /// The instance name (`tail.0`).
    pub name: String,
    /// Records read (`fluentbit_input_records_total`).
    pub records: AtomicU64,
    /// Bytes read (`fluentbit_input_bytes_total`).
    pub bytes: AtomicU64,
    /// Estimated bytes held in memory, counted against `Mem_Buf_Limit`.
    pub buffered: AtomicU64,
}

impl InputMetrics {
    /// Zeroed counters for input `name`.
    pub fn new(name: &str) -> Self {
        InputMetrics {
            name: name.to_owned(),
            ..Default::default()
        }
    }

    pub(crate) fn add_in(&self, records: usize, bytes: usize) {
        self.records.fetch_add(records as u64, Relaxed);
        self.bytes.fetch_add(bytes as u64, Relaxed);
    }
}

/// Counters of one output.
#[derive(Debug, Default)]
pub struct OutputMetrics {
    /// The instance name (`es.0`).
    pub name: String,
    /// Records delivered (`fluentbit_output_proc_records_total`).
    pub proc_records: AtomicU64,
    /// Bytes delivered, estimated in memory size
    /// (`fluentbit_output_proc_bytes_total`).
    pub proc_bytes: AtomicU64,
    /// Failed flushes (`fluentbit_output_errors_total`).
    pub errors: AtomicU64,
    /// Retries scheduled (`fluentbit_output_retries_total`).
    pub retries: AtomicU64,
    /// Batches given up after the retry limit
    /// (`fluentbit_output_retries_failed_total`).
    pub retries_failed: AtomicU64,
    /// Records dropped: refused for good or over the retry limit
    /// (`fluentbit_output_dropped_records_total`).
    pub dropped_records: AtomicU64,
    /// Records in retried batches (`fluentbit_output_retried_records_total`).
    pub retried_records: AtomicU64,
    /// Bytes waiting in the output's buffer (memory or disk).
    pub buffered: AtomicU64,
}

impl OutputMetrics {
    /// Zeroed counters for output `name`.
    pub fn new(name: &str) -> Self {
        OutputMetrics {
            name: name.to_owned(),
            ..Default::default()
        }
    }

    pub(crate) fn add_out(&self, records: usize, bytes: usize) {
        self.proc_records.fetch_add(records as u64, Relaxed);
        self.proc_bytes.fetch_add(bytes as u64, Relaxed);
    }

    /// A failed flush; `dropped` records given up with it.
    pub(crate) fn add_error(&self, dropped: usize) {
        self.errors.fetch_add(1, Relaxed);
        self.dropped_records.fetch_add(dropped as u64, Relaxed);
    }

    pub(crate) fn add_retry(&self, records: usize) {
        self.retries.fetch_add(1, Relaxed);
        self.retried_records.fetch_add(records as u64, Relaxed);
    }

    pub(crate) fn add_retry_failed(&self, records: usize) {
        self.retries_failed.fetch_add(1, Relaxed);
        self.dropped_records.fetch_add(records as u64, Relaxed);
    }

    pub(crate) fn set_buffered(&self, bytes: u64) {
        self.buffered.store(bytes, Relaxed);
    }
}

impl Metrics {
    /// Total records delivered by all outputs.
    pub fn delivered(&self) -> u64 {
        self.outputs
            .lock()
            .iter()
            .map(|o| o.proc_records.load(Relaxed))
            .sum()
    }

    /// Total records dropped by all outputs.
    pub fn dropped(&self) -> u64 {
        self.outputs
            .lock()
            .iter()
            .map(|o| o.dropped_records.load(Relaxed))
            .sum()
    }
}

#[cfg(feature = "metrics")]
mod expose {
    use super::*;
    use vigil_exposition::MetricType;
    use vigil_exposition::client::{Collector, CollectorWriter, Registry};

    struct PipelineCollector(Arc<Metrics>);

    type InField = fn(&InputMetrics) -> &AtomicU64;
    type OutField = fn(&OutputMetrics) -> &AtomicU64;

    impl Collector for PipelineCollector {
        fn collect(&self, out: &mut CollectorWriter<'_, '_>) {
            let inputs = self.0.inputs.lock().clone();
            let outputs = self.0.outputs.lock().clone();
            let ins: [(&str, MetricType, &str, InField); 3] = [
                (
                    "fluentbit_input_records",
                    MetricType::Counter,
                    "Records read by the input.",
                    |m| &m.records,
                ),
                (
                    "fluentbit_input_bytes",
                    MetricType::Counter,
                    "Bytes read by the input.",
                    |m| &m.bytes,
                ),
                (
                    "vigil_logpipe_input_buffered_bytes",
                    MetricType::Gauge,
                    "Estimated bytes the input holds in memory (counted against Mem_Buf_Limit).",
                    |m| &m.buffered,
                ),
            ];
            for (name, ty, help, field) in ins {
                let suffix = if ty == MetricType::Counter {
                    "_total"
                } else {
                    ""
                };
                let mut f = out.family(name, ty, help);
                for m in &inputs {
                    f.sample(
                        suffix,
                        &[("name", m.name.as_str())],
                        field(m).load(Relaxed) as f64,
                    );
                }
            }
            let outs: [(&str, MetricType, &str, OutField); 8] = [
                (
                    "fluentbit_output_proc_records",
                    MetricType::Counter,
                    "Records delivered.",
                    |m| &m.proc_records,
                ),
                (
                    "fluentbit_output_proc_bytes",
                    MetricType::Counter,
                    "Bytes delivered.",
                    |m| &m.proc_bytes,
                ),
                (
                    "fluentbit_output_errors",
                    MetricType::Counter,
                    "Failed flushes.",
                    |m| &m.errors,
                ),
                (
                    "fluentbit_output_retries",
                    MetricType::Counter,
                    "Retries scheduled.",
                    |m| &m.retries,
                ),
                (
                    "fluentbit_output_retries_failed",
                    MetricType::Counter,
                    "Batches given up after the retry limit.",
                    |m| &m.retries_failed,
                ),
                (
                    "fluentbit_output_dropped_records",
                    MetricType::Counter,
                    "Records dropped (refused, or over the retry limit).",
                    |m| &m.dropped_records,
                ),
                (
                    "fluentbit_output_retried_records",
                    MetricType::Counter,
                    "Records in retried batches.",
                    |m| &m.retried_records,
                ),
                (
                    "vigil_logpipe_output_buffered_bytes",
                    MetricType::Gauge,
                    "Bytes waiting in the output's buffer (memory or disk).",
                    |m| &m.buffered,
                ),
            ];
            for (name, ty, help, field) in outs {
                let suffix = if ty == MetricType::Counter {
                    "_total"
                } else {
                    ""
                };
                let mut f = out.family(name, ty, help);
                for m in &outputs {
                    f.sample(
                        suffix,
                        &[("name", m.name.as_str())],
                        field(m).load(Relaxed) as f64,
                    );
                }
            }
        }
    }

    impl Metrics {
        /// Exposes these counters, and the log-derived metrics, through
        /// `registry`.
        pub fn register(self: &Arc<Self>, registry: &Registry) {
            registry.register_collector(PipelineCollector(self.clone()));
            self.log_metrics.register(registry);
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn exposed_with_fluent_bit_names() {
            let m = Arc::new(Metrics::default());
            let i = Arc::new(InputMetrics::new("tail.0"));
            i.add_in(3, 30);
            m.inputs.lock().push(i);
            let o = Arc::new(OutputMetrics::new("es.0"));
            o.add_out(2, 20);
            o.add_retry(2);
            m.outputs.lock().push(o);
            let reg = Registry::new();
            m.register(&reg);
            let mut out = Vec::new();
            reg.encode(vigil_exposition::Format::Text, &mut out);
            let text = String::from_utf8(out).unwrap();
            assert!(
                text.contains("fluentbit_input_records_total{name=\"tail.0\"} 3\n"),
                "{text}"
            );
            assert!(
                text.contains("fluentbit_output_proc_records_total{name=\"es.0\"} 2\n"),
                "{text}"
            );
            assert!(
                text.contains("fluentbit_output_retries_total{name=\"es.0\"} 1\n"),
                "{text}"
            );
            vigil_exposition::parse::parse_families(
                text.as_bytes(),
                vigil_exposition::Format::Text,
                vigil_exposition::parse::Mode::Strict,
            )
            .unwrap();
        }
    }
}
