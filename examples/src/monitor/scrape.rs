//! The scrape manager: one scrape pool per job, one thread per target.
//!
//! Design notes:
//! - A target's loop is a plain thread (isolation: a slow or hostile
//!   target only ever blocks its own thread). Its first scrape is at a
//!   fixed offset within the interval, from a hash of the target (as
//!   Prometheus spreads them), then every interval; missed ticks are skipped.
//! - Each scrape is one HTTP GET (ureq) with a deadline for the whole
//!   exchange, body included, and a body size limit; the body is parsed by
//!   vigil-exposition in scrape mode and appended through one appender,
//!   committed once, so a scrape is stored all or nothing.
//! - Per-target memory: a cache of the last scrape's series in body order,
//!   each the series' raw text (name and label block, as written, packed in
//!   one buffer) with its store reference. A steady scrape finds each line
//!   at the cache's cursor by comparing bytes and appends by reference,
//!   without hashing, building labels, running relabelling or allocating;
//!   a target that reorders its series falls back to a hash index of the
//!   cache. The cache holds exactly the series of the last scrape, which is
//!   also what staleness needs: a cached series absent from this scrape
//!   gets a staleness marker and leaves the cache.
//! - Name resolution: IP literals are not looked up, host names at most
//!   every 30 s (ureq would start a thread per request to time a lookup).
//!
//! Not done: TLS (`https`), authentication, proxies, native histograms,
//! `label_name_length_limit`/`label_value_length_limit`,
//! `track_timestamps_staleness`, `scrape_protocols`; `globalUrl` is the
//! scrape URL as is (Prometheus puts the host name in for `localhost`).
//! - Reloads: an unchanged job keeps its loops; in a changed job, a target
//!   that stays hands its cache to its new loop (which waits for the old
//!   one to finish), so no staleness marker is written for it; a target
//!   that goes away writes markers for all its series.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::BuildHasher;
use std::io::Read;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::{Condvar, Mutex};
use serde_json::{Map, Value, json};

use vigil_exposition::client::{Counter, Family, Gauge, Registry, Summary};
use vigil_exposition::parse::{Entry, Mode, Parser};
use vigil_exposition::{Format, MetricType, STALE_NAN_BITS};
use vigil_tsdb::Error as TsdbError;
use vigil_tsdb::db::Db;
use vigil_tsdb::head::Appender;
use vigil_tsdb::index::SeriesId;
use vigil_tsdb::labels::Labels;

use super::config::{Config, ScrapeConfig, format_duration};
use super::relabel::relabel;
pub use super::sd::{DroppedTarget, Target};
use super::sd::{FNV_OFFSET, FileDiscovery, TargetGroup, fnv1a, targets_from_groups};

/// What the scraper asks for: OpenMetrics first, then text 0.0.4, then
/// anything (parsed as text), as Prometheus does.
pub const ACCEPT: &str = "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";

/// How often file_sd files are checked for changes.
const SD_POLL: Duration = Duration::from_millis(200);

/// A target's health after its last scrape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Not scraped yet.
    Unknown,
    /// The last scrape worked.
    Up,
    /// The last scrape failed (see `last_error`).
    Down,
}

impl Health {
    /// `up`, `down` or `unknown`, as the API writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Up => "up",
            Health::Down => "down",
        }
    }
}

/// One active target and how its scrapes go.
#[derive(Debug, Clone)]
pub struct TargetStatus {
    /// Labels before relabelling.
    pub discovered_labels: Vec<(String, String)>,
    /// Labels of its series.
    pub labels: Vec<(String, String)>,
    /// The job.
    pub scrape_pool: String,
    /// The URL scraped.
    pub scrape_url: String,
    /// The URL as seen from elsewhere (the same here).
    pub global_url: String,
    /// Why the last scrape failed; empty when it worked.
    pub last_error: String,
    /// When the last scrape started.
    pub last_scrape: Option<SystemTime>,
    /// How long it took.
    pub last_scrape_duration: Duration,
    /// Up, down, or not scraped yet.
    pub health: Health,
    /// Its interval.
    pub scrape_interval: Duration,
    /// Its timeout.
    pub scrape_timeout: Duration,
}

/// What the targets say about a metric family (`# TYPE`, `# HELP`, `# UNIT`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MetricMetadata {
    /// The family name.
    pub metric: String,
    /// `counter`, `gauge`, `histogram`, `summary`, `unknown`, ...
    pub metric_type: String,
    /// The help text.
    pub help: String,
    /// The unit (OpenMetrics), or empty.
    pub unit: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Meta {
    metric_type: Option<MetricType>,
    help: String,
    unit: String,
}

/// The manager's own metrics, with Prometheus's names.
#[derive(Clone)]
struct Metrics {
    exceeded_sample_limit: Counter,
    exceeded_body_size_limit: Counter,
    exceeded_label_limits: Counter,
    out_of_order: Counter,
    duplicate: Counter,
    out_of_bounds: Counter,
    pool_targets: Family<[String; 1], Gauge>,
    sd_discovered: Family<[String; 2], Gauge>,
    sd_read_errors: Counter,
    interval_length: Family<[String; 1], Summary>,
    pool_reloads: Counter,
}

impl Metrics {
    fn new(registry: &Registry) -> Metrics {
        let m = Metrics {
            exceeded_sample_limit: Counter::new(),
            exceeded_body_size_limit: Counter::new(),
            exceeded_label_limits: Counter::new(),
            out_of_order: Counter::new(),
            duplicate: Counter::new(),
            out_of_bounds: Counter::new(),
            pool_targets: Family::with_label_names(&["scrape_job"]),
            sd_discovered: Family::with_label_names(&["name", "config"]),
            sd_read_errors: Counter::new(),
            interval_length: Family::<[String; 1], Summary>::builder()
                .label_names(&["interval"])
                .constructor(|| {
                    Summary::builder()
                        .quantiles(&[0.01, 0.05, 0.5, 0.9, 0.99])
                        .build()
                })
                .build(),
            pool_reloads: Counter::new(),
        };
        // A second manager on the same registry (tests) keeps the first's
        // registrations; its counts are then not exported, which is harmless.
        let _ = registry.register(
            "prometheus_target_scrapes_exceeded_sample_limit_total",
            "Total number of scrapes that hit the sample limit and were rejected.",
            m.exceeded_sample_limit.clone(),
        );
        let _ = registry.register(
            "prometheus_target_scrapes_exceeded_body_size_limit_total",
            "Total number of scrapes that hit the body size limit",
            m.exceeded_body_size_limit.clone(),
        );
        let _ = registry.register(
            "prometheus_target_scrapes_exceeded_label_limits_total",
            "Total number of scrapes that hit the label limits and were rejected.",
            m.exceeded_label_limits.clone(),
        );
        let _ = registry.register(
            "prometheus_target_scrapes_sample_out_of_order_total",
            "Total number of samples rejected due to not being out of the expected order.",
            m.out_of_order.clone(),
        );
        let _ = registry.register(
            "prometheus_target_scrapes_sample_duplicate_timestamp_total",
            "Total number of samples rejected due to duplicate timestamps but different values.",
            m.duplicate.clone(),
        );
        let _ = registry.register(
            "prometheus_target_scrapes_sample_out_of_bounds_total",
            "Total number of samples rejected due to timestamp falling out of the time bounds.",
            m.out_of_bounds.clone(),
        );
        let _ = registry.register(
            "prometheus_target_scrape_pool_targets",
            "Current number of targets in this scrape pool.",
            m.pool_targets.clone(),
        );
        let _ = registry.register(
            "prometheus_sd_discovered_targets",
            "Current number of discovered targets.",
            m.sd_discovered.clone(),
        );
        let _ = registry.register(
            "prometheus_sd_file_read_errors_total",
            "The number of File-SD read errors.",
            m.sd_read_errors.clone(),
        );
        let _ = registry.register(
            "prometheus_target_interval_length_seconds",
            "Actual intervals between scrapes.",
            m.interval_length.clone(),
        );
        let _ = registry.register(
            "prometheus_target_scrape_pool_reloads_total",
            "Total number of scrape pool reloads.",
            m.pool_reloads.clone(),
        );
        m
    }
}

/// What a loop publishes for the API.
#[derive(Debug, Clone)]
struct Status {
    health: Health,
    last_error: String,
    last_scrape: Option<SystemTime>,
    last_duration: Duration,
}

/// How a loop was asked to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StopMode {
    Run,
    /// Ends, writing staleness markers for its series when `stale`.
    Stop {
        stale: bool,
    },
}

struct LoopShared {
    stop: Mutex<StopMode>,
    cv: Condvar,
    status: Mutex<Status>,
    metadata: Mutex<HashMap<String, Meta>>,
}

impl LoopShared {
    fn signal(&self, stale: bool) {
        *self.stop.lock() = StopMode::Stop { stale };
        self.cv.notify_all();
    }

    /// Waits until `deadline`; `Some(stale)` when asked to stop first.
    fn wait_until(&self, deadline: Instant) -> Option<bool> {
        let mut g = self.stop.lock();
        loop {
            if let StopMode::Stop { stale } = *g {
                return Some(stale);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            self.cv.wait_for(&mut g, deadline - now);
        }
    }
}

struct LoopHandle {
    target: Target,
    shared: Arc<LoopShared>,
    thread: Option<JoinHandle<SeriesState>>,
}

struct Pool {
    cfg: Arc<ScrapeConfig>,
    statics: Vec<TargetGroup>,
    files: Vec<FileDiscovery>,
    loops: HashMap<u64, LoopHandle>,
    /// Discovery order of the active targets, for stable listings.
    order: Vec<u64>,
    dropped: Vec<DroppedTarget>,
}

struct State {
    pools: BTreeMap<String, Pool>,
    /// Stopped loops not joined yet.
    retired: Vec<JoinHandle<SeriesState>>,
    offset_seed: u64,
    stopped: bool,
}

struct Inner {
    db: Arc<Db>,
    metrics: Metrics,
    state: Mutex<State>,
    sd_stop: Mutex<bool>,
    sd_cv: Condvar,
    sd_thread: Mutex<Option<JoinHandle<()>>>,
}

/// Runs the scrape loops of a configuration; see the module docs.
pub struct ScrapeManager {
    inner: Arc<Inner>,
}

impl ScrapeManager {
    /// A manager with no jobs that stores into `db` and registers its own
    /// metrics in `registry`. Call [`apply_config`](Self::apply_config).
    pub fn new(db: Arc<Db>, registry: &Registry) -> Self {
        let inner = Arc::new(Inner {
            db,
            metrics: Metrics::new(registry),
            state: Mutex::new(State {
                pools: BTreeMap::new(),
                retired: Vec::new(),
                offset_seed: 0,
                stopped: false,
            }),
            sd_stop: Mutex::new(false),
            sd_cv: Condvar::new(),
            sd_thread: Mutex::new(None),
        });
        let weak = Arc::downgrade(&inner);
        let handle = std::thread::Builder::new()
            .name("vigil-sd".into())
            .spawn(move || {
                loop {
                    let Some(inner) = weak.upgrade() else { return };
                    {
                        let mut stop = inner.sd_stop.lock();
                        if !*stop {
                            inner.sd_cv.wait_for(&mut stop, SD_POLL);
                        }
                        if *stop {
                            return;
                        }
                    }
                    inner.refresh_files();
                }
            })
            .ok();
        *inner.sd_thread.lock() = handle;
        ScrapeManager { inner }
    }

    /// Makes the running loops match `cfg`: jobs that are unchanged keep
    /// their loops; targets that appear start; targets that go away stop
    /// and mark their series stale. Does not wait for stopping loops.
    pub fn apply_config(&self, cfg: &Config) {
        let inner = &self.inner;
        let mut st = inner.state.lock();
        if st.stopped {
            return;
        }
        let mut seed = FNV_OFFSET;
        for (n, v) in &cfg.global.external_labels {
            seed = fnv1a(seed, n.as_bytes());
            seed = fnv1a(seed, v.as_bytes());
        }
        st.offset_seed = seed;
        let wanted: HashSet<&str> = cfg
            .scrape_configs
            .iter()
            .map(|s| s.job_name.as_str())
            .collect();
        let gone: Vec<String> = st
            .pools
            .keys()
            .filter(|k| !wanted.contains(k.as_str()))
            .cloned()
            .collect();
        for job in gone {
            if let Some(pool) = st.pools.remove(&job) {
                for (_, mut lh) in pool.loops {
                    lh.shared.signal(true);
                    st.retired.extend(lh.thread.take());
                }
                inner
                    .metrics
                    .pool_targets
                    .with(std::array::from_ref(&job), |g| g.set(0));
                inner
                    .metrics
                    .sd_discovered
                    .with(&["scrape".into(), job], |g| g.set(0));
            }
        }
        for sc in &cfg.scrape_configs {
            if st.pools.get(&sc.job_name).is_some_and(|p| *p.cfg == *sc) {
                continue;
            }
            let old = st.pools.remove(&sc.job_name);
            if old.is_some() {
                inner.metrics.pool_reloads.inc();
            }
            let mut pool = Pool {
                cfg: Arc::new(sc.clone()),
                statics: sc
                    .static_configs
                    .iter()
                    .enumerate()
                    .map(|(i, s)| TargetGroup::from_static(s, i))
                    .collect(),
                files: sc
                    .file_sd_configs
                    .iter()
                    .cloned()
                    .map(FileDiscovery::new)
                    .collect(),
                loops: HashMap::new(),
                order: Vec::new(),
                dropped: Vec::new(),
            };
            for f in &mut pool.files {
                f.refresh();
            }
            let mut old_loops = old.map(|p| p.loops).unwrap_or_default();
            let (targets, dropped) = pool.discover();
            for t in targets {
                let prev = old_loops.remove(&t.hash).and_then(|mut lh| {
                    lh.shared.signal(false);
                    lh.thread.take()
                });
                inner.start_loop(&mut pool, t, prev, seed);
            }
            for (_, mut lh) in old_loops {
                lh.shared.signal(true);
                st.retired.extend(lh.thread.take());
            }
            pool.dropped = dropped;
            inner.publish_pool_metrics(&pool);
            st.pools.insert(sc.job_name.clone(), pool);
        }
        st.retired.retain(|h| !h.is_finished());
    }

    /// Every active target, by job, in discovery order.
    pub fn active_targets(&self) -> Vec<TargetStatus> {
        let st = self.inner.state.lock();
        let mut out = Vec::new();
        for (job, pool) in &st.pools {
            for h in &pool.order {
                let Some(lh) = pool.loops.get(h) else {
                    continue;
                };
                let s = lh.shared.status.lock().clone();
                out.push(TargetStatus {
                    discovered_labels: lh.target.discovered.clone(),
                    labels: lh.target.labels.clone(),
                    scrape_pool: job.clone(),
                    scrape_url: lh.target.url.clone(),
                    global_url: lh.target.url.clone(),
                    last_error: s.last_error,
                    last_scrape: s.last_scrape,
                    last_scrape_duration: s.last_duration,
                    health: s.health,
                    scrape_interval: lh.target.interval,
                    scrape_timeout: lh.target.timeout,
                });
            }
        }
        out
    }

    /// Every target relabelling dropped (or that could not be made).
    pub fn dropped_targets(&self) -> Vec<DroppedTarget> {
        let st = self.inner.state.lock();
        st.pools
            .values()
            .flat_map(|p| p.dropped.iter().cloned())
            .collect()
    }

    /// The current file_sd errors (a file that does not parse keeps its
    /// last good targets; this says why it is not read).
    pub fn discovery_errors(&self) -> Vec<String> {
        let st = self.inner.state.lock();
        st.pools
            .values()
            .flat_map(|p| p.files.iter().flat_map(|f| f.errors()))
            .map(|e| e.to_string())
            .collect()
    }

    /// The metadata every target exposed, deduplicated, sorted by metric.
    pub fn metadata(&self) -> Vec<MetricMetadata> {
        let st = self.inner.state.lock();
        let mut set = std::collections::BTreeSet::new();
        for pool in st.pools.values() {
            for lh in pool.loops.values() {
                for (name, m) in lh.shared.metadata.lock().iter() {
                    set.insert(MetricMetadata {
                        metric: name.clone(),
                        metric_type: m
                            .metric_type
                            .unwrap_or(MetricType::Unknown)
                            .openmetrics_word()
                            .to_owned(),
                        help: m.help.clone(),
                        unit: m.unit.clone(),
                    });
                }
            }
        }
        set.into_iter().collect()
    }

    /// Stops every loop and waits for them (each writes staleness markers
    /// for its series), and the discovery thread.
    pub fn stop(&self) {
        let handles = {
            let mut st = self.inner.state.lock();
            st.stopped = true;
            let mut handles = std::mem::take(&mut st.retired);
            for pool in st.pools.values_mut() {
                for lh in pool.loops.values_mut() {
                    lh.shared.signal(true);
                    handles.extend(lh.thread.take());
                }
            }
            handles
        };
        for h in handles {
            let _ = h.join();
        }
        *self.inner.sd_stop.lock() = true;
        self.inner.sd_cv.notify_all();
        if let Some(h) = self.inner.sd_thread.lock().take() {
            let _ = h.join();
        }
    }
}

impl Drop for ScrapeManager {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Pool {
    fn discover(&self) -> (Vec<Target>, Vec<DroppedTarget>) {
        targets_from_groups(
            &self.cfg,
            self.statics
                .iter()
                .chain(self.files.iter().flat_map(|f| f.groups())),
        )
    }
}

impl Inner {
    fn publish_pool_metrics(&self, pool: &Pool) {
        let job = pool.cfg.job_name.clone();
        self.metrics
            .pool_targets
            .with(std::array::from_ref(&job), |g| {
                g.set(pool.loops.len() as i64)
            });
        self.metrics
            .sd_discovered
            .with(&["scrape".into(), job], |g| {
                g.set((pool.loops.len() + pool.dropped.len()) as i64)
            });
    }

    fn start_loop(
        &self,
        pool: &mut Pool,
        target: Target,
        prev: Option<JoinHandle<SeriesState>>,
        offset_seed: u64,
    ) {
        let shared = Arc::new(LoopShared {
            stop: Mutex::new(StopMode::Run),
            cv: Condvar::new(),
            status: Mutex::new(Status {
                health: Health::Unknown,
                last_error: String::new(),
                last_scrape: None,
                last_duration: Duration::ZERO,
            }),
            metadata: Mutex::new(HashMap::new()),
        });
        let ctx = LoopCtx {
            db: Arc::clone(&self.db),
            cfg: Arc::clone(&pool.cfg),
            target: target.clone(),
            shared: Arc::clone(&shared),
            metrics: self.metrics.clone(),
            offset_seed,
        };
        let thread = std::thread::Builder::new()
            .name(format!("scrape {}", target.url))
            .spawn(move || ctx.run(prev))
            .ok();
        pool.order.push(target.hash);
        pool.loops.insert(
            target.hash,
            LoopHandle {
                target,
                shared,
                thread,
            },
        );
    }

    /// Re-reads changed file_sd files and resyncs the pools they feed.
    fn refresh_files(&self) {
        let mut st = self.state.lock();
        if st.stopped {
            return;
        }
        let seed = st.offset_seed;
        let mut retired = Vec::new();
        for pool in st.pools.values_mut() {
            let mut changed = false;
            let mut errors_before = 0;
            let mut errors_after = 0;
            for f in &mut pool.files {
                errors_before += f.read_errors();
                changed |= f.refresh();
                errors_after += f.read_errors();
            }
            if errors_after > errors_before {
                self.metrics
                    .sd_read_errors
                    .inc_by(errors_after - errors_before);
            }
            if !changed {
                continue;
            }
            let (targets, dropped) = pool.discover();
            let keep: HashSet<u64> = targets.iter().map(|t| t.hash).collect();
            let gone: Vec<u64> = pool
                .loops
                .keys()
                .copied()
                .filter(|h| !keep.contains(h))
                .collect();
            for h in gone {
                if let Some(mut lh) = pool.loops.remove(&h) {
                    lh.shared.signal(true);
                    retired.extend(lh.thread.take());
                }
            }
            pool.order.retain(|h| keep.contains(h));
            for t in targets {
                if !pool.loops.contains_key(&t.hash) {
                    self.start_loop(pool, t, None, seed);
                }
            }
            pool.dropped = dropped;
            self.publish_pool_metrics(pool);
        }
        st.retired.extend(retired);
        st.retired.retain(|h| !h.is_finished());
    }
}

/// A series of a scrape, in the order of the body.
#[derive(Debug, Clone, Copy)]
struct Slot {
    /// Its key (the series text as written) in the cache's arena.
    start: usize,
    len: usize,
    /// `None` when metric relabelling drops it.
    id: Option<SeriesId>,
    /// The scrape (iteration) that last saw it.
    seen: u64,
    /// Its samples carry their own timestamps (no staleness markers then,
    /// as Prometheus).
    explicit_ts: bool,
    /// False after a handover to a loop with a changed configuration: the
    /// labels must be recomputed before the reference is trusted.
    verified: bool,
}

/// The series of one scrape in body order, keys packed in one arena.
///
/// Targets write their series in the same order every time, so the next
/// scrape finds each series at the cursor: a sequential walk through two
/// arrays instead of a hash probe that misses the CPU cache per sample
/// (profiling 100 targets × 1,000 series showed the hash-map probe as
/// the largest cost of the loop).
#[derive(Default)]
struct SeriesCache {
    keys: Vec<u8>,
    slots: Vec<Slot>,
}

impl SeriesCache {
    fn key(&self, s: &Slot) -> &[u8] {
        &self.keys[s.start..s.start + s.len]
    }

    fn push(&mut self, key: &[u8], slot: Slot) {
        let start = self.keys.len();
        self.keys.extend_from_slice(key);
        self.slots.push(Slot {
            start,
            len: key.len(),
            ..slot
        });
    }

    fn clear(&mut self) {
        self.keys.clear();
        self.slots.clear();
    }

    /// Gives back memory a past, much larger scrape left behind (a hostile
    /// target that once sent a million series), keeping room for `keys`
    /// key bytes and `slots` series.
    fn trim(&mut self, keys: usize, slots: usize) {
        if self.keys.capacity() > 2 * keys + (64 << 10) {
            self.keys.shrink_to(keys + keys / 4);
        }
        if self.slots.capacity() > 2 * slots + 1024 {
            self.slots.shrink_to(slots + slots / 4);
        }
    }
}

/// A loop's memory, handed over across reloads.
#[derive(Default)]
struct SeriesState {
    /// The series of the last successful scrape.
    prev: SeriesCache,
    /// The series of the scrape in progress (becomes `prev`).
    cur: SeriesCache,
    /// `prev` by key hash, built on the first lookup of a scrape that is
    /// not at the cursor (a target that changed its order or its series).
    index: HashMap<u64, usize>,
    index_built: bool,
    hasher: std::collections::hash_map::RandomState,
    /// Series appended through the slow path in this scrape (duplicate
    /// lines of a new series are refused with it).
    new_ids: HashSet<SeriesId>,
    iter: u64,
    /// `up`, `scrape_duration_seconds`, `scrape_samples_scraped`,
    /// `scrape_samples_post_metric_relabeling`, `scrape_series_added`.
    report: [Option<SeriesId>; 5],
    key: Vec<u8>,
    body: Vec<u8>,
    /// Samples appended by the last scrape, to size the next appender.
    last_len: usize,
    /// Where the next series is expected in `prev`.
    cursor: usize,
    /// Whether `cur` is being built. Until a scrape departs from the last
    /// one's order, `cur` is not built at all: the first `taken` slots of
    /// `prev` are this scrape's series so far (no copying in the steady
    /// state).
    cur_built: bool,
    taken: usize,
}

impl SeriesState {
    /// Prev slot `j` (its `seen` already updated) is a series of this
    /// scrape, found at the cursor when `in_order`.
    fn take(&mut self, j: usize, in_order: bool) {
        if !self.cur_built && in_order && j == self.taken {
            self.taken += 1;
            return;
        }
        self.materialize();
        let slot = self.prev.slots[j];
        self.cur.push(&self.key, slot);
    }

    /// A series of this scrape that is new (or resolved again) under the
    /// current key.
    fn add(&mut self, slot: Slot) {
        self.materialize();
        self.cur.push(&self.key, slot);
    }

    /// Starts `cur` with the slots taken so far.
    fn materialize(&mut self) {
        if self.cur_built {
            return;
        }
        self.cur_built = true;
        let n = self.taken;
        let end = n
            .checked_sub(1)
            .map_or(0, |i| self.prev.slots[i].start + self.prev.slots[i].len);
        self.cur.keys.extend_from_slice(&self.prev.keys[..end]);
        self.cur.slots.extend_from_slice(&self.prev.slots[..n]);
    }

    /// The `prev` slot holding `key`, looked up at `cursor` first.
    fn find(&mut self, cursor: usize) -> Option<usize> {
        if let Some(s) = self.prev.slots.get(cursor)
            && self.prev.key(s) == self.key.as_slice()
        {
            return Some(cursor);
        }
        if !self.index_built {
            self.index.clear();
            for (i, s) in self.prev.slots.iter().enumerate() {
                let h = self.hasher.hash_one(self.prev.key(s));
                self.index.entry(h).or_insert(i);
            }
            self.index_built = true;
        }
        let h = self.hasher.hash_one(self.key.as_slice());
        let i = *self.index.get(&h)?;
        (self.prev.key(&self.prev.slots[i]) == self.key.as_slice()).then_some(i)
    }

    /// Ends a successful scrape: `prev` slots not seen are returned for
    /// staleness markers, and the scrape's series become `prev`.
    fn finish(&mut self, stale: &mut Vec<SeriesId>) {
        let iter = self.iter;
        // Not built: this scrape is the first `taken` slots of the last.
        let from = if self.cur_built { 0 } else { self.taken };
        for s in &self.prev.slots[from..] {
            if s.seen != iter
                && !s.explicit_ts
                && let Some(id) = s.id
                && !self.new_ids.contains(&id)
            {
                stale.push(id);
            }
        }
        stale.retain(|id| !self.new_ids.contains(id));
        if self.cur_built {
            std::mem::swap(&mut self.prev, &mut self.cur);
        } else {
            let n = self.taken;
            let end = n
                .checked_sub(1)
                .map_or(0, |i| self.prev.slots[i].start + self.prev.slots[i].len);
            self.prev.keys.truncate(end);
            self.prev.slots.truncate(n);
        }
        self.reset_scrape();
    }

    /// Forgets everything (after a failed scrape or at the end); returns
    /// the series that get staleness markers.
    fn forget(&mut self, stale: &mut Vec<SeriesId>) {
        for s in &self.prev.slots {
            if !s.explicit_ts
                && let Some(id) = s.id
            {
                stale.push(id);
            }
        }
        self.prev.clear();
        self.reset_scrape();
    }

    fn reset_scrape(&mut self) {
        self.cur.clear();
        let (keys, slots) = (self.prev.keys.len(), self.prev.slots.len());
        self.cur.trim(keys, slots);
        self.prev.trim(keys, slots);
        if self.index.capacity() > 2 * self.prev.slots.len() + 1024 {
            self.index = HashMap::new();
        }
        self.index.clear();
        self.index_built = false;
        self.new_ids.clear();
        self.cursor = 0;
        self.cur_built = false;
        self.taken = 0;
    }
}

const REPORT_NAMES: [&str; 5] = [
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
];

struct LoopCtx {
    db: Arc<Db>,
    cfg: Arc<ScrapeConfig>,
    target: Target,
    shared: Arc<LoopShared>,
    metrics: Metrics,
    offset_seed: u64,
}

/// How long a resolved host name is reused.
const RESOLVE_TTL: Duration = Duration::from_secs(30);

/// ureq's resolver, minus its cost per request: with a deadline set, ureq
/// resolves on a new thread so that a lookup can time out, which for a
/// loop scraping every second was a thread created per scrape (visible in
/// profiles as thread creation and context switches). IP literals need no
/// lookup at all; a host name is looked up (on ureq's thread, under the
/// deadline) at most once per [`RESOLVE_TTL`].
#[derive(Debug, Default)]
struct CachingResolver {
    inner: ureq::unversioned::resolver::DefaultResolver,
    cache: Mutex<
        Option<(
            String,
            Instant,
            ureq::unversioned::resolver::ResolvedSocketAddrs,
        )>,
    >,
}

impl ureq::unversioned::resolver::Resolver for CachingResolver {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: ureq::unversioned::transport::NextTimeout,
    ) -> Result<ureq::unversioned::resolver::ResolvedSocketAddrs, ureq::Error> {
        if let Some(auth) = uri.authority() {
            let host = auth.host();
            let bare = host
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or(host);
            let port = auth.port_u16().unwrap_or(80);
            if let Ok(ip) = bare.parse::<std::net::IpAddr>() {
                let mut v = self.empty();
                v.push(std::net::SocketAddr::new(ip, port));
                return Ok(v);
            }
            let key = auth.as_str();
            if let Some((k, at, addrs)) = &*self.cache.lock()
                && k == key
                && at.elapsed() < RESOLVE_TTL
            {
                return Ok(addrs.clone());
            }
            let addrs = self.inner.resolve(uri, config, timeout)?;
            *self.cache.lock() = Some((key.to_owned(), Instant::now(), addrs.clone()));
            return Ok(addrs);
        }
        self.inner.resolve(uri, config, timeout)
    }
}

/// Why a scrape failed.
enum Fail {
    Http(String),
    BodyTooLarge,
    Append(String),
    SampleLimit,
    LabelLimit(String),
}

impl Fail {
    fn message(&self) -> String {
        match self {
            Fail::Http(s) | Fail::Append(s) | Fail::LabelLimit(s) => s.clone(),
            Fail::BodyTooLarge => "body size limit exceeded".into(),
            Fail::SampleLimit => "sample limit exceeded".into(),
        }
    }
}

#[derive(Default)]
struct Counts {
    scraped: u64,
    post_relabel: u64,
    added: u64,
}

fn now_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Go's `time.Duration.String()` (`1m0s`, `15s`, `200ms`, `1.5s`): the
/// `interval` label of `prometheus_target_interval_length_seconds` as
/// Prometheus writes it, so that existing queries match.
fn go_duration(d: Duration) -> String {
    let ms = d.as_millis() as u64;
    if ms == 0 {
        return "0s".into();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (h, m, s_ms) = (ms / 3_600_000, ms / 60_000 % 60, ms % 60_000);
    let secs = if s_ms % 1000 == 0 {
        format!("{}s", s_ms / 1000)
    } else {
        let frac = format!("{:03}", s_ms % 1000);
        format!("{}.{}s", s_ms / 1000, frac.trim_end_matches('0'))
    };
    if h > 0 {
        format!("{h}h{m}m{secs}")
    } else if m > 0 {
        format!("{m}m{secs}")
    } else {
        secs
    }
}

/// Go's `strconv.FormatFloat(x, 'f', -1, 64)` for the timeout header.
fn seconds_text(d: Duration) -> String {
    let s = format!("{}", d.as_secs_f64());
    s.strip_suffix(".0").map(str::to_owned).unwrap_or(s)
}

impl LoopCtx {
    fn run(self, prev: Option<JoinHandle<SeriesState>>) -> SeriesState {
        let mut st = prev.and_then(|h| h.join().ok()).unwrap_or_default();
        for slot in &mut st.prev.slots {
            slot.verified = false;
        }
        let interval = self.target.interval;
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(self.target.timeout))
            .http_status_as_error(false)
            .proxy(None)
            .max_idle_connections(1)
            .max_idle_connections_per_host(1)
            // ureq's default buffers are 128 KiB each way per connection;
            // with a kept-alive connection per target that is most of the
            // memory of a 200-target monitor. A scrape request is a few
            // hundred bytes, and 32 KiB of response headers is plenty.
            .input_buffer_size(32 * 1024)
            .output_buffer_size(4 * 1024)
            .max_response_header_size(32 * 1024)
            .user_agent(concat!("vigil-monitor/", env!("CARGO_PKG_VERSION")))
            .build();
        let agent = ureq::Agent::with_parts(
            config,
            ureq::unversioned::transport::DefaultConnector::default(),
            CachingResolver::default(),
        );
        // Prometheus's spread: the first scrape is at the wall-clock instant
        // that is `hash ^ seed` modulo the interval, so a target keeps its
        // phase across restarts and targets spread over the interval.
        let iv = interval.as_nanos().max(1) as u64;
        let now_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let base = iv - now_ns % iv;
        let mut next_ns = base + (self.target.hash ^ self.offset_seed) % iv;
        if next_ns > iv {
            next_ns -= iv;
        }
        let mut next = Instant::now() + Duration::from_nanos(next_ns);
        let mut last_start: Option<Instant> = None;
        // Made once: the loop formats nothing per scrape.
        let interval_label = [go_duration(interval)];
        let timeout_header = seconds_text(self.target.timeout);
        let stale = loop {
            if let Some(stale) = self.shared.wait_until(next) {
                break stale;
            }
            let started = Instant::now();
            if let Some(prev) = last_start {
                self.metrics.interval_length.with(&interval_label, |s| {
                    s.observe((started - prev).as_secs_f64())
                });
            }
            last_start = Some(started);
            self.scrape_once(&mut st, &agent, &timeout_header);
            next += interval;
            let now = Instant::now();
            if next <= now {
                let behind = (now - next).as_nanos() as u64;
                next += Duration::from_nanos(iv - behind % iv);
            }
        };
        if stale {
            self.write_end_staleness(&mut st);
        }
        st
    }

    /// Staleness markers for every series of the last scrape and the
    /// report series: the target is gone.
    fn write_end_staleness(&self, st: &mut SeriesState) {
        let t = now_ms(SystemTime::now());
        let stale = f64::from_bits(STALE_NAN_BITS);
        let mut ids = Vec::with_capacity(st.prev.slots.len() + 5);
        st.forget(&mut ids);
        ids.extend(st.report.iter().flatten());
        let mut app = self.db.head().appender_with_capacity(ids.len());
        for id in ids {
            let _ = app.append_ref(id, t, stale);
        }
        let _ = app.commit();
    }

    fn fetch(
        &self,
        agent: &ureq::Agent,
        timeout_header: &str,
        body: &mut Vec<u8>,
    ) -> Result<Format, Fail> {
        let resp = agent
            .get(&self.target.url)
            .header("Accept", ACCEPT)
            .header("X-Prometheus-Scrape-Timeout-Seconds", timeout_header)
            .call()
            .map_err(|e| match e {
                ureq::Error::Timeout(_) => Fail::Http(format!(
                    "scrape timed out after {} (context deadline exceeded)",
                    format_duration(self.target.timeout)
                )),
                e => Fail::Http(e.to_string()),
            })?;
        let status = resp.status();
        if status != 200 {
            return Err(Fail::Http(format!(
                "server returned HTTP status {} {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            )));
        }
        let format = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(Format::from_content_type)
            .unwrap_or(Format::Text);
        body.clear();
        let limit = self.cfg.body_size_limit;
        let reader = resp.into_body().into_reader();
        let res = if limit > 0 {
            reader.take(limit + 1).read_to_end(body)
        } else {
            let mut r = reader;
            r.read_to_end(body)
        };
        res.map_err(|e| {
            let timed_out = e.kind() == std::io::ErrorKind::TimedOut
                || e.to_string().to_ascii_lowercase().contains("timeout");
            if timed_out {
                Fail::Http(format!(
                    "scrape timed out after {} reading the body (context deadline exceeded)",
                    format_duration(self.target.timeout)
                ))
            } else {
                Fail::Http(format!("reading the body: {e}"))
            }
        })?;
        if limit > 0 && body.len() as u64 > limit {
            return Err(Fail::BodyTooLarge);
        }
        Ok(format)
    }

    fn scrape_once(&self, st: &mut SeriesState, agent: &ureq::Agent, timeout_header: &str) {
        let start_wall = SystemTime::now();
        let start = Instant::now();
        let ts = now_ms(start_wall);
        st.iter += 1;
        let mut body = std::mem::take(&mut st.body);
        let fetched = self.fetch(agent, timeout_header, &mut body);
        let mut app = self.db.head().appender_with_capacity(st.last_len + 8);
        let mut counts = Counts::default();
        let mut pending_stale: Vec<SeriesId> = Vec::new();
        let result = match fetched {
            Ok(format) => self.append_body(
                st,
                &mut app,
                &body,
                format,
                ts,
                &mut counts,
                &mut pending_stale,
            ),
            Err(e) => Err(e),
        };
        // Big bodies are not kept between scrapes.
        if body.capacity() > 16 << 20 {
            body = Vec::new();
        }
        st.body = body;
        let stale = f64::from_bits(STALE_NAN_BITS);
        let error = match result {
            Ok(()) => {
                // Series of the last scrape missing from this one.
                st.finish(&mut pending_stale);
                for id in pending_stale.drain(..) {
                    let _ = app.append_ref(id, ts, stale);
                }
                None
            }
            Err(fail) => {
                match fail {
                    Fail::SampleLimit => self.metrics.exceeded_sample_limit.inc(),
                    Fail::BodyTooLarge => self.metrics.exceeded_body_size_limit.inc(),
                    Fail::LabelLimit(_) => self.metrics.exceeded_label_limits.inc(),
                    _ => {}
                }
                // Nothing of a failed scrape is stored; every series of the
                // last good one is marked stale (as Prometheus).
                app.rollback();
                pending_stale.clear();
                st.forget(&mut pending_stale);
                app = self
                    .db
                    .head()
                    .appender_with_capacity(pending_stale.len() + 8);
                for id in pending_stale.drain(..) {
                    let _ = app.append_ref(id, ts, stale);
                }
                Some(fail.message())
            }
        };
        let duration = start.elapsed();
        let up = if error.is_none() { 1.0 } else { 0.0 };
        let values = [
            up,
            duration.as_secs_f64(),
            counts.scraped as f64,
            counts.post_relabel as f64,
            counts.added as f64,
        ];
        for (i, v) in values.into_iter().enumerate() {
            let appended = match st.report[i] {
                Some(id) => app.append_ref(id, ts, v).map(|_| id),
                None => Err(TsdbError::UnknownSeries(0)),
            };
            let appended = match appended {
                Ok(id) => Ok(id),
                Err(TsdbError::UnknownSeries(_)) => self
                    .report_labels(REPORT_NAMES[i])
                    .and_then(|l| app.append(&l, ts, v)),
                Err(e) => Err(e),
            };
            st.report[i] = appended.ok().or(st.report[i]);
        }
        st.last_len = counts.post_relabel as usize;
        let mut error = error;
        match app.commit() {
            Ok(_) => {}
            // Samples refused one by one (another writer got there first);
            // the rest of the scrape is stored.
            Err(
                e @ (TsdbError::OutOfOrderSample { .. }
                | TsdbError::OutOfBounds { .. }
                | TsdbError::DuplicateSample { .. }),
            ) => self.count_append_error(&e),
            Err(e) => {
                if error.is_none() {
                    error = Some(format!("storing the scrape: {e}"));
                }
            }
        }
        let mut s = self.shared.status.lock();
        s.health = if error.is_none() {
            Health::Up
        } else {
            Health::Down
        };
        s.last_error = error.unwrap_or_default();
        s.last_scrape = Some(start_wall);
        s.last_duration = duration;
    }

    fn report_labels(&self, name: &str) -> Result<Labels, TsdbError> {
        Labels::new(
            std::iter::once(("__name__", name)).chain(
                self.target
                    .labels
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str())),
            ),
        )
    }

    /// The labels a scraped sample is stored under: its own, merged with
    /// the target's (honor_labels or `exported_` on conflict), then metric
    /// relabelling. `None` when relabelling drops it.
    fn sample_labels(
        &self,
        name: &str,
        labels: impl Iterator<Item = (String, String)>,
    ) -> Option<Vec<(String, String)>> {
        let mut lb: Vec<(String, String)> = Vec::with_capacity(8);
        lb.push(("__name__".into(), name.to_owned()));
        for (n, v) in labels {
            if !v.is_empty() {
                lb.retain(|(o, _)| *o != n);
                lb.push((n, v));
            }
        }
        if self.cfg.honor_labels {
            for (n, v) in &self.target.labels {
                if !lb.iter().any(|(o, _)| o == n) {
                    lb.push((n.clone(), v.clone()));
                }
            }
        } else {
            let mut conflicts = Vec::new();
            for (n, v) in &self.target.labels {
                if let Some(i) = lb.iter().position(|(o, _)| o == n) {
                    conflicts.push(lb.remove(i));
                }
                lb.push((n.clone(), v.clone()));
            }
            // Shorter names first, as Prometheus resolves them.
            conflicts.sort_by_key(|(n, _)| n.len());
            for (n, v) in conflicts {
                let mut name = format!("exported_{n}");
                while lb.iter().any(|(o, _)| *o == name) {
                    name = format!("exported_{name}");
                }
                lb.push((name, v));
            }
        }
        if self.cfg.metric_relabel_configs.is_empty() {
            lb.sort();
            Some(lb)
        } else {
            relabel(&lb, &self.cfg.metric_relabel_configs)
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn append_body(
        &self,
        st: &mut SeriesState,
        app: &mut Appender<'_>,
        body: &[u8],
        format: Format,
        ts: i64,
        counts: &mut Counts,
        pending_stale: &mut Vec<SeriesId>,
    ) -> Result<(), Fail> {
        let iter = st.iter;
        let honor_ts = self.cfg.honor_timestamps;
        let mut meta = self.shared.metadata.lock();
        for entry in Parser::with_mode(body, format, Mode::Scrape) {
            let entry = entry.map_err(|e| Fail::Append(e.to_string()))?;
            let s = match entry {
                Entry::Sample(s) => s,
                Entry::Help { name, text } => {
                    let text = text.as_cow();
                    let m = meta_entry(&mut meta, name.raw());
                    if m.help != text {
                        m.help = text.into_owned();
                    }
                    continue;
                }
                Entry::Type { name, metric_type } => {
                    meta_entry(&mut meta, name.raw()).metric_type = Some(metric_type);
                    continue;
                }
                Entry::Unit { name, unit } => {
                    let m = meta_entry(&mut meta, name.raw());
                    if m.unit != unit {
                        m.unit = unit.to_owned();
                    }
                    continue;
                }
                _ => continue,
            };
            counts.scraped += 1;
            let t = match (honor_ts, s.timestamp_ms) {
                (true, Some(t)) => t,
                _ => ts,
            };
            st.key.clear();
            st.key.extend_from_slice(s.name.raw().as_bytes());
            st.key.push(0xff);
            st.key.extend_from_slice(s.labels.raw().as_bytes());
            let found = st.find(st.cursor);
            let mut old: Option<Slot> = None;
            if let Some(j) = found {
                if st.prev.slots[j].seen == iter {
                    // The same series twice in one body: the first wins.
                    self.metrics.duplicate.inc();
                    continue;
                }
                let in_order = j == st.cursor;
                st.cursor = j + 1;
                st.prev.slots[j].seen = iter;
                let slot = st.prev.slots[j];
                if slot.verified {
                    match slot.id {
                        None => {
                            st.take(j, in_order);
                            continue;
                        }
                        Some(id) => match app.append_ref(id, t, s.value) {
                            Ok(()) => {
                                counts.post_relabel += 1;
                                st.take(j, in_order);
                                continue;
                            }
                            // The store forgot the series: resolve it again.
                            Err(TsdbError::UnknownSeries(_)) => {}
                            Err(e) => {
                                self.count_append_error(&e);
                                counts.post_relabel += 1;
                                st.take(j, in_order);
                                continue;
                            }
                        },
                    }
                }
                old = Some(slot);
            }
            // Slow path: a new series (or one whose reference must be
            // recomputed): labels, relabelling, lookup by labels.
            let lset = self.sample_labels(
                &s.name.as_cow(),
                s.labels
                    .iter()
                    .map(|(n, v)| (n.as_cow().into_owned(), v.as_cow().into_owned())),
            );
            let mut slot = Slot {
                start: 0,
                len: 0,
                id: None,
                seen: iter,
                explicit_ts: s.timestamp_ms.is_some() && honor_ts,
                verified: true,
            };
            if let Some(lset) = lset {
                if !lset.iter().any(|(n, _)| n == "__name__") {
                    return Err(Fail::Append(format!(
                        "line {}: missing metric name (__name__ label) after relabelling",
                        s.line
                    )));
                }
                let limit = self.cfg.label_limit;
                if limit > 0 && lset.len() as u64 > limit {
                    return Err(Fail::LabelLimit(format!(
                        "label_limit exceeded (metric: {:.50}, number of labels: {}, limit: {limit})",
                        s.name.as_cow(),
                        lset.len()
                    )));
                }
                let labels =
                    Labels::new(lset).map_err(|e| Fail::Append(format!("line {}: {e}", s.line)))?;
                match app.append(&labels, t, s.value) {
                    Ok(id) => {
                        if !st.new_ids.insert(id) {
                            // A second line of a series new in this scrape.
                            self.metrics.duplicate.inc();
                            continue;
                        }
                        counts.post_relabel += 1;
                        slot.id = Some(id);
                        if old.is_none() {
                            counts.added += 1;
                        }
                    }
                    Err(e) => {
                        counts.post_relabel += 1;
                        self.count_append_error(&e);
                    }
                }
            }
            if let Some(old_id) = old.and_then(|o| o.id)
                && slot.id != Some(old_id)
                && !old.is_some_and(|o| o.explicit_ts)
            {
                pending_stale.push(old_id);
            }
            st.add(slot);
            let limit = self.cfg.sample_limit;
            if limit > 0 && counts.post_relabel > limit {
                return Err(Fail::SampleLimit);
            }
        }
        Ok(())
    }

    fn count_append_error(&self, e: &TsdbError) {
        match e {
            TsdbError::OutOfOrderSample { .. } => self.metrics.out_of_order.inc(),
            TsdbError::OutOfBounds { .. } => self.metrics.out_of_bounds.inc(),
            _ => self.metrics.duplicate.inc(),
        }
    }
}

fn meta_entry<'m>(meta: &'m mut HashMap<String, Meta>, name: &str) -> &'m mut Meta {
    if !meta.contains_key(name) {
        meta.insert(name.to_owned(), Meta::default());
    }
    meta.get_mut(name).expect("inserted above")
}

/// A time as RFC 3339 with nanoseconds, UTC (Go's `time.RFC3339Nano`);
/// `None` is Go's zero time.
pub fn rfc3339(t: Option<SystemTime>) -> String {
    let Some(d) = t.and_then(|t| t.duration_since(UNIX_EPOCH).ok()) else {
        return "0001-01-01T00:00:00Z".into();
    };
    let secs = d.as_secs() as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut out = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    let nanos = d.subsec_nanos();
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

fn label_object(labels: &[(String, String)]) -> Value {
    let mut m = Map::new();
    for (n, v) in labels {
        m.insert(n.clone(), Value::String(v.clone()));
    }
    Value::Object(m)
}

/// The `data` of Prometheus's `/api/v1/targets`; `state` is the request's
/// `state` parameter (`active`, `dropped`, `any`; `None` is `any`).
pub fn targets_json(
    active: &[TargetStatus],
    dropped: &[DroppedTarget],
    state: Option<&str>,
) -> Value {
    let state = state.unwrap_or("any").to_ascii_lowercase();
    let show_active = state == "any" || state == "active" || state.is_empty();
    let show_dropped = state == "any" || state == "dropped" || state.is_empty();
    let active_json: Vec<Value> = if show_active {
        active
            .iter()
            .map(|t| {
                json!({
                    "discoveredLabels": label_object(&t.discovered_labels),
                    "labels": label_object(&t.labels),
                    "scrapePool": t.scrape_pool,
                    "scrapeUrl": t.scrape_url,
                    "globalUrl": t.global_url,
                    "lastError": t.last_error,
                    "lastScrape": rfc3339(t.last_scrape),
                    "lastScrapeDuration": t.last_scrape_duration.as_secs_f64(),
                    "health": t.health.as_str(),
                    "scrapeInterval": format_duration(t.scrape_interval),
                    "scrapeTimeout": format_duration(t.scrape_timeout),
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    let dropped_json: Vec<Value> = if show_dropped {
        dropped
            .iter()
            .map(|d| json!({ "discoveredLabels": label_object(&d.discovered) }))
            .collect()
    } else {
        Vec::new()
    };
    let mut counts = Map::new();
    for d in dropped {
        let c = counts
            .entry(d.scrape_pool.clone())
            .or_insert(Value::from(0u64));
        *c = Value::from(c.as_u64().unwrap_or(0) + 1);
    }
    for t in active {
        counts
            .entry(t.scrape_pool.clone())
            .or_insert(Value::from(0u64));
    }
    json!({
        "activeTargets": active_json,
        "droppedTargets": dropped_json,
        "droppedTargetCounts": counts,
    })
}

/// The `data` of Prometheus's `/api/v1/metadata`: metric name → list of
/// `{type, help, unit}`. `metric` keeps one name; `limit` caps the number
/// of metrics, `limit_per_metric` the entries of each.
pub fn metadata_json(
    metadata: &[MetricMetadata],
    metric: Option<&str>,
    limit: Option<usize>,
    limit_per_metric: Option<usize>,
) -> Value {
    let mut by_name: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for m in metadata {
        if metric.is_some_and(|want| want != m.metric) {
            continue;
        }
        let list = by_name.entry(&m.metric).or_default();
        let v = json!({"type": m.metric_type, "help": m.help, "unit": m.unit});
        if !list.contains(&v) {
            list.push(v);
        }
    }
    let mut out = Map::new();
    for (name, mut list) in by_name {
        if limit.is_some_and(|l| out.len() >= l) {
            break;
        }
        if let Some(l) = limit_per_metric {
            list.truncate(l);
        }
        out.insert(name.to_owned(), Value::Array(list));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(id: u64, iter: u64) -> Slot {
        Slot {
            start: 0,
            len: 0,
            id: Some(id),
            seen: iter,
            explicit_ts: false,
            verified: true,
        }
    }

    /// One scrape of `keys` (ids = position + 1 for new keys); returns the
    /// ids marked stale.
    fn scrape(st: &mut SeriesState, keys: &[&str]) -> Vec<SeriesId> {
        st.iter += 1;
        for k in keys {
            st.key.clear();
            st.key.extend_from_slice(k.as_bytes());
            match st.find(st.cursor) {
                Some(j) => {
                    let in_order = j == st.cursor;
                    st.cursor = j + 1;
                    st.prev.slots[j].seen = st.iter;
                    st.take(j, in_order);
                }
                None => {
                    let id = k.as_bytes()[0] as u64;
                    st.new_ids.insert(id);
                    st.add(slot(id, st.iter));
                }
            }
        }
        let mut stale = Vec::new();
        st.finish(&mut stale);
        stale.sort();
        stale
    }

    #[test]
    fn series_cache_follows_order_changes_and_reports_missing_series() {
        let mut st = SeriesState::default();
        assert!(scrape(&mut st, &["a", "b", "c"]).is_empty());
        assert!(!st.index_built);
        assert!(scrape(&mut st, &["a", "b", "c"]).is_empty());
        assert_eq!(st.prev.slots.len(), 3);
        // In order, a prefix: nothing copied, the tail is missing.
        assert_eq!(scrape(&mut st, &["a", "b"]), [b'c' as u64]);
        assert!(st.cur.keys.is_empty() && st.cur.slots.is_empty());
        assert_eq!(st.prev.keys, b"ab");
        // A new series at the end builds the next cache from the prefix.
        assert!(scrape(&mut st, &["a", "b", "c"]).is_empty());
        assert_eq!(st.prev.keys, b"abc");
        assert_eq!(scrape(&mut st, &["c", "a"]), [b'b' as u64]);
        assert_eq!(st.prev.slots.len(), 2);
        assert!(scrape(&mut st, &["a", "c", "d"]).is_empty());
        let mut failed = Vec::new();
        st.forget(&mut failed);
        failed.sort();
        assert_eq!(failed, [b'a' as u64, b'c' as u64, b'd' as u64]);
        assert!(st.prev.slots.is_empty());
    }

    #[test]
    fn series_cache_gives_back_memory_of_a_huge_scrape() {
        let mut st = SeriesState::default();
        let many: Vec<String> = (0..50_000).map(|i| format!("series_{i:08}")).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        scrape(&mut st, &refs);
        scrape(&mut st, &["a"]);
        scrape(&mut st, &["a"]);
        assert!(
            st.prev.keys.capacity() < 64 << 10,
            "{}",
            st.prev.keys.capacity()
        );
        assert!(
            st.cur.keys.capacity() < 64 << 10,
            "{}",
            st.cur.keys.capacity()
        );
        assert!(st.prev.slots.capacity() < 2048);
    }

    #[test]
    fn rfc3339_times() {
        assert_eq!(rfc3339(None), "0001-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::new(1_484_665_664, 723_715_400);
        assert_eq!(rfc3339(Some(t)), "2017-01-17T15:07:44.7237154Z");
        assert_eq!(
            rfc3339(Some(UNIX_EPOCH + Duration::from_secs(951_782_400))),
            "2000-02-29T00:00:00Z"
        );
    }

    #[test]
    fn go_duration_strings() {
        for (ms, want) in [
            (200, "200ms"),
            (1_000, "1s"),
            (1_500, "1.5s"),
            (15_000, "15s"),
            (60_000, "1m0s"),
            (90_250, "1m30.25s"),
            (3_600_000, "1h0m0s"),
        ] {
            assert_eq!(go_duration(Duration::from_millis(ms)), want);
        }
    }

    #[test]
    fn timeout_header_text() {
        assert_eq!(seconds_text(Duration::from_secs(10)), "10");
        assert_eq!(seconds_text(Duration::from_millis(500)), "0.5");
    }

    #[test]
    fn metadata_json_shape() {
        let md = vec![
            MetricMetadata {
                metric: "a".into(),
                metric_type: "counter".into(),
                help: "A.".into(),
                unit: String::new(),
            },
            MetricMetadata {
                metric: "b".into(),
                metric_type: "gauge".into(),
                help: "B.".into(),
                unit: "bytes".into(),
            },
        ];
        let v = metadata_json(&md, None, None, None);
        assert_eq!(v["a"][0]["type"], "counter");
        assert_eq!(v["b"][0]["unit"], "bytes");
        assert_eq!(
            metadata_json(&md, Some("b"), None, None)
                .as_object()
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            metadata_json(&md, None, Some(1), None)
                .as_object()
                .unwrap()
                .len(),
            1
        );
    }
}
