//! Starting Debian's prometheus-pushgateway and our vigil-pushgateway on
//! 127.0.0.1 with a temporary directory, stopping them by process id, and a
//! raw HTTP helper that does not follow redirects.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A gateway process we started.
pub struct Gateway {
    /// `real` or `ours`.
    pub name: &'static str,
    /// `127.0.0.1:port`.
    pub addr: String,
    /// Its persistence file lives here.
    pub dir: tempfile::TempDir,
    child: Child,
}

/// A loopback address with a port free right now.
pub fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

impl Gateway {
    /// Debian's Pushgateway 1.5.
    pub fn real(extra: &[&str]) -> Gateway {
        let bin = PathBuf::from("/usr/bin/prometheus-pushgateway");
        assert!(
            bin.exists(),
            "prometheus-pushgateway is not installed: scripts/test installs Debian's package"
        );
        Gateway::start("real", bin, tempfile::tempdir().unwrap(), extra)
    }

    /// vigil-pushgateway.
    pub fn ours(extra: &[&str]) -> Gateway {
        Gateway::ours_in(tempfile::tempdir().unwrap(), extra)
    }

    /// vigil-pushgateway with its persistence file in `dir`.
    pub fn ours_in(dir: tempfile::TempDir, extra: &[&str]) -> Gateway {
        let bin = PathBuf::from(env!("CARGO_BIN_EXE_vigil-pushgateway"));
        Gateway::start("ours", bin, dir, extra)
    }

    fn start(name: &'static str, bin: PathBuf, dir: tempfile::TempDir, extra: &[&str]) -> Gateway {
        let addr = free_addr();
        let log = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
        let child = Command::new(&bin)
            .arg(format!("--web.listen-address={addr}"))
            .arg(format!(
                "--persistence.file={}",
                dir.path().join("pg.data").display()
            ))
            .args(extra)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let mut gw = Gateway {
            name,
            addr,
            dir,
            child,
        };
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = gw.child.try_wait() {
                panic!(
                    "{name} exited ({status}) before it was ready:\n{}",
                    gw.log()
                );
            }
            if request(&gw.addr, "GET", "/-/ready", "", b"").0 == 200 {
                return gw;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{name} not ready after 30 s:\n{}",
                gw.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What it wrote to stderr.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    /// Waits for it to exit on its own (panics after `limit`).
    pub fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(
                start.elapsed() < limit,
                "{} still running after {limit:?}",
                self.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM by process id, then waits for it to exit (at most 10 s);
    /// returns its directory.
    pub fn terminate(mut self) -> tempfile::TempDir {
        let ok = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "kill -TERM {}", self.child.id());
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                assert!(
                    status.success(),
                    "{} exited with {status}:\n{}",
                    self.name,
                    self.log()
                );
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{} ignored SIGTERM",
                self.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let dir = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.dir, dir)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request to `http://addr{path}`: status (0 when unreachable) and body.
/// Redirects are not followed.
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let url = format!("http://{addr}{path}");
    let res = match method {
        "GET" => agent.get(&url).call(),
        "DELETE" => agent.delete(&url).call(),
        "PUT" => agent
            .put(&url)
            .header("Content-Type", content_type)
            .send(body),
        "POST" => agent
            .post(&url)
            .header("Content-Type", content_type)
            .send(body),
        other => panic!("method {other} not scripted"),
    };
    match res {
        Ok(mut r) => {
            let status = r.status().as_u16();
            let bytes = r.body_mut().read_to_vec().unwrap_or_default();
            (status, String::from_utf8_lossy(&bytes).into_owned())
        }
        Err(_) => (0, String::new()),
    }
}
