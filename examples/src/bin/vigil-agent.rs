//! vigil-agent: host metrics with node_exporter's names, container metrics
//! from cgroups (v1 and v2) with cAdvisor's names, and the kubelet Summary
//! API shape at `/stats/summary`.
//!
//! `vigil-agent --web.listen-address=127.0.0.1:9100` serves `/metrics`
//! (text or OpenMetrics by the `Accept` header), `/stats/summary` and
//! `/-/healthy`; `--help` lists every flag. SIGINT and SIGTERM stop it.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use vigil_examples::agent::Agent;
use vigil_examples::agent::server::{self, Command};

fn main() -> ExitCode {
    let flags = match server::parse(std::env::args().skip(1)) {
        Ok(Command::Run(f)) => *f,
        Ok(Command::Help) => {
            print!("{}", server::help());
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!("vigil-agent, version {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("vigil-agent: error: {e} (see --help)");
            return ExitCode::from(1);
        }
    };
    let term = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        if let Err(e) = signal_hook::flag::register(sig, Arc::clone(&term)) {
            eprintln!("vigil-agent: error: installing a signal handler: {e}");
            return ExitCode::from(1);
        }
    }
    let agent = Arc::new(Agent::new(flags.agent.clone()));
    let srv = match server::serve(agent, &flags) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("vigil-agent: error: {e}");
            return ExitCode::from(1);
        }
    };
    eprintln!(
        "vigil-agent: listening on http://{} ({}, /stats/summary, /-/healthy)",
        srv.addr(),
        flags.telemetry_path
    );
    while !term.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
    }
    srv.stop();
    ExitCode::SUCCESS
}
