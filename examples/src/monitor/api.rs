//! vigil-monitor's HTTP API: Prometheus's v1 JSON API, `/federate`,
//! `/metrics` and the `/-/` lifecycle endpoints, over the store (through
//! [`Backend::db`]) and the rest of the monitor (through [`Backend`]).
//!
//! Answers follow Prometheus 2.42 as observed on the wire (the peer
//! installed from Debian) where it and 3.x agree: the same JSON shapes,
//! `errorType`s, error texts and HTTP status codes (400 `bad_data`, 422
//! `execution`, 503 `timeout`, 500 `internal` and `unavailable`), GET and
//! form-encoded POST where Prometheus takes both.
//!
//! Limits: queries beyond `max_concurrency` wait for a slot until their
//! timeout, then fail as Prometheus's do ("query timed out in query
//! queue"); the engine enforces `max_samples` and the timeout while it
//! evaluates; request bodies above `max_body_bytes` are refused.
//!
//! Where this differs from Prometheus, or is not done:
//! - A snapshot puts its blocks under `<name>/blocks/` (vigil-tsdb's layout,
//!   so `Db::open(<snapshot>)` serves it), not directly under `<name>/`.
//! - `/api/v1/query_exemplars` is always empty: the store keeps no
//!   exemplars.
//! - `/api/v1/series`, `/api/v1/labels` and label values with a time range
//!   decode the selected series' block samples in that range (the store has
//!   no labels-only select over blocks); the head is judged by chunk
//!   overlap without decoding, and without a time range labels come from
//!   the index.
//! - `/api/v1/status/walreplay`,
//!   `/api/v1/targets/metadata` and `stats=all` are not served (the web
//!   pages are, by [`super::web`]). `/api/v1/status/runtimeinfo` reports
//!   OS threads as `goroutineCount` and leaves `GOGC`/`GODEBUG` empty.
//! - A request's body is read without a deadline: a client that drips its
//!   body holds one request thread (the `max_connections` cap bounds how
//!   many), as tiny_http exposes no socket timeouts.
//! - The evaluation timeout is checked between steps and after selections;
//!   one step that is slow on its own runs to its end.
//! - PromQL parse errors carry vigil-rules' wording, at the same line and
//!   column as Prometheus's in the cases tested (`monitor_api.rs`).

mod json;
pub mod params;

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use vigil_exposition::client::{
    Collector, CollectorWriter, Counter, Family, Gauge, Histogram, ProcessCollector, Registry,
};
use vigil_exposition::encode::Encoder;
use vigil_exposition::parse::{Mode, parse_families};
use vigil_exposition::{Format, MetricType};
use vigil_rules::{Engine, EngineOptions, Expr, ExprKind, ValueType};
use vigil_tsdb::db::Db;
use vigil_tsdb::index::{MatchOp, Matcher};

pub use super::http::Server;
use super::http::{self, Form, Reply, Request};
use params::{MAX_TIME_MS, MIN_TIME_MS, parse_bool, parse_duration, parse_time};

/// What the API needs from the rest of the monitor. The lead's composition
/// implements it; every method is called on a request thread, so it must
/// be quick and must not block on a scrape or a rule evaluation.
pub trait Backend: Send + Sync + 'static {
    /// The store: queries, series, labels, federation, admin and the
    /// `prometheus_tsdb_*` metrics read it.
    fn db(&self) -> &Db;

    /// The `data` of `/api/v1/targets`:
    /// `{"activeTargets":[…],"droppedTargets":[…]}`. `state` is
    /// `Some("active")` or `Some("dropped")` to leave the other list empty,
    /// `None` for both.
    fn targets(&self, state: Option<&str>) -> serde_json::Value;

    /// The `data` of `/api/v1/rules`: `{"groups":[…]}`. `kind` is
    /// `Some("alert")` or `Some("record")` to keep only rules of that kind
    /// (groups left empty by it are dropped, as Prometheus does), `None`
    /// for all.
    fn rules(&self, kind: Option<&str>) -> serde_json::Value;

    /// The `data` of `/api/v1/alerts`: `{"alerts":[…]}`.
    fn alerts(&self) -> serde_json::Value;

    /// The `data` of `/api/v1/metadata`: `{"<metric>":[{"type","help",
    /// "unit"}]}` from the targets' scrapes; only `metric` when given, at
    /// most `limit` metrics when given.
    fn metadata(&self, metric: Option<&str>, limit: Option<usize>) -> serde_json::Value;

    /// The loaded configuration as YAML (`/api/v1/status/config`).
    fn config_yaml(&self) -> String;

    /// Every flag and its value (`/api/v1/status/flags`), in the order to
    /// show them.
    fn flags(&self) -> Vec<(String, String)>;

    /// Reloads the configuration (`/-/reload`, with lifecycle enabled).
    /// `Err` says why the new configuration was refused; the old one keeps
    /// running.
    fn reload(&self) -> Result<(), String>;

    /// Whether the monitor is ready to serve (`/-/ready`: 503 until then).
    fn ready(&self) -> bool;

    /// Asks the process to stop (`/-/quit`, with lifecycle enabled). The
    /// API answers before the process goes.
    fn quit(&self);

    /// Appends the monitor's own metrics in text format 0.0.4 (scrape
    /// manager, rule evaluation, notifier, config reloads). They are parsed
    /// and re-encoded into `/metrics` in the format the scraper negotiated;
    /// lines that do not parse are left out.
    fn own_metrics(&self, out: &mut String);
}

/// How the API runs. `Default` gives Prometheus's defaults where it has
/// them.
#[derive(Clone)]
pub struct ApiOptions {
    /// `--web.listen-address`.
    pub listen: SocketAddr,
    /// `--web.enable-lifecycle`: `/-/reload` and `/-/quit` (403 without).
    pub enable_lifecycle: bool,
    /// `--web.enable-admin-api`: delete_series, clean_tombstones, snapshot.
    pub enable_admin_api: bool,
    /// `--web.enable-remote-write-receiver`: `POST /api/v1/write`.
    pub enable_remote_write_receiver: bool,
    /// `--query.max-samples`: the most samples one query may hold at once.
    pub max_samples: usize,
    /// `--query.timeout`: the longest a query may run (a request's
    /// `timeout` parameter can only shorten it), waiting for a slot
    /// included.
    pub query_timeout: Duration,
    /// `--query.max-concurrency`: queries evaluated at once; others wait.
    pub max_concurrency: usize,
    /// Largest request body read (form-encoded POSTs); larger ones are
    /// refused with `bad_data`.
    pub max_body_bytes: usize,
    /// Requests handled at once; more are answered 503 at once
    /// (`--web.max-connections`).
    pub max_connections: usize,
    /// `--query.lookback-delta`: how far back an instant selector (and
    /// `/federate`) looks for a sample.
    pub lookback_delta: Duration,
    /// Where admin snapshots go (`<storage.tsdb.path>/snapshots`).
    pub snapshot_dir: PathBuf,
    /// `global.external_labels`: added to `/federate` output (a series'
    /// own label of the same name wins).
    pub external_labels: Vec<(String, String)>,
    /// Where `/metrics` comes from: the API registers its own metrics
    /// (`prometheus_http_*`, `prometheus_engine_*`, `prometheus_tsdb_head_*`,
    /// `process_*`) in it and adds [`Backend::own_metrics`]. Give the
    /// monitor's registry to expose metrics registered elsewhere too; do not
    /// register a process collector in it.
    pub registry: Registry,
}

impl Default for ApiOptions {
    fn default() -> Self {
        ApiOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 9090)),
            enable_lifecycle: false,
            enable_admin_api: false,
            enable_remote_write_receiver: false,
            max_samples: 50_000_000,
            query_timeout: Duration::from_secs(120),
            max_concurrency: 20,
            max_body_bytes: 10 << 20,
            max_connections: 512,
            lookback_delta: Duration::from_secs(300),
            snapshot_dir: PathBuf::from("data/snapshots"),
            external_labels: Vec::new(),
            registry: Registry::new(),
        }
    }
}

/// Starts the HTTP server: binds `opts.listen` and serves the API on
/// request threads until [`Server::stop`].
pub fn serve(opts: ApiOptions, backend: Arc<dyn Backend>) -> std::io::Result<Server> {
    let api = Arc::new(Api::new(opts.clone(), backend)?);
    let handler: Arc<http::Handler> = Arc::new(move |req: &Request| api.handle(req));
    http::serve(
        http::HttpOptions {
            listen: opts.listen,
            max_body_bytes: opts.max_body_bytes,
            max_connections: opts.max_connections.max(1),
        },
        handler,
    )
}

/// Prometheus's error types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ErrorType {
    BadData,
    Execution,
    Timeout,
    Internal,
    Unavailable,
}

impl ErrorType {
    fn as_str(self) -> &'static str {
        match self {
            ErrorType::BadData => "bad_data",
            ErrorType::Execution => "execution",
            ErrorType::Timeout => "timeout",
            ErrorType::Internal => "internal",
            ErrorType::Unavailable => "unavailable",
        }
    }

    /// Prometheus's `respondError` codes (unavailable falls to its default,
    /// 500).
    fn status(self) -> u16 {
        match self {
            ErrorType::BadData => 400,
            ErrorType::Execution => 422,
            ErrorType::Timeout => 503,
            ErrorType::Internal | ErrorType::Unavailable => 500,
        }
    }
}

/// An API failure: its type and Prometheus's message.
#[derive(Debug, Clone, PartialEq)]
struct ApiError {
    kind: ErrorType,
    msg: String,
}

impl ApiError {
    fn new(kind: ErrorType, msg: impl Into<String>) -> ApiError {
        ApiError {
            kind,
            msg: msg.into(),
        }
    }

    fn bad(msg: impl Into<String>) -> ApiError {
        ApiError::new(ErrorType::BadData, msg)
    }

    /// `invalid parameter "name": why`.
    fn param(name: &str, why: impl std::fmt::Display) -> ApiError {
        ApiError::bad(format!("invalid parameter {name:?}: {why}"))
    }

    fn reply(&self) -> Reply {
        Reply::new(
            self.kind.status(),
            "application/json",
            json::error(self.kind.as_str(), &self.msg),
        )
    }
}

type ApiResult = Result<Reply, ApiError>;

fn ok_json(data: &str) -> Reply {
    Reply::new(200, "application/json", json::success(data, &[], &[]))
}

fn ok_value(data: &serde_json::Value) -> Reply {
    ok_json(&data.to_string())
}

/// Queries running at once, at most `max`; others wait.
struct Gate {
    active: Mutex<usize>,
    cv: Condvar,
    max: usize,
}

struct GateGuard<'g>(&'g Gate);

impl Gate {
    /// A slot, or `None` when none freed before `deadline`.
    fn enter(&self, deadline: Instant) -> Option<GateGuard<'_>> {
        let mut n = self.active.lock();
        while *n >= self.max {
            if self.cv.wait_until(&mut n, deadline).timed_out() && *n >= self.max {
                return None;
            }
        }
        *n += 1;
        Some(GateGuard(self))
    }
}

impl Drop for GateGuard<'_> {
    fn drop(&mut self) {
        *self.0.active.lock() -= 1;
        self.0.cv.notify_one();
    }
}

/// `prometheus_engine_queries` for one query: up now, down when dropped
/// (however the query ends).
struct Running<'g>(&'g Gauge<i64>);

impl<'g> Running<'g> {
    fn start(g: &'g Gauge<i64>) -> Running<'g> {
        g.inc();
        Running(g)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The API's own metrics.
struct Metrics {
    requests: Family<(u16, &'static str), Counter>,
    durations: Family<[&'static str; 1], Histogram>,
    queries: Gauge<i64>,
}

struct Api {
    opts: ApiOptions,
    web: super::web::WebOptions,
    backend: Arc<dyn Backend>,
    gate: Gate,
    metrics: Metrics,
    started_ms: i64,
}

/// `prometheus_tsdb_*` figures read from the store at each scrape.
struct TsdbCollector(Arc<dyn Backend>);

impl Collector for TsdbCollector {
    fn collect(&self, out: &mut CollectorWriter<'_, '_>) {
        let db = self.0.db();
        let head = db.head();
        out.family(
            "prometheus_tsdb_head_series",
            MetricType::Gauge,
            "Total number of series in the head block.",
        )
        .sample("", &[] as &[(&str, &str)], head.num_series() as f64);
        // Prometheus shows the extremes of int64 for an empty head.
        let (lo, hi) = head.time_range().unwrap_or((i64::MAX, i64::MIN));
        out.family(
            "prometheus_tsdb_head_min_time",
            MetricType::Gauge,
            "Minimum time bound of the head block.",
        )
        .sample("", &[] as &[(&str, &str)], lo as f64);
        out.family(
            "prometheus_tsdb_head_max_time",
            MetricType::Gauge,
            "Maximum timestamp of the head block.",
        )
        .sample("", &[] as &[(&str, &str)], hi as f64);
        out.family(
            "prometheus_tsdb_blocks_loaded",
            MetricType::Gauge,
            "Number of currently loaded data blocks",
        )
        .sample("", &[] as &[(&str, &str)], db.block_ranges().len() as f64);
        out.family(
            "prometheus_tsdb_storage_blocks_damaged",
            MetricType::Gauge,
            "Blocks on disk that did not open (left on disk, not served).",
        )
        .sample("", &[] as &[(&str, &str)], db.damaged_blocks().len() as f64);
    }
}

/// The backend's text exposition, re-encoded in the negotiated format.
struct BackendCollector(Arc<dyn Backend>);

impl Collector for BackendCollector {
    fn collect(&self, out: &mut CollectorWriter<'_, '_>) {
        let mut text = String::new();
        self.0.own_metrics(&mut text);
        out.families(&counters_named_for_openmetrics(parse_own_metrics(&text)));
    }
}

/// The families of a text exposition. One bad line would lose them all,
/// so on an error each `# HELP`-led family is parsed on its own and the
/// ones that parse are kept.
fn parse_own_metrics(text: &str) -> Vec<vigil_exposition::MetricFamily> {
    if let Ok(f) = parse_families(text.as_bytes(), Format::Text, Mode::Scrape) {
        return f;
    }
    let mut starts: Vec<usize> = text.match_indices("# HELP ").map(|(i, _)| i).collect();
    if starts.first() != Some(&0) {
        starts.insert(0, 0);
    }
    starts.push(text.len());
    starts
        .windows(2)
        .filter_map(|w| {
            parse_families(&text.as_bytes()[w[0]..w[1]], Format::Text, Mode::Scrape).ok()
        })
        .flatten()
        .collect()
}

/// Text 0.0.4 names a counter family after its samples (`x_total`);
/// OpenMetrics names it `x` and its samples `x_total`. The encoder adds
/// `_total` back for text, so counter families lose the suffix here. A
/// counter whose samples lack `_total` cannot be written as an OpenMetrics
/// counter: it goes out untyped.
fn counters_named_for_openmetrics(
    mut fams: Vec<vigil_exposition::MetricFamily>,
) -> Vec<vigil_exposition::MetricFamily> {
    for f in &mut fams {
        if f.metric_type != MetricType::Counter {
            continue;
        }
        match f.name.strip_suffix("_total") {
            Some(base)
                if f.samples
                    .iter()
                    .all(|s| s.name == f.name || s.name == format!("{base}_created")) =>
            {
                f.name = base.to_string();
            }
            _ => f.metric_type = MetricType::Unknown,
        }
    }
    fams
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The handler label of a path, for `prometheus_http_*` (Prometheus's route
/// names), or `None` for paths the API does not serve.
fn handler_label(path: &str) -> Option<&'static str> {
    const ROUTES: &[&str] = &[
        "/api/v1/query",
        "/api/v1/query_range",
        "/api/v1/query_exemplars",
        "/api/v1/series",
        "/api/v1/labels",
        "/api/v1/targets",
        "/api/v1/rules",
        "/api/v1/alerts",
        "/api/v1/metadata",
        "/api/v1/status/buildinfo",
        "/api/v1/status/config",
        "/api/v1/status/flags",
        "/api/v1/status/tsdb",
        "/api/v1/status/runtimeinfo",
        "/api/v1/admin/tsdb/delete_series",
        "/api/v1/admin/tsdb/clean_tombstones",
        "/api/v1/admin/tsdb/snapshot",
        "/federate",
        "/metrics",
        "/-/healthy",
        "/-/ready",
        "/-/reload",
        "/-/quit",
    ];
    if let Some(r) = ROUTES.iter().find(|r| **r == path) {
        return Some(r);
    }
    let rest = path.strip_prefix("/api/v1/label/")?;
    let name = rest.strip_suffix("/values")?;
    (!name.is_empty() && !name.contains('/')).then_some("/api/v1/label/:name/values")
}

fn method_not_allowed() -> Reply {
    Reply::text(405, "Method Not Allowed\n")
}

impl Api {
    fn new(opts: ApiOptions, backend: Arc<dyn Backend>) -> std::io::Result<Api> {
        let reg = &opts.registry;
        let requests =
            Family::<(u16, &'static str), Counter>::with_label_names(&["code", "handler"]);
        let durations = Family::<[&'static str; 1], Histogram>::builder()
            .label_names(&["handler"])
            .constructor(|| Histogram::new([0.1, 0.2, 0.4, 1.0, 3.0, 8.0, 20.0, 60.0, 120.0]))
            .build();
        let queries = Gauge::<i64>::new();
        let max_queries = Gauge::<i64>::new();
        max_queries.set(opts.max_concurrency as i64);
        let register = || -> Result<(), vigil_exposition::Error> {
            reg.register(
                "prometheus_http_requests",
                "Counter of HTTP requests.",
                requests.clone(),
            )?;
            reg.register(
                "prometheus_http_request_duration_seconds",
                "Histogram of latencies for HTTP requests.",
                durations.clone(),
            )?;
            reg.register(
                "prometheus_engine_queries",
                "The current number of queries being executed or waiting.",
                queries.clone(),
            )?;
            reg.register(
                "prometheus_engine_queries_concurrent_max",
                "The max number of concurrent queries.",
                max_queries.clone(),
            )?;
            Ok(())
        };
        register().map_err(|e| std::io::Error::other(format!("registering API metrics: {e}")))?;
        reg.register_collector(TsdbCollector(Arc::clone(&backend)));
        reg.register_collector(BackendCollector(Arc::clone(&backend)));
        reg.register_collector(ProcessCollector::new());
        Ok(Api {
            web: super::web::WebOptions {
                lookback_delta: opts.lookback_delta,
                max_samples: opts.max_samples,
                query_timeout: opts.query_timeout,
            },
            gate: Gate {
                active: Mutex::new(0),
                cv: Condvar::new(),
                max: opts.max_concurrency.max(1),
            },
            opts,
            backend,
            started_ms: now_ms(),
            metrics: Metrics {
                requests,
                durations,
                queries,
            },
        })
    }

    fn handle(&self, req: &Request) -> Reply {
        let start = Instant::now();
        let mut reply = self.route(req);
        // Prometheus's CORS headers (its default `--web.cors.origin`, any
        // origin) on the API's answers to a request that sends `Origin`.
        if req.path.starts_with("/api/v1/") && req.header("origin").is_some() {
            reply.headers.extend([
                (
                    "Access-Control-Allow-Headers",
                    "Accept, Authorization, Content-Type, Origin".to_string(),
                ),
                ("Access-Control-Allow-Methods", "GET, POST, OPTIONS".into()),
                ("Access-Control-Allow-Origin", "*".into()),
                ("Access-Control-Expose-Headers", "Date".into()),
                ("Vary", "Origin".into()),
            ]);
        }
        if let Some(h) = handler_label(&req.path) {
            self.metrics.requests.with(&(reply.status, h), |c| c.inc());
            self.metrics
                .durations
                .with(&[h], |d| d.observe(start.elapsed().as_secs_f64()));
        }
        reply
    }

    fn route(&self, req: &Request) -> Reply {
        let m = req.method.as_str();
        let get = matches!(m, "GET" | "HEAD");
        let get_post = get || m == "POST";
        let post_put = matches!(m, "POST" | "PUT");
        if m == "OPTIONS" {
            return Reply::empty(204);
        }
        // The web pages (graph, targets, alerts, …) and their assets.
        if let Some(page) = super::web::handle(req, &*self.backend, &self.web) {
            return page;
        }
        let path = req.path.as_str();
        let result: ApiResult = match path {
            "/-/healthy" if get => Ok(Reply::text(200, "Prometheus Server is Healthy.\n")),
            "/-/ready" if get => Ok(if self.backend.ready() {
                Reply::text(200, "Prometheus Server is Ready.\n")
            } else {
                Reply::text(503, "Service Unavailable")
            }),
            "/-/reload" | "/-/quit" if !post_put => {
                Ok(Reply::text(405, "Only POST or PUT requests allowed"))
            }
            "/-/reload" | "/-/quit" if !self.opts.enable_lifecycle => {
                Ok(Reply::text(403, "Lifecycle API is not enabled."))
            }
            "/-/reload" => Ok(match self.backend.reload() {
                Ok(()) => Reply::empty(200),
                Err(e) => Reply::text(500, format!("failed to reload config: {e}\n")),
            }),
            "/-/quit" => {
                self.backend.quit();
                Ok(Reply::text(200, "Requesting termination... Goodbye!"))
            }
            "/metrics" if get => Ok(self.metrics_page(req)),
            "/federate" if get => Ok(self.federate(req)),
            "/api/v1/query" if get_post => self.form(req).and_then(|f| self.query(&f)),
            "/api/v1/query_range" if get_post => self.form(req).and_then(|f| self.query_range(&f)),
            "/api/v1/query_exemplars" if get_post => {
                self.form(req).and_then(|f| self.query_exemplars(&f))
            }
            "/api/v1/series" if get_post => self.form(req).and_then(|f| self.series(&f)),
            "/api/v1/labels" if get_post => self.form(req).and_then(|f| self.labels(&f)),
            "/api/v1/targets" if get => self.form(req).map(|f| self.targets(&f)),
            "/api/v1/rules" if get => self.form(req).and_then(|f| self.rules(&f)),
            "/api/v1/alerts" if get => Ok(ok_value(&self.backend.alerts())),
            "/api/v1/metadata" if get => self.form(req).and_then(|f| self.metadata(&f)),
            "/api/v1/status/buildinfo" if get => Ok(self.buildinfo()),
            "/api/v1/status/runtimeinfo" if get => Ok(self.runtimeinfo()),
            "/api/v1/status/config" if get => Ok(ok_value(
                &serde_json::json!({ "yaml": self.backend.config_yaml() }),
            )),
            "/api/v1/status/flags" if get => {
                let map: serde_json::Map<String, serde_json::Value> = self
                    .backend
                    .flags()
                    .into_iter()
                    .map(|(k, v)| (k, serde_json::Value::String(v)))
                    .collect();
                Ok(ok_value(&serde_json::Value::Object(map)))
            }
            "/api/v1/status/tsdb" if get => self.form(req).and_then(|f| self.tsdb_status(&f)),
            "/api/v1/write" => Ok(self.remote_write(req)),
            "/api/v1/admin/tsdb/delete_series"
            | "/api/v1/admin/tsdb/clean_tombstones"
            | "/api/v1/admin/tsdb/snapshot"
                if post_put =>
            {
                if !self.opts.enable_admin_api {
                    Err(ApiError::new(ErrorType::Unavailable, "admin APIs disabled"))
                } else {
                    self.form(req).and_then(|f| self.admin(path, &f))
                }
            }
            _ => {
                if let Some(name) = path
                    .strip_prefix("/api/v1/label/")
                    .and_then(|r| r.strip_suffix("/values"))
                    .filter(|n| !n.contains('/'))
                {
                    if get {
                        self.form(req).and_then(|f| {
                            let name = unescape_label_name(&http::percent_decode(name, false));
                            self.label_values(&name, &f)
                        })
                    } else {
                        Ok(method_not_allowed())
                    }
                } else if handler_label(path).is_some() {
                    Ok(method_not_allowed())
                } else {
                    Ok(Reply::text(404, "404 page not found\n"))
                }
            }
        };
        result.unwrap_or_else(|e| e.reply())
    }

    fn form(&self, req: &Request) -> Result<Form, ApiError> {
        req.form().map_err(|_| {
            ApiError::bad(format!(
                "error parsing form values: request body larger than {} bytes",
                self.opts.max_body_bytes
            ))
        })
    }

    /// The effective timeout: the flag's, shortened by a `timeout`
    /// parameter.
    fn timeout(&self, f: &Form) -> Result<i64, ApiError> {
        let max = self.opts.query_timeout.as_millis() as i64;
        match f.get("timeout").filter(|s| !s.is_empty()) {
            Some(s) => Ok(parse_duration(s)
                .map_err(|e| ApiError::param("timeout", e))?
                .min(max)),
            None => Ok(max),
        }
    }

    fn parse_query(&self, f: &Form) -> Result<(String, Expr), ApiError> {
        let q = f.get("query").unwrap_or("").to_string();
        let expr = vigil_rules::parse(&q).map_err(|e| ApiError::param("query", e))?;
        Ok((q, expr))
    }

    /// Runs `eval` with a query slot and an engine whose deadline is what is
    /// left of `timeout_ms` after waiting for the slot.
    fn run_query(
        &self,
        f: &Form,
        eval: impl FnOnce(&Engine) -> Result<vigil_rules::QueryResult, vigil_rules::Error>,
    ) -> ApiResult {
        let timeout_ms = self.timeout(f)?;
        let limit = self.limit(f)?;
        let lookback_ms = match f.get("lookback_delta").filter(|s| !s.is_empty()) {
            Some(s) => parse_duration(s).map_err(|e| ApiError::param("lookback_delta", e))?,
            None => 0,
        };
        let lookback_ms = if lookback_ms > 0 {
            lookback_ms
        } else {
            self.opts.lookback_delta.as_millis() as i64
        };
        if timeout_ms <= 0 {
            return Err(ApiError::new(
                ErrorType::Timeout,
                "query timed out in query execution",
            ));
        }
        let started = Instant::now();
        let deadline = started + Duration::from_millis(timeout_ms as u64);
        let _running = Running::start(&self.metrics.queries);
        (|| {
            let _slot = self.gate.enter(deadline).ok_or_else(|| {
                ApiError::new(ErrorType::Timeout, "query timed out in query queue")
            })?;
            let left = deadline.saturating_duration_since(Instant::now());
            let engine = Engine::with_options(EngineOptions {
                lookback_delta_ms: lookback_ms,
                max_samples: self.opts.max_samples as u64,
                timeout: Some(left),
                ..EngineOptions::default()
            });
            let mut r = eval(&engine).map_err(exec_error)?;
            // 3.x's `limit`: at most that many series of a vector or matrix.
            let cut = match (&mut r.value, limit) {
                (vigil_rules::Value::Vector(v), Some(l)) if v.len() > l => {
                    v.truncate(l);
                    true
                }
                (vigil_rules::Value::Matrix(m), Some(l)) if m.len() > l => {
                    m.truncate(l);
                    true
                }
                _ => false,
            };
            if cut {
                r.warnings.push("results truncated due to limit".into());
            }
            let mut data = String::new();
            json::query_data(&mut data, &r.value);
            Ok(Reply::new(
                200,
                "application/json",
                json::success(&data, &r.warnings, &r.infos),
            ))
        })()
    }

    fn query(&self, f: &Form) -> ApiResult {
        let (text, expr) = self.parse_query(f)?;
        let t = match f.get("time").filter(|s| !s.is_empty()) {
            Some(s) => parse_time(s).map_err(|e| {
                ApiError::param("time", format!("Invalid time value for 'time': {e}"))
            })?,
            None => now_ms(),
        };
        let db = self.backend.db();
        self.run_query(f, |e| e.instant_query_expr(db, &text, &expr, t))
    }

    fn query_range(&self, f: &Form) -> ApiResult {
        let (text, expr) = self.parse_query(f)?;
        let start =
            parse_time(f.get("start").unwrap_or("")).map_err(|e| ApiError::param("start", e))?;
        let end = parse_time(f.get("end").unwrap_or("")).map_err(|e| ApiError::param("end", e))?;
        if end < start {
            return Err(ApiError::param(
                "end",
                "end timestamp must not be before start time",
            ));
        }
        let step =
            parse_duration(f.get("step").unwrap_or("")).map_err(|e| ApiError::param("step", e))?;
        if step <= 0 {
            return Err(ApiError::param(
                "step",
                "zero or negative query resolution step widths are not accepted. Try a positive integer",
            ));
        }
        // The engine works in i64 milliseconds: a range wider than that
        // (both ends near Prometheus's min and max times) cannot run.
        let Some(width) = end.checked_sub(start) else {
            return Err(ApiError::param(
                "end",
                "the range from start to end does not fit in 64-bit milliseconds",
            ));
        };
        // Prometheus's guard against huge answers (11,000 points).
        if width / step > 11_000 {
            return Err(ApiError::bad(
                "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
            ));
        }
        let ty = expr.value_type();
        if ty != ValueType::Scalar && ty != ValueType::Vector {
            return Err(ApiError::bad(format!(
                "invalid expression type \"{ty}\" for range query, must be Scalar or instant Vector"
            )));
        }
        let db = self.backend.db();
        self.run_query(f, |e| {
            e.range_query_expr(db, &text, &expr, start, end, step)
        })
    }

    /// The store keeps no exemplars, so the answer is always an empty list;
    /// the parameters are checked as Prometheus checks them.
    fn query_exemplars(&self, f: &Form) -> ApiResult {
        self.parse_query(f)?;
        let (start, end) = self.time_range(f)?;
        if end < start {
            return Err(ApiError::param(
                "end",
                "end timestamp must not be before start time",
            ));
        }
        Ok(ok_json("[]"))
    }

    /// `start` and `end` (Prometheus's min and max times when absent).
    fn time_range(&self, f: &Form) -> Result<(i64, i64), ApiError> {
        let get = |name: &str, default: i64| match f.get(name).filter(|s| !s.is_empty()) {
            Some(s) => parse_time(s).map_err(|e| {
                ApiError::param(name, format!("Invalid time value for '{name}': {e}"))
            }),
            None => Ok(default),
        };
        Ok((get("start", MIN_TIME_MS)?, get("end", MAX_TIME_MS)?))
    }

    /// The `match[]` selectors as store matchers.
    fn matcher_sets(&self, f: &Form) -> Result<Vec<Vec<Matcher>>, ApiError> {
        f.all("match[]")
            .into_iter()
            .map(|s| selector_matchers(s).map_err(|e| ApiError::param("match[]", e)))
            .collect()
    }

    fn limit(&self, f: &Form) -> Result<Option<usize>, ApiError> {
        match f.get("limit").filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(s) => match s.parse::<i64>() {
                Ok(n) if n > 0 => Ok(Some(n as usize)),
                Ok(_) => Ok(None),
                Err(_) => Err(ApiError::param(
                    "limit",
                    format!("cannot parse {s:?} to a valid limit"),
                )),
            },
        }
    }

    fn series(&self, f: &Form) -> ApiResult {
        let sets = self.matcher_sets(f)?;
        if sets.is_empty() {
            return Err(ApiError::bad("no match[] parameter provided"));
        }
        let (start, end) = self.time_range(f)?;
        let limit = self.limit(f)?;
        let db = self.backend.db();
        let mut all = std::collections::BTreeSet::new();
        for ms in &sets {
            all.extend(series_in_range(db, ms, start, end)?);
        }
        let mut out = String::from("[");
        let n = limit.unwrap_or(usize::MAX).min(all.len());
        for (i, l) in all.iter().take(n).enumerate() {
            if i > 0 {
                out.push(',');
            }
            json::labels(&mut out, l.iter());
        }
        out.push(']');
        Ok(truncated(&out, limit.is_some_and(|l| all.len() > l)))
    }

    /// Label names or values over `match[]` (all series without), within
    /// `start`/`end` when given: the index answers without a time range;
    /// with one, the series with samples in it do.
    fn label_query(
        &self,
        f: &Form,
        of_series: impl Fn(&vigil_tsdb::labels::Labels, &mut HashSet<String>),
        from_index: impl Fn(&Db, &[Matcher]) -> Vec<String>,
    ) -> ApiResult {
        let mut sets = self.matcher_sets(f)?;
        let timed = f.get("start").is_some_and(|s| !s.is_empty())
            || f.get("end").is_some_and(|s| !s.is_empty());
        let (start, end) = self.time_range(f)?;
        let limit = self.limit(f)?;
        let db = self.backend.db();
        if sets.is_empty() {
            sets.push(Vec::new());
        }
        let mut found: HashSet<String> = HashSet::new();
        for ms in &sets {
            if timed {
                for l in series_in_range(db, ms, start, end)? {
                    of_series(&l, &mut found);
                }
            } else {
                found.extend(from_index(db, ms));
            }
        }
        let mut list: Vec<String> = found.into_iter().collect();
        list.sort();
        let cut = limit.is_some_and(|l| list.len() > l);
        if let Some(l) = limit {
            list.truncate(l);
        }
        Ok(truncated(&json::strings(&list), cut))
    }

    fn labels(&self, f: &Form) -> ApiResult {
        self.label_query(
            f,
            |l, out| out.extend(l.iter().map(|(n, _)| n.to_string())),
            |db, ms| db.label_names(ms),
        )
    }

    fn label_values(&self, name: &str, f: &Form) -> ApiResult {
        if name.is_empty() {
            return Err(ApiError::bad(format!("invalid label name: {name:?}")));
        }
        self.label_query(
            f,
            |l, out| out.extend(l.get(name).map(str::to_string)),
            |db, ms| db.label_values(name, ms),
        )
    }

    fn targets(&self, f: &Form) -> Reply {
        let state = f.get("state").unwrap_or("").trim().to_ascii_lowercase();
        match state.as_str() {
            "" | "any" => ok_value(&self.backend.targets(None)),
            "active" | "dropped" => ok_value(&self.backend.targets(Some(&state))),
            // Prometheus answers an unknown state with neither list.
            _ => ok_json(r#"{"activeTargets":[],"droppedTargets":[]}"#),
        }
    }

    fn rules(&self, f: &Form) -> ApiResult {
        let kind = f.get("type").unwrap_or("").to_ascii_lowercase();
        match kind.as_str() {
            "" => Ok(ok_value(&self.backend.rules(None))),
            "alert" | "record" => Ok(ok_value(&self.backend.rules(Some(&kind)))),
            _ => Err(ApiError::param(
                "type",
                format!("not supported value {:?}", f.get("type").unwrap_or("")),
            )),
        }
    }

    fn metadata(&self, f: &Form) -> ApiResult {
        let limit = match f.get("limit").filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => match s.parse::<i64>() {
                Ok(n) if n >= 0 => Some(n as usize),
                Ok(_) => None,
                Err(_) => return Err(ApiError::bad("limit must be a number")),
            },
        };
        let metric = f.get("metric").filter(|s| !s.is_empty());
        Ok(ok_value(&self.backend.metadata(metric, limit)))
    }

    /// Version is reported as the Prometheus release whose API this one
    /// follows, with Vigil's own version as build metadata: clients such as
    /// Grafana choose features by the Prometheus version they read here.
    fn buildinfo(&self) -> Reply {
        let v = serde_json::json!({
            "version": format!("3.0.0+vigil.{}", env!("CARGO_PKG_VERSION")),
            "revision": "",
            "branch": "",
            "buildUser": "",
            "buildDate": "",
            "goVersion": "",
        });
        ok_value(&v)
    }

    /// Prometheus's runtime information, from what this process has: the
    /// reload state from the backend's own metrics, the retention from its
    /// flags, OS threads for goroutines.
    fn runtimeinfo(&self) -> Reply {
        let mut text = String::new();
        self.backend.own_metrics(&mut text);
        let fams = parse_own_metrics(&text);
        let value = |name: &str| {
            fams.iter()
                .flat_map(|f| &f.samples)
                .find(|s| s.name == name)
                .map(|s| s.value)
        };
        let flags = self.backend.flags();
        let flag = |name: &str| {
            flags
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .filter(|v| !v.is_empty() && v != "0s" && v != "0B" && v != "0")
        };
        let retention = match (
            flag("storage.tsdb.retention.time"),
            flag("storage.tsdb.retention.size"),
        ) {
            (Some(t), Some(b)) => format!("{t} or {b}"),
            (Some(t), None) => t,
            (None, Some(b)) => b,
            (None, None) => "for ever".into(),
        };
        let threads = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|st| {
                st.lines()
                    .find_map(|l| l.strip_prefix("Threads:"))
                    .and_then(|n| n.trim().parse::<u64>().ok())
            })
            .unwrap_or(0);
        let mut data = serde_json::json!({
            "startTime": rfc3339(self.started_ms),
            "CWD": std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default(),
            "corruptionCount": self.backend.db().damaged_blocks().len(),
            "goroutineCount": threads,
            "GOMAXPROCS": std::thread::available_parallelism().map_or(1, |n| n.get()),
            "GOGC": "",
            "GODEBUG": "",
            "storageRetention": retention,
        });
        if let Some(ok) = value("prometheus_config_last_reload_successful") {
            data["reloadConfigSuccess"] = serde_json::Value::Bool(ok == 1.0);
        }
        if let Some(t) = value("prometheus_config_last_reload_success_timestamp_seconds") {
            data["lastConfigTime"] = rfc3339((t * 1000.0) as i64 / 1000 * 1000).into();
        }
        ok_value(&data)
    }

    /// Head statistics as Prometheus's `/api/v1/status/tsdb`: counts, and
    /// the top `limit` (default ten) metric names, label names and label
    /// pairs by series.
    fn tsdb_status(&self, f: &Form) -> ApiResult {
        // 3.x's `limit`: how many entries each top list keeps (10).
        let limit = match f.get("limit").filter(|s| !s.is_empty()) {
            None => 10,
            Some(s) => match s.parse::<usize>() {
                Ok(n) if n > 0 => n,
                _ => return Err(ApiError::bad("limit must be a positive number")),
            },
        };
        // From the index's postings: no series is decoded or copied.
        let stats = self.backend.db().head().stats(limit);
        let top = |v: &[(String, u64)]| {
            v.iter()
                .map(|(name, value)| serde_json::json!({ "name": name, "value": value }))
                .collect::<Vec<_>>()
        };
        let (lo, hi) = stats.time_range.unwrap_or((i64::MAX, i64::MIN));
        let data = serde_json::json!({
            "headStats": {
                "numSeries": stats.index.series,
                "chunkCount": stats.chunks,
                "numLabelPairs": stats.index.label_pairs,
                "minTime": lo,
                "maxTime": hi,
            },
            "seriesCountByMetricName": top(&stats.index.series_by_metric_name),
            "labelValueCountByLabelName": top(&stats.index.values_by_label_name),
            "memoryInBytesByLabelName": top(&stats.index.value_bytes_by_label_name),
            "seriesCountByLabelValuePair": top(&stats.index.series_by_label_pair),
        });
        Ok(ok_value(&data))
    }

    fn admin(&self, path: &str, f: &Form) -> ApiResult {
        let db = self.backend.db();
        match path {
            "/api/v1/admin/tsdb/delete_series" => {
                let sets = self.matcher_sets(f)?;
                if sets.is_empty() {
                    return Err(ApiError::bad("no match[] parameter provided"));
                }
                let (start, end) = self.time_range(f)?;
                for ms in &sets {
                    db.delete(ms, start, end).map_err(internal)?;
                }
                Ok(Reply::empty(204))
            }
            "/api/v1/admin/tsdb/snapshot" => {
                let skip_head = match f.get("skip_head").filter(|s| !s.is_empty()) {
                    None => false,
                    Some(s) => parse_bool(s).ok_or_else(|| {
                        ApiError::bad(format!(
                            "unable to parse boolean 'skip_head' argument: strconv.ParseBool: parsing {s:?}: invalid syntax"
                        ))
                    })?,
                };
                let name = snapshot(db, &self.opts.snapshot_dir, skip_head).map_err(|e| {
                    ApiError::new(ErrorType::Internal, format!("create snapshot: {e}"))
                })?;
                Ok(ok_value(&serde_json::json!({ "name": name })))
            }
            _ => {
                db.clean_tombstones().map_err(|e| {
                    ApiError::new(ErrorType::Internal, format!("clean tombstones: {e}"))
                })?;
                Ok(Reply::empty(204))
            }
        }
    }

    /// `POST /api/v1/write`, behind `--web.enable-remote-write-receiver`
    /// (404 without it, as Prometheus).
    fn remote_write(&self, req: &Request) -> Reply {
        if !self.opts.enable_remote_write_receiver {
            return Reply::text(404, "404 page not found\n");
        }
        if req.method != "POST" {
            return method_not_allowed();
        }
        let Some(body) = &req.body else {
            return Reply::text(413, "request body too large\n");
        };
        let r = super::remote::receive(self.backend.db(), body, req.header("content-encoding"));
        if r.status == 204 {
            Reply::empty(204)
        } else {
            Reply::text(r.status, format!("{}\n", r.message))
        }
    }

    fn metrics_page(&self, req: &Request) -> Reply {
        let format = Format::negotiate(req.header("accept"));
        let mut out = Vec::new();
        self.opts.registry.encode(format, &mut out);
        Reply::new(200, format.content_type(), out)
    }

    /// `/federate`: the newest sample (within the lookback) of every series
    /// some `match[]` selects, in text format 0.0.4, grouped by metric name
    /// as untyped families, with the external labels added.
    fn federate(&self, req: &Request) -> Reply {
        let f = match req.form() {
            Ok(f) => f,
            Err(e) => return Reply::text(400, format!("{e}\n")),
        };
        let sets = match f
            .all("match[]")
            .into_iter()
            .map(selector_matchers)
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(s) => s,
            Err(e) => return Reply::text(400, format!("{e}\n")),
        };
        let now = now_ms();
        let mint = now - self.opts.lookback_delta.as_millis() as i64;
        let db = self.backend.db();
        let mut latest: BTreeMap<FederatedSeries, (i64, f64)> = BTreeMap::new();
        for ms in &sets {
            let got = match db.select(ms, mint, now) {
                Ok(g) => g,
                Err(e) => return Reply::text(500, format!("federation failed: {e}\n")),
            };
            for (labels, samples) in got {
                let Some(&(t, v)) = samples.last() else {
                    continue;
                };
                if v.to_bits() == vigil_exposition::STALE_NAN_BITS {
                    continue;
                }
                let Some(name) = labels.metric_name() else {
                    continue;
                };
                let mut pairs: Vec<(String, String)> = labels
                    .iter()
                    .filter(|(n, _)| *n != "__name__")
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect();
                for (n, v) in &self.opts.external_labels {
                    if !v.is_empty() && labels.get(n).is_none() {
                        pairs.push((n.clone(), v.clone()));
                    }
                }
                pairs.sort();
                latest.insert((name.to_string(), pairs), (t, v));
            }
        }
        let mut out = Vec::new();
        let mut enc = Encoder::new(&mut out, Format::Text);
        let mut family: Option<&str> = None;
        for ((name, pairs), (t, v)) in &latest {
            if family != Some(name.as_str()) {
                enc.family(name, MetricType::Unknown, None, None);
                family = Some(name);
            }
            enc.sample(name, "")
                .labels(pairs)
                .value(*v)
                .timestamp_ms(*t)
                .finish();
        }
        enc.finish();
        Reply::new(200, Format::Text.content_type(), out)
    }
}

/// `2026-11-22T12:38:28.749Z` (milliseconds shown when not zero).
fn rfc3339(ms: i64) -> String {
    let (y, mo, d, h, mi, s) = params::civil(ms);
    let frac = ms.rem_euclid(1000);
    if frac == 0 {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
    } else {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{frac:03}Z")
    }
}

/// A federated series: its metric name and its other labels, sorted.
type FederatedSeries = (String, Vec<(String, String)>);

/// A 200 answer, with Prometheus's warning when a limit cut the list.
fn truncated(data: &str, cut: bool) -> Reply {
    let warnings = if cut {
        vec!["results truncated due to limit".to_string()]
    } else {
        Vec::new()
    };
    Reply::new(200, "application/json", json::success(data, &warnings, &[]))
}

/// The label sets of the series `ms` selects with data in `[start, end]`:
/// the head's by chunk overlap, without decoding (as Prometheus judges it),
/// the blocks' from their samples in the part of the range they cover (the
/// store has no labels-only select over blocks).
fn series_in_range(
    db: &Db,
    ms: &[Matcher],
    start: i64,
    end: i64,
) -> Result<Vec<vigil_tsdb::labels::Labels>, ApiError> {
    let mut out: Vec<vigil_tsdb::labels::Labels> = db
        .head()
        .querier(start, end)
        .select(ms)
        .into_iter()
        .map(|s| s.labels)
        .collect();
    let blocks: Vec<(i64, i64)> = db
        .block_ranges()
        .into_iter()
        .filter(|&(lo, hi)| hi > start && lo <= end)
        .collect();
    if let (Some(lo), Some(hi)) = (
        blocks.iter().map(|r| r.0).min(),
        blocks.iter().map(|r| r.1).max(),
    ) {
        let (a, b) = (start.max(lo), end.min(hi - 1));
        if a <= b {
            out.extend(
                db.select(ms, a, b)
                    .map_err(internal)?
                    .into_iter()
                    .map(|(l, _)| l),
            );
        }
    }
    Ok(out)
}

fn internal(e: vigil_tsdb::Error) -> ApiError {
    ApiError::new(ErrorType::Internal, e.to_string())
}

/// Prometheus's classification of evaluation failures.
fn exec_error(e: vigil_rules::Error) -> ApiError {
    match e {
        vigil_rules::Error::Eval(m) if m.starts_with("query timed out") => {
            ApiError::new(ErrorType::Timeout, m)
        }
        vigil_rules::Error::Storage(_) => ApiError::new(ErrorType::Internal, e.to_string()),
        vigil_rules::Error::Parse { .. } => ApiError::bad(e.to_string()),
        other => ApiError::new(ErrorType::Execution, other.to_string()),
    }
}

/// Prometheus 3's escaping of label names in URL paths: a name that starts
/// with `U__` has `__` for `_` and `_<hex>_` for any character; anything
/// that does not decode is taken as written.
fn unescape_label_name(name: &str) -> String {
    let Some(rest) = name.strip_prefix("U__") else {
        return name.to_string();
    };
    let mut out = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        if c != '_' {
            out.push(c);
            continue;
        }
        let mut hex = String::new();
        loop {
            match chars.next() {
                Some('_') if hex.is_empty() => {
                    out.push('_');
                    break;
                }
                Some('_') => {
                    match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                        Some(ch) => out.push(ch),
                        None => return name.to_string(),
                    }
                    break;
                }
                Some(h) if h.is_ascii_hexdigit() && hex.len() < 6 => hex.push(h),
                _ => return name.to_string(),
            }
        }
    }
    out
}

/// A series selector (`up{job="x"}`, `{__name__=~"a.*"}`) as store
/// matchers; the parser's error (with line and column) otherwise.
fn selector_matchers(s: &str) -> Result<Vec<Matcher>, String> {
    let expr = vigil_rules::parse(s).map_err(|e| e.to_string())?;
    let ExprKind::VectorSelector(vs) = &expr.kind else {
        return Err(format!(
            "1:1: parse error: expected a series selector, got {}",
            expr.value_type()
        ));
    };
    if vs.offset != 0 || vs.at.is_some() {
        return Err("1:1: parse error: a series selector takes no offset or @ modifier".into());
    }
    vs.matchers
        .iter()
        .map(|m| {
            let op = match m.op {
                vigil_rules::MatchOp::Equal => MatchOp::Equal,
                vigil_rules::MatchOp::NotEqual => MatchOp::NotEqual,
                vigil_rules::MatchOp::Regex => MatchOp::Regex,
                vigil_rules::MatchOp::NotRegex => MatchOp::NotRegex,
            };
            Matcher::new(m.name.clone(), op, m.value.clone()).map_err(|e| e.to_string())
        })
        .collect()
}

/// Writes the store's blocks and (unless `skip_head`) its head as blocks
/// under `<dir>/<UTC time>-<random hex>/blocks/`, the layout a store opens,
/// and returns the snapshot's name.
fn snapshot(db: &Db, dir: &std::path::Path, skip_head: bool) -> Result<String, String> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let now = now_ms();
    let (y, mo, d, h, mi, s) = params::civil(now);
    // Random enough to keep two snapshots in one second apart: a hash seeded
    // by the process's random state.
    let rand = {
        use std::hash::{BuildHasher, Hasher};
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_i64(now);
        hasher.write_u64(SEQ.fetch_add(1, Ordering::Relaxed));
        hasher.finish()
    };
    let name = format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z-{rand:016x}");
    let blocks = dir.join(&name).join("blocks");
    std::fs::create_dir_all(&blocks).map_err(|e| format!("create {}: {e}", blocks.display()))?;
    let mut last_end = None;
    for (lo, hi) in db.block_ranges() {
        let series = db.select(&[], lo, hi - 1).map_err(|e| e.to_string())?;
        if !series.is_empty() {
            vigil_tsdb::block::write_block(&blocks, lo, hi, series).map_err(|e| e.to_string())?;
        }
        last_end = Some(last_end.map_or(hi, |e: i64| e.max(hi)));
    }
    if !skip_head && let Some((lo, hi)) = db.head().time_range() {
        let from = last_end.map_or(lo, |e| lo.max(e));
        if from <= hi {
            let series = db.select(&[], from, hi).map_err(|e| e.to_string())?;
            if !series.is_empty() {
                vigil_tsdb::block::write_block(&blocks, from, hi + 1, series)
                    .map_err(|e| e.to_string())?;
            }
        }
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handler_labels_are_route_names() {
        assert_eq!(handler_label("/api/v1/query"), Some("/api/v1/query"));
        assert_eq!(
            handler_label("/api/v1/label/job/values"),
            Some("/api/v1/label/:name/values")
        );
        assert_eq!(handler_label("/api/v1/label//values"), None);
        assert_eq!(handler_label("/nope"), None);
    }

    #[test]
    fn rfc3339_times() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1500), "1970-01-01T00:00:01.500Z");
        assert_eq!(rfc3339(1_795_348_800_250), "2026-11-22T12:00:00.250Z");
    }

    #[test]
    fn escaped_label_names() {
        assert_eq!(unescape_label_name("job"), "job");
        assert_eq!(unescape_label_name("U__http_2e_path"), "http.path");
        assert_eq!(unescape_label_name("U__a__b"), "a_b");
        assert_eq!(unescape_label_name("U___1f600_"), "\u{1f600}");
        // Not decodable: as written.
        for bad in ["U__a_zz_", "U__a_2e", "U__a_", "U___d800_", "U___1234567_"] {
            assert_eq!(unescape_label_name(bad), bad);
        }
    }

    #[test]
    fn selectors() {
        let ms = selector_matchers(r#"up{job=~"a|b",x!="1"}"#).unwrap();
        assert_eq!(ms.len(), 3);
        assert!(
            selector_matchers("up + 1")
                .unwrap_err()
                .contains("expected a series selector")
        );
        assert!(selector_matchers("up(").unwrap_err().starts_with("1:"));
        assert!(selector_matchers("up offset 5m").is_err());
    }

    #[test]
    fn evaluation_errors_get_prometheus_types() {
        let t = |e| exec_error(e).kind;
        assert_eq!(
            t(vigil_rules::Error::Eval(
                "query timed out in expression evaluation".into()
            )),
            ErrorType::Timeout
        );
        assert_eq!(
            t(vigil_rules::Error::Eval(
                "vector cannot contain metrics".into()
            )),
            ErrorType::Execution
        );
        assert_eq!(
            t(vigil_rules::Error::Storage("x".into())),
            ErrorType::Internal
        );
        assert_eq!(ErrorType::Timeout.status(), 503);
        assert_eq!(ErrorType::Execution.status(), 422);
        assert_eq!(ErrorType::Unavailable.status(), 500);
    }

    #[test]
    fn own_metrics_keep_the_families_that_parse() {
        let text = "# HELP a A.\n# TYPE a gauge\na 1\n# HELP b B.\n# TYPE b gauge\nb{ 2\n# HELP c C.\nc 3\n";
        let names: Vec<String> = parse_own_metrics(text)
            .into_iter()
            .map(|f| f.name)
            .collect();
        assert_eq!(names, ["a", "c"]);
        assert!(parse_own_metrics("").is_empty());
    }

    #[test]
    fn counter_families_are_renamed_for_openmetrics() {
        let text =
            "# TYPE a_total counter\na_total 1\n# TYPE b counter\nb 2\n# TYPE c gauge\nc 3\n";
        let fams = parse_families(text.as_bytes(), Format::Text, Mode::Scrape).unwrap();
        let fams = counters_named_for_openmetrics(fams);
        let got: Vec<(&str, MetricType)> = fams
            .iter()
            .map(|f| (f.name.as_str(), f.metric_type))
            .collect();
        assert_eq!(
            got,
            [
                ("a", MetricType::Counter),
                ("b", MetricType::Unknown),
                ("c", MetricType::Gauge)
            ]
        );
        for format in [Format::Text, Format::OpenMetrics] {
            let reg = Registry::new();
            reg.register_collector(Fixed(fams.clone()));
            let mut out = Vec::new();
            reg.encode(format, &mut out);
            let back = parse_families(&out, format, Mode::Strict).unwrap();
            assert_eq!(back.len(), 3, "{}", String::from_utf8_lossy(&out));
            assert_eq!(back[0].samples[0].name, "a_total");
        }
    }

    struct Fixed(Vec<vigil_exposition::MetricFamily>);
    impl Collector for Fixed {
        fn collect(&self, out: &mut CollectorWriter<'_, '_>) {
            out.families(&self.0);
        }
    }

    #[test]
    fn the_gate_admits_max_then_times_out() {
        let g = Gate {
            active: Mutex::new(0),
            cv: Condvar::new(),
            max: 2,
        };
        let soon = || Instant::now() + Duration::from_millis(20);
        let a = g.enter(soon()).unwrap();
        let _b = g.enter(soon()).unwrap();
        assert!(g.enter(soon()).is_none());
        drop(a);
        assert!(g.enter(soon()).is_some());
    }
}
