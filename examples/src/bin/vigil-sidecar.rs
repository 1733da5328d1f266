//! vigil-sidecar: runs a fluent-bit classic configuration with
//! vigil-logpipe, with fluent-bit's HTTP server beside it (`/metrics` with
//! the pipeline's counters, `/api/v1/health`), until SIGINT or SIGTERM;
//! SIGHUP reloads the configuration (a broken one is refused and the
//! running pipeline keeps going).
//!
//! ```text
//! vigil-sidecar -c fluent-bit.conf                      run it
//! vigil-sidecar -c fluent-bit.conf --dry-run            check it and exit
//! vigil-sidecar -c fluent-bit.conf --web.listen-address=127.0.0.1:2020
//! ```
//!
//! Exit status: 0 after a clean stop, 1 on a configuration or runtime
//! error (the message names the file and line), 2 on bad arguments.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use vigil_examples::stack::sidecar::Sidecar;
use vigil_logpipe::config;
use vigil_logpipe::engine::Pipeline;

const USAGE: &str = "usage: vigil-sidecar -c FILE [--dry-run] [--web.listen-address=ADDR]

Runs a fluent-bit classic configuration with vigil-logpipe.

Flags:
  -h, --help                 Show this help.
  -c, --config FILE          The configuration file (required).
  -D, --dry-run              Check the configuration and exit.
      --web.listen-address   Where /metrics and /api/v1/health are served
                             (default 127.0.0.1:2020, fluent-bit's HTTP port).

Signals: SIGHUP reloads the configuration; SIGINT and SIGTERM stop after the
outputs deliver what is buffered and the offsets are checkpointed.";

fn main() {
    let mut args = std::env::args().skip(1);
    let mut conf: Option<PathBuf> = None;
    let mut dry_run = false;
    let mut listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 2020));
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
            other => {
                if let Some(v) = other.strip_prefix("--config=") {
                    conf = Some(PathBuf::from(v));
                } else if let Some(v) = other.strip_prefix("--web.listen-address=") {
                    listen = v
                        .parse()
                        .unwrap_or_else(|_| usage_error(&format!("invalid address {v:?}")));
                } else {
                    usage_error(&format!("unknown argument {other:?}"));
                }
            }
        }
    }
    let Some(conf) = conf else {
        usage_error("no configuration file (-c FILE)");
    };
    if dry_run {
        let cfg = config::load(&conf).unwrap_or_else(|e| fail(&e.to_string()));
        for w in &cfg.warnings {
            eprintln!("vigil-sidecar: warning: {w}");
        }
        if let Err(e) = Pipeline::from_config(cfg) {
            fail(&e.to_string());
        }
        println!("configuration test is successful");
        return;
    }
    let term = Arc::new(AtomicBool::new(false));
    let hup = Arc::new(AtomicBool::new(false));
    for (sig, flag) in [
        (signal_hook::consts::SIGINT, &term),
        (signal_hook::consts::SIGTERM, &term),
        (signal_hook::consts::SIGHUP, &hup),
    ] {
        if let Err(e) = signal_hook::flag::register(sig, flag.clone()) {
            fail(&format!("cannot install the signal handler: {e}"));
        }
    }
    let running = Sidecar::start(&conf, listen).unwrap_or_else(|e| fail(&e));
    eprintln!(
        "vigil-sidecar: running {} (http://{listen}/metrics)",
        conf.display()
    );
    while !term.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        if hup.swap(false, Ordering::Relaxed) {
            // A broken configuration is refused before anything stops; a
            // good one replaces the pipeline (the HTTP server stays).
            match running.reload(&conf) {
                Ok(()) => eprintln!("vigil-sidecar: configuration reloaded"),
                Err(e) if running.is_running() => eprintln!(
                    "vigil-sidecar: reload refused, still running the old configuration: {e}"
                ),
                Err(e) => eprintln!("vigil-sidecar: reload failed, the pipeline stopped: {e}"),
            }
        }
        if !running.is_running() {
            // The pipeline ended on its own (Exit_On_Eof, or an error it
            // already printed).
            break;
        }
    }
    if let Err(e) = running.stop() {
        fail(&e);
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
