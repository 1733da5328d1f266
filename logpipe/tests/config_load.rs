//! The configuration reader on files: the seed's fluent-bit configuration
//! (seed 003, a sidecar that tails `${LOG_PATH}/*-log/*.log` with the `Timing`
//! regex parser) loads unchanged, and `@INCLUDE` globs resolve relative to
//! the including file.

use std::path::Path;
use vigil_logpipe::config::{self, SectionKind};

fn fixture(rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

#[test]
fn seed_003_config_loads_unchanged() {
    let cfg = config::load(&fixture("seed003/fluent-bit.conf")).unwrap();
    assert_eq!(cfg.service.get("flush"), Some("1"));
    assert_eq!(cfg.service.get("log_level"), Some("info"));
    assert_eq!(cfg.inputs.len(), 1);
    let tail = &cfg.inputs[0];
    assert_eq!(tail.name(), Some("tail"));
    assert_eq!(tail.line, 12);
    assert_eq!(tail.get_size("mem_buf_limit").unwrap(), Some(5_000_000));
    assert_eq!(tail.get("parser"), Some("Timing"));
    // The commented-out es output is not an output.
    assert_eq!(cfg.outputs.len(), 1);
    assert_eq!(cfg.outputs[0].name(), Some("stdout"));
    assert_eq!(cfg.outputs[0].get("match"), Some("*"));
    assert_eq!(cfg.parsers.len(), 1);
    let p = &cfg.parsers[0];
    assert_eq!(p.kind, SectionKind::Parser);
    assert!(p.file.ends_with("parsers.conf"));
    assert_eq!(p.name(), Some("Timing"));
    assert_eq!(
        p.get("regex"),
        Some(r#"(?<time>\d\d\d\d\/[^\[]*) (?<level>\[[^ ]*)(?<context>.[^"]*)"#)
    );
    // LOG_PATH and POD_NAME come from the pod's environment; whether or not
    // they are set here, the values are substituted (empty when unset).
    let log_path = std::env::var("LOG_PATH").unwrap_or_default();
    assert_eq!(
        tail.get("path"),
        Some(format!("{log_path}/*-log/*.log").as_str())
    );
}

#[test]
fn include_globs_in_order_relative_to_the_including_file() {
    let cfg = config::load(&fixture("include/main.conf")).unwrap();
    assert_eq!(cfg.inputs.len(), 1);
    assert!(cfg.inputs[0].file.ends_with("conf.d/10-input.conf"));
    assert_eq!(cfg.filters.len(), 1);
    assert_eq!(cfg.filters[0].line, 1);
    assert_eq!(cfg.outputs[0].name(), Some("stdout"));
    assert!(cfg.warnings.is_empty());
}

#[test]
fn missing_parsers_file_names_the_service_line() {
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("f.conf");
    std::fs::write(&main, "[SERVICE]\n    Parsers_File nope.conf\n").unwrap();
    let e = config::load(&main).unwrap_err().to_string();
    assert!(e.contains("f.conf:2:") && e.contains("nope.conf"), "{e}");
}

#[test]
fn include_cycle_is_an_error_not_a_stack_overflow() {
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("a.conf");
    std::fs::write(&main, "@INCLUDE a.conf\n").unwrap();
    let e = config::load(&main).unwrap_err().to_string();
    assert!(e.contains("nested"), "{e}");
}

#[test]
fn parsers_file_may_not_hold_inputs() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.conf"), "[INPUT]\n    Name tail\n").unwrap();
    let main = dir.path().join("m.conf");
    std::fs::write(&main, "[SERVICE]\n    Parsers_File p.conf\n").unwrap();
    let e = config::load(&main).unwrap_err().to_string();
    assert!(e.contains("p.conf:1:"), "{e}");
}

mod never_panics {
    use proptest::prelude::*;
    use std::path::Path;

    proptest! {
        #[test]
        fn on_arbitrary_text(s in "(\\[|\\]|@INCLUDE |@SET |[a-zA-Z_]{1,6}|\\$\\{|\\}|=| |\t|\n|#|\\*|:-){0,60}") {
            let _ = vigil_logpipe::config::parse_str(&s, Path::new("/nonexistent/dir/x.conf"));
        }
    }
}
