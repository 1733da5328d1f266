//! `promtool test rules FILE...` on vigil-rules: prints what failed and
//! exits 0 when every test passed, 1 otherwise.
//!
//! `cargo run -p vigil-rules --example promtool_test_rules -- [--run REGEX]... FILE...`

use std::path::Path;
use std::process::ExitCode;

use vigil_rules::rules::{UnitTestOptions, run_unit_tests};

fn main() -> ExitCode {
    let mut opts = UnitTestOptions::default();
    let mut files = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--run" => opts.run.extend(args.next()),
            "--ignore-unknown-fields" => opts.ignore_unknown_fields = true,
            _ => files.push(a),
        }
    }
    let mut ok = true;
    for f in files {
        println!("Unit Testing:  {f}");
        match run_unit_tests(Path::new(&f), &opts) {
            Ok(r) if r.passed() => println!("  SUCCESS\n"),
            Ok(r) => {
                ok = false;
                println!("  FAILED:\n{}\n", r.failures.join("\n"));
            }
            Err(e) => {
                ok = false;
                println!("  FAILED:\n    {e}\n");
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
