//! The demo app: a small HTTP service instrumented with vigil-exposition,
//! for the stack and the tests to scrape and to tail.
//!
//! Endpoints: `/` (a greeting), `/api/items` (a JSON list), `/api/slow`
//! (sleeps a random 50–500 ms), `/api/error` (500), `/metrics` (negotiated
//! text 0.0.4 or OpenMetrics), 404 for anything else. Metrics:
//! `http_requests_total{method,path,code}`,
//! `http_request_duration_seconds{method,path}` (Prometheus's default
//! buckets), `http_requests_in_flight` and the process collector's
//! `process_*`. Unknown paths are counted as `path="other"` so that a
//! scanner cannot grow the series without bound.
//!
//! Each request writes one access-log line in nginx's `combined` format:
//! `$remote_addr - $remote_user [$time_local] "$request" $status
//! $body_bytes_sent "$http_referer" "$http_user_agent"`, with variables
//! escaped as nginx escapes them (`"`, `\` and bytes outside printable
//! ASCII as `\xHH`). `$time_local` is written in UTC (`+0000`), which is
//! what nginx writes on a host whose zone is UTC.
//!
//! ```no_run
//! use vigil_examples::demoapp::{DemoApp, DemoOptions};
//!
//! let app = DemoApp::start(DemoOptions {
//!     listen: "127.0.0.1:0".parse().unwrap(),
//!     self_load_rps: 5.0,
//!     ..DemoOptions::default()
//! })?;
//! println!("demo app on http://{}", app.addr());
//! app.stop();
//! # Ok::<(), vigil_examples::demoapp::DemoAppError>(())
//! ```

mod selfload;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use vigil_exposition::Format;
use vigil_exposition::client::{Counter, Family, Gauge, Histogram, ProcessCollector, Registry};

/// Everything that can go wrong starting the demo app.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DemoAppError {
    /// The listen address could not be bound.
    #[error("listen on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
    /// The access log could not be opened.
    #[error("access log {}: {source}", path.display())]
    AccessLog {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Registering a metric failed.
    #[error("registering metrics: {0}")]
    Metrics(#[from] vigil_exposition::Error),
    /// A command-line flag is wrong.
    #[error("flag {flag}: {reason}")]
    Flag {
        /// The flag as given.
        flag: String,
        /// Why it is refused.
        reason: String,
    },
}

/// Where the access log goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessLog {
    /// Nowhere.
    Off,
    /// Standard output (`--access-log -`).
    Stdout,
    /// Appended to this file (created if missing).
    File(PathBuf),
}

/// How the demo app runs.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// `--web.listen-address` (127.0.0.1:8080); port 0 picks a free port.
    pub listen: SocketAddr,
    /// `--access-log` (off).
    pub access_log: AccessLog,
    /// `--self-load RPS`: requests per second the app sends to its own
    /// endpoints, so that a stack shows traffic without a user (0: none).
    pub self_load_rps: f64,
}

impl Default for DemoOptions {
    fn default() -> DemoOptions {
        DemoOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            access_log: AccessLog::Off,
            self_load_rps: 0.0,
        }
    }
}

/// The usage text of `vigil-demo-app --help`.
pub fn help() -> &'static str {
    "usage: vigil-demo-app [<flags>]

A small HTTP service instrumented with vigil-exposition, writing an nginx
\"combined\" access log.

Endpoints: /, /api/items, /api/slow (50-500 ms), /api/error (500), /metrics;
404 for anything else.

Flags:
  -h, --help                     Show this help.
      --version                  Show the version.
      --web.listen-address=127.0.0.1:8080
                                 Address to listen on.
      --access-log=FILE          Append an nginx combined log line per request
                                 to FILE (- for standard output). Default: off.
      --self-load=RPS            Send RPS requests per second to its own
                                 endpoints (default 0: none).
"
}

/// What the command line asks for.
#[derive(Debug, Clone)]
pub enum Command {
    /// Run with these options.
    Run(DemoOptions),
    /// Print [`help`].
    Help,
    /// Print the version.
    Version,
}

/// Parses `--flag=value` and `--flag value` arguments.
pub fn parse_flags(args: impl IntoIterator<Item = String>) -> Result<Command, DemoAppError> {
    let mut o = DemoOptions::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
            None => (arg.clone(), None),
        };
        let bad = |reason: String| DemoAppError::Flag {
            flag: name.clone(),
            reason,
        };
        match name.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--version" => return Ok(Command::Version),
            "--web.listen-address" | "--access-log" | "--self-load" => {
                let v = match inline {
                    Some(v) => v,
                    None => args.next().ok_or_else(|| bad("expects a value".into()))?,
                };
                match name.as_str() {
                    "--web.listen-address" => {
                        o.listen = v
                            .parse()
                            .map_err(|e| bad(format!("{v:?} is not an IP:port address ({e})")))?;
                    }
                    "--access-log" => {
                        o.access_log = match v.as_str() {
                            "" => AccessLog::Off,
                            "-" => AccessLog::Stdout,
                            p => AccessLog::File(PathBuf::from(p)),
                        };
                    }
                    _ => {
                        let rps: f64 = v
                            .parse()
                            .map_err(|_| bad(format!("{v:?} is not a number")))?;
                        if !(0.0..=10_000.0).contains(&rps) {
                            return Err(bad(format!("{rps} is not in 0..=10000")));
                        }
                        o.self_load_rps = rps;
                    }
                }
            }
            _ => return Err(bad("unknown flag (see --help)".into())),
        }
    }
    Ok(Command::Run(o))
}

/// The app's metrics.
#[derive(Clone)]
struct Metrics {
    registry: Registry,
    requests: Family<[&'static str; 3], Counter>,
    duration: Family<[&'static str; 2], Histogram>,
    in_flight: Gauge,
}

impl Metrics {
    fn new() -> Result<Metrics, DemoAppError> {
        let registry = Registry::new();
        let requests =
            Family::<[&'static str; 3], Counter>::with_label_names(&["method", "path", "code"]);
        registry.register(
            "http_requests",
            "HTTP requests served, by method, path and status code.",
            requests.clone(),
        )?;
        let duration =
            Family::<[&'static str; 2], Histogram>::with_label_names(&["method", "path"]);
        registry.register_with_unit(
            "http_request_duration",
            "Time spent serving HTTP requests, by method and path.",
            "seconds",
            duration.clone(),
        )?;
        let in_flight = Gauge::new();
        registry.register(
            "http_requests_in_flight",
            "HTTP requests being served right now.",
            in_flight.clone(),
        )?;
        registry.register_collector(ProcessCollector::new());
        Ok(Metrics {
            registry,
            requests,
            duration,
            in_flight,
        })
    }
}

/// A running demo app. [`DemoApp::stop`] (or dropping it) stops it.
pub struct DemoApp {
    addr: SocketAddr,
    server: Arc<tiny_http::Server>,
    stopping: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
    load: Option<selfload::SelfLoad>,
    metrics: Metrics,
}

/// What one request thread needs.
struct Ctx {
    metrics: Metrics,
    log: Option<Mutex<Box<dyn Write + Send>>>,
    rng: AtomicU64,
}

impl DemoApp {
    /// Binds `opts.listen`, opens the access log and starts serving (and
    /// the self-load, if asked).
    pub fn start(opts: DemoOptions) -> Result<DemoApp, DemoAppError> {
        let log: Option<Box<dyn Write + Send>> = match &opts.access_log {
            AccessLog::Off => None,
            AccessLog::Stdout => Some(Box::new(std::io::stdout())),
            AccessLog::File(p) => Some(Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map_err(|source| DemoAppError::AccessLog {
                        path: p.clone(),
                        source,
                    })?,
            )),
        };
        let metrics = Metrics::new()?;
        let server = tiny_http::Server::http(opts.listen).map_err(|e| DemoAppError::Listen {
            addr: opts.listen,
            reason: e.to_string(),
        })?;
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| DemoAppError::Listen {
                addr: opts.listen,
                reason: "listener has no IP address".into(),
            })?;
        let server = Arc::new(server);
        let stopping = Arc::new(AtomicBool::new(false));
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9E37_79B9_7F4A_7C15)
            | 1;
        let ctx = Arc::new(Ctx {
            metrics: metrics.clone(),
            log: log.map(Mutex::new),
            rng: AtomicU64::new(seed),
        });
        let (srv, stop) = (Arc::clone(&server), Arc::clone(&stopping));
        let accept = std::thread::Builder::new()
            .name("demoapp-http".into())
            .spawn(move || accept_loop(&srv, &stop, ctx))
            .map_err(|e| DemoAppError::Listen {
                addr,
                reason: format!("starting the accept thread: {e}"),
            })?;
        let load =
            (opts.self_load_rps > 0.0).then(|| selfload::SelfLoad::start(addr, opts.self_load_rps));
        Ok(DemoApp {
            addr,
            server,
            stopping,
            accept: Some(accept),
            load,
            metrics,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The registry behind `/metrics` (for embedding: the stack may add to
    /// it or encode it directly).
    pub fn registry(&self) -> &Registry {
        &self.metrics.registry
    }

    /// Stops the self-load and the server; requests being served finish on
    /// their own threads.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(l) = self.load.take() {
            l.stop();
        }
        self.stopping.store(true, Ordering::SeqCst);
        self.server.unblock();
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

impl Drop for DemoApp {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Requests served at once; more are answered 503 (and logged).
const MAX_IN_FLIGHT: usize = 512;

fn accept_loop(server: &tiny_http::Server, stopping: &AtomicBool, ctx: Arc<Ctx>) {
    let busy = Arc::new(AtomicUsize::new(0));
    loop {
        let rq = server.recv();
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(rq) = rq else { continue };
        if busy.fetch_add(1, Ordering::SeqCst) >= MAX_IN_FLIGHT {
            busy.fetch_sub(1, Ordering::SeqCst);
            let _ = rq.respond(tiny_http::Response::from_string("busy\n").with_status_code(503));
            continue;
        }
        let (ctx, busy2) = (Arc::clone(&ctx), Arc::clone(&busy));
        let spawned = std::thread::Builder::new()
            .name("demoapp-request".into())
            .spawn(move || {
                serve(&ctx, rq);
                busy2.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            busy.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// The route label and the answer of one request.
fn respond(
    ctx: &Ctx,
    url: &str,
    accept: Option<&str>,
) -> (&'static str, u16, &'static str, Vec<u8>) {
    let path = url.split('?').next().unwrap_or("");
    match path {
        "/" => (
            "/",
            200,
            "text/plain; charset=utf-8",
            b"vigil demo app: try /api/items, /api/slow, /api/error, /metrics\n".to_vec(),
        ),
        "/api/items" => (
            "/api/items",
            200,
            "application/json",
            br#"{"items":[{"id":1,"name":"apple"},{"id":2,"name":"pear"},{"id":3,"name":"plum"}]}"#
                .to_vec(),
        ),
        "/api/slow" => {
            let ms = 50 + next_random(&ctx.rng) % 451;
            std::thread::sleep(Duration::from_millis(ms));
            (
                "/api/slow",
                200,
                "application/json",
                format!("{{\"slept_ms\":{ms}}}").into_bytes(),
            )
        }
        "/api/error" => (
            "/api/error",
            500,
            "application/json",
            br#"{"error":"something went wrong (on purpose)"}"#.to_vec(),
        ),
        "/metrics" => {
            let format = Format::negotiate(accept);
            let mut body = Vec::new();
            ctx.metrics.registry.encode(format, &mut body);
            ("/metrics", 200, format.content_type(), body)
        }
        _ => (
            "other",
            404,
            "text/plain; charset=utf-8",
            b"404 page not found\n".to_vec(),
        ),
    }
}

fn serve(ctx: &Ctx, mut rq: tiny_http::Request) {
    let start = Instant::now();
    let m = &ctx.metrics;
    m.in_flight.inc();
    // The request body is not used, but it is read so that keep-alive
    // clients stay in step.
    let _ = std::io::copy(&mut rq.as_reader().take(1 << 20), &mut std::io::sink());
    let header = |name: &str| {
        rq.headers()
            .iter()
            .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str().to_owned())
    };
    let (accept, referer, agent) = (header("accept"), header("referer"), header("user-agent"));
    let (route, status, content_type, body) = respond(ctx, rq.url(), accept.as_deref());
    let method = method_label(rq.method());
    let line = ctx.log.as_ref().map(|_| {
        combined_line(
            &rq.remote_addr()
                .map(|a| a.ip().to_string())
                .unwrap_or_else(|| "-".into()),
            SystemTime::now(),
            &format!("{} {} HTTP/{}", rq.method(), rq.url(), rq.http_version()),
            status,
            body.len(),
            referer.as_deref(),
            agent.as_deref(),
        )
    });
    // Counted and logged before the answer goes out, so that a client that
    // has its answer finds it in /metrics and in the log (the duration
    // leaves out writing the response to the socket).
    m.requests
        .with(&[method, route, status_label(status)], |c| c.inc());
    m.duration.with(&[method, route], |h| {
        h.observe(start.elapsed().as_secs_f64())
    });
    if let (Some(log), Some(mut line)) = (&ctx.log, line) {
        line.push('\n');
        let mut w = log.lock();
        // A full disk must not take the service down; the line is lost.
        let _ = w.write_all(line.as_bytes()).and_then(|()| w.flush());
    }
    m.in_flight.dec();
    let mut resp = tiny_http::Response::from_data(body).with_status_code(status);
    if let Ok(h) = tiny_http::Header::from_bytes(&b"Content-Type"[..], content_type.as_bytes()) {
        resp = resp.with_header(h);
    }
    let _ = rq.respond(resp);
}

fn method_label(m: &tiny_http::Method) -> &'static str {
    match m {
        tiny_http::Method::Get => "GET",
        tiny_http::Method::Head => "HEAD",
        tiny_http::Method::Post => "POST",
        tiny_http::Method::Put => "PUT",
        tiny_http::Method::Delete => "DELETE",
        tiny_http::Method::Patch => "PATCH",
        tiny_http::Method::Options => "OPTIONS",
        _ => "OTHER",
    }
}

fn status_label(s: u16) -> &'static str {
    match s {
        200 => "200",
        404 => "404",
        500 => "500",
        503 => "503",
        _ => "other",
    }
}

/// xorshift64*: good enough to spread sleeps, and no dependency.
fn next_random(state: &AtomicU64) -> u64 {
    let mut x = state.load(Ordering::Relaxed);
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    state.store(x, Ordering::Relaxed);
    x.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

/// One nginx `combined` line (without the newline).
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use vigil_examples::demoapp::combined_line;
///
/// let t = UNIX_EPOCH + Duration::from_secs(1_795_352_489);
/// let line = combined_line("127.0.0.1", t, "GET /api/items HTTP/1.1", 200, 83, None, Some("curl/8.0"));
/// assert_eq!(
///     line,
///     "127.0.0.1 - - [22/Nov/2026:13:01:29 +0000] \"GET /api/items HTTP/1.1\" 200 83 \"-\" \"curl/8.0\""
/// );
/// ```
pub fn combined_line(
    remote_addr: &str,
    time: SystemTime,
    request: &str,
    status: u16,
    body_bytes: usize,
    referer: Option<&str>,
    user_agent: Option<&str>,
) -> String {
    let var = |v: Option<&str>| match v {
        None | Some("") => "-".to_owned(),
        Some(s) => nginx_escape(s),
    };
    format!(
        "{} - - [{}] \"{}\" {status} {body_bytes} \"{}\" \"{}\"",
        nginx_escape(remote_addr),
        time_local(time),
        nginx_escape(request),
        var(referer),
        var(user_agent),
    )
}

/// nginx's default log escaping: `"`, `\` and bytes below 0x20 or from 0x7f
/// as `\xHH`.
fn nginx_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b == b'"' || b == b'\\' || !(0x20..0x7f).contains(&b) {
            out.push_str(&format!("\\x{b:02X}"));
        } else {
            out.push(b as char);
        }
    }
    out
}

/// `%d/%b/%Y:%H:%M:%S +0000`.
fn time_local(t: SystemTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (y, m, d) = crate::pushgateway::civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{d:02}/{}/{y:04}:{:02}:{:02}:{:02} +0000",
        MONTHS[(m as usize).saturating_sub(1) % 12],
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_as_nginx() {
        assert_eq!(
            nginx_escape("a\"b\\c\n\u{e9}"),
            "a\\x22b\\x5Cc\\x0A\\xC3\\xA9"
        );
    }

    #[test]
    fn time_local_format() {
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(time_local(t), "29/Feb/2000:00:00:00 +0000");
    }

    #[test]
    fn random_sleeps_stay_in_range() {
        let r = AtomicU64::new(42);
        for _ in 0..1000 {
            let ms = 50 + next_random(&r) % 451;
            assert!((50..=500).contains(&ms));
        }
    }

    #[test]
    fn flags() {
        let args = [
            "--web.listen-address=127.0.0.1:0",
            "--access-log",
            "-",
            "--self-load=2.5",
        ];
        let Command::Run(o) = parse_flags(args.iter().map(|s| s.to_string())).unwrap() else {
            panic!("not a run")
        };
        assert_eq!((o.access_log, o.self_load_rps), (AccessLog::Stdout, 2.5));
        assert!(parse_flags(["--self-load=x".to_string()]).is_err());
        assert!(parse_flags(["--bogus".to_string()]).is_err());
    }
}
