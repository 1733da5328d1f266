//! vigil-demo-app: a small HTTP service instrumented with vigil-exposition
//! that writes an nginx "combined" access log (see
//! `vigil_examples::demoapp`). SIGINT and SIGTERM stop it.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use vigil_examples::demoapp::{Command, DemoApp, help, parse_flags};

fn main() -> ExitCode {
    let opts = match parse_flags(std::env::args().skip(1)) {
        Ok(Command::Run(o)) => o,
        Ok(Command::Help) => {
            print!("{}", help());
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!("vigil-demo-app, version {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("vigil-demo-app: error: {e}");
            return ExitCode::from(2);
        }
    };
    let term = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        if let Err(e) = signal_hook::flag::register(sig, term.clone()) {
            eprintln!("vigil-demo-app: error: installing a signal handler: {e}");
            return ExitCode::from(1);
        }
    }
    let app = match DemoApp::start(opts) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("vigil-demo-app: error: {e}");
            return ExitCode::from(1);
        }
    };
    eprintln!("vigil-demo-app: listening on http://{}", app.addr());
    while !term.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
    }
    app.stop();
    ExitCode::SUCCESS
}
