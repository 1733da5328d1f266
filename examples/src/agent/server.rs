//! vigil-agent's command line (node_exporter's flag names where it has the
//! flag) and its HTTP endpoints: `/metrics`, `/stats/summary`,
//! `/-/healthy`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use vigil_exposition::Format;

use super::{Agent, AgentError, AgentOptions};
use crate::monitor::http::{self, HttpOptions, Reply, Request};

/// Parsed flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flags {
    /// `--web.listen-address`.
    pub listen: SocketAddr,
    /// `--web.telemetry-path`.
    pub telemetry_path: String,
    /// Where to read from.
    pub agent: AgentOptions,
}

/// What the command line asked for.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    /// Serve.
    Run(Box<Flags>),
    /// `--help` / `-h`.
    Help,
    /// `--version`.
    Version,
}

/// The flags: name, default, help.
const DEFS: &[(&str, &str, &str)] = &[
    (
        "web.listen-address",
        "127.0.0.1:9100",
        "Address on which to expose metrics, the summary and the health check (loopback unless you say otherwise).",
    ),
    (
        "web.telemetry-path",
        "/metrics",
        "Path under which to expose metrics.",
    ),
    ("path.procfs", "/proc", "procfs mountpoint."),
    ("path.sysfs", "/sys", "sysfs mountpoint."),
    (
        "path.rootfs",
        "/",
        "rootfs mountpoint (mount points are reported relative to it).",
    ),
    (
        "cgroup.root",
        "/sys/fs/cgroup",
        "Root of the cgroup file systems (v1: the directory holding cpu/, memory/, ...; v2: the unified mount).",
    ),
    (
        "path.podlogs",
        "/var/log/pods",
        "The kubelet's pod log directory: <namespace>_<pod>_<uid> names give the pod and namespace labels.",
    ),
    (
        "path.containerlogs",
        "/var/log/containers",
        "The kubelet's container log links: <pod>_<namespace>_<container>-<id>.log names give the container label.",
    ),
];

/// The `--help` text.
pub fn help() -> String {
    let mut s = String::from(
        "usage: vigil-agent [<flags>]\n\n\
         Host metrics with node_exporter's names (cpu, diskstats, filesystem, loadavg,\n\
         meminfo, netdev, stat, time, uname), container metrics from cgroups v1 and v2\n\
         with cAdvisor's names, and the kubelet Summary API shape at /stats/summary.\n\
         Everything is read when scraped.\n\n\
         Endpoints: <telemetry-path> (text 0.0.4 or OpenMetrics by Accept),\n\
         /stats/summary (JSON), /-/healthy.\n\nFlags:\n",
    );
    s.push_str("  -h, --help                   Show this help and exit.\n");
    s.push_str("      --version                Show the version and exit.\n");
    for (name, def, help) in DEFS {
        s.push_str(&format!("      --{name}={def:?}\n          {help}\n"));
    }
    s.push_str("      --no-collector.container\n          Do not read cgroups (no container_* metrics, no pods in the summary).\n");
    s
}

/// Parses the arguments (without the program name). Flags take
/// `--name=value` or `--name value`.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, AgentError> {
    let mut values: Vec<(&str, String)> =
        DEFS.iter().map(|(n, d, _)| (*n, (*d).to_owned())).collect();
    let mut containers = true;
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--version" => return Ok(Command::Version),
            "--no-collector.container" => {
                containers = false;
                continue;
            }
            "--collector.container" => {
                containers = true;
                continue;
            }
            _ => {}
        }
        let Some(flag) = arg.strip_prefix("--") else {
            return Err(AgentError::Flag(format!("unexpected argument {arg:?}")));
        };
        let (name, value) = match flag.split_once('=') {
            Some((n, v)) => (n.to_owned(), v.to_owned()),
            None => {
                let v = it
                    .next()
                    .ok_or_else(|| AgentError::Flag(format!("flag --{flag} needs a value")))?;
                (flag.to_owned(), v)
            }
        };
        let slot = values
            .iter_mut()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| AgentError::Flag(format!("unknown flag --{name}")))?;
        slot.1 = value;
    }
    let get = |n: &str| {
        values
            .iter()
            .find(|(k, _)| *k == n)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let listen = get("web.listen-address").parse().map_err(|e| {
        AgentError::Flag(format!(
            "--web.listen-address={:?}: {e} (expected host:port)",
            get("web.listen-address")
        ))
    })?;
    let telemetry_path = get("web.telemetry-path");
    if !telemetry_path.starts_with('/') {
        return Err(AgentError::Flag(format!(
            "--web.telemetry-path={telemetry_path:?}: must start with '/'"
        )));
    }
    Ok(Command::Run(Box::new(Flags {
        listen,
        telemetry_path,
        agent: AgentOptions {
            procfs: PathBuf::from(get("path.procfs")),
            sysfs: PathBuf::from(get("path.sysfs")),
            rootfs: PathBuf::from(get("path.rootfs")),
            cgroup_root: PathBuf::from(get("cgroup.root")),
            pod_logs: PathBuf::from(get("path.podlogs")),
            container_logs: PathBuf::from(get("path.containerlogs")),
            containers,
        },
    })))
}

/// Answers one request.
pub fn handle(agent: &Agent, telemetry_path: &str, req: &Request) -> Reply {
    if req.method != "GET" && req.method != "HEAD" {
        return Reply::text(405, "method not allowed\n");
    }
    match req.path.as_str() {
        p if p == telemetry_path => {
            let format = Format::negotiate(req.header("accept"));
            Reply::new(200, format.content_type(), agent.encode(format))
        }
        "/stats/summary" => match agent.summary() {
            Ok(v) => Reply::new(
                200,
                "application/json",
                serde_json::to_vec_pretty(&v).unwrap_or_default(),
            ),
            Err(e) => Reply::text(500, format!("{e}\n")),
        },
        "/-/healthy" => Reply::text(200, "vigil-agent is Healthy.\n"),
        "/" => Reply::new(
            200,
            "text/html; charset=utf-8",
            format!(
                "<html><head><title>vigil-agent</title></head><body><h1>vigil-agent</h1>\
                 <p><a href=\"{telemetry_path}\">Metrics</a> · <a href=\"/stats/summary\">Summary</a></p></body></html>\n"
            ),
        ),
        _ => Reply::text(404, "404 page not found\n"),
    }
}

/// Starts serving `agent` on `flags.listen`.
pub fn serve(agent: Arc<Agent>, flags: &Flags) -> std::io::Result<http::Server> {
    let path = flags.telemetry_path.clone();
    http::serve(
        HttpOptions {
            listen: flags.listen,
            max_body_bytes: 64 * 1024,
            max_connections: 64,
        },
        Arc::new(move |req: &Request| handle(&agent, &path, req)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn flags_parse_both_forms() {
        let Command::Run(f) = parse(args(&[
            "--web.listen-address=127.0.0.1:0",
            "--cgroup.root",
            "/tmp/cg",
            "--no-collector.container",
        ]))
        .unwrap() else {
            panic!("not a run command");
        };
        assert_eq!(f.listen.port(), 0);
        assert_eq!(f.agent.cgroup_root, PathBuf::from("/tmp/cg"));
        assert_eq!(f.agent.procfs, PathBuf::from("/proc"));
        assert!(!f.agent.containers);
        assert_eq!(parse(args(&["-h"])).unwrap(), Command::Help);
        for bad in [
            &["--nope=1"][..],
            &["--path.procfs"],
            &["x"],
            &["--web.listen-address=localhost"],
        ] {
            let e = parse(args(bad)).unwrap_err();
            assert!(matches!(e, AgentError::Flag(_)), "{bad:?}: {e}");
        }
        assert!(help().contains("--cgroup.root=\"/sys/fs/cgroup\""));
    }
}
