//! The engine: a [`Pipeline`] built from a fluent-bit configuration runs
//! every input on its own thread and every output on its own thread, joined
//! by the per-output buffers.
//!
//! ```text
//! input thread:  read ─► parse (the input's Parser) ─► filters ─► route by Match
//!                  │        (waits here while over Mem_Buf_Limit)       │
//!                  └──────────── register chunk with the AckTracker ◄───┘
//!                                                                       ▼
//! output thread: memory queue or disk buffer ─► flush, retry with backoff ─► ack
//! ```
//!
//! Parsing and filtering run on the input's thread (each input owns its
//! filters, which may keep state), so one busy input uses one core for
//! reading and parsing while its outputs encode and write on others. There
//! are no async tasks: plain threads, mutexes and condition variables.
//!
//! Stopping ([`StopHandle::stop`]): inputs stop reading; outputs deliver
//! what they hold, retrying until `Grace` (5 s) has passed; then inputs
//! write their final checkpoints, which cover exactly what was delivered
//! (or made durable in a disk buffer). Records still undelivered when the
//! grace period ends are not checkpointed and are read again on restart.

use crate::buffer::{AckTracker, Buffer, Chunk, DiskQueue, MemQueue};
use crate::config::{Config, Section};
use crate::error::{Error, Result};
use crate::filter::{self, Action, Filter};
use crate::input::exec::Exec;
use crate::input::kmsg::Kmsg;
use crate::input::stdin::Stdin;
use crate::input::tail::{Tail, TailOptions};
use crate::input::{self, Emitter};
use crate::metrics::{InputMetrics, Metrics, OutputMetrics};
use crate::output::{self, Flush, Output};
use crate::parser::{LineParser, Parsers};
use crate::record::{Record, Value};
use crate::router::TagMatch;
use parking_lot::{Condvar, Mutex};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// `[SERVICE]` keys the engine reads or accepts.
const SERVICE_KEYS: &[&str] = &[
    "flush",
    "grace",
    "daemon",
    "log_level",
    "log_file",
    "parsers_file",
    "plugins_file",
    "streams_file",
    "http_server",
    "http_listen",
    "http_port",
    "health_check",
    "hc_*",
    "hot_reload",
    "coro_stack_size",
    "scheduler.base",
    "scheduler.cap",
    "storage.*",
];

/// Per-input keys the engine reads for every input plugin.
const INPUT_KEYS: &[&str] = &["tag", "parser", "mem_buf_limit", "storage.*", "alias"];

/// Queued bytes that make an output flush before its interval is up.
const FLUSH_BYTES: usize = 2 << 20;
/// Records below which a chunk is parsed on one thread (a scoped thread
/// costs tens of microseconds; a chunk this size takes milliseconds).
const PARALLEL_PARSE_MIN: usize = 512;
/// The most an output takes for one flush.
const MAX_BATCH: usize = 4 << 20;

/// Settings from `[SERVICE]`.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// Longest a record waits in an output's memory queue (`Flush`, 1 s).
    pub flush: Duration,
    /// How long outputs keep trying after a stop (`Grace`, 5 s).
    pub grace: Duration,
    /// First retry wait (`scheduler.base`, 5 s).
    pub retry_base: Duration,
    /// Longest retry wait (`scheduler.cap`, 2000 s).
    pub retry_cap: Duration,
    /// Where disk buffers live (`storage.path`).
    pub storage_path: Option<PathBuf>,
}

impl ServiceOptions {
    /// Reads `[SERVICE]`.
    pub fn from_section(s: &Section) -> Result<Self> {
        s.check_keys(SERVICE_KEYS)?;
        if s.get_bool_or("daemon", false)? {
            return Err(s.error_at(
                "daemon",
                "Daemon mode is not supported (run under a supervisor)",
            ));
        }
        Ok(ServiceOptions {
            flush: s.get_duration("flush")?.unwrap_or(Duration::from_secs(1)),
            grace: s.get_duration("grace")?.unwrap_or(Duration::from_secs(5)),
            retry_base: s
                .get_duration("scheduler.base")?
                .unwrap_or(Duration::from_secs(5)),
            retry_cap: s
                .get_duration("scheduler.cap")?
                .unwrap_or(Duration::from_secs(2000)),
            storage_path: s.get("storage.path").map(PathBuf::from),
        })
    }
}

/// How often a failing flush is retried (`Retry_Limit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryLimit {
    /// At most this many retries (`Retry_Limit N`; fluent-bit's default 1).
    Times(u32),
    /// Forever (`Retry_Limit False` or `no_limits`).
    Forever,
}

impl RetryLimit {
    /// Reads `Retry_Limit` from an `[OUTPUT]`.
    pub fn from_section(s: &Section) -> Result<Self> {
        let Some(v) = s.get("retry_limit") else {
            return Ok(RetryLimit::Times(1));
        };
        let lower = v.to_ascii_lowercase();
        Ok(match lower.as_str() {
            "false" | "off" | "no_limits" | "unlimited" => RetryLimit::Forever,
            "no_retries" => RetryLimit::Times(0),
            n => RetryLimit::Times(n.parse().map_err(|_| {
                s.error_at(
                    "retry_limit",
                    format!(
                        "Retry_Limit must be a number, False, no_limits or no_retries, not {v:?}"
                    ),
                )
            })?),
        })
    }

    fn allows(self, retries_done: u32) -> bool {
        match self {
            RetryLimit::Forever => true,
            RetryLimit::Times(n) => retries_done < n,
        }
    }
}

/// Stops a running pipeline from another thread (a signal handler's).
#[derive(Debug, Clone)]
pub struct StopHandle(Arc<StopState>);

#[derive(Debug, Default)]
struct StopState {
    stop: AtomicBool,
    lock: Mutex<()>,
    cv: Condvar,
}

impl StopHandle {
    /// Asks the pipeline to stop (flushing first).
    pub fn stop(&self) {
        self.0.stop.store(true, Ordering::SeqCst);
        let _g = self.0.lock.lock();
        self.0.cv.notify_all();
    }

    /// Whether a stop was asked for.
    pub fn is_stopped(&self) -> bool {
        self.0.stop.load(Ordering::SeqCst)
    }

    fn wait(&self, timeout: Duration) {
        let mut g = self.0.lock.lock();
        if !self.is_stopped() {
            self.0.cv.wait_for(&mut g, timeout);
        }
    }
}

enum InputKind {
    Tail(Box<Tail>),
    Stdin(Stdin),
    Exec(Exec),
    Kmsg(Kmsg),
}

struct InputSpec {
    name: String,
    kind: InputKind,
    parser: Option<Arc<dyn LineParser>>,
    tracker: Arc<AckTracker>,
}

struct OutputSpec {
    name: String,
    matcher: TagMatch,
    output: Box<dyn Output>,
    buffer: Arc<Buffer>,
    retry: RetryLimit,
}

/// A pipeline ready to run.
pub struct Pipeline {
    service: ServiceOptions,
    inputs: Vec<InputSpec>,
    outputs: Vec<OutputSpec>,
    filter_sections: Vec<Section>,
    parsers: Parsers,
    stop: StopHandle,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field(
                "inputs",
                &self.inputs.iter().map(|i| &i.name).collect::<Vec<_>>(),
            )
            .field(
                "outputs",
                &self.outputs.iter().map(|o| &o.name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// `name.N`: the plugin name and its instance number, as fluent-bit names
/// instances (or the `Alias`).
fn instance_name(s: &Section, plugin: &str, counts: &mut Vec<(String, usize)>) -> String {
    let n = match counts.iter_mut().find(|(p, _)| p == plugin) {
        Some((_, n)) => {
            *n += 1;
            *n - 1
        }
        None => {
            counts.push((plugin.to_owned(), 1));
            0
        }
    };
    match s.get("alias") {
        Some(a) => a.to_owned(),
        None => format!("{plugin}.{n}"),
    }
}

impl Pipeline {
    /// Builds every plugin of `cfg`, so that any configuration error shows
    /// now, with its file and line.
    pub fn from_config(cfg: Config) -> Result<Pipeline> {
        Pipeline::build(cfg, true)
    }

    /// Checks `cfg` as [`Pipeline::from_config`] does (every plugin, parser,
    /// filter and key) without opening the outputs' disk buffers, so a
    /// running pipeline that holds them can check its next configuration
    /// before a reload.
    pub fn check(cfg: Config) -> Result<()> {
        Pipeline::build(cfg, false).map(drop)
    }

    fn build(cfg: Config, open_disk_buffers: bool) -> Result<Pipeline> {
        let service = ServiceOptions::from_section(&cfg.service)?;
        let parsers = Parsers::from_config(&cfg)?;
        let metrics = Arc::new(Metrics::default());
        let mut counts = Vec::new();
        let mut inputs = Vec::new();
        let mut any_filesystem = false;
        for s in &cfg.inputs {
            let plugin = s
                .name()
                .ok_or_else(|| s.error(None, "[INPUT] without a Name"))?
                .to_ascii_lowercase();
            let name = instance_name(s, &plugin, &mut counts);
            let tag = s.get("tag").map_or_else(|| name.clone(), str::to_owned);
            let own: &[&str] = match plugin.as_str() {
                "tail" => crate::input::tail::KEYS,
                "stdin" => crate::input::stdin::KEYS,
                "exec" => crate::input::exec::KEYS,
                "kmsg" => crate::input::kmsg::KEYS,
                other => {
                    return Err(s.error_at(
                        "name",
                        format!(
                            "unknown input plugin '{other}' (vigil-logpipe has tail, stdin, exec, kmsg)"
                        ),
                    ));
                }
            };
            let keys: Vec<&str> = INPUT_KEYS.iter().chain(own).copied().collect();
            s.check_keys(&keys)?;
            let index = inputs.len();
            let kind = match plugin.as_str() {
                "tail" => InputKind::Tail(Box::new(Tail::new(
                    TailOptions::from_section(s, &tag)?,
                    index,
                )?)),
                "stdin" => InputKind::Stdin(Stdin::from_section(s, &tag)?),
                "kmsg" => InputKind::Kmsg(Kmsg::from_section(s, &tag)?),
                _ => InputKind::Exec(Exec::from_section(s, &tag)?),
            };
            let parser = match s.get("parser") {
                Some(p) => Some(
                    parsers
                        .get(p)
                        .ok_or_else(|| s.error_at("parser", format!("no parser named '{p}'")))?,
                ),
                None => None,
            };
            match s
                .get("storage.type")
                .map(str::to_ascii_lowercase)
                .as_deref()
            {
                None | Some("memory") => {}
                Some("filesystem") => {
                    if service.storage_path.is_none() {
                        return Err(s.error_at(
                            "storage.type",
                            "storage.type filesystem needs storage.path in [SERVICE]",
                        ));
                    }
                    any_filesystem = true;
                }
                Some(other) => {
                    return Err(s.error_at(
                        "storage.type",
                        format!("unknown storage.type '{other}' (memory, filesystem)"),
                    ));
                }
            }
            // fluent-bit has no limit without Mem_Buf_Limit; a sidecar
            // must not grow without bound, so the default is 64 MiB.
            let limit = s
                .get_size("mem_buf_limit")?
                .map_or(64 << 20, |n| n as usize);
            metrics
                .inputs
                .lock()
                .push(Arc::new(InputMetrics::new(&name)));
            inputs.push(InputSpec {
                name,
                kind,
                parser,
                tracker: AckTracker::new(limit),
            });
        }
        if inputs.is_empty() {
            return Err(Error::Config {
                file: cfg.service.file.clone(),
                line: 0,
                message: "the configuration has no [INPUT]".into(),
            });
        }
        for s in &cfg.filters {
            // Built here only to report errors now; each input thread
            // builds its own (filters keep state).
            filter::build_with(s, &parsers, &metrics.log_metrics)?;
            TagMatch::from_section(s)?;
        }
        let mut outputs = Vec::new();
        let mut counts = Vec::new();
        for s in &cfg.outputs {
            let output = output::build(s)?;
            let plugin = s.name().unwrap_or("output").to_ascii_lowercase();
            let name = instance_name(s, &plugin, &mut counts);
            let matcher = TagMatch::from_section(s)?;
            let retry = RetryLimit::from_section(s)?;
            let disk = any_filesystem
                || s.get("storage.type")
                    .is_some_and(|t| t.eq_ignore_ascii_case("filesystem"));
            let buffer = match (&service.storage_path, disk) {
                (Some(root), true) if open_disk_buffers => {
                    let limit = s.get_size("storage.total_limit_size")?.unwrap_or(u64::MAX);
                    Buffer::Disk(Box::new(DiskQueue::open(root.join(&name), limit, None)?))
                }
                _ => Buffer::Memory(MemQueue::new()),
            };
            metrics
                .outputs
                .lock()
                .push(Arc::new(OutputMetrics::new(&name)));
            outputs.push(OutputSpec {
                name,
                matcher,
                output,
                buffer: Arc::new(buffer),
                retry,
            });
        }
        if outputs.len() > 64 {
            return Err(Error::Config {
                file: cfg.service.file.clone(),
                line: 0,
                message: "more than 64 [OUTPUT] sections".into(),
            });
        }
        Ok(Pipeline {
            service,
            inputs,
            outputs,
            filter_sections: cfg.filters,
            parsers,
            stop: StopHandle(Arc::default()),
            metrics,
        })
    }

    /// A handle that stops [`Pipeline::run`].
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// The pipeline's own counters (shared; they keep counting while it runs).
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Runs until [`StopHandle::stop`], then flushes (see the module notes).
    pub fn run(self) -> Result<()> {
        let Pipeline {
            service,
            inputs,
            outputs,
            filter_sections,
            parsers,
            stop,
            metrics,
        } = self;
        let shared = Arc::new(Shared {
            stop: stop.clone(),
            finished_inputs: AtomicUsize::new(0),
            outputs_done: Mutex::new(false),
            outputs_done_cv: Condvar::new(),
            grace_deadline: Mutex::new(None),
        });
        let routes: Arc<Vec<Route>> = Arc::new(
            outputs
                .iter()
                .map(|o| Route {
                    matcher: o.matcher.clone(),
                    buffer: o.buffer.clone(),
                })
                .collect(),
        );
        let out_metrics: Vec<Arc<OutputMetrics>> = metrics.outputs.lock().clone();
        let in_metrics: Vec<Arc<InputMetrics>> = metrics.inputs.lock().clone();
        let mut out_threads = Vec::new();
        for (i, o) in outputs.into_iter().enumerate() {
            let shared = shared.clone();
            let m = out_metrics[i].clone();
            let svc = service.clone();
            let t = std::thread::Builder::new()
                .name(format!("out:{}", o.name))
                .spawn(move || output_thread(o, svc, shared, m))
                .map_err(|e| Error::io("spawn output thread", e))?;
            out_threads.push(t);
        }
        let trackers: Vec<Arc<AckTracker>> = inputs.iter().map(|i| i.tracker.clone()).collect();
        let n_inputs = inputs.len();
        let mut in_threads: Vec<JoinHandle<()>> = Vec::new();
        for (index, spec) in inputs.into_iter().enumerate() {
            let mut filters = Vec::new();
            for s in &filter_sections {
                filters.push((
                    TagMatch::from_section(s)?,
                    filter::build_with(s, &parsers, &metrics.log_metrics)?,
                ));
            }
            let mut emitter = PipeEmitter {
                tracker: spec.tracker.clone(),
                parser: spec.parser.clone(),
                filters,
                routes: routes.clone(),
                shared: shared.clone(),
                metrics: in_metrics[index].clone(),
                masks: Vec::new(),
                finished: false,
                parse_threads: std::thread::available_parallelism().map_or(1, |n| n.get().min(4)),
            };
            let name = spec.name.clone();
            let t = std::thread::Builder::new()
                .name(format!("in:{name}"))
                .spawn(move || {
                    let res = match spec.kind {
                        InputKind::Tail(mut t) => t.run(&mut emitter),
                        InputKind::Stdin(s) => s.run(std::io::stdin(), &mut emitter),
                        InputKind::Exec(e) => e.run(&mut emitter),
                        InputKind::Kmsg(k) => k.run(&mut emitter),
                    };
                    if let Err(e) = res {
                        log("error", &format!("input:{name}"), &e.to_string());
                        // It still counts as finished for the shutdown.
                        emitter.finish_once();
                    }
                })
                .map_err(|e| Error::io("spawn input thread", e))?;
            in_threads.push(t);
        }

        while !stop.is_stopped() {
            stop.wait(Duration::from_millis(500));
        }

        // 1. Inputs stop taking new data.
        *shared.grace_deadline.lock() = Some(Instant::now() + service.grace);
        for t in &trackers {
            t.stop();
        }
        let deadline = Instant::now() + service.grace + Duration::from_secs(1);
        while shared.finished_inputs.load(Ordering::SeqCst) < n_inputs && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        // 2. Outputs deliver what they hold, until the grace period ends.
        for r in routes.iter() {
            r.buffer.close();
        }
        let mut result = Ok(());
        for t in out_threads {
            if let Ok(Err(e)) = t.join() {
                result = Err(e);
            }
        }
        // 3. Inputs write their final checkpoints.
        *shared.outputs_done.lock() = true;
        shared.outputs_done_cv.notify_all();
        for t in in_threads {
            let _ = t.join();
        }
        result
    }
}

struct Shared {
    stop: StopHandle,
    finished_inputs: AtomicUsize,
    outputs_done: Mutex<bool>,
    outputs_done_cv: Condvar,
    grace_deadline: Mutex<Option<Instant>>,
}

impl Shared {
    fn past_grace(&self) -> bool {
        self.grace_deadline
            .lock()
            .is_some_and(|d| Instant::now() >= d)
    }
}

struct Route {
    matcher: TagMatch,
    buffer: Arc<Buffer>,
}

/// The pipeline as an input thread sees it: parse, filter, route, account.
struct PipeEmitter {
    tracker: Arc<AckTracker>,
    parser: Option<Arc<dyn LineParser>>,
    filters: Vec<(TagMatch, Box<dyn Filter>)>,
    routes: Arc<Vec<Route>>,
    shared: Arc<Shared>,
    metrics: Arc<InputMetrics>,
    /// Which outputs (bit per output) and filters a tag goes to, for the
    /// tags seen lately (tags repeat: one per file).
    masks: Vec<(String, u64, Vec<bool>)>,
    finished: bool,
    /// Threads that parse a large chunk together (the CPUs, at most 4).
    parse_threads: usize,
}

impl PipeEmitter {
    fn route_of(&mut self, tag: &str) -> (u64, usize) {
        // Most records carry the tag of the one before.
        if let Some(last) = self.masks.last() {
            if last.0 == tag {
                return (last.1, self.masks.len() - 1);
            }
        }
        if let Some(i) = self.masks.iter().position(|(t, _, _)| t == tag) {
            return (self.masks[i].1, i);
        }
        let mut mask = 0u64;
        for (i, r) in self.routes.iter().enumerate() {
            if r.matcher.matches(tag) {
                mask |= 1 << i;
            }
        }
        let filters = self.filters.iter().map(|(m, _)| m.matches(tag)).collect();
        if self.masks.len() >= 64 {
            self.masks.remove(0);
        }
        self.masks.push((tag.to_owned(), mask, filters));
        (mask, self.masks.len() - 1)
    }

    /// Parses the chunk's records with the input's parser. A large chunk is
    /// cut in parts parsed on scoped helper threads at the same time (the
    /// parser is shared and immutable; order is kept because each part is
    /// parsed in place), so a regex parser uses every core rather than one.
    fn parse_all(&self, records: &mut [Record]) {
        let Some(p) = &self.parser else { return };
        let p: &dyn LineParser = &**p;
        if self.parse_threads <= 1 || records.len() < PARALLEL_PARSE_MIN {
            records.iter_mut().for_each(|r| parse_one(p, r));
            return;
        }
        let per = records.len().div_ceil(self.parse_threads);
        std::thread::scope(|sc| {
            let mut parts = records.chunks_mut(per);
            let mine = parts.next();
            for part in parts {
                sc.spawn(move || part.iter_mut().for_each(|r| parse_one(p, r)));
            }
            if let Some(mine) = mine {
                mine.iter_mut().for_each(|r| parse_one(p, r));
            }
        });
    }

    fn finish_once(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.shared.finished_inputs.fetch_add(1, Ordering::SeqCst);
        let mut done = self.shared.outputs_done.lock();
        while !*done {
            self.shared.outputs_done_cv.wait(&mut done);
        }
    }
}

/// Replaces a record's raw text (its first field: `log`, or the input's
/// `Key`) by what the parser read; a line the parser does not match stays
/// as it was, as in fluent-bit.
fn parse_one(p: &dyn LineParser, r: &mut Record) {
    let text = match r.fields.iter().next() {
        Some((_, Value::Str(s))) => s.as_str(),
        _ => return,
    };
    if let Ok(parsed) = p.parse(text) {
        r.fields = parsed.fields;
        if let Some(t) = parsed.time_ns {
            r.time_ns = t;
        }
    }
}

/// Bytes of heap an allocation of `n` bytes takes (glibc: 8 bytes of
/// header, 16-byte granules, 32 at least).
fn heap(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        (n + 8).next_multiple_of(16).max(32)
    }
}

fn value_heap(v: &Value) -> usize {
    match v {
        Value::Str(s) => heap(s.len()),
        Value::Array(items) => {
            heap(items.len() * std::mem::size_of::<Value>())
                + items.iter().map(value_heap).sum::<usize>()
        }
        Value::Map(f) => fields_heap(f),
        _ => 0,
    }
}

fn fields_heap(f: &crate::record::Fields) -> usize {
    // Fields built by pushing grow to 4 entries at once, then double.
    let cap = match f.len() {
        0 | 1 => f.len(),
        n => n.next_power_of_two().max(4),
    };
    heap(cap * std::mem::size_of::<(String, Value)>())
        + f.iter()
            .map(|(k, v)| heap(k.len()) + value_heap(v))
            .sum::<usize>()
}

/// The memory a record holds, as `Mem_Buf_Limit` counts it: the record
/// itself and every allocation it owns.
fn estimate(r: &Record) -> usize {
    std::mem::size_of::<Record>() + heap(r.tag.len()) + fields_heap(&r.fields)
}

impl Emitter for PipeEmitter {
    fn emit(&mut self, stream: u64, end: u64, mut records: Vec<Record>, bytes: usize) -> bool {
        self.metrics.add_in(records.len(), bytes);
        self.parse_all(&mut records);
        let mut masks = Vec::with_capacity(records.len());
        let mut mem = 0;
        let mut keep = Vec::with_capacity(records.len());
        for mut r in records {
            let (mask, slot) = self.route_of(&r.tag);
            let mut dropped = false;
            for (fi, (_, f)) in self.filters.iter_mut().enumerate() {
                if self.masks[slot].2[fi] && f.filter(&mut r) == Action::Drop {
                    dropped = true;
                    break;
                }
            }
            if dropped {
                continue;
            }
            // A filter may have changed the tag.
            let mask = if self.masks.get(slot).is_some_and(|m| m.0 == r.tag) {
                mask
            } else {
                self.route_of(&r.tag).0
            };
            if mask == 0 {
                continue;
            }
            mem += estimate(&r) * mask.count_ones() as usize;
            masks.push(mask);
            keep.push(r);
        }
        let Some(token) = self.tracker.register(stream, end, mem) else {
            return false;
        };
        self.metrics
            .buffered
            .store(self.tracker.inflight_bytes() as u64, Ordering::Relaxed);
        if keep.is_empty() {
            return true;
        }
        let all = masks[0];
        if masks.iter().all(|&m| m == all) && all.count_ones() == 1 {
            let i = all.trailing_zeros() as usize;
            let chunk = Chunk::new(keep, mem, Some(token));
            return push(&self.routes[i], chunk, &self.shared);
        }
        let mut per: Vec<Vec<Record>> = (0..self.routes.len()).map(|_| Vec::new()).collect();
        for (r, mask) in keep.into_iter().zip(masks) {
            let last = 63 - mask.leading_zeros() as usize;
            for (i, p) in per.iter_mut().enumerate().take(last) {
                if mask & (1 << i) != 0 {
                    p.push(r.clone());
                }
            }
            per[last].push(r);
        }
        let mut ok = true;
        for (i, recs) in per.into_iter().enumerate() {
            if !recs.is_empty() {
                let chunk = Chunk::new(recs, mem, Some(token.clone()));
                ok &= push(&self.routes[i], chunk, &self.shared);
            }
        }
        ok
    }

    fn stopping(&self) -> bool {
        self.shared.stop.is_stopped()
    }

    fn open_stream(&mut self, stream: u64, offset: u64) {
        self.tracker.set_committed(stream, offset);
    }

    fn committed(&self, stream: u64) -> Option<u64> {
        self.tracker.committed(stream)
    }

    fn close_stream(&mut self, stream: u64) {
        self.tracker.forget(stream);
    }

    fn finish(&mut self) {
        self.finish_once();
    }

    fn request_stop(&mut self) {
        self.shared.stop.stop();
    }
}

fn push(route: &Route, chunk: Chunk, shared: &Shared) -> bool {
    match route.buffer.push(chunk) {
        Ok(()) => true,
        Err(e) => {
            // The chunk was not acknowledged: its input does not checkpoint
            // past it, so it is read again after a restart.
            log("error", "buffer", &e.to_string());
            let _ = shared;
            false
        }
    }
}

/// One line on stderr, in fluent-bit's shape.
fn log(level: &str, who: &str, msg: &str) {
    let (secs, _) = crate::output::split_time(input::now_ns());
    let (y, mo, d, h, mi, s) = crate::output::civil(secs);
    eprintln!("[{y:04}/{mo:02}/{d:02} {h:02}:{mi:02}:{s:02}] [{level:>5}] [{who}] {msg}");
}

/// What became of one batch.
enum Outcome {
    Delivered,
    /// Given up by the retry policy or refused for good: acknowledged (and
    /// counted as dropped) so the input is not held back forever.
    Dropped,
    /// Stopped before delivery (grace period over): not acknowledged.
    Abandoned,
}

struct Retrier {
    rng: u64,
}

impl Retrier {
    /// fluent-bit's scheduler: a random wait between `base` and
    /// `min(cap, base * 2^attempt)` ("full jitter" above the base).
    fn backoff(&mut self, svc: &ServiceOptions, attempt: u32) -> Duration {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let base = svc.retry_base.as_secs_f64();
        let top = (base * 2f64.powi(attempt.min(30) as i32))
            .min(svc.retry_cap.as_secs_f64())
            .max(base);
        let frac = (self.rng >> 11) as f64 / (1u64 << 53) as f64;
        Duration::from_secs_f64(base + (top - base) * frac)
    }
}

fn deliver(
    o: &mut OutputSpec,
    records: &[Record],
    bytes: usize,
    svc: &ServiceOptions,
    shared: &Shared,
    m: &OutputMetrics,
    retrier: &mut Retrier,
) -> Outcome {
    let who = format!("output:{}", o.name);
    let mut retries = 0u32;
    loop {
        match o.output.flush(records) {
            Flush::Ok => {
                m.add_out(records.len(), bytes);
                if retries > 0 {
                    log("info", &who, &format!("delivered after {retries} retries"));
                }
                return Outcome::Delivered;
            }
            Flush::Error(e) => {
                m.add_error(records.len());
                log(
                    "error",
                    &who,
                    &format!("{e}; {} records dropped", records.len()),
                );
                return Outcome::Dropped;
            }
            Flush::Retry(e) => {
                m.add_error(0);
                if !o.retry.allows(retries) {
                    m.add_retry_failed(records.len());
                    log(
                        "warn",
                        &who,
                        &format!(
                            "{e}; retry limit reached, {} records dropped",
                            records.len()
                        ),
                    );
                    return Outcome::Dropped;
                }
                retries += 1;
                m.add_retry(records.len());
                let wait = retrier.backoff(svc, retries - 1);
                log(
                    "warn",
                    &who,
                    &format!("{e}; retry {retries} in {:.1}s", wait.as_secs_f64()),
                );
                let until = Instant::now() + wait;
                while Instant::now() < until {
                    if shared.past_grace() {
                        return Outcome::Abandoned;
                    }
                    std::thread::sleep(Duration::from_millis(20).min(until - Instant::now()));
                }
                if shared.past_grace() {
                    return Outcome::Abandoned;
                }
            }
        }
    }
}

fn output_thread(
    mut o: OutputSpec,
    svc: ServiceOptions,
    shared: Arc<Shared>,
    m: Arc<OutputMetrics>,
) -> Result<()> {
    let mut retrier = Retrier {
        rng: (input::now_ns() as u64) | 1,
    };
    let buffer = o.buffer.clone();
    match &*buffer {
        Buffer::Memory(q) => {
            let mut chunks = Vec::new();
            let mut records = Vec::new();
            loop {
                let ready = q.wait(FLUSH_BYTES, svc.flush, Duration::from_millis(200));
                m.set_buffered(q.bytes() as u64);
                if ready == crate::buffer::memory::Ready::Idle {
                    continue;
                }
                q.take(MAX_BATCH, &mut chunks);
                if chunks.is_empty() {
                    if ready == crate::buffer::memory::Ready::Closed {
                        break;
                    }
                    continue;
                }
                let mut bytes = 0;
                for c in &mut chunks {
                    records.append(&mut c.records);
                    bytes += c.bytes;
                }
                let outcome = deliver(&mut o, &records, bytes, &svc, &shared, &m, &mut retrier);
                records.clear();
                match outcome {
                    Outcome::Delivered | Outcome::Dropped => {
                        for c in chunks.drain(..) {
                            c.ack();
                        }
                    }
                    Outcome::Abandoned => {
                        chunks.clear();
                        return Ok(());
                    }
                }
                if ready == crate::buffer::memory::Ready::Closed && shared.past_grace() {
                    // Out of time: what is left stays unacknowledged.
                    return Ok(());
                }
            }
            Ok(())
        }
        Buffer::Disk(q) => {
            let mut reader = q.reader()?;
            let mut records = Vec::new();
            let mut closed_idle = 0;
            loop {
                records.clear();
                m.set_buffered(q.used());
                let last =
                    reader.next_batch(MAX_BATCH, Duration::from_millis(200), &mut records)?;
                let Some((lsn, bytes)) = last else {
                    if q.is_closed() && (q.is_drained() || shared.past_grace()) {
                        closed_idle += 1;
                        // One more look: a push may have landed just now.
                        if closed_idle > 1 {
                            break;
                        }
                    }
                    continue;
                };
                match deliver(&mut o, &records, bytes, &svc, &shared, &m, &mut retrier) {
                    Outcome::Delivered | Outcome::Dropped => q.commit(lsn, false)?,
                    Outcome::Abandoned => break,
                }
            }
            q.commit(0, true)?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SectionKind;

    #[test]
    fn retry_limit_values() {
        let s = |v: &str| Section::new(SectionKind::Output, "f.conf", 3).with("Retry_Limit", v);
        assert_eq!(
            RetryLimit::from_section(&s("5")).unwrap(),
            RetryLimit::Times(5)
        );
        assert_eq!(
            RetryLimit::from_section(&s("False")).unwrap(),
            RetryLimit::Forever
        );
        assert_eq!(
            RetryLimit::from_section(&s("no_limits")).unwrap(),
            RetryLimit::Forever
        );
        assert_eq!(
            RetryLimit::from_section(&s("no_retries")).unwrap(),
            RetryLimit::Times(0)
        );
        let err = RetryLimit::from_section(&s("often"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("f.conf:"), "{err}");
    }

    #[test]
    fn backoff_stays_between_base_and_cap() {
        let svc = ServiceOptions {
            flush: Duration::from_secs(1),
            grace: Duration::from_secs(1),
            retry_base: Duration::from_secs(2),
            retry_cap: Duration::from_secs(30),
            storage_path: None,
        };
        let mut r = Retrier { rng: 12345 };
        let mut seen = std::collections::HashSet::new();
        for attempt in 0..20 {
            let w = r.backoff(&svc, attempt);
            assert!(
                w >= Duration::from_secs(2) && w <= Duration::from_secs(30),
                "{w:?}"
            );
            if attempt < 3 {
                assert!(w <= Duration::from_secs(2 << attempt));
            }
            seen.insert(w.as_millis());
        }
        assert!(seen.len() > 10, "jitter: {seen:?}");
    }
}
