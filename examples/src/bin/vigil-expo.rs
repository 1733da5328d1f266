//! `vigil-expo check [--strict] --openmetrics|--text FILE`: checks that an
//! exposition parses. Exit status 0 when it does, 1 with the error (line,
//! column, what was expected) when it does not, 2 on a usage error. `FILE` may
//! be `-` for standard input.

use std::io::Read;
use std::process::ExitCode;

use vigil_exposition::Format;
use vigil_exposition::parse::{Entry, Mode, Parser};

const USAGE: &str = "usage: vigil-expo check [--strict] --openmetrics|--text FILE";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) != Some("check") {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    }
    let mut strict = false;
    let mut format = None;
    let mut file = None;
    for a in &args[1..] {
        match a.as_str() {
            "--strict" => strict = true,
            "--openmetrics" => format = Some(Format::OpenMetrics),
            "--text" => format = Some(Format::Text),
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            f if file.is_none() && (f == "-" || !f.starts_with('-')) => file = Some(f.to_owned()),
            other => {
                eprintln!("vigil-expo: unexpected argument {other:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let (Some(format), Some(file)) = (format, file) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let input = if file == "-" {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf).map(|_| buf)
    } else {
        std::fs::read(&file)
    };
    let input = match input {
        Ok(b) => b,
        Err(e) => {
            eprintln!("vigil-expo: {file}: {e}");
            return ExitCode::from(2);
        }
    };
    let mode = if strict { Mode::Strict } else { Mode::Scrape };
    let (mut families, mut samples) = (0usize, 0usize);
    for entry in Parser::with_mode(&input, format, mode) {
        match entry {
            Ok(Entry::Type { .. }) => families += 1,
            Ok(Entry::Sample(_)) => samples += 1,
            Ok(_) => {}
            Err(e) => {
                eprintln!("{file}: {e}");
                return ExitCode::from(1);
            }
        }
    }
    println!("{file}: ok ({samples} samples, {families} TYPE lines)");
    ExitCode::SUCCESS
}
