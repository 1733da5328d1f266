//! The remote write sender: one queue per `remote_write` entry, each a WAL
//! watcher thread feeding shard threads that batch and POST.
//!
//! Design note (why it cannot lose what the WAL holds):
//! - The watcher follows the head's WAL (`Head::wal_reader`) like
//!   Prometheus's WAL watcher, so what it sends is what was committed, and
//!   an outage only makes it fall behind. Samples of a series always go to
//!   the same shard (`id % shards`), and a shard sends one batch at a time,
//!   retrying 5xx, 429 and network errors for ever with exponential
//!   backoff, so each series reaches the receiver in order.
//! - Every sample has a position `(lsn, index in its record)`. Each shard
//!   knows the position of the last sample it delivered (`acked`); the
//!   queue's *resume* point is the oldest record holding a sample not yet
//!   delivered. Both are saved (tmp file + rename) in
//!   `<data dir>/remote_write/<name>.pos` at most every 100 ms, and the
//!   WAL is held (`Head::hold_wal`) from the resume point, so checkpoints
//!   keep the segments the watcher still needs.
//! - After a restart the watcher reads from the saved resume point and
//!   skips what the saved `acked` says was delivered. Samples read up to the
//!   WAL's end at start-up are *replayed*: some may have been delivered in
//!   the last 100 ms before a kill. They are batched apart from new samples,
//!   and a replayed batch answered 400 (a receiver refuses a sample older
//!   than what it holds, and then stores nothing of the request) is split in
//!   halves and resent, down to single samples, so the delivered ones are
//!   dropped without taking new ones with them.
//! - Shards scale between `min_shards` and `max_shards` from the measured
//!   time per sample and the incoming rate (Prometheus's rule), resharding
//!   only after draining, and never while sends are failing.

use std::collections::HashMap;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use vigil_exposition::client::{Counter, Family, Gauge, Registry};
use vigil_tsdb::db::Db;
use vigil_tsdb::head::record::{self, Record};

use super::RemoteError;
use super::config::RemoteWriteConfig;
use super::proto;
use crate::monitor::relabel::relabel;

/// The User-Agent of our requests.
pub const USER_AGENT: &str = concat!("vigil-monitor/", env!("CARGO_PKG_VERSION"));

/// A sample's place in the WAL: its record and its index in the record.
type Pos = (u64, u32);

type Key = [String; 2];

/// The sender's metrics, with Prometheus's names (labels `remote_name`
/// and `url`).
#[derive(Clone)]
struct Metrics {
    samples: Family<Key, Counter>,
    failed: Family<Key, Counter>,
    retried: Family<Key, Counter>,
    dropped: Family<Key, Counter>,
    pending: Family<Key, Gauge>,
    highest_sent: Family<Key, Gauge<f64>>,
    shards: Family<Key, Gauge>,
    shards_desired: Family<Key, Gauge<f64>>,
    shards_min: Family<Key, Gauge>,
    shards_max: Family<Key, Gauge>,
    bytes: Family<Key, Counter>,
    requests: Family<Key, Counter>,
    highest_read: Gauge<f64>,
}

impl Metrics {
    fn new(registry: &Registry) -> Metrics {
        let names = ["remote_name", "url"];
        let m = Metrics {
            samples: Family::with_label_names(&names),
            failed: Family::with_label_names(&names),
            retried: Family::with_label_names(&names),
            dropped: Family::with_label_names(&names),
            pending: Family::with_label_names(&names),
            highest_sent: Family::with_label_names(&names),
            shards: Family::with_label_names(&names),
            shards_desired: Family::with_label_names(&names),
            shards_min: Family::with_label_names(&names),
            shards_max: Family::with_label_names(&names),
            bytes: Family::with_label_names(&names),
            requests: Family::with_label_names(&names),
            highest_read: Gauge::new(),
        };
        // A second writer on the same registry (a test) keeps the first's
        // registrations; harmless.
        let p = "prometheus_remote_storage_";
        let _ = registry.register(
            &format!("{p}samples_total"),
            "Total number of samples sent to remote storage.",
            m.samples.clone(),
        );
        let _ = registry.register(
            &format!("{p}samples_failed_total"),
            "Total number of samples which failed on send to remote storage, non-recoverable errors.",
            m.failed.clone(),
        );
        let _ = registry.register(
            &format!("{p}samples_retried_total"),
            "Total number of samples which failed on send to remote storage but were retried because the send error was recoverable.",
            m.retried.clone(),
        );
        let _ = registry.register(
            &format!("{p}samples_dropped_total"),
            "Total number of samples which were dropped after being read from the WAL before being sent via remote write, either via relabelling or unintentionally because of an unknown reference ID.",
            m.dropped.clone(),
        );
        let _ = registry.register(
            &format!("{p}samples_pending"),
            "The number of samples pending in the queues shards to be sent to the remote storage.",
            m.pending.clone(),
        );
        let _ = registry.register(
            &format!("{p}queue_highest_sent_timestamp_seconds"),
            "Timestamp from a WAL sample, the highest timestamp successfully sent by this queue, in seconds since epoch.",
            m.highest_sent.clone(),
        );
        let _ = registry.register(
            &format!("{p}shards"),
            "The number of shards used for parallel sending to the remote storage.",
            m.shards.clone(),
        );
        let _ = registry.register(
            &format!("{p}shards_desired"),
            "The number of shards that the queues shard calculation wants to run based on the rate of samples in vs. samples out.",
            m.shards_desired.clone(),
        );
        let _ = registry.register(
            &format!("{p}shards_min"),
            "The minimum number of shards that the queue is allowed to run.",
            m.shards_min.clone(),
        );
        let _ = registry.register(
            &format!("{p}shards_max"),
            "The maximum number of shards that the queue is allowed to run.",
            m.shards_max.clone(),
        );
        let _ = registry.register(
            &format!("{p}bytes_total"),
            "The total number of bytes of data (not metadata) sent by the queue after compression.",
            m.bytes.clone(),
        );
        let _ = registry.register(
            &format!("{p}requests_total"),
            "Total number of remote write requests sent, retries included.",
            m.requests.clone(),
        );
        let _ = registry.register(
            &format!("{p}highest_timestamp_in_seconds"),
            "Highest timestamp that has come into the remote storage via the WAL, in seconds since epoch.",
            m.highest_read.clone(),
        );
        m
    }
}

/// One queue's metric handles.
#[derive(Clone)]
struct QueueMetrics {
    samples: Counter,
    failed: Counter,
    retried: Counter,
    dropped: Counter,
    pending: Gauge,
    highest_sent: Gauge<f64>,
    shards: Gauge,
    shards_desired: Gauge<f64>,
    bytes: Counter,
    requests: Counter,
    highest_read: Gauge<f64>,
}

impl QueueMetrics {
    fn new(m: &Metrics, cfg: &RemoteWriteConfig) -> QueueMetrics {
        let k: Key = [cfg.name.clone(), cfg.url.clone()];
        m.shards_min
            .get_or_create(&k)
            .set(cfg.queue_config.min_shards as i64);
        m.shards_max
            .get_or_create(&k)
            .set(cfg.queue_config.max_shards as i64);
        QueueMetrics {
            samples: m.samples.get_or_create(&k),
            failed: m.failed.get_or_create(&k),
            retried: m.retried.get_or_create(&k),
            dropped: m.dropped.get_or_create(&k),
            pending: m.pending.get_or_create(&k),
            highest_sent: m.highest_sent.get_or_create(&k),
            shards: m.shards.get_or_create(&k),
            shards_desired: m.shards_desired.get_or_create(&k),
            bytes: m.bytes.get_or_create(&k),
            requests: m.requests.get_or_create(&k),
            highest_read: m.highest_read.clone(),
        }
    }
}

/// Sends the store's samples to every configured remote write endpoint.
/// Start it right after opening the store, before the store's first
/// checkpoint, so that its WAL hold is in place.
pub struct RemoteWriter {
    db: Arc<Db>,
    dir: PathBuf,
    metrics: Metrics,
    holds: Arc<Holds>,
    queues: Mutex<Vec<Queue>>,
}

impl std::fmt::Debug for RemoteWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteWriter")
            .field("dir", &self.dir)
            .finish()
    }
}

/// The WAL hold of all queues: the oldest resume point.
struct Holds {
    db: Arc<Db>,
    slots: Mutex<Vec<Arc<AtomicU64>>>,
}

impl Holds {
    fn update(&self) {
        let slots = self.slots.lock();
        let min = slots.iter().map(|s| s.load(Ordering::Acquire)).min();
        self.db.head().hold_wal(min);
    }
}

impl RemoteWriter {
    /// Starts one queue per entry of `cfgs`, reading `db`'s WAL. Positions
    /// are saved under `data_dir/remote_write/`; metrics go into
    /// `registry`. `external_labels` are added to every series that lacks
    /// them (before `write_relabel_configs`, as Prometheus does).
    pub fn start(
        db: Arc<Db>,
        data_dir: &Path,
        cfgs: &[RemoteWriteConfig],
        external_labels: &[(String, String)],
        registry: &Registry,
    ) -> Result<RemoteWriter, RemoteError> {
        let dir = data_dir.join("remote_write");
        std::fs::create_dir_all(&dir).map_err(|e| RemoteError::Io {
            what: "create",
            path: dir.clone(),
            source: e,
        })?;
        let w = RemoteWriter {
            holds: Arc::new(Holds {
                db: db.clone(),
                slots: Mutex::new(Vec::new()),
            }),
            db,
            dir,
            metrics: Metrics::new(registry),
            queues: Mutex::new(Vec::new()),
        };
        w.apply_config(cfgs, external_labels)?;
        Ok(w)
    }

    /// Applies a reloaded configuration: queues whose entry (or the
    /// external labels) did not change keep running; the others stop
    /// (saving their position) and start again with the new entry, resuming
    /// where they were if the name is the same.
    pub fn apply_config(
        &self,
        cfgs: &[RemoteWriteConfig],
        external_labels: &[(String, String)],
    ) -> Result<(), RemoteError> {
        let mut queues = self.queues.lock();
        let mut keep = Vec::new();
        for q in queues.drain(..) {
            if cfgs
                .iter()
                .any(|c| *c == q.shared.cfg && q.shared.external == external_labels)
            {
                keep.push(q);
            } else {
                q.stop(&self.holds);
            }
        }
        for c in cfgs {
            if keep.iter().any(|q| q.shared.cfg == *c) {
                continue;
            }
            keep.push(Queue::start(
                self.db.clone(),
                &self.dir,
                c.clone(),
                external_labels.to_vec(),
                QueueMetrics::new(&self.metrics, c),
                self.holds.clone(),
            )?);
        }
        *queues = keep;
        self.holds.update();
        Ok(())
    }

    /// Stops every queue, saving positions; what was not delivered is sent
    /// after the next start. The WAL hold stays where it is, so a checkpoint
    /// taken after this (the monitor's last one, at shutdown) keeps the
    /// records the next start needs.
    pub fn stop(self) {
        let mut queues = self.queues.lock();
        for q in queues.drain(..) {
            q.stop(&self.holds);
        }
    }

    /// Per queue name: samples read from the WAL and not yet delivered.
    pub fn pending(&self) -> Vec<(String, usize)> {
        self.queues
            .lock()
            .iter()
            .map(|q| {
                let n = q
                    .shared
                    .shards
                    .lock()
                    .iter()
                    .map(|s| s.st.lock().pending())
                    .sum();
                (q.shared.cfg.name.clone(), n)
            })
            .collect()
    }
}

/// A series as sent: its labels (external labels added, relabelled)
/// encoded once as `TimeSeries` label fields (`proto::encode_labels`).
type SeriesOut = Arc<[u8]>;

/// Hashes the store's series ids (small integers the store hands out, not
/// outside input) with one multiplication instead of SipHash: the watcher
/// looks one up per sample and a shard one per sample it sends.
#[derive(Default, Clone, Copy)]
struct IdHash(u64);

impl std::hash::Hasher for IdHash {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

type IdMap<V> = HashMap<u64, V, std::hash::BuildHasherDefault<IdHash>>;

/// A sample waiting in a shard.
struct Item {
    pos: Pos,
    /// The series id in the store: samples are grouped by it.
    id: u64,
    series: SeriesOut,
    t: i64,
    v: f64,
    replay: bool,
}

#[derive(Default)]
struct ShardState {
    items: VecDeque<Item>,
    /// Position of the first sample of the batch being sent.
    inflight: Option<Pos>,
    inflight_len: usize,
    /// Position of the last sample delivered (or dropped).
    acked: Pos,
    /// Send everything now (resharding, stopping).
    flush: bool,
    stop: bool,
}

impl ShardState {
    fn pending(&self) -> usize {
        self.items.len() + self.inflight_len
    }

    /// The oldest position not yet delivered.
    fn oldest(&self) -> Option<Pos> {
        self.inflight.or_else(|| self.items.front().map(|i| i.pos))
    }
}

struct Shard {
    st: Mutex<ShardState>,
    cv: Condvar,
}

/// What the queue's threads share.
struct Shared {
    db: Arc<Db>,
    cfg: RemoteWriteConfig,
    external: Vec<(String, String)>,
    metrics: QueueMetrics,
    stop: AtomicBool,
    shards: Mutex<Vec<Arc<Shard>>>,
    /// Serializes the shards' access to `send_stats`.
    send_stats: Mutex<SendStats>,
    state_path: PathBuf,
    /// This queue's resume point, the WAL hold it needs.
    hold: Arc<AtomicU64>,
    holds: Arc<Holds>,
    /// Bumped by a shard at each delivered or refused batch.
    acks: AtomicU64,
}

#[derive(Default)]
struct SendStats {
    samples_out: u64,
    send_time: Duration,
    last_failure: Option<Instant>,
}

struct Queue {
    shared: Arc<Shared>,
    reader: Option<JoinHandle<()>>,
}

/// The saved position of a queue.
#[derive(Debug, Clone, PartialEq)]
struct Saved {
    resume: u64,
    acked: Vec<Pos>,
}

impl Saved {
    fn encode(&self) -> String {
        let mut s = format!(
            "vigil-remote-write-position 1\nresume {}\nacked",
            self.resume
        );
        for (l, i) in &self.acked {
            s.push_str(&format!(" {l}:{i}"));
        }
        s.push('\n');
        s
    }

    fn decode(text: &str) -> Option<Saved> {
        let mut lines = text.lines();
        if lines.next()? != "vigil-remote-write-position 1" {
            return None;
        }
        let resume = lines.next()?.strip_prefix("resume ")?.parse().ok()?;
        let acked = lines
            .next()?
            .strip_prefix("acked")?
            .split_whitespace()
            .map(|p| {
                let (l, i) = p.split_once(':')?;
                Some((l.parse().ok()?, i.parse().ok()?))
            })
            .collect::<Option<Vec<Pos>>>()?;
        Some(Saved { resume, acked })
    }

    /// Whether the sample at `pos` of series `id` was delivered before.
    fn delivered(&self, pos: Pos, id: u64) -> bool {
        if self.acked.is_empty() {
            return false;
        }
        pos <= self.acked[(id % self.acked.len() as u64) as usize]
    }
}

impl Queue {
    fn start(
        db: Arc<Db>,
        dir: &Path,
        cfg: RemoteWriteConfig,
        external: Vec<(String, String)>,
        metrics: QueueMetrics,
        holds: Arc<Holds>,
    ) -> Result<Queue, RemoteError> {
        let state_path = dir.join(format!("{}.pos", cfg.name));
        let saved = match std::fs::read_to_string(&state_path) {
            Ok(text) => Some(Saved::decode(&text).ok_or_else(|| RemoteError::BadState {
                path: state_path.clone(),
            })?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(RemoteError::Io {
                    what: "read",
                    path: state_path,
                    source: e,
                });
            }
        };
        let (oldest, last) = db.head().wal_bounds();
        // A first start sends from now on (as Prometheus does); a restart
        // resumes where it was, or from the oldest record kept if the WAL
        // was truncated past it while no sender held it.
        let mut resume = saved.as_ref().map_or(last + 1, |s| s.resume);
        if resume < oldest {
            eprintln!(
                "vigil-monitor: remote_write {}: records {resume}..{} were removed from the WAL before they were sent; resuming at {oldest}",
                cfg.name,
                oldest - 1
            );
            resume = oldest;
        }
        let hold = Arc::new(AtomicU64::new(resume));
        holds.slots.lock().push(hold.clone());
        holds.update();
        let shared = Arc::new(Shared {
            db,
            external,
            metrics,
            stop: AtomicBool::new(false),
            shards: Mutex::new(Vec::new()),
            send_stats: Mutex::new(SendStats::default()),
            state_path,
            hold,
            holds: holds.clone(),
            acks: AtomicU64::new(0),
            cfg,
        });
        let sh = shared.clone();
        let reader = std::thread::Builder::new()
            .name(format!("remote-write-{}", shared.cfg.name))
            .spawn(move || watch(sh, resume, saved, last))
            .map_err(|e| RemoteError::Io {
                what: "spawn thread",
                path: PathBuf::new(),
                source: e,
            })?;
        Ok(Queue {
            shared,
            reader: Some(reader),
        })
    }

    fn stop(mut self, holds: &Holds) {
        self.shared.stop.store(true, Ordering::Release);
        for s in self.shared.shards.lock().iter() {
            s.st.lock().stop = true;
            s.cv.notify_all();
        }
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        holds
            .slots
            .lock()
            .retain(|s| !Arc::ptr_eq(s, &self.shared.hold));
    }
}

/// The watcher: reads the WAL, dispatches samples to shards, saves the
/// position and reshards. Runs until the queue stops, then stops the shards
/// and saves the position once more.
fn watch(sh: Arc<Shared>, resume: u64, saved: Option<Saved>, start_last: u64) {
    let q = sh.cfg.queue_config.clone();
    let mut n = q
        .min_shards
        .max(saved.as_ref().map_or(0, |s| s.acked.len()))
        .min(q.max_shards);
    let mut handles = spawn_shards(&sh, n);
    let mut reader = match sh.db.head().wal_reader(resume) {
        Ok(Some(r)) => r,
        Ok(None) => return,
        Err(e) => {
            eprintln!("vigil-monitor: remote_write {}: {e}", sh.cfg.name);
            return;
        }
    };
    let mut cache: IdMap<Option<SeriesOut>> = IdMap::default();
    // Samples of one record per shard, handed over under one lock each.
    let mut per_shard: Vec<Vec<Item>> = Vec::new();
    // Everything up to `read` has been handed to shards.
    let mut read = resume.saturating_sub(1);
    let mut last_save = Instant::now();
    let mut last_reshard = Instant::now();
    let mut samples_in: u64 = 0;
    let mut in_rate = 0.0f64;
    let mut last_rate = Instant::now();
    let mut highest_read = f64::NEG_INFINITY;
    let mut saved_state = saved;
    let mut dirty = true;
    let mut acks_seen = u64::MAX;
    while !sh.stop.load(Ordering::Acquire) {
        match reader.next_timeout(Duration::from_millis(100)) {
            Some(Ok((lsn, bytes))) => {
                match record::decode(&bytes, lsn) {
                    Ok(Record::Series(list)) => {
                        for (id, labels) in list {
                            let out = series_out(&sh, labels.iter());
                            cache.insert(id, out);
                        }
                    }
                    Ok(Record::Samples(list)) => {
                        let shards = sh.shards.lock().clone();
                        per_shard.resize_with(shards.len(), Vec::new);
                        for (idx, (id, t, v)) in list.into_iter().enumerate() {
                            let pos = (lsn, idx as u32);
                            if saved_state.as_ref().is_some_and(|s| s.delivered(pos, id)) {
                                continue;
                            }
                            let series = match cache.get(&id) {
                                Some(s) => s.clone(),
                                None => {
                                    let s = sh
                                        .db
                                        .head()
                                        .series_labels(id)
                                        .and_then(|l| series_out(&sh, l.iter()));
                                    cache.insert(id, s.clone());
                                    s
                                }
                            };
                            let Some(series) = series else {
                                sh.metrics.dropped.inc();
                                continue;
                            };
                            let ts = t as f64 / 1000.0;
                            if ts > highest_read {
                                highest_read = ts;
                                sh.metrics.highest_read.set(ts);
                            }
                            per_shard[(id % shards.len() as u64) as usize].push(Item {
                                pos,
                                id,
                                series,
                                t,
                                v,
                                replay: lsn <= start_last,
                            });
                        }
                        for (shard, items) in shards.iter().zip(&mut per_shard) {
                            samples_in += items.len() as u64;
                            if !enqueue(&sh, shard, items, q.capacity, q.max_samples_per_send) {
                                break;
                            }
                        }
                        per_shard.iter_mut().for_each(Vec::clear);
                    }
                    Ok(Record::Delete(_)) => {}
                    Err(e) => {
                        // A record the head wrote and cannot be decoded is
                        // damage; skipping it loses only its samples.
                        eprintln!("vigil-monitor: remote_write {}: {e}", sh.cfg.name);
                    }
                }
                if sh.stop.load(Ordering::Acquire) {
                    break;
                }
                read = lsn;
                dirty = true;
                if saved_state
                    .as_ref()
                    .is_some_and(|s| s.acked.iter().all(|a| a.0 < lsn))
                {
                    saved_state = None;
                }
            }
            Some(Err(e)) => {
                eprintln!(
                    "vigil-monitor: remote_write {}: reading the WAL: {e}",
                    sh.cfg.name
                );
                // Truncated under us (no hold could keep it): restart from
                // the oldest record kept.
                let (oldest, _) = sh.db.head().wal_bounds();
                match sh.db.head().wal_reader(oldest.max(read + 1)) {
                    Ok(Some(r)) => reader = r,
                    _ => std::thread::sleep(Duration::from_millis(100)),
                }
            }
            None => {}
        }
        if last_save.elapsed() >= Duration::from_millis(100) {
            let shards = sh.shards.lock().clone();
            let pending: usize = shards.iter().map(|s| s.st.lock().pending()).sum();
            sh.metrics.pending.set(pending as i64);
            let acks = sh.acks.load(Ordering::Acquire);
            if dirty || acks != acks_seen {
                acks_seen = acks;
                save(&sh, &shards, read, saved_state.as_ref());
                dirty = false;
            }
            last_save = Instant::now();
        }
        if last_rate.elapsed() >= Duration::from_secs(1) {
            let secs = last_rate.elapsed().as_secs_f64();
            let rate = samples_in as f64 / secs;
            in_rate = if in_rate == 0.0 {
                rate
            } else {
                0.8 * in_rate + 0.2 * rate
            };
            samples_in = 0;
            last_rate = Instant::now();
        }
        if last_reshard.elapsed() >= Duration::from_secs(10) {
            last_reshard = Instant::now();
            // Series the head collected (churn) leave the cache too.
            if cache.len() > 2 * sh.db.head().num_series() + 1024 {
                cache.retain(|id, _| sh.db.head().series_labels(*id).is_some());
            }
            let want = desired_shards(&sh, in_rate, n);
            if want != n {
                // Drain, then start over with the new count: every sample
                // sent by its old shard before any by its new one.
                for s in sh.shards.lock().iter() {
                    s.st.lock().flush = true;
                    s.cv.notify_all();
                }
                let drained = loop {
                    if sh.stop.load(Ordering::Acquire) {
                        break false;
                    }
                    if sh.shards.lock().iter().all(|s| s.st.lock().pending() == 0) {
                        break true;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                };
                if drained {
                    stop_shards(&sh, &mut handles);
                    n = want;
                    handles = spawn_shards(&sh, n);
                    saved_state = None;
                    save(&sh, &sh.shards.lock().clone(), read, None);
                }
            }
        }
    }
    stop_shards(&sh, &mut handles);
    let shards = sh.shards.lock().clone();
    save(&sh, &shards, read, saved_state.as_ref());
}

/// Prometheus's rule: enough shards to send what comes in, at the measured
/// time per sample, with the backlog; changed only when off by 30 %.
fn desired_shards(sh: &Shared, in_rate: f64, n: usize) -> usize {
    let q = &sh.cfg.queue_config;
    let stats = sh.send_stats.lock();
    if stats
        .last_failure
        .is_some_and(|t| t.elapsed() < Duration::from_secs(20))
        || stats.samples_out == 0
    {
        return n;
    }
    let per_sample = stats.send_time.as_secs_f64() / stats.samples_out as f64;
    drop(stats);
    let pending: usize = sh.shards.lock().iter().map(|s| s.st.lock().pending()).sum();
    // Clear the backlog over the next 30 s.
    let want = (in_rate + pending as f64 / 30.0) * per_sample * 1.2;
    sh.metrics.shards_desired.set(want);
    let lo = n as f64 * 0.7;
    let hi = n as f64 * 1.3;
    if want > lo && want < hi {
        return n;
    }
    (want.ceil() as usize).clamp(q.min_shards, q.max_shards)
}

/// Moves `items` into the shard, waiting for room (the WAL keeps what is
/// not read yet). `false` when the queue is stopping. The shard is woken
/// only when it has something to do before its deadline: a full batch, or
/// a replayed run that new samples now close.
fn enqueue(
    sh: &Shared,
    shard: &Shard,
    items: &mut Vec<Item>,
    capacity: usize,
    max_per_send: usize,
) -> bool {
    if items.is_empty() {
        return true;
    }
    let mut items = items.drain(..).peekable();
    let mut st = shard.st.lock();
    loop {
        while st.items.len() < capacity {
            match items.next() {
                Some(it) => st.items.push_back(it),
                None => break,
            }
        }
        if items.peek().is_none() {
            break;
        }
        if sh.stop.load(Ordering::Acquire) || st.stop {
            return false;
        }
        shard.cv.notify_all();
        shard.cv.wait_for(&mut st, Duration::from_millis(100));
    }
    let replay_closed =
        st.items.front().is_some_and(|i| i.replay) && st.items.back().is_some_and(|i| !i.replay);
    if st.items.len() >= max_per_send || replay_closed {
        shard.cv.notify_all();
    }
    true
}

/// The series' labels as sent: external labels added where missing, then
/// `write_relabel_configs`, encoded; `None` when relabelling drops it.
fn series_out<'a>(
    sh: &Shared,
    labels: impl Iterator<Item = (&'a str, &'a str)>,
) -> Option<SeriesOut> {
    let mut l: Vec<(String, String)> = labels.map(|(n, v)| (n.to_owned(), v.to_owned())).collect();
    for (n, v) in &sh.external {
        if !l.iter().any(|(k, _)| k == n) {
            l.push((n.clone(), v.clone()));
        }
    }
    l.sort();
    let l = if sh.cfg.write_relabel_configs.is_empty() {
        l
    } else {
        relabel(&l, &sh.cfg.write_relabel_configs)?
    };
    if l.is_empty() {
        return None;
    }
    let mut out = Vec::new();
    proto::encode_labels(l.iter().map(|(n, v)| (n.as_str(), v.as_str())), &mut out);
    Some(out.into())
}

fn save(sh: &Shared, shards: &[Arc<Shard>], read: u64, saved: Option<&Saved>) {
    let mut resume = read + 1;
    let mut acked = Vec::with_capacity(shards.len());
    for s in shards {
        let st = s.st.lock();
        if let Some(p) = st.oldest() {
            resume = resume.min(p.0);
        }
        acked.push(st.acked);
    }
    // Until the samples the previous run delivered are behind us, its
    // record of them still says what to skip; with the same shard count
    // (the usual case) both runs assign series alike and merge.
    let acked = match saved {
        Some(s) if s.acked.len() == acked.len() => {
            s.acked.iter().zip(&acked).map(|(a, b)| *a.max(b)).collect()
        }
        Some(s) => s.acked.clone(),
        None => acked,
    };
    let state = Saved { resume, acked };
    sh.hold.store(state.resume, Ordering::Release);
    sh.holds.update();
    let tmp = sh.state_path.with_extension("pos.tmp");
    let ok =
        std::fs::write(&tmp, state.encode()).and_then(|_| std::fs::rename(&tmp, &sh.state_path));
    if let Err(e) = ok {
        eprintln!(
            "vigil-monitor: remote_write {}: saving {}: {e}",
            sh.cfg.name,
            sh.state_path.display()
        );
    }
}

fn spawn_shards(sh: &Arc<Shared>, n: usize) -> Vec<JoinHandle<()>> {
    let shards: Vec<Arc<Shard>> = (0..n.max(1))
        .map(|_| {
            Arc::new(Shard {
                st: Mutex::new(ShardState::default()),
                cv: Condvar::new(),
            })
        })
        .collect();
    *sh.shards.lock() = shards.clone();
    sh.metrics.shards.set(shards.len() as i64);
    shards
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let sh = sh.clone();
            std::thread::Builder::new()
                .name(format!("remote-shard-{i}"))
                .spawn(move || run_shard(sh, s))
                .expect("spawning a thread")
        })
        .collect()
}

fn stop_shards(sh: &Shared, handles: &mut Vec<JoinHandle<()>>) {
    for s in sh.shards.lock().iter() {
        s.st.lock().stop = true;
        s.cv.notify_all();
    }
    for h in handles.drain(..) {
        let _ = h.join();
    }
}

/// A shard: takes batches from its queue in order and sends each until it
/// is delivered or refused.
fn run_shard(sh: Arc<Shared>, shard: Arc<Shard>) {
    let q = sh.cfg.queue_config.clone();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(sh.cfg.remote_timeout))
        .build()
        .into();
    let mut batch: Vec<Item> = Vec::with_capacity(q.max_samples_per_send);
    let mut enc = Encoding::default();
    loop {
        {
            let mut st = shard.st.lock();
            let deadline = Instant::now() + q.batch_send_deadline;
            loop {
                if st.stop {
                    return;
                }
                if st.items.len() >= q.max_samples_per_send
                    || (!st.items.is_empty() && (st.flush || Instant::now() >= deadline))
                {
                    break;
                }
                // A replayed run ends where new samples start: send it.
                if st.items.front().is_some_and(|i| i.replay) && st.items.iter().any(|i| !i.replay)
                {
                    break;
                }
                if st.items.is_empty() && st.flush {
                    st.flush = false;
                }
                let wait = deadline.saturating_duration_since(Instant::now());
                shard
                    .cv
                    .wait_for(&mut st, wait.max(Duration::from_millis(1)));
            }
            let replay = st.items.front().is_some_and(|i| i.replay);
            while batch.len() < q.max_samples_per_send {
                match st.items.front() {
                    Some(i) if i.replay == replay => {
                        batch.push(st.items.pop_front().unwrap_or_else(|| unreachable!()))
                    }
                    _ => break,
                }
            }
            st.inflight = batch.first().map(|i| i.pos);
            st.inflight_len = batch.len();
            shard.cv.notify_all();
        }
        let replay = batch.first().is_some_and(|i| i.replay);
        let sent = send_all(&sh, &shard, &agent, &mut enc, &batch, replay);
        let mut st = shard.st.lock();
        st.inflight = None;
        st.inflight_len = 0;
        let Some(delivered) = sent else {
            // Stopping: the batch goes back, so the saved position keeps it.
            for it in batch.drain(..).rev() {
                st.items.push_front(it);
            }
            return;
        };
        if let Some(last) = batch.last() {
            st.acked = last.pos;
        }
        drop(st);
        sh.acks.fetch_add(1, Ordering::AcqRel);
        if delivered {
            let hi = batch.iter().map(|i| i.t).max().unwrap_or(0);
            let g = &sh.metrics.highest_sent;
            if hi as f64 / 1000.0 > g.get() {
                g.set(hi as f64 / 1000.0);
            }
        }
        batch.clear();
    }
}

enum Outcome {
    Delivered,
    /// Refused for good (4xx): the status.
    Refused(u16),
    /// The queue is stopping.
    Stopped,
}

/// Sends `batch`, splitting a replayed batch that is refused with 400.
/// `Some(true)` when something was delivered, `Some(false)` when all was
/// refused, `None` when the queue stopped first.
fn send_all(
    sh: &Shared,
    shard: &Shard,
    agent: &ureq::Agent,
    enc: &mut Encoding,
    batch: &[Item],
    replay: bool,
) -> Option<bool> {
    match send(sh, shard, agent, enc, batch) {
        Outcome::Delivered => Some(true),
        Outcome::Refused(400) if replay && batch.len() > 1 => {
            let (a, b) = batch.split_at(batch.len() / 2);
            let x = send_all(sh, shard, agent, enc, a, replay)?;
            let y = send_all(sh, shard, agent, enc, b, replay)?;
            Some(x || y)
        }
        Outcome::Refused(_) => {
            sh.metrics.failed.inc_by(batch.len() as u64);
            Some(false)
        }
        Outcome::Stopped => None,
    }
}

/// One batch, retried until it is delivered, refused, or the queue stops.
fn send(
    sh: &Shared,
    shard: &Shard,
    agent: &ureq::Agent,
    enc: &mut Encoding,
    batch: &[Item],
) -> Outcome {
    let body = enc.encode(batch);
    let q = &sh.cfg.queue_config;
    let mut backoff = q.min_backoff;
    loop {
        let started = Instant::now();
        let mut req = agent
            .post(&sh.cfg.url)
            .header("Content-Encoding", "snappy")
            .header("Content-Type", "application/x-protobuf")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .header("User-Agent", USER_AGENT);
        for (k, v) in &sh.cfg.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        if let Some((u, p)) = &sh.cfg.basic_auth {
            req = req.header(
                "Authorization",
                format!("Basic {}", base64(&format!("{u}:{p}"))),
            );
        }
        if let Some((ty, cred)) = &sh.cfg.authorization {
            req = req.header("Authorization", format!("{ty} {cred}"));
        }
        sh.metrics.requests.inc();
        let result = req.send(body);
        let (status, retry_after) = match &result {
            Ok(r) => (
                Some(r.status().as_u16()),
                r.headers()
                    .get("Retry-After")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs),
            ),
            Err(_) => (None, None),
        };
        drop(result);
        match status {
            Some(s) if (200..300).contains(&s) => {
                sh.metrics.samples.inc_by(batch.len() as u64);
                sh.metrics.bytes.inc_by(body.len() as u64);
                let mut st = sh.send_stats.lock();
                st.samples_out += batch.len() as u64;
                st.send_time += started.elapsed();
                return Outcome::Delivered;
            }
            Some(s) if (400..500).contains(&s) && !(s == 429 && q.retry_on_http_429) => {
                return Outcome::Refused(s);
            }
            _ => {}
        }
        sh.metrics.retried.inc_by(batch.len() as u64);
        sh.send_stats.lock().last_failure = Some(Instant::now());
        let wait = match retry_after {
            Some(d) if status == Some(429) => d.min(q.max_backoff.max(d)),
            _ => backoff,
        };
        backoff = (backoff * 2).min(q.max_backoff);
        let until = Instant::now() + wait;
        let mut st = shard.st.lock();
        while Instant::now() < until {
            if st.stop {
                return Outcome::Stopped;
            }
            let left = until.saturating_duration_since(Instant::now());
            shard.cv.wait_for(&mut st, left);
        }
        if st.stop {
            return Outcome::Stopped;
        }
    }
}

/// A shard's buffers for building requests, kept from batch to batch so
/// that a request costs no allocation once they have grown.
#[derive(Default)]
struct Encoding {
    body: proto::BodyEncoder,
    /// Series id → its group (a `TimeSeries` of the request).
    index: IdMap<u32>,
    /// Per group: the first item of the series and its sample count, then
    /// (after counting) where its samples start in `samples`.
    groups: Vec<(u32, u32, u32)>,
    /// Each item's group.
    item_group: Vec<u32>,
    samples: Vec<proto::Sample>,
}

impl Encoding {
    /// The request of a batch: samples grouped by series (in the order of
    /// their first sample), in order within each series.
    fn encode(&mut self, batch: &[Item]) -> &[u8] {
        self.index.clear();
        self.groups.clear();
        self.item_group.clear();
        for (i, it) in batch.iter().enumerate() {
            let groups = &mut self.groups;
            let g = *self.index.entry(it.id).or_insert_with(|| {
                groups.push((i as u32, 0, 0));
                (groups.len() - 1) as u32
            });
            self.groups[g as usize].1 += 1;
            self.item_group.push(g);
        }
        let mut start = 0;
        for g in &mut self.groups {
            g.2 = start;
            start += g.1;
        }
        let blank = proto::Sample {
            value: 0.0,
            timestamp: 0,
        };
        self.samples.clear();
        self.samples.resize(batch.len(), blank);
        // Counting sort: `g.2` walks through the group's slots.
        for (it, &g) in batch.iter().zip(&self.item_group) {
            let slot = &mut self.groups[g as usize].2;
            self.samples[*slot as usize] = proto::Sample {
                value: it.v,
                timestamp: it.t,
            };
            *slot += 1;
        }
        self.body.clear();
        for &(first, count, end) in &self.groups {
            let samples = &self.samples[(end - count) as usize..end as usize];
            self.body
                .push_series(&batch[first as usize].series, samples);
        }
        self.body.finish()
    }
}

fn base64(s: &str) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::with_capacity(b.len().div_ceil(3) * 4);
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for k in 0..4 {
            if k <= c.len() {
                out.push(T[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_position_round_trips_and_says_what_was_delivered() {
        let s = Saved {
            resume: 7,
            acked: vec![(9, 3), (7, 0)],
        };
        let back = Saved::decode(&s.encode()).unwrap();
        assert_eq!(back, s);
        assert!(back.delivered((9, 3), 4));
        assert!(!back.delivered((9, 4), 4));
        assert!(back.delivered((7, 0), 5));
        assert!(!back.delivered((8, 0), 5));
        assert!(Saved::decode("garbage").is_none());
        assert!(Saved::decode("vigil-remote-write-position 1\nresume x\nacked\n").is_none());
    }

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64(""), "");
        assert_eq!(base64("f"), "Zg==");
        assert_eq!(base64("fo"), "Zm8=");
        assert_eq!(base64("foo"), "Zm9v");
        assert_eq!(base64("user:pass"), "dXNlcjpwYXNz");
    }
}
