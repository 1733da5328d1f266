//! vigil-pushgateway's pieces: the Prometheus Pushgateway's HTTP API
//! (version 1.5's behaviour) over a store of groups, with persistence.
//!
//! - `PUT /metrics/job/<job>{/<label>/<value>}`: replaces the group; `POST`
//!   replaces only the families of the names pushed; `DELETE` deletes the
//!   group (202). Label values (and the job, as `/job@base64/`) may be
//!   written `<label>@base64/<URL-safe base64>`, `=` padding optional.
//!   Successful pushes answer 200; a body that does not parse or a push that
//!   would make the gateway's state inconsistent answers 400 and changes
//!   nothing (the latter sets the group's `push_failure_time_seconds`).
//! - `GET /metrics`: every group's metrics merged, with the grouping labels,
//!   `push_time_seconds` and `push_failure_time_seconds` per group, and the
//!   gateway's own metrics (`pushgateway_*`, `process_*`).
//! - `GET /api/v1/metrics`, `GET /api/v1/status`, `/-/healthy`, `/-/ready`,
//!   `PUT /api/v1/admin/wipe` (with `--web.enable-admin-api`), `PUT`/`POST
//!   /-/quit` (with `--web.enable-lifecycle`).
//!
//! Pushed bodies are read as text 0.0.4, or as OpenMetrics when the
//! `Content-Type` says `application/openmetrics-text`; the protobuf format
//! is not supported (415).

mod model;
mod path;
mod store;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::{Condvar, Mutex};
use serde_json::json;
use vigil_exposition::Format;
use vigil_exposition::client::{
    Counter, Family as CounterFamily, Gauge, ProcessCollector, Registry,
};

use crate::monitor::http::{self, HttpOptions, Reply, Request};
pub use model::{Family, Kind, Metric, Value, go_float};
pub use path::{PathError, grouping_key};
pub use store::{GroupKey, Push, Refusal, Store, WriteMode, civil_from_days, rfc3339};

/// Everything that can go wrong starting, stopping or persisting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PushgatewayError {
    /// The listen address could not be bound.
    #[error("listen on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
    /// The persistence file could not be written or read.
    #[error("persistence file {}: {reason}", path.display())]
    Persist {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The persistence file holds something this build cannot read.
    #[error("persistence file {}: corrupt: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong, and where.
        reason: String,
    },
    /// A command-line flag is wrong.
    #[error("flag {flag}: {reason}")]
    Flag {
        /// The flag as given.
        flag: String,
        /// Why it is refused.
        reason: String,
    },
}

/// How the gateway runs. Every field has the real Pushgateway's flag name
/// and default, except the listen address (loopback, not every interface).
#[derive(Debug, Clone)]
pub struct Options {
    /// `--web.listen-address` (127.0.0.1:9091).
    pub listen: SocketAddr,
    /// `--persistence.file`: where the groups are kept across restarts; none
    /// keeps them only in memory (the default).
    pub persistence_file: Option<PathBuf>,
    /// `--persistence.interval` (5m): the longest a change waits before it is
    /// written out; a stop writes at once.
    pub persistence_interval: Duration,
    /// `--web.enable-admin-api`: serve `PUT /api/v1/admin/wipe`.
    pub enable_admin_api: bool,
    /// `--web.enable-lifecycle`: `PUT`/`POST /-/quit` asks the process to
    /// stop (see [`Pushgateway::quit_requested`]).
    pub enable_lifecycle: bool,
    /// `--push.disable-consistency-check`: accept pushes without checking
    /// them against the other groups (answered 202, as the real one does).
    pub disable_consistency_check: bool,
    /// `--push.max-body-bytes` (16 MiB): larger pushes are answered 413.
    /// (Not a flag of the real Pushgateway, which reads any size.)
    pub max_body_bytes: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            listen: SocketAddr::from(([127, 0, 0, 1], 9091)),
            persistence_file: None,
            persistence_interval: Duration::from_secs(300),
            enable_admin_api: false,
            enable_lifecycle: false,
            disable_consistency_check: false,
            max_body_bytes: 16 << 20,
        }
    }
}

/// The usage text of `vigil-pushgateway --help`.
pub fn help() -> &'static str {
    "usage: vigil-pushgateway [<flags>]

The Prometheus Pushgateway's HTTP API (1.5's behaviour), for short-lived jobs.

Flags:
  -h, --help                      Show this help.
      --version                   Show the version.
      --web.listen-address=127.0.0.1:9091
                                  Address to listen on (loopback by default).
      --web.enable-admin-api      Serve PUT /api/v1/admin/wipe.
      --web.enable-lifecycle      Enable shutdown via PUT or POST /-/quit.
      --persistence.file=\"\"       File to persist metrics in. If empty,
                                  metrics are only kept in memory.
      --persistence.interval=5m   The minimum interval at which to write out
                                  the persistence file.
      --push.disable-consistency-check
                                  Do not check consistency of pushed metrics.
                                  DANGEROUS.
      --push.max-body-bytes=16777216
                                  Largest push body accepted (413 beyond).
"
}

/// What the command line asks for.
#[derive(Debug, Clone)]
pub enum Command {
    /// Run with these options.
    Run(Box<Options>),
    /// Print [`help`].
    Help,
    /// Print the version.
    Version,
}

/// Parses `--flag=value`, `--flag value` and boolean `--flag` arguments.
pub fn parse_flags(args: impl IntoIterator<Item = String>) -> Result<Command, PushgatewayError> {
    let mut o = Options::default();
    let mut args = args.into_iter();
    let bad = |flag: &str, reason: String| PushgatewayError::Flag {
        flag: flag.to_owned(),
        reason,
    };
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
            None => (arg.clone(), None),
        };
        let boolean = |v: Option<String>| -> Result<bool, PushgatewayError> {
            match v.as_deref() {
                None | Some("true") => Ok(true),
                Some("false") => Ok(false),
                Some(x) => Err(bad(&name, format!("expected true or false, got {x:?}"))),
            }
        };
        match name.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--version" => return Ok(Command::Version),
            "--web.enable-admin-api" => o.enable_admin_api = boolean(inline)?,
            "--web.enable-lifecycle" => o.enable_lifecycle = boolean(inline)?,
            "--push.disable-consistency-check" => o.disable_consistency_check = boolean(inline)?,
            "--web.listen-address"
            | "--persistence.file"
            | "--persistence.interval"
            | "--push.max-body-bytes" => {
                let v = match inline {
                    Some(v) => v,
                    None => args
                        .next()
                        .ok_or_else(|| bad(&name, "expects a value".into()))?,
                };
                match name.as_str() {
                    "--web.listen-address" => {
                        // Go's ":9091" means every interface; say so rather
                        // than guess.
                        o.listen = v.parse().map_err(|e| {
                            bad(&name, format!("{v:?} is not an IP:port address ({e})"))
                        })?;
                    }
                    "--persistence.file" => {
                        o.persistence_file = (!v.is_empty()).then(|| PathBuf::from(v));
                    }
                    "--persistence.interval" => {
                        o.persistence_interval = parse_duration(&v)
                            .ok_or_else(|| bad(&name, format!("invalid duration {v:?}")))?;
                    }
                    _ => {
                        o.max_body_bytes =
                            v.parse().map_err(|e| bad(&name, format!("{v:?}: {e}")))?;
                    }
                }
            }
            _ => return Err(bad(&name, "unknown flag (see --help)".into())),
        }
    }
    Ok(Command::Run(Box::new(o)))
}

/// Prometheus-style durations: `90s`, `5m`, `1h30m`, `250ms`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let mut total = 0u64;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let ms = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            "y" => 31_536_000_000,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(ms)?)?;
        rest = &rest[unit_len..];
    }
    Some(Duration::from_millis(total))
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The shared state of a running gateway.
struct Shared {
    opts: Options,
    store: Mutex<Store>,
    /// Set by a change, cleared by a write of the persistence file.
    dirty: Mutex<bool>,
    wake: Condvar,
    stopping: AtomicBool,
    /// Set by `/-/quit`.
    quit: AtomicBool,
    registry: Registry,
    requests: CounterFamily<[String; 3], Counter>,
    start_time: f64,
}

impl Shared {
    /// The gateway's own metrics in the store's model.
    fn own(&self) -> Vec<Family> {
        let mut text = Vec::new();
        self.registry.encode(Format::Text, &mut text);
        // The registry's own output always parses; an error would only drop
        // the gateway's metrics from the check, never a pushed one.
        model::parse_body(&text, false).unwrap_or_default()
    }

    fn changed(&self) {
        *self.dirty.lock() = true;
        self.wake.notify_all();
    }

    fn persist(&self) -> Result<(), PushgatewayError> {
        if let Some(path) = &self.opts.persistence_file {
            let snapshot = self.store.lock().clone();
            snapshot.persist(path)?;
        }
        Ok(())
    }
}

/// A running gateway. [`Pushgateway::stop`] (or dropping it) stops the
/// server and writes the persistence file.
pub struct Pushgateway {
    shared: Arc<Shared>,
    server: Option<http::Server>,
    persister: Option<JoinHandle<()>>,
}

impl Pushgateway {
    /// Loads the persistence file (if any), binds the listen address and
    /// starts serving.
    pub fn start(opts: Options) -> Result<Pushgateway, PushgatewayError> {
        let store = match &opts.persistence_file {
            Some(p) => Store::load(p)?,
            None => Store::default(),
        };
        let registry = Registry::new();
        registry.register_collector(ProcessCollector::new());
        let requests =
            CounterFamily::<[String; 3], Counter>::with_label_names(&["code", "handler", "method"]);
        let register = |r: vigil_exposition::Result<()>| {
            r.map_err(|e| PushgatewayError::Flag {
                flag: "(own metrics)".into(),
                reason: e.to_string(),
            })
        };
        register(registry.register(
            "pushgateway_http_requests",
            "Total HTTP requests processed by the Pushgateway, excluding scrapes.",
            requests.clone(),
        ))?;
        let build = CounterFamily::<[&'static str; 1], Gauge>::with_label_names(&["version"]);
        build.with(&[env!("CARGO_PKG_VERSION")], |g| g.set(1));
        register(registry.register(
            "pushgateway_build_info",
            "A metric with a constant '1' value labeled by the version of vigil-pushgateway.",
            build,
        ))?;
        let shared = Arc::new(Shared {
            opts: opts.clone(),
            store: Mutex::new(store),
            dirty: Mutex::new(false),
            wake: Condvar::new(),
            stopping: AtomicBool::new(false),
            quit: AtomicBool::new(false),
            registry,
            requests,
            start_time: now_secs(),
        });
        let handler_state = Arc::clone(&shared);
        let server = http::serve(
            HttpOptions {
                listen: opts.listen,
                max_body_bytes: opts.max_body_bytes,
                max_connections: 256,
            },
            Arc::new(move |rq: &Request| handle(&handler_state, rq)),
        )
        .map_err(|e| PushgatewayError::Listen {
            addr: opts.listen,
            reason: e.to_string(),
        })?;
        let persister = opts.persistence_file.as_ref().map(|_| {
            let s = Arc::clone(&shared);
            std::thread::spawn(move || persist_loop(&s))
        });
        Ok(Pushgateway {
            shared,
            server: Some(server),
            persister,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.server
            .as_ref()
            .map(|s| s.addr())
            .unwrap_or(self.shared.opts.listen)
    }

    /// Whether `/-/quit` was called (with `--web.enable-lifecycle`); the
    /// owner then calls [`Pushgateway::stop`].
    pub fn quit_requested(&self) -> bool {
        self.shared.quit.load(Ordering::SeqCst)
    }

    /// A copy of the groups.
    pub fn snapshot(&self) -> Store {
        self.shared.store.lock().clone()
    }

    /// Stops serving and writes the persistence file.
    pub fn stop(mut self) -> Result<(), PushgatewayError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), PushgatewayError> {
        if let Some(s) = self.server.take() {
            s.stop();
        }
        {
            // Under the lock, so that the persister cannot miss the wake-up
            // between its check of `stopping` and its wait.
            let _dirty = self.shared.dirty.lock();
            self.shared.stopping.store(true, Ordering::SeqCst);
            self.shared.wake.notify_all();
        }
        if let Some(t) = self.persister.take() {
            let _ = t.join();
            return self.shared.persist();
        }
        Ok(())
    }
}

impl Drop for Pushgateway {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            eprintln!("vigil-pushgateway: {e}");
        }
    }
}

/// Writes the file at most once per interval after a change.
fn persist_loop(s: &Shared) {
    loop {
        {
            let mut dirty = s.dirty.lock();
            while !*dirty && !s.stopping.load(Ordering::SeqCst) {
                s.wake.wait(&mut dirty);
            }
        }
        if s.stopping.load(Ordering::SeqCst) {
            return;
        }
        // Changes within the interval are written together.
        let deadline = std::time::Instant::now() + s.opts.persistence_interval;
        {
            let mut dirty = s.dirty.lock();
            while !s.stopping.load(Ordering::SeqCst) {
                if s.wake.wait_until(&mut dirty, deadline).timed_out() {
                    break;
                }
            }
            *dirty = false;
        }
        if let Err(e) = s.persist() {
            eprintln!("vigil-pushgateway: {e}");
            *s.dirty.lock() = true;
        }
        if s.stopping.load(Ordering::SeqCst) {
            return;
        }
    }
}

/// Answers one request and counts it.
fn handle(s: &Shared, rq: &Request) -> Reply {
    let (handler, reply) = route(s, rq);
    if let Some(h) = handler {
        s.requests.with(
            &[
                reply.status.to_string(),
                h.to_owned(),
                rq.method.to_ascii_lowercase(),
            ],
            |c| c.inc(),
        );
    }
    reply
}

fn route(s: &Shared, rq: &Request) -> (Option<&'static str>, Reply) {
    let decoded = http::percent_decode(&rq.path, false);
    if let Some(p) = decoded.strip_prefix("/metrics/job") {
        if p != "/" && (p.starts_with('/') || p.starts_with("@base64/")) {
            return (Some(handler_name(&rq.method)), push_route(s, rq, &decoded));
        }
    }
    let reply = match (rq.method.as_str(), decoded.as_str()) {
        ("GET" | "HEAD", "/metrics") => {
            let body = s.store.lock().encode(&s.own());
            return (None, Reply::new(200, Format::Text.content_type(), body));
        }
        ("GET", "/api/v1/metrics") => {
            let data = s.store.lock().api_json();
            (
                "api/v1/metrics",
                Reply::new(
                    200,
                    "application/json",
                    json!({"status": "success", "data": data}).to_string(),
                ),
            )
        }
        ("GET", "/api/v1/status") => ("api/v1/status", status(s)),
        ("PUT", "/api/v1/admin/wipe") if s.opts.enable_admin_api => {
            s.store.lock().groups.clear();
            s.changed();
            ("api/v1/admin/wipe", Reply::empty(202))
        }
        ("PUT" | "POST", "/-/quit") if s.opts.enable_lifecycle => {
            s.quit.store(true, Ordering::SeqCst);
            (
                "quit",
                Reply::text(200, "Requesting termination... Goodbye!"),
            )
        }
        ("PUT" | "POST", "/-/quit") => ("quit", Reply::text(403, "Lifecycle API is not enabled.")),
        (_, "/-/quit") => (
            "quit",
            Reply::text(405, "Only POST or PUT requests allowed."),
        ),
        ("GET" | "HEAD", "/-/healthy") => ("healthy", Reply::text(200, "OK")),
        ("GET" | "HEAD", "/-/ready") => ("ready", Reply::text(200, "OK")),
        ("GET", "/") => (
            "static",
            Reply::text(
                200,
                "vigil-pushgateway: push to /metrics/job/<job>, scrape /metrics, \
                 list groups at /api/v1/metrics\n",
            ),
        ),
        (_, "/metrics/job/") => {
            let mut r = Reply::empty(307);
            r.headers.push(("Location", "/metrics/job".into()));
            return (None, r);
        }
        _ => return (None, Reply::text(404, "404 page not found\n")),
    };
    (Some(reply.0), reply.1)
}

fn handler_name(method: &str) -> &'static str {
    if method == "DELETE" { "delete" } else { "push" }
}

fn push_route(s: &Shared, rq: &Request, decoded: &str) -> Reply {
    // Go's router cleans the path first and redirects to the clean one.
    if decoded.contains("//") {
        let mut clean = decoded.to_owned();
        while clean.contains("//") {
            clean = clean.replace("//", "/");
        }
        let mut r = Reply::empty(301);
        r.headers.push(("Location", clean));
        return r;
    }
    let method = rq.method.as_str();
    if !matches!(method, "PUT" | "POST" | "DELETE") {
        return Reply::text(405, "Method Not Allowed\n");
    }
    let key = match grouping_key(decoded) {
        Ok(k) => k,
        Err(PathError::NotFound) => return Reply::text(404, "404 page not found\n"),
        Err(e) => return Reply::text(400, format!("{e}\n")),
    };
    let now = now_secs();
    if method == "DELETE" {
        s.store.lock().delete(&key);
        s.changed();
        return Reply::empty(202);
    }
    let content_type = rq.header("content-type").unwrap_or("");
    let media = content_type.split(';').next().unwrap_or("").trim();
    if media.eq_ignore_ascii_case("application/vnd.google.protobuf") {
        return Reply::text(
            415,
            "the protobuf push format is not supported by vigil-pushgateway; push text 0.0.4 or OpenMetrics\n",
        );
    }
    let openmetrics = media.eq_ignore_ascii_case("application/openmetrics-text");
    let Some(body) = &rq.body else {
        return Reply::text(
            413,
            format!("push body larger than {} bytes\n", s.opts.max_body_bytes),
        );
    };
    let mode = if method == "PUT" {
        WriteMode::Replace
    } else {
        WriteMode::Merge
    };
    let own = s.own();
    let check = !s.opts.disable_consistency_check;
    let result = s.store.lock().push(
        Push {
            key: &key,
            body,
            openmetrics,
            mode,
        },
        now,
        &own,
        check,
    );
    match result {
        Ok(()) => {
            s.changed();
            Reply::empty(if check { 200 } else { 202 })
        }
        Err(Refusal::Parse(e)) => Reply::text(400, format!("{e}\n")),
        Err(Refusal::Inconsistent(e)) => {
            s.changed();
            Reply::text(
                400,
                format!("pushed metrics are invalid or inconsistent with existing metrics: {e}\n"),
            )
        }
    }
}

fn status(s: &Shared) -> Reply {
    let o = &s.opts;
    let flags = json!({
        "web.listen-address": o.listen.to_string(),
        "web.enable-admin-api": o.enable_admin_api.to_string(),
        "web.enable-lifecycle": o.enable_lifecycle.to_string(),
        "persistence.file": o.persistence_file.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
        "persistence.interval": format!("{}s", o.persistence_interval.as_secs()),
        "push.disable-consistency-check": o.disable_consistency_check.to_string(),
        "push.max-body-bytes": o.max_body_bytes.to_string(),
    });
    let body = json!({
        "status": "success",
        "data": {
            "build_information": {"version": env!("CARGO_PKG_VERSION"), "program": "vigil-pushgateway"},
            "flags": flags,
            "start_time": store::rfc3339(s.start_time),
        }
    });
    Reply::new(200, "application/json", body.to_string())
}
