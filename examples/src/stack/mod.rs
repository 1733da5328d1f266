//! vigil-stack: the whole system of the seed documents in one process, on
//! an embedded default configuration.
//!
//! It starts the demo app (instrumented, writing an nginx access log, with
//! its own load), the pushgateway, the agent (host and container metrics),
//! the sidecar (vigil-logpipe tailing the demo app's access log, parsing it
//! with the nginx parser and shipping JSON lines to a file, with its own
//! `/metrics`), and the monitor scraping all of them and itself, with the
//! seed's legacy `ALERT` rule on a real CPU expression, recording rules and
//! an alert on the demo app's 5xx rate, and one on the 5xx rate its access
//! log shows (log line → the sidecar's `log_to_metrics` filter → its
//! `/metrics` → scrape → PromQL → alert). The configuration files are written
//! under the data directory at every start (so the ports given on the
//! command line hold), where they can be read and reused to run each
//! component alone.

pub mod sidecar;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::agent::{Agent, AgentOptions};
use crate::demoapp::{AccessLog, DemoApp, DemoOptions};
use crate::monitor::api::{self, ApiOptions};
use crate::monitor::flags::{self, Command, Flags};
use crate::monitor::http::Server;
use crate::monitor::server::Monitor;
use crate::pushgateway::{self, Pushgateway};

/// Where each component listens and where data goes.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// `--data-dir` (`./vigil-data`).
    pub data_dir: PathBuf,
    /// `--monitor.listen-address` (127.0.0.1:9090).
    pub monitor: SocketAddr,
    /// `--agent.listen-address` (127.0.0.1:9100).
    pub agent: SocketAddr,
    /// `--pushgateway.listen-address` (127.0.0.1:9091).
    pub pushgateway: SocketAddr,
    /// `--demo.listen-address` (127.0.0.1:8080).
    pub demo: SocketAddr,
    /// `--sidecar.listen-address` (127.0.0.1:2020, fluent-bit's HTTP port).
    pub sidecar: SocketAddr,
    /// `--scrape-interval` (5s): the monitor's scrape and rule interval.
    pub interval: Duration,
    /// `--demo.self-load` (5): requests per second the demo app sends to
    /// itself.
    pub self_load_rps: f64,
}

impl Default for StackOptions {
    fn default() -> Self {
        let at = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
        StackOptions {
            data_dir: PathBuf::from("vigil-data"),
            monitor: at(9090),
            agent: at(9100),
            pushgateway: at(9091),
            demo: at(8080),
            sidecar: at(2020),
            interval: Duration::from_secs(5),
            self_load_rps: 5.0,
        }
    }
}

/// The flags of `vigil-stack`: name, what, default.
const DEFS: &[(&str, &str)] = &[
    (
        "data-dir",
        "Where every component keeps its data and the generated configuration (default vigil-data).",
    ),
    (
        "monitor.listen-address",
        "The monitor's API and pages (default 127.0.0.1:9090).",
    ),
    (
        "agent.listen-address",
        "The agent's /metrics and /stats/summary (default 127.0.0.1:9100).",
    ),
    (
        "pushgateway.listen-address",
        "The pushgateway (default 127.0.0.1:9091).",
    ),
    (
        "demo.listen-address",
        "The demo app (default 127.0.0.1:8080).",
    ),
    (
        "sidecar.listen-address",
        "The sidecar's /metrics and /api/v1/health (default 127.0.0.1:2020).",
    ),
    (
        "scrape-interval",
        "The monitor's scrape and rule evaluation interval (default 5s).",
    ),
    (
        "demo.self-load",
        "Requests per second the demo app sends to itself (default 5).",
    ),
];

/// The `--help` text.
pub fn help() -> String {
    let mut s = String::from(
        "usage: vigil-stack [<flags>]\n\nThe whole Vigil system in one process: monitor, agent, pushgateway,\nsidecar and a demo app, on an embedded default configuration.\n\nFlags:\n  -h, --help  Show this help.\n",
    );
    for (name, what) in DEFS {
        s.push_str(&format!("      --{name}=VALUE  {what}\n"));
    }
    s
}

/// Parses `vigil-stack`'s arguments; `Ok(None)` for `--help`.
pub fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Option<StackOptions>, String> {
    let mut o = StackOptions::default();
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(None);
        }
        let body = arg
            .strip_prefix("--")
            .ok_or_else(|| format!("unexpected {arg}, try --help"))?;
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n.to_string(), v.to_string()),
            None => {
                let v = it
                    .next()
                    .ok_or_else(|| format!("expected a value for --{body}"))?;
                (body.to_string(), v)
            }
        };
        let addr = |v: &str| -> Result<SocketAddr, String> {
            v.parse()
                .map_err(|_| format!("invalid address {v:?} for --{name}"))
        };
        match name.as_str() {
            "data-dir" => o.data_dir = PathBuf::from(value),
            "monitor.listen-address" => o.monitor = addr(&value)?,
            "agent.listen-address" => o.agent = addr(&value)?,
            "pushgateway.listen-address" => o.pushgateway = addr(&value)?,
            "demo.listen-address" => o.demo = addr(&value)?,
            "sidecar.listen-address" => o.sidecar = addr(&value)?,
            "scrape-interval" => {
                o.interval = vigil_rules::parse_duration(&value)
                    .filter(|ms| *ms > 0)
                    .map(|ms| Duration::from_millis(ms as u64))
                    .ok_or_else(|| format!("invalid duration {value:?} for --{name}"))?
            }
            "demo.self-load" => {
                o.self_load_rps = value
                    .parse::<f64>()
                    .ok()
                    .filter(|r| r.is_finite() && *r >= 0.0)
                    .ok_or_else(|| format!("invalid rate {value:?} for --{name}"))?
            }
            _ => return Err(format!("unknown flag --{name}, try --help")),
        }
    }
    Ok(Some(o))
}

fn secs(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

/// The monitor's `prometheus.yml` for the stack.
pub fn monitor_config(o: &StackOptions) -> String {
    let iv = secs(o.interval);
    let mut y = format!(
        "# Written by vigil-stack at every start (its flags set the ports).
global:
  scrape_interval: {iv}
  scrape_timeout: {iv}
  evaluation_interval: {iv}
  external_labels:
    stack: vigil
rule_files:
  - 'rules/*.rules'
  - 'rules/*.yml'
scrape_configs:
"
    );
    for (job, addr, honor) in [
        ("vigil-monitor", o.monitor, false),
        ("vigil-agent", o.agent, false),
        ("pushgateway", o.pushgateway, true),
        ("demo-app", o.demo, false),
        ("vigil-sidecar", o.sidecar, false),
    ] {
        y.push_str(&format!("  - job_name: {job}\n"));
        if honor {
            y.push_str("    honor_labels: true\n");
        }
        y.push_str(&format!(
            "    static_configs:\n      - targets: ['{addr}']\n"
        ));
    }
    y
}

/// The seed's alert in the legacy 1.x syntax, on the recording rule
/// `metricsCPU` (node CPU busy ratio) of [`RECORDING_RULES`].
pub const SEED_RULES: &str = r#"# The seed document's alert, in Prometheus 1.x syntax.
ALERT Example
  IF metricsCPU > 0.9
  FOR 10m
  LABELS {severity="High"}
  ANNOTATIONS {description="Node CPU too high: {{ $labels.instance }} CPU {{$value}}", summary="Node CPU too high"}
"#;

/// Recording rules and the stack's other alerts (Prometheus YAML).
pub const RECORDING_RULES: &str = r#"groups:
  - name: stack
    rules:
      - record: metricsCPU
        expr: 1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[1m]))
      - record: job_code:http_requests:rate1m
        expr: sum by (job, code) (rate(http_requests_total[1m]))
      - record: instance:node_memory_used:bytes
        expr: node_memory_MemTotal_bytes - node_memory_MemAvailable_bytes
      - alert: DemoAppErrors
        expr: sum(rate(http_requests_total{job="demo-app",code=~"5.."}[1m])) > 0.05
        for: 10s
        labels:
          severity: warning
        annotations:
          summary: 'The demo app answers {{ $value | printf "%.2f" }} errors a second'
      - alert: DemoAppLogErrors
        expr: sum(rate(demo_access_log_requests_total{code=~"5.."}[1m])) > 0.05
        for: 10s
        labels:
          severity: warning
        annotations:
          summary: 'The demo app''s access log shows {{ $value | printf "%.2f" }} 5xx responses a second (counted by the sidecar)'
      - alert: TargetDown
        expr: up == 0
        for: 1m
        labels:
          severity: critical
        annotations:
          summary: '{{ $labels.job }} at {{ $labels.instance }} is down'
"#;

/// The sidecar's fluent-bit configuration: tail the demo app's access log,
/// parse it as nginx, count requests by status code and response sizes
/// (`log_to_metrics`, served on the sidecar's `/metrics` for the monitor's
/// `DemoAppLogErrors` alert), ship JSON lines to a file.
pub fn sidecar_config(data: &Path) -> String {
    format!(
        "# Written by vigil-stack at every start.
[SERVICE]
    Flush        1
    Log_Level    info

[INPUT]
    Name              tail
    Path              {}/*.log
    Tag               demo.*
    Read_From_Head    On
    Refresh_Interval  1
    Mem_Buf_Limit     5MB
    DB                {}
    Parser            nginx

[FILTER]
    Name                log_to_metrics
    Match               demo.*
    Tag                 demo.metrics
    Metric_Mode         counter
    Metric_Namespace    demo
    Metric_Subsystem    access_log
    Metric_Name         requests_total
    Metric_Description  Requests in the demo app's access log, by status code.
    Label_Field         code

[FILTER]
    Name                log_to_metrics
    Match               demo.*
    Tag                 demo.metrics
    Metric_Mode         histogram
    Metric_Namespace    demo
    Metric_Subsystem    access_log
    Metric_Name         response_size_bytes
    Metric_Description  Response sizes in the demo app's access log.
    Value_Field         size
    Bucket              64
    Bucket              256
    Bucket              1024
    Bucket              4096
    Bucket              16384

[OUTPUT]
    Name    file
    Match   demo.*
    Path    {}
    File    access.jsonl
    Format  plain
    Mkdir   On
",
        data.join("logs/demo").display(),
        data.join("sidecar/tail.db").display(),
        data.join("logs/shipped").display()
    )
}

/// The running stack.
pub struct Stack {
    opts: StackOptions,
    demo: Option<DemoApp>,
    pushgateway: Option<Pushgateway>,
    agent_server: Option<Server>,
    sidecar: Option<sidecar::Sidecar>,
    monitor: Arc<Monitor>,
    monitor_server: Option<Server>,
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

impl Stack {
    /// Writes the configuration and starts every component; an error says
    /// which one failed (and the ones already started are stopped).
    pub fn start(o: StackOptions) -> Result<Stack, String> {
        let data = std::path::absolute(&o.data_dir)
            .map_err(|e| format!("{}: {e}", o.data_dir.display()))?;
        std::fs::create_dir_all(data.join("logs/demo"))
            .map_err(|e| format!("{}: {e}", data.display()))?;
        let config_dir = data.join("config");
        write(&config_dir.join("prometheus.yml"), &monitor_config(&o))?;
        write(&config_dir.join("rules/seed.rules"), SEED_RULES)?;
        write(&config_dir.join("rules/stack.yml"), RECORDING_RULES)?;
        write(&config_dir.join("fluent-bit.conf"), &sidecar_config(&data))?;
        for dir in ["sidecar", "pushgateway", "logs/shipped"] {
            std::fs::create_dir_all(data.join(dir))
                .map_err(|e| format!("{}: {e}", data.join(dir).display()))?;
        }

        let demo = DemoApp::start(DemoOptions {
            listen: o.demo,
            access_log: AccessLog::File(data.join("logs/demo/access.log")),
            self_load_rps: o.self_load_rps,
        })
        .map_err(|e| format!("demo app: {e}"))?;
        let pushgateway = Pushgateway::start(pushgateway::Options {
            listen: o.pushgateway,
            persistence_file: Some(data.join("pushgateway/state")),
            persistence_interval: Duration::from_secs(60),
            ..pushgateway::Options::default()
        })
        .map_err(|e| format!("pushgateway: {e}"))?;
        let agent = Arc::new(Agent::new(AgentOptions::default()));
        let agent_server = crate::agent::server::serve(
            agent,
            &crate::agent::server::Flags {
                listen: o.agent,
                telemetry_path: "/metrics".into(),
                agent: AgentOptions::default(),
            },
        )
        .map_err(|e| format!("agent on {}: {e}", o.agent))?;
        let sidecar = sidecar::Sidecar::start(&config_dir.join("fluent-bit.conf"), o.sidecar)
            .map_err(|e| format!("sidecar: {e}"))?;
        let flags = match flags::parse([
            format!(
                "--config.file={}",
                config_dir.join("prometheus.yml").display()
            ),
            format!("--storage.tsdb.path={}", data.join("monitor").display()),
            format!("--web.listen-address={}", o.monitor),
            "--web.enable-lifecycle".to_string(),
        ]) {
            Ok(Command::Run(f)) => *f,
            Ok(_) => return Err("monitor flags".into()),
            Err(e) => return Err(format!("monitor flags: {e}")),
        };
        let monitor = Monitor::start(flags.clone()).map_err(|e| format!("monitor: {e}"))?;
        let monitor_server = api::serve(api_options(&flags, &monitor), monitor.clone())
            .map_err(|e| format!("monitor on {}: {e}", o.monitor))?;
        Ok(Stack {
            opts: o,
            demo: Some(demo),
            pushgateway: Some(pushgateway),
            agent_server: Some(agent_server),
            sidecar: Some(sidecar),
            monitor,
            monitor_server: Some(monitor_server),
        })
    }

    /// What was started and where, for the console.
    pub fn banner(&self) -> String {
        let o = &self.opts;
        format!(
            "vigil-stack is running (data in {}):\n\
  monitor      http://{}/graph   (pages: /targets /alerts /rules /status /dashboard; API /api/v1/…)\n\
  agent        http://{}/metrics  and /stats/summary\n\
  pushgateway  http://{}/metrics  (push to /metrics/job/<job>)\n\
  demo app     http://{}/         (writes {}/logs/demo/access.log)\n\
  sidecar      http://{}/metrics  (ships parsed access-log lines to {}/logs/shipped/access.jsonl)\n\
configuration: {}/config/  ·  Ctrl-C stops everything cleanly",
            o.data_dir.display(),
            o.monitor,
            o.agent,
            o.pushgateway,
            o.demo,
            o.data_dir.display(),
            o.sidecar,
            o.data_dir.display(),
            o.data_dir.display()
        )
    }

    /// The monitor.
    pub fn monitor(&self) -> &Arc<Monitor> {
        &self.monitor
    }

    /// One line of status: targets up, series, samples/s, alerts firing,
    /// log lines shipped.
    pub fn status_line(&self) -> String {
        let targets = self.monitor.scrape().active_targets();
        let up = targets
            .iter()
            .filter(|t| t.health == crate::monitor::scrape::Health::Up)
            .count();
        let series = self.monitor.db().head().num_series();
        let engine = vigil_rules::Engine::new();
        let now = crate::monitor::rules::now_ms();
        let scalar = |q: &str| -> f64 {
            match engine.instant_query(self.monitor.db(), q, now) {
                Ok(r) => match r.value {
                    vigil_rules::Value::Vector(v) => v.first().map_or(0.0, |s| s.value),
                    vigil_rules::Value::Scalar { v, .. } => v,
                    _ => 0.0,
                },
                Err(_) => 0.0,
            }
        };
        let per_scrape = scalar("sum(scrape_samples_post_metric_relabeling)");
        let rate = per_scrape / self.opts.interval.as_secs_f64();
        let firing = self.monitor.rules().alerts_json()["alerts"]
            .as_array()
            .map(|a| a.iter().filter(|x| x["state"] == "firing").count())
            .unwrap_or(0);
        let shipped = self.sidecar.as_ref().map_or(0, |s| s.records_out());
        format!(
            "targets up {up}/{} · series {series} · {rate:.0} samples/s · alerts firing {firing} · log lines shipped {shipped}",
            targets.len()
        )
    }

    /// Stops every component: the monitor checkpoints its store, the
    /// sidecar flushes and checkpoints its offsets, the pushgateway writes
    /// its state.
    pub fn stop(mut self) -> Result<(), String> {
        let mut errors = Vec::new();
        if let Some(s) = self.monitor_server.take() {
            s.stop();
        }
        self.monitor.shutdown();
        if let Some(s) = self.sidecar.take()
            && let Err(e) = s.stop()
        {
            errors.push(format!("sidecar: {e}"));
        }
        if let Some(s) = self.agent_server.take() {
            s.stop();
        }
        if let Some(p) = self.pushgateway.take()
            && let Err(e) = p.stop()
        {
            errors.push(format!("pushgateway: {e}"));
        }
        if let Some(d) = self.demo.take() {
            d.stop();
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }
}

/// The API options vigil-monitor's binary uses, from its flags.
pub fn api_options(flags: &Flags, monitor: &Monitor) -> ApiOptions {
    ApiOptions {
        listen: flags.listen,
        enable_lifecycle: flags.enable_lifecycle,
        enable_admin_api: flags.enable_admin_api,
        enable_remote_write_receiver: flags.enable_remote_write_receiver,
        max_samples: flags.query_max_samples,
        query_timeout: flags.query_timeout,
        max_concurrency: flags.query_max_concurrency,
        lookback_delta: flags.lookback_delta,
        snapshot_dir: flags.storage_path.join("snapshots"),
        external_labels: monitor.config().global.external_labels.clone(),
        registry: monitor.registry().clone(),
        ..ApiOptions::default()
    }
}

/// Runs `f` on a named thread.
pub(crate) fn spawn(
    name: &str,
    f: impl FnOnce() + Send + 'static,
) -> Result<JoinHandle<()>, String> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map_err(|e| format!("starting {name}: {e}"))
}

/// Whether `flag` was raised (for the binaries' signal loops).
pub fn raised(flag: &std::sync::atomic::AtomicBool) -> bool {
    flag.load(Ordering::Relaxed)
}
