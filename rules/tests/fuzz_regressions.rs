//! Replays the saved inputs of the vigil-rules fuzz targets
//! (`tests/fuzz-regressions/<target>/`) through the fuzz crate's own harness
//! (`fuzz/src/rules.rs`), so a failure here is the fuzz crash itself.

#[path = "../../fuzz/src/rules.rs"]
mod rules_fuzz;

#[path = "../../fuzz/src/replay.rs"]
mod replay;

/// Replays `target`'s saved inputs; there must be some.
fn replay(target: &str, run: fn(&[u8])) -> usize {
    let n = replay::replay(env!("CARGO_MANIFEST_DIR"), target, run);
    assert!(n > 0, "no saved inputs for {target}");
    n
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
