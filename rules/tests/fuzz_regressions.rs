//! Replays the saved inputs of the vigil-rules fuzz targets
//! (`tests/fuzz-regressions/<target>/`) through the fuzz crate's own harness
//! (`fuzz/src/rules.rs`), so a failure here is the fuzz crash itself.

#[path = "../../fuzz/src/rules.rs"]
mod rules_fuzz;

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz-regressions")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| {
            d.map(|e| e.expect("read the regression folder").path())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    assert!(!files.is_empty(), "no saved inputs in {}", dir.display());
    for f in files {
        eprintln!("{target}: {}", f.display());
        run(&std::fs::read(&f).expect("read a regression input"));
    }
}

#[test]
fn promql_parse() {
    replay("promql_parse", rules_fuzz::run_promql);
}

#[test]
fn rules_load() {
    replay("rules_load", rules_fuzz::run_rules);
}

#[test]
fn template_parse() {
    replay("template_parse", rules_fuzz::run_template);
}
