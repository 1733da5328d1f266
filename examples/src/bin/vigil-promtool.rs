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

fn check_rules(args: &[String]) -> ExitCode {
    let mut lint = true;
    let mut fatal = false;
    let mut files = Vec::new();
    for a in args {
        match a.as_str() {
            "--lint=none" => lint = false,
            "--lint=duplicate-rules" => lint = true,
            "--lint-fatal" => fatal = true,
            f if !f.starts_with("--") => files.push(f),
            other => {
                eprintln!("vigil-promtool: unknown flag {other}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    if files.is_empty() {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    }
    let mut ok = true;
    for f in files {
        println!("Checking {f}");
        let text = match std::fs::read_to_string(f) {
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
                parse_legacy(&text, f).map(|g| vec![g]).map_err(|_| e)
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
    let mut files = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--run" => opts.run.extend(it.next().cloned()),
            "--ignore-unknown-fields" => opts.ignore_unknown_fields = true,
            f if !f.starts_with("--") => files.push(f.to_owned()),
            other => {
                eprintln!("vigil-promtool: unknown flag {other}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    if files.is_empty() {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
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
