//! Shared pieces of the integration tests: a writer of numbered lines with
//! rotation, a tally of what arrived, an in-process pipeline, a child
//! process pipeline (for kill -9 and RSS), and a small HTTP server on
//! 127.0.0.1 that can go down and come back.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use vigil_logpipe::config;
use vigil_logpipe::engine::{Pipeline, StopHandle};

/// How the writer rotates its file every second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    None,
    /// `mv app.log app.log.N` then a new `app.log`.
    Rename,
    /// `cp app.log app.log.N` then truncate `app.log` (the writer pauses
    /// meanwhile, so the rotation itself loses nothing, as logrotate's
    /// copytruncate would not promise).
    CopyTruncate,
}

/// Writes `seq=NNNNNNNNN ...` lines at `rate` per second for `secs`.
pub struct Writer {
    handle: JoinHandle<u64>,
    pub written: Arc<AtomicU64>,
}

pub fn line(seq: u64) -> String {
    format!("seq={seq:09} the quick brown fox jumps over the lazy dog\n")
}

impl Writer {
    pub fn start(path: &Path, rate: u64, secs: f64, rotation: Rotation) -> Writer {
        let path = path.to_path_buf();
        let written = Arc::new(AtomicU64::new(0));
        let w = written.clone();
        let handle = std::thread::spawn(move || {
            let open = |p: &Path| {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .unwrap()
            };
            let mut f = open(&path);
            let start = Instant::now();
            let mut seq = 0u64;
            let mut next_rotation = 1.0;
            let mut rotations = 0;
            let mut buf = String::new();
            loop {
                let t = start.elapsed().as_secs_f64();
                if t >= secs {
                    break;
                }
                if rotation != Rotation::None && t >= next_rotation {
                    next_rotation += 1.0;
                    rotations += 1;
                    let rotated = path.with_extension(format!("log.{rotations}"));
                    match rotation {
                        Rotation::Rename => {
                            std::fs::rename(&path, &rotated).unwrap();
                            f = open(&path);
                        }
                        Rotation::CopyTruncate => {
                            std::fs::copy(&path, &rotated).unwrap();
                            f.set_len(0).unwrap();
                        }
                        Rotation::None => {}
                    }
                }
                let due = ((t * rate as f64) as u64).max(seq);
                buf.clear();
                while seq < due {
                    buf.push_str(&line(seq));
                    seq += 1;
                }
                f.write_all(buf.as_bytes()).unwrap();
                w.store(seq, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(5));
            }
            seq
        });
        Writer { handle, written }
    }

    /// Waits for the end; the number of lines written.
    pub fn join(self) -> u64 {
        self.handle.join().unwrap()
    }
}

/// What arrived, against what was written.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    pub expected: u64,
    pub arrived: u64,
    pub unique: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub unexpected: u64,
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "expected {} arrived {} unique {} lost {} duplicates {} unexpected {}",
            self.expected, self.arrived, self.unique, self.lost, self.duplicates, self.unexpected
        )
    }
}

/// Counts every `seq=NNNNNNNNN` (exactly nine digits) in `text`.
pub fn count_into(text: &[u8], counts: &mut HashMap<u64, u32>) {
    let mut i = 0;
    while let Some(p) = memchr::memmem::find(&text[i..], b"seq=") {
        let at = i + p + 4;
        i = at;
        if text.len() < at + 9 {
            break;
        }
        let digits = &text[at..at + 9];
        if digits.iter().all(u8::is_ascii_digit)
            && text.get(at + 9).is_none_or(|c| !c.is_ascii_digit())
        {
            let n = std::str::from_utf8(digits).unwrap().parse().unwrap();
            *counts.entry(n).or_default() += 1;
        }
    }
}

pub fn tally(counts: &HashMap<u64, u32>, expected: u64) -> Tally {
    let mut t = Tally {
        expected,
        ..Tally::default()
    };
    for (&seq, &n) in counts {
        t.arrived += u64::from(n);
        if seq >= expected {
            t.unexpected += 1;
            continue;
        }
        t.unique += 1;
        t.duplicates += u64::from(n - 1);
    }
    t.lost = expected - t.unique;
    t
}

/// Reads every file in `dir` whose name starts with `prefix` and tallies.
pub fn tally_files(dir: &Path, prefix: &str, expected: u64) -> Tally {
    let mut counts = HashMap::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.file_name().to_string_lossy().starts_with(prefix) {
            count_into(&std::fs::read(e.path()).unwrap(), &mut counts);
        }
    }
    tally(&counts, expected)
}

/// Polls `f` until it is true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    f()
}

/// A pipeline running on a thread of this process.
pub struct Running {
    pub stop: StopHandle,
    handle: JoinHandle<vigil_logpipe::Result<()>>,
    pub metrics: Arc<vigil_logpipe::metrics::Metrics>,
}

impl Running {
    pub fn start(conf: &str, dir: &Path) -> Running {
        let cfg = config::parse_str(conf, &dir.join("fluent-bit.conf")).unwrap();
        let p = Pipeline::from_config(cfg).unwrap();
        let stop = p.stop_handle();
        let metrics = p.metrics();
        let handle = std::thread::spawn(move || p.run());
        Running {
            stop,
            handle,
            metrics,
        }
    }

    pub fn stop(self) {
        self.stop.stop();
        self.handle.join().unwrap().unwrap();
    }
}

/// Runs the pipeline of `VIGIL_LP_CHILD_CONF` in this process until the file
/// `VIGIL_LP_CHILD_STOP` appears; does nothing without those variables (so
/// that the test that calls it passes in a normal run).
pub fn child_main() {
    let (Ok(conf), Ok(stop_file)) = (
        std::env::var("VIGIL_LP_CHILD_CONF"),
        std::env::var("VIGIL_LP_CHILD_STOP"),
    ) else {
        return;
    };
    let cfg = config::load(Path::new(&conf)).unwrap();
    let p = Pipeline::from_config(cfg).unwrap();
    let stop = p.stop_handle();
    std::thread::spawn(move || {
        while !Path::new(&stop_file).exists() {
            std::thread::sleep(Duration::from_millis(20));
        }
        stop.stop();
    });
    p.run().unwrap();
}

/// Starts this test binary again as a child running `test_name` with the
/// configuration file `conf`; it stops when `stop_file` exists.
pub fn spawn_child(test_name: &str, conf: &Path, stop_file: &Path) -> std::process::Child {
    std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test_name, "--nocapture", "--test-threads=1"])
        .env("VIGIL_LP_CHILD_CONF", conf)
        .env("VIGIL_LP_CHILD_STOP", stop_file)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// Resident set size of a process, in bytes (from /proc).
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Request paths and bodies received.
pub type Bodies = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A minimal HTTP/1.1 server on 127.0.0.1 that keeps every request body.
/// `set_down(true)` closes the listener and every connection (the
/// destination is gone: connections are refused); `set_down(false)` binds
/// the same port again.
pub struct TestServer {
    pub port: u16,
    pub bodies: Bodies,
    down: Arc<AtomicBool>,
    delay: Arc<Mutex<Duration>>,
    status: Arc<Mutex<u16>>,
    response: Arc<Mutex<String>>,
    accept: Option<JoinHandle<()>>,
    generation: Arc<AtomicU64>,
    counted: Mutex<(usize, HashMap<u64, u32>)>,
}

impl TestServer {
    pub fn start() -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut s = TestServer {
            port,
            bodies: Arc::default(),
            down: Arc::default(),
            delay: Arc::default(),
            status: Arc::new(Mutex::new(200)),
            response: Arc::new(Mutex::new(String::new())),
            accept: None,
            generation: Arc::default(),
            counted: Mutex::default(),
        };
        s.spawn_accept(listener);
        s
    }

    /// Every response waits this long first (a slow destination).
    pub fn set_delay(&self, d: Duration) {
        *self.delay.lock().unwrap() = d;
    }

    pub fn set_status(&self, status: u16) {
        *self.status.lock().unwrap() = status;
    }

    pub fn set_response(&self, body: &str) {
        *self.response.lock().unwrap() = body.to_owned();
    }

    fn spawn_accept(&mut self, listener: TcpListener) {
        listener.set_nonblocking(true).unwrap();
        let bodies = self.bodies.clone();
        let down = self.down.clone();
        let delay = self.delay.clone();
        let status = self.status.clone();
        let response = self.response.clone();
        let generation = self.generation.clone();
        let my_gen = generation.load(Ordering::SeqCst);
        self.accept = Some(std::thread::spawn(move || {
            while !down.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let bodies = bodies.clone();
                        let generation = generation.clone();
                        let delay = delay.clone();
                        let status = status.clone();
                        let response = response.clone();
                        std::thread::spawn(move || {
                            let _ =
                                serve(conn, bodies, my_gen, generation, delay, status, response);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        }));
    }

    pub fn set_down(&mut self, down: bool) {
        if down {
            self.generation.fetch_add(1, Ordering::SeqCst);
            self.down.store(true, Ordering::SeqCst);
            if let Some(h) = self.accept.take() {
                h.join().unwrap();
            }
        } else {
            self.down.store(false, Ordering::SeqCst);
            let listener = loop {
                match TcpListener::bind(("127.0.0.1", self.port)) {
                    Ok(l) => break l,
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            };
            self.spawn_accept(listener);
        }
    }

    /// Tally of the sequence numbers in every body received (counted once
    /// per body: polling it does not slow the server down more and more).
    pub fn tally(&self, expected: u64) -> Tally {
        let mut cache = self.counted.lock().unwrap();
        let new: Vec<Vec<u8>> = {
            let bodies = self.bodies.lock().unwrap();
            bodies[cache.0..].iter().map(|(_, b)| b.clone()).collect()
        };
        cache.0 += new.len();
        for b in &new {
            count_into(b, &mut cache.1);
        }
        tally(&cache.1, expected)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.set_down(true);
    }
}

fn serve(
    conn: TcpStream,
    bodies: Bodies,
    my_gen: u64,
    generation: Arc<AtomicU64>,
    delay: Arc<Mutex<Duration>>,
    status: Arc<Mutex<u16>>,
    response: Arc<Mutex<String>>,
) -> std::io::Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(Duration::from_millis(100)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut out = conn;
    loop {
        let mut request_line = String::new();
        loop {
            if generation.load(Ordering::SeqCst) != my_gen {
                return Ok(());
            }
            match reader.read_line(&mut request_line) {
                Ok(0) => return Ok(()),
                Ok(_) => break,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(e),
            }
        }
        out.set_read_timeout(None)?;
        let mut len = 0usize;
        let mut gzip = false;
        loop {
            let mut h = String::new();
            reader.read_line(&mut h)?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let lower = h.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            }
            if lower.starts_with("content-encoding:") && lower.contains("gzip") {
                gzip = true;
            }
        }
        let mut body = vec![0u8; len];
        reader.read_exact(&mut body)?;
        if gzip {
            let mut d = flate2::read::GzDecoder::new(&body[..]);
            let mut plain = Vec::new();
            d.read_to_end(&mut plain)?;
            body = plain;
        }
        let d = *delay.lock().unwrap();
        std::thread::sleep(d);
        if generation.load(Ordering::SeqCst) != my_gen {
            // Went down while handling: the client sees a reset, nothing kept.
            return Ok(());
        }
        let code = *status.lock().unwrap();
        if (200..300).contains(&code) {
            let path = request_line
                .split_whitespace()
                .nth(1)
                .unwrap_or("")
                .to_owned();
            bodies.lock().unwrap().push((path, body));
        }
        let resp = response.lock().unwrap().clone();
        write!(
            out,
            "HTTP/1.1 {code} X\r\nContent-Length: {}\r\nContent-Type: application/json\r\n\r\n{resp}",
            resp.len()
        )?;
        out.flush()?;
        out.set_read_timeout(Some(Duration::from_millis(100)))?;
    }
}

/// A temporary directory and paths in it.
pub fn dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

pub fn p(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

pub fn path_in(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

/// Loss tests (a) and (b): a writer at 50,000 lines/s rotates the file
/// every second with `rotation` while a tail → file pipeline reads it; every
/// line must arrive exactly once. `label` names the run in the output.
pub fn rotation_loss_run(secs: f64, rotation: Rotation, label: &str) {
    let d = dir();
    let root = d.path();
    std::fs::create_dir(root.join("out")).unwrap();
    let log = root.join("app.log");
    std::fs::write(&log, "").unwrap();
    let conf = format!(
        "[SERVICE]\n    Flush 0.2\n    Grace 10\n\
         [INPUT]\n    Name tail\n    Path {}\n    Read_From_Head On\n    Refresh_Interval 1\n    Rotate_Wait 5\n    Mem_Buf_Limit 32MB\n\
         [OUTPUT]\n    Name file\n    Match *\n    Path {}\n    File out.jsonl\n    Format plain\n",
        p(&log),
        p(&root.join("out"))
    );
    let running = Running::start(&conf, root);
    let writer = Writer::start(&log, 50_000, secs, rotation);
    let n = writer.join();
    let out = root.join("out");
    wait_until(Duration::from_secs(60), || {
        tally_files(&out, "out", n).unique == n
    });
    running.stop();
    let t = tally_files(&out, "out", n);
    println!("{label}, {secs} s: {t}");
    assert!(n as f64 >= 50_000.0 * secs * 0.9, "writer too slow: {n}");
    assert_eq!(t.lost, 0, "{t}");
    assert_eq!(t.duplicates, 0, "{t}");
    assert_eq!(t.unexpected, 0, "{t}");
}
