//! vigil-pushgateway: the Prometheus Pushgateway's HTTP API for short-lived
//! jobs (see `vigil_examples::pushgateway`).
//!
//! `vigil-pushgateway --persistence.file=pg.data` serves on
//! `--web.listen-address` (default 127.0.0.1:9091); SIGINT, SIGTERM and
//! `/-/quit` (with `--web.enable-lifecycle`) stop it after writing the
//! persistence file.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use vigil_examples::pushgateway::{Command, Pushgateway, help, parse_flags};

fn main() -> ExitCode {
    let opts = match parse_flags(std::env::args().skip(1)) {
        Ok(Command::Run(o)) => *o,
        Ok(Command::Help) => {
            print!("{}", help());
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!("vigil-pushgateway, version {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("vigil-pushgateway: error: {e}");
            return ExitCode::from(2);
        }
    };
    let term = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        if let Err(e) = signal_hook::flag::register(sig, term.clone()) {
            eprintln!("vigil-pushgateway: error: installing a signal handler: {e}");
            return ExitCode::from(1);
        }
    }
    let gw = match Pushgateway::start(opts) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("vigil-pushgateway: error: {e}");
            return ExitCode::from(1);
        }
    };
    eprintln!("vigil-pushgateway: listening on http://{}", gw.addr());
    while !term.load(Ordering::SeqCst) && !gw.quit_requested() {
        std::thread::sleep(Duration::from_millis(100));
    }
    match gw.stop() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vigil-pushgateway: error: {e}");
            ExitCode::from(1)
        }
    }
}
