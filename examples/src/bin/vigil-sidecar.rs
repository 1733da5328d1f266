//! vigil-sidecar: runs a fluent-bit classic configuration with
//! vigil-logpipe until SIGINT or SIGTERM, then flushes and exits.
//!
//! ```text
//! vigil-sidecar -c fluent-bit.conf        run it
//! vigil-sidecar -c fluent-bit.conf --dry-run   check it and exit
//! ```
//!
//! Exit status: 0 after a clean stop, 1 on a configuration or runtime
//! error (the message names the file and line), 2 on bad arguments.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use vigil_logpipe::config;
use vigil_logpipe::engine::Pipeline;

const USAGE: &str = "usage: vigil-sidecar -c FILE [--dry-run]";

fn main() {
    let mut args = std::env::args().skip(1);
    let mut conf: Option<PathBuf> = None;
    let mut dry_run = false;
    while let Some(a) = args.next() {
        match a.as_str() {
            "-c" | "--config" => match args.next() {
                Some(v) => conf = Some(PathBuf::from(v)),
                None => usage_error("-c needs a file"),
            },
            "--dry-run" | "-D" => dry_run = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return;
            }
            other => match other.strip_prefix("--config=") {
                Some(v) => conf = Some(PathBuf::from(v)),
                None => usage_error(&format!("unknown argument {other:?}")),
            },
        }
    }
    let Some(conf) = conf else {
        usage_error("no configuration file (-c FILE)");
    };
    let cfg = match config::load(&conf) {
        Ok(c) => c,
        Err(e) => fail(&e.to_string()),
    };
    for w in &cfg.warnings {
        eprintln!("vigil-sidecar: warning: {w}");
    }
    let pipeline = match Pipeline::from_config(cfg) {
        Ok(p) => p,
        Err(e) => fail(&e.to_string()),
    };
    if dry_run {
        println!("configuration test is successful");
        return;
    }
    let stop = pipeline.stop_handle();
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(sig, flag.clone()) {
            fail(&format!("cannot install the signal handler: {e}"));
        }
    }
    std::thread::spawn(move || {
        while !flag.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
        }
        stop.stop();
    });
    if let Err(e) = pipeline.run() {
        fail(&e.to_string());
    }
}

fn usage_error(msg: &str) -> ! {
    eprintln!("vigil-sidecar: {msg}\n{USAGE}");
    std::process::exit(2);
}

fn fail(msg: &str) -> ! {
    eprintln!("vigil-sidecar: {msg}");
    std::process::exit(1);
}
