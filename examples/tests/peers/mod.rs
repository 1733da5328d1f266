//! Real peers for end-to-end tests: Debian's prometheus, alertmanager and
//! node_exporter, and our own vigil-monitor, each started on 127.0.0.1 with
//! a temporary directory and stopped by its process id when dropped.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running process we started.
pub struct Peer {
    child: Child,
    /// `127.0.0.1:port` it listens on.
    pub addr: String,
    /// Its working directory (config, data); removed on drop.
    pub dir: tempfile::TempDir,
    name: &'static str,
}

impl Peer {
    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `http://addr`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Sends `signal` to the process (by its id).
    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "kill -{signal} {} ({})", self.pid(), self.name);
    }

    /// Whether it has exited, with its status.
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// What it wrote to stderr so far (it writes to a file in its dir).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback address with a port free right now.
pub fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

fn need(bin: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/local/bin"] {
        let p = Path::new(dir).join(bin);
        if p.exists() {
            return p;
        }
    }
    panic!(
        "{bin} is not installed: scripts/test installs Debian's prometheus, \
         prometheus-alertmanager and prometheus-node-exporter"
    );
}

/// Starts `program` with `args` in a new temp dir, then waits until
/// `ready_path` answers 200 on `addr`.
pub fn start(
    name: &'static str,
    program: &Path,
    args: &[String],
    dir: tempfile::TempDir,
    addr: String,
    ready_path: &str,
) -> Peer {
    let stderr = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
    let child = Command::new(program)
        .args(args)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {name}: {e}"));
    let mut peer = Peer {
        child,
        addr,
        dir,
        name,
    };
    let url = format!("{}{ready_path}", peer.url());
    let start = Instant::now();
    loop {
        if let Some(status) = peer.try_wait() {
            panic!(
                "{name} exited ({status}) before it was ready:\n{}",
                peer.log()
            );
        }
        if get(&url).0 == 200 {
            return peer;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{name} not ready at {url} after 30 s:\n{}",
            peer.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// node_exporter on a free port.
pub fn node_exporter() -> Peer {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let bin = need("prometheus-node-exporter");
    start(
        "node_exporter",
        &bin,
        &[format!("--web.listen-address={addr}")],
        dir,
        addr,
        "/metrics",
    )
}

/// Alertmanager (clustering off) with a config that routes everything to
/// a receiver with no integrations, so alerts are only held and shown.
pub fn alertmanager() -> Peer {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    std::fs::write(
        dir.path().join("alertmanager.yml"),
        "route:\n  receiver: 'null'\n  group_wait: 1s\n  group_interval: 1s\nreceivers:\n- name: 'null'\n",
    )
    .unwrap();
    let bin = need("prometheus-alertmanager");
    let args = vec![
        "--config.file=alertmanager.yml".to_string(),
        "--storage.path=data".to_string(),
        format!("--web.listen-address={addr}"),
        "--cluster.listen-address=".to_string(),
    ];
    start("alertmanager", &bin, &args, dir, addr, "/-/ready")
}

/// A real Prometheus with `config` as its prometheus.yml.
pub fn prometheus(config: &str, extra: &[&str]) -> Peer {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
    let bin = need("prometheus");
    let mut args = vec![
        "--config.file=prometheus.yml".to_string(),
        "--storage.tsdb.path=data".to_string(),
        format!("--web.listen-address={addr}"),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    start("prometheus", &bin, &args, dir, addr, "/-/ready")
}

/// Our vigil-monitor with `config` as its prometheus.yml; `files` are
/// written beside it first (rule files, file_sd targets).
pub fn monitor(config: &str, files: &[(&str, &str)], extra: &[&str]) -> Peer {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_vigil-monitor"));
    let mut args = vec![
        "--config.file=prometheus.yml".to_string(),
        "--storage.tsdb.path=data".to_string(),
        format!("--web.listen-address={addr}"),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    start("vigil-monitor", &bin, &args, dir, addr, "/-/ready")
}

/// GET `url`: status (0 when unreachable) and body.
pub fn get(url: &str) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    match agent.get(url).call() {
        Ok(mut r) => {
            let status = r.status().as_u16();
            (status, r.body_mut().read_to_string().unwrap_or_default())
        }
        Err(_) => (0, String::new()),
    }
}

/// POST `url` with `body` (form-encoded when it has `=`): status and body.
pub fn post(url: &str, body: &str) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    match agent
        .post(url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .send(body)
    {
        Ok(mut r) => {
            let status = r.status().as_u16();
            (status, r.body_mut().read_to_string().unwrap_or_default())
        }
        Err(_) => (0, String::new()),
    }
}

/// GET `url` and parse the JSON body.
pub fn get_json(url: &str) -> serde_json::Value {
    let (status, body) = get(url);
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{url}: {status} {e}: {body}"))
}

/// Polls `f` every 100 ms until it is true, failing after `limit`.
pub fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Percent-encodes a query-string value.
pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
