//! Golden files: every line of `tests/golden/<name>.in` through parser
//! `<name>` gives the line of `tests/golden/<name>.out` (JSON: the time in
//! nanoseconds and the record, or the error). `UPDATE_GOLDEN=1 cargo test`
//! rewrites the `.out` files; review the diff before committing it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use vigil_logpipe::config;
use vigil_logpipe::json::{write_str, write_value};
use vigil_logpipe::parser::{CriJoiner, Multiline, Parsed, Parsers};
use vigil_logpipe::{Result, Value};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn input(name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(golden_dir().join(format!("{name}.in"))).unwrap();
    text.lines().map(str::to_owned).collect()
}

fn show(r: Result<Parsed>) -> String {
    let mut out = String::new();
    match r {
        Ok(p) => {
            out.push_str("{\"time\":");
            match p.time_ns {
                Some(t) => out.push_str(&t.to_string()),
                None => out.push_str("null"),
            }
            out.push_str(",\"record\":");
            write_value(&mut out, &Value::Map(p.fields));
            out.push('}');
        }
        Err(e) => {
            out.push_str("{\"error\":");
            write_str(&mut out, &e.to_string());
            out.push('}');
        }
    }
    out
}

fn check(name: &str, got: Vec<String>) {
    let path = golden_dir().join(format!("{name}.out"));
    let mut text = got.join("\n");
    text.push('\n');
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with UPDATE_GOLDEN=1 to create)",
            path.display()
        )
    });
    for (i, (g, w)) in text.lines().zip(want.lines()).enumerate() {
        assert_eq!(g, w, "{name}: line {} differs", i + 1);
    }
    assert_eq!(
        text.lines().count(),
        want.lines().count(),
        "{name}: line count"
    );
}

fn run_parser(parsers: &Parsers, parser: &str, file: &str) {
    let p = parsers.get(parser).unwrap();
    let got = input(file).iter().map(|l| show(p.parse(l))).collect();
    check(file, got);
}

#[test]
fn builtin_parsers() {
    let ps = Parsers::builtin();
    for name in [
        "nginx",
        "json",
        "docker",
        "cri",
        "logfmt",
        "ltsv",
        "syslog-rfc5424",
    ] {
        run_parser(&ps, name, name);
    }
}

#[test]
fn seed_timing_parser() {
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seed003/fluent-bit.conf");
    let cfg = config::load(&fixture).unwrap();
    let ps = Parsers::from_config(&cfg).unwrap();
    run_parser(&ps, "Timing", "timing");
}

#[test]
fn cri_joiner() {
    let mut j = CriJoiner::new();
    let mut got = Vec::new();
    for l in input("cri") {
        match j.push(&l) {
            Ok(Some(p)) => got.push(show(Ok(p))),
            Ok(None) => got.push("(pending)".into()),
            Err(e) => got.push(show(Err(e))),
        }
    }
    got.extend(j.flush().into_iter().map(|p| show(Ok(p))));
    check("cri.join", got);
}

#[test]
fn java_multiline() {
    let spec = Parsers::builtin().multiline("java").unwrap();
    let mut m = Multiline::new(Arc::clone(&spec));
    let mut got = Vec::new();
    for l in input("java") {
        got.extend(m.push(&l));
    }
    got.extend(m.flush());
    let got = got
        .iter()
        .map(|e| {
            let mut s = String::new();
            write_str(&mut s, e);
            s
        })
        .collect();
    check("java", got);
}
