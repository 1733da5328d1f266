//! `vigil-promtool`: the parts of promtool Vigil provides, with promtool's
//! exit codes (0: fine, 1: a failure or a problem found, 2: a usage error).
//!
//! - `vigil-promtool check rules [--lint=none|duplicate-rules] [--lint-fatal] FILE...`:
//!   loads Prometheus YAML rule files (or the legacy 1.x `ALERT` syntax when
//!   the file is not YAML), strictly, and reports the rule count or the
//!   error with its line and column; duplicate rules are warnings (an error
//!   with `--lint-fatal`), as in promtool.
//! - `vigil-promtool test rules [--run REGEX]... FILE...`: runs rule unit
//!   tests in promtool's format.

use std::path::Path;
use std::process::ExitCode;

use vigil_rules::rules::{
    LoadOptions, UnitTestOptions, duplicate_rules, load_yaml, parse_legacy, run_unit_tests,
};

const USAGE: &str = "usage: vigil-promtool check rules [--lint=none|duplicate-rules] [--lint-fatal] FILE...\n       vigil-promtool test rules [--run REGEX]... FILE...";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match (
        args.first().map(String::as_str),
        args.get(1).map(String::as_str),
    ) {
        (Some("check"), Some("rules")) => check_rules(&args[2..]),
        (Some("test"), Some("rules")) => test_rules(&args[2..]),
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// Splits arguments into files and flags; `flag` handles a flag (it may
/// take the next argument as its value) and returns false for an unknown
/// one. A usage error (unknown flag, no file) is exit status 2.
fn files_and_flags(
    args: &[String],
    mut flag: impl FnMut(&str, &mut dyn FnMut() -> Option<String>) -> bool,
) -> Result<Vec<String>, ExitCode> {
    let mut files = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if !a.starts_with("--") {
            files.push(a.clone());
        } else if !flag(a, &mut || it.next().cloned()) {
            eprintln!("vigil-promtool: unknown flag {a}\n{USAGE}");
            return Err(ExitCode::from(2));
        }
    }
    if files.is_empty() {
        eprintln!("{USAGE}");
        return Err(ExitCode::from(2));
    }
    Ok(files)
}

fn check_rules(args: &[String]) -> ExitCode {
    let mut lint = true;
    let mut fatal = false;
    let files = match files_and_flags(args, |flag, _| match flag {
        "--lint=none" => {
            lint = false;
            true
        }
        "--lint=duplicate-rules" => {
            lint = true;
            true
        }
        "--lint-fatal" => {
            fatal = true;
            true
        }
        _ => false,
    }) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let mut ok = true;
    for f in files {
        println!("Checking {f}");
        let text = match std::fs::read_to_string(&f) {
            Ok(t) => t,
            Err(e) => {
                println!("  FAILED:\n{f}: {e}\n");
                ok = false;
                continue;
            }
        };
        // The legacy syntax is not YAML; try it when the file says ALERT.
        let loaded = match load_yaml(&text, LoadOptions::default()) {
            Err(e) if text.trim_start().starts_with("ALERT") || text.contains("\nALERT ") => {
                parse_legacy(&text, &f).map(|g| vec![g]).map_err(|_| e)
            }
            other => other,
        };
        match loaded {
            Ok(groups) => {
                let rules: usize = groups.iter().map(|g| g.rules.len()).sum();
                println!("  SUCCESS: {rules} rules found");
                let dups = if lint {
                    duplicate_rules(&groups)
                } else {
                    Vec::new()
                };
                if !dups.is_empty() {
                    println!("  WARNING: {} duplicate rule(s) found.", dups.len());
                    for (name, labels) in &dups {
                        println!("  Metric: {name}\n  Label(s): {labels:?}");
                    }
                    println!("  Might cause inconsistency while recording expressions.");
                    ok &= !fatal;
                }
                println!();
            }
            Err(e) => {
                println!("  FAILED:\n{f}: {e}\n");
                ok = false;
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn test_rules(args: &[String]) -> ExitCode {
    let mut opts = UnitTestOptions::default();
    let files = match files_and_flags(args, |flag, next| match flag {
        "--run" => {
            opts.run.extend(next());
            true
        }
        "--ignore-unknown-fields" => {
            opts.ignore_unknown_fields = true;
            true
        }
        _ => false,
    }) {
        Ok(f) => f,
        Err(code) => return code,
    };
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
