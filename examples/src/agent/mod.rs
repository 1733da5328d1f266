//! vigil-agent's pieces: host metrics with node_exporter's names, container
//! metrics from cgroups v1 and v2 with cAdvisor's names, and a resource
//! summary in the shape of the kubelet's Summary API.
//!
//! Everything is read when scraped (as node_exporter does): [`Agent`]
//! registers one [`Collector`] that runs each host collector and the
//! container collector in turn, timing each one into
//! `node_scrape_collector_duration_seconds{collector}` and reporting
//! `node_scrape_collector_success{collector}`; a collector whose file is
//! missing or malformed reports 0 and the rest of the scrape goes on.
//!
//! - [`procfs`]: parsers of `/proc/stat`, `meminfo`, `loadavg`,
//!   `diskstats`, `net/dev` and the mount table.
//! - [`host`]: the node_exporter collectors over them.
//! - [`cgroup`]: reading cgroups v1 and v2, and the kubepods path layouts of
//!   the systemd and cgroupfs drivers.
//! - [`container`]: the cAdvisor families.
//! - [`summary`]: the `/stats/summary` document.
//! - [`server`]: flags and the HTTP endpoints.

pub mod cgroup;
pub mod container;
pub mod host;
pub mod procfs;
pub mod server;
pub mod summary;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use vigil_exposition::client::{Collector, CollectorWriter, ProcessCollector, Registry};
use vigil_exposition::{Format, MetricType};

/// What went wrong reading the system, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AgentError {
    /// A file or directory could not be read.
    Io {
        /// The path.
        path: String,
        /// The system's reason.
        reason: String,
    },
    /// A file's contents did not have the expected shape.
    Parse {
        /// The file.
        path: String,
        /// The 1-based line (0 when the file as a whole is wrong).
        line: usize,
        /// What was wrong.
        reason: String,
    },
    /// A command-line flag was wrong.
    Flag(String),
}

impl fmt::Display for AgentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AgentError::Io { path, reason } => write!(f, "{path}: {reason}"),
            AgentError::Parse { path, line, reason } if *line > 0 => {
                write!(f, "{path}:{line}: {reason}")
            }
            AgentError::Parse { path, reason, .. } => write!(f, "{path}: {reason}"),
            AgentError::Flag(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for AgentError {}

/// Where the agent reads from. The defaults are the live system's paths;
/// tests point them at fixture trees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentOptions {
    /// `--path.procfs` (`/proc`).
    pub procfs: PathBuf,
    /// `--path.sysfs` (`/sys`).
    pub sysfs: PathBuf,
    /// `--path.rootfs` (`/`): where the host's root is mounted when the
    /// agent runs in a container; mount points are reported relative to it.
    pub rootfs: PathBuf,
    /// `--cgroup.root` (`/sys/fs/cgroup`).
    pub cgroup_root: PathBuf,
    /// `--path.podlogs` (`/var/log/pods`): pod names and namespaces by UID.
    pub pod_logs: PathBuf,
    /// `--path.containerlogs` (`/var/log/containers`): container names by id.
    pub container_logs: PathBuf,
    /// Whether to run the container collector (`--no-collector.container`
    /// turns it off).
    pub containers: bool,
}

impl Default for AgentOptions {
    fn default() -> Self {
        AgentOptions {
            procfs: "/proc".into(),
            sysfs: "/sys".into(),
            rootfs: "/".into(),
            cgroup_root: "/sys/fs/cgroup".into(),
            pod_logs: "/var/log/pods".into(),
            container_logs: "/var/log/containers".into(),
            containers: true,
        }
    }
}

/// The agent: a registry whose collector reads the system at each scrape,
/// and the state the summary's CPU rates need.
pub struct Agent {
    opts: Arc<AgentOptions>,
    registry: Registry,
    summary: summary::SummaryState,
}

impl Agent {
    /// An agent reading from `opts`, with its own process metrics
    /// (`process_*`) beside the host and container ones. Takes a first CPU
    /// reading so that the first `/stats/summary` already has rates.
    pub fn new(opts: AgentOptions) -> Agent {
        let opts = Arc::new(opts);
        let registry = Registry::new();
        registry.register_collector(NodeCollector {
            opts: Arc::clone(&opts),
        });
        registry.register_collector(ProcessCollector::new());
        let agent = Agent {
            opts,
            registry,
            summary: summary::SummaryState::default(),
        };
        let _ = agent.summary();
        agent
    }

    /// The options.
    pub fn options(&self) -> &AgentOptions {
        &self.opts
    }

    /// The registry (the stack registers nothing else in it, but may scrape
    /// it in process).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// One full collection, encoded: what `/metrics` answers.
    pub fn encode(&self, format: Format) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 * 1024);
        self.registry.encode(format, &mut out);
        out
    }

    /// The `/stats/summary` document (kubelet Summary API shape).
    pub fn summary(&self) -> Result<serde_json::Value, AgentError> {
        self.summary.build(&self.opts)
    }
}

/// Runs every collector at scrape time and reports their durations and
/// success, as node_exporter's `node_scrape_collector_*`.
struct NodeCollector {
    opts: Arc<AgentOptions>,
}

impl Collector for NodeCollector {
    fn collect(&self, out: &mut CollectorWriter<'_, '_>) {
        let mut results: Vec<(&str, f64, bool)> = Vec::with_capacity(host::COLLECTORS.len() + 1);
        for &(name, f) in host::COLLECTORS {
            let t = Instant::now();
            let ok = f(&self.opts, out).is_ok();
            results.push((name, t.elapsed().as_secs_f64(), ok));
        }
        if self.opts.containers {
            let t = Instant::now();
            let snap = container::Snapshot::read(&self.opts);
            if let Ok(s) = &snap {
                s.write(out);
            }
            results.push(("container", t.elapsed().as_secs_f64(), snap.is_ok()));
        }
        let mut f = out.family(
            "node_scrape_collector_duration_seconds",
            MetricType::Gauge,
            "node_exporter: Duration of a collector scrape.",
        );
        for (name, secs, _) in &results {
            f.sample("", &[("collector", *name)], *secs);
        }
        let mut f = out.family(
            "node_scrape_collector_success",
            MetricType::Gauge,
            "node_exporter: Whether a collector succeeded.",
        );
        for (name, _, ok) in &results {
            f.sample("", &[("collector", *name)], if *ok { 1.0 } else { 0.0 });
        }
    }
}
