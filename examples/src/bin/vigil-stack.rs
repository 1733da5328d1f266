//! vigil-stack: the whole Vigil system in one process, on an embedded
//! default configuration — the monitor on 127.0.0.1:9090 scraping the
//! agent, the pushgateway, the demo app, the sidecar and itself, with the
//! seed's alert rule; the sidecar shipping the demo app's parsed access
//! log. Prints the URLs, a status line every 10 s, and stops cleanly on
//! Ctrl-C (SIGINT) or SIGTERM.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use vigil_examples::stack::{self, Stack};

fn main() -> ExitCode {
    let opts = match stack::parse_args(std::env::args().skip(1)) {
        Ok(Some(o)) => o,
        Ok(None) => {
            print!("{}", stack::help());
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("vigil-stack: error: {e}");
            return ExitCode::from(2);
        }
    };
    let term = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(sig, term.clone()) {
            eprintln!("vigil-stack: error: installing a signal handler: {e}");
            return ExitCode::from(1);
        }
    }
    let s = match Stack::start(opts) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("vigil-stack: error: {e}");
            return ExitCode::from(1);
        }
    };
    println!("{}", s.banner());
    let mut last = Instant::now();
    while !stack::raised(&term) {
        std::thread::sleep(Duration::from_millis(100));
        if last.elapsed() >= Duration::from_secs(10) {
            last = Instant::now();
            println!("{}", s.status_line());
        }
    }
    println!("stopping…");
    match s.stop() {
        Ok(()) => {
            println!("stopped cleanly (store checkpointed, log offsets saved)");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("vigil-stack: error while stopping: {e}");
            ExitCode::from(1)
        }
    }
}
