//! Alert delivery to Alertmanager (API v2), as Prometheus's notifier does
//! it: a bounded queue that drops the oldest alerts when full (and counts
//! them), one sender thread that POSTs batches to every configured
//! Alertmanager, with the global external labels added to each alert.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use vigil_rules::rules::{Notifier, PostableAlert};

/// Prometheus's `--alertmanager.notification-queue-capacity` default.
pub const DEFAULT_QUEUE_CAPACITY: usize = 10_000;
/// Alerts per POST (Prometheus's `maxBatchSize`).
pub const MAX_BATCH: usize = 256;

/// One Alertmanager to deliver to.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertmanagerTarget {
    /// `http://host:port/prefix/api/v2/alerts`.
    pub url: String,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl AlertmanagerTarget {
    /// The v2 alerts endpoint of `scheme://addr` under `path_prefix`.
    pub fn new(scheme: &str, addr: &str, path_prefix: &str, timeout: Duration) -> Self {
        let prefix = path_prefix.trim_end_matches('/');
        AlertmanagerTarget {
            url: format!("{scheme}://{addr}{prefix}/api/v2/alerts"),
            timeout,
        }
    }
}

/// Delivery counters, per Alertmanager where Prometheus has the label.
#[derive(Debug, Default)]
pub struct NotifyMetrics {
    /// `prometheus_notifications_dropped_total`.
    pub dropped: AtomicU64,
    /// Per Alertmanager.
    pub per_am: Mutex<Vec<AmStats>>,
}

/// Counters of one Alertmanager.
#[derive(Debug, Clone, Default)]
pub struct AmStats {
    /// Its alerts URL (the `alertmanager` label).
    pub url: String,
    /// `prometheus_notifications_sent_total`.
    pub sent: u64,
    /// `prometheus_notifications_errors_total`.
    pub errors: u64,
    /// Sum of request latencies, seconds.
    pub latency_sum: f64,
    /// Requests made.
    pub requests: u64,
}

struct Shared {
    queue: Mutex<VecDeque<PostableAlert>>,
    wake: Condvar,
    stop: Mutex<bool>,
    targets: Mutex<Vec<AlertmanagerTarget>>,
    external_labels: Mutex<Vec<(String, String)>>,
    capacity: usize,
    metrics: NotifyMetrics,
}

/// Sends alerts to Alertmanagers from a background thread.
pub struct AlertmanagerNotifier {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl AlertmanagerNotifier {
    /// A notifier with a queue of `capacity` alerts, sending to nobody
    /// until [`AlertmanagerNotifier::configure`] names Alertmanagers.
    pub fn new(capacity: usize) -> Self {
        let shared = Arc::new(Shared {
            queue: Mutex::new(VecDeque::new()),
            wake: Condvar::new(),
            stop: Mutex::new(false),
            targets: Mutex::new(Vec::new()),
            external_labels: Mutex::new(Vec::new()),
            capacity: capacity.max(1),
            metrics: NotifyMetrics::default(),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("notifier".into())
            .spawn(move || sender(s))
            .ok();
        AlertmanagerNotifier {
            shared,
            thread: Mutex::new(thread),
        }
    }

    /// Sets where alerts go and which external labels they carry.
    pub fn configure(
        &self,
        targets: Vec<AlertmanagerTarget>,
        external_labels: Vec<(String, String)>,
    ) {
        *self.shared.targets.lock() = targets;
        *self.shared.external_labels.lock() = external_labels;
    }

    /// The configured Alertmanagers.
    pub fn targets(&self) -> Vec<AlertmanagerTarget> {
        self.shared.targets.lock().clone()
    }

    /// Alerts waiting to be sent.
    pub fn queue_length(&self) -> usize {
        self.shared.queue.lock().len()
    }

    /// The queue's capacity.
    pub fn capacity(&self) -> usize {
        self.shared.capacity
    }

    /// Delivery counters.
    pub fn metrics(&self) -> &NotifyMetrics {
        &self.shared.metrics
    }

    /// Renders the notifier's metrics in text format 0.0.4, with
    /// Prometheus's names.
    pub fn write_metrics(&self, out: &mut String) {
        use std::fmt::Write as _;
        let m = &self.shared.metrics;
        let _ = writeln!(
            out,
            "# HELP prometheus_notifications_dropped_total Total number of alerts dropped due to errors when sending to Alertmanager.\n# TYPE prometheus_notifications_dropped_total counter\nprometheus_notifications_dropped_total {}",
            m.dropped.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP prometheus_notifications_queue_length The number of alert notifications in the queue.\n# TYPE prometheus_notifications_queue_length gauge\nprometheus_notifications_queue_length {}",
            self.queue_length()
        );
        let _ = writeln!(
            out,
            "# HELP prometheus_notifications_queue_capacity The capacity of the alert notifications queue.\n# TYPE prometheus_notifications_queue_capacity gauge\nprometheus_notifications_queue_capacity {}",
            self.capacity()
        );
        let _ = writeln!(
            out,
            "# HELP prometheus_notifications_alertmanagers_discovered The number of alertmanagers discovered and active.\n# TYPE prometheus_notifications_alertmanagers_discovered gauge\nprometheus_notifications_alertmanagers_discovered {}",
            self.shared.targets.lock().len()
        );
        let per = m.per_am.lock();
        for (name, help, kind, idx) in [
            (
                "prometheus_notifications_sent_total",
                "Total number of alerts sent.",
                "counter",
                0,
            ),
            (
                "prometheus_notifications_errors_total",
                "Total number of sent alerts affected by errors.",
                "counter",
                1,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for am in per.iter() {
                let v = if idx == 0 { am.sent } else { am.errors };
                let _ = writeln!(out, "{name}{{alertmanager=\"{}\"}} {v}", escape(&am.url));
            }
        }
        let _ = writeln!(
            out,
            "# HELP prometheus_notifications_latency_seconds Latency quantiles for sending alert notifications.\n# TYPE prometheus_notifications_latency_seconds summary"
        );
        for am in per.iter() {
            let (u, sum, count) = (escape(&am.url), am.latency_sum, am.requests);
            let _ = writeln!(
                out,
                "prometheus_notifications_latency_seconds_sum{{alertmanager=\"{u}\"}} {sum}\nprometheus_notifications_latency_seconds_count{{alertmanager=\"{u}\"}} {count}"
            );
        }
    }

    /// Stops the sender after it has tried to deliver what is queued.
    pub fn stop(&self) {
        *self.shared.stop.lock() = true;
        self.shared.wake.notify_all();
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }
}

impl Drop for AlertmanagerNotifier {
    fn drop(&mut self) {
        self.stop();
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Notifier for AlertmanagerNotifier {
    fn notify(&self, alerts: &[PostableAlert]) {
        let ext = self.shared.external_labels.lock().clone();
        let mut q = self.shared.queue.lock();
        for a in alerts {
            let mut a = a.clone();
            for (k, v) in &ext {
                a.labels.entry(k.clone()).or_insert_with(|| v.clone());
            }
            q.push_back(a);
        }
        // Full queue: the oldest go, as in Prometheus.
        let over = q.len().saturating_sub(self.shared.capacity);
        if over > 0 {
            q.drain(..over);
            self.shared
                .metrics
                .dropped
                .fetch_add(over as u64, Ordering::Relaxed);
        }
        drop(q);
        self.shared.wake.notify_one();
    }
}

fn sender(shared: Arc<Shared>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    loop {
        let batch: Vec<PostableAlert> = {
            let mut q = shared.queue.lock();
            while q.is_empty() {
                if *shared.stop.lock() {
                    return;
                }
                shared.wake.wait_for(&mut q, Duration::from_millis(500));
            }
            let n = q.len().min(MAX_BATCH);
            q.drain(..n).collect()
        };
        let body = match serde_json::to_vec(&batch) {
            Ok(b) => b,
            Err(_) => continue,
        };
        let targets = shared.targets.lock().clone();
        if targets.is_empty() {
            // Nowhere to send: Prometheus drops them and counts it.
            shared
                .metrics
                .dropped
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            continue;
        }
        let mut any_ok = false;
        for t in &targets {
            let started = Instant::now();
            let result = agent
                .post(&t.url)
                .config()
                .timeout_global(Some(t.timeout))
                .build()
                .header("Content-Type", "application/json")
                .header("User-Agent", "vigil-monitor")
                .send(&body[..]);
            let ok = matches!(&result, Ok(r) if r.status().is_success());
            any_ok |= ok;
            let mut per = shared.metrics.per_am.lock();
            let idx = match per.iter().position(|p| p.url == t.url) {
                Some(i) => i,
                None => {
                    per.push(AmStats {
                        url: t.url.clone(),
                        ..AmStats::default()
                    });
                    per.len() - 1
                }
            };
            let e = &mut per[idx];
            e.sent += batch.len() as u64;
            if !ok {
                e.errors += batch.len() as u64;
            }
            e.latency_sum += started.elapsed().as_secs_f64();
            e.requests += 1;
        }
        if !any_ok {
            shared
                .metrics
                .dropped
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
        }
    }
}
