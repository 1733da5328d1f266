//! The built-in load generator: requests to the app's own endpoints at a
//! fixed rate, each on a short-lived thread so that a slow answer does not
//! hold back the schedule.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The mix of paths, one per slot: mostly successes, some slow requests,
/// errors and misses so that every series of the dashboards moves.
const MIX: [&str; 10] = [
    "/",
    "/",
    "/api/items",
    "/api/items",
    "/api/items",
    "/api/items?page=2",
    "/api/slow",
    "/api/error",
    "/missing",
    "/api/items",
];

/// Requests in flight at most; beyond it, ticks are skipped (the app is
/// overloaded and adding more would only queue).
const MAX_IN_FLIGHT: usize = 64;

/// A running load generator.
pub(super) struct SelfLoad {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SelfLoad {
    /// Sends `rps` requests per second to `addr`.
    pub(super) fn start(addr: SocketAddr, rps: f64) -> SelfLoad {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("demoapp-selfload".into())
            .spawn(move || run(addr, rps, &flag))
            .ok();
        SelfLoad { stop, thread }
    }

    /// Stops sending (requests already sent finish on their own).
    pub(super) fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(addr: SocketAddr, rps: f64, stop: &AtomicBool) {
    let period = Duration::from_secs_f64(1.0 / rps);
    let in_flight = Arc::new(AtomicUsize::new(0));
    let mut next = Instant::now();
    let mut i = 0usize;
    while !stop.load(Ordering::SeqCst) {
        let now = Instant::now();
        if now < next {
            // Short sleeps keep stop() prompt at low rates.
            std::thread::sleep((next - now).min(Duration::from_millis(100)));
            continue;
        }
        next += period;
        // After a stall, do not fire the missed requests in a burst.
        if next < now {
            next = now + period;
        }
        if in_flight.load(Ordering::SeqCst) >= MAX_IN_FLIGHT {
            continue;
        }
        let path = MIX[i % MIX.len()];
        i += 1;
        in_flight.fetch_add(1, Ordering::SeqCst);
        let counter = Arc::clone(&in_flight);
        let spawned = std::thread::Builder::new()
            .name("demoapp-selfload-request".into())
            .spawn(move || {
                let _ = get(addr, path);
                counter.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            in_flight.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

fn get(addr: SocketAddr, path: &str) -> std::io::Result<()> {
    let mut conn = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: vigil-demo-app-selfload/{}\r\n\
         Connection: close\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    )?;
    let mut sink = Vec::new();
    conn.read_to_end(&mut sink)?;
    Ok(())
}
