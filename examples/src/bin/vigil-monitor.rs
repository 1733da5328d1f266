//! vigil-monitor: the Prometheus-compatible monitoring server.
//!
//! `vigil-monitor --config.file=prometheus.yml --storage.tsdb.path=data/`
//! scrapes the configured targets into a vigil-tsdb store, evaluates the
//! rule files, sends alerts to Alertmanager and serves Prometheus's HTTP
//! API on `--web.listen-address` (default 127.0.0.1:9090). SIGHUP or
//! `POST /-/reload` (with `--web.enable-lifecycle`) reloads the
//! configuration; SIGINT and SIGTERM stop it cleanly.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use vigil_examples::monitor::api::{self, ApiOptions};
use vigil_examples::monitor::flags::{self, Command};
use vigil_examples::monitor::server::Monitor;

fn main() -> ExitCode {
    let flags = match flags::parse(std::env::args().skip(1)) {
        Ok(Command::Run(f)) => *f,
        Ok(Command::Help) => {
            print!("{}", flags::help());
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!(
                "vigil-monitor, version {} (Prometheus-compatible API)",
                env!("CARGO_PKG_VERSION")
            );
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("vigil-monitor: error: {e}");
            return ExitCode::from(1);
        }
    };
    let hup = Arc::new(AtomicBool::new(false));
    let term = Arc::new(AtomicBool::new(false));
    for (sig, flag) in [
        (signal_hook::consts::SIGHUP, &hup),
        (signal_hook::consts::SIGTERM, &term),
        (signal_hook::consts::SIGINT, &term),
    ] {
        if let Err(e) = signal_hook::flag::register(sig, flag.clone()) {
            eprintln!("vigil-monitor: error: installing a signal handler: {e}");
            return ExitCode::from(1);
        }
    }
    let monitor = match Monitor::start(flags.clone()) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("level=error msg=\"error loading config or starting\" err=\"{e}\"");
            return ExitCode::from(1);
        }
    };
    let config = monitor.config();
    let opts = ApiOptions {
        listen: flags.listen,
        enable_lifecycle: flags.enable_lifecycle,
        enable_admin_api: flags.enable_admin_api,
        enable_remote_write_receiver: flags.enable_remote_write_receiver,
        max_samples: flags.query_max_samples,
        query_timeout: flags.query_timeout,
        max_concurrency: flags.query_max_concurrency,
        lookback_delta: flags.lookback_delta,
        snapshot_dir: flags.storage_path.join("snapshots"),
        external_labels: config.global.external_labels.clone(),
        registry: monitor.registry().clone(),
        ..ApiOptions::default()
    };
    let server = match api::serve(opts, monitor.clone()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "level=error msg=\"cannot listen\" address={} err=\"{e}\"",
                flags.listen
            );
            monitor.shutdown();
            return ExitCode::from(1);
        }
    };
    eprintln!(
        "level=info msg=\"Server is ready to receive web requests.\" address={}",
        server.addr()
    );
    loop {
        if monitor.wait_quit(Duration::from_millis(200)) || term.load(Ordering::Relaxed) {
            break;
        }
        if hup.swap(false, Ordering::Relaxed) {
            match monitor.reload() {
                Ok(()) => eprintln!("level=info msg=\"Completed loading of configuration file\""),
                Err(e) => eprintln!(
                    "level=error msg=\"Error reloading config\" err=\"{}\"",
                    e.replace('"', "'")
                ),
            }
        }
    }
    eprintln!("level=info msg=\"Stopping\"");
    server.stop();
    monitor.shutdown();
    ExitCode::SUCCESS
}
